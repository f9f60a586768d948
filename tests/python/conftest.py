"""Fixtures of the Python suite.

* `drv`: parametrized over both drivers. Either libvirt's in-memory test driver
  (`test:///default`, one state for the whole process: domain "test", running, disk vda;
  the fixture checks afterwards that the test left it as it found it), or the embedded
  QEMU driver on a fresh temporary root with a running domain "vm" whose 64 MiB qcow2
  disk vda holds some data.
* `qemu`: a fresh temporary root for the embedded QEMU driver (a `QemuEnv`), checked
  afterwards for leaked daemons.
* `events`: libvirt's default event loop, run by a thread for the whole session.
* `build_dir`: the folder of the virbackup libvirt.so.0 this process loaded.
"""

import os
import sys
import threading
import time

import pytest

import vbhelpers as vb

try:
    import libvirt
    import libvirt_qemu  # noqa: F401 (must be importable too)

    IMPORT_ERROR = None
except ImportError as e:  # pragma: no cover - depends on the machine
    libvirt = None
    IMPORT_ERROR = e


def skip_reason():
    """Why the suite cannot run here: the bindings cannot be imported, or the
    libvirt.so.0 they loaded is not virbackup's. None when it can."""
    if IMPORT_ERROR is not None:
        return (f"{sys.executable} cannot import the libvirt bindings ({IMPORT_ERROR}): "
                "install python3-libvirt and run /usr/bin/python3")
    library = vb.loaded_library()
    if library is None or vb.is_system_path(library):
        return f"libvirt.so.0 is {library}, the system's libvirt, not virbackup: run with LD_LIBRARY_PATH=<build dir>"
    return None


def pytest_collection_modifyitems(config, items):
    """Every test is skipped, with the reason, when the suite cannot run here."""
    reason = skip_reason()
    if reason is not None:
        for item in items:
            item.add_marker(pytest.mark.skip(reason=reason))


def pytest_sessionfinish(session, exitstatus):
    """Under meson, a suite skipped as a whole exits 77, which meson reports as SKIP."""
    if skip_reason() is not None and os.environ.get("VIRBACKUP_SKIP_EXIT_CODE") and exitstatus in (0, 5):
        session.exitstatus = int(os.environ["VIRBACKUP_SKIP_EXIT_CODE"])


def pytest_report_header(config):
    return f"libvirt.so.0: {vb.loaded_library() if IMPORT_ERROR is None else IMPORT_ERROR}"


@pytest.fixture(scope="session")
def build_dir():
    return os.path.dirname(vb.loaded_library())


@pytest.fixture(autouse=True)
def _quiet_errors():
    """libvirt's default handler prints every error on stderr; the tests check them."""
    if libvirt is not None:
        libvirt.registerErrorHandler(lambda ctx, err: None, None)
    yield


# --- the in-memory test driver ----------------------------------------------------------


def _test_driver_state(conn):
    dom = conn.lookupByName("test")
    return {
        "domains": sorted(d.name() for d in conn.listAllDomains(0)),
        "state": dom.state(),
        "id": dom.ID(),
        "autostart": dom.autostart(),
        "checkpoints": [c.getName() for c in dom.listAllCheckpoints()],
        "job": dom.jobInfo()[0],
    }


def _reset_test_driver(conn):
    """Puts back what a failed test may have left: jobs, checkpoints, frozen file
    systems, extra domains."""
    dom = conn.lookupByName("test")
    try:
        dom.abortJob()
    except libvirt.libvirtError:
        pass
    for cp in dom.listAllCheckpoints(libvirt.VIR_DOMAIN_CHECKPOINT_LIST_ROOTS):
        cp.delete(libvirt.VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN)
    dom.fsThaw()
    dom.setAutostart(0)
    for other in conn.listAllDomains(0):
        if other.name() != "test":
            if other.isActive():
                other.destroy()
            for cp in other.listAllCheckpoints(libvirt.VIR_DOMAIN_CHECKPOINT_LIST_ROOTS):
                cp.delete(libvirt.VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN)
            if other.isPersistent():
                other.undefine()


@pytest.fixture
def test_conn():
    """A connection to test:///default; afterwards, the shared state must be as before."""
    conn = libvirt.open(vb.TEST_URI)
    before = _test_driver_state(conn)
    assert before["checkpoints"] == [] and before["job"] == 0, f"a previous test left {before}"
    yield conn
    after = _test_driver_state(conn)
    _reset_test_driver(conn)
    conn.close()
    assert after == before, "the test left test:///default changed"


# --- the embedded QEMU driver -------------------------------------------------------------


def _stop_everything(env):
    """Ends jobs and stops domains on a root (what a failed test may have left)."""
    try:
        conn = libvirt.open(env.uri)
    except libvirt.libvirtError:
        return
    try:
        for dom in conn.listAllDomains(0):
            try:
                if dom.jobInfo()[0] != 0:
                    dom.abortJob()
                    vb.wait_job(dom, timeout=30)
            except libvirt.libvirtError:
                pass
            if dom.isActive():
                try:
                    dom.destroy()
                except libvirt.libvirtError:
                    pass
    finally:
        conn.close()


@pytest.fixture
def qemu():
    env = vb.QemuEnv()
    yield env
    _stop_everything(env)
    # Every daemon the driver started for this root must be gone.
    deadline = time.monotonic() + 10
    while vb.process_pids_mentioning(env.dir) and time.monotonic() < deadline:
        time.sleep(0.05)
    leaked = vb.process_pids_mentioning(env.dir)
    for pid in leaked:
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    env.remove()
    assert not leaked, f"processes left running on {env.dir}: {leaked}"


# --- both drivers -------------------------------------------------------------------------


class Driver:
    """One driver's connection and its running domain with a disk vda."""

    def __init__(self, kind, conn, dom, env=None):
        self.kind = kind
        self.conn = conn
        self.dom = dom
        self.env = env  # the QemuEnv on the QEMU driver

    @property
    def is_qemu(self):
        return self.kind == "qemu"

    @property
    def from_driver(self):
        """The error domain of the driver's own errors."""
        return vb.FROM_QEMU if self.is_qemu else vb.FROM_TEST


@pytest.fixture(params=["test", "qemu"])
def drv(request):
    if request.param == "test":
        conn = request.getfixturevalue("test_conn")
        yield Driver("test", conn, conn.lookupByName("test"))
    else:
        env = request.getfixturevalue("qemu")
        conn = libvirt.open(env.uri)
        dom = env.define(conn, "vm", running=True)
        yield Driver("qemu", conn, dom, env)
        conn.close()


# --- events -------------------------------------------------------------------------------


class EventLoop:
    """The default event loop, run by a thread."""

    def __init__(self):
        assert libvirt.virEventRegisterDefaultImpl() == 0
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name="libvirt-events", daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            libvirt.virEventRunDefaultImpl()

    def stop(self):
        self.stopping = True
        # A timer that fires at once wakes the loop up.
        timer = libvirt.virEventAddTimeout(0, lambda timer, opaque: None, None)
        self.thread.join(10)
        libvirt.virEventRemoveTimeout(timer)
        assert not self.thread.is_alive()


@pytest.fixture(scope="session")
def events():
    loop = EventLoop()
    yield loop
    loop.stop()


class Recorder:
    """Collects event callbacks (from the event loop's thread) for a test to wait on."""

    def __init__(self):
        self.cond = threading.Condition()
        self.seen = []

    def add(self, *record):
        with self.cond:
            self.seen.append(record)
            self.cond.notify_all()

    def wait(self, predicate, timeout=30):
        with self.cond:
            assert self.cond.wait_for(lambda: any(predicate(r) for r in self.seen), timeout), \
                f"no matching event in {self.seen}"
            return [r for r in self.seen if predicate(r)]

    def clear(self):
        with self.cond:
            self.seen.clear()


@pytest.fixture
def recorder():
    return Recorder()

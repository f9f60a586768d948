"""Helpers of the Python suite: commands on images (qemu-img, qemu-io, nbdinfo, nbdcopy),
the temporary driver roots of the embedded QEMU driver, error checks, job waits, and the
differential runs against the system's libvirt.

conftest.py and the test modules import it; it imports libvirt only where it is used, so
that a machine without python3-libvirt still collects (and skips) the suite.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

MIB = 1 << 20
SYSTEM_PYTHON = "/usr/bin/python3"
# The domain of libvirt's test driver, as libvirt defines it.
TEST_URI = "test:///default"
TEST_UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f"

# virErrorDomain and virErrorNumber values the suite checks (libvirt's numbers, spelt out
# where the bindings have no constant that reads better).
FROM_NONE = 0
FROM_QEMU = 10
FROM_TEST = 12
FROM_STORAGE = 18
FROM_NETWORK = 19
FROM_DOMAIN = 20
FROM_DOMAIN_CHECKPOINT = 69


def import_or_skip(name):
    """Imports one of the bindings' modules, or skips the calling test module, with the
    reason (the ImportError itself)."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as e:
        pytest.skip(f"/usr/bin/python3 cannot import {name} (python3-libvirt): {e}", allow_module_level=True)


def python_subprocess(script, build_dir, timeout=60):
    """Runs a script with /usr/bin/python3 on virbackup, from / (a folder holding
    libvirt.so, such as the build folder, would shadow the bindings' module)."""
    env = dict(os.environ, LD_LIBRARY_PATH=build_dir, PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([SYSTEM_PYTHON, "-c", script], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd="/")


def run(*args, check=True, env=None, timeout=60):
    """Runs a command; returns its stdout, or fails the test with its output."""
    out = subprocess.run(list(args), capture_output=True, text=True, env=env, timeout=timeout)
    if check and out.returncode != 0:
        pytest.fail(f"{' '.join(args)} failed ({out.returncode}):\n{out.stdout}{out.stderr}")
    return out.stdout


# --- which libvirt.so.0 this process runs ---------------------------------------------


def loaded_library(name="libvirt.so.0"):
    """The file of `name` mapped into this process (after `import libvirt`)."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            if os.path.basename(path).startswith(name):
                return os.path.realpath(path)
    return None


def is_system_path(path):
    return path is not None and path.startswith(("/usr/", "/lib/", "/lib64/"))


# --- errors ---------------------------------------------------------------------------


def error_of(fn):
    """Calls fn, which must fail with libvirtError; returns (code, domain, message)."""
    import libvirt

    with pytest.raises(libvirt.libvirtError) as info:
        fn()
    e = info.value
    result = (e.get_error_code(), e.get_error_domain(), e.get_error_message())
    # The traceback holds this frame and, through fn, handles: let them go now (a
    # connection's close() counts the domain handles still alive).
    e.__traceback__ = None
    del e, info
    return result


# --- images ---------------------------------------------------------------------------


def image_info(path):
    return json.loads(run("qemu-img", "info", "-U", "--output=json", path))


def bitmap_names(path):
    """The persistent bitmaps of a qcow2 image (read while no daemon holds it), sorted."""
    info = image_info(path)
    bitmaps = info.get("format-specific", {}).get("data", {}).get("bitmaps", [])
    return sorted(b["name"] for b in bitmaps)


def identical(a, b):
    """qemu-img compare: the two images hold the same data."""
    out = subprocess.run(["qemu-img", "compare", "-U", a, b], capture_output=True, text=True)
    assert out.returncode in (0, 1), f"qemu-img compare {a} {b}: {out.stdout}{out.stderr}"
    return out.returncode == 0


def nbd_uri(socket, export="vda"):
    return f"nbd+unix:///{export}?socket={socket}"


def nbd_map(socket, context, export="vda"):
    """The extents nbdinfo --map reports for a meta context: [(offset, length, type)]."""
    out = run("nbdinfo", "--json", f"--map={context}", nbd_uri(socket, export))
    return [(e["offset"], e["length"], e["type"]) for e in json.loads(out)]


def dirty(extents):
    """The extents with bit 0 set (dirty, for a dirty-bitmap context)."""
    return [(off, length) for off, length, kind in extents if kind & 1]


def process_pids_mentioning(text):
    """The processes whose command line mentions `text` (a fixture folder)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            pids.append(int(entry))
    return pids


# --- the embedded QEMU driver on a temporary root -------------------------------------


class QemuEnv:
    """A fresh folder under /tmp (short: unix socket paths must fit in 108 bytes) with
    the driver's root and the images."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="vbpy", dir="/tmp")
        self.root = os.path.join(self.dir, "root")
        self.uri = f"qemu:///embed?root={self.root}"
        self.images = {}

    def path(self, name):
        return os.path.join(self.dir, name)

    def create_image(self, name, size="64M", fmt="qcow2"):
        path = self.path(name)
        run("qemu-img", "create", "-q", "-f", fmt, path, size)
        return path

    @staticmethod
    def domain_xml(name, disks, domain_type="kvm"):
        """A definition with the given (target, image, format) disks, like
        tests/common/mod.rs's domain_xml."""
        xml = (
            f"<domain type='{domain_type}'>\n  <name>{name}</name>\n  <memory unit='MiB'>256</memory>\n"
            "  <vcpu>1</vcpu>\n  <os>\n    <type arch='x86_64'>hvm</type>\n  </os>\n  <devices>\n"
        )
        for target, image, fmt in disks:
            xml += (
                f"    <disk type='file' device='disk'>\n      <driver name='qemu' type='{fmt}'/>\n"
                f"      <source file='{image}'/>\n      <target dev='{target}' bus='virtio'/>\n    </disk>\n"
            )
        return xml + "  </devices>\n</domain>\n"

    def define(self, conn, name, running=False, data=True):
        """A domain with a 64 MiB qcow2 disk vda holding some data."""
        image = self.create_image(f"{name}.qcow2")
        if data:
            write_image(image, 0x11, 0, 8 * MIB)
            write_image(image, 0x22, 40 * MIB, 3 * MIB)
        self.images[name] = image
        dom = conn.defineXML(self.domain_xml(name, [("vda", image, "qcow2")]))
        if running:
            dom.create()
        return dom

    @staticmethod
    def disk_file(dom, target="vda"):
        """The file a running domain's disk is written through (a FUSE export), as its
        live XML names it."""
        found = re.search(rf"<virbackup:disk target='{target}' interface='fuse' path='([^']*)'/>", dom.XMLDesc(0))
        assert found, dom.XMLDesc(0)
        return found.group(1)

    def write(self, dom, pattern, offset, length):
        """Writes into the domain's disk vda: through its FUSE file when it runs, with
        qemu-io on the image when it is shut off."""
        if dom.isActive():
            run("qemu-io", "-f", "raw", "-c", f"write -P {pattern:#x} {offset} {length}", self.disk_file(dom))
        else:
            write_image(self.images[dom.name()], pattern, offset, length)

    def freeze(self, dom, name):
        """A qcow2 copy of the domain's disk as it is now."""
        copy = self.path(name)
        if dom.isActive():
            source = ["-f", "raw", self.disk_file(dom)]
        else:
            source = ["-U", "-f", "qcow2", self.images[dom.name()]]
        run("qemu-img", "convert", *source, "-O", "qcow2", copy)
        return copy

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def write_image(image, pattern, offset, length, fmt="qcow2"):
    run("qemu-io", "-f", fmt, "-c", f"write -P {pattern:#x} {offset} {length}", image)


def push_xml(target, incremental=None, fmt="qcow2"):
    inc = f"<incremental>{incremental}</incremental>" if incremental else ""
    return (
        f"<domainbackup>{inc}<disks><disk name='vda' type='file'><target file='{target}'/>"
        f"<driver type='{fmt}'/></disk></disks></domainbackup>"
    )


def pull_xml(socket, scratch, incremental=None):
    inc = f"<incremental>{incremental}</incremental>" if incremental else ""
    return (
        f"<domainbackup mode='pull'>{inc}<server transport='unix' socket='{socket}'/><disks>"
        f"<disk name='vda' type='file'><scratch file='{scratch}'/></disk></disks></domainbackup>"
    )


def checkpoint_xml(name):
    return f"<domaincheckpoint><name>{name}</name></domaincheckpoint>"


def wait_job(dom, timeout=60):
    """Waits for the domain's job to end; returns its final statistics (kept)."""
    import libvirt

    deadline = time.monotonic() + timeout
    while dom.jobInfo()[0] != libvirt.VIR_DOMAIN_JOB_NONE:
        assert time.monotonic() < deadline, "the job did not end"
        time.sleep(0.01)
    return dom.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED | libvirt.VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED)


def engine_bitmaps(dom):
    """The dirty bitmaps of a running domain's block nodes, through the QMP monitor."""
    import libvirt_qemu

    reply = json.loads(libvirt_qemu.qemuMonitorCommand(
        dom, '{"execute":"query-named-block-nodes","arguments":{"flat":true}}', 0))
    names = {b["name"] for node in reply["return"] for b in node.get("dirty-bitmaps", [])}
    return sorted(names)


# --- differential runs: the same snippet with the system's libvirt and with virbackup ---

_PRELUDE = """\
import libvirt, os, sys
for _line in open('/proc/self/maps'):
    _f = _line.split()
    if len(_f) >= 6 and os.path.basename(_f[-1]).startswith('libvirt.so.0'):
        print('LIB', os.path.realpath(_f[-1]))
        break
libvirt.registerErrorHandler(lambda ctx, err: None, None)
def E(fn):
    '''Prints what a call returns, or its error (code, domain, message).'''
    try:
        print('OK', fn())
    except libvirt.libvirtError as e:
        print('ERR', e.get_error_code(), e.get_error_domain(), e.get_error_message())
"""


def run_both(build_dir, snippet):
    """Runs `snippet` in /usr/bin/python3 with the system's libvirt and then with
    virbackup's; returns the two outputs (stdout, minus the library line)."""
    outputs = []
    for ours in (False, True):
        env = dict(os.environ)
        env.pop("LIBVIRT_DEFAULT_URI", None)
        env.pop("LD_LIBRARY_PATH", None)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        if ours:
            env["LD_LIBRARY_PATH"] = build_dir
        out = subprocess.run([SYSTEM_PYTHON, "-c", _PRELUDE + snippet], capture_output=True, text=True,
                             env=env, timeout=120, cwd="/")
        assert out.returncode == 0, f"{'virbackup' if ours else 'libvirt'} run failed:\n{out.stdout}{out.stderr}"
        first, _, rest = out.stdout.partition("\n")
        assert first.startswith("LIB "), out.stdout
        library = first[4:]
        assert is_system_path(library) != ours, f"{'virbackup' if ours else 'libvirt'} run loaded {library}"
        outputs.append(rest)
    real, mine = outputs
    return mine, real

"""Backups through python3-libvirt: the job life cycle on both drivers; on the QEMU
driver, for running and shut-off domains, push backups (full and incremental) restored
and compared with the disk, pull backups read over NBD with nbdinfo, nbdcopy and libnbd,
and a push aborted mid-copy."""

import gc
import os
import shutil
import time

import pytest

import vbhelpers as vb
from vbhelpers import FROM_QEMU, FROM_TEST, MIB

libvirt = vb.import_or_skip("libvirt")

COMPLETED = libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED
KEEP = libvirt.VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED
GIB = 1 << 30


def no_backup(drv_domain):
    return (libvirt.VIR_ERR_NO_DOMAIN_BACKUP, drv_domain, "Domain backup job id not found: no domain backup job present")


def no_job(drv_domain):
    return (libvirt.VIR_ERR_OPERATION_INVALID, drv_domain, "Requested operation is not valid: no job is active on the domain")


def paths(drv, name):
    """Files for a backup: real ones on the QEMU driver, fictional on the test driver."""
    return drv.env.path(name) if drv.is_qemu else f"/tmp/vbpy-fictional-{name}"


def test_pull_backup_life_cycle(drv):
    """Begin, describe, statistics, block job, refusal of a second one, abort, after."""
    dom = drv.dom
    size = 64 * MIB if drv.is_qemu else GIB  # the test driver's disks are fictional, 1 GiB
    assert vb.error_of(dom.backupGetXMLDesc) == no_backup(drv.from_driver)
    assert vb.error_of(dom.abortJob) == no_job(drv.from_driver)
    assert dom.jobInfo() == [libvirt.VIR_DOMAIN_JOB_NONE] + [0] * 11
    assert dom.jobStats() == {"type": libvirt.VIR_DOMAIN_JOB_NONE}

    socket, scratch = paths(drv, "b.sock"), paths(drv, "scratch.qcow2")
    assert dom.backupBegin(vb.pull_xml(socket, scratch), vb.checkpoint_xml("b1")) == 0
    xml = dom.backupGetXMLDesc()
    assert xml.startswith("<domainbackup mode='pull'>\n")
    assert f"<server transport='unix' socket='{socket}'/>" in xml
    assert "<disk name='vda' backup='yes' type='file' backupmode='full' exportname='vda' index='" in xml, xml
    assert f"<scratch file='{scratch}'/>" in xml
    # The checkpoint made with it.
    assert [c.getName() for c in dom.listAllCheckpoints()] == ["b1"]

    info = dom.jobInfo()
    assert info[0] == libvirt.VIR_DOMAIN_JOB_UNBOUNDED
    stats = dom.jobStats()
    assert (stats["type"], stats["operation"]) == (libvirt.VIR_DOMAIN_JOB_UNBOUNDED, libvirt.VIR_DOMAIN_JOB_OPERATION_BACKUP)
    assert stats["disk_temp_total"] == size and stats["time_elapsed"] >= 0
    block = dom.blockJobInfo("vda", 0)
    assert (block["type"], block["end"]) == (libvirt.VIR_DOMAIN_BLOCK_JOB_TYPE_BACKUP, size)
    code, domain, message = vb.error_of(lambda: dom.blockJobInfo("vdz", 0))
    assert (code, domain) == (libvirt.VIR_ERR_INVALID_ARG, drv.from_driver), message

    # One backup at a time, refused at once.
    assert vb.error_of(lambda: dom.backupBegin(vb.pull_xml(socket, scratch), None)) == (
        libvirt.VIR_ERR_OPERATION_INVALID, drv.from_driver,
        "Requested operation is not valid: another backup job is already running")

    # Aborting is how a pull backup succeeds.
    assert dom.abortJob() == 0
    stats = vb.wait_job(dom)
    assert stats["type"] == libvirt.VIR_DOMAIN_JOB_COMPLETED
    assert (stats["success"], stats["errmsg"]) == (True, "Operation canceled")
    assert stats["operation"] == libvirt.VIR_DOMAIN_JOB_OPERATION_BACKUP
    assert vb.error_of(dom.backupGetXMLDesc) == no_backup(drv.from_driver)
    assert vb.error_of(dom.abortJob) == no_job(drv.from_driver)
    assert dom.blockJobInfo("vda", 0) == {}
    # The statistics are kept until read without KEEP_COMPLETED.
    assert dom.jobStats(COMPLETED | KEEP) == stats
    assert dom.jobStats(COMPLETED) == stats
    assert dom.jobStats(COMPLETED) == {"type": libvirt.VIR_DOMAIN_JOB_NONE}
    # A pull backup keeps its checkpoint.
    dom.checkpointLookupByName("b1").delete()
    if drv.is_qemu:
        assert not os.path.exists(scratch) and not os.path.exists(socket)


def test_push_backup_statistics(drv):
    dom = drv.dom
    size = 64 * MIB if drv.is_qemu else GIB
    target = paths(drv, "full.qcow2")
    assert dom.backupBegin(vb.push_xml(target), vb.checkpoint_xml("p1")) == 0
    stats = vb.wait_job(dom)
    assert stats["type"] == libvirt.VIR_DOMAIN_JOB_COMPLETED
    assert stats["operation"] == libvirt.VIR_DOMAIN_JOB_OPERATION_BACKUP
    assert (stats["disk_total"], stats["disk_processed"], stats["disk_remaining"]) == (size, size, 0)
    assert stats["success"] is True and "errmsg" not in stats
    assert dom.jobStats(COMPLETED)["type"] == libvirt.VIR_DOMAIN_JOB_COMPLETED
    assert dom.jobStats(COMPLETED) == {"type": libvirt.VIR_DOMAIN_JOB_NONE}
    assert vb.error_of(lambda: dom.jobStats(1 << 30))[0] == libvirt.VIR_ERR_INVALID_ARG
    function = "qemuBackupBegin" if drv.is_qemu else "testDomainBackupBegin"
    assert vb.error_of(lambda: dom.backupBegin(vb.push_xml(target + ".2"), None, 1 << 2)) == (
        libvirt.VIR_ERR_INVALID_ARG, drv.from_driver, f"unsupported flags (0x4) in function {function}")
    dom.checkpointLookupByName("p1").delete()


def test_block_job_abort_ends_a_pull_backup(drv):
    dom = drv.dom
    socket, scratch = paths(drv, "b.sock"), paths(drv, "s.qcow2")
    assert vb.error_of(lambda: dom.blockJobAbort("vda", 0)) == (
        libvirt.VIR_ERR_INVALID_ARG, drv.from_driver, "invalid argument: disk vda does not have an active block job")
    dom.backupBegin(vb.pull_xml(socket, scratch), None)
    assert dom.blockJobAbort("vda", 0) == 0
    stats = vb.wait_job(dom)
    assert (stats["type"], stats["success"]) == (libvirt.VIR_DOMAIN_JOB_COMPLETED, True)
    assert dom.blockJobInfo("vda", 0) == {}
    assert vb.error_of(dom.backupGetXMLDesc) == no_backup(drv.from_driver)


def test_read_only_connection_watches_a_backup(drv):
    """A read-only connection sees the job and its description; it cannot end it."""
    libvirt_qemu = vb.import_or_skip("libvirt_qemu")
    socket, scratch = paths(drv, "b.sock"), paths(drv, "s.qcow2")
    drv.dom.backupBegin(vb.pull_xml(socket, scratch), None)
    ro = libvirt.openReadOnly(drv.conn.getURI())
    dom = ro.lookupByName(drv.dom.name())
    try:
        assert dom.backupGetXMLDesc() == drv.dom.backupGetXMLDesc()
        assert dom.jobInfo()[0] == libvirt.VIR_DOMAIN_JOB_UNBOUNDED
        assert dom.jobStats()["type"] == libvirt.VIR_DOMAIN_JOB_UNBOUNDED
        assert dom.blockJobInfo("vda", 0)["type"] == libvirt.VIR_DOMAIN_BLOCK_JOB_TYPE_BACKUP

        def denied(api, domain=vb.FROM_DOMAIN):
            return (libvirt.VIR_ERR_OPERATION_DENIED, domain, f"operation forbidden: read only access prevents {api}")

        assert vb.error_of(dom.abortJob) == denied("virDomainAbortJob")
        assert vb.error_of(lambda: dom.blockJobAbort("vda", 0)) == denied("virDomainBlockJobAbort")
        assert vb.error_of(dom.fsFreeze) == denied("virDomainFSFreeze")
        assert vb.error_of(dom.fsThaw) == denied("virDomainFSThaw")
        assert vb.error_of(lambda: libvirt_qemu.qemuMonitorCommand(dom, "{}", 0)) == \
            denied("virDomainQemuMonitorCommand", vb.FROM_NONE)
        assert vb.error_of(lambda: libvirt_qemu.qemuAgentCommand(dom, "{}", 5, 0)) == \
            denied("virDomainQemuAgentCommand", vb.FROM_NONE)
        assert drv.dom.jobInfo()[0] == libvirt.VIR_DOMAIN_JOB_UNBOUNDED, "the job still runs"
    finally:
        del dom
        ro.close()
    drv.dom.abortJob()
    assert vb.wait_job(drv.dom)["type"] == libvirt.VIR_DOMAIN_JOB_COMPLETED


def test_test_driver_backups_need_a_running_domain_and_fail_when_it_stops(test_conn):
    xml = vb.QemuEnv.domain_xml("py-bk", [("vda", "/tmp/py-bk.img", "qcow2")], domain_type="test")
    dom = test_conn.defineXML(xml)
    try:
        assert vb.error_of(lambda: dom.backupBegin("<domainbackup/>", None)) == (
            libvirt.VIR_ERR_OPERATION_UNSUPPORTED, FROM_TEST,
            "Operation not supported: cannot perform disk backup for inactive domain")
        dom.create()
        dom.backupBegin(vb.pull_xml("/tmp/vbpy-fictional.sock", "/tmp/vbpy-fictional.qcow2"), None)
        dom.destroy()
        stats = dom.jobStats(COMPLETED)
        assert (stats["type"], stats["success"]) == (libvirt.VIR_DOMAIN_JOB_FAILED, False), stats
        assert dom.jobInfo()[0] == libvirt.VIR_DOMAIN_JOB_NONE
    finally:
        dom.undefine()


# --- the QEMU driver: real data -------------------------------------------------------------


@pytest.fixture(params=["running", "shutoff"])
def qemu_dom(request, qemu):
    conn = libvirt.open(qemu.uri)
    dom = qemu.define(conn, "vm", running=request.param == "running")
    yield dom
    conn.close()


def restore(env, incremental, base, name):
    """A copy of an incremental target rebased onto `base`: the disk it stands for."""
    restored = env.path(name)
    shutil.copy(incremental, restored)
    vb.run("qemu-img", "rebase", "-u", "-F", "qcow2", "-b", base, restored)
    return restored


@pytest.mark.qemu
def test_push_full_and_incremental_restore_the_disk(qemu, qemu_dom):
    dom = qemu_dom
    running = dom.isActive()
    full = qemu.path("full.qcow2")
    at_full = qemu.freeze(dom, "at-full.qcow2")
    dom.backupBegin(vb.push_xml(full), vb.checkpoint_xml("c1"))
    stats = vb.wait_job(dom)
    assert (stats["type"], stats["success"], stats["disk_total"]) == (libvirt.VIR_DOMAIN_JOB_COMPLETED, True, 64 * MIB)
    assert vb.identical(full, at_full)
    assert os.stat(full).st_mode & 0o777 == 0o600
    assert "backing-filename" not in vb.image_info(full)

    qemu.write(dom, 0x33, 20 * MIB, MIB)
    qemu.write(dom, 0x44, 60 * MIB, 64 * 1024)
    at_inc = qemu.freeze(dom, "at-inc.qcow2")
    inc = qemu.path("inc.qcow2")
    dom.backupBegin(vb.push_xml(inc, incremental="c1"), vb.checkpoint_xml("c2"))
    stats = vb.wait_job(dom)
    # Only what changed since c1 is copied.
    assert (stats["type"], stats["disk_total"]) == (libvirt.VIR_DOMAIN_JOB_COMPLETED, MIB + 64 * 1024)
    # An overlay naming the disk, as libvirt makes it.
    assert vb.image_info(inc)["backing-filename"] == qemu.images["vm"]
    assert vb.identical(restore(qemu, inc, full, "restored.qcow2"), at_inc)
    assert not vb.identical(full, at_inc)

    assert [c.getName() for c in dom.listAllCheckpoints(libvirt.VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL)] == ["c1", "c2"]
    assert dom.isActive() == running
    if running:
        assert vb.engine_bitmaps(dom) == ["c1", "c2"], "no temporary bitmap is left"
        dom.destroy()
    assert vb.bitmap_names(qemu.images["vm"]) == ["c1", "c2"]


@pytest.mark.qemu
def test_pull_backup_serves_the_disk_as_it_was(qemu, qemu_dom):
    dom = qemu_dom
    running = dom.isActive()
    assert dom.checkpointCreateXML(vb.checkpoint_xml("c1")).getName() == "c1"
    qemu.write(dom, 0x66, 8 * MIB, 2 * MIB)
    at_start = qemu.freeze(dom, "at-start.qcow2")

    socket, scratch = qemu.path("b.sock"), qemu.path("scratch.qcow2")
    dom.backupBegin(vb.pull_xml(socket, scratch, incremental="c1"), vb.checkpoint_xml("c2"))
    assert os.path.exists(scratch) and os.path.exists(socket)
    xml = dom.backupGetXMLDesc()
    assert xml.startswith("<domainbackup mode='pull'>\n  <incremental>c1</incremental>\n")
    assert ("<disk name='vda' backup='yes' type='file' backupmode='incremental' incremental='c1' "
            "exportname='vda' exportbitmap='backup-vda' index='") in xml
    assert dom.isActive() == running
    if not running:
        # The job's daemon holds the disks: the domain cannot start meanwhile.
        code, domain, message = vb.error_of(dom.create)
        assert code == libvirt.VIR_ERR_OPERATION_INVALID and "while a backup job runs on its disks" in message

    # What changed since c1, the way backup tools read it.
    assert vb.dirty(vb.nbd_map(socket, "qemu:dirty-bitmap:backup-vda")) == [(8 * MIB, 2 * MIB)]
    assert vb.nbd_map(socket, "base:allocation") != []
    if running:
        # The guest keeps writing, into what was dirty and what was not.
        qemu.write(dom, 0x77, 9 * MIB, MIB)
        qemu.write(dom, 0x78, 50 * MIB, MIB)
        assert dom.jobStats()["disk_temp_used"] >= 2 * MIB
    pulled = qemu.path("pulled.raw")
    vb.run("nbdcopy", vb.nbd_uri(socket), pulled)
    assert vb.identical(pulled, at_start), "the export shows the disk as it was at the start"
    if running:
        assert not vb.identical(pulled, qemu.freeze(dom, "now.qcow2")), "while the disk itself changed"

    assert dom.abortJob() == 0
    stats = vb.wait_job(dom)
    assert (stats["type"], stats["success"]) == (libvirt.VIR_DOMAIN_JOB_COMPLETED, True)
    assert not os.path.exists(scratch) and not os.path.exists(socket)
    assert dom.checkpointLookupByName("c2").getParent().getName() == "c1"
    if running:
        assert vb.engine_bitmaps(dom) == ["c1", "c2"]
        dom.destroy()
    assert vb.bitmap_names(qemu.images["vm"]) == ["c1", "c2"]


@pytest.mark.qemu
def test_pull_backup_read_with_libnbd(qemu):
    nbd = pytest.importorskip("nbd", reason="python3-libnbd is not installed")
    conn = libvirt.open(qemu.uri)
    dom = qemu.define(conn, "vm", running=True)
    socket, scratch = qemu.path("b.sock"), qemu.path("s.qcow2")
    dom.backupBegin(vb.pull_xml(socket, scratch), None)
    handle = nbd.NBD()
    handle.add_meta_context("base:allocation")
    handle.connect_uri(vb.nbd_uri(socket))
    try:
        assert handle.get_size() == 64 * MIB
        assert handle.is_read_only()
        assert handle.can_meta_context("base:allocation")
        assert handle.pread(4096, 0) == b"\x11" * 4096
        assert handle.pread(4096, 40 * MIB) == b"\x22" * 4096
        assert handle.pread(4096, 30 * MIB) == bytes(4096)
        extents = []
        handle.block_status(64 * MIB, 0, lambda ctx, offset, entries, err: extents.append((ctx, entries)))
        assert extents and extents[0][0] == "base:allocation"
    finally:
        handle.shutdown()
    dom.abortJob()
    assert vb.wait_job(dom)["type"] == libvirt.VIR_DOMAIN_JOB_COMPLETED
    dom.destroy()
    conn.close()


@pytest.mark.qemu
def test_aborted_push_leaves_nothing(qemu, qemu_dom, monkeypatch):
    dom = qemu_dom
    # 43 MiB of data at 8 MiB/s: the copy takes seconds, long enough to look at it and
    # abort it (even on a busy machine).
    qemu.write(dom, 0x5c, 8 * MIB, 32 * MIB)
    monkeypatch.setenv("VIRBACKUP_BACKUP_SPEED", str(8 * MIB))
    target = qemu.path("partial.qcow2")
    dom.backupBegin(vb.push_xml(target), vb.checkpoint_xml("c1"))
    info = dom.jobInfo()
    for _ in range(200):
        info = dom.jobInfo()
        if info[4] > 0:  # dataProcessed
            break
        time.sleep(0.01)
    assert info[0] == libvirt.VIR_DOMAIN_JOB_UNBOUNDED
    assert info[3] == 64 * MIB and 0 < info[4] < info[3], info  # dataTotal, dataProcessed
    block = dom.blockJobInfo("vda", 0)
    assert block["type"] == libvirt.VIR_DOMAIN_BLOCK_JOB_TYPE_BACKUP and 0 < block["cur"] < block["end"]
    assert os.path.exists(target)
    assert dom.abortJob() == 0
    stats = vb.wait_job(dom)
    assert stats["type"] == libvirt.VIR_DOMAIN_JOB_CANCELLED
    assert (stats["success"], stats["errmsg"]) == (False, "Operation canceled")
    assert not os.path.exists(target), "the partial target is removed"
    assert dom.listAllCheckpoints() == [], "and the checkpoint made with it"
    monkeypatch.delenv("VIRBACKUP_BACKUP_SPEED")
    # The domain is usable: the next backup runs to its end.
    dom.backupBegin(vb.push_xml(target), vb.checkpoint_xml("c1"))
    assert vb.wait_job(dom)["type"] == libvirt.VIR_DOMAIN_JOB_COMPLETED
    if dom.isActive():
        dom.destroy()
    assert vb.bitmap_names(qemu.images["vm"]) == ["c1"]


@pytest.mark.qemu
def test_refused_backups_leave_nothing(qemu):
    conn = libvirt.open(qemu.uri)
    dom = qemu.define(conn, "vm")
    target = qemu.path("t.qcow2")
    with open(target, "wb") as f:
        f.write(b"precious")
    assert vb.error_of(lambda: dom.backupBegin(vb.push_xml(target), vb.checkpoint_xml("c1"))) == (
        libvirt.VIR_ERR_INVALID_ARG, FROM_QEMU, f"invalid argument: store '{target}' for backup of 'vda' exists")
    with open(target, "rb") as f:
        assert f.read() == b"precious"
    os.remove(target)
    assert vb.error_of(lambda: dom.backupBegin(vb.push_xml(target, incremental="nosuch"), None)) == (
        libvirt.VIR_ERR_NO_DOMAIN_CHECKPOINT, FROM_QEMU,
        "Domain checkpoint not found: Checkpoint 'nosuch' for incremental backup of disk 'vda' not found")
    assert vb.error_of(lambda: dom.backupBegin(
        "<domainbackup><disks><disk name='vda' backup='no'/></disks></domainbackup>", None)) == (
        libvirt.VIR_ERR_CONFIG_UNSUPPORTED, FROM_QEMU, "unsupported configuration: no disks selected for backup")
    assert dom.listAllCheckpoints() == [] and not os.path.exists(target)
    assert vb.bitmap_names(qemu.images["vm"]) == []
    assert dom.jobInfo()[0] == libvirt.VIR_DOMAIN_JOB_NONE
    conn.close()


@pytest.mark.qemu
def test_nothing_is_left_behind(qemu):
    """After backups of a running and a shut-off domain and the connection closed: no
    file descriptor, thread or process more than before."""
    def counts():
        gc.collect()
        return len(os.listdir("/proc/self/fd")), len(os.listdir("/proc/self/task"))

    before = counts()
    conn = libvirt.open(qemu.uri)
    dom = qemu.define(conn, "vm", running=True)
    for round in range(2):
        dom.backupBegin(vb.push_xml(qemu.path(f"full{round}.qcow2")), vb.checkpoint_xml(f"c{round}"))
        vb.wait_job(dom)
        dom.backupBegin(vb.pull_xml(qemu.path("b.sock"), qemu.path("s.qcow2"), incremental=f"c{round}"), None)
        assert vb.nbd_map(qemu.path("b.sock"), "qemu:dirty-bitmap:backup-vda") != []
        dom.abortJob()
        vb.wait_job(dom)
        if dom.isActive():
            dom.destroy()
    del dom
    assert conn.close() == 0
    assert vb.process_pids_mentioning(qemu.dir) == []
    # (At most: threads or descriptors of an earlier test may still be on their way out.)
    fds, threads = counts()
    assert fds <= before[0] and threads <= before[1], (before, (fds, threads))
    assert sorted(os.listdir(qemu.dir)) == ["full0.qcow2", "full1.qcow2", "root", "vm.qcow2"]

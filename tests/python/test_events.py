"""Events through python3-libvirt: libvirt's default event loop run by a thread, domain
event callbacks for JOB_COMPLETED, BLOCK_JOB and BLOCK_JOB_2 receiving the end of backups
with libvirt's parameters, on both drivers; deregistration."""

import pytest

import vbhelpers as vb
from vbhelpers import FROM_NONE, MIB

libvirt = vb.import_or_skip("libvirt")


def register(conn, recorder, dom=None, opaque="opaque"):
    """JOB_COMPLETED for `dom` (or all domains), BLOCK_JOB and BLOCK_JOB_2 for all."""
    ids = [
        conn.domainEventRegisterAny(
            dom, libvirt.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED,
            lambda c, d, params, op: recorder.add("job", d.name(), params, op), opaque),
        conn.domainEventRegisterAny(
            None, libvirt.VIR_DOMAIN_EVENT_ID_BLOCK_JOB,
            lambda c, d, path, kind, status, op: recorder.add("block", d.name(), path, kind, status, op), opaque),
        conn.domainEventRegisterAny(
            None, libvirt.VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2,
            lambda c, d, disk, kind, status, op: recorder.add("block2", d.name(), disk, kind, status, op), opaque),
    ]
    assert len(set(ids)) == 3 and all(i >= 0 for i in ids), ids
    return ids


def source_of(drv):
    return drv.env.images["vm"] if drv.is_qemu else "/guest/diskimage1"


def test_push_backup_end_is_reported(drv, events, recorder):
    conn, dom = drv.conn, drv.dom
    size = 64 * MIB if drv.is_qemu else 1 << 30
    ids = register(conn, recorder, dom)
    try:
        target = drv.env.path("full.qcow2") if drv.is_qemu else "/tmp/vbpy-fictional.qcow2"
        dom.backupBegin(vb.push_xml(target), vb.checkpoint_xml("e1"))
        [(_, name, params, opaque)] = recorder.wait(lambda r: r[0] == "job")
        assert (name, opaque) == (dom.name(), "opaque")
        # libvirt's typed parameters for a finished backup.
        assert params["operation"] == libvirt.VIR_DOMAIN_JOB_OPERATION_BACKUP
        assert params["success"] is True
        assert (params["disk_total"], params["disk_processed"], params["disk_remaining"]) == (size, size, 0)
        assert params["time_elapsed"] >= 0
        assert "errmsg" not in params
        completed = recorder.wait(lambda r: r[0] == "block2")
        assert completed == [("block2", dom.name(), "vda", libvirt.VIR_DOMAIN_BLOCK_JOB_TYPE_BACKUP,
                              libvirt.VIR_DOMAIN_BLOCK_JOB_COMPLETED, "opaque")]
        # The old event names the disk by its source.
        assert recorder.wait(lambda r: r[0] == "block") == [
            ("block", dom.name(), source_of(drv), libvirt.VIR_DOMAIN_BLOCK_JOB_TYPE_BACKUP,
             libvirt.VIR_DOMAIN_BLOCK_JOB_COMPLETED, "opaque")]
        # The same figures as the statistics kept for the finished job.
        stats = dom.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
        assert stats.pop("type") == libvirt.VIR_DOMAIN_JOB_COMPLETED
        assert stats == params
    finally:
        for i in ids:
            conn.domainEventDeregisterAny(i)
    dom.checkpointLookupByName("e1").delete()


def test_pull_backup_end_and_deregistration(drv, events, recorder):
    conn, dom = drv.conn, drv.dom
    ids = register(conn, recorder)
    socket = drv.env.path("b.sock") if drv.is_qemu else "/tmp/vbpy-fictional.sock"
    scratch = drv.env.path("s.qcow2") if drv.is_qemu else "/tmp/vbpy-fictional-s.qcow2"
    dom.backupBegin(vb.pull_xml(socket, scratch), None)
    dom.abortJob()
    [(_, name, params, _)] = recorder.wait(lambda r: r[0] == "job")
    assert name == dom.name()
    assert (params["success"], params["errmsg"]) == (True, "Operation canceled")
    assert params["disk_temp_total"] == (64 * MIB if drv.is_qemu else 1 << 30)
    assert recorder.wait(lambda r: r[0] == "block2")[0][2:5] == (
        "vda", libvirt.VIR_DOMAIN_BLOCK_JOB_TYPE_BACKUP, libvirt.VIR_DOMAIN_BLOCK_JOB_COMPLETED)

    # Deregistered callbacks are not called; one registered for the same event still is.
    for i in ids:
        assert conn.domainEventDeregisterAny(i) is None
    assert vb.error_of(lambda: conn.domainEventDeregisterAny(ids[0])) == (
        libvirt.VIR_ERR_INVALID_ARG, FROM_NONE, f"invalid argument: could not find event callback {ids[0]} for deletion")
    recorder.clear()
    still = conn.domainEventRegisterAny(
        dom, libvirt.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED, lambda c, d, params, op: recorder.add("still", op), "still")
    try:
        dom.backupBegin(vb.pull_xml(socket, scratch), None)
        dom.abortJob()
        assert recorder.wait(lambda r: r[0] == "still") == [("still", "still")]
        # (BLOCK_JOB and BLOCK_JOB_2 are raised before JOB_COMPLETED.)
        assert recorder.seen == [("still", "still")]
    finally:
        conn.domainEventDeregisterAny(still)


@pytest.mark.qemu
def test_cancelled_push_is_reported(qemu, events, recorder, monkeypatch):
    conn = libvirt.open(qemu.uri)
    dom = qemu.define(conn, "vm", running=True)
    ids = register(conn, recorder, dom)
    qemu.write(dom, 0x5c, 8 * MIB, 32 * MIB)
    monkeypatch.setenv("VIRBACKUP_BACKUP_SPEED", str(8 * MIB))
    dom.backupBegin(vb.push_xml(qemu.path("t.qcow2")), None)
    dom.abortJob()
    [(_, _, params, _)] = recorder.wait(lambda r: r[0] == "job")
    assert (params["success"], params["errmsg"]) == (False, "Operation canceled")
    assert params["disk_total"] == 64 * MIB and params["disk_remaining"] > 0
    assert recorder.wait(lambda r: r[0] == "block2")[0][2:5] == (
        "vda", libvirt.VIR_DOMAIN_BLOCK_JOB_TYPE_BACKUP, libvirt.VIR_DOMAIN_BLOCK_JOB_CANCELED)
    assert dom.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)["type"] == libvirt.VIR_DOMAIN_JOB_CANCELLED
    for i in ids:
        conn.domainEventDeregisterAny(i)
    dom.destroy()
    conn.close()


@pytest.mark.qemu
def test_events_of_a_shut_off_domain_backup(qemu, events, recorder):
    """The job of a shut-off domain runs in a daemon of its own; its end is reported too."""
    conn = libvirt.open(qemu.uri)
    dom = qemu.define(conn, "vm")
    ids = register(conn, recorder, dom)
    dom.backupBegin(vb.push_xml(qemu.path("full.qcow2")), vb.checkpoint_xml("c1"))
    [(_, _, params, _)] = recorder.wait(lambda r: r[0] == "job")
    assert (params["success"], params["disk_total"]) == (True, 64 * MIB)
    assert vb.identical(qemu.path("full.qcow2"), qemu.images["vm"])
    for i in ids:
        conn.domainEventDeregisterAny(i)
    assert dom.isActive() == 0
    conn.close()


def test_timeouts_run_on_the_event_loop(events):
    import threading

    fired = threading.Event()
    timer = libvirt.virEventAddTimeout(10, lambda t, opaque: fired.set(), None)
    try:
        assert fired.wait(10)
    finally:
        libvirt.virEventRemoveTimeout(timer)


# --- differential: registration on test:///default -----------------------------------------

EVENT_SNIPPET = """
E(libvirt.virEventRegisterDefaultImpl)
c = libvirt.open('test:///default')
d = c.lookupByName('test')
E(lambda: c.domainEventRegisterAny(d, libvirt.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED, lambda *a: None, None))
E(lambda: c.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2, lambda *a: None, None))
E(lambda: c.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_BLOCK_JOB, lambda *a: None, 'x'))
E(lambda: c.domainEventDeregisterAny(1)); E(lambda: c.domainEventDeregisterAny(1))
E(lambda: c.domainEventDeregisterAny(0)); E(lambda: c.domainEventDeregisterAny(2))
E(lambda: c.domainEventDeregisterAny(99))
E(lambda: c.domainEventRegisterAny(d, libvirt.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED, lambda *a: None, None))
timer = libvirt.virEventAddTimeout(5, lambda t, o: None, None)
E(lambda: timer >= 0)
E(lambda: libvirt.virEventUpdateTimeout(timer, -1))
E(lambda: libvirt.virEventRemoveTimeout(timer))
"""


def test_differential_event_registration(build_dir):
    mine, real = vb.run_both(build_dir, EVENT_SNIPPET)
    assert mine == real

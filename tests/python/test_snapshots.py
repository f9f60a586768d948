"""Snapshots through python3-libvirt: a differential run on test:///default (the tree
with a branch made by a revert, listings and filters, XML, reverts and the domain's
state, deletion modes, redefinition, undefine), and internal snapshots on the QEMU
driver."""

import subprocess

import pytest

import vbhelpers as vb

libvirt = vb.import_or_skip("libvirt")

SNAPSHOT_SNIPPET = r"""
import re
c = libvirt.open('test:///default')
d = c.lookupByName('test')
F = libvirt
def N(ss): return [x.getName() for x in ss]
def S(ss): return sorted(N(ss))
def X(s, flags=0):
    text = re.sub(r'<creationTime>\d+</creationTime>', '<creationTime/>', s.getXMLDesc(flags))
    return re.sub(r'(?s)<domain .*</domain>', '<domain/>', text)
def ST(): return (d.state(), d.isActive(), d.ID() if d.isActive() else -1)
def mk(name, flags=0): return d.snapshotCreateXML(f'<domainsnapshot><name>{name}</name></domainsnapshot>', flags)
# The branching tree of the issue: s1, s2, revert to s1, s3: s1 has two children.
s1 = mk('s1'); s2 = mk('s2')
E(lambda: d.revertToSnapshot(s1)); s3 = mk('s3')
E(lambda: S(s1.listAllChildren())); E(lambda: s1.numChildren()); E(lambda: s3.getParent().getName())
E(lambda: d.snapshotCurrent().getName()); E(lambda: d.hasCurrentSnapshot()); E(lambda: s2.isCurrent())
E(lambda: d.snapshotNum()); E(lambda: sorted(d.snapshotListNames()))
E(lambda: S(d.listAllSnapshots(F.VIR_DOMAIN_SNAPSHOT_LIST_LEAVES)))
E(lambda: N(d.listAllSnapshots(F.VIR_DOMAIN_SNAPSHOT_LIST_ROOTS)))
E(lambda: N(d.listAllSnapshots(F.VIR_DOMAIN_SNAPSHOT_LIST_TOPOLOGICAL))[0])
# Snapshots of a shut-off and a paused domain; filters on the state they were taken in.
d.destroy(); off = mk('off'); E(ST)
E(lambda: d.revertToSnapshot(off, F.VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED)); E(ST)
E(lambda: d.revertToSnapshot(s1, F.VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED)); E(ST); paused = mk('paused')
E(lambda: S(d.listAllSnapshots(F.VIR_DOMAIN_SNAPSHOT_LIST_INACTIVE)))
E(lambda: S(d.listAllSnapshots(F.VIR_DOMAIN_SNAPSHOT_LIST_ACTIVE)))
E(lambda: S(d.listAllSnapshots(F.VIR_DOMAIN_SNAPSHOT_LIST_INTERNAL | F.VIR_DOMAIN_SNAPSHOT_LIST_NO_LEAVES)))
E(lambda: d.listAllSnapshots(F.VIR_DOMAIN_SNAPSHOT_LIST_EXTERNAL)); E(lambda: d.listAllSnapshots(F.VIR_DOMAIN_SNAPSHOT_LIST_NO_METADATA))
E(lambda: X(paused)); E(lambda: X(off, F.VIR_DOMAIN_SNAPSHOT_XML_SECURE)); E(lambda: X(s1, 1 << 30))
E(lambda: d.revertToSnapshot(s2, F.VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING)); E(ST)
E(lambda: d.revertToSnapshot(s2, F.VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING | F.VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED))
# Refusals.
E(lambda: mk('s1')); E(lambda: mk('x', F.VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY)); E(lambda: mk('x', F.VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA))
E(lambda: mk('x', F.VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT)); E(lambda: d.snapshotLookupByName('nosuch'))
E(lambda: d.checkpointCreateXML('<domaincheckpoint><name>c</name></domaincheckpoint>'))
E(lambda: s1.delete(F.VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY))
# Redefinition: back in place, current only when asked.
saved = s3.getXMLDesc(); E(lambda: s3.delete()); E(lambda: d.snapshotCurrent().getName())
E(lambda: d.snapshotCreateXML(saved, F.VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE).getName()); E(lambda: s3.isCurrent())
E(lambda: d.snapshotCreateXML(saved, F.VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE | F.VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT).isCurrent())
# Deletion modes, HALT, undefine.
E(lambda: s1.delete(F.VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY)); E(lambda: S(d.listAllSnapshots())); E(lambda: d.snapshotCurrent().getName())
E(lambda: mk('h', F.VIR_DOMAIN_SNAPSHOT_CREATE_HALT).getName()); E(ST)
E(lambda: d.undefine()); E(lambda: d.undefineFlags(F.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)); E(lambda: [x.name() for x in c.listAllDomains()])
"""


def test_differential_snapshots(build_dir):
    """Snapshots on test:///default behave as libvirt's: tree, listings, XML, reverts,
    errors."""
    mine, real = vb.run_both(build_dir, SNAPSHOT_SNIPPET)
    assert mine == real
    # The run went where it should: the revert made a branch, and undefine worked last.
    assert "['s2', 's3']" in real and real.rstrip().endswith("[]"), real


def holds(image, pattern, offset, length):
    """Whether the image holds `pattern` there (qemu-io's read -P)."""
    command = ["qemu-io", "-r", "-U", "-f", "qcow2", "-c", f"read -P {pattern:#x} {offset} {length}", image]
    out = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert "read " in out.stdout, out.stdout + out.stderr
    return out.returncode == 0 and "Pattern verification failed" not in out.stdout


@pytest.mark.qemu
def test_qemu_internal_snapshots_of_a_shut_off_domain(qemu):
    """The QEMU driver: internal snapshots of a shut-off domain, listed, reverted (the
    data comes back) and deleted; and of a running domain."""
    conn = libvirt.open(qemu.uri)
    dom = qemu.define(conn, "vm")
    image = qemu.images["vm"]
    assert dom.snapshotNum() == 0 and dom.hasCurrentSnapshot() == 0
    with pytest.raises(libvirt.libvirtError) as e:
        dom.snapshotCurrent()
    assert e.value.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT
    s1 = dom.snapshotCreateXML("<domainsnapshot><name>s1</name></domainsnapshot>")
    assert "<state>shutoff</state>" in s1.getXMLDesc()
    vb.write_image(image, 0x5a, 0, vb.MIB)
    s2 = dom.snapshotCreateXML("<domainsnapshot><name>s2</name></domainsnapshot>")
    assert s2.getParent().getName() == "s1" and s2.isCurrent()
    dom.revertToSnapshot(s1)
    assert s1.isCurrent() and [s.getName() for s in s1.listAllChildren()] == ["s2"]
    assert not holds(image, 0x5a, 0, vb.MIB)
    dom.revertToSnapshot(s2)
    assert holds(image, 0x5a, 0, vb.MIB)
    s1.delete(libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN)
    assert dom.listAllSnapshots() == []
    with pytest.raises(libvirt.libvirtError) as e:
        dom.snapshotLookupByName("s1")
    assert e.value.get_error_message() == "Domain snapshot not found: no domain snapshot with matching name 's1'"
    # A running domain's snapshot holds its disks; reverting to it restarts the domain.
    dom.create()
    live = dom.snapshotCreateXML("<domainsnapshot><name>live</name></domainsnapshot>")
    assert "<state>disk-snapshot</state>" in live.getXMLDesc()
    with pytest.raises(libvirt.libvirtError) as e:
        dom.snapshotCreateXML("<domainsnapshot><memory snapshot='internal'/></domainsnapshot>")
    assert e.value.get_error_code() == libvirt.VIR_ERR_OPERATION_UNSUPPORTED
    dom.revertToSnapshot(live)
    assert dom.isActive() and live.isCurrent()
    live.delete()
    with pytest.raises(libvirt.libvirtError) as e:
        dom.snapshotNum(1 << 30)
    assert "qemuDomainSnapshotNum" in e.value.get_error_message()
    dom.destroy()
    conn.close()


@pytest.mark.qemu
def test_qemu_external_snapshot_and_revert(qemu):
    """An external (disk-only) snapshot of a shut-off domain moves it onto an overlay;
    reverting to it drops what was written since."""
    conn = libvirt.open(qemu.uri)
    dom = qemu.define(conn, "ext")
    image = qemu.images["ext"]
    dom.checkpointCreateXML("<domaincheckpoint><name>c1</name></domaincheckpoint>")
    snap = dom.snapshotCreateXML("<domainsnapshot><name>e1</name></domainsnapshot>",
                                 libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY)
    overlay = image.rsplit(".", 1)[0] + ".e1"
    assert f"<source file='{overlay}'/>" in dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert "snapshot='external'" in snap.getXMLDesc()
    assert dom.listAllSnapshots(libvirt.VIR_DOMAIN_SNAPSHOT_LIST_EXTERNAL)[0].getName() == "e1"
    vb.write_image(overlay, 0x7e, 0, vb.MIB)
    assert holds(overlay, 0x7e, 0, vb.MIB)
    dom.revertToSnapshot(snap)
    assert not holds(overlay, 0x7e, 0, vb.MIB)
    # Nothing was written since c1 but what the revert dropped.
    sized = dom.checkpointLookupByName("c1").getXMLDesc(libvirt.VIR_DOMAIN_CHECKPOINT_XML_SIZE)
    assert "bitmap='c1' size='0'" in sized, sized
    snap.delete(libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY)
    conn.close()


@pytest.mark.qemu
def test_qemu_external_snapshots_of_a_running_domain(qemu):
    """External snapshots of a running domain: its engine puts the overlays under the
    disk's FUSE file while it runs, an incremental backup from a checkpoint taken before
    reads the bitmaps along the chain, deleting the older snapshot commits its overlay
    in the engine, and the newest one (the disk's own top image, offered over FUSE) is
    refused while the domain runs and committed once it is shut off."""
    conn = libvirt.open(qemu.uri)
    dom = qemu.define(conn, "live", running=True)
    image = qemu.images["live"]
    full = qemu.path("full.qcow2")
    dom.backupBegin(vb.push_xml(full), "<domaincheckpoint><name>c1</name></domaincheckpoint>")
    vb.wait_job(dom)
    qemu.write(dom, 0x31, 8 * vb.MIB, vb.MIB)
    flags = libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY
    dom.snapshotCreateXML("<domainsnapshot><name>e1</name></domainsnapshot>", flags)
    qemu.write(dom, 0x32, 16 * vb.MIB, vb.MIB)
    e2 = dom.snapshotCreateXML("<domainsnapshot><name>e2</name></domainsnapshot>", flags)
    assert "<state>disk-snapshot</state>" in e2.getXMLDesc()
    overlay = image.rsplit(".", 1)[0] + ".e2"
    assert f"<source file='{overlay}'/>" in dom.XMLDesc(0)
    qemu.write(dom, 0x33, 24 * vb.MIB, vb.MIB)
    now = qemu.freeze(dom, "now.qcow2")
    inc = qemu.path("inc.qcow2")
    dom.backupBegin(vb.push_xml(inc, "c1"), None)
    vb.wait_job(dom)
    vb.run("qemu-img", "rebase", "-u", "-f", "qcow2", "-b", full, "-F", "qcow2", inc)
    vb.run("qemu-img", "compare", inc, now)
    dom.snapshotLookupByName("e1").delete()
    assert [s.getName() for s in dom.listAllSnapshots()] == ["e2"]
    with pytest.raises(libvirt.libvirtError) as e:
        e2.delete()
    assert e.value.get_error_code() == libvirt.VIR_ERR_OPERATION_UNSUPPORTED
    assert "FUSE export" in e.value.get_error_message()
    dom.destroy()
    e2.delete()
    assert f"<source file='{image}'/>" in dom.XMLDesc(0)
    assert holds(image, 0x33, 24 * vb.MIB, vb.MIB), "the writes are in the image"
    conn.close()

"""Checkpoints through python3-libvirt: the tree and its listings, lookups, XML, deletion
modes, REDEFINE, on both drivers; dirty sizes, REDEFINE_VALIDATE and persistence on real
qcow2 images with the QEMU driver; and a differential run on test:///default."""

import os
import time

import pytest

import vbhelpers as vb
from vbhelpers import FROM_DOMAIN_CHECKPOINT, FROM_QEMU, MIB

libvirt = vb.import_or_skip("libvirt")

ROOTS = libvirt.VIR_DOMAIN_CHECKPOINT_LIST_ROOTS
TOPOLOGICAL = libvirt.VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL
LEAVES = libvirt.VIR_DOMAIN_CHECKPOINT_LIST_LEAVES
NO_LEAVES = libvirt.VIR_DOMAIN_CHECKPOINT_LIST_NO_LEAVES
DESCENDANTS = libvirt.VIR_DOMAIN_CHECKPOINT_LIST_DESCENDANTS
NO_DOMAIN = libvirt.VIR_DOMAIN_CHECKPOINT_XML_NO_DOMAIN
REDEFINE = libvirt.VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE
VALIDATE = libvirt.VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE_VALIDATE
CHILDREN = libvirt.VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN
CHILDREN_ONLY = libvirt.VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN_ONLY
METADATA_ONLY = libvirt.VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY


def names(checkpoints):
    return [c.getName() for c in checkpoints]


def create(dom, name):
    cp = dom.checkpointCreateXML(vb.checkpoint_xml(name))
    assert cp.getName() == name
    return cp


def not_found(drv, detail):
    return (libvirt.VIR_ERR_NO_DOMAIN_CHECKPOINT, drv.from_driver, f"Domain checkpoint not found: {detail}")


def test_tree_listings_and_lookups(drv):
    dom = drv.dom
    c1, c2, c3 = create(dom, "c1"), create(dom, "c2"), create(dom, "c3")
    # A branch: checkpoint b, made (its bitmap too), then moved under c1 by REDEFINE.
    b = create(dom, "b")
    xml = b.getXMLDesc(NO_DOMAIN)
    assert "<parent>\n    <name>c3</name>\n  </parent>" in xml
    b.delete(METADATA_ONLY)
    b = dom.checkpointCreateXML(xml.replace("<name>c3</name>", "<name>c1</name>"), REDEFINE)
    assert b.getName() == "b"

    assert sorted(names(dom.listAllCheckpoints())) == ["b", "c1", "c2", "c3"]
    assert names(dom.listAllCheckpoints(ROOTS)) == ["c1"]
    order = names(dom.listAllCheckpoints(TOPOLOGICAL))
    assert sorted(order) == ["b", "c1", "c2", "c3"]
    assert order[0] == "c1" and order.index("c2") < order.index("c3"), order
    assert sorted(names(dom.listAllCheckpoints(LEAVES))) == ["b", "c3"]
    assert sorted(names(dom.listAllCheckpoints(NO_LEAVES))) == ["c1", "c2"]
    # Both together select nothing in libvirt 9.0 (see the differential run).
    assert dom.listAllCheckpoints(LEAVES | NO_LEAVES) == []

    assert sorted(names(c1.listAllChildren())) == ["b", "c2"]
    assert sorted(names(c1.listAllChildren(DESCENDANTS))) == ["b", "c2", "c3"]
    assert names(c1.listAllChildren(DESCENDANTS | TOPOLOGICAL)).index("c2") < \
        names(c1.listAllChildren(DESCENDANTS | TOPOLOGICAL)).index("c3")
    assert names(c2.listAllChildren(DESCENDANTS)) == ["c3"]
    assert c3.listAllChildren() == [] and b.listAllChildren(DESCENDANTS) == []

    assert c3.getParent().getName() == "c2"
    assert c2.getParent().getName() == "c1"
    assert b.getParent().getName() == "c1"
    assert vb.error_of(c1.getParent) == not_found(drv, "checkpoint 'c1' does not have a parent")

    found = dom.checkpointLookupByName("c2")
    assert found.getName() == "c2" and found.getDomain().name() == dom.name()
    assert found.getConnect().getURI() == drv.conn.getURI()
    assert vb.error_of(lambda: dom.checkpointLookupByName("nosuch")) == \
        not_found(drv, "no domain checkpoint with matching name 'nosuch'")

    brief = c3.getXMLDesc(NO_DOMAIN)
    assert brief.startswith("<domaincheckpoint>\n  <name>c3</name>\n  <parent>\n    <name>c2</name>\n  </parent>\n")
    assert "<disk name='vda' checkpoint='bitmap' bitmap='c3'/>" in brief
    assert "<domain" not in brief.replace("<domaincheckpoint", "")
    full = c3.getXMLDesc(0)
    assert f"<domain type='{'kvm' if drv.is_qemu else 'test'}'>" in full and f"<name>{dom.name()}</name>" in full
    if drv.is_qemu:
        # One persistent bitmap per checkpoint in the running domain's disk.
        assert vb.engine_bitmaps(dom) == ["b", "c1", "c2", "c3"]

    assert c1.delete(CHILDREN) == 0
    assert dom.listAllCheckpoints() == []
    if drv.is_qemu:
        assert vb.engine_bitmaps(dom) == []


def test_unnamed_checkpoint_is_named_after_its_creation_time(drv):
    before = int(time.time())
    cp = drv.dom.checkpointCreateXML("<domaincheckpoint><description>nightly</description></domaincheckpoint>")
    after = int(time.time())
    name = cp.getName()
    assert name.isdigit() and before <= int(name) <= after, name
    xml = cp.getXMLDesc(NO_DOMAIN)
    assert f"<name>{name}</name>" in xml and "<description>nightly</description>" in xml
    assert f"<creationTime>{name}</creationTime>" in xml
    assert f"<disk name='vda' checkpoint='bitmap' bitmap='{name}'/>" in xml
    assert vb.error_of(cp.getParent)[0] == libvirt.VIR_ERR_NO_DOMAIN_CHECKPOINT
    cp.delete()


def test_delete_modes(drv):
    dom = drv.dom
    a, b, c, d = (create(dom, n) for n in "abcd")

    assert c.delete(CHILDREN_ONLY) == 0
    assert sorted(names(dom.listAllCheckpoints())) == ["a", "b", "c"]
    # The handle of a deleted checkpoint still has its name, but nothing else.
    assert d.getName() == "d"
    assert vb.error_of(lambda: d.getXMLDesc(0)) == not_found(drv, "no domain checkpoint with matching name 'd'")

    # Deleting one in the middle moves its children up.
    assert b.delete(0) == 0
    assert sorted(names(dom.listAllCheckpoints())) == ["a", "c"]
    assert c.getParent().getName() == "a"
    if drv.is_qemu:
        assert vb.engine_bitmaps(dom) == ["a", "c"]

    function = "qemuCheckpointDelete" if drv.is_qemu else "testDomainCheckpointDelete"
    assert vb.error_of(lambda: a.delete(1 << 30)) == (
        libvirt.VIR_ERR_INVALID_ARG, drv.from_driver, f"unsupported flags (0x40000000) in function {function}")
    assert a.delete(CHILDREN) == 0
    assert dom.listAllCheckpoints() == [] and a.getName() == "a"
    assert vb.error_of(lambda: a.delete(0)) == not_found(drv, "no domain checkpoint with matching name 'a'")
    if drv.is_qemu:
        assert vb.engine_bitmaps(dom) == []


def test_metadata_only_delete_and_redefine(drv):
    dom = drv.dom
    c1, c2 = create(dom, "c1"), create(dom, "c2")
    saved = [c1.getXMLDesc(0), c2.getXMLDesc(0)]
    assert c1.delete(CHILDREN | METADATA_ONLY) == 0
    assert dom.listAllCheckpoints() == []
    if drv.is_qemu:
        # The bitmaps stay in the image...
        assert vb.engine_bitmaps(dom) == ["c1", "c2"]
        # ... which is why a new c1 cannot be made: libvirt's trap, QEMU's error.
        assert vb.error_of(lambda: create(dom, "c1")) == (
            libvirt.VIR_ERR_INTERNAL_ERROR, FROM_QEMU,
            "internal error: unable to execute QEMU command 'transaction': Bitmap already exists: c1")
    # REDEFINE from the saved XML brings them back as they were.
    for xml in saved:
        dom.checkpointCreateXML(xml, REDEFINE)
    assert names(dom.listAllCheckpoints(TOPOLOGICAL)) == ["c1", "c2"]
    assert dom.checkpointLookupByName("c2").getParent().getName() == "c1"
    assert [dom.checkpointLookupByName(n).getXMLDesc(0) for n in ("c1", "c2")] == saved
    # The old handles work again: they are looked up by name.
    assert c2.getParent().getName() == "c1"
    assert vb.error_of(lambda: dom.checkpointCreateXML(vb.checkpoint_xml("c9"), VALIDATE)) == (
        libvirt.VIR_ERR_INVALID_ARG, FROM_DOMAIN_CHECKPOINT,
        "Flag 'VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE' is required by flag "
        "'VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE_VALIDATE'")
    assert c1.delete(CHILDREN) == 0
    if drv.is_qemu:
        assert vb.engine_bitmaps(dom) == []


def test_refused_checkpoints(drv):
    dom = drv.dom
    create(dom, "c1")
    assert vb.error_of(lambda: create(dom, "c1")) == (
        libvirt.VIR_ERR_OPERATION_FAILED, vb.FROM_DOMAIN, "operation failed: domain moment c1 already exists")
    assert vb.error_of(lambda: dom.checkpointCreateXML(
        "<domaincheckpoint><name>c9</name><disks><disk name='vdz'/></disks></domaincheckpoint>")) == (
        libvirt.VIR_ERR_CONFIG_UNSUPPORTED, FROM_DOMAIN_CHECKPOINT, "unsupported configuration: no disk named 'vdz'")
    code, domain, message = vb.error_of(lambda: dom.checkpointCreateXML("<domaincheckpoint><bogus/></domaincheckpoint>"))
    assert (code, domain) == (libvirt.VIR_ERR_XML_INVALID_SCHEMA, libvirt.VIR_FROM_XML)
    assert message.startswith("XML document failed to validate against schema: Unable to validate doc against "
                              "/usr/share/libvirt/schemas/domaincheckpoint.rng\n"), message
    assert names(dom.listAllCheckpoints()) == ["c1"]
    dom.checkpointLookupByName("c1").delete()


# --- the QEMU driver on real images ---------------------------------------------------------


@pytest.fixture(params=["running", "shutoff"])
def qemu_dom(request, qemu):
    """A domain "vm" on the QEMU driver, running or shut off."""
    conn = libvirt.open(qemu.uri)
    dom = qemu.define(conn, "vm", running=request.param == "running")
    yield dom
    conn.close()


@pytest.mark.qemu
def test_size_is_the_bytes_written_since(qemu, qemu_dom):
    dom = qemu_dom
    c1 = create(dom, "c1")
    qemu.write(dom, 0x42, 20 * MIB, MIB)
    c2 = create(dom, "c2")
    flags = libvirt.VIR_DOMAIN_CHECKPOINT_XML_SIZE | NO_DOMAIN
    assert "<disk name='vda' checkpoint='bitmap' bitmap='c1' size='1048576'/>" in c1.getXMLDesc(flags)
    assert "<disk name='vda' checkpoint='bitmap' bitmap='c2' size='0'/>" in c2.getXMLDesc(flags)
    # Every checkpoint's bitmap keeps recording.
    qemu.write(dom, 0x43, 0, 64 * 1024)
    assert "bitmap='c1' size='1114112'/>" in c1.getXMLDesc(flags)
    assert "bitmap='c2' size='65536'/>" in c2.getXMLDesc(flags)
    # Without the flag, no size.
    assert "size=" not in c1.getXMLDesc(NO_DOMAIN)
    if not dom.isActive():
        assert vb.bitmap_names(qemu.images["vm"]) == ["c1", "c2"]


@pytest.mark.qemu
def test_redefine_validate(qemu, qemu_dom):
    dom = qemu_dom
    running = dom.isActive()
    saved = create(dom, "c1").getXMLDesc(0)
    dom.checkpointLookupByName("c1").delete(METADATA_ONLY)
    # The bitmap is there and recording: accepted.
    assert dom.checkpointCreateXML(saved, REDEFINE | VALIDATE).getName() == "c1"
    dom.checkpointLookupByName("c1").delete(METADATA_ONLY)

    # The bitmap removed behind the driver's back.
    if running:
        dom.destroy()
    vb.run("qemu-img", "bitmap", "--remove", qemu.images["vm"], "c1")
    if running:
        dom.create()
    assert vb.error_of(lambda: dom.checkpointCreateXML(saved, REDEFINE | VALIDATE)) == (
        libvirt.VIR_ERR_CHECKPOINT_INCONSISTENT, FROM_QEMU,
        "checkpoint inconsistent: missing or broken bitmap 'c1' for disk 'vda'")
    assert dom.listAllCheckpoints() == []
    # Without VALIDATE, the metadata is taken as it is.
    assert dom.checkpointCreateXML(saved, REDEFINE).getName() == "c1"
    assert vb.error_of(lambda: dom.checkpointLookupByName("c1").delete(0)) == (
        libvirt.VIR_ERR_INTERNAL_ERROR, FROM_QEMU, "internal error: bitmap 'c1' not found in backing chain of 'vda'")
    dom.checkpointLookupByName("c1").delete(METADATA_ONLY)
    assert dom.listAllCheckpoints() == []


@pytest.mark.qemu
def test_checkpoints_persist_for_another_process(qemu, build_dir):
    conn = libvirt.open(qemu.uri)
    dom = qemu.define(conn, "vm", data=False)
    for name in ("c1", "c2", "c3"):
        create(dom, name)
    conn.close()
    script = (f"import libvirt\nd = libvirt.open({qemu.uri!r}).lookupByName('vm')\n"
              "print([c.getName() for c in d.listAllCheckpoints(libvirt.VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL)])\n"
              "print(d.checkpointLookupByName('c3').getParent().getName())\n"
              "d.checkpointLookupByName('c3').delete()\n")
    out = vb.python_subprocess(script, build_dir)
    assert (out.returncode, out.stdout) == (0, "['c1', 'c2', 'c3']\nc2\n"), out.stderr
    # What the other process deleted is gone here too, metadata and bitmap.
    conn = libvirt.open(qemu.uri)
    dom = conn.lookupByName("vm")
    assert names(dom.listAllCheckpoints(TOPOLOGICAL)) == ["c1", "c2"]
    assert sorted(os.listdir(os.path.join(qemu.root, "lib/qemu/checkpoint/vm"))) == [".current", "c1.xml", "c2.xml"]
    assert vb.bitmap_names(qemu.images["vm"]) == ["c1", "c2"]
    conn.close()


@pytest.mark.qemu
def test_raw_disks_must_be_left_out(qemu):
    conn = libvirt.open(qemu.uri)
    qcow2 = qemu.create_image("a.qcow2", "16M")
    raw = qemu.create_image("b.raw", "8M", fmt="raw")
    dom = conn.defineXML(qemu.domain_xml("two", [("vda", qcow2, "qcow2"), ("vdb", raw, "raw")]))
    assert vb.error_of(lambda: create(dom, "c1")) == (
        libvirt.VIR_ERR_CONFIG_UNSUPPORTED, FROM_QEMU,
        "unsupported configuration: checkpoint for disk vdb unsupported for storage type raw")
    cp = dom.checkpointCreateXML("<domaincheckpoint><name>c1</name><disks><disk name='vda'/>"
                                 "<disk name='vdb' checkpoint='no'/></disks></domaincheckpoint>")
    assert "<disk name='vdb' checkpoint='no'/>" in cp.getXMLDesc(NO_DOMAIN)
    assert vb.bitmap_names(qcow2) == ["c1"]
    conn.close()


# --- differential: test:///default with the system's libvirt and with virbackup -----------

CHECKPOINT_SNIPPET = r"""
import re
c = libvirt.open('test:///default')
d = c.lookupByName('test')
def N(cps): return [x.getName() for x in cps]
def S(cps): return sorted(N(cps))
def X(cp, flags=0): return re.sub(r'<creationTime>\d+</creationTime>', '<creationTime/>', cp.getXMLDesc(flags))
F = libvirt
c1 = d.checkpointCreateXML('<domaincheckpoint><name>c1</name><description>first</description></domaincheckpoint>')
c2 = d.checkpointCreateXML('<domaincheckpoint><name>c2</name><disks><disk name="vda"/></disks></domaincheckpoint>')
c3 = d.checkpointCreateXML('<domaincheckpoint><name>c3</name></domaincheckpoint>')
u = d.checkpointCreateXML('<domaincheckpoint/>')
E(lambda: u.getName().isdigit())
E(lambda: u.delete())
b = d.checkpointCreateXML("<domaincheckpoint><name>b</name><parent><name>c1</name></parent>"
                          "<creationTime>1234</creationTime></domaincheckpoint>", F.VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE)
E(lambda: S(d.listAllCheckpoints()))
for flag in ['ROOTS', 'TOPOLOGICAL', 'LEAVES', 'NO_LEAVES', 'DESCENDANTS', 'ROOTS|TOPOLOGICAL', 'LEAVES|NO_LEAVES']:
    value = eval('|'.join('F.VIR_DOMAIN_CHECKPOINT_LIST_' + f for f in flag.split('|')))
    print(flag); E(lambda: S(d.listAllCheckpoints(value)))
E(lambda: N(d.listAllCheckpoints(F.VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL))[0])
E(lambda: S(c1.listAllChildren())); E(lambda: S(c1.listAllChildren(F.VIR_DOMAIN_CHECKPOINT_LIST_DESCENDANTS)))
E(lambda: S(c1.listAllChildren(F.VIR_DOMAIN_CHECKPOINT_LIST_LEAVES)))
E(lambda: S(c1.listAllChildren(F.VIR_DOMAIN_CHECKPOINT_LIST_DESCENDANTS | F.VIR_DOMAIN_CHECKPOINT_LIST_NO_LEAVES)))
E(lambda: N(c1.listAllChildren(F.VIR_DOMAIN_CHECKPOINT_LIST_DESCENDANTS | F.VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL))[-1])
E(lambda: c3.getParent().getName()); E(lambda: b.getParent().getName()); E(c1.getParent)
E(lambda: d.checkpointLookupByName('c2').getName()); E(lambda: d.checkpointLookupByName('nosuch'))
E(lambda: d.checkpointLookupByName('c2', 1))
E(lambda: X(c2)); E(lambda: X(c2, F.VIR_DOMAIN_CHECKPOINT_XML_NO_DOMAIN)); E(lambda: X(b, F.VIR_DOMAIN_CHECKPOINT_XML_NO_DOMAIN))
E(lambda: X(c1, F.VIR_DOMAIN_CHECKPOINT_XML_SIZE | F.VIR_DOMAIN_CHECKPOINT_XML_NO_DOMAIN))
E(lambda: X(c1, 1 << 30))
E(lambda: d.checkpointCreateXML('<domaincheckpoint><name>c1</name></domaincheckpoint>'))
E(lambda: d.checkpointCreateXML('<domaincheckpoint><name>x</name><disks><disk name="vdz"/></disks></domaincheckpoint>'))
E(lambda: d.checkpointCreateXML('<domaincheckpoint><name>x</name></domaincheckpoint>', F.VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE_VALIDATE))
E(lambda: d.checkpointCreateXML('<domaincheckpoint><name>x</name></domaincheckpoint>', 1 << 30))
E(lambda: d.checkpointCreateXML('<domaincheckpoint><name>c1</name></domaincheckpoint>', F.VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE))
E(lambda: c2.delete(F.VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN_ONLY)); E(lambda: S(d.listAllCheckpoints()))
E(c3.getName); E(lambda: X(c3))
saved = c1.getXMLDesc(0)
E(lambda: c2.delete(0)); E(lambda: S(c1.listAllChildren()))
E(lambda: c1.delete(F.VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY)); E(lambda: S(d.listAllCheckpoints(F.VIR_DOMAIN_CHECKPOINT_LIST_ROOTS)))
E(lambda: d.checkpointCreateXML(saved, F.VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE).getName())
E(lambda: c1.getXMLDesc(0) == saved); E(lambda: S(c1.listAllChildren()))
E(lambda: S(d.listAllCheckpoints(F.VIR_DOMAIN_CHECKPOINT_LIST_ROOTS)))
E(lambda: c1.delete(F.VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN))
E(lambda: b.delete(1 << 30))
E(lambda: b.delete(F.VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN)); E(lambda: d.listAllCheckpoints())
E(lambda: b.delete(0)); E(b.getName)
"""


def test_differential_checkpoints(build_dir):
    """Checkpoints on test:///default behave as libvirt's: tree, listings, XML, errors."""
    mine, real = vb.run_both(build_dir, CHECKPOINT_SNIPPET)
    assert mine == real

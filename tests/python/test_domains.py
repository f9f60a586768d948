"""Domains through python3-libvirt on both drivers: definitions and life cycle, getters,
autostart, block info, guest file systems, and libvirt_qemu's monitor and agent calls."""

import json
import os
import re

import pytest

import vbhelpers as vb
from vbhelpers import FROM_DOMAIN, FROM_NONE, FROM_QEMU, FROM_TEST, MIB

libvirt = vb.import_or_skip("libvirt")
libvirt_qemu = vb.import_or_skip("libvirt_qemu")

NOT_RUNNING = (libvirt.VIR_ERR_OPERATION_INVALID, FROM_DOMAIN, "Requested operation is not valid: domain is not running")
NO_AGENT = (libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED, FROM_QEMU, "argument unsupported: QEMU guest agent is not configured")


def new_domain_xml(drv, name):
    """A definition for a second domain of the driver (shut off once defined)."""
    if drv.is_qemu:
        image = drv.env.create_image(f"{name}.qcow2")
        drv.env.images[name] = image
        return vb.QemuEnv.domain_xml(name, [("vda", image, "qcow2")])
    return vb.QemuEnv.domain_xml(name, [("vda", f"/tmp/{name}.img", "qcow2")], domain_type="test")


def test_running_domain_getters(drv):
    dom = drv.dom
    assert dom.isActive() == 1 and dom.isPersistent() == 1
    assert dom.autostart() == 0
    state, reason = dom.state()
    assert state == libvirt.VIR_DOMAIN_RUNNING
    info = dom.info()
    assert info[0] == libvirt.VIR_DOMAIN_RUNNING
    xml = dom.XMLDesc(0)
    uuid = re.search(r"<uuid>(.*)</uuid>", xml).group(1)
    assert dom.UUIDString() == uuid and dom.UUID() == bytes.fromhex(uuid.replace("-", ""))
    assert f"<name>{dom.name()}</name>" in xml and "<target dev='vda' bus='virtio'/>" in xml
    assert xml.startswith(f"<domain type='{'kvm' if drv.is_qemu else 'test'}' id='{dom.ID()}'>")
    if drv.is_qemu:
        assert (reason, dom.ID()) == (libvirt.VIR_DOMAIN_RUNNING_BOOTED, 1)
        # 256 MiB, 1 vCPU as defined; no guest, no CPU time.
        assert info[1:] == [262144, 262144, 1, 0]
        disk = os.path.join(drv.env.root, "run/qemu/vm/disks/vda")
        assert f"<virbackup:disk target='vda' interface='fuse' path='{disk}'/>" in xml
        info = json.loads(vb.run("qemu-img", "info", "-U", "--output=json", drv.env.images["vm"]))
        assert os.path.getsize(disk) == info["virtual-size"], "the file is the disk as the guest sees it"
        assert f"<source file='{drv.env.images['vm']}'/>" in xml
        # The inactive definition has no runtime part.
        inactive = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        assert "virbackup:runtime" not in inactive and " id=" not in inactive.splitlines()[0]
    else:
        assert (dom.name(), dom.ID(), dom.UUIDString()) == ("test", 1, vb.TEST_UUID)
        assert info[1:4] == [8388608, 2097152, 2]
        assert "<source file='/guest/diskimage1'/>" in xml
    assert vb.error_of(lambda: dom.XMLDesc(1 << 30)) == (
        libvirt.VIR_ERR_INVALID_ARG, drv.from_driver,
        f"unsupported flags (0x40000000) in function {'qemu' if drv.is_qemu else 'test'}DomainGetXMLDesc")


def test_define_start_stop_undefine(drv):
    conn = drv.conn
    driver = "qemu" if drv.is_qemu else "test"
    dom = conn.defineXMLFlags(new_domain_xml(drv, "py-life"), libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
    assert (dom.name(), dom.isActive(), dom.isPersistent(), dom.ID()) == ("py-life", 0, 1, -1)
    assert dom.state() == [libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_UNKNOWN]
    assert dom.info()[0] == libvirt.VIR_DOMAIN_SHUTOFF
    assert conn.lookupByUUIDString(dom.UUIDString()).name() == "py-life"
    assert vb.error_of(dom.destroy) == NOT_RUNNING
    # libvirt's test driver says it differently.
    assert vb.error_of(dom.shutdown) == (NOT_RUNNING if drv.is_qemu else (
        libvirt.VIR_ERR_INTERNAL_ERROR, FROM_TEST, "internal error: domain 'py-life' not running"))
    assert vb.error_of(lambda: conn.defineXMLFlags("<domain/>", 1 << 5)) == (
        libvirt.VIR_ERR_INVALID_ARG, drv.from_driver, f"unsupported flags (0x20) in function {driver}DomainDefineXMLFlags")

    # Defined again from its own XML: the same domain, updated.
    again = conn.defineXML(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    assert again.UUIDString() == dom.UUIDString()

    assert dom.create() == 0
    assert dom.isActive() == 1 and dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    assert conn.lookupByName("py-life").ID() > 0
    assert vb.error_of(dom.create) == ((
        libvirt.VIR_ERR_OPERATION_INVALID, FROM_QEMU, "Requested operation is not valid: domain is already running")
        if drv.is_qemu else (libvirt.VIR_ERR_INTERNAL_ERROR, FROM_TEST, "internal error: Domain 'py-life' is already running"))

    assert dom.shutdown() == 0
    assert dom.state() == [libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN]
    assert dom.createWithFlags(0) == 0
    assert dom.destroy() == 0
    assert dom.state() == [libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED]
    assert conn.lookupByName("py-life").ID() == -1

    # Undefining a running domain makes it transient; stopping it then removes it.
    dom.create()
    assert dom.undefineFlags(0) == 0
    assert (dom.isActive(), dom.isPersistent()) == (1, 0)
    assert [d.name() for d in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_TRANSIENT)] == ["py-life"]
    dom.destroy()
    code, domain, message = vb.error_of(lambda: conn.lookupByName("py-life"))
    assert (code, domain) == (libvirt.VIR_ERR_NO_DOMAIN, drv.from_driver)
    assert code == libvirt.VIR_ERR_NO_DOMAIN
    assert vb.error_of(dom.info) == (
        libvirt.VIR_ERR_NO_DOMAIN, drv.from_driver,
        f"Domain not found: no domain with matching uuid '{dom.UUIDString()}' (py-life)")


def test_define_validate_checks_the_schema(drv):
    xml = new_domain_xml(drv, "py-bogus").replace("</devices>", "</devices>\n  <bogus/>")
    # Without the flag, libvirt ignores what it does not know.
    drv.conn.defineXMLFlags(xml, 0).undefine()
    try:
        code, domain, message = vb.error_of(lambda: drv.conn.defineXMLFlags(xml, libvirt.VIR_DOMAIN_DEFINE_VALIDATE))
    finally:
        for dom in drv.conn.listAllDomains(0):
            if dom.name() == "py-bogus":
                dom.undefine()
    assert (code, domain) == (libvirt.VIR_ERR_XML_INVALID_SCHEMA, libvirt.VIR_FROM_XML)
    # (What follows the first line is libxml2's wording.)
    assert message.startswith("XML document failed to validate against schema: Unable to validate doc against "
                              "/usr/share/libvirt/schemas/domain.rng"), message


def test_autostart(drv, build_dir):
    dom = drv.dom
    assert dom.autostart() == 0
    assert dom.setAutostart(1) == 0
    assert dom.autostart() == 1
    names = [d.name() for d in drv.conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_AUTOSTART)]
    assert names == [dom.name()]
    if drv.is_qemu:
        # Persisted: a second process on the same root sees it.
        def seen_by_another_process():
            script = (f"import libvirt\nprint(libvirt.open({drv.env.uri!r}).lookupByName('vm').autostart())")
            out = vb.python_subprocess(script, build_dir)
            assert out.returncode == 0, out.stderr
            return int(out.stdout)

        assert seen_by_another_process() == 1
        assert os.path.exists(os.path.join(drv.env.root, "etc/qemu/autostart/vm.xml"))
        dom.setAutostart(0)
        assert seen_by_another_process() == 0
    dom.setAutostart(0)
    assert dom.autostart() == 0
    assert drv.conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_AUTOSTART) == []


@pytest.mark.qemu
def test_autostart_is_refused_for_a_transient_domain(qemu):
    conn = libvirt.open(qemu.uri)
    dom = qemu.define(conn, "tr", running=True, data=False)
    dom.setAutostart(1)
    dom.undefine()  # transient now, and no longer autostarted
    assert dom.autostart() == 0
    assert vb.error_of(lambda: dom.setAutostart(1)) == (
        libvirt.VIR_ERR_OPERATION_INVALID, FROM_QEMU,
        "Requested operation is not valid: cannot set autostart for transient domain")
    assert not os.path.exists(os.path.join(qemu.root, "etc/qemu/autostart/tr.xml"))
    dom.destroy()
    conn.close()


def test_block_info(drv):
    dom = drv.dom
    if drv.is_qemu:
        image = drv.env.images["vm"]
        capacity, allocation, physical = dom.blockInfo("vda")
        assert capacity == vb.image_info(image)["virtual-size"] == 64 * MIB
        assert physical == os.path.getsize(image)
        assert allocation > 0
        # The disk can be named by its source too.
        assert dom.blockInfo(image)[0] == capacity
    else:
        # libvirt's test driver's figures for every disk.
        assert dom.blockInfo("vda") == [1099506450432, 1099511627776, 1099511627776]
        assert dom.blockInfo("/guest/diskimage1") == dom.blockInfo("vda")
    assert vb.error_of(lambda: dom.blockInfo("vdz")) == (
        libvirt.VIR_ERR_INVALID_ARG, drv.from_driver, "invalid argument: invalid path vdz not assigned to domain")


@pytest.mark.qemu
def test_block_info_of_a_shut_off_domain_follows_the_image(qemu):
    conn = libvirt.open(qemu.uri)
    dom = qemu.define(conn, "off")
    before = dom.blockInfo("vda")
    assert before[0] == 64 * MIB and before[2] == os.path.getsize(qemu.images["off"])
    vb.write_image(qemu.images["off"], 0x5a, 20 * MIB, 4 * MIB)
    after = dom.blockInfo("vda")
    assert after[2] == os.path.getsize(qemu.images["off"]) >= before[2] + 4 * MIB
    conn.close()


def test_fs_freeze_and_thaw(drv):
    dom = drv.dom
    if drv.is_qemu:
        assert vb.error_of(dom.fsFreeze) == NO_AGENT
        assert vb.error_of(dom.fsThaw) == NO_AGENT
        assert vb.error_of(lambda: dom.fsThaw(["/"])) == (
            libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED, FROM_QEMU, "argument unsupported: specifying mountpoints is not supported")
        dom.destroy()
        assert vb.error_of(dom.fsFreeze) == NOT_RUNNING
        assert vb.error_of(dom.fsThaw) == NOT_RUNNING
        return
    # libvirt's test driver: two fictional file systems, "/" and "/boot"; the calls
    # return how many changed.
    assert dom.fsFreeze() == 2
    assert dom.fsFreeze() == 0
    assert dom.fsThaw(["/"]) == 1
    assert dom.fsThaw() == 1
    assert dom.fsFreeze(["/boot"]) == 1
    assert dom.fsThaw(["/boot", "/"]) == 1
    assert vb.error_of(lambda: dom.fsFreeze(["/nope"])) == (
        libvirt.VIR_ERR_OPERATION_INVALID, FROM_TEST, "Requested operation is not valid: mount point not found: /nope")
    assert vb.error_of(lambda: dom.fsFreeze(None, 1)) == (
        libvirt.VIR_ERR_INVALID_ARG, FROM_TEST, "unsupported flags (0x1) in function testDomainFSFreeze")
    off = drv.conn.defineXML(new_domain_xml(drv, "py-fs"))
    try:
        assert vb.error_of(off.fsFreeze) == NOT_RUNNING
    finally:
        off.undefine()


def test_qemu_monitor_command(drv):
    dom = drv.dom
    command = '{"execute":"query-block-jobs"}'
    if not drv.is_qemu:
        assert vb.error_of(lambda: libvirt_qemu.qemuMonitorCommand(dom, command, 0)) == (
            libvirt.VIR_ERR_NO_SUPPORT, FROM_NONE,
            "this function is not supported by the connection driver: virDomainQemuMonitorCommand")
        return
    reply = json.loads(libvirt_qemu.qemuMonitorCommand(dom, command, 0))
    assert reply["return"] == []
    version = json.loads(libvirt_qemu.qemuMonitorCommand(dom, '{"execute":"query-version"}', 0))["return"]
    assert version["qemu"]["major"] * 1_000_000 + version["qemu"]["minor"] * 1000 + version["qemu"]["micro"] == \
        drv.conn.getVersion()
    # QEMU's own errors come back as its reply.
    reply = json.loads(libvirt_qemu.qemuMonitorCommand(dom, '{"execute":"no-such-command"}', 0))
    assert reply["error"]["class"] == "CommandNotFound"
    # No human monitor: refused with a reason, not sent.
    code, domain, message = vb.error_of(lambda: libvirt_qemu.qemuMonitorCommand(
        dom, "info block", libvirt_qemu.VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP))
    assert (code, domain) == (libvirt.VIR_ERR_OPERATION_UNSUPPORTED, FROM_QEMU)
    assert "HMP" in message and "QMP" in message, message
    assert vb.error_of(lambda: libvirt_qemu.qemuMonitorCommand(dom, command, 1 << 4)) == (
        libvirt.VIR_ERR_INVALID_ARG, FROM_QEMU,
        "unsupported flags (0x10) in function qemuDomainQemuMonitorCommandWithFiles")
    dom.destroy()
    assert vb.error_of(lambda: libvirt_qemu.qemuMonitorCommand(dom, command, 0)) == NOT_RUNNING


def test_qemu_agent_command(drv):
    dom = drv.dom
    command = '{"execute":"guest-ping"}'
    if not drv.is_qemu:
        assert vb.error_of(lambda: libvirt_qemu.qemuAgentCommand(dom, command, 5, 0)) == (
            libvirt.VIR_ERR_NO_SUPPORT, FROM_NONE,
            "this function is not supported by the connection driver: virDomainQemuAgentCommand")
        return
    assert vb.error_of(lambda: libvirt_qemu.qemuAgentCommand(
        dom, command, libvirt_qemu.VIR_DOMAIN_QEMU_AGENT_COMMAND_DEFAULT, 0)) == NO_AGENT
    dom.destroy()
    assert vb.error_of(lambda: libvirt_qemu.qemuAgentCommand(dom, command, 5, 0)) == NOT_RUNNING


@pytest.mark.qemu
def test_undefine_with_checkpoints(qemu):
    conn = libvirt.open(qemu.uri)
    dom = qemu.define(conn, "cp", data=False)
    dom.checkpointCreateXML(vb.checkpoint_xml("c1"))
    with pytest.raises(libvirt.libvirtError) as info:
        dom.undefine()
    assert (info.value.get_error_code(), info.value.get_error_message()) == (
        libvirt.VIR_ERR_OPERATION_INVALID, "Requested operation is not valid: cannot delete inactive domain with 1 checkpoints")
    assert dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA) == 0
    assert conn.listAllDomains(0) == []
    # Only metadata goes: the bitmap stays in the image.
    assert vb.bitmap_names(qemu.images["cp"]) == ["c1"]
    assert not os.path.exists(os.path.join(qemu.root, "lib/qemu/checkpoint/cp/c1.xml"))
    conn.close()


@pytest.mark.qemu
def test_undefine_with_checkpoints_error_domain(qemu):
    conn = libvirt.open(qemu.uri)
    dom = qemu.define(conn, "cp", data=False)
    dom.checkpointCreateXML(vb.checkpoint_xml("c1"))
    assert vb.error_of(dom.undefine) == (
        libvirt.VIR_ERR_OPERATION_INVALID, FROM_QEMU,
        "Requested operation is not valid: cannot delete inactive domain with 1 checkpoints")
    conn.close()


@pytest.mark.qemu
def test_domains_and_definitions_are_seen_by_a_second_connection(qemu):
    first = libvirt.open(qemu.uri)
    dom = qemu.define(first, "shared", running=True, data=False)
    second = libvirt.open(qemu.uri)
    other = second.lookupByName("shared")
    assert (other.UUIDString(), other.isActive(), other.ID()) == (dom.UUIDString(), 1, dom.ID())
    other.destroy()
    assert dom.isActive() == 0
    assert os.path.exists(os.path.join(qemu.root, "etc/qemu/shared.xml"))
    first.close()
    second.close()


# --- differential: test:///default with the system's libvirt and with virbackup -----------

DOMAIN_SNIPPET = """
c = libvirt.open('test:///default')
d = c.lookupByName('test')
E(d.name); E(d.ID); E(d.UUIDString); E(d.isActive); E(d.isPersistent); E(d.autostart); E(d.state)
E(lambda: d.info()[:4]); E(lambda: d.XMLDesc(0)); E(lambda: d.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
E(lambda: d.blockInfo('vda')); E(lambda: d.blockInfo('/guest/diskimage1')); E(lambda: d.blockInfo('vdz'))
E(lambda: d.blockInfo('vda', 1))
E(d.fsFreeze); E(d.fsFreeze); E(lambda: d.fsThaw(['/'])); E(d.fsThaw); E(lambda: d.fsFreeze(['/boot']))
E(lambda: d.fsThaw(['/boot', '/'])); E(lambda: d.fsFreeze(['/nope'])); E(lambda: d.fsFreeze(None, 1))
E(lambda: d.setAutostart(1)); E(d.autostart)
E(lambda: [x.name() for x in c.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_AUTOSTART)])
E(lambda: d.setAutostart(0)); E(d.autostart)
E(lambda: d.undefineFlags(1 << 30)); E(lambda: d.XMLDesc(1 << 30))
import libvirt_qemu
E(lambda: libvirt_qemu.qemuMonitorCommand(d, '{"execute":"query-block-jobs"}', 0))
E(lambda: libvirt_qemu.qemuAgentCommand(d, '{"execute":"guest-ping"}', 5, 0))
xml = ("<domain type='test'><name>py</name><uuid>0e3ad2b8-0f6a-4a2f-8a3f-1d2c3b4a5f60</uuid>"
       "<memory>1024</memory><os><type>hvm</type></os><devices><disk type='file' device='disk'>"
       "<source file='/tmp/py.img'/><target dev='vda'/></disk></devices></domain>")
E(lambda: c.defineXMLFlags(xml, 1 << 5))
x = c.defineXMLFlags(xml, libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
E(lambda: (x.name(), x.UUIDString(), x.state(), x.ID(), x.isActive(), x.isPersistent(), x.info()[:4]))
E(x.fsFreeze); E(x.destroy); E(x.shutdown)
E(lambda: x.checkpointCreateXML('<domaincheckpoint><name>a</name></domaincheckpoint>'))
E(x.create); E(lambda: (x.state(), x.ID())); E(x.create)
E(x.shutdown); E(x.state)
E(x.create); E(x.destroy); E(x.state); E(x.ID)
E(lambda: c.defineXML(x.XMLDesc(0)).UUIDString())
E(lambda: x.createWithFlags(0)); E(lambda: x.undefineFlags(0)); E(lambda: (x.isActive(), x.isPersistent()))
E(lambda: [y.name() for y in c.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_TRANSIENT)])
E(x.destroy); E(lambda: c.lookupByName('py')); E(x.info)
E(lambda: [y.name() for y in c.listAllDomains(0)])
"""


def test_differential_domains(build_dir):
    """The same calls, results and errors as libvirt's test driver."""
    mine, real = vb.run_both(build_dir, DOMAIN_SNIPPET)
    assert mine == real


TEST_DOMAIN_XML = ("<domain type='test'><name>py-x</name><memory>1024</memory><os><type>hvm</type></os><devices>"
                   "<disk type='file' device='disk'><source file='/tmp/py.img'/><target dev='vda'/></disk>"
                   "</devices></domain>")


def test_shutdown_clears_the_handle_id(test_conn):
    dom = test_conn.defineXML(TEST_DOMAIN_XML)
    try:
        dom.create()
        assert dom.ID() > 0
        dom.shutdown()
        assert dom.ID() == -1
    finally:
        dom.undefine()


@pytest.mark.xfail(strict=True, reason="test driver: the XML of a defined domain is echoed as given; libvirt "
                   "formats its parsed definition, with defaults (currentMemory, vcpu, arch, boot, clock, "
                   "on_poweroff..., the disk bus)")
def test_defined_domain_xml_is_libvirt_formatted(test_conn):
    dom = test_conn.defineXML(TEST_DOMAIN_XML)
    try:
        xml = dom.XMLDesc(0)
    finally:
        dom.undefine()
    # What libvirt 9.0's test driver prints for it.
    assert "<memory unit='KiB'>1024</memory>" in xml
    assert "<currentMemory unit='KiB'>1024</currentMemory>" in xml
    assert "<vcpu placement='static'>1</vcpu>" in xml
    assert "<type arch='i686'>hvm</type>" in xml
    assert "<target dev='vda' bus='virtio'/>" in xml

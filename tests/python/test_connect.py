"""Connections, lookups, storage pools and networks, unsupported calls and the error
model, through python3-libvirt, on both drivers; with differential runs of the same calls
against the system's libvirt on test:///default."""

import socket
import subprocess

import pytest

import vbhelpers as vb
from vbhelpers import FROM_DOMAIN, FROM_DOMAIN_CHECKPOINT, FROM_NETWORK, FROM_NONE, FROM_STORAGE

libvirt = vb.import_or_skip("libvirt")


def qemu_version():
    """libvirt's version number of the qemu-storage-daemon the QEMU driver runs."""
    words = subprocess.run(["qemu-storage-daemon", "--version"], capture_output=True, text=True).stdout.split()
    major, minor, micro = (int(x) for x in words[words.index("version") + 1].split("."))
    return major * 1_000_000 + minor * 1_000 + micro


def test_library_is_virbackup(build_dir):
    assert vb.loaded_library().startswith(build_dir)
    assert not vb.is_system_path(vb.loaded_library())
    qemu_lib = vb.loaded_library("libvirt-qemu.so.0")
    assert qemu_lib is not None and qemu_lib.startswith(build_dir), qemu_lib
    assert libvirt.getVersion() == 9_000_000


def test_connection_getters(drv):
    conn = drv.conn
    assert conn.getType() == ("QEMU" if drv.is_qemu else "TEST")
    assert conn.getURI() == (drv.env.uri if drv.is_qemu else "test:///default")
    assert conn.getLibVersion() == 9_000_000
    assert conn.getVersion() == (qemu_version() if drv.is_qemu else 2)
    # (The differential run checks it is exactly libvirt's, short name or FQDN.)
    assert conn.getHostname().split(".")[0] == socket.gethostname().split(".")[0]
    assert (conn.isAlive(), conn.isSecure(), conn.isEncrypted()) == (1, 1, 0)


def test_read_only_connection_refuses_writes(drv):
    ro = libvirt.openReadOnly(drv.conn.getURI())
    closed = False
    try:
        assert ro.isAlive() == 1 and ro.getURI() == drv.conn.getURI()
        dom = ro.lookupByName(drv.dom.name())
        # Reading works.
        assert dom.isActive() == 1 and dom.UUIDString() == drv.dom.UUIDString()
        assert dom.listAllCheckpoints() == []

        def denied(api):
            return (libvirt.VIR_ERR_OPERATION_DENIED, FROM_DOMAIN,
                    f"operation forbidden: read only access prevents {api}")

        assert vb.error_of(dom.destroy) == denied("virDomainDestroy")
        assert vb.error_of(lambda: dom.setAutostart(1)) == denied("virDomainSetAutostart")
        assert vb.error_of(lambda: ro.defineXML(drv.dom.XMLDesc(0))) == denied("virDomainDefineXML")
        assert vb.error_of(lambda: dom.backupBegin("<domainbackup/>", None)) == denied("virDomainBackupBegin")
        assert vb.error_of(lambda: dom.checkpointCreateXML("<domaincheckpoint/>")) == (
            libvirt.VIR_ERR_OPERATION_DENIED, FROM_DOMAIN_CHECKPOINT,
            "operation forbidden: read only access prevents virDomainCheckpointCreateXML")
        assert vb.error_of(lambda: dom.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE)) == (
            libvirt.VIR_ERR_OPERATION_DENIED, FROM_DOMAIN, "operation forbidden: virDomainGetXMLDesc with secure flag")
        # Nothing changed.
        assert drv.dom.isActive() == 1
        # The domain handle still holds a reference to the connection.
        closed = True
        assert ro.close() == 1
        assert dom.isActive() == 1
    finally:
        if not closed:
            ro.close()


def test_open_auth(drv):
    uri = drv.conn.getURI()
    asked = []

    def callback(credentials, data):
        asked.append((credentials, data))
        return 0

    conn = libvirt.openAuth(uri, [[libvirt.VIR_CRED_AUTHNAME, libvirt.VIR_CRED_PASSPHRASE], callback, "data"], 0)
    assert conn.getURI() == uri
    dom = conn.lookupByName(drv.dom.name())
    assert dom.isActive() == 1
    del dom
    # A local driver asks for no credentials.
    assert asked == []
    assert conn.close() == 0

    # No credential types and no callback.
    conn = libvirt.openAuth(uri, [[], None, None], 0)
    assert conn.getType() == drv.conn.getType()
    assert conn.close() == 0

    # VIR_CONNECT_RO makes a read-only connection.
    ro = libvirt.openAuth(uri, [[libvirt.VIR_CRED_AUTHNAME], None, None], libvirt.VIR_CONNECT_RO)
    dom = ro.lookupByName(drv.dom.name())
    assert vb.error_of(dom.destroy)[0] == libvirt.VIR_ERR_OPERATION_DENIED
    del dom
    assert ro.close() == 0


def test_open_with_default_uri(monkeypatch):
    monkeypatch.delenv("LIBVIRT_DEFAULT_URI", raising=False)
    conn = libvirt.open()
    assert conn.getURI() == "test:///default"
    assert conn.close() == 0
    conn = libvirt.openReadOnly(None)
    assert conn.getURI() == "test:///default"
    assert conn.close() == 0


def test_close_and_close_callbacks(drv):
    conn = libvirt.open(drv.conn.getURI())
    calls = []
    assert conn.registerCloseCallback(lambda c, reason, opaque: calls.append((reason, opaque)), "opaque") == 0
    assert conn.unregisterCloseCallback() is None
    assert conn.registerCloseCallback(lambda c, reason, opaque: calls.append((reason, opaque)), "again") == 0
    dom = conn.lookupByName(drv.dom.name())
    # The domain handle holds a reference: close() reports it, and the handle still works.
    assert conn.close() == 1
    assert dom.name() == drv.dom.name() and dom.isActive() == 1
    # A close the application asked for is not reported to the callback.
    assert calls == []
    # The bindings drop the pointer: a closed connection is an invalid one.
    assert vb.error_of(conn.getURI) == (
        libvirt.VIR_ERR_INVALID_CONN, FROM_DOMAIN, "invalid connection pointer in virConnectGetURI")


def test_list_all_domains_with_flags(drv):
    conn = drv.conn
    name = drv.dom.name()
    extra_xml = vb.QemuEnv.domain_xml(
        "py-off", [("vda", drv.env.create_image("off.qcow2") if drv.is_qemu else "/tmp/py-off.img", "qcow2")],
        domain_type="kvm" if drv.is_qemu else "test")
    off = conn.defineXML(extra_xml)
    try:
        def names(flags):
            return sorted(d.name() for d in conn.listAllDomains(flags))

        assert names(0) == sorted([name, "py-off"])
        assert names(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE) == [name]
        assert names(libvirt.VIR_CONNECT_LIST_DOMAINS_RUNNING) == [name]
        assert names(libvirt.VIR_CONNECT_LIST_DOMAINS_INACTIVE) == ["py-off"]
        assert names(libvirt.VIR_CONNECT_LIST_DOMAINS_SHUTOFF) == ["py-off"]
        assert names(libvirt.VIR_CONNECT_LIST_DOMAINS_PERSISTENT) == sorted([name, "py-off"])
        assert names(libvirt.VIR_CONNECT_LIST_DOMAINS_TRANSIENT) == []
        assert names(libvirt.VIR_CONNECT_LIST_DOMAINS_PAUSED) == []
        assert names(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE | libvirt.VIR_CONNECT_LIST_DOMAINS_INACTIVE) == \
            sorted([name, "py-off"])
        assert names(libvirt.VIR_CONNECT_LIST_DOMAINS_NO_CHECKPOINT) == sorted([name, "py-off"])
        assert names(libvirt.VIR_CONNECT_LIST_DOMAINS_HAS_CHECKPOINT) == []
        cp = drv.dom.checkpointCreateXML(vb.checkpoint_xml("c1"))
        assert names(libvirt.VIR_CONNECT_LIST_DOMAINS_HAS_CHECKPOINT) == [name]
        assert names(libvirt.VIR_CONNECT_LIST_DOMAINS_NO_CHECKPOINT) == ["py-off"]
        cp.delete()
        assert conn.numOfDomains() == 1
        # The older listings: ids of active domains, names of inactive ones.
        assert conn.listDomainsID() == [drv.dom.ID()]
        assert conn.numOfDefinedDomains() == 1
        assert conn.listDefinedDomains() == ["py-off"]
        assert vb.error_of(lambda: conn.listAllDomains(1 << 30)) == (
            libvirt.VIR_ERR_INVALID_ARG, drv.from_driver,
            f"unsupported flags (0x40000000) in function {'qemu' if drv.is_qemu else 'test'}ConnectListAllDomains")
    finally:
        off.undefine()
    assert [d.name() for d in conn.listAllDomains(0)] == [name]


def test_unknown_domain_lookups(drv):
    conn = drv.conn
    uuid = "6695eb01-f6a4-8304-79aa-97f2502e1930"
    if drv.is_qemu:
        expected = [
            (lambda: conn.lookupByName("nosuch"), "Domain not found: no domain with matching name 'nosuch'"),
            (lambda: conn.lookupByID(99), "Domain not found: no domain with matching id 99"),
            (lambda: conn.lookupByUUIDString(uuid), f"Domain not found: no domain with matching uuid '{uuid}'"),
        ]
    else:
        # libvirt's test driver gives no detail.
        expected = [(lambda: conn.lookupByName("nosuch"), "Domain not found"),
                    (lambda: conn.lookupByID(99), "Domain not found"),
                    (lambda: conn.lookupByUUIDString(uuid), "Domain not found")]
    for call, message in expected:
        assert vb.error_of(call) == (libvirt.VIR_ERR_NO_DOMAIN, drv.from_driver, message)
    # And the existing one, three ways.
    assert conn.lookupByName(drv.dom.name()).UUIDString() == drv.dom.UUIDString()
    assert conn.lookupByUUIDString(drv.dom.UUIDString()).name() == drv.dom.name()
    assert conn.lookupByID(drv.dom.ID()).name() == drv.dom.name()


def test_storage_pools_and_networks_are_not_found(drv):
    """The drivers manage no pools or networks: listings are empty and lookups fail as
    on a libvirt host whose storage and network drivers have none. The errors carry the
    storage and network drivers' domains on the QEMU driver, and the test driver's own
    domain on test:///default (as all of libvirt's test driver's errors do)."""
    conn = drv.conn
    from_storage = FROM_STORAGE if drv.is_qemu else libvirt.VIR_FROM_TEST
    from_network = FROM_NETWORK if drv.is_qemu else libvirt.VIR_FROM_TEST
    assert conn.listAllStoragePools() == []
    assert conn.listAllStoragePools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE) == []
    assert conn.listAllNetworks() == []
    assert conn.listStoragePools() == [] and conn.listNetworks() == []
    assert vb.error_of(lambda: conn.storagePoolLookupByName("default")) == (
        libvirt.VIR_ERR_NO_STORAGE_POOL, from_storage,
        "Storage pool not found: no storage pool with matching name 'default'")
    assert vb.error_of(lambda: conn.storagePoolLookupByTargetPath("/var/lib/libvirt/images")) == (
        libvirt.VIR_ERR_NO_STORAGE_POOL, from_storage,
        "Storage pool not found: no storage pool with matching target path '/var/lib/libvirt/images'")
    assert vb.error_of(lambda: conn.networkLookupByName("default")) == (
        libvirt.VIR_ERR_NO_NETWORK, from_network, "Network not found: no network with matching name 'default'")


def test_test_driver_pool_and_network_errors_come_from_the_test_driver(test_conn):
    # The same calls with the system's libvirt: (49, 12, ...) and (43, 12, ...).
    assert vb.error_of(lambda: test_conn.storagePoolLookupByName("nosuch")) == (
        libvirt.VIR_ERR_NO_STORAGE_POOL, libvirt.VIR_FROM_TEST,
        "Storage pool not found: no storage pool with matching name 'nosuch'")
    assert vb.error_of(lambda: test_conn.networkLookupByName("nosuch")) == (
        libvirt.VIR_ERR_NO_NETWORK, libvirt.VIR_FROM_TEST, "Network not found: no network with matching name 'nosuch'")


def test_unimplemented_calls_are_not_supported(drv):
    def unsupported(api):
        return (libvirt.VIR_ERR_NO_SUPPORT, FROM_DOMAIN, f"this function is not supported by the connection driver: {api}")

    assert vb.error_of(drv.conn.getCapabilities) == unsupported("virConnectGetCapabilities")
    assert vb.error_of(lambda: drv.dom.setMemory(1024)) == unsupported("virDomainSetMemory")
    assert vb.error_of(lambda: drv.dom.suspend()) == unsupported("virDomainSuspend")
    # The domain is untouched.
    assert drv.dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING


def test_bad_uris():
    assert vb.error_of(lambda: libvirt.open("bogus:///x")) == (
        libvirt.VIR_ERR_NO_CONNECT, FROM_NONE, "no connection driver available for bogus:///x")
    assert vb.error_of(lambda: libvirt.open("qemu:///embed")) == (
        libvirt.VIR_ERR_INVALID_ARG, libvirt.VIR_FROM_URI, "invalid argument: Missing URI parameter 'root'")
    assert vb.error_of(lambda: libvirt.open("qemu:///embed?root=relative/dir")) == (
        libvirt.VIR_ERR_CONFIG_UNSUPPORTED, FROM_NONE, "unsupported configuration: root path must be absolute")
    assert vb.error_of(lambda: libvirt.open("qemu:///embed?root=/")) == (
        libvirt.VIR_ERR_CONFIG_UNSUPPORTED, FROM_NONE,
        "unsupported configuration: root path '/' must not be the file system root")


# --- the error model --------------------------------------------------------------------


def test_libvirt_error_accessors(test_conn):
    with pytest.raises(libvirt.libvirtError) as info:
        test_conn.lookupByName("nosuch")
    e = info.value
    assert e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN
    assert e.get_error_domain() == libvirt.VIR_FROM_TEST
    assert e.get_error_message() == "Domain not found"
    assert e.get_error_level() == libvirt.VIR_ERR_ERROR
    assert str(e) == "Domain not found"
    # The thread's last error, and the connection's copy of it.
    last = libvirt.virGetLastError()
    assert last[:4] == (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_FROM_TEST, "Domain not found", libvirt.VIR_ERR_ERROR)
    assert test_conn.virConnGetLastError()[:3] == last[:3]
    assert libvirt.virGetLastErrorCode() == libvirt.VIR_ERR_NO_DOMAIN
    assert libvirt.virGetLastErrorDomain() == libvirt.VIR_FROM_TEST
    assert libvirt.virGetLastErrorMessage() == "Domain not found"
    # A call that succeeds clears it.
    test_conn.getURI()
    assert libvirt.virGetLastError() is None

    with pytest.raises(libvirt.libvirtError) as info:
        libvirt.open("qemu:///embed?root=/tmp/../x")
    e = info.value
    assert (e.get_error_code(), e.get_error_domain()) == (libvirt.VIR_ERR_CONFIG_UNSUPPORTED, FROM_NONE)
    assert e.get_str1() == "unsupported configuration: %s"
    assert e.get_str2() == "root path '/tmp/../x' must not contain '.' or '..' parts"
    assert e.get_error_message() == "unsupported configuration: " + e.get_str2()


def test_register_error_handler(test_conn):
    seen = []
    assert libvirt.registerErrorHandler(lambda ctx, err: seen.append((ctx, err)), "ctx") == 1
    try:
        with pytest.raises(libvirt.libvirtError):
            test_conn.lookupByName("nosuch")
        with pytest.raises(libvirt.libvirtError):
            test_conn.lookupByName("test").fsFreeze(["/nope"])
        test_conn.getURI()  # no error, no call
    finally:
        libvirt.registerErrorHandler(lambda ctx, err: None, None)
    assert [(ctx, err[:4]) for ctx, err in seen] == [
        ("ctx", (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_FROM_TEST, "Domain not found", libvirt.VIR_ERR_ERROR)),
        ("ctx", (libvirt.VIR_ERR_OPERATION_INVALID, libvirt.VIR_FROM_TEST,
                 "Requested operation is not valid: mount point not found: /nope", libvirt.VIR_ERR_ERROR)),
    ]


def test_default_error_printer_on_stderr(build_dir):
    """Without a handler, libvirt prints `libvirt: <domain> error : <message>`."""
    script = ("import libvirt\n"
              "try:\n    libvirt.open('test:///default').lookupByName('nosuch')\n"
              "except libvirt.libvirtError as e:\n    print(e.get_error_code())\n")
    env = {"LD_LIBRARY_PATH": build_dir, "PATH": "/usr/bin:/bin"}
    out = subprocess.run([vb.SYSTEM_PYTHON, "-c", script], capture_output=True, text=True, env=env, timeout=60,
                         cwd="/")
    assert (out.returncode, out.stdout) == (0, "42\n")
    assert out.stderr == "libvirt: Test Driver error : Domain not found\n"


# --- differential: the system's libvirt and virbackup, same snippet -----------------------

CONNECTION_SNIPPET = """
c = libvirt.open('test:///default')
E(c.getType); E(c.getURI); E(c.getLibVersion); E(c.getVersion); E(c.getHostname)
E(c.isAlive); E(c.isSecure); E(c.isEncrypted)
E(lambda: [d.name() for d in c.listAllDomains(0)])
for flag in ['ACTIVE', 'INACTIVE', 'PERSISTENT', 'TRANSIENT', 'RUNNING', 'SHUTOFF', 'PAUSED', 'OTHER',
             'AUTOSTART', 'NO_AUTOSTART', 'HAS_CHECKPOINT', 'NO_CHECKPOINT', 'MANAGEDSAVE', 'NO_MANAGEDSAVE']:
    print(flag, [d.name() for d in c.listAllDomains(getattr(libvirt, 'VIR_CONNECT_LIST_DOMAINS_' + flag))])
E(lambda: c.listAllDomains(1 << 30))
E(lambda: c.lookupByName('nosuch')); E(lambda: c.lookupByID(42))
E(lambda: c.lookupByUUIDString('6695eb01-f6a4-8304-79aa-97f2502e1930'))
E(lambda: c.lookupByName('test').UUIDString()); E(lambda: c.lookupByID(1).name())
E(lambda: c.numOfDomains())
calls = []
E(lambda: c.registerCloseCallback(lambda conn, reason, opaque: calls.append(reason), None))
E(lambda: c.unregisterCloseCallback())
E(lambda: c.registerCloseCallback(lambda conn, reason, opaque: calls.append(reason), None))
ro = libvirt.openReadOnly('test:///default')
d = ro.lookupByName('test')
E(d.destroy); E(lambda: d.setAutostart(1)); E(d.shutdown); E(d.undefine)
E(lambda: d.checkpointCreateXML('<domaincheckpoint/>'))
E(d.abortJob); E(lambda: d.blockJobAbort('vda')); E(d.fsFreeze); E(d.fsThaw); E(d.autostart)
E(lambda: d.backupBegin('<domainbackup/>', None)); E(lambda: d.blockInfo('vda'))
import libvirt_qemu
E(lambda: libvirt_qemu.qemuMonitorCommand(d, '{}', 0)); E(lambda: libvirt_qemu.qemuAgentCommand(d, '{}', 5, 0))
E(lambda: d.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE))
E(lambda: ro.defineXML(d.XMLDesc(0)))
E(lambda: ro.close())
a = libvirt.openAuth('test:///default', [[libvirt.VIR_CRED_AUTHNAME], lambda creds, data: 0, None], 0)
E(a.getURI); E(a.close)
a = libvirt.openAuth('test:///default', [[], None, None], libvirt.VIR_CONNECT_RO)
E(lambda: a.lookupByName('test').destroy()); E(a.close)
E(lambda: libvirt.open('qemu:///embed'))
E(lambda: libvirt.open('qemu:///embed?root=relative'))
dom = c.lookupByName('test')
E(lambda: c.close())
E(dom.isActive)
E(lambda: c.getURI())
E(lambda: calls)
"""


def test_differential_connections(build_dir):
    mine, real = vb.run_both(build_dir, CONNECTION_SNIPPET)
    assert mine == real


ERRORS_SNIPPET = """
c = libvirt.open('test:///default')
for fn in [lambda: c.lookupByName('nosuch'), lambda: c.lookupByName('test').fsFreeze(['/nope']),
           lambda: c.lookupByName('test').undefineFlags(1 << 30),
           lambda: c.lookupByName('test').checkpointLookupByName('nosuch')]:
    try:
        fn()
    except libvirt.libvirtError as e:
        print(e.get_error_code(), e.get_error_domain(), e.get_error_level(), e.get_error_message())
        print(libvirt.virGetLastError())
        print(c.virConnGetLastError())
c.getURI()
print(libvirt.virGetLastError())
seen = []
print(libvirt.registerErrorHandler(lambda ctx, err: seen.append((ctx, err)), 'ctx'))
E(lambda: c.lookupByName('nosuch'))
print(seen)
"""


def test_differential_errors(build_dir):
    mine, real = vb.run_both(build_dir, ERRORS_SNIPPET)
    assert mine == real

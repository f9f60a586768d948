//! Pull backups over TCP, and over TLS (x509, from the folder `backup_tls_x509_cert_dir`
//! names in `DIR/etc/qemu.conf`), read with libnbd's tools as a backup server on another
//! host would; clients without a valid certificate are refused.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::{Fixture, checkpoint, disk_file, read_disk, run, wait_job, write_disk};
use virbackup::driver::{self, DomainId, Driver};
use virbackup::error::Code;

const MIB: u64 = 1 << 20;

fn open(fixture: &Fixture) -> Arc<dyn Driver> {
    driver::open(&fixture.uri(), 0).unwrap()
}

/// A TCP port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn tcp_pull(port: u16, tls: bool, scratch: &Path, incremental: Option<&str>) -> String {
    let inc = incremental.map(|c| format!("<incremental>{c}</incremental>")).unwrap_or_default();
    let tls = if tls { " tls='yes'" } else { "" };
    format!(
        "<domainbackup mode='pull'>{inc}<server transport='tcp' name='127.0.0.1' port='{port}'{tls}/><disks>\
         <disk name='vda' type='file'><scratch file='{}'/></disk></disks></domainbackup>",
        scratch.display()
    )
}

/// A domain on a 32 MiB qcow2 disk with some data.
fn define(fixture: &Fixture, driver: &dyn Driver, name: &str) -> (DomainId, PathBuf) {
    let vda = fixture.create_image(&format!("{name}.qcow2"), "qcow2", "32M");
    common::write_pattern(&vda, "qcow2", 0x21, 0, 4 * MIB);
    let dom = driver.domain_define_xml(&fixture.domain_xml(name, &[("vda", &vda, "qcow2")]), 0).unwrap();
    (dom, vda)
}

/// Runs a libnbd tool; returns (success, stdout + stderr).
fn nbd_tool(program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program).args(args).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn compare(a: &Path, b: &Path) -> bool {
    Command::new("qemu-img").args(["compare", "-U"]).arg(a).arg(b).output().unwrap().status.success()
}

/// The certificates (tests/tls/make-certs.sh), and the root's qemu.conf naming the
/// server's folder.
fn certificates(fixture: &Fixture, verify: bool) -> PathBuf {
    let dir = fixture.image("pki");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tls/make-certs.sh");
    run("bash", &[script.to_str().unwrap(), dir.to_str().unwrap()]);
    let conf = format!(
        "# as in libvirt's qemu.conf\nbackup_tls_x509_cert_dir = \"{}\"\nbackup_tls_x509_verify = {}\n",
        dir.join("server").display(),
        u8::from(verify)
    );
    std::fs::create_dir_all(fixture.root().join("etc")).unwrap();
    std::fs::write(fixture.root().join("etc/qemu.conf"), conf).unwrap();
    dir
}

/// The objects (TLS credentials) a domain's daemon holds.
fn engine_objects(fixture: &Fixture, name: &str) -> Vec<String> {
    let qmp = fixture.root().join("run/qemu").join(name).join("qmp.sock");
    let mut monitor = virbackup::engine::qmp::Qmp::connect(&qmp, std::time::Duration::from_secs(10)).unwrap();
    let objects = monitor.execute("qom-list", Some(serde_json::json!({"path": "/objects"}))).unwrap();
    objects.as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap().to_string()).collect()
}

#[test]
fn pull_backup_over_tcp() {
    let fixture = Fixture::new();
    let driver = open(&fixture);
    let (dom, vda) = define(&fixture, driver.as_ref(), "tcp");
    for running in [false, true] {
        if running {
            driver.domain_create(&dom, 0).unwrap();
        }
        let port = free_port();
        let scratch = fixture.image("tcp.scratch");
        driver.backup_begin(&dom, &tcp_pull(port, false, &scratch, None), None, 0).unwrap();
        let xml = driver.backup_get_xml_desc(&dom, 0).unwrap();
        assert!(xml.contains(&format!("<server transport='tcp' name='127.0.0.1' port='{port}'/>")), "{xml}");
        let uri = format!("nbd://127.0.0.1:{port}/vda");
        let (ok, size) = nbd_tool("nbdinfo", &["--size", &uri]);
        assert!(ok, "{size}");
        assert_eq!(size.trim(), (32 * MIB).to_string());
        let copy = fixture.image("tcp.raw");
        run("nbdcopy", &[&uri, copy.to_str().unwrap()]);
        assert!(compare(&copy, &vda));
        driver.domain_abort_job(&dom, 0).unwrap();
        assert_eq!(wait_job(driver.as_ref(), &dom).job_type, 3);
        assert!(!nbd_tool("nbdinfo", &["--size", &uri]).0, "the server stops with the job");
        std::fs::remove_file(&copy).unwrap();
    }
    driver.domain_destroy(&dom, 0).unwrap();
}

#[test]
fn pull_backup_over_tls_reads_with_a_certificate_and_refuses_without() {
    let fixture = Fixture::new();
    let pki = certificates(&fixture, true);
    let driver = open(&fixture);
    let (dom, _) = define(&fixture, driver.as_ref(), "tls");
    driver.domain_create(&dom, 0).unwrap();
    let disk = disk_file(driver.as_ref(), &dom, "vda");
    driver.checkpoint_create_xml(&dom, &checkpoint("c1"), 0).unwrap();
    write_disk(&disk, 0x44, 8 * MIB, MIB);
    let at_start = read_disk(&fixture, &disk, "at-start.qcow2");

    let port = free_port();
    let scratch = fixture.image("tls.scratch");
    driver.backup_begin(&dom, &tcp_pull(port, true, &scratch, Some("c1")), None, 0).unwrap();
    let xml = driver.backup_get_xml_desc(&dom, 0).unwrap();
    assert!(xml.contains(&format!("<server transport='tcp' tls='yes' name='127.0.0.1' port='{port}'/>")), "{xml}");
    assert_eq!(engine_objects(&fixture, "tls").iter().filter(|o| o.ends_with("-tls")).count(), 1);
    write_disk(&disk, 0x45, 20 * MIB, MIB);

    let with = |dir: &str| format!("nbds://127.0.0.1:{port}/vda?tls-certificates={}", pki.join(dir).display());
    // A client with a certificate the CA signed reads the disk as it was at the start,
    // and the changes since c1.
    let copy = fixture.image("tls.raw");
    run("nbdcopy", &[&with("client"), copy.to_str().unwrap()]);
    assert!(compare(&copy, &at_start));
    let (ok, map) = nbd_tool("nbdinfo", &["--map=qemu:dirty-bitmap:backup-vda", &with("client")]);
    assert!(ok, "{map}");
    let dirty: Vec<Vec<&str>> =
        map.lines().map(|l| l.split_whitespace().collect::<Vec<_>>()).filter(|f| f.last() == Some(&"dirty")).collect();
    assert_eq!(dirty, [vec![(8 * MIB).to_string().as_str(), MIB.to_string().as_str(), "1", "dirty"]], "{map}");
    // Everyone else is refused.
    let plain = format!("nbd://127.0.0.1:{port}/vda");
    let (ok, why) = nbd_tool("nbdinfo", &["--size", &plain]);
    assert!(!ok && why.contains("server requires TLS"), "{why}");
    for refused in ["client-no-cert", "stranger", "wrong-ca"] {
        let (ok, why) = nbd_tool("nbdinfo", &["--size", &with(refused)]);
        assert!(!ok, "{refused} was let in: {why}");
    }

    driver.domain_abort_job(&dom, 0).unwrap();
    assert_eq!(wait_job(driver.as_ref(), &dom).job_type, 3);
    assert!(engine_objects(&fixture, "tls").iter().all(|o| !o.ends_with("-tls")), "the credentials go with the job");
    assert!(!scratch.exists());
    driver.domain_destroy(&dom, 0).unwrap();
}

#[test]
fn pull_backup_over_tls_on_a_unix_socket_and_a_shut_off_domain() {
    let fixture = Fixture::new();
    let pki = certificates(&fixture, false);
    let driver = open(&fixture);
    let (dom, vda) = define(&fixture, driver.as_ref(), "tlsoff");
    let socket = fixture.image("tls.sock");
    let xml = format!(
        "<domainbackup mode='pull'><server transport='unix' socket='{}' tls='yes'/><disks>\
         <disk name='vda' type='file'><scratch file='{}'/></disk></disks></domainbackup>",
        socket.display(),
        fixture.image("tlsoff.scratch").display()
    );
    driver.backup_begin(&dom, &xml, None, 0).unwrap();
    // backup_tls_x509_verify = 0: a client that only trusts the CA is let in.
    let uri = |dir: &str| {
        format!("nbds+unix:///vda?socket={}&tls-certificates={}", socket.display(), pki.join(dir).display())
    };
    let copy = fixture.image("tlsoff.raw");
    run("nbdcopy", &[&uri("client-no-cert"), copy.to_str().unwrap()]);
    assert!(compare(&copy, &vda));
    let (ok, why) = nbd_tool("nbdinfo", &["--size", &format!("nbd+unix:///vda?socket={}", socket.display())]);
    assert!(!ok && why.contains("server requires TLS"), "{why}");
    driver.domain_abort_job(&dom, 0).unwrap();
    assert_eq!(wait_job(driver.as_ref(), &dom).job_type, 3);
    assert!(!socket.exists());
}

#[test]
fn tls_that_is_not_configured_is_refused_with_libvirts_errors() {
    let fixture = Fixture::new();
    let driver = open(&fixture);
    let (dom, _) = define(&fixture, driver.as_ref(), "notls");
    let scratch = fixture.image("notls.scratch");
    let xml = tcp_pull(free_port(), true, &scratch, None);
    if !Path::new("/etc/pki/libvirt-backup").exists() && !Path::new("/etc/pki/qemu").exists() {
        let err = driver.backup_begin(&dom, &xml, Some(&checkpoint("c1")), 0).unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (Code::VIR_ERR_OPERATION_INVALID, "Requested operation is not valid: backup TLS directory not configured")
        );
    }
    std::fs::create_dir_all(fixture.root().join("etc")).unwrap();
    std::fs::write(fixture.root().join("etc/qemu.conf"), "backup_tls_x509_cert_dir = \"/no/such/pki\"\n").unwrap();
    let err = driver.backup_begin(&dom, &xml, Some(&checkpoint("c1")), 0).unwrap_err();
    assert_eq!(err.code, Code::VIR_ERR_CONF_SYNTAX, "{err:?}");
    assert!(err.message.contains("backup_tls_x509_cert_dir directory '/no/such/pki' does not exist"), "{err:?}");
    std::fs::write(fixture.root().join("etc/qemu.conf"), "backup_tls_x509_cert_dir = /no/quotes\n").unwrap();
    let err = driver.backup_begin(&dom, &xml, None, 0).unwrap_err();
    assert_eq!(err.code, Code::VIR_ERR_CONF_SYNTAX, "{err:?}");
    assert!(err.message.ends_with("etc/qemu.conf:1: expecting a value"), "{err:?}");
    // Nothing was made, and a folder without the credentials is QEMU's error.
    let empty = fixture.image("empty-pki");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(
        fixture.root().join("etc/qemu.conf"),
        format!("backup_tls_x509_cert_dir = \"{}\"\n", empty.display()),
    )
    .unwrap();
    let err = driver.backup_begin(&dom, &xml, Some(&checkpoint("c1")), 0).unwrap_err();
    assert!(err.message.contains("ca-cert.pem"), "{err:?}");
    assert!(!scratch.exists());
    assert!(driver.checkpoint_lookup_by_name(&dom, "c1", 0).is_err());
    assert!(common::bitmap_names(&fixture.image("notls.qcow2")).is_empty());
}

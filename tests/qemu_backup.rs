//! Backups on real qcow2 images through the embedded QEMU driver: push (full and
//! incremental, restored and compared with the source), pull (read over NBD while the
//! disk changes), abort, failures, for running and shut-off domains.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    Fixture, bitmap_names, checkpoint, compare, disk_file, pull_xml, push_xml, read_disk, restore_and_compare, run,
    wait_job, write_disk, write_pattern,
};
use virbackup::driver::{self, DomainId, Driver, JobStats, TypedValue};
use virbackup::error::Code;

const MIB: u64 = 1 << 20;

fn open(fixture: &Fixture) -> Arc<dyn Driver> {
    driver::open(&fixture.uri(), 0).unwrap()
}

/// A domain with a 64 MiB qcow2 disk `vda` holding some data.
fn define(fixture: &Fixture, driver: &dyn Driver, name: &str) -> (DomainId, PathBuf) {
    let vda = fixture.create_image(&format!("{name}-a.qcow2"), "qcow2", "64M");
    write_pattern(&vda, "qcow2", 0x11, 0, 8 * MIB);
    write_pattern(&vda, "qcow2", 0x22, 40 * MIB, 3 * MIB);
    let dom = driver.domain_define_xml(&fixture.domain_xml(name, &[("vda", &vda, "qcow2")]), 0).unwrap();
    (dom, vda)
}

fn param<'a>(stats: &'a JobStats, name: &str) -> Option<&'a TypedValue> {
    stats.params.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

/// A frozen copy of an image at this moment (for a shut-off domain).
fn snapshot(fixture: &Fixture, image: &Path, name: &str) -> PathBuf {
    let copy = fixture.image(name);
    run("qemu-img", &["convert", "-U", "-O", "qcow2", image.to_str().unwrap(), copy.to_str().unwrap()]);
    copy
}

fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn backing_file(image: &Path) -> Option<String> {
    let out = run("qemu-img", &["info", "-U", "--output=json", image.to_str().unwrap()]);
    let info: serde_json::Value = serde_json::from_str(&out).unwrap();
    info["backing-filename"].as_str().map(str::to_string)
}

/// A full push and two incrementals (each from the previous backup's checkpoint), each
/// restored onto the ones before it and compared with the disk as it was at its start.
/// `write` changes the disk; `freeze` copies it as it is now.
fn full_and_two_incrementals(
    fixture: &Fixture,
    driver: &dyn Driver,
    dom: &DomainId,
    write: &dyn Fn(u8, u64, u64),
    freeze: &dyn Fn(&str) -> PathBuf,
) {
    let full = fixture.image("full.qcow2");
    let at_full = freeze("at-full.qcow2");
    driver.backup_begin(dom, &push_xml(&full, None), Some(&checkpoint("c1")), 0).unwrap();
    let stats = wait_job(driver, dom);
    assert_eq!(stats.job_type, 3, "{stats:?}");
    assert_eq!(param(&stats, "operation"), Some(&TypedValue::Int(9)));
    assert_eq!(param(&stats, "success"), Some(&TypedValue::Boolean(true)));
    assert_eq!(param(&stats, "disk_total"), Some(&TypedValue::ULLong(64 * MIB)));
    assert_eq!(param(&stats, "disk_remaining"), Some(&TypedValue::ULLong(0)));
    assert!(compare(&full, &at_full), "the full backup is the disk at its start");
    assert_eq!(mode_of(&full), 0o600);
    assert_eq!(backing_file(&full), None, "a full target stands alone");

    write(0x33, 20 * MIB, MIB);
    write(0x44, 60 * MIB, 64 * 1024);
    let at_inc1 = freeze("at-inc1.qcow2");
    let inc1 = fixture.image("inc1.qcow2");
    driver.backup_begin(dom, &push_xml(&inc1, Some("c1")), Some(&checkpoint("c2")), 0).unwrap();
    let stats = wait_job(driver, dom);
    assert_eq!(stats.job_type, 3, "{stats:?}");
    assert_eq!(param(&stats, "disk_total"), Some(&TypedValue::ULLong(MIB + 64 * 1024)));
    // As libvirt makes it: a qcow2 overlay naming the disk as its backing file.
    let source = driver.domain_get_xml_desc(dom, 2).unwrap();
    let backing = backing_file(&inc1).expect("an incremental target has a backing file");
    assert!(source.contains(&format!("<source file='{backing}'/>")), "{backing}");
    assert!(restore_and_compare(fixture, &inc1, &full, &at_inc1), "full + inc1 = the disk at inc1");

    write(0x55, 0, 2 * MIB);
    let at_inc2 = freeze("at-inc2.qcow2");
    let inc2 = fixture.image("inc2.qcow2");
    driver.backup_begin(dom, &push_xml(&inc2, Some("c2")), Some(&checkpoint("c3")), 0).unwrap();
    let stats = wait_job(driver, dom);
    assert_eq!(param(&stats, "disk_total"), Some(&TypedValue::ULLong(2 * MIB)), "only what changed since c2");
    let restored_inc1 = fixture.image("restore-inc1.qcow2");
    assert!(restore_and_compare(fixture, &inc2, &restored_inc1, &at_inc2), "full + inc1 + inc2 = the disk at inc2");
    // The new checkpoints chain as the backups do.
    assert_eq!(driver.checkpoint_get_parent(dom, "c3", 0).unwrap(), "c2");
    assert_eq!(driver.checkpoint_get_parent(dom, "c2", 0).unwrap(), "c1");
}

/// The names of every dirty bitmap of every node of a QEMU process.
fn engine_bitmaps(qmp: &Path) -> Vec<String> {
    let mut monitor = virbackup::engine::qmp::Qmp::connect(qmp, Duration::from_secs(10)).unwrap();
    let nodes = monitor.execute("query-named-block-nodes", Some(serde_json::json!({"flat": true}))).unwrap();
    let mut names: Vec<String> = nodes
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|n| n["dirty-bitmaps"].as_array().cloned().unwrap_or_default())
        .map(|b| b["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn shut_off_domain_full_then_two_incrementals() {
    let fixture = Fixture::new();
    let driver = open(&fixture);
    let (dom, vda) = define(&fixture, driver.as_ref(), "off");
    let write = |pattern: u8, offset: u64, len: u64| write_pattern(&vda, "qcow2", pattern, offset, len);
    let freeze = |name: &str| snapshot(&fixture, &vda, name);
    full_and_two_incrementals(&fixture, driver.as_ref(), &dom, &write, &freeze);
    assert_eq!(bitmap_names(&vda), ["c1", "c2", "c3"]);
    assert!(!driver.domain_is_active(&dom).unwrap(), "the domain stays shut off");
    let leftovers: Vec<_> =
        std::fs::read_dir(fixture.root().join("run/qemu")).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(leftovers.iter().all(|n| n.to_string_lossy().starts_with('.') || n == "off.job"), "{leftovers:?}");
    // The domain is usable again.
    driver.domain_create(&dom, 0).unwrap();
    driver.domain_destroy(&dom, 0).unwrap();
}

#[test]
fn running_domain_full_then_two_incrementals() {
    let fixture = Fixture::new();
    let driver = open(&fixture);
    let (dom, vda) = define(&fixture, driver.as_ref(), "on");
    driver.domain_create(&dom, 0).unwrap();
    let file = disk_file(driver.as_ref(), &dom, "vda");
    let write = |pattern: u8, offset: u64, len: u64| write_disk(&file, pattern, offset, len);
    let freeze = |name: &str| read_disk(&fixture, &file, name);
    full_and_two_incrementals(&fixture, driver.as_ref(), &dom, &write, &freeze);
    assert!(driver.domain_is_active(&dom).unwrap());
    let qmp = fixture.root().join("run/qemu/on/qmp.sock");
    assert_eq!(engine_bitmaps(&qmp), ["c1", "c2", "c3"], "no temporary bitmap is left");
    driver.domain_destroy(&dom, 0).unwrap();
    assert_eq!(bitmap_names(&vda), ["c1", "c2", "c3"]);
}

/// The extents nbdinfo reports for a meta context: (offset, length, type).
fn nbd_map(socket: &Path, export: &str, context: &str) -> Vec<(u64, u64, u64)> {
    let uri = format!("nbd+unix:///{export}?socket={}", socket.display());
    let out = run("nbdinfo", &["--json", &format!("--map={context}"), &uri]);
    let extents: serde_json::Value = serde_json::from_str(&out).unwrap();
    extents
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["offset"].as_u64().unwrap(), e["length"].as_u64().unwrap(), e["type"].as_u64().unwrap()))
        .collect()
}

fn dirty(map: &[(u64, u64, u64)]) -> Vec<(u64, u64)> {
    map.iter().filter(|e| e.2 & 1 == 1).map(|e| (e.0, e.1)).collect()
}

#[test]
fn running_domain_pull_shows_the_start_while_the_disk_changes() {
    let fixture = Fixture::new();
    let driver = open(&fixture);
    let (dom, vda) = define(&fixture, driver.as_ref(), "pull");
    driver.domain_create(&dom, 0).unwrap();
    let disk = disk_file(driver.as_ref(), &dom, "vda");
    driver.checkpoint_create_xml(&dom, &checkpoint("c1"), 0).unwrap();
    write_disk(&disk, 0x66, 8 * MIB, 2 * MIB);
    let at_start = read_disk(&fixture, &disk, "at-start.qcow2");

    let socket = fixture.image("backup.sock");
    let scratch = fixture.image("scratch.qcow2");
    driver.backup_begin(&dom, &pull_xml(&socket, &scratch, Some("c1")), Some(&checkpoint("c2")), 0).unwrap();
    assert!(scratch.exists(), "the scratch image is created");
    let xml = driver.backup_get_xml_desc(&dom, 0).unwrap();
    assert!(xml.starts_with("<domainbackup mode='pull'>\n  <incremental>c1</incremental>\n"), "{xml}");
    assert!(xml.contains(&format!("<server transport='unix' socket='{}'/>", socket.display())), "{xml}");
    assert!(
        xml.contains("<disk name='vda' backup='yes' type='file' backupmode='incremental' incremental='c1' exportname='vda' exportbitmap='backup-vda' index='"),
        "{xml}"
    );
    // One job per domain, refused at once.
    let started = Instant::now();
    let err = driver.backup_begin(&dom, &pull_xml(&socket, &scratch, None), None, 0).unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (Code::VIR_ERR_OPERATION_INVALID, "Requested operation is not valid: another backup job is already running")
    );
    assert!(started.elapsed() < Duration::from_secs(2));

    // What changed since c1, as backup tools read it.
    let map = nbd_map(&socket, "vda", "qemu:dirty-bitmap:backup-vda");
    assert_eq!(dirty(&map), [(8 * MIB, 2 * MIB)]);
    assert!(!nbd_map(&socket, "vda", "base:allocation").is_empty());

    // The guest keeps writing, into what was dirty and what was not.
    write_disk(&disk, 0x77, 9 * MIB, MIB);
    write_disk(&disk, 0x78, 50 * MIB, MIB);
    let stats = driver.domain_get_job_stats(&dom, 0).unwrap();
    assert_eq!(stats.job_type, 2);
    match param(&stats, "disk_temp_used") {
        Some(TypedValue::ULLong(used)) => assert!(*used >= 2 * MIB, "{used}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(param(&stats, "disk_temp_total"), Some(&TypedValue::ULLong(64 * MIB)));
    let block = driver.domain_get_block_job_info(&dom, "vda", 0).unwrap().unwrap();
    assert_eq!(block.job_type, 5);
    let copy = fixture.image("pulled.raw");
    let uri = format!("nbd+unix:///vda?socket={}", socket.display());
    run("nbdcopy", &[&uri, copy.to_str().unwrap()]);
    assert!(compare(&copy, &at_start), "the export shows the disk as it was at the start");
    let now = read_disk(&fixture, &disk, "now.qcow2");
    assert!(!compare(&copy, &now), "while the disk itself has changed");

    driver.domain_abort_job(&dom, 0).unwrap();
    let stats = wait_job(driver.as_ref(), &dom);
    assert_eq!(stats.job_type, 3, "aborting is how a pull backup succeeds: {stats:?}");
    assert_eq!(param(&stats, "success"), Some(&TypedValue::Boolean(true)));
    assert!(!scratch.exists(), "the scratch image is removed");
    assert!(!socket.exists(), "the socket is removed");
    assert_eq!(driver.backup_get_xml_desc(&dom, 0).unwrap_err().code, Code::VIR_ERR_NO_DOMAIN_BACKUP);
    assert_eq!(
        driver.domain_abort_job(&dom, 0).unwrap_err().message,
        "Requested operation is not valid: no job is active on the domain"
    );
    assert_eq!(engine_bitmaps(&fixture.root().join("run/qemu/pull/qmp.sock")), ["c1", "c2"]);
    // The checkpoint made with it stays, and the domain's disk is still written.
    assert_eq!(driver.checkpoint_get_parent(&dom, "c2", 0).unwrap(), "c1");
    write_disk(&disk, 0x79, 0, 4096);
    driver.domain_destroy(&dom, 0).unwrap();
    assert_eq!(bitmap_names(&vda), ["c1", "c2"]);
}

#[test]
fn shut_off_domain_pull_serves_the_disk_until_aborted() {
    let fixture = Fixture::new();
    let driver = open(&fixture);
    let (dom, vda) = define(&fixture, driver.as_ref(), "offpull");
    let socket = fixture.image("b.sock");
    let scratch = fixture.image("s.qcow2");
    driver.backup_begin(&dom, &pull_xml(&socket, &scratch, None), None, 0).unwrap();
    assert!(!driver.domain_is_active(&dom).unwrap());
    let err = driver.domain_create(&dom, 0).unwrap_err();
    assert!(err.message.contains("while a backup job runs on its disks"), "{}", err.message);
    // Checkpoints still work, through the job's daemon.
    driver.checkpoint_create_xml(&dom, &checkpoint("during"), 0).unwrap();
    let copy = fixture.image("pulled.raw");
    run("nbdcopy", &[&format!("nbd+unix:///vda?socket={}", socket.display()), copy.to_str().unwrap()]);
    assert!(compare(&copy, &vda));
    driver.domain_abort_job(&dom, 0).unwrap();
    assert_eq!(wait_job(driver.as_ref(), &dom).job_type, 3);
    assert!(!scratch.exists() && !socket.exists());
    // The job's daemon wrote the new bitmap into the image when it quit.
    assert_eq!(bitmap_names(&vda), ["during"]);
    // A scratch image the caller made (REUSE_EXTERNAL) is used and left in place.
    run("qemu-img", &["create", "-q", "-f", "qcow2", scratch.to_str().unwrap(), "64M"]);
    driver.backup_begin(&dom, &pull_xml(&socket, &scratch, Some("during")), None, 1).unwrap();
    assert!(dirty(&nbd_map(&socket, "vda", "qemu:dirty-bitmap:backup-vda")).is_empty());
    driver.domain_abort_job(&dom, 0).unwrap();
    assert_eq!(wait_job(driver.as_ref(), &dom).job_type, 3);
    assert!(scratch.exists(), "the caller's scratch image stays");
    driver.domain_create(&dom, 0).unwrap();
    driver.domain_destroy(&dom, 0).unwrap();
}

/// Everything a backup could leave behind in the fixture folder and the images.
fn assert_clean(fixture: &Fixture, vda: &Path, bitmaps: &[&str], files: &[&Path]) {
    assert_eq!(bitmap_names(vda), bitmaps);
    for file in files {
        assert!(!file.exists(), "{} was left behind", file.display());
    }
    let run_dir = fixture.root().join("run/qemu");
    let sockets: Vec<_> = walk(&run_dir).into_iter().filter(|p| p.extension().is_some_and(|e| e == "sock")).collect();
    assert!(sockets.iter().all(|s| !s.to_string_lossy().contains("job-")), "{sockets:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn refused_backups_leave_nothing() {
    let fixture = Fixture::new();
    let driver = open(&fixture);
    let (dom, vda) = define(&fixture, driver.as_ref(), "refuse");
    let target = fixture.image("t.qcow2");

    // A target that exists is not overwritten.
    std::fs::write(&target, b"precious").unwrap();
    let err = driver.backup_begin(&dom, &push_xml(&target, None), Some(&checkpoint("c1")), 0).unwrap_err();
    assert_eq!(
        (err.code, err.message.clone()),
        (
            Code::VIR_ERR_INVALID_ARG,
            format!("invalid argument: store '{}' for backup of 'vda' exists", target.display())
        )
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"precious");
    assert!(driver.checkpoint_lookup_by_name(&dom, "c1", 0).is_err());
    assert_clean(&fixture, &vda, &[], &[]);
    std::fs::remove_file(&target).unwrap();

    // Unknown checkpoint, and a bitmap removed behind the driver's back.
    let err = driver.backup_begin(&dom, &push_xml(&target, Some("nosuch")), None, 0).unwrap_err();
    assert_eq!(err.code, Code::VIR_ERR_NO_DOMAIN_CHECKPOINT);
    driver.backup_begin(&dom, &push_xml(&target, None), Some(&checkpoint("c1")), 0).unwrap();
    wait_job(driver.as_ref(), &dom);
    run("qemu-img", &["bitmap", "--remove", vda.to_str().unwrap(), "c1"]);
    let inc = fixture.image("inc.qcow2");
    let err = driver.backup_begin(&dom, &push_xml(&inc, Some("c1")), Some(&checkpoint("c2")), 0).unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (
            Code::VIR_ERR_CHECKPOINT_INCONSISTENT,
            "checkpoint inconsistent: missing or broken bitmap 'c1' for disk 'vda'"
        )
    );
    assert!(driver.checkpoint_lookup_by_name(&dom, "c2", 0).is_err(), "no checkpoint from a refused backup");
    assert_clean(&fixture, &vda, &[], &[&inc]);

    // Encrypted stores are refused rather than written in the clear.
    let encrypted = format!(
        "<domainbackup><disks><disk name='vda' type='file'><target file='{}'><encryption format='luks'>\
         <secret type='passphrase' uuid='0a81f5b2-8403-7b23-c8d6-21ccc2f80d6f'/></encryption></target></disk></disks></domainbackup>",
        inc.display()
    );
    let err = driver.backup_begin(&dom, &encrypted, None, 0).unwrap_err();
    assert_eq!(err.message, "unsupported configuration: encrypted backup store for disk 'vda' is not supported");
    assert!(!inc.exists());

    // A pull address that cannot be used fails after the copies started: all undone.
    let bad_socket = fixture.image("no/such/dir/b.sock");
    let scratch = fixture.image("s.qcow2");
    let err =
        driver.backup_begin(&dom, &pull_xml(&bad_socket, &scratch, None), Some(&checkpoint("c3")), 0).unwrap_err();
    assert!(err.message.contains("b.sock"), "{}", err.message);
    assert!(driver.checkpoint_lookup_by_name(&dom, "c3", 0).is_err());
    assert_clean(&fixture, &vda, &[], &[&scratch]);
    assert_eq!(driver.domain_get_job_info(&dom).unwrap().job_type, 0);
    assert!(!driver.domain_is_active(&dom).unwrap());
}

#[test]
fn reused_and_raw_targets_and_skipped_disks() {
    let fixture = Fixture::new();
    let driver = open(&fixture);
    let vda = fixture.create_image("r-a.qcow2", "qcow2", "32M");
    let vdb = fixture.create_image("r-b.qcow2", "qcow2", "32M");
    write_pattern(&vda, "qcow2", 0x12, 0, MIB);
    let xml = fixture.domain_xml("r", &[("vda", &vda, "qcow2"), ("vdb", &vdb, "qcow2")]);
    let dom = driver.domain_define_xml(&xml, 0).unwrap();

    // A raw target, vdb skipped.
    let raw = fixture.image("a.raw");
    let backup = format!(
        "<domainbackup><disks><disk name='vda' type='file'><target file='{}'/><driver type='raw'/></disk>\
         <disk name='vdb' backup='no'/></disks></domainbackup>",
        raw.display()
    );
    driver.backup_begin(&dom, &backup, None, 0).unwrap();
    let stats = wait_job(driver.as_ref(), &dom);
    assert_eq!(param(&stats, "disk_total"), Some(&TypedValue::ULLong(32 * MIB)), "only vda: {stats:?}");
    assert!(compare(&raw, &vda));

    // REUSE_EXTERNAL writes into an image the caller made.
    let reused = fixture.create_image("mine.qcow2", "qcow2", "32M");
    driver.backup_begin(&dom, &push_xml(&reused, None), None, 1).unwrap();
    assert_eq!(wait_job(driver.as_ref(), &dom).job_type, 3);
    assert!(compare(&reused, &vda));
    // Without it, the same target is refused.
    assert_eq!(
        driver.backup_begin(&dom, &push_xml(&reused, None), None, 0).unwrap_err().code,
        Code::VIR_ERR_INVALID_ARG
    );
    assert_eq!(
        driver.backup_begin(&dom, &push_xml(&reused, None), None, 4).unwrap_err().message,
        "unsupported flags (0x4) in function qemuBackupBegin"
    );

    // No XML: every disk, full, next to its image.
    driver.backup_begin(&dom, "<domainbackup/>", Some(&checkpoint("all")), 0).unwrap();
    assert_eq!(wait_job(driver.as_ref(), &dom).job_type, 3);
    assert!(compare(&fixture.image("r-a.qcow2.all"), &vda));
    assert!(compare(&fixture.image("r-b.qcow2.all"), &vdb));
}

/// Runs one of the `child_*` scenarios below in a process of its own, where the copies
/// are slowed down (`VIRBACKUP_BACKUP_SPEED`) so that there is time to act mid-copy.
fn in_child(scenario: &str, fixture: &Fixture, extra: &[(&str, &str)]) -> String {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", scenario, "--ignored", "--nocapture"])
        .env("VB_CHILD_URI", fixture.uri())
        .env("VB_CHILD_DIR", fixture.dir.path())
        .env("VIRBACKUP_BACKUP_SPEED", (16 * MIB).to_string())
        .envs(extra.iter().copied())
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{scenario} failed:\n{text}");
    text
}

fn child_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is set by the parent test"))
}

/// A slow copy: 16 MiB of data at 16 MiB/s.
fn child_domain(driver: &dyn Driver, name: &str, running: bool) -> (DomainId, PathBuf) {
    let dir = PathBuf::from(child_env("VB_CHILD_DIR"));
    let vda = dir.join(format!("{name}.qcow2"));
    run("qemu-img", &["create", "-q", "-f", "qcow2", vda.to_str().unwrap(), "64M"]);
    write_pattern(&vda, "qcow2", 0x5c, 0, 16 * MIB);
    let xml = format!(
        "<domain type='kvm'><name>{name}</name><memory unit='MiB'>64</memory><os><type>hvm</type></os><devices>\
         <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{}'/><target dev='vda'/></disk>\
         </devices></domain>",
        vda.display()
    );
    let dom = driver.domain_define_xml(&xml, 0).unwrap();
    if running {
        driver.domain_create(&dom, 0).unwrap();
    }
    (dom, vda)
}

#[test]
#[ignore = "run as a child process by abort_mid_push_removes_the_partial_target"]
fn child_abort_mid_push() {
    let driver = driver::open(&child_env("VB_CHILD_URI"), 0).unwrap();
    for running in [false, true] {
        let name = if running { "abort-on" } else { "abort-off" };
        let (dom, vda) = child_domain(driver.as_ref(), name, running);
        let target = vda.with_extension("bk");
        driver.backup_begin(&dom, &push_xml(&target, None), Some(&checkpoint("c1")), 0).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let info = driver.domain_get_job_info(&dom).unwrap();
        assert_eq!(info.job_type, 2, "still copying");
        assert!(info.file_processed > 0 && info.file_processed < info.file_total, "{info:?}");
        assert!(target.exists());
        driver.domain_abort_job(&dom, 0).unwrap();
        let stats = wait_job(driver.as_ref(), &dom);
        assert_eq!(stats.job_type, 5, "a cancelled push: {stats:?}");
        assert_eq!(param(&stats, "success"), Some(&TypedValue::Boolean(false)));
        assert!(!target.exists(), "the partial target is removed");
        assert!(driver.checkpoint_lookup_by_name(&dom, "c1", 0).is_err(), "and the checkpoint made with it");
        assert_eq!(driver.domain_is_active(&dom).unwrap(), running);
        if running {
            let qmp = PathBuf::from(child_env("VB_CHILD_URI").split("root=").nth(1).unwrap())
                .join(format!("run/qemu/{name}/qmp.sock"));
            assert!(engine_bitmaps(&qmp).is_empty(), "neither the checkpoint's nor a temporary bitmap is left");
        }
        // The domain is usable: the next backup runs to the end.
        driver.backup_begin(&dom, &push_xml(&target, None), Some(&checkpoint("c1")), 0).unwrap();
        assert_eq!(wait_job(driver.as_ref(), &dom).job_type, 3);
        assert!(compare(&target, &vda) || running);
        if running {
            driver.domain_destroy(&dom, 0).unwrap();
        }
        assert_eq!(bitmap_names(&vda), ["c1"]);
        println!("{name}: ok");
    }
}

#[test]
fn abort_mid_push_removes_the_partial_target() {
    let fixture = Fixture::new();
    let out = in_child("child_abort_mid_push", &fixture, &[]);
    assert!(out.contains("abort-off: ok") && out.contains("abort-on: ok"), "{out}");
}

#[test]
#[ignore = "run as a child process by a_dead_daemon_fails_the_job_cleanly"]
fn child_daemon_dies() {
    let driver = driver::open(&child_env("VB_CHILD_URI"), 0).unwrap();
    let root = PathBuf::from(child_env("VB_CHILD_URI").split("root=").nth(1).unwrap());
    for running in [false, true] {
        let name = if running { "die-on" } else { "die-off" };
        let (dom, vda) = child_domain(driver.as_ref(), name, running);
        let target = vda.with_extension("bk");
        driver.backup_begin(&dom, &push_xml(&target, None), Some(&checkpoint("c1")), 0).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let run_dir = root.join("run/qemu").join(name);
        // A running domain's daemon, or the one started for the job (its files carry
        // the job's operation id).
        let pidfile = if running {
            run_dir.join("qsd.pid")
        } else {
            std::fs::read_dir(&run_dir)
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .find(|p| {
                    p.file_name().unwrap().to_string_lossy().starts_with("job-")
                        && p.extension() == Some("pid".as_ref())
                })
                .expect("the job daemon's pid file")
        };
        let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
        let stats = wait_job(driver.as_ref(), &dom);
        assert_eq!(stats.job_type, 4, "{stats:?}");
        match param(&stats, "errmsg") {
            Some(TypedValue::String(e)) => assert!(e.contains("exited"), "{e}"),
            other => panic!("{other:?}"),
        }
        assert!(!target.exists(), "no partial target");
        assert!(driver.checkpoint_lookup_by_name(&dom, "c1", 0).is_err(), "no checkpoint");
        assert!(!driver.domain_is_active(&dom).unwrap(), "a killed engine leaves the domain shut off");
        // Usable again.
        driver.domain_create(&dom, 0).unwrap();
        driver.backup_begin(&dom, &push_xml(&target, None), None, 0).unwrap();
        assert_eq!(wait_job(driver.as_ref(), &dom).job_type, 3);
        driver.domain_destroy(&dom, 0).unwrap();
        println!("{name}: ok");
    }
}

#[test]
fn a_dead_daemon_fails_the_job_cleanly() {
    let fixture = Fixture::new();
    let out = in_child("child_daemon_dies", &fixture, &[]);
    assert!(out.contains("die-off: ok") && out.contains("die-on: ok"), "{out}");
}

#[test]
#[ignore = "run as a child process by a_job_outlives_the_process_that_began_it"]
fn child_begins_and_exits() {
    let driver = driver::open(&child_env("VB_CHILD_URI"), 0).unwrap();
    let running = child_env("VB_CHILD_RUNNING") == "1";
    let name = if running { "orphan-on" } else { "orphan-off" };
    let (dom, vda) = child_domain(driver.as_ref(), name, running);
    driver.backup_begin(&dom, &push_xml(&vda.with_extension("bk"), None), Some(&checkpoint("c1")), 0).unwrap();
    println!("begun");
}

#[test]
#[ignore = "run as a child process by a_pull_export_outlives_the_process_that_began_it"]
fn child_begins_a_pull_and_exits() {
    let driver = driver::open(&child_env("VB_CHILD_URI"), 0).unwrap();
    let dir = PathBuf::from(child_env("VB_CHILD_DIR"));
    let (dom, _) = child_domain(driver.as_ref(), "pull-orphan", true);
    let xml = pull_xml(&dir.join("orphan.sock"), &dir.join("orphan.scratch"), None);
    driver.backup_begin(&dom, &xml, Some(&checkpoint("c1")), 0).unwrap();
    println!("begun");
}

#[test]
fn a_pull_export_outlives_the_process_that_began_it() {
    let fixture = Fixture::new();
    let out = in_child("child_begins_a_pull_and_exits", &fixture, &[]);
    assert!(out.contains("begun"), "{out}");
    // The running domain's daemon serves the export itself: it is read before any
    // process uses the root again.
    let socket = fixture.image("orphan.sock");
    let copy = fixture.image("orphan.raw");
    run("nbdcopy", &[&format!("nbd+unix:///vda?socket={}", socket.display()), copy.to_str().unwrap()]);
    let vda = fixture.image("pull-orphan.qcow2");
    assert!(compare(&copy, &vda));
    let driver = open(&fixture);
    let dom = driver.domain_lookup_by_name("pull-orphan").unwrap();
    assert_eq!(driver.domain_get_job_info(&dom).unwrap().job_type, 2, "the job goes on");
    driver.domain_abort_job(&dom, 0).unwrap();
    assert_eq!(wait_job(driver.as_ref(), &dom).job_type, 3);
    assert!(!socket.exists() && !fixture.image("orphan.scratch").exists());
    driver.domain_destroy(&dom, 0).unwrap();
    assert_eq!(bitmap_names(&vda), ["c1"]);
}

#[test]
fn a_job_outlives_the_process_that_began_it() {
    let fixture = Fixture::new();
    for (running, name) in [("0", "orphan-off"), ("1", "orphan-on")] {
        let out = in_child("child_begins_and_exits", &fixture, &[("VB_CHILD_RUNNING", running)]);
        assert!(out.contains("begun"), "{out}");
        // This process takes the job over and finishes it.
        let driver = open(&fixture);
        let dom = driver.domain_lookup_by_name(name).unwrap();
        let stats = wait_job(driver.as_ref(), &dom);
        assert_eq!(stats.job_type, 3, "{stats:?}");
        let vda = fixture.image(&format!("{name}.qcow2"));
        if running == "0" {
            assert!(compare(&vda.with_extension("bk"), &vda));
        } else {
            driver.domain_destroy(&dom, 0).unwrap();
        }
        assert_eq!(bitmap_names(&vda), ["c1"]);
    }
}

#[test]
fn adopted_qemu_backs_up_through_its_own_monitor() {
    let fixture = Fixture::new();
    let driver = open(&fixture);
    let vda = fixture.create_image("adopt.qcow2", "qcow2", "64M");
    write_pattern(&vda, "qcow2", 0x21, 0, 4 * MIB);
    let qmp = fixture.dir.path().join("platform.sock");
    let disks = [virbackup::engine::EngineDisk {
        target: "vda".into(),
        path: vda.clone(),
        format: "qcow2".into(),
        read_only: false,
    }];
    let pidfile = fixture.dir.path().join("platform.pid");
    let pid = virbackup::engine::daemon::start(&virbackup::engine::daemon::DaemonConfig {
        qmp: &qmp,
        pidfile: &pidfile,
        disks: &disks,
        exports: &[],
        events: None,
    })
    .unwrap();
    let xml = fixture.domain_xml("adopt", &[("vda", &vda, "qcow2")]).replacen(
        "</name>",
        &format!("</name><metadata><vb:engine xmlns:vb='urn:virbackup:domain:1' qmp='{}'/></metadata>", qmp.display()),
        1,
    );
    let dom = driver.domain_define_xml(&xml, 0).unwrap();
    assert!(driver.domain_is_active(&dom).unwrap());

    // Push: the job runs in the platform's QEMU; its end is found by polling its monitor.
    let full = fixture.image("full.qcow2");
    driver.backup_begin(&dom, &push_xml(&full, None), Some(&checkpoint("a1")), 0).unwrap();
    assert_eq!(wait_job(driver.as_ref(), &dom).job_type, 3);
    assert!(compare(&full, &vda));

    // Pull: an NBD server is started in the platform's QEMU for the job, and stopped after.
    let socket = fixture.image("b.sock");
    let scratch = fixture.image("s.qcow2");
    driver.backup_begin(&dom, &pull_xml(&socket, &scratch, Some("a1")), None, 0).unwrap();
    assert!(dirty(&nbd_map(&socket, "vda", "qemu:dirty-bitmap:backup-vda")).is_empty(), "nothing changed since a1");
    driver.domain_abort_job(&dom, 0).unwrap();
    assert_eq!(wait_job(driver.as_ref(), &dom).job_type, 3);
    assert!(!scratch.exists() && !socket.exists());
    assert_eq!(engine_bitmaps(&qmp), ["a1"]);
    assert!(virbackup::engine::daemon::alive(pid), "the platform's QEMU keeps running");
    let mut monitor = virbackup::engine::qmp::Qmp::connect(&qmp, Duration::from_secs(10)).unwrap();
    let _ = monitor.execute("quit", None);
    drop(monitor);
    assert!(virbackup::engine::daemon::wait_gone(pid, Duration::from_secs(10)));
    assert_eq!(bitmap_names(&vda), ["a1"]);
}

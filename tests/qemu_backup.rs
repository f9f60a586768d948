//! Backups on real qcow2 images through the embedded QEMU driver: push (full and
//! incremental, restored and compared with the source), pull (read over NBD while the
//! disk changes), abort, failures, for running and shut-off domains.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Fixture, bitmap_names, run, write_nbd, write_pattern};
use virbackup::driver::{self, DomainId, Driver, JobStats, TypedValue};
use virbackup::error::Code;

const MIB: u64 = 1 << 20;
const COMPLETED: u32 = 1;
const KEEP: u32 = 2;

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

/// Waits for the domain's job to end and returns its final statistics.
fn wait_job(driver: &dyn Driver, dom: &DomainId) -> JobStats {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let info = driver.domain_get_job_info(dom).unwrap();
        if info.job_type == 0 {
            return driver.domain_get_job_stats(dom, COMPLETED | KEEP).unwrap();
        }
        assert!(Instant::now() < deadline, "the job did not end");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn param<'a>(stats: &'a JobStats, name: &str) -> Option<&'a TypedValue> {
    stats.params.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

fn push_xml(target: &Path, incremental: Option<&str>) -> String {
    let inc = incremental.map(|c| format!("<incremental>{c}</incremental>")).unwrap_or_default();
    format!(
        "<domainbackup>{inc}<disks><disk name='vda' type='file'><target file='{}'/><driver type='qcow2'/></disk></disks></domainbackup>",
        target.display()
    )
}

fn checkpoint(name: &str) -> String {
    format!("<domaincheckpoint><name>{name}</name></domaincheckpoint>")
}

/// Copies an incremental target, points it at `base`, and compares it with `expected`.
fn restore_and_compare(fixture: &Fixture, incremental: &Path, base: &Path, expected: &Path) -> bool {
    let restored = fixture.image(&format!("restore-{}", incremental.file_name().unwrap().to_string_lossy()));
    std::fs::copy(incremental, &restored).unwrap();
    run("qemu-img", &["rebase", "-u", "-F", "qcow2", "-b", base.to_str().unwrap(), restored.to_str().unwrap()]);
    compare(&restored, expected)
}

fn compare(a: &Path, b: &Path) -> bool {
    std::process::Command::new("qemu-img")
        .args(["compare", "-U", a.to_str().unwrap(), b.to_str().unwrap()])
        .status()
        .unwrap()
        .success()
}

/// A frozen copy of an image at this moment (for a shut-off domain).
fn snapshot(fixture: &Fixture, image: &Path, name: &str) -> PathBuf {
    let copy = fixture.image(name);
    run("qemu-img", &["convert", "-U", "-O", "qcow2", image.to_str().unwrap(), copy.to_str().unwrap()]);
    copy
}

#[test]
fn shut_off_domain_full_then_incremental_push() {
    let fixture = Fixture::new();
    let driver = open(&fixture);
    let (dom, vda) = define(&fixture, driver.as_ref(), "off");
    let full = fixture.image("full.qcow2");
    driver.backup_begin(&dom, &push_xml(&full, None), Some(&checkpoint("c1")), 0).unwrap();
    let stats = wait_job(driver.as_ref(), &dom);
    assert_eq!(stats.job_type, 3, "{stats:?}");
    assert_eq!(param(&stats, "success"), Some(&TypedValue::Boolean(true)));
    assert_eq!(param(&stats, "disk_total"), Some(&TypedValue::ULLong(64 * MIB)));
    assert!(compare(&full, &vda));
    assert_eq!(bitmap_names(&vda), ["c1"]);
    assert!(!driver.domain_is_active(&dom).unwrap());

    write_pattern(&vda, "qcow2", 0x33, 20 * MIB, MIB);
    let at_inc1 = snapshot(&fixture, &vda, "at-inc1.qcow2");
    let inc1 = fixture.image("inc1.qcow2");
    driver.backup_begin(&dom, &push_xml(&inc1, Some("c1")), Some(&checkpoint("c2")), 0).unwrap();
    let stats = wait_job(driver.as_ref(), &dom);
    assert_eq!(stats.job_type, 3, "{stats:?}");
    assert_eq!(param(&stats, "disk_total"), Some(&TypedValue::ULLong(MIB)));
    assert!(restore_and_compare(&fixture, &inc1, &full, &at_inc1));
    assert_eq!(bitmap_names(&vda), ["c1", "c2"]);
}

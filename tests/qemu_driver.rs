//! The embedded QEMU driver on real qcow2 images: checkpoints as persistent dirty
//! bitmaps for shut-off and running domains, persistence across driver instances, and
//! the failure cases (missing or broken bitmaps, dead or wedged daemons, corrupt
//! metadata).

mod common;

use std::sync::Arc;

use common::{Fixture, bitmap_names, dirty_extents, disk_file, image_bitmaps, write_disk, write_pattern};
use virbackup::abi::{
    virDomainCheckpointCreateFlags as Create, virDomainCheckpointDeleteFlags as Delete,
    virDomainCheckpointXMLFlags as Xml, virDomainState, virDomainUndefineFlagsValues as Undefine,
};
use virbackup::driver::{self, DomainId, Driver, Listing};
use virbackup::error::Code;

const MIB: u64 = 1 << 20;

fn open(fixture: &Fixture) -> Arc<dyn Driver> {
    driver::open(&fixture.uri(), 0).unwrap()
}

fn names(listing: Listing) -> Vec<String> {
    match listing {
        Listing::Names(mut n) => {
            n.sort();
            n
        }
        Listing::Count(_) => panic!("asked for names"),
    }
}

/// A domain with two qcow2 disks (vda, vdb) and a raw one (vdc).
fn define_three_disks(fixture: &Fixture, driver: &dyn Driver, name: &str) -> DomainId {
    let vda = fixture.create_image(&format!("{name}-a.qcow2"), "qcow2", "64M");
    let vdb = fixture.create_image(&format!("{name}-b.qcow2"), "qcow2", "64M");
    let vdc = fixture.create_image(&format!("{name}-c.raw"), "raw", "16M");
    let xml = fixture.domain_xml(name, &[("vda", &vda, "qcow2"), ("vdb", &vdb, "qcow2"), ("vdc", &vdc, "raw")]);
    driver.domain_define_xml(&xml, 0).unwrap()
}

const SKIP_RAW: &str = "<disks><disk name='vdc' checkpoint='no'/></disks>";

fn checkpoint_xml(name: &str) -> String {
    format!(
        "<domaincheckpoint><name>{name}</name><disks><disk name='vda'/><disk name='vdb'/><disk name='vdc' checkpoint='no'/></disks></domaincheckpoint>"
    )
}

#[test]
fn shut_off_domain_gets_real_bitmaps() {
    let fixture = Fixture::new();
    let driver = open(&fixture);
    let dom = define_three_disks(&fixture, driver.as_ref(), "off");
    let (vda, vdb) = (fixture.image("off-a.qcow2"), fixture.image("off-b.qcow2"));
    assert!(!driver.domain_is_active(&dom).unwrap());

    // libvirt's alignment gives the raw disk a bitmap unless told otherwise, and refuses.
    let err = driver.checkpoint_create_xml(&dom, "<domaincheckpoint><name>x</name></domaincheckpoint>", 0).unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (
            Code::VIR_ERR_CONFIG_UNSUPPORTED,
            "unsupported configuration: checkpoint for disk vdc unsupported for storage type raw"
        )
    );
    assert!(bitmap_names(&vda).is_empty(), "a refused checkpoint leaves no bitmap");

    assert_eq!(driver.checkpoint_create_xml(&dom, &checkpoint_xml("cp1"), 0).unwrap(), "cp1");
    // The daemon quit cleanly: the bitmap is in the image, recording and not in use.
    assert_eq!(image_bitmaps(&vda), [("cp1".to_string(), vec!["auto".to_string()])]);
    assert_eq!(bitmap_names(&vdb), ["cp1"]);
    assert!(!driver.domain_is_active(&dom).unwrap(), "the operation left the domain shut off");

    write_pattern(&vda, "qcow2", 0xab, 4 * MIB, MIB);
    write_pattern(&vdb, "qcow2", 0xcd, 0, 64 * 1024);
    let sized = driver
        .checkpoint_get_xml_desc(
            &dom,
            "cp1",
            Xml::VIR_DOMAIN_CHECKPOINT_XML_SIZE as u32 | Xml::VIR_DOMAIN_CHECKPOINT_XML_NO_DOMAIN as u32,
        )
        .unwrap();
    assert!(sized.contains("<disk name='vda' checkpoint='bitmap' bitmap='cp1' size='1048576'/>"), "{sized}");
    assert!(sized.contains("<disk name='vdb' checkpoint='bitmap' bitmap='cp1' size='65536'/>"), "{sized}");
    assert!(sized.contains("<disk name='vdc' checkpoint='no'/>"), "{sized}");
    assert_eq!(dirty_extents(&fixture, &vda, "cp1"), [(4 * MIB, MIB)]);

    driver.checkpoint_create_xml(&dom, &checkpoint_xml("cp2"), 0).unwrap();
    assert_eq!(driver.checkpoint_get_parent(&dom, "cp2", 0).unwrap(), "cp1");
    assert_eq!(bitmap_names(&vda), ["cp1", "cp2"]);
    write_pattern(&vda, "qcow2", 0x11, 10 * MIB, 128 * 1024);
    assert_eq!(dirty_extents(&fixture, &vda, "cp2"), [(10 * MIB, 128 * 1024)]);
    // Every checkpoint bitmap keeps recording, so cp1 covers both writes.
    assert_eq!(dirty_extents(&fixture, &vda, "cp1"), [(4 * MIB, MIB), (10 * MIB, 128 * 1024)]);

    // Deleting the parent removes its bitmaps and reparents the child (in memory and on disk).
    driver.checkpoint_delete(&dom, "cp1", 0).unwrap();
    assert_eq!(bitmap_names(&vda), ["cp2"]);
    assert_eq!(bitmap_names(&vdb), ["cp2"]);
    assert_eq!(driver.checkpoint_get_parent(&dom, "cp2", 0).unwrap_err().code, Code::VIR_ERR_NO_DOMAIN_CHECKPOINT);
    let file = fixture.root().join("lib/qemu/checkpoint/off/cp2.xml");
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(saved.starts_with("<!--\nWARNING: THIS IS AN AUTO-GENERATED FILE."), "{saved}");
    assert!(!saved.contains("<parent>"), "{saved}");
    assert!(!fixture.root().join("lib/qemu/checkpoint/off/cp1.xml").exists());

    // METADATA_ONLY keeps the bitmaps.
    driver.checkpoint_delete(&dom, "cp2", Delete::VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY as u32).unwrap();
    assert_eq!(bitmap_names(&vda), ["cp2"]);
    assert!(names(driver.list_all_checkpoints(&dom, 0, false).unwrap()).is_empty());
}

#[test]
fn running_domain_exports_disks_and_checkpoints_live() {
    let fixture = Fixture::new();
    let driver = open(&fixture);
    let dom = define_three_disks(&fixture, driver.as_ref(), "run");
    let vda = fixture.image("run-a.qcow2");
    driver.domain_create(&dom, 0).unwrap();
    assert!(driver.domain_is_active(&dom).unwrap());
    assert_eq!(driver.domain_get_state(&dom, 0).unwrap().0, virDomainState::VIR_DOMAIN_RUNNING as i32);

    let xml = driver.domain_get_xml_desc(&dom, 0).unwrap();
    let run_dir = fixture.root().join("run/qemu/run");
    assert!(xml.contains(&format!("<virbackup:qmp socket='{}'/>", run_dir.join("qmp.sock").display())), "{xml}");
    for target in ["vda", "vdb", "vdc"] {
        let element = format!(
            "<virbackup:disk target='{target}' interface='fuse' path='{}'/>",
            run_dir.join("disks").join(target).display()
        );
        assert!(xml.contains(&element), "{xml}");
    }
    assert!(
        !driver.domain_get_xml_desc(&dom, 2).unwrap().contains("virbackup:runtime"),
        "inactive XML has no runtime data"
    );

    driver.checkpoint_create_xml(&dom, &checkpoint_xml("live1"), 0).unwrap();
    // The disks are plain files while the domain runs.
    let vda_file = disk_file(driver.as_ref(), &dom, "vda");
    assert_eq!(std::fs::metadata(&vda_file).unwrap().len(), 64 * MIB);
    write_disk(&vda_file, 0x5a, 2 * MIB, 256 * 1024);
    write_disk(&disk_file(driver.as_ref(), &dom, "vdc"), 0x5a, 0, 4096);
    let sized = driver.checkpoint_get_xml_desc(&dom, "live1", Xml::VIR_DOMAIN_CHECKPOINT_XML_SIZE as u32).unwrap();
    assert!(sized.contains("bitmap='live1' size='262144'/>"), "{sized}");

    // Stopping the domain quits the daemon, which writes the bitmaps into the images.
    driver.domain_destroy(&dom, 0).unwrap();
    assert!(!driver.domain_is_active(&dom).unwrap());
    assert_eq!(image_bitmaps(&vda), [("live1".to_string(), vec!["auto".to_string()])]);
    assert_eq!(dirty_extents(&fixture, &vda, "live1"), [(2 * MIB, 256 * 1024)]);
    assert!(!fixture.root().join("run/qemu/run").exists());
}

#[test]
fn state_survives_a_new_driver_instance() {
    let fixture = Fixture::new();
    {
        let driver = open(&fixture);
        let dom = define_three_disks(&fixture, driver.as_ref(), "keep");
        for name in ["k1", "k2", "k3"] {
            driver.checkpoint_create_xml(&dom, &checkpoint_xml(name), 0).unwrap();
        }
        driver.checkpoint_delete(&dom, "k2", 0).unwrap();
    }
    // All handles to the driver are gone, so this loads from disk.
    let driver = open(&fixture);
    let dom = driver.domain_lookup_by_name("keep").unwrap();
    assert_eq!(names(driver.list_all_checkpoints(&dom, 0, false).unwrap()), ["k1", "k3"]);
    assert_eq!(driver.checkpoint_get_parent(&dom, "k3", 0).unwrap(), "k1");
    // The current checkpoint was kept: the next one hangs below k3.
    driver.checkpoint_create_xml(&dom, &checkpoint_xml("k4"), 0).unwrap();
    assert_eq!(driver.checkpoint_get_parent(&dom, "k4", 0).unwrap(), "k3");
}

#[test]
fn redefine_takes_over_existing_bitmaps_and_validates_them() {
    let fixture = Fixture::new();
    let driver = open(&fixture);
    let dom = define_three_disks(&fixture, driver.as_ref(), "redef");
    let vda = fixture.image("redef-a.qcow2");
    driver.checkpoint_create_xml(&dom, &checkpoint_xml("r1"), 0).unwrap();
    let saved = driver.checkpoint_get_xml_desc(&dom, "r1", 0).unwrap();

    // Lose the metadata; the bitmaps stay in the images.
    let err = driver.domain_undefine(&dom, 0).unwrap_err();
    assert_eq!(err.message, "Requested operation is not valid: cannot delete inactive domain with 1 checkpoints");
    driver.domain_undefine(&dom, Undefine::VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA as u32).unwrap();
    assert_eq!(bitmap_names(&vda), ["r1"]);
    let xml = fixture.domain_xml(
        "redef",
        &[
            ("vda", &vda, "qcow2"),
            ("vdb", &fixture.image("redef-b.qcow2"), "qcow2"),
            ("vdc", &fixture.image("redef-c.raw"), "raw"),
        ],
    );
    // Same domain again (same UUID, from the checkpoint's copy of the definition).
    let uuid = saved.split("<uuid>").nth(1).unwrap().split("</uuid>").next().unwrap();
    let xml = xml.replacen("</name>", &format!("</name>\n  <uuid>{uuid}</uuid>"), 1);
    let dom = driver.domain_define_xml(&xml, 0).unwrap();

    // The trap users hit: a plain create of the same name finds the bitmap in the image.
    let err = driver.checkpoint_create_xml(&dom, &checkpoint_xml("r1"), 0).unwrap_err();
    assert!(err.message.contains("already exists"), "{}", err.message);
    // REDEFINE takes it over; VALIDATE confirms the bitmaps are there and healthy.
    let both = Create::VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE as u32
        | Create::VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE_VALIDATE as u32;
    assert_eq!(driver.checkpoint_create_xml(&dom, &saved, both).unwrap(), "r1");
    assert_eq!(driver.checkpoint_get_xml_desc(&dom, "r1", 0).unwrap(), saved);

    // A bitmap removed behind the driver's back makes validation fail with 109.
    common::run("qemu-img", &["bitmap", "--remove", vda.to_str().unwrap(), "r1"]);
    let err = driver.checkpoint_create_xml(&dom, &saved, both).unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (
            Code::VIR_ERR_CHECKPOINT_INCONSISTENT,
            "checkpoint inconsistent: missing or broken bitmap 'r1' for disk 'vda'"
        )
    );
    // Without VALIDATE the metadata is accepted; deleting then reports the missing bitmap,
    // and METADATA_ONLY cleans up.
    let err = driver.checkpoint_delete(&dom, "r1", 0).unwrap_err();
    assert_eq!(err.message, "internal error: bitmap 'r1' not found in backing chain of 'vda'");
    assert_eq!(bitmap_names(&fixture.image("redef-b.qcow2")), ["r1"], "a failed delete removes nothing");
    driver.checkpoint_delete(&dom, "r1", Delete::VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY as u32).unwrap();
}

#[test]
fn bitmap_name_must_match_and_hostile_names_are_refused() {
    let fixture = Fixture::new();
    let driver = open(&fixture);
    let dom = define_three_disks(&fixture, driver.as_ref(), "rules");
    let err = driver
        .checkpoint_create_xml(&dom, "<domaincheckpoint><name>c</name><disks><disk name='vda' bitmap='other'/><disk name='vdc' checkpoint='no'/></disks></domaincheckpoint>", 0)
        .unwrap_err();
    assert_eq!(err.message, "unsupported configuration: bitmap for disk 'vda' must match checkpoint name 'c'");
    // A QUIESCE request is refused as libvirt's QEMU driver refuses it.
    let err = driver
        .checkpoint_create_xml(&dom, &checkpoint_xml("q"), Create::VIR_DOMAIN_CHECKPOINT_CREATE_QUIESCE as u32)
        .unwrap_err();
    assert_eq!(err.message, "unsupported flags (0x2) in function qemuCheckpointCreateXML");
    let long = "x".repeat(300);
    let err = driver
        .checkpoint_create_xml(&dom, &format!("<domaincheckpoint><name>{long}</name>{SKIP_RAW}</domaincheckpoint>"), 0)
        .unwrap_err();
    assert_eq!(err.code, Code::VIR_ERR_INVALID_ARG);
    assert!(bitmap_names(&fixture.image("rules-a.qcow2")).is_empty());
    for bad in ["..", ".hidden", "a\nb"] {
        let xml = fixture.domain_xml(bad, &[]);
        assert!(driver.domain_define_xml(&xml, 0).is_err(), "{bad:?}");
    }
    assert!(std::fs::read_dir(fixture.root().join("etc/qemu")).unwrap().count() == 1);
}

#[test]
fn corrupt_metadata_is_reported_and_the_rest_loads() {
    let fixture = Fixture::new();
    {
        let driver = open(&fixture);
        let dom = define_three_disks(&fixture, driver.as_ref(), "corrupt");
        driver.checkpoint_create_xml(&dom, &checkpoint_xml("good"), 0).unwrap();
        driver.checkpoint_create_xml(&dom, &checkpoint_xml("bad"), 0).unwrap();
    }
    let bad = fixture.root().join("lib/qemu/checkpoint/corrupt/bad.xml");
    std::fs::write(&bad, "<domaincheckpoint><name>bad</name").unwrap();
    let driver = open(&fixture);
    let dom = driver.domain_lookup_by_name("corrupt").unwrap();
    assert_eq!(names(driver.list_all_checkpoints(&dom, 0, false).unwrap()), ["good"]);
    assert_eq!(
        std::fs::read_to_string(&bad).unwrap(),
        "<domaincheckpoint><name>bad</name",
        "the corrupt file is kept as it was"
    );
}

/// Starts a qemu-storage-daemon on the images the way a platform runs its own QEMU, and
/// returns its pid.
fn start_platform_daemon(fixture: &Fixture, qmp: &std::path::Path, images: &[(&str, std::path::PathBuf)]) -> u32 {
    let disks: Vec<virbackup::engine::EngineDisk> = images
        .iter()
        .map(|(target, path)| virbackup::engine::EngineDisk {
            target: target.to_string(),
            path: path.clone(),
            format: "qcow2".into(),
            read_only: false,
        })
        .collect();
    let pidfile = fixture.dir.path().join("platform.pid");
    virbackup::engine::daemon::start(&virbackup::engine::daemon::DaemonConfig {
        qmp,
        pidfile: &pidfile,
        disks: &disks,
        exports: &[],
        events: None,
    })
    .unwrap()
}

#[test]
fn adopted_qemu_is_driven_but_never_started_or_stopped() {
    let fixture = Fixture::new();
    let driver = open(&fixture);
    let vda = fixture.create_image("adopt-a.qcow2", "qcow2", "64M");
    let qmp = fixture.dir.path().join("platform.sock");
    let xml = fixture.domain_xml("adopt", &[("vda", &vda, "qcow2")]).replacen(
        "</name>",
        &format!(
            "</name>\n  <metadata>\n    <vb:engine xmlns:vb='urn:virbackup:domain:1' qmp='{}'/>\n  </metadata>",
            qmp.display()
        ),
        1,
    );
    let dom = driver.domain_define_xml(&xml, 0).unwrap();
    assert!(!driver.domain_is_active(&dom).unwrap(), "no QEMU is running yet");
    let err = driver.domain_create(&dom, 0).unwrap_err();
    assert!(err.message.contains("which virbackup does not start"), "{}", err.message);

    let pid = start_platform_daemon(&fixture, &qmp, &[("vda", vda.clone())]);
    assert!(driver.domain_is_active(&dom).unwrap(), "the platform's QEMU answers, so the domain runs");
    driver.checkpoint_create_xml(&dom, "<domaincheckpoint><name>a1</name></domaincheckpoint>", 0).unwrap();
    // The bitmap lives in the platform's QEMU (it reaches the image when that QEMU quits).
    let mut session = virbackup::engine::qmp::Qmp::connect(&qmp, std::time::Duration::from_secs(5)).unwrap();
    let nodes = session.execute("query-named-block-nodes", Some(serde_json::json!({"flat": true}))).unwrap();
    let has_bitmap = nodes
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["dirty-bitmaps"].as_array().is_some_and(|b| b.iter().any(|b| b["name"] == "a1")));
    assert!(has_bitmap, "{nodes}");
    let err = driver.domain_destroy(&dom, 0).unwrap_err();
    assert!(err.message.contains("which virbackup does not stop"), "{}", err.message);
    assert!(virbackup::engine::daemon::alive(pid), "the platform's QEMU still runs");
    let xml = driver.domain_get_xml_desc(&dom, 0).unwrap();
    assert!(xml.contains("adopted='yes'"), "{xml}");

    // The platform stops its QEMU: the domain is shut off, and the next operation opens
    // the disks itself.
    let _ = session.execute("quit", None);
    assert!(virbackup::engine::daemon::wait_gone(pid, std::time::Duration::from_secs(10)));
    assert!(!driver.domain_is_active(&dom).unwrap());
    assert_eq!(bitmap_names(&vda), ["a1"]);
    driver.checkpoint_create_xml(&dom, "<domaincheckpoint><name>a2</name></domaincheckpoint>", 0).unwrap();
    assert_eq!(bitmap_names(&vda), ["a1", "a2"]);
}

/// The pid of a running domain's daemon, from its pid file.
fn daemon_pid(fixture: &Fixture, domain: &str) -> i32 {
    std::fs::read_to_string(fixture.root().join(format!("run/qemu/{domain}/qsd.pid"))).unwrap().trim().parse().unwrap()
}

fn signal(pid: i32, signal: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).unwrap();
}

#[test]
fn a_dead_daemon_leaves_the_domain_shut_off_and_state_clean() {
    let fixture = Fixture::new();
    let driver = open(&fixture);
    let dom = define_three_disks(&fixture, driver.as_ref(), "crash");
    driver.domain_create(&dom, 0).unwrap();
    driver.checkpoint_create_xml(&dom, &checkpoint_xml("before"), 0).unwrap();
    let pid = daemon_pid(&fixture, "crash");
    signal(pid, nix::sys::signal::Signal::SIGKILL);
    assert!(virbackup::engine::daemon::wait_gone(pid as u32, std::time::Duration::from_secs(10)));

    let (state, reason) = driver.domain_get_state(&dom, 0).unwrap();
    assert_eq!(state, virDomainState::VIR_DOMAIN_SHUTOFF as i32);
    assert_eq!(reason, virbackup::abi::virDomainShutoffReason::VIR_DOMAIN_SHUTOFF_FAILED as i32);
    assert!(!fixture.root().join("run/qemu/crash.xml").exists(), "the status file is gone");
    // Its disks' FUSE files, which it left mounted and dead, are detached and gone.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(fixture.root().to_str().unwrap()), "{mounts}");
    assert!(!fixture.root().join("run/qemu/crash").exists());
    // The bitmap added while running was never written back: validation says so.
    let saved = driver.checkpoint_get_xml_desc(&dom, "before", 0).unwrap();
    let both = Create::VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE as u32
        | Create::VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE_VALIDATE as u32;
    let err = driver.checkpoint_create_xml(&dom, &saved, both).unwrap_err();
    assert_eq!(err.code, Code::VIR_ERR_CHECKPOINT_INCONSISTENT, "{}", err.message);
    // The domain works again, shut off.
    driver.checkpoint_delete(&dom, "before", Delete::VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY as u32).unwrap();
    driver.checkpoint_create_xml(&dom, &checkpoint_xml("after"), 0).unwrap();
    assert_eq!(bitmap_names(&fixture.image("crash-a.qcow2")), ["after"]);
    driver.domain_create(&dom, 0).unwrap();
    driver.domain_destroy(&dom, 0).unwrap();
}

#[test]
fn a_wedged_daemon_times_out_then_a_killed_one_is_noticed() {
    let fixture = Fixture::new();
    let driver = open(&fixture);
    let dom = define_three_disks(&fixture, driver.as_ref(), "wedge");
    driver.domain_create(&dom, 0).unwrap();
    let pid = daemon_pid(&fixture, "wedge");
    signal(pid, nix::sys::signal::Signal::SIGSTOP);
    // The operation runs in another process so the short timeout applies only to it.
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_creates_one_checkpoint", "--ignored", "--nocapture"])
        .env("VB_CHILD_URI", fixture.uri())
        .env("VB_CHILD_DOMAIN", "wedge")
        .env("VIRBACKUP_QMP_TIMEOUT_MS", "500")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&child.stdout);
    assert!(out.contains("create failed: code=68"), "{out}");
    assert!(out.contains("did not answer"), "{out}");
    // Killed while stopped mid-operation: the next call notices, nothing was recorded.
    signal(pid, nix::sys::signal::Signal::SIGKILL);
    assert!(virbackup::engine::daemon::wait_gone(pid as u32, std::time::Duration::from_secs(10)));
    assert!(!driver.domain_is_active(&dom).unwrap());
    assert!(names(driver.list_all_checkpoints(&dom, 0, false).unwrap()).is_empty());
    assert!(!fixture.root().join("lib/qemu/checkpoint/wedge/w1.xml").exists());
}

/// Run by other tests in a child process (see `VB_CHILD_*`).
#[test]
#[ignore = "run as a child process by other tests"]
fn child_creates_one_checkpoint() {
    let driver = driver::open(&std::env::var("VB_CHILD_URI").unwrap(), 0).unwrap();
    let dom = driver.domain_lookup_by_name(&std::env::var("VB_CHILD_DOMAIN").unwrap()).unwrap();
    match driver.checkpoint_create_xml(&dom, &checkpoint_xml("w1"), 0) {
        Ok(name) => println!("created {name}"),
        Err(e) => println!("create failed: code={} {}", e.code as i32, e.message),
    }
}

/// Run by `two_processes_share_a_root` in child processes.
#[test]
#[ignore = "run as a child process by other tests"]
fn child_creates_many_checkpoints() {
    let driver = driver::open(&std::env::var("VB_CHILD_URI").unwrap(), 0).unwrap();
    let dom = driver.domain_lookup_by_name("shared").unwrap();
    let prefix = std::env::var("VB_CHILD_PREFIX").unwrap();
    for i in 0..8 {
        driver.checkpoint_create_xml(&dom, &checkpoint_xml(&format!("{prefix}{i}")), 0).unwrap();
        let _ = driver.list_all_checkpoints(&dom, 0, false).unwrap();
    }
    println!("child {prefix} done");
}

#[test]
fn two_processes_share_a_root() {
    let fixture = Fixture::new();
    {
        let driver = open(&fixture);
        define_three_disks(&fixture, driver.as_ref(), "shared");
    }
    let children: Vec<_> = ["p", "q"]
        .iter()
        .map(|prefix| {
            std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "child_creates_many_checkpoints", "--ignored", "--nocapture"])
                .env("VB_CHILD_URI", fixture.uri())
                .env("VB_CHILD_PREFIX", prefix)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let driver = open(&fixture);
    let dom = driver.domain_lookup_by_name("shared").unwrap();
    let all = names(driver.list_all_checkpoints(&dom, 0, false).unwrap());
    assert_eq!(all.len(), 16, "{all:?}");
    // The creates were serialised: each one's parent was the one before, so the 16 form a
    // single chain, and every one has its bitmap.
    let topological = match driver.list_all_checkpoints(&dom, 2, false).unwrap() {
        Listing::Names(n) => n,
        Listing::Count(_) => unreachable!(),
    };
    for pair in topological.windows(2) {
        assert_eq!(driver.checkpoint_get_parent(&dom, &pair[1], 0).unwrap(), pair[0]);
    }
    assert_eq!(bitmap_names(&fixture.image("shared-a.qcow2")).len(), 16);
}

#[test]
fn uris_and_roots() {
    let err = driver::open("qemu:///embed", 0).err().unwrap();
    assert_eq!(
        (err.code, err.domain as i32, err.message.as_str()),
        (Code::VIR_ERR_INVALID_ARG, 45, "invalid argument: Missing URI parameter 'root'")
    );
    let err = driver::open("qemu:///embed?root=relative/dir", 0).err().unwrap();
    assert_eq!(err.message, "unsupported configuration: root path must be absolute");
    for unsafe_root in ["/", "/tmp/../etc", "/tmp/./x"] {
        assert!(driver::open(&format!("qemu:///embed?root={unsafe_root}"), 0).is_err(), "{unsafe_root}");
    }
    assert_eq!(driver::open("qemu:///system", 0).err().unwrap().code, Code::VIR_ERR_NO_CONNECT);
    // The root is created when missing; the session root follows XDG_STATE_HOME.
    let fixture = Fixture::new();
    let driver = open(&fixture);
    assert_eq!(driver.connect_get_type(), "QEMU");
    assert!(driver.connect_get_version().unwrap() >= 7_000_000);
    for sub in ["etc/qemu", "lib/qemu/checkpoint", "run/qemu"] {
        assert!(fixture.root().join(sub).is_dir(), "{sub}");
    }
}

/// Run by `session_uri_uses_the_xdg_state_folder` in a child process.
#[test]
#[ignore = "run as a child process by other tests"]
fn child_defines_in_the_session() {
    let driver = driver::open("qemu:///session", 0).unwrap();
    let xml = "<domain type='qemu'><name>sess</name><memory>1024</memory><os><type>hvm</type></os></domain>";
    driver.domain_define_xml(xml, 0).unwrap();
    println!("defined");
}

#[test]
fn session_uri_uses_the_xdg_state_folder() {
    let state = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_defines_in_the_session", "--ignored", "--nocapture"])
        .env("XDG_STATE_HOME", state.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(state.path().join("virbackup/etc/qemu/sess.xml").is_file());
}

#[test]
fn an_undefined_running_domain_is_transient_until_it_stops() {
    let fixture = Fixture::new();
    let driver = open(&fixture);
    let dom = define_three_disks(&fixture, driver.as_ref(), "trans");
    driver.domain_create(&dom, 0).unwrap();
    driver.checkpoint_create_xml(&dom, &checkpoint_xml("t1"), 0).unwrap();
    let with_checkpoints =
        virbackup::abi::virConnectListAllDomainsFlags::VIR_CONNECT_LIST_DOMAINS_HAS_CHECKPOINT as u32;
    assert_eq!(driver.connect_list_all_domains(with_checkpoints).unwrap().len(), 1);
    driver.domain_undefine(&dom, 0).unwrap();
    assert!(!driver.domain_is_persistent(&dom).unwrap());
    assert!(driver.domain_is_active(&dom).unwrap());
    assert!(!fixture.root().join("etc/qemu/trans.xml").exists());
    assert_eq!(
        names(driver.list_all_checkpoints(&dom, 0, false).unwrap()),
        ["t1"],
        "it keeps its checkpoints while it runs"
    );
    driver.domain_destroy(&dom, 0).unwrap();
    let err = driver.domain_is_active(&dom).unwrap_err();
    assert_eq!(err.code, Code::VIR_ERR_NO_DOMAIN);
    assert!(!fixture.root().join("lib/qemu/checkpoint/trans").exists(), "its checkpoint metadata went with it");
    assert_eq!(bitmap_names(&fixture.image("trans-a.qcow2")), ["t1"], "the bitmaps stay in the image");
}

/// A vhost-user frontend, as far as a VM's first words with a vhost-user-blk export go.
struct VhostUser(std::os::unix::net::UnixStream);

impl VhostUser {
    const GET_FEATURES: u32 = 1;
    const SET_OWNER: u32 = 3;
    const GET_PROTOCOL_FEATURES: u32 = 15;
    const SET_PROTOCOL_FEATURES: u32 = 16;
    const GET_CONFIG: u32 = 24;

    /// Sends a request (header: request, flags = version 1, payload size).
    fn send(&mut self, request: u32, payload: &[u8]) {
        use std::io::Write;
        let mut message = Vec::new();
        for word in [request, 1, payload.len() as u32] {
            message.extend_from_slice(&word.to_le_bytes());
        }
        message.extend_from_slice(payload);
        self.0.write_all(&message).unwrap();
    }

    /// Reads a reply's payload.
    fn receive(&mut self) -> Vec<u8> {
        use std::io::Read;
        let mut header = [0u8; 12];
        self.0.read_exact(&mut header).unwrap();
        let mut payload = vec![0u8; u32::from_le_bytes(header[8..12].try_into().unwrap()) as usize];
        self.0.read_exact(&mut payload).unwrap();
        payload
    }

    fn ask_u64(&mut self, request: u32) -> u64 {
        self.send(request, &[]);
        u64::from_le_bytes(self.receive()[..8].try_into().unwrap())
    }
}

/// Negotiates with a vhost-user-blk export and reads the device's config space, whose
/// first field is the disk's capacity in 512-byte sectors.
fn vhost_user_blk_capacity(socket: &std::path::Path) -> u64 {
    const PROTOCOL_FEATURES: u64 = 1 << 30;
    const PROTOCOL_CONFIG: u64 = 1 << 9;
    let mut device = VhostUser(std::os::unix::net::UnixStream::connect(socket).unwrap());
    let features = device.ask_u64(VhostUser::GET_FEATURES);
    assert_ne!(features & PROTOCOL_FEATURES, 0, "features {features:#x}");
    device.send(VhostUser::SET_OWNER, &[]);
    let protocol = device.ask_u64(VhostUser::GET_PROTOCOL_FEATURES);
    assert_ne!(protocol & PROTOCOL_CONFIG, 0, "protocol features {protocol:#x}");
    device.send(VhostUser::SET_PROTOCOL_FEATURES, &PROTOCOL_CONFIG.to_le_bytes());
    // offset, size, flags, then the region to fill.
    let mut request: Vec<u8> = [0u32, 8, 0].iter().flat_map(|w| w.to_le_bytes()).collect();
    request.extend_from_slice(&[0u8; 8]);
    device.send(VhostUser::GET_CONFIG, &request);
    let config = device.receive();
    u64::from_le_bytes(config[12..20].try_into().unwrap())
}

#[test]
fn running_domain_offers_its_disks_over_vhost_user_blk() {
    let fixture = Fixture::new();
    let driver = open(&fixture);
    let vda = fixture.create_image("vu.qcow2", "qcow2", "48M");
    let metadata = "<metadata><virbackup:disks xmlns:virbackup='urn:virbackup:domain:1' interface='vhost-user-blk'/>\
                    </metadata><devices>";
    let xml = fixture.domain_xml("vu", &[("vda", &vda, "qcow2")]).replace("<devices>", metadata);
    let dom = driver.domain_define_xml(&xml, 0).unwrap();
    driver.domain_create(&dom, 0).unwrap();
    let socket = fixture.root().join("run/qemu/vu/disks/vda.sock");
    let live = driver.domain_get_xml_desc(&dom, 0).unwrap();
    let element = format!("<virbackup:disk target='vda' interface='vhost-user-blk' path='{}'/>", socket.display());
    assert!(live.contains(&element), "{live}");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&socket).unwrap().mode() & 0o777, 0o600);
    assert_eq!(vhost_user_blk_capacity(&socket), 48 * MIB / 512);
    // A checkpoint and a pull backup meanwhile: the NBD server is the backup's.
    driver.checkpoint_create_xml(&dom, &common::checkpoint("c1"), 0).unwrap();
    let pull = fixture.image("vu-pull.sock");
    let backup = format!(
        "<domainbackup mode='pull'><server transport='unix' socket='{}'/><disks><disk name='vda' type='file'>\
         <scratch file='{}'/></disk></disks></domainbackup>",
        pull.display(),
        fixture.image("vu.scratch").display()
    );
    driver.backup_begin(&dom, &backup, None, 0).unwrap();
    let info = common::run("nbdinfo", &["--size", &format!("nbd+unix:///vda?socket={}", pull.display())]);
    assert_eq!(info.trim(), (48 * MIB).to_string());
    driver.domain_abort_job(&dom, 0).unwrap();
    common::wait_job(driver.as_ref(), &dom);
    driver.domain_destroy(&dom, 0).unwrap();
    assert!(!socket.exists());
    assert_eq!(bitmap_names(&vda), ["c1"]);
    // An interface virbackup does not offer is refused when the domain is defined.
    let bad =
        xml.replace("interface='vhost-user-blk'", "interface='nbd'").replace("<name>vu</name>", "<name>bad</name>");
    let err = driver.domain_define_xml(&bad, 0).unwrap_err();
    assert_eq!(err.code, Code::VIR_ERR_CONFIG_UNSUPPORTED, "{err:?}");
    assert!(err.message.contains("disk interface 'nbd' is not supported"), "{err:?}");
}

/// Run by `an_older_qemu_is_refused_naming_the_minimum` with a daemon that says it is
/// QEMU 6.2.
#[test]
#[ignore = "run as a child process by other tests"]
fn child_starts_and_checkpoints() {
    let driver = driver::open(&std::env::var("VB_CHILD_URI").unwrap(), 0).unwrap();
    let dom = driver.domain_lookup_by_name("old").unwrap();
    for (what, result) in [
        ("start", driver.domain_create(&dom, 0).map(drop)),
        ("checkpoint", driver.checkpoint_create_xml(&dom, &checkpoint_xml("c1"), 0).map(drop)),
    ] {
        match result {
            Ok(()) => println!("{what}: ok"),
            Err(e) => println!("{what}: code={} {}", e.code as i32, e.message),
        }
    }
}

#[test]
fn an_older_qemu_is_refused_naming_the_minimum() {
    let fixture = Fixture::new();
    define_three_disks(&fixture, open(&fixture).as_ref(), "old");
    let fake = fixture.image("qemu-storage-daemon");
    std::fs::write(&fake, "#!/bin/sh\necho 'qemu-storage-daemon version 6.2.0 (Debian 1:6.2+dfsg-2)'\nexit 1\n")
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_starts_and_checkpoints", "--ignored", "--nocapture"])
        .env("VB_CHILD_URI", fixture.uri())
        .env("VIRBACKUP_QSD", &fake)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let why = format!("{} is QEMU 6.2.0, older than 7.2, the oldest virbackup works with", fake.display());
    for what in ["start", "checkpoint"] {
        let line = text.lines().find(|l| l.starts_with(&format!("{what}: "))).unwrap_or_else(|| panic!("{text}"));
        assert!(line.contains(&why), "{line}");
        assert!(line.contains(&format!("code={}", Code::VIR_ERR_OPERATION_FAILED as i32)), "{line}");
    }
}

//! The embedded QEMU driver on real qcow2 images: checkpoints as persistent dirty
//! bitmaps for shut-off and running domains, persistence across driver instances, and
//! the failure cases (missing or broken bitmaps, dead or wedged daemons, corrupt
//! metadata).

mod common;

use std::sync::Arc;

use common::{Fixture, bitmap_names, dirty_extents, image_bitmaps, write_nbd, write_pattern};
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
    let socket = fixture.root().join("run/qemu/run/nbd.sock");
    assert!(xml.contains(&format!("<virbackup:nbd socket='{}'>", socket.display())), "{xml}");
    assert!(xml.contains("<virbackup:export disk='vda' name='vda'/>"), "{xml}");
    assert!(
        !driver.domain_get_xml_desc(&dom, 2).unwrap().contains("virbackup:runtime"),
        "inactive XML has no runtime data"
    );

    driver.checkpoint_create_xml(&dom, &checkpoint_xml("live1"), 0).unwrap();
    write_nbd(&socket, "vda", 0x5a, 2 * MIB, 256 * 1024);
    write_nbd(&socket, "vdc", 0x5a, 0, 4096);
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

//! Snapshots on real qcow2 images through the embedded QEMU driver: internal snapshots
//! of a shut-off domain, reverts and deletes, metadata that a new process reads, and
//! checkpoints that stay correct bases for incremental backups across reverts (each
//! incremental restored onto its base equals the disk).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{
    Fixture, checkpoint, compare, disk_file, push_xml, read_disk, restore_and_compare, run, wait_job, write_disk,
    write_pattern,
};
use virbackup::driver::{self, DomainId, Driver, Listing};
use virbackup::error::Code;

const MIB: u64 = 1 << 20;

fn open(fixture: &Fixture) -> Arc<dyn Driver> {
    driver::open(&fixture.uri(), 0).unwrap()
}

/// A shut-off domain with a 64 MiB qcow2 disk `vda` holding some data.
fn define(fixture: &Fixture, driver: &dyn Driver) -> (DomainId, PathBuf) {
    let vda = fixture.create_image("vm-a.qcow2", "qcow2", "64M");
    write_pattern(&vda, "qcow2", 0x11, 0, 8 * MIB);
    let dom = driver.domain_define_xml(&fixture.domain_xml("vm", &[("vda", &vda, "qcow2")]), 0).unwrap();
    (dom, vda)
}

fn snapshot_xml(name: &str) -> String {
    format!("<domainsnapshot><name>{name}</name></domainsnapshot>")
}

/// A push backup into `target` (full, or incremental from `since`), creating
/// checkpoint `create` when given; waits for it to end.
fn backup(driver: &dyn Driver, dom: &DomainId, target: &Path, since: Option<&str>, create: Option<&str>) {
    let cp = create.map(checkpoint);
    driver.backup_begin(dom, &push_xml(target, since), cp.as_deref(), 0).unwrap();
    let stats = wait_job(driver, dom);
    assert_eq!(stats.job_type, 3, "the backup did not complete: {stats:?}");
}

fn names(listing: Listing) -> Vec<String> {
    let Listing::Names(mut names) = listing else { panic!("a count, not names") };
    names.sort();
    names
}

fn image_snapshots(image: &Path) -> Vec<String> {
    let out = run("qemu-img", &["info", "-U", "--output=json", image.to_str().unwrap()]);
    let info: serde_json::Value = serde_json::from_str(&out).unwrap();
    info["snapshots"]
        .as_array()
        .map(|l| l.iter().map(|s| s["name"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// The scenario: full backup with checkpoint c1; writes; snapshot s1; writes; full
/// backup with checkpoint c2; writes; revert to s1; writes; full backup with checkpoint
/// c3 (a child of c1). Then an incremental from each of c1, c2 and c3, restored on top
/// of the full backup taken with it, equals the disk. On a running domain the writes go
/// through its disk's FUSE file and the disk is read through it; the revert restarts it.
fn checkpoints_across_a_revert(running: bool) {
    let fixture = Fixture::new();
    let driver = open(&fixture);
    let (dom, vda) = define(&fixture, &*driver);
    if running {
        driver.domain_create(&dom, 0).unwrap();
    }
    let full = |n: &str| fixture.image(&format!("full-{n}.qcow2"));
    let write = |pattern: u8, offset: u64, len: u64| {
        if running {
            write_disk(&disk_file(&*driver, &dom, "vda"), pattern, offset, len);
        } else {
            write_pattern(&vda, "qcow2", pattern, offset, len);
        }
    };
    // The disk as it is now.
    let freeze = |name: &str| {
        if running {
            read_disk(&fixture, &disk_file(&*driver, &dom, "vda"), name)
        } else {
            let copy = fixture.image(name);
            run("qemu-img", &["convert", "-O", "qcow2", vda.to_str().unwrap(), copy.to_str().unwrap()]);
            copy
        }
    };

    backup(&*driver, &dom, &full("c1"), None, Some("c1"));
    write(0x21, 10 * MIB, 2 * MIB);
    assert_eq!(driver.snapshot_create_xml(&dom, &snapshot_xml("s1"), 0).unwrap(), "s1");
    let state = if running { "disk-snapshot" } else { "shutoff" };
    assert!(driver.snapshot_get_xml_desc(&dom, "s1", 0).unwrap().contains(&format!("<state>{state}</state>")));
    let at_s1 = freeze("at-s1.qcow2");
    write(0x22, 20 * MIB, 3 * MIB);
    backup(&*driver, &dom, &full("c2"), None, Some("c2"));
    write(0x23, 30 * MIB, MIB);

    driver.revert_to_snapshot(&dom, "s1", 0).unwrap();
    assert_eq!(driver.domain_is_active(&dom).unwrap(), running, "the domain is in the snapshot's state");
    assert!(compare(&freeze("after-revert.qcow2"), &at_s1), "the revert brought the disk back to s1");
    // The checkpoint current when s1 was taken is current again: c3 becomes its child.
    write(0x24, 40 * MIB, MIB);
    backup(&*driver, &dom, &full("c3"), None, Some("c3"));
    assert_eq!(driver.checkpoint_get_parent(&dom, "c3", 0).unwrap(), "c1");
    assert_eq!(names(driver.checkpoint_list_all_children(&dom, "c1", 0, false).unwrap()), ["c2", "c3"]);
    write(0x25, 50 * MIB, MIB);

    for base in ["c1", "c2", "c3"] {
        let inc = fixture.image(&format!("inc-{base}.qcow2"));
        let now = freeze(&format!("disk-at-inc-{base}.qcow2"));
        backup(&*driver, &dom, &inc, Some(base), None);
        assert!(
            restore_and_compare(&fixture, &inc, &full(base), &now),
            "the incremental from {base} restores the disk"
        );
    }
    // The clusters the revert changed back (written at 20 MiB before c2, zeros again
    // after it) are in the incremental from c2, in its own layer: the snapshot's bitmap
    // was added to c2's.
    let map = run("qemu-img", &["map", "-U", "--output=json", fixture.image("inc-c2.qcow2").to_str().unwrap()]);
    let extents: serde_json::Value = serde_json::from_str(&map).unwrap();
    let holds = |offset: u64| {
        extents.as_array().unwrap().iter().any(|e| {
            let (start, len) = (e["start"].as_u64().unwrap(), e["length"].as_u64().unwrap());
            e["present"].as_bool() == Some(true)
                && e["depth"].as_u64() == Some(0)
                && start <= offset
                && offset < start + len
        })
    };
    assert!(holds(20 * MIB) && holds(30 * MIB) && holds(40 * MIB), "{map}");
    assert!(!holds(0), "clusters unchanged since c2 are not copied: {map}");
    if running {
        driver.domain_destroy(&dom, 0).unwrap();
    }
}

#[test]
fn checkpoints_stay_correct_across_a_revert_of_a_shut_off_domain() {
    checkpoints_across_a_revert(false);
}

#[test]
fn checkpoints_stay_correct_across_a_revert_of_a_running_domain() {
    checkpoints_across_a_revert(true);
}

#[test]
fn snapshots_are_listed_reverted_deleted_and_kept_for_another_process() {
    let fixture = Fixture::new();
    let driver = open(&fixture);
    let (dom, vda) = define(&fixture, &*driver);
    driver.snapshot_create_xml(&dom, &snapshot_xml("s1"), 0).unwrap();
    write_pattern(&vda, "qcow2", 0x31, 0, MIB);
    driver.snapshot_create_xml(&dom, &snapshot_xml("s2"), 0).unwrap();
    driver.revert_to_snapshot(&dom, "s1", 0).unwrap();
    driver.snapshot_create_xml(&dom, &snapshot_xml("s3"), 0).unwrap();
    // A branching tree: s1 has two children; s3 is current.
    assert_eq!(
        names(driver.snapshot_list_all_children(&dom, "s1", 0, false, "virDomainSnapshotListAllChildren").unwrap()),
        ["s2", "s3"]
    );
    assert_eq!(driver.snapshot_current(&dom, 0).unwrap(), "s3");
    let xml = driver.snapshot_get_xml_desc(&dom, "s3", 0).unwrap();
    assert!(xml.contains("<state>shutoff</state>") && xml.contains("<disk name='vda' snapshot='internal'/>"), "{xml}");
    assert!(xml.contains("<parent>\n    <name>s1</name>"), "{xml}");
    assert_eq!(image_snapshots(&vda), ["s1", "s2", "s3"]);

    // Another process sees the same tree and current snapshot.
    drop(driver);
    let again = open(&fixture);
    assert_eq!(again.snapshot_current(&dom, 0).unwrap(), "s3");
    assert_eq!(again.snapshot_get_parent(&dom, "s2", 0).unwrap(), "s1");
    assert_eq!(again.snapshot_get_xml_desc(&dom, "s3", 0).unwrap(), xml);

    // Deleting s1 moves its children up and removes it from the image.
    again.snapshot_delete(&dom, "s1", 0).unwrap();
    assert_eq!(image_snapshots(&vda), ["s2", "s3"]);
    assert!(again.snapshot_get_parent(&dom, "s2", 0).is_err());
    assert!(!common::bitmap_names(&vda).iter().any(|b| b.ends_with("/s1")));
    // Children only, then metadata only (the image keeps its snapshot).
    again.snapshot_delete(&dom, "s3", 4).unwrap();
    again.snapshot_delete(&dom, "s3", 2).unwrap();
    assert_eq!(image_snapshots(&vda), ["s2", "s3"]);
    let listing = again.list_all_snapshots(&dom, 0, true, "virDomainSnapshotNum").unwrap();
    assert_eq!(listing.len(), 1);
    // Undefine refuses while snapshots exist, unless their metadata may go.
    let e = again.domain_undefine(&dom, 0).unwrap_err();
    assert_eq!(e.message, "Requested operation is not valid: cannot delete inactive domain with 1 snapshots");
    again.domain_undefine(&dom, 1 << 1).unwrap();
}

#[test]
fn what_is_not_supported_is_refused_and_leaves_nothing() {
    let fixture = Fixture::new();
    let driver = open(&fixture);
    let (dom, vda) = define(&fixture, &*driver);
    let raw = fixture.create_image("vm-b.raw", "raw", "16M");
    let two = driver
        .domain_define_xml(
            &fixture.domain_xml(
                "two",
                &[("vda", &fixture.create_image("t.qcow2", "qcow2", "16M"), "qcow2"), ("vdb", &raw, "raw")],
            ),
            0,
        )
        .unwrap();
    let e = driver.snapshot_create_xml(&two, &snapshot_xml("s"), 0).unwrap_err();
    assert_eq!(e.message, "unsupported configuration: internal snapshot for disk vdb unsupported for storage type raw");
    let e = driver.snapshot_create_xml(&dom, &snapshot_xml("a/b"), 0).unwrap_err();
    assert_eq!(e.message, "invalid snapshot name 'a/b': name can't contain '/'");
    let e = driver.snapshot_create_xml(&dom, &snapshot_xml(".x"), 0).unwrap_err();
    assert_eq!(e.code, Code::VIR_ERR_XML_DETAIL);
    driver.domain_create(&dom, 0).unwrap();
    let memory = "<domainsnapshot><name>s</name><memory snapshot='internal'/></domainsnapshot>";
    let e = driver.snapshot_create_xml(&dom, memory, 0).unwrap_err();
    assert_eq!(e.code, Code::VIR_ERR_OPERATION_UNSUPPORTED, "{}", e.message);
    assert!(image_snapshots(&vda).is_empty());
    // HALT stops the domain once its snapshot is taken.
    driver.snapshot_create_xml(&dom, &snapshot_xml("halted"), 1 << 3).unwrap();
    assert!(!driver.domain_is_active(&dom).unwrap());
    assert_eq!(driver.domain_get_state(&dom, 0).unwrap(), (5, 7), "shut off from snapshot");
    driver.snapshot_delete(&dom, "halted", 0).unwrap();
    assert!(!fixture.root().join("lib/qemu/snapshot/vm").read_dir().is_ok_and(|mut d| d.next().is_some()));
    // A snapshot of an image the domain no longer uses is not reverted to.
    driver.snapshot_create_xml(&dom, &snapshot_xml("old"), 0).unwrap();
    let moved = fixture.image("moved.qcow2");
    std::fs::copy(&vda, &moved).unwrap();
    let defined = driver.domain_get_xml_desc(&dom, 2).unwrap();
    let elsewhere = defined.replace(vda.to_str().unwrap(), moved.to_str().unwrap());
    driver.domain_define_xml(&elsewhere, 0).unwrap();
    let e = driver.revert_to_snapshot(&dom, "old", 0).unwrap_err();
    assert_eq!(
        e.message,
        "Operation not supported: disk image 'vda' for internal snapshot 'old' is not the same as disk image \
         currently used by VM"
    );
    driver.snapshot_delete(&dom, "old", 0).unwrap();
    driver.domain_define_xml(&defined, 0).unwrap();
    assert!(image_snapshots(&vda).is_empty(), "deleted from the image that held it");
    // A name an image already holds is refused before anything is done.
    run("qemu-img", &["snapshot", "-c", "taken", vda.to_str().unwrap()]);
    let e = driver.snapshot_create_xml(&dom, &snapshot_xml("taken"), 0).unwrap_err();
    assert!(e.message.contains("already has a snapshot named 'taken'"), "{}", e.message);
    assert_eq!(image_snapshots(&vda), ["taken"]);
}

/// A domain's disk vda as a test writes and reads it: through its FUSE file while the
/// domain runs, else in the image it is on now (an overlay, after an external snapshot).
struct Disk<'a> {
    fixture: &'a Fixture,
    driver: &'a dyn Driver,
    dom: &'a DomainId,
    running: bool,
}

impl Disk<'_> {
    fn write(&self, pattern: u8, offset: u64, len: u64) {
        if self.running {
            write_disk(&disk_file(self.driver, self.dom, "vda"), pattern, offset, len);
        } else {
            write_pattern(&common::current_image(self.driver, self.dom), "qcow2", pattern, offset, len);
        }
    }

    /// A qcow2 copy of the disk as it is now.
    fn freeze(&self, name: &str) -> PathBuf {
        if self.running {
            return read_disk(self.fixture, &disk_file(self.driver, self.dom, "vda"), name);
        }
        let copy = self.fixture.image(name);
        let image = common::current_image(self.driver, self.dom);
        run("qemu-img", &["convert", "-O", "qcow2", image.to_str().unwrap(), copy.to_str().unwrap()]);
        copy
    }
}

/// An external snapshot in the middle: full backup with c1; writes; external snapshot
/// e1 (the domain moves onto an overlay holding c1's bitmap, recording); writes; full
/// backup with c2; writes. Incrementals from c1 (its bitmap read along the backing
/// chain) and from c2 restore the disk. Then a revert to e1 brings the disk back, c2
/// is reported inconsistent, and c1 still restores the disk. On a running domain the
/// engine puts the overlay under the disk's export while it runs.
fn checkpoints_across_an_external_snapshot(running: bool) {
    let fixture = Fixture::new();
    let driver = open(&fixture);
    let (dom, vda) = define(&fixture, &*driver);
    let full = |n: &str| fixture.image(&format!("full-{n}.qcow2"));
    let disk_only = 1 << 4;
    let overlay = vda.with_extension("e1");
    if running {
        driver.domain_create(&dom, 0).unwrap();
    }
    let disk = Disk { fixture: &fixture, driver: &*driver, dom: &dom, running };
    let write = |pattern: u8, offset: u64, len: u64| disk.write(pattern, offset, len);
    let freeze = |name: &str| disk.freeze(name);

    backup(&*driver, &dom, &full("c1"), None, Some("c1"));
    write(0x61, 10 * MIB, 2 * MIB);
    assert_eq!(driver.snapshot_create_xml(&dom, &snapshot_xml("e1"), disk_only).unwrap(), "e1");
    assert_eq!(common::current_image(&*driver, &dom), overlay, "the definition moved onto the overlay");
    let live = driver.domain_get_xml_desc(&dom, 0).unwrap();
    assert!(live.contains(&format!("<source file='{}'/>", overlay.display())), "{live}");
    if !running {
        assert_eq!(common::bitmap_names(&overlay), ["c1"], "c1's bitmap is carried into the overlay");
    }
    let xml = driver.snapshot_get_xml_desc(&dom, "e1", 0).unwrap();
    assert!(xml.contains("<disk name='vda' snapshot='external' type='file'>"), "{xml}");
    let state = if running { "disk-snapshot" } else { "shutoff" };
    assert!(xml.contains(&format!("<state>{state}</state>")), "{xml}");
    let at_e1 = freeze("at-e1.qcow2");
    write(0x62, 20 * MIB, 2 * MIB);
    // XML_SIZE counts what changed since c1 in the overlay and in the image below it.
    let sized = driver.checkpoint_get_xml_desc(&dom, "c1", 4 | 2).unwrap();
    assert!(sized.contains("bitmap='c1' size='4194304'"), "{sized}");
    backup(&*driver, &dom, &full("c2"), None, Some("c2"));
    write(0x63, 30 * MIB, MIB);

    let disk = freeze("disk-now.qcow2");
    for base in ["c1", "c2"] {
        let inc = fixture.image(&format!("inc-{base}.qcow2"));
        backup(&*driver, &dom, &inc, Some(base), None);
        assert!(
            restore_and_compare(&fixture, &inc, &full(base), &disk),
            "the incremental from {base} restores the disk"
        );
    }

    if running {
        // What is not done yet is refused, and leaves the snapshot as it was.
        let e = driver.snapshot_delete(&dom, "e1", 0).unwrap_err();
        assert_eq!(e.code, Code::VIR_ERR_OPERATION_UNSUPPORTED, "{}", e.message);
    }
    // libvirt's refusal of external snapshots with children flags.
    let e = driver.snapshot_delete(&dom, "e1", 1).unwrap_err();
    assert_eq!(e.message, "unsupported configuration: deletion of external disk snapshots with children not supported");
    // A file in the way is refused before anything is made.
    std::fs::write(vda.with_extension("e3"), b"not empty").unwrap();
    let e = driver.snapshot_create_xml(&dom, &snapshot_xml("e3"), disk_only).unwrap_err();
    assert!(e.message.contains("already exists and is not a block device"), "{}", e.message);

    // Reverting to e1 drops what was written since: the overlay is new and empty over
    // the image as it was at e1, which c1's bitmap still describes. c2, taken after e1,
    // lost its bitmap with the old overlay: it is reported inconsistent and refused.
    driver.revert_to_snapshot(&dom, "e1", 0).unwrap();
    assert_eq!(driver.domain_is_active(&dom).unwrap(), running, "the domain is in the snapshot's state");
    assert_eq!(common::current_image(&*driver, &dom), overlay);
    assert!(compare(&freeze("after-revert.qcow2"), &at_e1), "the disk is as it was at e1");
    if !running {
        assert_eq!(common::bitmap_names(&overlay), ["c1"]);
    }
    use virbackup::abi::virDomainCheckpointCreateFlags as F;
    let validate =
        F::VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE as u32 | F::VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE_VALIDATE as u32;
    let c2 = driver.checkpoint_get_xml_desc(&dom, "c2", 0).unwrap();
    assert_eq!(
        driver.checkpoint_create_xml(&dom, &c2, validate).unwrap_err().code,
        Code::VIR_ERR_CHECKPOINT_INCONSISTENT
    );
    let refused = fixture.image("inc-c2-after.qcow2");
    assert!(driver.backup_begin(&dom, &push_xml(&refused, Some("c2")), None, 0).is_err());
    write(0x64, 40 * MIB, MIB);
    let now = freeze("disk-after-revert.qcow2");
    let inc = fixture.image("inc-c1-after.qcow2");
    backup(&*driver, &dom, &inc, Some("c1"), Some("c3"));
    assert!(restore_and_compare(&fixture, &inc, &full("c1"), &now), "c1 still restores the disk");
    assert_eq!(driver.checkpoint_get_parent(&dom, "c3", 0).unwrap(), "c1", "c1 was current again");
    driver.snapshot_delete(&dom, "e1", 2).unwrap();
    assert_eq!(common::current_image(&*driver, &dom), overlay, "metadata only: the domain stays on the overlay");
    if running {
        // Stopped, the engine wrote the bitmaps into the images.
        driver.domain_destroy(&dom, 0).unwrap();
        assert_eq!(common::bitmap_names(&overlay), ["c1", "c3"]);
        assert_eq!(common::bitmap_names(&vda), ["c1"]);
    }
}

#[test]
fn checkpoints_stay_correct_across_an_external_snapshot_of_a_shut_off_domain() {
    checkpoints_across_an_external_snapshot(false);
}

#[test]
fn checkpoints_stay_correct_across_an_external_snapshot_of_a_running_domain() {
    checkpoints_across_an_external_snapshot(true);
}

/// Takes an incremental backup from c1 and from c2 and checks that each, restored onto
/// the full backup taken with its checkpoint (`full-<checkpoint>.qcow2`), equals `disk`.
fn incrementals_restore(fixture: &Fixture, driver: &dyn Driver, dom: &DomainId, disk: &Path, step: &str) {
    for base in ["c1", "c2"] {
        let inc = fixture.image(&format!("inc-{base}-{step}.qcow2"));
        backup(driver, dom, &inc, Some(base), None);
        let full = fixture.image(&format!("full-{base}.qcow2"));
        assert!(
            restore_and_compare(fixture, &inc, &full, disk),
            "{step}: the incremental from {base} restores the disk"
        );
    }
}

/// Deleting external snapshots commits their overlays, as libvirt does: e1's overlay,
/// under e2's, is written into the disk's image and e2's overlay reads through to that
/// image; then e2's, the domain's own, goes and the domain is back on its image. The
/// disk reads the same throughout, and the checkpoints' bitmaps, merged down, stay
/// correct bases.
#[test]
fn deleting_external_snapshots_commits_their_overlays() {
    let fixture = Fixture::new();
    let driver = open(&fixture);
    let (dom, vda) = define(&fixture, &*driver);
    let full = |n: &str| fixture.image(&format!("full-{n}.qcow2"));
    let disk_only = 1 << 4;
    let (e1, e2) = (vda.with_extension("e1"), vda.with_extension("e2"));
    let write = |pattern: u8, offset: u64| {
        write_pattern(&common::current_image(&*driver, &dom), "qcow2", pattern, offset, MIB);
    };
    let freeze = |name: &str| {
        let copy = fixture.image(name);
        let image = common::current_image(&*driver, &dom);
        run("qemu-img", &["convert", "-O", "qcow2", image.to_str().unwrap(), copy.to_str().unwrap()]);
        copy
    };
    let check = |step: &str| {
        let disk = freeze(&format!("disk-{step}.qcow2"));
        incrementals_restore(&fixture, &*driver, &dom, &disk, step);
        disk
    };

    backup(&*driver, &dom, &full("c1"), None, Some("c1"));
    write(0x71, 10 * MIB);
    driver.snapshot_create_xml(&dom, &snapshot_xml("e1"), disk_only).unwrap();
    write(0x72, 20 * MIB);
    backup(&*driver, &dom, &full("c2"), None, Some("c2"));
    write(0x73, 30 * MIB);
    driver.snapshot_create_xml(&dom, &snapshot_xml("e2"), disk_only).unwrap();
    write(0x74, 40 * MIB);
    assert_eq!(common::current_image(&*driver, &dom), e2);
    let before = check("before");

    driver.snapshot_delete(&dom, "e1", 0).unwrap();
    assert!(!e1.exists(), "e1's overlay is gone");
    assert_eq!(common::current_image(&*driver, &dom), e2, "the domain stays on e2's overlay");
    let info = run("qemu-img", &["info", "-U", e2.to_str().unwrap()]);
    assert!(info.contains(&format!("backing file: {}", vda.display())), "{info}");
    assert_eq!(names(driver.list_all_snapshots(&dom, 0, false, "virDomainListAllSnapshots").unwrap()), ["e2"]);
    let e2_xml = driver.snapshot_get_xml_desc(&dom, "e2", 0).unwrap();
    assert!(!e2_xml.contains("<parent>"), "e2 took e1's place in the tree: {e2_xml}");
    assert!(e2_xml.contains(&format!("<source file='{}'/>", vda.display())), "e2 was taken over the image: {e2_xml}");
    assert!(compare(&check("after-e1"), &before), "the disk reads the same");
    assert_eq!(common::bitmap_names(&vda), ["c1", "c2"], "c2's bitmap came down with the commit");

    driver.snapshot_delete(&dom, "e2", 0).unwrap();
    assert!(!e2.exists(), "e2's overlay is gone");
    assert_eq!(common::current_image(&*driver, &dom), vda, "the domain is back on its image");
    assert!(compare(&check("after-e2"), &before), "the disk reads the same");
    write(0x75, 50 * MIB);
    check("after-writes");
    assert_eq!(driver.list_all_snapshots(&dom, 0, true, "virDomainSnapshotNum").unwrap().len(), 0);
}

/// A running domain's external snapshots are deleted as libvirt does, by block commits
/// in its engine while the disk is in use. Under a later snapshot's overlay, e1's
/// overlay is committed whatever the disk's interface; the disk's own top image is
/// committed when the disk is offered over vhost-user-blk, and refused with a reason
/// over FUSE (QEMU's active commit cannot share the FUSE export's resize permission).
#[test]
fn deleting_external_snapshots_of_a_running_domain_commits_them_in_its_engine() {
    let fixture = Fixture::new();
    let driver = open(&fixture);
    let (dom, vda) = define(&fixture, &*driver);
    let full = |n: &str| fixture.image(&format!("full-{n}.qcow2"));
    let disk_only = 1 << 4;
    let (e1, e2) = (vda.with_extension("e1"), vda.with_extension("e2"));
    driver.domain_create(&dom, 0).unwrap();
    let file = || disk_file(&*driver, &dom, "vda");
    let check = |step: &str| {
        let disk = read_disk(&fixture, &file(), &format!("disk-{step}.qcow2"));
        incrementals_restore(&fixture, &*driver, &dom, &disk, step);
        disk
    };
    backup(&*driver, &dom, &full("c1"), None, Some("c1"));
    write_disk(&file(), 0x81, 10 * MIB, MIB);
    driver.snapshot_create_xml(&dom, &snapshot_xml("e1"), disk_only).unwrap();
    write_disk(&file(), 0x82, 20 * MIB, MIB);
    backup(&*driver, &dom, &full("c2"), None, Some("c2"));
    write_disk(&file(), 0x83, 30 * MIB, MIB);
    driver.snapshot_create_xml(&dom, &snapshot_xml("e2"), disk_only).unwrap();
    write_disk(&file(), 0x84, 40 * MIB, MIB);
    let before = check("before");

    driver.snapshot_delete(&dom, "e1", 0).unwrap();
    assert!(!e1.exists(), "e1's overlay is gone");
    let info = run("qemu-img", &["info", "-U", e2.to_str().unwrap()]);
    assert!(info.contains(&format!("backing file: {}", vda.display())), "{info}");
    write_disk(&file(), 0x85, 50 * MIB, MIB);
    let after = check("after-e1");
    assert!(!compare(&after, &before), "the disk took the write after the commit");
    // e2's overlay is the disk's own top image, offered over FUSE.
    let e = driver.snapshot_delete(&dom, "e2", 0).unwrap_err();
    assert_eq!(e.code, Code::VIR_ERR_OPERATION_UNSUPPORTED);
    assert!(e.message.contains("FUSE export"), "{}", e.message);
    assert!(e2.exists() && driver.snapshot_lookup_by_name(&dom, "e2", 0).is_ok(), "nothing was done");
    driver.domain_destroy(&dom, 0).unwrap();
    assert_eq!(common::bitmap_names(&vda), ["c1", "c2"], "c2's bitmap came down with the commit");
    assert!(compare(&e2, &after), "the images hold what the domain wrote");
}

#[test]
fn deleting_the_top_external_snapshot_of_a_running_domain_over_vhost_user_blk() {
    let fixture = Fixture::new();
    let driver = open(&fixture);
    let vda = fixture.create_image("vu.qcow2", "qcow2", "32M");
    write_pattern(&vda, "qcow2", 0x91, 0, 4 * MIB);
    let metadata = "<metadata><virbackup:disks xmlns:virbackup='urn:virbackup:domain:1' interface='vhost-user-blk'/>\
                    </metadata><devices>";
    let xml = fixture.domain_xml("vu", &[("vda", &vda, "qcow2")]).replace("<devices>", metadata);
    let dom = driver.domain_define_xml(&xml, 0).unwrap();
    driver.domain_create(&dom, 0).unwrap();
    backup(&*driver, &dom, &fixture.image("full-c1.qcow2"), None, Some("c1"));
    driver.snapshot_create_xml(&dom, &snapshot_xml("e1"), 1 << 4).unwrap();
    let e1 = vda.with_extension("e1");
    // What a VM would write through the socket, written while the domain is off.
    driver.domain_destroy(&dom, 0).unwrap();
    write_pattern(&e1, "qcow2", 0x92, 8 * MIB, 2 * MIB);
    let expected = fixture.image("expected.qcow2");
    run("qemu-img", &["convert", "-O", "qcow2", e1.to_str().unwrap(), expected.to_str().unwrap()]);
    driver.domain_create(&dom, 0).unwrap();
    driver.snapshot_delete(&dom, "e1", 0).unwrap();
    assert!(!e1.exists(), "the overlay is gone");
    let live = driver.domain_get_xml_desc(&dom, 0).unwrap();
    assert!(live.contains(&format!("<source file='{}'/>", vda.display())), "back on its image: {live}");
    assert_eq!(common::current_image(&*driver, &dom), vda);
    // The engine writes to the image now: a checkpoint and an incremental from c1 work.
    let inc = fixture.image("inc-c1.qcow2");
    backup(&*driver, &dom, &inc, Some("c1"), Some("c2"));
    driver.domain_destroy(&dom, 0).unwrap();
    assert!(compare(&vda, &expected), "the overlay's data is in the image");
    assert!(restore_and_compare(&fixture, &inc, &fixture.image("full-c1.qcow2"), &vda));
    assert_eq!(common::bitmap_names(&vda), ["c1", "c2"]);
}

/// A checkpoint deleted while the domain is on an overlay loses its bitmap there only;
/// neither a revert (a new overlay) nor committing the overlay away brings the one below
/// back to the top, so a new checkpoint of the same name can be taken (QEMU refuses a
/// second bitmap of a name).
#[test]
fn a_checkpoint_deleted_on_an_overlay_stays_deleted_when_the_overlay_is_committed() {
    for running in [false, true] {
        let fixture = Fixture::new();
        let driver = open(&fixture);
        let (dom, vda) = define(&fixture, &*driver);
        let interface = "<metadata><virbackup:disks xmlns:virbackup='urn:virbackup:domain:1' \
                         interface='vhost-user-blk'/></metadata><devices>";
        let xml = driver.domain_get_xml_desc(&dom, 2).unwrap().replace("<devices>", interface);
        driver.domain_define_xml(&xml, 0).unwrap();
        if running {
            driver.domain_create(&dom, 0).unwrap();
        }
        backup(&*driver, &dom, &fixture.image("full.qcow2"), None, Some("c1"));
        driver.checkpoint_create_xml(&dom, &checkpoint("c2"), 0).unwrap();
        driver.snapshot_create_xml(&dom, &snapshot_xml("e1"), 1 << 4).unwrap();
        driver.checkpoint_delete(&dom, "c1", 0).unwrap();
        // A revert to e1 does not bring c1's bitmap back from the image below either.
        driver.revert_to_snapshot(&dom, "e1", 0).unwrap();
        if !running {
            assert_eq!(common::bitmap_names(&vda.with_extension("e1")), ["c2"]);
        }
        driver.snapshot_delete(&dom, "e1", 0).unwrap();
        driver.checkpoint_create_xml(&dom, &checkpoint("c1"), 0).unwrap();
        if running {
            driver.domain_destroy(&dom, 0).unwrap();
        }
        assert_eq!(common::bitmap_names(&vda), ["c1", "c2"], "running: {running}");
    }
}

/// Reverting to an external snapshot that has a child keeps the snapshots' overlays and
/// puts the disk on a new one (`<overlay>.1`): the disk's history branches. c1 stays a
/// correct base on the new branch; a snapshot taken there is a child of the one
/// reverted to; reverting to the other branch's snapshot works the same way; and an
/// image two branches read through is not committed away.
fn revert_to_an_external_snapshot_with_a_child(running: bool) {
    let fixture = Fixture::new();
    let driver = open(&fixture);
    let (dom, vda) = define(&fixture, &*driver);
    let disk_only = 1 << 4;
    if running {
        driver.domain_create(&dom, 0).unwrap();
    }
    let disk = Disk { fixture: &fixture, driver: &*driver, dom: &dom, running };
    let write = |pattern: u8, offset: u64| disk.write(pattern, offset, MIB);
    let freeze = |name: &str| disk.freeze(name);
    backup(&*driver, &dom, &fixture.image("full-c1.qcow2"), None, Some("c1"));
    write(0xa1, 10 * MIB);
    driver.snapshot_create_xml(&dom, &snapshot_xml("e1"), disk_only).unwrap();
    let at_e1 = freeze("at-e1.qcow2");
    write(0xa2, 20 * MIB);
    driver.snapshot_create_xml(&dom, &snapshot_xml("e2"), disk_only).unwrap();
    let at_e2 = freeze("at-e2.qcow2");
    write(0xa3, 30 * MIB);

    driver.revert_to_snapshot(&dom, "e1", 0).unwrap();
    assert_eq!(driver.domain_is_active(&dom).unwrap(), running);
    let branch = vda.with_extension("e1.1");
    assert_eq!(common::current_image(&*driver, &dom), branch, "a new overlay of its own");
    assert!(vda.with_extension("e1").exists() && vda.with_extension("e2").exists(), "the snapshots' overlays stay");
    assert!(compare(&freeze("after-e1.qcow2"), &at_e1), "the disk is as it was at e1");
    write(0xa4, 40 * MIB);
    let now = freeze("now.qcow2");
    let inc = fixture.image("inc-c1.qcow2");
    backup(&*driver, &dom, &inc, Some("c1"), None);
    assert!(restore_and_compare(&fixture, &inc, &fixture.image("full-c1.qcow2"), &now), "c1 restores the disk");
    driver.snapshot_create_xml(&dom, &snapshot_xml("e3"), disk_only).unwrap();
    assert_eq!(driver.snapshot_get_parent(&dom, "e3", 0).unwrap(), "e1");

    driver.revert_to_snapshot(&dom, "e2", 0).unwrap();
    assert_eq!(common::current_image(&*driver, &dom), vda.with_extension("e2.1"));
    assert!(compare(&freeze("after-e2.qcow2"), &at_e2), "the disk is as it was at e2");
    let e = driver.snapshot_delete(&dom, "e1", 0).unwrap_err();
    assert_eq!(e.code, Code::VIR_ERR_OPERATION_UNSUPPORTED);
    assert!(e.message.contains(&format!("is also the backing image of '{}'", branch.display())), "{}", e.message);
    // Back to e1: the overlay the domain leaves, which only held the state since the
    // last revert, is removed; e1.1 stays under e3.
    driver.revert_to_snapshot(&dom, "e1", 0).unwrap();
    assert_eq!(common::current_image(&*driver, &dom), vda.with_extension("e1.2"));
    assert!(!vda.with_extension("e2.1").exists(), "the overlay no one uses any more is removed");
    assert!(branch.exists(), "e3 was taken over e1.1: it stays");
    let e1 = std::fs::read_to_string(fixture.root().join("lib/qemu/snapshot/vm/e1.xml")).unwrap();
    assert!(
        e1.contains(&format!(
            "<virbackup:revert xmlns:virbackup='urn:virbackup:domain:1' file='{}'/>",
            branch.display()
        )),
        "{e1}"
    );
    let e2 = std::fs::read_to_string(fixture.root().join("lib/qemu/snapshot/vm/e2.xml")).unwrap();
    assert!(!e2.contains("virbackup:revert"), "{e2}");
    if running {
        driver.domain_destroy(&dom, 0).unwrap();
    }
}

#[test]
fn reverting_to_an_external_snapshot_with_a_child_branches_a_shut_off_disk() {
    revert_to_an_external_snapshot_with_a_child(false);
}

#[test]
fn reverting_to_an_external_snapshot_with_a_child_branches_a_running_disk() {
    revert_to_an_external_snapshot_with_a_child(true);
}

/// `NO_METADATA` changes the images as the snapshot would and keeps nothing of it: an
/// internal snapshot stays in the image (with its bitmap, for a later REDEFINE), an
/// external one leaves the domain on its overlay; the snapshot current before stays.
#[test]
fn snapshots_without_metadata_change_the_images_only() {
    let fixture = Fixture::new();
    let driver = open(&fixture);
    let (dom, vda) = define(&fixture, &*driver);
    let no_metadata = 1 << 2;
    driver.snapshot_create_xml(&dom, &snapshot_xml("s0"), 0).unwrap();
    assert_eq!(driver.snapshot_create_xml(&dom, &snapshot_xml("hidden"), no_metadata).unwrap(), "hidden");
    assert_eq!(image_snapshots(&vda), ["s0", "hidden"]);
    assert_eq!(common::bitmap_names(&vda), ["virbackup-snapshot/hidden", "virbackup-snapshot/s0"]);
    assert_eq!(names(driver.list_all_snapshots(&dom, 0, false, "virDomainListAllSnapshots").unwrap()), ["s0"]);
    assert_eq!(driver.snapshot_current(&dom, 0).unwrap(), "s0");
    driver.domain_create(&dom, 0).unwrap();
    driver.snapshot_create_xml(&dom, &snapshot_xml("outside"), no_metadata | (1 << 4)).unwrap();
    assert_eq!(common::current_image(&*driver, &dom), vda.with_extension("outside"));
    assert!(fixture.root().join("lib/qemu/snapshot/vm/s0.xml").exists());
    assert!(!fixture.root().join("lib/qemu/snapshot/vm/outside.xml").exists());
    assert_eq!(driver.snapshot_current(&dom, 0).unwrap(), "s0");
    driver.domain_destroy(&dom, 0).unwrap();
}

/// `REUSE_EXT` on a running domain: the engine opens the overlay made beforehand and
/// carries c1's bitmap into it; writes go to it and c1 still restores the disk.
#[test]
fn a_running_domain_moves_onto_an_overlay_made_beforehand() {
    let fixture = Fixture::new();
    let driver = open(&fixture);
    let (dom, vda) = define(&fixture, &*driver);
    driver.domain_create(&dom, 0).unwrap();
    backup(&*driver, &dom, &fixture.image("full-c1.qcow2"), None, Some("c1"));
    let file = disk_file(&*driver, &dom, "vda");
    write_disk(&file, 0xb1, 10 * MIB, MIB);
    let mine = fixture.image("mine.qcow2");
    let (vda_text, mine_text) = (vda.to_str().unwrap(), mine.to_str().unwrap());
    run("qemu-img", &["create", "-q", "-f", "qcow2", "-u", "-b", vda_text, "-F", "qcow2", mine_text, "64M"]);
    let xml = format!(
        "<domainsnapshot><name>r1</name><disks><disk name='vda' snapshot='external'><source file='{}'/></disk>\
         </disks></domainsnapshot>",
        mine.display()
    );
    driver.snapshot_create_xml(&dom, &xml, (1 << 4) | (1 << 5)).unwrap();
    assert_eq!(common::current_image(&*driver, &dom), mine);
    write_disk(&file, 0xb2, 20 * MIB, MIB);
    let now = read_disk(&fixture, &file, "now.qcow2");
    let inc = fixture.image("inc-c1.qcow2");
    backup(&*driver, &dom, &inc, Some("c1"), None);
    assert!(restore_and_compare(&fixture, &inc, &fixture.image("full-c1.qcow2"), &now));
    driver.domain_destroy(&dom, 0).unwrap();
    assert_eq!(common::bitmap_names(&mine), ["c1"]);
    assert!(compare(&mine, &now), "the writes went to the reused overlay");
}

/// A snapshot would move or rewrite the images a backup job reads: while one runs,
/// snapshots, reverts and deletions are refused, and nothing is made.
#[test]
fn snapshots_wait_for_no_backup_job() {
    let fixture = Fixture::new();
    let driver = open(&fixture);
    let (dom, vda) = define(&fixture, &*driver);
    driver.snapshot_create_xml(&dom, &snapshot_xml("s1"), 0).unwrap();
    driver.domain_create(&dom, 0).unwrap();
    let xml = common::pull_xml(&fixture.image("pull.sock"), &fixture.image("scratch.qcow2"), None);
    driver.backup_begin(&dom, &xml, None, 0).unwrap();
    let refused = "Requested operation is not valid: cannot take a snapshot of domain 'vm' while a backup job runs \
                   on its disks";
    for flags in [0, 1 << 4] {
        let e = driver.snapshot_create_xml(&dom, &snapshot_xml("s2"), flags).unwrap_err();
        assert_eq!(e.message, refused);
    }
    assert!(driver.revert_to_snapshot(&dom, "s1", 0).unwrap_err().message.contains("while a backup job runs"));
    assert!(driver.snapshot_delete(&dom, "s1", 0).unwrap_err().message.contains("while a backup job runs"));
    assert!(!vda.with_extension("s2").exists());
    driver.domain_abort_job(&dom, 0).unwrap();
    wait_job(&*driver, &dom);
    driver.snapshot_create_xml(&dom, &snapshot_xml("s2"), 1 << 4).unwrap();
    driver.domain_destroy(&dom, 0).unwrap();
}

//! Recovery after a process is killed inside an operation: a child process runs one
//! operation and kills itself (SIGKILL) at a named step (`VIRBACKUP_TEST_KILL_AT`); a
//! fresh driver then opens the root and must find it whole — no daemon, block node,
//! job, export, bitmap or file of the killed operation left, the checkpoint tree as it
//! was before or as it is after the operation — and usable for the next checkpoint and
//! backup.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{Fixture, bitmap_names, checkpoint, pull_xml, push_xml, wait_job, write_pattern};
use serde_json::{Value, json};
use virbackup::driver::{self, DomainId, Driver, Listing};

const MIB: u64 = 1 << 20;

fn open(fixture: &Fixture) -> Arc<dyn Driver> {
    driver::open(&fixture.uri(), 0).unwrap()
}

fn names(listing: Listing) -> Vec<String> {
    let mut names = match listing {
        Listing::Names(names) => names,
        Listing::Count(n) => panic!("a count ({n}) where names were asked for"),
    };
    names.sort();
    names
}

/// A domain `name` with one 32 MiB qcow2 disk holding some data, checkpoints `c1` and
/// `c2` (a child of `c1`), running or shut off.
fn prepare(fixture: &Fixture, name: &str, running: bool) -> (DomainId, PathBuf) {
    let driver = open(fixture);
    let vda = fixture.create_image(&format!("{name}.qcow2"), "qcow2", "32M");
    write_pattern(&vda, "qcow2", 0x3c, 0, 4 * MIB);
    let dom = driver.domain_define_xml(&fixture.domain_xml(name, &[("vda", &vda, "qcow2")]), 0).unwrap();
    if running {
        driver.domain_create(&dom, 0).unwrap();
    }
    driver.checkpoint_create_xml(&dom, &checkpoint("c1"), 0).unwrap();
    driver.checkpoint_create_xml(&dom, &checkpoint("c2"), 0).unwrap();
    (dom, vda)
}

/// Runs `operation` on `domain` in a child process that kills itself at `point`.
fn killed_at(fixture: &Fixture, domain: &str, operation: &str, point: &str) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_operation", "--ignored", "--nocapture"])
        .env("VB_CHILD_URI", fixture.uri())
        .env("VB_CHILD_DIR", fixture.dir.path())
        .env("VB_CHILD_DOMAIN", domain)
        .env("VB_CHILD_OPERATION", operation)
        .env("VIRBACKUP_TEST_KILL_AT", point)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.signal(), Some(9), "{operation} was to be killed at {point}:\n{text}");
}

fn child_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is set by the parent test"))
}

#[test]
#[ignore = "run as a child process by the tests below"]
fn child_operation() {
    let driver = driver::open(&child_env("VB_CHILD_URI"), 0).unwrap();
    let dir = PathBuf::from(child_env("VB_CHILD_DIR"));
    let name = child_env("VB_CHILD_DOMAIN");
    let dom = driver.domain_lookup_by_name(&name).unwrap();
    let operation = child_env("VB_CHILD_OPERATION");
    let target = dir.join(format!("{name}.bk"));
    let result = match operation.split(':').collect::<Vec<_>>().as_slice() {
        ["create", cp] => driver.checkpoint_create_xml(&dom, &checkpoint(cp), 0).map(drop),
        ["delete", cp] => driver.checkpoint_delete(&dom, cp, 0),
        ["push-full", cp] => driver.backup_begin(&dom, &push_xml(&target, None), Some(&checkpoint(cp)), 0),
        ["push-incremental", base, cp] => {
            driver.backup_begin(&dom, &push_xml(&target, Some(base)), Some(&checkpoint(cp)), 0)
        }
        ["pull", cp] => {
            let xml = pull_xml(&dir.join(format!("{name}-pull.sock")), &dir.join(format!("{name}.scratch")), None);
            driver.backup_begin(&dom, &xml, Some(&checkpoint(cp)), 0)
        }
        ["pull-abort", cp] => {
            let xml = pull_xml(&dir.join(format!("{name}-pull.sock")), &dir.join(format!("{name}.scratch")), None);
            driver.backup_begin(&dom, &xml, Some(&checkpoint(cp)), 0).unwrap();
            driver.domain_abort_job(&dom, 0).unwrap();
            wait_job(driver.as_ref(), &dom);
            Ok(())
        }
        ["start"] => driver.domain_create(&dom, 0).map(drop),
        ["snapshot", name] => driver
            .snapshot_create_xml(&dom, &format!("<domainsnapshot><name>{name}</name></domainsnapshot>"), 0)
            .map(drop),
        ["snapshot-external", name] => driver
            .snapshot_create_xml(&dom, &format!("<domainsnapshot><name>{name}</name></domainsnapshot>"), 1 << 4)
            .map(drop),
        ["revert", name] => driver.revert_to_snapshot(&dom, name, 0),
        ["snapshot-delete", name] => driver.snapshot_delete(&dom, name, 0),
        other => panic!("unknown operation {other:?}"),
    };
    println!("the operation ended without being killed: {result:?}");
}

/// The storage daemons running on this fixture's files.
fn daemons(fixture: &Fixture) -> Vec<u32> {
    let needle = fixture.dir.path().to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmd| {
                let cmd = String::from_utf8_lossy(&cmd);
                cmd.contains("storage-daemon") && cmd.contains(&needle)
            })
        })
        .collect()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() && !path.is_symlink() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn qmp(socket: &Path, command: &str, arguments: Option<Value>) -> Value {
    let mut monitor = virbackup::engine::qmp::Qmp::connect(socket, Duration::from_secs(10)).unwrap();
    monitor.execute(command, arguments).unwrap()
}

/// What a running domain's daemon holds beyond its own disk: nodes, bitmaps, jobs and
/// exports, and the bitmaps of its disk.
fn engine_extras(qmp_socket: &Path) -> (Vec<String>, Vec<String>) {
    let nodes = qmp(qmp_socket, "query-named-block-nodes", Some(json!({"flat": true})));
    let mut extras = Vec::new();
    let mut bitmaps = Vec::new();
    for node in nodes.as_array().unwrap() {
        let name = node["node-name"].as_str().unwrap_or_default();
        if !name.starts_with("vb-") {
            extras.push(format!("node {name}"));
        }
        for bitmap in node["dirty-bitmaps"].as_array().into_iter().flatten() {
            bitmaps.push(bitmap["name"].as_str().unwrap().to_string());
        }
    }
    for job in qmp(qmp_socket, "query-jobs", None).as_array().unwrap() {
        extras.push(format!("job {}", job["id"]));
    }
    for export in qmp(qmp_socket, "query-block-exports", None).as_array().unwrap() {
        let id = export["id"].as_str().unwrap_or_default();
        if !id.starts_with("export-") {
            extras.push(format!("export {id}"));
        }
    }
    bitmaps.sort();
    bitmaps.dedup();
    (extras, bitmaps)
}

/// Opens the root afresh and checks that nothing of the killed operation is left and
/// that the domain has exactly `checkpoints` (with bitmaps to match), `leaves` being
/// files the operation may have made that must be gone.
fn assert_recovered(fixture: &Fixture, name: &str, vda: &Path, running: bool, checkpoints: &[&str], leaves: &[&Path]) {
    let driver = open(fixture);
    let dom = driver.domain_lookup_by_name(name).unwrap();
    let root = fixture.root();
    assert!(!root.join("run/qemu/.intent").exists(), "the operation's record is settled");
    let state: Vec<PathBuf> = walk(&root);
    assert!(
        state.iter().all(|p| !p.file_name().unwrap().to_string_lossy().contains(".tmp-")),
        "temporary files left: {state:?}"
    );
    assert_eq!(driver.domain_is_active(&dom).unwrap(), running);
    let run_dir = root.join("run/qemu").join(name);
    let mut run_files: Vec<String> =
        walk(&run_dir).iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    run_files.sort();
    let expected_run: &[&str] = if running { &["events.sock", "qmp.sock", "qsd.pid", "vda"] } else { &[] };
    assert_eq!(run_files, expected_run, "only a running domain's own files are in its run folder");
    assert_eq!(daemons(fixture).len(), usize::from(running), "no daemon but the running domain's own");
    assert_eq!(names(driver.list_all_checkpoints(&dom, 0, false).unwrap()), checkpoints);
    if running {
        let (extras, bitmaps) = engine_extras(&run_dir.join("qmp.sock"));
        assert!(extras.is_empty(), "left in the engine: {extras:?}");
        assert_eq!(bitmaps, checkpoints);
    } else {
        assert_eq!(bitmap_names(vda), checkpoints);
    }
    for leaf in leaves {
        assert!(!leaf.exists(), "{} was left behind", leaf.display());
    }
    // Every checkpoint's bitmaps check out, and the domain takes the next checkpoint and
    // a full backup.
    use virbackup::abi::virDomainCheckpointCreateFlags as F;
    let validate =
        F::VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE as u32 | F::VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE_VALIDATE as u32;
    for cp in checkpoints {
        let xml = driver.checkpoint_get_xml_desc(&dom, cp, 0).unwrap();
        driver.checkpoint_create_xml(&dom, &xml, validate).unwrap();
    }
    let after = fixture.image(&format!("{name}-after.bk"));
    driver.backup_begin(&dom, &push_xml(&after, None), Some(&checkpoint("after")), 0).unwrap();
    let stats = wait_job(driver.as_ref(), &dom);
    assert_eq!(stats.job_type, 3, "the backup after recovery completes: {stats:?}");
    if running {
        driver.domain_destroy(&dom, 0).unwrap();
    }
    assert!(daemons(fixture).is_empty());
}

/// Kills `operation` at `point` on a prepared domain and checks the recovery.
fn scenario(running: bool, operation: &str, point: &str, checkpoints: &[&str], leaves: &[&str]) {
    let fixture = Fixture::new();
    let name = if running { "on" } else { "off" };
    let (_, vda) = prepare(&fixture, name, running);
    killed_at(&fixture, name, operation, point);
    let leaves: Vec<PathBuf> = leaves.iter().map(|l| fixture.image(&l.replace("NAME", name))).collect();
    let leaves: Vec<&Path> = leaves.iter().map(PathBuf::as_path).collect();
    assert_recovered(&fixture, name, &vda, running, checkpoints, &leaves);
}

#[test]
fn checkpoint_creation_killed_after_its_bitmaps_is_undone() {
    for running in [false, true] {
        scenario(running, "create:c3", "checkpoint-bitmaps-added", &["c1", "c2"], &[]);
    }
}

#[test]
fn checkpoint_deletion_killed_after_its_bitmaps_is_finished() {
    for running in [false, true] {
        scenario(running, "delete:c1", "checkpoint-bitmaps-removed", &["c2"], &[]);
    }
}

#[test]
fn checkpoint_deletion_killed_between_metadata_files_is_finished() {
    let fixture = Fixture::new();
    let (_, vda) = prepare(&fixture, "off", false);
    killed_at(&fixture, "off", "delete:c1", "checkpoint-children-rewritten");
    {
        let driver = open(&fixture);
        let dom = driver.domain_lookup_by_name("off").unwrap();
        // The reparented child was written first: it is a root, never a second one.
        assert!(driver.checkpoint_get_parent(&dom, "c2", 0).is_err());
        assert_eq!(names(driver.list_all_checkpoints(&dom, 0, false).unwrap()), ["c2"]);
    }
    assert_recovered(&fixture, "off", &vda, false, &["c2"], &[]);
}

#[test]
fn backup_killed_after_its_daemon_started_is_undone() {
    scenario(false, "push-full:c3", "backup-daemon-started", &["c1", "c2"], &["NAME.bk"]);
}

#[test]
fn backup_killed_with_a_store_open_is_undone() {
    for running in [false, true] {
        scenario(running, "push-incremental:c2:c3", "backup-store-opened", &["c1", "c2"], &["NAME.bk"]);
    }
}

#[test]
fn pull_backup_killed_with_its_exports_is_undone() {
    for running in [false, true] {
        scenario(running, "pull:c3", "backup-copies-started", &["c1", "c2"], &["NAME.scratch", "NAME-pull.sock"]);
    }
}

#[test]
fn backup_killed_between_checkpoint_and_job_is_undone() {
    for running in [false, true] {
        scenario(running, "push-full:c3", "backup-checkpoint-saved", &["c1", "c2"], &["NAME.bk"]);
    }
}

#[test]
fn domain_start_killed_before_its_status_is_undone() {
    scenario(false, "start", "domain-daemon-started", &["c1", "c2"], &[]);
}

#[test]
fn pull_backup_killed_while_finishing_is_finished_by_the_next_process() {
    let fixture = Fixture::new();
    let (_, vda) = prepare(&fixture, "off", false);
    killed_at(&fixture, "off", "pull-abort:c3", "backup-finish-daemon-stopped");
    {
        // The job's end was decided and half done: the new process finishes it (at once,
        // in the background), and aborting it meanwhile is no error. It ends as an
        // aborted pull backup does in libvirt, complete, its checkpoint kept.
        let driver = open(&fixture);
        let dom = driver.domain_lookup_by_name("off").unwrap();
        if let Err(e) = driver.domain_abort_job(&dom, 0) {
            assert_eq!(e.message, "Requested operation is not valid: no job is active on the domain", "{e:?}");
        }
        let stats = wait_job(driver.as_ref(), &dom);
        assert_eq!(stats.job_type, 3, "{stats:?}");
    }
    let leaves = [fixture.image("off.scratch"), fixture.image("off-pull.sock")];
    assert_recovered(&fixture, "off", &vda, false, &["c1", "c2", "c3"], &[&leaves[0], &leaves[1]]);
}

#[test]
fn what_cannot_be_settled_is_reported_until_it_can() {
    let fixture = Fixture::new();
    let (_, vda) = prepare(&fixture, "off", false);
    killed_at(&fixture, "off", "delete:c1", "checkpoint-bitmaps-removed");
    // The operation's daemon goes, and another program takes the image before anyone
    // settles the deletion.
    for pid in daemons(&fixture) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
        while std::path::Path::new(&format!("/proc/{pid}")).exists() {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let pidfile = fixture.image("holder.pid");
    common::run(
        "qemu-nbd",
        &[
            "--fork",
            "--persistent",
            "--format=qcow2",
            &format!("--pid-file={}", pidfile.display()),
            &format!("--socket={}", fixture.image("holder.sock").display()),
            vda.to_str().unwrap(),
        ],
    );
    let holder: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    let driver = open(&fixture);
    for _ in 0..2 {
        let err = driver.domain_lookup_by_name("off").unwrap_err();
        assert_eq!(err.code, virbackup::error::Code::VIR_ERR_OPERATION_FAILED, "{err:?}");
        for part in ["earlier checkpoint deletion of domain 'off'", "which is gone", "every call tries again", "in use"]
        {
            assert!(err.message.contains(part), "{part}: {}", err.message);
        }
    }
    assert!(fixture.root().join("run/qemu/.intent").exists(), "the record stays until it is settled");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(holder), nix::sys::signal::Signal::SIGTERM).unwrap();
    while std::path::Path::new(&format!("/proc/{holder}")).exists() {
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(driver);
    assert_recovered(&fixture, "off", &vda, false, &["c2"], &[]);
}

/// What a fresh process finds of a domain's snapshots: the names in its metadata, the
/// current one, the internal snapshots and the bitmaps of its image.
fn snapshot_state(
    fixture: &Fixture,
    name: &str,
    vda: &Path,
) -> (Vec<String>, Option<String>, Vec<String>, Vec<String>) {
    let driver = open(fixture);
    let dom = driver.domain_lookup_by_name(name).unwrap();
    assert!(!fixture.root().join("run/qemu/.intent").exists(), "the operation's record is settled");
    let run_dir = fixture.root().join("run/qemu").join(name);
    assert!(walk(&run_dir).is_empty(), "files left in the run folder: {:?}", walk(&run_dir));
    let listed = names(driver.list_all_snapshots(&dom, 0, false, "virDomainListAllSnapshots").unwrap());
    let current = driver.snapshot_current(&dom, 0).ok();
    let out = common::run("qemu-img", &["info", "-U", "--output=json", vda.to_str().unwrap()]);
    let info: Value = serde_json::from_str(&out).unwrap();
    let mut in_image: Vec<String> = info["snapshots"]
        .as_array()
        .map(|l| l.iter().map(|s| s["name"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    in_image.sort();
    let mut bitmaps = bitmap_names(vda);
    bitmaps.sort();
    (listed, current, in_image, bitmaps)
}

fn snapshot(driver: &dyn Driver, dom: &DomainId, name: &str) {
    driver.snapshot_create_xml(dom, &format!("<domainsnapshot><name>{name}</name></domainsnapshot>"), 0).unwrap();
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn snapshot_creation_killed_in_its_images_is_undone() {
    let fixture = Fixture::new();
    let (dom, vda) = prepare(&fixture, "off", false);
    killed_at(&fixture, "off", "snapshot:s1", "snapshot-image-taken");
    let (listed, current, in_image, bitmaps) = snapshot_state(&fixture, "off", &vda);
    assert!(listed.is_empty() && current.is_none() && in_image.is_empty(), "{listed:?} {in_image:?}");
    assert_eq!(bitmaps, ["c1", "c2"]);
    snapshot(open(&fixture).as_ref(), &dom, "s1");
}

#[test]
fn snapshot_creation_killed_after_its_metadata_is_complete() {
    let fixture = Fixture::new();
    let (dom, vda) = prepare(&fixture, "off", false);
    snapshot(open(&fixture).as_ref(), &dom, "s0");
    killed_at(&fixture, "off", "snapshot:s1", "snapshot-metadata-written");
    let (listed, current, in_image, bitmaps) = snapshot_state(&fixture, "off", &vda);
    assert_eq!((listed, current, in_image), (strings(&["s0", "s1"]), Some("s1".into()), strings(&["s0", "s1"])));
    assert_eq!(bitmaps, ["c1", "c2", "virbackup-snapshot/s0", "virbackup-snapshot/s1"]);
    // The files agree: a process that only reads them finds s1 current too.
    let driver = open(&fixture);
    assert!(driver.snapshot_is_current(&dom, "s1", 0).unwrap() && !driver.snapshot_is_current(&dom, "s0", 0).unwrap());
}

/// A revert of a shut-off domain killed at `point`: the next process finishes it (the
/// disk as it was at the snapshot, and the checkpoint current then current again) or,
/// before its point of no return, undoes it (the disk as before, c3 still current).
/// Either way every bitmap is back in the image and nothing is left in the run folder.
fn revert_killed_at(point: &str, finished: bool) {
    let fixture = Fixture::new();
    let (dom, vda) = prepare(&fixture, "off", false);
    let driver = open(&fixture);
    snapshot(driver.as_ref(), &dom, "s1");
    let at_s1 = fixture.image("at-s1.qcow2");
    common::run("qemu-img", &["convert", "-O", "qcow2", vda.to_str().unwrap(), at_s1.to_str().unwrap()]);
    write_pattern(&vda, "qcow2", 0x4d, 8 * MIB, 2 * MIB);
    driver.checkpoint_create_xml(&dom, &checkpoint("c3"), 0).unwrap();
    drop(driver);
    let before = fixture.image("before.qcow2");
    common::run("qemu-img", &["convert", "-O", "qcow2", vda.to_str().unwrap(), before.to_str().unwrap()]);
    killed_at(&fixture, "off", "revert:s1", point);
    let (listed, current, in_image, bitmaps) = snapshot_state(&fixture, "off", &vda);
    assert_eq!((listed, current, in_image), (strings(&["s1"]), Some("s1".into()), strings(&["s1"])));
    assert_eq!(bitmaps, ["c1", "c2", "c3", "virbackup-snapshot/s1"]);
    let expected = if finished { &at_s1 } else { &before };
    assert!(common::compare(&vda, expected), "the disk is as it was {}", if finished { "at s1" } else { "before" });
    let driver = open(&fixture);
    driver.checkpoint_create_xml(&dom, &checkpoint("c4"), 0).unwrap();
    assert_eq!(driver.checkpoint_get_parent(&dom, "c4", 0).unwrap(), if finished { "c2" } else { "c3" });
}

#[test]
fn revert_killed_once_recorded_is_finished() {
    revert_killed_at("snapshot-revert-recorded", true);
}

#[test]
fn revert_killed_after_applying_the_snapshot_is_finished() {
    revert_killed_at("snapshot-image-applied", true);
}

#[test]
fn revert_killed_before_its_point_of_no_return_is_undone() {
    revert_killed_at("snapshot-bitmaps-set-aside", false);
}

#[test]
fn snapshot_deletion_killed_in_its_image_is_finished() {
    let fixture = Fixture::new();
    let (dom, vda) = prepare(&fixture, "off", false);
    let driver = open(&fixture);
    snapshot(driver.as_ref(), &dom, "s1");
    snapshot(driver.as_ref(), &dom, "s2");
    drop(driver);
    killed_at(&fixture, "off", "snapshot-delete:s1", "snapshot-image-deleted");
    let (listed, current, in_image, bitmaps) = snapshot_state(&fixture, "off", &vda);
    assert_eq!((listed, current, in_image), (strings(&["s2"]), Some("s2".into()), strings(&["s2"])));
    assert_eq!(bitmaps, ["c1", "c2", "virbackup-snapshot/s2"]);
}

#[test]
fn snapshot_of_a_running_domain_killed_in_its_engine_is_undone() {
    let fixture = Fixture::new();
    let (dom, vda) = prepare(&fixture, "on", true);
    killed_at(&fixture, "on", "snapshot:s1", "snapshot-image-taken");
    let driver = open(&fixture);
    driver.domain_lookup_by_name("on").unwrap();
    assert!(!fixture.root().join("run/qemu/.intent").exists(), "the operation's record is settled");
    assert_eq!(driver.list_all_snapshots(&dom, 0, true, "virDomainSnapshotNum").unwrap().len(), 0);
    let run_dir = fixture.root().join("run/qemu/on");
    let (extras, bitmaps) = engine_extras(&run_dir.join("qmp.sock"));
    assert!(extras.is_empty(), "left in the engine: {extras:?}");
    assert_eq!(bitmaps, ["c1", "c2"]);
    let answer = qmp(&run_dir.join("qmp.sock"), "query-named-block-nodes", Some(json!({"flat": true})));
    let snapshots: Vec<&Value> =
        answer.as_array().unwrap().iter().filter_map(|n| n["image"]["snapshots"].as_array()).flatten().collect();
    assert!(snapshots.is_empty(), "internal snapshots left: {snapshots:?}");
    snapshot(driver.as_ref(), &dom, "s1");
    driver.domain_destroy(&dom, 0).unwrap();
    let (listed, current, in_image, _) = snapshot_state(&fixture, "on", &vda);
    assert_eq!((listed, current, in_image), (strings(&["s1"]), Some("s1".into()), strings(&["s1"])));
}

#[test]
fn revert_of_a_running_domain_killed_is_finished_and_leaves_it_shut_off() {
    let fixture = Fixture::new();
    let (dom, vda) = prepare(&fixture, "on", true);
    let driver = open(&fixture);
    snapshot(driver.as_ref(), &dom, "s1");
    common::write_disk(&common::disk_file(driver.as_ref(), &dom, "vda"), 0x4e, 8 * MIB, MIB);
    drop(driver);
    killed_at(&fixture, "on", "revert:s1", "snapshot-revert-recorded");
    assert!(daemons(&fixture).is_empty(), "the engine was stopped for the revert");
    let (listed, current, in_image, bitmaps) = snapshot_state(&fixture, "on", &vda);
    assert_eq!((listed, current, in_image), (strings(&["s1"]), Some("s1".into()), strings(&["s1"])));
    assert_eq!(bitmaps, ["c1", "c2", "virbackup-snapshot/s1"]);
    let driver = open(&fixture);
    assert!(!driver.domain_is_active(&dom).unwrap());
    driver.domain_create(&dom, 0).unwrap();
    driver.domain_destroy(&dom, 0).unwrap();
}

#[test]
fn external_snapshot_killed_before_its_metadata_is_undone() {
    let fixture = Fixture::new();
    let (dom, vda) = prepare(&fixture, "off", false);
    killed_at(&fixture, "off", "snapshot-external:e1", "snapshot-overlay-created");
    let (listed, _, _, bitmaps) = snapshot_state(&fixture, "off", &vda);
    assert!(listed.is_empty());
    assert_eq!(bitmaps, ["c1", "c2"]);
    let driver = open(&fixture);
    assert_eq!(common::current_image(driver.as_ref(), &dom), vda, "the domain stays on its image");
    assert!(!vda.with_extension("e1").exists(), "the overlay is gone");
    assert!(walk(fixture.dir.path()).iter().all(|p| !p.to_string_lossy().contains(".vb-")), "no placeholder left");
}

#[test]
fn external_snapshot_killed_after_its_metadata_is_finished() {
    let fixture = Fixture::new();
    let (dom, vda) = prepare(&fixture, "off", false);
    killed_at(&fixture, "off", "snapshot-external:e1", "snapshot-metadata-written");
    let driver = open(&fixture);
    driver.domain_lookup_by_name("off").unwrap();
    assert!(!fixture.root().join("run/qemu/.intent").exists(), "the operation's record is settled");
    assert_eq!(driver.snapshot_current(&dom, 0).unwrap(), "e1");
    let overlay = vda.with_extension("e1");
    assert_eq!(common::current_image(driver.as_ref(), &dom), overlay, "the domain moved onto the overlay");
    assert_eq!(bitmap_names(&overlay), ["c1", "c2"]);
    driver.checkpoint_create_xml(&dom, &checkpoint("c3"), 0).unwrap();
    assert_eq!(driver.checkpoint_get_parent(&dom, "c3", 0).unwrap(), "c2");
}

/// A revert to an external snapshot killed once its new overlay is made is finished
/// (the overlay replaced: the disk as at the snapshot), and before, undone (the disk as
/// it was, no new overlay left).
fn external_revert_killed_at(point: &str, finished: bool) {
    let fixture = Fixture::new();
    let (dom, vda) = prepare(&fixture, "off", false);
    let driver = open(&fixture);
    driver.snapshot_create_xml(&dom, "<domainsnapshot><name>e1</name></domainsnapshot>", 1 << 4).unwrap();
    let overlay = common::current_image(driver.as_ref(), &dom);
    write_pattern(&overlay, "qcow2", 0x4f, 8 * MIB, MIB);
    drop(driver);
    let before = fixture.image("before.qcow2");
    common::run("qemu-img", &["convert", "-O", "qcow2", overlay.to_str().unwrap(), before.to_str().unwrap()]);
    killed_at(&fixture, "off", "revert:e1", point);
    let driver = open(&fixture);
    driver.domain_lookup_by_name("off").unwrap();
    assert!(!fixture.root().join("run/qemu/.intent").exists(), "the operation's record is settled");
    assert_eq!(common::current_image(driver.as_ref(), &dom), overlay);
    let expected = if finished { &vda } else { &before };
    assert!(common::compare(&overlay, expected), "the disk is as it was {}", if finished { "at e1" } else { "before" });
    let leftovers: Vec<PathBuf> =
        walk(fixture.dir.path()).into_iter().filter(|p| p.to_string_lossy().contains(".new")).collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
    assert_eq!(bitmap_names(&overlay), ["c1", "c2"]);
}

#[test]
fn external_revert_killed_once_recorded_is_finished() {
    external_revert_killed_at("snapshot-revert-recorded", true);
}

#[test]
fn external_revert_killed_before_its_point_of_no_return_is_undone() {
    external_revert_killed_at("snapshot-bitmaps-set-aside", false);
}

/// An external snapshot of a running domain killed at `point`. Before the engine put
/// the overlay on the disk it is undone: nothing of it is left in the engine or on disk
/// and the domain runs on its image. After, it is finished, from the record when the
/// metadata was not written yet: the snapshot is current, both definitions name the
/// overlay, writes go to it, and the checkpoints stay correct bases.
fn live_external_snapshot_killed_at(point: &str, finished: bool) {
    let fixture = Fixture::new();
    let (dom, vda) = prepare(&fixture, "on", true);
    let overlay = vda.with_extension("e1");
    killed_at(&fixture, "on", "snapshot-external:e1", point);
    let driver = open(&fixture);
    driver.domain_lookup_by_name("on").unwrap();
    assert!(!fixture.root().join("run/qemu/.intent").exists(), "the operation's record is settled");
    assert!(driver.domain_is_active(&dom).unwrap(), "the domain still runs");
    assert!(walk(fixture.dir.path()).iter().all(|p| !p.to_string_lossy().contains(".vb-")), "no placeholder left");
    let qmp_socket = fixture.root().join("run/qemu/on/qmp.sock");
    let (extras, bitmaps) = engine_extras(&qmp_socket);
    assert_eq!(bitmaps, ["c1", "c2"]);
    let image = if finished { &overlay } else { &vda };
    let live = driver.domain_get_xml_desc(&dom, 0).unwrap();
    assert!(live.contains(&format!("<source file='{}'/>", image.display())), "{live}");
    assert_eq!(&common::current_image(driver.as_ref(), &dom), image);
    if !finished {
        assert!(extras.is_empty(), "left in the engine: {extras:?}");
        assert!(!overlay.exists(), "the overlay is gone");
        assert_eq!(driver.list_all_snapshots(&dom, 0, true, "virDomainSnapshotNum").unwrap().len(), 0);
        driver.domain_destroy(&dom, 0).unwrap();
        return;
    }
    // The overlay's two nodes are the disk's now; nothing else was added.
    assert_eq!(extras.len(), 2, "{extras:?}");
    assert_eq!(driver.snapshot_current(&dom, 0).unwrap(), "e1");
    let exports = qmp(&qmp_socket, "query-block-exports", None);
    let top = exports[0]["node-name"].as_str().unwrap().to_string();
    assert!(extras.contains(&format!("node {top}")), "the export writes to the overlay: {exports}");
    // c2 still restores the disk: its bitmap is read along the chain.
    let full = fixture.image("full-c3.bk");
    driver.backup_begin(&dom, &push_xml(&full, None), Some(&checkpoint("c3")), 0).unwrap();
    assert_eq!(wait_job(driver.as_ref(), &dom).job_type, 3);
    assert_eq!(driver.checkpoint_get_parent(&dom, "c3", 0).unwrap(), "c2");
    common::write_disk(&common::disk_file(driver.as_ref(), &dom, "vda"), 0x5a, 8 * MIB, MIB);
    let now = common::read_disk(&fixture, &common::disk_file(driver.as_ref(), &dom, "vda"), "now.qcow2");
    let inc = fixture.image("inc-c3.bk");
    driver.backup_begin(&dom, &push_xml(&inc, Some("c3")), None, 0).unwrap();
    assert_eq!(wait_job(driver.as_ref(), &dom).job_type, 3);
    assert!(common::restore_and_compare(&fixture, &inc, &full, &now));
    driver.domain_destroy(&dom, 0).unwrap();
    assert_eq!(bitmap_names(&overlay), ["c1", "c2", "c3"]);
    assert!(common::compare(&overlay, &now), "the domain's writes are in the overlay");
}

#[test]
fn external_snapshot_of_a_running_domain_killed_before_the_engine_took_it_is_undone() {
    live_external_snapshot_killed_at("snapshot-overlay-created", false);
}

#[test]
fn external_snapshot_of_a_running_domain_killed_once_the_engine_took_it_is_finished() {
    live_external_snapshot_killed_at("snapshot-overlay-taken", true);
}

#[test]
fn external_snapshot_of_a_running_domain_killed_after_its_metadata_is_finished() {
    live_external_snapshot_killed_at("snapshot-metadata-written", true);
}

#[test]
fn external_revert_of_a_running_domain_killed_is_finished_and_leaves_it_shut_off() {
    let fixture = Fixture::new();
    let (dom, vda) = prepare(&fixture, "on", true);
    let driver = open(&fixture);
    driver.snapshot_create_xml(&dom, "<domainsnapshot><name>e1</name></domainsnapshot>", 1 << 4).unwrap();
    common::write_disk(&common::disk_file(driver.as_ref(), &dom, "vda"), 0x4e, 8 * MIB, MIB);
    drop(driver);
    killed_at(&fixture, "on", "revert:e1", "snapshot-revert-recorded");
    assert!(daemons(&fixture).is_empty(), "the engine was stopped for the revert");
    let driver = open(&fixture);
    assert!(!driver.domain_is_active(&dom).unwrap());
    let overlay = common::current_image(driver.as_ref(), &dom);
    assert_eq!(overlay, vda.with_extension("e1"));
    assert!(common::compare(&overlay, &vda), "the disk is as it was at e1");
    assert_eq!(bitmap_names(&overlay), ["c1", "c2"]);
    driver.domain_create(&dom, 0).unwrap();
    driver.domain_destroy(&dom, 0).unwrap();
}

/// The deletion of an external snapshot of a shut-off domain killed at `point` is
/// finished by the next process: the overlay committed and gone, the domain back on its
/// image reading as before, the checkpoints' bitmaps in the image.
fn external_deletion_killed_at(point: &str) {
    let fixture = Fixture::new();
    let (dom, vda) = prepare(&fixture, "off", false);
    let driver = open(&fixture);
    driver.snapshot_create_xml(&dom, "<domainsnapshot><name>e1</name></domainsnapshot>", 1 << 4).unwrap();
    let overlay = common::current_image(driver.as_ref(), &dom);
    write_pattern(&overlay, "qcow2", 0x5b, 8 * MIB, MIB);
    driver.checkpoint_create_xml(&dom, &checkpoint("c3"), 0).unwrap();
    drop(driver);
    let before = fixture.image("before.qcow2");
    common::run("qemu-img", &["convert", "-O", "qcow2", overlay.to_str().unwrap(), before.to_str().unwrap()]);
    killed_at(&fixture, "off", "snapshot-delete:e1", point);
    let (listed, current, _, bitmaps) = snapshot_state(&fixture, "off", &vda);
    assert!(listed.is_empty() && current.is_none(), "{listed:?} {current:?}");
    assert_eq!(bitmaps, ["c1", "c2", "c3"]);
    assert!(!overlay.exists(), "the overlay is gone");
    let driver = open(&fixture);
    assert_eq!(common::current_image(driver.as_ref(), &dom), vda, "the domain is back on its image");
    assert!(common::compare(&vda, &before), "the disk reads as before");
    drop(driver);
    assert_recovered(&fixture, "off", &vda, false, &["c1", "c2", "c3"], &[]);
}

#[test]
fn external_deletion_killed_after_its_commit_is_finished() {
    external_deletion_killed_at("snapshot-overlay-committed");
}

#[test]
fn external_deletion_killed_before_removing_the_overlay_is_finished() {
    external_deletion_killed_at("snapshot-overlay-replaced");
}

/// The deletion of an external snapshot of a running domain killed at `point`, its
/// overlay under a later snapshot's: the next process finishes it (the overlay committed
/// in the engine, once, and gone), and the disk reads as before.
fn live_external_deletion_killed_at(point: &str) {
    let fixture = Fixture::new();
    let (dom, vda) = prepare(&fixture, "on", true);
    let driver = open(&fixture);
    let file = common::disk_file(driver.as_ref(), &dom, "vda");
    driver.snapshot_create_xml(&dom, "<domainsnapshot><name>e1</name></domainsnapshot>", 1 << 4).unwrap();
    common::write_disk(&file, 0x5c, 8 * MIB, MIB);
    driver.snapshot_create_xml(&dom, "<domainsnapshot><name>e2</name></domainsnapshot>", 1 << 4).unwrap();
    common::write_disk(&file, 0x5d, 12 * MIB, MIB);
    let before = common::read_disk(&fixture, &file, "before.qcow2");
    drop(driver);
    killed_at(&fixture, "on", "snapshot-delete:e1", point);
    let driver = open(&fixture);
    assert_eq!(names(driver.list_all_snapshots(&dom, 0, false, "virDomainListAllSnapshots").unwrap()), ["e2"]);
    assert!(!fixture.root().join("run/qemu/.intent").exists(), "the operation's record is settled");
    assert!(!vda.with_extension("e1").exists(), "the overlay is gone");
    let jobs = qmp(&fixture.root().join("run/qemu/on/qmp.sock"), "query-jobs", None);
    assert_eq!(jobs, json!([]), "no job is left");
    assert!(common::compare(&common::read_disk(&fixture, &file, "after.qcow2"), &before), "the disk reads as before");
    let e2 = vda.with_extension("e2");
    let info = common::run("qemu-img", &["info", "-U", e2.to_str().unwrap()]);
    assert!(info.contains(&format!("backing file: {}", vda.display())), "{info}");
    driver.domain_destroy(&dom, 0).unwrap();
    assert_eq!(bitmap_names(&vda), ["c1", "c2"]);
}

#[test]
fn external_deletion_of_a_running_domain_killed_during_its_commit_is_finished() {
    live_external_deletion_killed_at("snapshot-commit-started");
}

#[test]
fn external_deletion_of_a_running_domain_killed_after_its_commit_is_finished() {
    live_external_deletion_killed_at("snapshot-overlay-committed");
}

/// A revert to an external snapshot with a child, killed at `point`: finished, the
/// domain is on a new overlay of its own with the disk as at the snapshot; undone, it is
/// on the child's overlay as before and no new overlay is left.
fn branching_revert_killed_at(point: &str, finished: bool) {
    let fixture = Fixture::new();
    let (dom, vda) = prepare(&fixture, "off", false);
    let driver = open(&fixture);
    let disk_only = 1 << 4;
    driver.snapshot_create_xml(&dom, "<domainsnapshot><name>e1</name></domainsnapshot>", disk_only).unwrap();
    write_pattern(&common::current_image(driver.as_ref(), &dom), "qcow2", 0x6e, 8 * MIB, MIB);
    driver.snapshot_create_xml(&dom, "<domainsnapshot><name>e2</name></domainsnapshot>", disk_only).unwrap();
    drop(driver);
    killed_at(&fixture, "off", "revert:e1", point);
    let driver = open(&fixture);
    driver.domain_lookup_by_name("off").unwrap();
    assert!(!fixture.root().join("run/qemu/.intent").exists(), "the operation's record is settled");
    let branch = vda.with_extension("e1.1");
    let now = common::current_image(driver.as_ref(), &dom);
    if finished {
        assert_eq!(now, branch);
        assert!(common::compare(&branch, &vda), "the disk is as it was at e1");
        assert_eq!(driver.snapshot_current(&dom, 0).unwrap(), "e1");
    } else {
        assert_eq!(now, vda.with_extension("e2"));
        assert!(!branch.exists(), "no new overlay is left");
    }
    assert!(walk(fixture.dir.path()).iter().all(|p| !p.to_string_lossy().contains(".vb-")), "no placeholder left");
    assert_eq!(bitmap_names(&now), ["c1", "c2"]);
}

#[test]
fn branching_revert_killed_once_recorded_is_finished() {
    branching_revert_killed_at("snapshot-revert-recorded", true);
}

#[test]
fn branching_revert_killed_before_its_point_of_no_return_is_undone() {
    branching_revert_killed_at("snapshot-bitmaps-set-aside", false);
}

//! Snapshots on the QEMU driver: internal snapshots of a domain's qcow2 disks, reverted to
//! with `qemu-img` (see [`crate::engine::image`]), and external ones; their metadata under
//! `DIR/lib/qemu/snapshot/<domain>/` in libvirt's format.
//!
//! Checkpoints stay correct across snapshots. Each snapshot has a bitmap in every image
//! it covers, `virbackup-snapshot/<name>`, enabled from the instant the snapshot is taken:
//! it records what changed since. Reverting to a snapshot adds that bitmap to every other
//! bitmap of the image (checkpoints' and other snapshots'), since exactly those clusters
//! change back, then empties it; a checkpoint's bitmap therefore never misses a cluster
//! that differs from what the checkpoint saw. The checkpoint that was current when the
//! snapshot was taken becomes current again, so the next checkpoint is its child: the
//! checkpoint tree branches as the disk's history does.
//!
//! Each operation runs under a record of what it may leave behind (`intent.rs`): a
//! creation cut short is undone (its internal snapshots and bitmaps go), a deletion is
//! finished, a revert is undone until every image's bitmaps are set aside and finished
//! after.
//!
//! A running domain's snapshot holds its disks only (state `disk-snapshot`: these domains
//! have no memory to save), taken in one QMP transaction of its engine; reverting to it
//! stops the engine, applies the snapshot and starts it again.
//!
//! External (disk-only) snapshots put each disk on a new qcow2 overlay, carrying the
//! checkpoints' bitmaps into it (incremental backups merge a checkpoint's bitmaps along
//! the backing chain). A shut-off domain's overlays are made with `qemu-img`; a running
//! domain's engine opens them and puts them on its disks in one transaction, its exports
//! following. Reverting to one puts the disks on new empty overlays over the same
//! images; deleting one commits its overlays into the images below (`qemu-img commit`,
//! or a `block-commit` job of a running domain's engine) when nothing else reads
//! through those images.
//! `NO_METADATA` takes the snapshot and forgets its metadata at once.

use std::path::PathBuf;

use super::domain::engine_disks;
use super::intent::{Intent, Journal, LiveOverlays, OverlayCommit, SnapshotStep, kill_point};
use super::state::{FROM, Inner, QemuDomain, QemuDriver, invalid, unsupported_config};
use super::store::{self, Layout, Scope, StoredSnapshot};
use crate::abi::{
    virDomainShutoffReason, virDomainSnapshotCreateFlags as Create, virDomainSnapshotDeleteFlags as Delete,
    virDomainSnapshotRevertFlags as Revert,
};
use crate::conf::domain::{DomainDef, FormatOptions};
use crate::conf::snapshot::{SnapshotDef, SnapshotLocation, SnapshotParse, SnapshotState, check_snapshot_name};
use crate::driver::snapshots::{self, Prepared};
use crate::driver::{DomainId, Listing};
use crate::engine::backup::{Creation, Store};
use crate::engine::commands::{self, Action};
use crate::engine::image;
use crate::engine::qmp::Qmp;
use crate::error::{Code, Error, Result};

/// The bitmap that records what changes in an image after snapshot `name` (checkpoint
/// names cannot hold a '/', so it never takes a checkpoint's bitmap name).
pub(crate) fn snapshot_bitmap(name: &str) -> String {
    format!("virbackup-snapshot/{name}")
}

fn not_yet(what: &str) -> Error {
    Error::new(FROM, Code::VIR_ERR_OPERATION_UNSUPPORTED, format!("{what} are not supported yet"))
}

/// Answers `read` from a domain's snapshot list, after checking the flags of
/// `function` against `allowed`.
fn read_snapshots<T>(
    driver: &QemuDriver,
    dom: &DomainId,
    function: &str,
    flags: u32,
    allowed: u32,
    read: impl FnOnce(&QemuDomain) -> Result<T>,
) -> Result<T> {
    Error::check_flags(FROM, function, flags, allowed)?;
    driver.with_state(Scope::Domain(&dom.name), false, |inner, _| read(&inner.domains[inner.position(dom)?]))
}

pub(crate) fn list_all_snapshots(
    driver: &QemuDriver,
    dom: &DomainId,
    flags: u32,
    count_only: bool,
    api: &'static str,
) -> Result<Listing> {
    read_snapshots(driver, dom, &crate::driver::driver_function("qemu", api), flags, snapshots::LIST_FLAGS, |d| {
        d.snapshots.listing(None, flags, count_only)
    })
}

pub(crate) fn snapshot_list_all_children(
    driver: &QemuDriver,
    dom: &DomainId,
    name: &str,
    flags: u32,
    count_only: bool,
    api: &'static str,
) -> Result<Listing> {
    read_snapshots(driver, dom, &crate::driver::driver_function("qemu", api), flags, snapshots::LIST_FLAGS, |d| {
        d.snapshots.listing(Some(name), flags, count_only)
    })
}

pub(crate) fn snapshot_lookup_by_name(driver: &QemuDriver, dom: &DomainId, name: &str, flags: u32) -> Result<()> {
    read_snapshots(driver, dom, "qemuDomainSnapshotLookupByName", flags, 0, |d| d.snapshots.get(name).map(|_| ()))
}

pub(crate) fn has_current_snapshot(driver: &QemuDriver, dom: &DomainId, flags: u32) -> Result<bool> {
    read_snapshots(driver, dom, "qemuDomainHasCurrentSnapshot", flags, 0, |d| Ok(d.snapshots.current().is_some()))
}

pub(crate) fn snapshot_current(driver: &QemuDriver, dom: &DomainId, flags: u32) -> Result<String> {
    read_snapshots(driver, dom, "qemuDomainSnapshotCurrent", flags, 0, |d| {
        d.snapshots.current().map(str::to_string).ok_or_else(|| {
            Error::new(FROM, Code::VIR_ERR_NO_DOMAIN_SNAPSHOT, "the domain does not have a current snapshot")
        })
    })
}

pub(crate) fn snapshot_get_xml_desc(driver: &QemuDriver, dom: &DomainId, name: &str, flags: u32) -> Result<String> {
    let secure = crate::abi::VIR_DOMAIN_SNAPSHOT_XML_SECURE as u32;
    read_snapshots(driver, dom, "qemuDomainSnapshotGetXMLDesc", flags, secure, |d| {
        d.snapshots.format(name, flags, &d.def().uuid)
    })
}

pub(crate) fn snapshot_get_parent(driver: &QemuDriver, dom: &DomainId, name: &str, flags: u32) -> Result<String> {
    read_snapshots(driver, dom, "qemuDomainSnapshotGetParent", flags, 0, |d| d.snapshots.parent(name))
}

pub(crate) fn snapshot_is_current(driver: &QemuDriver, dom: &DomainId, name: &str, flags: u32) -> Result<bool> {
    read_snapshots(driver, dom, "qemuDomainSnapshotIsCurrent", flags, 0, |d| {
        d.snapshots.get(name)?;
        Ok(d.snapshots.current() == Some(name))
    })
}

pub(crate) fn snapshot_has_metadata(driver: &QemuDriver, dom: &DomainId, name: &str, flags: u32) -> Result<bool> {
    read_snapshots(driver, dom, "qemuDomainSnapshotHasMetadata", flags, 0, |d| d.snapshots.get(name).map(|_| true))
}

impl QemuDriver {
    /// Writes the metadata file of one snapshot as the domain's list has it now.
    fn save_snapshot(&self, domain: &QemuDomain, name: &str) -> Result<()> {
        let stored = StoredSnapshot {
            def: domain.snapshots.get(name)?.clone(),
            current: domain.snapshots.current() == Some(name),
            checkpoint: domain.snapshot_checkpoints.get(name).cloned(),
            reverts: domain.snapshot_reverts.get(name).cloned().unwrap_or_default(),
        };
        self.layout.save(&self.layout.snapshot_file(domain.name(), name), &store::snapshot_document(&stored))
    }

    /// Makes `current` the current snapshot (or none), rewriting the files of the old and
    /// the new current one.
    fn set_current_snapshot(&self, domain: &mut QemuDomain, current: Option<&str>) -> Result<()> {
        let old = domain.snapshots.current().map(str::to_string);
        domain.snapshots.set_current(current);
        for name in [old.as_deref(), current].into_iter().flatten() {
            if domain.snapshots.contains(name) {
                self.save_snapshot(domain, name)?;
            }
        }
        Ok(())
    }

    /// Commits a prepared snapshot to the list and its metadata to disk: its own file
    /// first (which completes a creation), then the file of the snapshot that was
    /// current before it, if it no longer is.
    fn commit_snapshot(&self, domain: &mut QemuDomain, prepared: Prepared, checkpoint: Option<String>) -> Result<()> {
        let name = prepared.def.name.clone();
        let old = domain.snapshots.current().map(str::to_string);
        domain.snapshots.commit(prepared)?;
        match checkpoint {
            Some(c) => domain.snapshot_checkpoints.insert(name.clone(), c),
            None => domain.snapshot_checkpoints.remove(&name),
        };
        self.save_snapshot(domain, &name)?;
        kill_point("snapshot-metadata-written");
        match old {
            Some(old) if old != name && domain.snapshots.current() != Some(old.as_str()) => {
                self.save_snapshot(domain, &old)
            }
            _ => Ok(()),
        }
    }

    /// Removes the overlays reverts made that nothing uses any more: neither the domain
    /// (its disks' images and the images below them) nor a snapshot other than those
    /// in `leaving` (their overlays, and the disks of their definitions). A file that is
    /// gone already is only forgotten.
    fn remove_unused_reverts(&self, domain: &mut QemuDomain, leaving: &[String]) -> Result<()> {
        if domain.snapshot_reverts.is_empty() {
            return Ok(());
        }
        let mut used: Vec<PathBuf> = Vec::new();
        for def in [domain.persistent.as_deref(), domain.live.as_ref().map(|l| &*l.def)].into_iter().flatten() {
            for disk in def.disks.iter().filter_map(|d| d.source.as_ref()) {
                let mut at = Some(PathBuf::from(disk));
                while let Some(image) = at.filter(|i| !used.contains(i)) {
                    at = backing_of(&image);
                    used.push(image);
                }
            }
        }
        for snap in domain.snapshots.all_topological().into_iter().filter(|s| !leaving.contains(&s.name)) {
            used.extend(snap.disks.iter().filter_map(|d| d.path.clone()).map(PathBuf::from));
            let sources = snap.domain.iter().flat_map(|d| d.disks.iter().filter_map(|d| d.source.clone()));
            used.extend(sources.map(PathBuf::from));
        }
        let names: Vec<String> = domain.snapshot_reverts.keys().cloned().collect();
        for name in names {
            let files = domain.snapshot_reverts.get(&name).cloned().unwrap_or_default();
            let (kept, unused): (Vec<PathBuf>, Vec<PathBuf>) = files.into_iter().partition(|f| used.contains(f));
            if unused.is_empty() {
                continue;
            }
            for file in &unused {
                match std::fs::remove_file(file) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::system(FROM, format!("cannot remove '{}'", file.display()), &e)),
                }
            }
            domain.snapshot_reverts.insert(name.clone(), kept);
            if domain.snapshots.contains(&name) {
                self.save_snapshot(domain, &name)?;
            }
        }
        domain.snapshot_reverts.retain(|_, files| !files.is_empty());
        Ok(())
    }

    /// Forgets a snapshot just taken with `NO_METADATA`: what it made in the images
    /// stays (an internal snapshot keeps its bitmap, for a later REDEFINE and revert to
    /// find), its metadata goes, and the snapshot current before is current again.
    fn forget_snapshot(&self, domain: &mut QemuDomain, name: &str) -> Result<()> {
        self.delete_snapshot_metadata(domain, name, Delete::VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY as u32)
    }

    /// Removes snapshot metadata per the delete flags: reparented children are rewritten
    /// first, then the current snapshot, then the files of the deleted ones.
    fn delete_snapshot_metadata(&self, domain: &mut QemuDomain, name: &str, flags: u32) -> Result<()> {
        if flags & Delete::VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY as u32 == 0 {
            // The overlays reverts to the doomed snapshots made go first, unless used.
            let doomed: Vec<String> =
                domain.snapshots.to_be_deleted(name, flags)?.into_iter().map(|d| d.name).collect();
            self.remove_unused_reverts(domain, &doomed)?;
        }
        let old_current = domain.snapshots.current().map(str::to_string);
        let deleted = domain.snapshots.delete(name, flags)?;
        for child in &deleted.reparented {
            self.save_snapshot(domain, child)?;
        }
        if let Some(now) = domain.snapshots.current().filter(|c| Some(*c) != old_current.as_deref()) {
            self.save_snapshot(domain, now)?;
        }
        for removed in &deleted.removed {
            domain.snapshot_checkpoints.remove(&removed.name);
            domain.snapshot_reverts.remove(&removed.name);
            self.layout.remove(&self.layout.snapshot_file(domain.name(), &removed.name))?;
        }
        Ok(())
    }
}

/// The image files of a snapshot's internal disks, found in the snapshot's own copy of
/// the domain definition (else the domain's).
fn internal_images(def: &SnapshotDef, domain: &DomainDef) -> Vec<PathBuf> {
    let dom = def.domain.as_deref().unwrap_or(domain);
    def.disks
        .iter()
        .filter(|d| d.kind == SnapshotLocation::Internal)
        .filter_map(|d| dom.disk(&d.name).and_then(|disk| disk.source.clone()))
        .map(PathBuf::from)
        .collect()
}

/// libvirt's check that the domain still uses, for each internal disk of a snapshot, the
/// image that holds it.
fn check_same_images(def: &SnapshotDef, domain: &DomainDef) -> Result<()> {
    let Some(taken) = def.domain.as_deref() else { return Ok(()) };
    for disk in def.disks.iter().filter(|d| d.kind == SnapshotLocation::Internal) {
        let source = |dom: &DomainDef| dom.disk(&disk.name).and_then(|d| d.source.clone());
        if source(taken) != source(domain) {
            return Err(Error::new(
                FROM,
                Code::VIR_ERR_OPERATION_UNSUPPORTED,
                format!(
                    "disk image '{}' for internal snapshot '{}' is not the same as disk image currently used by VM",
                    disk.name, def.name
                ),
            ));
        }
    }
    Ok(())
}

/// The targets of a snapshot's internal disks.
fn internal_targets(def: &SnapshotDef) -> Vec<String> {
    def.disks.iter().filter(|d| d.kind == SnapshotLocation::Internal).map(|d| d.name.clone()).collect()
}

/// libvirt's checks of a new internal snapshot's disks against the domain's
/// (`qemuSnapshotPrepare`), with what this driver cannot do yet refused.
fn check_new_disks(def: &SnapshotDef, domain: &DomainDef) -> Result<()> {
    let mut found_internal = false;
    let mut forbid_internal = false;
    for (disk, dom_disk) in def.disks.iter().zip(&domain.disks) {
        match disk.kind {
            SnapshotLocation::Internal => {
                found_internal = true;
                let format = dom_disk.format.as_deref().unwrap_or("raw");
                if format != "qcow2" {
                    return Err(unsupported_config(format!(
                        "internal snapshot for disk {} unsupported for storage type {format}",
                        disk.name
                    )));
                }
            }
            SnapshotLocation::External => {
                return Err(unsupported_config(
                    "mixing internal and external targets for a snapshot is not yet supported",
                ));
            }
            SnapshotLocation::Manual => forbid_internal = true,
            SnapshotLocation::No | SnapshotLocation::Default => {
                forbid_internal |= !dom_disk.is_empty() && !dom_disk.readonly;
            }
        }
    }
    if !found_internal {
        return Err(unsupported_config("nothing selected for snapshot"));
    }
    if forbid_internal {
        return Err(unsupported_config(
            "internal and full system snapshots require all disks to be selected for snapshot",
        ));
    }
    Ok(())
}

pub(crate) fn snapshot_create_xml(driver: &QemuDriver, dom: &DomainId, xml: &str, flags: u32) -> Result<String> {
    use Create::*;
    let all = [
        VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE,
        VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT,
        VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA,
        VIR_DOMAIN_SNAPSHOT_CREATE_HALT,
        VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY,
        VIR_DOMAIN_SNAPSHOT_CREATE_REUSE_EXT,
        VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE,
        VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC,
        VIR_DOMAIN_SNAPSHOT_CREATE_LIVE,
        VIR_DOMAIN_SNAPSHOT_CREATE_VALIDATE,
    ];
    Error::check_flags(FROM, "qemuDomainSnapshotCreateXML", flags, all.iter().fold(0, |a, f| a | *f as u32))?;
    let set = |f: Create| flags & f as u32 != 0;
    let no_metadata = set(VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA);
    let redefine = set(VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE);
    driver.with_state(Scope::Domain(&dom.name), true, |inner, _| {
        let at = inner.position(dom)?;
        let domain = &inner.domains[at];
        let active = domain.live.is_some();
        let how = SnapshotParse {
            redefine,
            offline: !active,
            validate: set(VIR_DOMAIN_SNAPSHOT_CREATE_VALIDATE),
            keep_cookie: true,
            now: None,
        };
        let mut def = SnapshotDef::parse(xml, how)?;
        check_snapshot_name(&def.name, FROM)?;
        store::check_file_name("snapshot", &def.name)?;
        if redefine {
            let prepared = domain.snapshots.prepare_redefine(def, &domain.def().uuid, flags)?;
            let name = prepared.def.name.clone();
            let checkpoint = inner.domains[at].snapshot_checkpoints.get(&name).cloned();
            driver.commit_snapshot(&mut inner.domains[at], prepared, checkpoint)?;
            return Ok(name);
        }
        if set(VIR_DOMAIN_SNAPSHOT_CREATE_LIVE) {
            return Err(Error::new(
                FROM,
                Code::VIR_ERR_OPERATION_UNSUPPORTED,
                "live snapshot creation is supported only during full system snapshots",
            ));
        }
        if set(VIR_DOMAIN_SNAPSHOT_CREATE_HALT) && domain.persistent.is_none() {
            return Err(invalid("cannot halt after transient domain snapshot"));
        }
        if set(VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE) && !active {
            return Err(invalid("domain is not running"));
        }
        if set(VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE) {
            return Err(Error::new(FROM, Code::VIR_ERR_AGENT_UNRESPONSIVE, "QEMU guest agent is not configured"));
        }
        // A running domain's snapshot holds its disks only: this driver's domains have
        // no memory to save.
        if active && !matches!(def.memory, SnapshotLocation::Default | SnapshotLocation::No) {
            return Err(Error::new(
                FROM,
                Code::VIR_ERR_OPERATION_UNSUPPORTED,
                "this driver's domains have no memory state to save: a snapshot of a running domain holds its disks",
            ));
        }
        QemuDriver::check_no_backup_job(domain, "take a snapshot of")?;
        let domain_def = domain.def().clone();
        def.domain = Some(domain_def.clone());
        def.state = if active { SnapshotState::DiskSnapshot } else { SnapshotState::Shutoff };
        def.memory = SnapshotLocation::No;
        let disk_only = set(VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY);
        let location = if disk_only { SnapshotLocation::External } else { SnapshotLocation::Internal };
        def.align_disks(None, location, true, snapshots::is_regular_file)?;
        if def.disks.iter().any(|d| d.kind == SnapshotLocation::External) {
            let name = create_external(driver, inner, at, def, set(VIR_DOMAIN_SNAPSHOT_CREATE_REUSE_EXT))?;
            if no_metadata {
                driver.forget_snapshot(&mut inner.domains[at], &name)?;
            }
            if active && set(VIR_DOMAIN_SNAPSHOT_CREATE_HALT) {
                driver.stop_engine(inner, at, virDomainShutoffReason::VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT)?;
            }
            return Ok(name);
        }
        if set(VIR_DOMAIN_SNAPSHOT_CREATE_REUSE_EXT) {
            return Err(invalid("reuse is not supported with internal snapshots"));
        }
        check_new_disks(&def, &domain_def)?;
        if domain.snapshots.contains(&def.name) {
            return Err(domain.snapshots.exists_error(&def.name));
        }
        def.parent = domain.snapshots.current().map(str::to_string);
        let name = def.name.clone();
        let bitmap = snapshot_bitmap(&name);
        let images = internal_images(&def, &domain_def);
        for path in &images {
            let state = image::state(path)?;
            if state.snapshots.contains(&name) || state.has_bitmap(&bitmap) {
                return Err(Error::new(
                    FROM,
                    Code::VIR_ERR_OPERATION_FAILED,
                    format!("disk image '{}' already has a snapshot named '{name}'", path.display()),
                ));
            }
        }
        let checkpoint = domain.checkpoints.current().map(str::to_string);
        let mut intent = Intent::new("snapshot creation", domain.name());
        intent.snapshot = Some(SnapshotStep::Create { name: name.clone(), images: images.clone(), live: None });
        let prepared = Prepared { def, replaces: false, make_current: true };
        driver.journaled(inner, intent, |inner, journal| {
            if active {
                // All disks at one instant: one transaction in the domain's engine.
                let targets = internal_targets(&prepared.def);
                let mut session = driver.session(&inner.domains[at], &engine_disks(&domain_def)?, journal)?;
                let mut actions = Vec::new();
                for target in &targets {
                    let node = session.node(target)?.to_string();
                    actions.push(Action::InternalSnapshot { node: node.clone(), name: name.clone() });
                    actions.push(Action::AddBitmap { node, name: bitmap.clone() });
                }
                session.transaction(&actions)?;
                kill_point("snapshot-image-taken");
                session.finish()?;
            } else {
                for path in &images {
                    image::create_snapshot(path, &name)?;
                    kill_point("snapshot-image-taken");
                    image::add_bitmap(path, &bitmap, true, 65536)?;
                }
            }
            driver.commit_snapshot(&mut inner.domains[at], prepared, checkpoint)
        })?;
        if no_metadata {
            driver.forget_snapshot(&mut inner.domains[at], &name)?;
        }
        if active && set(VIR_DOMAIN_SNAPSHOT_CREATE_HALT) {
            driver.stop_engine(inner, at, virDomainShutoffReason::VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT)?;
        }
        Ok(name)
    })
}

pub(crate) fn snapshot_delete(driver: &QemuDriver, dom: &DomainId, name: &str, flags: u32) -> Result<()> {
    let allowed = Delete::VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN as u32
        | Delete::VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY as u32
        | Delete::VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY as u32;
    Error::check_flags(FROM, "qemuDomainSnapshotDelete", flags, allowed)?;
    driver.with_state(Scope::Domain(&dom.name), true, |inner, _| {
        let at = inner.position(dom)?;
        let domain = &inner.domains[at];
        let doomed = domain.snapshots.to_be_deleted(name, flags)?;
        if flags & Delete::VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY as u32 != 0 {
            return driver.delete_snapshot_metadata(&mut inner.domains[at], name, flags);
        }
        let children_flags = Delete::VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN as u32
            | Delete::VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY as u32;
        if flags & children_flags != 0 {
            let (external, internal): (Vec<&SnapshotDef>, Vec<&SnapshotDef>) =
                doomed.iter().filter(|d| d.name != name).partition(|d| d.is_external());
            if !external.is_empty() {
                return Err(unsupported_config(if internal.is_empty() {
                    "deletion of external children disk snapshots not supported"
                } else {
                    "deletion of external and internal children disk snapshots not supported"
                }));
            }
        }
        QemuDriver::check_no_backup_job(domain, "delete a snapshot of")?;
        let snap = domain.snapshots.get(name)?;
        if snap.is_external() && flags & Delete::VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN as u32 != 0 {
            return Err(unsupported_config("deletion of external disk snapshots with children not supported"));
        }
        if snap.is_external() && flags & children_flags == 0 {
            return delete_external(driver, inner, at, name, flags);
        }
        if domain.live.is_some() {
            for def in &doomed {
                check_same_images(def, domain.def())?;
            }
        }
        let images: Vec<(PathBuf, String)> = doomed
            .iter()
            .flat_map(|d| internal_images(d, domain.def()).into_iter().map(|p| (p, d.name.clone())))
            .collect();
        let mut intent = Intent::new("snapshot deletion", domain.name());
        intent.snapshot = Some(SnapshotStep::Delete { name: name.to_string(), flags, images, external: Vec::new() });
        // Always finished, never undone: settling the record does the work.
        driver.journaled(inner, intent, |_, _| Ok(()))
    })
}

/// Deletes an external snapshot as libvirt does: each overlay it made is written into the
/// image below it (a block commit), whose bitmaps take in the overlay's, and that image
/// takes the overlay's place: in the domain's definition, under a later snapshot's
/// overlay, and in the other snapshots' definitions. The overlay then goes. Each step
/// can be run again, so the record is always finished (see `commit_overlays`).
fn delete_external(driver: &QemuDriver, inner: &mut Inner, at: usize, name: &str, flags: u32) -> Result<()> {
    let domain = &inner.domains[at];
    let snap = domain.snapshots.get(name)?;
    let taken = snap.domain.clone().ok_or_else(|| invalid(format!("snapshot '{name}' lacks its domain")))?;
    let mut external = Vec::new();
    for disk in snap.disks.iter().filter(|d| d.kind == SnapshotLocation::External) {
        let overlay = PathBuf::from(disk.path.clone().unwrap_or_default());
        let below = taken.disk(&disk.name).ok_or_else(|| invalid(format!("no disk '{}'", disk.name)))?;
        let base = PathBuf::from(below.source.clone().unwrap_or_default());
        let top = domain.def().disk(&disk.name).and_then(|d| d.source.clone()).map(PathBuf::from);
        let above = find_in_chain(top, &overlay)?;
        let state = image::state(&overlay)?;
        if state.backing.as_deref().map(|b| resolve_backing(&overlay, b)) != Some(base.clone()) {
            return Err(Error::new(
                FROM,
                Code::VIR_ERR_OPERATION_FAILED,
                "snapshot VM disk source and parent disk source are not the same",
            ));
        }
        // Committing changes the image below for whatever else reads through it: an
        // overlay of another branch of the disk's history (made by a revert).
        if let Some(other) = other_users(domain, &disk.name, &overlay, &base) {
            return Err(Error::new(
                FROM,
                Code::VIR_ERR_OPERATION_UNSUPPORTED,
                format!(
                    "cannot delete external snapshot '{name}': the image '{}' below it is also the backing image \
                     of '{}'",
                    base.display(),
                    other.display()
                ),
            ));
        }
        if parent_snapshot_for_disk(&domain.snapshots, snap, &disk.name).is_some_and(|p| !p.is_external()) {
            return Err(Error::new(
                FROM,
                Code::VIR_ERR_OPERATION_UNSUPPORTED,
                "deleting external snapshot that has internal snapshot as parent not supported",
            ));
        }
        if !state.snapshots.is_empty() {
            return Err(Error::new(
                FROM,
                Code::VIR_ERR_OPERATION_UNSUPPORTED,
                format!(
                    "cannot delete external snapshot '{name}': its overlay '{}' holds internal snapshots",
                    overlay.display()
                ),
            ));
        }
        if above.is_none() && fuse_export(domain, &disk.name) {
            return Err(Error::new(
                FROM,
                Code::VIR_ERR_OPERATION_UNSUPPORTED,
                format!(
                    "cannot commit the overlay of disk '{}' while the domain runs: its FUSE export holds the \
                     resize permission that QEMU's commit of a disk's top image takes; shut the domain off \
                     first, or offer the disk over vhost-user-blk",
                    disk.name
                ),
            ));
        }
        external.push(OverlayCommit {
            target: disk.name.clone(),
            overlay,
            base,
            base_format: below.format.clone().unwrap_or_else(|| "raw".to_string()),
            above,
        });
    }
    let mut intent = Intent::new("snapshot deletion", domain.name());
    intent.snapshot = Some(SnapshotStep::Delete { name: name.to_string(), flags, images: Vec::new(), external });
    // Always finished, never undone: settling the record does the work.
    driver.journaled(inner, intent, |_, _| Ok(()))
}

/// Whether a bitmap of the image below an overlay was removed from the overlay since the
/// overlay was made: every recording bitmap but a snapshot's was carried into it, so one
/// missing there is a checkpoint deleted since (its bitmap stayed below), which goes
/// when the overlay is committed rather than come back to the top.
fn removed_since(recording: bool, name: &str, in_overlay: &[&str]) -> bool {
    recording && !is_snapshot_bitmap(name) && !in_overlay.contains(&name)
}

/// Whether a running domain's disk is offered as a FUSE file.
fn fuse_export(domain: &QemuDomain, target: &str) -> bool {
    use crate::engine::daemon::Interface;
    matches!(&domain.live, Some(super::state::Live { engine: super::state::Engine::Ours { exports, .. }, .. })
        if exports.iter().any(|e| e.target == target && e.interface == Interface::Fuse))
}

/// An image of a disk, other than `overlay`, that reads through `base`: looked for among
/// the images the domain and its snapshots name for the disk, and their backing chains.
fn other_users(domain: &QemuDomain, disk: &str, overlay: &std::path::Path, base: &std::path::Path) -> Option<PathBuf> {
    let source = |def: &DomainDef| def.disk(disk).and_then(|d| d.source.clone()).map(PathBuf::from);
    let mut known: Vec<PathBuf> = source(domain.def()).into_iter().collect();
    for snap in domain.snapshots.all_topological() {
        known.extend(snap.domain.as_deref().and_then(source));
        known.extend(snap.disks.iter().filter(|d| d.name == disk).filter_map(|d| d.path.clone()).map(PathBuf::from));
    }
    let mut seen = Vec::new();
    while let Some(image) = known.pop() {
        if seen.contains(&image) {
            continue;
        }
        let backing = backing_of(&image);
        if backing.as_deref() == Some(base) && image != overlay {
            return Some(image);
        }
        known.extend(backing);
        seen.push(image);
    }
    None
}

/// Where `overlay` is in the backing chain of a disk whose image is `top`: Ok(None) when
/// it is the image itself, else the image right over it.
fn find_in_chain(top: Option<PathBuf>, overlay: &std::path::Path) -> Result<Option<PathBuf>> {
    let mut above = None;
    let mut at = top;
    while let Some(image) = at {
        if image == overlay {
            return Ok(above);
        }
        at = backing_of(&image);
        above = Some(image);
    }
    Err(Error::new(FROM, Code::VIR_ERR_INVALID_ARG, "could not find base disk source in disk source chain"))
}

/// The image a qcow2 image reads through to, if any (a raw one has none).
fn backing_of(image: &std::path::Path) -> Option<PathBuf> {
    image::state(image).ok().and_then(|s| s.backing).map(|b| resolve_backing(image, &b))
}

/// A backing file name as an image's header gives it, relative to the image's folder.
fn resolve_backing(image: &std::path::Path, backing: &str) -> PathBuf {
    image.parent().map_or_else(|| PathBuf::from(backing), |dir| dir.join(backing))
}

/// The nearest ancestor of a snapshot that covers `disk`.
fn parent_snapshot_for_disk<'a>(
    snapshots: &'a snapshots::Snapshots,
    snap: &SnapshotDef,
    disk: &str,
) -> Option<&'a SnapshotDef> {
    let mut at = snap.parent.as_deref();
    while let Some(name) = at {
        let parent = snapshots.get(name).ok()?;
        if parent.disks.iter().any(|d| d.name == disk && d.kind != SnapshotLocation::No) {
            return Some(parent);
        }
        at = parent.parent.as_deref();
    }
    None
}

/// Does (again) what is left of committing an external snapshot's overlays, disk by
/// disk: while an overlay is there, it is written into its base, its bitmaps merged
/// into the base's, the base put in its place (the domain's definitions or the image
/// over it, and the other snapshots' definitions), and then it is removed. A running
/// domain's engine commits while its disks are in use; a shut-off domain's images are
/// committed with `qemu-img`.
pub(crate) fn commit_overlays(
    driver: &QemuDriver,
    inner: &mut Inner,
    journal: &mut Journal,
    domain: &str,
    external: &[OverlayCommit],
) -> Result<()> {
    let Some(at) = inner.domains.iter().position(|d| d.name() == domain) else { return Ok(()) };
    for step in external {
        let OverlayCommit { target, overlay, base, base_format, above } = step;
        if !overlay.exists() {
            continue;
        }
        if inner.domains[at].live.is_some() {
            commit_live(driver, &inner.domains[at], journal, step)?;
        } else {
            let state = image::state(overlay)?;
            image::commit(overlay)?;
            kill_point("snapshot-overlay-committed");
            if base_format == "qcow2" {
                let present = image::state(base)?;
                for bitmap in state.bitmaps.iter().filter(|b| !is_snapshot_bitmap(&b.name)) {
                    if !present.has_bitmap(&bitmap.name) {
                        image::add_bitmap(base, &bitmap.name, true, bitmap.granularity)?;
                    }
                    image::merge_bitmap(base, &bitmap.name, overlay, &bitmap.name)?;
                }
                let in_overlay: Vec<&str> = state.bitmaps.iter().map(|b| b.name.as_str()).collect();
                for stale in present.bitmaps.iter().filter(|b| removed_since(b.enabled, &b.name, &in_overlay)) {
                    image::remove_bitmap(base, &stale.name)?;
                }
            }
            if let Some(image) = above {
                image::set_backing(image, base, base_format)?;
            }
        }
        let (overlay_text, base_text) = (overlay.to_string_lossy(), base.to_string_lossy());
        let moves = [(target.clone(), overlay_text.into_owned(), base_text.into_owned())];
        let dom = &mut inner.domains[at];
        let layout = &driver.layout;
        if let Some(persistent) = &dom.persistent {
            let def = with_disks_moved(persistent, &moves, base_format)?;
            if def != **persistent {
                layout.save(&layout.definition(domain), &def.format(FormatOptions { id: None, secure: true }))?;
                dom.persistent = Some(std::sync::Arc::new(def));
            }
        }
        if let Some(running) = &mut dom.live {
            let def = with_disks_moved(&running.def, &moves, base_format)?;
            if def != *running.def {
                running.def = std::sync::Arc::new(def);
                driver.save_status(domain, running)?;
            }
        }
        let names: Vec<String> = dom.snapshots.all_topological().iter().map(|s| s.name.clone()).collect();
        for name in names {
            let snap = dom.snapshots.get_mut(&name)?;
            let Some(def) = snap.domain.clone() else { continue };
            let moved = with_disks_moved(&def, &moves, base_format)?;
            if moved != *def {
                snap.domain = Some(std::sync::Arc::new(moved));
                driver.save_snapshot(dom, &name)?;
            }
        }
        kill_point("snapshot-overlay-replaced");
        std::fs::remove_file(overlay)
            .map_err(|e| Error::system(FROM, format!("cannot remove '{}'", overlay.display()), &e))?;
    }
    Ok(())
}

/// Commits an overlay of a running domain's disk in its engine, unless it is out of the
/// disk's chain already (nothing uses its node): a commit that ended is never run again,
/// since the image below has taken writes since. The overlay's bitmaps are merged into
/// the image below while the job waits (the image is writable then); what is written
/// after the merge reaches that image's bitmaps through the commit itself.
fn commit_live(driver: &QemuDriver, domain: &QemuDomain, journal: &mut Journal, step: &OverlayCommit) -> Result<()> {
    let disks = engine_disks(domain.def())?;
    let mut session = driver.session(domain, &disks, journal)?;
    let nodes = session.block_nodes()?;
    let find = |path: &std::path::Path, format: &str| {
        nodes.iter().find(|n| n.driver == format && std::path::Path::new(&n.file) == path).cloned()
    };
    let graph = session.block_graph()?;
    let Some(top) = find(&step.overlay, "qcow2").filter(|n| graph.is_used(&n.name)) else {
        return session.finish();
    };
    let base = find(&step.base, &step.base_format).ok_or_else(|| {
        Error::internal(FROM, format!("the image '{}' below '{}' is not open", step.base.display(), top.file))
    })?;
    let device = session.node(&step.target)?.to_string();
    let job_id = format!("commit-{}-vb{}", step.target, journal.intent.op);
    journal.record(|i| i.jobs.push(job_id.clone()))?;
    let end = session.start_commit(&job_id, &device, &top.name, &base.name)?;
    kill_point("snapshot-commit-started");
    let mut actions = Vec::new();
    for bitmap in top.bitmaps.iter().filter(|b| b.persistent && !is_snapshot_bitmap(&b.name)) {
        if !base.bitmaps.iter().any(|b| b.name == bitmap.name) {
            actions.push(Action::CarryBitmap {
                node: base.name.clone(),
                name: bitmap.name.clone(),
                granularity: bitmap.granularity,
            });
        }
        actions.push(Action::MergeBitmaps {
            node: base.name.clone(),
            target: bitmap.name.clone(),
            sources: vec![(top.name.clone(), bitmap.name.clone())],
        });
    }
    let in_overlay: Vec<&str> = top.bitmaps.iter().map(|b| b.name.as_str()).collect();
    for stale in base.bitmaps.iter().filter(|b| removed_since(b.recording, &b.name, &in_overlay)) {
        actions.push(Action::RemoveBitmap { node: base.name.clone(), name: stale.name.clone() });
    }
    session.transaction(&actions)?;
    session.end_commit(&job_id, end)?;
    kill_point("snapshot-overlay-committed");
    // The overlay's nodes the engine was given go; its file is removed after.
    let file_node = nodes.iter().find(|n| n.driver == "file" && std::path::Path::new(&n.file) == step.overlay);
    session.remove_node(&top.name);
    if let Some(file_node) = file_node {
        session.remove_node(&file_node.name);
    }
    session.finish()
}

/// Removes internal snapshots and their bitmaps, (image, snapshot) by (image, snapshot),
/// where they are still there: through the engine of a running domain, else with
/// `qemu-img`.
fn remove_from_images(
    driver: &QemuDriver,
    domain: &QemuDomain,
    journal: &mut Journal,
    images: &[(PathBuf, String)],
) -> Result<()> {
    if domain.live.is_none() {
        for (path, snapshot) in images {
            let Ok(state) = image::state(path) else { continue };
            if state.snapshots.contains(snapshot) {
                image::delete_snapshot(path, snapshot)?;
                kill_point("snapshot-image-deleted");
            }
            if state.has_bitmap(&snapshot_bitmap(snapshot)) {
                image::remove_bitmap(path, &snapshot_bitmap(snapshot))?;
            }
        }
        return Ok(());
    }
    let disks = engine_disks(domain.def())?;
    let mut session = driver.session(domain, &disks, journal)?;
    let present = session.snapshots()?;
    let bitmaps = session.bitmaps()?;
    for (path, snapshot) in images {
        let Some(disk) = disks.iter().find(|d| &d.path == path) else { continue };
        let node = session.node(&disk.target)?.to_string();
        if present.get(&disk.target).is_some_and(|s| s.contains(snapshot)) {
            session.delete_internal_snapshot(&node, snapshot)?;
            kill_point("snapshot-image-deleted");
        }
        let bitmap = snapshot_bitmap(snapshot);
        if bitmaps.get(&disk.target).is_some_and(|list| list.iter().any(|b| b.name == bitmap)) {
            session.remove_bitmap(&node, &bitmap);
        }
    }
    session.finish()
}

/// Does (again) what is left of a snapshot deletion: each image's internal snapshot and
/// bitmap, where still there, then the metadata.
pub(crate) fn finish_delete(
    driver: &QemuDriver,
    inner: &mut Inner,
    journal: &mut Journal,
    domain: &str,
    name: &str,
    flags: u32,
    images: &[(PathBuf, String)],
) -> Result<()> {
    let Some(at) = inner.domains.iter().position(|d| d.name() == domain) else { return Ok(()) };
    remove_from_images(driver, &inner.domains[at], journal, images)?;
    let dom = &mut inner.domains[at];
    if dom.snapshots.contains(name) {
        driver.delete_snapshot_metadata(dom, name, flags)?;
    }
    Ok(())
}

/// Completes a snapshot creation that got past its point of no return: the metadata is
/// written (from the record, when an external snapshot of a running domain was taken
/// before its process could), the snapshot is current (the file of the one current
/// before may still say otherwise), and the domain's definitions, persistent and
/// running, use the overlays of an external one.
pub(crate) fn finish_create(
    driver: &QemuDriver,
    inner: &mut Inner,
    intent: &Intent,
    name: &str,
    live: Option<&LiveOverlays>,
) -> Result<()> {
    let Some(dom) = inner.domains.iter_mut().find(|d| d.name() == intent.domain) else { return Ok(()) };
    if let Some(live) = live {
        dismiss_jobs(intent);
        if !dom.snapshots.contains(name) {
            let stored = store::parse_snapshot_document(&live.document)
                .map_err(|e| Error::internal(FROM, format!("the record of snapshot '{name}' cannot be read: {e}")))?;
            let prepared = Prepared { def: stored.def, replaces: false, make_current: true };
            driver.commit_snapshot(dom, prepared, stored.checkpoint)?;
        }
    }
    let Ok(snap) = dom.snapshots.get(name) else { return Ok(()) };
    let moves = overlay_moves(snap);
    let layout = &driver.layout;
    if let Some(persistent) = &dom.persistent {
        let def = with_disks_moved(persistent, &moves, "qcow2")?;
        if def != **persistent {
            layout.save(&layout.definition(&intent.domain), &def.format(FormatOptions { id: None, secure: true }))?;
            dom.persistent = Some(std::sync::Arc::new(def));
        }
    }
    if let Some(running) = &dom.live {
        let def = with_disks_moved(&running.def, &moves, "qcow2")?;
        if def != *running.def {
            let running = dom.live.as_mut().expect("checked");
            running.def = std::sync::Arc::new(def);
            driver.save_status(&intent.domain, running)?;
        }
    }
    driver.set_current_snapshot(dom, Some(name))
}

/// What an external snapshot moves: each external disk (target) from the image it was
/// on when the snapshot was taken to its overlay.
fn overlay_moves(snap: &SnapshotDef) -> Vec<(String, String, String)> {
    let Some(taken) = snap.domain.as_deref() else { return Vec::new() };
    snap.disks
        .iter()
        .filter(|d| d.kind == SnapshotLocation::External)
        .filter_map(|d| {
            let base = taken.disk(&d.name)?.source.clone()?;
            Some((d.name.clone(), base, d.path.clone()?))
        })
        .collect()
}

/// A definition with each disk of `moves` (target, from, to) that is on `from` moved
/// onto `to`, of `format` (a disk that is elsewhere already is left alone: the same
/// moves can be made again).
fn with_disks_moved(def: &DomainDef, moves: &[(String, String, String)], format: &str) -> Result<DomainDef> {
    let mut def = def.clone();
    for (target, from, to) in moves {
        if def.disk(target).and_then(|d| d.source.as_deref()) == Some(from.as_str()) {
            def = def.with_disk_image(target, to, format)?;
        }
    }
    Ok(def)
}

/// Forgets the jobs an operation's record names (a store's formatting that ended while
/// no one waited for it); the engine may be gone.
fn dismiss_jobs(intent: &Intent) {
    let Some(qmp) = &intent.engine else { return };
    if intent.jobs.is_empty() {
        return;
    }
    if let Ok(mut monitor) = Qmp::connect(qmp, crate::engine::default_timeout()) {
        for id in &intent.jobs {
            let _ = commands::dismiss_job(&mut monitor, id);
        }
    }
}

/// Whether a running domain's engine put the overlays of an external snapshot on its
/// disks (they are taken in one transaction: the first one tells). An engine that is
/// gone may have written to them: they are kept when they are whole images.
pub(crate) fn overlays_taken(intent: &Intent, live: &LiveOverlays) -> bool {
    let Some(qmp) = &intent.engine else { return false };
    match Qmp::connect(qmp, crate::engine::default_timeout()) {
        Ok(mut monitor) => live
            .nodes
            .first()
            .is_some_and(|node| commands::block_graph(&mut monitor).is_ok_and(|g| g.backing_child(node).is_some())),
        Err(_) => !live.paths.is_empty() && live.paths.iter().all(|p| image::state(p).is_ok()),
    }
}

/// The snapshot's domain definition with its external disks on their overlays (None
/// for an internal snapshot): the snapshot's own, or `paths`, one per external disk in
/// order (a revert's new overlays).
fn with_overlays(snap: &SnapshotDef, paths: Option<&[&std::path::Path]>) -> Result<Option<DomainDef>> {
    let external: Vec<_> = snap.disks.iter().filter(|d| d.kind == SnapshotLocation::External).collect();
    let Some(mut def) = snap.domain.as_deref().cloned().filter(|_| !external.is_empty()) else { return Ok(None) };
    for (index, disk) in external.into_iter().enumerate() {
        let own = disk.path.as_deref().unwrap_or_default();
        let overlay = paths.and_then(|p| p.get(index)).map_or(own.into(), |p| p.to_string_lossy());
        def = def.with_disk_image(&disk.name, &overlay, disk.format.as_deref().unwrap_or("qcow2"))?;
    }
    Ok(Some(def))
}

/// One disk of an external snapshot: its new overlay and the image it goes on.
struct Overlay {
    target: String,
    path: PathBuf,
    base: PathBuf,
    base_format: String,
}

/// An external (disk-only) snapshot: each external disk gets a new qcow2 overlay over
/// its image (or, with `REUSE_EXT`, the one that is there), into which the checkpoints'
/// bitmaps are carried, empty and recording; the domain then uses the overlays. A
/// shut-off domain's overlays are made with `qemu-img`; a running domain's engine opens
/// them and puts them on its disks in one transaction, whatever writes to a disk (its
/// export) writing to the overlay from then on. The metadata completes it, the
/// definitions follow (see `finish_create`).
fn create_external(
    driver: &QemuDriver,
    inner: &mut Inner,
    at: usize,
    mut def: SnapshotDef,
    reuse: bool,
) -> Result<String> {
    let domain = &inner.domains[at];
    let domain_def = domain.def().clone();
    let mut overlays = Vec::new();
    for disk in &mut def.disks {
        match disk.kind {
            SnapshotLocation::External => {}
            SnapshotLocation::No => continue,
            _ => {
                return Err(unsupported_config(
                    "mixing internal and external targets for a snapshot is not yet supported",
                ));
            }
        }
        let format = disk.format.get_or_insert_with(|| "qcow2".to_string()).clone();
        if format != "qcow2" {
            return Err(unsupported_config(format!(
                "external snapshot format for disk {} is unsupported: {format}",
                disk.name
            )));
        }
        let dom_disk = domain_def.disk(&disk.name).ok_or_else(|| invalid(format!("no disk '{}'", disk.name)))?;
        let base = PathBuf::from(dom_disk.source.clone().unwrap_or_default());
        let overlay = PathBuf::from(disk.path.clone().unwrap_or_default());
        let exists = overlay.exists();
        if reuse && !exists {
            return Err(Error::new(
                FROM,
                Code::VIR_ERR_SYSTEM_ERROR,
                format!(
                    "missing existing file for disk {}: {}: No such file or directory",
                    disk.name,
                    overlay.display()
                ),
            ));
        }
        if !reuse && std::fs::metadata(&overlay).is_ok_and(|m| m.len() > 0) {
            return Err(unsupported_config(format!(
                "external snapshot file for disk {} already exists and is not a block device: {}",
                disk.name,
                overlay.display()
            )));
        }
        overlays.push(Overlay {
            target: disk.name.clone(),
            path: overlay,
            base,
            base_format: dom_disk.format.clone().unwrap_or_else(|| "raw".to_string()),
        });
    }
    if domain.snapshots.contains(&def.name) {
        return Err(domain.snapshots.exists_error(&def.name));
    }
    def.parent = domain.snapshots.current().map(str::to_string);
    let name = def.name.clone();
    let checkpoint = domain.checkpoints.current().map(str::to_string);
    let mut intent = Intent::new("snapshot creation", domain.name());
    let op = intent.op.clone();
    if !reuse {
        for overlay in &overlays {
            intent.files.push(super::backup::owned_file(&overlay.path, &op)?);
        }
    }
    intent.snapshot = Some(SnapshotStep::Create { name: name.clone(), images: Vec::new(), live: None });
    let prepared = Prepared { def, replaces: false, make_current: true };
    if domain.live.is_some() {
        take_live_overlays(driver, inner, at, intent, prepared, checkpoint, overlays, reuse)?;
        return Ok(name);
    }
    let files = intent.files.clone();
    // Settling the record completes it (the domain moves onto the overlays).
    driver.journaled(inner, intent, |inner, _| {
        create_overlay_files(&files)?;
        for overlay in &overlays {
            let (path, base) = (&overlay.path, &overlay.base);
            if reuse {
                let present = image::state(path)?;
                for bitmap in image::state(base)?.bitmaps.iter().filter(|b| !is_snapshot_bitmap(&b.name)) {
                    if !present.has_bitmap(&bitmap.name) {
                        image::add_bitmap(path, &bitmap.name, true, bitmap.granularity)?;
                    }
                }
            } else {
                image::create_overlay(path, base, &overlay.base_format, |b| !is_snapshot_bitmap(b))?;
            }
            kill_point("snapshot-overlay-created");
        }
        driver.commit_snapshot(&mut inner.domains[at], prepared, checkpoint)
    })?;
    Ok(name)
}

/// Creates the (empty) files an external snapshot's overlays are made in.
fn create_overlay_files(files: &[super::intent::OwnedFile]) -> Result<()> {
    for file in files {
        if !super::intent::create_owned(file)
            .map_err(|e| Error::system(FROM, format!("cannot create '{}'", file.path.display()), &e))?
        {
            return Err(unsupported_config(format!("external snapshot file '{}' already exists", file.path.display())));
        }
    }
    Ok(())
}

/// The external snapshot of a running domain (see `create_external`). The overlays'
/// nodes and the snapshot's metadata are recorded first: the transaction that puts the
/// overlays on the disks is the point of no return, which whoever settles the record
/// recognises by the first overlay's backing node.
#[allow(clippy::too_many_arguments)]
fn take_live_overlays(
    driver: &QemuDriver,
    inner: &mut Inner,
    at: usize,
    mut intent: Intent,
    prepared: Prepared,
    checkpoint: Option<String>,
    overlays: Vec<Overlay>,
    reuse: bool,
) -> Result<()> {
    let op = intent.op.clone();
    let stores: Vec<Store> = overlays
        .iter()
        .enumerate()
        .map(|(index, overlay)| Store {
            path: overlay.path.clone(),
            format: "qcow2".to_string(),
            file_node: format!("vb{op}-o{index}f"),
            format_node: format!("vb{op}-o{index}"),
            creation: if reuse {
                Creation::Existing
            } else {
                // Sized from the engine below.
                Creation::New { size: 0, backing: Some((overlay.base.clone(), overlay.base_format.clone())) }
            },
            backing_node: None,
            overlay: true,
        })
        .collect();
    for store in &stores {
        intent.nodes.extend([store.file_node.clone(), store.format_node.clone()]);
        if !reuse {
            intent.jobs.push(store.create_job_id());
        }
    }
    let stored = StoredSnapshot {
        def: prepared.def.clone(),
        current: true,
        checkpoint: checkpoint.clone(),
        reverts: Vec::new(),
    };
    if let Some(SnapshotStep::Create { live, .. }) = &mut intent.snapshot {
        *live = Some(LiveOverlays {
            nodes: stores.iter().map(|s| s.format_node.clone()).collect(),
            paths: stores.iter().map(|s| s.path.clone()).collect(),
            document: store::snapshot_document(&stored),
        });
    }
    let files = intent.files.clone();
    driver.journaled(inner, intent, |inner, journal| {
        create_overlay_files(&files)?;
        let disks = engine_disks(inner.domains[at].def())?;
        let mut session = driver.session(&inner.domains[at], &disks, journal)?;
        let sizes = session.virtual_sizes()?;
        let bitmaps = session.bitmaps()?;
        let mut actions = Vec::new();
        for (overlay, mut store) in overlays.iter().zip(stores) {
            let node = session.node(&overlay.target)?.to_string();
            if let Creation::New { size, .. } = &mut store.creation {
                *size = sizes.get(&overlay.target).copied().unwrap_or_default();
            }
            session.open_store(&store)?;
            kill_point("snapshot-overlay-created");
            // A reused image may hold some of the bitmaps already.
            let present: Vec<String> = session
                .block_nodes()?
                .into_iter()
                .find(|n| n.name == store.format_node)
                .map(|n| n.bitmaps.into_iter().map(|b| b.name).collect())
                .unwrap_or_default();
            actions.push(Action::Snapshot { node, overlay: store.format_node.clone() });
            for bitmap in bitmaps.get(&overlay.target).into_iter().flatten() {
                if bitmap.healthy() && !is_snapshot_bitmap(&bitmap.name) && !present.contains(&bitmap.name) {
                    actions.push(Action::CarryBitmap {
                        node: store.format_node.clone(),
                        name: bitmap.name.clone(),
                        granularity: bitmap.granularity,
                    });
                }
            }
        }
        session.transaction(&actions)?;
        kill_point("snapshot-overlay-taken");
        session.finish()?;
        driver.commit_snapshot(&mut inner.domains[at], prepared, checkpoint)
    })
}

/// Undoes a snapshot creation that did not complete: its internal snapshot and bitmap go
/// from every image that has them (the name was free in each before it began).
pub(crate) fn undo_create(
    driver: &QemuDriver,
    inner: &mut Inner,
    journal: &mut Journal,
    domain: &str,
    name: &str,
    images: &[PathBuf],
) -> Result<()> {
    let Some(dom) = inner.domains.iter().find(|d| d.name() == domain) else { return Ok(()) };
    let pairs: Vec<(PathBuf, String)> = images.iter().map(|p| (p.clone(), name.to_string())).collect();
    remove_from_images(driver, dom, journal, &pairs)
}

/// Where an image's bitmaps wait while a snapshot is applied.
/// What a revert leaves to do once the root is unlocked: whether the domain is to be
/// started, and the revert's own error (it was undone).
type Reverted = (bool, Option<Error>);

fn aside_path(layout: &Layout, domain: &str, op: &str, index: usize) -> PathBuf {
    layout.run_dir(domain).join(format!("bitmaps-{op}-{index}.qcow2"))
}

pub(crate) fn revert_to_snapshot(driver: &QemuDriver, dom: &DomainId, name: &str, flags: u32) -> Result<()> {
    let allowed = Revert::VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING as u32
        | Revert::VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED as u32
        | Revert::VIR_DOMAIN_SNAPSHOT_REVERT_FORCE as u32
        | Revert::VIR_DOMAIN_SNAPSHOT_REVERT_RESET_NVRAM as u32;
    Error::check_flags(FROM, "qemuDomainRevertToSnapshot", flags, allowed)?;
    if flags & Revert::VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED as u32 != 0 {
        return Err(Error::new(
            FROM,
            Code::VIR_ERR_OPERATION_UNSUPPORTED,
            "this driver's domains have no processors to pause: revert with RUNNING, or neither",
        ));
    }
    let outcome = driver.with_state(Scope::Domain(&dom.name), true, |inner, layout| {
        let at = inner.position(dom)?;
        let domain = &inner.domains[at];
        let snap = domain.snapshots.get(name)?.clone();
        if snap.domain.is_none() {
            return Err(Error::new(
                FROM,
                Code::VIR_ERR_SNAPSHOT_REVERT_RISKY,
                format!("snapshot '{name}' lacks domain '{}' rollback info", domain.name()),
            ));
        }
        let running = domain.live.is_some();
        if running && domain.persistent.is_none() {
            return Err(not_yet("reverts of a transient domain"));
        }
        QemuDriver::check_no_backup_job(domain, "revert")?;
        if snap.is_external() {
            return revert_external(driver, inner, at, &snap);
        }
        if !matches!(snap.state, SnapshotState::Shutoff | SnapshotState::DiskSnapshot) {
            return Err(not_yet("reverts to snapshots with memory state"));
        }
        check_same_images(&snap, domain.def())?;
        let images = internal_images(&snap, domain.def());
        for path in &images {
            if !image::state(path)?.snapshots.iter().any(|s| s == name) {
                return Err(Error::new(
                    FROM,
                    Code::VIR_ERR_OPERATION_FAILED,
                    format!("disk image '{}' has no snapshot '{name}'", path.display()),
                ));
            }
        }
        let dom_name = domain.name().to_string();
        let mut intent = Intent::new("snapshot revert", &dom_name);
        let op = intent.op.clone();
        let pairs: Vec<(PathBuf, PathBuf)> =
            images.iter().enumerate().map(|(i, p)| (p.clone(), aside_path(layout, &dom_name, &op, i))).collect();
        intent.snapshot = Some(SnapshotStep::Revert { name: name.to_string(), images: pairs.clone(), saved: false });
        // The images are applied with the domain's engine stopped; a snapshot of the
        // running domain starts it again afterwards, as libvirt's reverts do.
        if running {
            driver.stop_engine(inner, at, virDomainShutoffReason::VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT)?;
        }
        layout.ensure_dir(&layout.run_dir(&dom_name))?;
        let reverted = driver.journaled(inner, intent, |_, journal| {
            let bitmap = snapshot_bitmap(name);
            for (path, aside) in &pairs {
                image::set_bitmaps_aside(path, aside, &bitmap)?;
            }
            past_point_of_no_return(journal)
        });
        // A revert that failed was undone: a domain stopped for it runs again.
        Ok(match reverted {
            Ok(()) => (snap.state == SnapshotState::DiskSnapshot, None),
            Err(e) => (running, Some(e)),
        })
    })?;
    let (start, failed) = outcome;
    if let Some(e) = failed {
        // The revert's own error is the one reported (a start after a revert that could
        // not be settled fails as every call then does).
        if start {
            let _ = super::domain::domain_create(driver, dom, 0);
        }
        return Err(e);
    }
    if start || flags & Revert::VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING as u32 != 0 {
        super::domain::domain_create(driver, dom, 0)?;
    }
    Ok(())
}

/// Finishes a revert whose bitmaps are set aside: applies the snapshot to every image
/// (setting their bitmaps back), then the domain takes the snapshot's definition, the
/// snapshot becomes current and so does the checkpoint that was current when it was
/// taken.
pub(crate) fn finish_revert(
    driver: &QemuDriver,
    inner: &mut Inner,
    domain: &str,
    name: &str,
    images: &[(PathBuf, PathBuf)],
) -> Result<()> {
    let Some(at) = inner.domains.iter().position(|d| d.name() == domain) else { return Ok(()) };
    let external = inner.domains[at].snapshots.get(name).is_ok_and(SnapshotDef::is_external);
    let bitmap = snapshot_bitmap(name);
    for (path, aside) in images {
        if !aside.exists() {
            continue;
        }
        if external {
            // The new overlay takes the old one's place.
            std::fs::rename(aside, path)
                .map_err(|e| Error::system(FROM, format!("cannot replace '{}'", path.display()), &e))?;
        } else {
            image::apply_snapshot(path, aside, name, &bitmap)?;
        }
        kill_point("snapshot-image-applied");
    }
    let dom = &mut inner.domains[at];
    if !dom.snapshots.contains(name) {
        return Ok(());
    }
    // A new overlay of its own (not one put in the place of the snapshot's) is recorded
    // with the snapshot before the domain moves onto it, to be found and removed once
    // nothing uses it.
    let recorded = dom.snapshot_reverts.entry(name.to_string()).or_default();
    let made: Vec<PathBuf> = images
        .iter()
        .filter(|(path, aside)| external && path == aside && !recorded.contains(path))
        .map(|(path, _)| path.clone())
        .collect();
    if !made.is_empty() {
        recorded.extend(made);
        driver.save_snapshot(dom, name)?;
    }
    dom.snapshot_reverts.retain(|_, files| !files.is_empty());
    let snap = dom.snapshots.get(name)?;
    let finals: Vec<&std::path::Path> = images.iter().map(|(path, _)| path.as_path()).collect();
    let def = match with_overlays(snap, external.then_some(finals.as_slice()))? {
        Some(def) => Some(std::sync::Arc::new(def)),
        None => snap.domain.clone(),
    };
    if let (Some(def), Some(_)) = (def, &dom.persistent) {
        let layout = &driver.layout;
        layout.save(&layout.definition(domain), &def.format(FormatOptions { id: None, secure: true }))?;
        dom.persistent = Some(def);
    }
    driver.set_current_snapshot(dom, Some(name))?;
    let checkpoint = dom.snapshot_checkpoints.get(name).filter(|c| dom.checkpoints.contains(c)).cloned();
    dom.checkpoints.set_current(checkpoint.as_deref());
    driver.save_current(dom)?;
    driver.remove_unused_reverts(dom, &[])
}

/// Reverts a domain to an external snapshot, going beyond libvirt 9.0 (which refuses):
/// the state at the snapshot is its overlays' backing images, untouched since, so each
/// disk goes onto a new empty overlay over the same image, carrying the checkpoints'
/// bitmaps of that image; a running domain's engine is stopped for it. When the domain
/// is on the snapshot's own overlays and no snapshot was taken over them, the new ones
/// replace them (made beside them first, the point of no return, then renamed over
/// them); otherwise the snapshot's overlays are kept for the snapshots over them and the
/// new ones get names of their own (`<overlay>.<n>`): the disk's history branches, as
/// the snapshot tree does. Checkpoints taken after the snapshot have no bitmap on the
/// new overlays: REDEFINE_VALIDATE reports them inconsistent and backups refuse them.
/// Returns, as the internal revert does, whether the domain is to be started, and the
/// revert's error.
fn revert_external(driver: &QemuDriver, inner: &mut Inner, at: usize, snap: &SnapshotDef) -> Result<Reverted> {
    let domain = &inner.domains[at];
    let name = snap.name.as_str();
    let running = domain.live.is_some();
    let taken = snap.domain.clone().ok_or_else(|| invalid(format!("snapshot '{name}' lacks its domain")))?;
    let mut work = Vec::new();
    for disk in snap.disks.iter().filter(|d| d.kind == SnapshotLocation::External) {
        let overlay = PathBuf::from(disk.path.clone().unwrap_or_default());
        let now = domain.def().disk(&disk.name).and_then(|d| d.source.clone()).map(PathBuf::from);
        let below = taken.disk(&disk.name).ok_or_else(|| invalid(format!("no disk '{}'", disk.name)))?;
        let base = PathBuf::from(below.source.clone().unwrap_or_default());
        work.push((overlay, now, base, below.format.clone().unwrap_or_else(|| "raw".to_string())));
    }
    // The snapshot's own overlays are replaced when nothing else needs them: the
    // domain is on them and no later snapshot was taken over them. Otherwise each disk
    // gets a new overlay of its own beside them, and they stay as they are.
    // The new overlays carry the bitmaps of the checkpoints there are: one left below
    // by a checkpoint deleted since the snapshot does not come back.
    let checkpoints: Vec<String> = domain.checkpoints.all_topological().iter().map(|c| c.name.clone()).collect();
    let replace = domain.snapshots.child_count(name)? == 0
        && work.iter().all(|(overlay, now, _, _)| now.as_deref() == Some(overlay.as_path()));
    let mut intent = Intent::new("snapshot revert", domain.name());
    let op = intent.op.clone();
    let mut pairs = Vec::new();
    for (overlay, _, _, _) in &work {
        let file_name = overlay.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let (path, fresh) = if replace {
            (overlay.clone(), overlay.with_file_name(format!("{file_name}.new")))
        } else {
            let free = (1..).map(|k| overlay.with_file_name(format!("{file_name}.{k}"))).find(|p| !p.exists());
            let path = free.expect("a free name");
            (path.clone(), path)
        };
        let fresh = super::backup::owned_file(&fresh, &op)?;
        pairs.push((path, fresh.path.clone()));
        intent.files.push(fresh);
    }
    intent.snapshot = Some(SnapshotStep::Revert { name: name.to_string(), images: pairs.clone(), saved: false });
    let files = intent.files.clone();
    if running {
        driver.stop_engine(inner, at, virDomainShutoffReason::VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT)?;
    }
    let reverted = driver.journaled(inner, intent, |_, journal| {
        for (file, (_, _, base, base_format)) in files.iter().zip(&work) {
            if !super::intent::create_owned(file)
                .map_err(|e| Error::system(FROM, format!("cannot create '{}'", file.path.display()), &e))?
            {
                return Err(invalid(format!("'{}' is in the way", file.path.display())));
            }
            image::create_overlay(&file.path, base, base_format, |b| checkpoints.iter().any(|c| c == b))?;
        }
        past_point_of_no_return(journal)
    });
    Ok(match reverted {
        Ok(()) => (snap.state == SnapshotState::DiskSnapshot, None),
        Err(e) => (running, Some(e)),
    })
}

/// Records that a revert has everything it needs (the images' bitmaps set aside, or the
/// new overlays made): settling the record finishes it from here.
fn past_point_of_no_return(journal: &mut Journal) -> Result<()> {
    kill_point("snapshot-bitmaps-set-aside");
    journal.record(|i| {
        if let Some(SnapshotStep::Revert { saved, .. }) = &mut i.snapshot {
            *saved = true;
        }
    })?;
    kill_point("snapshot-revert-recorded");
    Ok(())
}

/// Whether a bitmap is a snapshot's (see [`snapshot_bitmap`]), not a checkpoint's.
fn is_snapshot_bitmap(name: &str) -> bool {
    name.starts_with("virbackup-snapshot/")
}

/// Undoes a revert that did not set every image's bitmaps aside: the files that were
/// to hold them go (what was merged into the images' bitmaps only adds clusters).
pub(crate) fn undo_revert(images: &[(PathBuf, PathBuf)]) {
    for (_, aside) in images {
        let _ = std::fs::remove_file(aside);
    }
}

//! Checkpoints: the tree's metadata files and the persistent bitmaps that record changes
//! in the images, created, validated, measured and deleted together.

use super::domain::engine_disks;
use super::intent::{self, CheckpointStep, Intent, Journal};
use super::state::{FROM, QemuDomain, QemuDriver, now_seconds, unsupported_config};
use super::store::{self, Layout, Scope};
use crate::abi::{
    virDomainCheckpointCreateFlags as CreateFlags, virDomainCheckpointDeleteFlags as DeleteFlags,
    virDomainCheckpointXMLFlags as CheckpointXmlFlags,
};
use crate::conf::checkpoint::{CheckpointDef, DiskCheckpointKind};
use crate::conf::domain::DomainDef;
use crate::driver::checkpoints::{self};
use crate::driver::{DomainId, Listing};
use crate::engine::Action;
use crate::error::{Code, Error, Result};

/// What a checkpoint needs from the engine: the bitmap disks that are still part of the
/// domain, with their bitmap names.
pub(crate) fn bitmap_disks<'a>(def: &'a CheckpointDef, domain: &DomainDef) -> impl Iterator<Item = (&'a str, &'a str)> {
    let targets: Vec<String> = domain.disks.iter().filter(|d| !d.is_empty()).map(|d| d.target.clone()).collect();
    def.disks
        .iter()
        .filter(move |d| d.kind == DiskCheckpointKind::Bitmap && targets.contains(&d.name))
        .filter_map(|d| d.bitmap.as_deref().map(|b| (d.name.as_str(), b)))
}

impl QemuDriver {
    /// Writes a checkpoint's metadata file.
    pub(crate) fn save_checkpoint(&self, domain: &str, def: &CheckpointDef) -> Result<()> {
        self.layout.save(&self.layout.checkpoint_file(domain, &def.name), &store::checkpoint_document(def))
    }

    /// Deletes checkpoint metadata (and, per `flags`, its descendants'). The order keeps
    /// the tree whole at every instant: the children that get a new parent are
    /// rewritten first, then the current checkpoint, and only then do the deleted
    /// checkpoints' files go, descendants before the checkpoint itself (so that while
    /// its file is there, the deletion can be done again).
    pub(crate) fn delete_checkpoint_metadata(
        &self,
        domain: &mut QemuDomain,
        layout: &Layout,
        name: &str,
        flags: u32,
    ) -> Result<()> {
        let deleted = domain.checkpoints.delete(name, flags)?;
        let dom_name = domain.name().to_string();
        for child in &deleted.reparented {
            let def = domain.checkpoints.get(child)?;
            self.save_checkpoint(&dom_name, def)?;
        }
        intent::kill_point("checkpoint-children-rewritten");
        self.save_current(domain)?;
        for removed in &deleted.removed {
            layout.remove(&layout.checkpoint_file(&dom_name, &removed.name))?;
        }
        Ok(())
    }

    /// Records the current checkpoint (or its absence).
    pub(crate) fn save_current(&self, domain: &QemuDomain) -> Result<()> {
        let path = self.layout.current_file(domain.name());
        match domain.checkpoints.current() {
            Some(name) => self.layout.save(&path, &format!("{name}\n")),
            None => self.layout.remove(&path),
        }
    }

    /// Adds one persistent bitmap per bitmap disk, all in one transaction (recorded in
    /// the journal first). libvirt's rules come first: the bitmap is named after the
    /// checkpoint and the image is qcow2. A bitmap of that name already in an image (left
    /// by lost metadata) makes the transaction fail with QEMU's "Bitmap already exists",
    /// as in libvirt; it is not recorded, so that undoing never removes it.
    pub(crate) fn add_bitmaps(&self, domain: &QemuDomain, def: &CheckpointDef, journal: &mut Journal) -> Result<()> {
        let dom_def = domain.def();
        self.check_new_checkpoint(dom_def, def)?;
        let wanted: Vec<(&str, &str)> = bitmap_disks(def, dom_def).collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let disks = engine_disks(dom_def)?;
        let mut session = self.session(domain, &disks, journal)?;
        let present = session.bitmaps()?;
        let mut actions = Vec::new();
        let mut added = Vec::new();
        for (target, bitmap) in &wanted {
            let node = session.node(target)?.to_string();
            actions.push(Action::AddBitmap { node: node.clone(), name: bitmap.to_string() });
            if !present.get(*target).is_some_and(|list| list.iter().any(|b| b.name == *bitmap)) {
                added.push((node, bitmap.to_string()));
            }
        }
        journal.record(|i| i.bitmaps.extend(added))?;
        session.transaction(&actions)?;
        intent::kill_point("checkpoint-bitmaps-added");
        session.finish()
    }

    /// libvirt's rules for a new checkpoint's bitmaps: named after the checkpoint, and
    /// only in qcow2 images.
    pub(crate) fn check_new_checkpoint(&self, dom_def: &DomainDef, def: &CheckpointDef) -> Result<()> {
        for disk in def.disks.iter().filter(|d| d.kind == DiskCheckpointKind::Bitmap) {
            if disk.bitmap.as_deref() != Some(def.name.as_str()) {
                return Err(unsupported_config(format!(
                    "bitmap for disk '{}' must match checkpoint name '{}'",
                    disk.name, def.name
                )));
            }
            let format = dom_def.disk(&disk.name).and_then(|d| d.format.clone()).unwrap_or_else(|| "raw".to_string());
            if format != "qcow2" {
                return Err(unsupported_config(format!(
                    "checkpoint for disk {} unsupported for storage type {format}",
                    disk.name
                )));
            }
        }
        Ok(())
    }

    /// Removes the bitmaps of the given checkpoints in one transaction. A bitmap that is
    /// missing is libvirt's error, and nothing is removed then; unless `skip_missing`
    /// (cleaning up after a daemon that died before a new bitmap reached the image).
    pub(crate) fn remove_bitmaps(
        &self,
        domain: &QemuDomain,
        defs: &[CheckpointDef],
        skip_missing: bool,
        journal: &mut Journal,
    ) -> Result<()> {
        let dom_def = domain.def();
        let wanted: Vec<(&str, &str)> = defs.iter().flat_map(|d| bitmap_disks(d, dom_def)).collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let disks = engine_disks(dom_def)?;
        let mut session = self.session(domain, &disks, journal)?;
        let result = (|| {
            let present = session.bitmaps()?;
            let mut actions = Vec::new();
            for (target, bitmap) in &wanted {
                if !present.get(*target).is_some_and(|list| list.iter().any(|b| b.name == *bitmap)) {
                    if skip_missing {
                        continue;
                    }
                    return Err(Error::internal(
                        FROM,
                        format!("bitmap '{bitmap}' not found in backing chain of '{target}'"),
                    ));
                }
                actions
                    .push(Action::RemoveBitmap { node: session.node(target)?.to_string(), name: bitmap.to_string() });
            }
            session.transaction(&actions)?;
            intent::kill_point("checkpoint-bitmaps-removed");
            Ok(())
        })();
        result.and_then(|()| session.finish())
    }

    /// True when a bitmap of one of the checkpoints is still in an image.
    pub(crate) fn any_bitmap_left(
        &self,
        domain: &QemuDomain,
        defs: &[CheckpointDef],
        journal: &mut Journal,
    ) -> Result<bool> {
        let wanted: Vec<(&str, &str)> = defs.iter().flat_map(|d| bitmap_disks(d, domain.def())).collect();
        if wanted.is_empty() {
            return Ok(false);
        }
        let disks = engine_disks(domain.def())?;
        let mut session = self.session(domain, &disks, journal)?;
        let present = session.bitmaps()?;
        session.finish()?;
        Ok(wanted.iter().any(|(t, b)| present.get(*t).is_some_and(|l| l.iter().any(|x| x.name == *b))))
    }

    /// Removes every bitmap named `name` from the domain's disks (those that have one).
    pub(crate) fn remove_named_bitmaps(&self, domain: &QemuDomain, name: &str, journal: &mut Journal) -> Result<()> {
        let disks = engine_disks(domain.def())?;
        let mut session = self.session(domain, &disks, journal)?;
        let present = session.bitmaps()?;
        let mut actions = Vec::new();
        for disk in &disks {
            if present.get(&disk.target).is_some_and(|list| list.iter().any(|b| b.name == name)) {
                let node = session.node(&disk.target)?;
                actions.push(Action::RemoveBitmap { node: node.to_string(), name: name.to_string() });
            }
        }
        session.transaction(&actions)?;
        session.finish()
    }

    /// Checks that every bitmap disk of a redefined checkpoint still has a healthy bitmap
    /// named after the checkpoint (`VIR_ERR_CHECKPOINT_INCONSISTENT` otherwise). Disks the
    /// domain no longer has are skipped.
    pub(crate) fn validate_bitmaps(
        &self,
        domain: &QemuDomain,
        def: &CheckpointDef,
        journal: &mut Journal,
    ) -> Result<()> {
        let dom_def = domain.def();
        let wanted: Vec<&str> = bitmap_disks(def, dom_def).map(|(target, _)| target).collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let disks = engine_disks(dom_def)?;
        let mut session = self.session(domain, &disks, journal)?;
        let present = session.bitmaps()?;
        session.finish()?;
        for target in wanted {
            let healthy =
                present.get(target).is_some_and(|list| list.iter().any(|b| b.name == def.name && b.healthy()));
            if !healthy {
                return Err(Error::new(
                    FROM,
                    Code::VIR_ERR_CHECKPOINT_INCONSISTENT,
                    format!("missing or broken bitmap '{}' for disk '{target}'", def.name),
                ));
            }
        }
        Ok(())
    }

    /// Fills in, for each bitmap disk with a healthy bitmap, the bytes dirtied since the
    /// checkpoint. Every checkpoint bitmap records all writes since it was made, so its
    /// own count is the answer, merged with the checkpoint's bitmaps below an external
    /// snapshot's overlay.
    pub(crate) fn fill_sizes(&self, domain: &QemuDomain, def: &mut CheckpointDef, journal: &mut Journal) -> Result<()> {
        let dom_def = domain.def().clone();
        let wanted: Vec<(String, String)> =
            bitmap_disks(def, &dom_def).map(|(t, b)| (t.to_string(), b.to_string())).collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let disks = engine_disks(&dom_def)?;
        let mut session = self.session(domain, &disks, journal)?;
        let present = session.bitmaps()?;
        let mut sizes = Vec::new();
        for (target, bitmap) in &wanted {
            let Some(top) = present.get(target).and_then(|list| list.iter().find(|b| &b.name == bitmap && b.healthy()))
            else {
                continue;
            };
            // Below an external snapshot's overlay, the checkpoint's older writes are in
            // the images of the backing chain: their union is counted in a temporary
            // bitmap (recorded, so that a killed process leaves none).
            let below: Vec<String> = session
                .backing_nodes(target)?
                .into_iter()
                .filter(|n| n.bitmaps.iter().any(|b| &b.name == bitmap))
                .map(|n| n.name)
                .collect();
            if below.is_empty() {
                sizes.push((target.clone(), top.count));
                continue;
            }
            let node = session.node(target)?.to_string();
            let temporary = format!("vb{}-size-{target}", journal.intent.op);
            journal.record(|i| i.bitmaps.push((node.clone(), temporary.clone())))?;
            let sources = std::iter::once(node.clone()).chain(below).map(|n| (n, bitmap.clone())).collect();
            session.transaction(&[
                Action::AddTemporaryBitmap {
                    node: node.clone(),
                    name: temporary.clone(),
                    granularity: top.granularity,
                },
                Action::MergeBitmaps { node: node.clone(), target: temporary.clone(), sources },
            ])?;
            let merged = session.bitmaps()?;
            let count = merged.get(target).and_then(|l| l.iter().find(|b| b.name == temporary)).map(|b| b.count);
            session.remove_bitmap(&node, &temporary);
            sizes.extend(count.map(|c| (target.clone(), c)));
        }
        session.finish()?;
        for disk in &mut def.disks {
            disk.size = sizes.iter().find(|(t, _)| *t == disk.name).map(|(_, size)| *size);
        }
        Ok(())
    }
}

pub(crate) fn checkpoint_create_xml(driver: &QemuDriver, dom: &DomainId, xml: &str, flags: u32) -> Result<String> {
    let redefine = CreateFlags::VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE as u32;
    let validate = CreateFlags::VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE_VALIDATE as u32;
    Error::check_flags(FROM, "qemuCheckpointCreateXML", flags, redefine | validate)?;
    driver.with_state(Scope::Domain(&dom.name), true, |inner, _| {
        let at = inner.position(dom)?;
        let domain = &inner.domains[at];
        let name = domain.name().to_string();
        if flags & redefine != 0 {
            let def = CheckpointDef::parse(xml, true)?;
            store::check_file_name("checkpoint", &def.name)?;
            let prepared = domain.checkpoints.prepare_redefine(def, &domain.def().uuid)?;
            if flags & validate != 0 {
                driver.journaled(inner, Intent::new("checkpoint validation", &name), |inner, journal| {
                    driver.validate_bitmaps(&inner.domains[at], &prepared.def, journal)
                })?;
            }
            let checkpoint = prepared.def.name.clone();
            driver.save_checkpoint(&name, &prepared.def)?;
            let domain = &mut inner.domains[at];
            domain.checkpoints.commit(prepared)?;
            driver.save_current(domain)?;
            return Ok(checkpoint);
        }
        let def = CheckpointDef::parse(xml, false)?;
        let prepared = domain.checkpoints.prepare_create(def, domain.def(), now_seconds())?;
        store::check_file_name("checkpoint", &prepared.def.name)?;
        if domain.checkpoints.get(&prepared.def.name).is_ok() {
            return Err(checkpoints::tree_error(crate::moment::TreeError::Exists(prepared.def.name.clone()), FROM));
        }
        let checkpoint = prepared.def.name.clone();
        let mut intent = Intent::new("checkpoint creation", &name);
        intent.checkpoint = Some(CheckpointStep::Create { name: checkpoint.clone() });
        // The bitmaps first, then the metadata, which completes the creation.
        driver.journaled(inner, intent, |inner, journal| {
            driver.add_bitmaps(&inner.domains[at], &prepared.def, journal)?;
            driver.save_checkpoint(&name, &prepared.def)?;
            let domain = &mut inner.domains[at];
            domain.checkpoints.commit(prepared)?;
            driver.save_current(domain)
        })?;
        Ok(checkpoint)
    })
}

pub(crate) fn checkpoint_get_xml_desc(driver: &QemuDriver, dom: &DomainId, name: &str, flags: u32) -> Result<String> {
    Error::check_flags(FROM, "qemuCheckpointGetXMLDesc", flags, checkpoints::XML_FLAGS)?;
    let size = flags & CheckpointXmlFlags::VIR_DOMAIN_CHECKPOINT_XML_SIZE as u32 != 0;
    driver.with_state(Scope::Domain(&dom.name), false, |inner, _| {
        let at = inner.position(dom)?;
        let domain = &inner.domains[at];
        let def = domain.checkpoints.get(name)?;
        if !size {
            return Ok(def.format(checkpoints::format_options(flags)));
        }
        let mut sized = def.clone();
        let dom_name = domain.name().to_string();
        driver.journaled(inner, Intent::new("checkpoint size query", &dom_name), |inner, journal| {
            driver.fill_sizes(&inner.domains[at], &mut sized, journal)
        })?;
        Ok(sized.format(checkpoints::format_options(flags)))
    })
}

pub(crate) fn list_all_checkpoints(
    driver: &QemuDriver,
    dom: &DomainId,
    flags: u32,
    count_only: bool,
) -> Result<Listing> {
    Error::check_flags(FROM, "qemuDomainListAllCheckpoints", flags, checkpoints::LIST_FLAGS)?;
    driver.with_state(Scope::Domain(&dom.name), false, |inner, _| {
        let list = &inner.domains[inner.position(dom)?].checkpoints;
        list.listing(None, flags, count_only)
    })
}

pub(crate) fn checkpoint_list_all_children(
    driver: &QemuDriver,
    dom: &DomainId,
    name: &str,
    flags: u32,
    count_only: bool,
) -> Result<Listing> {
    Error::check_flags(FROM, "qemuDomainCheckpointListAllChildren", flags, checkpoints::LIST_FLAGS)?;
    driver.with_state(Scope::Domain(&dom.name), false, |inner, _| {
        let list = &inner.domains[inner.position(dom)?].checkpoints;
        list.listing(Some(name), flags, count_only)
    })
}

pub(crate) fn checkpoint_lookup_by_name(driver: &QemuDriver, dom: &DomainId, name: &str, flags: u32) -> Result<()> {
    Error::check_flags(FROM, "qemuDomainCheckpointLookupByName", flags, 0)?;
    driver.with_state(Scope::Domain(&dom.name), false, |inner, _| {
        inner.domains[inner.position(dom)?].checkpoints.get(name).map(|_| ())
    })
}

pub(crate) fn checkpoint_get_parent(driver: &QemuDriver, dom: &DomainId, name: &str, flags: u32) -> Result<String> {
    Error::check_flags(FROM, "qemuDomainCheckpointGetParent", flags, 0)?;
    driver.with_state(Scope::Domain(&dom.name), false, |inner, _| {
        inner.domains[inner.position(dom)?].checkpoints.parent(name)
    })
}

pub(crate) fn checkpoint_delete(driver: &QemuDriver, dom: &DomainId, name: &str, flags: u32) -> Result<()> {
    Error::check_flags(FROM, "qemuCheckpointDelete", flags, checkpoints::DELETE_FLAGS)?;
    let metadata_only = flags & DeleteFlags::VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY as u32 != 0;
    driver.with_state(Scope::Domain(&dom.name), true, |inner, layout| {
        let at = inner.position(dom)?;
        let domain = &inner.domains[at];
        domain.checkpoints.get(name)?;
        let doomed = domain.checkpoints.to_be_deleted(name, flags)?;
        let mut intent = Intent::new("checkpoint deletion", domain.name());
        intent.checkpoint =
            Some(CheckpointStep::Delete { name: name.to_string(), flags, bitmaps_removed: metadata_only });
        driver.journaled(inner, intent, |inner, journal| {
            if !metadata_only {
                // The bitmaps first: if that fails, nothing has changed.
                driver.remove_bitmaps(&inner.domains[at], &doomed, false, journal)?;
                journal.record(|i| {
                    if let Some(CheckpointStep::Delete { bitmaps_removed, .. }) = &mut i.checkpoint {
                        *bitmaps_removed = true;
                    }
                })?;
            }
            driver.delete_checkpoint_metadata(&mut inner.domains[at], layout, name, flags)
        })
    })
}

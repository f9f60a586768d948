//! The per-domain checkpoint list: libvirt's checkpoint semantics on top of the generic
//! moment tree, shared by the drivers. Drivers add what is theirs (state checks, bitmaps,
//! metadata files) around these steps.

use std::sync::Arc;

use crate::abi::{
    virDomainCheckpointDeleteFlags as DeleteFlags, virDomainCheckpointListFlags as ListFlags,
    virDomainCheckpointXMLFlags as XmlFlags,
};
use crate::conf::checkpoint::{CheckpointDef, CheckpointFormat};
use crate::conf::domain::DomainDef;
use crate::error::{Code, Domain, Error, Result};
use crate::moment::{MomentTree, TreeError};

/// The list flags every driver accepts (ROOTS/DESCENDANTS, TOPOLOGICAL, LEAVES, NO_LEAVES).
pub const LIST_FLAGS: u32 = ListFlags::VIR_DOMAIN_CHECKPOINT_LIST_ROOTS as u32
    | ListFlags::VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL as u32
    | ListFlags::VIR_DOMAIN_CHECKPOINT_LIST_LEAVES as u32
    | ListFlags::VIR_DOMAIN_CHECKPOINT_LIST_NO_LEAVES as u32;

/// The XML flags every driver accepts.
pub const XML_FLAGS: u32 = XmlFlags::VIR_DOMAIN_CHECKPOINT_XML_SECURE as u32
    | XmlFlags::VIR_DOMAIN_CHECKPOINT_XML_NO_DOMAIN as u32
    | XmlFlags::VIR_DOMAIN_CHECKPOINT_XML_SIZE as u32;

/// The delete flags every driver accepts.
pub const DELETE_FLAGS: u32 = DeleteFlags::VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN as u32
    | DeleteFlags::VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY as u32
    | DeleteFlags::VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN_ONLY as u32;

/// Translates the public XML flags into the formatter's options.
pub fn format_options(flags: u32) -> CheckpointFormat {
    CheckpointFormat {
        secure: flags & XmlFlags::VIR_DOMAIN_CHECKPOINT_XML_SECURE as u32 != 0,
        no_domain: flags & XmlFlags::VIR_DOMAIN_CHECKPOINT_XML_NO_DOMAIN as u32 != 0,
        size: flags & XmlFlags::VIR_DOMAIN_CHECKPOINT_XML_SIZE as u32 != 0,
    }
}

/// A tree error in libvirt's words. Errors about the tree itself come from the shared
/// moment code (`VIR_FROM_DOMAIN`); a missing checkpoint is the driver's error.
pub fn tree_error(err: TreeError, driver: Domain) -> Error {
    let from = Domain::VIR_FROM_DOMAIN;
    match err {
        TreeError::Exists(name) => {
            Error::new(from, Code::VIR_ERR_OPERATION_FAILED, format!("domain moment {name} already exists"))
        }
        TreeError::NotFound(name) => not_found(driver, &name),
        TreeError::OwnParent(name) => {
            Error::new(from, Code::VIR_ERR_INVALID_ARG, format!("cannot set moment {name} as its own parent"))
        }
        TreeError::MissingParent { parent, moment } => {
            Error::new(from, Code::VIR_ERR_INVALID_ARG, format!("parent {parent} for moment {moment} not found"))
        }
        TreeError::Cycle { ancestor, moment } => {
            Error::new(from, Code::VIR_ERR_INVALID_ARG, format!("parent {ancestor} would create cycle to {moment}"))
        }
        TreeError::UnsupportedFlags(bits) => Error::unsupported_flags(from, "virDomainMomentObjListGetNames", bits),
    }
}

/// `no domain checkpoint with matching name '<name>'`.
pub fn not_found(driver: Domain, name: &str) -> Error {
    Error::new(driver, Code::VIR_ERR_NO_DOMAIN_CHECKPOINT, format!("no domain checkpoint with matching name '{name}'"))
}

/// A checkpoint ready to be committed, with what committing it does to `current`.
#[derive(Debug)]
pub struct Prepared {
    pub def: CheckpointDef,
    /// Replaces an existing checkpoint of the same name (redefine only).
    pub replaces: bool,
    pub make_current: bool,
}

/// What a delete removed, for the driver to act on (remove bitmaps, unlink files).
#[derive(Debug, Default)]
pub struct Deleted {
    /// The removed checkpoints, descendants first.
    pub removed: Vec<CheckpointDef>,
    /// Checkpoints whose parent changed (their metadata must be rewritten).
    pub reparented: Vec<String>,
}

/// One domain's checkpoints.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    tree: MomentTree<CheckpointDef>,
    /// The error domain of the driver that owns the list.
    driver: Domain,
}

impl Checkpoints {
    pub fn new(driver: Domain) -> Self {
        Checkpoints { tree: MomentTree::new(), driver }
    }

    fn from(&self) -> Domain {
        self.driver
    }

    pub fn len(&self) -> usize {
        self.tree.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// The checkpoint named `name`, or the driver's "no domain checkpoint" error.
    pub fn get(&self, name: &str) -> Result<&CheckpointDef> {
        self.tree.get(name).ok_or_else(|| not_found(self.from(), name))
    }

    /// The hidden current checkpoint.
    pub fn current(&self) -> Option<&str> {
        self.tree.current()
    }

    /// Makes `name` the current checkpoint (restoring saved state); an unknown name
    /// clears it.
    pub fn set_current(&mut self, name: Option<&str>) {
        if self.tree.set_current(name).is_err() {
            let _ = self.tree.set_current(None);
        }
    }

    /// The checkpoints a delete with these flags would remove, without removing them.
    pub fn to_be_deleted(&self, name: &str, flags: u32) -> Result<Vec<CheckpointDef>> {
        let this = self.get(name)?;
        let mut doomed = Vec::new();
        if flags
            & (DeleteFlags::VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN as u32
                | DeleteFlags::VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN_ONLY as u32)
            != 0
        {
            let descendants = self.tree.list(Some(name), crate::moment::list_flags::DESCENDANTS, |_| true);
            let descendants = descendants.map_err(|e| tree_error(e, self.from()))?;
            doomed.extend(descendants.into_iter().filter_map(|n| self.tree.get(n)).cloned());
        }
        if flags & DeleteFlags::VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN_ONLY as u32 == 0 {
            doomed.push(this.clone());
        }
        Ok(doomed)
    }

    /// Prepares a plain create: the definition gets its creation time (and, without a
    /// name, that time as its name), a copy of the domain definition, aligned disks and
    /// the current checkpoint as parent.
    pub fn prepare_create(&self, mut def: CheckpointDef, domain: &Arc<DomainDef>, now: i64) -> Result<Prepared> {
        def.creation_time = now;
        if def.name.is_empty() {
            def.name = now.to_string();
        }
        def.domain = Some(domain.clone());
        def.align_disks(domain)?;
        def.parent = self.tree.current().map(str::to_string);
        Ok(Prepared { def, replaces: false, make_current: true })
    }

    /// Prepares a redefine: cycle checks, the embedded domain's UUID and disks (or only
    /// default bitmap names when there is no embedded domain), and whether it becomes
    /// current (when there is none, or its parent is the current checkpoint).
    pub fn prepare_redefine(&self, mut def: CheckpointDef, domain_uuid: &crate::uuid::Uuid) -> Result<Prepared> {
        self.tree.check_cycles(&def.name, def.parent.as_deref()).map_err(|e| tree_error(e, self.from()))?;
        match def.domain.clone() {
            Some(dom) => {
                if dom.uuid != *domain_uuid {
                    return Err(Error::new(
                        Domain::VIR_FROM_DOMAIN_CHECKPOINT,
                        Code::VIR_ERR_INVALID_ARG,
                        format!("definition for checkpoint {} must use uuid {domain_uuid}", def.name),
                    ));
                }
                def.align_disks(&dom)?;
            }
            None => def.default_bitmap_names(),
        }
        let current = self.tree.current();
        let make_current = current.is_none() || (def.parent.is_some() && def.parent.as_deref() == current);
        Ok(Prepared { replaces: self.tree.contains(&def.name), def, make_current })
    }

    /// Adds (or replaces) the checkpoint and updates the current one.
    pub fn commit(&mut self, prepared: Prepared) -> Result<()> {
        let Prepared { def, replaces, make_current } = prepared;
        let name = def.name.clone();
        let parent = def.parent.clone();
        let result = if replaces {
            self.tree.redefine(&name, def, parent.as_deref()).map(|_| ())
        } else {
            self.tree.insert(&name, def, parent.as_deref())
        };
        result.map_err(|e| tree_error(e, self.from()))?;
        if make_current {
            self.tree.set_current(Some(&name)).map_err(|e| tree_error(e, self.from()))?;
        }
        Ok(())
    }

    /// Lists a domain's checkpoints (`from` = None) or a checkpoint's children.
    pub fn list(&self, from: Option<&str>, flags: u32) -> Result<Vec<String>> {
        if let Some(name) = from {
            self.get(name)?;
        }
        let names = self.tree.list(from, flags, |_| true).map_err(|e| tree_error(e, self.from()))?;
        Ok(names.into_iter().map(str::to_string).collect())
    }

    /// Counts what [`Checkpoints::list`] would return.
    pub fn count(&self, from: Option<&str>, flags: u32) -> Result<usize> {
        if let Some(name) = from {
            self.get(name)?;
        }
        self.tree.count(from, flags).map_err(|e| tree_error(e, self.from()))
    }

    /// Lists or counts (`count_only`) a domain's checkpoints or a checkpoint's children.
    pub fn listing(&self, from: Option<&str>, flags: u32, count_only: bool) -> Result<super::Listing> {
        if count_only {
            self.count(from, flags).map(super::Listing::Count)
        } else {
            self.list(from, flags).map(super::Listing::Names)
        }
    }

    /// The parent's name, or `checkpoint '<name>' does not have a parent` (code 103,
    /// which callers such as virsh read as "this is a root").
    pub fn parent(&self, name: &str) -> Result<String> {
        match self.tree.parent(name).map_err(|e| tree_error(e, self.from()))? {
            Some(p) => Ok(p.to_string()),
            None => Err(Error::new(
                self.from(),
                Code::VIR_ERR_NO_DOMAIN_CHECKPOINT,
                format!("checkpoint '{name}' does not have a parent"),
            )),
        }
    }

    /// Deletes per the delete flags: the checkpoint (children move to its parent), with
    /// CHILDREN also its descendants, with CHILDREN_ONLY only its descendants.
    pub fn delete(&mut self, name: &str, flags: u32) -> Result<Deleted> {
        self.get(name)?;
        let driver = self.from();
        let err = move |e| tree_error(e, driver);
        if flags & DeleteFlags::VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN as u32 != 0 {
            let removed = self.tree.remove_subtree(name).map_err(err)?;
            Ok(Deleted { removed: removed.into_iter().map(|(_, d)| d).collect(), reparented: Vec::new() })
        } else if flags & DeleteFlags::VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN_ONLY as u32 != 0 {
            let removed = self.tree.remove_children(name).map_err(err)?;
            Ok(Deleted { removed: removed.into_iter().map(|(_, d)| d).collect(), reparented: Vec::new() })
        } else {
            let new_parent = self.tree.parent(name).map_err(err)?.map(str::to_string);
            let (def, moved) = self.tree.remove(name).map_err(err)?;
            for child in &moved {
                if let Some(c) = self.tree.get_mut(child) {
                    c.parent = new_parent.clone();
                }
            }
            Ok(Deleted { removed: vec![def], reparented: moved })
        }
    }

    /// The definition of a checkpoint for printing, with its parent as the tree has it.
    pub fn format(&self, name: &str, flags: u32) -> Result<String> {
        Ok(self.get(name)?.format(format_options(flags)))
    }

    /// Mutable access to a definition (sizes, bitmap bookkeeping).
    pub fn get_mut(&mut self, name: &str) -> Result<&mut CheckpointDef> {
        let from = self.from();
        self.tree.get_mut(name).ok_or_else(|| not_found(from, name))
    }

    /// Every checkpoint, parents first.
    pub fn all_topological(&self) -> Vec<&CheckpointDef> {
        self.tree
            .list(None, ListFlags::VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL as u32, |_| true)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|n| self.tree.get(n))
            .collect()
    }

    /// Rebuilds the list from saved definitions; returns what could not be linked.
    pub fn load(driver: Domain, defs: Vec<CheckpointDef>) -> (Checkpoints, Vec<Error>) {
        let entries = defs.into_iter().map(|d| (d.name.clone(), d.parent.clone(), d)).collect();
        let (mut tree, problems) = MomentTree::from_parent_names(entries);
        let errors: Vec<Error> = problems.into_iter().map(|p| tree_error(p, driver)).collect();
        // A moment linked as a root despite naming a parent must not print that parent.
        let orphans: Vec<String> = tree
            .names()
            .filter(|n| tree.parent(n).ok().flatten().is_none() && tree.get(n).is_some_and(|d| d.parent.is_some()))
            .map(str::to_string)
            .collect();
        for name in orphans {
            if let Some(def) = tree.get_mut(&name) {
                def.parent = None;
            }
        }
        (Checkpoints { tree, driver }, errors)
    }

    /// Removes everything (metadata only).
    pub fn clear(&mut self) {
        self.tree.clear();
    }
}

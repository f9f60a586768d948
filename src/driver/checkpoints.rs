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
use crate::moment::TreeError;
use crate::moment::list::{self as moment, Moment, MomentList};

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

/// A tree error in libvirt's words, for a checkpoint list.
pub fn tree_error(err: TreeError, driver: Domain) -> Error {
    moment::tree_error::<CheckpointDef>(err, driver)
}

/// `no domain checkpoint with matching name '<name>'`.
pub fn not_found(driver: Domain, name: &str) -> Error {
    moment::not_found::<CheckpointDef>(driver, name)
}

impl Moment for CheckpointDef {
    const NOUN: &'static str = "checkpoint";
    const NOT_FOUND: Code = Code::VIR_ERR_NO_DOMAIN_CHECKPOINT;

    fn name(&self) -> &str {
        &self.name
    }

    fn parent_name(&self) -> Option<&str> {
        self.parent.as_deref()
    }

    fn set_parent_name(&mut self, parent: Option<String>) {
        self.parent = parent;
    }
}

/// A checkpoint ready to be committed.
pub type Prepared = moment::Prepared<CheckpointDef>;

/// What a checkpoint delete removed.
pub type Deleted = moment::Deleted<CheckpointDef>;

/// One domain's checkpoints: the generic moment list, with the checkpoint's own steps
/// below.
pub type Checkpoints = MomentList<CheckpointDef>;

impl MomentList<CheckpointDef> {
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
        def.parent = self.current().map(str::to_string);
        Ok(Prepared { def, replaces: false, make_current: true })
    }

    /// Prepares a redefine: cycle checks, the embedded domain's UUID and disks (or only
    /// default bitmap names when there is no embedded domain), and whether it becomes
    /// current (when there is none, or its parent is the current checkpoint).
    pub fn prepare_redefine(&self, mut def: CheckpointDef, domain_uuid: &crate::uuid::Uuid) -> Result<Prepared> {
        self.check_cycles(&def.name, def.parent.as_deref())?;
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
        let current = self.current();
        let make_current = current.is_none() || (def.parent.is_some() && def.parent.as_deref() == current);
        Ok(Prepared { replaces: self.contains(&def.name), def, make_current })
    }

    /// Lists or counts (`count_only`) a domain's checkpoints or a checkpoint's children.
    pub fn listing(&self, from: Option<&str>, flags: u32, count_only: bool) -> Result<super::Listing> {
        super::moment_listing(self, from, flags, count_only, None)
    }

    /// The definition of a checkpoint for printing.
    pub fn format(&self, name: &str, flags: u32) -> Result<String> {
        Ok(self.get(name)?.format(format_options(flags)))
    }
}

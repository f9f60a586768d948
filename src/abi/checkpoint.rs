//! Checkpoint types and flags of libvirt's `libvirt-domain-checkpoint.h`.

use crate::moment::list::delete_flags as moment_delete;
use crate::moment::list_flags as moment;

/// An opaque handle naming one checkpoint of a domain.
///
/// Handles are thin: the checkpoint's name and a reference on its domain. Every lookup,
/// create or list returns a new handle; two handles name the same checkpoint when their
/// domain and name match. A handle outlives the checkpoint it names: its name stays
/// readable, and other calls fail with `VIR_ERR_NO_DOMAIN_CHECKPOINT`. Reference counted
/// with `virDomainCheckpointRef()` / `virDomainCheckpointFree()`.
///
/// Since: 5.6.0
pub struct _virDomainCheckpoint {
    _private: [u8; 0],
}

/// A checkpoint object.
pub type virDomainCheckpoint = _virDomainCheckpoint;

/// A pointer to a checkpoint object.
pub type virDomainCheckpointPtr = *mut virDomainCheckpoint;

/// Flags for `virDomainCheckpointCreateXML()`.
///
/// Since: 5.6.0
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virDomainCheckpointCreateFlags {
    /// Restore metadata of an existing checkpoint (its bitmaps stay as they are).
    VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE = 1 << 0,
    /// Freeze guest file systems around the checkpoint.
    VIR_DOMAIN_CHECKPOINT_CREATE_QUIESCE = 1 << 1,
    /// With REDEFINE: check that the bitmaps the metadata names exist and are usable.
    VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE_VALIDATE = 1 << 2,
}

/// Flags for `virDomainCheckpointGetXMLDesc()`.
///
/// Since: 5.6.0
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virDomainCheckpointXMLFlags {
    /// Include security-sensitive data of the embedded domain.
    VIR_DOMAIN_CHECKPOINT_XML_SECURE = 1 << 0,
    /// Leave out the embedded `<domain>`.
    VIR_DOMAIN_CHECKPOINT_XML_NO_DOMAIN = 1 << 1,
    /// Report, per disk, the bytes changed since the checkpoint.
    VIR_DOMAIN_CHECKPOINT_XML_SIZE = 1 << 2,
}

/// Flags for `virDomainListAllCheckpoints()` and `virDomainCheckpointListAllChildren()`.
/// Bit 0 is `ROOTS` when listing a domain and `DESCENDANTS` when listing children.
///
/// Since: 5.6.0
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virDomainCheckpointListFlags {
    /// With a domain: only checkpoints without a parent.
    VIR_DOMAIN_CHECKPOINT_LIST_ROOTS = 1 << 0,
    /// Parents before children.
    VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL = 1 << 1,
    /// Only checkpoints without children.
    VIR_DOMAIN_CHECKPOINT_LIST_LEAVES = 1 << 2,
    /// Only checkpoints with children.
    VIR_DOMAIN_CHECKPOINT_LIST_NO_LEAVES = 1 << 3,
}

/// With a starting checkpoint: all descendants, not just children. The same bit as
/// `VIR_DOMAIN_CHECKPOINT_LIST_ROOTS`.
///
/// Since: 5.6.0
pub const VIR_DOMAIN_CHECKPOINT_LIST_DESCENDANTS: virDomainCheckpointListFlags =
    virDomainCheckpointListFlags::VIR_DOMAIN_CHECKPOINT_LIST_ROOTS;

// The checkpoint list flags are handed to the generic moment lister unchanged, so each
// must be the moment flag of the same meaning.
static_assertions::const_assert_eq!(
    virDomainCheckpointListFlags::VIR_DOMAIN_CHECKPOINT_LIST_ROOTS as u32,
    moment::ROOTS
);
static_assertions::const_assert_eq!(VIR_DOMAIN_CHECKPOINT_LIST_DESCENDANTS as u32, moment::DESCENDANTS);
static_assertions::const_assert_eq!(
    virDomainCheckpointListFlags::VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL as u32,
    moment::TOPOLOGICAL
);
static_assertions::const_assert_eq!(
    virDomainCheckpointListFlags::VIR_DOMAIN_CHECKPOINT_LIST_LEAVES as u32,
    moment::LEAVES
);
static_assertions::const_assert_eq!(
    virDomainCheckpointListFlags::VIR_DOMAIN_CHECKPOINT_LIST_NO_LEAVES as u32,
    moment::NO_LEAVES
);

/// Flags for `virDomainCheckpointDelete()`.
///
/// Since: 5.6.0
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virDomainCheckpointDeleteFlags {
    /// Also delete every descendant.
    VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN = 1 << 0,
    /// Delete only the metadata; bitmaps stay in the images.
    VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY = 1 << 1,
    /// Delete the descendants and keep the checkpoint itself.
    VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN_ONLY = 1 << 2,
}

// The delete flags are handed to the generic moment list unchanged.
static_assertions::const_assert_eq!(
    virDomainCheckpointDeleteFlags::VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN as u32,
    moment_delete::CHILDREN
);
static_assertions::const_assert_eq!(
    virDomainCheckpointDeleteFlags::VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY as u32,
    moment_delete::METADATA_ONLY
);
static_assertions::const_assert_eq!(
    virDomainCheckpointDeleteFlags::VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN_ONLY as u32,
    moment_delete::CHILDREN_ONLY
);

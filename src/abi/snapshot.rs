//! Snapshot types and flags of libvirt's `libvirt-domain-snapshot.h`.

use crate::moment::list::delete_flags as moment_delete;
use crate::moment::list_flags as moment;

/// An opaque handle naming one snapshot of a domain.
///
/// Handles are thin, as checkpoint handles are: the snapshot's name and a reference on
/// its domain. A handle outlives the snapshot it names: its name stays readable, and other
/// calls fail with `VIR_ERR_NO_DOMAIN_SNAPSHOT`. Reference counted with
/// `virDomainSnapshotRef()` / `virDomainSnapshotFree()`.
///
/// Since: 0.8.0
pub struct _virDomainSnapshot {
    _private: [u8; 0],
}

/// A snapshot object.
pub type virDomainSnapshot = _virDomainSnapshot;

/// A pointer to a snapshot object.
pub type virDomainSnapshotPtr = *mut virDomainSnapshot;

/// Flags for `virDomainSnapshotCreateXML()`.
///
/// Since: 0.9.5
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virDomainSnapshotCreateFlags {
    /// Restore the metadata of a snapshot (taken elsewhere, or removed with its metadata).
    VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE = 1 << 0,
    /// With REDEFINE: make the snapshot current.
    VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT = 1 << 1,
    /// Take the snapshot without keeping metadata for it.
    VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA = 1 << 2,
    /// Stop the domain once the snapshot is taken.
    VIR_DOMAIN_SNAPSHOT_CREATE_HALT = 1 << 3,
    /// Disks only (external overlays), no memory state.
    VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY = 1 << 4,
    /// Use the external files that already exist instead of creating them.
    VIR_DOMAIN_SNAPSHOT_CREATE_REUSE_EXT = 1 << 5,
    /// Freeze guest file systems around the snapshot.
    VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE = 1 << 6,
    /// All disks or none.
    VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC = 1 << 7,
    /// Keep the guest running while its memory is saved.
    VIR_DOMAIN_SNAPSHOT_CREATE_LIVE = 1 << 8,
    /// Validate the XML against the schema.
    VIR_DOMAIN_SNAPSHOT_CREATE_VALIDATE = 1 << 9,
}

/// Flags for `virDomainSnapshotDelete()`.
///
/// Since: 0.8.0
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virDomainSnapshotDeleteFlags {
    /// Also delete every descendant.
    VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN = 1 << 0,
    /// Delete only the metadata; the images keep the snapshot data.
    VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY = 1 << 1,
    /// Delete the descendants and keep the snapshot itself.
    VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY = 1 << 2,
}

// The delete flags are handed to the generic moment list unchanged.
static_assertions::const_assert_eq!(
    virDomainSnapshotDeleteFlags::VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN as u32,
    moment_delete::CHILDREN
);
static_assertions::const_assert_eq!(
    virDomainSnapshotDeleteFlags::VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY as u32,
    moment_delete::METADATA_ONLY
);
static_assertions::const_assert_eq!(
    virDomainSnapshotDeleteFlags::VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY as u32,
    moment_delete::CHILDREN_ONLY
);

/// Flags for `virDomainSnapshotNum()`, `virDomainSnapshotListNames()`,
/// `virDomainListAllSnapshots()` and their children variants. Bit 0 is `ROOTS` when
/// listing a domain and `DESCENDANTS` when listing children.
///
/// Since: 0.9.5
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virDomainSnapshotListFlags {
    /// With a domain: only snapshots without a parent.
    VIR_DOMAIN_SNAPSHOT_LIST_ROOTS = 1 << 0,
    /// Only snapshots with metadata (every snapshot listed has it).
    VIR_DOMAIN_SNAPSHOT_LIST_METADATA = 1 << 1,
    /// Only snapshots without children.
    VIR_DOMAIN_SNAPSHOT_LIST_LEAVES = 1 << 2,
    /// Only snapshots with children.
    VIR_DOMAIN_SNAPSHOT_LIST_NO_LEAVES = 1 << 3,
    /// Only snapshots without metadata.
    VIR_DOMAIN_SNAPSHOT_LIST_NO_METADATA = 1 << 4,
    /// Only snapshots of a shut-off domain.
    VIR_DOMAIN_SNAPSHOT_LIST_INACTIVE = 1 << 5,
    /// Only snapshots of a running or paused domain (with memory state).
    VIR_DOMAIN_SNAPSHOT_LIST_ACTIVE = 1 << 6,
    /// Only disk-only snapshots of a running domain.
    VIR_DOMAIN_SNAPSHOT_LIST_DISK_ONLY = 1 << 7,
    /// Only snapshots kept inside the images.
    VIR_DOMAIN_SNAPSHOT_LIST_INTERNAL = 1 << 8,
    /// Only snapshots with external files.
    VIR_DOMAIN_SNAPSHOT_LIST_EXTERNAL = 1 << 9,
    /// Parents before children.
    VIR_DOMAIN_SNAPSHOT_LIST_TOPOLOGICAL = 1 << 10,
}

/// With a starting snapshot: all descendants, not just children. The same bit as
/// `VIR_DOMAIN_SNAPSHOT_LIST_ROOTS`.
///
/// Since: 0.9.7
pub const VIR_DOMAIN_SNAPSHOT_LIST_DESCENDANTS: virDomainSnapshotListFlags =
    virDomainSnapshotListFlags::VIR_DOMAIN_SNAPSHOT_LIST_ROOTS;

// The snapshot list flags that keep their bit in the generic moment lister; the others
// (METADATA, NO_METADATA, TOPOLOGICAL) are translated, as libvirt does, and the
// state and location filters are the snapshot kind's own (driver::snapshots).
static_assertions::const_assert_eq!(virDomainSnapshotListFlags::VIR_DOMAIN_SNAPSHOT_LIST_ROOTS as u32, moment::ROOTS);
static_assertions::const_assert_eq!(VIR_DOMAIN_SNAPSHOT_LIST_DESCENDANTS as u32, moment::DESCENDANTS);
static_assertions::const_assert_eq!(virDomainSnapshotListFlags::VIR_DOMAIN_SNAPSHOT_LIST_LEAVES as u32, moment::LEAVES);
static_assertions::const_assert_eq!(
    virDomainSnapshotListFlags::VIR_DOMAIN_SNAPSHOT_LIST_NO_LEAVES as u32,
    moment::NO_LEAVES
);

/// Flags for `virDomainRevertToSnapshot()`.
///
/// Since: 0.9.5
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virDomainSnapshotRevertFlags {
    /// Run the domain after reverting, whatever the snapshot's state.
    VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING = 1 << 0,
    /// Leave the domain paused after reverting.
    VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED = 1 << 1,
    /// Allow risky reverts.
    VIR_DOMAIN_SNAPSHOT_REVERT_FORCE = 1 << 2,
    /// Re-initialize NVRAM from the template.
    VIR_DOMAIN_SNAPSHOT_REVERT_RESET_NVRAM = 1 << 3,
}

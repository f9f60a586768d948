//! Hypervisor drivers: one trait method per libvirt driver callback, named after the public
//! API it serves (`virDomainGetXMLDesc` → [`Driver::domain_get_xml_desc`]).
//!
//! A method the driver does not override answers `VIR_ERR_NO_SUPPORT`, as a libvirt
//! driver table with an empty slot does. Drivers see plain Rust values, never C handles:
//! a domain is named by the [`DomainId`] its handle carries, and looked up again on
//! every call, so a handle outlives the object it names.

#![forbid(unsafe_code)]

pub mod checkpoints;
pub mod events;
pub mod jobs;
pub mod qemu;
pub mod snapshots;
pub mod test;

use std::sync::Arc;

use crate::abi::{virConnectListAllDomainsFlags as ListFlags, virDomainState};
use crate::error::{Code, Domain, Error, Result};
use crate::uri::Uri;
use crate::uuid::Uuid;

/// The URI used when a program opens a connection without one and
/// `LIBVIRT_DEFAULT_URI` is unset.
pub const DEFAULT_URI: &str = "test:///default";

/// Opens the driver a URI names; `flags` are `virConnectOpenAuth()`'s.
pub fn open(uri: &str, flags: u32) -> Result<Arc<dyn Driver>> {
    let no_connect = |detail: String| Error::new(Domain::VIR_FROM_NONE, Code::VIR_ERR_NO_CONNECT, detail);
    let parsed = Uri::parse(uri).ok_or_else(|| no_connect(format!("URI '{uri}' does not include a driver name")))?;
    match (parsed.scheme.as_str(), parsed.server.as_deref()) {
        ("test", None) => {
            test::TestDriver::check_open_flags(flags)?;
            if parsed.path == "/default" {
                Ok(test::TestDriver::shared())
            } else {
                Err(no_connect(format!("{uri}: the test driver serves only test:///default")))
            }
        }
        ("qemu", None) => {
            Error::check_flags(
                Domain::VIR_FROM_QEMU,
                "qemuConnectOpen",
                flags,
                crate::abi::virConnectFlags::VIR_CONNECT_RO as u32,
            )?;
            let root = match parsed.path.as_str() {
                "/embed" => {
                    let root = parsed.param("root").ok_or_else(|| {
                        Error::new(Domain::VIR_FROM_URI, Code::VIR_ERR_INVALID_ARG, "Missing URI parameter 'root'")
                    })?;
                    qemu::check_root(root)?
                }
                "/session" => qemu::session_root()?,
                _ => {
                    return Err(no_connect(format!(
                        "{uri}: the QEMU driver serves qemu:///embed?root=DIR and qemu:///session"
                    )));
                }
            };
            Ok(qemu::QemuDriver::open(root)?)
        }
        (_, Some(server)) => Err(no_connect(format!("{uri}: remote hosts ('{server}') are not supported"))),
        _ => Err(no_connect(uri.to_string())),
    }
}

/// What a domain handle carries: enough to find the domain again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainId {
    pub name: String,
    pub uuid: Uuid,
    /// The live id when the handle was made, or -1 for an inactive domain.
    pub id: i32,
}

/// The answer of `virDomainGetInfo()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DomainInfo {
    pub state: i32,
    pub max_memory_kib: u64,
    pub memory_kib: u64,
    pub vcpus: u16,
    pub cpu_time_ns: u64,
}

/// The value of a typed parameter (job statistics, event payloads).
#[derive(Debug, Clone, PartialEq)]
pub enum TypedValue {
    Int(i32),
    UInt(u32),
    LLong(i64),
    ULLong(u64),
    Double(f64),
    Boolean(bool),
    String(String),
}

/// Named typed values, in order.
pub type TypedParams = Vec<(String, TypedValue)>;

/// The answer of `virDomainGetJobInfo()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JobInfo {
    /// A `virDomainJobType`.
    pub job_type: i32,
    pub elapsed_ms: u64,
    pub data_total: u64,
    pub data_processed: u64,
    pub data_remaining: u64,
    pub file_total: u64,
    pub file_processed: u64,
    pub file_remaining: u64,
}

/// The answer of `virDomainGetJobStats()`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobStats {
    /// A `virDomainJobType`.
    pub job_type: i32,
    pub params: TypedParams,
}

/// The answer of `virDomainGetBlockJobInfo()` when a block job runs on the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockJobInfo {
    /// A `virDomainBlockJobType`.
    pub job_type: i32,
    pub bandwidth: u64,
    pub cur: u64,
    pub end: u64,
}

/// The answer of `virDomainGetBlockInfo()`, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockInfo {
    /// The size the guest sees.
    pub capacity: u64,
    /// The bytes the image holds on its storage.
    pub allocation: u64,
    /// The size of the image's storage (the file, or the block device).
    pub physical: u64,
}

/// How `virStoragePoolLookupBy*()` names a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKey<'a> {
    Name(&'a str),
    Uuid(&'a Uuid),
    TargetPath(&'a str),
}

/// How `virStorageVolLookupBy*()` names a volume without its pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeKey<'a> {
    Key(&'a str),
    Path(&'a str),
}

/// How `virNetworkLookupBy*()` names a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkKey<'a> {
    Name(&'a str),
    Uuid(&'a Uuid),
}

/// The facts `virConnectListAllDomains()` filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DomainFacts {
    pub active: bool,
    pub persistent: bool,
    pub state: i32,
    pub managed_save: bool,
    pub autostart: bool,
    pub snapshots: usize,
    pub checkpoints: usize,
}

/// All `virConnectListAllDomains()` filter bits.
pub const LIST_DOMAINS_ALL: u32 = 0xffff;

/// True when a domain with these facts passes the `virConnectListAllDomains()` filters.
///
/// Each pair of flags (active/inactive, persistent/transient, ...) and the group of state
/// flags filters only when at least one of its flags is set.
pub fn list_filter_accepts(flags: u32, facts: &DomainFacts) -> bool {
    let set = |f: ListFlags| flags & f as u32 != 0;
    let pair = |yes: ListFlags, no: ListFlags, value: bool| {
        if !set(yes) && !set(no) {
            return true;
        }
        (set(yes) && value) || (set(no) && !value)
    };
    use ListFlags::*;
    let states_asked = [
        VIR_CONNECT_LIST_DOMAINS_RUNNING,
        VIR_CONNECT_LIST_DOMAINS_PAUSED,
        VIR_CONNECT_LIST_DOMAINS_SHUTOFF,
        VIR_CONNECT_LIST_DOMAINS_OTHER,
    ]
    .iter()
    .any(|&f| set(f));
    let state_ok = !states_asked || {
        let s = facts.state;
        (set(VIR_CONNECT_LIST_DOMAINS_RUNNING) && s == virDomainState::VIR_DOMAIN_RUNNING as i32)
            || (set(VIR_CONNECT_LIST_DOMAINS_PAUSED) && s == virDomainState::VIR_DOMAIN_PAUSED as i32)
            || (set(VIR_CONNECT_LIST_DOMAINS_SHUTOFF) && s == virDomainState::VIR_DOMAIN_SHUTOFF as i32)
            || (set(VIR_CONNECT_LIST_DOMAINS_OTHER)
                && ![
                    virDomainState::VIR_DOMAIN_RUNNING as i32,
                    virDomainState::VIR_DOMAIN_PAUSED as i32,
                    virDomainState::VIR_DOMAIN_SHUTOFF as i32,
                ]
                .contains(&s))
    };
    pair(VIR_CONNECT_LIST_DOMAINS_ACTIVE, VIR_CONNECT_LIST_DOMAINS_INACTIVE, facts.active)
        && pair(VIR_CONNECT_LIST_DOMAINS_PERSISTENT, VIR_CONNECT_LIST_DOMAINS_TRANSIENT, facts.persistent)
        && state_ok
        && pair(VIR_CONNECT_LIST_DOMAINS_MANAGEDSAVE, VIR_CONNECT_LIST_DOMAINS_NO_MANAGEDSAVE, facts.managed_save)
        && pair(VIR_CONNECT_LIST_DOMAINS_AUTOSTART, VIR_CONNECT_LIST_DOMAINS_NO_AUTOSTART, facts.autostart)
        && pair(VIR_CONNECT_LIST_DOMAINS_HAS_SNAPSHOT, VIR_CONNECT_LIST_DOMAINS_NO_SNAPSHOT, facts.snapshots > 0)
        && pair(VIR_CONNECT_LIST_DOMAINS_HAS_CHECKPOINT, VIR_CONNECT_LIST_DOMAINS_NO_CHECKPOINT, facts.checkpoints > 0)
}

fn unsupported<T>(domain: Domain, api: &str) -> Result<T> {
    Err(Error::no_support(domain, api))
}

const FROM_DOMAIN: Domain = Domain::VIR_FROM_DOMAIN;
const FROM_CHECKPOINT: Domain = Domain::VIR_FROM_DOMAIN_CHECKPOINT;
const FROM_SNAPSHOT: Domain = Domain::VIR_FROM_DOMAIN_SNAPSHOT;
const FROM_QEMU_API: Domain = Domain::VIR_FROM_NONE;

/// A hypervisor driver. Every method has libvirt's meaning for the public API it is named
/// after; the public layer has already checked handles, NULL arguments and read-only
/// access, and the driver checks flags and everything else.
pub trait Driver: Send + Sync {
    /// `virConnectGetType`: the driver name (`TEST`, `QEMU`).
    fn connect_get_type(&self) -> &'static str;

    /// `virConnectGetVersion`: the hypervisor version as `major * 1000000 + minor * 1000
    /// + micro`.
    fn connect_get_version(&self) -> Result<u64> {
        unsupported(FROM_DOMAIN, "virConnectGetVersion")
    }

    /// `virConnectListAllDomains`, already filtered.
    fn connect_list_all_domains(&self, flags: u32) -> Result<Vec<DomainId>> {
        let _ = flags;
        unsupported(FROM_DOMAIN, "virConnectListAllDomains")
    }

    /// `virConnectNumOfDomains`: the number of active domains.
    fn connect_num_of_domains(&self) -> Result<i32> {
        unsupported(FROM_DOMAIN, "virConnectNumOfDomains")
    }

    /// `virDomainLookupByName`.
    fn domain_lookup_by_name(&self, name: &str) -> Result<DomainId> {
        let _ = name;
        unsupported(FROM_DOMAIN, "virDomainLookupByName")
    }

    /// `virDomainLookupByUUID` (and `...ByUUIDString`).
    fn domain_lookup_by_uuid(&self, uuid: &Uuid) -> Result<DomainId> {
        let _ = uuid;
        unsupported(FROM_DOMAIN, "virDomainLookupByUUID")
    }

    /// `virDomainLookupByID`.
    fn domain_lookup_by_id(&self, id: i32) -> Result<DomainId> {
        let _ = id;
        unsupported(FROM_DOMAIN, "virDomainLookupByID")
    }

    /// `virDomainIsActive`.
    fn domain_is_active(&self, dom: &DomainId) -> Result<bool> {
        let _ = dom;
        unsupported(FROM_DOMAIN, "virDomainIsActive")
    }

    /// `virDomainIsPersistent`.
    fn domain_is_persistent(&self, dom: &DomainId) -> Result<bool> {
        let _ = dom;
        unsupported(FROM_DOMAIN, "virDomainIsPersistent")
    }

    /// `virDomainGetState`: the state and its reason.
    fn domain_get_state(&self, dom: &DomainId, flags: u32) -> Result<(i32, i32)> {
        let _ = (dom, flags);
        unsupported(FROM_DOMAIN, "virDomainGetState")
    }

    /// `virDomainGetInfo`.
    fn domain_get_info(&self, dom: &DomainId) -> Result<DomainInfo> {
        let _ = dom;
        unsupported(FROM_DOMAIN, "virDomainGetInfo")
    }

    /// `virDomainGetXMLDesc`.
    fn domain_get_xml_desc(&self, dom: &DomainId, flags: u32) -> Result<String> {
        let _ = (dom, flags);
        unsupported(FROM_DOMAIN, "virDomainGetXMLDesc")
    }

    /// `virDomainDefineXMLFlags` (and `virDomainDefineXML` with flags 0).
    fn domain_define_xml(&self, xml: &str, flags: u32) -> Result<DomainId> {
        let _ = (xml, flags);
        unsupported(FROM_DOMAIN, "virDomainDefineXMLFlags")
    }

    /// `virDomainUndefineFlags` (and `virDomainUndefine` with flags 0).
    fn domain_undefine(&self, dom: &DomainId, flags: u32) -> Result<()> {
        let _ = (dom, flags);
        unsupported(FROM_DOMAIN, "virDomainUndefineFlags")
    }

    /// `virDomainCreateWithFlags`: starts the domain and returns its new live id.
    fn domain_create(&self, dom: &DomainId, flags: u32) -> Result<i32> {
        let _ = (dom, flags);
        unsupported(FROM_DOMAIN, "virDomainCreateWithFlags")
    }

    /// `virDomainDestroyFlags`.
    fn domain_destroy(&self, dom: &DomainId, flags: u32) -> Result<()> {
        let _ = (dom, flags);
        unsupported(FROM_DOMAIN, "virDomainDestroyFlags")
    }

    /// `virDomainShutdownFlags`.
    fn domain_shutdown(&self, dom: &DomainId, flags: u32) -> Result<()> {
        let _ = (dom, flags);
        unsupported(FROM_DOMAIN, "virDomainShutdownFlags")
    }

    /// `virDomainCheckpointCreateXML`: returns the new checkpoint's name.
    fn checkpoint_create_xml(&self, dom: &DomainId, xml: &str, flags: u32) -> Result<String> {
        let _ = (dom, xml, flags);
        unsupported(FROM_CHECKPOINT, "virDomainCheckpointCreateXML")
    }

    /// `virDomainCheckpointGetXMLDesc`.
    fn checkpoint_get_xml_desc(&self, dom: &DomainId, name: &str, flags: u32) -> Result<String> {
        let _ = (dom, name, flags);
        unsupported(FROM_CHECKPOINT, "virDomainCheckpointGetXMLDesc")
    }

    /// `virDomainListAllCheckpoints`: names, or only their number when `count_only`.
    fn list_all_checkpoints(&self, dom: &DomainId, flags: u32, count_only: bool) -> Result<Listing> {
        let _ = (dom, flags, count_only);
        unsupported(FROM_CHECKPOINT, "virDomainListAllCheckpoints")
    }

    /// `virDomainCheckpointListAllChildren`.
    fn checkpoint_list_all_children(
        &self,
        dom: &DomainId,
        name: &str,
        flags: u32,
        count_only: bool,
    ) -> Result<Listing> {
        let _ = (dom, name, flags, count_only);
        unsupported(FROM_CHECKPOINT, "virDomainCheckpointListAllChildren")
    }

    /// `virDomainCheckpointLookupByName`: checks that the checkpoint exists.
    fn checkpoint_lookup_by_name(&self, dom: &DomainId, name: &str, flags: u32) -> Result<()> {
        let _ = (dom, name, flags);
        unsupported(FROM_CHECKPOINT, "virDomainCheckpointLookupByName")
    }

    /// `virDomainCheckpointGetParent`: the parent's name.
    fn checkpoint_get_parent(&self, dom: &DomainId, name: &str, flags: u32) -> Result<String> {
        let _ = (dom, name, flags);
        unsupported(FROM_CHECKPOINT, "virDomainCheckpointGetParent")
    }

    /// `virDomainCheckpointDelete`.
    fn checkpoint_delete(&self, dom: &DomainId, name: &str, flags: u32) -> Result<()> {
        let _ = (dom, name, flags);
        unsupported(FROM_CHECKPOINT, "virDomainCheckpointDelete")
    }

    /// `virDomainSnapshotCreateXML`: returns the new snapshot's name.
    fn snapshot_create_xml(&self, dom: &DomainId, xml: &str, flags: u32) -> Result<String> {
        let _ = (dom, xml, flags);
        unsupported(FROM_SNAPSHOT, "virDomainSnapshotCreateXML")
    }

    /// `virDomainSnapshotGetXMLDesc`.
    fn snapshot_get_xml_desc(&self, dom: &DomainId, name: &str, flags: u32) -> Result<String> {
        let _ = (dom, name, flags);
        unsupported(FROM_SNAPSHOT, "virDomainSnapshotGetXMLDesc")
    }

    /// `virDomainListAllSnapshots`, `virDomainSnapshotListNames` and
    /// `virDomainSnapshotNum` (`api` names the caller): names, or only their number when
    /// `count_only`.
    fn list_all_snapshots(&self, dom: &DomainId, flags: u32, count_only: bool, api: &'static str) -> Result<Listing> {
        let _ = (dom, flags, count_only);
        unsupported(FROM_SNAPSHOT, api)
    }

    /// `virDomainSnapshotListAllChildren`, `virDomainSnapshotListChildrenNames` and
    /// `virDomainSnapshotNumChildren` (`api` names the caller).
    fn snapshot_list_all_children(
        &self,
        dom: &DomainId,
        name: &str,
        flags: u32,
        count_only: bool,
        api: &'static str,
    ) -> Result<Listing> {
        let _ = (dom, name, flags, count_only);
        unsupported(FROM_SNAPSHOT, api)
    }

    /// `virDomainSnapshotLookupByName`: checks that the snapshot exists.
    fn snapshot_lookup_by_name(&self, dom: &DomainId, name: &str, flags: u32) -> Result<()> {
        let _ = (dom, name, flags);
        unsupported(FROM_SNAPSHOT, "virDomainSnapshotLookupByName")
    }

    /// `virDomainHasCurrentSnapshot`.
    fn has_current_snapshot(&self, dom: &DomainId, flags: u32) -> Result<bool> {
        let _ = (dom, flags);
        unsupported(FROM_SNAPSHOT, "virDomainHasCurrentSnapshot")
    }

    /// `virDomainSnapshotGetParent`: the parent's name.
    fn snapshot_get_parent(&self, dom: &DomainId, name: &str, flags: u32) -> Result<String> {
        let _ = (dom, name, flags);
        unsupported(FROM_SNAPSHOT, "virDomainSnapshotGetParent")
    }

    /// `virDomainSnapshotCurrent`: the current snapshot's name.
    fn snapshot_current(&self, dom: &DomainId, flags: u32) -> Result<String> {
        let _ = (dom, flags);
        unsupported(FROM_SNAPSHOT, "virDomainSnapshotCurrent")
    }

    /// `virDomainSnapshotIsCurrent`.
    fn snapshot_is_current(&self, dom: &DomainId, name: &str, flags: u32) -> Result<bool> {
        let _ = (dom, name, flags);
        unsupported(FROM_SNAPSHOT, "virDomainSnapshotIsCurrent")
    }

    /// `virDomainSnapshotHasMetadata`.
    fn snapshot_has_metadata(&self, dom: &DomainId, name: &str, flags: u32) -> Result<bool> {
        let _ = (dom, name, flags);
        unsupported(FROM_SNAPSHOT, "virDomainSnapshotHasMetadata")
    }

    /// `virDomainRevertToSnapshot`.
    fn revert_to_snapshot(&self, dom: &DomainId, name: &str, flags: u32) -> Result<()> {
        let _ = (dom, name, flags);
        unsupported(FROM_SNAPSHOT, "virDomainRevertToSnapshot")
    }

    /// `virDomainSnapshotDelete`.
    fn snapshot_delete(&self, dom: &DomainId, name: &str, flags: u32) -> Result<()> {
        let _ = (dom, name, flags);
        unsupported(FROM_SNAPSHOT, "virDomainSnapshotDelete")
    }

    /// `virDomainBackupBegin`: starts the backup job and returns once it runs.
    fn backup_begin(&self, dom: &DomainId, backup_xml: &str, checkpoint_xml: Option<&str>, flags: u32) -> Result<()> {
        let _ = (dom, backup_xml, checkpoint_xml, flags);
        unsupported(FROM_DOMAIN, "virDomainBackupBegin")
    }

    /// `virDomainBackupGetXMLDesc`: the running backup's definition.
    fn backup_get_xml_desc(&self, dom: &DomainId, flags: u32) -> Result<String> {
        let _ = (dom, flags);
        unsupported(FROM_DOMAIN, "virDomainBackupGetXMLDesc")
    }

    /// `virDomainAbortJobFlags` (and `virDomainAbortJob` with flags 0).
    fn domain_abort_job(&self, dom: &DomainId, flags: u32) -> Result<()> {
        let _ = (dom, flags);
        unsupported(FROM_DOMAIN, "virDomainAbortJob")
    }

    /// `virDomainGetJobInfo`.
    fn domain_get_job_info(&self, dom: &DomainId) -> Result<JobInfo> {
        let _ = dom;
        unsupported(FROM_DOMAIN, "virDomainGetJobInfo")
    }

    /// `virDomainGetJobStats`.
    fn domain_get_job_stats(&self, dom: &DomainId, flags: u32) -> Result<JobStats> {
        let _ = (dom, flags);
        unsupported(FROM_DOMAIN, "virDomainGetJobStats")
    }

    /// `virDomainGetBlockJobInfo`: `None` when no block job runs on the disk (named by
    /// target or source path).
    fn domain_get_block_job_info(&self, dom: &DomainId, disk: &str, flags: u32) -> Result<Option<BlockJobInfo>> {
        let _ = (dom, disk, flags);
        unsupported(FROM_DOMAIN, "virDomainGetBlockJobInfo")
    }

    /// `virDomainBlockJobAbort`: ends the block job on a disk (named by target or path).
    fn domain_block_job_abort(&self, dom: &DomainId, disk: &str, flags: u32) -> Result<()> {
        let _ = (dom, disk, flags);
        unsupported(FROM_DOMAIN, "virDomainBlockJobAbort")
    }

    /// `virDomainGetBlockInfo`, for a disk named by target or source path.
    fn domain_get_block_info(&self, dom: &DomainId, disk: &str, flags: u32) -> Result<BlockInfo> {
        let _ = (dom, disk, flags);
        unsupported(FROM_DOMAIN, "virDomainGetBlockInfo")
    }

    /// `virDomainGetAutostart`.
    fn domain_get_autostart(&self, dom: &DomainId) -> Result<bool> {
        let _ = dom;
        unsupported(FROM_DOMAIN, "virDomainGetAutostart")
    }

    /// `virDomainSetAutostart`.
    fn domain_set_autostart(&self, dom: &DomainId, autostart: bool) -> Result<()> {
        let _ = (dom, autostart);
        unsupported(FROM_DOMAIN, "virDomainSetAutostart")
    }

    /// `virDomainFSFreeze`: the number of file systems frozen.
    fn domain_fs_freeze(&self, dom: &DomainId, mountpoints: &[String], flags: u32) -> Result<i32> {
        let _ = (dom, mountpoints, flags);
        unsupported(FROM_DOMAIN, "virDomainFSFreeze")
    }

    /// `virDomainFSThaw`: the number of file systems thawed.
    fn domain_fs_thaw(&self, dom: &DomainId, mountpoints: &[String], flags: u32) -> Result<i32> {
        let _ = (dom, mountpoints, flags);
        unsupported(FROM_DOMAIN, "virDomainFSThaw")
    }

    /// `virDomainQemuMonitorCommand` (libvirt-qemu): a command for the monitor of the
    /// process that owns the domain's disks, and its reply.
    fn domain_qemu_monitor_command(&self, dom: &DomainId, cmd: &str, flags: u32) -> Result<String> {
        let _ = (dom, cmd, flags);
        unsupported(FROM_QEMU_API, "virDomainQemuMonitorCommand")
    }

    /// `virDomainQemuAgentCommand` (libvirt-qemu): a command for the guest agent.
    fn domain_qemu_agent_command(&self, dom: &DomainId, cmd: &str, timeout: i32, flags: u32) -> Result<String> {
        let _ = (dom, cmd, timeout, flags);
        unsupported(FROM_QEMU_API, "virDomainQemuAgentCommand")
    }

    // Storage pools, volumes and networks. The drivers of this library manage none: a
    // listing is empty and a lookup finds nothing, as on a host without any.

    /// `virConnectListAllStoragePools` and the other pool listings: the pool names.
    fn connect_list_storage_pools(&self, flags: u32) -> Result<Vec<String>> {
        let _ = flags;
        Ok(Vec::new())
    }

    /// `virStoragePoolLookupBy*`: the pool's name.
    fn storage_pool_lookup(&self, key: PoolKey<'_>) -> Result<String> {
        Err(no_pool(Domain::VIR_FROM_STORAGE, key))
    }

    /// `virStorageVolLookupByKey` / `ByPath`: the volume's name.
    fn storage_vol_lookup(&self, key: VolumeKey<'_>) -> Result<String> {
        Err(no_volume(Domain::VIR_FROM_STORAGE, key))
    }

    /// `virConnectListAllNetworks` and the other network listings: the network names.
    fn connect_list_networks(&self, flags: u32) -> Result<Vec<String>> {
        let _ = flags;
        Ok(Vec::new())
    }

    /// `virNetworkLookupBy*`: the network's name.
    fn network_lookup(&self, key: NetworkKey<'_>) -> Result<String> {
        Err(no_network(Domain::VIR_FROM_NETWORK, key))
    }
}

/// libvirt's error for a storage pool that is not there, in error domain `from`.
pub fn no_pool(from: Domain, key: PoolKey<'_>) -> Error {
    let detail = match key {
        PoolKey::Name(name) => format!("no storage pool with matching name '{name}'"),
        PoolKey::Uuid(uuid) => format!("no storage pool with matching uuid '{uuid}'"),
        PoolKey::TargetPath(path) => format!("no storage pool with matching target path '{path}'"),
    };
    Error::new(from, Code::VIR_ERR_NO_STORAGE_POOL, detail)
}

/// libvirt's error for a storage volume that is not there.
pub fn no_volume(from: Domain, key: VolumeKey<'_>) -> Error {
    let detail = match key {
        VolumeKey::Key(key) => format!("no storage vol with matching key {key}"),
        VolumeKey::Path(path) => format!("no storage vol with matching path '{path}'"),
    };
    Error::new(from, Code::VIR_ERR_NO_STORAGE_VOL, detail)
}

/// libvirt's error for a network that is not there.
pub fn no_network(from: Domain, key: NetworkKey<'_>) -> Error {
    let detail = match key {
        NetworkKey::Name(name) => format!("no network with matching name '{name}'"),
        NetworkKey::Uuid(uuid) => format!("no network with matching uuid '{uuid}'"),
    };
    Error::new(from, Code::VIR_ERR_NO_NETWORK, detail)
}

/// The answer of a listing call: the names, or only how many there are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing {
    Names(Vec<String>),
    Count(usize),
}

/// The function of a driver behind a public call, as its unsupported-flags message names
/// it: `virDomainSnapshotNum` is `testDomainSnapshotNum` in the driver `test`.
pub fn driver_function(driver: &str, api: &str) -> String {
    format!("{driver}{}", api.strip_prefix("vir").unwrap_or(api))
}

/// Lists or counts (`count_only`) a domain's moments (`from` = None) or a moment's
/// children, with the generic list flags and, for kinds that filter on more than the
/// tree, the kind's filter: the one shape every moment listing entry point answers in.
pub fn moment_listing<D: crate::moment::list::Moment>(
    list: &crate::moment::list::MomentList<D>,
    from: Option<&str>,
    flags: u32,
    count_only: bool,
    filter: Option<&dyn Fn(&D) -> bool>,
) -> Result<Listing> {
    match (count_only, filter) {
        // Without a kind filter the tree counts without listing.
        (true, None) => list.count(from, flags).map(Listing::Count),
        (true, Some(accept)) => list.list(from, flags, accept).map(|names| Listing::Count(names.len())),
        (false, accept) => list.list(from, flags, |d| accept.is_none_or(|f| f(d))).map(Listing::Names),
    }
}

impl Listing {
    pub fn len(&self) -> usize {
        match self {
            Listing::Names(n) => n.len(),
            Listing::Count(c) => *c,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ListFlags::*;

    fn running() -> DomainFacts {
        DomainFacts { active: true, persistent: true, state: 1, ..Default::default() }
    }

    #[test]
    fn no_flags_accept_everything() {
        assert!(list_filter_accepts(0, &running()));
        assert!(list_filter_accepts(0, &DomainFacts::default()));
    }

    #[test]
    fn groups_combine_with_and_flags_within_a_group_with_or() {
        let r = running();
        let f = |fl: &[ListFlags]| fl.iter().fold(0, |a, &b| a | b as u32);
        assert!(list_filter_accepts(f(&[VIR_CONNECT_LIST_DOMAINS_ACTIVE]), &r));
        assert!(!list_filter_accepts(f(&[VIR_CONNECT_LIST_DOMAINS_INACTIVE]), &r));
        assert!(list_filter_accepts(f(&[VIR_CONNECT_LIST_DOMAINS_ACTIVE, VIR_CONNECT_LIST_DOMAINS_INACTIVE]), &r));
        assert!(!list_filter_accepts(f(&[VIR_CONNECT_LIST_DOMAINS_RUNNING, VIR_CONNECT_LIST_DOMAINS_INACTIVE]), &r));
        assert!(list_filter_accepts(f(&[VIR_CONNECT_LIST_DOMAINS_NO_CHECKPOINT]), &r));
        let with_cp = DomainFacts { checkpoints: 2, ..r };
        assert!(!list_filter_accepts(f(&[VIR_CONNECT_LIST_DOMAINS_NO_CHECKPOINT]), &with_cp));
        assert!(list_filter_accepts(f(&[VIR_CONNECT_LIST_DOMAINS_HAS_CHECKPOINT]), &with_cp));
        let off = DomainFacts { state: 5, persistent: true, ..Default::default() };
        assert!(list_filter_accepts(f(&[VIR_CONNECT_LIST_DOMAINS_SHUTOFF]), &off));
        assert!(!list_filter_accepts(f(&[VIR_CONNECT_LIST_DOMAINS_OTHER]), &off));
        let crashed = DomainFacts { state: 6, ..Default::default() };
        assert!(list_filter_accepts(f(&[VIR_CONNECT_LIST_DOMAINS_OTHER]), &crashed));
    }
}

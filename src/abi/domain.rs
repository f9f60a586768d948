//! Domain-level types of libvirt's `libvirt-domain.h`.

use std::ffi::{c_uchar, c_ulong, c_ulonglong, c_ushort};

/// An opaque handle naming one domain (a virtual machine definition) of a connection.
///
/// Handles are thin: a name, a UUID and an id plus a reference on the connection. They
/// are reference counted (`virDomainRef()`, `virDomainFree()`), never shared between
/// lookups, and stay valid after the domain they name goes away; calls through them then
/// fail with `VIR_ERR_NO_DOMAIN`.
///
/// Since: 0.0.1
pub struct _virDomain {
    _private: [u8; 0],
}

/// A domain object.
pub type virDomain = _virDomain;

/// A pointer to a domain object.
pub type virDomainPtr = *mut virDomain;

/// The state of a domain, as `virDomainGetState()` and `virDomainGetInfo()` report it.
///
/// Since: 0.0.1
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virDomainState {
    VIR_DOMAIN_NOSTATE = 0,
    VIR_DOMAIN_RUNNING = 1,
    VIR_DOMAIN_BLOCKED = 2,
    VIR_DOMAIN_PAUSED = 3,
    VIR_DOMAIN_SHUTDOWN = 4,
    VIR_DOMAIN_SHUTOFF = 5,
    VIR_DOMAIN_CRASHED = 6,
    VIR_DOMAIN_PMSUSPENDED = 7,
    #[cfg(vir_enum_sentinels)]
    VIR_DOMAIN_LAST = 8,
}

/// Why a domain has no state.
///
/// Since: 0.9.2
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virDomainNostateReason {
    VIR_DOMAIN_NOSTATE_UNKNOWN = 0,
    #[cfg(vir_enum_sentinels)]
    VIR_DOMAIN_NOSTATE_LAST = 1,
}

/// Why a domain is running.
///
/// Since: 0.9.2
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virDomainRunningReason {
    VIR_DOMAIN_RUNNING_UNKNOWN = 0,
    /// Started normally.
    VIR_DOMAIN_RUNNING_BOOTED = 1,
    VIR_DOMAIN_RUNNING_MIGRATED = 2,
    VIR_DOMAIN_RUNNING_RESTORED = 3,
    VIR_DOMAIN_RUNNING_FROM_SNAPSHOT = 4,
    VIR_DOMAIN_RUNNING_UNPAUSED = 5,
    VIR_DOMAIN_RUNNING_MIGRATION_CANCELED = 6,
    VIR_DOMAIN_RUNNING_SAVE_CANCELED = 7,
    VIR_DOMAIN_RUNNING_WAKEUP = 8,
    VIR_DOMAIN_RUNNING_CRASHED = 9,
    VIR_DOMAIN_RUNNING_POSTCOPY = 10,
    VIR_DOMAIN_RUNNING_POSTCOPY_FAILED = 11,
    #[cfg(vir_enum_sentinels)]
    VIR_DOMAIN_RUNNING_LAST = 12,
}

/// Why a domain is blocked.
///
/// Since: 0.9.2
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virDomainBlockedReason {
    VIR_DOMAIN_BLOCKED_UNKNOWN = 0,
    #[cfg(vir_enum_sentinels)]
    VIR_DOMAIN_BLOCKED_LAST = 1,
}

/// Why a domain is paused.
///
/// Since: 0.9.2
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virDomainPausedReason {
    VIR_DOMAIN_PAUSED_UNKNOWN = 0,
    VIR_DOMAIN_PAUSED_USER = 1,
    VIR_DOMAIN_PAUSED_MIGRATION = 2,
    VIR_DOMAIN_PAUSED_SAVE = 3,
    VIR_DOMAIN_PAUSED_DUMP = 4,
    VIR_DOMAIN_PAUSED_IOERROR = 5,
    VIR_DOMAIN_PAUSED_WATCHDOG = 6,
    VIR_DOMAIN_PAUSED_FROM_SNAPSHOT = 7,
    VIR_DOMAIN_PAUSED_SHUTTING_DOWN = 8,
    VIR_DOMAIN_PAUSED_SNAPSHOT = 9,
    VIR_DOMAIN_PAUSED_CRASHED = 10,
    VIR_DOMAIN_PAUSED_STARTING_UP = 11,
    VIR_DOMAIN_PAUSED_POSTCOPY = 12,
    VIR_DOMAIN_PAUSED_POSTCOPY_FAILED = 13,
    #[cfg(vir_enum_sentinels)]
    VIR_DOMAIN_PAUSED_LAST = 14,
}

/// Why a domain is shutting down.
///
/// Since: 0.9.2
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virDomainShutdownReason {
    VIR_DOMAIN_SHUTDOWN_UNKNOWN = 0,
    VIR_DOMAIN_SHUTDOWN_USER = 1,
    #[cfg(vir_enum_sentinels)]
    VIR_DOMAIN_SHUTDOWN_LAST = 2,
}

/// Why a domain is shut off.
///
/// Since: 0.9.2
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virDomainShutoffReason {
    VIR_DOMAIN_SHUTOFF_UNKNOWN = 0,
    /// Stopped by `virDomainShutdown()`.
    VIR_DOMAIN_SHUTOFF_SHUTDOWN = 1,
    /// Stopped by `virDomainDestroy()`.
    VIR_DOMAIN_SHUTOFF_DESTROYED = 2,
    VIR_DOMAIN_SHUTOFF_CRASHED = 3,
    VIR_DOMAIN_SHUTOFF_MIGRATED = 4,
    VIR_DOMAIN_SHUTOFF_SAVED = 5,
    /// The process that owned the domain's disks failed.
    VIR_DOMAIN_SHUTOFF_FAILED = 6,
    VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT = 7,
    VIR_DOMAIN_SHUTOFF_DAEMON = 8,
    #[cfg(vir_enum_sentinels)]
    VIR_DOMAIN_SHUTOFF_LAST = 9,
}

/// Why a domain crashed.
///
/// Since: 0.9.2
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virDomainCrashedReason {
    VIR_DOMAIN_CRASHED_UNKNOWN = 0,
    VIR_DOMAIN_CRASHED_PANICKED = 1,
    #[cfg(vir_enum_sentinels)]
    VIR_DOMAIN_CRASHED_LAST = 2,
}

/// Why a domain is suspended by power management.
///
/// Since: 0.9.11
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virDomainPMSuspendedReason {
    VIR_DOMAIN_PMSUSPENDED_UNKNOWN = 0,
    #[cfg(vir_enum_sentinels)]
    VIR_DOMAIN_PMSUSPENDED_LAST = 1,
}

/// Basic facts about a domain, filled in by `virDomainGetInfo()`.
///
/// Since: 0.0.1
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct _virDomainInfo {
    /// A `virDomainState`.
    pub state: c_uchar,
    /// Maximum memory in KiB.
    pub maxMem: c_ulong,
    /// Current memory in KiB.
    pub memory: c_ulong,
    /// Number of virtual CPUs.
    pub nrVirtCpu: c_ushort,
    /// CPU time used, in nanoseconds.
    pub cpuTime: c_ulonglong,
}

/// Domain facts.
pub type virDomainInfo = _virDomainInfo;

/// A pointer to domain facts.
pub type virDomainInfoPtr = *mut virDomainInfo;

/// Flags for `virDomainGetXMLDesc()`.
///
/// Since: 0.9.4
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virDomainXMLFlags {
    /// Include security-sensitive data (refused on read-only connections).
    VIR_DOMAIN_XML_SECURE = 1 << 0,
    /// Describe the persistent definition instead of the live one.
    VIR_DOMAIN_XML_INACTIVE = 1 << 1,
    /// Update guest CPU requirements from the host (not supported here).
    VIR_DOMAIN_XML_UPDATE_CPU = 1 << 2,
    /// Describe the domain in a form suitable for migration.
    VIR_DOMAIN_XML_MIGRATABLE = 1 << 3,
}

/// Filters for `virConnectListAllDomains()`. Within each group (active/inactive,
/// persistent/transient, the states, managed save, autostart, snapshots, checkpoints) a
/// domain passes when it matches any flag of the group; a group with no flag set does
/// not filter.
///
/// Since: 0.9.13
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virConnectListAllDomainsFlags {
    VIR_CONNECT_LIST_DOMAINS_ACTIVE = 1 << 0,
    VIR_CONNECT_LIST_DOMAINS_INACTIVE = 1 << 1,
    VIR_CONNECT_LIST_DOMAINS_PERSISTENT = 1 << 2,
    VIR_CONNECT_LIST_DOMAINS_TRANSIENT = 1 << 3,
    VIR_CONNECT_LIST_DOMAINS_RUNNING = 1 << 4,
    VIR_CONNECT_LIST_DOMAINS_PAUSED = 1 << 5,
    VIR_CONNECT_LIST_DOMAINS_SHUTOFF = 1 << 6,
    VIR_CONNECT_LIST_DOMAINS_OTHER = 1 << 7,
    VIR_CONNECT_LIST_DOMAINS_MANAGEDSAVE = 1 << 8,
    VIR_CONNECT_LIST_DOMAINS_NO_MANAGEDSAVE = 1 << 9,
    VIR_CONNECT_LIST_DOMAINS_AUTOSTART = 1 << 10,
    VIR_CONNECT_LIST_DOMAINS_NO_AUTOSTART = 1 << 11,
    VIR_CONNECT_LIST_DOMAINS_HAS_SNAPSHOT = 1 << 12,
    VIR_CONNECT_LIST_DOMAINS_NO_SNAPSHOT = 1 << 13,
    VIR_CONNECT_LIST_DOMAINS_HAS_CHECKPOINT = 1 << 14,
    VIR_CONNECT_LIST_DOMAINS_NO_CHECKPOINT = 1 << 15,
}

/// Flags for `virDomainDefineXMLFlags()`.
///
/// Since: 7.7.0
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virDomainDefineFlags {
    /// Validate the XML document against the schema.
    VIR_DOMAIN_DEFINE_VALIDATE = 1 << 0,
}

/// Flags for `virDomainUndefineFlags()`.
///
/// Since: 0.9.4
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virDomainUndefineFlagsValues {
    /// Also remove any managed save image.
    VIR_DOMAIN_UNDEFINE_MANAGED_SAVE = 1 << 0,
    /// Also remove snapshot metadata.
    VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA = 1 << 1,
    /// Also remove NVRAM files.
    VIR_DOMAIN_UNDEFINE_NVRAM = 1 << 2,
    /// Keep NVRAM files.
    VIR_DOMAIN_UNDEFINE_KEEP_NVRAM = 1 << 3,
    /// Also remove checkpoint metadata (the bitmaps stay in the images).
    VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA = 1 << 4,
    /// Also remove TPM state.
    VIR_DOMAIN_UNDEFINE_TPM = 1 << 5,
    /// Keep TPM state.
    VIR_DOMAIN_UNDEFINE_KEEP_TPM = 1 << 6,
}

/// Flags for `virDomainCreateWithFlags()`.
///
/// Since: 0.8.2
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virDomainCreateFlags {
    VIR_DOMAIN_NONE = 0,
    /// Start with the CPUs paused.
    VIR_DOMAIN_START_PAUSED = 1 << 0,
    /// Stop the domain when the connection that started it closes.
    VIR_DOMAIN_START_AUTODESTROY = 1 << 1,
    /// Avoid the file system cache when restoring.
    VIR_DOMAIN_START_BYPASS_CACHE = 1 << 2,
    /// Boot, discarding any managed save image.
    VIR_DOMAIN_START_FORCE_BOOT = 1 << 3,
    /// Validate the XML document against the schema.
    VIR_DOMAIN_START_VALIDATE = 1 << 4,
    /// Re-initialise NVRAM from its template.
    VIR_DOMAIN_START_RESET_NVRAM = 1 << 5,
}

/// Flags for `virDomainDestroyFlags()`.
///
/// Since: 0.9.10
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virDomainDestroyFlagsValues {
    VIR_DOMAIN_DESTROY_DEFAULT = 0,
    /// Ask the process to stop instead of killing it.
    VIR_DOMAIN_DESTROY_GRACEFUL = 1 << 0,
    /// Remove the domain's log files.
    VIR_DOMAIN_DESTROY_REMOVE_LOGS = 1 << 1,
}

/// Flags for `virDomainShutdownFlags()`.
///
/// Since: 0.9.10
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virDomainShutdownFlagValues {
    VIR_DOMAIN_SHUTDOWN_DEFAULT = 0,
    VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN = 1 << 0,
    VIR_DOMAIN_SHUTDOWN_GUEST_AGENT = 1 << 1,
    VIR_DOMAIN_SHUTDOWN_INITCTL = 1 << 2,
    VIR_DOMAIN_SHUTDOWN_SIGNAL = 1 << 3,
    VIR_DOMAIN_SHUTDOWN_PARAVIRT = 1 << 4,
}

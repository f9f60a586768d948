//! Jobs, block jobs and backups (`libvirt-domain.h`).

use std::ffi::{c_int, c_ulong, c_ulonglong};

/// Flags for `virDomainBackupBegin()`.
///
/// Since: 6.0.0
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virDomainBackupBeginFlags {
    /// Use the target or scratch files the caller created; do not create or delete them.
    VIR_DOMAIN_BACKUP_BEGIN_REUSE_EXTERNAL = 1 << 0,
}

/// The kind (and, once over, the outcome) of a domain job.
///
/// Since: 0.7.7
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virDomainJobType {
    /// No job.
    VIR_DOMAIN_JOB_NONE = 0,
    /// A job with a known end.
    VIR_DOMAIN_JOB_BOUNDED = 1,
    /// A job whose end is not known in advance (backups are).
    VIR_DOMAIN_JOB_UNBOUNDED = 2,
    VIR_DOMAIN_JOB_COMPLETED = 3,
    VIR_DOMAIN_JOB_FAILED = 4,
    VIR_DOMAIN_JOB_CANCELLED = 5,
    #[cfg(vir_enum_sentinels)]
    VIR_DOMAIN_JOB_LAST = 6,
}

/// What a job does (the `operation` statistic).
///
/// Since: 3.3.0
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virDomainJobOperation {
    VIR_DOMAIN_JOB_OPERATION_UNKNOWN = 0,
    VIR_DOMAIN_JOB_OPERATION_START = 1,
    VIR_DOMAIN_JOB_OPERATION_SAVE = 2,
    VIR_DOMAIN_JOB_OPERATION_RESTORE = 3,
    VIR_DOMAIN_JOB_OPERATION_MIGRATION_IN = 4,
    VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT = 5,
    VIR_DOMAIN_JOB_OPERATION_SNAPSHOT = 6,
    VIR_DOMAIN_JOB_OPERATION_SNAPSHOT_REVERT = 7,
    VIR_DOMAIN_JOB_OPERATION_DUMP = 8,
    VIR_DOMAIN_JOB_OPERATION_BACKUP = 9,
    VIR_DOMAIN_JOB_OPERATION_SNAPSHOT_DELETE = 10,
    #[cfg(vir_enum_sentinels)]
    VIR_DOMAIN_JOB_OPERATION_LAST = 11,
}

/// Flags for `virDomainGetJobStats()`.
///
/// Since: 1.2.9
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virDomainGetJobStatsFlags {
    /// Statistics of the last completed job (consumed unless KEEP_COMPLETED).
    VIR_DOMAIN_JOB_STATS_COMPLETED = 1 << 0,
    /// Keep the completed job's statistics after reading them.
    VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED = 1 << 1,
}

/// Flags for `virDomainAbortJobFlags()`.
///
/// Since: 8.5.0
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virDomainAbortJobFlagsValues {
    /// Interrupt post-copy migration (not applicable to backups).
    VIR_DOMAIN_ABORT_JOB_POSTCOPY = 1 << 0,
}

/// Progress of a domain job, filled in by `virDomainGetJobInfo()`.
///
/// Since: 0.7.7
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct _virDomainJobInfo {
    /// A `virDomainJobType`.
    pub r#type: c_int,
    /// Milliseconds since the job started.
    pub timeElapsed: c_ulonglong,
    pub timeRemaining: c_ulonglong,
    pub dataTotal: c_ulonglong,
    pub dataProcessed: c_ulonglong,
    pub dataRemaining: c_ulonglong,
    pub memTotal: c_ulonglong,
    pub memProcessed: c_ulonglong,
    pub memRemaining: c_ulonglong,
    pub fileTotal: c_ulonglong,
    pub fileProcessed: c_ulonglong,
    pub fileRemaining: c_ulonglong,
}

/// Job progress.
pub type virDomainJobInfo = _virDomainJobInfo;

/// A pointer to job progress.
pub type virDomainJobInfoPtr = *mut virDomainJobInfo;

/// The kind of a block job.
///
/// Since: 0.9.4
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virDomainBlockJobType {
    VIR_DOMAIN_BLOCK_JOB_TYPE_UNKNOWN = 0,
    VIR_DOMAIN_BLOCK_JOB_TYPE_PULL = 1,
    VIR_DOMAIN_BLOCK_JOB_TYPE_COPY = 2,
    VIR_DOMAIN_BLOCK_JOB_TYPE_COMMIT = 3,
    VIR_DOMAIN_BLOCK_JOB_TYPE_ACTIVE_COMMIT = 4,
    /// The per-disk part of a backup.
    VIR_DOMAIN_BLOCK_JOB_TYPE_BACKUP = 5,
    #[cfg(vir_enum_sentinels)]
    VIR_DOMAIN_BLOCK_JOB_TYPE_LAST = 6,
}

/// Flags for `virDomainGetBlockJobInfo()`.
///
/// Since: 1.2.9
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virDomainBlockJobInfoFlags {
    /// Report the bandwidth in bytes per second instead of MiB per second.
    VIR_DOMAIN_BLOCK_JOB_INFO_BANDWIDTH_BYTES = 1 << 0,
}

/// A position in a block job.
///
/// Since: 0.9.4
pub type virDomainBlockJobCursor = c_ulonglong;

/// Progress of a block job, filled in by `virDomainGetBlockJobInfo()`.
///
/// Since: 0.9.4
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct _virDomainBlockJobInfo {
    /// A `virDomainBlockJobType`.
    pub r#type: c_int,
    /// The bandwidth limit (0 = none).
    pub bandwidth: c_ulong,
    /// Progress so far.
    pub cur: virDomainBlockJobCursor,
    /// Progress at the end.
    pub end: virDomainBlockJobCursor,
}

/// Block job progress.
pub type virDomainBlockJobInfo = _virDomainBlockJobInfo;

/// A pointer to block job progress.
pub type virDomainBlockJobInfoPtr = *mut virDomainBlockJobInfo;

/// Job statistic: the `virDomainJobOperation` (INT).
///
/// Since: 3.3.0
pub const VIR_DOMAIN_JOB_OPERATION: &str = "operation";
/// Job statistic: milliseconds since the job started (ULLONG).
///
/// Since: 1.0.3
pub const VIR_DOMAIN_JOB_TIME_ELAPSED: &str = "time_elapsed";
/// Job statistic: bytes to copy (ULLONG).
///
/// Since: 1.0.3
pub const VIR_DOMAIN_JOB_DISK_TOTAL: &str = "disk_total";
/// Job statistic: bytes copied (ULLONG).
///
/// Since: 1.0.3
pub const VIR_DOMAIN_JOB_DISK_PROCESSED: &str = "disk_processed";
/// Job statistic: bytes left to copy (ULLONG).
///
/// Since: 1.0.3
pub const VIR_DOMAIN_JOB_DISK_REMAINING: &str = "disk_remaining";
/// Job statistic: whether a finished job succeeded (BOOLEAN).
///
/// Since: 6.0.0
pub const VIR_DOMAIN_JOB_SUCCESS: &str = "success";
/// Job statistic: why a job failed (STRING).
///
/// Since: 6.3.0
pub const VIR_DOMAIN_JOB_ERRMSG: &str = "errmsg";
/// Job statistic: scratch bytes used by a pull backup (ULLONG).
///
/// Since: 6.0.0
pub const VIR_DOMAIN_JOB_DISK_TEMP_USED: &str = "disk_temp_used";
/// Job statistic: scratch bytes available to a pull backup (ULLONG).
///
/// Since: 6.0.0
pub const VIR_DOMAIN_JOB_DISK_TEMP_TOTAL: &str = "disk_temp_total";

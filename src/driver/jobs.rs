//! Backup jobs as libvirt presents them, shared by both drivers: how a request is checked
//! and completed before any disk is touched ([`prepare_begin`]), what the job calls report
//! while a job runs and after it ends ([`Finished`], [`JobSlot`]), and the job errors.
//!
//! A domain has at most one backup job. While it runs, `virDomainGetJobStats()` reports
//! `UNBOUNDED` with live figures; when it ends, its final figures are kept until read
//! with `VIR_DOMAIN_JOB_STATS_COMPLETED` (and kept on with `KEEP_COMPLETED`) and sent
//! with `VIR_DOMAIN_EVENT_ID_JOB_COMPLETED`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::checkpoints::{self, Checkpoints, Prepared};
use super::events::{DomainEvent, EventKind};
use super::{DomainId, JobInfo, JobStats, TypedParams, TypedValue};
use crate::abi::{
    VIR_DOMAIN_JOB_DISK_PROCESSED, VIR_DOMAIN_JOB_DISK_REMAINING, VIR_DOMAIN_JOB_DISK_TEMP_TOTAL,
    VIR_DOMAIN_JOB_DISK_TEMP_USED, VIR_DOMAIN_JOB_DISK_TOTAL, VIR_DOMAIN_JOB_ERRMSG, VIR_DOMAIN_JOB_OPERATION,
    VIR_DOMAIN_JOB_SUCCESS, VIR_DOMAIN_JOB_TIME_ELAPSED, virConnectDomainEventBlockJobStatus as BlockJobStatus,
    virDomainAbortJobFlagsValues as AbortFlags, virDomainBackupBeginFlags as BeginFlags,
    virDomainBlockJobInfoFlags as BlockJobInfoFlags, virDomainBlockJobType, virDomainGetJobStatsFlags as StatsFlags,
    virDomainJobOperation, virDomainJobType,
};
use crate::conf::backup::{BackupDef, BackupMode, DiskBackupMode, DiskState, Transport};
use crate::conf::checkpoint::{CheckpointDef, DiskCheckpointKind};
use crate::conf::domain::DomainDef;
use crate::error::{Code, Domain, Error, Result};

/// The flags `virDomainBackupBegin()` accepts.
pub const BEGIN_FLAGS: u32 = BeginFlags::VIR_DOMAIN_BACKUP_BEGIN_REUSE_EXTERNAL as u32;

/// The flags `virDomainGetJobStats()` accepts.
pub const STATS_FLAGS: u32 =
    StatsFlags::VIR_DOMAIN_JOB_STATS_COMPLETED as u32 | StatsFlags::VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED as u32;

/// The flags `virDomainAbortJobFlags()` accepts.
pub const ABORT_FLAGS: u32 = AbortFlags::VIR_DOMAIN_ABORT_JOB_POSTCOPY as u32;

/// The flags `virDomainGetBlockJobInfo()` accepts.
pub const BLOCK_JOB_INFO_FLAGS: u32 = BlockJobInfoFlags::VIR_DOMAIN_BLOCK_JOB_INFO_BANDWIDTH_BYTES as u32;

/// The block job type every disk of a backup shows.
pub const BACKUP_BLOCK_JOB: i32 = virDomainBlockJobType::VIR_DOMAIN_BLOCK_JOB_TYPE_BACKUP as i32;

/// The error QEMU gives a copy that was cancelled; libvirt passes it on even when
/// cancelling is how a pull backup succeeds.
pub const CANCELED: &str = "Operation canceled";

/// POSTCOPY aborts a post-copy migration, which a backup is not.
pub fn check_abort_flags(from: Domain, flags: u32) -> Result<()> {
    if flags & AbortFlags::VIR_DOMAIN_ABORT_JOB_POSTCOPY as u32 != 0 {
        return Err(Error::new(
            from,
            Code::VIR_ERR_OPERATION_INVALID,
            "current job is not outgoing migration in post-copy mode",
        ));
    }
    Ok(())
}

/// The target of the disk `virDomainGetBlockJobInfo()` names by target or source path.
pub fn block_job_disk(from: Domain, domain: &DomainDef, name: &str) -> Result<String> {
    domain
        .disk_by_target_or_path(name)
        .map(|d| d.target.clone())
        .ok_or_else(|| Error::new(from, Code::VIR_ERR_INVALID_ARG, format!("disk '{name}' not found in domain")))
}

/// The flags of `virDomainBlockJobAbort()`.
pub const BLOCK_JOB_ABORT_FLAGS: u32 = crate::abi::virDomainBlockJobAbortFlags::VIR_DOMAIN_BLOCK_JOB_ABORT_ASYNC as u32
    | crate::abi::virDomainBlockJobAbortFlags::VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT as u32;

/// The checks of `virDomainBlockJobAbort()` on a disk (`target`) that may take part in
/// a backup (`in_backup`): a backup's block job ends only by ending the backup, and has
/// nothing to pivot to. Returns whether the caller waits for the end (no ASYNC flag).
pub fn check_block_job_abort(from: Domain, flags: u32, target: &str, in_backup: bool) -> Result<bool> {
    use crate::abi::virDomainBlockJobAbortFlags as F;
    if !in_backup {
        return Err(Error::new(
            from,
            Code::VIR_ERR_INVALID_ARG,
            format!("disk {target} does not have an active block job"),
        ));
    }
    if flags & F::VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT as u32 != 0 {
        return Err(Error::new(from, Code::VIR_ERR_OPERATION_INVALID, "job type 'backup' does not support pivot"));
    }
    Ok(flags & F::VIR_DOMAIN_BLOCK_JOB_ABORT_ASYNC as u32 == 0)
}

/// `no job is active on the domain` (an abort with nothing to abort).
pub fn no_active_job(from: Domain) -> Error {
    Error::new(from, Code::VIR_ERR_OPERATION_INVALID, "no job is active on the domain")
}

/// `no domain backup job present` (`virDomainBackupGetXMLDesc()` without a backup).
pub fn no_backup(from: Domain) -> Error {
    Error::new(from, Code::VIR_ERR_NO_DOMAIN_BACKUP, "no domain backup job present")
}

/// `another backup job is already running`.
pub fn already_running(from: Domain) -> Error {
    Error::new(from, Code::VIR_ERR_OPERATION_INVALID, "another backup job is already running")
}

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Completed,
    Failed,
    Cancelled,
}

impl Outcome {
    /// The `virDomainJobType` of a job that ended this way.
    pub fn job_type(self) -> i32 {
        match self {
            Outcome::Completed => virDomainJobType::VIR_DOMAIN_JOB_COMPLETED as i32,
            Outcome::Failed => virDomainJobType::VIR_DOMAIN_JOB_FAILED as i32,
            Outcome::Cancelled => virDomainJobType::VIR_DOMAIN_JOB_CANCELLED as i32,
        }
    }

    /// The final state of each disk's copy.
    pub fn disk_state(self) -> DiskState {
        match self {
            Outcome::Completed => DiskState::Complete,
            Outcome::Failed => DiskState::Failed,
            Outcome::Cancelled => DiskState::Cancelled,
        }
    }

    /// The status the disks' block job events carry.
    pub fn block_job_status(self) -> i32 {
        match self {
            Outcome::Completed => BlockJobStatus::VIR_DOMAIN_BLOCK_JOB_COMPLETED as i32,
            Outcome::Failed => BlockJobStatus::VIR_DOMAIN_BLOCK_JOB_FAILED as i32,
            Outcome::Cancelled => BlockJobStatus::VIR_DOMAIN_BLOCK_JOB_CANCELED as i32,
        }
    }

    /// How a job of `mode` ends when every disk's copy ended (`failed` if one failed,
    /// `cancelled` if one was cancelled). Cancelling is how a pull backup finishes, so
    /// it counts as success there.
    pub fn of(mode: BackupMode, failed: bool, cancelled: bool) -> Outcome {
        match (failed, cancelled, mode) {
            (true, _, _) => Outcome::Failed,
            (false, true, BackupMode::Push) => Outcome::Cancelled,
            _ => Outcome::Completed,
        }
    }
}

/// Bytes a backup has to move: copied by a push backup, held in scratch by a pull one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Progress {
    /// Push: bytes to copy, over all disks.
    pub total: u64,
    /// Push: bytes copied so far.
    pub processed: u64,
    /// Pull: scratch bytes in use.
    pub temp_used: u64,
    /// Pull: scratch bytes available (the sum of the disks' sizes).
    pub temp_total: u64,
}

impl Progress {
    pub fn add(&mut self, other: Progress) {
        self.total += other.total;
        self.processed += other.processed;
        self.temp_used += other.temp_used;
        self.temp_total += other.temp_total;
    }
}

/// The typed parameters libvirt reports for a backup job, in its order: operation,
/// elapsed time, the push or pull figures when there are any, then for a finished job
/// `success` and the first error.
pub fn stats_params(
    mode: BackupMode,
    elapsed_ms: u64,
    progress: &Progress,
    end: Option<(Outcome, Option<&str>)>,
) -> TypedParams {
    let mut params = vec![
        (
            VIR_DOMAIN_JOB_OPERATION.to_string(),
            TypedValue::Int(virDomainJobOperation::VIR_DOMAIN_JOB_OPERATION_BACKUP as i32),
        ),
        (VIR_DOMAIN_JOB_TIME_ELAPSED.to_string(), TypedValue::ULLong(elapsed_ms)),
    ];
    match mode {
        BackupMode::Push if progress.total > 0 || progress.processed > 0 => {
            params.push((VIR_DOMAIN_JOB_DISK_TOTAL.to_string(), TypedValue::ULLong(progress.total)));
            params.push((VIR_DOMAIN_JOB_DISK_PROCESSED.to_string(), TypedValue::ULLong(progress.processed)));
            params.push((
                VIR_DOMAIN_JOB_DISK_REMAINING.to_string(),
                TypedValue::ULLong(progress.total.saturating_sub(progress.processed)),
            ));
        }
        BackupMode::Pull if progress.temp_used > 0 || progress.temp_total > 0 => {
            params.push((VIR_DOMAIN_JOB_DISK_TEMP_USED.to_string(), TypedValue::ULLong(progress.temp_used)));
            params.push((VIR_DOMAIN_JOB_DISK_TEMP_TOTAL.to_string(), TypedValue::ULLong(progress.temp_total)));
        }
        _ => {}
    }
    if let Some((outcome, error)) = end {
        params.push((VIR_DOMAIN_JOB_SUCCESS.to_string(), TypedValue::Boolean(outcome == Outcome::Completed)));
        if let Some(error) = error {
            params.push((VIR_DOMAIN_JOB_ERRMSG.to_string(), TypedValue::String(error.to_string())));
        }
    }
    params
}

/// `virDomainGetJobInfo()`'s view: the push figures as file (and data) bytes; a pull
/// backup reports none.
pub fn job_info(job_type: i32, mode: BackupMode, elapsed_ms: u64, progress: &Progress) -> JobInfo {
    let (total, processed) = match mode {
        BackupMode::Push => (progress.total, progress.processed),
        BackupMode::Pull => (0, 0),
    };
    let remaining = total.saturating_sub(processed);
    JobInfo {
        job_type,
        elapsed_ms,
        data_total: total,
        data_processed: processed,
        data_remaining: remaining,
        file_total: total,
        file_processed: processed,
        file_remaining: remaining,
    }
}

/// The statistics of a running job.
pub fn active_stats(mode: BackupMode, elapsed_ms: u64, progress: &Progress) -> JobStats {
    JobStats {
        job_type: virDomainJobType::VIR_DOMAIN_JOB_UNBOUNDED as i32,
        params: stats_params(mode, elapsed_ms, progress, None),
    }
}

/// The final figures of a job that ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finished {
    pub outcome: Outcome,
    #[serde(with = "mode_name")]
    pub mode: BackupMode,
    pub elapsed_ms: u64,
    pub progress: Progress,
    /// The first error a disk's copy reported.
    pub error: Option<String>,
}

impl Finished {
    pub fn stats(&self) -> JobStats {
        JobStats {
            job_type: self.outcome.job_type(),
            params: stats_params(
                self.mode,
                self.elapsed_ms,
                &self.progress,
                Some((self.outcome, self.error.as_deref())),
            ),
        }
    }

    pub fn info(&self) -> JobInfo {
        job_info(self.outcome.job_type(), self.mode, self.elapsed_ms, &self.progress)
    }

    /// The events a job's end raises: each backed-up disk's block job, then the job.
    pub fn events(
        &self,
        driver: usize,
        domain: &DomainId,
        def: &BackupDef,
        paths: &[(String, String)],
    ) -> Vec<DomainEvent> {
        let mut out = Vec::new();
        for disk in def.disks.iter().filter(|d| d.backup) {
            let path = paths.iter().find(|(t, _)| *t == disk.name).map(|(_, p)| p.clone()).unwrap_or_default();
            out.push(DomainEvent {
                driver,
                domain: domain.clone(),
                kind: EventKind::BlockJob {
                    target: disk.name.clone(),
                    path,
                    job_type: virDomainBlockJobType::VIR_DOMAIN_BLOCK_JOB_TYPE_BACKUP as i32,
                    status: self.outcome.block_job_status(),
                },
            });
        }
        out.push(DomainEvent { driver, domain: domain.clone(), kind: EventKind::JobCompleted(self.stats().params) });
        out
    }
}

/// A backup mode kept as its XML name.
mod mode_name {
    use super::BackupMode;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(mode: &BackupMode, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(mode.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BackupMode, D::Error> {
        match String::deserialize(d)?.as_str() {
            "pull" => Ok(BackupMode::Pull),
            _ => Ok(BackupMode::Push),
        }
    }
}

/// A domain's job bookkeeping as the job calls see it: the running job's figures, if
/// one runs, and the last finished job's.
#[derive(Debug, Clone, Default)]
pub struct JobSlot {
    pub completed: Option<Finished>,
}

impl JobSlot {
    /// `virDomainGetJobStats()`: the running job (`active`), or with COMPLETED the last
    /// finished one, which reading forgets unless KEEP_COMPLETED is given. Nothing to
    /// report is type NONE with no parameters.
    pub fn stats(&mut self, active: Option<JobStats>, flags: u32) -> JobStats {
        let completed = flags & StatsFlags::VIR_DOMAIN_JOB_STATS_COMPLETED as u32 != 0;
        let keep = flags & StatsFlags::VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED as u32 != 0;
        let none = JobStats { job_type: virDomainJobType::VIR_DOMAIN_JOB_NONE as i32, params: Vec::new() };
        if !completed {
            return active.unwrap_or(none);
        }
        if active.is_some() {
            return none;
        }
        let stats = self.completed.as_ref().map_or(none, Finished::stats);
        if !keep {
            self.completed = None;
        }
        stats
    }
}

/// A checked and completed backup request.
#[derive(Debug)]
pub struct Begin {
    pub def: BackupDef,
    /// The checkpoint to create at the backup's instant.
    pub checkpoint: Option<Prepared>,
}

/// What a backup begin is checked against.
#[derive(Debug, Clone, Copy)]
pub struct BeginContext<'a> {
    pub from: Domain,
    /// The driver function, named in flag errors.
    pub api: &'a str,
    pub domain: &'a Arc<DomainDef>,
    pub checkpoints: &'a Checkpoints,
    /// A backup job runs already.
    pub busy: bool,
    pub now: i64,
    /// TLS for pull backups is configured (libvirt's `backup_tls_x509_cert_dir`).
    pub tls_configured: bool,
}

/// Checks a `virDomainBackupBegin()` request in libvirt's order and completes it, before
/// any disk is touched: flags, both XML documents, disk alignment (generated stores are
/// named after the new checkpoint, else the time), one job per domain, the pull server
/// (its TLS configured when asked for), at least one disk, store formats (qcow2 by
/// default; pull needs qcow2), the incremental checkpoints, and the export names of a
/// pull backup.
pub fn prepare_begin(
    ctx: &BeginContext<'_>,
    flags: u32,
    backup_xml: &str,
    checkpoint_xml: Option<&str>,
) -> Result<Begin> {
    let BeginContext { from, api, domain, checkpoints, busy, now, tls_configured } = *ctx;
    Error::check_flags(from, api, flags, BEGIN_FLAGS)?;
    let mut def = BackupDef::parse(backup_xml)?;
    let checkpoint = match checkpoint_xml {
        Some(xml) => {
            let prepared = checkpoints.prepare_create(CheckpointDef::parse(xml, false)?, domain, now)?;
            if checkpoints.get(&prepared.def.name).is_ok() {
                return Err(checkpoints::tree_error(crate::moment::TreeError::Exists(prepared.def.name.clone()), from));
            }
            Some(prepared)
        }
        None => None,
    };
    let suffix = checkpoint.as_ref().map_or_else(|| now.to_string(), |c| c.def.name.clone());
    def.align_disks(domain, &suffix)?;
    if busy {
        return Err(already_running(from));
    }
    if def.mode == BackupMode::Pull {
        let server = def.server.get_or_insert(crate::conf::backup::BackupServer {
            transport: Transport::Tcp { name: "localhost".to_string(), port: None },
            tls: None,
        });
        if matches!(server.transport, Transport::Tcp { port: None, .. }) {
            return Err(Error::new(
                from,
                Code::VIR_ERR_OPERATION_UNSUPPORTED,
                "<domainbackup> must specify TCP port for now",
            ));
        }
        if server.tls == Some(true) && !tls_configured {
            return Err(Error::new(from, Code::VIR_ERR_OPERATION_INVALID, "backup TLS directory not configured"));
        }
    }
    if !def.disks.iter().any(|d| d.backup) {
        return Err(Error::new(from, Code::VIR_ERR_CONFIG_UNSUPPORTED, "no disks selected for backup"));
    }
    let mode = def.mode;
    for (index, disk) in def.disks.iter_mut().filter(|d| d.backup).enumerate() {
        let format = disk.format.get_or_insert_with(|| "qcow2".to_string());
        if mode == BackupMode::Pull && format != "qcow2" {
            return Err(Error::new(
                from,
                Code::VIR_ERR_CONFIG_UNSUPPORTED,
                format!("pull mode backup for disk '{}' requires qcow2 driver", disk.name),
            ));
        }
        if disk.mode == Some(DiskBackupMode::Incremental) {
            let name = disk.incremental.clone().unwrap_or_default();
            let base = checkpoints.get(&name).map_err(|_| {
                Error::new(
                    from,
                    Code::VIR_ERR_NO_DOMAIN_CHECKPOINT,
                    format!("Checkpoint '{name}' for incremental backup of disk '{}' not found", disk.name),
                )
            })?;
            if !base.disks.iter().any(|d| d.name == disk.name && d.kind == DiskCheckpointKind::Bitmap) {
                return Err(broken_bitmap(from, &name, &disk.name));
            }
        }
        if mode == BackupMode::Pull {
            disk.export_name.get_or_insert_with(|| disk.name.clone());
            if disk.mode == Some(DiskBackupMode::Incremental) {
                disk.export_bitmap.get_or_insert_with(|| format!("backup-{}", disk.name));
            }
        }
        // libvirt numbers every storage source of the domain; the stores of a backup
        // follow the disks' own sources.
        disk.index = (domain.disks.len() + 1 + index) as u32;
        disk.state = Some(DiskState::Running);
    }
    Ok(Begin { def, checkpoint })
}

/// `missing or broken bitmap '<checkpoint>' for disk '<disk>'`.
pub fn broken_bitmap(from: Domain, checkpoint: &str, disk: &str) -> Error {
    Error::new(
        from,
        Code::VIR_ERR_CHECKPOINT_INCONSISTENT,
        format!("missing or broken bitmap '{checkpoint}' for disk '{disk}'"),
    )
}

/// The name of the temporary bitmap a disk's incremental backup works from.
pub fn temporary_bitmap(disk: &crate::conf::backup::BackupDisk) -> String {
    disk.export_bitmap.clone().unwrap_or_else(|| format!("backup-{}", disk.name))
}

#[cfg(test)]
mod tests;

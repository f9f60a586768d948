//! The job record (typed, in `DIR/run/qemu/<domain>.job`) and the calls that ask about a
//! job or end it: the backup's XML, job info and statistics, block job info, abort.

use crate::abi::virDomainJobType;
use crate::conf::backup::{BackupDef, BackupMode};
use crate::driver::jobs::{self, Finished, JobSlot, Outcome, Progress};
use crate::driver::qemu::backup::{now_ms, what};
use crate::driver::qemu::state::{FROM, QemuDomain, QemuDriver, invalid, not_running};
use crate::driver::qemu::store::{Layout, Scope};
use crate::driver::{BlockJobInfo, DomainId, JobInfo, JobStats};
use crate::engine::backup::{Creation, Store};
use crate::engine::commands::JobState;
use crate::engine::{self, Access, Session, daemon};
use crate::error::{Code, Error, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A domain's job file: the running backup and the last finished one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct JobFile {
    pub active: Option<ActiveJob>,
    pub completed: Option<Finished>,
}

impl JobFile {
    /// Reads a job file; one that cannot be read counts as none (with a warning).
    pub fn parse(text: Option<&str>, domain: &str) -> JobFile {
        let Some(text) = text else { return JobFile::default() };
        serde_json::from_str(text).unwrap_or_else(|e| {
            eprintln!("virbackup: warning : ignoring the unreadable job file of domain '{domain}': {e}");
            JobFile::default()
        })
    }

    pub(crate) fn save(&self, layout: &Layout, domain: &str) -> Result<()> {
        let path = layout.job_file(domain);
        if self.active.is_none() && self.completed.is_none() {
            return layout.remove(&path);
        }
        let text = serde_json::to_string_pretty(self).expect("a job file serializes");
        layout.save(&path, &text)
    }
}

/// A running backup job, as recorded for every process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ActiveJob {
    /// The process that watches the job, and its start time (with the pid, it names
    /// that process even once the pid is reused).
    pub owner: u32,
    #[serde(default)]
    pub owner_started: Option<u64>,
    /// When it started, in milliseconds since the epoch; it also tells jobs apart.
    pub started_ms: u64,
    /// The backup definition, with the stores' formats filled in.
    pub backup: BackupDef,
    /// The checkpoint created with the backup.
    pub checkpoint: Option<String>,
    /// `virDomainAbortJob()` was called.
    pub aborting: bool,
    pub engine: JobEngine,
    /// A pull backup: the engine's NBD server was started for it, on the requested
    /// address.
    pub nbd_server: bool,
    /// The TLS credentials object the server uses.
    #[serde(default)]
    pub tls_object: Option<String>,
    pub disks: Vec<JobDisk>,
    /// How the job ended, recorded before the cleanup that follows: a process that
    /// takes the job over after a death in the middle of it goes on from there.
    #[serde(default)]
    pub finishing: Option<Verdict>,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Verdict {
    pub outcome: Outcome,
    pub error: Option<String>,
    pub progress: Progress,
    pub elapsed_ms: u64,
}

/// Where the job runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct JobEngine {
    /// The monitor for short sessions.
    pub qmp: PathBuf,
    /// A second monitor the watcher listens on, when the process has one.
    pub events: Option<PathBuf>,
    /// A daemon started for the job, for a shut-off domain.
    pub daemon: Option<u32>,
}

/// One backed-up disk of a running job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct JobDisk {
    pub target: String,
    /// The disk's image, named in block job events.
    pub source: String,
    /// The disk's format node.
    pub node: String,
    pub job_id: String,
    pub store: PathBuf,
    pub store_format: String,
    pub file_node: String,
    pub format_node: String,
    /// The store was created by the job (and goes when the job does not leave a backup).
    pub created: bool,
    /// The temporary bitmap: (node, name).
    pub bitmap: Option<(String, String)>,
    pub export_id: Option<String>,
    /// The disk's size in bytes.
    pub size: u64,
}

impl ActiveJob {
    pub(crate) fn def(&self) -> &BackupDef {
        &self.backup
    }

    pub(crate) fn mode(&self) -> BackupMode {
        self.def().mode
    }

    pub(crate) fn elapsed_ms(&self) -> u64 {
        now_ms().saturating_sub(self.started_ms)
    }

    pub(crate) fn job_ids(&self) -> Vec<String> {
        self.disks.iter().map(|d| d.job_id.clone()).collect()
    }

    /// The figures the job calls report, from the copies' progress.
    pub(crate) fn progress(&self, mode: BackupMode, states: &[JobState]) -> Progress {
        let mut progress = Progress::default();
        for disk in &self.disks {
            let state = states.iter().find(|s| s.id == disk.job_id);
            let (current, total) = state.map_or((0, 0), |s| (s.current, s.total));
            match mode {
                BackupMode::Push => {
                    progress.total += total;
                    progress.processed += current;
                }
                BackupMode::Pull => {
                    progress.temp_used += current;
                    progress.temp_total += disk.size;
                }
            }
        }
        progress
    }

    pub(crate) fn store_of(&self, disk: &JobDisk) -> Store {
        Store {
            path: disk.store.clone(),
            format: disk.store_format.clone(),
            file_node: disk.file_node.clone(),
            format_node: disk.format_node.clone(),
            creation: Creation::Existing,
            backing_node: None,
            overlay: false,
        }
    }
}

impl QemuDriver {
    /// The copies' states, or none when the engine cannot be asked.
    pub(crate) fn live_states(&self, job: &ActiveJob, domain: &str) -> Vec<JobState> {
        Session::open(Access::Existing { qmp: &job.engine.qmp }, &[], &what(domain))
            .and_then(|mut s| s.jobs())
            .unwrap_or_default()
    }

    /// Refuses what would take the disks from a shut-off domain's running job.
    pub(crate) fn check_no_job_daemon(domain: &QemuDomain, action: &str) -> Result<()> {
        if domain.jobs.active.as_ref().is_some_and(|j| j.engine.daemon.is_some()) {
            return Self::check_no_backup_job(domain, action);
        }
        Ok(())
    }

    /// Refuses what changes a domain's images under a backup job of either kind (a
    /// snapshot would move the disks the copies read, or rewrite the images).
    pub(crate) fn check_no_backup_job(domain: &QemuDomain, action: &str) -> Result<()> {
        if domain.jobs.active.is_some() {
            return Err(invalid(format!(
                "cannot {action} domain '{}' while a backup job runs on its disks",
                domain.name()
            )));
        }
        Ok(())
    }
}

pub(crate) fn backup_get_xml_desc(driver: &QemuDriver, dom: &DomainId, flags: u32) -> Result<String> {
    Error::check_flags(FROM, "qemuDomainBackupGetXMLDesc", flags, 0)?;
    driver.with_state(Scope::Domain(&dom.name), false, |inner, _| {
        let domain = &inner.domains[inner.position(dom)?];
        let job = domain.jobs.active.as_ref().ok_or_else(|| jobs::no_backup(FROM))?;
        Ok(job.def().format(false))
    })
}

pub(crate) fn domain_abort_job(driver: &QemuDriver, dom: &DomainId, flags: u32) -> Result<()> {
    Error::check_flags(FROM, "qemuDomainAbortJobFlags", flags, jobs::ABORT_FLAGS)?;
    driver.with_state(Scope::Domain(&dom.name), true, |inner, layout| {
        let at = inner.position(dom)?;
        let domain = &mut inner.domains[at];
        let name = domain.name().to_string();
        let job = domain.jobs.active.as_mut().ok_or_else(|| jobs::no_active_job(FROM))?;
        jobs::check_abort_flags(FROM, flags)?;
        if job.finishing.is_some() {
            // Its end is decided and under way (perhaps left half-done by a process
            // that died): its watcher completes it.
            return Ok(());
        }
        let engine_gone = job.engine.daemon.is_some_and(|pid| !daemon::is_ours(pid, &job.engine.qmp, None));
        if !engine_gone {
            let mut session = Session::open(Access::Existing { qmp: &job.engine.qmp }, &[], &what(&name))?;
            for disk in &job.disks {
                // A copy that already ended cannot be cancelled; that is fine.
                session.cancel_job(&disk.job_id);
            }
        }
        // With its engine gone, the job has ended already: its watcher records how.
        job.aborting = true;
        domain.jobs.save(layout, &name)
    })
}

/// `virDomainBlockJobAbort()` on a disk of a backup: ends the whole backup, as
/// `virDomainAbortJob()` does, and without ASYNC waits for its end.
pub(crate) fn domain_block_job_abort(driver: &QemuDriver, dom: &DomainId, disk: &str, flags: u32) -> Result<()> {
    Error::check_flags(FROM, "qemuDomainBlockJobAbort", flags, jobs::BLOCK_JOB_ABORT_FLAGS)?;
    let wait = driver.with_state(Scope::Domain(&dom.name), false, |inner, _| {
        let domain = &inner.domains[inner.position(dom)?];
        if domain.live.is_none() && domain.jobs.active.is_none() {
            return Err(not_running());
        }
        let target = jobs::block_job_disk(FROM, domain.def(), disk)?;
        let in_backup = domain.jobs.active.as_ref().is_some_and(|j| j.disks.iter().any(|d| d.target == target));
        jobs::check_block_job_abort(FROM, flags, &target, in_backup)
    })?;
    domain_abort_job(driver, dom, 0)?;
    if !wait {
        return Ok(());
    }
    let deadline = std::time::Instant::now() + engine::default_timeout();
    loop {
        let running = driver.with_state(Scope::Domain(&dom.name), false, |inner, _| {
            Ok(inner.domains[inner.position(dom)?].jobs.active.is_some())
        })?;
        if !running {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(Error::new(
                FROM,
                Code::VIR_ERR_OPERATION_TIMEOUT,
                format!("the backup job did not end within {:.1}s", engine::default_timeout().as_secs_f64()),
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

pub(crate) fn domain_get_job_info(driver: &QemuDriver, dom: &DomainId) -> Result<JobInfo> {
    driver.with_state(Scope::Domain(&dom.name), false, |inner, _| {
        let domain = &inner.domains[inner.position(dom)?];
        let Some(job) = &domain.jobs.active else { return Ok(JobInfo::default()) };
        let mode = job.mode();
        let progress = job.progress(mode, &driver.live_states(job, domain.name()));
        Ok(jobs::job_info(virDomainJobType::VIR_DOMAIN_JOB_UNBOUNDED as i32, mode, job.elapsed_ms(), &progress))
    })
}

pub(crate) fn domain_get_job_stats(driver: &QemuDriver, dom: &DomainId, flags: u32) -> Result<JobStats> {
    Error::check_flags(FROM, "qemuDomainGetJobStats", flags, jobs::STATS_FLAGS)?;
    driver.with_state(Scope::Domain(&dom.name), true, |inner, layout| {
        let at = inner.position(dom)?;
        let domain = &mut inner.domains[at];
        let active = domain.jobs.active.as_ref().map(|job| {
            let mode = job.mode();
            let progress = job.progress(mode, &driver.live_states(job, domain.name()));
            jobs::active_stats(mode, job.elapsed_ms(), &progress)
        });
        let mut slot = JobSlot { completed: domain.jobs.completed.clone() };
        let stats = slot.stats(active, flags);
        if slot.completed != domain.jobs.completed {
            domain.jobs.completed = slot.completed;
            domain.jobs.save(layout, domain.name())?;
        }
        Ok(stats)
    })
}

pub(crate) fn domain_get_block_job_info(
    driver: &QemuDriver,
    dom: &DomainId,
    disk: &str,
    flags: u32,
) -> Result<Option<BlockJobInfo>> {
    Error::check_flags(FROM, "qemuDomainGetBlockJobInfo", flags, jobs::BLOCK_JOB_INFO_FLAGS)?;
    driver.with_state(Scope::Domain(&dom.name), false, |inner, _| {
        let domain = &inner.domains[inner.position(dom)?];
        let target = jobs::block_job_disk(FROM, domain.def(), disk)?;
        let Some(job) = &domain.jobs.active else { return Ok(None) };
        let Some(disk) = job.disks.iter().find(|d| d.target == target) else { return Ok(None) };
        let states = driver.live_states(job, domain.name());
        let state = states.iter().find(|s| s.id == disk.job_id);
        Ok(Some(BlockJobInfo {
            job_type: jobs::BACKUP_BLOCK_JOB,
            bandwidth: 0,
            cur: state.map_or(0, |s| s.current),
            end: state.map_or(0, |s| s.total),
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_files_round_trip_and_unreadable_ones_count_as_none() {
        let job = ActiveJob {
            owner: 7,
            owner_started: Some(11),
            started_ms: 1000,
            backup: BackupDef::parse(
                "<domainbackup mode='pull'><server transport='unix' socket='/r/p.sock'/><disks>\
                 <disk name='vda' type='file'><scratch file='/bk/s'><seclabel model='dac' relabel='no'/>\
                 </scratch><driver type='qcow2'/></disk></disks></domainbackup>",
            )
            .unwrap(),
            checkpoint: Some("c1".into()),
            aborting: false,
            engine: JobEngine { qmp: "/r/q".into(), events: None, daemon: Some(9) },
            nbd_server: true,
            tls_object: Some("vb1-tls".into()),
            disks: vec![JobDisk {
                target: "vda".into(),
                source: "/img/a".into(),
                node: "vb-disk0".into(),
                job_id: "backup-vda-vb-disk0".into(),
                store: "/bk/s".into(),
                store_format: "qcow2".into(),
                file_node: "vb-store0-file".into(),
                format_node: "vb-store0".into(),
                created: true,
                bitmap: Some(("vb-store0".into(), "backup-vda".into())),
                export_id: Some("vb-export0".into()),
                size: 1 << 20,
            }],
            finishing: Some(Verdict {
                outcome: Outcome::Completed,
                error: None,
                progress: Progress::default(),
                elapsed_ms: 3,
            }),
        };
        let file = JobFile { active: Some(job.clone()), completed: None };
        let text = serde_json::to_string(&file).unwrap();
        // The job record is typed data: the definition comes back whole, the store's
        // security label included.
        let back = JobFile::parse(Some(&text), "d");
        assert_eq!(back, file);
        assert_eq!(back.active.unwrap().def().disks[0].seclabels.len(), 1);
        assert_eq!(JobFile::parse(Some("{"), "d"), JobFile::default());
        assert_eq!(JobFile::parse(None, "d"), JobFile::default());
        assert_eq!(job.mode(), BackupMode::Pull);
        let states = vec![JobState {
            id: "backup-vda-vb-disk0".into(),
            status: "running".into(),
            current: 5,
            total: 0,
            error: None,
        }];
        assert_eq!(
            job.progress(BackupMode::Pull, &states),
            Progress { temp_used: 5, temp_total: 1 << 20, ..Default::default() }
        );
        assert_eq!(job.progress(BackupMode::Push, &states), Progress { processed: 5, ..Default::default() });
    }
}

//! Backup jobs of the embedded QEMU driver.
//!
//! `virDomainBackupBegin()` does everything under the driver lock: it checks the request
//! ([`jobs::prepare_begin`]), reaches the disks (the running domain's daemon, or a daemon
//! started for the job when the domain is shut off), creates and opens the stores, starts
//! every copy and the new checkpoint's bitmaps in one QMP transaction, and, for a pull
//! backup, exports the point-in-time views over NBD. If any step fails, what the earlier
//! steps made is undone and nothing is left: no store, no bitmap, no checkpoint.
//!
//! The job is then recorded in `DIR/run/qemu/<domain>.job`, so every process using the
//! root sees it, and a watcher thread in the process that began it waits for the copies
//! to end (events on the daemon's second monitor, or polling). The watcher then
//! [finishes](QemuDriver::finish_backup) the job: it closes the stores, drops temporary
//! bitmaps, removes what a failed job wrote (including the checkpoint made with it),
//! stops a daemon started for the job, keeps the final figures and raises the events.
//! When the process that watches a job exits before the job ends, the next process that
//! uses the root takes the job over.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::intent::{self, CheckpointStep, DaemonRecord, DoneWhen, Intent, Journal, OwnedFile};
use super::store::{self, Layout, Scope};
use super::{
    DRIVERS, Engine, FROM, Inner, Live, QemuDomain, QemuDriver, bitmap_disks, check_socket_path, engine_disks,
    events_socket, invalid, now_seconds,
};
use crate::abi::{virDomainBackupBeginFlags as BeginFlags, virDomainJobType};
use crate::conf::backup::{BackupDef, BackupMode, DiskBackupMode, StoreKind, Transport};
use crate::driver::events;
use crate::driver::jobs::{self, Finished, JobSlot, Outcome, Progress};
use crate::driver::{BlockJobInfo, DomainId, JobInfo, JobStats};
use crate::engine::backup::{self as qmp_backup, Creation, NbdAddress, Store};
use crate::engine::commands::{self, Action, JobState, Sync};
use crate::engine::nbd_proxy::{Listen, NbdProxy};
use crate::engine::qmp::Qmp;
use crate::engine::{self, Access, EngineDisk, Session, daemon};
use crate::error::{Code, Error, Result};
use crate::uuid::Uuid;

const REUSE_EXTERNAL: u32 = BeginFlags::VIR_DOMAIN_BACKUP_BEGIN_REUSE_EXTERNAL as u32;

/// A domain's job file: the running backup and the last finished one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct JobFile {
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

    fn save(&self, layout: &Layout, domain: &str) -> Result<()> {
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
pub(super) struct ActiveJob {
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
    pub nbd: Option<NbdSetup>,
    pub disks: Vec<JobDisk>,
    /// How the job ended, recorded before the cleanup that follows: a process that
    /// takes the job over after a death in the middle of it goes on from there.
    #[serde(default)]
    pub finishing: Option<Verdict>,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Verdict {
    pub outcome: Outcome,
    pub error: Option<String>,
    pub progress: Progress,
    pub elapsed_ms: u64,
}

/// Where the job runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct JobEngine {
    /// The monitor for short sessions.
    pub qmp: PathBuf,
    /// A second monitor the watcher listens on, when the process has one.
    pub events: Option<PathBuf>,
    /// A daemon started for the job, for a shut-off domain.
    pub daemon: Option<u32>,
}

/// How a pull backup's exports are reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) enum NbdSetup {
    /// The engine's NBD server, started for the job on the requested address.
    Server,
    /// The running domain's own NBD server at `upstream`, behind a proxy on the requested
    /// address that renames (visible, internal) exports.
    Proxy { upstream: PathBuf, names: Vec<(String, String)> },
}

/// One backed-up disk of a running job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct JobDisk {
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
    fn def(&self) -> &BackupDef {
        &self.backup
    }

    fn mode(&self) -> BackupMode {
        self.def().mode
    }

    fn elapsed_ms(&self) -> u64 {
        now_ms().saturating_sub(self.started_ms)
    }

    fn job_ids(&self) -> Vec<String> {
        self.disks.iter().map(|d| d.job_id.clone()).collect()
    }

    /// The figures the job calls report, from the copies' progress.
    fn progress(&self, mode: BackupMode, states: &[JobState]) -> Progress {
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

    fn store_of(&self, disk: &JobDisk) -> Store {
        Store {
            path: disk.store.clone(),
            format: disk.store_format.clone(),
            file_node: disk.file_node.clone(),
            format_node: disk.format_node.clone(),
            creation: Creation::Existing,
            backing_node: None,
        }
    }
}

/// A limit on each disk's copy, in bytes per second: `VIRBACKUP_BACKUP_SPEED`, for
/// backups that must leave the disks' bandwidth to the guest.
fn copy_speed() -> Option<u64> {
    std::env::var("VIRBACKUP_BACKUP_SPEED").ok().and_then(|v| v.parse().ok()).filter(|&v| v > 0)
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Jobs this process watches, by root, domain and start time.
static WATCHED: LazyLock<Mutex<HashSet<(PathBuf, Uuid, u64)>>> = LazyLock::new(Default::default);

/// Proxies serving pull backups of running domains, by root and domain.
static PROXIES: LazyLock<Mutex<HashMap<(PathBuf, Uuid), NbdProxy>>> = LazyLock::new(Default::default);

/// What the watcher saw when the copies ended.
#[derive(Debug, Clone, Default)]
struct Observed {
    /// The final state of each copy.
    states: Vec<JobState>,
    /// The engine went away before the copies ended.
    engine_gone: bool,
}

fn what(domain: &str) -> String {
    format!("the engine of domain '{domain}'")
}

/// The error of a store that should not be there.
fn store_exists(path: &Path, target: &str) -> Error {
    Error::new(FROM, Code::VIR_ERR_INVALID_ARG, format!("store '{}' for backup of '{target}' exists", path.display()))
}

/// The address a pull backup listens on.
fn listen_address(def: &BackupDef) -> Result<NbdAddress> {
    match def.server.as_ref().map(|s| &s.transport) {
        Some(Transport::Unix { socket }) => Ok(NbdAddress::Unix(socket.clone())),
        Some(Transport::Tcp { name, port: Some(port) }) => Ok(NbdAddress::Tcp { host: name.clone(), port: *port }),
        _ => Err(Error::new(FROM, Code::VIR_ERR_OPERATION_UNSUPPORTED, "<domainbackup> must specify TCP port for now")),
    }
}

fn start_proxy(address: &NbdAddress, upstream: &Path, names: &[(String, String)]) -> Result<NbdProxy> {
    let listen = match address {
        NbdAddress::Unix(path) => {
            prepare_socket_path(path)?;
            Listen::Unix(path.clone())
        }
        NbdAddress::Tcp { host, port } => Listen::Tcp { host: host.clone(), port: *port as u16 },
    };
    NbdProxy::start(listen, upstream.to_path_buf(), names.to_vec())
        .map_err(|e| Error::system(FROM, "cannot listen for the backup's NBD clients", &e))
}

impl QemuDriver {
    /// This driver as an `Arc`, for threads that outlive the call.
    fn shared(&self) -> Option<Arc<QemuDriver>> {
        DRIVERS.lock().get(self.root()).and_then(Weak::upgrade)
    }

    /// `virDomainBackupBegin()`.
    pub(super) fn begin_backup(
        &self,
        dom: &DomainId,
        backup_xml: &str,
        checkpoint_xml: Option<&str>,
        flags: u32,
    ) -> Result<()> {
        let job = self.with_state(Scope::Domain(&dom.name), true, |inner, layout| {
            self.start_job(inner, layout, dom, backup_xml, checkpoint_xml, flags)
        })?;
        self.watch(&dom.name, dom.uuid, job);
        Ok(())
    }

    fn start_job(
        &self,
        inner: &mut Inner,
        layout: &Layout,
        dom: &DomainId,
        backup_xml: &str,
        checkpoint_xml: Option<&str>,
        flags: u32,
    ) -> Result<ActiveJob> {
        let at = inner.position(dom)?;
        let domain = &inner.domains[at];
        let dom_def = domain.def().clone();
        let begin = jobs::prepare_begin(
            FROM,
            "qemuBackupBegin",
            flags,
            backup_xml,
            checkpoint_xml,
            &dom_def,
            &domain.checkpoints,
            domain.jobs.active.is_some(),
            now_seconds(),
        )?;
        if let Some(checkpoint) = &begin.checkpoint {
            store::check_file_name("checkpoint", &checkpoint.def.name)?;
            self.check_new_checkpoint(&dom_def, &checkpoint.def)?;
        }
        if let Some(disk) = begin.def.disks.iter().find(|d| d.backup && d.encryption.is_some()) {
            return Err(Error::new(
                FROM,
                Code::VIR_ERR_CONFIG_UNSUPPORTED,
                format!("encrypted backup store for disk '{}' is not supported", disk.name),
            ));
        }
        for disk in begin.def.disks.iter().filter(|d| d.backup) {
            let source = dom_def.disk(&disk.name).expect("aligned disks exist");
            if disk.mode == Some(DiskBackupMode::Incremental) && source.format.as_deref() != Some("qcow2") {
                let checkpoint = disk.incremental.clone().unwrap_or_default();
                return Err(jobs::broken_bitmap(FROM, &checkpoint, &disk.name));
            }
        }
        if begin.def.mode == BackupMode::Pull {
            check_pull_address(&begin.def)?;
        }
        let disks = engine_disks(&dom_def)?;
        if domain.live.is_none() {
            super::check_disk_files(domain.name(), &disks)?;
        }
        let started_ms = now_ms();
        let name = domain.name().to_string();
        let mut intent = Intent::new("backup", &name);
        intent.done_when = Some(DoneWhen::Job { started_ms });
        intent.checkpoint = begin.checkpoint.as_ref().map(|c| CheckpointStep::Create { name: c.def.name.clone() });
        let mut journal = Journal::begin(layout, intent)?;
        let mut session = None;
        let result = self.begin_steps(inner, layout, at, begin, flags, started_ms, &disks, &mut journal, &mut session);
        // Done or not, what the steps left is settled: undone when the job is not
        // recorded; when it is, only the placeholders of its files go.
        let settled = self.settle(inner, journal, session);
        match (result, settled) {
            (Ok(job), Ok(())) => Ok(job),
            (Ok(_), Err(e)) | (Err(e), _) => Err(e),
        }
    }

    /// The steps of a backup begin, each recorded in the journal before it runs.
    #[allow(clippy::too_many_arguments)]
    fn begin_steps(
        &self,
        inner: &mut Inner,
        layout: &Layout,
        at: usize,
        begin: jobs::Begin,
        flags: u32,
        started_ms: u64,
        disks: &[EngineDisk],
        journal: &mut Journal,
        session_slot: &mut Option<Session>,
    ) -> Result<ActiveJob> {
        let domain = &inner.domains[at];
        let dom_def = domain.def().clone();
        let mut def = begin.def;
        let reuse = flags & REUSE_EXTERNAL != 0;
        let op = journal.intent.op.clone();

        // Reach the disks: the running engine, or a daemon started for the job.
        let (engine, own_nbd) = match &domain.live {
            Some(Live { engine: Engine::Ours { qmp, nbd, .. }, .. }) => {
                let events = Some(events_socket(qmp)).filter(|p| p.exists());
                (JobEngine { qmp: qmp.clone(), events, daemon: None }, Some(nbd.clone()))
            }
            Some(Live { engine: Engine::Adopted { qmp }, .. }) => {
                (JobEngine { qmp: qmp.clone(), events: None, daemon: None }, None)
            }
            None => {
                let run_dir = layout.run_dir(domain.name());
                let (qmp, events, pidfile) = (
                    run_dir.join(format!("job-{op}.sock")),
                    run_dir.join(format!("job-{op}-events.sock")),
                    run_dir.join(format!("job-{op}.pid")),
                );
                check_socket_path(&qmp)?;
                check_socket_path(&events)?;
                layout.ensure_dir(&run_dir)?;
                journal.record(|i| {
                    i.daemons.push(DaemonRecord {
                        qmp: qmp.clone(),
                        pidfile: pidfile.clone(),
                        sockets: vec![events.clone()],
                        pid: None,
                        started: None,
                    })
                })?;
                let config =
                    daemon::DaemonConfig { qmp: &qmp, pidfile: &pidfile, disks, nbd: None, events: Some(&events) };
                let pid = daemon::start(&config).map_err(|e| engine::daemon_error(&what(domain.name()), disks, &e))?;
                intent::kill_point("backup-daemon-started");
                journal.record(|i| {
                    i.daemons[0].pid = Some(pid);
                    i.daemons[0].started = daemon::start_time(pid);
                })?;
                (JobEngine { qmp, events: Some(events), daemon: Some(pid) }, None)
            }
        };
        journal.record(|i| i.engine = Some(engine.qmp.clone()))?;
        let session =
            session_slot.insert(Session::open(Access::Existing { qmp: &engine.qmp }, disks, &what(domain.name()))?);
        let checkpoint_def = begin.checkpoint.as_ref().map(|c| c.def.clone());
        let mut job_disks =
            self.prepare_disks(session, journal, &mut def, &dom_def, checkpoint_def.as_ref(), reuse, &op)?;
        let nbd = self.export_views(session, journal, &def, &mut job_disks, own_nbd.as_deref(), dom_def.uuid)?;

        // The copies run: record the checkpoint, then the job, which completes the begin.
        let domain = &mut inner.domains[at];
        intent::kill_point("backup-copies-started");
        if let Some(checkpoint) = &checkpoint_def {
            self.save_checkpoint(domain.name(), checkpoint)?;
            intent::kill_point("backup-checkpoint-saved");
        }
        let job = ActiveJob {
            owner: std::process::id(),
            owner_started: daemon::start_time(std::process::id()),
            started_ms,
            backup: def.clone(),
            checkpoint: checkpoint_def.as_ref().map(|c| c.name.clone()),
            aborting: false,
            engine: engine.clone(),
            nbd,
            disks: job_disks,
            finishing: None,
        };
        let file = JobFile { active: Some(job.clone()), completed: domain.jobs.completed.clone() };
        file.save(layout, domain.name())?;
        domain.jobs = file;
        if let Some(prepared) = begin.checkpoint {
            domain.checkpoints.commit(prepared)?;
            self.save_current(domain)?;
        }
        Ok(job)
    }

    /// Checks the incremental disks' bitmaps, creates and opens the stores, and starts
    /// every copy (with the new checkpoint's bitmaps) in one transaction. Everything it
    /// will add is recorded in the journal before the first of it is made. Fills in the
    /// stores' formats in `def`.
    #[allow(clippy::too_many_arguments)]
    fn prepare_disks(
        &self,
        session: &mut Session,
        journal: &mut Journal,
        def: &mut BackupDef,
        dom_def: &crate::conf::domain::DomainDef,
        checkpoint: Option<&crate::conf::checkpoint::CheckpointDef>,
        reuse: bool,
        op: &str,
    ) -> Result<Vec<JobDisk>> {
        let bitmaps = session.bitmaps()?;
        let sizes = session.virtual_sizes()?;
        let mode = def.mode;
        let mut actions = Vec::new();
        let mut job_disks = Vec::new();
        let mut plan = Intent::default();
        let taken = |target: &str, name: &str| bitmaps.get(target).is_some_and(|l| l.iter().any(|b| b.name == name));
        if let Some(checkpoint) = checkpoint {
            for (target, bitmap) in bitmap_disks(checkpoint, dom_def) {
                let node = session.node(target)?.to_string();
                actions.push(Action::AddBitmap { node: node.clone(), name: bitmap.to_string() });
                // One already there makes the transaction fail (QEMU's "Bitmap already
                // exists", as in libvirt); it is not recorded, so undoing never removes it.
                if !taken(target, bitmap) {
                    plan.bitmaps.push((node, bitmap.to_string()));
                }
            }
        }
        // The stores: planned first, then made.
        let mut stores = Vec::new();
        for (index, disk) in def.disks.iter().filter(|d| d.backup).enumerate() {
            let source = dom_def.disk(&disk.name).expect("aligned disks exist");
            let source_path = source.source.clone().unwrap_or_default();
            let source_format = source.format.clone().unwrap_or_else(|| "raw".to_string());
            let node = session.node(&disk.name)?.to_string();
            let size = *sizes
                .get(&disk.name)
                .ok_or_else(|| Error::internal(FROM, format!("cannot read the size of disk '{}'", disk.name)))?;
            // The checkpoint's bitmap must be there and healthy.
            let base = match (&disk.mode, &disk.incremental) {
                (Some(DiskBackupMode::Incremental), Some(checkpoint)) => {
                    let found = bitmaps
                        .get(&disk.name)
                        .and_then(|list| list.iter().find(|b| &b.name == checkpoint && b.healthy()))
                        .ok_or_else(|| jobs::broken_bitmap(FROM, checkpoint, &disk.name))?;
                    Some((checkpoint.clone(), found.granularity))
                }
                _ => None,
            };
            let path = disk.store.clone().unwrap_or_default();
            let format = disk.format.clone().unwrap_or_else(|| "qcow2".to_string());
            let kind = disk.store_kind.unwrap_or(StoreKind::File);
            let created = !reuse && kind == StoreKind::File;
            if created {
                plan.files.push(owned_file(&path, op)?);
            } else if !path.exists() {
                return Err(Error::new(
                    FROM,
                    Code::VIR_ERR_INVALID_ARG,
                    format!("store '{}' for backup of '{}' does not exist", path.display(), disk.name),
                ));
            }
            let creation = if reuse || format == "raw" {
                // A raw store is only sized; there is nothing to format.
                Creation::Existing
            } else {
                // An incremental target, and a scratch image, name the disk as backing
                // file, as libvirt's do: an incremental is restored on top of a full.
                let backed = mode == BackupMode::Pull || base.is_some();
                Creation::New { size, backing: backed.then(|| (PathBuf::from(&source_path), source_format.clone())) }
            };
            let store = Store {
                path: path.clone(),
                format: format.clone(),
                file_node: format!("vb{op}-s{index}f"),
                format_node: format!("vb{op}-s{index}"),
                creation,
                backing_node: (mode == BackupMode::Pull).then(|| node.clone()),
            };
            plan.nodes.extend([store.file_node.clone(), store.format_node.clone()]);
            if matches!(store.creation, Creation::New { .. }) {
                plan.jobs.push(store.create_job_id());
            }
            let job_id = format!("backup-{}-vb{op}", disk.name);
            plan.jobs.push(job_id.clone());
            let bitmap = base.as_ref().map(|(checkpoint, granularity)| {
                // Push: the copy reads the bitmap on the disk; pull: the export offers it
                // from the scratch image.
                let on = if mode == BackupMode::Push { node.clone() } else { store.format_node.clone() };
                let name = jobs::temporary_bitmap(disk);
                (on, name, checkpoint.clone(), *granularity)
            });
            if let Some((on, name, _, _)) = &bitmap
                && !(on == &node && taken(&disk.name, name))
            {
                plan.bitmaps.push((on.clone(), name.clone()));
            }
            stores.push((disk.name.clone(), source_path, node, size, store, created, job_id, bitmap, kind));
        }
        journal.record(|i| {
            i.bitmaps.extend(plan.bitmaps);
            i.files.extend(plan.files.iter().cloned());
            i.nodes.extend(plan.nodes);
            i.jobs.extend(plan.jobs);
        })?;

        for (target, source_path, node, size, store, created, job_id, bitmap, _kind) in stores {
            if created {
                let file = plan.files.iter().find(|f| f.path == store.path).expect("planned");
                match intent::create_owned(file) {
                    Ok(true) => {}
                    Ok(false) => return Err(store_exists(&store.path, &target)),
                    Err(e) => return Err(Error::system(FROM, format!("cannot create '{}'", store.path.display()), &e)),
                }
            }
            if !reuse && store.format == "raw" {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&store.path)
                    .and_then(|f| f.set_len(size))
                    .map_err(|e| Error::system(FROM, format!("cannot size '{}'", store.path.display()), &e))?;
            }
            session.open_store(&store)?;
            intent::kill_point("backup-store-opened");
            if let Some((on, name, checkpoint, granularity)) = &bitmap {
                actions.push(Action::AddTemporaryBitmap {
                    node: on.clone(),
                    name: name.clone(),
                    granularity: *granularity,
                });
                actions.push(Action::MergeBitmaps {
                    node: on.clone(),
                    target: name.clone(),
                    sources: vec![(node.clone(), checkpoint.clone())],
                });
            }
            let sync = match (&mode, &bitmap) {
                (BackupMode::Pull, _) => Sync::None,
                (BackupMode::Push, Some((_, name, _, _))) => Sync::Incremental { bitmap: name.clone() },
                (BackupMode::Push, None) => Sync::Full,
            };
            // A pull backup's copy runs only as the guest writes: it is never limited.
            let speed = if mode == BackupMode::Push { copy_speed() } else { None };
            actions.push(Action::Backup {
                job_id: job_id.clone(),
                device: node.clone(),
                target: store.format_node.clone(),
                sync,
                speed,
            });
            job_disks.push(JobDisk {
                target,
                source: source_path,
                node,
                job_id,
                store: store.path.clone(),
                store_format: store.format.clone(),
                file_node: store.file_node.clone(),
                format_node: store.format_node.clone(),
                created,
                bitmap: bitmap.map(|(on, name, _, _)| (on, name)),
                export_id: None,
                size,
            });
        }
        session.transaction(&actions)?;
        Ok(job_disks)
    }

    /// Pull mode: exports each scratch image (the disk as it was at the start) under its
    /// export name, with its bitmap. A shut-off domain's job daemon and an adopted QEMU
    /// serve them from an NBD server started on the requested address; a running
    /// domain's daemon already has a server (its disks), so the views get internal names
    /// there and a proxy listens on the requested address. A unix socket is made for
    /// its owner only (mode 0600), whatever the umask.
    fn export_views(
        &self,
        session: &mut Session,
        journal: &mut Journal,
        def: &BackupDef,
        job_disks: &mut [JobDisk],
        own_nbd: Option<&Path>,
        uuid: Uuid,
    ) -> Result<Option<NbdSetup>> {
        if def.mode != BackupMode::Pull {
            return Ok(None);
        }
        let address = listen_address(def)?;
        let op = journal.intent.op.clone();
        let ids: Vec<String> = (0..job_disks.len()).map(|i| format!("vb{op}-e{i}")).collect();
        journal.record(|i| {
            i.exports.extend(ids.iter().cloned());
            i.nbd_server = own_nbd.is_none();
            if let NbdAddress::Unix(path) = &address {
                i.sockets.push(path.clone());
            }
        })?;
        if let NbdAddress::Unix(path) = &address {
            prepare_socket_path(path)?;
        }
        if own_nbd.is_none() {
            session.start_nbd_server(&address)?;
            if let NbdAddress::Unix(path) = &address {
                restrict_socket(path)?;
            }
        }
        let mut names = Vec::new();
        for ((index, disk), id) in job_disks.iter_mut().enumerate().zip(ids) {
            let backup_disk = def.disks.iter().find(|d| d.name == disk.target).expect("a backed-up disk");
            let visible = backup_disk.export_name.clone().unwrap_or_else(|| disk.target.clone());
            let name = if own_nbd.is_some() { format!("vb{op}-pull-{index}") } else { visible.clone() };
            let bitmap = disk.bitmap.as_ref().map(|(_, b)| b.as_str());
            session.export(&id, &disk.format_node, &name, bitmap)?;
            disk.export_id = Some(id);
            names.push((visible, name));
        }
        match own_nbd {
            None => Ok(Some(NbdSetup::Server)),
            Some(upstream) => {
                let proxy = start_proxy(&address, upstream, &names)?;
                PROXIES.lock().insert((self.root().to_path_buf(), uuid), proxy);
                Ok(Some(NbdSetup::Proxy { upstream: upstream.to_path_buf(), names }))
            }
        }
    }
}

/// The file a backup creates at `path`, with the placeholder name that tells it apart
/// from a file that was there before (see `intent::OwnedFile`).
fn owned_file(path: &Path, op: &str) -> Result<OwnedFile> {
    let name = path.file_name().ok_or_else(|| {
        Error::new(FROM, Code::VIR_ERR_INVALID_ARG, format!("'{}' is not a file name", path.display()))
    })?;
    let placeholder = path.with_file_name(format!(".{}.vb-{op}", name.to_string_lossy()));
    Ok(OwnedFile { path: path.to_path_buf(), placeholder })
}

/// Checks the address a pull backup will listen on, before anything is made: a unix
/// socket path must fit in a socket address.
fn check_pull_address(def: &BackupDef) -> Result<()> {
    if let Ok(NbdAddress::Unix(path)) = listen_address(def) {
        check_socket_path(&path)?;
    }
    Ok(())
}

/// Clears the way for a pull backup's unix socket: a socket nobody listens on is removed;
/// anything else there — a file, a folder, a socket in use — is refused (binding would
/// delete it).
fn prepare_socket_path(path: &Path) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else { return Ok(()) };
    if !meta.file_type().is_socket() {
        return Err(Error::new(
            FROM,
            Code::VIR_ERR_INVALID_ARG,
            format!("backup socket path '{}' exists and is not a socket", path.display()),
        ));
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(Error::new(
            FROM,
            Code::VIR_ERR_OPERATION_INVALID,
            format!("backup socket path '{}' is in use by another process", path.display()),
        ));
    }
    intent::remove_socket(path);
    Ok(())
}

/// Makes a socket reachable by its owner only.
fn restrict_socket(path: &Path) -> Result<()> {
    daemon::restrict(path).map_err(|e| Error::system(FROM, format!("cannot restrict '{}'", path.display()), &e))
}

// ---------------------------------------------------------------------------------------
// Watching and finishing

/// Waits until every copy has concluded, or the engine is gone.
fn observe(engine: &JobEngine, ids: &[String]) -> Observed {
    let done =
        |states: &[JobState]| ids.iter().all(|id| states.iter().find(|s| &s.id == id).is_none_or(JobState::concluded));
    let timeout = engine::default_timeout();
    // Events on the second monitor tell when to look again.
    if let Some(mut monitor) = engine.events.as_ref().and_then(|p| Qmp::connect(p, timeout).ok()) {
        while let Ok(states) = commands::jobs(&mut monitor) {
            if done(&states) {
                return Observed { states, engine_gone: false };
            }
            if monitor.next_event(Duration::from_millis(500)).is_err() {
                break;
            }
        }
    }
    // Otherwise (or once that monitor closed): poll through short connections.
    loop {
        let answer = Qmp::connect(&engine.qmp, timeout).and_then(|mut m| commands::jobs(&mut m));
        match answer {
            Ok(states) => {
                if done(&states) {
                    return Observed { states, engine_gone: false };
                }
            }
            Err(_) => return Observed { states: Vec::new(), engine_gone: true },
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl QemuDriver {
    /// Starts the thread that finishes the job when its copies end (once per job and
    /// process). A job whose end was already judged goes straight to its cleanup.
    fn watch(&self, domain: &str, uuid: Uuid, job: ActiveJob) {
        let domain = domain.to_string();
        let key = (self.root().to_path_buf(), uuid, job.started_ms);
        if !WATCHED.lock().insert(key.clone()) {
            return;
        }
        let Some(driver) = self.shared() else {
            WATCHED.lock().remove(&key);
            return;
        };
        let thread_key = key.clone();
        let spawned = std::thread::Builder::new().name("virbackup-job".into()).spawn(move || {
            let observed =
                if job.finishing.is_some() { Observed::default() } else { observe(&job.engine, &job.job_ids()) };
            if let Err(e) = driver.finish_backup(&domain, uuid, job.started_ms, observed) {
                eprintln!("virbackup: warning : finishing the backup job failed: {}", e.message);
            }
            // Only now: until the job is finished, no other thread may take it over.
            WATCHED.lock().remove(&thread_key);
        });
        if spawned.is_err() {
            WATCHED.lock().remove(&key);
        }
    }

    /// Takes over the jobs whose watching process is gone. Returns whether a job file
    /// changed.
    pub(super) fn adopt_orphan_jobs(&self, inner: &mut Inner) -> Result<bool> {
        let me = std::process::id();
        let my_start = daemon::start_time(me);
        let mut any = false;
        for domain in &mut inner.domains {
            let mut changed = false;
            let uuid = domain.def().uuid;
            let name = domain.name().to_string();
            let Some(job) = domain.jobs.active.as_mut() else { continue };
            let mine = job.owner == me && (job.owner_started.is_none() || job.owner_started == my_start);
            let owner_alive = daemon::alive(job.owner)
                && (job.owner_started.is_none() || daemon::start_time(job.owner) == job.owner_started);
            if !mine && owner_alive {
                continue;
            }
            if !mine {
                job.owner = me;
                job.owner_started = my_start;
                changed = true;
            }
            if let Some(NbdSetup::Proxy { upstream, names }) = &job.nbd
                && job.finishing.is_none()
            {
                let key = (self.root().to_path_buf(), uuid);
                if !PROXIES.lock().contains_key(&key)
                    && let Ok(address) = listen_address(job.def())
                    && let Ok(proxy) = start_proxy(&address, upstream, names)
                {
                    PROXIES.lock().insert(key, proxy);
                }
            }
            let job = job.clone();
            if changed {
                domain.jobs.save(&self.layout, domain.name())?;
                any = true;
            }
            self.watch(&name, uuid, job);
        }
        Ok(any)
    }

    /// How a job ended, from what the watcher saw.
    fn judge(job: &ActiveJob, observed: &Observed) -> Verdict {
        let mode = job.mode();
        let mut failed = observed.engine_gone;
        let mut cancelled = false;
        let mut error = observed.engine_gone.then(|| "the engine of the domain exited during the backup".to_string());
        for disk in &job.disks {
            match observed.states.iter().find(|s| s.id == disk.job_id) {
                Some(state) => {
                    if let Some(e) = &state.error {
                        if job.aborting {
                            cancelled = true;
                        } else {
                            failed = true;
                        }
                        error.get_or_insert_with(|| e.clone());
                    }
                }
                None if !observed.engine_gone => {
                    failed = true;
                    error.get_or_insert_with(|| format!("the copy of disk '{}' disappeared", disk.target));
                }
                None => {}
            }
        }
        Verdict {
            outcome: Outcome::of(mode, failed, cancelled),
            error,
            progress: job.progress(mode, &observed.states),
            elapsed_ms: job.elapsed_ms(),
        }
    }

    /// Ends a job whose copies ended: judges it (and records the verdict first, so that a
    /// process taking over after a death in the middle goes on from there), closes what
    /// it opened, keeps or removes what it wrote, records its figures and raises its
    /// events. Every cleanup step tolerates having been done already.
    fn finish_backup(&self, domain: &str, uuid: Uuid, started_ms: u64, observed: Observed) -> Result<()> {
        let raised = self.with_state(Scope::Domain(domain), true, |inner, layout| {
            let Some(at) = inner.domains.iter().position(|d| d.def().uuid == uuid) else { return Ok(Vec::new()) };
            let Some(mut job) = inner.domains[at].jobs.active.clone().filter(|j| j.started_ms == started_ms) else {
                return Ok(Vec::new());
            };
            let verdict = match &job.finishing {
                Some(verdict) => verdict.clone(),
                None => {
                    let verdict = Self::judge(&job, &observed);
                    job.finishing = Some(verdict.clone());
                    let domain = &mut inner.domains[at];
                    domain.jobs.active = Some(job.clone());
                    domain.jobs.save(layout, domain.name())?;
                    verdict
                }
            };
            let def = job.def();
            let mode = def.mode;
            let outcome = verdict.outcome;

            self.stop_proxy(uuid);
            let domain = &inner.domains[at];
            let disks = engine_disks(domain.def()).unwrap_or_default();
            let engine_alive = job.engine.daemon.is_none_or(|pid| daemon::is_ours(pid, &job.engine.qmp, None));
            let mut checkpoint_bitmaps_removed = false;
            if engine_alive
                && let Ok(mut session) =
                    Session::open(Access::Existing { qmp: &job.engine.qmp }, &disks, &what(domain.name()))
            {
                for disk in &job.disks {
                    session.dismiss_job(&disk.job_id);
                    if let Some(id) = &disk.export_id {
                        session.remove_export(id);
                    }
                }
                if job.nbd == Some(NbdSetup::Server) {
                    session.stop_nbd_server();
                }
                for disk in &job.disks {
                    session.close_store(&job.store_of(disk));
                    if let Some((node, name)) = disk.bitmap.as_ref().filter(|(node, _)| *node == disk.node) {
                        session.remove_bitmap(node, name);
                    }
                }
                if outcome != Outcome::Completed
                    && let Some(name) = &job.checkpoint
                    && let Ok(checkpoint) = domain.checkpoints.get(name)
                {
                    let mut actions = Vec::new();
                    let present = session.bitmaps().unwrap_or_default();
                    for (target, bitmap) in bitmap_disks(checkpoint, domain.def()) {
                        let there = present.get(target).is_some_and(|l| l.iter().any(|b| b.name == bitmap));
                        if let (true, Ok(node)) = (there, session.node(target)) {
                            actions.push(Action::RemoveBitmap { node: node.to_string(), name: bitmap.to_string() });
                        }
                    }
                    checkpoint_bitmaps_removed = session.transaction(&actions).is_ok();
                }
            }
            if let Some(pid) = job.engine.daemon {
                let record = DaemonRecord {
                    qmp: job.engine.qmp.clone(),
                    pidfile: job.engine.qmp.with_extension("pid"),
                    sockets: job.engine.events.iter().cloned().collect(),
                    pid: Some(pid),
                    started: None,
                };
                record.stop_and_clean();
                intent::kill_point("backup-finish-daemon-stopped");
            }
            // What the job wrote.
            for disk in &job.disks {
                let keep = mode == BackupMode::Push && outcome == Outcome::Completed;
                if keep {
                    let _ = qmp_backup::sync_file(&disk.store);
                } else if disk.created {
                    let _ = std::fs::remove_file(&disk.store);
                }
            }
            if job.nbd.is_some()
                && let Ok(NbdAddress::Unix(socket)) = listen_address(def)
            {
                intent::remove_socket(&socket);
            }
            let finished = Finished {
                outcome,
                mode,
                elapsed_ms: verdict.elapsed_ms,
                progress: verdict.progress,
                error: verdict.error.clone(),
            };
            // The job no longer holds the disks (its daemon is gone).
            inner.domains[at].jobs.active = None;
            // A checkpoint made with a backup that did not complete would be a base for
            // incrementals that miss data: it goes too (its bitmaps first).
            if outcome != Outcome::Completed
                && let Some(name) = &job.checkpoint
                && inner.domains[at].checkpoints.get(name).is_ok()
            {
                if !checkpoint_bitmaps_removed {
                    // A daemon that died may or may not have written the new bitmap.
                    let checkpoint = inner.domains[at].checkpoints.get(name)?.clone();
                    let dom_name = inner.domains[at].name().to_string();
                    self.journaled(inner, Intent::new("backup cleanup", &dom_name), |inner, journal| {
                        self.remove_bitmaps(&inner.domains[at], &[checkpoint], true, journal)
                    })?;
                }
                self.delete_checkpoint_metadata(&mut inner.domains[at], layout, name, 0)?;
            }
            let domain = &mut inner.domains[at];
            domain.jobs.active = None;
            domain.jobs.completed = Some(finished.clone());
            domain.jobs.save(layout, domain.name())?;
            let mut def = def.clone();
            for disk in def.disks.iter_mut().filter(|d| d.backup) {
                disk.state = Some(outcome.disk_state());
            }
            let paths: Vec<(String, String)> = job.disks.iter().map(|d| (d.target.clone(), d.source.clone())).collect();
            Ok(finished.events(events::driver_key(self), &domain.id(), &def, &paths))
        })?;
        raised.into_iter().for_each(events::emit);
        Ok(())
    }

    fn stop_proxy(&self, uuid: Uuid) {
        let proxy = PROXIES.lock().remove(&(self.root().to_path_buf(), uuid));
        if let Some(proxy) = proxy {
            proxy.stop();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Job calls

impl QemuDriver {
    /// The copies' states, or none when the engine cannot be asked.
    fn live_states(&self, job: &ActiveJob, domain: &str) -> Vec<JobState> {
        Session::open(Access::Existing { qmp: &job.engine.qmp }, &[], &what(domain))
            .and_then(|mut s| s.jobs())
            .unwrap_or_default()
    }

    pub(super) fn backup_xml(&self, dom: &DomainId, flags: u32) -> Result<String> {
        Error::check_flags(FROM, "qemuDomainBackupGetXMLDesc", flags, 0)?;
        self.with_state(Scope::Domain(&dom.name), false, |inner, _| {
            let domain = &inner.domains[inner.position(dom)?];
            let job = domain.jobs.active.as_ref().ok_or_else(|| jobs::no_backup(FROM))?;
            Ok(job.def().format(false))
        })
    }

    pub(super) fn abort_backup(&self, dom: &DomainId, flags: u32) -> Result<()> {
        Error::check_flags(FROM, "qemuDomainAbortJobFlags", flags, jobs::ABORT_FLAGS)?;
        self.with_state(Scope::Domain(&dom.name), true, |inner, layout| {
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
    pub(super) fn block_job_abort(&self, dom: &DomainId, disk: &str, flags: u32) -> Result<()> {
        Error::check_flags(FROM, "qemuDomainBlockJobAbort", flags, jobs::BLOCK_JOB_ABORT_FLAGS)?;
        let wait = self.with_state(Scope::Domain(&dom.name), false, |inner, _| {
            let domain = &inner.domains[inner.position(dom)?];
            if domain.live.is_none() && domain.jobs.active.is_none() {
                return Err(super::not_running());
            }
            let target = jobs::block_job_disk(FROM, domain.def(), disk)?;
            let in_backup = domain.jobs.active.as_ref().is_some_and(|j| j.disks.iter().any(|d| d.target == target));
            jobs::check_block_job_abort(FROM, flags, &target, in_backup)
        })?;
        self.abort_backup(dom, 0)?;
        if !wait {
            return Ok(());
        }
        let deadline = std::time::Instant::now() + engine::default_timeout();
        loop {
            let running = self.with_state(Scope::Domain(&dom.name), false, |inner, _| {
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

    pub(super) fn job_info(&self, dom: &DomainId) -> Result<JobInfo> {
        self.with_state(Scope::Domain(&dom.name), false, |inner, _| {
            let domain = &inner.domains[inner.position(dom)?];
            let Some(job) = &domain.jobs.active else { return Ok(JobInfo::default()) };
            let mode = job.mode();
            let progress = job.progress(mode, &self.live_states(job, domain.name()));
            Ok(jobs::job_info(virDomainJobType::VIR_DOMAIN_JOB_UNBOUNDED as i32, mode, job.elapsed_ms(), &progress))
        })
    }

    pub(super) fn job_stats(&self, dom: &DomainId, flags: u32) -> Result<JobStats> {
        Error::check_flags(FROM, "qemuDomainGetJobStats", flags, jobs::STATS_FLAGS)?;
        self.with_state(Scope::Domain(&dom.name), true, |inner, layout| {
            let at = inner.position(dom)?;
            let domain = &mut inner.domains[at];
            let active = domain.jobs.active.as_ref().map(|job| {
                let mode = job.mode();
                let progress = job.progress(mode, &self.live_states(job, domain.name()));
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

    pub(super) fn block_job_info(&self, dom: &DomainId, disk: &str, flags: u32) -> Result<Option<BlockJobInfo>> {
        Error::check_flags(FROM, "qemuDomainGetBlockJobInfo", flags, jobs::BLOCK_JOB_INFO_FLAGS)?;
        self.with_state(Scope::Domain(&dom.name), false, |inner, _| {
            let domain = &inner.domains[inner.position(dom)?];
            let target = jobs::block_job_disk(FROM, domain.def(), disk)?;
            let Some(job) = &domain.jobs.active else { return Ok(None) };
            let Some(disk) = job.disks.iter().find(|d| d.target == target) else { return Ok(None) };
            let states = self.live_states(job, domain.name());
            let state = states.iter().find(|s| s.id == disk.job_id);
            Ok(Some(BlockJobInfo {
                job_type: jobs::BACKUP_BLOCK_JOB,
                bandwidth: 0,
                cur: state.map_or(0, |s| s.current),
                end: state.map_or(0, |s| s.total),
            }))
        })
    }

    /// Refuses what would take the disks from a shut-off domain's running job.
    pub(super) fn check_no_job_daemon(domain: &QemuDomain, action: &str) -> Result<()> {
        if domain.jobs.active.as_ref().is_some_and(|j| j.engine.daemon.is_some()) {
            return Err(invalid(format!(
                "cannot {action} domain '{}' while a backup job runs on its disks",
                domain.name()
            )));
        }
        Ok(())
    }
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
            nbd: Some(NbdSetup::Proxy { upstream: "/r/n".into(), names: vec![("vda".into(), "vb-pull-0".into())] }),
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

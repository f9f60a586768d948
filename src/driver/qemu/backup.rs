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
use serde_json::json;

use super::store::{self, Layout};
use super::{
    DRIVERS, Engine, FROM, Inner, Live, QemuDomain, QemuDriver, bitmap_disks, check_socket_path, engine_disks,
    events_socket, invalid, now_seconds,
};
use crate::abi::{virDomainBackupBeginFlags as BeginFlags, virDomainJobType};
use crate::conf::backup::{BackupDef, BackupMode, DiskBackupMode, StoreKind, Transport};
use crate::driver::events;
use crate::driver::jobs::{self, Finished, JobSlot, Outcome, Progress};
use crate::driver::{BlockJobInfo, DomainId, JobInfo, JobStats};
use crate::engine::backup::{self as qmp_backup, Creation, JobState, NbdAddress, Store, Sync};
use crate::engine::nbd_proxy::{Listen, NbdProxy};
use crate::engine::qmp::Qmp;
use crate::engine::{self, Access, Session, daemon};
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
            return store::remove(&path);
        }
        let text = serde_json::to_string_pretty(self).expect("a job file serializes");
        store::save(&path, &text)
    }
}

/// A running backup job, as recorded for every process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct ActiveJob {
    /// The process that watches the job.
    pub owner: u32,
    /// When it started, in milliseconds since the epoch; it also tells jobs apart.
    pub started_ms: u64,
    /// The backup definition, in its status form.
    pub backup: String,
    /// The checkpoint created with the backup.
    pub checkpoint: Option<String>,
    /// `virDomainAbortJob()` was called.
    pub aborting: bool,
    pub engine: JobEngine,
    pub nbd: Option<NbdSetup>,
    pub disks: Vec<JobDisk>,
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
    fn def(&self) -> BackupDef {
        BackupDef::parse_status(&self.backup).unwrap_or_default()
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

/// Removes a unix socket file left at `path` (anything else there is kept).
fn remove_stale_socket(path: &Path) {
    use std::os::unix::fs::FileTypeExt;
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        let _ = std::fs::remove_file(path);
    }
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
            remove_stale_socket(path);
            Listen::Unix(path.clone())
        }
        NbdAddress::Tcp { host, port } => Listen::Tcp { host: host.clone(), port: *port as u16 },
    };
    NbdProxy::start(listen, upstream.to_path_buf(), names.to_vec())
        .map_err(|e| Error::system(FROM, "cannot listen for the backup's NBD clients", &e))
}

/// What a begin has made so far, to be undone if a later step fails.
#[derive(Default)]
struct Undo {
    created_files: Vec<PathBuf>,
    stores: Vec<Store>,
    daemon: Option<(u32, PathBuf)>,
    /// Copies started (job ids), and the bitmaps of the new checkpoint (node, name).
    jobs: Vec<String>,
    checkpoint_bitmaps: Vec<(String, String)>,
    temporary_bitmaps: Vec<(String, String)>,
    exports: Vec<String>,
    nbd_server: bool,
    socket: Option<PathBuf>,
    proxy: Option<(PathBuf, Uuid)>,
}

impl Undo {
    fn run(self, session: Option<Session>) {
        if let Some(key) = &self.proxy {
            PROXIES.lock().remove(key);
        }
        if let Some(mut session) = session {
            for id in &self.exports {
                let _ = session.execute("block-export-del", Some(json!({"id": id, "mode": "hard"})));
            }
            if self.nbd_server {
                let _ = session.execute("nbd-server-stop", None);
            }
            for id in &self.jobs {
                let _ = session.execute("block-job-cancel", Some(json!({"device": id, "force": true})));
            }
            wait_concluded(&mut session, &self.jobs);
            for id in &self.jobs {
                let _ = session.execute("job-dismiss", Some(json!({"id": id})));
            }
            for (node, name) in self.checkpoint_bitmaps.iter().chain(&self.temporary_bitmaps) {
                let _ = session.execute("block-dirty-bitmap-remove", Some(json!({"node": node, "name": name})));
            }
            for store in self.stores.iter().rev() {
                session.close_store(store);
            }
            // The monitor takes one client at a time: let go of it before the daemon is
            // told to quit.
        }
        if let Some((pid, qmp)) = &self.daemon {
            stop_daemon(*pid, qmp);
            remove_job_files(qmp);
        }
        for path in &self.created_files {
            let _ = std::fs::remove_file(path);
        }
        if let Some(socket) = &self.socket {
            remove_stale_socket(socket);
        }
    }
}

/// Removes the sockets and pid file of a job's daemon (next to its monitor socket), and
/// their folder when nothing else is in it.
fn remove_job_files(qmp: &Path) {
    let Some(dir) = qmp.parent() else { return };
    for name in ["job-qmp.sock", "job-events.sock", "job.pid"] {
        let _ = std::fs::remove_file(dir.join(name));
    }
    let _ = std::fs::remove_dir(dir);
}

/// Waits (boundedly) until the given jobs have concluded.
fn wait_concluded(session: &mut Session, ids: &[String]) {
    if ids.is_empty() {
        return;
    }
    let deadline = std::time::Instant::now() + engine::default_timeout();
    while std::time::Instant::now() < deadline {
        let Ok(states) = session.query_jobs() else { return };
        if states.iter().filter(|s| ids.contains(&s.id)).all(JobState::concluded) {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Asks a daemon started for a job to quit (writing the bitmaps into the images), and
/// kills it if it does not.
fn stop_daemon(pid: u32, qmp: &Path) {
    let timeout = engine::default_timeout();
    if let Ok(mut monitor) = Qmp::connect(qmp, timeout) {
        let _ = monitor.execute("quit", None);
    }
    if !daemon::wait_gone(pid, timeout) {
        daemon::kill(pid);
        daemon::wait_gone(pid, timeout);
    }
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
        let job = self
            .with_state(true, |inner, layout| self.start_job(inner, layout, dom, backup_xml, checkpoint_xml, flags))?;
        self.watch(dom.uuid, job);
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
        let mut def = begin.def;
        if let Some(disk) = def.disks.iter().find(|d| d.backup && d.encryption.is_some()) {
            return Err(Error::new(
                FROM,
                Code::VIR_ERR_CONFIG_UNSUPPORTED,
                format!("encrypted backup store for disk '{}' is not supported", disk.name),
            ));
        }
        for disk in def.disks.iter().filter(|d| d.backup) {
            let source = dom_def.disk(&disk.name).expect("aligned disks exist");
            if disk.mode == Some(DiskBackupMode::Incremental) && source.format.as_deref() != Some("qcow2") {
                let checkpoint = disk.incremental.clone().unwrap_or_default();
                return Err(jobs::broken_bitmap(FROM, &checkpoint, &disk.name));
            }
        }
        let disks = engine_disks(&dom_def)?;
        let reuse = flags & REUSE_EXTERNAL != 0;
        let started_ms = now_ms();

        // Reach the disks.
        let mut undo = Undo::default();
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
                let (qmp, events, pidfile) =
                    (run_dir.join("job-qmp.sock"), run_dir.join("job-events.sock"), run_dir.join("job.pid"));
                check_socket_path(&qmp)?;
                check_socket_path(&events)?;
                std::fs::create_dir_all(&run_dir)
                    .map_err(|e| Error::system(FROM, format!("cannot create '{}'", run_dir.display()), &e))?;
                let pid = daemon::start(&daemon::DaemonConfig {
                    qmp: &qmp,
                    pidfile: &pidfile,
                    disks: &disks,
                    nbd: None,
                    events: Some(&events),
                })
                .map_err(|e| {
                    Error::internal(
                        FROM,
                        format!("qemu-storage-daemon could not open the disks of domain '{}': {e}", domain.name()),
                    )
                })?;
                undo.daemon = Some((pid, qmp.clone()));
                (JobEngine { qmp, events: Some(events), daemon: Some(pid) }, None)
            }
        };
        let mut session = match Session::open(Access::Existing { qmp: &engine.qmp }, &disks, &what(domain.name())) {
            Ok(s) => s,
            Err(e) => {
                undo.run(None);
                return Err(e);
            }
        };
        let checkpoint_def = begin.checkpoint.as_ref().map(|c| c.def.clone());
        let started = self
            .prepare_disks(&mut session, &mut undo, &mut def, &dom_def, checkpoint_def.as_ref(), reuse)
            .and_then(|mut job_disks| {
                let nbd =
                    self.export_views(&mut session, &mut undo, &def, &mut job_disks, own_nbd.as_deref(), dom.uuid)?;
                Ok((job_disks, nbd))
            })
            .and_then(|(job_disks, nbd)| {
                // The copies run: record the checkpoint and the job.
                let domain = &mut inner.domains[at];
                if let Some(checkpoint) = &checkpoint_def {
                    self.save_checkpoint(domain.name(), checkpoint)?;
                    undo.created_files.push(layout.checkpoint_file(domain.name(), &checkpoint.name));
                }
                let job = ActiveJob {
                    owner: std::process::id(),
                    started_ms,
                    backup: def.format(true),
                    checkpoint: checkpoint_def.as_ref().map(|c| c.name.clone()),
                    aborting: false,
                    engine: engine.clone(),
                    nbd,
                    disks: job_disks,
                };
                let file = JobFile { active: Some(job.clone()), completed: domain.jobs.completed.clone() };
                file.save(layout, domain.name())?;
                Ok((job, file))
            });
        let (job, file) = match started {
            Ok(done) => done,
            Err(e) => {
                undo.run(Some(session));
                return Err(e);
            }
        };
        drop(session);
        let domain = &mut inner.domains[at];
        domain.jobs = file;
        if let Some(prepared) = begin.checkpoint {
            domain.checkpoints.commit(prepared)?;
            self.save_current(domain)?;
        }
        Ok(job)
    }

    /// Checks the incremental disks' bitmaps, creates and opens the stores, and starts
    /// every copy (with the new checkpoint's bitmaps) in one transaction. Fills in the
    /// stores' formats in `def`.
    fn prepare_disks(
        &self,
        session: &mut Session,
        undo: &mut Undo,
        def: &mut BackupDef,
        dom_def: &crate::conf::domain::DomainDef,
        checkpoint: Option<&crate::conf::checkpoint::CheckpointDef>,
        reuse: bool,
    ) -> Result<Vec<JobDisk>> {
        let bitmaps = session.bitmaps()?;
        let sizes = session.virtual_sizes()?;
        let mode = def.mode;
        let mut actions = Vec::new();
        let mut job_disks = Vec::new();
        if let Some(checkpoint) = checkpoint {
            for (target, bitmap) in bitmap_disks(checkpoint, dom_def) {
                let node = session.node(target)?.to_string();
                actions.push(json!({
                    "type": "block-dirty-bitmap-add",
                    "data": {"node": node, "name": bitmap, "persistent": true},
                }));
                undo.checkpoint_bitmaps.push((node, bitmap.to_string()));
            }
        }
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
                match qmp_backup::create_exclusive(&path) {
                    Ok(true) => undo.created_files.push(path.clone()),
                    Ok(false) => return Err(store_exists(&path, &disk.name)),
                    Err(e) => return Err(Error::system(FROM, format!("cannot create '{}'", path.display()), &e)),
                }
            } else if !path.exists() {
                return Err(Error::new(
                    FROM,
                    Code::VIR_ERR_INVALID_ARG,
                    format!("store '{}' for backup of '{}' does not exist", path.display(), disk.name),
                ));
            }
            let creation = if reuse {
                Creation::Existing
            } else if format == "raw" {
                // A raw store is only sized; there is nothing to format.
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_len(size))
                    .map_err(|e| Error::system(FROM, format!("cannot size '{}'", path.display()), &e))?;
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
                file_node: format!("vb-store{index}-file"),
                format_node: format!("vb-store{index}"),
                creation,
                backing_node: (mode == BackupMode::Pull).then(|| node.clone()),
            };
            session.open_store(&store)?;
            undo.stores.push(store.clone());

            let job_id = format!("backup-{}-{node}", disk.name);
            let bitmap = base.as_ref().map(|(checkpoint, granularity)| {
                // Push: the copy reads the bitmap on the disk; pull: the export offers it
                // from the scratch image.
                let on = if mode == BackupMode::Push { node.clone() } else { store.format_node.clone() };
                let name = jobs::temporary_bitmap(disk);
                actions.push(qmp_backup::add_temporary_bitmap(&on, &name, *granularity));
                actions.push(qmp_backup::merge_bitmaps(&on, &name, &[(node.as_str(), checkpoint.as_str())]));
                (on, name, checkpoint.clone())
            });
            let sync = match (&mode, &bitmap) {
                (BackupMode::Pull, _) => Sync::None,
                (BackupMode::Push, Some((_, name, _))) => Sync::Incremental { bitmap: name.clone() },
                (BackupMode::Push, None) => Sync::Full,
            };
            // A pull backup's copy runs only as the guest writes: it is never limited.
            let speed = if mode == BackupMode::Push { copy_speed() } else { None };
            actions.push(qmp_backup::backup_action(&job_id, &node, &store.format_node, &sync, speed));
            if let Some((on, name, _)) = &bitmap
                && mode == BackupMode::Push
            {
                undo.temporary_bitmaps.push((on.clone(), name.clone()));
            }
            job_disks.push(JobDisk {
                target: disk.name.clone(),
                source: source_path,
                node: node.clone(),
                job_id: job_id.clone(),
                store: path,
                store_format: format,
                file_node: store.file_node.clone(),
                format_node: store.format_node.clone(),
                created,
                bitmap: bitmap.map(|(on, name, _)| (on, name)),
                export_id: None,
                size,
            });
        }
        session.transaction(actions)?;
        undo.jobs = job_disks.iter().map(|d| d.job_id.clone()).collect();
        Ok(job_disks)
    }

    /// Pull mode: exports each scratch image (the disk as it was at the start) under its
    /// export name, with its bitmap. A shut-off domain's job daemon and an adopted QEMU
    /// serve them from an NBD server started on the requested address; a running
    /// domain's daemon already has a server (its disks), so the views get internal names
    /// there and a proxy listens on the requested address.
    fn export_views(
        &self,
        session: &mut Session,
        undo: &mut Undo,
        def: &BackupDef,
        job_disks: &mut [JobDisk],
        own_nbd: Option<&Path>,
        uuid: Uuid,
    ) -> Result<Option<NbdSetup>> {
        if def.mode != BackupMode::Pull {
            return Ok(None);
        }
        let address = listen_address(def)?;
        if own_nbd.is_none() {
            if let NbdAddress::Unix(path) = &address {
                check_socket_path(path)?;
                remove_stale_socket(path);
                undo.socket = Some(path.clone());
            }
            session.start_nbd_server(&address)?;
            undo.nbd_server = true;
        }
        let mut names = Vec::new();
        for (index, disk) in job_disks.iter_mut().enumerate() {
            let backup_disk = def.disks.iter().find(|d| d.name == disk.target).expect("a backed-up disk");
            let visible = backup_disk.export_name.clone().unwrap_or_else(|| disk.target.clone());
            let name = if own_nbd.is_some() { format!("vb-pull-{index}") } else { visible.clone() };
            let id = format!("vb-export{index}");
            let bitmap = disk.bitmap.as_ref().map(|(_, b)| b.as_str());
            session.export(&id, &disk.format_node, &name, bitmap)?;
            undo.exports.push(id.clone());
            disk.export_id = Some(id);
            names.push((visible, name));
        }
        match own_nbd {
            None => Ok(Some(NbdSetup::Server)),
            Some(upstream) => {
                let proxy = start_proxy(&address, upstream, &names)?;
                PROXIES.lock().insert((self.root().to_path_buf(), uuid), proxy);
                undo.proxy = Some((self.root().to_path_buf(), uuid));
                Ok(Some(NbdSetup::Proxy { upstream: upstream.to_path_buf(), names }))
            }
        }
    }
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
        while let Ok(answer) = monitor.execute("query-jobs", None) {
            let states = qmp_backup::parse_jobs(&answer);
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
        let answer = Qmp::connect(&engine.qmp, timeout).and_then(|mut m| m.execute("query-jobs", None));
        match answer {
            Ok(answer) => {
                let states = qmp_backup::parse_jobs(&answer);
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
    /// process).
    fn watch(&self, uuid: Uuid, job: ActiveJob) {
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
            let observed = observe(&job.engine, &job.job_ids());
            if let Err(e) = driver.finish_backup(uuid, job.started_ms, observed) {
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
        let mut any = false;
        for domain in &mut inner.domains {
            let mut changed = false;
            let uuid = domain.def().uuid;
            let Some(job) = domain.jobs.active.as_mut() else { continue };
            if job.owner != me && daemon::alive(job.owner) {
                continue;
            }
            if job.owner != me {
                job.owner = me;
                changed = true;
            }
            if let Some(NbdSetup::Proxy { upstream, names }) = &job.nbd {
                let key = (self.root().to_path_buf(), uuid);
                if !PROXIES.lock().contains_key(&key)
                    && let Ok(address) = listen_address(&job.def())
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
            self.watch(uuid, job);
        }
        Ok(any)
    }

    /// Ends a job whose copies ended: closes what it opened, keeps or removes what it
    /// wrote, records its figures and raises its events.
    fn finish_backup(&self, uuid: Uuid, started_ms: u64, observed: Observed) -> Result<()> {
        let raised = self.with_state(true, |inner, layout| {
            let Some(at) = inner.domains.iter().position(|d| d.def().uuid == uuid) else { return Ok(Vec::new()) };
            let Some(job) = inner.domains[at].jobs.active.clone().filter(|j| j.started_ms == started_ms) else {
                return Ok(Vec::new());
            };
            let def = job.def();
            let mode = def.mode;
            // How it went.
            let mut failed = observed.engine_gone;
            let mut cancelled = false;
            let mut error =
                observed.engine_gone.then(|| "the engine of the domain exited during the backup".to_string());
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
            let outcome = Outcome::of(mode, failed, cancelled);
            let progress = job.progress(mode, &observed.states);

            self.stop_proxy(uuid);
            let domain = &inner.domains[at];
            let disks = engine_disks(domain.def()).unwrap_or_default();
            let mut checkpoint_bitmaps_removed = false;
            if !observed.engine_gone
                && let Ok(mut session) =
                    Session::open(Access::Existing { qmp: &job.engine.qmp }, &disks, &what(domain.name()))
            {
                for disk in &job.disks {
                    let _ = session.execute("job-dismiss", Some(json!({"id": disk.job_id})));
                    if let Some(id) = &disk.export_id {
                        let _ = session.execute("block-export-del", Some(json!({"id": id, "mode": "hard"})));
                    }
                }
                if job.nbd == Some(NbdSetup::Server) {
                    let _ = session.execute("nbd-server-stop", None);
                }
                for disk in &job.disks {
                    session.close_store(&job.store_of(disk));
                    if let Some((node, name)) = disk.bitmap.as_ref().filter(|(node, _)| *node == disk.node) {
                        let _ = session.execute("block-dirty-bitmap-remove", Some(json!({"node": node, "name": name})));
                    }
                }
                if outcome != Outcome::Completed
                    && let Some(name) = &job.checkpoint
                    && let Ok(checkpoint) = domain.checkpoints.get(name)
                {
                    let mut actions = Vec::new();
                    for (target, bitmap) in bitmap_disks(checkpoint, domain.def()) {
                        if let Ok(node) = session.node(target) {
                            actions.push(
                                json!({"type": "block-dirty-bitmap-remove", "data": {"node": node, "name": bitmap}}),
                            );
                        }
                    }
                    checkpoint_bitmaps_removed = session.transaction(actions).is_ok();
                }
            }
            if let Some(pid) = job.engine.daemon {
                stop_daemon(pid, &job.engine.qmp);
                remove_job_files(&job.engine.qmp);
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
            if job.nbd == Some(NbdSetup::Server)
                && let Ok(NbdAddress::Unix(socket)) = listen_address(&def)
            {
                remove_stale_socket(&socket);
            }
            let finished = Finished { outcome, mode, elapsed_ms: job.elapsed_ms(), progress, error };
            let domain = &mut inner.domains[at];
            domain.jobs.active = None;
            domain.jobs.completed = Some(finished.clone());
            domain.jobs.save(layout, domain.name())?;
            // A checkpoint made with a backup that did not complete would be a base for
            // incrementals that miss data: it goes too.
            if outcome != Outcome::Completed
                && let Some(name) = &job.checkpoint
                && domain.checkpoints.get(name).is_ok()
            {
                if !checkpoint_bitmaps_removed {
                    // After a dead daemon a new bitmap may never have reached the image.
                    let checkpoint = domain.checkpoints.get(name)?.clone();
                    let _ = self.remove_bitmaps(domain, &[checkpoint], true);
                }
                self.delete_checkpoint_metadata(domain, layout, name, 0)?;
            }
            let mut def = def;
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
            .and_then(|mut s| s.query_jobs())
            .unwrap_or_default()
    }

    pub(super) fn backup_xml(&self, dom: &DomainId, flags: u32) -> Result<String> {
        Error::check_flags(FROM, "qemuDomainBackupGetXMLDesc", flags, 0)?;
        self.with_state(false, |inner, _| {
            let domain = &inner.domains[inner.position(dom)?];
            let job = domain.jobs.active.as_ref().ok_or_else(|| jobs::no_backup(FROM))?;
            Ok(job.def().format(false))
        })
    }

    pub(super) fn abort_backup(&self, dom: &DomainId, flags: u32) -> Result<()> {
        Error::check_flags(FROM, "qemuDomainAbortJobFlags", flags, jobs::ABORT_FLAGS)?;
        self.with_state(true, |inner, layout| {
            let at = inner.position(dom)?;
            let domain = &mut inner.domains[at];
            let name = domain.name().to_string();
            let job = domain.jobs.active.as_mut().ok_or_else(|| jobs::no_active_job(FROM))?;
            jobs::check_abort_flags(FROM, flags)?;
            let mut session = Session::open(Access::Existing { qmp: &job.engine.qmp }, &[], &what(&name))?;
            for disk in &job.disks {
                // A copy that already ended cannot be cancelled; that is fine.
                let _ = session.execute("block-job-cancel", Some(json!({"device": disk.job_id, "force": true})));
            }
            job.aborting = true;
            domain.jobs.save(layout, &name)
        })
    }

    /// `virDomainBlockJobAbort()` on a disk of a backup: ends the whole backup, as
    /// `virDomainAbortJob()` does, and without ASYNC waits for its end.
    pub(super) fn block_job_abort(&self, dom: &DomainId, disk: &str, flags: u32) -> Result<()> {
        Error::check_flags(FROM, "qemuDomainBlockJobAbort", flags, jobs::BLOCK_JOB_ABORT_FLAGS)?;
        let wait = self.with_state(false, |inner, _| {
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
            let running =
                self.with_state(false, |inner, _| Ok(inner.domains[inner.position(dom)?].jobs.active.is_some()))?;
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
        self.with_state(false, |inner, _| {
            let domain = &inner.domains[inner.position(dom)?];
            let Some(job) = &domain.jobs.active else { return Ok(JobInfo::default()) };
            let mode = job.mode();
            let progress = job.progress(mode, &self.live_states(job, domain.name()));
            Ok(jobs::job_info(virDomainJobType::VIR_DOMAIN_JOB_UNBOUNDED as i32, mode, job.elapsed_ms(), &progress))
        })
    }

    pub(super) fn job_stats(&self, dom: &DomainId, flags: u32) -> Result<JobStats> {
        Error::check_flags(FROM, "qemuDomainGetJobStats", flags, jobs::STATS_FLAGS)?;
        self.with_state(true, |inner, layout| {
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
        self.with_state(false, |inner, _| {
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
            started_ms: 1000,
            backup: "<domainbackup mode='pull'/>".into(),
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
        };
        let file = JobFile { active: Some(job.clone()), completed: None };
        let text = serde_json::to_string(&file).unwrap();
        assert_eq!(JobFile::parse(Some(&text), "d"), file);
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

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

pub(crate) mod job;
pub(crate) mod watch;

use crate::abi::virDomainBackupBeginFlags as BeginFlags;
use crate::conf::backup::{BackupDef, BackupMode, DiskBackupMode, StoreKind, Transport};
use crate::driver::DomainId;
use crate::driver::jobs::{self};
use crate::driver::qemu::backup::job::{ActiveJob, JobDisk, JobEngine, JobFile};
use crate::driver::qemu::checkpoint::bitmap_disks;
use crate::driver::qemu::config::{BackupTls, Config};
use crate::driver::qemu::domain::check_disk_files;
use crate::driver::qemu::domain::engine_disks;
use crate::driver::qemu::intent::{self, CheckpointStep, DaemonRecord, DoneWhen, Intent, Journal, OwnedFile};
use crate::driver::qemu::state::{
    Engine, FROM, Inner, Live, QemuDriver, check_socket_path, events_socket, now_seconds,
};
use crate::driver::qemu::store::{self, Layout, Scope};
use crate::engine::backup::{Creation, NbdAddress, Store};
use crate::engine::commands::{Action, Sync};
use crate::engine::{self, Access, EngineDisk, Session, daemon};
use crate::error::{Code, Error, Result};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Requests in flight per push copy (see `prepare_disks`).
const COPY_WORKERS: u32 = 8;

const REUSE_EXTERNAL: u32 = BeginFlags::VIR_DOMAIN_BACKUP_BEGIN_REUSE_EXTERNAL as u32;

/// A limit on each disk's copy, in bytes per second: `VIRBACKUP_BACKUP_SPEED`, for
/// backups that must leave the disks' bandwidth to the guest.
pub(crate) fn copy_speed() -> Option<u64> {
    std::env::var("VIRBACKUP_BACKUP_SPEED").ok().and_then(|v| v.parse().ok()).filter(|&v| v > 0)
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

pub(crate) fn what(domain: &str) -> String {
    format!("the engine of domain '{domain}'")
}

/// The error of a store that should not be there.
pub(crate) fn store_exists(path: &Path, target: &str) -> Error {
    Error::new(FROM, Code::VIR_ERR_INVALID_ARG, format!("store '{}' for backup of '{target}' exists", path.display()))
}

/// The address a pull backup listens on.
pub(crate) fn listen_address(def: &BackupDef) -> Result<NbdAddress> {
    match def.server.as_ref().map(|s| &s.transport) {
        Some(Transport::Unix { socket }) => Ok(NbdAddress::Unix(socket.clone())),
        Some(Transport::Tcp { name, port: Some(port) }) => Ok(NbdAddress::Tcp { host: name.clone(), port: *port }),
        _ => Err(Error::new(FROM, Code::VIR_ERR_OPERATION_UNSUPPORTED, "<domainbackup> must specify TCP port for now")),
    }
}

/// The file a backup creates at `path`, with the placeholder name that tells it apart
/// from a file that was there before (see `intent::OwnedFile`).
pub(crate) fn owned_file(path: &Path, op: &str) -> Result<OwnedFile> {
    let name = path.file_name().ok_or_else(|| {
        Error::new(FROM, Code::VIR_ERR_INVALID_ARG, format!("'{}' is not a file name", path.display()))
    })?;
    let placeholder = path.with_file_name(format!(".{}.vb-{op}", name.to_string_lossy()));
    Ok(OwnedFile { path: path.to_path_buf(), placeholder })
}

/// Checks the address a pull backup will listen on, before anything is made: a unix
/// socket path must fit in a socket address.
pub(crate) fn check_pull_address(def: &BackupDef) -> Result<()> {
    if let Ok(NbdAddress::Unix(path)) = listen_address(def) {
        check_socket_path(&path)?;
    }
    Ok(())
}

/// Clears the way for a pull backup's unix socket: a socket nobody listens on is removed;
/// anything else there — a file, a folder, a socket in use — is refused (binding would
/// delete it).
pub(crate) fn prepare_socket_path(path: &Path) -> Result<()> {
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
pub(crate) fn restrict_socket(path: &Path) -> Result<()> {
    daemon::restrict(path).map_err(|e| Error::system(FROM, format!("cannot restrict '{}'", path.display()), &e))
}

/// What a backup begin was asked for, once checked.
pub(crate) struct Plan<'a> {
    pub begin: jobs::Begin,
    pub flags: u32,
    pub started_ms: u64,
    pub disks: &'a [EngineDisk],
    /// The credentials of a pull backup over TLS.
    pub tls: Option<BackupTls>,
}

impl QemuDriver {
    pub(crate) fn start_job(
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
        // A TLS folder that is configured but broken counts as configured: its error
        // comes when TLS is used.
        let tls = Config::load(layout)?.backup_tls();
        let context = jobs::BeginContext {
            from: FROM,
            api: "qemuBackupBegin",
            domain: &dom_def,
            checkpoints: &domain.checkpoints,
            busy: domain.jobs.active.is_some(),
            now: now_seconds(),
            tls_configured: !matches!(tls, Ok(None)),
        };
        let begin = jobs::prepare_begin(&context, flags, backup_xml, checkpoint_xml)?;
        let wants_tls = begin.def.server.as_ref().is_some_and(|s| s.tls == Some(true));
        let tls = if begin.def.mode == BackupMode::Pull && wants_tls { tls? } else { None };
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
            check_disk_files(domain.name(), &disks)?;
        }
        let started_ms = now_ms();
        let name = domain.name().to_string();
        let mut intent = Intent::new("backup", &name);
        intent.done_when = Some(DoneWhen::Job { started_ms });
        intent.checkpoint = begin.checkpoint.as_ref().map(|c| CheckpointStep::Create { name: c.def.name.clone() });
        let mut journal = Journal::begin(layout, intent)?;
        let mut session = None;
        let plan = Plan { begin, flags, started_ms, disks: &disks, tls };
        let result = self.begin_steps(inner, layout, at, plan, &mut journal, &mut session);
        // Done or not, what the steps left is settled: undone when the job is not
        // recorded; when it is, only the placeholders of its files go.
        let settled = self.settle(inner, journal, session);
        match (result, settled) {
            (Ok(job), Ok(())) => Ok(job),
            (Ok(_), Err(e)) | (Err(e), _) => Err(e),
        }
    }

    /// The steps of a backup begin, each recorded in the journal before it runs.
    pub(crate) fn begin_steps(
        &self,
        inner: &mut Inner,
        layout: &Layout,
        at: usize,
        plan: Plan<'_>,
        journal: &mut Journal,
        session_slot: &mut Option<Session>,
    ) -> Result<ActiveJob> {
        let Plan { begin, flags, started_ms, disks, tls } = plan;
        let domain = &inner.domains[at];
        let dom_def = domain.def().clone();
        let mut def = begin.def;
        let reuse = flags & REUSE_EXTERNAL != 0;
        let op = journal.intent.op.clone();

        // Reach the disks: the running engine, or a daemon started for the job.
        let engine = match &domain.live {
            Some(Live { engine: Engine::Ours { qmp, .. }, .. }) => {
                let events = Some(events_socket(qmp)).filter(|p| p.exists());
                JobEngine { qmp: qmp.clone(), events, daemon: None }
            }
            Some(Live { engine: Engine::Adopted { qmp }, .. }) => {
                JobEngine { qmp: qmp.clone(), events: None, daemon: None }
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
                    daemon::DaemonConfig { qmp: &qmp, pidfile: &pidfile, disks, exports: &[], events: Some(&events) };
                let pid = daemon::start(&config).map_err(|e| engine::daemon_error(&what(domain.name()), disks, &e))?;
                intent::kill_point("backup-daemon-started");
                journal.record(|i| {
                    i.daemons[0].pid = Some(pid);
                    i.daemons[0].started = daemon::start_time(pid);
                })?;
                JobEngine { qmp, events: Some(events), daemon: Some(pid) }
            }
        };
        journal.record(|i| i.engine = Some(engine.qmp.clone()))?;
        let session =
            session_slot.insert(Session::open(Access::Existing { qmp: &engine.qmp }, disks, &what(domain.name()))?);
        let checkpoint_def = begin.checkpoint.as_ref().map(|c| c.def.clone());
        let mut job_disks =
            self.prepare_disks(session, journal, &mut def, &dom_def, checkpoint_def.as_ref(), reuse, &op)?;
        let (nbd_server, tls_object) = self.export_views(session, journal, &def, &mut job_disks, tls.as_ref())?;

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
            nbd_server,
            tls_object,
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
    pub(crate) fn prepare_disks(
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
                overlay: false,
            };
            plan.nodes.extend([store.file_node.clone(), store.format_node.clone()]);
            if matches!(store.creation, Creation::New { .. }) {
                plan.jobs.push(store.create_job_id());
            }
            let job_id = format!("backup-{}-vb{op}", disk.name);
            plan.jobs.push(job_id.clone());
            // What changed since the checkpoint: its bitmap on the disk's image, and on
            // each image below it in the backing chain that still has one (an external
            // snapshot's overlay carries the bitmap on; the older writes are below).
            let mut sources = Vec::new();
            if let Some((checkpoint, _)) = &base {
                sources.push((node.clone(), checkpoint.clone()));
                for below in session.backing_nodes(&disk.name)? {
                    if below.bitmaps.iter().any(|b| &b.name == checkpoint) {
                        sources.push((below.name.clone(), checkpoint.clone()));
                    }
                }
            }
            let bitmap = base.as_ref().map(|(checkpoint, granularity)| {
                // Push: the copy reads the bitmap on the disk; pull: the export offers it
                // from the scratch image.
                let on = if mode == BackupMode::Push { node.clone() } else { store.format_node.clone() };
                let name = jobs::temporary_bitmap(disk);
                (on, name, checkpoint.clone(), *granularity, sources)
            });
            if let Some((on, name, _, _, _)) = &bitmap
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
            if let Some((on, name, _, granularity, sources)) = &bitmap {
                actions.push(Action::AddTemporaryBitmap {
                    node: on.clone(),
                    name: name.clone(),
                    granularity: *granularity,
                });
                actions.push(Action::MergeBitmaps { node: on.clone(), target: name.clone(), sources: sources.clone() });
            }
            let sync = match (&mode, &bitmap) {
                (BackupMode::Pull, _) => Sync::None,
                (BackupMode::Push, Some((_, name, _, _, _))) => Sync::Incremental { bitmap: name.clone() },
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
                // Fewer requests in flight than QEMU's default 64: its writes extend
                // the target, which the file system serialises; 8 measured fastest.
                workers: (mode == BackupMode::Push).then_some(COPY_WORKERS),
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
                bitmap: bitmap.map(|(on, name, _, _, _)| (on, name)),
                export_id: None,
                size,
            });
        }
        session.transaction(&actions)?;
        Ok(job_disks)
    }

    /// Pull mode: exports each scratch image (the disk as it was at the start) under its
    /// export name, with its bitmap, from the engine's own NBD server started on the
    /// requested address (the engine serves its disks to writers otherwise, so the
    /// server is free), with TLS when `tls` is given. A unix socket is made for its
    /// owner only (mode 0600), whatever the umask. Returns whether it started the
    /// server, and the id of the TLS credentials it added.
    pub(crate) fn export_views(
        &self,
        session: &mut Session,
        journal: &mut Journal,
        def: &BackupDef,
        job_disks: &mut [JobDisk],
        tls: Option<&BackupTls>,
    ) -> Result<(bool, Option<String>)> {
        if def.mode != BackupMode::Pull {
            return Ok((false, None));
        }
        let address = listen_address(def)?;
        let op = journal.intent.op.clone();
        let ids: Vec<String> = (0..job_disks.len()).map(|i| format!("vb{op}-e{i}")).collect();
        let tls_id = tls.map(|_| format!("vb{op}-tls"));
        journal.record(|i| {
            i.exports.extend(ids.iter().cloned());
            i.nbd_server = true;
            i.objects.extend(tls_id.clone());
            if let NbdAddress::Unix(path) = &address {
                i.sockets.push(path.clone());
            }
        })?;
        if let NbdAddress::Unix(path) = &address {
            prepare_socket_path(path)?;
        }
        if let (Some(tls), Some(id)) = (tls, &tls_id) {
            session.add_tls_credentials(id, &tls.dir, tls.verify)?;
        }
        session.start_nbd_server(&address, tls_id.as_deref())?;
        if let NbdAddress::Unix(path) = &address {
            restrict_socket(path)?;
        }
        for (disk, id) in job_disks.iter_mut().zip(ids) {
            let backup_disk = def.disks.iter().find(|d| d.name == disk.target).expect("a backed-up disk");
            let name = backup_disk.export_name.clone().unwrap_or_else(|| disk.target.clone());
            let bitmap = disk.bitmap.as_ref().map(|(_, b)| b.as_str());
            session.export(&id, &disk.format_node, &name, bitmap)?;
            disk.export_id = Some(id);
        }
        Ok((true, tls_id))
    }
}

/// `virDomainBackupBegin()`.
pub(crate) fn backup_begin(
    driver: &QemuDriver,
    dom: &DomainId,
    backup_xml: &str,
    checkpoint_xml: Option<&str>,
    flags: u32,
) -> Result<()> {
    let job = driver.with_state(Scope::Domain(&dom.name), true, |inner, layout| {
        driver.start_job(inner, layout, dom, backup_xml, checkpoint_xml, flags)
    })?;
    driver.watch(&dom.name, dom.uuid, job);
    Ok(())
}

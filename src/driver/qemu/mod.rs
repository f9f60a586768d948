//! The embedded QEMU driver, `qemu:///embed?root=DIR` and `qemu:///session`: domains
//! defined from libvirt XML, their disks owned by a QEMU block layer reached over QMP
//! (see [`crate::engine`]), checkpoints kept as persistent qcow2 dirty bitmaps, and all
//! state under DIR (see [`store`]).
//!
//! Unlike libvirt's QEMU driver, checkpoints of shut-off domains work: the driver starts
//! a `qemu-storage-daemon` on the disks for the operation and stops it afterwards.
//!
//! Several processes may use the same root: every operation holds an exclusive lock on
//! `DIR/run/qemu/.lock`, and a generation counter tells a process when another one
//! changed the state, so it reloads before going on.

mod backup;
mod intent;
pub mod store;

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, OnceLock, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use super::checkpoints::{self, Checkpoints};
use super::{
    BlockInfo, BlockJobInfo, DomainFacts, DomainId, DomainInfo, Driver, JobInfo as DomainJobInfo, JobStats,
    LIST_DOMAINS_ALL, Listing, list_filter_accepts,
};
use crate::abi::{
    virDomainCheckpointCreateFlags as CreateFlags, virDomainCheckpointDeleteFlags as DeleteFlags,
    virDomainCheckpointXMLFlags as CheckpointXmlFlags, virDomainCreateFlags as StartFlags,
    virDomainDefineFlags as DefineFlags, virDomainDestroyFlagsValues as DestroyFlags, virDomainPausedReason,
    virDomainRunningReason, virDomainShutdownFlagValues as ShutdownFlags, virDomainShutoffReason, virDomainState,
    virDomainUndefineFlagsValues as UndefineFlags, virDomainXMLFlags as XmlFlags,
};
use crate::conf::checkpoint::{CheckpointDef, DiskCheckpointKind};
use crate::conf::domain::{DomainDef, FormatOptions};
use crate::conf::xml::{Element, Node};
use crate::engine::{self, Access, Action, EngineDisk, Session, daemon};
use crate::error::{Code, Domain, Error, Result};
use crate::uuid::Uuid;
use intent::{CheckpointStep, DaemonRecord, DoneWhen, Intent, Journal};
use store::{Layout, Scope, Status};

const FROM: Domain = Domain::VIR_FROM_QEMU;

/// The XML namespace of virbackup's own elements in a domain's `<metadata>`.
pub const NAMESPACE: &str = "urn:virbackup:domain:1";

/// The longest path a unix socket can have (sun_path holds 108 bytes with the NUL).
const MAX_SOCKET_PATH: usize = 107;

fn now_seconds() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn not_running() -> Error {
    Error::new(Domain::VIR_FROM_DOMAIN, Code::VIR_ERR_OPERATION_INVALID, "domain is not running")
}

fn invalid(detail: impl Into<String>) -> Error {
    Error::new(FROM, Code::VIR_ERR_OPERATION_INVALID, detail)
}

fn unsupported_config(detail: impl Into<String>) -> Error {
    Error::new(FROM, Code::VIR_ERR_CONFIG_UNSUPPORTED, detail)
}

/// Finds the element of our namespace named `local` among `<metadata>`'s children,
/// whatever prefix the document gave the namespace.
fn metadata_element<'a>(def: &'a Element, local: &str) -> Option<&'a Element> {
    let metadata = def.child("metadata")?;
    metadata.elements().find(|e| {
        let (prefix, name) = e.name.split_once(':').map_or(("", e.name.as_str()), |(p, n)| (p, n));
        let declaration = if prefix.is_empty() { "xmlns".to_string() } else { format!("xmlns:{prefix}") };
        name == local && (e.attr(&declaration) == Some(NAMESPACE) || metadata.attr(&declaration) == Some(NAMESPACE))
    })
}

/// The QMP socket of the QEMU process that owns an adopted domain's disks
/// (`<metadata><virbackup:engine qmp='...'/></metadata>`).
fn adopted_qmp(def: &DomainDef) -> Option<PathBuf> {
    metadata_element(def.element(), "engine").and_then(|e| e.attr("qmp")).map(PathBuf::from)
}

/// The disks the engine opens: every disk with media.
fn engine_disks(def: &DomainDef) -> Result<Vec<EngineDisk>> {
    def.disks
        .iter()
        .filter(|d| !d.is_empty())
        .map(|d| {
            if !matches!(d.source_type.as_str(), "file" | "block") {
                return Err(unsupported_config(format!(
                    "disk '{}' of type '{}' is not supported",
                    d.target, d.source_type
                )));
            }
            Ok(EngineDisk {
                target: d.target.clone(),
                path: PathBuf::from(d.source.clone().unwrap_or_default()),
                format: d.format.clone().unwrap_or_else(|| "raw".to_string()),
                read_only: d.readonly,
            })
        })
        .collect()
}

/// Who owns a running domain's disks.
#[derive(Debug, Clone)]
enum Engine {
    /// Our daemon, started by `virDomainCreate` (its pid and start time name it).
    Ours { pid: u32, started: Option<u64>, qmp: PathBuf, nbd: PathBuf },
    /// Someone else's QEMU, named by the definition.
    Adopted { qmp: PathBuf },
}

#[derive(Debug, Clone)]
struct Live {
    id: i32,
    state: i32,
    reason: i32,
    /// The definition it runs with.
    def: Arc<DomainDef>,
    engine: Engine,
}

#[derive(Debug, Clone)]
struct QemuDomain {
    /// The persistent definition; None for a transient (running) domain.
    persistent: Option<Arc<DomainDef>>,
    live: Option<Live>,
    /// Why it is shut off (kept in memory only).
    off_reason: i32,
    /// Marked to start with the driver (`etc/qemu/autostart/<domain>.xml`).
    autostart: bool,
    checkpoints: Checkpoints,
    /// The running backup job and the last finished one.
    jobs: backup::JobFile,
}

impl QemuDomain {
    /// The definition in force: the running one, else the persistent one.
    fn def(&self) -> &Arc<DomainDef> {
        match (&self.live, &self.persistent) {
            (Some(live), _) => &live.def,
            (None, Some(p)) => p,
            (None, None) => unreachable!("a domain is persistent or running"),
        }
    }

    fn id(&self) -> DomainId {
        let def = self.def();
        DomainId { name: def.name.clone(), uuid: def.uuid, id: self.live.as_ref().map_or(-1, |l| l.id) }
    }

    fn facts(&self) -> DomainFacts {
        DomainFacts {
            active: self.live.is_some(),
            persistent: self.persistent.is_some(),
            state: self.state().0,
            autostart: self.autostart,
            checkpoints: self.checkpoints.len(),
            ..Default::default()
        }
    }

    fn state(&self) -> (i32, i32) {
        match &self.live {
            Some(live) => (live.state, live.reason),
            None => (virDomainState::VIR_DOMAIN_SHUTOFF as i32, self.off_reason),
        }
    }

    fn name(&self) -> &str {
        &self.def().name
    }

    /// The monitor of a daemon started for a backup job of this (shut-off) domain.
    fn job_daemon_qmp(&self) -> Option<&Path> {
        self.jobs.active.as_ref().filter(|j| j.engine.daemon.is_some()).map(|j| j.engine.qmp.as_path())
    }
}

/// The cached state of one root, valid for `generation`.
#[derive(Debug, Default)]
struct Inner {
    generation: Option<u64>,
    /// What `domains` holds: everything, or one domain (None: nothing valid).
    loaded: Option<Loaded>,
    domains: Vec<QemuDomain>,
    /// Ids handed to adopted domains while this process watches them.
    adopted_ids: HashMap<Uuid, i32>,
    /// The documents of the last load, so that a reload parses only what changed.
    cache: store::ParseCache,
}

/// The extent of the state in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Loaded {
    All,
    Domain(String),
}

impl Inner {
    /// Whether the state in memory covers `scope` (when it is still current).
    fn covers(&self, scope: Scope<'_>) -> bool {
        match (&self.loaded, scope) {
            (Some(Loaded::All), _) => true,
            (Some(Loaded::Domain(loaded)), Scope::Domain(wanted)) => loaded == wanted,
            _ => false,
        }
    }

    fn position(&self, dom: &DomainId) -> Result<usize> {
        self.domains.iter().position(|d| d.def().uuid == dom.uuid).ok_or_else(|| {
            Error::new(
                FROM,
                Code::VIR_ERR_NO_DOMAIN,
                format!("no domain with matching uuid '{}' ({})", dom.uuid, dom.name),
            )
        })
    }
}

/// The embedded QEMU driver for one root folder.
#[derive(Debug)]
pub struct QemuDriver {
    layout: Layout,
    lock: File,
    inner: Mutex<Inner>,
    version: OnceLock<u64>,
}

/// The root's lock, held across processes while an operation runs and released on every
/// way out, panics included.
struct RootLock<'a>(&'a File);

impl<'a> RootLock<'a> {
    fn take(file: &'a File) -> Result<RootLock<'a>> {
        file.lock().map_err(|e| Error::system(FROM, "cannot lock the driver state", &e))?;
        Ok(RootLock(file))
    }
}

impl Drop for RootLock<'_> {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// Forgets the state in memory when an operation panics, so that the next one reads it
/// again from disk.
struct ReloadOnPanic<'a, 'b>(&'a mut parking_lot::MutexGuard<'b, Inner>);

impl Drop for ReloadOnPanic<'_, '_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.generation = None;
            self.0.loaded = None;
        }
    }
}

/// One driver per root in a process, shared by its connections.
static DRIVERS: LazyLock<Mutex<HashMap<PathBuf, Weak<QemuDriver>>>> = LazyLock::new(Default::default);

/// Checks a root folder given in a URI: absolute, not `/`, no `.`/`..` parts, no control
/// characters.
pub fn check_root(root: &str) -> Result<PathBuf> {
    let path = Path::new(root);
    if !path.is_absolute() {
        return Err(Error::new(Domain::VIR_FROM_NONE, Code::VIR_ERR_CONFIG_UNSUPPORTED, "root path must be absolute"));
    }
    let unusable = |why: &str| {
        Err(Error::new(Domain::VIR_FROM_NONE, Code::VIR_ERR_CONFIG_UNSUPPORTED, format!("root path '{root}' {why}")))
    };
    if root.chars().any(char::is_control) {
        return unusable("contains control characters");
    }
    if path.components().any(|c| matches!(c, std::path::Component::ParentDir | std::path::Component::CurDir))
        || root.split('/').any(|p| p == "." || p == "..")
    {
        return unusable("must not contain '.' or '..' parts");
    }
    if path.parent().is_none() {
        return unusable("must not be the file system root");
    }
    Ok(path.to_path_buf())
}

/// The root of `qemu:///session`: `$XDG_STATE_HOME/virbackup`, else
/// `$HOME/.local/state/virbackup`.
pub fn session_root() -> Result<PathBuf> {
    if let Some(state) = std::env::var_os("XDG_STATE_HOME").filter(|s| Path::new(s).is_absolute()) {
        return Ok(PathBuf::from(state).join("virbackup"));
    }
    match std::env::var_os("HOME").filter(|h| Path::new(h).is_absolute()) {
        Some(home) => Ok(PathBuf::from(home).join(".local/state/virbackup")),
        None => Err(Error::new(
            Domain::VIR_FROM_NONE,
            Code::VIR_ERR_NO_CONNECT,
            "qemu:///session: neither XDG_STATE_HOME nor HOME names a folder",
        )),
    }
}

impl QemuDriver {
    /// The driver of `root`, creating its folders when missing.
    pub fn open(root: PathBuf) -> Result<Arc<QemuDriver>> {
        let mut drivers = DRIVERS.lock();
        if let Some(driver) = drivers.get(&root).and_then(Weak::upgrade) {
            return Ok(driver);
        }
        let layout = Layout::new(root.clone());
        layout.create()?;
        let lock_path = layout.lock_file();
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&lock_path)
            .map_err(|e| Error::system(FROM, format!("cannot open '{}'", lock_path.display()), &e))?;
        let driver =
            Arc::new(QemuDriver { layout, lock, inner: Mutex::new(Inner::default()), version: OnceLock::new() });
        drivers.insert(root, Arc::downgrade(&driver));
        Ok(driver)
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        self.layout.root()
    }

    fn read_generation(&self) -> u64 {
        std::fs::read_to_string(self.layout.generation_file()).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
    }

    /// Runs `f` on the current state with the root locked against other processes.
    /// `scope` is what `f` needs: one domain's state is all a call on that domain reads,
    /// so that the others, however large, cost it nothing. `changes` says whether `f`
    /// may change anything (then other processes are told).
    ///
    /// Taking the lock, it first settles what an operation that did not finish left
    /// (see `intent.rs`): no operation is under way while the lock is free, so a record
    /// found is one whose process died or failed.
    fn with_state<T>(
        &self,
        scope: Scope<'_>,
        changes: bool,
        f: impl FnOnce(&mut Inner, &Layout) -> Result<T>,
    ) -> Result<T> {
        let mut inner = self.inner.lock();
        let _lock = RootLock::take(&self.lock)?;
        // A panic inside leaves the state in memory unknown: the next call reloads it.
        let reload_on_panic = ReloadOnPanic(&mut inner);
        let inner = &mut *reload_on_panic.0;
        let generation = self.read_generation();
        let unfinished = Journal::left_behind(&self.layout);
        if !matches!(unfinished, Ok(None)) {
            // The unfinished operation may concern any domain.
            self.reload(inner, Scope::All);
        } else if inner.generation != Some(generation) || !inner.covers(scope) {
            self.reload(inner, scope);
        }
        inner.generation = Some(generation);
        let mut noticed = false;
        match unfinished {
            Ok(None) => {}
            Ok(Some(intent)) => {
                self.settle(inner, Journal::resume(&self.layout, intent.clone()), None)
                    .map_err(|e| intent::unsettled(&intent, &e))?;
                noticed = true;
            }
            Err(e) => return Err(Error::new(FROM, Code::VIR_ERR_OPERATION_FAILED, e)),
        }
        noticed |= self.notice_stopped_engines(inner)?;
        noticed |= self.adopt_orphan_jobs(inner)?;
        let result = f(inner, &self.layout);
        if result.is_err() {
            // A failed operation may have changed the state in memory part-way: the next
            // one reads it again from disk.
            inner.generation = None;
            inner.loaded = None;
        }
        if changes || noticed {
            let next = generation + 1;
            self.layout.save(&self.layout.generation_file(), &format!("{next}\n"))?;
            inner.generation = Some(next);
        }
        result
    }

    /// Loads the state from disk, reporting what could not be read on stderr (the files
    /// stay where they are). Temporary files of interrupted writes go first.
    fn reload(&self, inner: &mut Inner, scope: Scope<'_>) {
        store::remove_stale_temporaries(&self.layout);
        let snapshot = store::load(&self.layout, &mut inner.cache, scope);
        inner.loaded = Some(match scope {
            Scope::All => Loaded::All,
            Scope::Domain(name) => Loaded::Domain(name.to_string()),
        });
        for problem in &snapshot.problems {
            eprintln!("virbackup: warning : {problem}");
        }
        inner.domains = snapshot
            .domains
            .into_iter()
            .map(|found| {
                let (checkpoints, problems) = Checkpoints::load(FROM, found.checkpoints);
                for problem in problems {
                    eprintln!("virbackup: warning : checkpoint tree: {}", problem.message);
                }
                let mut domain = QemuDomain {
                    persistent: found.def,
                    live: found.status.map(|s| Live {
                        id: s.id,
                        state: s.state,
                        reason: s.reason,
                        def: s.def.clone(),
                        engine: Engine::Ours { pid: s.pid, started: s.started, qmp: s.qmp.clone(), nbd: s.nbd.clone() },
                    }),
                    off_reason: 0,
                    autostart: false,
                    checkpoints,
                    jobs: backup::JobFile::default(),
                };
                domain.jobs = backup::JobFile::parse(found.job.as_deref(), domain.name());
                domain.autostart = domain.persistent.is_some() && store::autostart(&self.layout, domain.name());
                if let Some(current) = found.current.filter(|c| domain.checkpoints.get(c).is_ok()) {
                    domain.checkpoints.set_current(Some(&current));
                }
                domain
            })
            .collect();
    }

    /// Brings running states up to date: a daemon of ours that died leaves its domain
    /// shut off (failed); an adopted QEMU counts as running while its monitor answers.
    /// Returns whether anything on disk changed.
    fn notice_stopped_engines(&self, inner: &mut Inner) -> Result<bool> {
        let mut changed = false;
        let mut gone = Vec::new();
        for (index, domain) in inner.domains.iter_mut().enumerate() {
            if let Some(Live { engine: Engine::Ours { pid, started, qmp, .. }, .. }) = &domain.live
                && !daemon::is_ours(*pid, qmp, *started)
            {
                let name = domain.name().to_string();
                self.layout.remove(&self.layout.status(&name))?;
                let _ = self.layout.remove_dir(&self.layout.run_dir(&name));
                changed = true;
                if domain.persistent.is_none() {
                    gone.push((index, name));
                } else {
                    domain.live = None;
                    domain.off_reason = virDomainShutoffReason::VIR_DOMAIN_SHUTOFF_FAILED as i32;
                }
            }
        }
        for (index, name) in gone.into_iter().rev() {
            self.forget_domain_files(&name)?;
            inner.domains.remove(index);
        }
        // Adopted domains: running exactly while their QEMU's monitor accepts a connection.
        let mut next_adopted_id = None;
        for domain in &mut inner.domains {
            let Some(persistent) = domain.persistent.clone() else { continue };
            let Some(qmp) = adopted_qmp(&persistent) else { continue };
            let reachable = std::os::unix::net::UnixStream::connect(&qmp).is_ok();
            match (&domain.live, reachable) {
                (None, true) => {
                    let id = match inner.adopted_ids.get(&persistent.uuid) {
                        Some(&id) => id,
                        None => {
                            let id = match next_adopted_id {
                                Some(id) => id,
                                None => self.allocate_id()?,
                            };
                            next_adopted_id = None;
                            inner.adopted_ids.insert(persistent.uuid, id);
                            id
                        }
                    };
                    domain.live = Some(Live {
                        id,
                        state: virDomainState::VIR_DOMAIN_RUNNING as i32,
                        reason: virDomainRunningReason::VIR_DOMAIN_RUNNING_UNKNOWN as i32,
                        def: persistent.clone(),
                        engine: Engine::Adopted { qmp },
                    });
                }
                (Some(_), false) => {
                    domain.live = None;
                    domain.off_reason = virDomainShutoffReason::VIR_DOMAIN_SHUTOFF_UNKNOWN as i32;
                    inner.adopted_ids.remove(&persistent.uuid);
                }
                _ => {}
            }
        }
        Ok(changed)
    }

    /// Hands out the next domain id (persisted, so ids stay unique across processes).
    fn allocate_id(&self) -> Result<i32> {
        let path = self.layout.next_id_file();
        let id = std::fs::read_to_string(&path).ok().and_then(|s| s.trim().parse::<i32>().ok()).unwrap_or(1).max(1);
        self.layout.save(&path, &format!("{}\n", id + 1))?;
        Ok(id)
    }

    /// Removes a domain's checkpoint metadata and run folder.
    fn forget_domain_files(&self, name: &str) -> Result<()> {
        self.layout.remove_dir(&self.layout.checkpoint_dir(name))?;
        let _ = self.layout.remove_dir(&self.layout.run_dir(name));
        Ok(())
    }

    /// Opens an engine session on a domain's disks: its running engine, or a daemon
    /// started for this operation when it is shut off.
    fn session(&self, domain: &QemuDomain, disks: &[EngineDisk], journal: &mut Journal) -> Result<Session> {
        let what = format!("the engine of domain '{}'", domain.name());
        match &domain.live {
            Some(Live { engine: Engine::Ours { qmp, .. } | Engine::Adopted { qmp }, .. }) => {
                journal.record(|i| i.engine = Some(qmp.clone()))?;
                Session::open(Access::Existing { qmp }, disks, &what)
            }
            // A backup job's daemon holds the disks of a shut-off domain while it runs.
            None if domain.job_daemon_qmp().is_some() => {
                let qmp = domain.job_daemon_qmp().expect("checked");
                journal.record(|i| i.engine = Some(qmp.to_path_buf()))?;
                Session::open(Access::Existing { qmp }, disks, &what)
            }
            None => {
                check_disk_files(domain.name(), disks)?;
                let run_dir = self.layout.run_dir(domain.name());
                let op = journal.intent.op.clone();
                let (qmp, pidfile) = (run_dir.join(format!("op-{op}.sock")), run_dir.join(format!("op-{op}.pid")));
                check_socket_path(&qmp)?;
                self.layout.ensure_dir(&run_dir)?;
                journal.record(|i| {
                    i.engine = Some(qmp.clone());
                    i.daemons.push(DaemonRecord {
                        qmp: qmp.clone(),
                        pidfile: pidfile.clone(),
                        sockets: Vec::new(),
                        pid: None,
                        started: None,
                    });
                })?;
                let session = Session::open(Access::Transient { qmp: &qmp, pidfile: &pidfile }, disks, &what)?;
                let pid = session.transient_pid();
                journal.record(|i| {
                    if let Some(record) = i.daemons.last_mut() {
                        record.pid = pid;
                        record.started = pid.and_then(daemon::start_time);
                    }
                })?;
                Ok(session)
            }
        }
    }

    /// Writes a checkpoint's metadata file.
    fn save_checkpoint(&self, domain: &str, def: &CheckpointDef) -> Result<()> {
        self.layout.save(&self.layout.checkpoint_file(domain, &def.name), &store::checkpoint_document(def))
    }

    /// Deletes checkpoint metadata (and, per `flags`, its descendants'). The order keeps
    /// the tree whole at every instant: the children that get a new parent are
    /// rewritten first, then the current checkpoint, and only then do the deleted
    /// checkpoints' files go, descendants before the checkpoint itself (so that while
    /// its file is there, the deletion can be done again).
    fn delete_checkpoint_metadata(
        &self,
        domain: &mut QemuDomain,
        layout: &Layout,
        name: &str,
        flags: u32,
    ) -> Result<()> {
        let deleted = domain.checkpoints.delete(name, flags)?;
        let dom_name = domain.name().to_string();
        for child in &deleted.reparented {
            let def = domain.checkpoints.get(child)?;
            self.save_checkpoint(&dom_name, def)?;
        }
        intent::kill_point("checkpoint-children-rewritten");
        self.save_current(domain)?;
        for removed in &deleted.removed {
            layout.remove(&layout.checkpoint_file(&dom_name, &removed.name))?;
        }
        Ok(())
    }

    /// Records the current checkpoint (or its absence).
    fn save_current(&self, domain: &QemuDomain) -> Result<()> {
        let path = self.layout.current_file(domain.name());
        match domain.checkpoints.current() {
            Some(name) => self.layout.save(&path, &format!("{name}\n")),
            None => self.layout.remove(&path),
        }
    }

    /// Stops a running domain's engine: quit (flushing bitmaps), or kill when it does not.
    /// A persistent domain is then shut off for `reason`; a transient one disappears with
    /// its checkpoint metadata.
    fn stop_engine(&self, inner: &mut Inner, at: usize, reason: virDomainShutoffReason) -> Result<()> {
        let domain = &mut inner.domains[at];
        let Some(live) = &domain.live else { return Err(not_running()) };
        let (pid, qmp) = match &live.engine {
            Engine::Ours { pid, qmp, .. } => (*pid, qmp.clone()),
            Engine::Adopted { qmp } => {
                return Err(invalid(format!(
                    "domain '{}' runs in the QEMU process at '{}', which virbackup does not stop",
                    domain.name(),
                    qmp.display()
                )));
            }
        };
        daemon::stop(pid, &qmp, engine::default_timeout());
        let name = domain.name().to_string();
        self.layout.remove(&self.layout.status(&name))?;
        let _ = self.layout.remove_dir(&self.layout.run_dir(&name));
        if domain.persistent.is_some() {
            domain.live = None;
            domain.off_reason = reason as i32;
        } else {
            self.forget_domain_files(&name)?;
            inner.domains.remove(at);
        }
        Ok(())
    }
}

/// The second monitor of a daemon we start, next to its first (`qmp.sock`), on which a
/// job's watcher hears events.
fn events_socket(qmp: &Path) -> PathBuf {
    qmp.with_file_name("events.sock")
}

/// Refuses, before any daemon is started, disks whose files are missing or are folders:
/// libvirt's kind of error, in words (QEMU's reasons for anything else it cannot open
/// come from [`engine::daemon_error`]).
fn check_disk_files(domain: &str, disks: &[EngineDisk]) -> Result<()> {
    for disk in disks {
        match std::fs::metadata(&disk.path) {
            Err(e) => {
                return Err(Error::system(
                    FROM,
                    format!(
                        "Cannot access storage file '{}' of disk '{}' of domain '{domain}'",
                        disk.path.display(),
                        disk.target
                    ),
                    &e,
                ));
            }
            Ok(meta) => {
                use std::os::unix::fs::FileTypeExt;
                let kind = meta.file_type();
                let what = if kind.is_dir() {
                    "the folder"
                } else if kind.is_char_device() {
                    "the character device"
                } else if kind.is_fifo() || kind.is_socket() {
                    "the special file"
                } else {
                    continue;
                };
                return Err(unsupported_config(format!(
                    "disk '{}' of domain '{domain}' is {what} '{}', not an image",
                    disk.target,
                    disk.path.display()
                )));
            }
        }
    }
    Ok(())
}

/// Refuses socket paths the kernel cannot bind.
fn check_socket_path(path: &Path) -> Result<()> {
    if path.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(unsupported_config(format!(
            "socket path '{}' is longer than {MAX_SOCKET_PATH} bytes; use a shorter root folder or domain name",
            path.display()
        )));
    }
    Ok(())
}

/// The live XML of a running domain: its definition plus, in our namespace under
/// `<metadata>`, the sockets through which its disks are reached.
fn live_xml(live: &Live, secure: bool) -> String {
    let mut xml = live.def.to_element(FormatOptions { id: Some(live.id), secure });
    let runtime = match &live.engine {
        Engine::Ours { qmp, nbd, .. } => {
            let mut nbd_element = Element::new("virbackup:nbd").with_attr("socket", nbd.to_string_lossy());
            for disk in live.def.disks.iter().filter(|d| !d.is_empty()) {
                nbd_element = nbd_element.with_child(
                    Element::new("virbackup:export").with_attr("disk", &disk.target).with_attr("name", &disk.target),
                );
            }
            Element::new("virbackup:runtime")
                .with_attr("xmlns:virbackup", NAMESPACE)
                .with_child(Element::new("virbackup:qmp").with_attr("socket", qmp.to_string_lossy()))
                .with_child(nbd_element)
        }
        Engine::Adopted { qmp } => {
            Element::new("virbackup:runtime").with_attr("xmlns:virbackup", NAMESPACE).with_child(
                Element::new("virbackup:qmp").with_attr("socket", qmp.to_string_lossy()).with_attr("adopted", "yes"),
            )
        }
    };
    match xml.child_mut("metadata") {
        Some(metadata) => metadata.children.push(Node::Element(runtime)),
        None => {
            // libvirt puts <metadata> after the name, uuid, title and description.
            let at = xml
                .children
                .iter()
                .rposition(|n| matches!(n, Node::Element(e) if matches!(e.name.as_str(), "name" | "uuid" | "genid" | "title" | "description")))
                .map_or(0, |i| i + 1);
            xml.children.insert(at, Node::Element(Element::new("metadata").with_child(runtime)));
        }
    }
    xml.format()
}

/// Checks a definition before it is stored: a QEMU domain type, a name usable as a file
/// name, absolute disk paths, and a well-formed adoption socket.
fn check_definition(def: &DomainDef) -> Result<()> {
    if !matches!(def.virt_type.as_str(), "qemu" | "kvm") {
        return Err(unsupported_config(format!(
            "domain type '{}' is not supported by the QEMU driver (use 'qemu' or 'kvm')",
            def.virt_type
        )));
    }
    store::check_file_name("domain", &def.name)?;
    for disk in &def.disks {
        if let Some(source) = &disk.source
            && matches!(disk.source_type.as_str(), "file" | "block")
            && !Path::new(source).is_absolute()
        {
            return Err(unsupported_config(format!("disk '{}' source path '{source}' must be absolute", disk.target)));
        }
    }
    if let Some(qmp) = adopted_qmp(def)
        && !qmp.is_absolute()
    {
        return Err(unsupported_config(format!("the engine socket '{}' must be an absolute path", qmp.display())));
    }
    Ok(())
}

impl QemuDriver {
    /// Runs an operation under a record of what it may leave behind (see `intent.rs`).
    /// Whatever becomes of it, what it left is then settled — finished if it got past its
    /// point of no return, undone otherwise — and the record ends. The operation's own
    /// error is the one reported; a record that cannot be settled stays for the next
    /// process.
    fn journaled<T>(
        &self,
        inner: &mut Inner,
        intent: Intent,
        op: impl FnOnce(&mut Inner, &mut Journal) -> Result<T>,
    ) -> Result<T> {
        let mut journal = Journal::begin(&self.layout, intent)?;
        let result = op(inner, &mut journal);
        let settled = self.settle(inner, journal, None);
        match (result, settled) {
            (Ok(value), Ok(())) => Ok(value),
            (Ok(_), Err(e)) | (Err(e), _) => Err(e),
        }
    }

    /// Why a guest agent command cannot run: the domains here have no connection to a
    /// guest agent. The errors are libvirt's for a domain whose agent is not there.
    fn no_agent(&self, domain: &QemuDomain) -> Error {
        match &domain.live {
            None => not_running(),
            Some(live) if live.state != virDomainState::VIR_DOMAIN_RUNNING as i32 => invalid("domain is not running"),
            Some(live) if live.def.has_guest_agent_channel() => {
                Error::new(FROM, Code::VIR_ERR_AGENT_UNRESPONSIVE, "QEMU guest agent is not connected")
            }
            Some(_) => Error::new(FROM, Code::VIR_ERR_ARGUMENT_UNSUPPORTED, "QEMU guest agent is not configured"),
        }
    }
}

impl Driver for QemuDriver {
    fn connect_get_type(&self) -> &'static str {
        "QEMU"
    }

    fn connect_get_version(&self) -> Result<u64> {
        if let Some(v) = self.version.get() {
            return Ok(*v);
        }
        let v = engine::version()?;
        Ok(*self.version.get_or_init(|| v))
    }

    fn connect_list_all_domains(&self, flags: u32) -> Result<Vec<DomainId>> {
        Error::check_flags(FROM, "qemuConnectListAllDomains", flags, LIST_DOMAINS_ALL)?;
        self.with_state(Scope::All, false, |inner, _| {
            Ok(inner.domains.iter().filter(|d| list_filter_accepts(flags, &d.facts())).map(QemuDomain::id).collect())
        })
    }

    fn connect_num_of_domains(&self) -> Result<i32> {
        self.with_state(Scope::All, false, |inner, _| {
            Ok(inner.domains.iter().filter(|d| d.live.is_some()).count() as i32)
        })
    }

    fn domain_lookup_by_name(&self, name: &str) -> Result<DomainId> {
        self.with_state(Scope::Domain(name), false, |inner, _| {
            inner.domains.iter().find(|d| d.name() == name).map(QemuDomain::id).ok_or_else(|| {
                Error::new(FROM, Code::VIR_ERR_NO_DOMAIN, format!("no domain with matching name '{name}'"))
            })
        })
    }

    fn domain_lookup_by_uuid(&self, uuid: &Uuid) -> Result<DomainId> {
        self.with_state(Scope::All, false, |inner, _| {
            inner.domains.iter().find(|d| d.def().uuid == *uuid).map(QemuDomain::id).ok_or_else(|| {
                Error::new(FROM, Code::VIR_ERR_NO_DOMAIN, format!("no domain with matching uuid '{uuid}'"))
            })
        })
    }

    fn domain_lookup_by_id(&self, id: i32) -> Result<DomainId> {
        self.with_state(Scope::All, false, |inner, _| {
            inner
                .domains
                .iter()
                .find(|d| d.live.as_ref().is_some_and(|l| l.id == id))
                .map(QemuDomain::id)
                .ok_or_else(|| Error::new(FROM, Code::VIR_ERR_NO_DOMAIN, format!("no domain with matching id {id}")))
        })
    }

    fn domain_is_active(&self, dom: &DomainId) -> Result<bool> {
        self.with_state(Scope::Domain(&dom.name), false, |inner, _| {
            Ok(inner.domains[inner.position(dom)?].live.is_some())
        })
    }

    fn domain_is_persistent(&self, dom: &DomainId) -> Result<bool> {
        self.with_state(Scope::Domain(&dom.name), false, |inner, _| {
            Ok(inner.domains[inner.position(dom)?].persistent.is_some())
        })
    }

    fn domain_get_state(&self, dom: &DomainId, flags: u32) -> Result<(i32, i32)> {
        Error::check_flags(FROM, "qemuDomainGetState", flags, 0)?;
        self.with_state(Scope::Domain(&dom.name), false, |inner, _| Ok(inner.domains[inner.position(dom)?].state()))
    }

    fn domain_get_info(&self, dom: &DomainId) -> Result<DomainInfo> {
        self.with_state(Scope::Domain(&dom.name), false, |inner, _| {
            let domain = &inner.domains[inner.position(dom)?];
            let def = domain.def();
            Ok(DomainInfo {
                state: domain.state().0,
                max_memory_kib: def.max_memory_kib,
                memory_kib: def.memory_kib,
                vcpus: u16::try_from(def.vcpus).unwrap_or(u16::MAX),
                cpu_time_ns: 0,
            })
        })
    }

    fn domain_get_xml_desc(&self, dom: &DomainId, flags: u32) -> Result<String> {
        let allowed = XmlFlags::VIR_DOMAIN_XML_SECURE as u32
            | XmlFlags::VIR_DOMAIN_XML_INACTIVE as u32
            | XmlFlags::VIR_DOMAIN_XML_UPDATE_CPU as u32
            | XmlFlags::VIR_DOMAIN_XML_MIGRATABLE as u32;
        Error::check_flags(FROM, "qemuDomainGetXMLDesc", flags, allowed)?;
        let secure = flags & XmlFlags::VIR_DOMAIN_XML_SECURE as u32 != 0;
        let inactive = flags & XmlFlags::VIR_DOMAIN_XML_INACTIVE as u32 != 0;
        self.with_state(Scope::Domain(&dom.name), false, |inner, _| {
            let domain = &inner.domains[inner.position(dom)?];
            match (&domain.live, inactive, &domain.persistent) {
                (Some(live), false, _) => Ok(live_xml(live, secure)),
                (_, true, Some(def)) | (None, _, Some(def)) => Ok(def.format(FormatOptions { id: None, secure })),
                (Some(live), true, None) => Ok(live.def.format(FormatOptions { id: None, secure })),
                (None, _, None) => unreachable!("a domain is persistent or running"),
            }
        })
    }

    fn domain_define_xml(&self, xml: &str, flags: u32) -> Result<DomainId> {
        Error::check_flags(FROM, "qemuDomainDefineXMLFlags", flags, DefineFlags::VIR_DOMAIN_DEFINE_VALIDATE as u32)?;
        let def = if flags & DefineFlags::VIR_DOMAIN_DEFINE_VALIDATE as u32 != 0 {
            DomainDef::parse_validated(xml)?
        } else {
            DomainDef::parse(xml)?
        };
        check_definition(&def)?;
        self.with_state(Scope::All, true, |inner, layout| {
            let failed = |detail: String| Error::new(Domain::VIR_FROM_DOMAIN, Code::VIR_ERR_OPERATION_FAILED, detail);
            if let Some(same) = inner.domains.iter().find(|d| d.name() == def.name && d.def().uuid != def.uuid) {
                return Err(failed(format!("domain '{}' already exists with uuid {}", def.name, same.def().uuid)));
            }
            if let Some(same) = inner.domains.iter().find(|d| d.def().uuid == def.uuid && d.name() != def.name) {
                return Err(failed(format!("domain '{}' is already defined with uuid {}", same.name(), def.uuid)));
            }
            layout.save(&layout.definition(&def.name), &def.format(FormatOptions { id: None, secure: true }))?;
            let def = Arc::new(def);
            match inner.domains.iter_mut().find(|d| d.def().uuid == def.uuid) {
                Some(existing) => {
                    existing.persistent = Some(def);
                    Ok(existing.id())
                }
                None => {
                    let domain = QemuDomain {
                        persistent: Some(def),
                        live: None,
                        off_reason: 0,
                        autostart: false,
                        checkpoints: Checkpoints::new(FROM),
                        jobs: backup::JobFile::default(),
                    };
                    let id = domain.id();
                    inner.domains.push(domain);
                    Ok(id)
                }
            }
        })
    }

    fn domain_undefine(&self, dom: &DomainId, flags: u32) -> Result<()> {
        let allowed = [
            UndefineFlags::VIR_DOMAIN_UNDEFINE_MANAGED_SAVE,
            UndefineFlags::VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA,
            UndefineFlags::VIR_DOMAIN_UNDEFINE_NVRAM,
            UndefineFlags::VIR_DOMAIN_UNDEFINE_KEEP_NVRAM,
            UndefineFlags::VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA,
            UndefineFlags::VIR_DOMAIN_UNDEFINE_TPM,
            UndefineFlags::VIR_DOMAIN_UNDEFINE_KEEP_TPM,
        ]
        .iter()
        .fold(0, |a, &f| a | f as u32);
        Error::check_flags(FROM, "qemuDomainUndefineFlags", flags, allowed)?;
        self.with_state(Scope::Domain(&dom.name), true, |inner, layout| {
            let at = inner.position(dom)?;
            let domain = &mut inner.domains[at];
            if domain.persistent.is_none() {
                return Err(invalid("cannot undefine transient domain"));
            }
            let name = domain.name().to_string();
            Self::check_no_job_daemon(domain, "undefine")?;
            if domain.live.is_none() {
                let count = domain.checkpoints.len();
                if count > 0 && flags & UndefineFlags::VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA as u32 == 0 {
                    return Err(invalid(format!("cannot delete inactive domain with {count} checkpoints")));
                }
                store::set_autostart(layout, &name, false)?;
                // Only metadata goes: the bitmaps stay in the images. It goes before the
                // definition, so that a process killed in between leaves a domain
                // without checkpoints, not checkpoints without a domain.
                self.forget_domain_files(&name)?;
                layout.remove(&layout.definition(&name))?;
                inner.domains.remove(at);
            } else {
                // A running domain becomes transient and keeps its checkpoints until it stops.
                store::set_autostart(layout, &name, false)?;
                layout.remove(&layout.definition(&name))?;
                domain.persistent = None;
                domain.autostart = false;
            }
            Ok(())
        })
    }

    fn domain_create(&self, dom: &DomainId, flags: u32) -> Result<i32> {
        let allowed = StartFlags::VIR_DOMAIN_START_PAUSED as u32
            | StartFlags::VIR_DOMAIN_START_BYPASS_CACHE as u32
            | StartFlags::VIR_DOMAIN_START_FORCE_BOOT as u32
            | StartFlags::VIR_DOMAIN_START_VALIDATE as u32
            | StartFlags::VIR_DOMAIN_START_RESET_NVRAM as u32;
        Error::check_flags(FROM, "qemuDomainCreateWithFlags", flags, allowed)?;
        self.with_state(Scope::Domain(&dom.name), true, |inner, layout| {
            let at = inner.position(dom)?;
            if inner.domains[at].live.is_some() {
                return Err(invalid("domain is already running"));
            }
            Self::check_no_job_daemon(&inner.domains[at], "start")?;
            let def = inner.domains[at].def().clone();
            if let Some(qmp) = adopted_qmp(&def) {
                return Err(invalid(format!(
                    "domain '{}' runs in the QEMU process at '{}', which virbackup does not start (it is not reachable now)",
                    def.name,
                    qmp.display()
                )));
            }
            let disks = engine_disks(&def)?;
            check_disk_files(&def.name, &disks)?;
            let run_dir = layout.run_dir(&def.name);
            let (qmp, nbd, pidfile) = (run_dir.join("qmp.sock"), run_dir.join("nbd.sock"), run_dir.join("qsd.pid"));
            let events = events_socket(&qmp);
            for path in [&qmp, &nbd, &events] {
                check_socket_path(path)?;
            }
            let paused = flags & StartFlags::VIR_DOMAIN_START_PAUSED as u32 != 0;
            let (state, reason) = if paused {
                (virDomainState::VIR_DOMAIN_PAUSED as i32, virDomainPausedReason::VIR_DOMAIN_PAUSED_USER as i32)
            } else {
                (virDomainState::VIR_DOMAIN_RUNNING as i32, virDomainRunningReason::VIR_DOMAIN_RUNNING_BOOTED as i32)
            };
            let mut intent = Intent::new("domain start", &def.name);
            intent.done_when = Some(DoneWhen::Status);
            intent.daemons.push(DaemonRecord {
                qmp: qmp.clone(),
                pidfile: pidfile.clone(),
                sockets: vec![nbd.clone(), events.clone()],
                pid: None,
                started: None,
            });
            // The daemon is recorded before it starts; the status file makes it the
            // domain's.
            let (id, pid, started) = self.journaled(inner, intent, |_, journal| {
                layout.ensure_dir(&run_dir)?;
                let config = daemon::DaemonConfig {
                    qmp: &qmp,
                    pidfile: &pidfile,
                    disks: &disks,
                    nbd: Some(&nbd),
                    events: Some(&events),
                };
                let pid = daemon::start(&config)
                    .map_err(|e| engine::daemon_error(&format!("the engine of domain '{}'", def.name), &disks, &e))?;
                let started = daemon::start_time(pid);
                journal.record(|i| {
                    i.daemons[0].pid = Some(pid);
                    i.daemons[0].started = started;
                })?;
                intent::kill_point("domain-daemon-started");
                let id = self.allocate_id()?;
                let status =
                    Status { id, state, reason, pid, started, qmp: qmp.clone(), nbd: nbd.clone(), def: def.clone() };
                layout.save(&layout.status(&def.name), &status.document())?;
                Ok((id, pid, started))
            })?;
            let engine = Engine::Ours { pid, started, qmp, nbd };
            inner.domains[at].live = Some(Live { id, state, reason, def, engine });
            Ok(id)
        })
    }

    fn domain_destroy(&self, dom: &DomainId, flags: u32) -> Result<()> {
        let allowed =
            DestroyFlags::VIR_DOMAIN_DESTROY_GRACEFUL as u32 | DestroyFlags::VIR_DOMAIN_DESTROY_REMOVE_LOGS as u32;
        Error::check_flags(FROM, "qemuDomainDestroyFlags", flags, allowed)?;
        self.with_state(Scope::Domain(&dom.name), true, |inner, _| {
            let at = inner.position(dom)?;
            self.stop_engine(inner, at, virDomainShutoffReason::VIR_DOMAIN_SHUTOFF_DESTROYED)
        })
    }

    fn domain_shutdown(&self, dom: &DomainId, flags: u32) -> Result<()> {
        let allowed = [
            ShutdownFlags::VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN,
            ShutdownFlags::VIR_DOMAIN_SHUTDOWN_GUEST_AGENT,
            ShutdownFlags::VIR_DOMAIN_SHUTDOWN_INITCTL,
            ShutdownFlags::VIR_DOMAIN_SHUTDOWN_SIGNAL,
            ShutdownFlags::VIR_DOMAIN_SHUTDOWN_PARAVIRT,
        ]
        .iter()
        .fold(0, |a, &f| a | f as u32);
        Error::check_flags(FROM, "qemuDomainShutdownFlags", flags, allowed)?;
        self.with_state(Scope::Domain(&dom.name), true, |inner, _| {
            let at = inner.position(dom)?;
            self.stop_engine(inner, at, virDomainShutoffReason::VIR_DOMAIN_SHUTOFF_SHUTDOWN)
        })
    }

    fn checkpoint_create_xml(&self, dom: &DomainId, xml: &str, flags: u32) -> Result<String> {
        let redefine = CreateFlags::VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE as u32;
        let validate = CreateFlags::VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE_VALIDATE as u32;
        Error::check_flags(FROM, "qemuCheckpointCreateXML", flags, redefine | validate)?;
        self.with_state(Scope::Domain(&dom.name), true, |inner, _| {
            let at = inner.position(dom)?;
            let domain = &inner.domains[at];
            let name = domain.name().to_string();
            if flags & redefine != 0 {
                let def = CheckpointDef::parse(xml, true)?;
                store::check_file_name("checkpoint", &def.name)?;
                let prepared = domain.checkpoints.prepare_redefine(def, &domain.def().uuid)?;
                if flags & validate != 0 {
                    self.journaled(inner, Intent::new("checkpoint validation", &name), |inner, journal| {
                        self.validate_bitmaps(&inner.domains[at], &prepared.def, journal)
                    })?;
                }
                let checkpoint = prepared.def.name.clone();
                self.save_checkpoint(&name, &prepared.def)?;
                let domain = &mut inner.domains[at];
                domain.checkpoints.commit(prepared)?;
                self.save_current(domain)?;
                return Ok(checkpoint);
            }
            let def = CheckpointDef::parse(xml, false)?;
            let prepared = domain.checkpoints.prepare_create(def, domain.def(), now_seconds())?;
            store::check_file_name("checkpoint", &prepared.def.name)?;
            if domain.checkpoints.get(&prepared.def.name).is_ok() {
                return Err(checkpoints::tree_error(crate::moment::TreeError::Exists(prepared.def.name.clone()), FROM));
            }
            let checkpoint = prepared.def.name.clone();
            let mut intent = Intent::new("checkpoint creation", &name);
            intent.checkpoint = Some(CheckpointStep::Create { name: checkpoint.clone() });
            // The bitmaps first, then the metadata, which completes the creation.
            self.journaled(inner, intent, |inner, journal| {
                self.add_bitmaps(&inner.domains[at], &prepared.def, journal)?;
                self.save_checkpoint(&name, &prepared.def)?;
                let domain = &mut inner.domains[at];
                domain.checkpoints.commit(prepared)?;
                self.save_current(domain)
            })?;
            Ok(checkpoint)
        })
    }

    fn checkpoint_get_xml_desc(&self, dom: &DomainId, name: &str, flags: u32) -> Result<String> {
        Error::check_flags(FROM, "qemuCheckpointGetXMLDesc", flags, checkpoints::XML_FLAGS)?;
        let size = flags & CheckpointXmlFlags::VIR_DOMAIN_CHECKPOINT_XML_SIZE as u32 != 0;
        self.with_state(Scope::Domain(&dom.name), false, |inner, _| {
            let at = inner.position(dom)?;
            let domain = &inner.domains[at];
            let def = domain.checkpoints.get(name)?;
            if !size {
                return Ok(def.format(checkpoints::format_options(flags)));
            }
            let mut sized = def.clone();
            let dom_name = domain.name().to_string();
            self.journaled(inner, Intent::new("checkpoint size query", &dom_name), |inner, journal| {
                self.fill_sizes(&inner.domains[at], &mut sized, journal)
            })?;
            Ok(sized.format(checkpoints::format_options(flags)))
        })
    }

    fn list_all_checkpoints(&self, dom: &DomainId, flags: u32, count_only: bool) -> Result<Listing> {
        Error::check_flags(FROM, "qemuDomainListAllCheckpoints", flags, checkpoints::LIST_FLAGS)?;
        self.with_state(Scope::Domain(&dom.name), false, |inner, _| {
            let list = &inner.domains[inner.position(dom)?].checkpoints;
            list.listing(None, flags, count_only)
        })
    }

    fn checkpoint_list_all_children(
        &self,
        dom: &DomainId,
        name: &str,
        flags: u32,
        count_only: bool,
    ) -> Result<Listing> {
        Error::check_flags(FROM, "qemuDomainCheckpointListAllChildren", flags, checkpoints::LIST_FLAGS)?;
        self.with_state(Scope::Domain(&dom.name), false, |inner, _| {
            let list = &inner.domains[inner.position(dom)?].checkpoints;
            list.listing(Some(name), flags, count_only)
        })
    }

    fn checkpoint_lookup_by_name(&self, dom: &DomainId, name: &str, flags: u32) -> Result<()> {
        Error::check_flags(FROM, "qemuDomainCheckpointLookupByName", flags, 0)?;
        self.with_state(Scope::Domain(&dom.name), false, |inner, _| {
            inner.domains[inner.position(dom)?].checkpoints.get(name).map(|_| ())
        })
    }

    fn checkpoint_get_parent(&self, dom: &DomainId, name: &str, flags: u32) -> Result<String> {
        Error::check_flags(FROM, "qemuDomainCheckpointGetParent", flags, 0)?;
        self.with_state(Scope::Domain(&dom.name), false, |inner, _| {
            inner.domains[inner.position(dom)?].checkpoints.parent(name)
        })
    }

    fn checkpoint_delete(&self, dom: &DomainId, name: &str, flags: u32) -> Result<()> {
        Error::check_flags(FROM, "qemuCheckpointDelete", flags, checkpoints::DELETE_FLAGS)?;
        let metadata_only = flags & DeleteFlags::VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY as u32 != 0;
        self.with_state(Scope::Domain(&dom.name), true, |inner, layout| {
            let at = inner.position(dom)?;
            let domain = &inner.domains[at];
            domain.checkpoints.get(name)?;
            let doomed = domain.checkpoints.to_be_deleted(name, flags)?;
            let mut intent = Intent::new("checkpoint deletion", domain.name());
            intent.checkpoint =
                Some(CheckpointStep::Delete { name: name.to_string(), flags, bitmaps_removed: metadata_only });
            self.journaled(inner, intent, |inner, journal| {
                if !metadata_only {
                    // The bitmaps first: if that fails, nothing has changed.
                    self.remove_bitmaps(&inner.domains[at], &doomed, false, journal)?;
                    journal.record(|i| {
                        if let Some(CheckpointStep::Delete { bitmaps_removed, .. }) = &mut i.checkpoint {
                            *bitmaps_removed = true;
                        }
                    })?;
                }
                self.delete_checkpoint_metadata(&mut inner.domains[at], layout, name, flags)
            })
        })
    }

    fn backup_begin(&self, dom: &DomainId, backup_xml: &str, checkpoint_xml: Option<&str>, flags: u32) -> Result<()> {
        self.begin_backup(dom, backup_xml, checkpoint_xml, flags)
    }

    fn backup_get_xml_desc(&self, dom: &DomainId, flags: u32) -> Result<String> {
        self.backup_xml(dom, flags)
    }

    fn domain_abort_job(&self, dom: &DomainId, flags: u32) -> Result<()> {
        self.abort_backup(dom, flags)
    }

    fn domain_get_job_info(&self, dom: &DomainId) -> Result<DomainJobInfo> {
        self.job_info(dom)
    }

    fn domain_get_job_stats(&self, dom: &DomainId, flags: u32) -> Result<JobStats> {
        self.job_stats(dom, flags)
    }

    fn domain_get_block_job_info(&self, dom: &DomainId, disk: &str, flags: u32) -> Result<Option<BlockJobInfo>> {
        self.block_job_info(dom, disk, flags)
    }

    fn domain_block_job_abort(&self, dom: &DomainId, disk: &str, flags: u32) -> Result<()> {
        self.block_job_abort(dom, disk, flags)
    }

    fn domain_get_block_info(&self, dom: &DomainId, disk: &str, flags: u32) -> Result<BlockInfo> {
        Error::check_flags(FROM, "qemuDomainGetBlockInfo", flags, 0)?;
        let (path, format) = self.with_state(Scope::Domain(&dom.name), false, |inner, _| {
            let domain = &inner.domains[inner.position(dom)?];
            let found = domain.def().disk_by_target_or_path(disk).ok_or_else(|| {
                Error::new(FROM, Code::VIR_ERR_INVALID_ARG, format!("invalid path {disk} not assigned to domain"))
            })?;
            match &found.source {
                Some(path) => Ok((PathBuf::from(path), found.format.clone().unwrap_or_else(|| "raw".to_string()))),
                None => Err(Error::new(
                    FROM,
                    Code::VIR_ERR_INVALID_ARG,
                    format!("disk '{disk}' does not currently have a source assigned"),
                )),
            }
        })?;
        let physical = store::storage_size(&path)?;
        let sizes = engine::image_sizes(&path, &format)?;
        Ok(BlockInfo { capacity: sizes.virtual_size, allocation: sizes.actual_size, physical })
    }

    fn domain_get_autostart(&self, dom: &DomainId) -> Result<bool> {
        self.with_state(Scope::Domain(&dom.name), false, |inner, _| Ok(inner.domains[inner.position(dom)?].autostart))
    }

    fn domain_set_autostart(&self, dom: &DomainId, autostart: bool) -> Result<()> {
        self.with_state(Scope::Domain(&dom.name), true, |inner, layout| {
            let at = inner.position(dom)?;
            let domain = &mut inner.domains[at];
            if domain.persistent.is_none() {
                return Err(invalid("cannot set autostart for transient domain"));
            }
            if domain.autostart != autostart {
                store::set_autostart(layout, domain.name(), autostart)?;
                domain.autostart = autostart;
            }
            Ok(())
        })
    }

    fn domain_fs_freeze(&self, dom: &DomainId, mountpoints: &[String], flags: u32) -> Result<i32> {
        let _ = mountpoints;
        Error::check_flags(FROM, "qemuDomainFSFreeze", flags, 0)?;
        self.with_state(Scope::Domain(&dom.name), false, |inner, _| {
            Err(self.no_agent(&inner.domains[inner.position(dom)?]))
        })
    }

    fn domain_fs_thaw(&self, dom: &DomainId, mountpoints: &[String], flags: u32) -> Result<i32> {
        Error::check_flags(FROM, "qemuDomainFSThaw", flags, 0)?;
        if !mountpoints.is_empty() {
            return Err(Error::new(
                FROM,
                Code::VIR_ERR_ARGUMENT_UNSUPPORTED,
                "specifying mountpoints is not supported",
            ));
        }
        self.with_state(Scope::Domain(&dom.name), false, |inner, _| {
            Err(self.no_agent(&inner.domains[inner.position(dom)?]))
        })
    }

    fn domain_qemu_agent_command(&self, dom: &DomainId, cmd: &str, timeout: i32, flags: u32) -> Result<String> {
        let _ = (cmd, timeout);
        Error::check_flags(FROM, "qemuDomainQemuAgentCommand", flags, 0)?;
        self.with_state(Scope::Domain(&dom.name), false, |inner, _| {
            Err(self.no_agent(&inner.domains[inner.position(dom)?]))
        })
    }

    fn domain_qemu_monitor_command(&self, dom: &DomainId, cmd: &str, flags: u32) -> Result<String> {
        let hmp =
            crate::capi::generated_qemu::virDomainQemuMonitorCommandFlags::VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP as u32;
        Error::check_flags(FROM, "qemuDomainQemuMonitorCommandWithFiles", flags, hmp)?;
        self.with_state(Scope::Domain(&dom.name), false, |inner, _| {
            let domain = &inner.domains[inner.position(dom)?];
            let Some(live) = &domain.live else { return Err(not_running()) };
            let (Engine::Ours { qmp, .. } | Engine::Adopted { qmp }) = &live.engine;
            engine::monitor_command(qmp, &format!("the engine of domain '{}'", domain.name()), cmd, flags & hmp != 0)
        })
    }
}

/// What a checkpoint needs from the engine: the bitmap disks that are still part of the
/// domain, with their bitmap names.
fn bitmap_disks<'a>(def: &'a CheckpointDef, domain: &DomainDef) -> impl Iterator<Item = (&'a str, &'a str)> {
    let targets: Vec<String> = domain.disks.iter().filter(|d| !d.is_empty()).map(|d| d.target.clone()).collect();
    def.disks
        .iter()
        .filter(move |d| d.kind == DiskCheckpointKind::Bitmap && targets.contains(&d.name))
        .filter_map(|d| d.bitmap.as_deref().map(|b| (d.name.as_str(), b)))
}

impl QemuDriver {
    /// Adds one persistent bitmap per bitmap disk, all in one transaction (recorded in
    /// the journal first). libvirt's rules come first: the bitmap is named after the
    /// checkpoint and the image is qcow2. A bitmap of that name already in an image (left
    /// by lost metadata) makes the transaction fail with QEMU's "Bitmap already exists",
    /// as in libvirt; it is not recorded, so that undoing never removes it.
    fn add_bitmaps(&self, domain: &QemuDomain, def: &CheckpointDef, journal: &mut Journal) -> Result<()> {
        let dom_def = domain.def();
        self.check_new_checkpoint(dom_def, def)?;
        let wanted: Vec<(&str, &str)> = bitmap_disks(def, dom_def).collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let disks = engine_disks(dom_def)?;
        let mut session = self.session(domain, &disks, journal)?;
        let present = session.bitmaps()?;
        let mut actions = Vec::new();
        let mut added = Vec::new();
        for (target, bitmap) in &wanted {
            let node = session.node(target)?.to_string();
            actions.push(Action::AddBitmap { node: node.clone(), name: bitmap.to_string() });
            if !present.get(*target).is_some_and(|list| list.iter().any(|b| b.name == *bitmap)) {
                added.push((node, bitmap.to_string()));
            }
        }
        journal.record(|i| i.bitmaps.extend(added))?;
        session.transaction(&actions)?;
        intent::kill_point("checkpoint-bitmaps-added");
        session.finish()
    }

    /// libvirt's rules for a new checkpoint's bitmaps: named after the checkpoint, and
    /// only in qcow2 images.
    fn check_new_checkpoint(&self, dom_def: &DomainDef, def: &CheckpointDef) -> Result<()> {
        for disk in def.disks.iter().filter(|d| d.kind == DiskCheckpointKind::Bitmap) {
            if disk.bitmap.as_deref() != Some(def.name.as_str()) {
                return Err(unsupported_config(format!(
                    "bitmap for disk '{}' must match checkpoint name '{}'",
                    disk.name, def.name
                )));
            }
            let format = dom_def.disk(&disk.name).and_then(|d| d.format.clone()).unwrap_or_else(|| "raw".to_string());
            if format != "qcow2" {
                return Err(unsupported_config(format!(
                    "checkpoint for disk {} unsupported for storage type {format}",
                    disk.name
                )));
            }
        }
        Ok(())
    }

    /// Removes the bitmaps of the given checkpoints in one transaction. A bitmap that is
    /// missing is libvirt's error, and nothing is removed then; unless `skip_missing`
    /// (cleaning up after a daemon that died before a new bitmap reached the image).
    fn remove_bitmaps(
        &self,
        domain: &QemuDomain,
        defs: &[CheckpointDef],
        skip_missing: bool,
        journal: &mut Journal,
    ) -> Result<()> {
        let dom_def = domain.def();
        let wanted: Vec<(&str, &str)> = defs.iter().flat_map(|d| bitmap_disks(d, dom_def)).collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let disks = engine_disks(dom_def)?;
        let mut session = self.session(domain, &disks, journal)?;
        let result = (|| {
            let present = session.bitmaps()?;
            let mut actions = Vec::new();
            for (target, bitmap) in &wanted {
                if !present.get(*target).is_some_and(|list| list.iter().any(|b| b.name == *bitmap)) {
                    if skip_missing {
                        continue;
                    }
                    return Err(Error::internal(
                        FROM,
                        format!("bitmap '{bitmap}' not found in backing chain of '{target}'"),
                    ));
                }
                actions
                    .push(Action::RemoveBitmap { node: session.node(target)?.to_string(), name: bitmap.to_string() });
            }
            session.transaction(&actions)?;
            intent::kill_point("checkpoint-bitmaps-removed");
            Ok(())
        })();
        result.and_then(|()| session.finish())
    }

    /// True when a bitmap of one of the checkpoints is still in an image.
    fn any_bitmap_left(&self, domain: &QemuDomain, defs: &[CheckpointDef], journal: &mut Journal) -> Result<bool> {
        let wanted: Vec<(&str, &str)> = defs.iter().flat_map(|d| bitmap_disks(d, domain.def())).collect();
        if wanted.is_empty() {
            return Ok(false);
        }
        let disks = engine_disks(domain.def())?;
        let mut session = self.session(domain, &disks, journal)?;
        let present = session.bitmaps()?;
        session.finish()?;
        Ok(wanted.iter().any(|(t, b)| present.get(*t).is_some_and(|l| l.iter().any(|x| x.name == *b))))
    }

    /// Removes every bitmap named `name` from the domain's disks (those that have one).
    fn remove_named_bitmaps(&self, domain: &QemuDomain, name: &str, journal: &mut Journal) -> Result<()> {
        let disks = engine_disks(domain.def())?;
        let mut session = self.session(domain, &disks, journal)?;
        let present = session.bitmaps()?;
        let mut actions = Vec::new();
        for disk in &disks {
            if present.get(&disk.target).is_some_and(|list| list.iter().any(|b| b.name == name)) {
                let node = session.node(&disk.target)?;
                actions.push(Action::RemoveBitmap { node: node.to_string(), name: name.to_string() });
            }
        }
        session.transaction(&actions)?;
        session.finish()
    }

    /// Checks that every bitmap disk of a redefined checkpoint still has a healthy bitmap
    /// named after the checkpoint (`VIR_ERR_CHECKPOINT_INCONSISTENT` otherwise). Disks the
    /// domain no longer has are skipped.
    fn validate_bitmaps(&self, domain: &QemuDomain, def: &CheckpointDef, journal: &mut Journal) -> Result<()> {
        let dom_def = domain.def();
        let wanted: Vec<&str> = bitmap_disks(def, dom_def).map(|(target, _)| target).collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let disks = engine_disks(dom_def)?;
        let mut session = self.session(domain, &disks, journal)?;
        let present = session.bitmaps()?;
        session.finish()?;
        for target in wanted {
            let healthy =
                present.get(target).is_some_and(|list| list.iter().any(|b| b.name == def.name && b.healthy()));
            if !healthy {
                return Err(Error::new(
                    FROM,
                    Code::VIR_ERR_CHECKPOINT_INCONSISTENT,
                    format!("missing or broken bitmap '{}' for disk '{target}'", def.name),
                ));
            }
        }
        Ok(())
    }

    /// Fills in, for each bitmap disk with a healthy bitmap, the bytes dirtied since the
    /// checkpoint. Every checkpoint bitmap records all writes since it was made, so its
    /// own count is the answer.
    fn fill_sizes(&self, domain: &QemuDomain, def: &mut CheckpointDef, journal: &mut Journal) -> Result<()> {
        let dom_def = domain.def().clone();
        let wanted: Vec<(String, String)> =
            bitmap_disks(def, &dom_def).map(|(t, b)| (t.to_string(), b.to_string())).collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let disks = engine_disks(&dom_def)?;
        let mut session = self.session(domain, &disks, journal)?;
        let present = session.bitmaps()?;
        session.finish()?;
        for disk in &mut def.disks {
            let Some((_, bitmap)) = wanted.iter().find(|(t, _)| *t == disk.name) else { continue };
            disk.size = present
                .get(&disk.name)
                .and_then(|list| list.iter().find(|b| &b.name == bitmap && b.healthy()))
                .map(|b| b.count);
        }
        Ok(())
    }
}

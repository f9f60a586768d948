//! The driver's state and its registry: one [`QemuDriver`] per root in a process, the
//! domains as loaded from the root (see [`store`]), reloading what another process
//! changed, the lock every operation holds on the root (an RAII guard, released on every
//! path, panics included), sessions on a domain's engine, and the one place where a call
//! that only reads may still change state: settling what a dead process left (see
//! `intent.rs`), noticing daemons that died, and taking over orphaned jobs.

use crate::engine::daemon::DiskExport;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, OnceLock, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use super::backup::job::JobFile;
use super::domain::{adopted_qmp, check_disk_files};
use super::intent::{self, DaemonRecord, Intent, Journal};
use super::store::{self, Layout, Scope};
use crate::abi::{virDomainRunningReason, virDomainShutoffReason, virDomainState};
use crate::conf::domain::DomainDef;
use crate::driver::checkpoints::Checkpoints;
use crate::driver::snapshots::Snapshots;
use crate::driver::{DomainFacts, DomainId};
use crate::engine::{Access, EngineDisk, Session, daemon};
use crate::error::{Code, Domain, Error, Result};
use crate::uuid::Uuid;

pub(crate) const FROM: Domain = Domain::VIR_FROM_QEMU;

/// The XML namespace of virbackup's own elements in a domain's `<metadata>`.
pub const NAMESPACE: &str = "urn:virbackup:domain:1";

/// The longest path a unix socket can have (sun_path holds 108 bytes with the NUL).
pub(crate) const MAX_SOCKET_PATH: usize = 107;

pub(crate) fn now_seconds() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

pub(crate) fn not_running() -> Error {
    Error::new(Domain::VIR_FROM_DOMAIN, Code::VIR_ERR_OPERATION_INVALID, "domain is not running")
}

pub(crate) fn invalid(detail: impl Into<String>) -> Error {
    Error::new(FROM, Code::VIR_ERR_OPERATION_INVALID, detail)
}

pub(crate) fn unsupported_config(detail: impl Into<String>) -> Error {
    Error::new(FROM, Code::VIR_ERR_CONFIG_UNSUPPORTED, detail)
}

/// Who owns a running domain's disks.
#[derive(Debug, Clone)]
pub(crate) enum Engine {
    /// Our daemon, started by `virDomainCreate` (its pid and start time name it).
    Ours { pid: u32, started: Option<u64>, qmp: PathBuf, exports: Vec<DiskExport> },
    /// Someone else's QEMU, named by the definition.
    Adopted { qmp: PathBuf },
}

#[derive(Debug, Clone)]
pub(crate) struct Live {
    pub(crate) id: i32,
    pub(crate) state: i32,
    pub(crate) reason: i32,
    /// The definition it runs with.
    pub(crate) def: Arc<DomainDef>,
    pub(crate) engine: Engine,
}

#[derive(Debug, Clone)]
pub(crate) struct QemuDomain {
    /// The persistent definition; None for a transient (running) domain.
    pub(crate) persistent: Option<Arc<DomainDef>>,
    pub(crate) live: Option<Live>,
    /// Why it is shut off (kept in memory only).
    pub(crate) off_reason: i32,
    /// Marked to start with the driver (`etc/qemu/autostart/<domain>.xml`).
    pub(crate) autostart: bool,
    pub(crate) checkpoints: Checkpoints,
    pub(crate) snapshots: Snapshots,
    /// For each snapshot, the checkpoint that was current when it was taken.
    pub(crate) snapshot_checkpoints: HashMap<String, String>,
    /// For each snapshot, the overlays reverts to it made that may still be in use.
    pub(crate) snapshot_reverts: HashMap<String, Vec<std::path::PathBuf>>,
    /// The running backup job and the last finished one.
    pub(crate) jobs: JobFile,
}

impl QemuDomain {
    /// The definition in force: the running one, else the persistent one.
    pub(crate) fn def(&self) -> &Arc<DomainDef> {
        match (&self.live, &self.persistent) {
            (Some(live), _) => &live.def,
            (None, Some(p)) => p,
            (None, None) => unreachable!("a domain is persistent or running"),
        }
    }

    pub(crate) fn id(&self) -> DomainId {
        let def = self.def();
        DomainId { name: def.name.clone(), uuid: def.uuid, id: self.live.as_ref().map_or(-1, |l| l.id) }
    }

    pub(crate) fn facts(&self) -> DomainFacts {
        DomainFacts {
            active: self.live.is_some(),
            persistent: self.persistent.is_some(),
            state: self.state().0,
            autostart: self.autostart,
            checkpoints: self.checkpoints.len(),
            snapshots: self.snapshots.len(),
            ..Default::default()
        }
    }

    pub(crate) fn state(&self) -> (i32, i32) {
        match &self.live {
            Some(live) => (live.state, live.reason),
            None => (virDomainState::VIR_DOMAIN_SHUTOFF as i32, self.off_reason),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.def().name
    }

    /// The monitor of a daemon started for a backup job of this (shut-off) domain.
    pub(crate) fn job_daemon_qmp(&self) -> Option<&Path> {
        self.jobs.active.as_ref().filter(|j| j.engine.daemon.is_some()).map(|j| j.engine.qmp.as_path())
    }
}

/// The cached state of one root, valid for `generation`.
#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub(crate) generation: Option<u64>,
    /// What `domains` holds: everything, or one domain (None: nothing valid).
    pub(crate) loaded: Option<Loaded>,
    pub(crate) domains: Vec<QemuDomain>,
    /// Ids handed to adopted domains while this process watches them.
    pub(crate) adopted_ids: HashMap<Uuid, i32>,
    /// The documents of the last load, so that a reload parses only what changed.
    pub(crate) cache: store::ParseCache,
}

/// The extent of the state in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Loaded {
    All,
    Domain(String),
}

impl Inner {
    /// Whether the state in memory covers `scope` (when it is still current).
    pub(crate) fn covers(&self, scope: Scope<'_>) -> bool {
        match (&self.loaded, scope) {
            (Some(Loaded::All), _) => true,
            (Some(Loaded::Domain(loaded)), Scope::Domain(wanted)) => loaded == wanted,
            _ => false,
        }
    }

    pub(crate) fn position(&self, dom: &DomainId) -> Result<usize> {
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
    pub(crate) layout: Layout,
    pub(crate) lock: File,
    pub(crate) inner: Mutex<Inner>,
    pub(crate) version: OnceLock<u64>,
}

/// The root's lock, held across processes while an operation runs and released on every
/// way out, panics included.
pub(crate) struct RootLock<'a>(&'a File);

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
pub(crate) struct ReloadOnPanic<'a, 'b>(&'a mut parking_lot::MutexGuard<'b, Inner>);

impl Drop for ReloadOnPanic<'_, '_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.generation = None;
            self.0.loaded = None;
        }
    }
}

/// One driver per root in a process, shared by its connections.
pub(crate) static DRIVERS: LazyLock<Mutex<HashMap<PathBuf, Weak<QemuDriver>>>> = LazyLock::new(Default::default);

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

/// The second monitor of a daemon we start, next to its first (`qmp.sock`), on which a
/// job's watcher hears events.
pub(crate) fn events_socket(qmp: &Path) -> PathBuf {
    qmp.with_file_name("events.sock")
}

/// Refuses socket paths the kernel cannot bind.
pub(crate) fn check_socket_path(path: &Path) -> Result<()> {
    if path.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(unsupported_config(format!(
            "socket path '{}' is longer than {MAX_SOCKET_PATH} bytes; use a shorter root folder or domain name",
            path.display()
        )));
    }
    Ok(())
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

    pub(crate) fn read_generation(&self) -> u64 {
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
    pub(crate) fn with_state<T>(
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
        let noticed = self.take_over_what_died(inner, unfinished)?;
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

    /// Removes a domain's run folder, once its daemon is gone: FUSE exports a daemon
    /// that died left mounted are detached first.
    pub(crate) fn clear_run_dir(&self, name: &str) {
        let dir = self.layout.run_dir(name);
        // Only mounts of a daemon that is gone are here when the folder is cleared.
        for mount in daemon::mounts_under(&dir) {
            daemon::detach(&mount);
        }
        let _ = self.layout.remove_dir(&dir);
    }

    /// The one place where a call that only reads may still change state: what a dead
    /// process or daemon left cannot wait for the next call that modifies, because the
    /// answer of this one depends on it. In order: an unfinished operation's record is
    /// settled (see `intent.rs`); a domain whose daemon died is shut off; a backup job
    /// whose watching process died is taken over by this one (the job goes on, and a
    /// query that waits for its end sees it end). Returns whether anything changed.
    fn take_over_what_died(
        &self,
        inner: &mut Inner,
        unfinished: std::result::Result<Option<Intent>, String>,
    ) -> Result<bool> {
        let mut changed = false;
        match unfinished {
            Ok(None) => {}
            Ok(Some(intent)) => {
                self.settle(inner, Journal::resume(&self.layout, intent.clone()), None)
                    .map_err(|e| intent::unsettled(&intent, &e))?;
                changed = true;
            }
            Err(e) => return Err(Error::new(FROM, Code::VIR_ERR_OPERATION_FAILED, e)),
        }
        changed |= self.notice_stopped_engines(inner)?;
        changed |= self.adopt_orphan_jobs(inner)?;
        Ok(changed)
    }

    /// Loads the state from disk, reporting what could not be read on stderr (the files
    /// stay where they are). Temporary files of interrupted writes go first.
    pub(crate) fn reload(&self, inner: &mut Inner, scope: Scope<'_>) {
        store::remove_stale_temporaries(&self.layout);
        let scan = store::load(&self.layout, &mut inner.cache, scope);
        inner.loaded = Some(match scope {
            Scope::All => Loaded::All,
            Scope::Domain(name) => Loaded::Domain(name.to_string()),
        });
        for problem in &scan.problems {
            eprintln!("virbackup: warning : {problem}");
        }
        inner.domains = scan
            .domains
            .into_iter()
            .map(|found| {
                let (checkpoints, problems) = Checkpoints::load(FROM, found.checkpoints);
                for problem in problems {
                    eprintln!("virbackup: warning : checkpoint tree: {}", problem.message);
                }
                let current_snapshot = found.snapshots.iter().find(|s| s.current).map(|s| s.def.name.clone());
                let snapshot_checkpoints = found
                    .snapshots
                    .iter()
                    .filter_map(|s| s.checkpoint.clone().map(|c| (s.def.name.clone(), c)))
                    .collect();
                let snapshot_reverts = found
                    .snapshots
                    .iter()
                    .filter(|s| !s.reverts.is_empty())
                    .map(|s| (s.def.name.clone(), s.reverts.clone()))
                    .collect();
                let (mut snapshots, problems) =
                    Snapshots::load(FROM, found.snapshots.into_iter().map(|s| s.def).collect());
                for problem in problems {
                    eprintln!("virbackup: warning : snapshot tree: {}", problem.message);
                }
                snapshots.set_current(current_snapshot.as_deref());
                let mut domain = QemuDomain {
                    persistent: found.def,
                    live: found.status.map(|s| Live {
                        id: s.id,
                        state: s.state,
                        reason: s.reason,
                        def: s.def.clone(),
                        engine: Engine::Ours {
                            pid: s.pid,
                            started: s.started,
                            qmp: s.qmp.clone(),
                            exports: s.exports.clone(),
                        },
                    }),
                    off_reason: 0,
                    autostart: false,
                    checkpoints,
                    snapshots,
                    snapshot_checkpoints,
                    snapshot_reverts,
                    jobs: JobFile::default(),
                };
                domain.jobs = JobFile::parse(found.job.as_deref(), domain.name());
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
    pub(crate) fn notice_stopped_engines(&self, inner: &mut Inner) -> Result<bool> {
        let mut changed = false;
        let mut gone = Vec::new();
        for (index, domain) in inner.domains.iter_mut().enumerate() {
            if let Some(Live { engine: Engine::Ours { pid, started, qmp, .. }, .. }) = &domain.live
                && !daemon::is_ours(*pid, qmp, *started)
            {
                let name = domain.name().to_string();
                self.layout.remove(&self.layout.status(&name))?;
                self.clear_run_dir(&name);
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
    pub(crate) fn allocate_id(&self) -> Result<i32> {
        let path = self.layout.next_id_file();
        let id = std::fs::read_to_string(&path).ok().and_then(|s| s.trim().parse::<i32>().ok()).unwrap_or(1).max(1);
        self.layout.save(&path, &format!("{}\n", id + 1))?;
        Ok(id)
    }

    /// Opens an engine session on a domain's disks: its running engine, or a daemon
    /// started for this operation when it is shut off.
    pub(crate) fn session(&self, domain: &QemuDomain, disks: &[EngineDisk], journal: &mut Journal) -> Result<Session> {
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

    /// Runs an operation under a record of what it may leave behind (see `intent.rs`).
    /// Whatever becomes of it, what it left is then settled — finished if it got past its
    /// point of no return, undone otherwise — and the record ends. The operation's own
    /// error is the one reported; a record that cannot be settled stays for the next
    /// process.
    pub(crate) fn journaled<T>(
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
}

//! Intent before action: what an operation under way may leave behind, recorded under
//! the root (`DIR/run/qemu/.intent`) before each step that could leave it.
//!
//! Operations on a root run one at a time (each holds the root's lock), so one record
//! serves. An operation writes it when it starts, adds to it before it starts a daemon,
//! creates a file or adds block nodes, bitmaps, jobs or exports, and removes it when it
//! is done. A record found by whoever takes the lock next belongs to an operation that
//! did not finish: its process died (a kill, a crash) or it failed part-way. The
//! operation is then finished or undone ([`QemuDriver::settle`]): an operation that got
//! past its point of no return (a checkpoint's metadata written, a backup's job recorded,
//! a domain's status written) is finished; any other is undone, down to the last daemon,
//! node and file it made. A checkpoint delete is always finished, never undone: its
//! bitmaps may be gone already.
//!
//! Names of the nodes, jobs and exports an operation adds carry its id, so that nothing
//! it leaves can clash with what a later operation adds.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::snapshot;
use super::state::{FROM, Inner, QemuDriver};
use super::store::Layout;
use crate::engine::commands::{self, JobState};
use crate::engine::qmp::Qmp;
use crate::engine::{self, Session, daemon};
use crate::error::{Error, Result};

/// What an operation under way may leave behind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Intent {
    /// The operation, for messages.
    pub what: String,
    /// The domain it works on.
    pub domain: String,
    /// Unique to the operation; part of the names of what it adds to an engine.
    pub op: String,
    /// The process that ran it, and when that process started (pid and start time name
    /// one process for good), for the messages of whoever settles it.
    #[serde(default)]
    pub owner: u32,
    #[serde(default)]
    pub owner_started: Option<u64>,
    /// Daemons started for the operation, each recorded before it starts.
    pub daemons: Vec<DaemonRecord>,
    /// The monitor of the engine the operation adds nodes, bitmaps, jobs and exports to.
    pub engine: Option<PathBuf>,
    /// Block nodes added (removed in reverse order).
    pub nodes: Vec<String>,
    /// Bitmaps added: (node, name).
    pub bitmaps: Vec<(String, String)>,
    /// Block jobs started.
    pub jobs: Vec<String>,
    /// Block exports added.
    pub exports: Vec<String>,
    /// The engine's NBD server was started.
    pub nbd_server: bool,
    /// Objects added (the server's TLS credentials).
    #[serde(default)]
    pub objects: Vec<String>,
    /// Files created for the operation.
    pub files: Vec<OwnedFile>,
    /// Unix sockets the operation listens on.
    pub sockets: Vec<PathBuf>,
    /// The checkpoint it creates or deletes.
    pub checkpoint: Option<CheckpointStep>,
    /// The snapshot it creates, deletes or reverts to.
    #[serde(default)]
    pub snapshot: Option<SnapshotStep>,
    /// What makes the operation complete, once it is true.
    pub done_when: Option<DoneWhen>,
}

/// A daemon started for an operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct DaemonRecord {
    /// Its monitor, and the file it writes its pid into: known before it starts.
    pub qmp: PathBuf,
    pub pidfile: PathBuf,
    /// Other sockets it listens on (removed with it).
    pub sockets: Vec<PathBuf>,
    /// Its pid and start time, recorded once it runs.
    pub pid: Option<u32>,
    pub started: Option<u64>,
}

/// A file an operation creates. It is made as `placeholder` (a name no one else uses)
/// and linked to `path` only if nothing is there, so that `path` can be told apart from
/// a file that was there before: while the placeholder exists, `path` is ours exactly
/// when it is the same file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct OwnedFile {
    pub path: PathBuf,
    pub placeholder: PathBuf,
}

/// The checkpoint an operation creates or deletes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum CheckpointStep {
    /// Complete once its metadata is written; then it becomes the current checkpoint.
    Create { name: String },
    /// Finished once its bitmaps are gone (they go first, in one transaction): what is
    /// left of the deletion is done again. Before that, nothing was done.
    Delete {
        name: String,
        flags: u32,
        #[serde(default)]
        bitmaps_removed: bool,
    },
}

/// The snapshot an operation creates, deletes or reverts to (see `snapshot.rs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum SnapshotStep {
    /// Complete once its metadata is written; until then undone: its internal snapshot
    /// and bitmap go from the images. An external snapshot of a running domain is
    /// complete too once its engine put the overlays on the disks.
    Create {
        name: String,
        images: Vec<PathBuf>,
        #[serde(default)]
        live: Option<LiveOverlays>,
    },
    /// Always finished: each image's internal snapshot and bitmap of each (image,
    /// snapshot), each external overlay committed, then the metadata.
    Delete {
        name: String,
        flags: u32,
        images: Vec<(PathBuf, String)>,
        #[serde(default)]
        external: Vec<OverlayCommit>,
    },
    /// Undone until every image's bitmaps are set aside (image, file holding them);
    /// finished after.
    Revert { name: String, images: Vec<(PathBuf, PathBuf)>, saved: bool },
}

/// One disk of an external snapshot being deleted: its overlay is written into the image
/// below it, which takes its place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct OverlayCommit {
    pub target: String,
    pub overlay: PathBuf,
    pub base: PathBuf,
    pub base_format: String,
    /// The image over the overlay (a later external snapshot's), if the domain does not
    /// write to the overlay itself.
    pub above: Option<PathBuf>,
}

/// The overlays an external snapshot of a running domain puts on its disks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct LiveOverlays {
    /// Their format nodes in the domain's engine.
    pub nodes: Vec<String>,
    pub paths: Vec<PathBuf>,
    /// The snapshot's metadata file, for whoever finds the overlays taken before the
    /// operation could write it.
    pub document: String,
}

/// The point of no return of an operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum DoneWhen {
    /// A domain start: the domain's status file exists.
    Status,
    /// A backup begin: the domain's job file records the job that started then.
    Job { started_ms: u64 },
}

impl Intent {
    /// A new record for an operation on `domain`, with a fresh id.
    pub fn new(what: &str, domain: &str) -> Intent {
        let owner = std::process::id();
        Intent {
            what: what.to_string(),
            domain: domain.to_string(),
            op: new_op_id(),
            owner,
            owner_started: daemon::start_time(owner),
            ..Default::default()
        }
    }
}

/// A test aid: a process whose `VIRBACKUP_TEST_KILL_AT` names `point` kills itself
/// (SIGKILL, as an operator or the OOM killer would) when it gets there, so that the
/// recovery of each step can be tested deterministically.
pub(crate) fn kill_point(point: &str) {
    static AT: std::sync::LazyLock<Option<String>> =
        std::sync::LazyLock::new(|| std::env::var("VIRBACKUP_TEST_KILL_AT").ok());
    if AT.as_deref() == Some(point) {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}

/// Eight hex digits, different for every operation of every process.
fn new_op_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let seed = (nanos as u64) ^ (u64::from(std::process::id()) << 32) ^ COUNTER.fetch_add(1, Ordering::Relaxed);
    // A 64-bit mix (splitmix64's finalizer), folded to 32 bits.
    let mut x = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    format!("{:08x}", (x ^ (x >> 32)) as u32)
}

/// The record of the operation under way, kept on disk as it grows.
pub(crate) struct Journal {
    path: PathBuf,
    layout: Layout,
    pub intent: Intent,
    /// Left by a process that died: what it did last may not be recorded yet.
    resumed: bool,
}

impl Journal {
    /// Writes the record of an operation that is starting.
    pub fn begin(layout: &Layout, intent: Intent) -> Result<Journal> {
        let journal = Journal { path: layout.intent_file(), layout: layout.clone(), intent, resumed: false };
        journal.save()?;
        Ok(journal)
    }

    fn save(&self) -> Result<()> {
        let text = serde_json::to_string_pretty(&self.intent).expect("an intent serializes");
        self.layout.save(&self.path, &text)
    }

    /// Adds to the record (before the step it describes).
    pub fn record(&mut self, change: impl FnOnce(&mut Intent)) -> Result<()> {
        change(&mut self.intent);
        self.save()
    }

    /// The operation is done: the record goes.
    pub fn end(self) -> Result<()> {
        self.layout.remove(&self.path)
    }

    /// Continues a record left on disk (to settle it; what settling starts is added).
    pub fn resume(layout: &Layout, intent: Intent) -> Journal {
        Journal { path: layout.intent_file(), layout: layout.clone(), intent, resumed: true }
    }

    /// Reads a record left on disk.
    pub fn left_behind(layout: &Layout) -> std::result::Result<Option<Intent>, String> {
        match layout.read(&layout.intent_file())? {
            None => Ok(None),
            Some(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| format!("the record of an unfinished operation cannot be read: {e}")),
        }
    }
}

/// Creates `file.path` for an operation (see [`OwnedFile`]): false when something is
/// already there.
pub(crate) fn create_owned(file: &OwnedFile) -> std::io::Result<bool> {
    if !engine::backup::create_exclusive(&file.placeholder)? {
        // A placeholder of this operation cannot be there: another file has the name.
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("'{}' is in the way", file.placeholder.display()),
        ));
    }
    match std::fs::hard_link(&file.placeholder, &file.path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let _ = std::fs::remove_file(&file.placeholder);
            Ok(false)
        }
        // A file system without hard links: the file is created directly.
        Err(_) => {
            let created = engine::backup::create_exclusive(&file.path);
            if !matches!(created, Ok(true)) {
                let _ = std::fs::remove_file(&file.placeholder);
            }
            created
        }
    }
}

/// Undoes [`create_owned`]: removes `file.path` if it is the operation's, and the
/// placeholder.
fn remove_owned(file: &OwnedFile) {
    use std::os::unix::fs::MetadataExt;
    let Ok(placeholder) = std::fs::symlink_metadata(&file.placeholder) else { return };
    if let Ok(path) = std::fs::symlink_metadata(&file.path)
        && (path.dev(), path.ino()) == (placeholder.dev(), placeholder.ino())
    {
        let _ = std::fs::remove_file(&file.path);
    }
    let _ = std::fs::remove_file(&file.placeholder);
}

/// The operation is committed: its files are its result's, the placeholders go.
pub(crate) fn release_placeholders(files: &[OwnedFile]) {
    for file in files {
        let _ = std::fs::remove_file(&file.placeholder);
    }
}

/// Removes a unix socket file (anything else there is kept).
pub(crate) fn remove_socket(path: &Path) {
    use std::os::unix::fs::FileTypeExt;
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        let _ = std::fs::remove_file(path);
    }
}

impl DaemonRecord {
    /// The daemon's pid, if it still runs: the recorded process, or the one that wrote
    /// the pid file, or any daemon of ours serving this monitor.
    pub fn running_pid(&self) -> Option<u32> {
        if let Some(pid) = self.pid {
            return daemon::is_ours(pid, &self.qmp, self.started).then_some(pid);
        }
        daemon::from_pidfile(&self.pidfile, &self.qmp).or_else(|| daemon::find_by_socket(&self.qmp))
    }

    /// Stops the daemon (gracefully, so that its images are closed consistent) and
    /// removes its files.
    pub fn stop_and_clean(&self) {
        // A daemon caught while starting is still forking away from its launcher (which
        // shares its command line): each round stops what runs now, until nothing does.
        for _ in 0..4 {
            let Some(pid) = self.running_pid() else { break };
            daemon::stop(pid, &self.qmp, engine::default_timeout());
        }
        for path in [&self.qmp, &self.pidfile].into_iter().chain(&self.sockets) {
            // A FUSE export of a daemon that was killed stays mounted, dead, until
            // detached.
            daemon::detach_mount(path);
            let _ = std::fs::remove_file(path);
        }
        // The folders they were in, only when empty (a running domain's files may share
        // them): the innermost first.
        let mut dirs: Vec<&Path> = self.sockets.iter().chain([&self.qmp]).filter_map(|p| p.parent()).collect();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        dirs.dedup();
        for dir in dirs {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

impl QemuDriver {
    /// Finishes or undoes what an unfinished operation left (see the module's text), and
    /// ends its record. `session` is the operation's own open session, when it fails
    /// while it still has one (a monitor serves one client at a time, so its connection
    /// is the one to use). If something cannot be settled, the record stays for the
    /// next attempt and the error says why.
    pub(crate) fn settle(&self, inner: &mut Inner, mut journal: Journal, session: Option<Session>) -> Result<()> {
        let intent = journal.intent.clone();
        let layout = &self.layout;
        let done = match &intent.done_when {
            Some(DoneWhen::Status) => layout.read(&layout.status(&intent.domain)).ok().flatten().is_some(),
            Some(DoneWhen::Job { started_ms }) => inner
                .domains
                .iter()
                .find(|d| d.name() == intent.domain)
                .and_then(|d| d.jobs.active.as_ref())
                .is_some_and(|job| job.started_ms == *started_ms),
            None => match (&intent.checkpoint, &intent.snapshot) {
                (Some(CheckpointStep::Create { name }), _) => layout.checkpoint_file(&intent.domain, name).exists(),
                (_, Some(SnapshotStep::Create { name, live, .. })) => {
                    layout.snapshot_file(&intent.domain, name).exists()
                        || live.as_ref().is_some_and(|l| snapshot::overlays_taken(&intent, l))
                }
                (_, Some(SnapshotStep::Revert { saved, .. })) => *saved,
                _ => false,
            },
        };
        let mut engine_cleaned = false;
        if done {
            release_placeholders(&intent.files);
            drop(session);
        } else {
            let mut session = session;
            engine_cleaned = self.undo_in_engine(&intent, session.as_mut().map(Session::monitor));
            // The session's own daemon quits as it goes, flushing its images.
            drop(session);
            for file in &intent.files {
                remove_owned(file);
            }
            for socket in &intent.sockets {
                remove_socket(socket);
            }
        }
        // A daemon a backup job or a domain start made is theirs once they are done. The
        // others go before the checkpoint steps below, which may need the images.
        let daemons_kept = done && intent.done_when.is_some();
        if !daemons_kept {
            for record in &intent.daemons {
                record.stop_and_clean();
            }
        }
        match &intent.checkpoint {
            Some(CheckpointStep::Create { name }) if done => self.make_current(inner, &intent.domain, name)?,
            Some(CheckpointStep::Create { name }) => {
                // A backup begin may have written the checkpoint's metadata before it
                // failed to record its job: it goes, then the bitmaps.
                self.forget_checkpoint_of_failed_create(inner, &intent.domain, name)?;
                if !engine_cleaned {
                    self.forget_bitmaps_of_failed_create(inner, &mut journal, name)?
                }
            }
            Some(CheckpointStep::Delete { name, flags, bitmaps_removed }) => {
                self.finish_delete(inner, &mut journal, &intent.domain, name, *flags, *bitmaps_removed)?
            }
            _ => {}
        }
        match &intent.snapshot {
            Some(SnapshotStep::Create { name, live, .. }) if done => {
                snapshot::finish_create(self, inner, &intent, name, live.as_ref())?
            }
            Some(SnapshotStep::Create { name, images, .. }) => {
                snapshot::undo_create(self, inner, &mut journal, &intent.domain, name, images)?
            }
            Some(SnapshotStep::Delete { name, flags, images, external }) => {
                snapshot::commit_overlays(self, inner, &mut journal, &intent.domain, external)?;
                snapshot::finish_delete(self, inner, &mut journal, &intent.domain, name, *flags, images)?
            }
            Some(SnapshotStep::Revert { name, images, .. }) if done => {
                snapshot::finish_revert(self, inner, &intent.domain, name, images)?
            }
            Some(SnapshotStep::Revert { images, .. }) => snapshot::undo_revert(images),
            _ => {}
        }
        // Daemons the steps above started for themselves.
        for record in journal.intent.daemons.iter().skip(intent.daemons.len()) {
            record.stop_and_clean();
        }
        journal.end()
    }

    /// Takes out of the engine what the operation added: exports, the NBD server, jobs,
    /// bitmaps and nodes, in that order; what is already gone is skipped. Returns false
    /// when the engine could not be reached (a daemon of the operation that is gone took
    /// all of it with it, except what it may have written to the images).
    fn undo_in_engine(&self, intent: &Intent, monitor: Option<&mut Qmp>) -> bool {
        let nothing = intent.nodes.is_empty()
            && intent.bitmaps.is_empty()
            && intent.jobs.is_empty()
            && intent.exports.is_empty()
            && intent.objects.is_empty()
            && !intent.nbd_server;
        if nothing {
            return true;
        }
        let mut own;
        let monitor = match monitor {
            Some(m) => m,
            None => {
                let Some(qmp) = &intent.engine else { return false };
                if let Some(record) = intent.daemons.iter().find(|d| &d.qmp == qmp)
                    && record.running_pid().is_none()
                {
                    return false;
                }
                match Qmp::connect(qmp, engine::default_timeout()) {
                    Ok(m) => {
                        own = m;
                        &mut own
                    }
                    Err(_) => return false,
                }
            }
        };
        // Each step may find its thing gone already: results are left out.
        for id in &intent.exports {
            let _ = commands::remove_export(monitor, id);
        }
        if intent.nbd_server {
            let _ = commands::stop_nbd_server(monitor);
        }
        for id in &intent.objects {
            let _ = commands::remove_object(monitor, id);
        }
        for id in &intent.jobs {
            let _ = commands::cancel_job(monitor, id);
        }
        wait_concluded(monitor, &intent.jobs);
        for id in &intent.jobs {
            let _ = commands::dismiss_job(monitor, id);
        }
        for (node, name) in &intent.bitmaps {
            let _ = commands::remove_bitmap(monitor, node, name);
        }
        // Format nodes go before the file nodes under them.
        for node in intent.nodes.iter().rev() {
            let _ = commands::remove_node(monitor, node);
        }
        true
    }

    /// After a checkpoint creation that did not complete, its bitmaps must not outlive
    /// it. When the operation's engine could not be reached, a daemon of the operation
    /// that is gone may have written them into the images: they are looked for there.
    fn forget_bitmaps_of_failed_create(&self, inner: &mut Inner, journal: &mut Journal, name: &str) -> Result<()> {
        if !journal.intent.bitmaps.iter().any(|(_, b)| b == name) {
            return Ok(());
        }
        let Some(at) = inner.domains.iter().position(|d| d.name() == journal.intent.domain) else { return Ok(()) };
        let domain = &inner.domains[at];
        if domain.checkpoints.get(name).is_ok() {
            // The name is an existing checkpoint's: its bitmaps stay.
            return Ok(());
        }
        self.remove_named_bitmaps(domain, name, journal)
    }

    /// Removes the metadata of a checkpoint whose creation is undone, if it was written
    /// (nothing was made on top of it: it has no children).
    fn forget_checkpoint_of_failed_create(&self, inner: &mut Inner, domain: &str, name: &str) -> Result<()> {
        use crate::abi::virDomainCheckpointDeleteFlags as F;
        let Some(at) = inner.domains.iter().position(|d| d.name() == domain) else { return Ok(()) };
        let dom = &mut inner.domains[at];
        if dom.checkpoints.get(name).is_ok() {
            let metadata_only = F::VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY as u32;
            self.delete_checkpoint_metadata(dom, &self.layout, name, metadata_only)
        } else {
            // Only a file this library could have written: one reached without links.
            let file = self.layout.checkpoint_file(domain, name);
            match self.layout.read(&file) {
                Ok(Some(_)) => self.layout.remove(&file),
                _ => Ok(()),
            }
        }
    }

    /// Makes a checkpoint whose creation completed the current one.
    fn make_current(&self, inner: &mut Inner, domain: &str, name: &str) -> Result<()> {
        let Some(at) = inner.domains.iter().position(|d| d.name() == domain) else { return Ok(()) };
        let domain = &mut inner.domains[at];
        if domain.checkpoints.get(name).is_ok() && domain.checkpoints.current() != Some(name) {
            domain.checkpoints.set_current(Some(name));
            self.save_current(domain)?;
        }
        Ok(())
    }

    /// Does again what is left of a checkpoint deletion whose bitmaps went (or, with
    /// METADATA_ONLY, that started): its metadata. A deletion that failed before its
    /// bitmaps went did nothing and is left alone — unless its process died, when the
    /// removal may have happened without being recorded: it did if none of the bitmaps
    /// is left.
    fn finish_delete(
        &self,
        inner: &mut Inner,
        journal: &mut Journal,
        domain: &str,
        name: &str,
        flags: u32,
        bitmaps_removed: bool,
    ) -> Result<()> {
        use crate::abi::virDomainCheckpointDeleteFlags as F;
        let Some(at) = inner.domains.iter().position(|d| d.name() == domain) else { return Ok(()) };
        let dom = &inner.domains[at];
        if dom.checkpoints.get(name).is_err() {
            return Ok(());
        }
        let doomed = dom.checkpoints.to_be_deleted(name, flags)?;
        if flags & F::VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN_ONLY as u32 != 0 && doomed.is_empty() {
            return Ok(());
        }
        let metadata_only = flags & F::VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY as u32 != 0;
        if !metadata_only && !bitmaps_removed && (!journal.resumed || self.any_bitmap_left(dom, &doomed, journal)?) {
            return Ok(());
        }
        self.delete_checkpoint_metadata(&mut inner.domains[at], &self.layout, name, flags)
    }
}

/// Waits (boundedly) until the given jobs have concluded.
pub(crate) fn wait_concluded(monitor: &mut Qmp, ids: &[String]) {
    if ids.is_empty() {
        return;
    }
    let deadline = std::time::Instant::now() + engine::default_timeout();
    while std::time::Instant::now() < deadline {
        let Ok(states) = commands::jobs(monitor) else { return };
        if states.iter().filter(|s| ids.contains(&s.id)).all(JobState::concluded) {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The error of an operation that could not be settled.
pub(crate) fn unsettled(intent: &Intent, why: &Error) -> Error {
    Error::new(
        FROM,
        crate::error::Code::VIR_ERR_OPERATION_FAILED,
        format!(
            "an earlier {} of domain '{}' (operation {} of process {}{}) did not finish, and what it left cannot \
             be cleaned up until this is resolved (every call tries again): {}",
            intent.what,
            intent.domain,
            intent.op,
            intent.owner,
            if intent.owner_started.is_some_and(|t| daemon::start_time(intent.owner) == Some(t)) {
                ""
            } else {
                ", which is gone"
            },
            why.message
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_differ() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| new_op_id()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|id| id.len() == 8 && id.chars().all(|c| c.is_ascii_hexdigit())));
    }

    #[test]
    fn owned_files_are_told_apart_from_files_that_were_there() {
        let dir = tempfile::tempdir().unwrap();
        let ours = OwnedFile { path: dir.path().join("a.qcow2"), placeholder: dir.path().join(".a.qcow2.vb-1") };
        assert!(create_owned(&ours).unwrap());
        remove_owned(&ours);
        assert!(!ours.path.exists() && !ours.placeholder.exists());

        // Something else is at the path: it is not created, and undoing leaves it.
        std::fs::write(&ours.path, "theirs").unwrap();
        assert!(!create_owned(&ours).unwrap());
        remove_owned(&ours);
        assert_eq!(std::fs::read_to_string(&ours.path).unwrap(), "theirs");

        // Recorded but never created (a kill before): nothing of theirs goes.
        let planned = OwnedFile { path: ours.path.clone(), placeholder: dir.path().join(".a.qcow2.vb-2") };
        remove_owned(&planned);
        assert!(ours.path.exists());

        // Committed: the placeholder goes, the file stays.
        let kept = OwnedFile { path: dir.path().join("b.qcow2"), placeholder: dir.path().join(".b.qcow2.vb-3") };
        assert!(create_owned(&kept).unwrap());
        release_placeholders(std::slice::from_ref(&kept));
        remove_owned(&kept);
        assert!(kept.path.exists() && !kept.placeholder.exists());
    }
}

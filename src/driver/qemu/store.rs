//! The embedded QEMU driver's state on disk, in libvirt's layout where one exists:
//!
//! ```text
//! DIR/etc/qemu/<domain>.xml                   persistent definitions
//! DIR/etc/qemu/autostart/<domain>.xml         a link to the definition of an autostart domain
//! DIR/lib/qemu/checkpoint/<domain>/<cp>.xml   checkpoint metadata (libvirt's format)
//! DIR/lib/qemu/checkpoint/<domain>/.current   the current checkpoint's name
//! DIR/run/qemu/<domain>.xml                   status of a running domain
//! DIR/run/qemu/<domain>/                      its sockets and pid file
//! DIR/run/qemu/.lock, .generation, .next-id   coordination between processes
//! DIR/run/qemu/.intent                        what the operation under way may leave behind
//! ```
//!
//! Every write is atomic (a temporary file in the same folder, fsync, rename, fsync of
//! the folder): after a crash at any instant a file is either the old or the new one.

use crate::engine::daemon::{DiskExport, Interface};
use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::conf::checkpoint::{CheckpointDef, CheckpointFormat};
use crate::conf::domain::DomainDef;
use crate::conf::snapshot::{SnapshotDef, SnapshotFormat, SnapshotParse};
use crate::conf::xml::Element;
use crate::error::{Code, Domain, Error, Result};

const FROM: Domain = Domain::VIR_FROM_QEMU;

/// The longest name accepted for a domain or checkpoint file (bytes).
pub const MAX_NAME_BYTES: usize = 200;

/// The header libvirt puts on its metadata files.
const HEADER: &str = "<!--\nWARNING: THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE\n\
OVERWRITTEN AND LOST. Changes to this xml configuration should be made using:\n  virsh checkpoint-edit\n\
or other application using the libvirt API.\n-->\n\n";

/// Refuses names that cannot safely become a file name under the root: empty, `.` or
/// `..`, starting with a dot (our own bookkeeping files do), containing `/`, NUL or
/// control characters, or too long.
pub fn check_file_name(kind: &str, name: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::new(
            Domain::VIR_FROM_QEMU,
            Code::VIR_ERR_INVALID_ARG,
            format!("{kind} name '{}' {why}", name.escape_default()),
        ))
    };
    if name.is_empty() {
        return bad("is empty");
    }
    if name.starts_with('.') {
        return bad("must not start with '.'");
    }
    if name.contains('/') {
        return bad("must not contain '/'");
    }
    if name.chars().any(char::is_control) {
        return bad("must not contain control characters");
    }
    if name.len() > MAX_NAME_BYTES {
        return bad(&format!("is longer than {MAX_NAME_BYTES} bytes"));
    }
    Ok(())
}

/// Paths of everything the driver keeps under its root.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: PathBuf) -> Layout {
        Layout { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn definitions(&self) -> PathBuf {
        self.root.join("etc/qemu")
    }

    fn checkpoints(&self) -> PathBuf {
        self.root.join("lib/qemu/checkpoint")
    }

    fn snapshots(&self) -> PathBuf {
        self.root.join("lib/qemu/snapshot")
    }

    fn run(&self) -> PathBuf {
        self.root.join("run/qemu")
    }

    /// Creates the folders (mode 0700). The root itself may be reached through a
    /// symbolic link (it is the caller's to choose); nothing inside it is.
    pub fn create(&self) -> Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .map_err(|e| Error::system(FROM, format!("cannot create '{}'", self.root.display()), &e))?;
        for dir in [self.definitions(), self.checkpoints(), self.snapshots(), self.run()] {
            self.ensure_dir(&dir)?;
        }
        Ok(())
    }

    /// The parts of `path` below the root, each checked: an existing one must not be a
    /// symbolic link. Returns the path's parts from the root, for [`Layout::ensure_dir`].
    fn parts_below_root(&self, path: &Path) -> Result<Vec<PathBuf>> {
        let relative = path.strip_prefix(&self.root).map_err(|_| {
            Error::internal(FROM, format!("'{}' is not under the root '{}'", path.display(), self.root.display()))
        })?;
        let mut parts = Vec::new();
        let mut at = self.root.clone();
        for component in relative.components() {
            at.push(component);
            if fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(Error::new(
                    FROM,
                    Code::VIR_ERR_OPERATION_DENIED,
                    format!("refusing to use '{}': it is a symbolic link inside the root", at.display()),
                ));
            }
            parts.push(at.clone());
        }
        Ok(parts)
    }

    /// Makes sure `dir` (under the root) is a folder reached without symbolic links,
    /// creating what is missing with mode 0700 (whatever the umask).
    pub fn ensure_dir(&self, dir: &Path) -> Result<()> {
        for part in self.parts_below_root(dir)? {
            match fs::DirBuilder::new().mode(0o700).create(&part) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && part.is_dir() => {}
                Err(e) => return Err(Error::system(FROM, format!("cannot create '{}'", part.display()), &e)),
            }
        }
        Ok(())
    }

    /// Replaces a state file atomically and durably (see [`write_atomic`]), creating its
    /// folder; nothing on the way is a symbolic link.
    pub fn save(&self, path: &Path, contents: &str) -> Result<()> {
        if let Some(dir) = path.parent() {
            self.ensure_dir(dir)?;
        }
        write_atomic(path, contents.as_bytes())
            .map_err(|e| Error::system(FROM, format!("cannot write '{}'", path.display()), &e))
    }

    /// Removes a state file durably (a missing one is fine). A symbolic link in its
    /// place is removed itself (unlinking never follows it); the folders on the way
    /// must not be links.
    pub fn remove(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            self.parts_below_root(dir)?;
        }
        remove_durable(path).map_err(|e| Error::system(FROM, format!("cannot remove '{}'", path.display()), &e))
    }

    /// Removes a folder and what it holds (a missing one is fine). A symbolic link in
    /// its place is removed, never followed.
    pub fn remove_dir(&self, dir: &Path) -> Result<()> {
        let parts = self.parts_below_root(dir);
        let result = match parts {
            Ok(_) => fs::remove_dir_all(dir),
            // The link itself goes; what it points to stays.
            Err(_) => fs::remove_file(dir),
        };
        match result {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::system(FROM, format!("cannot remove '{}'", dir.display()), &e)),
        }
    }

    /// Reads a state file: `None` when it is missing. It must be a regular file reached
    /// without symbolic links, and no larger than [`MAX_STATE_BYTES`].
    pub fn read(&self, path: &Path) -> std::result::Result<Option<String>, String> {
        self.parts_below_root(path).map_err(|e| e.message)?;
        read_bounded(path)
    }

    pub fn definition(&self, domain: &str) -> PathBuf {
        self.definitions().join(format!("{domain}.xml"))
    }

    /// The driver's settings, `DIR/etc/qemu.conf`: where an embedded libvirt reads its
    /// root's.
    pub fn settings_file(&self) -> PathBuf {
        self.root.join("etc/qemu.conf")
    }

    fn autostart_dir(&self) -> PathBuf {
        self.definitions().join("autostart")
    }

    /// The mark of an autostart domain: as in libvirt, a symbolic link to its
    /// definition (`../<domain>.xml`). Only its presence is ever read, never through it.
    pub fn autostart_link(&self, domain: &str) -> PathBuf {
        self.autostart_dir().join(format!("{domain}.xml"))
    }

    pub fn status(&self, domain: &str) -> PathBuf {
        self.run().join(format!("{domain}.xml"))
    }

    /// A domain's backup job: the running one and the last finished one.
    pub fn job_file(&self, domain: &str) -> PathBuf {
        self.run().join(format!("{domain}.job"))
    }

    /// The folder of a running domain's sockets.
    pub fn run_dir(&self, domain: &str) -> PathBuf {
        self.run().join(domain)
    }

    pub fn checkpoint_dir(&self, domain: &str) -> PathBuf {
        self.checkpoints().join(domain)
    }

    pub fn checkpoint_file(&self, domain: &str, checkpoint: &str) -> PathBuf {
        self.checkpoint_dir(domain).join(format!("{checkpoint}.xml"))
    }

    pub fn current_file(&self, domain: &str) -> PathBuf {
        self.checkpoint_dir(domain).join(".current")
    }

    /// A domain's snapshot metadata, one file per snapshot in libvirt's format (the
    /// current one marked `<active>1</active>`).
    pub fn snapshot_dir(&self, domain: &str) -> PathBuf {
        self.snapshots().join(domain)
    }

    pub fn snapshot_file(&self, domain: &str, snapshot: &str) -> PathBuf {
        self.snapshot_dir(domain).join(format!("{snapshot}.xml"))
    }

    /// The record of the operation under way (see `intent.rs`).
    pub fn intent_file(&self) -> PathBuf {
        self.run().join(".intent")
    }

    pub fn lock_file(&self) -> PathBuf {
        self.run().join(".lock")
    }

    pub fn generation_file(&self) -> PathBuf {
        self.run().join(".generation")
    }

    pub fn next_id_file(&self) -> PathBuf {
        self.run().join(".next-id")
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The largest state file read (see [`crate::conf::MAX_STORED_XML_BYTES`]).
pub const MAX_STATE_BYTES: u64 = crate::conf::MAX_STORED_XML_BYTES as u64;

/// Reads a regular file (not through a symbolic link) of at most [`MAX_STATE_BYTES`].
fn read_bounded(path: &Path) -> std::result::Result<Option<String>, String> {
    use std::io::Read;
    let file = match OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read '{}': {e}", path.display())),
    };
    let meta = file.metadata().map_err(|e| format!("cannot read '{}': {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("'{}' is not a regular file", path.display()));
    }
    if meta.len() > MAX_STATE_BYTES {
        return Err(format!("'{}' is larger than {MAX_STATE_BYTES} bytes", path.display()));
    }
    let mut text = String::new();
    file.take(MAX_STATE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read '{}': {e}", path.display()))?;
    Ok(Some(text))
}

/// The temporary files of [`write_atomic`] are named `.<file>.tmp-<pid>-<n>`.
pub fn is_temporary(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp-")
}

/// Replaces `path` with `contents` atomically (and durably); its folder must exist.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no parent folder"))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
    let result = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Removes a file (a missing one is fine) and makes the removal durable.
pub fn remove_durable(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => path.parent().map_or(Ok(()), sync_dir),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// A checkpoint's metadata file: libvirt's header, then its XML with secrets and without
/// sizes.
pub fn checkpoint_document(def: &CheckpointDef) -> String {
    let mut out = String::from(HEADER);
    out.push_str(&def.format(CheckpointFormat { secure: true, no_domain: false, size: false }));
    out
}

/// The live state of a domain whose engine we started, as kept in its status file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub id: i32,
    pub state: i32,
    pub reason: i32,
    /// The daemon's pid, and its start time (which tells it from a later process that
    /// gets the same pid).
    pub pid: u32,
    pub started: Option<u64>,
    pub qmp: PathBuf,
    /// Where each disk is offered to writers.
    pub exports: Vec<DiskExport>,
    /// The definition it runs with.
    pub def: Arc<DomainDef>,
}

impl Status {
    pub fn document(&self) -> String {
        let mut engine = Element::new("engine").with_attr("pid", self.pid.to_string());
        if let Some(started) = self.started {
            engine = engine.with_attr("started", started.to_string());
        }
        let mut engine = engine.with_attr("qmp", self.qmp.to_string_lossy());
        for export in &self.exports {
            engine = engine.with_child(
                Element::new("export")
                    .with_attr("disk", &export.target)
                    .with_attr("interface", export.interface.as_str())
                    .with_attr("path", export.path.to_string_lossy()),
            );
        }
        Element::new("domstatus")
            .with_attr("state", self.state.to_string())
            .with_attr("reason", self.reason.to_string())
            .with_attr("id", self.id.to_string())
            .with_child(engine)
            .with_child(self.def.element().clone())
            .format()
    }

    pub fn parse(text: &str) -> std::result::Result<Status, String> {
        let root = Element::parse(text).map_err(|e| format!("line {}: {}", e.line, e.message))?;
        let num = |e: &Element, k: &str| -> std::result::Result<i64, String> {
            e.attr(k).and_then(|v| v.parse().ok()).ok_or_else(|| format!("missing or bad '{k}'"))
        };
        let engine = root.child("engine").ok_or("no <engine>")?;
        let def = DomainDef::from_element(root.child("domain").ok_or("no <domain>")?.clone()).map_err(|e| e.message)?;
        let def = Arc::new(def);
        Ok(Status {
            id: num(&root, "id")? as i32,
            state: num(&root, "state")? as i32,
            reason: num(&root, "reason")? as i32,
            pid: num(engine, "pid")? as u32,
            started: engine.attr("started").and_then(|v| v.parse().ok()),
            qmp: engine.attr("qmp").ok_or("no qmp socket")?.into(),
            exports: engine
                .children_named("export")
                .map(|e| {
                    Ok(DiskExport {
                        target: e.attr("disk").ok_or("an export without a disk")?.to_string(),
                        interface: e
                            .attr("interface")
                            .and_then(Interface::from_name)
                            .ok_or("an export without a known interface")?,
                        path: e.attr("path").ok_or("an export without a path")?.into(),
                    })
                })
                .collect::<std::result::Result<_, &str>>()?,
            def,
        })
    }
}

/// One domain as found on disk.
#[derive(Debug)]
pub struct Found {
    /// The persistent definition (None for a transient domain that is running).
    pub def: Option<Arc<DomainDef>>,
    pub status: Option<Arc<Status>>,
    pub checkpoints: Vec<CheckpointDef>,
    pub current: Option<String>,
    pub snapshots: Vec<StoredSnapshot>,
    /// The text of the job file, when there is one.
    pub job: Option<String>,
}

/// Everything under the root, with what could not be read.
#[derive(Debug, Default)]
pub struct Scan {
    pub domains: Vec<Found>,
    pub problems: Vec<String>,
}

/// What identifies one version of a file: each atomic write makes a new inode, and any
/// other change moves its size or times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

#[derive(Debug, Clone)]
enum Parsed {
    Domain(Arc<DomainDef>),
    Status(Arc<Status>),
    Checkpoint(CheckpointDef),
    Snapshot(StoredSnapshot),
}

/// The documents read by earlier loads, by file: a reload parses only the files that
/// changed, so one large definition is paid for once, not on every change of another.
#[derive(Debug, Default)]
pub struct ParseCache {
    entries: HashMap<PathBuf, (Stamp, Parsed)>,
    /// The files the current load looked at.
    seen: HashSet<PathBuf>,
}

impl ParseCache {
    /// The document in `path`, parsed by `parse` unless this version is cached.
    fn get(
        &mut self,
        layout: &Layout,
        path: &Path,
        parse: impl FnOnce(&str) -> std::result::Result<Parsed, String>,
    ) -> std::result::Result<Parsed, String> {
        let meta = fs::symlink_metadata(path).map_err(|e| format!("cannot read '{}': {e}", path.display()))?;
        if !meta.is_file() {
            return Err(format!("'{}' is not a regular file", path.display()));
        }
        let stamp = Stamp::of(&meta);
        self.seen.insert(path.to_path_buf());
        if let Some((cached, parsed)) = self.entries.get(path)
            && *cached == stamp
        {
            return Ok(parsed.clone());
        }
        let text = layout.read(path)?.ok_or_else(|| format!("'{}' disappeared", path.display()))?;
        let parsed = parse(&text)?;
        self.entries.insert(path.to_path_buf(), (stamp, parsed.clone()));
        Ok(parsed)
    }

    /// Ends a load: after a load of everything, forgets the files it did not see.
    fn end_load(&mut self, scope: Scope<'_>) {
        let seen = std::mem::take(&mut self.seen);
        if scope == Scope::All {
            self.entries.retain(|path, _| seen.contains(path));
        }
    }
}

/// The `.xml` files of a folder (not hidden ones), sorted; none when the folder is a
/// symbolic link.
fn xml_files(layout: &Layout, dir: &Path) -> Vec<PathBuf> {
    if layout.parts_below_root(dir).is_err() {
        return Vec::new();
    }
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "xml")
                && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    files
}

fn stem(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// A snapshot's saved metadata: the definition, whether it is the current snapshot, and
/// the checkpoint that was current when it was taken (virbackup's own element).
#[derive(Debug, Clone)]
pub struct StoredSnapshot {
    pub def: SnapshotDef,
    pub current: bool,
    pub checkpoint: Option<String>,
    /// The overlays reverts to this snapshot made (virbackup's own elements), removed
    /// once nothing uses them.
    pub reverts: Vec<PathBuf>,
}

/// The element that records a snapshot's checkpoint in its metadata file.
const SNAPSHOT_CHECKPOINT: &str = "virbackup:checkpoint";
/// The element that records an overlay a revert to the snapshot made.
const SNAPSHOT_REVERT: &str = "virbackup:revert";

/// The metadata file of a snapshot: libvirt's format (with secrets and `<active>`), and
/// the checkpoint in virbackup's namespace, which libvirt's reader passes over.
pub fn snapshot_document(stored: &StoredSnapshot) -> String {
    let how = SnapshotFormat { secure: true, internal: true, current: stored.current };
    let mut text = stored.def.format(None, how);
    let mut elements = Vec::new();
    if let Some(checkpoint) = &stored.checkpoint {
        elements.push(Element::new(SNAPSHOT_CHECKPOINT).with_text(checkpoint.clone()));
    }
    for file in &stored.reverts {
        elements.push(Element::new(SNAPSHOT_REVERT).with_attr("file", file.to_string_lossy()));
    }
    for mut element in elements {
        let end = text.rfind("</domainsnapshot>").unwrap_or(text.len());
        let mut written = String::new();
        element.attrs.insert(0, ("xmlns:virbackup".to_string(), super::NAMESPACE.to_string()));
        element.write(&mut written, 2);
        text.insert_str(end, &written);
    }
    text
}

pub fn parse_snapshot_document(text: &str) -> std::result::Result<StoredSnapshot, String> {
    let how = SnapshotParse { keep_cookie: true, ..Default::default() };
    let (def, current) = SnapshotDef::parse_stored(text, how).map_err(|e| e.message)?;
    let root = Element::parse(text).map_err(|e| format!("{e:?}"))?;
    let checkpoint = root.child(SNAPSHOT_CHECKPOINT).map(Element::text).filter(|c| !c.is_empty());
    let reverts = root
        .elements()
        .filter(|e| e.name == SNAPSHOT_REVERT)
        .filter_map(|e| e.attr("file"))
        .map(PathBuf::from)
        .collect();
    Ok(StoredSnapshot { def, current, checkpoint, reverts })
}

/// Marks a domain autostart (or not): creates or removes its link, durably.
pub fn set_autostart(layout: &Layout, domain: &str, on: bool) -> Result<()> {
    let link = layout.autostart_link(domain);
    if on {
        let dir = layout.autostart_dir();
        layout.ensure_dir(&dir)?;
        match std::os::unix::fs::symlink(format!("../{domain}.xml"), &link) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(Error::system(FROM, format!("Failed to create symlink '{}'", link.display()), &e));
            }
        }
        sync_dir(&dir).map_err(|e| Error::system(FROM, format!("cannot sync '{}'", dir.display()), &e))
    } else {
        layout.remove(&link)
    }
}

/// The size of an image's storage: the length of a file, or of a block device.
pub fn storage_size(path: &Path) -> Result<u64> {
    use std::io::{Seek, SeekFrom};
    let meta =
        fs::metadata(path).map_err(|e| Error::system(FROM, format!("cannot stat file '{}'", path.display()), &e))?;
    if meta.is_file() {
        return Ok(meta.len());
    }
    let mut device =
        File::open(path).map_err(|e| Error::system(FROM, format!("cannot open '{}'", path.display()), &e))?;
    device.seek(SeekFrom::End(0)).map_err(|e| Error::system(FROM, format!("cannot seek '{}'", path.display()), &e))
}

/// True when the domain is marked autostart (the link itself is looked at, not followed).
pub fn autostart(layout: &Layout, domain: &str) -> bool {
    fs::symlink_metadata(layout.autostart_link(domain)).is_ok()
}

/// What a load reads: the whole state, or one domain's (so that a call on one domain
/// never pays for the others, however large their definitions and metadata are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    All,
    Domain(&'a str),
}

impl Scope<'_> {
    /// The files of one kind a load in this scope reads: all of `dir`, or the domain's
    /// own, if it exists.
    fn files(self, layout: &Layout, dir: &Path, own: impl FnOnce(&str) -> PathBuf) -> Vec<PathBuf> {
        match self {
            Scope::All => xml_files(layout, dir),
            Scope::Domain(name) if check_file_name("domain", name).is_ok() => {
                let path = own(name);
                if fs::symlink_metadata(&path).is_ok() { vec![path] } else { Vec::new() }
            }
            Scope::Domain(_) => Vec::new(),
        }
    }
}

/// Reads the state in `scope`, parsing only the files `cache` does not hold in their
/// present version. A file that cannot be read or parsed is skipped and listed in
/// `problems`; it is left on disk untouched. A symbolic link is never followed.
pub fn load(layout: &Layout, cache: &mut ParseCache, scope: Scope<'_>) -> Scan {
    let mut scan = Scan::default();
    let mut domains: Vec<Found> = Vec::new();
    for path in scope.files(layout, &layout.definitions(), |name| layout.definition(name)) {
        let parsed = cache.get(layout, &path, |text| {
            DomainDef::parse_stored(text).map(|d| Parsed::Domain(Arc::new(d))).map_err(|e| e.message)
        });
        match parsed {
            Ok(Parsed::Domain(def)) if def.name == stem(&path) => domains.push(Found {
                def: Some(def),
                status: None,
                checkpoints: Vec::new(),
                current: None,
                snapshots: Vec::new(),
                job: None,
            }),
            Ok(Parsed::Domain(def)) => scan.problems.push(format!(
                "domain definition '{}' names domain '{}', not '{}'",
                path.display(),
                def.name,
                stem(&path)
            )),
            Ok(_) => {}
            Err(e) => scan.problems.push(format!("cannot load domain definition '{}': {e}", path.display())),
        }
    }
    for path in scope.files(layout, &layout.run(), |name| layout.status(name)) {
        let parsed = cache.get(layout, &path, |text| Status::parse(text).map(|s| Parsed::Status(Arc::new(s))));
        match parsed {
            Ok(Parsed::Status(status)) if status.def.name == stem(&path) => {
                match domains.iter_mut().find(|d| d.def.as_ref().is_some_and(|def| def.name == status.def.name)) {
                    Some(found) => found.status = Some(status),
                    None => domains.push(Found {
                        def: None,
                        status: Some(status),
                        checkpoints: Vec::new(),
                        current: None,
                        snapshots: Vec::new(),
                        job: None,
                    }),
                }
            }
            Ok(Parsed::Status(_)) => {
                scan.problems.push(format!("status file '{}' names another domain", path.display()))
            }
            Ok(_) => {}
            Err(e) => scan.problems.push(format!("cannot load domain status '{}': {e}", path.display())),
        }
    }
    for found in &mut domains {
        let name =
            found.def.as_ref().or(found.status.as_ref().map(|s| &s.def)).map(|d| d.name.clone()).unwrap_or_default();
        for path in xml_files(layout, &layout.checkpoint_dir(&name)) {
            let parsed = cache.get(layout, &path, |text| {
                CheckpointDef::parse_stored(text).map(Parsed::Checkpoint).map_err(|e| e.message)
            });
            match parsed {
                Ok(Parsed::Checkpoint(def)) if def.name == stem(&path) => found.checkpoints.push(def),
                Ok(Parsed::Checkpoint(def)) => scan.problems.push(format!(
                    "checkpoint metadata '{}' names checkpoint '{}'",
                    path.display(),
                    def.name
                )),
                Ok(_) => {}
                Err(e) => scan.problems.push(format!("cannot load checkpoint metadata '{}': {e}", path.display())),
            }
        }
        for path in xml_files(layout, &layout.snapshot_dir(&name)) {
            match cache.get(layout, &path, |text| parse_snapshot_document(text).map(Parsed::Snapshot)) {
                Ok(Parsed::Snapshot(stored)) if stored.def.name == stem(&path) => found.snapshots.push(stored),
                Ok(Parsed::Snapshot(stored)) => scan.problems.push(format!(
                    "snapshot metadata '{}' names snapshot '{}'",
                    path.display(),
                    stored.def.name
                )),
                Ok(_) => {}
                Err(e) => scan.problems.push(format!("cannot load snapshot metadata '{}': {e}", path.display())),
            }
        }
        found.current = layout
            .read(&layout.current_file(&name))
            .ok()
            .flatten()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        match layout.read(&layout.job_file(&name)) {
            Ok(job) => found.job = job,
            Err(e) => scan.problems.push(format!("cannot load the job file of domain '{name}': {e}")),
        }
    }
    cache.end_load(scope);
    scan.domains = domains;
    scan
}

/// Removes the temporary files interrupted atomic writes left in the state folders.
/// Only called with the root locked: no write of another process is under way then.
pub fn remove_stale_temporaries(layout: &Layout) {
    let mut dirs = vec![layout.definitions(), layout.run()];
    for kind in [layout.checkpoints(), layout.snapshots()] {
        if let Ok(entries) = fs::read_dir(kind) {
            dirs.extend(entries.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()));
        }
    }
    for dir in dirs {
        if layout.parts_below_root(&dir).is_err() {
            continue;
        }
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_file()) && is_temporary(&entry.file_name().to_string_lossy()) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_metadata_reads_back_with_its_checkpoint_and_current_mark() {
        let how = SnapshotParse { redefine: true, ..Default::default() };
        let def = SnapshotDef::parse(
            "<domainsnapshot><name>s1</name><state>shutoff</state><creationTime>7</creationTime></domainsnapshot>",
            how,
        )
        .unwrap();
        for (current, checkpoint) in [(true, Some("c<1>&".to_string())), (false, None)] {
            let reverts = vec![PathBuf::from("/d/a.e1.1")];
            let stored = StoredSnapshot { def: def.clone(), current, checkpoint: checkpoint.clone(), reverts };
            let text = snapshot_document(&stored);
            assert!(text.contains(&format!("<active>{}</active>", u8::from(current))), "{text}");
            let again = parse_snapshot_document(&text).unwrap();
            assert_eq!((again.def.name.as_str(), again.current, again.checkpoint), ("s1", current, checkpoint));
            assert_eq!(again.reverts, [PathBuf::from("/d/a.e1.1")]);
        }
        // What libvirt reads: its own format, the checkpoint in a namespace of ours.
        let text = snapshot_document(&StoredSnapshot {
            def,
            current: true,
            checkpoint: Some("c1".into()),
            reverts: Vec::new(),
        });
        assert!(
            text.contains("<virbackup:checkpoint xmlns:virbackup='urn:virbackup:domain:1'>c1</virbackup:checkpoint>"),
            "{text}"
        );
    }

    #[test]
    fn hostile_names_are_refused() {
        for bad in ["", ".", "..", ".hidden", "a/b", "../x", "a\0b", "a\nb", &"x".repeat(MAX_NAME_BYTES + 1)] {
            assert!(check_file_name("domain", bad).is_err(), "{bad:?}");
        }
        for good in ["vm1", "my vm", "a..b", "café", &"x".repeat(MAX_NAME_BYTES)] {
            assert!(check_file_name("domain", good).is_ok(), "{good:?}");
        }
        assert_eq!(
            check_file_name("checkpoint", "a/b").unwrap_err().message,
            "invalid argument: checkpoint name 'a/b' must not contain '/'"
        );
    }

    #[test]
    fn atomic_writes_replace_and_leave_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/file.xml");
        fs::create_dir(dir.path().join("sub")).unwrap();
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "two");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["file.xml"]);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        remove_durable(&path).unwrap();
        remove_durable(&path).unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn status_round_trip() {
        let def = DomainDef::parse(
            "<domain type='qemu'><name>vm</name><memory>1024</memory><os><type>hvm</type></os></domain>",
        )
        .unwrap();
        let def = Arc::new(def);
        let status = Status {
            id: 3,
            state: 1,
            reason: 1,
            pid: 42,
            started: Some(7),
            qmp: "/r/q.sock".into(),
            exports: vec![DiskExport {
                target: "vda".into(),
                interface: Interface::Fuse,
                path: "/r/vm/disks/vda".into(),
            }],
            def,
        };
        assert_eq!(Status::parse(&status.document()).unwrap(), status);
        assert!(Status::parse("<domstatus/>").is_err());
    }

    #[test]
    fn loading_skips_what_is_broken() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().to_path_buf());
        layout.create().unwrap();
        let vm = "<domain type='qemu'><name>vm</name><memory>1024</memory><os><type>hvm</type></os></domain>";
        layout.save(&layout.definition("vm"), vm).unwrap();
        layout.save(&layout.definition("broken"), "<domain").unwrap();
        layout.save(&layout.definition("other"), vm).unwrap();
        let cp = CheckpointDef { name: "c1".into(), creation_time: 5, ..Default::default() };
        layout.save(&layout.checkpoint_file("vm", "c1"), &checkpoint_document(&cp)).unwrap();
        layout.save(&layout.checkpoint_file("vm", "c2"), "garbage").unwrap();
        layout.save(&layout.current_file("vm"), "c1\n").unwrap();
        let mut cache = ParseCache::default();
        let scan = load(&layout, &mut cache, Scope::All);
        assert_eq!(scan.domains.len(), 1);
        let vm = &scan.domains[0];
        assert_eq!(vm.checkpoints.len(), 1);
        assert_eq!(vm.checkpoints[0].creation_time, 5);
        assert_eq!(vm.current.as_deref(), Some("c1"));
        assert_eq!(scan.problems.len(), 3, "{:?}", scan.problems);
        assert!(scan.problems.iter().any(|p| p.contains("c2.xml")));
        // A second load reuses what it parsed: the same definition, not a new one.
        let first = scan.domains[0].def.clone().unwrap();
        let again = load(&layout, &mut cache, Scope::All);
        assert!(Arc::ptr_eq(&first, again.domains[0].def.as_ref().unwrap()));
        // A rewritten file is parsed anew.
        layout.save(&layout.definition("vm"), &vm_xml_with_vcpus(2)).unwrap();
        let changed = load(&layout, &mut cache, Scope::All);
        assert_eq!(changed.domains[0].def.as_ref().unwrap().vcpus, 2);
        // One domain's load reads its files only: the broken definition is not looked at.
        let one = load(&layout, &mut ParseCache::default(), Scope::Domain("vm"));
        assert_eq!(one.domains.len(), 1);
        assert_eq!(one.domains[0].checkpoints.len(), 1);
        assert_eq!(one.problems.len(), 1, "{:?}", one.problems);
        assert!(one.problems[0].contains("c2.xml"));
        for absent in ["broken", "missing", "../vm", ""] {
            let none = load(&layout, &mut ParseCache::default(), Scope::Domain(absent));
            assert!(none.domains.is_empty(), "{absent}");
        }
        // A load of one domain keeps what the cache holds of the others.
        load(&layout, &mut cache, Scope::Domain("vm"));
        let all = load(&layout, &mut cache, Scope::All);
        assert!(Arc::ptr_eq(changed.domains[0].def.as_ref().unwrap(), all.domains[0].def.as_ref().unwrap()));
    }

    fn vm_xml_with_vcpus(n: u32) -> String {
        format!(
            "<domain type='qemu'><name>vm</name><memory>1024</memory><vcpu>{n}</vcpu><os><type>hvm</type></os></domain>"
        )
    }

    #[test]
    fn nothing_inside_the_root_is_reached_through_a_symbolic_link() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().join("root"));
        layout.create().unwrap();
        // The checkpoint folder of domain "vm" is a link to a folder outside the root.
        std::os::unix::fs::symlink(outside.path(), layout.checkpoint_dir("vm")).unwrap();
        let err = layout.save(&layout.checkpoint_file("vm", "c1"), "x").unwrap_err();
        assert_eq!(err.code, Code::VIR_ERR_OPERATION_DENIED);
        assert!(err.message.contains("is a symbolic link inside the root"), "{}", err.message);
        assert!(layout.read(&layout.checkpoint_file("vm", "c1")).is_err());
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
        // A state file that is a link is not read through either.
        fs::write(outside.path().join("secret"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), layout.status("vm")).unwrap();
        assert!(layout.read(&layout.status("vm")).is_err());
        // Removing a state file that is a link removes the link (as for the autostart
        // link the driver makes), never what it points to; a folder on the way that is
        // a link is refused.
        layout.remove(&layout.status("vm")).unwrap();
        assert!(fs::symlink_metadata(layout.status("vm")).is_err());
        assert!(outside.path().join("secret").exists());
        let err = layout.remove(&layout.checkpoint_dir("vm").join("secret")).unwrap_err();
        assert_eq!(err.code, Code::VIR_ERR_OPERATION_DENIED);
        assert!(outside.path().join("secret").exists());
        // Removing the folder removes the link, not what it points to.
        layout.remove_dir(&layout.checkpoint_dir("vm")).unwrap();
        assert!(outside.path().join("secret").exists());
    }

    #[test]
    fn folders_and_files_get_their_modes_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().join("root"));
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
        layout.create().unwrap();
        layout.save(&layout.checkpoint_file("vm", "c1"), "x").unwrap();
        nix::sys::stat::umask(old);
        for path in [layout.checkpoint_dir("vm"), layout.run()] {
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o700, "{}", path.display());
        }
        assert_eq!(fs::metadata(layout.checkpoint_file("vm", "c1")).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn stale_temporaries_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().join("root"));
        layout.create().unwrap();
        layout.ensure_dir(&layout.checkpoint_dir("vm")).unwrap();
        let stale = layout.checkpoint_dir("vm").join(".c1.xml.tmp-123-0");
        fs::write(&stale, "half").unwrap();
        fs::write(layout.run().join(".generation.tmp-9-9"), "1").unwrap();
        layout.save(&layout.definition("vm"), "kept").unwrap();
        remove_stale_temporaries(&layout);
        assert!(!stale.exists());
        assert!(!layout.run().join(".generation.tmp-9-9").exists());
        assert!(layout.definition("vm").exists());
    }
}

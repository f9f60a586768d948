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
//! ```
//!
//! Every write is atomic (a temporary file in the same folder, fsync, rename, fsync of
//! the folder): after a crash at any instant a file is either the old or the new one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::conf::checkpoint::{CheckpointDef, CheckpointFormat};
use crate::conf::domain::DomainDef;
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

    fn run(&self) -> PathBuf {
        self.root.join("run/qemu")
    }

    /// Creates the folders (mode 0700).
    pub fn create(&self) -> Result<()> {
        for dir in [self.definitions(), self.checkpoints(), self.run()] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| Error::system(FROM, format!("cannot create '{}'", dir.display()), &e))?;
        }
        Ok(())
    }

    pub fn definition(&self, domain: &str) -> PathBuf {
        self.definitions().join(format!("{domain}.xml"))
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

/// Replaces `path` with `contents` atomically (and durably), creating its folder.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no parent folder"))?;
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
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

/// Writes a file atomically, as a libvirt error on failure.
pub fn save(path: &Path, contents: &str) -> Result<()> {
    write_atomic(path, contents.as_bytes())
        .map_err(|e| Error::system(FROM, format!("cannot write '{}'", path.display()), &e))
}

/// Removes a file durably, as a libvirt error on failure.
pub fn remove(path: &Path) -> Result<()> {
    remove_durable(path).map_err(|e| Error::system(FROM, format!("cannot remove '{}'", path.display()), &e))
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
    /// The daemon's pid.
    pub pid: u32,
    pub qmp: PathBuf,
    pub nbd: PathBuf,
    /// The definition it runs with.
    pub def: DomainDef,
}

impl Status {
    pub fn document(&self) -> String {
        let engine = Element::new("engine")
            .with_attr("pid", self.pid.to_string())
            .with_attr("qmp", self.qmp.to_string_lossy())
            .with_attr("nbd", self.nbd.to_string_lossy());
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
        Ok(Status {
            id: num(&root, "id")? as i32,
            state: num(&root, "state")? as i32,
            reason: num(&root, "reason")? as i32,
            pid: num(engine, "pid")? as u32,
            qmp: engine.attr("qmp").ok_or("no qmp socket")?.into(),
            nbd: engine.attr("nbd").ok_or("no nbd socket")?.into(),
            def,
        })
    }
}

/// One domain as found on disk.
#[derive(Debug)]
pub struct Found {
    /// The persistent definition (None for a transient domain that is running).
    pub def: Option<DomainDef>,
    pub status: Option<Status>,
    pub checkpoints: Vec<CheckpointDef>,
    pub current: Option<String>,
    /// The text of the job file, when there is one.
    pub job: Option<String>,
}

/// Everything under the root, with what could not be read.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub domains: Vec<Found>,
    pub problems: Vec<String>,
}

fn xml_files(dir: &Path) -> Vec<PathBuf> {
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

/// Marks a domain autostart (or not): creates or removes its link, durably.
pub fn set_autostart(layout: &Layout, domain: &str, on: bool) -> Result<()> {
    let link = layout.autostart_link(domain);
    if on {
        let dir = layout.autostart_dir();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| Error::system(FROM, format!("cannot create autostart directory {}", dir.display()), &e))?;
        match std::os::unix::fs::symlink(format!("../{domain}.xml"), &link) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(Error::system(FROM, format!("Failed to create symlink '{}'", link.display()), &e));
            }
        }
        sync_dir(&dir).map_err(|e| Error::system(FROM, format!("cannot sync '{}'", dir.display()), &e))
    } else {
        match remove_durable(&link) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::system(FROM, format!("Failed to delete symlink '{}'", link.display()), &e)),
        }
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

/// Reads the whole state. A file that cannot be read or parsed is skipped and listed in
/// `problems`; it is left on disk untouched.
pub fn load(layout: &Layout) -> Snapshot {
    let mut snapshot = Snapshot::default();
    let mut domains: Vec<Found> = Vec::new();
    for path in xml_files(&layout.definitions()) {
        match fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|t| DomainDef::parse(&t).map_err(|e| e.message))
        {
            Ok(def) if def.name == stem(&path) => {
                domains.push(Found { def: Some(def), status: None, checkpoints: Vec::new(), current: None, job: None })
            }
            Ok(def) => snapshot.problems.push(format!(
                "domain definition '{}' names domain '{}', not '{}'",
                path.display(),
                def.name,
                stem(&path)
            )),
            Err(e) => snapshot.problems.push(format!("cannot load domain definition '{}': {e}", path.display())),
        }
    }
    for path in xml_files(&layout.run()) {
        let status = fs::read_to_string(&path).map_err(|e| e.to_string()).and_then(|t| Status::parse(&t));
        match status {
            Ok(status) if status.def.name == stem(&path) => {
                match domains.iter_mut().find(|d| d.def.as_ref().is_some_and(|def| def.name == status.def.name)) {
                    Some(found) => found.status = Some(status),
                    None => domains.push(Found {
                        def: None,
                        status: Some(status),
                        checkpoints: Vec::new(),
                        current: None,
                        job: None,
                    }),
                }
            }
            Ok(_) => snapshot.problems.push(format!("status file '{}' names another domain", path.display())),
            Err(e) => snapshot.problems.push(format!("cannot load domain status '{}': {e}", path.display())),
        }
    }
    for found in &mut domains {
        let name =
            found.def.as_ref().or(found.status.as_ref().map(|s| &s.def)).map(|d| d.name.clone()).unwrap_or_default();
        for path in xml_files(&layout.checkpoint_dir(&name)) {
            let parsed = fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|t| CheckpointDef::parse(&t, true).map_err(|e| e.message));
            match parsed {
                Ok(def) if def.name == stem(&path) => found.checkpoints.push(def),
                Ok(def) => snapshot.problems.push(format!(
                    "checkpoint metadata '{}' names checkpoint '{}'",
                    path.display(),
                    def.name
                )),
                Err(e) => snapshot.problems.push(format!("cannot load checkpoint metadata '{}': {e}", path.display())),
            }
        }
        found.current =
            fs::read_to_string(layout.current_file(&name)).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        found.job = fs::read_to_string(layout.job_file(&name)).ok();
    }
    snapshot.domains = domains;
    snapshot
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let status =
            Status { id: 3, state: 1, reason: 1, pid: 42, qmp: "/r/q.sock".into(), nbd: "/r/n.sock".into(), def };
        assert_eq!(Status::parse(&status.document()).unwrap(), status);
        assert!(Status::parse("<domstatus/>").is_err());
    }

    #[test]
    fn loading_skips_what_is_broken() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().to_path_buf());
        layout.create().unwrap();
        let vm = "<domain type='qemu'><name>vm</name><memory>1024</memory><os><type>hvm</type></os></domain>";
        save(&layout.definition("vm"), vm).unwrap();
        save(&layout.definition("broken"), "<domain").unwrap();
        save(&layout.definition("other"), vm).unwrap();
        let cp = CheckpointDef { name: "c1".into(), creation_time: 5, ..Default::default() };
        save(&layout.checkpoint_file("vm", "c1"), &checkpoint_document(&cp)).unwrap();
        save(&layout.checkpoint_file("vm", "c2"), "garbage").unwrap();
        save(&layout.current_file("vm"), "c1\n").unwrap();
        let snapshot = load(&layout);
        assert_eq!(snapshot.domains.len(), 1);
        let vm = &snapshot.domains[0];
        assert_eq!(vm.checkpoints.len(), 1);
        assert_eq!(vm.checkpoints[0].creation_time, 5);
        assert_eq!(vm.current.as_deref(), Some("c1"));
        assert_eq!(snapshot.problems.len(), 3, "{:?}", snapshot.problems);
        assert!(snapshot.problems.iter().any(|p| p.contains("c2.xml")));
    }
}

//! The QMP pieces of a backup: stores (backup targets and scratch images) created and
//! opened as block nodes, the actions of the transaction that starts the copies, the
//! jobs' progress, and NBD exports.
//!
//! A push backup copies each disk into its target with a `blockdev-backup` job (`sync`
//! full, or incremental from a temporary bitmap merged from the checkpoint's). A pull
//! backup puts a scratch image backed by the disk under a `sync=none` job, so that QEMU
//! copies old data there before the guest overwrites it, and exports the scratch image:
//! readers see the disk as it was when the job started.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{FROM, Session};
use crate::error::{Error, Result};

/// How a store image comes to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Creation {
    /// The caller made it (`REUSE_EXTERNAL`); only opened.
    Existing,
    /// Formatted here, `size` bytes, recording `backing` (path, format) in its header.
    New { size: u64, backing: Option<(PathBuf, String)> },
}

/// A backup target or scratch image, as block nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    pub path: PathBuf,
    pub format: String,
    pub file_node: String,
    pub format_node: String,
    pub creation: Creation,
    /// The node reads fall through to (a pull backup's scratch reads the disk).
    pub backing_node: Option<String>,
    /// A disk's new top layer (an external snapshot's overlay), not a copy: its file is
    /// opened as a disk's own are, with every flush kept.
    pub overlay: bool,
}

impl Store {
    /// The id of the job that formats a new store.
    pub fn create_job_id(&self) -> String {
        format!("{}-create", self.format_node)
    }
}

/// The ways a store's file node is opened, best first. Writes bypass the page cache
/// (`O_DIRECT`, asynchronous I/O): the copy then runs at the disk's write speed from the
/// start instead of filling the page cache and waiting for writeback at the end, which
/// measured about twice as fast for a 4 GiB full backup here. File systems without
/// `O_DIRECT` (tmpfs) and kernels without io_uring get the next way. Either way writes are
/// not flushed one by one: a store is worth something only once the job completed, and
/// the driver syncs it then.
const FILE_NODE_MODES: [(bool, &str); 3] = [(true, "io_uring"), (true, "native"), (false, "threads")];

fn file_node_options(store: &Store, (direct, aio): (bool, &str)) -> Value {
    json!({
        "driver": "file",
        "node-name": store.file_node,
        "filename": store.path,
        "aio": aio,
        "cache": {"direct": direct, "no-flush": true},
    })
}

impl Session {
    /// Runs a command that starts a job (`blockdev-create`) and waits for its end.
    fn run_job(&mut self, command: &str, arguments: Value, job_id: &str) -> Result<()> {
        self.execute(command, Some(arguments))?;
        let deadline = Instant::now() + super::default_timeout();
        let outcome = loop {
            let jobs = self.jobs()?;
            match jobs.into_iter().find(|j| j.id == job_id) {
                Some(job) if job.concluded() => break job.error,
                Some(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
                Some(_) => break Some(format!("job '{job_id}' did not end in time")),
                None => break Some(format!("job '{job_id}' disappeared")),
            }
        };
        let _ = self.execute("job-dismiss", Some(json!({"id": job_id})));
        match outcome {
            None => Ok(()),
            Some(error) => Err(Error::internal(FROM, format!("{command} failed: {error}"))),
        }
    }

    /// Opens a store as nodes, formatting it first when it is new. On failure the nodes
    /// opened so far are closed again.
    pub fn open_store(&mut self, store: &Store) -> Result<()> {
        // A pull backup's scratch image takes the old data a guest write displaces, while
        // the guest waits: the page cache serves it best.
        let modes = if store.backing_node.is_some() { &FILE_NODE_MODES[2..] } else { &FILE_NODE_MODES[..] };
        let mut opened = Err(Error::internal(FROM, "no way to open a store"));
        for &mode in modes {
            let options = if store.overlay {
                json!({"driver": "file", "node-name": store.file_node, "filename": store.path, "discard": "unmap"})
            } else {
                file_node_options(store, mode)
            };
            opened = self.execute("blockdev-add", Some(options));
            if opened.is_ok() {
                break;
            }
        }
        opened?;
        let result = (|| {
            if let Creation::New { size, backing } = &store.creation {
                let mut options = json!({"driver": store.format, "file": store.file_node, "size": size});
                match backing.as_ref().filter(|_| store.format == "qcow2") {
                    Some((path, format)) => {
                        options["backing-file"] = json!(path);
                        options["backing-fmt"] = json!(format);
                    }
                    // A full copy's target gets all its metadata up front: the file has
                    // its final size (sparse) from the start, so the copy's writes never
                    // extend it, which the file system serialises. (QEMU refuses
                    // preallocation with a backing file.)
                    None if store.format == "qcow2" => options["preallocation"] = json!("metadata"),
                    None => {}
                }
                let job_id = store.create_job_id();
                self.run_job("blockdev-create", json!({"job-id": job_id, "options": options}), &job_id)?;
            }
            let mut format = json!({"driver": store.format, "node-name": store.format_node, "file": store.file_node});
            if store.overlay {
                format["discard"] = json!("unmap");
            }
            if store.format == "qcow2" {
                // The header's backing file is for whoever restores; the node reads
                // through the disk only when it is a pull backup's scratch image.
                format["backing"] = store.backing_node.as_ref().map_or(Value::Null, |n| json!(n));
            }
            self.execute("blockdev-add", Some(format)).map(|_| ())
        })();
        if result.is_err() {
            let _ = self.execute("blockdev-del", Some(json!({"node-name": store.file_node})));
        }
        result
    }

    /// Closes a store's nodes (errors are left out: the nodes may be gone already).
    pub fn close_store(&mut self, store: &Store) {
        let _ = self.execute("blockdev-del", Some(json!({"node-name": store.format_node})));
        let _ = self.execute("blockdev-del", Some(json!({"node-name": store.file_node})));
    }
}

/// An NBD server address for `nbd-server-start`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NbdAddress {
    Unix(PathBuf),
    Tcp { host: String, port: u32 },
}

impl NbdAddress {
    fn to_qmp(&self) -> Value {
        match self {
            NbdAddress::Unix(path) => json!({"type": "unix", "data": {"path": path}}),
            NbdAddress::Tcp { host, port } => {
                json!({"type": "inet", "data": {"host": host, "port": port.to_string()}})
            }
        }
    }
}

impl Session {
    /// Adds x509 TLS credentials for a server (`tls-creds-x509`, endpoint `server`) from
    /// `dir` (`ca-cert.pem`, `server-cert.pem`, `server-key.pem`, and `dh-params.pem`
    /// when there); with `verify`, clients must present a certificate the CA signed.
    pub fn add_tls_credentials(&mut self, id: &str, dir: &Path, verify: bool) -> Result<()> {
        let args =
            json!({"qom-type": "tls-creds-x509", "id": id, "endpoint": "server", "dir": dir, "verify-peer": verify});
        self.execute("object-add", Some(args)).map(drop)
    }

    /// Starts the process's NBD server, with TLS when given the credentials' id.
    pub fn start_nbd_server(&mut self, address: &NbdAddress, tls: Option<&str>) -> Result<()> {
        let mut args = json!({"addr": address.to_qmp()});
        if let Some(id) = tls {
            args["tls-creds"] = json!(id);
        }
        self.execute("nbd-server-start", Some(args)).map(drop)
    }

    /// Exports `node` read-only as `name`, with the dirty bitmap `bitmap` (found on the
    /// node or below it) as the meta context `qemu:dirty-bitmap:<bitmap>`.
    pub fn export(&mut self, id: &str, node: &str, name: &str, bitmap: Option<&str>) -> Result<()> {
        let mut args = json!({"type": "nbd", "id": id, "node-name": node, "name": name, "writable": false});
        if let Some(bitmap) = bitmap {
            args["bitmaps"] = json!([bitmap]);
        }
        self.execute("block-export-add", Some(args)).map(|_| ())
    }
}

/// Refuses to reuse or overwrite: creates `path` empty with mode 0600, failing when it
/// exists. `false` means it existed.
pub fn create_exclusive(path: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Writes a finished target to stable storage.
pub fn sync_file(path: &Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new().write(true).open(path)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nbd_addresses() {
        assert_eq!(
            NbdAddress::Tcp { host: "localhost".into(), port: 10809 }.to_qmp(),
            json!({"type": "inet", "data": {"host": "localhost", "port": "10809"}})
        );
    }

    #[test]
    fn stores_are_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.qcow2");
        assert!(create_exclusive(&path).unwrap());
        assert!(!create_exclusive(&path).unwrap());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        sync_file(&path).unwrap();
        assert!(create_exclusive(&dir.path().join("no/such/dir")).is_err());
    }
}

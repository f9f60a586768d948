//! The engine: the QEMU block layer that owns a domain's disks, reached over QMP.
//!
//! Whoever owns the disks — a `qemu-storage-daemon` started for one operation on a
//! shut-off domain, the daemon kept up while a domain runs, or a QEMU process someone else
//! runs (adoption) — the driver talks to it the same way: open a [`Session`], find each
//! disk's format node by its file name, send QMP, finish. Finishing a session on a daemon
//! started for it quits the daemon, which writes persistent bitmaps back to the images.

#![forbid(unsafe_code)]

pub mod backup;
pub mod commands;
pub mod commit;
pub mod daemon;
pub mod image;
pub mod qmp;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::error::{Code, Domain, Error, Result};
pub use commands::{Action, BitmapInfo, BlockNode, JobState, Sync};
use qmp::{Qmp, QmpError};

const FROM: Domain = Domain::VIR_FROM_QEMU;

/// One disk as the engine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineDisk {
    /// The disk's target (`vda`); also its NBD export name.
    pub target: String,
    pub path: PathBuf,
    /// The image format driver (`qcow2`, `raw`).
    pub format: String,
    pub read_only: bool,
}

/// The node names a daemon we start gives disk `index`: (file node, format node).
pub fn node_names(index: usize) -> (String, String) {
    (format!("vb-file{index}"), format!("vb-disk{index}"))
}

/// The default bound on waiting for QEMU: `VIRBACKUP_QMP_TIMEOUT_MS`, else 30 s.
pub fn default_timeout() -> Duration {
    std::env::var("VIRBACKUP_QMP_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(Duration::from_secs(30))
}

/// Turns a QMP failure into a libvirt error naming the process (`what`).
pub fn qmp_error(err: QmpError, what: &str) -> Error {
    match err {
        QmpError::Command { .. } | QmpError::Protocol(_) => Error::internal(FROM, err.to_string()),
        QmpError::Connect(e) => Error::new(FROM, Code::VIR_ERR_OPERATION_FAILED, format!("cannot reach {what}: {e}")),
        QmpError::Closed => Error::new(FROM, Code::VIR_ERR_OPERATION_FAILED, format!("{what} exited unexpectedly")),
        QmpError::Timeout { waiting_for, after } => Error::new(
            FROM,
            Code::VIR_ERR_OPERATION_TIMEOUT,
            format!("{what} did not answer {waiting_for} within {:.1}s", after.as_secs_f64()),
        ),
    }
}

/// How a session reaches the disks.
#[derive(Debug, Clone, Copy)]
pub enum Access<'a> {
    /// Start a daemon for this session, on monitor `qmp` with its pid in `pidfile` (the
    /// caller records both first), and stop it when the session finishes.
    Transient { qmp: &'a Path, pidfile: &'a Path },
    /// A monitor that is already there: our running daemon or an adopted QEMU.
    Existing { qmp: &'a Path },
}

/// A QMP conversation with the process that owns a domain's disks.
#[derive(Debug)]
pub struct Session {
    qmp: Qmp,
    what: String,
    /// Format node of each disk, by target.
    nodes: HashMap<String, String>,
    /// The daemon this session started, to be stopped when it ends.
    transient: Option<u32>,
}

impl Session {
    /// Opens a session on the disks; `what` names the process in error messages.
    pub fn open(access: Access<'_>, disks: &[EngineDisk], what: &str) -> Result<Session> {
        let timeout = default_timeout();
        let (qmp_path, transient) = match access {
            Access::Transient { qmp, pidfile } => {
                let config = daemon::DaemonConfig { qmp, pidfile, disks, exports: &[], events: None };
                let pid = daemon::start(&config).map_err(|e| daemon_error(what, disks, &e))?;
                (qmp.to_path_buf(), Some(pid))
            }
            Access::Existing { qmp } => (qmp.to_path_buf(), None),
        };
        let qmp = match Qmp::connect(&qmp_path, timeout) {
            Ok(q) => q,
            Err(e) => {
                if let Some(pid) = transient {
                    daemon::kill(pid);
                }
                return Err(qmp_error(e, what));
            }
        };
        let mut session = Session { qmp, what: what.to_string(), nodes: HashMap::new(), transient };
        session.nodes = session.find_nodes(disks)?;
        Ok(session)
    }

    /// Maps each disk to the format node whose image is the disk's file.
    fn find_nodes(&mut self, disks: &[EngineDisk]) -> Result<HashMap<String, String>> {
        let nodes = self.block_nodes()?;
        let mut found = HashMap::new();
        for disk in disks {
            let path = disk.path.to_string_lossy();
            match nodes.iter().find(|n| n.driver == disk.format && n.file == path) {
                Some(node) => {
                    found.insert(disk.target.clone(), node.name.clone());
                }
                None => {
                    return Err(Error::new(
                        FROM,
                        Code::VIR_ERR_OPERATION_FAILED,
                        format!("disk '{}' ({}) has no {} node in {}", disk.target, path, disk.format, self.what),
                    ));
                }
            }
        }
        Ok(found)
    }

    /// The pid of the daemon this session started, if it did.
    pub fn transient_pid(&self) -> Option<u32> {
        self.transient
    }

    /// The session's monitor connection, for commands sent as they are.
    pub fn monitor(&mut self) -> &mut Qmp {
        &mut self.qmp
    }

    /// The format node of a disk.
    pub fn node(&self, target: &str) -> Result<&str> {
        self.nodes
            .get(target)
            .map(String::as_str)
            .ok_or_else(|| Error::internal(FROM, format!("disk '{target}' is not open in {}", self.what)))
    }

    /// Runs a QMP command (inside the engine: everyone else uses the typed calls).
    fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value> {
        self.qmp.execute(command, arguments).map_err(|e| qmp_error(e, &self.what))
    }

    /// Turns a typed command's failure into this session's error.
    fn check<T>(&self, result: std::result::Result<T, QmpError>) -> Result<T> {
        result.map_err(|e| qmp_error(e, &self.what))
    }

    /// Runs actions atomically (QMP `transaction`); nothing happens if one fails.
    pub fn transaction(&mut self, actions: &[Action]) -> Result<()> {
        let result = commands::transaction(&mut self.qmp, actions);
        self.check(result)
    }

    /// Every named block node of the engine.
    pub fn block_nodes(&mut self) -> Result<Vec<BlockNode>> {
        let result = commands::block_nodes(&mut self.qmp);
        self.check(result)
    }

    /// Something of every disk's format node, by target.
    fn per_disk<T: Default>(&mut self, pick: impl Fn(&BlockNode) -> T) -> Result<HashMap<String, T>> {
        let nodes = self.block_nodes()?;
        Ok(self
            .nodes
            .iter()
            .map(|(target, node)| {
                (target.clone(), nodes.iter().find(|n| &n.name == node).map(&pick).unwrap_or_default())
            })
            .collect())
    }

    /// The dirty bitmaps of every disk, by target.
    pub fn bitmaps(&mut self) -> Result<HashMap<String, Vec<BitmapInfo>>> {
        self.per_disk(|n| n.bitmaps.clone())
    }

    /// The internal snapshots of every disk's image, by target.
    pub fn snapshots(&mut self) -> Result<HashMap<String, Vec<String>>> {
        self.per_disk(|n| n.snapshots.clone())
    }

    /// The format nodes of the images below a disk's own in its backing chain, nearest
    /// first (an external snapshot's overlay reads through them).
    pub fn backing_nodes(&mut self, target: &str) -> Result<Vec<BlockNode>> {
        let top = self.node(target)?.to_string();
        let nodes = self.block_nodes()?;
        let mut chain: Vec<BlockNode> = Vec::new();
        let mut at = nodes.iter().find(|n| n.name == top);
        while let Some(file) = at.and_then(|n| n.backing_file.clone()) {
            at = nodes.iter().find(|n| n.file == file && n.driver != "file" && !chain.iter().any(|c| c.name == n.name));
            chain.extend(at.cloned());
        }
        Ok(chain)
    }

    /// The block graph: which node reads through to which, and what is in use.
    pub fn block_graph(&mut self) -> Result<commands::BlockGraph> {
        let result = commands::block_graph(&mut self.qmp);
        self.check(result)
    }

    /// Deletes a disk image's internal snapshot.
    pub fn delete_internal_snapshot(&mut self, node: &str, name: &str) -> Result<()> {
        let result = commands::delete_internal_snapshot(&mut self.qmp, node, name);
        self.check(result)
    }

    /// Each disk's size in bytes, by target, as its format node reports it.
    pub fn virtual_sizes(&mut self) -> Result<HashMap<String, u64>> {
        let nodes = self.block_nodes()?;
        Ok(self
            .nodes
            .iter()
            .filter_map(|(target, node)| {
                let size = nodes.iter().find(|n| &n.name == node)?.virtual_size?;
                Some((target.clone(), size))
            })
            .collect())
    }

    /// The jobs of the engine.
    pub fn jobs(&mut self) -> Result<Vec<JobState>> {
        let result = commands::jobs(&mut self.qmp);
        self.check(result)
    }

    /// Cancels a block job at once; one that ended already is fine.
    pub fn cancel_job(&mut self, id: &str) {
        let _ = commands::cancel_job(&mut self.qmp, id);
    }

    /// Forgets a concluded job; one that is gone is fine.
    pub fn dismiss_job(&mut self, id: &str) {
        let _ = commands::dismiss_job(&mut self.qmp, id);
    }

    /// Removes an export, dropping its clients; one that is gone is fine.
    pub fn remove_export(&mut self, id: &str) {
        let _ = commands::remove_export(&mut self.qmp, id);
    }

    /// Stops the engine's NBD server; one that is not running is fine.
    pub fn stop_nbd_server(&mut self) {
        let _ = commands::stop_nbd_server(&mut self.qmp);
    }

    /// Deletes an object; one that is gone is fine.
    pub fn remove_object(&mut self, id: &str) {
        let _ = commands::remove_object(&mut self.qmp, id);
    }

    /// Removes a bitmap; one that is gone is fine.
    pub fn remove_bitmap(&mut self, node: &str, name: &str) {
        let _ = commands::remove_bitmap(&mut self.qmp, node, name);
    }

    /// Ends the session. A daemon the session started is asked to quit (flushing its
    /// persistent bitmaps into the images) and waited for.
    pub fn finish(mut self) -> Result<()> {
        self.stop_transient()
    }

    fn stop_transient(&mut self) -> Result<()> {
        let Some(pid) = self.transient.take() else { return Ok(()) };
        let timeout = self.qmp.timeout();
        if daemon::quit(&mut self.qmp, pid, timeout) {
            Ok(())
        } else {
            Err(Error::new(
                FROM,
                Code::VIR_ERR_OPERATION_TIMEOUT,
                format!("{} did not quit within {:.1}s and was killed", self.what, timeout.as_secs_f64()),
            ))
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // A session dropped on an error path must not leave its daemon behind.
        let _ = self.stop_transient();
    }
}

/// Sends an application's command to a monitor and returns the reply as text: a QMP
/// command given as JSON returns QEMU's whole reply (`{"return": ...}` or
/// `{"error": ...}`); with `hmp`, a human-monitor command returns its output. `what`
/// names the process in errors.
pub fn monitor_command(socket: &Path, what: &str, cmd: &str, hmp: bool) -> Result<String> {
    let mut qmp = Qmp::connect(socket, default_timeout()).map_err(|e| qmp_error(e, what))?;
    if hmp {
        return match qmp.execute("human-monitor-command", Some(json!({ "command-line": cmd }))) {
            Ok(output) => Ok(output.as_str().unwrap_or_default().to_string()),
            Err(QmpError::Command { class, .. }) if class == "CommandNotFound" => Err(Error::new(
                FROM,
                Code::VIR_ERR_OPERATION_UNSUPPORTED,
                format!("{what} has no human monitor (HMP): send the command as QMP"),
            )),
            Err(e) => Err(qmp_error(e, what)),
        };
    }
    let request = match serde_json::from_str::<Value>(cmd) {
        Ok(Value::Object(request)) => request,
        Ok(_) => return Err(Error::internal(FROM, format!("cannot parse json {cmd}: not a JSON object"))),
        Err(e) => return Err(Error::internal(FROM, format!("cannot parse json {cmd}: {e}"))),
    };
    let reply = qmp.execute_raw(request).map_err(|e| qmp_error(e, what))?;
    Ok(reply.to_string())
}

/// Why a daemon could not open a domain's disks, in words: its message names the block
/// node that failed as JSON, which is turned back into the disk (target and file) it
/// stands for. `what` names the domain's engine.
pub fn daemon_error(what: &str, disks: &[EngineDisk], stderr: &str) -> Error {
    let text = stderr.trim().trim_start_matches("qemu-storage-daemon: ");
    // `--blockdev {"driver":...,"node-name":"vb-file0",...}: <reason>`
    let (node, reason) = match text.strip_prefix("--blockdev ").and_then(|rest| rest.split_once("}: ")) {
        Some((json, reason)) => {
            let node = serde_json::from_str::<Value>(&format!("{json}}}"))
                .ok()
                .and_then(|v| v["node-name"].as_str().map(str::to_string));
            (node, reason.to_string())
        }
        None => (None, text.to_string()),
    };
    let disk = node.and_then(|n| {
        (0..disks.len()).find(|&i| {
            let (f, d) = node_names(i);
            f == n || d == n
        })
    });
    let reason = reason.replace('\n', " ");
    match disk.map(|i| &disks[i]) {
        Some(disk) if reason.contains("Failed to get \"write\" lock") || reason.contains("Failed to get shared") => {
            Error::new(
                FROM,
                Code::VIR_ERR_OPERATION_FAILED,
                format!("disk '{}' ('{}') is in use by another process: {reason}", disk.target, disk.path.display()),
            )
        }
        Some(disk) => Error::new(
            FROM,
            Code::VIR_ERR_OPERATION_FAILED,
            format!("disk '{}' ('{}') cannot be opened as {}: {reason}", disk.target, disk.path.display(), disk.format),
        ),
        None => Error::new(FROM, Code::VIR_ERR_OPERATION_FAILED, format!("{what} could not start: {reason}")),
    }
}

/// The sizes `qemu-img info` reports for an image, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageSizes {
    /// What the guest sees.
    pub virtual_size: u64,
    /// What the image occupies on its storage.
    pub actual_size: u64,
}

/// Reads an image's sizes with `qemu-img info`, sharing the image with a process that
/// has it open (`-U`), as a running domain's daemon does.
pub fn image_sizes(path: &Path, format: &str) -> Result<ImageSizes> {
    let args =
        [OsStr::new("info"), OsStr::new("-U"), OsStr::new("--output=json"), OsStr::new("-f"), OsStr::new(format)];
    let args: Vec<&OsStr> = args.into_iter().chain([path.as_os_str()]).collect();
    let out = image::qemu_img(&args, |why| format!("cannot read image '{}': {why}", path.display()))?;
    let info: Value = serde_json::from_slice(&out).map_err(|e| {
        Error::internal(FROM, format!("cannot read qemu-img's description of '{}': {e}", path.display()))
    })?;
    Ok(ImageSizes {
        virtual_size: info["virtual-size"].as_u64().unwrap_or(0),
        actual_size: info["actual-size"].as_u64().unwrap_or(0),
    })
}

/// The version of the engine binary (`major * 1000000 + minor * 1000 + micro`).
pub fn version() -> Result<u64> {
    let out = std::process::Command::new(daemon::binary())
        .arg("--version")
        .output()
        .map_err(|e| Error::system(FROM, format!("cannot run {}", daemon::binary().display()), &e))?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_version(&text).ok_or_else(|| Error::internal(FROM, format!("cannot read the version from '{}'", text.trim())))
}

/// Reads `... version 10.0.2 ...` as 10000002.
fn parse_version(text: &str) -> Option<u64> {
    let word = text.split_whitespace().skip_while(|w| *w != "version").nth(1)?;
    let mut parts = word.split('.').map(|p| p.trim_matches(|c: char| !c.is_ascii_digit()).parse::<u64>().ok());
    let (major, minor, micro) =
        (parts.next()??, parts.next().flatten().unwrap_or(0), parts.next().flatten().unwrap_or(0));
    Some(major * 1_000_000 + minor * 1_000 + micro)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(
            parse_version("qemu-storage-daemon version 10.0.2 (Debian 1:10.0.2+ds-2)\nCopyright"),
            Some(10_000_002)
        );
        assert_eq!(parse_version("version 7.2"), Some(7_002_000));
        assert_eq!(parse_version("nothing"), None);
    }
}

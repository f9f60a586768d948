//! Starting and stopping `qemu-storage-daemon` processes.
//!
//! The daemon daemonizes itself: the command returns once the block nodes are open and
//! the monitor socket is listening (or with the reason it could not start), and the
//! daemon then lives on its own, beyond the process that started it, until it is told
//! to quit.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{EngineDisk, node_names};

/// The program to run: `VIRBACKUP_QSD` when set, else `qemu-storage-daemon` from PATH.
pub fn binary() -> PathBuf {
    std::env::var_os("VIRBACKUP_QSD").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("qemu-storage-daemon"))
}

/// What to run a daemon with.
#[derive(Debug, Clone)]
pub struct DaemonConfig<'a> {
    /// The monitor (QMP) socket the daemon listens on.
    pub qmp: &'a Path,
    /// Where the daemon writes its pid.
    pub pidfile: &'a Path,
    /// The disks to open (empty disks are skipped by the caller).
    pub disks: &'a [EngineDisk],
    /// How each disk (by index) is offered to a writer while the domain runs.
    pub exports: &'a [DiskExport],
    /// A second monitor, for a connection that stays open to hear events (a job's
    /// watcher) while the first one serves short sessions.
    pub events: Option<&'a Path>,
}

/// How a running domain's disks are offered to the VM, or to any other writer. Both
/// leave the daemon's one NBD server free for pull backups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Interface {
    /// A FUSE file export: a plain file any process reads and writes.
    Fuse,
    /// A vhost-user-blk socket: how a VM (QEMU, cloud-hypervisor) attaches a disk kept
    /// by qemu-storage-daemon.
    VhostUserBlk,
}

impl Interface {
    /// The name in XML (`<virbackup:disks interface=...>`).
    pub fn as_str(self) -> &'static str {
        match self {
            Interface::Fuse => "fuse",
            Interface::VhostUserBlk => "vhost-user-blk",
        }
    }

    pub fn from_name(name: &str) -> Option<Interface> {
        match name {
            "fuse" => Some(Interface::Fuse),
            "vhost-user-blk" => Some(Interface::VhostUserBlk),
            _ => None,
        }
    }
}

/// Where one disk of a running domain is offered: the FUSE file, or the vhost-user-blk
/// socket.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DiskExport {
    pub target: String,
    pub interface: Interface,
    pub path: PathBuf,
}

/// QEMU's option syntax splits on commas; a literal comma is written twice.
fn opt_value(path: &Path) -> String {
    path.to_string_lossy().replace(',', ",,")
}

/// The daemon's command line.
pub fn arguments(config: &DaemonConfig<'_>) -> Vec<String> {
    let mut args = vec![
        "--chardev".to_string(),
        format!("socket,id=qmp0,path={},server=on,wait=off", opt_value(config.qmp)),
        "--monitor".to_string(),
        "chardev=qmp0".to_string(),
    ];
    if let Some(events) = config.events {
        args.extend([
            "--chardev".to_string(),
            format!("socket,id=qmp1,path={},server=on,wait=off", opt_value(events)),
            "--monitor".to_string(),
            "chardev=qmp1".to_string(),
        ]);
    }
    for (index, disk) in config.disks.iter().enumerate() {
        let (file_node, format_node) = node_names(index);
        // A block device is opened as one; anything else as a file (QEMU then says
        // what it is instead).
        let is_device = std::fs::metadata(&disk.path).is_ok_and(|m| {
            use std::os::unix::fs::FileTypeExt;
            m.file_type().is_block_device()
        });
        let file = json!({
            "driver": if is_device { "host_device" } else { "file" },
            "node-name": file_node,
            "filename": disk.path,
            "read-only": disk.read_only,
            "discard": "unmap",
        });
        let format = json!({
            "driver": disk.format,
            "node-name": format_node,
            "file": file_node,
            "read-only": disk.read_only,
            "discard": "unmap",
        });
        args.extend(["--blockdev".to_string(), file.to_string(), "--blockdev".to_string(), format.to_string()]);
    }
    for export in config.exports {
        let Some(index) = config.disks.iter().position(|d| d.target == export.target) else { continue };
        let (_, format_node) = node_names(index);
        let mut options = json!({
            "id": format!("export-{index}"),
            "node-name": format_node,
            "writable": !config.disks[index].read_only,
        });
        match export.interface {
            Interface::Fuse => {
                options["type"] = json!("fuse");
                options["mountpoint"] = json!(export.path);
            }
            Interface::VhostUserBlk => {
                options["type"] = json!("vhost-user-blk");
                options["addr"] = json!({"type": "unix", "path": export.path});
            }
        }
        args.extend(["--export".to_string(), options.to_string()]);
    }
    args.extend(["--daemonize".to_string(), "--pidfile".to_string(), config.pidfile.to_string_lossy().into_owned()]);
    args
}

/// The oldest daemon virbackup works with: QEMU 7.2, Debian 12's own.
pub const MIN_VERSION: u64 = 7_002_000;

/// Refuses a daemon older than [`MIN_VERSION`], asking each binary once per process.
fn check_version() -> Result<(), String> {
    static CHECKED: std::sync::LazyLock<parking_lot::Mutex<std::collections::HashMap<PathBuf, Result<(), String>>>> =
        std::sync::LazyLock::new(Default::default);
    let program = binary();
    if let Some(verdict) = CHECKED.lock().get(&program) {
        return verdict.clone();
    }
    let verdict = match super::version() {
        Ok(v) if v >= MIN_VERSION => Ok(()),
        Ok(v) => Err(format!(
            "{} is QEMU {}.{}.{}, older than {}.{}, the oldest virbackup works with",
            program.display(),
            v / 1_000_000,
            v / 1_000 % 1_000,
            v % 1_000,
            MIN_VERSION / 1_000_000,
            MIN_VERSION / 1_000 % 1_000
        )),
        Err(e) => Err(e.message),
    };
    CHECKED.lock().insert(program, verdict.clone());
    verdict
}

/// glibc settings for the daemon, unless the caller sets its own: QEMU allocates a
/// bounce buffer per request of a block job, and above glibc's default mmap threshold
/// each one is an mmap and munmap with fresh page faults. Serving them from the heap
/// made full backups about 20 % faster here (bench/speed.py --only where).
const MALLOC_TUNABLES: &str = "glibc.malloc.mmap_threshold=8388608:glibc.malloc.trim_threshold=268435456";

/// Starts a daemon and returns its pid once it is ready. On failure, the daemon's own
/// explanation (its stderr) is returned.
pub fn start(config: &DaemonConfig<'_>) -> Result<u32, String> {
    check_version()?;
    let _ = std::fs::remove_file(config.qmp);
    let _ = std::fs::remove_file(config.pidfile);
    if let Some(events) = config.events {
        let _ = std::fs::remove_file(events);
    }
    for export in config.exports {
        detach_mount(&export.path);
        let _ = std::fs::remove_file(&export.path);
        if export.interface == Interface::Fuse {
            // A FUSE export mounts over a regular file.
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&export.path)
                .map_err(|e| format!("cannot create {}: {e}", export.path.display()))?;
        }
    }
    let mut command = Command::new(binary());
    command.args(arguments(config));
    if std::env::var_os("GLIBC_TUNABLES").is_none() {
        command.env("GLIBC_TUNABLES", MALLOC_TUNABLES);
    }
    let output = command.output().map_err(|e| format!("cannot run {}: {e}", binary().display()))?;
    if !output.status.success() {
        let text = String::from_utf8_lossy(&output.stderr).trim().to_string();
        return Err(if text.is_empty() {
            format!("{} exited with {}", binary().display(), output.status)
        } else {
            text
        });
    }
    let pid = std::fs::read_to_string(config.pidfile)
        .map_err(|e| format!("no pid file {}: {e}", config.pidfile.display()))?
        .trim()
        .parse::<u32>()
        .map_err(|e| format!("bad pid file {}: {e}", config.pidfile.display()))?;
    // The daemon made its sockets under the caller's umask: they are for the owner only
    // (a FUSE file's mode is the export's, 0600).
    let sockets = config.exports.iter().filter(|e| e.interface == Interface::VhostUserBlk).map(|e| e.path.as_path());
    for socket in [config.qmp].into_iter().chain(config.events).chain(sockets) {
        restrict(socket).map_err(|e| format!("cannot restrict {}: {e}", socket.display()))?;
    }
    Ok(pid)
}

/// The mount points below `dir` (FUSE exports), from this process's mount table.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    table
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mount_path(field)))
        .filter(|path| path.starts_with(dir) && path != dir)
        .collect()
}

/// The mount table writes space, tab, newline and backslash as octal escapes.
fn unescape_mount_path(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && let Some(code) =
                std::str::from_utf8(&bytes[i + 1..i + 4]).ok().and_then(|t| u8::from_str_radix(t, 8).ok())
        {
            out.push(code);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Detaches a FUSE export's mount whose daemon died (its file then answers "transport
/// endpoint is not connected"), so that the file can be removed. A live mount is left
/// alone; so is a path that is not mounted.
pub fn detach_mount(path: &Path) {
    let dead = matches!(std::fs::symlink_metadata(path), Err(e) if e.raw_os_error() == Some(libc::ENOTCONN));
    if dead {
        detach(path);
    }
}

/// Detaches a mount whose daemon is known to be gone, without asking the file first: a
/// killed daemon's threads may still hold its connection for a moment after the
/// process is reaped, when the file does not answer "not connected" yet.
pub fn detach(path: &Path) {
    // fusermount3 detaches a user's own FUSE mounts; umount serves root where fuse3's
    // tools are missing.
    for (program, args) in [("fusermount3", ["-u", "-z"]), ("umount", ["-l", "--"])] {
        let status = Command::new(program).args(args).arg(path).stderr(std::process::Stdio::null()).status();
        if status.is_ok_and(|s| s.success()) {
            return;
        }
    }
}

/// Makes a socket (or any file) reachable by its owner only, whatever the umask was.
pub fn restrict(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

/// True while a process with this pid exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// True when `pid` is alive and runs the daemon binary (so a recycled pid is not taken
/// for our daemon).
pub fn is_daemon(pid: u32) -> bool {
    alive(pid)
        && std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|cmd| cmd.windows(b"storage-daemon".len()).any(|w| w == b"storage-daemon"))
}

/// Waits until the process is gone; false if it is still there after `timeout`.
pub fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// Kills the process outright (for a daemon that did not quit when asked).
pub fn kill(pid: u32) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
}

/// When a process started, in clock ticks since boot (`/proc/<pid>/stat`, field 22):
/// with the pid, it names one process for good, even after the pid is reused.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name, which may hold spaces; the state is
    // field 3, the start time field 22.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// True when `pid` is a daemon of ours listening on monitor `qmp` (its command line
/// names the socket), and, when `started` is given, the very process that was recorded.
pub fn is_ours(pid: u32, qmp: &Path, started: Option<u64>) -> bool {
    if !is_daemon(pid) || started.is_some_and(|t| start_time(pid) != Some(t)) {
        return false;
    }
    let wanted = opt_value(qmp);
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|cmd| cmd.windows(wanted.len()).any(|w| w == wanted.as_bytes()))
}

/// A daemon of ours serving monitor `qmp`, found among all processes (for a daemon
/// whose pid was never recorded).
pub fn find_by_socket(qmp: &Path) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .find(|&pid| is_ours(pid, qmp, None))
}

/// The pid a daemon wrote into its pid file, if it is still ours (see [`is_ours`]).
pub fn from_pidfile(pidfile: &Path, qmp: &Path) -> Option<u32> {
    let pid = std::fs::read_to_string(pidfile).ok()?.trim().parse().ok()?;
    is_ours(pid, qmp, None).then_some(pid)
}

/// Stops a daemon: asks it to quit over its monitor (it then closes the images, writing
/// their persistent bitmaps consistent), and kills it if it has not gone within
/// `timeout`. Returns false when it had to be killed.
pub fn stop(pid: u32, qmp: &Path, timeout: Duration) -> bool {
    match super::qmp::Qmp::connect(qmp, timeout) {
        Ok(mut monitor) => quit(&mut monitor, pid, timeout),
        Err(_) => quit_or_kill(pid, timeout),
    }
}

/// [`stop`] through a monitor connection the caller already has (a monitor serves one
/// client at a time).
pub fn quit(monitor: &mut super::qmp::Qmp, pid: u32, timeout: Duration) -> bool {
    // The answer may be cut short by the daemon exiting; either is fine.
    let _ = monitor.execute("quit", None);
    quit_or_kill(pid, timeout)
}

fn quit_or_kill(pid: u32, timeout: Duration) -> bool {
    if wait_gone(pid, timeout) {
        return true;
    }
    kill(pid);
    wait_gone(pid, timeout);
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_quotes_commas_and_exports_disks() {
        let disks = vec![
            EngineDisk {
                target: "vda".into(),
                path: "/img/a,b.qcow2".into(),
                format: "qcow2".into(),
                read_only: false,
            },
            EngineDisk { target: "vdb".into(), path: "/img/seed.raw".into(), format: "raw".into(), read_only: true },
        ];
        let args = arguments(&DaemonConfig {
            qmp: Path::new("/run/x,y/qmp.sock"),
            pidfile: Path::new("/run/pid"),
            disks: &disks,
            exports: &[
                DiskExport { target: "vda".into(), interface: Interface::Fuse, path: "/run/vda".into() },
                DiskExport { target: "vdb".into(), interface: Interface::VhostUserBlk, path: "/run/vdb.sock".into() },
            ],
            events: Some(Path::new("/run/events.sock")),
        });
        assert_eq!(args[5], "socket,id=qmp1,path=/run/events.sock,server=on,wait=off");
        assert_eq!(args[1], "socket,id=qmp0,path=/run/x,,y/qmp.sock,server=on,wait=off");
        let blockdevs: Vec<serde_json::Value> =
            args.windows(2).filter(|w| w[0] == "--blockdev").map(|w| serde_json::from_str(&w[1]).unwrap()).collect();
        assert_eq!(blockdevs.len(), 4);
        assert_eq!(blockdevs[0]["filename"], "/img/a,b.qcow2");
        assert_eq!(blockdevs[3]["driver"], "raw");
        assert_eq!(blockdevs[3]["read-only"], true);
        let exports: Vec<serde_json::Value> =
            args.windows(2).filter(|w| w[0] == "--export").map(|w| serde_json::from_str(&w[1]).unwrap()).collect();
        assert_eq!(exports[0]["type"], "fuse");
        assert_eq!(
            (exports[0]["mountpoint"].as_str(), exports[0]["writable"].as_bool()),
            (Some("/run/vda"), Some(true))
        );
        assert_eq!(exports[0]["node-name"], "vb-disk0");
        assert_eq!(exports[1]["type"], "vhost-user-blk");
        assert_eq!(exports[1]["addr"], json!({"type": "unix", "path": "/run/vdb.sock"}));
        assert_eq!(exports[1]["writable"], false);
        assert_eq!(args.last().unwrap(), "/run/pid");
    }

    #[test]
    fn mount_table_paths_are_unescaped() {
        assert_eq!(unescape_mount_path("/r/my\\040vm/vda"), "/r/my vm/vda");
        assert_eq!(unescape_mount_path("/r/a\\134b"), "/r/a\\b");
        assert_eq!(unescape_mount_path("/plain"), "/plain");
        assert!(mounts_under(Path::new("/nowhere/at/all")).is_empty());
        assert!(mounts_under(Path::new("/")).iter().all(|p| p != Path::new("/")));
    }

    #[test]
    fn liveness_of_this_process_and_of_nothing() {
        assert!(alive(std::process::id()));
        assert!(!is_daemon(std::process::id()));
        assert!(!alive(u32::MAX / 2));
        let started = start_time(std::process::id()).expect("this process has a start time");
        assert_eq!(start_time(std::process::id()), Some(started));
        assert_eq!(start_time(u32::MAX / 2), None);
        assert!(!is_ours(std::process::id(), Path::new("/nowhere/qmp.sock"), Some(started)));
    }
}

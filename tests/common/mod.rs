//! Helpers for the tests that run on real disk images: temporary roots, domain XML,
//! and the QEMU and libnbd command-line tools that look at the images from outside.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use virbackup::driver::{DomainId, Driver, JobStats};

/// A temporary folder holding a driver root and the images.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Fixture {
        // Short paths: the unix sockets under the root must fit in 108 bytes.
        let dir = tempfile::Builder::new().prefix("vb").tempdir_in("/tmp").unwrap();
        Fixture { dir }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn uri(&self) -> String {
        format!("qemu:///embed?root={}", self.root().display())
    }

    pub fn image(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Creates an image of `format` (`qcow2` or `raw`) and `size`.
    pub fn create_image(&self, name: &str, format: &str, size: &str) -> PathBuf {
        let path = self.image(name);
        run("qemu-img", &["create", "-q", "-f", format, path.to_str().unwrap(), size]);
        path
    }

    /// A domain definition with the given (target, image, format) disks.
    pub fn domain_xml(&self, name: &str, disks: &[(&str, &Path, &str)]) -> String {
        let mut xml = format!(
            "<domain type='kvm'>\n  <name>{name}</name>\n  <memory unit='MiB'>256</memory>\n  <vcpu>1</vcpu>\n  \
             <os>\n    <type arch='x86_64'>hvm</type>\n  </os>\n  <devices>\n"
        );
        for (target, path, format) in disks {
            xml.push_str(&format!(
                "    <disk type='file' device='disk'>\n      <driver name='qemu' type='{format}'/>\n      \
                 <source file='{}'/>\n      <target dev='{target}' bus='virtio'/>\n    </disk>\n",
                path.display()
            ));
        }
        xml.push_str("  </devices>\n</domain>\n");
        xml
    }
}

/// Runs a command and returns its stdout; panics with its stderr on failure.
pub fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The persistent bitmaps `qemu-img info` reports: (name, flags).
pub fn image_bitmaps(image: &Path) -> Vec<(String, Vec<String>)> {
    let out = run("qemu-img", &["info", "-U", "--output=json", image.to_str().unwrap()]);
    let info: Value = serde_json::from_str(&out).unwrap();
    info["format-specific"]["data"]["bitmaps"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|b| {
                    let flags =
                        b["flags"].as_array().map(|f| f.iter().map(|x| x.as_str().unwrap().to_string()).collect());
                    (b["name"].as_str().unwrap().to_string(), flags.unwrap_or_default())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The names of the persistent bitmaps of an image, sorted.
pub fn bitmap_names(image: &Path) -> Vec<String> {
    let mut names: Vec<String> = image_bitmaps(image).into_iter().map(|(n, _)| n).collect();
    names.sort();
    names
}

/// Writes `len` bytes of `pattern` at `offset` into a (shut-off) image with qemu-io.
pub fn write_pattern(image: &Path, format: &str, pattern: u8, offset: u64, len: u64) {
    run("qemu-io", &["-f", format, "-c", &format!("write -P {pattern:#x} {offset} {len}"), image.to_str().unwrap()]);
}

/// The FUSE file through which a running domain's disk is written, as its live XML
/// names it (`<virbackup:disk target=... path=...>`).
pub fn disk_file(driver: &dyn Driver, dom: &DomainId, target: &str) -> PathBuf {
    let xml = driver.domain_get_xml_desc(dom, 0).unwrap();
    let element = xml
        .lines()
        .find(|l| l.contains("<virbackup:disk ") && l.contains(&format!("target='{target}'")))
        .unwrap_or_else(|| panic!("no export of disk {target} in {xml}"));
    assert!(element.contains("interface='fuse'"), "{element}");
    let path = element.split("path='").nth(1).and_then(|rest| rest.split('\'').next()).unwrap();
    PathBuf::from(path)
}

/// Writes `len` bytes of `pattern` at `offset` into a running domain's disk, through its
/// FUSE file, as a VM or any program would, and waits until they are written.
pub fn write_disk(file: &Path, pattern: u8, offset: u64, len: u64) {
    use std::os::unix::fs::FileExt;
    let disk = std::fs::OpenOptions::new().write(true).open(file).unwrap();
    disk.write_all_at(&vec![pattern; len as usize], offset).unwrap();
    disk.sync_all().unwrap();
}

/// A copy of a running domain's disk as it is now, read through its FUSE file.
pub fn read_disk(fixture: &Fixture, file: &Path, name: &str) -> PathBuf {
    let copy = fixture.image(name);
    run("qemu-img", &["convert", "-f", "raw", "-O", "qcow2", file.to_str().unwrap(), copy.to_str().unwrap()]);
    copy
}

/// The dirty extents (offset, length) of a bitmap, read the way backup tools read them:
/// qemu-nbd exporting the image with the bitmap, and nbdinfo --map.
pub fn dirty_extents(fixture: &Fixture, image: &Path, bitmap: &str) -> Vec<(u64, u64)> {
    let socket = fixture.dir.path().join(format!("map-{bitmap}.sock"));
    let pidfile = fixture.dir.path().join(format!("map-{bitmap}.pid"));
    run(
        "qemu-nbd",
        &[
            "--read-only",
            "--format=qcow2",
            &format!("--bitmap={bitmap}"),
            &format!("--socket={}", socket.display()),
            "--fork",
            &format!("--pid-file={}", pidfile.display()),
            image.to_str().unwrap(),
        ],
    );
    let uri = format!("nbd+unix:///?socket={}", socket.display());
    let out = run("nbdinfo", &["--json", &format!("--map=qemu:dirty-bitmap:{bitmap}"), &uri]);
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    let _ = Command::new("kill").arg(pid.to_string()).status();
    for _ in 0..200 {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let extents: Value = serde_json::from_str(&out).unwrap();
    extents
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"].as_u64() == Some(1))
        .map(|e| (e["offset"].as_u64().unwrap(), e["length"].as_u64().unwrap()))
        .collect()
}

/// `<domaincheckpoint>` XML naming the checkpoint.
pub fn checkpoint(name: &str) -> String {
    format!("<domaincheckpoint><name>{name}</name></domaincheckpoint>")
}

/// A push backup of disk `vda` into a new qcow2 `target`, incremental from a checkpoint.
pub fn push_xml(target: &Path, incremental: Option<&str>) -> String {
    let inc = incremental.map(|c| format!("<incremental>{c}</incremental>")).unwrap_or_default();
    format!(
        "<domainbackup>{inc}<disks><disk name='vda' type='file'><target file='{}'/><driver type='qcow2'/>\
         </disk></disks></domainbackup>",
        target.display()
    )
}

/// A pull backup of disk `vda` on a unix socket, with its scratch image.
pub fn pull_xml(socket: &Path, scratch: &Path, incremental: Option<&str>) -> String {
    let inc = incremental.map(|c| format!("<incremental>{c}</incremental>")).unwrap_or_default();
    format!(
        "<domainbackup mode='pull'>{inc}<server transport='unix' socket='{}'/><disks>\
         <disk name='vda' type='file'><scratch file='{}'/></disk></disks></domainbackup>",
        socket.display(),
        scratch.display()
    )
}

/// Waits for the domain's job to end and returns its final statistics.
pub fn wait_job(driver: &dyn Driver, dom: &DomainId) -> JobStats {
    const COMPLETED: u32 = 1;
    const KEEP: u32 = 2;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let info = driver.domain_get_job_info(dom).unwrap();
        if info.job_type == 0 {
            return driver.domain_get_job_stats(dom, COMPLETED | KEEP).unwrap();
        }
        assert!(std::time::Instant::now() < deadline, "the job did not end");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Whether two images hold the same data (`qemu-img compare`, sharing them with any
/// process that has them open).
pub fn compare(a: &Path, b: &Path) -> bool {
    Command::new("qemu-img")
        .args(["compare", "-U", a.to_str().unwrap(), b.to_str().unwrap()])
        .status()
        .unwrap()
        .success()
}

/// Copies an incremental backup, points it at `base`, and compares it with `expected`.
pub fn restore_and_compare(fixture: &Fixture, incremental: &Path, base: &Path, expected: &Path) -> bool {
    let restored = fixture.image(&format!("restore-{}", incremental.file_name().unwrap().to_string_lossy()));
    std::fs::copy(incremental, &restored).unwrap();
    run("qemu-img", &["rebase", "-u", "-F", "qcow2", "-b", base.to_str().unwrap(), restored.to_str().unwrap()]);
    compare(&restored, expected)
}

/// The image a domain's disk `vda` uses, as its persistent definition names it.
pub fn current_image(driver: &dyn Driver, dom: &DomainId) -> PathBuf {
    let xml = driver.domain_get_xml_desc(dom, 2).unwrap();
    PathBuf::from(xml.split("<source file='").nth(1).unwrap().split('\'').next().unwrap())
}

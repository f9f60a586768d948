//! Hostile and mistaken input to the embedded QEMU driver: paths that must not be
//! touched, a umask that would open sockets to everyone, symbolic links inside the root,
//! oversized XML and disks that are not images. Each gets a clear error, and nothing
//! outside the root changes.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{Fixture, checkpoint, pull_xml, wait_job};
use virbackup::driver::{self, DomainId, Driver};
use virbackup::error::Code;

fn open(fixture: &Fixture) -> Arc<dyn Driver> {
    driver::open(&fixture.uri(), 0).unwrap()
}

fn define(fixture: &Fixture, driver: &dyn Driver, name: &str) -> (DomainId, PathBuf) {
    let vda = fixture.create_image(&format!("{name}.qcow2"), "qcow2", "16M");
    let dom = driver.domain_define_xml(&fixture.domain_xml(name, &[("vda", &vda, "qcow2")]), 0).unwrap();
    (dom, vda)
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

#[test]
fn a_pull_socket_path_that_is_a_file_is_refused_and_kept() {
    let fixture = Fixture::new();
    let driver = open(&fixture);
    for running in [false, true] {
        let name = if running { "on" } else { "off" };
        let (dom, _) = define(&fixture, driver.as_ref(), name);
        if running {
            driver.domain_create(&dom, 0).unwrap();
        }
        let precious = fixture.image(&format!("{name}-precious.txt"));
        std::fs::write(&precious, "keep me").unwrap();
        let scratch = fixture.image(&format!("{name}.scratch"));
        let err =
            driver.backup_begin(&dom, &pull_xml(&precious, &scratch, None), Some(&checkpoint("c1")), 0).unwrap_err();
        assert_eq!(err.code, Code::VIR_ERR_INVALID_ARG, "{err:?}");
        assert!(
            err.message.contains(&precious.display().to_string()) && err.message.contains("not a socket"),
            "{err:?}"
        );
        assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me");
        assert!(!scratch.exists(), "nothing was made");
        assert!(driver.checkpoint_lookup_by_name(&dom, "c1", 0).is_err());
        // A directory is no socket either.
        let dir = fixture.image(&format!("{name}-dir"));
        std::fs::create_dir(&dir).unwrap();
        assert!(driver.backup_begin(&dom, &pull_xml(&dir, &scratch, None), None, 0).is_err());
        assert!(dir.is_dir());
        if running {
            driver.domain_destroy(&dom, 0).unwrap();
        }
    }
}

#[test]
#[ignore = "run as a child process by sockets_and_state_are_private_whatever_the_umask"]
fn child_under_umask_000() {
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    let uri = std::env::var("VB_CHILD_URI").unwrap();
    let dir = PathBuf::from(std::env::var("VB_CHILD_DIR").unwrap());
    let root = PathBuf::from(uri.split("root=").nth(1).unwrap());
    let driver = driver::open(&uri, 0).unwrap();
    for running in [false, true] {
        let name = if running { "on" } else { "off" };
        let vda = dir.join(format!("{name}.qcow2"));
        common::run("qemu-img", &["create", "-q", "-f", "qcow2", vda.to_str().unwrap(), "16M"]);
        let xml = format!(
            "<domain type='kvm'><name>{name}</name><memory unit='MiB'>64</memory><os><type>hvm</type></os>\
             <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/>\
             <source file='{}'/><target dev='vda'/></disk></devices></domain>",
            vda.display()
        );
        let dom = driver.domain_define_xml(&xml, 0).unwrap();
        if running {
            driver.domain_create(&dom, 0).unwrap();
            let run_dir = root.join("run/qemu").join(name);
            assert_eq!(mode(&run_dir), 0o700, "the run folder");
            for socket in ["qmp.sock", "events.sock"] {
                assert_eq!(mode(&run_dir.join(socket)), 0o600, "{socket}");
            }
            assert_eq!(mode(&run_dir.join("disks")), 0o700);
            assert_eq!(mode(&run_dir.join("disks/vda")) & 0o077, 0, "the disk's FUSE file");
        }
        driver.checkpoint_create_xml(&dom, &checkpoint("c1"), 0).unwrap();
        let socket = dir.join(format!("{name}-pull.sock"));
        let scratch = dir.join(format!("{name}.scratch"));
        driver.backup_begin(&dom, &pull_xml(&socket, &scratch, None), Some(&checkpoint("c2")), 0).unwrap();
        assert_eq!(mode(&socket), 0o600, "the pull socket of {name}");
        assert_eq!(mode(&scratch) & 0o077, 0, "the scratch image of {name}");
        if !running {
            let run_dir = root.join("run/qemu").join(name);
            let job_sockets: Vec<PathBuf> = std::fs::read_dir(&run_dir)
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "sock"))
                .collect();
            assert!(!job_sockets.is_empty());
            for socket in &job_sockets {
                assert_eq!(mode(socket), 0o600, "{}", socket.display());
            }
        }
        driver.domain_abort_job(&dom, 0).unwrap();
        wait_job(driver.as_ref(), &dom);
        if running {
            driver.domain_destroy(&dom, 0).unwrap();
        }
    }
    // Every folder and file of the state is the owner's only.
    let mut pending = vec![root.clone()];
    while let Some(path) = pending.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            assert_eq!(meta.mode() & 0o077, 0, "{}", path.display());
            pending.extend(std::fs::read_dir(&path).unwrap().flatten().map(|e| e.path()));
        } else {
            assert_eq!(meta.mode() & 0o077, 0, "{}", path.display());
        }
    }
    println!("private: ok");
}

#[test]
fn sockets_and_state_are_private_whatever_the_umask() {
    let fixture = Fixture::new();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_under_umask_000", "--ignored", "--nocapture"])
        .env("VB_CHILD_URI", fixture.uri())
        .env("VB_CHILD_DIR", fixture.dir.path())
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("private: ok"), "{text}");
}

/// Everything below `dir`, with its contents, for comparing before and after.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.push((path.clone(), Vec::new()));
            out.extend(tree(&path));
        } else {
            out.push((path.clone(), std::fs::read(&path).unwrap_or_default()));
        }
    }
    out.sort();
    out
}

#[test]
fn symbolic_links_inside_the_root_are_not_followed() {
    let fixture = Fixture::new();
    let outside = fixture.image("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("keep.txt"), "outside the root").unwrap();
    let driver = open(&fixture);
    let (dom, vda) = define(&fixture, driver.as_ref(), "vm");
    let root = fixture.root();

    // The checkpoint folder of the domain.
    let checkpoint_dir = root.join("lib/qemu/checkpoint/vm");
    std::fs::create_dir_all(checkpoint_dir.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&outside, &checkpoint_dir).unwrap();
    let before = tree(&outside);
    let err = driver.checkpoint_create_xml(&dom, &checkpoint("c1"), 0).unwrap_err();
    assert!(err.message.contains("symbolic link"), "{err:?}");
    assert_eq!(tree(&outside), before, "nothing written outside the root");
    assert!(common::bitmap_names(&vda).is_empty(), "and no bitmap made without its metadata");
    std::fs::remove_file(&checkpoint_dir).unwrap();
    driver.checkpoint_create_xml(&dom, &checkpoint("c1"), 0).unwrap();

    // The run folder of the domain.
    let run_dir = root.join("run/qemu/vm");
    let _ = std::fs::remove_dir_all(&run_dir);
    std::os::unix::fs::symlink(&outside, &run_dir).unwrap();
    let err = driver.domain_create(&dom, 0).unwrap_err();
    assert!(err.message.contains("symbolic link"), "{err:?}");
    assert_eq!(tree(&outside), before);
    assert!(!driver.domain_is_active(&dom).unwrap());
    let err = driver.checkpoint_create_xml(&dom, &checkpoint("c2"), 0).unwrap_err();
    assert!(err.message.contains("symbolic link"), "{err:?}");
    assert_eq!(tree(&outside), before);
    std::fs::remove_file(&run_dir).unwrap();

    // The lock of the root.
    drop(driver);
    let lock = root.join("run/qemu/.lock");
    let _ = std::fs::remove_file(&lock);
    let target = outside.join("lock");
    std::os::unix::fs::symlink(&target, &lock).unwrap();
    let err = match driver::open(&fixture.uri(), 0) {
        Ok(driver) => driver.connect_list_all_domains(0).unwrap_err(),
        Err(e) => e,
    };
    assert!(!target.exists(), "the lock is not made through the link");
    assert!(err.message.contains(".lock"), "{err:?}");
    assert_eq!(tree(&outside), before);
}

#[test]
fn oversized_xml_is_refused() {
    let fixture = Fixture::new();
    let driver = open(&fixture);
    let (dom, _) = define(&fixture, driver.as_ref(), "vm");
    let padding = "x".repeat(5 << 20);
    let huge_domain =
        fixture.domain_xml("big", &[]).replace("<vcpu>", &format!("<description>{padding}</description><vcpu>"));
    let err = driver.domain_define_xml(&huge_domain, 0).unwrap_err();
    assert_eq!(err.code, Code::VIR_ERR_XML_ERROR, "{err:?}");
    assert!(err.message.contains("larger than"), "{err:?}");
    assert!(driver.domain_lookup_by_name("big").is_err());
    let huge_checkpoint =
        format!("<domaincheckpoint><name>c</name><description>{padding}</description></domaincheckpoint>");
    let err = driver.checkpoint_create_xml(&dom, &huge_checkpoint, 0).unwrap_err();
    assert_eq!(err.code, Code::VIR_ERR_XML_ERROR, "{err:?}");
    let huge_backup = format!("<domainbackup><!-- {padding} --></domainbackup>");
    let err = driver.backup_begin(&dom, &huge_backup, None, 0).unwrap_err();
    assert_eq!(err.code, Code::VIR_ERR_XML_ERROR, "{err:?}");
    // Just under the bound is fine, and what is stored of it loads again, however much
    // larger: a checkpoint's metadata holds the whole definition, and the stored form of
    // a definition spells out what its input left implicit.
    let vda = fixture.create_image("fits.qcow2", "qcow2", "16M");
    let fits = fixture
        .domain_xml("fits", &[("vda", &vda, "qcow2")])
        .replace("<vcpu>", &format!("<description>{}</description><vcpu>", "y".repeat((4 << 20) - 2000)));
    assert!(fits.len() < 4 << 20);
    let fits = driver.domain_define_xml(&fits, 0).unwrap();
    driver.checkpoint_create_xml(&fits, &checkpoint("c1"), 0).unwrap();
    let disks: String = (0..20000)
        .map(|i| {
            format!(
                "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/nowhere/{i}.img'/>\
                 <target dev='vd{i}'/><readonly/></disk>"
            )
        })
        .collect();
    let many = fixture
        .domain_xml("many", &[])
        .replace("</devices>", &format!("{disks}</devices>"))
        .replace("<vcpu>", &format!("<description>{}</description><vcpu>", "z".repeat(1 << 20)));
    assert!(many.len() < 4 << 20);
    driver.domain_define_xml(&many, 0).unwrap();
    let stored = std::fs::metadata(fixture.root().join("etc/qemu/many.xml")).unwrap().len();
    assert!(stored > 4 << 20, "the stored form is the larger ({stored} bytes)");
    drop(driver);
    let driver = open(&fixture);
    let fits = driver.domain_lookup_by_name("fits").unwrap();
    assert!(driver.checkpoint_lookup_by_name(&fits, "c1", 0).is_ok());
    assert!(driver.domain_lookup_by_name("many").is_ok());
}

#[test]
fn disks_that_are_not_images_get_clear_errors() {
    let fixture = Fixture::new();
    let driver = open(&fixture);
    let text = fixture.image("notes.txt");
    std::fs::write(&text, "just some text, not a disk image\n").unwrap();
    let folder = fixture.image("folder");
    std::fs::create_dir(&folder).unwrap();
    let missing = fixture.image("missing.qcow2");
    let cases: [(&str, &Path, &str); 4] = [
        ("text", &text, "qcow2"),
        ("folder", &folder, "qcow2"),
        ("null", Path::new("/dev/null"), "qcow2"),
        ("missing", &missing, "qcow2"),
    ];
    for (name, path, format) in cases {
        let dom = driver.domain_define_xml(&fixture.domain_xml(name, &[("vda", path, format)]), 0).unwrap();
        for (what, err) in [
            ("start", driver.domain_create(&dom, 0).unwrap_err()),
            ("checkpoint", driver.checkpoint_create_xml(&dom, &checkpoint("c1"), 0).unwrap_err()),
        ] {
            assert_ne!(err.code, Code::VIR_ERR_INTERNAL_ERROR, "{name} {what}: {err:?}");
            assert!(
                err.message.contains("disk 'vda'") && err.message.contains(&path.display().to_string()),
                "{name} {what}: {err:?}"
            );
            assert!(!err.message.contains('{') && !err.message.contains("blockdev"), "{name} {what}: {err:?}");
        }
        assert!(!driver.domain_is_active(&dom).unwrap());
        assert!(std::fs::symlink_metadata(path).is_ok() || name == "missing");
    }
    assert_eq!(std::fs::read_to_string(&text).unwrap(), "just some text, not a disk image\n");
    assert!(!missing.exists(), "a missing image is not created");
}

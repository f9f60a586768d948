//! Domains: definitions, lookups, the lifecycle of a domain's engine (start, destroy,
//! shutdown), the live XML, and the calls tools make around a backup (block info,
//! autostart, guest agent, monitor passthrough).

use crate::engine::daemon::{DiskExport, Interface};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::backup::job::JobFile;
use super::intent::{self, DaemonRecord, DoneWhen, Intent};
use super::state::{
    Engine, FROM, Inner, Live, NAMESPACE, QemuDomain, QemuDriver, check_socket_path, events_socket, invalid,
    not_running, unsupported_config,
};
use super::store::{self, Scope, Status};
use crate::abi::{
    virDomainCreateFlags as StartFlags, virDomainDefineFlags as DefineFlags,
    virDomainDestroyFlagsValues as DestroyFlags, virDomainPausedReason, virDomainRunningReason,
    virDomainShutdownFlagValues as ShutdownFlags, virDomainShutoffReason, virDomainState,
    virDomainUndefineFlagsValues as UndefineFlags, virDomainXMLFlags as XmlFlags,
};
use crate::conf::domain::{DomainDef, FormatOptions};
use crate::conf::xml::{Element, Node};
use crate::driver::checkpoints::Checkpoints;
use crate::driver::snapshots::Snapshots;
use crate::driver::{BlockInfo, DomainId, DomainInfo, LIST_DOMAINS_ALL, list_filter_accepts};
use crate::engine::{self, EngineDisk, daemon};
use crate::error::{Code, Domain, Error, Result};
use crate::uuid::Uuid;

/// Finds the element of our namespace named `local` among `<metadata>`'s children,
/// whatever prefix the document gave the namespace.
pub(crate) fn metadata_element<'a>(def: &'a Element, local: &str) -> Option<&'a Element> {
    let metadata = def.child("metadata")?;
    metadata.elements().find(|e| {
        let (prefix, name) = e.name.split_once(':').map_or(("", e.name.as_str()), |(p, n)| (p, n));
        let declaration = if prefix.is_empty() { "xmlns".to_string() } else { format!("xmlns:{prefix}") };
        name == local && (e.attr(&declaration) == Some(NAMESPACE) || metadata.attr(&declaration) == Some(NAMESPACE))
    })
}

/// The QMP socket of the QEMU process that owns an adopted domain's disks
/// (`<metadata><virbackup:engine qmp='...'/></metadata>`).
pub(crate) fn adopted_qmp(def: &DomainDef) -> Option<PathBuf> {
    metadata_element(def.element(), "engine").and_then(|e| e.attr("qmp")).map(PathBuf::from)
}

/// The disks the engine opens: every disk with media.
pub(crate) fn engine_disks(def: &DomainDef) -> Result<Vec<EngineDisk>> {
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

/// Refuses, before any daemon is started, disks whose files are missing or are folders:
/// libvirt's kind of error, in words (QEMU's reasons for anything else it cannot open
/// come from [`engine::daemon_error`]).
pub(crate) fn check_disk_files(domain: &str, disks: &[EngineDisk]) -> Result<()> {
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

/// The live XML of a running domain: its definition plus, in our namespace under
/// `<metadata>`, the sockets through which its disks are reached.
pub(crate) fn live_xml(live: &Live, secure: bool) -> String {
    let mut xml = live.def.to_element(FormatOptions { id: Some(live.id), secure });
    let runtime = match &live.engine {
        Engine::Ours { qmp, exports, .. } => {
            let mut runtime = Element::new("virbackup:runtime")
                .with_attr("xmlns:virbackup", NAMESPACE)
                .with_child(Element::new("virbackup:qmp").with_attr("socket", qmp.to_string_lossy()));
            for export in exports {
                runtime = runtime.with_child(
                    Element::new("virbackup:disk")
                        .with_attr("target", &export.target)
                        .with_attr("interface", export.interface.as_str())
                        .with_attr("path", export.path.to_string_lossy()),
                );
            }
            runtime
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
pub(crate) fn check_definition(def: &DomainDef) -> Result<()> {
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
    disk_interface(def)?;
    Ok(())
}

/// How a running domain offers its disks to writers: `<virbackup:disks
/// interface='fuse|vhost-user-blk'/>` in `<metadata>`; a FUSE file when not given.
pub(crate) fn disk_interface(def: &DomainDef) -> Result<Interface> {
    let Some(element) = metadata_element(def.element(), "disks") else { return Ok(Interface::Fuse) };
    match element.attr("interface") {
        None => Ok(Interface::Fuse),
        Some(name) => Interface::from_name(name).ok_or_else(|| {
            unsupported_config(format!("disk interface '{name}' is not supported (use 'fuse' or 'vhost-user-blk')"))
        }),
    }
}

/// Where each disk of a domain started in `run_dir` is offered: under `disks/`, a FUSE
/// file named after the disk's target, or a vhost-user-blk socket `<target>.sock`.
fn disk_exports(def: &DomainDef, disks: &[EngineDisk], run_dir: &Path) -> Result<Vec<DiskExport>> {
    let interface = disk_interface(def)?;
    disks
        .iter()
        .map(|disk| {
            store::check_file_name("disk target", &disk.target)?;
            let name = match interface {
                Interface::Fuse => disk.target.clone(),
                Interface::VhostUserBlk => format!("{}.sock", disk.target),
            };
            let path = run_dir.join("disks").join(name);
            check_socket_path(&path)?;
            Ok(DiskExport { target: disk.target.clone(), interface, path })
        })
        .collect()
}

impl QemuDriver {
    /// Removes a domain's checkpoint metadata and run folder.
    pub(crate) fn forget_domain_files(&self, name: &str) -> Result<()> {
        self.layout.remove_dir(&self.layout.checkpoint_dir(name))?;
        self.layout.remove_dir(&self.layout.snapshot_dir(name))?;
        self.clear_run_dir(name);
        Ok(())
    }

    /// Stops a running domain's engine: quit (flushing bitmaps), or kill when it does not.
    /// A persistent domain is then shut off for `reason`; a transient one disappears with
    /// its checkpoint metadata.
    pub(crate) fn stop_engine(&self, inner: &mut Inner, at: usize, reason: virDomainShutoffReason) -> Result<()> {
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
        self.clear_run_dir(&name);
        if domain.persistent.is_some() {
            domain.live = None;
            domain.off_reason = reason as i32;
        } else {
            self.forget_domain_files(&name)?;
            inner.domains.remove(at);
        }
        Ok(())
    }

    /// Why a guest agent command cannot run: the domains here have no connection to a
    /// guest agent. The errors are libvirt's for a domain whose agent is not there.
    pub(crate) fn no_agent(&self, domain: &QemuDomain) -> Error {
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

pub(crate) fn connect_get_version(driver: &QemuDriver) -> Result<u64> {
    if let Some(v) = driver.version.get() {
        return Ok(*v);
    }
    let v = engine::version()?;
    Ok(*driver.version.get_or_init(|| v))
}

pub(crate) fn connect_list_all_domains(driver: &QemuDriver, flags: u32) -> Result<Vec<DomainId>> {
    Error::check_flags(FROM, "qemuConnectListAllDomains", flags, LIST_DOMAINS_ALL)?;
    driver.with_state(Scope::All, false, |inner, _| {
        Ok(inner.domains.iter().filter(|d| list_filter_accepts(flags, &d.facts())).map(QemuDomain::id).collect())
    })
}

pub(crate) fn connect_num_of_domains(driver: &QemuDriver) -> Result<i32> {
    driver.with_state(
        Scope::All,
        false,
        |inner, _| Ok(inner.domains.iter().filter(|d| d.live.is_some()).count() as i32),
    )
}

pub(crate) fn domain_lookup_by_name(driver: &QemuDriver, name: &str) -> Result<DomainId> {
    driver.with_state(Scope::Domain(name), false, |inner, _| {
        inner
            .domains
            .iter()
            .find(|d| d.name() == name)
            .map(QemuDomain::id)
            .ok_or_else(|| Error::new(FROM, Code::VIR_ERR_NO_DOMAIN, format!("no domain with matching name '{name}'")))
    })
}

pub(crate) fn domain_lookup_by_uuid(driver: &QemuDriver, uuid: &Uuid) -> Result<DomainId> {
    driver.with_state(Scope::All, false, |inner, _| {
        inner
            .domains
            .iter()
            .find(|d| d.def().uuid == *uuid)
            .map(QemuDomain::id)
            .ok_or_else(|| Error::new(FROM, Code::VIR_ERR_NO_DOMAIN, format!("no domain with matching uuid '{uuid}'")))
    })
}

pub(crate) fn domain_lookup_by_id(driver: &QemuDriver, id: i32) -> Result<DomainId> {
    driver.with_state(Scope::All, false, |inner, _| {
        inner
            .domains
            .iter()
            .find(|d| d.live.as_ref().is_some_and(|l| l.id == id))
            .map(QemuDomain::id)
            .ok_or_else(|| Error::new(FROM, Code::VIR_ERR_NO_DOMAIN, format!("no domain with matching id {id}")))
    })
}

pub(crate) fn domain_is_active(driver: &QemuDriver, dom: &DomainId) -> Result<bool> {
    driver
        .with_state(Scope::Domain(&dom.name), false, |inner, _| Ok(inner.domains[inner.position(dom)?].live.is_some()))
}

pub(crate) fn domain_is_persistent(driver: &QemuDriver, dom: &DomainId) -> Result<bool> {
    driver.with_state(Scope::Domain(&dom.name), false, |inner, _| {
        Ok(inner.domains[inner.position(dom)?].persistent.is_some())
    })
}

pub(crate) fn domain_get_state(driver: &QemuDriver, dom: &DomainId, flags: u32) -> Result<(i32, i32)> {
    Error::check_flags(FROM, "qemuDomainGetState", flags, 0)?;
    driver.with_state(Scope::Domain(&dom.name), false, |inner, _| Ok(inner.domains[inner.position(dom)?].state()))
}

pub(crate) fn domain_get_info(driver: &QemuDriver, dom: &DomainId) -> Result<DomainInfo> {
    driver.with_state(Scope::Domain(&dom.name), false, |inner, _| {
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

pub(crate) fn domain_get_xml_desc(driver: &QemuDriver, dom: &DomainId, flags: u32) -> Result<String> {
    let allowed = XmlFlags::VIR_DOMAIN_XML_SECURE as u32
        | XmlFlags::VIR_DOMAIN_XML_INACTIVE as u32
        | XmlFlags::VIR_DOMAIN_XML_UPDATE_CPU as u32
        | XmlFlags::VIR_DOMAIN_XML_MIGRATABLE as u32;
    Error::check_flags(FROM, "qemuDomainGetXMLDesc", flags, allowed)?;
    let secure = flags & XmlFlags::VIR_DOMAIN_XML_SECURE as u32 != 0;
    let inactive = flags & XmlFlags::VIR_DOMAIN_XML_INACTIVE as u32 != 0;
    driver.with_state(Scope::Domain(&dom.name), false, |inner, _| {
        let domain = &inner.domains[inner.position(dom)?];
        match (&domain.live, inactive, &domain.persistent) {
            (Some(live), false, _) => Ok(live_xml(live, secure)),
            (_, true, Some(def)) | (None, _, Some(def)) => Ok(def.format(FormatOptions { id: None, secure })),
            (Some(live), true, None) => Ok(live.def.format(FormatOptions { id: None, secure })),
            (None, _, None) => unreachable!("a domain is persistent or running"),
        }
    })
}

pub(crate) fn domain_define_xml(driver: &QemuDriver, xml: &str, flags: u32) -> Result<DomainId> {
    Error::check_flags(FROM, "qemuDomainDefineXMLFlags", flags, DefineFlags::VIR_DOMAIN_DEFINE_VALIDATE as u32)?;
    let def = if flags & DefineFlags::VIR_DOMAIN_DEFINE_VALIDATE as u32 != 0 {
        DomainDef::parse_validated(xml)?
    } else {
        DomainDef::parse(xml)?
    };
    check_definition(&def)?;
    driver.with_state(Scope::All, true, |inner, layout| {
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
                    snapshots: Snapshots::new(FROM),
                    snapshot_checkpoints: Default::default(),
                    snapshot_reverts: Default::default(),
                    jobs: JobFile::default(),
                };
                let id = domain.id();
                inner.domains.push(domain);
                Ok(id)
            }
        }
    })
}

pub(crate) fn domain_undefine(driver: &QemuDriver, dom: &DomainId, flags: u32) -> Result<()> {
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
    driver.with_state(Scope::Domain(&dom.name), true, |inner, layout| {
        let at = inner.position(dom)?;
        let domain = &mut inner.domains[at];
        if domain.persistent.is_none() {
            return Err(invalid("cannot undefine transient domain"));
        }
        let name = domain.name().to_string();
        QemuDriver::check_no_job_daemon(domain, "undefine")?;
        if domain.live.is_none() {
            let count = domain.snapshots.len();
            if count > 0 && flags & UndefineFlags::VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA as u32 == 0 {
                return Err(invalid(format!("cannot delete inactive domain with {count} snapshots")));
            }
            let count = domain.checkpoints.len();
            if count > 0 && flags & UndefineFlags::VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA as u32 == 0 {
                return Err(invalid(format!("cannot delete inactive domain with {count} checkpoints")));
            }
            store::set_autostart(layout, &name, false)?;
            // Only metadata goes: the bitmaps and internal snapshots stay in the images. It goes before the
            // definition, so that a process killed in between leaves a domain
            // without checkpoints, not checkpoints without a domain.
            driver.forget_domain_files(&name)?;
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

impl QemuDriver {
    /// Writes a running domain's status file, which names its engine to the next
    /// process (an adopted QEMU has none: its definition names it).
    pub(crate) fn save_status(&self, name: &str, live: &Live) -> Result<()> {
        let Engine::Ours { pid, started, qmp, exports } = &live.engine else { return Ok(()) };
        let status = Status {
            id: live.id,
            state: live.state,
            reason: live.reason,
            pid: *pid,
            started: *started,
            qmp: qmp.clone(),
            exports: exports.clone(),
            def: live.def.clone(),
        };
        self.layout.save(&self.layout.status(name), &status.document())
    }
}

pub(crate) fn domain_create(driver: &QemuDriver, dom: &DomainId, flags: u32) -> Result<i32> {
    let allowed = StartFlags::VIR_DOMAIN_START_PAUSED as u32
        | StartFlags::VIR_DOMAIN_START_BYPASS_CACHE as u32
        | StartFlags::VIR_DOMAIN_START_FORCE_BOOT as u32
        | StartFlags::VIR_DOMAIN_START_VALIDATE as u32
        | StartFlags::VIR_DOMAIN_START_RESET_NVRAM as u32;
    Error::check_flags(FROM, "qemuDomainCreateWithFlags", flags, allowed)?;
    driver.with_state(Scope::Domain(&dom.name), true, |inner, layout| {
        let at = inner.position(dom)?;
        if inner.domains[at].live.is_some() {
            return Err(invalid("domain is already running"));
        }
        QemuDriver::check_no_job_daemon(&inner.domains[at], "start")?;
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
        let (qmp, pidfile) = (run_dir.join("qmp.sock"), run_dir.join("qsd.pid"));
        let events = events_socket(&qmp);
        for path in [&qmp, &events] {
            check_socket_path(path)?;
        }
        let exports = disk_exports(&def, &disks, &run_dir)?;
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
            sockets: std::iter::once(events.clone()).chain(exports.iter().map(|e| e.path.clone())).collect(),
            pid: None,
            started: None,
        });
        // The daemon is recorded before it starts; the status file makes it the
        // domain's.
        let live = driver.journaled(inner, intent, |_, journal| {
            layout.ensure_dir(&run_dir.join("disks"))?;
            let config = daemon::DaemonConfig {
                qmp: &qmp,
                pidfile: &pidfile,
                disks: &disks,
                exports: &exports,
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
            let id = driver.allocate_id()?;
            let live = Live {
                id,
                state,
                reason,
                def: def.clone(),
                engine: Engine::Ours { pid, started, qmp: qmp.clone(), exports: exports.clone() },
            };
            driver.save_status(&def.name, &live)?;
            Ok(live)
        })?;
        let id = live.id;
        inner.domains[at].live = Some(live);
        Ok(id)
    })
}

pub(crate) fn domain_destroy(driver: &QemuDriver, dom: &DomainId, flags: u32) -> Result<()> {
    let allowed =
        DestroyFlags::VIR_DOMAIN_DESTROY_GRACEFUL as u32 | DestroyFlags::VIR_DOMAIN_DESTROY_REMOVE_LOGS as u32;
    Error::check_flags(FROM, "qemuDomainDestroyFlags", flags, allowed)?;
    driver.with_state(Scope::Domain(&dom.name), true, |inner, _| {
        let at = inner.position(dom)?;
        driver.stop_engine(inner, at, virDomainShutoffReason::VIR_DOMAIN_SHUTOFF_DESTROYED)
    })
}

pub(crate) fn domain_shutdown(driver: &QemuDriver, dom: &DomainId, flags: u32) -> Result<()> {
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
    driver.with_state(Scope::Domain(&dom.name), true, |inner, _| {
        let at = inner.position(dom)?;
        driver.stop_engine(inner, at, virDomainShutoffReason::VIR_DOMAIN_SHUTOFF_SHUTDOWN)
    })
}

pub(crate) fn domain_get_block_info(driver: &QemuDriver, dom: &DomainId, disk: &str, flags: u32) -> Result<BlockInfo> {
    Error::check_flags(FROM, "qemuDomainGetBlockInfo", flags, 0)?;
    let (path, format) = driver.with_state(Scope::Domain(&dom.name), false, |inner, _| {
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

pub(crate) fn domain_get_autostart(driver: &QemuDriver, dom: &DomainId) -> Result<bool> {
    driver.with_state(Scope::Domain(&dom.name), false, |inner, _| Ok(inner.domains[inner.position(dom)?].autostart))
}

pub(crate) fn domain_set_autostart(driver: &QemuDriver, dom: &DomainId, autostart: bool) -> Result<()> {
    driver.with_state(Scope::Domain(&dom.name), true, |inner, layout| {
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

pub(crate) fn domain_fs_freeze(driver: &QemuDriver, dom: &DomainId, mountpoints: &[String], flags: u32) -> Result<i32> {
    let _ = mountpoints;
    Error::check_flags(FROM, "qemuDomainFSFreeze", flags, 0)?;
    driver.with_state(Scope::Domain(&dom.name), false, |inner, _| {
        Err(driver.no_agent(&inner.domains[inner.position(dom)?]))
    })
}

pub(crate) fn domain_fs_thaw(driver: &QemuDriver, dom: &DomainId, mountpoints: &[String], flags: u32) -> Result<i32> {
    Error::check_flags(FROM, "qemuDomainFSThaw", flags, 0)?;
    if !mountpoints.is_empty() {
        return Err(Error::new(FROM, Code::VIR_ERR_ARGUMENT_UNSUPPORTED, "specifying mountpoints is not supported"));
    }
    driver.with_state(Scope::Domain(&dom.name), false, |inner, _| {
        Err(driver.no_agent(&inner.domains[inner.position(dom)?]))
    })
}

pub(crate) fn domain_qemu_agent_command(
    driver: &QemuDriver,
    dom: &DomainId,
    cmd: &str,
    timeout: i32,
    flags: u32,
) -> Result<String> {
    let _ = (cmd, timeout);
    Error::check_flags(FROM, "qemuDomainQemuAgentCommand", flags, 0)?;
    driver.with_state(Scope::Domain(&dom.name), false, |inner, _| {
        Err(driver.no_agent(&inner.domains[inner.position(dom)?]))
    })
}

pub(crate) fn domain_qemu_monitor_command(
    driver: &QemuDriver,
    dom: &DomainId,
    cmd: &str,
    flags: u32,
) -> Result<String> {
    let hmp = crate::capi::generated_qemu::virDomainQemuMonitorCommandFlags::VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP as u32;
    Error::check_flags(FROM, "qemuDomainQemuMonitorCommandWithFiles", flags, hmp)?;
    driver.with_state(Scope::Domain(&dom.name), false, |inner, _| {
        let domain = &inner.domains[inner.position(dom)?];
        let Some(live) = &domain.live else { return Err(not_running()) };
        let (Engine::Ours { qmp, .. } | Engine::Adopted { qmp }) = &live.engine;
        engine::monitor_command(qmp, &format!("the engine of domain '{}'", domain.name()), cmd, flags & hmp != 0)
    })
}

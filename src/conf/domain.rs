//! Domain definitions (`<domain>` XML).
//!
//! The definition is kept as the element tree it was given, so elements this library has
//! no use for survive a define/dump round trip unchanged. The facts the drivers need
//! (name, UUID, memory, disks, ...) are read out of the tree once, when it is parsed.

use std::sync::OnceLock;

use super::schema::Schema;
use super::xml::{Element, Node};
use crate::error::{Code, Domain, Error, Result};
use crate::uuid::Uuid;

const FROM: Domain = Domain::VIR_FROM_DOMAIN;

/// What a disk is attached as (`<disk device=...>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskDevice {
    Disk,
    Cdrom,
    Floppy,
    Lun,
}

impl DiskDevice {
    /// libvirt's name (`disk`, `cdrom`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DiskDevice::Disk => "disk",
            DiskDevice::Cdrom => "cdrom",
            DiskDevice::Floppy => "floppy",
            DiskDevice::Lun => "lun",
        }
    }
}

/// One `<disk>` of a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskDef {
    /// `<target dev=...>`, the disk's name within the domain (`vda`).
    pub target: String,
    /// `<target bus=...>`.
    pub bus: Option<String>,
    pub device: DiskDevice,
    /// `<disk type=...>`: `file`, `block`, `network`, `volume`, ...
    pub source_type: String,
    /// The file or block device path, when the disk has local media.
    pub source: Option<String>,
    /// `<driver type=...>`: the image format (`qcow2`, `raw`).
    pub format: Option<String>,
    /// `<readonly/>` is present.
    pub readonly: bool,
}

impl DiskDef {
    /// True when the disk has no media (an empty CD-ROM drive, for example).
    pub fn is_empty(&self) -> bool {
        self.source.is_none()
    }
}

/// A parsed domain definition. Immutable once read: checkpoints share it, and its
/// printed form (the part of a checkpoint's XML that is largest) is made only once.
#[derive(Debug, Clone)]
pub struct DomainDef {
    /// The whole definition; printing starts from here.
    xml: Element,
    /// The inactive form indented for embedding, without and with secrets.
    embedded: [OnceLock<String>; 2],
    pub name: String,
    pub uuid: Uuid,
    /// `<domain type=...>`.
    pub virt_type: String,
    /// `<memory>` in KiB.
    pub max_memory_kib: u64,
    /// `<currentMemory>` in KiB (defaults to `<memory>`).
    pub memory_kib: u64,
    /// `<vcpu>` (defaults to 1).
    pub vcpus: u32,
    /// The disks, in document order.
    pub disks: Vec<DiskDef>,
}

/// How to print a definition.
#[derive(Debug, Clone, Copy, Default)]
pub struct FormatOptions {
    /// The live id to show as `<domain id=...>` (running domains, live XML only).
    pub id: Option<i32>,
    /// Include secrets such as graphics passwords.
    pub secure: bool,
}

/// The schema libvirt validates domain definitions against.
const SCHEMA: Schema = Schema("/usr/share/libvirt/schemas/domain.rng");

/// The elements libvirt's domain schema allows directly in `<domain>`.
const DOMAIN_CHILDREN: &[&str] = &[
    "blkiotune",
    "bootloader",
    "bootloader_args",
    "clock",
    "cpu",
    "cputune",
    "currentMemory",
    "defaultiothread",
    "description",
    "devices",
    "features",
    "genid",
    "idmap",
    "iothreadids",
    "iothreads",
    "keywrap",
    "launchSecurity",
    "maxMemory",
    "memory",
    "memoryBacking",
    "memtune",
    "metadata",
    "name",
    "numatune",
    "on_crash",
    "on_lockfailure",
    "on_poweroff",
    "on_reboot",
    "os",
    "perf",
    "pm",
    "resource",
    "seclabel",
    "sysinfo",
    "title",
    "uuid",
    "vcpu",
    "vcpus",
];

/// The hypervisors' extensions it allows there, by local name (`qemu:commandline`, ...).
const DOMAIN_NAMESPACED_CHILDREN: &[&str] =
    &["commandline", "capabilities", "deprecation", "override", "namespace", "datacenterpath"];

/// The hypervisor types of `<domain type=...>`.
const DOMAIN_TYPES: &[&str] = &[
    "qemu", "kqemu", "kvm", "xen", "lxc", "uml", "openvz", "test", "vmware", "hyperv", "vbox", "phyp", "vz", "bhyve",
    "hvf",
];

/// Where a `<domain>` element breaks the outline of libvirt's domain schema, as the
/// line libxml2 would write: the root's attributes (a known hypervisor `type`, an
/// unsigned `id`, namespace declarations), text outside elements, the elements
/// `<domain>` may hold and the one it must (`<name>`), and the numbers of
/// `<memory>`, `<currentMemory>`, `<maxMemory>` and `<vcpu>`. The schema's rules for the
/// inside of the other elements (devices, CPU, features, ...) are not checked.
pub fn outline_problem(domain: &Element) -> Option<String> {
    let attribute_ok = |name: &str, value: &str| match name {
        "type" => DOMAIN_TYPES.contains(&value),
        "id" => value.parse::<u32>().is_ok(),
        other => other == "xmlns" || other.starts_with("xmlns:"),
    };
    if domain.attr("type").is_none() || domain.attrs.iter().any(|(k, v)| !attribute_ok(k, v)) {
        return Some("Element domain failed to validate attributes".to_string());
    }
    if domain.children.iter().any(|n| matches!(n, Node::Text(t) if !t.trim().is_empty())) {
        return Some("Element domain failed to validate content".to_string());
    }
    for child in domain.elements() {
        let known = match child.name.split_once(':') {
            Some((_, local)) => DOMAIN_NAMESPACED_CHILDREN.contains(&local),
            None => DOMAIN_CHILDREN.contains(&child.name.as_str()),
        };
        if !known {
            return Some(format!("Element domain has extra content: {}", child.name));
        }
    }
    if domain.child("name").is_none() {
        return Some("Expecting an element name, got nothing".to_string());
    }
    let digits = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    for number in ["memory", "currentMemory", "maxMemory", "vcpu"] {
        if domain.children_named(number).any(|e| !digits(e.text().trim())) {
            return Some(format!("Element {number} failed to validate content"));
        }
    }
    None
}

impl DomainDef {
    /// libvirt's ABI stability check (`virDomainDefCheckABIStability`) of `target`
    /// against this definition, as a snapshot redefinition makes it: for the parts of a
    /// definition kept here (type, identity, memory, vCPUs, disks), the first difference
    /// in libvirt's order and words.
    pub fn check_abi_stability(&self, target: &DomainDef) -> Result<()> {
        let differs = |detail: String| Err(Error::new(FROM, Code::VIR_ERR_CONFIG_UNSUPPORTED, detail));
        let (s, t) = (self, target);
        if s.virt_type != t.virt_type {
            return differs(format!("Target domain virt type {} does not match source {}", t.virt_type, s.virt_type));
        }
        if s.uuid != t.uuid {
            return differs(format!("Target domain uuid {} does not match source {}", t.uuid, s.uuid));
        }
        if s.name != t.name {
            return differs(format!("Target domain name '{}' does not match source '{}'", t.name, s.name));
        }
        if s.max_memory_kib != t.max_memory_kib {
            return differs(format!(
                "Target domain max memory {} does not match source {}",
                t.max_memory_kib, s.max_memory_kib
            ));
        }
        if s.memory_kib != t.memory_kib {
            return differs(format!(
                "Target domain current memory {} does not match source {}",
                t.memory_kib, s.memory_kib
            ));
        }
        if s.vcpus != t.vcpus {
            return differs(format!("Target domain vCPU max {} does not match source {}", t.vcpus, s.vcpus));
        }
        if s.disks.len() != t.disks.len() {
            return differs(format!(
                "Target domain disk count {} does not match source {}",
                t.disks.len(),
                s.disks.len()
            ));
        }
        for (a, b) in s.disks.iter().zip(&t.disks) {
            if a.device != b.device {
                return differs(format!(
                    "Target disk device {} does not match source {}",
                    b.device.as_str(),
                    a.device.as_str()
                ));
            }
            // An unset bus is libvirt's default for the target's name: compare set ones.
            if let (Some(x), Some(y)) = (&a.bus, &b.bus)
                && x != y
            {
                return differs(format!("Target disk bus {y} does not match source {x}"));
            }
            if a.target != b.target {
                return differs(format!("Target disk {} does not match source {}", b.target, a.target));
            }
            if a.readonly != b.readonly {
                return differs("Target disk access mode does not match source".to_string());
            }
        }
        Ok(())
    }

    /// Parses `<domain>` XML. A definition without a `<uuid>` gets a random one.
    pub fn parse(text: &str) -> Result<DomainDef> {
        let root = super::parse_document(text, "domain_definition", "domain", FROM)?;
        DomainDef::from_element(root)
    }

    /// Parses a definition the driver stored (see [`super::MAX_STORED_XML_BYTES`]).
    pub fn parse_stored(text: &str) -> Result<DomainDef> {
        DomainDef::from_element(super::parse_stored_document(text, "domain_definition", "domain", FROM)?)
    }

    /// Parses `<domain>` XML for `VIR_DOMAIN_DEFINE_VALIDATE`: the document's outline
    /// must pass libvirt's domain schema first (see [`outline_problem`]).
    pub fn parse_validated(text: &str) -> Result<DomainDef> {
        let root = super::parse_document(text, "domain_definition", "domain", FROM)?;
        if let Some(problem) = outline_problem(&root) {
            return Err(SCHEMA.error(format!("{problem}\n")));
        }
        DomainDef::from_element(root)
    }

    /// Reads a definition out of an already parsed `<domain>` element.
    pub fn from_element(mut xml: Element) -> Result<DomainDef> {
        let xml_error = |detail: String| Error::new(FROM, Code::VIR_ERR_XML_ERROR, detail);
        // A live id is never part of a definition.
        xml.remove_attr("id");
        let name = xml.child_text("name").unwrap_or_default();
        if name.is_empty() {
            return Err(Error::bare(FROM, Code::VIR_ERR_NO_NAME));
        }
        if name.contains('/') {
            return Err(xml_error(format!("name {name} cannot contain '/'")));
        }
        let virt_type = match xml.attr("type") {
            Some(t) if !t.is_empty() => t.to_string(),
            _ => return Err(Error::internal(FROM, "missing domain type attribute")),
        };
        let has_os_type = xml.child("os").and_then(|os| os.child("type")).is_some_and(|t| !t.text().trim().is_empty());
        if !has_os_type {
            return Err(xml_error("an os <type> must be specified".to_string()));
        }
        let uuid = match xml.child_text("uuid") {
            Some(text) => Uuid::parse(&text).ok_or_else(|| Error::internal(FROM, "malformed uuid element"))?,
            None => {
                let uuid = Uuid::random().map_err(|e| Error::system(FROM, "cannot generate a UUID", &e))?;
                insert_after(&mut xml, "name", Element::new("uuid").with_text(uuid.to_string()));
                uuid
            }
        };
        let max_memory_kib = match xml.child("memory") {
            Some(m) => memory_kib(m)?,
            None => {
                return Err(xml_error(
                    "Memory size must be specified via <memory> or in the <numa> configuration".to_string(),
                ));
            }
        };
        let memory_kib = match xml.child("currentMemory") {
            Some(m) => memory_kib(m)?.min(max_memory_kib),
            None => max_memory_kib,
        };
        let vcpus = match xml.child_text("vcpu") {
            Some(text) => text
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| xml_error(format!("invalid vcpus count '{}'", text.trim())))?,
            None => 1,
        };
        let mut disks: Vec<DiskDef> = Vec::new();
        // Target name to index in `disks`: a definition may have thousands of disks.
        let mut targets = std::collections::HashMap::new();
        if let Some(devices) = xml.child("devices") {
            for disk in devices.children_named("disk") {
                let parsed = parse_disk(disk)?;
                if let Some(&index) = targets.get(&parsed.target) {
                    let other: &DiskDef = &disks[index];
                    return Err(xml_error(format!(
                        "target '{}' duplicated for disk sources '{}' and '{}'",
                        parsed.target,
                        other.source.as_deref().unwrap_or(""),
                        parsed.source.as_deref().unwrap_or("")
                    )));
                }
                targets.insert(parsed.target.clone(), disks.len());
                disks.push(parsed);
            }
        }
        Ok(DomainDef {
            xml,
            embedded: Default::default(),
            name,
            uuid,
            virt_type,
            max_memory_kib,
            memory_kib,
            vcpus,
            disks,
        })
    }

    /// The disk with this target name.
    pub fn disk(&self, target: &str) -> Option<&DiskDef> {
        self.disks.iter().find(|d| d.target == target)
    }

    /// True when the definition gives the guest a channel to QEMU's guest agent
    /// (`<channel>` with `<target type='virtio' name='org.qemu.guest_agent.0'/>`).
    pub fn has_guest_agent_channel(&self) -> bool {
        self.xml.child("devices").is_some_and(|devices| {
            devices.children_named("channel").any(|channel| {
                channel.child("target").is_some_and(|t| {
                    t.attr("type") == Some("virtio") && t.attr("name") == Some("org.qemu.guest_agent.0")
                })
            })
        })
    }

    /// The disk whose target or source path is `name`.
    pub fn disk_by_target_or_path(&self, name: &str) -> Option<&DiskDef> {
        self.disks.iter().find(|d| d.target == name || d.source.as_deref() == Some(name))
    }

    /// The definition as XML.
    pub fn format(&self, options: FormatOptions) -> String {
        self.to_element(options).format()
    }

    /// The inactive definition indented by two spaces, as a checkpoint embeds it; printed
    /// once per definition and kept.
    pub fn embedded(&self, secure: bool) -> &str {
        self.embedded[usize::from(secure)].get_or_init(|| {
            let mut out = String::new();
            self.to_element(FormatOptions { id: None, secure }).write(&mut out, 2);
            out
        })
    }

    /// The definition's element tree, as given.
    pub fn element(&self) -> &Element {
        &self.xml
    }

    /// The same definition with disk `target` on the image file `path` of `format` (an
    /// external snapshot's overlay): its source, type and driver type change, the rest
    /// stays.
    pub fn with_disk_image(&self, target: &str, path: &str, format: &str) -> Result<DomainDef> {
        let mut xml = self.to_element(FormatOptions { id: None, secure: true });
        let missing = || Error::internal(FROM, format!("no disk '{target}' in the definition of '{}'", self.name));
        let devices = xml.child_mut("devices").ok_or_else(missing)?;
        let disk = devices
            .elements_mut()
            .find(|d| d.name == "disk" && d.child("target").and_then(|t| t.attr("dev")) == Some(target))
            .ok_or_else(missing)?;
        disk.set_attr("type", "file");
        match disk.child_mut("source") {
            Some(source) => source.attrs = vec![("file".to_string(), path.to_string())],
            None => disk.children.insert(0, Node::Element(Element::new("source").with_attr("file", path))),
        }
        match disk.child_mut("driver") {
            Some(driver) => driver.set_attr("type", format),
            None => disk
                .children
                .insert(0, Node::Element(Element::new("driver").with_attr("name", "qemu").with_attr("type", format))),
        }
        DomainDef::from_element(xml)
    }

    /// The definition as an element tree, as [`DomainDef::format`] would print it.
    pub fn to_element(&self, options: FormatOptions) -> Element {
        let mut xml = self.xml.clone();
        if let Some(id) = options.id {
            // libvirt prints the id right after the type attribute.
            let at = xml.attrs.iter().position(|(k, _)| k == "type").map_or(0, |i| i + 1);
            xml.attrs.insert(at, ("id".to_string(), id.to_string()));
        }
        if !options.secure {
            strip_secrets(&mut xml);
        }
        xml
    }
}

impl PartialEq for DomainDef {
    fn eq(&self, other: &Self) -> bool {
        // Everything else is read out of the tree.
        self.xml == other.xml
    }
}

impl Eq for DomainDef {}

/// Inserts `new` right after the first child element named `after`, or first.
fn insert_after(parent: &mut Element, after: &str, new: Element) {
    let at = parent.children.iter().position(|n| matches!(n, Node::Element(e) if e.name == after)).map_or(0, |i| i + 1);
    parent.children.insert(at, Node::Element(new));
}

/// Removes the attributes libvirt shows only with `VIR_DOMAIN_XML_SECURE`.
fn strip_secrets(element: &mut Element) {
    if element.name == "graphics" {
        element.remove_attr("passwd");
    }
    for child in element.elements_mut() {
        strip_secrets(child);
    }
}

/// Reads a memory element (`<memory unit='MiB'>4</memory>`) as KiB.
fn memory_kib(element: &Element) -> Result<u64> {
    let text = element.text();
    let value: u64 = text.trim().parse().map_err(|_| {
        Error::new(
            Domain::VIR_FROM_XML,
            Code::VIR_ERR_XML_ERROR,
            format!("Invalid value '{}' for element or attribute './{}[1]'", text.trim(), element.name),
        )
    })?;
    let unit = element.attr("unit").unwrap_or("KiB");
    let bytes_per_unit: u64 = match unit {
        "b" | "bytes" => 1,
        "KB" => 1000,
        "k" | "KiB" => 1 << 10,
        "MB" => 1000 * 1000,
        "M" | "MiB" => 1 << 20,
        "GB" => 1000 * 1000 * 1000,
        "G" | "GiB" => 1 << 30,
        "TB" => 1000 * 1000 * 1000 * 1000,
        "T" | "TiB" => 1 << 40,
        other => return Err(Error::new(FROM, Code::VIR_ERR_INVALID_ARG, format!("unknown suffix '{other}'"))),
    };
    let bytes = value
        .checked_mul(bytes_per_unit)
        .ok_or_else(|| Error::new(FROM, Code::VIR_ERR_OVERFLOW, format!("value too large: {value}{unit}")))?;
    Ok(bytes.div_ceil(1024))
}

fn parse_disk(disk: &Element) -> Result<DiskDef> {
    let source_type = disk.attr("type").unwrap_or("file").to_string();
    let device = match disk.attr("device").unwrap_or("disk") {
        "disk" => DiskDevice::Disk,
        "cdrom" => DiskDevice::Cdrom,
        "floppy" => DiskDevice::Floppy,
        "lun" => DiskDevice::Lun,
        other => {
            return Err(Error::new(FROM, Code::VIR_ERR_CONFIG_UNSUPPORTED, format!("unknown disk device '{other}'")));
        }
    };
    let source = disk.child("source").and_then(|s| {
        let attr = match source_type.as_str() {
            "block" => "dev",
            "dir" => "dir",
            "volume" => "volume",
            "network" => "name",
            _ => "file",
        };
        s.attr(attr).filter(|v| !v.is_empty()).map(str::to_string)
    });
    let target = disk.child("target").and_then(|t| t.attr("dev")).filter(|t| !t.is_empty());
    let Some(target) = target else {
        return Err(Error::new(FROM, Code::VIR_ERR_NO_TARGET, source.clone().unwrap_or_default()));
    };
    Ok(DiskDef {
        target: target.to_string(),
        bus: disk.child("target").and_then(|t| t.attr("bus")).map(str::to_string),
        device,
        source_type,
        source,
        format: disk.child("driver").and_then(|d| d.attr("type")).map(str::to_string),
        readonly: disk.child("readonly").is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASIC: &str = "<domain type='kvm'><name>vm1</name><uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>\
        <memory unit='MiB'>512</memory><currentMemory>1024</currentMemory><vcpu>2</vcpu><os><type>hvm</type></os>\
        <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/img/a.qcow2'/>\
        <target dev='vda' bus='virtio'/></disk><disk type='file' device='cdrom'><target dev='hdc'/><readonly/></disk>\
        <graphics type='vnc' passwd='secret'/></devices><unknown-element keep='me'/></domain>";

    #[test]
    fn reads_the_facts() {
        let def = DomainDef::parse(BASIC).unwrap();
        assert_eq!(def.name, "vm1");
        assert_eq!(def.uuid.to_string(), "6695eb01-f6a4-8304-79aa-97f2502e193f");
        assert_eq!((def.max_memory_kib, def.memory_kib, def.vcpus), (524288, 1024, 2));
        assert_eq!(def.disks.len(), 2);
        assert_eq!(def.disks[0].source.as_deref(), Some("/img/a.qcow2"));
        assert_eq!(def.disks[0].format.as_deref(), Some("qcow2"));
        assert!(def.disks[1].is_empty() && def.disks[1].readonly);
        assert_eq!(def.disk_by_target_or_path("/img/a.qcow2").unwrap().target, "vda");
    }

    #[test]
    fn keeps_unknown_elements_and_hides_secrets() {
        let def = DomainDef::parse(BASIC).unwrap();
        let plain = def.format(FormatOptions::default());
        assert!(plain.contains("<unknown-element keep='me'/>"));
        assert!(!plain.contains("secret"));
        let live = def.format(FormatOptions { id: Some(3), secure: true });
        assert!(live.starts_with("<domain type='kvm' id='3'>\n"));
        assert!(live.contains("passwd='secret'"));
    }

    #[test]
    fn generates_a_uuid_after_the_name() {
        let def = DomainDef::parse(
            "<domain type='test'><name>a</name><memory>1024</memory><os><type>hvm</type></os></domain>",
        )
        .unwrap();
        let xml = def.format(FormatOptions::default());
        assert!(xml.starts_with(&format!("<domain type='test'>\n  <name>a</name>\n  <uuid>{}</uuid>\n", def.uuid)));
    }

    #[test]
    fn errors_match_libvirt() {
        let cases: &[(&str, Code, Domain, &str)] = &[
            (
                "<foo/>",
                Code::VIR_ERR_XML_ERROR,
                Domain::VIR_FROM_XML,
                "XML error: expecting root element of 'domain', not 'foo'",
            ),
            ("<domain type='test'/>", Code::VIR_ERR_NO_NAME, FROM, "missing name information"),
            (
                "<domain type='test'><name>a</name></domain>",
                Code::VIR_ERR_XML_ERROR,
                FROM,
                "XML error: an os <type> must be specified",
            ),
            (
                "<domain type='test'><name>a</name><os><type>hvm</type></os></domain>",
                Code::VIR_ERR_XML_ERROR,
                FROM,
                "XML error: Memory size must be specified via <memory> or in the <numa> configuration",
            ),
            (
                "<domain type='test'><name>a/b</name></domain>",
                Code::VIR_ERR_XML_ERROR,
                FROM,
                "XML error: name a/b cannot contain '/'",
            ),
            (
                "<domain type='test'><name>c</name><uuid>zz</uuid><memory>1</memory><os><type>hvm</type></os></domain>",
                Code::VIR_ERR_INTERNAL_ERROR,
                FROM,
                "internal error: malformed uuid element",
            ),
            (
                "<domain type='test'><name>d</name><memory>1</memory><os><type>hvm</type></os><devices><disk type='file'><source file='/x'/></disk></devices></domain>",
                Code::VIR_ERR_NO_TARGET,
                FROM,
                "missing target information for device /x",
            ),
            (
                "<domain type='test'><name>e</name><memory>1</memory><os><type>hvm</type></os><devices><disk><source file='/x'/><target dev='vda'/></disk><disk><source file='/y'/><target dev='vda'/></disk></devices></domain>",
                Code::VIR_ERR_XML_ERROR,
                FROM,
                "XML error: target 'vda' duplicated for disk sources '/x' and '/y'",
            ),
        ];
        for (xml, code, domain, message) in cases {
            let e = DomainDef::parse(xml).unwrap_err();
            assert_eq!((e.code, e.domain, e.message.as_str()), (*code, *domain, *message), "{xml}");
        }
    }

    #[test]
    fn validation_checks_the_outline_of_the_schema() {
        let good = "<domain type='kvm'><name>a</name><memory unit='KiB'>1024</memory><os><type>hvm</type></os>\
                    <qemu:commandline xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'/></domain>";
        assert!(DomainDef::parse_validated(good).is_ok());
        let refused = [
            "<domain type='kvm'><name>a</name><os><type>hvm</type></os><memory>1</memory><bogus/></domain>",
            "<domain type='kvm' color='red'><name>a</name><os><type>hvm</type></os><memory>1</memory></domain>",
            "<domain type='nope'><name>a</name><os><type>hvm</type></os><memory>1</memory></domain>",
            "<domain type='kvm' id='-1'><name>a</name><os><type>hvm</type></os><memory>1</memory></domain>",
            "<domain type='kvm'><name>a</name><os><type>hvm</type></os><memory>lots</memory></domain>",
            "<domain type='kvm'><name>a</name><os><type>hvm</type></os><memory>1</memory><vcpu>2x</vcpu></domain>",
            "<domain type='kvm'><os><type>hvm</type></os><memory>1</memory></domain>",
            "<domain type='kvm'>text<name>a</name><os><type>hvm</type></os><memory>1</memory></domain>",
        ];
        for xml in refused {
            let err = DomainDef::parse_validated(xml).unwrap_err();
            assert_eq!(err.code, Code::VIR_ERR_XML_INVALID_SCHEMA, "{xml}");
            assert_eq!(err.domain, Domain::VIR_FROM_XML, "{xml}");
            assert!(err.message.starts_with(
                "XML document failed to validate against schema: Unable to validate doc against \
                 /usr/share/libvirt/schemas/domain.rng\n"
            ));
        }
        // Without the flag the same definitions are read as before.
        assert!(DomainDef::parse(refused[0]).is_ok());
    }
}

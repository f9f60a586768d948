//! Snapshot definitions (`<domainsnapshot>` XML), as libvirt 9.0 reads, checks,
//! completes and prints them.
//!
//! Reading goes in libvirt's order: well-formedness (`VIR_ERR_XML_DETAIL`), the root
//! element (`VIR_ERR_XML_ERROR`), then, only when the caller asks for validation (unlike
//! checkpoints, snapshots are validated only with `VIR_DOMAIN_SNAPSHOT_CREATE_VALIDATE`),
//! the rules of `domainsnapshot.rng` checked here by hand (`VIR_ERR_XML_INVALID_SCHEMA`),
//! then the meaning. Without validation libvirt reads the document through XPath string
//! values, so this reader does too: `<name>a<b>x</b></name>` names a snapshot `ax`, and
//! unknown elements are ignored.

use std::sync::Arc;

use super::domain::{DiskDevice, DomainDef, FormatOptions, outline_problem};
use super::schema::{self, Schema};
use super::xml::{Element, Node, escape};
use crate::error::{Code, Domain, Error, Result};
use crate::uuid::Uuid;

const FROM: Domain = Domain::VIR_FROM_DOMAIN_SNAPSHOT;

/// Where libvirt's schema lives; its validation errors name it.
const SCHEMA: Schema = Schema("/usr/share/libvirt/schemas/domainsnapshot.rng");

/// The state a snapshot was taken in: libvirt's domain states plus `disk-snapshot`.
/// The discriminants are `virDomainState`'s numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SnapshotState {
    /// Not known (a snapshot being created, before the driver fills it in). Not printed.
    #[default]
    NoState = 0,
    Running = 1,
    Blocked = 2,
    Paused = 3,
    Shutdown = 4,
    Shutoff = 5,
    Crashed = 6,
    PmSuspended = 7,
    /// A disk-only snapshot of a running domain.
    DiskSnapshot = 8,
}

impl SnapshotState {
    const ALL: [SnapshotState; 9] = [
        SnapshotState::NoState,
        SnapshotState::Running,
        SnapshotState::Blocked,
        SnapshotState::Paused,
        SnapshotState::Shutdown,
        SnapshotState::Shutoff,
        SnapshotState::Crashed,
        SnapshotState::PmSuspended,
        SnapshotState::DiskSnapshot,
    ];

    /// libvirt's name (`running`, `disk-snapshot`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotState::NoState => "nostate",
            SnapshotState::Running => "running",
            SnapshotState::Blocked => "blocked",
            SnapshotState::Paused => "paused",
            SnapshotState::Shutdown => "shutdown",
            SnapshotState::Shutoff => "shutoff",
            SnapshotState::Crashed => "crashed",
            SnapshotState::PmSuspended => "pmsuspended",
            SnapshotState::DiskSnapshot => "disk-snapshot",
        }
    }

    /// The state with this exact name (no trimming, as libvirt).
    pub fn from_name(name: &str) -> Option<SnapshotState> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The snapshot state of a domain in `virDomainState` `state` (what the test driver
    /// records for a new snapshot).
    pub fn from_domain_state(state: i32) -> Option<SnapshotState> {
        Self::ALL.into_iter().take(8).find(|s| *s as i32 == state)
    }

    /// Running or paused: the snapshot holds (or could hold) memory.
    pub fn is_online(self) -> bool {
        matches!(self, SnapshotState::Running | SnapshotState::Paused)
    }
}

/// Where a snapshot keeps a disk's or the memory's state (`virDomainSnapshotLocation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SnapshotLocation {
    /// Not said yet; alignment decides. Not printed.
    #[default]
    Default,
    No,
    Internal,
    External,
    /// Left to the user (disks only).
    Manual,
}

impl SnapshotLocation {
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotLocation::Default => "default",
            SnapshotLocation::No => "no",
            SnapshotLocation::Internal => "internal",
            SnapshotLocation::External => "external",
            SnapshotLocation::Manual => "manual",
        }
    }

    /// Reads an attribute value; `default` is not a value an attribute may hold.
    fn from_attr(value: &str) -> Option<SnapshotLocation> {
        Some(match value {
            "no" => SnapshotLocation::No,
            "internal" => SnapshotLocation::Internal,
            "external" => SnapshotLocation::External,
            "manual" => SnapshotLocation::Manual,
            _ => return None,
        })
    }
}

/// What an external snapshot disk is stored on (`<disk type=...>`). libvirt refuses
/// `dir` and `volume` here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StorageType {
    #[default]
    File,
    Block,
    Network,
    Nvme,
    VhostUser,
}

impl StorageType {
    pub fn as_str(self) -> &'static str {
        match self {
            StorageType::File => "file",
            StorageType::Block => "block",
            StorageType::Network => "network",
            StorageType::Nvme => "nvme",
            StorageType::VhostUser => "vhostuser",
        }
    }
}

/// One `<disk>` of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapshotDisk {
    /// The disk's target (`vda`), or, before alignment, possibly its source path.
    pub name: String,
    pub kind: SnapshotLocation,
    pub source_type: StorageType,
    /// The new image of an external snapshot: a file or block device path, or a network
    /// source's image name.
    pub path: Option<String>,
    /// `<driver type=...>`: the new image's format (`qcow2`).
    pub format: Option<String>,
    /// `<driver><metadata_cache><max_size>` in bytes; 0 when not given.
    pub metadata_cache_max_size: u64,
    /// `<snapshotDeleteInProgress/>`, kept only from the driver's own metadata.
    pub delete_in_progress: bool,
    /// The `<source>` element as given, printed whole, for network, NVMe and vhost-user
    /// sources; for files and block devices only its child elements (seclabels, ...),
    /// printed next to `path`, and `None` when it has none.
    pub source_xml: Option<Element>,
}

/// A snapshot definition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapshotDef {
    /// Defaults to the creation time when a new snapshot has none.
    pub name: String,
    pub description: Option<String>,
    /// The parent's name; the tree keeps it current.
    pub parent: Option<String>,
    /// Seconds since the epoch; 0 is not printed.
    pub creation_time: i64,
    pub state: SnapshotState,
    pub memory: SnapshotLocation,
    /// The memory image of an external snapshot.
    pub memory_file: Option<String>,
    pub disks: Vec<SnapshotDisk>,
    /// The domain definition the snapshot was taken of.
    pub domain: Option<Arc<DomainDef>>,
    /// The inactive definition of a domain that was running (`<inactiveDomain>`).
    pub inactive_domain: Option<Arc<DomainDef>>,
    /// `<cookie>`: driver data (QEMU's CPU), kept as given.
    pub cookie: Option<Element>,
}

/// How to read a snapshot (`virDomainSnapshotParseFlags`, translated; `INTERNAL` is
/// [`SnapshotDef::parse_stored`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct SnapshotParse {
    /// `VIR_DOMAIN_SNAPSHOT_PARSE_REDEFINE`: name, creation time and state are required;
    /// parent and domain definitions are read.
    pub redefine: bool,
    /// `VIR_DOMAIN_SNAPSHOT_PARSE_OFFLINE`: the domain is off or the snapshot disk-only,
    /// so memory cannot be saved (a redefinition decides this from its state instead).
    pub offline: bool,
    /// `VIR_DOMAIN_SNAPSHOT_PARSE_VALIDATE`: check the document against the schema.
    pub validate: bool,
    /// Keep `<cookie>`: only drivers with save-cookie callbacks (QEMU) do; the test
    /// driver drops it.
    pub keep_cookie: bool,
    /// The creation time of a new snapshot; `None` reads the clock.
    pub now: Option<i64>,
}

/// How to print a snapshot (`virDomainSnapshotFormatFlags`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SnapshotFormat {
    /// Include secrets of the embedded domain definitions.
    pub secure: bool,
    /// The driver's own metadata: add `<active>`.
    pub internal: bool,
    /// With `internal`: the snapshot is the current one (`<active>1</active>`).
    pub current: bool,
}

/// The QEMU driver's check of a snapshot name that names its metadata file (skipped
/// with `VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA`); the test driver accepts any name.
/// `from` is the caller's error domain.
pub fn check_snapshot_name(name: &str, from: Domain) -> Result<()> {
    let problem = if name.contains('/') {
        "name can't contain '/'"
    } else if name.starts_with('.') {
        "name can't start with '.'"
    } else {
        return Ok(());
    };
    Err(Error::new(from, Code::VIR_ERR_XML_DETAIL, format!("invalid snapshot name '{name}': {problem}")))
}

fn xml_error(domain: Domain, detail: String) -> Error {
    Error::new(domain, Code::VIR_ERR_XML_ERROR, detail)
}

fn unsupported(detail: String) -> Error {
    Error::new(FROM, Code::VIR_ERR_CONFIG_UNSUPPORTED, detail)
}

/// libvirt's error for an attribute outside its enumeration.
fn invalid_value(attr: &str, element: &str, value: &str) -> Error {
    xml_error(Domain::VIR_FROM_XML, format!("Invalid value for attribute '{attr}' in element '{element}': '{value}'."))
}

fn is_xml_blank(text: &str) -> bool {
    text.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

/// XPath's string value: the text of the element and all its descendants.
fn string_value(element: &Element) -> String {
    fn collect(element: &Element, out: &mut String) {
        for node in &element.children {
            match node {
                Node::Text(t) => out.push_str(t),
                Node::Element(e) => collect(e, out),
            }
        }
    }
    let mut out = String::new();
    collect(element, &mut out);
    out
}

/// `virXPathString("string(./<name>)")`: the first such child's string value; an empty
/// value counts as absent.
fn child_string(parent: &Element, name: &str) -> Option<String> {
    parent.child(name).map(string_value).filter(|s| !s.is_empty())
}

/// `strtoll`'s leading space: C's `isspace`.
fn skip_c_space(text: &str) -> &str {
    text.trim_start_matches([' ', '\t', '\n', '\u{b}', '\u{c}', '\r'])
}

/// `virStrToLong_ll` with no end pointer: leading space and a sign allowed, nothing after
/// the digits, no overflow.
fn parse_ll(text: &str) -> Option<i64> {
    let t = skip_c_space(text);
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

/// `virStrToLong_i`: as [`parse_ll`], within an `int`.
fn parse_int(text: &str) -> Option<i32> {
    parse_ll(text).and_then(|v| i32::try_from(v).ok())
}

/// `virStrToLong_ullp`: as [`parse_ll`], unsigned, and no minus sign.
fn parse_ullp(text: &str) -> Option<u64> {
    let t = skip_c_space(text);
    let digits = t.strip_prefix('+').unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `virStrToLong_ull`: as [`parse_ullp`], but a negative number wraps around.
fn parse_ull(text: &str) -> Option<u64> {
    let t = skip_c_space(text);
    match t.strip_prefix('-') {
        Some(rest) if !rest.starts_with(['+', '-']) => parse_ullp(rest).map(u64::wrapping_neg),
        _ => parse_ullp(t),
    }
}

/// `virScaleInteger` with scale 1 and no limit: the unit names libvirt knows.
fn scale_bytes(value: u64, unit: Option<&str>) -> Result<u64> {
    let unit = unit.unwrap_or("");
    let lower = unit.to_ascii_lowercase();
    let factor: u64 = if lower.is_empty() || matches!(lower.as_str(), "b" | "byte" | "bytes") {
        1
    } else {
        let unknown =
            || Error::new(Domain::VIR_FROM_NONE, Code::VIR_ERR_INVALID_ARG, format!("unknown suffix '{unit}'"));
        let power = match lower.as_bytes()[0] {
            b'k' => 1,
            b'm' => 2,
            b'g' => 3,
            b't' => 4,
            b'p' => 5,
            b'e' => 6,
            _ => return Err(unknown()),
        };
        // The first byte is ASCII, so the rest starts on a character boundary.
        let base: u64 = match &lower[1..] {
            "" | "ib" => 1024,
            "b" => 1000,
            _ => return Err(unknown()),
        };
        base.pow(power)
    };
    value.checked_mul(factor).ok_or_else(|| {
        Error::new(Domain::VIR_FROM_NONE, Code::VIR_ERR_OVERFLOW, format!("value too large: {value}{unit}"))
    })
}

/// The image formats libvirt knows (`virStorageFileFormat`, without `none`).
const FORMATS: &[&str] = &[
    "raw", "dir", "bochs", "cloop", "dmg", "iso", "vpc", "vdi", "fat", "vhd", "ploop", "cow", "qcow", "qcow2", "qed",
    "vmdk",
];

/// Network protocols (`virStorageNetProtocol`).
const PROTOCOLS: &[&str] = &[
    "none", "nbd", "rbd", "sheepdog", "gluster", "iscsi", "http", "https", "ftp", "ftps", "tftp", "ssh", "vxhs", "nfs",
];

/// Reads a `<source>` the way libvirt's storage source parser does for the types a
/// snapshot disk may have, returning the path (`None` for an empty one).
fn parse_source(kind: StorageType, source: &Element) -> Result<Option<String>> {
    let domain_error = |detail: &str| xml_error(Domain::VIR_FROM_DOMAIN, detail.to_string());
    let path = match kind {
        StorageType::File => source.attr("file").map(str::to_string),
        StorageType::Block => source.attr("dev").map(str::to_string),
        StorageType::Network => {
            let protocol = source.attr("protocol").ok_or_else(|| {
                xml_error(Domain::VIR_FROM_XML, "Missing required attribute 'protocol' in element 'source'".to_string())
            })?;
            if !PROTOCOLS.contains(&protocol) {
                return Err(invalid_value("protocol", "source", protocol));
            }
            let name = source.attr("name");
            if name.is_none() && protocol != "nbd" {
                return Err(domain_error("missing name for disk source"));
            }
            match (name, protocol) {
                // The pool comes first in the name; the path is the image.
                (Some(name), "rbd" | "gluster") => match name.find('/') {
                    Some(at) if at > 0 => Some(name[at + 1..].to_string()),
                    _ => {
                        return Err(domain_error(&format!("can't split path '{name}' into pool name and image name")));
                    }
                },
                (name, _) => name.map(str::to_string),
            }
        }
        StorageType::Nvme => {
            let kind = source.attr("type").ok_or_else(|| domain_error("missing 'type' attribute to disk source"))?;
            if kind != "pci" {
                return Err(domain_error(&format!("unsupported source type '{kind}'")));
            }
            let namespace =
                source.attr("namespace").ok_or_else(|| domain_error("missing 'namespace' attribute to disk source"))?;
            if parse_ull(namespace).is_none() {
                return Err(domain_error(&format!("malformed namespace '{namespace}'")));
            }
            if source.child("address").is_none() {
                return Err(domain_error("NVMe disk source is missing address"));
            }
            None
        }
        StorageType::VhostUser => {
            match source.attr("type") {
                None => return Err(domain_error("missing 'type' attribute for vhostuser disk source")),
                Some("unix") => {}
                Some(_) => return Err(domain_error("invalid 'type' attribute for vhostuser disk source")),
            }
            if source.attr("path").is_none() {
                return Err(domain_error("missing 'path' attribute for vhostuser disk source"));
            }
            None
        }
    };
    // libvirt reads an empty path as none (the way applications leave a source out).
    Ok(path.filter(|p| !p.is_empty()))
}

/// `virDomainSnapshotDiskDefParseXML`. `disk` may have any name: libvirt reads every
/// element under `<disks>` as a disk.
fn parse_disk(disk: &Element, redefine: bool) -> Result<SnapshotDisk> {
    let name = disk.attr("name").ok_or_else(|| Error::internal(FROM, "missing name from disk snapshot element"))?;
    let mut kind = match disk.attr("snapshot") {
        None => SnapshotLocation::Default,
        Some(v) => SnapshotLocation::from_attr(v).ok_or_else(|| invalid_value("snapshot", &disk.name, v))?,
    };
    let source_type = match disk.attr("type") {
        None | Some("file") => StorageType::File,
        Some("block") => StorageType::Block,
        Some("network") => StorageType::Network,
        Some("nvme") => StorageType::Nvme,
        Some("vhostuser") => StorageType::VhostUser,
        Some(v @ ("dir" | "volume")) => {
            return Err(xml_error(FROM, format!("unsupported disk snapshot type '{v}'")));
        }
        Some(v) => return Err(invalid_value("type", &disk.name, v)),
    };
    let delete_in_progress = redefine && disk.child("snapshotDeleteInProgress").is_some();
    let source = disk.child("source");
    let path = match source {
        Some(source) => parse_source(source_type, source)?,
        None => None,
    };
    // A file or block source is its path plus, kept as given, its child elements.
    let source_xml = match source_type {
        StorageType::File | StorageType::Block => source.filter(|s| s.elements().next().is_some()).map(|s| Element {
            name: s.name.clone(),
            attrs: Vec::new(),
            children: s.elements().cloned().map(Node::Element).collect(),
        }),
        _ => source.cloned(),
    };
    let format = disk.children_named("driver").find_map(|d| d.attr("type")).filter(|t| !t.is_empty());
    if let Some(format) = format
        && !FORMATS.contains(&format)
    {
        return Err(unsupported(format!("unknown disk snapshot driver '{format}'")));
    }
    let max_sizes = || {
        disk.children_named("driver")
            .flat_map(|d| d.children_named("metadata_cache"))
            .flat_map(|m| m.children_named("max_size"))
    };
    let metadata_cache_max_size = match max_sizes().next().map(string_value).filter(|s| !s.is_empty()) {
        None => 0,
        Some(text) => {
            let value = parse_ullp(&text).ok_or_else(|| {
                xml_error(
                    Domain::VIR_FROM_XML,
                    format!("Invalid value '{text}' for element or attribute './driver/metadata_cache/max_size'"),
                )
            })?;
            let unit = max_sizes().find_map(|m| m.attr("unit")).filter(|u| !u.is_empty());
            scale_bytes(value, unit)?
        }
    };
    if let Some(p) = &path
        && matches!(source_type, StorageType::File | StorageType::Block)
        && !p.starts_with('/')
    {
        return Err(xml_error(FROM, format!("disk snapshot image path '{p}' must be absolute")));
    }
    if kind == SnapshotLocation::Default && (path.is_some() || format.is_some()) {
        kind = SnapshotLocation::External;
    }
    Ok(SnapshotDisk {
        name: name.to_string(),
        kind,
        source_type,
        path,
        format: format.map(str::to_string),
        metadata_cache_max_size,
        delete_in_progress,
        source_xml,
    })
}

/// Reads an embedded definition (`<domain>` or `<inactiveDomain>`, read as a `<domain>`).
fn embedded_domain(element: &Element) -> Result<Arc<DomainDef>> {
    let mut element = element.clone();
    element.name = "domain".to_string();
    Ok(Arc::new(DomainDef::from_element(element)?))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl SnapshotDef {
    /// Parses `<domainsnapshot>` XML as `virDomainSnapshotDefParseString` does.
    pub fn parse(text: &str, how: SnapshotParse) -> Result<SnapshotDef> {
        let root = super::parse_document(text, "domain_snapshot", "domainsnapshot", FROM)?;
        Self::read(&root, how, false).map(|(def, _)| def)
    }

    /// Parses snapshot metadata the driver stored, as a redefinition with
    /// `VIR_DOMAIN_SNAPSHOT_PARSE_INTERNAL` (and as large as
    /// [`super::MAX_STORED_XML_BYTES`]); also returns whether `<active>` marks it
    /// current.
    pub fn parse_stored(text: &str, how: SnapshotParse) -> Result<(SnapshotDef, bool)> {
        let root = super::parse_stored_document(text, "domain_snapshot", "domainsnapshot", FROM)?;
        Self::from_element_internal(&root, how)
    }

    /// Reads an already parsed snapshot element (`virDomainSnapshotDefParse`; the
    /// element's name is not checked).
    pub fn from_element(root: &Element, how: SnapshotParse) -> Result<SnapshotDef> {
        Self::read(root, how, false).map(|(def, _)| def)
    }

    /// [`SnapshotDef::from_element`] with `VIR_DOMAIN_SNAPSHOT_PARSE_INTERNAL |
    /// REDEFINE`, as the test driver reads the snapshots of its configuration file.
    pub fn from_element_internal(root: &Element, how: SnapshotParse) -> Result<(SnapshotDef, bool)> {
        Self::read(root, SnapshotParse { redefine: true, ..how }, true)
    }

    fn read(root: &Element, how: SnapshotParse, internal: bool) -> Result<(SnapshotDef, bool)> {
        if how.validate {
            check_schema(root)?;
        }
        let mut def = SnapshotDef::default();
        let name = child_string(root, "name");
        if name.is_none() && how.redefine {
            return Err(xml_error(FROM, "a redefined snapshot must have a name".to_string()));
        }
        def.description = child_string(root, "description");
        let mut offline = how.offline;
        if how.redefine {
            def.creation_time = child_string(root, "creationTime")
                .and_then(|t| parse_ll(&t))
                .ok_or_else(|| Error::internal(FROM, "missing creationTime from existing snapshot"))?;
            def.parent = root.children_named("parent").flat_map(|p| p.children_named("name")).next().map(string_value);
            def.parent = def.parent.filter(|p| !p.is_empty());
            let state = child_string(root, "state")
                .ok_or_else(|| xml_error(FROM, "missing state from existing snapshot".to_string()))?;
            def.state = SnapshotState::from_name(&state)
                .filter(|s| *s != SnapshotState::NoState)
                .ok_or_else(|| unsupported(format!("Invalid state '{state}' in domain snapshot XML")))?;
            offline = matches!(def.state, SnapshotState::Shutoff | SnapshotState::DiskSnapshot);
            // Old snapshots have a `<domain>` with only a UUID: no definition then.
            let has_type = root.children_named("domain").find_map(|d| d.attr("type")).is_some_and(|t| !t.is_empty());
            if let (true, Some(dom)) = (has_type, root.child("domain")) {
                def.domain = Some(embedded_domain(dom)?);
            }
            if let Some(inactive) = root.child("inactiveDomain") {
                def.inactive_domain = Some(embedded_domain(inactive)?);
            }
            def.name = name.unwrap_or_default();
        } else {
            // virDomainMomentDefPostParse: a new snapshot is named after its creation.
            def.creation_time = how.now.unwrap_or_else(now);
            def.name = name.unwrap_or_else(|| def.creation_time.to_string());
        }

        if let Some(memory) = root.child("memory") {
            def.memory_file = memory.attr("file").map(str::to_string);
            if let Some(v) = memory.attr("snapshot") {
                def.memory = SnapshotLocation::from_attr(v).ok_or_else(|| invalid_value("snapshot", "memory", v))?;
            }
            if def.memory == SnapshotLocation::Manual {
                return Err(xml_error(FROM, "'manual' memory snapshot mode not supported".to_string()));
            }
        }
        if def.memory == SnapshotLocation::Default {
            if def.memory_file.is_some() {
                def.memory = SnapshotLocation::External;
            } else if how.redefine {
                def.memory = if offline { SnapshotLocation::No } else { SnapshotLocation::Internal };
            }
        }
        match (&def.memory_file, def.memory) {
            (Some(file), memory) if memory != SnapshotLocation::External => {
                return Err(xml_error(FROM, format!("memory filename '{file}' requires external snapshot")));
            }
            (None, SnapshotLocation::External) => {
                return Err(xml_error(FROM, "external memory snapshots require a filename".to_string()));
            }
            _ => {}
        }
        if offline && !matches!(def.memory, SnapshotLocation::Default | SnapshotLocation::No) {
            return Err(xml_error(FROM, "memory state cannot be saved with offline or disk-only snapshot".to_string()));
        }
        if let Some(file) = def.memory_file.as_deref().filter(|f| !f.starts_with('/')) {
            return Err(xml_error(FROM, format!("memory snapshot file path ({file}) must be absolute")));
        }

        for list in root.children_named("disks") {
            for disk in list.elements() {
                def.disks.push(parse_disk(disk, how.redefine)?);
            }
        }

        let mut current = false;
        if internal {
            let active = child_string(root, "active")
                .and_then(|t| parse_int(&t))
                .ok_or_else(|| Error::internal(FROM, "Could not find 'active' element"))?;
            current = active != 0;
        }
        if !offline && how.keep_cookie {
            def.cookie = root.child("cookie").cloned();
        }
        Ok((def, current))
    }

    /// `virDomainSnapshotDefIsExternal`: the memory or any disk goes to a new file.
    pub fn is_external(&self) -> bool {
        self.memory == SnapshotLocation::External || self.disks.iter().any(|d| d.kind == SnapshotLocation::External)
    }

    /// Completes the disk list against the domain definition, as libvirt's AlignDisks
    /// does: one entry per domain disk in the domain's order, path names rewritten to
    /// targets, unlisted disks given the domain disk's `snapshot` setting (`no` for
    /// empty drives), else `default`, and external disks without a file named after
    /// their source (`/a.img` becomes `/a.<snapshot>`). The definition used is the
    /// snapshot's own, else `existing` (a redefinition without one). With
    /// `uniform_internal` and an internal default, every listed disk must be internal
    /// (or `no` where the domain says `no`). `is_regular_file` answers for a source
    /// path (libvirt names only regular files). On error the disks are left unchanged.
    pub fn align_disks(
        &mut self,
        existing: Option<&DomainDef>,
        default: SnapshotLocation,
        uniform_internal: bool,
        is_regular_file: impl Fn(&str) -> bool,
    ) -> Result<()> {
        let own = self.domain.clone();
        let domain = own.as_deref().or(existing).ok_or_else(|| Error::internal(FROM, "missing domain in snapshot"))?;
        if self.disks.len() > domain.disks.len() {
            return Err(unsupported("too many disk snapshot requests for domain".to_string()));
        }
        if domain.disks.is_empty() {
            return Ok(());
        }
        let require_match = uniform_internal && default == SnapshotLocation::Internal;
        let facts = domain_disk_facts(domain);
        let mut slots: Vec<Option<SnapshotDisk>> = vec![None; domain.disks.len()];
        for wanted in &self.disks {
            let at = disk_index(domain, &wanted.name)
                .ok_or_else(|| unsupported(format!("no disk named '{}'", wanted.name)))?;
            if slots[at].is_some() {
                return Err(unsupported(format!("disk '{}' specified twice", wanted.name)));
            }
            let mut disk = wanted.clone();
            let from_domain = facts[at].kind;
            if disk.kind == SnapshotLocation::Default {
                let inherit =
                    from_domain != SnapshotLocation::Default && (!require_match || from_domain == SnapshotLocation::No);
                disk.kind = if inherit { from_domain } else { default };
            } else if require_match
                && disk.kind != default
                && !(disk.kind == SnapshotLocation::No && from_domain == SnapshotLocation::No)
            {
                return Err(unsupported(format!("disk '{}' must use snapshot mode '{}'", disk.name, default.as_str())));
            }
            if let Some(path) = &disk.path
                && disk.kind != SnapshotLocation::External
            {
                return Err(unsupported(format!(
                    "file '{path}' for disk '{}' requires use of external snapshot mode",
                    disk.name
                )));
            }
            disk.name = domain.disks[at].target.clone();
            slots[at] = Some(disk);
        }
        let mut disks: Vec<SnapshotDisk> = slots
            .into_iter()
            .zip(domain.disks.iter().zip(&facts))
            .map(|(slot, (dom_disk, fact))| {
                slot.unwrap_or_else(|| {
                    let kind = if fact.empty { SnapshotLocation::No } else { fact.kind };
                    SnapshotDisk {
                        name: dom_disk.target.clone(),
                        kind: if kind == SnapshotLocation::Default { default } else { kind },
                        ..Default::default()
                    }
                })
            })
            .collect();
        assign_external_names(&mut disks, domain, &self.name, is_regular_file)?;
        self.disks = disks;
        Ok(())
    }

    /// The location a redefinition aligns its disks to (`virDomainSnapshotRedefinePrep`):
    /// external for disk-only or external snapshots, internal otherwise.
    pub fn redefine_location(&self) -> SnapshotLocation {
        if self.state == SnapshotState::DiskSnapshot || self.is_external() {
            SnapshotLocation::External
        } else {
            SnapshotLocation::Internal
        }
    }

    /// `virDomainSnapshotRedefineValidate`: a redefinition must match its domain's UUID
    /// and, when it replaces `existing`, keep that snapshot's kind. `disk_only` is
    /// `VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY`. The new domain definition must keep the
    /// old one's ABI ([`DomainDef::check_abi_stability`]).
    pub fn redefine_validate(&self, domain_uuid: &Uuid, existing: Option<&SnapshotDef>, disk_only: bool) -> Result<()> {
        let invalid = |detail: String| Error::new(FROM, Code::VIR_ERR_INVALID_ARG, detail);
        if disk_only && self.state != SnapshotState::DiskSnapshot {
            return Err(invalid(format!("disk-only flag for snapshot {} requires disk-snapshot state", self.name)));
        }
        if let Some(dom) = &self.domain
            && dom.uuid != *domain_uuid
        {
            return Err(invalid(format!("definition for snapshot {} must use uuid {domain_uuid}", self.name)));
        }
        if let Some(other) = existing {
            if other.state.is_online() != self.state.is_online() {
                return Err(invalid(format!(
                    "cannot change between online and offline snapshot state in snapshot {}",
                    self.name
                )));
            }
            let disk_only = |s: SnapshotState| s == SnapshotState::DiskSnapshot;
            if disk_only(other.state) != disk_only(self.state) {
                return Err(invalid(format!(
                    "cannot change between disk only and full system in snapshot {}",
                    self.name
                )));
            }
            if let (Some(old), Some(new)) = (&other.domain, &self.domain) {
                old.check_abi_stability(new)?;
            }
        }
        Ok(())
    }

    /// Prints the definition in libvirt's layout. Without a domain definition, `uuid`
    /// (the domain's) is printed as `<domain><uuid>` the way libvirt's drivers pass it.
    pub fn format(&self, uuid: Option<&Uuid>, how: SnapshotFormat) -> String {
        let mut out = String::with_capacity(512);
        out.push_str("<domainsnapshot>\n");
        out.push_str(&format!("  <name>{}</name>\n", escape(&self.name)));
        if let Some(d) = &self.description {
            out.push_str(&format!("  <description>{}</description>\n", escape(d)));
        }
        if self.state != SnapshotState::NoState {
            out.push_str(&format!("  <state>{}</state>\n", self.state.as_str()));
        }
        if let Some(p) = &self.parent {
            out.push_str(&format!("  <parent>\n    <name>{}</name>\n  </parent>\n", escape(p)));
        }
        if self.creation_time != 0 {
            out.push_str(&format!("  <creationTime>{}</creationTime>\n", self.creation_time));
        }
        if self.memory != SnapshotLocation::Default {
            out.push_str(&format!("  <memory snapshot='{}'", self.memory.as_str()));
            if let Some(file) = &self.memory_file {
                out.push_str(&format!(" file='{}'", escape(file)));
            }
            out.push_str("/>\n");
        }
        if !self.disks.is_empty() {
            out.push_str("  <disks>\n");
            for disk in &self.disks {
                format_disk(&mut out, disk);
            }
            out.push_str("  </disks>\n");
        }
        if let Some(dom) = &self.domain {
            out.push_str(dom.embedded(how.secure));
        } else if let Some(uuid) = uuid {
            out.push_str(&format!("  <domain>\n    <uuid>{uuid}</uuid>\n  </domain>\n"));
        }
        if let Some(inactive) = &self.inactive_domain {
            let mut element = inactive.to_element(FormatOptions { id: None, secure: how.secure });
            element.name = "inactiveDomain".to_string();
            element.write(&mut out, 2);
        }
        if let Some(cookie) = &self.cookie {
            out.push_str("  <cookie>\n");
            for child in cookie.elements() {
                child.write(&mut out, 4);
            }
            out.push_str("  </cookie>\n");
        }
        if how.internal {
            out.push_str(&format!("  <active>{}</active>\n", u8::from(how.current)));
        }
        out.push_str("</domainsnapshot>\n");
        out
    }
}

/// `virDomainSnapshotDiskDefFormat`, at the indentation of `<disks>`' children.
fn format_disk(out: &mut String, disk: &SnapshotDisk) {
    out.push_str(&format!("    <disk name='{}'", escape(&disk.name)));
    if disk.kind != SnapshotLocation::Default {
        out.push_str(&format!(" snapshot='{}'", disk.kind.as_str()));
    }
    let mut children = String::new();
    if disk.delete_in_progress {
        children.push_str("      <snapshotDeleteInProgress/>\n");
    }
    if disk.path.is_some() || disk.format.is_some() {
        out.push_str(&format!(" type='{}'", disk.source_type.as_str()));
        let cache = disk.metadata_cache_max_size;
        if disk.format.is_some() || cache > 0 {
            children.push_str("      <driver");
            if let Some(format) = &disk.format {
                children.push_str(&format!(" type='{}'", escape(format)));
            }
            if cache > 0 {
                children.push_str(&format!(
                    ">\n        <metadata_cache>\n          <max_size unit='bytes'>{cache}</max_size>\n        \
                     </metadata_cache>\n      </driver>\n"
                ));
            } else {
                children.push_str("/>\n");
            }
        }
        match disk.source_type {
            StorageType::File | StorageType::Block => {
                let attr = if disk.source_type == StorageType::File { "file" } else { "dev" };
                let mut source = Element::new("source");
                if let Some(path) = &disk.path {
                    source = source.with_attr(attr, path.clone());
                }
                if let Some(given) = &disk.source_xml {
                    source.children = given.elements().cloned().map(Node::Element).collect();
                }
                if !source.attrs.is_empty() || !source.children.is_empty() {
                    source.write(&mut children, 6);
                }
            }
            _ => match &disk.source_xml {
                Some(given) => given.write(&mut children, 6),
                // libvirt prints the protocol a network disk without a source defaults to.
                None if disk.source_type == StorageType::Network => {
                    children.push_str("      <source protocol='none'/>\n");
                }
                None => {}
            },
        }
    }
    if children.is_empty() {
        out.push_str("/>\n");
    } else {
        out.push_str(">\n");
        out.push_str(&children);
        out.push_str("    </disk>\n");
    }
}

/// What alignment needs of a domain disk beyond [`super::domain::DiskDef`].
#[derive(Debug, Clone, Copy)]
struct DiskFacts {
    /// `<disk snapshot=...>`, after libvirt's post-parse defaults (read-only disks, CD-ROMs
    /// included, and vhost-user disks: `no`).
    kind: SnapshotLocation,
    /// `virStorageSourceIsEmpty`: no media.
    empty: bool,
}

fn domain_disk_facts(domain: &DomainDef) -> Vec<DiskFacts> {
    let elements: Vec<&Element> =
        domain.element().child("devices").map(|d| d.children_named("disk").collect()).unwrap_or_default();
    domain
        .disks
        .iter()
        .enumerate()
        .map(|(i, disk)| {
            let element = elements.get(i);
            let mut kind = element
                .and_then(|e| e.attr("snapshot"))
                .and_then(SnapshotLocation::from_attr)
                .unwrap_or(SnapshotLocation::Default);
            // libvirt makes every CD-ROM read-only, `<readonly/>` or not.
            let readonly = disk.readonly || disk.device == DiskDevice::Cdrom;
            if kind == SnapshotLocation::Default && (readonly || disk.source_type == "vhostuser") {
                kind = SnapshotLocation::No;
            }
            let empty = match disk.source_type.as_str() {
                "file" | "block" | "dir" => disk.source.is_none(),
                "network" => {
                    element.and_then(|e| e.child("source")).and_then(|s| s.attr("protocol")).is_none_or(|p| p == "none")
                }
                _ => false,
            };
            DiskFacts { kind, empty }
        })
        .collect()
}

/// `virDomainDiskIndexByName` without ambiguity: a target, or (with a leading slash) the
/// source path of exactly one disk.
fn disk_index(domain: &DomainDef, name: &str) -> Option<usize> {
    if !name.starts_with('/') {
        return domain.disks.iter().position(|d| d.target == name);
    }
    let mut found = domain.disks.iter().enumerate().filter(|(_, d)| d.source.as_deref() == Some(name));
    match (found.next(), found.next()) {
        (Some((at, _)), None) => Some(at),
        _ => None,
    }
}

/// `virDomainSnapshotDefAssignExternalNames`: names the new file of each external disk
/// that has none after its source, with the suffix replaced by the snapshot's name.
fn assign_external_names(
    disks: &mut [SnapshotDisk],
    domain: &DomainDef,
    snapshot: &str,
    is_regular_file: impl Fn(&str) -> bool,
) -> Result<()> {
    for i in 0..disks.len() {
        let disk = &disks[i];
        if disk.kind != SnapshotLocation::External || disk.path.is_some() {
            continue;
        }
        let name = &disk.name;
        if disk.source_type != StorageType::File {
            return Err(unsupported(format!(
                "cannot generate external snapshot name for disk '{name}' on a '{}' device",
                disk.source_type.as_str()
            )));
        }
        let Some(original) = domain.disks.get(i).and_then(|d| d.source.as_deref()) else {
            return Err(unsupported(format!(
                "cannot generate external snapshot name for disk '{name}' without source"
            )));
        };
        if !is_regular_file(original) {
            return Err(unsupported(format!(
                "source for disk '{name}' is not a regular file; refusing to generate external snapshot name"
            )));
        }
        let stem = match original.rfind('.') {
            Some(dot) if !original[dot..].contains('/') => &original[..dot],
            _ => original,
        };
        let path = format!("{stem}.{snapshot}");
        if let Some(other) = disks[..i].iter().find(|d| d.path.as_deref() == Some(path.as_str())) {
            return Err(unsupported(format!(
                "cannot generate external snapshot name for disk '{name}': collision with disk '{}'",
                other.name
            )));
        }
        disks[i].path = Some(path);
    }
    Ok(())
}

// The schema, checked by hand. libxml2 validates `<domainsnapshot>`'s interleave by
// sorting its children into the schema's groups up to the first child no group takes,
// then validating the groups in schema order; an invalid group is reported as "Extra
// element <group> in interleave", the child no group took as "extra content", and the
// root's attributes last.

/// The interleave's groups, in schema order.
const GROUPS: [&str; 11] = [
    "name",
    "description",
    "state",
    "creationTime",
    "memory",
    "disks",
    "active",
    "domain",
    "inactiveDomain",
    "parent",
    "cookie",
];

/// The states the schema allows (not `nostate` nor `pmsuspended`).
const SCHEMA_STATES: &[&str] = &["running", "blocked", "paused", "shutdown", "shutoff", "crashed", "disk-snapshot"];

fn check_schema(root: &Element) -> Result<()> {
    if root.attr("xmlns").is_some_and(|ns| !ns.is_empty()) {
        return Err(SCHEMA.error("Expecting no namespace for element domainsnapshot\n"));
    }
    let mut members: [Vec<&Element>; GROUPS.len()] = Default::default();
    let mut extra: Option<&str> = None;
    for node in &root.children {
        match node {
            Node::Text(t) if !is_xml_blank(t) => {
                extra = Some("text");
                break;
            }
            Node::Text(_) => {}
            Node::Element(e) => match GROUPS.iter().position(|g| *g == e.name) {
                Some(at) => members[at].push(e),
                None => {
                    extra = Some(e.name.rsplit(':').next().unwrap_or(&e.name));
                    break;
                }
            },
        }
    }
    for (group, found) in GROUPS.iter().zip(&members) {
        if found.len() > 1 || found.first().is_some_and(|e| !group_valid(group, e)) {
            return Err(SCHEMA.error(format!(
                "Extra element {group} in interleave\nElement domainsnapshot failed to validate content\n"
            )));
        }
    }
    if let Some(extra) = extra {
        return Err(SCHEMA.error(format!("Element domainsnapshot has extra content: {extra}\n")));
    }
    if let Some((key, _)) = root.attrs.iter().find(|(k, _)| !is_namespace_declaration(k)) {
        return Err(SCHEMA.error(format!("Invalid attribute {key} for element domainsnapshot\n")));
    }
    Ok(())
}

fn is_namespace_declaration(key: &str) -> bool {
    key == "xmlns" || key.starts_with("xmlns:")
}

/// Only `allowed` attributes, besides namespace declarations that leave the element in
/// no namespace.
fn attrs_ok(element: &Element, allowed: &[&str]) -> bool {
    element.attrs.iter().all(|(k, v)| match k.as_str() {
        "xmlns" => v.is_empty(),
        k if k.starts_with("xmlns:") => true,
        k => allowed.contains(&k),
    })
}

fn no_text(element: &Element) -> bool {
    element.children.iter().all(|n| !matches!(n, Node::Text(t) if !is_xml_blank(t)))
}

/// `<element><text/></element>`.
fn text_only(element: &Element) -> bool {
    attrs_ok(element, &[]) && element.elements().next().is_none()
}

/// The one token of a schema value (the `token` type collapses white space).
fn token(text: &str) -> Option<&str> {
    let mut words = text.split([' ', '\t', '\n', '\r']).filter(|w| !w.is_empty());
    match (words.next(), words.next()) {
        (Some(word), None) => Some(word),
        _ => None,
    }
}

/// At most one child of each of `names`, and nothing else.
fn children_among<'a>(element: &'a Element, names: &[&str]) -> Option<Vec<Option<&'a Element>>> {
    let mut found = vec![None; names.len()];
    for child in element.elements() {
        let at = names.iter().position(|n| *n == child.name)?;
        if found[at].replace(child).is_some() {
            return None;
        }
    }
    Some(found)
}

fn group_valid(group: &str, element: &Element) -> bool {
    match group {
        "name" | "description" | "creationTime" => text_only(element),
        "state" => text_only(element) && token(&element.text()).is_some_and(|s| SCHEMA_STATES.contains(&s)),
        "active" => text_only(element) && matches!(token(&element.text()), Some("0" | "1")),
        "memory" => memory_valid(element),
        "disks" => attrs_ok(element, &[]) && no_text(element) && element.elements().all(disk_valid),
        "domain" => outline_problem(element).is_none() || uuid_only_domain(element),
        "inactiveDomain" => outline_problem(element).is_none(),
        "parent" => {
            let mut names = element.elements();
            attrs_ok(element, &[]) && no_text(element) && {
                match (names.next(), names.next()) {
                    (Some(name), None) => name.name == "name" && text_only(name),
                    _ => false,
                }
            }
        }
        "cookie" => attrs_ok(element, &[]) && no_text(element),
        _ => false,
    }
}

fn memory_valid(memory: &Element) -> bool {
    if !attrs_ok(memory, &["snapshot", "file"]) || !no_text(memory) || memory.elements().next().is_some() {
        return false;
    }
    match (memory.attr("snapshot").map(token), memory.attr("file")) {
        (Some(Some("no" | "internal")), None) => true,
        (None | Some(Some("external")), Some(file)) => schema::valid_abs_path(file),
        _ => false,
    }
}

/// `<domain><uuid>...</uuid></domain>`, as old snapshots have.
fn uuid_only_domain(domain: &Element) -> bool {
    let mut children = domain.elements();
    let uuid = match (children.next(), children.next()) {
        (Some(uuid), None) if uuid.name == "uuid" && text_only(uuid) => uuid.text(),
        _ => return false,
    };
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    let parts: Vec<&str> = uuid.split('-').collect();
    let shape_ok = match parts.as_slice() {
        [whole] => hex(whole, 32),
        [a, b, c, d, e] => hex(a, 8) && hex(b, 4) && hex(c, 4) && hex(d, 4) && hex(e, 12),
        _ => false,
    };
    attrs_ok(domain, &[]) && no_text(domain) && shape_ok
}

fn disk_valid(disk: &Element) -> bool {
    if disk.name != "disk" || !attrs_ok(disk, &["name", "snapshot", "type"]) || !no_text(disk) {
        return false;
    }
    let name_ok = disk.attr("name").is_some_and(|n| schema::valid_disk_target(n) || schema::valid_abs_path(n));
    if !name_ok {
        return false;
    }
    match disk.attr("snapshot").map(token) {
        Some(Some("no" | "internal" | "manual")) => disk.attr("type").is_none() && disk.elements().next().is_none(),
        None | Some(Some("external")) => external_disk_valid(disk),
        _ => false,
    }
}

fn external_disk_valid(disk: &Element) -> bool {
    let kind = match disk.attr("type").map(token) {
        None | Some(Some("file")) => StorageType::File,
        Some(Some("block")) => StorageType::Block,
        Some(Some("network")) => StorageType::Network,
        _ => return false,
    };
    let Some(found) = children_among(disk, &["source", "driver"]) else { return false };
    let source_ok = match (kind, found[0]) {
        (StorageType::Network, None) => false,
        (_, None) => true,
        (StorageType::Network, Some(s)) => network_source_valid(s),
        (_, Some(s)) => {
            let path_attr = if kind == StorageType::File { "file" } else { "dev" };
            let path_ok = match s.attr(path_attr) {
                Some(path) => schema::valid_abs_path(path),
                None => kind == StorageType::File,
            };
            let index_ok =
                s.attr("index").is_none_or(|i| token(i).is_some_and(|i| i.parse::<u32>().is_ok_and(|n| n > 0)));
            // Seclabels, slices and encryption are allowed; their insides are not checked.
            attrs_ok(s, &[path_attr, "index"])
                && no_text(s)
                && path_ok
                && index_ok
                && s.elements().all(|c| matches!(c.name.as_str(), "seclabel" | "slices" | "encryption"))
        }
    };
    source_ok && found[1].is_none_or(driver_valid)
}

/// The outline of the schema's network sources: a protocol it knows, the image name
/// where that protocol needs one, and the number of `<host>`s (their insides, and the
/// other attributes and elements, are not checked).
fn network_source_valid(source: &Element) -> bool {
    let Some(protocol) = source.attr("protocol").and_then(token) else { return false };
    let hosts = source.children_named("host").count();
    let (name_needed, hosts_ok) = match protocol {
        "nbd" => (false, hosts == 1),
        "rbd" => (false, true),
        "gluster" => (true, hosts >= 1),
        "iscsi" | "http" | "https" | "ftp" | "ftps" | "sheepdog" | "tftp" | "vxhs" | "nfs" => (true, hosts == 1),
        _ => return false,
    };
    hosts_ok && (!name_needed || source.attr("name").is_some()) && no_text(source)
}

fn driver_valid(driver: &Element) -> bool {
    let format_ok =
        driver.attr("type").is_none_or(|t| matches!(token(t), Some("cow" | "qcow" | "qcow2" | "qed" | "vmdk")));
    let Some(cache) = children_among(driver, &["metadata_cache"]) else { return false };
    let cache_ok = cache[0].is_none_or(|cache| {
        let Some(max) = children_among(cache, &["max_size"]) else { return false };
        attrs_ok(cache, &[]) && no_text(cache) && max[0].is_none_or(scaled_integer_valid)
    });
    attrs_ok(driver, &["type"]) && no_text(driver) && format_ok && cache_ok
}

/// `scaledInteger`: an unsigned long with an optional unit.
fn scaled_integer_valid(element: &Element) -> bool {
    let unit_ok = element.attr("unit").is_none_or(|u| {
        let u = u.to_ascii_lowercase();
        matches!(u.as_str(), "b" | "byte" | "bytes")
            || (u.len() <= 3
                && matches!(u.as_bytes().first(), Some(b'k' | b'm' | b'g' | b't' | b'p' | b'e'))
                && matches!(&u[1..], "" | "b" | "ib"))
    });
    let value_ok =
        token(&element.text()).is_some_and(|v| v.bytes().all(|b| b.is_ascii_digit()) && v.parse::<u64>().is_ok());
    attrs_ok(element, &["unit"]) && element.elements().next().is_none() && unit_ok && value_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The domain of libvirt's `test:///default` as its snapshots print it: the test
    /// driver's definition, indented one level.
    fn test_domain() -> String {
        crate::driver::test::DEFAULT_DOMAIN_XML.lines().map(|l| format!("  {l}\n")).collect()
    }

    /// vda (file), vdb (read-only), hdc (empty cdrom), vdd (block), vde (file), in that
    /// order; /tmp/snapt/a.img and /tmp/snapt/a.qcow2 are the regular files.
    const FIVE_DISKS: &str = "<domain type='test'><name>zz</name><uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>\
        <memory>1024</memory><os><type>hvm</type></os><devices>\
        <disk type='file'><source file='/tmp/snapt/a.img'/><target dev='vda'/></disk>\
        <disk type='file'><source file='/tmp/snapt/b.img'/><target dev='vdb'/><readonly/></disk>\
        <disk type='file' device='cdrom'><target dev='hdc'/></disk>\
        <disk type='block'><source dev='/dev/sdz'/><target dev='vdd'/></disk>\
        <disk type='file'><source file='/tmp/snapt/a.qcow2'/><target dev='vde'/></disk>\
        </devices></domain>";

    fn regular(path: &str) -> bool {
        matches!(path, "/tmp/snapt/a.img" | "/tmp/snapt/a.qcow2")
    }

    fn five_disks() -> DomainDef {
        DomainDef::parse(FIVE_DISKS).unwrap()
    }

    fn create(now: i64) -> SnapshotParse {
        SnapshotParse { now: Some(now), ..Default::default() }
    }

    const REDEFINE: SnapshotParse =
        SnapshotParse { redefine: true, offline: false, validate: false, keep_cookie: false, now: None };
    const VALIDATE: SnapshotParse =
        SnapshotParse { redefine: false, offline: false, validate: true, keep_cookie: false, now: Some(1) };

    fn err(xml: &str, how: SnapshotParse) -> (Code, Domain, String) {
        let e = SnapshotDef::parse(xml, how).unwrap_err();
        (e.code, e.domain, e.message)
    }

    /// What libvirt's test driver does with a new snapshot of a domain in `state`.
    fn as_test_driver(def: &mut SnapshotDef, domain: &DomainDef, state: SnapshotState) -> Result<()> {
        def.domain = Some(Arc::new(domain.clone()));
        def.state = state;
        if def.memory != SnapshotLocation::External {
            def.memory =
                if state == SnapshotState::Shutoff { SnapshotLocation::No } else { SnapshotLocation::Internal };
        }
        let location = if def.memory == SnapshotLocation::External {
            SnapshotLocation::External
        } else {
            SnapshotLocation::Internal
        };
        def.align_disks(None, location, true, regular)
    }

    /// Redefines as libvirt's test driver does (no existing snapshot) and prints the
    /// result without its `<domain>`.
    fn redefined(xml: &str) -> Result<String> {
        let mut def = SnapshotDef::parse(xml, REDEFINE)?;
        def.redefine_validate(&five_disks().uuid, None, false)?;
        let location = def.redefine_location();
        def.align_disks(None, location, true, regular)?;
        def.domain = None;
        Ok(def.format(None, SnapshotFormat::default()))
    }

    fn redefine_doc(state: &str, rest: &str) -> String {
        format!(
            "<domainsnapshot><name>s1</name><creationTime>1700000000</creationTime><state>{state}</state>\
             {rest}{FIVE_DISKS}</domainsnapshot>"
        )
    }

    #[test]
    fn state_and_location_names() {
        assert_eq!(SnapshotState::from_name("disk-snapshot"), Some(SnapshotState::DiskSnapshot));
        assert_eq!(SnapshotState::from_name(" running"), None);
        assert_eq!(SnapshotState::from_domain_state(5), Some(SnapshotState::Shutoff));
        assert_eq!(SnapshotState::from_domain_state(8), None);
        assert!(SnapshotState::Paused.is_online() && !SnapshotState::DiskSnapshot.is_online());
        assert_eq!(SnapshotLocation::from_attr("default"), None);
        assert_eq!(SnapshotLocation::Manual.as_str(), "manual");
    }

    #[test]
    fn new_snapshot_of_the_test_domain_matches_libvirt() {
        let test_domain = test_domain();
        let domain = DomainDef::parse(&test_domain).unwrap();
        let mut def =
            SnapshotDef::parse("<domainsnapshot><name>a</name></domainsnapshot>", create(1796559529)).unwrap();
        as_test_driver(&mut def, &domain, SnapshotState::Running).unwrap();
        let expected = format!(
            "<domainsnapshot>\n  <name>a</name>\n  <state>running</state>\n  <creationTime>1796559529</creationTime>\n  \
             <memory snapshot='internal'/>\n  <disks>\n    <disk name='vda' snapshot='internal'/>\n  </disks>\n\
             {test_domain}</domainsnapshot>\n"
        );
        assert_eq!(def.format(None, SnapshotFormat::default()), expected);
        // The printed form reads back as the driver's metadata.
        let stored = def.format(None, SnapshotFormat { secure: true, internal: true, current: true });
        assert!(stored.ends_with("  </domain>\n  <active>1</active>\n</domainsnapshot>\n"));
        let (again, current) = SnapshotDef::parse_stored(&stored, SnapshotParse::default()).unwrap();
        assert!(current);
        assert_eq!(again.format(None, SnapshotFormat::default()), expected);
    }

    #[test]
    fn default_name_is_the_creation_time_and_names_are_string_values() {
        let def = SnapshotDef::parse(
            "<domainsnapshot><name></name><description></description></domainsnapshot>",
            create(1796559535),
        )
        .unwrap();
        assert_eq!(
            (def.name.as_str(), def.creation_time, def.description.as_deref()),
            ("1796559535", 1796559535, None)
        );
        let def = SnapshotDef::parse(
            "<domainsnapshot><name>a<b>x</b>c</name><description> d <i>e</i></description><bogus/></domainsnapshot>",
            create(1),
        )
        .unwrap();
        assert_eq!((def.name.as_str(), def.description.as_deref()), ("axc", Some(" d e")));
        // A new snapshot ignores what only a redefinition reads.
        let def = SnapshotDef::parse(
            "<domainsnapshot><name>a/b</name><state>paused</state><creationTime>5</creationTime>\
             <parent><name>p</name></parent><active>1</active><domain type='test'/></domainsnapshot>",
            create(9),
        )
        .unwrap();
        assert_eq!(
            (def.name.as_str(), def.state, def.creation_time, def.parent.as_deref()),
            ("a/b", SnapshotState::NoState, 9, None)
        );
        assert!(def.domain.is_none());
        // Without a clock given, the clock is read.
        assert!(
            SnapshotDef::parse("<domainsnapshot/>", SnapshotParse::default()).unwrap().creation_time > 1_600_000_000
        );
    }

    #[test]
    fn syntax_and_root_errors() {
        let how = create(1);
        assert_eq!(
            err("", how),
            (Code::VIR_ERR_XML_DETAIL, FROM, "(domain_snapshot):1: Document is empty\n(null)\n^".into())
        );
        assert!(err("garbage", how).2.starts_with("(domain_snapshot):1: "));
        assert_eq!(
            err("<foo/>", how),
            (
                Code::VIR_ERR_XML_ERROR,
                Domain::VIR_FROM_XML,
                "XML error: expecting root element of 'domainsnapshot', not 'foo'".into()
            )
        );
    }

    #[test]
    fn memory_errors_match_libvirt() {
        let xml = |memory: &str| format!("<domainsnapshot><name>x</name>{memory}</domainsnapshot>");
        let from_xml = |detail: &str| (Code::VIR_ERR_XML_ERROR, Domain::VIR_FROM_XML, format!("XML error: {detail}"));
        let ours = |detail: &str| (Code::VIR_ERR_XML_ERROR, FROM, format!("XML error: {detail}"));
        let how = create(1);
        assert_eq!(
            err(&xml("<memory snapshot='bogus'/>"), how),
            from_xml("Invalid value for attribute 'snapshot' in element 'memory': 'bogus'.")
        );
        assert_eq!(
            err(&xml("<memory snapshot='default'/>"), how),
            from_xml("Invalid value for attribute 'snapshot' in element 'memory': 'default'.")
        );
        assert_eq!(err(&xml("<memory snapshot='manual'/>"), how), ours("'manual' memory snapshot mode not supported"));
        assert_eq!(err(&xml("<memory file='m'/>"), how), ours("memory snapshot file path (m) must be absolute"));
        assert_eq!(err(&xml("<memory file=''/>"), how), ours("memory snapshot file path () must be absolute"));
        assert_eq!(
            err(&xml("<memory snapshot='internal' file='/m'/>"), how),
            ours("memory filename '/m' requires external snapshot")
        );
        assert_eq!(
            err(&xml("<memory snapshot='external'/>"), how),
            ours("external memory snapshots require a filename")
        );
        let offline = SnapshotParse { offline: true, ..how };
        assert_eq!(
            err(&xml("<memory snapshot='internal'/>"), offline),
            ours("memory state cannot be saved with offline or disk-only snapshot")
        );
        assert!(SnapshotDef::parse(&xml("<memory snapshot='no'/>"), offline).is_ok());
        let def = SnapshotDef::parse(&xml("<memory file='/m'/>"), how).unwrap();
        assert_eq!((def.memory, def.memory_file.as_deref()), (SnapshotLocation::External, Some("/m")));
        assert!(def.is_external());
        // A new snapshot without <memory> leaves the choice to the driver.
        assert_eq!(SnapshotDef::parse(&xml(""), how).unwrap().memory, SnapshotLocation::Default);
    }

    #[test]
    fn disk_errors_match_libvirt() {
        let xml = |disks: &str| format!("<domainsnapshot><name>x</name><disks>{disks}</disks></domainsnapshot>");
        let how = create(1);
        assert_eq!(
            err(&xml("<disk/>"), how),
            (Code::VIR_ERR_INTERNAL_ERROR, FROM, "internal error: missing name from disk snapshot element".into())
        );
        let from_xml = |detail: &str| (Code::VIR_ERR_XML_ERROR, Domain::VIR_FROM_XML, format!("XML error: {detail}"));
        assert_eq!(
            err(&xml("<disk name='vda' snapshot=' no '/>"), how),
            from_xml("Invalid value for attribute 'snapshot' in element 'disk': ' no '.")
        );
        assert_eq!(
            err(&xml("<disk name='vda' type='none'/>"), how),
            from_xml("Invalid value for attribute 'type' in element 'disk': 'none'.")
        );
        // Every element under <disks> is read as a disk.
        assert_eq!(
            err(&xml("<bogus name='vda' snapshot='x'/>"), how),
            from_xml("Invalid value for attribute 'snapshot' in element 'bogus': 'x'.")
        );
        assert_eq!(
            err(&xml("<disk name='vda' type='volume'/>"), how),
            (Code::VIR_ERR_XML_ERROR, FROM, "XML error: unsupported disk snapshot type 'volume'".into())
        );
        assert_eq!(
            err(&xml("<disk name='vda'><driver type='foo'/></disk>"), how),
            (
                Code::VIR_ERR_CONFIG_UNSUPPORTED,
                FROM,
                "unsupported configuration: unknown disk snapshot driver 'foo'".into()
            )
        );
        assert_eq!(
            err(&xml("<disk name='vda'><source file='rel'/></disk>"), how),
            (Code::VIR_ERR_XML_ERROR, FROM, "XML error: disk snapshot image path 'rel' must be absolute".into())
        );
        assert_eq!(
            err(&xml("<disk name='vda' type='network'><source name='x'/></disk>"), how),
            from_xml("Missing required attribute 'protocol' in element 'source'")
        );
        assert_eq!(
            err(&xml("<disk name='vda' type='network'><source protocol='rbd'/></disk>"), how),
            (Code::VIR_ERR_XML_ERROR, Domain::VIR_FROM_DOMAIN, "XML error: missing name for disk source".into())
        );
        assert_eq!(
            err(&xml("<disk name='vda' type='network'><source protocol='rbd' name='/img'/></disk>"), how).2,
            "XML error: can't split path '/img' into pool name and image name"
        );
        assert_eq!(
            err(&xml("<disk name='vda' type='nvme'><source type='pci' namespace='x'/></disk>"), how).2,
            "XML error: malformed namespace 'x'"
        );
        assert_eq!(
            err(&xml("<disk name='vda' type='vhostuser'><source type='unix'/></disk>"), how).2,
            "XML error: missing 'path' attribute for vhostuser disk source"
        );
        assert_eq!(
            err(
                &xml(
                    "<disk name='vda'><driver><metadata_cache><max_size>-1</max_size></metadata_cache></driver></disk>"
                ),
                how
            ),
            from_xml("Invalid value '-1' for element or attribute './driver/metadata_cache/max_size'")
        );
        let e = SnapshotDef::parse(
            &xml("<disk name='vda'><driver><metadata_cache><max_size unit='zz'>1</max_size></metadata_cache></driver></disk>"),
            how,
        )
        .unwrap_err();
        assert_eq!(
            (e.code, e.domain, e.message.as_str()),
            (Code::VIR_ERR_INVALID_ARG, Domain::VIR_FROM_NONE, "invalid argument: unknown suffix 'zz'")
        );
        let e = SnapshotDef::parse(
            &xml("<disk name='vda'><driver><metadata_cache><max_size unit='EiB'>16</max_size></metadata_cache></driver></disk>"),
            how,
        )
        .unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (Code::VIR_ERR_OVERFLOW, "numerical overflow: value too large: 16EiB")
        );
    }

    #[test]
    fn disks_become_external_with_a_file_or_format() {
        let def = SnapshotDef::parse(
            "<domainsnapshot><disks><disk name='vda'><driver type='qcow2'/></disk><disk name='vdb'><source file=''/></disk>\
             <disk name='vdc' snapshot='manual'/><disk name='vdd' type='block'><source dev='/dev/x'/></disk></disks>\
             </domainsnapshot>",
            create(1),
        )
        .unwrap();
        let kinds: Vec<_> = def.disks.iter().map(|d| (d.kind, d.path.as_deref())).collect();
        use SnapshotLocation::*;
        assert_eq!(kinds, [(External, None), (Default, None), (Manual, None), (External, Some("/dev/x"))]);
        // The deletion marker is the driver's own and read only from its metadata.
        let xml = "<domainsnapshot><name>x</name><creationTime>1</creationTime><state>shutoff</state>\
                   <disks><disk name='vda'><snapshotDeleteInProgress/></disk></disks></domainsnapshot>";
        assert!(SnapshotDef::parse(xml, REDEFINE).unwrap().disks[0].delete_in_progress);
        assert!(!SnapshotDef::parse(xml, create(1)).unwrap().disks[0].delete_in_progress);
    }

    #[test]
    fn redefine_errors_match_libvirt() {
        assert_eq!(
            err("<domainsnapshot/>", REDEFINE),
            (Code::VIR_ERR_XML_ERROR, FROM, "XML error: a redefined snapshot must have a name".into())
        );
        let missing_time =
            (Code::VIR_ERR_INTERNAL_ERROR, FROM, "internal error: missing creationTime from existing snapshot".into());
        assert_eq!(err("<domainsnapshot><name>r</name></domainsnapshot>", REDEFINE), missing_time);
        assert_eq!(
            err("<domainsnapshot><name>r</name><creationTime>5 </creationTime></domainsnapshot>", REDEFINE),
            missing_time
        );
        assert_eq!(
            err("<domainsnapshot><name>r</name><creationTime> +5</creationTime></domainsnapshot>", REDEFINE),
            (Code::VIR_ERR_XML_ERROR, FROM, "XML error: missing state from existing snapshot".into())
        );
        for state in ["nostate", " running"] {
            assert_eq!(
                err(
                    &format!(
                        "<domainsnapshot><name>r</name><creationTime>5</creationTime><state>{state}</state></domainsnapshot>"
                    ),
                    REDEFINE
                ),
                (
                    Code::VIR_ERR_CONFIG_UNSUPPORTED,
                    FROM,
                    format!("unsupported configuration: Invalid state '{state}' in domain snapshot XML")
                )
            );
        }
        // A shut-off snapshot cannot hold memory.
        assert_eq!(
            err(&redefine_doc("shutoff", "<memory snapshot='internal'/>"), REDEFINE).2,
            "XML error: memory state cannot be saved with offline or disk-only snapshot"
        );
        let (code, domain, message) =
            err(&redefine_doc("running", "<inactiveDomain type='test'><name>i</name></inactiveDomain>"), REDEFINE);
        assert_eq!(
            (code, domain, message.as_str()),
            (Code::VIR_ERR_XML_ERROR, Domain::VIR_FROM_DOMAIN, "XML error: an os <type> must be specified")
        );
    }

    #[test]
    fn redefinition_reads_what_the_driver_stored() {
        let def = SnapshotDef::parse(
            "<domainsnapshot><name>r</name><creationTime>-5</creationTime><state>paused</state>\
             <parent><name>p</name></parent><domain><uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid></domain>\
             <cookie><cpu mode='custom'/></cookie></domainsnapshot>",
            REDEFINE,
        )
        .unwrap();
        assert_eq!((def.creation_time, def.state, def.parent.as_deref()), (-5, SnapshotState::Paused, Some("p")));
        // An online snapshot defaults to internal memory; an old <domain> with only a
        // UUID gives no definition; the cookie is dropped unless the driver keeps it.
        assert_eq!(def.memory, SnapshotLocation::Internal);
        assert!(def.domain.is_none() && def.cookie.is_none());
        let uuid = Uuid::parse("6695eb01-f6a4-8304-79aa-97f2502e193f").unwrap();
        assert_eq!(
            def.format(Some(&uuid), SnapshotFormat::default()),
            "<domainsnapshot>\n  <name>r</name>\n  <state>paused</state>\n  <parent>\n    <name>p</name>\n  </parent>\n  \
             <creationTime>-5</creationTime>\n  <memory snapshot='internal'/>\n  <domain>\n    \
             <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>\n  </domain>\n</domainsnapshot>\n"
        );
        let mut def = def;
        assert_eq!(
            def.align_disks(None, SnapshotLocation::Internal, true, regular).unwrap_err().message,
            "internal error: missing domain in snapshot"
        );
        let kept = SnapshotDef::parse(
            "<domainsnapshot><name>r</name><creationTime>1</creationTime><state>running</state>\
             <cookie><cpu mode='custom'/></cookie></domainsnapshot>",
            SnapshotParse { keep_cookie: true, ..REDEFINE },
        )
        .unwrap();
        assert!(
            kept.format(None, SnapshotFormat::default())
                .ends_with("  <cookie>\n    <cpu mode='custom'/>\n  </cookie>\n</domainsnapshot>\n")
        );
        // An offline snapshot has no cookie.
        let offline = SnapshotDef::parse(
            "<domainsnapshot><name>r</name><creationTime>1</creationTime><state>shutoff</state><cookie><cpu/></cookie></domainsnapshot>",
            SnapshotParse { keep_cookie: true, ..REDEFINE },
        )
        .unwrap();
        assert!(offline.cookie.is_none() && offline.memory == SnapshotLocation::No);

        let e = SnapshotDef::parse_stored(&redefine_doc("running", ""), SnapshotParse::default()).unwrap_err();
        assert_eq!(e.message, "internal error: Could not find 'active' element");
        let (_, current) =
            SnapshotDef::parse_stored(&redefine_doc("running", "<active> 0</active>"), SnapshotParse::default())
                .unwrap();
        assert!(!current);
    }

    #[test]
    fn redefinitions_align_like_libvirt() {
        // Outputs of libvirt 9.0's test driver for the same documents.
        assert_eq!(
            redefined(&redefine_doc("shutoff", "<disks><disk name='/tmp/snapt/a.img' snapshot='internal'/></disks>"))
                .unwrap(),
            "<domainsnapshot>\n  <name>s1</name>\n  <state>shutoff</state>\n  <creationTime>1700000000</creationTime>\n  \
             <memory snapshot='no'/>\n  <disks>\n    <disk name='vda' snapshot='internal'/>\n    \
             <disk name='vdb' snapshot='no'/>\n    <disk name='hdc' snapshot='no'/>\n    \
             <disk name='vdd' snapshot='internal'/>\n    <disk name='vde' snapshot='internal'/>\n  </disks>\n\
             </domainsnapshot>\n"
        );
        assert_eq!(
            redefined(&redefine_doc(
                "disk-snapshot",
                "<disks><disk name='vda' snapshot='external'/><disk name='vdd'><source file='/x/y.qcow2'/></disk>\
                 <disk name='vde'><driver type='qcow2'/><source file='/x/e.qcow2'/></disk></disks>"
            ))
            .unwrap(),
            "<domainsnapshot>\n  <name>s1</name>\n  <state>disk-snapshot</state>\n  <creationTime>1700000000</creationTime>\n  \
             <memory snapshot='no'/>\n  <disks>\n    <disk name='vda' snapshot='external' type='file'>\n      \
             <source file='/tmp/snapt/a.s1'/>\n    </disk>\n    <disk name='vdb' snapshot='no'/>\n    \
             <disk name='hdc' snapshot='no'/>\n    <disk name='vdd' snapshot='external' type='file'>\n      \
             <source file='/x/y.qcow2'/>\n    </disk>\n    <disk name='vde' snapshot='external' type='file'>\n      \
             <driver type='qcow2'/>\n      <source file='/x/e.qcow2'/>\n    </disk>\n  </disks>\n</domainsnapshot>\n"
        );
        let fails = |state: &str, disks: &str| {
            let e = redefined(&redefine_doc(state, &format!("<disks>{disks}</disks>"))).unwrap_err();
            assert_eq!((e.code, e.domain), (Code::VIR_ERR_CONFIG_UNSUPPORTED, FROM), "{disks}");
            e.message.strip_prefix("unsupported configuration: ").unwrap().to_string()
        };
        assert_eq!(fails("running", "<disk name='vdz'/>"), "no disk named 'vdz'");
        assert_eq!(fails("running", "<disk name=''/>"), "no disk named ''");
        assert_eq!(fails("running", "<disk name='C:\\x'/>"), "no disk named 'C:\\x'");
        assert_eq!(fails("running", "<disk name='/tmp/snapt/a.img'/><disk name='vda'/>"), "disk 'vda' specified twice");
        assert_eq!(
            fails("running", "<disk name='vda' snapshot='no'/>"),
            "disk 'vda' must use snapshot mode 'internal'"
        );
        assert_eq!(
            fails("running", "<disk name='vda' snapshot='manual'/>"),
            "disk 'vda' must use snapshot mode 'internal'"
        );
        assert_eq!(
            fails("shutoff", "<disk name='vdb' snapshot='internal'><source file='/q'/></disk>"),
            "file '/q' for disk 'vdb' requires use of external snapshot mode"
        );
        assert_eq!(
            fails("shutoff", "<disk name='hdc' snapshot='external'/><disk name='vdd' snapshot='no'/>"),
            "cannot generate external snapshot name for disk 'hdc' without source"
        );
        assert_eq!(
            fails("shutoff", "<disk name='vdd' snapshot='external' type='block'/>"),
            "cannot generate external snapshot name for disk 'vdd' on a 'block' device"
        );
        assert_eq!(
            fails("shutoff", "<disk name='vda' snapshot='external'/>"),
            "source for disk 'vdd' is not a regular file; refusing to generate external snapshot name"
        );
        assert_eq!(
            fails(
                "disk-snapshot",
                "<disk name='vda' snapshot='external'/><disk name='vde' snapshot='external'/><disk name='vdd' snapshot='no'/>"
            ),
            "cannot generate external snapshot name for disk 'vde': collision with disk 'vda'"
        );
        let one = "<domain type='test'><name>o</name><memory>1</memory><os><type>hvm</type></os><devices>\
                   <disk><source file='/a'/><target dev='vda'/></disk></devices></domain>";
        let mut def = SnapshotDef::parse(
            "<domainsnapshot><disks><disk name='vda'/><disk name='vdb'/></disks></domainsnapshot>",
            create(1),
        )
        .unwrap();
        let e = def
            .align_disks(Some(&DomainDef::parse(one).unwrap()), SnapshotLocation::Internal, true, regular)
            .unwrap_err();
        assert_eq!(e.message, "unsupported configuration: too many disk snapshot requests for domain");
        // On error the request is left as it was.
        assert_eq!(def.disks.len(), 2);
    }

    #[test]
    fn cdroms_are_read_only_for_alignment() {
        // libvirt 9.0's output: the CD-ROM (no <readonly/>) defaults to 'no', so it may be
        // listed as 'no' under uniform internal snapshots.
        let out = redefined(&redefine_doc(
            "paused",
            "<description>d &amp; e</description><disks><disk name='hdc' snapshot='no' type='file'><driver type='qcow2'/>\
             </disk></disks>",
        ))
        .unwrap();
        assert_eq!(
            out,
            "<domainsnapshot>\n  <name>s1</name>\n  <description>d &amp; e</description>\n  <state>paused</state>\n  \
             <creationTime>1700000000</creationTime>\n  <memory snapshot='internal'/>\n  <disks>\n    \
             <disk name='vda' snapshot='internal'/>\n    <disk name='vdb' snapshot='no'/>\n    \
             <disk name='hdc' snapshot='no' type='file'>\n      <driver type='qcow2'/>\n    </disk>\n    \
             <disk name='vdd' snapshot='internal'/>\n    <disk name='vde' snapshot='internal'/>\n  </disks>\n\
             </domainsnapshot>\n"
        );
    }

    #[test]
    fn alignment_without_uniform_internal_takes_the_domain_setting() {
        let domain = DomainDef::parse(
            "<domain type='test'><name>o</name><memory>1</memory><os><type>hvm</type></os><devices>\
             <disk snapshot='external'><source file='/a.img'/><target dev='vda'/></disk>\
             <disk snapshot='no'><source file='/b'/><target dev='vdb'/></disk>\
             <disk type='network'><source protocol='nbd' name='n'/><target dev='vdc'/></disk></devices></domain>",
        )
        .unwrap();
        let mut def = SnapshotDef::parse(
            "<domainsnapshot><name>n</name><disks><disk name='vda'/><disk name='vdb' snapshot='internal'/></disks></domainsnapshot>",
            create(1),
        )
        .unwrap();
        def.align_disks(Some(&domain), SnapshotLocation::Internal, false, |_| true).unwrap();
        let got: Vec<_> = def.disks.iter().map(|d| (d.name.as_str(), d.kind, d.path.as_deref())).collect();
        use SnapshotLocation::*;
        assert_eq!(got, [("vda", External, Some("/a.n")), ("vdb", Internal, None), ("vdc", Internal, None)]);
        // With uniform internal snapshots a listed default disk does not inherit 'external'.
        let mut def = SnapshotDef::parse(
            "<domainsnapshot><name>n</name><disks><disk name='vda'/></disks></domainsnapshot>",
            create(1),
        )
        .unwrap();
        def.align_disks(Some(&domain), Internal, true, |_| true).unwrap();
        assert_eq!(def.disks[0].kind, Internal);
        // A domain without disks accepts an empty request.
        let none =
            DomainDef::parse("<domain type='test'><name>o</name><memory>1</memory><os><type>hvm</type></os></domain>")
                .unwrap();
        let mut def = SnapshotDef::default();
        def.align_disks(Some(&none), Internal, true, |_| true).unwrap();
        assert!(def.disks.is_empty());
    }

    #[test]
    fn redefine_validation_matches_libvirt() {
        let uuid = five_disks().uuid;
        let def = |state: &str| SnapshotDef::parse(&redefine_doc(state, ""), REDEFINE).unwrap();
        let invalid = |e: Error| {
            assert_eq!((e.code, e.domain), (Code::VIR_ERR_INVALID_ARG, FROM));
            e.message.strip_prefix("invalid argument: ").unwrap().to_string()
        };
        assert_eq!(
            invalid(def("running").redefine_validate(&uuid, None, true).unwrap_err()),
            "disk-only flag for snapshot s1 requires disk-snapshot state"
        );
        let other = Uuid::parse("00000000-f6a4-8304-79aa-97f2502e193f").unwrap();
        assert_eq!(
            invalid(def("running").redefine_validate(&other, None, false).unwrap_err()),
            "definition for snapshot s1 must use uuid 00000000-f6a4-8304-79aa-97f2502e193f"
        );
        assert_eq!(
            invalid(def("running").redefine_validate(&uuid, Some(&def("shutoff")), false).unwrap_err()),
            "cannot change between online and offline snapshot state in snapshot s1"
        );
        assert_eq!(
            invalid(def("shutoff").redefine_validate(&uuid, Some(&def("disk-snapshot")), false).unwrap_err()),
            "cannot change between disk only and full system in snapshot s1"
        );
        assert!(def("paused").redefine_validate(&uuid, Some(&def("running")), false).is_ok());
        assert!(def("disk-snapshot").redefine_validate(&uuid, None, true).is_ok());
        assert_eq!(def("disk-snapshot").redefine_location(), SnapshotLocation::External);
        assert_eq!(def("running").redefine_location(), SnapshotLocation::Internal);
    }

    #[test]
    fn qemu_name_check() {
        assert!(check_snapshot_name("a.b c", Domain::VIR_FROM_QEMU).is_ok());
        let e = check_snapshot_name("a/b", Domain::VIR_FROM_QEMU).unwrap_err();
        assert_eq!((e.code, e.domain), (Code::VIR_ERR_XML_DETAIL, Domain::VIR_FROM_QEMU));
        assert_eq!(e.message, "invalid snapshot name 'a/b': name can't contain '/'");
        assert_eq!(
            check_snapshot_name(".a", Domain::VIR_FROM_QEMU).unwrap_err().message,
            "invalid snapshot name '.a': name can't start with '.'"
        );
    }

    #[test]
    fn schema_errors_match_libvirt() {
        let interleave = |group: &str| {
            format!("Extra element {group} in interleave\nElement domainsnapshot failed to validate content\n")
        };
        let cases: Vec<(&str, String)> = vec![
            ("<domainsnapshot><bogus/></domainsnapshot>", "Element domainsnapshot has extra content: bogus\n".into()),
            (
                "<domainsnapshot><name>a</name>hello<bogus/></domainsnapshot>",
                "Element domainsnapshot has extra content: text\n".into(),
            ),
            (
                "<domainsnapshot><bogus/><name><b/></name></domainsnapshot>",
                "Element domainsnapshot has extra content: bogus\n".into(),
            ),
            ("<domainsnapshot><name><b/></name><bogus/></domainsnapshot>", interleave("name")),
            ("<domainsnapshot><description><b/></description><name><b/></name></domainsnapshot>", interleave("name")),
            ("<domainsnapshot><name>a</name><name>b</name></domainsnapshot>", interleave("name")),
            ("<domainsnapshot><name x='1'>a</name></domainsnapshot>", interleave("name")),
            ("<domainsnapshot x='1'><name><b/></name></domainsnapshot>", interleave("name")),
            (
                "<domainsnapshot x='1'><bogus/></domainsnapshot>",
                "Element domainsnapshot has extra content: bogus\n".into(),
            ),
            ("<domainsnapshot x='1'/>", "Invalid attribute x for element domainsnapshot\n".into()),
            ("<domainsnapshot xmlns='urn:x'/>", "Expecting no namespace for element domainsnapshot\n".into()),
            ("<domainsnapshot><state>nostate</state></domainsnapshot>", interleave("state")),
            ("<domainsnapshot><state>pmsuspended</state></domainsnapshot>", interleave("state")),
            ("<domainsnapshot><memory/></domainsnapshot>", interleave("memory")),
            ("<domainsnapshot><memory snapshot='external'/></domainsnapshot>", interleave("memory")),
            ("<domainsnapshot><memory snapshot='no' file='/x'/></domainsnapshot>", interleave("memory")),
            ("<domainsnapshot><memory file='rel'/></domainsnapshot>", interleave("memory")),
            ("<domainsnapshot><active>2</active></domainsnapshot>", interleave("active")),
            ("<domainsnapshot><disks><disk/></disks></domainsnapshot>", interleave("disks")),
            ("<domainsnapshot><disks><disk name='rel'/></disks></domainsnapshot>", interleave("disks")),
            (
                "<domainsnapshot><disks><disk name='vda' snapshot='no' type='file'/></disks></domainsnapshot>",
                interleave("disks"),
            ),
            (
                "<domainsnapshot><disks><disk name='vda' snapshot='no'><source file='/x'/></disk></disks></domainsnapshot>",
                interleave("disks"),
            ),
            ("<domainsnapshot><disks><bogus/></disks></domainsnapshot>", interleave("disks")),
            ("<domainsnapshot><disks><disk name='vda' type='dir'/></disks></domainsnapshot>", interleave("disks")),
            ("<domainsnapshot><disks><disk name='vda' type='nvme'/></disks></domainsnapshot>", interleave("disks")),
            (
                "<domainsnapshot><disks><disk name='vda'><driver type='raw'/></disk></disks></domainsnapshot>",
                interleave("disks"),
            ),
            (
                "<domainsnapshot><disks><disk name='vda'><source file='rel'/></disk></disks></domainsnapshot>",
                interleave("disks"),
            ),
            (
                "<domainsnapshot><disks><disk name='vda' type='block'><source/></disk></disks></domainsnapshot>",
                interleave("disks"),
            ),
            ("<domainsnapshot><parent/></domainsnapshot>", interleave("parent")),
            ("<domainsnapshot><cookie>text</cookie></domainsnapshot>", interleave("cookie")),
            ("<domainsnapshot><cookie a='1'/></domainsnapshot>", interleave("cookie")),
            ("<domainsnapshot><inactiveDomain/></domainsnapshot>", interleave("inactiveDomain")),
            ("<domainsnapshot><domain/></domainsnapshot>", interleave("domain")),
            (
                "<domainsnapshot><domain><uuid> 6695eb01f6a4830479aa97f2502e193f</uuid></domain></domainsnapshot>",
                interleave("domain"),
            ),
            ("<domainsnapshot><domain type='nope'><name>x</name></domain></domainsnapshot>", interleave("domain")),
            (
                "<domainsnapshot><domain type='test'><name>x</name><bogus/></domain></domainsnapshot>",
                interleave("domain"),
            ),
            ("<domainsnapshot><creationTime><x/></creationTime></domainsnapshot>", interleave("creationTime")),
        ];
        for (xml, detail) in cases {
            let (code, domain, message) = err(xml, VALIDATE);
            assert_eq!((code, domain), (Code::VIR_ERR_XML_INVALID_SCHEMA, Domain::VIR_FROM_XML), "{xml}");
            assert_eq!(
                message,
                format!(
                    "XML document failed to validate against schema: Unable to validate doc against \
                     /usr/share/libvirt/schemas/domainsnapshot.rng\n{detail}"
                ),
                "{xml}"
            );
        }
        // Accepted by the schema (and by libvirt 9.0 with VALIDATE).
        for xml in [
            "<domainsnapshot/>",
            "<domainsnapshot xmlns:foo='urn:x' xmlns=''/>",
            "<domainsnapshot><name>a/b</name><active> 1 </active><state> running </state><disks/></domainsnapshot>",
            "<domainsnapshot><domain><uuid>6695eb01f6a4830479aa97f2502e193f</uuid></domain><cookie><x a='1'>t</x></cookie></domainsnapshot>",
            "<domainsnapshot><memory snapshot='external' file='/m'> </memory><disks><disk name='vda' snapshot='external' type='file'>\
             <source file='/s'/><driver type='qcow2'><metadata_cache><max_size unit='KiB'>1</max_size></metadata_cache></driver>\
             </disk></disks></domainsnapshot>",
            "<domainsnapshot><disks><disk name='vda'><driver/><source/></disk><disk name='vdb' type='block'/>\
             <disk name='vdc' type='network'><source protocol='nbd'><host name='x'/></source></disk>\
             <disk name='C:\\x' snapshot='manual'/></disks></domainsnapshot>",
        ] {
            assert!(SnapshotDef::parse(xml, VALIDATE).is_ok(), "{xml}");
        }
        // Values the schema lets through can still fail to mean anything.
        assert_eq!(
            err("<domainsnapshot><memory snapshot=' no '/></domainsnapshot>", VALIDATE).2,
            "XML error: Invalid value for attribute 'snapshot' in element 'memory': ' no '."
        );
        // Without validation the same documents are read as libvirt reads them.
        assert!(
            SnapshotDef::parse("<domainsnapshot x='1'><bogus/><state>nostate</state></domainsnapshot>", create(1))
                .is_ok()
        );
    }

    #[test]
    fn disk_sources_print_like_libvirt() {
        let def = SnapshotDef::parse(
            "<domainsnapshot><name> r&amp;&lt;&apos;&quot;x </name><description>&lt;d&gt;</description>\
             <creationTime>5</creationTime><state>running</state><memory file='/m&amp;'/><disks>\
             <disk name='vda' type='block'><driver type='qcow2'><metadata_cache><max_size unit='KiB'>2</max_size>\
             </metadata_cache></driver><source dev='/dev/x'><seclabel model='dac' relabel='no'/></source></disk>\
             <disk name='vdb' type='network' snapshot='no'><source protocol='nbd'><host name='a' port='1'/></source></disk>\
             <disk name='vdc' type='network'><source protocol='nbd' name='x'><host name='a' port='1'/></source></disk>\
             </disks></domainsnapshot>",
            REDEFINE,
        )
        .unwrap();
        // As libvirt 9.0 printed these disks (its test driver, after alignment).
        assert_eq!(
            def.format(None, SnapshotFormat::default()),
            "<domainsnapshot>\n  <name> r&amp;&lt;&apos;&quot;x </name>\n  <description>&lt;d&gt;</description>\n  \
             <state>running</state>\n  <creationTime>5</creationTime>\n  <memory snapshot='external' file='/m&amp;'/>\n  \
             <disks>\n    <disk name='vda' snapshot='external' type='block'>\n      <driver type='qcow2'>\n        \
             <metadata_cache>\n          <max_size unit='bytes'>2048</max_size>\n        </metadata_cache>\n      \
             </driver>\n      <source dev='/dev/x'>\n        <seclabel model='dac' relabel='no'/>\n      </source>\n    \
             </disk>\n    <disk name='vdb' snapshot='no'/>\n    <disk name='vdc' snapshot='external' type='network'>\n      \
             <source protocol='nbd' name='x'>\n        <host name='a' port='1'/>\n      </source>\n    </disk>\n  \
             </disks>\n</domainsnapshot>\n"
        );
    }

    #[test]
    fn embedded_definitions_are_indented_and_secret_unless_secure() {
        let dom = "<domain type='test'><name>d</name><uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid><memory>1</memory>\
                   <os><type>hvm</type></os><devices><graphics type='vnc' passwd='pw'/></devices></domain>";
        let inactive = dom.replace("domain", "inactiveDomain");
        let xml = format!(
            "<domainsnapshot><name>s</name><creationTime>1</creationTime><state>running</state>{dom}{inactive}</domainsnapshot>"
        );
        let def = SnapshotDef::parse(&xml, REDEFINE).unwrap();
        assert_eq!(def.inactive_domain.as_ref().unwrap().name, "d");
        let plain = def.format(None, SnapshotFormat::default());
        assert!(plain.contains("\n  <domain type='test'>\n    <name>d</name>\n"), "{plain}");
        assert!(plain.contains("  </domain>\n  <inactiveDomain type='test'>\n    <name>d</name>\n"), "{plain}");
        assert!(plain.ends_with("  </inactiveDomain>\n</domainsnapshot>\n"), "{plain}");
        assert!(!plain.contains("pw"));
        let secure = def.format(None, SnapshotFormat { secure: true, ..Default::default() });
        assert_eq!(secure.matches("passwd='pw'").count(), 2);
        let (again, current) = SnapshotDef::parse_stored(
            &def.format(None, SnapshotFormat { secure: true, internal: true, current: false }),
            SnapshotParse::default(),
        )
        .unwrap();
        assert!(!current);
        assert_eq!(again, def);
    }

    #[test]
    fn round_trip_of_printed_output() {
        let dom = five_disks();
        let mut def = SnapshotDef::parse(
            "<domainsnapshot><name>c</name><description>x</description><memory file='/m'/>\
             <disks><disk name='vdd'><source file='/x/y.qcow2'/><driver type='qcow2'/></disk><disk name='vde'><source file='/x/e'/></disk></disks></domainsnapshot>",
            create(7),
        )
        .unwrap();
        as_test_driver(&mut def, &dom, SnapshotState::Running).unwrap();
        def.parent = Some("p".into());
        let how = SnapshotFormat { secure: false, internal: true, current: true };
        let printed = def.format(None, how);
        let (again, current) = SnapshotDef::parse_stored(&printed, SnapshotParse::default()).unwrap();
        assert!(current);
        assert_eq!(again.format(None, how), printed);
        assert_eq!(again, def);
    }
}

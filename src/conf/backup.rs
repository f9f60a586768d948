//! Backup definitions (`<domainbackup>` XML), as libvirt 9.0 reads, completes and prints
//! them.
//!
//! Reading API input goes in libvirt's order: well-formedness (`VIR_ERR_XML_DETAIL`), the
//! root element (`VIR_ERR_XML_ERROR`), the whole document against the rules of
//! `domainbackup.rng` (`VIR_ERR_XML_INVALID_SCHEMA`; checked here by hand), and only then
//! the meaning (transport, socket path, port range, ...). The status form that this
//! library writes for itself skips the schema and additionally carries per-disk `state`
//! and `index` values and the TLS object aliases.
//!
//! [`BackupDef::align_disks`] is libvirt's disk defaulting: one entry per domain disk,
//! generated store names, default backup modes and inherited checkpoints.
//! [`BackupDef::format`] prints libvirt's layout.

use std::path::PathBuf;

use super::domain::{DiskDef, DomainDef};
use super::schema::{self, Schema};
use super::xml::{Element, Node, escape};
use crate::error::{Code, Domain, Error, Result};

const FROM: Domain = Domain::VIR_FROM_DOMAIN;

/// Where libvirt's schema lives; its validation errors name it.
const SCHEMA: Schema = Schema("/usr/share/libvirt/schemas/domainbackup.rng");

/// The image formats the schema's `storageFormat` allows; libvirt's parser knows the same
/// names.
const STORAGE_FORMATS: &[&str] = &[
    "raw", "dir", "bochs", "cloop", "dmg", "iso", "vpc", "vdi", "fat", "vhd", "ploop", "luks", "cow", "qcow", "qcow2",
    "qed", "vmdk",
];

/// Storage types libvirt knows but a backup store cannot be.
const OTHER_STORAGE_TYPES: &[&str] = &["dir", "network", "volume", "nvme", "vhostuser"];

/// Push (libvirt writes the copies) or pull (libvirt exports the disks over NBD).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum BackupMode {
    #[default]
    Push,
    Pull,
}

impl BackupMode {
    /// The XML name.
    pub fn as_str(self) -> &'static str {
        match self {
            BackupMode::Push => "push",
            BackupMode::Pull => "pull",
        }
    }
}

/// How a pull-mode NBD server listens.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Transport {
    /// `transport='tcp'` (the default): a host name or address and a port. libvirt treats
    /// port 0 as "not given", so it is kept as `None`.
    Tcp { name: String, port: Option<u32> },
    /// `transport='unix'`: an absolute socket path.
    Unix { socket: PathBuf },
}

/// `<server>` of a pull-mode backup.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BackupServer {
    pub transport: Transport,
    /// `tls='yes|no'`; `None` when not given.
    pub tls: Option<bool>,
}

/// `backupmode=` of a disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DiskBackupMode {
    Full,
    Incremental,
}

impl DiskBackupMode {
    /// The XML name.
    pub fn as_str(self) -> &'static str {
        match self {
            DiskBackupMode::Full => "full",
            DiskBackupMode::Incremental => "incremental",
        }
    }
}

/// What the store of a disk is: a file (`file=`) or a block device (`dev=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum StoreKind {
    File,
    Block,
}

impl StoreKind {
    /// The XML name (`type=` of `<disk>`).
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::File => "file",
            StoreKind::Block => "block",
        }
    }

    /// The attribute of `<target>`/`<scratch>` that holds the path.
    fn path_attr(self) -> &'static str {
        match self {
            StoreKind::File => "file",
            StoreKind::Block => "dev",
        }
    }
}

/// Progress of one disk's copy; only the status XML carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DiskState {
    Running,
    Complete,
    Failed,
    Cancelling,
    Cancelled,
}

impl DiskState {
    /// The XML name.
    pub fn as_str(self) -> &'static str {
        match self {
            DiskState::Running => "running",
            DiskState::Complete => "complete",
            DiskState::Failed => "failed",
            DiskState::Cancelling => "cancelling",
            DiskState::Cancelled => "cancelled",
        }
    }

    fn from_name(name: &str) -> Option<DiskState> {
        Some(match name {
            "running" => DiskState::Running,
            "complete" => DiskState::Complete,
            "failed" => DiskState::Failed,
            "cancelling" => DiskState::Cancelling,
            "cancelled" => DiskState::Cancelled,
            _ => return None,
        })
    }
}

/// One `<disk>` of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct BackupDisk {
    /// The disk's target (`vda`).
    pub name: String,
    /// `backup='yes'`. With `no`, every other field stays empty.
    pub backup: bool,
    /// `None` until aligned (or when `backup` is false).
    pub mode: Option<DiskBackupMode>,
    /// The checkpoint to back up changes since.
    pub incremental: Option<String>,
    /// Pull mode only: the NBD export name.
    pub export_name: Option<String>,
    /// Pull mode only: the dirty bitmap exported with it.
    pub export_bitmap: Option<String>,
    /// `type=`; set for every disk with `backup` (file when not given).
    pub store_kind: Option<StoreKind>,
    /// The path of `<target>` (push) or `<scratch>` (pull).
    pub store: Option<PathBuf>,
    /// `<driver type=...>`: the store's image format.
    pub format: Option<String>,
    /// Status XML only.
    pub state: Option<DiskState>,
    /// The store's index; 0 means none (not printed).
    pub index: u32,
    /// The store's `<seclabel>` elements, printed back as given.
    pub seclabels: Vec<Element>,
    /// The store's `<encryption>` element, printed back as given.
    pub encryption: Option<Element>,
}

impl BackupDisk {
    /// A `backup='no'` entry.
    pub fn skipped(name: impl Into<String>) -> BackupDisk {
        BackupDisk { name: name.into(), ..Default::default() }
    }

    /// The element name of the store: `target` (push) or `scratch` (pull).
    fn store_element(mode: BackupMode) -> &'static str {
        match mode {
            BackupMode::Push => "target",
            BackupMode::Pull => "scratch",
        }
    }
}

/// A backup definition.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct BackupDef {
    pub mode: BackupMode,
    /// `<incremental>`: the checkpoint the whole backup starts from.
    pub incremental: Option<String>,
    /// Pull mode only.
    pub server: Option<BackupServer>,
    pub disks: Vec<BackupDisk>,
    /// Status XML only: the alias of the TLS credentials object of the NBD server.
    pub tls_alias: Option<String>,
    /// Status XML only: the alias of the secret object holding the TLS key passphrase.
    pub tls_secret_alias: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Errors

fn bad_attributes(element: &str) -> Error {
    SCHEMA.error(format!("Element {element} failed to validate attributes\n"))
}

fn invalid_attribute(attr: &str, element: &str) -> Error {
    SCHEMA.error(format!("Invalid attribute {attr} for element {element}\n"))
}

fn extra_element(child: &str, parent: &str) -> Error {
    SCHEMA.error(format!("Extra element {child} in interleave\nElement {parent} failed to validate content\n"))
}

fn missing_element(child: &str, parent: &str) -> Error {
    SCHEMA.error(format!("Expecting an element {child}, got nothing\nElement {parent} failed to validate content\n"))
}

fn xml_error(detail: String) -> Error {
    Error::new(FROM, Code::VIR_ERR_XML_ERROR, detail)
}

fn unsupported(detail: String) -> Error {
    Error::new(FROM, Code::VIR_ERR_CONFIG_UNSUPPORTED, detail)
}

/// The error of libvirt's typed attribute readers (raised from its XML helpers, hence
/// `VIR_FROM_XML`).
fn invalid_value(attr: &str, element: &str, value: &str) -> Error {
    Error::new(
        Domain::VIR_FROM_XML,
        Code::VIR_ERR_XML_ERROR,
        format!("Invalid value for attribute '{attr}' in element '{element}': '{value}'."),
    )
}

// ---------------------------------------------------------------------------------------
// Lexical rules of the schema's datatypes

/// The schema's `unsignedInt`: digits only, at most 4294967295.
fn unsigned_int(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let significant = text.trim_start_matches('0');
    if significant.is_empty() {
        return Some(0);
    }
    if significant.len() > 10 {
        return None;
    }
    significant.parse().ok()
}

/// `[a-zA-Z0-9\.\-]+`
fn valid_dns_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

/// One dotted-quad part: `25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9][0-9]|[0-9]`.
fn valid_ipv4_part(part: &str) -> bool {
    let b = part.as_bytes();
    !b.is_empty()
        && b.len() <= 3
        && b.iter().all(u8::is_ascii_digit)
        && (b.len() == 1 || b[0] != b'0')
        && part.parse::<u16>().is_ok_and(|v| v <= 255)
}

fn valid_ipv4(addr: &str) -> bool {
    let parts: Vec<&str> = addr.split('.').collect();
    parts.len() == 4 && parts.iter().all(|p| valid_ipv4_part(p))
}

fn is_hex_group(group: &str) -> bool {
    (1..=4).contains(&group.len()) && group.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Consumes `count` repetitions of `h:` (h = 1 to 4 hex digits) from the front.
fn hex_groups(text: &str, count: usize) -> Option<&str> {
    let mut rest = text;
    for _ in 0..count {
        let end = rest.find(':')?;
        if !is_hex_group(&rest[..end]) {
            return None;
        }
        rest = &rest[end + 1..];
    }
    Some(rest)
}

/// `(h:){min,max}` followed by whatever `tail` accepts.
fn groups_then(text: &str, min: usize, max: usize, tail: impl Fn(&str) -> bool) -> bool {
    (min..=max).any(|n| hex_groups(text, n).is_some_and(&tail))
}

/// The schema's `ipv6Addr` pattern, branch by branch (each branch matches the whole value).
fn valid_ipv6(addr: &str) -> bool {
    let colon_then = |min: usize, max: usize| {
        move |rest: &str| rest.strip_prefix(':').is_some_and(|r| groups_then(r, min, max, is_hex_group))
    };
    groups_then(addr, 7, 7, is_hex_group)
        || groups_then(addr, 6, 6, colon_then(0, 0))
        || groups_then(addr, 5, 5, colon_then(0, 1))
        || groups_then(addr, 4, 4, colon_then(0, 2))
        || groups_then(addr, 3, 3, colon_then(0, 3))
        || groups_then(addr, 2, 2, colon_then(0, 4))
        || groups_then(addr, 6, 6, valid_ipv4)
        || groups_then(addr, 0, 5, |r| r.strip_prefix(':').is_some_and(valid_ipv4))
        || addr.strip_prefix("::").is_some_and(|r| groups_then(r, 0, 5, valid_ipv4))
        || addr.split_once("::").is_some_and(|(head, tail)| is_hex_group(head) && groups_then(tail, 0, 5, is_hex_group))
        || addr.strip_prefix("::").is_some_and(|r| groups_then(r, 0, 6, is_hex_group))
        || groups_then(addr, 1, 7, |r| r == ":")
        || addr == "::"
}

/// `[a-fA-F0-9]{32}` or the dashed 8-4-4-4-12 form.
fn valid_uuid(text: &str) -> bool {
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    if hex(text, 32) {
        return true;
    }
    let parts: Vec<&str> = text.split('-').collect();
    parts.len() == 5 && [8, 4, 4, 4, 12].iter().zip(&parts).all(|(&n, p)| hex(p, n))
}

/// A schema `<value>` compares as a token: surrounding whitespace is ignored and inner
/// runs collapse to one space. libvirt's own parser then compares exactly.
fn token(value: &str) -> String {
    value.split([' ', '\t', '\n', '\r']).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" ")
}

// ---------------------------------------------------------------------------------------
// The schema, by hand

/// The attributes the schema sees: namespace declarations are not attributes, but a
/// default namespace puts the element outside the (namespace-less) schema.
fn schema_attrs(element: &Element) -> Result<Vec<(&str, &str)>> {
    let mut out = Vec::with_capacity(element.attrs.len());
    for (k, v) in &element.attrs {
        if k == "xmlns" {
            if !v.is_empty() {
                return Err(SCHEMA.error(format!("Expecting no namespace for element {}\n", element.name)));
            }
        } else if !k.starts_with("xmlns:") {
            out.push((k.as_str(), v.as_str()));
        }
    }
    Ok(out)
}

/// An element that may have only the given attributes and no content.
fn check_empty(element: &Element, allowed: &[&str]) -> Result<()> {
    for (k, _) in schema_attrs(element)? {
        if !allowed.contains(&k) {
            return Err(invalid_attribute(k, &element.name));
        }
    }
    SCHEMA.no_stray_text(element)?;
    if element.elements().next().is_some() {
        return Err(SCHEMA.bad_content(&element.name));
    }
    Ok(())
}

/// An element with text content only and no attributes.
fn check_text_only(element: &Element) -> Result<()> {
    if let Some((k, _)) = schema_attrs(element)?.first() {
        return Err(invalid_attribute(k, &element.name));
    }
    if element.elements().next().is_some() {
        return Err(SCHEMA.bad_content(&element.name));
    }
    Ok(())
}

fn check_document(root: &Element) -> Result<()> {
    let mut pull = false;
    for (k, v) in schema_attrs(root)? {
        match k {
            "mode" => match token(v).as_str() {
                "push" => pull = false,
                "pull" => pull = true,
                _ => return Err(bad_attributes("domainbackup")),
            },
            _ => return Err(invalid_attribute(k, "domainbackup")),
        }
    }
    SCHEMA.no_stray_text(root)?;
    let mut seen: Vec<&str> = Vec::new();
    for child in root.elements() {
        let known = match child.name.as_str() {
            "incremental" | "disks" => true,
            "server" => pull,
            _ => false,
        };
        if !known || seen.contains(&child.name.as_str()) {
            return Err(extra_element(&child.name, "domainbackup"));
        }
        seen.push(&child.name);
    }
    if pull && !seen.contains(&"server") {
        return Err(missing_element("server", "domainbackup"));
    }
    if let Some(incremental) = root.child("incremental") {
        check_text_only(incremental)?;
    }
    if let Some(server) = root.child("server") {
        check_server(server)?;
    }
    if let Some(disks) = root.child("disks") {
        check_disks(disks, pull)?;
    }
    Ok(())
}

fn check_server(server: &Element) -> Result<()> {
    check_empty(server, &["tls", "transport", "name", "port", "socket"])?;
    if server.attr("tls").is_some_and(|v| !matches!(token(v).as_str(), "yes" | "no")) {
        return Err(bad_attributes("server"));
    }
    let ok = match server.attr("transport").map(token).as_deref() {
        None | Some("tcp") => {
            server.attr("socket").is_none()
                && server.attr("name").is_some_and(|n| valid_dns_name(n) || valid_ipv4(n) || valid_ipv6(n))
                && server.attr("port").is_none_or(|p| unsigned_int(p).is_some())
        }
        Some("unix") => {
            server.attr("name").is_none()
                && server.attr("port").is_none()
                && server.attr("socket").is_some_and(schema::valid_abs_path)
        }
        Some(_) => false,
    };
    if ok { Ok(()) } else { Err(bad_attributes("server")) }
}

fn check_disks(disks: &Element, pull: bool) -> Result<()> {
    if let Some((k, _)) = schema_attrs(disks)?.first() {
        return Err(invalid_attribute(k, "disks"));
    }
    SCHEMA.no_stray_text(disks)?;
    let mut count = 0;
    for disk in disks.elements() {
        if disk.name != "disk" {
            return Err(SCHEMA.error(format!(
                "Expecting element disk, got {}\nElement disks failed to validate content\n",
                disk.name
            )));
        }
        check_disk(disk, pull)?;
        count += 1;
    }
    if count == 0 {
        return Err(missing_element("disk", "disks"));
    }
    Ok(())
}

fn check_disk(disk: &Element, pull: bool) -> Result<()> {
    let allowed: &[&str] = if pull {
        &["name", "backupmode", "incremental", "backup", "type", "exportname", "exportbitmap"]
    } else {
        &["name", "backupmode", "incremental", "backup", "type"]
    };
    for (k, _) in schema_attrs(disk)? {
        if !allowed.contains(&k) {
            return Err(invalid_attribute(k, "disk"));
        }
    }
    SCHEMA.no_stray_text(disk)?;
    if !disk.attr("name").is_some_and(schema::valid_disk_target) {
        return Err(bad_attributes("disk"));
    }
    match disk.attr("backupmode").map(token).as_deref() {
        None | Some("incremental") => {}
        Some("full") if disk.attr("incremental").is_none() => {}
        Some(_) => return Err(bad_attributes("disk")),
    }
    let backup = disk.attr("backup").map(token);
    let kind = disk.attr("type").map(token);
    let kind = match (backup.as_deref(), kind.as_deref()) {
        (Some("no"), None) => {
            return if disk.elements().next().is_some() { Err(SCHEMA.bad_content("disk")) } else { Ok(()) };
        }
        (None | Some("yes"), Some("file")) => Some(StoreKind::File),
        (None | Some("yes"), Some("block")) => Some(StoreKind::Block),
        // Pull mode lets a disk leave out both `backup` and `type` (a file disk).
        (None, None) if pull => None,
        _ => return Err(bad_attributes("disk")),
    };
    let store_name = if pull { "scratch" } else { "target" };
    let mut store = None;
    let mut driver = None;
    for child in disk.elements() {
        let slot = match child.name.as_str() {
            n if n == store_name => &mut store,
            "driver" => &mut driver,
            _ => return Err(extra_element(&child.name, "disk")),
        };
        if slot.is_some() {
            return Err(extra_element(&child.name, "disk"));
        }
        *slot = Some(child);
    }
    if let Some(driver) = driver {
        check_empty(driver, &["type"])?;
        let format = driver.attr("type").map(token);
        let ok = match format.as_deref() {
            Some("qcow2") => true,
            Some(f) => !pull && STORAGE_FORMATS.contains(&f),
            None => false,
        };
        if !ok {
            return Err(bad_attributes("driver"));
        }
    }
    // A pull disk needs a scratch when it is a block device, and a driver only comes
    // together with a scratch.
    if pull && store.is_none() && (kind == Some(StoreKind::Block) || driver.is_some()) {
        return Err(missing_element("scratch", "disk"));
    }
    if let Some(store) = store {
        check_store(store, kind.unwrap_or(StoreKind::File))?;
    }
    Ok(())
}

fn check_store(store: &Element, kind: StoreKind) -> Result<()> {
    let path_attr = kind.path_attr();
    for (k, _) in schema_attrs(store)? {
        if k != path_attr {
            return Err(invalid_attribute(k, &store.name));
        }
    }
    if !store.attr(path_attr).is_some_and(schema::valid_abs_path) {
        return Err(bad_attributes(&store.name));
    }
    SCHEMA.no_stray_text(store)?;
    let mut encryption = false;
    for child in store.elements() {
        match child.name.as_str() {
            "seclabel" => check_seclabel(child)?,
            "encryption" if !encryption => {
                encryption = true;
                check_encryption(child)?;
            }
            _ => return Err(extra_element(&child.name, &store.name)),
        }
    }
    Ok(())
}

fn check_seclabel(seclabel: &Element) -> Result<()> {
    for (k, _) in schema_attrs(seclabel)? {
        if !matches!(k, "model" | "relabel" | "labelskip") {
            return Err(invalid_attribute(k, "seclabel"));
        }
    }
    SCHEMA.no_stray_text(seclabel)?;
    let mut labels = 0;
    for child in seclabel.elements() {
        if child.name != "label" {
            return Err(SCHEMA.bad_content("seclabel"));
        }
        check_text_only(child)?;
        labels += 1;
    }
    let relabel = seclabel.attr("relabel").map(token);
    let labelskip = seclabel.attr("labelskip").map(token);
    let ok = match (relabel.as_deref(), labelskip.as_deref()) {
        (Some("no"), None) | (None, Some("yes")) => labels == 0,
        (None | Some("yes"), None) => labels > 0,
        _ => false,
    };
    if ok { Ok(()) } else { Err(bad_attributes("seclabel")) }
}

fn check_encryption(encryption: &Element) -> Result<()> {
    for (k, _) in schema_attrs(encryption)? {
        if !matches!(k, "format" | "engine") {
            return Err(invalid_attribute(k, "encryption"));
        }
    }
    if encryption.attr("format").map(token).as_deref() != Some("luks")
        || encryption.attr("engine").is_some_and(|e| token(e) != "qemu")
    {
        return Err(bad_attributes("encryption"));
    }
    SCHEMA.no_stray_text(encryption)?;
    let (mut secret, mut cipher, mut ivgen) = (false, false, false);
    for child in encryption.elements() {
        match child.name.as_str() {
            "secret" if !secret => {
                secret = true;
                check_empty(child, &["type", "uuid", "usage"])?;
                let ok = child.attr("type").is_some_and(|t| token(t) == "passphrase")
                    && match (child.attr("uuid"), child.attr("usage")) {
                        (Some(uuid), None) => valid_uuid(uuid),
                        (None, Some(_)) => true,
                        _ => false,
                    };
                if !ok {
                    return Err(bad_attributes("secret"));
                }
            }
            "cipher" if !cipher && !ivgen => {
                cipher = true;
                check_empty(child, &["name", "size", "mode", "hash"])?;
                let ok = child.attr("name").is_some()
                    && child.attr("size").is_some_and(|s| unsigned_int(s).is_some())
                    && child.attr("mode").is_some() == child.attr("hash").is_some();
                if !ok {
                    return Err(bad_attributes("cipher"));
                }
            }
            "ivgen" if cipher && !ivgen => {
                ivgen = true;
                check_empty(child, &["name", "hash"])?;
                if child.attr("name").is_none() {
                    return Err(bad_attributes("ivgen"));
                }
            }
            _ => return Err(extra_element(&child.name, "encryption")),
        }
    }
    if !secret {
        return Err(missing_element("secret", "encryption"));
    }
    if cipher && !ivgen {
        return Err(missing_element("ivgen", "encryption"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Reading

/// XPath's string value: all descendant text, in document order.
fn string_value(element: &Element) -> String {
    let mut out = String::new();
    fn walk(e: &Element, out: &mut String) {
        for n in &e.children {
            match n {
                Node::Text(t) => out.push_str(t),
                Node::Element(c) => walk(c, out),
            }
        }
    }
    walk(element, &mut out);
    out
}

/// libvirt's XPath string reader, which gives nothing for an empty string.
fn non_empty(text: String) -> Option<String> {
    if text.is_empty() { None } else { Some(text) }
}

/// libvirt's `yes`/`no` attribute reader.
fn yes_no(element: &Element, attr: &str) -> Result<Option<bool>> {
    match element.attr(attr) {
        None => Ok(None),
        Some("yes") => Ok(Some(true)),
        Some("no") => Ok(Some(false)),
        Some(other) => Err(invalid_value(attr, &element.name, other)),
    }
}

/// libvirt's unsigned int reader (`strtoul` in base 10, no minus sign, nothing after the
/// digits, at most 32 bits).
fn parse_uint(text: &str) -> Option<u32> {
    let t = text.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let t = t.strip_prefix('+').unwrap_or(t);
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let significant = t.trim_start_matches('0');
    if significant.len() > 10 {
        return None;
    }
    if significant.is_empty() { Some(0) } else { significant.parse().ok() }
}

/// libvirt's port reader: an unsigned number no larger than 65535. Its errors come from
/// a generic helper (`VIR_FROM_NONE`).
fn parse_port(text: &str) -> Result<u32> {
    let invalid = |detail: String| Error::new(Domain::VIR_FROM_NONE, Code::VIR_ERR_INVALID_ARG, detail);
    let port = parse_uint(text).ok_or_else(|| invalid(format!("failed to parse port number '{text}'")))?;
    if port > u32::from(u16::MAX) {
        return Err(invalid(format!("port '{text}' out of range")));
    }
    Ok(port)
}

fn parse_server(server: &Element) -> Result<BackupServer> {
    let transport_name = server.attr("transport");
    let transport = match transport_name {
        None | Some("tcp") => "tcp",
        Some("unix") => "unix",
        Some("rdma") => "rdma",
        Some(other) => return Err(xml_error(format!("unknown protocol transport type '{other}'"))),
    };
    let socket = server.attr("socket");
    if transport == "unix" && socket.is_none() {
        return Err(xml_error("missing socket for unix transport".to_string()));
    }
    if transport != "unix" && socket.is_some() {
        return Err(xml_error(format!("transport '{transport}' does not support socket attribute")));
    }
    let transport = match (transport, socket) {
        ("unix", Some(socket)) => Transport::Unix { socket: PathBuf::from(socket) },
        _ => {
            let name = server.attr("name").ok_or_else(|| xml_error("missing name for host".to_string()))?;
            let port = server.attr("port").map(parse_port).transpose()?.filter(|&p| p != 0);
            if transport == "rdma" {
                return Err(unsupported("transport rdma is not supported for <server>".to_string()));
            }
            Transport::Tcp { name: name.to_string(), port }
        }
    };
    if let Transport::Unix { socket } = &transport
        && !socket.is_absolute()
    {
        return Err(xml_error(format!("backup socket path '{}' must be absolute", socket.display())));
    }
    let tls = yes_no(server, "tls")?;
    Ok(BackupServer { transport, tls })
}

/// Reads the `<seclabel>` list of a store the way libvirt does: a security model may be
/// named only once, and a label needs relabelling.
fn check_seclabels(seclabels: &[Element]) -> Result<()> {
    let mut models: Vec<&str> = Vec::new();
    for seclabel in seclabels {
        let model = seclabel.attr("model");
        if let Some(model) = model {
            if models.contains(&model) {
                return Err(Error::new(
                    FROM,
                    Code::VIR_ERR_XML_DETAIL,
                    format!("seclabel for model {model} is already provided"),
                ));
            }
            models.push(model);
        }
        let relabel = yes_no(seclabel, "relabel")?;
        let has_label = seclabel.child("label").is_some_and(|l| !string_value(l).is_empty());
        if relabel == Some(false) && has_label {
            return Err(xml_error(format!(
                "Cannot specify a label if relabelling is turned off. model={}",
                model.unwrap_or("(null)")
            )));
        }
    }
    Ok(())
}

/// Drops layout whitespace from a kept element so that it prints like libvirt prints it.
fn tidy(element: &Element) -> Element {
    let mut out = Element { name: element.name.clone(), attrs: element.attrs.clone(), children: Vec::new() };
    let text_content = element.name == "label";
    for n in &element.children {
        match n {
            Node::Element(c) => out.children.push(Node::Element(tidy(c))),
            Node::Text(t) if text_content || !t.trim().is_empty() => out.children.push(Node::Text(t.clone())),
            Node::Text(_) => {}
        }
    }
    out
}

fn parse_disk(disk: &Element, mode: BackupMode, status: bool) -> Result<BackupDisk> {
    let name = disk.attr("name").ok_or_else(|| xml_error("missing name from disk backup element".to_string()))?;
    if yes_no(disk, "backup")? == Some(false) {
        return Ok(BackupDisk::skipped(name));
    }
    let mut out = BackupDisk { name: name.to_string(), backup: true, ..Default::default() };
    if mode == BackupMode::Pull {
        out.export_name = disk.attr("exportname").map(str::to_string);
        out.export_bitmap = disk.attr("exportbitmap").map(str::to_string);
    }
    out.mode = match disk.attr("backupmode") {
        None | Some("") => None,
        Some("full") => Some(DiskBackupMode::Full),
        Some("incremental") => Some(DiskBackupMode::Incremental),
        Some(other) => return Err(invalid_value("backupmode", "disk", other)),
    };
    out.incremental = disk.attr("incremental").map(str::to_string);
    if status {
        // libvirt insists on a state here; a status file of this library may have been
        // written before the copy started, so a missing state reads as none.
        out.state = match disk.attr("state") {
            None | Some("") => None,
            Some(s) => Some(DiskState::from_name(s).ok_or_else(|| invalid_value("state", "disk", s))?),
        };
    }

    // The store's type, format and index, checked in libvirt's order.
    let kind = disk.attr("type");
    let store_kind = match kind {
        None | Some("file") => Some(StoreKind::File),
        Some("block") => Some(StoreKind::Block),
        Some(t) if OTHER_STORAGE_TYPES.contains(&t) => None,
        Some(t) => return Err(xml_error(format!("unknown storage source type '{t}'"))),
    };
    let format = disk.child("driver").and_then(|d| d.attr("type")).filter(|f| !f.is_empty());
    if let Some(f) = format
        && !STORAGE_FORMATS.contains(&f)
    {
        return Err(xml_error(format!("unknown storage source format '{f}'")));
    }
    if status && let Some(index) = disk.attr("index") {
        out.index = parse_uint(index).ok_or_else(|| xml_error(format!("invalid storage source index '{index}'")))?;
    }
    let Some(store_kind) = store_kind else {
        return Err(xml_error(format!("unsupported disk backup type '{}'", kind.unwrap_or_default())));
    };
    out.store_kind = Some(store_kind);
    out.format = format.map(str::to_string);

    if let Some(store) = disk.child(BackupDisk::store_element(mode)) {
        out.store = store.attr(store_kind.path_attr()).filter(|p| !p.is_empty()).map(PathBuf::from);
        out.seclabels = store.children_named("seclabel").map(tidy).collect();
        check_seclabels(&out.seclabels)?;
        out.encryption = store.child("encryption").map(tidy);
    }
    Ok(out)
}

impl BackupDef {
    /// Parses `<domainbackup>` XML given to the API: syntax, root element, schema, then
    /// libvirt's own checks.
    pub fn parse(xml: &str) -> Result<BackupDef> {
        let root = super::parse_document(xml, "domain_backup", "domainbackup", FROM)?;
        check_document(&root)?;
        Self::from_element(&root, false)
    }

    /// Parses the status form [`BackupDef::format`] writes with `status`: no schema
    /// check; disk states, store indexes and TLS aliases are read too.
    pub fn parse_status(xml: &str) -> Result<BackupDef> {
        let root = super::parse_stored_document(xml, "domain_backup", "domainbackup", FROM)?;
        Self::from_element(&root, true)
    }

    /// Reads a status-form `<domainbackup>` element that is part of a larger document.
    pub fn from_status_element(root: &Element) -> Result<BackupDef> {
        Self::from_element(root, true)
    }

    fn from_element(root: &Element, status: bool) -> Result<BackupDef> {
        let mode = match root.attr("mode") {
            None | Some("push") => BackupMode::Push,
            Some("pull") => BackupMode::Pull,
            Some(other) => return Err(unsupported(format!("unknown backup mode '{other}'"))),
        };
        let incremental = root.child("incremental").map(string_value).and_then(non_empty);
        let server = match root.child("server") {
            Some(_) if mode != BackupMode::Pull => {
                return Err(unsupported("use of <server> requires pull mode backup".to_string()));
            }
            Some(server) => Some(parse_server(server)?),
            None => None,
        };
        let mut disks = Vec::new();
        for list in root.children_named("disks") {
            for disk in list.elements() {
                disks.push(parse_disk(disk, mode, status)?);
            }
        }
        let mut def = BackupDef { mode, incremental, server, disks, ..Default::default() };
        if status {
            let objects = root.children_named("privateData").flat_map(|p| p.children_named("objects"));
            for objects in objects {
                let secret = objects
                    .children_named("secret")
                    .find(|s| s.attr("type") == Some("tlskey"))
                    .and_then(|s| s.attr("alias"));
                if def.tls_secret_alias.is_none() {
                    def.tls_secret_alias = secret.map(str::to_string).and_then(non_empty);
                }
                if def.tls_alias.is_none() {
                    def.tls_alias =
                        objects.child("TLSx509").and_then(|t| t.attr("alias")).map(str::to_string).and_then(non_empty);
                }
            }
        }
        Ok(def)
    }

    /// Completes the definition against the domain, as libvirt's AlignDisks does:
    ///
    /// * every listed disk must exist and be listed once, and an `incremental` backup
    ///   mode needs a checkpoint (its own or the backup's);
    /// * a listed disk that is backed up needs media, and gets the store
    ///   `<source path>.<suffix>` when none was given (only for file-backed disks);
    /// * unlisted disks are appended in domain order, backed up (with a generated store)
    ///   only when the input listed no disks at all and the disk has media and is
    ///   writable;
    /// * backed-up disks default to `incremental` mode when a checkpoint is named for the
    ///   disk or the backup, `full` otherwise, and incremental disks inherit the backup's
    ///   checkpoint.
    ///
    /// `suffix` is the name of the checkpoint created together with the backup, or the
    /// current time in seconds. Errors are `VIR_ERR_CONFIG_UNSUPPORTED`; on error the
    /// definition is left unchanged.
    pub fn align_disks(&mut self, domain: &DomainDef, suffix: &str) -> Result<()> {
        if domain.disks.is_empty() {
            return Err(unsupported("domain must have at least one disk to perform backup".to_string()));
        }
        let mut disks = self.disks.clone();
        let mut listed: Vec<&str> = Vec::with_capacity(disks.len());
        for disk in &mut disks {
            let dom = domain.disk(&disk.name).ok_or_else(|| unsupported(format!("no disk named '{}'", disk.name)))?;
            if listed.contains(&dom.target.as_str()) {
                return Err(unsupported(format!("disk '{}' specified twice", disk.name)));
            }
            listed.push(&dom.target);
            if disk.mode == Some(DiskBackupMode::Incremental)
                && disk.incremental.is_none()
                && self.incremental.is_none()
            {
                return Err(unsupported(format!(
                    "'incremental' backup mode of disk '{}' requires setting 'incremental' field for disk or backup",
                    disk.name
                )));
            }
            if disk.backup {
                if dom.is_empty() {
                    return Err(unsupported(format!("disk '{}' has no media", disk.name)));
                }
                if disk.store.is_none() {
                    generate_store(disk, dom, suffix)?;
                }
            }
        }
        let backup_all = disks.is_empty();
        for dom in &domain.disks {
            if listed.contains(&dom.target.as_str()) {
                continue;
            }
            let mut disk = BackupDisk::skipped(dom.target.clone());
            if backup_all && !dom.is_empty() && !dom.readonly {
                disk.backup = true;
                generate_store(&mut disk, dom, suffix)?;
            }
            disks.push(disk);
        }
        for disk in disks.iter_mut().filter(|d| d.backup) {
            let mode = *disk.mode.get_or_insert(if self.incremental.is_some() || disk.incremental.is_some() {
                DiskBackupMode::Incremental
            } else {
                DiskBackupMode::Full
            });
            if mode == DiskBackupMode::Incremental && disk.incremental.is_none() {
                disk.incremental = self.incremental.clone();
            }
        }
        self.disks = disks;
        Ok(())
    }

    /// Prints the definition in libvirt's layout. `status` adds the per-disk state and the
    /// TLS object aliases (the internal status form).
    pub fn format(&self, status: bool) -> String {
        let mut body = String::new();
        if let Some(incremental) = &self.incremental {
            body.push_str(&format!("  <incremental>{}</incremental>\n", escape(incremental)));
        }
        if let Some(server) = &self.server {
            body.push_str("  <server");
            match &server.transport {
                Transport::Tcp { .. } => body.push_str(" transport='tcp'"),
                Transport::Unix { .. } => body.push_str(" transport='unix'"),
            }
            if let Some(tls) = server.tls {
                body.push_str(if tls { " tls='yes'" } else { " tls='no'" });
            }
            match &server.transport {
                Transport::Tcp { name, port } => {
                    body.push_str(&format!(" name='{}'", escape(name)));
                    if let Some(port) = port.filter(|&p| p != 0) {
                        body.push_str(&format!(" port='{port}'"));
                    }
                }
                Transport::Unix { socket } => {
                    body.push_str(&format!(" socket='{}'", escape(&socket.to_string_lossy())));
                }
            }
            body.push_str("/>\n");
        }
        if !self.disks.is_empty() {
            body.push_str("  <disks>\n");
            for disk in &self.disks {
                self.format_disk(&mut body, disk, status);
            }
            body.push_str("  </disks>\n");
        }
        if status && (self.tls_secret_alias.is_some() || self.tls_alias.is_some()) {
            body.push_str("  <privateData>\n    <objects>\n");
            if let Some(alias) = &self.tls_secret_alias {
                body.push_str(&format!("      <secret type='tlskey' alias='{}'/>\n", escape(alias)));
            }
            if let Some(alias) = &self.tls_alias {
                body.push_str(&format!("      <TLSx509 alias='{}'/>\n", escape(alias)));
            }
            body.push_str("    </objects>\n  </privateData>\n");
        }
        let open = format!("<domainbackup mode='{}'", self.mode.as_str());
        if body.is_empty() { format!("{open}/>\n") } else { format!("{open}>\n{body}</domainbackup>\n") }
    }

    fn format_disk(&self, out: &mut String, disk: &BackupDisk, status: bool) {
        out.push_str(&format!("    <disk name='{}'", escape(&disk.name)));
        out.push_str(if disk.backup { " backup='yes'" } else { " backup='no'" });
        if let (true, Some(state)) = (status, disk.state) {
            out.push_str(&format!(" state='{}'", state.as_str()));
        }
        if !disk.backup {
            out.push_str("/>\n");
            return;
        }
        let kind = disk.store_kind.unwrap_or(StoreKind::File);
        out.push_str(&format!(" type='{}'", kind.as_str()));
        if let Some(mode) = disk.mode {
            out.push_str(&format!(" backupmode='{}'", mode.as_str()));
        }
        for (attr, value) in [
            ("incremental", &disk.incremental),
            ("exportname", &disk.export_name),
            ("exportbitmap", &disk.export_bitmap),
        ] {
            if let Some(value) = value {
                out.push_str(&format!(" {attr}='{}'", escape(value)));
            }
        }
        if disk.index != 0 {
            out.push_str(&format!(" index='{}'", disk.index));
        }

        let mut children = String::new();
        if let Some(format) = &disk.format {
            children.push_str(&format!("      <driver type='{}'/>\n", escape(format)));
        }
        let mut store = Element::new(BackupDisk::store_element(self.mode));
        if let Some(path) = &disk.store {
            store.attrs.push((kind.path_attr().to_string(), path.to_string_lossy().into_owned()));
        }
        store.children.extend(disk.seclabels.iter().cloned().map(Node::Element));
        store.children.extend(disk.encryption.iter().cloned().map(Node::Element));
        if !store.attrs.is_empty() || !store.children.is_empty() {
            store.write(&mut children, 6);
        }
        if children.is_empty() {
            out.push_str("/>\n");
        } else {
            out.push_str(">\n");
            out.push_str(&children);
            out.push_str("    </disk>\n");
        }
    }
}

/// Gives a backed-up disk without a store the file `<source path>.<suffix>`; only a
/// file-backed domain disk gets a generated name.
fn generate_store(disk: &mut BackupDisk, dom: &DiskDef, suffix: &str) -> Result<()> {
    match (&dom.source, dom.source_type.as_str()) {
        (Some(source), "file") => {
            disk.store_kind = Some(StoreKind::File);
            disk.store = Some(PathBuf::from(format!("{source}.{suffix}")));
            Ok(())
        }
        _ => Err(unsupported(format!("refusing to generate file name for disk '{}'", disk.name))),
    }
}

#[cfg(test)]
mod tests;

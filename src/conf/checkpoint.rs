//! Checkpoint definitions (`<domaincheckpoint>` XML), as libvirt 9.0 reads, checks,
//! completes and prints them.
//!
//! Reading goes in libvirt's order: well-formedness (`VIR_ERR_XML_DETAIL`), the root
//! element (`VIR_ERR_XML_ERROR`), the schema (`VIR_ERR_XML_INVALID_SCHEMA`; the rules of
//! `domaincheckpoint.rng` are checked here by hand), then the meaning (redefine needs a
//! name and a creation time, an embedded domain must be a valid definition).

use std::sync::Arc;

use super::domain::{DomainDef, outline_problem};
use super::schema::{self, Schema};
use super::xml::{Element, escape};
use crate::error::{Code, Domain, Error, Result};

const FROM: Domain = Domain::VIR_FROM_DOMAIN_CHECKPOINT;

/// Where libvirt's schema lives; its validation errors name it.
const SCHEMA: Schema = Schema("/usr/share/libvirt/schemas/domaincheckpoint.rng");

/// What a checkpoint does for one disk. A `<disk>` without a `checkpoint` attribute
/// means `Bitmap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DiskCheckpointKind {
    /// `checkpoint='no'`.
    No,
    /// `checkpoint='bitmap'`: a dirty bitmap tracks the disk.
    #[default]
    Bitmap,
}

/// One `<disk>` of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointDisk {
    /// The disk's target (`vda`), or, before alignment, possibly its source path.
    pub name: String,
    pub kind: DiskCheckpointKind,
    /// The bitmap's name (libvirt uses the checkpoint name).
    pub bitmap: Option<String>,
    /// Bytes changed since the checkpoint; printed only with the SIZE flag.
    pub size: Option<u64>,
}

/// A checkpoint definition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckpointDef {
    /// Empty until given or defaulted.
    pub name: String,
    pub description: Option<String>,
    /// The parent's name; the tree keeps it current.
    pub parent: Option<String>,
    /// Seconds since the epoch; 0 means unknown (not printed).
    pub creation_time: i64,
    pub disks: Vec<CheckpointDisk>,
    /// Whether the input had a `<disks>` element (unlisted disks then default to `no`).
    pub disks_listed: bool,
    /// The domain definition the checkpoint was taken of.
    pub domain: Option<Arc<DomainDef>>,
}

/// How to print a checkpoint (`virDomainCheckpointXMLFlags`, translated).
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckpointFormat {
    pub secure: bool,
    pub no_domain: bool,
    pub size: bool,
}

/// `[a-zA-Z0-9_\-][a-zA-Z0-9_\-.]*`: no leading dot, no slash, no space, ASCII only.
pub fn valid_checkpoint_name(name: &str) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let mut chars = name.chars();
    chars.next().is_some_and(ok) && chars.all(|c| ok(c) || c == '.')
}

/// The schema's unsignedLong: digits only (no sign, no surrounding space), at most
/// u64::MAX.
fn parse_unsigned_long(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The top level of the domain schema an embedded `<domain>` must follow (see
/// [`outline_problem`]); deeper content is left to the domain parser.
fn check_embedded_domain(domain: &Element) -> Result<()> {
    match outline_problem(domain) {
        Some(problem) => Err(SCHEMA.error(format!("{problem}\nElement domaincheckpoint failed to validate content\n"))),
        None => Ok(()),
    }
}

fn only_text(element: &Element) -> Result<String> {
    if !element.attrs.is_empty() {
        return Err(SCHEMA.error(format!("Invalid attribute {} for element {}\n", element.attrs[0].0, element.name)));
    }
    if element.elements().next().is_some() {
        return Err(SCHEMA.bad_content(&element.name));
    }
    Ok(element.text())
}

/// Checks a name element against the checkpoint name pattern.
fn checkpoint_name(element: &Element) -> Result<String> {
    let text = only_text(element)?;
    if !valid_checkpoint_name(&text) {
        return Err(SCHEMA.error(format!(
            "Element name failed to validate content\nElement {} failed to validate content\n",
            element.name
        )));
    }
    Ok(text)
}

fn parse_disk(disk: &Element) -> Result<CheckpointDisk> {
    SCHEMA.no_stray_text(disk)?;
    if disk.elements().next().is_some() {
        return Err(SCHEMA.bad_content("disk"));
    }
    let name = disk.attr("name").ok_or_else(|| SCHEMA.error("Element disk failed to validate attributes\n"))?;
    if !schema::valid_disk_target(name) && !schema::valid_abs_path(name) {
        return Err(SCHEMA.error("Element disk failed to validate attributes\n"));
    }
    let kind = match disk.attr("checkpoint").map(str::trim) {
        None => DiskCheckpointKind::Bitmap,
        Some("no") => DiskCheckpointKind::No,
        Some("bitmap") => DiskCheckpointKind::Bitmap,
        Some(_) => return Err(SCHEMA.error("Element disk failed to validate attributes\n")),
    };
    for (key, _) in &disk.attrs {
        let allowed = match kind {
            DiskCheckpointKind::No => matches!(key.as_str(), "name" | "checkpoint"),
            _ => matches!(key.as_str(), "name" | "checkpoint" | "bitmap" | "size"),
        };
        if !allowed {
            return Err(SCHEMA.error(format!("Invalid attribute {key} for element disk\n")));
        }
    }
    if let Some(size) = disk.attr("size") {
        parse_unsigned_long(size).ok_or_else(|| SCHEMA.error("Element disk failed to validate attributes\n"))?;
    }
    Ok(CheckpointDisk {
        name: name.to_string(),
        kind,
        bitmap: disk.attr("bitmap").map(str::to_string),
        // Sizes are output only; an input size is accepted and ignored.
        size: None,
    })
}

impl CheckpointDef {
    /// Parses `<domaincheckpoint>` XML. With `redefine`, the name and creation time are
    /// required and `<parent>` and `<domain>` are read; otherwise they are ignored.
    pub fn parse(text: &str, redefine: bool) -> Result<CheckpointDef> {
        let root = super::parse_document(text, "domain_checkpoint", "domaincheckpoint", FROM)?;
        Self::from_element(&root, redefine)
    }

    /// Parses checkpoint metadata the driver stored (as for a redefinition, and as large
    /// as [`super::MAX_STORED_XML_BYTES`]).
    pub fn parse_stored(text: &str) -> Result<CheckpointDef> {
        let root = super::parse_stored_document(text, "domain_checkpoint", "domaincheckpoint", FROM)?;
        Self::from_element(&root, true)
    }

    fn from_element(root: &Element, redefine: bool) -> Result<CheckpointDef> {
        // Schema: no attributes (a namespace declaration included), no stray text, each
        // known child at most once, nothing else.
        if let Some((key, _)) = root.attrs.first() {
            return Err(if key == "xmlns" || key.starts_with("xmlns:") {
                SCHEMA.error("Expecting no namespace for element domaincheckpoint\n")
            } else {
                SCHEMA.error(format!("Invalid attribute {key} for element domaincheckpoint\n"))
            });
        }
        SCHEMA.no_stray_text(root)?;
        let mut seen: Vec<&str> = Vec::new();
        for child in root.elements() {
            let known =
                matches!(child.name.as_str(), "name" | "description" | "creationTime" | "disks" | "domain" | "parent");
            if !known || seen.contains(&child.name.as_str()) {
                return Err(SCHEMA.error(format!(
                    "Extra element {} in interleave\nElement domaincheckpoint failed to validate content\n",
                    child.name
                )));
            }
            seen.push(&child.name);
        }

        if let Some(domain) = root.child("domain") {
            check_embedded_domain(domain)?;
        }
        let name = root.child("name").map(checkpoint_name).transpose()?;
        let description = root.child("description").map(only_text).transpose()?;
        let creation = match root.child("creationTime") {
            Some(e) => {
                let text = only_text(e)?;
                Some(parse_unsigned_long(&text).map(|_| text).ok_or_else(|| SCHEMA.bad_content("creationTime"))?)
            }
            None => None,
        };
        let parent = match root.child("parent") {
            Some(p) => {
                if !p.attrs.is_empty() {
                    return Err(SCHEMA.bad_content("parent"));
                }
                SCHEMA.no_stray_text(p)?;
                let mut names = p.elements();
                match (names.next(), names.next()) {
                    (Some(n), None) if n.name == "name" => Some(checkpoint_name(n)?),
                    _ => return Err(SCHEMA.bad_content("parent")),
                }
            }
            None => None,
        };
        let mut disks = Vec::new();
        let disks_listed = match root.child("disks") {
            Some(list) => {
                if !list.attrs.is_empty() {
                    return Err(SCHEMA.bad_content("disks"));
                }
                SCHEMA.no_stray_text(list)?;
                for disk in list.elements() {
                    if disk.name != "disk" {
                        return Err(SCHEMA.bad_content("disks"));
                    }
                    disks.push(parse_disk(disk)?);
                }
                if disks.is_empty() {
                    return Err(SCHEMA
                        .error("Expecting an element disk, got nothing\nElement disks failed to validate content\n"));
                }
                true
            }
            None => false,
        };

        let mut def = CheckpointDef {
            name: name.unwrap_or_default(),
            description: description.filter(|d| !d.is_empty()),
            disks,
            disks_listed,
            ..Default::default()
        };
        if redefine {
            if def.name.is_empty() {
                return Err(Error::new(FROM, Code::VIR_ERR_XML_ERROR, "a redefined checkpoint must have a name"));
            }
            def.creation_time = creation
                .and_then(|t| t.parse::<i64>().ok())
                .ok_or_else(|| Error::internal(FROM, "missing creationTime from existing checkpoint"))?;
            def.parent = parent;
            if let Some(dom) = root.child("domain") {
                def.domain = Some(Arc::new(DomainDef::from_element(dom.clone())?));
            }
        }
        Ok(def)
    }

    /// Completes the disk list against the domain definition, as libvirt's AlignDisks
    /// does: one entry per domain disk in the domain's order, unlisted disks `no` (or
    /// `bitmap` when the input had no `<disks>`), empty or read-only disks `no`, path
    /// names rewritten to targets, and bitmap names defaulted to the checkpoint's name.
    pub fn align_disks(&mut self, domain: &DomainDef) -> Result<()> {
        let unsupported = |detail: String| Error::new(FROM, Code::VIR_ERR_CONFIG_UNSUPPORTED, detail);
        if self.disks.len() > domain.disks.len() {
            return Err(unsupported("too many disk checkpoint requests for domain".to_string()));
        }
        if domain.disks.is_empty() {
            return Err(unsupported("domain must have at least one disk to perform checkpoints".to_string()));
        }
        let default = if self.disks_listed { DiskCheckpointKind::No } else { DiskCheckpointKind::Bitmap };
        let mut slots: Vec<Option<CheckpointDisk>> = vec![None; domain.disks.len()];
        for mut wanted in std::mem::take(&mut self.disks) {
            let at = domain
                .disks
                .iter()
                .position(|d| {
                    if wanted.name.starts_with('/') {
                        d.source.as_deref() == Some(wanted.name.as_str())
                    } else {
                        d.target == wanted.name
                    }
                })
                .ok_or_else(|| unsupported(format!("no disk named '{}'", wanted.name)))?;
            if slots[at].is_some() {
                return Err(unsupported(format!("disk '{}' specified twice", wanted.name)));
            }
            let disk = &domain.disks[at];
            if (disk.is_empty() || disk.readonly) && wanted.kind != DiskCheckpointKind::No {
                return Err(unsupported(format!("disk '{}' is empty or readonly", wanted.name)));
            }
            wanted.name = disk.target.clone();
            slots[at] = Some(wanted);
        }
        self.disks = slots
            .into_iter()
            .zip(&domain.disks)
            .map(|(slot, disk)| {
                slot.unwrap_or_else(|| CheckpointDisk {
                    name: disk.target.clone(),
                    kind: if disk.is_empty() || disk.readonly { DiskCheckpointKind::No } else { default },
                    bitmap: None,
                    size: None,
                })
            })
            .collect();
        self.default_bitmap_names();
        Ok(())
    }

    /// Gives every bitmap disk without a bitmap name the checkpoint's name.
    pub fn default_bitmap_names(&mut self) {
        for disk in &mut self.disks {
            if disk.kind == DiskCheckpointKind::Bitmap && disk.bitmap.is_none() {
                disk.bitmap = Some(self.name.clone());
            }
        }
    }

    /// Prints the definition in libvirt's layout.
    pub fn format(&self, how: CheckpointFormat) -> String {
        let mut out = String::with_capacity(256);
        out.push_str("<domaincheckpoint>\n");
        out.push_str(&format!("  <name>{}</name>\n", escape(&self.name)));
        if let Some(d) = &self.description {
            out.push_str(&format!("  <description>{}</description>\n", escape(d)));
        }
        if let Some(p) = &self.parent {
            out.push_str(&format!("  <parent>\n    <name>{}</name>\n  </parent>\n", escape(p)));
        }
        if self.creation_time != 0 {
            out.push_str(&format!("  <creationTime>{}</creationTime>\n", self.creation_time));
        }
        if !self.disks.is_empty() {
            out.push_str("  <disks>\n");
            for disk in &self.disks {
                out.push_str(&format!("    <disk name='{}'", escape(&disk.name)));
                out.push_str(match disk.kind {
                    DiskCheckpointKind::No => " checkpoint='no'",
                    DiskCheckpointKind::Bitmap => " checkpoint='bitmap'",
                });
                if let Some(b) = &disk.bitmap {
                    out.push_str(&format!(" bitmap='{}'", escape(b)));
                }
                if let (true, Some(size)) = (how.size, disk.size) {
                    out.push_str(&format!(" size='{size}'"));
                }
                out.push_str("/>\n");
            }
            out.push_str("  </disks>\n");
        }
        if let (false, Some(dom)) = (how.no_domain, &self.domain) {
            out.push_str(dom.embedded(how.secure));
        }
        out.push_str("</domaincheckpoint>\n");
        out
    }
}

#[cfg(test)]
mod tests;

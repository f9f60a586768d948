//! The per-domain snapshot list: libvirt's snapshot semantics on top of the generic
//! moment list, shared by the drivers. What is a snapshot's own is here: the list flags
//! that filter on a snapshot's state and location, the redefinition rules
//! (`virDomainSnapshotRedefinePrep`), and printing. Drivers add how a snapshot is taken
//! and reverted.

use crate::abi::{
    VIR_DOMAIN_SNAPSHOT_XML_SECURE, virDomainSnapshotCreateFlags as CreateFlags,
    virDomainSnapshotListFlags as ListFlags,
};
use crate::conf::snapshot::{SnapshotDef, SnapshotFormat, SnapshotState};
use crate::error::{Code, Result};
use crate::moment::list::{self as moment, Moment, MomentList};
use crate::moment::list_flags;
use crate::uuid::Uuid;

use ListFlags::*;

/// Every list flag (ROOTS/DESCENDANTS, TOPOLOGICAL and all filters): what libvirt's
/// drivers accept.
pub const LIST_FLAGS: u32 = VIR_DOMAIN_SNAPSHOT_LIST_ROOTS as u32
    | VIR_DOMAIN_SNAPSHOT_LIST_TOPOLOGICAL as u32
    | VIR_DOMAIN_SNAPSHOT_LIST_LEAVES as u32
    | VIR_DOMAIN_SNAPSHOT_LIST_NO_LEAVES as u32
    | VIR_DOMAIN_SNAPSHOT_LIST_METADATA as u32
    | VIR_DOMAIN_SNAPSHOT_LIST_NO_METADATA as u32
    | FILTERS_STATUS
    | FILTERS_LOCATION;

/// The filters on the state a snapshot was taken in.
const FILTERS_STATUS: u32 = VIR_DOMAIN_SNAPSHOT_LIST_INACTIVE as u32
    | VIR_DOMAIN_SNAPSHOT_LIST_ACTIVE as u32
    | VIR_DOMAIN_SNAPSHOT_LIST_DISK_ONLY as u32;

/// The filters on where a snapshot keeps its data.
const FILTERS_LOCATION: u32 = VIR_DOMAIN_SNAPSHOT_LIST_INTERNAL as u32 | VIR_DOMAIN_SNAPSHOT_LIST_EXTERNAL as u32;

impl Moment for SnapshotDef {
    const NOUN: &'static str = "snapshot";
    const NOT_FOUND: Code = Code::VIR_ERR_NO_DOMAIN_SNAPSHOT;

    fn name(&self) -> &str {
        &self.name
    }

    fn parent_name(&self) -> Option<&str> {
        self.parent.as_deref()
    }

    fn set_parent_name(&mut self, parent: Option<String>) {
        self.parent = parent;
    }
}

/// A snapshot ready to be committed.
pub type Prepared = moment::Prepared<SnapshotDef>;

/// One domain's snapshots.
pub type Snapshots = MomentList<SnapshotDef>;

/// Splits the public list flags into the generic moment flags and the snapshot's own
/// filters, as `virDomainSnapshotObjListGetNames` does: flags whose bits differ are
/// translated, and a group of filters with every member set filters nothing.
fn split_list_flags(flags: u32) -> (u32, u32) {
    let map = [
        (VIR_DOMAIN_SNAPSHOT_LIST_ROOTS, list_flags::ROOTS),
        (VIR_DOMAIN_SNAPSHOT_LIST_TOPOLOGICAL, list_flags::TOPOLOGICAL),
        (VIR_DOMAIN_SNAPSHOT_LIST_LEAVES, list_flags::LEAVES),
        (VIR_DOMAIN_SNAPSHOT_LIST_NO_LEAVES, list_flags::NO_LEAVES),
        (VIR_DOMAIN_SNAPSHOT_LIST_METADATA, list_flags::METADATA),
        (VIR_DOMAIN_SNAPSHOT_LIST_NO_METADATA, list_flags::NO_METADATA),
    ];
    let mut own = flags;
    let mut generic = 0;
    for (public, common) in map {
        if flags & public as u32 != 0 {
            own &= !(public as u32);
            generic |= common;
        }
    }
    for group in [FILTERS_STATUS, FILTERS_LOCATION] {
        if own & group == group {
            own &= !group;
        }
    }
    (generic, own)
}

/// `virDomainSnapshotFilter`: whether a snapshot passes the state and location filters.
fn accepts(def: &SnapshotDef, own: u32) -> bool {
    let set = |f: ListFlags| own & f as u32 != 0;
    if own & FILTERS_STATUS != 0 {
        let wanted = match def.state {
            SnapshotState::Shutoff => set(VIR_DOMAIN_SNAPSHOT_LIST_INACTIVE),
            SnapshotState::DiskSnapshot => set(VIR_DOMAIN_SNAPSHOT_LIST_DISK_ONLY),
            _ => set(VIR_DOMAIN_SNAPSHOT_LIST_ACTIVE),
        };
        if !wanted {
            return false;
        }
    }
    let external = def.is_external();
    (!set(VIR_DOMAIN_SNAPSHOT_LIST_INTERNAL) || !external) && (!set(VIR_DOMAIN_SNAPSHOT_LIST_EXTERNAL) || external)
}

/// The printing options of the public XML flags.
pub fn format_options(flags: u32) -> SnapshotFormat {
    SnapshotFormat { secure: flags & VIR_DOMAIN_SNAPSHOT_XML_SECURE as u32 != 0, ..Default::default() }
}

/// Whether `path` names a regular file: libvirt names external snapshot files only after
/// regular files.
pub fn is_regular_file(path: &str) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file())
}

impl MomentList<SnapshotDef> {
    /// Lists or counts (`count_only`) a domain's snapshots or a snapshot's children with
    /// the public list flags.
    pub fn listing(&self, from: Option<&str>, flags: u32, count_only: bool) -> Result<super::Listing> {
        let (generic, own) = split_list_flags(flags);
        let filter = |d: &SnapshotDef| accepts(d, own);
        let filter: Option<&dyn Fn(&SnapshotDef) -> bool> = if own == 0 { None } else { Some(&filter) };
        super::moment_listing(self, from, generic, count_only, filter)
    }

    /// The definition of a snapshot for a caller (`virDomainSnapshotGetXMLDesc`);
    /// `domain_uuid` stands in for a missing domain definition.
    pub fn format(&self, name: &str, flags: u32, domain_uuid: &Uuid) -> Result<String> {
        Ok(self.get(name)?.format(Some(domain_uuid), format_options(flags)))
    }

    /// Prepares a redefinition (`VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE`) as libvirt's
    /// `virDomainSnapshotRedefinePrep` does: the parent must exist without making a
    /// cycle, the definition must suit its domain and the snapshot it replaces, and its
    /// disks are aligned (to external for disk-only and external snapshots). A snapshot
    /// that replaces one keeps that one's children, and its domain definition when the
    /// new one has none. It becomes current only when asked (`CREATE_CURRENT`).
    pub fn prepare_redefine(&self, mut def: SnapshotDef, domain_uuid: &Uuid, flags: u32) -> Result<Prepared> {
        self.check_cycles(&def.name, def.parent.as_deref())?;
        let existing = self.get(&def.name).ok();
        let disk_only = flags & CreateFlags::VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY as u32 != 0;
        def.redefine_validate(domain_uuid, existing, disk_only)?;
        let location = def.redefine_location();
        def.align_disks(existing.and_then(|e| e.domain.as_deref()), location, true, is_regular_file)?;
        if def.domain.is_none() {
            def.domain = existing.and_then(|e| e.domain.clone());
        }
        let make_current = flags & CreateFlags::VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT as u32 != 0;
        Ok(Prepared { replaces: existing.is_some(), def, make_current })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conf::snapshot::{SnapshotLocation, SnapshotParse};
    use crate::error::Domain;

    fn snapshot(name: &str, parent: Option<&str>, state: SnapshotState, external: bool) -> SnapshotDef {
        SnapshotDef {
            name: name.into(),
            parent: parent.map(str::to_string),
            state,
            memory: if external { SnapshotLocation::External } else { SnapshotLocation::Internal },
            memory_file: external.then(|| "/m".to_string()),
            ..Default::default()
        }
    }

    fn list() -> Snapshots {
        let defs = vec![
            snapshot("a", None, SnapshotState::Running, false),
            snapshot("b", Some("a"), SnapshotState::Shutoff, false),
            snapshot("c", Some("a"), SnapshotState::DiskSnapshot, true),
            snapshot("d", Some("c"), SnapshotState::Paused, true),
        ];
        let (list, errors) = Snapshots::load(Domain::VIR_FROM_TEST, defs);
        assert!(errors.is_empty());
        list
    }

    fn listed(listing: super::super::Listing) -> Vec<String> {
        match listing {
            super::super::Listing::Names(n) => n,
            super::super::Listing::Count(_) => panic!("a count, not names"),
        }
    }

    fn names(list: &Snapshots, flags: u32) -> Vec<String> {
        let mut n = listed(list.listing(None, flags, false).unwrap());
        n.sort();
        n
    }

    #[test]
    fn state_and_location_filters_select_as_libvirt_does() {
        let l = list();
        assert_eq!(names(&l, VIR_DOMAIN_SNAPSHOT_LIST_INACTIVE as u32), ["b"]);
        assert_eq!(names(&l, VIR_DOMAIN_SNAPSHOT_LIST_ACTIVE as u32), ["a", "d"]);
        assert_eq!(names(&l, VIR_DOMAIN_SNAPSHOT_LIST_DISK_ONLY as u32), ["c"]);
        assert_eq!(names(&l, FILTERS_STATUS), ["a", "b", "c", "d"]);
        assert_eq!(names(&l, VIR_DOMAIN_SNAPSHOT_LIST_EXTERNAL as u32), ["c", "d"]);
        assert_eq!(names(&l, VIR_DOMAIN_SNAPSHOT_LIST_INTERNAL as u32), ["a", "b"]);
        assert_eq!(names(&l, FILTERS_LOCATION), ["a", "b", "c", "d"]);
        // Combined with the generic filters, and counted the same way.
        let leaves_external = VIR_DOMAIN_SNAPSHOT_LIST_LEAVES as u32 | VIR_DOMAIN_SNAPSHOT_LIST_EXTERNAL as u32;
        assert_eq!(names(&l, leaves_external), ["d"]);
        assert_eq!(l.listing(None, leaves_external, true).unwrap().len(), 1);
        assert_eq!(names(&l, VIR_DOMAIN_SNAPSHOT_LIST_NO_METADATA as u32), Vec::<String>::new());
        assert_eq!(names(&l, VIR_DOMAIN_SNAPSHOT_LIST_METADATA as u32).len(), 4);
        assert_eq!(l.listing(Some("a"), VIR_DOMAIN_SNAPSHOT_LIST_ACTIVE as u32, true).unwrap().len(), 0);
        assert_eq!(l.listing(Some("a"), list_flags::DESCENDANTS, true).unwrap().len(), 3);
    }

    #[test]
    fn topological_is_translated() {
        let l = list();
        let order = listed(l.listing(None, VIR_DOMAIN_SNAPSHOT_LIST_TOPOLOGICAL as u32, false).unwrap());
        let at = |x: &str| order.iter().position(|n| n == x).unwrap();
        assert!(at("a") < at("b") && at("a") < at("c") && at("c") < at("d"));
    }

    #[test]
    fn a_missing_snapshot_is_the_snapshot_error() {
        let l = list();
        let e = l.listing(Some("zz"), 0, false).unwrap_err();
        assert_eq!(e.code, Code::VIR_ERR_NO_DOMAIN_SNAPSHOT);
        assert_eq!(e.message, "Domain snapshot not found: no domain snapshot with matching name 'zz'");
        assert_eq!(
            l.parent("a").unwrap_err().message,
            "Domain snapshot not found: snapshot 'a' does not have a parent"
        );
    }

    const UUID: &str = "6695eb01-f6a4-8304-79aa-97f2502e193f";

    fn redefined(xml: &str) -> SnapshotDef {
        SnapshotDef::parse(xml, SnapshotParse { redefine: true, ..Default::default() }).unwrap()
    }

    #[test]
    fn redefinition_keeps_the_old_domain_and_becomes_current_only_when_asked() {
        let mut l = Snapshots::new(Domain::VIR_FROM_TEST);
        let uuid = Uuid::parse(UUID).unwrap();
        let xml = |parent: &str| {
            format!(
                "<domainsnapshot><name>s</name>{parent}<state>shutoff</state><creationTime>5</creationTime>\
                 </domainsnapshot>"
            )
        };
        let mut first = redefined(&xml(""));
        first.domain = Some(std::sync::Arc::new(
            crate::conf::domain::DomainDef::parse(&format!(
                "<domain type='test'><name>t</name><uuid>{UUID}</uuid><memory>1</memory><os><type>hvm</type></os></domain>"
            ))
            .unwrap(),
        ));
        let p = l.prepare_redefine(first, &uuid, 0).unwrap();
        assert!(!p.replaces && !p.make_current);
        l.commit(p).unwrap();
        assert_eq!(l.current(), None);
        let p = l.prepare_redefine(redefined(&xml("")), &uuid, CreateFlags::VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT as u32);
        let p = p.unwrap();
        assert!(p.replaces && p.make_current && p.def.domain.is_some());
        l.commit(p).unwrap();
        assert_eq!(l.current(), Some("s"));
        // Its own parent, a missing parent, a change of kind.
        let e = l.prepare_redefine(redefined(&xml("<parent><name>s</name></parent>")), &uuid, 0).unwrap_err();
        assert_eq!(e.message, "invalid argument: cannot set moment s as its own parent");
        let online = redefined(&xml("").replace("shutoff", "running"));
        let e = l.prepare_redefine(online, &uuid, 0).unwrap_err();
        assert_eq!(
            e.message,
            "invalid argument: cannot change between online and offline snapshot state in snapshot s"
        );
    }
}

//! Snapshots on the QEMU driver. This driver takes no snapshots yet
//! (`virDomainSnapshotCreateXML` is not supported), so every domain's snapshot list is
//! empty, and the calls that read it answer as libvirt does for a domain without
//! snapshots: empty listings, no current snapshot, "no domain snapshot with matching
//! name" for a name. The domain and the flags are checked as for any call.

use super::state::{FROM, QemuDriver};
use super::store::Scope;
use crate::abi::{virDomainSnapshotDeleteFlags as Delete, virDomainSnapshotRevertFlags as Revert};
use crate::conf::snapshot::SnapshotDef;
use crate::driver::snapshots::{self, Snapshots};
use crate::driver::{DomainId, Listing};
use crate::error::{Code, Error, Result};
use crate::moment::list as moment;

/// Answers `read` from the (empty) snapshot list of an existing domain, after checking
/// the flags of `function` against `allowed`.
fn with_snapshots<T>(
    driver: &QemuDriver,
    dom: &DomainId,
    function: &str,
    flags: u32,
    allowed: u32,
    read: impl FnOnce(&Snapshots) -> Result<T>,
) -> Result<T> {
    Error::check_flags(FROM, function, flags, allowed)?;
    driver.with_state(Scope::Domain(&dom.name), false, |inner, _| {
        inner.position(dom)?;
        read(&Snapshots::new(FROM))
    })
}

/// The driver's function behind a public listing call (`virDomainSnapshotNum` is
/// `qemuDomainSnapshotNum`).
fn driver_function(api: &str) -> String {
    format!("qemu{}", api.strip_prefix("vir").unwrap_or(api))
}

pub(crate) fn list_all_snapshots(
    driver: &QemuDriver,
    dom: &DomainId,
    flags: u32,
    count_only: bool,
    api: &'static str,
) -> Result<Listing> {
    with_snapshots(driver, dom, &driver_function(api), flags, snapshots::LIST_FLAGS, |list| {
        list.listing(None, flags, count_only)
    })
}

pub(crate) fn snapshot_list_all_children(
    driver: &QemuDriver,
    dom: &DomainId,
    name: &str,
    flags: u32,
    count_only: bool,
    api: &'static str,
) -> Result<Listing> {
    with_snapshots(driver, dom, &driver_function(api), flags, snapshots::LIST_FLAGS, |list| {
        list.listing(Some(name), flags, count_only)
    })
}

pub(crate) fn snapshot_lookup_by_name(driver: &QemuDriver, dom: &DomainId, name: &str, flags: u32) -> Result<()> {
    with_snapshots(driver, dom, "qemuDomainSnapshotLookupByName", flags, 0, |list| list.get(name).map(|_| ()))
}

pub(crate) fn has_current_snapshot(driver: &QemuDriver, dom: &DomainId, flags: u32) -> Result<bool> {
    with_snapshots(driver, dom, "qemuDomainHasCurrentSnapshot", flags, 0, |list| Ok(list.current().is_some()))
}

pub(crate) fn snapshot_current(driver: &QemuDriver, dom: &DomainId, flags: u32) -> Result<String> {
    with_snapshots(driver, dom, "qemuDomainSnapshotCurrent", flags, 0, |list| {
        list.current().map(str::to_string).ok_or_else(|| {
            Error::new(FROM, Code::VIR_ERR_NO_DOMAIN_SNAPSHOT, "the domain does not have a current snapshot")
        })
    })
}

/// The calls about one snapshot (its XML, parent, whether it is current or has
/// metadata, reverting to it, deleting it): with no snapshots, every name is unknown.
pub(crate) fn unknown_snapshot<T>(
    driver: &QemuDriver,
    dom: &DomainId,
    name: &str,
    flags: u32,
    function: &str,
) -> Result<T> {
    let allowed = match function {
        "qemuDomainSnapshotGetXMLDesc" => crate::abi::VIR_DOMAIN_SNAPSHOT_XML_SECURE as u32,
        "qemuDomainRevertToSnapshot" => {
            Revert::VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING as u32
                | Revert::VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED as u32
                | Revert::VIR_DOMAIN_SNAPSHOT_REVERT_FORCE as u32
                | Revert::VIR_DOMAIN_SNAPSHOT_REVERT_RESET_NVRAM as u32
        }
        "qemuDomainSnapshotDelete" => {
            Delete::VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN as u32
                | Delete::VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY as u32
                | Delete::VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY as u32
        }
        _ => 0,
    };
    with_snapshots(driver, dom, function, flags, allowed, |_| Err(moment::not_found::<SnapshotDef>(FROM, name)))
}

//! Snapshot entry points (`libvirt-domain-snapshot.c`), in libvirt's check order:
//! handle, NULL arguments, read-only access, flag combinations, then the driver.
//!
//! The three ways of listing (a count, an array of names, an array of handles) share one
//! driver call per subject (a domain, a snapshot's children).

use std::ffi::{c_char, c_int, c_uint};
use std::ptr;
use std::sync::Arc;

use super::alloc::{fill_strings, malloc_null_terminated, malloc_string};
use super::handles::{DomainHandle, Handle, SnapshotHandle, SnapshotRef};
use super::unsupported::Number;
use super::{Call, entry};
use crate::abi::{
    VIR_DOMAIN_SNAPSHOT_XML_SECURE, virConnectPtr, virDomainPtr, virDomainSnapshotCreateFlags as Create,
    virDomainSnapshotDeleteFlags as Delete, virDomainSnapshotPtr, virDomainSnapshotRevertFlags as Revert,
};
use crate::driver::Listing;
use crate::error::{Code, Domain, Error, Result};

const FROM: Domain = Domain::VIR_FROM_DOMAIN_SNAPSHOT;

impl Call {
    /// Validates a snapshot pointer (libvirt checks the handle, its domain and its
    /// connection) and makes its connection the call's error target.
    ///
    /// # Safety
    /// `ptr` must be NULL or point to memory readable as a snapshot handle.
    unsafe fn snapshot(&mut self, ptr: virDomainSnapshotPtr) -> Result<Arc<SnapshotHandle>> {
        // SAFETY: forwarded from this function's contract.
        unsafe { self.object::<SnapshotRef>(ptr) }
    }
}

/// Turns a listing into the caller's array of new handles (when asked) and the count.
///
/// # Safety
/// `out` must be NULL or writable.
unsafe fn hand_out(domain: &Arc<DomainHandle>, listing: Listing, out: *mut *mut virDomainSnapshotPtr) -> Result<c_int> {
    let count = c_int::try_from(listing.len()).unwrap_or(c_int::MAX);
    if let (false, Listing::Names(names)) = (out.is_null(), listing) {
        let handles = names.into_iter().map(|n| Handle::into_ptr(SnapshotRef::new(domain.clone(), n))).collect();
        // SAFETY: `out` is writable (contract).
        unsafe { *out = malloc_null_terminated(handles)? };
    }
    Ok(count)
}

/// Writes up to `nameslen` names of a listing into `names` (each freed by the caller with
/// `free()`). Returns the number of snapshots listed, which may be more than were
/// written: libvirt counts every match and fills only the slots it has.
///
/// # Safety
/// `names` must have `nameslen` writable slots.
unsafe fn write_names(listing: Listing, names: *mut *mut c_char, nameslen: c_int) -> Result<c_int> {
    let Listing::Names(all) = listing else { return Ok(0) };
    let wanted: Vec<&str> = all.iter().take(usize::try_from(nameslen).unwrap_or(0)).map(String::as_str).collect();
    // SAFETY: `names` has `nameslen` slots and `wanted` is no longer (contract).
    unsafe { fill_strings(names, &wanted)? };
    Ok(c_int::try_from(all.len()).unwrap_or(c_int::MAX))
}

/// Creates a snapshot from `<domainsnapshot>` XML (`virDomainSnapshotCreateFlags`), or
/// with `REDEFINE` restores the metadata of one. Returns a new handle (release with
/// `virDomainSnapshotFree()`), or NULL.
///
/// # Safety
/// `domain` must be NULL or a domain handle; `xmlDesc` NULL or a NUL-terminated string.
///
/// Since: 0.8.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainSnapshotCreateXML(
    domain: virDomainPtr,
    xmlDesc: *const c_char,
    flags: c_uint,
) -> virDomainSnapshotPtr {
    entry(FROM, "virDomainSnapshotCreateXML", |call| {
        // SAFETY: forwarded from the contract.
        let (dom, xml) = unsafe { (call.domain(domain)?, call.string(xmlDesc, "xmlDesc")?) };
        call.writable(&dom.conn)?;
        let flag = |f: Create, name| (f as c_uint, name);
        let redefine = flag(Create::VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE, "VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE");
        call.required_flag(
            flags,
            redefine,
            flag(Create::VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT, "VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT"),
        )?;
        call.exclusive_flags(
            flags,
            redefine,
            flag(Create::VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA, "VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA"),
        )?;
        call.exclusive_flags(
            flags,
            redefine,
            flag(Create::VIR_DOMAIN_SNAPSHOT_CREATE_HALT, "VIR_DOMAIN_SNAPSHOT_CREATE_HALT"),
        )?;
        let halt = flags & Create::VIR_DOMAIN_SNAPSHOT_CREATE_HALT as c_uint != 0;
        let halts_running = halt && dom.conn.driver.domain_is_active(&dom.id).unwrap_or(false);
        let name = dom.conn.driver.snapshot_create_xml(&dom.id, xml, flags)?;
        if halts_running {
            dom.set_live_id(-1);
        }
        Ok(Handle::into_ptr(SnapshotRef::new(dom, name)))
    })
}

/// Returns the snapshot's XML (`VIR_DOMAIN_SNAPSHOT_XML_SECURE`); the caller frees it
/// with `free()`. `SECURE` is refused on read-only connections.
///
/// # Safety
/// `snapshot` must be NULL or a snapshot handle.
///
/// Since: 0.8.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainSnapshotGetXMLDesc(snapshot: virDomainSnapshotPtr, flags: c_uint) -> *mut c_char {
    entry(FROM, "virDomainSnapshotGetXMLDesc", |call| {
        // SAFETY: forwarded from the contract.
        let snap = unsafe { call.snapshot(snapshot)? };
        let conn = &snap.domain.conn;
        if conn.read_only && flags & VIR_DOMAIN_SNAPSHOT_XML_SECURE as c_uint != 0 {
            return Err(Error::new(
                FROM,
                Code::VIR_ERR_OPERATION_DENIED,
                "virDomainSnapshotGetXMLDesc with secure flag",
            ));
        }
        malloc_string(&conn.driver.snapshot_get_xml_desc(&snap.domain.id, &snap.name, flags)?)
    })
}

/// Counts a domain's snapshots (`virDomainSnapshotListFlags`).
///
/// # Safety
/// `domain` must be NULL or a domain handle.
///
/// Since: 0.8.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainSnapshotNum(domain: virDomainPtr, flags: c_uint) -> c_int {
    entry(FROM, "virDomainSnapshotNum", |call| {
        // SAFETY: forwarded from the contract.
        let dom = unsafe { call.domain(domain)? };
        let listing = dom.conn.driver.list_all_snapshots(&dom.id, flags, true, "virDomainSnapshotNum")?;
        Ok(c_int::try_from(listing.len()).unwrap_or(c_int::MAX))
    })
}

/// Writes the names of up to `nameslen` of a domain's snapshots into `names` (each freed
/// by the caller with `free()`); returns how many.
///
/// # Safety
/// `domain` must be NULL or a domain handle; `names` NULL or `nameslen` writable slots.
///
/// Since: 0.8.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainSnapshotListNames(
    domain: virDomainPtr,
    names: *mut *mut c_char,
    nameslen: c_int,
    flags: c_uint,
) -> c_int {
    entry(FROM, "virDomainSnapshotListNames", |call| {
        // SAFETY: forwarded from the contract.
        let dom = unsafe { call.domain(domain)? };
        call.array(names, i128::from(nameslen), "names")?;
        call.number(i128::from(nameslen), Number::NonNegative, "nameslen")?;
        let listing = dom.conn.driver.list_all_snapshots(&dom.id, flags, false, "virDomainSnapshotListNames")?;
        // SAFETY: forwarded from the contract.
        unsafe { write_names(listing, names, nameslen) }
    })
}

/// Lists a domain's snapshots (`virDomainSnapshotListFlags`). With a non-NULL `snaps`,
/// stores a `malloc()` array of new handles with a NULL after the last (free each with
/// `virDomainSnapshotFree()`, then the array with `free()`); `*snaps` is NULL on
/// failure. Returns the count or -1.
///
/// # Safety
/// `domain` must be NULL or a domain handle; `snaps` NULL or writable.
///
/// Since: 0.9.13
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainListAllSnapshots(
    domain: virDomainPtr,
    snaps: *mut *mut virDomainSnapshotPtr,
    flags: c_uint,
) -> c_int {
    if !snaps.is_null() {
        // SAFETY: `snaps` is writable (contract).
        unsafe { *snaps = ptr::null_mut() };
    }
    entry(FROM, "virDomainListAllSnapshots", |call| {
        // SAFETY: forwarded from the contract.
        let dom = unsafe { call.domain(domain)? };
        let listing =
            dom.conn.driver.list_all_snapshots(&dom.id, flags, snaps.is_null(), "virDomainListAllSnapshots")?;
        // SAFETY: forwarded from the contract.
        unsafe { hand_out(&dom, listing, snaps) }
    })
}

/// Counts a snapshot's children, or with `DESCENDANTS` all its descendants.
///
/// # Safety
/// `snapshot` must be NULL or a snapshot handle.
///
/// Since: 0.9.7
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainSnapshotNumChildren(snapshot: virDomainSnapshotPtr, flags: c_uint) -> c_int {
    entry(FROM, "virDomainSnapshotNumChildren", |call| {
        // SAFETY: forwarded from the contract.
        let snap = unsafe { call.snapshot(snapshot)? };
        let dom = &snap.domain;
        let listing = dom.conn.driver.snapshot_list_all_children(
            &dom.id,
            &snap.name,
            flags,
            true,
            "virDomainSnapshotNumChildren",
        )?;
        Ok(c_int::try_from(listing.len()).unwrap_or(c_int::MAX))
    })
}

/// Writes the names of up to `nameslen` of a snapshot's children (or descendants) into
/// `names`; returns how many.
///
/// # Safety
/// `snapshot` must be NULL or a snapshot handle; `names` NULL or `nameslen` writable slots.
///
/// Since: 0.9.7
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainSnapshotListChildrenNames(
    snapshot: virDomainSnapshotPtr,
    names: *mut *mut c_char,
    nameslen: c_int,
    flags: c_uint,
) -> c_int {
    entry(FROM, "virDomainSnapshotListChildrenNames", |call| {
        // SAFETY: forwarded from the contract.
        let snap = unsafe { call.snapshot(snapshot)? };
        call.array(names, i128::from(nameslen), "names")?;
        call.number(i128::from(nameslen), Number::NonNegative, "nameslen")?;
        let dom = &snap.domain;
        let listing = dom.conn.driver.snapshot_list_all_children(
            &dom.id,
            &snap.name,
            flags,
            false,
            "virDomainSnapshotListChildrenNames",
        )?;
        // SAFETY: forwarded from the contract.
        unsafe { write_names(listing, names, nameslen) }
    })
}

/// Lists a snapshot's children, or with `DESCENDANTS` all its descendants; otherwise as
/// `virDomainListAllSnapshots()`.
///
/// # Safety
/// `snapshot` must be NULL or a snapshot handle; `snaps` NULL or writable.
///
/// Since: 0.9.13
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainSnapshotListAllChildren(
    snapshot: virDomainSnapshotPtr,
    snaps: *mut *mut virDomainSnapshotPtr,
    flags: c_uint,
) -> c_int {
    if !snaps.is_null() {
        // SAFETY: `snaps` is writable (contract).
        unsafe { *snaps = ptr::null_mut() };
    }
    entry(FROM, "virDomainSnapshotListAllChildren", |call| {
        // SAFETY: forwarded from the contract.
        let snap = unsafe { call.snapshot(snapshot)? };
        let dom = &snap.domain;
        let listing = dom.conn.driver.snapshot_list_all_children(
            &dom.id,
            &snap.name,
            flags,
            snaps.is_null(),
            "virDomainSnapshotListAllChildren",
        )?;
        // SAFETY: forwarded from the contract.
        unsafe { hand_out(dom, listing, snaps) }
    })
}

/// Looks up a snapshot by name (`flags` must be 0). Returns a new handle, or NULL with
/// `VIR_ERR_NO_DOMAIN_SNAPSHOT`.
///
/// # Safety
/// `domain` must be NULL or a domain handle; `name` NULL or a NUL-terminated string.
///
/// Since: 0.8.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainSnapshotLookupByName(
    domain: virDomainPtr,
    name: *const c_char,
    flags: c_uint,
) -> virDomainSnapshotPtr {
    entry(FROM, "virDomainSnapshotLookupByName", |call| {
        // SAFETY: forwarded from the contract.
        let (dom, name) = unsafe { (call.domain(domain)?, call.string(name, "name")?) };
        dom.conn.driver.snapshot_lookup_by_name(&dom.id, name, flags)?;
        Ok(Handle::into_ptr(SnapshotRef::new(dom, name.to_string())))
    })
}

/// 1 when the domain has a current snapshot, 0 when not (`flags` must be 0).
///
/// # Safety
/// `domain` must be NULL or a domain handle.
///
/// Since: 0.8.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainHasCurrentSnapshot(domain: virDomainPtr, flags: c_uint) -> c_int {
    entry(FROM, "virDomainHasCurrentSnapshot", |call| {
        // SAFETY: forwarded from the contract.
        let dom = unsafe { call.domain(domain)? };
        Ok(c_int::from(dom.conn.driver.has_current_snapshot(&dom.id, flags)?))
    })
}

/// Returns a new handle for the domain's current snapshot (`flags` must be 0), or NULL
/// with `VIR_ERR_NO_DOMAIN_SNAPSHOT` when there is none.
///
/// # Safety
/// `domain` must be NULL or a domain handle.
///
/// Since: 0.8.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainSnapshotCurrent(domain: virDomainPtr, flags: c_uint) -> virDomainSnapshotPtr {
    entry(FROM, "virDomainSnapshotCurrent", |call| {
        // SAFETY: forwarded from the contract.
        let dom = unsafe { call.domain(domain)? };
        let name = dom.conn.driver.snapshot_current(&dom.id, flags)?;
        Ok(Handle::into_ptr(SnapshotRef::new(dom, name)))
    })
}

/// Returns a new handle for the snapshot's parent (`flags` must be 0). A root fails with
/// `VIR_ERR_NO_DOMAIN_SNAPSHOT`.
///
/// # Safety
/// `snapshot` must be NULL or a snapshot handle.
///
/// Since: 0.9.7
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainSnapshotGetParent(
    snapshot: virDomainSnapshotPtr,
    flags: c_uint,
) -> virDomainSnapshotPtr {
    entry(FROM, "virDomainSnapshotGetParent", |call| {
        // SAFETY: forwarded from the contract.
        let snap = unsafe { call.snapshot(snapshot)? };
        let dom = snap.domain.clone();
        let parent = dom.conn.driver.snapshot_get_parent(&dom.id, &snap.name, flags)?;
        Ok(Handle::into_ptr(SnapshotRef::new(dom, parent)))
    })
}

/// 1 when the snapshot is its domain's current one, 0 when not (`flags` must be 0).
///
/// # Safety
/// `snapshot` must be NULL or a snapshot handle.
///
/// Since: 0.9.13
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainSnapshotIsCurrent(snapshot: virDomainSnapshotPtr, flags: c_uint) -> c_int {
    entry(FROM, "virDomainSnapshotIsCurrent", |call| {
        // SAFETY: forwarded from the contract.
        let snap = unsafe { call.snapshot(snapshot)? };
        Ok(c_int::from(snap.domain.conn.driver.snapshot_is_current(&snap.domain.id, &snap.name, flags)?))
    })
}

/// 1 when the snapshot has metadata that `virDomainSnapshotDelete()` with
/// `METADATA_ONLY` would remove, 0 when not (`flags` must be 0).
///
/// # Safety
/// `snapshot` must be NULL or a snapshot handle.
///
/// Since: 0.9.13
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainSnapshotHasMetadata(snapshot: virDomainSnapshotPtr, flags: c_uint) -> c_int {
    entry(FROM, "virDomainSnapshotHasMetadata", |call| {
        // SAFETY: forwarded from the contract.
        let snap = unsafe { call.snapshot(snapshot)? };
        Ok(c_int::from(snap.domain.conn.driver.snapshot_has_metadata(&snap.domain.id, &snap.name, flags)?))
    })
}

/// Reverts the domain to the snapshot (`virDomainSnapshotRevertFlags`: RUNNING and PAUSED
/// choose the state afterwards, FORCE allows risky reverts). Returns 0 or -1.
///
/// # Safety
/// `snapshot` must be NULL or a snapshot handle.
///
/// Since: 0.8.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainRevertToSnapshot(snapshot: virDomainSnapshotPtr, flags: c_uint) -> c_int {
    entry(FROM, "virDomainRevertToSnapshot", |call| {
        // SAFETY: forwarded from the contract.
        let snap = unsafe { call.snapshot(snapshot)? };
        call.writable(&snap.domain.conn)?;
        call.exclusive_flags(
            flags,
            (Revert::VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING as c_uint, "VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING"),
            (Revert::VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED as c_uint, "VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED"),
        )?;
        let driver = &snap.domain.conn.driver;
        // A revert stops a running domain (and may start it again, with a new id): like
        // libvirt, the snapshot's domain handle then reports id -1.
        let was_active = driver.domain_is_active(&snap.domain.id).unwrap_or(false);
        driver.revert_to_snapshot(&snap.domain.id, &snap.name, flags)?;
        if was_active {
            snap.domain.set_live_id(-1);
        }
        Ok(0)
    })
}

/// Deletes a snapshot (`virDomainSnapshotDeleteFlags`). Its children move to its parent;
/// `CHILDREN` also deletes its descendants, `CHILDREN_ONLY` only them; `METADATA_ONLY`
/// keeps the data in the images. The handle stays valid. Returns 0 or -1.
///
/// # Safety
/// `snapshot` must be NULL or a snapshot handle.
///
/// Since: 0.8.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainSnapshotDelete(snapshot: virDomainSnapshotPtr, flags: c_uint) -> c_int {
    entry(FROM, "virDomainSnapshotDelete", |call| {
        // SAFETY: forwarded from the contract.
        let snap = unsafe { call.snapshot(snapshot)? };
        call.writable(&snap.domain.conn)?;
        call.exclusive_flags(
            flags,
            (Delete::VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN as c_uint, "VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN"),
            (Delete::VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY as c_uint, "VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY"),
        )?;
        snap.domain.conn.driver.snapshot_delete(&snap.domain.id, &snap.name, flags)?;
        Ok(0)
    })
}

/// Adds a reference to a snapshot handle. Returns 0 or -1.
///
/// # Safety
/// `snapshot` must be NULL or a snapshot handle.
///
/// Since: 0.9.13
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainSnapshotRef(snapshot: virDomainSnapshotPtr) -> c_int {
    entry(FROM, "virDomainSnapshotRef", |call| {
        // SAFETY: forwarded from the contract.
        let handle = unsafe { call.snapshot(snapshot)? };
        std::mem::forget(handle);
        Ok(0)
    })
}

/// Drops one reference on a snapshot handle (not on the snapshot). NULL is an error, as
/// in libvirt. Returns 0 or -1.
///
/// # Safety
/// `snapshot` must be NULL or a snapshot handle the caller owns a reference on.
///
/// Since: 0.8.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainSnapshotFree(snapshot: virDomainSnapshotPtr) -> c_int {
    entry(FROM, "virDomainSnapshotFree", |call| {
        // SAFETY: forwarded from the contract.
        let handle = unsafe { call.snapshot(snapshot)? };
        // SAFETY: the caller owns the reference being dropped.
        unsafe { Handle::release(&handle, snapshot) };
        Ok(0)
    })
}

/// Returns the snapshot's name; the string belongs to the handle.
///
/// # Safety
/// `snapshot` must be NULL or a snapshot handle.
///
/// Since: 0.9.13
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainSnapshotGetName(snapshot: virDomainSnapshotPtr) -> *const c_char {
    entry(FROM, "virDomainSnapshotGetName", |call: &mut Call| {
        // SAFETY: forwarded from the contract.
        let snap = unsafe { call.snapshot(snapshot)? };
        // The name lives as long as the handle, which the caller holds.
        Ok(snap.c_name().as_ptr())
    })
}

/// Returns the snapshot's domain, without adding a reference.
///
/// # Safety
/// `snapshot` must be NULL or a snapshot handle.
///
/// Since: 0.9.13
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainSnapshotGetDomain(snapshot: virDomainSnapshotPtr) -> virDomainPtr {
    entry(FROM, "virDomainSnapshotGetDomain", |call| {
        // SAFETY: forwarded from the contract.
        let snap = unsafe { call.snapshot(snapshot)? };
        Ok(Handle::as_ptr(&snap.domain))
    })
}

/// Returns the snapshot's connection, without adding a reference.
///
/// # Safety
/// `snapshot` must be NULL or a snapshot handle.
///
/// Since: 0.9.13
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainSnapshotGetConnect(snapshot: virDomainSnapshotPtr) -> virConnectPtr {
    entry(FROM, "virDomainSnapshotGetConnect", |call| {
        // SAFETY: forwarded from the contract.
        let snap = unsafe { call.snapshot(snapshot)? };
        Ok(Handle::as_ptr(&snap.domain.conn))
    })
}

//! Checkpoint entry points (`libvirt-domain-checkpoint.c`), in libvirt's check order:
//! handle, NULL arguments, read-only access, flag combinations, then the driver.

use std::ffi::{c_char, c_int, c_uint};
use std::ptr;
use std::sync::Arc;

use super::alloc::{malloc_null_terminated, malloc_string};
use super::handles::{CheckpointRef, DomainHandle, Handle};
use super::{Call, entry};
use crate::abi::{
    virConnectPtr, virDomainCheckpointCreateFlags as Create, virDomainCheckpointDeleteFlags as Delete,
    virDomainCheckpointPtr, virDomainCheckpointXMLFlags as Xml, virDomainPtr,
};
use crate::driver::Listing;
use crate::error::{Code, Domain, Error, Result};

const FROM: Domain = Domain::VIR_FROM_DOMAIN_CHECKPOINT;

/// Turns a listing into the caller's array of new handles (when asked) and the count.
///
/// # Safety
/// `out` must be NULL or writable.
unsafe fn hand_out(
    domain: &Arc<DomainHandle>,
    listing: Listing,
    out: *mut *mut virDomainCheckpointPtr,
) -> Result<c_int> {
    let count = c_int::try_from(listing.len()).unwrap_or(c_int::MAX);
    if let (false, Listing::Names(names)) = (out.is_null(), listing) {
        let handles = names.into_iter().map(|n| Handle::into_ptr(CheckpointRef::new(domain.clone(), n))).collect();
        // SAFETY: `out` is writable (contract).
        unsafe { *out = malloc_null_terminated(handles)? };
    }
    Ok(count)
}

/// Creates a checkpoint from `<domaincheckpoint>` XML (`virDomainCheckpointCreateFlags`),
/// or with `REDEFINE` restores the metadata of an existing one. Returns a new handle
/// (release with `virDomainCheckpointFree()`), or NULL.
///
/// # Safety
/// `domain` must be NULL or a domain handle; `xmlDesc` NULL or a NUL-terminated string.
///
/// Since: 5.6.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainCheckpointCreateXML(
    domain: virDomainPtr,
    xmlDesc: *const c_char,
    flags: c_uint,
) -> virDomainCheckpointPtr {
    entry(FROM, "virDomainCheckpointCreateXML", |call| {
        // SAFETY: forwarded from the contract.
        let (dom, xml) = unsafe { (call.domain(domain)?, call.string(xmlDesc, "xmlDesc")?) };
        call.writable(&dom.conn)?;
        let redefine =
            (Create::VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE as c_uint, "VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE");
        let quiesce = (Create::VIR_DOMAIN_CHECKPOINT_CREATE_QUIESCE as c_uint, "VIR_DOMAIN_CHECKPOINT_CREATE_QUIESCE");
        let validate = (
            Create::VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE_VALIDATE as c_uint,
            "VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE_VALIDATE",
        );
        call.exclusive_flags(flags, redefine, quiesce)?;
        call.required_flag(flags, redefine, validate)?;
        let name = dom.conn.driver.checkpoint_create_xml(&dom.id, xml, flags)?;
        Ok(Handle::into_ptr(CheckpointRef::new(dom, name)))
    })
}

/// Returns the checkpoint's XML (`virDomainCheckpointXMLFlags`); the caller frees it with
/// `free()`. `SECURE` is refused on read-only connections.
///
/// # Safety
/// `checkpoint` must be NULL or a checkpoint handle.
///
/// Since: 5.6.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainCheckpointGetXMLDesc(
    checkpoint: virDomainCheckpointPtr,
    flags: c_uint,
) -> *mut c_char {
    entry(FROM, "virDomainCheckpointGetXMLDesc", |call| {
        // SAFETY: forwarded from the contract.
        let cp = unsafe { call.checkpoint(checkpoint)? };
        let conn = &cp.domain.conn;
        if conn.read_only && flags & Xml::VIR_DOMAIN_CHECKPOINT_XML_SECURE as c_uint != 0 {
            return Err(Error::new(
                FROM,
                Code::VIR_ERR_OPERATION_DENIED,
                "virDomainCheckpointGetXMLDesc with secure flag",
            ));
        }
        malloc_string(&conn.driver.checkpoint_get_xml_desc(&cp.domain.id, &cp.name, flags)?)
    })
}

/// Lists a domain's checkpoints (`virDomainCheckpointListFlags`: ROOTS, TOPOLOGICAL,
/// LEAVES, NO_LEAVES). With a non-NULL `checkpoints`, stores a `malloc()` array of new
/// handles with a NULL after the last (free each with `virDomainCheckpointFree()`, then
/// the array with `free()`); `*checkpoints` is NULL on failure. Returns the count or -1.
///
/// # Safety
/// `domain` must be NULL or a domain handle; `checkpoints` NULL or writable.
///
/// Since: 5.6.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainListAllCheckpoints(
    domain: virDomainPtr,
    checkpoints: *mut *mut virDomainCheckpointPtr,
    flags: c_uint,
) -> c_int {
    if !checkpoints.is_null() {
        // SAFETY: `checkpoints` is writable (contract).
        unsafe { *checkpoints = ptr::null_mut() };
    }
    entry(FROM, "virDomainListAllCheckpoints", |call| {
        // SAFETY: forwarded from the contract.
        let dom = unsafe { call.domain(domain)? };
        let listing = dom.conn.driver.list_all_checkpoints(&dom.id, flags, checkpoints.is_null())?;
        // SAFETY: forwarded from the contract.
        unsafe { hand_out(&dom, listing, checkpoints) }
    })
}

/// Lists a checkpoint's children, or with `DESCENDANTS` all its descendants; otherwise
/// as `virDomainListAllCheckpoints()`.
///
/// # Safety
/// `checkpoint` must be NULL or a checkpoint handle; `children` NULL or writable.
///
/// Since: 5.6.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainCheckpointListAllChildren(
    checkpoint: virDomainCheckpointPtr,
    children: *mut *mut virDomainCheckpointPtr,
    flags: c_uint,
) -> c_int {
    if !children.is_null() {
        // SAFETY: `children` is writable (contract).
        unsafe { *children = ptr::null_mut() };
    }
    entry(FROM, "virDomainCheckpointListAllChildren", |call| {
        // SAFETY: forwarded from the contract.
        let cp = unsafe { call.checkpoint(checkpoint)? };
        let dom = &cp.domain;
        let listing = dom.conn.driver.checkpoint_list_all_children(&dom.id, &cp.name, flags, children.is_null())?;
        // SAFETY: forwarded from the contract.
        unsafe { hand_out(dom, listing, children) }
    })
}

/// Looks up a checkpoint by name (`flags` must be 0). Returns a new handle, or NULL with
/// `VIR_ERR_NO_DOMAIN_CHECKPOINT`.
///
/// # Safety
/// `domain` must be NULL or a domain handle; `name` NULL or a NUL-terminated string.
///
/// Since: 5.6.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainCheckpointLookupByName(
    domain: virDomainPtr,
    name: *const c_char,
    flags: c_uint,
) -> virDomainCheckpointPtr {
    entry(FROM, "virDomainCheckpointLookupByName", |call| {
        // SAFETY: forwarded from the contract.
        let (dom, name) = unsafe { (call.domain(domain)?, call.string(name, "name")?) };
        dom.conn.driver.checkpoint_lookup_by_name(&dom.id, name, flags)?;
        Ok(Handle::into_ptr(CheckpointRef::new(dom, name.to_string())))
    })
}

/// Returns a new handle for the checkpoint's parent (`flags` must be 0). A root fails
/// with `VIR_ERR_NO_DOMAIN_CHECKPOINT`.
///
/// # Safety
/// `checkpoint` must be NULL or a checkpoint handle.
///
/// Since: 5.6.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainCheckpointGetParent(
    checkpoint: virDomainCheckpointPtr,
    flags: c_uint,
) -> virDomainCheckpointPtr {
    entry(FROM, "virDomainCheckpointGetParent", |call| {
        // SAFETY: forwarded from the contract.
        let cp = unsafe { call.checkpoint(checkpoint)? };
        let dom = cp.domain.clone();
        let parent = dom.conn.driver.checkpoint_get_parent(&dom.id, &cp.name, flags)?;
        Ok(Handle::into_ptr(CheckpointRef::new(dom, parent)))
    })
}

/// Deletes a checkpoint (`virDomainCheckpointDeleteFlags`). Its children move to its
/// parent; `CHILDREN` also deletes its descendants, `CHILDREN_ONLY` only them;
/// `METADATA_ONLY` keeps the bitmaps. The handle stays valid. Returns 0 or -1.
///
/// # Safety
/// `checkpoint` must be NULL or a checkpoint handle.
///
/// Since: 5.6.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainCheckpointDelete(checkpoint: virDomainCheckpointPtr, flags: c_uint) -> c_int {
    entry(FROM, "virDomainCheckpointDelete", |call| {
        // SAFETY: forwarded from the contract.
        let cp = unsafe { call.checkpoint(checkpoint)? };
        call.writable(&cp.domain.conn)?;
        call.exclusive_flags(
            flags,
            (Delete::VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN as c_uint, "VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN"),
            (
                Delete::VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN_ONLY as c_uint,
                "VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN_ONLY",
            ),
        )?;
        cp.domain.conn.driver.checkpoint_delete(&cp.domain.id, &cp.name, flags)?;
        Ok(0)
    })
}

/// Adds a reference to a checkpoint handle. Returns 0 or -1.
///
/// # Safety
/// `checkpoint` must be NULL or a checkpoint handle.
///
/// Since: 5.6.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainCheckpointRef(checkpoint: virDomainCheckpointPtr) -> c_int {
    entry(FROM, "virDomainCheckpointRef", |call| {
        // SAFETY: forwarded from the contract.
        let handle = unsafe { call.checkpoint(checkpoint)? };
        std::mem::forget(handle);
        Ok(0)
    })
}

/// Drops one reference on a checkpoint handle (not on the checkpoint). NULL is an
/// error, as in libvirt. Returns 0 or -1.
///
/// # Safety
/// `checkpoint` must be NULL or a checkpoint handle the caller owns a reference on.
///
/// Since: 5.6.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainCheckpointFree(checkpoint: virDomainCheckpointPtr) -> c_int {
    entry(FROM, "virDomainCheckpointFree", |call| {
        // SAFETY: forwarded from the contract.
        let handle = unsafe { call.checkpoint(checkpoint)? };
        // SAFETY: the caller owns the reference being dropped.
        unsafe { Handle::release(&handle, checkpoint) };
        Ok(0)
    })
}

/// Returns the checkpoint's name; the string belongs to the handle.
///
/// # Safety
/// `checkpoint` must be NULL or a checkpoint handle.
///
/// Since: 5.6.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainCheckpointGetName(checkpoint: virDomainCheckpointPtr) -> *const c_char {
    entry(FROM, "virDomainCheckpointGetName", |call: &mut Call| {
        // SAFETY: forwarded from the contract.
        let cp = unsafe { call.checkpoint(checkpoint)? };
        // The name lives as long as the handle, which the caller holds.
        Ok(cp.c_name().as_ptr())
    })
}

/// Returns the checkpoint's domain, without adding a reference.
///
/// # Safety
/// `checkpoint` must be NULL or a checkpoint handle.
///
/// Since: 5.6.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainCheckpointGetDomain(checkpoint: virDomainCheckpointPtr) -> virDomainPtr {
    entry(FROM, "virDomainCheckpointGetDomain", |call| {
        // SAFETY: forwarded from the contract.
        let cp = unsafe { call.checkpoint(checkpoint)? };
        Ok(Handle::as_ptr(&cp.domain))
    })
}

/// Returns the checkpoint's connection, without adding a reference.
///
/// # Safety
/// `checkpoint` must be NULL or a checkpoint handle.
///
/// Since: 5.6.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainCheckpointGetConnect(checkpoint: virDomainCheckpointPtr) -> virConnectPtr {
    entry(FROM, "virDomainCheckpointGetConnect", |call| {
        // SAFETY: forwarded from the contract.
        let cp = unsafe { call.checkpoint(checkpoint)? };
        Ok(Handle::as_ptr(&cp.domain.conn))
    })
}

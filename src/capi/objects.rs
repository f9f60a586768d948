//! Reference counting of the handles of libvirt's other drivers (networks, storage,
//! interfaces, node devices, secrets, network filters, streams, snapshots), and
//! `virStreamNew()`, the one call that makes such a handle without a driver.
//!
//! Each `*Ref` adds a reference and each `*Free` drops one, after libvirt's check of
//! the handle: a NULL or foreign pointer is the kind's "invalid" error, never a crash.
//! api/generate.py writes the entry points (`virNetworkRef()`, `virNetworkFree()`, ...)
//! on top of [`add_ref`] and [`release`].

use std::ffi::{c_int, c_uint};

use super::entry;
use super::handles::{Handle, ObjectKind, ObjectRef, StreamRef};
use crate::abi::{virConnectPtr, virStreamPtr};
use crate::error::{Domain, Result};

/// `vir*Ref`: one more reference.
///
/// # Safety
/// `ptr` must be NULL or a handle.
pub unsafe fn add_ref<K: ObjectKind>(from: Domain, api: &'static str, ptr: *mut K::Opaque) -> c_int {
    entry(from, api, |call| {
        // SAFETY: forwarded from the contract.
        let handle = unsafe { call.object::<K>(ptr)? };
        std::mem::forget(handle);
        Ok(0)
    })
}

/// `vir*Free`: one reference less; the object goes with the last.
///
/// # Safety
/// `ptr` must be NULL or a handle the caller owns a reference on.
pub unsafe fn release<K: ObjectKind>(from: Domain, api: &'static str, ptr: *mut K::Opaque) -> c_int {
    entry(from, api, |call| -> Result<c_int> {
        // SAFETY: forwarded from the contract.
        let handle = unsafe { call.object::<K>(ptr)? };
        // SAFETY: the caller owns the reference being dropped.
        unsafe { Handle::release(&handle, ptr) };
        Ok(0)
    })
}

/// Makes a stream for the calls that move data through one (`virDomainOpenConsole()`,
/// `virStorageVolUpload()`, ...). No driver here moves data through streams, so those
/// calls fail with `VIR_ERR_NO_SUPPORT`; the stream itself is released with
/// `virStreamFree()`. `flags` is a `virStreamFlags` mask.
///
/// # Safety
/// `conn` must be NULL or a connection handle.
///
/// Since: 0.7.2
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virStreamNew(conn: virConnectPtr, flags: c_uint) -> virStreamPtr {
    let _ = flags;
    entry(Domain::VIR_FROM_STREAMS, "virStreamNew", |call| {
        // SAFETY: forwarded from the contract.
        let conn = unsafe { call.conn(conn)? };
        Ok(Handle::into_ptr(Handle::<StreamRef>::new(ObjectRef::new(conn, ""))))
    })
}

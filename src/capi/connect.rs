//! Library and connection entry points (`libvirt.c`, `libvirt-host.c`).

use std::ffi::{c_char, c_int, c_uint, c_ulong, c_void};
use std::ptr;
use std::sync::Arc;

use super::alloc::{fill_strings, malloc_null_terminated, malloc_string};
use super::handles::{CloseCallback, Connection, DomainRef, Handle};
use super::unsupported::Number;
use super::{Call, entry, sys};
use crate::abi::{
    LIBVIR_VERSION_NUMBER, virConnectAuth, virConnectAuthPtr, virConnectCloseFunc, virConnectCredentialType as Cred,
    virConnectFlags, virConnectListAllDomainsFlags as ListFlags, virConnectPtr, virDomainPtr, virFreeCallback,
};
use crate::driver;
use crate::error::{Domain, Error, Result};

/// Errors of the functions in libvirt's `libvirt.c` carry no domain.
const FROM_LIB: Domain = Domain::VIR_FROM_NONE;
/// Errors of the connection functions in `libvirt-host.c` and `libvirt-domain.c`.
const FROM_HOST: Domain = Domain::VIR_FROM_DOMAIN;

/// Initializes the library. Calling it is optional and harmless; returns 0.
///
/// Since: 0.1.0
#[unsafe(no_mangle)]
pub extern "C" fn virInitialize() -> c_int {
    0
}

/// Reports the library version (`major * 1000000 + minor * 1000 + micro`) in `libVer`,
/// and the same number in `typeVer` when it is given. `type` is ignored, as in libvirt.
/// Returns 0, or -1 when `libVer` is NULL.
///
/// # Safety
/// `libVer` and `typeVer` must be NULL or writable.
///
/// Since: 0.0.3
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virGetVersion(libVer: *mut c_ulong, r#type: *const c_char, typeVer: *mut c_ulong) -> c_int {
    let _ = r#type;
    entry(FROM_LIB, "virGetVersion", |_| {
        if libVer.is_null() {
            return Err(Error::unknown_cause());
        }
        // SAFETY: both pointers are writable when non-NULL (contract).
        unsafe {
            *libVer = c_ulong::from(LIBVIR_VERSION_NUMBER);
            if !typeVer.is_null() {
                *typeVer = c_ulong::from(LIBVIR_VERSION_NUMBER);
            }
        }
        Ok(0)
    })
}

/// The URI used when the caller passes NULL or "": `LIBVIRT_DEFAULT_URI`, else the
/// test driver.
fn default_uri() -> String {
    std::env::var("LIBVIRT_DEFAULT_URI")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| driver::DEFAULT_URI.to_string())
}

/// Opens a connection: the shared part of the three `virConnectOpen*` calls.
///
/// # Safety
/// `name` must be NULL or a NUL-terminated string.
unsafe fn open(call: &mut Call, name: *const c_char, flags: c_uint) -> Result<virConnectPtr> {
    let uri = if name.is_null() {
        default_uri()
    } else {
        // SAFETY: forwarded from the contract.
        let given = unsafe { call.string(name, "name")? };
        if given.is_empty() { default_uri() } else { given.to_string() }
    };
    let driver = driver::open(&uri, flags)?;
    let read_only = flags & virConnectFlags::VIR_CONNECT_RO as c_uint != 0;
    Ok(Handle::into_ptr(Connection::new(uri, read_only, driver)))
}

/// Opens a connection to the driver named by `name` (`test:///default`,
/// `qemu:///embed?root=DIR`, ...). NULL or "" uses `LIBVIRT_DEFAULT_URI`, or
/// `test:///default` when that is unset. Release the connection with
/// `virConnectClose()`.
///
/// # Safety
/// `name` must be NULL or a NUL-terminated string.
///
/// Since: 0.0.3
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virConnectOpen(name: *const c_char) -> virConnectPtr {
    // SAFETY: forwarded from the contract.
    entry(FROM_LIB, "virConnectOpen", |call| unsafe { open(call, name, 0) })
}

/// Like `virConnectOpen()`, but the connection refuses every call that changes state.
///
/// # Safety
/// `name` must be NULL or a NUL-terminated string.
///
/// Since: 0.0.3
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virConnectOpenReadOnly(name: *const c_char) -> virConnectPtr {
    // SAFETY: forwarded from the contract.
    entry(FROM_LIB, "virConnectOpenReadOnly", |call| unsafe {
        open(call, name, virConnectFlags::VIR_CONNECT_RO as c_uint)
    })
}

/// Like `virConnectOpen()`, with `virConnectFlags` and authentication parameters. The
/// drivers here are local and never ask for credentials, so `auth` is not used.
///
/// # Safety
/// `name` must be NULL or a NUL-terminated string.
///
/// Since: 0.4.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virConnectOpenAuth(
    name: *const c_char,
    auth: virConnectAuthPtr,
    flags: c_uint,
) -> virConnectPtr {
    let _ = auth;
    // SAFETY: forwarded from the contract.
    entry(FROM_LIB, "virConnectOpenAuth", |call| unsafe { open(call, name, flags) })
}

/// Drops one reference on a connection. Returns 0 when the connection was released, a
/// positive number (1) while references remain (domain handles hold one each), or -1.
///
/// # Safety
/// `conn` must be NULL or a connection handle the caller owns a reference on.
///
/// Since: 0.0.3
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virConnectClose(conn: virConnectPtr) -> c_int {
    entry(FROM_LIB, "virConnectClose", |call| {
        // SAFETY: forwarded from the contract.
        let handle = unsafe { call.conn(conn)? };
        // The call's own error target must not keep the connection alive.
        call.conn = None;
        // SAFETY: the caller owns the reference being dropped.
        let left = unsafe { Handle::release(&handle, conn) };
        Ok(c_int::from(left > 0))
    })
}

/// Adds a reference to a connection; each reference needs its own `virConnectClose()`.
/// Returns 0, or -1 for an invalid connection.
///
/// # Safety
/// `conn` must be NULL or a connection handle.
///
/// Since: 0.6.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virConnectRef(conn: virConnectPtr) -> c_int {
    entry(FROM_HOST, "virConnectRef", |call| {
        // SAFETY: forwarded from the contract.
        let handle = unsafe { call.conn(conn)? };
        std::mem::forget(handle);
        Ok(0)
    })
}

/// Returns the connection's URI; the caller frees it with `free()`.
///
/// # Safety
/// `conn` must be NULL or a connection handle.
///
/// Since: 0.3.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virConnectGetURI(conn: virConnectPtr) -> *mut c_char {
    entry(FROM_HOST, "virConnectGetURI", |call| {
        // SAFETY: forwarded from the contract.
        let conn = unsafe { call.conn(conn)? };
        malloc_string(&conn.uri)
    })
}

/// Returns the driver name (`TEST`, `QEMU`); the string belongs to the connection.
///
/// # Safety
/// `conn` must be NULL or a connection handle.
///
/// Since: 0.0.3
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virConnectGetType(conn: virConnectPtr) -> *const c_char {
    entry(FROM_HOST, "virConnectGetType", |call| {
        // SAFETY: forwarded from the contract.
        let conn = unsafe { call.conn(conn)? };
        // The string lives as long as the connection, which the caller holds.
        Ok(conn.type_name.as_ptr())
    })
}

/// Stores the hypervisor version in `hvVer`. Returns 0 or -1.
///
/// # Safety
/// `conn` must be NULL or a connection handle; `hvVer` NULL or writable.
///
/// Since: 0.0.3
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virConnectGetVersion(conn: virConnectPtr, hvVer: *mut c_ulong) -> c_int {
    entry(FROM_HOST, "virConnectGetVersion", |call| {
        // SAFETY: forwarded from the contract.
        let conn = unsafe { call.conn(conn)? };
        call.non_null(hvVer, "hvVer")?;
        let version = conn.driver.connect_get_version()?;
        // SAFETY: `hvVer` is non-NULL and writable.
        unsafe { *hvVer = version as c_ulong };
        Ok(0)
    })
}

/// Stores the library version in `libVer`. Returns 0 or -1.
///
/// # Safety
/// `conn` must be NULL or a connection handle; `libVer` NULL or writable.
///
/// Since: 0.7.3
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virConnectGetLibVersion(conn: virConnectPtr, libVer: *mut c_ulong) -> c_int {
    entry(FROM_HOST, "virConnectGetLibVersion", |call| {
        // SAFETY: forwarded from the contract.
        unsafe { call.conn(conn)? };
        call.non_null(libVer, "libVer")?;
        // SAFETY: `libVer` is non-NULL and writable.
        unsafe { *libVer = c_ulong::from(LIBVIR_VERSION_NUMBER) };
        Ok(0)
    })
}

/// Returns the name of the host the driver runs on (this host); the caller frees it
/// with `free()`.
///
/// # Safety
/// `conn` must be NULL or a connection handle.
///
/// Since: 0.3.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virConnectGetHostname(conn: virConnectPtr) -> *mut c_char {
    entry(FROM_HOST, "virConnectGetHostname", |call| {
        // SAFETY: forwarded from the contract.
        unsafe { call.conn(conn)? };
        let name = sys::hostname().map_err(|e| Error::system(FROM_HOST, "failed to determine host name", &e))?;
        malloc_string(&name)
    })
}

/// Returns 1: connections to the in-process drivers cannot die. -1 for an invalid
/// connection.
///
/// # Safety
/// `conn` must be NULL or a connection handle.
///
/// Since: 0.9.8
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virConnectIsAlive(conn: virConnectPtr) -> c_int {
    // SAFETY: forwarded from the contract.
    entry(FROM_HOST, "virConnectIsAlive", |call| unsafe { call.conn(conn).map(|_| 1) })
}

/// Returns 1: nothing leaves the process, so the channel is secure. -1 for an invalid
/// connection.
///
/// # Safety
/// `conn` must be NULL or a connection handle.
///
/// Since: 0.7.3
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virConnectIsSecure(conn: virConnectPtr) -> c_int {
    // SAFETY: forwarded from the contract.
    entry(FROM_HOST, "virConnectIsSecure", |call| unsafe { call.conn(conn).map(|_| 1) })
}

/// Returns 0: there is no channel to encrypt. -1 for an invalid connection.
///
/// # Safety
/// `conn` must be NULL or a connection handle.
///
/// Since: 0.7.3
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virConnectIsEncrypted(conn: virConnectPtr) -> c_int {
    // SAFETY: forwarded from the contract.
    entry(FROM_HOST, "virConnectIsEncrypted", |call| unsafe { call.conn(conn).map(|_| 0) })
}

/// Lists the domains that pass the `virConnectListAllDomainsFlags` filters. With a
/// non-NULL `domains`, stores a `malloc()` array of new handles with a NULL after the
/// last one (free each with `virDomainFree()`, then the array with `free()`). Returns the
/// number of domains, or -1.
///
/// # Safety
/// `conn` must be NULL or a connection handle; `domains` NULL or writable.
///
/// Since: 0.9.13
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virConnectListAllDomains(
    conn: virConnectPtr,
    domains: *mut *mut virDomainPtr,
    flags: c_uint,
) -> c_int {
    if !domains.is_null() {
        // SAFETY: `domains` is writable (contract).
        unsafe { *domains = ptr::null_mut() };
    }
    entry(FROM_HOST, "virConnectListAllDomains", |call| {
        // SAFETY: forwarded from the contract.
        let conn = unsafe { call.conn(conn)? };
        let found = conn.driver.connect_list_all_domains(flags)?;
        let count = c_int::try_from(found.len()).unwrap_or(c_int::MAX);
        if !domains.is_null() {
            let handles = found.into_iter().map(|id| Handle::into_ptr(DomainRef::new(Arc::clone(&conn), id))).collect();
            // SAFETY: `domains` is writable (contract).
            unsafe { *domains = malloc_null_terminated(handles)? };
        }
        Ok(count)
    })
}

/// Returns the number of active domains, or -1.
///
/// # Safety
/// `conn` must be NULL or a connection handle.
///
/// Since: 0.0.3
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virConnectNumOfDomains(conn: virConnectPtr) -> c_int {
    entry(FROM_HOST, "virConnectNumOfDomains", |call| {
        // SAFETY: forwarded from the contract.
        let conn = unsafe { call.conn(conn)? };
        conn.driver.connect_num_of_domains()
    })
}

/// Writes the ids of up to `maxids` active domains into `ids`; returns how many.
///
/// # Safety
/// `conn` must be NULL or a connection handle; `ids` NULL or `maxids` writable slots.
///
/// Since: 0.0.3
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virConnectListDomains(conn: virConnectPtr, ids: *mut c_int, maxids: c_int) -> c_int {
    entry(FROM_HOST, "virConnectListDomains", |call| {
        // SAFETY: forwarded from the contract.
        let conn = unsafe { call.conn(conn)? };
        call.array(ids, i128::from(maxids), "ids")?;
        call.number(i128::from(maxids), Number::NonNegative, "maxids")?;
        let active = conn.driver.connect_list_all_domains(ListFlags::VIR_CONNECT_LIST_DOMAINS_ACTIVE as c_uint)?;
        let wanted = active.iter().take(usize::try_from(maxids).unwrap_or(0));
        let mut written = 0;
        for dom in wanted {
            // SAFETY: `written < maxids`, inside the caller's array.
            unsafe { *ids.add(written) = dom.id };
            written += 1;
        }
        Ok(c_int::try_from(written).unwrap_or(c_int::MAX))
    })
}

/// Returns the number of defined but inactive domains, or -1.
///
/// # Safety
/// `conn` must be NULL or a connection handle.
///
/// Since: 0.1.5
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virConnectNumOfDefinedDomains(conn: virConnectPtr) -> c_int {
    entry(FROM_HOST, "virConnectNumOfDefinedDomains", |call| {
        // SAFETY: forwarded from the contract.
        let conn = unsafe { call.conn(conn)? };
        let inactive = conn.driver.connect_list_all_domains(ListFlags::VIR_CONNECT_LIST_DOMAINS_INACTIVE as c_uint)?;
        Ok(c_int::try_from(inactive.len()).unwrap_or(c_int::MAX))
    })
}

/// Writes the names of up to `maxnames` defined but inactive domains into `names` (each
/// freed by the caller with `free()`); returns how many.
///
/// # Safety
/// `conn` must be NULL or a connection handle; `names` NULL or `maxnames` writable slots.
///
/// Since: 0.1.1
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virConnectListDefinedDomains(
    conn: virConnectPtr,
    names: *mut *mut c_char,
    maxnames: c_int,
) -> c_int {
    entry(FROM_HOST, "virConnectListDefinedDomains", |call| {
        // SAFETY: forwarded from the contract.
        let conn = unsafe { call.conn(conn)? };
        call.array(names, i128::from(maxnames), "names")?;
        call.number(i128::from(maxnames), Number::NonNegative, "maxnames")?;
        let inactive = conn.driver.connect_list_all_domains(ListFlags::VIR_CONNECT_LIST_DOMAINS_INACTIVE as c_uint)?;
        let wanted: Vec<&str> =
            inactive.iter().take(usize::try_from(maxnames).unwrap_or(0)).map(|d| d.name.as_str()).collect();
        // SAFETY: `names` has `maxnames` slots and `wanted` is no longer.
        let written = unsafe { fill_strings(names, &wanted)? };
        Ok(c_int::try_from(written).unwrap_or(c_int::MAX))
    })
}

/// The credential types the default authentication parameters list.
static mut DEFAULT_AUTH_CREDTYPES: [c_int; 6] = [
    Cred::VIR_CRED_AUTHNAME as c_int,
    Cred::VIR_CRED_ECHOPROMPT as c_int,
    Cred::VIR_CRED_REALM as c_int,
    Cred::VIR_CRED_PASSPHRASE as c_int,
    Cred::VIR_CRED_NOECHOPROMPT as c_int,
    Cred::VIR_CRED_EXTERNAL as c_int,
];

static mut DEFAULT_AUTH: virConnectAuth = virConnectAuth {
    credtype: &raw mut DEFAULT_AUTH_CREDTYPES as *mut c_int,
    ncredtype: 6,
    cb: None,
    cbdata: ptr::null_mut(),
};

/// Default authentication parameters for `virConnectOpenAuth()`. The drivers of this
/// library never ask for credentials, so it has no callback.
///
/// Since: 0.4.0
#[unsafe(no_mangle)]
pub static mut virConnectAuthPtrDefault: virConnectAuthPtr = &raw mut DEFAULT_AUTH;

/// Registers a function to call when the connection closes unexpectedly. The drivers
/// here run in the calling process and never lose their connection, so it is never
/// called; `freecb` releases `opaque` when the callback is unregistered or the
/// connection goes. Returns 0, or -1 for an invalid connection or a NULL `cb`.
///
/// # Safety
/// `conn` must be NULL or a connection handle.
///
/// Since: 0.10.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virConnectRegisterCloseCallback(
    conn: virConnectPtr,
    cb: virConnectCloseFunc,
    opaque: *mut c_void,
    freecb: virFreeCallback,
) -> c_int {
    entry(FROM_HOST, "virConnectRegisterCloseCallback", |call| {
        // SAFETY: forwarded from the contract.
        let conn = unsafe { call.conn(conn)? };
        call.present(cb.is_some(), "cb")?;
        let new = CloseCallback { cb, opaque: opaque as usize, free: freecb };
        let old = conn.close_callback.lock().replace(new);
        if let Some(old) = old {
            old.release();
        }
        Ok(0)
    })
}

/// Unregisters the close callback (`cb` must be the registered one to have an effect).
/// Returns 0, or -1 for an invalid connection or a NULL `cb`.
///
/// # Safety
/// `conn` must be NULL or a connection handle.
///
/// Since: 0.10.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virConnectUnregisterCloseCallback(conn: virConnectPtr, cb: virConnectCloseFunc) -> c_int {
    entry(FROM_HOST, "virConnectUnregisterCloseCallback", |call| {
        // SAFETY: forwarded from the contract.
        let conn = unsafe { call.conn(conn)? };
        call.present(cb.is_some(), "cb")?;
        let removed = {
            let mut slot = conn.close_callback.lock();
            let same = slot.as_ref().is_some_and(|c| c.cb.map(|f| f as usize) == cb.map(|f| f as usize));
            if same { slot.take() } else { None }
        };
        if let Some(callback) = removed {
            callback.release();
        }
        Ok(0)
    })
}

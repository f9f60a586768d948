//! Domain entry points (`libvirt-domain.c`).

use std::ffi::{c_char, c_int, c_uchar, c_uint, c_ulong, c_ushort};
use std::ptr;

use super::alloc::malloc_string;
use super::entry;
use super::handles::{DomainHandle, DomainRef, Handle};
use crate::abi::{
    VIR_UUID_BUFLEN, VIR_UUID_STRING_BUFLEN, virConnectPtr, virDomainBlockInfo, virDomainBlockInfoPtr, virDomainInfo,
    virDomainInfoPtr, virDomainMemoryStatPtr, virDomainPtr, virDomainXMLFlags,
};
use crate::error::{Code, Domain, Error};
use crate::uuid::Uuid;

const FROM: Domain = Domain::VIR_FROM_DOMAIN;

/// Looks up a domain by name. Returns a new handle (release with `virDomainFree()`), or
/// NULL with `VIR_ERR_NO_DOMAIN`.
///
/// # Safety
/// `conn` must be NULL or a connection handle; `name` NULL or a NUL-terminated string.
///
/// Since: 0.0.3
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainLookupByName(conn: virConnectPtr, name: *const c_char) -> virDomainPtr {
    entry(FROM, "virDomainLookupByName", |call| {
        // SAFETY: forwarded from the contract.
        let (conn, name) = unsafe { (call.conn(conn)?, call.string(name, "name")?) };
        let id = conn.driver.domain_lookup_by_name(name)?;
        Ok(Handle::into_ptr(DomainRef::new(conn, id)))
    })
}

/// Looks up a domain by its raw UUID (`VIR_UUID_BUFLEN` bytes).
///
/// # Safety
/// `conn` must be NULL or a connection handle; `uuid` NULL or `VIR_UUID_BUFLEN` readable
/// bytes.
///
/// Since: 0.0.5
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainLookupByUUID(conn: virConnectPtr, uuid: *const c_uchar) -> virDomainPtr {
    entry(FROM, "virDomainLookupByUUID", |call| {
        // SAFETY: forwarded from the contract.
        let conn = unsafe { call.conn(conn)? };
        call.non_null(uuid, "uuid")?;
        let mut raw = [0u8; VIR_UUID_BUFLEN];
        // SAFETY: `uuid` points to VIR_UUID_BUFLEN readable bytes (contract).
        unsafe { ptr::copy_nonoverlapping(uuid, raw.as_mut_ptr(), VIR_UUID_BUFLEN) };
        let id = conn.driver.domain_lookup_by_uuid(&Uuid(raw))?;
        Ok(Handle::into_ptr(DomainRef::new(conn, id)))
    })
}

/// Looks up a domain by its UUID in text form.
///
/// # Safety
/// `conn` must be NULL or a connection handle; `uuidstr` NULL or a NUL-terminated string.
///
/// Since: 0.1.1
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainLookupByUUIDString(conn: virConnectPtr, uuidstr: *const c_char) -> virDomainPtr {
    entry(FROM, "virDomainLookupByUUIDString", |call| {
        // SAFETY: forwarded from the contract.
        let (conn, text) = unsafe { (call.conn(conn)?, call.string(uuidstr, "uuidstr")?) };
        let uuid = Uuid::parse(text)
            .ok_or_else(|| Error::arg(FROM, Code::VIR_ERR_INVALID_ARG, call.api, "uuidstr", "Invalid UUID"))?;
        let id = conn.driver.domain_lookup_by_uuid(&uuid)?;
        Ok(Handle::into_ptr(DomainRef::new(conn, id)))
    })
}

/// Looks up an active domain by its id.
///
/// # Safety
/// `conn` must be NULL or a connection handle.
///
/// Since: 0.0.3
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainLookupByID(conn: virConnectPtr, id: c_int) -> virDomainPtr {
    entry(FROM, "virDomainLookupByID", |call| {
        // SAFETY: forwarded from the contract.
        let conn = unsafe { call.conn(conn)? };
        if id < 0 {
            return Err(Error::arg(
                FROM,
                Code::VIR_ERR_INVALID_ARG,
                call.api,
                "id",
                format!("id in {} must be zero or greater", call.api),
            ));
        }
        let found = conn.driver.domain_lookup_by_id(id)?;
        Ok(Handle::into_ptr(DomainRef::new(conn, found)))
    })
}

/// Adds a reference to a domain handle. Returns 0 or -1.
///
/// # Safety
/// `domain` must be NULL or a domain handle.
///
/// Since: 0.6.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainRef(domain: virDomainPtr) -> c_int {
    entry(FROM, "virDomainRef", |call| {
        // SAFETY: forwarded from the contract.
        let handle = unsafe { call.domain(domain)? };
        std::mem::forget(handle);
        Ok(0)
    })
}

/// Drops one reference on a domain handle (not on the domain itself). Returns 0 or -1.
///
/// # Safety
/// `domain` must be NULL or a domain handle the caller owns a reference on.
///
/// Since: 0.0.3
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainFree(domain: virDomainPtr) -> c_int {
    entry(FROM, "virDomainFree", |call| {
        // SAFETY: forwarded from the contract.
        let handle = unsafe { call.domain(domain)? };
        // SAFETY: the caller owns the reference being dropped.
        unsafe { Handle::release(&handle, domain) };
        Ok(0)
    })
}

/// Returns the domain's name; the string belongs to the handle.
///
/// # Safety
/// `domain` must be NULL or a domain handle.
///
/// Since: 0.0.3
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainGetName(domain: virDomainPtr) -> *const c_char {
    entry(FROM, "virDomainGetName", |call| {
        // SAFETY: forwarded from the contract.
        let dom = unsafe { call.domain(domain)? };
        // The name lives as long as the handle, which the caller holds.
        Ok(dom.c_name().as_ptr())
    })
}

/// Copies the raw UUID (`VIR_UUID_BUFLEN` bytes) into `uuid`. Returns 0 or -1.
///
/// # Safety
/// `domain` must be NULL or a domain handle; `uuid` NULL or `VIR_UUID_BUFLEN` writable
/// bytes.
///
/// Since: 0.0.5
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainGetUUID(domain: virDomainPtr, uuid: *mut c_uchar) -> c_int {
    entry(FROM, "virDomainGetUUID", |call| {
        // SAFETY: forwarded from the contract.
        let dom = unsafe { call.domain(domain)? };
        call.non_null(uuid, "uuid")?;
        // SAFETY: `uuid` has VIR_UUID_BUFLEN writable bytes (contract).
        unsafe { ptr::copy_nonoverlapping(dom.id.uuid.0.as_ptr(), uuid, VIR_UUID_BUFLEN) };
        Ok(0)
    })
}

/// Writes the UUID as text (with its NUL, `VIR_UUID_STRING_BUFLEN` bytes) into `buf`.
/// Returns 0 or -1.
///
/// # Safety
/// `domain` must be NULL or a domain handle; `buf` NULL or `VIR_UUID_STRING_BUFLEN`
/// writable bytes.
///
/// Since: 0.1.1
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainGetUUIDString(domain: virDomainPtr, buf: *mut c_char) -> c_int {
    entry(FROM, "virDomainGetUUIDString", |call| {
        // SAFETY: forwarded from the contract.
        let dom = unsafe { call.domain(domain)? };
        call.non_null(buf, "buf")?;
        let text = dom.id.uuid.to_string();
        debug_assert_eq!(text.len() + 1, VIR_UUID_STRING_BUFLEN);
        // SAFETY: `buf` has VIR_UUID_STRING_BUFLEN writable bytes (contract).
        unsafe {
            ptr::copy_nonoverlapping(text.as_ptr() as *const c_char, buf, text.len());
            *buf.add(text.len()) = 0;
        }
        Ok(0)
    })
}

/// Returns the domain's id as it was when the handle was made ((unsigned)-1 for an
/// inactive domain or an invalid handle).
///
/// # Safety
/// `domain` must be NULL or a domain handle.
///
/// Since: 0.0.3
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainGetID(domain: virDomainPtr) -> c_uint {
    entry(FROM, "virDomainGetID", |call| {
        // SAFETY: forwarded from the contract.
        let dom = unsafe { call.domain(domain)? };
        Ok(dom.live_id() as c_uint)
    })
}

/// Returns the domain's connection, without adding a reference.
///
/// # Safety
/// `dom` must be NULL or a domain handle.
///
/// Since: 0.3.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainGetConnect(dom: virDomainPtr) -> virConnectPtr {
    entry(FROM, "virDomainGetConnect", |call| {
        // SAFETY: forwarded from the contract.
        let handle = unsafe { call.domain(dom)? };
        Ok(Handle::as_ptr(&handle.conn))
    })
}

/// Returns 1 when the domain is running (or paused), 0 when it is shut off, -1 on error.
///
/// # Safety
/// `dom` must be NULL or a domain handle.
///
/// Since: 0.7.3
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainIsActive(dom: virDomainPtr) -> c_int {
    entry(FROM, "virDomainIsActive", |call| {
        // SAFETY: forwarded from the contract.
        let dom = unsafe { call.domain(dom)? };
        dom.conn.driver.domain_is_active(&dom.id).map(c_int::from)
    })
}

/// Returns 1 when the domain has a persistent definition, 0 when it is transient, -1 on
/// error.
///
/// # Safety
/// `dom` must be NULL or a domain handle.
///
/// Since: 0.7.3
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainIsPersistent(dom: virDomainPtr) -> c_int {
    entry(FROM, "virDomainIsPersistent", |call| {
        // SAFETY: forwarded from the contract.
        let dom = unsafe { call.domain(dom)? };
        dom.conn.driver.domain_is_persistent(&dom.id).map(c_int::from)
    })
}

/// Stores the domain's `virDomainState` in `state` and, when `reason` is not NULL, the
/// reason for it. `flags` must be 0. Returns 0 or -1.
///
/// # Safety
/// `domain` must be NULL or a domain handle; `state` and `reason` NULL or writable.
///
/// Since: 0.9.2
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainGetState(
    domain: virDomainPtr,
    state: *mut c_int,
    reason: *mut c_int,
    flags: c_uint,
) -> c_int {
    entry(FROM, "virDomainGetState", |call| {
        // SAFETY: forwarded from the contract.
        let dom = unsafe { call.domain(domain)? };
        call.non_null(state, "state")?;
        let (s, r) = dom.conn.driver.domain_get_state(&dom.id, flags)?;
        // SAFETY: `state` is non-NULL and writable; `reason` writable when non-NULL.
        unsafe {
            *state = s;
            if !reason.is_null() {
                *reason = r;
            }
        }
        Ok(0)
    })
}

/// Fills `info` with the domain's state, memory, vCPU count and CPU time. Returns 0 or
/// -1.
///
/// # Safety
/// `domain` must be NULL or a domain handle; `info` NULL or writable.
///
/// Since: 0.0.3
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainGetInfo(domain: virDomainPtr, info: virDomainInfoPtr) -> c_int {
    entry(FROM, "virDomainGetInfo", |call| {
        // SAFETY: forwarded from the contract.
        let dom = unsafe { call.domain(domain)? };
        call.non_null(info, "info")?;
        // SAFETY: `info` is non-NULL and writable.
        unsafe { info.write(virDomainInfo::default()) };
        let facts = dom.conn.driver.domain_get_info(&dom.id)?;
        // SAFETY: as above.
        unsafe {
            info.write(virDomainInfo {
                state: facts.state as c_uchar,
                maxMem: facts.max_memory_kib as c_ulong,
                memory: facts.memory_kib as c_ulong,
                nrVirtCpu: facts.vcpus as c_ushort,
                cpuTime: facts.cpu_time_ns,
            })
        };
        Ok(0)
    })
}

/// Returns the domain's XML description (`virDomainXMLFlags`); the caller frees it with
/// `free()`. `VIR_DOMAIN_XML_SECURE` is refused on read-only connections.
///
/// # Safety
/// `domain` must be NULL or a domain handle.
///
/// Since: 0.0.3
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainGetXMLDesc(domain: virDomainPtr, flags: c_uint) -> *mut c_char {
    entry(FROM, "virDomainGetXMLDesc", |call| {
        // SAFETY: forwarded from the contract.
        let dom = unsafe { call.domain(domain)? };
        if dom.conn.read_only && flags & virDomainXMLFlags::VIR_DOMAIN_XML_SECURE as c_uint != 0 {
            return Err(Error::new(FROM, Code::VIR_ERR_OPERATION_DENIED, "virDomainGetXMLDesc with secure flag"));
        }
        malloc_string(&dom.conn.driver.domain_get_xml_desc(&dom.id, flags)?)
    })
}

/// Defines (or redefines) a persistent domain from `<domain>` XML. Returns a new
/// handle, or NULL.
///
/// # Safety
/// `conn` must be NULL or a connection handle; `xml` NULL or a NUL-terminated string.
///
/// Since: 0.1.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainDefineXML(conn: virConnectPtr, xml: *const c_char) -> virDomainPtr {
    // SAFETY: forwarded from the contract.
    unsafe { define(conn, xml, 0, "virDomainDefineXML") }
}

/// Like `virDomainDefineXML()`, with `virDomainDefineFlags`.
///
/// # Safety
/// `conn` must be NULL or a connection handle; `xml` NULL or a NUL-terminated string.
///
/// Since: 1.2.12
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainDefineXMLFlags(
    conn: virConnectPtr,
    xml: *const c_char,
    flags: c_uint,
) -> virDomainPtr {
    // SAFETY: forwarded from the contract.
    unsafe { define(conn, xml, flags, "virDomainDefineXMLFlags") }
}

/// # Safety
/// As for [`virDomainDefineXMLFlags`].
unsafe fn define(conn: virConnectPtr, xml: *const c_char, flags: c_uint, api: &'static str) -> virDomainPtr {
    entry(FROM, api, |call| {
        // SAFETY: forwarded from the contract.
        let (conn, xml) = unsafe { (call.conn(conn)?, call.string(xml, "xml")?) };
        call.writable(&conn)?;
        let id = conn.driver.domain_define_xml(xml, flags)?;
        Ok(Handle::into_ptr(DomainRef::new(conn, id)))
    })
}

/// Shared body of the calls that act on one domain and change its state.
///
/// # Safety
/// `domain` must be NULL or a domain handle.
unsafe fn change(
    domain: virDomainPtr,
    api: &'static str,
    act: impl FnOnce(&DomainRef) -> crate::error::Result<()>,
) -> c_int {
    entry(FROM, api, |call| {
        // SAFETY: forwarded from the contract.
        let dom = unsafe { call.domain(domain)? };
        call.writable(&dom.conn)?;
        act(&dom)?;
        Ok(0)
    })
}

/// Removes a domain's persistent definition: an inactive domain disappears, a running one
/// becomes transient. Returns 0 or -1.
///
/// # Safety
/// `domain` must be NULL or a domain handle.
///
/// Since: 0.1.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainUndefine(domain: virDomainPtr) -> c_int {
    // SAFETY: forwarded from the contract.
    unsafe { change(domain, "virDomainUndefine", |d| d.conn.driver.domain_undefine(&d.id, 0)) }
}

/// Like `virDomainUndefine()`, with `virDomainUndefineFlagsValues`.
///
/// # Safety
/// `domain` must be NULL or a domain handle.
///
/// Since: 0.9.4
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainUndefineFlags(domain: virDomainPtr, flags: c_uint) -> c_int {
    // SAFETY: forwarded from the contract.
    unsafe { change(domain, "virDomainUndefineFlags", |d| d.conn.driver.domain_undefine(&d.id, flags)) }
}

/// Starts a defined domain. Returns 0 or -1.
///
/// # Safety
/// `domain` must be NULL or a domain handle.
///
/// Since: 0.1.1
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainCreate(domain: virDomainPtr) -> c_int {
    // SAFETY: forwarded from the contract.
    unsafe { change(domain, "virDomainCreate", |d| d.conn.driver.domain_create(&d.id, 0).map(|id| d.set_live_id(id))) }
}

/// Starts a defined domain (`virDomainCreateFlags`). Returns 0 or -1.
///
/// # Safety
/// `domain` must be NULL or a domain handle.
///
/// Since: 0.8.2
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainCreateWithFlags(domain: virDomainPtr, flags: c_uint) -> c_int {
    // SAFETY: forwarded from the contract.
    unsafe {
        change(domain, "virDomainCreateWithFlags", |d| {
            d.conn.driver.domain_create(&d.id, flags).map(|id| d.set_live_id(id))
        })
    }
}

/// Stops a domain at once. Returns 0 or -1.
///
/// # Safety
/// `domain` must be NULL or a domain handle.
///
/// Since: 0.0.3
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainDestroy(domain: virDomainPtr) -> c_int {
    // SAFETY: forwarded from the contract.
    unsafe {
        change(domain, "virDomainDestroy", |d| d.conn.driver.domain_destroy(&d.id, 0).map(|()| d.set_live_id(-1)))
    }
}

/// Stops a domain (`virDomainDestroyFlagsValues`). Returns 0 or -1.
///
/// # Safety
/// `domain` must be NULL or a domain handle.
///
/// Since: 0.9.4
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainDestroyFlags(domain: virDomainPtr, flags: c_uint) -> c_int {
    // SAFETY: forwarded from the contract.
    unsafe {
        change(domain, "virDomainDestroyFlags", |d| {
            d.conn.driver.domain_destroy(&d.id, flags).map(|()| d.set_live_id(-1))
        })
    }
}

/// Asks a domain to shut down. Returns 0 or -1.
///
/// # Safety
/// `domain` must be NULL or a domain handle.
///
/// Since: 0.0.3
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainShutdown(domain: virDomainPtr) -> c_int {
    // SAFETY: forwarded from the contract.
    unsafe {
        change(domain, "virDomainShutdown", |d| d.conn.driver.domain_shutdown(&d.id, 0).map(|()| d.set_live_id(-1)))
    }
}

/// Asks a domain to shut down (`virDomainShutdownFlagValues`). Returns 0 or -1.
///
/// # Safety
/// `domain` must be NULL or a domain handle.
///
/// Since: 0.9.10
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainShutdownFlags(domain: virDomainPtr, flags: c_uint) -> c_int {
    // SAFETY: forwarded from the contract.
    unsafe {
        change(domain, "virDomainShutdownFlags", |d| {
            d.conn.driver.domain_shutdown(&d.id, flags).map(|()| d.set_live_id(-1))
        })
    }
}

static_assertions::assert_eq_size!(virDomainPtr, *mut DomainHandle);

/// Stores in `autostart` whether the domain starts when its driver does (1) or not (0).
/// Returns 0 or -1.
///
/// # Safety
/// `domain` must be NULL or a domain handle; `autostart` NULL or writable.
///
/// Since: 0.2.1
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainGetAutostart(domain: virDomainPtr, autostart: *mut c_int) -> c_int {
    entry(FROM, "virDomainGetAutostart", |call| {
        // SAFETY: forwarded from the contract.
        let dom = unsafe { call.domain(domain)? };
        call.non_null(autostart, "autostart")?;
        let on = dom.conn.driver.domain_get_autostart(&dom.id)?;
        // SAFETY: `autostart` is non-NULL and writable.
        unsafe { *autostart = c_int::from(on) };
        Ok(0)
    })
}

/// Marks a persistent domain to start with its driver (`autostart` non-zero) or not.
/// Returns 0 or -1.
///
/// # Safety
/// `domain` must be NULL or a domain handle.
///
/// Since: 0.2.1
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainSetAutostart(domain: virDomainPtr, autostart: c_int) -> c_int {
    entry(FROM, "virDomainSetAutostart", |call| {
        // SAFETY: forwarded from the contract.
        let dom = unsafe { call.domain(domain)? };
        call.read_only()?;
        dom.conn.driver.domain_set_autostart(&dom.id, autostart != 0)?;
        Ok(0)
    })
}

/// The shared body of `virDomainFSFreeze()` and `virDomainFSThaw()`.
///
/// # Safety
/// `domain` must be NULL or a domain handle; `mountpoints` NULL or `nmountpoints`
/// strings.
unsafe fn fs_freeze_or_thaw(
    api: &'static str,
    domain: virDomainPtr,
    mountpoints: *mut *const c_char,
    nmountpoints: c_uint,
    flags: c_uint,
    freeze: bool,
) -> c_int {
    entry(FROM, api, |call| {
        // SAFETY: forwarded from the contract.
        let dom = unsafe { call.domain(domain)? };
        call.read_only()?;
        // SAFETY: forwarded from the contract.
        let points = unsafe { call.strings(mountpoints, nmountpoints, "mountpoints")? };
        let driver = &dom.conn.driver;
        if freeze {
            driver.domain_fs_freeze(&dom.id, &points, flags)
        } else {
            driver.domain_fs_thaw(&dom.id, &points, flags)
        }
    })
}

/// Freezes the guest's file systems (all, or those at `mountpoints`) through its guest
/// agent, for a consistent backup. Returns the number frozen, or -1 (a domain without a
/// guest agent fails with libvirt's agent errors).
///
/// # Safety
/// `domain` must be NULL or a domain handle; `mountpoints` NULL or `nmountpoints`
/// NUL-terminated strings.
///
/// Since: 1.2.5
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainFSFreeze(
    domain: virDomainPtr,
    mountpoints: *mut *const c_char,
    nmountpoints: c_uint,
    flags: c_uint,
) -> c_int {
    // SAFETY: forwarded from the contract.
    unsafe { fs_freeze_or_thaw("virDomainFSFreeze", domain, mountpoints, nmountpoints, flags, true) }
}

/// Thaws what `virDomainFSFreeze()` froze. Returns the number thawed, or -1.
///
/// # Safety
/// As for `virDomainFSFreeze()`.
///
/// Since: 1.2.5
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainFSThaw(
    domain: virDomainPtr,
    mountpoints: *mut *const c_char,
    nmountpoints: c_uint,
    flags: c_uint,
) -> c_int {
    // SAFETY: forwarded from the contract.
    unsafe { fs_freeze_or_thaw("virDomainFSThaw", domain, mountpoints, nmountpoints, flags, false) }
}

/// Fills `info` with the size of a disk (named by target or source path): what the
/// guest sees (`capacity`), what the image holds (`allocation`) and the size of its
/// file or device (`physical`), in bytes. Returns 0 or -1.
///
/// # Safety
/// `domain` must be NULL or a domain handle; `disk` NULL or a NUL-terminated string;
/// `info` NULL or writable.
///
/// Since: 0.8.1
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainGetBlockInfo(
    domain: virDomainPtr,
    disk: *const c_char,
    info: virDomainBlockInfoPtr,
    flags: c_uint,
) -> c_int {
    if !info.is_null() {
        // SAFETY: `info` is writable (contract).
        unsafe { info.write(virDomainBlockInfo { capacity: 0, allocation: 0, physical: 0 }) };
    }
    entry(FROM, "virDomainGetBlockInfo", |call| {
        // SAFETY: forwarded from the contract.
        let dom = unsafe { call.domain(domain)? };
        // SAFETY: forwarded from the contract.
        unsafe { call.non_empty(disk, "disk")? };
        call.non_null(info, "info")?;
        // SAFETY: checked non-NULL and NUL-terminated above.
        let disk = unsafe { call.string(disk, "disk")? };
        let found = dom.conn.driver.domain_get_block_info(&dom.id, disk, flags)?;
        // SAFETY: `info` is non-NULL and writable.
        unsafe {
            info.write(virDomainBlockInfo {
                capacity: found.capacity,
                allocation: found.allocation,
                physical: found.physical,
            })
        };
        Ok(0)
    })
}

/// An old name of `virDomainCreateXML()`, which it calls (its errors name that call).
///
/// # Safety
/// As for `virDomainCreateXML()`.
///
/// Since: 0.0.3
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainCreateLinux(
    conn: virConnectPtr,
    xmlDesc: *const c_char,
    flags: c_uint,
) -> virDomainPtr {
    // SAFETY: forwarded from the contract.
    unsafe { super::generated::virDomainCreateXML(conn, xmlDesc, flags) }
}

/// Fills up to `nr_stats` memory statistics of a running domain. With no room for any
/// (`stats` NULL or `nr_stats` 0) it returns 0 at once, as libvirt does; otherwise the
/// drivers here have no statistics to give (`VIR_ERR_NO_SUPPORT`).
///
/// # Safety
/// `dom` must be NULL or a domain handle; `stats` NULL or `nr_stats` writable records.
///
/// Since: 0.7.5
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDomainMemoryStats(
    dom: virDomainPtr,
    stats: virDomainMemoryStatPtr,
    nr_stats: c_uint,
    flags: c_uint,
) -> c_int {
    let _ = flags;
    entry(FROM, "virDomainMemoryStats", |call| {
        // SAFETY: forwarded from the contract.
        unsafe { call.domain(dom)? };
        if stats.is_null() || nr_stats == 0 {
            return Ok(0);
        }
        Err(Error::no_support(FROM, call.api))
    })
}

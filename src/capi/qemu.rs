//! The entry points of `libvirt-qemu.so.0` (libvirt's `libvirt-qemu.c`) that the
//! drivers implement. libvirt.so.0 exports them as `virbackup*`; the small
//! libvirt-qemu.so.0 forwards libvirt's names to them (c-tests/libvirt-qemu.c), so that
//! errors land in the same thread-local record as every other call's.

use std::ffi::{c_char, c_int, c_uint};
use std::ptr;

use super::alloc::malloc_string;
use super::entry;
use crate::abi::virDomainPtr;
use crate::error::{Domain, Error};

/// Errors of `libvirt-qemu.c` carry no domain.
const FROM: Domain = Domain::VIR_FROM_NONE;

/// `virDomainQemuMonitorCommand()`: sends `cmd` (a QMP command as JSON text, or with
/// `VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP` a human-monitor command) to the monitor of the
/// QEMU process that owns the domain's disks — the running domain's daemon or an
/// adopted QEMU — and stores its reply in `*result` (freed by the caller with `free()`).
/// Returns 0 or -1.
///
/// # Safety
/// `domain` must be NULL or a domain handle; `cmd` NULL or a NUL-terminated string;
/// `result` NULL or writable.
///
/// Since: 0.8.3
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virbackupDomainQemuMonitorCommand(
    domain: virDomainPtr,
    cmd: *const c_char,
    result: *mut *mut c_char,
    flags: c_uint,
) -> c_int {
    entry(FROM, "virDomainQemuMonitorCommand", |call| {
        // SAFETY: forwarded from the contract.
        let dom = unsafe { call.domain(domain)? };
        call.non_null(result, "result")?;
        call.read_only()?;
        // SAFETY: forwarded from the contract.
        let cmd = unsafe { call.string(cmd, "cmd")? };
        let reply = dom.conn.driver.domain_qemu_monitor_command(&dom.id, cmd, flags)?;
        // SAFETY: `result` is non-NULL and writable.
        unsafe { *result = malloc_string(&reply)? };
        Ok(0)
    })
}

/// `virDomainQemuMonitorCommandWithFiles()`: as `virDomainQemuMonitorCommand()`.
/// Passing file descriptors is not supported: `ninfiles` must be 0, and no descriptors
/// come back (`*noutfiles` is 0).
///
/// # Safety
/// As for `virDomainQemuMonitorCommand()`; `noutfiles` and `outfiles` NULL or writable.
///
/// Since: 8.2.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virbackupDomainQemuMonitorCommandWithFiles(
    domain: virDomainPtr,
    cmd: *const c_char,
    ninfiles: c_uint,
    infiles: *mut c_int,
    noutfiles: *mut c_uint,
    outfiles: *mut *mut c_int,
    result: *mut *mut c_char,
    flags: c_uint,
) -> c_int {
    let _ = infiles;
    if !noutfiles.is_null() {
        // SAFETY: writable when non-NULL (contract).
        unsafe { *noutfiles = 0 };
    }
    if !outfiles.is_null() {
        // SAFETY: writable when non-NULL (contract).
        unsafe { *outfiles = ptr::null_mut() };
    }
    entry(FROM, "virDomainQemuMonitorCommandWithFiles", |call| {
        // SAFETY: forwarded from the contract.
        let dom = unsafe { call.domain(domain)? };
        // SAFETY: forwarded from the contract.
        let cmd = unsafe { call.string(cmd, "cmd")? };
        call.non_null(result, "result")?;
        call.read_only()?;
        if ninfiles > 0 {
            return Err(Error::new(
                Domain::VIR_FROM_QEMU,
                crate::error::Code::VIR_ERR_OPERATION_UNSUPPORTED,
                "passing file descriptors to the monitor is not supported",
            ));
        }
        let reply = dom.conn.driver.domain_qemu_monitor_command(&dom.id, cmd, flags)?;
        // SAFETY: `result` is non-NULL and writable.
        unsafe { *result = malloc_string(&reply)? };
        Ok(0)
    })
}

/// `virDomainQemuAgentCommand()`: sends a command to the guest agent and returns its
/// reply (freed by the caller with `free()`), or NULL. The domains here have no guest
/// agent connection: the call fails as libvirt's does for a domain without one.
///
/// # Safety
/// `domain` must be NULL or a domain handle; `cmd` NULL or a NUL-terminated string.
///
/// Since: 0.10.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virbackupDomainQemuAgentCommand(
    domain: virDomainPtr,
    cmd: *const c_char,
    timeout: c_int,
    flags: c_uint,
) -> *mut c_char {
    entry(FROM, "virDomainQemuAgentCommand", |call| {
        // SAFETY: forwarded from the contract.
        let dom = unsafe { call.domain(domain)? };
        call.read_only()?;
        // SAFETY: forwarded from the contract.
        let cmd = unsafe { call.string(cmd, "cmd")? };
        malloc_string(&dom.conn.driver.domain_qemu_agent_command(&dom.id, cmd, timeout, flags)?)
    })
}

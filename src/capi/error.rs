//! libvirt's error API: the thread-local last error, the per-connection copy, error
//! callbacks and the default printer.

use std::cell::UnsafeCell;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::io::Write;
use std::ptr;

use parking_lot::Mutex;

use super::alloc::{free, malloc_opt_string};
use super::handles::ConnectHandle;
use crate::abi::{virConnectPtr, virError, virErrorFunc, virErrorLevel, virErrorPtr};
use crate::error::{Code, Domain, Error, domain_name};

/// An error callback and its user data.
#[derive(Clone, Copy)]
pub(crate) struct Handler {
    pub func: virErrorFunc,
    /// The `void *` user data, kept as an address so the handler can cross threads.
    pub data: usize,
}

impl Handler {
    /// No callback: errors go to the next handler in line.
    pub(crate) const fn none() -> Handler {
        Handler { func: None, data: 0 }
    }
}

/// The callback set by `virSetErrorFunc()`, shared by all threads.
static GLOBAL_HANDLER: Mutex<Handler> = Mutex::new(Handler::none());

/// A `virError` whose strings this library allocated with `malloc()`.
#[repr(transparent)]
pub(crate) struct ErrorRecord(virError);

// SAFETY: the record owns its strings exclusively; the raw pointers are never shared
// with another record.
unsafe impl Send for ErrorRecord {}

const fn empty_error() -> virError {
    virError {
        code: 0,
        domain: 0,
        message: ptr::null_mut(),
        level: virErrorLevel::VIR_ERR_NONE,
        conn: ptr::null_mut(),
        dom: ptr::null_mut(),
        str1: ptr::null_mut(),
        str2: ptr::null_mut(),
        str3: ptr::null_mut(),
        int1: 0,
        int2: 0,
        net: ptr::null_mut(),
    }
}

impl ErrorRecord {
    pub const fn empty() -> ErrorRecord {
        ErrorRecord(empty_error())
    }

    /// A pointer C may read (and, through `virResetError`, clear).
    pub fn as_mut_ptr(&mut self) -> *mut virError {
        &mut self.0
    }
}

impl Drop for ErrorRecord {
    fn drop(&mut self) {
        // SAFETY: the record's strings are NULL or from malloc.
        unsafe { reset_raw(&mut self.0) };
    }
}

/// Frees the strings of an error record and zeroes it, as `virResetError()` does.
///
/// # Safety
/// `err` must be NULL or point to a writable `virError` whose string fields are NULL or
/// from `malloc()`.
pub unsafe fn reset_raw(err: *mut virError) {
    if err.is_null() {
        return;
    }
    // SAFETY: `err` is valid (contract). Fields are read through raw pointers so that a
    // caller-owned record with an out-of-range `level` is never read as an enum.
    unsafe {
        free(ptr::addr_of!((*err).message).read());
        free(ptr::addr_of!((*err).str1).read());
        free(ptr::addr_of!((*err).str2).read());
        free(ptr::addr_of!((*err).str3).read());
        err.write(empty_error());
    }
}

/// Fills a record (after resetting it) from a Rust error.
///
/// # Safety
/// As for [`reset_raw`]; `err` must not be NULL.
unsafe fn set_raw(err: *mut virError, e: &Error) {
    // SAFETY: forwarded from the contract.
    unsafe {
        reset_raw(err);
        err.write(virError {
            code: e.code as c_int,
            domain: e.domain as c_int,
            message: malloc_opt_string(Some(&e.message)),
            level: virErrorLevel::VIR_ERR_ERROR,
            str1: malloc_opt_string(e.str1.as_deref()),
            str2: malloc_opt_string(e.str2.as_deref()),
            str3: malloc_opt_string(e.str3.as_deref()),
            int1: e.int1,
            int2: e.int2,
            ..empty_error()
        });
    }
}

/// Deep-copies `from` into `to` (after resetting `to`). `conn`, `dom` and `net` are not
/// copied, as in libvirt.
///
/// # Safety
/// `from` must point to a readable `virError`; `to` as for [`reset_raw`], not NULL.
unsafe fn copy_raw(from: *const virError, to: *mut virError) {
    // SAFETY: both records are valid (contract); strings are copied, never shared.
    unsafe {
        reset_raw(to);
        let copy_str = |p: *mut c_char| {
            if p.is_null() { ptr::null_mut() } else { libc::strdup(p) }
        };
        let level = ptr::addr_of!((*from).level).cast::<c_int>().read();
        to.write(virError {
            code: (*from).code,
            domain: (*from).domain,
            message: copy_str((*from).message),
            level: match level {
                1 => virErrorLevel::VIR_ERR_WARNING,
                2 => virErrorLevel::VIR_ERR_ERROR,
                _ => virErrorLevel::VIR_ERR_NONE,
            },
            str1: copy_str((*from).str1),
            str2: copy_str((*from).str2),
            str3: copy_str((*from).str3),
            int1: (*from).int1,
            int2: (*from).int2,
            ..empty_error()
        });
    }
}

/// The thread's last error; released when the thread ends.
struct LastError(UnsafeCell<ErrorRecord>);

thread_local! {
    static LAST: LastError = const { LastError(UnsafeCell::new(ErrorRecord::empty())) };
}

/// The calling thread's error record, or NULL while the thread is being torn down.
fn last_ptr() -> *mut virError {
    LAST.try_with(|l| l.0.get() as *mut virError).unwrap_or(ptr::null_mut())
}

/// Clears the calling thread's last error (the first step of every entry point).
pub fn reset_last_error() {
    // SAFETY: the thread-local record is valid and only touched from this thread.
    unsafe { reset_raw(last_ptr()) }
}

/// Records `e` as the thread's last error, copies it to `conn`, and hands it to the
/// connection's callback, the global callback, or the default printer, in that order of
/// preference (libvirt's `virDispatchError`).
pub fn dispatch(e: &Error, conn: Option<&ConnectHandle>) {
    let last = last_ptr();
    if last.is_null() {
        return;
    }
    // SAFETY: the thread-local record is valid and only touched from this thread.
    unsafe { set_raw(last, e) };
    let mut handler = *GLOBAL_HANDLER.lock();
    if let Some(conn) = conn {
        // SAFETY: both records are valid; the connection's record is behind its lock.
        unsafe { copy_raw(last, conn.last_error.lock().as_mut_ptr()) };
        let own = *conn.handler.lock();
        if own.func.is_some() {
            handler = own;
        }
    }
    match handler.func {
        // SAFETY: the callback was registered by the caller for exactly this use.
        Some(func) => unsafe { func(handler.data as *mut c_void, last) },
        // SAFETY: `last` is the valid thread-local record.
        None => unsafe { print_default(last) },
    }
}

/// Prints an error as libvirt's default handler does.
///
/// # Safety
/// `err` must be NULL or point to a readable `virError`.
unsafe fn print_default(err: *const virError) {
    if err.is_null() {
        return;
    }
    // SAFETY: `err` is readable (contract); strings are NULL or NUL-terminated.
    let (code, domain, level, int1, message) = unsafe {
        let message = (*err).message;
        (
            (*err).code,
            (*err).domain,
            ptr::addr_of!((*err).level).cast::<c_int>().read(),
            (*err).int1,
            if message.is_null() { &[][..] } else { CStr::from_ptr(message).to_bytes() },
        )
    };
    if code == Code::VIR_ERR_OK as c_int {
        return;
    }
    let level = match level {
        1 => "warning",
        2 => "error",
        _ => "",
    };
    let dom = domain_name(domain);
    let mut line = Vec::with_capacity(message.len() + 64);
    if domain == Domain::VIR_FROM_XML as c_int && code == Code::VIR_ERR_XML_DETAIL as c_int && int1 != 0 {
        line.extend_from_slice(format!("libvirt: {dom} {level} : line {int1}: ").as_bytes());
        line.extend_from_slice(message);
    } else {
        line.extend_from_slice(format!("libvirt: {dom} {level} : ").as_bytes());
        line.extend_from_slice(message);
        if message.last() != Some(&b'\n') {
            line.push(b'\n');
        }
    }
    let _ = std::io::stderr().write_all(&line);
}

/// Returns the calling thread's last error, or NULL when there is none. The record
/// belongs to the library and stays valid until the thread's next library call.
///
/// Since: 0.1.0
#[unsafe(no_mangle)]
pub extern "C" fn virGetLastError() -> virErrorPtr {
    let last = last_ptr();
    // SAFETY: the thread-local record is valid when non-NULL.
    if last.is_null() || unsafe { (*last).code } == 0 { ptr::null_mut() } else { last }
}

/// Returns the code (`virErrorNumber`) of the calling thread's last error, or
/// `VIR_ERR_OK`.
///
/// Since: 4.5.0
#[unsafe(no_mangle)]
pub extern "C" fn virGetLastErrorCode() -> c_int {
    let last = last_ptr();
    // SAFETY: the thread-local record is valid when non-NULL.
    if last.is_null() { 0 } else { unsafe { (*last).code } }
}

/// Returns the domain (`virErrorDomain`) of the calling thread's last error, or
/// `VIR_FROM_NONE`.
///
/// Since: 4.5.0
#[unsafe(no_mangle)]
pub extern "C" fn virGetLastErrorDomain() -> c_int {
    let last = last_ptr();
    // SAFETY: the thread-local record is valid when non-NULL.
    if last.is_null() { 0 } else { unsafe { (*last).domain } }
}

/// Returns the message of the calling thread's last error, `"no error"` when there is
/// none, or `"unknown error"` when it has no text. Never NULL; do not free it.
///
/// Since: 1.0.6
#[unsafe(no_mangle)]
pub extern "C" fn virGetLastErrorMessage() -> *const c_char {
    let last = last_ptr();
    // SAFETY: the thread-local record is valid when non-NULL.
    unsafe {
        if !last.is_null() && (*last).code == 0 {
            c"no error".as_ptr()
        } else if last.is_null() || (*last).message.is_null() {
            c"unknown error".as_ptr()
        } else {
            (*last).message
        }
    }
}

/// Clears the calling thread's last error.
///
/// Since: 0.1.0
#[unsafe(no_mangle)]
pub extern "C" fn virResetLastError() {
    reset_last_error();
}

/// Copies the calling thread's last error into `to`, which the caller later clears with
/// `virResetError()`. Returns the error code (0 when there is none), or -1 when `to` is
/// NULL.
///
/// # Safety
/// `to` must be NULL or point to writable memory for a `virError` (its old contents are
/// ignored).
///
/// Since: 0.1.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virCopyLastError(to: virErrorPtr) -> c_int {
    if to.is_null() {
        return -1;
    }
    // SAFETY: `to` is writable (contract); its old contents are not trusted.
    unsafe { to.write(empty_error()) };
    let last = last_ptr();
    if last.is_null() {
        // SAFETY: `to` is writable.
        unsafe {
            (*to).code = Code::VIR_ERR_NO_MEMORY as c_int;
            (*to).level = virErrorLevel::VIR_ERR_ERROR;
            return (*to).code;
        }
    }
    // SAFETY: both records are valid.
    unsafe {
        copy_raw(last, to);
        (*to).code
    }
}

/// Returns a copy of the calling thread's last error in a new record (with code 0 when
/// there is none); release it with `virFreeError()`. NULL only when out of memory.
///
/// Since: 0.6.1
#[unsafe(no_mangle)]
pub extern "C" fn virSaveLastError() -> virErrorPtr {
    // SAFETY: calloc has no preconditions; a zeroed block is a valid empty virError.
    let to = unsafe { libc::calloc(1, size_of::<virError>()) } as virErrorPtr;
    if !to.is_null() {
        // SAFETY: `to` is a fresh writable record.
        unsafe { virCopyLastError(to) };
    }
    to
}

/// Clears an error record and releases it; for records from `virSaveLastError()`. NULL
/// is accepted.
///
/// # Safety
/// `err` must be NULL or a record from `virSaveLastError()` not yet freed.
///
/// Since: 0.6.1
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virFreeError(err: virErrorPtr) {
    // SAFETY: forwarded from the contract.
    unsafe {
        reset_raw(err);
        free(err);
    }
}

/// Frees the strings of an error record and zeroes it. NULL is accepted.
///
/// # Safety
/// `err` must be NULL or point to a `virError` filled by this library (or zeroed).
///
/// Since: 0.1.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virResetError(err: virErrorPtr) {
    // SAFETY: forwarded from the contract.
    unsafe { reset_raw(err) }
}

/// Sets the process-wide error callback; NULL restores printing to stderr. A connection's
/// own callback (`virConnSetErrorFunc()`) takes precedence for its errors.
///
/// Since: 0.1.0
#[unsafe(no_mangle)]
pub extern "C" fn virSetErrorFunc(userData: *mut c_void, handler: virErrorFunc) {
    *GLOBAL_HANDLER.lock() = Handler { func: handler, data: userData as usize };
}

/// Sets a connection's error callback; NULL makes its errors go to the process-wide one.
///
/// # Safety
/// `conn` must be NULL or a connection handle.
///
/// Since: 0.1.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virConnSetErrorFunc(conn: virConnectPtr, userData: *mut c_void, handler: virErrorFunc) {
    // SAFETY: forwarded from the contract.
    if let Some(conn) = unsafe { ConnectHandle::from_ptr(conn) } {
        *conn.handler.lock() = Handler { func: handler, data: userData as usize };
    }
}

/// Returns the connection's copy of the last error reported through it (never NULL for a
/// valid connection; its code is 0 when there is none). Not safe against concurrent
/// calls on the same connection; prefer `virGetLastError()`.
///
/// # Safety
/// `conn` must be NULL or a connection handle.
///
/// Since: 0.1.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virConnGetLastError(conn: virConnectPtr) -> virErrorPtr {
    // SAFETY: forwarded from the contract.
    match unsafe { ConnectHandle::from_ptr(conn) } {
        // The record lives inside the connection, which the caller keeps alive.
        Some(conn) => conn.last_error.data_ptr() as virErrorPtr,
        None => ptr::null_mut(),
    }
}

/// Clears the connection's copy of the last error.
///
/// # Safety
/// `conn` must be NULL or a connection handle.
///
/// Since: 0.1.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virConnResetLastError(conn: virConnectPtr) {
    // SAFETY: forwarded from the contract.
    if let Some(conn) = unsafe { ConnectHandle::from_ptr(conn) } {
        // SAFETY: the record is valid and locked.
        unsafe { reset_raw(conn.last_error.lock().as_mut_ptr()) };
    }
}

/// Copies the connection's last error into `to`. Returns its code (0 when there is
/// none), or -1 for an invalid connection or a NULL `to`.
///
/// # Safety
/// `conn` must be NULL or a connection handle; `to` NULL or writable memory for a
/// `virError`.
///
/// Since: 0.1.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virConnCopyLastError(conn: virConnectPtr, to: virErrorPtr) -> c_int {
    if to.is_null() {
        return -1;
    }
    // SAFETY: `to` is writable (contract).
    unsafe { to.write(empty_error()) };
    // SAFETY: forwarded from the contract.
    let Some(conn) = (unsafe { ConnectHandle::from_ptr(conn) }) else {
        return -1;
    };
    let mut record = conn.last_error.lock();
    // SAFETY: both records are valid; the connection's is locked.
    unsafe {
        if (*record.as_mut_ptr()).code != 0 {
            copy_raw(record.as_mut_ptr(), to);
        }
        (*to).code
    }
}

/// Prints an error to stderr as `libvirt: <domain> <level> : <message>`.
///
/// # Safety
/// `err` must be NULL or point to a readable `virError`.
///
/// Since: 0.1.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virDefaultErrorFunc(err: virErrorPtr) {
    // SAFETY: forwarded from the contract.
    unsafe { print_default(err) }
}

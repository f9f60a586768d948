//! The C entry points, with libvirt's exact names and signatures. This is the only module
//! with `unsafe` code.
//!
//! # The contract with C callers
//!
//! * **Pointers.** Every handle argument must be NULL or a live handle returned by this
//!   library. NULL and handles of the wrong kind are detected and reported as libvirt
//!   does (`VIR_ERR_INVALID_CONN`, `VIR_ERR_INVALID_DOMAIN`, ...); a freed or garbage
//!   pointer is caught on a best-effort basis only, as in libvirt.
//! * **Ownership.** Handles are reference counted: each `*Ref` adds one reference and
//!   each `*Free` (`virConnectClose` for connections) drops one. A domain handle holds a
//!   reference on its connection, a checkpoint handle on its domain. Strings and arrays
//!   the caller releases with `free()` are allocated with `malloc()`; `const char *`
//!   results belong to the handle they came from.
//! * **Errors.** Every entry point first clears the calling thread's last error. On
//!   failure it returns -1 or NULL, records the error for the thread (and for the
//!   connection, when one is known) and passes it to the error callback, or prints it to
//!   stderr when none is set. A panic inside the library never unwinds into C: it becomes
//!   `VIR_ERR_INTERNAL_ERROR`.
//! * **Threads.** Handles may be used from any thread. The last error is per thread.

#![allow(non_snake_case, non_camel_case_types, non_upper_case_globals)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod alloc;
pub mod checkpoint;
pub mod connect;
pub mod domain;
pub mod error;
pub mod event;
mod generated;
/// cbindgen:ignore
pub mod generated_lxc;
/// cbindgen:ignore
pub mod generated_qemu;
pub mod handles;
pub mod job;
pub mod objects;
/// cbindgen:ignore
pub mod qemu;
pub mod snapshot;
pub mod storage;
pub mod structs;
mod sys;
pub mod typedparams;
mod unsupported;

use std::ffi::{CStr, c_char, c_int, c_uint};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crate::error::{Code, Domain, Error, Result};
use handles::{CheckpointHandle, ConnectHandle, DomainHandle, Handle, ObjectKind};

#[cfg(panic = "abort")]
compile_error!("the C boundary turns panics into errors with catch_unwind: build with panic = \"unwind\"");

/// The value an entry point returns on failure.
pub trait Failure {
    const FAILURE: Self;
}

impl Failure for c_int {
    const FAILURE: c_int = -1;
}

impl Failure for c_uint {
    const FAILURE: c_uint = c_uint::MAX;
}

/// `unsigned long` and `unsigned long long` results (`virDomainGetMaxMemory()`,
/// `virNodeGetFreeMemory()`) report failure as 0.
impl Failure for u64 {
    const FAILURE: u64 = 0;
}

impl<T> Failure for *mut T {
    const FAILURE: *mut T = std::ptr::null_mut();
}

impl<T> Failure for *const T {
    const FAILURE: *const T = std::ptr::null();
}

/// The state of one call through the C boundary: which API it is, which error domain
/// its own checks report in, and the connection errors are dispatched to once known.
pub struct Call {
    pub api: &'static str,
    pub from: Domain,
    conn: Option<Arc<ConnectHandle>>,
}

impl Call {
    /// Validates a connection pointer and makes it the call's error target.
    ///
    /// # Safety
    /// `ptr` must be NULL or point to memory readable as a connection handle.
    pub unsafe fn conn(&mut self, ptr: crate::abi::virConnectPtr) -> Result<Arc<ConnectHandle>> {
        // SAFETY: forwarded from this function's contract.
        let conn = unsafe { ConnectHandle::from_ptr(ptr) }
            .ok_or_else(|| Error::new(self.from, Code::VIR_ERR_INVALID_CONN, self.api))?;
        self.conn = Some(conn.clone());
        Ok(conn)
    }

    /// Validates a domain pointer and makes its connection the call's error target.
    ///
    /// # Safety
    /// `ptr` must be NULL or point to memory readable as a domain handle.
    pub unsafe fn domain(&mut self, ptr: crate::abi::virDomainPtr) -> Result<Arc<DomainHandle>> {
        // SAFETY: forwarded from this function's contract.
        let dom = unsafe { DomainHandle::from_ptr(ptr) }
            .ok_or_else(|| Error::new(Domain::VIR_FROM_DOM, Code::VIR_ERR_INVALID_DOMAIN, self.api))?;
        self.conn = Some(dom.conn.clone());
        Ok(dom)
    }

    /// Validates a checkpoint pointer and makes its connection the call's error target.
    ///
    /// # Safety
    /// `ptr` must be NULL or point to memory readable as a checkpoint handle.
    pub unsafe fn checkpoint(&mut self, ptr: crate::abi::virDomainCheckpointPtr) -> Result<Arc<CheckpointHandle>> {
        // SAFETY: forwarded from this function's contract.
        let cp = unsafe { CheckpointHandle::from_ptr(ptr) }.ok_or_else(|| {
            Error::new(Domain::VIR_FROM_DOMAIN_CHECKPOINT, Code::VIR_ERR_INVALID_DOMAIN_CHECKPOINT, self.api)
        })?;
        self.conn = Some(cp.domain.conn.clone());
        Ok(cp)
    }

    /// Validates a handle of one of the other drivers' kinds (networks, storage pools,
    /// streams, snapshots, ...). The first handle a call checks names the connection its
    /// errors go to.
    ///
    /// # Safety
    /// `ptr` must be NULL or point to memory readable as a handle.
    pub unsafe fn object<K: ObjectKind>(&mut self, ptr: *mut K::Opaque) -> Result<Arc<Handle<K>>> {
        // SAFETY: forwarded from this function's contract.
        let handle =
            unsafe { Handle::<K>::from_ptr(ptr) }.ok_or_else(|| Error::new(K::INVALID.0, K::INVALID.1, self.api))?;
        if self.conn.is_none() {
            self.conn = Some(handle.conn().clone());
        }
        Ok(handle)
    }

    /// Refuses the call when the connection of the handle checked first is read-only.
    pub fn read_only(&self) -> Result<()> {
        match &self.conn {
            Some(conn) => self.writable(conn),
            None => Ok(()),
        }
    }

    /// Fails unless `ptr` is NULL (libvirt's `virCheckNullArgGoto`).
    pub fn null<T>(&self, ptr: *const T, arg: &str) -> Result<()> {
        if ptr.is_null() {
            return Ok(());
        }
        Err(Error::arg(
            self.from,
            Code::VIR_ERR_INVALID_ARG,
            self.api,
            arg,
            format!("{arg} in {} must be NULL", self.api),
        ))
    }

    /// Fails when the string argument is NULL or empty (libvirt's
    /// `virCheckNonEmptyStringArgGoto`).
    ///
    /// # Safety
    /// `ptr` must be NULL or a NUL-terminated string.
    pub unsafe fn non_empty(&self, ptr: *const c_char, arg: &str) -> Result<()> {
        self.non_null(ptr, arg)?;
        // SAFETY: `ptr` is non-NULL and points to at least its NUL (contract).
        if unsafe { *ptr } == 0 {
            return Err(Error::arg(
                self.from,
                Code::VIR_ERR_INVALID_ARG,
                self.api,
                arg,
                format!("string {arg} in {} must not be empty", self.api),
            ));
        }
        Ok(())
    }

    /// Reads an array of `count` strings (`const char **`), which may be NULL when
    /// `count` is 0.
    ///
    /// # Safety
    /// `ptr` must be NULL or point to `count` pointers, each NULL or a NUL-terminated
    /// string.
    pub unsafe fn strings(&self, ptr: *const *const c_char, count: c_uint, arg: &str) -> Result<Vec<String>> {
        self.array(ptr, i128::from(count), arg)?;
        let mut out = Vec::with_capacity(count as usize);
        for i in 0..count as usize {
            // SAFETY: `i < count` (contract).
            let item = unsafe { *ptr.add(i) };
            // SAFETY: each item is NULL or NUL-terminated (contract).
            out.push(unsafe { self.string(item, arg)? }.to_string());
        }
        Ok(out)
    }

    /// Fails unless `fd` is an open socket (libvirt's check of descriptors it passes on).
    pub fn socket(&self, fd: c_int) -> Result<()> {
        // SAFETY: fstat writes only into the stat buffer it is given.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `stat` is a valid buffer; an invalid descriptor is reported by errno.
        if unsafe { libc::fstat(fd, &mut stat) } < 0 {
            let err = std::io::Error::last_os_error();
            return Err(Error::system(self.from, format!("Unable to access file descriptor {fd}"), &err));
        }
        if stat.st_mode & libc::S_IFMT != libc::S_IFSOCK {
            return Err(Error::arg(
                self.from,
                Code::VIR_ERR_INVALID_ARG,
                self.api,
                "fd",
                format!("fd {fd} must be a socket"),
            ));
        }
        Ok(())
    }

    /// Fails with a NULL-argument error when a callback argument is missing.
    pub fn present(&self, given: bool, arg: &str) -> Result<()> {
        if given { Ok(()) } else { Err(Error::null_arg(self.from, self.api, arg)) }
    }

    /// Fails when `ptr` is NULL although `size` says there are elements.
    pub fn array<T>(&self, ptr: *const T, size: i128, arg: &str) -> Result<()> {
        if ptr.is_null() && size > 0 { Err(Error::null_arg(self.from, self.api, arg)) } else { Ok(()) }
    }

    /// Checks a numeric argument the way libvirt's `virCheck*ArgGoto` macros do.
    pub fn number(&self, value: i128, rule: unsupported::Number, arg: &str) -> Result<()> {
        use unsupported::Number::*;
        let (ok, words) = match rule {
            Positive => (value > 0, "must be greater than zero"),
            NonZero => (value != 0, "must not be zero"),
            Zero => (value == 0, "must be zero"),
            NonNegative => (value >= 0, "must be zero or greater"),
        };
        if ok {
            return Ok(());
        }
        Err(Error::arg(self.from, Code::VIR_ERR_INVALID_ARG, self.api, arg, format!("{arg} in {} {words}", self.api)))
    }

    /// Reads a required string argument.
    ///
    /// # Safety
    /// `ptr` must be NULL or a NUL-terminated string valid for the call.
    pub unsafe fn string<'a>(&self, ptr: *const c_char, arg: &str) -> Result<&'a str> {
        if ptr.is_null() {
            return Err(Error::null_arg(self.from, self.api, arg));
        }
        // SAFETY: `ptr` is non-NULL and, by contract, NUL-terminated.
        let bytes = unsafe { CStr::from_ptr(ptr) };
        bytes.to_str().map_err(|_| {
            Error::arg(
                self.from,
                Code::VIR_ERR_INVALID_ARG,
                self.api,
                arg,
                format!("{arg} in {} must be valid UTF-8", self.api),
            )
        })
    }

    /// Fails with a NULL-argument error when `ptr` is NULL.
    pub fn non_null<T>(&self, ptr: *const T, arg: &str) -> Result<()> {
        if ptr.is_null() { Err(Error::null_arg(self.from, self.api, arg)) } else { Ok(()) }
    }

    /// Refuses two flags given together (libvirt's `VIR_EXCLUSIVE_FLAGS`).
    pub fn exclusive_flags(&self, flags: c_uint, a: (c_uint, &str), b: (c_uint, &str)) -> Result<()> {
        if flags & a.0 != 0 && flags & b.0 != 0 {
            return Err(Error::arg(
                self.from,
                Code::VIR_ERR_INVALID_ARG,
                self.api,
                "ctl",
                format!("Flags '{}' and '{}' are mutually exclusive", a.1, b.1),
            ));
        }
        Ok(())
    }

    /// Refuses a flag given without the one it needs (libvirt's `VIR_REQUIRE_FLAG`).
    pub fn required_flag(&self, flags: c_uint, needs: (c_uint, &str), by: (c_uint, &str)) -> Result<()> {
        if flags & by.0 != 0 && flags & needs.0 == 0 {
            return Err(Error::arg(
                self.from,
                Code::VIR_ERR_INVALID_ARG,
                self.api,
                "ctl",
                format!("Flag '{}' is required by flag '{}'", needs.1, by.1),
            ));
        }
        Ok(())
    }

    /// Refuses the call on a read-only connection.
    pub fn writable(&self, conn: &ConnectHandle) -> Result<()> {
        if conn.read_only {
            Err(Error::new(
                self.from,
                Code::VIR_ERR_OPERATION_DENIED,
                format!("read only access prevents {}", self.api),
            ))
        } else {
            Ok(())
        }
    }
}

/// Runs the body of an entry point the way libvirt's public functions run: clear the
/// thread's last error, do the work, and on failure record and dispatch the error and
/// return the failure value. A panic becomes `VIR_ERR_INTERNAL_ERROR`.
pub fn entry<T: Failure>(from: Domain, api: &'static str, body: impl FnOnce(&mut Call) -> Result<T>) -> T {
    error::reset_last_error();
    let mut call = Call { api, from, conn: None };
    let outcome = catch_unwind(AssertUnwindSafe(|| body(&mut call)));
    let err = match outcome {
        Ok(Ok(value)) => return value,
        Ok(Err(err)) => err,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown cause".to_string());
            Error::internal(Domain::VIR_FROM_NONE, format!("unexpected failure in {api}: {what}"))
        }
    };
    error::dispatch(&err, call.conn.as_deref());
    T::FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn quiet_errors() {
        unsafe extern "C" fn quiet(_: *mut std::ffi::c_void, _: crate::abi::virErrorPtr) {}
        error::virSetErrorFunc(std::ptr::null_mut(), Some(quiet));
    }

    #[test]
    fn a_panic_becomes_an_internal_error() {
        quiet_errors();
        let r: c_int = entry(Domain::VIR_FROM_DOMAIN, "virSomething", |_| panic!("boom"));
        assert_eq!(r, -1);
        assert_eq!(error::virGetLastErrorCode(), Code::VIR_ERR_INTERNAL_ERROR as c_int);
        // SAFETY: the message is a valid C string owned by the thread's error record.
        let message = unsafe { CStr::from_ptr(error::virGetLastErrorMessage()) };
        assert_eq!(message.to_str().unwrap(), "internal error: unexpected failure in virSomething: boom");
        let p: *mut u8 = entry(Domain::VIR_FROM_DOMAIN, "virOther", |_| panic!("{}", String::from("owned")));
        assert!(p.is_null());
    }

    #[test]
    fn success_clears_the_previous_error() {
        quiet_errors();
        let _: c_int = entry(Domain::VIR_FROM_DOMAIN, "virA", |_| {
            Err(Error::bare(Domain::VIR_FROM_TEST, Code::VIR_ERR_NO_DOMAIN))
        });
        assert_eq!(error::virGetLastErrorCode(), Code::VIR_ERR_NO_DOMAIN as c_int);
        let r: c_int = entry(Domain::VIR_FROM_DOMAIN, "virB", |_| Ok(5));
        assert_eq!(r, 5);
        assert!(error::virGetLastError().is_null());
    }
}

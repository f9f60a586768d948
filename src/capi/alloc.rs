//! Memory handed to C callers that they release with `free()`: it must come from
//! `malloc()`, never from Rust's allocator.

use std::ffi::c_char;
use std::ptr;

use crate::error::{Domain, Error, Result};

fn out_of_memory() -> Error {
    Error::bare(Domain::VIR_FROM_NONE, crate::error::Code::VIR_ERR_NO_MEMORY)
}

/// Copies `text` into a new `malloc()` block, NUL-terminated. A NUL inside `text` ends
/// the C string there.
pub fn malloc_string(text: &str) -> Result<*mut c_char> {
    let bytes = text.as_bytes();
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    // SAFETY: malloc has no preconditions; the result is checked for NULL.
    let out = unsafe { libc::malloc(len + 1) } as *mut u8;
    if out.is_null() {
        return Err(out_of_memory());
    }
    // SAFETY: `out` has room for `len + 1` bytes and does not overlap `bytes`.
    unsafe {
        ptr::copy_nonoverlapping(bytes.as_ptr(), out, len);
        *out.add(len) = 0;
    }
    Ok(out as *mut c_char)
}

/// Copies `text` into a new `malloc()` block, or returns NULL for `None`.
pub fn malloc_opt_string(text: Option<&str>) -> *mut c_char {
    text.and_then(|t| malloc_string(t).ok()).unwrap_or(ptr::null_mut())
}

/// Makes a `malloc()` array of `items.len() + 1` pointers whose last slot is NULL, as
/// libvirt's list functions return. The items are moved in.
pub fn malloc_null_terminated<T>(items: Vec<*mut T>) -> Result<*mut *mut T> {
    let slots = items.len() + 1;
    // SAFETY: calloc has no preconditions; the result is checked for NULL.
    let array = unsafe { libc::calloc(slots, size_of::<*mut T>()) } as *mut *mut T;
    if array.is_null() {
        return Err(out_of_memory());
    }
    for (i, item) in items.into_iter().enumerate() {
        // SAFETY: `i < slots - 1`, inside the block; calloc already wrote the NULL end.
        unsafe { *array.add(i) = item };
    }
    Ok(array)
}

/// Releases memory from [`malloc_string`] and friends.
///
/// # Safety
/// `p` must be NULL or a pointer from `malloc()` not yet freed.
pub unsafe fn free<T>(p: *mut T) {
    // SAFETY: forwarded from the contract.
    unsafe { libc::free(p as *mut libc::c_void) }
}

/// Frees the `malloc()` block `*ptrptr` points to and sets `*ptrptr` to NULL (libvirt's
/// own release helper). Does nothing when `ptrptr` is NULL.
///
/// # Safety
/// `ptrptr` must be NULL or point to a writable pointer that is NULL or a `malloc()`
/// block this library (or the caller) allocated and that is not freed yet.
///
/// Since: 0.0.3 (a private symbol of libvirt)
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virFree(ptrptr: *mut std::ffi::c_void) {
    if ptrptr.is_null() {
        return;
    }
    let slot = ptrptr as *mut *mut std::ffi::c_void;
    // SAFETY: `slot` is writable and holds NULL or a malloc block (contract).
    unsafe {
        free(*slot);
        *slot = ptr::null_mut();
    }
}

/// Copies `items` into the caller's array of `char *` slots, each a new `malloc()`
/// string, and returns how many. On failure the strings already copied are released and
/// the slots are left as they were.
///
/// # Safety
/// `slots` must point to at least `items.len()` writable pointers.
pub unsafe fn fill_strings(slots: *mut *mut c_char, items: &[&str]) -> Result<usize> {
    for (i, item) in items.iter().enumerate() {
        match malloc_string(item) {
            // SAFETY: `i < items.len()`, inside the caller's array (contract).
            Ok(copy) => unsafe { *slots.add(i) = copy },
            Err(e) => {
                for j in 0..i {
                    // SAFETY: slot `j` holds a string this loop allocated.
                    unsafe {
                        free(*slots.add(j));
                        *slots.add(j) = ptr::null_mut();
                    }
                }
                return Err(e);
            }
        }
    }
    Ok(items.len())
}

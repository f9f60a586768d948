//! Typed parameter lists (`virTypedParams*`): made for job statistics and events, read by
//! the caller with the getters, released with `virTypedParamsFree()`.

use std::ffi::{CStr, c_char, c_double, c_int, c_longlong, c_uint, c_ulonglong};
use std::ptr;

use super::alloc::{free, malloc_string};
use super::entry;
use crate::abi::{
    _virTypedParameterValue, VIR_TYPED_PARAM_FIELD_LENGTH, virTypedParameter, virTypedParameterPtr,
    virTypedParameterType as Type,
};
use crate::driver::{TypedParams, TypedValue};
use crate::error::{Code, Domain, Error, Result};

const FROM: Domain = Domain::VIR_FROM_NONE;

/// Copies a parameter list into a `malloc()` array the caller releases with
/// `virTypedParamsFree()`.
pub fn malloc_params(params: &TypedParams) -> Result<(virTypedParameterPtr, c_int)> {
    let n = params.len();
    // SAFETY: calloc has no preconditions; the result is checked for NULL. A zeroed
    // parameter is valid (empty name, type 0).
    let array = unsafe { libc::calloc(n.max(1), size_of::<virTypedParameter>()) } as virTypedParameterPtr;
    if array.is_null() {
        return Err(Error::bare(FROM, Code::VIR_ERR_NO_MEMORY));
    }
    for (i, (name, value)) in params.iter().enumerate() {
        let mut field = [0 as c_char; VIR_TYPED_PARAM_FIELD_LENGTH];
        for (slot, byte) in field.iter_mut().zip(name.bytes().take(VIR_TYPED_PARAM_FIELD_LENGTH - 1)) {
            *slot = byte as c_char;
        }
        let (kind, value) = match value {
            TypedValue::Int(v) => (Type::VIR_TYPED_PARAM_INT, _virTypedParameterValue { i: *v }),
            TypedValue::UInt(v) => (Type::VIR_TYPED_PARAM_UINT, _virTypedParameterValue { ui: *v }),
            TypedValue::LLong(v) => (Type::VIR_TYPED_PARAM_LLONG, _virTypedParameterValue { l: *v }),
            TypedValue::ULLong(v) => (Type::VIR_TYPED_PARAM_ULLONG, _virTypedParameterValue { ul: *v }),
            TypedValue::Double(v) => (Type::VIR_TYPED_PARAM_DOUBLE, _virTypedParameterValue { d: *v }),
            TypedValue::Boolean(v) => (Type::VIR_TYPED_PARAM_BOOLEAN, _virTypedParameterValue { b: c_char::from(*v) }),
            TypedValue::String(s) => match malloc_string(s) {
                Ok(s) => (Type::VIR_TYPED_PARAM_STRING, _virTypedParameterValue { s }),
                Err(e) => {
                    // SAFETY: the array holds `i` filled parameters and zeroed ones after.
                    unsafe { virTypedParamsFree(array, i as c_int) };
                    return Err(e);
                }
            },
        };
        // SAFETY: `i < n`, inside the block.
        unsafe { array.add(i).write(virTypedParameter { field, r#type: kind as c_int, value }) };
    }
    Ok((array, n as c_int))
}

/// The name of a typed parameter's type, as libvirt's messages spell it.
fn type_name(kind: c_int) -> &'static str {
    match kind {
        1 => "int",
        2 => "uint",
        3 => "llong",
        4 => "ullong",
        5 => "double",
        6 => "boolean",
        7 => "string",
        _ => "unknown",
    }
}

/// Releases the strings of a parameter list and zeroes it; the array itself stays.
///
/// # Safety
/// `params` must be NULL or point to `nparams` parameters whose strings came from
/// `malloc()`.
///
/// Since: 1.0.2
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virTypedParamsClear(params: virTypedParameterPtr, nparams: c_int) {
    if params.is_null() {
        return;
    }
    for i in 0..usize::try_from(nparams).unwrap_or(0) {
        // SAFETY: `i < nparams` (contract); a STRING parameter's `s` came from malloc.
        unsafe {
            let p = params.add(i);
            if (*p).r#type == Type::VIR_TYPED_PARAM_STRING as c_int {
                free((*p).value.s);
            }
            p.write_bytes(0, 1);
        }
    }
}

/// Releases a parameter list made by the library (strings and array).
///
/// # Safety
/// As for [`virTypedParamsClear`]; `params` must come from `malloc()`.
///
/// Since: 1.0.2
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virTypedParamsFree(params: virTypedParameterPtr, nparams: c_int) {
    // SAFETY: forwarded from the contract.
    unsafe {
        virTypedParamsClear(params, nparams);
        free(params);
    }
}

/// Finds a parameter by name; NULL when absent. Reports no error.
///
/// # Safety
/// `params` must be NULL or point to `nparams` parameters; `name` NULL or a
/// NUL-terminated string.
///
/// Since: 1.0.2
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virTypedParamsGet(
    params: virTypedParameterPtr,
    nparams: c_int,
    name: *const c_char,
) -> virTypedParameterPtr {
    if params.is_null() || name.is_null() {
        return ptr::null_mut();
    }
    // SAFETY: `name` is NUL-terminated (contract).
    let name = unsafe { CStr::from_ptr(name) };
    for i in 0..usize::try_from(nparams).unwrap_or(0) {
        // SAFETY: `i < nparams`, so `p` points into the caller's array; `field` is a fixed
        // array, read up to its first NUL.
        let (p, field) = unsafe {
            let p = params.add(i);
            (p, &(*p).field)
        };
        let len = field.iter().position(|&c| c == 0).unwrap_or(field.len());
        let bytes: Vec<u8> = field[..len].iter().map(|&c| c as u8).collect();
        if bytes == name.to_bytes() {
            return p;
        }
    }
    ptr::null_mut()
}

/// The shared body of the typed getters: 1 and the value when found with the right type,
/// 0 when absent, -1 when the type differs.
///
/// # Safety
/// As for [`virTypedParamsGet`].
unsafe fn get<T>(
    api: &'static str,
    params: virTypedParameterPtr,
    nparams: c_int,
    name: *const c_char,
    wanted: Type,
    read: impl FnOnce(&_virTypedParameterValue) -> T,
    out: *mut T,
) -> c_int {
    entry(FROM, api, |_| {
        // SAFETY: forwarded from the contract.
        let p = unsafe { virTypedParamsGet(params, nparams, name) };
        if p.is_null() {
            return Ok(0);
        }
        // SAFETY: `p` points into the caller's array.
        let (kind, field) =
            unsafe { ((*p).r#type, CStr::from_ptr((*p).field.as_ptr()).to_string_lossy().into_owned()) };
        if kind != wanted as c_int {
            return Err(Error::new(
                FROM,
                Code::VIR_ERR_INVALID_ARG,
                format!(
                    "Invalid type '{}' requested for parameter '{field}', actual type is '{}'",
                    type_name(wanted as c_int),
                    type_name(kind)
                ),
            ));
        }
        if !out.is_null() {
            // SAFETY: the type matches, so the member read is the valid one; `out` is
            // writable when non-NULL.
            unsafe { out.write(read(&(*p).value)) };
        }
        Ok(1)
    })
}

/// Reads an INT parameter. Returns 1 if found, 0 if absent, -1 on a type mismatch.
///
/// # Safety
/// `params`/`nparams` describe a parameter array; `name` is NUL-terminated; `value` is
/// NULL or writable.
///
/// Since: 1.0.2
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virTypedParamsGetInt(
    params: virTypedParameterPtr,
    nparams: c_int,
    name: *const c_char,
    value: *mut c_int,
) -> c_int {
    // SAFETY: forwarded; the union member matches the checked type.
    unsafe { get("virTypedParamsGetInt", params, nparams, name, Type::VIR_TYPED_PARAM_INT, |v| v.i, value) }
}

/// Reads a UINT parameter. Returns 1, 0 or -1 as `virTypedParamsGetInt()`.
///
/// # Safety
/// As for [`virTypedParamsGetInt`].
///
/// Since: 1.0.2
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virTypedParamsGetUInt(
    params: virTypedParameterPtr,
    nparams: c_int,
    name: *const c_char,
    value: *mut c_uint,
) -> c_int {
    // SAFETY: forwarded; the union member matches the checked type.
    unsafe { get("virTypedParamsGetUInt", params, nparams, name, Type::VIR_TYPED_PARAM_UINT, |v| v.ui, value) }
}

/// Reads an LLONG parameter. Returns 1, 0 or -1 as `virTypedParamsGetInt()`.
///
/// # Safety
/// As for [`virTypedParamsGetInt`].
///
/// Since: 1.0.2
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virTypedParamsGetLLong(
    params: virTypedParameterPtr,
    nparams: c_int,
    name: *const c_char,
    value: *mut c_longlong,
) -> c_int {
    // SAFETY: forwarded; the union member matches the checked type.
    unsafe { get("virTypedParamsGetLLong", params, nparams, name, Type::VIR_TYPED_PARAM_LLONG, |v| v.l, value) }
}

/// Reads a ULLONG parameter. Returns 1, 0 or -1 as `virTypedParamsGetInt()`.
///
/// # Safety
/// As for [`virTypedParamsGetInt`].
///
/// Since: 1.0.2
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virTypedParamsGetULLong(
    params: virTypedParameterPtr,
    nparams: c_int,
    name: *const c_char,
    value: *mut c_ulonglong,
) -> c_int {
    // SAFETY: forwarded; the union member matches the checked type.
    unsafe { get("virTypedParamsGetULLong", params, nparams, name, Type::VIR_TYPED_PARAM_ULLONG, |v| v.ul, value) }
}

/// Reads a DOUBLE parameter. Returns 1, 0 or -1 as `virTypedParamsGetInt()`.
///
/// # Safety
/// As for [`virTypedParamsGetInt`].
///
/// Since: 1.0.2
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virTypedParamsGetDouble(
    params: virTypedParameterPtr,
    nparams: c_int,
    name: *const c_char,
    value: *mut c_double,
) -> c_int {
    // SAFETY: forwarded; the union member matches the checked type.
    unsafe { get("virTypedParamsGetDouble", params, nparams, name, Type::VIR_TYPED_PARAM_DOUBLE, |v| v.d, value) }
}

/// Reads a BOOLEAN parameter as 0 or 1. Returns 1, 0 or -1 as `virTypedParamsGetInt()`.
///
/// # Safety
/// As for [`virTypedParamsGetInt`].
///
/// Since: 1.0.2
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virTypedParamsGetBoolean(
    params: virTypedParameterPtr,
    nparams: c_int,
    name: *const c_char,
    value: *mut c_int,
) -> c_int {
    // SAFETY: forwarded; the union member matches the checked type.
    unsafe {
        get(
            "virTypedParamsGetBoolean",
            params,
            nparams,
            name,
            Type::VIR_TYPED_PARAM_BOOLEAN,
            |v| c_int::from(v.b != 0),
            value,
        )
    }
}

/// Reads a STRING parameter; the string belongs to the parameter list. Returns 1, 0 or
/// -1 as `virTypedParamsGetInt()`.
///
/// # Safety
/// As for [`virTypedParamsGetInt`].
///
/// Since: 1.0.2
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virTypedParamsGetString(
    params: virTypedParameterPtr,
    nparams: c_int,
    name: *const c_char,
    value: *mut *const c_char,
) -> c_int {
    // SAFETY: forwarded; the union member matches the checked type.
    unsafe {
        get(
            "virTypedParamsGetString",
            params,
            nparams,
            name,
            Type::VIR_TYPED_PARAM_STRING,
            |v| v.s as *const c_char,
            value,
        )
    }
}

// ---- building parameter lists (virTypedParamsAdd*) ----------------------------------

fn out_of_memory() -> Error {
    Error::bare(FROM, Code::VIR_ERR_NO_MEMORY)
}

/// Makes room in `*array` for `add` more parameters after the first `count`, the way
/// libvirt grows arrays whose allocated size (`*alloc`) is tracked apart from the count:
/// nothing happens while they fit; otherwise the array grows by what is missing, but by at
/// least half its current size, and the new slots are zeroed. On failure `*array` and
/// `*alloc` are unchanged. (libvirt aborts the process when the sizes overflow or memory
/// runs out; this reports `VIR_ERR_NO_MEMORY` instead.)
///
/// # Safety
/// `*array` must be NULL or a `malloc()` block of `*alloc` parameters.
unsafe fn grow(array: &mut virTypedParameterPtr, alloc: &mut usize, count: usize, add: usize) -> Result<()> {
    let wanted = count.checked_add(add).ok_or_else(out_of_memory)?;
    if wanted <= *alloc {
        return Ok(());
    }
    let delta = (wanted - *alloc).max(*alloc / 2);
    let slots = alloc.checked_add(delta).ok_or_else(out_of_memory)?;
    let bytes = slots.checked_mul(size_of::<virTypedParameter>()).ok_or_else(out_of_memory)?;
    // SAFETY: `*array` is NULL or a malloc block (contract); `bytes` is not zero.
    let grown = unsafe { libc::realloc((*array).cast(), bytes) } as virTypedParameterPtr;
    if grown.is_null() {
        return Err(out_of_memory());
    }
    // SAFETY: the block holds `slots` parameters; the ones from `*alloc` on are new.
    unsafe { grown.add(*alloc).write_bytes(0, slots - *alloc) };
    *array = grown;
    *alloc = slots;
    Ok(())
}

/// A parameter name as libvirt's messages print it: `(null)` for NULL.
///
/// # Safety
/// `name` must be NULL or a NUL-terminated string.
unsafe fn shown(name: *const c_char) -> String {
    if name.is_null() {
        return "(null)".to_string();
    }
    // SAFETY: non-NULL and NUL-terminated (contract).
    unsafe { CStr::from_ptr(name) }.to_string_lossy().into_owned()
}

/// Copies `name` into a parameter's field like `g_strlcpy()`, which libvirt uses: at most
/// 79 bytes and a NUL, the rest of the field untouched. A name that does not fit leaves
/// its first 79 bytes there and fails with libvirt's "Field name '...' too long". A NULL
/// name changes nothing and succeeds (GLib refuses the copy but reports no failure).
///
/// # Safety
/// `name` must be NULL or a NUL-terminated string.
unsafe fn set_name(field: &mut [c_char; VIR_TYPED_PARAM_FIELD_LENGTH], name: *const c_char) -> Result<()> {
    if name.is_null() {
        return Ok(());
    }
    // SAFETY: non-NULL and NUL-terminated (contract).
    let bytes = unsafe { CStr::from_ptr(name) }.to_bytes();
    let kept = bytes.len().min(VIR_TYPED_PARAM_FIELD_LENGTH - 1);
    for (slot, &byte) in field.iter_mut().zip(&bytes[..kept]) {
        *slot = byte as c_char;
    }
    field[kept] = 0;
    if bytes.len() >= VIR_TYPED_PARAM_FIELD_LENGTH {
        // SAFETY: as above.
        return Err(Error::internal(FROM, format!("Field name '{}' too long", unsafe { shown(name) })));
    }
    Ok(())
}

/// The shared body of the `virTypedParamsAdd*` functions: makes room for one more
/// parameter (updating `*maxparams` even if the rest fails, as libvirt does), lets `fill`
/// write the slot after the last parameter, and counts it in `*nparams` when that worked.
///
/// # Safety
/// `params`, `nparams` and `maxparams` must be NULL or valid for reads and writes;
/// `*params` must be NULL or a `malloc()` array of `*maxparams` parameters, `*nparams` of
/// them in use.
unsafe fn add(
    api: &'static str,
    params: *mut virTypedParameterPtr,
    nparams: *mut c_int,
    maxparams: *mut c_int,
    fill: impl FnOnce(&mut virTypedParameter) -> Result<()>,
) -> c_int {
    entry(FROM, api, |call| {
        // libvirt dereferences these without checking; report instead of crashing.
        call.non_null(params, "params")?;
        call.non_null(nparams, "nparams")?;
        call.non_null(maxparams, "maxparams")?;
        // SAFETY: the three pointers are non-NULL and valid (contract). The counts are
        // widened as C widens an int to size_t.
        let (array, n, mut max) = unsafe { (&mut *params, *nparams as usize, *maxparams as usize) };
        // SAFETY: `*array` is NULL or a malloc array of `max` parameters (contract).
        let grown = unsafe { grow(array, &mut max, n, 1) };
        // SAFETY: `maxparams` is valid for writes; C narrows size_t back to int the same way.
        unsafe { *maxparams = max as c_int };
        grown?;
        if array.is_null() {
            // Only when the caller claimed room in an array that does not exist.
            return Err(Error::null_arg(FROM, api, "params"));
        }
        // SAFETY: the array has room for at least `n + 1` parameters.
        fill(unsafe { &mut *array.add(n) })?;
        // SAFETY: `nparams` is valid for writes.
        unsafe { *nparams = (*nparams).wrapping_add(1) };
        Ok(0)
    })
}

/// Stores a parameter of a fixed type: its name, then its type and value.
///
/// # Safety
/// `name` must be NULL or a NUL-terminated string.
unsafe fn fill_value(
    slot: &mut virTypedParameter,
    name: *const c_char,
    kind: Type,
    value: _virTypedParameterValue,
) -> Result<()> {
    // SAFETY: forwarded from the contract.
    unsafe { set_name(&mut slot.field, name)? };
    slot.r#type = kind as c_int;
    slot.value = value;
    Ok(())
}

/// Adds an INT parameter called `name` to `*params`, growing the array when `*maxparams`
/// leaves no room (and updating `*maxparams`), and counts it in `*nparams`. Like
/// libvirt 9.0, a name already present is added again. Returns 0, or -1 when the name is
/// too long (`VIR_ERR_INTERNAL_ERROR`).
///
/// # Safety
/// `params`, `nparams` and `maxparams` must be valid for reads and writes (NULL is
/// reported, where libvirt would crash); `*params` must be NULL or an array from
/// `malloc()` (this library's included) with room for `*maxparams` parameters, the first
/// `*nparams` in use; `name` must be NULL or a NUL-terminated string. The caller releases
/// the array with `virTypedParamsFree()`.
///
/// Since: 1.0.2
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virTypedParamsAddInt(
    params: *mut virTypedParameterPtr,
    nparams: *mut c_int,
    maxparams: *mut c_int,
    name: *const c_char,
    value: c_int,
) -> c_int {
    // SAFETY: forwarded from the contract.
    unsafe {
        add("virTypedParamsAddInt", params, nparams, maxparams, |slot| {
            fill_value(slot, name, Type::VIR_TYPED_PARAM_INT, _virTypedParameterValue { i: value })
        })
    }
}

/// Adds a UINT parameter; as `virTypedParamsAddInt()`.
///
/// # Safety
/// As for [`virTypedParamsAddInt`].
///
/// Since: 1.0.2
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virTypedParamsAddUInt(
    params: *mut virTypedParameterPtr,
    nparams: *mut c_int,
    maxparams: *mut c_int,
    name: *const c_char,
    value: c_uint,
) -> c_int {
    // SAFETY: forwarded from the contract.
    unsafe {
        add("virTypedParamsAddUInt", params, nparams, maxparams, |slot| {
            fill_value(slot, name, Type::VIR_TYPED_PARAM_UINT, _virTypedParameterValue { ui: value })
        })
    }
}

/// Adds an LLONG parameter; as `virTypedParamsAddInt()`.
///
/// # Safety
/// As for [`virTypedParamsAddInt`].
///
/// Since: 1.0.2
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virTypedParamsAddLLong(
    params: *mut virTypedParameterPtr,
    nparams: *mut c_int,
    maxparams: *mut c_int,
    name: *const c_char,
    value: c_longlong,
) -> c_int {
    // SAFETY: forwarded from the contract.
    unsafe {
        add("virTypedParamsAddLLong", params, nparams, maxparams, |slot| {
            fill_value(slot, name, Type::VIR_TYPED_PARAM_LLONG, _virTypedParameterValue { l: value })
        })
    }
}

/// Adds a ULLONG parameter; as `virTypedParamsAddInt()`.
///
/// # Safety
/// As for [`virTypedParamsAddInt`].
///
/// Since: 1.0.2
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virTypedParamsAddULLong(
    params: *mut virTypedParameterPtr,
    nparams: *mut c_int,
    maxparams: *mut c_int,
    name: *const c_char,
    value: c_ulonglong,
) -> c_int {
    // SAFETY: forwarded from the contract.
    unsafe {
        add("virTypedParamsAddULLong", params, nparams, maxparams, |slot| {
            fill_value(slot, name, Type::VIR_TYPED_PARAM_ULLONG, _virTypedParameterValue { ul: value })
        })
    }
}

/// Adds a DOUBLE parameter; as `virTypedParamsAddInt()`.
///
/// # Safety
/// As for [`virTypedParamsAddInt`].
///
/// Since: 1.0.2
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virTypedParamsAddDouble(
    params: *mut virTypedParameterPtr,
    nparams: *mut c_int,
    maxparams: *mut c_int,
    name: *const c_char,
    value: c_double,
) -> c_int {
    // SAFETY: forwarded from the contract.
    unsafe {
        add("virTypedParamsAddDouble", params, nparams, maxparams, |slot| {
            fill_value(slot, name, Type::VIR_TYPED_PARAM_DOUBLE, _virTypedParameterValue { d: value })
        })
    }
}

/// Adds a BOOLEAN parameter, stored as 1 for any nonzero `value` and 0 otherwise; as
/// `virTypedParamsAddInt()`.
///
/// # Safety
/// As for [`virTypedParamsAddInt`].
///
/// Since: 1.0.2
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virTypedParamsAddBoolean(
    params: *mut virTypedParameterPtr,
    nparams: *mut c_int,
    maxparams: *mut c_int,
    name: *const c_char,
    value: c_int,
) -> c_int {
    let b = c_char::from(value != 0);
    // SAFETY: forwarded from the contract.
    unsafe {
        add("virTypedParamsAddBoolean", params, nparams, maxparams, |slot| {
            fill_value(slot, name, Type::VIR_TYPED_PARAM_BOOLEAN, _virTypedParameterValue { b })
        })
    }
}

/// Stores a STRING parameter holding a `malloc()` copy of `value` (of "" for NULL).
///
/// # Safety
/// `name` and `value` must be NULL or NUL-terminated strings.
unsafe fn fill_string(slot: &mut virTypedParameter, name: *const c_char, value: *const c_char) -> Result<()> {
    // SAFETY: forwarded from the contract.
    unsafe { set_name(&mut slot.field, name)? };
    let source = if value.is_null() { c"".as_ptr() } else { value };
    // SAFETY: `source` is a NUL-terminated string; strdup's result is checked.
    let copy = unsafe { libc::strdup(source) };
    if copy.is_null() {
        return Err(out_of_memory());
    }
    slot.r#type = Type::VIR_TYPED_PARAM_STRING as c_int;
    slot.value = _virTypedParameterValue { s: copy };
    Ok(())
}

/// Adds a STRING parameter holding a copy of `value` (an empty string when `value` is
/// NULL), released by `virTypedParamsFree()` or `virTypedParamsClear()`; otherwise as
/// `virTypedParamsAddInt()`.
///
/// # Safety
/// As for [`virTypedParamsAddInt`]; `value` must be NULL or a NUL-terminated string.
///
/// Since: 1.0.2
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virTypedParamsAddString(
    params: *mut virTypedParameterPtr,
    nparams: *mut c_int,
    maxparams: *mut c_int,
    name: *const c_char,
    value: *const c_char,
) -> c_int {
    // SAFETY: forwarded from the contract.
    unsafe { add("virTypedParamsAddString", params, nparams, maxparams, |slot| fill_string(slot, name, value)) }
}

/// Adds one STRING parameter called `name` for each string of the NULL-terminated list
/// `values`, in order, with `virTypedParamsAddString()`, and stops at the first failure
/// (the strings added before it stay). Returns 0 when all were added, -1 on failure.
///
/// As in libvirt, this function does not clear the last error itself: a NULL `values`
/// returns 0 and an empty list returns -1, both leaving the thread's last error as it was.
///
/// # Safety
/// As for [`virTypedParamsAddString`]; `values` must be NULL or a NULL-terminated array
/// of NUL-terminated strings.
///
/// Since: 1.2.17
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virTypedParamsAddStringList(
    params: *mut virTypedParameterPtr,
    nparams: *mut c_int,
    maxparams: *mut c_int,
    name: *const c_char,
    values: *mut *const c_char,
) -> c_int {
    if values.is_null() {
        return 0;
    }
    let mut result = -1;
    for i in 0.. {
        // SAFETY: the list is NULL-terminated (contract), so slot `i` is readable until
        // the terminator has been seen.
        let value = unsafe { *values.add(i) };
        if value.is_null() {
            break;
        }
        // SAFETY: forwarded from the contract.
        result = unsafe { virTypedParamsAddString(params, nparams, maxparams, name, value) };
        if result < 0 {
            break;
        }
    }
    result
}

/// The C locale, for reading doubles whatever the process's locale is (libvirt does the
/// same); `None` when it cannot be created.
fn c_locale() -> Option<libc::locale_t> {
    static LOCALE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    // SAFETY: newlocale with a valid mask and name; the result is checked for NULL and
    // kept for the life of the process.
    let locale =
        *LOCALE.get_or_init(|| unsafe { libc::newlocale(libc::LC_ALL_MASK, c"C".as_ptr(), ptr::null_mut()) } as usize);
    (locale != 0).then_some(locale as libc::locale_t)
}

/// Runs one of C's `strto*` functions on `text` the way libvirt's number readers do:
/// `None` unless the whole string was a number in range (no trailing text, `errno` left at
/// 0, at least one character read). Also returns how many bytes were read.
///
/// # Safety
/// `text` must be a NUL-terminated string, and `parse` a `strto*`-like function.
unsafe fn parse_c<T>(
    text: *const c_char,
    parse: impl FnOnce(*const c_char, *mut *mut c_char) -> T,
) -> Option<(T, usize)> {
    let mut end: *mut c_char = ptr::null_mut();
    // SAFETY: errno is this thread's; `text` is NUL-terminated (contract) and `end` is
    // set by the call to a position inside it.
    unsafe {
        *libc::__errno_location() = 0;
        let value = parse(text, &mut end);
        let errno = *libc::__errno_location();
        let used = end.offset_from(text) as usize;
        (errno == 0 && *end == 0 && used != 0).then_some((value, used))
    }
}

/// Reads `text` as a parameter of type `kind` into `slot`, with libvirt's rules and
/// errors.
///
/// # Safety
/// `text` must be a NUL-terminated string; `name` NULL or one.
unsafe fn parse_into(
    slot: &mut virTypedParameter,
    name: *const c_char,
    kind: c_int,
    text: *const c_char,
) -> Result<()> {
    // SAFETY: forwarded from the contract.
    let field = unsafe { shown(name) };
    let invalid = |expected: &str| {
        Error::new(FROM, Code::VIR_ERR_INVALID_ARG, format!("Invalid value for field '{field}': expected {expected}"))
    };
    match kind {
        k if k == Type::VIR_TYPED_PARAM_INT as c_int => {
            // SAFETY: `text` is NUL-terminated (contract); the closure is strtol on it.
            let read = unsafe { parse_c(text, |s, end| libc::strtol(s, end, 10)) };
            let v = read.and_then(|(v, _)| c_int::try_from(v).ok()).ok_or_else(|| invalid("int"))?;
            slot.value = _virTypedParameterValue { i: v };
        }
        k if k == Type::VIR_TYPED_PARAM_UINT as c_int => {
            // A negative number is accepted when its magnitude fits: "-1" is UINT_MAX.
            // SAFETY: `text` is NUL-terminated (contract); the closure is strtoul on it.
            let read = unsafe { parse_c(text, |s, end| libc::strtoul(s, end, 10)) };
            let v = read
                .and_then(|(v, used)| {
                    // SAFETY: the first `used` bytes of `text` were read by strtoul.
                    let consumed = unsafe { std::slice::from_raw_parts(text.cast::<u8>(), used) };
                    if consumed.contains(&b'-') {
                        (v.wrapping_neg() <= u64::from(c_uint::MAX)).then_some(v & 0xffff_ffff)
                    } else {
                        Some(v)
                    }
                })
                .and_then(|v| c_uint::try_from(v).ok())
                .ok_or_else(|| invalid("unsigned int"))?;
            slot.value = _virTypedParameterValue { ui: v };
        }
        k if k == Type::VIR_TYPED_PARAM_LLONG as c_int => {
            // SAFETY: `text` is NUL-terminated (contract); the closure is strtoll on it.
            let read = unsafe { parse_c(text, |s, end| libc::strtoll(s, end, 10)) };
            let (v, _) = read.ok_or_else(|| invalid("long long"))?;
            slot.value = _virTypedParameterValue { l: v };
        }
        k if k == Type::VIR_TYPED_PARAM_ULLONG as c_int => {
            // SAFETY: `text` is NUL-terminated (contract); the closure is strtoull on it.
            let read = unsafe { parse_c(text, |s, end| libc::strtoull(s, end, 10)) };
            let (v, _) = read.ok_or_else(|| invalid("unsigned long long"))?;
            slot.value = _virTypedParameterValue { ul: v };
        }
        k if k == Type::VIR_TYPED_PARAM_DOUBLE as c_int => {
            let locale = c_locale().ok_or_else(|| invalid("double"))?;
            // SAFETY: uselocale switches this thread's locale only, and back at once; `text`
            // is NUL-terminated (contract) and the closure is strtod on it.
            let read = unsafe {
                let previous = libc::uselocale(locale);
                let read = parse_c(text, |s, end| libc::strtod(s, end));
                libc::uselocale(previous);
                read
            };
            let (v, _) = read.ok_or_else(|| invalid("double"))?;
            slot.value = _virTypedParameterValue { d: v };
        }
        k if k == Type::VIR_TYPED_PARAM_BOOLEAN as c_int => {
            // SAFETY: NUL-terminated (contract).
            let bytes = unsafe { CStr::from_ptr(text) }.to_bytes();
            let b = if bytes.eq_ignore_ascii_case(b"true") || bytes == b"1" {
                1
            } else if bytes.eq_ignore_ascii_case(b"false") || bytes == b"0" {
                0
            } else {
                return Err(Error::new(
                    FROM,
                    Code::VIR_ERR_INVALID_ARG,
                    format!("Invalid boolean value for field '{field}'"),
                ));
            };
            slot.value = _virTypedParameterValue { b };
        }
        k if k == Type::VIR_TYPED_PARAM_STRING as c_int => {
            // SAFETY: NUL-terminated (contract); strdup's result is checked.
            let copy = unsafe { libc::strdup(text) };
            if copy.is_null() {
                return Err(out_of_memory());
            }
            slot.value = _virTypedParameterValue { s: copy };
        }
        other => return Err(Error::internal(FROM, format!("unexpected type {other} for field {field}"))),
    }
    Ok(())
}

/// Adds a parameter called `name` of type `type` (a `virTypedParameterType`) whose value
/// is read from the text `value`: integers in base 10 as C's `strtol()` family reads them
/// (leading white space allowed, trailing text refused; for UINT a negative value wraps,
/// `"-1"` being UINT_MAX), doubles as `strtod()` in the C locale, booleans as `true`,
/// `false` (any case), `1` or `0`, strings copied. Otherwise as `virTypedParamsAddInt()`.
///
/// Errors, in libvirt's order: a NULL `value` (`VIR_ERR_INVALID_ARG`, "NULL value for
/// field"), a name that is too long (`VIR_ERR_INTERNAL_ERROR`), text that is not a value
/// of the type (`VIR_ERR_INVALID_ARG`), an unknown type (`VIR_ERR_INTERNAL_ERROR`).
///
/// # Safety
/// As for [`virTypedParamsAddInt`]; `value` must be NULL or a NUL-terminated string.
///
/// Since: 1.0.2
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virTypedParamsAddFromString(
    params: *mut virTypedParameterPtr,
    nparams: *mut c_int,
    maxparams: *mut c_int,
    name: *const c_char,
    r#type: c_int,
    value: *const c_char,
) -> c_int {
    // SAFETY: forwarded from the contract.
    unsafe {
        add("virTypedParamsAddFromString", params, nparams, maxparams, |slot| {
            if value.is_null() {
                return Err(Error::new(
                    FROM,
                    Code::VIR_ERR_INVALID_ARG,
                    format!("NULL value for field '{}'", shown(name)),
                ));
            }
            set_name(&mut slot.field, name)?;
            // libvirt records the type before reading the value.
            slot.r#type = r#type;
            parse_into(slot, name, r#type, value)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_through_the_getters() {
        let params: TypedParams = vec![
            ("operation".into(), TypedValue::Int(9)),
            ("time_elapsed".into(), TypedValue::ULLong(1234)),
            ("success".into(), TypedValue::Boolean(true)),
            ("errmsg".into(), TypedValue::String("boom".into())),
            ("x".repeat(100), TypedValue::Double(0.5)),
        ];
        let (array, n) = malloc_params(&params).unwrap();
        // SAFETY: the array came from malloc_params with `n` entries.
        unsafe {
            let (mut i, mut ul, mut b, mut s) = (0, 0u64, 0, ptr::null());
            assert_eq!(virTypedParamsGetInt(array, n, c"operation".as_ptr(), &mut i), 1);
            assert_eq!(i, 9);
            assert_eq!(virTypedParamsGetULLong(array, n, c"time_elapsed".as_ptr(), &mut ul), 1);
            assert_eq!(ul, 1234);
            assert_eq!(virTypedParamsGetBoolean(array, n, c"success".as_ptr(), &mut b), 1);
            assert_eq!(b, 1);
            assert_eq!(virTypedParamsGetString(array, n, c"errmsg".as_ptr(), &mut s), 1);
            assert_eq!(CStr::from_ptr(s).to_str().unwrap(), "boom");
            assert_eq!(virTypedParamsGetInt(array, n, c"missing".as_ptr(), &mut i), 0);
            // Names are truncated to 79 bytes.
            assert!(
                !virTypedParamsGet(
                    array,
                    n,
                    CStr::from_bytes_with_nul(format!("{}\0", "x".repeat(79)).as_bytes()).unwrap().as_ptr()
                )
                .is_null()
            );
            assert_eq!(virTypedParamsGetInt(array, n, c"time_elapsed".as_ptr(), &mut i), -1);
            virTypedParamsFree(array, n);
        }
    }

    use crate::capi::error::{virGetLastError, virGetLastErrorCode, virSetErrorFunc};
    use std::ffi::CString;

    fn quiet_errors() {
        unsafe extern "C" fn quiet(_: *mut std::ffi::c_void, _: crate::abi::virErrorPtr) {}
        virSetErrorFunc(ptr::null_mut(), Some(quiet));
    }

    fn last_message() -> Option<String> {
        let e = virGetLastError();
        // SAFETY: a non-NULL record is the thread's own, with a NUL-terminated message.
        (!e.is_null()).then(|| unsafe { CStr::from_ptr((*e).message) }.to_string_lossy().into_owned())
    }

    /// A parameter list being built, released on drop.
    struct List {
        p: virTypedParameterPtr,
        n: c_int,
        max: c_int,
    }

    impl List {
        fn new() -> List {
            List { p: ptr::null_mut(), n: 0, max: 0 }
        }

        fn field(&self, i: usize) -> String {
            // SAFETY: callers only name slots below `max`; fields are NUL-terminated.
            unsafe { CStr::from_ptr((*self.p.add(i)).field.as_ptr()) }.to_string_lossy().into_owned()
        }

        fn kind(&self, i: usize) -> c_int {
            // SAFETY: callers only name slots below `max`.
            unsafe { (*self.p.add(i)).r#type }
        }

        fn from(&mut self, name: &str, kind: Type, text: &str) -> c_int {
            let (name, text) = (CString::new(name).unwrap(), CString::new(text).unwrap());
            // SAFETY: valid out-parameters and strings.
            unsafe {
                virTypedParamsAddFromString(
                    &mut self.p,
                    &mut self.n,
                    &mut self.max,
                    name.as_ptr(),
                    kind as c_int,
                    text.as_ptr(),
                )
            }
        }
    }

    impl Drop for List {
        fn drop(&mut self) {
            // SAFETY: the array came from the Add functions, `n` parameters in use.
            unsafe { virTypedParamsFree(self.p, self.n) };
        }
    }

    #[test]
    fn the_array_grows_as_libvirt_s_does() {
        let mut l = List::new();
        let mut sizes = vec![];
        for i in 0..20 {
            let name = CString::new(format!("g{i}")).unwrap();
            // SAFETY: valid out-parameters and name.
            assert_eq!(unsafe { virTypedParamsAddInt(&mut l.p, &mut l.n, &mut l.max, name.as_ptr(), i) }, 0);
            sizes.push(l.max);
        }
        assert_eq!(sizes, [1, 2, 3, 4, 6, 6, 9, 9, 9, 13, 13, 13, 13, 19, 19, 19, 19, 19, 19, 28]);
        assert_eq!(l.n, 20);
        let mut v = 0;
        // SAFETY: the list holds 20 parameters.
        assert_eq!(unsafe { virTypedParamsGetInt(l.p, l.n, c"g19".as_ptr(), &mut v) }, 1);
        assert_eq!(v, 19);
        // Unused slots are zeroed.
        assert_eq!((l.field(20), l.kind(27)), (String::new(), 0));
    }

    #[test]
    fn every_type_and_repeated_names() {
        let mut l = List::new();
        // SAFETY: valid out-parameters and strings.
        unsafe {
            let (p, n, m) = (&mut l.p, &mut l.n, &mut l.max);
            assert_eq!(virTypedParamsAddInt(p, n, m, c"i".as_ptr(), -1), 0);
            assert_eq!(virTypedParamsAddUInt(p, n, m, c"ui".as_ptr(), u32::MAX), 0);
            assert_eq!(virTypedParamsAddLLong(p, n, m, c"l".as_ptr(), i64::MIN), 0);
            assert_eq!(virTypedParamsAddULLong(p, n, m, c"ul".as_ptr(), u64::MAX), 0);
            assert_eq!(virTypedParamsAddDouble(p, n, m, c"d".as_ptr(), 0.25), 0);
            assert_eq!(virTypedParamsAddBoolean(p, n, m, c"b".as_ptr(), 42), 0);
            assert_eq!(virTypedParamsAddString(p, n, m, c"s".as_ptr(), c"text".as_ptr()), 0);
            assert_eq!(virTypedParamsAddString(p, n, m, c"empty".as_ptr(), ptr::null()), 0);
            // libvirt 9.0 does not refuse a name that is already present.
            assert_eq!(virTypedParamsAddInt(p, n, m, c"i".as_ptr(), 2), 0);
            assert!(virGetLastError().is_null());
        }
        assert_eq!(l.n, 9);
        // SAFETY: the list holds `n` parameters; out-parameters are valid.
        unsafe {
            let (mut i, mut ui, mut ll, mut ull, mut d, mut b, mut s) = (0, 0, 0, 0, 0.0, 0, ptr::null());
            assert_eq!(virTypedParamsGetInt(l.p, l.n, c"i".as_ptr(), &mut i), 1);
            assert_eq!(virTypedParamsGetUInt(l.p, l.n, c"ui".as_ptr(), &mut ui), 1);
            assert_eq!(virTypedParamsGetLLong(l.p, l.n, c"l".as_ptr(), &mut ll), 1);
            assert_eq!(virTypedParamsGetULLong(l.p, l.n, c"ul".as_ptr(), &mut ull), 1);
            assert_eq!(virTypedParamsGetDouble(l.p, l.n, c"d".as_ptr(), &mut d), 1);
            assert_eq!(virTypedParamsGetBoolean(l.p, l.n, c"b".as_ptr(), &mut b), 1);
            assert_eq!((i, ui, ll, ull, d, b), (-1, u32::MAX, i64::MIN, u64::MAX, 0.25, 1));
            assert_eq!((*l.p.add(5)).value.b, 1);
            assert_eq!(virTypedParamsGetString(l.p, l.n, c"s".as_ptr(), &mut s), 1);
            assert_eq!(CStr::from_ptr(s).to_str().unwrap(), "text");
            assert_eq!(virTypedParamsGetString(l.p, l.n, c"empty".as_ptr(), &mut s), 1);
            assert_eq!(CStr::from_ptr(s).to_str().unwrap(), "");
        }
        assert_eq!((l.field(8), l.kind(8)), ("i".to_string(), Type::VIR_TYPED_PARAM_INT as c_int));
    }

    #[test]
    fn names_that_do_not_fit_or_are_null() {
        quiet_errors();
        let mut l = List::new();
        let fits = CString::new("x".repeat(79)).unwrap();
        let long = CString::new("y".repeat(80)).unwrap();
        // SAFETY: valid out-parameters and strings.
        unsafe {
            assert_eq!(virTypedParamsAddInt(&mut l.p, &mut l.n, &mut l.max, fits.as_ptr(), 1), 0);
            assert_eq!(virTypedParamsAddString(&mut l.p, &mut l.n, &mut l.max, long.as_ptr(), c"v".as_ptr()), -1);
        }
        assert_eq!(virGetLastErrorCode(), Code::VIR_ERR_INTERNAL_ERROR as c_int);
        assert_eq!(last_message().unwrap(), format!("internal error: Field name '{}' too long", "y".repeat(80)));
        // The array grew anyway, and the unused slot holds the first 79 bytes.
        assert_eq!((l.n, l.max), (1, 2));
        assert_eq!((l.field(1), l.kind(1)), ("y".repeat(79), 0));
        // A NULL name leaves the slot's name as it is.
        // SAFETY: as above.
        assert_eq!(unsafe { virTypedParamsAddInt(&mut l.p, &mut l.n, &mut l.max, ptr::null(), 7) }, 0);
        assert!(virGetLastError().is_null());
        assert_eq!((l.field(1), l.kind(1), l.n), ("y".repeat(79), 1, 2));
    }

    #[test]
    fn null_list_pointers_are_reported() {
        quiet_errors();
        let (mut n, mut max) = (0, 0);
        // SAFETY: the NULL pointers are detected before any access.
        let r = unsafe { virTypedParamsAddInt(ptr::null_mut(), &mut n, &mut max, c"a".as_ptr(), 1) };
        assert_eq!(r, -1);
        assert_eq!(last_message().unwrap(), "params in virTypedParamsAddInt must not be NULL");
        let mut p = ptr::null_mut();
        // SAFETY: as above.
        let r = unsafe { virTypedParamsAddDouble(&mut p, &mut n, ptr::null_mut(), c"a".as_ptr(), 1.0) };
        assert_eq!(r, -1);
        assert_eq!(last_message().unwrap(), "maxparams in virTypedParamsAddDouble must not be NULL");
        assert!(p.is_null());
    }

    #[test]
    fn from_string_reads_like_libvirt() {
        quiet_errors();
        let mut l = List::new();
        let good: &[(Type, &str)] = &[
            (Type::VIR_TYPED_PARAM_INT, " -42"),
            (Type::VIR_TYPED_PARAM_INT, "2147483647"),
            (Type::VIR_TYPED_PARAM_UINT, "-1"),
            (Type::VIR_TYPED_PARAM_UINT, "-4294967295"),
            (Type::VIR_TYPED_PARAM_LLONG, "-9223372036854775808"),
            (Type::VIR_TYPED_PARAM_ULLONG, "-1"),
            (Type::VIR_TYPED_PARAM_DOUBLE, "0x1p3"),
            (Type::VIR_TYPED_PARAM_DOUBLE, "-inf"),
            (Type::VIR_TYPED_PARAM_BOOLEAN, "TrUe"),
            (Type::VIR_TYPED_PARAM_BOOLEAN, "0"),
            (Type::VIR_TYPED_PARAM_STRING, ""),
        ];
        for (i, (kind, text)) in good.iter().enumerate() {
            assert_eq!(l.from(&format!("g{i}"), *kind, text), 0, "{kind:?} {text:?}");
        }
        // SAFETY: the list holds the parameters just added; union members match the types.
        unsafe {
            let v = |i: usize| (*l.p.add(i)).value;
            assert_eq!((v(0).i, v(1).i, v(2).ui, v(3).ui), (-42, i32::MAX, u32::MAX, 1));
            assert_eq!((v(4).l, v(5).ul, v(6).d, v(7).d), (i64::MIN, u64::MAX, 8.0, f64::NEG_INFINITY));
            assert_eq!((v(8).b, v(9).b, *v(10).s), (1, 0, 0));
        }
        let bad: &[(Type, &str, &str)] = &[
            (Type::VIR_TYPED_PARAM_INT, "7 ", "expected int"),
            (Type::VIR_TYPED_PARAM_INT, "2147483648", "expected int"),
            (Type::VIR_TYPED_PARAM_INT, "", "expected int"),
            (Type::VIR_TYPED_PARAM_UINT, "4294967296", "expected unsigned int"),
            (Type::VIR_TYPED_PARAM_UINT, "-4294967296", "expected unsigned int"),
            (Type::VIR_TYPED_PARAM_LLONG, "9223372036854775808", "expected long long"),
            (Type::VIR_TYPED_PARAM_ULLONG, "18446744073709551616", "expected unsigned long long"),
            (Type::VIR_TYPED_PARAM_DOUBLE, "1,5", "expected double"),
            (Type::VIR_TYPED_PARAM_DOUBLE, "1e-320", "expected double"),
        ];
        for (kind, text, expected) in bad {
            assert_eq!(l.from("bad", *kind, text), -1, "{kind:?} {text:?}");
            assert_eq!(virGetLastErrorCode(), Code::VIR_ERR_INVALID_ARG as c_int);
            assert_eq!(last_message().unwrap(), format!("invalid argument: Invalid value for field 'bad': {expected}"));
            // The name and the type are recorded in the unused slot before the value is read.
            assert_eq!((l.field(l.n as usize), l.kind(l.n as usize)), ("bad".to_string(), *kind as c_int));
        }
        assert_eq!(l.from("flag", Type::VIR_TYPED_PARAM_BOOLEAN, "yes"), -1);
        assert_eq!(last_message().unwrap(), "invalid argument: Invalid boolean value for field 'flag'");
        // SAFETY: valid out-parameters and strings.
        let r = unsafe { virTypedParamsAddFromString(&mut l.p, &mut l.n, &mut l.max, c"x".as_ptr(), 9, c"1".as_ptr()) };
        assert_eq!(r, -1);
        assert_eq!(virGetLastErrorCode(), Code::VIR_ERR_INTERNAL_ERROR as c_int);
        assert_eq!(last_message().unwrap(), "internal error: unexpected type 9 for field x");
        // SAFETY: as above.
        let r = unsafe { virTypedParamsAddFromString(&mut l.p, &mut l.n, &mut l.max, ptr::null(), 1, ptr::null()) };
        assert_eq!(r, -1);
        assert_eq!(last_message().unwrap(), "invalid argument: NULL value for field '(null)'");
        assert_eq!(l.n, good.len() as c_int);
    }

    #[test]
    fn string_lists_and_the_last_error() {
        quiet_errors();
        let mut l = List::new();
        let mut three = [c"a".as_ptr(), c"b".as_ptr(), c"c".as_ptr(), ptr::null()];
        let mut none = [ptr::null::<c_char>()];
        let long = CString::new("z".repeat(90)).unwrap();
        // SAFETY: valid out-parameters, names and NULL-terminated lists.
        unsafe {
            let (p, n, m) = (&mut l.p, &mut l.n, &mut l.max);
            assert_eq!(virTypedParamsAddStringList(p, n, m, c"k".as_ptr(), three.as_mut_ptr()), 0);
            assert_eq!(virTypedParamsAddInt(p, n, m, long.as_ptr(), 0), -1);
            // Neither a NULL nor an empty list clears the error; the empty one fails.
            assert_eq!(virTypedParamsAddStringList(p, n, m, c"k".as_ptr(), ptr::null_mut()), 0);
            assert!(last_message().unwrap().contains("too long"));
            assert_eq!(virTypedParamsAddStringList(p, n, m, c"k".as_ptr(), none.as_mut_ptr()), -1);
            assert!(last_message().unwrap().contains("too long"));
            assert_eq!(virTypedParamsAddStringList(p, n, m, long.as_ptr(), three.as_mut_ptr()), -1);
        }
        assert_eq!(l.n, 3);
        for (i, want) in ["a", "b", "c"].iter().enumerate() {
            assert_eq!(l.field(i), "k");
            // SAFETY: parameter `i` is a STRING.
            assert_eq!(unsafe { CStr::from_ptr((*l.p.add(i)).value.s) }.to_str().unwrap(), *want);
        }
    }
}

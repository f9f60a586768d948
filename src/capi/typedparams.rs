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
}

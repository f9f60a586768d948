//! Typed parameters (`virTypedParameter`), the name/value lists of job statistics and
//! event payloads.

use std::ffi::{c_char, c_double, c_int, c_longlong, c_uint, c_ulonglong};

/// Bytes in a typed parameter's name, NUL included.
///
/// Since: 0.9.2
pub const VIR_TYPED_PARAM_FIELD_LENGTH: usize = 80;

/// The type of a typed parameter's value.
///
/// Since: 0.9.2
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virTypedParameterType {
    VIR_TYPED_PARAM_INT = 1,
    VIR_TYPED_PARAM_UINT = 2,
    VIR_TYPED_PARAM_LLONG = 3,
    VIR_TYPED_PARAM_ULLONG = 4,
    VIR_TYPED_PARAM_DOUBLE = 5,
    VIR_TYPED_PARAM_BOOLEAN = 6,
    VIR_TYPED_PARAM_STRING = 7,
    #[cfg(vir_enum_sentinels)]
    VIR_TYPED_PARAM_LAST = 8,
}

/// Flags of calls that take or return typed parameters.
///
/// Since: 0.9.2
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virTypedParameterFlags {
    /// The caller accepts string parameters.
    VIR_TYPED_PARAM_STRING_OKAY = 1 << 2,
}

/// The value of a typed parameter; which member is valid depends on its type. (libvirt's
/// header declares this union inline in `virTypedParameter`; the layout is the same.)
///
/// Since: 0.9.2
#[repr(C)]
#[derive(Clone, Copy)]
pub union _virTypedParameterValue {
    pub i: c_int,
    pub ui: c_uint,
    pub l: c_longlong,
    pub ul: c_ulonglong,
    pub d: c_double,
    pub b: c_char,
    /// A `malloc()` string, never NULL.
    pub s: *mut c_char,
}

/// One named, typed value.
///
/// Since: 0.9.2
#[repr(C)]
#[derive(Clone, Copy)]
pub struct _virTypedParameter {
    /// The name, NUL-terminated.
    pub field: [c_char; VIR_TYPED_PARAM_FIELD_LENGTH],
    /// A `virTypedParameterType`.
    pub r#type: c_int,
    pub value: _virTypedParameterValue,
}

/// A typed parameter.
pub type virTypedParameter = _virTypedParameter;

/// A pointer to typed parameters.
pub type virTypedParameterPtr = *mut virTypedParameter;

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
static_assertions::const_assert_eq!(std::mem::size_of::<virTypedParameter>(), 96);

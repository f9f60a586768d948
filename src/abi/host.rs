//! Connection-level types of libvirt's `libvirt-host.h` and `libvirt-common.h`.

use std::ffi::{c_char, c_int, c_uint, c_void};

/// The libvirt API level this library implements: 9.0.0, as `major * 1000000 +
/// minor * 1000 + micro`. `virGetVersion()` reports the same number.
///
/// Since: 1.2.0 (as a macro of libvirt-common.h)
pub const LIBVIR_VERSION_NUMBER: u32 = 9000000;

/// Bytes in a raw UUID.
///
/// Since: 0.2.0
pub const VIR_UUID_BUFLEN: usize = 16;

/// Bytes needed for a UUID in text form (36 characters and the terminating NUL).
///
/// Since: 0.2.0
pub const VIR_UUID_STRING_BUFLEN: usize = 37;

/// An opaque connection to a hypervisor driver.
///
/// Made by `virConnectOpen()`, `virConnectOpenReadOnly()` or `virConnectOpenAuth()`;
/// reference counted (`virConnectRef()`), released with `virConnectClose()`. Every
/// domain handle holds a reference on its connection, so a connection outlives
/// `virConnectClose()` while domains made from it are alive. Safe to share between
/// threads.
///
/// Since: 0.0.1
pub struct _virConnect {
    _private: [u8; 0],
}

/// A connection object.
pub type virConnect = _virConnect;

/// A pointer to a connection object.
pub type virConnectPtr = *mut virConnect;

/// An opaque network object. This library has no network API; the type exists because
/// `virError` names it.
///
/// Since: 0.2.0
pub struct _virNetwork {
    _private: [u8; 0],
}

/// A network object.
pub type virNetwork = _virNetwork;

/// A pointer to a network object.
pub type virNetworkPtr = *mut virNetwork;

/// Flags for `virConnectOpenAuth()`.
///
/// Since: 0.4.1
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virConnectFlags {
    /// Open the connection read-only: calls that change state are refused.
    VIR_CONNECT_RO = 1 << 0,
    /// Do not resolve URI aliases (accepted; this library has no aliases).
    VIR_CONNECT_NO_ALIASES = 1 << 1,
}

/// Kinds of credential an authentication callback may be asked for.
///
/// Since: 0.4.1
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virConnectCredentialType {
    VIR_CRED_USERNAME = 1,
    VIR_CRED_AUTHNAME = 2,
    VIR_CRED_LANGUAGE = 3,
    VIR_CRED_CNONCE = 4,
    VIR_CRED_PASSPHRASE = 5,
    VIR_CRED_ECHOPROMPT = 6,
    VIR_CRED_NOECHOPROMPT = 7,
    VIR_CRED_REALM = 8,
    VIR_CRED_EXTERNAL = 9,
    #[cfg(vir_enum_sentinels)]
    VIR_CRED_LAST = 10,
}

/// One credential request passed to an authentication callback.
///
/// Since: 0.4.1
#[repr(C)]
pub struct _virConnectCredential {
    /// A `virConnectCredentialType`.
    pub r#type: c_int,
    /// Prompt to show the user.
    pub prompt: *const c_char,
    /// Extra challenge information.
    pub challenge: *const c_char,
    /// Default result, if any.
    pub defresult: *const c_char,
    /// The answer, allocated by the callback with `malloc()`.
    pub result: *mut c_char,
    /// Length of `result`.
    pub resultlen: c_uint,
}

/// A credential request.
pub type virConnectCredential = _virConnectCredential;

/// A pointer to a credential request.
pub type virConnectCredentialPtr = *mut virConnectCredential;

/// A callback that fills in credentials; returns 0 on success, -1 on failure.
///
/// Since: 0.4.1
pub type virConnectAuthCallbackPtr =
    Option<unsafe extern "C" fn(cred: virConnectCredentialPtr, ncred: c_uint, cbdata: *mut c_void) -> c_int>;

/// Authentication parameters for `virConnectOpenAuth()`. The drivers of this library
/// run in-process and never need credentials, so the callback is never called.
///
/// Since: 0.4.1
#[repr(C)]
pub struct _virConnectAuth {
    /// The credential types the callback supports.
    pub credtype: *mut c_int,
    /// Number of entries in `credtype`.
    pub ncredtype: c_uint,
    /// The callback.
    pub cb: virConnectAuthCallbackPtr,
    /// Opaque data for the callback.
    pub cbdata: *mut c_void,
}

/// Authentication parameters.
pub type virConnectAuth = _virConnectAuth;

/// A pointer to authentication parameters.
pub type virConnectAuthPtr = *mut virConnectAuth;

//! What the generated entry points (`generated.rs`) share: libvirt's public checks have
//! passed, and the operation is not implemented.

use super::{Call, Failure, entry};
use crate::error::{Domain, Error, Result};

/// The numeric argument rules of libvirt's public checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Number {
    Positive,
    NonZero,
    Zero,
    NonNegative,
}

/// Runs `checks` as the entry point `api` of a libvirt source file whose errors belong to
/// `from`, then fails with `VIR_ERR_NO_SUPPORT`: "this function is not supported by the
/// connection driver: <api>", as libvirt reports a driver without the operation.
pub fn not_supported<T: Failure>(from: Domain, api: &'static str, checks: impl FnOnce(&mut Call) -> Result<()>) -> T {
    entry(from, api, |call| {
        checks(call)?;
        Err(Error::no_support(from, api))
    })
}

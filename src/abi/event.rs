//! Domain events and the default event loop (`libvirt-domain.h`, `libvirt-event.h`).

use std::ffi::{c_int, c_void};

use super::domain::virDomainPtr;
use super::host::virConnectPtr;
use super::typedparam::virTypedParameterPtr;

/// The kinds of domain event a callback can be registered for.
///
/// Since: 0.8.0
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virDomainEventID {
    VIR_DOMAIN_EVENT_ID_LIFECYCLE = 0,
    VIR_DOMAIN_EVENT_ID_REBOOT = 1,
    VIR_DOMAIN_EVENT_ID_RTC_CHANGE = 2,
    VIR_DOMAIN_EVENT_ID_WATCHDOG = 3,
    VIR_DOMAIN_EVENT_ID_IO_ERROR = 4,
    VIR_DOMAIN_EVENT_ID_GRAPHICS = 5,
    VIR_DOMAIN_EVENT_ID_IO_ERROR_REASON = 6,
    VIR_DOMAIN_EVENT_ID_CONTROL_ERROR = 7,
    /// A block job ended (`virConnectDomainEventBlockJobCallback`, disks by path).
    VIR_DOMAIN_EVENT_ID_BLOCK_JOB = 8,
    VIR_DOMAIN_EVENT_ID_DISK_CHANGE = 9,
    VIR_DOMAIN_EVENT_ID_TRAY_CHANGE = 10,
    VIR_DOMAIN_EVENT_ID_PMWAKEUP = 11,
    VIR_DOMAIN_EVENT_ID_PMSUSPEND = 12,
    VIR_DOMAIN_EVENT_ID_BALLOON_CHANGE = 13,
    VIR_DOMAIN_EVENT_ID_PMSUSPEND_DISK = 14,
    VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED = 15,
    /// A block job ended (`virConnectDomainEventBlockJobCallback`, disks by target).
    VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2 = 16,
    VIR_DOMAIN_EVENT_ID_TUNABLE = 17,
    VIR_DOMAIN_EVENT_ID_AGENT_LIFECYCLE = 18,
    VIR_DOMAIN_EVENT_ID_DEVICE_ADDED = 19,
    VIR_DOMAIN_EVENT_ID_MIGRATION_ITERATION = 20,
    /// A job ended (`virConnectDomainEventJobCompletedCallback`).
    VIR_DOMAIN_EVENT_ID_JOB_COMPLETED = 21,
    VIR_DOMAIN_EVENT_ID_DEVICE_REMOVAL_FAILED = 22,
    VIR_DOMAIN_EVENT_ID_METADATA_CHANGE = 23,
    VIR_DOMAIN_EVENT_ID_BLOCK_THRESHOLD = 24,
    VIR_DOMAIN_EVENT_ID_MEMORY_FAILURE = 25,
    VIR_DOMAIN_EVENT_ID_MEMORY_DEVICE_SIZE_CHANGE = 26,
    #[cfg(vir_enum_sentinels)]
    VIR_DOMAIN_EVENT_ID_LAST = 27,
}

/// How a block job ended (for block job events).
///
/// Since: 0.9.4
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virConnectDomainEventBlockJobStatus {
    VIR_DOMAIN_BLOCK_JOB_COMPLETED = 0,
    VIR_DOMAIN_BLOCK_JOB_FAILED = 1,
    VIR_DOMAIN_BLOCK_JOB_CANCELED = 2,
    VIR_DOMAIN_BLOCK_JOB_READY = 3,
    #[cfg(vir_enum_sentinels)]
    VIR_DOMAIN_BLOCK_JOB_LAST = 4,
}

/// The type every domain event callback is registered as; cast the specific callback
/// with `VIR_DOMAIN_EVENT_CALLBACK()`.
///
/// Since: 0.8.0
pub type virConnectDomainEventGenericCallback =
    Option<unsafe extern "C" fn(conn: virConnectPtr, dom: virDomainPtr, opaque: *mut c_void)>;

/// The callback of `VIR_DOMAIN_EVENT_ID_JOB_COMPLETED`: the job's final statistics, as
/// `virDomainGetJobStats()` reports them. The parameters belong to the library.
///
/// Since: 1.3.3
pub type virConnectDomainEventJobCompletedCallback = Option<
    unsafe extern "C" fn(
        conn: virConnectPtr,
        dom: virDomainPtr,
        params: virTypedParameterPtr,
        nparams: c_int,
        opaque: *mut c_void,
    ),
>;

/// The callback of `VIR_DOMAIN_EVENT_ID_BLOCK_JOB` and `..._BLOCK_JOB_2`.
///
/// Since: 0.9.4
pub type virConnectDomainEventBlockJobCallback = Option<
    unsafe extern "C" fn(
        conn: virConnectPtr,
        dom: virDomainPtr,
        disk: *const std::ffi::c_char,
        r#type: c_int,
        status: c_int,
        opaque: *mut c_void,
    ),
>;

/// Called when a registration ends, to release the opaque data given with it.
///
/// Since: 0.5.0
pub type virFreeCallback = Option<unsafe extern "C" fn(opaque: *mut c_void)>;

/// A timer callback of the event loop.
///
/// Since: 0.9.3
pub type virEventTimeoutCallback = Option<unsafe extern "C" fn(timer: c_int, opaque: *mut c_void)>;

//! Domain event callbacks and the default event loop.
//!
//! Callbacks run on the thread that calls `virEventRunDefaultImpl()`, as in libvirt:
//! events the drivers emit wait in a queue until the loop takes them. The loop also runs
//! timers added with `virEventAddTimeout()`.

use std::ffi::{c_int, c_void};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::entry;
use super::handles::{ConnectHandle, DomainRef, Handle};
use super::typedparams::{malloc_params, virTypedParamsFree};
use crate::abi::{
    virConnectDomainEventBlockJobCallback, virConnectDomainEventGenericCallback,
    virConnectDomainEventJobCompletedCallback, virConnectPtr, virDomainEventID as EventId, virDomainPtr,
    virEventTimeoutCallback, virFreeCallback,
};
use crate::driver::events::{self, DomainEvent, EventKind};
use crate::error::{Code, Domain, Error};
use crate::uuid::Uuid;

const FROM: Domain = Domain::VIR_FROM_DOMAIN;

/// Number of event kinds libvirt 9.0 defines (`VIR_DOMAIN_EVENT_ID_LAST`).
const EVENT_ID_LAST: c_int = 27;

struct Registration {
    id: c_int,
    conn: Arc<ConnectHandle>,
    /// Only this domain's events, when set.
    domain: Option<Uuid>,
    event: c_int,
    callback: virConnectDomainEventGenericCallback,
    opaque: usize,
    free: virFreeCallback,
}

struct Timer {
    id: c_int,
    /// -1 disabled, 0 every iteration, else milliseconds.
    interval: c_int,
    next: Instant,
    callback: virEventTimeoutCallback,
    opaque: usize,
    free: virFreeCallback,
}

#[derive(Default)]
struct Loop {
    registrations: Vec<Registration>,
    timers: Vec<Timer>,
    next_id: c_int,
}

static LOOP: Mutex<Loop> = Mutex::new(Loop { registrations: Vec::new(), timers: Vec::new(), next_id: 0 });

/// Registers the default event loop. Always succeeds; events are delivered by
/// `virEventRunDefaultImpl()`.
///
/// Since: 0.9.0
#[unsafe(no_mangle)]
pub extern "C" fn virEventRegisterDefaultImpl() -> c_int {
    super::error::reset_last_error();
    0
}

/// Runs one iteration of the default event loop: waits until a domain event arrives or a
/// timer is due, then calls the callbacks. Returns 0.
///
/// Since: 0.9.0
#[unsafe(no_mangle)]
pub extern "C" fn virEventRunDefaultImpl() -> c_int {
    super::error::reset_last_error();
    let deadline = {
        let state = LOOP.lock();
        state.timers.iter().filter(|t| t.interval >= 0).map(|t| t.next).min()
    };
    let pending = events::wait(deadline);
    for event in pending {
        deliver(&event);
    }
    run_due_timers();
    0
}

/// Calls every registration that wants `event`.
fn deliver(event: &DomainEvent) {
    let wanted = match &event.kind {
        EventKind::JobCompleted(_) => vec![EventId::VIR_DOMAIN_EVENT_ID_JOB_COMPLETED as c_int],
        EventKind::BlockJob { .. } => {
            vec![EventId::VIR_DOMAIN_EVENT_ID_BLOCK_JOB as c_int, EventId::VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2 as c_int]
        }
    };
    // Collect first: callbacks may register or deregister.
    let targets: Vec<(Arc<ConnectHandle>, c_int, virConnectDomainEventGenericCallback, usize)> = LOOP
        .lock()
        .registrations
        .iter()
        .filter(|r| wanted.contains(&r.event))
        .filter(|r| events::driver_key(r.conn.driver.as_ref()) == event.driver)
        .filter(|r| r.domain.is_none_or(|u| u == event.domain.uuid))
        .map(|r| (r.conn.clone(), r.event, r.callback, r.opaque))
        .collect();
    for (conn, event_id, callback, opaque) in targets {
        // A handle for the duration of the callback; a callback that keeps it takes its
        // own reference with virDomainRef().
        let handle = DomainRef::new(conn.clone(), event.domain.clone());
        let dom = Handle::as_ptr(&handle);
        let conn_ptr = Handle::as_ptr(&conn);
        let opaque = opaque as *mut c_void;
        match &event.kind {
            EventKind::JobCompleted(params) => {
                let Ok((array, n)) = malloc_params(params) else { continue };
                // SAFETY: the application registered this callback for this event id, and
                // libvirt defines its real type (cast back from the generic one).
                unsafe {
                    let cb: virConnectDomainEventJobCompletedCallback = std::mem::transmute(callback);
                    if let Some(cb) = cb {
                        cb(conn_ptr, dom, array, n, opaque);
                    }
                    virTypedParamsFree(array, n);
                }
            }
            EventKind::BlockJob { target, path, job_type, status } => {
                // The first form names the disk by path, the second by target.
                let name = if event_id == EventId::VIR_DOMAIN_EVENT_ID_BLOCK_JOB as c_int { path } else { target };
                let Ok(disk) = std::ffi::CString::new(name.as_str()) else { continue };
                // SAFETY: as above, for the block job callback type.
                unsafe {
                    let cb: virConnectDomainEventBlockJobCallback = std::mem::transmute(callback);
                    if let Some(cb) = cb {
                        cb(conn_ptr, dom, disk.as_ptr(), *job_type, *status, opaque);
                    }
                }
            }
        }
        drop(handle);
    }
}

fn run_due_timers() {
    let now = Instant::now();
    let due: Vec<(c_int, virEventTimeoutCallback, usize)> = {
        let mut state = LOOP.lock();
        state
            .timers
            .iter_mut()
            .filter(|t| t.interval >= 0 && t.next <= now)
            .map(|t| {
                t.next = now + Duration::from_millis(t.interval as u64);
                (t.id, t.callback, t.opaque)
            })
            .collect()
    };
    for (id, callback, opaque) in due {
        if let Some(cb) = callback {
            // SAFETY: registered by the application for exactly this use.
            unsafe { cb(id, opaque as *mut c_void) };
        }
    }
}

/// Registers a callback for one kind of domain event (`virDomainEventID`), for one
/// domain or (with `dom` NULL) all domains of the connection. Returns the callback id
/// for `virConnectDomainEventDeregisterAny()`, or -1. Events are delivered while the
/// application runs `virEventRunDefaultImpl()`.
///
/// # Safety
/// `conn` must be NULL or a connection handle, `dom` NULL or a domain handle; `cb` must
/// have the type `eventID` calls for, cast with `VIR_DOMAIN_EVENT_CALLBACK()`.
///
/// Since: 0.8.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virConnectDomainEventRegisterAny(
    conn: virConnectPtr,
    dom: virDomainPtr,
    eventID: c_int,
    cb: virConnectDomainEventGenericCallback,
    opaque: *mut c_void,
    freecb: virFreeCallback,
) -> c_int {
    entry(FROM, "virConnectDomainEventRegisterAny", |call| {
        // SAFETY: forwarded from the contract.
        let conn = unsafe { call.conn(conn)? };
        let domain = if dom.is_null() {
            None
        } else {
            // SAFETY: forwarded from the contract.
            let d = unsafe { call.domain(dom)? };
            if !Arc::ptr_eq(&d.conn, &conn) {
                return Err(Error::arg(FROM, Code::VIR_ERR_INVALID_ARG, call.api, "dom", "dom->conn must match conn"));
            }
            Some(d.id.uuid)
        };
        if eventID < 0 {
            return Err(Error::arg(
                FROM,
                Code::VIR_ERR_INVALID_ARG,
                call.api,
                "eventID",
                format!("eventID in {} must be zero or greater", call.api),
            ));
        }
        if eventID >= EVENT_ID_LAST {
            return Err(Error::arg(
                FROM,
                Code::VIR_ERR_INVALID_ARG,
                call.api,
                "eventID",
                format!("eventID must be less than {EVENT_ID_LAST}"),
            ));
        }
        if cb.is_none() {
            return Err(Error::null_arg(FROM, call.api, "cb"));
        }
        let mut state = LOOP.lock();
        let id = state.next_id;
        state.next_id += 1;
        state.registrations.push(Registration {
            id,
            conn,
            domain,
            event: eventID,
            callback: cb,
            opaque: opaque as usize,
            free: freecb,
        });
        events::set_listening(true);
        Ok(id)
    })
}

/// Removes a registration made by `virConnectDomainEventRegisterAny()`, calling its free
/// callback. Returns 0 or -1.
///
/// # Safety
/// `conn` must be NULL or a connection handle.
///
/// Since: 0.8.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virConnectDomainEventDeregisterAny(conn: virConnectPtr, callbackID: c_int) -> c_int {
    entry(FROM, "virConnectDomainEventDeregisterAny", |call| {
        // SAFETY: forwarded from the contract.
        let conn = unsafe { call.conn(conn)? };
        if callbackID < 0 {
            return Err(Error::arg(
                FROM,
                Code::VIR_ERR_INVALID_ARG,
                call.api,
                "callbackID",
                format!("callbackID in {} must be zero or greater", call.api),
            ));
        }
        let removed = {
            let mut state = LOOP.lock();
            let at = state.registrations.iter().position(|r| r.id == callbackID && Arc::ptr_eq(&r.conn, &conn));
            let removed = at.map(|at| state.registrations.remove(at));
            if state.registrations.is_empty() {
                events::set_listening(false);
            }
            removed
        };
        let Some(removed) = removed else {
            // libvirt reports this from its generic event code, outside any error domain.
            return Err(Error::new(
                Domain::VIR_FROM_NONE,
                Code::VIR_ERR_INVALID_ARG,
                format!("could not find event callback {callbackID} for deletion"),
            ));
        };
        if let Some(free) = removed.free {
            // SAFETY: the application gave this callback to release its opaque data.
            unsafe { free(removed.opaque as *mut c_void) };
        }
        Ok(0)
    })
}

/// Adds a timer to the default event loop: `cb` runs every `timeout` milliseconds (0 =
/// every iteration, -1 = disabled). Returns the timer id.
///
/// # Safety
/// `cb` and `ff` must be valid callbacks (or NULL).
///
/// Since: 0.9.3
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virEventAddTimeout(
    timeout: c_int,
    cb: virEventTimeoutCallback,
    opaque: *mut c_void,
    ff: virFreeCallback,
) -> c_int {
    let mut state = LOOP.lock();
    let id = state.next_id;
    state.next_id += 1;
    let next = Instant::now() + Duration::from_millis(timeout.max(0) as u64);
    state.timers.push(Timer { id, interval: timeout, next, callback: cb, opaque: opaque as usize, free: ff });
    events::interrupt();
    id
}

/// Changes a timer's interval (-1 disables it).
///
/// Since: 0.9.3
#[unsafe(no_mangle)]
pub extern "C" fn virEventUpdateTimeout(timer: c_int, timeout: c_int) {
    let mut state = LOOP.lock();
    if let Some(t) = state.timers.iter_mut().find(|t| t.id == timer) {
        t.interval = timeout;
        t.next = Instant::now() + Duration::from_millis(timeout.max(0) as u64);
    }
    events::interrupt();
}

/// Removes a timer, calling its free callback. Returns 0, or -1 for an unknown timer.
///
/// Since: 0.9.3
#[unsafe(no_mangle)]
pub extern "C" fn virEventRemoveTimeout(timer: c_int) -> c_int {
    let removed = {
        let mut state = LOOP.lock();
        let at = state.timers.iter().position(|t| t.id == timer);
        at.map(|at| state.timers.remove(at))
    };
    match removed {
        Some(t) => {
            if let Some(free) = t.free {
                // SAFETY: given by the application to release its opaque data.
                unsafe { free(t.opaque as *mut c_void) };
            }
            0
        }
        None => -1,
    }
}

//! Event loops and domain event callbacks.
//!
//! # The event loop implementation
//!
//! As in libvirt, a process has at most one event loop implementation: six functions that
//! add, change and remove descriptor watches and timers. It is registered once, either
//! the library's own poll() loop with `virEventRegisterDefaultImpl()` (the application
//! then calls `virEventRunDefaultImpl()` over and over), or the application's loop with
//! `virEventRegisterImpl()` (what python's libvirtaio and other integrations do). A second
//! registration is ignored with a warning. `virEventAddHandle()` and the five other
//! public functions forward to the registered functions; while none is registered they
//! fail with -1 and record no error, as libvirt's do.
//!
//! # Domain events
//!
//! Drivers queue their events (`crate::driver::events`), from whatever thread they run
//! on, and callbacks run on the thread of the event loop, as in libvirt. The loop is told
//! that events wait as soon as the first callback is registered, through the registered
//! implementation:
//!
//! * the default loop polls the queue's wake-up descriptor itself, and uses up one timer id
//!   per driver that has callbacks, as libvirt's drivers do with the timer they add (so
//!   the ids an application gets match libvirt's);
//! * an application's loop gets a watch on that descriptor through its add-handle function
//!   (or, when it has no descriptor functions, a disabled timer that is armed with
//!   timeout 0 from the emitting thread, libvirt's own scheme); the last deregistration
//!   removes it.
//!
//! Registering a callback fails with libvirt's `could not initialize domain event timer`
//! while no implementation is registered. Callbacks may register and deregister callbacks
//! (their own included) while they run: a callback deregistered during a dispatch is not
//! called again, and its free callback runs when the dispatch ends.

mod default_loop;

use std::ffi::{c_int, c_void};
use std::os::fd::AsRawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Once};

use parking_lot::{Mutex, RwLock};

use self::default_loop::DefaultLoop;
use super::entry;
use super::handles::{ConnectHandle, DomainRef, Handle};
use super::typedparams::{malloc_params, virTypedParamsFree};
use crate::abi::{
    virConnectDomainEventBlockJobCallback, virConnectDomainEventGenericCallback,
    virConnectDomainEventJobCompletedCallback, virConnectPtr, virDomainEventID as EventId, virDomainPtr,
    virEventAddHandleFunc, virEventAddTimeoutFunc, virEventHandleCallback, virEventHandleType,
    virEventRemoveHandleFunc, virEventRemoveTimeoutFunc, virEventTimeoutCallback, virEventUpdateHandleFunc,
    virEventUpdateTimeoutFunc, virFreeCallback,
};
use crate::driver::events::{self, DomainEvent, EventKind};
use crate::error::{Code, Domain, Error, Result};
use crate::uuid::Uuid;

const FROM: Domain = Domain::VIR_FROM_DOMAIN;

/// Number of event kinds libvirt 9.0 defines (`VIR_DOMAIN_EVENT_ID_LAST`).
const EVENT_ID_LAST: c_int = 27;

const READABLE: c_int = virEventHandleType::VIR_EVENT_HANDLE_READABLE as c_int;

// ---------------------------------------------------------------------------------------
// The registered implementation.

/// The six functions of an event loop implementation.
#[derive(Clone, Copy, Default)]
struct Impl {
    add_handle: virEventAddHandleFunc,
    update_handle: virEventUpdateHandleFunc,
    remove_handle: virEventRemoveHandleFunc,
    add_timeout: virEventAddTimeoutFunc,
    update_timeout: virEventUpdateTimeoutFunc,
    remove_timeout: virEventRemoveTimeoutFunc,
    /// These are the default loop's functions.
    default: bool,
}

impl Impl {
    const NONE: Impl = Impl {
        add_handle: None,
        update_handle: None,
        remove_handle: None,
        add_timeout: None,
        update_timeout: None,
        remove_timeout: None,
        default: false,
    };

    /// libvirt counts an implementation as registered when any of its functions is set.
    fn registered(&self) -> bool {
        self.add_handle.is_some()
            || self.update_handle.is_some()
            || self.remove_handle.is_some()
            || self.add_timeout.is_some()
            || self.update_timeout.is_some()
            || self.remove_timeout.is_some()
    }
}

static IMPL: RwLock<Impl> = RwLock::new(Impl::NONE);

fn current() -> Impl {
    *IMPL.read()
}

/// Registers `new` in `slot` unless an implementation is registered already; returns
/// whether it was.
fn install(slot: &RwLock<Impl>, new: Impl) -> bool {
    let mut registered = slot.write();
    if registered.registered() {
        return false;
    }
    *registered = new;
    true
}

/// Runs `f`, turning a panic into `failed`: the default loop's functions are called from
/// C and must not unwind.
fn shield<T>(failed: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(failed)
}

/// The library's own loop, run by `virEventRunDefaultImpl()`.
static DEFAULT: DefaultLoop = DefaultLoop::new();

extern "C" fn default_add_handle(
    fd: c_int,
    events: c_int,
    cb: virEventHandleCallback,
    opaque: *mut c_void,
    ff: virFreeCallback,
) -> c_int {
    shield(-1, || DEFAULT.add_handle(fd, events, cb, opaque, ff))
}

extern "C" fn default_update_handle(watch: c_int, events: c_int) {
    shield((), || DEFAULT.update_handle(watch, events))
}

extern "C" fn default_remove_handle(watch: c_int) -> c_int {
    shield(-1, || DEFAULT.remove_handle(watch))
}

extern "C" fn default_add_timeout(
    timeout: c_int,
    cb: virEventTimeoutCallback,
    opaque: *mut c_void,
    ff: virFreeCallback,
) -> c_int {
    shield(-1, || DEFAULT.add_timeout(timeout, cb, opaque, ff))
}

extern "C" fn default_update_timeout(timer: c_int, timeout: c_int) {
    shield((), || DEFAULT.update_timeout(timer, timeout))
}

extern "C" fn default_remove_timeout(timer: c_int) -> c_int {
    shield(-1, || DEFAULT.remove_timeout(timer))
}

const DEFAULT_IMPL: Impl = Impl {
    add_handle: Some(default_add_handle),
    update_handle: Some(default_update_handle),
    remove_handle: Some(default_remove_handle),
    add_timeout: Some(default_add_timeout),
    update_timeout: Some(default_update_timeout),
    remove_timeout: Some(default_remove_timeout),
    default: true,
};

fn register(new: Impl) {
    if !install(&IMPL, new) {
        eprintln!("virbackup: warning : an event loop implementation is registered already; the new one is ignored");
    }
}

/// Registers an application's event loop: the functions `virEventAddHandle()`,
/// `virEventUpdateHandle()`, `virEventRemoveHandle()`, `virEventAddTimeout()`,
/// `virEventUpdateTimeout()` and `virEventRemoveTimeout()` call from then on. Any of them
/// may be NULL (the public function then fails or does nothing). Only the first
/// registration counts, whether made here or with `virEventRegisterDefaultImpl()`; later
/// ones are ignored with a warning on stderr.
///
/// Domain event callbacks (`virConnectDomainEventRegisterAny()`) run from the
/// application's loop: the library adds a watch on a descriptor of its own (or, without
/// descriptor functions, a timer) when the first callback is registered, and removes it
/// after the last one is deregistered. The loop may receive calls to these functions
/// from any thread.
///
/// # Safety
/// Each function must be NULL or have the behaviour libvirt documents for it, and stay
/// callable for the rest of the process.
///
/// Since: 0.5.0
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virEventRegisterImpl(
    addHandle: virEventAddHandleFunc,
    updateHandle: virEventUpdateHandleFunc,
    removeHandle: virEventRemoveHandleFunc,
    addTimeout: virEventAddTimeoutFunc,
    updateTimeout: virEventUpdateTimeoutFunc,
    removeTimeout: virEventRemoveTimeoutFunc,
) {
    register(Impl {
        add_handle: addHandle,
        update_handle: updateHandle,
        remove_handle: removeHandle,
        add_timeout: addTimeout,
        update_timeout: updateTimeout,
        remove_timeout: removeTimeout,
        default: false,
    });
}

/// Registers the library's own event loop, based on poll(), which the application runs
/// with `virEventRunDefaultImpl()`. Ignored (with a warning) when an application's loop
/// was registered first; registering it again does nothing. Returns 0.
///
/// Since: 0.9.0
#[unsafe(no_mangle)]
pub extern "C" fn virEventRegisterDefaultImpl() -> c_int {
    static ONCE: Once = Once::new();
    entry(Domain::VIR_FROM_EVENT, "virEventRegisterDefaultImpl", |_| {
        ONCE.call_once(|| register(DEFAULT_IMPL));
        Ok(0)
    })
}

/// Runs one iteration of the default event loop: waits until a watched descriptor is
/// ready, a timer is due or a domain event arrives, then calls the callbacks. The free
/// callbacks of removed watches and timers run at the start of the next iteration, which
/// then returns without waiting. Waits forever when there is nothing to wait for.
/// Returns 0.
///
/// Since: 0.9.0
#[unsafe(no_mangle)]
pub extern "C" fn virEventRunDefaultImpl() -> c_int {
    entry(Domain::VIR_FROM_EVENT, "virEventRunDefaultImpl", |_| {
        if current().default {
            DEFAULT.run_once(events::wake_fd(), &mut deliver_pending);
        } else {
            // Domain events go to the application's loop (or nowhere, without one).
            DEFAULT.run_once(None, &mut || {});
        }
        Ok(0)
    })
}

/// Watches a file descriptor: `cb` is called from the event loop with the watch id, `fd`,
/// the `virEventHandleType` bits that are ready (`VIR_EVENT_HANDLE_ERROR` and
/// `VIR_EVENT_HANDLE_HANGUP` are reported even when not asked for) and `opaque`. `ff`, when
/// given, releases `opaque` after the watch is removed. Returns the watch id, or -1 when
/// no event loop is registered (no error is recorded).
///
/// # Safety
/// `cb` must be callable with `opaque`, and `ff` NULL or callable with it, until the
/// watch is removed and `ff` has run.
///
/// Since: 0.9.3
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virEventAddHandle(
    fd: c_int,
    events: c_int,
    cb: virEventHandleCallback,
    opaque: *mut c_void,
    ff: virFreeCallback,
) -> c_int {
    match current().add_handle {
        // SAFETY: the registered implementation's function, called with the arguments
        // the caller vouches for.
        Some(add) => unsafe { add(fd, events, cb, opaque, ff) },
        None => -1,
    }
}

/// Changes the events a watch waits for; 0 pauses it. Does nothing for an unknown watch
/// or when no event loop is registered.
///
/// Since: 0.9.3
#[unsafe(no_mangle)]
pub extern "C" fn virEventUpdateHandle(watch: c_int, events: c_int) {
    if let Some(update) = current().update_handle {
        // SAFETY: the registered implementation's function; it takes plain integers.
        unsafe { update(watch, events) }
    }
}

/// Removes a watch; its free callback runs once the loop no longer uses it (in the
/// default loop: at the next iteration). Returns 0, or -1 for an unknown watch or when
/// no event loop is registered.
///
/// Since: 0.9.3
#[unsafe(no_mangle)]
pub extern "C" fn virEventRemoveHandle(watch: c_int) -> c_int {
    match current().remove_handle {
        // SAFETY: the registered implementation's function; it takes a plain integer.
        Some(remove) => unsafe { remove(watch) },
        None => -1,
    }
}

/// Adds a timer to the event loop: `cb` runs every `timeout` milliseconds (0 = every
/// iteration, -1 = disabled). Returns the timer id, or -1 when no event loop is
/// registered (no error is recorded).
///
/// # Safety
/// `cb` must be callable with `opaque`, and `ff` NULL or callable with it, until the
/// timer is removed and `ff` has run.
///
/// Since: 0.9.3
#[unsafe(no_mangle)]
pub unsafe extern "C" fn virEventAddTimeout(
    timeout: c_int,
    cb: virEventTimeoutCallback,
    opaque: *mut c_void,
    ff: virFreeCallback,
) -> c_int {
    match current().add_timeout {
        // SAFETY: the registered implementation's function, called with the arguments
        // the caller vouches for.
        Some(add) => unsafe { add(timeout, cb, opaque, ff) },
        None => -1,
    }
}

/// Changes a timer's interval (-1 disables it), counting from now. Does nothing for an
/// unknown timer or when no event loop is registered.
///
/// Since: 0.9.3
#[unsafe(no_mangle)]
pub extern "C" fn virEventUpdateTimeout(timer: c_int, timeout: c_int) {
    if let Some(update) = current().update_timeout {
        // SAFETY: the registered implementation's function; it takes plain integers.
        unsafe { update(timer, timeout) }
    }
}

/// Removes a timer; its free callback runs once the loop no longer uses it (in the
/// default loop: at the next iteration). Returns 0, or -1 for an unknown timer or when
/// no event loop is registered.
///
/// Since: 0.9.3
#[unsafe(no_mangle)]
pub extern "C" fn virEventRemoveTimeout(timer: c_int) -> c_int {
    match current().remove_timeout {
        // SAFETY: the registered implementation's function; it takes a plain integer.
        Some(remove) => unsafe { remove(timer) },
        None => -1,
    }
}

// ---------------------------------------------------------------------------------------
// Domain event callbacks.

struct Registration {
    /// Unique per driver, as libvirt numbers callbacks per event queue.
    id: c_int,
    driver: usize,
    conn: Arc<ConnectHandle>,
    /// Only this domain's events, when set.
    domain: Option<Uuid>,
    event: c_int,
    callback: virConnectDomainEventGenericCallback,
    opaque: usize,
    free: virFreeCallback,
    /// Deregistered during a dispatch: no longer called, freed when the dispatch ends.
    deleted: bool,
}

struct Registry {
    registrations: Vec<Registration>,
    /// The next callback id of each driver.
    next_ids: Vec<(usize, c_int)>,
    /// Dispatches in progress (on any thread).
    dispatching: usize,
}

impl Registry {
    fn live(&self) -> impl Iterator<Item = &Registration> {
        self.registrations.iter().filter(|r| !r.deleted)
    }

    fn next_id(&mut self, driver: usize) -> c_int {
        let at = match self.next_ids.iter().position(|(d, _)| *d == driver) {
            Some(at) => at,
            None => {
                self.next_ids.push((driver, 0));
                self.next_ids.len() - 1
            }
        };
        let id = self.next_ids[at].1;
        self.next_ids[at].1 += 1;
        id
    }
}

static REGISTRY: Mutex<Registry> =
    Mutex::new(Registry { registrations: Vec::new(), next_ids: Vec::new(), dispatching: 0 });

/// How the registered loop learns that domain events wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// No callback is registered.
    Off,
    /// The default loop polls the wake-up descriptor itself.
    Default,
    /// A watch on the wake-up descriptor in the application's loop.
    Watch(c_int),
    /// A timer of the application's loop, armed by [`notify_timer`].
    Timer(c_int),
}

/// Held while delivery is set up or torn down (around calls into the application's loop
/// functions, which never run with [`REGISTRY`] locked).
static DELIVERY: Mutex<Delivery> = Mutex::new(Delivery::Off);

/// The timer of [`Delivery::Timer`], or -1.
static NOTIFY_TIMER: AtomicI32 = AtomicI32::new(-1);

fn timer_error() -> Error {
    // libvirt reports this from its generic event code, outside any error domain.
    Error::internal(Domain::VIR_FROM_NONE, "could not initialize domain event timer")
}

/// Tells the registered loop to deliver domain events, as the first callback is
/// registered.
fn start_delivery(imp: &Impl) -> Result<Delivery> {
    let wake = events::wake_fd();
    if imp.default {
        return wake.map(|_| Delivery::Default).ok_or_else(timer_error);
    }
    if let (Some(add), Some(_), Some(fd)) = (imp.add_handle, imp.remove_handle, wake) {
        // SAFETY: the application registered this function; the callback and its (NULL)
        // data stay valid for the process's lifetime.
        let watch = unsafe { add(fd.as_raw_fd(), READABLE, Some(wake_watch), std::ptr::null_mut(), None) };
        if watch >= 0 {
            return Ok(Delivery::Watch(watch));
        }
    }
    if let (Some(add), Some(_), Some(_)) = (imp.add_timeout, imp.update_timeout, imp.remove_timeout) {
        // SAFETY: as above, for the timer function.
        let timer = unsafe { add(-1, Some(wake_timer), std::ptr::null_mut(), None) };
        if timer >= 0 {
            NOTIFY_TIMER.store(timer, Ordering::SeqCst);
            events::set_notify(Some(notify_timer));
            return Ok(Delivery::Timer(timer));
        }
    }
    Err(timer_error())
}

/// Undoes [`start_delivery`] after the last callback is deregistered.
fn stop_delivery(delivery: Delivery, imp: &Impl) {
    match delivery {
        Delivery::Watch(watch) => {
            if let Some(remove) = imp.remove_handle {
                // SAFETY: the application's function, removing the watch it gave us.
                unsafe { remove(watch) };
            }
        }
        Delivery::Timer(timer) => {
            events::set_notify(None);
            NOTIFY_TIMER.store(-1, Ordering::SeqCst);
            if let Some(remove) = imp.remove_timeout {
                // SAFETY: the application's function, removing the timer it gave us.
                unsafe { remove(timer) };
            }
        }
        Delivery::Off | Delivery::Default => {}
    }
}

/// The application's loop found the wake-up descriptor readable.
extern "C" fn wake_watch(_watch: c_int, _fd: c_int, _events: c_int, _opaque: *mut c_void) {
    shield((), deliver_pending);
}

/// The application's loop fired the delivery timer: disarm it, then deliver.
extern "C" fn wake_timer(timer: c_int, _opaque: *mut c_void) {
    shield((), || {
        if let Some(update) = current().update_timeout {
            // SAFETY: the application's function, on the timer it gave us.
            unsafe { update(timer, -1) };
        }
        deliver_pending();
    });
}

/// Arms the delivery timer; the driver queue calls this, on the emitting thread, when
/// events start waiting.
fn notify_timer() {
    let timer = NOTIFY_TIMER.load(Ordering::SeqCst);
    if timer >= 0
        && let Some(update) = current().update_timeout
    {
        // SAFETY: the application's function, on the timer it gave us; libvirt calls it
        // from any thread too.
        unsafe { update(timer, 0) };
    }
}

/// Delivers every queued event.
fn deliver_pending() {
    for event in events::take() {
        deliver(&event);
    }
}

/// Ends a dispatch (also when a callback panics): the last one to end frees the
/// registrations deregistered meanwhile.
struct Dispatch;

impl Dispatch {
    fn begin(registry: &mut Registry) -> Dispatch {
        registry.dispatching += 1;
        Dispatch
    }
}

impl Drop for Dispatch {
    fn drop(&mut self) {
        let released: Vec<Registration> = {
            let mut registry = REGISTRY.lock();
            registry.dispatching -= 1;
            if registry.dispatching > 0 {
                return;
            }
            let (gone, kept) = std::mem::take(&mut registry.registrations).into_iter().partition(|r| r.deleted);
            registry.registrations = kept;
            gone
        };
        released.into_iter().for_each(release);
    }
}

/// Calls a registration's free callback.
fn release(r: Registration) {
    if let Some(free) = r.free {
        // SAFETY: the application gave this callback to release its opaque data, which
        // nothing uses any more.
        unsafe { free(r.opaque as *mut c_void) };
    }
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
    type Target = (c_int, Arc<ConnectHandle>, c_int, virConnectDomainEventGenericCallback, usize);
    let (targets, _dispatch): (Vec<Target>, Dispatch) = {
        let mut registry = REGISTRY.lock();
        let targets = registry
            .live()
            .filter(|r| wanted.contains(&r.event))
            .filter(|r| r.driver == event.driver)
            .filter(|r| r.domain.is_none_or(|u| u == event.domain.uuid))
            .map(|r| (r.id, r.conn.clone(), r.event, r.callback, r.opaque))
            .collect();
        (targets, Dispatch::begin(&mut registry))
    };
    for (id, conn, event_id, callback, opaque) in targets {
        // An earlier callback may have deregistered this one.
        if !REGISTRY.lock().live().any(|r| r.id == id && r.driver == event.driver) {
            continue;
        }
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

/// Registers a callback for one kind of domain event (`virDomainEventID`), for one
/// domain or (with `dom` NULL) all domains of the connection. Returns the callback id
/// for `virConnectDomainEventDeregisterAny()` (numbered from 0 per driver, as libvirt
/// does), or -1. An event loop must be registered first; callbacks run from it.
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
        let driver = events::driver_key(conn.driver.as_ref());
        let imp = current();
        let mut delivery = DELIVERY.lock();
        if *delivery == Delivery::Off {
            *delivery = start_delivery(&imp)?;
        }
        let mut registry = REGISTRY.lock();
        if imp.default && !registry.live().any(|r| r.driver == driver) {
            DEFAULT.reserve_timer_id();
        }
        let id = registry.next_id(driver);
        registry.registrations.push(Registration {
            id,
            driver,
            conn,
            domain,
            event: eventID,
            callback: cb,
            opaque: opaque as usize,
            free: freecb,
            deleted: false,
        });
        events::set_listening(true);
        Ok(id)
    })
}

/// Removes a registration made by `virConnectDomainEventRegisterAny()` and calls its free
/// callback (after the dispatch in progress, when a callback deregisters). Returns 0 or
/// -1.
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
        let mut delivery = DELIVERY.lock();
        let (found, released, live) = {
            let mut registry = REGISTRY.lock();
            let at = registry
                .registrations
                .iter()
                .position(|r| r.id == callbackID && !r.deleted && Arc::ptr_eq(&r.conn, &conn));
            let (found, released) = match at {
                None => (false, None),
                Some(at) if registry.dispatching > 0 => {
                    registry.registrations[at].deleted = true;
                    (true, None)
                }
                Some(at) => (true, Some(registry.registrations.remove(at))),
            };
            let driver = events::driver_key(conn.driver.as_ref());
            if found && current().default && !registry.live().any(|r| r.driver == driver) {
                // The driver's last callback: libvirt removes the timer it added.
                DEFAULT.release_reserved_timer();
            }
            (found, released, registry.live().count())
        };
        if !found {
            // libvirt reports this from its generic event code, outside any error domain.
            return Err(Error::new(
                Domain::VIR_FROM_NONE,
                Code::VIR_ERR_INVALID_ARG,
                format!("could not find event callback {callbackID} for deletion"),
            ));
        }
        if live == 0 {
            events::set_listening(false);
            stop_delivery(*delivery, &current());
            *delivery = Delivery::Off;
        }
        drop(delivery);
        if let Some(r) = released {
            release(r);
        }
        Ok(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;
    use std::sync::atomic::AtomicUsize;

    extern "C" fn nop_add_handle(
        _: c_int,
        _: c_int,
        _: virEventHandleCallback,
        _: *mut c_void,
        _: virFreeCallback,
    ) -> c_int {
        42
    }

    #[test]
    fn only_the_first_registration_counts() {
        let slot = RwLock::new(Impl::NONE);
        assert!(!slot.read().registered());
        assert!(install(&slot, Impl::NONE), "an empty registration leaves the slot free");
        assert!(!slot.read().registered());
        let custom = Impl { add_handle: Some(nop_add_handle), ..Impl::NONE };
        assert!(install(&slot, custom));
        assert!(slot.read().registered() && !slot.read().default);
        assert!(!install(&slot, DEFAULT_IMPL), "the default loop cannot replace it");
        assert!(!slot.read().default);
    }

    static COMPLETED: AtomicUsize = AtomicUsize::new(0);
    static FREED: AtomicUsize = AtomicUsize::new(0);
    static SECOND: AtomicI32 = AtomicI32::new(-1);

    unsafe extern "C" fn on_completed(
        conn: virConnectPtr,
        _dom: virDomainPtr,
        params: crate::abi::virTypedParameterPtr,
        nparams: c_int,
        _opaque: *mut c_void,
    ) {
        assert!(!params.is_null() && nparams > 0);
        COMPLETED.fetch_add(1, Ordering::SeqCst);
        // Deregister the other callback of the same event, which has not run yet.
        let second = SECOND.swap(-1, Ordering::SeqCst);
        if second >= 0 {
            // SAFETY: the connection handle the library passed in.
            assert_eq!(unsafe { virConnectDomainEventDeregisterAny(conn, second) }, 0);
            assert_eq!(FREED.load(Ordering::SeqCst), 0, "freed when the dispatch ends");
        }
    }

    unsafe extern "C" fn on_free(_opaque: *mut c_void) {
        FREED.fetch_add(1, Ordering::SeqCst);
    }

    static TIMER_FIRED: AtomicUsize = AtomicUsize::new(0);
    unsafe extern "C" fn on_timer(_timer: c_int, _opaque: *mut c_void) {
        TIMER_FIRED.fetch_add(1, Ordering::SeqCst);
    }

    fn last_error() -> String {
        let m = crate::capi::error::virGetLastErrorMessage();
        // SAFETY: virGetLastErrorMessage returns a valid C string.
        unsafe { CStr::from_ptr(m) }.to_string_lossy().into_owned()
    }

    /// The whole path on the default loop: registration, a pull backup of the test
    /// driver's domain aborted on this thread, delivery by virEventRunDefaultImpl(), a
    /// callback deregistering another one during the dispatch.
    #[test]
    fn domain_events_reach_callbacks_through_the_default_loop() {
        let _serial = events::TEST_SERIAL.lock();
        assert_eq!(virEventRegisterDefaultImpl(), 0);
        assert_eq!(virEventRegisterDefaultImpl(), 0, "again: nothing happens");
        // SAFETY: C strings and handles from this library, used as libvirt documents.
        unsafe {
            // Ignored: the default loop is registered.
            virEventRegisterImpl(Some(nop_add_handle), None, None, None, None, None);
            assert!(current().default);

            let conn = crate::capi::connect::virConnectOpen(c"test:///default".as_ptr());
            assert!(!conn.is_null());
            let dom = crate::capi::domain::virDomainLookupByName(conn, c"test".as_ptr());
            assert!(!dom.is_null());
            let generic = |f: unsafe extern "C" fn(
                virConnectPtr,
                virDomainPtr,
                crate::abi::virTypedParameterPtr,
                c_int,
                *mut c_void,
            )|
             -> virConnectDomainEventGenericCallback { std::mem::transmute(Some(f)) };
            let job = EventId::VIR_DOMAIN_EVENT_ID_JOB_COMPLETED as c_int;
            let first =
                virConnectDomainEventRegisterAny(conn, dom, job, generic(on_completed), std::ptr::null_mut(), None);
            assert!(first >= 0, "{}", last_error());
            let second = virConnectDomainEventRegisterAny(
                conn,
                std::ptr::null_mut(),
                job,
                generic(on_completed),
                std::ptr::null_mut(),
                Some(on_free),
            );
            assert_eq!(second, first + 1, "ids count up per driver");
            SECOND.store(second, Ordering::SeqCst);

            let before = COMPLETED.load(Ordering::SeqCst);
            assert_eq!(
                crate::capi::job::virDomainBackupBegin(
                    dom,
                    c"<domainbackup mode='pull'><server transport='unix' socket='/tmp/vb-unit-events.sock'/></domainbackup>"
                        .as_ptr(),
                    std::ptr::null(),
                    0
                ),
                0,
                "{}",
                last_error()
            );
            assert_eq!(crate::capi::job::virDomainAbortJob(dom), 0, "{}", last_error());
            // A timer bounds the wait should the event never come.
            let timer = virEventAddTimeout(10_000, Some(on_timer), std::ptr::null_mut(), None);
            assert!(timer > 0);
            while COMPLETED.load(Ordering::SeqCst) == before && TIMER_FIRED.load(Ordering::SeqCst) == 0 {
                assert_eq!(virEventRunDefaultImpl(), 0);
            }
            assert_eq!(COMPLETED.load(Ordering::SeqCst), before + 1, "the second callback was deregistered");
            assert_eq!(FREED.load(Ordering::SeqCst), 1, "and freed after the dispatch");
            assert_eq!(virConnectDomainEventDeregisterAny(conn, second), -1, "gone");
            assert_eq!(virConnectDomainEventDeregisterAny(conn, first), 0);
            assert_eq!(*DELIVERY.lock(), Delivery::Off);
            assert_eq!(virEventRemoveTimeout(timer), 0);
            assert_eq!(virEventRemoveTimeout(timer), -1);
            crate::capi::domain::virDomainFree(dom);
            crate::capi::connect::virConnectClose(conn);
        }
    }
}

//! The default event loop: descriptor watches and timers, run one iteration at a time by
//! `virEventRunDefaultImpl()` with poll(2).
//!
//! It follows libvirt's GLib-based loop where an application can see it:
//!
//! * watch and timer ids count from 1, separately, and are never reused;
//! * a watch reports `VIR_EVENT_HANDLE_ERROR` and `VIR_EVENT_HANDLE_HANGUP` whatever it
//!   asked for, and nothing while its events are 0;
//! * a timer of 0 ms fires on every iteration, one of -1 is disabled;
//! * removing a watch or timer takes effect at once, but its free callback runs later:
//!   a watch's at the start of the next iteration, which then does nothing else; a
//!   timer's in the next iteration that has nothing else to do (without a free callback
//!   these iterations still happen, and do nothing). Callbacks may therefore remove
//!   their own watch or timer, or any other, and add new ones.
//!
//! The loop polls with no lock held. Changes made from another thread while it waits wake
//! it through a socket pair of its own, so that it sees new watches and deadlines at once.

use std::ffi::{c_int, c_void};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, ReentrantMutex};

use crate::abi::{virEventHandleCallback, virEventHandleType as Ev, virEventTimeoutCallback, virFreeCallback};

const READABLE: c_int = Ev::VIR_EVENT_HANDLE_READABLE as c_int;
const WRITABLE: c_int = Ev::VIR_EVENT_HANDLE_WRITABLE as c_int;
const ERROR: c_int = Ev::VIR_EVENT_HANDLE_ERROR as c_int;
const HANGUP: c_int = Ev::VIR_EVENT_HANDLE_HANGUP as c_int;

struct Watch {
    id: c_int,
    fd: c_int,
    /// `virEventHandleType` bits; 0 while the watch is paused.
    events: c_int,
    callback: virEventHandleCallback,
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

/// The free callback (if any) owed to a removed watch or timer, with its opaque data. A
/// removal without free callback still takes its iteration, as in libvirt's loop.
type Release = (virFreeCallback, usize);

struct State {
    watches: Vec<Watch>,
    timers: Vec<Timer>,
    next_watch: c_int,
    next_timer: c_int,
    /// Free callbacks of removed watches: the next iteration runs them and nothing else.
    handle_releases: Vec<Release>,
    /// Free callbacks of removed timers: they run in the next iteration that has nothing
    /// else to do (GLib's idle priority in libvirt's loop).
    timer_releases: Vec<Release>,
    /// An iteration waits in poll() (with no lock held).
    polling: bool,
    /// A byte has been written to wake that poll().
    woken: bool,
}

/// One event loop. The C API has one (`DEFAULT`); tests make their own.
pub struct DefaultLoop {
    state: Mutex<State>,
    /// Held for a whole iteration: iterations of several threads take turns, and a
    /// callback may run a nested iteration on its own thread.
    running: ReentrantMutex<()>,
    /// Wakes a waiting poll(): (read end, write end), non-blocking.
    interrupt: OnceLock<Option<(UnixStream, UnixStream)>>,
}

impl Default for DefaultLoop {
    fn default() -> Self {
        DefaultLoop::new()
    }
}

/// Milliseconds for poll(), rounded up so that a timer is due when poll() returns.
fn poll_timeout(wait: Duration) -> c_int {
    let ms = wait.as_nanos().div_ceil(1_000_000);
    ms.min(c_int::MAX as u128) as c_int
}

fn poll_events(events: c_int) -> libc::c_short {
    let mut out = 0;
    if events & READABLE != 0 {
        out |= libc::POLLIN;
    }
    if events & WRITABLE != 0 {
        out |= libc::POLLOUT;
    }
    out
}

/// The `virEventHandleType` bits of poll()'s `revents` that a watch asking for `events`
/// is told about (errors and hang-ups always; an invalid descriptor never, as in libvirt).
fn handle_events(revents: libc::c_short, events: c_int) -> c_int {
    let mut out = 0;
    if revents & libc::POLLIN != 0 {
        out |= READABLE;
    }
    if revents & libc::POLLOUT != 0 {
        out |= WRITABLE;
    }
    if revents & libc::POLLERR != 0 {
        out |= ERROR;
    }
    if revents & libc::POLLHUP != 0 {
        out |= HANGUP;
    }
    out & (events | ERROR | HANGUP)
}

fn drain(mut reader: &UnixStream) {
    let mut buf = [0u8; 64];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
}

impl DefaultLoop {
    pub const fn new() -> Self {
        DefaultLoop {
            state: Mutex::new(State {
                watches: Vec::new(),
                timers: Vec::new(),
                next_watch: 1,
                next_timer: 1,
                handle_releases: Vec::new(),
                timer_releases: Vec::new(),
                polling: false,
                woken: false,
            }),
            running: ReentrantMutex::new(()),
            interrupt: OnceLock::new(),
        }
    }

    fn interrupter(&self) -> Option<&(UnixStream, UnixStream)> {
        self.interrupt
            .get_or_init(|| {
                let (reader, writer) = UnixStream::pair().ok()?;
                reader.set_nonblocking(true).ok()?;
                writer.set_nonblocking(true).ok()?;
                Some((reader, writer))
            })
            .as_ref()
    }

    /// Wakes an iteration waiting in poll(), after a change it must see.
    fn wake(&self, state: &mut State) {
        if state.polling
            && !state.woken
            && let Some((_, writer)) = self.interrupter()
        {
            state.woken = true;
            // A full socket is readable already.
            let _ = Write::write(&mut &*writer, &[1]);
        }
    }

    /// Adds a watch on `fd`; returns its id, or -1 when ids are exhausted.
    pub fn add_handle(
        &self,
        fd: c_int,
        events: c_int,
        callback: virEventHandleCallback,
        opaque: *mut c_void,
        free: virFreeCallback,
    ) -> c_int {
        let mut state = self.state.lock();
        if state.next_watch == c_int::MAX {
            return -1;
        }
        let id = state.next_watch;
        state.next_watch += 1;
        state.watches.push(Watch { id, fd, events, callback, opaque: opaque as usize, free });
        self.wake(&mut state);
        id
    }

    /// Changes the events a watch waits for (0 pauses it). Unknown watches are ignored.
    pub fn update_handle(&self, watch: c_int, events: c_int) {
        let mut state = self.state.lock();
        if let Some(w) = state.watches.iter_mut().find(|w| w.id == watch) {
            w.events = events;
            self.wake(&mut state);
        }
    }

    /// Removes a watch; its free callback runs at the next iteration. Returns 0, or -1
    /// for an unknown (or already removed) watch.
    pub fn remove_handle(&self, watch: c_int) -> c_int {
        let mut state = self.state.lock();
        let Some(at) = state.watches.iter().position(|w| w.id == watch) else { return -1 };
        let w = state.watches.remove(at);
        state.handle_releases.push((w.free, w.opaque));
        self.wake(&mut state);
        0
    }

    /// Adds a timer firing every `interval` ms (0: every iteration, negative: disabled);
    /// returns its id, or -1 when ids are exhausted.
    pub fn add_timeout(
        &self,
        interval: c_int,
        callback: virEventTimeoutCallback,
        opaque: *mut c_void,
        free: virFreeCallback,
    ) -> c_int {
        let mut state = self.state.lock();
        let Some(id) = Self::next_timer_id(&mut state) else { return -1 };
        let next = Instant::now() + Duration::from_millis(interval.max(0) as u64);
        state.timers.push(Timer { id, interval, next, callback, opaque: opaque as usize, free });
        self.wake(&mut state);
        id
    }

    fn next_timer_id(state: &mut State) -> Option<c_int> {
        if state.next_timer == c_int::MAX {
            return None;
        }
        state.next_timer += 1;
        Some(state.next_timer - 1)
    }

    /// Uses up a timer id without adding a timer: libvirt's drivers add one disabled
    /// timer per event queue, and applications see the ids that follow.
    pub fn reserve_timer_id(&self) {
        let _ = Self::next_timer_id(&mut self.state.lock());
    }

    /// The removal of such a timer, which (like any removal) takes an idle iteration.
    pub fn release_reserved_timer(&self) {
        let mut state = self.state.lock();
        state.timer_releases.push((None, 0));
        self.wake(&mut state);
    }

    /// Changes a timer's interval, counting from now. Unknown timers are ignored.
    pub fn update_timeout(&self, timer: c_int, interval: c_int) {
        let mut state = self.state.lock();
        if let Some(t) = state.timers.iter_mut().find(|t| t.id == timer) {
            t.interval = interval;
            t.next = Instant::now() + Duration::from_millis(interval.max(0) as u64);
            self.wake(&mut state);
        }
    }

    /// Removes a timer; its free callback runs at the next iteration. Returns 0, or -1
    /// for an unknown (or already removed) timer.
    pub fn remove_timeout(&self, timer: c_int) -> c_int {
        let mut state = self.state.lock();
        let Some(at) = state.timers.iter().position(|t| t.id == timer) else { return -1 };
        let t = state.timers.remove(at);
        state.timer_releases.push((t.free, t.opaque));
        self.wake(&mut state);
        0
    }

    /// Runs one iteration, the way libvirt's GLib loop orders its work:
    ///
    /// 1. when watches were removed, their free callbacks run and the iteration ends;
    /// 2. otherwise it waits until a watched descriptor is ready, a timer is due or `wake`
    ///    (when given) is readable, and calls the ready watches' callbacks, `on_wake` and
    ///    the due timers' callbacks, in that order;
    /// 3. the free callbacks of removed timers run in an iteration where nothing else is
    ///    ready (they keep it from waiting).
    ///
    /// Waits forever when there is nothing to wait for, as libvirt's loop does.
    pub fn run_once(&self, wake: Option<BorrowedFd<'_>>, on_wake: &mut dyn FnMut()) {
        let _turn = self.running.lock();
        let interrupter = self.interrupter();

        let mut fds: Vec<libc::pollfd> = Vec::new();
        // Each polled watch with the events it asked for.
        let mut polled: Vec<(c_int, c_int)> = Vec::new();
        let timeout;
        {
            let mut state = self.state.lock();
            let releases = std::mem::take(&mut state.handle_releases);
            if !releases.is_empty() {
                drop(state);
                run_releases(releases);
                return;
            }
            if let Some((reader, _)) = interrupter {
                fds.push(libc::pollfd { fd: reader.as_raw_fd(), events: libc::POLLIN, revents: 0 });
            }
            if let Some(fd) = &wake {
                fds.push(libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 });
            }
            for w in state.watches.iter().filter(|w| w.events != 0) {
                fds.push(libc::pollfd { fd: w.fd, events: poll_events(w.events), revents: 0 });
                polled.push((w.id, w.events));
            }
            let now = Instant::now();
            timeout = if state.timer_releases.is_empty() {
                state
                    .timers
                    .iter()
                    .filter(|t| t.interval >= 0)
                    .map(|t| poll_timeout(t.next.saturating_duration_since(now)))
                    .min()
                    .unwrap_or(-1)
            } else {
                0
            };
            state.polling = true;
        }

        // SAFETY: `fds` is a live, initialized array of `fds.len()` pollfd structures that
        // poll() may write the `revents` fields of; nothing else uses it meanwhile.
        let polled_ok = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) } > 0;

        {
            let mut state = self.state.lock();
            state.polling = false;
            if state.woken {
                state.woken = false;
                if let Some((reader, _)) = interrupter {
                    drain(reader);
                }
            }
        }
        let mut at = usize::from(interrupter.is_some());
        let mut wake_ready = false;
        if wake.is_some() {
            wake_ready = polled_ok && fds[at].revents != 0;
            at += 1;
        }
        // What is ready is decided once, before any callback runs.
        let ready: Vec<(c_int, libc::c_short)> = polled
            .iter()
            .zip(&fds[at..])
            .filter(|((_, events), pfd)| polled_ok && handle_events(pfd.revents, *events) != 0)
            .map(|((id, _), pfd)| (*id, pfd.revents))
            .collect();
        let now = Instant::now();
        let due: Vec<c_int> = {
            let mut state = self.state.lock();
            let due: Vec<c_int> =
                state.timers.iter().filter(|t| t.interval >= 0 && t.next <= now).map(|t| t.id).collect();
            if ready.is_empty() && !wake_ready && due.is_empty() {
                let releases = std::mem::take(&mut state.timer_releases);
                drop(state);
                run_releases(releases);
                return;
            }
            due
        };

        for (id, revents) in ready {
            // An earlier callback may have removed or paused this watch.
            let call = {
                let state = self.state.lock();
                state.watches.iter().find(|w| w.id == id && w.events != 0).and_then(|w| {
                    let events = handle_events(revents, w.events);
                    Some((w.callback?, w.fd, events, w.opaque)).filter(|_| events != 0)
                })
            };
            if let Some((callback, fd, events, opaque)) = call {
                // SAFETY: the application registered this callback and its data for this
                // watch, which still exists.
                unsafe { callback(id, fd, events, opaque as *mut c_void) };
            }
        }
        if wake_ready {
            on_wake();
        }
        for id in due {
            // An earlier callback may have removed, disabled or rescheduled this timer.
            let call = {
                let mut state = self.state.lock();
                state.timers.iter_mut().find(|t| t.id == id && t.interval >= 0 && t.next <= now).and_then(|t| {
                    t.next = now + Duration::from_millis(t.interval as u64);
                    Some((t.callback?, t.opaque))
                })
            };
            if let Some((callback, opaque)) = call {
                // SAFETY: the application registered this callback and its data for this
                // timer, which still exists.
                unsafe { callback(id, opaque as *mut c_void) };
            }
        }
    }
}

/// Runs the free callbacks of removed watches or timers.
fn run_releases(releases: Vec<Release>) {
    for (free, opaque) in releases {
        let Some(free) = free else { continue };
        // SAFETY: the application gave this function to release exactly this data once
        // its watch or timer is removed, which it now is.
        unsafe { free(opaque as *mut c_void) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsFd, OwnedFd};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

    /// What the callbacks saw, shared through their opaque pointer.
    #[derive(Default)]
    struct Seen {
        calls: Mutex<Vec<(c_int, c_int)>>,
        freed: AtomicUsize,
        /// A watch or timer the callback removes (0: none).
        remove: AtomicI32,
        lp: OnceLock<&'static DefaultLoop>,
    }

    fn leak_loop() -> &'static DefaultLoop {
        Box::leak(Box::new(DefaultLoop::new()))
    }

    extern "C" fn on_handle(watch: c_int, _fd: c_int, events: c_int, opaque: *mut c_void) {
        // SAFETY: the tests pass a live `Seen` as opaque data.
        let seen = unsafe { &*(opaque as *const Seen) };
        seen.calls.lock().push((watch, events));
        let victim = seen.remove.swap(0, Ordering::SeqCst);
        if victim != 0 {
            seen.lp.get().unwrap().remove_handle(victim);
        }
    }

    extern "C" fn on_timer(timer: c_int, opaque: *mut c_void) {
        // SAFETY: the tests pass a live `Seen` as opaque data.
        let seen = unsafe { &*(opaque as *const Seen) };
        seen.calls.lock().push((timer, 0));
        let victim = seen.remove.swap(0, Ordering::SeqCst);
        if victim != 0 {
            seen.lp.get().unwrap().remove_timeout(victim);
        }
    }

    extern "C" fn on_free(opaque: *mut c_void) {
        // SAFETY: the tests pass a live `Seen` as opaque data.
        let seen = unsafe { &*(opaque as *const Seen) };
        seen.freed.fetch_add(1, Ordering::SeqCst);
    }

    fn seen(lp: &'static DefaultLoop) -> Arc<Seen> {
        let s = Arc::new(Seen::default());
        let _ = s.lp.set(lp);
        s
    }

    fn ptr(s: &Arc<Seen>) -> *mut c_void {
        Arc::as_ptr(s) as *mut c_void
    }

    fn pipe() -> (OwnedFd, OwnedFd) {
        let (a, b) = UnixStream::pair().unwrap();
        (OwnedFd::from(a), OwnedFd::from(b))
    }

    fn run(lp: &DefaultLoop) {
        lp.run_once(None, &mut || {});
    }

    #[test]
    fn watches_report_readiness_until_removed_and_are_freed_at_the_next_iteration() {
        let lp = leak_loop();
        let s = seen(lp);
        let (a, b) = pipe();
        let w = lp.add_handle(a.as_raw_fd(), READABLE, Some(on_handle), ptr(&s), Some(on_free));
        assert_eq!(w, 1, "watch ids start at 1");
        let w2 = lp.add_handle(b.as_raw_fd(), WRITABLE, Some(on_handle), ptr(&s), None);
        assert_eq!(w2, 2);
        // b is writable at once; a is not readable yet.
        run(lp);
        assert_eq!(*s.calls.lock(), [(2, WRITABLE)]);
        s.calls.lock().clear();
        lp.update_handle(w2, 0);
        UnixStream::from(b.try_clone().unwrap()).write_all(b"x").unwrap();
        run(lp);
        assert_eq!(*s.calls.lock(), [(1, READABLE)], "a paused watch reports nothing");
        s.calls.lock().clear();
        lp.update_handle(w, READABLE | WRITABLE);
        run(lp);
        assert_eq!(*s.calls.lock(), [(1, READABLE | WRITABLE)]);
        s.calls.lock().clear();

        assert_eq!(lp.remove_handle(w), 0);
        assert_eq!(lp.remove_handle(w), -1, "removed once");
        lp.update_handle(w, READABLE); // ignored
        assert_eq!(s.freed.load(Ordering::SeqCst), 0, "freed later");
        run(lp);
        assert_eq!(s.freed.load(Ordering::SeqCst), 1, "at the next iteration");
        assert!(s.calls.lock().is_empty(), "which does nothing else");
        assert_eq!(lp.remove_handle(w2), 0);
        assert_eq!(lp.remove_handle(99), -1);
        assert_eq!(lp.add_handle(a.as_raw_fd(), 0, Some(on_handle), ptr(&s), None), 3, "ids are not reused");
    }

    #[test]
    fn hang_ups_are_reported_whatever_was_asked() {
        let lp = leak_loop();
        let s = seen(lp);
        let (a, b) = pipe();
        let w = lp.add_handle(a.as_raw_fd(), WRITABLE, Some(on_handle), ptr(&s), None);
        drop(b);
        run(lp);
        let calls = s.calls.lock().clone();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].0, w);
        assert!(calls[0].1 & HANGUP != 0, "events {:#x}", calls[0].1);
        assert_eq!(calls[0].1 & READABLE, 0, "not asked for");
        lp.remove_handle(w);
    }

    #[test]
    fn a_callback_may_remove_its_own_watch_and_others() {
        let lp = leak_loop();
        let s = seen(lp);
        let (a, b) = pipe();
        let (c, d) = pipe();
        let w1 = lp.add_handle(b.as_raw_fd(), WRITABLE, Some(on_handle), ptr(&s), Some(on_free));
        let w2 = lp.add_handle(d.as_raw_fd(), WRITABLE, Some(on_handle), ptr(&s), Some(on_free));
        // The first callback removes the second watch, which was ready too: it is not called.
        s.remove.store(w2, Ordering::SeqCst);
        run(lp);
        assert_eq!(*s.calls.lock(), [(w1, WRITABLE)]);
        s.calls.lock().clear();
        // Now it removes itself.
        s.remove.store(w1, Ordering::SeqCst);
        run(lp); // frees w2
        assert_eq!(s.freed.load(Ordering::SeqCst), 1);
        run(lp);
        assert_eq!(*s.calls.lock(), [(w1, WRITABLE)]);
        run(lp);
        assert_eq!(s.freed.load(Ordering::SeqCst), 2);
        drop((a, c));
    }

    #[test]
    fn timers_fire_disable_and_free() {
        let lp = leak_loop();
        let s = seen(lp);
        let t0 = lp.add_timeout(0, Some(on_timer), ptr(&s), Some(on_free));
        assert_eq!(t0, 1, "timer ids start at 1");
        lp.reserve_timer_id();
        let t1 = lp.add_timeout(-1, Some(on_timer), ptr(&s), None);
        assert_eq!(t1, 3, "a reserved id is skipped");
        run(lp);
        run(lp);
        assert_eq!(*s.calls.lock(), [(t0, 0), (t0, 0)], "0 ms fires every iteration; -1 never");
        s.calls.lock().clear();
        lp.update_timeout(t0, -1);
        lp.update_timeout(t1, 20);
        let started = Instant::now();
        run(lp);
        assert!(started.elapsed() >= Duration::from_millis(20));
        assert_eq!(*s.calls.lock(), [(t1, 0)]);
        s.calls.lock().clear();
        // A timer callback removes another timer.
        s.remove.store(t0, Ordering::SeqCst);
        lp.update_timeout(t1, 0);
        run(lp);
        assert_eq!(lp.remove_timeout(t0), -1, "already removed");
        assert_eq!(s.freed.load(Ordering::SeqCst), 0);
        run(lp);
        assert_eq!(s.freed.load(Ordering::SeqCst), 0, "not while another timer is due");
        lp.update_timeout(t1, -1);
        run(lp);
        assert_eq!(s.freed.load(Ordering::SeqCst), 1, "in the first idle iteration");
        assert_eq!(lp.remove_timeout(t1), 0);
        assert_eq!(lp.remove_timeout(t1), -1);
    }

    #[test]
    fn another_thread_wakes_a_waiting_iteration() {
        let lp = leak_loop();
        let s = seen(lp);
        let s2 = s.clone();
        let adder = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            lp.add_timeout(0, Some(on_timer), ptr(&s2), None)
        });
        // Nothing to wait for: the iteration blocks until the other thread adds a timer.
        run(lp);
        let t = adder.join().unwrap();
        run(lp);
        assert_eq!(*s.calls.lock(), [(t, 0), (t, 0)], "it fires in both iterations");
    }

    #[test]
    fn the_wake_descriptor_calls_on_wake() {
        let lp = leak_loop();
        let (a, b) = pipe();
        let mut woken = 0;
        UnixStream::from(b.try_clone().unwrap()).write_all(b"x").unwrap();
        lp.run_once(Some(a.as_fd()), &mut || woken += 1);
        assert_eq!(woken, 1);
    }
}

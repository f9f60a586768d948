//! Domain events on their way from the drivers to the event loop of the C API.
//!
//! Drivers [`emit`] events as things happen (a job ends), from whatever thread they run
//! on; the C API [`take`]s them from the thread of an event loop and calls the callbacks
//! applications registered. Events are only kept while someone listens
//! ([`set_listening`]), and never more than [`MAX_QUEUED`], so a program that registers
//! no callback pays nothing.
//!
//! An event loop learns that events wait in two ways, both raised when the queue stops
//! being empty:
//!
//! * the descriptor of [`wake_fd`] becomes readable, so a loop that polls descriptors
//!   (the default loop, or an application's loop through a watch) wakes up;
//! * the hook given to [`set_notify`] runs, for loops that can only be told through a
//!   function call (an application's loop without descriptor watches).
//!
//! [`take`] clears both signals, so the descriptor stays readable exactly while events
//! wait (and, rarely, once more for an empty queue).

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::{Mutex, RwLock};

use super::{DomainId, TypedParams};

/// At most this many events wait for the loop; older ones are dropped first.
pub const MAX_QUEUED: usize = 10_000;

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// A job ended; its final statistics.
    JobCompleted(TypedParams),
    /// A disk's block job ended (`status` is a `virConnectDomainEventBlockJobStatus`).
    BlockJob { target: String, path: String, job_type: i32, status: i32 },
}

/// An event of one domain of one driver instance.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainEvent {
    /// The driver instance (its address), so that only its connections hear it.
    pub driver: usize,
    pub domain: DomainId,
    pub kind: EventKind,
}

struct Pending {
    events: VecDeque<DomainEvent>,
    /// Whether the loop has been told (a byte written, the hook called) since the last
    /// [`take`].
    signalled: bool,
}

static QUEUE: Mutex<Pending> = Mutex::new(Pending { events: VecDeque::new(), signalled: false });
static LISTENING: AtomicBool = AtomicBool::new(false);
static NOTIFY: RwLock<Option<fn()>> = RwLock::new(None);

/// The wake-up socket pair: the loop polls the first, [`emit`] writes to the second. Both
/// are non-blocking. `None` when the process could not create it (out of descriptors).
static WAKE: OnceLock<Option<(UnixStream, UnixStream)>> = OnceLock::new();

fn wake_pair() -> Option<&'static (UnixStream, UnixStream)> {
    WAKE.get_or_init(|| {
        let (reader, writer) = UnixStream::pair().ok()?;
        reader.set_nonblocking(true).ok()?;
        writer.set_nonblocking(true).ok()?;
        Some((reader, writer))
    })
    .as_ref()
}

/// The identity events of a driver carry.
pub fn driver_key<T: ?Sized>(driver: &T) -> usize {
    driver as *const T as *const () as usize
}

/// The descriptor that is readable while events wait for [`take`]: an event loop polls
/// it for reading. `None` when it could not be created.
pub fn wake_fd() -> Option<BorrowedFd<'static>> {
    wake_pair().map(|(reader, _)| reader.as_fd())
}

/// Sets (or with `None` removes) the function [`emit`] calls, on the emitting thread, when
/// events start waiting.
pub fn set_notify(hook: Option<fn()>) {
    *NOTIFY.write() = hook;
}

/// Says whether anyone will take events (the C API knows its registrations).
pub fn set_listening(on: bool) {
    LISTENING.store(on, Ordering::Release);
    if !on {
        let mut pending = QUEUE.lock();
        pending.events.clear();
        clear_signal(&mut pending);
    }
}

/// Queues an event for the loop, when someone listens, and wakes the loop.
pub fn emit(event: DomainEvent) {
    if !LISTENING.load(Ordering::Acquire) {
        return;
    }
    let notify = {
        let mut pending = QUEUE.lock();
        if pending.events.len() >= MAX_QUEUED {
            pending.events.pop_front();
        }
        pending.events.push_back(event);
        if pending.signalled {
            false
        } else {
            pending.signalled = true;
            if let Some((_, writer)) = wake_pair() {
                // A full socket is already readable: nothing is lost when this fails.
                let _ = Write::write(&mut &*writer, &[1]);
            }
            true
        }
    };
    if notify && let Some(hook) = *NOTIFY.read() {
        hook();
    }
}

/// Takes the queued events, oldest first, and clears the wake-up signals.
pub fn take() -> Vec<DomainEvent> {
    let mut pending = QUEUE.lock();
    clear_signal(&mut pending);
    pending.events.drain(..).collect()
}

fn clear_signal(pending: &mut Pending) {
    if !pending.signalled {
        return;
    }
    pending.signalled = false;
    if let Some((reader, _)) = wake_pair() {
        let mut buf = [0u8; 64];
        loop {
            match Read::read(&mut &*reader, &mut buf) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    }
}

/// Serializes the tests, here and in the C API, that use the process-wide queue.
#[cfg(test)]
pub static TEST_SERIAL: Mutex<()> = Mutex::new(());

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uuid::Uuid;
    use std::sync::atomic::AtomicUsize;

    fn event(n: i32) -> DomainEvent {
        DomainEvent {
            driver: 1,
            domain: DomainId { name: format!("d{n}"), uuid: Uuid::default(), id: n },
            kind: EventKind::JobCompleted(Vec::new()),
        }
    }

    /// Reads what the wake-up descriptor holds, without waiting (through a second handle
    /// of the same socket).
    fn wake_bytes() -> usize {
        let mut reader = wake_pair().unwrap().0.try_clone().unwrap();
        let mut buf = [0u8; 64];
        let mut n = 0;
        while let Ok(k) = reader.read(&mut buf) {
            if k == 0 {
                break;
            }
            n += k;
        }
        n
    }

    static HOOK_CALLS: AtomicUsize = AtomicUsize::new(0);
    fn hook() {
        HOOK_CALLS.fetch_add(1, Ordering::SeqCst);
    }

    // One test touches the process-wide queue, so the steps cannot race each other.
    #[test]
    fn queue_only_while_listening_bounded_and_signalled_once() {
        let _serial = TEST_SERIAL.lock();
        assert!(wake_fd().is_some());
        set_listening(false);
        emit(event(1));
        assert!(take().is_empty());
        assert_eq!(wake_bytes(), 0, "nothing signalled while nobody listens");

        set_listening(true);
        set_notify(Some(hook));
        let calls = HOOK_CALLS.load(Ordering::SeqCst);
        emit(event(2));
        emit(event(3));
        assert_eq!(HOOK_CALLS.load(Ordering::SeqCst), calls + 1, "the hook runs once per batch");
        assert_eq!(wake_bytes(), 1, "one byte per batch");
        let got = take();
        assert_eq!(got.iter().map(|e| e.domain.id).collect::<Vec<_>>(), [2, 3]);
        emit(event(4));
        assert_eq!(HOOK_CALLS.load(Ordering::SeqCst), calls + 2, "signalled again after take");
        set_notify(None);
        assert_eq!(take().len(), 1);
        assert_eq!(wake_bytes(), 0, "take drains the descriptor");

        for n in 0..(MAX_QUEUED as i32 + 5) {
            emit(event(n));
        }
        let got = take();
        assert_eq!(got.len(), MAX_QUEUED);
        assert_eq!(got[0].domain.id, 5);

        emit(event(9));
        set_listening(false);
        assert!(take().is_empty(), "events are dropped when the last listener goes");
        assert_eq!(wake_bytes(), 0);
    }
}

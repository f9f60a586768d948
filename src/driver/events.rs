//! Domain events on their way from the drivers to the event loop of the C API.
//!
//! Drivers [`emit`] events as things happen (a job ends); the C API's event loop
//! ([`wait`]) takes them and calls the callbacks applications registered. Events are only
//! kept while someone listens ([`set_listening`]), and never more than [`MAX_QUEUED`], so
//! a program that registers no callback pays nothing.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

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

struct Queue {
    events: Mutex<Pending>,
    ready: Condvar,
}

struct Pending {
    events: VecDeque<DomainEvent>,
    /// Bumped by [`interrupt`], so that a waiting loop looks at its timers again.
    interrupts: u64,
}

static QUEUE: Queue =
    Queue { events: Mutex::new(Pending { events: VecDeque::new(), interrupts: 0 }), ready: Condvar::new() };
static LISTENING: AtomicBool = AtomicBool::new(false);

/// The identity events of a driver carry.
pub fn driver_key<T: ?Sized>(driver: &T) -> usize {
    driver as *const T as *const () as usize
}

/// Says whether anyone will take events (the C API knows its registrations).
pub fn set_listening(on: bool) {
    LISTENING.store(on, Ordering::Release);
    if !on {
        QUEUE.events.lock().events.clear();
    }
}

/// Queues an event for the loop, when someone listens.
pub fn emit(event: DomainEvent) {
    if !LISTENING.load(Ordering::Acquire) {
        return;
    }
    let mut pending = QUEUE.events.lock();
    if pending.events.len() >= MAX_QUEUED {
        pending.events.pop_front();
    }
    pending.events.push_back(event);
    QUEUE.ready.notify_all();
}

/// Waits until events are queued, `deadline` passes or [`interrupt`] is called, and
/// takes the queued events.
pub fn wait(deadline: Option<Instant>) -> Vec<DomainEvent> {
    let mut pending = QUEUE.events.lock();
    let interrupts = pending.interrupts;
    while pending.events.is_empty() && pending.interrupts == interrupts {
        match deadline {
            Some(at) => {
                if QUEUE.ready.wait_until(&mut pending, at).timed_out() {
                    break;
                }
            }
            None => QUEUE.ready.wait(&mut pending),
        }
    }
    pending.events.drain(..).collect()
}

/// Wakes a waiting loop without an event (after a timer changed).
pub fn interrupt() {
    QUEUE.events.lock().interrupts += 1;
    QUEUE.ready.notify_all();
}

/// A short deadline from now, for callers that poll.
pub fn after(timeout: Duration) -> Instant {
    Instant::now() + timeout
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uuid::Uuid;

    fn event(n: i32) -> DomainEvent {
        DomainEvent {
            driver: 1,
            domain: DomainId { name: format!("d{n}"), uuid: Uuid::default(), id: n },
            kind: EventKind::JobCompleted(Vec::new()),
        }
    }

    // One test touches the process-wide queue, so the steps cannot race each other.
    #[test]
    fn queue_only_while_listening_and_bounded() {
        set_listening(false);
        emit(event(1));
        assert!(wait(Some(after(Duration::from_millis(10)))).is_empty());
        set_listening(true);
        emit(event(2));
        emit(event(3));
        let got = wait(None);
        assert_eq!(got.iter().map(|e| e.domain.id).collect::<Vec<_>>(), [2, 3]);
        for n in 0..(MAX_QUEUED as i32 + 5) {
            emit(event(n));
        }
        let got = wait(None);
        assert_eq!(got.len(), MAX_QUEUED);
        assert_eq!(got[0].domain.id, 5);
        // An interrupt ends a wait without events.
        let waiter = std::thread::spawn(|| wait(None));
        while !waiter.is_finished() {
            interrupt();
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(waiter.join().unwrap().is_empty());
        set_listening(false);
    }
}

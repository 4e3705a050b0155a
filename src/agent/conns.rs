//! Caps on what connections may hold, so a flood from a process of the same user (thousands
//! of connections, half-sent frames, connections held open and silent) cannot exhaust the
//! agent's memory or descriptors, or keep it from answering a normal client.
//!
//! - The number of open connections is capped. When a new one arrives at the cap, the oldest
//!   connection that is waiting for input is closed to make room: first one that has not said
//!   hello yet, then one idle between requests for at least [`IDLE_GRACE`] (a busy client's
//!   connection is idle only for moments). A connection whose request is being handled, or
//!   whose task has not looked at its input yet, is never closed for a newcomer; while no
//!   connection may be closed, newcomers wait in the kernel's listen queue.
//! - Before the hello, a frame may be at most [`HELLO_MAX_FRAME`] bytes (a hello is a few
//!   dozen).
//! - Payload bytes being received are charged to one [`ByteBudget`] beyond the first
//!   `RECV_CHUNK` of each frame, and buffers grow only by what arrived (`wbl_proto`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use wbl_proto::ByteBudget;

/// Largest frame accepted before the hello.
pub const HELLO_MAX_FRAME: usize = 1024;

/// How long a greeted connection must have been idle before it may be closed for a newcomer.
pub const IDLE_GRACE: std::time::Duration = std::time::Duration::from_millis(250);

/// Connection caps (`WBL_MAX_CONNECTIONS`, `WBL_MAX_BUFFERED` in bytes, for tests).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Open connections at most (default 1024).
    pub max_connections: usize,
    /// Payload bytes being received, over all connections, beyond each frame's free chunk
    /// (default 16 MiB).
    pub max_buffered: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 1024,
            max_buffered: 16 * 1024 * 1024,
        }
    }
}

impl ConnectionLimits {
    /// Defaults, each overridable by its environment variable.
    pub fn from_env() -> Self {
        fn num(var: &str, default: usize) -> usize {
            std::env::var(var)
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
                .filter(|n| *n > 0)
                .unwrap_or(default)
        }
        let d = Self::default();
        ConnectionLimits {
            max_connections: num("WBL_MAX_CONNECTIONS", d.max_connections),
            max_buffered: num("WBL_MAX_BUFFERED", d.max_buffered),
        }
    }
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Accepted; its task has not looked for input yet (never closed to make room: its hello
    /// may already be waiting in the socket).
    Fresh,
    /// Waiting for the hello.
    PreHello,
    /// Greeted, waiting for the next request.
    Idle,
    /// A request is being handled.
    Busy,
}

struct Slot {
    phase: Phase,
    /// When the phase last changed.
    since: std::time::Instant,
    evict: Arc<Notify>,
}

/// The open connections, oldest first (ids grow).
pub struct Registry {
    limits: ConnectionLimits,
    budget: ByteBudget,
    slots: Mutex<(u64, BTreeMap<u64, Slot>)>,
    /// Signalled when a place may have become free.
    changed: Notify,
}

impl Registry {
    pub fn new(limits: ConnectionLimits) -> Arc<Self> {
        Arc::new(Registry {
            limits,
            budget: ByteBudget::new(limits.max_buffered),
            slots: Mutex::new((0, BTreeMap::new())),
            changed: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, BTreeMap<u64, Slot>)> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until a new connection may be accepted: below the cap, or after closing the
    /// oldest waiting connection (before its hello first, then idle between requests). While
    /// every connection is fresh or busy, new ones wait in the kernel's listen queue.
    pub async fn room(&self) {
        loop {
            let changed = self.changed.notified();
            if self.make_room() {
                return;
            }
            // Bounded, in case a change raced the check above.
            let _ = tokio::time::timeout(std::time::Duration::from_millis(20), changed).await;
        }
    }

    fn make_room(&self) -> bool {
        let mut guard = self.lock();
        let slots = &mut guard.1;
        if slots.len() < self.limits.max_connections {
            return true;
        }
        let victim = slots
            .iter()
            .find(|(_, s)| s.phase == Phase::PreHello)
            .or_else(|| {
                slots
                    .iter()
                    .find(|(_, s)| s.phase == Phase::Idle && s.since.elapsed() >= IDLE_GRACE)
            })
            .map(|(id, _)| *id);
        match victim.and_then(|v| slots.remove(&v)) {
            Some(slot) => {
                tracing::debug!(phase = ?slot.phase, "connection cap reached; closing the oldest waiting connection");
                slot.evict.notify_waiters();
                true
            }
            None => false,
        }
    }

    /// Registers a connection just accepted (after [`Registry::room`]).
    pub fn admit(self: &Arc<Self>) -> Ticket {
        let mut guard = self.lock();
        let id = guard.0;
        guard.0 += 1;
        let evict = Arc::new(Notify::new());
        guard.1.insert(
            id,
            Slot {
                phase: Phase::Fresh,
                since: std::time::Instant::now(),
                evict: Arc::clone(&evict),
            },
        );
        Ticket {
            id,
            evict,
            registry: Arc::clone(self),
        }
    }

    /// Open connections now.
    #[cfg(test)]
    fn open(&self) -> usize {
        self.lock().1.len()
    }
}

/// One admitted connection; dropping it frees its place.
pub struct Ticket {
    id: u64,
    evict: Arc<Notify>,
    registry: Arc<Registry>,
}

impl Ticket {
    /// Records the phase. A connection closed to make room at the very moment its input
    /// arrived takes its place again, so a client that got its bytes in is served.
    pub fn set_phase(&self, phase: Phase) {
        let mut g = self.registry.lock();
        match g.1.get_mut(&self.id) {
            Some(slot) => {
                slot.phase = phase;
                slot.since = std::time::Instant::now();
            }
            None => {
                g.1.insert(
                    self.id,
                    Slot {
                        phase,
                        since: std::time::Instant::now(),
                        evict: Arc::clone(&self.evict),
                    },
                );
            }
        }
        // Only a full registry has an accept loop waiting for a connection it may close.
        let full = g.1.len() >= self.registry.limits.max_connections;
        drop(g);
        if full && matches!(phase, Phase::PreHello | Phase::Idle) {
            self.registry.changed.notify_waiters();
        }
    }

    /// A future that completes when the registry closes this connection to make room; create
    /// it before [`Ticket::set_phase`] marks the connection as waiting, so no signal is lost.
    pub fn evicted(&self) -> tokio::sync::futures::Notified<'_> {
        self.evict.notified()
    }

    pub fn budget(&self) -> &ByteBudget {
        &self.registry.budget
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.registry.lock().1.remove(&self.id);
        self.registry.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn registry(max: usize) -> Arc<Registry> {
        Registry::new(ConnectionLimits {
            max_connections: max,
            max_buffered: 1024,
        })
    }

    async fn admitted(r: &Arc<Registry>) -> Ticket {
        tokio::time::timeout(Duration::from_secs(1), r.room())
            .await
            .expect("no room");
        r.admit()
    }

    #[tokio::test]
    async fn the_oldest_pre_hello_connection_goes_first_then_the_oldest_idle() {
        let r = registry(3);
        let (a, b, c) = (admitted(&r).await, admitted(&r).await, admitted(&r).await);
        let (ea, eb) = (a.evicted(), b.evicted());
        a.set_phase(Phase::Idle);
        b.set_phase(Phase::PreHello);
        c.set_phase(Phase::PreHello);
        // At the cap: b (the oldest before its hello) is closed, not a (older, but greeted).
        let d = admitted(&r).await;
        tokio::time::timeout(Duration::from_secs(1), eb)
            .await
            .expect("b was not evicted");
        assert_eq!(r.open(), 3);
        // c busy, d fresh: the oldest idle one (a) goes next, once idle for the grace period.
        c.set_phase(Phase::Busy);
        assert!(
            tokio::time::timeout(IDLE_GRACE / 2, r.room())
                .await
                .is_err(),
            "an idle connection was closed within its grace period"
        );
        let _e = admitted(&r).await;
        tokio::time::timeout(Duration::from_secs(1), ea)
            .await
            .expect("a was not evicted");
        drop(d);
        assert_eq!(r.open(), 2);
    }

    #[tokio::test]
    async fn fresh_and_busy_connections_are_never_closed_for_a_newcomer() {
        let r = registry(2);
        let a = admitted(&r).await;
        let b = admitted(&r).await;
        b.set_phase(Phase::Busy);
        // a is fresh (its task has not looked for input yet), b busy: the newcomer waits.
        assert!(
            tokio::time::timeout(Duration::from_millis(100), r.room())
                .await
                .is_err()
        );
        drop(a);
        admitted(&r).await;
    }
}

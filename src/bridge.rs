//! A bridge between two links: the peers of each become members on the other, and
//! messages cross, each still naming its original sender. Enu runs contexts on its main
//! and worker threads on a bus and bridges the bus to the network on a third thread; a
//! server runs its rooms' contexts on threads behind one ENet socket.
//!
//! The bridge holds no context and decodes nothing: it moves joins, leaves and bytes.
//! Both sides are [`Relay`]s made for it (`Bus::join_relay`, `EnetLink::connect_relay`,
//! `EnetLink::listen_relay`), so nobody counts the bridge itself as a member and
//! WaitForSync waits only for real peers. Bridges must form a tree: a peer id that
//! reaches a session twice is refused (counted in `BridgeStats::refused`).

use crate::link::{LinkEvent, Relay};
use crate::pacer::{halt, spawn_paced};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// What a bridge has moved since it was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BridgeStats {
    /// Messages moved from one side to the other.
    pub forwarded: u64,
    /// Bytes of those messages.
    pub bytes_forwarded: u64,
    /// Joins carried to the other side (a peer that joins, leaves and joins again counts
    /// twice).
    pub carried: u64,
    /// Joins the other side refused: a peer id it already has.
    pub refused: u64,
}

/// Most events one `pump` takes from each side, so a flood on one cannot starve the
/// other.
const MAX_EVENTS_PER_PUMP: u32 = 1 << 16;

/// The counters, shared with a bridge thread's handle. Each is counted before the event
/// is passed on, so whoever sees its effect sees it counted.
#[derive(Default)]
struct Counters {
    forwarded: AtomicU64,
    bytes_forwarded: AtomicU64,
    carried: AtomicU64,
    refused: AtomicU64,
}

impl Counters {
    fn add(n: &AtomicU64, by: u64) {
        n.fetch_add(by, Ordering::Relaxed);
    }

    fn get(&self) -> BridgeStats {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        BridgeStats {
            forwarded: n(&self.forwarded),
            bytes_forwarded: n(&self.bytes_forwarded),
            carried: n(&self.carried),
            refused: n(&self.refused),
        }
    }
}

/// Two relays joined. Call [`Bridge::pump`] often (every millisecond or two: each pump
/// is a hop of latency), or let [`Bridge::spawn`] do it on a thread.
pub struct Bridge<A: Relay, B: Relay> {
    a: A,
    b: B,
    counters: Arc<Counters>,
}

impl<A: Relay, B: Relay> Bridge<A, B> {
    pub fn new(a: A, b: B) -> Bridge<A, B> {
        Bridge { a, b, counters: Arc::default() }
    }

    /// Moves what each side has for the other now; the number of events moved.
    pub fn pump(&mut self) -> u32 {
        cross(&mut self.a, &mut self.b, &self.counters) + cross(&mut self.b, &mut self.a, &self.counters)
    }

    pub fn stats(&self) -> BridgeStats {
        self.counters.get()
    }
}

fn cross(from: &mut impl Relay, to: &mut impl Relay, counters: &Counters) -> u32 {
    let mut moved = 0;
    while moved < MAX_EVENTS_PER_PUMP {
        let Some(event) = from.poll() else { break };
        moved += 1;
        match event {
            LinkEvent::Joined(peer) => match to.carry(peer) {
                Ok(()) => Counters::add(&counters.carried, 1),
                Err(_) => Counters::add(&counters.refused, 1),
            },
            LinkEvent::Left(peer) => to.uncarry(peer),
            LinkEvent::Message { from, to: dest, bytes } => {
                Counters::add(&counters.forwarded, 1);
                Counters::add(&counters.bytes_forwarded, bytes.len() as u64);
                to.send_as(from, dest, bytes);
            }
        }
    }
    moved
}

/// A bridge pumped on its own thread. Dropping it stops the thread and drops both links
/// (their peers leave the other side).
pub struct BridgeThread {
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl<A: Relay + Send + 'static, B: Relay + Send + 'static> Bridge<A, B> {
    /// Pumps the bridge on a new thread every `period_ms` (at least 1) ms.
    pub fn spawn(mut self, period_ms: u64) -> BridgeThread {
        let stop = Arc::new(AtomicBool::new(false));
        let counters = self.counters.clone();
        let period = Duration::from_millis(period_ms.max(1));
        let thread = spawn_paced("zen-crdt bridge", period, stop.clone(), move |_| {
            self.pump();
            true
        });
        BridgeThread { counters, stop, thread: Some(thread) }
    }
}

impl BridgeThread {
    /// The bridge's counters now.
    pub fn stats(&self) -> BridgeStats {
        self.counters.get()
    }
}

impl Drop for BridgeThread {
    fn drop(&mut self) {
        halt(&self.stop, &mut self.thread);
    }
}

//! Change events and the bounded queue the host polls them from.
//!
//! Owns the event type and the queue. Nothing here calls back into the host: events are
//! pulled with `Context::poll_change` until it returns `None`. Changes to one value at the
//! same host time merge into one event while it is unpolled (oldest `old`, newest
//! everything else): ten writes in a frame, or a remote write that converges in the tick
//! it arrives, are one event. If the host stops polling, the queue stays bounded: once it
//! is full, any new event for a value with one queued merges into it, and an event for a
//! value with nothing queued is dropped and counted.

use crate::handle::ValueHandle;
use crate::value::Value;
use crate::view::SyncState;
use std::collections::VecDeque;
use std::num::NonZeroU64;

/// What happened to a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// The value appeared here because another peer created it.
    Created,
    /// The value read by this context changed (local write, remote write, correction,
    /// or a mode switch that changes what reads return).
    Modified,
    /// Only the sync state changed (for example `Syncing` -> `Converged`).
    StateChanged,
    /// The value was removed, here or by another peer.
    Removed,
    /// A peer re-announced the value unchanged (`Context::touch`): "same value, act
    /// again". `old` and `new` are both what reads return.
    Touched,
    /// Only the owner of an owner-only value changed (a transfer, or the owner left and
    /// its heir took over): `origin` is the new owner. A change of ownership that comes
    /// with a change of the value is that change's event, with `owner_changed` set.
    OwnerChanged,
    /// This context's write (or touch) was refused: it is not the value's owner (the
    /// ownership moved before the write went out, or another peer's claim won). `old` is
    /// what it showed, `new` what reads return now, `origin` the owner; no peer shows
    /// the refused write.
    Rejected,
}

/// One change, as the host sees it. `old` and `new` are what `Context::get` returned
/// before and after (`None` for a removed or not yet written value).
#[derive(Clone, Debug, PartialEq)]
pub struct ChangeEvent {
    pub value: ValueHandle,
    pub kind: ChangeKind,
    pub old: Option<Value>,
    pub new: Option<Value>,
    pub state: SyncState,
    /// True when a concurrent write from another peer replaced what this peer showed.
    pub is_correction: bool,
    /// This context had never shown content for the value before this event: a value a
    /// peer created (seen live, on a late join, after a partition, or from a save), or
    /// one declared here whose first content came from elsewhere. A game handles "was
    /// already there" (`true`) and "just changed" (`false`) with the same code. Local
    /// writes are never initial.
    pub is_initial: bool,
    /// The owner of this owner-only value changed with this event (see
    /// `Context::owner`): a game starts or stops simulating what it owns here.
    pub owner_changed: bool,
    /// Peer whose write caused the change (this context's own id for local writes).
    pub origin: u64,
    /// Host time of the change, in the milliseconds the host passes to `tick`.
    pub time_ms: u64,
}

pub(crate) struct EventQueue {
    queue: VecDeque<ChangeEvent>,
    /// Absolute number of the event at the front of `queue`.
    head: u64,
    capacity: usize,
    pub coalesced: u64,
    pub dropped: u64,
}

impl EventQueue {
    pub fn new(capacity: usize) -> EventQueue {
        EventQueue { queue: VecDeque::new(), head: 0, capacity, coalesced: 0, dropped: 0 }
    }

    /// Pushes `ev`; `slot` is the value's record of its queued event, kept by the caller
    /// so merging is O(1): the event's absolute number plus one (so `None` fits in the
    /// same eight bytes; every value carries one).
    pub fn push(&mut self, ev: ChangeEvent, slot: &mut Option<NonZeroU64>) {
        if let Some(n) = slot.map(|n| n.get() - 1) {
            let full = self.queue.len() >= self.capacity;
            if n >= self.head {
                let queued = &mut self.queue[(n - self.head) as usize];
                if queued.value == ev.value && (full || queued.time_ms == ev.time_ms) {
                    merge(queued, ev);
                    self.coalesced += 1;
                    return;
                }
            }
        }
        if self.queue.len() >= self.capacity {
            self.dropped += 1;
            return;
        }
        *slot = NonZeroU64::new(self.head + self.queue.len() as u64 + 1);
        self.queue.push_back(ev);
    }

    pub fn pop(&mut self) -> Option<ChangeEvent> {
        let Some(ev) = self.queue.pop_front() else {
            // A burst (say, 10,000 values created by a peer) must not pin its peak
            // capacity for the rest of the session.
            if self.queue.capacity() > 4096 {
                self.queue.shrink_to(1024);
            }
            return None;
        };
        self.head += 1;
        Some(ev)
    }

    /// The slot record (see `push`) of the next event `pop` returns.
    pub fn head_slot(&self) -> Option<NonZeroU64> {
        NonZeroU64::new(self.head + 1)
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }
}

fn merge(into: &mut ChangeEvent, ev: ChangeEvent) {
    let kind = match (into.kind, ev.kind) {
        (ChangeKind::Created, ChangeKind::Removed) | (_, ChangeKind::Removed) => ChangeKind::Removed,
        (ChangeKind::Created, _) => ChangeKind::Created,
        // The host must hear that its write was refused, whatever follows.
        (ChangeKind::Rejected, _) | (_, ChangeKind::Rejected) => ChangeKind::Rejected,
        // A change of the value says more than a change of owner (the flag keeps that).
        (k, ChangeKind::OwnerChanged) if k != ChangeKind::StateChanged => k,
        // A touch merged into a change of the value is part of that change.
        (k, ChangeKind::Touched) if k != ChangeKind::StateChanged => k,
        (_, ChangeKind::StateChanged) if into.kind != ChangeKind::StateChanged => into.kind,
        (_, k) => k,
    };
    into.kind = kind;
    into.new = ev.new;
    into.state = ev.state;
    into.is_correction |= ev.is_correction;
    // The host has not seen the queued event: if it was the value's first, the merged one is.
    into.is_initial |= ev.is_initial;
    into.owner_changed |= ev.owner_changed;
    // A state change says nothing of who caused the change it joins.
    if ev.kind != ChangeKind::StateChanged || into.kind == ChangeKind::StateChanged {
        into.origin = ev.origin;
    }
    into.time_ms = ev.time_ms;
}

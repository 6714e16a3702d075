//! The value table: every value of one context, the id index, the handles it gives out,
//! the work lists (dirty, unconverged, idle) and the queued change events.
//!
//! Each value is three parts kept apart: its CRDT core ([`Crdt`]: type, policy, yrs
//! document, slots, resolved value), its view ([`View`]: mode, pending write,
//! acknowledged value, sync state, i.e. what this peer's reads show) and its sync book
//! ([`Book`]: where it stands on each stream). The list flags are private to this
//! module, so "flag set ⇔ in the list" and "queued event ⇔ its queue slot" hold by
//! construction: only the methods here set them.
//!
//! The sync engine drives values through these methods; resolving a value and queueing
//! the events that follow happen here, in the order the engine asks. Never sends,
//! never decides what a member holds. See ARCHITECTURE.md.

use crate::collection::{Birth, Key};
use crate::error::Error;
use crate::events::{ChangeEvent, ChangeKind, EventQueue};
use crate::handle::ValueHandle;
use crate::ids::{Clock, Millis, PeerId, Seq, ValueIndex};
use crate::metrics::Metrics;
use crate::policy::{MergeFn, Policy};
use crate::register::{
    self, decode_record, encode_own, encode_touched_record, Guard, Own, Owned, Slot, Touch,
};
use crate::storage::{Payload, ValueDoc};
use crate::value::{Value, ValueType};
use crate::view::{Mode, SyncState};
use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU64;
use std::sync::Arc;

mod entries;

use entries::{guard_owners, head_owners};

/// A local write not yet flushed: `Some(v)` a write, `None` a removal.
pub(crate) type PendingWrite = Option<Value>;

/// Where a value stands on one peer's stream.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StreamRef {
    pub peer: PeerId,
    /// The value's index in that stream's numbering.
    pub index: u32,
    /// Last seq of that stream that carried this value.
    pub last_seq: Seq,
    /// The stream writer's yrs clock in this value that `last_seq` covers.
    pub clock: Clock,
}

/// The replicated part of a value: the same on every peer once converged.
pub(crate) struct Crdt {
    pub ty: ValueType,
    pub policy: Policy,
    /// Whether `policy` came from the stored meta record (vs. local options).
    pub meta_known: bool,
    /// Meta record still to be written with the next flush (locally created value).
    pub meta_unwritten: bool,
    pub doc: ValueDoc,
    /// Every writer's latest record, sorted by writer.
    pub slots: Vec<Slot>,
    /// What the policy makes of the slots.
    pub resolved: Option<Value>,
    /// `Some` for an owner-only value (`ValueOptions::owner`); boxed, as few are (see
    /// `ValueState`).
    pub owner: Option<Box<OwnerState>>,
    /// `Some` for an entry of an owner-only collection: how its records resolved under
    /// the collection's owners (`register::resolve_guarded`).
    pub guard: Option<Guard>,
}

impl Crdt {
    pub fn is_removed(&self) -> bool {
        self.resolved.is_none()
            && match (&self.owner, self.guard) {
                (Some(o), _) => o.decided_removal,
                // Only a record that counts removes: an entry holding none is not yet
                // known here, and must not be forgotten.
                (None, Some(g)) => g.any,
                (None, None) => !self.slots.is_empty(),
            }
    }
}

/// Who may write an owner-only value, as this replica knows it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OwnerState {
    /// The first owner: the meta record's, or the local options' until that is known.
    pub first: PeerId,
    /// What the ownership walk over the slots found (`register::owner`).
    pub walked: Owned,
    /// The ownership our next record carries, staged by a transfer or a claim and not
    /// yet flushed: it stands here until then.
    pub staged: Option<Own>,
    /// The record the value reads is a removal.
    pub decided_removal: bool,
}

impl OwnerState {
    pub fn new(first: PeerId) -> OwnerState {
        let walked = Owned { own: Own { epoch: 0, owner: first }, decided_by: None };
        OwnerState { first, walked, staged: None, decided_removal: false }
    }

    /// The ownership in force here.
    pub fn current(&self) -> Own {
        match self.staged {
            Some(s) if s.epoch > self.walked.own.epoch => s,
            _ => self.walked.own,
        }
    }
}

/// What this peer's reads show, and how the value stands here.
pub(crate) struct View {
    pub mode: Mode,
    /// A local write not yet flushed (`Some(None)` a removal).
    pub pending: Option<PendingWrite>,
    /// Last value every current member acknowledged: what WaitForSync reads return.
    pub acked: Option<Value>,
    /// The acknowledged state is a removal.
    pub acked_removed: bool,
    pub state: SyncState,
    /// The visible value is this peer's own write (a concurrent win is then a correction).
    pub shows_local: bool,
    /// Time of the first WaitForSync write not yet converged (latency metric).
    pub write_time_ms: Option<Millis>,
    /// The next flush writes a touch (`Context::touch`), with the pending write if there
    /// is one.
    pub pending_touch: bool,
    /// A peer's touch arrived (from that peer) since the last resolution: tell the host
    /// if nothing else changed.
    /// (The peer's raw id: a peer id is never 0, so the option costs no word of its own
    /// and the value's state stays within six cache lines; see `ValueState`.)
    pub touch_arrived: Option<NonZeroU64>,
    /// Some event already showed the host content of this value (or it wrote it): later
    /// events are not `is_initial`.
    pub shown_content: bool,
    /// Never sent, never taken from peers (`ValueOptions::local_only`): this replica's
    /// own, with the same API and events.
    pub local_only: bool,
}

/// Where the value stands on the streams that wrote it.
#[derive(Default)]
pub(crate) struct Book {
    pub streams: Vec<StreamRef>,
    /// Seq of our own message that first carried this value (`Seq::NONE`: not yet sent).
    pub announce_seq: Seq,
}

impl Book {
    pub fn stream(&self, peer: PeerId) -> Option<&StreamRef> {
        self.streams.iter().find(|s| s.peer == peer)
    }

    /// The entry for `peer`'s stream, added (numbered `index` there) if new.
    pub fn stream_mut(&mut self, peer: PeerId, index: u32) -> &mut StreamRef {
        match self.streams.iter().position(|s| s.peer == peer) {
            Some(i) => &mut self.streams[i],
            None => {
                self.streams.push(StreamRef { peer, index, last_seq: Seq::NONE, clock: Clock::ZERO });
                self.streams.last_mut().expect("just pushed")
            }
        }
    }
}

/// One value as a save holds it (`save` decodes it, `restore` adds it).
pub(crate) struct SavedValue {
    pub id: String,
    pub ty: ValueType,
    pub policy: Policy,
    pub meta_known: bool,
    pub meta_unwritten: bool,
    pub mode: Mode,
    pub acked: Option<Value>,
    pub acked_removed: bool,
    pub shows_local: bool,
    pub local_only: bool,
    pub pending_touch: bool,
    /// An owner-only value's first owner, as this replica knows it.
    pub first_owner: Option<PeerId>,
    /// A transfer or claim made here and not yet sent.
    pub staged_own: Option<Own>,
    pub state: SyncState,
    pub pending: Option<PendingWrite>,
    pub announce_seq: Seq,
    pub streams: Vec<StreamRef>,
    pub doc: ValueDoc,
}

/// The table's own marks on a value. Private: only the table's methods set them, each
/// together with the list it stands for.
struct Marks {
    dirty: bool,
    unconverged: bool,
    in_idle_queue: bool,
    last_touch_ms: Millis,
    /// This value's queued event, for merging (see `EventQueue::push`).
    queued_event: Option<NonZeroU64>,
    /// A forgotten table entry's place, free for the next value (see `forget`).
    vacant: bool,
}

/// One value's state. Aligned to a cache line and kept within six: a tick that touches a
/// random hundred of ten thousand values misses on every line of each (see `warm`), so
/// each line more is a miss more per value (the rarely used parts, such as `OwnerState`,
/// are boxed for that reason).
#[repr(align(64))]
pub(crate) struct ValueState {
    pub id: Arc<str>,
    pub crdt: Crdt,
    pub view: View,
    pub book: Book,
    /// `Some` for a table entry: which table, key and birth (see `collection`).
    pub entry: Option<Box<EntryLink>>,
    /// `Some(t)` for the head of owner-only collection `t` (see `collection::head_id`).
    pub head: Option<u32>,
    marks: Marks,
}

#[cfg(target_pointer_width = "64")]
const _: () =
    assert!(std::mem::size_of::<ValueState>() == 6 * 64, "a value's state grew past six cache lines");

/// Where a table entry belongs.
pub(crate) struct EntryLink {
    /// Index into the table list (`ValueTable::tables`).
    pub table: u32,
    pub key: Key,
    pub birth: Birth,
    /// It arrived in a catch-up and no event has shown it yet (`TableEvent::is_initial`).
    pub initial: bool,
}

impl ValueState {
    /// What reads return (see `Mode`); `None` for removed or never written.
    pub fn visible(&self) -> Option<Value> {
        match (self.view.mode, &self.view.pending) {
            (Mode::FastLocal, Some(p)) => p.clone(),
            (Mode::FastLocal, None) => self.crdt.resolved.clone(),
            (Mode::WaitForSync, _) => self.view.acked.clone(),
        }
    }

    /// What WaitForSync reads becomes the current resolved state.
    pub fn acknowledge(&mut self) {
        self.view.acked = self.crdt.resolved.clone();
        self.view.acked_removed = self.crdt.is_removed();
    }

    /// Whether reads report the value as removed.
    pub fn reads_removed(&self) -> bool {
        match (self.view.mode, &self.view.pending) {
            (Mode::FastLocal, Some(p)) => p.is_none(),
            (Mode::FastLocal, None) => self.crdt.is_removed(),
            (Mode::WaitForSync, _) => self.view.acked_removed,
        }
    }

    #[cfg(test)]
    pub fn is_unconverged(&self) -> bool {
        self.marks.unconverged
    }

    /// The writer whose slot is newest (who "caused" a state); `me` if none wrote. For an
    /// owner-only value, the writer of the record it reads (a non-owner causes nothing).
    pub fn newest_writer(&self, me: PeerId) -> PeerId {
        if let Some(o) = &self.crdt.owner {
            return o.walked.decided_by.unwrap_or(o.current().owner);
        }
        self.crdt.slots.iter().max_by_key(|s| s.clock).map_or(me, |s| s.writer)
    }
}

/// A local write turned into a CRDT update by [`ValueTable::commit_pending`].
pub(crate) struct Commit {
    /// The yrs update to put in this tick's delta (shared with the document's queue).
    pub update: crate::storage::Shared,
    /// Our clock in the value after it.
    pub clock: Clock,
    /// The write it carried (`None`: only the meta record of a created value).
    pub write: Option<PendingWrite>,
}

/// One entry of a peer's stream for [`ValueTable::integrate`].
pub(crate) struct Incoming {
    /// The writer of the stream.
    pub origin: PeerId,
    /// The writer's clock in the value that the entry covers.
    pub stream_clock: Clock,
    pub update: Payload,
    /// Re-read every slot (snapshots, a stream's first entry for the value, a value whose
    /// meta is unknown) instead of the writer's alone.
    pub full: bool,
}

/// Whether two reads differ, by the bits peers compare.
pub(crate) fn differs(a: &Option<Value>, b: &Option<Value>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => !a.same_bits(b),
        (a, b) => a.is_some() != b.is_some(),
    }
}

pub(crate) struct ValueTable {
    me: PeerId,
    /// Our slot key in every value document.
    slot_key: Arc<str>,
    /// The owning context's serial: its handles carry it.
    serial: u64,
    max_values: usize,
    now: Millis,
    values: Vec<ValueState>,
    by_id: HashMap<Arc<str>, ValueIndex>,
    dirty: Vec<ValueIndex>,
    unconverged: Vec<ValueIndex>,
    /// Reused by `settle` (no allocation per tick).
    scratch: Vec<ValueIndex>,
    /// (touch time, value) in touch order; a value appears at most once.
    idle: VecDeque<(Millis, ValueIndex)>,
    events: EventQueue,
    merges: HashMap<Arc<str>, MergeFn>,
    /// Reused to encode slot records.
    record: Vec<u8>,
    /// The session's members as the context knows them (a copy of the sync engine's
    /// roster, given with `roster_changed`): an owner-only value's owner who is not here
    /// may be succeeded (see `register::owner`).
    roster: Vec<PeerId>,
    /// Members the host removed (left for good) and not added since: an owner among them
    /// is succeeded by its heir, which may be this replica (`claim_if_heir`).
    departed: Vec<PeerId>,
    /// The last `integrate` brought its writer's slot a newer record (for `changed_by`).
    fresh_record: bool,
    /// Places of forgotten entries, reused by `insert`.
    free: Vec<ValueIndex>,
    /// Tables and their entries' keys (see `entries`).
    pub(crate) tables: entries::Tables,
}

impl ValueTable {
    pub fn new(me: PeerId, serial: u64, max_values: usize, event_capacity: usize) -> ValueTable {
        ValueTable {
            me,
            slot_key: Arc::from(crate::storage::slot_key(me.get())),
            serial,
            max_values,
            now: Millis::ZERO,
            values: Vec::new(),
            by_id: HashMap::new(),
            dirty: Vec::new(),
            unconverged: Vec::new(),
            scratch: Vec::new(),
            idle: VecDeque::new(),
            events: EventQueue::new(event_capacity),
            merges: HashMap::new(),
            record: Vec::with_capacity(64),
            roster: Vec::new(),
            departed: Vec::new(),
            fresh_record: false,
            free: Vec::new(),
            tables: entries::Tables::new(event_capacity),
        }
    }

    // ---- handles and lookup ---------------------------------------------------------

    pub fn serial(&self) -> u64 {
        self.serial
    }

    pub fn handle(&self, i: ValueIndex) -> ValueHandle {
        ValueHandle { context: self.serial, index: i.get() }
    }

    /// The value a handle names: `ForeignHandle` for another context's, `StaleHandle`
    /// for one this table never issued.
    pub fn index(&self, h: ValueHandle) -> Result<ValueIndex, Error> {
        if h.context != self.serial {
            return Err(Error::ForeignHandle(h));
        }
        // Table entries are reached through their table only: their places are reused.
        match self.values.get(h.index as usize) {
            Some(v) if v.entry.is_none() && v.head.is_none() && !v.marks.vacant => {
                Ok(ValueIndex::new(h.index))
            }
            _ => Err(Error::StaleHandle(h)),
        }
    }

    pub fn find(&self, id: &str) -> Option<ValueIndex> {
        self.by_id.get(id).copied()
    }

    /// Places in the table: values, table entries and forgotten entries' free places
    /// (indices run below it; see `is_vacant`).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether place `i` holds nothing (a forgotten entry's, not yet reused).
    pub fn is_vacant(&self, i: ValueIndex) -> bool {
        self.values[i.slot()].marks.vacant
    }

    /// Every value and table entry.
    pub fn iter(&self) -> impl Iterator<Item = &ValueState> {
        self.values.iter().filter(|v| !v.marks.vacant)
    }

    /// The values the host created or learned (no table entries, no collection heads).
    pub fn user_values(&self) -> impl Iterator<Item = &ValueState> {
        self.iter().filter(|v| v.entry.is_none() && v.head.is_none())
    }

    pub fn get(&self, i: ValueIndex) -> &ValueState {
        &self.values[i.slot()]
    }

    /// A value's parts, to change; its marks stay the table's.
    pub fn get_mut(&mut self, i: ValueIndex) -> &mut ValueState {
        &mut self.values[i.slot()]
    }

    pub fn now(&self) -> Millis {
        self.now
    }

    /// The host time of this tick (never goes back).
    pub fn advance_to(&mut self, now: Millis) {
        self.now = self.now.max(now);
    }

    /// Adds a value nobody wrote yet (state `Converged`, nothing pending).
    pub fn insert(
        &mut self,
        id: &str,
        ty: ValueType,
        policy: Policy,
        mode: Mode,
    ) -> Result<ValueIndex, Error> {
        let live = self.values.len() - self.free.len();
        if live >= self.max_values {
            return Err(Error::TooManyValues(live));
        }
        let id: Arc<str> = Arc::from(id);
        let state = ValueState {
            id: id.clone(),
            crdt: Crdt {
                ty,
                policy,
                meta_known: false,
                meta_unwritten: false,
                doc: ValueDoc::new(self.me.get()),
                slots: Vec::new(),
                resolved: None,
                owner: None,
                guard: None,
            },
            view: View {
                mode,
                pending: None,
                acked: None,
                acked_removed: false,
                state: SyncState::Converged,
                shows_local: false,
                write_time_ms: None,
                pending_touch: false,
                touch_arrived: None,
                shown_content: false,
                local_only: false,
            },
            book: Book::default(),
            entry: None,
            head: None,
            marks: Marks {
                dirty: false,
                unconverged: false,
                in_idle_queue: false,
                last_touch_ms: self.now,
                queued_event: None,
                vacant: false,
            },
        };
        let i = match self.free.pop() {
            Some(i) => {
                // The work lists may still name the place: keep its marks, so each
                // list names it once, as its mark says (their visitors skip what they
                // find vacant, and a value with nothing to do).
                let slot = &mut self.values[i.slot()];
                let old = std::mem::replace(&mut slot.marks, state.marks);
                let marks = Marks {
                    dirty: old.dirty,
                    unconverged: old.unconverged,
                    in_idle_queue: old.in_idle_queue,
                    ..slot.marks
                };
                *slot = ValueState { marks, ..state };
                i
            }
            None => {
                self.values.push(state);
                ValueIndex::new(self.values.len() as u32 - 1)
            }
        };
        self.by_id.insert(id, i);
        self.touch(i);
        Ok(i)
    }

    /// Adds a value from a save (see `save`): its document, slots and what reads showed
    /// as saved, a `Created` event queued, rechecked at the next tick (alone, it becomes
    /// LocalOnly; with members, Converged once they hold it).
    pub fn restore(&mut self, saved: SavedValue) -> Result<ValueIndex, Error> {
        let s = saved;
        let i = match crate::collection::parse_entry_id(&s.id) {
            Some((table, key, birth)) => {
                self.note_birth(birth);
                self.restore_entry(&s.id, table, key, birth)?
            }
            None => match s.id.strip_prefix(crate::collection::HEAD_MARK) {
                Some(table) => self.add_head(&s.id, table)?,
                None => self.insert(&s.id, s.ty, s.policy.clone(), s.mode)?,
            },
        };
        let v = &mut self.values[i.slot()];
        (v.crdt.ty, v.crdt.policy, v.view.mode) = (s.ty, s.policy, s.mode);
        let dirty = s.pending.is_some() || s.pending_touch || s.meta_unwritten || s.staged_own.is_some();
        let v = &mut self.values[i.slot()];
        v.crdt.doc = s.doc;
        v.crdt.meta_known = s.meta_known;
        v.crdt.meta_unwritten = s.meta_unwritten;
        if let Some(first) = s.first_owner {
            v.crdt.owner = Some(Box::new(OwnerState::new(first)));
        }
        read_all(v, self.me);
        if let Some(o) = &mut v.crdt.owner {
            o.staged = s.staged_own;
        }
        let owners = guard_owners(&self.tables, &self.values[i.slot()]);
        let v = &mut self.values[i.slot()];
        v.crdt.resolved = resolve_slots(&mut v.crdt, &self.merges, self.me, &self.roster, owners).value;
        v.view.pending = s.pending;
        v.view.acked = s.acked;
        v.view.acked_removed = s.acked_removed;
        v.view.shows_local = s.shows_local;
        v.view.local_only = s.local_only;
        v.view.pending_touch = s.pending_touch;
        v.view.state = s.state;
        v.book = Book { streams: s.streams, announce_seq: s.announce_seq };
        let origin = v.newest_writer(self.me);
        if dirty {
            self.mark_dirty(i);
        }
        self.mark_unconverged(i);
        self.emit(i, ChangeKind::Created, None, false, origin);
        // A load has no members yet: what this replica holds is all there is.
        self.head_resolved(i, false, &mut Metrics::default());
        Ok(i)
    }

    // ---- work lists -------------------------------------------------------------------

    /// The value has something for the next flush (a pending write or its meta record).
    pub fn mark_dirty(&mut self, i: ValueIndex) {
        let m = &mut self.values[i.slot()].marks;
        if !m.dirty {
            m.dirty = true;
            self.dirty.push(i);
        }
    }

    pub fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// The dirty values, in the order they became dirty; none is dirty afterwards. Give
    /// the list back with `recycle_dirty` to keep its allocation.
    pub fn take_dirty(&mut self) -> Vec<ValueIndex> {
        let list = std::mem::take(&mut self.dirty);
        for &i in &list {
            self.values[i.slot()].marks.dirty = false;
        }
        list
    }

    pub fn recycle_dirty(&mut self, mut list: Vec<ValueIndex>) {
        if self.dirty.is_empty() {
            list.clear();
            self.dirty = list;
        }
    }

    /// Its convergence must be checked again.
    pub fn mark_unconverged(&mut self, i: ValueIndex) {
        let m = &mut self.values[i.slot()].marks;
        if !m.unconverged {
            m.unconverged = true;
            self.unconverged.push(i);
        }
    }

    pub fn mark_all_unconverged(&mut self) {
        for k in 0..self.values.len() {
            if !self.values[k].marks.vacant {
                self.mark_unconverged(ValueIndex::new(k as u32));
            }
        }
    }

    pub fn has_unconverged(&self) -> bool {
        !self.unconverged.is_empty()
    }

    /// Visits the unconverged values; those for which `converged` returns true leave the
    /// list. `converged` may queue events and mark other values (they are visited next
    /// time).
    pub fn settle(&mut self, mut converged: impl FnMut(&mut ValueTable, ValueIndex) -> bool) {
        let list = std::mem::take(&mut self.unconverged);
        let mut keep = std::mem::take(&mut self.scratch);
        keep.clear();
        for &i in &list {
            if converged(self, i) {
                self.values[i.slot()].marks.unconverged = false;
            } else {
                keep.push(i);
            }
        }
        keep.append(&mut self.unconverged);
        self.unconverged = keep;
        self.scratch = list;
    }

    /// Reads a word from each part of the state of each of `values` a tick touches (its
    /// cache lines, its streams, its slots, its cold bytes), so that they are in the cache
    /// when used (see `SyncEngine::apply_entries`); returns a sum that means nothing. Two
    /// passes: the states first, a short loop the processor runs many iterations of at
    /// once, so their misses overlap; then what they point to, whose addresses are in
    /// the cache by then (in one pass, each value's heap reads wait on its state's miss).
    pub fn warm<I: Iterator<Item = ValueIndex> + Clone>(&self, values: I) -> u64 {
        let states: u64 = values.clone().map(|i| self.warm_state(i)).sum();
        let heap: u64 = values.map(|i| self.warm_heap(i)).sum();
        std::hint::black_box(states + heap)
    }

    /// A field of each part of value `i`'s state (the compiler orders the fields, so
    /// several of each: the state spans six cache lines).
    fn warm_state(&self, i: ValueIndex) -> u64 {
        let v = &self.values[i.slot()];
        let view = v.view.local_only as u64
            + v.view.shows_local as u64
            + v.view.state as u64
            + v.view.pending.is_some() as u64
            + v.view.acked.is_some() as u64
            + v.view.write_time_ms.is_some() as u64
            + v.view.touch_arrived.is_some() as u64;
        let crdt = v.crdt.meta_known as u64
            + v.crdt.ty as u64
            + v.crdt.resolved.is_some() as u64
            + v.crdt.owner.is_some() as u64
            + v.crdt.guard.is_some() as u64
            + v.crdt.slots.len() as u64;
        let marks =
            v.marks.last_touch_ms.get() + v.marks.queued_event.is_some() as u64 + v.marks.dirty as u64;
        let rest = v.entry.is_some() as u64
            + v.head.is_some() as u64
            + v.id.len() as u64
            + v.book.streams.len() as u64;
        view + crdt + marks + rest + v.crdt.doc.warm_fields()
    }

    /// What value `i`'s state points to: its first stream, every field of its first slot
    /// (a slot spans two cache lines, and integrating a record reads and drops the old
    /// one whole) and its cold bytes or queue.
    fn warm_heap(&self, i: ValueIndex) -> u64 {
        let v = &self.values[i.slot()];
        let streams = v.book.streams.first().map_or(0, |r| r.clock.get() as u64);
        let slots = v.crdt.slots.first().map_or(0, |s| {
            s.clock.get() as u64
                + s.writer.get()
                + s.seen.len() as u64
                + s.value.is_some() as u64
                + matches!(s.touch, Touch::No) as u64
                + s.own.is_some() as u64
        });
        streams + slots + v.crdt.doc.warm_bytes()
    }

    /// The value was used now: it hibernates only after `hibernate_after_ms` more.
    pub fn touch(&mut self, i: ValueIndex) {
        let now = self.now;
        let m = &mut self.values[i.slot()].marks;
        m.last_touch_ms = now;
        if !m.in_idle_queue {
            m.in_idle_queue = true;
            self.idle.push_back((now, i));
        }
    }

    /// When the oldest touched value may hibernate.
    pub fn next_hibernation(&self, after_ms: u64) -> Option<Millis> {
        self.idle.front().map(|&(t, _)| t + after_ms)
    }

    /// Hibernates the documents of values untouched for `after_ms` that have nothing
    /// pending and are converged; others go back in the queue.
    pub fn hibernate_idle(&mut self, after_ms: u64, any_active: bool, metrics: &mut Metrics) {
        let now = self.now;
        // Values last touched long ago: their misses overlap (see `warm`).
        self.warm(self.idle.iter().take_while(|&&(t, _)| t + after_ms <= now).map(|&(_, i)| i));
        while let Some(&(t, i)) = self.idle.front() {
            if t + after_ms > now {
                break;
            }
            self.idle.pop_front();
            let me = self.me.get();
            let v = &mut self.values[i.slot()];
            v.marks.in_idle_queue = false;
            if v.marks.vacant {
                continue;
            }
            if v.marks.last_touch_ms + after_ms > now {
                v.marks.in_idle_queue = true;
                let at = v.marks.last_touch_ms;
                self.idle.push_back((at, i));
            } else if v.view.pending.is_some() || v.marks.unconverged || !v.crdt.doc.hibernate(me) {
                v.marks.in_idle_queue = true;
                self.idle.push_back((now, i));
            } else if v.crdt.doc.take_stale() {
                self.reread(i, any_active, metrics);
            }
        }
    }

    // ---- events -----------------------------------------------------------------------

    /// Queues an event for value `i`: `old` is what reads showed before, the rest is read
    /// from the value now.
    pub fn emit(
        &mut self,
        i: ValueIndex,
        kind: ChangeKind,
        old: Option<Value>,
        is_correction: bool,
        origin: PeerId,
    ) {
        self.emit_owned(i, kind, old, is_correction, origin, false)
    }

    /// `emit`, saying whether the value's owner changed with it.
    fn emit_owned(
        &mut self,
        i: ValueIndex,
        kind: ChangeKind,
        old: Option<Value>,
        is_correction: bool,
        origin: PeerId,
        owner_changed: bool,
    ) {
        if self.values[i.slot()].entry.is_some() {
            // A table entry's changes are its key's (`entries`).
            let said = match kind {
                ChangeKind::Rejected => Some(crate::collection::EntryKind::Rejected),
                ChangeKind::Touched => Some(crate::collection::EntryKind::Touched),
                _ => None,
            };
            self.entry_changed(i, is_correction, origin, said);
            return;
        }
        if let Some(t) = self.values[i.slot()].head {
            // A collection's head says only who owns the collection.
            if kind == ChangeKind::OwnerChanged || kind == ChangeKind::Created || owner_changed {
                self.owner_event(t, kind == ChangeKind::Created);
            }
            return;
        }
        let value = self.handle(i);
        let v = &mut self.values[i.slot()];
        let new = v.visible();
        let is_initial = !v.view.shown_content;
        v.view.shown_content |= new.is_some() || kind == ChangeKind::Removed;
        let ev = ChangeEvent {
            value,
            kind,
            old,
            new,
            state: v.view.state,
            is_correction,
            is_initial,
            owner_changed,
            origin: origin.get(),
            time_ms: self.now.get(),
        };
        self.events.push(ev, &mut v.marks.queued_event);
    }

    /// The next change event, oldest first.
    pub fn pop_event(&mut self) -> Option<ChangeEvent> {
        let n = self.events.head_slot();
        let ev = self.events.pop()?;
        if let Some(v) = self.values.get_mut(ev.value.index as usize) {
            if v.marks.queued_event == n {
                v.marks.queued_event = None;
            }
        }
        Some(ev)
    }

    pub fn events_waiting(&self) -> usize {
        self.events.len()
    }

    /// (events merged into a queued one, events dropped on a full queue).
    pub fn event_counts(&self) -> (u64, u64) {
        (self.events.coalesced, self.events.dropped)
    }

    // ---- local writes -----------------------------------------------------------------

    /// Stages a local write (`None`: a removal) for the next flush. FastLocal reads show
    /// it at once, and its event is queued now.
    pub fn stage(&mut self, i: ValueIndex, write: PendingWrite, metrics: &mut Metrics) {
        let (now, me) = (self.now, self.me);
        let v = &mut self.values[i.slot()];
        let old = match v.view.mode {
            Mode::FastLocal => Some(v.visible()),
            Mode::WaitForSync => None,
        };
        if v.view.pending.is_some() {
            metrics.writes_coalesced += 1;
        }
        let kind = if write.is_some() { ChangeKind::Modified } else { ChangeKind::Removed };
        v.view.pending = Some(write);
        v.view.shown_content = true;
        v.view.state = SyncState::LocalOnly;
        if v.view.mode == Mode::WaitForSync && v.view.write_time_ms.is_none() {
            v.view.write_time_ms = Some(now);
        }
        self.mark_dirty(i);
        if let Some(old) = old {
            self.emit(i, kind, old, false, me);
        }
    }

    /// Stages a touch: the next flush writes a touch record (see `register::Touch`: with
    /// this tick's write if there is one, else our previous record again, weighing
    /// nothing new), so every peer queues a `Touched` event; here the event is queued now.
    /// `Removed` or `NeverWritten` when there is nothing to re-announce.
    pub fn stage_touch(&mut self, i: ValueIndex, metrics: &mut Metrics) -> Result<(), Error> {
        let me = self.me;
        let v = &mut self.values[i.slot()];
        let (holds, removed) = match &v.view.pending {
            Some(write) => (write.is_some(), write.is_none()),
            None => (v.crdt.resolved.is_some(), v.crdt.is_removed()),
        };
        if !holds {
            let id = v.id.to_string();
            return Err(if removed { Error::Removed(id) } else { Error::NeverWritten(id) });
        }
        if v.view.pending_touch {
            metrics.writes_coalesced += 1;
        }
        let shown = v.visible();
        v.view.pending_touch = true;
        v.view.shown_content = true;
        v.view.state = SyncState::LocalOnly;
        self.mark_dirty(i);
        self.emit(i, ChangeKind::Touched, shown, false, me);
        Ok(())
    }

    /// Switches the mode; queues a `Modified` event if that changes what reads return.
    pub fn set_mode(&mut self, i: ValueIndex, mode: Mode) {
        let (now, me) = (self.now, self.me);
        let v = &mut self.values[i.slot()];
        if v.view.mode == mode {
            return;
        }
        let old = v.visible();
        v.view.mode = mode;
        if mode == Mode::WaitForSync && v.view.pending.is_some() && v.view.write_time_ms.is_none() {
            v.view.write_time_ms = Some(now);
        }
        if differs(&old, &v.visible()) {
            self.emit(i, ChangeKind::Modified, old, false, me);
        }
    }

    /// Writes value `i`'s pending write (and its meta record, if it was created here and
    /// its meta is unwritten) into its document. `None` when there was nothing to write.
    pub fn commit_pending(&mut self, i: ValueIndex) -> Option<Commit> {
        let me = self.me;
        // An entry of an owner-only collection is written under the latest epoch this
        // replica owned it (its writes were staged while it owned it); if it never did
        // (a claim of its that did not stand), the write is refused and it is told.
        let entry_own = self.entry_epoch(i).map(|epoch| epoch.map(|epoch| Own { epoch, owner: me }));
        if entry_own == Some(None) {
            let v = &mut self.values[i.slot()];
            if v.view.pending.take().is_some() | std::mem::take(&mut v.view.pending_touch) {
                v.view.shows_local = false;
                let owner = self.entry_owner(i).unwrap_or(me);
                self.entry_changed(i, true, owner, Some(crate::collection::EntryKind::Rejected));
            }
        }
        let v = &mut self.values[i.slot()];
        let mut pending = v.view.pending.take();
        let meta =
            if v.crdt.meta_unwritten && !v.crdt.meta_known { Some(encode_meta(&v.crdt)) } else { None };
        v.crdt.meta_unwritten = false;
        let mut touching = std::mem::take(&mut v.view.pending_touch);
        if let Some(o) = &v.crdt.owner {
            let own = o.current();
            let staged = o.staged.is_some_and(|s| s.epoch > o.walked.own.epoch);
            if own.owner != me && !staged {
                // Not ours to write. Resolution already refused what was staged before
                // the ownership moved; this only makes sure nothing goes out.
                (pending, touching) = (None, false);
            } else if pending.is_some() || touching || staged {
                let touch = if touching { Touch::WithWrite } else { Touch::No };
                let (value, touch) = match (&pending, &v.crdt.resolved) {
                    (Some(write), _) => (write.clone(), touch),
                    (None, Some(now)) => (Some(now.clone()), touch),
                    (None, None) if v.crdt.is_removed() => (None, touch),
                    // Nothing was ever written: the grant or claim carries no value.
                    (None, None) => (None, Touch::Only),
                };
                let seen = seen_by(v, me);
                let rec = (value, touch, own, seen);
                return Some(commit_owned(v, me, &self.slot_key, &mut self.record, meta, pending, rec));
            }
        }
        // The record to write: a write (touching or not), a pure touch (our previous
        // record again, or nothing to weigh if we never wrote), or none (meta only).
        let mine = v.crdt.slots.iter().find(|s| s.writer == me);
        let record = match (&pending, touching, mine) {
            (Some(write), _, _) => {
                let touch = if touching { Touch::WithWrite } else { Touch::No };
                Some((write.clone(), seen_by(v, me), touch))
            }
            (None, true, Some(s)) => {
                let touch = if s.touch == Touch::Only { Touch::Only } else { Touch::Of(s.weighed_clock()) };
                Some((s.value.clone(), s.seen.to_vec(), touch))
            }
            (None, true, None) => Some((None, Vec::new(), Touch::Only)),
            (None, false, _) => None,
        };
        if record.is_none() && meta.is_none() {
            return None;
        }
        let prev_clock = v.book.stream(me).map_or(Clock::ZERO, |s| s.clock);
        let (update, clock) = match record {
            Some((value, seen, touch)) => {
                let own = entry_own.flatten();
                self.record.clear();
                if let Some(own) = own {
                    encode_own(own, &mut self.record);
                }
                encode_touched_record(me, touch, &seen, value.as_ref(), &mut self.record);
                let update = v.crdt.doc.write(me.get(), &self.slot_key, meta.as_deref(), &self.record);
                let clock = prev_clock.after(1 + meta.is_some() as u32);
                let slot = Slot { writer: me, clock, seen: seen.into_boxed_slice(), value, touch, own };
                match v.crdt.slots.binary_search_by_key(&me, |s| s.writer) {
                    Ok(k) => v.crdt.slots[k] = slot,
                    Err(k) => v.crdt.slots.insert(k, slot),
                }
                v.view.shows_local |= pending.is_some();
                (update, clock)
            }
            None => return meta.map(|m| commit_meta(v, me, &m)),
        };
        if meta.is_some() {
            v.crdt.meta_known = true;
        }
        Some(Commit { update, clock, write: pending })
    }

    /// After a commit went into the stream: resolve, queue what changed, check again.
    pub fn committed(
        &mut self,
        i: ValueIndex,
        write: &Option<PendingWrite>,
        any_active: bool,
        metrics: &mut Metrics,
    ) {
        self.reconcile(i, any_active, metrics);
        // The flush took a FastLocal write out of `pending`, which reads were already
        // showing (`stage` queued its event): it must not count as a change.
        let shown = match (self.values[i.slot()].view.mode, write) {
            (Mode::FastLocal, Some(write)) => Some(write.clone()),
            _ => None,
        };
        self.resolve(i, self.me, false, shown, any_active, metrics);
        self.mark_unconverged(i);
        self.touch(i);
    }

    // ---- remote updates ---------------------------------------------------------------

    /// After `origin`'s entry was integrated and booked: resolve, queue what changed,
    /// check again.
    pub fn changed_by(
        &mut self,
        i: ValueIndex,
        origin: PeerId,
        created: bool,
        any_active: bool,
        metrics: &mut Metrics,
    ) {
        self.reconcile(i, any_active, metrics);
        self.resolve(i, origin, created, None, any_active, metrics);
        let v = &self.values[i.slot()];
        let fresh = std::mem::take(&mut self.fresh_record);
        if let (Some(o), true) = (&v.crdt.owner, fresh) {
            // A new record of a writer the value does not follow: kept (it may be the
            // heir of a grant still on its way) but not read.
            if o.walked.decided_by != Some(origin) {
                metrics.unowned_writes += 1;
            }
        }
        if let (Some(owners), true) = (guard_owners(&self.tables, v), fresh) {
            // An owner-only collection's entry written by a peer that did not own the
            // collection in the epoch its record names (one not known yet may still be
            // granted: it waits, uncounted).
            let rec = v.crdt.slots.iter().find(|s| s.writer == origin);
            if rec.is_some_and(|s| register::counts_under(s, &owners.ids) == Some(false)) {
                metrics.unowned_writes += 1;
            }
        }
        self.mark_unconverged(i);
        self.touch(i);
    }

    /// Integrates one entry of `origin`'s stream into value `i`: a delta's update is
    /// shown from its newest record and integrated later where it can be (see storage),
    /// anything else is applied now. `full` re-reads every slot (snapshots, a stream's
    /// first entry for the value, a value whose meta is unknown). False when the update
    /// was refused (counted; a panic in yrs rebuilt the document).
    pub fn integrate(
        &mut self,
        i: ValueIndex,
        entry: Incoming,
        any_active: bool,
        metrics: &mut Metrics,
    ) -> bool {
        let Incoming { origin, stream_clock, update, full } = entry;
        let me = self.me.get();
        let v = &mut self.values[i.slot()];
        let old = v.crdt.slots.iter().position(|s| s.writer == origin);
        let prev_clock = old.map(|k| v.crdt.slots[k].clock);
        let newer_known = old.is_some_and(|k| v.crdt.slots[k].clock >= stream_clock);
        // A delta carries its writer's own slot only, its newest record last: show that
        // and leave the update for later.
        let shown = match (&update, full) {
            (Payload::Scanned(bytes, span), false) => span
                .last_buffer
                .and_then(|(at, len)| decode_record(origin, stream_clock, &bytes[at..at + len]).ok()),
            _ => None,
        };
        match (shown.is_some(), update) {
            (true, Payload::Scanned(bytes, span)) => v.crdt.doc.defer(me, bytes, span),
            (_, update) => {
                if v.crdt.doc.apply(me, update).is_err() {
                    metrics.messages_rejected += 1;
                    self.reconcile(i, any_active, metrics);
                    return false;
                }
            }
        }
        metrics.updates_applied += 1;
        if full {
            if read_all(v, self.me) > 0 {
                metrics.messages_rejected += 1;
            }
        } else if !newer_known {
            let slot = match shown {
                Some(slot) => Some(Ok(slot)),
                None => v
                    .crdt
                    .doc
                    .read_slot(me, &crate::storage::slot_key(origin.get()))
                    .map(|rec| decode_record(origin, stream_clock, &rec)),
            };
            match slot {
                Some(Ok(slot)) => match old {
                    Some(k) => v.crdt.slots[k] = slot,
                    None => {
                        let k = v.crdt.slots.partition_point(|s| s.writer < origin);
                        v.crdt.slots.insert(k, slot);
                    }
                },
                Some(Err(_)) => metrics.messages_rejected += 1,
                None => {}
            }
        }
        // A touch is news once: when its record is newer than what we held of its writer.
        self.fresh_record = false;
        if let Some(s) = v.crdt.slots.iter().find(|s| s.writer == origin) {
            self.fresh_record = prev_clock.is_none_or(|c| s.clock > c);
            if s.touch != Touch::No && self.fresh_record {
                v.view.touch_arrived = NonZeroU64::new(origin.get());
            }
        }
        true
    }

    /// Re-reads value `i` from its document if integrating deferred updates found a slot
    /// record shown ahead of what the document holds (see storage), and resolves again.
    pub fn reconcile(&mut self, i: ValueIndex, any_active: bool, metrics: &mut Metrics) {
        if self.values[i.slot()].crdt.doc.take_stale() {
            self.reread(i, any_active, metrics);
        }
    }

    fn reread(&mut self, i: ValueIndex, any_active: bool, metrics: &mut Metrics) {
        let v = &mut self.values[i.slot()];
        if read_all(v, self.me) > 0 {
            metrics.messages_rejected += 1;
        }
        let origin = v.newest_writer(self.me);
        self.resolve(i, origin, false, None, any_active, metrics);
        self.mark_unconverged(i);
        self.touch(i);
    }

    /// The value's whole state as one yrs update (for a catch-up snapshot).
    pub fn encode_full(&mut self, i: ValueIndex, any_active: bool, metrics: &mut Metrics) -> Vec<u8> {
        let state = self.values[i.slot()].crdt.doc.encode_full(self.me.get());
        self.reconcile(i, any_active, metrics);
        state
    }

    // ---- resolution -------------------------------------------------------------------

    /// Registers the merge function for `Policy::Custom(name)` and re-resolves the values
    /// that use it.
    pub fn register_merge(&mut self, name: &str, f: MergeFn, any_active: bool, metrics: &mut Metrics) {
        self.merges.insert(Arc::from(name), f);
        for k in 0..self.values.len() {
            let i = ValueIndex::new(k as u32);
            if !self.values[k].marks.vacant
                && matches!(&self.values[k].crdt.policy, Policy::Custom(n) if &**n == name)
            {
                self.resolve(i, self.me, false, None, any_active, metrics);
            }
        }
    }

    /// Re-resolves value `i` from its slots and queues the events the change implies.
    /// `origin` is the peer whose update triggered it; `created` marks a value that just
    /// appeared here; `shown` is what reads showed before when the caller knows better
    /// than the value (see `committed`). With no active member the resolved value is
    /// acknowledged at once (nobody else needs to have it).
    pub fn resolve(
        &mut self,
        i: ValueIndex,
        origin: PeerId,
        created: bool,
        shown: Option<Option<Value>>,
        any_active: bool,
        metrics: &mut Metrics,
    ) {
        let me = self.me;
        let v = &mut self.values[i.slot()];
        let old_visible = shown.unwrap_or_else(|| v.visible());
        let owner_before = v.crdt.owner.as_deref().map(|o| o.current().owner);
        // Whether a record of ours counted (an entry anyone could write counts all).
        let mine_before = match v.crdt.guard {
            Some(g) => g.mine,
            None => v.entry.is_some() && v.crdt.slots.iter().any(|s| s.writer == me),
        };
        let owners = guard_owners(&self.tables, &self.values[i.slot()]);
        let v = &mut self.values[i.slot()];
        let r = resolve_slots(&mut v.crdt, &self.merges, me, &self.roster, owners);
        let owner_now = v.crdt.owner.as_deref().map(|o| o.current().owner);
        let owner_changed = owner_before.is_some() && owner_now.is_some() && owner_before != owner_now;
        // Lost the ownership (not by our own transfer, which moved it already): what we
        // wrote as owner is refused everywhere, and a write not yet sent never goes out.
        let mut rejected = false;
        if owner_before == Some(me) && owner_changed {
            let dropped = v.view.pending.take().is_some() | std::mem::take(&mut v.view.pending_touch);
            let wrote = v.crdt.slots.iter().any(|s| s.writer == me && s.own.is_some_and(|o| o.owner == me));
            rejected = dropped || wrote;
            v.view.shows_local = false;
        }
        if mine_before && v.crdt.guard.is_some_and(|g| !g.mine) {
            // Our record of an owner-only collection's entry stopped counting: the
            // collection's owners changed under it (a claim of ours that did not stand).
            rejected = true;
            v.view.shows_local = false;
        }
        if r.fell_back {
            metrics.merge_fallbacks += 1;
        }
        let changed = differs(&v.crdt.resolved, &r.value);
        let mut correction = false;
        if changed && origin != me && r.concurrent > 1 {
            metrics.conflicts += 1;
            let mine_in_frontier = register::frontier(&v.crdt.slots).any(|s| s.writer == me);
            if v.view.shows_local && v.view.mode == Mode::FastLocal && mine_in_frontier {
                correction = true;
                metrics.corrections += 1;
                v.view.state = SyncState::Conflicted;
            }
        }
        if changed && origin != me {
            v.view.shows_local = false;
        }
        v.crdt.resolved = r.value;
        if !any_active {
            v.acknowledge();
        }
        // A touch is news only from a record the value reads: an owner-only value
        // ignores a non-owner's touch (or an heir's claim that did not stand).
        let touched = std::mem::take(&mut v.view.touch_arrived)
            .map(|t| PeerId::new(t.get()))
            .filter(|&t| v.crdt.owner.as_deref().is_none_or(|o| o.walked.decided_by == Some(t)))
            // An owner-only collection's entry: only a record that counts touches it.
            .filter(|&t| {
                owners.is_none_or(|owners| {
                    let rec = v.crdt.slots.iter().find(|s| s.writer == t);
                    rec.is_some_and(|s| register::counts_under(s, &owners.ids) == Some(true))
                })
            });
        let owner = owner_now.or_else(|| self.entry_owner(i)).unwrap_or(origin);
        let v = &mut self.values[i.slot()];
        // An owner-only value changes only by the record it reads: its writer caused it,
        // whoever's message carried it (a catch-up snapshot from any member).
        let origin = v.crdt.owner.as_deref().and_then(|o| o.walked.decided_by).unwrap_or(origin);
        if created {
            self.emit(i, ChangeKind::Created, None, false, origin);
        } else if rejected {
            metrics.corrections += 1;
            self.emit_owned(i, ChangeKind::Rejected, old_visible, true, owner, true);
        } else if differs(&old_visible, &v.visible()) {
            let kind = if v.reads_removed() { ChangeKind::Removed } else { ChangeKind::Modified };
            self.emit_owned(i, kind, old_visible, correction, origin, owner_changed);
        } else if owner_changed {
            self.emit_owned(i, ChangeKind::OwnerChanged, old_visible, false, owner, true);
        } else if let Some(toucher) = touched {
            self.emit(i, ChangeKind::Touched, old_visible, false, toucher);
        } else if self.values[i.slot()].entry.is_some() {
            // Nothing the entry reads changed, but the record that completes an insertion
            // can show its key (`entries::complete`). (Every emit above checks its key.)
            self.entry_changed(i, false, origin, None);
        }
        self.claim_if_heir(i);
        self.head_resolved(i, any_active, metrics);
    }

    // ---- ownership --------------------------------------------------------------------

    /// Makes value `i` (created here, meta not yet written) owner-only, `first` its
    /// first owner.
    pub fn make_owned(&mut self, i: ValueIndex, first: PeerId) {
        self.values[i.slot()].crdt.owner = Some(Box::new(OwnerState::new(first)));
    }

    /// The owner of value `i` as this replica knows it, `None` if anyone may write.
    pub fn owner(&self, i: ValueIndex) -> Option<PeerId> {
        self.values[i.slot()].crdt.owner.as_deref().map(|o| o.current().owner)
    }

    /// `NotOwner` unless this replica may write value `i`.
    pub fn check_writer(&self, i: ValueIndex) -> Result<(), Error> {
        match self.owner(i) {
            Some(owner) if owner != self.me => {
                Err(Error::NotOwner { id: self.values[i.slot()].id.to_string(), owner: owner.get() })
            }
            _ => Ok(()),
        }
    }

    /// Gives value `i` to `to`: the next flush writes the grant, and from now on this
    /// replica may not write it. An `OwnerChanged` event is queued here now; every peer
    /// queues one when the grant arrives. `NotOwner` unless the value is ours;
    /// `NotOwnerOnly` for a value anyone may write.
    pub fn stage_transfer(&mut self, i: ValueIndex, to: PeerId) -> Result<(), Error> {
        let me = self.me;
        let v = &mut self.values[i.slot()];
        let Some(o) = &mut v.crdt.owner else {
            return Err(Error::NotOwnerOnly(v.id.to_string()));
        };
        let own = o.current();
        if own.owner != me {
            return Err(Error::NotOwner { id: v.id.to_string(), owner: own.owner.get() });
        }
        if to == me {
            return Ok(());
        }
        o.staged = Some(Own { epoch: own.epoch + 1, owner: to });
        let shown = v.visible();
        self.mark_dirty(i);
        self.emit_owned(i, ChangeKind::OwnerChanged, shown, false, to, true);
        Ok(())
    }

    /// The session's members changed (`left`: the host removed that peer for good):
    /// walks every owner-only value again (an owner who left may be succeeded by its
    /// heir; one who came back owns again) and claims what this replica is heir to.
    pub fn roster_changed(
        &mut self,
        members: Vec<PeerId>,
        left: Option<PeerId>,
        any_active: bool,
        metrics: &mut Metrics,
    ) {
        self.departed.retain(|p| !members.contains(p));
        if let Some(p) = left {
            if !self.departed.contains(&p) {
                self.departed.push(p);
            }
        }
        self.roster = members;
        for k in 0..self.values.len() {
            if self.values[k].crdt.owner.is_some() {
                let i = ValueIndex::new(k as u32);
                self.resolve(i, self.me, false, None, any_active, metrics);
                self.mark_unconverged(i);
            }
        }
    }

    /// If value `i`'s owner left for good (the host removed it) and this replica is its
    /// heir (the lowest id among the members left and itself), stages a claim: the next
    /// flush writes it and this replica owns the value from now on. Every replica whose
    /// host removed the owner decides alike; should two claim (their rosters differed),
    /// the lowest claimer wins everywhere (`register::owner`).
    fn claim_if_heir(&mut self, i: ValueIndex) {
        let me = self.me;
        let v = &mut self.values[i.slot()];
        let Some(o) = &mut v.crdt.owner else { return };
        let own = o.current();
        let heir = self.roster.iter().copied().chain([me]).min().unwrap_or(me);
        if heir != me
            || own.owner == me
            || !self.departed.contains(&own.owner)
            || self.roster.contains(&own.owner)
        {
            return;
        }
        o.staged = Some(Own { epoch: own.epoch + 1, owner: me });
        if v.head.is_some() {
            // A collection's claim lists its owners with this replica last.
            let owners = head_owners(&v.crdt).unwrap_or_default().claimed(me.get());
            v.view.pending = Some(Some(Value::Bytes(owners.encode())));
        }
        let shown = v.visible();
        self.mark_dirty(i);
        self.emit_owned(i, ChangeKind::OwnerChanged, shown, false, me, true);
    }

    /// Every member holds the value's latest state: reads of WaitForSync values move to
    /// it, the state becomes `Converged`, and the event says so. Returns the write-to-
    /// converged latency of a WaitForSync write this completes.
    pub fn converge(&mut self, i: ValueIndex) -> Option<u64> {
        let (now, me) = (self.now, self.me);
        let v = &mut self.values[i.slot()];
        let old = v.visible();
        v.acknowledge();
        v.view.state = SyncState::Converged;
        let latency = v.view.write_time_ms.take().map(|t| now.since(t));
        let kind = match (differs(&old, &v.visible()), v.view.mode) {
            (true, Mode::WaitForSync) if v.view.acked_removed => ChangeKind::Removed,
            (true, Mode::WaitForSync) => ChangeKind::Modified,
            _ => ChangeKind::StateChanged,
        };
        let origin = v.newest_writer(me);
        self.emit(i, kind, old, false, origin);
        latency
    }

    /// No member is active: what this peer has is all there is.
    pub fn alone(&mut self, i: ValueIndex) {
        let v = &mut self.values[i.slot()];
        v.acknowledge();
        if v.view.state != SyncState::Conflicted {
            v.view.state = SyncState::LocalOnly;
        }
        if v.entry.is_some() {
            // A WaitForSync table's key shows the acknowledged state, which just moved.
            let origin = v.newest_writer(self.me);
            self.entry_changed(i, false, origin, None);
        }
    }

    /// Live yrs documents and updates refused so far, over all values.
    pub fn doc_counts(&self) -> (u64, u64) {
        self.values.iter().fold((0, self.tables.forgotten_rejected), |(live, rejected), v| {
            (live + v.crdt.doc.is_live() as u64, rejected + v.crdt.doc.rejected_updates())
        })
    }
}

/// Re-reads meta and every slot of a value from its document; returns how many slot
/// records were malformed (and skipped).
fn read_all(v: &mut ValueState, me: PeerId) -> usize {
    let (meta, raw) = v.crdt.doc.read(me.get());
    let c = &mut v.crdt;
    if let Some((ty, policy, owner)) = meta.as_deref().and_then(decode_meta) {
        c.ty = ty;
        c.policy = policy;
        c.meta_known = true;
        // The creator's choice stands, whatever this replica declared.
        match (owner, &mut c.owner) {
            (Some(first), Some(o)) => o.first = first,
            (Some(first), None) => c.owner = Some(Box::new(OwnerState::new(first))),
            (None, _) => c.owner = None,
        }
    }
    let mut bad = 0;
    let mut slots = Vec::with_capacity(raw.len());
    for (w, clock, rec) in raw {
        match decode_record(PeerId::new(w), Clock::new(clock), &rec) {
            Ok(s) => slots.push(s),
            Err(_) => bad += 1,
        }
    }
    if !c.meta_known {
        if let Some(ty) = slots.iter().find_map(|s| s.value.as_ref().map(|x| x.value_type())) {
            c.ty = ty;
        }
    }
    c.slots = slots;
    bad
}

/// Bit of the meta record's type byte that marks an owner-only value.
const OWNED_META: u8 = 0x80;

/// The meta record: the type (with `OWNED_META`), an owner-only value's first owner, the
/// policy. (Protocol 3 added the owner.)
fn encode_meta(c: &Crdt) -> Vec<u8> {
    let mut m = vec![c.ty as u8 | if c.owner.is_some() { OWNED_META } else { 0 }];
    if let Some(o) = &c.owner {
        crate::codec::put_varint(&mut m, o.first.get());
    }
    c.policy.encode(&mut m);
    m
}

fn decode_meta(buf: &[u8]) -> Option<(ValueType, Policy, Option<PeerId>)> {
    let (&head, rest) = buf.split_first()?;
    let ty = ValueType::from_u8(head & !OWNED_META)?;
    let mut r = crate::codec::Reader::new(rest);
    let owner = if head & OWNED_META != 0 {
        match r.varint_bits(53).ok()? {
            0 => return None,
            p => Some(PeerId::new(p)),
        }
    } else {
        None
    };
    Some((ty, Policy::decode(r.rest())?, owner))
}

/// Writes only the meta record (a value created without a write, or whose write was
/// refused).
fn commit_meta(v: &mut ValueState, me: PeerId, meta: &[u8]) -> Commit {
    let prev_clock = v.book.stream(me).map_or(Clock::ZERO, |s| s.clock);
    let update = v.crdt.doc.write_meta(me.get(), meta);
    v.crdt.meta_known = true;
    Commit { update, clock: prev_clock.after(1), write: None }
}

/// What a write by `me` has seen: every other writer's clock in this value (its slot, or
/// its meta record for a creator that never wrote).
fn seen_by(v: &ValueState, me: PeerId) -> Vec<(PeerId, Clock)> {
    let mut seen: Vec<(PeerId, Clock)> =
        v.crdt.slots.iter().filter(|s| s.writer != me).map(|s| (s.writer, s.clock)).collect();
    for r in v.book.streams.iter().filter(|r| r.peer != me && r.clock > Clock::ZERO) {
        match seen.iter_mut().find(|(w, _)| *w == r.peer) {
            Some(e) => e.1 = e.1.max(r.clock),
            None => seen.push((r.peer, r.clock)),
        }
    }
    seen
}

/// An owner-only value's record to write: the value, its touch mark, the ownership it
/// is written under (this replica's write, or the grant or claim it staged) and what it
/// had seen (a claim stands only while it has seen the departed owner's latest record).
type OwnedRecord = (Option<Value>, Touch, Own, Vec<(PeerId, Clock)>);

/// Writes an owner-only value's record (see `OwnedRecord`).
fn commit_owned(
    v: &mut ValueState,
    me: PeerId,
    slot_key: &Arc<str>,
    buf: &mut Vec<u8>,
    meta: Option<Vec<u8>>,
    pending: Option<PendingWrite>,
    (value, touch, own, seen): OwnedRecord,
) -> Commit {
    let prev_clock = v.book.stream(me).map_or(Clock::ZERO, |s| s.clock);
    buf.clear();
    encode_own(own, buf);
    encode_touched_record(me, touch, &seen, value.as_ref(), buf);
    let update = v.crdt.doc.write(me.get(), slot_key, meta.as_deref(), buf);
    let clock = prev_clock.after(1 + meta.is_some() as u32);
    let slot = Slot { writer: me, clock, seen: seen.into_boxed_slice(), value, touch, own: Some(own) };
    match v.crdt.slots.binary_search_by_key(&me, |s| s.writer) {
        Ok(k) => v.crdt.slots[k] = slot,
        Err(k) => v.crdt.slots.insert(k, slot),
    }
    v.view.shows_local |= pending.is_some();
    if meta.is_some() {
        v.crdt.meta_known = true;
    }
    Commit { update, clock, write: pending }
}

/// Resolves a value's slots: by its policy, for an owner-only value by the ownership
/// walk (which it records), `roster` saying who is present besides `me`, and for an
/// entry of an owner-only collection by its `owners` (`register::resolve_guarded`).
fn resolve_slots(
    c: &mut Crdt,
    merges: &HashMap<Arc<str>, MergeFn>,
    me: PeerId,
    roster: &[PeerId],
    owners: Option<&crate::collection::Owners>,
) -> register::Resolved {
    c.guard = None;
    let custom = match &c.policy {
        Policy::Custom(name) => merges.get(name),
        _ => None,
    };
    match (&mut c.owner, owners) {
        (None, Some(owners)) => {
            let (r, guard) = register::resolve_guarded(&c.slots, c.ty, &c.policy, custom, owners, me);
            c.guard = Some(guard);
            r
        }
        (None, None) => register::resolve(&c.slots, c.ty, &c.policy, custom),
        (Some(o), _) => {
            o.walked = register::owner(o.first, &c.slots, |p| p == me || roster.contains(&p));
            let written = c.slots.iter().find(|s| s.writer == me).and_then(|s| s.own);
            if o.staged.is_some_and(|s| s.epoch <= o.walked.own.epoch || written == Some(s)) {
                // Written (from now on the walk decides whether the grant or claim
                // stands), or overtaken by a claim that came first.
                o.staged = None;
            }
            let r = register::resolve_owned(&c.slots, c.ty, &o.walked);
            let decided = o.walked.decided_by.and_then(|w| c.slots.iter().find(|s| s.writer == w));
            o.decided_removal = decided.is_some_and(|s| s.value.is_none() && s.touch != Touch::Only);
            r
        }
    }
}

#[cfg(test)]
mod tests {
    //! The table's invariants, without a session.
    use super::*;

    fn table() -> ValueTable {
        ValueTable::new(PeerId::new(1), 7, 10, 64)
    }

    fn add(t: &mut ValueTable, id: &str) -> ValueIndex {
        t.insert(id, ValueType::I64, Policy::LastWriterWins, Mode::FastLocal).unwrap()
    }

    /// Dirty, unconverged and idle each list a value at most once, however often it is
    /// marked; taking the dirty list clears every mark so the next mark lists it again.
    #[test]
    fn each_list_holds_a_value_once() {
        let mut t = table();
        let a = add(&mut t, "a");
        let b = add(&mut t, "b");
        for _ in 0..3 {
            t.mark_dirty(a);
            t.mark_unconverged(a);
            t.touch(a);
        }
        t.mark_dirty(b);
        assert_eq!(t.dirty, vec![a, b]);
        assert_eq!(t.unconverged, vec![a]);
        assert_eq!(t.idle.len(), 2, "a and b, once each (insert touches)");
        let taken = t.take_dirty();
        assert_eq!(taken, vec![a, b]);
        assert!(!t.has_dirty());
        t.recycle_dirty(taken);
        t.mark_dirty(b);
        assert_eq!(t.dirty, vec![b]);
    }

    /// `stage` then `stage` again (a set after a create) lists the value dirty once and
    /// counts the coalesced write.
    #[test]
    fn staging_twice_is_one_dirty_entry() {
        let mut t = table();
        let mut m = Metrics::default();
        let a = add(&mut t, "a");
        t.get_mut(a).crdt.meta_unwritten = true;
        t.mark_dirty(a);
        t.stage(a, Some(Value::I64(1)), &mut m);
        t.stage(a, Some(Value::I64(2)), &mut m);
        assert_eq!(t.take_dirty(), vec![a]);
        assert_eq!(m.writes_coalesced, 1);
        assert_eq!(t.get(a).visible(), Some(Value::I64(2)));
    }

    /// A value that `settle` lets go leaves the list; one kept stays once; one marked
    /// again while being settled (here: the other value) is visited next time.
    #[test]
    fn settle_keeps_flag_and_list_in_step() {
        let mut t = table();
        let a = add(&mut t, "a");
        let b = add(&mut t, "b");
        t.mark_unconverged(a);
        t.mark_unconverged(b);
        t.settle(|t, i| {
            if i == a {
                t.mark_unconverged(b);
                t.mark_unconverged(a);
            }
            i == b
        });
        assert!(t.get(a).is_unconverged());
        assert!(!t.get(b).is_unconverged(), "b settled after a marked it");
        assert_eq!(t.unconverged, vec![a]);
        t.settle(|_, _| true);
        assert!(!t.has_unconverged());
        t.mark_unconverged(b);
        assert_eq!(t.unconverged, vec![b]);
    }

    /// A value's queued event is merged into while unpolled and forgotten once polled.
    #[test]
    fn a_queued_event_is_merged_until_polled() {
        let mut t = table();
        let mut m = Metrics::default();
        let a = add(&mut t, "a");
        t.stage(a, Some(Value::I64(1)), &mut m);
        t.stage(a, Some(Value::I64(2)), &mut m);
        assert_eq!(t.events_waiting(), 1);
        let ev = t.pop_event().unwrap();
        assert_eq!((ev.old, ev.new), (None, Some(Value::I64(2))));
        assert_eq!(t.get(a).marks.queued_event, None);
        t.stage(a, Some(Value::I64(3)), &mut m);
        assert_eq!(t.events_waiting(), 1);
    }

    /// Handles name values of this table only.
    #[test]
    fn handles_are_checked() {
        let mut t = table();
        let a = add(&mut t, "a");
        assert_eq!(t.index(t.handle(a)).unwrap(), a);
        assert!(matches!(t.index(ValueHandle::from_raw(8, 0)), Err(Error::ForeignHandle(_))));
        assert!(matches!(t.index(ValueHandle::from_raw(7, 5)), Err(Error::StaleHandle(_))));
        for k in 1..10 {
            add(&mut t, &format!("v{k}"));
        }
        assert!(matches!(
            t.insert("x", ValueType::I64, Policy::LastWriterWins, Mode::FastLocal),
            Err(Error::TooManyValues(10))
        ));
    }

    /// A value untouched for the idle time hibernates; one touched meanwhile waits.
    #[test]
    fn idle_values_hibernate_after_their_last_touch() {
        let mut t = table();
        let mut m = Metrics::default();
        let a = add(&mut t, "a");
        let b = add(&mut t, "b");
        for i in [a, b] {
            t.stage(i, Some(Value::I64(1)), &mut m);
            let taken = t.take_dirty();
            for &i in &taken {
                let c = t.commit_pending(i).unwrap();
                t.committed(i, &c.write, false, &mut m);
            }
            t.settle(|t, i| {
                t.alone(i);
                true
            });
        }
        assert_eq!(t.doc_counts().0, 2);
        t.advance_to(Millis::new(1500));
        t.touch(b);
        t.advance_to(Millis::new(2000));
        t.hibernate_idle(2000, false, &mut m);
        assert_eq!(t.doc_counts().0, 1, "a hibernated, b touched at 1500");
        assert_eq!(t.next_hibernation(2000), Some(Millis::new(3500)));
        t.advance_to(Millis::new(3500));
        t.hibernate_idle(2000, false, &mut m);
        assert_eq!(t.doc_counts().0, 0);
        assert_eq!(t.get(b).visible(), Some(Value::I64(1)));
    }
}

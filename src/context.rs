//! The context: one replica (one game client) and its public API.
//!
//! Owns the value table, modes, sync states, the change queue and the host-facing calls
//! (`set`, `get`, `poll_change`, membership, metrics). The sync protocol that `tick`
//! runs lives in `sync`. Time only enters through `tick(now_ms)`; nothing here reads a
//! clock, spawns a thread or does I/O, so a whole session replays deterministically.
//!
//! Thread rules: a `Context` is `Send` but not shared; wrap it in a mutex to call it
//! from several threads (the C layer does).

use crate::error::Error;
use crate::events::{ChangeEvent, ChangeKind, EventQueue};
pub use crate::handle::ValueHandle;
use crate::membership::{Member, Membership};
use crate::metrics::{Histogram, Metrics, PeerLag};
use crate::policy::{MergeFn, Policy};
use crate::protocol::Message;
use crate::register::{self, Slot};
use crate::storage::ValueDoc;
use crate::sync::StreamIn;
use crate::value::{Value, ValueType};
pub use crate::view::{Mode, SyncState};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Options of a value at creation. The policy is stored with the value: the first
/// creator's choice holds on every peer.
#[derive(Clone, Debug, Default)]
pub struct ValueOptions {
    pub mode: Mode,
    pub policy: Policy,
}

/// Context limits and timings. All durations are milliseconds of host time.
#[derive(Clone, Debug)]
pub struct Options {
    /// Interval at which the host calls `tick`; used to size timeouts.
    pub tick_interval_ms: u64,
    /// A member silent this long stops blocking convergence until heard again.
    pub peer_timeout_ms: u64,
    /// Longest silence before an ack-only message is sent anyway (keeps members alive).
    pub heartbeat_ms: u64,
    /// Largest message `receive` accepts and `poll_outbound` produces.
    pub max_message_bytes: usize,
    /// Largest string or bytes value.
    pub max_value_bytes: usize,
    /// Longest value id, in bytes of UTF-8.
    pub max_id_bytes: usize,
    /// Change events kept when the host does not poll (see `events`).
    pub event_capacity: usize,
    /// A value untouched this long has its yrs document hibernated.
    pub hibernate_after_ms: u64,
    /// Most values a context holds (remote creations past it are ignored and counted).
    pub max_values: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            tick_interval_ms: 16,
            peer_timeout_ms: 3000,
            heartbeat_ms: 250,
            max_message_bytes: 1 << 20,
            max_value_bytes: 64 << 10,
            max_id_bytes: 256,
            event_capacity: 1 << 16,
            hibernate_after_ms: 2000,
            max_values: 1 << 20,
        }
    }
}

impl Options {
    fn check(&self) -> Result<(), Error> {
        let bad = |name, value: u64, why| Err(Error::BadOption { name, value, why });
        if self.tick_interval_ms == 0 {
            return bad("tick_interval_ms", 0, "must be at least 1");
        }
        if self.peer_timeout_ms <= 2 * self.tick_interval_ms {
            return bad("peer_timeout_ms", self.peer_timeout_ms, "must exceed two ticks");
        }
        if self.max_message_bytes < 2 * self.max_value_bytes + 4 * self.max_id_bytes + 1024 {
            return bad(
                "max_message_bytes",
                self.max_message_bytes as u64,
                "must hold two values of max_value_bytes plus their ids",
            );
        }
        if self.max_id_bytes == 0 || self.event_capacity == 0 {
            return bad("max_id_bytes/event_capacity", 0, "must be at least 1");
        }
        Ok(())
    }
}

/// A message for the host to deliver. `to: None` is a broadcast: the same bytes go to
/// every member (or through a relay); `Some(peer)` is for that member only.
#[derive(Clone, Debug, PartialEq)]
pub struct Outbound {
    pub to: Option<u64>,
    pub bytes: Vec<u8>,
}

/// A local write not yet flushed: `Some(v)` a write, `None` a removal.
pub(crate) type PendingWrite = Option<Value>;

/// Where a value stands on one peer's stream.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StreamRef {
    pub peer: u64,
    /// The value's index in that stream's numbering.
    pub index: u32,
    /// Last seq of that stream that carried this value.
    pub last_seq: u64,
    /// The stream writer's yrs clock in this value that `last_seq` covers.
    pub clock: u32,
}

pub(crate) struct ValueState {
    pub id: Arc<str>,
    pub ty: ValueType,
    pub policy: Policy,
    /// Whether `policy` came from the stored meta record (vs. local options).
    pub meta_known: bool,
    pub mode: Mode,
    pub doc: ValueDoc,
    pub slots: Vec<Slot>,
    pub resolved: Option<Value>,
    /// Last value every current member acknowledged: what WaitForSync reads return.
    pub acked: Option<Value>,
    /// The acknowledged state is a removal.
    pub acked_removed: bool,
    pub pending: Option<PendingWrite>,
    pub state: SyncState,
    pub streams: Vec<StreamRef>,
    pub unconverged: bool,
    pub in_idle_queue: bool,
    pub last_touch_ms: u64,
    /// Time of the first WaitForSync write not yet converged (latency metric).
    pub write_time_ms: Option<u64>,
    pub queued_event: Option<u64>,
    /// The visible value is this peer's own write (a concurrent win is then a correction).
    pub shows_local: bool,
    /// Meta record still to be written with the next flush (locally created value).
    pub meta_unwritten: bool,
    /// Seq of our own message that first carried this value (0 = not yet sent).
    pub announce_seq: u64,
}

impl ValueState {
    pub fn visible(&self) -> Option<Value> {
        match (self.mode, &self.pending) {
            (Mode::FastLocal, Some(p)) => p.clone(),
            (Mode::FastLocal, None) => self.resolved.clone(),
            (Mode::WaitForSync, _) => self.acked.clone(),
        }
    }

    pub fn stream(&self, peer: u64) -> Option<&StreamRef> {
        self.streams.iter().find(|s| s.peer == peer)
    }

    pub fn stream_mut(&mut self, peer: u64, index: u32) -> &mut StreamRef {
        match self.streams.iter().position(|s| s.peer == peer) {
            Some(i) => &mut self.streams[i],
            None => {
                self.streams.push(StreamRef { peer, index, last_seq: 0, clock: 0 });
                self.streams.last_mut().expect("just pushed")
            }
        }
    }

    pub fn is_removed(&self) -> bool {
        self.resolved.is_none() && !self.slots.is_empty()
    }

    /// What WaitForSync reads becomes the current resolved state.
    pub fn acknowledge(&mut self) {
        self.acked = self.resolved.clone();
        self.acked_removed = self.is_removed();
    }

    /// Whether reads report the value as removed.
    pub fn reads_removed(&self) -> bool {
        match (self.mode, &self.pending) {
            (Mode::FastLocal, Some(p)) => p.is_none(),
            (Mode::FastLocal, None) => self.is_removed(),
            (Mode::WaitForSync, _) => self.acked_removed,
        }
    }
}

/// Serial of the next context created in this process (0 is never issued).
static NEXT_CONTEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

/// One replica. See the crate docs for the life of a tick.
pub struct Context {
    pub(crate) id: u64,
    /// This peer's slot key in every value document.
    pub(crate) slot_key: Arc<str>,
    serial: u64,
    pub(crate) opts: Options,
    pub(crate) values: Vec<ValueState>,
    pub(crate) by_id: HashMap<Arc<str>, u32>,
    pub(crate) dirty: Vec<u32>,
    pub(crate) unconverged: Vec<u32>,
    /// Reused by `check_convergence` each tick (no allocation per tick).
    pub(crate) converge_scratch: Vec<u32>,
    pub(crate) converge_cache: Vec<(u64, u64, bool)>,
    pub(crate) idle: VecDeque<(u64, u32)>,
    pub(crate) events: EventQueue,
    pub(crate) outbound: VecDeque<Outbound>,
    pub(crate) inbox: Vec<Message>,
    pub(crate) members: Membership,
    pub(crate) streams: rustc_hash::FxHashMap<u64, StreamIn>,
    /// Last seq of this context's own stream.
    pub(crate) my_seq: u64,
    /// (seq, send time) of recent own messages, for RTT and lag.
    pub(crate) sent_at: VecDeque<(u64, u64)>,
    pub(crate) merges: HashMap<Arc<str>, MergeFn>,
    pub(crate) now: u64,
    pub(crate) metrics: Metrics,
    /// Our indices of the values this context wrote, each once (see `StreamIn::values`).
    pub(crate) own_values: Vec<u32>,
    pub(crate) converge_hist: Histogram,
    pub(crate) last_acks_sent: Vec<(u64, crate::seqwindow::SeqWindow)>,
    pub(crate) last_send_ms: u64,
    pub(crate) next_catchup_id: u64,
}

/// yrs client ids are 53 bits; peer ids double as client ids.
pub(crate) fn check_peer_id(id: u64) -> Result<(), Error> {
    if id == 0 || id >= (1 << 53) {
        return Err(Error::BadPeerId(id));
    }
    Ok(())
}

impl Context {
    /// A new replica with peer id `peer_id` (1..2^53, unique in the session).
    pub fn new(peer_id: u64, opts: Options) -> Result<Context, Error> {
        check_peer_id(peer_id)?;
        opts.check()?;
        Ok(Context {
            id: peer_id,
            slot_key: Arc::from(crate::storage::slot_key(peer_id)),
            serial: NEXT_CONTEXT_SERIAL.fetch_add(1, Ordering::Relaxed),
            events: EventQueue::new(opts.event_capacity),
            opts,
            values: Vec::new(),
            by_id: HashMap::new(),
            dirty: Vec::new(),
            unconverged: Vec::new(),
            converge_scratch: Vec::new(),
            converge_cache: Vec::new(),
            idle: VecDeque::new(),
            outbound: VecDeque::new(),
            inbox: Vec::new(),
            members: Membership::default(),
            streams: Default::default(),
            my_seq: 0,
            sent_at: VecDeque::new(),
            merges: HashMap::new(),
            now: 0,
            metrics: Metrics::default(),
            own_values: Vec::new(),
            converge_hist: Histogram::new(),
            last_acks_sent: Vec::new(),
            last_send_ms: 0,
            next_catchup_id: 1,
        })
    }

    pub fn peer_id(&self) -> u64 {
        self.id
    }

    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// Host time of the last `tick`, in ms.
    pub fn now_ms(&self) -> u64 {
        self.now
    }

    /// This context's serial: unique among the contexts of this process, never reused.
    /// Its value handles carry it.
    pub fn serial(&self) -> u64 {
        self.serial
    }

    pub(crate) fn handle(&self, idx: u32) -> ValueHandle {
        ValueHandle { context: self.serial, index: idx }
    }

    pub(crate) fn index(&self, h: ValueHandle) -> Result<usize, Error> {
        if h.context != self.serial {
            return Err(Error::ForeignHandle(h));
        }
        let idx = h.index as usize;
        if idx >= self.values.len() {
            return Err(Error::StaleHandle(h));
        }
        Ok(idx)
    }

    // ---- membership -------------------------------------------------------------

    /// Adds a member (the transport connected it). It blocks WaitForSync until it has
    /// acknowledged, and is brought up to date with a snapshot at the next tick.
    pub fn add_peer(&mut self, peer: u64) -> Result<(), Error> {
        check_peer_id(peer)?;
        if peer == self.id {
            return Err(Error::SelfPeer(peer));
        }
        if self.members.get(peer).is_none() {
            self.members.members.push(Member::new(peer, self.now, self.my_seq));
            self.mark_all_unconverged();
        }
        Ok(())
    }

    /// Removes a member: it no longer blocks WaitForSync. Its writes stay.
    pub fn remove_peer(&mut self, peer: u64) -> Result<(), Error> {
        let before = self.members.members.len();
        self.members.members.retain(|m| m.id != peer);
        if self.members.members.len() == before {
            return Err(Error::UnknownPeer(peer));
        }
        Ok(())
    }

    /// Current members and whether each was heard within the peer timeout.
    pub fn peers(&self) -> Vec<(u64, bool)> {
        self.members.members.iter().map(|m| (m.id, m.active)).collect()
    }

    pub(crate) fn mark_all_unconverged(&mut self) {
        for i in 0..self.values.len() {
            self.mark_unconverged(i);
        }
    }

    pub(crate) fn mark_unconverged(&mut self, i: usize) {
        let v = &mut self.values[i];
        if !v.unconverged {
            v.unconverged = true;
            self.unconverged.push(i as u32);
        }
    }

    // ---- values -------------------------------------------------------------------

    /// Creates the value `id`, or opens it if it exists (created here or by a peer).
    /// Opening with another type is `WrongType`; an existing value keeps its policy (the
    /// first creator's). Its mode is this context's own view and `opts.mode` is applied,
    /// as `set_mode` would (with the same events): `create` declares how the calling code
    /// reads the value, which is also how a value a peer created gets its mode here.
    pub fn create(&mut self, id: &str, ty: ValueType, opts: ValueOptions) -> Result<ValueHandle, Error> {
        self.check_id(id)?;
        opts.policy.check(ty)?;
        if let Some(&idx) = self.by_id.get(id) {
            let v = &mut self.values[idx as usize];
            if v.ty != ty {
                return Err(Error::WrongType { id: id.into(), expected: ty, actual: v.ty });
            }
            if v.mode != opts.mode {
                let h = self.handle(idx);
                self.set_mode(h, opts.mode)?;
            }
            return Ok(self.handle(idx));
        }
        let idx = self.insert_value(id, ty, opts.policy, opts.mode)?;
        let v = &mut self.values[idx as usize];
        v.meta_unwritten = true;
        v.state = SyncState::LocalOnly;
        self.dirty.push(idx);
        Ok(self.handle(idx))
    }

    /// Opens an existing value by id.
    pub fn open(&self, id: &str) -> Result<ValueHandle, Error> {
        self.by_id.get(id).map(|&i| self.handle(i)).ok_or_else(|| Error::UnknownValue(id.into()))
    }

    fn check_id(&self, id: &str) -> Result<(), Error> {
        if id.is_empty() || id.len() > self.opts.max_id_bytes {
            return Err(Error::BadValueId { len: id.len(), max: self.opts.max_id_bytes });
        }
        Ok(())
    }

    pub(crate) fn insert_value(
        &mut self,
        id: &str,
        ty: ValueType,
        policy: Policy,
        mode: Mode,
    ) -> Result<u32, Error> {
        if self.values.len() >= self.opts.max_values {
            return Err(Error::TooManyValues(self.values.len()));
        }
        let idx = self.values.len() as u32;
        let id: Arc<str> = Arc::from(id);
        self.values.push(ValueState {
            id: id.clone(),
            ty,
            policy,
            meta_known: false,
            mode,
            doc: ValueDoc::new(self.id),
            slots: Vec::new(),
            resolved: None,
            acked: None,
            acked_removed: false,
            pending: None,
            state: SyncState::Converged,
            streams: Vec::new(),
            unconverged: false,
            in_idle_queue: false,
            last_touch_ms: self.now,
            write_time_ms: None,
            queued_event: None,
            shows_local: false,
            meta_unwritten: false,
            announce_seq: 0,
        });
        self.by_id.insert(id, idx);
        self.touch(idx as usize);
        Ok(idx)
    }

    /// Writes a value. FastLocal: reads return it at once and a `Modified` event is
    /// queued. WaitForSync: reads keep the acknowledged value until every member has it.
    /// The CRDT write happens at the next `tick`; several writes in one tick cost one.
    pub fn set(&mut self, h: ValueHandle, value: impl Into<Value>) -> Result<(), Error> {
        let value = value.into();
        let i = self.index(h)?;
        let v = &self.values[i];
        if value.value_type() != v.ty {
            return Err(Error::WrongType {
                id: v.id.to_string(),
                expected: v.ty,
                actual: value.value_type(),
            });
        }
        if let Value::Str(s) = &value {
            self.check_len(s.len())?;
        } else if let Value::Bytes(b) = &value {
            self.check_len(b.len())?;
        }
        self.stage(i, Some(value))
    }

    fn check_len(&self, len: usize) -> Result<(), Error> {
        if len > self.opts.max_value_bytes {
            return Err(Error::TooLarge { what: "value", len, max: self.opts.max_value_bytes });
        }
        Ok(())
    }

    /// Removes a value on every peer (a removal concurrent with a write wins; a later
    /// write revives it).
    pub fn remove(&mut self, h: ValueHandle) -> Result<(), Error> {
        let i = self.index(h)?;
        self.stage(i, None)
    }

    fn stage(&mut self, i: usize, write: PendingWrite) -> Result<(), Error> {
        let now = self.now;
        let me = self.id;
        let v = &mut self.values[i];
        let old = match v.mode {
            Mode::FastLocal => Some(v.visible()),
            Mode::WaitForSync => None,
        };
        match v.pending {
            Some(_) => self.metrics.writes_coalesced += 1,
            None => self.dirty.push(i as u32),
        }
        let kind = if write.is_some() { ChangeKind::Modified } else { ChangeKind::Removed };
        let new = write.clone();
        v.pending = Some(write);
        v.state = SyncState::LocalOnly;
        if v.mode == Mode::WaitForSync && v.write_time_ms.is_none() {
            v.write_time_ms = Some(now);
        }
        if let Some(old) = old {
            let ev = ChangeEvent {
                value: ValueHandle { context: self.serial, index: i as u32 },
                kind,
                old,
                new,
                state: SyncState::LocalOnly,
                is_correction: false,
                origin: me,
                time_ms: now,
            };
            self.events.push(ev, &mut v.queued_event);
        }
        Ok(())
    }

    /// What this context reads for the value now (see `Mode`). A value never written
    /// reads as its type's zero; a removed value is `Err(Removed)`.
    pub fn get(&self, h: ValueHandle) -> Result<Value, Error> {
        let v = &self.values[self.index(h)?];
        match v.visible() {
            Some(x) => Ok(x),
            None if v.reads_removed() => Err(Error::Removed(v.id.to_string())),
            None => Ok(v.ty.zero()),
        }
    }

    /// The value's id.
    pub fn id(&self, h: ValueHandle) -> Result<&str, Error> {
        Ok(&self.values[self.index(h)?].id)
    }

    pub fn value_type(&self, h: ValueHandle) -> Result<ValueType, Error> {
        Ok(self.values[self.index(h)?].ty)
    }

    pub fn state(&self, h: ValueHandle) -> Result<SyncState, Error> {
        Ok(self.values[self.index(h)?].state)
    }

    pub fn mode(&self, h: ValueHandle) -> Result<Mode, Error> {
        Ok(self.values[self.index(h)?].mode)
    }

    /// The policy in force (the creator's, once its meta record has arrived).
    pub fn policy(&self, h: ValueHandle) -> Result<Policy, Error> {
        Ok(self.values[self.index(h)?].policy.clone())
    }

    /// Switches a value's mode; if that changes what reads return, a `Modified` event
    /// is queued.
    pub fn set_mode(&mut self, h: ValueHandle, mode: Mode) -> Result<(), Error> {
        let i = self.index(h)?;
        let v = &mut self.values[i];
        if v.mode == mode {
            return Ok(());
        }
        let old = v.visible();
        v.mode = mode;
        if mode == Mode::WaitForSync && v.pending.is_some() && v.write_time_ms.is_none() {
            v.write_time_ms = Some(self.now);
        }
        let new = v.visible();
        let changed = match (&old, &new) {
            (Some(a), Some(b)) => !a.same_bits(b),
            (a, b) => a.is_some() != b.is_some(),
        };
        if changed {
            self.emit(i, ChangeKind::Modified, old, false, self.id);
        }
        Ok(())
    }

    /// Ids of every value this context holds, removed ones included.
    pub fn value_ids(&self) -> impl Iterator<Item = &str> {
        self.values.iter().map(|v| &*v.id)
    }

    pub fn value_count(&self) -> usize {
        self.values.len()
    }

    /// Registers the merge function for `Policy::Custom(name)`. Every peer must register
    /// the same deterministic function under the same name.
    pub fn register_merge(&mut self, name: &str, f: MergeFn) {
        self.merges.insert(Arc::from(name), f);
        for i in 0..self.values.len() {
            if matches!(&self.values[i].policy, Policy::Custom(n) if &**n == name) {
                self.refresh_resolution(i, self.id, false);
            }
        }
    }

    // ---- events and outbound ---------------------------------------------------------

    /// The next change event, oldest first; `None` when the queue is empty.
    pub fn poll_change(&mut self) -> Option<ChangeEvent> {
        let n = self.events.head();
        let ev = self.events.pop()?;
        if let Some(v) = self.values.get_mut(ev.value.index as usize) {
            if v.queued_event == Some(n) {
                v.queued_event = None;
            }
        }
        Some(ev)
    }

    /// Number of change events waiting.
    pub fn pending_changes(&self) -> usize {
        self.events.len()
    }

    /// The next message for the host to send; `None` when there is none.
    pub fn poll_outbound(&mut self) -> Option<Outbound> {
        self.outbound.pop_front()
    }

    pub(crate) fn emit(
        &mut self,
        i: usize,
        kind: ChangeKind,
        old: Option<Value>,
        is_correction: bool,
        origin: u64,
    ) {
        let h = self.handle(i as u32);
        let v = &mut self.values[i];
        let ev = ChangeEvent {
            value: h,
            kind,
            old,
            new: v.visible(),
            state: v.state,
            is_correction,
            origin,
            time_ms: self.now,
        };
        self.events.push(ev, &mut v.queued_event);
    }

    /// Re-resolves value `i` from its slots and queues the events the change implies.
    /// `origin` is the peer whose update triggered it; `created` marks a value that just
    /// appeared here.
    pub(crate) fn refresh_resolution(&mut self, i: usize, origin: u64, created: bool) {
        self.refresh_resolution_shown(i, origin, created, None)
    }

    /// `refresh_resolution` when the caller knows what reads showed before (`shown`):
    /// the flush has just taken a FastLocal write out of `pending`, which reads were
    /// already showing (its event was queued by `set`), so it must not count as a change.
    pub(crate) fn refresh_resolution_shown(
        &mut self,
        i: usize,
        origin: u64,
        created: bool,
        shown: Option<Option<Value>>,
    ) {
        let me = self.id;
        let v = &mut self.values[i];
        let old_visible = shown.unwrap_or_else(|| v.visible());
        let custom = match &v.policy {
            Policy::Custom(name) => self.merges.get(name),
            _ => None,
        };
        let r = register::resolve(&v.slots, v.ty, &v.policy, custom);
        if r.fell_back {
            self.metrics.merge_fallbacks += 1;
        }
        let changed = match (&v.resolved, &r.value) {
            (Some(a), Some(b)) => !a.same_bits(b),
            (a, b) => a.is_some() != b.is_some(),
        };
        let mut correction = false;
        if changed && origin != me && r.concurrent > 1 {
            self.metrics.conflicts += 1;
            let mine_in_frontier = register::frontier(&v.slots).any(|s| s.writer == me);
            if v.shows_local && v.mode == Mode::FastLocal && mine_in_frontier {
                correction = true;
                self.metrics.corrections += 1;
                v.state = SyncState::Conflicted;
            }
        }
        if changed && origin != me {
            v.shows_local = false;
        }
        v.resolved = r.value;
        if !self.members.any_active() {
            v.acknowledge();
        }
        let new_visible = v.visible();
        let visible_changed = match (&old_visible, &new_visible) {
            (Some(a), Some(b)) => !a.same_bits(b),
            (a, b) => a.is_some() != b.is_some(),
        };
        if created {
            self.emit(i, ChangeKind::Created, None, false, origin);
        } else if visible_changed {
            let kind =
                if self.values[i].reads_removed() { ChangeKind::Removed } else { ChangeKind::Modified };
            self.emit(i, kind, old_visible, correction, origin);
        }
    }

    pub(crate) fn touch(&mut self, i: usize) {
        let v = &mut self.values[i];
        v.last_touch_ms = self.now;
        if !v.in_idle_queue {
            v.in_idle_queue = true;
            self.idle.push_back((self.now, i as u32));
        }
    }

    /// Internal replication bookkeeping of one value, for debugging test failures.
    #[doc(hidden)]
    pub fn debug_value(&self, h: ValueHandle) -> String {
        let Ok(i) = self.index(h) else { return "stale handle".into() };
        let v = &self.values[i];
        let slots: Vec<_> = v.slots.iter().map(|s| (s.writer, s.clock, &s.seen, &s.value)).collect();
        let streams: Vec<_> = v.streams.iter().map(|r| (r.peer, r.last_seq, r.clock)).collect();
        let acks: Vec<_> = self
            .members
            .members
            .iter()
            .map(|m| {
                (
                    m.id,
                    m.active,
                    v.streams.iter().map(|r| (r.peer, m.acks.get(&r.peer).copied())).collect::<Vec<_>>(),
                )
            })
            .collect();
        format!(
            "peer {} value {:?} state {:?} pending {:?} slots {slots:?} streams(peer,last_seq,clock) {streams:?} member acks {acks:?} my_seq {}",
            self.id, v.id, v.state, v.pending, self.my_seq
        )
    }

    /// Every WaitForSync write-to-converged latency sample so far (the distribution
    /// behind `Metrics::converge_ms_p50` / `_p99`), in ms. Borrowed; constant size.
    pub fn converge_histogram(&self) -> &Histogram {
        &self.converge_hist
    }

    /// A snapshot of this context's metrics.
    pub fn metrics(&self) -> Metrics {
        let mut m = self.metrics.clone();
        m.events_coalesced = self.events.coalesced;
        m.events_dropped = self.events.dropped;
        m.values = self.values.len() as u64;
        m.live_docs = self.values.iter().filter(|v| v.doc.is_live()).count() as u64;
        m.rejected_updates = self.values.iter().map(|v| v.doc.rejected_updates()).sum();
        m.converge_ms_p50 = self.converge_hist.quantile(0.5);
        m.converge_ms_p99 = self.converge_hist.quantile(0.99);
        m.peers = self
            .members
            .members
            .iter()
            .map(|p| {
                let ack = p.ack(self.id);
                let oldest = self.sent_at.iter().find(|(s, _)| *s > ack).map(|&(_, t)| t);
                PeerLag {
                    peer: p.id,
                    active: p.active,
                    unacked_messages: self.my_seq.saturating_sub(ack),
                    ack_lag_ms: oldest.map_or(0, |t| self.now.saturating_sub(t)),
                    rtt_ms: p.srtt_ms.map_or(0, |r| r as u64),
                }
            })
            .collect();
        m
    }
}

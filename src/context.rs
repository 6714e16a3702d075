//! The context: one replica (one game client) and its public API.
//!
//! A context is two components and the calls that join them: the value table (values,
//! handles, the work lists and the change queue) and the sync engine (members, streams,
//! catch-up, outbound). `tick` is the orchestration: it runs the engine's steps over the
//! table in order. Time only enters through `tick(now_ms)`; nothing here reads a clock,
//! spawns a thread or does I/O, so a whole session replays deterministically.
//!
//! Thread rules: a `Context` is `Send` but not shared; wrap it in a mutex to call it
//! from several threads (the C layer does).

use crate::collection::{
    member_key, CollectionKind, Key, TableEvent, TableHandle, ENTRY_MARK, HEAD_MARK, SEQ_MARK, SET_MARK,
};
use crate::error::Error;
use crate::events::ChangeEvent;
pub use crate::handle::ValueHandle;
use crate::ids::{Millis, PeerId};
use crate::metrics::{Histogram, Metrics};
pub use crate::options::{Options, Outbound};
use crate::policy::{MergeFn, Policy};
use crate::sync::SyncEngine;
use crate::table::ValueTable;
use crate::value::{Value, ValueType};
pub use crate::view::{Mode, SyncState};
use std::sync::atomic::{AtomicU64, Ordering};

/// Options of a value at creation. The policy is stored with the value: the first
/// creator's choice holds on every peer.
#[derive(Clone, Debug, Default)]
pub struct ValueOptions {
    pub mode: Mode,
    pub policy: Policy,
    /// Never sent and never taken from peers (model_citizen's `SyncLocal` off): the same
    /// API, modes and events, for state only this replica needs (UI, local config).
    /// Always `LocalOnly`. Chosen when the value is first created here: opening it with
    /// the other choice is `LocalOnlyMismatch`, and so is declaring local-only a value
    /// a peer already shared with this replica.
    pub local_only: bool,
    /// Who may write: `None` anyone (the default); `Some(peer)` only the value's owner,
    /// `peer` being its first owner (usually the creator's own id). Every peer refuses
    /// a non-owner's writes on receipt, checked against the transport's sender; here
    /// they fail with `NotOwner`. The owner may `transfer` the value; when the host
    /// removes the owner (it left for good), the lowest id among the members left takes
    /// it over. Like the policy, the first creator's choice holds on every peer.
    pub owner: Option<u64>,
}

/// Options of a table, set or sequence when this context opens it: its entries' policy
/// and mode, and who may write it. Like a value's, an entry's type and policy are its
/// inserter's choice on every peer (a set's members ignore the policy); the mode is this
/// context's own view of every entry.
#[derive(Clone, Debug, Default)]
pub struct TableOptions {
    pub mode: Mode,
    pub policy: Policy,
    /// Who may write: `None` anyone (the default); `Some(peer)` only the collection's
    /// owner, `peer` being its first owner. Every peer refuses a non-owner's inserts,
    /// updates and removals on receipt (checked against the transport's sender, counted
    /// in `unowned_writes`); here they fail with `NotOwner`. The owner may
    /// `transfer_table`; when the host removes the owner (it left for good), the lowest
    /// id among the members left takes it over; `OwnerChanged` table events say so.
    /// Chosen when the collection is first created: the first creator's choice holds on
    /// every peer (entries written by anyone before it was known to be owned stop
    /// showing).
    pub owner: Option<u64>,
}

/// Serial of the next context created in this process (0 is never issued).
static NEXT_CONTEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

/// One replica. See the crate docs for the life of a tick.
pub struct Context {
    me: PeerId,
    pub(crate) table: ValueTable,
    pub(crate) sync: SyncEngine,
    pub(crate) metrics: Metrics,
}

impl Context {
    /// A new replica with peer id `peer_id` (1..2^53, unique in the session).
    pub fn new(peer_id: u64, opts: Options) -> Result<Context, Error> {
        let me = PeerId::checked(peer_id)?;
        opts.check()?;
        let serial = NEXT_CONTEXT_SERIAL.fetch_add(1, Ordering::Relaxed);
        Ok(Context {
            me,
            table: ValueTable::new(me, serial, opts.max_values, opts.event_capacity),
            sync: SyncEngine::new(me, opts),
            metrics: Metrics::default(),
        })
    }

    pub fn peer_id(&self) -> u64 {
        self.me.get()
    }

    pub fn options(&self) -> &Options {
        self.sync.options()
    }

    /// Host time of the last `tick`, in ms.
    pub fn now_ms(&self) -> u64 {
        self.table.now().get()
    }

    /// This context's serial: unique among the contexts of this process, never reused.
    /// Its value handles carry it.
    pub fn serial(&self) -> u64 {
        self.table.serial()
    }

    // ---- the tick ---------------------------------------------------------------------

    /// Advances the context to host time `now_ms`: flushes this tick's writes as one
    /// delta, applies received messages, updates membership and convergence, sends
    /// catch-ups, and hibernates idle values. Cost follows what changed, not how many
    /// values exist.
    pub fn tick(&mut self, now_ms: u64) {
        self.table.advance_to(Millis::new(now_ms));
        let now = self.table.now();
        let Options { peer_timeout_ms, hibernate_after_ms, .. } = *self.options();
        let (table, sync, metrics) = (&mut self.table, &mut self.sync, &mut self.metrics);
        // Acknowledgements first: they tell flush which members hold our previous writes
        // (so increments suffice). Received writes after flush: this tick's local writes
        // were made without having seen them.
        let inbox = sync.take_inbox();
        sync.on_acks(&inbox, now);
        let staged = sync.flush(table, metrics);
        sync.apply(inbox, table, metrics);
        if sync.members.update_liveness(now, peer_timeout_ms) {
            table.mark_all_unconverged();
        }
        sync.check_convergence(table);
        sync.forget_removed(table);
        sync.send_catchups(table, metrics);
        sync.send_stream(staged, now, metrics);
        table.hibernate_idle(hibernate_after_ms, sync.members.any_active(), metrics);
    }

    /// The host time (ms, the clock `tick` takes) at which `tick` next has work to do if
    /// nothing else happens: a heartbeat, a catch-up or retransmission timer, a member
    /// timing out, an idle value to hibernate. `None` when nothing is scheduled. A local
    /// write, a membership change or a received message makes work at once: the deadline
    /// is then the current time (`now_ms`), as it is whenever it has passed.
    ///
    /// A server or relay can sleep until `min(next_deadline_ms, next receipt)` instead of
    /// ticking at a fixed rate; a context ticked only then behaves as one ticked every
    /// frame. Ticking earlier is always harmless.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        let hibernation = self.table.next_hibernation(self.options().hibernate_after_ms);
        let manifests = self.table.tables.forgotten > 0;
        self.sync
            .next_deadline(self.table.now(), self.table.has_dirty(), hibernation, manifests)
            .map(Millis::get)
    }

    // ---- receipt ----------------------------------------------------------------------

    /// Takes a message from the transport. It is decoded and checked completely here;
    /// an `Err` means it was rejected (and counted) and nothing changed. Accepted
    /// messages take effect at the next `tick`.
    ///
    /// The message names its sender itself, and this call believes it: use
    /// [`Context::receive_from`] when the transport knows who sent the bytes.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.sync.accept(bytes, None, &mut self.metrics)
    }

    /// `receive` for a transport that knows which member sent the bytes (a connection
    /// per peer, an authenticated relay): a message that names another sender is
    /// rejected with [`Error::SenderMismatch`] and counted in `messages_forged`, so one
    /// member cannot speak, write or acknowledge in another's name.
    pub fn receive_from(&mut self, from: u64, bytes: &[u8]) -> Result<(), Error> {
        self.sync.accept(bytes, Some(from), &mut self.metrics)
    }

    // ---- membership -------------------------------------------------------------------

    /// Adds a member (the transport connected it). It blocks WaitForSync until it has
    /// acknowledged, and is brought up to date with a snapshot at the next tick.
    pub fn add_peer(&mut self, peer: u64) -> Result<(), Error> {
        let peer = PeerId::checked(peer)?;
        if peer == self.me {
            return Err(Error::SelfPeer(peer.get()));
        }
        if self.sync.add_member(peer, self.table.now()) {
            self.table.mark_all_unconverged();
            self.roster_changed(None);
        }
        Ok(())
    }

    /// Removes a member: it no longer blocks WaitForSync. Its writes stay. Call it when
    /// the peer left for good (a peer merely silent stops blocking by itself after
    /// `peer_timeout_ms`): the owner-only values it owned pass to its heir, the lowest id
    /// among the members left (this context, if that is its own).
    pub fn remove_peer(&mut self, peer: u64) -> Result<(), Error> {
        let id = PeerId::new(peer);
        if !self.sync.members.remove(id) {
            return Err(Error::UnknownPeer(peer));
        }
        self.roster_changed(Some(id));
        Ok(())
    }

    fn roster_changed(&mut self, left: Option<PeerId>) {
        let members = self.sync.members.members.iter().map(|m| m.id).collect();
        let any_active = self.sync.members.any_active();
        self.table.roster_changed(members, left, any_active, &mut self.metrics);
    }

    /// Current members and whether each was heard within the peer timeout.
    pub fn peers(&self) -> Vec<(u64, bool)> {
        self.sync.members.members.iter().map(|m| (m.id.get(), m.active)).collect()
    }

    // ---- values -------------------------------------------------------------------------

    /// Creates the value `id`, or opens it if it exists (created here or by a peer).
    /// Opening with another type is `WrongType`; an existing value keeps its policy (the
    /// first creator's). Its mode is this context's own view and `opts.mode` is applied,
    /// as `set_mode` would (with the same events): `create` declares how the calling code
    /// reads the value, which is also how a value a peer created gets its mode here.
    pub fn create(&mut self, id: &str, ty: ValueType, opts: ValueOptions) -> Result<ValueHandle, Error> {
        self.check_id(id)?;
        opts.policy.check(ty)?;
        if let Some(i) = self.table.find(id) {
            let v = self.table.get(i);
            if v.crdt.ty != ty {
                return Err(Error::WrongType { id: id.into(), expected: ty, actual: v.crdt.ty });
            }
            if v.view.local_only != opts.local_only {
                return Err(Error::LocalOnlyMismatch { id: id.into(), local_only: v.view.local_only });
            }
            self.table.set_mode(i, opts.mode);
            return Ok(self.table.handle(i));
        }
        let owner = opts.owner.map(PeerId::checked).transpose()?;
        let i = self.table.insert(id, ty, opts.policy, opts.mode)?;
        if let Some(owner) = owner {
            self.table.make_owned(i, owner);
        }
        let v = self.table.get_mut(i);
        v.view.local_only = opts.local_only;
        v.crdt.meta_unwritten = true;
        v.view.state = SyncState::LocalOnly;
        self.table.mark_dirty(i);
        Ok(self.table.handle(i))
    }

    /// Opens an existing value by id.
    pub fn open(&self, id: &str) -> Result<ValueHandle, Error> {
        self.table.find(id).map(|i| self.table.handle(i)).ok_or_else(|| Error::UnknownValue(id.into()))
    }

    fn check_id(&self, id: &str) -> Result<(), Error> {
        if id.is_empty() || id.len() > self.options().max_id_bytes {
            return Err(Error::BadValueId { len: id.len(), max: self.options().max_id_bytes });
        }
        if [ENTRY_MARK, SET_MARK, SEQ_MARK, HEAD_MARK].iter().any(|&m| id.starts_with(m)) {
            return Err(Error::ReservedId(id.into()));
        }
        Ok(())
    }

    fn value(&self, h: ValueHandle) -> Result<&crate::table::ValueState, Error> {
        Ok(self.table.get(self.table.index(h)?))
    }

    /// Writes a value. FastLocal: reads return it at once and a `Modified` event is
    /// queued. WaitForSync: reads keep the acknowledged value until every member has it.
    /// The CRDT write happens at the next `tick`; several writes in one tick cost one.
    pub fn set(&mut self, h: ValueHandle, value: impl Into<Value>) -> Result<(), Error> {
        let value = value.into();
        let i = self.table.index(h)?;
        let v = self.table.get(i);
        if value.value_type() != v.crdt.ty {
            return Err(Error::WrongType {
                id: v.id.to_string(),
                expected: v.crdt.ty,
                actual: value.value_type(),
            });
        }
        if let Value::Str(s) = &value {
            self.check_len(s.len())?;
        } else if let Value::Bytes(b) = &value {
            self.check_len(b.len())?;
        }
        self.table.check_writer(i)?;
        self.table.stage(i, Some(value), &mut self.metrics);
        Ok(())
    }

    fn check_len(&self, len: usize) -> Result<(), Error> {
        if len > self.options().max_value_bytes {
            return Err(Error::TooLarge { what: "value", len, max: self.options().max_value_bytes });
        }
        Ok(())
    }

    /// Re-announces the value unchanged: every peer (this one at once, the others when
    /// the touch arrives) queues a `Touched` event, "same value, act again". The touch
    /// travels in this peer's slot like a write, so it is delivered, acknowledged and
    /// converged like one, but it never changes what the value resolves to (it weighs as
    /// this peer's previous write, or nothing); a write in the same tick carries it along
    /// (peers then see `Modified`). A removed value is `Removed`, one never written
    /// `NeverWritten`.
    pub fn touch(&mut self, h: ValueHandle) -> Result<(), Error> {
        let i = self.table.index(h)?;
        self.table.check_writer(i)?;
        self.table.stage_touch(i, &mut self.metrics)
    }

    /// The owner of an owner-only value as this replica knows it (see
    /// `ValueOptions::owner`), `None` for a value anyone may write. Writes here succeed
    /// when this is `None` or this context's own id.
    pub fn owner(&self, h: ValueHandle) -> Result<Option<u64>, Error> {
        Ok(self.table.owner(self.table.index(h)?).map(PeerId::get))
    }

    /// Gives an owner-only value to peer `to` (any valid id, a member or not). From now
    /// on this context may not write it; an `OwnerChanged` event is queued here at once
    /// and on every peer when the transfer arrives, after which `to`'s writes are the
    /// ones every peer reads. `NotOwner` unless this context owns it; `NotOwnerOnly` for
    /// a value anyone may write. Transferring to oneself does nothing.
    pub fn transfer(&mut self, h: ValueHandle, to: u64) -> Result<(), Error> {
        let to = PeerId::checked(to)?;
        let i = self.table.index(h)?;
        self.table.stage_transfer(i, to)
    }

    /// Whether the value is local-only here (see `ValueOptions::local_only`).
    pub fn is_local_only(&self, h: ValueHandle) -> Result<bool, Error> {
        Ok(self.value(h)?.view.local_only)
    }

    /// Removes a value on every peer (a removal concurrent with a write wins; a later
    /// write revives it).
    pub fn remove(&mut self, h: ValueHandle) -> Result<(), Error> {
        let i = self.table.index(h)?;
        self.table.check_writer(i)?;
        self.table.stage(i, None, &mut self.metrics);
        Ok(())
    }

    /// What this context reads for the value now (see `Mode`). A value never written
    /// reads as its type's zero; a removed value is `Err(Removed)`.
    pub fn get(&self, h: ValueHandle) -> Result<Value, Error> {
        let v = self.value(h)?;
        match v.visible() {
            Some(x) => Ok(x),
            None if v.reads_removed() => Err(Error::Removed(v.id.to_string())),
            None => Ok(v.crdt.ty.zero()),
        }
    }

    /// The value's id.
    pub fn id(&self, h: ValueHandle) -> Result<&str, Error> {
        Ok(&self.value(h)?.id)
    }

    pub fn value_type(&self, h: ValueHandle) -> Result<ValueType, Error> {
        Ok(self.value(h)?.crdt.ty)
    }

    pub fn state(&self, h: ValueHandle) -> Result<SyncState, Error> {
        Ok(self.value(h)?.view.state)
    }

    pub fn mode(&self, h: ValueHandle) -> Result<Mode, Error> {
        Ok(self.value(h)?.view.mode)
    }

    /// The policy in force (the creator's, once its meta record has arrived).
    pub fn policy(&self, h: ValueHandle) -> Result<Policy, Error> {
        Ok(self.value(h)?.crdt.policy.clone())
    }

    /// Switches a value's mode; if that changes what reads return, a `Modified` event
    /// is queued.
    pub fn set_mode(&mut self, h: ValueHandle, mode: Mode) -> Result<(), Error> {
        let i = self.table.index(h)?;
        self.table.set_mode(i, mode);
        Ok(())
    }

    /// Ids of every value this context holds, removed ones included.
    pub fn value_ids(&self) -> impl Iterator<Item = &str> {
        self.table.user_values().map(|v| &*v.id)
    }

    /// Values this context holds, removed ones included (table entries are not values).
    pub fn value_count(&self) -> usize {
        self.table.user_values().count()
    }

    /// Whether every value this context holds is in `state` (true when it holds none).
    pub fn all_in_state(&self, state: SyncState) -> bool {
        self.table.iter().all(|v| v.view.state == state)
    }

    /// Registers the merge function for `Policy::Custom(name)`. Every peer must register
    /// the same deterministic function under the same name.
    pub fn register_merge(&mut self, name: &str, f: MergeFn) {
        let any_active = self.sync.members.any_active();
        self.table.register_merge(name, f, any_active, &mut self.metrics);
    }

    // ---- tables -----------------------------------------------------------------------

    /// Opens table `id` (created if new here; a table a peer wrote is the same table),
    /// whose entries hold values of type `ty`. Entries are keyed by string or integer
    /// (`Key`); each is a register with the table's policy (the inserter's, on every
    /// peer) and this context's mode. Table ids and value ids are separate names.
    /// `WrongType` when the table holds entries of another type.
    pub fn open_table(&mut self, id: &str, ty: ValueType, opts: TableOptions) -> Result<TableHandle, Error> {
        self.open_collection(CollectionKind::Table, id, ty, opts)
    }

    fn open_collection(
        &mut self,
        kind: CollectionKind,
        id: &str,
        ty: ValueType,
        opts: TableOptions,
    ) -> Result<TableHandle, Error> {
        self.check_id(id)?;
        let policy = match kind {
            CollectionKind::Set => Policy::LastWriterWins,
            _ => opts.policy,
        };
        policy.check(ty)?;
        let owner = opts.owner.map(PeerId::checked).transpose()?;
        let t = self.table.open_table(&kind.internal_id(id), ty, policy, opts.mode)?;
        if let Some(owner) = owner {
            let any_active = self.sync.members.any_active();
            self.table.make_table_owned(t, owner, any_active, &mut self.metrics)?;
        }
        Ok(self.table.table_handle(t))
    }

    /// The owner of an owner-only table, set or sequence as this replica knows it (see
    /// `TableOptions::owner`), `None` for one anyone may write. Writes here succeed when
    /// this is `None` or this context's own id.
    pub fn table_owner(&self, t: TableHandle) -> Result<Option<u64>, Error> {
        Ok(self.table.table_owner(self.table.table_index(t)?).map(PeerId::get))
    }

    /// Gives an owner-only table, set or sequence to peer `to` (any valid id). From now
    /// on this context may not write it; an `OwnerChanged` table event is queued here at
    /// once and on every peer when the transfer arrives. The entries stay as they are.
    /// `NotOwner` unless this context owns it; `NotOwnerOnly` for one anyone may write.
    /// Transferring to oneself does nothing.
    pub fn transfer_table(&mut self, t: TableHandle, to: u64) -> Result<(), Error> {
        let to = PeerId::checked(to)?;
        let ti = self.table.table_index(t)?;
        self.table.stage_table_transfer(ti, to)
    }

    /// Writes `value` under `key`: inserts the key where it shows no entry, else updates
    /// its entry. FastLocal reads show it at once (`Added` or `Modified` is queued);
    /// WaitForSync reads once every member holds it. Concurrent inserts of one key by
    /// two peers show one of them on every peer (the other is removed by the next write
    /// of the key); a removal concurrent with an update wins, as for values.
    /// `WrongType`, or `TooLarge` when the key makes the entry's id longer than
    /// `Options::max_id_bytes`; `WrongKind` for a set.
    pub fn table_set(
        &mut self,
        t: TableHandle,
        key: impl Into<Key>,
        value: impl Into<Value>,
    ) -> Result<(), Error> {
        let ti = self.table.table_index(t)?;
        self.table.table_of_kind(ti, CollectionKind::Table)?;
        self.write_entry(ti, key.into(), value.into(), false)
    }

    /// model_citizen's `touch(key, value)`: when `key` shows `value`, re-announces it
    /// unchanged, so every peer (this one at once) hears `EntryKind::Touched` ("same
    /// value, act again"); otherwise writes it as `table_set` does (a write is news of its
    /// own). The touch travels like a write and never changes what the entry resolves to.
    pub fn table_touch(
        &mut self,
        t: TableHandle,
        key: impl Into<Key>,
        value: impl Into<Value>,
    ) -> Result<(), Error> {
        let ti = self.table.table_index(t)?;
        self.table.table_of_kind(ti, CollectionKind::Table)?;
        self.write_entry(ti, key.into(), value.into(), true)
    }

    /// A checked write of `value` under `key` into table or set `ti` (`touch`: re-announce
    /// it if the key shows it already).
    fn write_entry(&mut self, ti: u32, key: Key, value: Value, touch: bool) -> Result<(), Error> {
        let table = self.table.table(ti);
        if value.value_type() != table.ty {
            return Err(Error::WrongType {
                id: table.user_id().to_string(),
                expected: table.ty,
                actual: value.value_type(),
            });
        }
        match &value {
            Value::Str(s) => self.check_len(s.len())?,
            Value::Bytes(b) => self.check_len(b.len())?,
            _ => {}
        }
        // The longest entry id this key can take (births' numbers at their widest).
        let id_len = table.id.len()
            + 6
            + 3 * 20
            + match &key {
                Key::Int(_) => 21,
                Key::Str(s) => 1 + s.len(),
            };
        if id_len > self.options().max_id_bytes {
            return Err(Error::TooLarge {
                what: "table id and key",
                len: id_len,
                max: self.options().max_id_bytes,
            });
        }
        match touch {
            true => self.table.table_touch(ti, key, value, &mut self.metrics),
            false => self.table.table_set(ti, key, value, &mut self.metrics),
        }
    }

    /// Removes `key` on every peer; whether it showed an entry here.
    pub fn table_remove(&mut self, t: TableHandle, key: impl Into<Key>) -> Result<bool, Error> {
        let ti = self.table.table_index(t)?;
        self.table.table_of_kind(ti, CollectionKind::Table)?;
        self.table.table_remove(ti, &key.into(), &mut self.metrics)
    }

    /// What `key` shows (see `Mode`), `None` for no entry.
    pub fn table_get(&self, t: TableHandle, key: impl Into<Key>) -> Result<Option<Value>, Error> {
        let ti = self.table.table_index(t)?;
        self.table.table_of_kind(ti, CollectionKind::Table)?;
        Ok(self.table.table_get(ti, &key.into()).cloned())
    }

    /// Keys that show an entry (for a set: its members).
    pub fn table_len(&self, t: TableHandle) -> Result<usize, Error> {
        Ok(self.table.table_len(self.table.table_index(t)?))
    }

    /// Every key that shows an entry, with what it shows, sorted by key (integer keys
    /// first). A copy: the table may change afterwards. For a set, each member is the
    /// value (`set_members` gives them alone).
    pub fn table_entries(&self, t: TableHandle) -> Result<Vec<(Key, Value)>, Error> {
        Ok(self.table.table_entries(self.table.table_index(t)?))
    }

    /// The table's (or set's) id.
    pub fn table_id(&self, t: TableHandle) -> Result<&str, Error> {
        Ok(self.table.table(self.table.table_index(t)?).user_id())
    }

    /// The sync state of a table, set or sequence as a whole: `LocalOnly` while any entry
    /// has a write no peer has (or there are no peers), `Conflicted` or `Syncing` while
    /// any entry is, `Converged` once every member holds every entry's latest state.
    pub fn table_state(&self, t: TableHandle) -> Result<SyncState, Error> {
        Ok(self.table.table_state(self.table.table_index(t)?))
    }

    /// Whether the handle names a set (`open_set`) rather than a table or a sequence.
    pub fn is_set(&self, t: TableHandle) -> Result<bool, Error> {
        Ok(self.collection_kind(t)? == CollectionKind::Set)
    }

    /// What the handle names: a table, a set or a sequence.
    pub fn collection_kind(&self, t: TableHandle) -> Result<CollectionKind, Error> {
        Ok(self.table.table(self.table.table_index(t)?).kind)
    }

    // ---- sets -------------------------------------------------------------------------

    /// Opens set `id` of members of type `ty` (created if new here; a peer's set of that
    /// id is the same set). A set and a table may share a name. Its events are table
    /// events (`Added` with the member as `new`, `Removed` with it as `old`); `table_len`,
    /// `table_entries`, `table_id` and `set_table_mode` work on it.
    pub fn open_set(&mut self, id: &str, ty: ValueType, opts: TableOptions) -> Result<TableHandle, Error> {
        self.open_collection(CollectionKind::Set, id, ty, opts)
    }

    /// Adds `member` on every peer. Add wins: an add concurrent with a removal of the
    /// same member leaves it in the set (each add is an insertion of its own; a removal
    /// removes the insertions it saw). Adding a member already there refreshes it, so it
    /// also wins over a removal made concurrently. `WrongType`, `TooLarge` (a member too
    /// long for an id), `WrongKind` for a table.
    pub fn set_add(&mut self, s: TableHandle, member: impl Into<Value>) -> Result<(), Error> {
        let member = member.into();
        let ti = self.table.table_index(s)?;
        self.table.table_of_kind(ti, CollectionKind::Set)?;
        self.write_entry(ti, member_key(&member), member, false)
    }

    /// Re-announces `member` if it is in the set (every peer hears `Touched`), else adds
    /// it (model_citizen's `touch(item)` on a set).
    pub fn set_touch(&mut self, s: TableHandle, member: impl Into<Value>) -> Result<(), Error> {
        let member = member.into();
        let ti = self.table.table_index(s)?;
        self.table.table_of_kind(ti, CollectionKind::Set)?;
        self.write_entry(ti, member_key(&member), member, true)
    }

    /// Removes `member` on every peer (the adds of it this context has seen); whether it
    /// was in the set here.
    pub fn set_remove(&mut self, s: TableHandle, member: impl Into<Value>) -> Result<bool, Error> {
        let ti = self.table.table_index(s)?;
        self.table.table_of_kind(ti, CollectionKind::Set)?;
        self.table.table_remove(ti, &member_key(&member.into()), &mut self.metrics)
    }

    /// Whether `member` is in the set (see `Mode`).
    pub fn set_contains(&self, s: TableHandle, member: impl Into<Value>) -> Result<bool, Error> {
        let ti = self.table.table_index(s)?;
        self.table.table_of_kind(ti, CollectionKind::Set)?;
        Ok(self.table.table_get(ti, &member_key(&member.into())).is_some())
    }

    /// Every member, in key order (integers and strings sorted; other types by their
    /// encoding). A copy.
    pub fn set_members(&self, s: TableHandle) -> Result<Vec<Value>, Error> {
        let ti = self.table.table_index(s)?;
        self.table.table_of_kind(ti, CollectionKind::Set)?;
        Ok(self.table.table_entries(ti).into_iter().map(|(_, v)| v).collect())
    }

    /// Switches how every entry of the table shows writes (events for keys whose reads
    /// change).
    pub fn set_table_mode(&mut self, t: TableHandle, mode: Mode) -> Result<(), Error> {
        let ti = self.table.table_index(t)?;
        self.table.set_table_mode(ti, mode);
        Ok(())
    }

    /// The next table event (a key `Added`, `Removed` or `Modified`), oldest first;
    /// `None` when none is waiting. A queue of its own beside `poll_change`'s, with the
    /// same capacity and merging.
    pub fn poll_table_change(&mut self) -> Option<TableEvent> {
        self.table.pop_table_event()
    }

    /// Number of table events waiting.
    pub fn pending_table_changes(&self) -> usize {
        self.table.tables.events_waiting()
    }

    // ---- sequences --------------------------------------------------------------------

    /// Opens sequence `id` of items of type `ty` (created if new here; a peer's of that id
    /// is the same sequence; tables, sets and sequences may share a name). Items keep one
    /// order on every peer: concurrent inserts at one place keep both, in an order every
    /// peer agrees on. Its events are table events with `index` set; `table_len`,
    /// `set_table_mode` and `table_id` work on it.
    pub fn open_seq(&mut self, id: &str, ty: ValueType, opts: TableOptions) -> Result<TableHandle, Error> {
        self.open_collection(CollectionKind::Sequence, id, ty, opts)
    }

    fn seq_index(&self, s: TableHandle) -> Result<u32, Error> {
        let ti = self.table.table_index(s)?;
        self.table.table_of_kind(ti, CollectionKind::Sequence)?;
        Ok(ti)
    }

    /// The sequence's positions in order, with the items.
    fn seq_entries(&self, ti: u32) -> Vec<(Key, Value)> {
        self.table.table_entries(ti)
    }

    fn out_of_range(&self, ti: u32, index: usize, len: usize) -> Error {
        Error::IndexOutOfRange { id: self.table.table(ti).user_id().to_string(), index, len }
    }

    /// Inserts `value` at `index` (0 ..= len; len appends) on every peer; the items from
    /// `index` on move one place up. `IndexOutOfRange`, `WrongType`.
    pub fn seq_insert(&mut self, s: TableHandle, index: usize, value: impl Into<Value>) -> Result<(), Error> {
        let ti = self.seq_index(s)?;
        let items = self.seq_entries(ti);
        if index > items.len() {
            return Err(self.out_of_range(ti, index, items.len()));
        }
        let pos = |k: Option<&(Key, Value)>| match k.map(|(k, _)| k) {
            Some(Key::Str(p)) => Some(p.clone()),
            _ => None,
        };
        let (a, b) = (index.checked_sub(1).and_then(|i| pos(items.get(i))), pos(items.get(index)));
        // A position this replica holds an entry under (one it made before a restart) is
        // skipped: every insertion gets a key of its own.
        let me = self.me.get();
        let key = loop {
            let n = self.table.tables.next_position();
            let key = Key::Str(crate::position::between(a.as_deref(), b.as_deref(), me, n));
            if !self.table.has_births(ti, &key) {
                break key;
            }
        };
        self.write_entry(ti, key, value.into(), false)
    }

    /// Appends `value` (an insert at the end).
    pub fn seq_push(&mut self, s: TableHandle, value: impl Into<Value>) -> Result<(), Error> {
        let len = self.table_len(s)?;
        self.seq_insert(s, len, value)
    }

    /// Replaces the item at `index` (a write of its entry, under the sequence's policy:
    /// a concurrent removal of the item wins).
    pub fn seq_set(&mut self, s: TableHandle, index: usize, value: impl Into<Value>) -> Result<(), Error> {
        let ti = self.seq_index(s)?;
        let items = self.seq_entries(ti);
        let Some((key, _)) = items.get(index) else { return Err(self.out_of_range(ti, index, items.len())) };
        let key = key.clone();
        self.write_entry(ti, key, value.into(), false)
    }

    /// Re-announces the item at `index` unchanged: every peer hears `Touched` with its
    /// index. `IndexOutOfRange`.
    pub fn seq_touch(&mut self, s: TableHandle, index: usize) -> Result<(), Error> {
        let ti = self.seq_index(s)?;
        let items = self.seq_entries(ti);
        let Some((key, _)) = items.get(index) else { return Err(self.out_of_range(ti, index, items.len())) };
        let key = key.clone();
        self.table.touch_key(ti, &key, &mut self.metrics)
    }

    /// Removes the item at `index` on every peer and returns it; the items after it move
    /// one place down.
    pub fn seq_remove(&mut self, s: TableHandle, index: usize) -> Result<Value, Error> {
        let ti = self.seq_index(s)?;
        let mut items = self.seq_entries(ti);
        if index >= items.len() {
            return Err(self.out_of_range(ti, index, items.len()));
        }
        let (key, value) = items.swap_remove(index);
        self.table.table_remove(ti, &key, &mut self.metrics)?;
        Ok(value)
    }

    /// Moves the item at `from` to `to` (an index in the sequence without it): a removal
    /// and an insertion of the same value, so a concurrent write of the item is lost.
    pub fn seq_move(&mut self, s: TableHandle, from: usize, to: usize) -> Result<(), Error> {
        let ti = self.seq_index(s)?;
        let len = self.table.table_len(ti);
        if from >= len || to >= len {
            return Err(self.out_of_range(ti, from.max(to), len));
        }
        if from == to {
            return Ok(());
        }
        let value = self.seq_remove(s, from)?;
        self.seq_insert(s, to, value)
    }

    /// The item at `index` (see `Mode`).
    pub fn seq_get(&self, s: TableHandle, index: usize) -> Result<Value, Error> {
        let ti = self.seq_index(s)?;
        let mut items = self.seq_entries(ti);
        if index >= items.len() {
            return Err(self.out_of_range(ti, index, items.len()));
        }
        Ok(items.swap_remove(index).1)
    }

    /// Every item in order. A copy.
    pub fn seq_items(&self, s: TableHandle) -> Result<Vec<Value>, Error> {
        let ti = self.seq_index(s)?;
        Ok(self.seq_entries(ti).into_iter().map(|(_, v)| v).collect())
    }

    // ---- events and outbound -------------------------------------------------------------

    /// The next change event, oldest first; `None` when the queue is empty.
    pub fn poll_change(&mut self) -> Option<ChangeEvent> {
        self.table.pop_event()
    }

    /// Number of change events waiting.
    pub fn pending_changes(&self) -> usize {
        self.table.events_waiting()
    }

    /// The next message for the host to send; `None` when there is none.
    pub fn poll_outbound(&mut self) -> Option<Outbound> {
        self.sync.poll_outbound()
    }

    /// Internal replication bookkeeping of one value, for debugging test failures.
    #[doc(hidden)]
    pub fn debug_value(&self, h: ValueHandle) -> String {
        let Ok(v) = self.value(h) else { return "stale handle".into() };
        let slots: Vec<_> =
            v.crdt.slots.iter().map(|s| (s.writer, s.clock, &s.seen, &s.value, s.own)).collect();
        let streams: Vec<_> = v.book.streams.iter().map(|r| (r.peer, r.last_seq, r.clock)).collect();
        let acks: Vec<_> = self
            .sync
            .members
            .members
            .iter()
            .map(|m| {
                (
                    m.id,
                    m.active,
                    v.book.streams.iter().map(|r| (r.peer, m.acks.get(&r.peer).copied())).collect::<Vec<_>>(),
                )
            })
            .collect();
        format!(
            "peer {} value {:?} state {:?} pending {:?} owner {:?} slots {slots:?} streams(peer,last_seq,clock) {streams:?} member acks {acks:?} my_seq {}",
            self.me, v.id, v.view.state, v.view.pending, v.crdt.owner, self.sync.my_seq()
        )
    }

    /// One line per table entry held (removed ones included): its id, state, slots and
    /// streams, and whether it may be forgotten. For diagnosing tests; the format may
    /// change.
    #[doc(hidden)]
    pub fn debug_table_entries(&self) -> Vec<String> {
        self.table
            .iter()
            .filter(|v| v.entry.is_some() || v.head.is_some())
            .map(|v| {
                let slots: Vec<_> = v
                    .crdt
                    .slots
                    .iter()
                    .map(|s| (s.writer.get(), s.clock.get(), s.value.clone(), s.own.map(|o| (o.epoch, o.owner.get()))))
                    .collect();
                let streams: Vec<_> = v.book.streams.iter().map(|r| (r.peer.get(), r.index, r.last_seq.get())).collect();
                let i = self.table.find(&v.id).expect("held");
                format!(
                    "{:?} state {:?} removed {} acked_removed {} forgettable {} pending {:?} guard {:?} slots(writer,clock,value,own) {slots:?} streams(peer,index,seq) {streams:?}",
                    v.id, v.view.state, v.crdt.is_removed(), v.view.acked_removed, self.table.forgettable(i), v.view.pending, v.crdt.guard
                )
            })
            .collect()
    }

    /// Every WaitForSync write-to-converged latency sample so far (the distribution
    /// behind `Metrics::converge_ms_p50` / `_p99`), in ms. Borrowed; constant size.
    pub fn converge_histogram(&self) -> &Histogram {
        &self.sync.converge_hist
    }

    /// A snapshot of this context's metrics.
    pub fn metrics(&self) -> Metrics {
        let mut m = self.metrics.clone();
        (m.events_coalesced, m.events_dropped) = self.table.event_counts();
        let (values, entries) = self.table.iter().fold((0, 0), |(n, e), v| {
            let entry = v.entry.is_some();
            (n + (!entry && v.head.is_none()) as u64, e + entry as u64)
        });
        m.values = values;
        m.table_entries = entries;
        m.entries_forgotten = self.table.tables.forgotten;
        let (table_coalesced, table_dropped) = (self.table.tables.coalesced, self.table.tables.dropped);
        m.events_coalesced += table_coalesced;
        m.events_dropped += table_dropped;
        (m.live_docs, m.rejected_updates) = self.table.doc_counts();
        m.converge_ms_p50 = self.sync.converge_hist.quantile(0.5);
        m.converge_ms_p99 = self.sync.converge_hist.quantile(0.99);
        m.peers = self.sync.peer_lags(self.table.now());
        m
    }

    /// The table index a handle names (for this crate's tests).
    #[cfg(test)]
    pub(crate) fn index_of(&self, h: ValueHandle) -> crate::ids::ValueIndex {
        self.table.index(h).expect("a handle of this context")
    }
}

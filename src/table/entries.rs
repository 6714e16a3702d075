//! Tables inside the value table: each table's keys and the births (entries) under each
//! key, what every key shows, the element events, and forgetting removed entries.
//!
//! An entry is a value of the table like any other (document, slots, sync book), reached
//! only through its table. A key shows the greatest of its births that is *complete*
//! (holds every record its records had seen: an update never shows before the insertion
//! it updated) and not removed. What the host was last told of each key is kept
//! (`TableState::shown`): every change of an entry is compared with it, so events follow
//! what reads return whatever path changed them (a write, an arrival, a convergence, a
//! mode switch). See `collection` for why entries are births.

use super::{differs, Crdt, EntryLink, ValueState, ValueTable};
use crate::collection::{
    entry_id, head_id, parse_entry_id, Birth, CollectionKind, EntryKind, Key, Owners, TableEvent,
    TableHandle, ENTRY_MARK, HEAD_MARK,
};
use crate::error::Error;
use crate::ids::{PeerId, ValueIndex};
use crate::metrics::Metrics;
use crate::policy::Policy;
use crate::register::Own;
use crate::storage::ValueDoc;
use crate::value::{Value, ValueType};
use crate::view::{Mode, SyncState};
use rustc_hash::FxHashMap as HashMap;
use std::collections::VecDeque;
use std::sync::Arc;

/// One table of this context.
pub(crate) struct TableState {
    pub id: Arc<str>,
    /// Element type, policy and mode: the host's (`open_table`), or defaults until it
    /// opens a table it learned from a peer. Entries keep their creator's type and
    /// policy (their meta record), as values do.
    pub ty: ValueType,
    pub policy: Policy,
    pub mode: Mode,
    /// The host opened it (else it was learned from an arriving entry).
    pub opened: bool,
    /// Table, set (members are keys, each entry's value the member itself, and an add
    /// always makes a new birth: add wins) or sequence (keys are positions, each insert a
    /// new birth), by the id's mark.
    pub kind: CollectionKind,
    /// Every entry of each key (usually one).
    births: HashMap<Key, Vec<ValueIndex>>,
    /// What the host was last told each key shows (keys showing nothing are absent).
    shown: HashMap<Key, Value>,
    /// Absolute queue position of each key's queued event, for merging.
    queued: HashMap<Key, u64>,
    /// An owner-only collection's head (see `collection::head_id`).
    pub head: Option<ValueIndex>,
    /// An owner-only collection's owners, epoch by epoch, as its head says (`None`:
    /// anyone may write it, or its head is not known here yet).
    pub owners: Option<Owners>,
}

impl TableState {
    /// The id the host knows it by (a set's without its mark).
    pub fn user_id(&self) -> &str {
        match self.kind {
            CollectionKind::Table => &self.id,
            _ => &self.id[1..],
        }
    }
}

/// The tables, their event queue, and the counters that outlive forgotten entries.
pub(crate) struct Tables {
    list: Vec<TableState>,
    by_id: HashMap<Arc<str>, u32>,
    events: VecDeque<TableEvent>,
    /// Absolute position of `events[0]`.
    head: u64,
    capacity: usize,
    pub coalesced: u64,
    pub dropped: u64,
    /// `rejected_updates` of documents since forgotten.
    pub forgotten_rejected: u64,
    /// Entries forgotten so far.
    pub forgotten: u64,
    /// Births made here and not yet sent are numbered (seq 0, n) with this counter.
    unsent_births: u64,
    /// Sequence positions made here (their uniqueness suffix).
    positions: u64,
}

impl Tables {
    pub fn new(event_capacity: usize) -> Tables {
        Tables {
            list: Vec::new(),
            by_id: HashMap::default(),
            events: VecDeque::new(),
            head: 0,
            capacity: event_capacity,
            coalesced: 0,
            dropped: 0,
            forgotten_rejected: 0,
            forgotten: 0,
            unsent_births: 0,
            positions: 0,
        }
    }

    /// The next number for a sequence position made here.
    pub fn next_position(&mut self) -> u64 {
        self.positions += 1;
        self.positions
    }

    pub fn events_waiting(&self) -> usize {
        self.events.len()
    }

    fn push(&mut self, table: u32, ev: TableEvent) {
        let t = &mut self.list[table as usize];
        let full = self.events.len() >= self.capacity;
        // An owner change names no key: it is never merged into a key's event.
        let keyed = ev.kind != EntryKind::OwnerChanged;
        if let (Some(&at), true) = (t.queued.get(&ev.key), keyed) {
            if at >= self.head {
                let q = &mut self.events[(at - self.head) as usize];
                // An insertion and its removal between two polls are both said.
                let kind = kind_of(&q.old, &ev.new);
                if let (Some(kind), true) = (kind, full || q.time_ms == ev.time_ms) {
                    // A refusal is said even when later changes of the key follow it; a
                    // touch, when nothing else changed the key.
                    let rejected = q.kind == EntryKind::Rejected || ev.kind == EntryKind::Rejected;
                    let touched = (q.kind == EntryKind::Touched || ev.kind == EntryKind::Touched)
                        && !differs(&q.old, &ev.new);
                    q.kind = match (rejected, touched) {
                        (true, _) => EntryKind::Rejected,
                        (false, true) => EntryKind::Touched,
                        (false, false) => kind,
                    };
                    q.index = ev.index;
                    q.new = ev.new;
                    q.state = ev.state;
                    q.is_correction |= ev.is_correction;
                    q.is_initial &= ev.is_initial;
                    q.origin = ev.origin;
                    q.time_ms = ev.time_ms;
                    self.coalesced += 1;
                    return;
                }
            }
        }
        if full {
            self.dropped += 1;
            return;
        }
        if keyed {
            t.queued.insert(ev.key.clone(), self.head + self.events.len() as u64);
        }
        self.events.push_back(ev);
    }

    fn pop(&mut self) -> Option<TableEvent> {
        let ev = self.events.pop_front()?;
        let at = self.head;
        self.head += 1;
        let t = &mut self.list[ev.table.index as usize];
        if ev.kind != EntryKind::OwnerChanged && t.queued.get(&ev.key) == Some(&at) {
            t.queued.remove(&ev.key);
        }
        if self.events.is_empty() && self.events.capacity() > 4096 {
            self.events.shrink_to(1024);
        }
        Some(ev)
    }
}

/// The event kind for a key that showed `old` and now shows `new` (`None`: no change).
fn kind_of(old: &Option<Value>, new: &Option<Value>) -> Option<EntryKind> {
    match (old, new) {
        (None, None) => None,
        (None, Some(_)) => Some(EntryKind::Added),
        (Some(_), None) => Some(EntryKind::Removed),
        (Some(_), Some(_)) => Some(EntryKind::Modified),
    }
}

/// Whether entry `v` holds every record its records had seen: the insertion before any
/// update of it, so no peer ever shows an update without the entry it updated.
fn complete(v: &ValueState) -> bool {
    let slots = &v.crdt.slots;
    !slots.is_empty()
        && slots
            .iter()
            .all(|s| s.seen.iter().all(|&(p, c)| slots.iter().any(|o| o.writer == p && o.clock >= c)))
}

/// The writer of the record entry `v` reads: the latest write (one no other record has
/// seen) whose value it shows.
fn writer_shown(v: &ValueState) -> Option<PeerId> {
    let shown = v.crdt.resolved.as_ref()?;
    let mut latest = crate::register::frontier(&v.crdt.slots);
    latest.find(|s| s.value.as_ref().is_some_and(|x| x.same_bits(shown))).map(|s| s.writer)
}

impl ValueTable {
    // ---- tables -----------------------------------------------------------------------

    pub fn table_handle(&self, t: u32) -> TableHandle {
        TableHandle { context: self.serial, index: t }
    }

    /// The table a handle names: `ForeignHandle` / `StaleHandle` as for values.
    pub fn table_index(&self, h: TableHandle) -> Result<u32, Error> {
        if h.context != self.serial {
            return Err(Error::ForeignHandle(h.as_value_handle()));
        }
        if h.index as usize >= self.tables.list.len() {
            return Err(Error::StaleHandle(h.as_value_handle()));
        }
        Ok(h.index)
    }

    pub fn table(&self, t: u32) -> &TableState {
        &self.tables.list[t as usize]
    }

    /// Collection `t` if it is of the kind asked for, else `WrongKind`.
    pub fn table_of_kind(&self, t: u32, kind: CollectionKind) -> Result<&TableState, Error> {
        let table = &self.tables.list[t as usize];
        if table.kind != kind {
            return Err(Error::WrongKind {
                id: table.user_id().to_string(),
                is: table.kind.name(),
                wanted: kind.name(),
            });
        }
        Ok(table)
    }

    fn find_or_add_table(&mut self, id: &str) -> u32 {
        if let Some(&t) = self.tables.by_id.get(id) {
            return t;
        }
        let t = self.tables.list.len() as u32;
        let id: Arc<str> = Arc::from(id);
        self.tables.list.push(TableState {
            id: id.clone(),
            ty: ValueType::Bool,
            policy: Policy::LastWriterWins,
            mode: Mode::FastLocal,
            opened: false,
            kind: CollectionKind::of_id(&id),
            births: HashMap::default(),
            shown: HashMap::default(),
            queued: HashMap::default(),
            head: None,
            owners: None,
        });
        self.tables.by_id.insert(id, t);
        t
    }

    /// Opens table `id` with the host's element type, policy and mode (the mode applies to
    /// every entry, as `set_mode` would, with the same events). `WrongType` when the table
    /// was opened with another type, or holds entries of another type.
    pub fn open_table(&mut self, id: &str, ty: ValueType, policy: Policy, mode: Mode) -> Result<u32, Error> {
        if let Some(&t) = self.tables.by_id.get(id) {
            let table = &self.tables.list[t as usize];
            let other = if table.opened {
                Some(table.ty).filter(|&o| o != ty)
            } else {
                let entries = table.births.values().flatten();
                entries
                    .map(|&i| &self.values[i.slot()].crdt)
                    .find(|c| c.meta_known && c.ty != ty)
                    .map(|c| c.ty)
            };
            if let Some(actual) = other {
                return Err(Error::WrongType { id: id.into(), expected: ty, actual });
            }
        }
        let t = self.find_or_add_table(id);
        let table = &mut self.tables.list[t as usize];
        (table.ty, table.policy, table.opened) = (ty, policy, true);
        self.set_table_mode(t, mode);
        Ok(t)
    }

    /// Switches every entry of table `t` to `mode`; events for the keys whose reads change.
    pub fn set_table_mode(&mut self, t: u32, mode: Mode) {
        self.tables.list[t as usize].mode = mode;
        let all: Vec<ValueIndex> = self.tables.list[t as usize].births.values().flatten().copied().collect();
        for i in all {
            self.set_mode(i, mode);
        }
    }

    // ---- entries ----------------------------------------------------------------------

    /// Adds entry `id` (an entry id, see `collection`) learned from a peer, to table and
    /// key; `None` if `id` is not an entry id (then it is a value). `initial`: it arrived
    /// in a catch-up (see `TableEvent::is_initial`).
    pub fn insert_entry(&mut self, id: &str, initial: bool) -> Option<Result<ValueIndex, Error>> {
        // An entry id no writer of ours makes (a malformed one, a sequence key that is
        // not a position) is refused, never taken as a value.
        let refused = || Some(Err(Error::decode(format!("malformed table entry id {id:?}"))));
        if let Some(table) = id.strip_prefix(HEAD_MARK) {
            if table.is_empty() || table.starts_with(HEAD_MARK) || table.starts_with(ENTRY_MARK) {
                return refused();
            }
            return Some(self.add_head(id, table));
        }
        if !id.starts_with(ENTRY_MARK) {
            return None;
        }
        let Some((table, key, birth)) = parse_entry_id(id) else { return refused() };
        let position = |k: &Key| matches!(k, Key::Str(p) if crate::position::is_position(p));
        if PeerId::checked(birth.writer).is_err()
            || (CollectionKind::of_id(table) == CollectionKind::Sequence && !position(&key))
        {
            return refused();
        }
        let t = self.find_or_add_table(table);
        Some(self.add_entry(id, t, key, birth, initial))
    }

    fn add_entry(
        &mut self,
        id: &str,
        t: u32,
        key: Key,
        birth: Birth,
        initial: bool,
    ) -> Result<ValueIndex, Error> {
        let table = &self.tables.list[t as usize];
        let (ty, policy, mode) = (table.ty, table.policy.clone(), table.mode);
        let i = self.insert(id, ty, policy, mode)?;
        self.values[i.slot()].entry =
            Some(Box::new(EntryLink { table: t, key: key.clone(), birth, initial }));
        self.tables.list[t as usize].births.entry(key).or_default().push(i);
        Ok(i)
    }

    /// The entry key `key` of table `t` shows, and what it reads.
    pub fn key_shows(&self, t: u32, key: &Key) -> Option<(ValueIndex, Value)> {
        let births = self.tables.list[t as usize].births.get(key)?;
        births
            .iter()
            .filter_map(|&i| {
                let v = &self.values[i.slot()];
                let shown = if v.view.pending.is_some() || complete(v) { v.visible() } else { None };
                shown.map(|x| (i, x))
            })
            .max_by_key(|&(i, _)| self.values[i.slot()].entry.as_ref().map(|e| e.birth))
    }

    /// Whether key `key` of table `t` has entries here (showing or not).
    pub fn has_births(&self, t: u32, key: &Key) -> bool {
        self.tables.list[t as usize].births.contains_key(key)
    }

    /// The sync state of collection `t` as a whole: `LocalOnly` if any entry is (a write
    /// not yet sent, or no peers), else `Conflicted` or `Syncing` if any entry is, else
    /// `Converged` (also when it holds nothing).
    pub fn table_state(&self, t: u32) -> SyncState {
        let mut worst = SyncState::Converged;
        for &i in self.tables.list[t as usize].births.values().flatten() {
            let rank = |s: SyncState| match s {
                SyncState::Converged => 0,
                SyncState::Syncing => 1,
                SyncState::Conflicted => 2,
                SyncState::LocalOnly => 3,
            };
            let s = self.values[i.slot()].view.state;
            if rank(s) > rank(worst) {
                worst = s;
            }
        }
        worst
    }

    /// What table `t` shows, key by key (sorted).
    pub fn table_entries(&self, t: u32) -> Vec<(Key, Value)> {
        let mut all: Vec<(Key, Value)> =
            self.tables.list[t as usize].shown.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// What key `key` of table `t` shows (as the last event said).
    pub fn table_get(&self, t: u32, key: &Key) -> Option<&Value> {
        self.tables.list[t as usize].shown.get(key)
    }

    /// Keys of table `t` that show an entry.
    pub fn table_len(&self, t: u32) -> usize {
        self.tables.list[t as usize].shown.len()
    }

    /// Writes `value` under `key` in table `t`: into the entry the key shows, or a new
    /// birth when it shows none; any other live entry of the key gets a removal (one
    /// key, one entry).
    pub fn table_set(&mut self, t: u32, key: Key, value: Value, metrics: &mut Metrics) -> Result<(), Error> {
        // A set's add is always a new insertion: it wins over a concurrent removal, which
        // removes only the insertions it saw.
        let fresh = self.tables.list[t as usize].kind != CollectionKind::Table;
        self.check_table_writer(t)?;
        let shows = if fresh { None } else { self.key_shows(t, &key) };
        let target = match shows {
            Some((i, _)) => i,
            None => {
                // Numbered for good when first sent (`fix_birth`); until then seq 0.
                let birth = Birth { seq: 0, n: self.tables.unsent_births, writer: self.me.get() };
                let id = entry_id(&self.tables.list[t as usize].id, &key, birth);
                let i = self.add_entry(&id, t, key.clone(), birth, false)?;
                self.tables.unsent_births += 1;
                let v = &mut self.values[i.slot()];
                v.crdt.meta_unwritten = true;
                v.view.state = SyncState::LocalOnly;
                self.mark_dirty(i);
                i
            }
        };
        self.stage(target, Some(value), metrics);
        self.remove_births(t, &key, Some(target), metrics);
        Ok(())
    }

    /// Re-announces what `key` shows if it shows `value` (every peer hears `Touched`),
    /// else writes `value` under it (`table_set`; a write is news of its own).
    pub fn table_touch(
        &mut self,
        t: u32,
        key: Key,
        value: Value,
        metrics: &mut Metrics,
    ) -> Result<(), Error> {
        self.check_table_writer(t)?;
        match self.key_shows(t, &key) {
            Some((i, shown)) if shown.same_bits(&value) => self.stage_touch(i, metrics),
            _ => self.table_set(t, key, value, metrics),
        }
    }

    /// Re-announces what `key` shows (every peer hears `Touched`). `Removed` when it
    /// shows nothing.
    pub fn touch_key(&mut self, t: u32, key: &Key, metrics: &mut Metrics) -> Result<(), Error> {
        self.check_table_writer(t)?;
        match self.key_shows(t, key) {
            Some((i, _)) => self.stage_touch(i, metrics),
            None => Err(Error::Removed(format!("{} {key}", self.tables.list[t as usize].user_id()))),
        }
    }

    /// Removes `key` from table `t`: a removal into every live entry of it. Whether the
    /// key showed an entry; `NotOwner` for an owner-only collection this replica does not
    /// own.
    pub fn table_remove(&mut self, t: u32, key: &Key, metrics: &mut Metrics) -> Result<bool, Error> {
        self.check_table_writer(t)?;
        let showed = self.tables.list[t as usize].shown.contains_key(key);
        self.remove_births(t, key, None, metrics);
        Ok(showed)
    }

    fn remove_births(&mut self, t: u32, key: &Key, keep: Option<ValueIndex>, metrics: &mut Metrics) {
        let Some(births) = self.tables.list[t as usize].births.get(key) else { return };
        let live: Vec<ValueIndex> = births
            .iter()
            .copied()
            .filter(|&i| Some(i) != keep)
            .filter(|&i| {
                let v = &self.values[i.slot()];
                match &v.view.pending {
                    Some(w) => w.is_some(),
                    None => !v.crdt.is_removed(),
                }
            })
            .collect();
        for i in live {
            self.stage(i, None, metrics);
        }
    }

    /// After any change of entry `i`: an event if its key now shows something else than
    /// the host was last told. `said`: a kind to report even if what the key shows is the
    /// same: `Rejected` (this replica's write of it was refused: an owner-only collection
    /// it did not own) or `Touched` (re-announced; only while the key shows this entry).
    pub(super) fn entry_changed(
        &mut self,
        i: ValueIndex,
        is_correction: bool,
        origin: PeerId,
        said: Option<EntryKind>,
    ) {
        let (t, key, initial) = match &self.values[i.slot()].entry {
            Some(e) => (e.table, e.key.clone(), e.initial),
            None => return,
        };
        let now = self.key_shows(t, &key);
        let table = &mut self.tables.list[t as usize];
        let before = table.shown.get(&key).cloned();
        let new = now.as_ref().map(|(_, x)| x.clone());
        let kind = kind_of(&before, &new).filter(|_| differs(&before, &new));
        let shows_it = now.as_ref().is_some_and(|(w, _)| *w == i);
        let kind = match (kind, said) {
            (_, Some(EntryKind::Rejected)) => EntryKind::Rejected,
            (None, Some(EntryKind::Touched)) if shows_it => EntryKind::Touched,
            (Some(kind), _) => kind,
            (None, _) => return,
        };
        match &new {
            Some(x) => table.shown.insert(key.clone(), x.clone()),
            None => table.shown.remove(&key),
        };
        // A sequence item's index: how many positions shown sort before it.
        let index = (table.kind == CollectionKind::Sequence)
            .then(|| table.shown.keys().filter(|k| **k < key).count() as u64);
        let shows = now.map_or(i, |(w, _)| w);
        if let Some(e) = &mut self.values[i.slot()].entry {
            e.initial = false;
        }
        // A catch-up brings state, not a write: name the writer of what the key shows,
        // whichever member's catch-up carried it.
        let origin =
            if initial { writer_shown(&self.values[shows.slot()]).unwrap_or(origin) } else { origin };
        let ev = TableEvent {
            table: self.table_handle(t),
            kind,
            index,
            key,
            old: before,
            new,
            state: self.values[shows.slot()].view.state,
            is_correction,
            is_initial: initial,
            origin: origin.get(),
            time_ms: self.now.get(),
        };
        self.tables.push(t, ev);
    }

    // ---- owner-only collections --------------------------------------------------------

    /// Adds the head of the collection with internal id `table` (see
    /// `collection::head_id`); its meta record says whether it is owner-only and who
    /// owned it first.
    pub(super) fn add_head(&mut self, id: &str, table: &str) -> Result<ValueIndex, Error> {
        let t = self.find_or_add_table(table);
        let i = self.insert(id, ValueType::Bytes, Policy::LastWriterWins, Mode::FastLocal)?;
        self.values[i.slot()].head = Some(t);
        self.tables.list[t as usize].head = Some(i);
        Ok(i)
    }

    /// Makes collection `t` owner-only, `first` its first owner, unless it has a head
    /// already (the first creator's choice stands, as for values): its head is created
    /// here and written with the next flush.
    pub fn make_table_owned(
        &mut self,
        t: u32,
        first: PeerId,
        any_active: bool,
        metrics: &mut Metrics,
    ) -> Result<(), Error> {
        if self.tables.list[t as usize].head.is_some() {
            return Ok(());
        }
        let table = self.tables.list[t as usize].id.clone();
        let i = self.add_head(&head_id(&table), &table)?;
        self.make_owned(i, first);
        let v = &mut self.values[i.slot()];
        v.crdt.meta_unwritten = true;
        v.view.state = SyncState::LocalOnly;
        self.mark_dirty(i);
        self.head_resolved(i, any_active, metrics);
        Ok(())
    }

    /// After head `i` resolved: if the owners it lists changed, every entry of its
    /// collection is resolved again under them (records of an epoch just granted count
    /// from now on; ours of a claim that did not stand stop counting and we are told).
    pub(super) fn head_resolved(&mut self, i: ValueIndex, any_active: bool, metrics: &mut Metrics) {
        let v = &self.values[i.slot()];
        let Some(t) = v.head else { return };
        let owners = head_owners(&v.crdt);
        let table = &mut self.tables.list[t as usize];
        if table.owners == owners {
            return;
        }
        table.owners = owners;
        let all: Vec<ValueIndex> = table.births.values().flatten().copied().collect();
        for e in all {
            let origin = self.values[e.slot()].newest_writer(self.me);
            self.resolve(e, origin, false, None, any_active, metrics);
            self.mark_unconverged(e);
        }
    }

    /// Queues collection `t`'s `OwnerChanged` event (its owner as this replica knows it).
    pub(super) fn owner_event(&mut self, t: u32, initial: bool) {
        let Some(h) = self.tables.list[t as usize].head else { return };
        let Some(owner) = self.owner(h) else { return };
        let ev = TableEvent {
            table: self.table_handle(t),
            kind: EntryKind::OwnerChanged,
            index: None,
            key: Key::Int(0),
            old: None,
            new: None,
            state: self.values[h.slot()].view.state,
            is_correction: false,
            is_initial: initial,
            origin: owner.get(),
            time_ms: self.now.get(),
        };
        self.tables.push(t, ev);
    }

    /// The owner of collection `t` as this replica knows it; `None` if anyone may write.
    pub fn table_owner(&self, t: u32) -> Option<PeerId> {
        self.owner(self.tables.list[t as usize].head?)
    }

    /// The owner of the collection entry `i` belongs to.
    pub(super) fn entry_owner(&self, i: ValueIndex) -> Option<PeerId> {
        self.table_owner(self.values[i.slot()].entry.as_ref()?.table)
    }

    /// `NotOwner` unless this replica may write collection `t`.
    pub fn check_table_writer(&self, t: u32) -> Result<(), Error> {
        match self.table_owner(t) {
            Some(owner) if owner != self.me => Err(Error::NotOwner {
                id: self.tables.list[t as usize].user_id().to_string(),
                owner: owner.get(),
            }),
            _ => Ok(()),
        }
    }

    /// For an entry of an owner-only collection, the epoch its next record is written
    /// under: the latest in which this replica owned the collection (a claim or grant it
    /// staged and not yet flushed counts), `Some(None)` if it never did. `None` for an
    /// entry anyone may write.
    pub(super) fn entry_epoch(&self, i: ValueIndex) -> Option<Option<u32>> {
        let e = self.values[i.slot()].entry.as_ref()?;
        let table = &self.tables.list[e.table as usize];
        let owners = &table.owners.as_ref()?.ids;
        let me = self.me;
        let staged = table
            .head
            .and_then(|h| self.values[h.slot()].crdt.owner.as_deref().copied())
            .and_then(|o| o.staged.filter(|s| s.owner == me && s.epoch > o.walked.own.epoch))
            .map(|s| s.epoch);
        Some(staged.or_else(|| owners.iter().rposition(|&o| o == me.get()).map(|k| k as u32)))
    }

    /// Gives owner-only collection `t` to `to`: its head's grant lists `to` as the next
    /// owner. `NotOwner` unless this replica owns it; `NotOwnerOnly` if anyone may write
    /// it. An `OwnerChanged` event is queued here now, and on every peer when it arrives.
    pub fn stage_table_transfer(&mut self, t: u32, to: PeerId) -> Result<(), Error> {
        let table = &self.tables.list[t as usize];
        let head = table.head.filter(|&h| self.values[h.slot()].crdt.owner.is_some());
        let Some(h) = head else { return Err(Error::NotOwnerOnly(table.user_id().to_string())) };
        self.check_table_writer(t)?;
        let v = &self.values[h.slot()];
        // A claim staged here and not yet sent already lists this replica.
        let staged = match &v.view.pending {
            Some(Some(Value::Bytes(b))) => Owners::decode(b),
            _ => None,
        };
        let owners = staged.or_else(|| head_owners(&v.crdt)).unwrap_or_default();
        self.stage_transfer(h, to)?;
        if to != self.me {
            let granted = owners.granted(to.get()).encode();
            self.values[h.slot()].view.pending = Some(Some(Value::Bytes(granted)));
        }
        Ok(())
    }

    /// Whether a member's manifest may drop entry `i` (see `sync`): a manifest is
    /// believed about an entry anyone may write, and about an owner-only collection's
    /// only from a peer that owned it (only owners remove its entries, so only they are
    /// believed to have forgotten one for that reason).
    pub fn manifest_may_drop(&self, i: ValueIndex, sender: PeerId) -> bool {
        let Some(e) = &self.values[i.slot()].entry else { return false };
        let table = &self.tables.list[e.table as usize];
        let owned = table.head.is_some() || self.values[i.slot()].crdt.guard.is_some();
        !owned || table.owners.as_ref().is_some_and(|o| o.ids.contains(&sender.get()))
    }

    /// Tests: makes this replica forget who owns collection `t` and believe `owners`
    /// instead (a hostile or modified build), so its writes go out unchecked.
    #[cfg(test)]
    pub(crate) fn forge_owners(&mut self, t: u32, owners: Option<Owners>) {
        let table = &mut self.tables.list[t as usize];
        table.head = None;
        table.owners = owners;
    }

    /// The next table event, oldest first.
    pub fn pop_table_event(&mut self) -> Option<TableEvent> {
        self.tables.pop()
    }

    // ---- forgetting -------------------------------------------------------------------

    /// Whether entry `i`, converged here, may be forgotten: it is removed, holds every
    /// record its records saw (so no record it lacks can arrive and revive it), and
    /// nothing of it waits here.
    pub fn forgettable(&self, i: ValueIndex) -> bool {
        let v = &self.values[i.slot()];
        v.entry.is_some()
            && v.view.pending.is_none()
            && !v.view.pending_touch
            && !v.crdt.meta_unwritten
            && !v.marks.dirty
            && v.crdt.is_removed()
            && v.view.acked_removed
            && complete(v)
            // An owner-only collection's removal that an owner coming back could void
            // is kept (see `Owners::settled`).
            && v.crdt.guard.is_none_or(|g| g.settled)
    }

    /// Forgets entry `i` (see `forgettable`): its place is freed for the next value. The
    /// sync engine has dropped its references to it first.
    pub fn forget(&mut self, i: ValueIndex) {
        let v = &mut self.values[i.slot()];
        self.by_id.remove(&v.id);
        if let Some(e) = v.entry.take() {
            let births = &mut self.tables.list[e.table as usize].births;
            if let Some(list) = births.get_mut(&e.key) {
                list.retain(|&b| b != i);
                if list.is_empty() {
                    births.remove(&e.key);
                }
            }
        }
        self.tables.forgotten_rejected += v.crdt.doc.rejected_updates();
        self.tables.forgotten += 1;
        v.crdt.doc = ValueDoc::forgotten();
        v.crdt.slots = Vec::new();
        v.crdt.resolved = None;
        v.crdt.owner = None;
        v.crdt.meta_unwritten = false;
        v.view.pending = None;
        v.view.pending_touch = false;
        v.view.acked = None;
        v.book = Default::default();
        v.id = Arc::from("");
        // The work lists may still name the place: their marks stay as they are, and
        // whoever visits a vacant place skips it.
        v.marks.vacant = true;
        v.marks.queued_event = None;
        self.free.push(i);
    }

    /// An entry from a save, in its table (learned until the host opens it).
    pub(super) fn restore_entry(
        &mut self,
        id: &str,
        table: &str,
        key: Key,
        birth: Birth,
    ) -> Result<ValueIndex, Error> {
        let t = self.find_or_add_table(table);
        self.add_entry(id, t, key, birth, false)
    }

    /// After a load: an unsent birth's number is taken.
    pub(super) fn note_birth(&mut self, birth: Birth) {
        if birth.writer == self.me.get() && birth.seq == 0 {
            self.tables.unsent_births = self.tables.unsent_births.max(birth.n + 1);
        }
    }

    /// Whether entry `i` is a birth of ours not yet sent.
    pub fn unsent_birth(&self, i: ValueIndex) -> bool {
        self.values[i.slot()]
            .entry
            .as_ref()
            .is_some_and(|e| e.birth.seq == 0 && e.birth.writer == self.me.get())
    }

    /// Numbers an unsent birth of ours by the seq of the delta that first carries it
    /// (`n`: births before it in that delta), so a birth's number says which message of
    /// its writer's stream brought it: a peer that holds the stream past that seq held
    /// the entry, and does not hold it now only if it forgot it (see `sync`).
    pub fn fix_birth(&mut self, i: ValueIndex, seq: u64, n: u64) {
        let v = &mut self.values[i.slot()];
        let Some(e) = &mut v.entry else { return };
        e.birth = Birth { seq, n, writer: e.birth.writer };
        let id: Arc<str> = Arc::from(entry_id(&self.tables.list[e.table as usize].id, &e.key, e.birth));
        self.by_id.remove(&v.id);
        self.by_id.insert(id.clone(), i);
        v.id = id;
    }

    /// Every table entry's birth (for a manifest, see `sync`).
    pub fn births(&self) -> impl Iterator<Item = (ValueIndex, Birth)> + '_ {
        self.values.iter().enumerate().filter_map(|(k, v)| {
            let e = v.entry.as_ref().filter(|_| !v.marks.vacant)?;
            Some((ValueIndex::new(k as u32), e.birth))
        })
    }

    /// Entry `i` was removed where this replica could not see it (a peer that held it
    /// forgot it; see `sync`): it reads removed from now on (its key's event is queued),
    /// to be forgotten here.
    pub fn drop_entry(&mut self, i: ValueIndex, origin: PeerId) {
        let v = &mut self.values[i.slot()];
        v.view.pending = None;
        v.view.pending_touch = false;
        v.crdt.resolved = None;
        v.view.acked = None;
        v.view.acked_removed = true;
        self.entry_changed(i, false, origin, None);
    }
}

/// Epochs beyond this are not listed (a head claiming more is someone's forgery): the
/// records naming them wait for good.
const MAX_EPOCHS: u32 = 1 << 16;

/// The owners an entry is resolved under (`register::resolve_guarded`): its owner-only
/// collection's; none (every record waits) while the collection's head has not arrived
/// but the entry's records say it is owned. `None` for an entry anyone may write, and for
/// values.
pub(super) fn guard_owners<'a>(tables: &'a Tables, v: &ValueState) -> Option<&'a Owners> {
    static UNKNOWN: Owners = Owners { ids: Vec::new(), settled: 0 };
    let e = v.entry.as_ref()?;
    match &tables.list[e.table as usize].owners {
        Some(owners) => Some(owners),
        None if v.crdt.slots.iter().any(|s| s.own.is_some()) => Some(&UNKNOWN),
        None => None,
    }
}

/// A collection's owners from its head: the list the record its walk decided on carries
/// (each grant and claim appends its new owner), or, for a head that lists none (its
/// first owner never transferred it) or a malformed list, what the walk knows: the first
/// and the current owner (0 where unknown: records of those epochs wait), the first
/// alone settled. `None` when the head is not owner-only: anyone may write.
pub(super) fn head_owners(c: &Crdt) -> Option<Owners> {
    let o = c.owner.as_ref()?;
    let Own { epoch, owner } = o.walked.own;
    let listed = match &c.resolved {
        Some(Value::Bytes(b)) => Owners::decode(b),
        _ => None,
    };
    let first = o.first.get();
    match listed {
        Some(l)
            if l.ids.len() == epoch as usize + 1
                && l.ids.last() == Some(&owner.get())
                && l.ids[0] == first =>
        {
            Some(l)
        }
        _ if epoch > MAX_EPOCHS => Some(Owners { ids: vec![first], settled: 1 }),
        _ => {
            let mut ids = vec![0; epoch as usize + 1];
            ids[0] = first;
            ids[epoch as usize] = owner.get();
            Some(Owners { ids, settled: 1 })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collection::{CollectionKind, Key};

    #[test]
    fn entry_ids_from_peers_are_checked() {
        let mut t = ValueTable::new(PeerId::new(1), 7, 100, 64);
        let birth = Birth { writer: 2, seq: 5, n: 0 };
        let seq = CollectionKind::Sequence.internal_id("q");
        // A value id is not an entry; a table key of either kind is.
        assert!(t.insert_entry("score", false).is_none());
        assert!(matches!(t.insert_entry(&entry_id("tbl", &Key::Int(3), birth), false), Some(Ok(_))));
        let good = crate::position::between(None, None, 2, 1);
        assert!(matches!(t.insert_entry(&entry_id(&seq, &Key::Str(good), birth), false), Some(Ok(_))));
        // Malformed ids, a sequence key that is not a position, a writer that is no peer:
        // refused, never taken as values.
        for bad in [
            "\u{1}garbage".to_string(),
            entry_id(&seq, &Key::Str("ab~".into()), birth),
            entry_id(&seq, &Key::Str("A0".into()), birth),
            entry_id(&seq, &Key::Int(4), birth),
            entry_id("tbl", &Key::Int(3), Birth { writer: 0, seq: 1, n: 0 }),
        ] {
            assert!(matches!(t.insert_entry(&bad, false), Some(Err(Error::Decode(_)))), "{bad:?}");
        }
        assert_eq!(t.iter().count(), 2);
    }
}

//! Tables: what a table is to its users (keys, handles, element events) and how its
//! entries are named on the wire.
//!
//! A table is a local object (no document of its own): each *entry* is a register like a
//! value, with its own yrs document, slots, policy and mode, and a wire id that says which
//! table it belongs to, under which key, and its *birth*: the peer that inserted it and a
//! number unique to that insertion (the inserter's stream seq at the time, then a count
//! within it). Inserting a key that shows no entry makes a new birth; updating writes the
//! birth the key shows; removing writes a removal into every birth the key shows.
//!
//! Why births: a removed entry must be forgotten once every member holds its removal
//! (memory stays flat under churn), and an id that names one insertion only is never
//! written again after it was forgotten, so no peer that still holds it can confuse a
//! later insertion of the same key with it (a reused id would restart its writers' yrs
//! clocks in a document a slower peer still holds). Concurrent insertions of one key are
//! two births: every peer shows the same one (the greatest birth), and the next update or
//! removal of the key by anyone who sees both writes a removal into the other.
//!
//! Definitions and the id codec only; the value table owns the entries and their events.

use crate::handle::ValueHandle;
use crate::value::Value;
use crate::view::SyncState;
use std::fmt;

/// A table key: a string or a 64-bit integer. The two kinds never equal each other
/// (`Str("1")` and `Int(1)` are different keys).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    Int(i64),
    Str(String),
}

impl From<&str> for Key {
    fn from(s: &str) -> Key {
        Key::Str(s.to_string())
    }
}

impl From<String> for Key {
    fn from(s: String) -> Key {
        Key::Str(s)
    }
}

impl From<i64> for Key {
    fn from(n: i64) -> Key {
        Key::Int(n)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Int(n) => write!(f, "{n}"),
            Key::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// A table of one context: cheap to copy, checked on every use (like [`ValueHandle`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TableHandle {
    pub(crate) context: u64,
    pub(crate) index: u32,
}

impl TableHandle {
    /// The issuing context's serial and the table's index (for layers that carry
    /// handles across a boundary, such as the C API).
    pub fn to_raw(self) -> (u64, u32) {
        (self.context, self.index)
    }

    /// A handle from raw parts; one the context did not issue is `Error::StaleHandle`.
    pub fn from_raw(context: u64, index: u32) -> TableHandle {
        TableHandle { context, index }
    }

    /// The same bits as a value handle, for errors that name a handle.
    pub(crate) fn as_value_handle(self) -> ValueHandle {
        ValueHandle { context: self.context, index: self.index }
    }
}

/// What happened to one key of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// The key shows an entry where it showed none.
    Added,
    /// The key shows no entry any more.
    Removed,
    /// The key's entry shows another value.
    Modified,
    /// The key's entry was re-announced unchanged (`table_touch`, `set_touch`,
    /// `seq_touch`): "same value, act again". `old` and `new` are both what it shows.
    Touched,
    /// This context's write of the key was refused everywhere: it wrote an owner-only
    /// collection it turned out not to own (another peer's claim won, or the ownership
    /// moved before the write went out). `old` is what the key showed, `new` what it
    /// shows now; `origin` is the owner.
    Rejected,
    /// The collection's owner changed (a transfer, or its owner left and the heir took
    /// over): `origin` is the new owner. The event names no key (`key` is `Int(0)`).
    OwnerChanged,
}

/// A change of one table key, polled with `Context::poll_table_change`. Changes of one
/// key between polls merge into one event (the oldest `old`, the newest `new`).
#[derive(Clone, Debug, PartialEq)]
pub struct TableEvent {
    pub table: TableHandle,
    pub kind: EntryKind,
    pub key: Key,
    /// What the key showed before (`None`: no entry).
    pub old: Option<Value>,
    /// What it shows now (`None`: no entry).
    pub new: Option<Value>,
    /// Sync state of the entry the key shows (or showed, for a removal).
    pub state: SyncState,
    /// A concurrent write won over this replica's own write of the key.
    pub is_correction: bool,
    /// The entry was already there when this replica learned of it (a late join or a
    /// catch-up after a partition), rather than inserted or changed while it watched.
    pub is_initial: bool,
    /// Peer whose write caused the change (this context's own id for local writes).
    pub origin: u64,
    /// For a sequence, the item's index: where it is now (`Added`, `Modified`) or was
    /// (`Removed`). `None` for tables and sets.
    pub index: Option<u64>,
    /// Host time (ms) of the tick or call that caused it.
    pub time_ms: u64,
}

/// One insertion of a key: who inserted it and a number unique among its insertions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Birth {
    /// The inserter's stream seq when it inserted (its stream only grows, across saves).
    pub seq: u64,
    /// Insertions by the same peer in the same seq, counted from 0.
    pub n: u64,
    pub writer: u64,
}

/// A set is a table whose id starts with this byte (so a set and a table may share a
/// name); user ids may not start with it.
pub(crate) const SET_MARK: char = '\u{2}';
/// A sequence is a table whose id starts with this byte, keyed by position (see
/// `position`).
pub(crate) const SEQ_MARK: char = '\u{3}';

/// What a collection is: a table, a set or a sequence (they may share a name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CollectionKind {
    Table,
    Set,
    Sequence,
}

impl CollectionKind {
    /// The kind a collection's internal id names.
    pub(crate) fn of_id(id: &str) -> CollectionKind {
        match id.chars().next() {
            Some(SET_MARK) => CollectionKind::Set,
            Some(SEQ_MARK) => CollectionKind::Sequence,
            _ => CollectionKind::Table,
        }
    }

    /// The internal id of the collection of this kind the host calls `id`.
    pub(crate) fn internal_id(self, id: &str) -> String {
        match self {
            CollectionKind::Table => id.to_string(),
            CollectionKind::Set => format!("{SET_MARK}{id}"),
            CollectionKind::Sequence => format!("{SEQ_MARK}{id}"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CollectionKind::Table => "table",
            CollectionKind::Set => "set",
            CollectionKind::Sequence => "sequence",
        }
    }
}

/// The key a set member is stored under: integers and strings as themselves, any other
/// value as its type tag and payload in hex (one set holds one type, so keys of
/// different kinds never meet).
pub(crate) fn member_key(v: &Value) -> Key {
    match v {
        Value::I64(n) => Key::Int(*n),
        Value::Str(s) => Key::Str(s.clone()),
        other => {
            let mut raw = vec![other.value_type() as u8];
            other.encode_payload(&mut raw);
            Key::Str(raw.iter().map(|b| format!("{b:02x}")).collect())
        }
    }
}

/// The wire id of an owner-only collection's head (`head_id`) starts with this byte.
pub(crate) const HEAD_MARK: char = '\u{4}';

/// The id of the *head* of owner-only collection `internal` (its internal id): an
/// owner-only value whose ownership walk (transfers, the heir's claim when the owner
/// leaves) is the collection's, and whose value lists the collection's owners epoch by
/// epoch (`Owners`), so a receiver can tell whether an entry record's writer
/// owned the collection in the epoch the record names.
pub(crate) fn head_id(internal: &str) -> String {
    format!("{HEAD_MARK}{internal}")
}

/// An owner-only collection's owners, epoch by epoch (`ids[e]` owned epoch `e`; 0 where
/// this replica does not know), as its head's value lists them, and how many of the first
/// epochs are *settled*: reached from the first owner by owners' own grants, which no
/// change of who is present can undo. An epoch begun by an heir's claim, and every later
/// one, is not: should the departed owner come back, its claim no longer stands (see
/// `register::owner`), and records of those epochs stop counting.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Owners {
    pub ids: Vec<u64>,
    pub settled: usize,
}

impl Owners {
    /// Varint per epoch: the owner's id shifted left once, the low bit set for an epoch
    /// past the settled ones.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.ids.len() * 2);
        for (k, &o) in self.ids.iter().enumerate() {
            crate::codec::put_varint(&mut out, o << 1 | (k >= self.settled) as u64);
        }
        out
    }

    /// What `encode` wrote; `None` for anything else (a malformed head).
    pub fn decode(buf: &[u8]) -> Option<Owners> {
        let mut r = crate::codec::Reader::new(buf);
        let mut owners = Owners::default();
        while !r.is_empty() {
            let x = r.varint_bits(54).ok()?;
            if x >> 1 == 0 {
                return None;
            }
            if x & 1 == 0 && owners.settled == owners.ids.len() {
                owners.settled += 1;
            }
            owners.ids.push(x >> 1);
        }
        Some(owners)
    }

    /// The list after the current owner grants the collection to `to`.
    pub fn granted(&self, to: u64) -> Owners {
        let settled = if self.settled == self.ids.len() { self.settled + 1 } else { self.settled };
        let mut ids = self.ids.clone();
        ids.push(to);
        Owners { ids, settled }
    }

    /// The list after heir `by` claims the collection (its owner left).
    pub fn claimed(&self, by: u64) -> Owners {
        let mut ids = self.ids.clone();
        ids.push(by);
        Owners { ids, settled: self.settled.min(self.ids.len()) }
    }
}

/// The wire id of a table entry starts with this byte, which value ids may not.
pub(crate) const ENTRY_MARK: char = '\u{1}';

/// The id of the entry `birth` of `key` in `table`:
/// `\x01 writer . seq . n . table-length . table key-tag key` (decimal numbers; tag `i`
/// for an integer key, `s` for a string).
pub(crate) fn entry_id(table: &str, key: &Key, birth: Birth) -> String {
    let Birth { writer, seq, n } = birth;
    let mut id = format!("{ENTRY_MARK}{writer}.{seq}.{n}.{}.{table}", table.len());
    match key {
        Key::Int(k) => {
            id.push('i');
            id.push_str(&k.to_string());
        }
        Key::Str(k) => {
            id.push('s');
            id.push_str(k);
        }
    }
    id
}

/// The parts of an entry id: table id, key, birth. `None` for anything `entry_id` does
/// not write (a value id, or a malformed entry id from a peer: then it is a value).
pub(crate) fn parse_entry_id(id: &str) -> Option<(&str, Key, Birth)> {
    let rest = id.strip_prefix(ENTRY_MARK)?;
    let mut parts = rest.splitn(5, '.');
    let mut number = || -> Option<u64> {
        let s = parts.next()?;
        // Canonical decimal only, so one entry has one id.
        if s.is_empty() || (s.len() > 1 && s.starts_with('0')) || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let (writer, seq, n, len) = (number()?, number()?, number()?, number()?);
    let tail = parts.next()?;
    let len = usize::try_from(len).ok()?;
    if len == 0 || !tail.is_char_boundary(len) || tail.len() <= len {
        return None;
    }
    let (table, key) = tail.split_at(len);
    let key = match key.split_at(1) {
        ("i", k) => {
            let n: i64 = k.parse().ok()?;
            if n.to_string() != k {
                return None;
            }
            Key::Int(n)
        }
        ("s", k) => Key::Str(k.to_string()),
        _ => return None,
    };
    Some((table, key, Birth { writer, seq, n }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_ids_round_trip() {
        let b = Birth { writer: 7, seq: 120, n: 3 };
        for (table, key) in [
            ("blocks", Key::Int(-5)),
            ("a.b.c", Key::Str("x.y".into())),
            ("t", Key::Str(String::new())),
            ("ünï", Key::Str("ключ".into())),
            ("t", Key::Int(i64::MIN)),
        ] {
            let id = entry_id(table, &key, b);
            assert_eq!(parse_entry_id(&id), Some((table, key.clone(), b)), "{id:?}");
        }
    }

    #[test]
    fn anything_else_is_not_an_entry() {
        for id in [
            "plain",
            "\u{1}",
            "\u{1}7.1.0.8.blocksi1",
            "\u{1}7.1.0.0.si1",
            "\u{1}07.1.0.1.ti1",
            "\u{1}7.1.0.1.tx1",
            "\u{1}7.1.0.1.ti01",
            "\u{1}7.1.0.1.ti",
            "\u{1}7.1.0.9.t",
            "\u{1}7.1.0.1.üi1",
        ] {
            assert_eq!(parse_entry_id(id), None, "{id:?}");
        }
    }
}

//! The C-visible data types and their conversions to and from the core's.
//!
//! Owns layout (`#[repr(C)]`) and conversion only, in the order the header shows them:
//! handles, enums, value types, tagged values, options, events, metrics, callbacks,
//! owned bytes. Enum-typed inputs cross as `uint32_t` and are validated here, because an
//! out-of-range C enum must be an error, not UB.
//!
//! Stability: the layout of every type here is fixed for all 1.x releases, except the
//! structs whose first field is `struct_size`, which may gain fields at their end.
#![allow(non_camel_case_types)]

use super::boundary::Growable;
use super::status::{zen_status_t, FfiError};
use crate::collection::{CollectionKind, EntryKind, Key, TableHandle};
use crate::context::{Mode, Options, SyncState, ValueHandle};
use crate::events::ChangeKind;
use crate::policy::Policy;
use crate::value::{Value, ValueType};
use std::ffi::{c_char, c_void};

// ---- handles ------------------------------------------------------------------------

/// A context: one replica (one player). A small number the library checks on every
/// call, never a pointer; compare `id`s to compare handles. A zeroed handle is never
/// valid. From `zen_context_new`; the caller owns it until `zen_context_free`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct zen_context_t {
    pub id: u64,
}

/// A value of one context. Opaque: `owner` names the context that issued it (by an
/// identity never reused in the life of the process) and `index` the value in it. A
/// zeroed handle is never valid. Valid with its context until that context is freed;
/// used with another context it is `ZEN_ERR_INVALID_HANDLE`. Needs no freeing.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct zen_value_t {
    pub owner: u64,
    pub index: u64,
}

impl From<ValueHandle> for zen_value_t {
    fn from(h: ValueHandle) -> zen_value_t {
        let (owner, index) = h.to_raw();
        zen_value_t { owner, index: index as u64 }
    }
}

impl zen_value_t {
    /// The core handle; an index too large for any context maps to one no context has.
    pub(crate) fn to_core(self) -> ValueHandle {
        ValueHandle::from_raw(self.owner, u32::try_from(self.index).unwrap_or(u32::MAX))
    }
}

// ---- enums ----------------------------------------------------------------------------

/// Value types (pass as `uint32_t`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum zen_value_type_t {
    /// No value: never written, or removed (only in `zen_value_data_t`).
    ZEN_TYPE_NONE = 0,
    ZEN_TYPE_BOOL = 1,
    ZEN_TYPE_I64 = 2,
    ZEN_TYPE_F64 = 3,
    /// UTF-8 text.
    ZEN_TYPE_STRING = 4,
    ZEN_TYPE_BYTES = 5,
    ZEN_TYPE_VEC2 = 6,
    ZEN_TYPE_VEC3 = 7,
    /// Four floats with no further meaning.
    ZEN_TYPE_VEC4 = 8,
    ZEN_TYPE_COLOR = 9,
    /// A rotation (x, y, z, w): the payload of VEC4, its own type on the wire and in
    /// events, so every peer knows it is a rotation.
    ZEN_TYPE_QUAT = 10,
}

/// Modes (pass as `uint32_t`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum zen_mode_t {
    /// Writes show at once; a concurrent write that wins corrects them later.
    ZEN_MODE_FAST_LOCAL = 0,
    /// Reads show what every current member acknowledged.
    ZEN_MODE_WAIT_FOR_SYNC = 1,
}

/// Correction policies: how concurrent writes resolve (pass as `uint32_t`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum zen_policy_t {
    /// The write with the highest logical clock wins; ties go to the higher peer id.
    ZEN_POLICY_LAST_WRITER_WINS = 0,
    /// The largest wins (vectors and colors component-wise). Refused for quaternions.
    ZEN_POLICY_MAX = 1,
    /// The smallest wins, ordered as for MAX. Refused for quaternions.
    ZEN_POLICY_MIN = 2,
    /// The mean: numbers, vectors, colors; quaternions as a rotation average.
    ZEN_POLICY_TAKE_AVERAGE = 3,
    /// A merge registered with `zen_context_register_merge` under the given name.
    ZEN_POLICY_CUSTOM = 4,
}

/// Sync states.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum zen_sync_state_t {
    /// No member has the latest local write yet, or there are no members.
    ZEN_STATE_LOCAL_ONLY = 0,
    /// Sent, not yet acknowledged by every current member.
    ZEN_STATE_SYNCING = 1,
    /// Every current member has acknowledged the value's latest state.
    ZEN_STATE_CONVERGED = 2,
    /// A concurrent write was resolved against this replica's write (until converged).
    ZEN_STATE_CONFLICTED = 3,
}

/// Kinds of change events.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum zen_change_kind_t {
    /// The value appeared here because another peer created it.
    ZEN_CHANGE_CREATED = 0,
    /// What reads return changed (a write here or elsewhere, a correction, a mode switch).
    ZEN_CHANGE_MODIFIED = 1,
    /// Only the sync state changed.
    ZEN_CHANGE_STATE_CHANGED = 2,
    /// The value was removed, here or by another peer.
    ZEN_CHANGE_REMOVED = 3,
    /// A peer re-announced the value unchanged (`zen_value_touch`): "same value, act
    /// again"; `old_value` and `new_value` are both what reads return. (1.3; a 1.2
    /// library never queues it.)
    ZEN_CHANGE_TOUCHED = 4,
    /// Only the owner of an owner-only value changed (a transfer, or its heir took over
    /// after the owner left); `origin` is the new owner. An ownership change that comes
    /// with a change of the value is that change's event, with `owner_changed` set. (1.4)
    ZEN_CHANGE_OWNER_CHANGED = 5,
    /// This context's write (or touch) was refused because it is not the owner (the
    /// ownership moved before the write went out, or another peer's claim won):
    /// `old_value` is what it showed, `new_value` what reads return, `origin` the owner.
    /// No peer shows the refused write. (1.4)
    ZEN_CHANGE_REJECTED = 6,
}

// ---- value types ------------------------------------------------------------------

/// Two floats.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct zen_vec2_t {
    pub x: f32,
    pub y: f32,
}

/// Three floats (positions, velocities).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct zen_vec3_t {
    pub x: f32,
    pub y: f32,
    pub z: f32,
}

/// Four floats.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct zen_vec4_t {
    pub x: f32,
    pub y: f32,
    pub z: f32,
    pub w: f32,
}

/// A rotation as a quaternion; the identity is (0, 0, 0, 1). Stored as written (not
/// normalised).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct zen_quat_t {
    pub x: f32,
    pub y: f32,
    pub z: f32,
    pub w: f32,
}

/// RGBA color, components normally 0..1.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct zen_color_t {
    pub r: f32,
    pub g: f32,
    pub b: f32,
    pub a: f32,
}

/// Borrowed bytes (strings are UTF-8 and NOT NUL-terminated).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct zen_bytes_view_t {
    pub ptr: *const u8,
    pub len: usize,
}

/// The payload of a `zen_value_data_t`; which member is valid depends on its type.
/// `vec` holds vec2 (x, y), vec3 (x, y, z), vec4 and quat (x, y, z, w) and color
/// (r, g, b, a) components.
#[repr(C)]
#[derive(Clone, Copy)]
pub union zen_value_payload_t {
    pub b: bool,
    pub i: i64,
    pub f: f64,
    pub vec: [f32; 4],
    /// ZEN_TYPE_STRING and ZEN_TYPE_BYTES.
    pub bytes: zen_bytes_view_t,
}

/// A tagged value: `value_type` (a `zen_value_type_t`) says which payload member holds it.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct zen_value_data_t {
    pub value_type: u32,
    pub data: zen_value_payload_t,
}

// ---- options ------------------------------------------------------------------------

/// Context options. Start from `zen_options_default`, which sets `struct_size`; later
/// 1.x releases may add fields at the end (a struct from an older header still works:
/// the fields it lacks keep their defaults). Durations in ms, sizes in bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct zen_options_t {
    /// `sizeof(zen_options_t)` as your header has it.
    pub struct_size: usize,
    /// Interval at which you call `zen_context_tick`; sizes timeouts.
    pub tick_interval_ms: u64,
    /// A member silent this long stops blocking WaitForSync until heard again.
    pub peer_timeout_ms: u64,
    /// Longest silence before an acknowledgement-only message is sent anyway.
    pub heartbeat_ms: u64,
    /// Largest message received or produced.
    pub max_message_bytes: u64,
    /// Largest string or bytes value.
    pub max_value_bytes: u64,
    /// Longest value id, in bytes of UTF-8.
    pub max_id_bytes: u64,
    /// Change events kept when the host does not poll.
    pub event_capacity: u64,
    /// A value untouched this long has its document hibernated (tens of bytes).
    pub hibernate_after_ms: u64,
    /// Most values a context holds.
    pub max_values: u64,
    /// The size each message aims at, 0 for `max_message_bytes` (1.1): deltas and
    /// catch-ups are split to fit. Set it to an unreliable transport's datagram budget
    /// (about 1200 for ENet or WebRTC) so a lost datagram loses only its own values.
    /// 0 or 256..=`max_message_bytes`.
    pub target_message_bytes: u64,
}

/// Options of a value at creation. Start from `zen_value_options_default`, which sets
/// `struct_size` (may grow in later 1.x releases, as `zen_options_t`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct zen_value_options_t {
    /// `sizeof(zen_value_options_t)` as your header has it.
    pub struct_size: usize,
    /// A `zen_mode_t`; default FAST_LOCAL.
    pub mode: u32,
    /// A `zen_policy_t`; default LAST_WRITER_WINS. The first creator's policy holds on
    /// every peer.
    pub policy: u32,
    /// For ZEN_POLICY_CUSTOM: the registered merge's name (`custom_name_len` bytes of
    /// UTF-8, copied); otherwise ignored and may be NULL.
    pub custom_name: *const c_char,
    pub custom_name_len: usize,
    /// 1 for a value never sent and never taken from peers (UI state, local config):
    /// the same calls and events, always `ZEN_STATE_LOCAL_ONLY`; default 0. Chosen when
    /// the value is first created in this context (opening it with the other choice is
    /// `ZEN_ERR_INVALID_ARGUMENT`). (1.3)
    pub local_only: u32,
    /// Who may write: 0 anyone (default); a peer id, only the value's owner, that peer
    /// being its first owner (usually your own id). Every peer refuses a non-owner's
    /// writes on receipt; here they fail with `ZEN_ERR_NOT_OWNER`. The owner may
    /// `zen_value_transfer` it; when the owner is removed (`zen_context_remove_peer`:
    /// it left for good), the lowest id among the members left takes it over. The first
    /// creator's choice holds on every peer. (1.4)
    pub owner: u64,
}

// ---- events -----------------------------------------------------------------------------

/// One change event. Pointers inside `old_value` and `new_value` borrow library memory
/// that stays valid until the next `zen_context_poll_change` on the same context, or
/// until the context is freed; copy what you keep.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct zen_change_t {
    pub value: zen_value_t,
    pub kind: zen_change_kind_t,
    pub state: zen_sync_state_t,
    /// A concurrent write by another peer replaced what this peer showed.
    pub is_correction: bool,
    /// This context had never shown content for the value before: a value a peer created
    /// (seen live, on a late join, after a partition, or loaded from a save), or one
    /// declared here whose first content came from elsewhere. Local writes are never
    /// initial. Handle "was already there" and "just changed" with the same code. (1.3;
    /// it sits in what was padding, so the struct's size and layout are 1.2's.)
    pub is_initial: bool,
    /// The value's owner changed with this event (`zen_value_owner` says who owns it
    /// now): start or stop simulating what you own. (1.4; also in former padding.)
    pub owner_changed: bool,
    /// Peer whose write caused it (this context's own id for local writes).
    pub origin: u64,
    /// Host time of the change, in the ms passed to `zen_context_tick`.
    pub time_ms: u64,
    /// What reads returned before (ZEN_TYPE_NONE: nothing, or removed).
    pub old_value: zen_value_data_t,
    /// What reads return now (ZEN_TYPE_NONE: removed).
    pub new_value: zen_value_data_t,
}

// ---- tables ------------------------------------------------------------------------------

/// A table of one context (1.5): opaque like `zen_value_t`, with an index space of its
/// own (a table handle is never a value handle). A zeroed handle is never valid. Valid
/// with its context until that context is freed. Needs no freeing.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct zen_table_t {
    pub owner: u64,
    pub index: u64,
}

impl From<TableHandle> for zen_table_t {
    fn from(h: TableHandle) -> zen_table_t {
        let (owner, index) = h.to_raw();
        zen_table_t { owner, index: index as u64 }
    }
}

impl zen_table_t {
    /// The core handle; an index too large for any context maps to one no context has.
    pub(crate) fn to_core(self) -> TableHandle {
        TableHandle::from_raw(self.owner, u32::try_from(self.index).unwrap_or(u32::MAX))
    }
}

/// Which member of a `zen_key_t` holds the key (pass as `uint32_t`). (1.5)
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum zen_key_kind_t {
    ZEN_KEY_INT = 0,
    ZEN_KEY_STRING = 1,
}

/// A table key (1.5): an integer or a string, never equal to each other. Passed in,
/// `str` is `str_len` bytes of UTF-8 (copied; may be NULL when `str_len` is 0). Handed
/// out (events, `zen_table_entry_at`), `str` borrows library memory for as long as the
/// call that filled it says.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct zen_key_t {
    /// A `zen_key_kind_t`.
    pub kind: u32,
    /// For ZEN_KEY_INT.
    pub int_key: i64,
    /// For ZEN_KEY_STRING.
    pub str: *const c_char,
    pub str_len: usize,
}

/// Options of a table when this context opens it (1.5). Start from
/// `zen_table_options_default`, which sets `struct_size` (may grow in later releases).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct zen_table_options_t {
    /// `sizeof(zen_table_options_t)` as your header has it.
    pub struct_size: usize,
    /// A `zen_mode_t` for every entry, this context's own view; default FAST_LOCAL.
    pub mode: u32,
    /// A `zen_policy_t` for concurrent updates of one entry; default LAST_WRITER_WINS.
    /// An entry's inserter's policy holds on every peer.
    pub policy: u32,
    /// For ZEN_POLICY_CUSTOM: the registered merge's name (copied).
    pub custom_name: *const c_char,
    pub custom_name_len: usize,
    /// 0: anyone may write (the default). Otherwise only the collection's owner, this
    /// peer id being its first owner: every peer refuses others' writes on receipt, and
    /// here they fail with ZEN_ERR_NOT_OWNER. See `zen_table_transfer`. The first
    /// creator's choice holds on every peer.
    pub owner: u64,
}

impl Growable for zen_table_options_t {}

/// What a `zen_table_t` names (pass as `uint32_t`). (1.5)
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum zen_collection_kind_t {
    ZEN_COLLECTION_TABLE = 0,
    ZEN_COLLECTION_SET = 1,
    ZEN_COLLECTION_SEQUENCE = 2,
}

pub(crate) fn collection_kind_out(k: CollectionKind) -> zen_collection_kind_t {
    match k {
        CollectionKind::Table => zen_collection_kind_t::ZEN_COLLECTION_TABLE,
        CollectionKind::Set => zen_collection_kind_t::ZEN_COLLECTION_SET,
        CollectionKind::Sequence => zen_collection_kind_t::ZEN_COLLECTION_SEQUENCE,
    }
}

/// What happened to one key of a table (1.5).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum zen_table_change_kind_t {
    /// The key shows an entry where it showed none.
    ZEN_TABLE_ADDED = 1,
    /// The key shows no entry any more.
    ZEN_TABLE_REMOVED = 2,
    /// The key's entry shows another value.
    ZEN_TABLE_MODIFIED = 3,
    /// This context's write of the key was refused everywhere: it wrote an owner-only
    /// collection it turned out not to own (another peer's claim won). `old_value` is
    /// what the key showed, `new_value` what it shows now, `origin` the owner.
    ZEN_TABLE_REJECTED = 4,
    /// The collection's owner changed (a transfer, or its owner left and the heir took
    /// over): `origin` is the new owner; no key (`key` is the integer 0).
    ZEN_TABLE_OWNER_CHANGED = 5,
    /// The key's entry was re-announced unchanged (`zen_table_touch`, `zen_set_touch`,
    /// `zen_seq_touch`): "same value, act again"; `old_value` and `new_value` both hold
    /// it.
    ZEN_TABLE_TOUCHED = 6,
}

/// One table event (1.5). `key.str` and the pointers inside `old_value` and `new_value`
/// borrow library memory valid until the next `zen_context_poll_table_change` on the
/// same context, or until it is freed; copy what you keep.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct zen_table_change_t {
    pub table: zen_table_t,
    pub kind: zen_table_change_kind_t,
    /// Sync state of the entry the key shows (or showed, for a removal).
    pub state: zen_sync_state_t,
    /// A concurrent write won over this context's own write of the key.
    pub is_correction: bool,
    /// The entry was already there when this context learned of it (a late join, a
    /// catch-up after a partition), rather than inserted or changed while it watched.
    pub is_initial: bool,
    /// Peer whose write caused it (this context's own id for local writes).
    pub origin: u64,
    /// Host time of the change, in the ms passed to `zen_context_tick`.
    pub time_ms: u64,
    /// For a sequence, the item's index: where it is now (added, modified) or was
    /// (removed); -1 for tables and sets.
    pub index: i64,
    pub key: zen_key_t,
    /// What the key showed before (ZEN_TYPE_NONE: no entry).
    pub old_value: zen_value_data_t,
    /// What it shows now (ZEN_TYPE_NONE: no entry).
    pub new_value: zen_value_data_t,
}

pub(crate) fn table_options_default() -> zen_table_options_t {
    zen_table_options_t {
        struct_size: std::mem::size_of::<zen_table_options_t>(),
        mode: zen_mode_t::ZEN_MODE_FAST_LOCAL as u32,
        policy: zen_policy_t::ZEN_POLICY_LAST_WRITER_WINS as u32,
        custom_name: std::ptr::null(),
        custom_name_len: 0,
        owner: 0,
    }
}

/// A key handed out, borrowing `key`'s string.
pub(crate) fn key_out(key: &Key) -> zen_key_t {
    match key {
        Key::Int(n) => zen_key_t {
            kind: zen_key_kind_t::ZEN_KEY_INT as u32,
            int_key: *n,
            str: std::ptr::null(),
            str_len: 0,
        },
        Key::Str(s) => zen_key_t {
            kind: zen_key_kind_t::ZEN_KEY_STRING as u32,
            int_key: 0,
            str: s.as_ptr().cast(),
            str_len: s.len(),
        },
    }
}

pub(crate) fn table_kind_out(k: EntryKind) -> zen_table_change_kind_t {
    match k {
        EntryKind::Added => zen_table_change_kind_t::ZEN_TABLE_ADDED,
        EntryKind::Removed => zen_table_change_kind_t::ZEN_TABLE_REMOVED,
        EntryKind::Modified => zen_table_change_kind_t::ZEN_TABLE_MODIFIED,
        EntryKind::Touched => zen_table_change_kind_t::ZEN_TABLE_TOUCHED,
        EntryKind::Rejected => zen_table_change_kind_t::ZEN_TABLE_REJECTED,
        EntryKind::OwnerChanged => zen_table_change_kind_t::ZEN_TABLE_OWNER_CHANGED,
    }
}

// ---- metrics ------------------------------------------------------------------------------

/// Counters of a context (they only grow) and WaitForSync latency quantiles in ms
/// (`UINT64_MAX` before the first sample). Set `struct_size` to `sizeof(zen_metrics_t)`
/// before `zen_context_metrics`, which fills as much as that says there is room for
/// (later 1.x releases may add counters at the end).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct zen_metrics_t {
    /// In: the room the caller has (`sizeof(zen_metrics_t)`); out: the bytes written.
    pub struct_size: usize,
    pub messages_out: u64,
    pub bytes_out: u64,
    pub messages_in: u64,
    pub bytes_in: u64,
    /// Messages `receive` rejected (corrupt, truncated, hostile, unknown sender, ...).
    pub messages_rejected: u64,
    /// Of those, messages naming another sender than the transport's, or changing state
    /// their sender does not own.
    pub messages_forged: u64,
    /// Messages already applied, dropped on arrival.
    pub messages_duplicate: u64,
    /// Local writes flushed to the CRDT (after coalescing within a tick).
    pub writes_flushed: u64,
    /// Local writes coalesced into a later write of the same tick.
    pub writes_coalesced: u64,
    /// Remote value updates taken in and shown.
    pub updates_applied: u64,
    /// Local writes a concurrent remote write replaced (events with `is_correction`).
    pub corrections: u64,
    /// Concurrent writes merged by a value's policy.
    pub conflicts: u64,
    /// Catch-up snapshots sent (loss, late join, rejoin).
    pub catchups_sent: u64,
    /// Merges that fell back to last-writer-wins (a custom merge failed or was missing).
    pub merge_fallbacks: u64,
    /// Change events merged into an unpolled one of the same value.
    pub events_coalesced: u64,
    /// Change events dropped because the queue was full.
    pub events_dropped: u64,
    /// Values this context holds (removed ones included).
    pub values: u64,
    /// Values whose document is live (the others are hibernated).
    pub live_docs: u64,
    /// WaitForSync write-to-converged latency, median and 99th percentile, in ms
    /// (`UINT64_MAX` before the first sample): from the last tick before the write to
    /// the tick that found every member holding it (a game that writes and then ticks in
    /// the same frame saw one tick less).
    pub converge_ms_p50: u64,
    pub converge_ms_p99: u64,
    /// Current members (see `zen_context_peer_lag`).
    pub peers: u64,
    /// Remote yrs updates dropped because yrs refused them or panicked on them (a crafted
    /// update from a member, or a yrs bug): the value's document was rebuilt from its last
    /// good state. Such a panic never poisons the context. Since 1.1.
    pub rejected_updates: u64,
    /// New records of owner-only values from peers that did not own them when they
    /// arrived: never shown (unless a transfer that was still on its way makes the writer
    /// the owner). Since 1.4.
    pub unowned_writes: u64,
    /// Table entries held: those a key shows, and removed ones not yet forgotten. Since
    /// 1.5.
    pub table_entries: u64,
    /// Removed table entries forgotten once every member held the removal. Since 1.5.
    pub entries_forgotten: u64,
}

/// How far one member is behind on this context's own stream.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct zen_peer_lag_t {
    pub peer: u64,
    /// Heard within the peer timeout.
    pub active: bool,
    /// Messages of ours it has not acknowledged.
    pub unacked_messages: u64,
    /// Age of the oldest of them, in ms.
    pub ack_lag_ms: u64,
    /// Smoothed round trip, in ms (0 before the first sample).
    pub rtt_ms: u64,
}

// ---- callbacks --------------------------------------------------------------------------

/// One concurrent write offered to a custom merge.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct zen_candidate_t {
    pub writer: u64,
    /// Logical clock of the write (higher saw more history).
    pub clock: u64,
    pub value: zen_value_data_t,
}

/// A custom merge: gets `count` (at least 2) candidates sorted by writer id and writes
/// the merged value, of the same type, to `out` (string/bytes pointers in `out` need only
/// live until the callback returns). It must be deterministic: every peer runs it on the
/// same candidates and must get the same result. It runs inside `zen_context_tick`, on
/// that thread, with the context locked: it must not call zen-crdt (such calls fail with
/// ZEN_ERR_REENTRANT), and it must not throw or longjmp. Return 0 when `out` holds the
/// merge; any other value (or a value of another type in `out`) means it could not
/// merge, and last-writer-wins decides instead, on every peer alike (counted in
/// `merge_fallbacks`).
pub type zen_merge_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        candidates: *const zen_candidate_t,
        count: usize,
        out: *mut zen_value_data_t,
    ) -> i32,
>;

/// Releases a callback's `user_data` when the library no longer needs it.
pub type zen_free_fn = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

// ---- owned bytes --------------------------------------------------------------------------

/// Library-owned bytes; release with `zen_bytes_free`.
#[repr(C)]
#[derive(Debug)]
pub struct zen_bytes_t {
    pub ptr: *mut u8,
    pub len: usize,
}

// Growable structs, and the size each had in 1.0.
impl Growable for zen_options_t {
    /// 1.1 added `target_message_bytes`.
    const SIZE_1_0: usize = std::mem::offset_of!(zen_options_t, target_message_bytes);
}
impl Growable for zen_value_options_t {
    /// 1.3 added `local_only`.
    const SIZE_1_0: usize = std::mem::offset_of!(zen_value_options_t, local_only);
}
impl Growable for zen_metrics_t {
    /// 1.1 added `rejected_updates`.
    const SIZE_1_0: usize = std::mem::offset_of!(zen_metrics_t, rejected_updates);
}

// ---- conversions ----------------------------------------------------------------------------

pub(crate) fn options_out(o: &Options) -> zen_options_t {
    zen_options_t {
        struct_size: std::mem::size_of::<zen_options_t>(),
        tick_interval_ms: o.tick_interval_ms,
        peer_timeout_ms: o.peer_timeout_ms,
        heartbeat_ms: o.heartbeat_ms,
        max_message_bytes: o.max_message_bytes as u64,
        max_value_bytes: o.max_value_bytes as u64,
        max_id_bytes: o.max_id_bytes as u64,
        event_capacity: o.event_capacity as u64,
        hibernate_after_ms: o.hibernate_after_ms,
        max_values: o.max_values as u64,
        target_message_bytes: o.target_message_bytes as u64,
    }
}

pub(crate) fn options_in(o: &zen_options_t) -> Result<Options, FfiError> {
    let size = |name: &str, v: u64| {
        usize::try_from(v).map_err(|_| {
            FfiError::new(zen_status_t::ZEN_ERR_INVALID_ARGUMENT, format!("{name} {v} is too large"))
        })
    };
    Ok(Options {
        tick_interval_ms: o.tick_interval_ms,
        peer_timeout_ms: o.peer_timeout_ms,
        heartbeat_ms: o.heartbeat_ms,
        max_message_bytes: size("max_message_bytes", o.max_message_bytes)?,
        max_value_bytes: size("max_value_bytes", o.max_value_bytes)?,
        max_id_bytes: size("max_id_bytes", o.max_id_bytes)?,
        event_capacity: size("event_capacity", o.event_capacity)?,
        hibernate_after_ms: o.hibernate_after_ms,
        max_values: size("max_values", o.max_values)?,
        target_message_bytes: size("target_message_bytes", o.target_message_bytes)?,
    })
}

pub(crate) fn value_options_default() -> zen_value_options_t {
    zen_value_options_t {
        struct_size: std::mem::size_of::<zen_value_options_t>(),
        mode: zen_mode_t::ZEN_MODE_FAST_LOCAL as u32,
        policy: zen_policy_t::ZEN_POLICY_LAST_WRITER_WINS as u32,
        custom_name: std::ptr::null(),
        custom_name_len: 0,
        local_only: 0,
        owner: 0,
    }
}

fn bad(what: &str, v: u32) -> FfiError {
    FfiError::new(zen_status_t::ZEN_ERR_INVALID_ARGUMENT, format!("{what} {v} is not valid"))
}

pub(crate) fn value_type_in(v: u32) -> Result<ValueType, FfiError> {
    u8::try_from(v).ok().and_then(ValueType::from_u8).ok_or_else(|| bad("value type", v))
}

pub(crate) fn mode_in(v: u32) -> Result<Mode, FfiError> {
    match v {
        0 => Ok(Mode::FastLocal),
        1 => Ok(Mode::WaitForSync),
        _ => Err(bad("mode", v)),
    }
}

pub(crate) fn policy_in(v: u32, custom: Option<&str>) -> Result<Policy, FfiError> {
    Ok(match v {
        0 => Policy::LastWriterWins,
        1 => Policy::Max,
        2 => Policy::Min,
        3 => Policy::TakeAverage,
        4 => match custom {
            Some(name) if !name.is_empty() => Policy::Custom(name.into()),
            _ => {
                return Err(FfiError::new(
                    zen_status_t::ZEN_ERR_INVALID_ARGUMENT,
                    "ZEN_POLICY_CUSTOM needs the merge's name",
                ))
            }
        },
        _ => return Err(bad("policy", v)),
    })
}

pub(crate) fn type_out(t: ValueType) -> zen_value_type_t {
    match t {
        ValueType::Bool => zen_value_type_t::ZEN_TYPE_BOOL,
        ValueType::I64 => zen_value_type_t::ZEN_TYPE_I64,
        ValueType::F64 => zen_value_type_t::ZEN_TYPE_F64,
        ValueType::Str => zen_value_type_t::ZEN_TYPE_STRING,
        ValueType::Bytes => zen_value_type_t::ZEN_TYPE_BYTES,
        ValueType::Vec2 => zen_value_type_t::ZEN_TYPE_VEC2,
        ValueType::Vec3 => zen_value_type_t::ZEN_TYPE_VEC3,
        ValueType::Vec4 => zen_value_type_t::ZEN_TYPE_VEC4,
        ValueType::Color => zen_value_type_t::ZEN_TYPE_COLOR,
        ValueType::Quat => zen_value_type_t::ZEN_TYPE_QUAT,
    }
}

pub(crate) fn policy_out(p: &Policy) -> zen_policy_t {
    match p {
        Policy::LastWriterWins => zen_policy_t::ZEN_POLICY_LAST_WRITER_WINS,
        Policy::Max => zen_policy_t::ZEN_POLICY_MAX,
        Policy::Min => zen_policy_t::ZEN_POLICY_MIN,
        Policy::TakeAverage => zen_policy_t::ZEN_POLICY_TAKE_AVERAGE,
        Policy::Custom(_) => zen_policy_t::ZEN_POLICY_CUSTOM,
    }
}

pub(crate) fn mode_out(m: Mode) -> zen_mode_t {
    match m {
        Mode::FastLocal => zen_mode_t::ZEN_MODE_FAST_LOCAL,
        Mode::WaitForSync => zen_mode_t::ZEN_MODE_WAIT_FOR_SYNC,
    }
}

pub(crate) fn metrics_out(m: &crate::Metrics) -> zen_metrics_t {
    zen_metrics_t {
        struct_size: std::mem::size_of::<zen_metrics_t>(),
        messages_out: m.messages_out,
        bytes_out: m.bytes_out,
        messages_in: m.messages_in,
        bytes_in: m.bytes_in,
        messages_rejected: m.messages_rejected,
        messages_forged: m.messages_forged,
        messages_duplicate: m.messages_duplicate,
        writes_flushed: m.writes_flushed,
        writes_coalesced: m.writes_coalesced,
        updates_applied: m.updates_applied,
        corrections: m.corrections,
        conflicts: m.conflicts,
        catchups_sent: m.catchups_sent,
        merge_fallbacks: m.merge_fallbacks,
        events_coalesced: m.events_coalesced,
        events_dropped: m.events_dropped,
        values: m.values,
        live_docs: m.live_docs,
        converge_ms_p50: m.converge_ms_p50.unwrap_or(u64::MAX),
        converge_ms_p99: m.converge_ms_p99.unwrap_or(u64::MAX),
        peers: m.peers.len() as u64,
        rejected_updates: m.rejected_updates,
        unowned_writes: m.unowned_writes,
        table_entries: m.table_entries,
        entries_forgotten: m.entries_forgotten,
    }
}

pub(crate) fn state_out(s: SyncState) -> zen_sync_state_t {
    match s {
        SyncState::LocalOnly => zen_sync_state_t::ZEN_STATE_LOCAL_ONLY,
        SyncState::Syncing => zen_sync_state_t::ZEN_STATE_SYNCING,
        SyncState::Converged => zen_sync_state_t::ZEN_STATE_CONVERGED,
        SyncState::Conflicted => zen_sync_state_t::ZEN_STATE_CONFLICTED,
    }
}

pub(crate) fn kind_out(k: ChangeKind) -> zen_change_kind_t {
    match k {
        ChangeKind::Created => zen_change_kind_t::ZEN_CHANGE_CREATED,
        ChangeKind::Modified => zen_change_kind_t::ZEN_CHANGE_MODIFIED,
        ChangeKind::StateChanged => zen_change_kind_t::ZEN_CHANGE_STATE_CHANGED,
        ChangeKind::Removed => zen_change_kind_t::ZEN_CHANGE_REMOVED,
        ChangeKind::Touched => zen_change_kind_t::ZEN_CHANGE_TOUCHED,
        ChangeKind::OwnerChanged => zen_change_kind_t::ZEN_CHANGE_OWNER_CHANGED,
        ChangeKind::Rejected => zen_change_kind_t::ZEN_CHANGE_REJECTED,
    }
}

/// Borrows `v` (its strings and bytes must outlive the result's use).
pub(crate) fn data_out(v: Option<&Value>) -> zen_value_data_t {
    // Every byte of the union starts zeroed, whichever member is then set.
    let mut data = zen_value_payload_t { bytes: zen_bytes_view_t { ptr: std::ptr::null(), len: 0 } };
    let view = |b: &[u8]| zen_bytes_view_t { ptr: b.as_ptr(), len: b.len() };
    match v {
        None => {}
        Some(Value::Bool(b)) => data.b = *b,
        Some(Value::I64(i)) => data.i = *i,
        Some(Value::F64(f)) => data.f = *f,
        Some(Value::Str(s)) => data.bytes = view(s.as_bytes()),
        Some(Value::Bytes(b)) => data.bytes = view(b),
        Some(x) => {
            let mut vec = [0f32; 4];
            let c = x.components().unwrap_or(&[]);
            vec[..c.len()].copy_from_slice(c);
            data.vec = vec;
        }
    }
    // The core's value type numbers are the C ones.
    zen_value_data_t { value_type: v.map_or(0, |x| x.value_type() as u32), data }
}

/// Reads a value a host wrote into a `zen_value_data_t` (copying its bytes).
///
/// # Safety
/// For strings and bytes, `d.data.bytes` must point to `len` readable bytes.
pub(crate) unsafe fn data_in(d: &zen_value_data_t) -> Result<Value, FfiError> {
    let ty = value_type_in(d.value_type)?;
    // SAFETY: the union member read is the one `value_type` names (host contract).
    unsafe {
        Ok(match ty {
            // Only the first byte is the host's: read it as a byte, never as a Rust bool.
            ValueType::Bool => Value::Bool(*(std::ptr::addr_of!(d.data) as *const u8) != 0),
            ValueType::I64 => Value::I64(d.data.i),
            ValueType::F64 => Value::F64(d.data.f),
            ValueType::Str => Value::Str(
                super::boundary::text(d.data.bytes.ptr.cast(), d.data.bytes.len, "string value")?.to_owned(),
            ),
            ValueType::Bytes => Value::Bytes(
                super::boundary::bytes(d.data.bytes.ptr, d.data.bytes.len, "bytes value")?.to_vec(),
            ),
            ValueType::Vec2 => Value::Vec2([d.data.vec[0], d.data.vec[1]]),
            ValueType::Vec3 => Value::Vec3([d.data.vec[0], d.data.vec[1], d.data.vec[2]]),
            ValueType::Vec4 => Value::Vec4(d.data.vec),
            ValueType::Color => Value::Color(d.data.vec),
            ValueType::Quat => Value::Quat(d.data.vec),
        })
    }
}

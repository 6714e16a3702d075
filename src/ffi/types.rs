//! The C-visible data types and their conversions to and from the core's.
//!
//! Owns layout (`#[repr(C)]`) and conversion only. Enum-typed inputs cross as `uint32_t`
//! and are validated here, because an out-of-range C enum must be an error, not UB.
#![allow(non_camel_case_types)]

use super::status::{zen_status_t, FfiError};
use crate::context::{Mode, SyncState};
use crate::events::ChangeKind;
use crate::policy::Policy;
use crate::value::{Value, ValueType};
use std::ffi::c_void;

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

/// Four floats; also quaternions (x, y, z, w).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct zen_vec4_t {
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

/// Value types (pass as `uint32_t`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum zen_value_type_t {
    /// No value: never written, or removed (only in `zen_value_data_t`).
    ZEN_TYPE_NONE = 0,
    ZEN_TYPE_BOOL = 1,
    ZEN_TYPE_I64 = 2,
    ZEN_TYPE_F64 = 3,
    ZEN_TYPE_STRING = 4,
    ZEN_TYPE_BYTES = 5,
    ZEN_TYPE_VEC2 = 6,
    ZEN_TYPE_VEC3 = 7,
    ZEN_TYPE_VEC4 = 8,
    ZEN_TYPE_COLOR = 9,
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

/// Correction policies (pass as `uint32_t`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum zen_policy_t {
    ZEN_POLICY_LAST_WRITER_WINS = 0,
    ZEN_POLICY_MAX = 1,
    ZEN_POLICY_MIN = 2,
    ZEN_POLICY_TAKE_AVERAGE = 3,
    /// A merge registered with `zen_context_register_merge` under the given name.
    ZEN_POLICY_CUSTOM = 4,
}

/// Sync states.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum zen_sync_state_t {
    ZEN_STATE_LOCAL_ONLY = 0,
    ZEN_STATE_SYNCING = 1,
    ZEN_STATE_CONVERGED = 2,
    ZEN_STATE_CONFLICTED = 3,
}

/// Kinds of change events.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum zen_change_kind_t {
    ZEN_CHANGE_CREATED = 0,
    ZEN_CHANGE_MODIFIED = 1,
    ZEN_CHANGE_STATE_CHANGED = 2,
    ZEN_CHANGE_REMOVED = 3,
}

/// Borrowed bytes (strings are UTF-8 and NOT NUL-terminated).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct zen_bytes_view_t {
    pub ptr: *const u8,
    pub len: usize,
}

/// The payload of a `zen_value_data_t`; which member is valid depends on its type.
/// `vec` holds vec2 (x, y), vec3 (x, y, z), vec4 and color (r, g, b, a) components.
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

/// One change event. Pointers inside `old_value` and `new_value` borrow library memory
/// that stays valid until the next `zen_context_poll_change` on the same context, or
/// until the context is freed; copy what you keep.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct zen_change_t {
    pub value: u64,
    pub kind: zen_change_kind_t,
    pub state: zen_sync_state_t,
    pub is_correction: bool,
    /// Peer whose write caused it (this context's own id for local writes).
    pub origin: u64,
    /// Host time of the change, in the ms passed to `zen_context_tick`.
    pub time_ms: u64,
    pub old_value: zen_value_data_t,
    pub new_value: zen_value_data_t,
}

/// Context options; start from `zen_options_default`. Durations in ms, sizes in bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct zen_options_t {
    pub tick_interval_ms: u64,
    pub peer_timeout_ms: u64,
    pub heartbeat_ms: u64,
    pub max_message_bytes: u64,
    pub max_value_bytes: u64,
    pub max_id_bytes: u64,
    pub event_capacity: u64,
    pub hibernate_after_ms: u64,
    pub max_values: u64,
}

/// Counters of a context (they only grow) and WaitForSync latency quantiles in ms
/// (`UINT64_MAX` before the first sample).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct zen_metrics_t {
    pub messages_out: u64,
    pub bytes_out: u64,
    pub messages_in: u64,
    pub bytes_in: u64,
    pub messages_rejected: u64,
    pub messages_duplicate: u64,
    pub writes_flushed: u64,
    pub writes_coalesced: u64,
    pub updates_applied: u64,
    pub corrections: u64,
    pub conflicts: u64,
    pub catchups_sent: u64,
    pub merge_fallbacks: u64,
    pub events_coalesced: u64,
    pub events_dropped: u64,
    pub values: u64,
    pub live_docs: u64,
    pub converge_ms_p50: u64,
    pub converge_ms_p99: u64,
    pub peers: u64,
}

/// How far one member is behind on this context's own stream.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct zen_peer_lag_t {
    pub peer: u64,
    pub active: bool,
    pub unacked_messages: u64,
    pub ack_lag_ms: u64,
    pub rtt_ms: u64,
}

/// One concurrent write offered to a custom merge.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct zen_candidate_t {
    pub writer: u64,
    pub clock: u64,
    pub value: zen_value_data_t,
}

/// A custom merge: gets `count` (at least 2) candidates sorted by writer id and writes
/// the merged value, of the same type, to `out` (string/bytes pointers in `out` need only
/// live until the callback returns). It must be deterministic: every peer runs it on the
/// same candidates and must get the same result. It runs inside `zen_context_tick`, on
/// that thread, with the context locked: it must not call zen-crdt. Returning anything
/// but ZEN_OK, or a value of another type, falls back to last-writer-wins (counted in
/// `merge_fallbacks`).
pub type zen_merge_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        candidates: *const zen_candidate_t,
        count: usize,
        out: *mut zen_value_data_t,
    ) -> zen_status_t,
>;

/// Releases a callback's `user_data` when the library no longer needs it.
pub type zen_free_fn = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

/// Library-owned bytes; release with `zen_bytes_free`.
#[repr(C)]
#[derive(Debug)]
pub struct zen_bytes_t {
    pub ptr: *mut u8,
    pub len: usize,
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
    }
}

/// Borrows `v` (its strings and bytes must outlive the result's use).
pub(crate) fn data_out(v: Option<&Value>) -> zen_value_data_t {
    let mut vec = [0f32; 4];
    let (t, data) = match v {
        None => (0, zen_value_payload_t { i: 0 }),
        Some(Value::Bool(b)) => (1, zen_value_payload_t { b: *b }),
        Some(Value::I64(i)) => (2, zen_value_payload_t { i: *i }),
        Some(Value::F64(f)) => (3, zen_value_payload_t { f: *f }),
        Some(Value::Str(s)) => {
            (4, zen_value_payload_t { bytes: zen_bytes_view_t { ptr: s.as_ptr(), len: s.len() } })
        }
        Some(Value::Bytes(b)) => {
            (5, zen_value_payload_t { bytes: zen_bytes_view_t { ptr: b.as_ptr(), len: b.len() } })
        }
        Some(x) => {
            let c = x.components().unwrap_or(&[]);
            vec[..c.len()].copy_from_slice(c);
            (x.value_type() as u32, zen_value_payload_t { vec })
        }
    };
    zen_value_data_t { value_type: t, data }
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
                super::guard::text(d.data.bytes.ptr.cast(), d.data.bytes.len, "string value")?.to_owned(),
            ),
            ValueType::Bytes => {
                Value::Bytes(super::guard::bytes(d.data.bytes.ptr, d.data.bytes.len, "bytes value")?.to_vec())
            }
            ValueType::Vec2 => Value::Vec2([d.data.vec[0], d.data.vec[1]]),
            ValueType::Vec3 => Value::Vec3([d.data.vec[0], d.data.vec[1], d.data.vec[2]]),
            ValueType::Vec4 => Value::Vec4(d.data.vec),
            ValueType::Color => Value::Color(d.data.vec),
        })
    }
}

//! The C ABI: the only `unsafe` code of the crate, and a thin layer over `Context`.
//!
//! Conventions (include/zen_crdt.h has the full contract):
//! - every fallible function returns `zen_status_t`; results go through out-parameters,
//!   written only on success; a failure changes nothing and leaves a message for
//!   `zen_last_error` on the calling thread;
//! - contexts, values and networks are distinct handle types checked on every use: a
//!   freed, stale, foreign or wrong-kind handle is `ZEN_ERR_INVALID_HANDLE`, never
//!   undefined behaviour;
//! - strings cross as pointer + length (UTF-8, not NUL-terminated);
//! - every export runs inside `boundary`: a panic never crosses it, it becomes
//!   `ZEN_ERR_PANIC` and poisons only the context it happened in;
//! - every call on one context may come from any thread: each context has its own lock.
//!
//! Modules by subject: `types` (every C type), then the exports: `context`, `save`, `value`,
//! `events`, `metrics`, `merge`, and `sim` (the network simulator, its own header
//! `zen_crdt_sim.h`, cargo feature "sim", on by default).
#![allow(clippy::missing_safety_doc)]

// The exports' modules, in the order the header lists their functions (and, through
// what they use first, its types); one per paragraph, so rustfmt keeps the order.
mod context;

mod save;

mod value;

mod events;

mod table;

mod metrics;

mod merge;

mod link;

mod threads;

#[cfg(feature = "sim")]
mod sim;

mod boundary;
mod handles;
mod status;
mod types;

pub use context::*;
pub use events::*;
pub use link::*;
pub use merge::*;
pub use metrics::*;
#[cfg(feature = "sim")]
pub use sim::*;
pub use status::zen_status_t;
pub use table::*;
pub use threads::*;
pub use types::*;
pub use value::*;

use boundary::{copy_out, guard_infallible, guard_keeping_message};
use status::{last_error_ptr, with_last_error};
use std::ffi::c_char;

/// Major version of the library (and of this header). 1.x releases keep every promise
/// of the "Stability" paragraph.
pub const ZEN_VERSION_MAJOR: u32 = 1;
/// Minor version: grows when functions, types, enum values or struct fields are added.
pub const ZEN_VERSION_MINOR: u32 = 5;
/// Patch version: fixes only.
pub const ZEN_VERSION_PATCH: u32 = 0;
/// What `zen_context_next_deadline_ms` reports when nothing is scheduled (`UINT64_MAX`).
pub const ZEN_NO_DEADLINE: u64 = u64::MAX;
/// Wire protocol version this build speaks (peers must speak the same).
pub const ZEN_PROTOCOL_VERSION: u32 = 4;

/// The library's version as `major << 16 | minor << 8 | patch`; compare with the
/// `ZEN_VERSION_*` macros to detect a header/library mismatch. Thread-safe.
#[no_mangle]
pub extern "C" fn zen_version() -> u32 {
    guard_infallible(0, || ZEN_VERSION_MAJOR << 16 | ZEN_VERSION_MINOR << 8 | ZEN_VERSION_PATCH)
}

/// The name of a status code as a static NUL-terminated string ("ZEN_ERR_DECODE"), or
/// "ZEN_ERR_UNKNOWN" for a code this library does not have. Thread-safe.
#[no_mangle]
pub extern "C" fn zen_status_name(status: i32) -> *const c_char {
    guard_infallible(c"ZEN_ERR_UNKNOWN".as_ptr(), || {
        zen_status_t::ALL
            .iter()
            .find(|s| **s as i32 == status)
            .map_or(c"ZEN_ERR_UNKNOWN".as_ptr(), |s| s.name().as_ptr())
    })
}

/// Why the last failed call on this thread failed, as a NUL-terminated string in one
/// line ("" before any failure). The library owns it: it stays valid until the next
/// zen-crdt call on this thread. Successful calls leave it alone. Thread-safe.
#[no_mangle]
pub extern "C" fn zen_last_error() -> *const c_char {
    guard_infallible(c"".as_ptr(), last_error_ptr)
}

/// Copies the message of the last failed call on this thread into `buf` (`cap` bytes;
/// not NUL-terminated) and its length to `out_len`. `ZEN_ERR_BUFFER_TOO_SMALL` (with the
/// needed length in `out_len`) if it does not fit; neither failure replaces the message.
/// For bindings that copy into their own strings; C code may prefer `zen_last_error`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_last_error_message(
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> zen_status_t {
    guard_keeping_message(|| with_last_error(|msg| unsafe { copy_out(msg, buf.cast(), cap, out_len) }))
}

#[cfg(test)]
mod tests;

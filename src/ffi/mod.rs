//! The C ABI: the only `unsafe` code of the crate, and a thin layer over `Context`.
//!
//! Conventions (see include/zen_crdt.h for the full contract):
//! - every function returns `zen_status_t`; results go through out-parameters, written
//!   only on success; a failure changes nothing and leaves a message for
//!   `zen_last_error_message` on the calling thread;
//! - contexts and values are generational handles checked on every use: a freed, stale,
//!   foreign or wrong-kind handle is `ZEN_ERR_INVALID_HANDLE`, never undefined behaviour;
//! - strings cross as pointer + length (UTF-8, not NUL-terminated);
//! - a panic never crosses the boundary: it becomes `ZEN_ERR_PANIC` and poisons only the
//!   context it happened in;
//! - every call on one context may come from any thread: each context has its own lock.
#![allow(clippy::missing_safety_doc)]

mod context;
mod guard;
mod handles;
mod net;
mod status;
mod types;
mod value;

pub use context::*;
pub use net::*;
pub use status::zen_status_t;
pub use types::*;
pub use value::*;

use guard::{copy_out, guard, out};
use status::with_last_error;
use std::ffi::c_char;

/// Major version of the library (and of this header).
pub const ZEN_VERSION_MAJOR: u32 = 0;
/// Minor version.
pub const ZEN_VERSION_MINOR: u32 = 1;
/// Patch version.
pub const ZEN_VERSION_PATCH: u32 = 0;
/// Wire protocol version this build speaks.
pub const ZEN_PROTOCOL_VERSION: u32 = 1;

/// The library's version as `major << 16 | minor << 8 | patch`; compare with the
/// `ZEN_VERSION_*` macros to detect a header/library mismatch. Thread-safe.
#[no_mangle]
pub extern "C" fn zen_version() -> u32 {
    ZEN_VERSION_MAJOR << 16 | ZEN_VERSION_MINOR << 8 | ZEN_VERSION_PATCH
}

/// Copies the message of the last failed call on this thread into `buf` (`cap` bytes;
/// not NUL-terminated) and its length to `out_len`. `ZEN_ERR_BUFFER_TOO_SMALL` (with the
/// needed length in `out_len`) if it does not fit. The message is per thread and is
/// replaced by the next failure; successful calls leave it alone. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn zen_last_error_message(
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> zen_status_t {
    // Not through `guard`: a failure here must not replace the message being read.
    with_last_error(|msg| match unsafe { copy_out(msg.as_bytes(), buf.cast(), cap, out_len) } {
        Ok(()) => zen_status_t::ZEN_OK,
        Err(e) => e.status,
    })
}

/// Fills `out` with the default options. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn zen_options_default(out_opts: *mut zen_options_t) -> zen_status_t {
    guard(|| {
        *unsafe { out(out_opts, "out_opts") }? = context::options_out(&crate::Options::default());
        Ok(())
    })
}

/// Releases bytes the library allocated (`zen_context_poll_outbound_alloc`). Safe on a
/// zeroed `zen_bytes_t` and on NULL; sets the struct to zero so a second free is harmless.
#[no_mangle]
pub unsafe extern "C" fn zen_bytes_free(bytes: *mut zen_bytes_t) -> zen_status_t {
    guard(|| {
        let Some(b) = (unsafe { bytes.as_mut() }) else { return Ok(()) };
        if !b.ptr.is_null() {
            // SAFETY: ptr/len came from a Box<[u8]> leaked by this library.
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(b.ptr, b.len)) });
        }
        b.ptr = std::ptr::null_mut();
        b.len = 0;
        Ok(())
    })
}

/// Diagnostics, not for game code: measures the Rust core's own FastLocal vec3 set in
/// this build (1000 values, `samples` batches of one write each, median ns per call)
/// into `*out_ns`, so a benchmark can print what the C boundary adds. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn zen_diagnostics_core_set_vec3_ns(samples: u32, out_ns: *mut f64) -> zen_status_t {
    guard(|| {
        let slot = unsafe { out(out_ns, "out_ns") }?;
        let mut ctx = crate::Context::new(1, crate::Options::default())?;
        let hs = (0..1000)
            .map(|i| ctx.create(&format!("bench/{i}"), crate::ValueType::Vec3, Default::default()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut per_call = Vec::with_capacity(samples.max(1) as usize);
        for s in 0..samples.max(1) {
            let t = std::time::Instant::now();
            for (i, &h) in hs.iter().enumerate() {
                ctx.set(h, [i as f32, s as f32, 0.5])?;
            }
            per_call.push(t.elapsed().as_nanos() as f64 / hs.len() as f64);
            ctx.tick(16 * (s as u64 + 1));
            while ctx.poll_change().is_some() {}
        }
        per_call.sort_by(f64::total_cmp);
        *slot = per_call[per_call.len() / 2];
        Ok(())
    })
}

#[cfg(test)]
mod tests;

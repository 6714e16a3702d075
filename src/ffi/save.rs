//! C exports for saving a context and loading one back (bytes or an atomically written
//! file). The format and its rules (which peer id may load a save) are `crate::save`'s.

use super::boundary::{bytes, guard, out, sized_in, text, with_context, Out};
use super::handles;
use super::status::{zen_status_t, FfiError};
use super::types::*;
use crate::context::{Context, Options};

/// The options a load or `zen_context_new` was given: NULL for the defaults.
///
/// # Safety
/// `opts` NULL or as `sized_in`.
pub(super) unsafe fn options_arg(opts: *const zen_options_t) -> Result<Options, FfiError> {
    if opts.is_null() {
        return Ok(Options::default());
    }
    options_in(&unsafe { sized_in(opts, options_out(&Options::default()), "opts") }?)
}

/// Stores a loaded context in the handle table and hands its handle out.
fn hand_out(ctx: Result<Context, crate::Error>, slot: Out<zen_context_t>) -> Result<(), FfiError> {
    slot.set(zen_context_t { id: handles::insert(ctx?)? });
    Ok(())
}

/// Saves the whole state of `ctx` (every value, its policy, mode and the history later
/// writes merge with, and where the context stands on every peer's stream) into
/// library-owned memory: `*out_bytes` receives it; release it with `zen_bytes_free`.
/// Writes not yet ticked are saved as pending. Members and queued events are not saved.
/// Since 1.2.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_context_save(ctx: zen_context_t, out_bytes: *mut zen_bytes_t) -> zen_status_t {
    guard(|| {
        let slot = unsafe { out(out_bytes, "out_bytes") }?;
        let saved = with_context(ctx.id, |c| Ok(c.ctx.save()))?.into_boxed_slice();
        let len = saved.len();
        slot.set(zen_bytes_t { ptr: Box::into_raw(saved).cast(), len });
        Ok(())
    })
}

/// Creates a context for `peer_id` holding a saved state (`len` bytes from
/// `zen_context_save`), like `zen_context_new` (`opts` may be NULL; the caller owns
/// `*out_ctx`). Each value queues a `ZEN_CHANGE_CREATED` event. The context has no
/// members: add them as after any start.
///
/// Which id to load under: the id that saved it continues its stream, which is right
/// only for its latest save (saved on quit, loaded on start); a peer that may have sent
/// after saving, or another machine taking the state over, loads under an id that never
/// wrote in the save. An id that wrote in it but did not save it is
/// `ZEN_ERR_INVALID_ARGUMENT`. A corrupt, truncated or newer save is `ZEN_ERR_DECODE`, a
/// save over the options' limits `ZEN_ERR_TOO_LARGE` or `ZEN_ERR_INVALID_ARGUMENT`;
/// nothing is created then. Since 1.2.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_context_load(
    peer_id: u64,
    opts: *const zen_options_t,
    saved: *const u8,
    len: usize,
    out_ctx: *mut zen_context_t,
) -> zen_status_t {
    guard(|| {
        let slot = unsafe { out(out_ctx, "out_ctx") }?;
        let (options, saved) = unsafe { (options_arg(opts)?, bytes(saved, len, "saved")?) };
        hand_out(Context::load(peer_id, options, saved), slot)
    })
}

/// Saves `ctx` to the file at `path` (`path_len` bytes of UTF-8) atomically: written
/// beside it, flushed to disk, renamed over it; a crash leaves the old file or the new
/// one. `ZEN_ERR_IO` names the step that failed. Since 1.2.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_context_save_file(
    ctx: zen_context_t,
    path: *const std::ffi::c_char,
    path_len: usize,
) -> zen_status_t {
    guard(|| {
        let path = unsafe { text(path, path_len, "path") }?;
        let saved = with_context(ctx.id, |c| Ok(c.ctx.save()))?;
        crate::save::write_atomically(std::path::Path::new(path), &saved)?;
        Ok(())
    })
}

/// `zen_context_load` from a file `zen_context_save_file` wrote; a file that cannot be
/// read is `ZEN_ERR_IO`. Since 1.2.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_context_load_file(
    peer_id: u64,
    opts: *const zen_options_t,
    path: *const std::ffi::c_char,
    path_len: usize,
    out_ctx: *mut zen_context_t,
) -> zen_status_t {
    guard(|| {
        let slot = unsafe { out(out_ctx, "out_ctx") }?;
        let (options, path) = unsafe { (options_arg(opts)?, text(path, path_len, "path")?) };
        hand_out(Context::load_file(peer_id, options, path), slot)
    })
}

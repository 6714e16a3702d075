//! C exports for a context: options, lifecycle, membership, time and transport.

use super::boundary::{bytes, copy_out, guard, guard_infallible, out, reentrant, with_cell, with_context};
use super::handles;
use super::status::{set_last_error, zen_status_t};
use super::types::*;
use crate::context::{Context, Options};

/// Fills `*out_opts` with the default options, `struct_size` included. Thread-safe.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_options_default(out_opts: *mut zen_options_t) -> zen_status_t {
    guard(|| {
        unsafe { out(out_opts, "out_opts") }?.set(options_out(&Options::default()));
        Ok(())
    })
}

/// Fills `*out_opts` with the default value options (FastLocal, LastWriterWins),
/// `struct_size` included. Thread-safe.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_value_options_default(out_opts: *mut zen_value_options_t) -> zen_status_t {
    guard(|| {
        unsafe { out(out_opts, "out_opts") }?.set(value_options_default());
        Ok(())
    })
}

/// Creates a context for peer `peer_id` (1..2^53-1, unique in the session). `opts` may
/// be NULL for the defaults (else from `zen_options_default`). On success `*out_ctx`
/// holds the handle; the caller owns it and releases it with `zen_context_free`.
/// Thread-safe.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_context_new(
    peer_id: u64,
    opts: *const zen_options_t,
    out_ctx: *mut zen_context_t,
) -> zen_status_t {
    guard(|| {
        let slot = unsafe { out(out_ctx, "out_ctx") }?;
        let options = unsafe { super::save::options_arg(opts) }?;
        let ctx = Context::new(peer_id, options)?;
        slot.set(zen_context_t { id: handles::insert(ctx)? });
        Ok(())
    })
}

/// Frees a context and everything it owns (custom merges' cleanup functions run here).
/// Safe on a zeroed handle, on a freed one, and twice; handles of its values become
/// invalid. A call on the same context running concurrently on another thread completes
/// first; a thread waiting in `zen_value_wait_converged` on it wakes with
/// `ZEN_ERR_INVALID_HANDLE`. Called from inside a callback it does nothing (the reason
/// is in `zen_last_error`).
#[no_mangle]
pub extern "C" fn zen_context_free(ctx: zen_context_t) {
    guard_infallible((), || {
        if let Err(e) = reentrant() {
            set_last_error(&e.message);
            return;
        }
        if let Some(cell) = handles::remove(ctx.id) {
            cell.inner.lock().freed = true;
            cell.ticked.notify_all();
        }
    })
}

/// This context's peer id.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_context_peer_id(ctx: zen_context_t, out_id: *mut u64) -> zen_status_t {
    guard(|| {
        let slot = unsafe { out(out_id, "out_id") }?;
        slot.set(with_context(ctx.id, |c| Ok(c.ctx.peer_id()))?);
        Ok(())
    })
}

/// Advances the context to host time `now_ms` (monotonic milliseconds): flushes this
/// tick's writes into one outbound delta, applies received messages, updates membership
/// and sync states, queues change events. Call it at your tick rate (e.g. 60 Hz).
#[no_mangle]
#[must_use]
pub extern "C" fn zen_context_tick(ctx: zen_context_t, now_ms: u64) -> zen_status_t {
    guard(|| {
        let cell = handles::get(ctx.id)?;
        with_cell(&cell, |c| {
            c.ctx.tick(now_ms);
            Ok(())
        })?;
        cell.ticked.notify_all();
        Ok(())
    })
}

/// When the context next has work to do if nothing arrives and nothing is written, as
/// host time in ms (the clock `zen_context_tick` takes): a heartbeat, a retransmission
/// or catch-up timer, a member timing out, an idle value to hibernate. `*out_ms` is
/// `ZEN_NO_DEADLINE` when nothing is scheduled (no members, nothing idle), and never
/// earlier than the last tick's time: a pending local write, a membership change or a
/// received message makes it that time (tick now). A server or relay can sleep until
/// the earlier of this and the next receipt instead of ticking at a fixed rate; ticking
/// earlier is always harmless. Thread-safe. Since 1.1.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_context_next_deadline_ms(ctx: zen_context_t, out_ms: *mut u64) -> zen_status_t {
    guard(|| {
        let slot = unsafe { out(out_ms, "out_ms") }?;
        slot.set(with_context(ctx.id, |c| Ok(c.ctx.next_deadline_ms()))?.unwrap_or(super::ZEN_NO_DEADLINE));
        Ok(())
    })
}

/// Adds a member (your transport connected it). It blocks WaitForSync values until it
/// has acknowledged them and is caught up with a snapshot at the next tick.
#[no_mangle]
#[must_use]
pub extern "C" fn zen_context_add_peer(ctx: zen_context_t, peer_id: u64) -> zen_status_t {
    guard(|| with_context(ctx.id, |c| Ok(c.ctx.add_peer(peer_id)?)))
}

/// Removes a member (it left); it no longer blocks WaitForSync. `ZEN_ERR_UNKNOWN_PEER`
/// if it was not a member.
#[no_mangle]
#[must_use]
pub extern "C" fn zen_context_remove_peer(ctx: zen_context_t, peer_id: u64) -> zen_status_t {
    guard(|| with_context(ctx.id, |c| Ok(c.ctx.remove_peer(peer_id)?)))
}

/// Hands the context a message from the transport (`len` bytes at `data`, copied),
/// trusting the sender the message names: for transports that cannot tell who sent it
/// (prefer `zen_context_receive_from`). It is checked completely now; an error
/// (`ZEN_ERR_DECODE`, `ZEN_ERR_PROTOCOL_VERSION`, `ZEN_ERR_TOO_LARGE`,
/// `ZEN_ERR_UNKNOWN_PEER`, `ZEN_ERR_FORGED`) means it was rejected and counted and
/// nothing changed. Accepted messages take effect at the next tick. Typically called
/// from a network thread while the game thread ticks: that is safe.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_context_receive(
    ctx: zen_context_t,
    data: *const u8,
    len: usize,
) -> zen_status_t {
    guard(|| {
        let msg = unsafe { bytes(data, len, "data") }?;
        with_context(ctx.id, |c| Ok(c.ctx.receive(msg)?))
    })
}

/// `zen_context_receive` for transports that know which member sent the bytes (a
/// connection per peer, an authenticated relay): a message naming another sender than
/// `from_peer` is rejected with `ZEN_ERR_SENDER_MISMATCH` and counted, so no member can
/// write or acknowledge in another's name.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_context_receive_from(
    ctx: zen_context_t,
    from_peer: u64,
    data: *const u8,
    len: usize,
) -> zen_status_t {
    guard(|| {
        let msg = unsafe { bytes(data, len, "data") }?;
        with_context(ctx.id, |c| Ok(c.ctx.receive_from(from_peer, msg)?))
    })
}

/// Pops the next outbound message into the caller's buffer. `*out_has` is false when
/// there is none. `*out_to` is the destination peer, or 0 for "every member" (the same
/// bytes go to all, or through a relay). If `cap` is too small the call fails with
/// `ZEN_ERR_BUFFER_TOO_SMALL`, `*out_len` holds the size needed, and the message stays
/// queued for the next call.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_context_poll_outbound(
    ctx: zen_context_t,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
    out_to: *mut u64,
    out_has: *mut bool,
) -> zen_status_t {
    guard(|| {
        let (to_slot, has_slot) = unsafe { (out(out_to, "out_to")?, out(out_has, "out_has")?) };
        unsafe { out(out_len, "out_len") }?;
        with_context(ctx.id, |c| {
            let Some(msg) = c.held_out.take().or_else(|| c.ctx.poll_outbound()) else {
                has_slot.set(false);
                unsafe { *out_len = 0 };
                return Ok(());
            };
            if let Err(e) = unsafe { copy_out(&msg.bytes, buf, cap, out_len) } {
                c.held_out = Some(msg);
                return Err(e);
            }
            to_slot.set(msg.to.unwrap_or(0));
            has_slot.set(true);
            Ok(())
        })
    })
}

/// Pops the next outbound message into library-owned memory: `*out_msg` receives it
/// (release with `zen_bytes_free`), `*out_to` its destination (0 = every member).
/// `*out_has` is false (and `*out_msg` zeroed) when there is none.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_context_poll_outbound_alloc(
    ctx: zen_context_t,
    out_msg: *mut zen_bytes_t,
    out_to: *mut u64,
    out_has: *mut bool,
) -> zen_status_t {
    guard(|| {
        let (msg_slot, to_slot, has_slot) =
            unsafe { (out(out_msg, "out_msg")?, out(out_to, "out_to")?, out(out_has, "out_has")?) };
        let msg = with_context(ctx.id, |c| Ok(c.held_out.take().or_else(|| c.ctx.poll_outbound())))?;
        match msg {
            None => {
                msg_slot.set(zen_bytes_t { ptr: std::ptr::null_mut(), len: 0 });
                has_slot.set(false);
            }
            Some(m) => {
                let boxed = m.bytes.into_boxed_slice();
                let len = boxed.len();
                msg_slot.set(zen_bytes_t { ptr: Box::into_raw(boxed).cast(), len });
                to_slot.set(m.to.unwrap_or(0));
                has_slot.set(true);
            }
        }
        Ok(())
    })
}

/// Releases bytes the library allocated (`zen_context_poll_outbound_alloc`). Safe on
/// NULL and on a zeroed `zen_bytes_t`; zeroes the struct, so a second free is harmless.
#[no_mangle]
pub unsafe extern "C" fn zen_bytes_free(bytes: *mut zen_bytes_t) {
    guard_infallible((), || {
        let Some(b) = (unsafe { bytes.as_mut() }) else { return };
        if !b.ptr.is_null() {
            // SAFETY: ptr/len came from a Box<[u8]> leaked by this library.
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(b.ptr, b.len)) });
        }
        b.ptr = std::ptr::null_mut();
        b.len = 0;
    })
}

//! C exports for a context: lifecycle, membership, time, transport, events, metrics,
//! custom merges.

use super::guard::{bytes, copy_out, guard, out, text, with_cell, with_context, IN_CALLBACK};
use super::handles;
use super::status::{zen_status_t, FfiError};
use super::types::*;
use crate::context::{Context, Options};
use crate::policy::{Candidate, MergeFn};
use crate::value::Value;
use std::ffi::{c_char, c_void};
use std::sync::Arc;

/// A context handle: 0 is never valid. Obtained from `zen_context_new`, released with
/// `zen_context_free`.
#[allow(non_camel_case_types)]
pub type zen_context_t = u64;

pub(crate) fn options_out(o: &Options) -> zen_options_t {
    zen_options_t {
        tick_interval_ms: o.tick_interval_ms,
        peer_timeout_ms: o.peer_timeout_ms,
        heartbeat_ms: o.heartbeat_ms,
        max_message_bytes: o.max_message_bytes as u64,
        max_value_bytes: o.max_value_bytes as u64,
        max_id_bytes: o.max_id_bytes as u64,
        event_capacity: o.event_capacity as u64,
        hibernate_after_ms: o.hibernate_after_ms,
        max_values: o.max_values as u64,
    }
}

fn options_in(o: &zen_options_t) -> Result<Options, FfiError> {
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
    })
}

/// Creates a context for peer `peer_id` (1..2^53-1, unique in the session). `opts` may
/// be NULL for the defaults. On success `*out_ctx` holds the handle; the caller owns it
/// and releases it with `zen_context_free`. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn zen_context_new(
    peer_id: u64,
    opts: *const zen_options_t,
    out_ctx: *mut zen_context_t,
) -> zen_status_t {
    guard(|| {
        let slot = unsafe { out(out_ctx, "out_ctx") }?;
        let options = match unsafe { opts.as_ref() } {
            Some(o) => options_in(o)?,
            None => Options::default(),
        };
        let ctx = Context::new(peer_id, options)?;
        *slot = handles::insert(ctx);
        Ok(())
    })
}

/// Frees a context and everything it owns (custom merges' cleanup functions run here).
/// Safe on 0, on a freed handle, and twice; handles of its values become invalid. A call
/// on the same context running concurrently on another thread completes first.
#[no_mangle]
pub extern "C" fn zen_context_free(ctx: zen_context_t) -> zen_status_t {
    guard(|| {
        if let Some(cell) = handles::remove(ctx) {
            cell.inner.lock().freed = true;
            cell.ticked.notify_all();
        }
        Ok(())
    })
}

/// This context's peer id.
#[no_mangle]
pub unsafe extern "C" fn zen_context_peer_id(ctx: zen_context_t, out_id: *mut u64) -> zen_status_t {
    guard(|| {
        let slot = unsafe { out(out_id, "out_id") }?;
        *slot = with_context(ctx, |c| Ok(c.ctx.peer_id()))?;
        Ok(())
    })
}

/// Advances the context to host time `now_ms` (monotonic milliseconds): flushes this
/// tick's writes into one outbound delta, applies received messages, updates membership
/// and sync states, queues change events. Call it at your tick rate (e.g. 60 Hz).
#[no_mangle]
pub extern "C" fn zen_context_tick(ctx: zen_context_t, now_ms: u64) -> zen_status_t {
    guard(|| {
        let cell = handles::get(ctx)?;
        with_cell(&cell, |c| {
            c.ctx.tick(now_ms);
            Ok(())
        })?;
        cell.ticked.notify_all();
        Ok(())
    })
}

/// Adds a member (your transport connected it). It blocks WaitForSync values until it
/// has acknowledged them and is caught up with a snapshot at the next tick.
#[no_mangle]
pub extern "C" fn zen_context_add_peer(ctx: zen_context_t, peer_id: u64) -> zen_status_t {
    guard(|| with_context(ctx, |c| Ok(c.ctx.add_peer(peer_id)?)))
}

/// Removes a member (it left); it no longer blocks WaitForSync. `ZEN_ERR_UNKNOWN_PEER`
/// if it was not a member.
#[no_mangle]
pub extern "C" fn zen_context_remove_peer(ctx: zen_context_t, peer_id: u64) -> zen_status_t {
    guard(|| with_context(ctx, |c| Ok(c.ctx.remove_peer(peer_id)?)))
}

/// Hands the context a message from the transport (`len` bytes at `data`, copied). It is
/// checked completely now; an error (`ZEN_ERR_DECODE`, `ZEN_ERR_PROTOCOL_VERSION`,
/// `ZEN_ERR_TOO_LARGE`, `ZEN_ERR_UNKNOWN_PEER`) means it was rejected and counted and
/// nothing changed. Accepted messages take effect at the next tick. Typically called
/// from a network thread while the game thread ticks: that is safe.
#[no_mangle]
pub unsafe extern "C" fn zen_context_receive(
    ctx: zen_context_t,
    data: *const u8,
    len: usize,
) -> zen_status_t {
    guard(|| {
        let msg = unsafe { bytes(data, len, "data") }?;
        with_context(ctx, |c| Ok(c.ctx.receive(msg)?))
    })
}

/// Pops the next outbound message into the caller's buffer. `*out_has` is false when
/// there is none. `*out_to` is the destination peer, or 0 for "every member" (the same
/// bytes go to all, or through a relay). If `cap` is too small the call fails with
/// `ZEN_ERR_BUFFER_TOO_SMALL`, `*out_len` holds the size needed, and the message stays
/// queued for the next call.
#[no_mangle]
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
        with_context(ctx, |c| {
            let Some(msg) = c.held_out.take().or_else(|| c.ctx.poll_outbound()) else {
                *has_slot = false;
                unsafe { *out_len = 0 };
                return Ok(());
            };
            if let Err(e) = unsafe { copy_out(&msg.bytes, buf, cap, out_len) } {
                c.held_out = Some(msg);
                return Err(e);
            }
            *to_slot = msg.to.unwrap_or(0);
            *has_slot = true;
            Ok(())
        })
    })
}

/// Pops the next outbound message into library-owned memory: `*out_msg` receives it
/// (release with `zen_bytes_free`), `*out_to` its destination (0 = every member).
/// `*out_has` is false (and `*out_msg` zeroed) when there is none.
#[no_mangle]
pub unsafe extern "C" fn zen_context_poll_outbound_alloc(
    ctx: zen_context_t,
    out_msg: *mut zen_bytes_t,
    out_to: *mut u64,
    out_has: *mut bool,
) -> zen_status_t {
    guard(|| {
        let (msg_slot, to_slot, has_slot) =
            unsafe { (out(out_msg, "out_msg")?, out(out_to, "out_to")?, out(out_has, "out_has")?) };
        let msg = with_context(ctx, |c| Ok(c.held_out.take().or_else(|| c.ctx.poll_outbound())))?;
        match msg {
            None => {
                *msg_slot = zen_bytes_t { ptr: std::ptr::null_mut(), len: 0 };
                *has_slot = false;
            }
            Some(m) => {
                let boxed = m.bytes.into_boxed_slice();
                let len = boxed.len();
                *msg_slot = zen_bytes_t { ptr: Box::into_raw(boxed).cast(), len };
                *to_slot = m.to.unwrap_or(0);
                *has_slot = true;
            }
        }
        Ok(())
    })
}

/// Pops the next change event into `*out_change`; `*out_has` is false when the queue is
/// empty. Strings and bytes inside the event borrow library memory valid until the next
/// `zen_context_poll_change` on this context or `zen_context_free`.
#[no_mangle]
pub unsafe extern "C" fn zen_context_poll_change(
    ctx: zen_context_t,
    out_change: *mut zen_change_t,
    out_has: *mut bool,
) -> zen_status_t {
    guard(|| {
        let (slot, has_slot) = unsafe { (out(out_change, "out_change")?, out(out_has, "out_has")?) };
        with_context(ctx, |c| {
            c.last_event = c.ctx.poll_change();
            let Some(ev) = &c.last_event else {
                *has_slot = false;
                return Ok(());
            };
            *slot = zen_change_t {
                value: super::value::value_out(ev.value),
                kind: kind_out(ev.kind),
                state: state_out(ev.state),
                is_correction: ev.is_correction,
                origin: ev.origin,
                time_ms: ev.time_ms,
                old_value: data_out(ev.old.as_ref()),
                new_value: data_out(ev.new.as_ref()),
            };
            *has_slot = true;
            Ok(())
        })
    })
}

/// Copies the context's metrics into `*out_metrics`.
#[no_mangle]
pub unsafe extern "C" fn zen_context_metrics(
    ctx: zen_context_t,
    out_metrics: *mut zen_metrics_t,
) -> zen_status_t {
    guard(|| {
        let slot = unsafe { out(out_metrics, "out_metrics") }?;
        let m = with_context(ctx, |c| Ok(c.ctx.metrics()))?;
        *slot = zen_metrics_t {
            messages_out: m.messages_out,
            bytes_out: m.bytes_out,
            messages_in: m.messages_in,
            bytes_in: m.bytes_in,
            messages_rejected: m.messages_rejected,
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
        };
        Ok(())
    })
}

/// Acknowledgement lag of member number `index` (0 .. `zen_metrics_t.peers` - 1).
#[no_mangle]
pub unsafe extern "C" fn zen_context_peer_lag(
    ctx: zen_context_t,
    index: u64,
    out_lag: *mut zen_peer_lag_t,
) -> zen_status_t {
    guard(|| {
        let slot = unsafe { out(out_lag, "out_lag") }?;
        let peers = with_context(ctx, |c| Ok(c.ctx.metrics().peers))?;
        let p = peers.get(index as usize).ok_or_else(|| {
            FfiError::new(
                zen_status_t::ZEN_ERR_INVALID_ARGUMENT,
                format!("peer index {index} >= {}", peers.len()),
            )
        })?;
        *slot = zen_peer_lag_t {
            peer: p.peer,
            active: p.active,
            unacked_messages: p.unacked_messages,
            ack_lag_ms: p.ack_lag_ms,
            rtt_ms: p.rtt_ms,
        };
        Ok(())
    })
}

/// A host merge callback and its user data, owned by the context's merge table.
struct HostMerge {
    f: unsafe extern "C" fn(
        *mut c_void,
        *const zen_candidate_t,
        usize,
        *mut zen_value_data_t,
    ) -> zen_status_t,
    user_data: *mut c_void,
    cleanup: zen_free_fn,
}

// SAFETY: the host promises (header) that its callback and user data may be used from
// the thread that ticks the context; the library never calls it concurrently with itself
// for one context (the context lock is held).
unsafe impl Send for HostMerge {}
unsafe impl Sync for HostMerge {}

impl Drop for HostMerge {
    fn drop(&mut self) {
        if let Some(cleanup) = self.cleanup {
            unsafe { cleanup(self.user_data) };
        }
    }
}

impl HostMerge {
    fn call(&self, cands: &[Candidate]) -> Option<Value> {
        let c: Vec<zen_candidate_t> = cands
            .iter()
            .map(|c| zen_candidate_t { writer: c.writer, clock: c.clock, value: data_out(Some(c.value)) })
            .collect();
        let mut result = data_out(None);
        IN_CALLBACK.with(|f| f.set(true));
        let status = unsafe { (self.f)(self.user_data, c.as_ptr(), c.len(), &mut result) };
        IN_CALLBACK.with(|f| f.set(false));
        if status != zen_status_t::ZEN_OK {
            return None;
        }
        unsafe { data_in(&result) }.ok()
    }
}

/// Registers `merge` as the custom policy named `name` (`name_len` bytes of UTF-8) for
/// this context. Every peer must register the same deterministic function under the
/// same name. `user_data` is passed to every call; `cleanup` (may be NULL) receives it
/// when the merge is replaced or the context freed. Replacing a name is allowed.
#[no_mangle]
pub unsafe extern "C" fn zen_context_register_merge(
    ctx: zen_context_t,
    name: *const c_char,
    name_len: usize,
    merge: zen_merge_fn,
    user_data: *mut c_void,
    cleanup: zen_free_fn,
) -> zen_status_t {
    guard(|| {
        let name = unsafe { text(name, name_len, "name") }?;
        let f = merge.ok_or_else(|| FfiError::new(zen_status_t::ZEN_ERR_NULL_ARGUMENT, "merge is NULL"))?;
        if name.is_empty() {
            return Err(FfiError::new(zen_status_t::ZEN_ERR_INVALID_ARGUMENT, "merge name is empty"));
        }
        // Built inside the lock: if the handle is bad, nothing owns user_data and
        // cleanup is not called (a failed call changes nothing).
        with_context(ctx, |c| {
            let host = Arc::new(HostMerge { f, user_data, cleanup });
            let mf: MergeFn = Arc::new(move |cands| host.call(cands));
            c.ctx.register_merge(name, mf);
            Ok(())
        })
    })
}

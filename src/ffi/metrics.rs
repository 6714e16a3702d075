//! C exports for what a context measures about itself: counters, latency, peer lag.

use super::boundary::{guard, out, sized_out, with_context};
use super::status::{zen_status_t, FfiError};
use super::types::*;

/// Copies the context's metrics into `*out_metrics`, whose `struct_size` the caller sets
/// to `sizeof(zen_metrics_t)` first.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_context_metrics(
    ctx: zen_context_t,
    out_metrics: *mut zen_metrics_t,
) -> zen_status_t {
    guard(|| {
        let m = with_context(ctx.id, |c| Ok(c.ctx.metrics()))?;
        unsafe { sized_out(out_metrics, metrics_out(&m), "out_metrics") }
    })
}

/// Acknowledgement lag of member number `index` (0 .. `zen_metrics_t.peers` - 1).
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_context_peer_lag(
    ctx: zen_context_t,
    index: u64,
    out_lag: *mut zen_peer_lag_t,
) -> zen_status_t {
    guard(|| {
        let slot = unsafe { out(out_lag, "out_lag") }?;
        let peers = with_context(ctx.id, |c| Ok(c.ctx.metrics().peers))?;
        let p = peers.get(index as usize).ok_or_else(|| {
            FfiError::new(
                zen_status_t::ZEN_ERR_INVALID_ARGUMENT,
                format!("peer index {index} >= {}", peers.len()),
            )
        })?;
        slot.set(zen_peer_lag_t {
            peer: p.peer,
            active: p.active,
            unacked_messages: p.unacked_messages,
            ack_lag_ms: p.ack_lag_ms,
            rtt_ms: p.rtt_ms,
        });
        Ok(())
    })
}

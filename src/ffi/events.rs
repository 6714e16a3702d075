//! C export for change events: the polled queue (no re-entrant callbacks, ever).

use super::boundary::{guard, out, with_context};
use super::status::zen_status_t;
use super::types::*;

/// Pops the next change event into `*out_change`; `*out_has` is false when the queue is
/// empty. Strings and bytes inside the event borrow library memory valid until the next
/// `zen_context_poll_change` on this context or `zen_context_free`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_context_poll_change(
    ctx: zen_context_t,
    out_change: *mut zen_change_t,
    out_has: *mut bool,
) -> zen_status_t {
    guard(|| {
        let (slot, has_slot) = unsafe { (out(out_change, "out_change")?, out(out_has, "out_has")?) };
        with_context(ctx.id, |c| {
            c.last_event = c.ctx.poll_change();
            let Some(ev) = &c.last_event else {
                has_slot.set(false);
                return Ok(());
            };
            slot.set(zen_change_t {
                value: ev.value.into(),
                kind: kind_out(ev.kind),
                state: state_out(ev.state),
                is_correction: ev.is_correction,
                is_initial: ev.is_initial,
                owner_changed: ev.owner_changed,
                origin: ev.origin,
                time_ms: ev.time_ms,
                old_value: data_out(ev.old.as_ref()),
                new_value: data_out(ev.new.as_ref()),
            });
            has_slot.set(true);
            Ok(())
        })
    })
}

//! C exports for tables (1.5): open, set, remove, get, length, a snapshot to iterate,
//! mode, and the polled table events.

use super::boundary::{arg, guard, out, sized_in, text, with_context};
use super::status::{zen_status_t, FfiError};
use super::types::*;
use crate::collection::Key;
use crate::context::TableOptions;
use crate::value::Value;
use std::ffi::c_char;

/// Reads a caller's key.
unsafe fn key_in(key: *const zen_key_t) -> Result<Key, FfiError> {
    let k = unsafe { arg(key, "key") }?;
    match k.kind {
        0 => Ok(Key::Int(k.int_key)),
        1 if k.str.is_null() && k.str_len == 0 => Ok(Key::Str(String::new())),
        1 => Ok(Key::Str(unsafe { text(k.str, k.str_len, "key->str") }?.to_string())),
        n => Err(FfiError::new(
            zen_status_t::ZEN_ERR_INVALID_ARGUMENT,
            format!("key->kind is {n}: it must be ZEN_KEY_INT (0) or ZEN_KEY_STRING (1)"),
        )),
    }
}

/// Reads the caller's tagged value `data` (named `what` in errors) and runs `f` with it
/// on the context.
unsafe fn with_data_in<R>(
    ctx: zen_context_t,
    data: *const zen_value_data_t,
    what: &str,
    f: impl FnOnce(&mut crate::context::Context, Value) -> Result<R, crate::error::Error>,
) -> Result<R, FfiError> {
    let d = unsafe { arg(data, what) }?;
    let v = unsafe { data_in(d) }?;
    with_context(ctx.id, |c| Ok(f(&mut c.ctx, v)?))
}

/// Fills `*out_opts` with the default table options (FastLocal, LastWriterWins),
/// `struct_size` included. Thread-safe. (1.5)
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_table_options_default(out_opts: *mut zen_table_options_t) -> zen_status_t {
    guard(|| {
        unsafe { out(out_opts, "out_opts") }?.set(table_options_default());
        Ok(())
    })
}

/// Opens table `id` (`id_len` bytes of UTF-8), whose entries hold values of type
/// `value_type` (a `zen_value_type_t`): created if new here, the same table as a peer's
/// of that id. `opts` may be NULL for the defaults. Keys are integers or strings
/// (`zen_key_t`); each entry is a register with the table's policy (its inserter's, on
/// every peer) and this context's mode. Table ids and value ids are separate names.
/// `ZEN_ERR_WRONG_TYPE` when the table holds entries of another type. (1.5)
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_table_open(
    ctx: zen_context_t,
    id: *const c_char,
    id_len: usize,
    value_type: u32,
    opts: *const zen_table_options_t,
    out_table: *mut zen_table_t,
) -> zen_status_t {
    guard(|| {
        let slot = unsafe { out(out_table, "out_table") }?;
        let id = unsafe { text(id, id_len, "id") }?;
        let ty = value_type_in(value_type)?;
        let opts = unsafe { table_options_in(opts) }?;
        slot.set(with_context(ctx.id, |c| Ok(c.ctx.open_table(id, ty, opts)?.into()))?);
        Ok(())
    })
}

/// The options `opts` points at (NULL: the defaults), checked.
unsafe fn table_options_in(opts: *const zen_table_options_t) -> Result<TableOptions, FfiError> {
    let o = if opts.is_null() {
        table_options_default()
    } else {
        unsafe { sized_in(opts, table_options_default(), "opts") }?
    };
    let custom = if o.policy == zen_policy_t::ZEN_POLICY_CUSTOM as u32 {
        Some(unsafe { text(o.custom_name, o.custom_name_len, "opts->custom_name") }?)
    } else {
        None
    };
    let owner = (o.owner != 0).then_some(o.owner);
    Ok(TableOptions { mode: mode_in(o.mode)?, policy: policy_in(o.policy, custom)?, owner })
}

/// The owner of an owner-only table, set or sequence as this context knows it, to
/// `out_owner`; 0 for one anyone may write. Writes here succeed when it is 0 or this
/// context's own id. (1.5)
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_table_owner(
    ctx: zen_context_t,
    table: zen_table_t,
    out_owner: *mut u64,
) -> zen_status_t {
    guard(|| {
        let slot = unsafe { out(out_owner, "out_owner") }?;
        slot.set(with_context(ctx.id, |c| Ok(c.ctx.table_owner(table.to_core())?))?.unwrap_or(0));
        Ok(())
    })
}

/// Gives an owner-only table, set or sequence to peer `to` (a member or not). From now on
/// this context may not write it: a `ZEN_TABLE_OWNER_CHANGED` event is queued here at once
/// and on every peer when the transfer arrives; the entries stay as they are.
/// `ZEN_ERR_NOT_OWNER` unless this context owns it; `ZEN_ERR_INVALID_ARGUMENT` for one
/// anyone may write or an invalid peer id. Transferring to oneself does nothing. (1.5)
#[no_mangle]
#[must_use]
pub extern "C" fn zen_table_transfer(ctx: zen_context_t, table: zen_table_t, to: u64) -> zen_status_t {
    guard(|| with_context(ctx.id, |c| Ok(c.ctx.transfer_table(table.to_core(), to)?)))
}

/// Writes `*data` under `*key`: inserts the key where it shows no entry, else updates
/// its entry. FastLocal: reads show it at once and `ZEN_TABLE_ADDED` or
/// `ZEN_TABLE_MODIFIED` is queued; WaitForSync: once every member holds it. A removal
/// concurrent with an update wins; concurrent inserts of one key show the same one on
/// every peer. `ZEN_ERR_WRONG_TYPE` for data of another type, `ZEN_ERR_TOO_LARGE` for a
/// key that makes the entry's id longer than `max_id_bytes`. (1.5)
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_table_set(
    ctx: zen_context_t,
    table: zen_table_t,
    key: *const zen_key_t,
    data: *const zen_value_data_t,
) -> zen_status_t {
    guard(|| {
        let key = unsafe { key_in(key) }?;
        unsafe { with_data_in(ctx, data, "data", |c, v| c.table_set(table.to_core(), key, v)) }
    })
}

/// model_citizen's `touch(key, value)`: when `*key` shows `*data`, re-announces it
/// unchanged, so every peer (this one at once) queues `ZEN_TABLE_TOUCHED` ("same value,
/// act again"); otherwise writes it as `zen_table_set` does. Errors as for
/// `zen_table_set`. (1.5)
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_table_touch(
    ctx: zen_context_t,
    table: zen_table_t,
    key: *const zen_key_t,
    data: *const zen_value_data_t,
) -> zen_status_t {
    guard(|| {
        let key = unsafe { key_in(key) }?;
        unsafe { with_data_in(ctx, data, "data", |c, v| c.table_touch(table.to_core(), key, v)) }
    })
}

/// Removes `*key` on every peer. `*out_removed` (may be NULL) says whether the key
/// showed an entry here. (1.5)
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_table_remove(
    ctx: zen_context_t,
    table: zen_table_t,
    key: *const zen_key_t,
    out_removed: *mut bool,
) -> zen_status_t {
    guard(|| {
        let key = unsafe { key_in(key) }?;
        let slot =
            if out_removed.is_null() { None } else { Some(unsafe { out(out_removed, "out_removed") }?) };
        let removed = with_context(ctx.id, |c| Ok(c.ctx.table_remove(table.to_core(), key)?))?;
        if let Some(slot) = slot {
            slot.set(removed);
        }
        Ok(())
    })
}

/// Reads what `*key` shows (by the table's mode) into `*out_data`; `*out_has` is false
/// (and `out_data` ZEN_TYPE_NONE) when the key shows no entry. String and bytes
/// pointers borrow library memory valid until the next `zen_table_get` or
/// `zen_table_entries` on this context. (1.5)
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_table_get(
    ctx: zen_context_t,
    table: zen_table_t,
    key: *const zen_key_t,
    out_data: *mut zen_value_data_t,
    out_has: *mut bool,
) -> zen_status_t {
    guard(|| {
        let key = unsafe { key_in(key) }?;
        let (slot, has) = unsafe { (out(out_data, "out_data")?, out(out_has, "out_has")?) };
        with_context(ctx.id, |c| {
            let read = c.ctx.table_get(table.to_core(), key)?;
            has.set(read.is_some());
            c.table_read = read;
            slot.set(data_out(c.table_read.as_ref()));
            Ok(())
        })
    })
}

/// Number of keys that show an entry. (1.5)
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_table_len(
    ctx: zen_context_t,
    table: zen_table_t,
    out_len: *mut usize,
) -> zen_status_t {
    guard(|| {
        let slot = unsafe { out(out_len, "out_len") }?;
        slot.set(with_context(ctx.id, |c| Ok(c.ctx.table_len(table.to_core())?))?);
        Ok(())
    })
}

/// Takes a snapshot of every key that shows an entry, sorted by key (integer keys
/// first), into the context; `*out_count` is how many. Read them with
/// `zen_table_entry_at`. The snapshot stays until the next `zen_table_entries` or
/// `zen_table_get` on this context: the table may change meanwhile, the snapshot does
/// not. (1.5)
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_table_entries(
    ctx: zen_context_t,
    table: zen_table_t,
    out_count: *mut usize,
) -> zen_status_t {
    guard(|| {
        let slot = unsafe { out(out_count, "out_count") }?;
        with_context(ctx.id, |c| {
            c.table_snapshot = c.ctx.table_entries(table.to_core())?;
            slot.set(c.table_snapshot.len());
            Ok(())
        })
    })
}

/// Entry number `index` (0 .. count - 1) of the last `zen_table_entries` snapshot:
/// its key and value, borrowing the snapshot's memory (valid until the next
/// `zen_table_entries` or `zen_table_get` on this context). (1.5)
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_table_entry_at(
    ctx: zen_context_t,
    index: usize,
    out_key: *mut zen_key_t,
    out_data: *mut zen_value_data_t,
) -> zen_status_t {
    guard(|| {
        let (k, d) = unsafe { (out(out_key, "out_key")?, out(out_data, "out_data")?) };
        with_context(ctx.id, |c| {
            let (key, value) = c.table_snapshot.get(index).ok_or_else(|| {
                FfiError::new(
                    zen_status_t::ZEN_ERR_INVALID_ARGUMENT,
                    format!(
                        "entry index {index} >= {} in the last zen_table_entries snapshot",
                        c.table_snapshot.len()
                    ),
                )
            })?;
            k.set(key_out(key));
            d.set(data_out(Some(value)));
            Ok(())
        })
    })
}

/// Switches how every entry of the table shows writes (a `zen_mode_t`); events for
/// keys whose reads change. (1.5)
#[no_mangle]
#[must_use]
pub extern "C" fn zen_table_set_mode(ctx: zen_context_t, table: zen_table_t, mode: u32) -> zen_status_t {
    guard(|| {
        let mode = mode_in(mode)?;
        with_context(ctx.id, |c| Ok(c.ctx.set_table_mode(table.to_core(), mode)?))
    })
}

/// Pops the next table event into `*out_change`; `*out_has` is false when none waits.
/// A queue of its own beside `zen_context_poll_change`'s (same capacity and merging).
/// Borrowed pointers inside stay valid until the next call of this on the context.
/// (1.5)
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_context_poll_table_change(
    ctx: zen_context_t,
    out_change: *mut zen_table_change_t,
    out_has: *mut bool,
) -> zen_status_t {
    guard(|| {
        let (slot, has_slot) = unsafe { (out(out_change, "out_change")?, out(out_has, "out_has")?) };
        with_context(ctx.id, |c| {
            c.last_table_event = c.ctx.poll_table_change();
            let Some(ev) = &c.last_table_event else {
                has_slot.set(false);
                return Ok(());
            };
            slot.set(zen_table_change_t {
                table: ev.table.into(),
                kind: table_kind_out(ev.kind),
                state: state_out(ev.state),
                is_correction: ev.is_correction,
                is_initial: ev.is_initial,
                origin: ev.origin,
                time_ms: ev.time_ms,
                index: ev.index.map_or(-1, |i| i as i64),
                key: key_out(&ev.key),
                old_value: data_out(ev.old.as_ref()),
                new_value: data_out(ev.new.as_ref()),
            });
            has_slot.set(true);
            Ok(())
        })
    })
}

/// Opens set `id` of members of type `value_type` (a `zen_value_type_t`), created if new
/// here (a peer's set of that id is the same set; a set and a table may share a name).
/// `opts` as for `zen_table_open` (NULL: the defaults; its policy is ignored: members
/// have no conflicting updates). The handle is a `zen_table_t`: `zen_table_len`,
/// `zen_table_entries` (each entry's value is the member), `zen_table_set_mode` and the
/// table events (`ZEN_TABLE_ADDED` with the member as `new_value`, `ZEN_TABLE_REMOVED`
/// with it as `old_value`) serve sets too; the table calls that write or read by key
/// refuse a set with `ZEN_ERR_WRONG_TYPE`. (1.5)
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_set_open(
    ctx: zen_context_t,
    id: *const c_char,
    id_len: usize,
    value_type: u32,
    opts: *const zen_table_options_t,
    out_set: *mut zen_table_t,
) -> zen_status_t {
    guard(|| {
        let slot = unsafe { out(out_set, "out_set") }?;
        let id = unsafe { text(id, id_len, "id") }?;
        let ty = value_type_in(value_type)?;
        let opts = unsafe { table_options_in(opts) }?;
        slot.set(with_context(ctx.id, |c| Ok(c.ctx.open_set(id, ty, opts)?.into()))?);
        Ok(())
    })
}

/// Adds `*member` on every peer. Add wins: an add concurrent with a removal of the same
/// member leaves it in; adding a member already in refreshes it (so it wins too).
/// `ZEN_ERR_WRONG_TYPE` for a member of another type or a table handle. (1.5)
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_set_add(
    ctx: zen_context_t,
    set: zen_table_t,
    member: *const zen_value_data_t,
) -> zen_status_t {
    guard(|| unsafe { with_data_in(ctx, member, "member", |c, v| c.set_add(set.to_core(), v)) })
}

/// Re-announces `*member` if it is in the set (`ZEN_TABLE_TOUCHED` on every peer), else
/// adds it. (1.5)
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_set_touch(
    ctx: zen_context_t,
    set: zen_table_t,
    member: *const zen_value_data_t,
) -> zen_status_t {
    guard(|| unsafe { with_data_in(ctx, member, "member", |c, v| c.set_touch(set.to_core(), v)) })
}

/// Removes `*member` on every peer (the adds of it this context has seen).
/// `*out_removed` (may be NULL) says whether it was in the set here. (1.5)
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_set_remove(
    ctx: zen_context_t,
    set: zen_table_t,
    member: *const zen_value_data_t,
    out_removed: *mut bool,
) -> zen_status_t {
    guard(|| {
        let slot =
            if out_removed.is_null() { None } else { Some(unsafe { out(out_removed, "out_removed") }?) };
        let removed = unsafe { with_data_in(ctx, member, "member", |c, v| c.set_remove(set.to_core(), v)) }?;
        if let Some(slot) = slot {
            slot.set(removed);
        }
        Ok(())
    })
}

/// Whether `*member` is in the set (by the set's mode). (1.5)
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_set_contains(
    ctx: zen_context_t,
    set: zen_table_t,
    member: *const zen_value_data_t,
    out_contains: *mut bool,
) -> zen_status_t {
    guard(|| {
        let slot = unsafe { out(out_contains, "out_contains") }?;
        slot.set(unsafe { with_data_in(ctx, member, "member", |c, v| c.set_contains(set.to_core(), v)) }?);
        Ok(())
    })
}

/// The sync state (a `zen_sync_state_t`) of a table, set or sequence as a whole:
/// LOCAL_ONLY while any entry has a write no peer has (or there are no peers),
/// CONFLICTED or SYNCING while any entry is, CONVERGED once every member holds every
/// entry's latest state. (1.5)
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_table_state(
    ctx: zen_context_t,
    table: zen_table_t,
    out_state: *mut u32,
) -> zen_status_t {
    guard(|| {
        let slot = unsafe { out(out_state, "out_state") }?;
        let state = with_context(ctx.id, |c| Ok(c.ctx.table_state(table.to_core())?))?;
        slot.set(state_out(state) as u32);
        Ok(())
    })
}

/// What the handle names (a `zen_collection_kind_t`: table, set or sequence). (1.5)
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_table_kind(
    ctx: zen_context_t,
    table: zen_table_t,
    out_kind: *mut u32,
) -> zen_status_t {
    guard(|| {
        let slot = unsafe { out(out_kind, "out_kind") }?;
        let kind = with_context(ctx.id, |c| Ok(c.ctx.collection_kind(table.to_core())?))?;
        slot.set(collection_kind_out(kind) as u32);
        Ok(())
    })
}

/// Opens sequence `id` of items of type `value_type` (a `zen_value_type_t`), created if
/// new here (a peer's of that id is the same sequence; tables, sets and sequences may
/// share a name). `opts` as for `zen_table_open` (NULL: the defaults; the policy
/// resolves concurrent `zen_seq_set`s of one item). The handle is a `zen_table_t`:
/// `zen_table_len`, `zen_table_entries` (in order; each key is the item's position, an
/// opaque string), `zen_table_set_mode` and the table events, whose `index` says where
/// the item is (or was), serve sequences too. Concurrent inserts at one place keep both
/// items, in one order on every peer. (1.5)
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_seq_open(
    ctx: zen_context_t,
    id: *const c_char,
    id_len: usize,
    value_type: u32,
    opts: *const zen_table_options_t,
    out_seq: *mut zen_table_t,
) -> zen_status_t {
    guard(|| {
        let slot = unsafe { out(out_seq, "out_seq") }?;
        let id = unsafe { text(id, id_len, "id") }?;
        let ty = value_type_in(value_type)?;
        let opts = unsafe { table_options_in(opts) }?;
        slot.set(with_context(ctx.id, |c| Ok(c.ctx.open_seq(id, ty, opts)?.into()))?);
        Ok(())
    })
}

/// Inserts `*item` at `index` (0 ..= length; the length appends); the items from
/// `index` on move one place up. `ZEN_ERR_INVALID_ARGUMENT` for an index past the end.
/// (1.5)
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_seq_insert(
    ctx: zen_context_t,
    seq: zen_table_t,
    index: usize,
    item: *const zen_value_data_t,
) -> zen_status_t {
    guard(|| unsafe { with_data_in(ctx, item, "item", |c, v| c.seq_insert(seq.to_core(), index, v)) })
}

/// Appends `*item`. (1.5)
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_seq_push(
    ctx: zen_context_t,
    seq: zen_table_t,
    item: *const zen_value_data_t,
) -> zen_status_t {
    guard(|| unsafe { with_data_in(ctx, item, "item", |c, v| c.seq_push(seq.to_core(), v)) })
}

/// Replaces the item at `index` (a concurrent removal of it wins). (1.5)
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_seq_set(
    ctx: zen_context_t,
    seq: zen_table_t,
    index: usize,
    item: *const zen_value_data_t,
) -> zen_status_t {
    guard(|| unsafe { with_data_in(ctx, item, "item", |c, v| c.seq_set(seq.to_core(), index, v)) })
}

/// Removes the item at `index` on every peer; the items after it move one place down.
/// (1.5)
#[no_mangle]
#[must_use]
pub extern "C" fn zen_seq_remove(ctx: zen_context_t, seq: zen_table_t, index: usize) -> zen_status_t {
    guard(|| with_context(ctx.id, |c| c.ctx.seq_remove(seq.to_core(), index).map(|_| ()).map_err(Into::into)))
}

/// Re-announces the item at `index` unchanged: `ZEN_TABLE_TOUCHED` (with the index) on
/// every peer. `ZEN_ERR_INVALID_ARGUMENT` for an index past the end. (1.5)
#[no_mangle]
#[must_use]
pub extern "C" fn zen_seq_touch(ctx: zen_context_t, seq: zen_table_t, index: usize) -> zen_status_t {
    guard(|| with_context(ctx.id, |c| Ok(c.ctx.seq_touch(seq.to_core(), index)?)))
}

/// Moves the item at `from` to `to` (an index in the sequence without it): a removal and
/// an insertion of the same value, so a concurrent write of the item is lost. (1.5)
#[no_mangle]
#[must_use]
pub extern "C" fn zen_seq_move(ctx: zen_context_t, seq: zen_table_t, from: usize, to: usize) -> zen_status_t {
    guard(|| with_context(ctx.id, |c| Ok(c.ctx.seq_move(seq.to_core(), from, to)?)))
}

/// Reads the item at `index` into `*out_item` (strings and bytes borrowed until the next
/// `zen_seq_get`, `zen_table_get` or `zen_table_entries` on this context). (1.5)
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_seq_get(
    ctx: zen_context_t,
    seq: zen_table_t,
    index: usize,
    out_item: *mut zen_value_data_t,
) -> zen_status_t {
    guard(|| {
        let slot = unsafe { out(out_item, "out_item") }?;
        with_context(ctx.id, |c| {
            c.table_read = Some(c.ctx.seq_get(seq.to_core(), index)?);
            slot.set(data_out(c.table_read.as_ref()));
            Ok(())
        })
    })
}

//! C exports for values: create/open, typed set and get, mode, state, removal, waiting.

use super::boundary::{arg, bytes, copy_out, guard, out, sized_in, text, wait_on_context, with_context};
use super::status::{zen_status_t, FfiError};
use super::types::*;
use crate::context::{SyncState, ValueOptions};
use crate::value::Value;
use std::ffi::c_char;
use std::time::{Duration, Instant};

/// Creates the value `id` (`id_len` bytes of UTF-8) of type `value_type` (a
/// `zen_value_type_t`), or opens it if it exists here (created locally or by a peer).
/// `opts` may be NULL for the defaults (else from `zen_value_options_default`). An
/// existing value keeps its type (another type is `ZEN_ERR_WRONG_TYPE`) and the policy
/// its creator chose; the mode is this context's own choice and is applied.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_value_create(
    ctx: zen_context_t,
    id: *const c_char,
    id_len: usize,
    value_type: u32,
    opts: *const zen_value_options_t,
    out_value: *mut zen_value_t,
) -> zen_status_t {
    guard(|| {
        let slot = unsafe { out(out_value, "out_value") }?;
        let id = unsafe { text(id, id_len, "id") }?;
        let ty = value_type_in(value_type)?;
        let o = if opts.is_null() {
            value_options_default()
        } else {
            unsafe { sized_in(opts, value_options_default(), "opts") }?
        };
        let custom = if o.policy == zen_policy_t::ZEN_POLICY_CUSTOM as u32 {
            Some(unsafe { text(o.custom_name, o.custom_name_len, "opts->custom_name") }?)
        } else {
            None
        };
        let local_only = match o.local_only {
            0 => false,
            1 => true,
            n => {
                return Err(FfiError::new(
                    zen_status_t::ZEN_ERR_INVALID_ARGUMENT,
                    format!("opts->local_only is {n}: it must be 0 or 1"),
                ))
            }
        };
        let owner = (o.owner != 0).then_some(o.owner);
        let opts =
            ValueOptions { mode: mode_in(o.mode)?, policy: policy_in(o.policy, custom)?, local_only, owner };
        slot.set(with_context(ctx.id, |c| Ok(c.ctx.create(id, ty, opts)?.into()))?);
        Ok(())
    })
}

/// Opens an existing value by id; `ZEN_ERR_UNKNOWN_VALUE` if this context has none.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_value_open(
    ctx: zen_context_t,
    id: *const c_char,
    id_len: usize,
    out_value: *mut zen_value_t,
) -> zen_status_t {
    guard(|| {
        let slot = unsafe { out(out_value, "out_value") }?;
        let id = unsafe { text(id, id_len, "id") }?;
        slot.set(with_context(ctx.id, |c| Ok(c.ctx.open(id)?.into()))?);
        Ok(())
    })
}

fn set(ctx: zen_context_t, value: zen_value_t, v: Value) -> Result<(), FfiError> {
    with_context(ctx.id, |c| Ok(c.ctx.set(value.to_core(), v)?))
}

fn get(ctx: zen_context_t, value: zen_value_t) -> Result<Value, FfiError> {
    with_context(ctx.id, |c| Ok(c.ctx.get(value.to_core())?))
}

fn wrong(expected: &str, got: &Value) -> FfiError {
    FfiError::new(
        zen_status_t::ZEN_ERR_WRONG_TYPE,
        format!("value holds {:?}, not {expected}", got.value_type()),
    )
}

fn get_into<T>(
    ctx: zen_context_t,
    value: zen_value_t,
    out_v: *mut T,
    name: &str,
    pick: impl FnOnce(Value) -> Result<T, Value>,
) -> Result<(), FfiError> {
    let slot = unsafe { out(out_v, "out_v") }?;
    slot.set(pick(get(ctx, value)?).map_err(|other| wrong(name, &other))?);
    Ok(())
}

/// Writes a bool. FastLocal: reads show it at once and a change event is queued.
/// WaitForSync: reads keep the acknowledged value until every member has the write.
/// The CRDT write happens at the next tick; several writes in one tick cost one. The
/// other setters follow the same rules.
#[no_mangle]
#[must_use]
pub extern "C" fn zen_value_set_bool(ctx: zen_context_t, value: zen_value_t, v: bool) -> zen_status_t {
    guard(|| set(ctx, value, Value::Bool(v)))
}

/// Reads a bool as this context shows it (FastLocal: the latest local or resolved value;
/// WaitForSync: the acknowledged one). A never-written value reads as its type's zero
/// (false, 0, "", zero vectors, the identity quaternion); a removed one is
/// `ZEN_ERR_REMOVED`. The other getters follow the same rules.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_value_get_bool(
    ctx: zen_context_t,
    value: zen_value_t,
    out_v: *mut bool,
) -> zen_status_t {
    guard(|| {
        get_into(ctx, value, out_v, "bool", |v| match v {
            Value::Bool(x) => Ok(x),
            o => Err(o),
        })
    })
}

/// Writes a 64-bit integer.
#[no_mangle]
#[must_use]
pub extern "C" fn zen_value_set_i64(ctx: zen_context_t, value: zen_value_t, v: i64) -> zen_status_t {
    guard(|| set(ctx, value, Value::I64(v)))
}

/// Reads a 64-bit integer.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_value_get_i64(
    ctx: zen_context_t,
    value: zen_value_t,
    out_v: *mut i64,
) -> zen_status_t {
    guard(|| {
        get_into(ctx, value, out_v, "i64", |v| match v {
            Value::I64(x) => Ok(x),
            o => Err(o),
        })
    })
}

/// Writes a double.
#[no_mangle]
#[must_use]
pub extern "C" fn zen_value_set_f64(ctx: zen_context_t, value: zen_value_t, v: f64) -> zen_status_t {
    guard(|| set(ctx, value, Value::F64(v)))
}

/// Reads a double.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_value_get_f64(
    ctx: zen_context_t,
    value: zen_value_t,
    out_v: *mut f64,
) -> zen_status_t {
    guard(|| {
        get_into(ctx, value, out_v, "f64", |v| match v {
            Value::F64(x) => Ok(x),
            o => Err(o),
        })
    })
}

/// Writes a string (`len` bytes of UTF-8 at `s`, copied; NUL not needed).
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_value_set_string(
    ctx: zen_context_t,
    value: zen_value_t,
    s: *const c_char,
    len: usize,
) -> zen_status_t {
    guard(|| {
        let s = unsafe { text(s, len, "s") }?;
        set(ctx, value, Value::Str(s.to_owned()))
    })
}

/// Reads a string into `buf` (`cap` bytes, not NUL-terminated); `*out_len` gets its
/// length. `ZEN_ERR_BUFFER_TOO_SMALL` (with the needed length) when it does not fit.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_value_get_string(
    ctx: zen_context_t,
    value: zen_value_t,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> zen_status_t {
    guard(|| match get(ctx, value)? {
        Value::Str(s) => unsafe { copy_out(s.as_bytes(), buf.cast(), cap, out_len) },
        other => Err(wrong("string", &other)),
    })
}

/// Writes bytes (`len` at `data`, copied; NULL allowed when `len` is 0).
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_value_set_bytes(
    ctx: zen_context_t,
    value: zen_value_t,
    data: *const u8,
    len: usize,
) -> zen_status_t {
    guard(|| {
        let b = unsafe { bytes(data, len, "data") }?;
        set(ctx, value, Value::Bytes(b.to_vec()))
    })
}

/// Reads bytes into `buf` as `zen_value_get_string` does.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_value_get_bytes(
    ctx: zen_context_t,
    value: zen_value_t,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> zen_status_t {
    guard(|| match get(ctx, value)? {
        Value::Bytes(b) => unsafe { copy_out(&b, buf, cap, out_len) },
        other => Err(wrong("bytes", &other)),
    })
}

/// Writes a vec2.
#[no_mangle]
#[must_use]
pub extern "C" fn zen_value_set_vec2(ctx: zen_context_t, value: zen_value_t, v: zen_vec2_t) -> zen_status_t {
    guard(|| set(ctx, value, Value::Vec2([v.x, v.y])))
}

/// Reads a vec2.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_value_get_vec2(
    ctx: zen_context_t,
    value: zen_value_t,
    out_v: *mut zen_vec2_t,
) -> zen_status_t {
    guard(|| {
        get_into(ctx, value, out_v, "vec2", |v| match v {
            Value::Vec2([x, y]) => Ok(zen_vec2_t { x, y }),
            o => Err(o),
        })
    })
}

/// Writes a vec3.
#[no_mangle]
#[must_use]
pub extern "C" fn zen_value_set_vec3(ctx: zen_context_t, value: zen_value_t, v: zen_vec3_t) -> zen_status_t {
    guard(|| set(ctx, value, Value::Vec3([v.x, v.y, v.z])))
}

/// Reads a vec3.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_value_get_vec3(
    ctx: zen_context_t,
    value: zen_value_t,
    out_v: *mut zen_vec3_t,
) -> zen_status_t {
    guard(|| {
        get_into(ctx, value, out_v, "vec3", |v| match v {
            Value::Vec3([x, y, z]) => Ok(zen_vec3_t { x, y, z }),
            o => Err(o),
        })
    })
}

/// Writes a vec4 (for a rotation, create a ZEN_TYPE_QUAT value instead).
#[no_mangle]
#[must_use]
pub extern "C" fn zen_value_set_vec4(ctx: zen_context_t, value: zen_value_t, v: zen_vec4_t) -> zen_status_t {
    guard(|| set(ctx, value, Value::Vec4([v.x, v.y, v.z, v.w])))
}

/// Reads a vec4.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_value_get_vec4(
    ctx: zen_context_t,
    value: zen_value_t,
    out_v: *mut zen_vec4_t,
) -> zen_status_t {
    guard(|| {
        get_into(ctx, value, out_v, "vec4", |v| match v {
            Value::Vec4([x, y, z, w]) => Ok(zen_vec4_t { x, y, z, w }),
            o => Err(o),
        })
    })
}

/// Writes a quaternion (a rotation; stored as written, not normalised).
#[no_mangle]
#[must_use]
pub extern "C" fn zen_value_set_quat(ctx: zen_context_t, value: zen_value_t, v: zen_quat_t) -> zen_status_t {
    guard(|| set(ctx, value, Value::Quat([v.x, v.y, v.z, v.w])))
}

/// Reads a quaternion.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_value_get_quat(
    ctx: zen_context_t,
    value: zen_value_t,
    out_v: *mut zen_quat_t,
) -> zen_status_t {
    guard(|| {
        get_into(ctx, value, out_v, "quat", |v| match v {
            Value::Quat([x, y, z, w]) => Ok(zen_quat_t { x, y, z, w }),
            o => Err(o),
        })
    })
}

/// Writes a color.
#[no_mangle]
#[must_use]
pub extern "C" fn zen_value_set_color(
    ctx: zen_context_t,
    value: zen_value_t,
    v: zen_color_t,
) -> zen_status_t {
    guard(|| set(ctx, value, Value::Color([v.r, v.g, v.b, v.a])))
}

/// Reads a color.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_value_get_color(
    ctx: zen_context_t,
    value: zen_value_t,
    out_v: *mut zen_color_t,
) -> zen_status_t {
    guard(|| {
        get_into(ctx, value, out_v, "color", |v| match v {
            Value::Color([r, g, b, a]) => Ok(zen_color_t { r, g, b, a }),
            o => Err(o),
        })
    })
}

/// Writes any value from a tagged `zen_value_data_t` (its type must match the value's).
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_value_set_data(
    ctx: zen_context_t,
    value: zen_value_t,
    data: *const zen_value_data_t,
) -> zen_status_t {
    guard(|| {
        let d = unsafe { arg(data, "data") }?;
        let v = unsafe { data_in(d) }?;
        set(ctx, value, v)
    })
}

/// Removes the value on every peer (a removal concurrent with a write wins; a later
/// write revives it).
#[no_mangle]
#[must_use]
pub extern "C" fn zen_value_remove(ctx: zen_context_t, value: zen_value_t) -> zen_status_t {
    guard(|| with_context(ctx.id, |c| Ok(c.ctx.remove(value.to_core())?)))
}

/// Re-announces the value unchanged: this context queues a `ZEN_CHANGE_TOUCHED` event
/// now, every peer when the touch arrives ("same value, act again"). It is delivered and
/// acknowledged like a write but never changes what the value resolves to; a write in the
/// same tick carries it along (peers then see `ZEN_CHANGE_MODIFIED`).
/// A removed value is `ZEN_ERR_REMOVED`, one never written `ZEN_ERR_INVALID_ARGUMENT`.
/// (1.3)
#[no_mangle]
#[must_use]
pub extern "C" fn zen_value_touch(ctx: zen_context_t, value: zen_value_t) -> zen_status_t {
    guard(|| with_context(ctx.id, |c| Ok(c.ctx.touch(value.to_core())?)))
}

/// Whether the value is local-only in this context (`zen_value_options_t.local_only`).
/// (1.3)
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_value_is_local_only(
    ctx: zen_context_t,
    value: zen_value_t,
    out_local_only: *mut bool,
) -> zen_status_t {
    guard(|| {
        let slot = unsafe { out(out_local_only, "out_local_only") }?;
        slot.set(with_context(ctx.id, |c| Ok(c.ctx.is_local_only(value.to_core())?))?);
        Ok(())
    })
}

/// The owner of an owner-only value as this context knows it, to `out_owner`; 0 for a
/// value anyone may write. Writes here succeed when it is 0 or this context's own id.
/// (1.4)
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_value_owner(
    ctx: zen_context_t,
    value: zen_value_t,
    out_owner: *mut u64,
) -> zen_status_t {
    guard(|| {
        let slot = unsafe { out(out_owner, "out_owner") }?;
        slot.set(with_context(ctx.id, |c| Ok(c.ctx.owner(value.to_core())?))?.unwrap_or(0));
        Ok(())
    })
}

/// Gives an owner-only value to peer `to` (a member or not). From now on this context
/// may not write it: a `ZEN_CHANGE_OWNER_CHANGED` event is queued here at once and on
/// every peer when the transfer arrives. `ZEN_ERR_NOT_OWNER` unless this context owns
/// it; `ZEN_ERR_INVALID_ARGUMENT` for a value anyone may write or an invalid peer id.
/// Transferring to oneself does nothing. (1.4)
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_value_transfer(ctx: zen_context_t, value: zen_value_t, to: u64) -> zen_status_t {
    guard(|| with_context(ctx.id, |c| Ok(c.ctx.transfer(value.to_core(), to)?)))
}

/// Switches the value's mode (a `zen_mode_t`); may queue a change event if reads change.
#[no_mangle]
#[must_use]
pub extern "C" fn zen_value_set_mode(ctx: zen_context_t, value: zen_value_t, mode: u32) -> zen_status_t {
    guard(|| {
        let mode = mode_in(mode)?;
        with_context(ctx.id, |c| Ok(c.ctx.set_mode(value.to_core(), mode)?))
    })
}

/// The value's type, mode, policy and sync state (any out-pointer may be NULL to skip it).
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_value_info(
    ctx: zen_context_t,
    value: zen_value_t,
    out_type: *mut zen_value_type_t,
    out_mode: *mut zen_mode_t,
    out_policy: *mut zen_policy_t,
    out_state: *mut zen_sync_state_t,
) -> zen_status_t {
    guard(|| {
        let (ty, mode, policy, state) = with_context(ctx.id, |c| {
            let h = value.to_core();
            Ok((c.ctx.value_type(h)?, c.ctx.mode(h)?, c.ctx.policy(h)?, c.ctx.state(h)?))
        })?;
        // Raw writes: the caller's memory may hold any integer before the call, which is
        // not a valid value of these Rust enums to make a reference to.
        unsafe {
            if !out_type.is_null() {
                out_type.write(type_out(ty));
            }
            if !out_mode.is_null() {
                out_mode.write(mode_out(mode));
            }
            if !out_policy.is_null() {
                out_policy.write(policy_out(&policy));
            }
            if !out_state.is_null() {
                out_state.write(state_out(state));
            }
        }
        Ok(())
    })
}

/// Copies the value's id into `buf` as `zen_value_get_string` does.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_value_id(
    ctx: zen_context_t,
    value: zen_value_t,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> zen_status_t {
    guard(|| {
        let id = with_context(ctx.id, |c| Ok(c.ctx.id(value.to_core())?.to_owned()))?;
        unsafe { copy_out(id.as_bytes(), buf.cast(), cap, out_len) }
    })
}

/// Blocks the calling thread until the value is Converged or `timeout_ms` passes
/// (`ZEN_ERR_TIMEOUT`). For threads other than the one that ticks: the wait wakes after
/// each `zen_context_tick`, so calling it on the ticking thread only times out. Freeing
/// the context from another thread ends the wait with `ZEN_ERR_INVALID_HANDLE`.
#[no_mangle]
#[must_use]
pub extern "C" fn zen_value_wait_converged(
    ctx: zen_context_t,
    value: zen_value_t,
    timeout_ms: u64,
) -> zen_status_t {
    guard(|| {
        // UINT64_MAX means "as long as it takes" (a century, where Instant can reach).
        let now = Instant::now();
        let deadline = now
            .checked_add(Duration::from_millis(timeout_ms))
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400));
        wait_on_context(
            ctx.id,
            deadline,
            |c| Ok((c.ctx.state(value.to_core())? == SyncState::Converged).then_some(())),
            || {
                FfiError::new(
                    zen_status_t::ZEN_ERR_TIMEOUT,
                    format!("value not converged after {timeout_ms} ms"),
                )
            },
        )
    })
}

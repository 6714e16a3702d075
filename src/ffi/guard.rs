//! The one guard every C export goes through, and the checked readers of C arguments.
//!
//! Owns panic containment (a panic never unwinds into C: it becomes `ZEN_ERR_PANIC`, and
//! the context it happened in is poisoned), re-entrancy detection for callbacks, and the
//! only dereferences of C pointers in the crate.

use super::handles::{self, ContextCell, Inner};
use super::status::{set_last_error, zen_status_t, FfiError};
use std::cell::Cell;
use std::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};

thread_local! {
    /// True while a host callback (a custom merge) runs on this thread.
    pub(crate) static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    let what = p
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!("internal panic in zen-crdt (please report it): {what}")
}

/// Runs an export's body: catches panics, records the message of a failure.
pub(crate) fn guard(f: impl FnOnce() -> Result<(), FfiError>) -> zen_status_t {
    if IN_CALLBACK.with(|c| c.get()) {
        set_last_error("called from inside a zen-crdt callback, which holds the context's lock");
        return zen_status_t::ZEN_ERR_REENTRANT;
    }
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => zen_status_t::ZEN_OK,
        Ok(Err(e)) => {
            set_last_error(&e.message);
            e.status
        }
        Err(p) => {
            set_last_error(&panic_message(&*p));
            zen_status_t::ZEN_ERR_PANIC
        }
    }
}

/// Runs `f` on a live, unpoisoned context, holding its lock. A panic inside poisons it.
pub(crate) fn with_context<R>(
    handle: u64,
    f: impl FnOnce(&mut Inner) -> Result<R, FfiError>,
) -> Result<R, FfiError> {
    with_cell(&*handles::get(handle)?, f)
}

/// `with_context` for a context already looked up (to notify its waiters afterwards
/// without a second lookup).
pub(crate) fn with_cell<R>(
    cell: &ContextCell,
    f: impl FnOnce(&mut Inner) -> Result<R, FfiError>,
) -> Result<R, FfiError> {
    let mut inner = cell.inner.lock();
    if let Some(why) = &inner.poisoned {
        return Err(FfiError::new(
            zen_status_t::ZEN_ERR_POISONED,
            format!("context is poisoned by an earlier panic ({why}); free it"),
        ));
    }
    match catch_unwind(AssertUnwindSafe(|| f(&mut inner))) {
        Ok(r) => r,
        Err(p) => {
            let msg = panic_message(&*p);
            inner.poisoned = Some(msg.clone());
            Err(FfiError::new(zen_status_t::ZEN_ERR_PANIC, msg))
        }
    }
}

fn null(what: &str) -> FfiError {
    FfiError::new(zen_status_t::ZEN_ERR_NULL_ARGUMENT, format!("{what} is NULL"))
}

/// A writable out-parameter.
///
/// # Safety
/// `p` must be NULL or valid for writes of a `T` for the duration of the call.
pub(crate) unsafe fn out<'a, T>(p: *mut T, what: &str) -> Result<&'a mut T, FfiError> {
    unsafe { p.as_mut() }.ok_or_else(|| null(what))
}

/// A readable pointer argument.
///
/// # Safety
/// `p` must be NULL or valid for reads of a `T` for the duration of the call.
pub(crate) unsafe fn arg<'a, T>(p: *const T, what: &str) -> Result<&'a T, FfiError> {
    unsafe { p.as_ref() }.ok_or_else(|| null(what))
}

/// An array given as pointer + element count; NULL is allowed only with count 0.
///
/// # Safety
/// `p` must be NULL or valid for reads of `len` elements for the duration of the call.
pub(crate) unsafe fn slice<'a, T>(p: *const T, len: usize, what: &str) -> Result<&'a [T], FfiError> {
    if len > isize::MAX as usize / std::mem::size_of::<T>().max(1) {
        return Err(FfiError::new(
            zen_status_t::ZEN_ERR_TOO_LARGE,
            format!("{what}: length {len} is impossible"),
        ));
    }
    if p.is_null() {
        return if len == 0 { Ok(&[]) } else { Err(null(what)) };
    }
    if !(p as usize).is_multiple_of(std::mem::align_of::<T>()) {
        return Err(FfiError::new(zen_status_t::ZEN_ERR_INVALID_ARGUMENT, format!("{what} is misaligned")));
    }
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// A byte buffer given as pointer + length; NULL is allowed only with length 0.
///
/// # Safety
/// As `slice`.
pub(crate) unsafe fn bytes<'a>(p: *const u8, len: usize, what: &str) -> Result<&'a [u8], FfiError> {
    unsafe { slice(p, len, what) }
}

/// A UTF-8 string given as pointer + length (not NUL-terminated).
///
/// # Safety
/// As `bytes`.
pub(crate) unsafe fn text<'a>(p: *const c_char, len: usize, what: &str) -> Result<&'a str, FfiError> {
    let raw = unsafe { bytes(p.cast(), len, what) }?;
    std::str::from_utf8(raw).map_err(|e| {
        FfiError::new(
            zen_status_t::ZEN_ERR_INVALID_UTF8,
            format!("{what} is not UTF-8 (byte {})", e.valid_up_to()),
        )
    })
}

/// Copies `src` into a caller buffer of `cap` bytes, writing the needed length to
/// `out_len` either way; `ZEN_ERR_BUFFER_TOO_SMALL` when it does not fit.
///
/// # Safety
/// `buf` must be NULL or valid for writes of `cap` bytes; `out_len` as `out`.
pub(crate) unsafe fn copy_out(
    src: &[u8],
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> Result<(), FfiError> {
    let len_out = unsafe { out(out_len, "out_len") }?;
    *len_out = src.len();
    if src.len() > cap {
        return Err(FfiError::new(
            zen_status_t::ZEN_ERR_BUFFER_TOO_SMALL,
            format!("buffer of {cap} bytes is too small: {} needed", src.len()),
        ));
    }
    if !src.is_empty() {
        if buf.is_null() {
            return Err(null("buf"));
        }
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), buf, src.len()) };
    }
    Ok(())
}

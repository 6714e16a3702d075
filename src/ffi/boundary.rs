//! The one boundary every C export goes through, and the checked readers of C arguments.
//!
//! Owns panic containment: `catch_unwind` appears here once (`enter`), so no export can
//! forget it. A panic never unwinds into C: the call returns `ZEN_ERR_PANIC` with the
//! panic's message, and every context (or network) the call had entered is poisoned,
//! including one it was waiting on; the others are untouched. Also owns re-entrancy
//! detection for callbacks and the only dereferences of C pointers in the crate.

use super::handles::{self, ContextCell, Inner, Poison};
use super::status::{set_last_error, zen_status_t, FfiError};
use std::cell::{Cell, RefCell};
use std::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

thread_local! {
    /// True while a host callback (a custom merge) runs on this thread.
    pub(crate) static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
    /// What a panic unwinding through this thread left behind (see `Entered`): the
    /// boundary poisons each once it has caught the panic.
    static UNWOUND: RefCell<Vec<Arc<dyn Poison>>> = const { RefCell::new(Vec::new()) };
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    let what = p
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!("internal panic in zen-crdt (please report it): {what}")
}

/// Runs a frame on a thread the library owns (a driver's): a panic becomes
/// `ZEN_ERR_PANIC` and poisons what the frame had entered, as at the boundary.
pub(crate) fn contain<R>(f: impl FnOnce() -> Result<R, FfiError>) -> Result<R, FfiError> {
    enter(f)
}

/// Runs an export's body: the only place a panic is caught.
fn enter<R>(f: impl FnOnce() -> Result<R, FfiError>) -> Result<R, FfiError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = panic_message(&*p);
            // Whatever the panicking call had entered: its lock guards were dropped
            // while unwinding, so each can be locked again to be marked.
            for entered in UNWOUND.with(|e| std::mem::take(&mut *e.borrow_mut())) {
                entered.poison(&msg);
            }
            Err(FfiError::new(zen_status_t::ZEN_ERR_PANIC, msg))
        }
    }
}

/// The boundary of an export that returns a status: a failure records its message for
/// `zen_last_error` on this thread.
pub(crate) fn guard(f: impl FnOnce() -> Result<(), FfiError>) -> zen_status_t {
    match enter(f) {
        Ok(()) => zen_status_t::ZEN_OK,
        Err(e) => {
            set_last_error(&e.message);
            e.status
        }
    }
}

/// `guard` for the exports that read the last message: their own failure must not
/// replace the message being read.
pub(crate) fn guard_keeping_message(f: impl FnOnce() -> Result<(), FfiError>) -> zen_status_t {
    match enter(f) {
        Ok(()) => zen_status_t::ZEN_OK,
        Err(e) => e.status,
    }
}

/// The boundary of an export that cannot fail and returns a value (or nothing): a panic
/// gives `fallback` and records its message.
pub(crate) fn guard_infallible<R>(fallback: R, f: impl FnOnce() -> R) -> R {
    match enter(|| Ok(f())) {
        Ok(r) => r,
        Err(e) => {
            set_last_error(&e.message);
            fallback
        }
    }
}

/// Marks a context (or network) as entered for as long as it lives: if a panic unwinds
/// past it, it hands the boundary what to poison. Free on the normal path (no reference
/// count is touched), which matters on calls made thousands of times a frame. Declare it
/// before the lock guard, so the lock is released first.
pub(crate) struct Entered<'a, T: Poison + 'static>(pub(crate) &'a Arc<T>);

impl<T: Poison + 'static> Drop for Entered<'_, T> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let it: Arc<dyn Poison> = self.0.clone();
            UNWOUND.with(|e| e.borrow_mut().push(it));
        }
    }
}

/// `ZEN_ERR_REENTRANT` when called from inside a host callback, which holds its
/// context's lock: taking a context lock there would deadlock.
pub(crate) fn reentrant() -> Result<(), FfiError> {
    if IN_CALLBACK.with(|c| c.get()) {
        return Err(FfiError::new(
            zen_status_t::ZEN_ERR_REENTRANT,
            "called from inside a zen-crdt callback, which holds its context's lock",
        ));
    }
    Ok(())
}

/// Whether a locked context can take calls: not freed, not poisoned.
fn usable(inner: &Inner) -> Result<(), FfiError> {
    if inner.freed {
        return Err(FfiError::new(zen_status_t::ZEN_ERR_INVALID_HANDLE, "the context was freed"));
    }
    if let Some(why) = &inner.poisoned {
        return Err(FfiError::new(
            zen_status_t::ZEN_ERR_POISONED,
            format!("context is poisoned by an earlier panic ({why}); free it"),
        ));
    }
    Ok(())
}

/// Runs `f` on a live, unpoisoned context, holding its lock.
pub(crate) fn with_context<R>(
    handle: u64,
    f: impl FnOnce(&mut Inner) -> Result<R, FfiError>,
) -> Result<R, FfiError> {
    with_cell(&handles::get(handle)?, f)
}

/// `with_context` for a context already looked up (to notify its waiters afterwards
/// without a second lookup).
pub(crate) fn with_cell<R>(
    cell: &Arc<ContextCell>,
    f: impl FnOnce(&mut Inner) -> Result<R, FfiError>,
) -> Result<R, FfiError> {
    reentrant()?;
    let _entered = Entered(cell);
    let mut inner = cell.inner.lock();
    usable(&inner)?;
    f(&mut inner)
}

/// Holds a context's lock and calls `check` until it gives an answer, sleeping until the
/// context is ticked (or freed) between tries, or until `deadline` (then `on_timeout`).
/// Freed and poisoned contexts end the wait as they end any call.
pub(crate) fn wait_on_context<R>(
    handle: u64,
    deadline: Instant,
    mut check: impl FnMut(&mut Inner) -> Result<Option<R>, FfiError>,
    on_timeout: impl FnOnce() -> FfiError,
) -> Result<R, FfiError> {
    reentrant()?;
    let cell = handles::get(handle)?;
    let _entered = Entered(&cell);
    let mut inner = cell.inner.lock();
    loop {
        usable(&inner)?;
        if let Some(r) = check(&mut inner)? {
            return Ok(r);
        }
        if cell.ticked.wait_until(&mut inner, deadline).timed_out() {
            usable(&inner)?;
            return match check(&mut inner)? {
                Some(r) => Ok(r),
                None => Err(on_timeout()),
            };
        }
    }
}

fn null(what: &str) -> FfiError {
    FfiError::new(zen_status_t::ZEN_ERR_NULL_ARGUMENT, format!("{what} is NULL"))
}

fn invalid(what: String) -> FfiError {
    FfiError::new(zen_status_t::ZEN_ERR_INVALID_ARGUMENT, what)
}

/// A checked, non-NULL out-parameter. Written with `set`, never read: before the call
/// the caller's memory may hold anything (an uninitialised bool or enum is not a value
/// Rust may make a reference to).
pub(crate) struct Out<T>(*mut T);

impl<T> Out<T> {
    pub(crate) fn set(&self, value: T) {
        // SAFETY: non-NULL and valid for writes (`out`'s contract); nothing is dropped.
        unsafe { self.0.write(value) }
    }
}

/// A writable out-parameter.
///
/// # Safety
/// `p` must be NULL or valid for writes of a `T` for the duration of the call.
pub(crate) unsafe fn out<T>(p: *mut T, what: &str) -> Result<Out<T>, FfiError> {
    if p.is_null() {
        return Err(null(what));
    }
    Ok(Out(p))
}

/// A readable pointer argument.
///
/// # Safety
/// `p` must be NULL or valid for reads of a `T` for the duration of the call.
pub(crate) unsafe fn arg<'a, T>(p: *const T, what: &str) -> Result<&'a T, FfiError> {
    unsafe { p.as_ref() }.ok_or_else(|| null(what))
}

/// A struct that may grow in later 1.x releases: its first field is `size_t
/// struct_size`, the size the caller's header gave it. `SIZE_1_0` is its size in 1.0,
/// the least a caller may pass (fields added since come after it).
pub(crate) trait Growable: Copy {
    const SIZE_1_0: usize = std::mem::size_of::<Self>();
}

/// Reads a caller's growable struct (see `Growable`). Reads a caller's struct of that
/// kind over `defaults`: fields the caller's (older) header does not have keep their
/// defaults; a size below the 1.0 size (`T`'s size in 1.0) is an error, and so is a
/// newer header's struct that sets fields this library does not know (bytes past its
/// own size that are not zero).
///
/// # Safety
/// `p` must be NULL or valid for reads of `struct_size` bytes, its first field a `usize`.
pub(crate) unsafe fn sized_in<T: Growable>(p: *const T, defaults: T, what: &str) -> Result<T, FfiError> {
    if p.is_null() {
        return Err(null(what));
    }
    let ours = std::mem::size_of::<T>();
    let theirs = unsafe { p.cast::<usize>().read_unaligned() };
    check_size(theirs, T::SIZE_1_0, what)?;
    if theirs > ours {
        let extra = unsafe { std::slice::from_raw_parts(p.cast::<u8>().add(ours), theirs - ours) };
        if extra.iter().any(|&b| b != 0) {
            return Err(invalid(format!(
                "{what} sets fields this library (version {}) does not know: link the library \
                 the header came with",
                env!("CARGO_PKG_VERSION")
            )));
        }
    }
    let mut value = defaults;
    let n = theirs.min(ours);
    // SAFETY: both regions hold at least `n` bytes; `T` is plain data (repr(C), Copy).
    unsafe { std::ptr::copy_nonoverlapping(p.cast::<u8>(), (&mut value as *mut T).cast::<u8>(), n) };
    // SAFETY: the first field of `T` is its `usize` struct_size.
    unsafe { (&mut value as *mut T).cast::<usize>().write(ours) };
    Ok(value)
}

/// Writes `value` into a caller's growable struct (see `sized_in`): as many bytes as the
/// caller's `struct_size` says it has room for, and no more; `struct_size` is set to
/// the bytes written.
///
/// # Safety
/// `p` must be NULL or valid for reads and writes of `struct_size` bytes.
pub(crate) unsafe fn sized_out<T: Growable>(p: *mut T, value: T, what: &str) -> Result<(), FfiError> {
    if p.is_null() {
        return Err(null(what));
    }
    let ours = std::mem::size_of::<T>();
    let theirs = unsafe { p.cast::<usize>().read_unaligned() };
    check_size(theirs, T::SIZE_1_0, what)?;
    let n = theirs.min(ours);
    unsafe {
        std::ptr::copy_nonoverlapping((&value as *const T).cast::<u8>(), p.cast::<u8>(), n);
        p.cast::<usize>().write_unaligned(n);
    }
    Ok(())
}

fn check_size(theirs: usize, size_1_0: usize, what: &str) -> Result<(), FfiError> {
    if theirs < size_1_0 {
        return Err(invalid(format!(
            "{what}->struct_size is {theirs}, less than the {size_1_0} bytes of version 1.0: set it \
             to sizeof the struct (the *_default functions do)"
        )));
    }
    Ok(())
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
        return Err(invalid(format!("{what} is misaligned")));
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
    unsafe { out(out_len, "out_len") }?.set(src.len());
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

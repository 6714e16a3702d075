//! C export for custom merge policies: a host callback behind the core's `MergeFn`.

use super::boundary::{guard, text, with_context, IN_CALLBACK};
use super::status::{zen_status_t, FfiError};
use super::types::*;
use crate::policy::{Candidate, MergeFn};
use crate::value::Value;
use std::ffi::{c_char, c_void};
use std::sync::Arc;

/// A host merge callback and its user data, owned by the context's merge table.
struct HostMerge {
    f: unsafe extern "C" fn(*mut c_void, *const zen_candidate_t, usize, *mut zen_value_data_t) -> i32,
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
        if status != 0 {
            return None;
        }
        unsafe { data_in(&result) }.ok()
    }
}

/// Registers `merge` as the custom policy named `name` (`name_len` bytes of UTF-8) for
/// this context. Every peer must register the same deterministic function under the
/// same name. `user_data` is passed to every call; `cleanup` (may be NULL) receives it
/// when the merge is replaced or the context freed (not if this call fails). Replacing
/// a name is allowed.
#[no_mangle]
#[must_use]
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
        with_context(ctx.id, |c| {
            let host = Arc::new(HostMerge { f, user_data, cleanup });
            let mf: MergeFn = Arc::new(move |cands| host.call(cands));
            c.ctx.register_merge(name, mf);
            Ok(())
        })
    })
}

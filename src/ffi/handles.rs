//! The handle table: C callers hold small generational numbers, never pointers.
//!
//! Owns the global table of live contexts. A handle packs a kind tag (so a value handle
//! passed where a context is expected is caught), a generation (so a freed handle stays
//! invalid when its slot is reused) and a slot index. Looking a handle up clones an
//! `Arc`, so freeing a context while another thread is inside a call on it is safe: the
//! context dies when that call returns.

use super::status::{zen_status_t, FfiError};
use crate::context::{Context, Outbound};
use crate::events::ChangeEvent;
use once_cell::sync::Lazy;
use parking_lot::{Condvar, Mutex, RwLock};
use std::sync::Arc;

pub(crate) const KIND_CONTEXT: u64 = 0xC7;
pub(crate) const KIND_VALUE: u64 = 0xA5;

/// A context and what the C layer keeps beside it.
pub(crate) struct Inner {
    pub ctx: Context,
    /// Set when a panic was caught inside a call on this context.
    pub poisoned: Option<String>,
    /// The last event handed out; its strings back the pointers in that `zen_change_t`.
    pub last_event: Option<ChangeEvent>,
    /// An outbound message that did not fit the caller's buffer, kept for the retry.
    pub held_out: Option<Outbound>,
    /// Set by `zen_context_free`, so a thread still waiting on the context wakes up.
    pub freed: bool,
}

pub(crate) struct ContextCell {
    pub inner: Mutex<Inner>,
    /// Notified after every tick, for `zen_value_wait_converged`.
    pub ticked: Condvar,
}

struct Slot {
    generation: u32,
    cell: Option<Arc<ContextCell>>,
}

#[derive(Default)]
struct Table {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

static TABLE: Lazy<RwLock<Table>> = Lazy::new(|| RwLock::new(Table::default()));

fn pack(index: u32, generation: u32) -> u64 {
    (KIND_CONTEXT << 56) | (((generation & 0xFF_FFFF) as u64) << 32) | index as u64
}

pub(crate) fn insert(ctx: Context) -> u64 {
    let cell = Arc::new(ContextCell {
        inner: Mutex::new(Inner { ctx, poisoned: None, last_event: None, held_out: None, freed: false }),
        ticked: Condvar::new(),
    });
    let mut t = TABLE.write();
    match t.free.pop() {
        Some(i) => {
            let slot = &mut t.slots[i as usize];
            slot.generation = slot.generation.wrapping_add(1) & 0xFF_FFFF;
            slot.cell = Some(cell);
            pack(i, slot.generation)
        }
        None => {
            let i = t.slots.len() as u32;
            t.slots.push(Slot { generation: 1, cell: Some(cell) });
            pack(i, 1)
        }
    }
}

fn locate(handle: u64) -> Result<(usize, u32), FfiError> {
    if handle >> 56 != KIND_CONTEXT {
        let what = if handle == 0 {
            "context handle is 0 (never created, or already freed)".to_string()
        } else if handle >> 56 == KIND_VALUE {
            format!("handle {handle:#x} is a value handle, not a context handle")
        } else {
            format!("{handle:#x} is not a context handle")
        };
        return Err(FfiError::new(zen_status_t::ZEN_ERR_INVALID_HANDLE, what));
    }
    Ok(((handle & 0xFFFF_FFFF) as usize, ((handle >> 32) & 0xFF_FFFF) as u32))
}

fn stale(handle: u64) -> FfiError {
    FfiError::new(zen_status_t::ZEN_ERR_INVALID_HANDLE, format!("context handle {handle:#x} was freed"))
}

pub(crate) fn get(handle: u64) -> Result<Arc<ContextCell>, FfiError> {
    let (i, generation) = locate(handle)?;
    let t = TABLE.read();
    match t.slots.get(i) {
        Some(Slot { generation: g, cell: Some(cell) }) if *g == generation => Ok(cell.clone()),
        _ => Err(stale(handle)),
    }
}

/// Removes a context from the table; `None` if the handle was not live (0, freed twice).
pub(crate) fn remove(handle: u64) -> Option<Arc<ContextCell>> {
    let (i, generation) = locate(handle).ok()?;
    let mut t = TABLE.write();
    let slot = t.slots.get_mut(i).filter(|s| s.generation == generation)?;
    let cell = slot.cell.take()?;
    t.free.push(i as u32);
    Some(cell)
}

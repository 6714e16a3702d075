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
use parking_lot::{Condvar, Mutex, RwLock};
use std::sync::Arc;

pub(crate) const KIND_CONTEXT: u64 = 0xC7;
pub(crate) const KIND_VALUE: u64 = 0xA5;
pub(crate) const KIND_NET: u64 = 0x4E;

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

struct Slot<T> {
    generation: u32,
    item: Option<Arc<T>>,
}

/// Generational slots for one kind of object.
pub(crate) struct Table<T> {
    kind: u64,
    name: &'static str,
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
}

impl<T> Table<T> {
    pub(crate) const fn new(kind: u64, name: &'static str) -> Table<T> {
        Table { kind, name, slots: Vec::new(), free: Vec::new() }
    }

    fn pack(&self, index: u32, generation: u32) -> u64 {
        (self.kind << 56) | (((generation & 0xFF_FFFF) as u64) << 32) | index as u64
    }

    fn locate(&self, handle: u64) -> Result<(usize, u32), FfiError> {
        if handle >> 56 != self.kind {
            let what = if handle == 0 {
                format!("{} handle is 0 (never created, or already freed)", self.name)
            } else if handle >> 56 == KIND_VALUE {
                format!("handle {handle:#x} is a value handle, not a {} handle", self.name)
            } else {
                format!("{handle:#x} is not a {} handle", self.name)
            };
            return Err(FfiError::new(zen_status_t::ZEN_ERR_INVALID_HANDLE, what));
        }
        Ok(((handle & 0xFFFF_FFFF) as usize, ((handle >> 32) & 0xFF_FFFF) as u32))
    }
}

pub(crate) fn insert_into<T>(table: &RwLock<Table<T>>, item: T) -> u64 {
    let mut t = table.write();
    let item = Some(Arc::new(item));
    match t.free.pop() {
        Some(i) => {
            let slot = &mut t.slots[i as usize];
            slot.generation = slot.generation.wrapping_add(1) & 0xFF_FFFF;
            slot.item = item;
            let g = slot.generation;
            t.pack(i, g)
        }
        None => {
            let i = t.slots.len() as u32;
            t.slots.push(Slot { generation: 1, item });
            t.pack(i, 1)
        }
    }
}

pub(crate) fn get_from<T>(table: &RwLock<Table<T>>, handle: u64) -> Result<Arc<T>, FfiError> {
    let t = table.read();
    let (i, generation) = t.locate(handle)?;
    match t.slots.get(i) {
        Some(Slot { generation: g, item: Some(item) }) if *g == generation => Ok(item.clone()),
        _ => Err(FfiError::new(
            zen_status_t::ZEN_ERR_INVALID_HANDLE,
            format!("{} handle {handle:#x} was freed", t.name),
        )),
    }
}

/// Removes an item; `None` if the handle was not live (0, freed twice, wrong kind).
pub(crate) fn remove_from<T>(table: &RwLock<Table<T>>, handle: u64) -> Option<Arc<T>> {
    let mut t = table.write();
    let (i, generation) = t.locate(handle).ok()?;
    let slot = t.slots.get_mut(i).filter(|s| s.generation == generation)?;
    let item = slot.item.take()?;
    t.free.push(i as u32);
    Some(item)
}

static CONTEXTS: RwLock<Table<ContextCell>> = RwLock::new(Table::new(KIND_CONTEXT, "context"));

pub(crate) fn insert(ctx: Context) -> u64 {
    insert_into(
        &CONTEXTS,
        ContextCell {
            inner: Mutex::new(Inner { ctx, poisoned: None, last_event: None, held_out: None, freed: false }),
            ticked: Condvar::new(),
        },
    )
}

pub(crate) fn get(handle: u64) -> Result<Arc<ContextCell>, FfiError> {
    get_from(&CONTEXTS, handle)
}

/// Removes a context from the table; `None` if the handle was not live (0, freed twice).
pub(crate) fn remove(handle: u64) -> Option<Arc<ContextCell>> {
    remove_from(&CONTEXTS, handle)
}

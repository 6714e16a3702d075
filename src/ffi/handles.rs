//! The handle tables: C callers hold small checked numbers, never pointers.
//!
//! Owns the global tables of live contexts and networks. A handle number packs a kind
//! tag (a number of one kind cast to another is still caught at run time), a 32-bit
//! generation and a 24-bit slot index. A slot whose generation would wrap is retired
//! instead of reused, so a handle number is never issued twice in the life of the
//! process: a freed handle stays invalid forever. Looking a handle up clones an `Arc`,
//! so freeing a context while another thread is inside a call on it is safe: the
//! context dies when that call returns.

use super::status::{zen_status_t, FfiError};
use crate::context::{Context, Outbound};
use crate::events::ChangeEvent;
use parking_lot::{Condvar, Mutex, RwLock};
use std::sync::Arc;

pub(crate) const KIND_CONTEXT: u64 = 0xC7;
/// Networks (the simulator's C API); the tag stays reserved when it is not built.
#[cfg_attr(not(feature = "sim"), allow(dead_code))]
pub(crate) const KIND_NET: u64 = 0x4E;
/// Buses and their endpoints (the in-process transport).
pub(crate) const KIND_BUS: u64 = 0xB5;
pub(crate) const KIND_ENDPOINT: u64 = 0xE9;
/// Bridges between two relay endpoints.
pub(crate) const KIND_BRIDGE: u64 = 0xB6;
/// Drivers: a context pumped on a library thread.
pub(crate) const KIND_DRIVER: u64 = 0xD7;

const INDEX_BITS: u32 = 24;
const INDEX_MASK: u64 = (1 << INDEX_BITS) - 1;
const GENERATION_MASK: u64 = 0xFFFF_FFFF;

/// A context and what the C layer keeps beside it.
pub(crate) struct Inner {
    pub ctx: Context,
    /// Set when a panic was caught inside a call on this context.
    pub poisoned: Option<String>,
    /// The last event handed out; its strings back the pointers in that `zen_change_t`.
    pub last_event: Option<ChangeEvent>,
    /// The last table event handed out (backs the pointers in that `zen_table_change_t`).
    pub last_table_event: Option<crate::collection::TableEvent>,
    /// What the last `zen_table_get` read (backs its string and bytes pointers).
    pub table_read: Option<crate::value::Value>,
    /// The last `zen_table_entries` snapshot, read by `zen_table_entry_at`.
    pub table_snapshot: Vec<(crate::collection::Key, crate::value::Value)>,
    /// An outbound message that did not fit the caller's buffer, kept for the retry.
    pub held_out: Option<Outbound>,
    /// Set by `zen_context_free`, so a call or wait still holding the cell stops.
    pub freed: bool,
}

pub(crate) struct ContextCell {
    pub inner: Mutex<Inner>,
    /// Notified after every tick (and on free), for `zen_value_wait_converged`.
    pub ticked: Condvar,
}

/// Something a caught panic leaves in an unknown state: later calls on it must fail.
pub(crate) trait Poison: Send + Sync {
    fn poison(&self, why: &str);
}

impl Poison for ContextCell {
    fn poison(&self, why: &str) {
        self.inner.lock().poisoned.get_or_insert_with(|| why.to_owned());
    }
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
        (self.kind << 56) | ((generation as u64) << INDEX_BITS) | index as u64
    }

    fn locate(&self, handle: u64) -> Result<(usize, u32), FfiError> {
        if handle >> 56 != self.kind {
            let what = if handle == 0 {
                format!("{} handle is 0 (never created, or already freed)", self.name)
            } else {
                format!("{handle:#x} is not a {} handle", self.name)
            };
            return Err(FfiError::new(zen_status_t::ZEN_ERR_INVALID_HANDLE, what));
        }
        Ok(((handle & INDEX_MASK) as usize, ((handle >> INDEX_BITS) & GENERATION_MASK) as u32))
    }
}

pub(crate) fn insert_into<T>(table: &RwLock<Table<T>>, item: T) -> Result<u64, FfiError> {
    let mut t = table.write();
    let item = Some(Arc::new(item));
    if let Some(i) = t.free.pop() {
        let slot = &mut t.slots[i as usize];
        slot.generation += 1; // below u32::MAX: `remove_from` retires a slot before that
        slot.item = item;
        let g = slot.generation;
        return Ok(t.pack(i, g));
    }
    let i = t.slots.len() as u64;
    if i > INDEX_MASK {
        return Err(FfiError::new(
            zen_status_t::ZEN_ERR_TOO_LARGE,
            format!("{} live {}s: no more handles", INDEX_MASK + 1, t.name),
        ));
    }
    t.slots.push(Slot { generation: 1, item });
    Ok(t.pack(i as u32, 1))
}

pub(crate) fn get_from<T>(table: &RwLock<Table<T>>, handle: u64) -> Result<Arc<T>, FfiError> {
    let t = table.read();
    let (i, generation) = t.locate(handle)?;
    match t.slots.get(i) {
        Some(Slot { generation: g, item: Some(item) }) if *g == generation => Ok(item.clone()),
        _ => Err(FfiError::new(
            zen_status_t::ZEN_ERR_INVALID_HANDLE,
            format!("{} handle {handle:#x} was freed (or never issued)", t.name),
        )),
    }
}

/// Removes an item; `None` if the handle was not live (0, freed twice, wrong kind).
pub(crate) fn remove_from<T>(table: &RwLock<Table<T>>, handle: u64) -> Option<Arc<T>> {
    let mut t = table.write();
    let (i, generation) = t.locate(handle).ok()?;
    let slot = t.slots.get_mut(i).filter(|s| s.generation == generation)?;
    let item = slot.item.take()?;
    // A slot that has used up its generations is retired: its numbers are never reissued.
    if slot.generation < u32::MAX {
        t.free.push(i as u32);
    }
    Some(item)
}

static CONTEXTS: RwLock<Table<ContextCell>> = RwLock::new(Table::new(KIND_CONTEXT, "context"));

pub(crate) fn insert(ctx: Context) -> Result<u64, FfiError> {
    insert_into(
        &CONTEXTS,
        ContextCell {
            inner: Mutex::new(Inner {
                ctx,
                poisoned: None,
                last_event: None,
                last_table_event: None,
                table_read: None,
                table_snapshot: Vec::new(),
                held_out: None,
                freed: false,
            }),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retired_slot_never_reissues_a_number() {
        let table: RwLock<Table<u8>> = RwLock::new(Table::new(KIND_NET, "test"));
        let first = insert_into(&table, 1).unwrap();
        remove_from(&table, first).unwrap();
        table.write().slots[0].generation = u32::MAX - 1;
        table.write().free = vec![0];
        let last = insert_into(&table, 2).unwrap();
        assert_eq!((last >> INDEX_BITS) & GENERATION_MASK, u32::MAX as u64);
        remove_from(&table, last).unwrap();
        let next = insert_into(&table, 3).unwrap();
        assert_eq!(next & INDEX_MASK, 1, "slot 0 is retired; a new slot is used");
        assert!(get_from(&table, last).is_err() && get_from(&table, first).is_err());
    }
}

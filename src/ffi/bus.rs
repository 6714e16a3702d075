//! C exports for the in-process bus (`crate::bus`): contexts on threads of one process
//! linked without writing a transport. Join a bus as a peer to get an endpoint, then
//! call `zen_endpoint_pump` once per frame instead of ticking the context and moving
//! its messages yourself.
#![allow(non_camel_case_types)]

use super::boundary::{guard, guard_infallible, out, reentrant, sized_out, with_cell, Entered, Growable};
use super::handles::{self, get_from, insert_into, remove_from, Poison, Table, KIND_BUS, KIND_ENDPOINT};
use super::status::{zen_status_t, FfiError};
use super::types::zen_context_t;
use crate::bus::{Bus, BusEndpoint};
use crate::link::{pump, Link, LinkStats};
use parking_lot::{Mutex, RwLock};

/// An in-process bus (checked on every call; a zeroed handle is never valid). From
/// `zen_bus_new`; the caller owns it until `zen_bus_free`. Thread-safe: endpoints on
/// any threads may share it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct zen_bus_t {
    pub id: u64,
}

/// One peer's place on a bus, from `zen_bus_join`; the caller owns it until
/// `zen_endpoint_free` (which is leaving the bus). Pump it from the thread that owns its
/// context (calls on one endpoint are serialised).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct zen_endpoint_t {
    pub id: u64,
}

/// An endpoint's counters since it joined. Messages and bytes count each recipient (a
/// broadcast to three peers is three sent). Start from `struct_size = sizeof`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct zen_endpoint_stats_t {
    /// `sizeof(zen_endpoint_stats_t)` as your header has it.
    pub struct_size: usize,
    pub sent: u64,
    pub bytes_sent: u64,
    pub received: u64,
    pub bytes_received: u64,
    /// Messages dropped because a receiver's queue was full (the protocol repairs them).
    pub dropped: u64,
    /// Input refused as not ours (garbage, out-of-place control messages).
    pub rejected: u64,
}

impl Growable for zen_endpoint_stats_t {}

struct BusSlot(Bus);

impl Poison for BusSlot {
    // Nothing of a bus is left half-changed by a panic: its lock cannot poison.
    fn poison(&self, _why: &str) {}
}

struct EndpointSlot {
    endpoint: Mutex<BusEndpoint>,
    poisoned: Mutex<Option<String>>,
}

impl Poison for EndpointSlot {
    fn poison(&self, why: &str) {
        self.poisoned.lock().get_or_insert_with(|| why.to_owned());
    }
}

static BUSES: RwLock<Table<BusSlot>> = RwLock::new(Table::new(KIND_BUS, "bus"));
static ENDPOINTS: RwLock<Table<EndpointSlot>> = RwLock::new(Table::new(KIND_ENDPOINT, "endpoint"));

fn with_endpoint<R>(
    endpoint: zen_endpoint_t,
    f: impl FnOnce(&mut BusEndpoint) -> Result<R, FfiError>,
) -> Result<R, FfiError> {
    // A host callback (a custom merge) runs inside a pump, holding its endpoint's lock.
    reentrant()?;
    let slot = get_from(&ENDPOINTS, endpoint.id)?;
    if let Some(why) = &*slot.poisoned.lock() {
        return Err(FfiError::new(
            zen_status_t::ZEN_ERR_POISONED,
            format!("endpoint is poisoned by an earlier panic ({why}); free it"),
        ));
    }
    let _entered = Entered(&slot);
    let r = f(&mut slot.endpoint.lock());
    r
}

/// Creates a bus with no endpoints.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_bus_new(out_bus: *mut zen_bus_t) -> zen_status_t {
    guard(|| {
        let slot = unsafe { out(out_bus, "out_bus") }?;
        let id = insert_into(&BUSES, BusSlot(Bus::new()))?;
        slot.set(zen_bus_t { id });
        Ok(())
    })
}

/// Frees the bus handle. Endpoints already joined keep working (and keep their peers);
/// none can join any more. Safe on a zeroed handle and twice.
#[no_mangle]
pub extern "C" fn zen_bus_free(bus: zen_bus_t) {
    guard_infallible((), || drop(remove_from(&BUSES, bus.id)))
}

/// Joins `bus` as `peer_id` (1..2^53-1, unique on the bus; use the peer id of the context
/// you will pump with it) with room for `capacity` (at least 1) messages not yet pumped.
/// Sends never block: a message for a full queue is dropped and counted (the protocol
/// repairs it). Every endpoint already there learns of the new peer at its next pump,
/// and the new one of them. A peer id already on the bus is `ZEN_ERR_INVALID_ARGUMENT`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_bus_join(
    bus: zen_bus_t,
    peer_id: u64,
    capacity: usize,
    out_endpoint: *mut zen_endpoint_t,
) -> zen_status_t {
    guard(|| {
        let slot = unsafe { out(out_endpoint, "out_endpoint") }?;
        let b = get_from(&BUSES, bus.id)?;
        let endpoint = b.0.join(peer_id, capacity)?;
        let id = insert_into(
            &ENDPOINTS,
            EndpointSlot { endpoint: Mutex::new(endpoint), poisoned: Mutex::new(None) },
        )?;
        slot.set(zen_endpoint_t { id });
        Ok(())
    })
}

/// One frame of `ctx` on `endpoint`: peers that joined or left the bus become members
/// or stop being members, messages that arrived are received (from the sender the bus
/// knows), the context ticks to `now_ms`, and its outbound messages go out. Wakes
/// threads waiting on the context (`zen_value_wait_converged`).
#[no_mangle]
#[must_use]
pub extern "C" fn zen_endpoint_pump(
    ctx: zen_context_t,
    endpoint: zen_endpoint_t,
    now_ms: u64,
) -> zen_status_t {
    guard(|| {
        let cell = handles::get(ctx.id)?;
        with_endpoint(endpoint, |ep| {
            with_cell(&cell, |c| {
                if ep.peer_id() != c.ctx.peer_id() {
                    return Err(FfiError::new(
                        zen_status_t::ZEN_ERR_INVALID_ARGUMENT,
                        format!(
                            "endpoint joined as peer {} but the context is peer {}",
                            ep.peer_id(),
                            c.ctx.peer_id()
                        ),
                    ));
                }
                pump(&mut c.ctx, ep, now_ms);
                Ok(())
            })
        })?;
        cell.ticked.notify_all();
        Ok(())
    })
}

/// The endpoint's counters (see `zen_endpoint_stats_t`); set `out_stats->struct_size`
/// first.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_endpoint_stats(
    endpoint: zen_endpoint_t,
    out_stats: *mut zen_endpoint_stats_t,
) -> zen_status_t {
    guard(|| {
        let LinkStats { sent, bytes_sent, received, bytes_received, dropped, rejected } =
            with_endpoint(endpoint, |ep| Ok(ep.stats()))?;
        let stats = zen_endpoint_stats_t {
            struct_size: std::mem::size_of::<zen_endpoint_stats_t>(),
            sent,
            bytes_sent,
            received,
            bytes_received,
            dropped,
            rejected,
        };
        unsafe { sized_out(out_stats, stats, "out_stats") }
    })
}

/// Leaves the bus and frees the endpoint: the other endpoints' contexts stop counting
/// this peer as a member at their next pump. Safe on a zeroed handle and twice.
#[no_mangle]
pub extern "C" fn zen_endpoint_free(endpoint: zen_endpoint_t) {
    guard_infallible((), || drop(remove_from(&ENDPOINTS, endpoint.id)))
}

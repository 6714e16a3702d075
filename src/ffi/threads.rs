//! C exports for the threads the library runs for a C game: a bridge between two relay
//! endpoints, and a driver that pumps a context on its endpoint at a set rate (a server
//! or worker with no frame loop of its own). Each takes its endpoints out of the caller's
//! hands; freeing it stops the thread and frees them.
#![allow(non_camel_case_types)]

use super::boundary::{contain, guard, guard_infallible, out, sized_out, with_cell, Growable};
use super::handles::{self, get_from, insert_into, remove_from, Poison, Table, KIND_BRIDGE, KIND_DRIVER};
use super::link::zen_endpoint_t;
use super::link::{check_pair, pump_cell, with_endpoint, EndpointSlot, ENDPOINTS};
use super::status::{zen_status_t, FfiError};
use super::types::zen_context_t;
use crate::bridge::{Bridge, BridgeStats, BridgeThread};
use crate::error::Error;
use crate::link::{Link, LinkEvent, LinkStats, Relay};
use crate::pacer::{halt, spawn_paced};
use parking_lot::{Mutex, RwLock};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A bridge between two relay endpoints, running on a thread of its own (checked on
/// every call; a zeroed handle is never valid). From `zen_bridge_start`; the caller owns
/// it until `zen_bridge_free`. Thread-safe.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct zen_bridge_t {
    pub id: u64,
}

/// What a bridge has moved since it started. Start from `struct_size = sizeof`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct zen_bridge_stats_t {
    /// `sizeof(zen_bridge_stats_t)` as your header has it.
    pub struct_size: usize,
    /// Messages moved from one side to the other, and their bytes.
    pub forwarded: u64,
    pub bytes_forwarded: u64,
    /// Peers announced on the other side (a peer that leaves and comes back counts twice).
    pub carried: u64,
    /// Peers the other side refused: a peer id it already has (bridges must form a tree).
    pub refused: u64,
}

impl Growable for zen_bridge_stats_t {}

/// A context pumped on its endpoint by a thread of the library's (checked on every call;
/// a zeroed handle is never valid). From `zen_driver_start`; the caller owns it until
/// `zen_driver_free`. Thread-safe.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct zen_driver_t {
    pub id: u64,
}

/// An endpoint a bridge took out of the table. Locked per use: a call that looked the
/// endpoint up just before the bridge took it finishes safely.
struct Taken(Arc<EndpointSlot>);

impl Link for Taken {
    fn send(&mut self, to: Option<u64>, bytes: Vec<u8>) {
        self.0.endpoint.lock().send(to, bytes)
    }

    fn poll(&mut self) -> Option<LinkEvent> {
        self.0.endpoint.lock().poll()
    }

    fn stats(&self) -> LinkStats {
        self.0.endpoint.lock().stats()
    }
}

impl Relay for Taken {
    fn carry(&mut self, peer: u64) -> Result<(), Error> {
        self.0.endpoint.lock().carry(peer)
    }

    fn uncarry(&mut self, peer: u64) {
        self.0.endpoint.lock().uncarry(peer)
    }

    fn send_as(&mut self, from: u64, to: Option<u64>, bytes: Arc<[u8]>) {
        self.0.endpoint.lock().send_as(from, to, bytes)
    }
}

struct BridgeSlot(BridgeThread);

impl Poison for BridgeSlot {
    // The bridge's state lives on its thread; a panic there ends the thread, not a call.
    fn poison(&self, _why: &str) {}
}

static BRIDGES: RwLock<Table<BridgeSlot>> = RwLock::new(Table::new(KIND_BRIDGE, "bridge"));

/// Most milliseconds between two frames of a library thread: a bridge's pump is a hop of
/// latency, a driver's frame a tick.
const MAX_PERIOD_MS: u32 = 1000;

fn period(name: &str, ms: u32) -> Result<(), FfiError> {
    if ms == 0 || ms > MAX_PERIOD_MS {
        return Err(FfiError::new(
            zen_status_t::ZEN_ERR_INVALID_ARGUMENT,
            format!("{name} {ms} is outside 1..={MAX_PERIOD_MS}"),
        ));
    }
    Ok(())
}

/// Takes a checked endpoint out of the table, for a thread of the library's.
fn take_endpoint(e: zen_endpoint_t) -> Result<Arc<EndpointSlot>, FfiError> {
    // Checked live by the caller just before: only a free racing this call fails here.
    remove_from(&ENDPOINTS, e.id).ok_or_else(|| {
        FfiError::new(
            zen_status_t::ZEN_ERR_INVALID_HANDLE,
            "the endpoint was freed while a thread was starting",
        )
    })
}

/// Starts a thread that joins relay endpoints `a` and `b` every `period_ms`
/// (1..=1000; 1 or 2 for a game): the peers each side reaches become members on the
/// other, and messages cross naming their original sender. The bridge takes both
/// endpoints: their handles are invalid from then on, and `zen_bridge_free` frees them.
/// An endpoint that is not a relay, the same endpoint twice, or a period out of range is
/// `ZEN_ERR_INVALID_ARGUMENT`, and both endpoints stay yours.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_bridge_start(
    a: zen_endpoint_t,
    b: zen_endpoint_t,
    period_ms: u32,
    out_bridge: *mut zen_bridge_t,
) -> zen_status_t {
    guard(|| {
        let slot = unsafe { out(out_bridge, "out_bridge") }?;
        period("period_ms", period_ms)?;
        if a == b {
            return Err(FfiError::new(
                zen_status_t::ZEN_ERR_INVALID_ARGUMENT,
                "a bridge joins two different endpoints; a and b are the same".to_owned(),
            ));
        }
        for (name, e) in [("a", a), ("b", b)] {
            let peer = with_endpoint(e, |ep| Ok(ep.peer_id()))?;
            if peer != 0 {
                return Err(FfiError::new(
                    zen_status_t::ZEN_ERR_INVALID_ARGUMENT,
                    format!(
                        "endpoint {name} is peer {peer}'s, not a relay: make bridge sides with \
                         zen_bus_join_relay, zen_enet_listen_relay or zen_enet_connect_relay"
                    ),
                ));
            }
        }
        let (sa, sb) = (take_endpoint(a)?, take_endpoint(b)?);
        let running = Bridge::new(Taken(sa), Taken(sb)).spawn(period_ms as u64);
        let id = insert_into(&BRIDGES, BridgeSlot(running))?;
        slot.set(zen_bridge_t { id });
        Ok(())
    })
}

/// The bridge's counters now (see `zen_bridge_stats_t`); set
/// `out_stats->struct_size` first.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_bridge_stats(
    bridge: zen_bridge_t,
    out_stats: *mut zen_bridge_stats_t,
) -> zen_status_t {
    guard(|| {
        let BridgeStats { forwarded, bytes_forwarded, carried, refused } =
            get_from(&BRIDGES, bridge.id)?.0.stats();
        let stats = zen_bridge_stats_t {
            struct_size: std::mem::size_of::<zen_bridge_stats_t>(),
            forwarded,
            bytes_forwarded,
            carried,
            refused,
        };
        unsafe { sized_out(out_stats, stats, "out_stats") }
    })
}

/// Stops the bridge's thread and frees both its endpoints: the peers each side carried
/// leave the other. Safe on a zeroed handle and twice.
#[no_mangle]
pub extern "C" fn zen_bridge_free(bridge: zen_bridge_t) {
    guard_infallible((), || drop(remove_from(&BRIDGES, bridge.id)))
}

/// A driver's thread and what its frames report.
struct DriverSlot {
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The first error a frame met (it keeps pumping unless the context is gone).
    failure: Arc<Mutex<Option<FfiError>>>,
}

impl Poison for DriverSlot {
    // A frame's panic poisons the context it was in (the boundary does that); the driver
    // itself holds nothing a panic could leave half-changed.
    fn poison(&self, _why: &str) {}
}

impl Drop for DriverSlot {
    fn drop(&mut self) {
        halt(&self.stop, &mut self.thread.lock());
    }
}

static DRIVERS: RwLock<Table<DriverSlot>> = RwLock::new(Table::new(KIND_DRIVER, "driver"));

/// Starts a thread that pumps `ctx` on `endpoint` every `tick_ms` (1..=1000; 16 for a
/// 60 Hz game), as `zen_endpoint_pump` would, with the context's clock continuing from
/// its last tick by the thread's monotonic clock. The game keeps using the context from
/// its own threads (every call on a context is thread-safe) and waits with
/// `zen_value_wait_converged`; it must not tick or pump the context itself. The driver
/// takes the endpoint (its handle is invalid from then on); the context stays yours:
/// free the driver first. An endpoint of another peer, a relay, or a period out of range
/// is `ZEN_ERR_INVALID_ARGUMENT`, and the endpoint stays yours.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_driver_start(
    ctx: zen_context_t,
    endpoint: zen_endpoint_t,
    tick_ms: u32,
    out_driver: *mut zen_driver_t,
) -> zen_status_t {
    guard(|| {
        let slot = unsafe { out(out_driver, "out_driver") }?;
        period("tick_ms", tick_ms)?;
        let cell = handles::get(ctx.id)?;
        // Endpoint, then context: the order every pump takes the two locks in.
        let start_ms = with_endpoint(endpoint, |ep| {
            with_cell(&cell, |c| {
                check_pair(&c.ctx, ep)?;
                Ok(c.ctx.now_ms())
            })
        })?;
        let ep = take_endpoint(endpoint)?;
        let failure: Arc<Mutex<Option<FfiError>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = failure.clone();
        let frame = move |elapsed: Duration| {
            let now_ms = start_ms + elapsed.as_millis() as u64;
            match contain(|| pump_cell(&cell, &mut ep.endpoint.lock(), now_ms)) {
                Ok(()) => true,
                Err(e) => {
                    // A freed or poisoned context ends the driver; a transport's
                    // refusal is reported and the pumping goes on.
                    let go_on = e.status == zen_status_t::ZEN_ERR_TRANSPORT;
                    seen.lock().get_or_insert(e);
                    go_on
                }
            }
        };
        let thread =
            spawn_paced("zen-crdt driver", Duration::from_millis(tick_ms as u64), stop.clone(), frame);
        let id = insert_into(&DRIVERS, DriverSlot { stop, thread: Mutex::new(Some(thread)), failure })?;
        slot.set(zen_driver_t { id });
        Ok(())
    })
}

/// `ZEN_OK` while the driver pumps without trouble; otherwise the status and message
/// (for `zen_last_error`) of the first error a frame met: `ZEN_ERR_TRANSPORT` when the
/// ENet host refused the peer (the driver goes on pumping), or the error that stopped it
/// (the context was freed, or poisoned).
#[no_mangle]
#[must_use]
pub extern "C" fn zen_driver_check(driver: zen_driver_t) -> zen_status_t {
    guard(|| match &*get_from(&DRIVERS, driver.id)?.failure.lock() {
        Some(e) => Err(FfiError::new(e.status, e.message.clone())),
        None => Ok(()),
    })
}

/// Stops the driver's thread (after the frame in progress) and frees its endpoint: the
/// others see the peer leave. The context stays yours, ticked no more. Safe on a zeroed
/// handle and twice.
#[no_mangle]
pub extern "C" fn zen_driver_free(driver: zen_driver_t) {
    guard_infallible((), || drop(remove_from(&DRIVERS, driver.id)))
}

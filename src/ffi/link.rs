//! C exports for the links: the in-process bus (`crate::bus`) and ENet over UDP
//! (`crate::enet`). Either gives an endpoint; call `zen_endpoint_pump` once per frame
//! instead of ticking the context and moving its messages yourself. Relay endpoints
//! (`zen_bus_join_relay`, `zen_enet_listen_relay`, `zen_enet_connect_relay`) have no
//! context: `zen_bridge_start` joins two of them on a thread of their own.
#![allow(non_camel_case_types)]

use super::boundary::{
    bytes, guard, guard_infallible, out, reentrant, sized_in, sized_out, text, with_cell, Entered, Growable,
};
use super::handles::{
    self, get_from, insert_into, remove_from, ContextCell, Poison, Table, KIND_BUS, KIND_ENDPOINT,
};
use super::status::{zen_status_t, FfiError};
use super::types::zen_context_t;
use crate::bus::{Bus, BusEndpoint};
use crate::context::Context;
use crate::enet::{EnetLink, EnetOptions};
use crate::error::Error;
use crate::link::{pump, Link, LinkEvent, LinkStats, Relay};
use parking_lot::{Mutex, RwLock};
use std::ffi::c_char;
use std::net::SocketAddr;
use std::sync::Arc;

/// An in-process bus (checked on every call; a zeroed handle is never valid). From
/// `zen_bus_new`; the caller owns it until `zen_bus_free`. Thread-safe: endpoints on
/// any threads may share it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct zen_bus_t {
    pub id: u64,
}

/// One peer's link: a place on a bus (`zen_bus_join`) or an ENet host or client
/// (`zen_enet_listen`, `zen_enet_connect`), or a relay for a bridge (the `_relay`
/// variants). The caller owns it until `zen_endpoint_free` (which is leaving) or until
/// `zen_bridge_start` takes it. Pump it from the thread that owns its context (calls on
/// one endpoint are serialised).
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
    /// Messages dropped because a receiver's queue was full or the transport refused
    /// them (the protocol repairs them).
    pub dropped: u64,
    /// Input refused as not ours: malformed or out-of-place frames, a wrong link
    /// version, a peer id already taken.
    pub rejected: u64,
}

impl Growable for zen_endpoint_stats_t {}

struct BusSlot(Bus);

impl Poison for BusSlot {
    // Nothing of a bus is left half-changed by a panic: its lock cannot poison.
    fn poison(&self, _why: &str) {}
}

/// ENet settings. Start from `zen_enet_options_default` (which sets `struct_size`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct zen_enet_options_t {
    /// `sizeof(zen_enet_options_t)` as your header has it.
    pub struct_size: usize,
    /// Most clients a listen host accepts.
    pub max_clients: u32,
    /// A connection silent this long (ms) is dropped and its peer leaves. Keep it at or
    /// below the context's `peer_timeout_ms`.
    pub timeout_ms: u32,
    /// Most data messages a host takes from one client per second (a one-second burst
    /// allowed); the rest are dropped and counted as rejected. A game sends 60 to 200.
    pub max_messages_per_s: u32,
    /// The room a client asks for in its hello (`room_len` bytes of UTF-8, at most 64;
    /// NULL with 0 for none). A host with a room refuses clients that name another; a
    /// zen-relay gateway keeps rooms apart. Since 1.2.
    pub room: *const c_char,
    pub room_len: usize,
    /// The token a client shows in its hello (at most 512 bytes; NULL with 0 for none). A
    /// host with a token refuses clients that show another; a zen-relay gateway checks it
    /// against the room and peer id. The library copies both when the link opens.
    /// Since 1.2.
    pub token: *const u8,
    pub token_len: usize,
}

impl Growable for zen_enet_options_t {}

fn enet_options_out(o: &EnetOptions) -> zen_enet_options_t {
    zen_enet_options_t {
        struct_size: std::mem::size_of::<zen_enet_options_t>(),
        max_clients: o.max_clients.min(u32::MAX as usize) as u32,
        timeout_ms: o.timeout_ms,
        max_messages_per_s: o.max_messages_per_s,
        room: std::ptr::null(),
        room_len: 0,
        token: std::ptr::null(),
        token_len: 0,
    }
}

/// The links an endpoint can be.
pub(super) enum AnyLink {
    Bus(BusEndpoint),
    Enet(EnetLink),
}

impl AnyLink {
    pub(super) fn peer_id(&self) -> u64 {
        match self {
            AnyLink::Bus(b) => b.peer_id(),
            AnyLink::Enet(e) => e.peer_id(),
        }
    }
}

impl Relay for AnyLink {
    fn carry(&mut self, peer: u64) -> Result<(), Error> {
        match self {
            AnyLink::Bus(b) => b.carry(peer),
            AnyLink::Enet(e) => e.carry(peer),
        }
    }

    fn uncarry(&mut self, peer: u64) {
        match self {
            AnyLink::Bus(b) => b.uncarry(peer),
            AnyLink::Enet(e) => e.uncarry(peer),
        }
    }

    fn send_as(&mut self, from: u64, to: Option<u64>, bytes: Arc<[u8]>) {
        match self {
            AnyLink::Bus(b) => b.send_as(from, to, bytes),
            AnyLink::Enet(e) => e.send_as(from, to, bytes),
        }
    }
}

impl Link for AnyLink {
    fn send(&mut self, to: Option<u64>, bytes: Vec<u8>) {
        match self {
            AnyLink::Bus(b) => b.send(to, bytes),
            AnyLink::Enet(e) => e.send(to, bytes),
        }
    }

    fn poll(&mut self) -> Option<LinkEvent> {
        match self {
            AnyLink::Bus(b) => b.poll(),
            AnyLink::Enet(e) => e.poll(),
        }
    }

    fn stats(&self) -> LinkStats {
        match self {
            AnyLink::Bus(b) => b.stats(),
            AnyLink::Enet(e) => e.stats(),
        }
    }
}

pub(super) struct EndpointSlot {
    pub(super) endpoint: Mutex<AnyLink>,
    poisoned: Mutex<Option<String>>,
}

fn insert_endpoint(
    link: AnyLink,
    out_endpoint: super::boundary::Out<zen_endpoint_t>,
) -> Result<(), FfiError> {
    let id =
        insert_into(&ENDPOINTS, EndpointSlot { endpoint: Mutex::new(link), poisoned: Mutex::new(None) })?;
    out_endpoint.set(zen_endpoint_t { id });
    Ok(())
}

impl Poison for EndpointSlot {
    fn poison(&self, why: &str) {
        self.poisoned.lock().get_or_insert_with(|| why.to_owned());
    }
}

static BUSES: RwLock<Table<BusSlot>> = RwLock::new(Table::new(KIND_BUS, "bus"));
pub(super) static ENDPOINTS: RwLock<Table<EndpointSlot>> = RwLock::new(Table::new(KIND_ENDPOINT, "endpoint"));

pub(super) fn with_endpoint<R>(
    endpoint: zen_endpoint_t,
    f: impl FnOnce(&mut AnyLink) -> Result<R, FfiError>,
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
        insert_endpoint(AnyLink::Bus(endpoint), slot)
    })
}

/// Joins `bus` as a relay for `zen_bridge_start`: an endpoint with no peer of its own
/// (nobody sees it join, and it cannot be pumped with a context), with room for
/// `capacity` (at least 1) messages not yet bridged.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_bus_join_relay(
    bus: zen_bus_t,
    capacity: usize,
    out_endpoint: *mut zen_endpoint_t,
) -> zen_status_t {
    guard(|| {
        let slot = unsafe { out(out_endpoint, "out_endpoint") }?;
        let b = get_from(&BUSES, bus.id)?;
        let endpoint = b.0.join_relay(capacity)?;
        insert_endpoint(AnyLink::Bus(endpoint), slot)
    })
}

/// One frame of `ctx` on `endpoint`: peers that joined or left become members or stop
/// being members, messages that arrived are received (from the sender the link knows),
/// the context ticks to `now_ms`, and its outbound messages go out. Wakes threads
/// waiting on the context (`zen_value_wait_converged`). An ENet client the host refused
/// gets `ZEN_ERR_TRANSPORT` with the host's reason, at this and every later pump.
#[no_mangle]
#[must_use]
pub extern "C" fn zen_endpoint_pump(
    ctx: zen_context_t,
    endpoint: zen_endpoint_t,
    now_ms: u64,
) -> zen_status_t {
    guard(|| {
        let cell = handles::get(ctx.id)?;
        with_endpoint(endpoint, |ep| pump_cell(&cell, ep, now_ms))
    })
}

/// `ZEN_ERR_INVALID_ARGUMENT` unless `ep` joined as the context's peer.
pub(super) fn check_pair(c: &Context, ep: &AnyLink) -> Result<(), FfiError> {
    if ep.peer_id() == c.peer_id() {
        return Ok(());
    }
    Err(FfiError::new(
        zen_status_t::ZEN_ERR_INVALID_ARGUMENT,
        format!("endpoint joined as peer {} but the context is peer {}", ep.peer_id(), c.peer_id()),
    ))
}

/// One frame of a context on an endpoint (`zen_endpoint_pump`, and a driver's frame),
/// then wakes the context's waiters.
pub(super) fn pump_cell(cell: &Arc<ContextCell>, ep: &mut AnyLink, now_ms: u64) -> Result<(), FfiError> {
    with_cell(cell, |c| {
        check_pair(&c.ctx, ep)?;
        pump(&mut c.ctx, ep, now_ms);
        Ok(())
    })?;
    cell.ticked.notify_all();
    match ep {
        AnyLink::Enet(e) => match e.refused() {
            Some(why) => Err(FfiError::new(
                zen_status_t::ZEN_ERR_TRANSPORT,
                format!("the host refused peer {}: {why}", e.peer_id()),
            )),
            None => Ok(()),
        },
        AnyLink::Bus(_) => Ok(()),
    }
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

/// Leaves and frees the endpoint: the other endpoints' contexts stop counting this peer
/// as a member at their next pump (an ENet link disconnects at once). Safe on a zeroed
/// handle and twice.
#[no_mangle]
pub extern "C" fn zen_endpoint_free(endpoint: zen_endpoint_t) {
    guard_infallible((), || drop(remove_from(&ENDPOINTS, endpoint.id)))
}

/// # Safety
/// `p` must be NULL or valid for reads of `len` bytes.
unsafe fn address(p: *const c_char, len: usize, what: &str) -> Result<SocketAddr, FfiError> {
    let s = unsafe { text(p, len, what) }?;
    s.parse().map_err(|_| {
        FfiError::new(
            zen_status_t::ZEN_ERR_INVALID_ARGUMENT,
            format!("{what} {s:?} is not an IP address and port (\"192.0.2.7:7000\", \"[::1]:7000\"); names are not resolved"),
        )
    })
}

/// # Safety
/// `opts` must be NULL or point to a `zen_enet_options_t` of its `struct_size`.
unsafe fn enet_options(opts: *const zen_enet_options_t) -> Result<EnetOptions, FfiError> {
    let defaults = enet_options_out(&EnetOptions::default());
    let o = if opts.is_null() { defaults } else { unsafe { sized_in(opts, defaults, "opts") }? };
    if o.max_clients == 0 || o.timeout_ms == 0 || o.max_messages_per_s == 0 {
        return Err(FfiError::new(
            zen_status_t::ZEN_ERR_INVALID_ARGUMENT,
            format!(
                "ENet options: max_clients {}, timeout_ms {} and max_messages_per_s {} must be at least 1",
                o.max_clients, o.timeout_ms, o.max_messages_per_s
            ),
        ));
    }
    Ok(EnetOptions {
        max_clients: o.max_clients as usize,
        timeout_ms: o.timeout_ms,
        max_messages_per_s: o.max_messages_per_s,
        room: unsafe { text(o.room, o.room_len, "opts.room") }?.to_owned(),
        token: unsafe { bytes(o.token, o.token_len, "opts.token") }?.to_vec(),
    })
}

/// Fills `*out_opts` with the default ENet options (64 clients, a 3 s timeout),
/// `struct_size` included.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_enet_options_default(out_opts: *mut zen_enet_options_t) -> zen_status_t {
    guard(|| {
        unsafe { out(out_opts, "out_opts") }?.set(enet_options_out(&EnetOptions::default()));
        Ok(())
    })
}

/// Makes an ENet endpoint (inside an export's guard): checks the out-parameter, the
/// address and the options, then `make`s the link.
///
/// # Safety
/// As the exports that call it: `addr` valid for `addr_len` bytes, `opts` NULL or a
/// `zen_enet_options_t` of its `struct_size`, `out_endpoint` NULL or writable.
unsafe fn open_enet(
    (addr, addr_len, what): (*const c_char, usize, &str),
    opts: *const zen_enet_options_t,
    out_endpoint: *mut zen_endpoint_t,
    make: impl FnOnce(SocketAddr, &EnetOptions) -> Result<EnetLink, Error>,
) -> Result<(), FfiError> {
    let slot = unsafe { out(out_endpoint, "out_endpoint") }?;
    let (addr, opts) = unsafe { (address(addr, addr_len, what)?, enet_options(opts)?) };
    insert_endpoint(AnyLink::Enet(make(addr, &opts)?), slot)
}

/// An ENet listen host for the context of `peer_id`, bound to `addr` (`addr_len` bytes,
/// an IP address and port such as "0.0.0.0:7000"; port 0 picks a free one, see
/// `zen_endpoint_local_port`). Clients connect to it; it forwards between them, so only
/// it must be reachable. `opts` may be NULL for the defaults. A port in use is
/// `ZEN_ERR_TRANSPORT`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_enet_listen(
    addr: *const c_char,
    addr_len: usize,
    peer_id: u64,
    opts: *const zen_enet_options_t,
    out_endpoint: *mut zen_endpoint_t,
) -> zen_status_t {
    guard(|| unsafe {
        open_enet((addr, addr_len, "addr"), opts, out_endpoint, |a, o| EnetLink::listen(a, peer_id, o))
    })
}

/// An ENet client of the host at `host_addr` (an IP address and port) for the context of
/// `peer_id`. Connecting takes a few pumps; the host and the other clients become
/// members once the host has welcomed it. If the host refuses it (its peer id is taken,
/// another link version), pumping reports `ZEN_ERR_TRANSPORT` with the reason.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_enet_connect(
    host_addr: *const c_char,
    host_addr_len: usize,
    peer_id: u64,
    opts: *const zen_enet_options_t,
    out_endpoint: *mut zen_endpoint_t,
) -> zen_status_t {
    guard(|| unsafe {
        let target = (host_addr, host_addr_len, "host_addr");
        open_enet(target, opts, out_endpoint, |a, o| EnetLink::connect(a, peer_id, o))
    })
}

/// An ENet listen host with no peer of its own, for `zen_bridge_start`: its clients see
/// only the peers the bridge carries (a server's rooms on threads behind one port).
/// Arguments as `zen_enet_listen`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_enet_listen_relay(
    addr: *const c_char,
    addr_len: usize,
    opts: *const zen_enet_options_t,
    out_endpoint: *mut zen_endpoint_t,
) -> zen_status_t {
    guard(|| unsafe { open_enet((addr, addr_len, "addr"), opts, out_endpoint, EnetLink::listen_relay) })
}

/// An ENet client with no peer of its own, for `zen_bridge_start`: the host and its
/// clients see only the peers the bridge carries (a game's threads behind one socket).
/// Arguments as `zen_enet_connect`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_enet_connect_relay(
    host_addr: *const c_char,
    host_addr_len: usize,
    opts: *const zen_enet_options_t,
    out_endpoint: *mut zen_endpoint_t,
) -> zen_status_t {
    guard(|| unsafe {
        open_enet((host_addr, host_addr_len, "host_addr"), opts, out_endpoint, EnetLink::connect_relay)
    })
}

/// A peer of an ENet mesh for the context of `peer_id`, bound to `addr` (port 0 picks
/// one, see `zen_endpoint_local_port`): every pair of peers is connected directly, with
/// no relay hop, so every peer must be reachable (a LAN, or addresses your lobby
/// exchanged); behind NAT use `zen_enet_listen`. It accepts the peers that dial it; dial
/// the others with `zen_endpoint_dial`. Arguments as `zen_enet_listen`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_enet_mesh(
    addr: *const c_char,
    addr_len: usize,
    peer_id: u64,
    opts: *const zen_enet_options_t,
    out_endpoint: *mut zen_endpoint_t,
) -> zen_status_t {
    guard(|| unsafe {
        open_enet((addr, addr_len, "addr"), opts, out_endpoint, |a, o| EnetLink::mesh(a, peer_id, o))
    })
}

/// Dials the mesh peer at `addr` (`addr_len` bytes, an IP address and port) from a mesh
/// endpoint (`zen_enet_mesh`); it becomes a member at a later pump, once it answered.
/// Dialing a peer that dialed you too is harmless (one connection is kept). Any other
/// endpoint is `ZEN_ERR_INVALID_ARGUMENT`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_endpoint_dial(
    endpoint: zen_endpoint_t,
    addr: *const c_char,
    addr_len: usize,
) -> zen_status_t {
    guard(|| {
        let addr = unsafe { address(addr, addr_len, "addr") }?;
        with_endpoint(endpoint, |ep| match ep {
            AnyLink::Enet(e) if e.is_mesh() => Ok(e.dial(addr)?),
            other => Err(FfiError::new(
                zen_status_t::ZEN_ERR_INVALID_ARGUMENT,
                format!(
                    "endpoint of peer {} is not a mesh peer: only zen_enet_mesh endpoints dial",
                    other.peer_id()
                ),
            )),
        })
    })
}

/// The UDP port an ENet endpoint is bound to (what port 0 picked). A bus endpoint has
/// none: `ZEN_ERR_INVALID_ARGUMENT`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_endpoint_local_port(
    endpoint: zen_endpoint_t,
    out_port: *mut u16,
) -> zen_status_t {
    guard(|| {
        let slot = unsafe { out(out_port, "out_port") }?;
        let port = with_endpoint(endpoint, |ep| match ep {
            AnyLink::Enet(e) => Ok(e.local_addr()?.port()),
            AnyLink::Bus(b) => Err(FfiError::new(
                zen_status_t::ZEN_ERR_INVALID_ARGUMENT,
                format!("endpoint of peer {} is on a bus: it has no port", b.peer_id()),
            )),
        })?;
        slot.set(port);
        Ok(())
    })
}

//! C exports for the network simulator (header `zen_crdt_sim.h`, cargo feature "sim"):
//! run your own game logic, in C, C++, Nim or Godot, over a seeded virtual network with
//! latency, jitter, loss, duplication, reordering, bandwidth caps, partitions and
//! players joining and leaving.
//!
//! A `zen_net_t` owns the wire only; the contexts stay yours. Attach them, then call
//! `zen_net_step` once per tick instead of ticking them and moving their messages
//! yourself. The stepping is `sim::Network::step`, the code the Rust `Sim` runs.
#![allow(non_camel_case_types)]

use super::boundary::{guard, guard_infallible, out, sized_in, slice, with_cell, with_context, Entered};
use super::handles::{self, get_from, insert_into, remove_from, Poison, Table, KIND_NET};
use super::status::{zen_status_t, FfiError};
use super::types::zen_context_t;
use crate::context::Outbound;
use crate::sim::{Hosts, LinkConfig, Network};
use parking_lot::{Mutex, RwLock};

/// A simulated network. A small number the library checks on every call; a zeroed
/// handle is never valid. From `zen_net_new`; the caller owns it until `zen_net_free`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct zen_net_t {
    pub id: u64,
}

/// One-way link behaviour, the same for every pair of hosts. Start from
/// `zen_link_default` (which sets `struct_size`; later 1.x releases may add fields).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct zen_link_t {
    /// `sizeof(zen_link_t)` as your header has it.
    pub struct_size: usize,
    pub latency_ms: u64,
    /// Uniform extra delay in 0..=jitter_ms.
    pub jitter_ms: u64,
    /// Probability that a message is lost, 0..1.
    pub loss: f64,
    /// Probability that a message arrives twice, 0..1.
    pub duplicate: f64,
    /// Probability that a message is held back an extra 1-4 ticks, 0..1.
    pub reorder: f64,
    /// Bytes per second one way; 0 = unlimited.
    pub bandwidth_bytes_per_s: u64,
}

impl super::boundary::Growable for zen_link_t {}

fn link_out(l: &LinkConfig) -> zen_link_t {
    zen_link_t {
        struct_size: std::mem::size_of::<zen_link_t>(),
        latency_ms: l.latency_ms,
        jitter_ms: l.jitter_ms,
        loss: l.loss,
        duplicate: l.duplicate,
        reorder: l.reorder,
        bandwidth_bytes_per_s: l.bandwidth_bytes_per_s,
    }
}

struct NetCell {
    net: Network,
    /// Host index -> the context attached there, and its peer id.
    hosts: Vec<(zen_context_t, u64)>,
}

struct NetSlot {
    cell: Mutex<NetCell>,
    poisoned: Mutex<Option<String>>,
}

impl Poison for NetSlot {
    fn poison(&self, why: &str) {
        self.poisoned.lock().get_or_insert_with(|| why.to_owned());
    }
}

static NETS: RwLock<Table<NetSlot>> = RwLock::new(Table::new(KIND_NET, "network"));

fn with_net<R>(net: zen_net_t, f: impl FnOnce(&mut NetCell) -> Result<R, FfiError>) -> Result<R, FfiError> {
    let slot = get_from(&NETS, net.id)?;
    if let Some(why) = &*slot.poisoned.lock() {
        return Err(FfiError::new(
            zen_status_t::ZEN_ERR_POISONED,
            format!("network is poisoned by an earlier panic ({why}); free it"),
        ));
    }
    let _entered = Entered(&slot);
    let r = f(&mut slot.cell.lock());
    r
}

/// The attached contexts as the simulator's hosts. A host whose context was freed or
/// poisoned is skipped; the first such failure is reported after the step.
struct Attached<'a> {
    hosts: &'a [(zen_context_t, u64)],
    failure: Option<FfiError>,
}

impl Attached<'_> {
    fn note(&mut self, r: Result<(), FfiError>) {
        if let Err(e) = r {
            self.failure.get_or_insert(e);
        }
    }
}

impl Hosts for Attached<'_> {
    fn count(&self) -> usize {
        self.hosts.len()
    }

    fn peer_id(&self, host: usize) -> u64 {
        self.hosts[host].1
    }

    fn deliver(&mut self, host: usize, from: u64, bytes: &[u8]) {
        // A rejected message is counted in the receiver's metrics, as on a real wire.
        let r = with_context(self.hosts[host].0.id, |c| {
            let _ = c.ctx.receive_from(from, bytes);
            Ok(())
        });
        self.note(r);
    }

    fn tick(&mut self, host: usize, now: u64, out: &mut Vec<Outbound>) {
        let r = handles::get(self.hosts[host].0.id).and_then(|cell| {
            with_cell(&cell, |c| {
                c.ctx.tick(now);
                out.extend(std::iter::from_fn(|| c.ctx.poll_outbound()));
                Ok(())
            })?;
            cell.ticked.notify_all();
            Ok(())
        });
        self.note(r);
    }

    fn connect(&mut self, a: usize, b: usize, connected: bool) {
        for (ctx, other) in [(self.hosts[a].0, self.hosts[b].1), (self.hosts[b].0, self.hosts[a].1)] {
            let r = with_context(ctx.id, |c| {
                let _ = if connected { c.ctx.add_peer(other) } else { c.ctx.remove_peer(other) };
                Ok(())
            });
            self.note(r);
        }
    }
}

fn probability(name: &str, p: f64) -> Result<f64, FfiError> {
    if !(0.0..=1.0).contains(&p) {
        return Err(FfiError::new(
            zen_status_t::ZEN_ERR_INVALID_ARGUMENT,
            format!("link {name} {p} is not in 0..1"),
        ));
    }
    Ok(p)
}

/// Fills `*out_link` with the default link (25 ms, 0..5 ms jitter, no loss),
/// `struct_size` included. Thread-safe.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_link_default(out_link: *mut zen_link_t) -> zen_status_t {
    guard(|| {
        unsafe { out(out_link, "out_link") }?.set(link_out(&LinkConfig::default()));
        Ok(())
    })
}

/// Creates a network with no hosts. `seed` fixes every random choice (the same seed and
/// the same calls replay the same session). `link` may be NULL for the default link.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_net_new(
    seed: u64,
    link: *const zen_link_t,
    out_net: *mut zen_net_t,
) -> zen_status_t {
    guard(|| {
        let slot = unsafe { out(out_net, "out_net") }?;
        let defaults = link_out(&LinkConfig::default());
        let l = if link.is_null() { defaults } else { unsafe { sized_in(link, defaults, "link") }? };
        let link = LinkConfig {
            latency_ms: l.latency_ms,
            jitter_ms: l.jitter_ms,
            loss: probability("loss", l.loss)?,
            duplicate: probability("duplicate", l.duplicate)?,
            reorder: probability("reorder", l.reorder)?,
            bandwidth_bytes_per_s: l.bandwidth_bytes_per_s,
        };
        let cell = NetCell { net: Network::new(seed, 0, link), hosts: Vec::new() };
        let id = insert_into(&NETS, NetSlot { cell: Mutex::new(cell), poisoned: Mutex::new(None) })?;
        slot.set(zen_net_t { id });
        Ok(())
    })
}

/// Frees a network (not the contexts attached to it). Safe on a zeroed handle and twice.
#[no_mangle]
pub extern "C" fn zen_net_free(net: zen_net_t) {
    guard_infallible((), || drop(remove_from(&NETS, net.id)))
}

/// Attaches a context as a new host, online and connected to every online host (each
/// side's membership is updated, as a transport would). `*out_host` is its index.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_net_attach(
    net: zen_net_t,
    ctx: zen_context_t,
    out_host: *mut u32,
) -> zen_status_t {
    guard(|| {
        let slot = unsafe { out(out_host, "out_host") }?;
        let peer = with_context(ctx.id, |c| Ok(c.ctx.peer_id()))?;
        with_net(net, |n| {
            if n.hosts.iter().any(|&(c, p)| c == ctx || p == peer) {
                return Err(FfiError::new(
                    zen_status_t::ZEN_ERR_INVALID_ARGUMENT,
                    format!("a context with peer id {peer} is already attached"),
                ));
            }
            let h = n.net.add_host();
            n.hosts.push((ctx, peer));
            let mut hosts = Attached { hosts: &n.hosts, failure: None };
            n.net.set_online(h, true, &mut hosts);
            slot.set(h as u32);
            Ok(())
        })
    })
}

/// Takes host `host` offline (it leaves: members on both sides are removed, messages in
/// flight to or from it are lost) or back online (it rejoins and is caught up).
#[no_mangle]
#[must_use]
pub extern "C" fn zen_net_set_online(net: zen_net_t, host: u32, online: bool) -> zen_status_t {
    guard(|| {
        with_net(net, |n| {
            let h = host as usize;
            if h >= n.hosts.len() {
                return Err(FfiError::new(
                    zen_status_t::ZEN_ERR_INVALID_ARGUMENT,
                    format!("no host {host} (the network has {})", n.hosts.len()),
                ));
            }
            let mut hosts = Attached { hosts: &n.hosts, failure: None };
            n.net.set_online(h, online, &mut hosts);
            hosts.failure.map_or(Ok(()), Err)
        })
    })
}

/// Splits the network: `groups[i]` is host i's group (`count` must equal the number of
/// hosts); hosts in different groups cannot reach each other. All zeros heals it.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_net_set_partition(
    net: zen_net_t,
    groups: *const u32,
    count: usize,
) -> zen_status_t {
    guard(|| {
        let groups = unsafe { slice(groups, count, "groups") }?;
        with_net(net, |n| {
            if groups.len() != n.hosts.len() {
                return Err(FfiError::new(
                    zen_status_t::ZEN_ERR_INVALID_ARGUMENT,
                    format!("{} groups for {} hosts", groups.len(), n.hosts.len()),
                ));
            }
            n.net.group = groups.to_vec();
            Ok(())
        })
    })
}

/// One tick at host time `now_ms`: delivers the messages due (to `zen_context_receive_from`: the
/// wire knows the sender), ticks every online attached context, and sends what they
/// produced. Wakes threads waiting on them. If an attached context was freed or
/// poisoned, its host is skipped, the others are stepped, and the call reports it.
#[no_mangle]
#[must_use]
pub extern "C" fn zen_net_step(net: zen_net_t, now_ms: u64) -> zen_status_t {
    guard(|| {
        with_net(net, |n| {
            let mut hosts = Attached { hosts: &n.hosts, failure: None };
            n.net.step(now_ms, &mut hosts);
            hosts.failure.map_or(Ok(()), Err)
        })
    })
}

/// Messages delivered and dropped (loss, partition, offline host) so far.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn zen_net_stats(
    net: zen_net_t,
    out_delivered: *mut u64,
    out_dropped: *mut u64,
) -> zen_status_t {
    guard(|| {
        let (d, x) = unsafe { (out(out_delivered, "out_delivered")?, out(out_dropped, "out_dropped")?) };
        with_net(net, |n| {
            d.set(n.net.delivered);
            x.set(n.net.dropped);
            Ok(())
        })
    })
}

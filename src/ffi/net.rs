//! C exports for the network simulator: run your own game logic, in C, C++, Nim or
//! Godot, over a seeded virtual network with latency, jitter, loss, duplication,
//! reordering, bandwidth caps, partitions and players joining and leaving.
//!
//! A `zen_net_t` owns the wire only; the contexts stay yours. Attach them, then call
//! `zen_net_step` once per tick instead of ticking them and moving their messages
//! yourself.

use super::context::zen_context_t;
use super::guard::{guard, out, slice, with_cell, with_context};
use super::handles::{self, get_from, insert_into, remove_from, Table, KIND_NET};
use super::status::{zen_status_t, FfiError};
use crate::sim::{LinkConfig, Network};
use parking_lot::{Mutex, RwLock};

/// A network handle: 0 is never valid. From `zen_net_new`, released with `zen_net_free`.
#[allow(non_camel_case_types)]
pub type zen_net_t = u64;

/// One-way link behaviour, the same for every pair of hosts.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct zen_link_t {
    pub latency_ms: u64,
    /// Uniform extra delay in 0..=jitter_ms.
    pub jitter_ms: u64,
    /// Probabilities, 0..1.
    pub loss: f64,
    pub duplicate: f64,
    /// Probability that a message is held back an extra 1-4 ticks.
    pub reorder: f64,
    /// 0 = unlimited.
    pub bandwidth_bytes_per_s: u64,
}

struct NetCell {
    net: Network,
    /// Host index -> the context attached there, and its peer id.
    hosts: Vec<(zen_context_t, u64)>,
}

static NETS: RwLock<Table<Mutex<NetCell>>> = RwLock::new(Table::new(KIND_NET, "network"));

fn with_net<R>(net: zen_net_t, f: impl FnOnce(&mut NetCell) -> Result<R, FfiError>) -> Result<R, FfiError> {
    let cell = get_from(&NETS, net)?;
    let mut n = cell.lock();
    f(&mut n)
}

fn probability(name: &str, p: f64) -> Result<f64, FfiError> {
    if !(0.0..=1.0).contains(&p) {
        return Err(FfiError::new(
            zen_status_t::ZEN_ERR_INVALID_ARGUMENT,
            format!("{name} {p} is not in 0..1"),
        ));
    }
    Ok(p)
}

/// Creates a network with no hosts. `seed` fixes every random choice (the same seed and
/// the same calls replay the same session). `link` may be NULL for a perfect 25 ms link.
#[no_mangle]
pub unsafe extern "C" fn zen_net_new(
    seed: u64,
    link: *const zen_link_t,
    out_net: *mut zen_net_t,
) -> zen_status_t {
    guard(|| {
        let slot = unsafe { out(out_net, "out_net") }?;
        let link = match unsafe { link.as_ref() } {
            None => LinkConfig::default(),
            Some(l) => LinkConfig {
                latency_ms: l.latency_ms,
                jitter_ms: l.jitter_ms,
                loss: probability("loss", l.loss)?,
                duplicate: probability("duplicate", l.duplicate)?,
                reorder: probability("reorder", l.reorder)?,
                bandwidth_bytes_per_s: l.bandwidth_bytes_per_s,
            },
        };
        *slot =
            insert_into(&NETS, Mutex::new(NetCell { net: Network::new(seed, 0, link), hosts: Vec::new() }));
        Ok(())
    })
}

/// Frees a network (not the contexts attached to it). Safe on 0 and twice.
#[no_mangle]
pub extern "C" fn zen_net_free(net: zen_net_t) -> zen_status_t {
    guard(|| {
        drop(remove_from(&NETS, net));
        Ok(())
    })
}

/// Connects two contexts as members of each other.
fn link_members(a: (zen_context_t, u64), b: (zen_context_t, u64), join: bool) -> Result<(), FfiError> {
    for (ctx, other) in [(a.0, b.1), (b.0, a.1)] {
        with_context(ctx, |c| {
            let _ = if join { c.ctx.add_peer(other) } else { c.ctx.remove_peer(other) };
            Ok(())
        })?;
    }
    Ok(())
}

/// Attaches a context as a new host, online and connected to every online host (each
/// side's membership is updated, as a transport would). `*out_host` is its index.
#[no_mangle]
pub unsafe extern "C" fn zen_net_attach(
    net: zen_net_t,
    ctx: zen_context_t,
    out_host: *mut u32,
) -> zen_status_t {
    guard(|| {
        let slot = unsafe { out(out_host, "out_host") }?;
        let peer = with_context(ctx, |c| Ok(c.ctx.peer_id()))?;
        with_net(net, |n| {
            if n.hosts.iter().any(|&(c, p)| c == ctx || p == peer) {
                return Err(FfiError::new(
                    zen_status_t::ZEN_ERR_INVALID_ARGUMENT,
                    format!("a context with peer id {peer} is already attached"),
                ));
            }
            for h in 0..n.hosts.len() {
                if n.net.online[h] {
                    link_members(n.hosts[h], (ctx, peer), true)?;
                }
            }
            let h = n.net.add_host();
            n.hosts.push((ctx, peer));
            n.net.online[h] = true;
            *slot = h as u32;
            Ok(())
        })
    })
}

/// Takes host `host` offline (it leaves: members on both sides are removed, messages in
/// flight to or from it are lost) or back online (it rejoins and is caught up).
#[no_mangle]
pub extern "C" fn zen_net_set_online(net: zen_net_t, host: u32, online: bool) -> zen_status_t {
    guard(|| {
        with_net(net, |n| {
            let h = host as usize;
            if h >= n.hosts.len() {
                return Err(FfiError::new(zen_status_t::ZEN_ERR_INVALID_ARGUMENT, format!("no host {host}")));
            }
            if n.net.online[h] == online {
                return Ok(());
            }
            for o in 0..n.hosts.len() {
                if o != h && n.net.online[o] {
                    link_members(n.hosts[h], n.hosts[o], online)?;
                }
            }
            n.net.online[h] = online;
            Ok(())
        })
    })
}

/// Splits the network: `groups[i]` is host i's group (`count` must equal the number of
/// hosts); hosts in different groups cannot reach each other. All zeros heals it.
#[no_mangle]
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

/// One tick at host time `now_ms`: delivers the messages due, ticks every online
/// attached context, and sends what they produced. Wakes threads waiting on them.
#[no_mangle]
pub extern "C" fn zen_net_step(net: zen_net_t, now_ms: u64) -> zen_status_t {
    guard(|| {
        with_net(net, |n| {
            for (_, to, msg) in n.net.due(now_ms) {
                // A rejected message is counted in the receiver's metrics, as on a real wire.
                let _ = with_context(n.hosts[to].0, |c| Ok(c.ctx.receive(&msg)));
            }
            for h in 0..n.hosts.len() {
                if !n.net.online[h] {
                    continue;
                }
                let cell = handles::get(n.hosts[h].0)?;
                let outbound = with_cell(&cell, |c| {
                    c.ctx.tick(now_ms);
                    Ok(std::iter::from_fn(|| c.ctx.poll_outbound()).collect::<Vec<_>>())
                })?;
                cell.ticked.notify_all();
                for o in outbound {
                    match o.to {
                        None => n.net.broadcast(now_ms, h, &o.bytes),
                        Some(peer) => {
                            if let Some(to) = n.hosts.iter().position(|&(_, p)| p == peer) {
                                n.net.send(now_ms, h, to, o.bytes);
                            }
                        }
                    }
                }
            }
            Ok(())
        })
    })
}

/// Messages delivered and dropped (loss, partition, offline host) so far.
#[no_mangle]
pub unsafe extern "C" fn zen_net_stats(
    net: zen_net_t,
    out_delivered: *mut u64,
    out_dropped: *mut u64,
) -> zen_status_t {
    guard(|| {
        let (d, x) = unsafe { (out(out_delivered, "out_delivered")?, out(out_dropped, "out_dropped")?) };
        with_net(net, |n| {
            *d = n.net.delivered;
            *x = n.net.dropped;
            Ok(())
        })
    })
}

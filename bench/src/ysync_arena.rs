//! The arena played with plain yrs over the y-sync protocol (`ysync.rs`), in either
//! layout, on the same simulated network as zen-crdt.
use crate::baseline::{vec3_any, Layout};
use crate::scenarios::*;
use crate::thread_cpu_ns;
use crate::ysync::{Acct, Work, YPeer};
use std::collections::HashMap;
use std::sync::Arc;
use yrs::Any;
use zen_crdt::sim::{LinkConfig, Network};

/// Value indices of the arena in the baselines' replicas: positions, health, scores.
fn pos_index(p: usize, i: usize) -> usize {
    p * ENTITIES + i
}
fn hp_index(peers: usize, p: usize, i: usize) -> usize {
    (peers + p) * ENTITIES + i
}
fn score_index(peers: usize, p: usize) -> usize {
    2 * peers * ENTITIES + p
}

/// The arena's value names in index order.
fn arena_keys(peers: usize) -> Vec<Arc<str>> {
    let mut keys: Vec<Arc<str>> = Vec::with_capacity(2 * peers * ENTITIES + peers);
    keys.extend((0..peers).flat_map(|p| (0..ENTITIES).map(move |i| Arc::from(pos_id(p, i)))));
    keys.extend((0..peers).flat_map(|p| (0..ENTITIES).map(move |i| Arc::from(hp_id(p, i)))));
    keys.extend((0..peers).map(|p| Arc::from(score_id(p))));
    keys
}

/// Peers playing over y-sync on a simulated network, delivering what is due and then
/// ticking each online peer, as `Network::step` does for zen-crdt.
pub struct YSyncNet {
    pub net: Network,
    pub peers: Vec<YPeer>,
}

impl YSyncNet {
    pub fn new(layout: Layout, seed: u64, peers: usize, link: LinkConfig, keys: Vec<Arc<str>>) -> YSyncNet {
        let rtt = rtt_ms(&link);
        let mut net = Network::new(seed, peers, link);
        net.online.iter_mut().for_each(|o| *o = true);
        YSyncNet { net, peers: (0..peers).map(|p| YPeer::new(layout, p, peers, keys.clone(), rtt)).collect() }
    }

    /// One network tick at `now` (ms): `deliver`, then `tick`.
    pub fn step(&mut self, now: u64) {
        self.deliver(now);
        self.tick(now);
    }

    /// Hands every peer what is due for it.
    pub fn deliver(&mut self, now: u64) {
        for (from, to, bytes) in self.net.due(now) {
            self.peers[to].receive(now, &mut self.net, from, &bytes);
        }
    }

    /// Ticks every online peer: it commits and sends its writes, asks for repairs.
    pub fn tick(&mut self, now: u64) {
        for p in 0..self.peers.len() {
            if self.net.online[p] {
                self.peers[p].tick(now, &mut self.net);
            }
        }
    }

    /// Peer `p` joins (both sides send sync step 1) or leaves.
    pub fn set_online(&mut self, p: usize, online: bool, now: u64) {
        self.net.online[p] = online;
        if online {
            let others: Vec<usize> =
                (0..self.peers.len()).filter(|&q| q != p && self.net.online[q]).collect();
            for q in others {
                self.peers[p].connect(now, &mut self.net, q);
                self.peers[q].connect(now, &mut self.net, p);
            }
        }
    }

    pub fn acct(&self) -> Acct {
        let mut a = Acct::default();
        self.peers.iter().for_each(|p| a.add(&p.acct));
        a
    }

    fn online(&self) -> impl Iterator<Item = &YPeer> {
        self.peers.iter().enumerate().filter(|(p, _)| self.net.online[*p]).map(|(_, y)| y)
    }

    /// Every online peer reads each of `values` as the others do.
    pub fn agree(&self, values: impl Iterator<Item = usize>) -> bool {
        let online: Vec<&YPeer> = self.online().collect();
        values.into_iter().all(|v| {
            let first = online[0].replica.read_any(v);
            online[1..].iter().all(|y| y.replica.read_any(v) == first)
        })
    }
}

pub struct YSyncArena {
    pub y: YSyncNet,
    /// Per peer: health values it wrote, the value and when (a later read of another
    /// value is a silent correction).
    wrote: Vec<HashMap<usize, (f64, u64)>>,
    /// Score writes not yet read by every other online peer: (writer, score, time).
    scores: Vec<(usize, f64, u64)>,
    /// Time of the last tick played (ms).
    now: u64,
}

impl YSyncArena {
    pub fn new(layout: Layout, seed: u64, peers: usize, link: LinkConfig) -> YSyncArena {
        YSyncArena {
            y: YSyncNet::new(layout, seed, peers, link, arena_keys(peers)),
            wrote: (0..peers).map(|_| HashMap::with_capacity(4 * ENTITIES)).collect(),
            scores: Vec::with_capacity(4 * peers),
            now: 0,
        }
    }
}

impl Arena for YSyncArena {
    fn peers(&self) -> usize {
        self.y.peers.len()
    }

    fn online(&self, p: usize) -> bool {
        self.y.net.online[p]
    }

    fn play(&mut self, tick: u64, writes: bool, out: &mut Outcome, measure: bool) {
        let n = self.y.peers.len();
        let now = tick * TICK;
        self.now = now;
        for p in (0..n).filter(|&p| writes && self.y.net.online[p]) {
            let t = thread_cpu_ns();
            let y = &mut self.y.peers[p];
            for i in 0..ENTITIES {
                y.write(pos_index(p, i), vec3_any(pos(tick, i, p)));
            }
            for (owner, i, hp) in hp_writes(tick, p, n).into_iter().flatten() {
                y.write(hp_index(n, owner, i), Any::from(hp));
                self.wrote[p].insert(hp_index(n, owner, i), (hp, now));
            }
            if tick.is_multiple_of(60) {
                let score = (tick / 60) as f64;
                y.write(score_index(n, p), Any::from(score));
                self.scores.push((p, score, now));
            }
            y.acct.cpu_ns[Work::Write as usize] += thread_cpu_ns() - t;
        }
        self.y.step(now);
        if !measure {
            return;
        }
        let mut fixes = 0;
        for p in 0..n {
            let y = &self.y.peers[p];
            self.wrote[p].retain(|&v, (hp, t0)| {
                let shown = y.replica.read_any(v);
                if shown.is_some_and(|a| a != Any::from(*hp)) {
                    out.correction_ms.record(now - *t0);
                    fixes += 1;
                    return false;
                }
                now - *t0 < CORRECTION_WINDOW_MS
            });
        }
        out.corrections += fixes as u64;
        out.second(now).corrections_fast += fixes;
        let (peers, net) = (&self.y.peers, &self.y.net);
        self.scores.retain(|&(w, score, t0)| {
            let all = (0..n).filter(|&r| r != w && net.online[r]).all(|r| {
                matches!(peers[r].replica.read_any(score_index(n, w)), Some(Any::Number(x)) if x.as_f64().is_some_and(|x| x >= score))
            });
            if all {
                out.converge_ms.record(now - t0);
            }
            !all
        });
    }

    fn pos_tick(&self, r: usize, p: usize, i: usize) -> Option<u64> {
        match self.y.peers[r].replica.read_any(pos_index(p, i)) {
            Some(Any::Buffer(b)) => Some(f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64),
            _ => None,
        }
    }

    fn all_agree(&self) -> bool {
        let n = self.y.peers.len();
        self.y.agree(0..score_index(n, n))
    }

    fn cold_agree(&self) -> bool {
        let n = self.y.peers.len();
        self.y.agree(hp_index(n, 0, 0)..score_index(n, n))
    }

    fn set_online(&mut self, p: usize, online: bool) {
        self.y.set_online(p, online, self.now);
    }

    fn set_groups(&mut self, groups: Vec<u32>) {
        self.y.net.group = groups;
    }

    fn acct(&self) -> Acct {
        self.y.acct()
    }

    fn finish(&self, _out: &mut Outcome) {}
}

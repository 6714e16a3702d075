//! A seeded, deterministic network simulator for whole multiplayer sessions.
//!
//! Owns virtual time, links (latency, jitter, loss, duplication, reordering, bandwidth),
//! partitions and peers joining and leaving. `Network` is the wire and the host loop
//! (`step`, `set_online`) over any `Hosts`: it ticks every context, moves the bytes from
//! `poll_outbound` to `receive_from` (a simulated transport knows who sent what), and
//! tells contexts about membership, exactly as a game's transport would. `Sim` runs it
//! over contexts it owns; the C API runs the same code over context handles. The same
//! seed replays the same session.

use crate::context::{Context, Options, Outbound};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A small, fast, seedable PRNG (SplitMix64); good enough for simulation, not crypto.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p && p > 0.0
    }

    /// Uniform float in 0..1.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Behaviour of every link, one way.
#[derive(Clone, Debug)]
pub struct LinkConfig {
    pub latency_ms: u64,
    /// Uniform extra delay in 0..=jitter_ms (reorders messages when larger than a tick).
    pub jitter_ms: u64,
    pub loss: f64,
    pub duplicate: f64,
    /// Probability that a message is held back an extra 1-4 ticks.
    pub reorder: f64,
    /// Bytes per second one way; 0 = unlimited. Messages queue behind each other.
    pub bandwidth_bytes_per_s: u64,
}

impl Default for LinkConfig {
    fn default() -> LinkConfig {
        LinkConfig {
            latency_ms: 25,
            jitter_ms: 5,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            bandwidth_bytes_per_s: 0,
        }
    }
}

/// The hosts a `Network` connects, as its host loop sees them (host `i` is the network's
/// host `i`). `Sim` implements it over contexts it owns; the C API over context handles.
pub trait Hosts {
    fn count(&self) -> usize;
    fn peer_id(&self, host: usize) -> u64;
    /// Hands host `host` a message that the wire carried from peer `from`.
    fn deliver(&mut self, host: usize, from: u64, bytes: &[u8]);
    /// Ticks host `host` at `now` and appends what it has to send to `out`.
    fn tick(&mut self, host: usize, now: u64, out: &mut Vec<Outbound>);
    /// Hosts `a` and `b` are now connected (each a member of the other) or not.
    fn connect(&mut self, a: usize, b: usize, connected: bool);
}

struct InFlight {
    at: u64,
    order: u64,
    from: usize,
    to: usize,
    bytes: Vec<u8>,
}

impl PartialEq for InFlight {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.order) == (o.at, o.order)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for InFlight {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.order).cmp(&(o.at, o.order))
    }
}

/// A simulated network between `n` hosts (indices 0..n): what a host sends reaches the
/// others after the link's latency and jitter, or not at all (loss, partition, a host
/// offline), possibly twice or late. Deterministic for a seed. Used by `Sim`, by the
/// benchmark's plain-yrs baseline and by the C API.
pub struct Network {
    pub link: LinkConfig,
    /// Whether host i is connected (joined and not left).
    pub online: Vec<bool>,
    /// Partition group of each host; hosts in different groups cannot reach each other.
    pub group: Vec<u32>,
    pub rng: Rng,
    flight: BinaryHeap<Reverse<InFlight>>,
    order: u64,
    /// Per (from, to): time the link is busy until, for the bandwidth cap.
    busy_until: Vec<u64>,
    pub delivered: u64,
    pub dropped: u64,
    /// Reused by `step` for each host's outbound messages.
    outbox: Vec<Outbound>,
}

impl Network {
    /// `n` hosts, all offline until `online` says otherwise.
    pub fn new(seed: u64, n: usize, link: LinkConfig) -> Network {
        Network {
            link,
            online: vec![false; n],
            group: vec![0; n],
            rng: Rng::new(seed),
            flight: BinaryHeap::new(),
            order: 0,
            busy_until: vec![0; n * n],
            delivered: 0,
            dropped: 0,
            outbox: Vec::new(),
        }
    }

    /// One tick at host time `now` (ms): delivers the messages due, ticks every online
    /// host, and sends what each produced (a broadcast to every other host).
    pub fn step(&mut self, now: u64, hosts: &mut impl Hosts) {
        for (from, to, bytes) in self.due(now) {
            hosts.deliver(to, hosts.peer_id(from), &bytes);
        }
        let mut outbox = std::mem::take(&mut self.outbox);
        for i in 0..hosts.count() {
            if !self.online[i] {
                continue;
            }
            hosts.tick(i, now, &mut outbox);
            for out in outbox.drain(..) {
                match out.to {
                    None => self.broadcast(now, i, &out.bytes),
                    Some(peer) => {
                        if let Some(j) = (0..hosts.count()).find(|&j| hosts.peer_id(j) == peer) {
                            self.send(now, i, j, out.bytes);
                        }
                    }
                }
            }
        }
        self.outbox = outbox;
    }

    /// Host `h` joins (connected to every online host, as a transport would tell both
    /// sides) or leaves (disconnected from them; what is in flight to or from it is lost).
    pub fn set_online(&mut self, h: usize, online: bool, hosts: &mut impl Hosts) {
        if self.online[h] == online {
            return;
        }
        for o in 0..hosts.count() {
            if o != h && self.online[o] {
                hosts.connect(h, o, online);
            }
        }
        self.online[h] = online;
    }

    pub fn hosts(&self) -> usize {
        self.online.len()
    }

    /// Adds an offline host; returns its index.
    pub fn add_host(&mut self) -> usize {
        let (n, m) = (self.hosts(), self.hosts() + 1);
        let mut busy = vec![0; m * m];
        for from in 0..n {
            for to in 0..n {
                busy[from * m + to] = self.busy_until[from * n + to];
            }
        }
        self.busy_until = busy;
        self.online.push(false);
        self.group.push(0);
        n
    }

    pub fn reachable(&self, a: usize, b: usize) -> bool {
        self.online[a] && self.online[b] && self.group[a] == self.group[b]
    }

    /// Sends `bytes` from host `from` to host `to` at time `now` (ms).
    pub fn send(&mut self, now: u64, from: usize, to: usize, bytes: Vec<u8>) {
        if !self.reachable(from, to) || self.rng.chance(self.link.loss) {
            self.dropped += 1;
            return;
        }
        let copies = if self.rng.chance(self.link.duplicate) { 2 } else { 1 };
        for _ in 0..copies {
            let mut at = now + self.link.latency_ms + self.rng.below(self.link.jitter_ms + 1);
            if self.rng.chance(self.link.reorder) {
                at += 16 * (1 + self.rng.below(4));
            }
            if self.link.bandwidth_bytes_per_s > 0 {
                let k = from * self.hosts() + to;
                let tx_ms = (bytes.len() as u64 * 1000).div_ceil(self.link.bandwidth_bytes_per_s);
                let start = self.busy_until[k].max(now);
                self.busy_until[k] = start + tx_ms;
                at += start + tx_ms - now;
            }
            self.order += 1;
            self.flight.push(Reverse(InFlight { at, order: self.order, from, to, bytes: bytes.clone() }));
        }
    }

    /// Sends the same bytes to every other host.
    pub fn broadcast(&mut self, now: u64, from: usize, bytes: &[u8]) {
        for to in 0..self.hosts() {
            if to != from {
                self.send(now, from, to, bytes.to_vec());
            }
        }
    }

    /// Takes every message due at or before `now`, as (from, to, bytes). What was in
    /// flight to or from a host that went offline is lost, as with a closed connection.
    pub fn due(&mut self, now: u64) -> Vec<(usize, usize, Vec<u8>)> {
        let mut out = Vec::new();
        while self.flight.peek().is_some_and(|Reverse(m)| m.at <= now) {
            let Reverse(m) = self.flight.pop().expect("peeked");
            if !self.online[m.to] || !self.online[m.from] {
                self.dropped += 1;
                continue;
            }
            self.delivered += 1;
            out.push((m.from, m.to, m.bytes));
        }
        out
    }
}

/// A simulated session of contexts with peer ids 1..=n over a `Network`.
pub struct Sim {
    pub peers: Vec<Context>,
    pub net: Network,
    pub now: u64,
    pub tick_ms: u64,
    /// Messages `receive_from` rejected (must stay 0 in a healthy session).
    pub rejected: u64,
    /// Why the last rejected message was rejected.
    pub last_error: Option<crate::error::Error>,
    /// Whether `step` discards every context's change events (the default; a host
    /// that does not look at events must still not let them pile up).
    pub drain_events: bool,
}

/// `Sim`'s contexts as the network's hosts.
struct Owned<'a> {
    peers: &'a mut [Context],
    rejected: &'a mut u64,
    last_error: &'a mut Option<crate::error::Error>,
    drain_events: bool,
}

impl Hosts for Owned<'_> {
    fn count(&self) -> usize {
        self.peers.len()
    }

    fn peer_id(&self, host: usize) -> u64 {
        self.peers[host].peer_id()
    }

    fn deliver(&mut self, host: usize, from: u64, bytes: &[u8]) {
        if let Err(e) = self.peers[host].receive_from(from, bytes) {
            *self.rejected += 1;
            *self.last_error = Some(e);
        }
    }

    fn tick(&mut self, host: usize, now: u64, out: &mut Vec<Outbound>) {
        let c = &mut self.peers[host];
        c.tick(now);
        out.extend(std::iter::from_fn(|| c.poll_outbound()));
        while self.drain_events && c.poll_change().is_some() {}
    }

    fn connect(&mut self, a: usize, b: usize, connected: bool) {
        let (pa, pb) = (self.peers[a].peer_id(), self.peers[b].peer_id());
        if connected {
            let _ = self.peers[a].add_peer(pb);
            let _ = self.peers[b].add_peer(pa);
        } else {
            let _ = self.peers[a].remove_peer(pb);
            let _ = self.peers[b].remove_peer(pa);
        }
    }
}

impl Sim {
    /// `n` contexts, all online and connected, ticking every `opts.tick_interval_ms`.
    pub fn new(seed: u64, n: usize, link: LinkConfig, opts: Options) -> Sim {
        let tick_ms = opts.tick_interval_ms;
        let peers: Vec<Context> =
            (1..=n as u64).map(|id| Context::new(id, opts.clone()).expect("valid options")).collect();
        let mut sim = Sim {
            peers,
            net: Network::new(seed, n, link),
            now: 0,
            tick_ms,
            rejected: 0,
            last_error: None,
            drain_events: true,
        };
        for i in 0..n {
            sim.join(i);
        }
        sim
    }

    pub fn ctx(&mut self, i: usize) -> &mut Context {
        &mut self.peers[i]
    }

    /// Whether peer `i` is in the session.
    pub fn online(&self, i: usize) -> bool {
        self.net.online[i]
    }

    fn hosts(&mut self) -> (&mut Network, Owned<'_>) {
        let hosts = Owned {
            peers: &mut self.peers,
            rejected: &mut self.rejected,
            last_error: &mut self.last_error,
            drain_events: self.drain_events,
        };
        (&mut self.net, hosts)
    }

    /// Peer `i` joins (or rejoins) the session: the hosts connect it to every online peer.
    pub fn join(&mut self, i: usize) {
        let (net, mut hosts) = self.hosts();
        net.set_online(i, true, &mut hosts);
    }

    /// Peer `i` leaves: the others' hosts remove it, and it drops them.
    pub fn leave(&mut self, i: usize) {
        let (net, mut hosts) = self.hosts();
        net.set_online(i, false, &mut hosts);
    }

    /// Peer `i` is replaced by `ctx` (a restart, say from its save, under its own id or
    /// another): the others see it leave, then the new context joins.
    pub fn restart(&mut self, i: usize, ctx: Context) {
        self.leave(i);
        self.peers[i] = ctx;
        self.join(i);
    }

    /// Splits the session: peers with different group numbers cannot reach each other.
    pub fn partition(&mut self, group: Vec<u32>) {
        self.net.group = group;
    }

    pub fn heal(&mut self) {
        self.net.group = vec![0; self.peers.len()];
    }

    /// One tick of virtual time: deliver what is due, tick every online peer, send what
    /// they produced.
    pub fn step(&mut self) {
        self.now += self.tick_ms;
        let now = self.now;
        let (net, mut hosts) = self.hosts();
        net.step(now, &mut hosts);
    }

    /// One tick that leaves change events queued for the caller to poll.
    pub fn step_keep_events(&mut self) {
        let drain = std::mem::replace(&mut self.drain_events, false);
        self.step();
        self.drain_events = drain;
    }

    /// `run_for`, leaving change events queued.
    pub fn run_for_keep_events(&mut self, ms: u64) {
        let drain = std::mem::replace(&mut self.drain_events, false);
        self.run_for(ms);
        self.drain_events = drain;
    }

    /// Runs for `ms` of virtual time.
    pub fn run_for(&mut self, ms: u64) {
        let end = self.now + ms;
        while self.now < end {
            self.step();
        }
    }
}

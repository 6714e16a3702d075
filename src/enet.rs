//! ENet over UDP (`rusty_enet`, pure Rust): a [`Link`] between machines, so a game
//! carries a context's bytes without writing sockets.
//!
//! Topology: one listen host and its clients; only the host must be reachable. A client
//! sends everything to the host; the host takes what is for it and forwards the rest to
//! the other clients, naming the original sender. The host's roster is the session's
//! membership: it announces joins and leaves to every client.
//!
//! Channels: 0, reliable, control (a client's hello with the protocol version and its
//! peer id; the host's welcome with the roster, or a refusal with the reason; joins and
//! leaves). 1, unreliable and unsequenced, messages that fit one datagram (the protocol
//! repairs loss, and nothing waits behind a lost packet). 2, reliable, larger messages,
//! which ENet fragments (an unreliable fragmented message is lost whole when one fragment
//! is). Set the contexts' `target_message_bytes` to `DATAGRAM_BYTES` so most go on 1.
//!
//! Input that is not ours (garbage, a data frame before a hello, a wrong version, a peer
//! id already taken) is refused and counted in `LinkStats::rejected`; the session goes on.

use crate::codec::{put_varint, Reader};
use crate::error::Error;
use crate::ids::PeerId;
use crate::link::{Link, LinkEvent, LinkStats};
use crate::sim::{LinkConfig, Network};
use rusty_enet::{Address, Host, HostSettings, Packet, PeerID, ReadWrite, Socket};
use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The size a message may have to travel unreliably in one datagram (ENet's default MTU
/// of 1392 bytes less its headers and ours). Larger messages go reliably, fragmented.
pub const DATAGRAM_BYTES: usize = 1200;
/// The link's own protocol version, in the hello (independent of the sync protocol's).
const LINK_VERSION: u8 = 1;
const MAGIC: [u8; 2] = *b"ZE";
const CHANNELS: usize = 3;
const CONTROL: u8 = 0;
const UNRELIABLE: u8 = 1;
const RELIABLE: u8 = 2;
const HELLO: u8 = 1;
const WELCOME: u8 = 2;
const REFUSED: u8 = 3;
const JOINED: u8 = 4;
const LEFT: u8 = 5;

/// ENet settings of a link.
#[derive(Clone, Debug)]
pub struct EnetOptions {
    /// Most clients a host accepts.
    pub max_clients: usize,
    /// Most data messages a host takes from one client per second (a burst of one
    /// second's worth is allowed); the rest are dropped and counted as rejected, so one
    /// client cannot flood the others through the host. A game sends about 60 to 200.
    pub max_messages_per_s: u32,
    /// A connection whose reliable data goes unacknowledged this long (ms; ENet allows up
    /// to twice this while its retransmissions back off) is dropped: its peer leaves.
    /// ENet's own default is up to 30 s; a game wants about the context's
    /// `peer_timeout_ms`.
    pub timeout_ms: u32,
}

impl Default for EnetOptions {
    fn default() -> EnetOptions {
        EnetOptions { max_clients: 64, timeout_ms: 3000, max_messages_per_s: 1000 }
    }
}

enum Role {
    /// Accepts clients, by their ENet peer.
    Host { clients: BTreeMap<PeerID, Client> },
    /// Connected (or connecting) to a host: the host's peer id once welcomed, the others.
    Client { host: PeerID, host_id: Option<u64>, others: Vec<u64> },
}

/// A client as its host knows it.
struct Client {
    /// The zen peer id its hello named.
    id: u64,
    /// Data messages it may still send now (a token bucket refilled at
    /// `max_messages_per_s`), and when it was last refilled (ENet ms).
    tokens: f64,
    refilled_ms: u64,
}

/// A context's link over ENet: a listen host or a client of one. Over UDP by default;
/// over the simulator's lossy wire with [`EnetSim`] (a seeded, reproducible session).
pub struct EnetLink<S: Socket = UdpSocket> {
    me: u64,
    host: Host<S>,
    role: Role,
    events: VecDeque<LinkEvent>,
    stats: LinkStats,
    timeout_ms: u32,
    /// `EnetOptions::max_messages_per_s`.
    max_rate: u32,
    /// Why the host refused this client, once it has.
    refused: Option<String>,
}

fn io(e: impl std::fmt::Display) -> Error {
    Error::Transport(e.to_string())
}

fn new_host<S: Socket>(socket: S, peers: usize, clock: Option<Clock>) -> Result<Host<S>, Error> {
    let mut settings = HostSettings { peer_limit: peers, channel_limit: CHANNELS, ..HostSettings::default() };
    if let Some(clock) = clock {
        settings.seed = Some(clock.seed);
        let ms = clock.ms;
        settings.time = Box::new(move || Duration::from_millis(ms.load(Ordering::Acquire)));
    }
    Host::new(socket, settings).map_err(|e| io(format!("ENet host: {e:?}")))
}

fn bind(addr: SocketAddr) -> Result<UdpSocket, Error> {
    UdpSocket::bind(addr).map_err(|e| io(format!("cannot bind {addr}: {e}")))
}

/// A virtual clock and random seed for the ENet hosts of a simulated wire.
#[derive(Clone)]
struct Clock {
    ms: Arc<AtomicU64>,
    seed: u32,
}

impl EnetLink<UdpSocket> {
    /// A listen host at `addr` (port 0 picks a free one: see `local_addr`) for the context
    /// of peer `me`.
    pub fn listen(addr: SocketAddr, me: u64, opts: &EnetOptions) -> Result<EnetLink, Error> {
        EnetLink::host_on(bind(addr)?, me, opts, None)
    }

    /// A client of the host at `host_addr`, for the context of peer `me` (unique in the
    /// session: the host refuses a peer id already taken). Members arrive once the host
    /// has welcomed it.
    pub fn connect(host_addr: SocketAddr, me: u64, opts: &EnetOptions) -> Result<EnetLink, Error> {
        let any: SocketAddr =
            if host_addr.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().expect("literal");
        EnetLink::client_on(bind(any)?, host_addr, me, opts, None)
    }

    /// The address the link's socket is bound to.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.host.socket().local_addr().map_err(io)
    }
}

impl<S: Socket> EnetLink<S> {
    fn host_on(socket: S, me: u64, opts: &EnetOptions, clock: Option<Clock>) -> Result<EnetLink<S>, Error> {
        PeerId::checked(me)?;
        let host = new_host(socket, opts.max_clients.max(1), clock)?;
        Ok(EnetLink::with(me, host, Role::Host { clients: BTreeMap::new() }, opts))
    }

    fn client_on(
        socket: S,
        host_addr: S::Address,
        me: u64,
        opts: &EnetOptions,
        clock: Option<Clock>,
    ) -> Result<EnetLink<S>, Error> {
        PeerId::checked(me)?;
        let mut host = new_host(socket, 1, clock)?;
        let peer = host.connect(host_addr, CHANNELS, 0).map_err(|e| io(format!("connect: {e:?}")))?;
        peer.set_timeout(32, opts.timeout_ms, opts.timeout_ms.saturating_mul(2));
        let role = Role::Client { host: peer.id(), host_id: None, others: Vec::new() };
        Ok(EnetLink::with(me, host, role, opts))
    }

    fn with(me: u64, host: Host<S>, role: Role, opts: &EnetOptions) -> EnetLink<S> {
        let (events, stats) = (VecDeque::new(), LinkStats::default());
        let (timeout_ms, max_rate) = (opts.timeout_ms, opts.max_messages_per_s.max(1));
        EnetLink { me, host, role, events, stats, timeout_ms, max_rate, refused: None }
    }

    /// The peer id this link joined as.
    pub fn peer_id(&self) -> u64 {
        self.me
    }

    /// Why the host refused this client (a wrong version, a peer id taken), if it did.
    pub fn refused(&self) -> Option<&str> {
        self.refused.as_deref()
    }

    /// Zen peers this link reaches now.
    pub fn peers(&self) -> Vec<u64> {
        match &self.role {
            Role::Host { clients } => clients.values().map(|c| c.id).collect(),
            Role::Client { host_id, others, .. } => host_id.iter().chain(others).copied().collect(),
        }
    }

    fn send_packet(&mut self, to: PeerID, channel: u8, packet: &Packet) -> bool {
        let len = packet.data().len() as u64;
        match self.host.get_peer_mut(to).map(|p| p.send(channel, packet)) {
            Some(Ok(())) => {
                self.stats.sent += 1;
                self.stats.bytes_sent += len;
                true
            }
            _ => {
                self.stats.dropped += 1;
                false
            }
        }
    }

    fn control(&mut self, to: PeerID, body: &[u8]) {
        self.send_packet(to, CONTROL, &Packet::reliable(body));
    }

    /// A data frame: `peer` (the destination from a client, 0 for all; the original
    /// sender from the host) then the message.
    fn frame(peer: u64, bytes: &[u8]) -> (u8, Packet) {
        let mut f = Vec::with_capacity(bytes.len() + 10);
        put_varint(&mut f, peer);
        f.extend_from_slice(bytes);
        if f.len() <= DATAGRAM_BYTES {
            (UNRELIABLE, Packet::unreliable_unsequenced(f))
        } else {
            (RELIABLE, Packet::reliable(f))
        }
    }

    /// Runs ENet until it has nothing more now, turning its events into link events.
    fn service(&mut self) {
        loop {
            let event = match self.host.service() {
                Ok(Some(e)) => e.no_ref(),
                Ok(None) => break,
                // A datagram error (say, ICMP port unreachable): the session goes on.
                Err(_) => {
                    self.stats.rejected += 1;
                    continue;
                }
            };
            match event {
                rusty_enet::EventNoRef::Connect { peer, .. } => self.on_connect(peer),
                rusty_enet::EventNoRef::Disconnect { peer, .. } => self.on_disconnect(peer),
                rusty_enet::EventNoRef::Receive { peer, channel_id, packet } => {
                    self.stats.received += 1;
                    self.stats.bytes_received += packet.data().len() as u64;
                    let ok = if channel_id == CONTROL {
                        self.on_control(peer, packet.data())
                    } else {
                        self.on_data(peer, packet.data())
                    };
                    if !ok {
                        self.stats.rejected += 1;
                    }
                }
            }
        }
    }

    fn on_connect(&mut self, peer: PeerID) {
        let timeout = self.timeout_ms;
        if let Some(p) = self.host.get_peer_mut(peer) {
            p.set_timeout(32, timeout, timeout.saturating_mul(2));
        }
        if let Role::Client { .. } = self.role {
            let mut hello = Vec::from(MAGIC);
            hello.extend([LINK_VERSION, HELLO]);
            put_varint(&mut hello, self.me);
            self.control(peer, &hello);
        }
        // A host waits for the client's hello.
    }

    fn on_disconnect(&mut self, peer: PeerID) {
        match &mut self.role {
            Role::Host { clients } => {
                if let Some(Client { id, .. }) = clients.remove(&peer) {
                    self.events.push_back(LinkEvent::Left(id));
                    let others: Vec<PeerID> = clients.keys().copied().collect();
                    let mut left = vec![LEFT];
                    put_varint(&mut left, id);
                    for p in others {
                        self.control(p, &left);
                    }
                }
            }
            Role::Client { host_id, others, .. } => {
                for id in host_id.take().into_iter().chain(others.drain(..)) {
                    self.events.push_back(LinkEvent::Left(id));
                }
            }
        }
    }

    /// A control message; false if malformed or out of place.
    fn on_control(&mut self, from: PeerID, body: &[u8]) -> bool {
        match &mut self.role {
            Role::Host { clients } => {
                // Only a hello, once.
                if clients.contains_key(&from) {
                    return false;
                }
                let Some((version, id)) = parse_hello(body) else { return false };
                let refusal = if version != LINK_VERSION {
                    Some(format!("link version {version}, the host speaks {LINK_VERSION}"))
                } else if PeerId::checked(id).is_err() {
                    Some(format!("peer id {id} is invalid"))
                } else if id == self.me || clients.values().any(|c| c.id == id) {
                    Some(format!("peer id {id} is already taken"))
                } else {
                    None
                };
                if let Some(why) = refusal {
                    let mut r = vec![REFUSED];
                    r.extend_from_slice(why.as_bytes());
                    self.control(from, &r);
                    if let Some(p) = self.host.get_peer_mut(from) {
                        p.disconnect_later(0);
                    }
                    return false;
                }
                let mut welcome = vec![WELCOME];
                put_varint(&mut welcome, self.me);
                put_varint(&mut welcome, clients.len() as u64);
                for c in clients.values() {
                    put_varint(&mut welcome, c.id);
                }
                let others: Vec<PeerID> = clients.keys().copied().collect();
                let now = self.host.now().as_millis() as u64;
                let tokens = self.max_rate as f64;
                clients.insert(from, Client { id, tokens, refilled_ms: now });
                self.control(from, &welcome);
                let mut joined = vec![JOINED];
                put_varint(&mut joined, id);
                for p in others {
                    self.control(p, &joined);
                }
                self.events.push_back(LinkEvent::Joined(id));
                true
            }
            Role::Client { host, host_id, others } => {
                if from != *host {
                    return false;
                }
                let mut r = Reader::new(body);
                let Ok(kind) = r.byte() else { return false };
                match (kind, host_id.is_some()) {
                    (WELCOME, false) => {
                        let parsed = (|| {
                            let h = r.varint().ok()?;
                            let n = r.varint().ok()?;
                            let list: Vec<u64> = (0..n.min(body.len() as u64))
                                .map(|_| r.varint().ok())
                                .collect::<Option<_>>()?;
                            Some((h, list))
                        })();
                        let Some((h, list)) = parsed else { return false };
                        *host_id = Some(h);
                        self.events.push_back(LinkEvent::Joined(h));
                        for &p in &list {
                            self.events.push_back(LinkEvent::Joined(p));
                        }
                        *others = list;
                        true
                    }
                    (JOINED, true) | (LEFT, true) => {
                        let Ok(p) = r.varint() else { return false };
                        if kind == JOINED {
                            others.push(p);
                            self.events.push_back(LinkEvent::Joined(p));
                        } else {
                            others.retain(|&o| o != p);
                            self.events.push_back(LinkEvent::Left(p));
                        }
                        true
                    }
                    (REFUSED, _) => {
                        self.refused = Some(String::from_utf8_lossy(r.rest()).into_owned());
                        true
                    }
                    _ => false,
                }
            }
        }
    }

    /// A data frame; false if malformed or from a client that has not said hello.
    fn on_data(&mut self, from: PeerID, body: &[u8]) -> bool {
        let mut r = Reader::new(body);
        let Ok(peer) = r.varint() else { return false };
        let bytes: Arc<[u8]> = r.rest().into();
        match &mut self.role {
            Role::Host { clients } => {
                let now = self.host.now().as_millis() as u64;
                let rate = self.max_rate as f64;
                let Some(client) = clients.get_mut(&from) else { return false };
                let elapsed = now.saturating_sub(client.refilled_ms);
                client.tokens = (client.tokens + elapsed as f64 * rate / 1000.0).min(rate);
                client.refilled_ms = now;
                if client.tokens < 1.0 {
                    return false; // a flood: dropped, counted
                }
                client.tokens -= 1.0;
                let sender = client.id;
                let targets: Vec<PeerID> = clients
                    .iter()
                    .filter(|&(&p, c)| p != from && (peer == 0 || peer == c.id))
                    .map(|(&p, _)| p)
                    .collect();
                if peer == 0 || peer == self.me {
                    self.events.push_back(LinkEvent::Message { from: sender, bytes: bytes.clone() });
                }
                if !targets.is_empty() {
                    let (channel, packet) = Self::frame(sender, &bytes);
                    for p in targets {
                        self.send_packet(p, channel, &packet);
                    }
                }
                true
            }
            Role::Client { host, host_id, .. } => {
                if from != *host {
                    return false;
                }
                if host_id.is_none() {
                    // Data from the host overtook its welcome (data is unreliable, the
                    // welcome reliable and maybe resent): lost, not hostile; the
                    // protocol repairs it.
                    self.stats.dropped += 1;
                    return true;
                }
                // The host stamped the sender: it knows who each of its clients is.
                self.events.push_back(LinkEvent::Message { from: peer, bytes });
                true
            }
        }
    }

    /// Disconnects from every peer now (they see this peer leave at once, not after the
    /// timeout).
    pub fn close(&mut self) {
        let peers: Vec<PeerID> = self.host.connected_peers().map(|p| p.id()).collect();
        for p in peers {
            if let Some(peer) = self.host.get_peer_mut(p) {
                peer.disconnect_now(0);
            }
        }
        self.host.flush();
    }
}

fn parse_hello(body: &[u8]) -> Option<(u8, u64)> {
    let mut r = Reader::new(body);
    if r.bytes(2).ok()? != MAGIC {
        return None;
    }
    let version = r.byte().ok()?;
    if r.byte().ok()? != HELLO {
        return None;
    }
    let id = r.varint().ok()?;
    r.is_empty().then_some((version, id))
}

impl<S: Socket> Link for EnetLink<S> {
    fn send(&mut self, to: Option<u64>, bytes: Vec<u8>) {
        let targets: Vec<(PeerID, u64)> = match &self.role {
            Role::Host { clients } => clients
                .iter()
                .filter(|&(_, c)| to.is_none_or(|t| t == c.id))
                .map(|(&p, _)| (p, self.me))
                .collect(),
            Role::Client { host, host_id: Some(_), .. } => vec![(*host, to.unwrap_or(0))],
            Role::Client { .. } => Vec::new(),
        };
        for (p, peer) in targets {
            let (channel, packet) = Self::frame(peer, &bytes);
            self.send_packet(p, channel, &packet);
        }
        self.host.flush();
    }

    fn poll(&mut self) -> Option<LinkEvent> {
        if self.events.is_empty() {
            self.service();
        }
        self.events.pop_front()
    }

    fn stats(&self) -> LinkStats {
        self.stats
    }
}

impl<S: Socket> Drop for EnetLink<S> {
    fn drop(&mut self) {
        self.close();
    }
}

/// A host's address on a [`EnetSim`]: its index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnetSimAddr(pub usize);

impl Address for EnetSimAddr {
    fn same_host(&self, other: &EnetSimAddr) -> bool {
        self == other
    }

    fn same(&self, other: &EnetSimAddr) -> bool {
        self == other
    }

    fn is_broadcast(&self) -> bool {
        false
    }
}

/// The socket of an ENet link on a [`EnetSim`].
pub type EnetSimSocket = ReadWrite<EnetSimAddr, Infallible>;

/// ENet links over the simulator's network (latency, jitter, loss, duplication,
/// reordering, partitions) with a virtual clock and seeded randomness: the same seed and
/// the same calls replay the same session, datagram for datagram. Each link has an index
/// on the wire (its address); pass the links to `step` in index order.
pub struct EnetSim {
    net: Network,
    clock: Clock,
}

impl EnetSim {
    /// A wire for `hosts` links, every datagram subject to `link`.
    pub fn new(seed: u64, hosts: usize, link: LinkConfig) -> EnetSim {
        let clock = Clock { ms: Arc::new(AtomicU64::new(0)), seed: seed as u32 ^ (seed >> 32) as u32 };
        let mut net = Network::new(seed, hosts, link);
        net.online = vec![true; hosts];
        EnetSim { net, clock }
    }

    /// A listen host for the context of `me`.
    pub fn host(&self, me: u64, opts: &EnetOptions) -> Result<EnetLink<EnetSimSocket>, Error> {
        EnetLink::host_on(EnetSimSocket::new(), me, opts, Some(self.clock.clone()))
    }

    /// A client of the host at index `host`, for the context of `me`.
    pub fn client(&self, host: usize, me: u64, opts: &EnetOptions) -> Result<EnetLink<EnetSimSocket>, Error> {
        EnetLink::client_on(EnetSimSocket::new(), EnetSimAddr(host), me, opts, Some(self.clock.clone()))
    }

    /// Carries datagrams at virtual time `now_ms` (which every ENet host on the wire then
    /// reads): what each link sent goes on the wire, what is due arrives. `links[i]` is
    /// the link at index i. Call it after pumping the links.
    pub fn step(&mut self, now_ms: u64, links: &mut [&mut EnetLink<EnetSimSocket>]) {
        self.clock.ms.store(now_ms, Ordering::Release);
        for (from, link) in links.iter_mut().enumerate() {
            while let Some((EnetSimAddr(to), bytes)) = link.host.socket_mut().read() {
                self.net.send(now_ms, from, to, bytes);
            }
        }
        for (from, to, bytes) in self.net.due(now_ms) {
            if let Some(link) = links.get_mut(to) {
                link.host.socket_mut().write(EnetSimAddr(from), bytes);
            }
        }
    }

    /// Takes the link at index `at` off the wire (datagrams to and from it are lost, as
    /// when a machine goes away) or back on.
    pub fn set_online(&mut self, at: usize, online: bool) {
        self.net.online[at] = online;
    }

    /// Datagrams delivered and dropped so far.
    pub fn stats(&self) -> (u64, u64) {
        (self.net.delivered, self.net.dropped)
    }
}

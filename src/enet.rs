//! ENet over UDP (`rusty_enet`, pure Rust): a [`Link`] between machines, so a game
//! carries a context's bytes without writing sockets.
//!
//! Topologies. A listen host and its clients: only the host must be reachable. A client
//! sends everything to the host; the host takes what is for it and forwards the rest to
//! the other clients, naming the original sender. The host's roster is the session's
//! membership: it announces joins and leaves to every client. Or a mesh (`mesh`, then
//! `dial` each peer the game's lobby names): every pair connected directly, no relay hop,
//! every peer reachable; a connection both sides dialed at once is settled by keeping
//! the one the lower peer id dialed.
//!
//! Relays: a host or client made with `listen_relay` / `connect_relay` has no peer of its
//! own; it carries the peers a [`crate::bridge::Bridge`] reaches on another link (a
//! process's contexts on a bus, behind one socket). A client announces each carried peer
//! to the host (`CARRY`, `UNCARRY`); the host checks the id is free and announces it like
//! a client's own. Every data frame names its sender and its destination, so the host
//! routes a message to whichever client carries its destination.
//!
//! Channels: 0, reliable, control (a client's hello with the protocol version and its
//! peer id, 0 for a relay; the host's welcome with the roster, or a refusal with the
//! reason; joins and leaves; a client's carried peers, or the host's refusal of one). 1, unreliable and unsequenced, messages that fit one datagram (the protocol
//! repairs loss, and nothing waits behind a lost packet). 2, reliable, larger messages,
//! which ENet fragments (an unreliable fragmented message is lost whole when one fragment
//! is). Set the contexts' `target_message_bytes` to `DATAGRAM_BYTES` so most go on 1.
//!
//! Input that is not ours (garbage, a data frame before a hello, a wrong version, a peer
//! id already taken) is refused and counted in `LinkStats::rejected`; the session goes on.

use crate::codec::{put_varint, Reader};
use crate::error::Error;
use crate::ids::PeerId;
use crate::link::{Link, LinkEvent, LinkStats, Relay};
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
pub(crate) const LINK_VERSION: u8 = 2;
const MAGIC: [u8; 2] = *b"ZE";
pub(crate) const CHANNELS: usize = 3;
pub(crate) const CONTROL: u8 = 0;
const UNRELIABLE: u8 = 1;
const RELIABLE: u8 = 2;
const HELLO: u8 = 1;
pub(crate) const WELCOME: u8 = 2;
pub(crate) const REFUSED: u8 = 3;
pub(crate) const JOINED: u8 = 4;
pub(crate) const LEFT: u8 = 5;
const CARRY: u8 = 6;
const UNCARRY: u8 = 7;
const DENIED: u8 = 8;

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
    /// The room a client asks for in its hello; a host with a room refuses clients that
    /// name another. Empty: none named (a host then takes any). A relay gateway
    /// ([`crate::gateway::Gateway`]) keeps each room apart. At most `MAX_ROOM_BYTES`.
    pub room: String,
    /// The token a client shows in its hello; a host with a token refuses clients that
    /// show another (a session password). A gateway checks it against the room and peer
    /// id (see `zen-relay`). Empty: none. At most `MAX_TOKEN_BYTES`.
    pub token: Vec<u8>,
}

/// Most bytes of `EnetOptions::room`.
pub const MAX_ROOM_BYTES: usize = 64;
/// Most bytes of `EnetOptions::token`.
pub const MAX_TOKEN_BYTES: usize = 512;

impl Default for EnetOptions {
    fn default() -> EnetOptions {
        EnetOptions {
            max_clients: 64,
            timeout_ms: 3000,
            max_messages_per_s: 1000,
            room: String::new(),
            token: Vec::new(),
        }
    }
}

impl EnetOptions {
    /// Checks the sizes a hello can carry.
    pub(crate) fn check(&self) -> Result<(), Error> {
        if self.room.len() > MAX_ROOM_BYTES {
            let why = "the room is at most 64 bytes";
            return Err(Error::BadOption { name: "room (bytes)", value: self.room.len() as u64, why });
        }
        if self.token.len() > MAX_TOKEN_BYTES {
            let why = "the token is at most 512 bytes";
            return Err(Error::BadOption { name: "token (bytes)", value: self.token.len() as u64, why });
        }
        Ok(())
    }
}

/// A client's hello as a host reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    pub version: u8,
    /// The zen peer id it joins as; 0 for a relay.
    pub peer: u64,
    /// The room it asks for ("" for none).
    pub room: String,
    /// The token it shows (empty for none).
    pub token: Vec<u8>,
}

impl Hello {
    /// The hello's bytes: room and token only when either is set, so a plain client's
    /// hello is what hosts before 1.2 expect.
    pub(crate) fn encode(peer: u64, room: &str, token: &[u8]) -> Vec<u8> {
        let mut hello = Vec::from(MAGIC);
        hello.extend([LINK_VERSION, HELLO]);
        put_varint(&mut hello, peer);
        if !room.is_empty() || !token.is_empty() {
            put_varint(&mut hello, room.len() as u64);
            hello.extend_from_slice(room.as_bytes());
            put_varint(&mut hello, token.len() as u64);
            hello.extend_from_slice(token);
        }
        hello
    }

    /// A hello; `None` if it is not one (or is malformed).
    pub(crate) fn parse(body: &[u8]) -> Option<Hello> {
        let mut r = Reader::new(body);
        if r.bytes(2).ok()? != MAGIC {
            return None;
        }
        let version = r.byte().ok()?;
        if r.byte().ok()? != HELLO {
            return None;
        }
        let peer = r.varint().ok()?;
        let (mut room, mut token) = (String::new(), Vec::new());
        if !r.is_empty() {
            let n = r.varint().ok()?;
            let raw = r.bytes(n).ok().filter(|b| b.len() <= MAX_ROOM_BYTES)?;
            room = std::str::from_utf8(raw).ok()?.to_owned();
            let n = r.varint().ok()?;
            token = r.bytes(n).ok().filter(|b| b.len() <= MAX_TOKEN_BYTES)?.to_vec();
        }
        r.is_empty().then_some(Hello { version, peer, room, token })
    }
}

enum Role {
    /// Accepts clients, by their ENet peer; speaks for the peers it carries.
    Host { clients: BTreeMap<PeerID, Client>, carried: Vec<u64> },
    /// Connected (or connecting) to a host: the host's peer id once welcomed (0 for a
    /// relay host), the other peers, the peers this client carries.
    Client { host: PeerID, host_id: Option<u64>, others: Vec<u64>, carried: Vec<u64> },
    /// A peer of a mesh: its direct connections, dialed or accepted.
    Mesh { conns: BTreeMap<PeerID, Conn> },
}

/// A mesh connection.
struct Conn {
    /// The peer at the other end, once its hello (or welcome) named it; 0 before.
    id: u64,
    /// We dialed it (then we say hello; else we answer with a welcome).
    dialed: bool,
    /// It is the connection to `id` (a pair that dialed each other at once has two; one
    /// is kept).
    live: bool,
    bucket: Bucket,
}

/// Data messages a connection may still send now (refilled at `max_messages_per_s`, a
/// burst of one second's worth), so one peer cannot flood the others.
pub(crate) struct Bucket {
    tokens: f64,
    refilled_ms: u64,
}

impl Bucket {
    pub(crate) fn full(rate: u32, now_ms: u64) -> Bucket {
        Bucket { tokens: rate as f64, refilled_ms: now_ms }
    }

    /// Takes a token; false when none is left (the message is dropped and counted).
    pub(crate) fn take(&mut self, rate: u32, now_ms: u64) -> bool {
        let rate = rate as f64;
        let elapsed = now_ms.saturating_sub(self.refilled_ms);
        self.tokens = (self.tokens + elapsed as f64 * rate / 1000.0).min(rate);
        self.refilled_ms = now_ms;
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

/// A client as its host knows it.
struct Client {
    /// The zen peer id its hello named; 0 for a relay.
    id: u64,
    /// The peers it carries.
    carried: Vec<u64>,
    bucket: Bucket,
}

impl Client {
    fn peers(&self) -> impl Iterator<Item = u64> + '_ {
        (self.id != 0).then_some(self.id).into_iter().chain(self.carried.iter().copied())
    }

    fn speaks_for(&self, peer: u64) -> bool {
        peer != 0 && (peer == self.id || self.carried.contains(&peer))
    }

    /// Whether a broadcast has anyone to reach there.
    fn has_peers(&self) -> bool {
        self.id != 0 || !self.carried.is_empty()
    }
}

/// A context's link over ENet: a listen host or a client of one. Over UDP by default;
/// over the simulator's lossy wire with [`EnetSim`] (a seeded, reproducible session).
pub struct EnetLink<S: Socket = UdpSocket> {
    /// 0 for a relay.
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
    /// `EnetOptions::room` and `token`: what a client's hello names, what a host admits.
    room: String,
    token: Vec<u8>,
}

pub(crate) fn io(e: impl std::fmt::Display) -> Error {
    Error::Transport(e.to_string())
}

pub(crate) fn new_host<S: Socket>(socket: S, peers: usize, clock: Option<Clock>) -> Result<Host<S>, Error> {
    let mut settings = HostSettings { peer_limit: peers, channel_limit: CHANNELS, ..HostSettings::default() };
    if let Some(clock) = clock {
        settings.seed = Some(clock.seed);
        let ms = clock.ms;
        settings.time = Box::new(move || Duration::from_millis(ms.load(Ordering::Acquire)));
    }
    Host::new(socket, settings).map_err(|e| io(format!("ENet host: {e:?}")))
}

/// The unspecified address of `to`'s family, port 0: where a client binds.
fn any_addr(to: SocketAddr) -> SocketAddr {
    if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().expect("literal")
}

/// A peer id given to a constructor, checked; `None` is a relay (0).
fn own_id(me: Option<u64>) -> Result<u64, Error> {
    me.map_or(Ok(0), |p| PeerId::checked(p).map(PeerId::get))
}

pub(crate) fn bind(addr: SocketAddr) -> Result<UdpSocket, Error> {
    UdpSocket::bind(addr).map_err(|e| io(format!("cannot bind {addr}: {e}")))
}

/// A virtual clock and random seed for the ENet hosts of a simulated wire.
#[derive(Clone)]
pub(crate) struct Clock {
    ms: Arc<AtomicU64>,
    seed: u32,
}

impl EnetLink<UdpSocket> {
    /// A listen host at `addr` (port 0 picks a free one: see `local_addr`) for the context
    /// of peer `me`.
    pub fn listen(addr: SocketAddr, me: u64, opts: &EnetOptions) -> Result<EnetLink, Error> {
        EnetLink::host_on(bind(addr)?, Some(me), opts, None)
    }

    /// A listen host with no peer of its own, for a [`crate::bridge::Bridge`]: clients see
    /// only the peers it carries.
    pub fn listen_relay(addr: SocketAddr, opts: &EnetOptions) -> Result<EnetLink, Error> {
        EnetLink::host_on(bind(addr)?, None, opts, None)
    }

    /// A client of the host at `host_addr`, for the context of peer `me` (unique in the
    /// session: the host refuses a peer id already taken). Members arrive once the host
    /// has welcomed it.
    pub fn connect(host_addr: SocketAddr, me: u64, opts: &EnetOptions) -> Result<EnetLink, Error> {
        EnetLink::client_on(bind(any_addr(host_addr))?, host_addr, Some(me), opts, None)
    }

    /// A client with no peer of its own, for a [`crate::bridge::Bridge`]: the host and
    /// its other clients see only the peers it carries.
    pub fn connect_relay(host_addr: SocketAddr, opts: &EnetOptions) -> Result<EnetLink, Error> {
        EnetLink::client_on(bind(any_addr(host_addr))?, host_addr, None, opts, None)
    }

    /// A peer of a mesh for the context of `me`, bound to `addr` (port 0 picks one: see
    /// `local_addr`): it accepts peers that dial it, and `dial`s the ones the game names.
    /// Every peer must be reachable by the others (a LAN, or addresses a lobby
    /// exchanged); behind NAT, use a listen host.
    pub fn mesh(addr: SocketAddr, me: u64, opts: &EnetOptions) -> Result<EnetLink, Error> {
        EnetLink::mesh_on(bind(addr)?, me, opts, None)
    }

    /// The address the link's socket is bound to.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.host.socket().local_addr().map_err(io)
    }
}

impl<S: Socket> EnetLink<S> {
    fn host_on(
        socket: S,
        me: Option<u64>,
        opts: &EnetOptions,
        clock: Option<Clock>,
    ) -> Result<EnetLink<S>, Error> {
        let me = own_id(me)?;
        opts.check()?;
        let host = new_host(socket, opts.max_clients.max(1), clock)?;
        Ok(EnetLink::with(me, host, Role::Host { clients: BTreeMap::new(), carried: Vec::new() }, opts))
    }

    fn client_on(
        socket: S,
        host_addr: S::Address,
        me: Option<u64>,
        opts: &EnetOptions,
        clock: Option<Clock>,
    ) -> Result<EnetLink<S>, Error> {
        let me = own_id(me)?;
        opts.check()?;
        let mut host = new_host(socket, 1, clock)?;
        let peer = host.connect(host_addr, CHANNELS, 0).map_err(|e| io(format!("connect: {e:?}")))?;
        peer.set_timeout(32, opts.timeout_ms, opts.timeout_ms.saturating_mul(2));
        let role = Role::Client { host: peer.id(), host_id: None, others: Vec::new(), carried: Vec::new() };
        Ok(EnetLink::with(me, host, role, opts))
    }

    fn mesh_on(socket: S, me: u64, opts: &EnetOptions, clock: Option<Clock>) -> Result<EnetLink<S>, Error> {
        let me = PeerId::checked(me)?.get();
        opts.check()?;
        let host = new_host(socket, opts.max_clients.max(1), clock)?;
        Ok(EnetLink::with(me, host, Role::Mesh { conns: BTreeMap::new() }, opts))
    }

    /// Dials the mesh peer at `addr`; it becomes a member once it has answered. Dialing a
    /// peer already connected is harmless (one of the two connections is kept). Only
    /// for a link made with `mesh`.
    pub fn dial(&mut self, addr: S::Address) -> Result<(), Error> {
        let Role::Mesh { .. } = self.role else {
            return Err(Error::Transport("dial is for mesh links; a client connects to its host".into()));
        };
        let now = self.host.now().as_millis() as u64;
        let peer = self.host.connect(addr, CHANNELS, 0).map_err(|e| io(format!("dial: {e:?}")))?;
        peer.set_timeout(32, self.timeout_ms, self.timeout_ms.saturating_mul(2));
        let id = peer.id();
        if let Role::Mesh { conns } = &mut self.role {
            conns.insert(
                id,
                Conn { id: 0, dialed: true, live: false, bucket: Bucket::full(self.max_rate, now) },
            );
        }
        Ok(())
    }

    fn with(me: u64, host: Host<S>, role: Role, opts: &EnetOptions) -> EnetLink<S> {
        let (events, stats) = (VecDeque::new(), LinkStats::default());
        let (timeout_ms, max_rate) = (opts.timeout_ms, opts.max_messages_per_s.max(1));
        let (room, token) = (opts.room.clone(), opts.token.clone());
        EnetLink { me, host, role, events, stats, timeout_ms, max_rate, refused: None, room, token }
    }

    /// The peer id this link joined as; 0 for a relay.
    pub fn peer_id(&self) -> u64 {
        self.me
    }

    /// Whether this is a mesh peer (`mesh`), which dials its peers.
    pub fn is_mesh(&self) -> bool {
        matches!(self.role, Role::Mesh { .. })
    }

    /// Why the host refused this client (a wrong version, a peer id taken), if it did.
    pub fn refused(&self) -> Option<&str> {
        self.refused.as_deref()
    }

    /// Zen peers this link reaches now (not those it carries).
    pub fn peers(&self) -> Vec<u64> {
        match &self.role {
            Role::Host { clients, .. } => clients.values().flat_map(Client::peers).collect(),
            Role::Client { host_id, others, .. } => {
                host_id.iter().filter(|&&h| h != 0).chain(others).copied().collect()
            }
            Role::Mesh { conns } => conns.values().filter(|c| c.live).map(|c| c.id).collect(),
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

    /// A data frame: the original sender, the destination (0 for all), the message.
    pub(crate) fn frame(from: u64, to: u64, bytes: &[u8]) -> (u8, Packet) {
        let mut f = Vec::with_capacity(bytes.len() + 20);
        put_varint(&mut f, from);
        put_varint(&mut f, to);
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
        let now = self.host.now().as_millis() as u64;
        let says_hello = match &mut self.role {
            Role::Client { .. } => true,
            Role::Mesh { conns } => {
                let c = conns.entry(peer).or_insert_with(|| Conn {
                    id: 0,
                    dialed: false,
                    live: false,
                    bucket: Bucket::full(self.max_rate, now),
                });
                c.dialed
            }
            // A host waits for the client's hello.
            Role::Host { .. } => false,
        };
        if says_hello {
            let hello = Hello::encode(self.me, &self.room, &self.token);
            self.control(peer, &hello);
        }
    }

    fn on_disconnect(&mut self, peer: PeerID) {
        match &mut self.role {
            Role::Host { clients, .. } => {
                if let Some(gone) = clients.remove(&peer) {
                    let others: Vec<PeerID> = clients.keys().copied().collect();
                    for id in gone.peers() {
                        self.events.push_back(LinkEvent::Left(id));
                        let mut left = vec![LEFT];
                        put_varint(&mut left, id);
                        for &p in &others {
                            self.control(p, &left);
                        }
                    }
                }
            }
            Role::Client { host_id, others, .. } => {
                for id in host_id.take().into_iter().filter(|&h| h != 0).chain(others.drain(..)) {
                    self.events.push_back(LinkEvent::Left(id));
                }
            }
            Role::Mesh { conns } => {
                if let Some(Conn { id, live: true, .. }) = conns.remove(&peer) {
                    self.events.push_back(LinkEvent::Left(id));
                }
            }
        }
    }

    /// Whether the session (as this host sees it) has `peer` already.
    fn host_has(&self, peer: u64) -> bool {
        match &self.role {
            Role::Host { clients, carried } => {
                peer == self.me || carried.contains(&peer) || clients.values().any(|c| c.speaks_for(peer))
            }
            Role::Client { .. } | Role::Mesh { .. } => false,
        }
    }

    /// Tells every client but `except` that `peer` joined (`JOINED`) or left (`LEFT`).
    fn tell_clients(&mut self, kind: u8, peer: u64, except: Option<PeerID>) {
        let Role::Host { clients, .. } = &self.role else { return };
        let targets: Vec<PeerID> = clients.keys().copied().filter(|&p| Some(p) != except).collect();
        let mut body = vec![kind];
        put_varint(&mut body, peer);
        for p in targets {
            self.control(p, &body);
        }
    }

    /// A control message; false if malformed or out of place.
    fn on_control(&mut self, from: PeerID, body: &[u8]) -> bool {
        match &self.role {
            Role::Host { clients, .. } if clients.contains_key(&from) => self.on_carry(from, body),
            Role::Host { .. } => self.on_hello(from, body),
            Role::Client { .. } => self.on_host_control(from, body),
            Role::Mesh { .. } => self.on_mesh_control(from, body),
        }
    }

    /// A mesh connection's control message: the dialer's hello, or the answer to ours.
    fn on_mesh_control(&mut self, from: PeerID, body: &[u8]) -> bool {
        let Role::Mesh { conns } = &self.role else { return false };
        let Some(conn) = conns.get(&from) else { return false };
        if conn.id != 0 {
            return false; // named already: nothing more is said on control
        }
        let id = if conn.dialed {
            let mut r = Reader::new(body);
            match (r.byte(), r.varint()) {
                (Ok(WELCOME), Ok(id)) if r.is_empty() && id != self.me && PeerId::checked(id).is_ok() => id,
                (Ok(REFUSED), _) => {
                    self.refused = Some(String::from_utf8_lossy(&body[1..]).into_owned());
                    return true;
                }
                _ => return false,
            }
        } else {
            let Some(Hello { version, peer: id, room, token }) = Hello::parse(body) else { return false };
            let refusal = if version != LINK_VERSION {
                Some(format!("link version {version}, the peer speaks {LINK_VERSION}"))
            } else if PeerId::checked(id).is_err() || id == self.me {
                Some(format!("peer id {id} is invalid here"))
            } else {
                self.admits(&room, &token).err()
            };
            if let Some(why) = refusal {
                self.refuse(from, &why);
                return false;
            }
            let mut welcome = vec![WELCOME];
            put_varint(&mut welcome, self.me);
            self.control(from, &welcome);
            id
        };
        self.settle_mesh(from, id);
        true
    }

    /// Connection `from` turned out to lead to peer `id`. If another one to `id` is live
    /// (both dialed at once), the one the lower peer id dialed is kept, the same choice
    /// on both sides, and the other is closed without a leave.
    fn settle_mesh(&mut self, from: PeerID, id: u64) {
        let me = self.me;
        let Role::Mesh { conns } = &mut self.role else { return };
        let other =
            conns.iter().find(|(&p, c)| p != from && c.live && c.id == id).map(|(&p, c)| (p, c.dialed));
        let by_lower = |dialed: bool| dialed == (me < id);
        let Some(c) = conns.get_mut(&from) else { return };
        c.id = id;
        let drop = match other {
            None => {
                c.live = true;
                self.events.push_back(LinkEvent::Joined(id));
                None
            }
            Some((p, other_dialed)) if !by_lower(other_dialed) && by_lower(c.dialed) => {
                c.live = true;
                if let Some(o) = conns.get_mut(&p) {
                    o.live = false;
                }
                Some(p)
            }
            Some(_) => Some(from),
        };
        if let Some(p) = drop.and_then(|p| self.host.get_peer_mut(p)) {
            p.disconnect_later(0);
        }
    }

    /// Whether a hello's room and token are what this host (or mesh peer) asks for.
    fn admits(&self, room: &str, token: &[u8]) -> Result<(), String> {
        if !self.room.is_empty() && room != self.room {
            return Err(format!("room {room:?} is not this session's"));
        }
        if !self.token.is_empty() && token != self.token.as_slice() {
            return Err("the token is not this session's".into());
        }
        Ok(())
    }

    /// Tells the other end of `to` why it is refused, then disconnects it (once the
    /// refusal is out).
    fn refuse(&mut self, to: PeerID, why: &str) {
        let mut r = vec![REFUSED];
        r.extend_from_slice(why.as_bytes());
        self.control(to, &r);
        if let Some(p) = self.host.get_peer_mut(to) {
            p.disconnect_later(0);
        }
    }

    /// A client's first control message: its hello.
    fn on_hello(&mut self, from: PeerID, body: &[u8]) -> bool {
        let Some(Hello { version, peer: id, room, token }) = Hello::parse(body) else { return false };
        let refusal = if version != LINK_VERSION {
            Some(format!("link version {version}, the host speaks {LINK_VERSION}"))
        } else if id != 0 && PeerId::checked(id).is_err() {
            Some(format!("peer id {id} is invalid"))
        } else if id != 0 && self.host_has(id) {
            Some(format!("peer id {id} is already taken"))
        } else {
            self.admits(&room, &token).err()
        };
        if let Some(why) = refusal {
            self.refuse(from, &why);
            return false;
        }
        let (now, rate) = (self.host.now().as_millis() as u64, self.max_rate);
        let Role::Host { clients, carried } = &mut self.role else { return false };
        let mut welcome = vec![WELCOME];
        put_varint(&mut welcome, self.me);
        let roster: Vec<u64> =
            carried.iter().copied().chain(clients.values().flat_map(Client::peers)).collect();
        put_varint(&mut welcome, roster.len() as u64);
        for p in roster {
            put_varint(&mut welcome, p);
        }
        clients.insert(from, Client { id, carried: Vec::new(), bucket: Bucket::full(rate, now) });
        self.control(from, &welcome);
        if id != 0 {
            self.tell_clients(JOINED, id, Some(from));
            self.events.push_back(LinkEvent::Joined(id));
        }
        true
    }

    /// A welcomed client's control message: a peer it starts or stops carrying.
    fn on_carry(&mut self, from: PeerID, body: &[u8]) -> bool {
        let mut r = Reader::new(body);
        let (Ok(kind), Ok(peer)) = (r.byte(), r.varint()) else { return false };
        if !r.is_empty() {
            return false;
        }
        match kind {
            CARRY => {
                let why = if PeerId::checked(peer).is_err() {
                    "is invalid"
                } else if self.host_has(peer) {
                    "is already taken"
                } else {
                    ""
                };
                if !why.is_empty() {
                    let mut d = vec![DENIED];
                    put_varint(&mut d, peer);
                    d.extend_from_slice(format!("peer id {peer} {why}").as_bytes());
                    self.control(from, &d);
                    return false;
                }
                let Role::Host { clients, .. } = &mut self.role else { return false };
                let Some(c) = clients.get_mut(&from) else { return false };
                c.carried.push(peer);
                self.tell_clients(JOINED, peer, Some(from));
                self.events.push_back(LinkEvent::Joined(peer));
                true
            }
            UNCARRY => {
                let Role::Host { clients, .. } = &mut self.role else { return false };
                let Some(c) = clients.get_mut(&from) else { return false };
                let Some(at) = c.carried.iter().position(|&p| p == peer) else { return false };
                c.carried.remove(at);
                self.tell_clients(LEFT, peer, Some(from));
                self.events.push_back(LinkEvent::Left(peer));
                true
            }
            _ => false,
        }
    }

    /// A control message from the host, at a client.
    fn on_host_control(&mut self, from: PeerID, body: &[u8]) -> bool {
        let Role::Client { host, host_id, others, carried } = &mut self.role else { return false };
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
                    let list: Vec<u64> =
                        (0..n.min(body.len() as u64)).map(|_| r.varint().ok()).collect::<Option<_>>()?;
                    Some((h, list))
                })();
                let Some((h, list)) = parsed else { return false };
                *host_id = Some(h);
                if h != 0 {
                    self.events.push_back(LinkEvent::Joined(h));
                }
                for &p in &list {
                    self.events.push_back(LinkEvent::Joined(p));
                }
                *others = list;
                // Peers carried before the welcome are announced now.
                let announce: Vec<Vec<u8>> = carried
                    .iter()
                    .map(|&p| {
                        let mut c = vec![CARRY];
                        put_varint(&mut c, p);
                        c
                    })
                    .collect();
                let host = *host;
                for c in announce {
                    self.control(host, &c);
                }
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
            (DENIED, true) => {
                let Ok(p) = r.varint() else { return false };
                carried.retain(|&c| c != p);
                self.refused = Some(String::from_utf8_lossy(r.rest()).into_owned());
                true
            }
            (REFUSED, _) => {
                self.refused = Some(String::from_utf8_lossy(r.rest()).into_owned());
                true
            }
            _ => false,
        }
    }

    /// A data frame; false if malformed, from a client that has not said hello, or in
    /// the name of a peer its sender does not speak for.
    fn on_data(&mut self, from: PeerID, body: &[u8]) -> bool {
        let mut r = Reader::new(body);
        let (Ok(sender), Ok(dest)) = (r.varint(), r.varint()) else { return false };
        let bytes: Arc<[u8]> = r.rest().into();
        let to = (dest != 0).then_some(dest);
        match &mut self.role {
            Role::Host { clients, carried } => {
                let now = self.host.now().as_millis() as u64;
                let Some(client) = clients.get_mut(&from) else { return false };
                if !client.bucket.take(self.max_rate, now) {
                    return false; // a flood: dropped, counted
                }
                if !client.speaks_for(sender) {
                    return false;
                }
                let mine = match to {
                    None => self.me != 0 || !carried.is_empty(),
                    Some(t) => t == self.me || carried.contains(&t),
                };
                if mine {
                    self.events.push_back(LinkEvent::Message { from: sender, to, bytes: bytes.clone() });
                }
                self.route(sender, to, &bytes, Some(from));
                true
            }
            Role::Mesh { conns } => {
                let now = self.host.now().as_millis() as u64;
                let Some(c) = conns.get_mut(&from).filter(|c| c.live) else { return false };
                if !c.bucket.take(self.max_rate, now) || sender != c.id || to.is_some_and(|t| t != self.me) {
                    return false;
                }
                self.events.push_back(LinkEvent::Message { from: sender, to, bytes });
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
                // The host checked the sender: it knows whom each of its clients speaks for.
                self.events.push_back(LinkEvent::Message { from: sender, to, bytes });
                true
            }
        }
    }

    /// Sends a message from `sender` on: from a host, to the clients that have `to` (or
    /// any peer, for all) but `except`; from a client, to its host.
    fn route(&mut self, sender: u64, to: Option<u64>, bytes: &[u8], except: Option<PeerID>) {
        let targets: Vec<PeerID> = match &self.role {
            Role::Host { clients, .. } => clients
                .iter()
                .filter(|&(&p, c)| Some(p) != except && to.map_or(c.has_peers(), |t| c.speaks_for(t)))
                .map(|(&p, _)| p)
                .collect(),
            Role::Client { host, host_id: Some(_), .. } => vec![*host],
            Role::Client { .. } => Vec::new(),
            Role::Mesh { conns } => conns
                .iter()
                .filter(|&(_, c)| c.live && to.is_none_or(|t| t == c.id))
                .map(|(&p, _)| p)
                .collect(),
        };
        if targets.is_empty() {
            return;
        }
        let (channel, packet) = Self::frame(sender, to.unwrap_or(0), bytes);
        for p in targets {
            self.send_packet(p, channel, &packet);
        }
    }

    /// Disconnects from every peer now (they see this peer leave at once, not after the
    /// timeout).
    pub fn close(&mut self) {
        disconnect_all(&mut self.host);
    }
}

impl<S: Socket> Link for EnetLink<S> {
    fn send(&mut self, to: Option<u64>, bytes: Vec<u8>) {
        if self.me == 0 {
            // A relay sends only as the peers it carries.
            self.stats.dropped += 1;
            return;
        }
        self.route(self.me, to, &bytes, None);
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

impl<S: Socket> Relay for EnetLink<S> {
    fn carry(&mut self, peer: u64) -> Result<(), Error> {
        PeerId::checked(peer)?;
        let taken = match &self.role {
            Role::Host { .. } => self.host_has(peer),
            Role::Client { host_id, others, carried, .. } => {
                peer == self.me || *host_id == Some(peer) || others.contains(&peer) || carried.contains(&peer)
            }
            Role::Mesh { .. } => {
                let why = "a mesh link carries no other peers: bridge with a host or client";
                return Err(Error::Transport(why.into()));
            }
        };
        if taken {
            return Err(Error::PeerIdTaken(peer));
        }
        match &mut self.role {
            Role::Host { carried, .. } => {
                carried.push(peer);
                self.tell_clients(JOINED, peer, None);
            }
            Role::Mesh { .. } => {} // refused above
            Role::Client { host, host_id, carried, .. } => {
                carried.push(peer);
                // Before the welcome, the welcome's answer announces it.
                if host_id.is_some() {
                    let host = *host;
                    let mut c = vec![CARRY];
                    put_varint(&mut c, peer);
                    self.control(host, &c);
                }
            }
        }
        self.host.flush();
        Ok(())
    }

    fn uncarry(&mut self, peer: u64) {
        let (was, host) = match &mut self.role {
            Role::Host { carried, .. } => (take(carried, peer), None),
            Role::Client { host, host_id, carried, .. } => (take(carried, peer), host_id.map(|_| *host)),
            Role::Mesh { .. } => (false, None),
        };
        if !was {
            return;
        }
        match (&self.role, host) {
            (Role::Host { .. }, _) => self.tell_clients(LEFT, peer, None),
            (Role::Client { .. }, Some(host)) => {
                let mut c = vec![UNCARRY];
                put_varint(&mut c, peer);
                self.control(host, &c);
            }
            (Role::Client { .. }, None) | (Role::Mesh { .. }, _) => {}
        }
        self.host.flush();
    }

    fn send_as(&mut self, from: u64, to: Option<u64>, bytes: Arc<[u8]>) {
        let carries = match &self.role {
            Role::Host { carried, .. } | Role::Client { carried, .. } => carried.contains(&from),
            Role::Mesh { .. } => false,
        };
        if !carries {
            self.stats.dropped += 1;
            return;
        }
        self.route(from, to, &bytes, None);
        self.host.flush();
    }
}

/// Disconnects every peer of `host` now and sends the disconnects.
pub(crate) fn disconnect_all<S: Socket>(host: &mut Host<S>) {
    let peers: Vec<PeerID> = host.connected_peers().map(|p| p.id()).collect();
    for p in peers {
        if let Some(peer) = host.get_peer_mut(p) {
            peer.disconnect_now(0);
        }
    }
    host.flush();
}

/// Removes `peer` from `list`; whether it was there.
fn take(list: &mut Vec<u64>, peer: u64) -> bool {
    let before = list.len();
    list.retain(|&p| p != peer);
    list.len() != before
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
        EnetLink::host_on(EnetSimSocket::new(), Some(me), opts, Some(self.clock.clone()))
    }

    /// A client of the host at index `host`, for the context of `me`.
    pub fn client(&self, host: usize, me: u64, opts: &EnetOptions) -> Result<EnetLink<EnetSimSocket>, Error> {
        EnetLink::client_on(EnetSimSocket::new(), EnetSimAddr(host), Some(me), opts, Some(self.clock.clone()))
    }

    /// A mesh peer for the context of `me` (dial the others by their index).
    pub fn mesh(&self, me: u64, opts: &EnetOptions) -> Result<EnetLink<EnetSimSocket>, Error> {
        EnetLink::mesh_on(EnetSimSocket::new(), me, opts, Some(self.clock.clone()))
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

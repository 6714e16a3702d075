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
use crate::link::{Link, LinkEvent, LinkStats};
use rusty_enet::{Host, HostSettings, Packet, PeerID};
use std::collections::{HashMap, VecDeque};
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;

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
    /// A connection silent this long (ms) is dropped: its peer leaves. ENet's own
    /// default is up to 30 s; a game wants the context's `peer_timeout_ms` or less.
    pub timeout_ms: u32,
}

impl Default for EnetOptions {
    fn default() -> EnetOptions {
        EnetOptions { max_clients: 64, timeout_ms: 3000 }
    }
}

enum Role {
    /// Accepts clients: ENet peer -> the zen peer id its hello named.
    Host { clients: HashMap<PeerID, u64> },
    /// Connected (or connecting) to a host: the host's peer id once welcomed, the others.
    Client { host: PeerID, host_id: Option<u64>, others: Vec<u64> },
}

/// A context's link over ENet: a listen host or a client of one.
pub struct EnetLink {
    me: u64,
    host: Host<UdpSocket>,
    role: Role,
    events: VecDeque<LinkEvent>,
    stats: LinkStats,
    timeout_ms: u32,
    /// Why the host refused this client, once it has.
    refused: Option<String>,
}

fn io(e: impl std::fmt::Display) -> Error {
    Error::Transport(e.to_string())
}

fn new_host(addr: SocketAddr, peers: usize) -> Result<Host<UdpSocket>, Error> {
    let socket = UdpSocket::bind(addr).map_err(|e| io(format!("cannot bind {addr}: {e}")))?;
    let settings = HostSettings { peer_limit: peers, channel_limit: CHANNELS, ..HostSettings::default() };
    Host::new(socket, settings).map_err(|e| io(format!("ENet host: {e:?}")))
}

impl EnetLink {
    /// A listen host at `addr` (port 0 picks a free one: see `local_addr`) for the context
    /// of peer `me`.
    pub fn listen(addr: SocketAddr, me: u64, opts: &EnetOptions) -> Result<EnetLink, Error> {
        crate::context::check_peer(me)?;
        let host = new_host(addr, opts.max_clients.max(1))?;
        let role = Role::Host { clients: HashMap::new() };
        Ok(EnetLink {
            me,
            host,
            role,
            events: VecDeque::new(),
            stats: LinkStats::default(),
            timeout_ms: opts.timeout_ms,
            refused: None,
        })
    }

    /// A client of the host at `host_addr`, for the context of peer `me` (unique in the
    /// session: the host refuses a peer id already taken). Members arrive once the host
    /// has welcomed it.
    pub fn connect(host_addr: SocketAddr, me: u64, opts: &EnetOptions) -> Result<EnetLink, Error> {
        crate::context::check_peer(me)?;
        let any: SocketAddr =
            if host_addr.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().expect("literal");
        let mut host = new_host(any, 1)?;
        let peer = host.connect(host_addr, CHANNELS, 0).map_err(|e| io(format!("connect: {e:?}")))?;
        peer.set_timeout(32, opts.timeout_ms, opts.timeout_ms);
        let role = Role::Client { host: peer.id(), host_id: None, others: Vec::new() };
        Ok(EnetLink {
            me,
            host,
            role,
            events: VecDeque::new(),
            stats: LinkStats::default(),
            timeout_ms: opts.timeout_ms,
            refused: None,
        })
    }

    /// The peer id this link joined as.
    pub fn peer_id(&self) -> u64 {
        self.me
    }

    /// The address the link's socket is bound to.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.host.socket().local_addr().map_err(io)
    }

    /// Why the host refused this client (a wrong version, a peer id taken), if it did.
    pub fn refused(&self) -> Option<&str> {
        self.refused.as_deref()
    }

    /// Zen peers this link reaches now.
    pub fn peers(&self) -> Vec<u64> {
        match &self.role {
            Role::Host { clients } => clients.values().copied().collect(),
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
            p.set_timeout(32, timeout, timeout);
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
                if let Some(id) = clients.remove(&peer) {
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
                } else if crate::context::check_peer(id).is_err() {
                    Some(format!("peer id {id} is invalid"))
                } else if id == self.me || clients.values().any(|&c| c == id) {
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
                for &c in clients.values() {
                    put_varint(&mut welcome, c);
                }
                let others: Vec<PeerID> = clients.keys().copied().collect();
                clients.insert(from, id);
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
        match &self.role {
            Role::Host { clients } => {
                let Some(&sender) = clients.get(&from) else { return false };
                let targets: Vec<PeerID> = clients
                    .iter()
                    .filter(|&(&p, &id)| p != from && (peer == 0 || peer == id))
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
                if from != *host || host_id.is_none() {
                    return false;
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

impl Link for EnetLink {
    fn send(&mut self, to: Option<u64>, bytes: Vec<u8>) {
        let targets: Vec<(PeerID, u64)> = match &self.role {
            Role::Host { clients } => clients
                .iter()
                .filter(|&(_, &id)| to.is_none_or(|t| t == id))
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

impl Drop for EnetLink {
    fn drop(&mut self) {
        self.close();
    }
}

//! A relay gateway's ENet side: many rooms behind one UDP port, for relay servers
//! (`zen-relay`) that carry rooms between machines. No context lives here.
//!
//! Players connect with an ordinary [`EnetLink::connect`](crate::EnetLink::connect) whose
//! `EnetOptions` name a room and show a token. The gateway speaks the listen host's side
//! of the ENet link protocol, once per room: each room is its own session, with its own
//! roster, and nothing of one room reaches another's clients.
//!
//! - A hello is admitted when its room id is valid (`check_room`), its peer id is a
//!   player's (not a relay, not already here), and the server's `Admit` says yes (the
//!   token is checked there). A client speaks only as the peer its hello named.
//! - Messages between the gateway's own clients of a room are delivered at once; what
//!   other machines need (every broadcast, and messages for peers elsewhere) is handed
//!   to the server as a [`GatewayEvent::Message`].
//! - Peers of the room on other machines are `carry`d (their joins announced to the
//!   room's clients) and their messages delivered with `send_as`.
//!
//! Sans-IO in the library's sense: no thread, no clock of its own; the server calls
//! `poll` when the socket is readable or a timer fires.

use crate::codec::put_varint;
use crate::enet::{
    bind, disconnect_all, io, new_host, Bucket, EnetLink, EnetOptions, Hello, CONTROL, JOINED, LEFT,
    LINK_VERSION, MAX_ROOM_BYTES, REFUSED, WELCOME,
};
use crate::error::Error;
use crate::ids::PeerId;
use crate::link::LinkStats;
use rusty_enet::{Host, Packet, PeerID, Socket};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;

/// Whether `room` may name a room: 1 to 64 bytes of ASCII letters, digits, `_` and `-`
/// (so it is one NATS subject token: no `.`, `*`, `>` or spaces).
pub fn check_room(room: &str) -> Result<(), String> {
    let ok = !room.is_empty()
        && room.len() <= MAX_ROOM_BYTES
        && room.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!("room id {room:?} is invalid: 1 to {MAX_ROOM_BYTES} of A-Z a-z 0-9 _ -"))
    }
}

/// Decides whether a hello (room and peer checked already) may join: `Err` holds the
/// reason the client is told.
pub type Admit = Box<dyn FnMut(&Hello) -> Result<(), String> + Send>;

/// What the gateway's clients did, for the server to carry elsewhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GatewayEvent {
    /// A player of `room` connected here and was admitted.
    Joined { room: Arc<str>, peer: u64 },
    /// It left (disconnected, timed out, or was `kick`ed).
    Left { room: Arc<str>, peer: u64 },
    /// A message of `room` from `from` that peers elsewhere need: a broadcast (`to` is
    /// `None`; this gateway's clients have it already), or one for a peer elsewhere.
    Message { room: Arc<str>, from: u64, to: Option<u64>, bytes: Arc<[u8]> },
}

/// A gateway's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GatewayStats {
    /// Datagrams and bytes moved, and input refused as not ours (see `LinkStats`).
    pub link: LinkStats,
    /// Hellos refused (bad room, version, peer id, or `Admit` said no).
    pub refused: u64,
    /// Data messages dropped because their client exceeded `max_messages_per_s`.
    pub flooded: u64,
    /// Data frames in the name of a peer their client is not (forgeries).
    pub forged: u64,
}

/// An admitted client.
struct Player {
    room: Arc<str>,
    peer: u64,
    bucket: Bucket,
}

/// A room as this gateway knows it: its clients here, its peers elsewhere.
#[derive(Default)]
struct Room {
    local: BTreeMap<u64, PeerID>,
    remote: BTreeSet<u64>,
}

/// Many rooms behind one ENet host. See the module docs.
pub struct Gateway<S: Socket = UdpSocket> {
    host: Host<S>,
    players: BTreeMap<PeerID, Player>,
    rooms: HashMap<Arc<str>, Room>,
    events: VecDeque<GatewayEvent>,
    stats: GatewayStats,
    admit: Admit,
    timeout_ms: u32,
    max_rate: u32,
}

impl Gateway<UdpSocket> {
    /// A gateway bound to `addr` (port 0 picks a free one). `opts.max_clients`,
    /// `timeout_ms` and `max_messages_per_s` apply to every client.
    pub fn listen(addr: SocketAddr, opts: &EnetOptions, admit: Admit) -> Result<Gateway, Error> {
        Gateway::on_socket(bind(addr)?, opts, admit)
    }

    /// The address the gateway's socket is bound to.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.host.socket().local_addr().map_err(io)
    }
}

impl<S: Socket> Gateway<S> {
    /// A gateway on a socket of the server's own.
    pub fn on_socket(socket: S, opts: &EnetOptions, admit: Admit) -> Result<Gateway<S>, Error> {
        let host = new_host(socket, opts.max_clients.max(1), None)?;
        Ok(Gateway {
            host,
            players: BTreeMap::new(),
            rooms: HashMap::new(),
            events: VecDeque::new(),
            stats: GatewayStats::default(),
            admit,
            timeout_ms: opts.timeout_ms,
            max_rate: opts.max_messages_per_s.max(1),
        })
    }

    pub fn stats(&self) -> GatewayStats {
        self.stats
    }

    /// Clients admitted now.
    pub fn clients(&self) -> usize {
        self.players.len()
    }

    /// Rooms with a client here now.
    pub fn rooms(&self) -> impl Iterator<Item = &Arc<str>> {
        self.rooms.keys()
    }

    /// The players of `room` connected here.
    pub fn local_peers(&self, room: &str) -> Vec<u64> {
        self.rooms.get(room).map_or_else(Vec::new, |r| r.local.keys().copied().collect())
    }

    /// The next event, running ENet until it has one or nothing more to do now.
    pub fn poll(&mut self) -> Option<GatewayEvent> {
        if self.events.is_empty() {
            self.service();
        }
        self.events.pop_front()
    }

    /// Sends what is queued now (`carry`, `send_as` and `kick` flush themselves).
    pub fn flush(&mut self) {
        self.host.flush();
    }

    /// Peer `peer` of `room` is on another machine: the room's clients here learn it
    /// joined. Refused when no client of `room` is here, or `peer` is one of them (a
    /// client here holds that id: the server decides which connection wins, see `kick`).
    pub fn carry(&mut self, room: &str, peer: u64) -> Result<(), Error> {
        PeerId::checked(peer)?;
        let Some(r) = self.rooms.get_mut(room) else {
            return Err(Error::Transport(format!("no client of room {room:?} is here")));
        };
        if r.local.contains_key(&peer) {
            return Err(Error::PeerIdTaken(peer));
        }
        if r.remote.insert(peer) {
            self.tell(room, JOINED, peer, None);
            self.host.flush();
        }
        Ok(())
    }

    /// Peer `peer` of `room` left elsewhere: the room's clients here learn it.
    pub fn uncarry(&mut self, room: &str, peer: u64) {
        if self.rooms.get_mut(room).is_some_and(|r| r.remote.remove(&peer)) {
            self.tell(room, LEFT, peer, None);
            self.host.flush();
        }
    }

    /// Delivers a message of `room` from `from` (a carried peer) to this gateway's
    /// clients of the room: all of them, or the one that is `to`. Anything else is
    /// dropped and counted.
    pub fn send_as(&mut self, room: &str, from: u64, to: Option<u64>, bytes: &[u8]) {
        let targets: Vec<PeerID> = match self.rooms.get(room) {
            Some(r) if r.remote.contains(&from) => match to {
                None => r.local.values().copied().collect(),
                Some(t) => r.local.get(&t).copied().into_iter().collect(),
            },
            _ => Vec::new(),
        };
        if targets.is_empty() {
            self.stats.link.dropped += 1;
            return;
        }
        self.deliver(from, to, bytes, &targets);
        self.host.flush();
    }

    /// Disconnects the client of `room` that is `peer`, telling it `why` (the id
    /// connected again elsewhere, say). Its leave follows as for any disconnect.
    pub fn kick(&mut self, room: &str, peer: u64, why: &str) {
        if let Some(p) = self.rooms.get(room).and_then(|r| r.local.get(&peer)).copied() {
            self.refuse(p, why);
            self.host.flush();
        }
    }

    /// Disconnects every client now.
    pub fn close(&mut self) {
        disconnect_all(&mut self.host);
    }

    fn service(&mut self) {
        loop {
            let event = match self.host.service() {
                Ok(Some(e)) => e.no_ref(),
                Ok(None) => break,
                Err(_) => {
                    self.stats.link.rejected += 1;
                    continue;
                }
            };
            match event {
                rusty_enet::EventNoRef::Connect { peer, .. } => {
                    let t = self.timeout_ms;
                    if let Some(p) = self.host.get_peer_mut(peer) {
                        p.set_timeout(32, t, t.saturating_mul(2));
                    }
                }
                rusty_enet::EventNoRef::Disconnect { peer, .. } => self.on_disconnect(peer),
                rusty_enet::EventNoRef::Receive { peer, channel_id, packet } => {
                    self.stats.link.received += 1;
                    self.stats.link.bytes_received += packet.data().len() as u64;
                    let ok = if channel_id == CONTROL {
                        self.on_hello(peer, packet.data())
                    } else {
                        self.on_data(peer, packet.data())
                    };
                    if !ok {
                        self.stats.link.rejected += 1;
                    }
                }
            }
        }
    }

    fn send_packet(&mut self, to: PeerID, channel: u8, packet: &Packet) {
        let len = packet.data().len() as u64;
        match self.host.get_peer_mut(to).map(|p| p.send(channel, packet)) {
            Some(Ok(())) => {
                self.stats.link.sent += 1;
                self.stats.link.bytes_sent += len;
            }
            _ => self.stats.link.dropped += 1,
        }
    }

    fn refuse(&mut self, to: PeerID, why: &str) {
        let mut r = vec![REFUSED];
        r.extend_from_slice(why.as_bytes());
        self.send_packet(to, CONTROL, &Packet::reliable(r));
        if let Some(p) = self.host.get_peer_mut(to) {
            p.disconnect_later(0);
        }
    }

    /// Tells the room's clients here (but `except`) that `peer` joined or left.
    fn tell(&mut self, room: &str, kind: u8, peer: u64, except: Option<PeerID>) {
        let Some(r) = self.rooms.get(room) else { return };
        let targets: Vec<PeerID> = r.local.values().copied().filter(|&p| Some(p) != except).collect();
        let mut body = vec![kind];
        put_varint(&mut body, peer);
        let packet = Packet::reliable(body);
        for p in targets {
            self.send_packet(p, CONTROL, &packet);
        }
    }

    fn deliver(&mut self, from: u64, to: Option<u64>, bytes: &[u8], targets: &[PeerID]) {
        let (channel, packet) = EnetLink::<S>::frame(from, to.unwrap_or(0), bytes);
        for &p in targets {
            self.send_packet(p, channel, &packet);
        }
    }

    /// A control message: a hello from a client not admitted yet; anything else is out
    /// of place (an admitted player carries no one).
    fn on_hello(&mut self, from: PeerID, body: &[u8]) -> bool {
        if self.players.contains_key(&from) {
            return false;
        }
        let Some(hello) = Hello::parse(body) else {
            self.stats.refused += 1;
            self.refuse(from, "not a zen-crdt hello");
            return false;
        };
        let refusal = if hello.version != LINK_VERSION {
            Err(format!("link version {}, the gateway speaks {LINK_VERSION}", hello.version))
        } else if PeerId::checked(hello.peer).is_err() {
            Err(format!("peer id {} is invalid: a gateway takes players, not relays", hello.peer))
        } else if let Err(why) = check_room(&hello.room) {
            Err(why)
        } else if self.rooms.get(hello.room.as_str()).is_some_and(|r| r.local.contains_key(&hello.peer)) {
            Err(format!("peer id {} is already taken in room {:?}", hello.peer, hello.room))
        } else {
            (self.admit)(&hello)
        };
        if let Err(why) = refusal {
            self.stats.refused += 1;
            self.refuse(from, &why);
            return false;
        }
        let room: Arc<str> = match self.rooms.get_key_value(hello.room.as_str()) {
            Some((k, _)) => k.clone(),
            None => Arc::from(hello.room.as_str()),
        };
        let peer = hello.peer;
        let r = self.rooms.entry(room.clone()).or_default();
        // A peer that was elsewhere connected here again (its old gateway went away):
        // from now on it is here.
        r.remote.remove(&peer);
        let mut welcome = vec![WELCOME];
        put_varint(&mut welcome, 0);
        let roster: Vec<u64> = r.local.keys().chain(r.remote.iter()).copied().collect();
        put_varint(&mut welcome, roster.len() as u64);
        for p in roster {
            put_varint(&mut welcome, p);
        }
        r.local.insert(peer, from);
        let now = self.host.now().as_millis() as u64;
        self.players
            .insert(from, Player { room: room.clone(), peer, bucket: Bucket::full(self.max_rate, now) });
        self.send_packet(from, CONTROL, &Packet::reliable(welcome));
        self.tell(&room, JOINED, peer, Some(from));
        self.events.push_back(GatewayEvent::Joined { room, peer });
        true
    }

    fn on_disconnect(&mut self, from: PeerID) {
        let Some(Player { room, peer, .. }) = self.players.remove(&from) else { return };
        let Some(r) = self.rooms.get_mut(&room) else { return };
        r.local.remove(&peer);
        if r.local.is_empty() {
            self.rooms.remove(&room);
        } else {
            self.tell(&room, LEFT, peer, None);
        }
        self.events.push_back(GatewayEvent::Left { room, peer });
    }

    /// A data frame from an admitted player: delivered to the room's clients here, and
    /// handed to the server when peers elsewhere need it.
    fn on_data(&mut self, from: PeerID, body: &[u8]) -> bool {
        let mut r = crate::codec::Reader::new(body);
        let (Ok(sender), Ok(dest)) = (r.varint(), r.varint()) else { return false };
        let now = self.host.now().as_millis() as u64;
        let Some(player) = self.players.get_mut(&from) else { return false };
        if !player.bucket.take(self.max_rate, now) {
            self.stats.flooded += 1;
            return false;
        }
        if sender != player.peer {
            self.stats.forged += 1;
            return false;
        }
        let room = player.room.clone();
        let to = (dest != 0).then_some(dest);
        let bytes = r.rest();
        let Some(rm) = self.rooms.get(&room) else { return false };
        let (targets, elsewhere): (Vec<PeerID>, bool) = match to {
            None => (rm.local.iter().filter(|(&p, _)| p != sender).map(|(_, &c)| c).collect(), true),
            Some(t) => match rm.local.get(&t) {
                Some(&c) => (vec![c], false),
                None => (Vec::new(), rm.remote.contains(&t)),
            },
        };
        if targets.is_empty() && !elsewhere {
            self.stats.link.dropped += 1;
            return true;
        }
        self.deliver(sender, to, bytes, &targets);
        if elsewhere {
            self.events.push_back(GatewayEvent::Message { room, from: sender, to, bytes: Arc::from(bytes) });
        }
        true
    }
}

impl<S: Socket> Drop for Gateway<S> {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_ids_are_one_subject_token() {
        for ok in ["a", "room-7", "Zone_01", &"x".repeat(64)] {
            assert!(check_room(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a.b", "a*", ">", "a b", "é", &"x".repeat(65)] {
            assert!(check_room(bad).is_err(), "{bad}");
        }
    }
}

//! The in-process bus: contexts on threads of one process linked through crossbeam
//! channels (Enu's main thread, worker and network thread; servers hosting many rooms;
//! tests).
//!
//! Each endpoint has a bounded message queue and sends with `try_send` only: a full
//! queue drops the message and counts it, and never blocks a game thread (the protocol
//! repairs the loss with a catch-up). A broadcast is one allocation shared by every
//! receiver. Joins and leaves travel through each endpoint's own control queue (small
//! and rare, so unbounded: a membership change is never dropped), and an endpoint takes
//! its control queue first, so it learns of a peer before that peer's first message. A
//! context is only touched by the thread that pumps its endpoint.
//!
//! A relay endpoint (`join_relay`) has no peer of its own: it carries peers that a
//! [`crate::bridge::Bridge`] reaches on another link, receives what is sent to them, and
//! sends as them.

use crate::error::Error;
use crate::ids::PeerId;
use crate::link::{Link, LinkEvent, LinkStats, Relay};
use crossbeam_channel::{bounded, unbounded, Receiver, Sender, TrySendError};
use parking_lot::RwLock;
use std::sync::Arc;

enum Control {
    Joined(u64),
    Left(u64),
}

/// A message as it waits in a queue: sender, destination (`None` for all), bytes.
type Delivery = (u64, Option<u64>, Arc<[u8]>);

/// How the bus reaches one endpoint.
struct Port {
    /// Tells the endpoints of this bus apart (relays have no peer id of their own).
    key: u64,
    /// The peers this endpoint receives for: its own (unless a relay), then those it
    /// carries.
    peers: Vec<u64>,
    messages: Sender<Delivery>,
    control: Sender<Control>,
}

#[derive(Default)]
struct Ports {
    list: Vec<Port>,
    next_key: u64,
}

impl Ports {
    fn taken(&self, peer: u64) -> bool {
        self.list.iter().any(|p| p.peers.contains(&peer))
    }

    /// Tells every endpoint but `key`'s.
    fn announce(&self, key: u64, c: impl Fn() -> Control) {
        for p in self.list.iter().filter(|p| p.key != key) {
            // A port whose endpoint is gone is removed by its Drop under the lock.
            let _ = p.control.send(c());
        }
    }
}

/// A bus: cheap to clone, shareable between threads; endpoints join it by peer id.
#[derive(Clone, Default)]
pub struct Bus {
    ports: Arc<RwLock<Ports>>,
}

impl Bus {
    pub fn new() -> Bus {
        Bus::default()
    }

    /// Joins the bus as `peer` (1..2^53, unique on the bus) with room for `capacity`
    /// messages (at least 1) not yet polled. Every endpoint already there gets `Joined(peer)`,
    /// and the new endpoint gets `Joined` for each peer already there. Dropping the
    /// endpoint leaves: the others get `Left(peer)`.
    pub fn join(&self, peer: u64, capacity: usize) -> Result<BusEndpoint, Error> {
        PeerId::checked(peer)?;
        self.attach(Some(peer), capacity)
    }

    /// Joins the bus as a relay for a [`crate::bridge::Bridge`]: no peer of its own, so
    /// nobody sees it join; it learns of every peer on the bus, and the peers it carries
    /// join and leave for the others.
    pub fn join_relay(&self, capacity: usize) -> Result<BusEndpoint, Error> {
        self.attach(None, capacity)
    }

    fn attach(&self, peer: Option<u64>, capacity: usize) -> Result<BusEndpoint, Error> {
        if capacity == 0 {
            return Err(Error::BadOption { name: "capacity", value: 0, why: "must be at least 1" });
        }
        let (messages, inbox) = bounded(capacity);
        let (control, control_in) = unbounded();
        let mut ports = self.ports.write();
        if let Some(p) = peer.filter(|&p| ports.taken(p)) {
            return Err(Error::PeerIdTaken(p));
        }
        let key = ports.next_key;
        ports.next_key += 1;
        if let Some(p) = peer {
            ports.announce(key, || Control::Joined(p));
        }
        for q in ports.list.iter().flat_map(|port| &port.peers) {
            let _ = control.send(Control::Joined(*q));
        }
        ports.list.push(Port { key, peers: peer.into_iter().collect(), messages, control });
        drop(ports);
        let stats = LinkStats::default();
        Ok(BusEndpoint { peer: peer.unwrap_or(0), key, bus: self.clone(), inbox, control: control_in, stats })
    }

    /// Peer ids on the bus now, carried ones included.
    pub fn peers(&self) -> Vec<u64> {
        self.ports.read().list.iter().flat_map(|p| p.peers.iter().copied()).collect()
    }
}

/// One peer's place on a [`Bus`]: a [`Link`] for [`crate::link::pump`], or a [`Relay`]
/// for a bridge. `Send`, so it can move to the thread that owns its context.
pub struct BusEndpoint {
    /// 0 for a relay.
    peer: u64,
    key: u64,
    bus: Bus,
    inbox: Receiver<Delivery>,
    control: Receiver<Control>,
    stats: LinkStats,
}

impl BusEndpoint {
    /// The peer this endpoint joined as; 0 for a relay.
    pub fn peer_id(&self) -> u64 {
        self.peer
    }

    fn deliver(&mut self, from: u64, to: Option<u64>, bytes: Arc<[u8]>) {
        let len = bytes.len() as u64;
        let ports = self.bus.ports.read();
        // A broadcast reaches every other endpoint with a peer to receive it, once.
        let targets = ports
            .list
            .iter()
            .filter(|p| p.key != self.key && to.map_or(!p.peers.is_empty(), |t| p.peers.contains(&t)));
        for p in targets {
            match p.messages.try_send((from, to, bytes.clone())) {
                Ok(()) => {
                    self.stats.sent += 1;
                    self.stats.bytes_sent += len;
                }
                Err(TrySendError::Full(_)) => self.stats.dropped += 1,
                // Its endpoint is being dropped: it has left.
                Err(TrySendError::Disconnected(_)) => {}
            }
        }
    }

    fn carries(&self, peer: u64) -> bool {
        peer != self.peer
            && self.bus.ports.read().list.iter().any(|p| p.key == self.key && p.peers.contains(&peer))
    }
}

impl Link for BusEndpoint {
    fn send(&mut self, to: Option<u64>, bytes: Vec<u8>) {
        if self.peer == 0 {
            // A relay sends only as the peers it carries.
            self.stats.dropped += 1;
            return;
        }
        self.deliver(self.peer, to, bytes.into())
    }

    fn poll(&mut self) -> Option<LinkEvent> {
        if let Ok(c) = self.control.try_recv() {
            return Some(match c {
                Control::Joined(p) => LinkEvent::Joined(p),
                Control::Left(p) => LinkEvent::Left(p),
            });
        }
        let (from, to, bytes) = self.inbox.try_recv().ok()?;
        self.stats.received += 1;
        self.stats.bytes_received += bytes.len() as u64;
        Some(LinkEvent::Message { from, to, bytes })
    }

    fn stats(&self) -> LinkStats {
        self.stats
    }
}

impl Relay for BusEndpoint {
    fn carry(&mut self, peer: u64) -> Result<(), Error> {
        PeerId::checked(peer)?;
        let mut ports = self.bus.ports.write();
        if ports.taken(peer) {
            return Err(Error::PeerIdTaken(peer));
        }
        ports.announce(self.key, || Control::Joined(peer));
        if let Some(p) = ports.list.iter_mut().find(|p| p.key == self.key) {
            p.peers.push(peer);
        }
        Ok(())
    }

    fn uncarry(&mut self, peer: u64) {
        if peer == self.peer {
            return;
        }
        let mut ports = self.bus.ports.write();
        let Some(p) = ports.list.iter_mut().find(|p| p.key == self.key) else { return };
        let before = p.peers.len();
        p.peers.retain(|&q| q != peer);
        if p.peers.len() != before {
            ports.announce(self.key, || Control::Left(peer));
        }
    }

    fn send_as(&mut self, from: u64, to: Option<u64>, bytes: Arc<[u8]>) {
        if !self.carries(from) {
            self.stats.dropped += 1;
            return;
        }
        self.deliver(from, to, bytes)
    }
}

impl Drop for BusEndpoint {
    fn drop(&mut self) {
        let mut ports = self.bus.ports.write();
        let Some(at) = ports.list.iter().position(|p| p.key == self.key) else { return };
        let gone = ports.list.remove(at);
        for peer in gone.peers {
            ports.announce(self.key, || Control::Left(peer));
        }
    }
}

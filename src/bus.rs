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

use crate::error::Error;
use crate::ids::PeerId;
use crate::link::{Link, LinkEvent, LinkStats};
use crossbeam_channel::{bounded, unbounded, Receiver, Sender, TrySendError};
use parking_lot::RwLock;
use std::sync::Arc;

enum Control {
    Joined(u64),
    Left(u64),
}

/// How the bus reaches one endpoint.
struct Port {
    peer: u64,
    messages: Sender<(u64, Arc<[u8]>)>,
    control: Sender<Control>,
}

/// A bus: cheap to clone, shareable between threads; endpoints join it by peer id.
#[derive(Clone, Default)]
pub struct Bus {
    ports: Arc<RwLock<Vec<Port>>>,
}

impl Bus {
    pub fn new() -> Bus {
        Bus::default()
    }

    /// Joins the bus as `peer` (1..2^53, unique on the bus) with room for `capacity`
    /// messages (at least 1) not yet polled. Every endpoint already there gets `Joined(peer)`,
    /// and the new endpoint gets `Joined` for each of them. Dropping the endpoint leaves:
    /// the others get `Left(peer)`.
    pub fn join(&self, peer: u64, capacity: usize) -> Result<BusEndpoint, Error> {
        PeerId::checked(peer)?;
        if capacity == 0 {
            return Err(Error::BadOption { name: "capacity", value: 0, why: "must be at least 1" });
        }
        let (messages, inbox) = bounded(capacity);
        let (control, control_in) = unbounded();
        let mut ports = self.ports.write();
        if ports.iter().any(|p| p.peer == peer) {
            return Err(Error::PeerIdTaken(peer));
        }
        for p in ports.iter() {
            // A port whose endpoint is gone is removed by its Drop under this lock.
            let _ = p.control.send(Control::Joined(peer));
            let _ = control.send(Control::Joined(p.peer));
        }
        ports.push(Port { peer, messages, control });
        drop(ports);
        Ok(BusEndpoint { peer, bus: self.clone(), inbox, control: control_in, stats: LinkStats::default() })
    }

    /// Peer ids of the endpoints on the bus now.
    pub fn peers(&self) -> Vec<u64> {
        self.ports.read().iter().map(|p| p.peer).collect()
    }
}

/// One peer's place on a [`Bus`]: a [`Link`] for [`crate::link::pump`]. `Send`, so it can
/// move to the thread that owns its context.
pub struct BusEndpoint {
    peer: u64,
    bus: Bus,
    inbox: Receiver<(u64, Arc<[u8]>)>,
    control: Receiver<Control>,
    stats: LinkStats,
}

impl BusEndpoint {
    pub fn peer_id(&self) -> u64 {
        self.peer
    }
}

impl Link for BusEndpoint {
    fn send(&mut self, to: Option<u64>, bytes: Vec<u8>) {
        let len = bytes.len() as u64;
        let bytes: Arc<[u8]> = bytes.into();
        let ports = self.bus.ports.read();
        for p in ports.iter().filter(|p| p.peer != self.peer && to.is_none_or(|t| t == p.peer)) {
            match p.messages.try_send((self.peer, bytes.clone())) {
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

    fn poll(&mut self) -> Option<LinkEvent> {
        if let Ok(c) = self.control.try_recv() {
            return Some(match c {
                Control::Joined(p) => LinkEvent::Joined(p),
                Control::Left(p) => LinkEvent::Left(p),
            });
        }
        let (from, bytes) = self.inbox.try_recv().ok()?;
        self.stats.received += 1;
        self.stats.bytes_received += bytes.len() as u64;
        Some(LinkEvent::Message { from, bytes })
    }

    fn stats(&self) -> LinkStats {
        self.stats
    }
}

impl Drop for BusEndpoint {
    fn drop(&mut self) {
        let mut ports = self.bus.ports.write();
        ports.retain(|p| p.peer != self.peer);
        for p in ports.iter() {
            let _ = p.control.send(Control::Left(self.peer));
        }
    }
}

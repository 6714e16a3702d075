//! Transports: the one interface a context's bytes travel through, and the loop that
//! joins a context to one.
//!
//! A [`Link`] reports who joined and who left and the messages that arrived, each with
//! the sender the transport knows (so `receive_from` can hold every message to it), and
//! sends a context's outbound messages to one member or to all. [`pump`] is one frame of
//! that: events into membership and `receive_from`, a `tick`, the outbound queue out.
//! The in-process bus (`bus`) is one link; a host with a transport of its own (Godot's
//! multiplayer peer, Steam) implements `Link`, or keeps calling `poll_outbound` and
//! `receive_from` itself. The context stays sans-IO: links live beside it.
//!
//! A [`Relay`] is a link that can also speak for peers it does not host: a
//! [`crate::bridge::Bridge`] joins two relays so the peers of each are members on the
//! other (Enu's main ⇄ worker ⇄ network, a server's rooms on threads behind one socket).

use crate::context::Context;
use crate::error::Error;
use std::sync::Arc;

/// What a transport reports.
#[derive(Clone, Debug, PartialEq)]
pub enum LinkEvent {
    /// The peer is reachable: it becomes a member.
    Joined(u64),
    /// The peer is gone: it stops being a member (its writes stay).
    Left(u64),
    /// Bytes from `from`, as the transport knows the sender, sent to every peer (`to`
    /// is `None`) or to peer `to` (this link's own peer, or one it carries as a
    /// [`Relay`]). Shared, not copied, when one broadcast reaches several receivers.
    Message { from: u64, to: Option<u64>, bytes: Arc<[u8]> },
}

/// A link's counters since it was made. Messages and bytes count each recipient: a
/// broadcast to three peers is three sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    pub sent: u64,
    pub bytes_sent: u64,
    pub received: u64,
    pub bytes_received: u64,
    /// Messages dropped because a receiver's queue was full or the transport refused
    /// them (the protocol repairs them).
    pub dropped: u64,
    /// Input refused as not ours: garbage, out-of-place control messages, a wrong
    /// version, a peer id already taken.
    pub rejected: u64,
}

/// A transport between this context and its peers. Called from the context's thread.
pub trait Link {
    /// Sends `bytes` to peer `to`, or to every peer for `None`. Never blocks: a message
    /// that cannot be queued is dropped and counted in `stats().dropped`.
    fn send(&mut self, to: Option<u64>, bytes: Vec<u8>);
    /// The next event; `None` when there is none now.
    fn poll(&mut self) -> Option<LinkEvent>;
    fn stats(&self) -> LinkStats;
}

/// A link that also speaks for peers reached through another link (see
/// [`crate::bridge::Bridge`]). A relay endpoint has no member of its own: its peers see
/// only the peers it carries, so nobody waits for acknowledgements from the relay.
/// Bridges must form a tree; carrying a peer id the session already has is refused.
pub trait Relay: Link {
    /// Makes `peer` a member for this link's peers, reached through this link.
    /// `Err(PeerIdTaken)` if the session already has it, `Err(BadPeerId)` if invalid.
    fn carry(&mut self, peer: u64) -> Result<(), Error>;
    /// Withdraws a carried peer: this link's peers see it leave. Unknown ids are ignored.
    fn uncarry(&mut self, peer: u64);
    /// Sends `bytes` as carried peer `from` to peer `to`, or to every peer for `None`.
    /// Never blocks; a message that cannot be queued, or from a peer not carried, is
    /// dropped and counted.
    fn send_as(&mut self, from: u64, to: Option<u64>, bytes: Arc<[u8]>);
}

/// What one [`pump`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pumped {
    pub joined: u32,
    pub left: u32,
    /// Messages the context accepted.
    pub received: u32,
    /// Messages or joins the context refused (see its metrics for why).
    pub rejected: u32,
    pub sent: u32,
}

/// Most events one `pump` takes, so a peer that floods the link cannot keep it from
/// ticking; the rest wait for the next pump.
const MAX_EVENTS_PER_PUMP: u32 = 1 << 16;

/// One frame of a context on a link: the link's events become `add_peer`,
/// `remove_peer` and `receive_from` (with the sender the link knows), then the context
/// ticks to `now_ms` (ms, the clock `tick` takes) and its outbound messages go out.
pub fn pump<L: Link + ?Sized>(ctx: &mut Context, link: &mut L, now_ms: u64) -> Pumped {
    let mut done = Pumped::default();
    let mut taken = 0;
    while taken < MAX_EVENTS_PER_PUMP {
        let Some(event) = link.poll() else { break };
        taken += 1;
        match event {
            LinkEvent::Joined(peer) => match ctx.add_peer(peer) {
                Ok(()) => done.joined += 1,
                Err(_) => done.rejected += 1,
            },
            LinkEvent::Left(peer) => done.left += ctx.remove_peer(peer).is_ok() as u32,
            LinkEvent::Message { from, bytes, .. } => match ctx.receive_from(from, &bytes) {
                Ok(()) => done.received += 1,
                Err(_) => done.rejected += 1,
            },
        }
    }
    ctx.tick(now_ms);
    while let Some(out) = ctx.poll_outbound() {
        link.send(out.to, out.bytes);
        done.sent += 1;
    }
    done
}

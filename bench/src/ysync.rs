//! The plain-yrs baseline of the multiplayer scenarios: one player syncing with the
//! y-sync protocol (y-websocket's), as a competent yrs user would over the game's
//! unreliable datagram network.
//!
//! - Each tick the game's writes go into one transaction per document; the updates of
//!   those transactions (`encode_update_v1`) are broadcast once, as y-sync "update"
//!   messages, with a per-sender sequence number so receivers notice a lost message.
//! - A receiver applies what arrives. A gap in a sender's sequence (or a heartbeat that
//!   shows one) makes it send that sender sync step 1 (its state vectors), at most once
//!   per round trip; the sender answers sync step 2 (`encode_diff_v1`: what is missing
//!   and the whole delete set). Until then yrs keeps the sender's later updates pending:
//!   the head-of-line blocking a lost message causes.
//! - State vectors are otherwise only exchanged when a peer connects (both sides send
//!   step 1, as y-sync does). A partition shows up as a gap when it heals.
//! - A peer that has sent nothing for `HEARTBEAT_MS` sends its sequence number, so a lost
//!   last message is noticed after writes stop.
//!
//! Everything is counted as zen-crdt's side is (`Acct`): bytes per recipient and per
//! broadcast, raw and LZ4, and the thread CPU time of each part of the work.

use crate::baseline::{lz4_len, put_varint, take_varint, CommitCost, Layout, Replica};
use crate::thread_cpu_ns;
use std::sync::Arc;
use yrs::Any;
use zen_crdt::sim::Network;

/// A peer that has sent nothing for this long sends a heartbeat (ms).
pub const HEARTBEAT_MS: u64 = 100;

/// The parts of a peer's work that the benches time separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// The game's writes (yrs: the map inserts in the tick's transaction; zen: `set`).
    Write = 0,
    /// Turning writes into messages (yrs: `encode_update_v1` and commit; zen: `tick`,
    /// which also does zen's resends and acknowledgements).
    Encode = 1,
    /// Decoding what arrived (yrs only: zen's `receive` decodes and applies in one call).
    Receive = 2,
    /// Applying it and reading the changes (yrs: `apply_update` with its observer;
    /// zen: `receive` and polling the change events).
    Apply = 3,
    /// Repairing loss and joins (yrs: sync step 1 and 2, both ends; zen: inside `tick`).
    CatchUp = 4,
}

pub const WORK: [&str; 5] = ["write", "encode", "receive", "apply", "catchup"];

/// What one side of a scenario spent: thread CPU by part of the work, and bytes sent.
#[derive(Clone, Copy, Default, Debug)]
pub struct Acct {
    pub cpu_ns: [u64; 5],
    /// Bytes counted once per recipient (a mesh: each peer uploads to each other peer).
    pub bytes_mesh: u64,
    /// Bytes counted once per message (through a relay that fans out).
    pub bytes_relay: u64,
    /// The same two, with each message LZ4-compressed when that is smaller.
    pub bytes_mesh_lz4: u64,
    pub bytes_relay_lz4: u64,
    /// Sync step 1 messages sent (each carries state vectors).
    pub state_vectors_sent: u64,
    pub messages: u64,
}

impl Acct {
    pub fn cpu_total_ns(&self) -> u64 {
        self.cpu_ns.iter().sum()
    }

    /// Counts a message of `raw` bytes (`lz4` compressed) sent to `recipients` peers.
    pub fn sent(&mut self, raw: usize, lz4: usize, recipients: usize) {
        if recipients == 0 {
            return;
        }
        self.messages += 1;
        self.bytes_relay += raw as u64;
        self.bytes_mesh += (raw * recipients) as u64;
        self.bytes_relay_lz4 += lz4 as u64;
        self.bytes_mesh_lz4 += (lz4 * recipients) as u64;
    }

    /// Runs `f`, adding its thread CPU time to `work`.
    pub fn time<R>(&mut self, work: Work, f: impl FnOnce() -> R) -> R {
        let t = thread_cpu_ns();
        let r = f();
        self.cpu_ns[work as usize] += thread_cpu_ns() - t;
        r
    }

    pub fn add(&mut self, o: &Acct) {
        for (a, b) in self.cpu_ns.iter_mut().zip(o.cpu_ns) {
            *a += b;
        }
        self.bytes_mesh += o.bytes_mesh;
        self.bytes_relay += o.bytes_relay;
        self.bytes_mesh_lz4 += o.bytes_mesh_lz4;
        self.bytes_relay_lz4 += o.bytes_relay_lz4;
        self.state_vectors_sent += o.state_vectors_sent;
        self.messages += o.messages;
    }

    pub fn minus(&self, o: &Acct) -> Acct {
        let mut d = *self;
        for (a, b) in d.cpu_ns.iter_mut().zip(o.cpu_ns) {
            *a -= b;
        }
        d.bytes_mesh -= o.bytes_mesh;
        d.bytes_relay -= o.bytes_relay;
        d.bytes_mesh_lz4 -= o.bytes_mesh_lz4;
        d.bytes_relay_lz4 -= o.bytes_relay_lz4;
        d.state_vectors_sent -= o.state_vectors_sent;
        d.messages -= o.messages;
        d
    }
}

// Message kinds: the first byte, then the sender's sequence number, then y-sync frames.
const UPDATE: u8 = 0;
const SYNC: u8 = 1;
const HEARTBEAT: u8 = 2;

/// What a peer knows of one other peer's stream of updates.
#[derive(Clone, Copy, Default)]
struct SenderState {
    /// The next sequence number expected; `None` until the first message after connecting.
    expect: Option<u64>,
    /// A gap was seen and not yet repaired by a sync step 2.
    gap: bool,
    /// When sync step 1 was last sent to repair it.
    asked_at: Option<u64>,
}

/// One player's replica and its end of the y-sync protocol.
pub struct YPeer {
    pub replica: Replica,
    me: usize,
    seq: u64,
    staged: Vec<(usize, Any)>,
    from: Vec<SenderState>,
    last_sent: u64,
    /// How long to wait for a sync step 2 before asking again (ms): one round trip.
    rtt_ms: u64,
    pub acct: Acct,
}

impl YPeer {
    /// Peer `me` of `peers`, holding the values named `keys`, connected from the start to
    /// every other peer (all start empty, so no handshake is needed); `rtt_ms` is the
    /// longest round trip of the network.
    pub fn new(layout: Layout, me: usize, peers: usize, keys: Vec<Arc<str>>, rtt_ms: u64) -> YPeer {
        YPeer {
            replica: Replica::with_keys(layout, me as u64 + 1, keys),
            me,
            seq: 0,
            staged: Vec::new(),
            from: vec![SenderState { expect: Some(1), ..SenderState::default() }; peers],
            last_sent: 0,
            rtt_ms,
            acct: Acct::default(),
        }
    }

    /// The game writes `value`; it goes out with this tick's transaction.
    pub fn write(&mut self, value: usize, v: Any) {
        self.staged.push((value, v));
    }

    fn others(&self, net: &Network) -> usize {
        (0..net.hosts()).filter(|&q| q != self.me && net.online[q]).count()
    }

    fn header(&self, kind: u8) -> Vec<u8> {
        let mut msg = vec![kind];
        put_varint(&mut msg, self.seq);
        msg
    }

    fn send(&mut self, now: u64, net: &mut Network, to: Option<usize>, msg: Vec<u8>) {
        let lz4 = lz4_len(&msg);
        self.last_sent = now;
        match to {
            None => {
                self.acct.sent(msg.len(), lz4, self.others(net));
                net.broadcast(now, self.me, &msg);
            }
            Some(q) => {
                self.acct.sent(msg.len(), lz4, 1);
                net.send(now, self.me, q, msg);
            }
        }
    }

    /// The peer's tick at `now` (ms): commits the tick's writes and broadcasts their
    /// updates, asks for a repair of each gap not asked for within a round trip, and
    /// sends a heartbeat when it has been quiet.
    pub fn tick(&mut self, now: u64, net: &mut Network) {
        if !self.staged.is_empty() {
            let mut cost = CommitCost::default();
            let frames = self.replica.commit_timed(&mut self.staged, &mut cost);
            self.acct.cpu_ns[Work::Write as usize] += cost.write_ns;
            let t = thread_cpu_ns();
            self.seq += 1;
            let mut msg = self.header(UPDATE);
            msg.extend_from_slice(&frames);
            self.send(now, net, None, msg);
            self.acct.cpu_ns[Work::Encode as usize] += cost.encode_ns + thread_cpu_ns() - t;
        }
        for q in 0..self.from.len() {
            let f = self.from[q];
            if f.gap && net.online[q] && f.asked_at.is_none_or(|t| now >= t + self.rtt_ms) {
                self.from[q].asked_at = Some(now);
                self.ask(now, net, q);
            }
        }
        if now >= self.last_sent + HEARTBEAT_MS && self.others(net) > 0 {
            let t = thread_cpu_ns();
            let msg = self.header(HEARTBEAT);
            self.send(now, net, None, msg);
            self.acct.cpu_ns[Work::CatchUp as usize] += thread_cpu_ns() - t;
        }
    }

    /// Sends peer `q` sync step 1: this peer's state vectors.
    fn ask(&mut self, now: u64, net: &mut Network, q: usize) {
        let t = thread_cpu_ns();
        let mut msg = self.header(SYNC);
        msg.extend_from_slice(&self.replica.step1());
        self.acct.state_vectors_sent += 1;
        self.send(now, net, Some(q), msg);
        self.acct.cpu_ns[Work::CatchUp as usize] += thread_cpu_ns() - t;
    }

    /// Peer `q` connected (joined, or came back): both sides send sync step 1, as y-sync
    /// does on a new connection; its sequence restarts from what it says next.
    pub fn connect(&mut self, now: u64, net: &mut Network, q: usize) {
        // Marked as a gap so that the step 1 is sent again if no step 2 comes back.
        self.from[q] = SenderState { expect: None, gap: true, asked_at: Some(now) };
        self.ask(now, net, q);
    }

    /// Handles a message from peer `q` that arrived at `now`. A malformed one is dropped.
    pub fn receive(&mut self, now: u64, net: &mut Network, q: usize, bytes: &[u8]) {
        let t0 = thread_cpu_ns();
        let Some((&kind, mut rest)) = bytes.split_first() else { return };
        let Some(seq) = take_varint(&mut rest) else { return };
        match kind {
            UPDATE => {
                let msgs = self.replica.decode(rest);
                let t1 = thread_cpu_ns();
                self.acct.cpu_ns[Work::Receive as usize] += t1 - t0;
                if let Some(msgs) = msgs {
                    self.replica.apply_decoded(msgs);
                }
                self.acct.cpu_ns[Work::Apply as usize] += thread_cpu_ns() - t1;
                self.saw_update(q, seq);
            }
            HEARTBEAT => self.saw_heartbeat(q, seq),
            SYNC => {
                let Some(msgs) = self.replica.decode(rest) else { return };
                let asked = self.replica.apply_decoded(msgs);
                if asked.is_empty() {
                    // A step 2 (possibly empty: nothing was missing) ends the repair, and
                    // brings this peer up to the sender's sequence number.
                    let f = &mut self.from[q];
                    f.gap = false;
                    f.asked_at = None;
                    f.expect = Some(f.expect.unwrap_or(0).max(seq + 1));
                }
                if !asked.is_empty() {
                    let mut msg = self.header(SYNC);
                    msg.extend_from_slice(&self.replica.step2(&asked));
                    self.send(now, net, Some(q), msg);
                }
                self.acct.cpu_ns[Work::CatchUp as usize] += thread_cpu_ns() - t0;
            }
            _ => {}
        }
    }

    /// Peer `q`'s update `seq` arrived: if it is past the one expected, those between
    /// are missing (they may yet arrive late; the repair is asked for anyway).
    fn saw_update(&mut self, q: usize, seq: u64) {
        let f = &mut self.from[q];
        match f.expect {
            Some(e) if seq < e => {} // late or duplicated: applied anyway, yrs ignores what it has
            Some(e) if seq > e => {
                f.gap = true;
                f.expect = Some(seq + 1);
            }
            _ => f.expect = Some(seq + 1),
        }
    }

    /// Peer `q` says `last` is the last update it sent: any not yet seen is missing.
    fn saw_heartbeat(&mut self, q: usize, last: u64) {
        let f = &mut self.from[q];
        match f.expect {
            Some(e) if last >= e => {
                f.gap = true;
                f.expect = Some(last + 1);
            }
            Some(_) => {}
            None => f.expect = Some(last + 1),
        }
    }
}

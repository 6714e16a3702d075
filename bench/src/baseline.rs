//! Shared by the core and soak benches: timing and memory helpers, and the plain-yrs
//! baseline they compare against, written the way a competent yrs user syncs (the
//! y-sync / y-websocket protocol): writes are staged, one transaction per tick applies
//! them, that transaction's incremental update (`encode_update_v1`) is broadcast once
//! as a y-sync "update" message, and the receiver applies it in one transaction and
//! reads what changed. With no loss (these benches) no state vector is ever exchanged.
//!
//! Two layouts: `OneMap` (one Doc, one Map, a key per value: the obvious one, whose
//! memory grows ~400 B per overwrite, design.md) and `DocPerValue` (one Doc per value,
//! one key: the careful one, flat, ~2 KB per live Doc). A message carries every changed
//! Doc's update, each framed as y-websocket frames it (message type, sync type, length;
//! per Doc its index, as a multiplexing provider adds).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use yrs::sync::{Message, SyncMessage};
use yrs::types::EntryChange;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Any, Doc, Map, MapRef, Observable, Out, ReadTxn, StateVector, Transact, Update};

pub use crate::alloc_count::Counting;
pub use crate::arg;
use zen_crdt::{Context, Options};

/// Live heap bytes of the whole process.
pub fn heap() -> i64 {
    crate::alloc_count::live_bytes()
}

/// Two contexts (peer ids 1 and 2) that are members of each other, default options.
pub fn pair() -> (Context, Context) {
    let mut a = Context::new(1, Options::default()).expect("valid");
    let mut b = Context::new(2, Options::default()).expect("valid");
    a.add_peer(2).expect("valid");
    b.add_peer(1).expect("valid");
    (a, b)
}

pub fn mb(bytes: i64) -> String {
    format!("{:.2} MB", bytes as f64 / 1e6)
}

pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// The size of a zen-crdt message before its LZ4 compression (the same if it was not
/// compressed): the protocol marks a compressed body and gives its length (src/protocol.rs).
pub fn zen_raw_len(msg: &[u8]) -> usize {
    if msg.len() < 5 || msg[3] & 0x80 == 0 {
        return msg.len();
    }
    let (mut len, mut shift) = (0usize, 0);
    for &b in &msg[4..] {
        len |= ((b & 0x7f) as usize) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            break;
        }
    }
    4 + len + 4 // header, body, checksum
}

/// What a message costs on the wire: as sent, and compressed with LZ4 (block format,
/// as zen-crdt compresses) when that is smaller.
pub fn lz4_len(msg: &[u8]) -> usize {
    lz4_flex::block::compress(msg).len().min(msg.len())
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a varint off the front of `msg`; `None` when it runs out (a truncated message).
pub(crate) fn take_varint(msg: &mut &[u8]) -> Option<u64> {
    let (mut v, mut shift) = (0u64, 0);
    loop {
        let (&b, rest) = msg.split_first()?;
        *msg = rest;
        v |= ((b & 0x7f) as u64) << shift;
        shift += 7;
        if b & 0x80 == 0 || shift > 63 {
            return Some(v);
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// One Doc, one Map, one key per value.
    OneMap,
    /// One Doc per value, holding one key.
    DocPerValue,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::OneMap => "y-sync, one Doc one Map",
            Layout::DocPerValue => "y-sync, one Doc per value",
        }
    }
}

/// What the game's writes cost one replica, split as the benches report it: the
/// transactions' map inserts (`write_ns`), and encoding each transaction's update and
/// committing it (`encode_ns`), in thread CPU time.
#[derive(Clone, Copy, Default, Debug)]
pub struct CommitCost {
    pub write_ns: u64,
    pub encode_ns: u64,
}

/// One peer's documents: one (`OneMap`) or one per value, each observed as a game
/// observes them: the observer reads every changed value when a transaction commits
/// (yrs's change notification; it counts them in `changes`).
pub struct Replica {
    layout: Layout,
    docs: Vec<(Doc, MapRef)>,
    keys: Vec<Arc<str>>,
    pub changes: Arc<AtomicUsize>,
}

impl Replica {
    /// `values` values named `unit/{i}/pos` (the core and soak benches).
    pub fn new(layout: Layout, client: u64, values: usize) -> Replica {
        Replica::with_keys(layout, client, (0..values).map(|i| Arc::from(format!("unit/{i}/pos"))).collect())
    }

    /// One value per key of `keys` (its index is the value's index); in `DocPerValue`
    /// each Doc holds its value under one short key, as a careful layout would.
    pub fn with_keys(layout: Layout, client: u64, keys: Vec<Arc<str>>) -> Replica {
        let n = if layout == Layout::OneMap { 1 } else { keys.len() };
        let changes = Arc::new(AtomicUsize::new(0));
        let docs = (0..n)
            .map(|_| {
                let d = Doc::with_client_id(client);
                let m = d.get_or_insert_map("m");
                let seen = changes.clone();
                m.observe("game", move |txn, e| {
                    for change in e.keys(txn).values() {
                        if let EntryChange::Inserted(Out::Any(a)) | EntryChange::Updated(_, Out::Any(a)) =
                            change
                        {
                            seen.fetch_add(!matches!(a, Any::Null) as usize, Ordering::Relaxed);
                        }
                    }
                });
                (d, m)
            })
            .collect();
        let keys = match layout {
            Layout::OneMap => keys,
            Layout::DocPerValue => vec![Arc::from("v")],
        };
        Replica { layout, docs, keys, changes }
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    fn at(&self, value: usize) -> (usize, &Arc<str>) {
        match self.layout {
            Layout::OneMap => (0, &self.keys[value]),
            Layout::DocPerValue => (value, &self.keys[0]),
        }
    }

    /// Frames one y-sync message for document `doc`: its index first when there are
    /// many (as a multiplexing provider names the document), then the y-sync encoding.
    fn frame(&self, out: &mut Vec<u8>, doc: usize, msg: Message) {
        if self.layout == Layout::DocPerValue {
            put_varint(out, doc as u64);
        }
        out.extend_from_slice(&msg.encode_v1());
    }

    /// Applies `writes` (value index, value) in one transaction per document and returns
    /// the y-sync "update" messages carrying each transaction's incremental update.
    pub fn commit(&self, writes: &mut Vec<(usize, Any)>) -> Vec<u8> {
        self.commit_timed(writes, &mut CommitCost::default())
    }

    /// `commit`, adding what it cost to `cost`: first every transaction's inserts, then
    /// every update's encoding and commit, so that two clock reads split the whole tick.
    pub fn commit_timed(&self, writes: &mut Vec<(usize, Any)>, cost: &mut CommitCost) -> Vec<u8> {
        let t0 = crate::thread_cpu_ns();
        writes.sort_by_key(|(v, _)| self.at(*v).0);
        let mut txns = Vec::with_capacity(if self.layout == Layout::OneMap { 1 } else { writes.len() });
        let mut k = 0;
        while k < writes.len() {
            let doc = self.at(writes[k].0).0;
            let (d, m) = &self.docs[doc];
            let mut txn = d.transact_mut();
            while k < writes.len() && self.at(writes[k].0).0 == doc {
                let (v, value) = std::mem::replace(&mut writes[k], (0, Any::Null));
                m.insert(&mut txn, self.at(v).1.clone(), value);
                k += 1;
            }
            txns.push((doc, txn));
        }
        let t1 = crate::thread_cpu_ns();
        let mut msg = Vec::with_capacity(64 * writes.len());
        for (doc, txn) in txns {
            let update = txn.encode_update_v1();
            drop(txn);
            self.frame(&mut msg, doc, Message::Sync(SyncMessage::Update(update)));
        }
        writes.clear();
        let t2 = crate::thread_cpu_ns();
        cost.write_ns += t1 - t0;
        cost.encode_ns += t2 - t1;
        msg
    }

    /// Reads the y-sync messages of `msg` (as `commit`, `step1` and `step2` frame them),
    /// with the document each is for; `None` if any is malformed.
    pub fn decode(&self, mut msg: &[u8]) -> Option<Vec<(usize, SyncMessage)>> {
        let mut out = Vec::new();
        while !msg.is_empty() {
            let doc = match self.layout {
                Layout::DocPerValue => take_varint(&mut msg)? as usize,
                Layout::OneMap => 0,
            };
            if doc >= self.docs.len() {
                return None;
            }
            // y-sync framing: message type (0 = sync), sync type, length-prefixed body.
            let (kind, sync) = (take_varint(&mut msg)?, take_varint(&mut msg)?);
            let len = take_varint(&mut msg)? as usize;
            if kind != 0 || len > msg.len() {
                return None;
            }
            let (body, rest) = msg.split_at(len);
            msg = rest;
            out.push((
                doc,
                match sync {
                    0 => SyncMessage::SyncStep1(StateVector::decode_v1(body).ok()?),
                    1 => SyncMessage::SyncStep2(body.to_vec()),
                    2 => SyncMessage::Update(body.to_vec()),
                    _ => return None,
                },
            ));
        }
        Some(out)
    }

    /// Applies the updates among `msgs` (update and sync step 2), one transaction per
    /// document (the observers read what changed as each commits), and returns the
    /// state vectors of the sync step 1 messages among them, to answer with `step2`.
    pub fn apply_decoded(&self, msgs: Vec<(usize, SyncMessage)>) -> Vec<(usize, StateVector)> {
        let mut asked = Vec::new();
        for (doc, m) in msgs {
            match m {
                SyncMessage::Update(u) | SyncMessage::SyncStep2(u) => {
                    if let Ok(update) = Update::decode_v1(&u) {
                        // A peer's update that cannot apply is skipped, as a provider would.
                        let _ = self.docs[doc].0.transact_mut().apply_update(update);
                    }
                }
                SyncMessage::SyncStep1(sv) => asked.push((doc, sv)),
            }
        }
        asked
    }

    /// Decodes and applies a message from `commit`.
    pub fn apply(&self, msg: &[u8]) {
        let msgs = self.decode(msg).expect("our own message");
        self.apply_decoded(msgs);
    }

    /// Sync step 1: the state vector of every document.
    pub fn step1(&self) -> Vec<u8> {
        let mut msg = Vec::new();
        for (doc, (d, _)) in self.docs.iter().enumerate() {
            let sv = d.transact().state_vector();
            self.frame(&mut msg, doc, Message::Sync(SyncMessage::SyncStep1(sv)));
        }
        msg
    }

    /// Sync step 2: for each state vector a peer sent, what this replica has that the
    /// peer lacks (`encode_diff_v1`: the missing items and the whole delete set).
    /// Documents with nothing new for the peer are left out.
    pub fn step2(&self, asked: &[(usize, StateVector)]) -> Vec<u8> {
        let mut msg = Vec::new();
        for (doc, sv) in asked {
            let txn = self.docs[*doc].0.transact();
            let ahead = txn.state_vector().iter().any(|(client, &clock)| clock > sv.get(client));
            if ahead {
                let diff = txn.encode_diff_v1(sv);
                drop(txn);
                self.frame(&mut msg, *doc, Message::Sync(SyncMessage::SyncStep2(diff)));
            }
        }
        msg
    }

    /// The value `value` as this replica reads it.
    pub fn read_any(&self, value: usize) -> Option<Any> {
        let (doc, key) = self.at(value);
        let (d, m) = &self.docs[doc];
        match m.get(&d.transact(), key.as_ref()) {
            Some(Out::Any(a)) => Some(a),
            _ => None,
        }
    }

    /// Bytes written to value `value` as this replica reads them.
    pub fn read(&self, value: usize) -> Option<Vec<u8>> {
        match self.read_any(value) {
            Some(Any::Buffer(b)) => Some(b.to_vec()),
            _ => None,
        }
    }
}

/// A vec3 as the baselines store it: 12 bytes, little-endian x, y, z.
pub fn vec3_any(v: [f32; 3]) -> Any {
    let b: Vec<u8> = v.iter().flat_map(|c| c.to_le_bytes()).collect();
    Any::Buffer(b.into())
}

/// Two peers: A writes, B receives, in one layout.
pub struct YSync {
    pub a: Replica,
    pub b: Replica,
    staged: Vec<(usize, Any)>,
}

impl YSync {
    pub fn new(layout: Layout, values: usize) -> YSync {
        YSync { a: Replica::new(layout, 1, values), b: Replica::new(layout, 2, values), staged: Vec::new() }
    }

    /// The staging write a game does between ticks (zen-crdt's `set` does the same job).
    pub fn stage(&mut self, value: usize, v: [f32; 3]) {
        self.staged.push((value, vec3_any(v)));
    }

    /// One tick: A commits what was staged, the message goes to B, B applies and reads.
    /// Returns the message.
    pub fn tick(&mut self) -> Vec<u8> {
        let msg = self.a.commit(&mut self.staged);
        self.b.apply(&msg);
        msg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The baseline delivers: B reads every value A wrote, its observers see each
    /// change once, and a tick's message carries each written value once.
    #[test]
    fn ysync_delivers_every_write_in_both_layouts() {
        for layout in [Layout::OneMap, Layout::DocPerValue] {
            let mut y = YSync::new(layout, 50);
            for t in 0..20 {
                for i in (t % 2..50).step_by(2) {
                    y.stage(i, [i as f32, t as f32, 0.0]);
                }
                let msg = y.tick();
                assert!(!msg.is_empty());
            }
            for i in 0..50 {
                assert_eq!(y.b.read(i), y.a.read(i), "{layout:?} value {i}");
                assert!(y.b.read(i).is_some());
            }
            assert_eq!(y.b.changes.load(Ordering::Relaxed), 20 * 25, "{layout:?}");
        }
    }

    #[test]
    fn zen_raw_len_reads_the_compressed_length() {
        let mut msg = vec![b'Z', b'C', 1, 0x81, 0xE8, 0x07];
        msg.extend_from_slice(&[0; 20]);
        assert_eq!(zen_raw_len(&msg), 4 + 1000 + 4);
        msg[3] = 1;
        assert_eq!(zen_raw_len(&msg), msg.len());
    }
}

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
use yrs::types::EntryChange;
use yrs::updates::decoder::Decode;
use yrs::{Any, Doc, Map, MapRef, Observable, Out, Transact, Update};

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

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
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
    pub fn new(layout: Layout, client: u64, values: usize) -> Replica {
        let n = if layout == Layout::OneMap { 1 } else { values };
        let changes = Arc::new(AtomicUsize::new(0));
        let docs = (0..n)
            .map(|_| {
                let d = Doc::with_client_id(client);
                let m = d.get_or_insert_map("m");
                let seen = changes.clone();
                m.observe("game", move |txn, e| {
                    for change in e.keys(txn).values() {
                        if let EntryChange::Inserted(Out::Any(Any::Buffer(b)))
                        | EntryChange::Updated(_, Out::Any(Any::Buffer(b))) = change
                        {
                            seen.fetch_add(b.len().min(1), Ordering::Relaxed);
                        }
                    }
                });
                (d, m)
            })
            .collect();
        let keys = match layout {
            Layout::OneMap => (0..values).map(|i| Arc::from(format!("unit/{i}/pos"))).collect(),
            Layout::DocPerValue => vec![Arc::from("p")],
        };
        Replica { layout, docs, keys, changes }
    }

    fn at(&self, value: usize) -> (usize, &Arc<str>) {
        match self.layout {
            Layout::OneMap => (0, &self.keys[value]),
            Layout::DocPerValue => (value, &self.keys[0]),
        }
    }

    /// Applies `writes` (value index, bytes) in one transaction per document and returns
    /// the y-sync message carrying each transaction's incremental update.
    pub fn commit(&self, writes: &mut Vec<(usize, Vec<u8>)>) -> Vec<u8> {
        let mut msg = Vec::with_capacity(64 * writes.len());
        writes.sort_by_key(|(v, _)| self.at(*v).0);
        let mut k = 0;
        while k < writes.len() {
            let doc = self.at(writes[k].0).0;
            let (d, m) = &self.docs[doc];
            let mut txn = d.transact_mut();
            while k < writes.len() && self.at(writes[k].0).0 == doc {
                let (v, bytes) = std::mem::take(&mut writes[k]);
                m.insert(&mut txn, self.at(v).1.clone(), Any::Buffer(bytes.into()));
                k += 1;
            }
            let update = txn.encode_update_v1();
            drop(txn);
            if self.layout == Layout::DocPerValue {
                put_varint(&mut msg, doc as u64);
            }
            msg.push(0); // y-websocket messageSync
            msg.push(2); // sync step: update
            put_varint(&mut msg, update.len() as u64);
            msg.extend_from_slice(&update);
        }
        writes.clear();
        msg
    }

    /// Applies a message from `commit`, one transaction per document (the observers read
    /// what changed when each commits).
    pub fn apply(&self, mut msg: &[u8]) {
        while !msg.is_empty() {
            let doc = match self.layout {
                Layout::DocPerValue => take_varint(&mut msg) as usize,
                Layout::OneMap => 0,
            };
            msg = &msg[2..]; // message type, sync step
            let len = take_varint(&mut msg) as usize;
            let (update, rest) = msg.split_at(len);
            msg = rest;
            let update = Update::decode_v1(update).expect("our own update");
            self.docs[doc].0.transact_mut().apply_update(update).expect("applies");
        }
    }

    /// Bytes written to value `value` as this replica reads them.
    pub fn read(&self, value: usize) -> Option<Vec<u8>> {
        let (doc, key) = self.at(value);
        let (d, m) = &self.docs[doc];
        match m.get(&d.transact(), key.as_ref()) {
            Some(Out::Any(Any::Buffer(b))) => Some(b.to_vec()),
            _ => None,
        }
    }
}

fn take_varint(msg: &mut &[u8]) -> u64 {
    let (mut v, mut shift) = (0u64, 0);
    loop {
        let b = msg[0];
        *msg = &msg[1..];
        v |= ((b & 0x7f) as u64) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            return v;
        }
    }
}

/// Two peers: A writes, B receives, in one layout.
pub struct YSync {
    pub a: Replica,
    pub b: Replica,
    staged: Vec<(usize, Vec<u8>)>,
}

impl YSync {
    pub fn new(layout: Layout, values: usize) -> YSync {
        YSync { a: Replica::new(layout, 1, values), b: Replica::new(layout, 2, values), staged: Vec::new() }
    }

    /// The staging write a game does between ticks (zen-crdt's `set` does the same job).
    pub fn stage(&mut self, value: usize, v: [f32; 3]) {
        self.staged.push((value, v.iter().flat_map(|c| c.to_le_bytes()).collect()));
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

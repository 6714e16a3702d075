//! Where a value's replicated state lives: one small yrs document per value.
//!
//! # Layout, and why
//! design.md measured that the obvious layout (one Doc, one Map, one key per value)
//! leaks about 400 bytes per overwrite forever: yrs only squashes overwritten map items
//! that are adjacent in one client's clock space and share a key, and a client writing
//! many keys of one Doc interleaves them. So every value gets its own Doc with one root
//! map `"v"` holding:
//! - `"m"`: the value's type and policy, written once by the creator;
//! - one key per writer (its peer id in decimal) holding that writer's latest slot
//!   record (see `register`).
//!
//! A peer only ever writes its own key, so its overwrites are consecutive in its own
//! clock space and yrs squashes them into one range: memory stays flat for a single
//! writer *and* for several peers writing the same value (each writer's run merges on
//! its own). Resolution between writers happens above yrs, by policy.
//!
//! A live yrs Doc costs about 1-2 KB even when tiny, too much for 10,000 idle values, so
//! a value idle for a while is *hibernated*: its Doc is encoded as a yrs v1 update (tens
//! of bytes) and dropped; the next write or incoming update revives it. Hibernation is
//! lossless: the encoded state is the full document.
//!
//! Integrating a remote update costs about 2 us in yrs (a transaction, its commit and
//! garbage collection), and a remote position is overwritten 60 times a second. So
//! remote updates are *deferred*: queued here, undecided, until something needs the
//! document itself (a full read, a local write, an encode for a catch-up, hibernation),
//! and then integrated in one transaction. Meanwhile the receiver shows the newest slot
//! record the update holds, which `update_scan` finds without decoding it; once
//! integrated, a shown record the document does not hold marks the value stale and it is
//! re-read. A writer's whole contribution (it starts at clock 0) replaces everything
//! queued from that writer that it covers, so a value a peer keeps writing holds at most
//! one queued update per remote writer, and a hot value costs one integration when it
//! goes quiet instead of one per write.
//!
//! Owns the yrs documents only; it never decides what a write means.

use crate::error::Error;
use crate::protocol::{decode_update, Payload};
use crate::update_scan::Span;
use std::sync::Arc;
use yrs::updates::decoder::Decode;
use yrs::{Any, ClientID, Doc, Map, MapRef, Options, Out, ReadTxn, StateVector, Transact, Update};

use crate::update_scan::{META_KEY, ROOT};

struct Live {
    doc: Doc,
    map: MapRef,
}

enum State {
    Live(Box<Live>),
    /// Full document state as a yrs v1 update.
    Cold(Box<[u8]>),
}

/// A remote update not yet integrated: its bytes and what `update_scan` found in them
/// (the writer, its clock range, and the slot record the receiver showed).
struct Deferred {
    bytes: Vec<u8>,
    span: Span,
}

impl Deferred {
    fn shown(&self) -> &[u8] {
        self.span.last_buffer.map_or(&[], |(at, len)| &self.bytes[at..at + len])
    }
}

/// Integrate anyway once this many updates wait (bare increments, which no later update
/// supersedes; our writers send whole contributions, but the format allows both).
const MAX_DEFERRED: usize = 16;

/// One value's yrs document, live or hibernated, and the remote updates waiting for it.
pub(crate) struct ValueDoc {
    state: State,
    deferred: Vec<Deferred>,
    /// A deferred update, once integrated, held another slot record than the one shown:
    /// the value must be re-read from the document (`take_stale`).
    stale: bool,
}

/// A slot as stored: writer, its yrs clock in this document, the record bytes.
pub(crate) type RawSlot = (u64, u32, Vec<u8>);

fn new_doc(peer: u64) -> Live {
    let mut opts = Options::with_client_id(ClientID::new(peer));
    opts.skip_gc = false;
    let doc = Doc::with_options(opts);
    let map = doc.get_or_insert_map(ROOT);
    Live { doc, map }
}

impl ValueDoc {
    /// An empty, live document written as `peer`.
    pub fn new(peer: u64) -> ValueDoc {
        ValueDoc { state: State::Live(Box::new(new_doc(peer))), deferred: Vec::new(), stale: false }
    }

    pub fn is_live(&self) -> bool {
        matches!(self.state, State::Live(_))
    }

    /// The live document with every deferred update integrated.
    fn live(&mut self, peer: u64) -> &Live {
        self.revive(peer);
        if !self.deferred.is_empty() {
            let State::Live(live) = &self.state else { unreachable!("revived above") };
            let mut txn = live.doc.transact_mut();
            for d in &self.deferred {
                // Each was scanned when its message arrived; yrs refusing one now would
                // leave that writer's slot behind until its next whole contribution,
                // which is also what a lost message costs (and the check below sees it).
                if let Ok(u) = decode_update(&d.bytes) {
                    let _ = txn.apply_update(u);
                }
            }
            // The document is the truth: a record shown ahead of it that it does not hold
            // (the newest item was not the writer's slot after all, or yrs refused the
            // update) is replaced by what it holds. Only each writer's last update counts.
            for (k, d) in self.deferred.iter().enumerate() {
                if self.deferred[k + 1..].iter().any(|later| later.span.client == d.span.client) {
                    continue;
                }
                let held = match live.map.get(&txn, slot_key(d.span.client).as_str()) {
                    Some(Out::Any(Any::Buffer(buf))) => *buf == *d.shown(),
                    _ => false,
                };
                self.stale |= !held;
            }
            drop(txn);
            self.deferred.clear();
        }
        match &self.state {
            State::Live(l) => l,
            State::Cold(_) => unreachable!("revived above"),
        }
    }

    fn revive(&mut self, peer: u64) {
        if let State::Cold(bytes) = &self.state {
            let live = new_doc(peer);
            {
                let mut txn = live.doc.transact_mut();
                // The bytes were produced by our own encoder from a document that held
                // no pending updates; failing to decode them would be a bug, and the
                // empty document left behind is then refilled by anti-entropy.
                if let Ok(u) = Update::decode_v1(bytes) {
                    let _ = txn.apply_update(u);
                }
            }
            self.state = State::Live(Box::new(live));
        }
    }

    /// Writes this peer's slot record (and the meta record when `meta` is given) in one
    /// transaction and returns this peer's entire contribution to the document as the
    /// update to send: its squashed history (a few bytes once garbage-collected) and its
    /// latest write. That applies on any peer whatever it missed, so deltas need no
    /// ordering and a receiver can drop a queued one the moment a newer one arrives (see
    /// the module comment). The transaction's bare increment would be about a byte
    /// smaller but applies only on top of the previous write, and receivers would have to
    /// integrate every one of them.
    /// `key` is `slot_key(peer)`, passed in so the hot path does not format it.
    pub fn write(&mut self, peer: u64, key: &Arc<str>, meta: Option<&[u8]>, record: &[u8]) -> Vec<u8> {
        let live = self.live(peer);
        {
            let mut txn = live.doc.transact_mut();
            if let Some(meta) = meta {
                live.map.insert(&mut txn, META_KEY, Any::Buffer(meta.into()));
            }
            live.map.insert(&mut txn, key.clone(), Any::Buffer(record.into()));
        }
        own_state(live, peer)
    }

    /// Writes only the meta record (a value created without an initial write); returns
    /// this peer's whole contribution as `write` does.
    pub fn write_meta(&mut self, peer: u64, meta: &[u8]) -> Vec<u8> {
        let live = self.live(peer);
        {
            let mut txn = live.doc.transact_mut();
            live.map.insert(&mut txn, META_KEY, Any::Buffer(meta.into()));
        }
        own_state(live, peer)
    }

    /// Queues a remote update that `update_scan` found to be `span` (see the module
    /// comment; `span.start == 0` is its writer's whole contribution, which replaces
    /// what it covers); it is integrated the next time the document is needed.
    pub fn defer(&mut self, peer: u64, bytes: Vec<u8>, span: Span) {
        if span.start == 0 {
            self.deferred.retain(|d| d.span.client != span.client || d.span.end > span.end);
        }
        self.deferred.push(Deferred { bytes, span });
        if self.deferred.len() >= MAX_DEFERRED {
            self.live(peer);
        }
    }

    /// Whether an integration found a shown slot record the document does not hold
    /// (then the caller re-reads every slot); clears the flag.
    pub fn take_stale(&mut self) -> bool {
        std::mem::take(&mut self.stale)
    }

    /// Integrates a remote update now (with any deferred before it).
    pub fn apply(&mut self, peer: u64, update: Payload) -> Result<(), Error> {
        let update = update.into_update()?;
        let live = self.live(peer);
        let mut txn = live.doc.transact_mut();
        txn.apply_update(update).map_err(|e| Error::decode(format!("yrs rejected an update: {e}")))
    }

    /// The slot record under `key` (a writer's `slot_key`), if that writer ever wrote.
    pub fn read_slot(&mut self, peer: u64, key: &str) -> Option<Arc<[u8]>> {
        self.read_key(peer, key)
    }

    fn read_key(&mut self, peer: u64, key: &str) -> Option<Arc<[u8]>> {
        let live = self.live(peer);
        let txn = live.doc.transact();
        match live.map.get(&txn, key)? {
            Out::Any(Any::Buffer(buf)) => Some(buf),
            _ => None,
        }
    }

    /// Reads the meta record and every slot, slots sorted by writer id.
    pub fn read(&mut self, peer: u64) -> (Option<Vec<u8>>, Vec<RawSlot>) {
        let live = self.live(peer);
        let txn = live.doc.transact();
        let sv = txn.state_vector();
        let mut meta = None;
        let mut slots = Vec::new();
        for (key, out) in live.map.iter(&txn) {
            let Out::Any(Any::Buffer(buf)) = out else { continue };
            if key == META_KEY {
                meta = Some(buf.to_vec());
            } else if let Some(writer) = slot_writer(key) {
                slots.push((writer, sv.get(&ClientID::new(writer)), buf.to_vec()));
            }
        }
        slots.sort_unstable_by_key(|s| s.0);
        (meta, slots)
    }

    /// The whole document as one yrs v1 update (what a late joiner needs).
    pub fn encode_full(&mut self, peer: u64) -> Vec<u8> {
        if !self.deferred.is_empty() {
            self.live(peer);
        }
        match &self.state {
            State::Live(l) => l.doc.transact().encode_state_as_update_v1(&StateVector::default()),
            State::Cold(bytes) => bytes.to_vec(),
        }
    }

    /// Drops the live document, keeping its encoded state. Refused (returns false) while
    /// yrs holds updates whose dependencies have not arrived, since encoding would lose them.
    pub fn hibernate(&mut self, peer: u64) -> bool {
        if !self.deferred.is_empty() {
            self.live(peer);
        }
        let State::Live(live) = &self.state else { return true };
        let bytes = {
            let txn = live.doc.transact();
            if txn.has_missing_updates() {
                return false;
            }
            txn.encode_state_as_update_v1(&StateVector::default())
        };
        self.state = State::Cold(bytes.into_boxed_slice());
        true
    }
}

/// Everything `peer` inserted into the document (after garbage collection) and its own
/// deletions, as an update: a delta may touch nothing else (see `update_scan`).
fn own_state(live: &Live, peer: u64) -> Vec<u8> {
    let txn = live.doc.transact();
    let mut others = StateVector::default();
    for (client, clock) in txn.state_vector().iter() {
        if client.get() != peer {
            others.set_max(*client, *clock);
        }
    }
    let mut update = txn.encode_diff_v1(&others);
    // Only a document other writers wrote to can hold their deletions.
    if !others.is_empty() {
        crate::update_scan::keep_own_deletes(&mut update, peer);
    }
    update
}

/// The map key of `writer`'s slot: its peer id in decimal.
pub(crate) fn slot_key(writer: u64) -> String {
    writer.to_string()
}

/// The writer whose slot key `key` is: canonical decimal only (no sign, no leading
/// zero), so no two keys name one writer. Allocates nothing (the delta scan calls it for
/// every entry).
pub(crate) fn slot_writer(key: &str) -> Option<u64> {
    let b = key.as_bytes();
    if b.is_empty() || b.len() > 16 || b[0] == b'0' || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let writer = b.iter().fold(0u64, |n, d| n * 10 + (d - b'0') as u64);
    (writer < 1 << 53).then_some(writer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_apply_read_and_hibernate_roundtrip() {
        let mut a = ValueDoc::new(1);
        let mut b = ValueDoc::new(2);
        let (k1, k2): (Arc<str>, Arc<str>) = ("1".into(), "2".into());
        let u1 = a.write(1, &k1, Some(&[7, 0]), &[7, 1, 2, 3]);
        b.apply(2, Payload::Decoded(Update::decode_v1(&u1).unwrap())).unwrap();
        let u2 = b.write(2, &k2, None, &[9]);
        assert_eq!(a.read_slot(1, "2"), None);
        a.apply(1, Payload::Decoded(Update::decode_v1(&u2).unwrap())).unwrap();
        assert!(a.hibernate(1));
        assert!(!a.is_live());
        let (meta, slots) = a.read(1);
        assert!(a.is_live());
        assert_eq!(meta, Some(vec![7, 0]));
        assert_eq!(slots, vec![(1, 2, vec![7, 1, 2, 3]), (2, 1, vec![9])]);
        assert_eq!(b.read(2), a.read(1));
        assert_eq!(a.read_slot(1, "2").as_deref(), Some(&[9u8][..]));
    }

    #[test]
    fn only_canonical_decimal_keys_are_slots() {
        for w in [1u64, 9, 10, 4096, (1 << 53) - 1] {
            assert_eq!(slot_writer(&slot_key(w)), Some(w));
        }
        for bad in ["", "0", "05", "+5", "-5", " 5", "5 ", "m", "9007199254740992", "12345678901234567"] {
            assert_eq!(slot_writer(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn single_writer_overwrites_keep_state_flat() {
        let mut a = ValueDoc::new(1);
        let k: Arc<str> = "1".into();
        a.write(1, &k, Some(&[7, 0]), &[0; 13]);
        let mut sizes = Vec::new();
        for i in 0..20_000u32 {
            let mut rec = vec![0u8; 13];
            rec[..4].copy_from_slice(&i.to_le_bytes());
            a.write(1, &k, None, &rec);
            if i == 999 || i == 19_999 {
                sizes.push(a.encode_full(1).len());
            }
        }
        // Only the clock's varint width may grow (2 -> 3 bytes past 16,383 writes).
        assert!(sizes[1] <= sizes[0] + 4, "{sizes:?}");
    }
}

//! A strict, allocation-free check of the yrs v1 updates a delta carries: well formed,
//! and touching nothing but its sender's own writes.
//!
//! A delta entry is its writer's whole contribution to one value (see `storage`): map
//! items of one client, each either the first item of a key (parent: the root map
//! `"v"`, key: the writer's own slot key or the meta key `"m"`) or an overwrite that
//! follows one of the writer's own items; GC ranges of its squashed history; a delete
//! set of its own items. `scan_delta` accepts exactly that shape, canonical varints,
//! nothing left over, and reports why anything else is refused: a shape our writers
//! never produce, or a forgery (items of another client, an item placed after another
//! writer's item or under another writer's key, deletions of another writer's items).
//! So a member can change only its own slot of a value, whatever bytes it sends.
//!
//! It also owns the document layout both sides agree on: the root map, the meta key and
//! the slot keys (`slot_key`, `slot_writer`), which `storage` writes by.
//!
//! Decoding a yrs update builds a heap object per block, and dropping it frees them
//! again: for an arena peer that was half its CPU, spent on updates that a newer one
//! supersedes before they are ever integrated (see `storage`). So an accepted update is
//! kept as bytes and decoded by yrs only when integrated; whatever the scan accepts, yrs
//! decodes to the same span (property-tested below).
//! The scan also finds the buffer of the update's newest item: the slot record the
//! receiver shows until the update is integrated.

use crate::codec;

/// Which clock range of which client an update inserts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub client: u64,
    pub start: u32,
    pub end: u32,
    /// Byte range of the buffer held by the update's last item (the one with the
    /// highest clock), when that item holds exactly one buffer. In a writer's delta
    /// that is its newest slot record (see `storage`).
    pub last_buffer: Option<(usize, usize)>,
}

/// Why a delta's update was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Malformed, or a shape zen-crdt writers never produce.
    Shape(&'static str),
    /// It would change state its sender does not own.
    Forged(String),
}

/// The codec's reader, failing with the scan's one refusal for malformed bytes.
#[derive(Clone)]
struct Cursor<'a>(codec::Reader<'a>);

const MALFORMED: Refusal = Refusal::Shape("truncated or malformed yrs update");

impl<'a> Cursor<'a> {
    fn new(buf: &'a [u8]) -> Cursor<'a> {
        Cursor(codec::Reader::new(buf))
    }

    fn pos(&self) -> usize {
        self.0.pos()
    }

    fn byte(&mut self) -> Result<u8, Refusal> {
        self.0.byte().map_err(|_| MALFORMED)
    }

    /// A canonical varint of at most `max_bits` bits.
    fn var(&mut self, max_bits: u32) -> Result<u64, Refusal> {
        self.0.varint_bits(max_bits).map_err(|_| MALFORMED)
    }

    fn u32(&mut self) -> Result<u32, Refusal> {
        self.0.u32().map_err(|_| MALFORMED)
    }

    fn skip(&mut self, n: u64) -> Result<(), Refusal> {
        self.0.bytes(n).map(|_| ()).map_err(|_| MALFORMED)
    }

    fn string(&mut self) -> Result<&'a str, Refusal> {
        std::str::from_utf8(self.raw_string()?).map_err(|_| MALFORMED)
    }

    /// A string's bytes, unchecked: for comparisons with names that are UTF-8 already
    /// (anything else differs from them), which the scan of every delta makes.
    fn raw_string(&mut self) -> Result<&'a [u8], Refusal> {
        let len = self.u32()?;
        self.0.bytes(len as u64).map_err(|_| MALFORMED)
    }
}

const GC: u8 = 0;
const CONTENT_DELETED: u8 = 1;
const CONTENT_ANY: u8 = 8;
const HAS_ORIGIN: u8 = 0x80;
const HAS_RIGHT_ORIGIN: u8 = 0x40;
const HAS_PARENT_SUB: u8 = 0x20;
const ANY_BUFFER: u8 = 116;

/// The root map every value document keeps its keys in, and the meta key (see `storage`).
pub(crate) const ROOT: &str = "v";
pub(crate) const META_KEY: &str = "m";

/// The span of `bytes`, a delta entry's update from peer `sender`, if it has the strict
/// shape described above and changes only `sender`'s own writes.
pub(crate) fn scan_delta(bytes: &[u8], sender: u64) -> Result<Span, Refusal> {
    let mut c = Cursor::new(bytes);
    let span = blocks(&mut c, sender)?;
    deletes(&mut c, |owner, _| {
        if owner != sender {
            return Err(Refusal::Forged(format!("deletes items of peer {owner}")));
        }
        Ok(())
    })?;
    if c.pos() != bytes.len() {
        return Err(Refusal::Shape("trailing bytes after the update"));
    }
    Ok(span)
}

/// Drops every other client's entry from the delete set of `update`, an update of
/// `client`'s own items encoded by yrs (whose diffs carry the whole document's delete
/// set). Each writer's deltas carry its own deletions, so nothing is lost, and a
/// receiver can refuse any delta that deletes another writer's items. An update not of
/// the strict shape is left as it is (receivers would refuse it; tests prove ours pass).
pub(crate) fn keep_own_deletes(update: &mut Vec<u8>, client: u64) {
    let mut c = Cursor::new(update);
    if blocks(&mut c, client).is_err() {
        return;
    }
    let ds_start = c.pos();
    // yrs writes each client once: at most one entry is this client's.
    let (mut own, mut foreign) = (None, false);
    let read = deletes(&mut c, |owner, range| {
        if owner == client {
            own = Some(range);
        } else {
            foreign = true;
        }
        Ok(())
    });
    if read.is_err() || c.pos() != update.len() || !foreign {
        return;
    }
    let own = own.map(|(from, to)| update[from..to].to_vec());
    update.truncate(ds_start);
    codec::put_varint(update, own.is_some() as u64);
    update.extend_from_slice(&own.unwrap_or_default());
}

/// Reads the block sections of a delta from `sender` (see `scan_delta`), leaving the
/// cursor at the delete set.
fn blocks(c: &mut Cursor, sender: u64) -> Result<Span, Refusal> {
    let sections = c.u32()?;
    if sections == 0 {
        return Err(Refusal::Shape("an empty update"));
    }
    let blocks = c.u32()?;
    let client = c.var(64)?;
    if client != sender {
        return Err(Refusal::Forged(format!("carries writes of peer {client}")));
    }
    let start = c.u32()?;
    let mut clock = start;
    let mut last_buffer = None;
    for _ in 0..blocks {
        let info = c.byte()?;
        let len = if info == GC {
            c.u32()?
        } else {
            last_buffer = None;
            // An item that follows (or precedes) another is placed under that item's key:
            // it must be one of the sender's own.
            for flag in [HAS_ORIGIN, HAS_RIGHT_ORIGIN] {
                if info & flag != 0 {
                    let origin = c.var(64)?;
                    c.u32()?;
                    if origin != sender {
                        return Err(Refusal::Forged(format!(
                            "places an item next to an item of peer {origin} (writes under its key)"
                        )));
                    }
                }
            }
            if info & (HAS_ORIGIN | HAS_RIGHT_ORIGIN) == 0 {
                // The first item of a key: it names its parent and key.
                if c.u32()? != 1 || c.raw_string()? != ROOT.as_bytes() {
                    return Err(Refusal::Shape("an item outside the value's root map"));
                }
                if info & HAS_PARENT_SUB == 0 {
                    return Err(Refusal::Shape("an item with no map key"));
                }
                let key = c.raw_string()?;
                if key != META_KEY.as_bytes() && slot_writer_bytes(key) != Some(sender) {
                    let key = String::from_utf8_lossy(key);
                    return Err(Refusal::Forged(format!(
                        "writes map key {key:?}, which is not its own slot"
                    )));
                }
            }
            match info & 0x1f {
                CONTENT_DELETED => c.u32()?,
                CONTENT_ANY => {
                    let n = c.u32()?;
                    for _ in 0..n {
                        if c.byte()? != ANY_BUFFER {
                            return Err(Refusal::Shape("an item that holds something else than bytes"));
                        }
                        let len = c.u32()?;
                        let at = c.pos();
                        c.skip(len as u64)?;
                        last_buffer = (n == 1).then_some((at, len as usize));
                    }
                    n
                }
                _ => return Err(Refusal::Shape("an item of a content kind zen-crdt never writes")),
            }
        };
        if len == 0 {
            return Err(MALFORMED);
        }
        clock = clock.checked_add(len).ok_or(MALFORMED)?;
    }
    if blocks == 0 {
        return Err(Refusal::Shape("an update with no blocks"));
    }
    if sections > 1 {
        // A second client section: writes of another peer (or a malformed repeat).
        c.u32()?;
        let other = c.var(64)?;
        return Err(Refusal::Forged(format!("carries writes of peer {other}")));
    }
    Ok(Span { client, start, end: clock, last_buffer })
}

/// Reads a delete set, calling `each` with every client's id and the byte range of its
/// entry (client id and ranges).
fn deletes(
    c: &mut Cursor,
    mut each: impl FnMut(u64, (usize, usize)) -> Result<(), Refusal>,
) -> Result<(), Refusal> {
    for _ in 0..c.u32()? {
        let from = c.pos();
        let owner = c.var(64)?;
        for _ in 0..c.u32()? {
            let (at, len) = (c.u32()?, c.u32()?);
            at.checked_add(len).ok_or(MALFORMED)?;
        }
        each(owner, (from, c.pos()))?;
    }
    Ok(())
}

/// Where an overwrite changes a writer's whole contribution (see `next_overwrite`): the
/// run of its deleted slot records starts at clock `first` (1 after the meta item of a
/// value it created, else 0) and is `run` records long; its length is written at byte
/// `run_at`, after which the bytes are the newest record and the delete set. After the
/// writer's first write there is no run (`run` 0): `run_at` is where its one record
/// starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OwnShape {
    run_at: u32,
    first: u32,
    run: u32,
}

impl OwnShape {
    /// The writer's clock after the contribution (its span's end): the meta item, the
    /// run and the newest record.
    pub fn end(self) -> u32 {
        self.first + self.run + 1
    }
}

/// The shape of `prev`, `writer`'s whole contribution as yrs encoded it, if it is the
/// one every contribution has after a first write: the meta item if `writer` created the
/// value, the run of its deleted slot records (none after the first write), its newest
/// record, the run again as the delete set. `None` for any other (then yrs writes the
/// next one).
pub(crate) fn own_shape(prev: &[u8], writer: u64) -> Option<OwnShape> {
    let mut c = Cursor::new(prev);
    let want = |c: &mut Cursor, v: u32| (c.u32().ok()? == v).then_some(());
    let yes = |b: bool| b.then_some(());
    want(&mut c, 1)?;
    let mut blocks = c.u32().ok()?;
    yes(c.var(64).ok()? == writer)?;
    want(&mut c, 0)?;
    // The meta item: its key tells it from a first record, which has the same flags.
    let mut first: u32 = 0;
    let mut meta = c.clone();
    if meta.byte().ok()? == CONTENT_ANY | HAS_PARENT_SUB
        && meta.u32().ok()? == 1
        && meta.string().ok()? == ROOT
        && meta.string().ok()? == META_KEY
    {
        want(&mut meta, 1)?;
        yes(meta.byte().ok()? == ANY_BUFFER)?;
        let len = meta.u32().ok()?;
        meta.skip(len as u64).ok()?;
        (c, first, blocks) = (meta, 1, blocks.checked_sub(1)?);
    }
    let run_at;
    let run = match blocks {
        // Only the first record: named by its parent and key, nothing deleted.
        1 => {
            run_at = u32::try_from(c.pos()).ok()?;
            yes(c.byte().ok()? == CONTENT_ANY | HAS_PARENT_SUB)?;
            want(&mut c, 1)?;
            yes(c.string().ok()? == ROOT)?;
            yes(slot_writer(c.string().ok()?) == Some(writer))?;
            want(&mut c, 1)?;
            yes(c.byte().ok()? == ANY_BUFFER)?;
            let len = c.u32().ok()?;
            c.skip(len as u64).ok()?;
            want(&mut c, 0)?;
            0
        }
        2 => {
            yes(c.byte().ok()? == CONTENT_DELETED | HAS_PARENT_SUB)?;
            want(&mut c, 1)?;
            yes(c.string().ok()? == ROOT)?;
            yes(slot_writer(c.string().ok()?) == Some(writer))?;
            run_at = u32::try_from(c.pos()).ok()?;
            run_and_record(&mut c, writer, first)?
        }
        _ => return None,
    };
    yes(c.pos() == prev.len())?;
    Some(OwnShape { run_at, first, run })
}

/// The rest of a contribution with a run, from its length on: the newest record after
/// the run's last item, then the run as the delete set. Returns the run's length.
fn run_and_record(c: &mut Cursor, writer: u64, first: u32) -> Option<u32> {
    let want = |c: &mut Cursor, v: u32| (c.u32().ok()? == v).then_some(());
    let yes = |b: bool| b.then_some(());
    let run = c.u32().ok()?;
    yes(run > 0)?;
    yes(c.byte().ok()? == CONTENT_ANY | HAS_ORIGIN | HAS_PARENT_SUB)?;
    yes(c.var(64).ok()? == writer)?;
    want(c, first.checked_add(run - 1)?)?;
    want(c, 1)?;
    yes(c.byte().ok()? == ANY_BUFFER)?;
    let len = c.u32().ok()?;
    c.skip(len as u64).ok()?;
    want(c, 1)?;
    yes(c.var(64).ok()? == writer)?;
    want(c, 1)?;
    want(c, first)?;
    want(c, run)?;
    Some(run)
}

/// `own_shape` of `next`, a later contribution of the writer of `prev` (of shape
/// `shape`), if it also begins as `prev` does up to the run or the first record: the
/// same meta item (items a receiver holds already keep their content in yrs, so a
/// writer sending another would make replicas differ; only its block count may grow).
/// After a run only the rest is read.
pub(crate) fn later_shape(prev: &[u8], shape: OwnShape, next: &[u8], writer: u64) -> Option<OwnShape> {
    let at = shape.run_at as usize;
    if next.get(2..at)? != prev.get(2..at)? {
        return None;
    }
    if shape.run == 0 {
        return own_shape(next, writer);
    }
    let mut c = Cursor::new(next);
    c.skip(at as u64).ok()?;
    let run = run_and_record(&mut c, writer, shape.first)?;
    (c.pos() == next.len()).then_some(OwnShape { run, ..shape })
}

/// `writer`'s whole contribution after it overwrites its slot with `record`, made without
/// yrs (a yrs transaction and an encode cost most of a write; see `storage`) from
/// `prev`, its contribution after its previous write, of shape `shape` (`own_shape`):
/// the run one longer (the first overwrite turns the first record's parent and key into
/// the run's), the new record placed after the one it replaces. Byte for byte what yrs
/// encodes (tested against it). Also returns the span the scan would find and the new
/// contribution's shape.
pub(crate) fn next_overwrite(
    prev: &[u8],
    shape: OwnShape,
    writer: u64,
    record: &[u8],
) -> Option<(Vec<u8>, Span, OwnShape)> {
    let OwnShape { mut run_at, first, run } = shape;
    let run = run.checked_add(1)?;
    let end = first.checked_add(run)?.checked_add(1)?;
    let mut out = Vec::with_capacity(run_at as usize + record.len() + 40);
    if run == 1 {
        // The first record becomes the run: its parent and key stay, its content goes.
        let mut c = Cursor::new(prev.get(run_at as usize + 1..)?);
        c.u32().ok()?;
        c.raw_string().ok()?;
        c.raw_string().ok()?;
        let parent_end = run_at as usize + 1 + c.pos();
        out.extend_from_slice(prev.get(..run_at as usize)?);
        // One more block (the run beside the record); the count is the byte after the
        // section count, at most 3 here.
        *out.get_mut(1)? += 1;
        out.push(CONTENT_DELETED | HAS_PARENT_SUB);
        out.extend_from_slice(prev.get(run_at as usize + 1..parent_end)?);
        run_at = u32::try_from(out.len()).ok()?;
    } else {
        out.extend_from_slice(prev.get(..run_at as usize)?);
    }
    codec::put_varint(&mut out, run as u64);
    out.push(CONTENT_ANY | HAS_ORIGIN | HAS_PARENT_SUB);
    codec::put_varint(&mut out, writer);
    // The record it replaces: the run's last item now.
    codec::put_varint(&mut out, (first + run - 1) as u64);
    out.extend_from_slice(&[1, ANY_BUFFER]);
    codec::put_varint(&mut out, record.len() as u64);
    let at = out.len();
    out.extend_from_slice(record);
    out.push(1);
    codec::put_varint(&mut out, writer);
    out.push(1);
    codec::put_varint(&mut out, first as u64);
    codec::put_varint(&mut out, run as u64);
    let span = Span { client: writer, start: 0, end, last_buffer: Some((at, record.len())) };
    Some((out, span, OwnShape { run_at, first, run }))
}

/// The meta record of a writer's whole contribution of shape `shape` (`own_shape`), if
/// it holds one.
pub(crate) fn meta_record(contribution: &[u8], shape: OwnShape) -> Option<&[u8]> {
    if shape.first == 0 {
        return None;
    }
    let mut c = Cursor::new(contribution);
    c.u32().ok()?;
    c.u32().ok()?;
    c.var(64).ok()?;
    c.u32().ok()?;
    c.skip(2).ok()?;
    c.raw_string().ok()?;
    c.raw_string().ok()?;
    c.skip(2).ok()?;
    let len = c.u32().ok()?;
    contribution.get(c.pos()..c.pos() + len as usize)
}

/// The map key of `writer`'s slot: its peer id in decimal.
pub(crate) fn slot_key(writer: u64) -> String {
    writer.to_string()
}

/// The writer whose slot key `key` is: canonical decimal only (no sign, no leading
/// zero), so no two keys name one writer. Allocates nothing (the delta scan calls it for
/// every entry).
pub(crate) fn slot_writer(key: &str) -> Option<u64> {
    slot_writer_bytes(key.as_bytes())
}

/// `slot_writer` of a key's bytes (a digit-only key is UTF-8 whatever else it is).
fn slot_writer_bytes(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 16 || b[0] == b'0' || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let writer = b.iter().fold(0u64, |n, d| n * 10 + (d - b'0') as u64);
    (writer < 1 << 53).then_some(writer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::register::encode_record;
    use crate::storage::ValueDoc;
    use crate::value::Value;
    use proptest::prelude::*;
    use std::sync::Arc;
    use yrs::updates::decoder::Decode;

    /// What yrs says the update inserts, for comparison.
    fn yrs_span(bytes: &[u8]) -> Option<Span> {
        let u = std::panic::catch_unwind(|| yrs::Update::decode_v1(bytes)).ok()?.ok()?;
        let ins = u.insertions(true);
        let mut spans = ins.iter().map(|(c, r)| Span {
            client: c.get(),
            start: r.iter().map(|r| r.start).min().unwrap_or(0),
            end: r.iter().map(|r| r.end).max().unwrap_or(0),
            last_buffer: None,
        });
        let s = spans.next()?;
        spans.next().is_none().then_some(s)
    }

    /// The updates our writers produce, with and without the meta record, over many
    /// overwrites.
    fn real_updates() -> Vec<Vec<u8>> {
        let mut doc = ValueDoc::new(5);
        let key: Arc<str> = "5".into();
        let mut out = Vec::new();
        for i in 0..40u32 {
            let meta = (i == 0).then_some(&[7u8, 0][..]);
            out.push(doc.write(5, &key, meta, &record(i)).to_vec());
        }
        out
    }

    fn record(i: u32) -> Vec<u8> {
        let mut rec = Vec::new();
        encode_record(
            &[(crate::ids::PeerId::new(3), crate::ids::Clock::new(i))],
            Some(&Value::Vec3([i as f32, 1.0, 2.0])),
            &mut rec,
        );
        rec
    }

    fn without_buffer(s: Span) -> Span {
        Span { last_buffer: None, ..s }
    }

    /// Every update our writer produces scans to the span yrs reads, and its last
    /// buffer is the record just written.
    #[test]
    fn every_update_we_write_scans_to_what_yrs_reads() {
        for (i, u) in real_updates().into_iter().enumerate() {
            let s = scan_delta(&u, 5).unwrap_or_else(|e| panic!("refused ({e:?}): {u:?}"));
            assert_eq!(Some(without_buffer(s)), yrs_span(&u));
            let (at, len) = s.last_buffer.expect("a slot record");
            assert_eq!(u[at..at + len], record(i as u32)[..], "write {i}");
        }
    }

    /// Peers 5 and 3 write one value in turn; each overwrite deletes the writer's own
    /// previous item, so the document's delete set names both. Each writer's delta
    /// carries its own deletions only, and scans.
    #[test]
    fn multi_writer_deltas_carry_only_their_own_deletions() {
        let (mut five, mut three) = (ValueDoc::new(5), ValueDoc::new(3));
        let (k5, k3): (Arc<str>, Arc<str>) = ("5".into(), "3".into());
        let decoded = |u: &[u8]| crate::storage::Payload::Decoded(yrs::Update::decode_v1(u).unwrap());
        for i in 0..5 {
            let u5 = five.write(5, &k5, (i == 0).then_some(&[7u8, 0][..]), &record(i));
            three.apply(3, decoded(&u5)).unwrap();
            let u3 = three.write(3, &k3, None, &record(100 + i));
            five.apply(5, decoded(&u3)).unwrap();
            let s5 = scan_delta(&u5, 5).unwrap_or_else(|e| panic!("{e:?}"));
            let s3 = scan_delta(&u3, 3).unwrap_or_else(|e| panic!("{e:?}"));
            assert_eq!(Some(without_buffer(s5)), yrs_span(&u5));
            assert_eq!(Some(without_buffer(s3)), yrs_span(&u3));
        }
        // The documents agree: nothing was lost by leaving the other's deletions out.
        assert_eq!(five.read(5), three.read(3));
    }

    /// A crafted update from peer 2: `f` edits a document of client 2 that already
    /// holds peer 3's slot.
    fn forged(f: impl FnOnce(&yrs::Doc, &yrs::MapRef, &mut yrs::TransactionMut)) -> Vec<u8> {
        use yrs::{Any, Doc, Map, ReadTxn, StateVector, Transact};
        let three = Doc::with_client_id(3);
        let map3 = three.get_or_insert_map(ROOT);
        map3.insert(&mut three.transact_mut(), "3", Any::Buffer(record(1).into()));
        let theirs = three.transact().encode_state_as_update_v1(&StateVector::default());
        let two = Doc::with_client_id(2);
        let map = two.get_or_insert_map(ROOT);
        two.transact_mut().apply_update(yrs::Update::decode_v1(&theirs).unwrap()).unwrap();
        let before = two.transact().state_vector();
        {
            let mut txn = two.transact_mut();
            map.insert(&mut txn, "2", Any::Buffer(record(2).into()));
            f(&two, &map, &mut txn);
        }
        // Everything new since `before` (as a careless or hostile encoder would send it).
        let update = two.transact().encode_diff_v1(&before);
        update
    }

    #[test]
    fn forgeries_are_named() {
        use yrs::{Any, Map};
        let refused = |u: &[u8]| match scan_delta(u, 2) {
            Err(Refusal::Forged(why)) => why,
            other => panic!("not refused as forged: {other:?}"),
        };
        // Another writer's slot key, first written by peer 2.
        let u = forged(|_, m, t| {
            m.insert(t, "7", Any::Buffer(record(9).into()));
        });
        assert!(refused(&u).contains("map key \"7\""));
        // Overwriting peer 3's slot: an item placed after peer 3's (and its deletion).
        let u = forged(|_, m, t| {
            m.insert(t, "3", Any::Buffer(record(9).into()));
        });
        assert!(refused(&u).contains("item of peer 3"), "{}", refused(&u));
        // Deleting peer 3's slot.
        let u = forged(|_, m, t| {
            m.remove(t, "3");
        });
        assert_eq!(refused(&u), "deletes items of peer 3");
        // Items of another client.
        let mut other = ValueDoc::new(3);
        let u = other.write(3, &"3".into(), None, &record(1));
        assert!(matches!(scan_delta(&u, 2), Err(Refusal::Forged(why)) if why == "carries writes of peer 3"));
    }

    #[test]
    fn other_shapes_are_refused() {
        assert!(matches!(scan_delta(&[], 5), Err(Refusal::Shape(_))));
        assert!(matches!(scan_delta(&[0, 0], 5), Err(Refusal::Shape("an empty update"))));
        let mut u = real_updates().remove(1);
        u.push(0);
        assert!(matches!(scan_delta(&u, 5), Err(Refusal::Shape(_))), "trailing bytes");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

        /// Whatever the scan accepts, yrs decodes, and to the same span.
        #[test]
        fn scan_never_accepts_what_yrs_refuses(which in 0usize..40, flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
            let mut u = real_updates().swap_remove(which);
            for (at, x) in flips {
                let i = at % u.len();
                u[i] ^= x | 1;
            }
            if let Ok(s) = scan_delta(&u, 5) {
                prop_assert_eq!(Some(without_buffer(s)), yrs_span(&u));
            }
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(s) = scan_delta(&bytes, 5) {
                prop_assert_eq!(Some(without_buffer(s)), yrs_span(&bytes));
            }
        }
    }
}

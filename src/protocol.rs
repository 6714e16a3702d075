//! The wire format: versioned, size-bounded, checked before anything is applied.
//!
//! Owns message layout and validation (varints are `codec`'s). It never touches values
//! or yrs: each embedded yrs update is checked as `storage::Payload` says an entry of its
//! kind must be, while the message is decoded, so a hostile update rejects the message
//! here instead of being half-applied later. Every message is self-contained and the
//! same bytes may go to every peer or through a relay.
//!
//! Layout (integers are LEB128 varints unless marked):
//! ```text
//! magic "ZC" (2 bytes) | version (u8) | kind (u8) | sender peer id
//! acks: count, count x (stream peer id, highest contiguous seq received, bitmap of the
//!       64 seqs after it that were received too)
//! kind 1 Delta:    seq, count, count x entry
//! kind 2 Ack:      (nothing more)
//! kind 4 Receipt:  catch-up id (to one peer: its catch-up with a manifest arrived)
//! kind 3 Snapshot: stream peer id, catch-up id, chunk count, base seq, target seq,
//!                  manifest, count, count x entry-with-stream-info
//! manifest: 0 (none), or births + 1, the sender's own last seq, then births x (writer,
//!         seq, n) of every table entry the sender holds (see `sync`: sent to members
//!         that joined, so they drop entries removed and forgotten while they were away)
//! entry:  value index in the stream's own numbering, id length (0 = already
//!         announced on this stream), id bytes, update length, yrs v1 update
//! entry-with-stream-info: entry, then the stream's last seq for that value and the
//!         stream writer's yrs clock that seq covers
//! crc32 (4 bytes, little endian) of everything before it
//! ```
//! When it makes the message smaller, everything after the kind byte is LZ4-compressed
//! (block format): the kind byte then has bit 0x80 set and is followed by the
//! uncompressed length (varint) and the compressed bytes; the checksum covers the bytes
//! as sent. A tick's delta repeats its structure (client ids, clocks, lengths) for every
//! value, so this roughly halves what a vec3 update costs on the wire.
//! The checksum turns corruption that a transport let through (or a relay mangled) into
//! a rejected message instead of a silently wrong value.

use crate::codec;
use crate::error::Error;
use crate::ids::{Clock, PeerId, Seq};
use crate::seqwindow::SeqWindow;
use crate::storage::{Payload, Shared, Slice};
use crate::update_scan::Refusal;
use std::sync::Arc;

pub const MAGIC: [u8; 2] = *b"ZC";
/// Protocol version this library writes; messages with a higher version are rejected
/// with [`Error::ProtocolVersion`] so a newer peer is reported, not misread.
pub const PROTOCOL_VERSION: u8 = 4;

const KIND_DELTA: u8 = 1;
const KIND_ACK: u8 = 2;
const KIND_SNAPSHOT: u8 = 3;
const KIND_RECEIPT: u8 = 4;

/// One value's change inside a message.
#[derive(Debug)]
pub(crate) struct Entry {
    /// Index of the value in the numbering of the stream the entry belongs to.
    pub index: u32,
    /// The value's string id, present the first time a stream mentions the value and
    /// always in snapshots.
    pub id: Option<String>,
    pub update: Payload,
    /// Snapshot entries only: the stream's last seq for this value.
    pub stream_seq: Seq,
    /// The yrs clock of the stream's writer that the entry covers (a snapshot says it;
    /// a delta's is where its update ends).
    pub stream_clock: Clock,
}

#[derive(Debug)]
pub(crate) enum Body {
    Delta {
        seq: Seq,
        entries: Vec<Entry>,
    },
    Ack,
    /// The sender received our catch-up `catchup` with its manifest.
    Receipt {
        catchup: u64,
    },
    Snapshot {
        stream: PeerId,
        catchup: u64,
        chunks: u32,
        base: Seq,
        target: Seq,
        manifest: Option<Manifest>,
        entries: Vec<Entry>,
    },
}

/// Every table entry a peer held when it built a catch-up: its own stream's last seq
/// then, and each entry's birth (writer, seq, n).
#[derive(Debug)]
pub(crate) struct Manifest {
    pub own_seq: Seq,
    pub births: Vec<(u64, u64, u64)>,
}

/// Appends manifest `m` (or its absence) in the snapshot layout.
pub(crate) fn put_manifest(out: &mut Vec<u8>, m: Option<&Manifest>) {
    match m {
        None => codec::put_varint(out, 0),
        Some(m) => {
            codec::put_varint(out, m.births.len() as u64 + 1);
            codec::put_varint(out, m.own_seq.get());
            for &(w, s, n) in &m.births {
                for x in [w, s, n] {
                    codec::put_varint(out, x);
                }
            }
        }
    }
}

#[derive(Debug)]
pub(crate) struct Message {
    /// As the message says; not yet checked (see `PeerId::checked`).
    pub sender: PeerId,
    pub acks: Vec<(PeerId, SeqWindow)>,
    pub body: Body,
}

/// Limits a decoder enforces; they come from the context's options.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub max_message_bytes: usize,
    pub max_id_bytes: usize,
}

pub(crate) use crate::codec::put_varint;

/// Writes the common header and the ack vector.
pub(crate) fn put_header(out: &mut Vec<u8>, kind: MessageKind, sender: PeerId, acks: &[(PeerId, SeqWindow)]) {
    out.extend_from_slice(&MAGIC);
    out.push(PROTOCOL_VERSION);
    out.push(kind as u8);
    put_varint(out, sender.get());
    put_varint(out, acks.len() as u64);
    for &(peer, w) in acks {
        put_varint(out, peer.get());
        put_varint(out, w.upto.get());
        put_varint(out, w.above);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum MessageKind {
    Delta = KIND_DELTA,
    Ack = KIND_ACK,
    Snapshot = KIND_SNAPSHOT,
    Receipt = KIND_RECEIPT,
}

const COMPRESSED: u8 = 0x80;
/// Bytes after the header below which compression is not tried.
const COMPRESS_MIN: usize = 96;

/// Finishes a message built with `put_header`: compresses it when that saves bytes and
/// appends the checksum.
pub(crate) fn seal(out: Vec<u8>) -> Vec<u8> {
    let mut out = out;
    if out.len() > 4 + COMPRESS_MIN {
        let packed = lz4_flex::block::compress(&out[4..]);
        let raw_len = out.len() - 4;
        if packed.len() + 5 < raw_len {
            let mut small = Vec::with_capacity(packed.len() + 16);
            small.extend_from_slice(&out[..3]);
            small.push(out[3] | COMPRESSED);
            put_varint(&mut small, raw_len as u64);
            small.extend_from_slice(&packed);
            out = small;
        }
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

pub(crate) fn put_entry(out: &mut Vec<u8>, index: u32, id: Option<&str>, update: &[u8]) {
    put_varint(out, index as u64);
    match id {
        Some(id) => {
            put_varint(out, id.len() as u64);
            out.extend_from_slice(id.as_bytes());
        }
        None => put_varint(out, 0),
    }
    put_varint(out, update.len() as u64);
    out.extend_from_slice(update);
}

/// Reads a message: the codec's reader, with errors that name the field.
struct Reader<'a>(codec::Reader<'a>);

fn named(what: &str) -> impl Fn(codec::Malformed) -> Error + '_ {
    move |e| Error::decode(format!("{what}: {e}"))
}

impl<'a> Reader<'a> {
    fn byte(&mut self, what: &str) -> Result<u8, Error> {
        self.0.byte().map_err(named(what))
    }

    fn varint(&mut self, what: &str) -> Result<u64, Error> {
        self.0.varint().map_err(named(what))
    }

    /// A count of items that each take at least `min_item` bytes: bounded by what is left,
    /// so a hostile count cannot make us allocate.
    fn count(&mut self, what: &str, min_item: usize) -> Result<usize, Error> {
        let n = self.varint(what)?;
        let left = self.0.remaining() as u64;
        if n.saturating_mul(min_item as u64) > left {
            return Err(Error::decode(format!("{what} = {n} exceeds the {left} bytes left")));
        }
        Ok(n as usize)
    }

    fn bytes(&mut self, len: usize, what: &str) -> Result<&'a [u8], Error> {
        self.0.bytes(len as u64).map_err(|e| Error::decode(format!("{what} needs {len} bytes: {e}")))
    }

    fn u32(&mut self, what: &str) -> Result<u32, Error> {
        self.0.u32().map_err(named(what))
    }
}

/// Reads one entry. A delta's entries must change only `sender`'s own writes; a
/// snapshot's carry the state of every writer of a value.
/// Reads one entry. `body` is the buffer `r` reads, shared: a delta's update is kept as a
/// part of it rather than copied (see `storage::Slice`).
fn read_entry(
    r: &mut Reader,
    body: &Shared,
    limits: &Limits,
    sender: PeerId,
    snapshot: bool,
) -> Result<Entry, Error> {
    let index = r.u32("value index")?;
    let id_len = r.varint("id length")? as usize;
    let id = if id_len == 0 {
        None
    } else {
        if id_len > limits.max_id_bytes {
            return Err(Error::decode(format!(
                "value id of {id_len} bytes exceeds the limit of {}",
                limits.max_id_bytes
            )));
        }
        let raw = r.bytes(id_len, "value id")?;
        Some(
            std::str::from_utf8(raw)
                .map_err(|_| Error::decode(format!("value id of entry {index} is not UTF-8")))?
                .to_owned(),
        )
    };
    let ulen = r.varint("update length")? as usize;
    let raw = r.bytes(ulen, "yrs update")?;
    // Checked now, so a bad entry rejects the whole message before anything is applied;
    // storage decides how each kind of entry is checked and kept.
    if snapshot {
        let update = Payload::snapshot(raw)?;
        let (stream_seq, stream_clock) =
            (Seq::new(r.varint("stream seq")?), Clock::new(r.u32("stream clock")?));
        return Ok(Entry { index, id, update, stream_seq, stream_clock });
    }
    let at = raw.as_ptr() as usize - body.as_ptr() as usize;
    let update =
        Payload::delta(Slice::new(body.clone(), at, raw.len()), sender.get()).map_err(|why| match why {
            Refusal::Shape(what) => {
                Error::decode(format!("entry {index}'s update is not one zen-crdt writes: {what}"))
            }
            Refusal::Forged(what) => Error::Forged(format!("delta from peer {sender} {what}")),
        })?;
    let stream_clock = Clock::new(update.clock_end().expect("a delta's update is scanned"));
    Ok(Entry { index, id, update, stream_seq: Seq::NONE, stream_clock })
}

/// Decodes and validates a whole message. Nothing is applied here; an `Err` means the
/// message is rejected as a whole.
pub(crate) fn decode(buf: &[u8], limits: &Limits) -> Result<Message, Error> {
    if buf.len() > limits.max_message_bytes {
        return Err(Error::TooLarge { what: "message", len: buf.len(), max: limits.max_message_bytes });
    }
    let mut r = Reader(codec::Reader::new(buf));
    let magic = r.bytes(2, "magic")?;
    if magic != MAGIC {
        return Err(Error::decode(format!("bad magic {magic:02x?}, expected \"ZC\"")));
    }
    let version = r.byte("version")?;
    if version != PROTOCOL_VERSION {
        return Err(Error::ProtocolVersion { got: version, supported: PROTOCOL_VERSION });
    }
    let body_len = buf.len().checked_sub(4).filter(|&n| n >= 4).ok_or_else(|| {
        Error::decode(format!("truncated: {} bytes cannot hold a header and checksum", buf.len()))
    })?;
    let (content, crc) = buf.split_at(body_len);
    let expected = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32fast::hash(content) != expected {
        return Err(Error::decode("checksum mismatch: the message is corrupt or truncated"));
    }
    let mut r = Reader(codec::Reader::at(content, 3));
    let mut kind = r.byte("kind")?;
    // The rest, shared by the entries that keep parts of it (one allocation a message).
    let body: Shared = if kind & COMPRESSED != 0 {
        kind &= !COMPRESSED;
        let len = r.varint("uncompressed length")?;
        if len > limits.max_message_bytes as u64 {
            return Err(Error::TooLarge {
                what: "uncompressed message",
                len: len as usize,
                max: limits.max_message_bytes,
            });
        }
        let mut unpacked: Shared = std::iter::repeat_n(0u8, len as usize).collect();
        let out = Arc::get_mut(&mut unpacked).expect("just made");
        let n = lz4_flex::block::decompress_into(r.0.rest(), out)
            .map_err(|e| Error::decode(format!("compressed body is invalid: {e}")))?;
        if n != len as usize {
            return Err(Error::decode("compressed body has the wrong length"));
        }
        unpacked
    } else {
        Shared::from(r.0.rest())
    };
    let mut r = Reader(codec::Reader::new(&body));
    let sender = PeerId::new(r.varint("sender")?);
    let nacks = r.count("ack count", 3)?;
    let mut acks = Vec::with_capacity(nacks);
    for _ in 0..nacks {
        let peer = PeerId::new(r.varint("ack peer")?);
        let upto = Seq::new(r.varint("ack seq")?);
        acks.push((peer, SeqWindow { upto, above: r.varint("ack window")? }));
    }
    let body = match kind {
        KIND_DELTA => {
            let seq = Seq::new(r.varint("seq")?);
            if seq == Seq::NONE {
                return Err(Error::decode("delta seq 0 is reserved"));
            }
            let n = r.count("entry count", 3)?;
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                entries.push(read_entry(&mut r, &body, limits, sender, false)?);
            }
            Body::Delta { seq, entries }
        }
        KIND_ACK => Body::Ack,
        KIND_RECEIPT => Body::Receipt { catchup: r.varint("catch-up id")? },
        KIND_SNAPSHOT => {
            let stream = PeerId::new(r.varint("stream")?);
            let catchup = r.varint("catch-up id")?;
            let chunks = r.u32("chunk count")?;
            let base = Seq::new(r.varint("base seq")?);
            let target = Seq::new(r.varint("target seq")?);
            if chunks == 0 || base > target {
                return Err(Error::decode(format!(
                    "snapshot header is inconsistent (chunks {chunks}, base {base}, target {target})"
                )));
            }
            let manifest = match r.varint("manifest")? {
                0 => None,
                m => {
                    let own_seq = Seq::new(r.varint("manifest seq")?);
                    let n = m - 1;
                    if n > (r.0.remaining() / 3) as u64 {
                        return Err(Error::decode(format!("manifest of {n} births cannot fit the message")));
                    }
                    let mut births = Vec::with_capacity(n as usize);
                    for _ in 0..n {
                        births.push((
                            r.varint("birth writer")?,
                            r.varint("birth seq")?,
                            r.varint("birth n")?,
                        ));
                    }
                    Some(Manifest { own_seq, births })
                }
            };
            let n = r.count("entry count", 5)?;
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                entries.push(read_entry(&mut r, &body, limits, sender, true)?);
            }
            Body::Snapshot { stream, catchup, chunks, base, target, manifest, entries }
        }
        k => return Err(Error::decode(format!("unknown message kind {k}"))),
    };
    if !r.0.is_empty() {
        return Err(Error::decode(format!("{} trailing bytes after the message", r.0.remaining())));
    }
    Ok(Message { sender, acks, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { max_message_bytes: 1 << 20, max_id_bytes: 256 };

    #[test]
    fn varint_roundtrip_and_length() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            let mut r = Reader(codec::Reader::new(&out));
            assert_eq!(r.varint("v").unwrap(), v);
        }
    }

    #[test]
    fn ack_message_roundtrip() {
        let mut out = Vec::new();
        let acks =
            vec![(PeerId::new(3), SeqWindow::raw(10, 0)), (PeerId::new(9), SeqWindow::raw(2, u64::MAX - 1))];
        put_header(&mut out, MessageKind::Ack, PeerId::new(7), &acks);
        let out = seal(out);
        let m = decode(&out, &LIMITS).unwrap();
        assert_eq!(m.sender, PeerId::new(7));
        assert_eq!(m.acks, acks);
        assert!(matches!(m.body, Body::Ack));
    }

    #[test]
    fn every_truncation_is_rejected() {
        let mut out = Vec::new();
        put_header(&mut out, MessageKind::Delta, PeerId::new(7), &[(PeerId::new(3), SeqWindow::raw(10, 4))]);
        put_varint(&mut out, 1);
        put_varint(&mut out, 1);
        let update = crate::storage::ValueDoc::new(7).write(7, &"7".into(), Some(&[2, 0]), &[2, 1]);
        put_entry(&mut out, 0, Some("x"), &update);
        let out = seal(out);
        decode(&out, &LIMITS).unwrap();
        for cut in 0..out.len() {
            assert!(decode(&out[..cut], &LIMITS).is_err(), "cut at {cut} accepted");
        }
        for bit in 0..out.len() * 8 {
            let mut bad = out.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(decode(&bad, &LIMITS).is_err(), "bit flip {bit} accepted");
        }
    }

    #[test]
    fn newer_version_and_bad_magic_are_named() {
        let mut out = Vec::new();
        put_header(&mut out, MessageKind::Ack, PeerId::new(7), &[]);
        let mut out = seal(out);
        out[2] = PROTOCOL_VERSION + 1;
        assert_eq!(
            decode(&out, &LIMITS).unwrap_err(),
            Error::ProtocolVersion { got: PROTOCOL_VERSION + 1, supported: PROTOCOL_VERSION }
        );
        out[0] = b'X';
        assert!(matches!(decode(&out, &LIMITS), Err(Error::Decode(m)) if m.contains("magic")));
    }

    #[test]
    fn large_messages_are_compressed_and_roundtrip() {
        let acks: Vec<(PeerId, SeqWindow)> =
            (1..100).map(|p| (PeerId::new(1000), SeqWindow::raw(1000 + p % 2, 0))).collect();
        let mut out = Vec::new();
        put_header(&mut out, MessageKind::Ack, PeerId::new(7), &acks);
        let raw = out.len();
        let out = seal(out);
        assert!(out.len() < raw, "{} vs {raw}", out.len());
        assert_eq!(out[3], MessageKind::Ack as u8 | COMPRESSED);
        assert_eq!(decode(&out, &LIMITS).unwrap().acks, acks);
        for cut in 0..out.len() {
            assert!(decode(&out[..cut], &LIMITS).is_err());
        }
        let small = Limits { max_message_bytes: 64, max_id_bytes: 8 };
        assert!(matches!(decode(&out, &small), Err(Error::TooLarge { .. })));
    }

    #[test]
    fn snapshots_carry_a_manifest_and_a_hostile_one_is_refused() {
        let snapshot = |manifest: Option<&Manifest>, births_claimed: Option<u64>| {
            let mut out = Vec::new();
            put_header(&mut out, MessageKind::Snapshot, PeerId::new(7), &[]);
            for x in [7, 1, 1, 0, 5] {
                put_varint(&mut out, x);
            }
            match births_claimed {
                Some(n) => {
                    put_varint(&mut out, n + 1);
                    put_varint(&mut out, 5);
                }
                None => put_manifest(&mut out, manifest),
            }
            put_varint(&mut out, 0);
            seal(out)
        };
        let m = Manifest { own_seq: Seq::new(5), births: vec![(2, 3, 0), (7, 4, 1)] };
        let out = snapshot(Some(&m), None);
        match decode(&out, &LIMITS).unwrap().body {
            Body::Snapshot { manifest: Some(got), .. } => {
                assert_eq!((got.own_seq, got.births), (m.own_seq, m.births.clone()))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            decode(&snapshot(None, None), &LIMITS).unwrap().body,
            Body::Snapshot { manifest: None, .. }
        ));
        for cut in 0..out.len() {
            assert!(decode(&out[..cut], &LIMITS).is_err(), "cut at {cut} accepted");
        }
        let hostile = snapshot(None, Some(u64::MAX / 2));
        assert!(matches!(decode(&hostile, &LIMITS), Err(Error::Decode(m)) if m.contains("manifest")));
    }

    #[test]
    fn receipts_roundtrip_and_truncations_are_rejected() {
        let mut out = Vec::new();
        put_header(&mut out, MessageKind::Receipt, PeerId::new(7), &[]);
        put_varint(&mut out, 42);
        let out = seal(out);
        assert!(matches!(decode(&out, &LIMITS).unwrap().body, Body::Receipt { catchup: 42 }));
        for cut in 0..out.len() {
            assert!(decode(&out[..cut], &LIMITS).is_err(), "cut at {cut} accepted");
        }
    }

    #[test]
    fn hostile_counts_do_not_allocate() {
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC);
        out.push(PROTOCOL_VERSION);
        out.push(KIND_ACK);
        put_varint(&mut out, 1);
        put_varint(&mut out, u64::MAX / 4);
        let out = seal(out);
        assert!(matches!(decode(&out, &LIMITS), Err(Error::Decode(m)) if m.contains("exceeds")));
    }
}

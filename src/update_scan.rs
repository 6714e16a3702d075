//! A strict, allocation-free check of the yrs v1 updates this library itself writes.
//!
//! Decoding a yrs update builds a heap object per block, and dropping it frees them
//! again: for an arena peer that was half its CPU, spent on updates that a newer one
//! supersedes before they are ever integrated (see `storage`). So a delta's update is
//! first scanned here: if it has exactly the shapes our writers produce (one client;
//! GC ranges and map items whose content is one or more `Any` buffers; a delete set of
//! that client only; canonical varints; nothing left over), it is well formed and the
//! bytes are kept as they are, decoded by yrs only when integrated. Anything else falls
//! back to yrs's own decoder, so what is accepted is never more than yrs accepts.
//! The scan also finds the buffer of the update's newest item: the slot record the
//! receiver shows until the update is integrated.

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

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    /// A canonical LEB128 varint of at most `max_bits` bits.
    fn var(&mut self, max_bits: u32) -> Option<u64> {
        let (mut v, mut shift) = (0u64, 0u32);
        loop {
            let b = self.byte()?;
            if shift >= max_bits || (shift > 0 && b == 0) || (shift == 63 && b > 1) {
                return None; // too long, a redundant trailing zero byte, or past 64 bits
            }
            v |= ((b & 0x7f) as u64) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                return (max_bits >= 64 || v >> max_bits == 0).then_some(v);
            }
        }
    }

    fn u32(&mut self) -> Option<u32> {
        self.var(32).map(|v| v as u32)
    }

    fn skip(&mut self, n: u64) -> Option<()> {
        let end = self.pos.checked_add(usize::try_from(n).ok()?)?;
        (end <= self.buf.len()).then(|| self.pos = end)
    }

    fn string(&mut self) -> Option<()> {
        let len = self.u32()? as usize;
        let start = self.pos;
        self.skip(len as u64)?;
        std::str::from_utf8(&self.buf[start..self.pos]).ok().map(|_| ())
    }
}

const GC: u8 = 0;
const CONTENT_DELETED: u8 = 1;
const CONTENT_ANY: u8 = 8;
const HAS_ORIGIN: u8 = 0x80;
const HAS_RIGHT_ORIGIN: u8 = 0x40;
const HAS_PARENT_SUB: u8 = 0x20;
const ANY_BUFFER: u8 = 116;

/// The span of `bytes` if it is a yrs v1 update of the strict shape described above;
/// `None` means "not proven well formed here" (let yrs decide), never "malformed".
pub(crate) fn scan(bytes: &[u8]) -> Option<Span> {
    let mut c = Cursor { buf: bytes, pos: 0 };
    if c.u32()? != 1 {
        return None;
    }
    let blocks = c.u32()?;
    let client = c.var(64)?;
    let start = c.u32()?;
    let mut clock = start;
    let mut last_buffer = None;
    for _ in 0..blocks {
        let info = c.byte()?;
        let len = if info == GC {
            c.u32()?
        } else {
            last_buffer = None;
            if info & HAS_ORIGIN != 0 {
                c.var(64)?;
                c.u32()?;
            }
            if info & HAS_RIGHT_ORIGIN != 0 {
                c.var(64)?;
                c.u32()?;
            }
            if info & (HAS_ORIGIN | HAS_RIGHT_ORIGIN) == 0 {
                match c.u32()? {
                    1 => c.string()?,
                    0 => {
                        c.var(64)?;
                        c.u32()?;
                    }
                    _ => return None,
                }
                if info & HAS_PARENT_SUB != 0 {
                    c.string()?;
                }
            }
            match info & 0x1f {
                CONTENT_DELETED => c.u32()?,
                CONTENT_ANY => {
                    let n = c.u32()?;
                    for _ in 0..n {
                        if c.byte()? != ANY_BUFFER {
                            return None;
                        }
                        let len = c.u32()?;
                        let at = c.pos;
                        c.skip(len as u64)?;
                        last_buffer = (n == 1).then_some((at, len as usize));
                    }
                    n
                }
                _ => return None,
            }
        };
        if len == 0 {
            return None;
        }
        clock = clock.checked_add(len)?;
    }
    let ds_clients = c.u32()?;
    for _ in 0..ds_clients {
        if c.var(64)? != client {
            return None;
        }
        for _ in 0..c.u32()? {
            let (at, len) = (c.u32()?, c.u32()?);
            at.checked_add(len)?;
        }
    }
    (c.pos == bytes.len() && blocks > 0).then_some(Span { client, start, end: clock, last_buffer })
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
            out.push(doc.write(5, &key, meta, &record(i)));
        }
        out
    }

    fn record(i: u32) -> Vec<u8> {
        let mut rec = Vec::new();
        encode_record(&[(3, i)], Some(&Value::Vec3([i as f32, 1.0, 2.0])), &mut rec);
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
            let s = scan(&u).unwrap_or_else(|| panic!("not scanned: {u:?}"));
            assert_eq!(Some(without_buffer(s)), yrs_span(&u));
            let (at, len) = s.last_buffer.expect("a slot record");
            assert_eq!(u[at..at + len], record(i as u32)[..], "write {i}");
        }
    }

    #[test]
    fn other_shapes_are_left_to_yrs() {
        assert_eq!(scan(&[]), None);
        assert_eq!(scan(&[0, 0]), None, "an empty update");
        let mut u = real_updates().remove(1);
        u.push(0);
        assert_eq!(scan(&u), None, "trailing bytes");
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
            if let Some(s) = scan(&u) {
                prop_assert_eq!(Some(without_buffer(s)), yrs_span(&u));
            }
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Some(s) = scan(&bytes) {
                prop_assert_eq!(Some(without_buffer(s)), yrs_span(&bytes));
            }
        }
    }
}

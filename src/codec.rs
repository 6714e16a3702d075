//! The byte codec every format here is built from: LEB128 varints with one strictness,
//! and a bounds-checked reader over untrusted bytes.
//!
//! Used by the wire format (`protocol`), slot records (`register`) and the yrs update
//! scan (`update_scan`), so the three agree on what a varint is. Knows nothing of what
//! the bytes mean; callers name what they read in their own errors.
//!
//! One strictness, canonical: a varint is the shortest encoding of a value that fits
//! 64 bits (no redundant trailing zero group, nothing past bit 63). `put_varint` writes
//! only that, and so does yrs (lib0), so refusing the rest costs no valid input and
//! gives every value exactly one encoding.

use std::fmt;

/// Bytes of `x` as a varint (what `put_varint` appends).
pub(crate) fn varint_len(x: u64) -> usize {
    (64 - (x | 1).leading_zeros() as usize).div_ceil(7)
}

/// Appends `v` as a canonical LEB128 varint (1 to 10 bytes).
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Why a read failed, and at which byte offset of the reader's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Malformed {
    pub at: usize,
    pub why: Why,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Why {
    /// The buffer ended first.
    Truncated,
    /// A varint with a redundant trailing zero group, or wider than 64 bits.
    NotCanonical,
    /// A varint wider than the field it fills.
    TooWide { bits: u32 },
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.why {
            Why::Truncated => write!(f, "truncated at byte {}", self.at),
            Why::NotCanonical => write!(f, "not a canonical varint at byte {}", self.at),
            Why::TooWide { bits } => write!(f, "varint at byte {} does not fit {bits} bits", self.at),
        }
    }
}

/// Reads an untrusted buffer front to back; every read is bounds-checked and a failed
/// read leaves the position where it was.
#[derive(Clone, Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    /// A reader of `buf` starting at byte `pos` (bytes before it were read elsewhere).
    pub fn at(buf: &'a [u8], pos: usize) -> Reader<'a> {
        Reader { buf, pos: pos.min(buf.len()) }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The bytes not read yet, consumed.
    pub fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }

    fn fail<T>(&self, at: usize, why: Why) -> Result<T, Malformed> {
        Err(Malformed { at, why })
    }

    pub fn byte(&mut self) -> Result<u8, Malformed> {
        let b = match self.buf.get(self.pos) {
            Some(&b) => b,
            None => return self.fail(self.pos, Why::Truncated),
        };
        self.pos += 1;
        Ok(b)
    }

    /// The next `len` bytes, borrowed.
    pub fn bytes(&mut self, len: u64) -> Result<&'a [u8], Malformed> {
        let end =
            usize::try_from(len).ok().and_then(|n| self.pos.checked_add(n)).filter(|&e| e <= self.buf.len());
        let Some(end) = end else { return self.fail(self.pos, Why::Truncated) };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// A canonical varint of up to 64 bits.
    pub fn varint(&mut self) -> Result<u64, Malformed> {
        self.varint_bits(64)
    }

    /// A canonical varint whose value fits `bits` bits (1..=64).
    pub fn varint_bits(&mut self, bits: u32) -> Result<u64, Malformed> {
        let start = self.pos;
        let (mut v, mut shift) = (0u64, 0u32);
        loop {
            let b = match self.byte() {
                Ok(b) => b,
                Err(e) => {
                    self.pos = start;
                    return Err(e);
                }
            };
            if shift > 0 && b == 0 || shift == 63 && b > 1 {
                self.pos = start;
                return self.fail(start, Why::NotCanonical);
            }
            v |= ((b & 0x7f) as u64) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        if bits < 64 && v >> bits != 0 {
            self.pos = start;
            return self.fail(start, Why::TooWide { bits });
        }
        Ok(v)
    }

    pub fn u32(&mut self) -> Result<u32, Malformed> {
        self.varint_bits(32).map(|v| v as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_len_is_what_put_varint_writes() {
        for x in [0u64, 1, 127, 128, 16_383, 16_384, u32::MAX as u64, 1 << 53, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, x);
            assert_eq!(varint_len(x), out.len(), "{x}");
        }
    }
    use proptest::prelude::*;

    #[test]
    fn varints_roundtrip_at_every_width() {
        for v in [0u64, 1, 127, 128, 300, 16_383, 16_384, u32::MAX as u64, 1 << 53, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            let mut r = Reader::new(&out);
            assert_eq!(r.varint(), Ok(v));
            assert!(r.is_empty());
        }
    }

    #[test]
    fn only_the_canonical_encoding_is_read() {
        let bad: [(&[u8], Why); 5] = [
            (&[0x80, 0x00], Why::NotCanonical), // 0 with a redundant zero group
            (&[0xff, 0x80, 0x00], Why::NotCanonical),
            (&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], Why::NotCanonical), // bit 64
            (&[0x80], Why::Truncated),
            (&[], Why::Truncated),
        ];
        for (bytes, why) in bad {
            let mut r = Reader::new(bytes);
            assert_eq!(r.varint().map_err(|e| e.why), Err(why), "{bytes:02x?}");
            assert_eq!(r.pos(), 0, "a failed read consumes nothing");
        }
        let mut r = Reader::new(&[0x80, 0x80, 0x04]); // 1 << 16
        assert_eq!(r.varint_bits(16).map_err(|e| e.why), Err(Why::TooWide { bits: 16 }));
        assert_eq!(r.varint_bits(17), Ok(1 << 16));
    }

    #[test]
    fn bytes_are_bounds_checked() {
        let mut r = Reader::at(&[1, 2, 3], 1);
        assert_eq!(r.bytes(3).map_err(|e| e.why), Err(Why::Truncated));
        assert_eq!(r.bytes(u64::MAX).map_err(|e| e.why), Err(Why::Truncated));
        assert_eq!(r.bytes(2), Ok(&[2u8, 3][..]));
        assert_eq!(r.byte().map_err(|e| e.why), Err(Why::Truncated));
    }

    proptest! {
        #[test]
        fn any_bytes_read_without_panic_and_reencode_identically(bytes in proptest::collection::vec(any::<u8>(), 0..24)) {
            let mut r = Reader::new(&bytes);
            while let Ok(v) = r.varint() {
                let mut again = Vec::new();
                put_varint(&mut again, v);
                let end = r.pos();
                prop_assert_eq!(&bytes[end - again.len()..end], &again[..]);
            }
        }
    }
}

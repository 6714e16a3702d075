//! Which messages of one stream a peer has received: a contiguous prefix plus a window.
//!
//! Owns the set arithmetic behind acknowledgements. Deltas are applied as they arrive,
//! in any order, so a peer can hold seq 9 while seq 8 is still missing; the window
//! records that precisely (like TCP selective acks), which lets a sender see a gap the
//! moment a later message lands and lets convergence count seq 9 as delivered.

use crate::ids::Seq;

/// All seqs `<= upto`, plus each `upto + 1 + i` whose bit `i` is set in `above`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SeqWindow {
    pub upto: Seq,
    pub above: u64,
}

impl SeqWindow {
    pub fn has(&self, seq: Seq) -> bool {
        let (seq, upto) = (seq.get(), self.upto.get());
        seq <= upto || (seq - upto <= 64 && self.above >> (seq - upto - 1) & 1 == 1)
    }

    /// Records `seq`; false if it was already recorded or lies beyond the window.
    pub fn mark(&mut self, seq: Seq) -> bool {
        if self.has(seq) || seq.get() - self.upto.get() > 64 {
            return false;
        }
        self.above |= 1 << (seq.get() - self.upto.get() - 1);
        self.normalize();
        true
    }

    /// Everything up to `seq` is received.
    pub fn advance_to(&mut self, seq: Seq) {
        if seq <= self.upto {
            return;
        }
        let shift = seq.get() - self.upto.get();
        self.above = if shift >= 64 { 0 } else { self.above >> shift };
        self.upto = seq;
        self.normalize();
    }

    /// Union with another report of the same peer (reports may arrive out of order).
    pub fn merge(&mut self, other: SeqWindow) {
        let mut merged = *self;
        merged.advance_to(other.upto);
        for i in 0..64 {
            if other.above >> i & 1 == 1 {
                merged.mark(Seq::new(other.upto.get() + 1 + i));
            }
        }
        *self = merged;
    }

    /// Whether it claims any seq above `seq`.
    pub fn claims_beyond(&self, seq: Seq) -> bool {
        self.upto > seq || self.highest_saturating() > seq
    }

    /// `highest`, for reports that may come from a hostile peer.
    pub fn highest_saturating(&self) -> Seq {
        Seq::new(self.upto.get().saturating_add(64 - self.above.leading_zeros() as u64))
    }

    /// The highest seq received.
    pub fn highest(&self) -> Seq {
        Seq::new(self.upto.get() + (64 - self.above.leading_zeros() as u64))
    }

    /// Whether something after a missing seq has arrived (a gap, most likely a loss).
    pub fn has_gap(&self) -> bool {
        self.above != 0
    }

    /// A window from raw numbers (tests).
    #[cfg(test)]
    pub fn raw(upto: u64, above: u64) -> SeqWindow {
        SeqWindow { upto: Seq::new(upto), above }
    }

    fn normalize(&mut self) {
        let run = self.above.trailing_ones() as u64;
        if run > 0 {
            self.upto = Seq::new(self.upto.get() + run);
            self.above = if run >= 64 { 0 } else { self.above >> run };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_order_marks_then_fills_the_gap() {
        let mut w = SeqWindow::default();
        assert!(w.mark(Seq::new(2)) && w.mark(Seq::new(3)));
        assert_eq!((w.upto, w.has_gap()), (Seq::new(0), true));
        assert!(w.has(Seq::new(3)) && !w.has(Seq::new(1)));
        assert!(!w.mark(Seq::new(3)), "duplicate");
        assert!(w.mark(Seq::new(1)));
        assert_eq!(w, SeqWindow { upto: Seq::new(3), above: 0 });
        assert!(!w.mark(Seq::new(3 + 65)), "beyond the window");
    }

    #[test]
    fn highest_counts_the_window() {
        let mut w = SeqWindow::default();
        assert_eq!(w.highest(), Seq::new(0));
        w.mark(Seq::new(3));
        assert_eq!((w.upto, w.highest()), (Seq::new(0), Seq::new(3)));
        w.mark(Seq::new(1));
        w.mark(Seq::new(2));
        assert_eq!((w.upto, w.highest()), (Seq::new(3), Seq::new(3)));
        w.mark(Seq::new(67));
        assert_eq!(w.highest(), Seq::new(67));
    }

    #[test]
    fn advance_and_merge() {
        let mut w = SeqWindow { upto: Seq::new(10), above: 0b101 };
        w.advance_to(Seq::new(11));
        assert_eq!(
            w,
            SeqWindow { upto: Seq::new(11), above: 0b10 },
            "13 stays recorded beyond the gap at 12"
        );
        w.advance_to(Seq::new(12));
        assert_eq!(w, SeqWindow { upto: Seq::new(13), above: 0 });
        let mut a = SeqWindow { upto: Seq::new(5), above: 0b10 };
        a.merge(SeqWindow { upto: Seq::new(3), above: 0b101 });
        assert_eq!(a, SeqWindow { upto: Seq::new(7), above: 0 });
        let mut b = SeqWindow { upto: Seq::new(3), above: 0 };
        b.merge(SeqWindow { upto: Seq::new(100), above: 1 << 63 });
        assert_eq!(b, SeqWindow { upto: Seq::new(100), above: 1 << 63 });
        assert!(b.has(Seq::new(164)) && !b.has(Seq::new(163)));
    }
}

//! Typed ids and quantities of the core, so a sequence number cannot be passed where a
//! peer id goes, nor a value's clock where a stream's seq goes. Each is a plain integer
//! at run time; the public API and the wire keep bare integers and convert at the edge.
//!
//! - [`PeerId`]: a member of the session, 1..2^53 (it doubles as the yrs client id).
//! - [`Seq`]: a message number of one peer's stream, from 1; `Seq::NONE` (0) is "none".
//! - [`Clock`]: a writer's yrs clock in one value's document.
//! - [`Millis`]: an instant of host time (the milliseconds `tick` takes). Durations stay
//!   `u64` milliseconds: `Millis + u64` is a later instant, `since` a duration.
//! - [`ValueIndex`]: a value's place in its context's table.

use crate::error::Error;
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident($raw:ty)) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub(crate) struct $name($raw);

        impl $name {
            pub const fn new(raw: $raw) -> $name {
                $name(raw)
            }

            pub const fn get(self) -> $raw {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A member of the session (see the module comment).
    PeerId(u64)
);
id_type!(
    /// A message number of one peer's stream.
    Seq(u64)
);
id_type!(
    /// A writer's yrs clock in one value's document.
    Clock(u32)
);
id_type!(
    /// An instant of host time, in milliseconds.
    Millis(u64)
);
id_type!(
    /// A value's place in its context's table.
    ValueIndex(u32)
);

impl PeerId {
    /// `raw` as a peer id: yrs client ids are 53 bits and 0 is nobody.
    pub fn checked(raw: u64) -> Result<PeerId, Error> {
        if raw == 0 || raw >= (1 << 53) {
            return Err(Error::BadPeerId(raw));
        }
        Ok(PeerId(raw))
    }
}

impl Seq {
    /// No message (a stream's seqs start at 1).
    pub(crate) const NONE: Seq = Seq(0);

    pub fn next(self) -> Seq {
        Seq(self.0 + 1)
    }

    /// How many seqs `self` is ahead of `base` (0 if not ahead).
    pub fn ahead_of(self, base: Seq) -> u64 {
        self.0.saturating_sub(base.0)
    }
}

impl Clock {
    pub(crate) const ZERO: Clock = Clock(0);

    /// The clock `n` items later.
    pub fn after(self, n: u32) -> Clock {
        Clock(self.0 + n)
    }
}

impl Millis {
    pub(crate) const ZERO: Millis = Millis(0);

    /// Milliseconds from `earlier` to `self` (0 if `earlier` is later).
    pub fn since(self, earlier: Millis) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl std::ops::Add<u64> for Millis {
    type Output = Millis;
    fn add(self, ms: u64) -> Millis {
        Millis(self.0.saturating_add(ms))
    }
}

impl ValueIndex {
    /// Its position in the table's vector.
    pub fn slot(self) -> usize {
        self.0 as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_ids_are_checked() {
        assert!(PeerId::checked(0).is_err());
        assert!(PeerId::checked(1 << 53).is_err());
        assert_eq!(PeerId::checked((1 << 53) - 1).unwrap().get(), (1 << 53) - 1);
    }

    #[test]
    fn instants_and_durations() {
        let t = Millis::new(100);
        assert_eq!((t + 50).since(t), 50);
        assert_eq!(t.since(t + 50), 0);
        assert_eq!(Millis::new(u64::MAX) + 1, Millis::new(u64::MAX));
        assert_eq!(Seq::new(9).ahead_of(Seq::new(4)), 5);
        assert_eq!(Seq::new(4).ahead_of(Seq::new(9)), 0);
        assert_eq!(Clock::ZERO.after(2), Clock::new(2));
    }
}

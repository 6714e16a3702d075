//! Who is in the session, what each member has acknowledged, and when to catch it up.
//!
//! Owns the member table: liveness (a member silent for longer than the peer timeout
//! stops blocking convergence), ack vectors (per stream, the highest contiguous seq the
//! member applied), round-trip estimates and catch-up backoff. The host adds and removes
//! members; this module never sends anything itself.

use crate::seqwindow::SeqWindow;
use rustc_hash::FxHashMap as HashMap;

/// Longest wait between catch-ups to one member: under heavy loss a lost catch-up is
/// retried within this long.
const MAX_BACKOFF_MS: u64 = 1000;

/// The catch-up backoff of one stream to one member.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Backoff {
    /// Earliest host time (ms) the next catch-up may go out.
    pub next_ms: u64,
    /// The current backoff (ms), doubled per catch-up up to a limit.
    pub backoff_ms: u64,
    /// The seq the last catch-up brought the member to.
    pub target: u64,
}

pub(crate) struct Member {
    pub id: u64,
    pub last_heard_ms: u64,
    pub active: bool,
    /// Stream peer id -> which seqs of that stream this member has received.
    pub acks: HashMap<u64, SeqWindow>,
    /// Smoothed round trip in ms; `None` until the first sample.
    pub srtt_ms: Option<f64>,
    /// Per stream: when this member may be caught up again on it.
    pub catchup: HashMap<u64, Backoff>,
    /// Per forwarded stream: since when this member has been behind us on it.
    pub behind_since: HashMap<u64, u64>,
    /// Our own stream's seq when the member was added: it needs a snapshot of what came
    /// before, but not of what it receives live.
    pub joined_at_seq: u64,
    /// Added since the last tick: its silence is counted from the next tick's time, not
    /// from a host clock that may have stood still while we had no members.
    pub just_added: bool,
}

impl Member {
    pub fn new(id: u64, now: u64, joined_at_seq: u64) -> Member {
        Member {
            id,
            last_heard_ms: now,
            active: true,
            acks: HashMap::default(),
            srtt_ms: None,
            catchup: HashMap::default(),
            behind_since: HashMap::default(),
            joined_at_seq,
            just_added: true,
        }
    }

    /// Highest seq of `stream` up to which this member has received everything.
    pub fn ack(&self, stream: u64) -> u64 {
        self.acks.get(&stream).map_or(0, |w| w.upto)
    }

    pub fn has(&self, stream: u64, seq: u64) -> bool {
        seq == 0 || self.acks.get(&stream).is_some_and(|w| w.has(seq))
    }

    /// Retransmission timeout: two round trips plus two ticks, within 30 ms..1 s; 200 ms
    /// before the first sample.
    pub fn rto_ms(&self, tick_ms: u64) -> u64 {
        match self.srtt_ms {
            Some(rtt) => ((rtt * 2.0) as u64 + 2 * tick_ms).clamp(30, 1000),
            None => 200,
        }
    }

    /// How long after sending a seq its loss is assumed once a later seq arrived: one
    /// round trip plus two ticks (reordering within that is not a loss).
    pub fn gap_wait_ms(&self, tick_ms: u64) -> u64 {
        self.srtt_ms.map_or(100, |r| r as u64) + 2 * tick_ms
    }

    pub fn sample_rtt(&mut self, ms: u64) {
        let ms = ms as f64;
        self.srtt_ms = Some(match self.srtt_ms {
            Some(s) => s * 0.875 + ms * 0.125,
            None => ms,
        });
    }

    /// Whether a catch-up on `stream` bringing the member to `target` may go now; if so,
    /// arms the backoff (which doubles while catch-ups go unacknowledged).
    pub fn may_catch_up(&mut self, stream: u64, now: u64, rto: u64, target: u64) -> bool {
        let Backoff { next_ms: next, backoff_ms: backoff, .. } =
            self.catchup.get(&stream).copied().unwrap_or(Backoff { next_ms: 0, backoff_ms: rto, target: 0 });
        if now < next {
            return false;
        }
        let backoff = if next == 0 { rto } else { (backoff * 2).min(MAX_BACKOFF_MS) };
        self.catchup.insert(stream, Backoff { next_ms: now + backoff, backoff_ms: backoff, target });
        true
    }

    /// The member's ack of `stream` reached `upto`: a catch-up it has received no longer
    /// holds back the next one (so a later, unrelated loss recovers just as fast).
    pub fn acked(&mut self, stream: u64, upto: u64) {
        if self.catchup.get(&stream).is_some_and(|b| upto >= b.target) {
            self.catchup.remove(&stream);
        }
    }

    /// The member caught up on `stream`: the next lag starts with a short timeout again.
    pub fn caught_up(&mut self, stream: u64) {
        self.catchup.remove(&stream);
        self.behind_since.remove(&stream);
    }
}

#[derive(Default)]
pub(crate) struct Membership {
    pub members: Vec<Member>,
}

impl Membership {
    pub fn get(&self, id: u64) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.id == id)
    }

    pub fn any_active(&self) -> bool {
        self.members.iter().any(|m| m.active)
    }

    /// The lowest contiguous ack of `w`'s stream among active members other than `w`
    /// itself (`u64::MAX` when there is none).
    pub fn min_ack(&self, w: u64) -> u64 {
        self.members.iter().filter(|m| m.active && m.id != w).map(|m| m.ack(w)).min().unwrap_or(u64::MAX)
    }

    /// Whether every member, active or not, other than `w` has received seq `seq`.
    pub fn everyone_has(&self, w: u64, seq: u64) -> bool {
        self.members.iter().filter(|m| m.id != w).all(|m| m.has(w, seq))
    }

    /// Whether every active member other than `w` has received seq `seq` of `w`'s stream.
    pub fn all_have(&self, w: u64, seq: u64) -> bool {
        self.members.iter().filter(|m| m.active && m.id != w).all(|m| m.has(w, seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catch_up_backs_off_and_resets() {
        let mut m = Member::new(2, 0, 0);
        assert!(m.may_catch_up(1, 100, 50, 7));
        assert!(!m.may_catch_up(1, 120, 50, 7));
        assert!(m.may_catch_up(1, 150, 50, 7));
        assert!(!m.may_catch_up(1, 200, 50, 9), "second backoff is 100 ms");
        m.caught_up(1);
        assert!(m.may_catch_up(1, 201, 50, 9));
        m.acked(1, 8);
        assert!(!m.may_catch_up(1, 210, 50, 12), "ack below the target keeps the backoff");
        m.acked(1, 9);
        assert!(m.may_catch_up(1, 211, 50, 12), "the catch-up arrived: no backoff");
    }

    #[test]
    fn min_ack_ignores_inactive_members_and_the_writer() {
        let mut ms = Membership::default();
        ms.members.push(Member::new(2, 0, 0));
        ms.members.push(Member::new(3, 0, 0));
        ms.members[0].acks.insert(1, SeqWindow { upto: 5, above: 0 });
        ms.members[1].acks.insert(1, SeqWindow { upto: 2, above: 0b10 });
        assert_eq!(ms.min_ack(1), 2);
        assert!(ms.all_have(1, 4) && !ms.all_have(1, 3));
        assert!(ms.all_have(1, 4) && !ms.all_have(1, 3));
        ms.members[1].active = false;
        assert_eq!(ms.min_ack(1), 5);
        assert_eq!(ms.min_ack(2), u64::MAX);
    }
}

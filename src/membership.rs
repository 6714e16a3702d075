//! Who is in the session, what each member has acknowledged, and when to catch it up.
//!
//! Owns the member table: liveness (a member silent for longer than the peer timeout
//! stops blocking convergence), ack vectors (per stream, the highest contiguous seq the
//! member applied), round-trip estimates and catch-up backoff. The host adds and removes
//! members; this module never sends anything itself.

use crate::ids::{Millis, PeerId, Seq};
use crate::seqwindow::SeqWindow;
use rustc_hash::FxHashMap as HashMap;

/// Longest wait between catch-ups to one member: under heavy loss a lost catch-up is
/// retried within this long.
const MAX_BACKOFF_MS: u64 = 1000;

/// The catch-up backoff of one stream to one member.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Backoff {
    /// Earliest host time the next catch-up may go out.
    pub next_ms: Millis,
    /// The current backoff (ms), doubled per catch-up up to a limit.
    pub backoff_ms: u64,
    /// The seq the last catch-up brought the member to.
    pub target: Seq,
}

pub(crate) struct Member {
    pub id: PeerId,
    pub last_heard_ms: Millis,
    pub active: bool,
    /// Stream peer id -> which seqs of that stream this member has received.
    pub acks: HashMap<PeerId, SeqWindow>,
    /// Smoothed round trip in ms; `None` until the first sample.
    pub srtt_ms: Option<f64>,
    /// Per stream: when this member may be caught up again on it.
    pub catchup: HashMap<PeerId, Backoff>,
    /// Per forwarded stream: since when this member has been behind us on it.
    pub behind_since: HashMap<PeerId, Millis>,
    /// Our own stream's seq when the member was added: it needs a snapshot of what came
    /// before, but not of what it receives live.
    pub joined_at_seq: Seq,
    /// Added since the last tick: its silence is counted from the next tick's time, not
    /// from a host clock that may have stood still while we had no members.
    pub just_added: bool,
    /// It joined (or came back) and has not confirmed our manifest of table entries
    /// (see `sync`): our catch-ups to it carry one, and one is sent on its own, again
    /// after each retransmission timeout, until its receipt names one of them.
    pub needs_manifest: bool,
    /// (catch-up id, when) of the last catch-up that carried our manifest to it.
    pub manifest_sent: Option<(u64, Millis)>,
}

impl Member {
    pub fn new(id: PeerId, now: Millis, joined_at_seq: Seq) -> Member {
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
            needs_manifest: true,
            manifest_sent: None,
        }
    }

    /// Highest seq of `stream` up to which this member has received everything.
    pub fn ack(&self, stream: PeerId) -> Seq {
        self.acks.get(&stream).map_or(Seq::NONE, |w| w.upto)
    }

    pub fn has(&self, stream: PeerId, seq: Seq) -> bool {
        seq == Seq::NONE || self.acks.get(&stream).is_some_and(|w| w.has(seq))
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
    pub fn may_catch_up(&mut self, stream: PeerId, now: Millis, rto: u64, target: Seq) -> bool {
        let Backoff { next_ms: next, backoff_ms: backoff, .. } = self
            .catchup
            .get(&stream)
            .copied()
            .unwrap_or(Backoff { next_ms: Millis::ZERO, backoff_ms: rto, target: Seq::NONE });
        if now < next {
            return false;
        }
        let backoff = if next == Millis::ZERO { rto } else { (backoff * 2).min(MAX_BACKOFF_MS) };
        self.catchup.insert(stream, Backoff { next_ms: now + backoff, backoff_ms: backoff, target });
        true
    }

    /// The member's ack of `stream` reached `upto`: a catch-up it has received no longer
    /// holds back the next one (so a later, unrelated loss recovers just as fast).
    pub fn acked(&mut self, stream: PeerId, upto: Seq) {
        if self.catchup.get(&stream).is_some_and(|b| upto >= b.target) {
            self.catchup.remove(&stream);
        }
    }

    /// The member caught up on `stream`: the next lag starts with a short timeout again.
    pub fn caught_up(&mut self, stream: PeerId) {
        self.catchup.remove(&stream);
        self.behind_since.remove(&stream);
    }
}

#[derive(Default)]
pub(crate) struct Membership {
    pub members: Vec<Member>,
}

impl Membership {
    pub fn get(&self, id: PeerId) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    pub fn get_mut(&mut self, id: PeerId) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.id == id)
    }

    /// Adds member `id` (our stream stood at `my_seq`); false if it was one already.
    pub fn add(&mut self, id: PeerId, now: Millis, my_seq: Seq) -> bool {
        if self.get(id).is_some() {
            return false;
        }
        self.members.push(Member::new(id, now, my_seq));
        true
    }

    /// Removes member `id`; false if it was not one.
    pub fn remove(&mut self, id: PeerId) -> bool {
        let before = self.members.len();
        self.members.retain(|m| m.id != id);
        self.members.len() != before
    }

    /// Marks members heard within `timeout_ms` of `now` active and the others not.
    /// True if one came back from silence (a healed partition): it is then caught up
    /// at once, not after the backoff its silence built up, and every value must be
    /// checked against what it holds.
    pub fn update_liveness(&mut self, now: Millis, timeout_ms: u64) -> bool {
        let mut revived = false;
        for m in &mut self.members {
            if m.just_added {
                m.just_added = false;
                m.last_heard_ms = now;
            }
            let active = now.since(m.last_heard_ms) <= timeout_ms;
            if active && !m.active {
                m.catchup.clear();
                m.behind_since.clear();
                revived = true;
            }
            m.active = active;
        }
        revived
    }

    pub fn any_active(&self) -> bool {
        self.members.iter().any(|m| m.active)
    }

    /// The lowest contiguous ack of `w`'s stream among active members other than `w`
    /// itself (`Seq(u64::MAX)` when there is none).
    pub fn min_ack(&self, w: PeerId) -> Seq {
        self.members
            .iter()
            .filter(|m| m.active && m.id != w)
            .map(|m| m.ack(w))
            .min()
            .unwrap_or(Seq::new(u64::MAX))
    }

    /// Whether every member, active or not, other than `w` has received seq `seq`.
    pub fn everyone_has(&self, w: PeerId, seq: Seq) -> bool {
        self.members.iter().filter(|m| m.id != w).all(|m| m.has(w, seq))
    }

    /// Whether every active member other than `w` has received seq `seq` of `w`'s stream.
    pub fn all_have(&self, w: PeerId, seq: Seq) -> bool {
        self.members.iter().filter(|m| m.active && m.id != w).all(|m| m.has(w, seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catch_up_backs_off_and_resets() {
        let (p, t, s) = (PeerId::new, Millis::new, Seq::new);
        let mut m = Member::new(p(2), t(0), s(0));
        assert!(m.may_catch_up(p(1), t(100), 50, s(7)));
        assert!(!m.may_catch_up(p(1), t(120), 50, s(7)));
        assert!(m.may_catch_up(p(1), t(150), 50, s(7)));
        assert!(!m.may_catch_up(p(1), t(200), 50, s(9)), "second backoff is 100 ms");
        m.caught_up(p(1));
        assert!(m.may_catch_up(p(1), t(201), 50, s(9)));
        m.acked(p(1), s(8));
        assert!(!m.may_catch_up(p(1), t(210), 50, s(12)), "ack below the target keeps the backoff");
        m.acked(p(1), s(9));
        assert!(m.may_catch_up(p(1), t(211), 50, s(12)), "the catch-up arrived: no backoff");
    }

    #[test]
    fn min_ack_ignores_inactive_members_and_the_writer() {
        let (p, s) = (PeerId::new, Seq::new);
        let mut ms = Membership::default();
        assert!(ms.add(p(2), Millis::ZERO, s(0)));
        assert!(ms.add(p(3), Millis::ZERO, s(0)));
        assert!(!ms.add(p(3), Millis::ZERO, s(0)), "once");
        ms.members[0].acks.insert(p(1), SeqWindow { upto: s(5), above: 0 });
        ms.members[1].acks.insert(p(1), SeqWindow { upto: s(2), above: 0b10 });
        assert_eq!(ms.min_ack(p(1)), s(2));
        assert!(ms.all_have(p(1), s(4)) && !ms.all_have(p(1), s(3)));
        ms.members[1].active = false;
        assert_eq!(ms.min_ack(p(1)), s(5));
        assert_eq!(ms.min_ack(p(2)), s(u64::MAX));
        assert!(ms.remove(p(3)) && !ms.remove(p(3)));
    }

    /// A member silent past the timeout goes inactive; heard again, it is revived with
    /// its catch-up backoff cleared.
    #[test]
    fn liveness_follows_silence() {
        let (p, t) = (PeerId::new, Millis::new);
        let mut ms = Membership::default();
        ms.add(p(2), t(0), Seq::NONE);
        assert!(!ms.update_liveness(t(1000), 3000), "just added: heard now");
        assert_eq!(ms.members[0].last_heard_ms, t(1000));
        assert!(!ms.update_liveness(t(4001), 3000));
        assert!(!ms.any_active());
        ms.members[0].catchup.insert(p(1), Backoff { next_ms: t(9000), backoff_ms: 1000, target: Seq::NONE });
        ms.members[0].last_heard_ms = t(5000);
        assert!(ms.update_liveness(t(5000), 3000));
        assert!(ms.any_active() && ms.members[0].catchup.is_empty());
    }
}

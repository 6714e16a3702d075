//! The multi-writer register behind every value: one slot per writer, resolved by policy.
//!
//! Each peer that ever wrote a value owns one slot holding its latest write, the yrs
//! clock that identifies that write, and what the writer had seen of the other slots
//! (their clocks) when it wrote. The resolved value is a pure function of the slots:
//! writes some other slot has seen are superseded; the rest (the concurrent frontier)
//! are merged by the policy. Because it depends on the slot set only, every peer holding
//! the same slots reads the same value, whatever the delivery order.
//!
//! An owner-only value (`ValueOptions::owner`) is resolved differently: its records say
//! under which ownership they were written, and only the record that the ownership walk
//! (`owner`) ends at counts. See `Own`.
//!
//! Owns the slot record codec and resolution; it never touches yrs or the network.

use crate::codec::{self, put_varint};
use crate::error::Error;
use crate::ids::{Clock, PeerId};
use crate::policy::{self, Candidate, MergeFn, Policy};
use crate::value::{Value, ValueType};

/// The latest write of one writer to one value.
#[derive(Clone, Debug)]
pub(crate) struct Slot {
    pub writer: PeerId,
    /// The writer's yrs clock in the value's document after this write; identifies it.
    pub clock: Clock,
    /// Clocks of the other writers' slots this write had seen. Empty for single-writer
    /// values, so they allocate nothing.
    pub seen: Box<[(PeerId, Clock)]>,
    /// `None` is a removal (tombstone).
    pub value: Option<Value>,
    /// Whether the record is a touch (`Context::touch`), and what it weighs.
    pub touch: Touch,
    /// The ownership it was written under (owner-only values only).
    pub own: Option<Own>,
}

/// The ownership an owner-only value's record was written under: in `epoch`, `owner`
/// owns the value. A record whose `owner` is its writer is that owner's write (or its
/// claim of an epoch whose owner left); one naming another peer is a grant, written by
/// the owner of `epoch - 1`. Each record is in its writer's own slot, which receipt
/// checks against the authenticated sender (see `update_scan`), so a grant or claim
/// says who made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Own {
    pub epoch: u32,
    pub owner: PeerId,
}

/// Who owns an owner-only value, as its slots say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Owned {
    pub own: Own,
    /// The slot (by writer) whose record the value reads: the owner's own record in
    /// this epoch, else the grant or claim that began it. `None`: the first owner never
    /// wrote.
    pub decided_by: Option<PeerId>,
}

/// Follows an owner-only value's ownership from its first owner: the owner's own word
/// moves it on (a grant, or a later epoch it owned); when the owner is not `present`
/// (not a member of this replica's session) the lowest-id writer whose record names a
/// later epoch and has seen the owner's latest record takes it (a claim, made by the
/// heir when the owner left; an owner that wrote again since has shown it was not gone,
/// so an old claim never brings back an old value). Each step raises the epoch, so it
/// ends; it is a function of the slots and the roster, so replicas that hold the same
/// slots and agree on who is present agree on the owner. A writer off this path is
/// ignored, however it wrote.
pub(crate) fn owner(first: PeerId, slots: &[Slot], present: impl Fn(PeerId) -> bool) -> Owned {
    let mut cur = Own { epoch: 0, owner: first };
    let mut decided_by = None;
    let find = |w: PeerId| slots.binary_search_by_key(&w, |s| s.writer).ok().map(|k| &slots[k]);
    loop {
        if let Some(s) = find(cur.owner) {
            match s.own {
                Some(o) if o.epoch > cur.epoch => {
                    cur = o;
                    decided_by = Some(s.writer);
                    continue;
                }
                Some(o) if o == cur => decided_by = Some(s.writer),
                _ => {}
            }
        }
        if present(cur.owner) {
            break;
        }
        let last = find(cur.owner);
        let heir = slots
            .iter()
            .filter(|s| s.writer != cur.owner && s.own.is_some_and(|o| o.epoch > cur.epoch))
            .filter(|s| last.is_none_or(|l| s.has_seen(l)))
            .min_by_key(|s| s.writer);
        match heir {
            Some(s) => {
                cur = s.own.expect("filtered on own");
                decided_by = Some(s.writer);
            }
            None => break,
        }
    }
    Owned { own: cur, decided_by }
}

/// Resolves an owner-only value: the record the walk decided on, nothing else.
pub(crate) fn resolve_owned(slots: &[Slot], ty: ValueType, owned: &Owned) -> Resolved {
    let value = owned
        .decided_by
        .and_then(|w| slots.iter().find(|s| s.writer == w))
        .filter(|s| s.counts())
        .and_then(|s| s.value.clone())
        .filter(|v| v.value_type() == ty);
    Resolved { value, concurrent: 1, fell_back: false }
}

/// How an entry of an owner-only collection resolved (see `resolve_guarded`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Guard {
    /// Some record counts (else the entry holds nothing yet: not even a removal).
    pub any: bool,
    /// Every record that counts is of a settled epoch (`Owners::settled`): no change of
    /// who is present can make it stop counting, so a removal may be forgotten.
    pub settled: bool,
    /// This replica's own record counts.
    pub mine: bool,
}

/// Whether a record of an owner-only collection's entry counts, `owners[e]` being the
/// collection's owner in epoch `e` (0: unknown here): it must name an epoch its writer
/// owned. `None` while that epoch is not known here (its grant has not arrived).
pub(crate) fn counts_under(s: &Slot, owners: &[u64]) -> Option<bool> {
    let own = match s.own {
        None => return Some(false),
        Some(o) => o,
    };
    let owner = *owners.get(own.epoch as usize)?;
    Some(own.owner == s.writer && owner == s.writer.get())
}

/// Resolves an entry of an owner-only collection: the records that count
/// (`counts_under`), resolved as any entry's (a later write supersedes what it saw, a
/// removal wins over a concurrent write, the policy merges concurrent writes). With one
/// owner at a time, writes are concurrent only when a new owner wrote before an old
/// owner's write reached it. A non-owner's record is never read.
pub(crate) fn resolve_guarded(
    slots: &[Slot],
    ty: ValueType,
    policy: &Policy,
    custom: Option<&MergeFn>,
    owners: &crate::collection::Owners,
    me: PeerId,
) -> (Resolved, Guard) {
    let counting: Vec<Slot> =
        slots.iter().filter(|s| counts_under(s, &owners.ids) == Some(true)).cloned().collect();
    let guard = Guard {
        any: !counting.is_empty(),
        settled: counting.iter().all(|s| s.own.is_some_and(|o| (o.epoch as usize) < owners.settled)),
        mine: counting.iter().any(|s| s.writer == me),
    };
    (resolve(&counting, ty, policy, custom), guard)
}

/// A touch re-announces a value: receivers tell their host, and resolution must come out
/// exactly as if it had not happened (a touch racing a write must not revert or average
/// it). So a pure touch is its writer's previous record again, weighed at that record's
/// clock, or weighs nothing at all when its writer never wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Touch {
    /// An ordinary write.
    #[default]
    No,
    /// A write that also touches (a `set` and a `touch` in one tick): weighed as a write.
    WithWrite,
    /// The writer's record at this clock, re-announced: value and seen are that record's.
    Of(Clock),
    /// A touch by a peer with no write of its own: not a candidate at all.
    Only,
}

impl Slot {
    /// The clock resolution weighs this record at: a pure touch counts as the record it
    /// repeats, so writes that had seen that record still supersede it.
    pub fn weighed_clock(&self) -> Clock {
        match self.touch {
            Touch::Of(c) => c,
            _ => self.clock,
        }
    }

    /// Whether resolution considers this slot at all.
    fn counts(&self) -> bool {
        self.touch != Touch::Only
    }

    fn has_seen(&self, other: &Slot) -> bool {
        self.seen.iter().any(|&(w, c)| w == other.writer && c >= other.weighed_clock())
    }

    /// The order of last-writer-wins among concurrent writes: the writer's own clock
    /// plus every clock it had seen, so the better-informed write wins. (Not a Lamport
    /// clock: nothing is incremented past what was seen.)
    fn informed_clock(&self) -> u64 {
        self.weighed_clock().get() as u64 + self.seen.iter().map(|&(_, c)| c.get() as u64).sum::<u64>()
    }
}

/// Encodes a slot record: a byte holding the type tag (low nibble, 0 = removal) and the
/// seen count (high nibble, 15 = count follows as varint), the seen pairs, the payload.
/// An owner-only value's record is prefixed by its ownership (`encode_own`).
pub(crate) fn encode_record(seen: &[(PeerId, Clock)], value: Option<&Value>, out: &mut Vec<u8>) {
    encode(seen, None, value, out)
}

/// Low nibble of the byte that starts an ownership prefix: no type has this tag.
const OWN_TAG: u8 = 0x0f;

/// Writes the ownership prefix of an owner-only value's record: `OWN_TAG`, the epoch,
/// the owner; the record follows. (Protocol 3.)
pub(crate) fn encode_own(own: Own, out: &mut Vec<u8>) {
    out.push(OWN_TAG);
    put_varint(out, own.epoch as u64);
    put_varint(out, own.owner.get());
}

/// Encodes the record of a touch by `writer` (see `Touch`): one more seen pair, naming
/// the writer itself (which no ordinary record does), whose clock says which touch: 0
/// `WithWrite`, `u32::MAX` `Only`, else `Of` that clock. (Protocol 2: a protocol-1 peer
/// would weigh that pair as a seen clock.)
pub(crate) fn encode_touched_record(
    writer: PeerId,
    touch: Touch,
    seen: &[(PeerId, Clock)],
    value: Option<&Value>,
    out: &mut Vec<u8>,
) {
    let mark = match touch {
        Touch::No => return encode_record(seen, value, out),
        Touch::WithWrite => 0,
        Touch::Of(c) => c.get(),
        Touch::Only => u32::MAX,
    };
    encode(seen, Some((writer, Clock::new(mark))), value, out)
}

fn encode(
    seen: &[(PeerId, Clock)],
    touch: Option<(PeerId, Clock)>,
    value: Option<&Value>,
    out: &mut Vec<u8>,
) {
    let tag = value.map_or(0, |v| v.value_type() as u8);
    let n = seen.len() + touch.is_some() as usize;
    out.push(tag | ((n.min(15) as u8) << 4));
    if n >= 15 {
        put_varint(out, n as u64);
    }
    for &(w, c) in seen {
        put_varint(out, w.get());
        put_varint(out, c.get() as u64);
    }
    if let Some((w, mark)) = touch {
        put_varint(out, w.get());
        put_varint(out, mark.get() as u64);
    }
    if let Some(v) = value {
        v.encode_payload(out);
    }
}

/// Decodes a slot record written by `writer` at `clock`.
pub(crate) fn decode_record(writer: PeerId, clock: Clock, buf: &[u8]) -> Result<Slot, Error> {
    let bad = |why: &str| Error::decode(format!("slot record of peer {writer}: {why}"));
    let mut r = codec::Reader::new(buf);
    let mut head = r.byte().map_err(|_| bad("empty"))?;
    let mut own = None;
    if head == OWN_TAG {
        let epoch = r.varint_bits(32).map_err(|e| bad(&e.to_string()))? as u32;
        let owner = r.varint_bits(53).map_err(|e| bad(&e.to_string()))?;
        if owner == 0 {
            return Err(bad("owner 0"));
        }
        own = Some(Own { epoch, owner: PeerId::new(owner) });
        head = r.byte().map_err(|_| bad("ownership without a record"))?;
    }
    let mut varint = |bits: u32| r.varint_bits(bits).map_err(|e| bad(&e.to_string()));
    let mut n = (head >> 4) as usize;
    if n == 15 {
        n = varint(64)? as usize;
    }
    // Each seen pair takes at least two bytes: a hostile count cannot make us allocate.
    if n > buf.len() / 2 {
        return Err(bad("seen count too large"));
    }
    let mut seen = Vec::with_capacity(n);
    let mut touch = Touch::No;
    for _ in 0..n {
        let w = varint(64)?;
        let c = varint(32)? as u32;
        if w == writer.get() {
            touch = match c {
                0 => Touch::WithWrite,
                u32::MAX => Touch::Only,
                // A record cannot repeat one at or after itself.
                c if c >= clock.get() => return Err(bad("touch of a later record")),
                c => Touch::Of(Clock::new(c)),
            };
        } else {
            seen.push((PeerId::new(w), Clock::new(c)));
        }
    }
    let rest = r.rest();
    let value = match head & 0x0f {
        0 if rest.is_empty() => None,
        0 => return Err(bad("removal carries a payload")),
        t => {
            let ty = ValueType::from_u8(t).ok_or_else(|| bad("unknown type tag"))?;
            Some(Value::decode_payload(ty, rest).map_err(|e| bad(&e))?)
        }
    };
    Ok(Slot { writer, clock, seen: seen.into_boxed_slice(), value, touch, own })
}

/// What a register resolves to.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Resolved {
    /// `None` when the value was removed, or nothing of the right type was written.
    pub value: Option<Value>,
    /// Number of concurrent writes that were merged (1 = no conflict).
    pub concurrent: usize,
    /// Whether a custom merge was missing or misbehaved and LWW was used instead.
    pub fell_back: bool,
}

/// Writers whose latest write no other slot has seen, sorted by writer id (slots are
/// kept sorted by writer).
pub(crate) fn frontier(slots: &[Slot]) -> impl Iterator<Item = &Slot> {
    slots
        .iter()
        .filter(|s| s.counts())
        .filter(move |s| !slots.iter().any(|o| o.counts() && o.writer != s.writer && o.has_seen(s)))
}

/// Resolves the slots of a value of type `ty` under `policy`. A removal in the frontier
/// wins over concurrent writes (remove-wins); a later write revives the value.
/// Slots of another type (a peer that created the value concurrently with a different
/// type) are ignored, so they cannot make peers disagree.
pub(crate) fn resolve(slots: &[Slot], ty: ValueType, policy: &Policy, custom: Option<&MergeFn>) -> Resolved {
    if let [only] = slots {
        // One writer (the common case): nothing to merge.
        let value = only.value.clone().filter(|v| v.value_type() == ty && only.counts());
        return Resolved { value, concurrent: 1, fell_back: false };
    }
    let mut cands: Vec<Candidate> = Vec::with_capacity(slots.len());
    let mut removed = false;
    for s in frontier(slots) {
        match &s.value {
            None => removed = true,
            Some(v) if v.value_type() == ty => {
                cands.push(Candidate { writer: s.writer.get(), clock: s.informed_clock(), value: v })
            }
            Some(_) => {}
        }
    }
    if removed || cands.is_empty() {
        return Resolved { value: None, concurrent: cands.len().max(1), fell_back: false };
    }
    let (value, ok) = policy::merge(policy, &cands, custom);
    Resolved { value: Some(value), concurrent: cands.len(), fell_back: !ok }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(writer: u64, clock: u32, seen: &[(u64, u32)], v: i64) -> Slot {
        let seen: Vec<_> = seen.iter().map(|&(w, c)| (PeerId::new(w), Clock::new(c))).collect();
        Slot {
            writer: PeerId::new(writer),
            clock: Clock::new(clock),
            seen: seen.into(),
            value: Some(Value::I64(v)),
            touch: Touch::No,
            own: None,
        }
    }

    #[test]
    fn record_roundtrip_with_many_seen() {
        let seen: Vec<(PeerId, Clock)> =
            (1..20).map(|w| (PeerId::new(w), Clock::new(w as u32 * 1000))).collect();
        let mut buf = Vec::new();
        encode_record(&seen, Some(&Value::Vec3([1.0, 2.0, 3.0])), &mut buf);
        let s = decode_record(PeerId::new(50), Clock::new(9), &buf).unwrap();
        assert_eq!(&*s.seen, &seen[..]);
        assert_eq!(s.value, Some(Value::Vec3([1.0, 2.0, 3.0])));
        let mut buf = Vec::new();
        encode_record(&[], None, &mut buf);
        assert_eq!(buf, vec![0]);
        assert!(decode_record(PeerId::new(5), Clock::new(9), &buf).unwrap().value.is_none());
        assert!(decode_record(PeerId::new(5), Clock::new(9), &[0x07, 1, 2]).is_err());
        assert!(decode_record(PeerId::new(5), Clock::new(9), &[]).is_err());
    }

    #[test]
    fn touch_records_round_trip_and_weigh_what_they_repeat() {
        let seen = [(PeerId::new(2), Clock::new(7))];
        for touch in [Touch::No, Touch::WithWrite, Touch::Of(Clock::new(4)), Touch::Only] {
            let mut buf = Vec::new();
            encode_touched_record(PeerId::new(5), touch, &seen, Some(&Value::I64(4)), &mut buf);
            let t = decode_record(PeerId::new(5), Clock::new(9), &buf).unwrap();
            assert_eq!((t.touch, &*t.seen, &t.value), (touch, &seen[..], &Some(Value::I64(4))));
        }
        // A touch naming a record at or after itself is malformed.
        let mut buf = Vec::new();
        encode_touched_record(PeerId::new(5), Touch::Of(Clock::new(9)), &[], None, &mut buf);
        assert!(decode_record(PeerId::new(5), Clock::new(9), &buf).is_err());
    }

    /// A touch racing a write leaves resolution as it was, under every policy.
    #[test]
    fn a_touch_never_changes_what_a_value_resolves_to() {
        let touched = |mut s: Slot, touch: Touch, clock: u32| {
            s.touch = touch;
            s.clock = Clock::new(clock);
            s
        };
        for policy in [Policy::LastWriterWins, Policy::Max, Policy::Min, Policy::TakeAverage] {
            // b wrote 20 having seen a's 10 (clock 3); then a touches its 10 (clock 5).
            let before = [slot(1, 3, &[], 10), slot(2, 1, &[(1, 3)], 20)];
            let after = [touched(slot(1, 3, &[], 10), Touch::Of(Clock::new(3)), 5), before[1].clone()];
            let r = |s: &[Slot]| resolve(s, ValueType::I64, &policy, None);
            assert_eq!(r(&after), r(&before), "{policy:?}");
            // Concurrent writes (neither saw the other), a touched: the same merge.
            let before = [slot(1, 3, &[], 10), slot(2, 4, &[], 30)];
            let after = [touched(slot(1, 3, &[], 10), Touch::Of(Clock::new(3)), 6), before[1].clone()];
            assert_eq!(r(&after), r(&before), "{policy:?}");
            // A peer that never wrote touches: nothing to weigh.
            let only = Slot {
                writer: PeerId::new(9),
                clock: Clock::new(1),
                seen: Box::new([]),
                value: None,
                touch: Touch::Only,
                own: None,
            };
            let after = [before[0].clone(), before[1].clone(), only.clone()];
            assert_eq!(r(&after), r(&before), "{policy:?}");
            assert_eq!(r(std::slice::from_ref(&only)).value, None);
        }
    }

    fn owned(writer: u64, clock: u32, seen: &[(u64, u32)], v: i64, epoch: u32, owner: u64) -> Slot {
        Slot { own: Some(Own { epoch, owner: PeerId::new(owner) }), ..slot(writer, clock, seen, v) }
    }

    #[test]
    fn owned_records_round_trip() {
        let mut buf = Vec::new();
        encode_own(Own { epoch: 7, owner: PeerId::new(300) }, &mut buf);
        encode_touched_record(
            PeerId::new(5),
            Touch::WithWrite,
            &[(PeerId::new(2), Clock::new(3))],
            None,
            &mut buf,
        );
        let s = decode_record(PeerId::new(5), Clock::new(9), &buf).unwrap();
        assert_eq!(
            (s.own, s.touch, s.value),
            (Some(Own { epoch: 7, owner: PeerId::new(300) }), Touch::WithWrite, None)
        );
        // Owner 0, or an ownership with no record after it, is malformed.
        assert!(decode_record(PeerId::new(5), Clock::new(9), &[OWN_TAG, 1, 0, 0]).is_err());
        assert!(decode_record(PeerId::new(5), Clock::new(9), &[OWN_TAG, 1, 2]).is_err());
    }

    /// The ownership walk: grants by the owner, claims only when it is gone (the lowest
    /// claimer that saw its latest record), other writers never.
    #[test]
    fn the_walk_follows_grants_and_claims_and_nothing_else() {
        let p = PeerId::new;
        let all = |_: PeerId| true;
        let read = |slots: &[Slot], present: &dyn Fn(PeerId) -> bool| {
            let o = owner(p(1), slots, present);
            (o.own.owner.get(), o.own.epoch, resolve_owned(slots, ValueType::I64, &o).value)
        };
        // 1 owns and wrote 10; 3 writes 30 as if it owned (a plain record, or a forged
        // ownership): never read.
        let base = [owned(1, 2, &[], 10, 0, 1), slot(3, 5, &[(1, 2)], 30)];
        assert_eq!(read(&base, &all), (1, 0, Some(Value::I64(10))));
        let forged = [owned(1, 2, &[], 10, 0, 1), owned(3, 5, &[(1, 2)], 30, 4, 3)];
        assert_eq!(read(&forged, &all), (1, 0, Some(Value::I64(10))));
        // 1 grants to 2 (the grant carries the value); then 2 writes.
        let granted = [owned(1, 3, &[], 10, 1, 2)];
        assert_eq!(read(&granted, &all), (2, 1, Some(Value::I64(10))));
        let written = [owned(1, 3, &[], 10, 1, 2), owned(2, 1, &[(1, 3)], 20, 1, 2)];
        assert_eq!(read(&written, &all), (2, 1, Some(Value::I64(20))));
        // 1 is gone; 2 and 3 both claimed, having seen its latest record: 2 wins.
        let claims =
            [owned(1, 2, &[], 10, 0, 1), owned(2, 1, &[(1, 2)], 20, 1, 2), owned(3, 1, &[(1, 2)], 30, 1, 3)];
        let gone = |x: PeerId| x != p(1);
        assert_eq!(read(&claims, &gone), (2, 1, Some(Value::I64(20))));
        // While 1 is present the claims are nothing.
        assert_eq!(read(&claims, &all), (1, 0, Some(Value::I64(10))));
        // 2's claim had not seen 1's latest record (1 wrote after it): 3 takes it.
        let stale =
            [owned(1, 4, &[], 11, 0, 1), owned(2, 1, &[(1, 2)], 20, 1, 2), owned(3, 1, &[(1, 4)], 30, 1, 3)];
        assert_eq!(read(&stale, &gone), (3, 1, Some(Value::I64(30))));
        // The heir went on to grant to 4, who wrote: the chain goes on through the grant.
        let chain =
            [owned(1, 2, &[], 10, 0, 1), owned(2, 2, &[(1, 2)], 20, 2, 4), owned(4, 1, &[(2, 2)], 40, 2, 4)];
        assert_eq!(read(&chain, &gone), (4, 2, Some(Value::I64(40))));
        // Nobody wrote yet: the first owner, nothing to read.
        assert_eq!(read(&[], &all), (1, 0, None));
    }

    #[test]
    fn seen_writes_are_superseded_concurrent_ones_merged() {
        // b saw a's write: b wins whatever the policy.
        let slots = [slot(1, 3, &[], 100), slot(2, 1, &[(1, 3)], 5)];
        assert_eq!(resolve(&slots, ValueType::I64, &Policy::Max, None).value, Some(Value::I64(5)));
        // b saw an older write of a: concurrent, Max merges.
        let slots = [slot(1, 4, &[], 100), slot(2, 1, &[(1, 3)], 5)];
        let r = resolve(&slots, ValueType::I64, &Policy::Max, None);
        assert_eq!((r.value, r.concurrent), (Some(Value::I64(100)), 2));
    }

    #[test]
    fn removal_wins_over_concurrent_write() {
        let slots = [
            slot(1, 2, &[], 1),
            Slot {
                writer: PeerId::new(2),
                clock: Clock::new(1),
                seen: Box::new([]),
                value: None,
                touch: Touch::No,
                own: None,
            },
        ];
        assert_eq!(resolve(&slots, ValueType::I64, &Policy::LastWriterWins, None).value, None);
    }
}

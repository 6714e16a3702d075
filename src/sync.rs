//! The sync engine: streams, acknowledgements, catch-up, convergence.
//!
//! Each peer's writes form its *stream*: numbered delta messages (one per tick, split
//! only when larger than the message limit), broadcast as the same bytes to everyone.
//! An entry of a delta is the writer's whole contribution to that value (its squashed
//! history, a few bytes, plus its latest write), so receivers take deltas the moment
//! they arrive, in any order: a lost packet delays only the values it alone carried,
//! never the rest of the stream (no head-of-line blocking).
//!
//! Receivers broadcast an *ack vector*: per stream, the contiguous seq received plus a
//! 64-seq window of what arrived beyond it. A value is Converged here once every active
//! member has received, on every stream that wrote it, the seq that carried its latest
//! write. Loss never stalls: a member whose window shows a gap (or whose acks lag past
//! its retransmission timeout) gets a *catch-up snapshot*, the full state of every value
//! the stream touched since its contiguous ack; snapshots also serve late joins and
//! rejoins. Streams of peers that left are forwarded the same way by whoever has them.
//!
//! Owns the members, the streams, our sequence numbers, catch-up scheduling, the inbox
//! and the outbound queue. It drives values only through the value table's methods and
//! never reads a clock or does I/O; the context's `tick` calls its steps in order.

use crate::codec::varint_len;
use crate::collection::parse_entry_id;
use crate::error::Error;
use crate::ids::{Millis, PeerId, Seq, ValueIndex};
use crate::membership::Membership;
use crate::metrics::{Histogram, Metrics, PeerLag};
use crate::options::{Options, Outbound};
use crate::policy::Policy;
use crate::protocol::{
    self, put_entry, put_header, put_manifest, put_varint, seal, Body, Entry, Limits, Manifest, Message,
    MessageKind,
};
use crate::seqwindow::SeqWindow;
use crate::table::{Incoming, ValueTable};
use crate::value::ValueType;
use crate::view::{Mode, SyncState};
use rustc_hash::FxHashMap as HashMap;
use std::collections::VecDeque;

/// What this context knows of one peer's stream.
#[derive(Default)]
pub(crate) struct StreamIn {
    /// Which seqs of the stream were applied in full.
    pub recv: SeqWindow,
    /// The stream's value numbering -> our value index.
    pub index: HashMap<u32, ValueIndex>,
    /// Catch-up in progress.
    pub catchup: Option<Receiving>,
    /// The values this stream wrote: what a catch-up of the stream visits, instead of
    /// every value. A forgotten entry's place stays listed until `stale` makes a
    /// compaction worth it (a reused place may then be listed twice; readers dedup).
    pub values: Vec<ValueIndex>,
    /// Places in `values` forgotten since the last compaction.
    stale: usize,
}

/// A catch-up snapshot arriving in chunks: who sends it, its id, chunks received so far.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Receiving {
    sender: PeerId,
    id: u64,
    chunks: u32,
}

/// A catch-up to send: member `to` holds `stream` up to `base`; the snapshot brings it to
/// `target`.
struct CatchUp {
    to: PeerId,
    stream: PeerId,
    base: Seq,
    target: Seq,
}

/// A delta built by `flush`, sent by `send_stream`.
pub(crate) struct Staged {
    seq: Seq,
    /// Entries in `entries`.
    count: u64,
    entries: Vec<u8>,
}

const HEADER_ROOM: usize = 64;
/// The most bytes one ack entry takes: peer id, upto and the window bits as varints.
const ACK_ENTRY_MAX: usize = 30;
/// Besides its peer id, the most bytes an ack entry takes: a seq (10) and window bits
/// (10). A bound, so a message split for `target_message_bytes` stays under it.
const ACK_GROWTH: usize = 20;
/// Most streams (peers ever heard of) a context tracks; snapshots of further unknown
/// streams are refused, so hostile input cannot grow this table without bound.
const MAX_STREAMS: usize = 4096;
/// Send times kept for round trips and lag (older ones are forgotten).
const MAX_SENT_AT: usize = 4096;

pub(crate) struct SyncEngine {
    me: PeerId,
    opts: Options,
    pub members: Membership,
    pub streams: HashMap<PeerId, StreamIn>,
    /// Last seq of our own stream.
    my_seq: Seq,
    /// (seq, send time) of our messages some member has not acknowledged.
    sent_at: VecDeque<(Seq, Millis)>,
    /// Our stream's writes in seq order: (the seq that carried it, the value). A value
    /// written again has a newer entry; the older ones are stale, skipped by catch-ups
    /// and compacted away, so a catch-up from `base` costs the writes made since `base`,
    /// not every value we ever wrote.
    own_log: Vec<(Seq, ValueIndex)>,
    /// How many values we have written (each counted once).
    own_written: usize,
    /// Our stream's number for the next value it carries. Never reused: a number names
    /// one value for good, also after that value (a table entry) was forgotten.
    next_own_index: u32,
    /// Removed table entries, converged, waiting until every member (active or not)
    /// holds their removal: then they are forgotten (`forget_removed`).
    forget_wait: Vec<ValueIndex>,
    /// Per tick, per (stream, seq): whether every active member holds it (reused).
    converge_cache: Vec<(PeerId, Seq, bool)>,
    /// WaitForSync write-to-converged latencies.
    pub converge_hist: Histogram,
    last_acks_sent: Vec<(PeerId, SeqWindow)>,
    /// Sealed over raw bytes of recent deltas (LZ4 shrinks game state severalfold), so
    /// deltas split for `target_message_bytes` come out near the target, not a fraction
    /// of it. Starts at 1 (split by raw size until a delta was measured).
    delta_ratio: f64,
    last_send_ms: Millis,
    next_catchup_id: u64,
    inbox: Vec<Message>,
    outbound: VecDeque<Outbound>,
    /// Our stream continues one loaded from a save (see `restore`).
    resumed: bool,
}

impl SyncEngine {
    pub fn options(&self) -> &Options {
        &self.opts
    }

    pub fn new(me: PeerId, opts: Options) -> SyncEngine {
        SyncEngine {
            me,
            opts,
            members: Membership::default(),
            streams: HashMap::default(),
            my_seq: Seq::NONE,
            sent_at: VecDeque::new(),
            own_log: Vec::new(),
            own_written: 0,
            next_own_index: 0,
            forget_wait: Vec::new(),
            converge_cache: Vec::new(),
            converge_hist: Histogram::new(),
            last_acks_sent: Vec::new(),
            delta_ratio: 1.0,
            last_send_ms: Millis::ZERO,
            next_catchup_id: 1,
            inbox: Vec::new(),
            outbound: VecDeque::new(),
            resumed: false,
        }
    }

    pub fn my_seq(&self) -> Seq {
        self.my_seq
    }

    /// Takes the stream bookkeeping of a save (see `save`) once its values are in
    /// `table`. `saver` continues as our stream if it is us; else its stream is one we
    /// hold up to `saver_seq`, like any other. The numbering of each stream is rebuilt
    /// from the values' books; a number two values claim is a corrupt save.
    pub fn restore(
        &mut self,
        saver: PeerId,
        saver_seq: Seq,
        windows: &[(PeerId, SeqWindow)],
        table: &ValueTable,
    ) -> Result<(), Error> {
        let me = self.me;
        for &(p, w) in windows {
            self.streams.entry(p).or_default().recv = w;
        }
        if saver == me {
            self.my_seq = saver_seq;
            self.resumed = true;
        } else if saver_seq != Seq::NONE {
            self.streams.entry(saver).or_default().recv = SeqWindow { upto: saver_seq, above: 0 };
        }
        let mut own_numbers = rustc_hash::FxHashSet::default();
        for k in 0..table.len() {
            let i = ValueIndex::new(k as u32);
            for r in &table.get(i).book.streams {
                if r.peer == me {
                    if !own_numbers.insert(r.index) {
                        return Err(Error::BadSave(format!(
                            "two values are number {} of our stream",
                            r.index
                        )));
                    }
                    self.next_own_index = self.next_own_index.max(r.index.saturating_add(1));
                    self.own_log.push((r.last_seq, i));
                    continue;
                }
                let st = self.streams.entry(r.peer).or_default();
                if st.index.insert(r.index, i).is_some() {
                    return Err(Error::BadSave(format!(
                        "two values are number {} of stream {}",
                        r.index, r.peer
                    )));
                }
                st.values.push(i);
            }
        }
        if self.streams.len() > MAX_STREAMS {
            return Err(Error::BadSave(format!("{} streams, at most {MAX_STREAMS}", self.streams.len())));
        }
        self.own_log.sort_unstable();
        self.own_written = self.own_log.len();
        Ok(())
    }

    fn limits(&self) -> Limits {
        Limits { max_message_bytes: self.opts.max_message_bytes, max_id_bytes: self.opts.max_id_bytes }
    }

    /// Adds member `peer`; false if it was one already.
    pub fn add_member(&mut self, peer: PeerId, now: Millis) -> bool {
        self.members.add(peer, now, self.my_seq)
    }

    // ---- receipt ---------------------------------------------------------------------

    /// Decodes and checks a message completely, and keeps it for the next tick. `from` is
    /// the sender as the transport knows it (`None`: believe the message). An `Err`
    /// means it was rejected (and counted) and nothing changed.
    pub fn accept(&mut self, bytes: &[u8], from: Option<u64>, metrics: &mut Metrics) -> Result<(), Error> {
        let res = protocol::decode(bytes, &self.limits()).and_then(|msg| {
            let sender = PeerId::checked(msg.sender.get())?;
            if let Some(from) = from.filter(|&f| f != sender.get()) {
                return Err(Error::SenderMismatch { claimed: sender.get(), from });
            }
            if sender == self.me {
                return Err(Error::FromSelf(sender.get()));
            }
            if self.members.get(sender).is_none() {
                return Err(Error::UnknownPeer(sender.get()));
            }
            // Acknowledgements of our own stream beyond what we sent are lies (they would
            // make our writes look delivered); other streams' acks are the sender's own
            // claims about what it holds, which only it can know.
            if let Some(&(_, w)) =
                msg.acks.iter().find(|(s, w)| *s == self.me && w.claims_beyond(self.my_seq))
            {
                let hint = if self.resumed {
                    " (this context continues a save under its saver's id, and that save was not \
                     its latest: load it under an id that never wrote)"
                } else {
                    ""
                };
                return Err(Error::Forged(format!(
                    "peer {sender} acknowledges seq {} of our stream; we sent {}{hint}",
                    w.highest_saturating(),
                    self.my_seq
                )));
            }
            Ok(msg)
        });
        match res {
            Ok(msg) => {
                metrics.messages_in += 1;
                metrics.bytes_in += bytes.len() as u64;
                self.inbox.push(msg);
                Ok(())
            }
            Err(e) => {
                metrics.messages_rejected += 1;
                if matches!(e, Error::Forged(_) | Error::SenderMismatch { .. }) {
                    metrics.messages_forged += 1;
                }
                Err(e)
            }
        }
    }

    /// The messages accepted since the last tick.
    pub fn take_inbox(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.inbox)
    }

    /// The next message for the host to send.
    pub fn poll_outbound(&mut self) -> Option<Outbound> {
        self.outbound.pop_front()
    }

    // ---- deadlines ---------------------------------------------------------------------

    /// When `tick` next has work if nothing arrives (see `Context::next_deadline_ms`);
    /// `hibernation` is when the value table next has a document to hibernate.
    /// `manifests`: this replica forgot table entries, so members that joined get its
    /// manifest (retried until confirmed, see `send_catchups`).
    pub fn next_deadline(
        &self,
        now: Millis,
        dirty: bool,
        hibernation: Option<Millis>,
        manifests: bool,
    ) -> Option<Millis> {
        if !self.inbox.is_empty() || dirty {
            return Some(now);
        }
        let mut next: Option<Millis> = hibernation;
        let mut at = |t: Millis| next = Some(next.map_or(t, |n| n.min(t)));
        if self.members.members.is_empty() {
            return next.map(|t| t.max(now));
        }
        at(self.last_send_ms + self.opts.heartbeat_ms);
        let (me, tick) = (self.me, self.opts.tick_interval_ms);
        for m in &self.members.members {
            if m.just_added {
                at(now);
                continue;
            }
            if !m.active {
                continue;
            }
            // Times out once silent for longer than the timeout (see update_liveness).
            at(m.last_heard_ms + (self.opts.peer_timeout_ms + 1));
            let rto = m.rto_ms(tick);
            if manifests && m.needs_manifest {
                at(m.manifest_sent.map_or(now, |(_, t)| t + rto));
            }
            // When may_catch_up next allows a catch-up of `stream` to this member.
            let allowed = |stream: PeerId| m.catchup.get(&stream).map_or(Millis::ZERO, |b| b.next_ms);
            // Our own stream, as send_catchups decides it.
            let ack = m.ack(me);
            if ack < self.my_seq {
                let missed_history = !m.acks.contains_key(&me) && m.joined_at_seq > ack;
                let gap = m.acks.get(&me).is_some_and(|w| w.has_gap());
                let wait = if gap { m.gap_wait_ms(tick) } else { rto };
                let overdue_at = if missed_history {
                    now
                } else {
                    self.sent_at.iter().find(|(s, _)| *s == ack.next()).map_or(now, |&(_, t)| t + wait)
                };
                at(overdue_at.max(allowed(me)));
            }
            // Streams of writers no longer here that this member lacks.
            for (&w, st) in &self.streams {
                if w == m.id || st.recv.upto == Seq::NONE || m.ack(w) >= st.recv.upto {
                    continue;
                }
                if self.members.members.iter().any(|o| o.active && o.id == w) {
                    continue;
                }
                // Not yet noticed: the next tick starts the clock.
                at(m.behind_since.get(&w).map_or(now, |&since| (since + rto).max(allowed(w))));
            }
        }
        next.map(|t| t.max(now))
    }

    // ---- acknowledgements ---------------------------------------------------------------

    /// Takes the ack vectors of this tick's messages. Runs before `flush`: they tell it
    /// which members hold our previous writes (so increments suffice).
    pub fn on_acks(&mut self, inbox: &[Message], now: Millis) {
        for msg in inbox {
            self.on_ack_vector(msg.sender, &msg.acks, now);
        }
        self.forget_acked_sends();
    }

    fn on_ack_vector(&mut self, sender: PeerId, acks: &[(PeerId, SeqWindow)], now: Millis) {
        let (me, tick) = (self.me, self.opts.tick_interval_ms);
        let Some(m) = self.members.get_mut(sender) else { return };
        let silent = now.since(m.last_heard_ms) > m.rto_ms(tick);
        if silent {
            // Heard again after a silence (a partition, a stall): the catch-ups sent
            // meanwhile most likely went nowhere, so the next one goes without backoff;
            // and our acks go out this tick (changed or not) so the sender learns at
            // once what we lack.
            m.catchup.clear();
            self.last_acks_sent.clear();
        }
        m.last_heard_ms = now;
        for &(stream, report) in acks {
            // Only streams we know can matter to us; this also bounds what a hostile
            // member can make us store.
            if stream != me && !self.streams.contains_key(&stream) {
                continue;
            }
            let window = m.acks.entry(stream).or_default();
            let before = *window;
            window.merge(report);
            if *window == before {
                continue;
            }
            let (upto, newest) = (window.upto, window.highest());
            m.acked(stream, upto);
            if stream == me {
                // Round trip from the newest seq the member reports, never from one that
                // a gap-fill or catch-up just completed: that seq may have been sent long
                // ago (say, before a partition) and would inflate the estimate for seconds.
                if !silent && newest > before.highest() {
                    if let Some(&(_, t)) = self.sent_at.iter().rev().find(|(s, _)| *s == newest) {
                        m.sample_rtt(now.since(t));
                    }
                }
                if upto >= self.my_seq {
                    m.caught_up(me);
                }
            } else if self.streams.get(&stream).is_some_and(|s| upto >= s.recv.upto) {
                m.caught_up(stream);
            }
        }
    }

    /// Send times are kept only for messages some member has not acknowledged.
    fn forget_acked_sends(&mut self) {
        let me = self.me;
        let floor = self.members.members.iter().map(|m| m.ack(me)).min().unwrap_or(self.my_seq);
        while self.sent_at.front().is_some_and(|&(s, _)| s <= floor) {
            self.sent_at.pop_front();
        }
    }

    // ---- flush: local writes -> yrs -> delta ---------------------------------------------

    /// Turns this tick's local writes into our stream's next delta(s).
    pub fn flush(&mut self, table: &mut ValueTable, metrics: &mut Metrics) -> Vec<Staged> {
        let mut staged: Vec<Staged> = Vec::new();
        if !table.has_dirty() {
            return staged;
        }
        let me = self.me;
        let limit = self.delta_limit();
        let dirty = table.take_dirty();
        // As in `apply_entries`: the misses of values spread over thousands overlap.
        table.warm(dirty.iter().copied());
        let any_active = self.members.any_active();
        // Table entries inserted here and first sent in the current delta.
        let mut births_here = 0u64;
        for &i in &dirty {
            let Some(commit) = table.commit_pending(i) else { continue };
            let v = table.get_mut(i);
            let index = match v.book.stream(me) {
                Some(r) => r.index,
                None => {
                    let n = self.next_own_index;
                    self.next_own_index = n.checked_add(1).expect("fewer than 2^32 values per stream");
                    n
                }
            };
            if v.view.local_only {
                // Written into its document like any value (saves hold it), never sent:
                // this replica is the only one that needs it.
                v.book.stream_mut(me, index).clock = commit.clock;
                v.view.state = SyncState::LocalOnly;
                metrics.writes_flushed += commit.write.is_some() as u64;
                table.committed(i, &commit.write, false, metrics);
                continue;
            }
            // One message per tick unless it would exceed the size limit.
            let needs_new = match staged.last() {
                None => true,
                Some(last) => last.entries.len() + commit.update.len() + v.id.len() + 16 > limit,
            };
            if needs_new {
                self.my_seq = self.my_seq.next();
                let entries = Vec::with_capacity(64 * dirty.len().min(4096));
                staged.push(Staged { seq: self.my_seq, count: 0, entries });
                births_here = 0;
            }
            let seq = self.my_seq;
            if table.unsent_birth(i) {
                table.fix_birth(i, seq.get(), births_here);
                births_here += 1;
            }
            let v = table.get_mut(i);
            // The id travels until every member has the message that announced it, so a
            // lost announcement costs no catch-up.
            let announced = v.book.announce_seq;
            let with_id = announced == Seq::NONE || !self.members.everyone_has(me, announced);
            if announced == Seq::NONE {
                v.book.announce_seq = seq;
            }
            let last = staged.last_mut().expect("pushed above");
            put_entry(&mut last.entries, index, with_id.then_some(&*v.id), &commit.update);
            last.count += 1;
            let first = v.book.stream(me).is_none();
            let r = v.book.stream_mut(me, index);
            r.last_seq = seq;
            r.clock = commit.clock;
            v.view.state = if any_active { SyncState::Syncing } else { SyncState::LocalOnly };
            self.own_written += first as usize;
            self.own_log.push((seq, i));
            metrics.writes_flushed += commit.write.is_some() as u64;
            table.committed(i, &commit.write, any_active, metrics);
        }
        let now = table.now();
        for Staged { seq, .. } in &staged {
            self.sent_at.push_back((*seq, now));
        }
        while self.sent_at.len() > MAX_SENT_AT {
            self.sent_at.pop_front();
        }
        table.recycle_dirty(dirty);
        if self.own_log.len() > 2 * self.own_written + 64 {
            self.own_log.retain(|&(s, i)| Self::latest_of(table, me, s, i));
        }
        staged
    }

    /// Whether `seq` is the last seq of `stream` that carried value `i`.
    fn latest_of(table: &ValueTable, stream: PeerId, seq: Seq, i: ValueIndex) -> bool {
        table.get(i).book.stream(stream).is_some_and(|r| r.last_seq == seq)
    }

    /// The values a member holding `stream` up to `base` lacks, in index order. Our own
    /// stream: the values written after `base`, found from the write log. Another's
    /// (forwarded for a peer no longer here, rare): every value that stream wrote,
    /// filtered.
    fn lacking(&self, stream: PeerId, base: Seq, table: &ValueTable) -> Vec<ValueIndex> {
        let mut lacking: Vec<ValueIndex> = if stream == self.me {
            let from = self.own_log.partition_point(|&(s, _)| s <= base);
            self.own_log[from..]
                .iter()
                .filter(|&&(s, i)| Self::latest_of(table, stream, s, i))
                .map(|&(_, i)| i)
                .collect()
        } else {
            let written = self.streams.get(&stream).map_or(&[][..], |s| &s.values[..]);
            written
                .iter()
                .copied()
                .filter(|&i| table.get(i).book.stream(stream).is_some_and(|r| r.last_seq > base))
                .collect()
        };
        // In index order, as the snapshot's entries always were; a reused place may be
        // listed twice (see `StreamIn::values`).
        lacking.sort_unstable();
        lacking.dedup();
        lacking
    }

    // ---- inbox: messages -> yrs -> events ---------------------------------------------

    /// Applies this tick's messages, in arrival order. Runs after `flush`: this tick's
    /// local writes were made without having seen them.
    pub fn apply(&mut self, inbox: Vec<Message>, table: &mut ValueTable, metrics: &mut Metrics) {
        for msg in inbox {
            match msg.body {
                Body::Ack => {}
                Body::Receipt { catchup } => {
                    if let Some(m) = self.members.get_mut(msg.sender) {
                        if m.manifest_sent.is_some_and(|(id, _)| catchup >= id) {
                            m.needs_manifest = false;
                        }
                    }
                }
                Body::Delta { seq, entries } => self.on_delta(msg.sender, seq, entries, table, metrics),
                Body::Snapshot { stream, catchup, chunks, base, target, manifest, entries } => {
                    if let Some(m) = manifest {
                        self.apply_manifest(msg.sender, &msg.acks, m, table);
                        // Tell the sender, so it stops sending it.
                        let mut out = Vec::with_capacity(HEADER_ROOM);
                        put_header(&mut out, MessageKind::Receipt, self.me, &[]);
                        put_varint(&mut out, catchup);
                        self.push_out(Some(msg.sender), out, table.now(), metrics);
                    }
                    let room = self.streams.len() < MAX_STREAMS || self.streams.contains_key(&stream);
                    if !room {
                        metrics.messages_rejected += 1;
                    }
                    if room && stream != self.me && PeerId::checked(stream.get()).is_ok() {
                        let receiving = Receiving { sender: msg.sender, id: catchup, chunks };
                        self.on_snapshot(receiving, stream, base, target, entries, table, metrics);
                    }
                }
            }
        }
    }

    fn on_delta(
        &mut self,
        origin: PeerId,
        seq: Seq,
        entries: Vec<Entry>,
        table: &mut ValueTable,
        metrics: &mut Metrics,
    ) {
        if self.streams.entry(origin).or_default().recv.has(seq) {
            metrics.messages_duplicate += 1;
            return;
        }
        // Applied at once whatever its order. A message with an entry that could not be
        // applied is not recorded as received, so its sender will catch us up.
        if self.apply_entries(origin, seq, entries, false, table, metrics) {
            self.streams.entry(origin).or_default().recv.mark(seq);
        }
    }

    /// One chunk of a catch-up snapshot of `stream` (`chunk.chunks` is how many the
    /// snapshot has): its entries apply at once; the stream counts as received up to
    /// `target` once every chunk has arrived.
    #[allow(clippy::too_many_arguments)]
    fn on_snapshot(
        &mut self,
        chunk: Receiving,
        stream: PeerId,
        base: Seq,
        target: Seq,
        entries: Vec<Entry>,
        table: &mut ValueTable,
        metrics: &mut Metrics,
    ) {
        // Entries are full states: applying them is always safe, whatever we had.
        self.apply_entries(stream, target, entries, true, table, metrics);
        let st = self.streams.entry(stream).or_default();
        if target <= st.recv.upto || base > st.recv.upto {
            return;
        }
        let got = match st.catchup {
            Some(r) if r.sender == chunk.sender && r.id == chunk.id => r.chunks + 1,
            _ => 1,
        };
        if got < chunk.chunks {
            st.catchup = Some(Receiving { chunks: got, ..chunk });
            return;
        }
        st.catchup = None;
        st.recv.advance_to(target);
    }

    /// Applies entries of `origin`'s stream; false if any could not be applied.
    fn apply_entries(
        &mut self,
        origin: PeerId,
        seq: Seq,
        entries: Vec<Entry>,
        snapshot: bool,
        table: &mut ValueTable,
        metrics: &mut Metrics,
    ) -> bool {
        let mut complete = true;
        let any_active = self.members.any_active();
        if let Some(stream) = self.streams.get(&origin) {
            // Entries for values spread over thousands miss the cache at each value's
            // state; reading a little of each first, in a loop short enough for the
            // processor to run many iterations at once, overlaps those misses instead of
            // paying them one after another in the long loop below.
            table.warm(entries.iter().filter_map(|e| stream.index.get(&e.index).copied()));
        }
        for e in entries {
            let known = self.streams.get(&origin).and_then(|s| s.index.get(&e.index).copied());
            let (i, created) = match (&e.id, known) {
                (Some(id), _) => match table.find(id) {
                    Some(i) => (i, false),
                    None if self.forgot(id) => {
                        // A table entry this replica held and forgot (it was removed):
                        // a peer that has not forgotten it yet sent it again.
                        continue;
                    }
                    None => {
                        let added = table.insert_entry(id, snapshot).unwrap_or_else(|| {
                            table.insert(id, ValueType::Bool, Policy::LastWriterWins, Mode::FastLocal)
                        });
                        match added {
                            Ok(i) => {
                                table.get_mut(i).view.state = SyncState::Syncing;
                                (i, true)
                            }
                            Err(_) => {
                                // Over max_values: counted, and left for a catch-up.
                                metrics.messages_rejected += 1;
                                complete = false;
                                continue;
                            }
                        }
                    }
                },
                (None, Some(i)) => (i, false),
                (None, None) => {
                    // The message that announced this value's id has not arrived (lost
                    // or late); the catch-up its absence causes carries the id.
                    complete = false;
                    continue;
                }
            };
            if known != Some(i) {
                self.streams.entry(origin).or_default().index.insert(e.index, i);
            }
            if table.get(i).view.local_only {
                // A value this replica keeps to itself takes nothing from peers (a peer
                // that declared the same id as shared writes to no one here). Its index
                // is known, so later entries need no catch-up.
                continue;
            }
            // Full re-read unless this is a later delta of a stream already known for this
            // value: a stream's first entry may carry its writer's meta record (concurrent
            // creations resolve in yrs), and snapshots carry every slot.
            let v = table.get(i);
            let full = snapshot || created || !v.crdt.meta_known || v.book.stream(origin).is_none();
            let incoming = Incoming { origin, stream_clock: e.stream_clock, update: e.update, full };
            if !table.integrate(i, incoming, any_active, metrics) {
                // Not acknowledged: the sender catches us up.
                complete = false;
                continue;
            }
            let entry_seq = if snapshot { e.stream_seq } else { seq };
            let v = table.get_mut(i);
            let first = v.book.stream(origin).is_none();
            let r = v.book.stream_mut(origin, e.index);
            r.last_seq = r.last_seq.max(entry_seq);
            r.clock = r.clock.max(e.stream_clock);
            let state = v.view.state;
            if state == SyncState::Converged || state == SyncState::LocalOnly && v.view.pending.is_none() {
                v.view.state = SyncState::Syncing;
            }
            if first {
                self.streams.entry(origin).or_default().values.push(i);
            }
            let me = self.me;
            let v = table.get_mut(i);
            if let (None, Some(own)) = (v.book.stream(me), v.crdt.slots.iter().find(|s| s.writer == me)) {
                // Our own record, brought back by a peer (a table entry we had forgotten
                // while that peer still held it): we hold it, so nobody waits for it.
                let clock = own.clock;
                let index = self.next_own_index;
                self.next_own_index = index.checked_add(1).expect("fewer than 2^32 values per stream");
                v.book.stream_mut(me, index).clock = clock;
            }
            table.changed_by(i, origin, created, any_active, metrics);
        }
        complete
    }

    /// Drops the table entries `sender` forgot (see `Manifest`): an entry it does not
    /// hold although it held a record of it that we hold (that record's seq is within
    /// what it received) was removed and forgotten while this replica could not hear the
    /// removal. Removal wins over any write, so it is removed here too, and forgotten.
    /// The sender is believed: a member that lies here can make this replica drop
    /// entries, as it could remove them anyway; about an owner-only collection's entries
    /// only a peer that owned it is believed (`manifest_may_drop`). See the README's
    /// threat model.
    fn apply_manifest(
        &mut self,
        sender: PeerId,
        acks: &[(PeerId, SeqWindow)],
        m: Manifest,
        table: &mut ValueTable,
    ) {
        let held: rustc_hash::FxHashSet<(u64, u64, u64)> = m.births.into_iter().collect();
        let received = |stream: PeerId| -> Seq {
            if stream == sender {
                return m.own_seq;
            }
            acks.iter().find(|a| a.0 == stream).map_or(Seq::NONE, |a| a.1.upto)
        };
        let gone: Vec<ValueIndex> = table
            .births()
            .filter(|(_, b)| b.seq != 0 && !held.contains(&(b.writer, b.seq, b.n)))
            .filter(|&(i, _)| table.manifest_may_drop(i, sender))
            .filter(|&(i, _)| {
                table
                    .get(i)
                    .book
                    .streams
                    .iter()
                    .any(|r| r.last_seq != Seq::NONE && r.last_seq <= received(r.peer))
            })
            .map(|(i, _)| i)
            .collect();
        for i in gone {
            table.drop_entry(i, sender);
            self.forget_entry(i, table);
        }
    }

    /// Whether `id` names a table entry this replica must have held (its birth came in a
    /// message of its writer's stream that we hold, or we made it) and so, not holding
    /// it, forgot. An entry is forgotten only once this holds (`forget_removed`).
    fn forgot(&self, id: &str) -> bool {
        let Some((_, _, birth)) = parse_entry_id(id) else { return false };
        if birth.seq == 0 {
            return false;
        }
        if birth.writer == self.me.get() {
            return birth.seq <= self.my_seq.get();
        }
        // The message that first carried it arrived (and was applied whole), whatever
        // came before it: a catch-up built before its removal may still be on its way
        // when a gap earlier in the stream keeps `upto` below it.
        let stream = self.streams.get(&PeerId::new(birth.writer));
        stream.is_some_and(|s| s.recv.has(Seq::new(birth.seq)))
    }

    // ---- convergence --------------------------------------------------------------------

    /// Values every active member now holds become Converged (see the module comment).
    pub fn check_convergence(&mut self, table: &mut ValueTable) {
        if !table.has_unconverged() {
            return;
        }
        let any_active = self.members.any_active();
        // Values written in the same delta share the answer, so it is worked out once
        // per (stream, seq), not once per value.
        let mut have = std::mem::take(&mut self.converge_cache);
        have.clear();
        let (members, hist, forget) = (&self.members, &mut self.converge_hist, &mut self.forget_wait);
        table.settle(|table, i| {
            if table.is_vacant(i) {
                return true;
            }
            let v = table.get(i);
            if v.view.pending.is_some() || v.crdt.meta_unwritten {
                return false;
            }
            if !any_active || v.view.local_only {
                table.alone(i);
                if table.forgettable(i) {
                    forget.push(i);
                }
                return true;
            }
            let acked = v.book.streams.iter().all(|r| {
                match have.iter().find(|h| h.0 == r.peer && h.1 == r.last_seq) {
                    Some(h) => h.2,
                    None => {
                        let yes =
                            r.last_seq <= members.min_ack(r.peer) || members.all_have(r.peer, r.last_seq);
                        have.push((r.peer, r.last_seq, yes));
                        yes
                    }
                }
            });
            // A removed table entry reads the same whatever else arrives (removal wins), so
            // a record another member's catch-up brought (its writer's stream never
            // carried it here) need not be waited for: its writer keeps it until every
            // member holds it.
            let removed_entry = v.entry.is_some() && v.crdt.is_removed();
            let complete = v.crdt.slots.iter().all(|s| match v.book.stream(s.writer) {
                Some(r) => r.clock >= s.clock,
                None => removed_entry,
            });
            if !(acked && complete) {
                return false;
            }
            if let Some(ms) = table.converge(i) {
                hist.record(ms);
            }
            if table.forgettable(i) {
                forget.push(i);
            }
            true
        });
        self.converge_cache = have;
    }

    /// Forgets the removed table entries that every member, active or not, holds in full
    /// (a member that is only silent may come back; a catch-up never carries a forgotten
    /// entry, so it must already hold the removal). Their places go back to the table,
    /// their numbers on each stream are dropped here. Memory then stays flat however
    /// many entries come and go.
    pub fn forget_removed(&mut self, table: &mut ValueTable) {
        if self.forget_wait.is_empty() {
            return;
        }
        let mut wait = std::mem::take(&mut self.forget_wait);
        // An entry may converge (and be listed) again while it waits: forgetting a place
        // twice would hand it to two values.
        wait.sort_unstable();
        wait.dedup();
        let mut forget: Vec<ValueIndex> = Vec::new();
        wait.retain(|&i| {
            if table.is_vacant(i) || !table.forgettable(i) {
                return false;
            }
            let v = table.get(i);
            let everyone = v.book.streams.iter().all(|r| self.members.everyone_has(r.peer, r.last_seq));
            // And only once a copy of it arriving later is known for what it is (see
            // `forgot`): a catch-up built before its removal may still be on its way.
            if !everyone || !self.forgot(&v.id) {
                return true;
            }
            forget.push(i);
            false
        });
        self.forget_wait = wait;
        for i in forget {
            self.forget_entry(i, table);
        }
    }

    /// Forgets table entry `i`: its numbers on every stream are dropped here, its place
    /// goes back to the table.
    fn forget_entry(&mut self, i: ValueIndex, table: &mut ValueTable) {
        let streams = std::mem::take(&mut table.get_mut(i).book.streams);
        for r in &streams {
            if r.peer == self.me {
                self.own_written = self.own_written.saturating_sub(1);
                continue;
            }
            if let Some(st) = self.streams.get_mut(&r.peer) {
                if st.index.get(&r.index) == Some(&i) {
                    st.index.remove(&r.index);
                }
                st.stale += 1;
            }
        }
        table.forget(i);
        for r in &streams {
            let p = r.peer;
            let Some(st) = self.streams.get_mut(&p) else { continue };
            if st.stale * 2 > st.values.len() {
                st.values.retain(|&i| !table.is_vacant(i) && table.get(i).book.stream(p).is_some());
                st.values.sort_unstable();
                st.values.dedup();
                st.stale = 0;
            }
        }
    }

    // ---- catch-up -------------------------------------------------------------------------

    /// Sends the catch-ups that are due: of our stream to members with a gap or lagging
    /// past their timeout, and of streams of peers no longer here to members that lack
    /// them.
    pub fn send_catchups(&mut self, table: &mut ValueTable, metrics: &mut Metrics) {
        let (me, now, tick) = (self.me, table.now(), self.opts.tick_interval_ms);
        let mut jobs: Vec<CatchUp> = Vec::new();
        let active: Vec<PeerId> = self.members.members.iter().filter(|m| m.active).map(|m| m.id).collect();
        let my_seq = self.my_seq;
        for idx in 0..self.members.members.len() {
            let m = &self.members.members[idx];
            if !m.active {
                continue;
            }
            let rto = m.rto_ms(tick);
            let ack = m.ack(me);
            if ack < my_seq {
                let missed_history = !m.acks.contains_key(&me) && m.joined_at_seq > ack;
                // A gap (later seqs arrived, this one not) means a loss: recover after a
                // round trip. Otherwise it may still be in flight: wait the full timeout.
                let gap = m.acks.get(&me).is_some_and(|w| w.has_gap());
                let wait = if gap { m.gap_wait_ms(tick) } else { rto };
                let overdue = missed_history
                    || match self.sent_at.iter().find(|(s, _)| *s == ack.next()) {
                        Some(&(_, t)) => now >= t + wait,
                        None => true,
                    };
                let m = &mut self.members.members[idx];
                if overdue && m.may_catch_up(me, now, rto, my_seq) {
                    jobs.push(CatchUp { to: m.id, stream: me, base: ack, target: my_seq });
                }
            }
            for (&w, st) in &self.streams {
                let m = &mut self.members.members[idx];
                if w == m.id || active.contains(&w) || st.recv.upto == Seq::NONE {
                    continue;
                }
                let theirs = m.ack(w);
                if theirs >= st.recv.upto {
                    m.behind_since.remove(&w);
                    continue;
                }
                let since = *m.behind_since.entry(w).or_insert(now);
                if now >= since + rto && m.may_catch_up(w, now, rto, st.recv.upto) {
                    jobs.push(CatchUp { to: m.id, stream: w, base: theirs, target: st.recv.upto });
                }
            }
        }
        // A member that has not confirmed our manifest gets one, in a catch-up of our
        // stream from where it stands (empty if it lacks nothing), again after each
        // retransmission timeout until its receipt arrives. Only a replica that forgot
        // entries has anything to tell (else it holds every entry it ever received).
        let manifests = table.tables.forgotten > 0;
        for m in self.members.members.iter().filter(|_| manifests) {
            let due = m.manifest_sent.is_none_or(|(_, at)| now >= at + m.rto_ms(tick));
            if m.active && m.needs_manifest && due && !jobs.iter().any(|j| j.to == m.id) {
                let base = m.ack(me).min(my_seq);
                jobs.push(CatchUp { to: m.id, stream: me, base, target: my_seq });
            }
        }
        for job in jobs {
            self.send_snapshot(job, table, metrics);
        }
    }

    /// Sends `job.to` the full state of every value `job.stream` touched after
    /// `job.base`, so it can mark the stream applied up to `job.target`. Visits what the
    /// member lacks (see `lacking`), not every value.
    fn send_snapshot(&mut self, job: CatchUp, table: &mut ValueTable, metrics: &mut Metrics) {
        let CatchUp { to, stream, base, target } = job;
        let limit = self.split_limit();
        let any_active = self.members.any_active();
        let mut chunks: Vec<(u64, Vec<u8>)> = vec![(0, Vec::new())];
        for i in self.lacking(stream, base, table) {
            let Some(r) = table.get(i).book.stream(stream).copied() else { continue };
            let state = table.encode_full(i, any_active, metrics);
            let id = &table.get(i).id;
            let last = chunks.last().expect("non-empty");
            if !last.1.is_empty() && last.1.len() + state.len() + id.len() + 32 > limit {
                chunks.push((0, Vec::new()));
            }
            let (count, buf) = chunks.last_mut().expect("non-empty");
            put_entry(buf, r.index, Some(id), &state);
            put_varint(buf, r.last_seq.min(target).get());
            put_varint(buf, r.clock.get() as u64);
            *count += 1;
        }
        let id = self.next_catchup_id;
        self.next_catchup_id += 1;
        let acks = self.ack_vector();
        let n = chunks.len() as u64;
        // A member that joined gets our manifest with its catch-ups (in the first chunk)
        // until it holds one of them in full.
        let now = table.now();
        let forgot = table.tables.forgotten > 0;
        let manifest = match self.members.members.iter_mut().find(|m| m.id == to) {
            Some(m) if m.needs_manifest && forgot => {
                m.manifest_sent = Some((id, now));
                let mut births: Vec<(u64, u64, u64)> =
                    table.births().filter(|(_, b)| b.seq != 0).map(|(_, b)| (b.writer, b.seq, b.n)).collect();
                births.sort_unstable();
                Some(Manifest { own_seq: self.my_seq, births })
            }
            _ => None,
        };
        for (k, (count, entries)) in chunks.into_iter().enumerate() {
            let mut out = Vec::with_capacity(entries.len() + HEADER_ROOM);
            put_header(&mut out, MessageKind::Snapshot, self.me, &acks);
            for x in [stream.get(), id, n, base.get(), target.get()] {
                put_varint(&mut out, x);
            }
            put_manifest(&mut out, manifest.as_ref().filter(|_| k == 0));
            put_varint(&mut out, count);
            out.extend_from_slice(&entries);
            self.push_out(Some(to), out, table.now(), metrics);
        }
        metrics.catchups_sent += 1;
    }

    // ---- outbound -------------------------------------------------------------------------

    /// How many bytes of entries one message may carry: `max_message_bytes` less its
    /// header, whose ack vector holds one entry (three varints, at most `ACK_ENTRY_MAX`
    /// bytes) per stream heard, counting streams this tick's messages may add (at most
    /// one per member). Never below one entry of the largest value: with thousands of
    /// streams and a small `max_message_bytes` the header alone can outgrow the limit,
    /// and then a message carries one entry and is too large for receivers rather than
    /// the sender splitting forever.
    pub(crate) fn payload_limit(&self) -> usize {
        let header = HEADER_ROOM + ACK_ENTRY_MAX * (self.streams.len() + self.members.members.len() + 1);
        let one_entry = self.opts.max_value_bytes + self.opts.max_id_bytes + 256;
        self.opts.max_message_bytes.saturating_sub(header).max(one_entry)
    }

    /// The entry bytes past which `flush` and catch-ups start a new message: the payload
    /// limit, or less when `target_message_bytes` asks for datagram-sized messages. The
    /// header is bounded from the streams we acknowledge now (an entry's window may grow
    /// before it is sent, by at most `ACK_GROWTH` bytes) and the members that may add one.
    fn split_limit(&self) -> usize {
        let hard = self.payload_limit();
        let target = self.opts.target_message_bytes;
        if target == 0 {
            return hard;
        }
        let acks: usize = self.streams.keys().map(|p| varint_len(p.get()) + ACK_GROWTH).sum();
        let unheard = self.members.members.iter().filter(|m| !self.streams.contains_key(&m.id)).count();
        let header = HEADER_ROOM + acks + ACK_ENTRY_MAX * unheard;
        hard.min(target.saturating_sub(header))
    }

    /// `split_limit` for a delta's raw entries, scaled by how much recent deltas shrank
    /// when sealed, with a 10 % margin; never above the payload limit.
    fn delta_limit(&self) -> usize {
        let split = self.split_limit();
        if self.opts.target_message_bytes == 0 {
            return split;
        }
        ((split as f64 * 0.9 / self.delta_ratio) as usize).min(self.payload_limit())
    }

    fn ack_vector(&self) -> Vec<(PeerId, SeqWindow)> {
        let mut acks: Vec<(PeerId, SeqWindow)> = self
            .streams
            .iter()
            .filter(|(_, s)| s.recv != SeqWindow::default())
            .map(|(&p, s)| (p, s.recv))
            .collect();
        acks.sort_unstable_by_key(|a| a.0);
        acks
    }

    /// Seals and queues a message; returns its sealed size.
    fn push_out(&mut self, to: Option<PeerId>, bytes: Vec<u8>, now: Millis, metrics: &mut Metrics) -> usize {
        let bytes = seal(bytes);
        let sealed = bytes.len();
        metrics.messages_out += 1;
        metrics.bytes_out += bytes.len() as u64;
        self.last_send_ms = now;
        self.outbound.push_back(Outbound { to: to.map(PeerId::get), bytes });
        sealed
    }

    /// Sends this tick's deltas with our ack vector, or the ack vector alone when it
    /// changed or a heartbeat is due.
    pub fn send_stream(&mut self, staged: Vec<Staged>, now: Millis, metrics: &mut Metrics) {
        if self.members.members.is_empty() {
            return;
        }
        let acks = self.ack_vector();
        let sent_delta = !staged.is_empty();
        for Staged { seq, count, entries } in staged {
            let mut out = Vec::with_capacity(entries.len() + HEADER_ROOM + 16 * acks.len());
            put_header(&mut out, MessageKind::Delta, self.me, &acks);
            put_varint(&mut out, seq.get());
            put_varint(&mut out, count);
            out.extend_from_slice(&entries);
            let raw = out.len();
            let sealed = self.push_out(None, out, now, metrics);
            // Small deltas say little about how large ones compress.
            if raw >= 512 {
                let ratio = (sealed as f64 / raw as f64).clamp(0.05, 1.0);
                self.delta_ratio = 0.7 * self.delta_ratio + 0.3 * ratio;
            }
        }
        let heartbeat_due = now.since(self.last_send_ms) >= self.opts.heartbeat_ms;
        if !sent_delta && (acks != self.last_acks_sent || heartbeat_due) {
            let mut out = Vec::with_capacity(HEADER_ROOM + 16 * acks.len());
            put_header(&mut out, MessageKind::Ack, self.me, &acks);
            self.push_out(None, out, now, metrics);
        }
        self.last_acks_sent = acks;
    }

    /// Each member's view of our stream (for metrics).
    pub fn peer_lags(&self, now: Millis) -> Vec<PeerLag> {
        self.members
            .members
            .iter()
            .map(|p| {
                let ack = p.ack(self.me);
                let oldest = self.sent_at.iter().find(|(s, _)| *s > ack).map(|&(_, t)| t);
                PeerLag {
                    peer: p.id.get(),
                    active: p.active,
                    unacked_messages: self.my_seq.ahead_of(ack),
                    ack_lag_ms: oldest.map_or(0, |t| now.since(t)),
                    rtt_ms: p.srtt_ms.map_or(0, |r| r as u64),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{Context, Options};
    use crate::register::encode_record;

    /// A member's ack vector naming thousands of unknown streams is not stored.
    #[test]
    fn hostile_ack_vectors_do_not_grow_state() {
        let mut c = Context::new(1, Options::default()).unwrap();
        c.add_peer(2).unwrap();
        let acks: Vec<(PeerId, SeqWindow)> =
            (10..20_010).map(|s| (PeerId::new(s), SeqWindow::raw(5, 0))).collect();
        let mut out = Vec::new();
        put_header(&mut out, MessageKind::Ack, PeerId::new(2), &acks);
        c.receive(&seal(out)).unwrap();
        c.tick(16);
        assert!(c.sync.members.get(PeerId::new(2)).unwrap().acks.len() <= 1);
    }

    /// A delta's newest record is shown before its update is integrated. If the newest
    /// item was not the writer's slot after all (here a crafted update that rewrites the
    /// meta key last), the document wins once integrated, here by hibernation.
    #[test]
    fn a_shown_record_the_document_contradicts_is_replaced_on_integration() {
        use crate::value::Value;
        use yrs::{Any, Doc, Map, ReadTxn, StateVector, Transact};
        let mut b = Context::new(1, Options::default()).unwrap();
        b.add_peer(2).unwrap();
        let doc = Doc::with_client_id(2);
        let map = doc.get_or_insert_map("v");
        let record = |x: f64| {
            let mut r = Vec::new();
            encode_record(&[], Some(&Value::F64(x)), &mut r);
            Any::Buffer(r.into())
        };
        let mut meta = vec![ValueType::F64 as u8];
        Policy::LastWriterWins.encode(&mut meta);
        let send = |b: &mut Context, seq: u64| {
            let update = doc.transact().encode_state_as_update_v1(&StateVector::default());
            let mut out = Vec::new();
            put_header(&mut out, MessageKind::Delta, PeerId::new(2), &[]);
            put_varint(&mut out, seq);
            put_varint(&mut out, 1);
            put_entry(&mut out, 0, Some("v"), &update);
            b.receive(&seal(out)).unwrap();
            b.tick(seq * 16);
        };
        {
            let mut txn = doc.transact_mut();
            map.insert(&mut txn, "m", Any::Buffer(meta.into()));
            map.insert(&mut txn, "2", record(1.0));
        }
        send(&mut b, 1);
        let h = b.open("v").unwrap();
        assert_eq!(b.get(h).unwrap(), Value::F64(1.0));
        {
            let mut txn = doc.transact_mut();
            map.insert(&mut txn, "2", record(2.0));
            map.insert(&mut txn, "m", record(9.0));
        }
        send(&mut b, 2);
        assert_eq!(b.get(h).unwrap(), Value::F64(9.0), "the newest item shows before integration");
        // Peer 2 times out, the value converges, idles and hibernates: integration.
        b.tick(10_000);
        assert_eq!(b.get(h).unwrap(), Value::F64(2.0), "the document's record wins");
    }

    /// A catch-up of a stream visits the values that stream wrote (each listed once),
    /// not every value the context holds.
    #[test]
    fn each_stream_lists_the_values_it_wrote_once() {
        use crate::context::ValueOptions;
        use crate::value::ValueType;
        let mut a = Context::new(1, Options::default()).unwrap();
        let mut b = Context::new(2, Options::default()).unwrap();
        a.add_peer(2).unwrap();
        b.add_peer(1).unwrap();
        let mine: Vec<_> = (0..50)
            .map(|k| b.create(&format!("b{k}"), ValueType::I64, ValueOptions::default()).unwrap())
            .collect();
        let theirs: Vec<_> = (0..3)
            .map(|k| a.create(&format!("a{k}"), ValueType::I64, ValueOptions::default()).unwrap())
            .collect();
        for round in 0..4i64 {
            for h in &mine {
                b.set(*h, round).unwrap();
            }
            for h in &theirs {
                a.set(*h, round).unwrap();
            }
            let now = 16 * (round as u64 + 1);
            a.tick(now);
            while let Some(o) = a.poll_outbound() {
                b.receive(&o.bytes).unwrap();
            }
            b.tick(now);
        }
        assert_eq!(b.sync.own_written, 50);
        assert_eq!(b.sync.streams[&PeerId::new(1)].values.len(), 3);
        let mut listed = b.sync.streams[&PeerId::new(1)].values.clone();
        listed.sort_unstable();
        listed.dedup();
        assert_eq!(listed.len(), 3, "each value once");
    }

    /// A catch-up of our own stream from `base` visits the values written after `base`,
    /// each once, whatever else we wrote before; the write log stays within twice the
    /// values written (plus a constant) however long the session.
    #[test]
    fn a_catch_up_costs_the_writes_since_its_base() {
        use crate::context::ValueOptions;
        use crate::value::ValueType;
        let mut a = Context::new(1, Options::default()).unwrap();
        a.add_peer(2).unwrap();
        let hs: Vec<_> = (0..200)
            .map(|k| a.create(&format!("v{k}"), ValueType::I64, ValueOptions::default()).unwrap())
            .collect();
        a.tick(16);
        let base = a.sync.my_seq();
        let index = |a: &Context, k: usize| a.index_of(hs[k]);
        for round in 0..1000u64 {
            // Value 7 every tick, value 9 every tenth.
            a.set(hs[7], round as i64).unwrap();
            if round % 10 == 0 {
                a.set(hs[9], round as i64).unwrap();
            }
            a.tick(32 + 16 * round);
        }
        let me = PeerId::new(1);
        let lacking = a.sync.lacking(me, base, &a.table);
        assert_eq!(lacking, vec![index(&a, 7), index(&a, 9)]);
        assert!(a.sync.lacking(me, a.sync.my_seq(), &a.table).is_empty());
        assert_eq!(a.sync.lacking(me, Seq::NONE, &a.table).len(), 200);
        assert!(a.sync.own_log.len() <= 2 * 200 + 64, "log of {} entries", a.sync.own_log.len());
    }

    /// yrs panicking on a peer's update (the test hook stands in for a crafted update
    /// that trips a yrs bug) is contained at the storage boundary: no panic reaches the
    /// caller, the update is dropped and counted, the document is rebuilt from its last
    /// good state, and the value converges with its writer again afterwards. Both paths
    /// are hit: a deferred delta integrated later, and an update integrated on arrival.
    #[test]
    fn a_panic_in_yrs_is_contained_counted_and_healed() {
        use crate::context::ValueOptions;
        use crate::storage::test_hook::POISON;
        use crate::value::{Value, ValueType};
        let opts = Options::default;
        let mut a = Context::new(1, opts()).unwrap();
        let mut b = Context::new(2, opts()).unwrap();
        a.add_peer(2).unwrap();
        b.add_peer(1).unwrap();
        let mut now = 0;
        let mut step = |a: &mut Context, b: &mut Context| {
            now += 16;
            a.tick(now);
            while let Some(o) = a.poll_outbound() {
                b.receive(&o.bytes).unwrap();
            }
            b.tick(now);
            while let Some(o) = b.poll_outbound() {
                a.receive(&o.bytes).unwrap();
            }
        };
        let ha = a.create("hp", ValueType::I64, ValueOptions::default()).unwrap();
        let own = a.create("own", ValueType::I64, ValueOptions::default()).unwrap();
        a.set(ha, 10i64).unwrap();
        a.set(own, 1i64).unwrap();
        for _ in 0..5 {
            step(&mut a, &mut b);
        }
        let hb = b.open("hp").unwrap();
        let hown = b.open("own").unwrap();
        assert_eq!(b.get(hb).unwrap(), Value::I64(10));
        // b writes its own value so its document holds its own contribution too.
        b.set(hown, 2i64).unwrap();
        step(&mut a, &mut b);

        // A delta that is shown at once and integrated later: the integration panics
        // when b next needs the document (its own write to the same value).
        let i = b.index_of(hb);
        let (_, slots) = b.table.get_mut(i).crdt.doc.read(2);
        let a_clock = slots.iter().find(|s| s.0 == 1).unwrap().1;
        a.set(ha, 20i64).unwrap();
        step(&mut a, &mut b);
        assert_eq!(b.get(hb).unwrap(), Value::I64(20), "shown before integration");
        POISON.with(|p| p.set(Some((1, a_clock))));
        b.set(hb, 21i64).unwrap();
        step(&mut a, &mut b);
        POISON.with(|p| p.set(None));
        assert_eq!(b.metrics().rejected_updates, 1);

        // b's own contribution survived the rebuild, and everything converges again.
        for _ in 0..10 {
            step(&mut a, &mut b);
        }
        a.set(ha, 30i64).unwrap();
        for _ in 0..10 {
            step(&mut a, &mut b);
        }
        assert_eq!(a.get(ha).unwrap(), b.get(hb).unwrap());
        assert_eq!(b.get(hb).unwrap(), Value::I64(30));
        assert_eq!(a.get(own).unwrap(), Value::I64(2));
        assert_eq!(b.get(hown).unwrap(), Value::I64(2));

        // An update integrated on arrival (a new value's first delta is read in full).
        let late = a.create("late", ValueType::I64, ValueOptions::default()).unwrap();
        a.set(late, 7i64).unwrap();
        POISON.with(|p| p.set(Some((1, 0))));
        step(&mut a, &mut b);
        POISON.with(|p| p.set(None));
        assert_eq!(b.metrics().rejected_updates, 2);
        assert!(b.metrics().messages_rejected >= 1);
        // Not acknowledged, so a catches b up.
        for _ in 0..60 {
            step(&mut a, &mut b);
        }
        let hlate = b.open("late").unwrap();
        assert_eq!(b.get(hlate).unwrap(), Value::I64(7));
        assert_eq!(b.state(hlate).unwrap(), SyncState::Converged);
        assert_eq!(b.get(hb).unwrap(), Value::I64(30));
    }
}

#[cfg(test)]
mod fuzz {
    //! Hostile input that passes the checksum: random structure, random yrs bytes.
    use super::*;
    use crate::context::{Context, Options};
    use proptest::prelude::*;

    fn receiver() -> Context {
        let mut c = Context::new(1, Options::default()).unwrap();
        c.add_peer(2).unwrap();
        c
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        /// Any bytes after a valid header: rejected or applied, never a panic.
        #[test]
        fn sealed_garbage_never_panics(kind in 1u8..4, body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut c = receiver();
            let mut out = Vec::new();
            out.extend_from_slice(&crate::protocol::MAGIC);
            out.push(crate::protocol::PROTOCOL_VERSION);
            out.push(kind);
            put_varint(&mut out, 2);
            out.extend_from_slice(&body);
            let _ = c.receive(&seal(out));
            c.tick(16);
            c.tick(32);
            let _ = c.metrics();
        }

        /// A well-formed delta whose entry carries random bytes as its yrs update.
        #[test]
        fn random_updates_in_a_delta_never_panic(update in proptest::collection::vec(any::<u8>(), 0..200), id in "[a-z]{1,8}") {
            let mut c = receiver();
            let mut out = Vec::new();
            put_header(&mut out, MessageKind::Delta, PeerId::new(2), &[]);
            put_varint(&mut out, 1);
            put_varint(&mut out, 1);
            put_entry(&mut out, 0, Some(&id), &update);
            let _ = c.receive(&seal(out));
            c.tick(16);
            let _ = c.open(&id).map(|h| c.get(h));
        }

        /// A real update with a few bytes changed: often still decodes, then must apply
        /// or be refused without a panic.
        #[test]
        fn mutated_real_updates_never_panic(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
            let mut doc = crate::storage::ValueDoc::new(2);
            let key: std::sync::Arc<str> = "2".into();
            let mut rec = Vec::new();
            crate::register::encode_record(&[(PeerId::new(3), crate::ids::Clock::new(1))], Some(&crate::value::Value::Vec3([1.0, 2.0, 3.0])), &mut rec);
            doc.write(2, &key, Some(&[7, 0]), &rec);
            let mut update = doc.write(2, &key, None, &rec).to_vec();
            for (at, x) in flips {
                let i = at % update.len();
                update[i] ^= x | 1;
            }
            let mut c = receiver();
            let mut out = Vec::new();
            put_header(&mut out, MessageKind::Delta, PeerId::new(2), &[]);
            put_varint(&mut out, 1);
            put_varint(&mut out, 1);
            put_entry(&mut out, 0, Some("v"), &update);
            let _ = c.receive(&seal(out));
            c.tick(16);
            let _ = c.open("v").map(|h| c.get(h));
            c.tick(3000);
        }
    }
}

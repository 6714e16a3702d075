//! The sync protocol a context runs: streams, acknowledgements, catch-up, convergence.
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
//! Owns `receive`, `tick` and everything they do; never reads a clock or does I/O.

use crate::context::{check_peer_id, Context, Mode, Outbound, SyncState, ValueState};
use crate::error::Error;
use crate::events::ChangeKind;
use crate::policy::Policy;
use crate::protocol::{self, put_entry, put_header, put_varint, seal, Body, Entry, Limits, MessageKind};
use crate::register::{decode_record, encode_record, Slot};
use crate::seqwindow::SeqWindow;
use crate::storage::Payload;
use crate::value::ValueType;
use rustc_hash::FxHashMap as HashMap;

/// What this context knows of one peer's stream.
#[derive(Default)]
pub(crate) struct StreamIn {
    /// Which seqs of the stream were applied in full.
    pub recv: SeqWindow,
    /// The stream's value numbering -> our value index.
    pub index: HashMap<u32, u32>,
    /// Catch-up in progress.
    pub catchup: Option<Receiving>,
    /// Our indices of the values this stream wrote, each once: what a catch-up of the
    /// stream visits, instead of every value.
    pub values: Vec<u32>,
}

/// A catch-up snapshot arriving in chunks: who sends it, its id, chunks received so far.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Receiving {
    sender: u64,
    id: u64,
    chunks: u32,
}

/// A catch-up to send: member `to` holds `stream` up to `base`; the snapshot brings it to
/// `target`.
struct CatchUp {
    to: u64,
    stream: u64,
    base: u64,
    target: u64,
}

/// A delta being built during flush.
struct Staged {
    seq: u64,
    /// Entries in `entries`.
    count: u64,
    entries: Vec<u8>,
}

const HEADER_ROOM: usize = 64;
/// The most bytes one ack entry takes: peer id, upto and the window bits as varints.
const ACK_ENTRY_MAX: usize = 30;
/// Most streams (peers ever heard of) a context tracks; snapshots of further unknown
/// streams are refused, so hostile input cannot grow this table without bound.
const MAX_STREAMS: usize = 4096;

impl Context {
    fn limits(&self) -> Limits {
        Limits { max_message_bytes: self.opts.max_message_bytes, max_id_bytes: self.opts.max_id_bytes }
    }

    /// Takes a message from the transport. It is decoded and checked completely here;
    /// an `Err` means it was rejected (and counted) and nothing changed. Accepted
    /// messages take effect at the next `tick`.
    ///
    /// The message names its sender itself, and this call believes it: use
    /// [`Context::receive_from`] when the transport knows who sent the bytes.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.accept(bytes, None)
    }

    /// `receive` for a transport that knows which member sent the bytes (a connection
    /// per peer, an authenticated relay): a message that names another sender is
    /// rejected with [`Error::SenderMismatch`] and counted in `messages_forged`, so one
    /// member cannot speak, write or acknowledge in another's name.
    pub fn receive_from(&mut self, from: u64, bytes: &[u8]) -> Result<(), Error> {
        self.accept(bytes, Some(from))
    }

    fn accept(&mut self, bytes: &[u8], from: Option<u64>) -> Result<(), Error> {
        let res = protocol::decode(bytes, &self.limits()).and_then(|msg| {
            check_peer_id(msg.sender)?;
            if let Some(from) = from.filter(|&f| f != msg.sender) {
                return Err(Error::SenderMismatch { claimed: msg.sender, from });
            }
            if msg.sender == self.id {
                return Err(Error::FromSelf(msg.sender));
            }
            if self.members.get(msg.sender).is_none() {
                return Err(Error::UnknownPeer(msg.sender));
            }
            // Acknowledgements of our own stream beyond what we sent are lies (they would
            // make our writes look delivered); other streams' acks are the sender's own
            // claims about what it holds, which only it can know.
            if let Some(&(_, w)) =
                msg.acks.iter().find(|(s, w)| *s == self.id && w.claims_beyond(self.my_seq))
            {
                return Err(Error::Forged(format!(
                    "peer {} acknowledges seq {} of our stream; we sent {}",
                    msg.sender,
                    w.highest_saturating(),
                    self.my_seq
                )));
            }
            Ok(msg)
        });
        match res {
            Ok(msg) => {
                self.metrics.messages_in += 1;
                self.metrics.bytes_in += bytes.len() as u64;
                self.inbox.push(msg);
                Ok(())
            }
            Err(e) => {
                self.metrics.messages_rejected += 1;
                if matches!(e, Error::Forged(_) | Error::SenderMismatch { .. }) {
                    self.metrics.messages_forged += 1;
                }
                Err(e)
            }
        }
    }

    /// Advances the context to host time `now_ms`: flushes this tick's writes as one
    /// delta, applies received messages, updates membership and convergence, sends
    /// catch-ups, and hibernates idle values. Cost follows what changed, not how many
    /// values exist.
    pub fn tick(&mut self, now_ms: u64) {
        self.now = self.now.max(now_ms);
        // Acknowledgements first: they tell flush which members hold our previous writes
        // (so increments suffice). Received writes after flush: this tick's local writes
        // were made without having seen them.
        let inbox = std::mem::take(&mut self.inbox);
        for msg in &inbox {
            self.on_acks(msg.sender, &msg.acks);
        }
        self.forget_acked_sends();
        let staged = self.flush();
        self.apply_inbox(inbox);
        self.update_liveness();
        self.check_convergence();
        self.send_catchups();
        self.send_stream(staged);
        self.hibernate_idle();
    }

    /// The host time (ms, the clock `tick` takes) at which `tick` next has work to do if
    /// nothing else happens: a heartbeat, a catch-up or retransmission timer, a member
    /// timing out, an idle value to hibernate. `None` when nothing is scheduled. A local
    /// write, a membership change or a received message makes work at once: the deadline
    /// is then the current time (`now_ms`), as it is whenever it has passed.
    ///
    /// A server or relay can sleep until `min(next_deadline_ms, next receipt)` instead of
    /// ticking at a fixed rate; a context ticked only then behaves as one ticked every
    /// frame. Ticking earlier is always harmless.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        let now = self.now;
        if !self.inbox.is_empty() || !self.dirty.is_empty() {
            return Some(now);
        }
        let mut next: Option<u64> = None;
        let mut at = |t: u64| next = Some(next.map_or(t, |n: u64| n.min(t)));
        if let Some(&(t, _)) = self.idle.front() {
            at(t + self.opts.hibernate_after_ms);
        }
        if self.members.members.is_empty() {
            return next.map(|t| t.max(now));
        }
        at(self.last_send_ms + self.opts.heartbeat_ms);
        let (me, tick) = (self.id, self.opts.tick_interval_ms);
        for m in &self.members.members {
            if m.just_added {
                at(now);
                continue;
            }
            if !m.active {
                continue;
            }
            // Times out once silent for longer than the timeout (see update_liveness).
            at(m.last_heard_ms + self.opts.peer_timeout_ms + 1);
            let rto = m.rto_ms(tick);
            // When may_catch_up next allows a catch-up of `stream` to this member.
            let allowed = |stream: u64| m.catchup.get(&stream).map_or(0, |b| b.next_ms);
            // Our own stream, as send_catchups decides it.
            let ack = m.ack(me);
            if ack < self.my_seq {
                let missed_history = !m.acks.contains_key(&me) && m.joined_at_seq > ack;
                let gap = m.acks.get(&me).is_some_and(|w| w.has_gap());
                let wait = if gap { m.gap_wait_ms(tick) } else { rto };
                let overdue_at = if missed_history {
                    now
                } else {
                    self.sent_at.iter().find(|(s, _)| *s == ack + 1).map_or(now, |&(_, t)| t + wait)
                };
                at(overdue_at.max(allowed(me)));
            }
            // Streams of writers no longer here that this member lacks.
            for (&w, st) in &self.streams {
                if w == m.id || st.recv.upto == 0 || m.ack(w) >= st.recv.upto {
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

    // ---- flush: local writes -> yrs -> delta --------------------------------------

    fn flush(&mut self) -> Vec<Staged> {
        let mut staged: Vec<Staged> = Vec::new();
        if self.dirty.is_empty() {
            return staged;
        }
        let me = self.id;
        let limit = self.payload_limit();
        let dirty = std::mem::take(&mut self.dirty);
        let mut record = Vec::with_capacity(64);
        let any_active = self.members.any_active();
        for &i in &dirty {
            let i = i as usize;
            let v = &mut self.values[i];
            let pending = v.pending.take();
            let meta = if v.meta_unwritten && !v.meta_known {
                let mut m = vec![v.ty as u8];
                v.policy.encode(&mut m);
                Some(m)
            } else {
                None
            };
            v.meta_unwritten = false;
            if pending.is_none() && meta.is_none() {
                continue;
            }
            let prev_clock = v.stream(me).map_or(0, |s| s.clock);
            let (update, clock) = match &pending {
                Some(write) => {
                    // What this write has seen: every other writer's clock in this value
                    // (its slot, or its meta record for a creator that never wrote).
                    let mut seen: Vec<(u64, u32)> =
                        v.slots.iter().filter(|s| s.writer != me).map(|s| (s.writer, s.clock)).collect();
                    for r in v.streams.iter().filter(|r| r.peer != me && r.clock > 0) {
                        match seen.iter_mut().find(|(w, _)| *w == r.peer) {
                            Some(e) => e.1 = e.1.max(r.clock),
                            None => seen.push((r.peer, r.clock)),
                        }
                    }
                    record.clear();
                    encode_record(&seen, write.as_ref(), &mut record);
                    let update = v.doc.write(me, &self.slot_key, meta.as_deref(), &record);
                    let clock = prev_clock + 1 + meta.is_some() as u32;
                    let slot =
                        Slot { writer: me, clock, seen: seen.into_boxed_slice(), value: write.clone() };
                    match v.slots.binary_search_by_key(&me, |s| s.writer) {
                        Ok(k) => v.slots[k] = slot,
                        Err(k) => v.slots.insert(k, slot),
                    }
                    v.shows_local = true;
                    (update, clock)
                }
                None => (v.doc.write_meta(me, meta.as_deref().unwrap_or_default()), prev_clock + 1),
            };
            if meta.is_some() {
                v.meta_known = true;
            }
            // One message per tick unless it would exceed the size limit.
            let needs_new = match staged.last() {
                None => true,
                Some(last) => last.entries.len() + update.len() + v.id.len() + 16 > limit,
            };
            if needs_new {
                self.my_seq += 1;
                let entries = Vec::with_capacity(64 * dirty.len().min(4096));
                staged.push(Staged { seq: self.my_seq, count: 0, entries });
            }
            let seq = self.my_seq;
            // The id travels until every member has the message that announced it, so a
            // lost announcement costs no catch-up.
            let with_id = v.announce_seq == 0 || !self.members.everyone_has(me, v.announce_seq);
            if v.announce_seq == 0 {
                v.announce_seq = seq;
            }
            let last = staged.last_mut().expect("pushed above");
            put_entry(&mut last.entries, i as u32, with_id.then_some(&*v.id), &update);
            last.count += 1;
            let first = v.stream(me).is_none();
            let r = v.stream_mut(me, i as u32);
            r.last_seq = seq;
            r.clock = clock;
            v.state = if any_active { SyncState::Syncing } else { SyncState::LocalOnly };
            if first {
                self.own_values.push(i as u32);
            }
            self.metrics.writes_flushed += pending.is_some() as u64;
            self.reconcile(i);
            let shown = match (self.values[i].mode, &pending) {
                (Mode::FastLocal, Some(write)) => Some(write.clone()),
                _ => None,
            };
            self.refresh_resolution_shown(i, me, false, shown);
            self.mark_unconverged(i);
            self.touch(i);
        }
        for Staged { seq, .. } in &staged {
            self.sent_at.push_back((*seq, self.now));
        }
        while self.sent_at.len() > 4096 {
            self.sent_at.pop_front();
        }
        let mut dirty = dirty;
        dirty.clear();
        self.dirty = dirty;
        staged
    }

    // ---- inbox: messages -> yrs -> events ------------------------------------------

    fn apply_inbox(&mut self, inbox: Vec<crate::protocol::Message>) {
        for msg in inbox {
            match msg.body {
                Body::Ack => {}
                Body::Delta { seq, entries } => self.on_delta(msg.sender, seq, entries),
                Body::Snapshot { stream, catchup, chunks, base, target, entries } => {
                    let room = self.streams.len() < MAX_STREAMS || self.streams.contains_key(&stream);
                    if !room {
                        self.metrics.messages_rejected += 1;
                    }
                    if room && stream != self.id && check_peer_id(stream).is_ok() {
                        self.on_snapshot(msg.sender, stream, catchup, chunks, base, target, entries);
                    }
                }
            }
        }
    }

    fn on_acks(&mut self, sender: u64, acks: &[(u64, SeqWindow)]) {
        let (me, now, tick) = (self.id, self.now, self.opts.tick_interval_ms);
        let Some(m) = self.members.get_mut(sender) else { return };
        let silent = now.saturating_sub(m.last_heard_ms) > m.rto_ms(tick);
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
                        m.sample_rtt(now.saturating_sub(t));
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
        let me = self.id;
        let floor = self.members.members.iter().map(|m| m.ack(me)).min().unwrap_or(self.my_seq);
        while self.sent_at.front().is_some_and(|&(s, _)| s <= floor) {
            self.sent_at.pop_front();
        }
    }

    fn on_delta(&mut self, origin: u64, seq: u64, entries: Vec<Entry>) {
        if self.streams.entry(origin).or_default().recv.has(seq) {
            self.metrics.messages_duplicate += 1;
            return;
        }
        // Applied at once whatever its order. A message with an entry that could not be
        // applied is not recorded as received, so its sender will catch us up.
        if self.apply_entries(origin, seq, entries, false) {
            self.streams.entry(origin).or_default().recv.mark(seq);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_snapshot(
        &mut self,
        sender: u64,
        stream: u64,
        catchup: u64,
        chunks: u32,
        base: u64,
        target: u64,
        entries: Vec<Entry>,
    ) {
        // Entries are full states: applying them is always safe, whatever we had.
        self.apply_entries(stream, target, entries, true);
        let st = self.streams.entry(stream).or_default();
        if target <= st.recv.upto || base > st.recv.upto {
            return;
        }
        let got = match st.catchup {
            Some(r) if r.sender == sender && r.id == catchup => r.chunks + 1,
            _ => 1,
        };
        if got < chunks {
            st.catchup = Some(Receiving { sender, id: catchup, chunks: got });
            return;
        }
        st.catchup = None;
        st.recv.advance_to(target);
    }

    /// Applies entries of `origin`'s stream; false if any could not be applied.
    fn apply_entries(&mut self, origin: u64, seq: u64, entries: Vec<Entry>, snapshot: bool) -> bool {
        let me = self.id;
        let mut complete = true;
        let origin_key = crate::storage::slot_key(origin);
        for e in entries {
            let known = self.streams.get(&origin).and_then(|s| s.index.get(&e.index).copied());
            let (idx, created) = match (&e.id, known) {
                (Some(id), _) => match self.by_id.get(id.as_str()) {
                    Some(&i) => (i, false),
                    None => {
                        match self.insert_value(id, ValueType::Bool, Policy::LastWriterWins, Mode::FastLocal)
                        {
                            Ok(i) => {
                                self.values[i as usize].state = SyncState::Syncing;
                                (i, true)
                            }
                            Err(_) => {
                                // Over max_values: counted, and left for a catch-up.
                                self.metrics.messages_rejected += 1;
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
            if known != Some(idx) {
                self.streams.entry(origin).or_default().index.insert(e.index, idx);
            }
            let i = idx as usize;
            let v = &mut self.values[i];
            // Full re-read unless this is a later delta of a stream already known for this
            // value: a stream's first entry may carry its writer's meta record (concurrent
            // creations resolve in yrs), and snapshots carry every slot.
            let full = snapshot || created || !v.meta_known || v.stream(origin).is_none();
            let old = v.slots.iter().position(|s| s.writer == origin);
            let newer_known = old.is_some_and(|k| v.slots[k].clock >= e.stream_clock);
            // A delta carries its writer's own slot only, its newest record last: show
            // that and leave the update for later (see storage).
            let shown = match (&e.update, full) {
                (Payload::Scanned(bytes, span), false) => span
                    .last_buffer
                    .and_then(|(at, len)| decode_record(origin, e.stream_clock, &bytes[at..at + len]).ok()),
                _ => None,
            };
            match (shown.is_some(), e.update) {
                (true, Payload::Scanned(bytes, span)) => v.doc.defer(me, bytes, span),
                (_, update) => {
                    if v.doc.apply(me, update).is_err() {
                        // Dropped (and counted as a rejected update); a panic in yrs
                        // rebuilt the document, so read it again. Not acknowledged: the
                        // sender catches us up.
                        self.metrics.messages_rejected += 1;
                        complete = false;
                        self.reconcile(i);
                        continue;
                    }
                }
            }
            self.metrics.updates_applied += 1;
            if full {
                if Self::read_all(v, me) > 0 {
                    self.metrics.messages_rejected += 1;
                }
            } else if !newer_known {
                let slot = match shown {
                    Some(slot) => Some(Ok(slot)),
                    None => v
                        .doc
                        .read_slot(me, &origin_key)
                        .map(|rec| decode_record(origin, e.stream_clock, &rec)),
                };
                match slot {
                    Some(Ok(slot)) => match old {
                        Some(k) => v.slots[k] = slot,
                        None => {
                            let k = v.slots.partition_point(|s| s.writer < origin);
                            v.slots.insert(k, slot);
                        }
                    },
                    Some(Err(_)) => self.metrics.messages_rejected += 1,
                    None => {}
                }
            }
            let entry_seq = if snapshot { e.stream_seq } else { seq };
            let first = v.stream(origin).is_none();
            let r = v.stream_mut(origin, e.index);
            r.last_seq = r.last_seq.max(entry_seq);
            r.clock = r.clock.max(e.stream_clock);
            if v.state == SyncState::Converged || v.state == SyncState::LocalOnly && v.pending.is_none() {
                v.state = SyncState::Syncing;
            }
            if first {
                self.streams.entry(origin).or_default().values.push(i as u32);
            }
            self.reconcile(i);
            self.refresh_resolution(i, origin, created);
            self.mark_unconverged(i);
            self.touch(i);
        }
        complete
    }

    /// Re-reads meta and every slot of a value from its document; returns how many slot
    /// records were malformed (and skipped).
    fn read_all(v: &mut ValueState, me: u64) -> usize {
        let (meta, raw) = v.doc.read(me);
        if let Some((ty, policy)) = meta.as_deref().and_then(decode_meta) {
            v.ty = ty;
            v.policy = policy;
            v.meta_known = true;
        }
        let mut bad = 0;
        let mut slots = Vec::with_capacity(raw.len());
        for (w, clock, rec) in raw {
            match decode_record(w, clock, &rec) {
                Ok(s) => slots.push(s),
                Err(_) => bad += 1,
            }
        }
        if !v.meta_known {
            if let Some(ty) = slots.iter().find_map(|s| s.value.as_ref().map(|x| x.value_type())) {
                v.ty = ty;
            }
        }
        v.slots = slots;
        bad
    }

    /// Re-reads value `i` from its document if integrating deferred updates found a slot
    /// record shown ahead of what the document holds (see storage), and resolves again.
    fn reconcile(&mut self, i: usize) {
        if self.values[i].doc.take_stale() {
            self.reread(i);
        }
    }

    fn reread(&mut self, i: usize) {
        let me = self.id;
        let v = &mut self.values[i];
        if Self::read_all(v, me) > 0 {
            self.metrics.messages_rejected += 1;
        }
        let origin = v.slots.iter().max_by_key(|s| s.clock).map_or(me, |s| s.writer);
        self.refresh_resolution(i, origin, false);
        self.mark_unconverged(i);
        self.touch(i);
    }

    // ---- membership, convergence ----------------------------------------------------

    fn update_liveness(&mut self) {
        let (now, timeout) = (self.now, self.opts.peer_timeout_ms);
        let mut revived = false;
        for m in &mut self.members.members {
            if m.just_added {
                m.just_added = false;
                m.last_heard_ms = now;
            }
            let active = now.saturating_sub(m.last_heard_ms) <= timeout;
            if active && !m.active {
                // Back from silence (a healed partition): catch it up now, not after the
                // backoff its silence built up.
                m.catchup.clear();
                m.behind_since.clear();
                revived = true;
            }
            m.active = active;
        }
        if revived {
            self.mark_all_unconverged();
        }
    }

    fn check_convergence(&mut self) {
        if self.unconverged.is_empty() {
            return;
        }
        let any_active = self.members.any_active();
        // Per tick, per (stream, seq): does every active member hold it? Values written in
        // the same delta share the answer, so it is worked out once, not once per value.
        let mut have = std::mem::take(&mut self.converge_cache);
        have.clear();
        let list = std::mem::take(&mut self.unconverged);
        let mut keep = std::mem::take(&mut self.converge_scratch);
        keep.clear();
        for &i in &list {
            let i = i as usize;
            let v = &self.values[i];
            if v.pending.is_some() || v.meta_unwritten {
                keep.push(i as u32);
                continue;
            }
            if !any_active {
                let v = &mut self.values[i];
                v.unconverged = false;
                v.acknowledge();
                if v.state != SyncState::Conflicted {
                    v.state = SyncState::LocalOnly;
                }
                continue;
            }
            let members = &self.members;
            let acked =
                v.streams.iter().all(|r| match have.iter().find(|h| h.0 == r.peer && h.1 == r.last_seq) {
                    Some(h) => h.2,
                    None => {
                        let yes =
                            r.last_seq <= members.min_ack(r.peer) || members.all_have(r.peer, r.last_seq);
                        have.push((r.peer, r.last_seq, yes));
                        yes
                    }
                });
            let complete = v.slots.iter().all(|s| v.stream(s.writer).is_some_and(|r| r.clock >= s.clock));
            if !(acked && complete) {
                keep.push(i as u32);
                continue;
            }
            let now = self.now;
            let v = &mut self.values[i];
            v.unconverged = false;
            let old = v.visible();
            v.acknowledge();
            v.state = SyncState::Converged;
            if let Some(t) = v.write_time_ms.take() {
                self.converge_hist.record(now.saturating_sub(t));
            }
            let new = v.visible();
            let changed = match (&old, &new) {
                (Some(a), Some(b)) => !a.same_bits(b),
                (a, b) => a.is_some() != b.is_some(),
            };
            let kind = match (changed, v.mode) {
                (true, Mode::WaitForSync) if v.acked_removed => ChangeKind::Removed,
                (true, Mode::WaitForSync) => ChangeKind::Modified,
                _ => ChangeKind::StateChanged,
            };
            let origin = v.slots.iter().max_by_key(|s| s.clock).map_or(self.id, |s| s.writer);
            self.emit(i, kind, old, false, origin);
        }
        keep.extend(std::mem::take(&mut self.unconverged));
        self.unconverged = keep;
        self.converge_scratch = list;
        self.converge_cache = have;
    }

    // ---- catch-up ------------------------------------------------------------------

    fn send_catchups(&mut self) {
        let (me, now, tick) = (self.id, self.now, self.opts.tick_interval_ms);
        let mut jobs: Vec<CatchUp> = Vec::new();
        let active: Vec<u64> = self.members.members.iter().filter(|m| m.active).map(|m| m.id).collect();
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
                    || match self.sent_at.iter().find(|(s, _)| *s == ack + 1) {
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
                if w == m.id || active.contains(&w) || st.recv.upto == 0 {
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
        for CatchUp { to, stream, base, target } in jobs {
            self.send_snapshot(to, stream, base, target);
        }
    }

    /// Sends `to` the full state of every value `stream` touched after `base`, so it
    /// can mark `stream` applied up to `target`. Visits the values the stream wrote, not
    /// every value.
    fn send_snapshot(&mut self, to: u64, stream: u64, base: u64, target: u64) {
        let limit = self.payload_limit();
        let mut chunks: Vec<(u64, Vec<u8>)> = vec![(0, Vec::new())];
        let me = self.id;
        let mut stale = Vec::new();
        let mut touched = match stream == me {
            true => self.own_values.clone(),
            false => self.streams.get(&stream).map_or_else(Vec::new, |s| s.values.clone()),
        };
        // In index order, as the snapshot's entries always were.
        touched.sort_unstable();
        for i in touched {
            let i = i as usize;
            let v = &mut self.values[i];
            let Some(r) = v.stream(stream) else { continue };
            if r.last_seq <= base {
                continue;
            }
            let (index, last_seq, clock) = (r.index, r.last_seq, r.clock);
            let state = v.doc.encode_full(me);
            if v.doc.take_stale() {
                stale.push(i);
            }
            let last = chunks.last().expect("non-empty");
            if !last.1.is_empty() && last.1.len() + state.len() + v.id.len() + 32 > limit {
                chunks.push((0, Vec::new()));
            }
            let (count, buf) = chunks.last_mut().expect("non-empty");
            put_entry(buf, index, Some(&v.id), &state);
            put_varint(buf, last_seq.min(target));
            put_varint(buf, clock as u64);
            *count += 1;
        }
        for i in stale {
            self.reread(i);
        }
        let id = self.next_catchup_id;
        self.next_catchup_id += 1;
        let acks = self.ack_vector();
        let n = chunks.len() as u64;
        for (count, entries) in chunks {
            let mut out = Vec::with_capacity(entries.len() + HEADER_ROOM);
            put_header(&mut out, MessageKind::Snapshot, self.id, &acks);
            for x in [stream, id, n, base, target, count] {
                put_varint(&mut out, x);
            }
            out.extend_from_slice(&entries);
            self.push_out(Some(to), out);
        }
        self.metrics.catchups_sent += 1;
    }

    // ---- outbound ------------------------------------------------------------------

    /// How many bytes of entries one message may carry: `max_message_bytes` less its
    /// header, whose ack vector holds one entry (three varints, at most `ACK_ENTRY_MAX`
    /// bytes) per stream heard, counting streams this tick's messages may add (at most
    /// one per member). Never below one entry of the largest value: with thousands of
    /// streams and a small `max_message_bytes` the header alone can outgrow the limit,
    /// and then a message carries one entry and is too large for receivers rather than
    /// the sender splitting forever.
    fn payload_limit(&self) -> usize {
        let header = HEADER_ROOM + ACK_ENTRY_MAX * (self.streams.len() + self.members.members.len() + 1);
        let one_entry = self.opts.max_value_bytes + self.opts.max_id_bytes + 256;
        self.opts.max_message_bytes.saturating_sub(header).max(one_entry)
    }

    fn ack_vector(&self) -> Vec<(u64, SeqWindow)> {
        let mut acks: Vec<(u64, SeqWindow)> = self
            .streams
            .iter()
            .filter(|(_, s)| s.recv != SeqWindow::default())
            .map(|(&p, s)| (p, s.recv))
            .collect();
        acks.sort_unstable_by_key(|a| a.0);
        acks
    }

    fn push_out(&mut self, to: Option<u64>, bytes: Vec<u8>) {
        let bytes = seal(bytes);
        self.metrics.messages_out += 1;
        self.metrics.bytes_out += bytes.len() as u64;
        self.last_send_ms = self.now;
        self.outbound.push_back(Outbound { to, bytes });
    }

    fn send_stream(&mut self, staged: Vec<Staged>) {
        if self.members.members.is_empty() {
            return;
        }
        let acks = self.ack_vector();
        let sent_delta = !staged.is_empty();
        for Staged { seq, count, entries } in staged {
            let mut out = Vec::with_capacity(entries.len() + HEADER_ROOM + 16 * acks.len());
            put_header(&mut out, MessageKind::Delta, self.id, &acks);
            put_varint(&mut out, seq);
            put_varint(&mut out, count);
            out.extend_from_slice(&entries);
            self.push_out(None, out);
        }
        let heartbeat_due = self.now.saturating_sub(self.last_send_ms) >= self.opts.heartbeat_ms;
        if !sent_delta && (acks != self.last_acks_sent || heartbeat_due) {
            let mut out = Vec::with_capacity(HEADER_ROOM + 16 * acks.len());
            put_header(&mut out, MessageKind::Ack, self.id, &acks);
            self.push_out(None, out);
        }
        self.last_acks_sent = acks;
    }

    fn hibernate_idle(&mut self) {
        let (now, after, me) = (self.now, self.opts.hibernate_after_ms, self.id);
        while let Some(&(t, i)) = self.idle.front() {
            if t + after > now {
                break;
            }
            self.idle.pop_front();
            let v = &mut self.values[i as usize];
            v.in_idle_queue = false;
            if v.last_touch_ms + after > now {
                v.in_idle_queue = true;
                self.idle.push_back((v.last_touch_ms, i));
            } else if v.pending.is_some() || v.unconverged || !v.doc.hibernate(me) {
                v.in_idle_queue = true;
                self.idle.push_back((now, i));
            } else if v.doc.take_stale() {
                self.reread(i as usize);
            }
        }
    }
}

fn decode_meta(buf: &[u8]) -> Option<(ValueType, Policy)> {
    let (&ty, rest) = buf.split_first()?;
    Some((ValueType::from_u8(ty)?, Policy::decode(rest)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Options;

    /// A member's ack vector naming thousands of unknown streams is not stored.
    #[test]
    fn hostile_ack_vectors_do_not_grow_state() {
        let mut c = Context::new(1, Options::default()).unwrap();
        c.add_peer(2).unwrap();
        let acks: Vec<(u64, SeqWindow)> =
            (10..20_010).map(|s| (s, SeqWindow { upto: 5, above: 0 })).collect();
        let mut out = Vec::new();
        put_header(&mut out, MessageKind::Ack, 2, &acks);
        c.receive(&seal(out)).unwrap();
        c.tick(16);
        assert!(c.members.get(2).unwrap().acks.len() <= 1);
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
            put_header(&mut out, MessageKind::Delta, 2, &[]);
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
        assert_eq!(b.own_values.len(), 50);
        assert_eq!(b.streams[&1].values.len(), 3);
        let mut listed = b.streams[&1].values.clone();
        listed.sort_unstable();
        listed.dedup();
        assert_eq!(listed.len(), 3, "each value once");
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
        let (_, slots) = b.values[hb.to_raw().1 as usize].doc.read(2);
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
    use crate::context::Options;
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
            put_header(&mut out, MessageKind::Delta, 2, &[]);
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
            crate::register::encode_record(&[(3, 1)], Some(&crate::value::Value::Vec3([1.0, 2.0, 3.0])), &mut rec);
            doc.write(2, &key, Some(&[7, 0]), &rec);
            let mut update = doc.write(2, &key, None, &rec);
            for (at, x) in flips {
                let i = at % update.len();
                update[i] ^= x | 1;
            }
            let mut c = receiver();
            let mut out = Vec::new();
            put_header(&mut out, MessageKind::Delta, 2, &[]);
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

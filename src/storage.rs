//! Where a value's replicated state lives: one small yrs document per value.
//!
//! # Layout, and why
//! design.md measured that the obvious layout (one Doc, one Map, one key per value)
//! leaks about 400 bytes per overwrite forever: yrs only squashes overwritten map items
//! that are adjacent in one client's clock space and share a key, and a client writing
//! many keys of one Doc interleaves them. So every value gets its own Doc with one root
//! map `"v"` holding:
//! - `"m"`: the value's type and policy, written once by the creator;
//! - one key per writer (its peer id in decimal) holding that writer's latest slot
//!   record (see `register`).
//!
//! A peer only ever writes its own key, so its overwrites are consecutive in its own
//! clock space and yrs squashes them into one range: memory stays flat for a single
//! writer *and* for several peers writing the same value (each writer's run merges on
//! its own). Resolution between writers happens above yrs, by policy.
//!
//! A live yrs Doc costs about 1-2 KB even when tiny, too much for 10,000 idle values, so
//! a value idle for a while is *hibernated*: its Doc is encoded as a yrs v1 update (tens
//! of bytes) and dropped; the next write or incoming update revives it. Hibernation is
//! lossless: the encoded state is the full document.
//!
//! Integrating a remote update costs about 2 us in yrs (a transaction, its commit and
//! garbage collection), and a remote position is overwritten 60 times a second. So
//! remote updates are *deferred*: queued here, undecided, until something needs the
//! document itself (a full read, a local write, an encode for a catch-up, hibernation),
//! and then integrated in one transaction. Meanwhile the receiver shows the newest slot
//! record the update holds, which `update_scan` finds without decoding it; once
//! integrated, a shown record the document does not hold marks the value stale and it is
//! re-read. A writer's whole contribution (it starts at clock 0) replaces everything
//! queued from that writer that it covers, so a value a peer keeps writing holds at most
//! one queued update per remote writer, and a hot value costs one integration when it
//! goes quiet instead of one per write.
//!
//! A local overwrite is the same story the other way round: after a first write through
//! yrs, this peer's whole contribution has a fixed shape, so the next one is made from
//! it without a transaction (`update_scan::next_overwrite`, tested byte for byte against
//! yrs) and queued like a remote contribution. A document nobody else wrote (`foreign`
//! unset) is kept as that contribution instead, from its second write on, and overwrites
//! patch the cold bytes: a value one peer writes needs no live document at all. On its
//! receivers the same holds: a document only one writer wrote is that writer's
//! contribution, and the writer's next one replaces it whole (when it has the fixed
//! shape, whose one live record is the one shown, and the meta record held), so neither
//! a position rewritten every tick nor a value written now and then among thousands
//! keeps or revives a live document on either side.
//!
//! Owns the yrs documents only; it never decides what a write means.

use crate::error::Error;
use crate::update_scan::{Refusal, Span};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use yrs::updates::decoder::Decode;
use yrs::{
    Any, ClientID, Doc, Map, MapRef, Options, Out, ReadTxn, StateVector, Transact, TransactionMut, Update,
};

pub(crate) use crate::update_scan::{slot_key, slot_writer};
use crate::update_scan::{OwnShape, META_KEY, ROOT};

/// A peer's yrs update as a message brought it, checked before anything is applied. A
/// delta's is scanned, not decoded: `update_scan` proves it well formed and limited to
/// its sender's own writes, and yrs decodes it only if it is ever integrated (most are
/// superseded first; see the module comment). A snapshot's carries every writer's state
/// and is integrated at once, so it is decoded now.
#[derive(Debug)]
pub(crate) enum Payload {
    Scanned(Slice, Span),
    Decoded(Update),
}

/// Bytes within a received message's body, sharing it: a delta's entries are kept as
/// parts of their message, so taking one costs no allocation (a cold document copies
/// its entry into its own bytes; see `defer`).
#[derive(Clone, Debug)]
pub(crate) struct Slice {
    buf: Shared,
    at: usize,
    len: usize,
}

impl Slice {
    /// Bytes `at..at + len` of `buf` (within it).
    pub fn new(buf: Shared, at: usize, len: usize) -> Slice {
        debug_assert!(at.checked_add(len).is_some_and(|end| end <= buf.len()), "a slice within its buffer");
        Slice { buf, at, len }
    }

    /// The bytes in an allocation of their own (the message they came in is not kept
    /// alive by what is stored).
    pub fn to_shared(&self) -> Shared {
        if self.at == 0 && self.len == self.buf.len() {
            self.buf.clone()
        } else {
            Shared::from(&**self)
        }
    }
}

impl std::ops::Deref for Slice {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[self.at..self.at + self.len]
    }
}

impl From<Shared> for Slice {
    fn from(buf: Shared) -> Slice {
        let len = buf.len();
        Slice { buf, at: 0, len }
    }
}

/// Update bytes as this module keeps them: a contribution is often held in several
/// places at once (the document's cold state or the queue, the recovery journal, the
/// writer's last contribution, the outgoing message), so it is shared, not copied.
pub(crate) type Shared = Arc<[u8]>;

impl Payload {
    /// A delta entry's update from `sender`.
    pub fn delta(raw: Slice, sender: u64) -> Result<Payload, Refusal> {
        crate::update_scan::scan_delta(&raw, sender).map(|span| Payload::Scanned(raw, span))
    }

    /// A snapshot entry's update.
    pub fn snapshot(raw: &[u8]) -> Result<Payload, Error> {
        decode_update(raw).map(Payload::Decoded)
    }

    /// Where the writer's clock range ends, for a scanned update.
    pub fn clock_end(&self) -> Option<u32> {
        match self {
            Payload::Scanned(_, span) => Some(span.end),
            Payload::Decoded(_) => None,
        }
    }
}

/// Decodes untrusted bytes as a yrs v1 update; a panic inside yrs's decoder becomes an
/// error like any other malformed input.
fn decode_update(bytes: &[u8]) -> Result<Update, Error> {
    match guarded(|| Update::decode_v1(bytes)) {
        Ok(Ok(u)) => Ok(u),
        Ok(Err(e)) => Err(Error::decode(format!("embedded yrs update is invalid: {e}"))),
        Err(Panicked) => Err(Error::decode("embedded yrs update crashed the decoder")),
    }
}

struct Live {
    doc: Doc,
    map: MapRef,
}

enum State {
    Live(Box<Live>),
    /// Full document state as a yrs v1 update.
    Cold(Shared),
}

/// A remote update not yet integrated: its bytes and what `update_scan` found in them
/// (the writer, its clock range, and the slot record the receiver showed).
struct Deferred {
    bytes: Shared,
    span: Span,
}

impl Deferred {
    fn shown(&self) -> &[u8] {
        self.span.last_buffer.map_or(&[], |(at, len)| &self.bytes[at..at + len])
    }
}

/// Integrate anyway once this many updates wait (bare increments, which no later update
/// supersedes; our writers send whole contributions, but the format allows both).
const MAX_DEFERRED: usize = 16;

// ---- the yrs boundary ----------------------------------------------------------------
//
// yrs has panicked on invalid updates before, and every update here comes from a peer.
// So each yrs call that integrates or encodes remote content runs contained: a panic
// becomes `Panicked`, the document it happened in is abandoned and rebuilt from its last
// good state (`Recovery`), and the update is dropped and counted (`rejected_updates`).

/// yrs panicked; the document it was changing is abandoned.
struct Panicked;

/// Runs `f` in one write transaction of `doc` and commits it, each inside the
/// containment. The transaction lives outside the closure, so a panic in `f` unwinds only
/// to `catch_unwind`, never through the transaction: dropping it there would run yrs's
/// commit while unwinding, and a second panic in it would abort the process. It is
/// committed (dropped) afterwards, when nothing is unwinding, so a panic in the commit is
/// one more contained panic; dropping it frees the document's lock, and the caller then
/// drops the document it abandons instead of leaking it (a member sending crafted updates
/// must not be able to grow our memory either).
fn contained<R>(doc: &Doc, f: impl FnOnce(&mut TransactionMut) -> R) -> Result<R, Panicked> {
    let mut txn = doc.transact_mut();
    let result = catch_unwind(AssertUnwindSafe(|| f(&mut txn)));
    let committed = catch_unwind(AssertUnwindSafe(move || drop(txn)));
    match (result, committed) {
        (Ok(r), Ok(())) => Ok(r),
        _ => Err(Panicked),
    }
}

/// A read-only yrs call (an encode) inside the containment. Read transactions commit
/// nothing, so unwinding through one is safe.
fn guarded<R>(f: impl FnOnce() -> R) -> Result<R, Panicked> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|_| Panicked)
}

/// Integrates one remote update. The test build can make it panic, standing in for a
/// crafted update that trips a bug in yrs.
fn integrate(txn: &mut TransactionMut, update: Update) -> bool {
    #[cfg(test)]
    test_hook::maybe_panic(&update);
    txn.apply_update(update).is_ok()
}

#[cfg(test)]
pub(crate) mod test_hook {
    use std::cell::Cell;
    thread_local! {
        /// While `Some((client, clock))`, integrating any update on this thread that
        /// carries `client`'s items past `clock` panics inside yrs's transaction, every
        /// time, as a crafted update would. Older state (checkpoints) still integrates.
        pub static POISON: Cell<Option<(u64, u32)>> = const { Cell::new(None) };
    }
    pub(super) fn maybe_panic(update: &yrs::Update) {
        if let Some((client, clock)) = POISON.with(|p| p.get()) {
            if update.state_vector().get(&yrs::ClientID::new(client)) > clock {
                panic!("test hook: yrs panics integrating this update");
            }
        }
    }
}

/// An update integrated since the checkpoint.
struct Journaled {
    client: u64,
    /// Clock range end (what a later whole contribution of `client` must reach to
    /// supersede it).
    end: u32,
    bytes: Shared,
}

/// What rebuilds a live document yrs panicked in: its state when it was last encoded (or
/// revived) and every update integrated since. Bounded: a whole contribution replaces what
/// it covers (so a steady writer holds one entry), and past `MAX_JOURNAL` entries or
/// bytes a new checkpoint is encoded.
#[derive(Default)]
struct Recovery {
    checkpoint: Shared,
    journal: Vec<Journaled>,
    journal_bytes: usize,
}

const MAX_JOURNAL: usize = 24;

impl Recovery {
    fn from_checkpoint(checkpoint: Shared) -> Recovery {
        Recovery { checkpoint, journal: Vec::new(), journal_bytes: 0 }
    }

    /// Records an integrated update; true when the journal should be folded into a new
    /// checkpoint.
    fn record(&mut self, client: u64, end: u32, whole: bool, bytes: Shared) -> bool {
        if whole {
            self.journal.retain(|j| j.client != client || j.end > end);
        }
        self.journal.push(Journaled { client, end, bytes });
        self.journal_bytes = self.journal.iter().map(|j| j.bytes.len()).sum();
        self.journal.len() > MAX_JOURNAL || self.journal_bytes > 4 * self.checkpoint.len() + 1024
    }
}

/// How much of `Recovery` a rebuild replays, from the most to the least.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Keep {
    /// The checkpoint and every journaled update (after a panic integrating a new one,
    /// which the journal does not hold).
    All,
    /// The checkpoint and this peer's own writes (after a panic on state the journal
    /// already holds: some journaled remote update poisoned it).
    CheckpointAndOwn,
    /// This peer's own writes alone.
    Own,
    /// Nothing: an empty document.
    Nothing,
}

/// A fresh document holding what `keep` says of `rec`, or `Panicked` if yrs panics
/// replaying it.
fn replay(peer: u64, rec: &Recovery, keep: Keep) -> Result<Live, Panicked> {
    let live = new_doc(peer);
    contained(&live.doc, |txn| {
        if keep <= Keep::CheckpointAndOwn && !rec.checkpoint.is_empty() {
            if let Ok(u) = Update::decode_v1(&rec.checkpoint) {
                integrate(txn, u);
            }
        }
        for j in rec.journal.iter().filter(|j| keep == Keep::All || keep < Keep::Nothing && j.client == peer)
        {
            if let Ok(u) = Update::decode_v1(&j.bytes) {
                integrate(txn, u);
            }
        }
    })?;
    Ok(live)
}

/// One value's yrs document, live or hibernated, and the remote updates waiting for it.
pub(crate) struct ValueDoc {
    state: State,
    deferred: Vec<Deferred>,
    /// Rebuilds the live document after a panic in yrs (none while hibernated: the cold
    /// bytes are the state).
    recovery: Option<Box<Recovery>>,
    /// A deferred update, once integrated, held another slot record than the one shown,
    /// or the document was rebuilt: the value must be re-read (`take_stale`).
    stale: bool,
    /// Remote updates yrs refused or panicked on, dropped (see `rejected_updates`).
    rejected: u64,
    /// This peer's whole contribution after its last write and its shape, while live and
    /// of the shape an overwrite is made from without yrs (`update_scan::next_overwrite`).
    own_last: Option<Box<(Shared, OwnShape)>>,
    /// While hibernated: the cold bytes are one writer's whole contribution (a value only
    /// it wrote), of this shape. If the writer is this peer an overwrite is made from
    /// them; if another, its next whole contribution replaces them (a canonical
    /// contribution holds exactly one live slot record, the one `update_scan` shows, so
    /// there is nothing to integrate or check). Either way the document stays cold.
    cold_shape: Option<SoleWriter>,
    /// The document holds, or waits to integrate, another writer's items (or a save's,
    /// which may hold them): then it is more than this peer's contribution.
    foreign: bool,
    /// The live document holds two writers' items: it is never one writer's
    /// contribution again (`defer` stops asking).
    several_writers: bool,
}

/// The one writer whose whole contribution a document is, and that contribution's shape.
type SoleWriter = (u64, OwnShape);

/// Whether a document's one queued update is its whole state (`single_writer_whole`).
enum Whole {
    Is(Shared, SoleWriter),
    /// The document holds another writer's items: it never will be.
    SeveralWriters,
    Not,
}

/// A slot as stored: writer, its yrs clock in this document, the record bytes.
pub(crate) type RawSlot = (u64, u32, Vec<u8>);

fn new_doc(peer: u64) -> Live {
    let mut opts = Options::with_client_id(ClientID::new(peer));
    opts.skip_gc = false;
    let doc = Doc::with_options(opts);
    let map = doc.get_or_insert_map(ROOT);
    Live { doc, map }
}

impl ValueDoc {
    /// An empty, live document written as `peer`.
    pub fn new(peer: u64) -> ValueDoc {
        ValueDoc {
            state: State::Live(Box::new(new_doc(peer))),
            deferred: Vec::new(),
            recovery: None,
            stale: false,
            rejected: 0,
            own_last: None,
            cold_shape: None,
            foreign: false,
            several_writers: false,
        }
    }

    /// What a forgotten table entry's place holds until it is reused: no document.
    pub fn forgotten() -> ValueDoc {
        ValueDoc {
            state: State::Cold(Shared::from([])),
            deferred: Vec::new(),
            recovery: None,
            stale: false,
            rejected: 0,
            own_last: None,
            cold_shape: None,
            foreign: false,
            several_writers: false,
        }
    }

    /// Reads the document's own fields (see `ValueTable::warm`).
    pub fn warm_fields(&self) -> u64 {
        self.cold_shape.is_some() as u64
            + self.own_last.is_some() as u64
            + self.stale as u64
            + self.is_live() as u64
            + self.deferred.len() as u64
    }

    /// Reads the first and last byte of the document's cold state or queue (see
    /// `ValueTable::warm`): a contribution of tens of bytes after the Arc's counts often
    /// spans two cache lines, and a receiver compares its prefix and overwrites its tail.
    pub fn warm_bytes(&self) -> u64 {
        let bytes: &[u8] = match &self.state {
            State::Cold(bytes) => bytes,
            State::Live(_) => self.deferred.first().map_or(&[], |d| &d.bytes[..]),
        };
        match (bytes.first(), bytes.last()) {
            (Some(&a), Some(&b)) => a as u64 + b as u64,
            _ => 0,
        }
    }

    pub fn is_live(&self) -> bool {
        matches!(self.state, State::Live(_))
    }

    /// Remote updates this document dropped because yrs refused them or panicked
    /// integrating them (each panic also rebuilt the document from its last good state).
    pub fn rejected_updates(&self) -> u64 {
        self.rejected
    }

    /// The recovery of the live document (kept only while live: boxed, so a hibernated
    /// value pays one pointer for it).
    fn rec(&mut self) -> &mut Recovery {
        self.recovery.get_or_insert_with(Box::default)
    }

    fn live_ref(&self) -> &Live {
        match &self.state {
            State::Live(l) => l,
            State::Cold(_) => unreachable!("revived first"),
        }
    }

    /// The live document with every deferred update integrated.
    fn live(&mut self, peer: u64) -> &Live {
        self.revive(peer);
        if !self.deferred.is_empty() {
            self.integrate_deferred(peer);
        }
        self.live_ref()
    }

    /// Journals this peer's own contribution if it is not yet (a revived document), before
    /// remote bytes are integrated: from then on a rebuild may have to drop the checkpoint,
    /// and it must still hold every write of ours (our yrs clocks never restart).
    fn journal_own(&mut self, peer: u64) {
        if self.rec().journal.iter().any(|j| j.client == peer) {
            return;
        }
        let live = self.live_ref();
        let ours = live.doc.transact().state_vector().get(&ClientID::new(peer)) > 0;
        if let Some(own) = ours.then(|| guarded(|| own_state(live, peer)).ok()).flatten() {
            self.rec().record(peer, u32::MAX, true, own.into());
        }
    }

    fn integrate_deferred(&mut self, peer: u64) {
        self.journal_own(peer);
        let deferred = std::mem::take(&mut self.deferred);
        let decoded: Vec<Option<Update>> = deferred.iter().map(|d| decode_update(&d.bytes).ok()).collect();
        let batch = contained(&self.live_ref().doc, |txn| {
            decoded.into_iter().map(|u| u.is_some_and(|u| integrate(txn, u))).collect::<Vec<bool>>()
        });
        let accepted = match batch {
            Ok(accepted) => accepted,
            // Someone in the batch made yrs panic: rebuild, then integrate one by one to
            // find it (the slow path runs only on hostile or buggy input).
            Err(Panicked) => {
                self.rebuild(peer, Keep::All);
                deferred.iter().map(|d| self.integrate_one(peer, &d.bytes)).collect()
            }
        };
        let mut fold = false;
        for (d, ok) in deferred.iter().zip(&accepted) {
            if *ok {
                fold |= self.rec().record(d.span.client, d.span.end, d.span.start == 0, d.bytes.clone());
            } else {
                self.rejected += 1;
            }
        }
        // The document is the truth: a record shown ahead of it that it does not hold
        // (the newest item was not the writer's slot after all, or yrs refused the update)
        // is replaced by what it holds. Only each writer's last update counts.
        let live = self.live_ref();
        let txn = live.doc.transact();
        let mut stale = false;
        for (k, d) in deferred.iter().enumerate() {
            if deferred[k + 1..].iter().any(|later| later.span.client == d.span.client) {
                continue;
            }
            let held = match live.map.get(&txn, slot_key(d.span.client).as_str()) {
                Some(Out::Any(Any::Buffer(buf))) => *buf == *d.shown(),
                _ => false,
            };
            stale |= !held;
        }
        drop(txn);
        self.stale |= stale;
        if fold {
            self.checkpoint(peer);
        }
    }

    /// Integrates one update in its own transaction: false if yrs refused it or panicked
    /// (then the document is rebuilt without it).
    fn integrate_one(&mut self, peer: u64, bytes: &[u8]) -> bool {
        let Ok(update) = decode_update(bytes) else { return false };
        match contained(&self.live_ref().doc, |txn| integrate(txn, update)) {
            Ok(ok) => ok,
            Err(Panicked) => {
                self.rebuild(peer, Keep::All);
                false
            }
        }
    }

    /// Replaces a document yrs panicked in by its last good state: what `keep` says of
    /// the recovery, or less if replaying that panics too (what others wrote then comes
    /// back with their next writes or a catch-up). What is dropped is dropped from the
    /// recovery as well. The value is re-read afterwards.
    fn rebuild(&mut self, peer: u64, keep: Keep) {
        let mut keep = keep;
        let rec = self.rec();
        let live = loop {
            match replay(peer, rec, keep) {
                Ok(live) => break live,
                Err(Panicked) if keep == Keep::Nothing => break new_doc(peer),
                Err(Panicked) => {
                    keep = match keep {
                        Keep::All => Keep::CheckpointAndOwn,
                        Keep::CheckpointAndOwn => Keep::Own,
                        _ => Keep::Nothing,
                    }
                }
            }
        };
        if keep > Keep::All {
            rec.journal.retain(|j| keep < Keep::Nothing && j.client == peer);
        }
        if keep > Keep::CheckpointAndOwn {
            rec.checkpoint = Shared::from([]);
        }
        self.state = State::Live(Box::new(live));
        self.stale = true;
    }

    /// Runs `op` on the live document, contained (`op` contains its own write
    /// transactions with `contained`). While it panics, the document is rebuilt with less
    /// of its recovery (the state it ran on holds what made yrs fail) and `op` runs again;
    /// a panic on an empty document is a bug of ours and is raised.
    fn with_retries<R>(&mut self, peer: u64, op: impl Fn(&Live) -> Result<R, Panicked>) -> R {
        for keep in [Keep::CheckpointAndOwn, Keep::Own, Keep::Nothing] {
            let live = self.live_ref();
            match guarded(|| op(live)).and_then(|r| r) {
                Ok(r) => return r,
                Err(Panicked) => {
                    self.rejected += 1;
                    self.rebuild(peer, keep);
                }
            }
        }
        match op(self.live_ref()) {
            Ok(r) => r,
            Err(Panicked) => panic!("yrs panicked on a fresh document holding only this peer's writes"),
        }
    }

    /// Folds the journal into a new checkpoint (the live document encoded).
    fn checkpoint(&mut self, peer: u64) {
        let bytes = self.with_retries(peer, |live| Ok(encode_state(live)));
        // This peer's own contribution stays journaled: a rebuild that must drop the
        // checkpoint still has every write of ours, so our clocks never restart.
        let rec = self.rec();
        let own: Vec<Journaled> = rec.journal.drain(..).filter(|j| j.client == peer).collect();
        *rec = Recovery::from_checkpoint(bytes.into());
        rec.journal = own;
    }

    fn revive(&mut self, peer: u64) {
        if let State::Cold(bytes) = &mut self.state {
            let bytes = std::mem::replace(bytes, Shared::from([]));
            // Cold bytes that were our contribution stay the one the next overwrite is
            // made from.
            self.own_last = match self.cold_shape.take() {
                Some((writer, shape)) if writer == peer => Some(Box::new((bytes.clone(), shape))),
                _ => None,
            };
            let live = new_doc(peer);
            // Our own encoding of a document that integrated cleanly; if yrs now refuses
            // or panics on it, the empty document left behind is refilled by peers.
            let ok = match Update::decode_v1(&bytes) {
                Ok(u) => matches!(contained(&live.doc, |txn| integrate(txn, u)), Ok(true)),
                Err(_) => false,
            };
            if ok {
                // The cold bytes are the checkpoint, for free; our own contribution is
                // journaled before the first remote update is integrated (`journal_own`).
                self.state = State::Live(Box::new(live));
                self.recovery = Some(Box::new(Recovery::from_checkpoint(bytes)));
            } else {
                self.rejected += 1;
                self.state = State::Live(Box::new(new_doc(peer)));
                self.recovery = None;
                self.stale = true;
            }
        }
    }

    /// Runs a local change and returns this peer's whole contribution afterwards,
    /// journaled for recovery. The commit garbage-collects remote items too, so it runs
    /// contained, with retries on a rebuilt document (see `with_retries`).
    fn local_change(&mut self, peer: u64, change: impl Fn(&Live, &mut TransactionMut)) -> Shared {
        self.live(peer);
        // The contribution an overwrite is made from changes here (a revival may just
        // have set it); `write` keeps the new one.
        self.own_last = None;
        let own: Shared = self
            .with_retries(peer, |live| {
                contained(&live.doc, |txn| change(live, txn))?;
                Ok(own_state(live, peer))
            })
            .into();
        if self.rec().record(peer, u32::MAX, true, own.clone()) {
            self.checkpoint(peer);
        }
        own
    }

    /// Writes this peer's slot record (and the meta record when `meta` is given) in one
    /// transaction and returns this peer's entire contribution to the document as the
    /// update to send: its squashed history (a few bytes once garbage-collected) and its
    /// latest write. That applies on any peer whatever it missed, so deltas need no
    /// ordering and a receiver can drop a queued one the moment a newer one arrives (see
    /// the module comment). The transaction's bare increment would be about a byte
    /// smaller but applies only on top of the previous write, and receivers would have to
    /// integrate every one of them.
    /// `key` is `slot_key(peer)`, passed in so the hot path does not format it.
    ///
    /// An overwrite after the first is made without yrs, from the previous contribution
    /// (`update_scan::next_overwrite`, byte for byte what yrs encodes). A value only this
    /// peer wrote then has no live document: the contribution is its cold state. One
    /// that others wrote too queues it for its live document like a remote whole
    /// contribution, integrated when the document is next needed (a read, a remote
    /// update, a catch-up, hibernation). Either way a value this peer keeps writing costs
    /// no yrs transaction per write.
    pub fn write(&mut self, peer: u64, key: &Arc<str>, meta: Option<&[u8]>, record: &[u8]) -> Shared {
        if meta.is_none() && !self.foreign && self.own_last.is_some() && self.is_live() {
            // Only this peer wrote it, and the next overwrite is made without yrs: the live
            // document is dead weight (a kilobyte or two of cache lines per value).
            self.hibernate(peer);
        }
        if let (None, State::Cold(prev), Some((writer, shape))) = (meta, &self.state, self.cold_shape) {
            // A value only this peer wrote, hibernated: its state is our contribution.
            if writer == peer {
                if let Some((own, _, shape)) = crate::update_scan::next_overwrite(prev, shape, peer, record) {
                    self.cold_shape = Some((peer, shape));
                    return self.set_cold(&own);
                }
            }
        }
        if let (None, true, Some((prev, shape))) = (meta, self.is_live(), self.own_last.as_deref()) {
            if let Some((own, span, shape)) = crate::update_scan::next_overwrite(prev, *shape, peer, record) {
                let own = Shared::from(own);
                self.own_last = Some(Box::new((own.clone(), shape)));
                self.deferred.retain(|d| d.span.client != peer);
                self.deferred.push(Deferred { bytes: own.clone(), span });
                if self.rec().record(peer, u32::MAX, true, own.clone()) {
                    self.live(peer);
                    self.checkpoint(peer);
                } else if self.deferred.len() >= MAX_DEFERRED {
                    self.live(peer);
                }
                return own;
            }
        }
        let own = self.local_change(peer, |live, txn| {
            if let Some(meta) = meta {
                live.map.insert(txn, META_KEY, Any::Buffer(meta.into()));
            }
            live.map.insert(txn, key.clone(), Any::Buffer(record.into()));
        });
        self.own_last = crate::update_scan::own_shape(&own, peer).map(|shape| Box::new((own.clone(), shape)));
        own
    }

    /// Writes only the meta record (a value created without an initial write); returns
    /// this peer's whole contribution as `write` does.
    pub fn write_meta(&mut self, peer: u64, meta: &[u8]) -> Shared {
        // Not the shape an overwrite is made from: the next write goes through yrs.
        self.local_change(peer, |live, txn| {
            live.map.insert(txn, META_KEY, Any::Buffer(meta.into()));
        })
    }

    /// Makes `bytes` the hibernated state and returns it, shared: copied over the previous
    /// state when this document holds it alone and it is as long (an overwrite of a
    /// fixed-size value usually is), so a steady writer's contribution costs no
    /// allocation on its receivers, nor on the writer once its message went out.
    fn set_cold(&mut self, bytes: &[u8]) -> Shared {
        if let State::Cold(cold) = &mut self.state {
            if let Some(held) = Arc::get_mut(cold).filter(|held| held.len() == bytes.len()) {
                held.copy_from_slice(bytes);
                return cold.clone();
            }
        }
        let fresh = Shared::from(bytes);
        self.state = State::Cold(fresh.clone());
        fresh
    }

    /// Queues a remote update that `update_scan` found to be `span` (see the module
    /// comment; `span.start == 0` is its writer's whole contribution, which replaces
    /// what it covers); it is integrated the next time the document is needed.
    pub fn defer(&mut self, peer: u64, bytes: Slice, span: Span) {
        self.foreign = true;
        if let (State::Cold(cold), Some((writer, held)), true) =
            (&self.state, self.cold_shape, self.deferred.is_empty() && span.start == 0)
        {
            // A value only this writer wrote, hibernated: its newer whole contribution
            // is the whole state (a random value of thousands, written now and then,
            // costs no revival), and an older one is held already.
            if writer == span.client && span.end <= held.end() {
                return;
            }
            let newer = (writer == span.client)
                .then(|| crate::update_scan::later_shape(cold, held, &bytes, writer))
                .flatten();
            if let Some(shape) = newer {
                self.set_cold(&bytes);
                self.cold_shape = Some((writer, shape));
                return;
            }
        }
        if span.start == 0 {
            self.deferred.retain(|d| d.span.client != span.client || d.span.end > span.end);
        }
        self.deferred.push(Deferred { bytes: bytes.to_shared(), span });
        if self.deferred.len() == 1 && !self.several_writers && self.is_live() {
            // A live document only this writer wrote (the first update a receiver takes
            // is integrated): its next contribution is the whole state, so it goes cold
            // and later ones replace it there.
            match self.single_writer_whole() {
                Whole::Is(bytes, sole) => {
                    self.state = State::Cold(bytes);
                    self.cold_shape = Some(sole);
                    self.recovery = None;
                    self.own_last = None;
                }
                Whole::SeveralWriters => self.several_writers = true,
                Whole::Not => {}
            }
        }
        if self.deferred.len() >= MAX_DEFERRED {
            self.live(peer);
        }
    }

    /// Whether an integration found a shown slot record the document does not hold, or
    /// the document was rebuilt (then the caller re-reads every slot); clears the flag.
    pub fn take_stale(&mut self) -> bool {
        std::mem::take(&mut self.stale)
    }

    /// Integrates a remote update now (with any deferred before it). An update yrs
    /// refuses or panics on is dropped, counted, and returned as an error.
    pub fn apply(&mut self, peer: u64, update: Payload) -> Result<(), Error> {
        self.foreign = true;
        let (update, journal) = match update {
            Payload::Scanned(bytes, span) => (decode_update(&bytes)?, Some((span, bytes))),
            Payload::Decoded(u) => (u, None),
        };
        self.live(peer);
        self.journal_own(peer);
        match contained(&self.live_ref().doc, |txn| integrate(txn, update)) {
            Ok(true) => {}
            Ok(false) => {
                self.rejected += 1;
                return Err(Error::decode("yrs rejected an update"));
            }
            Err(Panicked) => {
                self.rejected += 1;
                self.rebuild(peer, Keep::All);
                return Err(Error::decode("yrs panicked integrating an update; it was dropped"));
            }
        }
        // A snapshot (decoded on arrival, bytes gone) is folded into a checkpoint; catch-ups
        // are rare.
        let fold = match journal {
            Some((span, bytes)) => {
                self.rec().record(span.client, span.end, span.start == 0, bytes.to_shared())
            }
            None => true,
        };
        if fold {
            self.checkpoint(peer);
        }
        Ok(())
    }

    /// The slot record under `key` (a writer's `slot_key`), if that writer ever wrote.
    pub fn read_slot(&mut self, peer: u64, key: &str) -> Option<Arc<[u8]>> {
        let live = self.live(peer);
        let txn = live.doc.transact();
        match live.map.get(&txn, key)? {
            Out::Any(Any::Buffer(buf)) => Some(buf),
            _ => None,
        }
    }

    /// Reads the meta record and every slot, slots sorted by writer id.
    pub fn read(&mut self, peer: u64) -> (Option<Vec<u8>>, Vec<RawSlot>) {
        let live = self.live(peer);
        let txn = live.doc.transact();
        let sv = txn.state_vector();
        let mut meta = None;
        let mut slots = Vec::new();
        for (key, out) in live.map.iter(&txn) {
            let Out::Any(Any::Buffer(buf)) = out else { continue };
            if key == META_KEY {
                meta = Some(buf.to_vec());
            } else if let Some(writer) = slot_writer(key) {
                slots.push((writer, sv.get(&ClientID::new(writer)), buf.to_vec()));
            }
        }
        slots.sort_unstable_by_key(|s| s.0);
        (meta, slots)
    }

    /// The live document encoded, contained (see `with_retries`).
    fn encode_live(&mut self, peer: u64) -> Vec<u8> {
        self.live(peer);
        self.with_retries(peer, |live| Ok(encode_state(live)))
    }

    /// The whole document as one yrs v1 update (what a late joiner needs).
    pub fn encode_full(&mut self, peer: u64) -> Vec<u8> {
        match &self.state {
            State::Cold(bytes) if self.deferred.is_empty() => bytes.to_vec(),
            _ => self.encode_live(peer),
        }
    }

    /// Drops the live document, keeping its encoded state. Refused (returns false) while
    /// yrs holds updates whose dependencies have not arrived, since encoding would lose them.
    pub fn hibernate(&mut self, peer: u64) -> bool {
        if !self.is_live() && self.deferred.is_empty() {
            return true;
        }
        let only_ours = if self.foreign { None } else { self.own_last.take() };
        if let Some(last) = only_ours {
            // Only this peer ever wrote the document: its state is our whole
            // contribution, whatever is still queued of it; no need to integrate.
            let (own, shape) = *last;
            self.deferred.clear();
            self.state = State::Cold(own);
            self.cold_shape = Some((peer, shape));
            self.recovery = None;
            return true;
        }
        if let Whole::Is(bytes, sole) = self.single_writer_whole() {
            // Only one writer's items, its whole contribution waiting: that is the state.
            self.deferred.clear();
            self.state = State::Cold(bytes);
            self.cold_shape = Some(sole);
            self.recovery = None;
            self.own_last = None;
            return true;
        }
        let live = self.live(peer);
        let txn = live.doc.transact();
        if txn.has_missing_updates() {
            return false;
        }
        // A document only one writer wrote encodes as that writer's whole contribution.
        let sv = txn.state_vector();
        let only = match sv.iter().next() {
            Some((client, _)) if sv.len() == 1 => Some(client.get()),
            _ => None,
        };
        drop(txn);
        let bytes = self.encode_live(peer);
        self.cold_shape = only.and_then(|w| crate::update_scan::own_shape(&bytes, w).map(|shape| (w, shape)));
        self.state = State::Cold(bytes.into());
        self.recovery = None;
        self.own_last = None;
        true
    }

    /// The one deferred update, if it is a writer's canonical whole contribution (see
    /// `cold_shape`) and the live document holds nothing it does not cover (no other
    /// writer's items, none of this writer's past its end, nothing waiting for a missing
    /// dependency): then it is the document's whole state.
    fn single_writer_whole(&mut self) -> Whole {
        let [d] = &self.deferred[..] else { return Whole::Not };
        let writer = d.span.client;
        let shape = (d.span.start == 0).then(|| crate::update_scan::own_shape(&d.bytes, writer)).flatten();
        let (Some(shape), State::Live(live)) = (shape, &self.state) else { return Whole::Not };
        let txn = live.doc.transact();
        if txn.state_vector().iter().any(|(c, _)| c.get() != writer) {
            return Whole::SeveralWriters;
        }
        // Strictly older (a contribution ending where the document's does may differ from
        // what it holds, and yrs would keep what it holds), and the same meta record.
        let covered = txn.state_vector().iter().all(|(c, &clock)| c.get() == writer && clock < shape.end());
        let meta = match live.map.get(&txn, META_KEY) {
            Some(Out::Any(Any::Buffer(held))) => Some(held),
            _ => None,
        };
        let same_meta = meta.as_deref() == crate::update_scan::meta_record(&d.bytes, shape);
        if !covered || !same_meta || txn.has_missing_updates() {
            return Whole::Not;
        }
        drop(txn);
        match self.deferred.pop() {
            Some(d) => Whole::Is(d.bytes, (writer, shape)),
            None => Whole::Not,
        }
    }
}

/// The whole document as a yrs v1 update.
fn encode_state(live: &Live) -> Vec<u8> {
    live.doc.transact().encode_state_as_update_v1(&StateVector::default())
}

/// Everything `peer` inserted into the document (after garbage collection) and its own
/// deletions, as an update: a delta may touch nothing else (see `update_scan`).
fn own_state(live: &Live, peer: u64) -> Vec<u8> {
    let txn = live.doc.transact();
    let mut others = StateVector::default();
    for (client, clock) in txn.state_vector().iter() {
        if client.get() != peer {
            others.set_max(*client, *clock);
        }
    }
    let mut update = txn.encode_diff_v1(&others);
    // Only a document other writers wrote to can hold their deletions.
    if !others.is_empty() {
        crate::update_scan::keep_own_deletes(&mut update, peer);
    }
    update
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_apply_read_and_hibernate_roundtrip() {
        let mut a = ValueDoc::new(1);
        let mut b = ValueDoc::new(2);
        let (k1, k2): (Arc<str>, Arc<str>) = ("1".into(), "2".into());
        let u1 = a.write(1, &k1, Some(&[7, 0]), &[7, 1, 2, 3]);
        b.apply(2, Payload::Decoded(Update::decode_v1(&u1).unwrap())).unwrap();
        let u2 = b.write(2, &k2, None, &[9]);
        assert_eq!(a.read_slot(1, "2"), None);
        a.apply(1, Payload::Decoded(Update::decode_v1(&u2).unwrap())).unwrap();
        assert!(a.hibernate(1));
        assert!(!a.is_live());
        let (meta, slots) = a.read(1);
        assert!(a.is_live());
        assert_eq!(meta, Some(vec![7, 0]));
        assert_eq!(slots, vec![(1, 2, vec![7, 1, 2, 3]), (2, 1, vec![9])]);
        assert_eq!(b.read(2), a.read(1));
        assert_eq!(a.read_slot(1, "2").as_deref(), Some(&[9u8][..]));
    }

    /// The same writes through yrs alone, for comparison.
    fn write_through_yrs(
        d: &mut ValueDoc,
        peer: u64,
        key: &Arc<str>,
        meta: Option<&[u8]>,
        rec: &[u8],
    ) -> Shared {
        d.local_change(peer, |live, txn| {
            if let Some(meta) = meta {
                live.map.insert(txn, META_KEY, Any::Buffer(meta.into()));
            }
            live.map.insert(txn, key.clone(), Any::Buffer(rec.into()));
        })
    }

    /// Overwrites made without yrs are byte for byte what yrs writes, whatever happens
    /// between them: records of every length (varints of every width), another writer's
    /// updates integrated, hibernation, catch-up encodes, a value this peer did or did
    /// not create; and the document holds the same state afterwards.
    #[test]
    fn overwrites_made_without_yrs_are_what_yrs_writes() {
        let meta = Some(&[7u8, 0][..]);
        for (creator, meta, with_other) in [(true, meta, true), (false, None, true), (true, meta, false)] {
            let (mut fast, mut slow) = (ValueDoc::new(5), ValueDoc::new(5));
            let mut cold_writes = 0;
            let (k5, k7): (Arc<str>, Arc<str>) = ("5".into(), "7".into());
            let mut other = ValueDoc::new(7);
            let mut rng = crate::sim::Rng::new(creator as u64);
            let mut without_yrs = 0;
            for i in 0..400u32 {
                let rec: Vec<u8> = (0..rng.below(if i % 50 == 0 { 300 } else { 40 }))
                    .map(|b| (b as u32 + i) as u8)
                    .collect();
                let meta = if i == 0 { meta } else { None };
                let (a, b) =
                    (fast.write(5, &k5, meta, &rec), write_through_yrs(&mut slow, 5, &k5, meta, &rec));
                assert_eq!(a, b, "write {i} (creator {creator}, another writer {with_other})");
                cold_writes += !fast.is_live() as u32;
                without_yrs += fast.deferred.iter().any(|d| d.span.client == 5) as u32;
                // A value only this peer wrote has no live document after an overwrite.
                assert!(i == 0 || fast.foreign || !fast.is_live(), "write {i}");
                match rng.below(12) {
                    0 if with_other => {
                        let u = other.write(7, &k7, None, &i.to_le_bytes());
                        for d in [&mut fast, &mut slow] {
                            d.apply(5, Payload::Decoded(Update::decode_v1(&u).unwrap())).unwrap();
                        }
                    }
                    1 => assert!(fast.hibernate(5) && slow.hibernate(5)),
                    2 => assert_eq!(fast.encode_full(5), slow.encode_full(5), "write {i}"),
                    3 => assert_eq!(fast.read_slot(5, "5"), slow.read_slot(5, "5")),
                    _ => {}
                }
            }
            assert!(
                without_yrs + cold_writes > 300,
                "{without_yrs} + {cold_writes} of 400 writes without yrs"
            );
            // Once another writer's update is in, overwrites are queued for the live document.
            assert_eq!(without_yrs > 0, with_other, "{without_yrs} overwrites queued");
            assert_eq!(fast.read(5), slow.read(5));
            assert_eq!(fast.encode_full(5), slow.encode_full(5));
            assert!(!fast.take_stale(), "the document holds every record it showed");
        }
    }

    /// A receiver's document that only one writer wrote stays hibernated as that
    /// writer's overwrites arrive (each whole contribution replaces the cold bytes), and
    /// holds what integrating every one of them through yrs holds; an older contribution
    /// arriving late changes nothing; another writer's update, or our own write, ends it.
    #[test]
    fn a_single_writers_value_stays_cold_on_receivers() {
        let mut a = ValueDoc::new(1);
        let (mut cold, mut slow) = (ValueDoc::new(2), ValueDoc::new(2));
        let (k1, k2, k3): (Arc<str>, Arc<str>, Arc<str>) = ("1".into(), "2".into(), "3".into());
        let mut sent = Vec::new();
        for i in 0..60u32 {
            let meta = (i == 0).then_some(&[7u8, 0][..]);
            let u = a.write(1, &k1, meta, &i.to_le_bytes()[..1 + (i as usize % 4)]);
            let Ok(Payload::Scanned(bytes, span)) = Payload::delta(Slice::from(u.clone()), 1) else {
                panic!("a delta")
            };
            cold.defer(2, bytes, span);
            slow.apply(2, Payload::Decoded(Update::decode_v1(&u).unwrap())).unwrap();
            if i == 1 {
                assert!(!a.is_live(), "the first overwrite made without yrs, cold");
            }
            if i == 0 {
                assert!(cold.hibernate(2) && !cold.is_live());
            } else {
                assert!(!cold.is_live() && cold.deferred.is_empty(), "write {i} kept it cold");
                // Read from the tail only (`later_shape`), the same shape as read whole.
                assert_eq!(cold.cold_shape, crate::update_scan::own_shape(&u, 1).map(|s| (1, s)));
            }
            sent.push(u);
        }
        // Same-length contributions are copied over the cold bytes, on the receiver and
        // on the writer (whose previous one went out): no allocation.
        let cold_at = |d: &ValueDoc| match &d.state {
            State::Cold(c) => Some(c.as_ptr()),
            State::Live(_) => None,
        };
        let mut at = Vec::new();
        for _ in 0..3 {
            let u = a.write(1, &k1, None, &[5, 5, 5]);
            let Ok(Payload::Scanned(bytes, span)) = Payload::delta(Slice::from(u.clone()), 1) else {
                panic!()
            };
            drop(u);
            cold.defer(2, bytes, span);
            at.push((cold_at(&cold), cold_at(&a)));
        }
        assert!(at[1].0.is_some() && at[2].0 == at[1].0, "copied in place");
        assert!(at[1].1.is_some() && at[2].1 == at[1].1, "the writer's too");
        let u = a.write(1, &k1, None, &[6, 6, 6]);
        slow.apply(2, Payload::Decoded(Update::decode_v1(&u).unwrap())).unwrap();
        let Ok(Payload::Scanned(bytes, span)) = Payload::delta(Slice::from(u), 1) else { panic!() };
        cold.defer(2, bytes, span);
        // An older contribution, late: ignored while cold, no harm once integrated.
        let Ok(Payload::Scanned(bytes, span)) = Payload::delta(Slice::from(sent[40].clone()), 1) else {
            panic!()
        };
        cold.defer(2, bytes, span);
        assert!(!cold.is_live());
        assert_eq!(cold.encode_full(2), slow.encode_full(2));
        assert!(cold.hibernate(2) && !cold.is_live());
        assert_eq!(cold.read(2), slow.read(2));
        assert!(!cold.take_stale());
        // Back to cold from live with only the writer's items: the state is its
        // contribution again, so the next one is taken cold.
        assert!(cold.hibernate(2) && cold.cold_shape.map(|c| c.0) == Some(1));
        // Live, one newer contribution waiting: hibernating takes it as the state.
        cold.read(2);
        let u = a.write(1, &k1, None, &[8, 8]);
        let Ok(Payload::Scanned(bytes, span)) = Payload::delta(Slice::from(u.clone()), 1) else { panic!() };
        cold.defer(2, bytes, span);
        slow.apply(2, Payload::Decoded(Update::decode_v1(&u).unwrap())).unwrap();
        assert!(cold.hibernate(2) && cold.cold_shape == crate::update_scan::own_shape(&u, 1).map(|s| (1, s)));
        assert_eq!(cold.encode_full(2), slow.encode_full(2));
        // A writer sending another meta record (yrs keeps the one it holds) is not taken
        // as the state, cold or live: the receivers agree with yrs.
        let mut liar = ValueDoc::new(1);
        let mut lie = Shared::from([]);
        for i in 0..80u8 {
            lie = liar.write(1, &k1, (i == 0).then_some(&[9u8, 9][..]), &[i]);
        }
        fn meta(u: &[u8]) -> Option<&[u8]> {
            crate::update_scan::meta_record(u, crate::update_scan::own_shape(u, 1)?)
        }
        assert_eq!((meta(&lie), meta(&u)), (Some(&[9u8, 9][..]), Some(&[7u8, 0][..])));
        for live in [false, true] {
            let mut d = ValueDoc::new(2);
            d.apply(2, Payload::Decoded(Update::decode_v1(&u).unwrap())).unwrap();
            assert!(d.hibernate(2) && d.cold_shape.is_some());
            if live {
                d.read(2);
            }
            let Ok(Payload::Scanned(bytes, span)) = Payload::delta(Slice::from(lie.clone()), 1) else {
                panic!()
            };
            d.defer(2, bytes, span);
            assert!(d.hibernate(2));
            let mut yrs = ValueDoc::new(2);
            for x in [&u, &lie] {
                yrs.apply(2, Payload::Decoded(Update::decode_v1(x).unwrap())).unwrap();
            }
            assert_eq!(d.encode_full(2), yrs.encode_full(2), "live {live}");
            assert_eq!(d.read(2).0, Some(vec![7, 0]));
        }
        // Another writer: the cold bytes are no longer one writer's.
        let mut c = ValueDoc::new(3);
        c.apply(3, Payload::Decoded(Update::decode_v1(&sent[59]).unwrap())).unwrap();
        let other = c.write(3, &k3, None, &[9]);
        let Ok(Payload::Scanned(bytes, span)) = Payload::delta(Slice::from(other.clone()), 3) else {
            panic!()
        };
        cold.defer(2, bytes, span);
        slow.apply(2, Payload::Decoded(Update::decode_v1(&other).unwrap())).unwrap();
        assert!(cold.hibernate(2) && cold.cold_shape.is_none());
        let u = a.write(1, &k1, None, &[1, 2, 3]);
        let Ok(Payload::Scanned(bytes, span)) = Payload::delta(Slice::from(u.clone()), 1) else { panic!() };
        cold.defer(2, bytes, span);
        assert_eq!(cold.deferred.len(), 1, "deferred, not replacing the cold bytes");
        slow.apply(2, Payload::Decoded(Update::decode_v1(&u).unwrap())).unwrap();
        // Our own write to a value another wrote goes through yrs, and still agrees.
        cold.write(2, &k2, None, &[4]);
        slow.write(2, &k2, None, &[4]);
        assert_eq!(cold.read(2), slow.read(2));
        assert_eq!(cold.encode_full(2), slow.encode_full(2));
    }

    /// Seeded: a writer's contributions in any order, late, repeated, some applied at
    /// once (a catch-up's), with hibernation, reads and catch-up encodes between: a
    /// receiver that keeps them cold reads and encodes exactly what one integrating every
    /// update through yrs holds. (A writer sending two different contributions for the
    /// same clocks breaks any CRDT, yrs included, whose replicas then keep whichever came
    /// first; the meta record, which decides the value's type, is guarded anyway: see
    /// `a_single_writers_value_stays_cold_on_receivers`.)
    #[test]
    fn cold_receivers_agree_with_yrs_whatever_arrives() {
        let k1: Arc<str> = "1".into();
        for seed in 0..200u64 {
            let mut rng = crate::sim::Rng::new(seed);
            let mut w = ValueDoc::new(1);
            let sent: Vec<Shared> = (0..30u8)
                .map(|i| {
                    let rec = [i, (seed as u8).wrapping_mul(i), 3];
                    w.write(1, &k1, (i == 0).then_some(&[7, 0]), &rec[..1 + rng.below(3) as usize])
                })
                .collect();
            let (mut cold, mut yrs) = (ValueDoc::new(2), ValueDoc::new(2));
            for step in 0..40 {
                let u = &sent[rng.below(sent.len() as u64) as usize];
                let Ok(Payload::Scanned(bytes, span)) = Payload::delta(Slice::from(u.clone()), 1) else {
                    panic!("a delta")
                };
                if step == 0 || rng.below(8) == 0 {
                    cold.apply(2, Payload::Scanned(bytes, span)).unwrap();
                } else {
                    cold.defer(2, bytes, span);
                }
                yrs.apply(2, Payload::Decoded(Update::decode_v1(u).unwrap())).unwrap();
                match rng.below(6) {
                    0 => assert!(cold.hibernate(2)),
                    1 => assert_eq!(cold.read(2), yrs.read(2), "seed {seed} step {step}"),
                    2 => assert_eq!(cold.encode_full(2), yrs.encode_full(2), "seed {seed} step {step}"),
                    _ => {}
                }
            }
            assert_eq!(cold.read(2), yrs.read(2), "seed {seed}");
            assert_eq!(cold.encode_full(2), yrs.encode_full(2), "seed {seed}");
        }
    }

    #[test]
    fn only_canonical_decimal_keys_are_slots() {
        for w in [1u64, 9, 10, 4096, (1 << 53) - 1] {
            assert_eq!(slot_writer(&slot_key(w)), Some(w));
        }
        for bad in ["", "0", "05", "+5", "-5", " 5", "5 ", "m", "9007199254740992", "12345678901234567"] {
            assert_eq!(slot_writer(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn single_writer_overwrites_keep_state_flat() {
        let mut a = ValueDoc::new(1);
        let k: Arc<str> = "1".into();
        a.write(1, &k, Some(&[7, 0]), &[0; 13]);
        let mut sizes = Vec::new();
        for i in 0..20_000u32 {
            let mut rec = vec![0u8; 13];
            rec[..4].copy_from_slice(&i.to_le_bytes());
            a.write(1, &k, None, &rec);
            if i == 999 || i == 19_999 {
                sizes.push(a.encode_full(1).len());
            }
        }
        // Only the clock's varint width may grow (2 -> 3 bytes past 16,383 writes).
        assert!(sizes[1] <= sizes[0] + 4, "{sizes:?}");
    }
}

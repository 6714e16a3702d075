//! Saving a context and loading it back: the save format, `Context::save` /
//! `Context::load`, and the file helpers that write atomically.
//!
//! A save holds what a session needs to take the context back:
//! - every value: id, type, policy, mode, its yrs document (every writer's history that
//!   later writes merge with), what reads showed, a write not yet flushed;
//! - the sync bookkeeping peers continue from: our stream's last seq, which seqs of every
//!   other stream were applied, and each value's number and last seq on each stream.
//!
//! Not saved: members (a loaded context starts alone; its host adds peers as it does after
//! any start), messages in flight, queued events, custom merge functions (register them
//! again; until then their values resolve as LastWriterWins), options (the host's), host
//! time.
//!
//! Loaded under the peer id that saved it, the context continues its own stream: members
//! hold that stream up to the saved seq and take the next one as new. That is right only
//! for the peer's latest state (saved on quit, loaded on start): a peer that sent after the
//! save would reuse seqs and yrs clocks its peers already hold. A peer that may have, or a
//! different machine taking the state over (a room's keeper), loads under a new id: the
//! saved peer's stream is then carried like that of any peer that left (forwarded to
//! members that lack it), and the new id starts a stream of its own. An id that wrote in
//! the save, other than the saver's, is refused: it would restart a stream its peers
//! already hold.
//!
//! The format: magic, version, body, CRC-32 of all before it. Everything read is checked
//! (varints canonical, ids, types, policies, each document decoded by yrs) before the
//! context is built, so a corrupt or truncated save is an error and loads nothing.

use crate::codec::{put_varint, Malformed, Reader};
use crate::context::{Context, Options};
use crate::error::Error;
use crate::ids::{Clock, PeerId, Seq};
use crate::policy::Policy;
use crate::register::Own;
use crate::seqwindow::SeqWindow;
use crate::storage::{Payload, ValueDoc};
use crate::table::{SavedValue, StreamRef};
use crate::value::{Value, ValueType};
use crate::view::{Mode, SyncState};
use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

const MAGIC: &[u8; 7] = b"ZENSAVE";
/// Bumped when the format changes; a save of a newer version is refused with both numbers.
/// 2 (1.3) adds two value flags (local-only, a pending touch); 3 (1.4) a flag for
/// owner-only values, followed by their first owner and a transfer or claim not yet sent.
/// Every earlier version is read too.
pub const SAVE_VERSION: u8 = 3;
/// Most streams a save may name (the sync engine's own bound).
const MAX_STREAMS: usize = 4096;

/// A decoded save, checked, not yet a context.
struct Saved {
    peer: PeerId,
    my_seq: Seq,
    windows: Vec<(PeerId, SeqWindow)>,
    values: Vec<SavedValue>,
}

impl Context {
    /// The whole state of this context as bytes, for [`Context::load`] (here or on another
    /// machine). Writes not yet flushed are saved as pending and sent after the load. See
    /// the module docs for what is saved and under which peer id to load it.
    pub fn save(&mut self) -> Vec<u8> {
        let me = self.peer_id();
        let any_active = self.sync.members.any_active();
        let mut out = Vec::with_capacity(64 + 64 * self.table.len());
        out.extend_from_slice(MAGIC);
        out.push(SAVE_VERSION);
        put_varint(&mut out, me);
        put_varint(&mut out, self.sync.my_seq().get());
        let mut windows: Vec<(PeerId, SeqWindow)> = self
            .sync
            .streams
            .iter()
            .map(|(&p, s)| (p, s.recv))
            .filter(|(_, w)| *w != SeqWindow::default())
            .collect();
        windows.sort_unstable_by_key(|w| w.0);
        put_varint(&mut out, windows.len() as u64);
        for (p, w) in windows {
            for x in [p.get(), w.upto.get(), w.above] {
                put_varint(&mut out, x);
            }
        }
        // Forgotten entries' free places are not saved.
        let places: Vec<crate::ids::ValueIndex> = (0..self.table.len() as u32)
            .map(crate::ids::ValueIndex::new)
            .filter(|&i| !self.table.is_vacant(i))
            .collect();
        put_varint(&mut out, places.len() as u64);
        for i in places {
            let doc = self.table.encode_full(i, any_active, &mut self.metrics);
            let v = self.table.get(i);
            put_bytes(&mut out, v.id.as_bytes());
            out.push(v.crdt.ty as u8);
            let mut policy = Vec::new();
            v.crdt.policy.encode(&mut policy);
            put_bytes(&mut out, &policy);
            let flags = v.crdt.meta_known as u8
                | (v.crdt.meta_unwritten as u8) << 1
                | ((v.view.mode == Mode::WaitForSync) as u8) << 2
                | (v.view.acked_removed as u8) << 3
                | (v.view.shows_local as u8) << 4
                | (v.view.local_only as u8) << 5
                | (v.view.pending_touch as u8) << 6
                | (v.crdt.owner.is_some() as u8) << 7;
            out.push(flags);
            if let Some(o) = &v.crdt.owner {
                put_varint(&mut out, o.first.get());
                match o.staged {
                    None => out.push(0),
                    Some(s) => {
                        out.push(1);
                        put_varint(&mut out, s.epoch as u64);
                        put_varint(&mut out, s.owner.get());
                    }
                }
            }
            out.push(state_code(v.view.state));
            put_value(&mut out, v.view.acked.as_ref());
            match &v.view.pending {
                None => out.push(0),
                Some(None) => out.push(1),
                Some(Some(w)) => {
                    out.push(2);
                    put_value(&mut out, Some(w));
                }
            }
            put_varint(&mut out, v.book.announce_seq.get());
            put_varint(&mut out, v.book.streams.len() as u64);
            for r in &v.book.streams {
                for x in [r.peer.get(), r.index as u64, r.last_seq.get(), r.clock.get() as u64] {
                    put_varint(&mut out, x);
                }
            }
            put_bytes(&mut out, &doc);
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// A context for peer `peer_id` holding the state `bytes` (from [`Context::save`]).
    /// Each value queues a `Created` event, as for values a joiner learns. The context has
    /// no members: add them as after any start. `Err` (and no context) for a corrupt,
    /// truncated or newer save, a save over `opts.max_values` or `opts.max_id_bytes`, or a
    /// `peer_id` that wrote in the save but did not save it (see the module docs).
    pub fn load(peer_id: u64, opts: Options, bytes: &[u8]) -> Result<Context, Error> {
        let me = PeerId::checked(peer_id)?;
        let saved = decode(bytes, &opts, me)?;
        if saved.peer != me {
            let wrote = saved.windows.iter().any(|w| w.0 == me)
                || saved.values.iter().any(|v| v.streams.iter().any(|r| r.peer == me));
            if wrote {
                return Err(Error::SavedPeerTaken { peer: me.get(), saver: saved.peer.get() });
            }
        }
        if saved.values.len() > opts.max_values {
            return Err(Error::TooManyValues(saved.values.len()));
        }
        let mut ctx = Context::new(peer_id, opts)?;
        let taken_over = saved.peer != me;
        for mut v in saved.values {
            if taken_over {
                // Our stream never carried it: the next write by this id announces it.
                v.announce_seq = Seq::NONE;
            }
            let i = ctx.table.restore(v)?;
            if taken_over && ctx.table.get(i).crdt.slots.iter().any(|s| s.writer == me) {
                return Err(Error::SavedPeerTaken { peer: me.get(), saver: saved.peer.get() });
            }
        }
        ctx.sync.restore(saved.peer, saved.my_seq, &saved.windows, &ctx.table)?;
        Ok(ctx)
    }

    /// Saves to `path` atomically: the bytes go to a temporary file beside it, which is
    /// flushed to disk and renamed over `path`, and the directory is flushed; a crash
    /// leaves the old file or the new one, never a mix. `Error::Io` names the step that
    /// failed.
    pub fn save_file(&mut self, path: impl AsRef<Path>) -> Result<(), Error> {
        write_atomically(path.as_ref(), &self.save())
    }

    /// [`Context::load`] from a file [`Context::save_file`] wrote.
    pub fn load_file(peer_id: u64, opts: Options, path: impl AsRef<Path>) -> Result<Context, Error> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| io_error("read", path, e))?;
        Context::load(peer_id, opts, &bytes)
    }
}

fn io_error(step: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Io(format!("{step} {}: {e}", path.display()))
}

pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| Error::Io(format!("{} names no file", path.display())))?;
    let mut tmp_name = name.to_os_string();
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let written = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(|e| io_error("create", &tmp, e))?;
        f.write_all(bytes).map_err(|e| io_error("write", &tmp, e))?;
        f.sync_all().map_err(|e| io_error("flush", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| io_error("rename onto", path, e))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return written;
    }
    // The rename is durable once the directory is flushed (where the platform allows
    // opening a directory; elsewhere the rename alone is what there is).
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A value with its type tag (0: none).
fn put_value(out: &mut Vec<u8>, v: Option<&Value>) {
    match v {
        None => out.push(0),
        Some(v) => {
            out.push(v.value_type() as u8);
            let mut payload = Vec::new();
            v.encode_payload(&mut payload);
            put_bytes(out, &payload);
        }
    }
}

fn state_code(s: SyncState) -> u8 {
    match s {
        SyncState::LocalOnly => 0,
        SyncState::Syncing => 1,
        SyncState::Converged => 2,
        SyncState::Conflicted => 3,
    }
}

fn state_of(code: u8) -> Option<SyncState> {
    Some(match code {
        0 => SyncState::LocalOnly,
        1 => SyncState::Syncing,
        2 => SyncState::Converged,
        3 => SyncState::Conflicted,
        _ => return None,
    })
}

fn corrupt(what: impl Into<String>) -> Error {
    Error::BadSave(what.into())
}

/// Reads the fields of a save, each failure naming what it was reading.
struct Fields<'a> {
    r: Reader<'a>,
}

impl<'a> Fields<'a> {
    fn fail(what: &str) -> impl FnOnce(Malformed) -> Error + '_ {
        move |m| corrupt(format!("{what}: {m}"))
    }

    fn varint(&mut self, what: &str) -> Result<u64, Error> {
        self.r.varint().map_err(Self::fail(what))
    }

    fn u32(&mut self, what: &str) -> Result<u32, Error> {
        self.r.u32().map_err(Self::fail(what))
    }

    fn byte(&mut self, what: &str) -> Result<u8, Error> {
        self.r.byte().map_err(Self::fail(what))
    }

    fn bytes(&mut self, what: &str) -> Result<&'a [u8], Error> {
        let len = self.varint(what)?;
        self.r.bytes(len).map_err(Self::fail(what))
    }

    fn peer(&mut self, what: &str) -> Result<PeerId, Error> {
        let raw = self.varint(what)?;
        PeerId::checked(raw).map_err(|_| corrupt(format!("{what}: peer id {raw} is out of range")))
    }

    /// A count of items each at least `min_bytes` long: larger than what is left is
    /// corrupt (so no allocation follows a forged count).
    fn count(&mut self, what: &str, min_bytes: usize) -> Result<usize, Error> {
        let n = self.varint(what)?;
        if n > (self.r.remaining() / min_bytes) as u64 {
            return Err(corrupt(format!(
                "{what}: {n} items cannot fit the {} bytes left",
                self.r.remaining()
            )));
        }
        Ok(n as usize)
    }

    fn value(&mut self, what: &str) -> Result<Option<Value>, Error> {
        let tag = self.byte(what)?;
        if tag == 0 {
            return Ok(None);
        }
        let ty = ValueType::from_u8(tag).ok_or_else(|| corrupt(format!("{what}: type tag {tag}")))?;
        let payload = self.bytes(what)?;
        Value::decode_payload(ty, payload).map(Some).map_err(|e| corrupt(format!("{what}: {e}")))
    }
}

/// Checks and decodes a whole save; `me` is the loading peer (the documents' writer).
fn decode(bytes: &[u8], opts: &Options, me: PeerId) -> Result<Saved, Error> {
    let head = MAGIC.len() + 1;
    if bytes.len() < head + 4 || &bytes[..MAGIC.len()] != MAGIC {
        return Err(corrupt(format!("not a zen-crdt save ({} bytes, no ZENSAVE header)", bytes.len())));
    }
    let version = bytes[MAGIC.len()];
    if !(1..=SAVE_VERSION).contains(&version) {
        return Err(corrupt(format!("save format version {version}, this library reads {SAVE_VERSION}")));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    let crc = u32::from_le_bytes(crc.try_into().expect("4 bytes"));
    if crc32fast::hash(body) != crc {
        return Err(corrupt(format!(
            "checksum mismatch over {} bytes: the save is damaged or truncated",
            bytes.len()
        )));
    }
    let mut f = Fields { r: Reader::at(body, head) };
    let peer = f.peer("saving peer id")?;
    let my_seq = Seq::new(f.varint("own stream seq")?);
    let n = f.count("stream count", 3)?;
    if n > MAX_STREAMS {
        return Err(corrupt(format!("{n} streams, at most {MAX_STREAMS}")));
    }
    let mut windows = Vec::with_capacity(n);
    let mut seen = HashSet::new();
    for _ in 0..n {
        let p = f.peer("stream peer")?;
        let window = SeqWindow { upto: Seq::new(f.varint("stream seq")?), above: f.varint("stream window")? };
        if p == peer || !seen.insert(p) {
            return Err(corrupt(format!("stream of peer {p} listed twice")));
        }
        windows.push((p, window));
    }
    let n = f.count("value count", 12)?;
    let mut values = Vec::with_capacity(n.min(opts.max_values));
    let mut ids = HashSet::new();
    for k in 0..n {
        let v = decode_value(&mut f, opts, me).map_err(|e| match e {
            Error::BadSave(m) => corrupt(format!("value #{k}: {m}")),
            e => e,
        })?;
        if !ids.insert(v.id.clone()) {
            return Err(corrupt(format!("value id {:?} saved twice", v.id)));
        }
        values.push(v);
    }
    if !f.r.is_empty() {
        return Err(corrupt(format!("{} bytes after the last value", f.r.remaining())));
    }
    Ok(Saved { peer, my_seq, windows, values })
}

fn decode_value(f: &mut Fields, opts: &Options, me: PeerId) -> Result<SavedValue, Error> {
    let id = f.bytes("id")?;
    let id = std::str::from_utf8(id).map_err(|_| corrupt("id is not UTF-8"))?.to_owned();
    if id.is_empty() || id.len() > opts.max_id_bytes {
        return Err(Error::BadValueId { len: id.len(), max: opts.max_id_bytes });
    }
    let what = |field: &str| format!("{id:?} {field}");
    let tag = f.byte(&what("type"))?;
    let ty = ValueType::from_u8(tag).ok_or_else(|| corrupt(what(&format!("type tag {tag}"))))?;
    let policy = f.bytes(&what("policy"))?;
    let policy = Policy::decode(policy).ok_or_else(|| corrupt(what("policy")))?;
    let flags = f.byte(&what("flags"))?;
    let (mut first_owner, mut staged_own) = (None, None);
    if flags & 0x80 != 0 {
        first_owner = Some(f.peer(&what("first owner"))?);
        staged_own = match f.byte(&what("staged ownership"))? {
            0 => None,
            1 => {
                let epoch = f.u32(&what("staged epoch"))?;
                Some(Own { epoch, owner: f.peer(&what("staged owner"))? })
            }
            t => return Err(corrupt(what(&format!("staged ownership tag {t}")))),
        };
    }
    let state = f.byte(&what("state"))?;
    let state = state_of(state).ok_or_else(|| corrupt(what(&format!("state {state}"))))?;
    let acked = f.value(&what("acknowledged value"))?;
    let pending = match f.byte(&what("pending write"))? {
        0 => None,
        1 => Some(None),
        2 => Some(Some(f.value(&what("pending write"))?.ok_or_else(|| corrupt(what("pending write")))?)),
        t => return Err(corrupt(what(&format!("pending write tag {t}")))),
    };
    let announce_seq = Seq::new(f.varint(&what("announce seq"))?);
    let n = f.count(&what("stream count"), 4)?;
    let mut streams: Vec<StreamRef> = Vec::with_capacity(n);
    for _ in 0..n {
        let peer = f.peer(&what("stream peer"))?;
        let index = f.u32(&what("stream index"))?;
        let last_seq = Seq::new(f.varint(&what("stream seq"))?);
        let clock = Clock::new(f.u32(&what("stream clock"))?);
        if streams.iter().any(|s| s.peer == peer) {
            return Err(corrupt(what(&format!("stream {peer} listed twice"))));
        }
        streams.push(StreamRef { peer, index, last_seq, clock });
    }
    let raw = f.bytes(&what("document"))?;
    let mut doc = ValueDoc::new(me.get());
    let update = Payload::snapshot(raw).map_err(|e| corrupt(what(&format!("document: {e}"))))?;
    doc.apply(me.get(), update).map_err(|e| corrupt(what(&format!("document: {e}"))))?;
    Ok(SavedValue {
        id,
        ty,
        policy,
        meta_known: flags & 1 != 0,
        meta_unwritten: flags & 2 != 0,
        mode: if flags & 4 != 0 { Mode::WaitForSync } else { Mode::FastLocal },
        acked_removed: flags & 8 != 0,
        shows_local: flags & 16 != 0,
        local_only: flags & 32 != 0,
        pending_touch: flags & 64 != 0,
        first_owner,
        staged_own,
        acked,
        state,
        pending,
        announce_seq,
        streams,
        doc,
    })
}

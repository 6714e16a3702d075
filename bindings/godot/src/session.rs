//! The engine-free half of the extension: one player's zen-crdt context and what the
//! `ZenCrdtContext` node must do with it each frame, as plain data. `tick` returns the
//! sends for the multiplayer peer and the signals to emit, in that order, so the node
//! drains everything first and emits after (a signal handler may call back into the
//! node). Membership follows the transport's connect / disconnect notifications, or, when
//! the session has its own ENet link (`enet_listen` / `enet_connect`: a game with no
//! Godot multiplayer peer, or zen-crdt on a port of its own), the link's.
//!
//! Nothing here touches Godot, so `cargo test` drives it with real contexts over the
//! simulator.

use std::collections::HashMap;
use std::net::SocketAddr;
use zen_crdt::{
    pump, ChangeEvent, ChangeKind, CollectionKind, Context, EnetLink, EnetOptions, EntryKind, Key, Link,
    LinkStats, Mode, Options, SyncState, TableHandle, TableOptions, Value, ValueHandle, ValueOptions,
    ValueType,
};

/// Why a call failed, in words for `push_error`.
pub type Error = String;

fn peer(id: i64, what: &str) -> Result<u64, Error> {
    u64::try_from(id).map_err(|_| format!("{what} {id} is negative: Godot peer ids are positive"))
}

/// A message for the multiplayer peer: `to` is a Godot peer id, 0 for every peer (the
/// zen-crdt broadcast, `MultiplayerPeer.TARGET_PEER_BROADCAST`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Send {
    pub to: i32,
    pub bytes: Vec<u8>,
}

/// A signal of `ZenCrdtContext`, with its arguments.
#[derive(Clone, Debug, PartialEq)]
pub enum Signal {
    /// `value_changed(id, value, old_value, state, is_correction, origin, is_initial)`; a
    /// removed value has no new value, a first write no old one. `is_initial`: the value
    /// "was already there" (its content is new to this player: created by another, caught
    /// up on joining or after a partition, loaded), so one handler serves both.
    ValueChanged {
        id: String,
        value: Option<Value>,
        old: Option<Value>,
        state: i64,
        is_correction: bool,
        origin: i64,
        is_initial: bool,
    },
    /// `value_created(id)`: another peer created it and it arrived here (followed by
    /// `value_changed` with `is_initial` when it holds a value).
    ValueCreated { id: String },
    /// `value_touched(id, value, origin)`: `origin` re-announced the value unchanged.
    ValueTouched { id: String, value: Option<Value>, origin: i64 },
    /// `value_removed(id)`.
    ValueRemoved { id: String },
    /// `owner_changed(id, owner)`: the owner of owner-only value `id` is now `owner`
    /// (after the value's own signal when the same change moved the value too).
    OwnerChanged { id: String, owner: i64 },
    /// `write_rejected(id, value, rejected_value, owner)`: this player's write was refused
    /// because it no longer owns `id` (a `value_changed` correction follows).
    WriteRejected { id: String, value: Option<Value>, rejected: Option<Value>, owner: i64 },
    /// `state_changed(id, state)`: only the sync state changed.
    StateChanged { id: String, state: i64 },
    /// A member of set `set` was added (`set_member_added(set, member, is_initial,
    /// origin)`), removed (`set_member_removed(set, member, origin)`) or re-announced
    /// (`set_member_touched(set, member, origin)`). (2.2)
    SetMember { set: String, kind: EntryKind, member: Value, is_initial: bool, origin: i64 },
    /// An item of sequence `seq` was added, replaced, removed or re-announced at `index`
    /// (2.2): `seq_item_added(seq, index, item, is_initial, origin)`,
    /// `seq_item_changed(seq, index, item, old_item, origin)`, `seq_item_removed(seq,
    /// index, old_item, origin)`, `seq_item_touched(seq, index, item, origin)`.
    SeqItem {
        seq: String,
        kind: EntryKind,
        index: i64,
        item: Option<Value>,
        old: Option<Value>,
        is_initial: bool,
        origin: i64,
    },
    /// `collection_owner_changed(collection, kind, owner)`: the owner of owner-only table,
    /// set or sequence `collection` (`kind` "table", "set" or "sequence") is now `owner`.
    /// (2.2)
    CollectionOwnerChanged { collection: String, kind: CollectionKind, owner: i64 },
    /// `collection_write_rejected(collection, kind, key, value, rejected_value, owner)`:
    /// this player's write of `key` (a table's key, a set's member, a sequence's index)
    /// was refused everywhere: it did not own the collection (a claim of its that did not
    /// stand, or it wrote before it heard the collection was owned). `value` is what the
    /// key shows now; the element's own signal follows. (2.2)
    CollectionWriteRejected {
        collection: String,
        kind: CollectionKind,
        key: Key,
        index: i64,
        value: Option<Value>,
        rejected: Option<Value>,
        owner: i64,
    },
    /// A key of table `table` changed (2.2): `table_entry_added(table, key, value,
    /// is_initial, origin)`, `table_entry_changed(table, key, value, old_value, state,
    /// is_correction, origin)`, `table_entry_removed(table, key, old_value, origin)` or
    /// `table_entry_touched(table, key, value, origin)` (re-announced unchanged).
    TableEntry {
        table: String,
        kind: EntryKind,
        key: Key,
        value: Option<Value>,
        old: Option<Value>,
        state: i64,
        is_correction: bool,
        is_initial: bool,
        origin: i64,
    },
}

/// What one frame produced.
#[derive(Default, Debug)]
pub struct Frame {
    /// For the multiplayer peer (none when the session has its own link).
    pub sends: Vec<Send>,
    pub signals: Vec<Signal>,
    /// Something the game must hear of once (the ENet host refused this client).
    pub error: Option<String>,
}

/// Sync states as the node exposes them (`ZenCrdtContext.STATE_*` in GDScript).
pub fn state_code(s: SyncState) -> i64 {
    match s {
        SyncState::LocalOnly => 0,
        SyncState::Syncing => 1,
        SyncState::Converged => 2,
        SyncState::Conflicted => 3,
    }
}

/// Godot peer ids are positive 32-bit integers; zen-crdt's are 1..2^53.
pub fn godot_peer(peer: u64) -> Option<i32> {
    i32::try_from(peer).ok().filter(|p| *p > 0)
}

/// The node's default `target_message_bytes`: one ENet or WebRTC datagram, so a lost
/// packet loses only the values it carried (a larger message is fragmented by ENet and
/// lost whole if any fragment is).
pub const DEFAULT_TARGET_MESSAGE_BYTES: i64 = 1200;

/// The context options of a node whose `target_message_bytes` property is `target`
/// (0 or less: messages up to the library's `max_message_bytes`).
pub fn options_for(target: i64) -> Options {
    Options { target_message_bytes: target.max(0) as usize, ..Options::default() }
}

pub struct Session {
    ctx: Context,
    /// The session's own link, when it has one: it then carries every message and says
    /// who is a member.
    link: Option<EnetLink>,
    /// The host's refusal has been reported (it is reported once).
    refusal_told: bool,
    /// Tables the game opened, by id.
    tables: HashMap<String, TableHandle>,
    /// Sets the game opened, by id (a set and a table may share a name).
    sets: HashMap<String, TableHandle>,
    /// Sequences the game opened, by id.
    seqs: HashMap<String, TableHandle>,
}

fn address(addr: &str) -> Result<SocketAddr, Error> {
    addr.parse().map_err(|_| {
        format!("{addr:?} is not an IP address and port (\"0.0.0.0:7000\", \"[::1]:7000\"); names are not resolved")
    })
}

impl Session {
    /// A session for Godot peer `peer_id` (`multiplayer.get_unique_id()`).
    pub fn new(peer_id: i64, opts: Options) -> Result<Session, Error> {
        let id = peer(peer_id, "peer id")?;
        Ok(Session {
            ctx: Context::new(id, opts).map_err(|e| e.to_string())?,
            link: None,
            refusal_told: false,
            tables: HashMap::new(),
            sets: HashMap::new(),
            seqs: HashMap::new(),
        })
    }

    /// A session for Godot peer `peer_id` holding a state `save` produced (see
    /// `Context::load`: Godot's ids are new each connection, so a save is normally taken
    /// over under an id that never wrote in it, which is always safe).
    pub fn load(peer_id: i64, opts: Options, saved: &[u8]) -> Result<Session, Error> {
        let id = peer(peer_id, "peer id")?;
        Ok(Session {
            ctx: Context::load(id, opts, saved).map_err(|e| e.to_string())?,
            link: None,
            refusal_told: false,
            tables: HashMap::new(),
            sets: HashMap::new(),
            seqs: HashMap::new(),
        })
    }

    /// `load` from a file `save_file` wrote (an OS path).
    pub fn load_file(peer_id: i64, opts: Options, path: &str) -> Result<Session, Error> {
        let id = peer(peer_id, "peer id")?;
        let ctx = Context::load_file(id, opts, path).map_err(|e| e.to_string())?;
        Ok(Session {
            ctx,
            link: None,
            refusal_told: false,
            tables: HashMap::new(),
            sets: HashMap::new(),
            seqs: HashMap::new(),
        })
    }

    /// The whole state of this player's context (`Context::save`).
    pub fn save(&mut self) -> Vec<u8> {
        self.ctx.save()
    }

    /// Saves to the OS path `path` atomically (`Context::save_file`).
    pub fn save_file(&mut self, path: &str) -> Result<(), Error> {
        self.ctx.save_file(path).map_err(|e| e.to_string())
    }

    /// Listens for ENet clients at `addr` ("0.0.0.0:7000"; port 0 picks one) with this
    /// session's peer id: the session's own link from now on. The bound port.
    pub fn enet_listen(&mut self, addr: &str, opts: &EnetOptions) -> Result<u16, Error> {
        let link = EnetLink::listen(address(addr)?, self.ctx.peer_id(), opts).map_err(|e| e.to_string())?;
        let port = link.local_addr().map_err(|e| e.to_string())?.port();
        self.attach(link);
        Ok(port)
    }

    /// Connects to the ENet host at `addr` with this session's peer id: the session's own
    /// link from now on. Members arrive once the host has welcomed it.
    pub fn enet_connect(&mut self, addr: &str, opts: &EnetOptions) -> Result<(), Error> {
        let link = EnetLink::connect(address(addr)?, self.ctx.peer_id(), opts).map_err(|e| e.to_string())?;
        self.attach(link);
        Ok(())
    }

    /// Becomes a peer of an ENet mesh bound at `addr` with this session's peer id: every
    /// pair connected directly. The bound port; `dial` the others.
    pub fn enet_mesh(&mut self, addr: &str, opts: &EnetOptions) -> Result<u16, Error> {
        let link = EnetLink::mesh(address(addr)?, self.ctx.peer_id(), opts).map_err(|e| e.to_string())?;
        let port = link.local_addr().map_err(|e| e.to_string())?.port();
        self.attach(link);
        Ok(port)
    }

    /// Dials the mesh peer at `addr` (the session's link must be a mesh).
    pub fn dial(&mut self, addr: &str) -> Result<(), Error> {
        let to = address(addr)?;
        match self.link.as_mut() {
            Some(link) if link.is_mesh() => link.dial(to).map_err(|e| e.to_string()),
            _ => Err("dial needs the session's own mesh link (enet_mesh first)".into()),
        }
    }

    fn attach(&mut self, link: EnetLink) {
        self.close_link();
        self.link = Some(link);
        self.refusal_told = false;
    }

    /// Closes the session's own link (its peers see this one leave at once) and drops
    /// every member it brought.
    pub fn close_link(&mut self) {
        if let Some(mut link) = self.link.take() {
            link.close();
            for (peer, _) in self.ctx.peers() {
                let _ = self.ctx.remove_peer(peer);
            }
        }
    }

    pub fn has_link(&self) -> bool {
        self.link.is_some()
    }

    /// The own link's counters.
    pub fn link_stats(&self) -> Option<LinkStats> {
        self.link.as_ref().map(Link::stats)
    }

    pub fn context(&self) -> &Context {
        &self.ctx
    }

    pub fn context_mut(&mut self) -> &mut Context {
        &mut self.ctx
    }

    /// The transport connected `peer` (SceneMultiplayer `peer_connected`).
    pub fn peer_connected(&mut self, peer: i64) -> Result<(), Error> {
        let p = self::peer(peer, "peer id")?;
        self.ctx.add_peer(p).map_err(|e| e.to_string())
    }

    /// The transport lost `peer` (SceneMultiplayer `peer_disconnected`). A peer that was
    /// never a member is not an error here: Godot reports every disconnect.
    pub fn peer_disconnected(&mut self, peer: i64) {
        if let Ok(p) = u64::try_from(peer) {
            let _ = self.ctx.remove_peer(p);
        }
    }

    /// Bytes the transport received from `from` (SceneMultiplayer `peer_packet`).
    pub fn receive(&mut self, from: i64, bytes: &[u8]) -> Result<(), Error> {
        let p = peer(from, "sender")?;
        self.ctx.receive_from(p, bytes).map_err(|e| e.to_string())
    }

    /// Creates (or opens) `id`; the type comes from the first value the game gives it.
    pub fn create(
        &mut self,
        id: &str,
        ty: ValueType,
        mode: Mode,
        policy: zen_crdt::Policy,
        local_only: bool,
        owner: Option<u64>,
    ) -> Result<ValueHandle, Error> {
        self.ctx.create(id, ty, ValueOptions { mode, policy, local_only, owner }).map_err(|e| e.to_string())
    }

    /// Opens the table, set or sequence `id` of `kind`, of elements of type `ty` (created
    /// if new here), with `opts` (an owner-only one with `opts.owner`).
    pub fn open_collection(
        &mut self,
        kind: CollectionKind,
        id: &str,
        ty: ValueType,
        opts: TableOptions,
    ) -> Result<(), Error> {
        use CollectionKind as K;
        let (opened, names) = match kind {
            K::Table => (self.ctx.open_table(id, ty, opts), &mut self.tables),
            K::Set => (self.ctx.open_set(id, ty, opts), &mut self.sets),
            K::Sequence => (self.ctx.open_seq(id, ty, opts), &mut self.seqs),
        };
        names.insert(id.to_string(), opened.map_err(|e| e.to_string())?);
        Ok(())
    }

    /// Collection `id` of `kind`, opened with `open_collection`.
    pub fn collection(&self, id: &str, kind: CollectionKind) -> Result<TableHandle, Error> {
        match kind {
            CollectionKind::Table => self.table(id),
            CollectionKind::Set => self.set(id),
            CollectionKind::Sequence => self.seq(id),
        }
    }

    /// Sequence `id`, opened with `open_collection`.
    pub fn seq(&self, id: &str) -> Result<TableHandle, Error> {
        self.seqs.get(id).copied().ok_or_else(|| format!("no sequence {id:?}: open it with open_seq first"))
    }

    /// Set `id`, opened with `open_collection`.
    pub fn set(&self, id: &str) -> Result<TableHandle, Error> {
        self.sets.get(id).copied().ok_or_else(|| format!("no set {id:?}: open it with open_set first"))
    }

    /// Table `id`, opened with `open_collection`.
    pub fn table(&self, id: &str) -> Result<TableHandle, Error> {
        self.tables.get(id).copied().ok_or_else(|| format!("no table {id:?}: open it with open_table first"))
    }

    /// One frame at host time `now_ms`: ticks, then collects every outbound message and
    /// every change event, translated, for the node to send and emit.
    pub fn tick(&mut self, now_ms: u64) -> Frame {
        let mut frame = Frame::default();
        if let Some(link) = self.link.as_mut() {
            pump(&mut self.ctx, link, now_ms);
            if let (Some(why), false) = (link.refused(), self.refusal_told) {
                frame.error = Some(format!("the ENet host refused peer {}: {why}", self.ctx.peer_id()));
                self.refusal_told = true;
            }
            self.drain_signals(&mut frame.signals);
            return frame;
        }
        self.ctx.tick(now_ms);
        while let Some(out) = self.ctx.poll_outbound() {
            let to = match out.to {
                None => 0,
                Some(peer) => match godot_peer(peer) {
                    Some(p) => p,
                    None => continue, // not a Godot peer: nothing could deliver it
                },
            };
            frame.sends.push(Send { to, bytes: out.bytes });
        }
        self.drain_signals(&mut frame.signals);
        frame
    }

    /// The change events queued so far, as signals (a local write queues one at once):
    /// values' first, then tables'.
    pub fn drain_signals(&mut self, out: &mut Vec<Signal>) {
        self.drain_value_signals(out);
        while let Some(mut ev) = self.ctx.poll_table_change() {
            let Ok(table) = self.ctx.table_id(ev.table).map(str::to_owned) else { continue };
            let Ok(kind) = self.ctx.collection_kind(ev.table) else { continue };
            match ev.kind {
                EntryKind::OwnerChanged => {
                    let owner = ev.origin as i64;
                    out.push(Signal::CollectionOwnerChanged { collection: table, kind, owner });
                    continue;
                }
                EntryKind::Rejected => {
                    out.push(Signal::CollectionWriteRejected {
                        collection: table.clone(),
                        kind,
                        key: ev.key.clone(),
                        index: ev.index.map_or(-1, |i| i as i64),
                        value: ev.new.clone(),
                        rejected: ev.old.clone(),
                        owner: ev.origin as i64,
                    });
                    // Then the element's own signal for what it shows now.
                    ev.kind = match (&ev.old, &ev.new) {
                        (None, Some(_)) => EntryKind::Added,
                        (Some(_), None) => EntryKind::Removed,
                        (Some(a), Some(b)) if !a.same_bits(b) => EntryKind::Modified,
                        _ => continue,
                    };
                }
                _ => {}
            }
            if kind == CollectionKind::Sequence {
                out.push(Signal::SeqItem {
                    seq: table,
                    kind: ev.kind,
                    index: ev.index.map_or(-1, |i| i as i64),
                    item: ev.new,
                    old: ev.old,
                    is_initial: ev.is_initial,
                    origin: ev.origin as i64,
                });
                continue;
            }
            if kind == CollectionKind::Set {
                // Another add of a member already in changes nothing a game sees.
                let member = match ev.kind {
                    EntryKind::Added | EntryKind::Touched => ev.new,
                    EntryKind::Removed => ev.old,
                    _ => continue,
                };
                let Some(member) = member else { continue };
                let (kind, is_initial, origin) = (ev.kind, ev.is_initial, ev.origin as i64);
                out.push(Signal::SetMember { set: table, kind, member, is_initial, origin });
                continue;
            }
            out.push(Signal::TableEntry {
                table,
                kind: ev.kind,
                key: ev.key,
                value: ev.new,
                old: ev.old,
                state: state_code(ev.state),
                is_correction: ev.is_correction,
                is_initial: ev.is_initial,
                origin: ev.origin as i64,
            });
        }
    }

    fn drain_value_signals(&mut self, out: &mut Vec<Signal>) {
        while let Some(ev) = self.ctx.poll_change() {
            let Ok(id) = self.ctx.id(ev.value).map(str::to_owned) else { continue };
            let owner = self.ctx.owner(ev.value).ok().flatten().unwrap_or(0) as i64;
            let owner_changed = ev.owner_changed.then(|| Signal::OwnerChanged { id: id.clone(), owner });
            let changed = |id: String, ev: ChangeEvent| Signal::ValueChanged {
                id,
                value: ev.new,
                old: ev.old,
                state: state_code(ev.state),
                is_correction: ev.is_correction,
                origin: ev.origin as i64,
                is_initial: ev.is_initial,
            };
            match ev.kind {
                ChangeKind::Created if ev.new.is_some() => {
                    out.push(Signal::ValueCreated { id: id.clone() });
                    out.push(changed(id, ev));
                }
                ChangeKind::Created => out.push(Signal::ValueCreated { id }),
                ChangeKind::Removed => out.push(Signal::ValueRemoved { id }),
                ChangeKind::StateChanged => {
                    out.push(Signal::StateChanged { id, state: state_code(ev.state) })
                }
                ChangeKind::Touched => {
                    out.push(Signal::ValueTouched { id, value: ev.new, origin: ev.origin as i64 })
                }
                ChangeKind::Modified => out.push(changed(id, ev)),
                ChangeKind::OwnerChanged => {}
                ChangeKind::Rejected => {
                    let rejected = ev.old.clone();
                    out.push(Signal::WriteRejected {
                        id: id.clone(),
                        value: ev.new.clone(),
                        rejected,
                        owner,
                    });
                    out.push(changed(id, ev));
                }
            }
            out.extend(owner_changed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zen_crdt::sim::{LinkConfig, Network};
    use zen_crdt::Policy;

    /// The options a node with default properties uses.
    fn node_options() -> Options {
        options_for(DEFAULT_TARGET_MESSAGE_BYTES)
    }

    /// Players as the node would run them, over the simulated network, the node's part
    /// played by this loop: sends go out through the network, packets come back in.
    struct Game {
        net: Network,
        players: Vec<Session>,
        signals: Vec<Vec<Signal>>,
        now: u64,
    }

    impl Game {
        fn new(n: usize, link: LinkConfig) -> Game {
            let players: Vec<Session> =
                (0..n).map(|i| Session::new(i as i64 + 1, node_options()).unwrap()).collect();
            let mut g = Game { net: Network::new(5, n, link), players, signals: vec![vec![]; n], now: 0 };
            for i in 0..n {
                g.join(i);
            }
            g
        }

        /// Player `i` connects: the transport tells both sides (peer_connected).
        fn join(&mut self, i: usize) {
            self.net.online[i] = true;
            for j in 0..self.players.len() {
                if j != i && self.net.online[j] {
                    self.players[i].peer_connected(j as i64 + 1).unwrap();
                    self.players[j].peer_connected(i as i64 + 1).unwrap();
                }
            }
        }

        /// Player `i` disconnects: the transport tells the others (peer_disconnected).
        fn leave(&mut self, i: usize) {
            self.net.online[i] = false;
            for j in 0..self.players.len() {
                if j != i && self.net.online[j] {
                    self.players[j].peer_disconnected(i as i64 + 1);
                }
            }
        }

        fn frame(&mut self) {
            self.now += 16;
            for (from, to, bytes) in self.net.due(self.now) {
                let _ = self.players[to].receive(from as i64 + 1, &bytes);
            }
            for i in 0..self.players.len() {
                if !self.net.online[i] {
                    continue;
                }
                let f = self.players[i].tick(self.now);
                for s in f.sends {
                    if s.to == 0 {
                        self.net.broadcast(self.now, i, &s.bytes);
                    } else {
                        self.net.send(self.now, i, s.to as usize - 1, s.bytes);
                    }
                }
                self.signals[i].extend(f.signals);
            }
        }

        fn run(&mut self, frames: usize) {
            for _ in 0..frames {
                self.frame();
            }
        }
    }

    /// A player saves; the session goes on; a newcomer starts from that save under its
    /// own new id (Godot ids change per connection), joins, and every player agrees.
    #[test]
    fn a_session_started_from_a_save_joins_and_agrees() {
        let mut g = Game::new(2, lossy());
        g.players[0]
            .create("door", ValueType::Bool, Mode::FastLocal, Policy::LastWriterWins, false, None)
            .unwrap();
        let h = g.players[0].context().open("door").unwrap();
        g.players[0].context_mut().set(h, true).unwrap();
        g.run(60);
        let saved = g.players[1].save();
        let h = g.players[0].context().open("door").unwrap();
        g.players[0].context_mut().set(h, false).unwrap();
        g.run(30);
        // Player 3's host index 2: a new network slot, offline until it joins.
        let loaded = Session::load(3, node_options(), &saved).unwrap();
        assert_eq!(loaded.context().get(loaded.context().open("door").unwrap()).unwrap(), Value::Bool(true));
        let slot = g.net.add_host();
        assert_eq!(slot, 2);
        g.players.push(loaded);
        g.signals.push(vec![]);
        g.join(2);
        g.run(120);
        for p in &g.players {
            let c = p.context();
            assert_eq!(c.get(c.open("door").unwrap()).unwrap(), Value::Bool(false));
            assert!(c.all_in_state(SyncState::Converged));
        }
        // Loading reports each value as created; errors are words.
        assert!(g.signals[2].iter().any(|s| matches!(s, Signal::ValueCreated { id } if id == "door")));
        let err = |r: Result<Session, Error>| r.err().expect("refused");
        assert!(err(Session::load(2, node_options(), &saved[..10])).contains("save rejected"));
        assert!(err(Session::load(-1, node_options(), &saved)).contains("negative"));
        let path = std::env::temp_dir().join(format!("zen_godot_save_{}.zen", std::process::id()));
        let path = path.to_str().unwrap();
        g.players[0].save_file(path).unwrap();
        assert!(Session::load_file(9, node_options(), path).is_ok());
        std::fs::remove_file(path).unwrap();
        assert!(err(Session::load_file(9, node_options(), path)).contains("file: read"));
    }

    /// Tables: a key inserted, updated and removed by different players reaches every
    /// player as table signals with keys, values and origins; a late joiner's entries
    /// arrive as initial.
    #[test]
    fn tables_as_signals_and_a_late_joiner_hears_them_as_initial() {
        let mut g = Game::new(3, lossy());
        g.leave(2);
        for p in 0..2 {
            g.players[p]
                .open_collection(CollectionKind::Table, "blocks", ValueType::I64, TableOptions::default())
                .unwrap();
        }
        let t0 = g.players[0].table("blocks").unwrap();
        g.players[0].context_mut().table_set(t0, 7i64, 70i64).unwrap();
        g.players[0].context_mut().table_set(t0, "door", 1i64).unwrap();
        g.run(60);
        let t1 = g.players[1].table("blocks").unwrap();
        g.players[1].context_mut().table_set(t1, 7i64, 71i64).unwrap();
        g.players[1].context_mut().table_remove(t1, "door").unwrap();
        g.run(60);
        let summary = |sigs: &[Signal]| -> Vec<(EntryKind, Key, Option<Value>, i64, bool)> {
            sigs.iter()
                .filter_map(|s| match s {
                    Signal::TableEntry { table, kind, key, value, origin, is_initial, .. }
                        if table == "blocks" =>
                    {
                        Some((*kind, key.clone(), value.clone(), *origin, *is_initial))
                    }
                    _ => None,
                })
                .collect()
        };
        assert_eq!(
            summary(&g.signals[0]),
            [
                (EntryKind::Added, Key::Int(7), Some(Value::I64(70)), 1, false),
                (EntryKind::Added, Key::from("door"), Some(Value::I64(1)), 1, false),
                (EntryKind::Modified, Key::Int(7), Some(Value::I64(71)), 2, false),
                (EntryKind::Removed, Key::from("door"), None, 2, false),
            ]
        );
        // Player 3 joins late: what is there arrives as initial, before it opened the table.
        g.join(2);
        g.run(120);
        assert_eq!(summary(&g.signals[2]), [(EntryKind::Added, Key::Int(7), Some(Value::I64(71)), 2, true)]);
        g.players[2]
            .open_collection(CollectionKind::Table, "blocks", ValueType::I64, TableOptions::default())
            .unwrap();
        let t2 = g.players[2].table("blocks").unwrap();
        assert_eq!(g.players[2].context().table_entries(t2).unwrap(), [(Key::Int(7), Value::I64(71))]);
        // A set of the same name: members as signals, an add winning over a removal.
        for p in 0..3 {
            g.players[p]
                .open_collection(CollectionKind::Set, "blocks", ValueType::Str, TableOptions::default())
                .unwrap();
        }
        let s0 = g.players[0].set("blocks").unwrap();
        let s2 = g.players[2].set("blocks").unwrap();
        g.players[0].context_mut().set_add(s0, "door_open").unwrap();
        g.run(60);
        g.players[0].context_mut().set_remove(s0, "door_open").unwrap();
        g.players[2].context_mut().set_add(s2, "door_open").unwrap();
        g.run(120);
        assert_eq!(
            g.players[1].context().set_members(g.players[1].set("blocks").unwrap()).unwrap(),
            [Value::from("door_open")]
        );
        let member_signals: Vec<(bool, i64)> = g.signals[1]
            .iter()
            .filter_map(|s| match s {
                Signal::SetMember { set, kind, origin, .. } if set == "blocks" => {
                    Some((*kind == EntryKind::Added, *origin))
                }
                _ => None,
            })
            .collect();
        assert_eq!(member_signals.first(), Some(&(true, 1)), "{member_signals:?}");
        // A sequence of the same name: items with indexes as signals.
        for p in 0..3 {
            g.players[p]
                .open_collection(CollectionKind::Sequence, "blocks", ValueType::I64, TableOptions::default())
                .unwrap();
        }
        let q0 = g.players[0].seq("blocks").unwrap();
        for x in [1i64, 3] {
            g.players[0].context_mut().seq_push(q0, x).unwrap();
        }
        g.players[0].context_mut().seq_insert(q0, 1, 2i64).unwrap();
        g.run(60);
        let q1 = g.players[1].seq("blocks").unwrap();
        assert_eq!(g.players[1].context().seq_items(q1).unwrap(), [1i64, 2, 3].map(Value::I64));
        let seq_signals: Vec<(EntryKind, i64, Option<Value>)> = g.signals[1]
            .iter()
            .filter_map(|s| match s {
                Signal::SeqItem { seq, kind, index, item, .. } if seq == "blocks" => {
                    Some((*kind, *index, item.clone()))
                }
                _ => None,
            })
            .collect();
        assert!(seq_signals.contains(&(EntryKind::Added, 1, Some(Value::I64(2)))), "{seq_signals:?}");
        // Errors are words.
        assert!(g.players[2].seq("nope").unwrap_err().contains("open_seq"));
        assert!(g.players[2].set("nope").unwrap_err().contains("open_set"));
        assert!(g.players[2].table("nope").unwrap_err().contains("open_table"));
        let wrong = g.players[2].open_collection(
            CollectionKind::Table,
            "blocks",
            ValueType::Str,
            TableOptions::default(),
        );
        assert!(wrong.unwrap_err().contains("holds"));
    }

    /// An owner-only value: other players cannot write it; a transfer reaches everyone as
    /// `owner_changed`; when the owner leaves, the lowest remaining player takes over.
    #[test]
    fn owned_values_transfers_and_the_owner_leaving_as_signals() {
        let mut g = Game::new(3, lossy());
        g.players[1]
            .create("ball", ValueType::I64, Mode::FastLocal, Policy::LastWriterWins, false, Some(2))
            .unwrap();
        let h2 = g.players[1].context().open("ball").unwrap();
        g.players[1].context_mut().set(h2, 5i64).unwrap();
        g.run(60);
        let h3 = g.players[2].context().open("ball").unwrap();
        assert!(g.players[2].context_mut().set(h3, 6i64).is_err());
        assert_eq!(g.players[2].context().owner(h3).unwrap(), Some(2));
        for sigs in &mut g.signals {
            sigs.clear();
        }
        g.players[1].context_mut().transfer(h2, 3).unwrap();
        g.run(60);
        for (p, sigs) in g.signals.iter().enumerate() {
            let told = sigs
                .iter()
                .filter(|s| matches!(s, Signal::OwnerChanged { id, owner: 3 } if id == "ball"))
                .count();
            assert_eq!(told, 1, "player {}: {sigs:?}", p + 1);
        }
        g.players[2].context_mut().set(h3, 7i64).unwrap();
        g.run(60);
        for sigs in &mut g.signals {
            sigs.clear();
        }
        // Player 3 leaves: players 1 and 2 are told player 1 owns the ball now.
        g.leave(2);
        g.run(60);
        for p in 0..2 {
            let sigs = &g.signals[p];
            assert!(
                sigs.iter().any(|s| matches!(s, Signal::OwnerChanged { id, owner: 1 } if id == "ball")),
                "player {}: {sigs:?}",
                p + 1
            );
            let h = g.players[p].context().open("ball").unwrap();
            assert_eq!(g.players[p].context().get(h).unwrap(), Value::I64(7));
        }
    }

    /// Owner-only collections: others' writes fail; a transfer reaches everyone as
    /// `collection_owner_changed`; a player that wrote a table before it heard it was
    /// owned hears `collection_write_rejected` and its entry goes.
    #[test]
    fn owned_collections_transfers_and_rejected_writes_as_signals() {
        let mut g = Game::new(3, lossy());
        g.net.online[2] = false;
        let owned = TableOptions { owner: Some(1), ..TableOptions::default() };
        for p in 0..2 {
            for kind in [CollectionKind::Table, CollectionKind::Set, CollectionKind::Sequence] {
                g.players[p].open_collection(kind, "units", ValueType::I64, owned.clone()).unwrap();
            }
        }
        let t1 = g.players[0].table("units").unwrap();
        g.players[0].context_mut().table_set(t1, 1i64, 10i64).unwrap();
        // Player 3, cut off, opens the table as anyone's and writes.
        g.players[2]
            .open_collection(CollectionKind::Table, "units", ValueType::I64, TableOptions::default())
            .unwrap();
        let t3 = g.players[2].table("units").unwrap();
        g.players[2].context_mut().table_set(t3, 2i64, 666i64).unwrap();
        g.run(60);
        let q2 = g.players[1].seq("units").unwrap();
        assert!(g.players[1].context_mut().seq_push(q2, 1i64).is_err());
        for sigs in &mut g.signals {
            sigs.clear();
        }
        g.join(2);
        g.run(120);
        let rejected: Vec<(Key, Option<Value>)> = g.signals[2]
            .iter()
            .filter_map(|s| match s {
                Signal::CollectionWriteRejected {
                    collection,
                    kind: CollectionKind::Table,
                    key,
                    rejected,
                    owner: 1,
                    ..
                } if collection == "units" => Some((key.clone(), rejected.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(rejected, [(Key::Int(2), Some(Value::I64(666)))], "{:?}", g.signals[2]);
        for p in 0..3 {
            let t = g.players[p].table("units").unwrap();
            assert_eq!(g.players[p].context().table_entries(t).unwrap(), [(Key::Int(1), Value::I64(10))]);
        }
        for sigs in &mut g.signals {
            sigs.clear();
        }
        let s1 = g.players[0].set("units").unwrap();
        g.players[0].context_mut().transfer_table(s1, 2).unwrap();
        g.run(60);
        for p in 0..2 {
            let told = g.signals[p]
                .iter()
                .filter(|s| {
                    matches!(s, Signal::CollectionOwnerChanged { collection, kind: CollectionKind::Set, owner: 2 }
                        if collection == "units")
                })
                .count();
            assert_eq!(told, 1, "player {}: {:?}", p + 1, g.signals[p]);
        }
        let s2 = g.players[1].set("units").unwrap();
        g.players[1].context_mut().set_add(s2, 5i64).unwrap();
        g.run(60);
        assert_eq!(g.players[0].context().set_members(s1).unwrap(), [Value::I64(5)]);
    }

    /// Touches of a table key, a set member and a sequence item reach every player as
    /// `table_entry_touched`, `set_member_touched` and `seq_item_touched` signals.
    #[test]
    fn collection_touches_as_signals() {
        let mut g = Game::new(2, lossy());
        for p in 0..2 {
            for kind in [CollectionKind::Table, CollectionKind::Set, CollectionKind::Sequence] {
                g.players[p].open_collection(kind, "c", ValueType::I64, TableOptions::default()).unwrap();
            }
        }
        let (t, s, q) = (
            g.players[0].table("c").unwrap(),
            g.players[0].set("c").unwrap(),
            g.players[0].seq("c").unwrap(),
        );
        let c = g.players[0].context_mut();
        c.table_set(t, 1i64, 10i64).unwrap();
        c.set_add(s, 7i64).unwrap();
        c.seq_push(q, 5i64).unwrap();
        g.run(60);
        g.signals[1].clear();
        let c = g.players[0].context_mut();
        c.table_touch(t, 1i64, 10i64).unwrap();
        c.set_touch(s, 7i64).unwrap();
        c.seq_touch(q, 0).unwrap();
        g.run(60);
        let touched: Vec<String> = g.signals[1]
            .iter()
            .filter_map(|sig| match sig {
                Signal::TableEntry { kind: EntryKind::Touched, key, value, origin: 1, .. } => {
                    Some(format!("table {key} {value:?}"))
                }
                Signal::SetMember { kind: EntryKind::Touched, member, origin: 1, .. } => {
                    Some(format!("set {member:?}"))
                }
                Signal::SeqItem { kind: EntryKind::Touched, index, item, origin: 1, .. } => {
                    Some(format!("seq {index} {item:?}"))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            touched,
            ["table 1 Some(I64(10))", "set I64(7)", "seq 0 Some(I64(5))"],
            "{:?}",
            g.signals[1]
        );
    }

    /// A late joiner hears of what was already there through `value_changed` with
    /// `is_initial` (after `value_created`), later writes without it; a touch reaches
    /// everyone as `value_touched`; a local-only value makes no sends at all.
    #[test]
    fn initial_values_touches_and_local_only_values_as_signals() {
        let mut g = Game::new(3, lossy());
        g.net.online[2] = false;
        g.players[0]
            .create("door", ValueType::Bool, Mode::FastLocal, Policy::LastWriterWins, false, None)
            .unwrap();
        let h = g.players[0].context().open("door").unwrap();
        g.players[0].context_mut().set(h, true).unwrap();
        g.run(60);
        g.join(2);
        g.run(120);
        let initial = |sig: &Signal| matches!(sig, Signal::ValueChanged { id, value: Some(Value::Bool(true)), is_initial: true, origin: 1, .. } if id == "door");
        let late = &g.signals[2];
        let created =
            late.iter().position(|s| matches!(s, Signal::ValueCreated { id } if id == "door")).unwrap();
        assert!(late.get(created + 1).is_some_and(initial), "{late:?}");
        assert!(g.signals[1].iter().any(initial), "seen live by player 2: {:?}", g.signals[1]);
        for sigs in &mut g.signals {
            sigs.clear();
        }
        // Player 3 touches: everyone is told, by player 3, nothing changes.
        let h3 = g.players[2].context().open("door").unwrap();
        g.players[2].context_mut().touch(h3).unwrap();
        g.run(60);
        for (p, sigs) in g.signals.iter().enumerate() {
            let touched = sigs
                .iter()
                .filter(|s| matches!(s, Signal::ValueTouched { id, value: Some(Value::Bool(true)), origin: 3 } if id == "door"))
                .count();
            assert_eq!(touched, 1, "player {}: {sigs:?}", p + 1);
            assert!(!sigs.iter().any(|s| matches!(s, Signal::ValueChanged { .. })), "{sigs:?}");
        }
        // A local-only value: its writes are signalled here and sent nowhere. Two games
        // on one schedule, one also writing it every frame, send the same bytes.
        let play = |local: bool| {
            let mut g = Game::new(2, lossy());
            let (mut sent, mut changed) = (0, 0);
            let ui = local.then(|| {
                g.players[1]
                    .create("ui", ValueType::Str, Mode::FastLocal, Policy::LastWriterWins, true, None)
                    .unwrap()
            });
            for t in 0..120 {
                if let Some(ui) = ui {
                    g.players[1].context_mut().set(ui, Value::Str(format!("menu {t}"))).unwrap();
                }
                g.now += 16;
                for p in 0..2 {
                    let f = g.players[p].tick(g.now);
                    sent += f.sends.iter().map(|s| s.bytes.len()).sum::<usize>();
                    changed += f
                        .signals
                        .iter()
                        .filter(|s| matches!(s, Signal::ValueChanged { id, .. } if id == "ui"))
                        .count();
                }
            }
            if local {
                assert!(g.players[1]
                    .create("ui", ValueType::Str, Mode::FastLocal, Policy::LastWriterWins, false, None)
                    .is_err());
            }
            (sent, changed)
        };
        let ((plain, _), (with_local, changed)) = (play(false), play(true));
        assert_eq!(changed, 120);
        assert_eq!(with_local, plain, "a local-only value sends nothing");
    }

    fn lossy() -> LinkConfig {
        LinkConfig { latency_ms: 20, jitter_ms: 10, loss: 0.05, ..LinkConfig::default() }
    }

    #[test]
    fn four_players_with_loss_and_a_late_joiner_agree_and_get_their_signals() {
        let mut g = Game::new(4, lossy());
        g.net.online[3] = false;
        let mut pos = Vec::new();
        for i in 0..3 {
            let s = &mut g.players[i];
            let h = s
                .create(
                    &format!("player/{}/pos", i + 1),
                    ValueType::Vec3,
                    Mode::FastLocal,
                    Policy::LastWriterWins,
                    false,
                    None,
                )
                .unwrap();
            pos.push(h);
        }
        let score = g.players[0]
            .create("score", ValueType::I64, Mode::WaitForSync, Policy::Max, false, None)
            .unwrap();
        for f in 0..60 {
            for (i, &h) in pos.iter().enumerate() {
                g.players[i].context_mut().set(h, [f as f32, i as f32, 0.0]).unwrap();
            }
            if f == 30 {
                g.players[0].context_mut().set(score, 7i64).unwrap();
            }
            g.frame();
        }
        g.join(3);
        g.run(120);
        for p in &g.players {
            let c = p.context();
            assert_eq!(c.get(c.open("score").unwrap()).unwrap(), Value::I64(7));
            for i in 0..3 {
                let v = c.get(c.open(&format!("player/{}/pos", i + 1)).unwrap()).unwrap();
                assert_eq!(v, Value::Vec3([59.0, i as f32, 0.0]));
            }
        }
        // The late joiner was told of every value it received.
        let created: Vec<&str> = g.signals[3]
            .iter()
            .filter_map(|s| match s {
                Signal::ValueCreated { id } => Some(id.as_str()),
                _ => None,
            })
            .collect();
        for id in ["player/1/pos", "player/2/pos", "player/3/pos", "score"] {
            assert!(created.contains(&id), "late joiner lacks value_created({id}): {created:?}");
        }
        // A WaitForSync value changes, for the other players, with state and origin.
        assert!(g.signals[1].iter().any(|s| matches!(s,
            Signal::ValueChanged { id, value: Some(Value::I64(7)), origin: 1, .. } if id == "score")));
    }

    /// Sessions on their own ENet links (127.0.0.1): a host and two clients converge and
    /// get their signals, a client with a taken id hears the refusal once, and closing
    /// a link is a leave.
    #[test]
    fn sessions_on_their_own_enet_links_converge() {
        let opts = EnetOptions { timeout_ms: 1000, ..EnetOptions::default() };
        let mut players: Vec<Session> = (1..=3).map(|id| Session::new(id, node_options()).unwrap()).collect();
        let port = players[0].enet_listen("127.0.0.1:0", &opts).unwrap();
        assert!(port > 0);
        let at = format!("127.0.0.1:{port}");
        for p in &mut players[1..] {
            p.enet_connect(&at, &opts).unwrap();
        }
        assert!(players[1].enet_connect("localhost:1", &opts).unwrap_err().contains("not an IP address"));
        assert!(players[1].has_link(), "a refused address leaves the link as it was");
        let h =
            players[2].create("flag", ValueType::I64, Mode::WaitForSync, Policy::Max, false, None).unwrap();
        players[2].context_mut().set(h, 9i64).unwrap();
        let start = std::time::Instant::now();
        let mut signals: Vec<Vec<Signal>> = vec![vec![]; 3];
        let done = |ps: &[Session]| {
            ps.iter().all(|p| {
                let c = p.context();
                c.peers().len() == 2 && c.open("flag").is_ok_and(|h| c.get(h) == Ok(Value::I64(9)))
            })
        };
        while !done(&players) && start.elapsed() < std::time::Duration::from_secs(10) {
            let now = start.elapsed().as_millis() as u64;
            for (i, p) in players.iter_mut().enumerate() {
                let f = p.tick(now);
                assert!(f.sends.is_empty() && f.error.is_none());
                signals[i].extend(f.signals);
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(done(&players), "no convergence over ENet");
        for got in &signals[..2] {
            assert!(got.iter().any(|s| matches!(s, Signal::ValueCreated { id } if id == "flag")), "{got:?}");
        }
        assert!(players[1].link_stats().unwrap().received > 0);

        // Peer 2 again: the host refuses it, and the game hears why, once.
        let mut twin = Session::new(2, node_options()).unwrap();
        twin.enet_connect(&at, &opts).unwrap();
        let mut errors = Vec::new();
        while start.elapsed() < std::time::Duration::from_secs(15) && errors.is_empty() {
            let now = start.elapsed().as_millis() as u64;
            for p in players.iter_mut() {
                p.tick(now);
            }
            errors.extend(twin.tick(now).error);
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(errors.len() == 1 && errors[0].contains("already taken"), "{errors:?}");
        assert!(twin.tick(start.elapsed().as_millis() as u64).error.is_none(), "told once");

        // Player 3 closes its link: it has no members, and the others see it leave.
        players[2].close_link();
        assert!(players[2].context().peers().is_empty() && !players[2].has_link());
        let left = |ps: &[Session]| ps[..2].iter().all(|p| p.context().peers().len() == 1);
        while !left(&players) && start.elapsed() < std::time::Duration::from_secs(20) {
            let now = start.elapsed().as_millis() as u64;
            for p in players[..2].iter_mut() {
                p.tick(now);
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(left(&players), "player 3's leave");
    }

    #[test]
    fn sessions_on_a_mesh_dial_each_other_and_converge() {
        let opts = EnetOptions { timeout_ms: 1000, ..EnetOptions::default() };
        let mut a = Session::new(1, node_options()).unwrap();
        let mut b = Session::new(2, node_options()).unwrap();
        assert!(a.dial("127.0.0.1:9").unwrap_err().contains("enet_mesh first"));
        let pa = a.enet_mesh("127.0.0.1:0", &opts).unwrap();
        let pb = b.enet_mesh("127.0.0.1:0", &opts).unwrap();
        a.dial(&format!("127.0.0.1:{pb}")).unwrap();
        b.dial(&format!("127.0.0.1:{pa}")).unwrap();
        assert!(a.dial("nowhere").is_err());
        let h =
            b.create("speed", ValueType::F64, Mode::FastLocal, Policy::LastWriterWins, false, None).unwrap();
        b.context_mut().set(h, 4.5).unwrap();
        let start = std::time::Instant::now();
        let got = |s: &Session| s.context().open("speed").ok().and_then(|h| s.context().get(h).ok());
        while got(&a) != Some(Value::F64(4.5)) && start.elapsed() < std::time::Duration::from_secs(10) {
            let now = start.elapsed().as_millis() as u64;
            a.tick(now);
            b.tick(now);
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(got(&a), Some(Value::F64(4.5)));
        assert_eq!(a.context().peers().len(), 1);
    }

    #[test]
    fn outbound_destinations_become_sends_and_membership_follows_the_transport() {
        let mut a = Session::new(1, node_options()).unwrap();
        let h = a.create("x", ValueType::F64, Mode::FastLocal, Policy::LastWriterWins, false, None).unwrap();
        a.context_mut().set(h, 1.0).unwrap();
        // No members: nothing to send to.
        assert!(a.tick(16).sends.is_empty());
        a.peer_connected(2).unwrap();
        a.context_mut().set(h, 2.0).unwrap();
        let f = a.tick(32);
        assert!(!f.sends.is_empty());
        assert!(
            f.sends.iter().all(|s| s.to == 0 || s.to == 2),
            "{:?}",
            f.sends.iter().map(|s| s.to).collect::<Vec<_>>()
        );
        assert_eq!(a.context().metrics().peers.len(), 1);
        a.peer_disconnected(2);
        a.peer_disconnected(99); // Godot reports every disconnect: not an error
        assert_eq!(a.context().metrics().peers.len(), 0);
        assert!(a.peer_connected(-4).is_err());
        assert!(a.receive(-1, &[1, 2]).is_err());
        assert!(Session::new(-1, node_options()).is_err());
        assert!(Session::new(1, options_for(100)).is_err(), "a target below 256 is refused");
        assert_eq!(godot_peer(1u64 << 40), None);
        assert_eq!(godot_peer(7), Some(7));
    }

    #[test]
    fn events_become_signal_arguments_corrections_included() {
        let mut g = Game::new(2, LinkConfig::default());
        let h0 = g.players[0]
            .create("flag", ValueType::I64, Mode::FastLocal, Policy::LastWriterWins, false, None)
            .unwrap();
        g.run(10);
        let h1 = g.players[1].context().open("flag").unwrap();
        g.signals.iter_mut().for_each(Vec::clear);
        g.players[0].context_mut().set(h0, 1i64).unwrap();
        g.players[1].context_mut().set(h1, 2i64).unwrap();
        g.run(12);
        let corrections: usize = g
            .signals
            .iter()
            .flatten()
            .filter(|s| matches!(s, Signal::ValueChanged { is_correction: true, .. }))
            .count();
        assert_eq!(corrections, 1, "{:?}", g.signals);
        // A local write is signalled at once, with the old and new values.
        let mut local = Vec::new();
        g.players[0].context_mut().set(h0, 5i64).unwrap();
        g.players[0].drain_signals(&mut local);
        assert!(matches!(
            &local[..],
            [Signal::ValueChanged { value: Some(Value::I64(5)), origin: 1, state: 0, .. }]
        ));
        g.players[0].context_mut().remove(h0).unwrap();
        g.run(6);
        assert!(g.signals[1].iter().any(|s| matches!(s, Signal::ValueRemoved { id } if id == "flag")));
    }
}

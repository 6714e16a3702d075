//! `ZenCrdtContext`, the node a game drops in: one player's zen-crdt context, ticked in
//! `_physics_process`, wired to the scene's `SceneMultiplayer` (or to any transport through
//! the `outbound` signal and `receive`, or to an ENet link of its own), with values read and written as Variants and
//! changes reported as signals. The work is in `session.rs` (engine-free); this file is
//! the Godot glue: properties, methods, signals, Variant conversion.

// gdext turns each signal into a typed emitter: value_changed's seven arguments make one
// with eight parameters.
#![allow(clippy::too_many_arguments)]

use crate::convert::{key_variant, to_key, to_value, to_variant, value_type_of};
use crate::session::{options_for, state_code, Frame, Session, Signal, DEFAULT_TARGET_MESSAGE_BYTES};
use godot::classes::multiplayer_peer::TransferMode;
use godot::classes::{INode, MultiplayerApi, Node, ProjectSettings, SceneMultiplayer, Time};
use godot::prelude::*;
use zen_crdt::{CollectionKind, EnetOptions, EntryKind, Mode, Policy, TableHandle, ValueHandle};

/// What a core call on a collection returns.
type ZenResult = Result<(), zen_crdt::Error>;

#[derive(GodotClass)]
#[class(init, base = Node)]
pub struct ZenCrdtContext {
    /// This player's id; 0 = `multiplayer.get_unique_id()` when the session starts.
    #[export]
    peer_id: i64,
    /// Send through and listen to the scene's `SceneMultiplayer`. Off: connect the
    /// `outbound` signal to your transport and call `receive` with what arrives.
    #[export]
    #[init(val = true)]
    use_scene_multiplayer: bool,
    /// The multiplayer channel for zen-crdt's packets (its own, so game RPCs do not wait).
    #[export]
    #[init(val = 1)]
    channel: i32,
    /// Reliable delivery. Off by default: the protocol repairs loss itself, and reliable
    /// ordered delivery would make every packet wait for a lost one (head-of-line blocking).
    #[export]
    reliable: bool,
    /// The size (bytes) each zen-crdt message aims at: one datagram, so a lost packet
    /// loses only its own values. 0: messages up to 1 MiB, fragmented by the transport
    /// (and, unreliable, lost whole if any fragment is). Read when the session starts.
    #[export]
    #[init(val = DEFAULT_TARGET_MESSAGE_BYTES)]
    target_message_bytes: i64,
    /// For the node's own ENet link (`enet_listen`, `enet_connect`): a connection silent
    /// this long (ms) is dropped and its peer leaves. Read when the link opens.
    #[export]
    #[init(val = 3000)]
    enet_timeout_ms: i64,
    /// For the node's own ENet link: the room a client asks for, and the token it shows
    /// (a zen-relay gateway needs both); a host or mesh peer with them refuses clients
    /// that name another room or show another token. Read when the link opens.
    #[export]
    enet_room: GString,
    #[export]
    enet_token: GString,
    session: Option<Session>,
    base: Base<Node>,
}

#[godot_api]
impl ZenCrdtContext {
    #[constant]
    const MODE_FAST_LOCAL: i64 = 0;
    #[constant]
    const MODE_WAIT_FOR_SYNC: i64 = 1;
    #[constant]
    const POLICY_LAST_WRITER_WINS: i64 = 0;
    #[constant]
    const POLICY_MAX: i64 = 1;
    #[constant]
    const POLICY_MIN: i64 = 2;
    #[constant]
    const POLICY_TAKE_AVERAGE: i64 = 3;
    #[constant]
    const STATE_LOCAL_ONLY: i64 = 0;
    #[constant]
    const STATE_SYNCING: i64 = 1;
    #[constant]
    const STATE_CONVERGED: i64 = 2;
    #[constant]
    const STATE_CONFLICTED: i64 = 3;

    /// What reads of `id` return changed: a local write (at once), a remote one, a
    /// correction (`is_correction`: a concurrent write replaced what this player showed),
    /// a mode switch, or a value that "was already there" (`is_initial`: created by
    /// another player, caught up on joining or after a partition, loaded), so one handler
    /// serves state old and new. (2.0: `is_initial` added.)
    #[signal]
    fn value_changed(
        id: GString,
        value: Variant,
        old_value: Variant,
        state: i64,
        is_correction: bool,
        origin: i64,
        is_initial: bool,
    );
    /// Another player created `id` and it arrived here (`value_changed` follows, with
    /// `is_initial`, when it holds a value).
    #[signal]
    fn value_created(id: GString);
    /// Player `origin` re-announced `id` unchanged (`touch_value`): "same value, act
    /// again". Emitted here at once for this player's own touch.
    #[signal]
    fn value_touched(id: GString, value: Variant, origin: i64);
    #[signal]
    fn value_removed(id: GString);
    /// The owner of owner-only value `id` is now player `owner` (a transfer, or the
    /// owner left and the lowest remaining player took over): start or stop simulating
    /// what you own. After the value's own signal when the same change moved it too.
    /// (2.1)
    #[signal]
    fn owner_changed(id: GString, owner: i64);
    /// This player's write to `id` was refused: it no longer owns it (the ownership moved
    /// before the write went out). `value` is what reads show, `rejected_value` the
    /// refused write; a `value_changed` correction follows. (2.1)
    #[signal]
    fn write_rejected(id: GString, value: Variant, rejected_value: Variant, owner: i64);
    /// Only the sync state of `id` changed (e.g. a WaitForSync write converged).
    #[signal]
    fn state_changed(id: GString, state: i64);
    /// Bytes to send to peer `to` (0: every peer), when `use_scene_multiplayer` is off.
    #[signal]
    fn outbound(to: i64, bytes: PackedByteArray);
    /// Key `key` (int or String) of table `table` shows an entry where it showed none:
    /// inserted here or by player `origin`, or already there when this player learned of
    /// it (`is_initial`: joined late, caught up). (2.2)
    #[signal]
    fn table_entry_added(table: GString, key: Variant, value: Variant, is_initial: bool, origin: i64);
    /// The entry of `key` shows another value (an update, a correction, a WaitForSync
    /// write converging). (2.2)
    #[signal]
    fn table_entry_changed(
        table: GString,
        key: Variant,
        value: Variant,
        old_value: Variant,
        state: i64,
        is_correction: bool,
        origin: i64,
    );
    /// `key` shows no entry any more. (2.2)
    #[signal]
    fn table_entry_removed(table: GString, key: Variant, old_value: Variant, origin: i64);
    /// `key`'s entry was re-announced unchanged by player `origin` (`table_touch`): "same
    /// value, act again". (2.2)
    #[signal]
    fn table_entry_touched(table: GString, key: Variant, value: Variant, origin: i64);

    /// Opens table `table` of entries of `type` (a `Variant.Type`, as `create_value`),
    /// keyed by int or String; `mode` and `policy` as for values (the policy resolves
    /// concurrent updates of one entry). Removed entries are forgotten once every player
    /// holds the removal, so churn keeps memory flat. (2.2)
    #[func]
    fn open_table(&mut self, table: GString, r#type: VariantType, mode: i64, policy: i64) -> bool {
        self.open_collection(&table, CollectionKind::Table, r#type, mode, policy, 0)
    }

    /// Writes `value` under `key` (inserts the key, or updates its entry). (2.2)
    #[func]
    fn table_set(&mut self, table: GString, key: Variant, value: Variant) -> bool {
        let (k, v) = match (to_key(&key), to_value(&value)) {
            (Ok(k), Ok(v)) => (k, v),
            (Err(e), _) | (_, Err(e)) => return self.fail(&table, &e),
        };
        self.with_table(&table, |c, t| c.table_set(t, k, v))
    }

    /// model_citizen's `touch(key, value)`: when `key` shows `value`, re-announces it
    /// unchanged (`table_entry_touched` on every player, this one included); otherwise
    /// writes it as `table_set`. (2.2)
    #[func]
    fn table_touch(&mut self, table: GString, key: Variant, value: Variant) -> bool {
        let (k, v) = match (to_key(&key), to_value(&value)) {
            (Ok(k), Ok(v)) => (k, v),
            (Err(e), _) | (_, Err(e)) => return self.fail(&table, &e),
        };
        self.with_table(&table, |c, t| c.table_touch(t, k, v))
    }

    /// Removes `key` on every player; false when it showed no entry (or on error). (2.2)
    #[func]
    fn table_erase(&mut self, table: GString, key: Variant) -> bool {
        let k = match to_key(&key) {
            Ok(k) => k,
            Err(e) => return self.fail(&table, &e),
        };
        let mut removed = false;
        self.with_table(&table, |c, t| c.table_remove(t, k).map(|r| removed = r)) && removed
    }

    /// What `key` shows; `null` for no entry. (2.2)
    #[func]
    fn table_get(&self, table: GString, key: Variant) -> Variant {
        let (Some(s), Ok(k)) = (&self.session, to_key(&key)) else { return Variant::nil() };
        let Ok(t) = s.table(&table.to_string()) else { return Variant::nil() };
        s.context().table_get(t, k).ok().flatten().map_or(Variant::nil(), |v| to_variant(Some(&v)))
    }

    /// Whether `key` shows an entry. (2.2)
    #[func]
    fn table_has(&self, table: GString, key: Variant) -> bool {
        !self.table_get(table, key).is_nil()
    }

    /// Keys that show an entry; -1 for a table not opened. (2.2)
    #[func]
    fn table_size(&self, table: GString) -> i64 {
        let Some(s) = &self.session else { return -1 };
        s.table(&table.to_string())
            .and_then(|t| s.context().table_len(t).map_err(|e| e.to_string()))
            .map_or(-1, |n| n as i64)
    }

    /// `member` was added to set `set` (here, by player `origin`, or already in when this
    /// player learned of it: `is_initial`). (2.2)
    #[signal]
    fn set_member_added(set: GString, member: Variant, is_initial: bool, origin: i64);
    /// `member` left set `set`. (2.2)
    #[signal]
    fn set_member_removed(set: GString, member: Variant, origin: i64);
    /// `member` was re-announced by player `origin` (`set_touch`). (2.2)
    #[signal]
    fn set_member_touched(set: GString, member: Variant, origin: i64);

    /// Opens set `set` of members of `type` (a `Variant.Type`, as `create_value`); a set
    /// and a table may share a name. Add wins: an add concurrent with a removal of the
    /// same member leaves it in. (2.2)
    #[func]
    fn open_set(&mut self, set: GString, r#type: VariantType, mode: i64) -> bool {
        self.open_collection(&set, CollectionKind::Set, r#type, mode, 0, 0)
    }

    /// Adds `member` on every player. (2.2)
    #[func]
    fn set_add(&mut self, set: GString, member: Variant) -> bool {
        let m = match to_value(&member) {
            Ok(m) => m,
            Err(e) => return self.fail(&set, &e),
        };
        self.with_set(&set, |c, s| c.set_add(s, m))
    }

    /// Re-announces `member` if it is in (`set_member_touched` on every player), else adds
    /// it. (2.2)
    #[func]
    fn set_touch(&mut self, set: GString, member: Variant) -> bool {
        let m = match to_value(&member) {
            Ok(m) => m,
            Err(e) => return self.fail(&set, &e),
        };
        self.with_set(&set, |c, s| c.set_touch(s, m))
    }

    /// Removes `member` on every player; false when it was not in (or on error). (2.2)
    #[func]
    fn set_remove(&mut self, set: GString, member: Variant) -> bool {
        let m = match to_value(&member) {
            Ok(m) => m,
            Err(e) => return self.fail(&set, &e),
        };
        let mut removed = false;
        self.with_set(&set, |c, s| c.set_remove(s, m).map(|r| removed = r)) && removed
    }

    /// Whether `member` is in set `set`. (2.2)
    #[func]
    fn set_has(&self, set: GString, member: Variant) -> bool {
        let (Some(s), Ok(m)) = (&self.session, to_value(&member)) else { return false };
        let Ok(h) = s.set(&set.to_string()) else { return false };
        s.context().set_contains(h, m).unwrap_or(false)
    }

    /// Members of set `set`; -1 for a set not opened. (2.2)
    #[func]
    fn set_size(&self, set: GString) -> i64 {
        let Some(s) = &self.session else { return -1 };
        s.set(&set.to_string())
            .and_then(|h| s.context().table_len(h).map_err(|e| e.to_string()))
            .map_or(-1, |n| n as i64)
    }

    /// The members as an Array, a copy. (2.2)
    #[func]
    fn set_to_array(&self, set: GString) -> VarArray {
        let mut a = VarArray::new();
        let Some(s) = &self.session else { return a };
        let Ok(h) = s.set(&set.to_string()) else { return a };
        for m in s.context().set_members(h).unwrap_or_default() {
            a.push(&to_variant(Some(&m)));
        }
        a
    }

    /// An item was inserted into sequence `seq` at `index` (here, by player `origin`, or
    /// already there when this player learned of it: `is_initial`). (2.2)
    #[signal]
    fn seq_item_added(seq: GString, index: i64, item: Variant, is_initial: bool, origin: i64);
    /// The item at `index` was replaced. (2.2)
    #[signal]
    fn seq_item_changed(seq: GString, index: i64, item: Variant, old_item: Variant, origin: i64);
    /// The item at `index` was removed. (2.2)
    #[signal]
    fn seq_item_removed(seq: GString, index: i64, old_item: Variant, origin: i64);
    /// The item at `index` was re-announced by player `origin` (`seq_touch`). (2.2)
    #[signal]
    fn seq_item_touched(seq: GString, index: i64, item: Variant, origin: i64);

    /// Opens sequence `seq` of items of `type` (a `Variant.Type`, as `create_value`):
    /// items in one order on every player (concurrent inserts at one place keep both).
    /// Tables, sets and sequences may share a name. (2.2)
    #[func]
    fn open_seq(&mut self, seq: GString, r#type: VariantType, mode: i64) -> bool {
        self.open_collection(&seq, CollectionKind::Sequence, r#type, mode, 0, 0)
    }

    /// Appends `item`. (2.2)
    #[func]
    fn seq_push(&mut self, seq: GString, item: Variant) -> bool {
        let v = match to_value(&item) {
            Ok(v) => v,
            Err(e) => return self.fail(&seq, &e),
        };
        self.with_seq(&seq, |c, q| c.seq_push(q, v))
    }

    /// Inserts `item` at `index` (0 ..= size). (2.2)
    #[func]
    fn seq_insert(&mut self, seq: GString, index: i64, item: Variant) -> bool {
        let v = match to_value(&item) {
            Ok(v) => v,
            Err(e) => return self.fail(&seq, &e),
        };
        let Ok(i) = usize::try_from(index) else {
            return self.fail(&seq, &format!("index {index} is negative"));
        };
        self.with_seq(&seq, |c, q| c.seq_insert(q, i, v))
    }

    /// Replaces the item at `index`. (2.2)
    #[func]
    fn seq_set(&mut self, seq: GString, index: i64, item: Variant) -> bool {
        let v = match to_value(&item) {
            Ok(v) => v,
            Err(e) => return self.fail(&seq, &e),
        };
        let Ok(i) = usize::try_from(index) else {
            return self.fail(&seq, &format!("index {index} is negative"));
        };
        self.with_seq(&seq, |c, q| c.seq_set(q, i, v))
    }

    /// Removes the item at `index`. (2.2)
    #[func]
    fn seq_remove(&mut self, seq: GString, index: i64) -> bool {
        let Ok(i) = usize::try_from(index) else {
            return self.fail(&seq, &format!("index {index} is negative"));
        };
        self.with_seq(&seq, |c, q| c.seq_remove(q, i).map(|_| ()))
    }

    /// Re-announces the item at `index` unchanged (`seq_item_touched` on every player).
    /// (2.2)
    #[func]
    fn seq_touch(&mut self, seq: GString, index: i64) -> bool {
        let Ok(i) = usize::try_from(index) else {
            return self.fail(&seq, &format!("index {index} is negative"));
        };
        self.with_seq(&seq, |c, q| c.seq_touch(q, i))
    }

    /// Moves the item at `from` to `to` (an index in the sequence without it). (2.2)
    #[func]
    fn seq_move(&mut self, seq: GString, from: i64, to: i64) -> bool {
        let (Ok(f), Ok(t)) = (usize::try_from(from), usize::try_from(to)) else {
            return self.fail(&seq, &format!("index {} is negative", from.min(to)));
        };
        self.with_seq(&seq, |c, q| c.seq_move(q, f, t))
    }

    /// The item at `index`; `null` when there is none. (2.2)
    #[func]
    fn seq_get(&self, seq: GString, index: i64) -> Variant {
        let (Some(s), Ok(i)) = (&self.session, usize::try_from(index)) else { return Variant::nil() };
        let Ok(q) = s.seq(&seq.to_string()) else { return Variant::nil() };
        s.context().seq_get(q, i).map_or(Variant::nil(), |v| to_variant(Some(&v)))
    }

    /// Items of sequence `seq`; -1 for a sequence not opened. (2.2)
    #[func]
    fn seq_size(&self, seq: GString) -> i64 {
        let Some(s) = &self.session else { return -1 };
        s.seq(&seq.to_string())
            .and_then(|q| s.context().table_len(q).map_err(|e| e.to_string()))
            .map_or(-1, |n| n as i64)
    }

    /// The items as an Array, in order, a copy. (2.2)
    #[func]
    fn seq_to_array(&self, seq: GString) -> VarArray {
        let mut a = VarArray::new();
        let Some(s) = &self.session else { return a };
        let Ok(q) = s.seq(&seq.to_string()) else { return a };
        for v in s.context().seq_items(q).unwrap_or_default() {
            a.push(&to_variant(Some(&v)));
        }
        a
    }

    /// The sync state (STATE_*) of table `name` as a whole (LOCAL_ONLY while any entry
    /// has a write no player has, CONVERGED once every player holds every entry); -1 for
    /// a table not opened. `set_state` and `seq_state` for sets and sequences. (2.2)
    /// The owner of owner-only table, set or sequence `collection` (`open_owned_table`,
    /// ...) is now player `owner`, `kind` being "table", "set" or "sequence" (a transfer,
    /// the owner left and the lowest remaining player took over, or this player just
    /// learned who owns it): start or stop simulating what you own. (2.2)
    #[signal]
    fn collection_owner_changed(collection: GString, kind: GString, owner: i64);
    /// This player's write of `key` (a table's key, a set's member, a sequence's index)
    /// was refused by every player: it did not own `collection` (a claim of its that did
    /// not stand, or it wrote before it heard the collection was owned). `value` is what
    /// the key shows now; the element's own signal follows. (2.2)
    #[signal]
    fn collection_write_rejected(
        collection: GString,
        kind: GString,
        key: Variant,
        value: Variant,
        rejected_value: Variant,
        owner: i64,
    );

    /// `open_table` for a table only its owner may write: player `owner` (usually this
    /// player's id). Others' `table_set` / `table_erase` fail here (`last_error`) and are
    /// refused on receipt everywhere; `transfer_table` hands it on, and when the owner
    /// leaves the session the lowest remaining player id takes it over
    /// (`collection_owner_changed`). The first creator's choice holds. (2.2)
    #[func]
    fn open_owned_table(
        &mut self,
        table: GString,
        r#type: VariantType,
        mode: i64,
        policy: i64,
        owner: i64,
    ) -> bool {
        self.open_collection(&table, CollectionKind::Table, r#type, mode, policy, owner)
    }

    /// `open_set` for a set only player `owner` may write (see `open_owned_table`). (2.2)
    #[func]
    fn open_owned_set(&mut self, set: GString, r#type: VariantType, mode: i64, owner: i64) -> bool {
        self.open_collection(&set, CollectionKind::Set, r#type, mode, 0, owner)
    }

    /// `open_seq` for a sequence only player `owner` may write (see `open_owned_table`).
    /// (2.2)
    #[func]
    fn open_owned_seq(&mut self, seq: GString, r#type: VariantType, mode: i64, owner: i64) -> bool {
        self.open_collection(&seq, CollectionKind::Sequence, r#type, mode, 0, owner)
    }

    /// Gives owner-only table `table` to player `to`: `collection_owner_changed` here at
    /// once and on every player when it arrives; this player may not write it any more.
    /// False (and `last_error`) unless this player owns it. (2.2)
    #[func]
    fn transfer_table(&mut self, table: GString, to: i64) -> bool {
        self.transfer_collection(&table, CollectionKind::Table, to)
    }

    /// `transfer_table` for a set. (2.2)
    #[func]
    fn transfer_set(&mut self, set: GString, to: i64) -> bool {
        self.transfer_collection(&set, CollectionKind::Set, to)
    }

    /// `transfer_table` for a sequence. (2.2)
    #[func]
    fn transfer_seq(&mut self, seq: GString, to: i64) -> bool {
        self.transfer_collection(&seq, CollectionKind::Sequence, to)
    }

    /// The owner of owner-only table `table` as this player knows it; 0 when anyone may
    /// write it, or it is not open. (2.2)
    #[func]
    fn get_table_owner(&self, table: GString) -> i64 {
        self.collection_owner(&table, CollectionKind::Table)
    }

    /// `get_table_owner` for a set. (2.2)
    #[func]
    fn get_set_owner(&self, set: GString) -> i64 {
        self.collection_owner(&set, CollectionKind::Set)
    }

    /// `get_table_owner` for a sequence. (2.2)
    #[func]
    fn get_seq_owner(&self, seq: GString) -> i64 {
        self.collection_owner(&seq, CollectionKind::Sequence)
    }

    #[func]
    fn table_state(&self, name: GString) -> i64 {
        self.collection_state(&name, CollectionKind::Table)
    }

    #[func]
    fn set_state(&self, name: GString) -> i64 {
        self.collection_state(&name, CollectionKind::Set)
    }

    #[func]
    fn seq_state(&self, name: GString) -> i64 {
        self.collection_state(&name, CollectionKind::Sequence)
    }

    /// The table as a Dictionary (int or String keys, sorted), a copy. (2.2)
    #[func]
    fn table_to_dictionary(&self, table: GString) -> VarDictionary {
        let mut d = VarDictionary::new();
        let Some(s) = &self.session else { return d };
        let Ok(t) = s.table(&table.to_string()) else { return d };
        for (k, v) in s.context().table_entries(t).unwrap_or_default() {
            d.set(&key_variant(&k), &to_variant(Some(&v)));
        }
        d
    }

    /// Starts the session now (done by itself when the multiplayer peer is ready). True
    /// when a session runs.
    #[func]
    fn start(&mut self) -> bool {
        if self.session.is_some() {
            return true;
        }
        self.begin(Session::new)
    }

    /// Starts the session from a save (`save_state`'s bytes) instead of empty, as `start`
    /// does. Before the session starts only (before the node enters the tree, or with
    /// `peer_id` 0 before the multiplayer peer connects): its peers already hold this
    /// player's stream.
    /// Godot's peer ids change each connection, so the save is taken over under a new id,
    /// which is always safe. Each value is reported with `value_created`. False (and the
    /// reason pushed as an error) for a corrupt save or a running session.
    #[func]
    fn load_state(&mut self, saved: PackedByteArray) -> bool {
        if self.refuse_load("load_state") {
            return false;
        }
        self.begin(|id, opts| Session::load(id, opts, saved.as_slice()))
    }

    /// `load_state` from a file `save_to_file` wrote ("user://world.zen" or an OS path).
    #[func]
    fn load_from_file(&mut self, path: GString) -> bool {
        if self.refuse_load("load_from_file") {
            return false;
        }
        let os_path = ProjectSettings::singleton().globalize_path(&path).to_string();
        self.begin(|id, opts| Session::load_file(id, opts, &os_path))
    }

    /// This player's whole state (every value with its policy, mode and merge history) for
    /// `load_state`; empty (and an error pushed) without a session.
    #[func]
    fn save_state(&mut self) -> PackedByteArray {
        match self.session.as_mut() {
            Some(s) => PackedByteArray::from(s.save().as_slice()),
            None => {
                godot_error!("ZenCrdtContext: save_state: no session yet (set peer_id, or call start)");
                PackedByteArray::new()
            }
        }
    }

    /// Saves to `path` ("user://world.zen" or an OS path) atomically: a crash leaves the
    /// old file or the new one. False (and the reason pushed) when it cannot be written.
    #[func]
    fn save_to_file(&mut self, path: GString) -> bool {
        let os_path = ProjectSettings::singleton().globalize_path(&path).to_string();
        let Some(s) = self.session.as_mut() else {
            godot_error!("ZenCrdtContext: save_to_file: no session yet (set peer_id, or call start)");
            return false;
        };
        match s.save_file(&os_path) {
            Ok(()) => true,
            Err(e) => {
                godot_error!("ZenCrdtContext: save_to_file({path}): {e}");
                false
            }
        }
    }

    /// Creates the value `id` holding Variants of `type` (a `Variant.Type`: bool, int,
    /// float, String, PackedByteArray, Vector2/3/4, Quaternion, Color), or opens it if it
    /// exists with that type. `mode` and `policy` are the MODE_* and POLICY_* constants.
    #[func]
    fn create_value(&mut self, id: GString, r#type: VariantType, mode: i64, policy: i64) -> bool {
        self.create(id, r#type, mode, policy, false, None)
    }

    /// `create_value` for a value only its owner may write: player `owner` (usually
    /// `multiplayer.get_unique_id()`) first. Other players' writes fail here and are
    /// refused on receipt everywhere; `transfer_value` hands it on, and when the owner
    /// leaves the session the lowest remaining player id takes it over (`owner_changed`).
    /// The first creator's choice holds. (2.1)
    #[func]
    fn create_owned_value(
        &mut self,
        id: GString,
        r#type: VariantType,
        mode: i64,
        policy: i64,
        owner: i64,
    ) -> bool {
        let Ok(owner) = u64::try_from(owner) else {
            return self.fail(&id, &format!("owner {owner} is not a player id"));
        };
        self.create(id, r#type, mode, policy, false, Some(owner))
    }

    /// Gives owner-only value `id` to player `to`: `owner_changed` here at once and on
    /// every player when it arrives; from now on this player may not write it. False (and
    /// the reason pushed) unless this player owns it. (2.1)
    #[func]
    fn transfer_value(&mut self, id: GString, to: i64) -> bool {
        let Ok(to) = u64::try_from(to) else {
            return self.fail(&id, &format!("player id {to} is negative"));
        };
        self.with_value(&id, |c, h| c.transfer(h, to))
    }

    /// The player that owns `id`; 0 when anyone may write it (or there is no such value).
    /// This player may write `id` when it is 0 or `multiplayer.get_unique_id()`. (2.1)
    #[func]
    fn get_value_owner(&self, id: GString) -> i64 {
        let Some(s) = &self.session else { return 0 };
        let c = s.context();
        c.open(&id.to_string()).and_then(|h| c.owner(h)).ok().flatten().unwrap_or(0) as i64
    }

    /// `create_value` for a value this player keeps to itself (UI state, local settings):
    /// the same calls and signals, never sent, never taken from other players, always
    /// STATE_LOCAL_ONLY. Opening a shared value this way, or this one with `create_value`,
    /// fails.
    #[func]
    fn create_local_value(&mut self, id: GString, r#type: VariantType, mode: i64, policy: i64) -> bool {
        self.create(id, r#type, mode, policy, true, None)
    }

    /// Re-announces `id` unchanged: `value_touched` here at once and on every player when
    /// it arrives. False (and the reason pushed) for a value removed or never written.
    #[func]
    fn touch_value(&mut self, id: GString) -> bool {
        self.with_value(&id, |c, h| c.touch(h))
    }

    /// Whether `id` is local-only here (`create_local_value`); false if there is none.
    #[func]
    fn is_local_only(&self, id: GString) -> bool {
        let Some(s) = &self.session else { return false };
        let c = s.context();
        c.open(&id.to_string()).and_then(|h| c.is_local_only(h)).unwrap_or(false)
    }

    fn create(
        &mut self,
        id: GString,
        r#type: VariantType,
        mode: i64,
        policy: i64,
        local_only: bool,
        owner: Option<u64>,
    ) -> bool {
        let ty = match value_type_of(r#type) {
            Ok(t) => t,
            Err(e) => return self.fail(&id, &e),
        };
        let (mode, policy) = match (mode_of(mode), policy_of(policy)) {
            (Ok(m), Ok(p)) => (m, p),
            (Err(e), _) | (_, Err(e)) => return self.fail(&id, &e),
        };
        let key = id.to_string();
        let Some(s) = self.session_mut(&id) else { return false };
        match s.create(&key, ty, mode, policy, local_only, owner) {
            Ok(_) => true,
            Err(e) => self.fail(&id, &e.to_string()),
        }
    }

    /// Writes `value` to `id` (FastLocal: shown at once; WaitForSync: when every peer has
    /// it). A Variant of another type changes nothing and reports why.
    #[func]
    fn set_value(&mut self, id: GString, value: Variant) -> bool {
        let v = match to_value(&value) {
            Ok(v) => v,
            Err(e) => return self.fail(&id, &e),
        };
        self.with_value(&id, |c, h| c.set(h, v))
    }

    /// What reads of `id` show here; `null` if there is no such value.
    #[func]
    fn get_value(&self, id: GString) -> Variant {
        let Some(s) = &self.session else { return Variant::nil() };
        let c = s.context();
        match c.open(&id.to_string()).and_then(|h| c.get(h)) {
            Ok(v) => to_variant(Some(&v)),
            Err(_) => Variant::nil(),
        }
    }

    /// `id`'s sync state (STATE_*), -1 if there is no such value.
    #[func]
    fn get_state(&self, id: GString) -> i64 {
        let Some(s) = &self.session else { return -1 };
        let c = s.context();
        c.open(&id.to_string()).and_then(|h| c.state(h)).map_or(-1, state_code)
    }

    #[func]
    fn set_mode(&mut self, id: GString, mode: i64) -> bool {
        let m = match mode {
            0 => Mode::FastLocal,
            1 => Mode::WaitForSync,
            m => {
                return self
                    .fail(&id, &format!("mode {m} is not MODE_FAST_LOCAL (0) or MODE_WAIT_FOR_SYNC (1)"))
            }
        };
        self.with_value(&id, |c, h| c.set_mode(h, m))
    }

    /// Removes `id` on every peer.
    #[func]
    fn remove_value(&mut self, id: GString) -> bool {
        self.with_value(&id, |c, h| c.remove(h))
    }

    /// Hands over bytes a transport received from peer `from` (for transports other than
    /// SceneMultiplayer). A bad message changes nothing and is counted.
    #[func]
    fn receive(&mut self, from: i64, bytes: PackedByteArray) -> bool {
        let r = self.session.as_mut().map(|s| s.receive(from, bytes.as_slice()));
        match r {
            Some(Ok(())) => true,
            Some(Err(e)) => {
                godot_warn!("ZenCrdtContext: a message from peer {from} was rejected: {e}");
                false
            }
            None => false,
        }
    }

    /// Gives the node an ENet link of its own (needs `use_scene_multiplayer` off and a
    /// started session): listens at `address` ("0.0.0.0:7000"; port 0 picks one) and
    /// forwards between the clients that connect, so only this machine must be
    /// reachable. Membership then follows the link. The bound port, or -1 on error.
    #[func]
    fn enet_listen(&mut self, address: GString) -> i64 {
        self.open_link("enet_listen", &address, Session::enet_listen).map_or(-1, i64::from)
    }

    /// Gives the node an ENet link of its own to the host at `address`
    /// ("192.0.2.7:7000"); conditions as `enet_listen`. If the host refuses this peer id,
    /// the reason is reported as an error once.
    #[func]
    fn enet_connect(&mut self, address: GString) -> bool {
        self.open_link("enet_connect", &address, Session::enet_connect).is_some()
    }

    /// Gives the node an ENet mesh link of its own (conditions as `enet_listen`), bound
    /// at `address`: every pair of players connected directly, no relay hop, so every
    /// player must be reachable (a LAN, or addresses your lobby exchanged). `dial` the
    /// others. The bound port, or -1 on error.
    #[func]
    fn enet_mesh(&mut self, address: GString) -> i64 {
        self.open_link("enet_mesh", &address, Session::enet_mesh).map_or(-1, i64::from)
    }

    /// Dials the mesh player at `address` ("192.0.2.7:7000"); it becomes a member once
    /// it answers.
    #[func]
    fn dial(&mut self, address: GString) -> bool {
        let Some(s) = self.session.as_mut() else {
            godot_error!("ZenCrdtContext: dial({address}): no session yet");
            return false;
        };
        match s.dial(&address.to_string()) {
            Ok(()) => true,
            Err(e) => {
                godot_error!("ZenCrdtContext: dial({address}): {e}");
                false
            }
        }
    }

    /// Closes the node's own link: the others see this peer leave at once.
    #[func]
    fn close_link(&mut self) {
        if let Some(s) = self.session.as_mut() {
            s.close_link();
        }
    }

    /// The own link's counters (sent, bytes_sent, received, bytes_received, dropped,
    /// rejected); empty without one.
    #[func]
    fn get_link_stats(&self) -> VarDictionary {
        let mut d = VarDictionary::new();
        if let Some(st) = self.session.as_ref().and_then(Session::link_stats) {
            for (k, v) in [
                ("sent", st.sent),
                ("bytes_sent", st.bytes_sent),
                ("received", st.received),
                ("bytes_received", st.bytes_received),
                ("dropped", st.dropped),
                ("rejected", st.rejected),
            ] {
                d.set(k, &(v.min(i64::MAX as u64) as i64).to_variant());
            }
        }
        d
    }

    #[func]
    fn add_peer(&mut self, peer: i64) -> bool {
        self.on_peer_connected(peer);
        true
    }

    #[func]
    fn remove_peer(&mut self, peer: i64) {
        self.on_peer_disconnected(peer);
    }

    /// Counters and latencies (the C API's `zen_metrics_t`), as a Dictionary.
    /// When the context next has work if nothing arrives and nothing is written, in the
    /// ms clock `tick` takes; -1 when nothing is scheduled (or no session). For a custom
    /// loop (a headless server) that sleeps between deadlines instead of ticking every
    /// physics frame.
    #[func]
    fn get_next_deadline_ms(&self) -> i64 {
        self.session
            .as_ref()
            .and_then(|s| s.context().next_deadline_ms())
            .map_or(-1, |t| t.min(i64::MAX as u64) as i64)
    }

    #[func]
    fn get_metrics(&self) -> VarDictionary {
        let mut d = VarDictionary::new();
        if let Some(s) = &self.session {
            let m = s.context().metrics();
            for (k, v) in [
                ("messages_out", m.messages_out),
                ("bytes_out", m.bytes_out),
                ("messages_in", m.messages_in),
                ("bytes_in", m.bytes_in),
                ("messages_rejected", m.messages_rejected),
                ("rejected_updates", m.rejected_updates),
                ("corrections", m.corrections),
                ("conflicts", m.conflicts),
                ("values", m.values),
                ("peers", m.peers.len() as u64),
            ] {
                d.set(k, &(v as i64).to_variant());
            }
        }
        d
    }

    /// One frame at `now_ms` (done by `_physics_process`; call it yourself for a custom
    /// loop): ticks, sends, then emits the signals.
    #[func]
    fn tick(&mut self, now_ms: i64) {
        let Some(s) = self.session.as_mut() else { return };
        let frame = s.tick(now_ms.max(0) as u64);
        self.deliver(frame);
    }

    fn on_peer_connected(&mut self, peer: i64) {
        if let Some(Err(e)) = self.session.as_mut().map(|s| s.peer_connected(peer)) {
            godot_error!("ZenCrdtContext: peer {peer}: {e}");
        }
    }

    fn on_peer_disconnected(&mut self, peer: i64) {
        if let Some(s) = self.session.as_mut() {
            s.peer_disconnected(peer);
        }
    }

    fn on_peer_packet(&mut self, from: i64, packet: PackedByteArray) {
        self.receive(from, packet);
    }

    fn on_connected_to_server(&mut self) {
        self.start();
    }
}

#[godot_api]
impl INode for ZenCrdtContext {
    fn ready(&mut self) {
        if self.use_scene_multiplayer {
            if let Some(mp) = self.multiplayer() {
                let this = self.to_gd();
                mp.signals().peer_connected().connect_other(&this, Self::on_peer_connected);
                mp.signals().peer_disconnected().connect_other(&this, Self::on_peer_disconnected);
                mp.signals().connected_to_server().connect_other(&this, Self::on_connected_to_server);
                match mp.try_cast::<SceneMultiplayer>() {
                    Ok(sm) => {
                        sm.signals().peer_packet().connect_other(&this, Self::on_peer_packet);
                    }
                    Err(_) => {
                        godot_error!("ZenCrdtContext: the scene's multiplayer is not a SceneMultiplayer")
                    }
                }
            }
        }
        if self.peer_id != 0 || self.multiplayer().is_some_and(|mp| mp.has_multiplayer_peer()) {
            self.start();
        }
    }

    fn physics_process(&mut self, _delta: f64) {
        let now = Time::singleton().get_ticks_msec();
        self.tick(now as i64);
    }
}

impl ZenCrdtContext {
    fn multiplayer(&self) -> Option<Gd<MultiplayerApi>> {
        if self.base().is_inside_tree() {
            self.base().get_multiplayer()
        } else {
            None
        }
    }

    fn session_mut(&mut self, id: &GString) -> Option<&mut Session> {
        if self.session.is_none() {
            godot_error!(
                "ZenCrdtContext: '{id}': no session yet (call start, or wait for the multiplayer peer)"
            );
        }
        self.session.as_mut()
    }

    /// Starts the session with `make(peer id, options)`: the id is `peer_id`, else the
    /// multiplayer peer's; then the scene's connected peers become members.
    fn begin(&mut self, make: impl FnOnce(i64, zen_crdt::Options) -> Result<Session, String>) -> bool {
        let mut id = self.peer_id;
        if id == 0 {
            id = self.multiplayer().map_or(0, |mp| mp.get_unique_id() as i64);
        }
        if id <= 0 {
            godot_error!(
                "ZenCrdtContext: no peer id yet (set peer_id, or give the scene a multiplayer peer)"
            );
            return false;
        }
        match make(id, options_for(self.target_message_bytes)) {
            Ok(s) => {
                self.peer_id = id;
                self.session = Some(s);
                if let Some(mp) = self.multiplayer().filter(|_| self.use_scene_multiplayer) {
                    for peer in mp.get_peers().as_slice() {
                        self.on_peer_connected(*peer as i64);
                    }
                }
                true
            }
            Err(e) => {
                godot_error!("ZenCrdtContext: cannot start as peer {id}: {e}");
                false
            }
        }
    }

    /// A save loads only before the session starts (its peers already hold this
    /// player's stream); true (and the reason pushed) when one runs.
    fn refuse_load(&self, what: &str) -> bool {
        if self.session.is_some() {
            godot_error!(
                "ZenCrdtContext: {what}: the session already started; load before it starts \
                 (before the node enters the tree, or with peer_id 0 before the multiplayer \
                 peer connects)"
            );
        }
        self.session.is_some()
    }

    /// Runs `f` on value `id` of the running session; false (and the reason pushed) when
    /// there is no session or value, or `f` fails.
    fn with_value(
        &mut self,
        id: &GString,
        f: impl FnOnce(&mut zen_crdt::Context, ValueHandle) -> Result<(), zen_crdt::Error>,
    ) -> bool {
        let Some(h) = self.handle(id) else { return false };
        match self.session.as_mut().map(|s| f(s.context_mut(), h)) {
            Some(Ok(())) => true,
            Some(Err(e)) => self.fail(id, &e.to_string()),
            None => false,
        }
    }

    /// Runs `f` on table `id` of the running session; false (and the reason pushed) when
    /// there is no session or such table, or `f` fails.
    fn with_table(
        &mut self,
        id: &GString,
        f: impl FnOnce(&mut zen_crdt::Context, TableHandle) -> ZenResult,
    ) -> bool {
        self.with_collection(id, CollectionKind::Table, f)
    }

    /// `with_table` for a set.
    fn with_set(
        &mut self,
        id: &GString,
        f: impl FnOnce(&mut zen_crdt::Context, TableHandle) -> ZenResult,
    ) -> bool {
        self.with_collection(id, CollectionKind::Set, f)
    }

    /// `with_table` for a sequence.
    fn with_seq(
        &mut self,
        id: &GString,
        f: impl FnOnce(&mut zen_crdt::Context, TableHandle) -> ZenResult,
    ) -> bool {
        self.with_collection(id, CollectionKind::Sequence, f)
    }

    /// Opens collection `name` of `kind` (owner-only when `owner` is not 0).
    fn open_collection(
        &mut self,
        name: &GString,
        kind: CollectionKind,
        r#type: VariantType,
        mode: i64,
        policy: i64,
        owner: i64,
    ) -> bool {
        let parsed = (value_type_of(r#type), mode_of(mode), policy_of(policy), owner_of(owner));
        let (ty, mode, policy, owner) = match parsed {
            (Ok(t), Ok(m), Ok(p), Ok(o)) => (t, m, p, o),
            (Err(e), ..) | (_, Err(e), ..) | (_, _, Err(e), _) | (.., Err(e)) => return self.fail(name, &e),
        };
        let id = name.to_string();
        let Some(s) = self.session_mut(name) else { return false };
        match s.open_collection(kind, &id, ty, zen_crdt::TableOptions { mode, policy, owner }) {
            Ok(()) => true,
            Err(e) => self.fail(name, &e),
        }
    }

    fn transfer_collection(&mut self, name: &GString, kind: CollectionKind, to: i64) -> bool {
        let Ok(to) = u64::try_from(to) else {
            return self.fail(name, &format!("{to} is not a player id"));
        };
        self.with_collection(name, kind, |c, h| c.transfer_table(h, to))
    }

    fn collection_owner(&self, name: &GString, kind: CollectionKind) -> i64 {
        let Some(s) = &self.session else { return 0 };
        let found = s.collection(&name.to_string(), kind);
        found.ok().and_then(|h| s.context().table_owner(h).ok().flatten()).unwrap_or(0) as i64
    }

    fn collection_state(&self, name: &GString, kind: CollectionKind) -> i64 {
        let Some(s) = &self.session else { return -1 };
        let key = name.to_string();
        let found = s.collection(&key, kind);
        found.and_then(|h| s.context().table_state(h).map_err(|e| e.to_string())).map_or(-1, state_code)
    }

    fn with_collection(
        &mut self,
        id: &GString,
        kind: CollectionKind,
        f: impl FnOnce(&mut zen_crdt::Context, TableHandle) -> ZenResult,
    ) -> bool {
        let key = id.to_string();
        let Some(s) = self.session_mut(id) else { return false };
        let found = s.collection(&key, kind);
        let h = match found {
            Ok(h) => h,
            Err(e) => return self.fail(id, &e),
        };
        let r = self.session.as_mut().map(|s| f(s.context_mut(), h));
        match r {
            Some(Ok(())) => true,
            Some(Err(e)) => self.fail(id, &e.to_string()),
            None => false,
        }
    }

    fn handle(&mut self, id: &GString) -> Option<ValueHandle> {
        let key = id.to_string();
        let s = self.session_mut(id)?;
        match s.context().open(&key) {
            Ok(h) => Some(h),
            Err(e) => {
                self.fail(id, &e.to_string());
                None
            }
        }
    }

    /// Opens the session's own link with `open` (`Session::enet_listen`, ...) if the node
    /// may have one: no scene multiplayer, a started session. `None` after an error it
    /// reported.
    fn open_link<R>(
        &mut self,
        what: &str,
        address: &GString,
        open: impl FnOnce(&mut Session, &str, &EnetOptions) -> Result<R, String>,
    ) -> Option<R> {
        if self.use_scene_multiplayer {
            godot_error!(
                "ZenCrdtContext: {what}: set use_scene_multiplayer = false first (one transport at a time)"
            );
            return None;
        }
        let timeout_ms = self.enet_timeout_ms.clamp(1, u32::MAX as i64) as u32;
        let opts = EnetOptions {
            timeout_ms,
            room: self.enet_room.to_string(),
            token: self.enet_token.to_string().into_bytes(),
            ..EnetOptions::default()
        };
        let Some(s) = self.session.as_mut() else {
            godot_error!("ZenCrdtContext: {what}: no session yet (set peer_id, or call start)");
            return None;
        };
        match open(s, &address.to_string(), &opts) {
            Ok(r) => Some(r),
            Err(e) => {
                godot_error!("ZenCrdtContext: {what}({address}): {e}");
                None
            }
        }
    }

    fn fail(&self, id: &GString, why: &str) -> bool {
        godot_error!("ZenCrdtContext: '{id}': {why}");
        false
    }

    /// Sends, then emits: by now nothing of the session is borrowed, so a handler may
    /// call back into this node.
    fn deliver(&mut self, frame: Frame) {
        if let Some(e) = &frame.error {
            godot_error!("ZenCrdtContext: {e}");
        }
        let mode = if self.reliable { TransferMode::RELIABLE } else { TransferMode::UNRELIABLE };
        let scene = self
            .multiplayer()
            .filter(|_| self.use_scene_multiplayer)
            .and_then(|mp| mp.try_cast::<SceneMultiplayer>().ok());
        for send in frame.sends {
            let bytes = PackedByteArray::from(send.bytes.as_slice());
            match &scene {
                Some(sm) => {
                    let mut sm = sm.clone();
                    sm.send_bytes_ex(&bytes).id(send.to).mode(mode).channel(self.channel).done();
                }
                None => {
                    self.base_mut()
                        .emit_signal("outbound", &[(send.to as i64).to_variant(), bytes.to_variant()]);
                }
            }
        }
        for sig in frame.signals {
            let (name, args): (&str, Vec<Variant>) = match sig {
                Signal::ValueChanged { id, value, old, state, is_correction, origin, is_initial } => (
                    "value_changed",
                    vec![
                        GString::from(id.as_str()).to_variant(),
                        to_variant(value.as_ref()),
                        to_variant(old.as_ref()),
                        state.to_variant(),
                        is_correction.to_variant(),
                        origin.to_variant(),
                        is_initial.to_variant(),
                    ],
                ),
                Signal::ValueTouched { id, value, origin } => (
                    "value_touched",
                    vec![
                        GString::from(id.as_str()).to_variant(),
                        to_variant(value.as_ref()),
                        origin.to_variant(),
                    ],
                ),
                Signal::ValueCreated { id } => {
                    ("value_created", vec![GString::from(id.as_str()).to_variant()])
                }
                Signal::ValueRemoved { id } => {
                    ("value_removed", vec![GString::from(id.as_str()).to_variant()])
                }
                Signal::StateChanged { id, state } => {
                    ("state_changed", vec![GString::from(id.as_str()).to_variant(), state.to_variant()])
                }
                Signal::OwnerChanged { id, owner } => {
                    ("owner_changed", vec![GString::from(id.as_str()).to_variant(), owner.to_variant()])
                }
                Signal::SeqItem { seq, kind, index, item, old, is_initial, origin } => {
                    let seq = GString::from(seq.as_str()).to_variant();
                    match kind {
                        EntryKind::Added => (
                            "seq_item_added",
                            vec![
                                seq,
                                index.to_variant(),
                                to_variant(item.as_ref()),
                                is_initial.to_variant(),
                                origin.to_variant(),
                            ],
                        ),
                        EntryKind::Modified => (
                            "seq_item_changed",
                            vec![
                                seq,
                                index.to_variant(),
                                to_variant(item.as_ref()),
                                to_variant(old.as_ref()),
                                origin.to_variant(),
                            ],
                        ),
                        EntryKind::Removed => (
                            "seq_item_removed",
                            vec![seq, index.to_variant(), to_variant(old.as_ref()), origin.to_variant()],
                        ),
                        EntryKind::Touched => (
                            "seq_item_touched",
                            vec![seq, index.to_variant(), to_variant(item.as_ref()), origin.to_variant()],
                        ),
                        // The session says these with signals of their own.
                        EntryKind::Rejected | EntryKind::OwnerChanged => continue,
                    }
                }
                Signal::SetMember { set, kind, member, is_initial, origin } => {
                    let (set, member) = (GString::from(set.as_str()).to_variant(), to_variant(Some(&member)));
                    match kind {
                        EntryKind::Added => (
                            "set_member_added",
                            vec![set, member, is_initial.to_variant(), origin.to_variant()],
                        ),
                        EntryKind::Removed => ("set_member_removed", vec![set, member, origin.to_variant()]),
                        EntryKind::Touched => ("set_member_touched", vec![set, member, origin.to_variant()]),
                        _ => continue,
                    }
                }
                Signal::TableEntry {
                    table,
                    kind,
                    key,
                    value,
                    old,
                    state,
                    is_correction,
                    is_initial,
                    origin,
                } => {
                    let (table, key) = (GString::from(table.as_str()).to_variant(), key_variant(&key));
                    match kind {
                        EntryKind::Added => (
                            "table_entry_added",
                            vec![
                                table,
                                key,
                                to_variant(value.as_ref()),
                                is_initial.to_variant(),
                                origin.to_variant(),
                            ],
                        ),
                        EntryKind::Modified => (
                            "table_entry_changed",
                            vec![
                                table,
                                key,
                                to_variant(value.as_ref()),
                                to_variant(old.as_ref()),
                                state.to_variant(),
                                is_correction.to_variant(),
                                origin.to_variant(),
                            ],
                        ),
                        EntryKind::Removed => (
                            "table_entry_removed",
                            vec![table, key, to_variant(old.as_ref()), origin.to_variant()],
                        ),
                        EntryKind::Touched => (
                            "table_entry_touched",
                            vec![table, key, to_variant(value.as_ref()), origin.to_variant()],
                        ),
                        EntryKind::Rejected | EntryKind::OwnerChanged => continue,
                    }
                }
                Signal::CollectionOwnerChanged { collection, kind, owner } => (
                    "collection_owner_changed",
                    vec![
                        GString::from(collection.as_str()).to_variant(),
                        GString::from(kind.name()).to_variant(),
                        owner.to_variant(),
                    ],
                ),
                Signal::CollectionWriteRejected { collection, kind, key, index, value, rejected, owner } => {
                    let key = match kind {
                        CollectionKind::Table => key_variant(&key),
                        CollectionKind::Set => to_variant(rejected.as_ref().or(value.as_ref())),
                        CollectionKind::Sequence => index.to_variant(),
                    };
                    (
                        "collection_write_rejected",
                        vec![
                            GString::from(collection.as_str()).to_variant(),
                            GString::from(kind.name()).to_variant(),
                            key,
                            to_variant(value.as_ref()),
                            to_variant(rejected.as_ref()),
                            owner.to_variant(),
                        ],
                    )
                }
                Signal::WriteRejected { id, value, rejected, owner } => (
                    "write_rejected",
                    vec![
                        GString::from(id.as_str()).to_variant(),
                        to_variant(value.as_ref()),
                        to_variant(rejected.as_ref()),
                        owner.to_variant(),
                    ],
                ),
            };
            self.base_mut().emit_signal(name, &args);
        }
    }
}

/// A MODE_* constant as a mode.
fn mode_of(mode: i64) -> Result<Mode, String> {
    match mode {
        0 => Ok(Mode::FastLocal),
        1 => Ok(Mode::WaitForSync),
        m => Err(format!("mode {m} is not MODE_FAST_LOCAL (0) or MODE_WAIT_FOR_SYNC (1)")),
    }
}

/// An owner argument: 0 for anyone, else the owner's player id.
fn owner_of(owner: i64) -> Result<Option<u64>, String> {
    match owner {
        0 => Ok(None),
        o => u64::try_from(o).map(Some).map_err(|_| format!("owner {o} is not a player id")),
    }
}

/// A POLICY_* constant as a policy.
fn policy_of(policy: i64) -> Result<Policy, String> {
    match policy {
        0 => Ok(Policy::LastWriterWins),
        1 => Ok(Policy::Max),
        2 => Ok(Policy::Min),
        3 => Ok(Policy::TakeAverage),
        p => Err(format!("policy {p} is not one of the POLICY_* constants")),
    }
}

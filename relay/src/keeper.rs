//! The keeper: one headless context per room (a member that never writes), so a room's
//! state outlives its players: late joiners catch up from it even after every player
//! left, and its checkpoints survive a restart.
//!
//! It watches presence for rooms with players and claims each with a lease (created
//! only if absent in `zen-keepers`, renewed by compare-and-set every third of
//! `lease_ms`): exactly one keeper holds a room. A room another keeper holds is tried
//! again once its lease could have run out, so idle keepers cost NATS little. A held
//! room stays held when its players leave (a world waits for its owner). On claim it loads the room's checkpoint
//! (under the keeper's peer id, which never writes, so any keeper may continue it),
//! joins the room's presence, and from then on takes the room's messages from NATS,
//! publishes its own (acknowledgements, catch-ups), and checkpoints the room every
//! `checkpoint_ms` when it changed. A lost lease (another keeper took the room after a
//! stall) ends its hold.

use crate::auth::KEEPER_PEER;
use crate::config::Config;
use crate::log;

use crate::nats::{self, Buckets, Change, Members, Presence};
use futures::StreamExt;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use zen_crdt::{Context, Options, DATAGRAM_BYTES};

/// Counters across the keeper's rooms.
#[derive(Default)]
struct Counts {
    received: AtomicU64,
    published: AtomicU64,
    checkpoints: AtomicU64,
    checkpoint_bytes: AtomicU64,
}

fn room_options() -> Options {
    Options { target_message_bytes: DATAGRAM_BYTES, ..Options::default() }
}

pub async fn run(config: Config) -> Result<(), String> {
    let who = format!("keeper {}", config.id);
    let owner = format!("keeper:{}", config.id);
    let (client, buckets) = nats::connect(&who, &config.nats, config.lease_ms).await?;
    let buckets = Arc::new(buckets);
    log!(who, "watching for rooms, NATS {}", config.nats);
    let mut all =
        buckets.presence.watch_with_history(">").await.map_err(|e| format!("presence watch: {e}"))?;
    // Players present in each room (by presence keys), when a claim of each room may be
    // tried next (after a failed one: once the holder's lease could have run out), and
    // the rooms held here.
    let mut present: HashMap<String, HashSet<String>> = HashMap::new();
    let mut next_try: HashMap<String, Instant> = HashMap::new();
    let retry = Duration::from_millis(config.lease_ms.max(100));
    let held: Arc<parking_lot::Mutex<HashSet<String>>> = Arc::default();
    let counts = Arc::new(Counts::default());
    let mut claim = tokio::time::interval(Duration::from_millis((config.lease_ms / 3).max(100)));
    let every = Duration::from_secs(config.metrics_every_s.max(1));
    let mut metrics = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            Some(entry) = all.next() => {
                let Ok(entry) = entry else { continue };
                let Some((room, peer)) = entry.key.split_once('.') else { continue };
                let players = present.entry(room.to_owned()).or_default();
                match entry.operation {
                    async_nats::jetstream::kv::Operation::Put => {
                        if Presence::decode(&entry.value).is_some_and(|p| !p.owner.starts_with("keeper:")) {
                            players.insert(peer.to_owned());
                        }
                    }
                    _ => {
                        players.remove(peer);
                    }
                }
            }
            _ = claim.tick() => {
                let now = Instant::now();
                let candidates: Vec<String> = present
                    .iter()
                    .filter(|(room, players)| {
                        !players.is_empty()
                            && !held.lock().contains(*room)
                            && next_try.get(*room).is_none_or(|&t| t <= now)
                    })
                    .map(|(room, _)| room.clone())
                    .collect();
                for room in &candidates {
                    let Ok(rev) = buckets.leases.create(room, owner.clone().into()).await else {
                        next_try.insert(room.clone(), now + retry);
                        continue;
                    };
                    held.lock().insert(room.clone());
                    log!(who, "room={room}: claimed");
                    let task = RoomKeeper {
                        who: who.clone(),
                        owner: owner.clone(),
                        room: room.clone(),
                        client: client.clone(),
                        buckets: buckets.clone(),
                        config: config.clone(),
                        counts: counts.clone(),
                    };
                    let held = held.clone();
                    tokio::spawn(async move {
                        let room = task.room.clone();
                        let who = task.who.clone();
                        if let Err(e) = task.keep(rev).await {
                            log!(who, "room={room}: no longer kept: {e}");
                        }
                        held.lock().remove(&room);
                    });
                }
            }
            _ = metrics.tick(), if config.metrics_every_s > 0 => {
                log!(who, "rooms={} received={} published={} checkpoints={} ({} bytes last)",
                    held.lock().len(), counts.received.load(Ordering::Relaxed), counts.published.load(Ordering::Relaxed),
                    counts.checkpoints.load(Ordering::Relaxed), counts.checkpoint_bytes.load(Ordering::Relaxed));
            }
        }
    }
}

/// One room held by this keeper.
struct RoomKeeper {
    who: String,
    owner: String,
    room: String,
    client: async_nats::Client,
    buckets: Arc<Buckets>,
    config: Config,
    counts: Arc<Counts>,
}

impl RoomKeeper {
    /// The room's context from its checkpoint, or a new one. A checkpoint that does not
    /// load is an error: keeping the room would overwrite it.
    async fn load(&self) -> Result<Context, String> {
        let room = &self.room;
        match self.buckets.checkpoints.get(room).await {
            Ok(mut object) => {
                let mut bytes = Vec::new();
                object.read_to_end(&mut bytes).await.map_err(|e| format!("checkpoint read: {e}"))?;
                let ctx = Context::load(KEEPER_PEER, room_options(), &bytes)
                    .map_err(|e| format!("checkpoint of {} bytes does not load: {e}", bytes.len()))?;
                log!(
                    self.who,
                    "room={room}: loaded its checkpoint ({} bytes, {} values)",
                    bytes.len(),
                    ctx.value_count()
                );
                Ok(ctx)
            }
            Err(_) => Context::new(KEEPER_PEER, room_options()).map_err(|e| e.to_string()),
        }
    }

    async fn keep(self, mut lease: u64) -> Result<(), String> {
        let room = self.room.clone();
        let max_payload = self.client.server_info().max_payload.saturating_sub(1024);
        let mut ctx = self.load().await?;
        let (mut sub, mut watch) = nats::listen_room(&self.client, &self.buckets, &room).await?;
        let key = nats::presence_key(&room, KEEPER_PEER);
        let joined = nats::epoch_ms();
        let me = Presence { owner: self.owner.clone(), joined_ms: joined };
        let ttl = Duration::from_millis(self.config.presence_ttl_ms.max(1));
        let mut members = Members::new(&self.owner, ttl);
        members.hold(KEEPER_PEER, joined);
        let start = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(ctx.options().tick_interval_ms.max(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut beat = tokio::time::interval(Duration::from_millis(self.config.heartbeat_ms.max(1)));
        let mut renew = tokio::time::interval(Duration::from_millis((self.config.lease_ms / 3).max(100)));
        let mut checkpoint = tokio::time::interval(Duration::from_millis(self.config.checkpoint_ms.max(100)));
        let mut saved_at: Option<u64> = None;
        loop {
            tokio::select! {
                Some(msg) = sub.next() => {
                    let (Some(to), Some(from)) = (nats::addressed(&msg.subject), nats::sender(&msg)) else { continue };
                    if to.is_some_and(|t| t != KEEPER_PEER) {
                        continue;
                    }
                    self.counts.received.fetch_add(1, Ordering::Relaxed);
                    // Refusals are counted in the context's metrics; a message from a peer
                    // presence has not shown yet is repaired by the protocol.
                    let _ = ctx.receive_from(from, &msg.payload);
                }
                Some(entry) = watch.next() => {
                    let Ok(entry) = entry else { continue };
                    let Some(peer) = nats::key_peer(&room, &entry.key) else { continue };
                    match members.on_entry(peer, &entry, Instant::now()) {
                        Some(Change::Joined(p)) => { let _ = ctx.add_peer(p); }
                        Some(Change::Left(p)) => { let _ = ctx.remove_peer(p); }
                        Some(Change::Moved(..)) | None => {}
                    }
                }
                _ = tick.tick() => {
                    ctx.tick(start.elapsed().as_millis() as u64);
                    while let Some(out) = ctx.poll_outbound() {
                        if out.bytes.len() > max_payload {
                            // Only with a context option that allows it; the protocol
                            // retries, and the log says why it cannot arrive.
                            log!(self.who, "room={room}: a {} byte message is over NATS's payload limit", out.bytes.len());
                            continue;
                        }
                        let subject = match out.to {
                            None => nats::broadcast_subject(&room),
                            Some(t) => nats::peer_subject(&room, t),
                        };
                        self.counts.published.fetch_add(1, Ordering::Relaxed);
                        let _ = self.client.publish_with_headers(subject, nats::from_header(KEEPER_PEER), out.bytes.into()).await;
                    }
                    while ctx.poll_change().is_some() {}
                }
                _ = beat.tick() => {
                    self.buckets.presence.put(&key, me.encode()).await.map_err(|e| format!("presence: {e}"))?;
                    for p in members.expire(Instant::now()) {
                        let _ = ctx.remove_peer(p);
                    }
                }
                _ = renew.tick() => {
                    lease = self.buckets.leases.update(&room, self.owner.clone().into(), lease).await
                        .map_err(|e| format!("lease lost: {e}"))?;
                }
                _ = checkpoint.tick() => {
                    let m = ctx.metrics();
                    let changed = m.updates_applied + m.writes_flushed;
                    if saved_at != Some(changed) {
                        let bytes = ctx.save();
                        let mut reader = bytes.as_slice();
                        self.buckets.checkpoints.put(room.as_str(), &mut reader).await
                            .map_err(|e| format!("checkpoint: {e}"))?;
                        saved_at = Some(changed);
                        self.counts.checkpoints.fetch_add(1, Ordering::Relaxed);
                        self.counts.checkpoint_bytes.store(bytes.len() as u64, Ordering::Relaxed);
                    }
                }
            }
        }
    }
}

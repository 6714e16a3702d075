//! The gateway: players connect over ENet (the library's `Gateway`), and each room's
//! traffic goes to and comes from NATS, so a room's players may sit on any gateways.
//!
//! One task owns the ENet gateway; it wakes when the socket is readable, when a room
//! task hands it something, or every 10 ms (ENet's timers). A room task per room with
//! players here subscribes to the room's subjects, keeps this gateway's players'
//! presence fresh, and watches the room's presence: peers elsewhere are carried, peers
//! that left (or whose gateway died) are dropped, and a player that connected again
//! through another gateway is kicked here.

use crate::auth::Auth;
use crate::config::Config;
use crate::log;

use crate::nats::{self, Buckets, Change, Members, Presence};
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::Interest;
use tokio::sync::mpsc;
use zen_crdt::{EnetOptions, Gateway, GatewayEvent};

/// What a room task asks of the ENet side.
enum ToEnet {
    Carry(Arc<str>, u64),
    Uncarry(Arc<str>, u64),
    Deliver { room: Arc<str>, from: u64, to: Option<u64>, bytes: bytes::Bytes },
    Kick(Arc<str>, u64, String),
}

/// What the ENet side tells a room task.
enum ToRoom {
    Joined(u64),
    Left(u64),
}

/// Counters printed with the metrics line.
#[derive(Default)]
struct Counts {
    published: u64,
    published_bytes: u64,
    delivered: u64,
    delivered_bytes: u64,
    too_large: u64,
}

pub async fn run(config: Config) -> Result<(), String> {
    let auth = match (&config.secret, &config.token_file) {
        (Some(s), None) => Auth::Secret(s.as_bytes().to_vec()),
        (None, Some(f)) => Auth::from_file(f)?,
        _ => return Err("a gateway needs exactly one of --secret and --token-file".into()),
    };
    let who = format!("gateway {}", config.id);
    let (client, buckets) = nats::connect(&who, &config.nats, config.lease_ms).await?;
    let buckets = Arc::new(buckets);
    let max_payload = client.server_info().max_payload.saturating_sub(1024);

    let socket =
        std::net::UdpSocket::bind(config.listen).map_err(|e| format!("bind {}: {e}", config.listen))?;
    let waker = socket.try_clone().map_err(|e| e.to_string())?;
    waker.set_nonblocking(true).map_err(|e| e.to_string())?;
    let waker = tokio::net::UdpSocket::from_std(waker).map_err(|e| e.to_string())?;
    let opts = EnetOptions {
        max_clients: config.max_clients,
        max_messages_per_s: config.max_messages_per_s,
        timeout_ms: config.timeout_ms,
        ..EnetOptions::default()
    };
    let admit_who = who.clone();
    let mut gw = Gateway::on_socket(
        socket,
        &opts,
        Box::new(move |hello| {
            let verdict = auth.admit(hello);
            if let Err(why) = &verdict {
                log!(admit_who, "room={} peer={}: refused: {why}", hello.room, hello.peer);
            }
            verdict
        }),
    )
    .map_err(|e| e.to_string())?;
    let bound = gw.local_addr().map_or_else(|_| config.listen.to_string(), |a| a.to_string());
    log!(who, "listening on {bound} (ENet), NATS {}", config.nats);

    let (to_enet, mut from_rooms) = mpsc::unbounded_channel::<ToEnet>();
    let mut rooms: HashMap<Arc<str>, mpsc::UnboundedSender<ToRoom>> = HashMap::new();
    let mut counts = Counts::default();
    let mut service = tokio::time::interval(Duration::from_millis(10));
    service.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let every = Duration::from_secs(config.metrics_every_s.max(1));
    let mut metrics = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let mut last = (Instant::now(), zen_crdt::GatewayStats::default(), 0u64, 0u64);
    loop {
        tokio::select! {
            r = waker.readable() => {
                r.map_err(|e| e.to_string())?;
                // Cleared before draining: a datagram arriving from now on wakes us again.
                let _ = waker.try_io(Interest::READABLE, || Err::<(), _>(std::io::ErrorKind::WouldBlock.into()));
            }
            Some(cmd) = from_rooms.recv() => {
                apply(&mut gw, cmd, &mut counts);
                while let Ok(cmd) = from_rooms.try_recv() {
                    apply(&mut gw, cmd, &mut counts);
                }
            }
            _ = service.tick() => {}
            _ = metrics.tick(), if config.metrics_every_s > 0 => {
                let s = gw.stats();
                let secs = last.0.elapsed().as_secs_f64().max(1e-3);
                log!(who, "rooms={} clients={} in={:.0} msg/s {:.1} KB/s, to NATS {:.0} msg/s {:.1} KB/s, from NATS {:.0} msg/s, refused={} flooded={} forged={} too_large={}",
                    rooms.len(), gw.clients(),
                    (s.link.received - last.1.link.received) as f64 / secs,
                    (s.link.bytes_received - last.1.link.bytes_received) as f64 / secs / 1e3,
                    (counts.published - last.2) as f64 / secs,
                    counts.published_bytes as f64 / secs / 1e3,
                    (counts.delivered - last.3) as f64 / secs,
                    s.refused, s.flooded, s.forged, counts.too_large);
                counts.published_bytes = 0;
                counts.delivered_bytes = 0;
                last = (Instant::now(), s, counts.published, counts.delivered);
            }
        }
        while let Some(ev) = gw.poll() {
            match ev {
                GatewayEvent::Joined { room, peer } => {
                    log!(who, "room={room} peer={peer}: joined");
                    let tx = rooms.entry(room.clone()).or_insert_with(|| {
                        let (tx, rx) = mpsc::unbounded_channel();
                        let task = RoomTask {
                            who: who.clone(),
                            id: config.id.clone(),
                            room: room.clone(),
                            client: client.clone(),
                            buckets: buckets.clone(),
                            to_enet: to_enet.clone(),
                            heartbeat: Duration::from_millis(config.heartbeat_ms.max(1)),
                            ttl: Duration::from_millis(config.presence_ttl_ms.max(1)),
                        };
                        tokio::spawn(task.run(rx));
                        tx
                    });
                    let _ = tx.send(ToRoom::Joined(peer));
                }
                GatewayEvent::Left { room, peer } => {
                    log!(who, "room={room} peer={peer}: left");
                    if let Some(tx) = rooms.get(&room) {
                        let _ = tx.send(ToRoom::Left(peer));
                    }
                    if gw.local_peers(&room).is_empty() {
                        // Dropping the sender ends the room task once it has said the leave.
                        rooms.remove(&room);
                    }
                }
                GatewayEvent::Message { room, from, to, bytes } => {
                    if bytes.len() > max_payload {
                        counts.too_large += 1;
                        continue;
                    }
                    let subject = match to {
                        None => nats::broadcast_subject(&room),
                        Some(t) => nats::peer_subject(&room, t),
                    };
                    counts.published += 1;
                    counts.published_bytes += bytes.len() as u64;
                    let payload = bytes::Bytes::copy_from_slice(&bytes);
                    if let Err(e) =
                        client.publish_with_headers(subject, nats::from_header(from), payload).await
                    {
                        log!(who, "room={room} peer={from}: publish failed: {e}");
                    }
                }
            }
        }
        gw.flush();
    }
}

fn apply(gw: &mut Gateway, cmd: ToEnet, counts: &mut Counts) {
    match cmd {
        ToEnet::Carry(room, peer) => {
            let _ = gw.carry(&room, peer);
        }
        ToEnet::Uncarry(room, peer) => gw.uncarry(&room, peer),
        ToEnet::Deliver { room, from, to, bytes } => {
            counts.delivered += 1;
            counts.delivered_bytes += bytes.len() as u64;
            gw.send_as(&room, from, to, &bytes);
        }
        ToEnet::Kick(room, peer, why) => gw.kick(&room, peer, &why),
    }
}

/// One room with players at this gateway.
struct RoomTask {
    who: String,
    id: String,
    room: Arc<str>,
    client: async_nats::Client,
    buckets: Arc<Buckets>,
    to_enet: mpsc::UnboundedSender<ToEnet>,
    heartbeat: Duration,
    ttl: Duration,
}

impl RoomTask {
    async fn run(self, mut from_enet: mpsc::UnboundedReceiver<ToRoom>) {
        if let Err(e) = self.serve(&mut from_enet).await {
            log!(self.who, "room={}: {e}", self.room);
        }
    }

    async fn put(&self, peer: u64, joined_ms: u64) -> Result<(), String> {
        let value = Presence { owner: self.id.clone(), joined_ms }.encode();
        self.buckets
            .presence
            .put(nats::presence_key(&self.room, peer), value)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    async fn serve(&self, from_enet: &mut mpsc::UnboundedReceiver<ToRoom>) -> Result<(), String> {
        let room = &self.room;
        let (mut sub, mut watch) = nats::listen_room(&self.client, &self.buckets, room).await?;
        let mut members = Members::new(&self.id, self.ttl);
        let mut beat = tokio::time::interval(self.heartbeat);
        loop {
            tokio::select! {
                cmd = from_enet.recv() => match cmd {
                    Some(ToRoom::Joined(peer)) => {
                        let at = nats::epoch_ms();
                        members.hold(peer, at);
                        self.put(peer, at).await?;
                    }
                    Some(ToRoom::Left(peer)) => {
                        members.release(peer);
                        let _ = self.buckets.presence.delete(nats::presence_key(room, peer)).await;
                    }
                    None => {
                        // No player left here: their leaves are said; the room is another's now.
                        for (peer, _) in members.local().collect::<Vec<_>>() {
                            let _ = self.buckets.presence.delete(nats::presence_key(room, peer)).await;
                        }
                        return Ok(());
                    }
                },
                Some(msg) = sub.next() => {
                    let (Some(to), Some(from)) = (nats::addressed(&msg.subject), nats::sender(&msg)) else { continue };
                    let _ = self.to_enet.send(ToEnet::Deliver { room: room.clone(), from, to, bytes: msg.payload });
                }
                Some(entry) = watch.next() => {
                    let Ok(entry) = entry else { continue };
                    let Some(peer) = nats::key_peer(room, &entry.key) else { continue };
                    match members.on_entry(peer, &entry, Instant::now()) {
                        Some(Change::Joined(p)) => { let _ = self.to_enet.send(ToEnet::Carry(room.clone(), p)); }
                        Some(Change::Left(p)) => { let _ = self.to_enet.send(ToEnet::Uncarry(room.clone(), p)); }
                        Some(Change::Moved(p, owner)) => {
                            log!(self.who, "room={room} peer={p}: connected again through {owner}; dropped here");
                            members.release(p);
                            let why = format!("peer {p} connected again through {owner}");
                            let _ = self.to_enet.send(ToEnet::Kick(room.clone(), p, why));
                        }
                        None => {}
                    }
                }
                _ = beat.tick() => {
                    for (peer, at) in members.local().collect::<Vec<_>>() {
                        self.put(peer, at).await?;
                    }
                    for p in members.expire(Instant::now()) {
                        log!(self.who, "room={room} peer={p}: presence expired");
                        let _ = self.to_enet.send(ToEnet::Uncarry(room.clone(), p));
                    }
                }
            }
        }
    }
}

//! What the relay keeps in NATS and under which names: the subjects a room's messages
//! travel on, the buckets (presence, keeper leases, checkpoints), and presence itself.
//!
//! - `zen.r.<room>.b`: a room's broadcasts; `zen.r.<room>.p.<peer>`: messages for one
//!   peer (catch-ups). The sender is in the `Zen-From` header, stamped by the gateway
//!   that authenticated it (or by the keeper), never read from the message.
//! - Key-value `zen-presence`, key `<room>.<peer>`, value `<owner> <joined_ms>`: who is
//!   in which room, through which gateway (or keeper), since when. Refreshed every
//!   `heartbeat_ms`; a key not refreshed for `presence_ttl_ms` has left (its process
//!   died), whatever the bucket still holds.
//! - Key-value `zen-keepers`, key `<room>`: the keeper holding the room (a lease: created
//!   only if absent, renewed by compare-and-set, expiring with the bucket's `max_age`).
//! - Object store `zen-rooms`, object `<room>`: the room's latest checkpoint
//!   (`Context::save`).

use async_nats::jetstream::{self, kv, object_store};
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub const FROM_HEADER: &str = "Zen-From";
const PRESENCE: &str = "zen-presence";
const LEASES: &str = "zen-keepers";
const CHECKPOINTS: &str = "zen-rooms";

/// Every subject of `room`.
pub fn room_subjects(room: &str) -> String {
    format!("zen.r.{room}.>")
}

pub fn broadcast_subject(room: &str) -> String {
    format!("zen.r.{room}.b")
}

pub fn peer_subject(room: &str, peer: u64) -> String {
    format!("zen.r.{room}.p.{peer}")
}

/// What a room subject addresses: `Some(None)` every member (a broadcast),
/// `Some(Some(peer))` one; `None` for a subject that is neither.
pub fn addressed(subject: &str) -> Option<Option<u64>> {
    let mut parts = subject.rsplitn(3, '.');
    match (parts.next(), parts.next()) {
        (Some("b"), _) => Some(None),
        (Some(peer), Some("p")) => peer.parse().ok().map(Some),
        _ => None,
    }
}

/// The sender a message's header names.
pub fn sender(msg: &async_nats::Message) -> Option<u64> {
    msg.headers.as_ref()?.get(FROM_HEADER)?.as_str().parse().ok()
}

pub fn from_header(peer: u64) -> async_nats::HeaderMap {
    let mut h = async_nats::HeaderMap::new();
    h.insert(FROM_HEADER, peer.to_string().as_str());
    h
}

/// Connects as `who` (without echo: a process never hears its own publishes) and opens
/// the buckets.
pub async fn connect(who: &str, url: &str, lease_ms: u64) -> Result<(async_nats::Client, Buckets), String> {
    let client = async_nats::ConnectOptions::new()
        .name(who)
        .no_echo()
        .connect(url)
        .await
        .map_err(|e| format!("NATS {url}: {e}"))?;
    let buckets = open(&client, lease_ms).await?;
    Ok((client, buckets))
}

/// The relay's buckets, created if absent.
pub struct Buckets {
    pub presence: kv::Store,
    pub leases: kv::Store,
    pub checkpoints: object_store::ObjectStore,
}

pub async fn open(client: &async_nats::Client, lease_ms: u64) -> Result<Buckets, String> {
    let js = jetstream::new(client.clone());
    let kv_config = |bucket: &str, max_age: Duration| kv::Config {
        bucket: bucket.into(),
        history: 1,
        max_age,
        ..Default::default()
    };
    let presence = js
        .create_or_update_key_value(kv_config(PRESENCE, Duration::from_secs(60)))
        .await
        .map_err(|e| format!("presence bucket: {e}"))?;
    let leases = js
        .create_or_update_key_value(kv_config(LEASES, Duration::from_millis(lease_ms)))
        .await
        .map_err(|e| format!("lease bucket: {e}"))?;
    let checkpoints = match js.get_object_store(CHECKPOINTS).await {
        Ok(s) => s,
        Err(_) => js
            .create_object_store(object_store::Config { bucket: CHECKPOINTS.into(), ..Default::default() })
            .await
            .map_err(|e| format!("checkpoint store: {e}"))?,
    };
    Ok(Buckets { presence, leases, checkpoints })
}

/// What a process serving `room` listens to: every subject of the room, and the room's
/// presence from each key's last value on.
pub async fn listen_room(
    client: &async_nats::Client,
    buckets: &Buckets,
    room: &str,
) -> Result<(async_nats::Subscriber, kv::Watch), String> {
    let sub = client.subscribe(room_subjects(room)).await.map_err(|e| e.to_string())?;
    let watch = buckets
        .presence
        .watch_with_history(format!("{room}.*"))
        .await
        .map_err(|e| format!("presence watch: {e}"))?;
    Ok((sub, watch))
}

pub fn presence_key(room: &str, peer: u64) -> String {
    format!("{room}.{peer}")
}

/// A presence value: who holds the peer, since when (ms since the epoch: a newer join
/// wins when a peer is held twice).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presence {
    pub owner: String,
    pub joined_ms: u64,
}

impl Presence {
    pub fn encode(&self) -> bytes::Bytes {
        format!("{} {}", self.owner, self.joined_ms).into()
    }

    pub fn decode(raw: &[u8]) -> Option<Presence> {
        let s = std::str::from_utf8(raw).ok()?;
        let (owner, at) = s.rsplit_once(' ')?;
        Some(Presence { owner: owner.into(), joined_ms: at.parse().ok()? })
    }
}

pub fn epoch_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// What presence says changed about a room's peers held elsewhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Joined(u64),
    Left(u64),
    /// A peer held here is now held elsewhere by a newer join (`owner`).
    Moved(u64, String),
}

/// The peers of one room that other processes hold, as presence shows them.
pub struct Members {
    me: String,
    /// `presence_ttl_ms`: a key refreshed longer ago than this is a dead holder's.
    ttl: Duration,
    /// This process's own peers and when each joined here.
    local: HashMap<u64, u64>,
    remote: HashMap<u64, (Presence, Instant)>,
}

impl Members {
    pub fn new(me: &str, ttl: Duration) -> Members {
        Members { me: me.into(), ttl, local: HashMap::new(), remote: HashMap::new() }
    }

    pub fn hold(&mut self, peer: u64, joined_ms: u64) {
        self.remote.remove(&peer);
        self.local.insert(peer, joined_ms);
    }

    pub fn release(&mut self, peer: u64) {
        self.local.remove(&peer);
    }

    pub fn local(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.local.iter().map(|(&p, &t)| (p, t))
    }

    /// A presence entry of this room (`peer` from its key).
    pub fn on_entry(&mut self, peer: u64, entry: &kv::Entry, now: Instant) -> Option<Change> {
        match entry.operation {
            kv::Operation::Delete | kv::Operation::Purge => {
                self.remote.remove(&peer).map(|_| Change::Left(peer))
            }
            kv::Operation::Put => {
                let p = Presence::decode(&entry.value)?;
                // A watch starts with each key's last value: one written longer ago than
                // the ttl is a dead holder's, not a member (the bucket keeps it a while).
                let written_ms = (entry.created.unix_timestamp_nanos() / 1_000_000).max(0) as u64;
                let stale = epoch_ms().saturating_sub(written_ms) > self.ttl.as_millis() as u64;
                if p.owner == self.me || stale {
                    return None;
                }
                if let Some(&since) = self.local.get(&peer) {
                    // Held here and there: the newer join wins (ties by owner name).
                    let newer = (p.joined_ms, p.owner.as_str()) > (since, self.me.as_str());
                    return newer.then_some(Change::Moved(peer, p.owner));
                }
                let fresh = self.remote.insert(peer, (p, now)).is_none();
                fresh.then_some(Change::Joined(peer))
            }
        }
    }

    /// Peers not refreshed for `ttl`: their holder died.
    pub fn expire(&mut self, now: Instant) -> Vec<u64> {
        let ttl = self.ttl;
        let gone: Vec<u64> = self
            .remote
            .iter()
            .filter(|(_, (_, seen))| now.duration_since(*seen) > ttl)
            .map(|(&p, _)| p)
            .collect();
        for p in &gone {
            self.remote.remove(p);
        }
        gone
    }
}

/// The peer a presence key of `room` names.
pub fn key_peer(room: &str, key: &str) -> Option<u64> {
    key.strip_prefix(room)?.strip_prefix('.')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_and_presence_values() {
        assert_eq!(addressed("zen.r.red.b"), Some(None));
        assert_eq!(addressed("zen.r.red.p.42"), Some(Some(42)));
        assert_eq!(addressed("zen.r.red.x"), None);
        assert_eq!(addressed("zen.r.red.p.x"), None);
        assert_eq!(key_peer("red", "red.7"), Some(7));
        assert_eq!(key_peer("red", "redx.7"), None);
        let p = Presence { owner: "gw 1".into(), joined_ms: 99 };
        assert_eq!(Presence::decode(&p.encode()), Some(p));
        assert_eq!(Presence::decode(b"nonsense"), None);
    }
}

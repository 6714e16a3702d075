//! Who may join which room as which peer: connect tokens.
//!
//! Two ways to configure a relay, each a list of what a hello's token must match:
//! - a shared secret: the token is `hex(HMAC-SHA256(secret, "zen1|<room>|<peer>"))`. The
//!   game's matchmaker (or lobby) holds the secret and issues a token per player; the
//!   gateway recomputes it. `zen-relay token` prints one.
//! - a token file: one grant per line, `<token> <room> <peer>`, where room or peer may be
//!   `*` (any). Blank lines and `#` comments are skipped.
//!
//! A token is bound to its room and peer, so a client cannot speak as another peer (the
//! gateway then checks every frame's sender against the hello's peer). Peer ids from
//! `SERVER_PEERS` up are the relay's own (keepers) and refused to players.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zen_crdt::Hello;

/// Peer ids from here up belong to the relay's servers (a room's keeper is
/// `KEEPER_PEER`); players get ids below.
pub const SERVER_PEERS: u64 = 1 << 52;

/// The peer id of every room's keeper.
pub const KEEPER_PEER: u64 = (1 << 53) - 1;

/// One line of a token file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    token: Vec<u8>,
    room: Option<String>,
    peer: Option<u64>,
}

/// How a relay checks tokens.
#[derive(Clone, Debug)]
pub enum Auth {
    Secret(Vec<u8>),
    Grants(Vec<Grant>),
}

/// The token for `peer` in `room` under `secret` (hex, 64 characters).
pub fn sign(secret: &[u8], room: &str, peer: u64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(format!("zen1|{room}|{peer}").as_bytes());
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

impl Auth {
    /// Reads a token file (see the module docs); the error names the line.
    pub fn from_file(path: &str) -> Result<Auth, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("token file {path}: {e}"))?;
        let mut grants = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [token, room, peer] = parts[..] else {
                return Err(format!("token file {path} line {}: want `<token> <room> <peer>`", n + 1));
            };
            let peer = match peer {
                "*" => None,
                p => Some(p.parse().map_err(|_| format!("token file {path} line {}: peer {p:?}", n + 1))?),
            };
            let room = (room != "*").then(|| room.to_owned());
            grants.push(Grant { token: token.as_bytes().to_vec(), room, peer });
        }
        Ok(Auth::Grants(grants))
    }

    /// Whether `hello` may join (its room id is checked already); `Err` is what the
    /// client is told.
    pub fn admit(&self, hello: &Hello) -> Result<(), String> {
        if hello.peer >= SERVER_PEERS {
            return Err(format!(
                "peer id {} is reserved for the relay's servers (players: below 2^52)",
                hello.peer
            ));
        }
        let ok = match self {
            Auth::Secret(secret) => {
                let want = sign(secret, &hello.room, hello.peer);
                // Compared in full whatever differs, so timing says nothing.
                want.len() == hello.token.len()
                    && want.bytes().zip(&hello.token).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
            }
            Auth::Grants(grants) => grants.iter().any(|g| {
                g.token == hello.token
                    && g.room.as_deref().is_none_or(|r| r == hello.room)
                    && g.peer.is_none_or(|p| p == hello.peer)
            }),
        };
        if ok {
            Ok(())
        } else {
            Err(format!("the token does not admit peer {} to room {}", hello.peer, hello.room))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(room: &str, peer: u64, token: &str) -> Hello {
        Hello { version: 2, peer, room: room.into(), token: token.as_bytes().to_vec() }
    }

    #[test]
    fn signed_tokens_bind_room_and_peer() {
        let auth = Auth::Secret(b"s3cret".to_vec());
        let t = sign(b"s3cret", "red", 7);
        assert_eq!(t.len(), 64);
        assert!(auth.admit(&hello("red", 7, &t)).is_ok());
        assert!(auth.admit(&hello("red", 8, &t)).unwrap_err().contains("peer 8"));
        assert!(auth.admit(&hello("blue", 7, &t)).is_err());
        assert!(auth.admit(&hello("red", 7, &sign(b"other", "red", 7))).is_err());
        let server = sign(b"s3cret", "red", KEEPER_PEER);
        assert!(auth.admit(&hello("red", KEEPER_PEER, &server)).unwrap_err().contains("reserved"));
    }

    #[test]
    fn token_files_grant_rooms_and_peers() {
        let path = std::env::temp_dir().join(format!("zen-relay-tokens-{}", std::process::id()));
        std::fs::write(&path, "# grants\nalpha red 1\n\nbeta * 2\ngamma blue *\n").unwrap();
        let auth = Auth::from_file(path.to_str().unwrap()).unwrap();
        assert!(auth.admit(&hello("red", 1, "alpha")).is_ok());
        assert!(auth.admit(&hello("red", 2, "alpha")).is_err());
        assert!(auth.admit(&hello("any-room", 2, "beta")).is_ok());
        assert!(auth.admit(&hello("blue", 99, "gamma")).is_ok());
        assert!(auth.admit(&hello("red", 99, "gamma")).is_err());
        std::fs::write(&path, "alpha red\n").unwrap();
        assert!(Auth::from_file(path.to_str().unwrap()).unwrap_err().contains("line 1"));
        std::fs::remove_file(&path).unwrap();
    }
}

//! The relay's settings: a TOML file (`--config`) and flags (`--name value`, which win),
//! the same names in both. Every setting has a default except the token source.

use serde::Deserialize;
use std::net::SocketAddr;

/// Settings of a gateway or a keeper (each reads what it needs).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The NATS server (or any server of its cluster).
    pub nats: String,
    /// This process's name in presence, leases and logs; unique among the relay's
    /// processes.
    pub id: String,
    /// Gateway: the UDP address players connect to.
    pub listen: SocketAddr,
    /// Gateway: the shared secret connect tokens are signed with (see `auth`).
    pub secret: Option<String>,
    /// Gateway: a token file instead (see `auth`).
    pub token_file: Option<String>,
    /// Gateway: most players connected at once.
    pub max_clients: usize,
    /// Gateway: most messages a player may send per second; the rest are dropped and
    /// counted (a flood).
    pub max_messages_per_s: u32,
    /// Gateway: a player silent this long (ms) is dropped.
    pub timeout_ms: u32,
    /// How often (ms) presence is refreshed.
    pub heartbeat_ms: u64,
    /// A peer whose presence was not refreshed for this long (ms) has left (its gateway
    /// or keeper died).
    pub presence_ttl_ms: u64,
    /// Keeper: a room's lease lasts this long (ms) unless renewed (every third of it).
    pub lease_ms: u64,
    /// Keeper: how often (ms) a changed room is checkpointed.
    pub checkpoint_ms: u64,
    /// How often (s) the metrics line is printed; 0 never.
    pub metrics_every_s: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            nats: "nats://127.0.0.1:4222".into(),
            id: format!("relay-{}", std::process::id()),
            listen: "0.0.0.0:7000".parse().expect("literal"),
            secret: None,
            token_file: None,
            max_clients: 1024,
            max_messages_per_s: 1000,
            timeout_ms: 3000,
            heartbeat_ms: 1000,
            presence_ttl_ms: 3500,
            lease_ms: 6000,
            checkpoint_ms: 5000,
            metrics_every_s: 10,
        }
    }
}

impl Config {
    /// The file named by `--config` (if any), then every other flag over it.
    pub fn from_args(args: &[String]) -> Result<Config, String> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let Some(name) = flag.strip_prefix("--") else {
                return Err(format!("unexpected argument {flag:?} (flags are --name value)"));
            };
            let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
            pairs.push((name.replace('-', "_"), value.clone()));
        }
        let mut config = match pairs.iter().find(|(n, _)| n == "config") {
            Some((_, path)) => {
                let text = std::fs::read_to_string(path).map_err(|e| format!("config {path}: {e}"))?;
                toml::from_str(&text).map_err(|e| format!("config {path}: {e}"))?
            }
            None => Config::default(),
        };
        for (name, value) in pairs.iter().filter(|(n, _)| n != "config") {
            config.set(name, value)?;
        }
        Ok(config)
    }

    fn set(&mut self, name: &str, v: &str) -> Result<(), String> {
        fn num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, String> {
            v.parse().map_err(|_| format!("--{name} {v:?} is not a number"))
        }
        match name {
            "nats" => self.nats = v.into(),
            "id" => self.id = v.into(),
            "listen" => {
                self.listen = v.parse().map_err(|_| format!("--listen {v:?} is not an address and port"))?
            }
            "secret" => self.secret = Some(v.into()),
            "token_file" => self.token_file = Some(v.into()),
            "max_clients" => self.max_clients = num(name, v)?,
            "max_messages_per_s" => self.max_messages_per_s = num(name, v)?,
            "timeout_ms" => self.timeout_ms = num(name, v)?,
            "heartbeat_ms" => self.heartbeat_ms = num(name, v)?,
            "presence_ttl_ms" => self.presence_ttl_ms = num(name, v)?,
            "lease_ms" => self.lease_ms = num(name, v)?,
            "checkpoint_ms" => self.checkpoint_ms = num(name, v)?,
            "metrics_every_s" => self.metrics_every_s = num(name, v)?,
            other => return Err(format!("unknown setting --{other}")),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file() {
        let path = std::env::temp_dir().join(format!("zen-relay-config-{}.toml", std::process::id()));
        std::fs::write(&path, "nats = \"nats://10.0.0.1:4222\"\nid = \"gw-a\"\ncheckpoint_ms = 1000\n")
            .unwrap();
        let args: Vec<String> = ["--config", path.to_str().unwrap(), "--id", "gw-b", "--max-clients", "8"]
            .map(String::from)
            .to_vec();
        let c = Config::from_args(&args).unwrap();
        assert_eq!(
            (c.nats.as_str(), c.id.as_str(), c.checkpoint_ms, c.max_clients),
            ("nats://10.0.0.1:4222", "gw-b", 1000, 8)
        );
        std::fs::write(&path, "colour = 1\n").unwrap();
        assert!(Config::from_args(&args).unwrap_err().contains("colour"));
        std::fs::remove_file(&path).unwrap();
        assert!(Config::from_args(&["--timeout-ms".into(), "soon".into()])
            .unwrap_err()
            .contains("not a number"));
        assert!(Config::from_args(&["--bogus".into(), "1".into()]).unwrap_err().contains("unknown"));
    }
}

//! zen-relay: zen-crdt rooms relayed between machines, on NATS.
//!
//! ```text
//! zen-relay gateway [--config FILE] [--nats URL] [--id NAME] [--listen ADDR] (--secret S | --token-file F) ...
//! zen-relay keeper  [--config FILE] [--nats URL] [--id NAME] [--checkpoint-ms MS] ...
//! zen-relay all     (a gateway and a keeper in one process: one command for a local relay)
//! zen-relay token --secret S --room ROOM --peer PEER   (prints a connect token)
//! ```
//!
//! Players connect to any gateway over ENet; gateways and keepers meet in NATS (see
//! `nats` for the subjects and buckets). Every setting is in `config`.

use zen_relay::config::Config;
use zen_relay::{auth, gateway, keeper};

fn usage() -> String {
    "usage: zen-relay gateway|keeper|all [--config FILE] [--name value ...]\n       \
     zen-relay token --secret S --room ROOM --peer PEER\n\
     settings (file or flags): nats, id, listen, secret, token-file, max-clients, max-messages-per-s,\n\
     timeout-ms, heartbeat-ms, presence-ttl-ms, lease-ms, checkpoint-ms, metrics-every-s"
        .into()
}

fn token(args: &[String]) -> Result<(), String> {
    let get = |name: &str| {
        args.windows(2).find(|w| w[0] == format!("--{name}")).map(|w| w[1].clone()).ok_or_else(usage)
    };
    let (secret, room, peer) = (get("secret")?, get("room")?, get("peer")?);
    zen_crdt::check_room(&room)?;
    let peer: u64 = peer.parse().map_err(|_| format!("--peer {peer:?} is not a number"))?;
    println!("{}", auth::sign(secret.as_bytes(), &room, peer));
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("token") => token(&args[1..]),
        Some(mode @ ("gateway" | "keeper" | "all")) => Config::from_args(&args[1..]).and_then(|config| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async move {
                let stop = async {
                    let _ = tokio::signal::ctrl_c().await;
                    Ok(())
                };
                let serve = async {
                    match mode {
                        "gateway" => gateway::run(config).await,
                        "keeper" => keeper::run(config).await,
                        _ => {
                            let keeper_config =
                                Config { id: format!("{}-keeper", config.id), ..config.clone() };
                            tokio::try_join!(gateway::run(config), keeper::run(keeper_config)).map(|_| ())
                        }
                    }
                };
                tokio::select! { r = serve => r, r = stop => r }
            })
        }),
        _ => Err(usage()),
    };
    if let Err(e) = result {
        eprintln!("zen-relay: {e}");
        std::process::exit(2);
    }
}

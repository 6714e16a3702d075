//! A terminal game over ENet on a LAN: one player hosts, the others join; each player's
//! unit wanders the board, and every screen shows every unit. No socket code: the
//! context's bytes travel through `EnetLink` and `pump`.
//!
//! ```text
//! cargo run --release --example lan -- host [--port 7000] [--secs 30]
//! cargo run --release --example lan -- join 127.0.0.1:7000 --id 2 [--secs 30]
//! ```
//!
//! `--quiet` prints only the last line ("player 2 saw players [1, 2, 3]"), for scripts.

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use zen_crdt::*;

const W: i64 = 40;
const H: i64 = 12;

fn flag(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == name)?;
    args.get(at + 1).cloned()
}

fn number(name: &str, default: u64) -> u64 {
    flag(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn usage() -> ! {
    eprintln!("usage: lan host [--port 7000] [--secs 30] | lan join HOST:PORT --id N [--secs 30] [--quiet]");
    std::process::exit(2)
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let quiet = args.iter().any(|a| a == "--quiet");
    let secs = number("--secs", 30);
    let options = EnetOptions::default();
    let (me, mut link) = match args.get(1).map(String::as_str) {
        Some("host") => {
            let port = number("--port", 7000) as u16;
            let link = EnetLink::listen(SocketAddr::from(([0, 0, 0, 0], port)), 1, &options)?;
            if !quiet {
                println!("hosting on port {} as player 1", link.local_addr()?.port());
            }
            (1, link)
        }
        Some("join") => {
            let Some(at) = args.get(2).and_then(|a| a.parse::<SocketAddr>().ok()) else { usage() };
            let me = number("--id", 2);
            (me, EnetLink::connect(at, me, &options)?)
        }
        _ => usage(),
    };
    // Messages sized for one datagram, so a lost packet loses only its own values.
    let opts = Options { target_message_bytes: DATAGRAM_BYTES, ..Options::default() };
    let mut ctx = Context::new(me, opts)?;
    let unit = ctx.create(&format!("unit/{me}"), ValueType::Vec2, ValueOptions::default())?;
    let mut rng = sim::Rng::new(me);
    let (mut x, mut y) = (rng.below(W as u64) as i64, rng.below(H as u64) as i64);
    let start = Instant::now();
    let mut next_move = Duration::ZERO;
    let mut next_draw = Duration::ZERO;
    let mut seen = std::collections::BTreeSet::new();
    while start.elapsed() < Duration::from_secs(secs) {
        let now = start.elapsed();
        if now >= next_move {
            x = (x + rng.below(3) as i64 - 1).clamp(0, W - 1);
            y = (y + rng.below(3) as i64 - 1).clamp(0, H - 1);
            ctx.set(unit, [x as f32, y as f32])?;
            next_move = now + Duration::from_millis(100);
        }
        pump(&mut ctx, &mut link, now.as_millis() as u64);
        while ctx.poll_change().is_some() {}
        if let Some(why) = link.refused() {
            eprintln!("the host refused player {me}: {why}");
            std::process::exit(1);
        }
        let mut units = Vec::new();
        for id in ctx.value_ids().map(str::to_owned).collect::<Vec<_>>() {
            let Some(p) = id.strip_prefix("unit/").and_then(|p| p.parse::<u64>().ok()) else { continue };
            if let Ok(Value::Vec2([ux, uy])) = ctx.open(&id).and_then(|h| ctx.get(h)) {
                units.push((p, ux as i64, uy as i64));
                seen.insert(p);
            }
        }
        if !quiet && now >= next_draw {
            draw(me, &units, &ctx);
            next_draw = now + Duration::from_millis(200);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    link.close();
    println!("player {me} saw players {:?}", seen.into_iter().collect::<Vec<_>>());
    Ok(())
}

fn draw(me: u64, units: &[(u64, i64, i64)], ctx: &Context) {
    let mut board = vec![vec![b'.'; W as usize]; H as usize];
    for &(p, x, y) in units {
        if (0..W).contains(&x) && (0..H).contains(&y) {
            board[y as usize][x as usize] = if p < 10 { b'0' + p as u8 } else { b'*' };
        }
    }
    let mut out = String::from("\x1b[2J\x1b[H");
    out += &format!("player {me}, members {:?}\n", ctx.peers().iter().map(|p| p.0).collect::<Vec<_>>());
    for row in board {
        out += std::str::from_utf8(&row).unwrap_or("");
        out.push('\n');
    }
    print!("{out}");
}

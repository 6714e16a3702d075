//! Writes the seed corpus of the `receive` target into the directory given (committed as
//! `fuzz/corpus/receive`): real messages of a lossy session, real updates, and pairs.
use std::{env, fs, path::PathBuf};
use zen_crdt_fuzz::{session_messages, update_of};

fn main() {
    let dir = PathBuf::from(env::args().nth(1).expect("usage: seeds DIR"));
    fs::create_dir_all(&dir).unwrap();
    let msgs = session_messages();
    let mut n = 0;
    let mut put = |name: String, bytes: Vec<u8>| {
        fs::write(dir.join(name), bytes).unwrap();
        n += 1;
    };
    for (i, m) in msgs.iter().enumerate() {
        let body = &m[..m.len() - 4];
        put(format!("message-{i:03}"), [&[0u8][..], body].concat());
        if let Some(u) = update_of(m) {
            put(format!("update-{i:03}"), [&[1u8][..], u].concat());
        }
    }
    for (i, pair) in msgs.windows(2).enumerate().step_by(4) {
        let (a, b) = (&pair[0][..pair[0].len() - 4], &pair[1][..pair[1].len() - 4]);
        put(format!("pair-{i:03}"), [&[2u8][..], a, &[0xA5], b].concat());
    }
    println!("{n} seeds in {}", dir.display());
}

//! The fuzz harness behind `fuzz_targets/receive.rs`: hostile bytes from a member, taken
//! in by a context that already holds values, then every path that integrates, encodes
//! or revives their documents (`tick`, local writes, hibernation), so the fuzzer reaches
//! yrs integration and not only the decoder.
//!
//! Structure-aware inputs: the first byte picks how the rest is used, and whatever the
//! mutation, the harness re-seals it with a valid checksum and stamps the current
//! protocol version (else nearly every mutated message, and every seed recorded under an
//! older version, would stop at the CRC or the version check):
//! - 0: a message without its checksum (the seeds are real messages of a lossy session:
//!   deltas, acks, catch-up snapshots, LZ4-compressed or not);
//! - 1: a yrs update, wrapped in a well-formed delta entry for value "a" (the seeds are
//!   real updates our writers produce), to reach the update scan and yrs;
//! - 2: up to four messages without checksums, separated by the byte 0xA5.
//!
//! A panic anywhere is a crash: yrs panics are contained in storage and never get here.

use std::sync::OnceLock;
use zen_crdt::*;

/// The fuzzed messages come from this member...
pub const SENDER: u64 = 1;
/// ...to this context.
pub const RECEIVER: u64 = 2;
/// A third member, so acknowledgements and catch-ups involve someone else.
pub const OTHER: u64 = 3;

/// Appends the checksum the wire format ends with (CRC-32 of everything before it,
/// little endian), after stamping this library's protocol version on a message that
/// starts with the magic.
pub fn seal(body: &[u8]) -> Vec<u8> {
    let mut out = body.to_vec();
    if out.len() > 2 && out.starts_with(b"ZC") {
        out[2] = PROTOCOL_VERSION;
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A delta from `SENDER` (unsealed) whose one entry carries `update` for value `id`,
/// index `index` of the sender's numbering, at sequence number `seq`.
pub fn delta_with_update(seq: u64, index: u32, id: &str, update: &[u8]) -> Vec<u8> {
    let mut out = b"ZC".to_vec();
    out.push(PROTOCOL_VERSION);
    out.push(1); // delta
    put_varint(&mut out, SENDER);
    put_varint(&mut out, 0); // no acks
    put_varint(&mut out, seq);
    put_varint(&mut out, 1);
    put_varint(&mut out, index as u64);
    put_varint(&mut out, id.len() as u64);
    out.extend_from_slice(id.as_bytes());
    put_varint(&mut out, update.len() as u64);
    out.extend_from_slice(update);
    out
}

/// The one entry's update of an uncompressed single-entry delta with no acks, as
/// `delta_with_update` lays it out; `None` for anything else.
pub fn update_of(msg: &[u8]) -> Option<&[u8]> {
    fn varint(b: &[u8], pos: &mut usize) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let x = *b.get(*pos)?;
            *pos += 1;
            v |= ((x & 0x7f) as u64) << shift;
            if x & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    let body = msg.get(..msg.len().checked_sub(4)?)?;
    if body.get(..2)? != b"ZC" || *body.get(3)? != 1 {
        return None;
    }
    let mut pos = 4;
    varint(body, &mut pos)?; // sender
    let acks = varint(body, &mut pos)?;
    for _ in 0..acks * 3 {
        varint(body, &mut pos)?;
    }
    varint(body, &mut pos)?; // seq
    if varint(body, &mut pos)? != 1 {
        return None;
    }
    varint(body, &mut pos)?; // index
    let id_len = varint(body, &mut pos)? as usize;
    pos += id_len;
    let len = varint(body, &mut pos)? as usize;
    body.get(pos..pos + len)
}

/// A value of type `ty` (what a local write of that value needs).
pub fn sample(ty: ValueType, k: u8) -> Value {
    let f = k as f32;
    match ty {
        ValueType::Bool => Value::Bool(k.is_multiple_of(2)),
        ValueType::I64 => Value::I64(k as i64),
        ValueType::F64 => Value::F64(k as f64),
        ValueType::Str => Value::Str(format!("s{k}")),
        ValueType::Bytes => Value::Bytes(vec![k; 3]),
        ValueType::Vec2 => Value::Vec2([f, 1.0]),
        ValueType::Vec3 => Value::Vec3([f, 1.0, 2.0]),
        ValueType::Vec4 => Value::Vec4([f, 1.0, 2.0, 3.0]),
        ValueType::Color => Value::Color([0.5, 0.5, 0.5, 1.0]),
        ValueType::Quat => Value::Quat([0.0, 0.0, 0.0, 1.0]),
    }
}

/// Messages `SENDER` sent `RECEIVER` in a short session with `OTHER`, in order, with
/// every other message from the sender to the receiver lost, so catch-up snapshots
/// appear. Deterministic.
pub fn session_messages() -> Vec<Vec<u8>> {
    let ids = [1, 2, 3];
    let mut ctx: Vec<Context> = ids.iter().map(|&i| Context::new(i, Options::default()).unwrap()).collect();
    for (k, c) in ctx.iter_mut().enumerate() {
        for &p in &ids {
            if p != ids[k] {
                c.add_peer(p).unwrap();
            }
        }
    }
    let wait = ValueOptions { mode: Mode::WaitForSync, policy: Policy::Max, local_only: false, owner: None };
    let a = ctx[0].create("a", ValueType::I64, ValueOptions::default()).unwrap();
    let b = ctx[0].create("b", ValueType::Vec3, wait).unwrap();
    let c3 = ctx[2].create("c", ValueType::Str, ValueOptions::default()).unwrap();
    // Owner-only, given by the sender to the receiver halfway: owned records and a grant.
    let owned = ValueOptions { owner: Some(ids[0]), ..ValueOptions::default() };
    let d = ctx[0].create("d", ValueType::I64, owned).unwrap();
    // A table and a set, written after the messages `setup` takes, so the seeds hold
    // entry ids, entry removals and the manifests catch-ups carry.
    let table = ctx[0].open_table("t", ValueType::I64, TableOptions::default()).unwrap();
    let set = ctx[0].open_set("s", ValueType::I64, TableOptions::default()).unwrap();
    let mut to_receiver = Vec::new();
    let mut sent = 0u32;
    for t in 1..=60u64 {
        if t <= 20 {
            ctx[0].set(a, t as i64).unwrap();
            if t.is_multiple_of(3) {
                ctx[0].set(b, Value::Vec3([t as f32, 0.0, 1.0])).unwrap();
            }
            if t.is_multiple_of(5) {
                ctx[2].set(c3, format!("c{t}")).unwrap();
            }
            match t {
                10 => ctx[0].transfer(d, ids[1]).unwrap(),
                t if t < 10 => ctx[0].set(d, -(t as i64)).unwrap(),
                _ => {}
            }
        }
        if (21..=40).contains(&t) {
            ctx[0].table_set(table, (t % 5) as i64, t as i64).unwrap();
            ctx[0].set_add(set, (t % 3) as i64).unwrap();
            if t.is_multiple_of(4) {
                ctx[0].table_remove(table, ((t + 2) % 5) as i64).unwrap();
                ctx[0].set_remove(set, ((t + 1) % 3) as i64).unwrap();
            }
        }
        for k in 0..3 {
            ctx[k].tick(t * 16);
            while let Some(o) = ctx[k].poll_outbound() {
                for j in 0..3 {
                    if j == k || o.to.is_some_and(|to| to != ids[j]) {
                        continue;
                    }
                    if k == 0 && j == 1 {
                        sent += 1;
                        if sent.is_multiple_of(2) {
                            continue; // lost
                        }
                        to_receiver.push(o.bytes.clone());
                    }
                    let _ = ctx[j].receive_from(ids[k], &o.bytes);
                }
            }
        }
    }
    to_receiver
}

/// The receiver's starting state: members `SENDER` and `OTHER`, and the values of the
/// first messages of the session (so updates have documents to integrate into).
fn setup() -> &'static [Vec<u8>] {
    static SETUP: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SETUP.get_or_init(|| session_messages().into_iter().take(3).collect())
}

pub fn receiver() -> Context {
    let mut c = Context::new(RECEIVER, Options::default()).unwrap();
    c.add_peer(SENDER).unwrap();
    c.add_peer(OTHER).unwrap();
    for m in setup() {
        let _ = c.receive_from(SENDER, m);
    }
    c.tick(16);
    c
}

/// libfuzzer-sys installs a panic hook that aborts, which would turn the panics storage
/// contains (yrs failing on an update) into crashes. This one reports each panic site
/// once instead; a panic that escapes still aborts (libfuzzer-sys catches the unwind and
/// aborts), so it is still a crash with the input saved.
pub fn report_panics_once() {
    static HOOK: OnceLock<()> = OnceLock::new();
    HOOK.get_or_init(|| {
        let seen = std::sync::Mutex::new(std::collections::HashSet::new());
        std::panic::set_hook(Box::new(move |info| {
            let at = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
            if seen.lock().map(|mut s| s.insert(at.clone())).unwrap_or(false) {
                eprintln!("zen-crdt-fuzz: a panic at {at} (contained unless the run aborts): {info}");
            }
        }));
    });
}

/// One fuzz input (see the module comment).
pub fn run(data: &[u8]) {
    run_keep(data);
}

/// `run`, returning the receiver afterwards (for regression tests).
pub fn run_keep(data: &[u8]) -> Context {
    let mut c = receiver();
    let Some((&mode, rest)) = data.split_first() else { return c };
    match mode % 3 {
        0 => {
            let _ = c.receive_from(SENDER, &seal(rest));
        }
        1 => {
            let _ = c.receive_from(SENDER, &seal(&delta_with_update(40, 0, "a", rest)));
        }
        _ => {
            for body in rest.split(|&b| b == 0xA5).take(4) {
                let _ = c.receive_from(SENDER, &seal(body));
            }
        }
    }
    exercise(&mut c);
    c
}

/// Everything that makes a document integrate, encode or revive.
fn exercise(c: &mut Context) {
    c.tick(32);
    let handles: Vec<(ValueHandle, ValueType)> = c
        .value_ids()
        .map(str::to_owned)
        .collect::<Vec<_>>()
        .iter()
        .filter_map(|id| c.open(id).ok())
        .filter_map(|h| Some((h, c.value_type(h).ok()?)))
        .collect();
    // Tables and sets the messages may have brought: local writes and reads.
    if let Ok(t) = c.open_table("t", ValueType::I64, TableOptions::default()) {
        let _ = c.table_set(t, 1i64, 5i64);
        let _ = c.table_remove(t, 2i64);
        let _ = c.table_entries(t);
    }
    if let Ok(s) = c.open_set("s", ValueType::I64, TableOptions::default()) {
        let _ = c.set_add(s, 1i64);
        let _ = c.set_remove(s, 2i64);
        let _ = c.set_members(s);
    }
    while c.poll_table_change().is_some() {}
    // A local write integrates what is deferred for the value.
    for &(h, ty) in &handles {
        let _ = c.get(h);
        let _ = c.set(h, sample(ty, 1));
    }
    c.tick(48);
    while c.poll_outbound().is_some() {}
    // Idle long enough to hibernate (encodes), then wake (revives).
    c.tick(20_000);
    for &(h, ty) in &handles {
        let _ = c.set(h, sample(ty, 2));
        let _ = c.get(h);
    }
    c.tick(20_016);
    while c.poll_outbound().is_some() {}
    while c.poll_change().is_some() {}
    let _ = c.metrics();
    let _ = c.next_deadline_ms();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs this fuzzer found that make yrs panic (in fuzz/regressions, named for where:
    /// `decoder-` in yrs's update decoder, `integration-` while applying, and the yrs
    /// source line). Each is contained: no panic reaches the caller, the message or update
    /// is counted as rejected, and the context goes on working: a later real message from
    /// the same sender still applies.
    #[test]
    fn yrs_panics_found_by_the_fuzzer_stay_contained() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/regressions");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let data = std::fs::read(&path).unwrap();
            let mut c = run_keep(&data);
            let m = c.metrics();
            let counted = if name.starts_with("decoder-") { m.messages_rejected } else { m.rejected_updates };
            assert!(counted > 0, "{name}: not counted as rejected: {m:?}");
            let later = session_messages().pop().unwrap();
            c.receive_from(SENDER, &later).unwrap_or_else(|e| panic!("{name}: {e}"));
            c.tick(30_000);
            n += 1;
        }
        assert!(n >= 2, "the regressions are there");
    }

    #[test]
    fn every_seed_runs() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/corpus/receive");
        for entry in std::fs::read_dir(dir).unwrap() {
            run(&std::fs::read(entry.unwrap().path()).unwrap());
        }
    }
}

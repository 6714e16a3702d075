//! Churn soak: a collection of 1,000 live entries through `--ops` inserts and as many
//! removes (unique keys, as spawned and destroyed entities get), written on A and
//! delivered to B every tick, `--per-tick` of each per tick. Memory is the live heap of
//! both peers at the end, beside the heap of a fresh pair holding the same 1,000 live
//! entries, built in the same run. The target for zen-crdt's collections is an end
//! within 1.5x of fresh.
//!
//! Runs:
//! - y-sync, one Map: one Doc, one Map, an entry per key; one transaction per tick, its
//!   incremental update applied on B (plain yrs as a competent user syncs it);
//! - y-sync, one Array: the same with an Array, pushing at the end and deleting at the
//!   front (a queue) or at a pseudo-random index;
//! - zen-crdt values: an entry per value, created and removed through the public API
//!   (removed values keep a tombstone);
//! - zen-crdt table, set and sequence (a FIFO queue): an entry per insert through each
//!   collection's API (removed entries are forgotten once both peers hold the removal);
//!   the sequence runs `--zen-ops` (its calls sort the items).
//!
//! `cargo bench -p zen-crdt-bench --bench churn` runs 1,000,000 of each for the
//! baselines and the table; zen-crdt's values run `--zen-ops` (default 100,000: their
//! tombstones would not fit a million). Prints a table; asserts nothing.

use std::time::Instant;
use yrs::updates::decoder::Decode;
use yrs::{Any, Array, Doc, Map, Transact, Update};
use zen_crdt::*;
use zen_crdt_bench::baseline::{arg, heap, mb, pair};

#[global_allocator]
static ALLOC: zen_crdt_bench::alloc_count::Counting = zen_crdt_bench::alloc_count::Counting;

const LIVE: u64 = 1000;

struct Run {
    name: &'static str,
    ops: u64,
    fresh: i64,
    end: i64,
    secs: f64,
    note: String,
}

/// Ticks both, moves every message both ways, drains events.
fn round(a: &mut Context, b: &mut Context, now: u64) {
    a.tick(now);
    b.tick(now);
    while let Some(m) = a.poll_outbound() {
        b.receive(&m.bytes).unwrap();
    }
    while let Some(m) = b.poll_outbound() {
        a.receive(&m.bytes).unwrap();
    }
    while a.poll_change().is_some() {}
    while b.poll_change().is_some() {}
}

/// A Doc pair with y-sync's tick: `edit` changes A in one transaction, B applies it.
struct YPair {
    a: Doc,
    b: Doc,
}

impl YPair {
    fn new() -> YPair {
        YPair { a: Doc::with_client_id(1), b: Doc::with_client_id(2) }
    }

    fn tick(&self, edit: impl FnOnce(&mut yrs::TransactionMut)) {
        let update = {
            let mut txn = self.a.transact_mut();
            edit(&mut txn);
            txn.encode_update_v1()
        };
        self.b.transact_mut().apply_update(Update::decode_v1(&update).unwrap()).unwrap();
    }
}

fn entry(n: u64) -> Any {
    Any::Array(vec![Any::from(n as f64), Any::from(1.0), Any::from(2.0)].into())
}

fn ymap(ops: u64, per_tick: u64) -> Run {
    let fill = |p: &YPair, m: &yrs::MapRef| {
        p.tick(|t| {
            for n in 0..LIVE {
                m.insert(t, format!("e{n}"), entry(n));
            }
        })
    };
    let base = heap();
    let fresh = {
        let p = YPair::new();
        let m = p.a.get_or_insert_map("t");
        p.b.get_or_insert_map("t");
        fill(&p, &m);
        heap() - base
    };
    let p = YPair::new();
    let m = p.a.get_or_insert_map("t");
    p.b.get_or_insert_map("t");
    fill(&p, &m);
    let t = Instant::now();
    let mut next = LIVE;
    while next < LIVE + ops {
        p.tick(|t| {
            for _ in 0..per_tick {
                m.insert(t, format!("e{next}"), entry(next));
                m.remove(t, &format!("e{}", next - LIVE));
                next += 1;
            }
        });
    }
    let end = heap() - base;
    assert_eq!(p.b.get_or_insert_map("t").len(&p.b.transact()), LIVE as u32);
    Run { name: "y-sync, one Map", ops, fresh, end, secs: t.elapsed().as_secs_f64(), note: String::new() }
}

/// `fifo`: delete the oldest item (a queue); else an item at a pseudo-random index.
fn yarray(ops: u64, per_tick: u64, fifo: bool) -> Run {
    let fill = |p: &YPair, a: &yrs::ArrayRef| {
        p.tick(|t| {
            for n in 0..LIVE {
                a.push_back(t, entry(n));
            }
        })
    };
    let base = heap();
    let fresh = {
        let p = YPair::new();
        let a = p.a.get_or_insert_array("t");
        p.b.get_or_insert_array("t");
        fill(&p, &a);
        heap() - base
    };
    let p = YPair::new();
    let a = p.a.get_or_insert_array("t");
    p.b.get_or_insert_array("t");
    fill(&p, &a);
    let t = Instant::now();
    let mut done = 0;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    while done < ops {
        p.tick(|t| {
            for _ in 0..per_tick {
                a.push_back(t, entry(LIVE + done));
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                a.remove(t, if fifo { 0 } else { (seed % LIVE) as u32 });
                done += 1;
            }
        });
    }
    let end = heap() - base;
    assert_eq!(p.b.get_or_insert_array("t").len(&p.b.transact()), LIVE as u32);
    Run {
        name: if fifo { "y-sync, one Array (FIFO)" } else { "y-sync, one Array (random removes)" },
        ops,
        fresh,
        end,
        secs: t.elapsed().as_secs_f64(),
        note: String::new(),
    }
}

fn zen_values(ops: u64, per_tick: u64) -> Run {
    let create = |c: &mut Context, n: u64| {
        let h = c.create(&format!("t/e{n}"), ValueType::Vec3, ValueOptions::default()).unwrap();
        c.set(h, [n as f32, 1.0, 2.0]).unwrap();
        h
    };
    let base = heap();
    let fresh = {
        let (mut a, mut b) = pair();
        for n in 0..LIVE {
            create(&mut a, n);
        }
        for k in 1..=3 {
            round(&mut a, &mut b, k * 16);
        }
        heap() - base
    };
    let (mut a, mut b) = pair();
    let mut live: std::collections::VecDeque<ValueHandle> = (0..LIVE).map(|n| create(&mut a, n)).collect();
    let t = Instant::now();
    let (mut next, mut tick) = (LIVE, 0);
    while next < LIVE + ops {
        for _ in 0..per_tick {
            live.push_back(create(&mut a, next));
            a.remove(live.pop_front().unwrap()).unwrap();
            next += 1;
        }
        tick += 1;
        round(&mut a, &mut b, tick * 16);
    }
    for k in 1..=3 {
        round(&mut a, &mut b, (tick + k) * 16);
    }
    let end = heap() - base;
    let note = format!("{} values held on B for {LIVE} live", b.value_count());
    Run { name: "zen-crdt, a value per entry", ops, fresh, end, secs: t.elapsed().as_secs_f64(), note }
}

/// How one kind of zen-crdt collection is opened, and how an entry numbered `n` goes in
/// and out of it.
struct Kind {
    name: &'static str,
    open: fn(&mut Context) -> TableHandle,
    insert: fn(&mut Context, TableHandle, u64),
    remove: fn(&mut Context, TableHandle, u64),
}

fn zen_entry(n: u64) -> Value {
    Value::Vec3([n as f32, 1.0, 2.0])
}

const TABLE: Kind = Kind {
    name: "zen-crdt, a table",
    open: |c| c.open_table("t", ValueType::Vec3, TableOptions::default()).unwrap(),
    insert: |c, t, n| c.table_set(t, n as i64, zen_entry(n)).unwrap(),
    remove: |c, t, n| {
        c.table_remove(t, n as i64).unwrap();
    },
};

/// The table, owner-only: only A (peer 1) writes it; B checks every record's epoch.
const OWNED_TABLE: Kind = Kind {
    name: "zen-crdt, an owner-only table",
    open: |c| {
        c.open_table("o", ValueType::Vec3, TableOptions { owner: Some(1), ..TableOptions::default() })
            .unwrap()
    },
    insert: TABLE.insert,
    remove: TABLE.remove,
};

const SET: Kind = Kind {
    name: "zen-crdt, a set",
    open: |c| c.open_set("s", ValueType::Vec3, TableOptions::default()).unwrap(),
    insert: |c, s, n| c.set_add(s, zen_entry(n)).unwrap(),
    remove: |c, s, n| {
        c.set_remove(s, zen_entry(n)).unwrap();
    },
};

/// A queue: push at the end, remove the oldest (index 0).
const SEQUENCE: Kind = Kind {
    name: "zen-crdt, a sequence (FIFO)",
    open: |c| c.open_seq("q", ValueType::Vec3, TableOptions::default()).unwrap(),
    insert: |c, q, n| c.seq_push(q, zen_entry(n)).unwrap(),
    remove: |c, q, _| {
        c.seq_remove(q, 0).unwrap();
    },
};

/// The same churn on a zen-crdt collection: an entry per insert, removed through the
/// collection's API; removed entries are forgotten once both peers hold the removal.
fn zen_collection(kind: &Kind, ops: u64, per_tick: u64) -> Run {
    let drain = |a: &mut Context, b: &mut Context| {
        while a.poll_table_change().is_some() || b.poll_table_change().is_some() {}
    };
    let base = heap();
    let fresh = {
        let (mut a, mut b) = pair();
        let t = (kind.open)(&mut a);
        (kind.open)(&mut b);
        for n in 0..LIVE {
            (kind.insert)(&mut a, t, n);
        }
        for k in 1..=3 {
            round(&mut a, &mut b, k * 16);
        }
        drain(&mut a, &mut b);
        heap() - base
    };
    let (mut a, mut b) = pair();
    let t = (kind.open)(&mut a);
    let tb = (kind.open)(&mut b);
    for n in 0..LIVE {
        (kind.insert)(&mut a, t, n);
    }
    let start = Instant::now();
    let (mut next, mut tick) = (LIVE, 0);
    while next < LIVE + ops {
        for _ in 0..per_tick {
            (kind.insert)(&mut a, t, next);
            (kind.remove)(&mut a, t, next - LIVE);
            next += 1;
        }
        tick += 1;
        round(&mut a, &mut b, tick * 16);
        drain(&mut a, &mut b);
    }
    for k in 1..=3 {
        round(&mut a, &mut b, (tick + k) * 16);
        drain(&mut a, &mut b);
    }
    let end = heap() - base;
    assert_eq!(b.table_len(tb).unwrap(), LIVE as usize);
    let (ma, mb_) = (a.metrics(), b.metrics());
    let note = format!(
        "entries held on A / B at the end: {} / {} for {LIVE} live; forgotten on B: {}; A sent {:.1} B per op",
        ma.table_entries,
        mb_.table_entries,
        mb_.entries_forgotten,
        ma.bytes_out as f64 / ops as f64
    );
    Run { name: kind.name, ops, fresh, end, secs: start.elapsed().as_secs_f64(), note }
}

fn main() {
    let ops = arg("--ops", 1_000_000);
    let zen_ops = arg("--zen-ops", 100_000).min(ops);
    let per_tick = arg("--per-tick", 100).max(1);
    eprintln!("churn: {LIVE} live entries, {ops} inserts and removes ({zen_ops} for zen-crdt values), {per_tick} per tick");
    let runs = [
        ymap(ops, per_tick),
        yarray(ops, per_tick, true),
        yarray(ops, per_tick, false),
        zen_values(zen_ops, per_tick),
        zen_collection(&TABLE, ops, per_tick),
        zen_collection(&OWNED_TABLE, ops, per_tick),
        zen_collection(&SET, ops, per_tick),
        // A sequence finds positions by sorting its items (O(n log n) a call), so it
        // runs the values' smaller count.
        zen_collection(&SEQUENCE, zen_ops, per_tick),
    ];
    println!("\ncollection churn (release; memory = live heap of both peers; 'fresh' = a pair holding the same {LIVE} live entries)\n");
    println!(
        "| {:<34} | {:>9} | {:>10} | {:>10} | {:>9} | {:>12} | {:>6} |",
        "run", "ops", "fresh", "end", "end/fresh", "B per op", "secs"
    );
    println!("|{:-<36}|{:->11}|{:->12}|{:->12}|{:->11}|{:->14}|{:->8}|", "", "", "", "", "", "", "");
    for r in &runs {
        println!(
            "| {:<34} | {:>9} | {:>10} | {:>10} | {:>8.1}x | {:>12.1} | {:>6.1} |",
            r.name,
            r.ops,
            mb(r.fresh),
            mb(r.end),
            r.end as f64 / r.fresh.max(1) as f64,
            (r.end - r.fresh) as f64 / r.ops.max(1) as f64,
            r.secs
        );
    }
    println!();
    for r in &runs {
        if !r.note.is_empty() {
            println!("- {}: {}", r.name, r.note);
        }
    }
    println!(
        "- one op = one insert and one remove; target for zen-crdt collections: end within 1.5x of fresh"
    );
}

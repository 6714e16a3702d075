//! `Context::next_deadline_ms`: a host that ticks only when a deadline is due or a
//! message arrived behaves exactly as one ticking every millisecond, over a lossy network
//! with a partition long enough for members to time out. Exactly: every tick it skips
//! would have done nothing, so both send the same bytes at the same times (a deadline
//! reported late would delay a heartbeat, a catch-up or a timeout, and show).

use zen_crdt::sim::{Hosts, LinkConfig, Network};
use zen_crdt::*;

const SEED: u64 = 11;
const HOSTS: usize = 3;
const END_MS: u64 = 14_000;

/// The contexts, ticked every frame or only at their deadlines.
struct Players {
    ctx: Vec<Context>,
    /// Whether a message reached host i since its last tick.
    received: Vec<bool>,
    at_deadlines: bool,
    ticks: u64,
    /// Every message sent: (host time, host, bytes).
    sent: Vec<(u64, usize, Vec<u8>)>,
    /// Every change event: (host time, host, the event).
    events: Vec<(u64, usize, String)>,
}

impl Hosts for Players {
    fn count(&self) -> usize {
        self.ctx.len()
    }
    fn peer_id(&self, host: usize) -> u64 {
        self.ctx[host].peer_id()
    }
    fn deliver(&mut self, host: usize, from: u64, bytes: &[u8]) {
        self.ctx[host].receive_from(from, bytes).expect("a healthy session rejects nothing");
        self.received[host] = true;
    }
    fn tick(&mut self, host: usize, now: u64, out: &mut Vec<Outbound>) {
        let c = &mut self.ctx[host];
        if self.at_deadlines && !self.received[host] && c.next_deadline_ms().is_none_or(|t| t > now) {
            return;
        }
        self.received[host] = false;
        self.ticks += 1;
        c.tick(now);
        let first = out.len();
        out.extend(std::iter::from_fn(|| c.poll_outbound()));
        self.sent.extend(out[first..].iter().map(|o| (now, host, o.bytes.clone())));
        while let Some(e) = c.poll_change() {
            // Handles name their context by a process-wide serial: compare the value's id.
            // Not `time_ms`: a local write is stamped with the context's time, its last tick.
            let what = (c.id(e.value).unwrap(), e.kind, e.old, e.new, e.state, e.is_correction, e.origin);
            self.events.push((now, host, format!("{what:?}")));
        }
    }
    fn connect(&mut self, a: usize, b: usize, connected: bool) {
        let (pa, pb) = (self.ctx[a].peer_id(), self.ctx[b].peer_id());
        if connected {
            self.ctx[a].add_peer(pb).unwrap();
            self.ctx[b].add_peer(pa).unwrap();
        }
    }
}

/// What every host reads for every value at the end, and the run's ticks and messages.
type Reads = Vec<Vec<(String, Value, SyncState)>>;

fn session(at_deadlines: bool) -> (Reads, Players) {
    let link = LinkConfig { latency_ms: 30, jitter_ms: 20, loss: 0.05, ..LinkConfig::default() };
    let mut net = Network::new(SEED, HOSTS, link);
    let mut p = Players {
        ctx: (1..=HOSTS as u64).map(|id| Context::new(id, Options::default()).unwrap()).collect(),
        received: vec![false; HOSTS],
        at_deadlines,
        ticks: 0,
        sent: Vec::new(),
        events: Vec::new(),
    };
    for h in 0..HOSTS {
        net.set_online(h, true, &mut p);
    }
    let wait = ValueOptions { mode: Mode::WaitForSync, ..ValueOptions::default() };
    let mut handles = Vec::new();
    for (i, c) in p.ctx.iter_mut().enumerate() {
        let own = c.create(&format!("p{i}.x"), ValueType::I64, ValueOptions::default()).unwrap();
        let acked = c.create(&format!("p{i}.w"), ValueType::I64, wait.clone()).unwrap();
        handles.push((own, acked));
    }
    // 1 ms steps: a deadline is met to the millisecond and a receipt handled when it lands.
    for now in 1..=END_MS {
        if now % 96 == 0 && now <= 8_000 {
            let i = (now / 96) as usize % HOSTS;
            let (own, acked) = handles[i];
            p.ctx[i].set(own, now as i64).unwrap();
            p.ctx[i].set(acked, -(now as i64)).unwrap();
        }
        // Host 2 is cut off for 4.5 s: the others time it out, then catch it up.
        if now == 2_000 {
            net.group = vec![0, 0, 1];
        }
        if now == 6_496 {
            net.group = vec![0; HOSTS];
        }
        net.step(now, &mut p);
    }
    let reads = p
        .ctx
        .iter()
        .map(|c| {
            let mut ids: Vec<String> = c.value_ids().map(str::to_owned).collect();
            ids.sort();
            ids.into_iter()
                .map(|id| {
                    let h = c.open(&id).unwrap();
                    (id, c.get(h).unwrap(), c.state(h).unwrap())
                })
                .collect()
        })
        .collect();
    (reads, p)
}

#[test]
fn a_host_ticking_only_at_deadlines_and_on_receipt_stays_converged() {
    let (every_ms, all) = session(false);
    let (at_deadlines, some) = session(true);
    println!(
        "seed {SEED}: {} ticks every ms, {} at deadlines and receipts; {} messages and {} events each",
        all.ticks,
        some.ticks,
        all.sent.len(),
        all.events.len()
    );
    for reads in [&every_ms, &at_deadlines] {
        assert_eq!(reads[0].len(), 2 * HOSTS, "seed {SEED}: every value reached host 1");
        for (h, r) in reads.iter().enumerate() {
            assert_eq!(r, &reads[0], "seed {SEED}: host {h} differs from host 0");
            assert!(r.iter().all(|(_, _, s)| *s == SyncState::Converged), "seed {SEED}: {r:?}");
        }
    }
    assert_eq!(every_ms, at_deadlines, "seed {SEED}: both end in the same state");
    let first_difference = all.sent.iter().zip(&some.sent).position(|(a, b)| a != b);
    assert_eq!(first_difference, None, "seed {SEED}: message {first_difference:?} differs");
    assert_eq!(all.sent.len(), some.sent.len(), "seed {SEED}");
    let first_difference = all.events.iter().zip(&some.events).position(|(a, b)| a != b);
    assert_eq!(first_difference, None, "seed {SEED}: event {first_difference:?} differs");
    assert_eq!(all.events.len(), some.events.len(), "seed {SEED}");
    assert!(some.ticks * 10 < all.ticks, "seed {SEED}: {} ticks is not sleeping", some.ticks);
}

#[test]
fn deadlines_follow_writes_members_and_idleness() {
    let mut c = Context::new(1, Options::default()).unwrap();
    assert_eq!(c.next_deadline_ms(), None, "a lone context with nothing has nothing to do");
    let h = c.create("x", ValueType::I64, ValueOptions::default()).unwrap();
    c.set(h, 1i64).unwrap();
    assert_eq!(c.next_deadline_ms(), Some(0), "a pending write: tick now");
    c.tick(100);
    let idle = c.next_deadline_ms().expect("the idle value hibernates later");
    // Idle since the write (host time 0, the context's time then).
    assert_eq!(idle, Options::default().hibernate_after_ms);
    c.add_peer(2).unwrap();
    assert_eq!(c.next_deadline_ms(), Some(100), "a new member: tick now");
    c.tick(116);
    let next = c.next_deadline_ms().unwrap();
    let o = Options::default();
    // Heartbeat, or the catch-up of a member that has not acknowledged our write.
    assert!(next > 116 && next <= 116 + o.heartbeat_ms.max(200), "{next}");
    c.tick(idle + 10);
    assert!(c.next_deadline_ms().unwrap() > idle + 10, "deadlines that passed are not reported");
}

//! The arena played with zen-crdt: `Sim`'s contexts driven tick by tick, each call timed
//! in thread CPU and each message counted in both byte accountings, as `ysync_arena.rs`
//! counts the baseline.
use crate::scenarios::*;
use crate::thread_cpu_ns;
use crate::ysync::{Acct, Work};
use std::collections::HashMap;
use zen_crdt::sim::{Hosts, LinkConfig, Sim};
use zen_crdt::*;

/// `Sim`'s contexts as the network's hosts, timing each call and counting each
/// message's bytes in both accountings (a broadcast reaches every other online peer).
pub(crate) struct Timed<'a> {
    pub peers: &'a mut [Context],
    /// Peers a broadcast reaches (the other online ones).
    pub recipients: usize,
    pub acct: &'a mut Acct,
    pub rejected: &'a mut u64,
}

impl Hosts for Timed<'_> {
    fn count(&self) -> usize {
        self.peers.len()
    }

    fn peer_id(&self, host: usize) -> u64 {
        self.peers[host].peer_id()
    }

    fn deliver(&mut self, host: usize, from: u64, bytes: &[u8]) {
        let t = thread_cpu_ns();
        let r = self.peers[host].receive_from(from, bytes);
        self.acct.cpu_ns[Work::Apply as usize] += thread_cpu_ns() - t;
        *self.rejected += r.is_err() as u64;
    }

    fn tick(&mut self, host: usize, now: u64, out: &mut Vec<Outbound>) {
        let t = thread_cpu_ns();
        let c = &mut self.peers[host];
        c.tick(now);
        out.extend(std::iter::from_fn(|| c.poll_outbound()));
        self.acct.cpu_ns[Work::Encode as usize] += thread_cpu_ns() - t;
        for m in out.iter() {
            let n = if m.to.is_none() { self.recipients } else { 1 };
            self.acct.sent(crate::baseline::zen_raw_len(&m.bytes), m.bytes.len(), n);
        }
    }

    fn connect(&mut self, _: usize, _: usize, _: bool) {
        unreachable!("the arena joins and leaves through Sim")
    }
}

pub struct ZenArena {
    pub sim: Sim,
    pos: Vec<Vec<ValueHandle>>,
    hp: Vec<Vec<ValueHandle>>,
    score: Vec<ValueHandle>,
    /// Per peer: health values it wrote, and when (to time corrections).
    wrote: Vec<HashMap<ValueHandle, u64>>,
    /// Per peer: the tick time of its oldest score write not yet converged.
    score_written: Vec<Option<u64>>,
    /// WaitForSync score writes, from the tick the game wrote one to the tick whose
    /// events tell the writer every peer has it (the y-sync side's accounting).
    converge: Histogram,
    acct: Acct,
    pub rejected: u64,
}

impl ZenArena {
    pub fn new(seed: u64, peers: usize, link: LinkConfig) -> ZenArena {
        let mut sim = Sim::new(seed, peers, link, Options::default());
        assert_eq!(sim.tick_ms, TICK);
        let (mut pos, mut hp, mut score) = (Vec::new(), Vec::new(), Vec::new());
        let avg = ValueOptions {
            mode: Mode::FastLocal,
            policy: Policy::TakeAverage,
            local_only: false,
            owner: None,
        };
        let wait =
            ValueOptions { mode: Mode::WaitForSync, policy: Policy::Max, local_only: false, owner: None };
        for p in 0..peers {
            let c = sim.ctx(p);
            let v3 = ValueOptions::default();
            pos.push(
                (0..ENTITIES)
                    .map(|i| c.create(&pos_id(p, i), ValueType::Vec3, v3.clone()).unwrap())
                    .collect(),
            );
            hp.push(
                (0..ENTITIES).map(|i| c.create(&hp_id(p, i), ValueType::F64, avg.clone()).unwrap()).collect(),
            );
            score.push(c.create(&score_id(p), ValueType::I64, wait.clone()).unwrap());
        }
        sim.drain_events = false;
        ZenArena {
            sim,
            pos,
            hp,
            score,
            wrote: (0..peers).map(|_| HashMap::with_capacity(4 * ENTITIES)).collect(),
            score_written: vec![None; peers],
            converge: Histogram::new(),
            acct: Acct::default(),
            rejected: 0,
        }
    }

    fn agree(&self, hot: bool) -> bool {
        let first = &self.sim.peers[0];
        let online: Vec<&Context> =
            (0..self.sim.peers.len()).filter(|&p| self.sim.online(p)).map(|p| &self.sim.peers[p]).collect();
        online.iter().all(|c| c.value_count() == first.value_count())
            && first.value_ids().filter(|id| hot || !id.ends_with("/pos")).all(|id| {
                let reads: Vec<_> =
                    online.iter().map(|c| c.open(id).ok().and_then(|h| c.get(h).ok())).collect();
                reads.windows(2).all(|w| match (&w[0], &w[1]) {
                    (Some(a), Some(b)) => a.same_bits(b),
                    _ => false,
                })
            })
    }

    /// WaitForSync score convergence as the games saw it (see `converge`). The library's
    /// own histogram (`Context::converge_histogram`) counts from the tick before the
    /// write, the last time the context was told, so it reads one tick more for a game
    /// that writes and then ticks, as this one does.
    pub fn converge_histogram(&self) -> Histogram {
        self.converge.clone()
    }
}

impl Arena for ZenArena {
    fn peers(&self) -> usize {
        self.sim.peers.len()
    }

    fn online(&self, p: usize) -> bool {
        self.sim.online(p)
    }

    fn play(&mut self, tick: u64, writes: bool, out: &mut Outcome, measure: bool) {
        let peers = self.sim.peers.len();
        let now = tick * TICK;
        for p in 0..peers {
            if !writes || !self.sim.online(p) {
                continue;
            }
            let t = thread_cpu_ns();
            let c = &mut self.sim.peers[p];
            for i in 0..ENTITIES {
                c.set(self.pos[p][i], pos(tick, i, p)).unwrap();
            }
            for (owner, i, hp) in hp_writes(tick, p, peers).into_iter().flatten() {
                let h = if owner == p { Ok(self.hp[p][i]) } else { c.open(&hp_id(owner, i)) };
                if let Ok(h) = h {
                    c.set(h, hp).unwrap();
                    self.wrote[p].insert(h, now);
                }
            }
            if tick.is_multiple_of(60) {
                let next = match c.get(self.score[p]) {
                    Ok(Value::I64(v)) => v + 1,
                    _ => 1,
                };
                c.set(self.score[p], next).unwrap();
                self.score_written[p].get_or_insert(now);
            }
            self.acct.cpu_ns[Work::Write as usize] += thread_cpu_ns() - t;
        }
        self.sim.now = now;
        let recipients = self.sim.net.online.iter().filter(|&&o| o).count().saturating_sub(1);
        let mut hosts = Timed {
            peers: &mut self.sim.peers,
            recipients,
            acct: &mut self.acct,
            rejected: &mut self.rejected,
        };
        self.sim.net.step(now, &mut hosts);
        let mut fixes = [0u32; 2];
        for (p, c) in self.sim.peers.iter_mut().enumerate() {
            let t = thread_cpu_ns();
            let mut events = Vec::new();
            while let Some(ev) = c.poll_change() {
                if ev.value == self.score[p] && ev.state == SyncState::Converged {
                    if let Some(t0) = self.score_written[p].take().filter(|_| measure) {
                        self.converge.record(now - t0);
                    }
                }
                if ev.is_correction {
                    events.push(ev);
                }
            }
            self.acct.cpu_ns[Work::Apply as usize] += thread_cpu_ns() - t;
            for ev in events.into_iter().filter(|_| measure) {
                out.corrections += 1;
                fixes[(ev.value == self.score[p]) as usize] += 1;
                if let Some(t0) = self.wrote[p].remove(&ev.value) {
                    out.correction_ms.record(ev.time_ms.saturating_sub(t0));
                }
            }
            self.wrote[p].retain(|_, t0| now - *t0 < CORRECTION_WINDOW_MS);
        }
        let s = out.second(now);
        s.corrections_fast += fixes[0];
        s.corrections_wait += fixes[1];
    }

    fn pos_tick(&self, r: usize, p: usize, i: usize) -> Option<u64> {
        let c = &self.sim.peers[r];
        match c.get(c.open(&pos_id(p, i)).ok()?) {
            Ok(Value::Vec3([x, _, _])) => Some(x as u64),
            _ => None,
        }
    }

    fn all_agree(&self) -> bool {
        self.agree(true)
    }

    fn cold_agree(&self) -> bool {
        self.agree(false)
    }

    fn set_online(&mut self, p: usize, online: bool) {
        if online {
            self.sim.join(p)
        } else {
            self.sim.leave(p)
        }
    }

    fn set_groups(&mut self, groups: Vec<u32>) {
        self.sim.partition(groups);
    }

    fn acct(&self) -> Acct {
        self.acct
    }

    fn finish(&self, out: &mut Outcome) {
        out.converge_ms = self.converge_histogram();
    }
}

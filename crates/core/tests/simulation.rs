//! A seeded multi-replica simulation (after yrs `test_utils.rs`): replicas with wall
//! clocks skewed by up to ten minutes write, remove and clear; a network drops, duplicates, delays
//! and reorders their messages; anti-entropy repairs drops. After a full heal every replica must
//! hold the same state, equal to a model computed from the global log of every write ever issued.
use std::collections::{BTreeMap, HashMap};

use mfe_shared_cache_core::{Clock, Entry, ManualClock, Replica, Stamp};

#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

const KEYS: [&str; 8] = ["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"];
const MAX_SKEW_MS: u64 = 600_000;
const START_MS: u64 = 1_700_000_000_000;

#[derive(Clone, Debug)]
enum Msg {
    Write(String, Entry),
    Clear(Stamp),
}

struct InFlight {
    to: usize,
    deliver_at: u64,
    msg: Msg,
}

struct Node {
    replica: Replica,
    /// This replica's wall clock: true time plus a fixed skew plus a little jitter.
    clock: ManualClock,
    skew: i64,
    /// Per key, the highest stamp this replica has observed (delivered, joined or written).
    seen: HashMap<String, Stamp>,
    seen_epoch: Option<Stamp>,
}

impl Node {
    fn observe_write(&mut self, key: &str, stamp: &Stamp) {
        let slot = self.seen.entry(key.to_owned()).or_default();
        if *stamp > *slot {
            *slot = stamp.clone();
        }
    }

    fn observe_epoch(&mut self, stamp: &Stamp) {
        if self.seen_epoch.as_ref().is_none_or(|e| stamp > e) {
            self.seen_epoch = Some(stamp.clone());
        }
    }

    /// Joins another replica's full state and records what it observed.
    fn join(&mut self, other: &Replica) {
        self.replica.join(other);
        for (key, entry) in other.iter() {
            self.observe_write(key, &entry.stamp);
        }
        if let Some(epoch) = other.epoch() {
            self.observe_epoch(epoch);
        }
    }

    fn deliver(&mut self, msg: Msg) {
        match msg {
            Msg::Write(key, entry) => {
                self.observe_write(&key, &entry.stamp);
                self.replica.merge(&key, entry);
            }
            Msg::Clear(stamp) => {
                self.observe_epoch(&stamp);
                self.replica.merge_epoch(&stamp);
            }
        }
    }
}

#[derive(Default)]
struct Stats {
    writes: usize,
    clears: usize,
    delivered: usize,
    dropped: usize,
    duplicated: usize,
    /// Writes stamped above an observed write of the same key although the writer's wall clock
    /// was behind that write: the HLC, not the wall clock, ordered them.
    hlc_saves: usize,
}

struct Outcome {
    stats: Stats,
}

fn owned_state(r: &Replica) -> (BTreeMap<String, Entry>, Option<Stamp>) {
    let (entries, epoch) = r.state();
    (entries.into_iter().map(|(k, e)| (k.to_owned(), e.clone())).collect(), epoch.cloned())
}

fn run(seed: u64, steps: usize) -> Outcome {
    let mut rng = Rng::new(seed);
    let n = 4 + rng.index(3);
    let mut true_now = START_MS;
    let mut nodes: Vec<Node> = (0..n)
        .map(|i| {
            let skew = rng.below(2 * MAX_SKEW_MS + 1) as i64 - MAX_SKEW_MS as i64;
            Node {
                replica: Replica::new(format!("n{i}")),
                clock: ManualClock::new(true_now.saturating_add_signed(skew)),
                skew,
                seen: HashMap::new(),
                seen_epoch: None,
            }
        })
        .collect();
    let mut in_flight: Vec<InFlight> = Vec::new();
    let mut log: Vec<(usize, String, Entry)> = Vec::new();
    let mut clears: Vec<Stamp> = Vec::new();
    let mut stats = Stats::default();

    for step in 0..steps {
        true_now += rng.below(80);
        for node in &nodes {
            // A little jitter, so a wall clock sometimes steps back.
            let jitter = rng.below(21) as i64 - 10;
            node.clock.set(true_now.saturating_add_signed(node.skew + jitter));
        }

        // One local change, broadcast to every other replica.
        let r = rng.index(n);
        let node = &mut nodes[r];
        let wall = node.clock.now_ms();
        let msg = if rng.percent(4) {
            let (stamp, _) = node.replica.clear(wall);
            let above_all = node.seen.values().all(|s| stamp > *s);
            assert!(above_all, "seed {seed} step {step}: clear {stamp:?} not above every write n{r} saw");
            assert!(node.seen_epoch.as_ref().is_none_or(|e| stamp > *e), "seed {seed}: clear below seen clear");
            node.observe_epoch(&stamp);
            clears.push(stamp.clone());
            stats.clears += 1;
            Msg::Clear(stamp)
        } else {
            let key = KEYS[rng.index(KEYS.len())];
            let value = (!rng.percent(20)).then(|| format!("{{\"by\":{r},\"step\":{step}}}"));
            let ttl_ms = [0, 0, 1_000, 3_600_000][rng.index(4)];
            let entry = node.replica.write(key, value, ttl_ms, wall);
            // HLC: above every write of this key the writer observed, and above every clear it
            // observed (or the write would be lost), however far behind its wall clock is.
            if let Some(seen) = node.seen.get(key) {
                assert!(
                    entry.stamp > *seen,
                    "seed {seed} step {step}: n{r} wrote {key} at {:?} after observing {seen:?}",
                    entry.stamp
                );
                if wall <= seen.ts {
                    stats.hlc_saves += 1;
                }
            }
            if let Some(epoch) = &node.seen_epoch {
                assert!(entry.stamp > *epoch, "seed {seed} step {step}: write below an observed clear");
            }
            assert!(entry.stamp.ts >= wall, "seed {seed}: HLC stamp below the wall clock");
            node.observe_write(key, &entry.stamp);
            log.push((r, key.to_owned(), entry.clone()));
            stats.writes += 1;
            Msg::Write(key.to_owned(), entry)
        };
        for to in (0..n).filter(|&to| to != r) {
            if rng.percent(20) {
                stats.dropped += 1;
                continue;
            }
            let copies = if rng.percent(10) { 2 } else { 1 };
            stats.duplicated += copies - 1;
            for _ in 0..copies {
                let deliver_at = true_now + rng.below(1_500);
                in_flight.push(InFlight { to, deliver_at, msg: msg.clone() });
            }
        }

        // Deliver a few messages from random positions of the queue, once their delay passed.
        for _ in 0..rng.below(5) {
            if in_flight.is_empty() {
                break;
            }
            let i = rng.index(in_flight.len());
            if in_flight[i].deliver_at <= true_now {
                let m = in_flight.swap_remove(i);
                nodes[m.to].deliver(m.msg);
                stats.delivered += 1;
            }
        }

        // Anti-entropy: one replica sends its full state to another.
        if rng.percent(5) {
            let from = rng.index(n);
            let to = (from + 1 + rng.index(n - 1)) % n;
            let state = nodes[from].replica.clone();
            nodes[to].join(&state);
        }
    }

    // Heal: deliver what is still in flight (in random order), then everyone joins everyone.
    while !in_flight.is_empty() {
        let m = in_flight.swap_remove(rng.index(in_flight.len()));
        nodes[m.to].deliver(m.msg);
        stats.delivered += 1;
    }
    for i in 0..n {
        for j in 0..n {
            if i != j {
                let state = nodes[j].replica.clone();
                nodes[i].join(&state);
            }
        }
    }

    // (a) Convergence.
    let reference = owned_state(&nodes[0].replica);
    for (i, node) in nodes.iter().enumerate() {
        assert_eq!(owned_state(&node.replica), reference, "seed {seed}: n{i} differs from n0");
    }

    // (b) The model: per key the highest-stamped write above the highest clear.
    let final_epoch = clears.iter().max().cloned();
    let mut model: BTreeMap<String, Entry> = BTreeMap::new();
    for (_, key, entry) in &log {
        if final_epoch.as_ref().is_some_and(|e| entry.stamp <= *e) {
            continue;
        }
        if model.get(key).is_none_or(|cur| entry.stamp > cur.stamp) {
            model.insert(key.clone(), entry.clone());
        }
    }
    assert_eq!(reference, (model, final_epoch.clone()), "seed {seed}: state differs from the model");

    // (c) No write lost unless superseded: each issued write is its key's final write, or is
    // ordered below it, or below the final clear.
    let (entries, epoch) = &reference;
    for (writer, key, entry) in &log {
        let kept = entries.get(key) == Some(entry);
        let superseded = entries.get(key).is_some_and(|e| e.stamp > entry.stamp);
        let cleared = epoch.as_ref().is_some_and(|e| entry.stamp <= *e);
        assert!(kept || superseded || cleared, "seed {seed}: write of {key} by n{writer} {entry:?} was lost");
    }
    Outcome { stats }
}

#[test]
fn replicas_converge_to_the_model_under_skew_drops_duplicates_and_reordering() {
    let mut total = Stats::default();
    for seed in 0..200 {
        let s = run(seed, 300).stats;
        total.writes += s.writes;
        total.clears += s.clears;
        total.delivered += s.delivered;
        total.dropped += s.dropped;
        total.duplicated += s.duplicated;
        total.hlc_saves += s.hlc_saves;
    }
    // The simulation exercised what it claims to.
    assert!(total.clears > 500, "too few clears: {}", total.clears);
    assert!(total.dropped > 10_000, "too few drops: {}", total.dropped);
    assert!(total.duplicated > 5_000, "too few duplicates: {}", total.duplicated);
    assert!(total.hlc_saves > 1_000, "skewed clocks were rarely behind: {}", total.hlc_saves);
    assert!(total.delivered > 50_000);
}

#[test]
fn simulation_is_deterministic_per_seed() {
    let a = run(7, 300).stats;
    let b = run(7, 300).stats;
    assert_eq!((a.writes, a.clears, a.delivered, a.dropped), (b.writes, b.clears, b.delivered, b.dropped));
}

/// The clock-skew scenario in isolation: a writer ten minutes behind, who saw a value written by
/// a writer ten minutes ahead, wins with its later write everywhere.
#[test]
fn a_write_after_seeing_a_value_wins_even_twenty_minutes_of_skew_apart() {
    let mut fast = Replica::new("fast");
    let mut slow = Replica::new("slow");
    let mut bystander = Replica::new("bystander");
    let t = START_MS;
    let theirs = fast.write("k", Some("\"fast\"".into()), 0, t + MAX_SKEW_MS);
    slow.merge("k", theirs.clone());
    let mine = slow.write("k", Some("\"slow\"".into()), 0, t - MAX_SKEW_MS);
    assert!(mine.stamp > theirs.stamp);
    // Delivered in either order, the later write wins.
    bystander.merge("k", mine.clone());
    bystander.merge("k", theirs);
    fast.merge("k", mine);
    assert_eq!(bystander.get("k", t), Some("\"slow\""));
    assert_eq!(fast.get("k", t), Some("\"slow\""));
}

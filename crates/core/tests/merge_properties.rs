//! Property tests of the merge rule: the replica state is a join-semilattice, so
//! delivery order, duplication and batching never change what replicas converge to, and what they
//! converge to is "per key the highest-stamped write above the highest clear epoch".
use std::collections::{BTreeMap, HashSet};

use mfe_shared_cache_core::{Entry, MergeOutcome, Replica, Stamp};
use proptest::prelude::*;

const KEYS: [&str; 5] = ["a", "b", "c", "d", "e"];

/// One change as it travels between replicas.
#[derive(Clone, Debug)]
enum Op {
    Write(String, Entry),
    Clear(Stamp),
}

fn stamp() -> impl Strategy<Value = Stamp> {
    (0u64..50, 1u8..=3).prop_map(|(ts, n)| Stamp::new(ts, format!("n{n}")))
}

/// A write: a value (with one of a few TTLs when `with_ttl`) or a tombstone.
fn write(with_ttl: bool) -> impl Strategy<Value = Op> {
    let ttl = if with_ttl { prop::sample::select(vec![0u64, 5, 20, 60]).boxed() } else { Just(0u64).boxed() };
    (prop::sample::select(KEYS.to_vec()), stamp(), prop::option::weighted(0.75, 0u8..10), ttl).prop_map(
        |(key, stamp, value, ttl)| {
            let entry = match value {
                Some(v) => Entry::value(stamp, ttl, format!("{{\"v\":{v}}}")),
                None => Entry::tombstone(stamp),
            };
            Op::Write(key.to_owned(), entry)
        },
    )
}

fn op(with_ttl: bool) -> impl Strategy<Value = Op> {
    prop_oneof![8 => write(with_ttl), 1 => stamp().prop_map(Op::Clear)]
}

/// A set of changes as a real system issues them: one stamp is one write, so two writes of a key
/// never share a stamp with different contents (a clear may share a stamp with a write; it then
/// removes it, consistently everywhere).
fn universe(with_ttl: bool, max: usize) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(with_ttl), 0..max).prop_map(|ops| {
        let mut seen_writes = HashSet::new();
        let mut seen_clears = HashSet::new();
        ops.into_iter()
            .filter(|op| match op {
                Op::Write(key, entry) => seen_writes.insert((key.clone(), entry.stamp.clone())),
                Op::Clear(stamp) => seen_clears.insert(stamp.clone()),
            })
            .collect()
    })
}

/// A universe and three random subsets of it (as masks).
fn universe_and_subsets() -> impl Strategy<Value = (Vec<Op>, [Vec<bool>; 3])> {
    universe(true, 40).prop_flat_map(|ops| {
        let n = ops.len();
        let mask = move || prop::collection::vec(any::<bool>(), n);
        (Just(ops), [mask(), mask(), mask()])
    })
}

fn subset(ops: &[Op], mask: &[bool]) -> Vec<Op> {
    ops.iter().zip(mask).filter(|(_, keep)| **keep).map(|(op, _)| op.clone()).collect()
}

fn apply(replica: &mut Replica, op: &Op) -> Option<MergeOutcome> {
    match op {
        Op::Write(key, entry) => Some(replica.merge(key, entry.clone())),
        Op::Clear(stamp) => {
            replica.merge_epoch(stamp);
            None
        }
    }
}

fn build(node: &str, ops: &[Op]) -> Replica {
    let mut r = Replica::new(node);
    for op in ops {
        apply(&mut r, op);
    }
    r
}

fn joined(a: &Replica, b: &Replica) -> Replica {
    let mut out = a.clone();
    out.join(b);
    out
}

/// The model: per key, the highest-stamped write among the writes ordered after the highest clear.
fn model(ops: &[Op]) -> (BTreeMap<String, Entry>, Option<Stamp>) {
    let epoch = ops
        .iter()
        .filter_map(|op| match op {
            Op::Clear(s) => Some(s.clone()),
            Op::Write(..) => None,
        })
        .max();
    let mut out: BTreeMap<String, Entry> = BTreeMap::new();
    for op in ops {
        if let Op::Write(key, entry) = op {
            if epoch.as_ref().is_some_and(|e| entry.stamp <= *e) {
                continue;
            }
            if out.get(key).is_none_or(|cur| entry.stamp > cur.stamp) {
                out.insert(key.clone(), entry.clone());
            }
        }
    }
    (out, epoch)
}

fn owned_state(r: &Replica) -> (BTreeMap<String, Entry>, Option<Stamp>) {
    let (entries, epoch) = r.state();
    (entries.into_iter().map(|(k, e)| (k.to_owned(), e.clone())).collect(), epoch.cloned())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn join_is_commutative((ops, [ma, mb, _]) in universe_and_subsets()) {
        let a = build("ra", &subset(&ops, &ma));
        let b = build("rb", &subset(&ops, &mb));
        prop_assert_eq!(owned_state(&joined(&a, &b)), owned_state(&joined(&b, &a)));
    }

    #[test]
    fn join_is_associative((ops, [ma, mb, mc]) in universe_and_subsets()) {
        let a = build("ra", &subset(&ops, &ma));
        let b = build("rb", &subset(&ops, &mb));
        let c = build("rc", &subset(&ops, &mc));
        let left = joined(&joined(&a, &b), &c);
        let right = joined(&a, &joined(&b, &c));
        prop_assert_eq!(left.state(), right.state());
    }

    #[test]
    fn join_is_idempotent((ops, [ma, mb, _]) in universe_and_subsets()) {
        let a = build("ra", &subset(&ops, &ma));
        let b = build("rb", &subset(&ops, &mb));
        prop_assert_eq!(owned_state(&joined(&a, &a)), owned_state(&a));
        let ab = joined(&a, &b);
        prop_assert_eq!(owned_state(&joined(&ab, &b)), owned_state(&ab));
        prop_assert_eq!(owned_state(&joined(&ab, &a)), owned_state(&ab));
    }

    /// State-based and operation-based sync agree: joining two replicas gives the same state as
    /// one replica that received both sets of changes one by one.
    #[test]
    fn join_equals_merging_the_union((ops, [ma, mb, _]) in universe_and_subsets()) {
        let (sa, sb) = (subset(&ops, &ma), subset(&ops, &mb));
        let a = build("ra", &sa);
        let b = build("rb", &sb);
        let both: Vec<Op> = sa.iter().chain(&sb).cloned().collect();
        prop_assert_eq!(owned_state(&joined(&a, &b)), owned_state(&build("rc", &both)));
    }

    /// Any permutation of the same changes, with any of them delivered again, gives one state.
    #[test]
    fn delivery_order_and_duplicates_do_not_matter(
        (ops, shuffled) in universe(true, 40).prop_flat_map(|ops| {
            let n = ops.len().max(1);
            let dups = prop::collection::vec(0..n, 0..20);
            (Just(ops.clone()), dups).prop_flat_map(|(ops, dups)| {
                let mut noisy = ops.clone();
                noisy.extend(dups.into_iter().filter_map(|i| ops.get(i).cloned()));
                (Just(ops), Just(noisy).prop_shuffle())
            })
        })
    ) {
        let in_order = build("r1", &ops);
        let noisy = build("r2", &shuffled);
        prop_assert_eq!(in_order.state(), noisy.state());
    }

    /// Every merge reports what it did, and only `Applied` changes the state.
    #[test]
    fn merge_outcomes_describe_what_happened(ops in universe(true, 40)) {
        let mut r = Replica::new("r");
        for op in &ops {
            let before = owned_state(&r);
            let outcome = apply(&mut r, op);
            let Op::Write(key, entry) = op else { continue };
            let after = owned_state(&r);
            match outcome {
                Some(MergeOutcome::Applied) => prop_assert_eq!(r.entry(key), Some(entry)),
                Some(MergeOutcome::Duplicate) => {
                    prop_assert_eq!(&after, &before);
                    prop_assert_eq!(r.entry(key), Some(entry));
                }
                Some(MergeOutcome::Stale) => {
                    prop_assert_eq!(&after, &before);
                    prop_assert!(r.entry(key).is_some_and(|cur| cur.stamp > entry.stamp));
                }
                Some(MergeOutcome::Cleared) => {
                    prop_assert_eq!(&after, &before);
                    prop_assert!(r.epoch().is_some_and(|e| entry.stamp <= *e));
                }
                None => unreachable!(),
            }
        }
    }

    /// Against a `BTreeMap` model (no TTL): the held write and the visible value of each key.
    #[test]
    fn matches_the_btreemap_model(ops in universe(false, 60), now in 0u64..1000) {
        let r = build("r", &ops);
        let (expected, epoch) = model(&ops);
        prop_assert_eq!(owned_state(&r), (expected.clone(), epoch));
        for key in KEYS {
            let visible = expected.get(key).and_then(|e| e.value.as_deref());
            prop_assert_eq!(r.get(key, now), visible, "key {}", key);
        }
    }

    /// With TTLs: an expired write still hides every older write of its key (expiry never
    /// resurrects), so a key is visible exactly when the model's write is a live value.
    #[test]
    fn expiry_only_hides_the_winning_write(ops in universe(true, 60), now in 0u64..120) {
        let r = build("r", &ops);
        let (expected, _) = model(&ops);
        for key in KEYS {
            let visible = expected
                .get(key)
                .filter(|e| e.ttl_ms == 0 || now < e.stamp.ts + e.ttl_ms)
                .and_then(|e| e.value.as_deref());
            prop_assert_eq!(r.get(key, now), visible, "key {} at {}", key, now);
        }
    }

    /// For one state, a key live at t2 is live at every t1 < t2.
    #[test]
    fn expiry_is_monotone(ops in universe(true, 60), t1 in 0u64..120, dt in 0u64..120) {
        let r = build("r", &ops);
        let t2 = t1 + dt;
        for key in KEYS {
            if r.get(key, t2).is_some() {
                prop_assert!(r.get(key, t1).is_some(), "{} live at {} but not at {}", key, t2, t1);
                prop_assert_eq!(r.get(key, t1), r.get(key, t2));
            }
        }
    }
}

//! A seeded, deterministic simulation of whole browser clients: two devices (the second's clock
//! 1 to 26 hours fast), each with one storage shared by two or three tabs, some tabs with two
//! copies of the package on the page; tab messages and `storage` events delayed and reordered; tabs
//! reloaded; devices going offline; a backend model that fails, times out, loses answers after
//! storing and crashes; some writes and removals for their browser only, over the same keys as the
//! others; one copy in three of a later version of the package, whose records and news carry a
//! member this version does not know. After everything heals, every client of every device, a tab opened fresh on each
//! device's storage, and the backend must hold what the global write log implies (a device's
//! writes for its browser only count there and nowhere else), and no outbox may be left with
//! anything pending.
//!
//! `SIM_SEED=<n>` runs one seed, `SIM_SEEDS=<n>` that many (from 1), `SIM_STEPS=<n>` makes each
//! run longer.
mod client_sim;

use std::collections::BTreeMap;
use std::time::Instant;

use client_sim::world::{Logged, View, World, SYNC_INTERVAL_MS};
use mfe_shared_cache_core::Reach;

const START_MS: u64 = 1_800_000_000_000;
const KEYS: [&str; 6] = ["a", "b", "c", "d", "e", "f"];
const STEPS: usize = 250;
const DEFAULT_SEEDS: u64 = 160;
/// Simulated time the healed world gets to drain and converge.
const HEAL_MS: u64 = 120_000;

struct Outcome {
    ops: usize,
    writes: usize,
    clients: usize,
    drain_steps: usize,
    later_records: usize,
    failures: Vec<String>,
}

fn one_op(w: &mut World, value: &mut u64) {
    let dev = w.rng.index(w.devices.len());
    let tab = w.rng.index(w.devices[dev].tabs.len());
    let copy = w.rng.index(w.devices[dev].tabs[tab].copies.len());
    // One task: a few calls, then the flush the shim runs when the task ends.
    let calls = 1 + w.rng.index(3);
    for _ in 0..calls {
        w.figures.ops += 1;
        let key = KEYS[w.rng.index(KEYS.len())];
        let roll = w.rng.below(100);
        // A write for this browser only now and then (a `sync: false` write, a loaded value, an
        // optimistic one), over keys that also get writes for everyone.
        let reach = if w.rng.percent(15) { Reach::Browser } else { Reach::Everyone };
        if roll < 55 {
            *value += 1;
            let ttl = if w.rng.percent(25) { 1_000 + w.rng.below(30_000) } else { 0 };
            let json = value.to_string();
            // As the shim does: news only when the page holds another copy.
            let peers = w.devices[dev].tabs[tab].copies.len() > 1;
            let news = w.with_copy(dev, tab, copy, |c, now| c.set_for(key, json, ttl, reach, now, peers)).expect("a valid set");
            w.log_write(dev, tab, copy, key, reach);
            assert_eq!(news.is_some(), peers, "a write's news exactly when the page has other copies");
            if let Some(news) = news {
                w.tell_peers(dev, tab, copy, &news);
            }
        } else if roll < 75 {
            let peers = w.devices[dev].tabs[tab].copies.len() > 1;
            let news = w.with_copy(dev, tab, copy, |c, now| c.remove_for(key, reach, now, peers)).expect("a valid remove");
            w.log_write(dev, tab, copy, key, reach);
            assert_eq!(news.is_some(), peers, "a remove's news exactly when the page has other copies");
            if let Some(news) = news {
                w.tell_peers(dev, tab, copy, &news);
            }
        } else if roll < 83 {
            let (news, _) = w.with_copy(dev, tab, copy, |c, now| c.clear(now));
            w.log_clear(dev, tab, copy);
            w.tell_peers(dev, tab, copy, &news);
        } else if roll < 86 {
            let pattern = if w.rng.percent(50) { "*" } else { key };
            let (news, keys) = w.with_copy(dev, tab, copy, |c, now| c.invalidate_for(pattern, reach, now)).expect("a valid pattern");
            for key in &keys {
                w.log_write(dev, tab, copy, key, reach);
            }
            if let Some(news) = news {
                w.tell_peers(dev, tab, copy, &news);
            }
        } else {
            w.with_copy(dev, tab, copy, |c, now| {
                c.get(key, now);
            });
        }
    }
    w.with_copy(dev, tab, copy, |c, now| {
        c.flush(now);
    });
}

/// What the global write log implies at `now` on `device` (the backend: `None`): per key its
/// highest-stamped write of those that reach there, unless a clear is stamped at or after it, and
/// only while live.
fn expected(log: &[Logged], now: u64, device: Option<usize>) -> View {
    let epoch = log
        .iter()
        .filter_map(|l| match l {
            Logged::Clear(e) => Some(e),
            Logged::Write(..) => None,
        })
        .max()
        .cloned();
    let mut latest: BTreeMap<&str, &mfe_shared_cache_core::Entry> = BTreeMap::new();
    for l in log {
        if let Logged::Write(key, entry, only) = l {
            if only.is_some_and(|d| Some(d) != device) {
                continue;
            }
            if latest.get(key.as_str()).is_none_or(|held| held.stamp < entry.stamp) {
                latest.insert(key, entry);
            }
        }
    }
    let visible = latest
        .into_iter()
        .filter(|(_, e)| epoch.as_ref().is_none_or(|ep| e.stamp > *ep) && e.is_live(now))
        .filter_map(|(k, e)| Some((k.to_owned(), (e.stamp.clone(), e.value.clone()?))))
        .collect();
    (visible, epoch)
}

fn diff(name: &str, got: &View, want: &View) -> Option<String> {
    if got == want {
        return None;
    }
    let mut out = format!("{name} diverges:");
    if got.1 != want.1 {
        out.push_str(&format!(" epoch {:?} instead of {:?};", got.1, want.1));
    }
    let keys: std::collections::BTreeSet<&String> = got.0.keys().chain(want.0.keys()).collect();
    for key in keys {
        let (g, x) = (got.0.get(key), want.0.get(key));
        if g != x {
            out.push_str(&format!(" {key}: {g:?} instead of {x:?};"));
        }
    }
    Some(out)
}

fn simulate(seed: u64) -> Outcome {
    let mut w = World::new(seed, START_MS);
    let mut value = 0;
    let steps = std::env::var("SIM_STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(STEPS);
    for _ in 0..steps {
        // Now and then a long pause: leases lapse, values expire, retries run out; and now and
        // then none, so that tabs write in the same millisecond (their stamps tie on the time).
        let pause = match w.rng.below(100) {
            0 => w.rng.below(90_000),
            1..=10 => w.rng.below(8_000),
            11..=25 => 0,
            _ => w.rng.below(400),
        };
        let until = w.now + pause;
        w.run_until(until);
        let roll = w.rng.below(100);
        if roll < 80 {
            one_op(&mut w, &mut value);
        } else if roll < 86 {
            let dev = w.rng.index(w.devices.len());
            let tab = w.rng.index(w.devices[dev].tabs.len());
            let copies = w.devices[dev].tabs[tab].copies.len();
            if copies > 1 && w.rng.percent(40) {
                let copy = w.rng.index(copies);
                w.remount(dev, tab, copy);
            } else {
                w.reload(dev, tab);
            }
        } else if roll < 93 {
            let dev = w.rng.index(w.devices.len());
            let online = !w.devices[dev].online;
            w.set_online(dev, online);
        } else if roll < 95 {
            let dev = w.rng.index(w.devices.len());
            let tab = w.rng.index(w.devices[dev].tabs.len());
            w.hide(dev, tab);
        } else if w.backend_up {
            if w.rng.percent(40) {
                w.crash_backend();
            }
        } else {
            w.backend_up = true;
        }
    }

    // Heal: everything online, a reliable backend; every message, event and timer runs.
    w.faults = Default::default();
    w.backend_up = true;
    for dev in 0..w.devices.len() {
        if !w.devices[dev].online {
            w.set_online(dev, true);
        }
    }
    let mut drain_steps = 0;
    let end = w.now + HEAL_MS;
    while w.now < end {
        let until = w.now + 1_000;
        drain_steps += w.run_until(until);
        let pending: usize = w.copies().iter().map(|&(d, t, c)| w.devices[d].tabs[t].copies[c].client.stats(w.local(d)).pending).sum();
        if pending == 0 {
            // Leaders poll every interval: give every device two more rounds to hear of the rest.
            let settle = w.now + 3 * SYNC_INTERVAL_MS;
            drain_steps += w.run_until(settle);
            break;
        }
    }

    let mut failures = std::mem::take(&mut w.figures.failures);
    // Compare where no value is about to expire: clocks corrected by the backend's offset may be a
    // second or so apart.
    let mut at = w.now;
    while w.log.iter().any(|l| matches!(l, Logged::Write(_, e, _) if e.expires_at().is_some_and(|x| x.abs_diff(at) < 5_000))) {
        at += 10_000;
    }
    let want = |device| expected(&w.log, at, device);
    let mut clients = 0;
    for (d, t, c) in w.copies() {
        clients += 1;
        let client = &w.devices[d].tabs[t].copies[c].client;
        let pending = client.stats(w.local(d)).pending;
        if pending > 0 {
            let batch = client.cache().sync_batch(100);
            let leader = client.status().state.is_some_and(|s| s.leader);
            let stored: Vec<Option<String>> = batch
                .changes
                .iter()
                .map(|(k, _)| w.devices[d].store.borrow().items.items().get(&format!("{}{k}", client_sim::world::PREFIX)).cloned())
                .collect();
            failures.push(format!(
                "client {} (device {d} tab {t}, leader {leader}) never drained its outbox: {pending} pending: clear {:?}, {:?}; stored {stored:?}",
                client.node(),
                batch.clear,
                batch.changes
            ));
        }
        if let Some(e) = diff(&format!("client {} (device {d} tab {t})", client.node()), &w.client_view(d, t, c, at), &want(Some(d))) {
            failures.push(e);
        }
    }
    for d in 0..w.devices.len() {
        let (view, pending) = w.reopened_view(d, at);
        if !pending.is_empty() {
            failures.push(format!("a tab opened on device {d}'s storage finds pending: {pending:?}"));
        }
        if let Some(e) = diff(&format!("a tab opened on device {d}'s storage"), &view, &want(Some(d))) {
            failures.push(e);
        }
    }
    let backend = (w.backend.visible(at), w.backend.epoch.as_ref().map(|(e, _)| e.clone()));
    if let Some(e) = diff("the backend", &backend, &want(None)) {
        failures.push(e);
    }
    let later_records = w.devices.iter().map(|d| d.store.borrow().later_records).sum();
    Outcome { ops: w.figures.ops, writes: w.figures.writes + w.figures.clears, clients, drain_steps, later_records, failures }
}

#[test]
fn whole_clients_converge_on_the_write_log() {
    let started = Instant::now();
    let seeds: Vec<u64> = match std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(seed) => vec![seed],
        None => {
            let n = std::env::var("SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_SEEDS);
            (1..=n).collect()
        }
    };
    let (mut ops, mut writes, mut clients, mut drains, mut later) = (0, 0, 0, 0, 0);
    let mut failed = Vec::new();
    for &seed in &seeds {
        let outcome = simulate(seed);
        ops += outcome.ops;
        writes += outcome.writes;
        clients += outcome.clients;
        drains += outcome.drain_steps;
        later += outcome.later_records;
        if !outcome.failures.is_empty() {
            eprintln!("seed {seed} failed (SIM_SEED={seed} reruns it):");
            for f in outcome.failures.iter().take(12) {
                eprintln!("  {f}");
            }
            failed.push(seed);
        }
    }
    eprintln!(
        "client simulation: {} seeds, {ops} ops, {writes} writes, {clients} clients, {drains} drain steps, {later} records stored by later versions, {:.1} s",
        seeds.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(failed.is_empty(), "seeds that failed: {failed:?}");
    assert!(later > 0, "no copy of a later version stored a record");
}

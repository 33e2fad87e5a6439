//! Many concurrent writers end in the state the merge rule predicts, and clients syncing by
//! cursor (during the storm, or once from 0) see exactly that state.
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mfe_cache_server::Config;
use mfe_shared_cache_core::wire::SyncResponse;
use mfe_shared_cache_core::{Entry, Replica, Stamp};
use serde_json::{json, Value};

use crate::common::{now_ms, Rng, TestServer};

const WRITERS: u64 = 16;
const WRITES: u64 = 200;
const KEYS: u64 = 20;

/// What a writer sent: key, stamp, value (None: a remove).
type Sent = (String, Stamp, Option<Value>);

async fn storm(s: Arc<TestServer>) {
    let t0 = now_ms() - 3_600_000;
    let done = Arc::new(AtomicBool::new(false));

    // A client syncing along by cursor, merging what it gets with the core's replica.
    let reader = {
        let (s, done) = (s.clone(), done.clone());
        tokio::spawn(async move {
            let mut replica = Replica::new("reader");
            let mut cursor = 0;
            let mut finished = false;
            loop {
                // One more sync after the writers are done picks up the last writes.
                let last_round = finished;
                let answer: SyncResponse = serde_json::from_value(s.sync(cursor, json!([])).await).unwrap();
                for change in answer.updates {
                    let (key, entry) = change.into_entry().unwrap();
                    replica.merge(&key, entry);
                }
                cursor = answer.timestamp;
                if last_round {
                    return replica;
                }
                finished = done.load(Ordering::SeqCst);
            }
        })
    };

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let s = s.clone();
        writers.push(tokio::spawn(async move {
            let mut rng = Rng::new(1000 + w);
            let node = format!("writer-{w}");
            let mut used = HashSet::new();
            let mut sent: Vec<Sent> = Vec::new();
            let mut i = 0;
            while i < WRITES {
                let ts = t0 + rng.below(100_000);
                if !used.insert(ts) {
                    continue; // stamps are unique per writer, so the expected winner is unambiguous
                }
                let key = format!("key-{}", rng.below(KEYS));
                let stamp = Stamp::new(ts, node.clone());
                match rng.below(10) {
                    0 | 1 => {
                        s.remove(&key, ts, &node).await;
                        sent.push((key, stamp, None));
                    }
                    2 | 3 => {
                        let value = json!({ "w": w, "i": i });
                        let change = json!({ "key": key, "value": value, "ttl": 0, "timestamp": ts, "deleted": false, "node": node });
                        s.sync(0, json!([change])).await;
                        sent.push((key, stamp, Some(value)));
                    }
                    _ => {
                        let value = json!(format!("{w}/{i}"));
                        s.set(&key, value.clone(), 0.0, ts, &node).await;
                        sent.push((key, stamp, Some(value)));
                    }
                }
                i += 1;
            }
            sent
        }));
    }

    // The merge rule's prediction: per key, the write with the highest (timestamp, node).
    let mut expected: BTreeMap<String, (Stamp, Option<Value>)> = BTreeMap::new();
    for writer in writers {
        for (key, stamp, value) in writer.await.unwrap() {
            if expected.get(&key).is_none_or(|(best, _)| *best < stamp) {
                expected.insert(key, (stamp, value));
            }
        }
    }
    done.store(true, Ordering::SeqCst);
    let reader = reader.await.unwrap();

    let full: SyncResponse = serde_json::from_value(s.sync(0, json!([])).await).unwrap();
    assert_eq!(full.updates.len(), expected.len(), "one update per key, none repeated");
    let mut seen = HashSet::new();
    for change in full.updates {
        assert!(seen.insert(change.key.clone()), "{} repeated", change.key);
        let (key, entry) = change.into_entry().unwrap();
        let (stamp, value) = &expected[&key];
        assert_eq!(&entry.stamp, stamp, "{key}");
        assert_eq!(parsed(&entry), *value, "{key}");
        let held = reader.entry(&key).unwrap_or_else(|| panic!("the syncing reader missed {key}"));
        assert_eq!((&held.stamp, parsed(held)), (stamp, value.clone()), "the syncing reader's {key}");
    }
    assert_eq!(reader.len(), expected.len());
}

fn parsed(entry: &Entry) -> Option<Value> {
    entry.value.as_deref().map(|text| serde_json::from_str(text).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_on_the_memory_store() {
    storm(Arc::new(TestServer::memory().await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_on_the_redb_store() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config { memory: false, data: dir.path().to_owned(), ..Config::for_tests() };
    storm(Arc::new(TestServer::start(config).await)).await;
}

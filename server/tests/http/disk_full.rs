//! A full disk under the embedded store: writes fail as `503 storage_error` (never as accepted),
//! `/healthz` says the store cannot write, and once space is back the store reopens its database
//! by itself, with every acknowledged write, without a restart. Once on a real tmpfs through the
//! real binary; once in process, on a redb backend whose writes fail on demand.
use std::collections::HashMap;
use std::io::{self, Write};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mfe_cache_server::store::RedbStore;
use mfe_cache_server::Config;
use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};
use serde_json::{json, Value};

use crate::binary;
use crate::common::{now_ms, TestServer};

/// How long the store may take to come back once the disk is (it retries about once a second).
const RECOVERY_DEADLINE: Duration = Duration::from_secs(20);

/// A tmpfs mounted on a temporary directory, unmounted when dropped (also when the test fails).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` bytes, or says why it cannot (not root, no mount in a container).
    fn mount(size: u64) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|err| err.to_string())?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|err| format!("cannot run mount: {err}"))?;
        if !output.status.success() {
            return Err(format!("mount -t tmpfs failed: {}", String::from_utf8_lossy(&output.stderr).trim()));
        }
        Ok(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let status = Command::new("umount").arg(self.dir.path()).status();
        if !status.is_ok_and(|s| s.success()) {
            // Something still holds a file in it: detach it now, the kernel frees it when released.
            let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
        }
    }
}

/// Tells why a test did not run, past the test harness's capture of `eprintln!`.
fn skip(test: &str, reason: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason} (needs root, or CAP_SYS_ADMIN, to mount a tmpfs)");
}

async fn post(client: &reqwest::Client, url: String, body: &Value) -> (u16, Value) {
    let response = client.post(url).json(body).send().await.expect("the server answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("answer is not JSON ({status}): {text:?}"));
    (status, value)
}

async fn healthz(client: &reqwest::Client, url: String) -> (u16, Value) {
    let response = client.get(url).send().await.expect("the server answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("healthz answers JSON"))
}

/// Every value of the default namespace, by key.
async fn everything(client: &reqwest::Client, url: &str) -> HashMap<String, Value> {
    let mut all = HashMap::new();
    let mut cursor = 0;
    loop {
        let (status, answer) = post(client, url.to_owned(), &json!({ "lastSync": cursor, "changes": [] })).await;
        assert_eq!(status, 200, "{answer}");
        for update in answer["updates"].as_array().unwrap() {
            all.insert(update["key"].as_str().unwrap().to_owned(), update["value"].clone());
        }
        cursor = answer["timestamp"].as_u64().unwrap();
        if answer["more"] != true {
            return all;
        }
    }
}

fn filler(path: &Path, bytes: usize) {
    std::fs::write(path, vec![0xA5u8; bytes]).expect("the filler file fits");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_tmpfs_fails_writes_and_healthz_until_space_is_freed_then_the_binary_recovers() {
    const TEST: &str = "a_full_tmpfs_fails_writes_and_healthz_until_space_is_freed_then_the_binary_recovers";
    let disk = match Tmpfs::mount(8 << 20) {
        Ok(disk) => disk,
        Err(reason) => return skip(TEST, &reason),
    };
    // Space to give back later: more than the health probe (1 MiB) and a few writes need.
    let spare: PathBuf = disk.path().join("spare");
    filler(&spare, 3 << 20);
    let data = disk.path().join("data");
    let server = binary::start(&["--data", data.to_str().unwrap()], &[]).listening();
    let client = reqwest::Client::new();
    let (status, health) = healthz(&client, server.url("/healthz")).await;
    assert_eq!((status, health["status"].as_str(), health["store"].as_str()), (200, Some("ok"), Some("redb")));

    // Fill the disk through the API until a write fails.
    let value = "v".repeat(64 << 10);
    let t = now_ms();
    let mut acknowledged = Vec::new();
    let failed = loop {
        let key = format!("k{}", acknowledged.len());
        let body = json!({ "key": key, "value": value, "ttl": 0, "timestamp": t, "node": "filler" });
        let (status, answer) = post(&client, server.url("/api/cache/set"), &body).await;
        if status != 200 {
            assert!((500..600).contains(&status), "a full disk is a server error, not {status}: {answer}");
            assert_eq!(answer["error"], "storage_error", "{answer}");
            break key;
        }
        assert_eq!(answer["accepted"], true, "{answer}");
        acknowledged.push(key);
        assert!(acknowledged.len() < 200, "8 MiB never filled up");
    };
    assert!(!acknowledged.is_empty(), "some writes fit before the disk was full");

    let (status, health) = healthz(&client, server.url("/healthz")).await;
    assert_eq!(status, 503, "healthz while the store cannot write: {health}");
    assert_eq!((health["status"].as_str(), health["store"].as_str()), (Some("unavailable"), Some("redb")), "{health}");
    let reason = health["reason"].as_str().unwrap_or_default();
    assert!(!reason.is_empty(), "{health}");
    eprintln!("healthz on a full disk: {health}");

    // Free space; the server comes back by itself: healthz first, then writes.
    std::fs::remove_file(&spare).unwrap();
    let deadline = Instant::now() + RECOVERY_DEADLINE;
    loop {
        let (status, health) = healthz(&client, server.url("/healthz")).await;
        if status == 200 {
            assert_eq!(health["status"], "ok");
            break;
        }
        assert_eq!(status, 503, "{health}");
        assert!(Instant::now() < deadline, "healthz did not recover once space was freed: {health}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let body = json!({ "key": failed, "value": "after", "ttl": 0, "timestamp": t + 1, "node": "n" });
    let (status, answer) = post(&client, server.url("/api/cache/set"), &body).await;
    assert_eq!((status, answer["accepted"].as_bool()), (200, Some(true)), "{answer}");

    let all = everything(&client, &server.url("/api/cache/sync")).await;
    for key in &acknowledged {
        assert_eq!(all.get(key).and_then(Value::as_str).map(str::len), Some(value.len()), "acknowledged {key}");
    }
    assert_eq!(all[&failed], "after");
    drop(server); // before the tmpfs is unmounted
}

/// A redb backend on a real file whose writes fail with `ENOSPC` while the disk is "full": a
/// disk that fills up and is freed again, on demand. Reads, locks and the rest pass through.
#[derive(Debug)]
struct FillableDisk {
    file: FileBackend,
    full: Arc<AtomicBool>,
}

impl FillableDisk {
    /// An opener for `RedbStore::open_with` (called again at each reopen), and the switch.
    fn opener(path: PathBuf) -> (mfe_cache_server::store::redb::Opener, Arc<AtomicBool>) {
        let full = Arc::new(AtomicBool::new(false));
        let switch = full.clone();
        let opener = Box::new(move || {
            let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)?;
            redb::Builder::new().create_with_backend(FillableDisk { file: FileBackend::new(file)?, full: full.clone() })
        });
        (opener, switch)
    }

    fn check_space(&self) -> io::Result<()> {
        if self.full.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(28)); // ENOSPC
        }
        Ok(())
    }
}

impl StorageBackend for FillableDisk {
    fn len(&self) -> io::Result<u64> {
        self.file.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.file.read(offset, out)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.check_space()?;
        self.file.write(offset, data)
    }

    fn close(&self) -> io::Result<()> {
        self.file.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.try_lock_range(start, end)
    }

    fn try_lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.query_lock_range(start, end)
    }
}

/// What concurrent writers saw: per key, whether its write was acknowledged.
#[derive(Default)]
struct Outcomes {
    acknowledged: Mutex<Vec<String>>,
    refused: Mutex<Vec<String>>,
    failures: AtomicU64,
    successes: AtomicU64,
}

impl Outcomes {
    /// Waits until `counter` passes `target` (the writers are running).
    async fn wait_for(counter: &AtomicU64, target: u64, what: &str) {
        let deadline = Instant::now() + RECOVERY_DEADLINE;
        while counter.load(Ordering::SeqCst) < target {
            assert!(Instant::now() < deadline, "no {what} within {RECOVERY_DEADLINE:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// The disk fills up under concurrent writers and readers, and is freed: every write is answered
/// `200 accepted` or `503 storage_error`, healthz says 503 with the reason meanwhile, the store
/// reopens itself once writes can succeed (no restart), and afterwards every acknowledged write
/// is there and no refused one is.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_disk_that_fills_up_fails_writes_as_503_and_the_store_reopens_itself_once_it_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.redb");
    let (opener, full) = FillableDisk::opener(path.clone());
    let store = RedbStore::open_with(path, opener).expect("the store opens");
    let s =
        Arc::new(TestServer::start_with_store(Config { memory: false, ..Config::for_tests() }, Arc::new(store)).await);
    let (status, health) = s.send(s.client.get(s.url("/healthz"))).await;
    assert_eq!((status, health), (200, json!({ "status": "ok", "store": "redb" })));

    let outcomes = Arc::new(Outcomes::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..4 {
        let (s, outcomes, stop) = (s.clone(), outcomes.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let t = now_ms();
            for i in 0.. {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let key = format!("w{w}-{i}");
                let body =
                    json!({ "key": key, "value": { "w": w, "i": i }, "ttl": 0, "timestamp": t + i, "node": "n" });
                let (status, answer) = s.post("/api/cache/set", &body).await;
                if status == 200 {
                    assert_eq!(answer["accepted"], true, "{answer}");
                    outcomes.acknowledged.lock().unwrap().push(key);
                    outcomes.successes.fetch_add(1, Ordering::SeqCst);
                } else {
                    assert_eq!((status, answer["error"].as_str()), (503, Some("storage_error")), "{answer}");
                    outcomes.refused.lock().unwrap().push(key);
                    outcomes.failures.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
    // Reads run beside them, so the database is reopened under reads in flight too.
    {
        let (s, stop) = (s.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let (status, answer) = s.post("/api/cache/sync", &json!({ "lastSync": 0, "changes": [] })).await;
                assert!(status == 200 || (status == 503 && answer["error"] == "storage_error"), "{status} {answer}");
            }
        }));
    }

    Outcomes::wait_for(&outcomes.successes, 50, "acknowledged writes").await;
    full.store(true, Ordering::SeqCst);
    let failures_at_fill = outcomes.failures.load(Ordering::SeqCst);
    Outcomes::wait_for(&outcomes.failures, failures_at_fill + 20, "failed writes on the full disk").await;
    let (status, health) = s.send(s.client.get(s.url("/healthz"))).await;
    assert_eq!(status, 503, "{health}");
    assert_eq!((health["status"].as_str(), health["store"].as_str()), (Some("unavailable"), Some("redb")), "{health}");
    assert_eq!(health["error"], "storage_error", "{health}");
    let reason = health["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("No space left on device"), "{health}");

    full.store(false, Ordering::SeqCst);
    let successes_at_free = outcomes.successes.load(Ordering::SeqCst);
    Outcomes::wait_for(&outcomes.successes, successes_at_free + 50, "acknowledged writes once the disk was freed")
        .await;
    let (status, health) = s.send(s.client.get(s.url("/healthz"))).await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")), "{health}");
    stop.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.unwrap();
    }

    let all = everything(&s.client, &s.url("/api/cache/sync")).await;
    let acknowledged = outcomes.acknowledged.lock().unwrap().clone();
    let refused = outcomes.refused.lock().unwrap().clone();
    eprintln!("{} writes acknowledged, {} refused", acknowledged.len(), refused.len());
    for key in &acknowledged {
        assert!(all.contains_key(key), "acknowledged {key} is gone");
    }
    for key in &refused {
        assert!(!all.contains_key(key), "{key} was answered 503 but applied");
    }
}

//! The load generator of `make bench`'s stream section: opens many event streams to one server,
//! then writes and times each write's arrival on every stream.
//!
//! `stream_load HOST:PORT STREAMS WRITES`; loopback only. Streams connect from 127.b.c.1,
//! 127.b.c.2, … (b and c picked per run; a few thousand each, under the ephemeral port range).
//! Raises its soft open-file limit to the hard one first. Protocol on stdio, for the bench:
//! prints `open N SECONDS failed K` once every stream has said `ready`, waits for a line on
//! stdin, makes the writes (one at a time, each awaited on every stream, a short pause between),
//! prints one JSON line of results, waits for a line on stdin, and exits (closing the streams).
use std::io::BufRead;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Notify;

/// Connections per source address: binding before connecting searches the ephemeral port range,
/// which gets slow as it fills up.
const PER_SOURCE: usize = 2_000;
/// Connections opened at once (the listener's backlog is finite).
const OPENING: usize = 500;
/// How long one write may take to reach every stream before it counts as lost where missing.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// What every stream shares.
struct Shared {
    /// When the current write was sent, in µs since `epoch`.
    sent_us: AtomicU64,
    epoch: Instant,
    /// Streams that have the current write.
    arrived: AtomicU32,
    all_arrived: Notify,
    /// The write streams wait for (its key is `fan-<n>`).
    current: AtomicU32,
    repeated: AtomicU32,
    out_of_order: AtomicU32,
    /// Every latency, µs, for every stream and write.
    samples: std::sync::Mutex<Vec<u32>>,
    ready: AtomicU32,
    ready_all: Notify,
    failed: AtomicU32,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(target), Some(streams), Some(writes)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!("usage: stream_load HOST:PORT STREAMS WRITES");
        std::process::exit(2);
    };
    let target: SocketAddr = target.parse().expect("HOST:PORT");
    assert!(target.ip().is_loopback(), "loopback only");
    let streams: u32 = streams.parse().expect("STREAMS");
    let writes: u32 = writes.parse().expect("WRITES");
    let descriptors = raise_open_file_limit();
    if descriptors < u64::from(streams) + 64 {
        eprintln!("stream_load: the open-file limit ({descriptors}) is below {streams} streams + 64: some will fail");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(run(target, streams, writes));
}

async fn run(target: SocketAddr, streams: u32, writes: u32) {
    let shared = Arc::new(Shared {
        sent_us: AtomicU64::new(0),
        epoch: Instant::now(),
        arrived: AtomicU32::new(0),
        all_arrived: Notify::new(),
        current: AtomicU32::new(u32::MAX),
        repeated: AtomicU32::new(0),
        out_of_order: AtomicU32::new(0),
        samples: std::sync::Mutex::new(Vec::with_capacity(streams as usize * writes as usize)),
        ready: AtomicU32::new(0),
        ready_all: Notify::new(),
        failed: AtomicU32::new(0),
    });
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(streams as usize);
    let gate = Arc::new(tokio::sync::Semaphore::new(OPENING));
    // Source addresses of their own for each run: the ports of an earlier run's connections may
    // still be in TIME_WAIT on 127.0.0.x.
    let run = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos()) as usize;
    let (b, c) = (1 + run % 250, (run / 250) % 200);
    for i in 0..streams as usize {
        let source = Ipv4Addr::new(127, b as u8, c as u8, 1 + (i / PER_SOURCE) as u8);
        let permit = gate.clone().acquire_owned().await.expect("gate");
        tasks.push(tokio::spawn(follow(target, source, shared.clone(), permit)));
    }
    while shared.ready.load(Ordering::SeqCst) + shared.failed.load(Ordering::SeqCst) < streams {
        let notified = shared.ready_all.notified();
        if shared.ready.load(Ordering::SeqCst) + shared.failed.load(Ordering::SeqCst) >= streams {
            break;
        }
        let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
    }
    println!("open {} {:.2} failed {}", shared.ready.load(Ordering::SeqCst), t0.elapsed().as_secs_f64(), shared.failed.load(Ordering::SeqCst));
    wait_for_line().await;

    let mut writer = Writer::connect(target).await;
    let mut lost = 0u64;
    let mut post_us = Vec::new();
    let mut all_in = Vec::new();
    let cpu0 = cpu_seconds();
    for n in 0..writes {
        shared.arrived.store(0, Ordering::SeqCst);
        shared.current.store(n, Ordering::SeqCst);
        let notified = shared.all_arrived.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let sent = shared.epoch.elapsed().as_micros() as u64;
        shared.sent_us.store(sent, Ordering::SeqCst);
        writer.set(&format!("fan-{n}")).await;
        post_us.push(shared.epoch.elapsed().as_micros() as u64 - sent);
        let live = shared.ready.load(Ordering::SeqCst);
        if shared.arrived.load(Ordering::SeqCst) < live && tokio::time::timeout(WRITE_TIMEOUT, notified).await.is_err() {
            lost += u64::from(live.saturating_sub(shared.arrived.load(Ordering::SeqCst)));
        }
        all_in.push((shared.epoch.elapsed().as_micros() as u64 - sent) / 1000);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let generator_cpu = cpu_seconds() - cpu0;
    let mut samples = std::mem::take(&mut *shared.samples.lock().expect("samples"));
    samples.sort_unstable();
    post_us.sort_unstable();
    let pct = |xs: &[u32], p: f64| xs.get(((xs.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0) as f64 / 1000.0;
    let pct64 = |xs: &[u64], p: f64| xs.get(((xs.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0) as f64 / 1000.0;
    println!(
        "{{\"streams\":{},\"writes\":{writes},\"samples\":{},\"p50\":{},\"p99\":{},\"max\":{},\"lost\":{lost},\"repeated\":{},\"outOfOrder\":{},\"postP50\":{},\"generatorCpu\":{generator_cpu:.3},\"allInMs\":{all_in:?}}}",
        shared.ready.load(Ordering::SeqCst),
        samples.len(),
        pct(&samples, 0.5),
        pct(&samples, 0.99),
        samples.last().copied().unwrap_or(0) as f64 / 1000.0,
        shared.repeated.load(Ordering::SeqCst),
        shared.out_of_order.load(Ordering::SeqCst),
        pct64(&post_us, 0.5),
    );
    wait_for_line().await;
    for task in tasks {
        task.abort();
    }
}

async fn wait_for_line() {
    let _ = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
    })
    .await;
}

/// Raises the soft open-file limit to the hard one (every stream is a descriptor; the soft
/// default is often 1024) and returns the soft limit in force.
#[cfg(unix)]
fn raise_open_file_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        if let Err(err) = setrlimit(Resource::Nofile, Rlimit { current: limit.maximum, maximum: limit.maximum }) {
            eprintln!("stream_load: cannot raise the open-file limit to its hard limit: {err}");
        }
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

#[cfg(not(unix))]
fn raise_open_file_limit() -> u64 {
    u64::MAX
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

async fn connect(target: SocketAddr, source: Ipv4Addr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::V4(SocketAddrV4::new(source, 0)))?;
    socket.set_nodelay(true)?;
    socket.connect(target).await
}

async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        stream.writable().await?;
        match stream.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One stream: reads events, and times the arrival of each write's `change`.
async fn follow(target: SocketAddr, source: Ipv4Addr, shared: Arc<Shared>, permit: tokio::sync::OwnedSemaphorePermit) {
    let stream = match connect(target, source).await {
        Ok(stream) => stream,
        Err(_) => {
            shared.failed.fetch_add(1, Ordering::SeqCst);
            shared.ready_all.notify_one();
            return;
        }
    };
    let request = format!("GET /api/cache/events HTTP/1.1\r\nHost: {target}\r\nAccept: text/event-stream\r\n\r\n");
    if write_all(&stream, request.as_bytes()).await.is_err() {
        shared.failed.fetch_add(1, Ordering::SeqCst);
        return;
    }
    let mut permit = Some(permit);
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let mut last_id = 0u64;
    let mut seen_current = u32::MAX;
    loop {
        if stream.readable().await.is_err() {
            break;
        }
        let n = match stream.try_read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => break,
        };
        let at = shared.epoch.elapsed().as_micros() as u64;
        if permit.is_some() && buffer.is_empty() && !chunk[..n].starts_with(b"HTTP/1.1 200") {
            // Refused (503 past --max-streams): counted, not followed.
            shared.failed.fetch_add(1, Ordering::SeqCst);
            shared.ready_all.notify_one();
            return;
        }
        buffer.extend_from_slice(&chunk[..n]);
        // Whole events only: up to the last blank line.
        let Some(end) = buffer.windows(2).rposition(|w| w == b"\n\n") else { continue };
        let text = String::from_utf8_lossy(&buffer[..end + 2]).into_owned();
        buffer.drain(..end + 2);
        for line in text.lines() {
            if line.starts_with("event: ready") && permit.take().is_some() {
                shared.ready.fetch_add(1, Ordering::SeqCst);
                shared.ready_all.notify_one();
            } else if let Some(id) = line.strip_prefix("id: ") {
                let id: u64 = id.trim().parse().unwrap_or(0);
                if id <= last_id {
                    shared.out_of_order.fetch_add(1, Ordering::SeqCst);
                }
                last_id = id;
            } else if let Some(rest) = line.split("\"key\":\"fan-").nth(1) {
                let n: u32 = rest.split('"').next().and_then(|x| x.parse().ok()).unwrap_or(u32::MAX);
                if n == seen_current {
                    shared.repeated.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
                seen_current = n;
                if n == shared.current.load(Ordering::SeqCst) {
                    let latency = at.saturating_sub(shared.sent_us.load(Ordering::SeqCst));
                    shared.samples.lock().expect("samples").push(latency.min(u64::from(u32::MAX)) as u32);
                    if shared.arrived.fetch_add(1, Ordering::SeqCst) + 1 >= shared.ready.load(Ordering::SeqCst) {
                        shared.all_arrived.notify_one();
                    }
                }
            }
        }
    }
    drop(permit);
}

/// A keep-alive connection that makes the writes.
struct Writer {
    stream: TcpStream,
    target: SocketAddr,
}

impl Writer {
    async fn connect(target: SocketAddr) -> Self {
        let stream = connect(target, Ipv4Addr::LOCALHOST).await.expect("writer connects");
        Writer { stream, target }
    }

    async fn set(&mut self, key: &str) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let body = format!("{{\"key\":\"{key}\",\"value\":1,\"ttl\":0,\"timestamp\":{now},\"node\":\"load\"}}");
        let request = format!(
            "POST /api/cache/set HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.target,
            body.len()
        );
        write_all(&self.stream, request.as_bytes()).await.expect("write request");
        // The answer is small JSON with a Content-Length: read until it is complete.
        let mut answer = Vec::new();
        let mut chunk = [0u8; 2048];
        loop {
            self.stream.readable().await.expect("readable");
            match self.stream.try_read(&mut chunk) {
                Ok(0) => panic!("the server closed the writer's connection"),
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => panic!("writer: {e}"),
            }
            let text = String::from_utf8_lossy(&answer);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                assert!(head.starts_with("HTTP/1.1 200"), "the write failed: {head}");
                let length = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0)))
                    .unwrap_or(0);
                if body.len() >= length {
                    return;
                }
            }
        }
    }
}

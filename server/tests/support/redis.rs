//! Real `redis-server` processes for the tests: on free 127.0.0.1 ports, in temporary
//! directories, with AOF fsynced on every write. One standalone server and one 3-node Redis
//! Cluster are shared per test binary ([`standalone`], [`cluster`]); each test gets its own key
//! prefix ([`unique_prefix`]) so tests running in parallel never see each other's data. A test
//! that stops Redis starts its own ([`RedisServer::start`]).
//!
//! No process outlives the test binary, even the shared ones that live in statics (which are
//! never dropped): each redis-server runs under `sh`, which waits on a pipe from this process.
//! A line on it (from [`RedisServer::kill`] or `Drop`) makes `sh` kill Redis; end-of-file, which
//! comes when this process exits however it exits, makes `sh` kill Redis and delete its
//! directory.
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a server may take to answer PING after starting (or loading its AOF).
const START_TIMEOUT: Duration = Duration::from_secs(10);

const SUPERVISOR: &str = r#"
cleanup=$1; shift
redis-server "$@" &
p=$!
echo "$p"
if read _; then
  kill -9 "$p"; wait "$p"
else
  kill -9 "$p"; wait "$p"
  [ -n "$cleanup" ] && rm -rf "$cleanup"
fi
"#;

/// Panics with the fix when redis-server or redis-cli is missing: these tests must not pass
/// silently on a machine that cannot run them.
pub fn require_redis() {
    for tool in ["redis-server", "redis-cli"] {
        let found = Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
        if !found.is_ok_and(|status| status.success()) {
            panic!("{tool} is not installed: run `scripts/ensure-tools.sh redis` (Debian's redis-server package)");
        }
    }
}

/// A prefix of Redis keys no other test uses.
pub fn unique_prefix(name: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("test-{name}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A port nothing listens on right now (the caller retries if it is taken before it binds).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One redis-server process with AOF on (`appendfsync always`).
pub struct RedisServer {
    pub port: u16,
    dir: PathBuf,
    /// More `redis-server` arguments (`--maxmemory-policy allkeys-lru`).
    extra: Vec<String>,
    /// The cluster bus port, for a cluster node.
    bus: Option<u16>,
    /// Delete `dir` when this process exits (for servers that live in statics).
    cleanup: bool,
    running: Option<Supervised>,
}

struct Supervised {
    sh: Child,
    stdin: ChildStdin,
    _stdout: BufReader<ChildStdout>,
}

impl RedisServer {
    /// Starts a server in `dir` (its data and log) on a free port.
    pub fn start(dir: &Path) -> Self {
        Self::start_with(dir, false, false, &[])
    }

    /// Starts a server in `dir` with more `redis-server` arguments.
    pub fn start_with_args(dir: &Path, extra: &[&str]) -> Self {
        Self::start_with(dir, false, false, extra)
    }

    fn start_with(dir: &Path, cluster_node: bool, cleanup: bool, extra: &[&str]) -> Self {
        require_redis();
        let mut last_error = String::new();
        for _ in 0..5 {
            let mut server = RedisServer {
                port: free_port(),
                dir: dir.to_owned(),
                extra: extra.iter().map(|arg| (*arg).to_owned()).collect(),
                bus: cluster_node.then(free_port),
                cleanup,
                running: None,
            };
            match server.launch() {
                Ok(()) => return server,
                // Most likely the port was taken between choosing and binding it: another one.
                Err(err) => last_error = err,
            }
        }
        panic!("redis-server did not start: {last_error}");
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn launch(&mut self) -> Result<(), String> {
        let log = self.dir.join("redis.log");
        let port = self.port.to_string();
        let mut args: Vec<String> = vec![
            "--port".into(),
            port,
            "--bind".into(),
            "127.0.0.1".into(),
            "--dir".into(),
            self.dir.display().to_string(),
            "--logfile".into(),
            log.display().to_string(),
            "--appendonly".into(),
            "yes".into(),
            "--appendfsync".into(),
            "always".into(),
            "--save".into(),
            String::new(),
        ];
        if let Some(bus) = self.bus {
            for arg in
                ["--cluster-enabled", "yes", "--cluster-node-timeout", "2000", "--cluster-port", &bus.to_string()]
            {
                args.push(arg.into());
            }
        }
        args.extend(self.extra.iter().cloned());
        let cleanup = if self.cleanup { self.dir.display().to_string() } else { String::new() };
        let mut sh = Command::new("sh")
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("sh")
            .arg(cleanup)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run sh: {e}"))?;
        let stdin = sh.stdin.take().unwrap();
        let mut stdout = BufReader::new(sh.stdout.take().unwrap());
        let mut pid = String::new();
        stdout.read_line(&mut pid).map_err(|e| e.to_string())?;
        let pid = pid.trim().to_owned();
        self.running = Some(Supervised { sh, stdin, _stdout: stdout });
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if matches!(command(self.port, "PING").as_deref(), Ok("+PONG")) {
                return Ok(());
            }
            if exited(&pid) || Instant::now() > deadline {
                self.kill();
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                return Err(format!("port {}: {}", self.port, tail.join(" | ")));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILLs the server (as a crash would) and waits until it is gone.
    pub fn kill(&mut self) {
        if let Some(mut running) = self.running.take() {
            let _ = running.stdin.write_all(b"stop\n");
            let _ = running.stdin.flush();
            let _ = running.sh.wait();
        }
    }

    /// Starts the server again on the same port and directory (so it loads its AOF).
    pub fn restart(&mut self) {
        assert!(self.running.is_none(), "kill it first");
        if let Err(err) = self.launch() {
            panic!("redis-server did not restart: {err}");
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether the process `pid` has exited (it stays a zombie until `sh` reaps it).
fn exited(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit(") ").next().is_some_and(|rest| rest.starts_with('Z')),
        Err(_) => true,
    }
}

/// Sends an inline command and reads one reply: a status, error or integer line as is, a bulk
/// string's text. Enough to poll a server; the store itself is tested through the real client.
pub fn command(port: u16, command: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(format!("{command}\r\n").as_bytes())?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let line = line.trim_end().to_owned();
    match line.strip_prefix('$').map(str::parse::<i64>) {
        Some(Ok(len)) if len >= 0 => {
            let mut body = vec![0; len as usize + 2];
            reader.read_exact(&mut body)?;
            body.truncate(len as usize);
            Ok(String::from_utf8_lossy(&body).into_owned())
        }
        _ => Ok(line),
    }
}

/// A temporary directory that this process's exit does not delete: the supervising `sh`
/// deletes it then.
fn kept_dir() -> PathBuf {
    tempfile::Builder::new().prefix("mfe-redis-").tempdir().unwrap().keep()
}

/// The standalone server shared by this test binary.
pub fn standalone() -> &'static RedisServer {
    static SERVER: OnceLock<RedisServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        require_redis();
        RedisServer::start_with(&kept_dir(), false, true, &[])
    })
}

/// A Redis Cluster of three primaries (no replicas).
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`.
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        format!("redis+cluster://{}", nodes.join(","))
    }

    /// Starts a cluster of its own (for a test that changes a node's configuration).
    pub fn start() -> Self {
        require_redis();
        let nodes: Vec<RedisServer> = (0..3).map(|_| RedisServer::start_with(&kept_dir(), true, true, &[])).collect();
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for node in &nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        let output = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli runs");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        // Every node must know every slot's owner before clients can rely on any of them.
        let deadline = Instant::now() + START_TIMEOUT;
        for node in &nodes {
            loop {
                let info = command(node.port, "CLUSTER INFO").unwrap_or_default();
                if info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384") {
                    break;
                }
                assert!(Instant::now() < deadline, "the cluster did not come up: {info}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        RedisCluster { nodes }
    }
}

impl Drop for RedisCluster {
    /// Only a test's own cluster is dropped (the shared one lives in a static): its nodes'
    /// directories go with it.
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
            let _ = std::fs::remove_dir_all(&node.dir);
        }
    }
}

/// The cluster shared by this test binary.
pub fn cluster() -> &'static RedisCluster {
    static CLUSTER: OnceLock<RedisCluster> = OnceLock::new();
    CLUSTER.get_or_init(RedisCluster::start)
}

//! The server binary as a child process: its `listening on` line, or its exit, and its log
//! (stderr) kept for assertions. Killed when dropped.
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the binary may take to listen, or to give up, after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running server binary.
pub struct Binary {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    log: Arc<Mutex<String>>,
}

/// What became of a started binary.
pub enum Started {
    /// It printed `listening on …`.
    Listening(Binary),
    /// It exited before listening.
    Exited { status: ExitStatus, log: String },
}

impl Started {
    pub fn listening(self) -> Binary {
        match self {
            Started::Listening(binary) => binary,
            Started::Exited { status, log } => panic!("the server exited ({status}) instead of listening:\n{log}"),
        }
    }

    pub fn exited(self) -> (ExitStatus, String) {
        match self {
            Started::Exited { status, log } => (status, log),
            Started::Listening(binary) => panic!("the server started at {} but should not have", binary.base),
        }
    }
}

/// Starts `mfe-cache-server ARGS` with `--listen 127.0.0.1:0` and `ENV`, and waits until it
/// listens or exits.
pub fn start(args: &[&str], env: &[(&str, &str)]) -> Started {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mfe-cache-server"));
    command.args(["--listen", "127.0.0.1:0"]).args(args).envs(env.iter().copied());
    start_command(command)
}

/// The same under `ulimit -n DESCRIPTORS` (a process may have that many files open at once).
pub fn start_with_descriptors(descriptors: u32, args: &[&str]) -> Started {
    let mut command = Command::new("sh");
    command
        .args(["-c", &format!("ulimit -n {descriptors} && exec \"$0\" \"$@\"")])
        .arg(env!("CARGO_BIN_EXE_mfe-cache-server"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args);
    start_command(command)
}

fn start_command(mut command: Command) -> Started {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let log = Arc::new(Mutex::new(String::new()));
    let log_reader = read_log(child.stderr.take().unwrap(), log.clone());
    let (first_line, lines) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = first_line.send(line);
        }
    });
    match lines.recv_timeout(START_TIMEOUT) {
        Ok(line) => {
            let base = line
                .trim()
                .strip_prefix("listening on ")
                .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
                .to_owned();
            Started::Listening(Binary { child, base, log })
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let status = child.wait().unwrap();
            let _ = log_reader.join();
            let log = log.lock().unwrap().clone();
            Started::Exited { status, log }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            let _ = child.kill();
            panic!("the server neither listened nor exited within {START_TIMEOUT:?}:\n{}", log.lock().unwrap());
        }
    }
}

fn read_log(stderr: impl Read + Send + 'static, log: Arc<Mutex<String>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut log = log.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    })
}

impl Binary {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// The log so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log has a line containing every one of `needles`; returns that line.
    pub fn wait_for_log(&self, needles: &[&str]) -> String {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let log = self.log();
            if let Some(line) = log.lines().find(|line| needles.iter().all(|needle| line.contains(needle))) {
                return line.to_owned();
            }
            assert!(Instant::now() < deadline, "no log line with {needles:?} within {START_TIMEOUT:?}:\n{log}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! Memory pressure (`--max-memory-mb`): while the process's resident memory is over the limit,
//! new event streams are refused (`503` with `Retry-After`) and, every second, a share of the
//! open ones is told to reconnect (`event: reconnect`), oldest first, so that their clients move
//! to another instance instead of this one running out of memory. A stream is never dropped
//! without that word. Shedding stops once memory is back under 90 % of the limit.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::Channels;

/// How often memory is looked at.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// The share of each namespace's streams told to reconnect per interval while over the limit.
pub const SHED_SHARE: f64 = 0.05;

/// The process's resident memory in bytes, when the platform tells.
pub type Gauge = Arc<dyn Fn() -> Option<u64> + Send + Sync>;

/// Whether new streams are refused for memory.
#[derive(Debug, Default)]
pub struct Pressure {
    over: AtomicBool,
}

impl Pressure {
    /// Whether memory is over the limit now.
    pub fn is_over(&self) -> bool {
        self.over.load(Ordering::Relaxed)
    }
}

/// Resident memory from `/proc/self/status` (Linux; `VmRSS` is in kB whatever the page size);
/// `None` elsewhere.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|line| line.strip_prefix("VmRSS:"))?;
    let kb: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kb * 1024)
}

/// Watches memory against `limit` bytes until the task is aborted.
pub fn spawn(channels: Arc<Channels>, pressure: Arc<Pressure>, limit: u64, gauge: Gauge) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(resident) = gauge() else {
                tracing::warn!("--max-memory-mb: this platform does not tell the resident memory; not enforced");
                return;
            };
            let was_over = pressure.is_over();
            let over = resident > limit || (was_over && resident * 10 > limit * 9);
            pressure.over.store(over, Ordering::Relaxed);
            if over {
                let shed = channels.shed(SHED_SHARE);
                if !was_over || shed > 0 {
                    tracing::warn!(resident_mb = resident >> 20, limit_mb = limit >> 20, shed, "memory over --max-memory-mb: refusing new event streams, asking open ones to reconnect elsewhere");
                }
            } else if was_over {
                tracing::info!(resident_mb = resident >> 20, "memory back under --max-memory-mb: accepting event streams");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    #[cfg(target_os = "linux")]
    #[test]
    fn resident_memory_is_read_from_proc() {
        let bytes = super::resident_bytes().expect("VmRSS on Linux");
        // A running test binary holds at least a megabyte and far less than a terabyte.
        assert!((1 << 20..1 << 40).contains(&bytes), "{bytes}");
    }
}

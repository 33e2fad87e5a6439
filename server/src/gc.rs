//! Periodic garbage collection of tombstones and expired entries.
use std::sync::Arc;
use std::time::Duration;

use mfe_shared_cache_core::Clock;

use crate::store::Store;

/// How long a tombstone or an expired entry is kept after it died. A client that has not synced
/// for longer may miss a remove (it keeps the value until its own TTL or a later write), and its
/// writes older than the newest forgotten entry are refused (see [`crate::namespace`]).
pub const RETENTION_MS: u64 = 24 * 60 * 60 * 1000;

/// How often garbage is collected.
pub const INTERVAL: Duration = Duration::from_secs(60 * 60);

/// Runs collection now and then every [`INTERVAL`], until the task is aborted.
pub fn spawn(store: Arc<dyn Store>, clock: Arc<dyn Clock + Send + Sync>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match store.gc(clock.now_ms(), RETENTION_MS).await {
                Ok(report) if report.removed > 0 => {
                    tracing::info!(namespaces = report.namespaces, removed = report.removed, "garbage collected");
                }
                Ok(_) => {}
                Err(err) => tracing::error!(error = %err, "garbage collection failed"),
            }
        }
    })
}

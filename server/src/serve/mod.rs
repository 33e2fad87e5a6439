//! The accept loop, instead of `axum::serve`, which has no timeouts and no limits: with it, idle
//! and slow-loris connections stay open forever, and once they have taken every descriptor
//! `accept` fails (EMFILE) and every new client hangs.
//!
//! Here each connection is served under a watchdog ([`watchdog`]: header, body and idle
//! timeouts); at most `max_connections` are served at once, and a connection past that is
//! answered `503` and closed at once ([`overload`]); the default limit is derived from the
//! descriptor limit ([`descriptors`]) so that the server runs out of connection slots before it
//! runs out of descriptors. If `accept` still fails for lack of resources, the loop waits a
//! little and tries again, and the connections it holds go on being served meanwhile.
pub mod connection;
pub mod descriptors;
mod event_stream;
pub mod overload;
mod sniff;
mod throttle;
pub mod watchdog;

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use self::connection::Shared;
use self::overload::Overload;
use self::throttle::Throttle;
pub use self::watchdog::Timeouts;

/// First wait after `accept` failed for lack of resources; doubled up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// How connections are limited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections served at once; more are refused with a 503.
    pub max_connections: usize,
    /// How long each stage of a connection may take.
    pub timeouts: Timeouts,
}

/// Serves `app` on `listener` until `shutdown` resolves; then stops accepting, asks every
/// connection to finish (HTTP/1 ones close after their request in progress, HTTP/2 ones send
/// GOAWAY) and returns once they all have.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    // The shutdown wait acquires every permit at once, which takes a u32.
    let max = limits.max_connections.clamp(1, u32::MAX as usize);
    let permits = Arc::new(Semaphore::new(max));
    let (stop, stopped) = watch::channel(false);
    let shared = Arc::new(Shared::new(app, limits.timeouts));
    let overload = Overload::new(limits.timeouts.header);
    let failures = Throttle::default();
    let mut backoff = MIN_BACKOFF;
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                backoff = MIN_BACKOFF;
                match permits.clone().try_acquire_owned() {
                    Ok(permit) => {
                        tokio::spawn(connection::serve(stream, shared.clone(), permit, stopped.clone()));
                    }
                    Err(_) => overload.refuse(stream, max),
                }
            }
            // The client gave up between its connect and our accept: nothing to wait for.
            Err(err) if is_connection_error(&err) => {}
            // Out of descriptors (EMFILE, ENFILE) or memory: retrying at once would spin. The
            // connections already open are served meanwhile, and closing frees descriptors.
            Err(err) => {
                if let Some(failed) = failures.tick() {
                    tracing::warn!(error = %err, failed, pause_ms = backoff.as_millis(), "accept failed; retrying after a pause");
                }
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    // New clients are refused by the system from here on, instead of waiting in the backlog.
    drop(listener);
    stop.send_replace(true);
    // Every permit back means every connection has ended.
    let _ = permits.acquire_many(u32::try_from(max).unwrap_or(u32::MAX)).await;
    Ok(())
}

fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

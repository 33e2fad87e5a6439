//! `GET /api/cache/events`: every change the namespace accepts, pushed as Server-Sent Events.
//!
//! Why SSE and not a WebSocket: the stream only flows from server to client (writes keep going
//! through `/sync`, which acknowledges them), SSE is plain HTTP (same auth header, CORS, proxies,
//! HTTP/2 multiplexing), and its `id:` / `Last-Event-ID` pair is exactly the resume-from-cursor
//! this protocol needs.
//!
//! Events, in the order the namespace accepted them, each `id:` its sequence number:
//! - `change`: `data` is a seed `Change` (`{ key, value, ttl, deleted, timestamp, node }`); a key
//!   written several times while a stream was catching up is sent once, at its latest write
//!   (delivery by receipt, as `/sync` does);
//! - `clear`: `data` is the clear epoch `{ timestamp, node }`;
//! - `cursor`: `data` is `{ cursor }`, when the cursor moved past the last event without a
//!   change to send (garbage collection), so a resume starts from there;
//! - `ready` (no `id`), once, when the stream has caught up: `{ cursor, heartbeat }`.
//!
//! A stream starts after `Last-Event-ID`, else after `?cursor=N`, else at the current cursor
//! (only what happens from now on). A cursor above the namespace's did not come from this data
//! (a wiped store): the stream starts from 0, like `/sync`. Every `heartbeat` the stream sends a
//! comment and re-reads the store, so a lost wake-up (another instance's, through Redis) delays
//! a change by at most that long and never drops it. If the store fails, the stream sends
//! `event: error` and ends; the client reconnects from its cursor.
use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::header::{HeaderName, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use mfe_shared_cache_core::{wire_text, MAX_SAFE_INTEGER};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;

use crate::auth::Namespace;
use crate::errors::ApiError;
use crate::feed::Feed;
use crate::store::{Delta, DeltaQuery, Store};

/// Rows per store read while catching up (a stream far behind reads in pages).
const PAGE_ROWS: usize = 1000;
const PAGE_BYTES: usize = 1 << 20;
/// Events buffered per stream before the reader waits for a slow client.
const BUFFER: usize = 256;
/// `Retry-After` when `--max-streams` are open: slots free up as streams end, which is seldom
/// quick; the client's own backoff (1 s to 30 s) applies anyway.
const STREAMS_RETRY_AFTER_S: &str = "5";

/// `?cursor=N`
#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    cursor: Option<String>,
}

/// `GET /api/cache/events`
pub async fn events(
    State(app): State<crate::server::AppState>,
    Extension(Namespace(ns)): Extension<Namespace>,
    headers: HeaderMap,
    Query(query): Query<EventsQuery>,
) -> Result<Response, ApiError> {
    let last_event_id = headers.get("last-event-id").map(|v| v.to_str().unwrap_or("\u{0}"));
    let asked = last_event_id.or(query.cursor.as_deref()).map(parse_cursor).transpose()?;
    // Each stream is a task that reads the store on every change of its namespace: their number
    // is what bounds that work. Refused before touching the store.
    let Ok(slot) = app.streams.clone().try_acquire_owned() else {
        let mut response =
            ApiError::overloaded("too many event streams are open; retry later, or poll /sync meanwhile").into_response();
        response.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static(STREAMS_RETRY_AFTER_S));
        return Ok(response);
    };
    let start = match asked {
        Some(cursor) => cursor,
        None => app.store.cursor(&ns).await?,
    };
    let heartbeat = app.heartbeat;
    let (tx, rx) = mpsc::channel(BUFFER);
    let store = app.store.clone();
    let feed = app.feed.clone();
    tokio::spawn(async move {
        follow(store, feed, ns, start, heartbeat, tx).await;
        drop(slot);
    });
    let stream = ReceiverStream::new(rx).map(Ok::<_, Infallible>);
    let mut response = Sse::new(stream).keep_alive(KeepAlive::new().interval(heartbeat)).into_response();
    // Proxies that buffer responses (nginx) would hold events back.
    response.headers_mut().insert(HeaderName::from_static("x-accel-buffering"), HeaderValue::from_static("no"));
    Ok(response)
}

fn parse_cursor(text: &str) -> Result<u64, ApiError> {
    match text.trim().parse::<u64>() {
        Ok(n) if n <= MAX_SAFE_INTEGER => Ok(n),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_cursor",
            format!("the cursor {text:?} is not a whole number up to 2^53 - 1"),
        )),
    }
}

/// Sends the namespace's changes past `cursor` to `tx` until the client goes away or the server
/// shuts down.
async fn follow(
    store: Arc<dyn Store>,
    feed: Arc<Feed>,
    ns: Arc<str>,
    mut cursor: u64,
    heartbeat: Duration,
    tx: mpsc::Sender<Event>,
) {
    // Subscribed before the first read, so a write landing between the read and the wait still
    // wakes this stream.
    let mut wake = feed.subscribe(&ns);
    let closed = feed.closed();
    tokio::pin!(closed);
    let mut ready = false;
    loop {
        wake.mark_unchanged();
        loop {
            let query =
                DeltaQuery { last_sync: cursor, exclude: HashSet::new(), max_rows: PAGE_ROWS, max_bytes: PAGE_BYTES };
            let delta = match store.delta(&ns, query).await {
                Ok(delta) => delta,
                Err(err) => {
                    tracing::warn!(error = %err, "event stream: store read failed; ending the stream");
                    let _ = tx.send(Event::default().event("error").data(STORE_ERROR)).await;
                    return;
                }
            };
            for event in events_of(&delta) {
                if tx.send(event).await.is_err() {
                    return;
                }
            }
            cursor = delta.cursor;
            if !delta.more {
                break;
            }
        }
        if !ready {
            ready = true;
            let data = format!("{{\"cursor\":{cursor},\"heartbeat\":{}}}", heartbeat.as_millis());
            if tx.send(Event::default().event("ready").data(data)).await.is_err() {
                return;
            }
        }
        tokio::select! {
            changed = wake.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(heartbeat) => {}
            () = &mut closed => return,
            () = tx.closed() => return,
        }
    }
}

const STORE_ERROR: &str =
    r#"{"error":"storage_error","message":"the cache store failed; reconnect from your cursor","retryable":true}"#;

/// The events of one delta read, in sequence order: its rows, its clear at the clear's own
/// sequence number, and a `cursor` event when the cursor ends past all of them.
fn events_of(delta: &Delta) -> Vec<Event> {
    let mut events = Vec::with_capacity(delta.rows.len() + 2);
    let mut last = delta.since;
    // A paged read reports a clear accepted after its last row too; it is sent with the page
    // that reaches it, so ids never go backwards.
    let mut clear = delta.epoch.as_ref().filter(|_| delta.epoch_seq <= delta.cursor);
    for row in &delta.rows {
        if let Some(epoch) = clear.filter(|_| delta.epoch_seq < row.stored.seq) {
            events.push(clear_event(epoch, delta.epoch_seq));
            clear = None;
        }
        let mut data = String::new();
        wire_text::write_change(&mut data, &row.key, &row.stored.entry);
        events.push(Event::default().id(row.stored.seq.to_string()).event("change").data(data));
        last = row.stored.seq;
    }
    if let Some(epoch) = clear {
        events.push(clear_event(epoch, delta.epoch_seq));
        last = last.max(delta.epoch_seq);
    }
    if delta.cursor > last {
        events.push(
            Event::default()
                .id(delta.cursor.to_string())
                .event("cursor")
                .data(format!("{{\"cursor\":{}}}", delta.cursor)),
        );
    }
    events
}

fn clear_event(epoch: &mfe_shared_cache_core::Stamp, seq: u64) -> Event {
    let mut data = String::new();
    wire_text::write_clear(&mut data, epoch);
    Event::default().id(seq.to_string()).event("clear").data(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_parse_strictly() {
        assert_eq!(parse_cursor("42").unwrap(), 42);
        assert_eq!(parse_cursor(" 0 ").unwrap(), 0);
        for bad in ["", "-1", "1.5", "abc", "9007199254740992"] {
            assert_eq!(parse_cursor(bad).unwrap_err().status, StatusCode::BAD_REQUEST, "{bad:?}");
        }
    }
}

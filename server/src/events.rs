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
//! - `reconnect` (no `id`), last, when this instance is going away (shutting down): the client
//!   reconnects at once (spread over `spreadMs`), from its cursor, to whichever instance answers.
//!
//! A stream starts after `Last-Event-ID`, else after `?cursor=N`, else at the current cursor
//! (only what happens from now on). A cursor above the namespace's did not come from this data
//! (a wiped store): the stream starts from 0, like `/sync`. Every `heartbeat` the stream sends a
//! comment and its namespace's store is re-read, so a lost wake-up (another instance's, through
//! Redis) delays a change by at most that long and never drops it. If the store fails, the
//! stream sends `event: error` and ends; the client reconnects from its cursor.
//!
//! The streams of one namespace share one store read per change ([`crate::fanout`]).
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header::{HeaderName, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use mfe_shared_cache_core::MAX_SAFE_INTEGER;
use serde::Deserialize;

use crate::auth::Namespace;
use crate::errors::ApiError;
use crate::fanout::{EventBody, Handoff};
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
    // Refused before touching the store: past the limit, a client polls /sync meanwhile.
    if app.pressure.is_over() {
        let mut response =
            ApiError::overloaded("this instance is short of memory for event streams; retry later, or poll /sync meanwhile")
                .into_response();
        response.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static(STREAMS_RETRY_AFTER_S));
        return Ok(response);
    }
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
    let channel = app.channels.follow(&ns);
    let heartbeat_ms = app.channels.heartbeat().as_millis();
    let body = EventBody::new(channel, app.channels.store().clone(), start, heartbeat_ms, slot);
    let (handoff, body) = Handoff::new(body);
    let mut response = Response::new(Body::new(body));
    response.extensions_mut().insert(handoff);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Proxies that buffer responses (nginx) would hold events back.
    headers.insert(HeaderName::from_static("x-accel-buffering"), HeaderValue::from_static("no"));
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

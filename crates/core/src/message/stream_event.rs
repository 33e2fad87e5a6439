//! What one event of the `/events` stream means (server/src/events.rs writes them): `change`
//! (a `Change`, as in `/sync` answers), `clear` (`{"timestamp","node"}`), `cursor` (only its
//! id matters), `ready` (`{"cursor","heartbeat"}`, once caught up), `error` (the server
//! ends the stream) and `reconnect` (`{"spreadMs"}`: the instance is going away; the stream ends).
//! Each `id:` is the cursor after the event.
use super::change::{read_change, read_epoch};
use super::{protocol, SseEvent};
use crate::json_read::Reader;
use crate::{CacheError, Entry, Stamp, MAX_SAFE_INTEGER};

/// One stream event, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamItem {
    /// A write, checked like an update of a `/sync` answer, and the event's cursor.
    Change(Result<(String, Entry), CacheError>, Option<u64>),
    /// A clear epoch, and the event's cursor.
    Clear(Result<Stamp, CacheError>, Option<u64>),
    /// The cursor moved past writes the stream has nothing to send for (garbage collection).
    Cursor(u64),
    /// The stream caught up; the server sends a heartbeat comment every `heartbeat_ms`.
    Ready {
        /// The heartbeat period, when the event gave a usable one (a positive integer).
        heartbeat_ms: Option<u64>,
    },
    /// The server gave up the stream (its store failed), saying why; reconnect from the cursor.
    Error(String),
    /// The instance is going away (shutting down): reconnect now, from the cursor, within
    /// `spread_ms` (so that its clients do not all arrive at the next instance at once).
    Reconnect {
        /// Over how long to spread the reconnections (at most [`MAX_SPREAD_MS`]).
        spread_ms: u64,
    },
    /// Anything else, including a `cursor` event without a usable id: nothing to do.
    Other,
}

/// Reads one event. Ids that are not decimal cursors in `0..=2^53-1` read as none.
pub fn decode_stream_event(event: &SseEvent) -> StreamItem {
    let id = event.id.as_deref().and_then(cursor_id);
    match event.event.as_str() {
        "change" => StreamItem::Change(whole(&event.data, read_change), id),
        "clear" => StreamItem::Clear(whole(&event.data, read_epoch), id),
        "cursor" => id.map_or(StreamItem::Other, StreamItem::Cursor),
        "ready" => StreamItem::Ready { heartbeat_ms: heartbeat(&event.data) },
        "error" => StreamItem::Error(event.data.clone()),
        "reconnect" => StreamItem::Reconnect { spread_ms: spread(&event.data) },
        _ => StreamItem::Other,
    }
}

/// Reads `text`, which must be one value, with `read`.
fn whole<T>(text: &str, read: impl FnOnce(&mut Reader<'_>) -> Result<T, CacheError>) -> Result<T, CacheError> {
    let mut r = Reader::new(text);
    let value = read(&mut r)?;
    r.finish().map_err(|e| protocol(format!("an event of the stream is not JSON: {e}")))?;
    Ok(value)
}

fn heartbeat(data: &str) -> Option<u64> {
    whole_number_field(data, "heartbeat").filter(|ms| *ms > 0)
}

/// The whole number `data` (an object) has under `field`.
fn whole_number_field(data: &str, field: &str) -> Option<u64> {
    let mut found = None;
    let mut r = Reader::new(data);
    r.object(|name, r| {
        if name == field {
            found = r.isolated(Reader::u64_integral)?.ok();
        } else {
            r.skip()?;
        }
        Ok(())
    })
    .ok()?;
    r.finish().ok()?;
    found
}

/// The spread a `reconnect` event may ask for: a longer one is read as this.
pub const MAX_SPREAD_MS: u64 = 60_000;
/// The spread of a `reconnect` event that gives none.
const DEFAULT_SPREAD_MS: u64 = 1_000;

fn spread(data: &str) -> u64 {
    whole_number_field(data, "spreadMs").map_or(DEFAULT_SPREAD_MS, |ms| ms.min(MAX_SPREAD_MS))
}

fn cursor_id(id: &str) -> Option<u64> {
    if id.is_empty() {
        return None;
    }
    id.chars().try_fold(0u64, |n, c| {
        n.checked_mul(10)?.checked_add(u64::from(c.to_digit(10)?)).filter(|n| *n <= MAX_SAFE_INTEGER)
    })
}

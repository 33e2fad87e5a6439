//! What one event of the `/events` stream means (server/src/events.rs writes them): `change`
//! (a `Change`, as in `/sync` answers), `clear` (`{"timestamp","node"}`), `cursor` (only its
//! id matters), `ready` (`{"cursor","heartbeat"}`, once caught up) and `error` (the server
//! ends the stream). Each `id:` is the cursor after the event.
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
    let mut ms = None;
    let mut r = Reader::new(data);
    r.object(|name, r| {
        match name {
            "heartbeat" => ms = r.isolated(Reader::u64_integral)?.ok(),
            _ => r.skip()?,
        }
        Ok(())
    })
    .ok()?;
    r.finish().ok()?;
    ms.filter(|ms| *ms > 0)
}

fn cursor_id(id: &str) -> Option<u64> {
    if id.is_empty() {
        return None;
    }
    id.chars().try_fold(0u64, |n, c| {
        n.checked_mul(10)?.checked_add(u64::from(c.to_digit(10)?)).filter(|n| *n <= MAX_SAFE_INTEGER)
    })
}

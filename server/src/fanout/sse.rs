//! Server-Sent Events framing, done once per event and shared: an event encoded here is one
//! `Bytes` that every stream following the namespace sends as it is.
use bytes::Bytes;
use mfe_shared_cache_core::{wire_text, Stamp};

use crate::store::Delta;

/// One encoded event and its `id:` (the cursor after it).
#[derive(Clone, Debug)]
pub struct Encoded {
    /// The event's id: a stream that sent it resumes after it.
    pub id: u64,
    /// `id: …\nevent: …\ndata: …\n\n`.
    pub bytes: Bytes,
}

/// Sent every heartbeat: a comment, so an idle stream still shows it is alive.
pub const HEARTBEAT: Bytes = Bytes::from_static(b":\n\n");

/// Sent when the store failed: the client reconnects from its cursor.
pub const STORE_ERROR: Bytes = Bytes::from_static(
    b"event: error\ndata: {\"error\":\"storage_error\",\"message\":\"the cache store failed; reconnect from your cursor\",\"retryable\":true}\n\n",
);

/// Sent when the server is going away (shutting down, or shedding streams): reconnect now, from
/// your cursor, to whichever instance answers; `retry` spreads the reconnections of many clients.
pub const RECONNECT: Bytes = Bytes::from_static(b"event: reconnect\ndata: {\"reason\":\"going away\",\"spreadMs\":1000}\n\n");

/// `event: ready`, once a stream has caught up.
pub fn ready(cursor: u64, heartbeat_ms: u128) -> Bytes {
    Bytes::from(format!("event: ready\ndata: {{\"cursor\":{cursor},\"heartbeat\":{heartbeat_ms}}}\n\n"))
}

fn event(id: u64, name: &str, data: &str) -> Encoded {
    let mut text = String::with_capacity(data.len() + name.len() + 32);
    text.push_str("id: ");
    text.push_str(&id.to_string());
    text.push_str("\nevent: ");
    text.push_str(name);
    text.push('\n');
    // JSON has line breaks only as whitespace between tokens (inside strings they are escaped),
    // and a line break would end an SSE field: each line goes in its own `data:` field, which the
    // reader joins with `\n`.
    for line in data.split(['\n', '\r']) {
        text.push_str("data: ");
        text.push_str(line);
        text.push('\n');
    }
    text.push('\n');
    Encoded { id, bytes: Bytes::from(text) }
}

fn clear(epoch: &Stamp, seq: u64) -> Encoded {
    let mut data = String::new();
    wire_text::write_clear(&mut data, epoch);
    event(seq, "clear", &data)
}

/// The events of one delta read, in sequence order: its rows, its clear at the clear's own
/// sequence number, and a `cursor` event when the cursor ends past all of them (garbage
/// collection moved it), so that a stream resumes from there. Ids strictly increase.
pub fn events_of(delta: &Delta, out: &mut Vec<Encoded>) {
    let mut last = delta.since;
    // A paged read reports a clear accepted after its last row too; it is sent with the page
    // that reaches it, so ids never go backwards.
    let mut pending_clear = delta.epoch.as_ref().filter(|_| delta.epoch_seq <= delta.cursor);
    let mut data = String::new();
    for row in &delta.rows {
        if let Some(epoch) = pending_clear.filter(|_| delta.epoch_seq < row.stored.seq) {
            out.push(clear(epoch, delta.epoch_seq));
            pending_clear = None;
        }
        data.clear();
        wire_text::write_change(&mut data, &row.key, &row.stored.entry);
        out.push(event(row.stored.seq, "change", &data));
        last = row.stored.seq;
    }
    if let Some(epoch) = pending_clear {
        out.push(clear(epoch, delta.epoch_seq));
        last = last.max(delta.epoch_seq);
    }
    if delta.cursor > last {
        out.push(event(delta.cursor, "cursor", &format!("{{\"cursor\":{}}}", delta.cursor)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_in_data_become_data_fields() {
        let e = event(7, "change", "{\n\"a\":\r\n1}");
        assert_eq!(&e.bytes[..], b"id: 7\nevent: change\ndata: {\ndata: \"a\":\ndata: \ndata: 1}\n\n");
    }
}

//! Server-Sent Events framing for the `/events` stream, which the client reads with `fetch`
//! (unlike `EventSource`, fetch sends the `headers` option, e.g. `Authorization`) and hands over
//! chunk by chunk as the network delivers it.
use super::protocol;
use crate::CacheError;

/// The largest line, and the largest event, accepted in bytes. An event carries one change, and
/// a change is at most a request body's size (the reference server's default limit is 1 MiB):
/// a stream past this is broken or hostile, and reading on would hold all of it in memory.
pub const MAX_EVENT_BYTES: usize = 4 << 20;

/// A buffer larger than this is released once its event is dispatched rather than kept for the
/// rest of the stream.
const KEEP_CAPACITY: usize = 64 << 10;

/// One event of the stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// Its `event:` type (`message` when it has none).
    pub event: String,
    /// Its `data:` lines, joined with `\n`.
    pub data: String,
    /// Its `id:`, if it had one.
    pub id: Option<String>,
}

/// What one push of bytes completed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SseRead {
    /// The events it completed, in order.
    pub events: Vec<SseEvent>,
    /// How many lines it completed: only whole lines (events or heartbeat comments) are a sign
    /// of life for the client's watchdog, not bytes that never make a line.
    pub lines: usize,
}

/// Splits a byte stream into events: lines end with `\n` (a trailing `\r` is dropped); `data:`,
/// `event:` and `id:` fields are kept until a blank line dispatches them (an event with no data
/// is not dispatched); comments (`:`) and other fields are dropped at once. Bytes may be split
/// anywhere across pushes, inside a UTF-8 sequence too.
///
/// It holds at most [`MAX_EVENT_BYTES`]: the kept lines of the current event and the line being
/// read, in one buffer that never grows past the limit. A line or an event past it, or a line
/// that is not UTF-8, is a protocol error, after which the reader holds nothing and refuses
/// further bytes: the stream is to be closed (and reopened from the cursor).
#[derive(Debug, Default)]
pub struct SseReader {
    /// The current event's kept lines (each ending in `\n`), then the line being read.
    buf: Vec<u8>,
    /// Where the line being read starts in `buf`.
    line_start: usize,
    failed: bool,
}

impl SseReader {
    /// A reader at the start of a stream.
    pub fn new() -> Self {
        SseReader::default()
    }

    /// Reads the next bytes of the stream.
    pub fn push(&mut self, bytes: &[u8]) -> Result<SseRead, CacheError> {
        if self.failed {
            return Err(protocol("the event stream was given up already"));
        }
        let mut read = SseRead::default();
        let mut rest = bytes;
        loop {
            let (line, after) = match rest.iter().position(|&b| b == b'\n') {
                Some(end) => rest.split_at(end + 1),
                None => (rest, &[][..]),
            };
            self.append(line)?;
            if !line.ends_with(b"\n") {
                return Ok(read);
            }
            read.lines += 1;
            self.end_line(&mut read.events)?;
            rest = after;
        }
    }

    /// The bytes the reader holds (its buffer's capacity): never more than [`MAX_EVENT_BYTES`].
    pub fn buffered(&self) -> usize {
        self.buf.capacity()
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), CacheError> {
        let need = self.buf.len() + bytes.len();
        if need > MAX_EVENT_BYTES {
            let line = self.buf.len().saturating_sub(self.line_start) + bytes.len();
            let what = if line > MAX_EVENT_BYTES { "a line" } else { "an event" };
            return Err(self.fail(format!("{what} of the event stream is longer than {MAX_EVENT_BYTES} bytes")));
        }
        if need > self.buf.capacity() {
            // Grown as Vec grows, but never past the limit.
            let target = (self.buf.capacity() * 2).max(need).min(MAX_EVENT_BYTES);
            self.buf.reserve_exact(target - self.buf.len());
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// The line at `line_start` (with its `\n`) is complete: keep it, drop it or dispatch.
    fn end_line(&mut self, events: &mut Vec<SseEvent>) -> Result<(), CacheError> {
        let line = self.buf.get(self.line_start..).unwrap_or_default();
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let (len, keep) = match std::str::from_utf8(line) {
            Ok(text) => (text.len(), matches!(text.split(':').next(), Some("data" | "event" | "id"))),
            Err(_) => return Err(self.fail("a line of the event stream is not UTF-8".into())),
        };
        if len == 0 {
            self.dispatch(events);
        } else if keep {
            self.buf.truncate(self.line_start + len);
            self.buf.push(b'\n');
            self.line_start = self.buf.len();
        } else {
            self.buf.truncate(self.line_start);
        }
        Ok(())
    }

    /// A blank line: the kept lines make an event, if one of them was data.
    fn dispatch(&mut self, events: &mut Vec<SseEvent>) {
        let mut event = SseEvent::default();
        let mut data: Option<String> = None;
        // Every kept line was checked as UTF-8 when it ended, so this cannot fail.
        let kept = std::str::from_utf8(self.buf.get(..self.line_start).unwrap_or_default()).unwrap_or_default();
        for line in kept.split_terminator('\n') {
            let (name, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match (name, &mut data) {
                ("data", Some(data)) => {
                    data.push('\n');
                    data.push_str(value);
                }
                ("data", None) => data = Some(value.to_owned()),
                ("event", _) => event.event = value.to_owned(),
                _ => event.id = Some(value.to_owned()),
            }
        }
        if let Some(data) = data {
            event.data = data;
            if event.event.is_empty() {
                event.event = "message".into();
            }
            events.push(event);
        }
        if self.buf.capacity() > KEEP_CAPACITY {
            self.buf = Vec::new();
        } else {
            self.buf.clear();
        }
        self.line_start = 0;
    }

    fn fail(&mut self, message: String) -> CacheError {
        self.failed = true;
        self.buf = Vec::new();
        self.line_start = 0;
        protocol(message)
    }
}

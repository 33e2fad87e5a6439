//! The messages the client exchanges, one encoding per kind, decoded and checked by the core
//! itself with [`crate::json_read`] so that the wasm carries no JSON library:
//!
//! - **news** ([`encode_news`], [`decode_news`]): what one tab, or one copy of the package on the
//!   page, tells the others about its writes. Its own format, versioned by `"v"`
//!   ([`NEWS_VERSION`]): a receiver of another version ignores it as a whole.
//! - **the `/sync` answer** ([`encode_sync_answer`], [`decode_sync_answer`]) and **the event stream** ([`SseReader`],
//!   [`decode_stream_event`]): the backend protocol, whose seed fields are fixed and whose
//!   extensions are optional; unknown fields are ignored, so both sides can grow.
//! - **error bodies** ([`decode_error_body`]) of the reference server.
//!
//! The `/sync` request body is written by [`crate::sync_body`] ([`crate::wire_text`]).
//!
//! Every decoder checks what it returns by the rules the rest of the core applies (keys, stamps,
//! TTLs, values), and where a message has parts (writes, updates) a bad part is an error of its
//! own that does not cost the others. Errors are [`CacheError::Protocol`].
mod change;
mod error_body;
mod news;
mod sse;
mod stream_event;
mod sync_answer;

pub use error_body::{decode_error_body, ErrorBody};
pub use news::{decode_news, encode_news, News, NewsWrite, NEWS_VERSION};
pub use sse::{SseEvent, SseRead, SseReader, MAX_EVENT_BYTES};
pub use stream_event::{decode_stream_event, StreamItem};
pub use sync_answer::{decode_sync_answer, encode_sync_answer, SyncAnswer};

use crate::CacheError;

fn protocol(message: impl Into<String>) -> CacheError {
    CacheError::Protocol { message: message.into() }
}

/// A key as an error message names it: quoted, and cut to 64 characters (keys may be 1 KiB).
fn quoted(key: &str) -> String {
    crate::json::Quoted(&key.chars().take(64).collect::<String>()).to_string()
}

/// Why, for a message that says where: a protocol error's own message without its kind's prefix.
fn reason(error: CacheError) -> String {
    match error {
        CacheError::Protocol { message } => message,
        other => other.to_string(),
    }
}

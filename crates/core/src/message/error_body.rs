//! The reference server's error answers: `{"error":"<code>","message":"…","index":N?,"key":"…"?}`
//! (server/src/errors.rs), `index` and `key` naming the change of a `/sync` batch that is the
//! problem, so that the client can set it aside and send the others.
use std::borrow::Cow;

use crate::json_read::Reader;

/// An error answer, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorBody {
    /// The stable machine-readable code.
    pub code: String,
    /// What went wrong, for people (empty when the body has none).
    pub message: String,
    /// The position of the offending change in the request's `changes`: an integer below 2^31
    /// (a batch is far smaller; anything else names no change).
    pub index: Option<usize>,
    /// Its key.
    pub key: Option<String>,
}

/// Reads an error body; `None` when `text` is not one (an HTML page from a proxy, another
/// backend's own shape): the HTTP status alone then says what happened. Fields of the wrong
/// type read as absent, except `error`, which makes the body.
pub fn decode_error_body(text: &str) -> Option<ErrorBody> {
    let (mut code, mut message, mut index, mut key) = (None, None, None, None);
    let mut r = Reader::new(text);
    r.object(|name, r| {
        match name {
            "error" => code = r.isolated(Reader::string)?.ok().map(Cow::into_owned),
            "message" => message = r.isolated(Reader::string)?.ok().map(Cow::into_owned),
            "index" => {
                index = r
                    .isolated(Reader::u64_integral)?
                    .ok()
                    .filter(|i| *i < 1 << 31)
                    .and_then(|i| usize::try_from(i).ok())
            }
            "key" => key = r.isolated(Reader::string)?.ok().map(Cow::into_owned),
            _ => r.skip()?,
        }
        Ok(())
    })
    .ok()?;
    r.finish().ok()?;
    Some(ErrorBody { code: code?, message: message.unwrap_or_default(), index, key })
}

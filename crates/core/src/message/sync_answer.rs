//! The `/sync` answer: the seed's `{"updates":[Change…],"timestamp":N}` and the extensions
//! `cursor`, `clear`, `more`, `rejected` and `now` (README, "The protocol and its extensions").
use super::change::{read_change, read_epoch};
use super::protocol;
use crate::json_read::{JsonError, Reader};
use crate::{json, wire_text, CacheError, Entry, Stamp};

/// A `/sync` answer, checked. Only what makes the whole answer unusable is an error of the
/// answer; a bad update or clear is an error of its own, so the client reports it and applies
/// the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncAnswer {
    /// The backend's cursor, to send back as the next `lastSync` (`cursor`, else `timestamp`).
    pub cursor: u64,
    /// Every update in order, each checked on its own.
    pub updates: Vec<Result<(String, Entry), CacheError>>,
    /// A clear epoch accepted after `lastSync`.
    pub clear: Option<Result<Stamp, CacheError>>,
    /// The answer is one page: ask again at once from the new cursor.
    pub more: bool,
    /// Writes of the request the backend did not store although no newer write beat them:
    /// `(key, reason)`.
    pub rejected: Vec<(String, String)>,
    /// The backend's clock when it answered (ms since the Unix epoch).
    pub now: Option<u64>,
}

/// Writes a `/sync` answer: the updates after the request's `lastSync` (each a seed `Change`),
/// the cursor as both `timestamp` (seed clients read it) and `cursor`, a clear, `more` for a
/// page, the refused writes as `(key, reason)`, and the backend's clock. The reference server
/// answers with it; the client only decodes ([`decode_sync_answer`]). Entries are already
/// checked JSON text, so they are concatenated, never re-parsed.
pub fn encode_sync_answer<'a>(
    updates: impl IntoIterator<Item = (&'a str, &'a Entry)>,
    cursor: u64,
    clear: Option<&Stamp>,
    more: bool,
    rejected: impl IntoIterator<Item = (&'a str, &'a str)>,
    now_ms: u64,
) -> String {
    let mut out = String::from("{\"updates\":[");
    for (i, (key, entry)) in updates.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        wire_text::write_change(&mut out, key, entry);
    }
    out.push_str("],\"timestamp\":");
    out.push_str(&cursor.to_string());
    out.push_str(",\"cursor\":");
    out.push_str(&cursor.to_string());
    if let Some(epoch) = clear {
        out.push_str(",\"clear\":");
        wire_text::write_clear(&mut out, epoch);
    }
    if more {
        out.push_str(",\"more\":true");
    }
    let mut rejected = rejected.into_iter().peekable();
    if rejected.peek().is_some() {
        out.push_str(",\"rejected\":[");
        for (i, (key, reason)) in rejected.enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"key\":");
            json::write_string(&mut out, key);
            out.push_str(",\"reason\":");
            json::write_string(&mut out, reason);
            out.push('}');
        }
        out.push(']');
    }
    out.push_str(",\"now\":");
    out.push_str(&now_ms.to_string());
    out.push('}');
    out
}

/// Decodes a `/sync` answer. The answer is an error only when it is not JSON, not an object,
/// has no `updates` array or no cursor (`cursor`, else `timestamp`: an integer in
/// `0..=2^53-1`). Unknown fields are ignored, and so are extensions of the wrong type, which a
/// seed-only client would not read either: `more` is only `true`, `now` only an integer.
pub fn decode_sync_answer(text: &str) -> Result<SyncAnswer, CacheError> {
    let mut updates = None;
    let (mut timestamp, mut cursor, mut clear, mut more, mut rejected, mut now) =
        (None, None, None, false, Vec::new(), None);
    let mut r = Reader::new(text);
    r.object(|name, r| {
        match name {
            "updates" => {
                let mut list = Vec::new();
                r.array(|r| {
                    list.push(r.isolated(read_change)?);
                    Ok(())
                })?;
                updates = Some(list);
            }
            // `null` reads as absent, as JavaScript's `cursor ?? timestamp` does.
            "timestamp" => timestamp = r.optional(|r| r.isolated(Reader::u64_integral))?,
            "cursor" => cursor = r.optional(|r| r.isolated(Reader::u64_integral))?,
            "clear" => clear = r.optional(|r| r.isolated(read_epoch))?,
            "more" => more = r.isolated(Reader::bool)? == Ok(true),
            "rejected" => rejected = r.isolated(read_rejected)?.unwrap_or_default(),
            "now" => now = r.isolated(Reader::u64_integral)?.ok(),
            _ => r.skip()?,
        }
        Ok(())
    })
    .and_then(|()| r.finish())
    .map_err(|e| protocol(format!("the /sync answer is not a sync answer: {e}")))?;
    let updates = updates.ok_or_else(|| protocol("the /sync answer has no updates"))?;
    let cursor = match cursor.or(timestamp) {
        Some(Ok(cursor)) => cursor,
        Some(Err(e)) => return Err(protocol(format!("the /sync answer's cursor is unusable: {e}"))),
        None => return Err(protocol("the /sync answer has no timestamp")),
    };
    Ok(SyncAnswer { cursor, updates, clear, more, rejected, now })
}

/// `[{"key","reason"}…]`: entries without a readable key are left out (they name no write);
/// a reason that is not a string reads as "refused".
fn read_rejected(r: &mut Reader<'_>) -> Result<Vec<(String, String)>, JsonError> {
    let mut out = Vec::new();
    r.array(|r| {
        let entry = r.isolated(|r| {
            let (mut key, mut reason) = (None, None);
            r.object(|name, r| {
                match name {
                    "key" => key = Some(r.string()?.into_owned()),
                    "reason" => reason = r.isolated(Reader::string)?.ok().map(String::from),
                    _ => r.skip()?,
                }
                Ok(())
            })?;
            key.map(|key| (key, reason.unwrap_or_else(|| "refused".into()))).ok_or(r.error("no key"))
        })?;
        out.extend(entry.ok());
        Ok(())
    })?;
    Ok(out)
}

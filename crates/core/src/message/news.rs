//! News: what a tab, or a copy of the package on the page, tells the others after a task's
//! writes. One encoding for both ways (BroadcastChannel and the page hub):
//!
//! `{"v":2,"page":"<sender page id>","clear":{"t":<ms>,"n":"<node>","u":1}?,"w":{"<key>":<record>,…}?,"clock":<ms>?}`
//!
//! Each write is the key's storage record ([`crate::encode_record_pending`]), embedded verbatim,
//! so a receiver decodes exactly what hydration decodes, pending mark included; `"u":1` marks a
//! clear the backend has not acknowledged; `clock` is the sender's backend clock offset. Version
//! 1 was a JS array; `v` lets a receiver tell a sender of another version from a broken one.
use super::{protocol, quoted, reason};
use crate::json_read::{JsonError, Reader};
use crate::{
    check_record_stamps, check_remote_stamp, decode_record_pending, json, validate_key, CacheError, DecodedRecord, Stamp, TabWrite,
};

/// The version of the news format this core writes and reads.
pub const NEWS_VERSION: u64 = 2;

/// One write of a news message: the key, its entry and whether the backend has not acknowledged
/// it yet, or why this write cannot be applied (the message's other writes still can).
pub type NewsWrite = Result<TabWrite, CacheError>;

/// A news message, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct News {
    /// The sending page's id (a page ignores its own news: its instances share the state).
    pub page: String,
    /// A clear, and whether the backend has not acknowledged it yet.
    pub clear: Option<(Stamp, bool)>,
    /// The writes, in the message's order; writes of another cache (a longer prefix) are left out.
    pub writes: Vec<NewsWrite>,
    /// The sender's backend clock offset (ms).
    pub clock: Option<i64>,
}

/// Writes a news message. `writes` are keys and their records as
/// [`crate::encode_record_pending`] wrote them (they are embedded as they are).
pub fn encode_news<'w>(
    page: &str,
    clear: Option<(&Stamp, bool)>,
    writes: impl IntoIterator<Item = (&'w str, &'w str)>,
    clock: Option<i64>,
) -> String {
    let mut out = String::from("{\"v\":");
    json::write_u64(&mut out, NEWS_VERSION);
    out.push_str(",\"page\":");
    json::write_string(&mut out, page);
    if let Some((epoch, unsynced)) = clear {
        out.push_str(",\"clear\":{\"t\":");
        json::write_u64(&mut out, epoch.ts);
        out.push_str(",\"n\":");
        json::write_string(&mut out, &epoch.node);
        out.push_str(if unsynced { ",\"u\":1}" } else { "}" });
    }
    let mut writes = writes.into_iter().peekable();
    if writes.peek().is_some() {
        out.push_str(",\"w\":{");
        for (i, (key, record)) in writes.enumerate() {
            if i > 0 {
                out.push(',');
            }
            json::write_string(&mut out, key);
            out.push(':');
            out.push_str(record);
        }
        out.push('}');
    }
    if let Some(clock) = clock {
        out.push_str(",\"clock\":");
        json::write_i64(&mut out, clock);
    }
    out.push('}');
    out
}

/// Decodes a news message for the cache whose records carry `tag` ([`crate::prefix_tag`]).
/// The whole message is an error when it is not JSON, not an object, of another version (or
/// none), or its page, clear or clock is malformed; a write with a bad key or a corrupt record
/// is an error of its own.
pub fn decode_news(text: &str, tag: &str) -> Result<News, CacheError> {
    let (mut versioned, mut page, mut clear, mut writes, mut clock) = (false, None, None, Vec::new(), None);
    let mut r = Reader::new(text);
    r.object(|name, r| {
        match name {
            "v" => {
                // Checked at once: another version's other fields may not read as these.
                if r.u64_integral() != Ok(NEWS_VERSION) {
                    return Err(r.error("not a version 2 message"));
                }
                versioned = true;
            }
            "page" => page = Some(r.string()?.into_owned()),
            "clear" => clear = Some(read_clear(r)?),
            "w" => r.members(|key, r| {
                let record = r.isolated(|r| r.spanned(|r| r.object(|_, r| r.skip())))?;
                writes.extend(write(key.map_err(|e| e.reason), record.map(|(text, ())| text), tag));
                Ok(())
            })?,
            "clock" => clock = Some(r.i64_integral()?),
            _ => r.skip()?,
        }
        Ok(())
    })
    .and_then(|()| r.finish())
    .map_err(|e| protocol(format!("ignored a tab message: {e}")))?;
    if !versioned {
        return Err(protocol("ignored a tab message: it has no version"));
    }
    let page = page.ok_or_else(|| protocol("ignored a tab message: it has no page"))?;
    if let Some((epoch, _)) = &clear {
        check_remote_stamp(epoch)
            .map_err(|e| protocol(format!("ignored a tab message: its clear is unusable: {}", reason(e))))?;
    }
    Ok(News { page, clear, writes, clock })
}

/// `{"t","n","u"?}`: every field checked, `u` only ever 1.
fn read_clear(r: &mut Reader<'_>) -> Result<(Stamp, bool), JsonError> {
    let (mut ts, mut node, mut unsynced) = (None, None, false);
    r.object(|name, r| {
        match name {
            "t" => ts = Some(r.u64_integral()?),
            "n" => node = Some(r.string()?.into_owned()),
            "u" => {
                if r.u64_integral()? != 1 {
                    return Err(r.error("a clear's \"u\" is not 1"));
                }
                unsynced = true;
            }
            _ => r.skip()?,
        }
        Ok(())
    })?;
    match (ts, node) {
        (Some(ts), Some(node)) => Ok((Stamp::new(ts, node), unsynced)),
        _ => Err(r.error("a clear without its \"t\" and \"n\"")),
    }
}

/// One write: `None` when its record belongs to another cache.
fn write(
    key: Result<std::borrow::Cow<'_, str>, &str>,
    record: Result<&str, JsonError>,
    tag: &str,
) -> Option<NewsWrite> {
    let bad = |why: String| Some(Err(protocol(format!("ignored a write of a tab message: {why}"))));
    let key = match key {
        Ok(key) => key,
        Err(why) => return bad(format!("its key is unusable: {why}")),
    };
    if let Err(e) = validate_key(&key) {
        return bad(e.to_string());
    }
    let record = match record {
        Ok(record) => record,
        Err(e) => return bad(format!("the record of {} is not an object: {e}", quoted(&key))),
    };
    match decode_record_pending(record, tag) {
        Ok((DecodedRecord::Mine(entry), pending)) => match check_record_stamps(&entry, &pending) {
            Ok(()) => Some(Ok((key.into_owned(), entry, pending))),
            Err(e) => bad(format!("the record of {}: {}", quoted(&key), reason(e))),
        },
        Ok((DecodedRecord::OtherCache, _)) => None,
        Err(why) => bad(format!("bad record for {}: {why}", quoted(&key))),
    }
}

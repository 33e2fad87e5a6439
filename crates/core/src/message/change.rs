//! The protocol's `Change` object and clear epoch as the backend sends them, in `/sync` answers
//! and stream events alike, checked by the rules every write from outside is checked by.
use std::borrow::Cow;
use std::fmt::Display;

use super::{protocol, quoted, reason};
use crate::json_read::Reader;
use crate::{check_remote_stamp, ttl_ms_from_secs, validate_key, CacheError, Entry, Stamp};

/// Reads `{"key","value","ttl","timestamp","deleted","node"?,"writtenAt"?}` (any order, unknown
/// fields ignored). Fields of the wrong type, a missing key, timestamp or (for a value) value
/// are errors; `value: null` is the JSON value null; `node: null` is the seed's empty writer.
pub(super) fn read_change(r: &mut Reader<'_>) -> Result<(String, Entry), CacheError> {
    let mut key: Option<Cow<'_, str>> = None;
    let (mut value, mut ttl, mut ts, mut deleted, mut node, mut written_at) = (None, 0.0, None, false, None, None);
    r.object(|name, r| {
        match name {
            "key" => key = Some(r.string()?),
            "value" => value = Some(r.raw()?),
            "ttl" => ttl = r.f64()?,
            "timestamp" => ts = Some(r.u64_integral()?),
            "deleted" => deleted = r.bool()?,
            "node" => node = r.optional(Reader::string)?,
            "writtenAt" => written_at = r.optional(Reader::u64_integral)?,
            _ => r.skip()?,
        }
        Ok(())
    })
    .map_err(|e| unusable(key.as_deref(), &e))?;
    let Some(key) = key else { return Err(unusable(None, &"it has no key")) };
    validate_key(&key).map_err(|e| unusable(None, &e))?;
    let ts = ts.ok_or_else(|| unusable(Some(&key), &"it has no timestamp"))?;
    let stamp = Stamp::new(ts, node.map(Cow::into_owned).unwrap_or_default());
    check_remote_stamp(&stamp).map_err(|e| unusable(Some(&key), &reason(e)))?;
    let entry = if deleted {
        Entry::tombstone(stamp)
    } else {
        let ttl_ms = ttl_ms_from_secs(ttl).map_err(|e| unusable(Some(&key), &e))?;
        Entry::value(stamp, ttl_ms, value.ok_or_else(|| unusable(Some(&key), &"it has no value"))?)
    };
    Ok((key.into_owned(), entry.written_at(written_at.unwrap_or(ts))))
}

fn unusable(key: Option<&str>, why: &dyn Display) -> CacheError {
    match key {
        Some(key) => protocol(format!("the backend sent an unusable change of {}: {why}", quoted(key))),
        None => protocol(format!("the backend sent an unusable change: {why}")),
    }
}

/// Reads a clear epoch, `{"timestamp","node"?}`.
pub(super) fn read_epoch(r: &mut Reader<'_>) -> Result<Stamp, CacheError> {
    let (mut ts, mut node) = (None, None);
    let read = r.object(|name, r| {
        match name {
            "timestamp" => ts = Some(r.u64_integral()?),
            "node" => node = r.optional(Reader::string)?,
            _ => r.skip()?,
        }
        Ok(())
    });
    let unusable = |why: &dyn Display| protocol(format!("the backend sent an unusable clear: {why}"));
    read.map_err(|e| unusable(&e))?;
    let stamp =
        Stamp::new(ts.ok_or_else(|| unusable(&"it has no timestamp"))?, node.map(Cow::into_owned).unwrap_or_default());
    check_remote_stamp(&stamp).map_err(|e| unusable(&reason(e)))?;
    Ok(stamp)
}

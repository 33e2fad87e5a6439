//! The format of one entry in storage: compact JSON, one storage key per cache key.
//!
//! `{"t":<ms>,"n":"<node>","p":"<tag>","l":<ttl ms>,"v":<value>}` for a value (`l` omitted when
//! 0) and `{"t":<ms>,"n":"<node>","p":"<tag>","d":1}` for a tombstone; `"u":1` after `p` marks a
//! write the backend has not acknowledged yet, so the outbox is durable with the write itself;
//! `"w":<ms>` after that is when it was written, where that differs from `t` (the writer's clock
//! had seen a stamp from a faster clock: see [`crate::Entry::written_at`]). `"s":{…}` after that
//! (never with `"u":1`) is an earlier write for everyone that the backend has not acknowledged and
//! that the record's own write covers in this browser (`{"t","n","w"?,"l"?,"v"}` or
//! `{"t","n","w"?,"d":1}`): the outbox keeps it, so a `sync: false` write never takes a write for
//! everyone out of it. `p` is a short hash of
//! the cache's prefix: a cache with prefix `app_` must not read the entries of one with prefix
//! `app_x_`, whose storage keys also start with `app_`.
//!
//! Only this cache writes records, always in this field order, so the decoder reads exactly that
//! layout (anything else is corrupt or foreign) and validates the value with [`crate::json`].
//! The bookkeeping record holding the clear epoch is `{"p":"<tag>","t":<ms>,"n":"<node>"}` (also
//! with `"u":1` while the clear is not acknowledged), and the sync cursor `{"p":"<tag>","c":<n>}`.
//!
//! One rule lets copies of different versions of the package share a page, a storage and their
//! tab messages (MFEs update their copies one at a time): a later version may add members that an
//! earlier one can ignore, written after the members above and before `l`/`v`/`d` (at the end
//! of a bookkeeping record). A reader skips every member it does not know there, whatever its
//! JSON. A change an earlier reader must not ignore takes a new layout, which that reader finds
//! corrupt: it reports the key and leaves the record alone, never deleting it.
use crate::json_read::Reader;
use crate::validate::{is_valid_node, MAX_SAFE_INTEGER};
use crate::{check_remote_stamp, json, CacheError, Entry, Stamp};

/// What of a key's writes waits for the backend, as its record says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Pending<E = Entry> {
    /// Nothing.
    #[default]
    None,
    /// The record's own write.
    This,
    /// An earlier write for everyone, which the record's write covers in this browser (it is
    /// for this browser only, or arrived before the earlier one was sent).
    Covered(E),
}

impl<E> Pending<E> {
    /// The write that waits: the record's own (`write`) or the one it covers.
    pub fn waiting<'a>(&'a self, write: &'a E) -> Option<&'a E> {
        match self {
            Pending::None => None,
            Pending::This => Some(write),
            Pending::Covered(covered) => Some(covered),
        }
    }
}

/// Checks the stamps of a decoded record's write and of the write it covers, as every stamp
/// read from storage or another tab is checked ([`check_remote_stamp`]).
pub fn check_record_stamps(entry: &Entry, pending: &Pending) -> Result<(), CacheError> {
    check_remote_stamp(&entry.stamp)?;
    match pending {
        Pending::Covered(covered) => check_remote_stamp(&covered.stamp),
        _ => Ok(()),
    }
}

/// The tag that marks records as belonging to the cache with this prefix (FNV-1a, base 36).
pub fn prefix_tag(prefix: &str) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in prefix.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    let mut out = Vec::new();
    loop {
        let digit = (hash % 36) as u8;
        out.push(if digit < 10 { b'0' + digit } else { b'a' + digit - 10 });
        hash /= 36;
        if hash == 0 {
            break;
        }
    }
    out.into_iter().rev().map(char::from).collect()
}

/// Encodes an entry for storage. The value is already JSON text (validated where it entered the
/// cache) and node ids never need escaping (see [`is_valid_node`]), so this is concatenation:
/// it runs on every write.
pub fn encode_record(entry: &Entry, tag: &str) -> String {
    encode_record_pending(entry, tag, Pending::None)
}

/// Encodes an entry for storage with what of its key waits for the backend.
pub fn encode_record_pending(entry: &Entry, tag: &str, pending: Pending<&Entry>) -> String {
    let value_len = entry.value.as_ref().map_or(0, String::len);
    let mut out = String::with_capacity(56 + entry.stamp.node.len() + tag.len() + value_len);
    push_head(&mut out, &entry.stamp);
    out.push_str(",\"p\":\"");
    out.push_str(tag);
    out.push('"');
    let covered = match pending {
        Pending::None => None,
        Pending::This => {
            out.push_str(",\"u\":1");
            None
        }
        Pending::Covered(covered) => Some(covered),
    };
    push_body(&mut out, entry, covered);
    out
}

fn push_head(out: &mut String, stamp: &Stamp) {
    out.push_str("{\"t\":");
    json::write_u64(out, stamp.ts);
    out.push_str(",\"n\":\"");
    out.push_str(&stamp.node);
    out.push('"');
}

/// The fields after the head and the marks: the written time, a covered write, the value.
fn push_body(out: &mut String, entry: &Entry, covered: Option<&Entry>) {
    if entry.written_at != entry.stamp.ts {
        out.push_str(",\"w\":");
        json::write_u64(out, entry.written_at);
    }
    if let Some(covered) = covered {
        out.push_str(",\"s\":");
        push_head(out, &covered.stamp);
        push_body(out, covered, None);
    }
    match &entry.value {
        Some(json) => {
            if entry.ttl_ms != 0 {
                out.push_str(",\"l\":");
                json::write_u64(out, entry.ttl_ms);
            }
            out.push_str(",\"v\":");
            out.push_str(json);
        }
        None => out.push_str(",\"d\":1"),
    }
    out.push('}');
}

/// What a stored string turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum DecodedRecord {
    /// An entry of this cache.
    Mine(Entry),
    /// A well-formed record of another cache whose prefix starts with this one's.
    OtherCache,
}

/// Decodes a stored record; `Err` says why it is not a record of any cache (corrupt or foreign).
pub fn decode_record(text: &str, tag: &str) -> Result<DecodedRecord, String> {
    decode_record_pending(text, tag).map(|(record, _)| record)
}

/// Decodes a stored record and what of its key waits for the backend.
pub fn decode_record_pending(text: &str, tag: &str) -> Result<(DecodedRecord, Pending), String> {
    let mut c = Cursor(text);
    let (ts, node) = c.head()?;
    c.expect(",\"p\":\"")?;
    let record_tag = c.ident()?;
    c.expect("\"")?;
    if record_tag != tag {
        return Ok((DecodedRecord::OtherCache, Pending::None));
    }
    let unsynced = c.eat(",\"u\":1");
    let (entry, covered) = decode_body(c, Stamp::new(ts, node), !unsynced)?;
    let pending = match covered {
        Some(covered) => Pending::Covered(covered),
        None if unsynced => Pending::This,
        None => Pending::None,
    };
    Ok((DecodedRecord::Mine(entry), pending))
}

/// The rest of a record after its head and marks (see [`push_body`]), up to its closing brace;
/// a covered write only where `may_cover` (not inside another).
fn decode_body(mut c: Cursor<'_>, stamp: Stamp, may_cover: bool) -> Result<(Entry, Option<Entry>), String> {
    let written_at = if c.eat(",\"w\":") { c.uint()? } else { stamp.ts };
    let covered = if may_cover && c.eat(",\"s\":") {
        // Its extent is found by reading it as JSON; its layout is then checked like a record's.
        let text = Reader::new(c.0).raw().map_err(|_| "covered write is not JSON")?;
        c.0 = c.0.strip_prefix(text).ok_or("covered write is not where the record has it")?;
        let mut inner = Cursor(text);
        let (ts, node) = inner.head()?;
        let (covered, _) = decode_body(inner, Stamp::new(ts, node), false)?;
        if covered.stamp >= stamp {
            return Err("covered write is not older than the record's".into());
        }
        Some(covered)
    } else {
        None
    };
    c.skip_added(ENTRY_FIELDS)?;
    if c.0 == ",\"d\":1}" {
        return Ok((Entry::tombstone(stamp).written_at(written_at), covered));
    }
    let ttl_ms = if c.eat(",\"l\":") { c.uint()? } else { 0 };
    c.expect(",\"v\":")?;
    let value = c.0.strip_suffix('}').ok_or("record does not end with '}'")?;
    json::validate(value).map_err(|e| format!("value is not JSON: {e}"))?;
    Ok((Entry::value(stamp, ttl_ms, value).written_at(written_at), covered))
}

/// The stamp of a stored record, read without checking its value: enough to tell that a record
/// is one this cache already holds. `None` when it is not a well-formed record of this cache.
pub fn record_stamp(text: &str, tag: &str) -> Option<Stamp> {
    record_head(text, tag).map(|(ts, node, _)| Stamp::new(ts, node))
}

/// The head of a stored record of this cache — its stamp's time and writer, and whether it is
/// marked unacknowledged — read without its value and without allocating. `None` when the head
/// is not that of a well-formed record of this cache.
pub fn record_head<'a>(text: &'a str, tag: &str) -> Option<(u64, &'a str, bool)> {
    record_marks(text, tag).map(|(ts, node, pending)| (ts, node, matches!(pending, Pending::This)))
}

/// Like [`record_head`], with what of the key waits: the record's own write, or one it covers
/// (whose whole record is not read).
pub fn record_marks<'a>(text: &'a str, tag: &str) -> Option<(u64, &'a str, Pending<()>)> {
    let mut c = Cursor(text);
    let (ts, node) = c.head().ok()?;
    c.expect(",\"p\":\"").ok()?;
    if c.ident().ok()? != tag || !c.eat("\"") {
        return None;
    }
    if c.eat(",\"u\":1") {
        return Some((ts, node, Pending::This));
    }
    if c.eat(",\"w\":") {
        c.uint().ok()?;
    }
    let covers = c.0.starts_with(",\"s\":");
    Some((ts, node, if covers { Pending::Covered(()) } else { Pending::None }))
}

/// Encodes the clear epoch's bookkeeping record.
pub fn encode_meta(epoch: &Stamp, tag: &str) -> String {
    encode_meta_flagged(epoch, tag, false)
}

/// Encodes the clear epoch's record, marked as not yet acknowledged by the backend when `unsynced`.
pub fn encode_meta_flagged(epoch: &Stamp, tag: &str, unsynced: bool) -> String {
    let flag = if unsynced { ",\"u\":1" } else { "" };
    format!("{{\"p\":\"{tag}\",\"t\":{},\"n\":\"{}\"{flag}}}", epoch.ts, epoch.node)
}

/// Decodes the bookkeeping record: `Ok(None)` when it belongs to another cache.
pub fn decode_meta(text: &str, tag: &str) -> Result<Option<Stamp>, String> {
    decode_meta_flagged(text, tag).map(|m| m.map(|(stamp, _)| stamp))
}

/// Decodes the bookkeeping record and whether its clear is not yet acknowledged.
pub fn decode_meta_flagged(text: &str, tag: &str) -> Result<Option<(Stamp, bool)>, String> {
    decode_tagged(text, tag, |c| {
        c.expect(",\"t\":")?;
        let ts = c.uint()?;
        c.expect(",\"n\":\"")?;
        let node = c.ident()?;
        c.expect("\"")?;
        let unsynced = c.eat(",\"u\":1");
        Ok((Stamp::new(ts, node), unsynced))
    })
}

/// Encodes the sync cursor (the last `timestamp` the backend returned).
pub fn encode_cursor(cursor: u64, tag: &str) -> String {
    format!("{{\"p\":\"{tag}\",\"c\":{cursor}}}")
}

/// Decodes the sync cursor record: `Ok(None)` when it belongs to another cache.
pub fn decode_cursor(text: &str, tag: &str) -> Result<Option<u64>, String> {
    decode_tagged(text, tag, |c| {
        c.expect(",\"c\":")?;
        c.uint()
    })
}

/// Encodes the backend clock offset record (how far the backend's clock is ahead of this
/// device's, in ms; negative when behind).
pub fn encode_clock_offset(offset_ms: i64, tag: &str) -> String {
    format!("{{\"p\":\"{tag}\",\"o\":{offset_ms}}}")
}

/// Decodes the clock offset record: `Ok(None)` when it belongs to another cache.
pub fn decode_clock_offset(text: &str, tag: &str) -> Result<Option<i64>, String> {
    decode_tagged(text, tag, |c| {
        c.expect(",\"o\":")?;
        let negative = c.eat("-");
        let magnitude = i64::try_from(c.uint()?).map_err(|_| "offset out of range")?;
        Ok(if negative { -magnitude } else { magnitude })
    })
}

/// Reads a bookkeeping record, `{"p":"<tag>"` then `fields` then `}` and nothing more:
/// `Ok(None)` when the tag is another cache's.
fn decode_tagged<'a, T>(
    text: &'a str,
    tag: &str,
    fields: impl FnOnce(&mut Cursor<'a>) -> Result<T, String>,
) -> Result<Option<T>, String> {
    let mut c = Cursor(text);
    c.expect("{\"p\":\"")?;
    if c.ident()? != tag {
        return Ok(None);
    }
    c.expect("\"")?;
    let value = fields(&mut c)?;
    c.skip_added(BOOKKEEPING_FIELDS)?;
    c.expect("}")?;
    if !c.0.is_empty() {
        return Err("trailing characters".into());
    }
    Ok(Some(value))
}

/// The members of a record of an entry this version reads, wherever they stand: a record that
/// has one where this version does not read it is corrupt, never skipped.
const ENTRY_FIELDS: &[&str] = &["t", "n", "p", "u", "w", "s", "l", "v", "d"];
/// The members of a bookkeeping record this version reads.
const BOOKKEEPING_FIELDS: &[&str] = &["p", "t", "n", "u", "c", "o"];

struct Cursor<'a>(&'a str);

impl<'a> Cursor<'a> {
    /// A write's stamp as [`push_head`] writes it: `{"t":<ms>,"n":"<node>"`.
    fn head(&mut self) -> Result<(u64, &'a str), String> {
        self.expect("{\"t\":")?;
        let ts = self.uint()?;
        self.expect(",\"n\":\"")?;
        let node = self.ident()?;
        self.expect("\"")?;
        Ok((ts, node))
    }

    /// Skips the members a later version added (see the module's documentation): any
    /// `,"<name>":<JSON>` whose name is not one of `known`, each read as JSON to find its end.
    fn skip_added(&mut self, known: &[&str]) -> Result<(), String> {
        while let Some(rest) = self.0.strip_prefix(",\"") {
            let (name, after) = rest.split_once('"').ok_or("unterminated member name")?;
            if known.contains(&name) {
                break;
            }
            if name.is_empty() || name.contains('\\') {
                return Err("unusable member name".into());
            }
            let after = after.strip_prefix(':').ok_or("member without a value")?;
            let value = Reader::new(after).raw().map_err(|_| "an added member is not JSON")?;
            self.0 = after.strip_prefix(value).ok_or("member value is not where the record has it")?;
        }
        Ok(())
    }

    fn eat(&mut self, literal: &str) -> bool {
        match self.0.strip_prefix(literal) {
            Some(rest) => {
                self.0 = rest;
                true
            }
            None => false,
        }
    }

    fn expect(&mut self, literal: &str) -> Result<(), String> {
        if self.eat(literal) {
            Ok(())
        } else {
            Err(format!("not a cache record (expected {literal})"))
        }
    }

    /// A non-negative integer a JS number holds exactly.
    fn uint(&mut self) -> Result<u64, String> {
        let end = self.0.bytes().position(|b| !b.is_ascii_digit()).unwrap_or(self.0.len());
        let (digits, rest) = self.0.split_at_checked(end).unwrap_or((self.0, ""));
        if digits.is_empty() || digits.len() > 16 || (digits.len() > 1 && digits.starts_with('0')) {
            return Err("invalid integer".into());
        }
        // At most 16 digits (checked above), so the fold cannot overflow; `str::parse` was a
        // measurable part of a full storage's cold start (up to three integers per record).
        let n = digits.bytes().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        if n > MAX_SAFE_INTEGER {
            return Err("timestamp or ttl out of range".into());
        }
        self.0 = rest;
        Ok(n)
    }

    /// A node id or tag: the characters up to the next `"`, which must be a valid node id.
    fn ident(&mut self) -> Result<&'a str, String> {
        let end = self.0.find('"').ok_or("unterminated string")?;
        let (ident, rest) = self.0.split_at_checked(end).unwrap_or((self.0, ""));
        if !is_valid_node(ident) {
            return Err("invalid writer id".into());
        }
        self.0 = rest;
        Ok(ident)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record marked as its own write's pending mark or as nothing pending.
    fn encode_record_flagged(entry: &Entry, tag: &str, unsynced: bool) -> String {
        encode_record_pending(entry, tag, if unsynced { Pending::This } else { Pending::None })
    }

    fn decode_record_flagged(text: &str, tag: &str) -> Result<(DecodedRecord, bool), String> {
        decode_record_pending(text, tag).map(|(record, pending)| (record, matches!(pending, Pending::This)))
    }

    #[test]
    fn round_trips_values_tombstones_and_null() {
        let tag = prefix_tag("app_");
        for entry in [
            Entry::value(Stamp::new(5, "n-1.a:b_c"), 3000, r#"{"a":[1,2,"x\"}"]}"#),
            Entry::value(Stamp::new(5, ""), 0, "null"),
            Entry::tombstone(Stamp::new(7, "n")),
        ] {
            let text = encode_record(&entry, &tag);
            assert_eq!(decode_record(&text, &tag), Ok(DecodedRecord::Mine(entry)));
        }
    }

    #[test]
    fn a_records_head_is_read_as_the_whole_record_reads_it() {
        let tag = prefix_tag("app_");
        for (entry, unsynced) in [
            (Entry::value(Stamp::new(5, "n-1.a:b_c"), 3000, "[1]"), true),
            (Entry::value(Stamp::new(9, "n"), 0, "null").written_at(4), false),
            (Entry::tombstone(Stamp::new(7, "n")), true),
        ] {
            let text = encode_record_flagged(&entry, &tag, unsynced);
            assert_eq!(record_head(&text, &tag), Some((entry.stamp.ts, entry.stamp.node.as_str(), unsynced)));
            assert_eq!(decode_record_flagged(&text, &tag), Ok((DecodedRecord::Mine(entry), unsynced)));
        }
        let theirs = encode_record(&Entry::value(Stamp::new(5, "n"), 0, "1"), &prefix_tag("app_x_"));
        assert_eq!(record_head(&theirs, &tag), None, "another cache's record");
        assert_eq!(record_head("{\"t\":5,\"n\":\"n\",\"p", &tag), None, "a cut head");
    }

    #[test]
    fn a_covered_write_round_trips_and_must_be_older_than_the_record_s() {
        let tag = prefix_tag("app_");
        let covered = [Entry::value(Stamp::new(5, "n"), 3000, r#"{"a":"}\"}"}"#).written_at(4), Entry::tombstone(Stamp::new(7, "n"))];
        for entry in [Entry::value(Stamp::new(9, "m"), 0, "[1]"), Entry::tombstone(Stamp::new(9, "m")).written_at(8)] {
            for c in &covered {
                let text = encode_record_pending(&entry, &tag, Pending::Covered(c));
                let decoded = decode_record_pending(&text, &tag);
                assert_eq!(decoded, Ok((DecodedRecord::Mine(entry.clone()), Pending::Covered(c.clone()))), "{text}");
                assert_eq!(decode_record_flagged(&text, &tag), Ok((DecodedRecord::Mine(entry.clone()), false)));
                assert_eq!(record_head(&text, &tag), Some((9, "m", false)));
                for cut in 0..text.len() {
                    assert!(decode_record_pending(&text[..cut], &tag).is_err(), "{:?} accepted", &text[..cut]);
                }
            }
        }
        let not_records = [
            r#"{"t":9,"n":"m","p":"TAG","s":{"t":9,"n":"m","v":1},"v":2}"#,
            r#"{"t":9,"n":"m","p":"TAG","s":{"t":5,"n":"n","s":{"t":1,"n":"x","v":0},"v":1},"v":2}"#,
            r#"{"t":9,"n":"m","p":"TAG","u":1,"s":{"t":5,"n":"n","v":1},"v":2}"#,
            r#"{"t":9,"n":"m","p":"TAG","s":{"t":5,"n":"n"},"v":2}"#,
            r#"{"t":9,"n":"m","p":"TAG","s":{"t":5,"n":"n","v":1,"v":2}"#,
            r#"{"t":9,"n":"m","p":"TAG","s":[5,"n",1],"v":2}"#,
        ];
        for text in not_records {
            let text = text.replace("TAG", &tag);
            assert!(decode_record_pending(&text, &tag).is_err(), "{text} accepted");
        }
    }

    #[test]
    fn members_a_later_version_adds_are_skipped() {
        let tag = prefix_tag("app_");
        // JSON a member may hold, with what would end a record or start a known member if it
        // were read as text.
        let added = r#","x":{"a":[1,"}\",\"v\":2"],"b":{}},"yy":null,"z9":-1.5e3"#;
        let covered = Entry::value(Stamp::new(5, "n"), 0, "2").written_at(4);
        let cases = [
            (Entry::value(Stamp::new(9, "m"), 3000, "[1]"), Pending::None),
            (Entry::value(Stamp::new(9, "m"), 0, "null").written_at(8), Pending::This),
            (Entry::tombstone(Stamp::new(9, "m")), Pending::Covered(covered.clone())),
            (Entry::value(Stamp::new(9, "m"), 3000, r#"{"v":1}"#), Pending::Covered(covered)),
        ];
        for (entry, pending) in cases {
            let text = encode_record_pending(&entry, &tag, match &pending {
                Pending::None => Pending::None,
                Pending::This => Pending::This,
                Pending::Covered(c) => Pending::Covered(c),
            });
            // Where a later version writes them: before the value (its TTL) or the tombstone mark.
            let at = [",\"l\":", ",\"v\":", ",\"d\":1}"].iter().filter_map(|tail| text.rfind(tail)).min().unwrap_or(0);
            let later = format!("{}{added}{}", &text[..at], &text[at..]);
            let head = record_marks(&text, &tag).map(|(ts, node, p)| (ts, node.to_owned(), p));
            assert_eq!(decode_record_pending(&later, &tag), Ok((DecodedRecord::Mine(entry.clone()), pending.clone())), "{later}");
            assert_eq!(record_marks(&later, &tag).map(|(ts, node, p)| (ts, node.to_owned(), p)), head, "{later}");
        }
        let inside = format!(r#"{{"t":9,"n":"m","p":"{tag}","s":{{"t":5,"n":"n","x":[1],"v":1}},"q":"","v":2}}"#);
        let Ok((DecodedRecord::Mine(entry), Pending::Covered(covered))) = decode_record_pending(&inside, &tag) else { panic!("{inside}") };
        assert_eq!((entry.value.as_deref(), covered.value.as_deref()), (Some("2"), Some("1")));

        let epoch = Stamp::new(99, "node-1");
        let meta = encode_meta_flagged(&epoch, &tag, true);
        let later = format!("{}{added}}}", meta.strip_suffix('}').unwrap_or(&meta));
        assert_eq!(decode_meta_flagged(&later, &tag), Ok(Some((epoch, true))));
        assert_eq!(decode_cursor(&format!(r#"{{"p":"{tag}","c":42,"x":[]}}"#), &tag), Ok(Some(42)));
        assert_eq!(decode_clock_offset(&format!(r#"{{"p":"{tag}","o":-5,"x":{{}}}}"#), &tag), Ok(Some(-5)));
    }

    #[test]
    fn added_members_stand_only_where_the_rule_puts_them_and_hold_json() {
        let tag = prefix_tag("app_");
        let not_records = [
            // After the value, or between the TTL and the value.
            r#"{"t":9,"n":"m","p":"TAG","v":2,"x":1}"#,
            r#"{"t":9,"n":"m","p":"TAG","l":5,"x":1,"v":2}"#,
            r#"{"t":9,"n":"m","p":"TAG","d":1,"x":1}"#,
            // Before a member this version reads earlier, or a known member twice.
            r#"{"t":9,"n":"m","p":"TAG","x":1,"w":5,"v":2}"#,
            r#"{"t":9,"n":"m","p":"TAG","x":1,"s":{"t":5,"n":"n","v":1},"v":2}"#,
            r#"{"t":9,"n":"m","p":"TAG","x":1,"p":"TAG","v":2}"#,
            r#"{"t":9,"n":"m","p":"TAG","s":{"t":5,"n":"n","x":1,"s":{"t":1,"n":"x","v":0},"v":1},"v":2}"#,
            // Not JSON, no value, no usable name.
            r#"{"t":9,"n":"m","p":"TAG","x":{,"v":2}"#,
            r#"{"t":9,"n":"m","p":"TAG","x":,"v":2}"#,
            r#"{"t":9,"n":"m","p":"TAG","x","v":2}"#,
            r#"{"t":9,"n":"m","p":"TAG","":1,"v":2}"#,
            r#"{"t":9,"n":"m","p":"TAG","a"b":1,"v":2}"#,
            r#"{"t":9,"n":"m","p":"TAG","x": 1,"v":2}"#,
            r#"{"t":9,"n":"m","p":"TAG","x":1"#,
            r#"{"p":"TAG","c":4,"x":1,"c":5}"#,
        ];
        for text in not_records {
            let text = text.replace("TAG", &tag);
            let refused = if text.contains("\"c\"") { decode_cursor(&text, &tag).is_err() } else { decode_record_pending(&text, &tag).is_err() };
            assert!(refused, "{text} accepted");
        }
    }

    #[test]
    fn other_caches_records_are_recognised() {
        let entry = Entry::value(Stamp::new(5, "n"), 0, "1");
        let text = encode_record(&entry, &prefix_tag("app_x_"));
        assert_eq!(decode_record(&text, &prefix_tag("app_")), Ok(DecodedRecord::OtherCache));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let tag = prefix_tag("p");
        let good = encode_record(&Entry::value(Stamp::new(1, "a"), 0, "1"), &tag);
        let mut bad = vec![
            "".to_string(),
            "{".into(),
            "null".into(),
            "42".into(),
            "{\"t\":-1}".into(),
            "{\"t\":1,\"n\":\"a\"}".into(),
            "\u{0}\u{ffff}".into(),
            "{\"t\":1e400}".into(),
            format!(r#"{{"t":{},"n":"a","p":"{tag}","v":1}}"#, u64::MAX),
            format!(r#"{{"t":01,"n":"a","p":"{tag}","v":1}}"#),
            format!(r#"{{"t":1,"n":"a\"b","p":"{tag}","v":1}}"#),
            format!(r#"{{"t":1,"n":"a","p":"{tag}","v":{{"a":}}}}"#),
            format!(r#"{{"t":1,"n":"a","p":"{tag}","v":1"#),
            format!(r#"{{"t":1,"n":"a","p":"{tag}","d":2}}"#),
            format!(r#"{{"t":1,"n":"a","p":"{tag}"}}"#),
        ];
        for cut in 0..good.len() {
            bad.push(good[..cut].to_string());
        }
        for text in bad {
            assert!(decode_record(&text, &tag).is_err(), "{text:?} accepted");
        }
    }

    #[test]
    fn meta_round_trips_and_rejects_garbage() {
        let tag = prefix_tag("p");
        let epoch = Stamp::new(99, "node-1");
        assert_eq!(decode_meta(&encode_meta(&epoch, &tag), &tag), Ok(Some(epoch.clone())));
        assert_eq!(decode_meta(&encode_meta(&epoch, "other"), &tag), Ok(None));
        for bad in ["", "{}", "{\"p\":\"", &(encode_meta(&epoch, &tag) + "x")] {
            assert!(decode_meta(bad, &tag).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_unsynced_mark_round_trips_and_is_optional() {
        let tag = prefix_tag("app_");
        for entry in [Entry::value(Stamp::new(5, "n"), 3000, "[1]"), Entry::tombstone(Stamp::new(7, "n"))] {
            for unsynced in [false, true] {
                let text = encode_record_flagged(&entry, &tag, unsynced);
                assert_eq!(decode_record_flagged(&text, &tag), Ok((DecodedRecord::Mine(entry.clone()), unsynced)));
            }
        }
        let epoch = Stamp::new(9, "m");
        assert_eq!(decode_meta_flagged(&encode_meta_flagged(&epoch, &tag, true), &tag), Ok(Some((epoch, true))));
        assert_eq!(decode_cursor(&encode_cursor(42, &tag), &tag), Ok(Some(42)));
        assert!(decode_cursor("{\"p\":\"x\",\"c\":-1}", "x").is_err());
    }

    #[test]
    fn the_written_time_round_trips_and_is_written_only_where_it_differs() {
        let tag = prefix_tag("app_");
        let plain = Entry::value(Stamp::new(5_000, "n"), 3000, "[1]");
        assert!(!encode_record(&plain, &tag).contains("\"w\""));
        for entry in [plain.clone().written_at(1_200), Entry::tombstone(Stamp::new(9_000, "n")).written_at(3)] {
            for unsynced in [false, true] {
                let text = encode_record_flagged(&entry, &tag, unsynced);
                assert!(text.contains("\"w\":"), "{text}");
                assert_eq!(decode_record_flagged(&text, &tag), Ok((DecodedRecord::Mine(entry.clone()), unsynced)));
            }
        }
        // A hostile record cannot put the written time after the stamp.
        let text = format!(r#"{{"t":5,"n":"n","p":"{tag}","w":99,"v":1}}"#);
        let Ok(DecodedRecord::Mine(entry)) = decode_record(&text, &tag) else { panic!("{text}") };
        assert_eq!(entry.written_at, 5);
    }

    #[test]
    fn the_clock_offset_round_trips_either_sign() {
        let tag = prefix_tag("p");
        for offset in [0, 1, -1, 259_200_000, -82_800_000] {
            assert_eq!(decode_clock_offset(&encode_clock_offset(offset, &tag), &tag), Ok(Some(offset)));
        }
        assert_eq!(decode_clock_offset(&encode_clock_offset(5, "x"), &tag), Ok(None));
        for bad in ["", "--1", "1.5", "-", "99999999999999999"] {
            let text = format!(r#"{{"p":"{tag}","o":{bad}}}"#);
            assert!(decode_clock_offset(&text, &tag).is_err(), "{text}");
        }
    }

    #[test]
    fn tags_differ_per_prefix() {
        assert_ne!(prefix_tag("a"), prefix_tag("b"));
        assert_eq!(prefix_tag("shared_mfe_cache_"), prefix_tag("shared_mfe_cache_"));
    }
}

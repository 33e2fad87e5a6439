//! The two Lua scripts of the Redis store and their arguments and answers.
//!
//! Neither script decides anything about entries: [`READ`] returns what a [`Plan`] names, from
//! one point in time (a script runs atomically), and [`COMMIT`] writes what an
//! [`Overlay`](super::redis_snapshot::Overlay) recorded, if and only if the namespace's meta is
//! still the one the overlay's snapshot saw. Every change of a namespace moves its cursor (see
//! [`super`]), which is in the meta, so "meta unchanged" means "nothing changed": optimistic
//! concurrency between server instances, with the merge rule run in Rust by
//! [`crate::namespace`]. Both take the namespace's four keys (one hash slot) as `KEYS`.
use ::redis::Value;

use super::redis_layout::{lex_from, prefix_end};
use super::redis_snapshot::{Commit, Fetched, FetchedRange, FetchedSeq, Plan};
use super::StoreError;

/// Reads the meta and the rows a plan names.
///
/// `ARGV`: the sequence range (`after` or `""` for none, row limit or -1, byte budget), the
/// number of key ranges, then per range (lex min, lex max, row limit or -1, byte budget, `1` for
/// headers only or `2` for whole rows), then the keys to read whole.
///
/// Answer: `{ meta or nil, seq complete (0/1), { key, score, row or nil, … }, { { complete,
/// { key, row or nil, … } }, … }, { row or nil, … } }`. A range stops early (and is incomplete)
/// once its keys and rows add up to its budget. In header mode a row is cut after the node id
/// (byte 27 of the `codec` layout is its length), and after the written time that follows it when
/// the kind (byte 26) has bit 2: no value is copied out.
pub(crate) const READ: &str = r#"
local function header(row)
  local n = string.byte(row, 27)
  if n == nil then return row end
  local kind = string.byte(row, 26)
  if kind >= 2 then n = n + 8 end
  return string.sub(row, 1, 27 + n)
end
local meta = redis.call('GET', KEYS[1])
local seq, seq_complete = {}, 1
if ARGV[1] ~= '' then
  local limit, budget = tonumber(ARGV[2]), tonumber(ARGV[3])
  local ids
  if limit < 0 then
    ids = redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. ARGV[1], '+inf', 'WITHSCORES')
  else
    ids = redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. ARGV[1], '+inf', 'WITHSCORES', 'LIMIT', 0, limit)
    if #ids / 2 >= limit then seq_complete = 0 end
  end
  local bytes = 0
  for i = 1, #ids, 2 do
    local row = redis.call('HGET', KEYS[2], ids[i])
    seq[#seq + 1] = ids[i]
    seq[#seq + 1] = ids[i + 1]
    seq[#seq + 1] = row
    bytes = bytes + #ids[i] + (row and #row or 0)
    if bytes >= budget and i + 1 < #ids then
      seq_complete = 0
      break
    end
  end
end
local ranges = {}
local a = 5
for r = 1, tonumber(ARGV[4]) do
  local min, max, limit, budget, mode = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), ARGV[a + 4]
  a = a + 5
  local keys
  local complete = 1
  if limit < 0 then
    keys = redis.call('ZRANGEBYLEX', KEYS[4], min, max)
  else
    keys = redis.call('ZRANGEBYLEX', KEYS[4], min, max, 'LIMIT', 0, limit)
    if #keys >= limit then complete = 0 end
  end
  local rows, bytes = {}, 0
  for i = 1, #keys do
    local row = redis.call('HGET', KEYS[2], keys[i])
    if row and mode == '1' then row = header(row) end
    rows[#rows + 1] = keys[i]
    rows[#rows + 1] = row
    bytes = bytes + #keys[i] + (row and #row or 0)
    if bytes >= budget and i < #keys then
      complete = 0
      break
    end
  end
  ranges[r] = { complete, rows }
end
local gets = {}
for i = a, #ARGV do
  gets[#gets + 1] = redis.call('HGET', KEYS[2], ARGV[i])
end
return { meta, seq_complete, seq, ranges, gets }
"#;

/// Writes a commit if the meta is still the expected one; answers 1, or 0 (and writes nothing).
///
/// `ARGV`: expected meta (`""`: none yet; an encoded meta is never empty), new meta (`""`:
/// unchanged), the number of puts, then per put (key, row, seq), then the keys to forget.
pub(crate) const COMMIT: &str = r#"
local current = redis.call('GET', KEYS[1]) or ''
if current ~= ARGV[1] then return 0 end
local a = 4
for _ = 1, tonumber(ARGV[3]) do
  redis.call('HSET', KEYS[2], ARGV[a], ARGV[a + 1])
  redis.call('ZADD', KEYS[3], ARGV[a + 2], ARGV[a])
  redis.call('ZADD', KEYS[4], 0, ARGV[a])
  a = a + 3
end
for i = a, #ARGV do
  redis.call('HDEL', KEYS[2], ARGV[i])
  redis.call('ZREM', KEYS[3], ARGV[i])
  redis.call('ZREM', KEYS[4], ARGV[i])
end
if ARGV[2] ~= '' then redis.call('SET', KEYS[1], ARGV[2]) end
return 1
"#;

fn limit_arg(limit: Option<u64>) -> Vec<u8> {
    limit.map_or_else(|| b"-1".to_vec(), |l| l.to_string().into_bytes())
}

/// The [`READ`] arguments of a plan.
pub(crate) fn read_args(plan: &Plan) -> Vec<Vec<u8>> {
    let mut args = Vec::with_capacity(4 + 5 * plan.ranges.len() + plan.gets.len());
    match &plan.seq {
        Some(seq) => {
            args.push(seq.after.to_string().into_bytes());
            args.push(limit_arg(seq.limit));
            args.push(seq.budget.to_string().into_bytes());
        }
        None => args.extend([Vec::new(), Vec::new(), Vec::new()]),
    }
    args.push(plan.ranges.len().to_string().into_bytes());
    for range in &plan.ranges {
        args.push(lex_from(&range.from));
        args.push(prefix_end(&range.prefix));
        args.push(limit_arg(range.limit));
        args.push(range.budget.to_string().into_bytes());
        args.push(if range.full { b"2".to_vec() } else { b"1".to_vec() });
    }
    args.extend(plan.gets.iter().map(|key| key.as_bytes().to_vec()));
    args
}

/// The [`COMMIT`] arguments of a commit.
pub(crate) fn commit_args(commit: &Commit) -> Vec<Vec<u8>> {
    let mut args = Vec::with_capacity(3 + 3 * commit.puts.len() + commit.forgets.len());
    args.push(commit.expected.clone().unwrap_or_default());
    args.push(commit.meta.clone().unwrap_or_default());
    args.push(commit.puts.len().to_string().into_bytes());
    for (key, row, seq) in &commit.puts {
        args.push(key.as_bytes().to_vec());
        args.push(row.clone());
        args.push(seq.to_string().into_bytes());
    }
    args.extend(commit.forgets.iter().map(|key| key.as_bytes().to_vec()));
    args
}

fn unexpected(what: &str) -> StoreError {
    StoreError::Corrupt(format!("unexpected answer from Redis: {what}"))
}

fn array(value: Value, what: &str) -> Result<Vec<Value>, StoreError> {
    match value {
        Value::Array(items) => Ok(items),
        _ => Err(unexpected(what)),
    }
}

fn bytes(value: Value) -> Result<Option<Vec<u8>>, StoreError> {
    match value {
        Value::Nil => Ok(None),
        Value::BulkString(bytes) => Ok(Some(bytes)),
        Value::SimpleString(text) => Ok(Some(text.into_bytes())),
        _ => Err(unexpected("a row is not a string")),
    }
}

fn key(value: Value) -> Result<String, StoreError> {
    let bytes = bytes(value)?.ok_or_else(|| unexpected("a key is missing"))?;
    String::from_utf8(bytes).map_err(|_| StoreError::Corrupt("a stored key is not UTF-8".into()))
}

fn flag(value: &Value) -> Result<bool, StoreError> {
    match value {
        Value::Int(0) => Ok(false),
        Value::Int(1) => Ok(true),
        _ => Err(unexpected("a flag is not 0 or 1")),
    }
}

/// A sequence number from a sorted-set score (a double, exact up to 2^53, as Redis prints it).
fn score(value: Value) -> Result<u64, StoreError> {
    let text = bytes(value)?.ok_or_else(|| unexpected("a score is missing"))?;
    let text = std::str::from_utf8(&text).map_err(|_| unexpected("a score is not text"))?;
    if let Ok(n) = text.parse::<u64>() {
        return Ok(n);
    }
    match text.parse::<f64>() {
        Ok(f) if f.fract() == 0.0 && (0.0..=9_007_199_254_740_992.0).contains(&f) => Ok(f as u64),
        _ => Err(StoreError::Corrupt(format!("sequence number {text:?} is not a whole number up to 2^53"))),
    }
}

/// Parses a [`READ`] answer.
pub(crate) fn parse_read(value: Value) -> Result<Fetched, StoreError> {
    let mut parts = array(value, "the read answer is not an array")?.into_iter();
    let (Some(meta), Some(seq_complete), Some(seq), Some(ranges), Some(gets), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(unexpected("the read answer has the wrong length"));
    };
    let meta = bytes(meta)?;
    let seq_complete = flag(&seq_complete)?;
    let seq_items = array(seq, "the sequence rows are not an array")?;
    let seq = if seq_items.is_empty() && seq_complete {
        // Either no sequence range was asked for, or it was empty: the same to the snapshot.
        FetchedSeq { complete: true, rows: Vec::new() }
    } else {
        if seq_items.len() % 3 != 0 {
            return Err(unexpected("the sequence rows are not triples"));
        }
        let mut rows = Vec::with_capacity(seq_items.len() / 3);
        let mut items = seq_items.into_iter();
        while let (Some(k), Some(s), Some(r)) = (items.next(), items.next(), items.next()) {
            rows.push((key(k)?, score(s)?, bytes(r)?));
        }
        FetchedSeq { complete: seq_complete, rows }
    };
    let mut fetched_ranges = Vec::new();
    for range in array(ranges, "the key ranges are not an array")? {
        let mut range = array(range, "a key range is not an array")?.into_iter();
        let (Some(complete), Some(items), None) = (range.next(), range.next(), range.next()) else {
            return Err(unexpected("a key range has the wrong length"));
        };
        let items = array(items, "a key range's rows are not an array")?;
        if items.len() % 2 != 0 {
            return Err(unexpected("a key range's rows are not pairs"));
        }
        let mut rows = Vec::with_capacity(items.len() / 2);
        let mut items = items.into_iter();
        while let (Some(k), Some(r)) = (items.next(), items.next()) {
            rows.push((key(k)?, bytes(r)?));
        }
        fetched_ranges.push(FetchedRange { complete: flag(&complete)?, rows });
    }
    let gets = array(gets, "the single rows are not an array")?.into_iter().map(bytes).collect::<Result<_, _>>()?;
    Ok(Fetched { meta, seq: Some(seq), ranges: fetched_ranges, gets })
}

/// Parses a [`READ`] answer for `plan` (without a sequence range, the sequence part is dropped).
pub(crate) fn parse_read_for(plan: &Plan, value: Value) -> Result<Fetched, StoreError> {
    let mut fetched = parse_read(value)?;
    if plan.seq.is_none() {
        fetched.seq = None;
    }
    Ok(fetched)
}

/// Parses a [`COMMIT`] answer: whether it was written.
pub(crate) fn parse_commit(value: &Value) -> Result<bool, StoreError> {
    flag(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn read_answers_parse() {
        let answer = Value::Array(vec![
            bulk("meta"),
            Value::Int(0),
            Value::Array(vec![bulk("k"), bulk("1700000000000"), bulk("row"), bulk("gone"), bulk("12"), Value::Nil]),
            Value::Array(vec![Value::Array(vec![Value::Int(1), Value::Array(vec![bulk("a"), bulk("r")])])]),
            Value::Array(vec![Value::Nil, bulk("x")]),
        ]);
        let fetched = parse_read(answer).unwrap();
        assert_eq!(fetched.meta.as_deref(), Some(&b"meta"[..]));
        let seq = fetched.seq.unwrap();
        assert!(!seq.complete);
        assert_eq!(seq.rows[0], ("k".into(), 1_700_000_000_000, Some(b"row".to_vec())));
        assert_eq!(seq.rows[1], ("gone".into(), 12, None));
        assert!(fetched.ranges[0].complete);
        assert_eq!(fetched.gets, vec![None, Some(b"x".to_vec())]);
    }

    #[test]
    fn odd_answers_are_errors_not_panics() {
        for answer in [
            Value::Int(1),
            Value::Array(vec![]),
            Value::Array(vec![
                Value::Nil,
                Value::Int(2),
                Value::Array(vec![]),
                Value::Array(vec![]),
                Value::Array(vec![]),
            ]),
            Value::Array(vec![
                Value::Nil,
                Value::Int(1),
                Value::Array(vec![bulk("k")]),
                Value::Array(vec![]),
                Value::Array(vec![]),
            ]),
            Value::Array(vec![
                Value::Nil,
                Value::Int(1),
                Value::Array(vec![bulk("k"), bulk("1.5"), Value::Nil]),
                Value::Array(vec![]),
                Value::Array(vec![]),
            ]),
            Value::Array(vec![
                Value::Nil,
                Value::Int(1),
                Value::Array(vec![]),
                Value::Array(vec![]),
                Value::Array(vec![Value::Int(3)]),
            ]),
        ] {
            assert!(parse_read(answer.clone()).is_err(), "{answer:?}");
        }
        assert_eq!(score(bulk("9.0071992547409920e+15")).unwrap(), 1 << 53);
        assert!(score(bulk("1e300")).is_err());
        assert!(parse_commit(&Value::Okay).is_err());
    }
}

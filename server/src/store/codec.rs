//! Byte layout of the redb rows. Fixed-width little-endian fields with a leading version byte:
//! cheap to encode on every write, and decoding a header (for clears and GC) skips the value.
//! Decoding checks everything and returns an error, never panics, on a corrupt row.
use mfe_shared_cache_core::{is_valid_node, Entry, Stamp, MAX_SAFE_INTEGER};

use super::{Header, Meta, StoreError, Stored};

const VERSION: u8 = 1;
const KIND_VALUE: u8 = 0;
const KIND_TOMBSTONE: u8 = 1;
/// Or-ed into the kind when the write's written time follows the node id (it differs from the
/// timestamp); rows without it are the same bytes as before the field existed.
const KIND_WRITTEN_AT: u8 = 2;

/// `[1][seq u64][ts u64][ttl_ms u64][kind u8][node_len u8][node]([written_at u64])[value utf-8]`
/// (the Redis scripts cut headers by this layout: see `redis_scripts::READ`).
pub fn encode_stored(stored: &Stored) -> Vec<u8> {
    let entry = &stored.entry;
    let value = entry.value.as_deref().unwrap_or("");
    let written_apart = entry.written_at != entry.stamp.ts;
    let mut out = Vec::with_capacity(35 + entry.stamp.node.len() + value.len());
    out.push(VERSION);
    out.extend_from_slice(&stored.seq.to_le_bytes());
    out.extend_from_slice(&entry.stamp.ts.to_le_bytes());
    out.extend_from_slice(&entry.ttl_ms.to_le_bytes());
    let kind = if entry.value.is_some() { KIND_VALUE } else { KIND_TOMBSTONE };
    out.push(if written_apart { kind | KIND_WRITTEN_AT } else { kind });
    push_node(&mut out, &entry.stamp.node);
    if written_apart {
        out.extend_from_slice(&entry.written_at.to_le_bytes());
    }
    out.extend_from_slice(value.as_bytes());
    out
}

pub fn decode_stored(bytes: &[u8]) -> Result<Stored, StoreError> {
    let (header, ttl_ms, rest) = decode_prefix(bytes)?;
    let value = if header.tombstone {
        if !rest.is_empty() {
            return Err(corrupt("a tombstone carries a value"));
        }
        None
    } else {
        Some(std::str::from_utf8(rest).map_err(|_| corrupt("value is not UTF-8"))?.to_owned())
    };
    let stamp = header.stamp;
    let entry = match value {
        Some(json) => Entry::value(stamp, ttl_ms, json),
        None => Entry::tombstone(stamp),
    };
    Ok(Stored { entry: entry.written_at(header.written_at), seq: header.seq })
}

pub fn decode_header(bytes: &[u8]) -> Result<Header, StoreError> {
    decode_prefix(bytes).map(|(header, _, _)| header)
}

fn decode_prefix(bytes: &[u8]) -> Result<(Header, u64, &[u8]), StoreError> {
    let mut r = Reader(bytes);
    if r.u8()? != VERSION {
        return Err(corrupt("unknown entry format version"));
    }
    let seq = r.u64()?;
    let ts = r.bounded_u64()?;
    let ttl_ms = r.bounded_u64()?;
    let kind = r.u8()?;
    let tombstone = match kind & !KIND_WRITTEN_AT {
        KIND_VALUE => false,
        KIND_TOMBSTONE => true,
        _ => return Err(corrupt("unknown entry kind")),
    };
    let node = r.node()?;
    let written_at = if kind & KIND_WRITTEN_AT != 0 { r.bounded_u64()? } else { ts };
    let stamp = Stamp::new(ts, node);
    Ok((Header::from_parts(stamp, ttl_ms, written_at, tombstone, seq), ttl_ms, r.0))
}

/// `[1][cursor u64][epoch_seq u64][epoch?][floor?][clock u64]`, each optional stamp as
/// `[0]` or `[1][ts u64][node_len u8][node]`; `clock` is absent from metas written before it was
/// kept (read as 0).
pub fn encode_meta(meta: &Meta) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.push(VERSION);
    out.extend_from_slice(&meta.cursor.to_le_bytes());
    out.extend_from_slice(&meta.epoch_seq.to_le_bytes());
    for stamp in [&meta.epoch, &meta.floor] {
        match stamp {
            None => out.push(0),
            Some(stamp) => {
                out.push(1);
                out.extend_from_slice(&stamp.ts.to_le_bytes());
                push_node(&mut out, &stamp.node);
            }
        }
    }
    out.extend_from_slice(&meta.clock.to_le_bytes());
    out
}

pub fn decode_meta(bytes: &[u8]) -> Result<Meta, StoreError> {
    let mut r = Reader(bytes);
    if r.u8()? != VERSION {
        return Err(corrupt("unknown meta format version"));
    }
    let cursor = r.bounded_u64()?;
    let epoch_seq = r.bounded_u64()?;
    let mut stamp = || -> Result<Option<Stamp>, StoreError> {
        match r.u8()? {
            0 => Ok(None),
            1 => {
                let ts = r.bounded_u64()?;
                Ok(Some(Stamp::new(ts, r.node()?)))
            }
            _ => Err(corrupt("bad optional stamp marker")),
        }
    };
    let epoch = stamp()?;
    let floor = stamp()?;
    let clock = if r.0.is_empty() { 0 } else { r.bounded_u64()? };
    if !r.0.is_empty() {
        return Err(corrupt("trailing bytes after meta"));
    }
    Ok(Meta { cursor, epoch, epoch_seq, floor, clock })
}

fn push_node(out: &mut Vec<u8>, node: &str) {
    // Node ids are validated (at most 64 ASCII bytes) before they reach the store.
    let len = u8::try_from(node.len()).unwrap_or(u8::MAX);
    out.push(len);
    out.extend_from_slice(&node.as_bytes()[..usize::from(len)]);
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.0.len() < n {
            return Err(corrupt("row is truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, StoreError> {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(buf))
    }

    /// A timestamp, TTL or cursor: never above what a JS number holds exactly.
    fn bounded_u64(&mut self) -> Result<u64, StoreError> {
        let n = self.u64()?;
        if n > MAX_SAFE_INTEGER {
            return Err(corrupt("number out of range"));
        }
        Ok(n)
    }

    fn node(&mut self) -> Result<String, StoreError> {
        let len = usize::from(self.u8()?);
        let node = std::str::from_utf8(self.take(len)?).map_err(|_| corrupt("node is not UTF-8"))?;
        if !is_valid_node(node) {
            return Err(corrupt("invalid node id"));
        }
        Ok(node.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        for entry in [
            Entry::value(Stamp::new(1_700_000_000_000, "node-1"), 3_600_000, r#"{"a":[1,"é"]}"#),
            Entry::value(Stamp::new(0, ""), 0, "null"),
            Entry::tombstone(Stamp::new(42, "x")),
            Entry::value(Stamp::new(1_700_090_000_000, "fast"), 5_000, "1").written_at(1_700_000_000_000),
            Entry::tombstone(Stamp::new(1_700_090_000_000, "")).written_at(1_700_000_000_001),
        ] {
            let stored = Stored { entry, seq: 77 };
            let bytes = encode_stored(&stored);
            assert_eq!(decode_stored(&bytes).unwrap(), stored);
            assert_eq!(decode_header(&bytes).unwrap(), Header::of(&stored));
        }
    }

    #[test]
    fn meta_round_trips() {
        for meta in [
            Meta::default(),
            Meta { cursor: 9, epoch: Some(Stamp::new(5, "a")), epoch_seq: 7, floor: Some(Stamp::new(3, "")), clock: 11 },
        ] {
            assert_eq!(decode_meta(&encode_meta(&meta)).unwrap(), meta);
        }
        // A meta written before the clock was kept reads with a clock of 0.
        let meta = Meta { cursor: 9, epoch: None, epoch_seq: 7, floor: None, clock: 0 };
        let old = &encode_meta(&meta)[..19];
        assert_eq!(decode_meta(old).unwrap(), meta);
    }

    #[test]
    fn corrupt_rows_are_errors_not_panics() {
        let good = encode_stored(&Stored { entry: Entry::value(Stamp::new(1, "n"), 0, "1"), seq: 1 });
        for cut in 0..27 {
            assert!(decode_stored(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad_kind = good.clone();
        bad_kind[25] = 9;
        assert!(decode_stored(&bad_kind).is_err());
        // A row that says a written time follows but is cut before it ends.
        let apart = encode_stored(&Stored { entry: Entry::tombstone(Stamp::new(90, "n")).written_at(3), seq: 1 });
        assert!(decode_stored(&apart[..apart.len() - 1]).is_err());
        let mut bad_kind = good.clone();
        bad_kind[25] = 4;
        assert!(decode_stored(&bad_kind).is_err());
        let mut bad_version = good.clone();
        bad_version[0] = 2;
        assert!(decode_stored(&bad_version).is_err());
        let mut bad_node = good.clone();
        bad_node[27] = b' ';
        assert!(decode_stored(&bad_node).is_err());
        let mut bad_utf8 = good;
        bad_utf8.push(0xff);
        assert!(decode_stored(&bad_utf8).is_err());
        let meta = encode_meta(&Meta::default());
        assert!(decode_meta(&[meta.as_slice(), &[0]].concat()).is_err());
        assert!(decode_meta(&meta[..meta.len() - 1]).is_err(), "a clock cut short");
        assert!(decode_meta(&meta[..5]).is_err());
    }
}

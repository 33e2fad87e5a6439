//! Where the Redis store keeps what: the `--store` URL, the key prefix and the key names.
//!
//! Per namespace (all four share one hash tag, so a namespace lives on one Redis Cluster slot and
//! one Lua script can read or write all of it atomically):
//! - `{prefix}:{ns}:meta`: string, the encoded [`Meta`](super::Meta) (cursor, clear epoch, floor);
//! - `{prefix}:{ns}:entries`: hash, key → the encoded entry and its sequence number (the same
//!   bytes as a redb row);
//! - `{prefix}:{ns}:seq`: sorted set, member key, score its sequence number (≤ 2^53, so exact as
//!   a double): a delta is one `ZRANGEBYSCORE`;
//! - `{prefix}:{ns}:keys`: sorted set, every score 0: keys in byte order for prefix scans
//!   (`ZRANGEBYLEX`).
//!
//! And one key per deployment, `{prefix}:namespaces` (a set of namespace names), which garbage
//! collection walks. In the tag the namespace is escaped (`%` `{` `}` as `%25` `%7B` `%7D`), so no
//! namespace name can end the tag early or make two namespaces share keys.
use std::fmt;
use std::str::FromStr;

use ::redis::IntoConnectionInfo;

/// The default `--redis-prefix`.
pub const DEFAULT_PREFIX: &str = "mfe";

/// Where a Redis store lives, from `--store`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RedisTarget {
    /// One server: `redis://[USER:PASSWORD@]HOST[:PORT][/DB]` (or `redis+unix:///PATH[?db=N]`).
    Standalone(String),
    /// A Redis Cluster, given by one or more of its nodes:
    /// `redis+cluster://[USER:PASSWORD@]HOST:PORT[,HOST:PORT…]`. Each node is a `redis://` URL.
    Cluster(Vec<String>),
}

impl RedisTarget {
    /// The store's name in logs and `/stats`.
    pub fn kind(&self) -> &'static str {
        match self {
            RedisTarget::Standalone(_) => "redis",
            RedisTarget::Cluster(_) => "redis-cluster",
        }
    }

    /// The target with any password replaced by `***`, for logs.
    pub fn redacted(&self) -> String {
        match self {
            RedisTarget::Standalone(url) => redact(url),
            RedisTarget::Cluster(nodes) => {
                let hosts: Vec<&str> =
                    nodes.iter().map(|n| n.rsplit('@').next().unwrap_or(n).trim_start_matches("redis://")).collect();
                format!("redis+cluster://{}", hosts.join(","))
            }
        }
    }
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => format!("{}***{}", &url[..scheme_end + 3], &url[at..]),
        _ => url.to_owned(),
    }
}

impl fmt::Display for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl FromStr for RedisTarget {
    type Err = String;

    fn from_str(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if let Some(rest) = url.strip_prefix("redis+cluster://") {
            return parse_cluster(rest);
        }
        if url.starts_with("rediss://") || url.starts_with("rediss+cluster://") {
            return Err("TLS (rediss://) is not supported: reach Redis over a trusted network or a tunnel".into());
        }
        if !(url.starts_with("redis://") || url.starts_with("redis+unix://") || url.starts_with("unix://")) {
            return Err(format!(
                "expected redis://HOST:PORT[/DB] or redis+cluster://HOST:PORT[,HOST:PORT…], got {:?}",
                redact(url)
            ));
        }
        check(url)?;
        Ok(RedisTarget::Standalone(url.to_owned()))
    }
}

fn parse_cluster(rest: &str) -> Result<RedisTarget, String> {
    let (auth, hosts) = match rest.rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    // One database only in a cluster: allow a bare trailing `/` and nothing else.
    let hosts = hosts.strip_suffix('/').unwrap_or(hosts);
    if hosts.contains('/') || hosts.contains('?') {
        return Err(
            "a redis+cluster:// URL takes no database or options: redis+cluster://HOST:PORT[,HOST:PORT…]".into()
        );
    }
    let mut nodes = Vec::new();
    for host in hosts.split(',').map(str::trim) {
        if host.is_empty() {
            return Err("redis+cluster:// needs at least one HOST:PORT, and no empty entries between commas".into());
        }
        let node = match auth {
            Some(auth) => format!("redis://{auth}@{host}"),
            None => format!("redis://{host}"),
        };
        check(&node)?;
        nodes.push(node);
    }
    Ok(RedisTarget::Cluster(nodes))
}

fn check(url: &str) -> Result<(), String> {
    url.into_connection_info().map(drop).map_err(|err| format!("invalid Redis URL {:?}: {err}", redact(url)))
}

/// Checks a `--redis-prefix`: 1 to 64 visible ASCII characters, without `{` or `}` (they would
/// change which part of each key Redis Cluster hashes).
pub fn parse_prefix(prefix: &str) -> Result<String, String> {
    let ok = (1..=64).contains(&prefix.len()) && prefix.bytes().all(|b| b.is_ascii_graphic() && b != b'{' && b != b'}');
    if ok {
        Ok(prefix.to_owned())
    } else {
        Err("a Redis key prefix is 1-64 visible ASCII characters without { or }".into())
    }
}

/// The Redis keys of one namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NsKeys {
    pub meta: String,
    pub entries: String,
    pub seq: String,
    pub keys: String,
}

impl NsKeys {
    pub fn new(prefix: &str, ns: &str) -> Self {
        let base = format!("{prefix}:{{{}}}", escape(ns));
        NsKeys {
            meta: format!("{base}:meta"),
            entries: format!("{base}:entries"),
            seq: format!("{base}:seq"),
            keys: format!("{base}:keys"),
        }
    }

    /// In the order the Lua scripts expect them as `KEYS`.
    pub fn all(&self) -> [&str; 4] {
        [&self.meta, &self.entries, &self.seq, &self.keys]
    }
}

/// The set of every namespace that was ever written (garbage collection walks it).
pub(crate) fn namespaces_key(prefix: &str) -> String {
    format!("{prefix}:namespaces")
}

/// The namespace as it appears inside the hash tag: `%`, `{` and `}` percent-encoded, and the
/// empty name as `%` (which no escaped name is), so the tag is never empty (Redis would then hash
/// the whole key and spread the namespace over slots).
fn escape(ns: &str) -> String {
    if ns.is_empty() {
        return "%".into();
    }
    let mut out = String::with_capacity(ns.len());
    for c in ns.chars() {
        match c {
            '%' => out.push_str("%25"),
            '{' => out.push_str("%7B"),
            '}' => out.push_str("%7D"),
            c => out.push(c),
        }
    }
    out
}

/// The exclusive upper bound (`ZRANGEBYLEX` syntax) of the keys starting with `prefix`: the
/// prefix with its last byte below 0xff incremented, or `+` when every key does.
pub(crate) fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut bytes = prefix.as_bytes().to_vec();
    while bytes.last() == Some(&0xff) {
        bytes.pop();
    }
    match bytes.last_mut() {
        None => b"+".to_vec(),
        Some(last) => {
            *last += 1;
            let mut bound = Vec::with_capacity(bytes.len() + 1);
            bound.push(b'(');
            bound.extend_from_slice(&bytes);
            bound
        }
    }
}

/// The inclusive lower bound (`ZRANGEBYLEX` syntax) of the keys at or after `from`.
pub(crate) fn lex_from(from: &str) -> Vec<u8> {
    let mut bound = Vec::with_capacity(from.len() + 1);
    bound.push(b'[');
    bound.extend_from_slice(from.as_bytes());
    bound
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash tag Redis Cluster hashes: between the first `{` and the next `}`.
    fn tag(key: &str) -> &str {
        let open = key.find('{').unwrap();
        let close = key[open + 1..].find('}').unwrap() + open + 1;
        &key[open + 1..close]
    }

    #[test]
    fn a_namespace_shares_one_tag_that_no_name_can_break() {
        for ns in ["default", "", "a}b", "{x}", "%7D", "%", "app:1"] {
            let keys = NsKeys::new("mfe", ns);
            let tags: Vec<&str> = keys.all().iter().map(|k| tag(k)).collect();
            assert!(tags.iter().all(|t| *t == tags[0] && !t.is_empty()), "{ns:?}: {tags:?}");
        }
        assert_eq!(NsKeys::new("mfe", "default").meta, "mfe:{default}:meta");
        // Distinct names, distinct keys (the escape is injective).
        let names = ["a}b", "a%7Db", "a%257Db", "", "%", "%25"];
        let metas: std::collections::HashSet<String> = names.iter().map(|n| NsKeys::new("p", n).meta).collect();
        assert_eq!(metas.len(), names.len());
    }

    #[test]
    fn urls_parse() {
        assert_eq!(
            "redis://127.0.0.1:6379/2".parse::<RedisTarget>().unwrap(),
            RedisTarget::Standalone("redis://127.0.0.1:6379/2".into())
        );
        assert_eq!(
            "redis+cluster://u:pw@10.0.0.1:7000,10.0.0.2:7001/".parse::<RedisTarget>().unwrap(),
            RedisTarget::Cluster(vec!["redis://u:pw@10.0.0.1:7000".into(), "redis://u:pw@10.0.0.2:7001".into()])
        );
        let cluster: RedisTarget = "redis+cluster://u:pw@a:1,b:2".parse().unwrap();
        assert_eq!((cluster.kind(), cluster.to_string()), ("redis-cluster", "redis+cluster://a:1,b:2".into()));
        assert_eq!(RedisTarget::Standalone("redis://:secret@h:1/0".into()).to_string(), "redis://***@h:1/0");
        for bad in
            ["", "http://x", "rediss://h:1", "redis+cluster://", "redis+cluster://a:1,,b:2", "redis+cluster://a:1/3"]
        {
            assert!(bad.parse::<RedisTarget>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn prefixes_are_checked() {
        assert_eq!(parse_prefix("mfe").unwrap(), "mfe");
        assert!(parse_prefix("prod:cache-1").is_ok());
        for bad in ["", "a{b", "a}", "a b", &"x".repeat(65)] {
            assert!(parse_prefix(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn prefix_bounds() {
        assert_eq!(prefix_end(""), b"+");
        assert_eq!(prefix_end("ab"), b"(ac");
        assert_eq!(prefix_end("s:"), b"(s;");
        assert_eq!(lex_from("k"), b"[k");
    }
}

//! At start: may a Redis master evict this server's keys?
//!
//! A Redis at its `maxmemory` with an `allkeys-*` policy deletes keys to make room, this server's
//! included, so acknowledged writes vanish without an error (364 of 400 in a test with
//! `allkeys-lru`). The `volatile-*` policies only evict keys that have a TTL, and this server sets
//! none, so they are safe: a full Redis then refuses writes (`OOM`), which are answered `503`.
//! `noeviction` is what to run. The policy is read once, at start (`CONFIG GET`; on a cluster from
//! every master), so a later `CONFIG SET` is not seen.
use std::collections::HashMap;

use ::redis::{FromRedisValue, Value};

use super::StoreError;

/// What a `maxmemory-policy` may do to this server's keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Eviction {
    /// `noeviction`: a full Redis refuses writes.
    Never,
    /// `volatile-*`: only keys with a TTL, and this server sets none.
    KeysWithTtl,
    /// `allkeys-*`, or a policy this server does not know: any key.
    AnyKey,
}

/// What `policy` may evict.
pub(crate) fn eviction(policy: &str) -> Eviction {
    let policy = policy.trim().to_ascii_lowercase();
    if policy == "noeviction" {
        Eviction::Never
    } else if policy.starts_with("volatile-") {
        Eviction::KeysWithTtl
    } else {
        Eviction::AnyKey
    }
}

/// Judges each master's answer to `CONFIG GET maxmemory-policy` (its name, and the answer or why
/// there is none): an evicting master is an error unless `allow`, then a warning; a master whose
/// policy cannot be read (`CONFIG` renamed away on a managed Redis, a timeout) is a warning.
pub(crate) fn judge(answers: Vec<(String, Result<Value, String>)>, allow: bool) -> Result<(), StoreError> {
    for (node, answer) in answers {
        let policy = match answer.and_then(policy_in) {
            Ok(policy) => policy,
            Err(why) => {
                tracing::warn!(
                    "could not check the maxmemory-policy of Redis {node} ({why}): unless it is noeviction \
                     (or volatile-*), Redis may evict this server's keys when full and silently lose \
                     acknowledged writes"
                );
                continue;
            }
        };
        match eviction(&policy) {
            Eviction::Never => {}
            Eviction::KeysWithTtl => tracing::info!(
                "Redis {node} runs with maxmemory-policy {policy}: it evicts only keys with a TTL, and this \
                 server sets none; a full Redis refuses writes (503)"
            ),
            Eviction::AnyKey if allow => tracing::warn!(
                "Redis {node} runs with maxmemory-policy {policy}: when full it may evict this server's keys \
                 and silently lose acknowledged writes; starting anyway (--redis-allow-eviction)"
            ),
            Eviction::AnyKey => return Err(StoreError::EvictingRedis { node, policy }),
        }
    }
    Ok(())
}

fn policy_in(answer: Value) -> Result<String, String> {
    let config = HashMap::<String, String>::from_redis_value(answer).map_err(|err| err.to_string())?;
    config.get("maxmemory-policy").cloned().ok_or_else(|| "CONFIG GET did not answer it".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(policy: &str) -> Result<Value, String> {
        Ok(Value::Array(vec![
            Value::BulkString(b"maxmemory-policy".to_vec()),
            Value::BulkString(policy.as_bytes().to_vec()),
        ]))
    }

    #[test]
    fn only_policies_that_may_evict_any_key_are_refused() {
        assert_eq!(eviction("noeviction"), Eviction::Never);
        for policy in ["volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"] {
            assert_eq!(eviction(policy), Eviction::KeysWithTtl, "{policy}");
        }
        for policy in ["allkeys-lru", "allkeys-lfu", "allkeys-random", "ALLKEYS-LRU", "a-future-policy"] {
            assert_eq!(eviction(policy), Eviction::AnyKey, "{policy}");
        }
    }

    #[test]
    fn the_first_evicting_master_is_named_unless_allowed() {
        let answers = || {
            vec![
                ("a:1".to_owned(), answer("noeviction")),
                ("b:2".to_owned(), Err("unknown command 'CONFIG'".to_owned())),
                ("c:3".to_owned(), answer("volatile-lru")),
                ("d:4".to_owned(), answer("allkeys-lfu")),
            ]
        };
        match judge(answers(), false) {
            Err(StoreError::EvictingRedis { node, policy }) => {
                assert_eq!((node.as_str(), policy.as_str()), ("d:4", "allkeys-lfu"))
            }
            other => panic!("{other:?}"),
        }
        assert!(judge(answers(), true).is_ok());
        assert!(
            judge(vec![("a:1".into(), Ok(Value::Array(vec![])))], false).is_ok(),
            "unreadable: warned, not refused"
        );
    }
}

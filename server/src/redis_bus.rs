//! Wake-ups between server instances that share one Redis: each instance publishes "namespace
//! `ns` is at cursor `n`" on one pub/sub channel after each write it commits, and wakes its own
//! event streams of `ns` on each message from another instance.
//!
//! Pub/sub loses messages while a connection is down, and that is fine here: a message carries
//! no data, only a reason to read the store (see [`crate::feed`]), and after a reconnect every
//! stream is woken to re-read anyway. Ordering and completeness come from the store's sequence.
//! In a Redis Cluster, classic `PUBLISH` reaches subscribers on every node, so one connection to
//! any node serves both directions.
use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;

use crate::feed::{Announcement, Feed};
use crate::store::redis::RedisTarget;

const RECONNECT_MIN: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(5);

/// The channel of a deployment (its `--redis-prefix`).
pub fn channel(prefix: &str) -> String {
    format!("{prefix}:changes")
}

/// One message: `INSTANCE CURSOR NAMESPACE` (the namespace last: it may contain spaces).
fn encode(instance: &str, cursor: u64, ns: &str) -> String {
    format!("{instance} {cursor} {ns}")
}

fn decode(message: &str) -> Option<(&str, u64, &str)> {
    let mut parts = message.splitn(3, ' ');
    let instance = parts.next()?;
    let cursor = parts.next()?.parse().ok()?;
    Some((instance, cursor, parts.next()?))
}

/// The node the bus talks to: the standalone server, or the first node given for a cluster.
fn node_url(target: &RedisTarget) -> Option<&str> {
    match target {
        RedisTarget::Standalone(url) => Some(url),
        RedisTarget::Cluster(nodes) => nodes.first().map(String::as_str),
    }
}

/// Attaches the bus to `feed` and runs it until the returned tasks are aborted.
pub fn spawn(target: &RedisTarget, prefix: &str, feed: Arc<Feed>) -> Vec<JoinHandle<()>> {
    let Some(url) = node_url(target) else { return Vec::new() };
    let client = match redis::Client::open(url) {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(error = %err, "Redis bus: bad URL; instances will not wake each other's event streams");
            return Vec::new();
        }
    };
    let instance = instance_id();
    let channel = channel(prefix);
    let (outbox, announcements) = mpsc::unbounded_channel();
    feed.attach(outbox);
    vec![
        tokio::spawn(publish(client.clone(), channel.clone(), instance.clone(), announcements)),
        tokio::spawn(subscribe(client, channel, instance, feed)),
    ]
}

/// A random id per process, so an instance ignores its own messages.
fn instance_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

async fn publish(
    client: redis::Client,
    channel: String,
    instance: String,
    mut announcements: mpsc::UnboundedReceiver<Announcement>,
) {
    let mut conn = None;
    while let Some((ns, cursor)) = announcements.recv().await {
        // Only the newest cursor per namespace matters: fold a backlog into one message each.
        let mut latest = vec![(ns, cursor)];
        while let Ok((ns, cursor)) = announcements.try_recv() {
            match latest.iter_mut().find(|(n, _)| *n == ns) {
                Some(entry) => entry.1 = entry.1.max(cursor),
                None => latest.push((ns, cursor)),
            }
        }
        if conn.is_none() {
            conn = client.get_multiplexed_async_connection().await.ok();
        }
        let Some(c) = conn.as_mut() else {
            // Redis is down: other instances' streams catch up at their next heartbeat.
            continue;
        };
        for (ns, cursor) in latest {
            let sent: redis::RedisResult<i64> = c.publish(&channel, encode(&instance, cursor, &ns)).await;
            if let Err(err) = sent {
                tracing::debug!(error = %err, "Redis bus: publish failed");
                conn = None;
                break;
            }
        }
    }
}

async fn subscribe(client: redis::Client, channel: String, instance: String, feed: Arc<Feed>) {
    let mut delay = RECONNECT_MIN;
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => {
                if let Err(err) = pubsub.subscribe(&channel).await {
                    tracing::warn!(error = %err, "Redis bus: subscribe failed");
                } else {
                    delay = RECONNECT_MIN;
                    // Anything announced while this instance was not listening is read now.
                    feed.wake_all();
                    let mut messages = pubsub.on_message();
                    while let Some(message) = messages.next().await {
                        let Ok(text) = message.get_payload::<String>() else { continue };
                        match decode(&text) {
                            Some((from, cursor, ns)) if from != instance => feed.notify(ns, cursor),
                            Some(_) => {}
                            None => tracing::debug!(message = %text, "Redis bus: ignored a malformed message"),
                        }
                    }
                    tracing::warn!("Redis bus: subscription lost; reconnecting");
                }
            }
            Err(err) => tracing::debug!(error = %err, "Redis bus: cannot connect"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(RECONNECT_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_namespaces_may_contain_spaces() {
        let text = encode("abc", 42, "team one");
        assert_eq!(decode(&text), Some(("abc", 42, "team one")));
        assert_eq!(decode("abc x ns"), None);
        assert_eq!(decode("abc 1"), None);
        assert_ne!(instance_id(), instance_id());
    }
}

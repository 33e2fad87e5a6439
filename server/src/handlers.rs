//! The endpoints of the seed protocol (the README's wire protocol), plus `/healthz` and the JSON 404. (The
//! coordination endpoints are in [`crate::invalidate`] and [`crate::inspect`].)
//!
//! `/sync` answers with every entry whose latest accepted write has a sequence number above
//! `lastSync` (whatever the write's own timestamp), once per entry at its latest write. Echo
//! policy: the request's changes are merged first, and those that won are *not* sent back (the
//! client has them); writes accepted from anyone else meanwhile are. A change that lost is
//! answered with what won for its key (unless the delta carries that key already), so the
//! client converges even if it already had seen the winner or the winner is a clear's tombstone.
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use mfe_shared_cache_core::message::encode_sync_answer;
use mfe_shared_cache_core::wire::{Change, ClearRequest, RemoveRequest, SetRequest, SyncRequest};
use mfe_shared_cache_core::{Entry, MergeOutcome, Stamp};
use serde::{Deserialize, Serialize};

use crate::auth::Namespace;
use crate::body::JsonBody;
use crate::errors::ApiError;
use crate::input::{clear_epoch, write_from_change};
use crate::server::AppState;
use crate::store::{DeltaQuery, OpReport, Rejection, StoreError, WriteOp};

/// How long `/healthz` waits for the store's answer before it says the store is unavailable.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// Stop adding updates to one `/sync` answer past this many bytes of keys and values.
pub const MAX_UPDATE_BYTES: usize = 8 << 20;

/// The `/sync` answer: the seed's `{ updates, timestamp }` and the optional extensions `cursor`
/// (the same cursor, under the protocol's own name), `clear` (the namespace's clear epoch, when
/// it was accepted after `lastSync`), `more` (the answer hit a size limit: sync again from
/// `timestamp` for the rest), `rejected` (changes of the request that were not stored although
/// no newer write of their key beat them, with why) and `now` (this server's clock, from which
/// clients learn how far off theirs is), in the core's encoding, the one its client decodes.
fn sync_reply<'a>(
    updates: impl Iterator<Item = (&'a str, &'a Entry)>,
    cursor: u64,
    clear: Option<&Stamp>,
    more: bool,
    rejected: &'a [(String, Rejection)],
    now_ms: u64,
) -> String {
    let rejected = rejected.iter().map(|(key, why)| (key.as_str(), why.reason()));
    encode_sync_answer(updates, cursor, clear, more, rejected, now_ms)
}

/// The answer of `/set`, `/remove` and `/clear`.
#[derive(Debug, Serialize, Deserialize)]
pub struct WriteReply {
    /// Always true: a write that lost to a newer one is not an error.
    pub success: bool,
    /// The namespace's cursor after the write (informational: `lastSync` must come from `/sync`,
    /// or writes accepted before this one from others would be skipped).
    pub timestamp: u64,
    /// Extension: whether the write is now what the server holds (it won, or was already there).
    pub accepted: bool,
}

/// `POST /api/cache/sync`
pub async fn sync(
    State(app): State<AppState>,
    Extension(Namespace(ns)): Extension<Namespace>,
    JsonBody(request): JsonBody<SyncRequest>,
) -> Result<Response, ApiError> {
    if request.changes.len() > app.limits.max_batch {
        return Err(ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!("{} changes in one sync; at most {} are accepted", request.changes.len(), app.limits.max_batch),
        ));
    }
    let now = app.now_ms();
    // Validate the whole batch before touching the store: one bad change rejects it all, and
    // the error names it, so the client can set it aside and send the others.
    let writes = request
        .changes
        .into_iter()
        .enumerate()
        .map(|(i, change)| {
            let key = change.key.clone();
            write_from_change(change).map_err(|err| err.at_change(i, Some(key)))
        })
        .collect::<Result<Vec<_>, _>>()?;

    let mut last_sync = request.last_sync;
    let mut own = HashSet::new();
    let mut lost: HashMap<String, Entry> = HashMap::new();
    let mut rejected: Vec<(String, Rejection)> = Vec::new();
    if !writes.is_empty() {
        let keys: Vec<String> = writes.iter().map(|(key, _)| key.clone()).collect();
        let report = app.store.apply(&ns, WriteOp::Changes(writes), now).await?;
        // Judge a cursor from other data against the namespace as it was before this request
        // wrote (its writes may move the cursor past the client's).
        if last_sync > report.cursor_before {
            last_sync = 0;
        }
        let own_seqs: HashSet<u64> = report.changes.iter().filter_map(|c| c.seq).collect();
        for (key, result) in keys.into_iter().zip(report.changes) {
            if let Some(why) = result.rejected {
                rejected.push((key.clone(), why));
            }
            if result.seq.is_some() {
                // A later change of the same key in this batch won: nothing to correct.
                lost.remove(&key);
            } else if let Some(winner) = result.winner.filter(|w| !own_seqs.contains(&w.seq)) {
                lost.insert(key, winner.entry);
            }
        }
        own = own_seqs;
    }

    let query = DeltaQuery { last_sync, exclude: own, max_rows: app.limits.max_updates, max_bytes: MAX_UPDATE_BYTES };
    let delta = app.store.delta(&ns, query).await?;
    for row in &delta.rows {
        lost.remove(&row.key);
    }
    let mut lost: Vec<_> = lost.into_iter().collect();
    lost.sort_by(|a, b| a.0.cmp(&b.0));
    let updates = delta
        .rows
        .iter()
        .map(|row| (row.key.as_str(), &row.stored.entry))
        .chain(lost.iter().map(|(key, entry)| (key.as_str(), entry)));
    app.metrics.ns(&ns).sync_updates(delta.rows.len() + lost.len());
    let body = sync_reply(updates, delta.cursor, delta.epoch.as_ref(), delta.more, &rejected, app.now_ms());
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `POST /api/cache/set`
pub async fn set(
    State(app): State<AppState>,
    Extension(Namespace(ns)): Extension<Namespace>,
    JsonBody(request): JsonBody<SetRequest>,
) -> Result<Json<WriteReply>, ApiError> {
    let change = Change {
        key: request.key,
        value: Some(request.value),
        ttl: request.ttl,
        timestamp: request.timestamp,
        deleted: false,
        node: request.node,
        written_at: None,
    };
    write_one(&app, &ns, change).await
}

/// `POST /api/cache/remove`
pub async fn remove(
    State(app): State<AppState>,
    Extension(Namespace(ns)): Extension<Namespace>,
    JsonBody(request): JsonBody<RemoveRequest>,
) -> Result<Json<WriteReply>, ApiError> {
    let change = Change {
        key: request.key,
        value: None,
        ttl: 0.0,
        timestamp: request.timestamp,
        deleted: true,
        node: request.node,
        written_at: None,
    };
    write_one(&app, &ns, change).await
}

async fn write_one(app: &AppState, ns: &str, change: Change) -> Result<Json<WriteReply>, ApiError> {
    let now = app.now_ms();
    let write = write_from_change(change)?;
    let report = app.store.apply(ns, WriteOp::Changes(vec![write]), now).await?;
    let accepted = report.changes.first().is_some_and(|c| {
        matches!(c.outcome, MergeOutcome::Applied | MergeOutcome::Duplicate) && c.rejected.is_none()
    });
    Ok(reply(&report, accepted))
}

/// `POST /api/cache/clear`
pub async fn clear(
    State(app): State<AppState>,
    Extension(Namespace(ns)): Extension<Namespace>,
    JsonBody(request): JsonBody<ClearRequest>,
) -> Result<Json<WriteReply>, ApiError> {
    let now = app.now_ms();
    let epoch = clear_epoch(&request)?;
    let report = app.store.apply(&ns, WriteOp::Clear(epoch), now).await?;
    let accepted =
        report.clear.as_ref().is_some_and(|c| matches!(c.outcome, MergeOutcome::Applied | MergeOutcome::Duplicate));
    Ok(reply(&report, accepted))
}

fn reply(report: &OpReport, accepted: bool) -> Json<WriteReply> {
    Json(WriteReply { success: true, timestamp: report.cursor, accepted })
}

/// `GET /healthz`: `200 { status: "ok", store }` while the store can take writes, else `503
/// { status: "unavailable", store, reason }` (with the API's `error` and `message`, so it reads
/// as any other error). How the store knows: [`crate::store::Store::health`].
pub async fn health(State(app): State<AppState>) -> Response {
    let store = app.store.kind();
    let no_store = [(header::CACHE_CONTROL, "no-store")];
    // A store stuck on a hung disk or network is as unavailable as one that fails.
    let answer = tokio::time::timeout(HEALTH_TIMEOUT, app.store.health()).await.unwrap_or_else(|_| {
        Err(StoreError::Unavailable(format!("the store did not answer within {HEALTH_TIMEOUT:?}")))
    });
    match answer {
        Ok(()) => (no_store, Json(serde_json::json!({ "status": "ok", "store": store }))).into_response(),
        Err(err) => {
            let reason = err.to_string();
            tracing::warn!(%reason, "health check: the store cannot take writes");
            let body = serde_json::json!({
                "status": "unavailable",
                "store": store,
                "reason": reason,
                "error": "storage_error",
                "message": "the cache store cannot take writes now",
            });
            (StatusCode::SERVICE_UNAVAILABLE, no_store, Json(body)).into_response()
        }
    }
}

/// Unknown routes under `/api` (and everywhere when no static directory is served).
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sync_reply_is_a_superset_of_the_seed_response() {
        let entry = Entry::value(Stamp::new(5, "n"), 2000, r#"{"a":1}"#);
        let text = sync_reply([("k", &entry)].into_iter(), 9, Some(&Stamp::new(4, "n")), false, &[], 77);
        assert_eq!(
            text,
            r#"{"updates":[{"key":"k","value":{"a":1},"ttl":2,"deleted":false,"timestamp":5,"node":"n"}],"timestamp":9,"cursor":9,"clear":{"timestamp":4,"node":"n"},"now":77}"#
        );
        assert!(sync_reply(std::iter::empty(), 1, None, true, &[], 2).ends_with(r#""cursor":1,"more":true,"now":2}"#));
        let rejected = [("k\"".to_owned(), Rejection::BelowFloor)];
        let with_rejected = sync_reply(std::iter::empty(), 1, None, false, &rejected, 2);
        let parsed: serde_json::Value = serde_json::from_str(&with_rejected).unwrap();
        assert_eq!(parsed["rejected"][0]["key"], "k\"");
        assert_eq!(parsed["rejected"][0]["reason"], Rejection::BelowFloor.reason());
        let seed: mfe_shared_cache_core::wire::SyncResponse = serde_json::from_str(&text).unwrap();
        assert_eq!(seed.timestamp, 9);
        assert_eq!(seed.updates[0].value.as_ref().unwrap().get(), r#"{"a":1}"#);
    }
}

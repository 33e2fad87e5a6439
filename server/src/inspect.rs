//! Reading a namespace without syncing it: `GET /api/cache/entries` (live values by key prefix,
//! with an ETag and `304 Not Modified`) and `GET /api/cache/stats` (counts and counters).
//!
//! # ETags
//! An `/entries` answer is a function of the namespace's content and the query, and the content
//! has a version: the cursor, which moves on every change of what the namespace holds (see
//! [`crate::store`]). The only other thing that changes an answer is time: a value in it expires.
//! So the strong ETag is `"<cursor>-<first expiry in the answer>-<fingerprint>"` (hex; the
//! fingerprint hashes the namespace, the query and those two numbers), and `If-None-Match` is
//! checked against the current cursor and the clock alone: a 304 costs one small read, no scan.
//! Any accepted write in the namespace moves the cursor, so a write to a key outside the prefix
//! changes the ETag too (the answer is then sent again, unchanged): exact per-prefix versions
//! would need a version per key range, and a spurious 200 is always correct.
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use mfe_shared_cache_core::{json, wire_text, MAX_KEY_BYTES};
use serde_json::json as json_value;

use crate::auth::Namespace;
use crate::errors::ApiError;
use crate::handlers::MAX_UPDATE_BYTES;
use crate::metrics::Endpoint;
use crate::server::AppState;
use crate::store::EntriesQuery;

/// Most entries in one `/entries` answer (the default `limit`).
pub const MAX_ENTRIES_PAGE: usize = 1000;
/// Most keys, live or not, one `/entries` answer looks at: a range full of tombstones and
/// expired values is paged through too, instead of being scanned whole in one request.
pub const MAX_EXAMINED: usize = 10_000;

/// The query of `/entries`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntriesParams {
    /// Keys starting with this ("" = all).
    pub prefix: String,
    /// Keys after this one (the `after` of the previous page).
    pub after: Option<String>,
    /// At most this many entries (1..=[`MAX_ENTRIES_PAGE`]).
    pub limit: usize,
}

impl EntriesParams {
    /// Reads `prefix`, `after` and `limit` from the query string; other parameters are ignored
    /// (cache busters such as `_=123`), a repeated one is an error.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let mut params = EntriesParams { limit: MAX_ENTRIES_PAGE, ..EntriesParams::default() };
        let mut seen: Vec<&str> = Vec::new();
        for (name, value) in pairs {
            let name = name.as_str();
            if !matches!(name, "prefix" | "after" | "limit") {
                continue;
            }
            if seen.contains(&name) {
                return Err(ApiError::bad_request("invalid_request", format!("{name} is given more than once")));
            }
            seen.push(name);
            match name {
                "limit" => match value.parse::<usize>() {
                    Ok(n) if (1..=MAX_ENTRIES_PAGE).contains(&n) => params.limit = n,
                    _ => {
                        let message = format!("limit must be a whole number in 1..={MAX_ENTRIES_PAGE}");
                        return Err(ApiError::bad_request("invalid_request", message));
                    }
                },
                _ if value.len() > MAX_KEY_BYTES => {
                    return Err(ApiError::bad_request(
                        "invalid_request",
                        format!("{name} is longer than a key can be ({MAX_KEY_BYTES} bytes)"),
                    ));
                }
                "prefix" => params.prefix.clone_from(value),
                _ => params.after = Some(value.clone()),
            }
        }
        Ok(params)
    }
}

/// FNV-1a, 64 bits: stable across builds and processes (so tags survive a restart and agree
/// between instances), and enough to tell queries apart; the tag guards nothing.
fn fingerprint(ns: &str, params: &EntriesParams, cursor: u64, expiry: u64) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    // Length-prefixed fields, so no two different queries feed the same bytes.
    let after = params.after.as_deref();
    for field in [Some("entries-v1"), Some(ns), Some(params.prefix.as_str()), after] {
        match field {
            Some(text) => {
                eat(&[1]);
                eat(&(text.len() as u64).to_le_bytes());
                eat(text.as_bytes());
            }
            None => eat(&[0]),
        }
    }
    for n in [params.limit as u64, cursor, expiry] {
        eat(&n.to_le_bytes());
    }
    hash
}

/// The strong ETag of the answer to `params` in `ns` at `cursor`, whose first entry to expire
/// does so at `next_expiry`.
pub fn etag(ns: &str, params: &EntriesParams, cursor: u64, next_expiry: Option<u64>) -> String {
    let expiry = next_expiry.unwrap_or(0);
    format!("\"{cursor:x}-{expiry:x}-{:016x}\"", fingerprint(ns, params, cursor, expiry))
}

/// Whether a tag from `If-None-Match` still names the current answer: it was issued for this
/// query at the current cursor, and nothing in that answer has expired since.
pub fn still_current(tag: &str, ns: &str, params: &EntriesParams, cursor: u64, now_ms: u64) -> bool {
    // If-None-Match compares weakly (RFC 9110 §13.1.2): a `W/` prefix added on the way is fine.
    let tag = tag.trim();
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    let Some(inner) = tag.strip_prefix('"').and_then(|t| t.strip_suffix('"')) else { return false };
    let mut parts = inner.split('-').map(|part| u64::from_str_radix(part, 16).ok());
    let (Some(Some(tag_cursor)), Some(Some(expiry)), Some(Some(hash)), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    tag_cursor == cursor && (expiry == 0 || now_ms < expiry) && hash == fingerprint(ns, params, cursor, expiry)
}

/// The tags of every `If-None-Match` header (a list each), or `None` without one.
fn if_none_match(headers: &HeaderMap) -> Option<Vec<String>> {
    let mut tags = Vec::new();
    let mut present = false;
    for value in headers.get_all(IF_NONE_MATCH) {
        present = true;
        // A value that is not visible ASCII matches nothing (and is not an error).
        if let Ok(text) = value.to_str() {
            tags.extend(text.split(',').map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()));
        }
    }
    present.then_some(tags)
}

fn not_modified(tag: &str) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    insert_validators(&mut response, tag);
    response
}

fn insert_validators(response: &mut Response, tag: &str) {
    let headers = response.headers_mut();
    // Our tags are hex and quotes: always a valid header value.
    if let Ok(value) = HeaderValue::from_str(tag) {
        headers.insert(ETAG, value);
    }
    // Caches may keep the answer but must ask again (with If-None-Match) before using it.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
}

/// `GET /api/cache/entries?prefix=P&after=K&limit=N`
pub async fn entries(
    State(app): State<AppState>,
    Extension(Namespace(ns)): Extension<Namespace>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(pairs) = query.map_err(|rejection| ApiError::bad_request("invalid_request", rejection.body_text()))?;
    let params = EntriesParams::from_pairs(&pairs)?;
    let metrics = app.metrics.ns(&ns);
    let presented = if_none_match(&headers);
    let now = app.now_ms();
    if let Some(tags) = &presented {
        // The cheap check: one read of the cursor, no scan.
        let cursor = app.store.cursor(&ns).await?;
        if let Some(tag) = tags.iter().find(|tag| still_current(tag, &ns, &params, cursor, now)) {
            metrics.entries_answer(true);
            return Ok(not_modified(tag));
        }
    }
    let query = EntriesQuery {
        prefix: params.prefix.clone(),
        after: params.after.clone(),
        now_ms: now,
        max_rows: params.limit,
        max_bytes: MAX_UPDATE_BYTES,
        max_examined: MAX_EXAMINED,
    };
    let page = app.store.entries(&ns, query).await?;
    let tag = etag(&ns, &params, page.cursor, page.next_expiry);
    // `If-None-Match: *` matches whatever the answer is. (A specific tag that failed the check
    // above cannot match now: the cursor only grows.)
    if presented.is_some_and(|tags| tags.iter().any(|t| t == "*")) {
        metrics.entries_answer(true);
        return Ok(not_modified(&tag));
    }
    metrics.entries_answer(false);
    let mut body = String::from("{\"entries\":[");
    for (i, row) in page.rows.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        wire_text::write_change(&mut body, &row.key, &row.stored.entry);
    }
    body.push_str("],\"cursor\":");
    body.push_str(&page.cursor.to_string());
    match &page.next_after {
        Some(after) => {
            body.push_str(",\"more\":true,\"after\":");
            json::write_string(&mut body, after);
        }
        None => body.push_str(",\"more\":false"),
    }
    body.push('}');
    let mut response = ([(CONTENT_TYPE, "application/json")], body).into_response();
    insert_validators(&mut response, &tag);
    Ok(response)
}

/// `GET /api/cache/stats`
pub async fn stats(
    State(app): State<AppState>,
    Extension(Namespace(ns)): Extension<Namespace>,
) -> Result<Response, ApiError> {
    let now = app.now_ms();
    let metrics = app.metrics.ns(&ns);
    // The census is a scan of the namespace; it is reused while the cursor has not moved and no
    // value it counted as live has expired, so polling an idle namespace costs one small read.
    let cursor = app.store.cursor(&ns).await?;
    let (census, cached) = match metrics.cached_census(cursor, now) {
        Some(census) => (census, true),
        None => {
            let census = app.store.census(&ns, now).await?;
            metrics.keep_census(&census);
            (census, false)
        }
    };
    let counts = metrics.counts();
    let per_endpoint = |values: &[u64]| {
        Endpoint::ALL
            .iter()
            .zip(values)
            .map(|(e, n)| (e.name().to_owned(), json_value!(n)))
            .collect::<serde_json::Map<_, _>>()
    };
    let revalidations = counts.entries_full + counts.entries_not_modified;
    let body = json_value!({
        "namespace": &*ns,
        "store": app.store.kind(),
        "cursor": census.cursor,
        "entries": census.live,
        "tombstones": census.tombstones,
        "expired": census.expired,
        "nextExpiry": census.next_expiry,
        "censusCached": cached,
        "requests": per_endpoint(&counts.requests),
        "errors": per_endpoint(&counts.errors),
        "syncUpdatesServed": counts.sync_updates_served,
        "keysInvalidated": counts.keys_invalidated,
        "entriesAnswers": {
            "full": counts.entries_full,
            "notModified": counts.entries_not_modified,
            "notModifiedRate": (revalidations > 0).then(|| counts.entries_not_modified as f64 / revalidations as f64),
        },
        "startedAt": app.metrics.started_ms(),
        "now": now,
    });
    let mut response = axum::Json(body).into_response();
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
    }

    #[test]
    fn params_parse_and_refuse() {
        let p = EntriesParams::from_pairs(&pairs(&[("prefix", "stores:"), ("limit", "5"), ("_", "1")])).unwrap();
        assert_eq!(p, EntriesParams { prefix: "stores:".into(), after: None, limit: 5 });
        assert_eq!(EntriesParams::from_pairs(&[]).unwrap().limit, MAX_ENTRIES_PAGE);
        for bad in [
            pairs(&[("limit", "0")]),
            pairs(&[("limit", "1001")]),
            pairs(&[("limit", "x")]),
            pairs(&[("limit", "-1")]),
            pairs(&[("prefix", "a"), ("prefix", "b")]),
        ] {
            assert_eq!(EntriesParams::from_pairs(&bad).unwrap_err().code, "invalid_request", "{bad:?}");
        }
        let long = "k".repeat(MAX_KEY_BYTES + 1);
        assert!(EntriesParams::from_pairs(&pairs(&[("after", &long)])).is_err());
    }

    #[test]
    fn tags_name_one_answer() {
        let p = EntriesParams { prefix: "a".into(), after: None, limit: 10 };
        let tag = etag("ns", &p, 1000, Some(5000));
        assert!(still_current(&tag, "ns", &p, 1000, 4999));
        assert!(still_current(&format!("W/{tag}"), "ns", &p, 1000, 0));
        assert!(!still_current(&tag, "ns", &p, 1000, 5000), "an entry expired");
        assert!(!still_current(&tag, "ns", &p, 1001, 0), "the namespace changed");
        assert!(!still_current(&tag, "other", &p, 1000, 0), "another namespace");
        let q = EntriesParams { prefix: "ab".into(), ..p.clone() };
        assert!(!still_current(&tag, "ns", &q, 1000, 0), "another prefix");
        let r = EntriesParams { after: Some(String::new()), ..p.clone() };
        assert!(!still_current(&tag, "ns", &r, 1000, 0), "after = \"\" is not no after");
        let forever = etag("ns", &p, 7, None);
        assert!(still_current(&forever, "ns", &p, 7, u64::MAX));
        for junk in ["", "*", "\"\"", "\"1-2\"", "\"1-2-3-4\"", "\"x-0-0\"", "1-0-0", &tag[1..]] {
            assert!(!still_current(junk, "ns", &p, 1, 0), "{junk:?}");
        }
    }
}

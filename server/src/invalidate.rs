//! `POST /api/cache/invalidate` `{ "patterns": ["stores:*", "exact-key"] }`: the server removes
//! every live value whose key matches a pattern (the core's [`KeyPattern`] syntax: `*`, `?`, `\`
//! escapes), writing ordinary tombstones that win over those values under the merge rule. They
//! take sequence numbers like any accepted write, so every client, the caller included, drops
//! the keys at its next `/sync`; and an older write of such a key that arrives later loses to its
//! tombstone, exactly as after a remove.
use axum::extract::State;
use axum::{Extension, Json};
use mfe_shared_cache_core::KeyPattern;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::auth::Namespace;
use crate::body::{Diagnose, JsonBody};
use crate::errors::ApiError;
use crate::server::AppState;
use crate::store::WriteOp;

/// Most patterns in one request.
pub const MAX_PATTERNS: usize = 100;

/// The request body.
#[derive(Debug, Deserialize)]
pub struct InvalidateRequest {
    /// Key patterns; a key matching any of them is invalidated.
    pub patterns: Vec<String>,
}

impl Diagnose for InvalidateRequest {
    fn diagnose(o: &Map<String, Value>) -> Option<ApiError> {
        match o.get("patterns") {
            None => Some(ApiError::bad_request("invalid_request", "patterns is required: an array of key patterns")),
            Some(Value::Array(items)) => items.iter().position(|item| !item.is_string()).map(|i| {
                ApiError::bad_request("invalid_pattern", format!("patterns[{i}] must be a string (a key pattern)"))
            }),
            Some(_) => Some(ApiError::bad_request("invalid_request", "patterns must be an array of key patterns")),
        }
    }
}

/// The answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct InvalidateReply {
    /// Always true on a 200.
    pub success: bool,
    /// How many keys were tombstoned (keys with a live value matching a pattern; each counted
    /// once however many patterns it matches).
    pub invalidated: usize,
    /// The namespace's cursor after the invalidation (informational, like `/set`'s: `lastSync`
    /// must come from `/sync`).
    pub timestamp: u64,
}

/// Parses and checks the patterns: 1 to [`MAX_PATTERNS`] of them, each valid.
pub fn parse_patterns(patterns: &[String]) -> Result<Vec<KeyPattern>, ApiError> {
    if patterns.is_empty() {
        return Err(ApiError::bad_request("invalid_request", "patterns must hold at least one key pattern"));
    }
    if patterns.len() > MAX_PATTERNS {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!("{} patterns in one request; at most {MAX_PATTERNS} are accepted", patterns.len()),
        ));
    }
    patterns
        .iter()
        .enumerate()
        .map(|(i, text)| {
            KeyPattern::parse(text)
                .map_err(|err| ApiError::bad_request("invalid_pattern", format!("patterns[{i}]: {err}")))
        })
        .collect()
}

/// `POST /api/cache/invalidate`
pub async fn invalidate(
    State(app): State<AppState>,
    Extension(Namespace(ns)): Extension<Namespace>,
    JsonBody(request): JsonBody<InvalidateRequest>,
) -> Result<Json<InvalidateReply>, ApiError> {
    let patterns = parse_patterns(&request.patterns)?;
    let now = app.now_ms();
    let report = app.store.apply(&ns, WriteOp::Invalidate(patterns), now).await?;
    app.metrics.ns(&ns).invalidated(report.invalidated);
    if report.invalidated > 0 {
        tracing::info!(namespace = %ns, patterns = request.patterns.len(), keys = report.invalidated, "invalidated");
    }
    Ok(Json(InvalidateReply { success: true, invalidated: report.invalidated, timestamp: report.cursor }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::parse;

    fn code(body: &str) -> &'static str {
        match parse::<InvalidateRequest>(body.as_bytes()).and_then(|r| parse_patterns(&r.patterns)) {
            Ok(_) => "ok",
            Err(err) => err.code,
        }
    }

    #[test]
    fn bad_bodies_have_codes() {
        assert_eq!(code(r#"{"patterns":["stores:*","k"]}"#), "ok");
        assert_eq!(code("{}"), "invalid_request");
        assert_eq!(code(r#"{"patterns":"stores:*"}"#), "invalid_request");
        assert_eq!(code(r#"{"patterns":[]}"#), "invalid_request");
        assert_eq!(code(r#"{"patterns":["a",7]}"#), "invalid_pattern");
        assert_eq!(code(r#"{"patterns":[""]}"#), "invalid_pattern");
        assert_eq!(code(r#"{"patterns":["a\\"]}"#), "invalid_pattern");
        assert_eq!(code("[]"), "invalid_request");
        assert_eq!(code("nope"), "invalid_json");
        let many = serde_json::json!({ "patterns": vec!["k"; MAX_PATTERNS + 1] }).to_string();
        assert_eq!(code(&many), "invalid_request");
        let err = parse_patterns(&["ok".into(), "bad\\".into()]).unwrap_err();
        assert!(err.message.starts_with("patterns[1]:"), "{}", err.message);
    }
}

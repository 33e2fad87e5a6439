//! Optional bearer-token auth. Each token maps to a namespace, a keyspace of its own: a request
//! reads and writes only the namespace of its token. Without a tokens file every request uses
//! [`DEFAULT_NAMESPACE`].
use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::errors::ApiError;

/// The namespace of requests when auth is off.
pub const DEFAULT_NAMESPACE: &str = "default";
const MAX_NAMESPACE_LEN: usize = 128;

/// The namespace a request was authorised for (a request extension).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespace(pub Arc<str>);

/// How requests are authorised.
#[derive(Clone, Debug)]
pub enum Auth {
    /// Everyone, in [`DEFAULT_NAMESPACE`].
    Open,
    /// Bearer tokens, each with its namespace.
    Tokens(Arc<Vec<(String, Namespace)>>),
}

/// A tokens file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    /// The file could not be read.
    #[error("cannot read tokens file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A line is malformed.
    #[error("tokens file line {line}: {reason}")]
    Line {
        /// 1-based line number (the token itself is never echoed).
        line: usize,
        /// Why.
        reason: &'static str,
    },
    /// No token at all.
    #[error("tokens file has no tokens")]
    Empty,
}

impl Auth {
    /// Loads a tokens file.
    pub fn load(path: &Path) -> Result<Self, TokensError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| TokensError::Read { path: path.display().to_string(), source })?;
        Self::parse(&text)
    }

    /// Parses lines of `TOKEN NAMESPACE`; blank lines and `#` comments are skipped. Several tokens
    /// may share a namespace (rotation); one token may not name two.
    pub fn parse(text: &str) -> Result<Self, TokensError> {
        let mut tokens: Vec<(String, Namespace)> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line_no = index + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [token, namespace] = fields[..] else {
                return Err(TokensError::Line { line: line_no, reason: "expected `TOKEN NAMESPACE`" });
            };
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(TokensError::Line { line: line_no, reason: "a token must be printable ASCII" });
            }
            if !valid_namespace(namespace) {
                return Err(TokensError::Line { line: line_no, reason: "a namespace is 1-128 of A-Z a-z 0-9 _ - . :" });
            }
            if tokens.iter().any(|(t, _)| t == token) {
                return Err(TokensError::Line { line: line_no, reason: "this token is already listed" });
            }
            tokens.push((token.to_owned(), Namespace(namespace.into())));
        }
        if tokens.is_empty() {
            return Err(TokensError::Empty);
        }
        Ok(Auth::Tokens(Arc::new(tokens)))
    }

    /// The namespace for an `Authorization` header value, if it is allowed in.
    pub fn namespace_for(&self, authorization: Option<&HeaderValue>) -> Option<Namespace> {
        let tokens = match self {
            Auth::Open => return Some(Namespace(DEFAULT_NAMESPACE.into())),
            Auth::Tokens(tokens) => tokens,
        };
        let presented = bearer(authorization?)?;
        // Every configured token is compared, each in constant time, and the match is picked
        // without a branch: the time depends neither on how much of a guess was right nor on
        // which token it matched. Only whether the guess has a token's length can show.
        let mut matched = 0u64;
        for (index, (token, _)) in tokens.iter().enumerate() {
            let position = u64::try_from(index).map_or(u64::MAX, |i| i.saturating_add(1));
            matched.conditional_assign(&position, token.as_bytes().ct_eq(presented.as_bytes()));
        }
        let index = usize::try_from(matched.checked_sub(1)?).ok()?;
        tokens.get(index).map(|(_, namespace)| namespace.clone())
    }
}

fn valid_namespace(ns: &str) -> bool {
    !ns.is_empty()
        && ns.len() <= MAX_NAMESPACE_LEN
        && ns.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

/// The credentials of `Bearer <token>` (the scheme is case-insensitive, RFC 7235).
fn bearer(value: &HeaderValue) -> Option<&str> {
    let value = value.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Middleware: resolves the request's namespace or answers 401.
pub async fn require(State(auth): State<Auth>, mut request: Request, next: Next) -> Response {
    match auth.namespace_for(request.headers().get(AUTHORIZATION)) {
        Some(namespace) => {
            request.extensions_mut().insert(namespace);
            next.run(request).await
        }
        None => {
            let mut response =
                ApiError::unauthorized("a valid `Authorization: Bearer TOKEN` header is required").into_response();
            response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tokens_and_resolves_namespaces() {
        let auth = Auth::parse("# comment\n\n  tok-a  team-a \ntok-b team-b\ntok-c team-a\n").unwrap();
        let ns = |h: &str| auth.namespace_for(Some(&HeaderValue::from_str(h).unwrap())).map(|n| n.0.to_string());
        assert_eq!(ns("Bearer tok-a").as_deref(), Some("team-a"));
        assert_eq!(ns("bearer tok-b").as_deref(), Some("team-b"));
        assert_eq!(ns("Bearer tok-c").as_deref(), Some("team-a"));
        assert_eq!(ns("Bearer tok-x"), None);
        assert_eq!(ns("Basic tok-a"), None);
        assert_eq!(ns("Bearer "), None);
        assert_eq!(auth.namespace_for(None), None);
    }

    #[test]
    fn only_the_whole_token_matches_whatever_its_length() {
        let auth = Auth::parse("first-token one\nsecond-token two\nthird-token three\n").unwrap();
        let ns = |h: &str| auth.namespace_for(Some(&HeaderValue::from_str(h).unwrap())).map(|n| n.0.to_string());
        assert_eq!(ns("Bearer first-token").as_deref(), Some("one"));
        assert_eq!(ns("Bearer third-token").as_deref(), Some("three"), "the last token matches too");
        for guess in ["first-toke", "first-tokenn", "first-token-and-more", "f", "third-tokeN", "xsecond-token"] {
            assert_eq!(ns(&format!("Bearer {guess}")), None, "{guess}");
        }
    }

    #[test]
    fn rejects_bad_files() {
        for bad in ["", "# only a comment", "tok", "tok ns extra", "tok ns/x", "tok ns\ntok other"] {
            assert!(Auth::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn open_auth_uses_the_default_namespace() {
        assert_eq!(Auth::Open.namespace_for(None).unwrap().0.as_ref(), DEFAULT_NAMESPACE);
    }
}

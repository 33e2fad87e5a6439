//! Refusing writes that a browser sends on behalf of another site.
//!
//! Any web page can make a visitor's browser POST to this server: a `text/plain` body needs no
//! CORS preflight, so the request is executed whatever `--cors-origin` says, and the browser only
//! hides the answer. Without `--tokens` that lets any page write, remove, clear or invalidate,
//! and a clear stamped an hour ahead refuses every legitimate write for that hour. So a request
//! that can change state (any method but GET, HEAD and OPTIONS) is refused `403
//! forbidden_origin` when the browser says it comes from another site, as Go's
//! `http.CrossOriginProtection` does:
//!
//! 1. `Sec-Fetch-Site` (sent by current browsers, and not settable by a page): `same-origin` and
//!    `none` (typed in, a bookmark) pass; `same-site` and `cross-site` pass only with an
//!    `Origin` listed in `--cors-origin` (or with `--cors-origin '*'`).
//! 2. Without it (older browsers), `Origin`: one listed in `--cors-origin` passes, and so does
//!    the server's own origin, i.e. the same host and port as the request's `Host` (a reverse
//!    proxy must pass `Host` on). The scheme is not compared: TLS may end at a proxy in front.
//!    `Origin: null` (sandboxed frames, `file:` pages) is another site.
//! 3. With neither header the request passes: it does not come from a browser (curl, servers,
//!    tests), and browsers always send `Origin` with a cross-origin POST.
//!
//! This only protects against other sites using a visitor's browser. Anyone can still send
//! requests directly; `--tokens` is what keeps one client's data from another.
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{HOST, ORIGIN};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::errors::ApiError;

/// The origins that may write from another site: `--cors-origin`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowedOrigins {
    any: bool,
    listed: Vec<String>,
}

impl AllowedOrigins {
    /// From the `--cors-origin` values (`*`: any), spelled as the CORS layer reads them.
    pub fn new(cors_origins: &[String]) -> Arc<Self> {
        let any = cors_origins.iter().any(|o| o.trim() == "*");
        let listed = cors_origins.iter().map(|o| o.trim().trim_end_matches('/').to_owned()).collect();
        Arc::new(AllowedOrigins { any, listed })
    }

    fn allows(&self, origin: Option<&str>) -> bool {
        self.any || origin.is_some_and(|origin| self.listed.iter().any(|listed| listed == origin))
    }
}

/// Middleware: refuses state-changing requests from other sites (see the module docs).
pub async fn guard(State(allowed): State<Arc<AllowedOrigins>>, request: Request, next: Next) -> Response {
    let host = request.headers().get(HOST).and_then(|v| v.to_str().ok()).map(str::to_owned);
    // HTTP/2 carries the host in the URI (`:authority`), not in a header.
    let host = host.or_else(|| request.uri().authority().map(|a| a.as_str().to_owned()));
    match check(request.method(), request.headers(), host.as_deref(), &allowed) {
        Ok(()) => next.run(request).await,
        Err(refusal) => refusal.into_response(),
    }
}

/// Whether a request with these method and headers may go on.
pub fn check(
    method: &Method,
    headers: &HeaderMap,
    host: Option<&str>,
    allowed: &AllowedOrigins,
) -> Result<(), ApiError> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let origin = match headers.get(ORIGIN) {
        None => None,
        // An Origin that is not text is nobody's own origin.
        Some(value) => Some(value.to_str().unwrap_or("null")),
    };
    let site = headers.get("sec-fetch-site").map(|v| v.to_str().unwrap_or(""));
    let passes = match site {
        Some("same-origin" | "none") => true,
        Some(_) => allowed.allows(origin),
        None => match origin {
            None => true,
            Some(origin) => allowed.allows(Some(origin)) || host.is_some_and(|host| same_origin(origin, host)),
        },
    };
    if passes {
        return Ok(());
    }
    let from = origin.map_or_else(|| format!("Sec-Fetch-Site: {}", site.unwrap_or("")), |o| format!("Origin {o}"));
    let from: String = from.chars().take(200).collect();
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden_origin",
        format!(
            "{} refused from another site ({from}): only pages of this server's own origin, or of an origin \
             listed with --cors-origin, may change the cache",
            method.as_str()
        ),
    ))
}

/// Whether `origin` (`scheme://host[:port]`) names the host and port of the `Host` header.
fn same_origin(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else { return false };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return false,
    };
    let (Some((origin_host, origin_port)), Some((own_host, own_port))) = (split_port(authority), split_port(host))
    else {
        return false;
    };
    origin_host.eq_ignore_ascii_case(own_host)
        && origin_port.unwrap_or(default_port) == own_port.unwrap_or(default_port)
}

/// `host[:port]` (IPv6 hosts in brackets) into its host and port; `None` if malformed.
fn split_port(authority: &str) -> Option<(&str, Option<u16>)> {
    if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
        return None;
    }
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, rest) = authority.split_at(end + 1);
        (host, if rest.is_empty() { None } else { Some(rest.strip_prefix(':')?) })
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(port) => Some(port.parse::<u16>().ok()?),
        None => None,
    };
    (!host.is_empty()).then_some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(n, v)| (axum::http::HeaderName::from_static(n), HeaderValue::from_static(v))).collect()
    }

    fn passes(method: Method, pairs: &[(&'static str, &'static str)], allowed: &[&str]) -> bool {
        let allowed = AllowedOrigins::new(&allowed.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        check(&method, &headers(pairs), Some("cache.example:8080"), &allowed).is_ok()
    }

    #[test]
    fn reads_always_pass() {
        for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
            assert!(passes(method, &[("origin", "https://evil.example"), ("sec-fetch-site", "cross-site")], &[]));
        }
    }

    #[test]
    fn fetch_metadata_decides_when_present() {
        assert!(passes(Method::POST, &[("sec-fetch-site", "same-origin")], &[]));
        assert!(passes(Method::POST, &[("sec-fetch-site", "none")], &[]));
        assert!(!passes(Method::POST, &[("sec-fetch-site", "cross-site")], &[]));
        assert!(!passes(
            Method::POST,
            &[("sec-fetch-site", "same-site"), ("origin", "http://cache.example:8080")],
            &[]
        ));
        let listed = &["https://shell.example/"];
        assert!(passes(Method::POST, &[("sec-fetch-site", "cross-site"), ("origin", "https://shell.example")], listed));
        assert!(!passes(
            Method::POST,
            &[("sec-fetch-site", "cross-site"), ("origin", "https://other.example")],
            listed
        ));
        assert!(passes(Method::DELETE, &[("sec-fetch-site", "cross-site"), ("origin", "null")], &["*"]));
    }

    #[test]
    fn without_fetch_metadata_the_origin_must_be_listed_or_the_servers_own() {
        assert!(passes(Method::POST, &[], &[]), "no browser headers: not a browser");
        assert!(passes(Method::POST, &[("origin", "http://cache.example:8080")], &[]));
        assert!(passes(Method::POST, &[("origin", "https://CACHE.example:8080")], &[]), "scheme and case aside");
        assert!(!passes(Method::POST, &[("origin", "http://cache.example:8081")], &[]));
        assert!(!passes(Method::POST, &[("origin", "http://cache.example")], &[]), "port 80 is not 8080");
        assert!(!passes(Method::POST, &[("origin", "http://evil.example:8080")], &[]));
        assert!(!passes(Method::POST, &[("origin", "null")], &[]));
        assert!(!passes(Method::PUT, &[("origin", "garbage")], &[]));
        assert!(passes(Method::POST, &[("origin", "https://shell.example")], &["https://shell.example"]));
    }

    #[test]
    fn default_ports_and_ipv6_hosts_compare_as_browsers_write_them() {
        assert!(same_origin("https://cache.example", "cache.example"));
        assert!(same_origin("https://cache.example", "cache.example:443"));
        assert!(same_origin("http://cache.example", "cache.example:80"));
        assert!(!same_origin("http://cache.example", "cache.example:443"));
        assert!(same_origin("http://[::1]:8080", "[::1]:8080"));
        assert!(!same_origin("http://[::1]:8080", "[::2]:8080"));
        assert!(!same_origin("http://a.example:99999", "a.example"));
        assert!(!same_origin("http://user@a.example", "a.example"));
        assert!(!same_origin("ftp://a.example", "a.example"));
    }
}

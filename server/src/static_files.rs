//! `--static DIR`: tower-http's [`ServeDir`] on a file system backend that stays inside `DIR`,
//! answered the way a page's assets should be: compressed (brotli or gzip, as the client
//! accepts), with validators (`Last-Modified` from `ServeDir`, and an `ETag`), and cached by the
//! browser for a year when the file name carries a content hash, else revalidated on each use.
//!
//! `ServeDir` refuses `..` in a request, but the file system follows symlinks, so a link in the
//! directory (to `/etc`, to a home directory) would serve whatever it points to. Every path
//! `ServeDir` opens or looks at (the file, the directory it redirects, the `index.html` it
//! appends) is resolved first, symlinks and all, and must lie inside the directory's own real
//! path; anything else is answered as a file that does not exist: `404`, the same as a missing
//! file, so the answer does not tell what the link points to. Links that stay inside keep working.
//!
//! The resolved path is what gets opened, so a link swapped between the check and the open is
//! not followed; a directory on the way swapped for a link in that moment could still be, which
//! takes write access to the static directory, and with that one can serve anything anyway.
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::header::{CACHE_CONTROL, CONTENT_LENGTH, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{from_fn, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::compression::{CompressionLayer, CompressionLevel};
use tower_http::services::fs::{Backend, TokioBackend, TokioFile};
use tower_http::services::ServeDir;

/// A year, and never revalidated: the name changes when the content does.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Kept, but checked with the server (a `304` when unchanged) before each use.
const REVALIDATE: &str = "no-cache";

/// The service for `--static DIR`.
pub fn serve(dir: &Path) -> io::Result<Router> {
    let files = ServeDir::with_backend(dir, ConfinedBackend::new(dir)?);
    Ok(Router::new()
        .fallback_service(files)
        .layer(from_fn(validators))
        // Brotli's default quality (11) takes hundreds of milliseconds per megabyte: too slow to
        // compress on each request. 5 keeps most of its gain at a few milliseconds.
        .layer(CompressionLayer::new().quality(CompressionLevel::Precise(5))))
}

/// Whether a file name carries a content hash (`index-4f9a2c1b.js`, `app.3e8d0a5f9c2b7e1d.css`):
/// its last `-` or `.` separated part before the extension is 8 to 64 letters, digits or `_`, with
/// at least one digit and one letter. A hash this misses is only revalidated; a plain word
/// (`component`) never has a digit.
pub fn is_fingerprinted(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let Some((stem, _extension)) = name.rsplit_once('.') else { return false };
    let Some((_, token)) = stem.rsplit_once(['-', '.']) else { return false };
    (8..=64).contains(&token.len())
        && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && token.bytes().any(|b| b.is_ascii_digit())
        && token.bytes().any(|b| b.is_ascii_alphabetic())
}

/// A weak entity tag from the file's size and modification time (as nginx makes them): weak,
/// because the bytes sent differ with the compression chosen.
fn entity_tag(headers: &HeaderMap) -> Option<String> {
    let length = headers.get(CONTENT_LENGTH)?.to_str().ok()?;
    let modified = headers.get(LAST_MODIFIED)?.as_bytes();
    // FNV-1a: a stable, short fingerprint of the date text.
    let hash = modified.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3));
    Some(format!("W/\"{length}-{hash:x}\""))
}

/// Whether `If-None-Match` names `tag` (compared weakly, as for a `GET`).
fn matches(if_none_match: &HeaderValue, tag: &str) -> bool {
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let Ok(list) = if_none_match.to_str() else { return false };
    list.trim() == "*" || list.split(',').any(|candidate| opaque(candidate) == opaque(tag))
}

/// Adds `Cache-Control` and the `ETag` to a file, and answers `304` to an `If-None-Match` that
/// names it. `If-None-Match` takes precedence over `If-Modified-Since` (RFC 9110, 13.2.2), so
/// `ServeDir` does not see the latter when both are sent.
async fn validators(mut request: Request, next: Next) -> Response {
    let fingerprinted = is_fingerprinted(request.uri().path());
    let if_none_match = request.headers_mut().remove(IF_NONE_MATCH);
    if if_none_match.is_some() {
        request.headers_mut().remove(IF_MODIFIED_SINCE);
    }
    let mut response = next.run(request).await;
    if !matches!(response.status(), StatusCode::OK | StatusCode::NOT_MODIFIED) {
        return response;
    }
    let cache_control = HeaderValue::from_static(if fingerprinted { IMMUTABLE } else { REVALIDATE });
    response.headers_mut().insert(CACHE_CONTROL, cache_control.clone());
    let Some(tag) = (response.status() == StatusCode::OK).then(|| entity_tag(response.headers())).flatten() else {
        return response;
    };
    let Ok(tag_value) = HeaderValue::from_str(&tag) else { return response };
    if if_none_match.is_some_and(|wanted| matches(&wanted, &tag)) {
        let mut unchanged = StatusCode::NOT_MODIFIED.into_response();
        let headers = unchanged.headers_mut();
        headers.insert(ETAG, tag_value);
        headers.insert(CACHE_CONTROL, cache_control);
        if let Some(modified) = response.headers().get(LAST_MODIFIED) {
            headers.insert(LAST_MODIFIED, modified.clone());
        }
        return unchanged;
    }
    response.headers_mut().insert(ETAG, tag_value);
    response
}

/// The local file system, limited to one directory's real path.
#[derive(Clone, Debug)]
pub struct ConfinedBackend {
    root: Arc<Path>,
}

type Pending<T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send>>;

impl ConfinedBackend {
    /// Confines to `dir`, which must exist (its real path is taken now).
    pub fn new(dir: &Path) -> io::Result<Self> {
        Ok(ConfinedBackend { root: std::fs::canonicalize(dir)?.into() })
    }

    /// The real path of `path`, if it is inside the root.
    async fn confine(root: Arc<Path>, path: PathBuf) -> io::Result<PathBuf> {
        let real = tokio::fs::canonicalize(&path).await?;
        if real.starts_with(&root) {
            Ok(real)
        } else {
            tracing::debug!(path = %path.display(), "refused: a symlink leads out of the static directory");
            Err(io::Error::new(io::ErrorKind::NotFound, "outside the static directory"))
        }
    }
}

impl Backend for ConfinedBackend {
    type File = TokioFile;
    type Metadata = std::fs::Metadata;
    type OpenFuture = Pending<TokioFile>;
    type MetadataFuture = Pending<std::fs::Metadata>;

    fn open(&self, path: PathBuf) -> Self::OpenFuture {
        let root = self.root.clone();
        Box::pin(async move { TokioBackend.open(Self::confine(root, path).await?).await })
    }

    fn metadata(&self, path: PathBuf) -> Self::MetadataFuture {
        let root = self.root.clone();
        Box::pin(async move { TokioBackend.metadata(Self::confine(root, path).await?).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_hashed_names_are_told_from_plain_ones() {
        for hashed in ["/assets/index-4f9a2c1b.js", "/app.3e8d0a5f9c2b7e1d.css", "/x/chunk-BZ3x9_Ke.mjs", "/main.a1b2c3d4e5f60718293a.js"] {
            assert!(is_fingerprinted(hashed), "{hashed}");
        }
        for plain in ["/", "/index.html", "/shell/shell.js", "/product/remoteEntry.js", "/my-component.js", "/v2.js", "/README", "/chunk-abcdefgh.js"] {
            assert!(!is_fingerprinted(plain), "{plain}");
        }
    }

    #[test]
    fn if_none_match_is_compared_weakly_and_may_list_several_tags() {
        let tag = "W/\"10-abc\"";
        for header in ["W/\"10-abc\"", "\"10-abc\"", "\"x\", W/\"10-abc\"", "*"] {
            assert!(matches(&HeaderValue::from_static(header), tag), "{header}");
        }
        assert!(!matches(&HeaderValue::from_static("W/\"10-abd\""), tag));
    }
}

//! `--static DIR`: tower-http's [`ServeDir`] on a file system backend that stays inside `DIR`.
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

use tower_http::services::fs::{Backend, TokioBackend, TokioFile};
use tower_http::services::ServeDir;

/// The service for `--static DIR`.
pub fn serve(dir: &Path) -> io::Result<ServeDir<tower_http::services::fs::DefaultServeDirFallback, ConfinedBackend>> {
    Ok(ServeDir::with_backend(dir, ConfinedBackend::new(dir)?))
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

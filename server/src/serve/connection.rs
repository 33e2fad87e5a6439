//! One accepted connection: HTTP/1.1 or HTTP/2 (hyper's auto builder) in front of the router,
//! under the watch of [`super::watchdog`], with a deadline on request bodies.
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderValue, Request, Response, StatusCode, Version};
use axum::Router;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{watch, OwnedSemaphorePermit};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use super::event_stream::{self, Responded, SlowClient, Streaming};
use super::sniff::{sniff, Rewind, Sniffed};
use super::watchdog::{Activity, InProgress, Timeouts, Verdict};

/// What every connection shares.
pub struct Shared {
    /// The application.
    pub app: Router,
    /// hyper's connection settings.
    pub builder: auto::Builder<TokioExecutor>,
    /// The connection timeouts.
    pub timeouts: Timeouts,
}

impl Shared {
    /// HTTP/1.1 and HTTP/2 (prior knowledge) on one port, with the application's timeouts.
    pub fn new(app: Router, timeouts: Timeouts) -> Self {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // The watchdog times headers itself: hyper's own timer would also close keep-alive
        // connections after the header timeout instead of the idle one.
        builder.http1().header_read_timeout(None);
        Shared { app, builder, timeouts }
    }
}

/// Serves one connection until it ends, its watchdog closes it, or (after `stop`) it has finished
/// what it was doing. Holds `permit` (its place under `--max-connections`) until then.
pub async fn serve(
    stream: TcpStream,
    shared: Arc<Shared>,
    permit: OwnedSemaphorePermit,
    mut stop: watch::Receiver<bool>,
) {
    let _permit = permit;
    // Event streams and small JSON answers: no Nagle delay.
    let _ = stream.set_nodelay(true);
    let activity = Activity::new();
    // Each phase is boxed: an idle event stream's task keeps only the phase it is in, not the
    // size of the largest (hyper's connection, the timers of the first request).
    let sniffed = Box::pin(first_request(&stream, shared.timeouts.header, &mut stop)).await;
    let prefix = match sniffed {
        None | Some(Sniffed::Gone) => return,
        Some(Sniffed::Other(prefix)) => prefix,
        Some(Sniffed::EventStream(request)) => {
            drop(activity);
            match Box::pin(event_stream::respond(request, shared.app.clone())).await {
                Responded::Stream(head, body) => {
                    let slow = SlowClient { check: shared.timeouts.header, limit: shared.timeouts.idle };
                    if let Err(err) = Box::pin(Streaming::new(stream, head, body, stop, slow)).await {
                        tracing::debug!(error = %err, "event stream ended with an error");
                    }
                }
                Responded::Answer(response) => {
                    let _ = Box::pin(tokio::time::timeout(shared.timeouts.header, event_stream::answer(&stream, response))).await;
                }
            }
            return;
        }
    };
    Box::pin(serve_hyper(Rewind::new(prefix, Watched::new(stream, activity.clone(), shared.timeouts.header)), shared, activity, stop)).await;
}

/// The start of the first request, within the header timeout; `None` when it did not come in
/// time or the server is stopping.
async fn first_request(stream: &TcpStream, timeout: Duration, stop: &mut watch::Receiver<bool>) -> Option<Sniffed> {
    tokio::select! {
        sniffed = tokio::time::timeout(timeout, sniff(stream)) => match sniffed {
            Ok(sniffed) => Some(sniffed),
            Err(_) => {
                tracing::debug!("closing a connection whose request did not arrive in time");
                None
            }
        },
        () = stopped(stop) => None,
    }
}

async fn serve_hyper(io: Rewind<Watched>, shared: Arc<Shared>, activity: Arc<Activity>, mut stop: watch::Receiver<bool>) {
    let io = TokioIo::new(io);
    let handler = Handler { app: shared.app.clone(), activity: activity.clone(), body_timeout: shared.timeouts.body };
    let conn = shared.builder.serve_connection(io, handler);
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(error = %err, "connection ended with an error");
                }
                return;
            }
            () = stopped(&mut stop), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            verdict = activity.expired(&shared.timeouts) => {
                match verdict {
                    Verdict::Stalled => tracing::debug!("closing a connection whose request did not arrive in time"),
                    Verdict::Idle => {
                        // HTTP/1 closes at once; HTTP/2 sends GOAWAY first. Bounded either way.
                        conn.as_mut().graceful_shutdown();
                        let _ = tokio::time::timeout(shared.timeouts.header, conn.as_mut()).await;
                    }
                }
                return;
            }
        }
    }
}

/// Resolves once the server stops (or is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// The most a closing connection reads and discards after its last answer (see [`Linger`]).
const LINGER_BYTES: u64 = 64 << 20;

/// How long a closing connection waits for more of what the client is still sending.
const LINGER_QUIET: Duration = Duration::from_secs(1);

/// The socket, telling the watchdog when bytes arrive; its close lingers (see [`Linger`]).
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
    /// The longest a close lingers in all.
    linger_limit: Duration,
    linger: Option<Linger>,
}

/// A close after an answer given before the request was read to its end (a `413` on the declared
/// length, a `401`, a body limit hit while reading): closing a socket with unread bytes sends a
/// reset, and a client still sending its body then loses the answer it was sent, and sees a
/// network failure it retries instead of the refusal. So the write side is closed first (the
/// answer is complete), then what still arrives is read and discarded until the client closes,
/// stays quiet for [`LINGER_QUIET`], or sends [`LINGER_BYTES`], and at most for the header timeout.
struct Linger {
    end: Instant,
    quiet: Pin<Box<Sleep>>,
    left: u64,
}

impl Watched {
    fn new(stream: TcpStream, activity: Arc<Activity>, linger_limit: Duration) -> Self {
        Watched { stream, activity, linger_limit, linger: None }
    }

    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.linger.is_none() {
            ready!(Pin::new(&mut self.stream).poll_shutdown(cx))?;
            let end = Instant::now() + self.linger_limit;
            let quiet = Box::pin(tokio::time::sleep_until(end.min(Instant::now() + LINGER_QUIET)));
            self.linger = Some(Linger { end, quiet, left: LINGER_BYTES });
        }
        let Some(linger) = self.linger.as_mut() else { return Poll::Ready(Ok(())) };
        let mut scratch = [0u8; 16 * 1024];
        loop {
            if linger.left == 0 || linger.quiet.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Ok(()));
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.stream).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => {
                    linger.left = linger.left.saturating_sub(buf.filled().len() as u64);
                    let next = linger.end.min(Instant::now() + LINGER_QUIET);
                    linger.quiet.as_mut().reset(next);
                }
                // Reset by the client: nothing is left to protect.
                Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.on_read();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_linger(cx)
    }
}

/// Hands each request to the router: marks it in progress until its answer is finished, and puts
/// a deadline on its body.
#[derive(Clone)]
struct Handler {
    app: Router,
    activity: Arc<Activity>,
    body_timeout: Duration,
}

impl hyper::service::Service<Request<Incoming>> for Handler {
    type Response = Response<Tracked>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Tracked>, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let version = request.version();
        let in_progress = self.activity.begin(version == Version::HTTP_2);
        let timed_out = Arc::new(AtomicBool::new(false));
        let deadline = Instant::now() + self.body_timeout;
        let request = request.map(|body| DeadlineBody { body, deadline, sleep: None, timed_out: timed_out.clone() });
        let app = self.app.clone();
        let body_timeout = self.body_timeout;
        Box::pin(async move {
            let response = match app.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            // Whatever the handler made of the failed read (a 400), the client was too slow.
            let response = if timed_out.load(Ordering::Acquire) {
                body_timed_out(response, version, body_timeout)
            } else {
                response
            };
            Ok(response.map(|body| Tracked { body, _in_progress: in_progress }))
        })
    }
}

/// The `408` for a body that did not arrive in time, keeping the handler's headers (CORS).
fn body_timed_out(response: Response<Body>, version: Version, limit: Duration) -> Response<Body> {
    let (mut parts, _) = response.into_parts();
    parts.status = StatusCode::REQUEST_TIMEOUT;
    parts.headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(CONTENT_LENGTH);
    // The rest of the body may still come, so an HTTP/1 connection cannot carry another request.
    // (HTTP/2 has no such header, and needs none: only this request's stream ends.)
    if version < Version::HTTP_2 {
        parts.headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    let message = format!("the request body did not arrive within {} ms", limit.as_millis());
    let body = serde_json::json!({ "error": "timeout", "message": message }).to_string();
    Response::from_parts(parts, Body::from(body))
}

/// A request body that fails once its deadline has passed.
struct DeadlineBody {
    body: Incoming,
    deadline: Instant,
    /// Made on the first wait only: most bodies are complete when the handler reads them.
    sleep: Option<Pin<Box<Sleep>>>,
    timed_out: Arc<AtomicBool>,
}

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The connection failed or the client sent a malformed body.
    #[error(transparent)]
    Read(#[from] hyper::Error),
    /// The body did not arrive within `--body-timeout-ms`.
    #[error("the request body did not arrive in time")]
    TimedOut,
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        if this.timed_out.load(Ordering::Relaxed) {
            return Poll::Ready(Some(Err(BodyError::TimedOut)));
        }
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|frame| frame.map_err(BodyError::Read))),
            Poll::Pending => {
                let deadline = this.deadline;
                let sleep = this.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if sleep.as_mut().poll(cx).is_ready() {
                    this.timed_out.store(true, Ordering::Release);
                    return Poll::Ready(Some(Err(BodyError::TimedOut)));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// An answer's body; its request stays in progress until it is finished or dropped.
pub struct Tracked {
    body: Body,
    _in_progress: InProgress,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

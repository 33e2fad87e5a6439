//! HTTP/1.1 event streams served outside hyper.
//!
//! An event stream is a connection that, once its answer's head is written, only ever sends
//! small chunks. Through hyper, each one kept hyper's 8 KiB read and 8 KiB write buffers, its
//! dispatcher, the watchdog's timer and the response body's layers: about 19 KiB of resident
//! memory per idle stream, and most of the CPU of a fan-out. Here the request still goes through
//! the whole router (auth, CORS, limits, logs: the same answer as through hyper), and then
//! [`Streaming`], a plain future over the socket and the stream's own body, writes each chunk as
//! it comes and notices the client leaving. Anything that is not a plain GET of the route
//! (HTTP/1.0, HTTP/2, a body, an upgrade, pipelined requests) stays with hyper
//! ([`super::sniff`]).
use std::future::Future;
use std::io::{self, Write};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use axum::http::{Request, Response};
use axum::Router;
use http_body::Body as _;
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use crate::fanout::{EventBody, Handoff};

/// A write gathers at most this much of what the body has ready.
const MAX_WRITE: usize = 64 << 10;
/// An error answer (the only other kind this route gives) is at most this large.
const MAX_ANSWER: usize = 64 << 10;

/// The router's answer to an event-stream request.
pub enum Responded {
    /// The stream: its answer's head, and its body.
    Stream(Vec<u8>, EventBody),
    /// Anything else (an error, a 503 past the stream limit): written whole, then the connection
    /// closes.
    Answer(Response<Body>),
}

/// Runs `request` through `app`. The answer's headers, the router's body layers and the request's
/// span are dropped here: a stream keeps only its own body.
pub async fn respond(request: Request<()>, app: Router) -> Responded {
    let request = request.map(|()| Body::empty());
    let response = match app.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let streaming = response.headers().get(CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    match response.extensions().get::<Handoff>().and_then(Handoff::take) {
        Some(body) if streaming => Responded::Stream(head(&response, b"transfer-encoding: chunked\r\n"), body),
        _ => Responded::Answer(response),
    }
}

fn head(response: &Response<Body>, framing: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let status = response.status();
    let _ = write!(out, "HTTP/1.1 {} {}\r\n", status.as_u16(), status.canonical_reason().unwrap_or(""));
    for (name, value) in response.headers() {
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING || name == CONNECTION {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(framing);
    out.extend_from_slice(b"\r\n");
    out
}

/// Writes a whole answer.
pub async fn answer(stream: &TcpStream, response: Response<Body>) -> io::Result<()> {
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_ANSWER).await.unwrap_or_default();
    let response = Response::from_parts(parts, Body::empty());
    let mut out = head(&response, format!("content-length: {}\r\nconnection: close\r\n", bytes.len()).as_bytes());
    out.extend_from_slice(&bytes);
    let mut rest = &out[..];
    while !rest.is_empty() {
        stream.writable().await?;
        match stream.try_write(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => rest = &rest[n..],
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// A client that has not read for this long while a write waits is closed; so is one still
/// blocking a write this long after the server began to stop.
#[derive(Clone, Copy, Debug)]
pub struct SlowClient {
    /// How often a blocked write looks at the time and at `stop`.
    pub check: Duration,
    /// How long a write may stay blocked.
    pub limit: Duration,
}

/// A write the client is not reading.
struct Blocked {
    since: Instant,
    sleep: Pin<Box<Sleep>>,
}

/// An open event stream: resolves when its body ended and its last bytes are written, or the
/// client left (or stopped reading: [`SlowClient`]).
pub struct Streaming {
    stream: TcpStream,
    body: EventBody,
    stop: watch::Receiver<bool>,
    slow: SlowClient,
    /// Bytes to write (empty: none), and how many are written.
    out: Vec<u8>,
    written: usize,
    blocked: Option<Box<Blocked>>,
    /// The body ended: once `out` is written, so is the stream.
    ended: bool,
}

impl Streaming {
    /// The stream of `body` on `stream`, `head` written first.
    pub fn new(stream: TcpStream, head: Vec<u8>, body: EventBody, stop: watch::Receiver<bool>, slow: SlowClient) -> Self {
        Streaming { stream, body, stop, slow, out: head, written: 0, blocked: None, ended: false }
    }

    /// Whether the client closed its end (what it sends meanwhile is read and dropped: it may not
    /// send another request on this connection). Registers for the next readiness otherwise.
    fn client_gone(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            match self.stream.poll_read_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Ready(Ok(())) => {}
            }
            let mut sink = [0u8; 64];
            match self.stream.try_read(&mut sink) {
                Ok(0) => return Poll::Ready(Ok(())),
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
    }

    /// What the body has ready (up to [`MAX_WRITE`]) into `out` as one chunk; `Pending` when it
    /// has nothing.
    fn fill(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut data: Vec<bytes::Bytes> = Vec::new();
        let mut len = 0;
        while len < MAX_WRITE {
            match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(bytes) = frame.into_data() {
                        len += bytes.len();
                        data.push(bytes);
                    }
                }
                Poll::Ready(Some(Err(never))) => match never {},
                Poll::Ready(None) => {
                    self.ended = true;
                    break;
                }
                Poll::Pending => break,
            }
        }
        if len == 0 && !self.ended {
            return Poll::Pending;
        }
        let mut out = Vec::with_capacity(len + 17);
        if len > 0 {
            let _ = write!(out, "{len:x}\r\n");
            for bytes in data {
                out.extend_from_slice(&bytes);
            }
            out.extend_from_slice(b"\r\n");
        }
        if self.ended {
            out.extend_from_slice(b"0\r\n\r\n");
        }
        self.out = out;
        self.written = 0;
        Poll::Ready(())
    }

    /// A write is blocked: whether the client has been too slow (or the server is stopping).
    fn too_slow(&mut self, cx: &mut Context<'_>) -> bool {
        let check = self.slow.check;
        let blocked = self.blocked.get_or_insert_with(|| {
            Box::new(Blocked { since: Instant::now(), sleep: Box::pin(tokio::time::sleep(check)) })
        });
        while blocked.sleep.as_mut().poll(cx).is_ready() {
            if *self.stop.borrow() || blocked.since.elapsed() >= self.slow.limit {
                return true;
            }
            blocked.sleep.as_mut().reset(Instant::now() + check);
        }
        false
    }
}

impl Future for Streaming {
    type Output = io::Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Poll::Ready(gone) = this.client_gone(cx) {
            return Poll::Ready(gone);
        }
        loop {
            while this.written < this.out.len() {
                match Pin::new(&mut this.stream).poll_write(cx, &this.out[this.written..]) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => {
                        this.written += n;
                        // The client reads: it is slow only once it stops again. (Once the
                        // server is stopping, a write still blocked at the next check ends it.)
                        if !*this.stop.borrow() {
                            this.blocked = None;
                        }
                    }
                    Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                    Poll::Pending => {
                        if this.too_slow(cx) {
                            return Poll::Ready(Err(io::ErrorKind::TimedOut.into()));
                        }
                        return Poll::Pending;
                    }
                }
            }
            // Written: an idle stream keeps no buffer and no timer.
            this.out = Vec::new();
            this.written = 0;
            this.blocked = None;
            if this.ended {
                return Poll::Ready(Ok(()));
            }
            if this.fill(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

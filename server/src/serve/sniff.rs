//! The first bytes of a connection: enough to tell an HTTP/1.1 event-stream request (served by
//! [`super::event_stream`], outside hyper) from everything else (handed to hyper with the bytes
//! already read put back in front).
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The request line of the event stream route, up to its path.
const EVENTS: &[u8] = b"GET /api/cache/events";
/// A request head longer than this is left to hyper (which answers 431 past its own limit).
const MAX_HEAD: usize = 16 << 10;
/// Headers read for an event-stream request (more: left to hyper).
const MAX_HEADERS: usize = 64;

/// What the first bytes were.
pub enum Sniffed {
    /// A complete HTTP/1.1 `GET /api/cache/events` head with no body, and nothing after it.
    EventStream(http::Request<()>),
    /// Anything else: these bytes, then the rest of the connection, go to hyper.
    Other(Vec<u8>),
    /// The client closed (or the socket failed) before sending a request.
    Gone,
}

/// Reads the start of a request. Waits only as long as the bytes could still be an event-stream
/// request; the caller bounds the whole with the header timeout.
pub async fn sniff(stream: &TcpStream) -> Sniffed {
    let mut head = Vec::new();
    loop {
        if head.len() >= MAX_HEAD {
            return Sniffed::Other(head);
        }
        let len = head.len();
        head.resize(len + 2048.min(MAX_HEAD - len), 0);
        let read = read_some(stream, &mut head[len..]).await;
        match read {
            Ok(0) | Err(_) => return if len == 0 { Sniffed::Gone } else { Sniffed::Other(truncate(head, len)) },
            Ok(n) => head.truncate(len + n),
        }
        let prefix = head.len().min(EVENTS.len());
        if head[..prefix] != EVENTS[..prefix] {
            return Sniffed::Other(head);
        }
        if head.len() <= EVENTS.len() {
            continue;
        }
        if !matches!(head[EVENTS.len()], b' ' | b'?') {
            return Sniffed::Other(head);
        }
        match parse(&head) {
            Parsed::Complete(request) => return Sniffed::EventStream(*request),
            Parsed::Partial => {}
            Parsed::NotOurs => return Sniffed::Other(head),
        }
    }
}

fn truncate(mut bytes: Vec<u8>, len: usize) -> Vec<u8> {
    bytes.truncate(len);
    bytes
}

async fn read_some(stream: &TcpStream, into: &mut [u8]) -> io::Result<usize> {
    loop {
        stream.readable().await?;
        match stream.try_read(into) {
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            other => return other,
        }
    }
}

enum Parsed {
    Complete(Box<http::Request<()>>),
    Partial,
    /// Valid or not, hyper answers it: HTTP/1.0, a body, an upgrade, pipelined bytes, a bad head.
    NotOurs,
}

fn parse(bytes: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let len = match request.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::NotOurs,
    };
    if len != bytes.len() || request.version != Some(1) {
        return Parsed::NotOurs;
    }
    let mut builder = http::Request::builder().method(http::Method::GET).version(http::Version::HTTP_11);
    builder = builder.uri(request.path.unwrap_or("/"));
    for header in request.headers.iter() {
        let name = header.name;
        if name.eq_ignore_ascii_case("content-length") && header.value != b"0"
            || name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("upgrade")
            || name.eq_ignore_ascii_case("expect")
        {
            return Parsed::NotOurs;
        }
        builder = builder.header(name, header.value);
    }
    match builder.body(()) {
        Ok(request) if request.headers().contains_key(http::header::HOST) => Parsed::Complete(Box::new(request)),
        _ => Parsed::NotOurs,
    }
}

/// The connection for hyper: the bytes sniffed first, then the socket.
pub struct Rewind<T> {
    prefix: Vec<u8>,
    at: usize,
    inner: T,
}

impl<T> Rewind<T> {
    /// `inner`, read after `prefix`.
    pub fn new(prefix: Vec<u8>, inner: T) -> Self {
        Rewind { prefix, at: 0, inner }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Rewind<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.at < this.prefix.len() {
            let n = (this.prefix.len() - this.at).min(buf.remaining());
            buf.put_slice(&this.prefix[this.at..this.at + n]);
            this.at += n;
            if this.at == this.prefix.len() {
                this.prefix = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Rewind<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> &'static str {
        match parse(text.as_bytes()) {
            Parsed::Complete(_) => "ours",
            Parsed::Partial => "partial",
            Parsed::NotOurs => "hyper",
        }
    }

    #[test]
    fn only_a_plain_complete_http11_get_is_ours() {
        assert_eq!(parsed("GET /api/cache/events?cursor=1 HTTP/1.1\r\nHost: a\r\nLast-Event-ID: 5\r\n\r\n"), "ours");
        assert_eq!(parsed("GET /api/cache/events HTTP/1.1\r\nHost: a\r\n"), "partial");
        assert_eq!(parsed("GET /api/cache/events HTTP/1.0\r\nHost: a\r\n\r\n"), "hyper");
        assert_eq!(parsed("GET /api/cache/events HTTP/1.1\r\n\r\n"), "hyper", "no Host");
        assert_eq!(parsed("GET /api/cache/events HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n"), "hyper");
        assert_eq!(parsed("GET /api/cache/events HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"), "hyper");
        assert_eq!(parsed("GET /api/cache/events HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n"), "hyper", "pipelined");
        assert_eq!(parsed("GET /api/cache/events HTTP/1.1\r\nHo st: a\r\n\r\n"), "hyper", "malformed");
    }
}

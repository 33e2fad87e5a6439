//! One event stream's response body: its cursor, and what it takes from its namespace's shared
//! log. An idle stream is this struct and a waker in the log's waiter table, nothing more: no task,
//! no queue, no timer of its own.
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Frame;
use tokio::sync::OwnedSemaphorePermit;

use super::channel::{Channel, End, Look, PAGE_BYTES, PAGE_ROWS};
use super::sse::{self, events_of, Encoded};
use crate::store::{Delta, DeltaQuery, Store, StoreError};

type Read = Pin<Box<dyn Future<Output = Result<Delta, StoreError>> + Send>>;

/// A stream catching up from the store by itself (it is behind the shared log).
struct CatchUp {
    read: Option<Read>,
    events: std::vec::IntoIter<Encoded>,
    more: bool,
}

/// The body of `GET /api/cache/events`.
pub struct EventBody {
    channel: Arc<Channel>,
    store: Arc<dyn Store>,
    stream: u64,
    cursor: u64,
    ticks: u64,
    heartbeat_ms: u128,
    ready_sent: bool,
    /// Its own read ended above the shared head: it waits for the reader instead of reading again.
    read_ahead: bool,
    catch_up: Option<Box<CatchUp>>,
    done: bool,
    _slot: OwnedSemaphorePermit,
}

impl EventBody {
    /// A stream of `channel`'s namespace from `cursor` on, holding `slot` (its place under
    /// `--max-streams`) until it ends.
    pub fn new(channel: Arc<Channel>, store: Arc<dyn Store>, cursor: u64, heartbeat_ms: u128, slot: OwnedSemaphorePermit) -> Self {
        let stream = channel.stream_id();
        EventBody {
            channel,
            store,
            stream,
            cursor,
            ticks: 0,
            heartbeat_ms,
            ready_sent: false,
            read_ahead: false,
            catch_up: None,
            done: false,
            _slot: slot,
        }
    }

}

fn read(store: &Arc<dyn Store>, channel: &Channel, cursor: u64) -> Read {
    let store = store.clone();
    let ns = channel.ns().clone();
    let query = DeltaQuery { last_sync: cursor, exclude: Default::default(), max_rows: PAGE_ROWS, max_bytes: PAGE_BYTES };
    Box::pin(async move { store.delta(&ns, query).await })
}

impl EventBody {
    fn last(&mut self, bytes: Bytes) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.done = true;
        self.catch_up = None;
        Poll::Ready(Some(Ok(Frame::data(bytes))))
    }
}

fn send(bytes: Bytes) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
    Poll::Ready(Some(Ok(Frame::data(bytes))))
}

impl http_body::Body for EventBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            if let Some(catch_up) = this.catch_up.as_mut() {
                if let Some(event) = catch_up.events.next() {
                    return send(event.bytes);
                }
                if let Some(read) = catch_up.read.as_mut() {
                    let delta = match read.as_mut().poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Ok(delta)) => delta,
                        Poll::Ready(Err(err)) => {
                            tracing::warn!(error = %err, "event stream: store read failed; ending the stream");
                            return this.last(sse::STORE_ERROR);
                        }
                    };
                    let mut events = Vec::with_capacity(delta.rows.len() + 2);
                    events_of(&delta, &mut events);
                    this.cursor = delta.cursor;
                    catch_up.read = None;
                    catch_up.events = events.into_iter();
                    catch_up.more = delta.more;
                } else if catch_up.more {
                    catch_up.read = Some(read(&this.store, &this.channel, this.cursor));
                } else {
                    this.catch_up = None;
                    this.read_ahead = true;
                }
                continue;
            }
            match this.channel.look(this.cursor, this.stream, cx.waker(), this.read_ahead) {
                Look::Event(event) => {
                    this.cursor = event.id;
                    return send(event.bytes);
                }
                Look::AtHead { ticks } => {
                    this.read_ahead = false;
                    if !this.ready_sent {
                        this.ready_sent = true;
                        this.ticks = ticks;
                        return send(sse::ready(this.cursor, this.heartbeat_ms));
                    }
                    if ticks != this.ticks {
                        this.ticks = ticks;
                        return send(sse::HEARTBEAT);
                    }
                    return Poll::Pending;
                }
                Look::OutOfRange { head } if this.read_ahead && this.cursor > head => return Poll::Pending,
                Look::OutOfRange { .. } => {
                    this.catch_up = Some(Box::new(CatchUp { read: Some(read(&this.store, &this.channel, this.cursor)), events: Vec::new().into_iter(), more: false }));
                }
                Look::Starting => return Poll::Pending,
                Look::Ended(End::StoreFailed) => return this.last(sse::STORE_ERROR),
                Look::Ended(End::GoingAway) => return this.last(sse::RECONNECT),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

impl Drop for EventBody {
    fn drop(&mut self) {
        self.channel.forget(self.stream);
    }
}

/// Where a stream's body waits for whoever serves the connection: the HTTP/1 fast path takes it
/// out of the response's extensions (and drops the router's body layers, which would stay
/// allocated for the life of the stream); hyper polls the response's own body, which takes it
/// from here on its first poll.
#[derive(Clone)]
pub struct Handoff(Arc<std::sync::Mutex<Option<EventBody>>>);

impl Handoff {
    /// The response body of `body`, and the handoff to put in the response's extensions.
    pub fn new(body: EventBody) -> (Self, HandoffBody) {
        let slot = Handoff(Arc::new(std::sync::Mutex::new(Some(body))));
        (slot.clone(), HandoffBody { slot, body: None })
    }

    /// The body, unless it was taken already.
    pub fn take(&self) -> Option<EventBody> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
    }
}

/// The response's body: the stream, taken from its [`Handoff`] on the first poll (and empty if
/// the fast path took it).
pub struct HandoffBody {
    slot: Handoff,
    body: Option<EventBody>,
}

impl http_body::Body for HandoffBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        if this.body.is_none() {
            this.body = this.slot.take();
        }
        match this.body.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }
}

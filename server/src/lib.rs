//! Reference backend of mfe-shared-cache: the seed protocol (`/api/cache/{sync,set,remove,clear}`,
//! the README's wire protocol) over an embedded durable store, with the core's merge rule and wire types, the
//! very code the client runs; and, for frontend/backend cache coordination,
//! `POST /api/cache/invalidate` (tombstone every key matching a pattern, delivered by `/sync`
//! like any write: [`invalidate`]), `GET /api/cache/entries` (live values by key prefix, with an
//! ETag and `304 Not Modified`) and `GET /api/cache/stats` (counts and counters: [`inspect`]).
//!
//! # Store
//! By default the data lives in one [redb](https://www.redb.org) file in `--data DIR`. redb is
//! pure Rust (no C toolchain to build, unlike RocksDB or SQLite bindings), ACID with
//! copy-on-write B-trees and fsync on commit, and crash-safe: a write is acknowledged only after
//! its transaction committed, so it survives `kill -9` and power loss. One writer thread commits
//! concurrent writes together (group commit); reads are MVCC snapshots that never wait. After an
//! I/O error (a full disk) writes fail with 503 and the store reopens its database by itself once
//! the disk takes writes again; `/healthz` answers 503 meanwhile ([`store::Store::health`]).
//! `--memory` keeps everything in memory instead (tests). `--store redis://…` (or
//! `redis+cluster://…`) keeps it in Redis, shared by any number of server instances, with the
//! same semantics ([`store::redis`]). All implement [`store::Store`].
//!
//! # Delivery by receipt
//! Each namespace has a cursor. Every write that wins the merge gets the next sequence number
//! (`max(cursor + 1, now_ms)`: strictly increasing, and never below the wall clock so it keeps
//! growing across a wipe of the data). `/sync` returns every entry whose latest accepted write
//! is numbered above `lastSync`, whatever the write's own timestamp, once, at its latest write,
//! and answers `timestamp` = the cursor. A `lastSync` above the cursor did not come from this
//! data (it was wiped): it is read as 0, a full resync, so nothing is lost. See
//! [`handlers`] for the echo policy and [`namespace`] for clears and garbage collection.
//!
//! # Connections
//! [`serve`] accepts connections itself (HTTP/1.1 and HTTP/2), with header, body and idle
//! timeouts, a limit on connections (503 past it) derived from the open-file limit, and
//! [`events`] limits open event streams; [`origin`] refuses writes a browser sends for another
//! site.
//!
//! # Namespaces
//! With `--tokens FILE` each bearer token maps to a namespace, a keyspace no other token reads or
//! writes; without it everything is in [`auth::DEFAULT_NAMESPACE`].
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod auth;
mod body;
pub mod config;
pub mod errors;
pub mod events;
pub mod fanout;
pub mod feed;
pub mod gc;
pub mod handlers;
mod input;
pub mod inspect;
pub mod invalidate;
pub mod metrics;
pub mod namespace;
pub mod origin;
pub mod redis_bus;
pub mod routes;
pub mod serve;
pub mod server;
pub mod static_files;
pub mod store;

pub use config::Config;
pub use server::{run, AppState, Server, ServerError, SystemClock};

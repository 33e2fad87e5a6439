//! The server over real HTTP on 127.0.0.1.
#[path = "../support/mod.rs"]
mod support;

mod access;
mod binary;
mod clocks;
mod common;
mod concurrency;
mod coordination;
mod disk_full;
mod durability;
mod errors;
mod events;
mod fanout;
mod limits;
mod origin;
mod protocol;
mod raw;
mod scale_out;
mod redis;
mod sse;
mod stream_paths;
mod timeouts;

//! The browser client of `mfe-shared-cache`: the platform-free core wired to the browser —
//! Web Storage for persistence, BroadcastChannel (or the `storage` event) between tabs, and
//! timers for TTL expiry. The public JavaScript API (`BackendSyncedCacheService`) is the thin
//! shim in `pkg-template/`, which drives [`CacheCore`].
#![deny(missing_docs)]

mod channel;
mod core_api;
mod query_api;
mod errors;
mod js_stamp;
mod storage;
mod sync_api;
mod timer;

pub use core_api::CacheCore;
pub use storage::WebStorage;

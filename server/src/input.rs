//! Turns parsed requests into validated writes, with the core's checks (the same ones the client
//! applies to what it receives): keys, TTLs, writer ids and stamps. A stamp far ahead of this
//! server's clock is accepted: a device whose clock is days fast must still sync, the TTL of a
//! write runs from its written time (not from its stamp), and the namespace's own clock keeps the
//! server's stamps and garbage collection from following a clock that jumps (see `namespace`).
use mfe_shared_cache_core::wire::{Change, ClearRequest};
use mfe_shared_cache_core::{check_remote_stamp, is_valid_node, json, Entry, Stamp};

use crate::errors::ApiError;

/// A change as a key and its write.
pub fn write_from_change(change: Change) -> Result<(String, Entry), ApiError> {
    check_node(change.node.as_deref())?;
    let (key, entry) = change.into_entry().map_err(|err| ApiError::from_cache_error(&err))?;
    // serde has checked the syntax; the core's validator also bounds nesting. Clients run it on
    // every value they receive, so a value it refuses would be stored here and dropped by all.
    if let Some(value) = &entry.value {
        json::validate(value)
            .map_err(|reason| ApiError::bad_request("invalid_value", format!("invalid value for {key:?}: {reason}")))?;
    }
    check_stamp(&entry.stamp)?;
    Ok((key, entry))
}

/// A clear's epoch.
pub fn clear_epoch(request: &ClearRequest) -> Result<Stamp, ApiError> {
    check_node(request.node.as_deref())?;
    let stamp = request.stamp();
    check_stamp(&stamp)?;
    Ok(stamp)
}

fn check_node(node: Option<&str>) -> Result<(), ApiError> {
    match node {
        Some(node) if !is_valid_node(node) => {
            Err(ApiError::bad_request("invalid_node", "node must be up to 64 of A-Z a-z 0-9 _ - . :"))
        }
        _ => Ok(()),
    }
}

fn check_stamp(stamp: &Stamp) -> Result<(), ApiError> {
    check_remote_stamp(stamp).map_err(|err| ApiError::bad_request("invalid_timestamp", err.to_string()))
}

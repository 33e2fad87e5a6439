//! The open-file limit, which bounds how many connections the server can hold: every connection
//! is a descriptor, and once they run out `accept` fails (EMFILE) and every new client waits.
//! So the default `--max-connections` is derived from the limit, leaving a reserve.

/// Descriptors kept out of the connection budget: the store's files, Redis connections, the
/// listener, the runtime's own (epoll, eventfd, stdio), static files being sent, and the
/// overload answers ([`super::overload::SLOTS`]) that refuse connections past the limit.
pub const RESERVE: u64 = 128;

/// The default `--max-connections` never exceeds this, however high the descriptor limit: past
/// it memory (tens of KB per connection), not descriptors, is what runs out.
pub const MAX_DEFAULT_CONNECTIONS: u64 = 65_536;

/// The limit assumed where it cannot be read (not Unix) or reads as 0.
const ASSUMED_LIMIT: u64 = 1024;

/// Raises the soft open-file limit to the hard one, as servers commonly do at start (the soft
/// default, often 1024, is a guard for interactive shells, not a sizing for servers). Returns the
/// soft limit in force afterwards.
#[cfg(unix)]
pub fn raise_soft_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        if let Err(err) = setrlimit(Resource::Nofile, Rlimit { current: limit.maximum, maximum: limit.maximum }) {
            tracing::warn!(error = %err, "cannot raise the open-file limit to its hard limit");
        }
    }
    soft_limit()
}

/// See the Unix version: elsewhere there is nothing to raise.
#[cfg(not(unix))]
pub fn raise_soft_limit() -> u64 {
    soft_limit()
}

/// The soft open-file limit in force.
#[cfg(unix)]
pub fn soft_limit() -> u64 {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// Without `getrlimit`, a common default.
#[cfg(not(unix))]
pub fn soft_limit() -> u64 {
    ASSUMED_LIMIT
}

/// The default `--max-connections` under a soft limit of `limit` descriptors.
pub fn default_max_connections(limit: u64) -> usize {
    let limit = if limit == 0 { ASSUMED_LIMIT } else { limit };
    let budget = if limit > 2 * RESERVE { limit - RESERVE } else { (limit / 2).max(1) };
    usize::try_from(budget.min(MAX_DEFAULT_CONNECTIONS)).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_leaves_the_reserve_and_stays_bounded() {
        assert_eq!(default_max_connections(1024), 896);
        assert_eq!(default_max_connections(256), 128);
        assert_eq!(default_max_connections(100), 50, "tiny limits: half of them");
        assert_eq!(default_max_connections(1), 1);
        assert_eq!(default_max_connections(1 << 20), 65_536);
        assert_eq!(default_max_connections(u64::MAX), 65_536, "unlimited");
        assert_eq!(default_max_connections(0), 896, "unknown");
    }

    #[test]
    fn raising_never_lowers_the_limit() {
        let before = soft_limit();
        assert!(raise_soft_limit() >= before);
    }
}

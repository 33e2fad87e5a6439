/// The position of a write in the one global order of writes: the higher stamp wins.
///
/// Ordered by `ts` (hybrid-logical-clock milliseconds) and then by `node` (the writer's id), so two
/// writes never tie unless they are the same write. A peer that speaks only the seed protocol has
/// no node id; it is the empty string and so loses ties, deterministically.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Stamp {
    /// Milliseconds since the Unix epoch, as issued by a [`crate::HybridClock`].
    pub ts: u64,
    /// The writer's id.
    pub node: String,
}

impl Stamp {
    /// A stamp from its parts.
    pub fn new(ts: u64, node: impl Into<String>) -> Self {
        Stamp { ts, node: node.into() }
    }
}

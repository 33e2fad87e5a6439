//! The hash maps of the core. In the wasm, std has no randomness to key its SipHash with: the
//! keys are two addresses in the module's memory, which repeat from run to run, so SipHash buys
//! no protection there. FxHash takes its place, smaller in the bundle and faster per key.
//! Elsewhere (the server hashes keys that clients choose) std's randomly keyed SipHash stays.
#[cfg(target_arch = "wasm32")]
type Hasher = rustc_hash::FxBuildHasher;
#[cfg(not(target_arch = "wasm32"))]
type Hasher = std::hash::RandomState;

pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, Hasher>;
pub(crate) type HashSet<T> = std::collections::HashSet<T, Hasher>;

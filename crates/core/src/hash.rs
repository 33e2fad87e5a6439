//! The hash maps of the core. Their keys come from outside: other tabs, and the backend, where
//! another user may choose them. A hash whose collisions an attacker can compute in advance lets
//! a few thousand chosen keys turn every insert into a scan of all the others, so the maps are
//! keyed with a secret. In the wasm, std has no randomness to key its SipHash with (its keys
//! are two addresses in the module's memory, the same on every page), so the binding hands the
//! core a random seed (`seed_hashes`) and the maps use foldhash keyed with it: small in the
//! bundle, fast per key, and with no collisions that hold whatever the seed. Elsewhere (the
//! server, native tests) std's randomly keyed SipHash stays.
use std::hash::BuildHasher;

use foldhash::fast::{FoldHasher, SeedableRandomState};
use foldhash::SharedSeed;

#[cfg(target_arch = "wasm32")]
type Hasher = Keyed;
#[cfg(not(target_arch = "wasm32"))]
type Hasher = std::hash::RandomState;

pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, Hasher>;
pub(crate) type HashSet<T> = std::collections::HashSet<T, Hasher>;

static SEED: std::sync::OnceLock<SharedSeed> = std::sync::OnceLock::new();

/// Keys every hash map made from now on with `random()` (from a secure source); only the first
/// call draws. A map made before it hashes with a fixed seed, as attackable as any unkeyed hash.
pub fn seed_hashes(random: impl FnOnce() -> u64) {
    SEED.get_or_init(|| SharedSeed::from_u64(random()));
}

/// Whether [`seed_hashes`] has keyed the maps.
pub fn hashes_seeded() -> bool {
    SEED.get().is_some()
}

/// The maps' hasher in the wasm: foldhash with the seed `seed_hashes` gave.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
#[derive(Clone)]
pub struct Keyed(SeedableRandomState);

impl Default for Keyed {
    fn default() -> Self {
        Keyed(SeedableRandomState::with_seed(0, SEED.get().unwrap_or(SharedSeed::global_fixed())))
    }
}

impl BuildHasher for Keyed {
    type Hasher = FoldHasher<'static>;

    fn build_hasher(&self) -> Self::Hasher {
        self.0.build_hasher()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(seed: &'static SharedSeed, key: &str) -> u64 {
        SeedableRandomState::with_seed(0, seed).hash_one(key)
    }

    #[test]
    fn the_seed_decides_every_hash() {
        let a: &'static SharedSeed = Box::leak(Box::new(SharedSeed::from_u64(0x9e37_79b9_7f4a_7c15)));
        let b: &'static SharedSeed = Box::leak(Box::new(SharedSeed::from_u64(0x2545_f491_4f6c_dd1d)));
        let keys: Vec<String> = (0..64).map(|i| format!("user:{i}")).collect();
        // No key hashes alike under another seed...
        assert!(keys.iter().all(|k| hash(a, k) != hash(b, k)));
        // ...and two keys that share a bucket under one seed part under another.
        let low = |seed, k: &str| hash(seed, k) & 0xff;
        let (x, y) = (0..64)
            .flat_map(|i| (i + 1..64).map(move |j| (i, j)))
            .find(|&(i, j)| low(a, &keys[i]) == low(a, &keys[j]))
            .expect("64 keys share a low byte under some pair");
        assert_ne!(low(b, &keys[x]), low(b, &keys[y]));
    }

    #[test]
    fn a_keyed_map_is_a_working_map() {
        seed_hashes(|| 42);
        assert!(hashes_seeded());
        let mut map: std::collections::HashMap<String, u32, Keyed> = Default::default();
        for i in 0..1000 {
            map.insert(format!("k{i}"), i);
        }
        assert_eq!(map.len(), 1000);
        assert!((0..1000).all(|i| map.get(&format!("k{i}")) == Some(&i)));
    }
}

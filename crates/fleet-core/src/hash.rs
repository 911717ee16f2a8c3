//! The stable hash of a target's name, which places it in time (the scheduler's poll phase)
//! and among replicas (its shard). It must never change: a different hash would move every
//! target's phase and shard on upgrade, so it is a fixed algorithm, not `std`'s hasher (whose
//! algorithm is unspecified and may change between Rust releases).

/// 64-bit FNV-1a, then MurmurHash3's finalizer so that names differing in their last
/// characters still differ in every bit. Both are fixed algorithms: a name hashes the same in
/// every build and every Rust release.
pub fn stable_hash(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

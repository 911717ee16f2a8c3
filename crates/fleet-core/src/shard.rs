//! Which targets a replica polls and serves: `--shard=I/N` (or `[server] shard = "I/N"`) keeps
//! the targets whose name hashes to shard `I` of `N`, so `N` replicas over one config poll each
//! device exactly once between them.
//!
//! The shard of a name is Lamping and Veach's jump consistent hash ("A Fast, Minimal Memory,
//! Consistent Hash Algorithm", 2014) of the name's [`stable_hash`]: both are fixed algorithms,
//! so every build, Rust release and platform puts a name in the same shard, and replicas of
//! different versions agree. Going from `N` to `N + 1` shards moves about `1 / (N + 1)` of the
//! names, all of them into the new shard: no target changes hands between replicas that stay.
//!
//! `I` is a number, or a StatefulSet pod's name, whose ordinal ends it (`fleet-exporter-2`):
//! Kubernetes can hand a container its pod name (`--shard=$(POD_NAME)/3`) on every version,
//! while the ordinal alone needs a recent one. Anything else is an error that says what a
//! shard looks like.

use std::fmt;
use std::str::FromStr;

use crate::hash::stable_hash;

/// The most shards: far beyond any fleet, and it keeps `N` a small label value.
pub const MAX_SHARDS: u32 = 65_536;

/// Shard `index` of `count`: the replica polls the targets [`Shard::owns`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

impl Default for Shard {
    /// The only shard: every target.
    fn default() -> Self {
        Shard { index: 0, count: 1 }
    }
}

/// Why a shard does not parse. The caller adds which flag or key it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("{0:?}: expected I/N, shard I of N counted from 0 (e.g. 0/3, 2/3), where I may be a StatefulSet pod name ending in its ordinal (fleet-exporter-2/3)")]
    Format(String),
    #[error("{0:?}: N is the number of shards, 1 to {MAX_SHARDS}")]
    Count(String),
    #[error("{index}/{count}: I must be below N (shards are numbered 0 to {last})", last = .count - 1)]
    IndexTooLarge { index: u32, count: u32 },
}

impl Shard {
    pub fn new(index: u32, count: u32) -> Result<Shard, ShardError> {
        if count == 0 || count > MAX_SHARDS {
            return Err(ShardError::Count(count.to_string()));
        }
        if index >= count {
            return Err(ShardError::IndexTooLarge { index, count });
        }
        Ok(Shard { index, count })
    }

    pub fn index(&self) -> u32 {
        self.index
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    /// True when the target named `name` is this shard's.
    pub fn owns(&self, name: &str) -> bool {
        self.count == 1 || shard_of(name, self.count) == self.index
    }

    /// The shard of `count` that owns `name`.
    pub fn owner(&self, name: &str) -> Shard {
        Shard {
            index: shard_of(name, self.count),
            count: self.count,
        }
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Shard, ShardError> {
        let format = || ShardError::Format(s.to_string());
        let (index, count) = s.trim().rsplit_once('/').ok_or_else(format)?;
        let count: u32 = digits(count)
            .ok_or_else(format)?
            .parse()
            .map_err(|_| ShardError::Count(count.to_string()))?;
        // A pod name's ordinal follows its last `-`.
        let index = match index.rsplit_once('-') {
            Some((pod, ordinal)) if !pod.is_empty() => ordinal,
            _ => index,
        };
        let index: u32 =
            digits(index)
                .ok_or_else(format)?
                .parse()
                .map_err(|_| ShardError::IndexTooLarge {
                    index: u32::MAX,
                    count,
                })?;
        Shard::new(index, count)
    }
}

/// `s` when it is a non-empty run of ASCII digits.
fn digits(s: &str) -> Option<&str> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
}

/// Jump consistent hash of the name's stable hash into `count` buckets, as the paper writes it.
fn shard_of(name: &str, count: u32) -> u32 {
    let mut key = stable_hash(name);
    let (mut bucket, mut next): (i64, i64) = (-1, 0);
    while next < i64::from(count) {
        bucket = next;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        next = ((bucket + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    bucket as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("router-{i:05}")).collect()
    }

    #[test]
    fn shards_parse_from_numbers_and_statefulset_pod_names() {
        assert_eq!("0/3".parse(), Ok(Shard { index: 0, count: 3 }));
        assert_eq!("2/3".parse(), Ok(Shard { index: 2, count: 3 }));
        assert_eq!("0/1".parse(), Ok(Shard::default()));
        assert_eq!(
            "fleet-exporter-2/3".parse(),
            Ok(Shard { index: 2, count: 3 })
        );
        assert_eq!(
            "fleet-exporter-2/3".parse::<Shard>().unwrap().to_string(),
            "2/3"
        );
    }

    #[test]
    fn bad_shards_say_what_a_shard_looks_like() {
        let err = |s: &str| s.parse::<Shard>().unwrap_err().to_string();
        assert_eq!(
            err("3/3"),
            "3/3: I must be below N (shards are numbered 0 to 2)"
        );
        assert_eq!(err("0/0"), "\"0\": N is the number of shards, 1 to 65536");
        assert_eq!(
            err("0/70000"),
            "\"70000\": N is the number of shards, 1 to 65536"
        );
        for bad in [
            "a/b",
            "1",
            "/3",
            "1/",
            "-1/3",
            "1/3/",
            "fleet-exporter/3",
            "1.0/3",
            "+1/3",
        ] {
            assert!(err(bad).contains("expected I/N"), "{bad}: {}", err(bad));
        }
        assert!(err("99999999999/3").contains("I must be below N"));
    }

    #[test]
    fn every_name_belongs_to_exactly_one_shard() {
        for count in [1, 2, 3, 7] {
            for name in names(500) {
                let owners = (0..count)
                    .filter(|&i| Shard::new(i, count).unwrap().owns(&name))
                    .count();
                assert_eq!(owners, 1, "{name} in {owners} of {count} shards");
            }
        }
    }

    #[test]
    fn shards_are_even_within_a_tenth() {
        let names = names(20_000);
        for count in [2u32, 3, 5, 8] {
            let mut sizes = vec![0usize; count as usize];
            for name in &names {
                sizes[shard_of(name, count) as usize] += 1;
            }
            let fair = names.len() as f64 / f64::from(count);
            for size in &sizes {
                assert!(
                    (*size as f64 - fair).abs() < fair / 10.0,
                    "{count} shards: sizes {sizes:?}"
                );
            }
        }
    }

    #[test]
    fn one_more_shard_moves_about_one_in_n_plus_one_names_all_into_the_new_shard() {
        let names = names(20_000);
        for count in 1u32..=8 {
            let mut moved = 0;
            for name in &names {
                let (before, after) = (shard_of(name, count), shard_of(name, count + 1));
                if before != after {
                    assert_eq!(after, count, "{name} moved between old shards");
                    moved += 1;
                }
            }
            let fraction = moved as f64 / names.len() as f64;
            let expected = 1.0 / f64::from(count + 1);
            assert!(
                (fraction - expected).abs() < expected / 10.0,
                "{count} -> {}: {fraction:.3} moved, expected about {expected:.3}",
                count + 1
            );
        }
    }

    #[test]
    fn a_name_has_the_same_shard_in_every_build() {
        // Pinned from an independent implementation of FNV-1a, the finalizer and the paper's
        // jump hash: a change here would move targets between running replicas.
        assert_eq!(shard_of("hq-router", 3), 1);
        assert_eq!(shard_of("demo-gateway", 3), 0);
        assert_eq!(shard_of("sim-router-07", 4), 2);
        assert_eq!(shard_of("", 10), 1);
        assert_eq!(shard_of("branch-42", 1000), 560);
        assert_eq!(
            Shard::new(1, 3).unwrap().owner("demo-gateway").to_string(),
            "0/3"
        );
    }
}

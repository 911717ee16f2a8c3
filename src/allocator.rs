//! How the process allocator treats large blocks.
//!
//! Every poll reads answers of up to a few hundred KiB and encodes a new snapshot of similar
//! size, then frees the old ones. glibc's malloc serves blocks over its mmap threshold (128 KiB at
//! start) from their own mappings and unmaps them when freed, but each such free raises the
//! threshold to the freed size, up to 32 MiB. After the first polls, those blocks come from the
//! heap instead, and the pages they leave free stay resident: a fixed few MiB that made the
//! 10k-series figure 442 bytes per series. Pinning both thresholds at their starting values keeps
//! large blocks in mappings that go back to the system (240–270 bytes per series at 10k, 140–150
//! at 100k; CPU per poll unchanged; `BENCHMARKS.md`).

/// Pins glibc's mmap and trim thresholds, unless the environment sets either (glibc's own
/// `MALLOC_MMAP_THRESHOLD_` / `MALLOC_TRIM_THRESHOLD_`: an operator who sets them keeps them).
/// Call it once, at startup, before other threads allocate. Elsewhere than glibc it does nothing.
pub fn pin_large_block_thresholds() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const OPERATOR_SET: [&str; 2] = ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"];
        /// glibc's starting value of both thresholds.
        const THRESHOLD_BYTES: libc::c_int = 128 << 10;
        if OPERATOR_SET.iter().any(|v| std::env::var_os(v).is_some()) {
            return;
        }
        // SAFETY: mallopt only sets two allocator parameters, and takes glibc's own lock to do so.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, THRESHOLD_BYTES);
            libc::mallopt(libc::M_TRIM_THRESHOLD, THRESHOLD_BYTES);
        }
    }
}

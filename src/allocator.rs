//! How the process allocator treats large blocks.
//!
//! Every poll reads answers of up to a few hundred KiB and encodes a new snapshot of similar
//! size, then frees the old ones. glibc's malloc serves blocks over its mmap threshold (128 KiB at
//! start) from their own mappings and unmaps them when freed, but each such free raises the
//! threshold to the freed size, up to 32 MiB. After the first polls, those blocks come from the
//! heap instead, and the pages they leave free stay resident: a fixed few MiB that made the
//! 10k-series figure 442 bytes per series. Pinning the thresholds keeps large blocks in mappings
//! that go back to the system (240–270 bytes per series at 10k, 140–150 at 100k; CPU per poll
//! unchanged; `BENCHMARKS.md`).
//!
//! What stays is the heap's own free space. At fleet scale most of a snapshot is family blocks
//! of 16–128 KiB (a family of a router's 256 clients, of a Komari server's 1,000 nodes), below
//! the mmap threshold and replaced at every poll; each replacement leaves holes that later
//! blocks only partly fill. At 1M series glibc's arenas held 45 MB free of their 160 MB, all of
//! it resident. So the serving process hands the free pages inside the heap back every
//! [`RELEASE_INTERVAL`] (`malloc_trim(0)`, which returns whole free pages anywhere in every
//! arena, not only at the top): one call took RSS from 241 to 214 MiB, and the holes fill again
//! over about one poll interval, so a few seconds between calls keeps most of the gain. Polling
//! CPU is unchanged within the run-to-run spread (`BENCHMARKS.md`, Fleet scale). Not chosen:
//! limiting glibc's arenas (`MALLOC_ARENA_MAX=2` changed nothing: the free space is in holes,
//! not in idle arenas), and a lower mmap threshold (16 KiB: 250 → 203 bytes per series alone,
//! but then the scrape path's 64 KiB frames (`server.rs`) would each be mapped and faulted in).

/// Pins glibc's mmap and trim thresholds, unless the environment sets either (glibc's own
/// `MALLOC_MMAP_THRESHOLD_` / `MALLOC_TRIM_THRESHOLD_`: an operator who sets them keeps them).
/// Call it once, at startup, before other threads allocate. Elsewhere than glibc it does nothing.
pub fn pin_large_block_thresholds() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        /// glibc's starting value of both thresholds.
        const THRESHOLD_BYTES: libc::c_int = 128 << 10;
        if operator_tuned() {
            return;
        }
        // SAFETY: mallopt only sets two allocator parameters, and takes glibc's own lock to do so.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, THRESHOLD_BYTES);
            libc::mallopt(libc::M_TRIM_THRESHOLD, THRESHOLD_BYTES);
        }
    }
}

/// How often the serving process hands its heap's free pages back (the module comment says why
/// this often).
pub const RELEASE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Starts a thread that hands the free pages inside the heap back to the system every `every`
/// (glibc's `malloc_trim(0)`), unless the environment tunes glibc's thresholds (as in
/// [`pin_large_block_thresholds`], the operator then keeps the allocator as they set it). For
/// the serving process only: a short-lived one (`--healthcheck`, `--config.check`) has nothing
/// to give back. Elsewhere than glibc it does nothing.
pub fn release_free_pages_every(every: std::time::Duration) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if operator_tuned() {
            return;
        }
        let started = std::thread::Builder::new()
            .name("heap-release".into())
            .spawn(move || loop {
                std::thread::sleep(every);
                // SAFETY: malloc_trim takes each arena's own lock while it walks the arena's free
                // chunks and advises the kernel of their whole pages; it touches no live block.
                unsafe {
                    libc::malloc_trim(0);
                }
            });
        if let Err(e) = started {
            tracing::warn!(error = %e, "cannot start the heap-release thread; freed pages stay resident");
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = every;
}

/// Whether the environment sets glibc's own thresholds (`MALLOC_MMAP_THRESHOLD_`,
/// `MALLOC_TRIM_THRESHOLD_`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn operator_tuned() -> bool {
    ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"]
        .iter()
        .any(|v| std::env::var_os(v).is_some())
}

//! The serving process's allocator settings (`src/allocator.rs`), in a test binary of their own:
//! the figures are this process's memory, which no other test may share.

mod common;

use std::time::{Duration, Instant};

/// Heap blocks freed between live ones leave holes that the heap's top cannot give back; the
/// release thread hands their pages back anyway.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn freed_holes_in_the_heap_go_back_to_the_system() {
    fleet_exporter::allocator::pin_large_block_thresholds();
    /// Below the mmap threshold, so from the heap, as a router's family blocks are.
    const BLOCK: usize = 32 << 10;
    const BLOCKS: usize = 2048;
    const KEEP_EVERY: usize = 16;
    // Non-zero contents: every page is written, so resident.
    let blocks: Vec<Vec<u8>> = (0..BLOCKS)
        .map(|i| vec![(i % 255) as u8 + 1; BLOCK])
        .collect();
    let kept: Vec<Vec<u8>> = blocks
        .into_iter()
        .enumerate()
        .filter_map(|(i, b)| (i % KEEP_EVERY == KEEP_EVERY - 1).then_some(b))
        .collect();
    let (_, before) = common::memory_kib();
    let freed_kib = ((BLOCKS - BLOCKS / KEEP_EVERY) * BLOCK / 1024) as u64;

    fleet_exporter::allocator::release_free_pages_every(Duration::from_millis(20));
    // A loaded debug build may take a while to run the thread; the deadline only ends a hang.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut after = before;
    while before.saturating_sub(after) < freed_kib / 2 {
        assert!(
            Instant::now() < deadline,
            "RSS {before} KiB before, {after} KiB after: the {freed_kib} KiB freed stayed resident"
        );
        std::thread::sleep(Duration::from_millis(50));
        after = common::memory_kib().1;
    }
    assert_eq!(kept.len(), BLOCKS / KEEP_EVERY);
    assert!(kept.iter().all(|b| b.len() == BLOCK && b[0] != 0));
}

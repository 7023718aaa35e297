//! Memory figures the server sheds load on: live heap bytes and resident memory.
//!
//! The process-wide allocator lives here because only it can count the heap bytes in
//! use. This module measures; it never decides what to refuse (the `shed_load`
//! middleware does).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Counts the bytes the process has allocated and not yet freed, so load shedding can
/// judge memory in use rather than resident memory the allocator merely keeps (glibc
/// holds freed blocks in per-thread arenas, so RSS alone never falls after a spike).
#[global_allocator]
static ALLOCATOR: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, usize::MAX);

/// Heap bytes allocated and not yet freed by this process.
pub fn heap_in_use() -> u64 {
    ALLOCATOR.allocated() as u64
}

/// Load figures the server sheds work on.
#[derive(Debug, Default)]
pub struct Load {
    pub in_flight: AtomicUsize,
    pub rss_bytes: AtomicU64,
    /// Memory in use: the smaller of RSS and live heap bytes. Heap bytes that were
    /// freed do not count even if the allocator keeps them resident; heap that was
    /// reserved but never touched does not count either.
    pub in_use_bytes: AtomicU64,
}

impl Load {
    /// Samples RSS (`/proc/self/statm`) and live heap bytes.
    pub fn sample(&self) {
        let heap = heap_in_use();
        let in_use = match current_rss() {
            Some(rss) => {
                self.rss_bytes.store(rss, Ordering::Relaxed);
                rss.min(heap)
            }
            None => heap,
        };
        self.in_use_bytes.store(in_use, Ordering::Relaxed);
    }
}

/// Resident memory of this process in bytes.
pub fn current_rss() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE).ok()??;
    Some(pages * u64::try_from(page).ok()?)
}

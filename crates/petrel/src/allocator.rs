//! One setting of the C allocator, made first thing at start.
//!
//! Messages being received are held in memory, bounded by `max-smtp-in-memory`. glibc's
//! allocator serves large blocks with `mmap` and returns them to the kernel when freed, but
//! after a large block is freed it raises that threshold (up to 32 MiB), and from then on
//! message buffers come from heap arenas, which keep freed memory resident. Measured with
//! 100 sessions sending 50 MB messages (`bench/large-messages.sh`), petrel's peak RSS then
//! reached 1.2–1.6 times the budget. A fixed threshold of 1 MiB keeps every buffer of a
//! megabyte or more out of the arenas (returned when freed, and grown with `mremap`
//! instead of copied), so RSS stays within the budget (about 495 MiB for 512M); ordinary
//! messages, below a megabyte, are still served from the heap as before.

/// The size from which allocations always get their own mapping.
const MMAP_THRESHOLD: i32 = 1 << 20;

/// Fixes glibc's mmap threshold (see the module documentation). Does nothing elsewhere.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes a tuning parameter of glibc's malloc and has no
    // memory-safety preconditions; it is called once, before any other thread exists.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

//! The `stance` command line: a thin layer over the library.

mod cli;

fn main() {
    keep_freed_memory();
    std::process::exit(cli::run());
}

/// The forward allocates and frees buffers of megabytes per layer. glibc hands such
/// blocks back to the kernel on every free, so each layer paid for fresh zeroed pages
/// (page faults were ~9% of a profile). Keeping them in the heap costs no more than
/// the largest batch's buffers.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds; called before any threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
    }
}

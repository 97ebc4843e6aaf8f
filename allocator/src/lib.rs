//! The allocator of the `aqs` and `aqs-bench` binaries, defined once so that the bench
//! measures what ships: mimalloc rather than the system allocator, with its memory in large
//! (2 MiB) pages where the kernel offers them. Fewer page faults and less allocation work in
//! the projector's replay (design note 50). Linking this crate makes it the allocator of the
//! whole binary; library crates must not depend on it.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Asks the allocator for large pages. Call it first thing in `main`, before the big
/// allocations.
#[allow(unsafe_code)]
pub fn prefer_large_pages() {
    // SAFETY: sets one of the allocator's options; no memory is touched.
    unsafe { libmimalloc_sys::mi_option_set(libmimalloc_sys::mi_option_large_os_pages, 1) };
}

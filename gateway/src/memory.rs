//! Returning freed memory to the operating system after a config compile.
//!
//! Parsing a large config (10,000 keys) allocates tens of megabytes for a moment. glibc keeps
//! freed memory in the thread's arena, so without a trim the process would sit at its reload
//! high-water mark forever (measured: 11.8 MiB after startup, 30.4 MiB after reloads).

/// Asks the allocator to give free pages back. A no-op where the allocator has no such call.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    glibc::trim();
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[expect(unsafe_code, reason = "one FFI call into glibc, which has no safe binding in std")]
mod glibc {
    unsafe extern "C" {
        /// `int malloc_trim(size_t pad)`: releases free memory at the top of every arena and
        /// unused pages inside them (glibc ≥ 2.8). Thread-safe; touches only free memory.
        fn malloc_trim(pad: usize) -> i32;
    }

    pub fn trim() {
        // SAFETY: malloc_trim takes no pointers and only operates on the allocator's own free
        // lists; any pad value is valid.
        unsafe {
            malloc_trim(0);
        }
    }
}

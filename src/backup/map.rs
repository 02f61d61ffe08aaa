//! A read-only shared memory map of a file, whose pages can be dropped from
//! this process's resident set once read: `MADV_DONTNEED` on such a map only
//! unmaps pages (the next access faults them back from the page cache), so
//! reading a file of any size through it keeps memory flat (issue 14).

use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr;

pub(super) struct Map {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the map is read-only and owned by this value; reading it from
// several threads is as safe as reading a shared slice.
unsafe impl Send for Map {}
unsafe impl Sync for Map {}

impl Map {
    /// Maps the first `len` bytes of `fd`'s file; None when `len` is 0 or
    /// the kernel refuses (callers then read instead).
    ///
    /// The file must not shrink below `len` while mapped (reading past its
    /// end would raise SIGBUS): callers hold a lock that keeps it still, or
    /// read a finished backup.
    pub(super) fn new(fd: BorrowedFd<'_>, len: u64) -> Option<Map> {
        let len = usize::try_from(len).ok().filter(|&l| l > 0)?;
        // SAFETY: a new read-only shared mapping; nothing else refers to it.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return None;
        }
        Some(Map { ptr: p.cast(), len })
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The bytes at `offset`, at most `len` of them.
    pub(super) fn bytes(&self, offset: usize, len: usize) -> &[u8] {
        let start = offset.min(self.len);
        let len = len.min(self.len - start);
        // SAFETY: the range lies inside the mapping, alive as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.add(start), len) }
    }

    /// A pointer into the map for SQLite's xFetch; valid while `self` is.
    pub(super) fn at(&self, offset: usize) -> *mut u8 {
        // SAFETY: callers pass offsets inside the mapping.
        unsafe { self.ptr.add(offset.min(self.len)) }
    }

    /// Drops the pages of `[start, end)` from the resident set.
    pub(super) fn drop_pages(&self, start: usize, end: usize) {
        let page = rustix::param::page_size();
        let start = start / page * page;
        let end = end.min(self.len);
        if end > start {
            // SAFETY: the range lies inside this read-only shared mapping,
            // which only `Drop` unmaps; on such a mapping MADV_DONTNEED
            // cannot lose data.
            unsafe {
                libc::madvise(self.ptr.add(start).cast(), end - start, libc::MADV_DONTNEED);
            }
        }
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once.
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
        }
    }
}

//! The system calls that move the byte copy's bytes (see `stream`): direct
//! writes that bypass the page cache, the kernel's own copy, read-ahead and
//! write-back hints. Each has a portable stand-in where the system lacks it,
//! and `unsupported` tells a refusal that means "take another route" from a
//! failure of the copy.

use std::fs::File;
use std::io;
use std::os::fd::BorrowedFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Written bytes handed to the disk this often, so the final fsync has
/// little left to do (the kernel would otherwise wait for gigabytes).
const FLUSH_EVERY: u64 = 16 << 20;

/// The temporary opened a second time, for writes that bypass the page cache;
/// None where the filesystem or the system has no such thing.
#[cfg(target_os = "linux")]
pub(super) fn open_direct(path: &Path) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT | libc::O_NOFOLLOW)
        .open(path)
        .ok()
}

#[cfg(not(target_os = "linux"))]
pub(super) fn open_direct(_path: &Path) -> Option<File> {
    None
}

/// Starts reading `len` bytes of the source at `offset` into the page cache:
/// a source that is not there yet is read while the chunk before is written
/// (the write itself would fault it in page by page). Nothing is mapped, and
/// pages already cached are left as they are.
#[cfg(target_os = "linux")]
pub(super) fn prefetch(fd: BorrowedFd<'_>, offset: u64, len: u64) {
    // A hint only: an error leaves the reading to the write.
    let _ = rustix::fs::fadvise(
        fd,
        offset,
        std::num::NonZeroU64::new(len),
        rustix::fs::Advice::WillNeed,
    );
}

#[cfg(not(target_os = "linux"))]
pub(super) fn prefetch(_fd: BorrowedFd<'_>, _offset: u64, _len: u64) {}

/// `bytes` written at `offset` of a file opened by `open_direct`; false when
/// refused for the way they lie (not aligned as the device needs, say), which
/// the buffered descriptor then writes instead.
pub(super) fn direct_write(file: &File, bytes: &[u8], offset: u64) -> io::Result<bool> {
    match file.write_all_at(bytes, offset) {
        Ok(()) => Ok(true),
        Err(e) if unsupported(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// `n` bytes at `offset` of `from` to the same offset of `to`, in the kernel.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(super) fn kernel_copy(
    from: BorrowedFd<'_>,
    to: &File,
    offset: u64,
    n: usize,
) -> io::Result<()> {
    let (mut src, mut dst) = (offset, offset);
    let end = offset + n as u64;
    while src < end {
        let left = (end - src) as usize;
        match rustix::fs::copy_file_range(from, Some(&mut src), to, Some(&mut dst), left) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Elsewhere (macOS has no `copy_file_range`) the buffered route copies.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(super) fn kernel_copy(
    _from: BorrowedFd<'_>,
    _to: &File,
    _offset: u64,
    _n: usize,
) -> io::Result<()> {
    Err(io::Error::from_raw_os_error(libc::ENOSYS))
}

/// Errors that mean "copy it yourself" rather than "the copy failed".
pub(super) fn unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOSYS | libc::EXDEV | libc::EINVAL | libc::EOPNOTSUPP | libc::EBADF)
    )
}

/// Starts write-back of what was written since the last call, every
/// `FLUSH_EVERY` bytes, without waiting for it: the disk works while the
/// copy, the hash and the check go on, and `sync_all` only waits for the tail.
#[derive(Default)]
pub(super) struct Flusher {
    flushed: u64,
}

impl Flusher {
    pub(super) fn written(&mut self, out: &File, done: u64) {
        if done - self.flushed >= FLUSH_EVERY {
            start_writeback(out, self.flushed, done - self.flushed);
            self.flushed = done;
        }
    }
}

#[cfg(target_os = "linux")]
fn start_writeback(out: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // A hint only: an error leaves the work to the final fsync.
    // SAFETY: the descriptor is open for as long as `out` is borrowed.
    unsafe {
        libc::sync_file_range(
            out.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

/// Elsewhere the final fsync does all of it.
#[cfg(not(target_os = "linux"))]
fn start_writeback(_out: &File, _offset: u64, _len: u64) {}

//! Reading the live database file for a backup without a descriptor of our
//! own (see `DbFile`).

use std::io::{self, Read};
use std::os::fd::{BorrowedFd, RawFd};
use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::Problem;

/// The live database file, read through the file handle of a dedicated
/// read-only SQLite connection instead of a descriptor of our own.
///
/// POSIX drops every lock a process holds on a file as soon as the process
/// closes *any* descriptor of that file. SQLite's unix VFS knows this and keeps
/// its own descriptors open while locks are held; a plain `File` does not. Before
/// this, closing the `File` used for the copy silently released the write lock
/// that `up` holds across the backup (SPEC `up`: no unnoticed writes between the
/// backup and the first migration) and the SHARED lock that keeps the file
/// stable, so another process could write in between.
pub(super) struct DbFile {
    // Owns the sqlite3_file that `file` points into; closing it goes through
    // SQLite, which defers the close while this process holds locks.
    _conn: Connection,
    file: *mut rusqlite::ffi::sqlite3_file,
    /// SQLite's descriptor of the file, when it could be confirmed (`unix_fd`).
    fd: Option<RawFd>,
    pub(super) size: u64,
    offset: u64,
}

impl DbFile {
    /// Opens `db` through a read-only connection that reads nothing and takes
    /// no lock by itself: the caller's lock is what keeps the bytes still.
    pub(super) fn open(db: &Path) -> Result<DbFile, Problem> {
        use rusqlite::ffi;
        let conn = Connection::open_with_flags(
            db,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(Problem::Sqlite)?;
        let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
        // SAFETY: SQLITE_FCNTL_FILE_POINTER stores the main database's
        // `sqlite3_file*` (owned by `conn`, opened when `conn` was) into `file`.
        let rc = unsafe {
            ffi::sqlite3_file_control(
                conn.handle(),
                c"main".as_ptr(),
                ffi::SQLITE_FCNTL_FILE_POINTER,
                (&mut file as *mut *mut ffi::sqlite3_file).cast(),
            )
        };
        // SAFETY: `file` is null or points to the live sqlite3_file of `conn`.
        if rc != ffi::SQLITE_OK || file.is_null() || unsafe { (*file).pMethods.is_null() } {
            return Err(Problem::Sqlite(rusqlite::Error::SqliteFailure(
                ffi::Error::new(ffi::SQLITE_CANTOPEN),
                Some(format!("cannot read {}", db.display())),
            )));
        }
        let mut size: i64 = 0;
        // SAFETY: `file` and its methods are valid while `conn` is open.
        let rc = unsafe {
            match (*(*file).pMethods).xFileSize {
                Some(file_size) => file_size(file, &mut size),
                None => ffi::SQLITE_MISUSE,
            }
        };
        if rc != ffi::SQLITE_OK {
            return Err(Problem::Sqlite(rusqlite::Error::SqliteFailure(
                ffi::Error::new(rc),
                Some(format!("cannot read the size of {}", db.display())),
            )));
        }
        // SAFETY: `file` is the live sqlite3_file of `conn`, opened by the unix VFS.
        let fd = unsafe { unix_fd(file, db) };
        Ok(DbFile {
            _conn: conn,
            file,
            fd,
            size: size.max(0) as u64,
            offset: 0,
        })
    }
}

impl DbFile {
    /// SQLite's descriptor of the file, for the kernel to copy from and the
    /// hasher to map: borrowed, never closed (see `DbFile`).
    pub(super) fn fd(&self) -> Option<BorrowedFd<'_>> {
        // SAFETY: the descriptor stays open while `_conn` is, which `self` owns.
        self.fd.map(|fd| unsafe { BorrowedFd::borrow_raw(fd) })
    }

    /// Where the next read starts.
    pub(super) fn seek_to(&mut self, offset: u64) {
        self.offset = offset;
    }

    /// Reads only the first `len` bytes (a WAL database's file can hold pages
    /// past the end of the snapshot being copied). False when it is shorter.
    pub(super) fn truncate_to(&mut self, len: u64) -> bool {
        let fits = len <= self.size;
        self.size = self.size.min(len);
        fits
    }
}

impl Read for DbFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // The caller's SHARED lock keeps the size fixed; read exactly what is left.
        let n = (self.size.saturating_sub(self.offset)).min(buf.len().min(1 << 30) as u64) as usize;
        if n == 0 {
            return Ok(0);
        }
        // SAFETY: `file` is valid while `_conn` is open; `buf` has room for `n` bytes.
        let rc = unsafe {
            match (*(*self.file).pMethods).xRead {
                Some(x_read) => x_read(
                    self.file,
                    buf.as_mut_ptr().cast(),
                    n as std::os::raw::c_int,
                    self.offset as i64,
                ),
                None => rusqlite::ffi::SQLITE_MISUSE,
            }
        };
        if rc != rusqlite::ffi::SQLITE_OK {
            return Err(io::Error::other(format!(
                "SQLite could not read the database file (code {rc})"
            )));
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// The start of `unixFile` (os_unix.c): its methods, its VFS, its inode, and
/// then `h`, the descriptor.
#[repr(C)]
struct UnixFilePrefix {
    methods: *const std::ffi::c_void,
    vfs: *const std::ffi::c_void,
    inode: *const std::ffi::c_void,
    h: std::ffi::c_int,
}

/// The descriptor of a file the unix VFS opened, read from the head of its
/// `unixFile`, and trusted only when fstat says it is open on `path` (same
/// device and inode). SQLite has no call that hands it out.
///
/// # Safety
/// `file` points to a live `sqlite3_file` opened by the unix VFS.
pub(super) unsafe fn unix_fd(
    file: *const rusqlite::ffi::sqlite3_file,
    path: &Path,
) -> Option<RawFd> {
    use std::os::unix::fs::MetadataExt;
    let h = (*file.cast::<UnixFilePrefix>()).h;
    if h < 0 {
        return None;
    }
    use std::os::fd::FromRawFd;
    // A `File` that is never dropped, so the descriptor is never closed.
    let open = std::mem::ManuallyDrop::new(std::fs::File::from_raw_fd(h));
    let st = open.metadata().ok()?;
    let meta = std::fs::metadata(path).ok()?;
    (st.dev() == meta.dev() && st.ino() == meta.ino()).then_some(h)
}

//! Reading the live database file for a backup without a descriptor of our
//! own (see `DbFile`), from SQLite's memory map where it has one.

use std::io::{self, Read};
use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::copy::read_full;
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
    pub(super) size: u64,
    offset: u64,
}

impl DbFile {
    /// Hands the next chunk of at most `max` bytes to `use_bytes`: straight from
    /// SQLite's memory map of the file when it has one, else read into `buf`.
    /// Returns the chunk's length, 0 at the end.
    pub(super) fn next_chunk(
        &mut self,
        max: usize,
        buf: &mut Vec<u8>,
        mut use_bytes: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<usize> {
        let n = (self.size.saturating_sub(self.offset)).min(max as u64) as usize;
        if n == 0 {
            return Ok(0);
        }
        if let Some(ptr) = self.fetch(n) {
            // SAFETY: SQLite's xFetch returned a pointer to `n` readable bytes of
            // its read-only shared mapping; it stays valid until xUnfetch below.
            let bytes = unsafe { std::slice::from_raw_parts(ptr, n) };
            let result = use_bytes(bytes);
            self.unfetch(ptr, n);
            result?;
            self.offset += n as u64;
            return Ok(n);
        }
        buf.resize(n, 0);
        let got = read_full(self, &mut buf[..n])?;
        use_bytes(&buf[..got])?;
        Ok(got)
    }

    /// A pointer into SQLite's memory map for `n` bytes at the current offset.
    fn fetch(&mut self, n: usize) -> Option<*const u8> {
        let n_int = std::os::raw::c_int::try_from(n).ok()?;
        let mut p: *mut std::os::raw::c_void = std::ptr::null_mut();
        // SAFETY: `file` and its methods are valid while `_conn` is open; xFetch
        // exists from io-methods version 3 on, which is checked first.
        let rc = unsafe {
            let methods = &*(*self.file).pMethods;
            match (methods.iVersion >= 3, methods.xFetch) {
                (true, Some(x_fetch)) => x_fetch(self.file, self.offset as i64, n_int, &mut p),
                _ => return None,
            }
        };
        (rc == rusqlite::ffi::SQLITE_OK && !p.is_null()).then_some(p as *const u8)
    }

    /// Releases a chunk from `fetch`, its pages dropped from this process's
    /// page tables first (see `drop_pages`).
    fn unfetch(&mut self, p: *const u8, n: usize) {
        drop_pages(p, n);
        // SAFETY: `p`/`n` came from `fetch` at this offset, and the file's
        // methods are valid while `_conn` is open.
        unsafe {
            let methods = &*(*self.file).pMethods;
            if let Some(x_unfetch) = methods.xUnfetch {
                x_unfetch(
                    self.file,
                    self.offset as i64,
                    p as *mut std::os::raw::c_void,
                );
            }
        }
    }

    /// For a whole copy: SQLite maps the file (up to its 2 GiB limit) so chunks
    /// can be written and hashed without first copying them into a buffer.
    pub(super) fn open(db: &Path) -> Result<DbFile, Problem> {
        DbFile::open_with(db, true)
    }

    /// For a few bytes (the header): no mapping.
    pub(super) fn open_unmapped(db: &Path) -> Result<DbFile, Problem> {
        DbFile::open_with(db, false)
    }

    fn open_with(db: &Path, mapped: bool) -> Result<DbFile, Problem> {
        use rusqlite::ffi;
        let conn = Connection::open_with_flags(
            db,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(Problem::Sqlite)?;
        if mapped {
            // A setting only: takes no lock and reads nothing.
            let _ = conn.execute_batch("PRAGMA mmap_size = 2147418112");
        }
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
        Ok(DbFile {
            _conn: conn,
            file,
            size: size.max(0) as u64,
            offset: 0,
        })
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

/// Drops the pages of a mapped chunk from this process's page tables (they
/// stay in the OS page cache), so resident memory does not grow with the file.
#[cfg(unix)]
fn drop_pages(p: *const u8, n: usize) {
    let page = rustix::param::page_size();
    let start = (p as usize) & !(page - 1);
    let len = (p as usize + n) - start;
    // SAFETY: the range lies within SQLite's read-only shared mapping of the
    // file (rounded down to its page); MADV_DONTNEED on such a mapping only
    // unmaps pages, it cannot lose data.
    unsafe {
        libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED);
    }
}

/// Elsewhere the mapping is left to the OS.
#[cfg(not(unix))]
fn drop_pages(_p: *const u8, _n: usize) {}

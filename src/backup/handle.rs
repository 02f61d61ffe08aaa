//! Reading the database file through SQLite's own open handle.
//!
//! POSIX (fcntl) locks belong to the process, and closing *any* descriptor of
//! a file releases all of them. Opening the database a second time with
//! `File::open` and closing it after the copy silently dropped the write lock
//! `up` holds across the backup (SPEC `up`: "hold the write lock across both"):
//! another process could then write between the backup and the first
//! migration, or reuse the `-journal` name under a running migration (issue 6,
//! found by the fault tests). SQLite defers closing its own descriptors while
//! the process holds locks; borrowing its handle means we never close one.

use std::io;
use std::marker::PhantomData;

use rusqlite::{ffi, Connection};

/// The main database file of an open connection, readable at offsets.
pub(super) struct DbFile<'c> {
    file: *mut ffi::sqlite3_file,
    conn: PhantomData<&'c Connection>,
}

impl<'c> DbFile<'c> {
    pub fn of(conn: &'c Connection) -> io::Result<DbFile<'c>> {
        let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
        // SAFETY: SQLITE_FCNTL_FILE_POINTER writes the main database's
        // `sqlite3_file` pointer, which stays valid while `conn` is open; the
        // lifetime ties `DbFile` to that borrow.
        let rc = unsafe {
            ffi::sqlite3_file_control(
                conn.handle(),
                c"main".as_ptr(),
                ffi::SQLITE_FCNTL_FILE_POINTER,
                (&mut file as *mut *mut ffi::sqlite3_file).cast(),
            )
        };
        // SAFETY: `file` is null or points at SQLite's open file object.
        if rc != ffi::SQLITE_OK || file.is_null() || unsafe { (*file).pMethods.is_null() } {
            return Err(io::Error::other(format!(
                "cannot reach the database file through SQLite (code {rc})"
            )));
        }
        Ok(DbFile {
            file,
            conn: PhantomData,
        })
    }

    fn methods(&self) -> &ffi::sqlite3_io_methods {
        // SAFETY: checked non-null in `of`; SQLite keeps it while the file is open.
        unsafe { &*(*self.file).pMethods }
    }

    pub fn size(&self) -> io::Result<u64> {
        let size_of = self.methods().xFileSize.ok_or_else(missing)?;
        let mut size: ffi::sqlite3_int64 = 0;
        // SAFETY: the VFS's own method on its own open file.
        let rc = unsafe { size_of(self.file, &mut size) };
        check(rc)?;
        Ok(size.max(0) as u64)
    }

    /// Fills `buf` from `offset`; the caller stays within `size()`.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let read = self.methods().xRead.ok_or_else(missing)?;
        let len = i32::try_from(buf.len()).map_err(io::Error::other)?;
        // SAFETY: `buf` is valid for `len` bytes; the VFS's own method.
        let rc = unsafe { read(self.file, buf.as_mut_ptr().cast(), len, offset as i64) };
        check(rc)
    }
}

fn missing() -> io::Error {
    io::Error::other("the SQLite VFS has no read method")
}

fn check(rc: i32) -> io::Result<()> {
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "SQLite could not read the database file (code {rc})"
        )))
    }
}

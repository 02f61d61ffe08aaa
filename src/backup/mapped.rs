//! The VFS of the connections that check a database: SQLite's own unix VFS,
//! except that the main database file is read through a memory map of this
//! module's, whose pages are dropped from resident memory as the check goes.
//!
//! Why (issue 14): `quick_check` reads every table twice (its b-tree walk,
//! then a row scan for constraints and record formats), so through `pread`
//! a 1 GiB file costs half a million system calls, most of the check's time.
//! SQLite's own memory map removes them, but every page it touches stays
//! resident until the connection closes, and it stops at 2 GiB. This map
//! covers the whole file, and whenever the pages handed out enter a new
//! region beyond `REGIONS` of them it drops the map's pages with
//! `MADV_DONTNEED`, which on a read-only shared file mapping only unmaps pages (the next access faults them back from the page cache).
//! Because the map is this module's, it is never unmapped while dropping.
//!
//! Only reads change: the file is the unix VFS's (its locks, its descriptor),
//! and `xFetch` keeps SQLite's contract (null means "use xRead"; a 256-byte
//! margin after the page, as os_unix.c leaves for overreads of damaged pages).

use std::ffi::{c_int, c_void, CStr};
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use rusqlite::ffi;
use rusqlite::{Connection, OpenFlags};

use super::map::Map;

/// The VFS name, for `Connection::open_with_flags_and_vfs` and `vfs=` in URIs.
pub(super) const NAME: &str = "backstop-mapped";
const NAME_C: &CStr = c"backstop-mapped";

/// What one page fault can map in: the page cache holds files in folios of up
/// to 2 MiB, and a fault maps the folio around the page, not the page alone.
const REGION: usize = 2 << 20;
/// Regions entered between two drops: the map's resident set stays under
/// `REGIONS * REGION` bytes, whatever the size of the file.
const REGIONS: usize = 4;
/// Bytes that must stay addressable after a fetched page (os_unix.c's `nEofBuffer`).
const EOF_MARGIN: i64 = 256;

/// Opens `path` read-only through this VFS, with fetching switched on (SQLite
/// only asks a VFS for mapped pages when `mmap_size` is above zero). Falls back
/// to the plain unix VFS when this one cannot be registered.
pub(super) fn open(path: impl AsRef<Path>, flags: OpenFlags) -> rusqlite::Result<Connection> {
    let conn = if registered() {
        Connection::open_with_flags_and_vfs(path, flags, NAME)?
    } else {
        Connection::open_with_flags(path, flags)?
    };
    // A setting: reads nothing and takes no lock. The size is only a switch
    // here; this VFS maps the whole file whatever it says.
    conn.execute_batch("PRAGMA mmap_size = 1048576")?;
    Ok(conn)
}

/// Registers the VFS once per process; false when SQLite has no unix VFS.
pub(super) fn registered() -> bool {
    static DONE: OnceLock<bool> = OnceLock::new();
    *DONE.get_or_init(|| {
        // SAFETY: sqlite3_vfs_find initializes SQLite and returns a VFS that
        // lives for the process, or null. The struct registered here is leaked
        // on purpose: SQLite keeps a pointer to it for the process's lifetime.
        unsafe {
            let unix = ffi::sqlite3_vfs_find(c"unix".as_ptr());
            if unix.is_null() || (*unix).xOpen.is_none() {
                return false;
            }
            let offset = extra_offset((*unix).szOsFile);
            EXTRA_AT.store(offset as usize, Ordering::Relaxed);
            let mut vfs = *unix;
            vfs.zName = NAME_C.as_ptr();
            vfs.pAppData = unix.cast();
            vfs.szOsFile = offset + size_of::<Extra>() as c_int;
            vfs.xOpen = Some(x_open);
            vfs.pNext = ptr::null_mut();
            let vfs = Box::leak(Box::new(vfs));
            ffi::sqlite3_vfs_register(vfs, 0) == ffi::SQLITE_OK
        }
    })
}

/// Where this module's state starts in a file: after the unix VFS's, aligned.
fn extra_offset(unix_size: c_int) -> c_int {
    let align = align_of::<Extra>() as c_int;
    (unix_size + align - 1) / align * align
}

/// This module's state, after the unix VFS's `unixFile` in each file.
struct Extra {
    /// The methods SQLite calls: the unix ones, with fetching replaced.
    methods: ffi::sqlite3_io_methods,
    unix: *const ffi::sqlite3_io_methods,
    /// The unix VFS's descriptor (`file::unix_fd`), -1 when unconfirmed.
    fd: c_int,
    map: Option<Map>,
    /// No map can be had (too small, mmap failed): always xRead.
    unmappable: bool,
    /// The regions entered since the last drop (what can be resident).
    regions: [usize; REGIONS],
    entered: usize,
}

/// Where `Extra` starts in a file of this VFS (set at registration).
static EXTRA_AT: AtomicUsize = AtomicUsize::new(0);

/// # Safety
/// `file` was allocated by SQLite with this VFS's `szOsFile` bytes.
unsafe fn extra(file: *mut ffi::sqlite3_file) -> *mut Extra {
    file.cast::<u8>()
        .add(EXTRA_AT.load(Ordering::Relaxed))
        .cast()
}

unsafe extern "C" fn x_open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let unix = (*vfs).pAppData.cast::<ffi::sqlite3_vfs>();
    let Some(unix_open) = (*unix).xOpen else {
        return ffi::SQLITE_CANTOPEN;
    };
    let rc = unix_open(unix, name, file, flags, out_flags);
    let methods = (*file).pMethods;
    if rc != ffi::SQLITE_OK
        || methods.is_null()
        || flags & ffi::SQLITE_OPEN_MAIN_DB == 0
        || (*methods).iVersion < 3
        || name.is_null()
    {
        // Journals, WAL and temporary files: the unix VFS's, untouched.
        return rc;
    }
    let path = Path::new(std::ffi::OsStr::from_bytes(CStr::from_ptr(name).to_bytes()));
    let fd = super::file::unix_fd(file, path);
    let mut ours = *methods;
    ours.xFetch = Some(x_fetch);
    ours.xUnfetch = Some(x_unfetch);
    ours.xClose = Some(x_close);
    extra(file).write(Extra {
        methods: ours,
        unix: methods,
        fd: fd.unwrap_or(-1),
        map: None,
        unmappable: fd.is_none(),
        regions: [0; REGIONS],
        entered: 0,
    });
    (*file).pMethods = &(*extra(file)).methods;
    rc
}

unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    let e = extra(file);
    (*e).map = None;
    let unix = (*e).unix;
    // The unix VFS closes with its own methods, as if this module were not there.
    (*file).pMethods = unix;
    match (*unix).xClose {
        Some(close) => close(file),
        None => ffi::SQLITE_OK,
    }
}

unsafe extern "C" fn x_fetch(
    file: *mut ffi::sqlite3_file,
    offset: i64,
    amount: c_int,
    out: *mut *mut c_void,
) -> c_int {
    *out = ptr::null_mut();
    let e = &mut *extra(file);
    if e.map.is_none() && !e.unmappable {
        map(file, e);
    }
    let Some(map) = &e.map else {
        return ffi::SQLITE_OK;
    };
    let end = offset.saturating_add(i64::from(amount));
    if offset < 0 || end.saturating_add(EOF_MARGIN) > map.len() as i64 {
        // SQLite reads this page with xRead instead.
        return ffi::SQLITE_OK;
    }
    let offset = offset as usize;
    *out = map.at(offset).cast();
    #[cfg(test)]
    tests::FETCHED.fetch_add(1, Ordering::Relaxed);
    let region = offset / REGION;
    if !e.regions[..e.entered].contains(&region) {
        if e.entered == REGIONS {
            // All of it, not only the pages handed out since the last drop:
            // pages SQLite still holds from before (a b-tree's interior pages
            // during the walk) fault back in when read, without a fetch that
            // would record them. Untouched parts of the map cost nothing here.
            map.drop_pages(0, map.len());
            e.entered = 0;
        }
        e.regions[e.entered] = region;
        e.entered += 1;
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_unfetch(file: *mut ffi::sqlite3_file, offset: i64, p: *mut c_void) -> c_int {
    if p.is_null() {
        // "The file may have changed": SQLite holds no mapped page now (its
        // contract for a null pointer), so the map can go; the next fetch
        // maps the file at its new size.
        let e = &mut *extra(file);
        e.map = None;
        if let Some(unfetch) = (*e.unix).xUnfetch {
            return unfetch(file, offset, p);
        }
    }
    ffi::SQLITE_OK
}

/// Maps the whole file as it is now.
unsafe fn map(file: *mut ffi::sqlite3_file, e: &mut Extra) {
    let mut size: i64 = 0;
    let sized = match (*e.unix).xFileSize {
        Some(file_size) => file_size(file, &mut size) == ffi::SQLITE_OK,
        None => false,
    };
    // Small files are not worth it.
    if !sized || size < 2 * 4096 || e.fd < 0 {
        return;
    }
    e.map = Map::new(BorrowedFd::borrow_raw(e.fd), size as u64);
    e.unmappable = e.map.is_none();
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use rusqlite::{Connection, OpenFlags};

    use super::super::verify::{open_backup, quick_check};

    /// Pages handed out from a map, in this test process.
    pub(super) static FETCHED: AtomicUsize = AtomicUsize::new(0);

    /// A rollback-journal database of about 24 MiB (many `REGION`s), one
    /// 3,000-byte row per 4 KiB page.
    fn big(path: &std::path::Path) {
        let c = Connection::open(path).unwrap();
        c.execute_batch(
            "PRAGMA page_size = 4096;
             CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB NOT NULL);
             WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < 6000)
             INSERT INTO t (b) SELECT randomblob(3000) FROM n;",
        )
        .unwrap();
    }

    fn digest(c: &Connection) -> (i64, i64) {
        c.query_row(
            "SELECT count(*), sum(unicode(substr(b, 100, 1)) + length(b)) FROM t",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    }

    #[test]
    fn reads_through_the_map_match_reads_through_the_unix_vfs() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("big.db");
        big(&db);
        let plain = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let before = FETCHED.load(Ordering::Relaxed);
        let mapped = open_backup(&db).unwrap();
        assert_eq!(digest(&mapped), digest(&plain));
        assert!(
            FETCHED.load(Ordering::Relaxed) >= before + 6000,
            "pages were not read through the map"
        );
        quick_check(&mapped, &db).unwrap();
    }

    #[test]
    fn quick_check_through_the_map_finds_a_damaged_page_in_the_middle() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("big.db");
        big(&db);
        let mut bytes = std::fs::read(&db).unwrap();
        // A leaf page's cell pointers and content, far from the file's end
        // (whose last page SQLite reads with xRead, outside the map).
        let page = 3000 * 4096;
        for b in &mut bytes[page + 8..page + 4096] {
            *b = 0x41;
        }
        std::fs::write(&db, &bytes).unwrap();
        let conn = open_backup(&db).unwrap();
        let err = quick_check(&conn, &db).expect_err("damage not found");
        assert!(err.to_string().contains("quick_check"), "{err}");
    }
}

//! The byte copy's routes, byte for byte and hash for hash.

use sha2::{Digest, Sha256};

use super::super::copy::Target;
use super::super::file::DbFile;
use super::{copy_with, Header, Route};
use crate::checksum::hex;
use crate::observe::{Interrupt, Silent};

/// A WAL-mode database file of a few direct chunks and a bit (not a multiple
/// of one), with pages of `page_size` bytes.
fn source(dir: &std::path::Path, page_size: u32) -> std::path::PathBuf {
    let db = dir.join(format!("src-{page_size}.db"));
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(&format!(
        "PRAGMA page_size = {page_size}; PRAGMA journal_mode = WAL;
         CREATE TABLE t (b BLOB);
         WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < 2300)
         INSERT INTO t SELECT randomblob(3900 + k % 7) FROM n;
         PRAGMA wal_checkpoint(TRUNCATE);"
    ))
    .unwrap();
    drop(c);
    db
}

/// Whether the filesystem of `dir` takes direct writes at all (tmpfs on an
/// older kernel does not: the copy then rightly takes the kernel route).
fn takes_direct_writes(dir: &std::path::Path) -> bool {
    let probe = dir.join("probe");
    std::fs::write(&probe, b"").unwrap();
    super::super::os_copy::open_direct(&probe).is_some()
}

fn copy_and_check(db: &std::path::Path, route: Route, header: Header) -> super::Streamed {
    let dir = db.parent().unwrap();
    let original = std::fs::read(db).unwrap();
    let tmp = dir.join("copy");
    let out = std::fs::File::create(&tmp).unwrap();
    let interrupt = Interrupt::default();
    let to = Target {
        out: &out,
        tmp: &tmp,
        interrupt: &interrupt,
        extensions: &[],
    };
    let got = copy_with(DbFile::open(db).unwrap(), header, route, &to, &mut Silent).unwrap();
    let copied = std::fs::read(&tmp).unwrap();
    let mut expected = original.clone();
    if header == Header::RollbackJournal {
        expected[18] = 1;
        expected[19] = 1;
    }
    assert!(copied == expected, "bytes differ ({route:?})");
    assert_eq!(got.size, original.len() as u64);
    assert_eq!(got.sha256, hex(&Sha256::digest(&copied)));
    let counter = u32::from_be_bytes(original[24..28].try_into().unwrap());
    assert_eq!(got.change_counter, Some(counter));
    got
}

#[test]
fn every_route_copies_every_byte_and_hashes_what_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let db = source(dir.path(), 4096);
    let original = std::fs::read(&db).unwrap();
    assert_eq!((original[18], original[19]), (2, 2));
    assert!(original.len() > 2 * super::DIRECT_CHUNK && original.len() % super::CHUNK != 0);
    // Else the kernel route would quietly be the buffered one.
    assert!(
        DbFile::open(&db).unwrap().fd().is_some(),
        "SQLite's descriptor not found"
    );
    let direct = takes_direct_writes(dir.path());
    for route in [Route::Direct, Route::Kernel, Route::Buffered] {
        for header in [Header::AsIs, Header::RollbackJournal] {
            let got = copy_and_check(&db, route, header);
            match route {
                // All but the first chunk, which may have its header rewritten;
                // none where the filesystem takes no direct writes.
                Route::Direct if direct => {
                    assert_eq!(got.direct, got.size - super::CHUNK as u64)
                }
                _ => assert_eq!(got.direct, 0),
            }
        }
    }
}

#[test]
fn small_pages_copy_exactly_whatever_the_device_aligns_to() {
    let dir = tempfile::tempdir().unwrap();
    // 1 KiB pages: the file ends where no 4 KiB block does.
    let db = source(dir.path(), 1024);
    assert_ne!(std::fs::metadata(&db).unwrap().len() % 4096, 0);
    let got = copy_and_check(&db, Route::Direct, Header::AsIs);
    if takes_direct_writes(dir.path()) {
        // The aligned middle at least.
        assert!(got.direct >= super::DIRECT_CHUNK as u64, "{}", got.direct);
    }
}

#[test]
fn a_direct_write_refused_for_its_alignment_says_so_instead_of_failing() {
    let dir = tempfile::tempdir().unwrap();
    let db = source(dir.path(), 4096);
    if !takes_direct_writes(dir.path()) {
        // Nothing to refuse where nothing is written direct (see the test above).
        return;
    }
    let input = DbFile::open(&db).unwrap();
    let map = super::Map::new(input.fd().unwrap(), input.size).unwrap();
    let out = dir.path().join("copy");
    std::fs::write(&out, b"").unwrap();
    let file = super::super::os_copy::open_direct(&out).unwrap();
    // No device takes a write at byte 100 without the page cache.
    assert!(!super::super::os_copy::direct_write(&file, map.bytes(4096, 4096), 100).unwrap());
    assert!(super::super::os_copy::direct_write(&file, map.bytes(4096, 4096), 4096).unwrap());
    let copied = std::fs::read(&out).unwrap();
    assert_eq!(&copied[4096..8192], map.bytes(4096, 4096));
}

#[test]
fn a_copy_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let db = source(dir.path(), 4096);
    let tmp = dir.path().join("copy");
    let out = std::fs::File::create(&tmp).unwrap();
    let interrupt = Interrupt::default();
    interrupt.trigger();
    let to = Target {
        out: &out,
        tmp: &tmp,
        interrupt: &interrupt,
        extensions: &[],
    };
    let got = copy_with(
        DbFile::open(&db).unwrap(),
        Header::AsIs,
        Route::Kernel,
        &to,
        &mut Silent,
    );
    assert!(matches!(got, Err(super::Problem::Interrupted)));
}

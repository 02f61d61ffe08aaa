//! The byte copy's two routes, byte for byte and hash for hash.

use sha2::{Digest, Sha256};

use super::super::copy::Target;
use super::super::file::DbFile;
use super::{copy_with, Header, Route};
use crate::checksum::hex;
use crate::observe::{Interrupt, Silent};

/// A WAL-mode database file of a few chunks and a bit (not a multiple of one).
fn source(dir: &std::path::Path) -> std::path::PathBuf {
    let db = dir.join("src.db");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(
        "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL;
         CREATE TABLE t (b BLOB);
         WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < 900)
         INSERT INTO t SELECT randomblob(3900) FROM n;
         PRAGMA wal_checkpoint(TRUNCATE);",
    )
    .unwrap();
    drop(c);
    db
}

#[test]
fn both_paths_copy_every_byte_and_hash_what_they_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let db = source(dir.path());
    let original = std::fs::read(&db).unwrap();
    assert_eq!((original[18], original[19]), (2, 2));
    assert!(original.len() > 3 * super::CHUNK && original.len() % super::CHUNK != 0);
    // Else the kernel route would quietly be the buffered one.
    assert!(
        DbFile::open(&db).unwrap().fd().is_some(),
        "SQLite's descriptor not found"
    );
    for route in [Route::Kernel, Route::Buffered] {
        for header in [Header::AsIs, Header::RollbackJournal] {
            let tmp = dir.path().join("copy");
            let out = std::fs::File::create(&tmp).unwrap();
            let interrupt = Interrupt::default();
            let to = Target {
                out: &out,
                tmp: &tmp,
                interrupt: &interrupt,
                extensions: &[],
            };
            let got =
                copy_with(DbFile::open(&db).unwrap(), header, route, &to, &mut Silent).unwrap();
            let copied = std::fs::read(&tmp).unwrap();
            let mut expected = original.clone();
            if header == Header::RollbackJournal {
                expected[18] = 1;
                expected[19] = 1;
            }
            assert!(copied == expected, "bytes differ ({:?})", route as u8);
            assert_eq!(got.size, original.len() as u64);
            assert_eq!(got.sha256, hex(&Sha256::digest(&copied)));
            let counter = u32::from_be_bytes(original[24..28].try_into().unwrap());
            assert_eq!(got.change_counter, Some(counter));
        }
    }
}

#[test]
fn a_copy_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let db = source(dir.path());
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

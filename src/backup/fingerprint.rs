//! Whether a database was written after a backup, in both journal modes and
//! across processes (issue 9: writes by others are known before any choice):
//! a fingerprint of the file recorded in the manifest, compared with the file
//! as it is now.
//!
//! - Rollback-journal mode: SQLite increments the header's file change counter
//!   (bytes 24..28) with every commit, so a different counter means commits,
//!   and the difference counts them.
//! - WAL mode: a commit appends frames to the `-wal` and leaves the main file
//!   alone (its counter only moves when page 1 changes), so the fingerprint
//!   also holds the log's salts, checkpoint sequence and last valid commit
//!   frame, validated the way SQLite recovers a log (wal.c: matching salts and
//!   the running checksum). A commit either appends frames under the same
//!   salts, or restarts the log, which writes new salts: either way the log
//!   differs. A checkpoint copies frames into the main file without changing
//!   the log, so it does not count as a write. Once the log has been
//!   checkpointed away (truncated or deleted), only the main file's size,
//!   mtime and counter are left: unchanged means unchanged, anything else
//!   means backstop cannot tell, which callers treat as "written".
//!
//! The main file's header is read through SQLite's own file handle
//! (`DbFile`): this process may hold locks on it, and closing a descriptor of
//! our own would drop them. The `-wal` carries no POSIX locks (WAL locks live
//! in the `-shm`), so it is read directly.

use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::file::DbFile;
use super::stream::read_full;

/// The state of a database file that tells later whether it was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Header bytes 18 and 19 say WAL.
    pub wal_mode: bool,
    pub change_counter: u32,
    pub size: u64,
    /// Nanoseconds since the Unix epoch; None where the filesystem keeps none.
    pub mtime_ns: Option<u64>,
    /// The committed part of the `-wal`; None when it is absent or holds no
    /// valid commit.
    pub log: Option<Log>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Log {
    pub salt1: u32,
    pub salt2: u32,
    pub checkpoint_seq: u32,
    /// 1-based index of the last valid frame that ends a transaction.
    pub last_commit_frame: u32,
    /// How many valid frames end a transaction (one per commit).
    pub commits: u32,
    /// The commit frame before the last one (0: none).
    #[serde(default)]
    pub previous_commit_frame: u32,
}

/// What a comparison of two fingerprints says about the time in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "written", rename_all = "kebab-case")]
pub enum Since {
    /// Nothing was committed.
    Unchanged,
    /// Something was committed; how many commits, where that is known.
    Written { commits: Option<u64> },
    /// No way to know; treat it as written.
    CannotTell { why: Unknown },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unknown {
    /// The backup's manifest predates fingerprints.
    NotRecorded,
    /// The database is missing or cannot be read now.
    Unreadable,
    /// The WAL was checkpointed into the file since: what it held is gone.
    Checkpointed,
    /// The file changed in a way SQLite's commits do not explain.
    Replaced,
}

impl Since {
    /// True unless it is known that nothing was written: the safe reading of
    /// "cannot tell" (issue 9: never default to restore on a guess).
    pub fn maybe_written(&self) -> bool {
        !matches!(self, Since::Unchanged)
    }
}

/// The first bytes of the main file, through SQLite's file handle.
fn header(db: &Path) -> io::Result<([u8; 28], usize)> {
    let mut header = [0u8; 28];
    let mut file = DbFile::open(db).map_err(|p| io::Error::other(p.to_string()))?;
    let n = read_full(&mut file, &mut header)?;
    Ok((header, n))
}

fn says_wal(header: &[u8; 28], n: usize) -> bool {
    n >= 20 && header[18] == 2 && header[19] == 2
}

/// Whether the file's header says WAL mode (header bytes 18 and 19).
pub fn is_wal(db: &Path) -> bool {
    header(db).is_ok_and(|(h, n)| says_wal(&h, n))
}

/// Reads the fingerprint of `db` as it is now.
pub fn read(db: &Path) -> io::Result<Fingerprint> {
    let meta = std::fs::metadata(db)?;
    let (header, n) = header(db)?;
    let wal_mode = says_wal(&header, n);
    let change_counter = if n >= 28 { be32(&header[24..28]) } else { 0 };
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| u64::try_from(d.as_nanos()).ok());
    Ok(Fingerprint {
        wal_mode,
        change_counter,
        size: meta.len(),
        mtime_ns,
        log: read_log(&super::wal_path(db))?,
    })
}

/// Compares the fingerprint taken with a backup (`then`) with one taken later.
pub fn since(then: &Fingerprint, now: &Fingerprint) -> Since {
    if then.wal_mode != now.wal_mode {
        // Switching the journal mode is itself a write.
        return Since::Written { commits: None };
    }
    let file_same = then.size == now.size
        && then.change_counter == now.change_counter
        && then.mtime_ns.is_some()
        && then.mtime_ns == now.mtime_ns;
    if !then.wal_mode {
        return if now.change_counter != then.change_counter {
            Since::Written {
                commits: Some(u64::from(
                    now.change_counter.wrapping_sub(then.change_counter),
                )),
            }
        } else if now.size != then.size {
            Since::CannotTell {
                why: Unknown::Replaced,
            }
        } else {
            Since::Unchanged
        };
    }
    match (&then.log, &now.log) {
        (Some(a), Some(b))
            if (a.salt1, a.salt2, a.checkpoint_seq) == (b.salt1, b.salt2, b.checkpoint_seq) =>
        {
            if b.last_commit_frame == a.last_commit_frame {
                Since::Unchanged
            } else if b.last_commit_frame > a.last_commit_frame {
                Since::Written {
                    commits: Some(u64::from(b.commits.saturating_sub(a.commits))),
                }
            } else {
                Since::CannotTell {
                    why: Unknown::Replaced,
                }
            }
        }
        // New salts are only written with the first frame of a new commit.
        (Some(_), Some(_)) => Since::Written { commits: None },
        (None, Some(b)) => Since::Written {
            commits: Some(u64::from(b.commits)),
        },
        (_, None) if file_same => Since::Unchanged,
        // No log then: only a checkpoint of later commits changes the file.
        (None, None) => Since::Written { commits: None },
        (Some(_), None) => Since::CannotTell {
            why: Unknown::Checkpointed,
        },
    }
}

const WAL_MAGIC: u32 = 0x377f_0682;
const WAL_HEADER: usize = 32;
const FRAME_HEADER: usize = 24;

/// The committed part of a `-wal` file, validated as SQLite's recovery does.
fn read_log(wal: &Path) -> io::Result<Option<Log>> {
    let file = match File::open(wal) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut input = BufReader::with_capacity(1 << 16, file);
    let mut hdr = [0u8; WAL_HEADER];
    if read_full(&mut input, &mut hdr)? < WAL_HEADER {
        return Ok(None);
    }
    let magic = be32(&hdr[0..4]);
    if magic & !1 != WAL_MAGIC {
        return Ok(None);
    }
    let big_endian = magic & 1 == 1;
    let page_size = be32(&hdr[8..12]) as usize;
    if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
        return Ok(None);
    }
    let mut sum = checksum(big_endian, &hdr[..24], (0, 0));
    if sum != (be32(&hdr[24..28]), be32(&hdr[28..32])) {
        return Ok(None);
    }
    let (salt1, salt2) = (be32(&hdr[16..20]), be32(&hdr[20..24]));
    let mut frame = vec![0u8; FRAME_HEADER + page_size];
    let (mut index, mut last_commit_frame, mut commits) = (0u32, 0u32, 0u32);
    let mut previous_commit_frame = 0u32;
    while read_full(&mut input, &mut frame)? == frame.len() {
        let (head, page) = frame.split_at(FRAME_HEADER);
        if head[8..16] != hdr[16..24] || be32(&head[0..4]) == 0 {
            break;
        }
        let s = checksum(big_endian, page, checksum(big_endian, &head[..8], sum));
        if s != (be32(&head[16..20]), be32(&head[20..24])) {
            break;
        }
        sum = s;
        index += 1;
        if be32(&head[4..8]) != 0 {
            previous_commit_frame = last_commit_frame;
            last_commit_frame = index;
            commits += 1;
        }
    }
    Ok((commits > 0).then_some(Log {
        salt1,
        salt2,
        checkpoint_seq: be32(&hdr[12..16]),
        last_commit_frame,
        commits,
        previous_commit_frame,
    }))
}

/// `fp` as it was one commit earlier: what a copy may record when it could
/// not keep writers out while it took its snapshot (see `copy`), so that a
/// later comparison errs towards "written", never towards "unchanged".
pub fn one_commit_back(mut fp: Fingerprint) -> Fingerprint {
    fp.log = fp.log.and_then(|l| {
        (l.commits > 1).then_some(Log {
            last_commit_frame: l.previous_commit_frame,
            commits: l.commits - 1,
            previous_commit_frame: 0,
            ..l
        })
    });
    // Without a log the file must match exactly, and it will not.
    fp.mtime_ns = None;
    fp
}

/// SQLite's WAL checksum (wal.c `walChecksumBytes`) over `data`, continuing
/// from `(s1, s2)`; words in the byte order the log's magic number names.
fn checksum(big_endian: bool, data: &[u8], (mut s1, mut s2): (u32, u32)) -> (u32, u32) {
    for pair in data.chunks_exact(8) {
        let word = |b: &[u8]| {
            let w = [b[0], b[1], b[2], b[3]];
            if big_endian {
                u32::from_be_bytes(w)
            } else {
                u32::from_le_bytes(w)
            }
        };
        s1 = s1.wrapping_add(word(&pair[0..4])).wrapping_add(s2);
        s2 = s2.wrapping_add(word(&pair[4..8])).wrapping_add(s1);
    }
    (s1, s2)
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    fn db(wal: bool) -> (tempfile::TempDir, std::path::PathBuf, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        let conn = Connection::open(&path).unwrap();
        if wal {
            conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
                .unwrap();
            conn.execute_batch("PRAGMA wal_autocheckpoint = 0").unwrap();
        }
        conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        (dir, path, conn)
    }

    #[test]
    fn rollback_mode_counts_commits_and_ignores_reads() {
        let (_dir, path, conn) = db(false);
        let then = read(&path).unwrap();
        conn.query_row("SELECT count(*) FROM t", [], |_| Ok(()))
            .unwrap();
        assert_eq!(since(&then, &read(&path).unwrap()), Since::Unchanged);
        conn.execute("INSERT INTO t VALUES (2)", []).unwrap();
        conn.execute("INSERT INTO t VALUES (3)", []).unwrap();
        assert_eq!(
            since(&then, &read(&path).unwrap()),
            Since::Written { commits: Some(2) }
        );
    }

    #[test]
    fn wal_mode_counts_commit_frames_and_a_checkpoint_is_not_a_write() {
        let (_dir, path, conn) = db(true);
        let then = read(&path).unwrap();
        assert!(then.wal_mode && then.log.is_some(), "{then:?}");
        conn.query_row("SELECT count(*) FROM t", [], |_| Ok(()))
            .unwrap();
        assert_eq!(since(&then, &read(&path).unwrap()), Since::Unchanged);
        conn.execute("INSERT INTO t VALUES (2)", []).unwrap();
        conn.execute("INSERT INTO t VALUES (3)", []).unwrap();
        // Two inserts into a page already there: page 1 and the main file do
        // not move, only the log tells.
        let now = read(&path).unwrap();
        assert_eq!(
            (now.change_counter, now.size, now.mtime_ns),
            (then.change_counter, then.size, then.mtime_ns)
        );
        assert_eq!(since(&then, &now), Since::Written { commits: Some(2) });
        // Frames copied into the file: the file changes, the content does not.
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .unwrap();
        let checkpointed = read(&path).unwrap();
        assert_ne!(checkpointed.change_counter, now.change_counter);
        assert_eq!(since(&now, &checkpointed), Since::Unchanged);
    }

    #[test]
    fn wal_mode_sees_a_restarted_log_and_cannot_tell_after_truncation() {
        let (_dir, path, conn) = db(true);
        let then = read(&path).unwrap();
        conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))
            .unwrap();
        conn.execute("INSERT INTO t VALUES (2)", []).unwrap();
        assert_eq!(
            since(&then, &read(&path).unwrap()),
            Since::Written { commits: None }
        );
        let then = read(&path).unwrap();
        conn.execute("INSERT INTO t VALUES (3)", []).unwrap();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        let now = read(&path).unwrap();
        assert_eq!(now.log, None);
        assert!(
            since(&then, &now).maybe_written(),
            "{:?}",
            since(&then, &now)
        );
    }

    #[test]
    fn one_commit_back_never_reads_as_unchanged_after_that_commit() {
        let (_dir, path, conn) = db(true);
        conn.execute("INSERT INTO t VALUES (2)", []).unwrap();
        let now = read(&path).unwrap();
        let back = one_commit_back(now.clone());
        assert_eq!(since(&back, &now), Since::Written { commits: Some(1) });
        // With a single commit in the log there is nothing to step back to.
        let single = Fingerprint {
            log: now.log.clone().map(|l| Log { commits: 1, ..l }),
            ..now.clone()
        };
        assert!(since(&one_commit_back(single), &now).maybe_written());
    }

    #[test]
    fn a_damaged_frame_ends_the_log() {
        let (_dir, path, conn) = db(true);
        conn.execute("INSERT INTO t VALUES (2)", []).unwrap();
        let before = read(&path).unwrap().log.unwrap();
        let wal = super::super::wal_path(&path);
        let mut bytes = std::fs::read(&wal).unwrap();
        let last = bytes.len() - 10;
        bytes[last] ^= 0xff;
        std::fs::write(&wal, &bytes).unwrap();
        let after = read(&path).unwrap().log.unwrap();
        assert_eq!(after.commits + 1, before.commits);
        drop(conn);
    }
}

//! Opening the database (busy timeout, lock and "not a database" detection,
//! never creating it by accident) and the facts `status` shows. The schema
//! fingerprint used for drift is `schema`'s; waiting for locks is `busy`'s.

pub mod busy;
pub mod extensions;
mod schema;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

pub(crate) use schema::is_table;
pub use schema::{Drift, Schema};

use crate::error::{Error, Result};

/// How `open` may treat a database that does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read-only commands: never create; a hot journal left by a crashed writer
    /// is rolled back (the last committed state), as any SQLite client would.
    Read,
    /// Read-only and hands-off: a hot journal is an error, not rolled back
    /// (`restore` first saves what is there, journal included).
    Inspect,
    /// Commands that change an existing database.
    Write,
    /// `up`: create the file if its folder exists.
    Create,
}

/// An open database and whether this call created it.
pub struct Opened {
    pub conn: Connection,
    pub created: bool,
}

/// Opens the configured database (`open`), then loads the configured
/// extensions on the connection: every command's way in.
pub fn open_configured(
    settings: &crate::settings::Settings,
    access: Access,
) -> Result<Option<Opened>> {
    let opened = open(&settings.database, access, settings.busy_timeout)?;
    if let Some(o) = &opened {
        extensions::load(&o.conn, &settings.extensions)?;
    }
    Ok(opened)
}

/// Opens `path`; `Ok(None)` only for `Access::Read`/`Inspect` on a file that does not exist.
pub fn open(path: &Path, access: Access, busy: Duration) -> Result<Option<Opened>> {
    if path.is_dir() {
        return Err(Error::NotADatabase {
            path: path.to_path_buf(),
        });
    }
    let exists = path.exists();
    if !exists {
        match access {
            Access::Read | Access::Inspect => return Ok(None),
            Access::Write => {
                return Err(Error::NoDatabase {
                    path: path.to_path_buf(),
                })
            }
            Access::Create => {
                let folder = folder_of(path);
                if !folder.is_dir() {
                    return Err(Error::NoFolder {
                        path: path.to_path_buf(),
                        folder,
                    });
                }
            }
        }
    }
    let mut flags = OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    flags |= match access {
        Access::Read | Access::Inspect => OpenFlags::SQLITE_OPEN_READ_ONLY,
        Access::Write => OpenFlags::SQLITE_OPEN_READ_WRITE,
        Access::Create => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
    };
    let conn = match connect(path, flags, busy) {
        Err(e) if access == Access::Read && needs_recovery(&e) => {
            // A writer died inside a transaction (backstop killed mid-migration,
            // the app crashing) and left a hot journal. Its changes never
            // committed; SQLite undoes them on the next read by a connection
            // allowed to write, but refuses a read-only one, so every command
            // failed "read-only" after a crash (SPEC "Safety properties": a rerun
            // of `up` finishes the job). Let SQLite roll it back, as any client
            // opening the file would: the result is the last committed state.
            let writable = flags.difference(OpenFlags::SQLITE_OPEN_READ_ONLY)
                | OpenFlags::SQLITE_OPEN_READ_WRITE;
            match connect(path, writable, busy) {
                Ok(_recovered) => connect(path, flags, busy),
                // Read-only file or folder: keep SQLite's own error (exit 4).
                Err(_) => Err(e),
            }
        }
        other => other,
    }
    .map_err(|e| Error::from_sqlite(path, e))?;
    check_length(&conn, path).map_err(|e| Error::from_sqlite(path, e))?;
    Ok(Some(Opened {
        conn,
        created: !exists,
    }))
}

/// SQLite refuses a file shorter than its header's page count, but counts a
/// partial last page as whole and reads the missing bytes as zeros: a file cut
/// inside its last page (an interrupted copy, a full disk) would pass
/// quick_check, be backed up as "verified" and be migrated. In rollback-journal
/// mode a whole database is always a whole number of pages (in WAL mode the
/// newest pages may live in the -wal), so refuse anything shorter. The read
/// transaction keeps writers from extending the file meanwhile.
fn check_length(conn: &Connection, path: &Path) -> rusqlite::Result<()> {
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    if mode.eq_ignore_ascii_case("wal") {
        return Ok(());
    }
    conn.execute_batch("BEGIN")?;
    let pages = conn.query_row("PRAGMA page_count", [], |r| r.get::<_, i64>(0));
    let page_size = conn.query_row("PRAGMA page_size", [], |r| r.get::<_, i64>(0));
    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    conn.execute_batch("COMMIT")?;
    let expected = pages?.max(0) as u64 * page_size?.max(0) as u64;
    if len < expected {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            Some(format!(
                "the file is {len} bytes but its pages need {expected}: it was truncated"
            )),
        ));
    }
    Ok(())
}

fn connect(path: &Path, flags: OpenFlags, busy: Duration) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(path, flags)?;
    busy::install(&conn, busy)?;
    // Reading the schema makes SQLite look at the header: a file that is not a
    // database fails here, before anything could write to it.
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;
    Ok(conn)
}

/// A read-only connection met a hot journal (or a WAL needing recovery).
pub(crate) fn needs_recovery(e: &rusqlite::Error) -> bool {
    use rusqlite::ffi;
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == ffi::SQLITE_READONLY_ROLLBACK
            || f.extended_code == ffi::SQLITE_READONLY_RECOVERY)
}

/// The folder a database file lives in ("." for a bare file name).
pub fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// SQLite needs to create a journal beside the database, so a writable file in a
/// read-only folder fails at the first write. Finding that out before the backup
/// and the first migration gives a clear exit 4 instead of a failed migration.
pub fn check_writable(path: &Path) -> Result<()> {
    let folder = folder_of(path);
    let blocked = if path.exists() && !writable(path) {
        path
    } else if !writable(&folder) {
        &folder
    } else {
        return Ok(());
    };
    Err(Error::ReadOnly {
        path: path.to_path_buf(),
        source: rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY),
            Some(format!("{} is not writable", blocked.display())),
        ),
    })
}

/// Whether this process may write `p` (its effective ids, as the kernel decides).
#[cfg(unix)]
fn writable(p: &Path) -> bool {
    rustix::fs::access(p, rustix::fs::Access::WRITE_OK).is_ok()
}

#[cfg(not(unix))]
fn writable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| !m.permissions().readonly())
}

/// Facts shown by `status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Facts {
    pub size: u64,
    pub journal_mode: String,
    pub page_size: i64,
    pub page_count: i64,
}

/// Foreign-key enforcement from the next transaction on: called between
/// transactions only, where the PRAGMA would be honoured too. The C API
/// rather than the PRAGMA: nothing to prepare once per migration, and no
/// prepared statement expired when the setting stays as it was.
pub(crate) fn set_foreign_keys(conn: &Connection, on: bool) -> rusqlite::Result<()> {
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_FKEY, on)
        .map(|_| ())
}

pub fn facts(conn: &Connection, path: &Path) -> rusqlite::Result<Facts> {
    Ok(Facts {
        size: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        journal_mode: conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?,
        page_size: conn.query_row("PRAGMA page_size", [], |r| r.get(0))?,
        page_count: conn.query_row("PRAGMA page_count", [], |r| r.get(0))?,
    })
}

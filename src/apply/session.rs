//! The run's connection state, put back however the run ends.

use std::path::Path;

use rusqlite::Connection;

use crate::db::set_foreign_keys;
use crate::error::{Error, Result};

/// The connection's foreign-key setting and transaction, put right on every
/// way out (SPEC "pitfalls": the previous setting is restored on every exit
/// path), including a `?` in the middle of a run.
pub(super) struct Session<'c> {
    pub(super) conn: &'c Connection,
    pub(super) path: &'c Path,
    fk_before: bool,
}

impl<'c> Session<'c> {
    pub(super) fn new(conn: &'c Connection, path: &'c Path) -> Result<Session<'c>> {
        let fk_before = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get::<_, i64>(0))
            .map_err(|e| Error::from_sqlite(path, e))?
            != 0;
        Ok(Session {
            conn,
            path,
            fk_before,
        })
    }

    pub(super) fn sql(&self, s: &str) -> Result<()> {
        self.conn
            .execute_batch(s)
            .map_err(|e| Error::from_sqlite(self.path, e))
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        // Outside a transaction, where SQLite honours it.
        let _ = set_foreign_keys(self.conn, self.fk_before);
    }
}

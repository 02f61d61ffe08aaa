//! Changes to the tracking tables that run no migration (`repair`, `baseline`,
//! `adopt`): lock, back up, change the rows in one transaction together with
//! the run's record, so the change is recorded if and only if it committed.

use rusqlite::Connection;

use crate::backup::{self, BackupInfo};
use crate::db::{self, Access};
use crate::error::{Error, Result};
use crate::history::{self, Outcome};
use crate::migration::Version;
use crate::observe::Observer;
use crate::settings::Settings;
use crate::source::Layout;

/// What the change is, for the backup's reason and the run log.
pub(crate) struct Change<'a> {
    pub command: &'a str,
    /// To read the recorded versions (the backup's manifest names the newest).
    pub layout: Layout,
    pub no_backup: bool,
    /// JSON for the run's `detail`.
    pub detail: &'a str,
    pub versions: &'a [Version],
}

/// Holds the write lock, takes the `before-<command>` backup, applies `rows`
/// and records the run, all before one COMMIT.
pub(crate) fn record(
    settings: &Settings,
    change: &Change<'_>,
    obs: &mut dyn Observer,
    rows: impl FnOnce(&Connection) -> rusqlite::Result<()>,
) -> Result<Option<BackupInfo>> {
    let path = &settings.database;
    let opened = db::open_configured(settings, Access::Write)?
        .ok_or_else(|| Error::NoDatabase { path: path.clone() })?;
    db::check_writable(path)?;
    let conn = opened.conn;
    let sqlite = |e| Error::from_sqlite(path, e);
    conn.execute_batch("BEGIN IMMEDIATE").map_err(sqlite)?;
    let result = (|| -> Result<Option<BackupInfo>> {
        let recorded = history::applied(&conn, change.layout).map_err(sqlite)?;
        let newest = recorded.iter().map(|r| &r.version).max();
        let reason = format!("before-{}", change.command);
        let backup = if change.no_backup {
            None
        } else {
            // The write lock is held (BEGIN IMMEDIATE above).
            let request = backup::Request {
                held: backup::Held::Writer,
                ..backup::Request::new(settings, &reason, newest)
            };
            Some(backup::take(&request, obs)?)
        };
        let backup_name = backup
            .as_ref()
            .map(|b| b.path.to_string_lossy().into_owned());
        history::ensure(&conn).map_err(sqlite)?;
        rows(&conn).map_err(sqlite)?;
        history::record_done(
            &conn,
            change.command,
            backup_name.as_deref(),
            Outcome::Ok,
            change.versions,
            None,
            change.detail,
        )
        .map_err(sqlite)?;
        conn.execute_batch("COMMIT").map_err(sqlite)?;
        Ok(backup)
    })();
    if result.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}

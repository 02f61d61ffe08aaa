//! `repair VERSION`: accept an intentional edit of an applied migration by
//! recording the file's current checksum and text, after a backup.

use std::path::PathBuf;

use crate::backup::{self, BackupInfo};
use crate::db::{self, Access};
use crate::error::{Error, Result};
use crate::history::{self, Outcome};
use crate::migration::Version;
use crate::observe::Observer;
use crate::plan::{Plan, State};
use crate::settings::Settings;

/// What repair would change, for the diff and the confirmation.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Preview {
    pub version: Version,
    pub path: PathBuf,
    pub applied_text: String,
    pub file_text: String,
    pub old_checksum: String,
    pub new_checksum: String,
    /// False when the file already matches (nothing to repair).
    pub needed: bool,
}

pub fn preview(settings: &Settings, version: Version) -> Result<Preview> {
    let path = &settings.database;
    let files = crate::source::discover(&settings.migrations)?;
    let opened = db::open(path, Access::Read, settings.busy_timeout)?
        .ok_or_else(|| Error::NoDatabase { path: path.clone() })?;
    let rows = history::applied(&opened.conn).map_err(|e| Error::from_sqlite(path, e))?;
    let plan = Plan::build(&files, &rows);
    let entry = plan
        .entries
        .iter()
        .find(|e| e.version == version)
        .ok_or_else(|| Error::UnknownVersion {
            version,
            folder: settings.migrations.clone(),
        })?;
    let (Some(file), Some(row)) = (entry.file, entry.row) else {
        return match entry.row {
            None => Err(Error::NotApplied {
                version,
                path: path.clone(),
            }),
            Some(_) => Err(Error::UnknownVersion {
                version,
                folder: settings.migrations.clone(),
            }),
        };
    };
    Ok(Preview {
        version,
        path: file.path.clone(),
        applied_text: history::applied_text(&opened.conn, version)
            .map_err(|e| Error::from_sqlite(path, e))?
            .unwrap_or_default(),
        file_text: file.up.text.clone(),
        old_checksum: row.checksum.to_string(),
        new_checksum: file.checksum.to_string(),
        needed: entry.state == State::Edited,
    })
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RepairReport {
    pub version: Version,
    pub backup: Option<BackupInfo>,
}

/// Records the file's checksum for `preview.version`, logging old and new.
pub fn run(
    settings: &Settings,
    preview: &Preview,
    no_backup: bool,
    obs: &mut dyn Observer,
) -> Result<RepairReport> {
    let files = crate::source::discover(&settings.migrations)?;
    let m = files
        .iter()
        .find(|m| m.version == preview.version)
        .ok_or_else(|| Error::UnknownVersion {
            version: preview.version,
            folder: settings.migrations.clone(),
        })?;
    let backup = adopt_with_backup(
        settings,
        "repair",
        no_backup,
        obs,
        |conn| history::rechecksum(conn, m).map(|_| ()),
        &serde_json::json!({
            "version": preview.version,
            "old_checksum": preview.old_checksum,
            "new_checksum": preview.new_checksum,
        })
        .to_string(),
        &[preview.version],
    )?;
    Ok(RepairReport {
        version: preview.version,
        backup,
    })
}

/// Shared by `repair` and `baseline`: lock, back up, change the tracking tables
/// in one transaction, and record the run.
pub(crate) fn adopt_with_backup(
    settings: &Settings,
    command: &str,
    no_backup: bool,
    obs: &mut dyn Observer,
    change: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<()>,
    detail: &str,
    versions: &[Version],
) -> Result<Option<BackupInfo>> {
    let path = &settings.database;
    let opened = db::open(path, Access::Write, settings.busy_timeout)?
        .ok_or_else(|| Error::NoDatabase { path: path.clone() })?;
    db::check_writable(path)?;
    let conn = opened.conn;
    let sqlite = |e| Error::from_sqlite(path, e);
    conn.execute_batch("BEGIN IMMEDIATE").map_err(sqlite)?;
    let result = (|| -> Result<Option<BackupInfo>> {
        let newest = history::applied(&conn)
            .map_err(sqlite)?
            .iter()
            .map(|r| r.version)
            .max();
        let reason = format!("before-{command}");
        let backup = if no_backup {
            None
        } else {
            let request = backup::Request::new(settings, &reason, newest);
            Some(backup::take(&request, obs)?)
        };
        let backup_name = backup
            .as_ref()
            .map(|b| b.path.to_string_lossy().into_owned());
        history::ensure(&conn).map_err(sqlite)?;
        change(&conn).map_err(sqlite)?;
        history::record_done(
            &conn,
            command,
            backup_name.as_deref(),
            Outcome::Ok,
            versions,
            None,
            detail,
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

//! `repair VERSION`: accept an intentional edit of an applied migration by
//! recording the file's current checksum and text, after a backup.

use std::path::PathBuf;

use crate::backup::BackupInfo;
use crate::bookkeeping::{self, Change};
use crate::error::{Error, Result};
use crate::history;
use crate::migration::{Migration, Version};
use crate::observe::Observer;
use crate::plan::State;
use crate::project::{Need, Project};
use crate::settings::Settings;
use crate::source::Layout;

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
    /// The file as read for this preview: what `run` records.
    #[serde(skip)]
    pub migration: Migration,
    #[serde(skip)]
    pub layout: Layout,
}

/// Finds the applied migration `arg` names and what repair would record for it.
pub fn preview(settings: &Settings, arg: &str) -> Result<Preview> {
    let path = &settings.database;
    let project = Project::load(settings, Need::Existing)?;
    let plan = project.plan();
    let entry = project.entry(&plan, arg)?;
    let version = entry.version.clone();
    let (Some(file), Some(row)) = (entry.file, entry.row) else {
        return match entry.row {
            None => Err(Error::NotApplied {
                version,
                path: path.clone(),
            }),
            Some(_) => Err(Error::UnknownVersion {
                version: arg.to_owned(),
                folder: settings.migrations.clone(),
            }),
        };
    };
    let conn = project
        .conn()
        .ok_or_else(|| Error::NoDatabase { path: path.clone() })?;
    Ok(Preview {
        applied_text: history::applied_text(conn, &row.version)
            .map_err(|e| Error::from_sqlite(path, e))?
            .unwrap_or_default(),
        path: file.path.clone(),
        file_text: file.up.text.to_string(),
        old_checksum: row.checksum.to_string(),
        new_checksum: file.checksum.to_string(),
        needed: entry.state == State::Edited,
        migration: file.clone(),
        layout: project.source.layout,
        version,
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
    let m = &preview.migration;
    let detail = serde_json::json!({
        "version": preview.version,
        "old_checksum": preview.old_checksum,
        "new_checksum": preview.new_checksum,
    })
    .to_string();
    let change = Change {
        command: "repair",
        layout: preview.layout,
        no_backup,
        detail: &detail,
        versions: std::slice::from_ref(&preview.version),
    };
    let backup = bookkeeping::record(settings, &change, obs, |conn| {
        history::rechecksum(conn, m).map(|_| ())
    })?;
    Ok(RepairReport {
        version: preview.version.clone(),
        backup,
    })
}

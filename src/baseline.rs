//! `baseline VERSION`: adopt a database built some other way by recording every
//! migration up to VERSION as applied, without running it.

use std::path::PathBuf;
use std::time::Duration;

use crate::backup::BackupInfo;
use crate::db::{self, Access};
use crate::error::{Error, Result};
use crate::history;
use crate::migration::{Migration, Version};
use crate::observe::Observer;
use crate::plan::{Plan, State};
use crate::settings::Settings;

#[derive(Debug, Clone, serde::Serialize)]
pub struct BaselineReport {
    pub database: PathBuf,
    pub recorded: Vec<Version>,
    pub backup: Option<BackupInfo>,
}

/// The migrations that `baseline` would record (not applied, version ≤ `version`).
pub fn preview(settings: &Settings, version: Version) -> Result<Vec<Migration>> {
    let path = &settings.database;
    let files = crate::source::discover(&settings.migrations)?;
    if !files.iter().any(|m| m.version == version) {
        return Err(Error::UnknownVersion {
            version,
            folder: settings.migrations.clone(),
        });
    }
    let opened = db::open(path, Access::Read, settings.busy_timeout)?
        .ok_or_else(|| Error::NoDatabase { path: path.clone() })?;
    let rows = history::applied(&opened.conn).map_err(|e| Error::from_sqlite(path, e))?;
    let plan = Plan::build(&files, &rows);
    // Edited or missing migrations must be sorted out first; older unapplied
    // ones are exactly what a baseline is for.
    let problems: Vec<_> = plan.problems(true);
    if !problems.is_empty() {
        return Err(Error::Blocked(problems));
    }
    Ok(plan
        .entries
        .iter()
        .filter(|e| e.version <= version && matches!(e.state, State::Pending | State::OutOfOrder))
        .filter_map(|e| e.file.cloned())
        .collect())
}

pub fn run(
    settings: &Settings,
    version: Version,
    no_backup: bool,
    obs: &mut dyn Observer,
) -> Result<BaselineReport> {
    let todo = preview(settings, version)?;
    let recorded: Vec<Version> = todo.iter().map(|m| m.version).collect();
    let mut report = BaselineReport {
        database: settings.database.clone(),
        recorded: recorded.clone(),
        backup: None,
    };
    if todo.is_empty() {
        return Ok(report);
    }
    let detail = serde_json::json!({ "baseline": version, "recorded": recorded }).to_string();
    report.backup = crate::repair::adopt_with_backup(
        settings,
        "baseline",
        no_backup,
        obs,
        |conn| {
            for m in &todo {
                history::record(conn, m, Duration::ZERO, 0, None)?;
            }
            Ok(())
        },
        &detail,
        &recorded,
    )?;
    Ok(report)
}

//! `baseline VERSION`: adopt a database built some other way by recording every
//! migration up to VERSION as applied, without running it, once the database's
//! schema is seen to equal a replay of those migrations (issue 10; `--force`
//! records anyway).

use std::path::PathBuf;
use std::time::Duration;

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

#[derive(Debug, Clone, serde::Serialize)]
pub struct BaselineReport {
    pub database: PathBuf,
    pub recorded: Vec<Version>,
    pub backup: Option<BackupInfo>,
}

/// What `baseline` would record: the migrations up to `arg` not applied yet.
#[derive(Debug, Clone)]
pub struct Todo {
    pub migrations: Vec<Migration>,
    pub layout: Layout,
}

/// The migrations that `baseline` would record (not applied, up to and
/// including the version `arg` names). Unless `force`, refuses when the
/// database's schema differs from what those migrations (and the ones already
/// recorded) make on an empty database.
pub fn preview(settings: &Settings, arg: &str, force: bool) -> Result<Todo> {
    let project = Project::load(settings, Need::Existing)?;
    let bound = project.bound(arg, "VERSION")?;
    let plan = project.plan();
    // VERSION must name a migration (a date names all of its dated files): a
    // typo must not record half the folder.
    if !project
        .matching(&plan, arg)?
        .iter()
        .any(|e| e.file.is_some())
    {
        return Err(Error::UnknownVersion {
            version: arg.to_owned(),
            folder: settings.migrations.clone(),
        });
    }
    // Edited or missing migrations must be sorted out first; older unapplied
    // ones are exactly what a baseline is for.
    let problems: Vec<_> = plan.problems(true);
    if !problems.is_empty() {
        return Err(Error::Blocked(problems));
    }
    let migrations: Vec<Migration> = plan
        .entries
        .iter()
        .filter(|e| e.version.key() <= &bound)
        .filter(|e| matches!(e.state, State::Pending | State::OutOfOrder))
        .filter_map(|e| e.file.cloned())
        .collect();
    if !force && !migrations.is_empty() {
        let expected: Vec<&Migration> = plan
            .entries
            .iter()
            .filter(|e| e.version.key() <= &bound || e.row.is_some())
            .filter_map(|e| e.file)
            .collect();
        let conn = project.conn().ok_or_else(|| Error::NoDatabase {
            path: settings.database.clone(),
        })?;
        crate::adopt::check(settings, &project, conn, &expected)?;
    }
    Ok(Todo {
        migrations,
        layout: project.source.layout,
    })
}

pub fn run(
    settings: &Settings,
    arg: &str,
    force: bool,
    no_backup: bool,
    obs: &mut dyn Observer,
) -> Result<BaselineReport> {
    let Todo {
        migrations: todo,
        layout,
    } = preview(settings, arg, force)?;
    let recorded: Vec<Version> = todo.iter().map(|m| m.version.clone()).collect();
    let mut report = BaselineReport {
        database: settings.database.clone(),
        recorded: recorded.clone(),
        backup: None,
    };
    if todo.is_empty() {
        return Ok(report);
    }
    let detail =
        serde_json::json!({ "baseline": arg, "recorded": recorded, "schema_checked": !force })
            .to_string();
    let change = Change {
        command: "baseline",
        layout,
        no_backup,
        detail: &detail,
        versions: &recorded,
    };
    report.backup = bookkeeping::record(settings, &change, obs, |conn| {
        for m in &todo {
            history::record(conn, m, Duration::ZERO, 0, None)?;
        }
        Ok(())
    })?;
    Ok(report)
}

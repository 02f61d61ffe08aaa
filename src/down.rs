//! `down`: run down sections newest first, after a backup, each in its own
//! transaction with its tracking row removed.

use std::path::PathBuf;

use crate::apply::{self, Applied, Job, Step};
use crate::backup::BackupInfo;
use crate::error::{Error, Result};
use crate::migration::{Migration, Section, Version};
use crate::observe::{Event, Interrupt, Observer};
use crate::project::{Need, Project};
use crate::settings::Settings;

#[derive(Debug, Clone, Default)]
pub struct DownOptions {
    /// How many to undo (default 1 when `to` is not given).
    pub steps: Option<usize>,
    /// Undo every applied migration newer than this version (as written).
    pub to: Option<String>,
    pub no_backup: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct DownReport {
    pub database: PathBuf,
    pub reverted: Vec<Applied>,
    pub backup: Option<BackupInfo>,
    /// Migrations whose down section changed since they were applied.
    pub changed_down: Vec<Version>,
}

pub fn down(
    settings: &Settings,
    opts: &DownOptions,
    obs: &mut dyn Observer,
    interrupt: &Interrupt,
) -> Result<DownReport> {
    down_picked(settings, Pick::Options(opts), obs, interrupt)
}

/// Reverts exactly `versions` with their down sections, newest first: the
/// migrations a failed `up` applied (issue 9: undo the run and keep what
/// other programs wrote). Refused (`Error::Raced`) if they are no longer the
/// newest applied, e.g. because another run applied more meanwhile.
pub fn revert(
    settings: &Settings,
    versions: &[Version],
    obs: &mut dyn Observer,
    interrupt: &Interrupt,
) -> Result<DownReport> {
    down_picked(settings, Pick::Exactly(versions), obs, interrupt)
}

/// Which applied migrations to revert.
enum Pick<'a> {
    Options(&'a DownOptions),
    Exactly(&'a [Version]),
}

fn down_picked(
    settings: &Settings,
    pick: Pick<'_>,
    obs: &mut dyn Observer,
    interrupt: &Interrupt,
) -> Result<DownReport> {
    let path = &settings.database;
    let mut project = Project::load(settings, Need::Existing)?;
    let opened = project.db.take();
    let (to, steps, no_backup) = match pick {
        Pick::Options(opts) => (
            match &opts.to {
                Some(arg) => Some(project.bound(arg, "--to")?),
                None => None,
            },
            opts.steps.unwrap_or(1),
            opts.no_backup,
        ),
        Pick::Exactly(versions) => (None, versions.len(), false),
    };
    let plan = project.plan();
    let problems = plan.problems(false);
    if !problems.is_empty() {
        return Err(Error::Blocked(problems));
    }
    let applied = plan.applied_newest_first();
    let targets: Vec<&Migration> = match &to {
        Some(to) => applied
            .iter()
            .filter(|e| e.version.key() > to)
            .filter_map(|e| e.file)
            .collect(),
        None => applied.iter().take(steps).filter_map(|e| e.file).collect(),
    };
    if let Pick::Exactly(versions) = pick {
        let same = targets.len() == versions.len()
            && targets.iter().all(|m| versions.contains(&m.version));
        if !same {
            return Err(Error::Raced { path: path.clone() });
        }
    }
    let mut report = DownReport {
        database: path.clone(),
        reverted: Vec::new(),
        backup: None,
        changed_down: Vec::new(),
    };
    if targets.is_empty() {
        return Ok(report);
    }
    // Every migration in range needs a down section before anything runs.
    let mut steps: Vec<(&Migration, &Section)> = Vec::new();
    for m in &targets {
        match &m.down {
            Some(d) => steps.push((m, d)),
            None => {
                return Err(Error::NoDown {
                    version: m.version.clone(),
                    path: m.path.clone(),
                })
            }
        }
    }
    for m in &targets {
        let row = project.rows.iter().find(|r| r.version == m.version);
        if let Some(row) = row {
            if row.down_checksum.is_some() && row.down_checksum != m.down_checksum {
                report.changed_down.push(m.version.clone());
                obs.event(Event::Warning {
                    message: &format!(
                        "{}: the down section of {} changed since the migration was applied",
                        m.path.display(),
                        m.version
                    ),
                });
            }
        }
    }
    let done = apply::execute(
        settings,
        &Job {
            command: "down",
            step: Step::Down,
            no_backup,
            planned_on: &project.rows,
            layout: project.source.layout,
            create: false,
        },
        opened,
        &steps,
        obs,
        interrupt,
    )?;
    report.reverted = done.applied;
    report.backup = done.backup;
    Ok(report)
}

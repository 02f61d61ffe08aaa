//! `down`: run down sections newest first, after a backup, each in its own
//! transaction with its tracking row removed. Also how a failed `up` is undone
//! with the down sections of what it applied (`revert`).

use std::path::PathBuf;

use crate::apply::{self, Applied, Job, Step};
use crate::backup::BackupInfo;
use crate::error::{Error, Result};
use crate::migration::{Migration, Section, Version};
use crate::observe::{Event, Interrupt, Observer};
use crate::plan::Plan;
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

/// Which applied migrations to revert.
enum Pick<'a> {
    Options(&'a DownOptions),
    Exactly(&'a [Version]),
}

/// The migrations `down` would revert, newest first, each with its down
/// section (refused before anything runs when one has none, or while the
/// plan has edited, missing or out-of-order migrations).
pub fn preview(settings: &Settings, opts: &DownOptions) -> Result<Vec<Migration>> {
    let project = Project::load(settings, Need::Existing)?;
    let plan = project.plan();
    Ok(targets(settings, &project, &plan, &Pick::Options(opts))?
        .into_iter()
        .cloned()
        .collect())
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

fn targets<'p>(
    settings: &Settings,
    project: &Project,
    plan: &Plan<'p>,
    pick: &Pick<'_>,
) -> Result<Vec<&'p Migration>> {
    let (to, steps) = match pick {
        Pick::Options(opts) => (
            match &opts.to {
                Some(arg) => Some(project.bound(arg, "--to")?),
                None => None,
            },
            opts.steps.unwrap_or(1),
        ),
        Pick::Exactly(versions) => (None, versions.len()),
    };
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
            return Err(Error::Raced {
                path: settings.database.clone(),
            });
        }
    }
    // Every migration in range needs a down section before anything runs.
    if let Some(m) = targets.iter().find(|m| m.down.is_none()) {
        return Err(Error::NoDown {
            version: m.version.clone(),
            path: m.path.clone(),
        });
    }
    Ok(targets)
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
    let no_backup = match &pick {
        Pick::Options(opts) => opts.no_backup,
        Pick::Exactly(_) => false,
    };
    let plan = project.plan();
    let targets = targets(settings, &project, &plan, &pick)?;
    let mut report = DownReport {
        database: path.clone(),
        reverted: Vec::new(),
        backup: None,
        changed_down: Vec::new(),
    };
    if targets.is_empty() {
        return Ok(report);
    }
    let steps: Vec<(&Migration, &Section)> = targets
        .iter()
        .filter_map(|m| m.down.as_ref().map(|d| (*m, d)))
        .collect();
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
    let sections = crate::source::placeholders::substitute_all(
        project.source.layout,
        &settings.placeholders,
        steps.iter().map(|(_, s)| *s),
    )?;
    let steps: Vec<(&Migration, &Section)> = steps
        .iter()
        .zip(&sections)
        .map(|((m, _), s)| (*m, s.as_ref()))
        .collect();
    let done = apply::execute(
        settings,
        &Job {
            command: "down",
            step: Step::Down,
            no_backup,
            planned_on: &project.rows,
            layout: project.source.layout,
            create: false,
            accepted_drift: None,
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

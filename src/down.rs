//! `down`: run down sections newest first, after a backup, each in its own
//! transaction with its tracking row removed.

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

/// The migrations `down` would revert, newest first, each with its down
/// section (refused before anything runs when one has none, or while the
/// plan has edited, missing or out-of-order migrations).
pub fn preview(settings: &Settings, opts: &DownOptions) -> Result<Vec<Migration>> {
    let project = Project::load(settings, Need::Existing)?;
    let plan = project.plan();
    Ok(targets(&project, &plan, opts)?
        .into_iter()
        .cloned()
        .collect())
}

fn targets<'p>(
    project: &Project,
    plan: &Plan<'p>,
    opts: &DownOptions,
) -> Result<Vec<&'p Migration>> {
    let to = match &opts.to {
        Some(arg) => Some(project.bound(arg, "--to")?),
        None => None,
    };
    let problems = plan.problems(false);
    if !problems.is_empty() {
        return Err(Error::Blocked(problems));
    }
    let applied = plan.applied_newest_first();
    let targets: Vec<&Migration> = match (&to, opts.steps) {
        (Some(to), _) => applied
            .iter()
            .filter(|e| e.version.key() > to)
            .filter_map(|e| e.file)
            .collect(),
        (None, steps) => applied
            .iter()
            .take(steps.unwrap_or(1))
            .filter_map(|e| e.file)
            .collect(),
    };
    // Every migration in range needs a down section before anything runs.
    if let Some(m) = targets.iter().find(|m| m.down.is_none()) {
        return Err(Error::NoDown {
            version: m.version.clone(),
            path: m.path.clone(),
        });
    }
    Ok(targets)
}

pub fn down(
    settings: &Settings,
    opts: &DownOptions,
    obs: &mut dyn Observer,
    interrupt: &Interrupt,
) -> Result<DownReport> {
    let path = &settings.database;
    let mut project = Project::load(settings, Need::Existing)?;
    let opened = project.db.take();
    let plan = project.plan();
    let targets = targets(&project, &plan, opts)?;
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
            no_backup: opts.no_backup,
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

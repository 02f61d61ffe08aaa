//! `up`: apply pending migrations, each in its own `BEGIN IMMEDIATE`
//! transaction together with its tracking row, after a verified backup taken
//! while the write lock is held (SPEC `up`, steps 1-6). This file plans and
//! orders; `execute` locks, backs up and loops; `runner` runs one section.

use std::path::PathBuf;
use std::time::Instant;

use crate::backup::BackupInfo;
use crate::error::{Error, Result};
use crate::inspect;
use crate::migration::{Migration, Section};
use crate::observe::{Interrupt, Observer};
use crate::project::{Need, Project};
use crate::settings::Settings;
use crate::source::placeholders;

mod exec;
mod execute;
mod failure;
mod foreign_keys;
mod launch;
mod preflight;
mod python;
mod runner;
mod scripts;
mod session;
mod step;
mod watch;

pub use failure::{Cause, RunFailure, Violation};

pub(crate) use execute::{data_version, execute, Job};
pub(crate) use runner::{message, Step};

/// Options of `up`, as plain values.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// `--to VERSION`, as the user wrote it; read with the folder's layout.
    pub to: Option<String>,
    pub allow_out_of_order: bool,
    /// `--no-backup`: skip the pre-run backup, explicitly.
    pub no_backup: bool,
    /// Go ahead although the schema changed outside migrations since the
    /// last run (the user saw the drift and said yes); recorded in the run log.
    pub accept_drift: bool,
}

/// A migration that committed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Applied {
    pub version: crate::migration::Version,
    pub name: String,
    pub duration_ms: u64,
    /// The same, in microseconds: small migrations take well under a millisecond.
    pub duration_us: u64,
    /// Not known for scripts (they change the database themselves): 0.
    pub rows_changed: u64,
    pub kind: crate::migration::Kind,
    /// What an executable migration printed (`--json`: per migration).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub output: Vec<crate::observe::OutputLine>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct UpReport {
    pub database: PathBuf,
    pub created: bool,
    pub applied: Vec<Applied>,
    pub backup: Option<BackupInfo>,
    pub duration_ms: u64,
    pub destructive: Vec<inspect::Destructive>,
}

/// Runs `up` against `settings.database`.
pub fn up(
    settings: &Settings,
    opts: &UpOptions,
    obs: &mut dyn Observer,
    interrupt: &Interrupt,
) -> Result<UpReport> {
    // The plan is made before the write lock is taken; if another run changed
    // the tracking table in between, plan again (see `execute`).
    let mut attempts = 0;
    loop {
        match up_once(settings, opts, obs, interrupt) {
            Err(Error::Raced { .. }) if attempts < 2 => attempts += 1,
            other => return other,
        }
    }
}

fn up_once(
    settings: &Settings,
    opts: &UpOptions,
    obs: &mut dyn Observer,
    interrupt: &Interrupt,
) -> Result<UpReport> {
    let started = Instant::now();
    // Plan on what exists; the file is only created when there is work to do.
    let mut project = Project::load(settings, Need::Optional)?;
    let existing = project.db.take();
    let to = match &opts.to {
        Some(arg) => Some(project.bound(arg, "--to")?),
        None => None,
    };
    let plan = project.plan();
    let problems = plan.problems(opts.allow_out_of_order);
    if !problems.is_empty() {
        return Err(Error::Blocked(problems));
    }
    let pending = plan.pending(to.as_ref(), opts.allow_out_of_order);
    // Drift is named and confirmed before anything runs (issue "No surprises"):
    // a run would otherwise absorb it into its "after" schema in silence.
    let drift = match &existing {
        Some(o) if !pending.is_empty() => crate::status::drift(&o.conn)
            .map_err(|e| Error::from_sqlite(&settings.database, e))?
            .filter(|d| !d.is_empty()),
        _ => None,
    };
    if let (Some(drift), false) = (&drift, opts.accept_drift) {
        // Another run's migrations, committed after the plan was read, are no
        // drift: plan again.
        if let Some(o) = &existing {
            if preflight::moved_on(&o.conn, project.source.layout, &project.rows) {
                return Err(Error::Raced {
                    path: settings.database.clone(),
                });
            }
        }
        return Err(Error::Drift {
            path: settings.database.clone(),
            drift: drift.clone(),
        });
    }
    let mut report = UpReport {
        database: settings.database.clone(),
        created: false,
        applied: Vec::new(),
        backup: None,
        duration_ms: 0,
        destructive: Vec::new(),
    };
    if !pending.is_empty() {
        // What runs (and is preflighted) has its `${NAME}`s replaced; what is
        // recorded is the file as written (SPEC "Other layouts").
        let sections = placeholders::substitute_all(
            project.source.layout,
            &settings.placeholders,
            pending.iter().map(|m| &m.up),
        )?;
        let steps: Vec<(&Migration, &Section)> = pending
            .iter()
            .zip(&sections)
            .map(|(m, s)| (*m, s.as_ref()))
            .collect();
        let done = execute(
            settings,
            &Job {
                command: "up",
                step: Step::Up,
                no_backup: opts.no_backup,
                planned_on: &project.rows,
                layout: project.source.layout,
                create: true,
                accepted_drift: drift.as_ref(),
            },
            existing,
            &steps,
            obs,
            interrupt,
        )?;
        report.created = done.created;
        report.applied = done.applied;
        report.backup = done.backup;
        report.destructive = done.destructive;
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

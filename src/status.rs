//! `status`: database facts and the plan, read without creating or changing
//! anything. The same `Plan` that `up` checks.

use std::path::PathBuf;

use crate::backup;
use crate::db::{self, Access, Drift, Facts, Schema};
use crate::error::{Error, Result};
use crate::history::{self, AppliedRow};
use crate::migration::{Migration, Version};
use crate::plan::{Plan, State};
use crate::settings::Settings;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub database: PathBuf,
    pub exists: bool,
    pub facts: Option<Facts>,
    /// Schema changed outside migrations since the last run (None: no run recorded yet).
    pub drift: Option<Drift>,
    pub newest_backup: Option<PathBuf>,
    pub migrations: Vec<Row>,
    pub counts: Counts,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub version: Version,
    pub name: String,
    pub state: State,
    pub file: Option<PathBuf>,
    pub applied_at: Option<String>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Counts {
    pub applied: usize,
    pub pending: usize,
    pub edited: usize,
    pub missing: usize,
    pub out_of_order: usize,
}

impl Counts {
    /// Anything `status --exit-code` should fail on.
    pub fn needs_attention(&self) -> bool {
        self.pending + self.edited + self.missing + self.out_of_order > 0
    }
}

/// Files and tracking rows, for callers that build their own plan.
pub fn load(settings: &Settings) -> Result<(Vec<Migration>, Vec<AppliedRow>, Option<db::Opened>)> {
    let files = crate::source::discover(&settings.migrations)?;
    let opened = db::open(&settings.database, Access::Read, settings.busy_timeout)?;
    let rows = match &opened {
        Some(o) => {
            history::applied(&o.conn).map_err(|e| Error::from_sqlite(&settings.database, e))?
        }
        None => Vec::new(),
    };
    Ok((files, rows, opened))
}

pub fn read(settings: &Settings) -> Result<Status> {
    let path = &settings.database;
    let (files, rows, opened) = load(settings)?;
    let plan = Plan::build(&files, &rows);
    let sqlite = |e| Error::from_sqlite(path, e);
    let (facts, drift) = match &opened {
        Some(o) => (
            Some(db::facts(&o.conn, path).map_err(sqlite)?),
            drift(&o.conn).map_err(sqlite)?,
        ),
        None => (None, None),
    };
    let newest_backup = backup::list(&settings.backups, path)
        .ok()
        .and_then(|l| l.into_iter().next())
        .map(|b| b.path);
    let mut counts = Counts::default();
    let migrations = plan
        .entries
        .iter()
        .map(|e| {
            match e.state {
                State::Applied => counts.applied += 1,
                State::Pending => counts.pending += 1,
                State::Edited => counts.edited += 1,
                State::Missing => counts.missing += 1,
                State::OutOfOrder => counts.out_of_order += 1,
            }
            Row {
                version: e.version,
                name: e.name().to_owned(),
                state: e.state,
                file: e.file.map(|f| f.path.clone()),
                applied_at: e.row.map(|r| r.applied_at.clone()),
            }
        })
        .collect();
    Ok(Status {
        database: path.clone(),
        exists: opened.is_some(),
        facts,
        drift,
        newest_backup,
        migrations,
        counts,
    })
}

/// The live schema against the last run's recorded "after" schema.
pub fn drift(conn: &rusqlite::Connection) -> rusqlite::Result<Option<Drift>> {
    let Some((run, hash)) = history::last_schema_hash(conn)? else {
        return Ok(None);
    };
    let now = Schema::read(conn)?;
    if now.hash() == hash {
        return Ok(Some(Drift::default()));
    }
    let recorded = history::schema_objects(conn, run)?.unwrap_or_default();
    Ok(Some(recorded.drift(&now)))
}

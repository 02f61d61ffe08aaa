//! `status`: database facts and the plan, read without creating or changing
//! anything. The same `Plan` that `up` checks.

use std::path::PathBuf;

use crate::backup;
use crate::db::{self, Drift, Facts, Schema};
use crate::error::{Error, Result};
use crate::history;
use crate::migration::Version;
use crate::plan::State;
use crate::project::{Need, Project};
use crate::settings::Settings;
use crate::source::Layout;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub database: PathBuf,
    pub exists: bool,
    pub facts: Option<Facts>,
    /// Schema changed outside migrations since the last run (None: no run recorded yet).
    pub drift: Option<Drift>,
    pub newest_backup: Option<PathBuf>,
    /// How the migrations folder names its migrations.
    pub layout: Layout,
    pub migrations: Vec<Row>,
    pub counts: Counts,
    /// Entries of the migrations folder that are not migrations (README…).
    pub ignored: Vec<PathBuf>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub version: Version,
    pub name: String,
    pub state: State,
    pub file: Option<PathBuf>,
    /// How the file runs (None: the file is missing).
    pub kind: Option<crate::migration::Kind>,
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

pub fn read(settings: &Settings) -> Result<Status> {
    let path = &settings.database;
    let project = Project::load(settings, Need::Optional)?;
    let plan = project.plan();
    let sqlite = |e| Error::from_sqlite(path, e);
    let (facts, drift) = match project.conn() {
        Some(conn) => (
            Some(db::facts(conn, path).map_err(sqlite)?),
            drift(conn).map_err(sqlite)?,
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
                version: e.version.clone(),
                name: e.name().to_owned(),
                state: e.state,
                file: e.file.map(|f| f.path.clone()),
                kind: e.file.map(|f| f.kind),
                applied_at: e.row.map(|r| r.applied_at.clone()),
            }
        })
        .collect();
    Ok(Status {
        database: path.clone(),
        exists: project.db.is_some(),
        facts,
        drift,
        newest_backup,
        layout: project.source.layout,
        migrations,
        counts,
        ignored: project.source.ignored.clone(),
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

//! What `adopt` would record (`preview`: read-only, also `--dry-run`) and the
//! recording itself (`run`: lock, `before-adopt` backup, rows and run record
//! in one transaction, through `bookkeeping`).

use std::path::PathBuf;
use std::time::Duration;

use super::reading::Kept;
use super::{drizzle, present, Problem, Refusal, Tool, TRACKING_TABLES};
use crate::backup::BackupInfo;
use crate::bookkeeping::{self, Change};
use crate::error::{Error, Result};
use crate::history;
use crate::migration::{Migration, Section, Version};
use crate::observe::Observer;
use crate::plan::State;
use crate::project::{Need, Project};
use crate::settings::Settings;
use crate::source::{placeholders, Layout};

/// Options of `adopt`, as plain values.
#[derive(Debug, Clone, Default)]
pub struct AdoptOptions {
    /// `--from TOOL`; otherwise the one tool whose table is there.
    pub from: Option<Tool>,
    /// Record files that changed since the other tool applied them.
    pub accept_edits: bool,
    /// Record even when the schema differs from the replay.
    pub force: bool,
    pub no_backup: bool,
}

/// A migration `adopt` records.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Adopted {
    pub version: Version,
    pub name: String,
    pub path: PathBuf,
    /// What the other tool's checksum says of the file.
    pub checksum: Kept,
}

/// What `adopt` found and would record.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Preview {
    pub database: PathBuf,
    pub from: Tool,
    pub table: &'static str,
    /// To be recorded, in version order.
    pub record: Vec<Adopted>,
    /// Applied per the other tool and recorded by backstop already.
    pub already_recorded: Vec<Version>,
    /// Versions the other tool recorded that no file matches.
    pub without_file: Vec<String>,
    /// Files the other tool does not count as applied: `up` runs them.
    pub not_applied: Vec<Version>,
    pub notes: Vec<String>,
    /// False with `--force` (the schema was not compared).
    pub schema_checked: bool,
    /// How the schema differs from the replay; `run` refuses while there is a
    /// difference (shown with the rest of the preview first, so `--dry-run`
    /// says what the other tool claims and what the database lacks).
    pub schema_mismatch: Option<Box<crate::inspect::Mismatch>>,
    #[serde(skip)]
    migrations: Vec<Migration>,
    #[serde(skip)]
    layout: Layout,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct AdoptReport {
    #[serde(flatten)]
    pub preview: Preview,
    pub backup: Option<BackupInfo>,
}

/// Reads the other tool's table and checks everything; changes nothing.
pub fn preview(settings: &Settings, opts: &AdoptOptions) -> Result<Preview> {
    let project = Project::load(settings, Need::Existing)?;
    let database = &settings.database;
    let refuse = |problem| {
        Error::Adopt(Box::new(Refusal {
            database: database.clone(),
            problem,
        }))
    };
    let sqlite = |e| Error::from_sqlite(database, e);
    let conn = project.conn().ok_or_else(|| Error::NoDatabase {
        path: database.clone(),
    })?;
    let found = present(conn).map_err(sqlite)?;
    let tool = match (opts.from, found.as_slice()) {
        (Some(t), _) if found.contains(&t) => t,
        (Some(t), _) => return Err(refuse(Problem::NotThere(t))),
        (None, [one]) => *one,
        (None, []) => return Err(refuse(Problem::NoTable)),
        (None, several) => return Err(refuse(Problem::Several(several.to_vec()))),
    };
    if tool == Tool::Drizzle {
        if let Some(detail) = drizzle::journal_problem(&project.dir) {
            return Err(refuse(Problem::NoJournal(detail)));
        }
    }
    let files = &project.source.migrations;
    let reading = tool.read(conn, files, &project.dir).map_err(sqlite)?;
    if !reading.failed.is_empty() {
        return Err(refuse(Problem::Failed {
            tool,
            records: reading.failed,
        }));
    }
    let edited: Vec<(PathBuf, String)> = reading
        .applied
        .iter()
        .filter(|c| c.checksum == Kept::Differs)
        .map(|c| {
            (
                files[c.file].path.clone(),
                files[c.file].version.to_string(),
            )
        })
        .collect();
    if !edited.is_empty() && !opts.accept_edits {
        return Err(refuse(Problem::Edited {
            tool,
            files: edited,
        }));
    }
    // backstop's own rows win: an edited or missing one is sorted out first.
    let plan = project.plan();
    let problems: Vec<_> = plan
        .problems(true)
        .into_iter()
        .filter(|p| matches!(p.state, State::Edited | State::Missing))
        .collect();
    if !problems.is_empty() {
        return Err(Error::Blocked(problems));
    }
    let recorded = |m: &Migration| project.rows.iter().any(|r| r.version == m.version);
    let mut claims = reading.applied.clone();
    claims.sort_by(|a, b| files[a.file].version.cmp(&files[b.file].version));
    let mut record = Vec::new();
    let mut already_recorded = Vec::new();
    let mut migrations = Vec::new();
    for c in &claims {
        let m = &files[c.file];
        if recorded(m) {
            already_recorded.push(m.version.clone());
            continue;
        }
        record.push(Adopted {
            version: m.version.clone(),
            name: m.name.clone(),
            path: m.path.clone(),
            checksum: c.checksum,
        });
        migrations.push(m.clone());
    }
    let claimed = |m: &Migration| claims.iter().any(|c| files[c.file].version == m.version);
    let not_applied = files
        .iter()
        .filter(|m| !claimed(m) && !recorded(m))
        .map(|m| m.version.clone())
        .collect();
    let mut schema_mismatch = None;
    if !opts.force && !record.is_empty() {
        // The database must already hold what is recorded and what backstop
        // recorded before: replay both, in order, and compare.
        let expected: Vec<&Migration> =
            files.iter().filter(|m| claimed(m) || recorded(m)).collect();
        match check(settings, &project, conn, &expected) {
            Err(Error::SchemaMismatch(m)) => schema_mismatch = Some(m),
            other => other?,
        }
    }
    Ok(Preview {
        database: database.clone(),
        from: tool,
        table: tool.table(),
        record,
        already_recorded,
        without_file: reading.without_file,
        not_applied,
        notes: reading.notes,
        schema_checked: !opts.force,
        schema_mismatch,
        migrations,
        layout: project.source.layout,
    })
}

/// The schema check shared with `baseline`: `expected` replayed (with
/// placeholders replaced and extensions loaded) equals the database's schema.
pub(crate) fn check(
    settings: &Settings,
    project: &Project,
    conn: &rusqlite::Connection,
    expected: &[&Migration],
) -> Result<()> {
    let sections = placeholders::substitute_all(
        project.source.layout,
        &settings.placeholders,
        expected.iter().map(|m| &m.up),
    )?;
    let steps: Vec<(&Migration, &Section)> = expected
        .iter()
        .zip(&sections)
        .map(|(m, s)| (*m, s.as_ref()))
        .collect();
    crate::inspect::check_schema(
        conn,
        &settings.database,
        &steps,
        &settings.extensions,
        TRACKING_TABLES,
    )
}

/// Records `preview`'s migrations as applied, after a `before-adopt` backup.
pub fn run(
    settings: &Settings,
    preview: Preview,
    no_backup: bool,
    obs: &mut dyn Observer,
) -> Result<AdoptReport> {
    if let Some(m) = preview.schema_mismatch {
        return Err(Error::SchemaMismatch(m));
    }
    let versions: Vec<Version> = preview.record.iter().map(|a| a.version.clone()).collect();
    if versions.is_empty() {
        return Ok(AdoptReport {
            preview,
            backup: None,
        });
    }
    let detail = serde_json::json!({
        "from": preview.from,
        "table": preview.table,
        "recorded": versions,
        "edits_accepted": preview
            .record
            .iter()
            .filter(|a| a.checksum == Kept::Differs)
            .map(|a| &a.version)
            .collect::<Vec<_>>(),
        "schema_checked": preview.schema_checked,
    })
    .to_string();
    let change = Change {
        command: "adopt",
        layout: preview.layout,
        no_backup,
        detail: &detail,
        versions: &versions,
    };
    let backup = bookkeeping::record(settings, &change, obs, |conn| {
        for m in &preview.migrations {
            history::record(conn, m, Duration::ZERO, 0, None)?;
        }
        Ok(())
    })?;
    Ok(AdoptReport { preview, backup })
}

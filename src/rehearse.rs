//! `up --dry-run`: the whole run rehearsed on a temporary copy of the real
//! database (taken with the backup API), reporting what would happen. The real
//! file and the backups folder are never written; executable migrations, which
//! open the database themselves, are kept off the real file by `guard`.

mod guard;

use std::collections::BTreeMap;
use std::path::PathBuf;

use rusqlite::{Connection, OpenFlags};

use crate::apply::{self, Applied, Cause, UpOptions};
use crate::db::{Drift, Schema};
use crate::error::{Error, Result};
use crate::inspect::Destructive;
use crate::observe::{Event, Interrupt, Observer};
use crate::project::{Need, Project};
use crate::settings::Settings;
use crate::Version;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Rehearsal {
    pub database: PathBuf,
    pub ok: bool,
    pub migrations: Vec<Applied>,
    pub failure: Option<RehearsedFailure>,
    /// Row counts per table, before and after (None: the table did not exist).
    pub tables: Vec<TableCounts>,
    pub objects: Drift,
    pub destructive: Vec<Destructive>,
    /// Tables that would end up with fewer rows.
    pub rows_deleted: Vec<String>,
    /// The schema changed outside migrations since the last run: `up` asks
    /// before it runs over it.
    pub drift: Option<Drift>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RehearsedFailure {
    pub version: crate::Version,
    pub name: String,
    pub path: PathBuf,
    pub line: usize,
    pub cause: Cause,
    pub message: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TableCounts {
    pub table: String,
    pub before: Option<u64>,
    pub after: Option<u64>,
}

/// Forwards progress but never asks: a rehearsal changes nothing real.
struct Quiet<'a>(&'a mut dyn Observer);

impl Observer for Quiet<'_> {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::BackupStarted { .. }
            | Event::BackupDone { .. }
            | Event::DatabaseCreated { .. } => {}
            Event::Destructive { .. } => {}
            other => self.0.event(other),
        }
    }
    fn ticker(&self) -> Option<crate::observe::Ticker> {
        self.0.ticker()
    }
}

pub fn rehearse(
    settings: &Settings,
    opts: &UpOptions,
    obs: &mut dyn Observer,
    interrupt: &Interrupt,
) -> Result<Rehearsal> {
    let real = &settings.database;
    let executables = pending_executables(settings, opts)?;
    let guard = match executables.is_empty() {
        true => None,
        false => Some(guard::Guard::take(real, settings.busy_timeout)?),
    };
    let result = rehearse_on_copy(settings, opts, obs, interrupt, guard.is_some());
    if guard.is_some_and(|g| !g.untouched()) {
        return Err(Error::RealChanged {
            path: real.clone(),
            running: executables,
        });
    }
    result
}

/// The executable migrations `up` would run now (issue 12).
fn pending_executables(settings: &Settings, opts: &UpOptions) -> Result<Vec<Version>> {
    let project = Project::load(settings, Need::Optional)?;
    let to = match &opts.to {
        Some(arg) => Some(project.bound(arg, "--to")?),
        None => None,
    };
    let plan = project.plan();
    let pending = plan.pending(to.as_ref(), opts.allow_out_of_order);
    Ok(pending
        .iter()
        .filter(|m| m.is_executable())
        .map(|m| m.version.clone())
        .collect())
}

fn rehearse_on_copy(
    settings: &Settings,
    opts: &UpOptions,
    obs: &mut dyn Observer,
    interrupt: &Interrupt,
    guarded: bool,
) -> Result<Rehearsal> {
    let real = &settings.database;
    let dir = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let name = real
        .file_name()
        .map(|n| n.to_owned())
        .unwrap_or_else(|| "db".into());
    let copy = dir.path().join(&name);
    if real.exists() {
        if real.is_dir() {
            return Err(Error::NotADatabase { path: real.clone() });
        }
        let src = Connection::open_with_flags(
            real,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| Error::from_sqlite(real, e))?;
        src.busy_timeout(settings.busy_timeout)
            .map_err(|e| Error::from_sqlite(real, e))?;
        src.backup(rusqlite::DatabaseName::Main, &copy, None)
            .map_err(|e| Error::from_sqlite(real, e))?;
    }
    let before = counts(&copy, &settings.extensions);
    let drift = Connection::open_with_flags(&copy, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .ok()
        .and_then(|c| crate::status::drift(&c).ok().flatten())
        .filter(|d| !d.is_empty());
    let schema_before = schema(&copy);
    let mut on_copy = settings.clone();
    on_copy.database = copy.clone();
    on_copy.backups = dir.path().join("backups");
    // The rehearsal shows what would happen; drift is `up`'s question.
    let opts = UpOptions {
        no_backup: true,
        accept_drift: true,
        ..opts.clone()
    };
    let mut quiet = Quiet(obs);
    let result = apply::up(&on_copy, &opts, &mut quiet, interrupt);
    // `up` would stop before creating a database in a folder that does not
    // exist (exit 4); the copy lives in a folder that does, so check here.
    let would_create = match &result {
        Ok(r) => r.created,
        Err(Error::Migration(_)) => !real.exists(),
        Err(_) => false,
    };
    let folder = crate::db::folder_of(real);
    if would_create && !folder.is_dir() {
        return Err(Error::NoFolder {
            path: real.clone(),
            folder,
        });
    }
    let after = counts(&copy, &settings.extensions);
    let schema_after = schema(&copy);
    let (migrations, failure, destructive) = match result {
        Ok(r) => (r.applied, None, r.destructive),
        Err(Error::Migration(f)) => {
            let mut message = f.to_string();
            if guarded && f.kind != crate::migration::Kind::Sql && message.contains("locked") {
                message.push_str(&format!(
                    "\n  note: while executable migrations rehearse, backstop holds the write lock \
                     of the real {}, so one that opens it by a path of its own instead of \
                     BACKSTOP_DATABASE / DATABASE_URL fails with \"database is locked\"",
                    real.display()
                ));
            }
            let failure = RehearsedFailure {
                version: f.version,
                name: f.name.clone(),
                path: f.path.clone(),
                line: f.line,
                cause: f.cause.clone(),
                message,
            };
            (f.applied.clone(), Some(failure), Vec::new())
        }
        Err(e) => return Err(rename_copy(e, &copy, real)),
    };
    let mut tables: BTreeMap<String, TableCounts> = BTreeMap::new();
    for (t, n) in &before {
        tables
            .entry(t.clone())
            .or_insert(TableCounts {
                table: t.clone(),
                before: None,
                after: None,
            })
            .before = Some(*n);
    }
    for (t, n) in &after {
        tables
            .entry(t.clone())
            .or_insert(TableCounts {
                table: t.clone(),
                before: None,
                after: None,
            })
            .after = Some(*n);
    }
    let rows_deleted = tables
        .values()
        .filter(|c| {
            matches!((c.before, c.after), (Some(b), Some(a)) if a < b)
                || (c.before.unwrap_or(0) > 0 && c.after.is_none())
        })
        .map(|c| c.table.clone())
        .collect();
    Ok(Rehearsal {
        database: real.clone(),
        ok: failure.is_none(),
        migrations,
        failure,
        tables: tables.into_values().collect(),
        objects: schema_before.drift(&schema_after),
        destructive,
        rows_deleted,
        drift,
    })
}

/// Errors about the copy are about the real database as far as the user cares.
fn rename_copy(e: Error, copy: &std::path::Path, real: &std::path::Path) -> Error {
    match e {
        Error::Locked { path } if path == copy => Error::Locked {
            path: real.to_path_buf(),
        },
        Error::Database { path, source } if path == copy => Error::Database {
            path: real.to_path_buf(),
            source,
        },
        other => other,
    }
}

fn schema(path: &std::path::Path) -> Schema {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .ok()
        .and_then(|c| Schema::read(&c).ok())
        .unwrap_or_default()
}

/// Rows per table; a virtual table of an extension (`vec0`) counts only with
/// the extension loaded.
fn counts(path: &std::path::Path, extensions: &[PathBuf]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let Ok(conn) = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return out;
    };
    let _ = crate::db::extensions::load(&conn, extensions);
    let names: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table'
               AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_backstop\\_%' ESCAPE '\\'",
        )
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .unwrap_or_default();
    for t in names {
        let q = format!("SELECT count(*) FROM \"{}\"", t.replace('"', "\"\""));
        if let Ok(n) = conn.query_row(&q, [], |r| r.get::<_, i64>(0)) {
            out.insert(t, n.max(0) as u64);
        }
    }
    out
}

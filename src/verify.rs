//! `verify`: the pre-deploy gate. Collects findings, one function per check,
//! and never prints: migration files, checksums and order, drift, integrity,
//! foreign keys, backup hashes. What to do about a finding is a typed [`Fix`];
//! the CLI words it, since the words name commands and flags.

use std::path::PathBuf;

use rusqlite::Connection;

use crate::backup;
use crate::db::{self, Access};
use crate::error::{Error, Result};
use crate::migration::Version;
use crate::observe::{self, Event, Interrupt, Observer};
use crate::plan::{Plan, State};
use crate::project::{Need, Project};
use crate::settings::Settings;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub ok: bool,
    pub message: String,
    /// What to do about it, when not ok.
    pub fix: Option<Fix>,
}

/// What resolves a failed check.
// The names are the `--json` document's `kind` values ("fix-file", …).
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Fix {
    /// A migration file does not parse.
    FixFile,
    /// Restore the file, or accept the edit with `repair VERSION`.
    RestoreOrRepair { version: Version },
    /// An applied migration's file is gone.
    RestoreFile,
    /// An older migration is not applied.
    ApplyOutOfOrder,
    /// The schema changed outside migrations.
    MigrateDrift,
    /// The database itself is damaged.
    RestoreBackup,
    /// Rows reference missing parents.
    FixRows,
    /// A backup no longer matches its manifest, or has none.
    ReplaceBackup,
    /// A backup could not be read.
    CheckBackups,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct VerifyReport {
    pub database: PathBuf,
    pub passed: bool,
    pub findings: Vec<Finding>,
}

fn ok(check: &'static str, message: impl Into<String>) -> Finding {
    Finding {
        check,
        ok: true,
        message: message.into(),
        fix: None,
    }
}

fn bad(check: &'static str, message: impl Into<String>, fix: Fix) -> Finding {
    Finding {
        check,
        ok: false,
        message: message.into(),
        fix: Some(fix),
    }
}

/// Runs every check, stopped by Ctrl-C (`Error::Interrupted`):
/// `integrity_check` and hashing the backups read every byte, which takes a
/// while on a big file.
pub fn check(
    settings: &Settings,
    obs: &mut dyn Observer,
    interrupt: &Interrupt,
) -> Result<VerifyReport> {
    let path = &settings.database;
    let mut findings = Vec::new();
    match Project::load(settings, Need::Existing) {
        Ok(project) => findings.extend(plan_findings(&project.plan())),
        // A folder that does not parse is this check's finding; the database
        // checks below still run.
        Err(Error::Source(errors)) => findings.extend(
            errors
                .iter()
                .map(|e| bad("files", e.to_string(), Fix::FixFile)),
        ),
        Err(e) => return Err(e),
    }
    let opened = db::open_configured(settings, Access::Read)?
        .ok_or_else(|| Error::NoDatabase { path: path.clone() })?;
    let conn = &opened.conn;
    interrupt.stop_on(conn);
    findings.push(drift(conn).map_err(|e| Error::from_sqlite(path, e))?);
    obs.event(Event::CheckStarted {
        check: observe::Check::Integrity,
        path,
        bytes: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
    });
    findings.push(integrity(conn));
    interrupt.check()?;
    findings.push(foreign_keys(conn));
    interrupt.check()?;
    findings.extend(backups(settings, obs, interrupt)?);
    Ok(VerifyReport {
        database: path.clone(),
        passed: findings.iter().all(|f| f.ok),
        findings,
    })
}

/// Files parse; applied migrations match their files and come in order.
fn plan_findings(plan: &Plan<'_>) -> Vec<Finding> {
    let files = plan.entries.iter().filter(|e| e.file.is_some()).count();
    let mut out = vec![ok("files", format!("{files} migration files parse"))];
    let problems = plan.problems(false);
    if problems.is_empty() {
        out.push(ok(
            "checksums",
            format!(
                "{} applied migrations match their files",
                plan.count(State::Applied)
            ),
        ));
    }
    for p in problems {
        let fix = match p.state {
            State::Edited => Fix::RestoreOrRepair {
                version: p.version.clone(),
            },
            State::Missing => Fix::RestoreFile,
            _ => Fix::ApplyOutOfOrder,
        };
        out.push(bad("checksums", p.to_string(), fix));
    }
    let pending = plan.count(State::Pending);
    if pending > 0 {
        // Pending migrations are expected before a deploy: information, not failure.
        out.push(ok("pending", format!("{pending} migration(s) pending")));
    }
    out
}

fn drift(conn: &Connection) -> rusqlite::Result<Finding> {
    Ok(match crate::status::drift(conn)? {
        None => ok("drift", "no run recorded yet, nothing to compare"),
        Some(d) if d.is_empty() => ok("drift", "schema matches the last run"),
        Some(d) => bad(
            "drift",
            format!("schema changed outside migrations ({d})"),
            Fix::MigrateDrift,
        ),
    })
}

fn integrity(conn: &Connection) -> Finding {
    // Some damage stops integrity_check itself ("malformed"): that is this
    // check's finding, not a reason to stop verifying.
    let rows: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .and_then(|mut s| s.query_map([], |r| r.get::<_, String>(0))?.collect())
        .unwrap_or_else(|e| vec![crate::apply::message(&e)]);
    if rows.len() == 1 && rows[0] == "ok" {
        ok("integrity", "integrity_check ok")
    } else {
        let sample: Vec<String> = rows.into_iter().take(5).collect();
        bad(
            "integrity",
            format!("integrity_check: {}", sample.join("; ")),
            Fix::RestoreBackup,
        )
    }
}

fn foreign_keys(conn: &Connection) -> Finding {
    let violations: rusqlite::Result<Vec<(String, Option<i64>, String)>> =
        conn.prepare("PRAGMA foreign_key_check").and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        });
    match violations {
        Err(e) => bad(
            "foreign-keys",
            format!(
                "foreign_key_check could not run: {}",
                crate::apply::message(&e)
            ),
            Fix::RestoreBackup,
        ),
        Ok(v) if v.is_empty() => ok("foreign-keys", "foreign_key_check ok"),
        Ok(v) => {
            let sample: Vec<String> = v
                .iter()
                .take(5)
                .map(|(t, id, p)| match id {
                    Some(id) => format!("{t} rowid {id} → missing {p}"),
                    None => format!("{t} → missing {p}"),
                })
                .collect();
            bad(
                "foreign-keys",
                format!(
                    "{} row(s) reference missing parents: {}",
                    v.len(),
                    sample.join(", ")
                ),
                Fix::FixRows,
            )
        }
    }
}

/// Every backup of this database against the hash its manifest recorded.
fn backups(
    settings: &Settings,
    obs: &mut dyn Observer,
    interrupt: &Interrupt,
) -> Result<Vec<Finding>> {
    let checked = match backup::list_checked(&settings.backups, &settings.database, obs, interrupt)
    {
        Ok(Some(checked)) => checked,
        Ok(None) => return Err(Error::Interrupted),
        // An unreadable folder is no backups to check.
        Err(_) => Vec::new(),
    };
    if checked.is_empty() {
        return Ok(vec![ok("backups", "no backups yet")]);
    }
    Ok(checked
        .into_iter()
        .map(|(b, intact)| {
            let name = b.path.display().to_string();
            match intact {
                backup::Intact::Yes => ok("backups", format!("{name} matches its manifest")),
                backup::Intact::NoManifest => bad(
                    "backups",
                    format!("{name} has no readable manifest"),
                    Fix::ReplaceBackup,
                ),
                backup::Intact::Damaged => bad(
                    "backups",
                    format!("{name} does not match its manifest hash: damaged"),
                    Fix::ReplaceBackup,
                ),
                backup::Intact::Unreadable(e) => {
                    bad("backups", format!("{name}: {e}"), Fix::CheckBackups)
                }
            }
        })
        .collect())
}

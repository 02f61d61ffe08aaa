//! `verify`: the pre-deploy gate. Collects findings (never prints): migration
//! files, checksums and order, drift, integrity, foreign keys, backup hashes.

use std::path::PathBuf;

use crate::backup;
use crate::db::{self, Access};
use crate::error::{Error, Result};
use crate::history;
use crate::plan::Plan;
use crate::settings::Settings;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub ok: bool,
    pub message: String,
    /// What to do about it, when not ok.
    pub fix: Option<String>,
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

fn bad(check: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding {
        check,
        ok: false,
        message: message.into(),
        fix: Some(fix.into()),
    }
}

pub fn run(settings: &Settings) -> Result<VerifyReport> {
    let path = &settings.database;
    let opened = db::open(path, Access::Read, settings.busy_timeout)?
        .ok_or_else(|| Error::NoDatabase { path: path.clone() })?;
    let conn = &opened.conn;
    let sqlite = |e| Error::from_sqlite(path, e);
    let mut findings = Vec::new();

    match crate::source::discover(&settings.migrations) {
        Err(Error::Source(errors)) => {
            for e in errors {
                findings.push(bad("files", e.to_string(), "rename or fix the file"));
            }
        }
        Err(e) => return Err(e),
        Ok(files) => {
            findings.push(ok(
                "files",
                format!("{} migration files parse", files.len()),
            ));
            let rows = history::applied(conn).map_err(sqlite)?;
            let plan = Plan::build(&files, &rows);
            let problems = plan.problems(false);
            if problems.is_empty() {
                findings.push(ok(
                    "checksums",
                    format!(
                        "{} applied migrations match their files",
                        plan.count(crate::plan::State::Applied)
                    ),
                ));
            }
            for p in problems {
                let fix = match p.state {
                    crate::plan::State::Edited => format!(
                        "restore the file from version control, or `backstop repair {}` to accept the edit",
                        p.version
                    ),
                    crate::plan::State::Missing => "restore the file from version control".to_string(),
                    _ => "apply it with `backstop up --allow-out-of-order`, or renumber it above the newest applied".to_string(),
                };
                findings.push(bad("checksums", p.to_string(), fix));
            }
            let pending = plan.count(crate::plan::State::Pending);
            if pending > 0 {
                // Pending migrations are expected before a deploy: information, not failure.
                findings.push(ok(
                    "pending",
                    format!("{pending} migration(s) pending; `backstop up` applies them"),
                ));
            }
        }
    }

    match crate::status::drift(conn).map_err(sqlite)? {
        None => findings.push(ok("drift", "no run recorded yet, nothing to compare")),
        Some(d) if d.is_empty() => findings.push(ok("drift", "schema matches the last run")),
        Some(d) => {
            let mut parts = Vec::new();
            if !d.appeared.is_empty() {
                parts.push(format!("appeared: {}", d.appeared.join(", ")));
            }
            if !d.vanished.is_empty() {
                parts.push(format!("vanished: {}", d.vanished.join(", ")));
            }
            if !d.changed.is_empty() {
                parts.push(format!("changed: {}", d.changed.join(", ")));
            }
            findings.push(bad(
                "drift",
                format!("schema changed outside migrations ({})", parts.join("; ")),
                "put the change in a migration (backstop new NAME), or undo it by hand",
            ));
        }
    }

    // Some damage stops integrity_check itself ("malformed"): that is this
    // check's finding, not a reason to stop verifying.
    let integrity: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .and_then(|mut s| s.query_map([], |r| r.get::<_, String>(0))?.collect())
        .unwrap_or_else(|e| vec![crate::apply::message(&e)]);
    if integrity.len() == 1 && integrity[0] == "ok" {
        findings.push(ok("integrity", "integrity_check ok"));
    } else {
        findings.push(bad(
            "integrity",
            format!(
                "integrity_check: {}",
                integrity.into_iter().take(5).collect::<Vec<_>>().join("; ")
            ),
            "restore a good backup (`backstop restore`)",
        ));
    }

    let violations: rusqlite::Result<Vec<(String, Option<i64>, String)>> =
        conn.prepare("PRAGMA foreign_key_check").and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        });
    match violations {
        Err(e) => findings.push(bad(
            "foreign-keys",
            format!(
                "foreign_key_check could not run: {}",
                crate::apply::message(&e)
            ),
            "restore a good backup (`backstop restore`)",
        )),
        Ok(v) if v.is_empty() => findings.push(ok("foreign-keys", "foreign_key_check ok")),
        Ok(v) => {
            let sample: Vec<String> = v
                .iter()
                .take(5)
                .map(|(t, id, p)| {
                    format!(
                        "{t} rowid {} → missing {p}",
                        id.map(|i| i.to_string()).unwrap_or("?".into())
                    )
                })
                .collect();
            findings.push(bad(
                "foreign-keys",
                format!(
                    "{} row(s) reference missing parents: {}",
                    v.len(),
                    sample.join(", ")
                ),
                "fix or delete those rows in a new migration",
            ));
        }
    }

    let listed = backup::list(&settings.backups, path).unwrap_or_default();
    if listed.is_empty() {
        findings.push(ok("backups", "no backups yet"));
    }
    for b in listed {
        let name = b.path.display().to_string();
        match &b.manifest {
            None => findings.push(bad(
                "backups",
                format!("{name} has no readable manifest"),
                "delete it, or take a new backup",
            )),
            Some(m) => match backup::hash_file(&b.path) {
                Ok((sha, _)) if sha == m.sha256 => {
                    findings.push(ok("backups", format!("{name} matches its manifest")))
                }
                Ok(_) => findings.push(bad(
                    "backups",
                    format!("{name} does not match its manifest hash: damaged"),
                    "delete it and take a new backup (`backstop backup`)",
                )),
                Err(e) => findings.push(bad(
                    "backups",
                    format!("{name}: {e}"),
                    "check the backups folder",
                )),
            },
        }
    }
    let passed = findings.iter().all(|f| f.ok);
    Ok(VerifyReport {
        database: path.clone(),
        passed,
        findings,
    })
}

//! Text and JSON rendering: tables for people, one JSON document for scripts.

use std::io::{self, Write};

use console::style;

mod rehearsal;

pub use rehearsal::rehearsal;

use crate::error::Error;
use crate::history::RunRow;
use crate::verify::{Fix, VerifyReport};

/// The version of the shape of every `--json` document (issue "start-up":
/// programs depend on it). Bumped when a key changes meaning or goes away.
pub const SCHEMA_VERSION: u32 = 1;

pub fn error(w: &mut impl Write, e: &Error) -> io::Result<()> {
    writeln!(w, "{} {e}", style("error:").for_stderr().red().bold())?;
    if let Some(h) = super::hint::hint(e) {
        writeln!(w, "{} {h}", style("hint:").for_stderr().cyan().bold())?;
    }
    Ok(())
}

/// The `--json` document of a command that ended in an error (README "JSON
/// output"): what happened, what to do, the exit code, and where (the file,
/// line and SQLite's message, when the error has them; issue 13).
pub fn error_document(e: &Error) -> serde_json::Value {
    let location = e.location();
    serde_json::json!({
        "schema_version": SCHEMA_VERSION,
        "ok": false,
        "error": e.to_string(),
        "hint": super::hint::hint(e),
        "exit_code": super::exit::code_of(e),
        "kind": e.kind().to_string(),
        "file": location.map(|(path, _)| path),
        "line": location.and_then(|(_, line)| line),
        "message": e.message(),
    })
}

/// Prints one JSON document on stdout, with its `schema_version`. A closed
/// pipe is not an error.
pub fn json<T: serde::Serialize>(value: &T) -> Result<(), Error> {
    let mut doc = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
    if let Some(map) = doc.as_object_mut() {
        map.entry("schema_version")
            .or_insert_with(|| SCHEMA_VERSION.into());
    }
    let mut out = io::stdout().lock();
    let text = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "null".into());
    match writeln!(out, "{text}") {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(Error::Output { source: e }),
        _ => Ok(()),
    }
}

/// Prints lines on stdout, ignoring a closed pipe (`backstop log | head`).
pub fn out(text: &str) {
    let mut out = io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// A left-aligned table with a header row; columns sized to content.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(console::measure_text_width(c));
            }
        }
    }
    let mut s = String::new();
    let fmt_row = |cells: Vec<String>, s: &mut String| {
        let n = cells.len();
        for (i, c) in cells.into_iter().enumerate() {
            let pad = widths[i].saturating_sub(console::measure_text_width(&c));
            s.push_str(&c);
            if i + 1 < n {
                s.push_str(&" ".repeat(pad + 2));
            }
        }
        s.push('\n');
    };
    fmt_row(
        header.iter().map(|h| style(h).bold().to_string()).collect(),
        &mut s,
    );
    for r in rows {
        fmt_row(r.clone(), &mut s);
    }
    s
}

pub fn state(state: crate::plan::State) -> String {
    use crate::plan::State::*;
    let text = state.to_string();
    match state {
        Applied => style(text).green().to_string(),
        Pending => style(text).cyan().to_string(),
        Edited | Missing | OutOfOrder => style(text).red().bold().to_string(),
    }
}

/// `log`: one row per run, newest first.
pub fn runs(runs: &[RunRow]) -> String {
    if runs.is_empty() {
        return "no runs recorded yet\n".into();
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            let outcome = if r.finished_at.is_none() {
                "interrupted (process ended)".to_string()
            } else {
                r.outcome.clone()
            };
            vec![
                r.started_at.clone(),
                r.command.clone(),
                outcome,
                r.migrations.join(" "),
                r.backup.clone().unwrap_or_default(),
                r.error
                    .as_deref()
                    .and_then(|e| e.lines().next())
                    .unwrap_or("")
                    .to_string(),
            ]
        })
        .collect();
    table(
        &[
            "STARTED",
            "COMMAND",
            "OUTCOME",
            "MIGRATIONS",
            "BACKUP",
            "ERROR",
        ],
        &rows,
    )
}

/// What to do about a failed `verify` check, in words that name commands.
pub fn fix(fix: &Fix) -> String {
    match fix {
        Fix::FixFile => "rename or fix the file".into(),
        Fix::RestoreOrRepair { version } => format!(
            "restore the file from version control, or `backstop repair {version}` to accept the edit"
        ),
        Fix::RestoreFile => "restore the file from version control".into(),
        Fix::ApplyOutOfOrder => "apply it with `backstop up --allow-out-of-order`, or renumber it above the newest applied".into(),
        Fix::MigrateDrift => "put the change in a migration (backstop new NAME), or undo it by hand".into(),
        Fix::RestoreBackup => "restore a good backup (`backstop restore`)".into(),
        Fix::FixRows => "fix or delete those rows in a new migration".into(),
        Fix::ReplaceBackup => "delete it and take a new backup (`backstop backup`)".into(),
        Fix::CheckBackups => "check the backups folder".into(),
    }
}

/// `verify --json`: the report, each fix also in words.
pub fn verify_json(r: &VerifyReport) -> serde_json::Value {
    let findings: Vec<serde_json::Value> = r
        .findings
        .iter()
        .map(|f| {
            serde_json::json!({
                "check": f.check,
                "ok": f.ok,
                "message": f.message,
                "fix": f.fix.as_ref().map(fix),
                "fix_kind": f.fix,
            })
        })
        .collect();
    serde_json::json!({
        "schema_version": SCHEMA_VERSION,
        "database": r.database,
        "passed": r.passed,
        "findings": findings,
    })
}

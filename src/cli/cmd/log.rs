use crate::cli::{render, Ui};
use crate::db::{self, Access};
use crate::error::Error;
use crate::settings::Settings;

pub fn run(settings: &Settings, ui: &Ui) -> Result<i32, Error> {
    let path = &settings.database;
    let opened = db::open(path, Access::Read, settings.busy_timeout)?
        .ok_or_else(|| Error::NoDatabase { path: path.clone() })?;
    let runs = crate::history::runs(&opened.conn).map_err(|e| Error::from_sqlite(path, e))?;
    if ui.json {
        render::json(&runs)?;
        return Ok(0);
    }
    if ui.quiet {
        return Ok(0);
    }
    if runs.is_empty() {
        render::out("no runs recorded yet\n");
        return Ok(0);
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
    render::out(&render::table(
        &[
            "STARTED",
            "COMMAND",
            "OUTCOME",
            "MIGRATIONS",
            "BACKUP",
            "ERROR",
        ],
        &rows,
    ));
    Ok(0)
}

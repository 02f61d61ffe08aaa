use crate::cli::{exit::Exit, progress::Progress, prompt, render, Signals, Ui};
use crate::error::Error;
use crate::settings::Settings;

pub fn run(
    settings: &Settings,
    ui: &Ui,
    signals: &Signals,
    version: &str,
    force: bool,
    no_backup: bool,
) -> Result<Exit, Error> {
    let todo = crate::baseline::preview(settings, version, force)?;
    if todo.migrations.is_empty() {
        if !ui.quiet {
            eprintln!("every migration up to {version} is already recorded; nothing to do");
        }
        return Ok(Exit::Ok);
    }
    if !ui.json && !ui.quiet {
        if force {
            eprintln!("--force: the database's schema is not compared with the migrations");
        } else {
            eprintln!(
                "the database's schema matches these migrations replayed on an empty database"
            );
        }
        eprintln!("these migrations will be recorded as applied, without running them:");
        for m in &todo.migrations {
            eprintln!("  {} {}", m.version, m.name);
        }
    }
    let question = format!(
        "Record {} migration(s) as applied to {}?",
        todo.migrations.len(),
        settings.database.display()
    );
    if !prompt::confirm(ui, signals, &question, "baseline")? {
        return Err(Error::Declined {
            what: "baseline".into(),
        });
    }
    let mut progress = Progress::new(ui, signals);
    let report = crate::baseline::run(settings, version, force, no_backup, &mut progress)?;
    progress.finish();
    drop(progress);
    if ui.json {
        render::json(&report)?;
    } else if !ui.quiet {
        eprintln!("recorded {} migration(s) as applied", report.recorded.len());
    }
    Ok(Exit::Ok)
}

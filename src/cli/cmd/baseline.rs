use crate::cli::{progress::Progress, prompt, render, Signals, Ui};
use crate::error::Error;
use crate::migration::Version;
use crate::settings::Settings;

pub fn run(
    settings: &Settings,
    ui: &Ui,
    signals: &Signals,
    version: u64,
    no_backup: bool,
) -> Result<i32, Error> {
    let todo = crate::baseline::preview(settings, Version(version))?;
    if todo.is_empty() {
        if !ui.quiet {
            eprintln!("every migration up to {version} is already recorded; nothing to do");
        }
        return Ok(0);
    }
    if !ui.json && !ui.quiet {
        eprintln!("these migrations will be recorded as applied, without running them:");
        for m in &todo {
            eprintln!("  {} {}", m.version, m.name);
        }
    }
    let question = format!(
        "Record {} migration(s) as applied to {}?",
        todo.len(),
        settings.database.display()
    );
    if !prompt::confirm(ui, signals, &question, "baseline")? {
        return Err(Error::Declined {
            what: "baseline".into(),
        });
    }
    let mut progress = Progress::new(ui, signals);
    let report = crate::baseline::run(settings, Version(version), no_backup, &mut progress)?;
    progress.finish();
    drop(progress);
    if ui.json {
        render::json(&report)?;
    } else if !ui.quiet {
        eprintln!("recorded {} migration(s) as applied", report.recorded.len());
    }
    Ok(0)
}

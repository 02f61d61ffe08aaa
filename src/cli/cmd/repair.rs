use crate::cli::{exit::Exit, progress::Progress, prompt, render, Signals, Ui};
use crate::error::Error;
use crate::settings::Settings;

pub fn run(
    settings: &Settings,
    ui: &Ui,
    signals: &Signals,
    arg: &str,
    no_backup: bool,
) -> Result<Exit, Error> {
    let preview = crate::repair::preview(settings, arg)?;
    let version = &preview.version;
    if !preview.needed {
        if !ui.quiet {
            eprintln!(
                "{}: migration {version} already matches what was applied; nothing to repair",
                preview.path.display()
            );
        }
        return Ok(Exit::Ok);
    }
    if !ui.json && !ui.quiet {
        let diff = similar::TextDiff::from_lines(&preview.applied_text, &preview.file_text);
        let mut s = format!("--- applied {version}\n+++ {}\n", preview.path.display());
        for hunk in diff.unified_diff().context_radius(3).iter_hunks() {
            s.push_str(&hunk.to_string());
        }
        eprint!("{s}");
        if !s.ends_with('\n') {
            eprintln!();
        }
    }
    let question =
        format!("Record the edited file as migration {version}? (its new text will not be run)");
    if !prompt::confirm(
        ui,
        signals,
        &question,
        &format!("repairing migration {version}"),
    )? {
        return Err(Error::Declined {
            what: format!("repair of {version}"),
        });
    }
    let mut progress = Progress::new(ui, signals);
    let report = crate::repair::run(settings, &preview, no_backup, &mut progress)?;
    progress.finish();
    drop(progress);
    if ui.json {
        render::json(&report)?;
    } else if !ui.quiet {
        eprintln!(
            "recorded the new checksum of {version} ({})",
            preview.new_checksum
        );
    }
    Ok(Exit::Ok)
}

use crate::cli::args::OnFailure;
use crate::cli::progress::Progress;
use crate::cli::{exit::Exit, prompt, render, Signals, Ui};
use crate::down::{self, DownOptions};
use crate::error::Error;
use crate::settings::Settings;

pub fn run(
    settings: &Settings,
    ui: &Ui,
    signals: &Signals,
    steps: Option<usize>,
    to: Option<&str>,
    no_backup: bool,
) -> Result<Exit, Error> {
    if steps == Some(0) {
        return Err(Error::Setting {
            setting: "--steps",
            value: "0".into(),
            expected: "at least 1",
        });
    }
    let opts = DownOptions {
        steps,
        to: to.map(str::to_owned),
        no_backup,
    };
    // Reverting runs down sections that usually drop what the migration made:
    // like `repair` and `baseline`, it needs a yes (SPEC `down`).
    let targets = down::preview(settings, &opts)?;
    if !targets.is_empty() {
        if !ui.json && !ui.quiet {
            eprintln!("these migrations will be reverted with their down sections, newest first:");
            for m in &targets {
                eprintln!("  {} {}", m.version, m.name);
            }
        }
        let question = format!(
            "Revert {} migration(s) of {}?",
            targets.len(),
            settings.database.display()
        );
        if !prompt::confirm(ui, signals, &question, "reverting migrations")? {
            return Err(Error::Declined {
                what: "down".into(),
            });
        }
    }
    let mut progress = Progress::new(ui, signals);
    let result = down::down(settings, &opts, &mut progress, &signals.interrupt);
    progress.finish();
    drop(progress);
    match result {
        Ok(r) => {
            if ui.json {
                render::json(&r)?;
            } else if !ui.quiet {
                if r.reverted.is_empty() {
                    render::out("nothing to undo\n");
                } else {
                    let mut s = format!("reverted {} migration(s)", r.reverted.len());
                    if let Some(b) = &r.backup {
                        s.push_str(&format!("; backup {}", b.path.display()));
                    }
                    render::out(&format!("{s}\n"));
                }
            }
            Ok(Exit::Ok)
        }
        Err(Error::Migration(f)) => Ok(super::failure::after_failure(
            settings,
            ui,
            signals,
            &f,
            super::failure::Decide {
                on_failure: OnFailure::Ask,
                force: false,
            },
        )),
        Err(e) => Err(e),
    }
}

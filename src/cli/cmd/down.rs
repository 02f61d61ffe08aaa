use crate::cli::args::OnFailure;
use crate::cli::progress::Progress;
use crate::cli::{exit::Exit, render, Signals, Ui};
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

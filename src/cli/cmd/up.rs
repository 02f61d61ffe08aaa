//! `backstop up`: apply, render the summary; a failure goes to `failure`.

use super::failure::{after_failure, Decide};
use crate::apply::{self, UpOptions};
use crate::cli::args::UpArgs;
use crate::cli::exit::Exit;
use crate::cli::progress::{ms, Progress};
use crate::cli::{prompt, render, Signals, Ui};
use crate::error::Error;
use crate::settings::Settings;

pub fn run(settings: &Settings, ui: &Ui, signals: &Signals, args: &UpArgs) -> Result<Exit, Error> {
    let mut opts = UpOptions {
        to: args.to.clone(),
        allow_out_of_order: args.allow_out_of_order,
        no_backup: args.no_backup,
        accept_drift: ui.yes,
    };
    if args.dry_run {
        return dry_run(settings, ui, signals, &opts);
    }
    let mut result = up_once(settings, ui, signals, &opts);
    if let Err(Error::Drift { path, drift }) = &result {
        // On a terminal the user decides; without one the error says how.
        if ui.interactive {
            eprintln!(
                "warning: the schema of {} changed outside migrations since the last run: {drift}",
                path.display()
            );
            if !prompt::confirm(
                ui,
                signals,
                "Accept the change and run the migrations?",
                "accepting schema drift",
            )? {
                return Err(Error::Declined {
                    what: format!(
                        "running migrations over the schema drift in {}",
                        path.display()
                    ),
                });
            }
            opts.accept_drift = true;
            result = up_once(settings, ui, signals, &opts);
        }
    }
    match result {
        Ok(report) => {
            if ui.json {
                render::json(&serde_json::json!({ "ok": true, "report": report }))?;
            } else if !ui.quiet {
                render::out(&summary(&report));
            }
            Ok(Exit::Ok)
        }
        Err(Error::Migration(failure)) => Ok(after_failure(
            settings,
            ui,
            signals,
            &failure,
            Decide {
                on_failure: args.on_failure,
                force: args.force,
            },
        )),
        Err(e) => Err(e),
    }
}

fn up_once(
    settings: &Settings,
    ui: &Ui,
    signals: &Signals,
    opts: &UpOptions,
) -> Result<apply::UpReport, Error> {
    let mut progress = Progress::new(ui, signals);
    let result = apply::up(settings, opts, &mut progress, &signals.interrupt);
    progress.finish();
    result
}

fn summary(report: &apply::UpReport) -> String {
    if report.applied.is_empty() {
        return format!(
            "{} is up to date; nothing to apply\n",
            report.database.display()
        );
    }
    let rows: u64 = report.applied.iter().map(|a| a.rows_changed).sum();
    let mut s = format!(
        "applied {} migration(s) in {} ({} changed)",
        report.applied.len(),
        ms(std::time::Duration::from_millis(report.duration_ms)),
        plural(rows as usize, "row")
    );
    if let Some(b) = &report.backup {
        s.push_str(&format!("; backup {}", b.path.display()));
    }
    s.push('\n');
    s
}

/// "1 migration", "2 migrations".
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn dry_run(
    settings: &Settings,
    ui: &Ui,
    signals: &Signals,
    opts: &UpOptions,
) -> Result<Exit, Error> {
    let mut progress = Progress::new(ui, signals).rehearsal();
    let result = crate::rehearse::rehearse(settings, opts, &mut progress, &signals.interrupt);
    progress.finish();
    drop(progress);
    let r = result?;
    let exit = if r.ok {
        Exit::Ok
    } else {
        Exit::RehearsalFailed
    };
    if let Some(f) = &r.failure {
        // The report goes to stdout; the failure is also an error for stderr.
        eprintln!(
            "{} the rehearsal failed: {}",
            console::style("error:").for_stderr().red().bold(),
            f.message
        );
        eprintln!(
            "{} fix the migration; the real database was not touched",
            console::style("hint:").for_stderr().cyan().bold()
        );
    }
    if ui.json {
        render::json(&r)?;
    } else if !(ui.quiet && r.ok) {
        render::out(&render::rehearsal(&r));
    }
    Ok(exit)
}

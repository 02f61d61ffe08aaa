use crate::apply::{self, RunFailure, UpOptions};
use crate::backup::BackupInfo;
use crate::cli::args::{OnFailure, UpArgs};
use crate::cli::exit::Exit;
use crate::cli::progress::{ms, Progress};
use crate::cli::prompt::{self, Answer};
use crate::cli::{render, report, Signals, Ui};
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
            args.on_failure,
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

/// What to do after a failed run.
enum Choice<'f> {
    Restore(&'f BackupInfo),
    Keep,
    /// Ctrl-C or Esc at the prompt.
    Left,
}

/// SPEC `up` step 5: report, then restore or keep (prompt, flag, or keep
/// without a terminal), then exit 1, or 130 after Ctrl-C.
pub fn after_failure(
    settings: &Settings,
    ui: &Ui,
    signals: &Signals,
    failure: &RunFailure,
    on_failure: OnFailure,
) -> Exit {
    let failed = Error::Migration(Box::new(failure.clone()));
    report(&failed);
    let restore_cmd = failure.backup.as_ref().map(|b| {
        format!(
            "backstop restore --database {} {} --yes",
            quote(&settings.database.display().to_string()),
            quote(&b.path.display().to_string())
        )
    });
    match choose(ui, signals, failure, on_failure) {
        Choice::Keep => keep(settings, ui, failure, restore_cmd.as_deref()),
        Choice::Restore(backup) => restore(settings, ui, signals, failure, backup, on_failure)
            .unwrap_or_else(|e| {
                report(&e);
                if let Some(cmd) = &restore_cmd {
                    eprintln!("the database is at the last good migration; to retry: {cmd}");
                }
                if ui.json {
                    // Still one document (issue 13: programs read it).
                    let mut doc = failure_document(failure, false);
                    doc["restore_error"] = e.to_string().into();
                    doc["restore_command"] = restore_cmd.clone().into();
                    let _ = render::json(&doc);
                }
            }),
        Choice::Left => {
            eprintln!("left without restoring");
            return Exit::Interrupted;
        }
    }
    Exit::Reported(failed)
}

/// The flag decides; without one, the user on a terminal; without a
/// terminal, keep (the exact restore command is printed).
fn choose<'f>(
    ui: &Ui,
    signals: &Signals,
    failure: &'f RunFailure,
    on_failure: OnFailure,
) -> Choice<'f> {
    let Some(b) = &failure.backup else {
        eprintln!("no backup was taken (--no-backup): the database stays as it is");
        return Choice::Keep;
    };
    match on_failure {
        OnFailure::Restore => return Choice::Restore(b),
        OnFailure::Keep => return Choice::Keep,
        OnFailure::Ask if !ui.interactive => return Choice::Keep,
        OnFailure::Ask => {}
    }
    if failure.others_wrote {
        eprintln!("{}", others_warning(failure));
    }
    let before = b
        .manifest
        .newest_version
        .as_ref()
        .map(|v| format!("version {v}"))
        .unwrap_or("no migrations".into());
    // Short items: they must fit a narrow terminal without wrapping.
    eprintln!("backup taken before this run: {}", b.path.display());
    let kept = match failure.applied.last() {
        Some(a) => format!(
            "Keep the database as it is: at {} ({} of this run applied)",
            a.version,
            plural(failure.applied.len(), "migration")
        ),
        None if !failure.rolled_back => format!(
            "Keep the database as it is (migration {} is partly applied: {})",
            failure.version,
            failure.partly_applied_because()
        ),
        None => "Keep the database as it is (nothing of this run was applied)".to_string(),
    };
    let items = vec![
        format!("Restore that backup: undo this whole run (back to {before})"),
        kept,
    ];
    let title = if failure.rolled_back {
        "The failed migration was rolled back. What now?"
    } else {
        "The failed migration ran outside a transaction and is partly applied. What now?"
    };
    let default = if failure.others_wrote { 1 } else { 0 };
    match prompt::select(signals, title, &items, default) {
        Answer::Chose(0) => Choice::Restore(b),
        Answer::Chose(_) => Choice::Keep,
        Answer::Left => Choice::Left,
    }
}

fn keep(settings: &Settings, ui: &Ui, failure: &RunFailure, restore_cmd: Option<&str>) {
    if !ui.quiet {
        let db = settings.database.display();
        match failure.applied.last() {
            Some(a) => eprintln!("kept {db} at version {}", a.version),
            // transaction:false: its statements before the failure stayed.
            None if !failure.rolled_back => eprintln!(
                "kept {db}; migration {} is partly applied ({}) and not recorded",
                failure.version,
                failure.partly_applied_because()
            ),
            None => eprintln!("kept {db}; nothing of this run was applied"),
        }
        if let Some(cmd) = restore_cmd {
            eprintln!("to undo the whole run: {cmd}");
        }
    }
    if ui.json {
        let mut doc = failure_document(failure, false);
        doc["restore_command"] = restore_cmd.into();
        let _ = render::json(&doc);
    }
}

fn restore(
    settings: &Settings,
    ui: &Ui,
    signals: &Signals,
    failure: &RunFailure,
    backup: &BackupInfo,
    on_failure: OnFailure,
) -> Result<(), Error> {
    // SPEC "Restore": say so before undoing other programs' writes (the
    // prompt above already did; `--on-failure restore` never did). The run
    // only saw writes until the failure: a live app may write after it, or
    // while the prompt waits, and the restore undoes that too, so never let
    // it pass in silence.
    if failure.others_wrote && on_failure == OnFailure::Restore {
        eprintln!("{}", others_warning(failure));
    } else if !failure.others_wrote {
        eprintln!(
            "note: restoring undoes anything written after the backup was taken, including writes by other programs since the failure"
        );
    }
    let mut progress = Progress::new(ui, signals);
    let restored = crate::restore::preview(settings, &backup.path)
        .and_then(|p| crate::restore::run(settings, &p, Some(&failure.to_string()), &mut progress));
    progress.finish();
    drop(progress);
    let r = restored?;
    if !ui.quiet {
        eprintln!(
            "restored {} from {}",
            settings.database.display(),
            backup.path.display()
        );
        if let Some(s) = &r.safety {
            eprintln!(
                "the state before restoring is saved in {}",
                s.path.display()
            );
        }
    }
    if ui.json {
        let mut doc = failure_document(failure, true);
        doc["restore"] = serde_json::to_value(&r).unwrap_or_default();
        let _ = render::json(&doc);
    }
    Ok(())
}

/// The `--json` document of a failed run (README "JSON output"): the keys of
/// every error document, the failure, and what was done about it.
fn failure_document(failure: &RunFailure, restored: bool) -> serde_json::Value {
    let mut doc = render::error_document(&Error::Migration(Box::new(failure.clone())));
    doc["failure"] = serde_json::to_value(failure).unwrap_or_default();
    doc["restored"] = restored.into();
    doc
}

/// Said before restore is offered over writes made since the backup.
fn others_warning(failure: &RunFailure) -> &'static str {
    if failure.script_wrote {
        // Issue 12: a script opens the database itself.
        "warning: a script of this run changed the database, and backstop cannot tell its writes \
         from another program's; restoring undoes every write since the backup was taken"
    } else {
        "warning: another program wrote to the database after the backup was taken; restoring undoes those writes too"
    }
}

/// "1 migration", "2 migrations".
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// A word the user can paste into a shell.
fn quote(s: &str) -> String {
    shlex::try_quote(s)
        .map(|q| q.into_owned())
        .unwrap_or_else(|_| s.to_owned())
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

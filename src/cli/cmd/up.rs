use crate::apply::{self, RunFailure, UpOptions};
use crate::cli::args::{OnFailure, UpArgs};
use crate::cli::progress::{ms, Progress};
use crate::cli::prompt::{self, Answer};
use crate::cli::{exit::code, render, report, Signals, Ui};
use crate::error::Error;
use crate::migration::Version;
use crate::settings::Settings;

pub fn run(settings: &Settings, ui: &Ui, signals: &Signals, args: &UpArgs) -> Result<i32, Error> {
    let opts = UpOptions {
        to: args.to.map(Version),
        allow_out_of_order: args.allow_out_of_order,
        no_backup: args.no_backup,
    };
    if args.dry_run {
        return dry_run(settings, ui, signals, &opts);
    }
    let mut progress = Progress::new(ui, signals);
    let result = apply::up(settings, &opts, &mut progress, &signals.interrupt);
    progress.finish();
    drop(progress);
    match result {
        Ok(report) => {
            if ui.json {
                render::json(&serde_json::json!({ "ok": true, "report": report }))?;
            } else if !ui.quiet {
                if report.applied.is_empty() {
                    render::out(&format!(
                        "{} is up to date; nothing to apply\n",
                        report.database.display()
                    ));
                } else {
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
                    render::out(&format!("{s}\n"));
                }
            }
            Ok(code::OK)
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

/// SPEC `up` step 5: report, then restore or keep (prompt, flag, or keep
/// without a terminal), then exit 1, or 130 after Ctrl-C.
pub fn after_failure(
    settings: &Settings,
    ui: &Ui,
    signals: &Signals,
    failure: &RunFailure,
    on_failure: OnFailure,
) -> i32 {
    let failed = Error::Migration(Box::new(failure.clone()));
    let exit = report(&failed);
    let kept_at = failure.applied.last().map(|a| a.version.to_string());
    let restore_cmd = failure.backup.as_ref().map(|b| {
        format!(
            "backstop restore --database {} {} --yes",
            shell_quote(&settings.database.display().to_string()),
            shell_quote(&b.path.display().to_string())
        )
    });
    let choice = match (&failure.backup, on_failure) {
        (None, _) => {
            eprintln!("no backup was taken (--no-backup): the database stays as it is");
            Choice::Keep
        }
        (Some(_), OnFailure::Restore) => Choice::Restore,
        (Some(_), OnFailure::Keep) => Choice::Keep,
        (Some(_), OnFailure::Ask) if !ui.interactive => Choice::Keep,
        (Some(b), OnFailure::Ask) => {
            if failure.others_wrote {
                eprintln!(
                    "warning: another program wrote to the database after the backup was taken; restoring undoes those writes too"
                );
            }
            let before = b
                .manifest
                .newest_version
                .map(|v| format!("version {v}"))
                .unwrap_or("no migrations".into());
            // Short items: they must fit a narrow terminal without wrapping.
            eprintln!("backup taken before this run: {}", b.path.display());
            let items = vec![
                format!("Restore that backup: undo this whole run (back to {before})"),
                match &kept_at {
                    Some(v) => format!(
                        "Keep the database as it is: at {v} ({} of this run applied)",
                        plural(failure.applied.len(), "migration")
                    ),
                    None if !failure.rolled_back => format!("Keep the database as it is (migration {} is partly applied: transaction:false)", failure.version),
                    None => "Keep the database as it is (nothing of this run was applied)".to_string(),
                },
            ];
            let title = if failure.rolled_back {
                "The failed migration was rolled back. What now?"
            } else {
                "The failed migration ran outside a transaction and is partly applied. What now?"
            };
            let default = if failure.others_wrote { 1 } else { 0 };
            match prompt::select(signals, title, &items, default) {
                Answer::Chose(0) => Choice::Restore,
                Answer::Chose(_) => Choice::Keep,
                Answer::Left => {
                    eprintln!("left without restoring");
                    return code::INTERRUPTED;
                }
            }
        }
    };
    match choice {
        Choice::Keep => {
            if !ui.quiet {
                match &kept_at {
                    Some(v) => eprintln!("kept {} at version {v}", settings.database.display()),
                    // transaction:false: its statements before the failure stayed.
                    None if !failure.rolled_back => eprintln!(
                        "kept {}; migration {} is partly applied (transaction:false) and not recorded",
                        settings.database.display(),
                        failure.version
                    ),
                    None => eprintln!(
                        "kept {}; nothing of this run was applied",
                        settings.database.display()
                    ),
                }
                if let Some(cmd) = &restore_cmd {
                    eprintln!("to undo the whole run: {cmd}");
                }
            }
            if ui.json {
                let _ = render::json(&serde_json::json!({
                    "ok": false, "failure": failure, "restored": false, "restore_command": restore_cmd,
                }));
            }
        }
        Choice::Restore => {
            let Some(b) = &failure.backup else {
                return exit;
            };
            // SPEC "Restore": say so before undoing other programs' writes (the
            // prompt above already did; `--on-failure restore` never did). The
            // run only saw writes until the failure: a live app may write after
            // it, or while the prompt waits, and the restore undoes that too, so
            // never let it pass in silence.
            if failure.others_wrote && on_failure == OnFailure::Restore {
                eprintln!(
                    "warning: another program wrote to the database after the backup was taken; restoring undoes those writes too"
                );
            } else if !failure.others_wrote {
                eprintln!(
                    "note: restoring undoes anything written after the backup was taken, including writes by other programs since the failure"
                );
            }
            let mut progress = Progress::new(ui, signals);
            let restored = crate::restore::preview(settings, &b.path).and_then(|p| {
                crate::restore::run(settings, &p, Some(&failure.to_string()), &mut progress)
            });
            progress.finish();
            drop(progress);
            match restored {
                Ok(r) => {
                    if !ui.quiet {
                        eprintln!(
                            "restored {} from {}",
                            settings.database.display(),
                            b.path.display()
                        );
                        if let Some(s) = &r.safety {
                            eprintln!(
                                "the state before restoring is saved in {}",
                                s.path.display()
                            );
                        }
                    }
                    if ui.json {
                        let _ = render::json(
                            &serde_json::json!({ "ok": false, "failure": failure, "restored": true, "restore": r }),
                        );
                    }
                }
                Err(e) => {
                    report(&e);
                    if let Some(cmd) = &restore_cmd {
                        eprintln!("the database is at the last good migration; to retry: {cmd}");
                    }
                }
            }
        }
    }
    exit
}

/// "1 migration", "2 migrations".
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

enum Choice {
    Restore,
    Keep,
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-:+=@".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn dry_run(
    settings: &Settings,
    ui: &Ui,
    signals: &Signals,
    opts: &UpOptions,
) -> Result<i32, Error> {
    let mut progress = Progress::new(ui, signals).rehearsal();
    let result = crate::rehearse::rehearse(settings, opts, &mut progress, &signals.interrupt);
    progress.finish();
    drop(progress);
    let r = result?;
    let exit = if r.ok { code::OK } else { code::FAILED };
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
        return Ok(exit);
    }
    if ui.quiet && r.ok {
        return Ok(exit);
    }
    let mut s = format!(
        "dry run on a copy of {} (the real file is untouched)\n\n",
        r.database.display()
    );
    if r.migrations.is_empty() && r.failure.is_none() {
        s.push_str("nothing to apply\n");
    }
    for a in &r.migrations {
        s.push_str(&format!(
            "  ok      {} {} ({}, {} changed)\n",
            a.version,
            a.name,
            ms(std::time::Duration::from_micros(a.duration_us)),
            plural(a.rows_changed as usize, "row")
        ));
    }
    if let Some(f) = &r.failure {
        s.push_str(&format!(
            "  FAILED  {}\n",
            f.message.replace('\n', "\n          ")
        ));
    }
    if !r.destructive.is_empty() {
        s.push_str("\ndrops and deletes:\n");
        for d in &r.destructive {
            s.push_str(&format!("  {d}\n"));
        }
    }
    let o = &r.objects;
    if !o.is_empty() {
        s.push_str("\nschema objects:\n");
        for (what, list) in [
            ("created", &o.appeared),
            ("dropped", &o.vanished),
            ("changed or rebuilt", &o.changed),
        ] {
            if !list.is_empty() {
                s.push_str(&format!("  {what}: {}\n", list.join(", ")));
            }
        }
    }
    let changed: Vec<Vec<String>> = r
        .tables
        .iter()
        .filter(|t| t.before != t.after)
        .map(|t| {
            let n = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
            vec![t.table.clone(), n(t.before), n(t.after)]
        })
        .collect();
    if !changed.is_empty() {
        s.push('\n');
        s.push_str(&render::table(
            &["TABLE", "ROWS BEFORE", "ROWS AFTER"],
            &changed,
        ));
    }
    if !r.rows_deleted.is_empty() {
        s.push_str(&format!(
            "\nrows would be deleted from: {}\n",
            r.rows_deleted.join(", ")
        ));
    }
    s.push_str(if r.ok {
        "\nthe rehearsal succeeded\n"
    } else {
        "\nthe rehearsal failed: `backstop up` would stop at the migration above\n"
    });
    render::out(&s);
    Ok(exit)
}

//! `backstop restore [BACKUP | --latest]`: choose, show what would be undone
//! (writes after the backup, runs since), confirm, restore.

use std::path::PathBuf;

use indicatif::HumanBytes;

use crate::backup::{self, Problem, Since, Unknown};
use crate::cli::cmd::up::plural;
use crate::cli::prompt::{self, Answer};
use crate::cli::{exit::Exit, progress::Progress, render, Signals, Ui};
use crate::error::Error;
use crate::restore::{self, Current, Preview, RestoreOptions};
use crate::settings::Settings;

pub fn run(
    settings: &Settings,
    ui: &Ui,
    signals: &Signals,
    chosen: Option<PathBuf>,
    latest: bool,
) -> Result<Exit, Error> {
    let Some(path) = choose(settings, ui, signals, chosen, latest)? else {
        return Ok(Exit::Interrupted);
    };
    loop {
        let preview = restore::preview(settings, &path, &signals.interrupt)?;
        if !ui.json && !ui.quiet {
            show(&preview);
        }
        let question = format!(
            "Replace {} with the backup from {}?",
            preview.database.display(),
            preview.manifest.created_at
        );
        if !prompt::confirm(ui, signals, &question, "restoring a backup")? {
            return Err(Error::Declined {
                what: "restore".into(),
            });
        }
        // `--yes` agreed to replace whatever is there; a person who answered
        // the question agreed to what it showed, and is asked again if the
        // database changed in between.
        let opts = RestoreOptions {
            note: None,
            accept_new_writes: ui.yes,
        };
        let mut progress = Progress::new(ui, signals);
        let result = restore::run(settings, &preview, &opts, &mut progress, &signals.interrupt);
        progress.finish();
        drop(progress);
        let report = match result {
            Err(Error::WrittenMeanwhile { .. }) if ui.interactive => {
                eprintln!(
                    "another program wrote to {} while you were choosing; nothing was restored. \
                     Here is what it looks like now:",
                    preview.database.display()
                );
                continue;
            }
            other => other?,
        };
        if ui.json {
            render::json(&report)?;
        } else if !ui.quiet {
            eprintln!(
                "restored {} from {}",
                report.database.display(),
                report.backup.display()
            );
            if let Some(s) = &report.safety {
                eprintln!("the replaced state is saved in {}", s.path.display());
            }
            for d in &report.damaged {
                eprintln!("the damaged file is kept as {}", d.display());
            }
        }
        return Ok(Exit::Ok);
    }
}

/// The backup to restore: a path, `--latest`, or picked from a list. None
/// when the picker was left.
fn choose(
    settings: &Settings,
    ui: &Ui,
    signals: &Signals,
    chosen: Option<PathBuf>,
    latest: bool,
) -> Result<Option<PathBuf>, Error> {
    let not_found = |path: PathBuf| Error::Restore {
        backup: path.clone(),
        problem: Problem::NotFound { path },
    };
    if let Some(p) = chosen {
        return if p.is_file() {
            Ok(Some(p))
        } else if settings.backups.join(&p).is_file() {
            Ok(Some(settings.backups.join(&p)))
        } else {
            Err(not_found(p))
        };
    }
    // Choosing from the folder trusts what is in it: not when others can
    // write there (they could plant a backup for us to pick).
    backup::check_folder(&settings.backups).map_err(|problem| Error::Restore {
        backup: settings.backups.clone(),
        problem,
    })?;
    let folder_error = |source| Error::BackupsFolder {
        path: settings.backups.clone(),
        source,
    };
    if latest {
        let Some(b) =
            backup::latest(&settings.backups, &settings.database).map_err(folder_error)?
        else {
            return Err(not_found(settings.backups.clone()));
        };
        if !ui.json && !ui.quiet {
            eprintln!(
                "--latest: the newest backup that is not a before-restore copy is {} ({})",
                b.path.display(),
                b.reason
            );
        }
        return Ok(Some(b.path));
    }
    if !ui.interactive {
        return Err(Error::NeedsConfirmation {
            what: "choosing a backup".into(),
            flag: "a BACKUP file or --latest (and --yes)",
        });
    }
    pick(settings, signals)
}

fn show(preview: &Preview) {
    let version = |v: Option<String>| {
        v.map(|v| format!("version {v}"))
            .unwrap_or_else(|| "no migrations applied".into())
    };
    let current = match &preview.current {
        Current::Missing => "does not exist".to_string(),
        Current::Healthy {
            newest_version,
            size,
        } => format!(
            "{}, {}",
            version(newest_version.as_ref().map(ToString::to_string)),
            HumanBytes(*size)
        ),
        Current::Damaged { detail } => format!("damaged: {detail}"),
    };
    eprintln!("database  {} ({current})", preview.database.display());
    eprintln!(
        "backup    {} (taken {}, {})",
        preview.backup.display(),
        preview.manifest.created_at,
        version(preview.manifest.newest_version.clone())
    );
    if let Current::Healthy { .. } = preview.current {
        // SPEC "Restore": say so before restoring, in either journal mode.
        let kept = "(the before-restore copy keeps them)";
        match preview.written {
            Since::Unchanged => eprintln!("no writes since this backup was taken"),
            Since::Written { commits: Some(n) } => eprintln!(
                "warning: the database was written after this backup was taken ({}); restoring undoes those writes {kept}",
                plural(n as usize, "commit")
            ),
            Since::Written { commits: None } => eprintln!(
                "warning: the database was written after this backup was taken; restoring undoes those writes {kept}"
            ),
            Since::CannotTell { why } => eprintln!(
                "warning: backstop cannot tell whether the database was written after this backup was taken ({}); \
                 assume it was: restoring undoes any such writes {kept}",
                match why {
                    Unknown::NotRecorded => "its manifest predates the record that tells",
                    Unknown::Unreadable => "the database cannot be read now",
                    Unknown::Checkpointed => "its WAL was checkpointed into the file since",
                    Unknown::Replaced => "the file changed in a way SQLite's commits do not explain",
                },
            ),
        }
        if !preview.later_runs.is_empty() {
            let runs: Vec<String> = preview
                .later_runs
                .iter()
                .map(|r| format!("{} ({}, {})", r.command, r.outcome, r.started_at))
                .collect();
            eprintln!(
                "runs since the backup, kept in the log: {}",
                runs.join(", ")
            );
        }
        eprintln!("the current database is backed up first (reason before-restore)");
    } else {
        eprintln!("what is there now is copied to the backups folder as .damaged first");
    }
}

fn pick(settings: &Settings, signals: &Signals) -> Result<Option<PathBuf>, Error> {
    let listed = backup::list(&settings.backups, &settings.database).map_err(|source| {
        Error::BackupsFolder {
            path: settings.backups.clone(),
            source,
        }
    })?;
    if listed.is_empty() {
        let folder = settings.backups.clone();
        return Err(Error::Restore {
            backup: folder.clone(),
            problem: Problem::NotFound { path: folder },
        });
    }
    let items: Vec<String> = listed
        .iter()
        .map(|b| {
            let m = b.manifest.as_ref();
            format!(
                "{}  {:<16} {:<22} {}",
                b.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
                b.reason,
                m.and_then(|m| m.newest_version.as_ref())
                    .map(|v| format!("version {v}"))
                    .unwrap_or_else(|| "-".into()),
                m.map(|m| HumanBytes(m.size).to_string())
                    .unwrap_or_else(|| "no manifest".into())
            )
        })
        .collect();
    Ok(
        match prompt::select(signals, "Which backup should be restored?", &items, 0) {
            Answer::Chose(i) => Some(listed[i].path.clone()),
            Answer::Left => None,
        },
    )
}

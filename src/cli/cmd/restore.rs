use std::path::PathBuf;

use indicatif::HumanBytes;

use crate::backup::{self, Problem};
use crate::cli::prompt::{self, Answer};
use crate::cli::{exit::Exit, progress::Progress, render, Signals, Ui};
use crate::error::Error;
use crate::restore::{self, Current};
use crate::settings::Settings;

pub fn run(
    settings: &Settings,
    ui: &Ui,
    signals: &Signals,
    chosen: Option<PathBuf>,
    latest: bool,
) -> Result<Exit, Error> {
    let not_found = |path: PathBuf| Error::Restore {
        backup: path.clone(),
        problem: Problem::NotFound { path },
    };
    let path = match (chosen, latest) {
        (Some(p), _) => {
            if p.is_file() {
                p
            } else if settings.backups.join(&p).is_file() {
                settings.backups.join(&p)
            } else {
                return Err(not_found(p));
            }
        }
        (None, true) => backup::list(&settings.backups, &settings.database)
            .map_err(|source| Error::BackupsFolder {
                path: settings.backups.clone(),
                source,
            })?
            .into_iter()
            .next()
            .map(|b| b.path)
            .ok_or_else(|| not_found(settings.backups.clone()))?,
        (None, false) if !ui.interactive => {
            return Err(Error::NeedsConfirmation {
                what: "choosing a backup".into(),
                flag: "a BACKUP file or --latest (and --yes)",
            })
        }
        (None, false) => match pick(settings, signals)? {
            Some(p) => p,
            None => return Ok(Exit::Interrupted),
        },
    };
    let preview = restore::preview(settings, &path)?;
    let when = &preview.manifest.created_at;
    let version = |v: Option<String>| {
        v.map(|v| format!("version {v}"))
            .unwrap_or_else(|| "no migrations applied".into())
    };
    let current = match &preview.current {
        Current::Missing => "does not exist".to_string(),
        Current::Healthy {
            newest_version,
            size,
        } => {
            format!(
                "{}, {}",
                version(newest_version.as_ref().map(ToString::to_string)),
                HumanBytes(*size)
            )
        }
        Current::Damaged { detail } => format!("damaged: {detail}"),
    };
    if !ui.json && !ui.quiet {
        eprintln!("database  {} ({current})", preview.database.display());
        eprintln!(
            "backup    {} (taken {when}, {})",
            path.display(),
            version(preview.manifest.newest_version.clone())
        );
        if preview.changed_since == Some(true) {
            eprintln!("warning: the database was written after this backup was taken; restoring undoes those writes");
        }
        match preview.current {
            Current::Healthy { .. } => {
                eprintln!("the current database is backed up first (reason before-restore)")
            }
            _ => eprintln!("what is there now is copied to the backups folder as .damaged first"),
        }
    }
    let question = format!(
        "Replace {} with the backup from {when}?",
        preview.database.display()
    );
    if !prompt::confirm(ui, signals, &question, "restoring a backup")? {
        return Err(Error::Declined {
            what: "restore".into(),
        });
    }
    let mut progress = Progress::new(ui, signals);
    let result = restore::run(settings, &preview, None, &mut progress);
    progress.finish();
    drop(progress);
    let report = result?;
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
    Ok(Exit::Ok)
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

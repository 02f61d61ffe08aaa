use indicatif::HumanBytes;

use crate::backup::{self, Intact};
use crate::cli::{exit::Exit, progress::Progress, render, Signals, Ui};
use crate::error::Error;
use crate::settings::Settings;

pub fn run(
    settings: &Settings,
    ui: &Ui,
    signals: &Signals,
    label: Option<&str>,
) -> Result<Exit, Error> {
    let mut progress = Progress::new(ui, signals);
    let info = backup::manual(settings, label, &mut progress)?;
    progress.finish();
    if ui.json {
        render::json(&info)?;
    }
    Ok(Exit::Ok)
}

pub fn list(settings: &Settings, ui: &Ui, signals: &Signals) -> Result<Exit, Error> {
    let mut progress = Progress::new(ui, signals);
    let checked = backup::list_checked(
        &settings.backups,
        &settings.database,
        &mut progress,
        &signals.interrupt,
    )
    .map_err(|source| Error::BackupsFolder {
        path: settings.backups.clone(),
        source,
    })?
    .ok_or(Error::Interrupted)?;
    progress.finish();
    drop(progress);
    if ui.json {
        let rows: Vec<serde_json::Value> = checked
            .iter()
            .map(|(b, intact)| {
                serde_json::json!({
                    "path": b.path,
                    "created_at": b.created_at,
                    "reason": b.reason,
                    "newest_version": b.manifest.as_ref().and_then(|m| m.newest_version.clone()),
                    "size": b.manifest.as_ref().map(|m| m.size),
                    "intact": match intact {
                        Intact::Yes => Some(true),
                        Intact::NoManifest => None,
                        _ => Some(false),
                    },
                })
            })
            .collect();
        render::json(&serde_json::json!({
            "database": settings.database,
            "backups": rows,
        }))?;
        return Ok(Exit::Ok);
    }
    if ui.quiet {
        return Ok(Exit::Ok);
    }
    if checked.is_empty() {
        render::out(&format!(
            "no backups of {} in {}\n",
            settings.database.display(),
            settings.backups.display()
        ));
        return Ok(Exit::Ok);
    }
    let table: Vec<Vec<String>> = checked
        .iter()
        .map(|(b, intact)| {
            let m = b.manifest.as_ref();
            vec![
                b.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                b.reason.clone(),
                m.and_then(|m| m.newest_version.clone())
                    .unwrap_or_else(|| "-".into()),
                m.map(|m| HumanBytes(m.size).to_string())
                    .unwrap_or_else(|| "-".into()),
                match intact {
                    Intact::Yes => "ok".into(),
                    Intact::Damaged => "DAMAGED".into(),
                    Intact::NoManifest => "no manifest".into(),
                    Intact::Unreadable(_) => "unreadable".into(),
                },
                b.path.display().to_string(),
            ]
        })
        .collect();
    render::out(&render::table(
        &["TAKEN", "REASON", "VERSION", "SIZE", "HASH", "FILE"],
        &table,
    ));
    Ok(Exit::Ok)
}

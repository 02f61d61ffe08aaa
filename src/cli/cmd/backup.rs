use crate::backup::{self, human};
use crate::cli::{progress::Progress, render, Signals, Ui};
use crate::db::{self, Access};
use crate::error::Error;
use crate::settings::Settings;

pub fn run(
    settings: &Settings,
    ui: &Ui,
    signals: &Signals,
    label: Option<&str>,
) -> Result<i32, Error> {
    let path = &settings.database;
    let opened = db::open(path, Access::Read, settings.busy_timeout)?
        .ok_or_else(|| Error::NoDatabase { path: path.clone() })?;
    let newest = crate::history::applied(&opened.conn)
        .map_err(|e| Error::from_sqlite(path, e))?
        .iter()
        .map(|r| r.version)
        .max();
    drop(opened);
    let reason = match label.map(backup::slug) {
        Some(s) if !s.is_empty() => s,
        Some(_) => {
            return Err(Error::Setting {
                setting: "--label",
                value: label.unwrap_or("").into(),
                expected: "letters or digits",
            })
        }
        None => "manual".into(),
    };
    let mut progress = Progress::new(ui, signals);
    let info = backup::take(
        &backup::Request::new(settings, &reason, newest),
        &mut progress,
    )?;
    progress.finish();
    if ui.json {
        render::json(&info)?;
    }
    Ok(0)
}

pub fn list(settings: &Settings, ui: &Ui) -> Result<i32, Error> {
    let listed = backup::list(&settings.backups, &settings.database)
        .map_err(|e| Error::io(&settings.backups, e))?;
    // Whether each file still matches its manifest: a full read per backup, but
    // that is the point of listing them before a restore.
    let rows: Vec<serde_json::Value> = listed
        .iter()
        .map(|b| {
            let intact = b.manifest.as_ref().map(|m| {
                backup::hash_file(&b.path)
                    .map(|(h, _)| h == m.sha256)
                    .unwrap_or(false)
            });
            serde_json::json!({
                "path": b.path,
                "created_at": b.created_at,
                "reason": b.reason,
                "newest_version": b.manifest.as_ref().and_then(|m| m.newest_version),
                "size": b.manifest.as_ref().map(|m| m.size),
                "intact": intact,
            })
        })
        .collect();
    if ui.json {
        render::json(&rows)?;
        return Ok(0);
    }
    if ui.quiet {
        return Ok(0);
    }
    if rows.is_empty() {
        render::out(&format!(
            "no backups of {} in {}\n",
            settings.database.display(),
            settings.backups.display()
        ));
        return Ok(0);
    }
    let table: Vec<Vec<String>> = listed
        .iter()
        .zip(&rows)
        .map(|(b, r)| {
            vec![
                b.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                b.reason.clone(),
                r["newest_version"]
                    .as_u64()
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "-".into()),
                r["size"].as_u64().map(human).unwrap_or_else(|| "-".into()),
                match r["intact"].as_bool() {
                    Some(true) => "ok".into(),
                    Some(false) => "DAMAGED".into(),
                    None => "no manifest".into(),
                },
                b.path.display().to_string(),
            ]
        })
        .collect();
    render::out(&render::table(
        &["TAKEN", "REASON", "VERSION", "SIZE", "HASH", "FILE"],
        &table,
    ));
    Ok(0)
}

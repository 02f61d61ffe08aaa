//! `backstop adopt`: show what another tool's table says, ask, record.

use crate::adopt::{AdoptOptions, Kept, Preview};
use crate::cli::{exit::Exit, progress::Progress, prompt, render, Signals, Ui};
use crate::error::Error;
use crate::settings::Settings;

pub fn run(
    settings: &Settings,
    ui: &Ui,
    signals: &Signals,
    opts: &AdoptOptions,
    dry_run: bool,
) -> Result<Exit, Error> {
    let mut preview = crate::adopt::preview(settings, opts)?;
    if !ui.json && !ui.quiet {
        describe(&preview);
    }
    if let Some(m) = preview.schema_mismatch.take() {
        return Err(Error::SchemaMismatch(m));
    }
    if dry_run || preview.record.is_empty() {
        if ui.json {
            render::json(&preview)?;
        } else if !ui.quiet {
            eprintln!(
                "{}",
                if preview.record.is_empty() {
                    "nothing to record; nothing was changed"
                } else {
                    "dry run: nothing was changed"
                }
            );
        }
        return Ok(Exit::Ok);
    }
    let question = format!(
        "Record {} migration(s) as applied to {}? ({}'s table stays as it is)",
        preview.record.len(),
        settings.database.display(),
        preview.from
    );
    if !prompt::confirm(ui, signals, &question, "adopt")? {
        return Err(Error::Declined {
            what: "adopt".into(),
        });
    }
    let mut progress = Progress::new(ui, signals);
    let report = crate::adopt::run(settings, preview, opts.no_backup, &mut progress)?;
    progress.finish();
    drop(progress);
    if ui.json {
        render::json(&report)?;
    } else if !ui.quiet {
        eprintln!(
            "recorded {} migration(s) as applied; {}'s {} was left untouched",
            report.preview.record.len(),
            report.preview.from,
            report.preview.table
        );
    }
    Ok(Exit::Ok)
}

fn describe(p: &Preview) {
    eprintln!(
        "{} migrated {} (its table {}):",
        p.from,
        p.database.display(),
        p.table
    );
    let width = p
        .record
        .iter()
        .map(|a| a.version.to_string().len())
        .max()
        .unwrap_or(0);
    let names = p.record.iter().map(|a| a.name.len()).max().unwrap_or(0);
    for a in &p.record {
        let checksum = match a.checksum {
            Kept::Nothing => format!("({} keeps no checksum)", p.from),
            Kept::Matches => format!("checksum matches {}'s", p.from),
            Kept::Differs => format!("edited since {} applied it (--accept-edits)", p.from),
        };
        eprintln!(
            "  record {:width$}  {:names$}  {checksum}",
            a.version.to_string(),
            a.name
        );
    }
    if !p.already_recorded.is_empty() {
        eprintln!(
            "  already recorded by backstop: {}",
            join(&p.already_recorded)
        );
    }
    if !p.without_file.is_empty() {
        eprintln!(
            "  recorded by {} but no file in the folder: {}",
            p.from,
            p.without_file.join(", ")
        );
    }
    if !p.not_applied.is_empty() {
        eprintln!(
            "  not applied by {} (left for `backstop up`): {}",
            p.from,
            join(&p.not_applied)
        );
    }
    for n in &p.notes {
        eprintln!("  note: {n}");
    }
    if p.record.is_empty() {
        return;
    }
    if p.schema_mismatch.is_none() {
        eprintln!(
            "{}",
            if p.schema_checked {
                "the database's schema matches these migrations replayed on an empty database"
            } else {
                "--force: the database's schema is not compared with the migrations"
            }
        );
    }
}

fn join(v: &[crate::Version]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

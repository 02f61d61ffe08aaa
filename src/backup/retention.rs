//! Listing and pruning the backups of one database in the backups folder.

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::manifest::{self, Manifest};

/// A backup found in the folder (final name), newest first when listed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Listed {
    pub path: PathBuf,
    pub created_at: DateTime<Utc>,
    pub reason: String,
    pub manifest: Option<Manifest>,
}

/// Backups of `database` in `folder`, newest first. Temporary files and
/// `.damaged` copies are never listed.
pub fn list(folder: &Path, database: &Path) -> std::io::Result<Vec<Listed>> {
    let stem = manifest::stem(database);
    let source = source_of(database);
    let mut out = Vec::new();
    let entries = match fs::read_dir(folder) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((created_at, reason)) = manifest::parse_name(&stem, &name) else {
            continue;
        };
        let path = entry.path();
        let manifest = super::read_manifest(&path).ok();
        // The name only carries the file stem: `staging/app.db` and `prod/app.db`
        // (or `app.db` and `app.sqlite`) share it in a common backups folder.
        // The manifest says whose backup this is, so another database's backup
        // is never listed, chosen by `restore --latest`, or pruned by our `keep`.
        if manifest.as_ref().is_some_and(|m| m.source != source) {
            continue;
        }
        out.push(Listed {
            path,
            created_at,
            reason,
            manifest,
        });
    }
    out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.path.cmp(&a.path)));
    Ok(out)
}

/// Deletes backups of `database` beyond the newest `keep`. Never deleted
/// (SPEC "Backups", issue 9): the ones in `protect` (the one just taken, the
/// one being restored), one another command marks [`InUse`](super::InUse),
/// and the newest pre-run backup, which a failed run points to. Returns the
/// deleted paths.
pub fn prune(
    folder: &Path,
    database: &Path,
    keep: usize,
    protect: &[&Path],
) -> std::io::Result<Vec<PathBuf>> {
    let mut deleted = Vec::new();
    let all = list(folder, database)?;
    let newest_pre_run = all
        .iter()
        .find(|b| is_pre_run(&b.reason))
        .map(|b| b.path.clone());
    let kept_anyway = |b: &Listed| {
        protect.contains(&b.path.as_path()) || Some(&b.path) == newest_pre_run.as_ref()
    };
    // The protected ones count towards `keep`, so the folder does not grow.
    let mut room = keep.saturating_sub(all.iter().filter(|b| kept_anyway(b)).count());
    for old in all {
        if kept_anyway(&old) {
            continue;
        }
        if room > 0 {
            room -= 1;
            continue;
        }
        // Only what is provably this database's: the name carries the file
        // stem only, and a backup whose manifest is gone may be another
        // database's (`staging/app.db` beside `prod/app.db`).
        if old.manifest.is_none() || super::temporary::in_use(&old.path) {
            continue;
        }
        // The backup goes first: a manifest without its backup is ignored, a
        // backup without its manifest would still be listed.
        fs::remove_file(&old.path)?;
        let _ = fs::remove_file(manifest::path_for(&old.path));
        deleted.push(old.path);
    }
    super::sync_dir(folder);
    Ok(deleted)
}

/// The reasons of the backups commands take before they change the database
/// (`before-<command>`); a label such as `before-deploy` is a manual backup.
pub const PRE_RUN: [&str; 5] = [
    "before-up",
    "before-down",
    "before-repair",
    "before-baseline",
    "before-adopt",
];

/// Backups taken before a command changed the database, not the safety copy
/// a restore takes.
pub fn is_pre_run(reason: &str) -> bool {
    PRE_RUN.contains(&reason)
}

/// Reasons backstop gives its own backups, which a `--label` may not take.
pub fn is_reserved(reason: &str) -> bool {
    is_pre_run(reason) || reason == RESTORE_SAFETY
}

/// The reason of the copy `restore` takes of what it replaces.
pub const RESTORE_SAFETY: &str = "before-restore";

/// What `restore --latest` means (SPEC "Restore"): the newest backup that is
/// not a before-restore copy, so a second `restore --latest` does not undo the
/// first.
pub fn latest(folder: &Path, database: &Path) -> std::io::Result<Option<Listed>> {
    Ok(list(folder, database)?
        .into_iter()
        .find(|b| b.reason != RESTORE_SAFETY))
}

/// The database's path as `take` records it in manifests (canonical), also
/// when the file itself is gone (the emergency restore of a deleted database).
fn source_of(database: &Path) -> PathBuf {
    if let Ok(p) = fs::canonicalize(database) {
        return p;
    }
    let folder = crate::db::folder_of(database);
    match (fs::canonicalize(&folder), database.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => database.to_path_buf(),
    }
}

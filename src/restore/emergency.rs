//! The emergency restore (SPEC "Restore"): the database is missing, truncated
//! or corrupt, so SQLite cannot copy into it. What is there is saved as plain
//! `.damaged` copies (with its `-wal`/`-journal`), and the backup is put in
//! its place by rename, as a file with the owner, group and mode of the one
//! it replaces (issue 9: a root-run restore must not lock the app out).

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::{with_suffix, Record};
use crate::backup::{self, Problem};
use crate::db;
use crate::error::{Error, Result};
use crate::history::StoredRun;
use crate::observe::{Event, Interrupt, Observer};
use crate::settings::Settings;

/// Saves what is there, then renames a copy of `backup_path` into place.
/// Returns the `.damaged` copies.
pub(super) fn replace(
    settings: &Settings,
    backup_path: &Path,
    obs: &mut dyn Observer,
    interrupt: &Interrupt,
) -> Result<Vec<PathBuf>> {
    let database = &settings.database;
    let folder = db::folder_of(database);
    if !folder.is_dir() {
        return Err(Error::NoFolder {
            path: database.clone(),
            folder,
        });
    }
    let fail = |problem| super::restore_error(backup_path, problem);
    let name = file_name(database);
    for path in backup::sweep(&folder, Some(&format!("{name}.restore"))) {
        obs.event(Event::TemporaryRemoved { path: &path });
    }
    backup::prepare_folder(&settings.backups).map_err(fail)?;
    let damaged = save_damaged(database, &settings.backups, interrupt).map_err(fail)?;
    replace_file(backup_path, database, obs, interrupt).map_err(fail)?;
    back_to_wal(backup_path, database);
    Ok(damaged)
}

/// Backups are kept in rollback-journal mode so they open on their own; a
/// database that was in WAL mode when it was backed up goes back to it, as
/// the app that made it WAL expects (the journal mode is stored in the file).
/// Best effort: the restore itself is done, and a rollback-journal database
/// is consistent too.
fn back_to_wal(backup_path: &Path, database: &Path) {
    let was_wal = backup::read_manifest(backup_path)
        .is_ok_and(|m| m.journal_mode.eq_ignore_ascii_case("wal"));
    if !was_wal {
        return;
    }
    if let Ok(conn) = rusqlite::Connection::open(database) {
        let _ = db::busy::install(&conn, std::time::Duration::from_secs(5));
        let _ = conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()));
    }
}

/// The restore's row (and the runs carried from the damaged file, where it
/// could still be read) in the restored database. Best effort: the restore
/// itself is done. Returns how many runs were carried.
pub(super) fn record(database: &Path, later: &[StoredRun], record: &Record) -> usize {
    let Ok(conn) = rusqlite::Connection::open_with_flags(
        database,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) else {
        return 0;
    };
    let _ = db::busy::install(&conn, std::time::Duration::from_secs(5));
    match super::write_log(&conn, later, record, serde_json::json!({})) {
        Ok(()) => later.len(),
        Err(_) => 0,
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Plain copies of a damaged database and its journals: `<stem>.<ts>.damaged`.
/// Not backups: never listed, never chosen by `--latest`, never pruned.
fn save_damaged(
    database: &Path,
    folder: &Path,
    interrupt: &Interrupt,
) -> std::result::Result<Vec<PathBuf>, Problem> {
    let stem = backup::manifest_stem(database);
    let ts = chrono::Utc::now().format(backup::TIMESTAMP);
    let mut saved = Vec::new();
    for (suffix, src) in [
        ("", database.to_path_buf()),
        ("-wal", with_suffix(database, "-wal")),
        ("-journal", with_suffix(database, "-journal")),
    ] {
        if !src.is_file() {
            continue;
        }
        let dst = folder.join(format!("{stem}.{ts}.damaged{suffix}"));
        let mut tmp =
            backup::temporary(folder, &file_name(&dst)).map_err(|source| Problem::Io {
                path: folder.to_path_buf(),
                source,
            })?;
        let tmp_path = tmp.path().to_path_buf();
        copy_into(&src, tmp.as_file_mut(), &tmp_path, interrupt)?;
        tmp.persist_noclobber(&dst).map_err(|e| Problem::Io {
            path: dst.clone(),
            source: e.error,
        })?;
        saved.push(dst);
    }
    backup::sync_dir(folder);
    Ok(saved)
}

/// Puts a copy of `backup_path` in place of `database` by rename: the stale
/// `-wal`/`-journal` are removed first, or SQLite would replay them onto it.
fn replace_file(
    backup_path: &Path,
    database: &Path,
    obs: &mut dyn Observer,
    interrupt: &Interrupt,
) -> std::result::Result<(), Problem> {
    let folder = db::folder_of(database);
    let name = format!("{}.restore", file_name(database));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Problem::Io { path, source }
    };
    let replaced = fs::metadata(database).ok();
    // A database that is gone comes back as SQLite creates one (0644 less the
    // umask); one that is there keeps its owner, group and mode below.
    let mode = if replaced.is_some() { 0o600 } else { 0o644 };
    let mut tmp = backup::temporary_with_mode(&folder, &name, mode).map_err(io(&folder))?;
    let tmp_path = tmp.path().to_path_buf();
    copy_into(backup_path, tmp.as_file_mut(), &tmp_path, interrupt)?;
    if let Some(meta) = &replaced {
        if let Err(e) = same_owner_and_mode(tmp.as_file(), meta) {
            obs.event(Event::Warning {
                message: &format!(
                    "could not give the restored {} the owner and mode of the file it replaces: {e}",
                    database.display()
                ),
            });
        }
    }
    // The last moment Ctrl-C may stop it: from here on the stale sidecars go
    // and the copy takes the name, with nothing in between to leave the
    // database without its journal but not yet replaced.
    interrupt.check().map_err(|_| Problem::Interrupted)?;
    for suffix in ["-wal", "-journal", "-shm"] {
        let p = with_suffix(database, suffix);
        if p.exists() {
            fs::remove_file(&p).map_err(io(&p))?;
        }
    }
    // Replacing the damaged file is the point here: rename over it.
    tmp.persist(database).map_err(|e| Problem::Io {
        path: database.to_path_buf(),
        source: e.error,
    })?;
    backup::sync_dir(&folder);
    Ok(())
}

/// Owner and group first (changing them may clear set-id bits), then mode.
#[cfg(unix)]
fn same_owner_and_mode(file: &fs::File, meta: &fs::Metadata) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let (uid, gid) = (meta.uid(), meta.gid());
    let ours = file.metadata()?;
    if (ours.uid(), ours.gid()) != (uid, gid) {
        std::os::unix::fs::fchown(file, Some(uid), Some(gid))?;
    }
    file.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777))
}

#[cfg(not(unix))]
fn same_owner_and_mode(file: &fs::File, meta: &fs::Metadata) -> std::io::Result<()> {
    file.set_permissions(meta.permissions())
}

/// Copies `src` into `out`, synced; stops between chunks on Ctrl-C.
fn copy_into(
    src: &Path,
    out: &mut fs::File,
    out_path: &Path,
    interrupt: &Interrupt,
) -> std::result::Result<(), Problem> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Problem::Io { path, source }
    };
    let mut input = fs::File::open(src).map_err(io(src))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        if interrupt.is_set() {
            return Err(Problem::Interrupted);
        }
        let n = match input.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => other.map_err(io(src))?,
        };
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).map_err(io(out_path))?;
    }
    out.sync_all().map_err(io(out_path))
}

//! Giving a verified copy its final name (SPEC "Backups": a file under a final
//! name is always a complete, verified backup). Temporary files are created
//! exclusively under random names (`temporary`: never through a file or
//! symlink someone planted), and final names are taken without ever replacing
//! a file or following a symlink (`link`/`renameat2(NOREPLACE)`).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use tempfile::NamedTempFile;

use super::manifest::{self, Manifest};
use super::temporary::temporary;
use super::Problem;

/// Writes the manifest, then gives the verified copy its final name without
/// ever replacing an existing file. The folder is synced so both names
/// survive a crash before the caller says "verified".
pub(super) fn publish(
    folder: &Path,
    stem: &str,
    mut at: DateTime<Utc>,
    reason: &str,
    mut tmp: NamedTempFile,
    manifest: &Manifest,
) -> Result<PathBuf, Problem> {
    for _ in 0..100 {
        let path = folder.join(manifest::file_name(stem, at, reason));
        let mpath = manifest::path_for(&path);
        let mut m = manifest.clone();
        m.created_at = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let bytes = serde_json::to_vec_pretty(&m).map_err(|e| Problem::Manifest {
            path: mpath.clone(),
            detail: e.to_string(),
        })?;
        match write_new(folder, &mpath, &bytes) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                at += chrono::Duration::milliseconds(1);
                continue;
            }
            Err(source) => {
                return Err(Problem::Io {
                    path: mpath,
                    source,
                })
            }
        }
        match tmp.persist_noclobber(&path) {
            Ok(_) => {
                sync_dir(folder);
                return Ok(path);
            }
            Err(e) => {
                let _ = fs::remove_file(&mpath);
                if e.error.kind() != io::ErrorKind::AlreadyExists {
                    return Err(Problem::Io {
                        path,
                        source: e.error,
                    });
                }
                tmp = e.file;
                at += chrono::Duration::milliseconds(1);
            }
        }
    }
    Err(Problem::Io {
        path: tmp.path().to_path_buf(),
        source: io::Error::new(io::ErrorKind::AlreadyExists, "no free backup name"),
    })
}

/// Writes `bytes` to `path`, which must not exist yet: through an exclusive
/// temporary file, fsynced, then linked to its name.
pub(crate) fn write_new(folder: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = temporary(folder, &name)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist_noclobber(path).map(drop).map_err(|e| e.error)
}

pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            source: PathBuf::from("/x/app.db"),
            created_at: String::new(),
            reason: "manual".into(),
            tool_version: "0".into(),
            newest_version: None,
            size: 4,
            sha256: "00".into(),
            journal_mode: "delete".into(),
            change_counter: None,
            fingerprint: None,
        }
    }

    /// Issue 9: a symlink planted at the final name (or the manifest's) is
    /// neither followed nor replaced; the backup takes the next free name.
    #[test]
    fn planted_symlinks_at_final_names_are_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"keep me").unwrap();
        let at = chrono::Utc::now();
        let name = manifest::file_name("app", at, "manual");
        let planted = dir.path().join(&name);
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        std::os::unix::fs::symlink(&victim, manifest::path_for(&planted)).unwrap();
        let mut tmp = super::super::temporary(dir.path(), &name).unwrap();
        tmp.write_all(b"data").unwrap();
        let path = publish(dir.path(), "app", at, "manual", tmp, &manifest()).unwrap();
        assert_ne!(path, planted);
        assert_eq!(fs::read(&victim).unwrap(), b"keep me");
        assert_eq!(fs::read(&path).unwrap(), b"data");
        assert!(fs::symlink_metadata(&planted)
            .unwrap()
            .file_type()
            .is_symlink());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let m = manifest::path_for(&path);
        assert_eq!(
            fs::metadata(&m).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

//! The backups folder itself (issue 9: "no one else gets in through the
//! backups folder"): created owner-only, and refused when other users can
//! write to it, since whoever can write there can delete a backup or plant one
//! (with a manifest of its own) for `restore --latest` to pick.

use std::fs;
use std::io;
use std::path::Path;

use super::Problem;

/// What is wrong enough with a folder to say so, but not to stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Concern {
    /// Writable by a group other than the user's own.
    GroupWritable { mode: u32 },
}

/// Creates `folder` (owner-only, 0700, with any missing parents) or checks
/// the one that is there: refused when others can write to it.
pub fn prepare(folder: &Path) -> Result<Option<Concern>, Problem> {
    let problem = |source| Problem::Folder {
        path: folder.to_path_buf(),
        source,
    };
    if !folder.exists() {
        create_private(folder).map_err(problem)?;
    }
    let meta = fs::metadata(folder).map_err(problem)?;
    if !meta.is_dir() {
        return Err(problem(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a folder",
        )));
    }
    check(folder, &meta)
}

/// Checks an existing folder without creating it (choosing a backup to
/// restore from it): None when it does not exist.
pub fn check_existing(folder: &Path) -> Result<Option<Concern>, Problem> {
    match fs::metadata(folder) {
        Ok(meta) if meta.is_dir() => check(folder, &meta),
        _ => Ok(None),
    }
}

/// Refuses a folder other users can write to; a group-writable one is a
/// concern only when the group is not the user's own (the private group most
/// systems give each user, where `umask 002` makes every folder group-writable).
#[cfg(unix)]
pub fn check(folder: &Path, meta: &fs::Metadata) -> Result<Option<Concern>, Problem> {
    use std::os::unix::fs::MetadataExt;
    let mode = meta.mode() & 0o7777;
    if mode & 0o002 != 0 {
        return Err(Problem::FolderOpen {
            path: folder.to_path_buf(),
            mode,
        });
    }
    let own_group = meta.gid() == rustix::process::getegid().as_raw();
    Ok((mode & 0o020 != 0 && !own_group).then_some(Concern::GroupWritable { mode }))
}

#[cfg(not(unix))]
pub fn check(_folder: &Path, _meta: &fs::Metadata) -> Result<Option<Concern>, Problem> {
    Ok(None)
}

#[cfg(unix)]
fn create_private(folder: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(folder)
}

#[cfg(not(unix))]
fn create_private(folder: &Path) -> io::Result<()> {
    fs::create_dir_all(folder)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_new_folder_is_owner_only_and_an_open_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("a/backups");
        assert_eq!(prepare(&folder).unwrap(), None);
        let mode = fs::metadata(&folder).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        fs::set_permissions(&folder, fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(matches!(
            prepare(&folder),
            Err(Problem::FolderOpen { mode: 0o1777, .. })
        ));
        fs::set_permissions(&folder, fs::Permissions::from_mode(0o750)).unwrap();
        assert_eq!(prepare(&folder).unwrap(), None);
    }
}

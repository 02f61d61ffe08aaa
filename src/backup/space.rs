//! Free space in the backups folder, checked before a copy starts (SPEC
//! "Backups": a backup that cannot fit stops the command before anything changes).

use std::io;
use std::path::Path;

use super::Problem;

pub(super) fn check_space(folder: &Path, needed: u64) -> Result<(), Problem> {
    let available = free_space(folder).map_err(|source| Problem::Folder {
        path: folder.to_path_buf(),
        source,
    })?;
    // A little headroom for the manifest and the filesystem's own bookkeeping.
    let needed = needed + needed / 100 + 64 * 1024;
    if available < needed {
        return Err(Problem::NoSpace {
            folder: folder.to_path_buf(),
            needed,
            available,
        });
    }
    Ok(())
}

#[cfg(unix)]
pub fn free_space(folder: &Path) -> io::Result<u64> {
    let st = rustix::fs::statvfs(folder)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Not known elsewhere: the copy itself then fails cleanly if the disk fills.
#[cfg(not(unix))]
pub fn free_space(_folder: &Path) -> io::Result<u64> {
    Ok(u64::MAX)
}

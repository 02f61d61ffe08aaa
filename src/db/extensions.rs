//! SQLite loadable extensions (issue 11: an app whose migrations call an
//! extension's function, e.g. sqlite-vec's `vec_length` in a CHECK). Every
//! connection backstop opens for the database, or for a copy of it, loads the
//! configured extensions, in order, before it reads or runs anything: a CHECK
//! that calls an extension's function fails `quick_check`, inserts and the
//! preflight replay alike without it.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, LoadExtensionGuard};

use crate::error::{Error, Result};

/// Loads each of `paths` into `conn`. A path that does not load is refused
/// naming it; SQLite's own message says why (no such file, wrong architecture,
/// no entry point).
pub fn load(conn: &Connection, paths: &[PathBuf]) -> Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    // Loading stays enabled only while the guard lives, so no migration can
    // call the SQL function `load_extension()` afterwards.
    // SAFETY: the guard only toggles the connection's own flag; the loaded
    // code is what the user configured, which is the point of the setting.
    let _guard = unsafe { LoadExtensionGuard::new(conn) }.map_err(|e| failed(Path::new(""), e))?;
    for path in paths {
        // SAFETY: as above; SQLite resolves the entry point from the file name
        // (`sqlite3_<name>_init`) or falls back to `sqlite3_extension_init`.
        unsafe { conn.load_extension(path, None::<&str>) }.map_err(|e| failed(path, e))?;
    }
    Ok(())
}

fn failed(path: &Path, e: rusqlite::Error) -> Error {
    Error::Extension {
        path: path.to_path_buf(),
        message: crate::apply::message(&e),
    }
}

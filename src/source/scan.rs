//! Lists the migrations folder and sorts its entries into migrations, refusals
//! and what is not a migration at all (a README, `atlas.sum`, `meta/`). What
//! looks like a migration but cannot be run is refused here, naming what
//! backstop would need (issue "No surprises"). `.py` files and files with the
//! executable bit are migrations too (issue 12; see `executable`).

use std::path::{Path, PathBuf};

use super::executable::Program;
use super::layout::{self, Layout, Named, Role};
use super::tree::Folder;
use super::{FileError, FileErrorKind};
use crate::error::{Error, Result};

/// A migration's file (or diesel folder) with what its name says.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    /// The file holding the section; `up.sql` for a diesel folder.
    pub path: PathBuf,
    pub named: Named,
    pub shape: Shape,
}

#[derive(Debug, Clone)]
pub(super) enum Shape {
    File,
    DieselDir {
        down: Option<PathBuf>,
        metadata: Option<PathBuf>,
    },
    /// An executable migration, with its file name's stem.
    Program {
        program: Program,
        stem: String,
    },
}

#[derive(Debug, Default)]
pub(super) struct Scanned {
    pub entries: Vec<Entry>,
    pub ignored: Vec<PathBuf>,
    pub errors: Vec<FileError>,
}

/// What an entry's extension says about how it would run.
#[derive(Debug, PartialEq, Eq)]
enum Body {
    Sql,
    Python,
    Executable,
    Other(String),
}

pub(super) fn scan(folder: Folder<'_>) -> Result<Scanned> {
    let dir = folder.root();
    let listing = folder.list(dir).map_err(|source| Error::MigrationsDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut out = Scanned::default();
    for entry in listing {
        let path = entry.path;
        let Some(name) = entry.name.to_str() else {
            let lossy = entry.name.to_string_lossy();
            if lossy.to_ascii_lowercase().ends_with(".sql") || layout::looks_like_migration(&lossy)
            {
                out.errors.push(error(&path, FileErrorKind::NameNotUtf8));
            } else {
                out.ignored.push(path);
            }
            continue;
        };
        // Hidden files (.gitkeep, editor swap files) are never migrations.
        if name.starts_with('.') {
            continue;
        }
        let found = if entry.is_dir {
            diesel_dir(folder, &path, name)
        } else {
            file(&path, name, entry.executable)
        };
        match found {
            None => out.ignored.push(path),
            // An executable migration runs from a real file (issue 13).
            Some(Ok(Entry {
                shape: Shape::Program { .. },
                ..
            }))
            | Some(Err(FileError {
                kind: FileErrorKind::NotRunnable { .. },
                ..
            })) if folder.is_embedded() => out
                .errors
                .push(error(&path, FileErrorKind::EmbeddedProgram)),
            Some(Ok(e)) => out.entries.push(e),
            Some(Err(e)) => out.errors.push(e),
        }
    }
    out.ignored.sort();
    Ok(out)
}

/// The one layout of the folder; a folder that mixes two is refused, naming
/// one file of each.
pub(super) fn layout_of(entries: &[Entry]) -> std::result::Result<Layout, FileError> {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let Some(first) = sorted.first() else {
        return Ok(Layout::default());
    };
    match sorted.iter().find(|e| e.named.layout != first.named.layout) {
        None => Ok(first.named.layout),
        Some(other) => Err(error(
            &other.path,
            FileErrorKind::MixedLayouts {
                this: other.named.layout,
                other: first.path.clone(),
                that: first.named.layout,
            },
        )),
    }
}

fn error(path: &Path, kind: FileErrorKind) -> FileError {
    FileError {
        path: path.to_path_buf(),
        line: None,
        kind,
    }
}

fn diesel_dir(
    folder: Folder<'_>,
    path: &Path,
    name: &str,
) -> Option<std::result::Result<Entry, FileError>> {
    let named = match layout::parse_diesel_dir(name)? {
        Ok(n) => n,
        Err(kind) => return Some(Err(error(path, kind))),
    };
    let up = path.join("up.sql");
    if !folder.is_file(&up) {
        return Some(Err(error(path, FileErrorKind::NoUpSql)));
    }
    let down = Some(path.join("down.sql")).filter(|p| folder.is_file(p));
    let metadata = Some(path.join("metadata.toml")).filter(|p| folder.is_file(p));
    Some(Ok(Entry {
        path: up,
        named,
        shape: Shape::DieselDir { down, metadata },
    }))
}

pub(super) fn file(
    path: &Path,
    name: &str,
    executable: bool,
) -> Option<std::result::Result<Entry, FileError>> {
    let (stem, role, body) = split_extension(name, executable);
    if !layout::looks_like_migration(stem) {
        // Every .sql file must be a migration: a typo is not skipped.
        return (body == Body::Sql).then(|| Err(error(path, FileErrorKind::BadName)));
    }
    let named = match layout::parse_stem(stem, role) {
        Ok(n) => n,
        Err(kind) => return Some(Err(error(path, kind))),
    };
    let program = match body {
        Body::Sql => None,
        Body::Python => Some(Program::Python),
        Body::Executable => Some(Program::Native),
        Body::Other(ext) => return Some(Err(error(path, FileErrorKind::NotRunnable { ext }))),
    };
    let shape = match program {
        None => Shape::File,
        // A module's down is `def down(` in the same file; a script has none.
        Some(_) if named.role == Role::Down => {
            return Some(Err(error(path, FileErrorKind::ExecutableDown)))
        }
        Some(program) => Shape::Program {
            program,
            stem: stem.to_owned(),
        },
    };
    Some(Ok(Entry {
        path: path.to_path_buf(),
        named,
        shape,
    }))
}

/// diesel reads only folders, so a project keeps its `.py` or executable
/// migrations beside them as files: their names are read as diesel reads a
/// folder's (`2024-03-06-170000_backfill.py` is version `20240306170000`),
/// so they order among the folders instead of mixing layouts.
pub(super) fn diesel_programs(entries: &mut [Entry]) {
    if !entries.iter().any(|e| e.named.layout == Layout::Diesel) {
        return;
    }
    for e in entries.iter_mut() {
        if let Shape::Program { stem, .. } = &e.shape {
            if let Some(Ok(named)) = layout::parse_diesel_dir(stem) {
                e.named = named;
            }
        }
    }
}

/// The stem, the section the name says it holds, and how it would run.
/// Extensions compare without regard to case: `1_a.SQL` is a migration too.
fn split_extension(name: &str, executable: bool) -> (&str, Role, Body) {
    let strip = |suffix: &str| {
        let cut = name.len().checked_sub(suffix.len())?;
        (name.is_char_boundary(cut) && name[cut..].eq_ignore_ascii_case(suffix))
            .then(|| &name[..cut])
    };
    if let Some(s) = strip(".up.sql") {
        return (s, Role::Up, Body::Sql);
    }
    if let Some(s) = strip(".down.sql") {
        return (s, Role::Down, Body::Sql);
    }
    if let Some(s) = strip(".sql") {
        return (s, Role::Single, Body::Sql);
    }
    if let Some(s) = strip(".py") {
        return (s, Role::Single, Body::Python);
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s, e),
        _ => (name, ""),
    };
    if executable {
        (stem, Role::Single, Body::Executable)
    } else {
        (stem, Role::Single, Body::Other(ext.to_owned()))
    }
}

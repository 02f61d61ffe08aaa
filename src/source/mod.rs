//! Reads the migrations folder (SPEC "Migration files", "Other layouts"): which
//! entries are migrations, the folder's one layout, duplicates, and every
//! file's sections, parsed before anything runs. Every problem is reported, not
//! just the first, and nothing that looks like a migration is skipped in silence.

mod error;
mod executable;
mod layout;
mod markers;
mod new;
pub mod placeholders;
mod scan;
mod tree;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use error::{describe, FileError, FileErrorKind};
pub use layout::Layout;
pub use new::create;
pub use tree::Embedded;
pub(crate) use tree::Folder;

use crate::error::{Error, Result};
use crate::migration::{Migration, Options, Version};
use layout::{Named, Role};
use scan::{Entry, Shape};

/// The migrations folder as read: its layout, its migrations in order, and the
/// entries that are not migrations (shown by `status -v`).
#[derive(Debug, Clone, Default)]
pub struct Source {
    pub layout: Layout,
    pub migrations: Vec<Migration>,
    pub ignored: Vec<PathBuf>,
}

/// Reads every migration in `folder` (on disk or compiled in), ordered as its
/// layout orders them.
pub fn discover(folder: Folder<'_>) -> Result<Source> {
    let mut scanned = scan::scan(folder)?;
    scan::diesel_programs(&mut scanned.entries);
    let mut errors = scanned.errors;
    let layout = match scan::layout_of(&scanned.entries) {
        Ok(layout) => layout,
        Err(mixed) => {
            errors.push(mixed);
            Layout::default()
        }
    };
    let (migrations, more) = parse_all(&scanned.entries, |path| read_text(folder, path));
    errors.extend(more);
    if errors.is_empty() {
        Ok(Source {
            layout,
            migrations,
            ignored: scanned.ignored,
        })
    } else {
        errors.sort_by(|a, b| a.path.cmp(&b.path));
        Err(Error::Source(errors))
    }
}

/// A file's text: UTF-8 without NUL bytes (SQLite would stop reading there).
fn read_text(folder: Folder<'_>, path: &Path) -> std::result::Result<String, FileError> {
    let bytes = folder.read(path).map_err(|e| FileError {
        path: path.to_path_buf(),
        line: None,
        kind: FileErrorKind::Unreadable(e.to_string()),
    })?;
    let text = String::from_utf8(bytes).map_err(|_| FileError {
        path: path.to_path_buf(),
        line: None,
        kind: FileErrorKind::NotUtf8,
    })?;
    if let Some(at) = text.find('\0') {
        return Err(FileError {
            path: path.to_path_buf(),
            line: Some(text[..at].matches('\n').count() + 1),
            kind: FileErrorKind::NulByte,
        });
    }
    Ok(text)
}

/// One migration's files, grouped by version before they are read.
struct Group<'e> {
    named: &'e Named,
    up: &'e Entry,
    down: Option<&'e Entry>,
}

/// Groups entries by version (duplicates are errors naming both files and the
/// rename to make), then reads and parses every group; `read` supplies the
/// text (a seam for tests).
fn parse_all(
    entries: &[Entry],
    read: impl Fn(&Path) -> std::result::Result<String, FileError> + Sync,
) -> (Vec<Migration>, Vec<FileError>) {
    let mut errors = Vec::new();
    let mut ups: BTreeMap<&Version, Group<'_>> = BTreeMap::new();
    let mut downs: BTreeMap<&Version, &Entry> = BTreeMap::new();
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    for e in sorted {
        let v = &e.named.version;
        if e.named.role == Role::Down {
            if let Some(other) = downs.insert(v, e) {
                errors.push(error::duplicate(e, &other.path, entries));
            }
        } else if let Some(g) = ups.get(v) {
            errors.push(error::duplicate(e, &g.up.path, entries));
        } else {
            ups.insert(
                v,
                Group {
                    named: &e.named,
                    up: e,
                    down: None,
                },
            );
        }
    }
    for (v, down) in downs {
        match ups.get_mut(v) {
            // A single file with markers has its own down section.
            Some(g) if g.named.role == Role::Single && g.named.layout != Layout::Flyway => {
                errors.push(error::duplicate(down, &g.up.path, entries))
            }
            Some(g) => g.down = Some(down),
            None => errors.push(FileError {
                path: down.path.clone(),
                line: None,
                kind: FileErrorKind::DownFileWithoutUp,
            }),
        }
    }
    let groups: Vec<Group<'_>> = ups.into_values().collect();
    let results = on_all_cores(&groups, |g| parse_group(g, &read));
    let mut migrations = Vec::new();
    for r in results {
        match r {
            Ok(m) => migrations.push(m),
            Err(e) => errors.push(e),
        }
    }
    (migrations, errors)
}

fn parse_group(
    g: &Group<'_>,
    read: &impl Fn(&Path) -> std::result::Result<String, FileError>,
) -> std::result::Result<Migration, FileError> {
    if let Shape::Program { program, .. } = &g.up.shape {
        if let Some(down) = g.down {
            return Err(FileError {
                path: down.path.clone(),
                line: None,
                kind: FileErrorKind::ExecutableDown,
            });
        }
        return executable::read(&g.up.path, g.named, *program, read);
    }
    let pair =
        |entry: &Entry| read(&entry.path).and_then(|t| markers::parse_pair_file(&entry.path, t));
    let (mut up, mut down) = match (&g.up.shape, g.named.layout) {
        (Shape::File, Layout::Numbered | Layout::Dated) if g.named.role == Role::Single => {
            read(&g.up.path).and_then(|t| markers::parse_single(&g.up.path, t))?
        }
        _ => (pair(g.up)?, g.down.map(pair).transpose()?),
    };
    if let Shape::DieselDir { down: d, metadata } = &g.up.shape {
        if let Some(d) = d {
            down = Some(read(d).and_then(|t| markers::parse_pair_file(d, t))?);
        }
        if let Some(meta) = metadata {
            let options = diesel_options(meta, &read)?;
            up.options.transaction = options.transaction;
            if let Some(d) = &mut down {
                d.options.transaction = options.transaction;
            }
        }
    }
    Ok(Migration::new(
        g.named.version.clone(),
        g.named.name.clone(),
        up,
        down,
    ))
}

/// diesel's `metadata.toml`: `run_in_transaction = false` is `transaction:false`.
/// Other keys are diesel's own and are left alone, as diesel does.
fn diesel_options(
    path: &Path,
    read: &impl Fn(&Path) -> std::result::Result<String, FileError>,
) -> std::result::Result<Options, FileError> {
    #[derive(serde::Deserialize)]
    struct Metadata {
        run_in_transaction: Option<bool>,
    }
    let text = read(path)?;
    let meta: Metadata = toml::from_str(&text).map_err(|e| FileError {
        path: path.to_path_buf(),
        line: None,
        kind: FileErrorKind::BadMetadata(e.message().to_owned()),
    })?;
    Ok(Options {
        transaction: meta.run_in_transaction.unwrap_or(true),
        foreign_keys: false,
    })
}

/// Reading, parsing and hashing each file is independent: split the work over
/// the cores (it is most of what `status` does on a large project).
fn on_all_cores<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let per_thread = items.len().div_ceil(threads).max(64);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(per_thread)
            .map(|chunk| scope.spawn(|| chunk.iter().map(&f).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

#[cfg(test)]
mod tests;

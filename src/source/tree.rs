//! Where migrations are read from: a folder on disk, or a folder compiled into
//! the program with [`embed_migrations!`](crate::embed_migrations) (issue 13).
//! The scan lists, tests and reads entries only through [`Folder`], so both
//! give the same migrations, checksums, states and refusals: one code path.
//!
//! What an embedded folder cannot carry is the executable bit (include_dir
//! keeps bytes, not modes), and an executable migration needs a real file to
//! run; so executable migrations are refused there, naming the file.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use include_dir::{Dir, DirEntry};

/// A migrations folder compiled into the program by
/// [`embed_migrations!`](crate::embed_migrations).
///
/// Its files are read exactly as files on disk are: the same names, markers,
/// checksums and refusals, so `backstop status` run on the folder agrees with
/// what the program sees. Executable migrations (`.py`, scripts) cannot be
/// embedded and are refused.
#[derive(Clone, Copy)]
pub struct Embedded {
    dir: &'static Dir<'static>,
    /// The path given to the macro, e.g. `$CARGO_MANIFEST_DIR/migrations`.
    given: &'static str,
}

impl Embedded {
    /// Used by [`embed_migrations!`](crate::embed_migrations); not part of the API.
    #[doc(hidden)]
    pub const fn __new(dir: &'static Dir<'static>, given: &'static str) -> Embedded {
        Embedded { dir, given }
    }

    /// The folder's name in messages: the path given to the macro, without a
    /// leading `$CARGO_MANIFEST_DIR/` (so `migrations/0002_x.sql:3`, as
    /// `backstop` run in the crate's folder would say).
    pub fn root(&self) -> &'static Path {
        let shown = self
            .given
            .strip_prefix("$CARGO_MANIFEST_DIR")
            .map(|rest| rest.trim_start_matches(['/', '\\']))
            .unwrap_or(self.given);
        Path::new(if shown.is_empty() { "." } else { shown })
    }
}

impl fmt::Debug for Embedded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Embedded")
            .field("root", &self.root())
            .field("entries", &self.dir.entries().len())
            .finish()
    }
}

/// Two handles on the same compiled-in folder.
impl PartialEq for Embedded {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.dir, other.dir) && self.given == other.given
    }
}

impl Eq for Embedded {}

/// Embeds a migrations folder in the program at compile time; evaluates to a
/// [`Migrations`](crate::Migrations) for [`Options`](crate::Options).
///
/// The path is a string literal; `$CARGO_MANIFEST_DIR` (and other `$VAR`s of
/// the build environment) are expanded, as `include_dir!` does. Without an
/// argument it is `"$CARGO_MANIFEST_DIR/migrations"`.
///
/// ```
/// let migrations = backstop::embed_migrations!("$CARGO_MANIFEST_DIR/migrations");
/// # let dir = tempfile::tempdir().unwrap();
/// let options = backstop::Options::new(dir.path().join("app.db"), migrations);
/// let status = backstop::status(&options).unwrap();
/// assert!(status.migrations.iter().all(|m| m.state == backstop::State::Pending));
/// ```
///
/// Cargo rebuilds the program when an embedded file changes, but not when a
/// file is added or removed: a `build.rs` that prints
/// `cargo:rerun-if-changed=migrations` makes it notice those too.
#[macro_export]
macro_rules! embed_migrations {
    () => {
        $crate::embed_migrations!("$CARGO_MANIFEST_DIR/migrations")
    };
    // `tt`, not `literal`: a `literal` fragment reaches include_dir's proc
    // macro wrapped in an invisible group, which it does not accept.
    ($path:tt) => {{
        // include_dir's expansion names `include_dir::…`: bring that name in
        // scope here, so the application need not depend on it.
        use $crate::__private::include_dir;
        static DIR: include_dir::Dir<'static> = include_dir::include_dir!($path);
        $crate::Migrations::Embedded($crate::Embedded::__new(&DIR, $path))
    }};
}

/// The migrations folder a command reads.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Folder<'a> {
    Disk(&'a Path),
    Embedded(Embedded),
}

/// One entry of a listed folder.
#[derive(Debug)]
pub(super) struct Listed {
    pub path: PathBuf,
    pub name: OsString,
    pub is_dir: bool,
    /// A file with an executable bit (never in an embedded folder).
    pub executable: bool,
}

impl Folder<'_> {
    /// The folder as messages name it; entries' paths start with it.
    pub(crate) fn root(&self) -> &Path {
        match self {
            Folder::Disk(p) => p,
            Folder::Embedded(e) => e.root(),
        }
    }

    pub(super) fn is_embedded(&self) -> bool {
        matches!(self, Folder::Embedded(_))
    }

    /// The entries directly in `dir` (the root or a diesel folder).
    pub(super) fn list(&self, dir: &Path) -> io::Result<Vec<Listed>> {
        match self {
            Folder::Disk(_) => std::fs::read_dir(dir)?
                .map(|entry| {
                    let entry = entry?;
                    Ok(Listed {
                        path: entry.path(),
                        name: entry.file_name(),
                        is_dir: entry.file_type().map(|t| t.is_dir()).unwrap_or(false),
                        executable: executable(&entry),
                    })
                })
                .collect(),
            Folder::Embedded(e) => {
                let entries = match self.relative(dir) {
                    Some(rel) if rel.as_os_str().is_empty() => e.dir.entries(),
                    Some(rel) => e.dir.get_dir(rel).ok_or_else(not_found)?.entries(),
                    None => return Err(not_found()),
                };
                Ok(entries
                    .iter()
                    .map(|entry| {
                        let path = entry.path();
                        Listed {
                            path: self.root().join(path),
                            name: path.file_name().unwrap_or_default().to_owned(),
                            is_dir: matches!(entry, DirEntry::Dir(_)),
                            executable: false,
                        }
                    })
                    .collect())
            }
        }
    }

    pub(super) fn is_file(&self, path: &Path) -> bool {
        match self {
            Folder::Disk(_) => path.is_file(),
            Folder::Embedded(e) => self
                .relative(path)
                .is_some_and(|rel| e.dir.get_file(rel).is_some()),
        }
    }

    pub(super) fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        match self {
            Folder::Disk(_) => std::fs::read(path),
            Folder::Embedded(e) => self
                .relative(path)
                .and_then(|rel| e.dir.get_file(rel))
                .map(|f| f.contents().to_vec())
                .ok_or_else(not_found),
        }
    }

    /// `path` inside an embedded folder, as include_dir names it.
    fn relative<'p>(&self, path: &'p Path) -> Option<&'p Path> {
        path.strip_prefix(self.root()).ok()
    }
}

fn not_found() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "not in the embedded migrations")
}

#[cfg(unix)]
fn executable(entry: &std::fs::DirEntry) -> bool {
    use std::os::unix::fs::PermissionsExt;
    entry
        .metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Elsewhere there is no executable bit: such files are refused by extension.
#[cfg(not(unix))]
fn executable(_entry: &std::fs::DirEntry) -> bool {
    false
}

#[cfg(test)]
mod tests {
    //! The same folders read from disk and compiled in: equal migrations
    //! (versions, sections, options, checksums), equal ignored entries, equal
    //! refusals. Unit tests run in the package's folder, so the disk paths and
    //! the embedded root name the files alike.
    use super::super::{discover, Source};
    use super::*;

    static NUMBERED: Dir<'static> =
        include_dir::include_dir!("$CARGO_MANIFEST_DIR/tests/fixtures/embedded/numbered");
    static DIESEL: Dir<'static> =
        include_dir::include_dir!("$CARGO_MANIFEST_DIR/tests/fixtures/embedded/diesel");
    static REFUSED: Dir<'static> =
        include_dir::include_dir!("$CARGO_MANIFEST_DIR/tests/fixtures/embedded/refused");
    static PROGRAMS: Dir<'static> =
        include_dir::include_dir!("$CARGO_MANIFEST_DIR/tests/fixtures/embedded/programs");

    fn both(dir: &'static Dir<'static>, name: &'static str) -> [crate::error::Result<Source>; 2] {
        let given: &'static str = Box::leak(
            format!("$CARGO_MANIFEST_DIR/tests/fixtures/embedded/{name}").into_boxed_str(),
        );
        let embedded = Embedded::__new(dir, given);
        assert_eq!(
            embedded.root(),
            Path::new("tests/fixtures/embedded").join(name)
        );
        [
            discover(Folder::Disk(embedded.root())),
            discover(Folder::Embedded(embedded)),
        ]
    }

    fn same_source(dir: &'static Dir<'static>, name: &'static str) -> Source {
        let [disk, embedded] = both(dir, name);
        let (disk, embedded) = (disk.unwrap(), embedded.unwrap());
        assert_eq!(disk.layout, embedded.layout);
        assert_eq!(disk.migrations, embedded.migrations);
        assert_eq!(disk.ignored, embedded.ignored);
        disk
    }

    #[test]
    fn an_embedded_folder_reads_as_the_same_folder_on_disk() {
        let s = same_source(&NUMBERED, "numbered");
        let ids: Vec<&str> = s.migrations.iter().map(|m| m.version.id()).collect();
        assert_eq!(ids, ["1", "2", "9", "10"]);
        // The BOM and CRLF file: normalized the same way, so the same checksum.
        let crlf = &s.migrations[3];
        assert!(!crlf.up.options.transaction);
        assert_eq!(
            crlf.checksum,
            crate::checksum::Checksum::of("CREATE INDEX book_author ON book(author_id);\n")
        );
        assert!(
            s.migrations[1].down.is_some(),
            "the .down.sql pair is found"
        );
        assert_eq!(s.ignored.len(), 1, "README.md is listed, .gitkeep is not");

        let d = same_source(&DIESEL, "diesel");
        assert_eq!(d.migrations.len(), 2);
        assert!(d.migrations[0].down.is_some());
        assert!(
            !d.migrations[1].up.options.transaction,
            "metadata.toml is read"
        );
    }

    #[test]
    fn an_embedded_folder_is_refused_as_the_same_folder_on_disk() {
        let [disk, embedded] = both(&REFUSED, "refused");
        let (disk, embedded) = (disk.unwrap_err(), embedded.unwrap_err());
        assert_eq!(disk.to_string(), embedded.to_string());
        let text = disk.to_string();
        for file in [
            "1_b.sql",
            "notes.sql",
            "2_latin1.sql",
            "3_down_only.sql",
            "4_orphan",
        ] {
            assert!(text.contains(file), "{file} not named in: {text}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn executable_migrations_cannot_be_embedded() {
        let [disk, embedded] = both(&PROGRAMS, "programs");
        assert_eq!(disk.unwrap().migrations.len(), 3, "on disk they run");
        let crate::error::Error::Source(errors) = embedded.unwrap_err() else {
            panic!("not a file refusal")
        };
        let refused: Vec<_> = errors
            .iter()
            .map(|e| (e.path.file_name().unwrap().to_owned(), e.kind.clone()))
            .collect();
        assert_eq!(
            refused,
            [
                (
                    "2_module.py".into(),
                    super::super::FileErrorKind::EmbeddedProgram
                ),
                (
                    "3_script.sh".into(),
                    super::super::FileErrorKind::EmbeddedProgram
                ),
            ]
        );
    }

    #[test]
    fn the_root_drops_the_manifest_dir_variable() {
        static EMPTY: Dir<'static> = Dir::new("", &[]);
        assert_eq!(
            Embedded::__new(&EMPTY, "$CARGO_MANIFEST_DIR/db/migrations").root(),
            Path::new("db/migrations")
        );
        assert_eq!(
            Embedded::__new(&EMPTY, "$CARGO_MANIFEST_DIR").root(),
            Path::new(".")
        );
        assert_eq!(
            Embedded::__new(&EMPTY, "/abs/m").root(),
            Path::new("/abs/m")
        );
    }
}

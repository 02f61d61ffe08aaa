//! Reads the migrations folder: file names, section markers (dbmate, goose,
//! sqlx pairs), duplicates and numeric order. Every file is parsed before
//! anything runs, and every problem is reported, not just the first.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::checksum::normalize;
use crate::error::{Error, Result};
use crate::migration::{Migration, Options, Section, Version};

/// A problem with one migration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub kind: FileErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileErrorKind {
    BadName,
    VersionTooLarge,
    NotUtf8,
    NulByte,
    Unreadable(String),
    UnknownOption(String),
    UnknownMarker(String),
    DuplicateMarker,
    DownWithoutUp,
    TextBeforeUp,
    MixedMarkers,
    ForeignDownMarker,
    DownFileWithoutUp,
    DuplicateVersion { other: PathBuf },
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        use FileErrorKind::*;
        match &self.kind {
            BadName => {
                f.write_str("name does not parse as <version>_<name>.sql (version: digits only)")
            }
            VersionTooLarge => f.write_str("version does not fit in 64 bits"),
            NotUtf8 => f.write_str("text is not valid UTF-8"),
            NulByte => f.write_str("text contains a NUL byte (SQLite would stop reading there)"),
            Unreadable(e) => write!(f, "cannot be read: {e}"),
            UnknownOption(o) => write!(
                f,
                "unknown marker option `{o}` (known: transaction:true|false, foreign_keys:on|off)"
            ),
            UnknownMarker(m) => write!(f, "unknown marker `{m}`"),
            DuplicateMarker => f.write_str("section marker appears twice"),
            DownWithoutUp => f.write_str("has a down marker but no up marker"),
            TextBeforeUp => f.write_str("statements before the up marker"),
            MixedMarkers => f.write_str("mixes dbmate and goose markers"),
            ForeignDownMarker => {
                f.write_str("contains a down marker, so it cannot be run as all-up")
            }
            DownFileWithoutUp => f.write_str("down file has no matching .up.sql file"),
            DuplicateVersion { other } => {
                write!(f, "same version as {}", other.display())
            }
        }
    }
}

/// One message for all the problems found, one per line.
pub fn describe(errors: &[FileError]) -> String {
    let mut lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    if lines.len() > 1 {
        lines.insert(
            0,
            format!("{} problems with migration files:", errors.len()),
        );
        lines.join("\n  ")
    } else {
        lines.pop().unwrap_or_default()
    }
}

/// Reads every migration in `dir`, ordered by version.
pub fn discover(dir: &Path) -> Result<Vec<Migration>> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::MigrationsDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| Error::MigrationsDir {
            path: dir.to_path_buf(),
            source,
        })?;
        // Folders and non-.sql files (README, .gitkeep) are not migrations.
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        let name = entry.file_name();
        let Some(name) = name.to_str().map(str::to_owned) else {
            if Path::new(&name).extension().is_some_and(|e| e == "sql") {
                names.push(Err(entry.path()));
            }
            continue;
        };
        // `1_a.SQL` is a migration too: never skipped because of its case.
        if strip_suffix_ci(&name, ".sql").is_some() && !name.starts_with('.') {
            names.push(Ok(name));
        }
    }
    let mut errors = Vec::new();
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for n in names {
        match n {
            Ok(n) => files.push((n.clone(), dir.join(n))),
            Err(path) => errors.push(FileError {
                path,
                line: None,
                kind: FileErrorKind::BadName,
            }),
        }
    }
    files.sort();
    let read = |path: &Path| -> std::result::Result<String, FileError> {
        let bytes = std::fs::read(path).map_err(|e| FileError {
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
    };
    let (migrations, mut more) = parse_all(&files, read);
    errors.append(&mut more);
    if errors.is_empty() {
        Ok(migrations)
    } else {
        errors.sort_by(|a, b| a.path.cmp(&b.path));
        Err(Error::Source(errors))
    }
}

/// Creates `<dir>/<UTC timestamp>_<slug>.sql` with up/down markers (`new`).
pub fn create(dir: &Path, name: &str, now: chrono::DateTime<chrono::Utc>) -> Result<PathBuf> {
    let slug: String = name
        .trim()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect::<String>()
        .split('_')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("_");
    if slug.is_empty() {
        return Err(Error::Setting {
            setting: "NAME",
            value: name.to_owned(),
            expected: "a name with letters or digits, e.g. add_users",
        });
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    // Two `new`s in the same second must not share a version (every command
    // would then refuse the folder): take the next free second instead.
    let used: std::collections::BTreeSet<u64> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.split_once('_')
                .and_then(|(v, _)| v.parse::<u64>().ok())
        })
        .collect();
    let mut at = now;
    let mut version = at.format("%Y%m%d%H%M%S").to_string();
    while version.parse::<u64>().is_ok_and(|v| used.contains(&v)) {
        at += chrono::Duration::seconds(1);
        version = at.format("%Y%m%d%H%M%S").to_string();
    }
    let path = dir.join(format!("{version}_{slug}.sql"));
    let text = "-- migrate:up\n\n\n-- migrate:down\n\n";
    // create_new: never overwrite a migration written in the same second.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
        .map_err(|e| Error::io(&path, e))?;
    Ok(path)
}

/// How a file name parses.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Single,
    Up,
    Down,
}

fn parse_name(file: &str) -> std::result::Result<(Version, String, Kind), FileErrorKind> {
    let (stem, kind) = if let Some(s) = strip_suffix_ci(file, ".up.sql") {
        (s, Kind::Up)
    } else if let Some(s) = strip_suffix_ci(file, ".down.sql") {
        (s, Kind::Down)
    } else if let Some(s) = strip_suffix_ci(file, ".sql") {
        (s, Kind::Single)
    } else {
        return Err(FileErrorKind::BadName);
    };
    let (digits, name) = stem.split_once('_').ok_or(FileErrorKind::BadName)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || name.is_empty() {
        return Err(FileErrorKind::BadName);
    }
    let version = digits
        .parse::<Version>()
        .map_err(|_| FileErrorKind::VersionTooLarge)?;
    Ok((version, name.to_owned(), kind))
}

/// `s` without `suffix`, compared without regard to ASCII case.
fn strip_suffix_ci<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = s.len().checked_sub(suffix.len())?;
    (s.is_char_boundary(cut) && s[cut..].eq_ignore_ascii_case(suffix)).then(|| &s[..cut])
}

/// Parses named files; `read` supplies their text (a seam for tests).
fn parse_all(
    files: &[(String, PathBuf)],
    read: impl Fn(&Path) -> std::result::Result<String, FileError> + Sync,
) -> (Vec<Migration>, Vec<FileError>) {
    let mut errors = Vec::new();
    // version -> (name, up file, down file)
    let mut ups: BTreeMap<Version, (String, PathBuf, Kind)> = BTreeMap::new();
    let mut downs: BTreeMap<Version, PathBuf> = BTreeMap::new();
    for (file, path) in files {
        match parse_name(file) {
            Err(kind) => errors.push(FileError {
                path: path.clone(),
                line: None,
                kind,
            }),
            Ok((version, name, Kind::Down)) => {
                if let Some(other) = downs.insert(version, path.clone()) {
                    errors.push(duplicate(path, &other));
                }
                let _ = name;
            }
            Ok((version, name, kind)) => {
                if let Some((_, other, _)) = ups.get(&version) {
                    errors.push(duplicate(path, other));
                } else {
                    ups.insert(version, (name, path.clone(), kind));
                }
            }
        }
    }
    for (version, path) in &downs {
        match ups.get(version) {
            Some((_, _, Kind::Up)) => {}
            Some((_, other, Kind::Single)) => errors.push(duplicate(path, other)),
            _ => errors.push(FileError {
                path: path.clone(),
                line: None,
                kind: FileErrorKind::DownFileWithoutUp,
            }),
        }
    }
    // Reading, parsing and hashing each file is independent: split the work
    // over the cores (it is most of what `status` does on a large project).
    let ups: Vec<(Version, (String, PathBuf, Kind))> = ups.into_iter().collect();
    let one = |(version, (name, path, kind)): &(Version, (String, PathBuf, Kind))| {
        read(path)
            .and_then(|text| match kind {
                Kind::Single => parse_single(path, &text),
                _ => {
                    let up = parse_pair_file(path, &text)?;
                    let down = match downs.get(version) {
                        Some(dp) => Some(read(dp).and_then(|t| parse_pair_file(dp, &t))?),
                        None => None,
                    };
                    Ok((up, down))
                }
            })
            .map(|(up, down)| Migration::new(*version, name.clone(), up, down))
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let per_thread = ups.len().div_ceil(threads).max(64);
    let results: Vec<std::result::Result<Migration, FileError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = ups
            .chunks(per_thread)
            .map(|chunk| scope.spawn(|| chunk.iter().map(one).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut migrations = Vec::new();
    for r in results {
        match r {
            Ok(m) => migrations.push(m),
            Err(e) => errors.push(e),
        }
    }
    (migrations, errors)
}

fn duplicate(path: &Path, other: &Path) -> FileError {
    FileError {
        path: path.to_path_buf(),
        line: None,
        kind: FileErrorKind::DuplicateVersion {
            other: other.to_path_buf(),
        },
    }
}

/// A recognised marker line.
#[derive(Debug, PartialEq, Eq)]
enum Marker {
    Up(Options),
    Down(Options),
    /// goose's `NO TRANSACTION`, which applies to the whole file.
    NoTransaction,
    /// goose's `StatementBegin`/`StatementEnd`: not needed, SQLite splits statements.
    Ignored,
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Dialect {
    Dbmate,
    Goose,
}

/// Recognises a marker line; `Ok(None)` for ordinary lines.
fn marker(line: &str) -> std::result::Result<Option<(Dialect, Marker)>, FileErrorKind> {
    let Some(rest) = line.trim_end().strip_prefix("--") else {
        return Ok(None);
    };
    let rest = rest.trim_start();
    if let Some(after) = rest.strip_prefix("migrate:") {
        let mut words = after.split_whitespace();
        let which = words.next().unwrap_or("");
        let mut options = Options::default();
        for w in words {
            match w {
                "transaction:false" => options.transaction = false,
                "transaction:true" => options.transaction = true,
                "foreign_keys:on" => options.foreign_keys = true,
                "foreign_keys:off" => options.foreign_keys = false,
                other => return Err(FileErrorKind::UnknownOption(other.to_owned())),
            }
        }
        return match which {
            "up" => Ok(Some((Dialect::Dbmate, Marker::Up(options)))),
            "down" => Ok(Some((Dialect::Dbmate, Marker::Down(options)))),
            _ => Err(FileErrorKind::UnknownMarker(format!("migrate:{which}"))),
        };
    }
    if let Some(after) = rest.strip_prefix("+goose") {
        let words: Vec<String> = after
            .split_whitespace()
            .map(|w| w.to_ascii_lowercase())
            .collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        return match words.as_slice() {
            ["up"] => Ok(Some((Dialect::Goose, Marker::Up(Options::default())))),
            ["down"] => Ok(Some((Dialect::Goose, Marker::Down(Options::default())))),
            ["no", "transaction"] => Ok(Some((Dialect::Goose, Marker::NoTransaction))),
            ["statementbegin"] | ["statementend"] => Ok(Some((Dialect::Goose, Marker::Ignored))),
            _ => Err(FileErrorKind::UnknownMarker(format!("+goose{after}"))),
        };
    }
    Ok(None)
}

/// A `<version>_<name>.sql` file: dbmate or goose markers, or none (all up).
fn parse_single(
    path: &Path,
    raw: &str,
) -> std::result::Result<(Section, Option<Section>), FileError> {
    let text = normalize(raw);
    let err = |line: usize, kind| FileError {
        path: path.to_path_buf(),
        line: Some(line),
        kind,
    };
    let mut dialect: Option<Dialect> = None;
    let mut up: Option<(usize, usize, Options)> = None; // (byte start, first line, options)
    let mut down: Option<(usize, usize, Options)> = None;
    let mut up_end = None;
    let mut no_transaction = false;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let n = i + 1;
        let start = offset;
        offset += line.len();
        let Some((d, m)) = marker(line).map_err(|k| err(n, k))? else {
            continue;
        };
        if dialect.is_some_and(|x| x != d) {
            return Err(err(n, FileErrorKind::MixedMarkers));
        }
        dialect = Some(d);
        match m {
            Marker::Up(o) => {
                if up.is_some() {
                    return Err(err(n, FileErrorKind::DuplicateMarker));
                }
                if down.is_some() {
                    // An up section after the down section: unusual, but unambiguous
                    // only if we refuse it.
                    return Err(err(n, FileErrorKind::DuplicateMarker));
                }
                if !only_comments(&text[..start]) {
                    return Err(err(n, FileErrorKind::TextBeforeUp));
                }
                up = Some((offset, n + 1, o));
            }
            Marker::Down(o) => {
                if down.is_some() {
                    return Err(err(n, FileErrorKind::DuplicateMarker));
                }
                if up.is_none() {
                    return Err(err(n, FileErrorKind::DownWithoutUp));
                }
                up_end = Some(start);
                down = Some((offset, n + 1, o));
            }
            Marker::NoTransaction => no_transaction = true,
            Marker::Ignored => {}
        }
    }
    let section = |start: usize, end: usize, first_line: usize, mut options: Options| {
        if no_transaction {
            options.transaction = false;
        }
        Section {
            path: path.to_path_buf(),
            text: text[start..end].to_owned(),
            first_line,
            options,
        }
    };
    match up {
        // No markers at all: the whole file is up, with sqlx's first-line option.
        None => Ok((plain_section(path, &text), None)),
        Some((start, line, o)) => {
            let up = section(start, up_end.unwrap_or(text.len()), line, o);
            let down = down.map(|(s, l, o)| section(s, text.len(), l, o));
            Ok((up, down))
        }
    }
}

/// One file of a sqlx/golang-migrate pair, or a file without markers.
fn parse_pair_file(path: &Path, raw: &str) -> std::result::Result<Section, FileError> {
    let text = normalize(raw);
    for (i, line) in text.lines().enumerate() {
        // A pair file never holds markers: a down marker here would run as up.
        if let Some((_, m)) = marker(line).map_err(|kind| FileError {
            path: path.to_path_buf(),
            line: Some(i + 1),
            kind,
        })? {
            let kind = match m {
                Marker::Down(_) => FileErrorKind::ForeignDownMarker,
                _ => FileErrorKind::UnknownMarker(line.trim().to_owned()),
            };
            return Err(FileError {
                path: path.to_path_buf(),
                line: Some(i + 1),
                kind,
            });
        }
    }
    Ok(plain_section(path, &text))
}

fn plain_section(path: &Path, text: &str) -> Section {
    let first = text.lines().next().unwrap_or("");
    let transaction = first.trim() != "-- no-transaction";
    Section {
        path: path.to_path_buf(),
        text: text.to_owned(),
        first_line: 1,
        options: Options {
            transaction,
            foreign_keys: false,
        },
    }
}

/// True if `text` holds only blank lines and `--` comment lines.
fn only_comments(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with("--")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(files: &[(&str, &str)]) -> (Vec<Migration>, Vec<FileError>) {
        let owned: Vec<(String, PathBuf)> = files
            .iter()
            .map(|(n, _)| (n.to_string(), PathBuf::from(n)))
            .collect();
        let map: BTreeMap<PathBuf, String> = files
            .iter()
            .map(|(n, t)| (PathBuf::from(n), t.to_string()))
            .collect();
        parse_all(&owned, |p| Ok(map[p].clone()))
    }

    fn one(name: &str, text: &str) -> Migration {
        let (m, e) = parse(&[(name, text)]);
        assert!(e.is_empty(), "{e:?}");
        m.into_iter().next().unwrap()
    }

    fn fails(name: &str, text: &str) -> FileErrorKind {
        let (_, e) = parse(&[(name, text)]);
        assert_eq!(e.len(), 1, "{e:?}");
        e[0].kind.clone()
    }

    #[test]
    fn names() {
        assert_eq!(parse_name("001_init.sql").unwrap().0, Version(1));
        assert_eq!(parse_name("20240101120000_add_x.sql").unwrap().1, "add_x");
        assert_eq!(parse_name("3_a_b.up.sql").unwrap().2, Kind::Up);
        assert_eq!(parse_name("3_a_b.down.sql").unwrap().2, Kind::Down);
        assert_eq!(parse_name("4_Upper.SQL").unwrap().1, "Upper");
        assert_eq!(parse_name("5_x.Up.Sql").unwrap().2, Kind::Up);
        for bad in [
            "init.sql", "_x.sql", "1.sql", "1_.sql", "1a_x.sql", "v1_x.sql", "+1_x.sql",
        ] {
            assert_eq!(
                parse_name(bad).unwrap_err(),
                FileErrorKind::BadName,
                "{bad}"
            );
        }
        assert_eq!(
            parse_name("99999999999999999999_x.sql").unwrap_err(),
            FileErrorKind::VersionTooLarge
        );
    }

    #[test]
    fn dbmate_sections_and_lines() {
        let m = one(
            "1_a.sql",
            "-- comment\n-- migrate:up\nCREATE TABLE a(x);\n-- migrate:down\nDROP TABLE a;\n",
        );
        assert_eq!(m.up.text, "CREATE TABLE a(x);\n");
        assert_eq!(m.up.first_line, 3);
        let down = m.down.unwrap();
        assert_eq!(down.text, "DROP TABLE a;\n");
        assert_eq!(down.first_line, 5);
        assert!(m.up.options.transaction);
    }

    #[test]
    fn dbmate_options() {
        let m = one(
            "1_a.sql",
            "-- migrate:up transaction:false foreign_keys:on\nVACUUM;\n",
        );
        assert!(!m.up.options.transaction);
        assert!(m.up.options.foreign_keys);
        assert_eq!(
            fails("1_a.sql", "-- migrate:up transaction:maybe\n"),
            FileErrorKind::UnknownOption("transaction:maybe".into())
        );
        assert!(matches!(
            fails("1_a.sql", "-- migrate:sideways\n"),
            FileErrorKind::UnknownMarker(_)
        ));
    }

    #[test]
    fn goose_markers() {
        let m = one(
            "1_a.sql",
            "-- +goose NO TRANSACTION\n-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n-- +goose StatementEnd\n-- +goose Down\nSELECT 2;\n",
        );
        assert!(!m.up.options.transaction);
        assert!(m.up.text.contains("SELECT 1;"));
        assert_eq!(m.down.unwrap().text, "SELECT 2;\n");
    }

    #[test]
    fn plain_file_is_all_up() {
        let m = one("1_a.sql", "CREATE TABLE a(x);\n");
        assert_eq!(m.up.text, "CREATE TABLE a(x);\n");
        assert!(m.down.is_none());
        assert!(m.up.options.transaction);
        let m = one("1_a.sql", "-- no-transaction\nVACUUM;\n");
        assert!(!m.up.options.transaction);
    }

    #[test]
    fn sqlx_pairs() {
        let (m, e) = parse(&[
            ("1_a.up.sql", "CREATE TABLE a(x);"),
            ("1_a.down.sql", "DROP TABLE a;"),
        ]);
        assert!(e.is_empty());
        assert_eq!(m[0].down.as_ref().unwrap().text, "DROP TABLE a;");
        assert_eq!(
            m[0].down.as_ref().unwrap().path,
            PathBuf::from("1_a.down.sql")
        );
        let (_, e) = parse(&[("1_a.down.sql", "DROP TABLE a;")]);
        assert_eq!(e[0].kind, FileErrorKind::DownFileWithoutUp);
    }

    #[test]
    fn foreign_down_markers_are_never_run_as_up() {
        assert_eq!(
            fails(
                "1_a.up.sql",
                "CREATE TABLE a(x);\n-- migrate:down\nDROP TABLE a;"
            ),
            FileErrorKind::ForeignDownMarker
        );
        assert_eq!(
            fails(
                "1_a.up.sql",
                "CREATE TABLE a(x);\n-- +goose Down\nDROP TABLE a;"
            ),
            FileErrorKind::ForeignDownMarker
        );
        assert_eq!(
            fails("1_a.sql", "-- migrate:down\nDROP TABLE a;"),
            FileErrorKind::DownWithoutUp
        );
        assert_eq!(
            fails("1_a.sql", "SELECT 1;\n-- +goose Down\n"),
            FileErrorKind::DownWithoutUp
        );
        assert_eq!(
            fails("1_a.sql", "-- migrate:up\nSELECT 1;\n-- +goose Down\n"),
            FileErrorKind::MixedMarkers
        );
        assert_eq!(
            fails("1_a.sql", "SELECT 1;\n-- migrate:up\nSELECT 2;"),
            FileErrorKind::TextBeforeUp
        );
    }

    #[test]
    fn duplicates_name_both_files() {
        let (_, e) = parse(&[("1_a.sql", ""), ("01_b.sql", "")]);
        assert_eq!(e.len(), 1);
        let msg = e[0].to_string();
        assert!(msg.contains("1_a.sql") && msg.contains("01_b.sql"), "{msg}");
    }

    #[test]
    fn crlf_and_bom_are_normalized() {
        let a = one(
            "1_a.sql",
            "\u{feff}-- migrate:up\r\nSELECT 1;\r\n-- migrate:down\r\nSELECT 2;\r\n",
        );
        let b = one(
            "1_a.sql",
            "-- migrate:up\nSELECT 1;\n-- migrate:down\nSELECT 2;\n",
        );
        assert_eq!(a.checksum, b.checksum);
        assert_eq!(a.down_checksum, b.down_checksum);
    }

    #[test]
    fn empty_file_is_an_empty_migration() {
        let m = one("1_a.sql", "");
        assert_eq!(m.up.text, "");
    }

    #[test]
    fn order_is_numeric() {
        let (m, e) = parse(&[("10_b.sql", ""), ("9_a.sql", ""), ("100_c.sql", "")]);
        assert!(e.is_empty());
        let v: Vec<u64> = m.iter().map(|m| m.version.0).collect();
        assert_eq!(v, vec![9, 10, 100]);
    }
}

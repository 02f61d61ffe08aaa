//! Settings resolved once, with SPEC's precedence: flag > environment >
//! `backstop.toml` > default. A pure function of its inputs, so it is unit-tested
//! without touching the process environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The resolved settings every command works from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub database: PathBuf,
    pub migrations: PathBuf,
    pub backups: PathBuf,
    /// Backups kept per database after a new one is taken.
    pub keep: usize,
    /// How long to wait for another connection's lock before giving up (exit 4).
    pub busy_timeout: Duration,
    /// SQLite extensions loaded on every connection opened for the database
    /// (issue 11), in this order.
    pub extensions: Vec<PathBuf>,
    /// Values for Flyway-style `${NAME}` placeholders (issue 11).
    pub placeholders: BTreeMap<String, String>,
    /// The Python that runs `.py` migrations, as given (`--python`,
    /// `BACKSTOP_PYTHON`, `python` in backstop.toml); `None`: the default,
    /// `<project>/.venv/bin/python` if present, else `python3` on PATH.
    pub python: Option<PathBuf>,
    /// The project folder: the folder of the config file, or the current
    /// folder (empty path) without one. Executable migrations run in it.
    pub project: PathBuf,
    /// More variables that scripts get the database's absolute path in,
    /// besides `BACKSTOP_DATABASE` and `DATABASE_URL` (`database_env` in
    /// backstop.toml, for scripts that read `DB_PATH` and the like).
    pub database_env: Vec<String>,
    /// Migrations compiled into the program (the library's
    /// `Migrations::Embedded`, issue 13); then `migrations` is only their
    /// name in messages. Never set by the command line.
    pub embedded: Option<crate::source::Embedded>,
}

impl Settings {
    /// Where the migrations are read from: the folder on disk, or the one
    /// compiled into the program.
    pub fn folder(&self) -> crate::source::Folder<'_> {
        match self.embedded {
            Some(e) => crate::source::Folder::Embedded(e),
            None => crate::source::Folder::Disk(&self.migrations),
        }
    }
}

/// Values given on the command line; `None` when the flag was absent.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub database: Option<String>,
    pub migrations: Option<PathBuf>,
    pub backups: Option<PathBuf>,
    pub keep: Option<usize>,
    pub busy_timeout_ms: Option<u64>,
    pub python: Option<PathBuf>,
    /// `--config FILE`; otherwise `backstop.toml` in the current folder, if present.
    pub config: Option<PathBuf>,
    /// `--load-extension PATH`, repeated: replaces the file's `extensions`.
    pub extensions: Vec<PathBuf>,
    /// `--placeholder NAME=VALUE`, repeated, as written.
    pub placeholders: Vec<String>,
}

/// The keys of `backstop.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    database: Option<String>,
    migrations: Option<PathBuf>,
    backups: Option<PathBuf>,
    keep: Option<usize>,
    busy_timeout_ms: Option<u64>,
    extensions: Option<Vec<PathBuf>>,
    placeholders: Option<BTreeMap<String, String>>,
    python: Option<PathBuf>,
    database_env: Option<Vec<String>>,
}

pub const DEFAULT_CONFIG: &str = "backstop.toml";

/// Every environment variable a setting is read from.
pub const ENV_NAMES: &[&str] = &[
    "BACKSTOP_DATABASE",
    "DATABASE_URL",
    "BACKSTOP_MIGRATIONS",
    "BACKSTOP_BACKUPS",
    "BACKSTOP_KEEP",
    "BACKSTOP_BUSY_TIMEOUT_MS",
    "BACKSTOP_PYTHON",
];

/// Reads the config file (if any) and resolves settings against `env`.
pub fn resolve(flags: &Overrides, env: &dyn Fn(&str) -> Option<String>) -> Result<Settings> {
    let (file, base) = match &flags.config {
        Some(path) => (Some(read_file(path)?), parent(path)),
        None => {
            let path = Path::new(DEFAULT_CONFIG);
            if path.exists() {
                (Some(read_file(path)?), PathBuf::new())
            } else {
                (None, PathBuf::new())
            }
        }
    };
    resolve_with(flags, env, file.unwrap_or_default(), &base)
}

fn parent(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

fn read_file(path: &Path) -> Result<FileSettings> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
        path: path.to_path_buf(),
        problem: format!("cannot be read: {e}"),
    })?;
    toml::from_str(&text).map_err(|e| Error::Config {
        path: path.to_path_buf(),
        problem: e.message().to_owned(),
    })
}

fn resolve_with(
    flags: &Overrides,
    env: &dyn Fn(&str) -> Option<String>,
    file: FileSettings,
    base: &Path,
) -> Result<Settings> {
    let env = |name: &str| env(name).filter(|v| !v.is_empty());
    // Paths from the config file are relative to the file, as a user would expect
    // from `--config deploy/backstop.toml`.
    let from_file = |p: PathBuf| if p.is_relative() { base.join(p) } else { p };

    let database = if let Some(d) = &flags.database {
        database_path(d, "--database")?
    } else if let Some(d) = env("BACKSTOP_DATABASE") {
        database_path(&d, "BACKSTOP_DATABASE")?
    } else if let Some(d) = env("DATABASE_URL") {
        database_path(&d, "DATABASE_URL")?
    } else if let Some(d) = file.database {
        from_file(database_path(&d, "database (backstop.toml)")?)
    } else {
        PathBuf::from("dev.db")
    };

    let migrations = flags
        .migrations
        .clone()
        .or_else(|| env("BACKSTOP_MIGRATIONS").map(PathBuf::from))
        .or_else(|| file.migrations.map(from_file))
        .unwrap_or_else(|| PathBuf::from("migrations"));
    let backups = flags
        .backups
        .clone()
        .or_else(|| env("BACKSTOP_BACKUPS").map(PathBuf::from))
        .or_else(|| file.backups.map(from_file))
        .unwrap_or_else(|| PathBuf::from("backups"));

    let keep = match (flags.keep, env("BACKSTOP_KEEP")) {
        (Some(k), _) => k,
        (None, Some(v)) => v.trim().parse().map_err(|_| Error::Setting {
            setting: "BACKSTOP_KEEP",
            value: v.clone(),
            expected: "a whole number of backups to keep, at least 1",
        })?,
        (None, None) => file.keep.unwrap_or(20),
    };
    if keep == 0 {
        return Err(Error::Setting {
            setting: "keep",
            value: "0".into(),
            expected: "at least 1, so the backup just taken is kept",
        });
    }
    let busy_ms = match (flags.busy_timeout_ms, env("BACKSTOP_BUSY_TIMEOUT_MS")) {
        (Some(ms), _) => ms,
        (None, Some(v)) => v.trim().parse().map_err(|_| Error::Setting {
            setting: "BACKSTOP_BUSY_TIMEOUT_MS",
            value: v.clone(),
            expected: "milliseconds, a whole number",
        })?,
        (None, None) => file.busy_timeout_ms.unwrap_or(5000),
    };
    // A list given on the command line replaces the file's (flag > file), so
    // another build of an extension can be tried without loading both.
    let extensions = if flags.extensions.is_empty() {
        file.extensions
            .unwrap_or_default()
            .into_iter()
            .map(from_file)
            .collect()
    } else {
        flags.extensions.clone()
    };
    // Placeholders are merged name by name: a flag overrides the file's value
    // for its own name only, as Flyway merges its placeholder sources.
    let mut placeholders = file.placeholders.unwrap_or_default();
    for arg in &flags.placeholders {
        let (name, value) = placeholder_arg(arg)?;
        placeholders.insert(name, value);
    }
    // A bare name (`python3.12`) is looked up on PATH when it runs; a path
    // from the file is relative to the file, like the other paths.
    let python = flags
        .python
        .clone()
        .or_else(|| env("BACKSTOP_PYTHON").map(PathBuf::from))
        .or_else(|| {
            file.python.map(|p| {
                if p.components().count() > 1 {
                    from_file(p)
                } else {
                    p
                }
            })
        });
    let database_env = file.database_env.unwrap_or_default();
    if let Some(bad) = database_env.iter().find(|n| !is_env_name(n)) {
        return Err(Error::Setting {
            setting: "database_env (backstop.toml)",
            value: bad.clone(),
            expected:
                "names of environment variables (letters, digits and _, not starting with a digit)",
        });
    }
    Ok(Settings {
        database,
        migrations,
        backups,
        keep,
        busy_timeout: Duration::from_millis(busy_ms),
        extensions,
        placeholders,
        python,
        project: base.to_path_buf(),
        database_env,
        embedded: None,
    })
}

/// `--placeholder NAME=VALUE`: the value may hold `=`, the name may not be empty.
fn placeholder_arg(arg: &str) -> Result<(String, String)> {
    match arg.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.to_owned()))
        }
        _ => Err(Error::Setting {
            setting: "--placeholder",
            value: arg.to_owned(),
            expected: "NAME=VALUE, e.g. --placeholder schema_owner=app",
        }),
    }
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Accepts a plain path or a `sqlite:` / `sqlite://` URL (as sqlx and dbmate write
/// them); any other URL scheme is refused rather than misread as a file name.
pub fn database_path(value: &str, setting: &'static str) -> Result<PathBuf> {
    let bad = |expected| Error::Setting {
        setting,
        value: value.to_owned(),
        expected,
    };
    let path = if let Some(rest) = value.strip_prefix("sqlite:") {
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        // Query parameters such as `?mode=rwc` are for the driver, not part of the path.
        rest.split('?').next().unwrap_or("")
    } else if value.contains("://") {
        return Err(bad("a SQLite file path or a sqlite: URL"));
    } else {
        value
    };
    if path.is_empty() || path == ":memory:" {
        return Err(bad(
            "a database file (in-memory databases cannot be migrated and backed up)",
        ));
    }
    Ok(PathBuf::from(path))
}

#[cfg(test)]
mod tests;

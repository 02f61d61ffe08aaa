//! `adopt`: take over a database that another tool has been migrating
//! (issue 11). Its tracking table is read with that tool's own semantics (one
//! file per tool here), each applied version is matched to its file, the
//! tool's checksums are compared where it kept them, the schema is checked
//! against a replay of the migrations, and then, after a backup, the
//! migrations are recorded in backstop's table in one transaction. The other
//! tool's table is only read, so the project can go back to it.

mod dbmate;
mod diesel;
mod drizzle;
mod flyway;
mod golang_migrate;
mod goose;
mod reading;
mod refinery;
mod sqlx;
mod take;

use std::fmt;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

pub use reading::Kept;
pub(crate) use take::check;
pub use take::{preview, run, AdoptOptions, Preview};

use crate::migration::Migration;

/// The tools whose tracking tables backstop reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tool {
    Sqlx,
    Dbmate,
    GolangMigrate,
    Goose,
    Diesel,
    Flyway,
    Refinery,
    Drizzle,
}

/// Every tool's table: never part of the user's schema (the schema check of
/// `baseline` and `adopt` leaves them out).
pub const TRACKING_TABLES: &[&str] = &[
    sqlx::TABLE,
    dbmate::TABLE,
    goose::TABLE,
    diesel::TABLE,
    flyway::TABLE,
    refinery::TABLE,
    drizzle::TABLE,
];

impl Tool {
    pub const ALL: [Tool; 8] = [
        Tool::Sqlx,
        Tool::Dbmate,
        Tool::GolangMigrate,
        Tool::Goose,
        Tool::Diesel,
        Tool::Flyway,
        Tool::Refinery,
        Tool::Drizzle,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Tool::Sqlx => "sqlx",
            Tool::Dbmate => "dbmate",
            Tool::GolangMigrate => "golang-migrate",
            Tool::Goose => "goose",
            Tool::Diesel => "diesel",
            Tool::Flyway => "Flyway",
            Tool::Refinery => "refinery",
            Tool::Drizzle => "drizzle",
        }
    }

    pub fn table(self) -> &'static str {
        match self {
            Tool::Sqlx => sqlx::TABLE,
            Tool::Dbmate => dbmate::TABLE,
            Tool::GolangMigrate => golang_migrate::TABLE,
            Tool::Goose => goose::TABLE,
            Tool::Diesel => diesel::TABLE,
            Tool::Flyway => flyway::TABLE,
            Tool::Refinery => refinery::TABLE,
            Tool::Drizzle => drizzle::TABLE,
        }
    }

    fn read(
        self,
        conn: &Connection,
        files: &[Migration],
        dir: &Path,
    ) -> rusqlite::Result<reading::Reading> {
        match self {
            Tool::Sqlx => sqlx::read(conn, files, dir),
            Tool::Dbmate => dbmate::read(conn, files, dir),
            Tool::GolangMigrate => golang_migrate::read(conn, files, dir),
            Tool::Goose => goose::read(conn, files, dir),
            Tool::Diesel => diesel::read(conn, files, dir),
            Tool::Flyway => flyway::read(conn, files, dir),
            Tool::Refinery => refinery::read(conn, files, dir),
            Tool::Drizzle => drizzle::read(conn, files, dir),
        }
    }

    /// Whether this tool's table is in the database (dbmate and golang-migrate
    /// share a table name; its columns tell them apart).
    fn present(self, conn: &Connection) -> rusqlite::Result<bool> {
        let columns = reading::columns(conn, self.table())?;
        Ok(match self {
            _ if columns.is_empty() => false,
            Tool::Dbmate => !golang_migrate::owns(&columns),
            Tool::GolangMigrate => golang_migrate::owns(&columns),
            _ => true,
        })
    }
}

impl fmt::Display for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why `adopt` stopped before changing anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// No other tool's table in the database.
    NoTable,
    /// `--from TOOL`, but that tool's table is not there.
    NotThere(Tool),
    /// Tables of two or more tools: which one to read is the user's call.
    Several(Vec<Tool>),
    /// Failed or dirty records, each with what to do.
    Failed { tool: Tool, records: Vec<String> },
    /// Files that no longer match the checksum the tool recorded.
    Edited {
        tool: Tool,
        files: Vec<(PathBuf, String)>,
    },
    /// drizzle's journal could not be read.
    NoJournal(String),
}

/// `adopt` refused, naming the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub database: PathBuf,
    pub problem: Problem,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let db = self.database.display();
        match &self.problem {
            Problem::NoTable => write!(
                f,
                "{db} has no other tool's tracking table (looked for {} and golang-migrate's {})",
                TRACKING_TABLES.join(", "),
                golang_migrate::TABLE
            ),
            Problem::NotThere(tool) => {
                write!(
                    f,
                    "{db} has no {} table ({tool}'s tracking table)",
                    tool.table()
                )
            }
            Problem::Several(tools) => {
                let named: Vec<String> = tools
                    .iter()
                    .map(|t| format!("{t}'s {}", t.table()))
                    .collect();
                write!(f, "{db} has the tracking tables of {}", named.join(" and "))
            }
            Problem::Failed { tool, records } => {
                write!(f, "{tool}'s table in {db} records unfinished work:")?;
                for r in records {
                    write!(f, "\n  {r}")?;
                }
                Ok(())
            }
            Problem::Edited { tool, files } => {
                write!(
                    f,
                    "{} migration(s) changed since {tool} applied them (its checksum differs):",
                    files.len()
                )?;
                for (path, version) in files {
                    write!(f, "\n  {} (version {version})", path.display())?;
                }
                Ok(())
            }
            Problem::NoJournal(detail) => write!(
                f,
                "drizzle's journal cannot be read ({detail}); drizzle's table lists hashes and \
                 times, and only the journal ties them to files"
            ),
        }
    }
}

/// The tools whose tables are in the database.
fn present(conn: &Connection) -> rusqlite::Result<Vec<Tool>> {
    let mut found = Vec::new();
    for tool in Tool::ALL {
        if tool.present(conn)? {
            found.push(tool);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests;

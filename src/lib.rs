//! backstop: a safety-first migration assistant for SQLite, as a library an
//! application calls at start-up (issue 13) and as the `backstop` command.
//!
//! Every run that changes a database is preceded by a verified, timestamped
//! backup; every applied migration is checksummed so later edits are caught;
//! each migration commits together with its tracking row; and when one fails,
//! the pre-run backup can be put back. The library never prints, prompts or
//! exits: it reports through an [`Observer`] and returns a typed [`Error`].
//!
//! # Migrating at start-up
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let migrations = dir.path().join("migrations");
//! # std::fs::create_dir(&migrations)?;
//! # std::fs::write(migrations.join("1_notes.sql"), "CREATE TABLE note (body TEXT);")?;
//! # let database = dir.path().join("app.db");
//! // Migrations read from a folder here; `embed_migrations!` compiles them in.
//! let options = backstop::Options::new(&database, backstop::Migrations::Folder(migrations));
//! let report = backstop::migrate(&options, &mut backstop::Silent)?;
//! assert_eq!(report.applied.len(), 1);
//! assert!(report.backup.is_some()); // taken and verified before anything ran
//! # Ok(())
//! # }
//! ```
//!
//! On failure [`migrate`] restores the pre-run backup ([`Policy::Restore`], the
//! default) and returns an [`Error`] whose [`Error::failure`] names the file,
//! the line and SQLite's message; an application should then refuse to start.
//!
//! # Features
//!
//! - `cli` (default): the `backstop` command and its terminal crates. Depend on
//!   backstop with `default-features = false` to build the library alone.
//! - `log`: `LogObserver`, the library's events as `log` records.
//!
//! The contract is SPEC.md; the README says what was chosen where it is silent.

#![warn(missing_docs)]
// Most commands (status, verify, restore, down, …) are reached only through
// the command line: without it their code is compiled but unused.
#![cfg_attr(not(feature = "cli"), allow(dead_code, unused_imports))]

// Executable migrations run in their own Unix process group with the runner's
// channel on an inherited descriptor, restores keep owners and modes, and the
// backups folder is judged by its permission bits: none of it has a Windows
// counterpart here yet, so say so at build time rather than at 2 a.m.
#[cfg(not(unix))]
compile_error!(
    "backstop supports Unix (Linux, tested; macOS, untested) only for now: executable \
     migrations, owner and mode keeping and the backups folder rules use Unix APIs"
);

mod adopt;
mod api;
mod apply;
mod backup;
mod baseline;
mod bookkeeping;
mod checksum;
mod db;
mod down;
mod error;
mod history;
mod inspect;
mod log;
mod migration;
mod observe;
mod plan;
mod project;
mod rehearse;
mod repair;
mod restore;
mod script;
mod settings;
mod slug;
mod source;
mod status;
mod verify;

/// The `backstop` command line (feature `cli`); `src/main.rs` calls [`cli::run`].
#[cfg(feature = "cli")]
#[doc(hidden)]
// Its doc comments are clap's help text (`<UTC YYYYMMDDHHMMSS>_<name>.sql`).
#[allow(rustdoc::invalid_html_tags)]
pub mod cli;

#[cfg(feature = "log")]
pub use api::LogObserver;
pub use api::{
    migrate, status, Applied, Error, Event, Failure, MigrationStatus, Migrations, Observer,
    Options, Outcome, Policy, Report, Silent, Status,
};
pub use error::ErrorKind;
pub use migration::Version;
pub use plan::State;
pub use source::Embedded;

/// Used by [`embed_migrations!`]; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use include_dir;
}

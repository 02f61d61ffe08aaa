//! backstop: a safety-first migration assistant for SQLite.
//!
//! Every run that changes a database is preceded by a verified, timestamped
//! backup; every applied migration is checksummed so later edits are caught;
//! each migration commits together with its tracking row. The library never
//! prints, prompts or exits: it reports through [`observe::Observer`] and
//! returns typed [`Error`]s; the `backstop` binary (module `cli`) does the talking.
//!
//! The contract is SPEC.md; the README says what was chosen where it is silent.

pub mod adopt;
pub mod apply;
pub mod backup;
pub mod baseline;
mod bookkeeping;
pub mod checksum;
pub mod db;
pub mod down;
pub mod error;
pub mod history;
pub mod inspect;
pub mod log;
pub mod migration;
pub mod observe;
pub mod plan;
pub mod project;
pub mod rehearse;
pub mod repair;
pub mod restore;
mod script;
pub mod settings;
mod slug;
pub mod source;
pub mod status;
pub mod verify;

pub mod cli;

pub use error::{Error, Result};
pub use migration::{Migration, Version};
pub use settings::Settings;

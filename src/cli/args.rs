//! Command-line arguments (clap derive). Doc comments become the help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "backstop",
    version,
    about = "A safety-first migration assistant for SQLite",
    long_about = "A safety-first migration assistant for SQLite.\n\n\
        Every run that changes the database is preceded by a verified, timestamped backup; \
        applied migrations are checksummed so edits are caught; each migration commits \
        together with its tracking row; a failed run can be undone in one keystroke.",
    after_help = "Examples:\n  backstop new add_users          create migrations/<timestamp>_add_users.sql\n  backstop status                 what is applied, pending or edited\n  backstop up                     back up, then apply pending migrations\n  backstop up --dry-run           rehearse on a copy; the real file is untouched\n  backstop restore                pick a backup to put back",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Settings and global flags, accepted before or after the subcommand.
#[derive(Debug, Args, Clone)]
pub struct Global {
    /// Database file, or a sqlite: URL [env: BACKSTOP_DATABASE, DATABASE_URL] [default: dev.db]
    #[arg(short = 'd', long, global = true, value_name = "FILE")]
    pub database: Option<String>,
    /// Migrations folder [env: BACKSTOP_MIGRATIONS] [default: migrations]
    #[arg(long, global = true, value_name = "DIR")]
    pub migrations: Option<PathBuf>,
    /// Backups folder [env: BACKSTOP_BACKUPS] [default: backups]
    #[arg(long, global = true, value_name = "DIR")]
    pub backups: Option<PathBuf>,
    /// Backups to keep per database [env: BACKSTOP_KEEP] [default: 20]
    #[arg(long, global = true, value_name = "N")]
    pub keep: Option<usize>,
    /// How long to wait for a locked database, in milliseconds [env: BACKSTOP_BUSY_TIMEOUT_MS] [default: 5000]
    #[arg(long, global = true, value_name = "MS")]
    pub busy_timeout_ms: Option<u64>,
    /// Python for .py migrations [env: BACKSTOP_PYTHON] [default: .venv/bin/python if present, else python3]
    #[arg(long, global = true, value_name = "PATH")]
    pub python: Option<PathBuf>,
    /// Config file [default: backstop.toml in the current folder, if present]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Load a SQLite extension on every connection to the database (repeatable; replaces `extensions` in backstop.toml)
    #[arg(long = "load-extension", global = true, value_name = "PATH")]
    pub load_extension: Vec<PathBuf>,
    /// Value for a `${NAME}` placeholder in migrations (repeatable; overrides `[placeholders]` in backstop.toml)
    #[arg(long, global = true, value_name = "NAME=VALUE")]
    pub placeholder: Vec<String>,
    /// Answer yes to confirmations
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,
    /// Never prompt; fail where a prompt would be needed, naming the flag that decides
    #[arg(long, global = true)]
    pub no_input: bool,
    /// Machine-readable output: one JSON document on stdout
    #[arg(long, global = true)]
    pub json: bool,
    /// Print nothing on success
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More detail (each statement with its timing)
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// When to use colors [env: NO_COLOR disables]
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnFailure {
    /// Ask on a terminal; keep without one
    Ask,
    /// Put the pre-run backup back, undoing the whole run (not over other programs' writes without --force)
    Restore,
    /// Keep the database at the last migration that committed
    Keep,
    /// Revert this run's migrations with their down sections (keeps other programs' writes)
    Down,
}

/// `adopt --from`: the tools whose tables backstop reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AdoptFrom {
    Sqlx,
    Dbmate,
    GolangMigrate,
    Goose,
    Diesel,
    Flyway,
    Refinery,
    Drizzle,
}

impl From<AdoptFrom> for crate::adopt::Tool {
    fn from(t: AdoptFrom) -> Self {
        use crate::adopt::Tool;
        match t {
            AdoptFrom::Sqlx => Tool::Sqlx,
            AdoptFrom::Dbmate => Tool::Dbmate,
            AdoptFrom::GolangMigrate => Tool::GolangMigrate,
            AdoptFrom::Goose => Tool::Goose,
            AdoptFrom::Diesel => Tool::Diesel,
            AdoptFrom::Flyway => Tool::Flyway,
            AdoptFrom::Refinery => Tool::Refinery,
            AdoptFrom::Drizzle => Tool::Drizzle,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new migration file with up/down markers
    #[command(
        after_help = "The new file is named the way the folder already names its migrations (0008_… after 0007_…, \
            a date after dated names, a diesel folder, a Flyway V-file); an empty folder gets a UTC timestamp.\n\n\
            Examples:\n  backstop new add_users\n  backstop new \"add index on email\"   → migrations/<next version>_add_index_on_email.sql\n  \
            backstop new add_users --timestamp   → migrations/<UTC timestamp>_add_users.sql"
    )]
    New {
        /// What the migration does, e.g. add_users
        name: String,
        /// Name it <UTC YYYYMMDDHHMMSS>_<name>.sql whatever the folder's other files use
        #[arg(long)]
        timestamp: bool,
    },
    /// Show the database and the state of every migration
    #[command(
        after_help = "Examples:\n  backstop status\n  backstop status --json | jq '.counts'\n  backstop status --exit-code   exit 3 when anything is pending, edited, missing or out-of-order"
    )]
    Status {
        /// Exit 3 when anything is pending, edited, missing or out-of-order
        #[arg(long)]
        exit_code: bool,
    },
    /// Back up the database, then apply pending migrations
    #[command(
        after_help = "Before anything runs, every pending statement is checked against the schema the \
            earlier migrations produce (exit 3 on a syntax error, unknown table, column or function), and \
            `up` refuses (exit 3) while a migration is edited, missing or out-of-order: restore the file, \
            `backstop repair VERSION` to accept an intentional edit, or --allow-out-of-order. A schema \
            changed outside migrations is named and needs --yes (or a yes on a terminal).\n\n\
            Examples:\n  backstop up\n  backstop up --to 20240301120000\n  backstop up --dry-run              rehearse on a temporary copy\n  backstop up --on-failure restore   undo the whole run if a migration fails\n  backstop up --on-failure down      undo it with the down sections, keeping the app's writes\n  backstop -d app.db up --yes --json"
    )]
    Up(UpArgs),
    /// Run down sections, newest first, after a backup
    #[command(
        after_help = "Examples:\n  backstop down              undo the newest migration\n  backstop down --steps 3\n  backstop down --to 20240101000000   undo everything newer than this version"
    )]
    Down {
        /// How many migrations to undo
        #[arg(long, conflicts_with = "to")]
        steps: Option<usize>,
        /// Undo every migration newer than VERSION
        #[arg(long, value_name = "VERSION")]
        to: Option<String>,
        /// Skip the backup (not recommended)
        #[arg(long)]
        no_backup: bool,
    },
    /// Take a verified backup now
    #[command(
        after_help = "Examples:\n  backstop backup\n  backstop backup --label before-deploy"
    )]
    Backup {
        /// A word for the file name, e.g. before-deploy
        #[arg(long)]
        label: Option<String>,
    },
    /// List backups of this database, newest first
    #[command(after_help = "Examples:\n  backstop backups\n  backstop backups --json")]
    Backups,
    /// Put a backup back (the current database is saved first)
    #[command(
        after_help = "Examples:\n  backstop restore                     pick from a list (terminal)\n  backstop restore --latest --yes\n  backstop restore backups/dev.20261122T103000123Z.before-up.sqlite3 --yes"
    )]
    Restore {
        /// Backup file (path, or file name in the backups folder)
        #[arg(conflicts_with = "latest")]
        backup: Option<PathBuf>,
        /// The newest backup
        #[arg(long)]
        latest: bool,
    },
    /// Pre-deploy check: checksums, order, drift, integrity, foreign keys, backups
    #[command(after_help = "Examples:\n  backstop verify && deploy.sh\n  backstop verify --json")]
    Verify,
    /// Accept an intentional edit of an applied migration
    #[command(
        after_help = "Examples:\n  backstop repair 20240101000000        shows the diff, asks, records the new checksum"
    )]
    Repair {
        /// The applied migration whose file was edited on purpose
        // The id must not be "version": with `propagate_version` clap's own
        // `--version` flag has that id, and the clash panics at parse time.
        #[arg(id = "migration_version", value_name = "VERSION")]
        version: String,
        /// Skip the backup (not recommended)
        #[arg(long)]
        no_backup: bool,
    },
    /// Record every migration up to VERSION as applied without running it
    #[command(
        after_help = "The database's schema must equal the migrations up to VERSION replayed on an empty database; \
            a difference is refused (exit 3) naming the objects, and --force records anyway.\n\n\
            Examples:\n  backstop baseline 20240101000000      adopt a database built before backstop"
    )]
    Baseline {
        /// The newest migration the database already contains
        // Not id "version": see `Repair`.
        #[arg(id = "migration_version", value_name = "VERSION")]
        version: String,
        /// Record even if the schema differs from the migrations' replay
        #[arg(long)]
        force: bool,
        /// Skip the backup (not recommended)
        #[arg(long)]
        no_backup: bool,
    },
    /// Take over a database another tool (sqlx, dbmate, golang-migrate, goose, diesel, Flyway, refinery, drizzle) migrated
    #[command(
        after_help = "Reads the other tool's tracking table as that tool does, matches each applied version to its file, \
            compares the tool's checksums where it kept them, checks the schema against a replay of the migrations, \
            then (after a backup) records them as applied. The other tool's table is left untouched.\n\n\
            Examples:\n  backstop adopt --dry-run          show what would be recorded\n  \
            backstop adopt --from goose --yes\n  backstop adopt --accept-edits     record files edited since the tool applied them"
    )]
    Adopt {
        /// The tool whose table to read [default: the one whose table is there]
        #[arg(long, value_enum, value_name = "TOOL")]
        from: Option<AdoptFrom>,
        /// Show what would be recorded; change nothing
        #[arg(long)]
        dry_run: bool,
        /// Record files that changed since the other tool applied them, as they are now
        #[arg(long)]
        accept_edits: bool,
        /// Record even if the schema differs from the migrations' replay
        #[arg(long)]
        force: bool,
        /// Skip the backup (not recommended)
        #[arg(long)]
        no_backup: bool,
    },
    /// The runs recorded in the database, newest first
    #[command(after_help = "Examples:\n  backstop log\n  backstop log --json")]
    Log,
    /// Print shell completions
    #[command(
        after_help = "Examples:\n  backstop completions bash > /etc/bash_completion.d/backstop\n  backstop completions zsh > \"${fpath[1]}/_backstop\"\n  backstop completions fish > ~/.config/fish/completions/backstop.fish"
    )]
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Apply pending migrations up to and including VERSION
    #[arg(long, value_name = "VERSION")]
    pub to: Option<String>,
    /// Rehearse on a temporary copy; the database and the backups folder stay untouched
    #[arg(long)]
    pub dry_run: bool,
    /// Skip the pre-run backup (not recommended)
    #[arg(long)]
    pub no_backup: bool,
    /// What to do when a migration fails
    #[arg(long, value_enum, default_value_t = OnFailure::Ask, value_name = "WHAT")]
    pub on_failure: OnFailure,
    /// With --on-failure restore: restore even when other programs wrote to the database since the backup (their writes are undone; the before-restore copy keeps them)
    #[arg(long)]
    pub force: bool,
    /// Also apply migrations older than the newest applied one
    #[arg(long)]
    pub allow_out_of_order: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// clap checks argument definitions only when a subcommand is parsed; this
    /// checks all of them at once (a clash once made `repair` panic).
    #[test]
    fn arguments_are_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}

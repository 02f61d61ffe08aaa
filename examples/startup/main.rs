//! An application that migrates its database at start-up, with the migrations
//! compiled in, and refuses to start when that fails (issue 13).
//!
//!     cargo run --example startup -- app.db
//!
//! On success it opens its own connection (only then: the migration ran on a
//! database nobody else was using) and "serves". On failure backstop has put
//! the pre-run backup back, and the application exits with the error's code
//! instead of running against a half-migrated database.

use std::path::PathBuf;
use std::process::ExitCode;

use backstop::{Event, Observer, Outcome};

fn main() -> ExitCode {
    let database: PathBuf = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| "app.db".into());
    // Compiled into the binary: deploying the binary deploys its migrations.
    let migrations = backstop::embed_migrations!("$CARGO_MANIFEST_DIR/examples/startup/migrations");
    // Defaults: backups in a `backups` folder beside the database, and on
    // failure the pre-run backup is restored (Policy::Restore).
    let options = backstop::Options::new(&database, migrations);

    match backstop::migrate(&options, &mut Say) {
        Ok(report) if report.applied.is_empty() => eprintln!("database is up to date"),
        Ok(report) => eprintln!(
            "migrated: {} migration(s), {} row(s) changed, in {:?}; backup {}",
            report.applied.len(),
            report.rows_changed(),
            report.duration,
            report
                .backup
                .map(|b| b.display().to_string())
                .unwrap_or_default()
        ),
        Err(e) => {
            // The message names the file and line, and says what became of
            // the database (restored from the pre-run backup, by default).
            eprintln!("error: {e}");
            if let Some(f) = e.failure() {
                if !matches!(f.outcome, Outcome::Restored { .. }) {
                    eprintln!("the database needs a look before the application can start");
                }
            }
            eprintln!("refusing to start");
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1));
        }
    }
    serve(&database)
}

/// The application proper, which opens its connection only after migrating.
fn serve(database: &std::path::Path) -> ExitCode {
    let users = rusqlite::Connection::open(database)
        .and_then(|conn| conn.query_row("SELECT count(*) FROM user", [], |r| r.get::<_, i64>(0)));
    match users {
        Ok(n) => {
            println!("serving with {n} user(s)");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Start-up progress on stderr, one line per step.
struct Say;

impl Observer for Say {
    fn event(&mut self, event: &Event<'_>) {
        match event {
            Event::BackupDone { path, .. } => eprintln!("backup {} (verified)", path.display()),
            Event::MigrationCommitted { version, name, .. } => {
                eprintln!("applied {version} {name}")
            }
            Event::Warning { message } => eprintln!("warning: {message}"),
            _ => {}
        }
    }
}

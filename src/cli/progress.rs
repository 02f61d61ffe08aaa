//! The CLI's observer: progress bars on a terminal, one plain line per event
//! otherwise (no escape sequences), nothing with --quiet.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use console::style;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{prompt, Signals, Ui};
use crate::inspect::Destructive;
use crate::observe::{Check, Direction, Event, Interrupt, Notify, Observer, Ticker};
use indicatif::HumanBytes;

/// Bytes below which a backup or restore gets no bar: it is over in a blink.
const BAR_BYTES: u64 = 16 << 20;

pub struct Progress<'a> {
    ui: &'a Ui,
    signals: &'a Signals,
    multi: Option<MultiProgress>,
    overall: Option<ProgressBar>,
    current: Option<ProgressBar>,
    bytes: Option<ProgressBar>,
    /// `up --dry-run`: nothing is really applied, so lines must not say so.
    rehearsal: bool,
    /// Of the migration running now: `down` reverts, it does not apply.
    direction: Direction,
    /// "VERSION line N", for the plain "still running" lines.
    running: Arc<Mutex<String>>,
    /// The migration whose output is being shown under its name (bars only).
    output_of: Option<String>,
}

/// Seconds between two "still running" lines in plain mode.
const STILL_RUNNING_EVERY: u64 = 5;

impl<'a> Progress<'a> {
    pub fn new(ui: &'a Ui, signals: &'a Signals) -> Progress<'a> {
        Progress {
            ui,
            signals,
            multi: ui
                .bars
                .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            overall: None,
            current: None,
            bytes: None,
            rehearsal: false,
            direction: Direction::Up,
            running: Arc::default(),
            output_of: None,
        }
    }

    /// For `up --dry-run`: plain lines say "rehearsed", not "applied".
    pub fn rehearsal(mut self) -> Progress<'a> {
        self.rehearsal = true;
        self
    }

    /// A line that stays on screen (above any bars).
    fn line(&self, text: String) {
        if self.ui.quiet {
            return;
        }
        match &self.multi {
            Some(m) => {
                let _ = m.println(text);
            }
            None => eprintln!("{text}"),
        }
    }

    /// A bar for a long copy on a terminal; a plain line saying what runs
    /// otherwise, so a long silent wait is not mistaken for a hang.
    fn bytes_bar(&mut self, total: u64, what: &str, path: &std::path::Path) {
        if total >= BAR_BYTES && self.multi.is_none() && !self.ui.json {
            self.line(format!(
                "{what} {} ({})…",
                path.display(),
                HumanBytes(total)
            ));
        }
        if let (Some(m), true) = (&self.multi, total >= BAR_BYTES) {
            let bar = m.add(ProgressBar::new(total));
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_message(what.to_owned());
            self.bytes = Some(bar);
        }
    }

    /// Leaves the screen clean (bars removed) before the summary is printed.
    pub fn finish(&mut self) {
        for bar in [self.current.take(), self.overall.take(), self.bytes.take()]
            .into_iter()
            .flatten()
        {
            bar.finish_and_clear();
        }
    }
}

impl Progress<'_> {
    /// A line an executable migration printed (issue 12): on a terminal under
    /// the migration's name (printed once, above the bars), in plain mode
    /// prefixed with its version so lines of a log can be told apart.
    fn output(&mut self, migration: &crate::migration::Migration, line: &str) {
        if self.multi.is_some() {
            let id = migration.version.id().to_owned();
            if self.output_of.as_deref() != Some(id.as_str()) {
                self.line(format!(
                    "{} {} {}",
                    style("▸").for_stderr().dim(),
                    migration.version,
                    migration.name
                ));
                self.output_of = Some(id);
            }
            self.line(format!("  {} {line}", style("│").for_stderr().dim()));
        } else {
            self.line(format!("{}: {line}", migration.version));
        }
    }
}

impl Drop for Progress<'_> {
    fn drop(&mut self) {
        self.finish();
    }
}

/// What each event draws, one method per kind of moment.
impl Progress<'_> {
    /// The overall bar and the current migration's spinner, on a terminal.
    fn plan_ready(&mut self, pending: usize) {
        let Some(m) = &self.multi else {
            if self.ui.verbose {
                self.line(format!("{pending} migration(s) to apply"));
            }
            return;
        };
        let overall = m.add(ProgressBar::new(pending as u64));
        overall.set_style(
            ProgressStyle::with_template("{prefix:.bold} [{bar:25}] {pos}/{len} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        overall.set_prefix("migrating");
        let current = m.add(ProgressBar::new_spinner());
        current.set_style(
            ProgressStyle::with_template("{spinner} {wide_msg} {elapsed:>4}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        self.overall = Some(overall);
        self.current = Some(current);
    }

    fn check_started(&self, check: Check, path: &std::path::Path, bytes: u64) {
        if bytes >= BAR_BYTES && !self.ui.json {
            let what = match check {
                Check::Integrity => "checking the integrity of",
                Check::Backups => "hashing the backups in",
            };
            self.line(format!(
                "{what} {} ({})…",
                path.display(),
                HumanBytes(bytes)
            ));
        }
    }

    fn migration_started(
        &mut self,
        index: usize,
        total: usize,
        migration: &crate::migration::Migration,
        direction: Direction,
    ) {
        self.direction = direction;
        let verb = match (self.rehearsal, direction) {
            (true, _) => "rehearsing",
            (false, Direction::Up) => "applying",
            (false, Direction::Down) => "reverting",
        };
        if let Some(c) = &self.current {
            c.reset_elapsed();
            c.set_message(format!(
                "[{}/{}] {} {}",
                index + 1,
                total,
                migration.version,
                migration.name
            ));
        } else if self.ui.verbose {
            self.line(format!("{verb} {} {}", migration.version, migration.name));
        }
    }

    fn statement_started(&self, migration: &crate::migration::Migration, line: usize, sql: &str) {
        if self.ui.quiet {
            // Nothing shows it (see `ticker`); a thousand statements need not pay.
            return;
        }
        let first = sql
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with("--"))
            .unwrap_or("");
        if let Ok(mut r) = self.running.lock() {
            *r = format!("{} line {line}", migration.version);
        }
        if let Some(c) = &self.current {
            c.reset_elapsed();
            c.set_message(format!(
                "{} {} line {line}: {first}",
                migration.version, migration.name
            ));
        } else if self.ui.verbose {
            self.line(format!("  {} line {line}: {first}", migration.version));
        }
    }

    fn migration_committed(
        &self,
        migration: &crate::migration::Migration,
        duration: Duration,
        rows: u64,
    ) {
        if let Some(o) = &self.overall {
            o.inc(1);
        }
        if self.ui.quiet {
            return;
        }
        let lead = if self.multi.is_some() {
            style("✓").for_stderr().green().to_string()
        } else {
            match (self.rehearsal, self.direction) {
                (true, _) => "rehearsed",
                (false, Direction::Up) => "applied",
                (false, Direction::Down) => "reverted",
            }
            .into()
        };
        self.line(format!(
            "{lead} {} {} ({}, {} changed)",
            migration.version,
            migration.name,
            ms(duration),
            crate::cli::cmd::up::plural(rows as usize, "row")
        ));
    }
}

impl Observer for Progress<'_> {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::DatabaseCreated { path } => self.line(format!("created {}", path.display())),
            Event::Destructive { items } => {
                self.line(format!(
                    "{} these migrations drop or delete data:",
                    style("warning:").for_stderr().yellow().bold()
                ));
                for d in items {
                    self.line(format!("  {d}"));
                }
            }
            Event::PlanReady { pending } => self.plan_ready(pending),
            Event::BackupStarted { bytes, database } => {
                self.bytes_bar(bytes, "backing up", database)
            }
            Event::BackupProgress { done, .. } | Event::RestoreProgress { done, .. } => {
                if let Some(b) = &self.bytes {
                    b.set_position(done);
                }
            }
            Event::BackupDone { backup } => {
                if let Some(b) = self.bytes.take() {
                    b.finish_and_clear();
                }
                self.line(format!(
                    "backup {} ({}, verified)",
                    backup.path.display(),
                    HumanBytes(backup.manifest.size)
                ));
            }
            Event::BackupPruned { path } => {
                if self.ui.verbose {
                    self.line(format!("pruned old backup {}", path.display()));
                }
            }
            Event::RestoreStarted { bytes, backup } => self.bytes_bar(bytes, "restoring", backup),
            Event::CheckStarted { check, path, bytes } => self.check_started(check, path, bytes),
            Event::TemporaryRemoved { path } => self.line(format!(
                "removed {}, a temporary file left by a backstop that was killed",
                path.display()
            )),
            Event::LockWait { path } => self.line(super::lock_wait::line(path)),
            Event::MigrationStarted {
                index,
                total,
                migration,
                direction,
            } => self.migration_started(index, total, migration, direction),
            Event::StatementStarted {
                migration,
                line,
                sql,
            } => self.statement_started(migration, line, sql),
            Event::StatementFinished {
                migration,
                line,
                duration,
            } => {
                if self.ui.verbose {
                    self.line(format!(
                        "  {} line {line} done in {}",
                        migration.version,
                        ms(duration)
                    ));
                }
            }
            Event::MigrationCommitted {
                migration,
                duration,
                rows,
            } => self.migration_committed(migration, duration, rows),
            Event::MigrationFailed { migration, .. } => {
                if self.multi.is_some() {
                    self.finish();
                    // Straight to stderr: the bars are gone, and their printer
                    // would pad the line to the terminal's width.
                    eprintln!(
                        "{} {} {}",
                        style("✗").for_stderr().red(),
                        migration.version,
                        migration.name
                    );
                }
            }
            Event::Output {
                migration, line, ..
            } => self.output(migration, line),
            Event::Warning { message } => self.line(format!(
                "{} {message}",
                style("warning:").for_stderr().yellow().bold()
            )),
        }
    }

    fn ticker(&self) -> Option<Ticker> {
        // Called from SQLite's progress handler while a statement runs, so it
        // reflects real work, not a timer (issue "No surprises": progress never
        // looks hung). On a terminal: redraw both elapsed times.
        if let (Some(current), Some(overall)) = (self.current.clone(), self.overall.clone()) {
            return Some(Arc::new(move |_elapsed: Duration| {
                current.tick();
                overall.tick();
            }));
        }
        if self.ui.quiet {
            return None;
        }
        // Plain lines: one every few seconds for a statement still running.
        let running = self.running.clone();
        let noted = Arc::new(AtomicU64::new(0));
        Some(Arc::new(move |elapsed: Duration| {
            let bucket = elapsed.as_secs() / STILL_RUNNING_EVERY;
            let last = noted.load(Ordering::Relaxed);
            if bucket < last {
                // A new statement started: count again from its start.
                noted.store(bucket, Ordering::Relaxed);
            } else if bucket > last {
                noted.store(bucket, Ordering::Relaxed);
                let what = running.lock().map(|r| r.clone()).unwrap_or_default();
                eprintln!("  {what}: still running ({} s)", elapsed.as_secs());
            }
        }))
    }

    fn notify(&self) -> Option<Notify> {
        Some(super::lock_wait::notify(self.ui, self.multi.clone()))
    }

    fn interrupt(&self) -> Option<&Interrupt> {
        Some(&self.signals.interrupt)
    }

    fn confirm_destructive(&mut self, _items: &[Destructive]) -> bool {
        if self.ui.yes || !self.ui.interactive {
            // No terminal: the list above is the warning; the verified backup is the net.
            return true;
        }
        self.finish();
        prompt::confirm(
            self.ui,
            self.signals,
            "Run these migrations?",
            "destructive migrations",
        )
        .unwrap_or(false)
    }
}

/// Migration times in milliseconds with a decimal: most take well under one.
/// (indicatif's HumanDuration rounds to whole seconds, which would say "0s".)
pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else if ms < 10_000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

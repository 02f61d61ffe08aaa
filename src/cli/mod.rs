//! The `backstop` command line: parse, resolve settings once, dispatch to one
//! library call per command, render, and turn errors into exit codes. The only
//! place that prints, prompts or touches the terminal.

mod args;
mod cmd;
pub mod exit;
mod hint;
mod lock_wait;
mod progress;
mod prompt;
mod render;
mod usage;

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use clap::Parser;

use crate::error::Error;
use crate::observe::Interrupt;
use crate::settings::{self, Overrides, Settings};
use args::{Cli, ColorChoice, Command};
use exit::Exit;

/// How to talk to the user, decided once from flags and the terminal.
#[derive(Debug, Clone)]
pub struct Ui {
    /// Prompts are allowed: stdin and stderr are terminals and no --no-input.
    pub interactive: bool,
    /// Progress bars instead of plain lines: stderr is a terminal.
    pub bars: bool,
    pub quiet: bool,
    pub verbose: bool,
    pub json: bool,
    pub yes: bool,
}

/// Shared with the Ctrl-C handler.
#[derive(Clone, Default)]
pub struct Signals {
    pub interrupt: Interrupt,
    presses: Arc<AtomicUsize>,
    /// A prompt is on screen: a second Ctrl-C leaves at once.
    pub prompting: Arc<AtomicBool>,
}

impl Signals {
    pub fn interrupted(&self) -> bool {
        self.presses.load(Ordering::SeqCst) > 0
    }
}

pub fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage::report(&e),
    };
    let g = &cli.global;
    configure_color(g.color);
    let terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let ui = Ui {
        interactive: terminal && !g.no_input,
        // SPEC: plain lines unless both stdin and stderr are terminals.
        bars: terminal && !g.quiet,
        quiet: g.quiet,
        verbose: g.verbose,
        json: g.json,
        yes: g.yes,
    };
    let signals = Signals::default();
    install_ctrlc(&signals);

    if let Command::Completions { shell } = &cli.command {
        use clap::CommandFactory;
        // Into a buffer first: clap_complete panics when its writer fails, and
        // `backstop completions bash | head` closes the pipe (STYLE 4: a broken
        // pipe exits quietly).
        let mut script = Vec::new();
        clap_complete::generate(*shell, &mut Cli::command(), "backstop", &mut script);
        render::out(&String::from_utf8_lossy(&script));
        return exit::code(&exit::Exit::Ok);
    }
    let overrides = Overrides {
        database: g.database.clone(),
        migrations: g.migrations.clone(),
        backups: g.backups.clone(),
        keep: g.keep,
        busy_timeout_ms: g.busy_timeout_ms,
        python: g.python.clone(),
        config: g.config.clone(),
        extensions: g.load_extension.clone(),
        placeholders: g.placeholder.clone(),
    };
    // A setting in the environment that is not UTF-8 is refused, never
    // skipped: skipping BACKSTOP_DATABASE would work on another database.
    if let Some(name) = settings::ENV_NAMES
        .iter()
        .find(|k| std::env::var_os(k).is_some_and(|v| v.to_str().is_none()))
    {
        return report(&Error::Setting {
            setting: name,
            value: std::env::var_os(name)
                .map(|v| v.to_string_lossy().into_owned())
                .unwrap_or_default(),
            expected: "valid UTF-8 (backstop records paths in JSON manifests)",
        });
    }
    let result = settings::resolve(&overrides, &|k| std::env::var(k).ok()).and_then(|settings| {
        // Every command's waits for a lock stop on Ctrl-C and say what they
        // wait for (issues 9, 10); steps with an observer refine this.
        crate::db::busy::within(
            &settings.database,
            settings.busy_timeout,
            &signals.interrupt,
            Some(lock_wait::notify(&ui, None)),
            || dispatch(cli.command, &settings, &ui, &signals),
        )
    });
    match result {
        Ok(done) => exit::code(&done),
        Err(e) => {
            if ui.json {
                // Scripts asked for one JSON document: they get one on errors too.
                let _ = render::json(&render::error_document(&e));
            }
            report(&e)
        }
    }
}

fn dispatch(
    command: Command,
    settings: &Settings,
    ui: &Ui,
    signals: &Signals,
) -> Result<Exit, Error> {
    match command {
        Command::New { name, timestamp } => cmd::new::run(settings, ui, &name, timestamp),
        Command::Status { exit_code } => cmd::status::run(settings, ui, exit_code),
        Command::Up(args) => cmd::up::run(settings, ui, signals, &args),
        Command::Down {
            steps,
            to,
            no_backup,
        } => cmd::down::run(settings, ui, signals, steps, to.as_deref(), no_backup),
        Command::Backup { label } => cmd::backup::run(settings, ui, signals, label.as_deref()),
        Command::Backups => cmd::backup::list(settings, ui, signals),
        Command::Restore { backup, latest } => {
            cmd::restore::run(settings, ui, signals, backup, latest)
        }
        Command::Verify => cmd::verify::run(settings, ui, signals),
        Command::Repair { version, no_backup } => {
            cmd::repair::run(settings, ui, signals, &version, no_backup)
        }
        Command::Baseline {
            version,
            force,
            no_backup,
        } => cmd::baseline::run(settings, ui, signals, &version, force, no_backup),
        Command::Adopt {
            from,
            dry_run,
            accept_edits,
            force,
            no_backup,
        } => cmd::adopt::run(
            settings,
            ui,
            signals,
            &crate::adopt::AdoptOptions {
                from: from.map(Into::into),
                accept_edits,
                force,
                no_backup,
            },
            dry_run,
        ),
        Command::Log => cmd::log::run(settings, ui),
        Command::Completions { .. } => Ok(Exit::Ok),
    }
}

/// Prints `error: …` and `hint: …` to stderr once; returns the exit code.
pub fn report(e: &Error) -> i32 {
    let mut err = std::io::stderr().lock();
    let _ = render::error(&mut err, e);
    exit::code_of(e)
}

fn configure_color(choice: ColorChoice) {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let on = match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => !no_color && std::io::stderr().is_terminal(),
    };
    let on_stdout = match choice {
        ColorChoice::Auto => !no_color && std::io::stdout().is_terminal(),
        _ => on,
    };
    console::set_colors_enabled_stderr(on);
    console::set_colors_enabled(on_stdout);
}

fn install_ctrlc(signals: &Signals) {
    let s = signals.clone();
    let _ = ctrlc::set_handler(move || {
        let n = s.presses.fetch_add(1, Ordering::SeqCst);
        if n > 0 && s.prompting.load(Ordering::SeqCst) {
            // Second Ctrl-C at the restore prompt: leave without restoring.
            let _ = console::Term::stderr().show_cursor();
            eprintln!("\ninterrupted; nothing was restored");
            std::process::exit(exit::code(&Exit::Interrupted));
        }
        // Stop what runs: the statement (the core rolls back), a copy, a
        // wait for a lock. Also the restore chosen after a first Ctrl-C.
        s.interrupt.trigger();
    });
}

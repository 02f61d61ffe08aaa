//! After a failed `up` or `down` (SPEC `up` step 5, issue 9): report the
//! failure, then restore the pre-run backup, keep the database, or revert the
//! run's migrations with their down sections, decided by `--on-failure`, by
//! the user on a terminal, or (no terminal, no flag) keep. Never a default or
//! a flag without `--force` that discards other programs' writes: they are
//! checked before the prompt, again after the answer, and once more under the
//! restore's lock (`restore::run`).

use crate::apply::RunFailure;
use crate::backup::BackupInfo;
use crate::cli::args::OnFailure;
use crate::cli::exit::Exit;
use crate::cli::progress::Progress;
use crate::cli::prompt::{self, Answer};
use crate::cli::{render, report, Signals, Ui};
use crate::error::Error;
use crate::settings::Settings;

/// What the command line said about failures.
#[derive(Debug, Clone, Copy)]
pub struct Decide {
    pub on_failure: OnFailure,
    /// `--force`: `--on-failure restore` also over other programs' writes.
    pub force: bool,
}

/// How the failure was dealt with, for the JSON document.
enum Outcome {
    Kept,
    Restored(Box<crate::restore::RestoreReport>),
    Reverted(Box<crate::down::DownReport>),
    /// Ctrl-C or Esc at the prompt.
    Left,
}

pub fn after_failure(
    settings: &Settings,
    ui: &Ui,
    signals: &Signals,
    failure: &RunFailure,
    decide: Decide,
) -> Exit {
    let failed = Error::Migration(Box::new(failure.clone()));
    report(&failed);
    // Before anything of ours writes (a restore changes the data version too).
    let others_wrote = failure.others_wrote_now();
    let restore_cmd = failure.backup.as_ref().map(|b| {
        format!(
            "backstop restore --database {} {} --yes",
            quote(&settings.database.display().to_string()),
            quote(&b.path.display().to_string())
        )
    });
    let ctx = Ctx {
        settings,
        ui,
        signals,
        failure,
        stopped: std::cell::Cell::new(false),
    };
    let outcome = ctx.decide(decide, restore_cmd.as_deref());
    if let Outcome::Kept = outcome {
        ctx.kept(restore_cmd.as_deref());
    }
    if ui.json {
        let (restored, reverted) = match &outcome {
            Outcome::Restored(r) => (Some(serde_json::json!(r)), None),
            Outcome::Reverted(r) => (None, Some(serde_json::json!(r))),
            _ => (None, None),
        };
        // The keys of every error document (issue 13: programs read them),
        // the failure, and what was done about it.
        let mut doc = render::error_document(&failed);
        doc["failure"] = serde_json::to_value(failure).unwrap_or_default();
        doc["others_wrote"] = others_wrote.into();
        doc["restored"] = restored.is_some().into();
        doc["restore"] = restored.unwrap_or_default();
        doc["reverted"] = reverted.unwrap_or_default();
        doc["restore_command"] = restore_cmd.clone().into();
        let _ = render::json(&doc);
    }
    match outcome {
        Outcome::Left => {
            eprintln!("left without restoring");
            Exit::Interrupted
        }
        // Ctrl-C during the restore or the revert: stopped, nothing changed.
        _ if ctx.stopped.get() => Exit::Interrupted,
        _ => Exit::Reported(failed),
    }
}

/// What became of a restore.
enum Restored {
    Done(Outcome),
    /// Others wrote just before the copy-in: ask again.
    Again,
    /// Failed or refused (said why); nothing was restored.
    Not,
}

struct Ctx<'a> {
    settings: &'a Settings,
    ui: &'a Ui,
    signals: &'a Signals,
    failure: &'a RunFailure,
    /// Ctrl-C stopped the restore or the revert.
    stopped: std::cell::Cell<bool>,
}

impl Ctx<'_> {
    fn say(&self, text: &str) {
        if !self.ui.quiet {
            eprintln!("{text}");
        }
    }

    fn db(&self) -> String {
        self.settings.database.display().to_string()
    }

    fn decide(&self, decide: Decide, restore_cmd: Option<&str>) -> Outcome {
        let f = self.failure;
        if f.applied_nothing() {
            // Issue 9: restoring would undo nothing of this run, only what
            // others wrote since; so no prompt and no restore.
            self.say("nothing of this run was applied, so there is nothing to undo");
            return Outcome::Kept;
        }
        match decide.on_failure {
            OnFailure::Keep => Outcome::Kept,
            OnFailure::Down => self.revert_or_keep(),
            OnFailure::Restore => {
                let Some(b) = &f.backup else {
                    self.say("no backup was taken (--no-backup): the database stays as it is");
                    return Outcome::Kept;
                };
                if f.others_wrote_now() && !decide.force {
                    self.say(&self.not_restoring());
                    return Outcome::Kept;
                }
                let seen = f.watch.as_ref().map(|w| w.baseline());
                match self.restore(b, decide.force, seen) {
                    Restored::Done(done) => done,
                    Restored::Again | Restored::Not => Outcome::Kept,
                }
            }
            OnFailure::Ask if !self.ui.interactive => {
                if f.others_wrote_now() && restore_cmd.is_some() {
                    self.say(&format!("note: {}", self.others_wrote()));
                }
                Outcome::Kept
            }
            OnFailure::Ask => self.ask(),
        }
    }

    /// The prompt, asked again whenever other programs wrote meanwhile.
    fn ask(&self) -> Outcome {
        let f = self.failure;
        loop {
            let others = f.others_wrote_now();
            let seen = f.watch.as_ref().and_then(|w| w.version());
            let mut items = Vec::new();
            let restore_at = f.backup.as_ref().map(|b| {
                if others {
                    eprintln!("warning: {}", self.others_wrote());
                }
                eprintln!("backup taken before this run: {}", b.path.display());
                items.push(restore_item(b, others));
                items.len() - 1
            });
            items.push(self.keep_item());
            let keep_at = items.len() - 1;
            let down_at = f.revertible.then(|| {
                items.push(format!(
                    "Revert this run's {} with their down sections (keeps other programs' writes)",
                    crate::cli::cmd::up::plural(f.applied.len(), "migration")
                ));
                items.len() - 1
            });
            let title = if f.rolled_back {
                "The failed migration was rolled back. What now?"
            } else {
                "The failed migration ran outside a transaction and is partly applied. What now?"
            };
            // The default loses nothing: restore only when nobody else wrote.
            let default = match restore_at {
                Some(i) if !others => i,
                _ => keep_at,
            };
            let chosen = match prompt::select(self.signals, title, &items, default) {
                Answer::Chose(i) => i,
                Answer::Left => return Outcome::Left,
            };
            if Some(chosen) == down_at {
                return self.revert_or_keep();
            }
            let (Some(i), Some(b)) = (restore_at, &f.backup) else {
                return Outcome::Kept;
            };
            if chosen != i {
                return Outcome::Kept;
            }
            // Checked again after the answer: the prompt may have waited long.
            let now = f.watch.as_ref().and_then(|w| w.version());
            if f.watch.is_some() && (now != seen || now.is_none()) {
                eprintln!(
                    "another program wrote to {} while you were choosing; restoring now would \
                     discard that too",
                    self.db()
                );
                continue;
            }
            // Checked again before the copy-in against what the prompt showed.
            match self.restore(b, false, seen) {
                Restored::Done(done) => return done,
                Restored::Again => continue,
                Restored::Not => return Outcome::Kept,
            }
        }
    }

    fn not_restoring(&self) -> String {
        format!(
            "not restoring: {}; the database is kept at the last good migration. Pass --force \
             as well to restore anyway",
            self.others_wrote()
        )
    }

    /// What restoring would discard, said before it is offered or refused.
    fn others_wrote(&self) -> String {
        if self.failure.script_wrote {
            // Issue 12: a script opens the database itself, so its writes
            // cannot be told from another program's.
            format!(
                "a script of this run changed {}, and backstop cannot tell its writes from \
                 another program's; restoring the backup would discard every write since it \
                 was taken",
                self.db()
            )
        } else {
            format!(
                "another program wrote to {} after the backup was taken; restoring the backup \
                 would discard those writes",
                self.db()
            )
        }
    }

    fn keep_item(&self) -> String {
        let f = self.failure;
        match f.applied.last() {
            Some(a) => format!(
                "Keep the database as it is: at {} ({} of this run applied)",
                a.version,
                crate::cli::cmd::up::plural(f.applied.len(), "migration")
            ),
            None => format!(
                "Keep the database as it is (migration {} is partly applied: {})",
                f.version,
                f.partly_applied_because()
            ),
        }
    }

    /// Restores the pre-run backup. When it does not happen the reason is
    /// printed, and the database is as the run left it.
    /// `force` accepts other programs' writes; otherwise `seen` is the run
    /// connection's data version the decision was made on (None when there
    /// is no such connection: then only the restore's own file check holds).
    fn restore(&self, backup: &BackupInfo, force: bool, seen: Option<i64>) -> Restored {
        let (ui, signals) = (self.ui, self.signals);
        // A Ctrl-C that stopped the run is answered; this is a new request.
        signals.interrupt.reset();
        let mut progress = Progress::new(ui, signals);
        let restored = crate::restore::undo_run(
            self.settings,
            self.failure,
            &backup.path,
            force,
            seen,
            &mut progress,
            &signals.interrupt,
        );
        progress.finish();
        drop(progress);
        match restored {
            Ok(r) => {
                self.say(&format!(
                    "restored {} from {}",
                    self.db(),
                    backup.path.display()
                ));
                if let Some(s) = &r.safety {
                    self.say(&format!(
                        "the state before restoring is saved in {}",
                        s.path.display()
                    ));
                }
                Restored::Done(Outcome::Restored(Box::new(r)))
            }
            Err(Error::WrittenMeanwhile { .. }) if ui.interactive => {
                eprintln!(
                    "another program wrote to {} just now; nothing was restored",
                    self.db()
                );
                // Back to the prompt, which says what it knows now.
                Restored::Again
            }
            Err(Error::WrittenMeanwhile { .. }) => {
                self.say(&self.not_restoring());
                Restored::Not
            }
            Err(e) => {
                self.stopped.set(matches!(e, Error::Interrupted));
                report(&e);
                Restored::Not
            }
        }
    }

    fn revert_or_keep(&self) -> Outcome {
        let f = self.failure;
        if !f.revertible {
            self.say(
                "cannot revert this run with down sections: not every migration it applied has \
                 one (or nothing was applied, or the failed one was not rolled back)",
            );
            return Outcome::Kept;
        }
        let versions: Vec<_> = f.applied.iter().map(|a| a.version.clone()).collect();
        self.signals.interrupt.reset();
        let mut progress = Progress::new(self.ui, self.signals);
        let done = crate::down::revert(
            self.settings,
            &versions,
            &mut progress,
            &self.signals.interrupt,
        );
        progress.finish();
        drop(progress);
        match done {
            Ok(r) => {
                self.say(&format!(
                    "reverted {} of this run with their down sections; other programs' writes are kept",
                    crate::cli::cmd::up::plural(r.reverted.len(), "migration")
                ));
                Outcome::Reverted(Box::new(r))
            }
            Err(e) => {
                self.stopped.set(matches!(e, Error::Interrupted));
                report(&e);
                Outcome::Kept
            }
        }
    }

    fn kept(&self, restore_cmd: Option<&str>) {
        let f = self.failure;
        let db = self.db();
        match f.applied.last() {
            Some(a) => self.say(&format!("kept {db} at version {}", a.version)),
            // transaction:false: its statements before the failure stayed.
            None if !f.rolled_back => self.say(&format!(
                "kept {db}; migration {} is partly applied ({}) and not recorded",
                f.version,
                f.partly_applied_because()
            )),
            None => self.say(&format!("kept {db}; nothing of this run was applied")),
        }
        if let (Some(cmd), false) = (restore_cmd, f.applied_nothing()) {
            self.say(&format!("to undo the whole run: {cmd}"));
        }
    }
}

fn restore_item(b: &BackupInfo, others: bool) -> String {
    let before = b
        .manifest
        .newest_version
        .as_ref()
        .map(|v| format!("version {v}"))
        .unwrap_or("no migrations".into());
    // Short items: they must fit a narrow terminal without wrapping.
    if others {
        format!(
            "Restore that backup: undo this run AND discard the other writes (back to {before})"
        )
    } else {
        format!("Restore that backup: undo this whole run (back to {before})")
    }
}

/// A word the user can paste into a shell.
fn quote(s: &str) -> String {
    shlex::try_quote(s)
        .map(|q| q.into_owned())
        .unwrap_or_else(|_| s.to_owned())
}

//! Prompts (dialoguer). Each one defaults to the safe answer; without a
//! terminal it fails with the flag that decides instead.

use std::sync::atomic::Ordering;

use dialoguer::theme::ColorfulTheme;
use dialoguer::{Confirm, Select};

use super::{Signals, Ui};
use crate::error::Error;

/// Restores the cursor and clears the "prompting" flag however the prompt ends.
struct Guard<'a>(&'a Signals);

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.0.prompting.store(false, Ordering::SeqCst);
        let _ = console::Term::stderr().show_cursor();
    }
}

/// The user's answer, or how the prompt ended instead.
pub enum Answer<T> {
    Chose(T),
    /// Ctrl-C or Esc at the prompt.
    Left,
}

/// Yes/no; `--yes` answers yes, and without a terminal it is an error naming `--yes`.
pub fn confirm(ui: &Ui, signals: &Signals, question: &str, what: &str) -> Result<bool, Error> {
    if ui.yes {
        return Ok(true);
    }
    if !ui.interactive {
        return Err(Error::NeedsConfirmation {
            what: what.to_owned(),
            flag: "--yes",
        });
    }
    signals.prompting.store(true, Ordering::SeqCst);
    let _guard = Guard(signals);
    match Confirm::with_theme(&ColorfulTheme::default())
        .with_prompt(question)
        .default(false)
        .interact_opt()
    {
        Ok(Some(yes)) => Ok(yes),
        _ => Ok(false),
    }
}

/// Pick one of `items`; `default` is highlighted first.
pub fn select(
    signals: &Signals,
    question: &str,
    items: &[String],
    default: usize,
) -> Answer<usize> {
    signals.prompting.store(true, Ordering::SeqCst);
    let _guard = Guard(signals);
    match Select::with_theme(&ColorfulTheme::default())
        .with_prompt(question)
        .items(items)
        .default(default)
        .interact_opt()
    {
        Ok(Some(i)) => Answer::Chose(i),
        _ => Answer::Left,
    }
}

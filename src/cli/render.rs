//! Text and JSON rendering: tables for people, one JSON document for scripts.

use std::io::{self, Write};

use console::style;

use crate::error::Error;

pub fn error(w: &mut impl Write, e: &Error) -> io::Result<()> {
    writeln!(w, "{} {e}", style("error:").for_stderr().red().bold())?;
    if let Some(h) = super::exit::hint(e) {
        writeln!(w, "{} {h}", style("hint:").for_stderr().cyan().bold())?;
    }
    Ok(())
}

/// Prints one JSON document on stdout. A closed pipe is not an error.
pub fn json<T: serde::Serialize>(value: &T) -> Result<(), Error> {
    let mut out = io::stdout().lock();
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".into());
    match writeln!(out, "{text}") {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(Error::io("<stdout>", e)),
        _ => Ok(()),
    }
}

/// Prints lines on stdout, ignoring a closed pipe (`backstop log | head`).
pub fn out(text: &str) {
    let mut out = io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// A left-aligned table with a header row; columns sized to content.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(console::measure_text_width(c));
            }
        }
    }
    let mut s = String::new();
    let fmt_row = |cells: Vec<String>, s: &mut String| {
        let n = cells.len();
        for (i, c) in cells.into_iter().enumerate() {
            let pad = widths[i].saturating_sub(console::measure_text_width(&c));
            s.push_str(&c);
            if i + 1 < n {
                s.push_str(&" ".repeat(pad + 2));
            }
        }
        s.push('\n');
    };
    fmt_row(
        header.iter().map(|h| style(h).bold().to_string()).collect(),
        &mut s,
    );
    for r in rows {
        fmt_row(r.clone(), &mut s);
    }
    s
}

pub fn state(state: crate::plan::State) -> String {
    use crate::plan::State::*;
    let text = state.to_string();
    match state {
        Applied => style(text).green().to_string(),
        Pending => style(text).cyan().to_string(),
        Edited | Missing | OutOfOrder => style(text).red().bold().to_string(),
    }
}

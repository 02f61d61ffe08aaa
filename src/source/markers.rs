//! Section markers inside a migration file: dbmate (`-- migrate:up` with
//! options), goose (`-- +goose Up`, `NO TRANSACTION`) and sqlx's
//! `-- no-transaction` first line. A file is never run as all-up while it
//! holds another tool's down marker.

use std::path::Path;

use super::{FileError, FileErrorKind};
use crate::checksum::normalize_owned;
use crate::migration::{Options, Section, Text};

/// A recognised marker line.
#[derive(Debug, PartialEq, Eq)]
enum Marker {
    Up(Options),
    Down(Options),
    /// goose's `NO TRANSACTION`, which applies to the whole file.
    NoTransaction,
    /// goose's `StatementBegin`/`StatementEnd`: not needed, SQLite splits statements.
    Ignored,
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Dialect {
    Dbmate,
    Goose,
}

/// Recognises a marker line; `Ok(None)` for ordinary lines.
fn marker(line: &str) -> std::result::Result<Option<(Dialect, Marker)>, FileErrorKind> {
    let Some(rest) = line.trim_end().strip_prefix("--") else {
        return Ok(None);
    };
    let rest = rest.trim_start();
    if let Some(after) = rest.strip_prefix("migrate:") {
        let mut words = after.split_whitespace();
        let which = words.next().unwrap_or("");
        let mut options = Options::default();
        for w in words {
            match w {
                "transaction:false" => options.transaction = false,
                "transaction:true" => options.transaction = true,
                "foreign_keys:on" => options.foreign_keys = true,
                "foreign_keys:off" => options.foreign_keys = false,
                other => return Err(FileErrorKind::UnknownOption(other.to_owned())),
            }
        }
        return match which {
            "up" => Ok(Some((Dialect::Dbmate, Marker::Up(options)))),
            "down" => Ok(Some((Dialect::Dbmate, Marker::Down(options)))),
            _ => Err(FileErrorKind::UnknownMarker(format!("migrate:{which}"))),
        };
    }
    if let Some(after) = rest.strip_prefix("+goose") {
        let words: Vec<String> = after
            .split_whitespace()
            .map(|w| w.to_ascii_lowercase())
            .collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        return match words.as_slice() {
            ["up"] => Ok(Some((Dialect::Goose, Marker::Up(Options::default())))),
            ["down"] => Ok(Some((Dialect::Goose, Marker::Down(Options::default())))),
            ["no", "transaction"] => Ok(Some((Dialect::Goose, Marker::NoTransaction))),
            ["statementbegin"] | ["statementend"] => Ok(Some((Dialect::Goose, Marker::Ignored))),
            _ => Err(FileErrorKind::UnknownMarker(format!("+goose{after}"))),
        };
    }
    Ok(None)
}

/// A `<version>_<name>.sql` file: dbmate or goose markers, or none (all up).
/// The up section keeps the file's own buffer (issue 14: a 100 MB migration
/// is not copied to be split).
pub(super) fn parse_single(
    path: &Path,
    raw: String,
) -> std::result::Result<(Section, Option<Section>), FileError> {
    let text = normalize_owned(raw);
    let err = |line: usize, kind| FileError {
        path: path.to_path_buf(),
        line: Some(line),
        kind,
    };
    let mut dialect: Option<Dialect> = None;
    let mut up: Option<(usize, usize, Options)> = None; // (byte start, first line, options)
    let mut down: Option<(usize, usize, Options)> = None;
    let mut up_end = None;
    let mut no_transaction = false;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let n = i + 1;
        let start = offset;
        offset += line.len();
        let Some((d, m)) = marker(line).map_err(|k| err(n, k))? else {
            continue;
        };
        if dialect.is_some_and(|x| x != d) {
            return Err(err(n, FileErrorKind::MixedMarkers));
        }
        dialect = Some(d);
        match m {
            Marker::Up(o) => {
                if up.is_some() {
                    return Err(err(n, FileErrorKind::DuplicateMarker));
                }
                if down.is_some() {
                    // An up section after the down section: unusual, but unambiguous
                    // only if we refuse it.
                    return Err(err(n, FileErrorKind::DuplicateMarker));
                }
                if !only_comments(&text[..start]) {
                    return Err(err(n, FileErrorKind::TextBeforeUp));
                }
                up = Some((offset, n + 1, o));
            }
            Marker::Down(o) => {
                if down.is_some() {
                    return Err(err(n, FileErrorKind::DuplicateMarker));
                }
                if up.is_none() {
                    return Err(err(n, FileErrorKind::DownWithoutUp));
                }
                up_end = Some(start);
                down = Some((offset, n + 1, o));
            }
            Marker::NoTransaction => no_transaction = true,
            Marker::Ignored => {}
        }
    }
    let section = |text: String, first_line: usize, mut options: Options| {
        if no_transaction {
            options.transaction = false;
        }
        Section {
            path: path.to_path_buf(),
            text: Text::new(text),
            first_line,
            options,
        }
    };
    match up {
        // No markers at all: the whole file is up, with sqlx's first-line option.
        None => Ok((plain_section(path, text), None)),
        Some((start, line, o)) => {
            let end = up_end.unwrap_or(text.len());
            let down = down.map(|(s, l, o)| section(text[s..].to_owned(), l, o));
            let mut text = text;
            text.truncate(end);
            text.drain(..start);
            Ok((section(text, line, o), down))
        }
    }
}

/// One file of a sqlx/golang-migrate pair, or a file without markers.
pub(super) fn parse_pair_file(path: &Path, raw: String) -> std::result::Result<Section, FileError> {
    let text = normalize_owned(raw);
    for (i, line) in text.lines().enumerate() {
        // A pair file never holds markers: a down marker here would run as up.
        if let Some((_, m)) = marker(line).map_err(|kind| FileError {
            path: path.to_path_buf(),
            line: Some(i + 1),
            kind,
        })? {
            let kind = match m {
                Marker::Down(_) => FileErrorKind::ForeignDownMarker,
                _ => FileErrorKind::UnknownMarker(line.trim().to_owned()),
            };
            return Err(FileError {
                path: path.to_path_buf(),
                line: Some(i + 1),
                kind,
            });
        }
    }
    Ok(plain_section(path, text))
}

fn plain_section(path: &Path, text: String) -> Section {
    let first = text.lines().next().unwrap_or("");
    let transaction = first.trim() != "-- no-transaction";
    Section {
        path: path.to_path_buf(),
        text: Text::new(text),
        first_line: 1,
        options: Options {
            transaction,
            foreign_keys: false,
        },
    }
}

/// True if `text` holds only blank lines and `--` comment lines.
fn only_comments(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with("--")
    })
}

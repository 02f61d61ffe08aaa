//! Walks a section's text one statement at a time, letting SQLite's own parser
//! decide where each statement ends (the tail of each prepare), so triggers and
//! strings with semicolons work and no hand-written splitter is involved.

use std::ffi::CStr;
use std::os::raw::{c_char, c_int};

use rusqlite::{ffi, Connection};

/// One statement of a section: byte offsets into the section's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Offset of the statement's first token (leading comments skipped), for line numbers.
    pub start: usize,
    /// Offset just past the statement (after its `;`, if any).
    pub end: usize,
}

/// A statement SQLite could not prepare, at `offset` (its first token).
#[derive(Debug)]
pub struct PrepareError {
    pub offset: usize,
    pub error: rusqlite::Error,
}

/// Finds the next statement in `text` starting at byte `from`. `Ok(None)` when only
/// whitespace and comments remain. Preparing needs the schema as it is at this
/// point of the migration, so call it on the connection that runs the statements.
pub fn next(conn: &Connection, text: &str, mut from: usize) -> Result<Option<Span>, PrepareError> {
    loop {
        from += skip_trivia(&text[from..]);
        if from >= text.len() {
            return Ok(None);
        }
        let rest = &text[from..];
        let fail = |error| PrepareError {
            offset: from,
            error,
        };
        let len = c_int::try_from(rest.len()).map_err(|_| {
            fail(rusqlite::Error::SqliteFailure(
                ffi::Error::new(ffi::SQLITE_TOOBIG),
                Some("migration text is larger than 2 GiB".into()),
            ))
        })?;
        let mut stmt: *mut ffi::sqlite3_stmt = std::ptr::null_mut();
        let mut tail: *const c_char = std::ptr::null();
        // SAFETY: `conn.handle()` is valid while `conn` lives; `rest` outlives the
        // call and its length is passed, so no NUL terminator is needed; the
        // statement is finalized before returning and never escapes.
        let (rc, consumed, empty) = unsafe {
            let db = conn.handle();
            let rc = ffi::sqlite3_prepare_v2(db, rest.as_ptr().cast(), len, &mut stmt, &mut tail);
            let consumed = if tail.is_null() {
                rest.len()
            } else {
                (tail as usize).saturating_sub(rest.as_ptr() as usize)
            };
            let empty = stmt.is_null();
            let err = if rc != ffi::SQLITE_OK {
                let msg = CStr::from_ptr(ffi::sqlite3_errmsg(db))
                    .to_string_lossy()
                    .into_owned();
                Some(rusqlite::Error::SqliteFailure(
                    ffi::Error::new(rc),
                    Some(msg),
                ))
            } else {
                None
            };
            ffi::sqlite3_finalize(stmt);
            (err, consumed, empty)
        };
        if let Some(e) = rc {
            return Err(fail(e));
        }
        if empty {
            // A lone `;`: nothing to run, move past it.
            if consumed == 0 {
                return Ok(None);
            }
            from += consumed;
            continue;
        }
        let consumed = consumed.clamp(1, rest.len());
        return Ok(Some(Span {
            start: from,
            end: from + consumed,
        }));
    }
}

/// Length of the whitespace, comments and empty statements (`;`) at the start of
/// `s`. Only used to point line numbers at a statement's first token; SQLite
/// decides where statements end.
pub fn skip_trivia(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b';') {
            i += 1;
        }
        if b[i..].starts_with(b"--") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            match s[i + 2..].find("*/") {
                Some(p) => i += 2 + p + 2,
                None => return b.len(),
            }
        } else {
            return i;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(sql: &str) -> Vec<&str> {
        let conn = Connection::open_in_memory().unwrap();
        let mut out = Vec::new();
        let mut from = 0;
        while let Some(span) = next(&conn, sql, from).unwrap() {
            let text = &sql[span.start..span.end];
            conn.execute_batch(text).unwrap();
            out.push(text.trim());
            from = span.end;
        }
        out
    }

    #[test]
    fn splits_on_sqlites_terms() {
        let sql = "-- c1\nCREATE TABLE t(x TEXT);;\n/* c; 2 */ INSERT INTO t VALUES ('a;b');\n\
                   CREATE TRIGGER tr AFTER INSERT ON t BEGIN\n  UPDATE t SET x = x || ';';\n  SELECT 1;\nEND;\n-- trailing";
        let parts = split(sql);
        assert_eq!(parts.len(), 3, "{parts:?}");
        assert_eq!(parts[1], "INSERT INTO t VALUES ('a;b');");
        assert!(parts[2].starts_with("CREATE TRIGGER") && parts[2].ends_with("END;"));
    }

    #[test]
    fn statement_without_semicolon_at_end() {
        assert_eq!(split("CREATE TABLE t(x)"), vec!["CREATE TABLE t(x)"]);
        assert!(split("  -- only a comment\n").is_empty());
        assert!(split("").is_empty());
    }

    #[test]
    fn failing_statement_reports_its_offset() {
        let conn = Connection::open_in_memory().unwrap();
        let sql = "SELECT 1;\n\n  INSRT INTO t VALUES (1);";
        let first = next(&conn, sql, 0).unwrap().unwrap();
        let err = next(&conn, sql, first.end).unwrap_err();
        assert_eq!(&sql[err.offset..err.offset + 5], "INSRT");
    }

    #[test]
    fn trivia() {
        assert_eq!(skip_trivia("  -- x\n /* y */ SELECT"), 16);
        assert_eq!(skip_trivia("/* unterminated"), 15);
    }
}

//! Walks a section's text one statement at a time, letting SQLite's own parser
//! decide where each statement ends (the tail of each prepare), so triggers and
//! strings with semicolons work and no hand-written splitter is involved.

use std::borrow::Cow;
use std::ffi::CStr;
use std::marker::PhantomData;
use std::os::raw::{c_char, c_int};

use rusqlite::{ffi, Connection};

use crate::migration::Section;

/// One statement of a section, prepared on the connection that found it.
#[derive(Debug)]
pub struct Statement<'a, 'c> {
    /// The statement's text, from its first token to just past its `;`.
    pub sql: &'a str,
    /// 1-based line of the first token in the file.
    pub line: usize,
    prepared: Prepared<'c>,
}

impl Statement<'_, '_> {
    /// Runs the statement to completion (rows, if any, are discarded).
    pub fn run(&mut self) -> rusqlite::Result<()> {
        self.prepared.run()
    }
}

/// A prepared statement owned here, finalized on drop. Running the statement
/// that was prepared to find its end avoids preparing every statement twice.
/// It borrows its connection, so it cannot outlive it (finalizing a statement
/// of a closed connection is undefined behaviour).
#[derive(Debug)]
struct Prepared<'c> {
    stmt: *mut ffi::sqlite3_stmt,
    conn: &'c Connection,
    _not_send: PhantomData<*mut ()>,
}

impl Prepared<'_> {
    fn run(&mut self) -> rusqlite::Result<()> {
        loop {
            // SAFETY: `stmt` is a valid statement of `conn`, which this borrows,
            // until it is finalized on drop.
            let rc = unsafe { ffi::sqlite3_step(self.stmt) };
            match rc {
                ffi::SQLITE_ROW => continue,
                ffi::SQLITE_DONE => return Ok(()),
                _ => return Err(last_error(self.conn, rc)),
            }
        }
    }
}

impl Drop for Prepared<'_> {
    fn drop(&mut self) {
        // SAFETY: finalizing a valid (or null) statement exactly once, while
        // its connection is still open (borrowed by `self`).
        unsafe {
            ffi::sqlite3_finalize(self.stmt);
        }
    }
}

/// The connection's error for a failed call that returned `rc`.
fn last_error(conn: &Connection, rc: c_int) -> rusqlite::Error {
    // SAFETY: the handle is valid while `conn` lives; errmsg returns a
    // NUL-terminated string owned by SQLite, copied at once.
    let (code, msg) = unsafe {
        let db = conn.handle();
        let code = ffi::sqlite3_extended_errcode(db);
        let msg = CStr::from_ptr(ffi::sqlite3_errmsg(db))
            .to_string_lossy()
            .into_owned();
        (code, msg)
    };
    let code = if code == ffi::SQLITE_OK { rc } else { code };
    rusqlite::Error::SqliteFailure(ffi::Error::new(code), Some(msg))
}

/// A statement SQLite could not prepare.
#[derive(Debug)]
pub struct PrepareError {
    /// Byte offset of the failing statement's first token.
    pub offset: usize,
    pub line: usize,
    pub error: rusqlite::Error,
}

/// A cursor over a section's statements.
pub struct Script<'a> {
    text: &'a str,
    /// The text with a NUL terminator: SQLite then parses it in place instead of
    /// copying the rest of the text for every statement (which is quadratic on a
    /// large migration file).
    /// Borrowed from the section, which keeps its text NUL-terminated; owned
    /// only for ad-hoc text.
    c: Cow<'a, CStr>,
    from: usize,
    first_line: usize,
    /// Lines are counted incrementally, for the same reason.
    counted_to: usize,
    line: usize,
}

impl<'a> Script<'a> {
    pub fn new(section: &'a Section) -> Script<'a> {
        Script {
            text: section.text.as_str(),
            c: Cow::Borrowed(section.text.as_c_str()),
            from: 0,
            first_line: section.first_line,
            counted_to: 0,
            line: section.first_line,
        }
    }

    /// A script over ad-hoc text (the tests' way in).
    #[cfg(test)]
    pub fn of(text: &'a str, first_line: usize) -> Script<'a> {
        // Migration files with NUL bytes are refused when they are read; should
        // one get here anyway, SQLite would stop at the NUL, and so do we.
        let text = text.split('\0').next().unwrap_or("");
        Script {
            text,
            c: Cow::Owned(std::ffi::CString::new(text).unwrap_or_default()),
            from: 0,
            first_line,
            counted_to: 0,
            line: first_line,
        }
    }

    /// The 1-based file line of byte `offset` (cheap when offsets only grow).
    pub fn line_at(&mut self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        if offset < self.counted_to {
            self.counted_to = 0;
            self.line = self.first_line;
        }
        let newlines = self.text.as_bytes()[self.counted_to..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.line += newlines;
        self.counted_to = offset;
        self.line
    }

    /// The line of the next statement's first token (where a stop would be reported).
    pub fn next_line(&mut self) -> usize {
        let at = self.from + skip_trivia(&self.text[self.from..]);
        self.line_at(at)
    }

    /// The next statement, prepared on `conn` to find its end. Preparing needs the
    /// schema as it is at this point of the migration, so call it on the
    /// connection that runs the statements. `Ok(None)` at the end.
    pub fn next<'c>(
        &mut self,
        conn: &'c Connection,
    ) -> Result<Option<Statement<'a, 'c>>, PrepareError> {
        loop {
            self.from += skip_trivia(&self.text[self.from..]);
            if self.from >= self.text.len() {
                return Ok(None);
            }
            let start = self.from;
            let rest_len = self.text.len() - start;
            let tail = match c_int::try_from(rest_len + 1) {
                Ok(len) => prepare_tail(conn, &self.c, start, len),
                Err(_) => Err(rusqlite::Error::SqliteFailure(
                    ffi::Error::new(ffi::SQLITE_TOOBIG),
                    Some("migration text is larger than 2 GiB".into()),
                )),
            };
            let (consumed, prepared) = match tail {
                Ok(t) => t,
                Err(error) => {
                    let line = self.line_at(start);
                    return Err(PrepareError {
                        offset: start,
                        line,
                        error,
                    });
                }
            };
            if prepared.stmt.is_null() {
                // Only an empty statement (`;`) was left: nothing to run.
                if consumed == 0 {
                    return Ok(None);
                }
                self.from += consumed;
                continue;
            }
            let end = start + consumed.clamp(1, rest_len);
            self.from = end;
            let line = self.line_at(start);
            return Ok(Some(Statement {
                sql: &self.text[start..end],
                line,
                prepared,
            }));
        }
    }
}

/// Prepares the statement at byte `start` of `c`; returns how many bytes it
/// took and the statement (null for an empty one).
fn prepare_tail<'c>(
    conn: &'c Connection,
    c: &CStr,
    start: usize,
    len: c_int,
) -> rusqlite::Result<(usize, Prepared<'c>)> {
    let mut stmt: *mut ffi::sqlite3_stmt = std::ptr::null_mut();
    let mut tail: *const c_char = std::ptr::null();
    // SAFETY: `conn.handle()` is valid while `conn` lives. `start` is within the
    // NUL-terminated buffer `c`, and `len` counts the bytes from `start` up to
    // and including its terminator, as SQLite allows. The statement is owned by
    // `Prepared`, which finalizes it.
    let (rc, consumed, prepared) = unsafe {
        let sql = c.as_ptr().add(start);
        let rc = ffi::sqlite3_prepare_v2(conn.handle(), sql, len, &mut stmt, &mut tail);
        let consumed = if tail.is_null() {
            0
        } else {
            (tail as usize).saturating_sub(sql as usize)
        };
        (
            rc,
            consumed,
            Prepared {
                stmt,
                conn,
                _not_send: PhantomData,
            },
        )
    };
    if rc != ffi::SQLITE_OK {
        return Err(last_error(conn, rc));
    }
    Ok((consumed, prepared))
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

    fn split(sql: &str) -> Vec<(String, usize)> {
        let conn = Connection::open_in_memory().unwrap();
        let mut script = Script::of(sql, 1);
        let mut out = Vec::new();
        while let Some(mut st) = script.next(&conn).unwrap() {
            st.run().unwrap();
            out.push((st.sql.trim().to_owned(), st.line));
        }
        out
    }

    #[test]
    fn splits_on_sqlites_terms() {
        let sql = "-- c1\nCREATE TABLE t(x TEXT);;\n/* c; 2 */ INSERT INTO t VALUES ('a;b');\n\
                   CREATE TRIGGER tr AFTER INSERT ON t BEGIN\n  UPDATE t SET x = x || ';';\n  SELECT 1;\nEND;\n-- trailing";
        let parts = split(sql);
        assert_eq!(parts.len(), 3, "{parts:?}");
        assert_eq!(parts[0].1, 2);
        assert_eq!(parts[1], ("INSERT INTO t VALUES ('a;b');".to_string(), 3));
        assert!(parts[2].0.starts_with("CREATE TRIGGER") && parts[2].0.ends_with("END;"));
        assert_eq!(parts[2].1, 4);
    }

    #[test]
    fn statement_without_semicolon_at_end() {
        assert_eq!(split("CREATE TABLE t(x)")[0].0, "CREATE TABLE t(x)");
        assert!(split("  -- only a comment\n").is_empty());
        assert!(split("").is_empty());
        assert!(split(";;\n;").is_empty());
    }

    #[test]
    fn failing_statement_reports_its_offset_and_line() {
        let conn = Connection::open_in_memory().unwrap();
        let sql = "SELECT 1;\n\n  INSRT INTO t VALUES (1);";
        let mut script = Script::of(sql, 10);
        script.next(&conn).unwrap().unwrap();
        let err = script.next(&conn).unwrap_err();
        assert_eq!(&sql[err.offset..err.offset + 5], "INSRT");
        assert_eq!(err.line, 12);
    }

    #[test]
    fn many_statements_stay_linear() {
        // Line numbers stay right over many statements (counted incrementally).
        let sql: String = (0..20_000).map(|i| format!("SELECT {i};\n")).collect();
        let conn = Connection::open_in_memory().unwrap();
        let mut script = Script::of(&sql, 1);
        let mut n = 0;
        let mut last = 0;
        while let Some(st) = script.next(&conn).unwrap() {
            n += 1;
            last = st.line;
        }
        assert_eq!((n, last), (20_000, 20_000));
    }

    #[test]
    fn trivia() {
        assert_eq!(skip_trivia("  -- x\n /* y */ SELECT"), 16);
        assert_eq!(skip_trivia("/* unterminated"), 15);
    }
}

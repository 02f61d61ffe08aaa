//! Executable migrations (SPEC "Migration files"; issue 12): what a `.py` file
//! or a file with the executable bit is. Running them is `apply`'s job.
//!
//! The rule, written in the README too:
//! - a `.py` file with a line that begins `def up(` (a top-level function; a
//!   space before the `(` is fine) is a **module**: backstop's runner calls
//!   `up(conn)` in one transaction with its tracking row, and `down(conn)` for
//!   `backstop down` when a line begins `def down(`;
//! - any other `.py` file is a **script**, run by the configured Python;
//! - any other file with the executable bit is a **script** run directly (its
//!   `#!` line decides the interpreter).
//!
//! Checksums are of the file's bytes, a BOM and CRLF normalized as for SQL, so
//! an edited script is caught like an edited `.sql` file.

use std::path::Path;

use super::layout::Named;
use super::{FileError, FileErrorKind};
use crate::checksum::{normalize, Checksum};
use crate::migration::{Kind, Migration};

/// How a file would be started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Program {
    /// `.py`: a module or a script, read as text (Python source is UTF-8).
    Python,
    /// Executable bit: any bytes, run directly.
    Native,
}

/// Reads an executable migration; `read` supplies a `.py` file's text (the
/// same seam as for SQL, so tests need no files).
pub(super) fn read(
    path: &Path,
    named: &Named,
    program: Program,
    read: &impl Fn(&Path) -> std::result::Result<String, FileError>,
) -> std::result::Result<Migration, FileError> {
    let (kind, text, checksum, has_down) = match program {
        Program::Python => {
            let raw = read(path)?;
            let text = normalize(&raw).into_owned();
            let kind = if defines(&text, "up") {
                Kind::Module
            } else {
                Kind::Script
            };
            let has_down = kind == Kind::Module && defines(&text, "down");
            let checksum = Checksum::of(&text);
            (kind, text, checksum, has_down)
        }
        Program::Native => {
            let bytes = std::fs::read(path).map_err(|e| FileError {
                path: path.to_path_buf(),
                line: None,
                kind: FileErrorKind::Unreadable(e.to_string()),
            })?;
            let checksum = Checksum::of_bytes(&bytes);
            (Kind::Script, recorded_text(&bytes), checksum, false)
        }
    };
    Ok(Migration::executable(
        named.version.clone(),
        named.name.clone(),
        kind,
        path.to_path_buf(),
        text,
        checksum,
        has_down,
    ))
}

/// What the tracking table keeps of a native executable: its text when it is
/// text, else a note (a compiled tool has no text to diff).
fn recorded_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.contains('\0') => normalize(text).into_owned(),
        _ => format!("(not text: {} bytes)", bytes.len()),
    }
}

/// True if a line of `text` begins `def <name>(`: a top-level function.
pub(super) fn defines(text: &str, name: &str) -> bool {
    text.lines().any(|line| {
        line.strip_prefix("def")
            .filter(|rest| rest.starts_with([' ', '\t']))
            .and_then(|rest| rest.trim_start().strip_prefix(name))
            .is_some_and(|rest| rest.trim_start().starts_with('('))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_is_a_file_with_a_top_level_def_up() {
        assert!(defines("import x\n\ndef up(conn):\n    pass\n", "up"));
        assert!(defines("def  up (conn): pass", "up"));
        assert!(defines("def\tup(conn): pass", "up"));
        // Not top level, not that function, not a definition.
        assert!(!defines("class M:\n    def up(self, conn): pass\n", "up"));
        assert!(!defines("def upgrade(conn): pass\n", "up"));
        assert!(!defines("# def up(conn)\nup(conn)\n", "up"));
        assert!(!defines("defup(conn)", "up"));
        assert!(defines("def up(c): pass\ndef down(c): pass\n", "down"));
    }

    #[test]
    fn binary_executables_record_a_note_not_their_bytes() {
        assert_eq!(
            recorded_text(b"#!/bin/sh\r\necho hi\r\n"),
            "#!/bin/sh\necho hi\n"
        );
        assert_eq!(recorded_text(b"\x7fELF\0\x01"), "(not text: 6 bytes)");
        assert_eq!(recorded_text(b"\xff\xfe"), "(not text: 2 bytes)");
    }
}

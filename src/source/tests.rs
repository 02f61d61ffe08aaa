//! Parsing a folder's names and sections, with the text supplied in memory.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::*;

/// Parses `files` (name, text) as if they were the folder's only entries.
fn parse(files: &[(&str, &str)]) -> (Vec<Migration>, Vec<FileError>) {
    let mut errors = Vec::new();
    let mut entries = Vec::new();
    for (name, _) in files {
        match scan::file(&PathBuf::from(name), name, false) {
            Some(Ok(e)) => entries.push(e),
            Some(Err(e)) => errors.push(e),
            None => {}
        }
    }
    if let Err(e) = scan::layout_of(&entries) {
        errors.push(e);
    }
    let text: BTreeMap<PathBuf, String> = files
        .iter()
        .map(|(n, t)| (PathBuf::from(n), t.to_string()))
        .collect();
    let (m, more) = parse_all(&entries, |p| Ok(text[p].clone()));
    errors.extend(more);
    (m, errors)
}

fn one(name: &str, text: &str) -> Migration {
    let (m, e) = parse(&[(name, text)]);
    assert!(e.is_empty(), "{e:?}");
    m.into_iter().next().unwrap()
}

fn fails(name: &str, text: &str) -> FileErrorKind {
    let (_, e) = parse(&[(name, text)]);
    assert_eq!(e.len(), 1, "{e:?}");
    e[0].kind.clone()
}

#[test]
fn names() {
    assert_eq!(one("001_init.sql", "").version.id(), "1");
    assert_eq!(one("20240101120000_add_x.sql", "").name, "add_x");
    assert_eq!(one("4_Upper.SQL", "").name, "Upper");
    for bad in [
        "init.sql", "_x.sql", "1.sql", "1_.sql", "1a_x.sql", "v1_x.sql", "+1_x.sql",
    ] {
        assert_eq!(fails(bad, ""), FileErrorKind::BadName, "{bad}");
    }
    assert_eq!(
        fails("99999999999999999999_x.sql", ""),
        FileErrorKind::VersionTooLarge
    );
    // Not migrations, and not .sql: left alone.
    let (m, e) = parse(&[("README.md", "hi"), ("atlas.sum", "h1:x")]);
    assert!(m.is_empty() && e.is_empty());
}

#[test]
fn what_cannot_run_is_refused_not_skipped() {
    assert!(matches!(
        fails("002_notes.txt", ""),
        FileErrorKind::NotRunnable { .. }
    ));
    assert!(matches!(
        fails("003_fix.sh", ""),
        FileErrorKind::NotRunnable { .. }
    ));
    assert_eq!(fails("R__views.sql", ""), FileErrorKind::Repeatable);
}

#[test]
fn dbmate_sections_and_lines() {
    let m = one(
        "1_a.sql",
        "-- comment\n-- migrate:up\nCREATE TABLE a(x);\n-- migrate:down\nDROP TABLE a;\n",
    );
    assert_eq!(m.up.text, "CREATE TABLE a(x);\n");
    assert_eq!(m.up.first_line, 3);
    let down = m.down.unwrap();
    assert_eq!(down.text, "DROP TABLE a;\n");
    assert_eq!(down.first_line, 5);
    assert!(m.up.options.transaction);
}

#[test]
fn dbmate_options() {
    let m = one(
        "1_a.sql",
        "-- migrate:up transaction:false foreign_keys:on\nVACUUM;\n",
    );
    assert!(!m.up.options.transaction);
    assert!(m.up.options.foreign_keys);
    assert_eq!(
        fails("1_a.sql", "-- migrate:up transaction:maybe\n"),
        FileErrorKind::UnknownOption("transaction:maybe".into())
    );
    assert!(matches!(
        fails("1_a.sql", "-- migrate:sideways\n"),
        FileErrorKind::UnknownMarker(_)
    ));
}

#[test]
fn goose_markers() {
    let m = one(
        "1_a.sql",
        "-- +goose NO TRANSACTION\n-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n-- +goose StatementEnd\n-- +goose Down\nSELECT 2;\n",
    );
    assert!(!m.up.options.transaction);
    assert!(m.up.text.contains("SELECT 1;"));
    assert_eq!(m.down.unwrap().text, "SELECT 2;\n");
}

#[test]
fn plain_file_is_all_up() {
    let m = one("1_a.sql", "CREATE TABLE a(x);\n");
    assert_eq!(m.up.text, "CREATE TABLE a(x);\n");
    assert!(m.down.is_none());
    assert!(m.up.options.transaction);
    let m = one("1_a.sql", "-- no-transaction\nVACUUM;\n");
    assert!(!m.up.options.transaction);
}

#[test]
fn sqlx_pairs() {
    let (m, e) = parse(&[
        ("1_a.up.sql", "CREATE TABLE a(x);"),
        ("1_a.down.sql", "DROP TABLE a;"),
    ]);
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(m[0].down.as_ref().unwrap().text, "DROP TABLE a;");
    assert_eq!(
        m[0].down.as_ref().unwrap().path,
        PathBuf::from("1_a.down.sql")
    );
    let (_, e) = parse(&[("1_a.down.sql", "DROP TABLE a;")]);
    assert_eq!(e[0].kind, FileErrorKind::DownFileWithoutUp);
}

#[test]
fn flyway_undo_files_are_the_down_section() {
    let (m, e) = parse(&[
        ("V1_1__init.sql", "CREATE TABLE a(x);"),
        ("U1_1__init.sql", "DROP TABLE a;"),
        ("V1_2__more.sql", "CREATE TABLE b(x);"),
    ]);
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].down.as_ref().unwrap().text, "DROP TABLE a;");
    assert_eq!(m[0].version.to_string(), "1_1");
}

#[test]
fn mixed_layouts_are_refused_naming_both() {
    let (_, e) = parse(&[("1_a.sql", ""), ("2025_10_09_b.sql", "")]);
    assert_eq!(e.len(), 1, "{e:?}");
    let msg = e[0].to_string();
    assert!(
        msg.contains("1_a.sql") && msg.contains("2025_10_09_b.sql"),
        "{msg}"
    );
    assert!(msg.contains("dated") && msg.contains("numbered"), "{msg}");
}

#[test]
fn foreign_down_markers_are_never_run_as_up() {
    assert_eq!(
        fails(
            "1_a.up.sql",
            "CREATE TABLE a(x);\n-- migrate:down\nDROP TABLE a;"
        ),
        FileErrorKind::ForeignDownMarker
    );
    assert_eq!(
        fails(
            "1_a.up.sql",
            "CREATE TABLE a(x);\n-- +goose Down\nDROP TABLE a;"
        ),
        FileErrorKind::ForeignDownMarker
    );
    assert_eq!(
        fails("1_a.sql", "-- migrate:down\nDROP TABLE a;"),
        FileErrorKind::DownWithoutUp
    );
    assert_eq!(
        fails("1_a.sql", "SELECT 1;\n-- +goose Down\n"),
        FileErrorKind::DownWithoutUp
    );
    assert_eq!(
        fails("1_a.sql", "-- migrate:up\nSELECT 1;\n-- +goose Down\n"),
        FileErrorKind::MixedMarkers
    );
    assert_eq!(
        fails("1_a.sql", "SELECT 1;\n-- migrate:up\nSELECT 2;"),
        FileErrorKind::TextBeforeUp
    );
}

#[test]
fn duplicates_name_both_files_the_version_and_a_rename() {
    let (_, e) = parse(&[("1_a.sql", ""), ("01_b.sql", ""), ("2_c.sql", "")]);
    assert_eq!(e.len(), 1, "{e:?}");
    let msg = e[0].to_string();
    assert!(msg.contains("1_a.sql") && msg.contains("01_b.sql"), "{msg}");
    assert!(msg.contains("version 1"), "{msg}");
    assert!(msg.contains("3_b.sql") || msg.contains("3_a.sql"), "{msg}");
}

#[test]
fn crlf_and_bom_are_normalized() {
    let a = one(
        "1_a.sql",
        "\u{feff}-- migrate:up\r\nSELECT 1;\r\n-- migrate:down\r\nSELECT 2;\r\n",
    );
    let b = one(
        "1_a.sql",
        "-- migrate:up\nSELECT 1;\n-- migrate:down\nSELECT 2;\n",
    );
    assert_eq!(a.checksum, b.checksum);
    assert_eq!(a.down_checksum, b.down_checksum);
}

#[test]
fn empty_file_is_an_empty_migration() {
    let m = one("1_a.sql", "");
    assert_eq!(m.up.text, "");
}

#[test]
fn order_is_numeric() {
    let (m, e) = parse(&[("10_b.sql", ""), ("9_a.sql", ""), ("100_c.sql", "")]);
    assert!(e.is_empty());
    let v: Vec<&str> = m.iter().map(|m| m.version.id()).collect();
    assert_eq!(v, vec!["9", "10", "100"]);
}

#[test]
fn dated_files_on_one_date_order_by_name() {
    let (m, e) = parse(&[
        ("2025_11_06_txn_allow_cashloose.sql", ""),
        ("2025_10_09_add_txn_timestamps.sql", ""),
        ("2025_11_06_add_client_prefs.sql", ""),
    ]);
    assert!(e.is_empty(), "{e:?}");
    let names: Vec<&str> = m.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "add_txn_timestamps",
            "add_client_prefs",
            "txn_allow_cashloose"
        ]
    );
}

#[test]
fn python_files_are_modules_or_scripts_by_their_def_up() {
    use crate::migration::Kind;
    let module =
        "import os\r\n\r\ndef up(conn):\r\n    pass\r\n\r\ndef down(conn):\r\n    pass\r\n";
    let m = one("2_backfill.py", module);
    assert_eq!((m.kind, m.name.as_str()), (Kind::Module, "backfill"));
    assert!(m.up.options.transaction);
    assert!(m.down.is_some() && m.down_checksum == Some(m.checksum.clone()));
    // Checksummed like SQL: the CRLF copy has the LF file's checksum.
    assert_eq!(
        m.checksum,
        one("2_backfill.py", &module.replace("\r\n", "\n")).checksum
    );
    assert_eq!(
        m.checksum,
        crate::checksum::Checksum::of_bytes(module.as_bytes())
    );
    let s = one("3_seed.py", "if __name__ == '__main__':\n    migrate()\n");
    assert_eq!(s.kind, Kind::Script);
    assert!(!s.up.options.transaction && s.down.is_none());
    let up_only = one("4_x.py", "def up(conn): pass\n");
    assert!(up_only.down.is_none());
    // Every layout: dated and Flyway names run Python too.
    assert_eq!(one("2025_11_06_fix.py", "").kind, Kind::Script);
    assert_eq!(one("V3__fix.py", "def up(c): pass").version.id(), "3");
}

#[test]
fn executables_have_no_separate_down_file() {
    assert_eq!(fails("U3__fix.py", ""), FileErrorKind::ExecutableDown);
    let (_, e) = parse(&[("V3__fix.py", "def up(c): pass"), ("U3__fix.sql", "")]);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].kind, FileErrorKind::ExecutableDown);
    assert_eq!(e[0].path, PathBuf::from("U3__fix.sql"));
}

#[test]
fn executables_beside_diesel_folders_take_diesel_versions() {
    let dir = tempfile::tempdir().unwrap();
    let up = dir.path().join("2024-03-06-170000_init");
    std::fs::create_dir(&up).unwrap();
    std::fs::write(up.join("up.sql"), "CREATE TABLE a(x);").unwrap();
    std::fs::write(
        dir.path().join("2024-03-07-090000_backfill.py"),
        "def up(conn): pass\n",
    )
    .unwrap();
    let source = discover(Folder::Disk(dir.path())).unwrap();
    assert_eq!(source.layout, Layout::Diesel);
    let ids: Vec<&str> = source.migrations.iter().map(|m| m.version.id()).collect();
    assert_eq!(ids, ["20240306170000", "20240307090000"]);
}

#[cfg(unix)]
#[test]
fn files_with_the_executable_bit_are_scripts_and_others_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8], mode: u32| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    write("1_seed.sh", b"#!/bin/sh\r\nexit 0\r\n", 0o755);
    write("2_tool", b"\x7fELF\0\0", 0o700);
    let source = discover(Folder::Disk(dir.path())).unwrap();
    let kinds: Vec<_> = source.migrations.iter().map(|m| m.kind).collect();
    assert_eq!(kinds, [crate::migration::Kind::Script; 2]);
    assert_eq!(source.migrations[0].up.text, "#!/bin/sh\nexit 0\n");
    assert_eq!(
        source.migrations[0].checksum,
        crate::checksum::Checksum::of("#!/bin/sh\nexit 0\n")
    );
    write("3_notes.sh", b"echo", 0o644);
    let err = discover(Folder::Disk(dir.path())).unwrap_err().to_string();
    assert!(
        err.contains("3_notes.sh") && err.contains("chmod +x"),
        "{err}"
    );
}

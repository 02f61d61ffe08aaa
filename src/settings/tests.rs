//! Settings precedence, values and refusals, resolved without the process environment.

use super::*;
use std::collections::HashMap;

fn run(flags: Overrides, env: &[(&str, &str)], file: &str) -> Result<Settings> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let file: FileSettings = toml::from_str(file).unwrap();
    resolve_with(&flags, &|k| env.get(k).cloned(), file, Path::new("conf"))
}

#[test]
fn defaults() {
    let s = run(Overrides::default(), &[], "").unwrap();
    assert_eq!(s.database, PathBuf::from("dev.db"));
    assert_eq!(s.migrations, PathBuf::from("migrations"));
    assert_eq!(s.backups, PathBuf::from("backups"));
    assert_eq!(s.keep, 20);
}

#[test]
fn flag_beats_env_beats_file() {
    let file = "database = 'f.db'\nkeep = 3\nmigrations = 'm'";
    let s = run(Overrides::default(), &[], file).unwrap();
    assert_eq!(s.database, PathBuf::from("conf/f.db"));
    assert_eq!(s.migrations, PathBuf::from("conf/m"));
    assert_eq!(s.keep, 3);
    let s = run(
        Overrides::default(),
        &[
            ("BACKSTOP_DATABASE", "e.db"),
            ("BACKSTOP_KEEP", "4"),
            ("DATABASE_URL", "sqlite:u.db"),
        ],
        file,
    )
    .unwrap();
    assert_eq!(s.database, PathBuf::from("e.db"));
    assert_eq!(s.keep, 4);
    let flags = Overrides {
        database: Some("flag.db".into()),
        keep: Some(5),
        ..Default::default()
    };
    let s = run(
        flags,
        &[("BACKSTOP_DATABASE", "e.db"), ("BACKSTOP_KEEP", "4")],
        file,
    )
    .unwrap();
    assert_eq!(s.database, PathBuf::from("flag.db"));
    assert_eq!(s.keep, 5);
}

#[test]
fn database_url_is_used_after_backstop_database() {
    let s = run(
        Overrides::default(),
        &[("DATABASE_URL", "sqlite://data/app.db?mode=rwc")],
        "",
    )
    .unwrap();
    assert_eq!(s.database, PathBuf::from("data/app.db"));
    let s = run(
        Overrides::default(),
        &[("DATABASE_URL", "sqlite:///tmp/x.db")],
        "",
    )
    .unwrap();
    assert_eq!(s.database, PathBuf::from("/tmp/x.db"));
    let s = run(
        Overrides::default(),
        &[("DATABASE_URL", "sqlite:app.db")],
        "",
    )
    .unwrap();
    assert_eq!(s.database, PathBuf::from("app.db"));
    let s = run(Overrides::default(), &[("DATABASE_URL", "plain.db")], "").unwrap();
    assert_eq!(s.database, PathBuf::from("plain.db"));
}

#[test]
fn bad_values_are_refused() {
    assert!(run(
        Overrides::default(),
        &[("DATABASE_URL", "postgres://x/y")],
        ""
    )
    .is_err());
    assert!(run(
        Overrides::default(),
        &[("DATABASE_URL", "sqlite::memory:")],
        ""
    )
    .is_err());
    assert!(run(Overrides::default(), &[("BACKSTOP_KEEP", "many")], "").is_err());
    assert!(run(Overrides::default(), &[("BACKSTOP_KEEP", "0")], "").is_err());
    assert!(toml::from_str::<FileSettings>("databse = 'x'").is_err());
}

#[test]
fn extensions_and_placeholders() {
    let file = "extensions = ['ext/vec0']\n[placeholders]\nowner = 'app'\nenv = 'dev'";
    let s = run(Overrides::default(), &[], file).unwrap();
    assert_eq!(s.extensions, vec![PathBuf::from("conf/ext/vec0")]);
    assert_eq!(s.placeholders["owner"], "app");
    let flags = Overrides {
        extensions: vec!["other.so".into()],
        placeholders: vec!["env=prod=1".into(), "new=".into()],
        ..Default::default()
    };
    let s = run(flags, &[], file).unwrap();
    assert_eq!(s.extensions, vec![PathBuf::from("other.so")]);
    assert_eq!(s.placeholders["owner"], "app");
    assert_eq!(s.placeholders["env"], "prod=1");
    assert_eq!(s.placeholders["new"], "");
    for bad in ["novalue", "=x"] {
        let flags = Overrides {
            placeholders: vec![bad.into()],
            ..Default::default()
        };
        assert!(run(flags, &[], "").is_err(), "{bad}");
    }
}

#[test]
fn python_and_database_env() {
    let file = "python = '.venv/bin/python'\ndatabase_env = ['DB_PATH']";
    let s = run(Overrides::default(), &[], file).unwrap();
    assert_eq!(s.python, Some(PathBuf::from("conf/.venv/bin/python")));
    assert_eq!(s.database_env, ["DB_PATH"]);
    assert_eq!(s.project, PathBuf::from("conf"));
    // A bare name stays a name, to be found on PATH.
    let s = run(Overrides::default(), &[], "python = 'python3.12'").unwrap();
    assert_eq!(s.python, Some(PathBuf::from("python3.12")));
    let s = run(Overrides::default(), &[("BACKSTOP_PYTHON", "/e/py")], file).unwrap();
    assert_eq!(s.python, Some(PathBuf::from("/e/py")));
    let flags = Overrides {
        python: Some("/f/py".into()),
        ..Default::default()
    };
    let s = run(flags, &[("BACKSTOP_PYTHON", "/e/py")], file).unwrap();
    assert_eq!(s.python, Some(PathBuf::from("/f/py")));
    assert_eq!(run(Overrides::default(), &[], "").unwrap().python, None);
    assert!(run(Overrides::default(), &[], "database_env = ['1X']").is_err());
    assert!(run(Overrides::default(), &[], "database_env = ['A B']").is_err());
}

#[test]
fn empty_env_values_are_ignored() {
    let s = run(Overrides::default(), &[("BACKSTOP_DATABASE", "")], "").unwrap();
    assert_eq!(s.database, PathBuf::from("dev.db"));
}

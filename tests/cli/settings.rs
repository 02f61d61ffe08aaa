//! Settings precedence (SPEC "Configuration"): flag > `BACKSTOP_DATABASE` >
//! `DATABASE_URL` > `backstop.toml` (or `--config FILE`) > default, checked
//! through the real binary: which file `status` reports and `up` creates.

use crate::sandbox::Sandbox;

const A: &str =
    "-- migrate:up\nCREATE TABLE a (id INTEGER PRIMARY KEY);\n-- migrate:down\nDROP TABLE a;\n";

fn project() -> Sandbox {
    let s = Sandbox::new();
    s.migration("1_a.sql", A);
    s
}

/// The database `status --json` reports for these arguments and environment.
#[track_caller]
fn database(s: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> String {
    let j = s.run_with(args, env).code(0).json();
    j["database"]
        .as_str()
        .unwrap_or_else(|| panic!("no database in {j}"))
        .to_owned()
}

/// `up` with these arguments and environment creates exactly `expected`
/// (relative to the sandbox) and no other candidate.
#[track_caller]
fn up_creates(s: &Sandbox, args: &[&str], env: &[(&str, &str)], expected: &str, others: &[&str]) {
    let mut all = vec!["up"];
    all.extend_from_slice(args);
    s.run_with(&all, env).code(0);
    assert!(
        s.path().join(expected).exists(),
        "{expected} not created:\n{}",
        s.listing()
    );
    for o in others {
        if *o != expected {
            assert!(!s.path().join(o).exists(), "{o} created:\n{}", s.listing());
        }
    }
}

const CANDIDATES: &[&str] = &["dev.db", "toml.db", "url.db", "env.db", "flag.db"];

#[test]
fn default_database_is_dev_db() {
    let s = project();
    assert_eq!(database(&s, &["status", "--json"], &[]), "dev.db");
    up_creates(&s, &[], &[], "dev.db", CANDIDATES);
}

#[test]
fn backstop_toml_in_the_current_folder_beats_the_default() {
    let s = project();
    s.write("backstop.toml", "database = \"toml.db\"\n");
    assert_eq!(database(&s, &["status", "--json"], &[]), "toml.db");
    up_creates(&s, &[], &[], "toml.db", CANDIDATES);
}

#[test]
fn database_url_beats_backstop_toml_in_each_form() {
    for (url, file) in [
        ("sqlite://url.db", "url.db"),
        ("sqlite:url.db", "url.db"),
        ("url.db", "url.db"),
        ("sqlite://url.db?mode=rwc", "url.db"),
    ] {
        let s = project();
        s.write("backstop.toml", "database = \"toml.db\"\n");
        let env = [("DATABASE_URL", url)];
        assert_eq!(database(&s, &["status", "--json"], &env), file, "{url}");
        up_creates(&s, &[], &env, file, CANDIDATES);
    }
}

#[test]
fn database_url_with_an_absolute_path() {
    let s = project();
    let abs = s.path().join("abs.db");
    let url = format!("sqlite://{}", abs.display());
    assert!(url.starts_with("sqlite:///"));
    s.run_with(&["up"], &[("DATABASE_URL", &url)]).code(0);
    assert!(abs.exists(), "{}", s.listing());
    assert!(!s.db().exists());
}

#[test]
fn backstop_database_beats_database_url() {
    let s = project();
    s.write("backstop.toml", "database = \"toml.db\"\n");
    let env = [
        ("BACKSTOP_DATABASE", "env.db"),
        ("DATABASE_URL", "sqlite://url.db"),
    ];
    assert_eq!(database(&s, &["status", "--json"], &env), "env.db");
    up_creates(&s, &[], &env, "env.db", CANDIDATES);
}

#[test]
fn empty_backstop_database_falls_through_to_database_url() {
    let s = project();
    let env = [("BACKSTOP_DATABASE", ""), ("DATABASE_URL", "sqlite:url.db")];
    assert_eq!(database(&s, &["status", "--json"], &env), "url.db");
}

#[test]
fn flag_beats_every_environment_variable_and_the_file() {
    let s = project();
    s.write("backstop.toml", "database = \"toml.db\"\n");
    let env = [
        ("BACKSTOP_DATABASE", "env.db"),
        ("DATABASE_URL", "sqlite://url.db"),
    ];
    assert_eq!(
        database(&s, &["status", "--json", "-d", "flag.db"], &env),
        "flag.db"
    );
    assert_eq!(
        database(
            &s,
            &["status", "--json", "--database", "sqlite:flag.db"],
            &env
        ),
        "flag.db"
    );
    up_creates(&s, &["--database", "flag.db"], &env, "flag.db", CANDIDATES);
}

#[test]
fn config_file_paths_are_relative_to_the_file() {
    let s = project();
    // A backstop.toml in the current folder is not read when --config is given.
    s.write("backstop.toml", "database = \"toml.db\"\n");
    s.write(
        "deploy/backstop.toml",
        "database = \"data/app.db\"\nmigrations = \"sql\"\nbackups = \"saved\"\nkeep = 3\n",
    );
    std::fs::create_dir(s.path().join("deploy/data")).expect("mkdir");
    s.write("deploy/sql/7_deploy.sql", "CREATE TABLE deployed (x);\n");
    let j = s
        .run(&["status", "--json", "--config", "deploy/backstop.toml"])
        .code(0)
        .json();
    assert_eq!(j["database"], "deploy/data/app.db");
    assert_eq!(j["migrations"][0]["version"], "7");
    assert_eq!(j["migrations"][0]["file"], "deploy/sql/7_deploy.sql");
    s.run(&["up", "--config", "deploy/backstop.toml"]).code(0);
    let db = s.path().join("deploy/data/app.db");
    assert!(db.exists(), "{}", s.listing());
    assert!(!s.path().join("toml.db").exists());
    assert!(!s.db().exists());
    let backups: Vec<_> = std::fs::read_dir(s.path().join("deploy/saved"))
        .expect("backups in deploy/saved")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "sqlite3"))
        .collect();
    assert_eq!(backups.len(), 1, "{}", s.listing());
    assert!(!s.backups_dir().exists(), "{}", s.listing());
    let conn = rusqlite::Connection::open(db).expect("open");
    assert_eq!(
        conn.query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'deployed'",
            [],
            |r| r.get::<_, i64>(0)
        )
        .expect("query"),
        1
    );
}

#[test]
fn environment_beats_the_config_file_given_with_a_flag() {
    let s = project();
    s.write("deploy/backstop.toml", "database = \"app.db\"\n");
    let env = [("BACKSTOP_DATABASE", "env.db")];
    assert_eq!(
        database(
            &s,
            &["status", "--json", "--config", "deploy/backstop.toml"],
            &env
        ),
        "env.db"
    );
}

#[test]
fn migrations_and_backups_settings_from_flags_and_environment() {
    let s = Sandbox::new();
    s.write("other/1_o.sql", "CREATE TABLE o (x);\n");
    s.write("env_migrations/1_e.sql", "CREATE TABLE e (x);\n");
    let j = s
        .run_with(
            &["status", "--json"],
            &[("BACKSTOP_MIGRATIONS", "env_migrations")],
        )
        .code(0)
        .json();
    assert_eq!(j["migrations"][0]["name"], "e");
    let j = s
        .run_with(
            &["status", "--json", "--migrations", "other"],
            &[("BACKSTOP_MIGRATIONS", "env_migrations")],
        )
        .code(0)
        .json();
    assert_eq!(j["migrations"][0]["name"], "o");
    s.run_with(
        &["up", "--migrations", "other"],
        &[("BACKSTOP_BACKUPS", "env_backups")],
    )
    .code(0);
    assert!(s.path().join("env_backups").is_dir(), "{}", s.listing());
    assert!(!s.backups_dir().exists());
}

#[test]
fn unknown_key_in_backstop_toml_is_a_usage_error() {
    let s = project();
    s.write("backstop.toml", "databse = \"typo.db\"\n");
    for args in [&["status"][..], &["up"][..]] {
        let out = s.run(args);
        out.code(2)
            .stderr_has("backstop.toml")
            .stderr_has("databse");
    }
    assert!(!s.db().exists());
    assert!(!s.path().join("typo.db").exists());
    assert!(!s.backups_dir().exists());
}

#[test]
fn malformed_config_files_are_usage_errors() {
    let s = project();
    s.write("backstop.toml", "database = \n");
    s.run(&["status"]).code(2).stderr_has("backstop.toml");
    s.write("backstop.toml", "keep = \"many\"\n");
    s.run(&["up"]).code(2).stderr_has("backstop.toml");
    s.remove("backstop.toml");
    s.run(&["status", "--config", "nope/backstop.toml"])
        .code(2)
        .stderr_has("nope/backstop.toml");
    assert!(!s.db().exists());
}

#[test]
fn non_sqlite_database_url_is_a_usage_error() {
    let s = project();
    let env = [("DATABASE_URL", "postgres://user@localhost/app")];
    for args in [&["status"][..], &["up"][..]] {
        s.run_with(args, &env)
            .code(2)
            .stderr_has("DATABASE_URL")
            .stderr_has("postgres://user@localhost/app");
    }
    s.run(&["up", "-d", "mysql://x/y"])
        .code(2)
        .stderr_has("--database");
    assert!(!s.db().exists());
    assert!(!s.backups_dir().exists(), "{}", s.listing());
}

#[test]
fn bad_numeric_settings_are_usage_errors() {
    let s = project();
    s.run_with(&["up"], &[("BACKSTOP_KEEP", "many")])
        .code(2)
        .stderr_has("BACKSTOP_KEEP");
    s.run(&["up", "--keep", "0"]).code(2);
    s.run(&["up", "--keep", "lots"]).code(2);
    assert!(!s.db().exists());
}

#[test]
fn flags_are_accepted_before_and_after_the_subcommand() {
    let s = project();
    assert_eq!(
        database(&s, &["-d", "x.db", "status", "--json"], &[]),
        "x.db"
    );
    assert_eq!(
        database(&s, &["status", "-d", "x.db", "--json"], &[]),
        "x.db"
    );
    assert_eq!(
        database(&s, &["--json", "status", "--database=x.db"], &[]),
        "x.db"
    );
    // Pending, so --exit-code gives 3; the database is still the flag's.
    let j = s
        .run(&["--database", "x.db", "--json", "status", "--exit-code"])
        .code(3)
        .json();
    assert_eq!(j["database"], "x.db");
    s.run(&["--database", "before.db", "--backups", "bk1", "up"])
        .code(0);
    assert!(s.path().join("before.db").exists());
    assert!(s.path().join("bk1").is_dir());
    s.run(&[
        "up",
        "--database",
        "after.db",
        "--backups",
        "bk2",
        "--keep",
        "2",
        "-q",
    ])
    .code(0);
    assert!(s.path().join("after.db").exists());
    assert!(s.path().join("bk2").is_dir());
    assert!(!s.db().exists(), "{}", s.listing());
}

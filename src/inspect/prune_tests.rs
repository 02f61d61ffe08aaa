//! The pruned copy (see `reach`) against the whole schema: the same findings
//! and the same refusals, on plans made at random.
use proptest::prelude::*;
use rusqlite::Connection;

use super::*;

/// A transactional migration, with foreign keys on in every other one.
fn mig(v: u64, text: &str) -> Migration {
    let mut m = super::tests::mig(v, text, true);
    m.up.options.foreign_keys = v % 2 == 0;
    m
}

/// What a user sees of an inspection: the findings or the refusal.
fn seen(found: Result<Findings>) -> String {
    match found {
        Ok(f) => format!("{:?}", f.destructive),
        Err(e) => format!("refused: {e}"),
    }
}

/// What the inspection shows on a copy pruned before every step, what the
/// pruned copy alone found, what the whole schema finds, and how often the
/// copy was remade.
fn both(real: Option<&Connection>, steps: &[(&Migration, &Section)]) -> Both {
    let reach = Reach::of(steps.iter().map(|(_, s)| s.text.as_str())).eager();
    let shown = seen(inspect_within(real, steps, &[], &reach));
    let eager = Reach::of(steps.iter().map(|(_, s)| s.text.as_str())).eager();
    let pruned = follow(real, steps, &[], Some(&eager));
    Both {
        shown,
        pruned_ok: pruned.as_ref().ok().map(|f| format!("{:?}", f.destructive)),
        whole: seen(follow(real, steps, &[], None)),
        remade: reach.times_remade(),
    }
}

struct Both {
    shown: String,
    pruned_ok: Option<String>,
    whole: String,
    remade: usize,
}

#[test]
fn a_long_plan_of_unrelated_tables_keeps_the_copy_small() {
    let migrations: Vec<Migration> = (1..=300)
        .map(|i| {
            mig(
                i,
                &format!(
                    "CREATE TABLE t_{i} (id INTEGER PRIMARY KEY, n INTEGER);\n\
                     INSERT INTO t_{i} (n) VALUES ({i});\n"
                ),
            )
        })
        .collect();
    let steps: Vec<_> = migrations.iter().map(|m| (m, &m.up)).collect();
    let reach = Reach::of(steps.iter().map(|(_, s)| s.text.as_str()));
    let pruned = follow(None, &steps, &[], Some(&reach)).unwrap();
    // Remade about every 65 steps, never larger than that.
    assert_eq!(reach.times_remade(), 4);
    assert!(
        reach.largest() <= 66,
        "the copy grew to {}",
        reach.largest()
    );
    let whole = follow(None, &steps, &[], None).unwrap();
    assert_eq!(format!("{pruned:?}"), format!("{whole:?}"));
}

#[test]
fn a_table_named_again_much_later_is_still_checked_there() {
    let mut texts: Vec<String> = vec!["CREATE TABLE kept (a INTEGER);".into()];
    texts.extend((1..200).map(|i| format!("CREATE TABLE t_{i} (x);")));
    texts.push("INSERT INTO kept (b) VALUES (1);".into());
    let migrations: Vec<Migration> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| mig(i as u64 + 1, t))
        .collect();
    let steps: Vec<_> = migrations.iter().map(|m| (m, &m.up)).collect();
    let b = both(None, &steps);
    assert!(b.remade > 0);
    assert!(b.shown.contains("refused"), "{}", b.shown);
    assert!(b.shown.contains("no column named b"), "{}", b.shown);
    assert_eq!(b.shown, b.whole);
}

#[test]
fn a_table_seen_only_through_a_trigger_view_or_foreign_key_stays() {
    let real = Connection::open_in_memory().unwrap();
    real.execute_batch(
        "CREATE TABLE parent (id INTEGER PRIMARY KEY);
         CREATE TABLE child (p INTEGER REFERENCES parent(id));
         CREATE TABLE audit (what TEXT);
         CREATE TABLE noise (x);
         CREATE TRIGGER on_parent AFTER DELETE ON parent BEGIN INSERT INTO audit VALUES ('d'); END;
         CREATE VIEW everything AS SELECT * FROM child;",
    )
    .unwrap();
    let migrations = [
        mig(1, "CREATE TABLE other (y);"),
        mig(2, "DELETE FROM parent WHERE id = 1;"),
        mig(3, "SELECT * FROM everything;"),
    ];
    let steps: Vec<_> = migrations.iter().map(|m| (m, &m.up)).collect();
    let b = both(Some(&real), &steps);
    assert!(b.remade > 0);
    assert_eq!(b.pruned_ok.as_ref(), Some(&b.whole));
    assert!(b.shown.contains("DeleteRows"), "{}", b.shown);
}

const NAMES: [&str; 6] = ["a", "b", "c", "d", "e", "f"];

fn statement() -> impl Strategy<Value = String> {
    let name = || prop::sample::select(&NAMES[..]);
    (0..17usize, name(), name()).prop_map(|(kind, x, y)| match kind {
        0 => format!(
            "CREATE TABLE {x} (id INTEGER PRIMARY KEY, v TEXT, p INTEGER REFERENCES {y}(id));"
        ),
        1 => format!("CREATE TABLE IF NOT EXISTS {x} (id INTEGER PRIMARY KEY, v TEXT);"),
        2 => format!("CREATE VIEW {x}_v AS SELECT v FROM {y};"),
        3 => format!("CREATE INDEX {x}_i ON {y}(v);"),
        4 => format!(
            "CREATE TRIGGER {x}_t AFTER INSERT ON {x} BEGIN INSERT INTO {y}(v) VALUES ('t'); END;"
        ),
        5 => format!("INSERT INTO {x}(v) VALUES ('r');"),
        6 => format!("DELETE FROM {x} WHERE v = 'r';"),
        7 => format!("DROP TABLE {x};"),
        8 => format!("DROP VIEW {x}_v;"),
        9 => format!("ALTER TABLE {x} ADD COLUMN w TEXT;"),
        10 => format!("ALTER TABLE {x} RENAME TO {y};"),
        11 => format!("ALTER TABLE {x} DROP COLUMN v;"),
        12 => format!("SELECT v FROM {x}_v;"),
        13 => format!("UPDATE {x} SET v = 'u' WHERE p IS NULL;"),
        14 => format!("ALTER TABLE {x} RENAME COLUMN v TO v2;"),
        15 => format!("CREATE TEMP TABLE {x}_tmp (v);"),
        _ => format!("DROP INDEX {x}_i;"),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn the_pruned_copy_finds_what_the_whole_schema_finds(
        existing in prop::collection::vec(statement(), 0..8),
        plan in prop::collection::vec(prop::collection::vec(statement(), 1..3), 1..12),
    ) {
        let real = Connection::open_in_memory().unwrap();
        for sql in &existing {
            let _ = real.execute_batch(sql);
        }
        let migrations: Vec<Migration> = plan
            .iter()
            .enumerate()
            .map(|(i, sqls)| mig(i as u64 + 1, &sqls.join("\n")))
            .collect();
        let steps: Vec<_> = migrations.iter().map(|m| (m, &m.up)).collect();
        let real = (!existing.is_empty()).then_some(&real);
        let b = both(real, &steps);
        prop_assert_eq!(&b.shown, &b.whole);
        // What the pruned copy lets through, the whole schema lets through too.
        if let Some(pruned) = &b.pruned_ok {
            prop_assert_eq!(pruned, &b.whole);
        }
    }
}

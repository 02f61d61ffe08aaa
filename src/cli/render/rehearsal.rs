//! `up --dry-run`'s report for people: per migration what happened on the
//! copy, what would be dropped or deleted, and which tables change size.

use super::table;
use crate::cli::cmd::up::plural;
use crate::cli::progress::ms;
use crate::rehearse::Rehearsal;

pub fn rehearsal(r: &Rehearsal) -> String {
    let mut s = format!(
        "dry run on a copy of {} (the real file is untouched)\n\n",
        r.database.display()
    );
    if let Some(d) = &r.drift {
        s.push_str(&format!(
            "the schema changed outside migrations since the last run ({d}); \
             `backstop up` asks before running over it (--yes accepts)\n\n"
        ));
    }
    if r.migrations.is_empty() && r.failure.is_none() {
        s.push_str("nothing to apply\n");
    }
    for a in &r.migrations {
        s.push_str(&format!(
            "  ok      {} {} ({}, {} changed)\n",
            a.version,
            a.name,
            ms(std::time::Duration::from_micros(a.duration_us)),
            plural(a.rows_changed as usize, "row")
        ));
    }
    if let Some(f) = &r.failure {
        s.push_str(&format!(
            "  FAILED  {}\n",
            f.message.replace('\n', "\n          ")
        ));
    }
    if !r.destructive.is_empty() {
        s.push_str("\ndrops and deletes:\n");
        for d in &r.destructive {
            s.push_str(&format!("  {d}\n"));
        }
    }
    let o = &r.objects;
    if !o.is_empty() {
        s.push_str("\nschema objects:\n");
        for (what, list) in [
            ("created", &o.appeared),
            ("dropped", &o.vanished),
            ("changed or rebuilt", &o.changed),
        ] {
            if !list.is_empty() {
                s.push_str(&format!("  {what}: {}\n", list.join(", ")));
            }
        }
    }
    let changed: Vec<Vec<String>> = r
        .tables
        .iter()
        .filter(|t| t.before != t.after)
        .map(|t| {
            let n = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
            vec![t.table.clone(), n(t.before), n(t.after)]
        })
        .collect();
    if !changed.is_empty() {
        s.push('\n');
        s.push_str(&table(&["TABLE", "ROWS BEFORE", "ROWS AFTER"], &changed));
    }
    if !r.rows_deleted.is_empty() {
        s.push_str(&format!(
            "\nrows would be deleted from: {}\n",
            r.rows_deleted.join(", ")
        ));
    }
    s.push_str(if r.ok {
        "\nthe rehearsal succeeded\n"
    } else {
        "\nthe rehearsal failed: `backstop up` would stop at the migration above\n"
    });
    s
}

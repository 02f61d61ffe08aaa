//! What of the scratch copy the rest of the plan can reach. The copy has to be
//! exact only for what the remaining statements can name: a thousand tables
//! made by earlier migrations and never named again would make each later
//! CREATE TABLE pay for all of them (SQLite rereads its schema table after
//! every schema change), a cost quadratic in the plan. Between migrations,
//! what the rest cannot reach is dropped from the copy.
//!
//! Reach is by name, and generous: a word anywhere in a later section
//! (comments and strings included) equal to an object's name keeps it, and so
//! does everything linked to a kept object through the names in their SQL, in
//! either direction (a view and its tables, a foreign key's parent and child,
//! a trigger and what it writes, an index and its table). Views and
//! triggers, names that are not plain words, virtual tables and their shadow
//! tables and SQLite's own tables are always kept. A refusal is never made on a pruned
//! copy: `inspect` follows the plan again on the whole schema first.

use std::cell::Cell;
use std::collections::HashMap;

/// A section larger than this is not indexed: until it, everything counts as
/// named (a 100 MB data migration must not become a 100 MB word index).
const INDEXED: usize = 1 << 20;

/// Schema changes since the last prune, beyond what it kept, before the copy
/// is looked at again: a look reads the whole schema table, so it must stay
/// rare (about doubling the copy each time).
const SLACK: usize = 64;

/// The words of the plan's sections and when the copy is due for pruning.
pub(super) struct Reach {
    /// Each word (ASCII-lowercased, as SQLite folds names) and the last step naming it.
    last: HashMap<Box<str>, usize>,
    /// The last step too large to index.
    opaque_until: Option<usize>,
    slack: usize,
    kept: Cell<usize>,
    /// For the tests: the largest copy looked at, and how often it was remade.
    largest: Cell<usize>,
    remade: Cell<usize>,
}

impl Reach {
    /// The words of `texts`, one per step of the plan, in order.
    pub fn of<'a>(texts: impl IntoIterator<Item = &'a str>) -> Reach {
        let mut last: HashMap<Box<str>, usize> = HashMap::new();
        let mut opaque_until = None;
        let mut folded = String::new();
        for (step, text) in texts.into_iter().enumerate() {
            if text.len() > INDEXED {
                opaque_until = Some(step);
                continue;
            }
            for word in words(text) {
                fold_into(word, &mut folded);
                match last.get_mut(folded.as_str()) {
                    Some(at) => *at = step,
                    None => {
                        last.insert(folded.as_str().into(), step);
                    }
                }
            }
        }
        Reach {
            last,
            opaque_until,
            slack: SLACK,
            kept: Cell::new(0),
            largest: Cell::new(0),
            remade: Cell::new(0),
        }
    }

    /// Prunes before every step, however small the copy (tests).
    #[cfg(test)]
    pub fn eager(mut self) -> Reach {
        self.slack = 0;
        self
    }

    #[cfg(test)]
    pub fn largest(&self) -> usize {
        self.largest.get()
    }

    #[cfg(test)]
    pub fn times_remade(&self) -> usize {
        self.remade.get()
    }

    pub fn remade(&self) {
        self.remade.set(self.remade.get() + 1);
    }

    /// Whether the copy, grown by `grown` schema changes since the last
    /// look, is due for another.
    pub fn due(&self, grown: usize) -> bool {
        grown > self.kept.get() + self.slack
    }

    /// Which of `objects` steps `from..` can reach (see the module comment).
    pub fn reachable(&self, objects: &[Object], from: usize) -> Vec<bool> {
        self.largest.set(self.largest.get().max(objects.len()));
        if self.opaque_until.is_some_and(|until| until >= from) {
            self.kept.set(objects.len());
            return vec![true; objects.len()];
        }
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, o) in objects.iter().enumerate() {
            by_name.entry(fold(&o.name)).or_default().push(i);
        }
        let links = links(objects, &by_name);
        let mut keep: Vec<bool> = objects
            .iter()
            .map(|o| {
                // SQLite checks every view and trigger on each ALTER TABLE
                // RENAME or DROP COLUMN, even ones the plan never names (one
                // reading a table dropped long ago fails them all).
                o.kind == "view"
                    || o.kind == "trigger"
                    || o.is_virtual()
                    || !is_plain(&o.name)
                    || fold(&o.name).starts_with("sqlite_")
                    || self.named_from(&o.name, from)
            })
            .collect();
        let mut todo: Vec<usize> = (0..objects.len()).filter(|&i| keep[i]).collect();
        while let Some(i) = todo.pop() {
            for &j in &links[i] {
                if !keep[j] {
                    keep[j] = true;
                    todo.push(j);
                }
            }
        }
        self.kept.set(keep.iter().filter(|&&k| k).count());
        keep
    }

    fn named_from(&self, name: &str, from: usize) -> bool {
        self.last
            .get(fold(name).as_str())
            .is_some_and(|&at| at >= from)
    }
}

/// One row of a schema table.
#[derive(Debug, Clone)]
pub(super) struct Object {
    pub kind: String,
    pub name: String,
    /// The table an index or trigger belongs to (the object itself otherwise).
    pub table: String,
    pub sql: Option<String>,
}

impl Object {
    /// From a row of `type, name, tbl_name, sql`.
    pub fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Object> {
        Ok(Object {
            kind: r.get(0)?,
            name: r.get(1)?,
            table: r.get(2)?,
            sql: r.get(3)?,
        })
    }

    pub fn is_virtual(&self) -> bool {
        self.kind == "table"
            && self.sql.as_deref().is_some_and(|s| {
                s.trim_start()
                    .get(..14)
                    .is_some_and(|head| head.eq_ignore_ascii_case("CREATE VIRTUAL"))
            })
    }
}

/// Both ways: each object to its table, to the objects its SQL names, and a
/// virtual table to its shadow tables (`name_suffix`, SQLite's convention).
fn links(objects: &[Object], by_name: &HashMap<String, Vec<usize>>) -> Vec<Vec<usize>> {
    let mut links = vec![Vec::new(); objects.len()];
    let mut link = |i: usize, j: usize| {
        if i != j {
            links[i].push(j);
            links[j].push(i);
        }
    };
    let virtuals: Vec<(usize, String)> = objects
        .iter()
        .enumerate()
        .filter(|(_, o)| o.is_virtual())
        .map(|(i, o)| (i, format!("{}_", fold(&o.name))))
        .collect();
    let mut folded = String::new();
    for (i, o) in objects.iter().enumerate() {
        for &j in by_name.get(&fold(&o.table)).into_iter().flatten() {
            link(i, j);
        }
        for word in o.sql.as_deref().map(words).into_iter().flatten() {
            fold_into(word, &mut folded);
            for &j in by_name.get(folded.as_str()).into_iter().flatten() {
                link(i, j);
            }
        }
        let name = fold(&o.name);
        for (v, prefix) in &virtuals {
            if name.starts_with(prefix.as_str()) {
                link(i, *v);
            }
        }
    }
    links
}

/// Runs of identifier bytes: ASCII letters, digits, `_`, `$`, and any byte of
/// a non-ASCII character (SQLite lets those into unquoted names). Splitting
/// only at ASCII bytes keeps every slice valid UTF-8.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| c.is_ascii() && !is_word_char(c))
        .filter(|w| !w.is_empty())
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$' || !c.is_ascii()
}

/// A name that a later statement can only spell as one word. Any other (with
/// spaces, dots or quotes) is kept whatever the plan says.
fn is_plain(name: &str) -> bool {
    !name.is_empty() && name.chars().all(is_word_char)
}

fn fold(name: &str) -> String {
    name.to_ascii_lowercase()
}

fn fold_into(word: &str, into: &mut String) {
    into.clear();
    into.push_str(word);
    into.make_ascii_lowercase();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(kind: &str, name: &str, table: &str, sql: &str) -> Object {
        Object {
            kind: kind.into(),
            name: name.into(),
            table: table.into(),
            sql: Some(sql.into()),
        }
    }

    fn kept(reach: &Reach, objects: &[Object], from: usize) -> Vec<String> {
        let keep = reach.reachable(objects, from);
        objects
            .iter()
            .zip(keep)
            .filter(|(_, k)| *k)
            .map(|(o, _)| o.name.clone())
            .collect()
    }

    #[test]
    fn words_split_at_ascii_punctuation_only() {
        let w: Vec<&str> =
            words("INSERT INTO \"Größe\"(a$b) VALUES ('x'); -- t_1\n[t 2]").collect();
        assert_eq!(
            w,
            ["INSERT", "INTO", "Größe", "a$b", "VALUES", "x", "t_1", "t", "2"]
        );
    }

    #[test]
    fn keeps_what_later_steps_name_and_everything_linked_to_it() {
        let reach = Reach::of(["CREATE TABLE a(x)", "CREATE TABLE b(x)", "SELECT * FROM V"]);
        let objects = [
            obj("table", "a", "a", "CREATE TABLE a(x)"),
            obj("table", "b", "b", "CREATE TABLE b(x)"),
            obj("table", "parent", "parent", "CREATE TABLE parent(id)"),
            obj(
                "table",
                "child",
                "child",
                "CREATE TABLE child(p REFERENCES parent)",
            ),
            obj("view", "v", "v", "CREATE VIEW v AS SELECT * FROM child"),
            obj("index", "b_x", "b", "CREATE INDEX b_x ON b(x)"),
        ];
        assert_eq!(kept(&reach, &objects, 2), ["parent", "child", "v"]);
        // From step 1, b is named: its index comes along.
        assert_eq!(
            kept(&reach, &objects, 1),
            ["b", "parent", "child", "v", "b_x"]
        );
    }

    #[test]
    fn triggers_are_kept_with_their_table_and_what_they_write() {
        let reach = Reach::of(["SELECT 1"]);
        let objects = [
            obj("table", "a", "a", "CREATE TABLE a(x)"),
            obj("table", "b", "b", "CREATE TABLE b(x)"),
            obj("table", "c", "c", "CREATE TABLE c(x)"),
            obj(
                "trigger",
                "on_a",
                "a",
                "CREATE TRIGGER on_a AFTER INSERT ON a BEGIN DELETE FROM b; END",
            ),
        ];
        assert_eq!(kept(&reach, &objects, 0), ["a", "b", "on_a"]);
    }

    #[test]
    fn names_that_are_not_plain_words_and_virtual_tables_are_always_kept() {
        let reach = Reach::of(["SELECT 1"]);
        let objects = [
            obj(
                "table",
                "my table",
                "my table",
                "CREATE TABLE \"my table\"(x)",
            ),
            obj(
                "table",
                "docs",
                "docs",
                "CREATE VIRTUAL TABLE docs USING fts5(x)",
            ),
            obj(
                "table",
                "docs_data",
                "docs_data",
                "CREATE TABLE 'docs_data'(id)",
            ),
            obj(
                "table",
                "sqlite_stat1",
                "sqlite_stat1",
                "CREATE TABLE sqlite_stat1(a)",
            ),
            obj("table", "gone", "gone", "CREATE TABLE gone(x)"),
        ];
        assert_eq!(
            kept(&reach, &objects, 0),
            ["my table", "docs", "docs_data", "sqlite_stat1"]
        );
    }

    #[test]
    fn names_fold_ascii_case_only() {
        let reach = Reach::of(["insert into T_1 values (1); select * from ÄRA"]);
        let objects = [
            obj("table", "t_1", "t_1", "CREATE TABLE t_1(x)"),
            obj("table", "t_10", "t_10", "CREATE TABLE t_10(x)"),
            obj("table", "ära", "ära", "CREATE TABLE ära(x)"),
        ];
        assert_eq!(kept(&reach, &objects, 0), ["t_1"]);
    }

    #[test]
    fn a_section_too_large_to_index_keeps_everything_until_it() {
        let big = format!("SELECT 1;{}", " ".repeat(INDEXED));
        let reach = Reach::of(["SELECT 1", big.as_str(), "SELECT 2"]);
        let objects = [obj("table", "a", "a", "CREATE TABLE a(x)")];
        assert_eq!(kept(&reach, &objects, 1), ["a"]);
        assert!(kept(&reach, &objects, 2).is_empty());
    }

    #[test]
    fn pruning_is_due_only_when_the_copy_has_grown() {
        let reach = Reach::of(["SELECT 1"]);
        assert!(!reach.due(SLACK));
        assert!(reach.due(SLACK + 1));
        let objects: Vec<Object> = (0..40)
            .map(|i| obj("table", &format!("my t{i}"), "x", "CREATE TABLE x(y)"))
            .collect();
        reach.reachable(&objects, 0);
        assert!(!reach.due(40 + SLACK));
        assert!(reach.due(40 + SLACK + 1));
        assert_eq!(reach.largest(), 40);
    }
}

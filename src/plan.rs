//! Classifies every migration before any write (SPEC "Checksums"): one State
//! per version, never stopping at the first problem, so `status` shows exactly
//! the plan that `up` and `down` check.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use crate::history::AppliedRow;
use crate::migration::{Key, Migration, Version};
use crate::source::Layout;

/// A migration's state (SPEC "Checksums"), as `backstop status` shows it.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Recorded, file present, checksum matches.
    Applied,
    /// File present, not recorded, newer than the newest applied.
    Pending,
    /// Recorded, file present, checksum differs.
    Edited,
    /// Recorded, file gone.
    Missing,
    /// Not recorded, older than the newest applied.
    OutOfOrder,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Applied => "applied",
            State::Pending => "pending",
            State::Edited => "edited",
            State::Missing => "missing",
            State::OutOfOrder => "out-of-order",
        })
    }
}

/// One version in the plan: the file, the tracking row, or both.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub version: Version,
    pub state: State,
    pub file: Option<&'a Migration>,
    pub row: Option<&'a AppliedRow>,
}

impl Entry<'_> {
    pub fn name(&self) -> &str {
        self.file
            .map(|m| m.name.as_str())
            .or(self.row.map(|r| r.name.as_str()))
            .unwrap_or("")
    }
}

/// A problem that stops `up` and `down` before anything changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub version: Version,
    pub state: State,
    pub path: Option<PathBuf>,
    pub name: String,
    /// For a missing file: the name the folder's layout expects.
    pub expected: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.path, self.state) {
            (Some(p), State::Edited) => write!(
                f,
                "{}: migration {} was edited after it was applied (checksum differs)",
                p.display(),
                self.version
            ),
            (Some(p), State::OutOfOrder) => write!(
                f,
                "{}: migration {} is not applied but older than the newest applied one",
                p.display(),
                self.version
            ),
            (_, State::Missing) => write!(
                f,
                "migration {} ({}) is applied but its file ({}) is missing from the \
                 migrations folder",
                self.version, self.name, self.expected
            ),
            (p, s) => write!(
                f,
                "migration {} {}: {}",
                self.version,
                self.name,
                p.as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or(s.to_string())
            ),
        }
    }
}

pub fn describe(problems: &[Problem]) -> String {
    let mut lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
    if lines.len() > 1 {
        lines.insert(0, format!("{} migrations need attention:", problems.len()));
        lines.join("\n  ")
    } else {
        lines.pop().unwrap_or_default()
    }
}

#[derive(Debug, Clone)]
pub struct Plan<'a> {
    pub layout: Layout,
    pub entries: Vec<Entry<'a>>,
}

impl<'a> Plan<'a> {
    /// Pure: files and rows in, a state for every version out.
    pub fn build(layout: Layout, files: &'a [Migration], rows: &'a [AppliedRow]) -> Plan<'a> {
        let newest_applied = rows.iter().map(|r| &r.version).max();
        let mut by_version: BTreeMap<&Version, Entry<'a>> = BTreeMap::new();
        for m in files {
            by_version.insert(
                &m.version,
                Entry {
                    version: m.version.clone(),
                    state: State::Pending,
                    file: Some(m),
                    row: None,
                },
            );
        }
        for r in rows {
            let e = by_version.entry(&r.version).or_insert(Entry {
                version: r.version.clone(),
                state: State::Missing,
                file: None,
                row: None,
            });
            e.row = Some(r);
        }
        for e in by_version.values_mut() {
            e.state = match (e.file, e.row) {
                (Some(f), Some(r)) if f.checksum == r.checksum => State::Applied,
                (Some(_), Some(_)) => State::Edited,
                (None, _) => State::Missing,
                (Some(_), None) if newest_applied.is_some_and(|n| e.version < *n) => {
                    State::OutOfOrder
                }
                (Some(_), None) => State::Pending,
            };
        }
        Plan {
            layout,
            entries: by_version.into_values().collect(),
        }
    }

    /// Edited, missing and (unless allowed) out-of-order migrations.
    pub fn problems(&self, allow_out_of_order: bool) -> Vec<Problem> {
        self.entries
            .iter()
            .filter(|e| match e.state {
                State::Edited | State::Missing => true,
                State::OutOfOrder => !allow_out_of_order,
                _ => false,
            })
            .map(|e| Problem {
                version: e.version.clone(),
                state: e.state,
                path: e.file.map(|f| f.path.clone()),
                name: e.name().to_owned(),
                expected: self.layout.file_name(&e.version, e.name()),
            })
            .collect()
    }

    /// What `up` would apply, in version order, up to and including `to`.
    pub fn pending(&self, to: Option<&Key>, allow_out_of_order: bool) -> Vec<&'a Migration> {
        self.entries
            .iter()
            .filter(|e| {
                e.state == State::Pending || (allow_out_of_order && e.state == State::OutOfOrder)
            })
            .filter(|e| to.is_none_or(|t| e.version.key() <= t))
            .filter_map(|e| e.file)
            .collect()
    }

    /// Applied migrations, newest first (for `down`).
    pub fn applied_newest_first(&self) -> Vec<&Entry<'a>> {
        let mut v: Vec<&Entry<'a>> = self.entries.iter().filter(|e| e.row.is_some()).collect();
        v.reverse();
        v
    }

    pub fn count(&self, state: State) -> usize {
        self.entries.iter().filter(|e| e.state == state).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::Checksum;
    use crate::migration::{Options, Section};

    fn file(v: u64, text: &str) -> Migration {
        Migration::new(
            Version::number(v, &v.to_string()),
            format!("m{v}"),
            Section {
                path: format!("{v}_m{v}.sql").into(),
                text: text.into(),
                first_line: 1,
                options: Options::default(),
            },
            None,
        )
    }

    fn row(v: u64, text: &str) -> AppliedRow {
        AppliedRow {
            version: Version::number(v, &v.to_string()),
            name: format!("m{v}"),
            checksum: Checksum::of(text),
            down_checksum: None,
            applied_at: String::new(),
            duration_ms: 0,
            rows_changed: 0,
            run_id: None,
        }
    }

    fn states(files: &[Migration], rows: &[AppliedRow]) -> Vec<(u64, State)> {
        Plan::build(Layout::Numbered, files, rows)
            .entries
            .iter()
            .map(|e| (e.version.id().parse().unwrap(), e.state))
            .collect()
    }

    #[test]
    fn table_of_cases() {
        use State::*;
        type Case = (Vec<Migration>, Vec<AppliedRow>, Vec<(u64, State)>);
        let cases: Vec<Case> = vec![
            (vec![], vec![], vec![]),
            (
                vec![file(1, "a"), file(2, "b")],
                vec![],
                vec![(1, Pending), (2, Pending)],
            ),
            (
                vec![file(1, "a"), file(2, "b")],
                vec![row(1, "a")],
                vec![(1, Applied), (2, Pending)],
            ),
            (vec![file(1, "a!")], vec![row(1, "a")], vec![(1, Edited)]),
            (
                vec![file(2, "b")],
                vec![row(1, "a"), row(2, "b")],
                vec![(1, Missing), (2, Applied)],
            ),
            (
                vec![file(1, "a"), file(2, "b"), file(3, "c")],
                vec![row(1, "a"), row(3, "c")],
                vec![(1, Applied), (2, OutOfOrder), (3, Applied)],
            ),
            // Every state at once: nothing stops at the first problem.
            (
                vec![file(1, "a"), file(2, "x"), file(4, "d"), file(6, "f")],
                vec![row(1, "a"), row(2, "b"), row(3, "c"), row(5, "e")],
                vec![
                    (1, Applied),
                    (2, Edited),
                    (3, Missing),
                    (4, OutOfOrder),
                    (5, Missing),
                    (6, Pending),
                ],
            ),
        ];
        for (files, rows, want) in cases {
            assert_eq!(states(&files, &rows), want);
        }
    }

    #[test]
    fn ordering_is_numeric_not_lexical() {
        let files = vec![file(9, "a"), file(10, "b")];
        let rows = vec![row(10, "b")];
        assert_eq!(states(&files, &rows)[0], (9, State::OutOfOrder));
    }

    #[test]
    fn problems_and_pending() {
        let files = vec![file(1, "a"), file(2, "b"), file(3, "c"), file(4, "d")];
        let rows = vec![row(1, "a"), row(3, "c")];
        let plan = Plan::build(Layout::Numbered, &files, &rows);
        assert_eq!(plan.problems(false).len(), 1);
        assert!(plan.problems(true).is_empty());
        let p: Vec<u64> = plan
            .pending(None, false)
            .iter()
            .map(|m| m.version.id().parse::<u64>().unwrap())
            .collect();
        assert_eq!(p, vec![4]);
        let p: Vec<u64> = plan
            .pending(None, true)
            .iter()
            .map(|m| m.version.id().parse::<u64>().unwrap())
            .collect();
        assert_eq!(p, vec![2, 4]);
        let p: Vec<u64> = plan
            .pending(Some(&Key::Number(3)), true)
            .iter()
            .map(|m| m.version.id().parse::<u64>().unwrap())
            .collect();
        assert_eq!(p, vec![2]);
    }
}

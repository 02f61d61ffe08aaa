//! `backstop new NAME`: a new migration named the way the folder already names
//! its migrations (issue "No surprises": a 14-digit stamp in a folder of
//! `0007_…` names would make every later hand-numbered file out-of-order).
//! The next version always sorts after the newest one.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};

use super::layout::{Layout, Role};
use super::scan::{self, Entry, Shape};
use crate::error::{Error, Result};
use crate::migration::Key;

const STAMP: &str = "%Y%m%d%H%M%S";

/// Creates the next migration in `dir` (the folder is created if needed) and
/// returns the path of its up file. `timestamp` forces backstop's own
/// `<UTC YYYYMMDDHHMMSS>_<slug>.sql` in a folder of numbered migrations.
pub fn create(dir: &Path, name: &str, now: DateTime<Utc>, timestamp: bool) -> Result<PathBuf> {
    let slug = crate::slug::slug(name, '_', 80);
    if slug.is_empty() {
        return Err(Error::Setting {
            setting: "NAME",
            value: name.to_owned(),
            expected: "a name with letters or digits, e.g. add_users",
        });
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let scanned = scan::scan(super::Folder::Disk(dir))?;
    let layout = scan::layout_of(&scanned.entries).map_err(|e| Error::Source(vec![e]))?;
    if timestamp && layout != Layout::Numbered {
        return Err(Error::Setting {
            setting: "--timestamp",
            value: layout.to_string(),
            expected: "a folder of numbered migrations (this folder's layout would be mixed)",
        });
    }
    let newest = scanned
        .entries
        .iter()
        .max_by(|a, b| (&a.named.version, &a.path).cmp(&(&b.named.version, &b.path)));
    let version = next_version(layout, newest, now, timestamp, &slug);
    let pair = newest.is_some_and(|e| e.named.role == Role::Up);
    let files = match layout {
        Layout::Numbered | Layout::Dated if pair => vec![
            (format!("{version}_{slug}.up.sql"), ""),
            (format!("{version}_{slug}.down.sql"), ""),
        ],
        Layout::Numbered | Layout::Dated => vec![(
            format!("{version}_{slug}.sql"),
            "-- migrate:up\n\n\n-- migrate:down\n\n",
        )],
        Layout::Diesel => {
            let folder = format!("{version}_{slug}");
            vec![
                (format!("{folder}/up.sql"), ""),
                (format!("{folder}/down.sql"), ""),
            ]
        }
        Layout::Flyway => vec![(format!("V{version}__{slug}.sql"), "")],
    };
    write_new(dir, &files)
}

/// Writes each file with `create_new`, never overwriting a migration written
/// in the same second; returns the first (the up file).
fn write_new(dir: &Path, files: &[(String, &str)]) -> Result<PathBuf> {
    let mut first = None;
    for (name, text) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
            .map_err(|e| Error::io(&path, e))?;
        first.get_or_insert(path);
    }
    Ok(first.unwrap_or_else(|| dir.to_path_buf()))
}

/// A free name for `entry`, whose version another file already uses: the next
/// version of the folder, written in the entry's own style.
pub(super) fn rename_for(entry: &Entry, all: &[Entry]) -> Option<String> {
    let layout = entry.named.layout;
    if layout == Layout::Dated {
        // Dated migrations are told apart by their whole name.
        return None;
    }
    let newest = all
        .iter()
        .filter(|e| e.named.layout == layout)
        .max_by(|a, b| a.named.version.cmp(&b.named.version))?;
    let next = next_version(layout, Some(newest), Utc::now(), false, &entry.named.name);
    let written = entry.named.version.shown();
    let name = match &entry.shape {
        Shape::DieselDir { .. } => entry.path.parent()?.file_name()?.to_str()?,
        Shape::File | Shape::Program { .. } => entry.path.file_name()?.to_str()?,
    };
    let at = name.find(written)?;
    Some(format!(
        "{}{next}{}",
        &name[..at],
        &name[at + written.len()..]
    ))
}

/// The version (as written in a file name) of the next migration after `newest`.
fn next_version(
    layout: Layout,
    newest: Option<&Entry>,
    now: DateTime<Utc>,
    timestamp: bool,
    slug: &str,
) -> String {
    let Some(newest) = newest else {
        return now.format(STAMP).to_string();
    };
    let shown = newest.named.version.shown();
    match layout {
        Layout::Numbered => next_number(shown, now, timestamp),
        Layout::Dated => next_date(shown, newest.named.version.id(), now, slug),
        Layout::Diesel => {
            let id = newest.named.version.id();
            let at = after(now, id, STAMP, Duration::seconds(1));
            at.format("%Y-%m-%d-%H%M%S").to_string()
        }
        Layout::Flyway => match newest.named.version.key() {
            Key::Parts(p) if p.len() == 1 && shown.len() == 14 => {
                after(now, shown, STAMP, Duration::seconds(1))
                    .format(STAMP)
                    .to_string()
            }
            _ => increment_last(shown),
        },
    }
}

/// 14 digits: a UTC timestamp; 8 digits that are a date: today; otherwise the
/// next number, zero-padded to the newest one's width.
fn next_number(shown: &str, now: DateTime<Utc>, timestamp: bool) -> String {
    let date_like = shown.len() == 8 && NaiveDate::parse_from_str(shown, "%Y%m%d").is_ok();
    if timestamp || shown.len() == 14 && NaiveDateTime::parse_from_str(shown, STAMP).is_ok() {
        return after(now, shown, STAMP, Duration::seconds(1))
            .format(STAMP)
            .to_string();
    }
    let n: u64 = shown.parse().unwrap_or(0);
    if date_like {
        let today = now.format("%Y%m%d").to_string();
        if today.parse::<u64>().unwrap_or(0) > n {
            return today;
        }
    }
    format!("{:0width$}", n.saturating_add(1), width = shown.len())
}

/// Today in the newest file's date style (with its time part, if it has one),
/// moved past the newest when that is needed to sort after it.
fn next_date(shown: &str, newest_id: &str, now: DateTime<Utc>, slug: &str) -> String {
    let sep = shown.chars().nth(4).unwrap_or('_');
    let fmt = match shown.len() {
        17 => format!("%Y{sep}%m{sep}%d{sep}%H%M%S"),
        15 => format!("%Y{sep}%m{sep}%d{sep}%H%M"),
        _ => format!("%Y{sep}%m{sep}%d"),
    };
    let step = match shown.len() {
        17 => Duration::seconds(1),
        15 => Duration::minutes(1),
        _ => Duration::days(1),
    };
    let candidate = now.format(&fmt).to_string();
    if format!("{candidate}{sep}{slug}").as_str() > newest_id {
        return candidate;
    }
    let newest = NaiveDateTime::parse_from_str(shown, &fmt)
        .or_else(|_| NaiveDate::parse_from_str(shown, &fmt).map(|d| d.and_time(Default::default())))
        .map(|t| t.and_utc())
        .unwrap_or(now);
    (newest + step).format(&fmt).to_string()
}

/// `now`, or one `step` after `newest` (written in `fmt`) if that is later, so
/// two migrations made in the same second never share a version.
fn after(now: DateTime<Utc>, newest: &str, fmt: &str, step: Duration) -> DateTime<Utc> {
    // Names have no fractions of a second: compare what they can hold.
    let now = now - Duration::nanoseconds(i64::from(now.timestamp_subsec_nanos()));
    match NaiveDateTime::parse_from_str(newest, fmt) {
        Ok(t) if t.and_utc() >= now => t.and_utc() + step,
        _ => now,
    }
}

/// Flyway `1_2` → `1_3`, `009` → `010`: the last part plus one, same width.
fn increment_last(shown: &str) -> String {
    let cut = shown.rfind(['.', '_']).map_or(0, |i| i + 1);
    let last = &shown[cut..];
    let n: u64 = last.parse().unwrap_or(0);
    format!(
        "{}{:0width$}",
        &shown[..cut],
        n.saturating_add(1),
        width = last.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        NaiveDateTime::parse_from_str(s, STAMP).unwrap().and_utc()
    }

    #[test]
    fn numbered_styles_are_followed() {
        let now = at("20261201120000");
        assert_eq!(next_number("0007", now, false), "0008");
        assert_eq!(next_number("9", now, false), "10");
        assert_eq!(next_number("20251009", now, false), "20261201");
        assert_eq!(next_number("20261201", now, false), "20261202");
        assert_eq!(next_number("20240101090000", now, false), "20261201120000");
        // The newest is in the future (or this second): one second after it.
        assert_eq!(next_number("20261201120000", now, false), "20261201120001");
        assert_eq!(next_number("0007", now, true), "20261201120000");
    }

    #[test]
    fn dated_names_sort_after_the_newest() {
        let now = at("20251106090000");
        assert_eq!(
            next_date("2025_10_09", "2025_10_09_a", now, "b"),
            "2025_11_06"
        );
        // Same date, but "add" would sort before "txn": the next day.
        assert_eq!(
            next_date("2025_11_06", "2025_11_06_txn_allow", now, "add"),
            "2025_11_07"
        );
        assert_eq!(
            next_date("2025-11-01", "2025-11-01_x", now, "y"),
            "2025-11-06"
        );
        assert_eq!(
            next_date("2025_11_06_120000", "2025_11_06_120000_x", now, "y"),
            "2025_11_06_120001"
        );
    }

    #[test]
    fn flyway_increments_the_last_part() {
        assert_eq!(increment_last("1_2"), "1_3");
        assert_eq!(increment_last("1.9"), "1.10");
        assert_eq!(increment_last("009"), "010");
        assert_eq!(increment_last("3"), "4");
    }
}

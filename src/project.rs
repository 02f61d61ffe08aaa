//! The one way in (issue "A house ready"): every command that plans reads the
//! migrations folder, opens the database and reads what it records in the same
//! order, through `Project::load`, and so sees the same plan as `status`.

use rusqlite::Connection;

use crate::db::{self, Access};
use crate::error::{Error, Result};
use crate::history::{self, AppliedRow};
use crate::migration::Key;
use crate::plan::{Entry, Plan};
use crate::settings::Settings;
use crate::source::{self, Source};

/// The folder, the database (when it exists) and its tracking rows.
pub struct Project {
    /// The migrations folder the source was read from.
    pub dir: std::path::PathBuf,
    pub source: Source,
    pub db: Option<db::Opened>,
    pub rows: Vec<AppliedRow>,
}

/// Whether the command can work on a database that does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// `status`, `up`: a missing database is an empty one.
    Optional,
    /// Everything else: a missing database is an error (exit 4).
    Existing,
}

impl Project {
    /// Reads the folder first (a bad folder is refused before the database is
    /// touched), then opens the database read-only and reads its rows.
    pub fn load(settings: &Settings, need: Need) -> Result<Project> {
        let source = source::discover(settings.folder())?;
        let path = &settings.database;
        let db = db::open_configured(settings, Access::Read)?;
        if need == Need::Existing && db.is_none() {
            return Err(Error::NoDatabase { path: path.clone() });
        }
        let rows = match &db {
            Some(o) => {
                history::applied(&o.conn, source.layout).map_err(|e| Error::from_sqlite(path, e))?
            }
            None => Vec::new(),
        };
        Ok(Project {
            dir: settings.migrations.clone(),
            source,
            db,
            rows,
        })
    }

    pub fn plan(&self) -> Plan<'_> {
        Plan::build(self.source.layout, &self.source.migrations, &self.rows)
    }

    pub fn conn(&self) -> Option<&Connection> {
        self.db.as_ref().map(|o| &o.conn)
    }

    /// A `VERSION` argument read as the folder's layout reads versions, as an
    /// inclusive bound (`up --to`, `down --to`, `baseline`).
    pub fn bound(&self, arg: &str, setting: &'static str) -> Result<Key> {
        self.source.layout.bound(arg).ok_or_else(|| Error::Setting {
            setting,
            value: arg.to_owned(),
            expected: "a version as the migration files write it (see `backstop status`)",
        })
    }

    /// The one entry a `VERSION` argument names (`repair`): by its tracking
    /// id, as its file writes it, or as the layout reads it.
    pub fn entry<'p>(&self, plan: &'p Plan<'_>, arg: &str) -> Result<&'p Entry<'p>> {
        let hits = self.matching(plan, arg)?;
        match hits.as_slice() {
            [one] => Ok(one),
            [] => Err(Error::UnknownVersion {
                version: arg.to_owned(),
                folder: self.dir.clone(),
            }),
            many => Err(Error::AmbiguousVersion {
                version: arg.to_owned(),
                candidates: many.iter().map(|e| e.version.id().to_owned()).collect(),
            }),
        }
    }

    /// The entries a `VERSION` argument names; refused (exit 2) when it cannot
    /// be a version of this layout at all.
    pub fn matching<'p>(&self, plan: &'p Plan<'_>, arg: &str) -> Result<Vec<&'p Entry<'p>>> {
        let key = self.source.layout.bound(arg);
        let hits: Vec<&Entry<'_>> = plan
            .entries
            .iter()
            .filter(|e| {
                e.version.id() == arg
                    || e.version.shown() == arg
                    || key.as_ref() == Some(e.version.key())
            })
            .collect();
        if hits.is_empty() && key.is_none() {
            return Err(Error::Setting {
                setting: "VERSION",
                value: arg.to_owned(),
                expected: "a version as the migration files write it (see `backstop status`)",
            });
        }
        Ok(hits)
    }
}

/// The folder's layout, to read a database's versions where the folder itself
/// does not matter (`backup`, `restore`): the default when it cannot be read,
/// since the emergency path must not depend on it.
pub fn layout_or_default(settings: &Settings) -> crate::source::Layout {
    source::discover(settings.folder())
        .map(|s| s.layout)
        .unwrap_or_default()
}

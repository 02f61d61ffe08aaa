//! `log`: the runs recorded in the database's `_backstop_runs`, newest first.

use crate::db::{self, Access};
use crate::error::{Error, Result};
use crate::history::{self, RunRow};
use crate::settings::Settings;

pub fn read(settings: &Settings) -> Result<Vec<RunRow>> {
    let path = &settings.database;
    let opened = db::open(path, Access::Read, settings.busy_timeout)?
        .ok_or_else(|| Error::NoDatabase { path: path.clone() })?;
    history::runs(&opened.conn).map_err(|e| Error::from_sqlite(path, e))
}

use crate::cli::{exit::Exit, render, Ui};
use crate::error::Error;
use crate::settings::Settings;

pub fn run(settings: &Settings, ui: &Ui) -> Result<Exit, Error> {
    let runs = crate::log::read(settings)?;
    if ui.json {
        render::json(&serde_json::json!({
            "database": settings.database,
            "runs": runs,
        }))?;
    } else if !ui.quiet {
        render::out(&render::runs(&runs));
    }
    Ok(Exit::Ok)
}

use crate::cli::{exit::Exit, render, Ui};
use crate::error::Error;
use crate::settings::Settings;

pub fn run(settings: &Settings, ui: &Ui, name: &str, timestamp: bool) -> Result<Exit, Error> {
    let path = crate::source::create(&settings.migrations, name, chrono::Utc::now(), timestamp)?;
    if ui.json {
        render::json(&serde_json::json!({ "path": path }))?;
    } else {
        // The path is the output, even with --quiet: scripts open it next.
        render::out(&format!("{}\n", path.display()));
    }
    Ok(Exit::Ok)
}

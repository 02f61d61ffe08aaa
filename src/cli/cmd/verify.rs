use console::style;

use crate::cli::{exit::Exit, progress::Progress, render, Signals, Ui};
use crate::error::Error;
use crate::settings::Settings;

pub fn run(settings: &Settings, ui: &Ui, signals: &Signals) -> Result<Exit, Error> {
    let mut progress = Progress::new(ui, signals);
    let r = crate::verify::check(settings, &mut progress, &signals.interrupt);
    progress.finish();
    drop(progress);
    let r = r?;
    let failed = r.findings.iter().filter(|f| !f.ok).count();
    if ui.json {
        render::json(&render::verify_json(&r))?;
        return Ok(if r.passed { Exit::Ok } else { Exit::Attention });
    }
    if !(ui.quiet && r.passed) {
        let mut s = String::new();
        for f in &r.findings {
            let mark = if f.ok {
                style("ok  ").green().to_string()
            } else {
                style("FAIL").red().bold().to_string()
            };
            s.push_str(&format!("{mark}  {:<13} {}\n", f.check, f.message));
            if let Some(fix) = &f.fix {
                s.push_str(&format!("      {:<13} → {}\n", "", render::fix(fix)));
            }
        }
        s.push_str(&if r.passed {
            "\nall checks passed\n".to_string()
        } else {
            format!("\n{failed} check(s) failed\n")
        });
        render::out(&s);
    }
    if r.passed {
        Ok(Exit::Ok)
    } else {
        Err(Error::Findings {
            count: failed,
            path: r.database,
        })
    }
}

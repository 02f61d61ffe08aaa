use console::style;

use crate::cli::{exit::code, render, Ui};
use crate::error::Error;
use crate::settings::Settings;

pub fn run(settings: &Settings, ui: &Ui) -> Result<i32, Error> {
    let r = crate::verify::run(settings)?;
    let failed = r.findings.iter().filter(|f| !f.ok).count();
    if ui.json {
        render::json(&r)?;
    } else if !(ui.quiet && r.passed) {
        let mut s = String::new();
        for f in &r.findings {
            let mark = if f.ok {
                style("ok  ").green().to_string()
            } else {
                style("FAIL").red().bold().to_string()
            };
            s.push_str(&format!("{mark}  {:<13} {}\n", f.check, f.message));
            if let Some(fix) = &f.fix {
                s.push_str(&format!("      {:<13} → {fix}\n", ""));
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
        Ok(code::OK)
    } else if ui.json {
        Ok(code::REFUSED)
    } else {
        Err(Error::Findings {
            count: failed,
            path: r.database,
        })
    }
}

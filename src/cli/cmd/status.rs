use console::style;

use crate::cli::{exit::Exit, render, Ui};
use crate::error::Error;
use crate::migration::Kind;
use crate::settings::Settings;
use indicatif::HumanBytes;

pub fn run(settings: &Settings, ui: &Ui, exit_code: bool) -> Result<Exit, Error> {
    let status = crate::status::read(settings)?;
    let code = if exit_code && status.counts.needs_attention() {
        Exit::Attention
    } else {
        Exit::Ok
    };
    if ui.json {
        render::json(&status)?;
        return Ok(code);
    }
    if ui.quiet {
        return Ok(code);
    }
    let mut s = String::new();
    match &status.facts {
        Some(f) => s.push_str(&format!(
            "database  {} ({}, journal {})\n",
            status.database.display(),
            HumanBytes(f.size),
            f.journal_mode
        )),
        None => s.push_str(&format!(
            "database  {} (does not exist yet; `backstop up` creates it)\n",
            status.database.display()
        )),
    }
    match &status.drift {
        None => {}
        Some(d) if d.is_empty() => s.push_str("drift     none\n"),
        Some(d) => {
            s.push_str(&format!(
                "drift     {} schema changed outside migrations\n",
                style("!").red().bold()
            ));
            for (what, list) in [
                ("appeared", &d.appeared),
                ("vanished", &d.vanished),
                ("changed", &d.changed),
            ] {
                if !list.is_empty() {
                    s.push_str(&format!("          {what}: {}\n", list.join(", ")));
                }
            }
        }
    }
    match &status.newest_backup {
        Some(b) => s.push_str(&format!("backup    {}\n", b.display())),
        None => s.push_str("backup    none yet\n"),
    }
    s.push('\n');
    if status.migrations.is_empty() {
        s.push_str(&format!(
            "no migrations in {}\n",
            settings.migrations.display()
        ));
    } else {
        let rows: Vec<Vec<String>> = status
            .migrations
            .iter()
            .map(|m| {
                let name = match m.kind {
                    // Executables say how they run (issue 12).
                    Some(kind @ (Kind::Module | Kind::Script)) => format!("{} ({kind})", m.name),
                    _ => m.name.clone(),
                };
                vec![
                    m.version.to_string(),
                    name,
                    render::state(m.state),
                    m.applied_at.clone().unwrap_or_default(),
                ]
            })
            .collect();
        s.push_str(&render::table(
            &["VERSION", "NAME", "STATE", "APPLIED AT"],
            &rows,
        ));
        let c = &status.counts;
        let mut parts = vec![
            format!("{} applied", c.applied),
            format!("{} pending", c.pending),
        ];
        for (n, what) in [
            (c.edited, "edited"),
            (c.missing, "missing"),
            (c.out_of_order, "out-of-order"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        s.push_str(&format!("\n{}\n", parts.join(", ")));
        if c.edited + c.missing + c.out_of_order > 0 {
            s.push_str(
                "`backstop up` refuses to run until these are resolved: restore edited or missing \
                 files from version control, `backstop repair VERSION` to accept an intentional \
                 edit, or `backstop up --allow-out-of-order` for older pending files\n",
            );
        }
    }
    if ui.verbose && !status.ignored.is_empty() {
        s.push_str(&format!(
            "\nnot migrations, left alone in {}:\n",
            settings.migrations.display()
        ));
        for p in &status.ignored {
            s.push_str(&format!("  {}\n", p.display()));
        }
    }
    render::out(&s);
    Ok(code)
}

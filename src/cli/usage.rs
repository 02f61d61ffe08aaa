//! What clap could not parse, for people and for scripts: clap's text with a
//! `hint:` line like every other error, other tools' verbs pointed at
//! backstop's (issue "No surprises": `backstop history` used to suggest
//! `restore`), and one JSON document under `--json`.

use clap::error::{ContextKind, ContextValue, ErrorKind};

use super::{exit, render};

/// Other migration tools' commands, and what to type in backstop instead.
const VERBS: &[(&[&str], &str)] = &[
    (
        &["upgrade", "migrate", "apply", "deploy", "run"],
        "backstop calls it `up`: back up, then apply pending migrations",
    ),
    (
        &["downgrade", "rollback", "revert", "undo"],
        "backstop calls it `down` (run down sections, newest first); `backstop restore` puts a backup back",
    ),
    (
        &["current", "info", "show", "version"],
        "backstop calls it `status`: what is applied, pending or edited",
    ),
    (&["history"], "backstop calls it `log`: the runs recorded in the database"),
    (
        &["stamp", "fake", "mark"],
        "backstop calls it `baseline VERSION`; `backstop adopt` takes over another tool's history",
    ),
    (
        &["create", "generate", "make", "add"],
        "backstop calls it `new NAME`: a new migration file named like the folder's others",
    ),
    (&["validate", "check"], "backstop calls it `verify`: the pre-deploy check"),
    (
        &["reset", "fresh", "redo"],
        "backstop has no reset: `backstop restore` puts a backup back; `backstop down --to VERSION` reverts migrations",
    ),
];

/// Prints the usage error (or help/version) and returns clap's exit code.
pub fn report(e: &clap::Error) -> i32 {
    if !e.use_stderr() {
        // --help and --version: clap prints them to stdout (exit 0).
        let _ = e.print();
        return exit::of_clap(e);
    }
    let verb = (e.kind() == ErrorKind::InvalidSubcommand)
        .then(|| e.get(ContextKind::InvalidSubcommand))
        .flatten()
        .and_then(|v| match v {
            ContextValue::String(s) => VERBS
                .iter()
                .find(|(theirs, _)| theirs.contains(&s.as_str()))
                .map(|(_, hint)| (s.clone(), *hint)),
            _ => None,
        });
    let (text, hint) = match &verb {
        Some((theirs, hint)) => (
            format!("error: unrecognized subcommand '{theirs}'\n"),
            (*hint).to_owned(),
        ),
        None => clap_text(e),
    };
    // Plain text: --color is not known when the arguments do not parse.
    eprintln!("{text}hint: {hint}");
    // Scripts that asked for JSON get one document on usage errors too.
    if std::env::args_os().any(|a| a == "--json") {
        let first = text
            .lines()
            .next()
            .unwrap_or("")
            .trim_start_matches("error: ");
        let _ = render::json(&serde_json::json!({
            "ok": false,
            "error": first,
            "hint": hint,
            "exit_code": exit::of_clap(e),
        }));
    }
    exit::of_clap(e)
}

/// clap's own text, its closing "For more information, try '--help'" turned
/// into the hint.
fn clap_text(e: &clap::Error) -> (String, String) {
    let text = e.render().to_string();
    match text.trim_end().rsplit_once('\n') {
        Some((body, last)) if last.starts_with("For more information") => (
            format!("{body}\n"),
            format!("{}{}", &last[..1].to_lowercase(), &last[1..]),
        ),
        _ => (text, "see `backstop --help`".into()),
    }
}

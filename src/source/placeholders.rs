//! Flyway-style `${NAME}` placeholders (SPEC "Other layouts", issue 11),
//! substituted into the text that runs, never into what is checksummed: the
//! checksum and the recorded text are of the file as written.
//!
//! Which files: every file of a Flyway folder (Flyway replaces placeholders
//! by default, so its projects rely on it), and the files of any other layout
//! once the project defines a placeholder. Until then a `${…}` in a dbmate or
//! goose file is ordinary text, as it always was for those tools. Like
//! Flyway, a placeholder is replaced anywhere in the file (strings and
//! comments too), and one without a value is refused before anything runs.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::{FileError, FileErrorKind, Layout};
use crate::error::{Error, Result};
use crate::migration::Section;

/// Whether `layout`'s files get placeholders replaced, given the defined values.
pub fn applies(layout: Layout, values: &BTreeMap<String, String>) -> bool {
    layout == Layout::Flyway || !values.is_empty()
}

/// The sections with their placeholders replaced (borrowed when nothing
/// changes), or every undefined placeholder of every section, with its line.
pub fn substitute_all<'s>(
    layout: Layout,
    values: &BTreeMap<String, String>,
    sections: impl IntoIterator<Item = &'s Section>,
) -> Result<Vec<Cow<'s, Section>>> {
    let sections: Vec<&Section> = sections.into_iter().collect();
    if !applies(layout, values) {
        return Ok(sections.into_iter().map(Cow::Borrowed).collect());
    }
    let mut out = Vec::with_capacity(sections.len());
    let mut undefined = Vec::new();
    for s in sections {
        match substitute(s, values) {
            Ok(None) => out.push(Cow::Borrowed(s)),
            Ok(Some(text)) => out.push(Cow::Owned(Section {
                text: text.into(),
                ..s.clone()
            })),
            Err(mut e) => undefined.append(&mut e),
        }
    }
    if undefined.is_empty() {
        Ok(out)
    } else {
        Err(Error::UndefinedPlaceholders(undefined))
    }
}

/// The section's text with `${NAME}`s replaced; `None` when it has none.
fn substitute(
    section: &Section,
    values: &BTreeMap<String, String>,
) -> std::result::Result<Option<String>, Vec<FileError>> {
    let text = &section.text;
    let mut out = String::new();
    let mut copied = 0;
    let mut errors = Vec::new();
    for (at, name, end) in placeholders(text) {
        match values.get(name) {
            Some(v) => {
                out.push_str(&text[copied..at]);
                out.push_str(v);
            }
            None => errors.push(FileError {
                path: section.path.clone(),
                line: Some(section.line_at(at)),
                kind: FileErrorKind::UndefinedPlaceholder {
                    name: name.to_owned(),
                },
            }),
        }
        copied = end;
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if copied == 0 {
        return Ok(None);
    }
    out.push_str(&text[copied..]);
    Ok(Some(out))
}

/// Each `${NAME}` in `text`: its start, the name, and the byte after `}`. A
/// `${` not closed on its line, or around spaces, is text, not a placeholder.
fn placeholders(text: &str) -> impl Iterator<Item = (usize, &str, usize)> {
    let mut from = 0;
    std::iter::from_fn(move || loop {
        let at = from + text[from..].find("${")?;
        let rest = &text[at + 2..];
        let close = rest.find(|c: char| c == '}' || c == '\n' || c.is_whitespace() || c == '$');
        from = at + 2;
        if let Some(n) = close {
            if rest[n..].starts_with('}') && n > 0 {
                let end = at + 2 + n + 1;
                from = end;
                return Some((at, &rest[..n], end));
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migration::Options;

    fn section(text: &str) -> Section {
        Section {
            path: "V1__a.sql".into(),
            text: text.into(),
            first_line: 3,
            options: Options::default(),
        }
    }

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn replaces_everywhere_and_keeps_non_placeholders() {
        let s = section("CREATE TABLE ${t} (x); -- owner ${owner}\nSELECT '$', '${ x }', '${';");
        let got = substitute(&s, &values(&[("t", "app_users"), ("owner", "ops")]))
            .unwrap()
            .unwrap();
        assert_eq!(
            got,
            "CREATE TABLE app_users (x); -- owner ops\nSELECT '$', '${ x }', '${';"
        );
        assert_eq!(
            substitute(&section("SELECT 1;"), &values(&[])).unwrap(),
            None
        );
    }

    #[test]
    fn undefined_ones_are_all_named_with_their_lines() {
        let s = section("SELECT 1;\nSELECT ${a}, ${b};\n\nSELECT ${a};");
        let errors = substitute(&s, &values(&[("b", "2")])).unwrap_err();
        let found: Vec<(Option<usize>, String)> =
            errors.iter().map(|e| (e.line, e.to_string())).collect();
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].0, Some(4));
        assert_eq!(found[1].0, Some(6));
        assert!(found[0].1.contains("${a}"), "{}", found[0].1);
    }

    #[test]
    fn only_flyway_folders_or_defined_placeholders() {
        let s = section("SELECT '${literal}';");
        let none = values(&[]);
        let kept = substitute_all(Layout::Numbered, &none, [&s]).unwrap();
        assert!(matches!(kept[0], Cow::Borrowed(_)));
        assert!(substitute_all(Layout::Flyway, &none, [&s]).is_err());
        assert!(substitute_all(Layout::Numbered, &values(&[("x", "1")]), [&s]).is_err());
        let done = substitute_all(Layout::Dated, &values(&[("literal", "v")]), [&s]).unwrap();
        assert_eq!(done[0].text, "SELECT 'v';");
    }
}

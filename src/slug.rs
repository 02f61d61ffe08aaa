//! Turning free text (a migration name, a backup label) into a word that is
//! safe inside a file name. One function for both, so they never disagree.

/// Lowercase ASCII letters and digits, other runs replaced by one `sep`, cut
/// to `max` characters. Empty when `text` has no letter or digit.
pub fn slug(text: &str, sep: char, max: usize) -> String {
    let mut s = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.is_empty() && !s.ends_with(sep) {
            s.push(sep);
        }
    }
    let s: String = s.trim_end_matches(sep).chars().take(max).collect();
    s.trim_end_matches(sep).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slug("Before Deploy #42!", '-', 40), "before-deploy-42");
        assert_eq!(slug("add index on email", '_', 80), "add_index_on_email");
        assert_eq!(slug("  __x__y  ", '_', 80), "x_y");
        assert_eq!(slug("...", '-', 40), "");
        assert_eq!(slug("abc def", '-', 4), "abc");
    }
}

//! Checksums of migration text (SPEC "Checksums"): SHA-256 of the text with a
//! leading byte-order mark removed and CRLF normalized to LF, as lowercase hex.

use std::borrow::Cow;
use std::fmt;

use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Checksum(String);

impl Checksum {
    /// Checksum of migration text; normalizes first, so callers may pass raw text.
    pub fn of(text: &str) -> Checksum {
        Checksum(hex(&Sha256::digest(normalize(text).as_bytes())))
    }

    /// Checksum of a file's bytes (executable migrations, which need not be
    /// text): the same normalization on bytes, so a UTF-8 file hashes as
    /// `of` hashes its text.
    pub fn of_bytes(bytes: &[u8]) -> Checksum {
        let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
        let mut h = Sha256::new();
        let mut rest = bytes;
        while let Some(at) = rest.windows(2).position(|w| w == b"\r\n") {
            h.update(&rest[..at]);
            h.update(b"\n");
            rest = &rest[at + 2..];
        }
        h.update(rest);
        Checksum(hex(&h.finalize()))
    }

    /// A checksum read back from the tracking table.
    pub fn from_hex(hex: String) -> Checksum {
        Checksum(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Removes a leading UTF-8 byte-order mark and turns CRLF into LF, so that a file
/// saved by another editor or checked out on Windows keeps its checksum.
pub fn normalize(text: &str) -> Cow<'_, str> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.contains("\r\n") {
        Cow::Owned(text.replace("\r\n", "\n"))
    } else {
        Cow::Borrowed(text)
    }
}

/// `normalize` on owned text, in place: a large migration is not copied to
/// drop its BOM or its CRs.
pub fn normalize_owned(mut text: String) -> String {
    if text.starts_with('\u{feff}') {
        text.drain(..'\u{feff}'.len_utf8());
    }
    if !text.contains("\r\n") {
        return text;
    }
    let mut bytes = text.into_bytes();
    let mut out = 0;
    for i in 0..bytes.len() {
        if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            continue;
        }
        bytes[out] = bytes[i];
        out += 1;
    }
    bytes.truncate(out);
    // Only "\r" bytes before "\n" were removed: still valid UTF-8.
    String::from_utf8(bytes).unwrap_or_default()
}

/// Lowercase hex of a byte string (digests, mostly).
pub fn hex(bytes: &[u8]) -> String {
    // A table, not `write!`: `status` hashes every migration on each run.
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest() {
        assert_eq!(
            Checksum::of("abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn crlf_and_bom_do_not_change_the_checksum() {
        let lf = Checksum::of("CREATE TABLE a(x);\nINSERT INTO a VALUES (1);\n");
        let crlf = Checksum::of("CREATE TABLE a(x);\r\nINSERT INTO a VALUES (1);\r\n");
        let bom = Checksum::of("\u{feff}CREATE TABLE a(x);\r\nINSERT INTO a VALUES (1);\n");
        assert_eq!(lf, crlf);
        assert_eq!(lf, bom);
    }

    #[test]
    fn bytes_hash_as_their_text_does() {
        for text in ["a\r\nb\r\n", "\u{feff}x\r\n", "plain", "", "\r\r\n\n"] {
            assert_eq!(
                Checksum::of_bytes(text.as_bytes()),
                Checksum::of(text),
                "{text:?}"
            );
        }
        assert_ne!(
            Checksum::of_bytes(b"\xff\r\n"),
            Checksum::of_bytes(b"\xff\n\n")
        );
    }

    #[test]
    fn normalizing_in_place_agrees() {
        for t in ["a\r\nb", "\u{feff}x\r\n\r\ny\r", "plain", "\r\r\n", ""] {
            assert_eq!(normalize_owned(t.to_owned()), normalize(t), "{t:?}");
        }
    }

    #[test]
    fn a_lone_cr_or_inner_bom_is_content() {
        assert_ne!(Checksum::of("a\rb"), Checksum::of("a\nb"));
        assert_ne!(Checksum::of("a\u{feff}"), Checksum::of("a"));
    }
}

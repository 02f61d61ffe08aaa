//! How a migration's applied text is kept in its tracking row (for `repair`'s
//! diff). Up to `AS_TEXT` it is the text as written; above, zlib-compressed in
//! a BLOB (issue 14): binding a 100 MB text into the row made SQLite copy it
//! twice, tripling backstop's memory for the one migration that needs it most.

use std::io::{Read, Write};

use rusqlite::types::{ToSqlOutput, Value, ValueRef};

/// Texts up to this size are stored as they are.
const AS_TEXT: usize = 1 << 20;

/// Marks a compressed text (a BLOB holding anything else is not ours).
const MAGIC: &[u8] = b"backstop-zlib1\0";

/// The value to store for `text`.
pub(super) fn encode(text: &str) -> ToSqlOutput<'_> {
    if text.len() <= AS_TEXT {
        return ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes()));
    }
    let mut z = flate2::write::ZlibEncoder::new(MAGIC.to_vec(), flate2::Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = z.write_all(text.as_bytes());
    ToSqlOutput::Owned(Value::Blob(z.finish().unwrap_or_default()))
}

/// The text a stored value holds; `None` for what backstop did not write.
pub(super) fn decode(value: ValueRef<'_>) -> Option<String> {
    match value {
        ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => {
            let z = b.strip_prefix(MAGIC)?;
            let mut text = String::new();
            flate2::read::ZlibDecoder::new(z)
                .read_to_string(&mut text)
                .ok()?;
            Some(text)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_texts_stay_text_and_large_ones_round_trip_compressed() {
        let small = "CREATE TABLE a (x);\n";
        assert!(matches!(
            encode(small),
            ToSqlOutput::Borrowed(ValueRef::Text(_))
        ));
        let large: String = "INSERT INTO r VALUES ('xxxxxxxxxxxx');\n".repeat(50_000);
        let ToSqlOutput::Owned(Value::Blob(blob)) = encode(&large) else {
            panic!("not compressed")
        };
        assert!(blob.len() < large.len() / 20, "{}", blob.len());
        assert_eq!(
            decode(ValueRef::Blob(&blob)).as_deref(),
            Some(large.as_str())
        );
        assert_eq!(
            decode(ValueRef::Text(small.as_bytes())).as_deref(),
            Some(small)
        );
        assert_eq!(decode(ValueRef::Blob(b"other")), None);
    }
}

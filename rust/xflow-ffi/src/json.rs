//! JSON as it leaves the library: pure ASCII, every other character written as a `\uXXXX` escape
//! (UTF-16 units, so a pair for characters beyond the BMP). The module parses with
//! DataContractJsonSerializer, which reads through an XML reader that refuses U+FFFE and U+FFFF
//! (and would refuse any character XML forbids) when they come raw, but accepts every escape. A
//! name or message from the server therefore always arrives, whatever it holds.

use serde::Serialize;
use serde_json::ser::Formatter;
use std::io::{self, Write};

struct AsciiFormatter;

impl Formatter for AsciiFormatter {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut plain = 0;
        for (at, c) in fragment.char_indices() {
            if c.is_ascii() {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[plain..at])?;
            for unit in c.encode_utf16(&mut [0; 2]) {
                write!(writer, "\\u{unit:04x}")?;
            }
            plain = at + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[plain..])
    }
}

/// `value` as ASCII-only JSON.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(256);
    value.serialize(&mut serde_json::Serializer::with_formatter(
        &mut out,
        AsciiFormatter,
    ))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn everything_beyond_ascii_is_escaped_and_reads_back_the_same() {
        let text = "SD Løn \u{ffff}\u{fffe}\u{fdd0} \u{1ffff} \u{2028} \"q\"\\ \u{1}";
        let json = super::to_vec(&serde_json::json!({ "fileName": text, "ø": 1 })).unwrap();
        assert!(json.is_ascii(), "{}", String::from_utf8_lossy(&json));
        let text_json = String::from_utf8(json).unwrap();
        assert!(text_json.contains(r"L\u00f8n \uffff\ufffe\ufdd0 \ud83f\udfff \u2028"));
        let back: serde_json::Value = serde_json::from_str(&text_json).unwrap();
        assert_eq!(back["fileName"], text);
        assert_eq!(back["\u{f8}"], 1);
    }
}

//! SD Løn's import format is not public, so its files get no structural check: only that a file
//! is not empty and that its bytes are valid text in its declared encoding.
//!
//! "Declared" means, in this order: a byte-order mark (UTF-8, UTF-16 LE or BE); else an XML
//! declaration's `encoding` attribute (`<?xml … encoding="…"?>`, UTF-8 when absent, as XML says);
//! else nothing is declared, and the file must be UTF-8 or, failing that, Windows-1252 (the ANSI
//! code page of a Danish Windows server). Control characters other than tab, LF, CR, FF and SUB
//! mean the file is not text in any of them.

use crate::{Findings, Report};

/// How much of the file start is looked at for a byte-order mark or an XML declaration.
const HEAD: usize = 256;

#[derive(Default)]
pub(crate) struct Text {
    findings: Findings,
    head: Vec<u8>,
    mode: Option<Mode>,
    saw_bytes: bool,
    offset: u64,
    line: u64,
    utf8: Utf8,
    utf16: Utf16,
    /// First byte that is not valid in the single-byte charset: (line, offset, byte).
    single_error: Option<(u64, u64, u8)>,
    /// First control character: (line, offset, code).
    control: Option<(u64, u64, u32)>,
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    Utf8(&'static str),
    Utf16 {
        big_endian: bool,
    },
    Single(Charset, &'static str),
    /// Nothing declared: UTF-8, else Windows-1252.
    Undeclared,
    /// A declared encoding this check does not know.
    Unknown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Charset {
    Ascii,
    Latin1,
    Windows1252,
}

impl Charset {
    fn name(self) -> &'static str {
        match self {
            Charset::Ascii => "US-ASCII",
            Charset::Latin1 => "ISO-8859-1",
            Charset::Windows1252 => "Windows-1252",
        }
    }

    fn allows(self, b: u8) -> bool {
        match self {
            Charset::Ascii => b < 0x80,
            Charset::Latin1 => true,
            // The five bytes Windows-1252 leaves undefined.
            Charset::Windows1252 => !matches!(b, 0x81 | 0x8D | 0x8F | 0x90 | 0x9D),
        }
    }
}

/// A streaming UTF-8 check (RFC 3629: no overlongs, no surrogates, nothing past U+10FFFF).
#[derive(Default)]
struct Utf8 {
    need: u8,
    lo: u8,
    hi: u8,
    error: Option<(u64, u64)>,
}

impl Utf8 {
    /// False once the input is known not to be UTF-8.
    fn step(&mut self, b: u8) -> bool {
        if self.need == 0 {
            let (need, lo, hi) = match b {
                0x00..=0x7F => return true,
                0xC2..=0xDF => (1, 0x80, 0xBF),
                0xE0 => (2, 0xA0, 0xBF),
                0xE1..=0xEC | 0xEE..=0xEF => (2, 0x80, 0xBF),
                0xED => (2, 0x80, 0x9F),
                0xF0 => (3, 0x90, 0xBF),
                0xF1..=0xF3 => (3, 0x80, 0xBF),
                0xF4 => (3, 0x80, 0x8F),
                _ => return false,
            };
            (self.need, self.lo, self.hi) = (need, lo, hi);
            true
        } else if (self.lo..=self.hi).contains(&b) {
            self.need -= 1;
            (self.lo, self.hi) = (0x80, 0xBF);
            true
        } else {
            false
        }
    }
}

#[derive(Default)]
struct Utf16 {
    odd: Option<u8>,
    high_surrogate: bool,
    error: Option<(u64, u64)>,
}

impl Text {
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.saw_bytes = true;
        if self.mode.is_none() {
            let take = (HEAD - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..take]);
            if self.head.len() < HEAD {
                return;
            }
            self.decide();
            self.scan_head();
            self.scan(&bytes[take..]);
        } else {
            self.scan(bytes);
        }
    }

    pub(crate) fn finish(mut self) -> Report {
        if !self.saw_bytes {
            self.findings.add(0, "file", "is empty");
            return self.findings.0;
        }
        if self.mode.is_none() {
            self.decide();
            self.scan_head();
        }
        let mode = self.mode.expect("decided above");
        let at = |line: u64, offset: u64| format!("at line {line} (byte offset {offset})");
        match mode {
            Mode::Utf8(declared_by) => {
                if self.utf8.error.is_none() && self.utf8.need > 0 {
                    self.utf8.error = Some((self.line, self.offset));
                }
                if let Some((line, offset)) = self.utf8.error {
                    self.findings.add(
                        line,
                        "encoding",
                        format!(
                            "not valid UTF-8, which {declared_by} declares, {}",
                            at(line, offset)
                        ),
                    );
                }
            }
            Mode::Utf16 { big_endian } => {
                if self.utf16.error.is_none()
                    && (self.utf16.odd.is_some() || self.utf16.high_surrogate)
                {
                    self.utf16.error = Some((self.line, self.offset));
                }
                if let Some((line, offset)) = self.utf16.error {
                    let which = if big_endian { "UTF-16BE" } else { "UTF-16LE" };
                    self.findings.add(
                        line,
                        "encoding",
                        format!(
                            "not valid {which}, which the byte-order mark declares, {}",
                            at(line, offset)
                        ),
                    );
                }
            }
            Mode::Single(charset, declared_by) => {
                if let Some((line, offset, b)) = self.single_error {
                    self.findings.add(
                        line,
                        "encoding",
                        format!(
                            "byte 0x{b:02X} is not valid {}, which {declared_by} declares, {}",
                            charset.name(),
                            at(line, offset)
                        ),
                    );
                }
            }
            Mode::Undeclared => {
                if self.utf8.need > 0 && self.utf8.error.is_none() {
                    self.utf8.error = Some((self.line, self.offset));
                }
                if let (Some(_), Some((line, offset, b))) = (self.utf8.error, self.single_error) {
                    self.findings.add(
                        line,
                        "encoding",
                        format!(
                            "declares no encoding and is neither UTF-8 nor Windows-1252: byte \
                             0x{b:02X} {}",
                            at(line, offset)
                        ),
                    );
                }
            }
            Mode::Unknown => {}
        }
        if let Some((line, offset, code)) = self.control {
            self.findings.add(
                line,
                "encoding",
                format!(
                    "control character U+{code:04X} {}: not a text file",
                    at(line, offset)
                ),
            );
        }
        self.findings.0
    }

    /// Picks the declared encoding from the start of the file.
    fn decide(&mut self) {
        let head = &self.head;
        let mode = if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
            Mode::Utf8("the byte-order mark")
        } else if head.starts_with(&[0xFF, 0xFE]) {
            Mode::Utf16 { big_endian: false }
        } else if head.starts_with(&[0xFE, 0xFF]) {
            Mode::Utf16 { big_endian: true }
        } else if head.starts_with(b"<?xml") {
            let end = find(head, b"?>").unwrap_or(head.len());
            match xml_encoding(&head[..end]) {
                None => Mode::Utf8("XML (no encoding attribute)"),
                Some(label) => match label.to_ascii_lowercase().as_str() {
                    "utf-8" | "utf8" => Mode::Utf8("the XML declaration"),
                    "iso-8859-1" | "iso8859-1" | "latin1" | "latin-1" => {
                        Mode::Single(Charset::Latin1, "the XML declaration")
                    }
                    "windows-1252" | "cp1252" => {
                        Mode::Single(Charset::Windows1252, "the XML declaration")
                    }
                    "us-ascii" | "ascii" => Mode::Single(Charset::Ascii, "the XML declaration"),
                    "utf-16" | "utf-16le" | "utf-16be" => {
                        self.findings.add(
                            1,
                            "encoding",
                            format!(
                                "the XML declaration says {label}, but the file has no UTF-16 \
                                 byte-order mark and its declaration is in single bytes"
                            ),
                        );
                        Mode::Unknown
                    }
                    _ => {
                        self.findings.add(
                            1,
                            "encoding",
                            format!(
                                "the XML declaration names encoding {label:?}, which this check \
                                 does not know; the bytes were not checked"
                            ),
                        );
                        Mode::Unknown
                    }
                },
            }
        } else {
            Mode::Undeclared
        };
        self.mode = Some(mode);
    }

    fn scan_head(&mut self) {
        let head = std::mem::take(&mut self.head);
        let skip = match self.mode {
            Some(Mode::Utf8("the byte-order mark")) => 3,
            Some(Mode::Utf16 { .. }) => 2,
            _ => 0,
        };
        self.offset = skip as u64;
        self.scan(&head[skip.min(head.len())..]);
    }

    fn scan(&mut self, bytes: &[u8]) {
        if self.line == 0 {
            self.line = 1;
        }
        match self.mode.expect("decided before scanning") {
            Mode::Utf16 { big_endian } => self.scan_utf16(bytes, big_endian),
            mode => {
                let mut rest = bytes;
                while !rest.is_empty() {
                    if self.utf8.need == 0 {
                        // Printable ASCII, tab and CR are valid in every single-byte mode and
                        // leave the UTF-8 check where it is: only the position moves.
                        let plain = rest
                            .iter()
                            .position(|&b| !(b' '..=b'~').contains(&b) && b != b'\t' && b != b'\r')
                            .unwrap_or(rest.len());
                        self.offset += plain as u64;
                        rest = &rest[plain..];
                    }
                    let Some((&b, tail)) = rest.split_first() else {
                        break;
                    };
                    self.byte(mode, b);
                    self.offset += 1;
                    if b == b'\n' {
                        self.line += 1;
                    }
                    rest = tail;
                }
            }
        }
    }

    fn byte(&mut self, mode: Mode, b: u8) {
        let (line, offset) = (self.line, self.offset);
        if self.control.is_none() && is_control(u32::from(b)) {
            self.control = Some((line, offset, u32::from(b)));
        }
        match mode {
            Mode::Utf8(_) => {
                if self.utf8.error.is_none() && !self.utf8.step(b) {
                    self.utf8.error = Some((line, offset));
                }
            }
            Mode::Single(charset, _) => {
                if self.single_error.is_none() && !charset.allows(b) {
                    self.single_error = Some((line, offset, b));
                }
            }
            Mode::Undeclared => {
                if self.utf8.error.is_none() && !self.utf8.step(b) {
                    self.utf8.error = Some((line, offset));
                }
                if self.single_error.is_none() && !Charset::Windows1252.allows(b) {
                    self.single_error = Some((line, offset, b));
                }
            }
            Mode::Utf16 { .. } | Mode::Unknown => {}
        }
    }

    fn scan_utf16(&mut self, bytes: &[u8], big_endian: bool) {
        for &b in bytes {
            self.offset += 1;
            let Some(first) = self.utf16.odd.take() else {
                self.utf16.odd = Some(b);
                continue;
            };
            let unit = if big_endian {
                u16::from_be_bytes([first, b])
            } else {
                u16::from_le_bytes([first, b])
            };
            let (line, offset) = (self.line, self.offset - 2);
            let high = (0xD800..=0xDBFF).contains(&unit);
            let low = (0xDC00..=0xDFFF).contains(&unit);
            let valid = if self.utf16.high_surrogate { low } else { !low };
            if !valid && self.utf16.error.is_none() {
                self.utf16.error = Some((line, offset));
            }
            self.utf16.high_surrogate = high;
            if self.control.is_none() && is_control(u32::from(unit)) {
                self.control = Some((line, offset, u32::from(unit)));
            }
            if unit == 0x0A {
                self.line += 1;
            }
        }
    }
}

/// C0 controls other than tab, LF, FF, CR and SUB (an old end-of-file mark).
fn is_control(code: u32) -> bool {
    code < 0x20 && !matches!(code, 0x09 | 0x0A | 0x0C | 0x0D | 0x1A)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The value of `encoding="…"` (or `'…'`) in an XML declaration.
fn xml_encoding(declaration: &[u8]) -> Option<String> {
    let at = find(declaration, b"encoding")? + b"encoding".len();
    let rest = &declaration[at..];
    let rest = &rest[rest.iter().position(|b| !b.is_ascii_whitespace())?..];
    let rest = rest.strip_prefix(b"=")?;
    let rest = &rest[rest.iter().position(|b| !b.is_ascii_whitespace())?..];
    let quote = *rest.first().filter(|q| matches!(q, b'"' | b'\''))?;
    let value = &rest[1..];
    let end = value.iter().position(|&b| b == quote)?;
    Some(String::from_utf8_lossy(&value[..end]).into_owned())
}

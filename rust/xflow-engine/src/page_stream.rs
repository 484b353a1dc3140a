//! An incremental reader for the deliveries page (`{"deliveries":[{…},…],"hasMore":…}`, the
//! shape `protocol::Page` describes), so a page is never held whole: each delivery's small fields
//! are collected, and its `content` string is handed out in pieces as it is read, unescaped, for
//! the caller to decode and hash on the way into a file. Memory stays at the read buffer plus
//! the small fields, whatever the size of the page or of one delivery.
//!
//! It accepts what serde_json accepts for `Page` (fields in any order, unknown fields skipped,
//! every string escape, whitespace anywhere) and refuses the same malformed input (duplicate or
//! missing fields, invalid UTF-8, lone surrogates, control characters in strings, trailing
//! data); the property tests check that against serde_json on generated pages. No streaming
//! JSON crate is in the offline mirror, hence this small one for one fixed shape.

use crate::protocol::WireId;
use std::io::{self, Read};

/// Where a piece of a string (or of decoded content) goes.
pub type Sink<'s> = &'s mut dyn FnMut(&[u8]) -> io::Result<()>;

/// The largest small field (id, system, file name, sha256, createdAt, an unknown string) kept:
/// a server that sends a huge one gets an error, not our memory.
pub const MAX_FIELD_BYTES: usize = 64 * 1024;
/// Nesting allowed inside unknown fields (serde_json's own limit is 128).
const MAX_DEPTH: usize = 128;
const BUFFER: usize = 64 * 1024;

/// One delivery's fields apart from its content.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeliveryFields {
    pub id: WireId,
    pub system: String,
    pub file_name: String,
    pub sha256: String,
    pub created_at: Option<String>,
}

/// Why a page could not be read. `Io` comes from the source or from the content sink.
#[derive(Debug)]
pub enum PageError {
    Io(io::Error),
    Syntax(String),
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PageError::Io(e) => write!(f, "{e}"),
            PageError::Syntax(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for PageError {}

impl From<io::Error> for PageError {
    fn from(e: io::Error) -> Self {
        PageError::Io(e)
    }
}

type Result<T> = std::result::Result<T, PageError>;

fn syntax<T>(what: impl Into<String>) -> Result<T> {
    Err(PageError::Syntax(what.into()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// Before the page's opening brace.
    Start,
    /// Inside the deliveries array; `first`: no delivery read yet.
    InDeliveries { first: bool },
    /// The page has been read to its end.
    Done,
}

/// Reads a page from `R`, one delivery at a time (`next_delivery`), then `has_more`.
pub struct PageReader<R> {
    source: R,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    /// Bytes of the source before `buf[0]`, so `offset()` is a position in the whole source.
    before_buf: u64,
    eof: bool,
    position: Position,
    /// Where the last delivery's `content` string starts (its opening quote) in the source.
    content_offset: u64,
    has_more: Option<bool>,
    saw_deliveries: bool,
}

/// Where the characters of a string go.
enum Target<'a> {
    Skip,
    Collect(&'a mut Vec<u8>),
    /// A delivery's text field, read as `protocol::wire_text` reads it: raw control characters
    /// and lone surrogates allowed (WTF-8 here, U+FFFD in the result).
    Text(&'a mut Vec<u8>),
    Stream(&'a mut dyn FnMut(&[u8]) -> io::Result<()>),
}

impl<R: Read> PageReader<R> {
    pub fn new(source: R) -> Self {
        PageReader {
            source,
            buf: vec![0u8; BUFFER].into_boxed_slice(),
            pos: 0,
            end: 0,
            before_buf: 0,
            eof: false,
            position: Position::Start,
            content_offset: 0,
            has_more: None,
            saw_deliveries: false,
        }
    }

    /// The next delivery: its content goes to `content` in pieces (unescaped UTF-8, in order)
    /// while it is read, and its other fields come back. `None` once the page has ended (then
    /// the whole page, up to its last byte, has been read and checked).
    pub fn next_delivery(
        &mut self,
        content: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<Option<DeliveryFields>> {
        loop {
            match self.position {
                Position::Done => return Ok(None),
                Position::Start => {
                    self.expect(b'{')?;
                    self.page_members(true)?;
                }
                Position::InDeliveries { first } => {
                    let c = self.peek_token()?;
                    if c == b']' {
                        self.pos += 1;
                        self.position = Position::Done;
                        self.after_deliveries()?;
                        continue;
                    }
                    if !first {
                        if c != b',' {
                            return syntax("expected ',' or ']' in the deliveries array");
                        }
                        self.pos += 1;
                    }
                    self.position = Position::InDeliveries { first: false };
                    return self.delivery(content).map(Some);
                }
            }
        }
    }

    /// Where the `content` string of the delivery `next_delivery` returned last starts in the
    /// source (its opening quote): `read_string_at` reads it again from there.
    pub fn content_offset(&self) -> u64 {
        self.content_offset
    }

    /// `hasMore` of a page read to its end (`next_delivery` returned `None`); absent means false.
    pub fn has_more(&self) -> bool {
        self.has_more.unwrap_or(false)
    }

    /// Reads page members up to the deliveries array (then returns with the position inside
    /// it) or to the page's closing brace.
    fn page_members(&mut self, first: bool) -> Result<()> {
        let mut first = first;
        loop {
            let c = self.peek_token()?;
            if c == b'}' {
                self.pos += 1;
                if !self.saw_deliveries {
                    return syntax("missing field `deliveries`");
                }
                return self.expect_end();
            }
            if !first {
                if c != b',' {
                    return syntax("expected ',' or '}' after a page member");
                }
                self.pos += 1;
            }
            first = false;
            let key = self.key()?;
            match key.as_slice() {
                b"deliveries" => {
                    if self.saw_deliveries {
                        return syntax("duplicate field `deliveries`");
                    }
                    self.saw_deliveries = true;
                    self.expect(b'[')?;
                    self.position = Position::InDeliveries { first: true };
                    return Ok(());
                }
                b"hasMore" => {
                    if self.has_more.is_some() {
                        return syntax("duplicate field `hasMore`");
                    }
                    self.has_more = Some(self.boolean()?);
                }
                _ => self.skip_value(0)?,
            }
        }
    }

    /// After the deliveries array: the remaining page members, the closing brace, the end.
    fn after_deliveries(&mut self) -> Result<()> {
        self.page_members(false)
    }

    fn delivery(
        &mut self,
        content: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<DeliveryFields> {
        self.expect(b'{')?;
        let (mut id, mut system, mut file_name, mut sha256) = (None, None, None, None);
        let mut created_at: Option<Option<String>> = None;
        let mut saw_content = false;
        let mut first = true;
        loop {
            let c = self.peek_token()?;
            if c == b'}' {
                self.pos += 1;
                break;
            }
            if !first {
                if c != b',' {
                    return syntax("expected ',' or '}' in a delivery");
                }
                self.pos += 1;
            }
            first = false;
            let key = self.key()?;
            let slot = match key.as_slice() {
                b"id" => &mut id,
                b"system" => &mut system,
                b"fileName" => &mut file_name,
                b"sha256" => &mut sha256,
                b"content" => {
                    if saw_content {
                        return syntax("duplicate field `content`");
                    }
                    saw_content = true;
                    self.peek_token()?;
                    self.content_offset = self.before_buf + self.pos as u64;
                    self.expect_string_start("content")?;
                    self.string_body(Target::Stream(content))?;
                    continue;
                }
                b"createdAt" => {
                    if created_at.is_some() {
                        return syntax("duplicate field `createdAt`");
                    }
                    created_at = Some(if self.peek_token()? == b'n' {
                        self.literal(b"null")?;
                        None
                    } else {
                        Some(self.small_string("createdAt")?.0)
                    });
                    continue;
                }
                _ => {
                    self.skip_value(0)?;
                    continue;
                }
            };
            if slot.is_some() {
                return syntax(format!(
                    "duplicate field `{}`",
                    String::from_utf8_lossy(&key)
                ));
            }
            *slot = Some(self.small_string(&String::from_utf8_lossy(&key))?);
        }
        let missing = |name: &str| PageError::Syntax(format!("missing field `{name}`"));
        if !saw_content {
            return Err(missing("content"));
        }
        let (id, faithful) = id.ok_or_else(|| missing("id"))?;
        Ok(DeliveryFields {
            id: WireId::new(id, faithful),
            system: system.ok_or_else(|| missing("system"))?.0,
            file_name: file_name.unwrap_or_default().0,
            sha256: sha256.ok_or_else(|| missing("sha256"))?.0,
            created_at: created_at.flatten(),
        })
    }

    // --- the lexer --------------------------------------------------------------------------

    /// Makes at least one unread byte available; false at the end of the input.
    fn fill(&mut self) -> Result<bool> {
        if self.pos < self.end {
            return Ok(true);
        }
        if self.eof {
            return Ok(false);
        }
        self.before_buf += self.end as u64;
        self.pos = 0;
        self.end = 0;
        loop {
            match self.source.read(&mut self.buf) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end = n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn next_byte(&mut self) -> Result<u8> {
        if !self.fill()? {
            return syntax("the page ends too early");
        }
        let b = self.buf[self.pos];
        self.pos += 1;
        Ok(b)
    }

    /// The next byte that is not JSON whitespace, left unread.
    fn peek_token(&mut self) -> Result<u8> {
        loop {
            if !self.fill()? {
                return syntax("the page ends too early");
            }
            match self.buf[self.pos] {
                b' ' | b'\t' | b'\n' | b'\r' => self.pos += 1,
                b => return Ok(b),
            }
        }
    }

    fn expect(&mut self, want: u8) -> Result<()> {
        let got = self.peek_token()?;
        if got != want {
            return syntax(format!(
                "expected '{}', found '{}'",
                want as char,
                got.escape_ascii()
            ));
        }
        self.pos += 1;
        Ok(())
    }

    /// Only whitespace may follow the page.
    fn expect_end(&mut self) -> Result<()> {
        loop {
            if !self.fill()? {
                return Ok(());
            }
            match self.buf[self.pos] {
                b' ' | b'\t' | b'\n' | b'\r' => self.pos += 1,
                _ => return syntax("trailing characters after the page"),
            }
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<()> {
        for &want in word {
            if self.next_byte()? != want {
                return syntax(format!("expected `{}`", String::from_utf8_lossy(word)));
            }
        }
        Ok(())
    }

    fn boolean(&mut self) -> Result<bool> {
        match self.peek_token()? {
            b't' => self.literal(b"true").map(|()| true),
            b'f' => self.literal(b"false").map(|()| false),
            _ => syntax("`hasMore` must be true or false"),
        }
    }

    /// An object key and its colon.
    fn key(&mut self) -> Result<Vec<u8>> {
        self.expect_string_start("a member name")?;
        let mut key = Vec::new();
        self.string_body(Target::Collect(&mut key))?;
        self.expect(b':')?;
        Ok(key)
    }

    fn expect_string_start(&mut self, what: &str) -> Result<()> {
        if self.peek_token()? != b'"' {
            return syntax(format!("{what} must be a string"));
        }
        self.pos += 1;
        Ok(())
    }

    /// A delivery's text field and whether it came without a lone surrogate
    /// (`protocol::read_wtf8`).
    fn small_string(&mut self, what: &str) -> Result<(String, bool)> {
        self.expect_string_start(&format!("`{what}`"))?;
        let mut bytes = Vec::new();
        self.string_body(Target::Text(&mut bytes))?;
        crate::protocol::read_wtf8(&bytes)
            .ok_or_else(|| PageError::Syntax("invalid UTF-8 in a string".into()))
    }

    /// The rest of a string after its opening quote, unescaped, to `target`. Checks UTF-8
    /// across piece boundaries, escapes and surrogate pairs as serde_json does; like serde_json,
    /// a skipped string is only checked for its end, control characters and escape syntax.
    fn string_body(&mut self, mut target: Target<'_>) -> Result<()> {
        let skip = matches!(target, Target::Skip);
        // Text is checked as a whole at its end (protocol::from_wtf8).
        let text = matches!(target, Target::Text(_));
        let mut utf8 = Utf8Check::default();
        let emit = |target: &mut Target<'_>, bytes: &[u8]| -> Result<()> {
            match target {
                Target::Skip => Ok(()),
                Target::Collect(out) | Target::Text(out) => {
                    if out.len() + bytes.len() > MAX_FIELD_BYTES {
                        return syntax(format!(
                            "a string field is longer than {MAX_FIELD_BYTES} bytes"
                        ));
                    }
                    out.extend_from_slice(bytes);
                    Ok(())
                }
                Target::Stream(sink) => sink(bytes).map_err(PageError::Io),
            }
        };
        loop {
            if !self.fill()? {
                return syntax("the page ends inside a string");
            }
            let start = self.pos;
            let run = self.buf[start..self.end]
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .unwrap_or(self.end - start);
            if run > 0 {
                let piece = &self.buf[start..start + run];
                if !skip && !text {
                    utf8.feed(piece)?;
                }
                emit(&mut target, piece)?;
                self.pos += run;
                continue;
            }
            match self.buf[self.pos] {
                b'"' => {
                    self.pos += 1;
                    return utf8.finish();
                }
                b'\\' if skip => {
                    self.pos += 1;
                    match self.next_byte()? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        b'u' => {
                            self.hex4()?;
                        }
                        _ => return syntax("invalid escape in a string"),
                    }
                }
                b'\\' if text => {
                    self.pos += 1;
                    let mut out = Vec::new();
                    self.lenient_escape(&mut out)?;
                    emit(&mut target, &out)?;
                }
                b'\\' => {
                    self.pos += 1;
                    utf8.finish()?;
                    let mut out = [0u8; 4];
                    let bytes = self.escape(&mut out)?;
                    emit(&mut target, bytes)?;
                }
                c if text => {
                    self.pos += 1;
                    emit(&mut target, &[c])?;
                }
                _ => return syntax("a control character in a string (it must be escaped)"),
            }
        }
    }

    /// One escape after its backslash, as UTF-8 in `out`.
    fn escape<'o>(&mut self, out: &'o mut [u8; 4]) -> Result<&'o [u8]> {
        let simple = match self.next_byte()? {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let first = self.hex4()?;
                let c = match first {
                    0xD800..=0xDBFF => {
                        if self.next_byte()? != b'\\' || self.next_byte()? != b'u' {
                            return syntax("lone leading surrogate in a \\u escape");
                        }
                        let second = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&second) {
                            return syntax("lone leading surrogate in a \\u escape");
                        }
                        0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                    }
                    0xDC00..=0xDFFF => return syntax("lone trailing surrogate in a \\u escape"),
                    c => c,
                };
                let c = char::from_u32(c).expect("surrogates were handled above");
                return Ok(c.encode_utf8(out).as_bytes());
            }
            _ => return syntax("invalid escape in a string"),
        };
        out[0] = simple;
        Ok(&out[..1])
    }

    /// One escape after its backslash as serde_json reads it for bytes: surrogates that do not
    /// pair up are kept as WTF-8 (`protocol::from_wtf8` turns each into U+FFFD).
    fn lenient_escape(&mut self, out: &mut Vec<u8>) -> Result<()> {
        let first = self.next_byte()?;
        if first != b'u' {
            let mut one = [0u8; 4];
            self.pos -= 1; // `escape` reads the escape letter itself
            out.extend_from_slice(self.escape(&mut one)?);
            return Ok(());
        }
        let mut n = self.hex4()?;
        loop {
            if !(0xD800..=0xDBFF).contains(&n) {
                push_wtf8(n, out);
                return Ok(());
            }
            if !self.fill()? || self.buf[self.pos] != b'\\' {
                push_wtf8(n, out);
                return Ok(());
            }
            self.pos += 1;
            if !self.fill()? || self.buf[self.pos] != b'u' {
                push_wtf8(n, out);
                let mut one = [0u8; 4];
                out.extend_from_slice(self.escape(&mut one)?);
                return Ok(());
            }
            self.pos += 1;
            let n2 = self.hex4()?;
            if (0xDC00..=0xDFFF).contains(&n2) {
                let c = 0x10000 + ((n - 0xD800) << 10) + (n2 - 0xDC00);
                push_wtf8(c, out);
                return Ok(());
            }
            push_wtf8(n, out);
            n = n2;
        }
    }

    fn hex4(&mut self) -> Result<u32> {
        let mut value = 0;
        for _ in 0..4 {
            let digit = (self.next_byte()? as char)
                .to_digit(16)
                .ok_or_else(|| PageError::Syntax("invalid \\u escape".into()))?;
            value = value * 16 + digit;
        }
        Ok(value)
    }

    /// Skips any JSON value (an unknown field's).
    fn skip_value(&mut self, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return syntax("an unknown field nests too deeply");
        }
        match self.peek_token()? {
            b'"' => {
                self.pos += 1;
                self.string_body(Target::Skip)
            }
            b'{' => {
                self.pos += 1;
                self.skip_members(b'}', depth, true)
            }
            b'[' => {
                self.pos += 1;
                self.skip_members(b']', depth, false)
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.skip_number(),
            other => syntax(format!("unexpected '{}'", other.escape_ascii())),
        }
    }

    fn skip_members(&mut self, close: u8, depth: usize, object: bool) -> Result<()> {
        let mut first = true;
        loop {
            let c = self.peek_token()?;
            if c == close {
                self.pos += 1;
                return Ok(());
            }
            if !first {
                if c != b',' {
                    return syntax("expected ',' between members");
                }
                self.pos += 1;
            }
            first = false;
            if object {
                self.expect_string_start("a member name")?;
                self.string_body(Target::Skip)?;
                self.expect(b':')?;
            }
            self.skip_value(depth + 1)?;
        }
    }

    /// A number by JSON's grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
    fn skip_number(&mut self) -> Result<()> {
        let peek = |r: &mut Self| -> Result<Option<u8>> {
            Ok(if r.fill()? { Some(r.buf[r.pos]) } else { None })
        };
        let digits = |r: &mut Self| -> Result<usize> {
            let mut n = 0;
            while let Some(b'0'..=b'9') = peek(r)? {
                r.pos += 1;
                n += 1;
            }
            Ok(n)
        };
        if peek(self)? == Some(b'-') {
            self.pos += 1;
        }
        match peek(self)? {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                digits(self)?;
            }
            _ => return syntax("invalid number"),
        }
        if peek(self)? == Some(b'.') {
            self.pos += 1;
            if digits(self)? == 0 {
                return syntax("invalid number");
            }
        }
        if let Some(b'e' | b'E') = peek(self)? {
            self.pos += 1;
            if let Some(b'+' | b'-') = peek(self)? {
                self.pos += 1;
            }
            if digits(self)? == 0 {
                return syntax("invalid number");
            }
        }
        Ok(())
    }
}

/// A code point, surrogates included, in the generalised UTF-8 serde_json writes for bytes.
fn push_wtf8(c: u32, out: &mut Vec<u8>) {
    match c {
        0..=0x7F => out.push(c as u8),
        0x80..=0x7FF => out.extend_from_slice(&[0xC0 | (c >> 6) as u8, 0x80 | (c & 0x3F) as u8]),
        0x800..=0xFFFF => out.extend_from_slice(&[
            0xE0 | (c >> 12) as u8,
            0x80 | ((c >> 6) & 0x3F) as u8,
            0x80 | (c & 0x3F) as u8,
        ]),
        _ => out.extend_from_slice(&[
            0xF0 | (c >> 18) as u8,
            0x80 | ((c >> 12) & 0x3F) as u8,
            0x80 | ((c >> 6) & 0x3F) as u8,
            0x80 | (c & 0x3F) as u8,
        ]),
    }
}

/// UTF-8 validation of a string that arrives in pieces (a character may span two).
#[derive(Default)]
struct Utf8Check {
    pending: [u8; 4],
    len: usize,
}

impl Utf8Check {
    fn feed(&mut self, mut piece: &[u8]) -> Result<()> {
        // Complete a character left over from the previous piece first.
        while self.len > 0 {
            let Some((&b, rest)) = piece.split_first() else {
                return Ok(());
            };
            self.pending[self.len] = b;
            self.len += 1;
            piece = rest;
            match std::str::from_utf8(&self.pending[..self.len]) {
                Ok(_) => self.len = 0,
                Err(e) if e.error_len().is_none() && self.len < 4 => {}
                Err(_) => return syntax("invalid UTF-8 in a string"),
            }
        }
        match std::str::from_utf8(piece) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let tail = &piece[e.valid_up_to()..];
                self.pending[..tail.len()].copy_from_slice(tail);
                self.len = tail.len();
                Ok(())
            }
            Err(_) => syntax("invalid UTF-8 in a string"),
        }
    }

    /// At a string's end or an escape: no character may be left incomplete.
    fn finish(&mut self) -> Result<()> {
        if self.len > 0 {
            return syntax("invalid UTF-8 in a string");
        }
        Ok(())
    }
}

/// Reads the JSON string that starts at `source`'s current position (at its opening quote, as
/// `PageReader::content_offset` gives it), unescaped, to `sink`: a delivery's content read again
/// from a page kept in a file, without reading the page again.
pub fn read_string_at<R: Read>(
    source: R,
    sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> Result<()> {
    let mut reader = PageReader::new(source);
    reader.expect_string_start("content")?;
    reader.string_body(Target::Stream(sink))
}

/// Decodes standard base64 (padded, as `base64::engine::general_purpose::STANDARD`) that arrives
/// in pieces of any size, handing the decoded bytes to `out`.
pub struct Base64Stream {
    /// Characters not decoded yet: fewer than 4, or the last full group (it may hold padding,
    /// which is only allowed at the very end).
    held: [u8; 4],
    held_len: usize,
    out: Vec<u8>,
    /// Encoded characters seen, for error messages and the size check.
    pub chars: u64,
}

impl Default for Base64Stream {
    fn default() -> Self {
        Base64Stream {
            held: [0; 4],
            held_len: 0,
            out: Vec::with_capacity(48 * 1024),
            chars: 0,
        }
    }
}

impl Base64Stream {
    pub fn feed(
        &mut self,
        mut piece: &[u8],
        out: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        use base64::Engine;
        self.chars += piece.len() as u64;
        while !piece.is_empty() {
            if self.held_len == 4 {
                // More follows, so the held group is not the last: decode it now.
                let held = self.held;
                self.held_len = 0;
                self.decode(&held, false, out)?;
            }
            if self.held_len > 0 || piece.len() < 8 {
                let take = (4 - self.held_len).min(piece.len());
                self.held[self.held_len..self.held_len + take].copy_from_slice(&piece[..take]);
                self.held_len += take;
                piece = &piece[take..];
                continue;
            }
            // Decode whole groups straight from the piece, keeping its last full group back.
            let groups = piece.len() / 4 - 1;
            let chunk_groups = groups.min(self.out.capacity() / 3);
            let (now, rest) = piece.split_at(chunk_groups * 4);
            if now.contains(&b'=') {
                return Err(padding_before_end());
            }
            self.out.resize(chunk_groups * 3, 0);
            let n = base64::engine::general_purpose::STANDARD
                .decode_slice(now, &mut self.out)
                .map_err(invalid_base64)?;
            out(&self.out[..n])?;
            piece = rest;
        }
        Ok(())
    }

    /// The end of the content: decodes what is held (with its padding).
    pub fn finish(&mut self, out: &mut dyn FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        let held = self.held;
        let len = std::mem::take(&mut self.held_len);
        self.decode(&held[..len], true, out)
    }

    /// One group; padding is only allowed in the `last` one.
    fn decode(
        &mut self,
        group: &[u8],
        last: bool,
        out: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        use base64::Engine;
        if !last && group.contains(&b'=') {
            return Err(padding_before_end());
        }
        let mut decoded = [0u8; 3];
        let n = base64::engine::general_purpose::STANDARD
            .decode_slice(group, &mut decoded)
            .map_err(invalid_base64)?;
        out(&decoded[..n])
    }
}

fn padding_before_end() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "content is not valid base64: padding before the end",
    )
}

fn invalid_base64(e: base64::DecodeSliceError) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("content is not valid base64: {e}"),
    )
}

#[cfg(test)]
mod tests;

//! A page's response body and the deliveries' content in it. A body up to `IN_MEMORY_LIMIT` is
//! held in memory and parsed with serde_json, the content borrowed from it; a larger one is
//! written to a file as it arrives and read with `page_stream`, each delivery's content read
//! again from the file when it is checked and when it is staged. Either way a delivery's content
//! is handed out decoded, in pieces (`Content::decode`): a large page or delivery is never held
//! whole, so memory stays bounded whatever the server sends.

use crate::error::{EngineError, Result};
use crate::page_stream::{self, Base64Stream, PageError, PageReader, Sink};
use crate::protocol::{Page, WireDelivery};
use crate::state_access;
use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Larger bodies go to a file as they arrive. A drain's pages (100 deliveries of a few KiB) stay
/// well below it; one large payroll file goes above it.
pub const IN_MEMORY_LIMIT: usize = 8 * 1024 * 1024;

/// A delivery's content as the server sent it (base64 text).
#[derive(Debug, Clone)]
pub enum Content<'a> {
    /// Borrowed from a page held in memory (copied out only when it was escaped).
    Inline(Cow<'a, str>),
    /// In a page kept in a file: the JSON string starting at `offset`, `chars` long unescaped.
    InFile {
        path: &'a Path,
        offset: u64,
        chars: u64,
    },
}

impl Content<'_> {
    /// The length of the base64 text.
    pub fn encoded_len(&self) -> u64 {
        match self {
            Content::Inline(text) => text.len() as u64,
            Content::InFile { chars, .. } => *chars,
        }
    }

    /// The base64 text, in pieces.
    pub fn encoded(&self, sink: Sink<'_>) -> io::Result<()> {
        match self {
            Content::Inline(text) => sink(text.as_bytes()),
            Content::InFile { path, offset, .. } => {
                let mut file = File::open(path)?;
                file.seek(SeekFrom::Start(*offset))?;
                page_stream::read_string_at(file, sink).map_err(|e| match e {
                    PageError::Io(e) => e,
                    // The page was read whole before: a change under us, not bad input.
                    PageError::Syntax(s) => io::Error::other(format!(
                        "{} changed after it was read: {s}",
                        path.display()
                    )),
                })
            }
        }
    }

    /// The decoded bytes, in pieces. Invalid base64 is an `InvalidData` error naming the problem;
    /// any other error comes from reading the page's file.
    pub fn decode(&self, sink: Sink<'_>) -> io::Result<()> {
        let mut decoder = Base64Stream::default();
        self.encoded(&mut |piece| decoder.feed(piece, sink))?;
        decoder.finish(sink)
    }
}

/// A page's response body: in memory, or in a file it owns (removed when dropped, unless kept)
/// or borrows (a page in the spool).
pub enum PageBody {
    Memory { bytes: Vec<u8>, source: String },
    File { file: BodyFile, source: String },
}

/// A body's file. An owned one (`remove_on_drop`) is removed when the body is dropped.
pub struct BodyFile {
    path: PathBuf,
    remove_on_drop: bool,
}

impl BodyFile {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for BodyFile {
    fn drop(&mut self) {
        if self.remove_on_drop {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl PageBody {
    /// A body held in memory, received from `source` (a URL, or the file it was kept in).
    pub fn new(bytes: Vec<u8>, source: String) -> PageBody {
        PageBody::Memory { bytes, source }
    }

    /// The page kept at `path` (not removed with the body): read into memory when small.
    pub fn kept_at(path: &Path) -> Result<PageBody> {
        let io = |e: io::Error| EngineError::from_io(path, &e);
        let source = path.display().to_string();
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len <= IN_MEMORY_LIMIT as u64 {
            return Ok(PageBody::new(std::fs::read(path).map_err(io)?, source));
        }
        Ok(PageBody::File {
            file: BodyFile {
                path: path.to_path_buf(),
                remove_on_drop: false,
            },
            source,
        })
    }

    /// Where the body came from, for error messages.
    pub fn source(&self) -> &str {
        match self {
            PageBody::Memory { source, .. } | PageBody::File { source, .. } => source,
        }
    }

    /// Reads the page. In a file, only the small fields are kept; each content is found again
    /// by its offset.
    pub fn parse(&self) -> Result<Page<'_>> {
        let not_json = |e: &dyn std::fmt::Display| EngineError::ProtocolError {
            url: self.source().to_owned(),
            reason: format!("the deliveries page is not valid JSON: {e}"),
        };
        let file = match self {
            PageBody::Memory { bytes, .. } => {
                return serde_json::from_slice(bytes).map_err(|e| not_json(&e));
            }
            PageBody::File { file, .. } => file.path(),
        };
        let source = File::open(file).map_err(|e| EngineError::from_io(file, &e))?;
        let mut reader = PageReader::new(source);
        let mut deliveries = Vec::new();
        loop {
            let mut chars = 0u64;
            let mut count = |piece: &[u8]| {
                chars += piece.len() as u64;
                Ok(())
            };
            let fields = match reader.next_delivery(&mut count) {
                Ok(Some(fields)) => fields,
                Ok(None) => break,
                Err(PageError::Io(e)) => return Err(EngineError::from_io(file, &e)),
                Err(PageError::Syntax(e)) => return Err(not_json(&e)),
            };
            deliveries.push(WireDelivery {
                id: fields.id,
                system: fields.system,
                file_name: fields.file_name,
                content: Content::InFile {
                    path: file,
                    offset: reader.content_offset(),
                    chars,
                },
                sha256: fields.sha256,
                created_at: fields.created_at,
            });
        }
        Ok(Page {
            deliveries,
            has_more: reader.has_more(),
        })
    }

    /// Gives the body up to a caller that keeps it (the spool): its bytes, or its file, which is
    /// then no longer removed with the body.
    pub fn into_kept(self) -> Kept {
        match self {
            PageBody::Memory { bytes, .. } => Kept::Memory(bytes),
            PageBody::File { mut file, .. } => {
                file.remove_on_drop = false;
                Kept::File(file.path.clone())
            }
        }
    }
}

/// A page body given up by `PageBody::into_kept`.
pub enum Kept {
    Memory(Vec<u8>),
    /// The file it arrived in, for the caller to rename.
    File(PathBuf),
}

/// Collects a response body: in memory up to `IN_MEMORY_LIMIT`, then (when it was given a place
/// for it) in a new owner-only file at `spill_to`, so a large answer is never held whole.
pub struct BodySink {
    bytes: Vec<u8>,
    spill_to: Option<PathBuf>,
    file: Option<(File, BodyFile)>,
    len: u64,
}

impl BodySink {
    /// A sink for a small answer: it never leaves memory.
    pub fn in_memory() -> BodySink {
        BodySink {
            bytes: Vec::new(),
            spill_to: None,
            file: None,
            len: 0,
        }
    }

    /// A sink that moves to a file at `spill_to` once the body is larger than `IN_MEMORY_LIMIT`.
    pub fn spilling_to(spill_to: PathBuf) -> BodySink {
        BodySink {
            spill_to: Some(spill_to),
            ..BodySink::in_memory()
        }
    }

    /// Where a large body goes.
    pub fn spill_path(&self) -> Option<&Path> {
        self.spill_to.as_deref()
    }

    /// Bytes written since the last reset.
    pub fn received(&self) -> u64 {
        self.len
    }

    /// Starts again (a retried request): what was collected is dropped.
    pub fn reset(&mut self, expected: u64) -> io::Result<()> {
        self.bytes.clear();
        self.len = 0;
        if let Some((file, _)) = &mut self.file {
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
        }
        let in_memory = expected.min(IN_MEMORY_LIMIT as u64) as usize;
        self.bytes.reserve(in_memory);
        Ok(())
    }

    pub fn write(&mut self, piece: &[u8]) -> io::Result<()> {
        self.len += piece.len() as u64;
        if self.file.is_none()
            && self.bytes.len() + piece.len() > IN_MEMORY_LIMIT
            && let Some(path) = &self.spill_to
        {
            let mut file = state_access::create_private(path)?;
            let owned = BodyFile {
                path: path.clone(),
                remove_on_drop: true,
            };
            file.write_all(&self.bytes)?;
            self.bytes = Vec::new();
            self.file = Some((file, owned));
        }
        match &mut self.file {
            Some((file, _)) => file.write_all(piece),
            None => {
                self.bytes.extend_from_slice(piece);
                Ok(())
            }
        }
    }

    pub fn finish(self, source: String) -> PageBody {
        match self.file {
            Some((_, file)) => PageBody::File { file, source },
            None => PageBody::new(self.bytes, source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn page_json(contents: &[&[u8]]) -> String {
        let deliveries: Vec<_> = contents
            .iter()
            .enumerate()
            .map(|(i, c)| {
                serde_json::json!({
                    "id": format!("d{i}"),
                    "system": "SDLoen",
                    "fileName": format!("f{i}.txt"),
                    "content": base64::engine::general_purpose::STANDARD.encode(c),
                    "sha256": "x",
                })
            })
            .collect();
        serde_json::json!({ "deliveries": deliveries, "hasMore": true }).to_string()
    }

    fn decoded(content: &Content<'_>) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        content.decode(&mut |piece| {
            out.extend_from_slice(piece);
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn a_page_in_a_file_reads_as_the_same_page_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let big = vec![7u8; 300_000];
        let contents: [&[u8]; 3] = [b"payroll", &big, b""];
        let json = page_json(&contents);
        let path = dir.path().join("page.json");
        std::fs::write(&path, &json).unwrap();
        let in_file = PageBody::File {
            file: BodyFile {
                path: path.clone(),
                remove_on_drop: false,
            },
            source: "file".into(),
        };
        let in_memory = PageBody::new(json.into_bytes(), "memory".into());
        let (a, b) = (in_file.parse().unwrap(), in_memory.parse().unwrap());
        assert!(a.has_more && b.has_more);
        assert_eq!(a.deliveries.len(), 3);
        for ((x, y), want) in a.deliveries.iter().zip(&b.deliveries).zip(contents) {
            assert!(matches!(x.content, Content::InFile { .. }));
            assert_eq!((&x.id, &x.file_name), (&y.id, &y.file_name));
            assert_eq!(x.content.encoded_len(), y.content.encoded_len());
            assert_eq!(decoded(&x.content).unwrap(), want);
            assert_eq!(decoded(&y.content).unwrap(), want);
        }
        drop(in_file);
        assert!(path.exists(), "a borrowed file stays");
    }

    #[test]
    fn invalid_base64_is_invalid_data_in_either_place() {
        let content = Content::Inline(Cow::Borrowed("eA=x"));
        assert_eq!(
            decoded(&content).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn a_sink_moves_to_its_file_past_the_limit_and_the_file_goes_with_the_body() {
        let dir = tempfile::tempdir().unwrap();
        let spill = dir.path().join("incoming.tmp");
        let mut small = BodySink::spilling_to(spill.clone());
        small.write(b"{}").unwrap();
        assert!(matches!(small.finish("s".into()), PageBody::Memory { .. }));
        assert!(!spill.exists());

        let mut sink = BodySink::spilling_to(spill.clone());
        let piece = vec![b'a'; IN_MEMORY_LIMIT / 2 + 1];
        sink.write(&piece).unwrap();
        sink.write(&piece).unwrap();
        assert_eq!(sink.received(), piece.len() as u64 * 2);
        let body = sink.finish("s".into());
        assert!(matches!(body, PageBody::File { .. }));
        assert_eq!(
            std::fs::metadata(&spill).unwrap().len(),
            piece.len() as u64 * 2
        );
        drop(body);
        assert!(!spill.exists(), "an owned file goes with its body");
    }

    #[test]
    fn a_large_body_whose_file_cannot_be_created_is_an_error() {
        // A missing, full or read-only state folder: the answer is refused, never cut short.
        let dir = tempfile::tempdir().unwrap();
        let mut sink = BodySink::spilling_to(dir.path().join("missing").join("incoming.tmp"));
        sink.write(&vec![b'a'; IN_MEMORY_LIMIT]).unwrap();
        let err = sink.write(b"one byte more").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert_eq!(
            sink.spill_path(),
            Some(dir.path().join("missing").join("incoming.tmp").as_path())
        );
    }

    #[test]
    fn a_reset_sink_starts_again_in_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let spill = dir.path().join("incoming.tmp");
        let mut sink = BodySink::spilling_to(spill.clone());
        sink.write(&vec![b'a'; IN_MEMORY_LIMIT + 1]).unwrap();
        sink.reset(0).unwrap();
        sink.write(b"{}").unwrap();
        let Kept::File(path) = sink.finish("s".into()).into_kept() else {
            panic!("a body that passed the limit once stays in its file");
        };
        assert_eq!(std::fs::read(&path).unwrap(), b"{}");
    }
}

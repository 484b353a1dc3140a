//! Structural checks of the files XFlow delivers, made on their bytes before they are published:
//! Prisme's G69 (finance postings) and G68 (payments) interfaces, and for SD Løn, whose format is
//! not public, only that the file is non-empty text in its declared encoding.
//!
//! Pure: no I/O. A [`Validator`] consumes the decoded bytes in chunks of any size, in one pass and
//! in time linear in the input, holding at most one line (capped) plus a bounded amount of state,
//! so a 256 MiB delivery is never held twice. The formats and where each rule comes from are in
//! docs/formats.md.

mod prisme;
mod text;

/// Which check applies to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Prisme: every line is a G69 or a G68 line.
    Prisme,
    /// SD Løn: non-empty, and valid in its declared text encoding.
    SdLoen,
}

/// One thing wrong with a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// 1-based line number; 0 for the file as a whole.
    pub line: u64,
    /// The field concerned, e.g. `112 beløb`, `Linieløbenr`, `line end`, `encoding`.
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.field, self.message)
        } else {
            write!(f, "line {}, {}: {}", self.line, self.field, self.message)
        }
    }
}

/// What a check found: the first [`MAX_FINDINGS`] findings, and how many more there were.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub more: u64,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// A broken 256 MiB file would otherwise produce millions of findings; nobody reads past the first.
pub const MAX_FINDINGS: usize = 50;

/// Collects findings up to the cap, counting the rest.
#[derive(Debug, Default)]
pub(crate) struct Findings(Report);

impl Findings {
    pub(crate) fn add(&mut self, line: u64, field: impl Into<String>, message: impl Into<String>) {
        if self.0.findings.len() < MAX_FINDINGS {
            self.0.findings.push(Finding {
                line,
                field: field.into(),
                message: message.into(),
            });
        } else {
            self.0.more += 1;
        }
    }
}

/// Checks one file, fed in chunks.
pub struct Validator {
    inner: Inner,
}

enum Inner {
    Prisme(Box<prisme::Prisme>),
    Text(Box<text::Text>),
}

impl Validator {
    pub fn new(kind: Kind) -> Validator {
        let inner = match kind {
            Kind::Prisme => Inner::Prisme(Box::default()),
            Kind::SdLoen => Inner::Text(Box::default()),
        };
        Validator { inner }
    }

    /// The next bytes of the file (any chunking gives the same report).
    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.inner {
            Inner::Prisme(p) => p.update(bytes),
            Inner::Text(t) => t.update(bytes),
        }
    }

    /// The end of the file.
    pub fn finish(self) -> Report {
        match self.inner {
            Inner::Prisme(p) => p.finish(),
            Inner::Text(t) => t.finish(),
        }
    }
}

/// Checks a whole file held in memory (tests, tools).
pub fn validate(kind: Kind, bytes: &[u8]) -> Report {
    let mut v = Validator::new(kind);
    v.update(bytes);
    v.finish()
}

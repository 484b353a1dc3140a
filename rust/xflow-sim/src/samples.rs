//! Realistic delivery contents: SD Løn payroll files and Prisme G69 finance postings,
//! plus random filler for benchmarks. Everything is deterministic per (seed, sequence
//! number) so a generated backlog can be rendered lazily and re-rendered byte-exactly.

use std::fmt::Write as _;

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

/// Text encodings the simulator can serve; the client must write the bytes untouched.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TextEncoding {
    #[default]
    #[serde(rename = "utf-8", alias = "utf8", alias = "UTF-8")]
    Utf8,
    #[serde(rename = "windows-1252", alias = "cp1252", alias = "Windows-1252")]
    Windows1252,
}

#[derive(Debug, thiserror::Error)]
#[error("text contains characters that windows-1252 cannot represent")]
pub struct UnmappableText;

impl TextEncoding {
    pub fn encode(self, text: &str) -> Result<Vec<u8>, UnmappableText> {
        match self {
            TextEncoding::Utf8 => Ok(text.as_bytes().to_vec()),
            TextEncoding::Windows1252 => {
                let (bytes, _, had_errors) = encoding_rs::WINDOWS_1252.encode(text);
                if had_errors {
                    // encoding_rs would silently substitute HTML entities; tests need exact bytes.
                    Err(UnmappableText)
                } else {
                    Ok(bytes.into_owned())
                }
            }
        }
    }
}

/// What `generate` produces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SampleKind {
    #[default]
    Sample,
    Random,
}

/// A lazily rendered delivery body: enough to reproduce the exact bytes on demand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenSpec {
    pub kind: SampleKind,
    pub system: String,
    pub seed: u64,
    pub seq: u64,
    pub size: usize,
    pub encoding: TextEncoding,
}

impl GenSpec {
    /// The file's business date and the content PRNG, both derived from seed and sequence
    /// number so a delivery renders identically every time.
    fn start(&self) -> (NaiveDate, SplitMix64) {
        let mut rng = SplitMix64::new(self.seed ^ self.seq.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let base = NaiveDate::from_ymd_opt(2025, 1, 1).expect("valid date");
        (base + Days::new(rng.next_u64() % 365), rng)
    }

    pub fn file_name(&self) -> String {
        file_name(&self.system, self.start().0, self.seq)
    }

    pub fn render(&self) -> Vec<u8> {
        let (date, mut rng) = self.start();
        match self.kind {
            SampleKind::Random => random_bytes(&mut rng, self.size),
            SampleKind::Sample => {
                let text = if self.system == "Prisme" {
                    g69_file(&mut rng, date, self.seq, self.size)
                } else {
                    sd_loen_file(&mut rng, date, self.seq, self.size)
                };
                // The generated text only uses Latin-1 letters, so both encodings succeed.
                self.encoding
                    .encode(&text)
                    .expect("sample text is windows-1252 representable")
            }
        }
    }
}

/// `SDLoen_<date>_<seq>.csv` / `G69_<date>_<seq>.txt`, as XFlow names its exports.
pub fn file_name(system: &str, date: NaiveDate, seq: u64) -> String {
    let day = date.format("%Y%m%d");
    match system {
        "Prisme" => format!("G69_{day}_{seq:06}.txt"),
        "SDLoen" => format!("SDLoen_{day}_{seq:06}.csv"),
        other => format!("{other}_{day}_{seq:06}.dat"),
    }
}

/// Small, dependency-free PRNG: determinism matters here, statistical quality does not.
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

pub fn random_bytes(rng: &mut SplitMix64, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 8);
    while out.len() < size {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(size);
    out
}

const FIRST_NAMES: &[&str] = &[
    "Søren", "Åse", "Æbbe", "Jørgen", "Bjørn", "Mette", "Anders", "Maja", "Frederik", "Ida",
    "Øjvind", "Ulla", "Kåre", "Birthe", "Asbjørn",
];
const LAST_NAMES: &[&str] = &[
    "Ærø",
    "Østergård",
    "Nørgaard",
    "Sørensen",
    "Hansen",
    "Møller",
    "Brøndum",
    "Ågesen",
    "Kjær",
    "Dahl",
    "Løvgreen",
    "Bæk",
];
const POSTING_TEXTS: &[&str] = &[
    "Lønrefusion Århus",
    "Kørselsgodtgørelse",
    "Tilskud til fælles øvelse",
    "Æbler og pærer til mødet",
    "Refusion sygedagpenge ØKONOMI",
    "Forsikring Gråsten",
];

/// SD Løn style payroll export: header, one semicolon-separated line per payment, trailer.
/// Grows lines until `target_size` bytes (approximately; at least one line).
pub fn sd_loen_file(rng: &mut SplitMix64, date: NaiveDate, seq: u64, target_size: usize) -> String {
    let mut out = String::with_capacity(target_size + 128);
    let period = date.format("%Y%m");
    let _ = write!(
        out,
        "H;SDLOEN;{};{seq:06};Løn og Personale\r\n",
        date.format("%Y%m%d")
    );
    let mut lines = 0u64;
    let mut total_oere: i64 = 0;
    while lines == 0 || out.len() < target_size.saturating_sub(24) {
        lines += 1;
        let cpr_day = 1 + rng.below(28);
        let cpr_month = 1 + rng.below(12);
        let cpr_year = rng.below(100);
        let oere = (rng.below(6_000_000) + 10_000) as i64;
        total_oere += oere;
        let _ = write!(
            out,
            "D;{cpr_day:02}{cpr_month:02}{cpr_year:02}-XXXX;{} {};{:04};{},{:02};{period};{}\r\n",
            rng.pick(FIRST_NAMES),
            rng.pick(LAST_NAMES),
            100 + rng.below(900),
            oere / 100,
            oere % 100,
            if rng.below(4) == 0 { "TILLÆG" } else { "LØN" },
        );
    }
    let _ = write!(
        out,
        "T;{lines};{},{:02}\r\n",
        total_oere / 100,
        total_oere % 100
    );
    out
}

/// Prisme G69 finance postings ("Snitflade til finansposter i Prisme (G69)" v1.5, docs/formats.md):
/// each line is a 24-character fixed header (RegSted, "G69", line number, org. unit, org. type,
/// NOR/PRI/SUP, "FLYD") followed by `&NNN` floating fields in ascending order. Postings come in
/// debit/credit pairs, so they balance per machine number and posting date; the amount (field
/// 112) is in øre, 12 digits followed by its sign (space for positive).
pub fn g69_file(rng: &mut SplitMix64, date: NaiveDate, seq: u64, target_size: usize) -> String {
    let mut out = String::with_capacity(target_size + 320);
    let reg_sted = 100 + rng.below(900);
    let org_unit = rng.below(10_000);
    let org_type = 1 + rng.below(99);
    let kind = rng.pick(&["NOR", "PRI", "SUP"]);
    let machine = 1 + rng.below(99_999);
    let mut line = 0u64;
    while line == 0 || out.len() < target_size {
        let oere = rng.below(50_000_000) + 1;
        let text = rng.pick(POSTING_TEXTS);
        let accounts = [rng.below(10_000_000_000), rng.below(10_000_000_000)];
        for (dk, account) in ['D', 'K'].into_iter().zip(accounts) {
            line += 1;
            // Five digits: a file of more than 99,999 lines cannot be numbered correctly.
            let number = line % 100_000;
            let _ = write!(
                out,
                "{reg_sted:03}G69{number:05}{org_unit:04}{org_type:02}{kind}FLYD\
                 &103{machine:05}&104{:07}&110{}&111{account:010}&112{oere:012} &113{dk}\
                 &116{text} {seq}\r\n",
                seq % 10_000_000,
                date.format("%Y%m%d"),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(system: &str, encoding: TextEncoding) -> GenSpec {
        GenSpec {
            kind: SampleKind::Sample,
            system: system.into(),
            seed: 7,
            seq: 3,
            size: 2000,
            encoding,
        }
    }

    #[test]
    fn rendering_is_deterministic_and_sized() {
        let s = spec("SDLoen", TextEncoding::Utf8);
        assert_eq!(s.render(), s.render());
        assert!(s.render().len() >= 1900);
        assert!(s.file_name().starts_with("SDLoen_2025"));
        assert!(s.file_name().ends_with("_000003.csv"));
    }

    #[test]
    fn g69_samples_follow_the_specification() {
        for seq in 0..20 {
            let s = GenSpec {
                seq,
                size: 500 + seq as usize * 400,
                ..spec("Prisme", TextEncoding::Windows1252)
            };
            let report = xflow_formats::validate(xflow_formats::Kind::Prisme, &s.render());
            assert_eq!(report.findings, vec![], "seq {seq}");
        }
        let text = String::from_utf8(spec("Prisme", TextEncoding::Utf8).render()).unwrap();
        assert!(text.contains(" &113D") && text.contains(" &113K"), "{text}");
    }

    #[test]
    fn sd_loen_samples_are_text_in_both_encodings() {
        for encoding in [TextEncoding::Utf8, TextEncoding::Windows1252] {
            let bytes = spec("SDLoen", encoding).render();
            let report = xflow_formats::validate(xflow_formats::Kind::SdLoen, &bytes);
            assert_eq!(report.findings, vec![], "{encoding:?}");
        }
    }

    #[test]
    fn g69_lines_have_fixed_header() {
        let text = String::from_utf8(spec("Prisme", TextEncoding::Utf8).render()).unwrap();
        for line in text.split_terminator("\r\n") {
            assert_eq!(&line[3..6], "G69");
            assert_eq!(&line[20..24], "FLYD");
            assert!(["NOR", "PRI", "SUP"].contains(&&line[17..20]));
            for field in ["&103", "&104", "&110", "&111", "&112", "&113"] {
                assert!(line.contains(field), "{line}");
            }
        }
        assert!(text.ends_with("\r\n"));
    }

    #[test]
    fn windows_1252_round_trips_danish_letters() {
        let bytes = TextEncoding::Windows1252.encode("æøåÆØÅ").unwrap();
        assert_eq!(bytes, [0xE6, 0xF8, 0xE5, 0xC6, 0xD8, 0xC5]);
        let (text, _, bad) = encoding_rs::WINDOWS_1252.decode(&bytes);
        assert!(!bad);
        assert_eq!(text, "æøåÆØÅ");
        assert!(TextEncoding::Windows1252.encode("Ω").is_err());
        let cp = spec("SDLoen", TextEncoding::Windows1252).render();
        assert!(std::str::from_utf8(&cp).is_err(), "should not be UTF-8");
    }

    #[test]
    fn random_is_exact_size() {
        let s = GenSpec {
            kind: SampleKind::Random,
            size: 1001,
            ..spec("SDLoen", TextEncoding::Utf8)
        };
        assert_eq!(s.render().len(), 1001);
    }
}

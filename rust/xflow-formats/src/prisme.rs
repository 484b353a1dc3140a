//! Prisme's G69 (finance postings, "Snitflade til finansposter i Prisme (G69)" v1.5) and G68
//! (payments) lines. docs/formats.md gives every rule with its source, and what was assumed where
//! the specification could not be read.

use crate::{Findings, Report};
use std::collections::HashMap;

/// Longer lines are reported and skipped, so one line never holds more than this in memory. The
/// longest legal G69 line (every field at its widest) is under 3 KiB.
pub(crate) const MAX_LINE: usize = 64 * 1024;

/// Distinct (maskinnr, posteringsdato) groups tracked for the balance rule; past this the rule is
/// reported as not checked rather than letting memory grow with the file.
pub(crate) const MAX_BALANCE_GROUPS: usize = 100_000;

const G69_HEADER: usize = 24;
const G68_HEADER: usize = 14;

#[derive(Default)]
pub(crate) struct Prisme {
    findings: Findings,
    line: Vec<u8>,
    overlong: bool,
    saw_bytes: bool,
    line_no: u64,
    last_g69_number: u64,
    last_g68_number: u64,
    last_external: Option<(u64, u64)>,
    balance: HashMap<(u64, u32), Group>,
    balance_overflow: bool,
}

struct Group {
    sum: i128,
    first_line: u64,
}

/// The G69 fields a line must carry, in field-number order.
const G69_MANDATORY: [(u16, &str); 6] = [
    (103, "maskinnr"),
    (104, "eksterne løbenr"),
    (110, "posteringsdato"),
    (111, "kontonr"),
    (112, "beløb"),
    (113, "debet/kredit"),
];

const G68_MANDATORY: [(u16, &str); 5] = [
    (8, "beløb"),
    (9, "fortegn"),
    (10, "identkode"),
    (11, "udbetalingsberettiget"),
    (16, "posteringshenvisning"),
];

/// Optional G69 fields with their widest value (characters).
const G69_WIDTHS: &[(u16, usize)] = &[
    (101, 10),
    (102, 5),
    (116, 255),
    (117, 20),
    (130, 2),
    (131, 10),
    (132, 2),
    (133, 10),
    (134, 2),
    (135, 10),
    (136, 1),
    (150, 5),
    (151, 5),
    (152, 5),
    (153, 35),
    (170, 10),
    (171, 1),
    (180, 10),
    (181, 10),
    (182, 10),
    (185, 2),
    (200, 1),
    (201, 5),
    (202, 200),
    (203, 5),
    (210, 60),
    (211, 1024),
    (250, 20),
    (251, 20),
    (300, 20),
    (301, 10),
    (302, 10),
    (303, 13),
    (304, 10),
    (305, 10),
    (306, 10),
];

/// What one G69 line contributes to the file-wide rules.
#[derive(Default)]
struct Posting {
    machine: Option<u64>,
    external: Option<u64>,
    date: Option<u32>,
    amount: Option<i128>,
    debit: Option<bool>,
}

impl Prisme {
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.saw_bytes = true;
        }
        let mut rest = bytes;
        while let Some(lf) = rest.iter().position(|&b| b == b'\n') {
            self.push(&rest[..lf]);
            self.end_line(true);
            rest = &rest[lf + 1..];
        }
        self.push(rest);
    }

    pub(crate) fn finish(mut self) -> Report {
        if !self.saw_bytes {
            self.findings.add(0, "file", "is empty");
        } else if !self.line.is_empty() || self.overlong {
            self.end_line(false);
        }
        if self.balance_overflow {
            self.findings.add(
                0,
                "112 beløb",
                format!(
                    "more than {MAX_BALANCE_GROUPS} maskinnr/posteringsdato groups; the balance \
                     was not checked"
                ),
            );
        } else {
            let mut unbalanced: Vec<_> = self
                .balance
                .iter()
                .filter(|(_, g)| g.sum != 0)
                .map(|(&(machine, date), g)| (g.first_line, machine, date, g.sum))
                .collect();
            unbalanced.sort_unstable();
            for (line, machine, date, sum) in unbalanced {
                let side = if sum > 0 { "debit" } else { "credit" };
                self.findings.add(
                    line,
                    "112 beløb",
                    format!(
                        "the postings of maskinnr {machine:05} on {date} do not balance: {side} \
                         exceeds the other side by {} øre",
                        sum.unsigned_abs()
                    ),
                );
            }
        }
        self.findings.0
    }

    fn push(&mut self, part: &[u8]) {
        if self.overlong {
            return;
        }
        if self.line.len() + part.len() > MAX_LINE {
            self.overlong = true;
            self.line = Vec::new();
        } else {
            self.line.extend_from_slice(part);
        }
    }

    fn end_line(&mut self, lf: bool) {
        self.line_no += 1;
        let n = self.line_no;
        let mut line = std::mem::take(&mut self.line);
        if std::mem::take(&mut self.overlong) {
            self.findings.add(
                n,
                "line",
                format!("is longer than {MAX_LINE} bytes; not checked"),
            );
            return;
        }
        if line.last() == Some(&b'\r') {
            line.pop();
            if !lf {
                self.findings
                    .add(n, "line end", "the last line ends in CR without LF");
            }
        } else if lf {
            self.findings
                .add(n, "line end", "ends in LF without CR; Prisme expects CRLF");
        } else {
            self.findings
                .add(n, "line end", "the last line does not end in CRLF");
        }
        if line.contains(&b'\r') {
            self.findings
                .add(n, "line end", "a CR inside the line (lines end in CRLF)");
        }
        self.check_line(n, &line);
        // Keep the allocation for the next line.
        line.clear();
        self.line = line;
    }

    fn check_line(&mut self, n: u64, line: &[u8]) {
        if line.is_empty() {
            self.findings.add(n, "line", "is empty");
            return;
        }
        match line.get(3..6) {
            Some(b"G69") => self.g69(n, line),
            Some(b"G68") => self.g68(n, line),
            other => self.findings.add(
                n,
                "Snitfladetype",
                format!(
                    "positions 4-6 must be G69 or G68, not {}",
                    shown(other.unwrap_or(&line[line.len().min(3)..]))
                ),
            ),
        }
    }

    fn g69(&mut self, n: u64, line: &[u8]) {
        if line.len() < G69_HEADER {
            self.findings.add(
                n,
                "header",
                format!(
                    "is {} characters; a G69 line starts with a {G69_HEADER}-character header",
                    line.len()
                ),
            );
            return;
        }
        let f = &mut self.findings;
        digits_exact(f, n, "RegSted", &line[0..3]);
        if let Some(number) = digits_exact(f, n, "Linieløbenr", &line[6..11]) {
            sequence(f, n, &mut self.last_g69_number, number);
        }
        digits_exact(f, n, "Org.enhed", &line[11..15]);
        digits_exact(f, n, "Org.type", &line[15..17]);
        if !matches!(&line[17..20], b"NOR" | b"PRI" | b"SUP") {
            f.add(
                n,
                "Posteringstype",
                format!("must be NOR, PRI or SUP, not {}", shown(&line[17..20])),
            );
        }
        if &line[20..24] != b"FLYD" {
            f.add(
                n,
                "Linieformat",
                format!("must be FLYD, not {}", shown(&line[20..24])),
            );
        }

        let mut posting = Posting::default();
        let mut present = [false; G69_MANDATORY.len()];
        for (number, value) in floating_fields(f, n, &line[G69_HEADER..], 3) {
            if let Some(i) = G69_MANDATORY.iter().position(|(m, _)| *m == number) {
                present[i] = true;
            }
            g69_field(f, n, number, value, &mut posting);
        }
        for ((number, name), here) in G69_MANDATORY.iter().zip(present) {
            if !here {
                f.add(n, format!("{number} {name}"), "mandatory field is missing");
            }
        }
        self.file_rules(n, &posting);
    }

    /// The rules that span lines: eksterne løbenr ascends, postings balance.
    fn file_rules(&mut self, n: u64, p: &Posting) {
        if let Some(external) = p.external {
            if let Some((last, last_line)) = self.last_external.filter(|&(last, _)| external < last)
            {
                self.findings.add(
                    n,
                    "104 eksterne løbenr",
                    format!(
                        "{external:07} comes after {last:07} (line {last_line}); it must \
                         ascend within a file"
                    ),
                );
            }
            self.last_external = Some((external, n));
        }
        let (Some(machine), Some(date), Some(amount), Some(debit)) =
            (p.machine, p.date, p.amount, p.debit)
        else {
            return;
        };
        let signed = if debit { amount } else { -amount };
        if let Some(group) = self.balance.get_mut(&(machine, date)) {
            group.sum += signed;
        } else if self.balance.len() < MAX_BALANCE_GROUPS {
            self.balance.insert(
                (machine, date),
                Group {
                    sum: signed,
                    first_line: n,
                },
            );
        } else {
            self.balance_overflow = true;
        }
    }

    fn g68(&mut self, n: u64, line: &[u8]) {
        if line.len() < G68_HEADER {
            self.findings.add(
                n,
                "header",
                format!(
                    "is {} characters; a G68 line starts with a {G68_HEADER}-character header",
                    line.len()
                ),
            );
            return;
        }
        let f = &mut self.findings;
        digits_exact(f, n, "RegSted", &line[0..3]);
        if let Some(number) = digits_exact(f, n, "Linieløbenr", &line[6..11]) {
            sequence(f, n, &mut self.last_g68_number, number);
        }
        if !matches!(&line[11..13], b"01" | b"10") {
            f.add(
                n,
                "Transaktionstype",
                format!("must be 01 or 10, not {}", shown(&line[11..13])),
            );
        }
        if line[13] != b'1' {
            f.add(
                n,
                "Flyd_Fast",
                format!("must be 1 (floating format), not {}", shown(&line[13..14])),
            );
        }
        let mut present = [false; G68_MANDATORY.len()];
        for (number, value) in floating_fields(f, n, &line[G68_HEADER..], 2) {
            if let Some(i) = G68_MANDATORY.iter().position(|(m, _)| *m == number) {
                present[i] = true;
            }
            g68_field(f, n, number, value);
        }
        for ((number, name), here) in G68_MANDATORY.iter().zip(present) {
            if !here {
                f.add(
                    n,
                    format!("{number:02} {name}"),
                    "mandatory field is missing",
                );
            }
        }
    }
}

/// Splits the floating part into (field number, value), reporting a part that does not start
/// with `&`, a malformed field number, and numbers that do not ascend. Malformed fields are left
/// out; a value ends at the next `&`, which therefore cannot occur inside one.
fn floating_fields<'a>(
    f: &mut Findings,
    n: u64,
    floating: &'a [u8],
    width: usize,
) -> Vec<(u16, &'a [u8])> {
    let mut out = Vec::new();
    if floating.is_empty() {
        return out;
    }
    if floating[0] != b'&' {
        f.add(
            n,
            "floating fields",
            "must begin with & right after the header",
        );
    }
    let mut last: Option<u16> = None;
    for piece in floating.split(|&b| b == b'&').skip(1) {
        let Some(number) = piece.get(..width).filter(|d| all_digits(d)) else {
            f.add(
                n,
                "field number",
                format!(
                    "& must be followed by a {width}-digit field number, not {} (an & inside a \
                     value is not allowed)",
                    shown(&piece[..piece.len().min(width)])
                ),
            );
            continue;
        };
        let number = number_of(number) as u16;
        if let Some(prev) = last.filter(|&p| number <= p) {
            f.add(
                n,
                format!("{number:0width$}"),
                format!("field numbers must ascend within a line; it follows {prev:0width$}"),
            );
        }
        last = Some(number);
        out.push((number, &piece[width..]));
    }
    out
}

fn g69_field(f: &mut Findings, n: u64, number: u16, value: &[u8], p: &mut Posting) {
    let name = |what: &str| format!("{number} {what}");
    match number {
        103 => p.machine = digits_exact_len(f, n, &name("maskinnr"), value, 5),
        104 => p.external = digits_exact_len(f, n, &name("eksterne løbenr"), value, 7),
        110 => p.date = date(f, n, &name("posteringsdato"), value),
        111 => {
            digits_up_to(f, n, &name("kontonr"), value, 15);
        }
        112 => p.amount = amount(f, n, value),
        113 => match value {
            b"D" => p.debit = Some(true),
            b"K" => p.debit = Some(false),
            _ => f.add(
                n,
                name("debet/kredit"),
                format!("must be D or K, not {}", shown(value)),
            ),
        },
        114 => {
            digits_exact_len(f, n, &name("regnskabsår"), value, 4);
        }
        118 => {
            date(f, n, &name("valørdato"), value);
        }
        _ => {
            if let Some((_, width)) = G69_WIDTHS.iter().find(|(m, _)| *m == number) {
                max_chars(f, n, &number.to_string(), value, *width);
            }
        }
    }
}

fn g68_field(f: &mut Findings, n: u64, number: u16, value: &[u8]) {
    let name = |what: &str| format!("{number:02} {what}");
    match number {
        2 => {
            digits_exact_len(f, n, &name("org.enhed"), value, 4);
        }
        3 => {
            digits_exact_len(f, n, &name("org.type"), value, 2);
        }
        7 => {
            digits_up_to(f, n, &name("udident"), value, 18);
        }
        8 => {
            digits_up_to(f, n, &name("beløb"), value, 11);
        }
        9 if value != b"+" && value != b"-" => f.add(
            n,
            name("fortegn"),
            format!("must be + or -, not {}", shown(value)),
        ),
        10 => {
            digits_exact_len(f, n, &name("identkode"), value, 2);
        }
        11 => {
            digits_up_to(f, n, &name("udbetalingsberettiget"), value, 14);
        }
        12 => {
            date(f, n, &name("udbetalingsdato"), value);
        }
        16 => max_chars(f, n, &name("posteringshenvisning"), value, 20),
        40..=75 => max_chars(f, n, &name("betalingstekst"), value, 81),
        _ => {}
    }
}

/// G69 field 112: the amount in øre as 12 digits followed by the sign, a space (positive) or `-`.
fn amount(f: &mut Findings, n: u64, value: &[u8]) -> Option<i128> {
    let ok = value.len() == 13 && all_digits(&value[..12]) && matches!(value[12], b' ' | b'-');
    if !ok {
        f.add(
            n,
            "112 beløb",
            format!(
                "must be 13 characters: the amount in øre as 12 digits, then the sign (space or \
                 -), not {}",
                shown(value)
            ),
        );
        return None;
    }
    let magnitude = number_of(&value[..12]) as i128;
    Some(if value[12] == b'-' {
        -magnitude
    } else {
        magnitude
    })
}

/// A header position: all digits.
fn digits_exact(f: &mut Findings, n: u64, field: &str, value: &[u8]) -> Option<u64> {
    digits_exact_len(f, n, field, value, value.len())
}

fn digits_exact_len(
    f: &mut Findings,
    n: u64,
    field: &str,
    value: &[u8],
    width: usize,
) -> Option<u64> {
    if value.len() == width && all_digits(value) {
        Some(number_of(value))
    } else {
        f.add(
            n,
            field,
            format!("must be {width} digits, not {}", shown(value)),
        );
        None
    }
}

fn digits_up_to(f: &mut Findings, n: u64, field: &str, value: &[u8], width: usize) {
    if value.is_empty() || value.len() > width || !all_digits(value) {
        f.add(
            n,
            field,
            format!("must be 1 to {width} digits, not {}", shown(value)),
        );
    }
}

/// YYYYMMDD, a real calendar date.
fn date(f: &mut Findings, n: u64, field: &str, value: &[u8]) -> Option<u32> {
    let valid = value.len() == 8 && all_digits(value) && {
        let (y, m, d) = (
            number_of(&value[..4]),
            number_of(&value[4..6]),
            number_of(&value[6..]),
        );
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let days = match m {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => 0,
        };
        y >= 1900 && (1..=days).contains(&d)
    };
    if valid {
        Some(number_of(value) as u32)
    } else {
        f.add(
            n,
            field,
            format!("must be a date YYYYMMDD, not {}", shown(value)),
        );
        None
    }
}

/// A text field's width counts characters: UTF-8 when the value is UTF-8, else one per byte (the
/// encoding is not documented, and the bytes are kept as XFlow sent them).
fn max_chars(f: &mut Findings, n: u64, field: &str, value: &[u8], width: usize) {
    let chars = std::str::from_utf8(value).map_or(value.len(), |s| s.chars().count());
    if chars > width {
        f.add(
            n,
            field,
            format!("is {chars} characters, more than the {width} allowed"),
        );
    }
}

/// Line numbers start at 1 and increase by 1 (counted per interface type: a file may carry G68
/// payment lines and their G69 postings, each numbered on its own).
fn sequence(f: &mut Findings, n: u64, last: &mut u64, number: u64) {
    let expected = *last + 1;
    if number != expected {
        f.add(
            n,
            "Linieløbenr",
            format!(
                "is {number:05}, expected {expected:05} (line numbers start at 00001 and \
                 increase by 1)"
            ),
        );
    }
    *last = number;
}

fn all_digits(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_digit)
}

/// Callers pass at most 18 digits, so this cannot overflow.
fn number_of(digits: &[u8]) -> u64 {
    digits
        .iter()
        .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'))
}

/// A value for a message: quoted, escaped, at most 24 characters.
fn shown(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(24)]);
    let more = if bytes.len() > 24 { "…" } else { "" };
    format!("{:?}{more}", text)
}

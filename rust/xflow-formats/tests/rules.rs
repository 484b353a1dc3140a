//! One hand-made broken file per rule: each must give exactly the finding of its rule (line and
//! field), and the intact file none. docs/formats.md lists the rules.

use xflow_formats::{Finding, Kind, MAX_FINDINGS, validate};

/// A G69 line: the 24-character header, then the floating fields.
fn g69(number: u32, fields: &str) -> String {
    format!("123G69{number:05}081701NORFLYD{fields}\r\n")
}

/// A balanced pair of postings (debit and credit of 3069.14 kr) with eksterne løbenr `ext`.
fn pair(first: u32, ext: u32) -> String {
    let fields = |dk: char| {
        format!(
            "&10300042&104{ext:07}&11020250131&111000000012345678&112000000306914 &113{dk}\
             &153Lønrefusion Århus"
        )
    };
    g69(first, &fields('D')) + &g69(first + 1, &fields('K'))
}

fn intact() -> String {
    pair(1, 1) + &pair(3, 2)
}

fn findings(text: &str) -> Vec<Finding> {
    validate(Kind::Prisme, text.as_bytes()).findings
}

/// The file has exactly one finding, on `line`, about `field`. A posting whose amount, date or
/// side is broken drops out of the balance; the imbalance that follows is not counted here.
#[track_caller]
fn one(text: &str, line: u64, field: &str) {
    let found: Vec<Finding> = findings(text)
        .into_iter()
        .filter(|f| !f.message.contains("do not balance"))
        .collect();
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].line, line, "{found:#?}");
    assert_eq!(found[0].field, field, "{found:#?}");
}

#[test]
fn an_intact_file_has_no_findings() {
    assert_eq!(findings(&intact()), vec![]);
}

#[test]
fn an_empty_file() {
    one("", 0, "file");
}

#[test]
fn lines_end_in_crlf() {
    one(&intact().replacen("\r\n", "\n", 1), 1, "line end");
    one(intact().trim_end_matches("\r\n"), 4, "line end");
}

#[test]
fn a_cr_inside_a_line() {
    one(&intact().replacen("Århus", "År\rhus", 1), 1, "line end");
}

#[test]
fn an_empty_line() {
    one(&(intact() + "\r\n"), 5, "line");
}

#[test]
fn the_interface_type_is_g69_or_g68() {
    one(&(intact() + "123G70\r\n"), 5, "Snitfladetype");
    one(&(intact() + "12\r\n"), 5, "Snitfladetype");
}

#[test]
fn the_header_is_24_characters() {
    one(&(intact() + "123G6900005\r\n"), 5, "header");
}

#[test]
fn header_fields() {
    one(&intact().replacen("123G69", "1x3G69", 1), 1, "RegSted");
    one(&intact().replacen("0817", "08a7", 1), 1, "Org.enhed");
    one(&intact().replacen("01NOR", "0xNOR", 1), 1, "Org.type");
    one(&intact().replacen("NOR", "NUL", 1), 1, "Posteringstype");
    one(&intact().replacen("FLYD", "FAST", 1), 1, "Linieformat");
}

#[test]
fn line_numbers_start_at_1_and_increase_by_1() {
    // Starting at 2: reported once; the count then resumes from there.
    one(&(pair(2, 1) + &pair(4, 2)), 1, "Linieløbenr");
    // A gap after line 2.
    let gap = intact()
        .replacen("G6900004", "G6900005", 1)
        .replacen("G6900003", "G6900004", 1);
    one(&gap, 3, "Linieløbenr");
}

#[test]
fn floating_fields_begin_with_an_ampersand() {
    one(
        &intact().replacen("FLYD&103", "FLYDx&103", 1),
        1,
        "floating fields",
    );
}

#[test]
fn an_ampersand_inside_a_value() {
    one(
        &intact().replacen("Lønrefusion Århus", "Løn & refusion", 1),
        1,
        "field number",
    );
}

#[test]
fn field_numbers_ascend_within_a_line() {
    let swapped = intact().replacen(
        "&11020250131&111000000012345678",
        "&111000000012345678&11020250131",
        1,
    );
    one(&swapped, 1, "110");
}

#[test]
fn mandatory_fields() {
    for (field, name) in [
        ("&10300042", "103 maskinnr"),
        ("&1040000001", "104 eksterne løbenr"),
        ("&111000000012345678", "111 kontonr"),
    ] {
        one(&intact().replacen(field, "", 1), 1, name);
    }
    // Without its date or amount a posting also drops out of the balance.
    let found = findings(&intact().replacen("&11020250131", "", 1));
    assert_eq!(found[0].field, "110 posteringsdato");
    let found = findings(&intact().replacen("&113D", "", 1));
    assert_eq!(found[0].field, "113 debet/kredit");
}

#[test]
fn field_formats() {
    one(
        &intact().replacen("&10300042", "&1030042", 1),
        1,
        "103 maskinnr",
    );
    one(
        &intact().replacen("&1040000001", "&104000001", 1),
        1,
        "104 eksterne løbenr",
    );
    one(
        &intact().replacen("&11020250131", "&11020250230", 1),
        1,
        "110 posteringsdato",
    );
    one(
        &intact().replacen("&111000000012345678", "&1110000000123456789", 1),
        1,
        "111 kontonr",
    );
    one(
        &intact().replacen("&113D", "&113X", 1),
        1,
        "113 debet/kredit",
    );
    one(
        &intact().replacen("Lønrefusion Århus", &"Å".repeat(36), 1),
        1,
        "153",
    );
    // 35 characters in UTF-8 are 70 bytes: still within the width.
    assert_eq!(
        findings(&intact().replacen("Lønrefusion Århus", &"Å".repeat(35), 1)),
        vec![]
    );
}

#[test]
fn the_amount_is_12_digits_then_the_sign() {
    // The sign first, as the simulator's samples used to write it, is wrong.
    let sign_first = intact().replace("&112000000306914 ", "&112+0000000306914");
    let found = findings(&sign_first);
    assert_eq!(found.len(), 4, "{found:#?}");
    assert!(found.iter().all(|f| f.field == "112 beløb"), "{found:#?}");
    // A negative debit balances a negative credit.
    let negative = intact().replace("&112000000306914 ", "&112000000306914-");
    assert_eq!(findings(&negative), vec![]);
}

#[test]
fn postings_balance_per_machine_and_date() {
    let unbalanced = intact().replacen("&112000000306914 &113K", "&112000000306915 &113K", 1);
    let found = findings(&unbalanced);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!((found[0].line, found[0].field.as_str()), (1, "112 beløb"));
    assert!(
        found[0]
            .message
            .contains("credit exceeds the other side by 1 øre"),
        "{found:#?}"
    );
    // The same amounts on two posting dates do not balance each other.
    let split = intact().replacen(
        "&11020250131&111000000012345678&112000000306914 &113K",
        "&11020250201&111000000012345678&112000000306914 &113K",
        1,
    );
    let found = findings(&split);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_eq!((found[0].line, found[1].line), (1, 2));
}

#[test]
fn external_numbers_ascend_within_a_file() {
    let text = pair(1, 2) + &pair(3, 1);
    one(&text, 3, "104 eksterne løbenr");
    // Equal numbers (a debit and its credit) are fine.
    assert_eq!(findings(&(pair(1, 1) + &pair(3, 1))), vec![]);
}

#[test]
fn an_overlong_line_is_reported_and_skipped() {
    let text = intact() + &g69(5, &"&153x".repeat(20_000));
    let found = findings(&text);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!((found[0].line, found[0].field.as_str()), (5, "line"));
}

#[test]
fn findings_are_capped() {
    let report = validate(Kind::Prisme, "x\r\n".repeat(200).as_bytes());
    assert_eq!(report.findings.len(), MAX_FINDINGS);
    assert_eq!(report.more, 200 - MAX_FINDINGS as u64);
}

#[test]
fn chunking_does_not_change_the_report() {
    let text = intact().replace("FLYD", "FLYX") + "partial";
    let whole = validate(Kind::Prisme, text.as_bytes());
    let mut v = xflow_formats::Validator::new(Kind::Prisme);
    for b in text.as_bytes() {
        v.update(std::slice::from_ref(b));
    }
    assert_eq!(v.finish(), whole);
}

/// A G68 payment line: the 14-character header, then 2-digit floating fields.
fn g68(number: u32, fields: &str) -> String {
    format!("123G68{number:05}011{fields}\r\n")
}

const G68_FIELDS: &str = "&020817&0301&0800000306914&09+&1002&110101801234&1220250205&1620250131000420000001&40Løn januar";

#[test]
fn g68_intact_lines_may_precede_their_postings() {
    let text = g68(1, G68_FIELDS) + &g68(2, G68_FIELDS) + &intact();
    assert_eq!(findings(&text), vec![]);
}

#[test]
fn g68_rules() {
    let line = |fields: &str| g68(1, fields);
    let cases = [
        (
            g68(1, G68_FIELDS).replacen("011&", "001&", 1),
            "Transaktionstype",
        ),
        (g68(1, G68_FIELDS).replacen("011&", "010&", 1), "Flyd_Fast"),
        (g68(2, G68_FIELDS), "Linieløbenr"),
        (line(&G68_FIELDS.replace("&09+", "&09x")), "09 fortegn"),
        (line(&G68_FIELDS.replace("&09+", "")), "09 fortegn"),
        (
            line(&G68_FIELDS.replace("&0800000306914", "&08000003069140")),
            "08 beløb",
        ),
        (
            line(&G68_FIELDS.replace("&1220250205", "&1220251305")),
            "12 udbetalingsdato",
        ),
        (
            line(&G68_FIELDS.replace("&020817", "&02817")),
            "02 org.enhed",
        ),
        (line(&G68_FIELDS.replace("&1002", "&102")), "10 identkode"),
        (
            line(&G68_FIELDS.replace("&110101801234", "&11x")),
            "11 udbetalingsberettiget",
        ),
        (
            line(&G68_FIELDS.replace("&1620250131000420000001", "")),
            "16 posteringshenvisning",
        ),
        (
            line(&(G68_FIELDS.to_owned() + &"x".repeat(81))),
            "40 betalingstekst",
        ),
        (line(&G68_FIELDS.replace("&0301", "&0301&01x")), "01"),
        ("123G6800001\r\n".to_owned(), "header"),
    ];
    for (text, field) in cases {
        let found = findings(&text);
        assert_eq!(found.len(), 1, "{field}: {found:#?}");
        assert_eq!(found[0].field, field, "{found:#?}");
    }
}

#[test]
fn text_files_empty_and_encodings() {
    let text = |bytes: &[u8]| validate(Kind::SdLoen, bytes).findings;
    assert_eq!(text(b"").len(), 1);
    // Undeclared: UTF-8 or Windows-1252 both pass; a byte neither allows does not.
    assert_eq!(text("Søren;LØN\r\n".as_bytes()), vec![]);
    assert_eq!(text(b"S\xf8ren;L\xd8N\r\n"), vec![]);
    let found = text(b"line one\r\nS\xf8ren \x81\r\n");
    assert_eq!(
        (found.len(), found[0].line, found[0].field.as_str()),
        (1, 2, "encoding")
    );
    // A UTF-8 byte-order mark declares UTF-8: Windows-1252 bytes are then wrong.
    let found = text(b"\xef\xbb\xbfS\xf8ren\r\n");
    assert_eq!((found.len(), found[0].line), (1, 1), "{found:#?}");
    assert!(found[0].message.contains("byte-order mark"), "{found:#?}");
    // UTF-16 with a BOM: valid, then an unpaired surrogate, then an odd length.
    let utf16: Vec<u8> = [0xFEFFu16]
        .iter()
        .chain("Søren\r\n".encode_utf16().collect::<Vec<_>>().iter())
        .flat_map(|u| u.to_le_bytes())
        .collect();
    assert_eq!(text(&utf16), vec![]);
    let mut lone = utf16.clone();
    lone.extend_from_slice(&0xDC00u16.to_le_bytes());
    assert_eq!(text(&lone)[0].line, 2);
    assert_eq!(text(&utf16[..utf16.len() - 1]).len(), 1);
    // An XML declaration names the encoding.
    assert_eq!(
        text(b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>S\xf8ren</a>"),
        vec![]
    );
    let found = text(b"<?xml version=\"1.0\" encoding='UTF-8'?>\n<a>S\xf8ren</a>");
    assert_eq!((found.len(), found[0].line), (1, 2), "{found:#?}");
    assert!(found[0].message.contains("XML declaration"), "{found:#?}");
    assert_eq!(
        text(b"<?xml version=\"1.0\" encoding=\"EBCDIC\"?><a/>").len(),
        1
    );
    // Binary: a NUL byte is no text in any encoding.
    let found = text(b"abc\r\n\x00\x01\x02");
    assert_eq!((found.len(), found[0].line), (1, 2), "{found:#?}");
}

#[test]
fn text_findings_name_the_exact_place_after_plain_text() {
    let messages = |bytes: &[u8]| {
        validate(Kind::SdLoen, bytes)
            .findings
            .into_iter()
            .map(|f| f.message)
            .collect::<Vec<_>>()
    };
    // A UTF-8 sequence cut short by plain ASCII: the ASCII byte is where it breaks.
    assert_eq!(
        messages(b"\xef\xbb\xbfab\r\ncd\xc3A\r\n"),
        ["not valid UTF-8, which the byte-order mark declares, at line 2 (byte offset 10)"]
    );
    // Lines counted across blank ones; tab and CR are plain text.
    assert_eq!(
        messages(b"a\tb\r\n\r\n\r\nc\x02d"),
        ["control character U+0002 at line 4 (byte offset 10): not a text file"]
    );
    // A byte Windows-1252 leaves undefined, after plain text, in a file declared to be in it.
    assert_eq!(
        messages(b"<?xml version=\"1.0\" encoding=\"windows-1252\"?>\n<a>x\x81</a>"),
        [
            "byte 0x81 is not valid Windows-1252, which the XML declaration declares, at line 2 \
             (byte offset 50)"
        ]
    );
}

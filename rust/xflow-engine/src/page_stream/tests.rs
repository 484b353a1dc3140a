//! The streaming reader against serde_json (the reference for what a page is) on generated
//! pages: every field order, unknown fields of every JSON type, every escape, whitespace
//! anywhere, pieces of every size; and on truncated and mutated pages.

use super::*;
use crate::page_body::Content;
use crate::protocol::Page;
use base64::Engine;
use proptest::prelude::*;

/// Hands out at most `step` bytes per read, so every token can straddle a buffer boundary.
struct Pieces<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[derive(Debug, PartialEq)]
struct Read_ {
    deliveries: Vec<(DeliveryFields, Vec<u8>)>,
    has_more: bool,
}

fn ours(text: &[u8], step: usize) -> std::result::Result<Read_, PageError> {
    let mut reader = PageReader::new(Pieces { data: text, step });
    let mut deliveries = Vec::new();
    loop {
        let mut content = Vec::new();
        let next = reader.next_delivery(&mut |piece| {
            content.extend_from_slice(piece);
            Ok(())
        })?;
        match next {
            Some(fields) => deliveries.push((fields, content)),
            None => break,
        }
    }
    Ok(Read_ {
        deliveries,
        has_more: reader.has_more(),
    })
}

fn reference(text: &[u8]) -> Option<Read_> {
    let page: Page = serde_json::from_slice(text).ok()?;
    Some(Read_ {
        has_more: page.has_more,
        deliveries: page
            .deliveries
            .into_iter()
            .map(|d| {
                (
                    DeliveryFields {
                        id: d.id,
                        system: d.system,
                        file_name: d.file_name,
                        sha256: d.sha256,
                        created_at: d.created_at,
                    },
                    match d.content {
                        Content::Inline(text) => text.as_bytes().to_vec(),
                        Content::InFile { .. } => unreachable!("parsed from memory"),
                    },
                )
            })
            .collect(),
    })
}

// --- generating pages as text, with control over order, escapes and whitespace -----------

fn ws() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![" ", "\n", "\r\n", "\t", ""]),
        0..3,
    )
    .prop_map(|v| v.concat())
}

/// A string of interesting characters: ASCII, Danish letters, astral-plane characters, quotes,
/// backslashes, slashes, control characters.
fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::char::range('a', 'z'),
            1 => prop::sample::select(vec!['"', '\\', '/', '\n', '\t', '\u{1}', '\u{1f}', 'æ', 'Ø', 'å', '€', '😀', '\u{2028}', ' ']),
        ],
        0..12,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

/// How each character of a string is written: raw where JSON allows it, a short escape, or a
/// `\uXXXX` escape (a surrogate pair above the BMP), as `choices` say.
fn encode(s: &str, choices: &[u8]) -> String {
    let mut out = String::from("\"");
    for (i, c) in s.chars().enumerate() {
        let choice = choices[i % choices.len()] % 3;
        let short = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '/' => Some("\\/"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            '\u{8}' => Some("\\b"),
            '\u{c}' => Some("\\f"),
            _ => None,
        };
        let raw_allowed = c != '"' && c != '\\' && (c as u32) >= 0x20;
        match (choice, short) {
            (0, _) if raw_allowed => out.push(c),
            (0 | 1, Some(esc)) => out.push_str(esc),
            (1, None) if raw_allowed => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04X}"));
                }
            }
        }
    }
    out.push('"');
    out
}

fn encoded(s: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    (s, prop::collection::vec(any::<u8>(), 1..6)).prop_map(|(s, choices)| encode(&s, &choices))
}

/// Any JSON value, written with generated whitespace and escapes.
fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        prop::sample::select(vec!["0", "-0", "12", "-3.25", "1e5", "2.5E-3", "7e+2"])
            .prop_map(str::to_owned),
        encoded(text()),
    ];
    leaf.prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            (prop::collection::vec((inner.clone(), ws()), 0..4)).prop_map(|items| {
                let body: Vec<String> = items
                    .into_iter()
                    .map(|(v, w)| format!("{w}{v}{w}"))
                    .collect();
                format!("[{}]", body.join(","))
            }),
            (prop::collection::vec((encoded(text()), inner, ws()), 0..4)).prop_map(|members| {
                let body: Vec<String> = members
                    .into_iter()
                    .map(|(k, v, w)| format!("{w}{k}{w}:{w}{v}"))
                    .collect();
                format!("{{{}}}", body.join(","))
            }),
        ]
    })
}

/// Members written in the order given by `order` (a permutation), with whitespace.
fn object(members: Vec<(String, String)>, order: &[usize], gaps: &[String]) -> String {
    let mut indexed: Vec<(usize, (String, String))> = members.into_iter().enumerate().collect();
    indexed.sort_by_key(|(i, _)| order.get(*i).copied().unwrap_or(*i));
    let gap = |i: usize| gaps.get(i % gaps.len().max(1)).cloned().unwrap_or_default();
    let body: Vec<String> = indexed
        .into_iter()
        .enumerate()
        .map(|(i, (_, (k, v)))| {
            format!(
                "{}{}{}:{}{}{}",
                gap(i),
                k,
                gap(i + 1),
                gap(i + 2),
                v,
                gap(i + 3)
            )
        })
        .collect();
    format!("{{{}}}", body.join(","))
}

fn base64_content() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<u8>(), 0..200)
        .prop_map(|bytes| base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn delivery() -> impl Strategy<Value = String> {
    (
        encoded(text()),
        encoded(text()),
        prop::option::of(encoded(text())),
        (base64_content(), prop::collection::vec(any::<u8>(), 1..4)),
        encoded(text()),
        prop::option::of(prop::option::of(encoded(text()))),
        prop::collection::vec((encoded(text()), value()), 0..3),
        Just((0..9).collect::<Vec<usize>>()).prop_shuffle(),
        prop::collection::vec(ws(), 1..5),
    )
        .prop_map(
            |(id, system, file_name, (content, choices), sha, created, extra, order, gaps)| {
                let mut members = vec![
                    ("\"id\"".to_owned(), id),
                    ("\"system\"".to_owned(), system),
                    // base64 with every character possibly escaped (`\/` included)
                    ("\"content\"".to_owned(), encode(&content, &choices)),
                    ("\"sha256\"".to_owned(), sha),
                ];
                if let Some(f) = file_name {
                    members.push(("\"fileName\"".to_owned(), f));
                }
                match created {
                    Some(Some(c)) => members.push(("\"createdAt\"".to_owned(), c)),
                    Some(None) => members.push(("\"createdAt\"".to_owned(), "null".to_owned())),
                    None => {}
                }
                // Unknown fields never reuse a known name (that would be a duplicate).
                for (k, v) in extra {
                    let known = [
                        "id",
                        "system",
                        "content",
                        "sha256",
                        "fileName",
                        "createdAt",
                        "deliveries",
                        "hasMore",
                    ];
                    let name: String = serde_json::from_str(&k).unwrap();
                    if !known.contains(&name.as_str()) {
                        members.push((k, v));
                    }
                }
                object(members, &order, &gaps)
            },
        )
}

fn page() -> impl Strategy<Value = String> {
    (
        prop::collection::vec((delivery(), ws()), 0..5),
        prop::option::of(any::<bool>()),
        prop::collection::vec(
            (
                prop::sample::select(vec!["\"next\"", "\"x\\u0041\"", "\"cursor\""]),
                value(),
            ),
            0..2,
        ),
        any::<bool>(),
        prop::collection::vec(ws(), 1..4),
        ws(),
    )
        .prop_map(|(deliveries, has_more, extra, more_first, gaps, tail)| {
            let items: Vec<String> = deliveries
                .into_iter()
                .map(|(d, w)| format!("{w}{d}{w}"))
                .collect();
            let mut members = vec![(
                "\"deliveries\"".to_owned(),
                format!("[{}]", items.join(",")),
            )];
            if let Some(m) = has_more {
                members.push(("\"hasMore\"".to_owned(), m.to_string()));
            }
            members.extend(extra.into_iter().map(|(k, v)| (k.to_owned(), v)));
            let order: Vec<usize> = if more_first {
                (0..members.len()).rev().collect()
            } else {
                (0..members.len()).collect()
            };
            format!("{}{tail}", object(members, &order, &gaps))
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn reads_every_generated_page_as_serde_json_does(page in page(), step in 1usize..40) {
        let expected = reference(page.as_bytes());
        prop_assert!(expected.is_some(), "the generator made an invalid page: {}", page);
        let got = ours(page.as_bytes(), step);
        prop_assert!(got.is_ok(), "{:?} on {}", got.err(), page);
        prop_assert_eq!(got.unwrap(), expected.unwrap());
    }

    #[test]
    fn refuses_every_truncated_page(page in page(), cut in any::<prop::sample::Index>(), step in 1usize..40) {
        let trimmed = page.trim_end();
        let cut = cut.index(trimmed.len());
        let prefix = &trimmed.as_bytes()[..cut];
        prop_assert!(reference(prefix).is_none());
        prop_assert!(ours(prefix, step).is_err(), "accepted a page cut at {}: {}", cut, page);
    }

    #[test]
    fn accepts_a_mutated_page_exactly_when_serde_json_does(
        page in page(),
        at in any::<prop::sample::Index>(),
        byte in prop::sample::select(b"{}[],:\"\\ 0123456789-+.eEtrufalsn/uA=\x01\xc3\xa6\xff".to_vec()),
        step in 1usize..40,
    ) {
        let mut bytes = page.into_bytes();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        let expected = reference(&bytes);
        let got = ours(&bytes, step);
        match (expected, got) {
            (Some(e), Ok(g)) => prop_assert_eq!(g, e),
            (None, Err(_)) => {}
            (e, g) => prop_assert!(false, "serde_json: {:?}, ours: {:?} on {}", e.is_some(), g, String::from_utf8_lossy(&bytes)),
        }
    }

    #[test]
    fn base64_in_pieces_decodes_as_the_whole(bytes in prop::collection::vec(any::<u8>(), 0..3000), steps in prop::collection::vec(1usize..300, 1..20)) {
        let text = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let mut decoder = Base64Stream::default();
        let mut out = Vec::new();
        let mut rest = text.as_bytes();
        let mut i = 0;
        while !rest.is_empty() {
            let n = steps[i % steps.len()].min(rest.len());
            decoder.feed(&rest[..n], &mut |d| { out.extend_from_slice(d); Ok(()) }).unwrap();
            rest = &rest[n..];
            i += 1;
        }
        decoder.finish(&mut |d| { out.extend_from_slice(d); Ok(()) }).unwrap();
        prop_assert_eq!(out, bytes);
    }

    #[test]
    fn base64_in_pieces_fails_where_the_whole_fails(text in "[A-Za-z0-9+/=]{0,40}", step in 1usize..9) {
        let whole = base64::engine::general_purpose::STANDARD.decode(&text);
        let mut decoder = Base64Stream::default();
        let mut out = Vec::new();
        let mut result = Ok(());
        for piece in text.as_bytes().chunks(step) {
            result = decoder.feed(piece, &mut |d| { out.extend_from_slice(d); Ok(()) });
            if result.is_err() { break; }
        }
        if result.is_ok() {
            result = decoder.finish(&mut |d| { out.extend_from_slice(d); Ok(()) });
        }
        match whole {
            Ok(bytes) => { prop_assert!(result.is_ok(), "{:?} for {}", result, text); prop_assert_eq!(out, bytes); }
            Err(_) => prop_assert!(result.is_err(), "accepted {}", text),
        }
    }
}

#[test]
fn a_large_content_is_handed_out_in_pieces_and_never_held() {
    // 8 MiB of base64 read through a 64 KiB buffer: no piece is larger than the buffer.
    let content = "QUJD".repeat(2 * 1024 * 1024);
    let page = format!(
        r#"{{"hasMore":true,"deliveries":[{{"content":"{content}","id":"1","system":"SDLoen","sha256":"x"}}]}}"#
    );
    let mut reader = PageReader::new(page.as_bytes());
    let (mut total, mut largest) = (0usize, 0usize);
    let fields = reader
        .next_delivery(&mut |piece| {
            total += piece.len();
            largest = largest.max(piece.len());
            Ok(())
        })
        .unwrap()
        .unwrap();
    assert_eq!((&*fields.id, total), ("1", content.len()));
    assert!(largest <= BUFFER, "{largest}");
    assert!(reader.next_delivery(&mut |_| Ok(())).unwrap().is_none());
    assert!(reader.has_more());
}

#[test]
fn errors_name_the_problem() {
    let cases: [(&str, &str); 7] = [
        (
            r#"{"deliveries":[{"id":"1","system":"S","sha256":"x"}]}"#,
            "missing field `content`",
        ),
        (r#"{"hasMore":false}"#, "missing field `deliveries`"),
        (
            r#"{"deliveries":[{"id":"1","id":"2","system":"S","content":"","sha256":"x"}]}"#,
            "duplicate field `id`",
        ),
        (r#"{"deliveries":[]} x"#, "trailing characters"),
        (
            r#"{"deliveries":[{"\ud800":1,"id":"1","system":"S","content":"","sha256":"x"}]}"#,
            "lone leading surrogate",
        ),
        (
            r#"{"deliveries":[{"id":1,"system":"S","content":"","sha256":"x"}]}"#,
            "`id` must be a string",
        ),
        (
            r#"{"deliveries":[{"id":"1","system":"S","content":"","sha256":"x"}"#,
            "ends too early",
        ),
    ];
    for (page, want) in cases {
        let err = ours(page.as_bytes(), 7).unwrap_err().to_string();
        assert!(err.contains(want), "{page}: {err}");
    }
    // In a text field a lone surrogate becomes U+FFFD and a raw control character is kept, as
    // protocol::wire_text reads them.
    let odd = ours(
        b"{\"deliveries\":[{\"id\":\"a\\ud800b\\udc00\",\"system\":\"S\x01\",\"content\":\"\",\"sha256\":\"x\"}]}",
        3,
    )
    .unwrap();
    assert_eq!(&*odd.deliveries[0].0.id, "a\u{fffd}b\u{fffd}");
    assert!(!odd.deliveries[0].0.id.is_faithful());
    assert_eq!(odd.deliveries[0].0.system, "S\u{1}");
    let long = format!(
        r#"{{"deliveries":[{{"id":"{}"}}]}}"#,
        "a".repeat(MAX_FIELD_BYTES + 1)
    );
    assert!(
        ours(long.as_bytes(), 4096)
            .unwrap_err()
            .to_string()
            .contains("longer than")
    );
}

#[test]
fn a_failing_sink_stops_the_read_with_its_error() {
    let page = br#"{"deliveries":[{"content":"QUJD","id":"1","system":"S","sha256":"x"}]}"#;
    let mut reader = PageReader::new(&page[..]);
    let err = reader
        .next_delivery(&mut |_| Err(io::Error::other("disk full")))
        .unwrap_err();
    assert!(
        matches!(&err, PageError::Io(e) if e.to_string() == "disk full"),
        "{err}"
    );
}

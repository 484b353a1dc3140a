//! File names for delivered files. A name comes from the server and is untrusted: it must never
//! escape the import folder and must be valid on Windows (NTFS/SMB) and Linux alike. Danish
//! letters are kept; everything dangerous is replaced rather than rejected, so a delivery is never
//! refused for its name alone.

use unicode_normalization::UnicodeNormalization;

/// The longest name we create, in UTF-8 bytes (NTFS and ext4 allow 255; 255 UTF-8 bytes are never
/// more than 255 UTF-16 units).
pub const MAX_NAME_BYTES: usize = 255;

/// Room kept free for a collision suffix such as `~0123abcd-12`.
const SUFFIX_RESERVE: usize = 16;

/// Our own temp files end in `.partial`; `.tmp` is what importers commonly skip. A delivered file
/// must not look like either.
const FORBIDDEN_ENDINGS: [&str; 2] = [".partial", ".tmp"];

const RESERVED_DEVICE_NAMES: [&str; 6] = ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"];

/// Turns a server-supplied name into a safe file name, or derives one from the delivery id when
/// nothing usable remains.
pub fn safe_file_name(requested: &str, delivery_id: &str) -> String {
    let normalized: String = requested.nfc().collect();
    // Strip any directory part, whichever separator the sender used.
    let last = normalized.rsplit(['/', '\\']).next().unwrap_or_default();
    let replaced: String = last
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| {
            if is_forbidden_char(c) || is_noncharacter(c) {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = replaced
        .trim_start_matches(['.', ' '])
        .trim_end_matches(['.', ' ']);
    if trimmed.is_empty() || trimmed.chars().all(|c| c == '_') {
        return fallback_name(delivery_id);
    }
    let mut name = trimmed.to_owned();
    if is_reserved_device_name(&name) {
        name.insert(0, '_');
    }
    if ends_with_forbidden(&name) {
        name.push('_');
    }
    fit_length(&name, MAX_NAME_BYTES - SUFFIX_RESERVE)
}

/// The name to use when `name` is taken by a different file: deterministic for a given content
/// (`attempt` 1 gives `stem~<sha8>.ext`, 2 gives `stem~<sha8>-2.ext`, …).
pub fn collision_name(name: &str, sha256_hex: &str, attempt: u32) -> String {
    let (stem, ext) = split_extension(name);
    let short = &sha256_hex[..sha256_hex.len().min(8)];
    let suffix = if attempt <= 1 {
        format!("~{short}")
    } else {
        format!("~{short}-{attempt}")
    };
    let ext_len = ext.map_or(0, |e| e.len() + 1);
    let stem = truncate_utf8(stem, MAX_NAME_BYTES - suffix.len() - ext_len);
    match ext {
        Some(ext) => format!("{stem}{suffix}.{ext}"),
        None => format!("{stem}{suffix}"),
    }
}

fn is_forbidden_char(c: char) -> bool {
    matches!(c, '<' | '>' | ':' | '"' | '/' | '\\' | '|' | '?' | '*')
}

/// Unicode's noncharacters (U+FDD0..U+FDEF and the last two code points of every plane) are
/// for a program's internal use, never for interchange: XML, and so DataContractJsonSerializer,
/// refuses U+FFFE and U+FFFF, and an importer may choke on any of them.
fn is_noncharacter(c: char) -> bool {
    let c = u32::from(c);
    (0xFDD0..=0xFDEF).contains(&c) || c & 0xFFFE == 0xFFFE
}

/// Windows reserves device names with any extension (`aux.txt`, `NUL.tar.gz`), and ignores
/// trailing spaces before the dot (`CON .txt`).
fn is_reserved_device_name(name: &str) -> bool {
    let base = name.split('.').next().unwrap_or_default().trim_end();
    let upper = base.to_uppercase();
    if RESERVED_DEVICE_NAMES.contains(&upper.as_str()) {
        return true;
    }
    let mut chars = upper.chars();
    let prefix: String = chars.by_ref().take(3).collect();
    let rest: String = chars.collect();
    (prefix == "COM" || prefix == "LPT")
        && rest.chars().count() == 1
        && rest
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '¹' | '²' | '³'))
}

fn ends_with_forbidden(name: &str) -> bool {
    let lower = name.to_lowercase();
    FORBIDDEN_ENDINGS.iter().any(|e| lower.ends_with(e))
}

fn fallback_name(delivery_id: &str) -> String {
    let id: String = delivery_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .take(64)
        .collect();
    if id.is_empty() {
        "delivery".to_owned()
    } else {
        format!("delivery-{id}")
    }
}

fn split_extension(name: &str) -> (&str, Option<&str>) {
    match name.rfind('.') {
        Some(i) if i > 0 && i + 1 < name.len() && name.len() - i <= 16 => {
            (&name[..i], Some(&name[i + 1..]))
        }
        _ => (name, None),
    }
}

/// Shortens the stem so the whole name fits in `max` bytes, keeping the extension.
fn fit_length(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_owned();
    }
    let (stem, ext) = split_extension(name);
    let ext_len = ext.map_or(0, |e| e.len() + 1);
    let stem = truncate_utf8(stem, max - ext_len).trim_end_matches(['.', ' ']);
    match ext {
        Some(ext) => format!("{stem}.{ext}"),
        None => stem.to_owned(),
    }
}

fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (requested name, expected safe name). The id used for fallbacks is "id-42".
    const HOSTILE: &[(&str, &str)] = &[
        ("løn.csv", "løn.csv"),
        ("SD Løn Ærø Å.csv", "SD Løn Ærø Å.csv"),
        ("../../evil.txt", "evil.txt"),
        ("..\\..\\evil.txt", "evil.txt"),
        ("/etc/passwd", "passwd"),
        ("C:\\Windows\\System32\\drivers\\etc\\hosts", "hosts"),
        ("\\\\server\\share\\x.csv", "x.csv"),
        ("CON", "_CON"),
        ("con", "_con"),
        ("aux.txt", "_aux.txt"),
        ("NUL.tar.gz", "_NUL.tar.gz"),
        ("PRN.csv", "_PRN.csv"),
        ("COM1", "_COM1"),
        ("com9.log", "_com9.log"),
        ("LPT1.txt", "_LPT1.txt"),
        ("lpt5", "_lpt5"),
        ("COM¹.txt", "_COM¹.txt"),
        ("CONIN$", "_CONIN$"),
        ("conout$.txt", "_conout$.txt"),
        ("CON .txt", "_CON .txt"),
        ("COM10.txt", "COM10.txt"),
        ("CONSOLE.txt", "CONSOLE.txt"),
        ("a:b", "a_b"),
        ("file.txt:stream", "file.txt_stream"),
        ("file.txt::$DATA", "file.txt__$DATA"),
        ("x<y>.txt", "x_y_.txt"),
        ("what?.csv", "what_.csv"),
        ("star*.csv", "star_.csv"),
        ("pipe|name.csv", "pipe_name.csv"),
        ("quote\"d.csv", "quote_d.csv"),
        ("name.", "name"),
        ("name. . .", "name"),
        ("trailing space ", "trailing space"),
        (".hidden", "hidden"),
        ("...dots.csv", "dots.csv"),
        (" leading.csv", "leading.csv"),
        ("x.partial", "x.partial_"),
        ("X.PARTIAL", "X.PARTIAL_"),
        ("upload.tmp", "upload.tmp_"),
        ("tab\there.csv", "tabhere.csv"),
        ("new\nline.csv", "newline.csv"),
        ("nul\0byte.csv", "nulbyte.csv"),
        ("bell\u{7}.csv", "bell.csv"),
        ("c1\u{85}control.csv", "c1control.csv"),
        ("", "delivery-id-42"),
        ("   ", "delivery-id-42"),
        ("...", "delivery-id-42"),
        ("/", "delivery-id-42"),
        ("dir/", "delivery-id-42"),
        ("***", "delivery-id-42"),
        // Decomposed "ø" is not a thing, but decomposed "å" is: NFC turns a + ring into å.
        ("pa\u{30a}.csv", "på.csv"),
        ("a\u{ffff}b.csv", "a_b.csv"),
        ("\u{fffe}reversed.csv", "_reversed.csv"),
        ("fdd0\u{fdd0}\u{fdef}.csv", "fdd0__.csv"),
        ("plane1\u{1fffe}\u{1ffff}.csv", "plane1__.csv"),
        ("plane16\u{10ffff}.csv", "plane16_.csv"),
        ("\u{ffff}", "delivery-id-42"),
        // What a lone surrogate from the wire becomes (protocol.rs): kept, it is a valid character.
        ("lone\u{fffd}.csv", "lone\u{fffd}.csv"),
        (
            "\u{fdcf}\u{fdf0}\u{fffd}.csv",
            "\u{fdcf}\u{fdf0}\u{fffd}.csv",
        ),
    ];

    #[test]
    fn hostile_names_become_safe() {
        assert!(HOSTILE.len() >= 40);
        for (requested, expected) in HOSTILE {
            let got = safe_file_name(requested, "id-42");
            assert_eq!(&got, expected, "for {requested:?}");
            assert_is_safe(&got);
        }
    }

    #[test]
    fn long_names_are_cut_keeping_the_extension_and_char_boundaries() {
        let long = format!("{}.csv", "ø".repeat(300));
        let got = safe_file_name(&long, "id");
        assert!(
            got.len() <= MAX_NAME_BYTES - SUFFIX_RESERVE,
            "{}",
            got.len()
        );
        assert!(got.ends_with(".csv"));
        assert_is_safe(&got);
        let collided = collision_name(&got, &"ab".repeat(32), 12);
        assert!(collided.len() <= MAX_NAME_BYTES);
        assert!(collided.ends_with("~abababab-12.csv"), "{collided}");
    }

    #[test]
    fn collision_names_are_deterministic_and_distinct() {
        let sha = "0123456789abcdef".repeat(4);
        assert_eq!(collision_name("løn.csv", &sha, 1), "løn~01234567.csv");
        assert_eq!(collision_name("løn.csv", &sha, 2), "løn~01234567-2.csv");
        assert_eq!(collision_name("README", &sha, 1), "README~01234567");
        assert_eq!(
            collision_name("løn.csv", &sha, 1),
            collision_name("løn.csv", &sha, 1)
        );
    }

    #[test]
    fn ids_used_for_fallback_names_are_themselves_sanitised() {
        assert_eq!(safe_file_name("", "../../x"), "delivery-x");
        assert_eq!(safe_file_name("", "///"), "delivery");
    }

    fn assert_is_safe(name: &str) {
        assert!(!name.is_empty());
        assert!(name.len() <= MAX_NAME_BYTES);
        assert!(!name.starts_with('.'), "{name}");
        assert!(!name.ends_with('.') && !name.ends_with(' '), "{name}");
        assert!(
            !name
                .chars()
                .any(|c| c.is_control() || is_forbidden_char(c) || is_noncharacter(c)),
            "{name}"
        );
        assert!(!is_reserved_device_name(name), "{name}");
        assert!(!ends_with_forbidden(name), "{name}");
    }
}

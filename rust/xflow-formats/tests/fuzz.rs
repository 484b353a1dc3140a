//! Arbitrary input: the validators never panic, any chunking gives the same report, and the
//! work grows linearly with the input.

use proptest::prelude::*;
use std::time::Duration;
use xflow_formats::{Kind, Validator, validate};

/// Bytes that look enough like G69/G68 lines to reach the deeper rules.
fn prisme_like() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"123G6900001081701NORFLYD".to_vec()),
        Just(b"123G6800001011".to_vec()),
        Just(b"&10300042".to_vec()),
        Just(b"&1040000001".to_vec()),
        Just(b"&11020250131".to_vec()),
        Just(b"&112000000306914 ".to_vec()),
        Just(b"&113D".to_vec()),
        Just(b"&09+".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"&".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..12),
    ];
    proptest::collection::vec(piece, 0..60).prop_map(|p| p.concat())
}

fn chunked(kind: Kind, bytes: &[u8], cuts: &[usize]) -> xflow_formats::Report {
    let mut v = Validator::new(kind);
    let mut at = 0;
    for &cut in cuts {
        let end = (at + cut).min(bytes.len());
        v.update(&bytes[at..end]);
        at = end;
    }
    v.update(&bytes[at..]);
    v.finish()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn arbitrary_bytes_never_panic_and_chunking_is_invisible(
        bytes in proptest::collection::vec(any::<u8>(), 0..2000),
        cuts in proptest::collection::vec(0usize..300, 0..20),
    ) {
        for kind in [Kind::Prisme, Kind::SdLoen] {
            prop_assert_eq!(chunked(kind, &bytes, &cuts), validate(kind, &bytes));
        }
    }

    #[test]
    fn prisme_like_input_never_panics_and_chunking_is_invisible(
        bytes in prisme_like(),
        cuts in proptest::collection::vec(0usize..64, 0..30),
    ) {
        let whole = validate(Kind::Prisme, &bytes);
        prop_assert!(whole.findings.len() <= xflow_formats::MAX_FINDINGS);
        prop_assert_eq!(chunked(Kind::Prisme, &bytes, &cuts), whole);
    }
}

/// CPU time of this thread: unlike wall time it does not grow when a busy machine preempts the
/// test, so the comparison below holds under load.
#[cfg(unix)]
fn thread_cpu_time() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer for a clock every Unix this project targets has.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Best of three.
#[cfg(unix)]
fn best_time(kind: Kind, input: &[u8]) -> Duration {
    (0..3)
        .map(|_| {
            let start = thread_cpu_time();
            let mut v = Validator::new(kind);
            for chunk in input.chunks(64 * 1024) {
                v.update(chunk);
            }
            std::hint::black_box(v.finish());
            thread_cpu_time() - start
        })
        .min()
        .unwrap()
}

/// 16 times the input (512 KiB, 8 MiB) must cost about 16 times the time: a quadratic step would
/// make the larger input 16 times slower per byte; the bound allows 4 times, for noise and caches,
/// not for a wrong algorithm. (Unix only: it measures the thread's CPU time.)
#[cfg(unix)]
#[test]
fn work_is_linear_in_the_input() {
    let line = b"123G6900001081701NORFLYD&10300042&1040000001&11020250131&111000000012345678&112000000306914 &113D\r\n";
    let patterns: [(&str, Kind, Vec<u8>); 6] = [
        ("valid G69 lines", Kind::Prisme, line.to_vec()),
        ("one endless line", Kind::Prisme, b"123G69xxxxx".to_vec()),
        ("ampersands", Kind::Prisme, b"&&&&&&&&&&&&&&&&".to_vec()),
        ("bare CRs", Kind::Prisme, b"\r\r\r\r\r\r\r\r".to_vec()),
        (
            "text, Danish UTF-8",
            Kind::SdLoen,
            "Søren Ærø;LØN\r\n".as_bytes().to_vec(),
        ),
        (
            "text, broken",
            Kind::SdLoen,
            b"\xff\xfe\x00\xd8abc\n".to_vec(),
        ),
    ];
    for (name, kind, unit) in patterns {
        let small: Vec<u8> = unit.iter().copied().cycle().take(512 << 10).collect();
        let large: Vec<u8> = unit.iter().copied().cycle().take(8 << 20).collect();
        let (t_small, t_large) = (best_time(kind, &small), best_time(kind, &large));
        let per_byte_ratio = (t_large.as_secs_f64() / 16.0) / t_small.as_secs_f64().max(1e-6);
        assert!(
            per_byte_ratio < 4.0,
            "{name}: 512 KiB took {t_small:?}, 8 MiB took {t_large:?} (per byte {per_byte_ratio:.1}x)"
        );
    }
}

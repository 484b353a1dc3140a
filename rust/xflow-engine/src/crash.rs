//! Crash points, for the crash tests only (feature `failpoints`; compiled out otherwise). At a
//! crash point named in `XFLOW_CRASH_AT` the process ends on the spot with `abort`, as a power
//! switch or `kill -9` would end it: no destructor runs, SQLite is not closed, the lock is
//! released by the OS. `XFLOW_CRASH_AT=after-rename#3` ends it the third time that point is
//! reached. `XFLOW_FAIL_AT=<point>` makes the step at that point fail with an error instead (a
//! journal commit that fails), which the run must survive without acknowledging anything.
//! `XFLOW_PANIC_AT=<point>` makes the code at that point panic (a bug in a step that must be
//! caught, such as the content check's validator). `XFLOW_RENAME_FALLBACK` makes `fsops` use its fallback for file systems without a no-replace
//! rename, so that its crash behaviour is tested on one that has it.

/// Ends the process here when the crash tests ask for it.
macro_rules! crash_point {
    ($name:literal) => {
        #[cfg(feature = "failpoints")]
        $crate::crash::reached($name);
    };
}

/// Returns an injected error from the enclosing function when the crash tests ask for it.
macro_rules! failure_point {
    ($name:literal) => {
        #[cfg(feature = "failpoints")]
        if $crate::crash::should_fail($name) {
            return Err($crate::error::EngineError::Internal(format!(
                "injected failure at {}",
                $name
            )));
        }
    };
}

/// Panics here when the crash tests ask for it.
macro_rules! panic_point {
    ($name:literal) => {
        #[cfg(feature = "failpoints")]
        if std::env::var("XFLOW_PANIC_AT").is_ok_and(|point| point == $name) {
            panic!("injected panic at {}", $name);
        }
    };
}

pub(crate) use {crash_point, failure_point, panic_point};

#[cfg(feature = "failpoints")]
pub(crate) fn reached(name: &str) {
    use std::sync::Mutex;
    static HITS: Mutex<Vec<(String, u32)>> = Mutex::new(Vec::new());
    let Some(wanted) = std::env::var("XFLOW_CRASH_AT").ok() else {
        return;
    };
    let (point, nth) = match wanted.split_once('#') {
        Some((point, n)) => (point.to_owned(), n.parse().unwrap_or(1)),
        None => (wanted, 1),
    };
    if point != name {
        return;
    }
    let mut hits = HITS.lock().unwrap_or_else(|p| p.into_inner());
    let count = match hits.iter_mut().find(|(n, _)| n == name) {
        Some((_, count)) => {
            *count += 1;
            *count
        }
        None => {
            hits.push((name.to_owned(), 1));
            1
        }
    };
    if count == nth {
        eprintln!("crash point {name} (#{nth}): aborting");
        std::process::abort();
    }
}

#[cfg(feature = "failpoints")]
pub(crate) fn should_fail(name: &str) -> bool {
    std::env::var("XFLOW_FAIL_AT").is_ok_and(|point| point == name)
}

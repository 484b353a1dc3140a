//! Real crashes at every boundary of the publish protocol, the page spool, the journal, the
//! acknowledgement and recovery (`cargo test -p xflow-engine --features failpoints`). A child
//! process (`xflow-crash-child`) runs the engine and dies at a crash point with `abort`, as
//! `kill -9` or a power switch would end it: no destructor, no SQLite close, the lock released
//! by the OS. Then more runs follow (some crashing again, inside recovery), and finally a clean
//! one. Each delivery must end up exactly once, byte-identical, with no temp file visible and
//! nothing acknowledged before it was durable and journaled. Nothing may be lost: in mode None
//! the page is durable in the spool before anything else happens.
#![cfg(feature = "failpoints")]

mod common;

use common::*;
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Stdio};
use xflow_engine::Outcome;

/// What a child run printed, and how it ended.
struct ChildRun {
    events: Vec<Value>,
    status: std::process::ExitStatus,
}

impl ChildRun {
    fn crashed(&self) -> bool {
        use std::os::unix::process::ExitStatusExt;
        self.status.signal() == Some(libc::SIGABRT)
    }
    fn summary(&self) -> Option<&Value> {
        self.events.iter().rev().find(|e| e["kind"] == "summary")
    }
}

/// Runs `config` in a child process with `env_vars` (XFLOW_CRASH_AT / XFLOW_FAIL_AT).
fn child_run(config: &Value, env_vars: &[(&str, &str)]) -> ChildRun {
    let mut child = Command::new(env!("CARGO_BIN_EXE_xflow-crash-child"))
        .envs(env_vars.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the crash child starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(config.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let events = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON event per line"))
        .collect();
    ChildRun {
        events,
        status: output.status,
    }
}

fn crash_at(config: &Value, point: &str, context: &str) {
    let run = child_run(config, &[("XFLOW_CRASH_AT", point)]);
    assert!(
        run.crashed(),
        "{context}: the crash point {point} was not reached ({:?}): {:?}",
        run.status,
        run.events
    );
}

async fn backlog(env: &Env, mode: &str) {
    let sim_mode = if mode == "Ack" {
        xflow_sim::Mode::Ack
    } else {
        xflow_sim::Mode::None
    };
    env.control.settings(Some(sim_mode), None).await.unwrap();
    env.control
        .generate(
            &json!({"count": 6, "size": 3000, "systems": ["SDLoen", "Prisme"], "kind": "sample"}),
        )
        .await
        .unwrap();
}

/// In mode Ack nothing may be acknowledged that is not durable in its folder right now.
async fn assert_acked_are_durable(env: &Env, context: &str) {
    let hashes: Vec<String> = env
        .files()
        .iter()
        .filter(|f| !f.to_string_lossy().ends_with(".partial"))
        .map(|f| sha256_hex(&std::fs::read(f).unwrap()))
        .collect();
    for (id, sha, state, _) in server_view(&env.state().await) {
        if state == "acked" {
            assert!(
                hashes.contains(&sha),
                "{context}: {id} acknowledged but not in its folder"
            );
        }
    }
}

/// Crashes at each of `points` in turn (one run each), then runs cleanly and checks.
async fn crash_then_recover(mode: &str, points: &[&str]) {
    let context = format!("{mode}/{}", points.join(" then "));
    let env = env().await;
    backlog(&env, mode).await;
    let config = env.config(mode);
    for point in points {
        crash_at(&config, point, &context);
        if mode == "Ack" {
            assert_acked_are_durable(&env, &context).await;
        }
    }
    let recovered = env.run_mode(mode).await;
    recovered.expect(Outcome::Succeeded, &context);
    let state = env.state().await;
    assert_each_exactly_once(&env, &state);
    assert_eq!(env.files().len(), 6, "{context}: {:?}", env.files());
    if mode == "Ack" {
        assert_server_states(&state, "acked", &context);
    }
    let spool = env.state.join("spool");
    assert_eq!(
        std::fs::read_dir(&spool).map(|d| d.count()).unwrap_or(0),
        0,
        "{context}: the spool still holds pages"
    );
}

/// Every boundary, in publish order. `#n`: the n-th time the point is reached (a crash in the
/// middle of a page's renames).
const ACK_POINTS: &[&str] = &[
    "after-stage",
    "after-journal-publishing",
    "after-rename",
    "after-rename#4",
    "after-sync-dir",
    "after-journal-published",
    "after-ack",
];
const NONE_POINTS: &[&str] = &[
    "after-spool",
    "after-stage",
    "after-journal-publishing",
    "after-rename",
    "after-rename#4",
    "after-sync-dir",
    "after-journal-published",
];

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_at_any_boundary_is_recovered_exactly_once_in_mode_ack() {
    for point in ACK_POINTS {
        crash_then_recover("Ack", &[point]).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_at_any_boundary_loses_nothing_in_mode_none() {
    for point in NONE_POINTS {
        crash_then_recover("None", &[point]).await;
    }
}

/// A crash, then a crash while recovering from it, then a clean run.
#[tokio::test(flavor = "multi_thread")]
async fn a_crash_during_recovery_is_recovered_too() {
    let cases: &[(&str, &[&str])] = &[
        (
            "Ack",
            &["after-journal-publishing", "recovery-after-rename"],
        ),
        ("Ack", &["after-rename#2", "recovery-after-publishes"]),
        ("Ack", &["after-sync-dir", "after-journal-published"]),
        ("Ack", &["after-journal-published", "after-ack"]),
        ("None", &["after-spool", "after-rename#2"]),
        (
            "None",
            &["after-journal-publishing", "recovery-after-rename"],
        ),
        ("None", &["after-rename#3", "after-journal-published"]),
    ];
    for (mode, points) in cases {
        crash_then_recover(mode, points).await;
    }
}

/// A temp file recovery finds damaged is forgotten in the journal first and removed after: a
/// crash in between must not turn "temp gone" into "published".
#[tokio::test(flavor = "multi_thread")]
async fn a_crash_between_rolling_back_a_damaged_temp_and_removing_it_loses_nothing() {
    for mode in ["Ack", "None"] {
        let env = env().await;
        backlog(&env, mode).await;
        let config = env.config(mode);
        crash_at(&config, "after-journal-publishing", mode);
        let temp = env
            .files()
            .into_iter()
            .find(|f| f.to_string_lossy().ends_with(".partial"))
            .expect("staged temp files");
        std::fs::write(&temp, b"damaged").unwrap();
        crash_at(&config, "recovery-after-rollback", mode);
        let recovered = env.run_mode(mode).await;
        recovered.expect(Outcome::Succeeded, mode);
        // The rollback was committed before the crash: the damaged file is now an unrecorded
        // leftover, swept; the delivery comes again and lands once.
        assert!(
            recovered.text().contains("removed 1 unfinished temp files"),
            "{mode}: {}",
            recovered.text()
        );
        assert_each_exactly_once(&env, &env.state().await);
        assert_eq!(env.files().len(), 6, "{mode}");
    }
}

/// The journal cannot record the renamed files as published (a full or read-only state folder):
/// nothing is acknowledged, and the next run finishes the job.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_journal_commit_after_renaming_acknowledges_nothing() {
    let env = env().await;
    backlog(&env, "Ack").await;
    let failed = child_run(
        &env.config("Ack"),
        &[("XFLOW_FAIL_AT", "journal-published")],
    );
    let summary = failed.summary().expect("the run ends with a summary");
    assert_eq!(summary["outcome"], "Failed", "{:?}", failed.events);
    let state = env.state().await;
    assert!(
        server_view(&state).iter().all(|(_, _, s, _)| s != "acked"),
        "acknowledged without a journaled publish"
    );
    let next = env.run_mode("Ack").await;
    next.expect(Outcome::Succeeded, "after the failed commit");
    let state = env.state().await;
    assert_each_exactly_once(&env, &state);
    assert_server_states(&state, "acked", "after the failed commit");
}

/// The flush that makes a page's staged files durable fails (an I/O error, a full disk): the
/// page's temp files are removed, nothing is journaled, renamed or acknowledged, and the next
/// run delivers everything once.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_page_flush_leaves_no_file_and_acknowledges_nothing() {
    let env = env().await;
    backlog(&env, "Ack").await;
    let failed = child_run(&env.config("Ack"), &[("XFLOW_FAIL_AT", "page-flush")]);
    let summary = failed.summary().expect("the run ends with a summary");
    assert_eq!(summary["outcome"], "Failed", "{:?}", failed.events);
    assert_eq!(summary["delivered"], 0, "{:?}", failed.events);
    assert_eq!(
        env.files(),
        Vec::<std::path::PathBuf>::new(),
        "no temp or published file stays"
    );
    let state = env.state().await;
    assert!(
        server_view(&state).iter().all(|(_, _, s, _)| s != "acked"),
        "acknowledged without a durable file"
    );
    let next = env.run_mode("Ack").await;
    next.expect(Outcome::Succeeded, "after the failed flush");
    let state = env.state().await;
    assert_each_exactly_once(&env, &state);
    assert_server_states(&state, "acked", "after the failed flush");
}

/// Two deliveries asking for the same name, with a crash after the first rename: the second
/// still gets its own collision name, and recovery tells the two apart.
#[tokio::test(flavor = "multi_thread")]
async fn two_deliveries_with_one_name_under_a_crash_both_land_once() {
    for mode in ["Ack", "None"] {
        let env = env().await;
        backlog(&env, mode).await;
        let same = |body: &str| json!({"system": "Prisme", "fileName": "G69.txt", "text": body});
        env.enqueue(json!([same("first"), same("second")])).await;
        crash_at(&env.config(mode), "after-rename#7", mode);
        let recovered = env.run_mode(mode).await;
        recovered.expect(Outcome::Succeeded, mode);
        assert_each_exactly_once(&env, &env.state().await);
        assert_eq!(env.files().len(), 8, "{mode}: {:?}", env.files());
        assert!(env.prisme.join("G69.txt").exists(), "{mode}");
    }
}

/// Everything a preview could change: each file under the import folders and the state folder
/// (name, bytes), except SQLite's shared-memory index, which only mirrors the WAL.
fn snapshot(env: &Env) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for root in [&env.sd_loen, &env.prisme, &env.state] {
        for entry in walk(root) {
            let name = entry.to_string_lossy().into_owned();
            if !name.ends_with("-shm") {
                files.push((name, std::fs::read(&entry).unwrap()));
            }
        }
    }
    files.sort();
    files
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// A preview after a crash says what recovery would do and does none of it: no rename, no
/// acknowledgement, no journal or spool change; the real run then recovers.
#[tokio::test(flavor = "multi_thread")]
async fn a_preview_after_a_crash_reports_recovery_and_changes_nothing() {
    for (mode, point, expected) in [
        ("Ack", "after-journal-publishing", "finish 6 publishes"),
        ("Ack", "after-journal-published", "acknowledge 6 deliveries"),
        ("None", "after-spool", "pages waiting in the spool"),
    ] {
        let context = format!("{mode}/{point}");
        let env = env().await;
        backlog(&env, mode).await;
        let config = env.config(mode);
        crash_at(&config, point, &context);
        let before = snapshot(&env);
        let server_before = server_view(&env.state().await);
        let mut preview_config = config.clone();
        preview_config["whatIf"] = json!(true);
        let preview = env.run(preview_config).await;
        preview.expect(Outcome::Succeeded, &context);
        assert!(
            preview.events.iter().any(|e| matches!(e,
                xflow_engine::Event::Preview { message }
                    if message.starts_with("Recover:") && message.contains(expected))),
            "{context}: {}",
            preview.text()
        );
        assert_eq!(
            snapshot(&env),
            before,
            "{context}: the preview changed a file"
        );
        assert_eq!(
            server_view(&env.state().await),
            server_before,
            "{context}: the preview changed the server"
        );
        env.run_mode(mode)
            .await
            .expect(Outcome::Succeeded, &context);
        assert_each_exactly_once(&env, &env.state().await);
        assert_eq!(env.files().len(), 6, "{context}");
    }
}

/// File systems without a no-replace rename (NFS, CIFS, ZFS) use the fallback. A crash before a
/// rename, and a crash after it followed by the importer taking every visible file before
/// recovery runs: either way each delivery ends up exactly once (the importer's share counted).
#[tokio::test(flavor = "multi_thread")]
async fn the_rename_fallback_tells_published_from_unpublished_after_a_crash() {
    let fallback = [("XFLOW_RENAME_FALLBACK", "1")];
    for (point, importer_takes_files) in [
        ("after-journal-publishing", false),
        ("after-rename#3", false),
        ("after-rename#3", true),
        ("after-sync-dir", true),
    ] {
        let context = format!("fallback/{point}/importer {importer_takes_files}");
        let env = env().await;
        backlog(&env, "Ack").await;
        let config = env.config("Ack");
        let crashed = child_run(&config, &[fallback[0], ("XFLOW_CRASH_AT", point)]);
        assert!(crashed.crashed(), "{context}: {:?}", crashed.events);
        let mut taken = Vec::new();
        if importer_takes_files {
            for file in env.files() {
                if !file.to_string_lossy().ends_with(".partial") {
                    taken.push(sha256_hex(&std::fs::read(&file).unwrap()));
                    std::fs::remove_file(file).unwrap();
                }
            }
            assert!(
                !taken.is_empty(),
                "{context}: nothing was published before the crash"
            );
        }
        let recovered = child_run(&config, &fallback);
        let summary = recovered.summary().expect("a summary");
        assert_eq!(
            summary["outcome"], "Succeeded",
            "{context}: {:?}",
            recovered.events
        );
        let mut landed: Vec<String> = env
            .files()
            .iter()
            .map(|f| {
                assert!(
                    !f.to_string_lossy().ends_with(".partial"),
                    "{context}: {f:?}"
                );
                sha256_hex(&std::fs::read(f).unwrap())
            })
            .collect();
        landed.extend(taken);
        let state = env.state().await;
        for (id, sha, _, _) in server_view(&state) {
            let copies = landed.iter().filter(|h| **h == sha).count();
            assert_eq!(copies, 1, "{context}: {id} landed {copies} times");
        }
        assert_server_states(&state, "acked", &context);
    }
}

/// Ctrl+C while a rename is being retried (antivirus holding the file, simulated by the fail
/// point `rename-blocked`, since Linux never reports Windows' transient errors): the retries
/// stop at once, the run ends Cancelled and releases its lock, and the next run publishes the
/// staged files through recovery, each exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_during_rename_retries_ends_the_run_at_once_and_the_next_run_recovers() {
    let scenario = fail::FailScenario::setup();
    let env = env().await;
    env.enqueue(json!([
        {"system": "SDLoen", "fileName": "a.csv", "text": "a;1"},
        {"system": "Prisme", "fileName": "b.txt", "text": "b;2"},
    ]))
    .await;
    fail::cfg("rename-blocked", "return").unwrap();
    let config = env.config("Ack").to_string();
    // The run is driven from this (blocking) test thread; the simulator keeps the other workers.
    let (summary, ended_after) = tokio::task::block_in_place(|| {
        let run = xflow_engine::Run::start(
            xflow_engine::RunConfig::from_json(config.as_bytes()).unwrap(),
        )
        .unwrap();
        // Staged and journaled: the renames are being retried now.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while env.files().len() < 2 {
            assert!(std::time::Instant::now() < deadline, "nothing was staged");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
        let cancelled = std::time::Instant::now();
        run.cancel();
        let summary = loop {
            match run.next_event(std::time::Duration::from_secs(5)) {
                xflow_engine::NextEvent::Event(xflow_engine::Event::Summary(s)) => break s,
                xflow_engine::NextEvent::Event(_) => continue,
                _ => panic!("no summary within 5 s of the cancel"),
            }
        };
        assert!(
            run.wait(std::time::Duration::from_secs(1)),
            "the run thread ended"
        );
        (summary, cancelled.elapsed())
    });
    fail::remove("rename-blocked");
    assert_eq!(summary.outcome, Outcome::Cancelled, "{summary:?}");
    assert!(
        ended_after < std::time::Duration::from_secs(1),
        "the run took {ended_after:?} to end after the cancel"
    );
    assert!(
        env.files().iter().all(|f| f
            .file_name()
            .unwrap()
            .to_string_lossy()
            .ends_with(".partial")),
        "nothing published yet"
    );
    for (id, _, _, acks) in server_view(&env.state().await) {
        assert_eq!(acks, 0, "{id} was acknowledged before it was published");
    }

    env.run_mode("Ack")
        .await
        .expect(Outcome::Succeeded, "the next run");
    let state = env.state().await;
    assert_each_exactly_once(&env, &state);
    assert_server_states(&state, "acked", "after the next run");
    scenario.teardown();
}

/// A validator bug must never lose a delivery: the check panics (XFLOW_PANIC_AT) before it has
/// read a byte, and the delivery is quarantined under Quarantine, delivered under Warn.
#[tokio::test(flavor = "multi_thread")]
async fn a_panicking_validator_never_loses_a_delivery() {
    let env = env().await;
    env.enqueue(json!([{"system": "Prisme", "fileName": "G69_a.txt",
                        "text": "123G6900001081701NORFLYD&113D\r\n"}]))
        .await;
    let panic_at = [("XFLOW_PANIC_AT", "content-check")];
    let mut quarantine = env.config("Ack");
    quarantine["prismeValidation"] = json!("Quarantine");
    let kept = child_run(&quarantine, &panic_at);
    assert!(
        kept.status.success(),
        "{:?}: {:?}",
        kept.status,
        kept.events
    );
    assert_eq!(kept.summary().unwrap()["outcome"], "CompletedWithErrors");
    let error = kept.events.iter().find(|e| e["kind"] == "error").unwrap();
    assert_eq!(error["errorId"], "InvalidContent");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("content check failed"),
        "{error}"
    );
    assert!(!env.prisme.join("G69_a.txt").exists());
    assert_server_states(
        &env.state().await,
        "handedOut",
        "kept for review, not acknowledged",
    );

    let delivered = child_run(&env.config("Ack"), &panic_at);
    assert_eq!(delivered.summary().unwrap()["outcome"], "Succeeded");
    let warned = delivered.events.iter().any(|e| {
        e["kind"] == "warning"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("content check failed"))
    });
    assert!(warned, "{:?}", delivered.events);
    assert!(env.prisme.join("G69_a.txt").exists());
    assert_server_states(
        &env.state().await,
        "acked",
        "delivered unchecked under Warn",
    );
}

//! Crash at every boundary of the publish protocol (the `failpoints` feature: `cargo test -p
//! xflow-engine --features failpoints`), then run again: each delivery must end up exactly once,
//! byte-identical, with no temp file visible, and acknowledged only once durable.
//!
//! A fail point set to `panic` kills the run thread where it stands: no cleanup code runs, the
//! lock and the journal connection are released as the process would release them.
#![cfg(feature = "failpoints")]

mod common;

use common::*;
use serde_json::json;
use xflow_engine::Outcome;

/// In publish order. `after-spool` and `after-journal-received` exist in mode None only.
const BOUNDARIES: &[&str] = &[
    "after-spool",
    "after-journal-received",
    "after-stage",
    "after-journal-publishing",
    "after-rename",
    "after-sync-dir",
    "after-journal-published",
    "after-ack",
];

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_at_any_boundary_is_recovered_exactly_once() {
    let scenario = fail::FailScenario::setup();
    for mode in ["Ack", "None"] {
        for &boundary in BOUNDARIES {
            let mode_only = matches!(boundary, "after-spool" | "after-journal-received");
            if (mode == "Ack" && mode_only) || (mode == "None" && boundary == "after-ack") {
                continue;
            }
            crash_then_recover(mode, boundary).await;
        }
    }
    scenario.teardown();
}

async fn crash_then_recover(mode: &str, boundary: &str) {
    let env = env().await;
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
    let all = server_view(&env.state().await);

    fail::cfg(boundary, "panic").unwrap();
    let crashed = env.run_mode(mode).await;
    fail::remove(boundary);
    assert!(
        crashed.summary.is_none(),
        "{mode}/{boundary}: the fail point was not reached: {}",
        crashed.text()
    );
    if mode == "Ack" {
        // Nothing is acknowledged before it is durable and journaled as published.
        let state = env.state().await;
        let acked = server_view(&state)
            .into_iter()
            .filter(|(_, _, s, _)| s == "acked")
            .count();
        if boundary != "after-ack" {
            assert_eq!(acked, 0, "{mode}/{boundary}: acknowledged before durable");
        }
    }

    let recovered = env.run_mode(mode).await;
    recovered.expect(Outcome::Succeeded, &format!("{mode}/{boundary}"));
    let files = env.files();
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy();
        assert!(
            !name.ends_with(".partial"),
            "{mode}/{boundary}: temp file {name} left"
        );
    }
    let hashes: Vec<String> = files
        .iter()
        .map(|f| sha256_hex(&std::fs::read(f).unwrap()))
        .collect();
    // Mode None: the server forgot the page when it handed it out, so a crash before the page
    // was spooled and journaled may lose that page (and only that page). Never a duplicate.
    let may_lose = mode == "None" && boundary == "after-spool";
    for (id, sha, _, _) in &all {
        let copies = hashes.iter().filter(|h| *h == sha).count();
        if may_lose {
            assert!(copies <= 1, "{mode}/{boundary}: {id} landed {copies} times");
        } else {
            assert_eq!(copies, 1, "{mode}/{boundary}: {id} landed {copies} times");
        }
    }
    if mode == "Ack" {
        let state = env.state().await;
        assert_server_states(&state, "acked", &format!("{mode}/{boundary}"));
    }
}

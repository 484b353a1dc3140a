//! Pages larger than the engine keeps in memory (`page_body::IN_MEMORY_LIMIT`): written to a file
//! as they arrive and read from it in pieces, in both ack modes, for publishing and quarantine.
//! Peak memory itself is measured by the benchmark (`build.ps1 -Bench`, "large").

mod common;

use base64::Engine;
use common::*;
use serde_json::json;
use xflow_engine::Outcome;
use xflow_engine::page_body::IN_MEMORY_LIMIT;

/// Two deliveries whose page is larger than the in-memory limit, and a small one.
async fn large_backlog(env: &Env) -> Vec<String> {
    let size = IN_MEMORY_LIMIT * 3 / 4;
    let mut ids = env
        .control
        .generate(&json!({"count": 2, "size": size, "systems": ["SDLoen", "Prisme"]}))
        .await
        .unwrap();
    ids.extend(
        env.enqueue(json!([{"system": "SDLoen", "fileName": "small.csv", "text": "a;b\r\n"}]))
            .await,
    );
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_too_large_for_memory_lands_byte_identical_in_mode_ack() {
    let env = env().await;
    let ids = large_backlog(&env).await;
    let report = env.run_mode("Ack").await;
    assert_eq!(
        report.expect(Outcome::Succeeded, "run").delivered as usize,
        ids.len()
    );
    let state = env.state().await;
    assert_each_exactly_once(&env, &state);
    assert_server_states(&state, "acked", "after the run");
    assert_eq!(env.files().len(), ids.len());
    assert_eq!(
        list(&env.state.join("spool")),
        Vec::<std::path::PathBuf>::new(),
        "the page's file is removed once processed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_too_large_for_memory_is_spooled_whole_and_delivered_in_mode_none() {
    let env = env().await;
    env.control
        .settings(Some(xflow_sim::Mode::None), None)
        .await
        .unwrap();
    let ids = large_backlog(&env).await;
    env.run_mode("None").await.expect(Outcome::Succeeded, "run");
    let state = env.state().await;
    assert_each_exactly_once(&env, &state);
    assert_eq!(env.files().len(), ids.len());
    assert!(list(&env.state.join("spool")).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_delivery_with_a_wrong_sha256_is_quarantined_with_its_content_as_sent() {
    let env = env().await;
    let ids = large_backlog(&env).await;
    env.fault("wrongSha256", 1, json!(null)).await;
    let report = env.run_mode("Ack").await;
    assert_eq!(report.expect(Outcome::CompletedWithErrors, "run").failed, 1);
    assert_eq!(report.error_ids(), vec!["HashMismatch"]);
    assert_eq!(env.files().len(), ids.len() - 1);
    let kept = list(&env.state.join("quarantine"));
    assert_eq!(kept.len(), 1);
    let document: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&kept[0]).unwrap()).unwrap();
    let content = base64::engine::general_purpose::STANDARD
        .decode(document["content"].as_str().unwrap())
        .unwrap();
    // The first delivery of the page, as the server holds it (only its announced hash was wrong).
    let state = env.state().await;
    let (id, sha, server_state, _) = server_view(&state)
        .into_iter()
        .find(|(id, ..)| *id == document["id"])
        .unwrap();
    assert_ne!(server_state, "acked", "{id} stays pending on the server");
    // Whichever delivery came first, its page was read from a file.
    assert_eq!(sha256_hex(&content), sha);
}

//! The content check in real runs against the simulator: Warn delivers and names line and field,
//! Quarantine keeps the file out of the folder and reports it every run, Off checks nothing, and
//! a validator that panics never loses a delivery (tests/crash.rs, fail point `content-check`).

mod common;

use common::*;
use serde_json::{Value, json};
use xflow_engine::{Event, Outcome};

/// A G69 pair whose amounts are written sign-first, as the simulator's samples used to.
const SIGN_FIRST: &str = "123G6900001081701NORFLYD&10300042&1040000001&11020250131\
    &111000000012345678&112+0000000306914&113D\r\n\
    123G6900002081701NORFLYD&10300042&1040000001&11020250131\
    &111000000012345678&112+0000000306914&113K\r\n";

fn warnings(report: &Report) -> Vec<String> {
    report
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Warning { message } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

fn with(env: &Env, mode: &str, settings: Value) -> Value {
    let mut config = env.config(mode);
    for (k, v) in settings.as_object().unwrap() {
        config[k] = v.clone();
    }
    config
}

async fn broken_and_samples(env: &Env) {
    env.enqueue(json!([
        {"system": "Prisme", "fileName": "G69_broken.txt", "text": SIGN_FIRST},
        {"system": "SDLoen", "fileName": "empty.csv", "text": ""},
    ]))
    .await;
    env.control
        .generate(&json!({"count": 4, "systems": ["SDLoen", "Prisme"], "kind": "sample"}))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn warn_delivers_everything_and_names_line_and_field() {
    let env = env().await;
    broken_and_samples(&env).await;
    let report = env.run(env.config("Ack")).await;
    let summary = report.expect(Outcome::Succeeded, "Warn is the default");
    assert_eq!(summary.delivered, 6);
    let w = warnings(&report);
    let broken: Vec<&String> = w
        .iter()
        .filter(|m| m.starts_with("G69_broken.txt"))
        .collect();
    assert_eq!(broken.len(), 2, "{w:#?}");
    assert!(broken[0].contains("line 1, 112 beløb"), "{w:#?}");
    assert!(broken[1].contains("line 2, 112 beløb"), "{w:#?}");
    assert!(
        w.iter()
            .any(|m| m.starts_with("empty.csv") && m.contains("file: is empty")),
        "{w:#?}"
    );
    // The simulator's samples follow the formats: no warning about them.
    assert_eq!(w.len(), 3, "{w:#?}");
    assert!(env.prisme.join("G69_broken.txt").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn quarantine_keeps_the_file_out_and_reports_it_every_run() {
    let env = env().await;
    broken_and_samples(&env).await;
    let config = with(&env, "Ack", json!({"prismeValidation": "Quarantine"}));
    let report = env.run(config.clone()).await;
    let summary = report.expect(Outcome::CompletedWithErrors, "quarantined");
    assert_eq!((summary.delivered, summary.failed), (5, 1));
    assert_eq!(report.error_ids(), vec!["InvalidContent"]);
    assert!(!env.prisme.join("G69_broken.txt").exists());
    // SD Løn stays Warn: its empty file went through with a warning.
    assert!(env.sd_loen.join("empty.csv").exists());

    let again = env.run(config).await;
    again.expect(Outcome::CompletedWithErrors, "still quarantined");
    assert_eq!(again.error_ids(), vec!["Quarantined"]);
    assert!(!env.prisme.join("G69_broken.txt").exists());

    // An administrator who accepts the file switches the system to Warn: it is delivered.
    let warn = env.run(env.config("Ack")).await;
    warn.expect(Outcome::Succeeded, "delivered under Warn");
    assert!(env.prisme.join("G69_broken.txt").exists());
    assert_server_states(&env.state().await, "acked", "all delivered");
}

#[tokio::test(flavor = "multi_thread")]
async fn off_checks_nothing() {
    let env = env().await;
    broken_and_samples(&env).await;
    let config = with(
        &env,
        "None",
        json!({"prismeValidation": "Off", "sdLoenValidation": "Off"}),
    );
    let report = env.run(config).await;
    report.expect(Outcome::Succeeded, "Off");
    assert_eq!(warnings(&report), Vec::<String>::new());
    assert_eq!(env.files().len(), 6);
}

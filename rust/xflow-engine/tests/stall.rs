//! The importer-stall alarm in real runs: a file the module published that is still in its import
//! folder past the threshold ends the run with outcome ImportStalled, naming the folder and the
//! oldest file, on every run until the folder drains. Time passing is simulated by moving the
//! journal's publish times back; everything else is real.

mod common;

use common::*;
use serde_json::json;
use xflow_engine::{Outcome, System};

/// Moves every publish time back by `minutes`, as if the files had been lying there that long.
fn age_publications(env: &Env, minutes: i64) {
    let conn = rusqlite::Connection::open(env.state.join("journal.sqlite3")).unwrap();
    conn.execute(
        "UPDATE deliveries SET published_at = strftime('%Y-%m-%dT%H:%M:%fZ', published_at, ?1)",
        [format!("-{minutes} minutes")],
    )
    .unwrap();
}

/// (id, gone) of every delivery.
fn gone(env: &Env) -> Vec<(String, bool)> {
    let conn = rusqlite::Connection::open(env.state.join("journal.sqlite3")).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT requested_name, gone_at IS NOT NULL FROM deliveries ORDER BY requested_name",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_importer_is_reported_every_run_until_the_folder_drains() {
    let env = env().await;
    env.enqueue(json!([
        {"system": "Prisme", "fileName": "G69_old.txt", "text": "x"},
        {"system": "Prisme", "fileName": "G69_new.txt", "text": "y"},
        {"system": "SDLoen", "fileName": "løn.csv", "text": "z"},
    ]))
    .await;
    let mut config = env.config("Ack");
    config["prismeValidation"] = json!("Off");
    config["sdLoenValidation"] = json!("Off");
    config["prismeStallAfterMinutes"] = json!(60);
    let first = env.run(config.clone()).await;
    first.expect(Outcome::Succeeded, "just published: not stalled yet");
    assert!(first.summary().stalls.is_empty());

    // The importers took nothing for 90 minutes; a file nobody published is not our business,
    // and SD Løn has no threshold.
    age_publications(&env, 90);
    std::fs::write(env.prisme.join("someone_else.txt"), b"not ours").unwrap();
    let conn = rusqlite::Connection::open(env.state.join("journal.sqlite3")).unwrap();
    conn.execute(
        "UPDATE deliveries SET published_at = strftime('%Y-%m-%dT%H:%M:%fZ', published_at, '-30 minutes') \
         WHERE requested_name = 'G69_old.txt'",
        [],
    )
    .unwrap();
    for run in 0..2 {
        let stalled = env.run(config.clone()).await;
        let summary = stalled.expect(Outcome::ImportStalled, "past the threshold");
        assert_eq!(summary.stalls.len(), 1, "run {run}");
        let stall = &summary.stalls[0];
        assert_eq!(stall.system, System::Prisme);
        assert_eq!(stall.folder, env.prisme.display().to_string());
        assert_eq!(
            (stall.files, stall.oldest_file.as_str()),
            (2, "G69_old.txt")
        );
        assert!((119..=121).contains(&stall.oldest_age_minutes), "{stall:?}");
        assert_eq!(stall.threshold_minutes, 60);
        assert!(
            stalled.text().contains("Is the Prisme importer running?"),
            "{}",
            stalled.text()
        );
    }

    // The importer takes one file: still stalled, and the file taken is never looked at again.
    std::fs::remove_file(env.prisme.join("G69_old.txt")).unwrap();
    let partly = env.run(config.clone()).await;
    let stall = &partly.expect(Outcome::ImportStalled, "one left").stalls[0];
    assert_eq!(
        (stall.files, stall.oldest_file.as_str()),
        (1, "G69_new.txt")
    );
    assert_eq!(
        gone(&env),
        vec![
            ("G69_new.txt".into(), false),
            ("G69_old.txt".into(), true),
            ("løn.csv".into(), false),
        ]
    );

    // A -WhatIf preview changes nothing: it does not even look.
    std::fs::remove_file(env.prisme.join("G69_new.txt")).unwrap();
    let mut what_if = config.clone();
    what_if["whatIf"] = json!(true);
    env.run(what_if).await.expect(Outcome::Succeeded, "drained");
    assert!(!gone(&env)[0].1, "WhatIf wrote to the journal");

    let drained = env.run(config).await;
    drained.expect(Outcome::Succeeded, "drained");
    assert!(gone(&env)[0].1);
}

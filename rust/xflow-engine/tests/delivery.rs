//! The engine against the simulator over real TLS: both ack modes, every simulator fault,
//! overlapping runs and unusable folders. Each test reads as a story: queue, run, check the
//! folders, the journal's effect and what the server saw.

mod common;

use common::*;
use serde_json::{Value, json};
use xflow_engine::{Event, Outcome};

fn text(system: &str, name: &str, body: &str) -> Value {
    json!({ "system": system, "fileName": name, "text": body })
}

async fn sample_backlog(env: &Env) -> Vec<String> {
    let mut ids = env
        .enqueue(json!([
            text("SDLoen", "løn.csv", "CPR;Navn;Beløb\r\nXXXXXX-1234;Søren Ærø;12500,00\r\n"),
            {"system": "Prisme", "fileName": "G69_æøå.txt", "encoding": "windows-1252",
             "text": "001G6900001000110NORFLYD&103001&113D&120Blåbærgrød\r\n"},
        ]))
        .await;
    ids.extend(
        env.control
            .generate(&json!({"count": 6, "systems": ["SDLoen", "Prisme"], "kind": "sample"}))
            .await
            .unwrap(),
    );
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn both_systems_land_byte_identical_and_acknowledged() {
    let env = env().await;
    let ids = sample_backlog(&env).await;
    let report = env.run_mode("Ack").await;
    let summary = report.expect(Outcome::Succeeded, "first run");
    assert_eq!(summary.delivered as usize, ids.len());
    assert_eq!(report.delivered(), ids.len());
    let state = env.state().await;
    assert_each_exactly_once(&env, &state);
    for (id, _, server_state, acks) in server_view(&state) {
        assert_eq!(server_state, "acked", "{id}");
        assert_eq!(acks, 1, "{id}");
    }
    assert!(env.sd_loen.join("løn.csv").exists());
    assert!(env.prisme.join("G69_æøå.txt").exists());
    // The Windows-1252 bytes arrive untouched: 'å' is the single byte 0xE5.
    let prisme = std::fs::read(env.prisme.join("G69_æøå.txt")).unwrap();
    assert!(prisme.contains(&0xE5) && prisme.ends_with(b"\r\n"));

    // A second run finds nothing and changes nothing.
    let again = env.run_mode("Ack").await;
    assert_eq!(again.summary().outcome, Outcome::Succeeded);
    assert_eq!(again.summary().delivered, 0);
    assert_eq!(env.files().len(), ids.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn mode_none_spools_then_publishes_without_acknowledging() {
    let env = env().await;
    env.control
        .settings(Some(xflow_sim::Mode::None), None)
        .await
        .unwrap();
    let ids = sample_backlog(&env).await;
    let report = env.run_mode("None").await;
    report.expect(Outcome::Succeeded, "run");
    let state = env.state().await;
    assert_each_exactly_once(&env, &state);
    assert_eq!(env.files().len(), ids.len());
    for (id, _, _, acks) in server_view(&state) {
        assert_eq!(acks, 0, "{id} was acknowledged in mode None");
    }
    let spool = env.state.join("spool");
    assert_eq!(list(&spool).len(), 0, "published payloads leave the spool");
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_faults_are_retried_and_everything_lands_once() {
    let env = env().await;
    for (kind, params) in [
        ("http500", json!(null)),
        ("http503", json!(null)),
        ("http429", json!({"retryAfterSec": 1})),
        ("resetMidBody", json!(null)),
        ("gzip", json!(null)),
        ("delayMs", json!({"ms": 300})),
        ("ackFailsBeforeRecord", json!(null)),
        ("ackRecordedNoResponse", json!(null)),
    ] {
        env.control.reset().await.unwrap();
        for f in env.files() {
            std::fs::remove_file(f).unwrap();
        }
        env.enqueue(json!([text("SDLoen", &format!("{kind}.csv"), kind)]))
            .await;
        env.fault(kind, 1, params).await;
        let report = env.run_mode("Ack").await;
        report.expect(Outcome::Succeeded, kind);
        let state = env.state().await;
        assert_each_exactly_once(&env, &state);
        assert_server_states(&state, "acked", kind);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_body_times_out_and_is_retried() {
    let env = env().await;
    env.enqueue(json!([text("Prisme", "stall.txt", "x")])).await;
    env.fault("stallBody", 1, json!({"stallMs": 30000})).await;
    let mut config = env.config("Ack");
    config["timeoutSec"] = json!(2);
    let report = env.run(config).await;
    report.expect(Outcome::Succeeded, "run");
    assert_eq!(report.delivered(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_acknowledgement_the_server_forgot_is_repeated_never_the_file() {
    let env = env().await;
    let ids = env
        .enqueue(json!([
            text("SDLoen", "a.csv", "a"),
            text("Prisme", "b.txt", "b")
        ]))
        .await;
    env.fault("ackForgotten", 1, json!(null)).await;
    let first = env.run_mode("Ack").await;
    assert_eq!(first.summary().delivered, 2);
    let second = env.run_mode("Ack").await;
    assert_eq!(second.summary().outcome, Outcome::Succeeded);
    assert_eq!(second.summary().delivered, 0);
    assert_eq!(second.summary().reacknowledged, 2);
    let state = env.state().await;
    assert_each_exactly_once(&env, &state);
    assert_eq!(env.files().len(), ids.len());
    assert_server_states(&state, "acked", "after the run");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_answers_fail_the_run_without_writing_or_acknowledging() {
    let env = env().await;
    for kind in ["truncatedJson", "htmlBody"] {
        env.control.reset().await.unwrap();
        env.enqueue(json!([text("SDLoen", "x.csv", "x")])).await;
        env.fault(kind, 1, json!(null)).await;
        let report = env.run_mode("Ack").await;
        let summary = report.summary();
        assert_eq!(summary.outcome, Outcome::Failed, "{kind}");
        assert_eq!(summary.error.as_ref().unwrap().error_id, "ProtocolError");
        assert!(env.files().is_empty(), "{kind}");
        // The next run delivers it.
        let next = env.run_mode("Ack").await;
        assert_eq!(next.summary().delivered, 1, "{kind}");
        for f in env.files() {
            std::fs::remove_file(f).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_deliveries_are_quarantined_reported_every_run_and_not_acknowledged() {
    let env = env().await;
    let mut config = env.config("Ack");
    config["maxDeliveryBytes"] = json!(64 * 1024);
    env.enqueue(json!([text("SDLoen", "good.csv", "good")]))
        .await;
    env.fault("unknownSystem", 1, json!(null)).await;
    env.fault("oversize", 1, json!({"size": 200_000, "system": "Prisme"}))
        .await;
    let first = env.run(config.clone()).await;
    let summary = first.summary();
    assert_eq!(
        summary.outcome,
        Outcome::CompletedWithErrors,
        "{}",
        first.text()
    );
    assert_eq!(summary.delivered, 1);
    assert_eq!(summary.failed, 2);
    let mut ids = first.error_ids();
    ids.sort();
    assert_eq!(ids, vec!["InvalidDelivery", "InvalidDelivery"]);
    assert_eq!(list(&env.state.join("quarantine")).len(), 2);

    // Still pending on the server, still reported, never written.
    let second = env.run(config).await;
    assert_eq!(second.summary().outcome, Outcome::CompletedWithErrors);
    assert_eq!(second.error_ids(), vec!["Quarantined", "Quarantined"]);
    assert_eq!(env.files().len(), 1);
    let state = env.state().await;
    let pending: Vec<_> = server_view(&state)
        .into_iter()
        .filter(|(_, _, s, _)| s != "acked")
        .collect();
    assert_eq!(pending.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupted_copy_is_quarantined_and_released_when_a_good_copy_comes() {
    for kind in ["wrongSha256", "invalidBase64"] {
        let env = env().await;
        env.enqueue(json!([text("SDLoen", "løn.csv", "Beløb;100\r\n")]))
            .await;
        env.fault(kind, 1, json!(null)).await;
        let first = env.run_mode("Ack").await;
        assert_eq!(
            first.summary().outcome,
            Outcome::CompletedWithErrors,
            "{kind}"
        );
        assert!(env.files().is_empty(), "{kind}: nothing written");
        let state = env.state().await;
        assert_eq!(server_view(&state)[0].3, 0, "{kind}: not acknowledged");
        // The server sends it intact next time: published, acknowledged, quarantine cleared.
        let second = env.run_mode("Ack").await;
        second.expect(Outcome::Succeeded, kind);
        assert_eq!(env.files().len(), 1);
        assert!(list(&env.state.join("quarantine")).is_empty(), "{kind}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_always_has_more_cannot_keep_a_run_busy() {
    let env = env().await;
    env.enqueue(json!([text("SDLoen", "a.csv", "a")])).await;
    env.fault("hasMoreForever", 1, json!(null)).await;
    let report = env.run_mode("Ack").await;
    report.expect(Outcome::Succeeded, "run");
    assert!(
        report.summary().pages <= 3,
        "{} pages",
        report.summary().pages
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_to_another_origin_is_not_followed_and_gets_no_token() {
    let env = env().await;
    env.enqueue(json!([text("SDLoen", "a.csv", "a")])).await;
    env.fault("redirectOtherOrigin", 1, json!(null)).await;
    let report = env.run_mode("Ack").await;
    let error = report.summary().error.clone().expect("an error");
    assert_eq!(error.error_id, "ProtocolError");
    assert!(error.message.contains("not followed"), "{}", error.message);
    assert!(!report.text().contains(TOKEN));
    let state = env.state().await;
    let other = state["otherOrigin"]["requests"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        other.iter().all(|r| r["authHeaderPresent"] == json!(false)),
        "{other:?}"
    );
    assert!(env.files().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_and_hostile_names_land_safely_and_never_replace() {
    let env = env().await;
    env.fault("duplicateFileName", 1, json!({"system": "SDLoen"}))
        .await;
    env.fault("hostileFileNames", 1, json!({"system": "Prisme"}))
        .await;
    let report = env.run_mode("Ack").await;
    report.expect(Outcome::Succeeded, "run");
    let state = env.state().await;
    assert_each_exactly_once(&env, &state);
    assert_eq!(list(&env.sd_loen).len(), 2, "same name, two files");
    for f in env.files() {
        assert!(f.starts_with(&env.sd_loen) || f.starts_with(&env.prisme));
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !name.starts_with('.') && !name.ends_with(".partial"),
            "{name}"
        );
    }
    assert!(!env.dir.path().join("evil.txt").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn eight_overlapping_runs_deliver_each_file_once() {
    let env = env().await;
    env.control
        .generate(&json!({"count": 300, "size": 2048, "systems": ["SDLoen", "Prisme"]}))
        .await
        .unwrap();
    let mut runs = Vec::new();
    for _ in 0..8 {
        let config = env.config("Ack");
        runs.push(tokio::task::spawn_blocking(move || run_blocking(config)));
    }
    let mut outcomes = Vec::new();
    let mut errors = Vec::new();
    for r in runs {
        let summary = r.await.unwrap().summary().clone();
        outcomes.push(summary.outcome);
        errors.extend(summary.error);
    }
    // Whoever held the lock finished; the rest did nothing. A last run mops up anything the
    // winner's pages left for later.
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Succeeded | Outcome::Locked)),
        "{outcomes:?} {errors:?}"
    );
    assert!(outcomes.contains(&Outcome::Locked), "{outcomes:?}");
    env.run_mode("Ack").await;
    let state = env.state().await;
    assert_each_exactly_once(&env, &state);
    assert_eq!(env.files().len(), 300);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_folder_fails_before_anything_is_fetched() {
    let env = env().await;
    env.enqueue(json!([text("SDLoen", "a.csv", "a")])).await;
    std::fs::remove_dir(&env.prisme).unwrap();
    let report = env.run_mode("Ack").await;
    let error = report.summary().error.clone().unwrap();
    assert_eq!(error.error_id, "FolderNotFound");
    assert!(error.message.contains("Prisme import"), "{}", error.message);
    let state = env.state().await;
    assert!(
        state["requests"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["path"].as_str().unwrap_or("").contains("/control")),
        "nothing fetched"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_token_is_an_authentication_error_that_never_shows_the_token() {
    let env = env().await;
    let mut config = env.config("Ack");
    config["apiToken"] = json!("wrong-token-55aa");
    let report = env.run(config).await;
    let error = report.summary().error.clone().unwrap();
    assert_eq!(error.error_id, "AuthenticationFailed");
    assert!(!report.text().contains("wrong-token-55aa"));
    assert!(!report.text().contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread")]
async fn what_if_plans_without_writing_or_acknowledging() {
    let env = env().await;
    env.enqueue(json!([
        text("SDLoen", "a.csv", "a"),
        text("Prisme", "b.txt", "b")
    ]))
    .await;
    let mut config = env.config("Ack");
    config["whatIf"] = json!(true);
    let report = env.run(config).await;
    let planned = report
        .events
        .iter()
        .filter(|e| matches!(e, Event::Planned(_)))
        .count();
    assert_eq!(planned, 2);
    assert!(env.files().is_empty());
    let state = env.state().await;
    assert!(server_view(&state).iter().all(|(_, _, _, acks)| *acks == 0));
}

/// Reproduced before the fix: a preview in mode None fetched a page, the server forgot it, and
/// the next real run delivered nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_preview_in_mode_none_fetches_nothing_and_the_real_run_delivers_everything() {
    let env = env().await;
    env.control
        .settings(Some(xflow_sim::Mode::None), None)
        .await
        .unwrap();
    let ids = sample_backlog(&env).await;
    let mut config = env.config("None");
    config["whatIf"] = json!(true);
    let preview = env.run(config).await;
    preview.expect(Outcome::Succeeded, "preview");
    assert!(
        preview.events.iter().any(|e| matches!(e,
            Event::Preview { message } if message.contains("not previewed"))),
        "{}",
        preview.text()
    );
    assert_server_states(&env.state().await, "pending", "after the preview");
    assert!(env.files().is_empty());
    assert!(!env.state.exists(), "a preview creates no state folder");
    let real = env.run_mode("None").await;
    real.expect(Outcome::Succeeded, "real run");
    assert_eq!(env.files().len(), ids.len());
    assert_each_exactly_once(&env, &env.state().await);
}

/// Recovery sweeps only the temp files its own state folder staged and no journal row names:
/// another installation's temp files in the same folder are left alone.
#[tokio::test(flavor = "multi_thread")]
async fn recovery_sweeps_only_its_own_unrecorded_temp_files() {
    let env = env().await;
    env.run_mode("Ack")
        .await
        .expect(Outcome::Succeeded, "first run");
    let own_id = xflow_engine::journal::Journal::open(&env.state)
        .unwrap()
        .state_id()
        .unwrap();
    let own = env
        .sd_loen
        .join(xflow_engine::publish::temp_name(&own_id, "left-by-a-crash"));
    let foreign = env.sd_loen.join(xflow_engine::publish::temp_name(
        "0a1b2c3d4e5f",
        "another-installation",
    ));
    std::fs::write(&own, b"half").unwrap();
    std::fs::write(&foreign, b"theirs").unwrap();
    env.run_mode("Ack")
        .await
        .expect(Outcome::Succeeded, "second run");
    assert!(!own.exists(), "our own leftover stays");
    assert_eq!(std::fs::read(&foreign).unwrap(), b"theirs");
}

/// A delivery that comes again after its file was published and then deleted by an
/// administrator is acknowledged again, never written again, and the run says so.
#[tokio::test(flavor = "multi_thread")]
async fn a_redelivered_id_whose_file_was_deleted_is_acknowledged_not_rewritten() {
    let env = env().await;
    env.enqueue(json!([text("SDLoen", "a.csv", "a")])).await;
    env.fault("ackForgotten", 1, json!(null)).await;
    env.run_mode("Ack")
        .await
        .expect(Outcome::Succeeded, "first run");
    std::fs::remove_file(env.sd_loen.join("a.csv")).unwrap();
    let second = env.run_mode("Ack").await;
    second.expect(Outcome::Succeeded, "second run");
    assert_eq!(second.summary().reacknowledged, 1);
    assert!(env.files().is_empty(), "rewritten: {:?}", env.files());
    assert!(
        second.events.iter().any(|e| matches!(e,
            Event::Warning { message } if message.contains("came again")
                && message.contains("no longer there"))),
        "{}",
        second.text()
    );
    assert_server_states(&env.state().await, "acked", "after the second run");
}

/// Ctrl+C while a page is being staged: the run ends Cancelled with no temp file visible, and
/// the next run delivers everything once.
#[tokio::test(flavor = "multi_thread")]
async fn cancelling_in_the_middle_of_a_page_leaves_nothing_partial() {
    let env = env().await;
    env.control
        .generate(&json!({"count": 40, "size": 150_000, "systems": ["SDLoen", "Prisme"]}))
        .await
        .unwrap();
    let mut config = env.config("Ack");
    config["timeoutSec"] = json!(120);
    let report = tokio::task::spawn_blocking(move || {
        let run = xflow_engine::Run::start(
            xflow_engine::RunConfig::from_json(config.to_string().as_bytes()).unwrap(),
        )
        .unwrap();
        let mut events = Vec::new();
        loop {
            match run.next_event(std::time::Duration::from_secs(120)) {
                xflow_engine::NextEvent::Event(e) => {
                    if matches!(&e, Event::Verbose { message } if message.starts_with("received")) {
                        run.cancel();
                    }
                    events.push(e);
                }
                xflow_engine::NextEvent::Timeout => panic!("no event for 120 s"),
                xflow_engine::NextEvent::Finished => break,
            }
        }
        events
    })
    .await
    .unwrap();
    let summary = report
        .iter()
        .find_map(|e| match e {
            Event::Summary(s) => Some(s.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(summary.outcome, Outcome::Cancelled, "{report:?}");
    assert!(
        env.files()
            .iter()
            .all(|f| !f.to_string_lossy().ends_with(".partial")),
        "a temp file is left: {:?}",
        env.files()
    );
    env.run_mode("Ack")
        .await
        .expect(Outcome::Succeeded, "next run");
    assert_eq!(env.files().len(), 40);
    assert_each_exactly_once(&env, &env.state().await);
}

/// The deadline strikes while the page's acknowledgement is under way: the files are published
/// and journaled, the next run acknowledges them without writing them again.
#[tokio::test(flavor = "multi_thread")]
async fn a_deadline_in_the_middle_of_a_page_is_finished_by_the_next_run() {
    let env = env().await;
    env.enqueue(json!([
        text("SDLoen", "a.csv", "a"),
        text("Prisme", "b.txt", "b")
    ]))
    .await;
    env.control
        .fault(
            "delayMs",
            Some(xflow_sim::Target::Ack),
            Some(1),
            json!({"ms": 30_000}),
        )
        .await
        .unwrap();
    let mut config = env.config("Ack");
    // Long enough for the fetch and the publish even on a loaded machine; the stalled
    // acknowledgement takes far longer.
    config["deadlineSec"] = json!(5);
    let report = env.run(config).await;
    assert_eq!(
        report.summary().error.as_ref().map(|e| e.error_id),
        Some("DeadlineExceeded"),
        "{}",
        report.text()
    );
    assert_eq!(env.files().len(), 2, "published before the acknowledgement");
    let next = env.run_mode("Ack").await;
    next.expect(Outcome::Succeeded, "next run");
    assert_eq!(next.summary().delivered, 0);
    assert_eq!(next.summary().reacknowledged, 2);
    assert_each_exactly_once(&env, &env.state().await);
    assert_server_states(&env.state().await, "acked", "after the next run");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_stops_at_its_deadline_and_the_next_run_carries_on() {
    let env = env().await;
    env.enqueue(json!([text("SDLoen", "a.csv", "a")])).await;
    env.fault("delayMs", 1, json!({"ms": 5000})).await;
    let mut config = env.config("Ack");
    config["deadlineSec"] = json!(1);
    let report = env.run(config).await;
    assert_eq!(report.summary().outcome, Outcome::Failed);
    assert_eq!(
        report.summary().error.as_ref().unwrap().error_id,
        "DeadlineExceeded"
    );
    assert!(env.files().is_empty());
    let next = env.run_mode("Ack").await;
    assert_eq!(next.summary().delivered, 1, "{}", next.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_page_of_refused_deliveries_does_not_hide_the_ones_behind_it() {
    let env = env().await;
    env.control.settings(None, Some(1000)).await.unwrap();
    env.enqueue(json!([text("SDLoen", "behind.csv", "behind")]))
        .await;
    // Five refused deliveries go to the head of the queue on the first GET; pages of three.
    for _ in 0..5 {
        env.fault("unknownSystem", 1, json!(null)).await;
    }
    let mut config = env.config("Ack");
    config["pageSize"] = json!(3);
    let first = env.run(config.clone()).await;
    assert_eq!(first.summary().failed, 5, "{}", first.text());
    assert!(env.sd_loen.join("behind.csv").exists(), "{}", first.text());
    let second = env.run(config).await;
    assert_eq!(second.summary().failed, 5, "still reported");
    assert_eq!(second.summary().delivered, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn verbose_messages_come_only_when_asked_for() {
    let env = env().await;
    let ids = sample_backlog(&env).await;
    let mut quiet = env.config("Ack");
    quiet["verbose"] = json!(false);
    let report = env.run(quiet).await;
    assert_eq!(
        report.expect(Outcome::Succeeded, "quiet run").delivered as usize,
        ids.len()
    );
    let verbose = |r: &Report| {
        r.events
            .iter()
            .filter(|e| matches!(e, Event::Verbose { .. }))
            .count()
    };
    assert_eq!(verbose(&report), 0, "{}", report.text());
    assert_eq!(
        report.delivered(),
        ids.len(),
        "the delivered files are still reported"
    );

    sample_backlog(&env).await;
    let report = env.run_mode("Ack").await;
    report.expect(Outcome::Succeeded, "run with the default");
    assert!(verbose(&report) > 0, "verbose is on unless turned off");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_id_twice_in_a_page_sees_its_first_copys_quarantine() {
    // A page kept in the spool (mode None) that holds one id twice: a corrupted copy, then an
    // intact one. The intact copy is published and releases the quarantined one.
    use base64::Engine as _;
    let env = env().await;
    env.control
        .settings(Some(xflow_sim::Mode::None), None)
        .await
        .unwrap();
    let body = "Beløb;100\r\n";
    let content = base64::engine::general_purpose::STANDARD.encode(body);
    let copy = |sha256: String| {
        json!({"id": "twice", "system": "SDLoen", "fileName": "twice.csv",
               "content": content, "sha256": sha256})
    };
    let page = json!({"deliveries": [copy("0".repeat(64)), copy(sha256_hex(body.as_bytes()))]});
    let spool = env.state.join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    std::fs::write(
        spool.join("page-0190a1b2-0000-7000-8000-000000000000.json"),
        page.to_string(),
    )
    .unwrap();
    let report = env.run_mode("None").await;
    assert_eq!(
        report.summary().outcome,
        Outcome::CompletedWithErrors,
        "{}",
        report.text()
    );
    assert_eq!(report.error_ids(), vec!["HashMismatch"]);
    assert_eq!(env.files(), vec![env.sd_loen.join("twice.csv")]);
    assert!(
        list(&env.state.join("quarantine")).is_empty(),
        "the quarantined copy was not released"
    );
    assert!(list(&spool).is_empty(), "the page stays in the spool");
}

//! Every fault kind, each written as a short story: queue it, watch it fire once,
//! check the simulator recovers.

mod common;

use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{Harness, client, decode, ids, sha256_hex, start};
use serde_json::{Value, json};
use xflow_sim::Mode;

async fn with_one(h: &Harness) -> String {
    h.enqueue("SDLoen", "SDLoen_20250101_000001.csv", "D;Søren;1\r\n")
        .await
}

#[tokio::test]
async fn http_status_faults_fire_once() {
    let h = start().await;
    with_one(&h).await;
    for (kind, status) in [("http500", 500), ("http503", 503), ("http429", 429)] {
        h.fault(json!({ "kind": kind, "on": "get", "params": if kind == "http429" { json!({"retryAfterSec": 7}) } else { Value::Null } }))
            .await;
        let resp = h.get("").send().await.unwrap();
        assert_eq!(resp.status(), status, "{kind}");
        if status == 429 {
            assert_eq!(resp.headers()["retry-after"], "7");
        }
        let body: Value = resp.json().await.unwrap();
        assert!(body["error"].is_string());
        assert_eq!(h.page("").await["deliveries"].as_array().unwrap().len(), 1);
    }
    let state = h.state().await;
    let faults: Vec<_> = state["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["faults"].clone())
        .filter(|f| f != &json!([]))
        .collect();
    assert_eq!(
        faults,
        [json!(["http500"]), json!(["http503"]), json!(["http429"])]
    );
}

#[tokio::test]
async fn nth_counts_matching_requests_from_when_queued() {
    let h = start().await;
    let id = with_one(&h).await;
    h.page("").await; // before the fault: not counted
    h.fault(json!({ "kind": "http503", "on": "get", "nth": 2 }))
        .await;
    assert_eq!(h.ack(&["unrelated"]).await, 204); // an ack does not count for on=get
    h.page("").await; // 1st GET
    assert_eq!(h.get("").send().await.unwrap().status(), 503); // 2nd GET
    h.page("").await;
    // on=any counts both kinds.
    h.fault(json!({ "kind": "http500", "on": "any", "nth": 2 }))
        .await;
    h.page("").await;
    let resp = h
        .ack_raw(json!({ "ids": [id] }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    assert_eq!(
        h.state().await["acked"],
        json!({}),
        "a 500 ack records nothing"
    );
}

#[tokio::test]
async fn reset_mid_body_drops_the_connection_after_part_of_the_body() {
    let h = start().await;
    let id = with_one(&h).await;
    h.fault(json!({ "kind": "resetMidBody" })).await;
    let resp = h.get("").send().await.expect("headers arrive");
    assert_eq!(resp.status(), 200);
    let declared = resp.content_length().expect("content-length sent");
    let err = resp.bytes().await.expect_err("body must fail");
    assert!(declared > 0, "{err}");
    // In Ack mode nothing was lost: the same delivery comes back.
    assert_eq!(ids(&h.page("").await), [id]);
}

#[tokio::test]
async fn stall_body_pauses_mid_body() {
    let h = start().await;
    with_one(&h).await;
    h.fault(json!({ "kind": "stallBody", "params": { "stallMs": 400 } }))
        .await;
    let started = Instant::now();
    let page: Value = h.get("").send().await.unwrap().json().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(page["deliveries"].as_array().unwrap().len(), 1);

    // A client whose timeout is shorter than the stall gives up.
    h.fault(json!({ "kind": "stallBody", "params": { "stallMs": 5000 } }))
        .await;
    let impatient = client(&h.sim, |b| b.timeout(Duration::from_millis(700)));
    let resp = h
        .get_with(&impatient, "")
        .send()
        .await
        .expect("headers arrive");
    assert!(resp.bytes().await.is_err());
}

#[tokio::test]
async fn truncated_json_is_complete_http_but_broken_json() {
    let h = start().await;
    with_one(&h).await;
    h.fault(json!({ "kind": "truncatedJson" })).await;
    let resp = h.get("").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.bytes().await.expect("complete HTTP body");
    assert!(serde_json::from_slice::<Value>(&body).is_err());
    assert!(body.starts_with(b"{\"deliveries\":["));
}

#[tokio::test]
async fn html_maintenance_page() {
    let h = start().await;
    for status in [200u16, 503] {
        h.fault(json!({ "kind": "htmlBody", "params": { "status": status } }))
            .await;
        let resp = h.get("").send().await.unwrap();
        assert_eq!(resp.status(), status);
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(resp.text().await.unwrap().contains("<html>"));
    }
}

#[tokio::test]
async fn gzip_is_sent_regardless_and_only_gzip_capable_clients_cope() {
    let h = start().await;
    let id = with_one(&h).await;
    h.fault(json!({ "kind": "gzip" })).await;
    let page: Value = h
        .get("")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .expect("gzip client decodes");
    assert_eq!(ids(&page), [id]);

    h.fault(json!({ "kind": "gzip" })).await;
    let plain = client(&h.sim, |b| b.no_gzip());
    let resp = h.get_with(&plain, "").send().await.unwrap();
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    let raw = resp.bytes().await.unwrap();
    assert_eq!(&raw[..2], [0x1f, 0x8b], "gzip magic");
    assert!(serde_json::from_slice::<Value>(&raw).is_err());
}

#[tokio::test]
async fn invalid_base64_and_wrong_sha256_corrupt_the_first_delivery() {
    let h = start().await;
    with_one(&h).await;
    with_one(&h).await;
    h.fault(json!({ "kind": "invalidBase64" })).await;
    let page = h.page("").await;
    let b64 = base64::engine::general_purpose::STANDARD;
    assert!(
        b64.decode(page["deliveries"][0]["content"].as_str().unwrap())
            .is_err()
    );
    assert!(
        b64.decode(page["deliveries"][1]["content"].as_str().unwrap())
            .is_ok()
    );

    h.fault(json!({ "kind": "wrongSha256" })).await;
    let page = h.page("").await;
    let first = &page["deliveries"][0];
    let sha = first["sha256"].as_str().unwrap();
    assert_ne!(sha, sha256_hex(&decode(first)));
    assert_eq!(sha.len(), 64);
    assert_eq!(
        page["deliveries"][1]["sha256"],
        sha256_hex(&decode(&page["deliveries"][1]))
    );
    // Next time it is correct again.
    let page = h.page("").await;
    assert_eq!(
        page["deliveries"][0]["sha256"],
        sha256_hex(&decode(&page["deliveries"][0]))
    );
}

#[tokio::test]
async fn ack_forgotten_returns_204_but_ids_come_back() {
    let h = start().await;
    let id = with_one(&h).await;
    h.fault(json!({ "kind": "ackForgotten" })).await;
    assert_eq!(h.ack(&[&id]).await, 204);
    assert_eq!(ids(&h.page("").await), [id.as_str()]);
    assert_eq!(h.ack(&[&id]).await, 204);
    assert_eq!(h.page("").await["deliveries"], json!([]));
    assert_eq!(h.state().await["acked"][&id], 1);
}

#[tokio::test]
async fn ack_fails_before_record() {
    let h = start().await;
    let id = with_one(&h).await;
    h.fault(json!({ "kind": "ackFailsBeforeRecord" })).await;
    assert_eq!(h.ack(&[&id]).await, 500);
    assert_eq!(ids(&h.page("").await), [id]);
}

#[tokio::test]
async fn ack_recorded_then_connection_dropped() {
    let h = start().await;
    let id = with_one(&h).await;
    h.fault(json!({ "kind": "ackRecordedNoResponse" })).await;
    let result = h.ack_raw(json!({ "ids": [id] }).to_string()).send().await;
    assert!(result.is_err(), "no response expected: {result:?}");
    assert_eq!(h.page("").await["deliveries"], json!([]));
    let state = h.state().await;
    assert_eq!(state["acked"][&id], 1);
    let ack_log = state["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"] == "/api/v1/deliveries/ack")
        .unwrap();
    assert_eq!(ack_log["status"], Value::Null);
    assert_eq!(ack_log["faults"], json!(["ackRecordedNoResponse"]));
}

#[tokio::test]
async fn has_more_forever_for_count_responses_or_until_reset() {
    let h = start().await;
    h.fault(json!({ "kind": "hasMoreForever", "params": { "count": 2 } }))
        .await;
    assert_eq!(h.page("").await["hasMore"], true);
    assert_eq!(h.page("").await["hasMore"], true);
    assert_eq!(h.page("").await["hasMore"], false);

    h.fault(json!({ "kind": "hasMoreForever" })).await;
    for _ in 0..5 {
        assert_eq!(h.page("").await["hasMore"], true);
    }
    h.control.reset().await.unwrap();
    assert_eq!(h.page("").await["hasMore"], false);
}

#[tokio::test]
async fn redirect_to_other_origin_records_whether_the_token_followed() {
    let h = start().await;
    with_one(&h).await;
    // A careful client does not follow: it sees the redirect.
    h.fault(json!({ "kind": "redirectOtherOrigin", "params": { "status": 302 } }))
        .await;
    let careful = client(&h.sim, |b| b.redirect(reqwest::redirect::Policy::none()));
    let resp = h.get_with(&careful, "?limit=5").send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(&h.sim.other_origin_url), "{location}");
    assert!(
        location.ends_with("/api/v1/deliveries?limit=5"),
        "{location}"
    );
    assert_eq!(h.state().await["otherOrigin"]["requests"], json!([]));

    // reqwest's default policy strips Authorization but not a custom header: the
    // simulator notices the token reaching the other origin.
    h.fault(json!({ "kind": "redirectOtherOrigin" })).await;
    let page = h.page("").await;
    assert_eq!(
        page["deliveries"],
        json!([]),
        "the other origin pretends to be empty"
    );
    let state = h.state().await;
    let reqs = state["otherOrigin"]["requests"].as_array().unwrap();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0]["authHeaderPresent"], true);
    assert!(!serde_json::to_string(reqs).unwrap().contains(&h.sim.token));

    // Without the header, it is recorded as absent.
    h.http
        .get(format!("{}/api/v1/deliveries", h.sim.other_origin_url))
        .send()
        .await
        .unwrap();
    let state = h.state().await;
    assert_eq!(
        state["otherOrigin"]["requests"][1]["authHeaderPresent"],
        false
    );

    // An explicit location is used verbatim.
    h.fault(json!({ "kind": "redirectOtherOrigin", "on": "get", "params": { "location": "https://example.invalid/x" } }))
        .await;
    let resp = h.get_with(&careful, "").send().await.unwrap();
    assert_eq!(resp.status(), 307);
    assert_eq!(resp.headers()["location"], "https://example.invalid/x");
}

#[tokio::test]
async fn oversize_delivery_is_included() {
    let h = start().await;
    with_one(&h).await;
    h.fault(json!({ "kind": "oversize", "params": { "size": 3_000_000 } }))
        .await;
    let page = h.page("").await;
    let d = page["deliveries"].as_array().unwrap();
    assert_eq!(d.len(), 2);
    let big = decode(&d[0]);
    assert_eq!(big.len(), 3_000_000);
    assert_eq!(d[0]["sha256"], sha256_hex(&big));
    // It is a real delivery: it stays until acknowledged.
    let id = d[0]["id"].as_str().unwrap().to_string();
    assert_eq!(h.page("").await["deliveries"][0]["id"], id.as_str());
    assert_eq!(h.ack(&[&id]).await, 204);
    assert_eq!(h.page("").await["deliveries"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn unknown_system_bypasses_the_filter() {
    let h = start().await;
    h.fault(json!({ "kind": "unknownSystem" })).await;
    let page = h.page("?systems=SDLoen,Prisme").await;
    assert_eq!(page["deliveries"][0]["system"], "Unknown");
}

#[tokio::test]
async fn duplicate_file_names_with_different_content() {
    let h = start().await;
    h.fault(json!({ "kind": "duplicateFileName", "params": { "system": "Prisme" } }))
        .await;
    let page = h.page("?systems=Prisme").await;
    let d = page["deliveries"].as_array().unwrap();
    assert_eq!(d.len(), 2);
    assert_eq!(d[0]["fileName"], d[1]["fileName"]);
    assert_ne!(d[0]["sha256"], d[1]["sha256"]);
    assert_ne!(d[0]["id"], d[1]["id"]);
}

#[tokio::test]
async fn hostile_file_names() {
    let h = start().await;
    h.fault(json!({ "kind": "hostileFileNames" })).await;
    // Two names carry lone surrogates, which no strict JSON parser accepts: they go out as bare
    // escapes, and are replaced here before the rest of the page is parsed.
    let resp = h.get("?systems=SDLoen").send().await.expect("GET sent");
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    for escaped in [r"lone\ud800high.txt", r"lone\udc00low.txt"] {
        assert!(text.contains(escaped), "missing {escaped}");
    }
    let page: serde_json::Value =
        serde_json::from_str(&text.replace(r"\ud800", "?").replace(r"\udc00", "?")).unwrap();
    let names: Vec<&str> = page["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["fileName"].as_str().unwrap())
        .collect();
    for expected in [
        "..\\..\\evil.txt",
        "/etc/passwd",
        "CON",
        "aux.txt",
        "a:b",
        "name.",
        "x<y>.txt",
        ".hidden",
        "x.partial",
        "",
        "ctrl\u{1}\u{1f}.txt",
    ] {
        assert!(names.contains(&expected), "missing {expected:?}");
    }
    assert!(names.iter().any(|n| n.len() > 255));
}

#[tokio::test]
async fn delay_ms_delays_the_response() {
    let h = start().await;
    h.fault(json!({ "kind": "delayMs", "params": { "ms": 300 } }))
        .await;
    let started = Instant::now();
    h.page("").await;
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn faults_compose_across_families() {
    let h = start().await;
    with_one(&h).await;
    h.fault(json!({ "kind": "gzip" })).await;
    h.fault(json!({ "kind": "wrongSha256" })).await;
    let page: Value = h.get("").send().await.unwrap().json().await.unwrap();
    let d = &page["deliveries"][0];
    assert_ne!(d["sha256"], sha256_hex(&decode(d)));
}

#[tokio::test]
async fn faults_work_in_none_mode_without_losing_on_short_circuit() {
    let h = start().await;
    h.control.settings(Some(Mode::None), None).await.unwrap();
    let id = with_one(&h).await;
    h.fault(json!({ "kind": "http503" })).await;
    assert_eq!(h.get("").send().await.unwrap().status(), 503);
    // A short-circuited GET hands nothing out, so nothing is forgotten.
    assert_eq!(ids(&h.page("").await), [id]);
    assert_eq!(h.page("").await["deliveries"], json!([]));
}

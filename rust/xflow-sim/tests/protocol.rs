//! The delivery protocol itself: auth, paging, filtering, both modes, acks, encodings.

mod common;

use std::time::{Duration, Instant};

use common::{decode, ids, sha256_hex, start, start_with};
use serde_json::json;
use xflow_sim::{Mode, SimConfig, TlsSetup};

#[tokio::test]
async fn unauthorized_without_or_with_wrong_token_and_never_echoes_it() {
    let h = start_with(SimConfig {
        token: "s3cret-token-value".into(),
        ..SimConfig::default()
    })
    .await;
    let url = format!("{}/deliveries", h.sim.base_url);
    for token in [None, Some("wrong-token-guess"), Some("s3cret-token-valuE")] {
        let mut req = h.http.get(&url);
        if let Some(t) = token {
            req = req.header("publicApiToken", t);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401);
        let body = resp.text().await.unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"], "unauthorized");
        assert!(!body.contains("s3cret"), "{body}");
        if let Some(t) = token {
            assert!(!body.contains(t), "{body}");
        }
    }
    // The request log redacts the header value.
    let state = h.state().await;
    let logged = serde_json::to_string(&state["requests"]).unwrap();
    assert!(!logged.contains("wrong-token-guess") && !logged.contains("s3cret"));
    assert!(logged.contains("<redacted>"));
    assert_eq!(state["requests"][0]["status"], 401);
}

#[tokio::test]
async fn custom_auth_header_name() {
    let h = start_with(SimConfig {
        auth_header: "X-Api-Key".into(),
        ..SimConfig::default()
    })
    .await;
    assert_eq!(h.page("").await["deliveries"], json!([]));
    let resp = h
        .http
        .get(format!("{}/deliveries", h.sim.base_url))
        .header("publicApiToken", &h.sim.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn empty_backlog_gives_empty_page() {
    let h = start().await;
    assert!(h.sim.base_url.starts_with("https://127.0.0.1:"));
    assert!(h.sim.base_url.ends_with("/api/v1"));
    let page = h.page("?systems=SDLoen,Prisme&limit=10").await;
    assert_eq!(page, json!({ "deliveries": [], "hasMore": false }));
}

#[tokio::test]
async fn content_round_trips_byte_exact_in_both_encodings() {
    let h = start().await;
    let text = "H;Løn;Ærø Østergård;åæø\r\nD;1;2\r\n";
    let body = json!({ "deliveries": [
        { "id": "u8", "system": "SDLoen", "fileName": "SDLoen_1.csv", "text": text },
        { "id": "cp", "system": "Prisme", "fileName": "G69_1.txt", "text": text, "encoding": "windows-1252" },
        { "id": "raw", "system": "Prisme", "fileName": "bin.dat", "contentBase64": "AAEC/f7/" },
    ]});
    assert_eq!(h.control.enqueue(&body).await.unwrap(), ["u8", "cp", "raw"]);
    let page = h.page("").await;
    let d = page["deliveries"].as_array().unwrap();
    assert_eq!(decode(&d[0]), text.as_bytes());
    let (cp1252, _, _) = encoding_rs::WINDOWS_1252.encode(text);
    assert_eq!(decode(&d[1]), &cp1252[..]);
    assert_eq!(decode(&d[2]), [0, 1, 2, 0xfd, 0xfe, 0xff]);
    for delivery in d {
        assert_eq!(delivery["sha256"], sha256_hex(&decode(delivery)));
        let created = delivery["createdAt"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(created).is_ok(),
            "{created}"
        );
    }
    assert_eq!(d[1]["system"], "Prisme");
    assert_eq!(d[1]["fileName"], "G69_1.txt");
}

#[tokio::test]
async fn systems_filter_limit_and_has_more() {
    let h = start().await;
    for i in 0..5 {
        let system = if i % 2 == 0 { "SDLoen" } else { "Prisme" };
        h.enqueue(system, &format!("f{i}"), "x").await;
    }
    h.control
        .enqueue(&json!({ "deliveries": [{ "system": "Other", "fileName": "o", "text": "o" }] }))
        .await
        .unwrap();
    let page = h.page("?systems=SDLoen&limit=2").await;
    assert_eq!(page["deliveries"].as_array().unwrap().len(), 2);
    assert!(
        page["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["system"] == "SDLoen")
    );
    assert_eq!(page["hasMore"], true);
    let page = h.page("?systems=SDLoen&limit=3").await;
    assert_eq!(page["hasMore"], false);
    assert_eq!(
        h.page("?systems=SDLoen,Prisme").await["deliveries"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    // Absent filter: everything, including unknown systems.
    assert_eq!(h.page("").await["deliveries"].as_array().unwrap().len(), 6);

    // The server caps limit to its page size.
    h.control.settings(None, Some(2)).await.unwrap();
    let page = h.page("?limit=50").await;
    assert_eq!(page["deliveries"].as_array().unwrap().len(), 2);
    assert_eq!(page["hasMore"], true);
    assert_eq!(h.page("").await["deliveries"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn bad_limit_is_400_and_server_keeps_serving() {
    let h = start().await;
    for q in ["?limit=0", "?limit=-1", "?limit=abc"] {
        let resp = h.get(q).send().await.unwrap();
        assert_eq!(resp.status(), 400, "{q}");
        let v: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(v["error"], "bad_request");
    }
    h.page("").await;
}

#[tokio::test]
async fn ack_mode_hands_out_again_until_acked() {
    let h = start().await;
    let a = h.enqueue("SDLoen", "a", "a").await;
    let b = h.enqueue("SDLoen", "b", "b").await;
    assert_eq!(ids(&h.page("?limit=1").await), [a.as_str()]);
    assert_eq!(ids(&h.page("?limit=1").await), [a.as_str()]);
    assert_eq!(h.ack(&[&a]).await, 204);
    assert_eq!(ids(&h.page("").await), [b.as_str()]);
    // Repeats and unknown ids are harmless.
    assert_eq!(h.ack(&[&a, "no-such-id"]).await, 204);
    assert_eq!(h.ack(&[&b]).await, 204);
    assert_eq!(h.page("").await["deliveries"], json!([]));

    let state = h.state().await;
    assert_eq!(state["mode"], "Ack");
    assert_eq!(state["acked"][&a], 2);
    assert_eq!(state["handedOut"][&a], 2);
    assert_eq!(state["pending"], json!([]));
    let states: Vec<_> = state["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["state"].clone())
        .collect();
    assert_eq!(states, [json!("acked"), json!("acked")]);
}

#[tokio::test]
async fn none_mode_forgets_once_returned() {
    let h = start().await;
    h.control.settings(Some(Mode::None), Some(2)).await.unwrap();
    for i in 0..5 {
        h.enqueue("Prisme", &format!("p{i}"), "x").await;
    }
    let mut seen = Vec::new();
    let mut pages = 0;
    // Bounded: 5 deliveries at 2 per page drain in 3 pages.
    for _ in 0..10 {
        let page = h.page("").await;
        pages += 1;
        seen.extend(ids(&page));
        if page["hasMore"] == false {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 5);
    assert_eq!(h.page("").await["deliveries"], json!([]));
    let state = h.state().await;
    assert_eq!(state["counts"]["forgotten"], 5);
}

#[tokio::test]
async fn malformed_ack_is_400_and_server_keeps_serving() {
    let h = start().await;
    let id = h.enqueue("SDLoen", "a", "a").await;
    for body in [
        "",
        "{",
        "[]",
        r#"{"ids":"x"}"#,
        r#"{"id":["x"]}"#,
        r#"{"ids":[1]}"#,
    ] {
        let resp = h.ack_raw(body).send().await.unwrap();
        assert_eq!(resp.status(), 400, "{body}");
        let v: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(v["error"], "bad_request");
    }
    assert_eq!(ids(&h.page("").await), [id.as_str()]);
    assert_eq!(h.ack(&[&id]).await, 204);
}

#[tokio::test]
async fn unknown_api_path_is_json_404() {
    let h = start().await;
    let resp = h
        .http
        .get(format!("{}/nope", h.sim.base_url))
        .header("publicApiToken", &h.sim.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["error"],
        "not_found"
    );
}

#[tokio::test]
async fn plain_http_mode() {
    let h = start_with(SimConfig {
        tls: TlsSetup::PlainHttp,
        ..SimConfig::default()
    })
    .await;
    assert!(h.sim.base_url.starts_with("http://127.0.0.1:"));
    assert!(h.sim.ca_path.is_none());
    h.enqueue("SDLoen", "a", "a").await;
    assert_eq!(h.page("").await["deliveries"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn two_simulators_side_by_side() {
    let (one, two) = tokio::join!(start(), start());
    assert_ne!(one.sim.base_url, two.sim.base_url);
    assert_ne!(one.sim.ca_path, two.sim.ca_path);
    one.enqueue("SDLoen", "one", "1").await;
    assert_eq!(
        one.page("").await["deliveries"].as_array().unwrap().len(),
        1
    );
    assert_eq!(two.page("").await["deliveries"], json!([]));
    // Each trusts only its own CA.
    let cross = two
        .http
        .get(format!("{}/deliveries", one.sim.base_url))
        .header("publicApiToken", &one.sim.token)
        .send()
        .await;
    assert!(cross.is_err(), "a foreign CA must not validate");
}

#[tokio::test]
async fn generates_large_backlog_quickly() {
    let h = start().await;
    let started = Instant::now();
    let ids = h
        .control
        .generate(&json!({ "count": 50_000, "size": 1024, "seed": 42 }))
        .await
        .unwrap();
    assert_eq!(ids.len(), 50_000);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let summary = h.control.state(true).await.unwrap();
    assert_eq!(summary["total"], 50_000);
    assert!(summary.get("deliveries").is_none() && summary.get("requests").is_none());

    let page = h.page("?systems=Prisme&limit=100").await;
    let deliveries = page["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 100);
    assert_eq!(page["hasMore"], true);
    for d in deliveries {
        let bytes = decode(d);
        assert_eq!(d["sha256"], sha256_hex(&bytes));
        assert!(bytes.len() >= 900, "{}", bytes.len());
        let name = d["fileName"].as_str().unwrap();
        assert!(name.starts_with("G69_") && name.ends_with(".txt"), "{name}");
        assert!(bytes.ends_with(b"\r\n"));
    }
    // Deterministic per seed: a second simulator renders identical bytes.
    let other = start().await;
    other
        .control
        .generate(&json!({ "count": 2, "size": 1024, "seed": 42 }))
        .await
        .unwrap();
    let first = &h.page("?limit=1").await["deliveries"][0];
    let again = &other.page("?limit=1").await["deliveries"][0];
    assert_eq!(first["sha256"], again["sha256"]);
    assert_eq!(first["fileName"], again["fileName"]);
}

#[tokio::test]
async fn random_generation_has_exact_size() {
    let h = start().await;
    h.control
        .generate(&json!({ "count": 3, "size": 4097, "kind": "random", "systems": ["SDLoen"] }))
        .await
        .unwrap();
    let page = h.page("").await;
    for d in page["deliveries"].as_array().unwrap() {
        assert_eq!(decode(d).len(), 4097);
    }
}

#[tokio::test]
async fn reset_clears_everything() {
    let h = start().await;
    h.enqueue("SDLoen", "a", "a").await;
    h.control.settings(Some(Mode::None), Some(5)).await.unwrap();
    h.fault(json!({ "kind": "http500" })).await;
    h.control.reset().await.unwrap();
    let state = h.state().await;
    assert_eq!(state["mode"], "Ack");
    assert_eq!(state["pageSize"], 100);
    assert_eq!(state["total"], 0);
    assert_eq!(state["faults"], json!([]));
    assert_eq!(state["requests"], json!([]));
    h.page("").await; // the queued http500 is gone
}

#[tokio::test]
async fn serves_operator_provided_certificate_and_reuses_ca() {
    let dir = tempfile::tempdir().unwrap();
    let first = start_with(SimConfig {
        state_dir: Some(dir.path().to_path_buf()),
        ..SimConfig::default()
    })
    .await;
    let ca = first.sim.ca_path.clone().unwrap();
    assert_eq!(ca, std::path::absolute(dir.path().join("ca.pem")).unwrap());
    first.sim.stop().await;

    // Same folder again: same CA, so an already-trusted CA keeps working.
    let ca_pem = std::fs::read(&ca).unwrap();
    let again = start_with(SimConfig {
        state_dir: Some(dir.path().to_path_buf()),
        ..SimConfig::default()
    })
    .await;
    assert_eq!(std::fs::read(&ca).unwrap(), ca_pem);
    again.page("").await;

    let provided = start_with(SimConfig {
        tls: TlsSetup::Files {
            cert: dir.path().join("server.pem"),
            key: dir.path().join("server-key.pem"),
            ca: Some(ca.clone()),
        },
        ..SimConfig::default()
    })
    .await;
    assert_eq!(provided.sim.ca_path.as_ref(), Some(&ca));
    provided.page("").await;
}

//! Control API validation and protection.

mod common;

use common::{start, start_with};
use reqwest::Method;
use serde_json::json;
use xflow_sim::SimConfig;

#[tokio::test]
async fn malformed_control_requests_get_400_and_server_keeps_serving() {
    let h = start().await;
    let cases: &[(Method, &str, &str, &str)] = &[
        (Method::POST, "deliveries", "not json", "invalid JSON"),
        (Method::POST, "deliveries", "{}", "deliveries"),
        (
            Method::POST,
            "deliveries",
            r#"{"deliveries":[]}"#,
            "must not be empty",
        ),
        (
            Method::POST,
            "deliveries",
            r#"{"deliveries":[{"system":"SDLoen","fileName":"a"}]}"#,
            "exactly one",
        ),
        (
            Method::POST,
            "deliveries",
            r#"{"deliveries":[{"system":"SDLoen","fileName":"a","text":"x","contentBase64":"eA=="}]}"#,
            "exactly one",
        ),
        (
            Method::POST,
            "deliveries",
            r#"{"deliveries":[{"system":"SDLoen","fileName":"a","contentBase64":"***"}]}"#,
            "base64",
        ),
        (
            Method::POST,
            "deliveries",
            r#"{"deliveries":[{"system":"SDLoen","fileName":"a","text":"x","encoding":"latin-9"}]}"#,
            "unknown variant",
        ),
        (
            Method::POST,
            "deliveries",
            r#"{"deliveries":[{"system":"SDLoen","fileName":"a","text":"Ω","encoding":"windows-1252"}]}"#,
            "windows-1252",
        ),
        (
            Method::POST,
            "deliveries",
            r#"{"deliveries":[{"system":"SDLoen","fileName":"a","text":"x","colour":"red"}]}"#,
            "unknown field",
        ),
        (Method::POST, "generate", r#"{"count":0}"#, "count"),
        (
            Method::POST,
            "generate",
            r#"{"count":5,"systems":[]}"#,
            "systems",
        ),
        (
            Method::POST,
            "generate",
            r#"{"count":5,"kind":"weird"}"#,
            "unknown variant",
        ),
        (Method::PUT, "settings", r#"{}"#, "mode"),
        (
            Method::PUT,
            "settings",
            r#"{"mode":"Sometimes"}"#,
            "unknown variant",
        ),
        (Method::PUT, "settings", r#"{"pageSize":0}"#, "pageSize"),
        (
            Method::POST,
            "faults",
            r#"{"kind":"meteor"}"#,
            "unknown fault kind",
        ),
        (
            Method::POST,
            "faults",
            r#"{"kind":"http429","params":{"retryAfter":1}}"#,
            "unknown param",
        ),
        (
            Method::POST,
            "faults",
            r#"{"kind":"http429","params":{"retryAfterSec":"soon"}}"#,
            "integer",
        ),
        (
            Method::POST,
            "faults",
            r#"{"kind":"ackForgotten","on":"get"}"#,
            "only applies to ack",
        ),
        (Method::POST, "faults", r#"{"kind":"gzip","nth":0}"#, "nth"),
        (
            Method::POST,
            "faults",
            r#"{"kind":"htmlBody","params":{"status":404}}"#,
            "status",
        ),
        (
            Method::POST,
            "faults",
            r#"{"kind":"redirectOtherOrigin","params":{"location":"/relative"}}"#,
            "absolute",
        ),
        (Method::GET, "state?summary=maybe", "", "summary"),
    ];
    for (method, path, body, expect) in cases {
        let msg = h.control_400(method.clone(), path, body).await;
        assert!(msg.contains(expect), "{path} {body}: {msg}");
    }
    // Still serving, nothing half-applied.
    let state = h.state().await;
    assert_eq!(state["total"], 0);
    assert_eq!(state["faults"], json!([]));
    h.page("").await;
}

#[tokio::test]
async fn duplicate_ids_are_rejected() {
    let h = start().await;
    let body = json!({ "deliveries": [{ "id": "same", "system": "SDLoen", "fileName": "a", "text": "a" }] });
    h.control.enqueue(&body).await.unwrap();
    let msg = h
        .control_400(Method::POST, "deliveries", &body.to_string())
        .await;
    assert!(msg.contains("already exists"), "{msg}");
}

#[tokio::test]
async fn control_token_is_enforced_when_configured() {
    let h = start_with(SimConfig {
        control_token: Some("ctl-secret".into()),
        ..SimConfig::default()
    })
    .await;
    let resp = h
        .http
        .get(format!("{}/state", h.sim.control_url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let wrong = h
        .http
        .get(format!("{}/state", h.sim.control_url))
        .header("X-Control-Token", "nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(!wrong.text().await.unwrap().contains("ctl-secret"));
    // The bundled client sends it.
    h.state().await;
}

#[tokio::test]
async fn control_api_does_not_accept_the_api_token_as_auth_and_vice_versa() {
    let h = start().await;
    // The delivery API needs its token even from loopback.
    let resp = h
        .http
        .get(format!("{}/deliveries", h.sim.base_url))
        .header("X-Control-Token", "anything")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn unknown_control_path_is_404() {
    let h = start().await;
    let resp = h
        .http
        .get(format!("{}/nothing", h.sim.control_url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

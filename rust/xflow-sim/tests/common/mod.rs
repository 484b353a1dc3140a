//! Helpers shared by the integration tests: start a simulator on port 0 and talk to it
//! with a plain reqwest client that trusts the simulator's own CA.
#![allow(dead_code)] // each test binary uses a different subset

use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;
use xflow_sim::{ControlClient, RunningSim, SimConfig, Simulator};

pub struct Harness {
    pub sim: RunningSim,
    pub control: ControlClient,
    pub http: reqwest::Client,
}

pub async fn start() -> Harness {
    start_with(SimConfig::default()).await
}

pub async fn start_with(config: SimConfig) -> Harness {
    let sim = Simulator::start(config).await.expect("simulator starts");
    let control = sim.control().expect("control client");
    let http = client(&sim, |b| b);
    Harness { sim, control, http }
}

/// A client trusting the simulator CA; `tune` adjusts gzip, redirects, timeouts.
pub fn client(
    sim: &RunningSim,
    tune: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
) -> reqwest::Client {
    // reqwest's rustls backend takes the process's default provider (ring, as the server).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30));
    if let Some(ca) = &sim.ca_path {
        let pem = std::fs::read(ca).expect("CA readable");
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
    }
    tune(builder).build().expect("client builds")
}

impl Harness {
    pub fn get(&self, query: &str) -> reqwest::RequestBuilder {
        self.get_with(&self.http, query)
    }

    pub fn get_with(&self, http: &reqwest::Client, query: &str) -> reqwest::RequestBuilder {
        http.get(format!("{}/deliveries{query}", self.sim.base_url))
            .header(&self.sim.auth_header, &self.sim.token)
    }

    pub fn ack_raw(&self, body: impl Into<reqwest::Body>) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}/deliveries/ack", self.sim.base_url))
            .header(&self.sim.auth_header, &self.sim.token)
            .header("content-type", "application/json")
            .body(body)
    }

    /// GET a page and parse it; panics on anything but 200 + JSON.
    pub async fn page(&self, query: &str) -> Value {
        let resp = self.get(query).send().await.expect("GET sent");
        assert_eq!(resp.status(), 200, "GET {query}");
        resp.json().await.expect("page is JSON")
    }

    pub async fn ack(&self, ids: &[&str]) -> reqwest::StatusCode {
        let body = serde_json::json!({ "ids": ids }).to_string();
        self.ack_raw(body).send().await.expect("ack sent").status()
    }

    pub async fn enqueue(&self, system: &str, name: &str, text: &str) -> String {
        self.control
            .enqueue_text(system, name, text)
            .await
            .expect("enqueue")
    }

    pub async fn fault(&self, body: Value) -> Value {
        let kind = body["kind"].as_str().unwrap().to_string();
        let on = body
            .get("on")
            .map(|v| serde_json::from_value(v.clone()).unwrap());
        let nth = body.get("nth").map(|v| v.as_u64().unwrap() as u32);
        let params = body.get("params").cloned().unwrap_or(Value::Null);
        self.control
            .fault(&kind, on, nth, params)
            .await
            .expect("fault queued")
    }

    pub async fn state(&self) -> Value {
        self.control.state(false).await.expect("state")
    }

    /// POST to the control API expecting a 400 JSON error; returns its message.
    pub async fn control_400(&self, method: reqwest::Method, path: &str, body: &str) -> String {
        let resp = self
            .http
            .request(method, format!("{}/{path}", self.sim.control_url))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("control request sent");
        assert_eq!(resp.status(), 400, "{path} {body}");
        let v: Value = resp.json().await.expect("error is JSON");
        assert_eq!(v["error"], "bad_request");
        v["message"].as_str().unwrap().to_string()
    }
}

pub fn ids(page: &Value) -> Vec<String> {
    page["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect()
}

pub fn decode(delivery: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(delivery["content"].as_str().unwrap())
        .expect("valid base64")
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

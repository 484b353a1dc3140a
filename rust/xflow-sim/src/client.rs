//! A small client for the control API of a running simulator (used by the CLI
//! subcommands and handy in Rust tests), and the ready line that announces one.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context as _, bail};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{control::CONTROL_TOKEN_HEADER, faults::Target, state::Mode};

/// `{"baseUrl":..,"controlUrl":..,"caPath":..,"pid":N}`, printed as one line on stdout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadyLine {
    pub base_url: String,
    pub control_url: String,
    pub ca_path: Option<PathBuf>,
    pub pid: u32,
}

impl ReadyLine {
    /// Reads the first line of a file written by `serve --ready-file` (or captured stdout).
    pub fn read(path: &Path) -> anyhow::Result<ReadyLine> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading ready file {}", path.display()))?;
        let line = text.lines().next().unwrap_or_default();
        serde_json::from_str(line)
            .with_context(|| format!("parsing ready line in {}", path.display()))
    }
}

pub struct ControlClient {
    control_url: String,
    http: reqwest::Client,
    control_token: Option<String>,
}

impl ControlClient {
    pub fn new(
        control_url: &str,
        ca_path: Option<&Path>,
        control_token: Option<String>,
    ) -> anyhow::Result<Self> {
        // reqwest's rustls backend takes the process's default provider (ring, as the server).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(120));
        if let Some(ca) = ca_path {
            let pem = std::fs::read(ca).with_context(|| format!("reading CA {}", ca.display()))?;
            builder = builder.add_root_certificate(
                reqwest::Certificate::from_pem(&pem).context("parsing CA certificate")?,
            );
        }
        Ok(Self {
            control_url: control_url.trim_end_matches('/').to_string(),
            http: builder.build().context("building HTTP client")?,
            control_token,
        })
    }

    /// Sends one control request; a non-2xx answer becomes an error carrying its body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}/{}", self.control_url, path.trim_start_matches('/'));
        let mut req = self.http.request(method, &url);
        if let Some(token) = &self.control_token {
            req = req.header(CONTROL_TOKEN_HEADER, token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await.with_context(|| format!("calling {url}"))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .with_context(|| format!("reading answer of {url}"))?;
        if !status.is_success() {
            bail!("{url} answered {status}: {text}");
        }
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).with_context(|| format!("{url} answered non-JSON: {text}"))
    }

    /// `POST /control/deliveries` with a full `{"deliveries":[...]}` body; returns the ids.
    pub async fn enqueue(&self, body: &Value) -> anyhow::Result<Vec<String>> {
        ids(self.call(Method::POST, "deliveries", Some(body)).await?)
    }

    /// Enqueues one UTF-8 text delivery and returns its id.
    pub async fn enqueue_text(
        &self,
        system: &str,
        file_name: &str,
        text: &str,
    ) -> anyhow::Result<String> {
        let body =
            json!({ "deliveries": [{ "system": system, "fileName": file_name, "text": text }] });
        let mut ids = self.enqueue(&body).await?;
        ids.pop().context("enqueue returned no id")
    }

    /// `POST /control/generate`, e.g. `{"count":50000,"size":1024}`; returns the ids.
    pub async fn generate(&self, body: &Value) -> anyhow::Result<Vec<String>> {
        ids(self.call(Method::POST, "generate", Some(body)).await?)
    }

    pub async fn state(&self, summary: bool) -> anyhow::Result<Value> {
        let path = if summary {
            "state?summary=true"
        } else {
            "state"
        };
        self.call(Method::GET, path, None).await
    }

    pub async fn settings(
        &self,
        mode: Option<Mode>,
        page_size: Option<usize>,
    ) -> anyhow::Result<Value> {
        let mut body = serde_json::Map::new();
        if let Some(mode) = mode {
            body.insert("mode".into(), json!(mode));
        }
        if let Some(n) = page_size {
            body.insert("pageSize".into(), json!(n));
        }
        self.call(Method::PUT, "settings", Some(&Value::Object(body)))
            .await
    }

    /// Queues a fault; `params` may be `Value::Null` for none.
    pub async fn fault(
        &self,
        kind: &str,
        on: Option<Target>,
        nth: Option<u32>,
        params: Value,
    ) -> anyhow::Result<Value> {
        let mut body = json!({ "kind": kind });
        if let Some(on) = on {
            body["on"] = json!(on);
        }
        if let Some(nth) = nth {
            body["nth"] = json!(nth);
        }
        if !params.is_null() {
            body["params"] = params;
        }
        self.call(Method::POST, "faults", Some(&body)).await
    }

    pub async fn reset(&self) -> anyhow::Result<Value> {
        self.call(Method::POST, "reset", None).await
    }
}

fn ids(answer: Value) -> anyhow::Result<Vec<String>> {
    serde_json::from_value(answer["ids"].clone()).context("answer has no ids")
}

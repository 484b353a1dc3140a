//! The control API under `/control`: loopback-only (and optionally token-protected)
//! endpoints that let a test arrange the backlog, settings and faults.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{ConnectInfo, Query, Request, State, rejection::QueryRejection},
    http::StatusCode,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    app::{ApiError, App, parse_json, secret_eq},
    faults::FaultRequest,
    samples::{SampleKind, TextEncoding},
    state::{Delivery, MAX_PAGE_SIZE, Mode, generated_delivery, new_id},
};

pub const CONTROL_TOKEN_HEADER: &str = "x-control-token";
pub const MAX_GENERATE_COUNT: u64 = 1_000_000;
pub const MAX_GENERATE_SIZE: usize = 64 * 1024 * 1024;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/deliveries", post(enqueue))
        .route("/generate", post(generate))
        .route("/state", get(state))
        .route("/settings", put(settings))
        .route("/faults", post(add_fault))
        .route("/reset", post(reset))
        .fallback(crate::app::not_found)
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .layer(axum::extract::DefaultBodyLimit::max(
            crate::api::MAX_REQUEST_BODY,
        ))
        .with_state(app)
}

/// True for 127.0.0.0/8, ::1 and IPv4-mapped loopback (a dual-stack socket reports
/// IPv4 peers as `::ffff:127.0.0.1`).
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

async fn guard(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    if !peer.is_some_and(is_loopback) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the control API only accepts loopback clients",
        )
        .into_response();
    }
    if let Some(expected) = &app.control_token {
        let ok = req
            .headers()
            .get(CONTROL_TOKEN_HEADER)
            .is_some_and(|v| secret_eq(v.as_bytes(), expected.as_bytes()));
        if !ok {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or invalid X-Control-Token header",
            )
            .into_response();
        }
    }
    next.run(req).await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EnqueueBody {
    deliveries: Vec<EnqueueItem>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EnqueueItem {
    id: Option<String>,
    system: String,
    file_name: String,
    content_base64: Option<String>,
    text: Option<String>,
    encoding: Option<TextEncoding>,
}

impl EnqueueItem {
    fn into_delivery(self, n: usize) -> Result<Delivery, ApiError> {
        let bad = |m: String| ApiError::bad_request(format!("deliveries[{n}]: {m}"));
        let bytes = match (self.content_base64, self.text) {
            (Some(b64), None) => {
                if self.encoding.is_some() {
                    return Err(bad("encoding only applies to text".into()));
                }
                base64::engine::general_purpose::STANDARD
                    .decode(b64.as_bytes())
                    .map_err(|e| bad(format!("contentBase64 is not valid base64: {e}")))?
            }
            (None, Some(text)) => self
                .encoding
                .unwrap_or_default()
                .encode(&text)
                .map_err(|e| bad(e.to_string()))?,
            _ => return Err(bad("give exactly one of contentBase64 and text".into())),
        };
        let id = match self.id {
            Some(id) if id.is_empty() => return Err(bad("id must not be empty".into())),
            Some(id) => id,
            None => new_id(),
        };
        Ok(Delivery::new(id, self.system, self.file_name, bytes))
    }
}

async fn enqueue(State(app): State<Arc<App>>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let EnqueueBody { deliveries } = parse_json(&body)?;
    if deliveries.is_empty() {
        return Err(ApiError::bad_request("deliveries must not be empty"));
    }
    let deliveries = deliveries
        .into_iter()
        .enumerate()
        .map(|(n, item)| item.into_delivery(n))
        .collect::<Result<Vec<_>, _>>()?;
    let ids = app
        .lock()
        .enqueue(deliveries)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(Json(json!({ "ids": ids })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GenerateBody {
    count: u64,
    size: Option<usize>,
    systems: Option<Vec<String>>,
    kind: Option<SampleKind>,
    encoding: Option<TextEncoding>,
    seed: Option<u64>,
}

async fn generate(State(app): State<Arc<App>>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let req: GenerateBody = parse_json(&body)?;
    if req.count == 0 || req.count > MAX_GENERATE_COUNT {
        return Err(ApiError::bad_request(format!(
            "count must be between 1 and {MAX_GENERATE_COUNT}"
        )));
    }
    let size = req.size.unwrap_or(2048);
    if size > MAX_GENERATE_SIZE {
        return Err(ApiError::bad_request(format!(
            "size must be at most {MAX_GENERATE_SIZE}"
        )));
    }
    let systems = req
        .systems
        .unwrap_or_else(|| vec!["SDLoen".into(), "Prisme".into()]);
    if systems.is_empty() || systems.iter().any(String::is_empty) {
        return Err(ApiError::bad_request("systems must be non-empty names"));
    }
    let (kind, encoding, seed) = (
        req.kind.unwrap_or_default(),
        req.encoding.unwrap_or_default(),
        req.seed.unwrap_or(0),
    );
    let mut sim = app.lock();
    let first_seq = sim.reserve_file_seqs(req.count);
    // Contents render lazily, so this loop only allocates ids and names.
    let deliveries = (0..req.count)
        .map(|i| {
            let system = &systems[(i % systems.len() as u64) as usize];
            generated_delivery(kind, system, seed, first_seq + i, size, encoding)
        })
        .collect();
    let ids = sim
        .enqueue(deliveries)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(Json(json!({ "ids": ids })))
}

#[derive(Deserialize)]
struct StateQuery {
    #[serde(default)]
    summary: bool,
}

async fn state(
    State(app): State<Arc<App>>,
    query: Result<Query<StateQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let (mut doc, rows) = {
        let sim = app.lock();
        let rows = (!q.summary).then(|| sim.delivery_rows());
        (sim.snapshot(q.summary, &app.other_origin_url), rows)
    };
    if let Some(rows) = rows {
        // Digesting a large generated backlog takes a while: keep it off the lock and
        // off the async workers.
        let deliveries = tokio::task::spawn_blocking(move || {
            rows.iter().map(|r| r.to_json()).collect::<Vec<_>>()
        })
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                e.to_string(),
            )
        })?;
        doc["deliveries"] = deliveries.into();
    }
    Ok(Json(doc))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SettingsBody {
    mode: Option<Mode>,
    page_size: Option<usize>,
}

async fn settings(State(app): State<Arc<App>>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let req: SettingsBody = parse_json(&body)?;
    if req.mode.is_none() && req.page_size.is_none() {
        return Err(ApiError::bad_request("give mode and/or pageSize"));
    }
    if let Some(n) = req.page_size
        && (n == 0 || n > MAX_PAGE_SIZE)
    {
        return Err(ApiError::bad_request(format!(
            "pageSize must be between 1 and {MAX_PAGE_SIZE}"
        )));
    }
    let mut sim = app.lock();
    if let Some(mode) = req.mode {
        sim.set_mode(mode);
    }
    if let Some(n) = req.page_size {
        sim.set_page_size(n);
    }
    Ok(Json(
        json!({ "mode": sim.mode(), "pageSize": sim.page_size() }),
    ))
}

async fn add_fault(State(app): State<Arc<App>>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let req: FaultRequest = parse_json(&body)?;
    let queued = app
        .lock()
        .faults
        .push(&req)
        .map_err(ApiError::bad_request)?;
    tracing::info!(kind = queued.kind, on = ?queued.on, nth = queued.nth, "fault queued");
    Ok(Json(
        serde_json::to_value(queued).expect("fault serialises"),
    ))
}

async fn reset(State(app): State<Arc<App>>) -> Json<Value> {
    app.lock().reset();
    Json(json!({ "reset": true }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_check() {
        for ok in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(ok.parse().unwrap()), "{ok}");
        }
        for bad in [
            "10.0.0.1",
            "192.168.1.5",
            "0.0.0.0",
            "::",
            "::ffff:10.0.0.1",
            "fe80::1",
        ] {
            assert!(!is_loopback(bad.parse().unwrap()), "{bad}");
        }
    }
}

//! The XFlow delivery API (`GET /deliveries`, `POST /deliveries/ack`) with fault
//! injection, plus the "other origin" listener that redirect faults point at.

use std::{io::Write as _, sync::Arc, time::Duration};

use axum::{
    Extension, Router,
    body::{Body, Bytes},
    extract::{OriginalUri, Query, Request, State, rejection::QueryRejection},
    http::{HeaderValue, StatusCode, Uri, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{any, get, post},
};
use axum_server::ConnectionShutdown;
use base64::Engine as _;
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    app::{ApiError, App, parse_json, secret_eq},
    faults::{AckFault, LONE_SURROGATE_MARK, Plan, ShortCircuit, Target, Transport},
    state::{OtherOriginRequest, Page},
};

/// Large enough for an ack of a 50 000-delivery backlog.
pub const MAX_REQUEST_BODY: usize = 256 * 1024 * 1024;

/// The request-log entry of the current request, set by [`guard`].
#[derive(Clone, Copy)]
struct LogSeq(u64);

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/deliveries", get(list_deliveries))
        .route("/deliveries/ack", post(ack_deliveries))
        .fallback(crate::app::not_found)
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_REQUEST_BODY))
        .with_state(app)
}

fn original_path(req: &Request) -> String {
    req.extensions()
        .get::<OriginalUri>()
        .map(|u| u.path().to_string())
        .unwrap_or_else(|| req.uri().path().to_string())
}

/// Logs every API request (auth header redacted) and enforces the token.
async fn guard(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    let path = original_path(&req);
    let method = req.method().clone();
    let seq = app.lock().log_start(
        method.to_string(),
        path.clone(),
        req.uri().query().map(str::to_string),
        app.redacted_headers(req.headers()),
    );
    let authorized = req
        .headers()
        .get(&app.auth_header)
        .is_some_and(|v| secret_eq(v.as_bytes(), app.token.as_bytes()));
    let response = if authorized {
        req.extensions_mut().insert(LogSeq(seq));
        next.run(req).await
    } else {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            format!("missing or invalid {} header", app.auth_header_display),
        )
        .into_response()
    };
    let status = response.status().as_u16();
    app.lock().log_status(seq, status);
    tracing::info!(%method, %path, status, "api request");
    response
}

#[derive(Deserialize)]
struct ListQuery {
    systems: Option<String>,
    limit: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeliveryOut<'a> {
    id: &'a str,
    system: &'a str,
    file_name: &'a str,
    content: String,
    sha256: String,
    created_at: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PageOut<'a> {
    deliveries: Vec<DeliveryOut<'a>>,
    has_more: bool,
}

/// Fires the faults due on this request and records them in the request log.
fn plan_for(app: &App, seq: u64, target: Target) -> Plan {
    let mut sim = app.lock();
    let plan = Plan::new(sim.faults.fire(target));
    if !plan.kinds.is_empty() {
        sim.log_faults(seq, &plan.kinds);
        tracing::info!(faults = ?plan.kinds, "injecting faults");
    }
    plan
}

async fn list_deliveries(
    State(app): State<Arc<App>>,
    Extension(LogSeq(seq)): Extension<LogSeq>,
    Extension(conn): Extension<ConnectionShutdown>,
    OriginalUri(uri): OriginalUri,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let systems: Option<Vec<String>> = query
        .systems
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|s| !s.is_empty());
    let limit = match query.limit.as_deref() {
        None => None,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(ApiError::bad_request("limit must be a positive integer")),
        },
    };

    let plan = plan_for(&app, seq, Target::Get);
    if let Some(delay) = plan.delay {
        tokio::time::sleep(delay).await;
    }
    if let Some(sc) = &plan.short_circuit {
        return Ok(short_circuit(&app, sc, &uri));
    }
    let page = {
        let mut sim = app.lock();
        for injection in &plan.inject {
            sim.inject(injection);
        }
        if let Some(count) = plan.has_more_forever {
            sim.start_has_more_forever(count);
        }
        let page_size = sim.page_size();
        let limit = limit.map_or(page_size, |l| l.min(page_size));
        sim.take_page(systems.as_deref(), limit, seq)
    };
    let body = render_page(&page, &plan);
    Ok(send_body(body, "application/json", &plan, conn))
}

fn render_page(page: &Page, plan: &Plan) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let deliveries = page
        .deliveries
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let bytes = d.bytes();
            let mut content = b64.encode(&bytes);
            let mut sha256 = d.sha256(&bytes).to_string();
            // Corruptions target the first delivery of the page, so tests know which one.
            if i == 0 && plan.invalid_base64 {
                content = format!("*not base64*{}", &content[..content.len().min(16)]);
            }
            if i == 0 && plan.wrong_sha256 {
                sha256 = hex::encode(Sha256::digest([&bytes[..], b"tampered"].concat()));
            }
            DeliveryOut {
                id: &d.id,
                system: &d.system,
                file_name: &d.file_name,
                content,
                sha256,
                created_at: d.created_at_rfc3339(),
            }
        })
        .collect();
    let body = serde_json::to_vec(&PageOut {
        deliveries,
        has_more: page.has_more,
    })
    .expect("page serialises");
    let marked = |text: &str| text.contains(LONE_SURROGATE_MARK);
    if page
        .deliveries
        .iter()
        .any(|d| marked(&d.file_name) || marked(&d.id))
    {
        write_lone_surrogates(&body)
    } else {
        body
    }
}

/// `{lone-surrogate:D800}` in a file name or id goes out as the JSON escape `\ud800`: a lone
/// surrogate, which JSON allows and no Rust string can hold (docs/simulator.md).
fn write_lone_surrogates(body: &[u8]) -> Vec<u8> {
    let mark = LONE_SURROGATE_MARK.as_bytes();
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let code = body[i..]
            .strip_prefix(mark)
            .and_then(|rest| rest.get(..5))
            .filter(|hex| hex[4] == b'}')
            .and_then(|hex| std::str::from_utf8(&hex[..4]).ok())
            .and_then(|hex| u16::from_str_radix(hex, 16).ok())
            .filter(|code| (0xD800..=0xDFFF).contains(code));
        match code {
            Some(code) => {
                out.extend_from_slice(format!("\\u{code:04x}").as_bytes());
                i += mark.len() + 5;
            }
            None => {
                out.push(body[i]);
                i += 1;
            }
        }
    }
    out
}

/// Sends `body`, applying the gzip and transport faults of the plan.
fn send_body(
    mut body: Vec<u8>,
    content_type: &'static str,
    plan: &Plan,
    conn: ConnectionShutdown,
) -> Response {
    let mut builder = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type);
    if plan.gzip {
        // Sent whatever the client's Accept-Encoding says: a correct client must cope.
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&body).expect("in-memory gzip");
        body = enc.finish().expect("in-memory gzip");
        builder = builder.header(header::CONTENT_ENCODING, "gzip");
    }
    let full_len = body.len();
    let body = Bytes::from(body);
    let half = full_len / 2;
    let response = match plan.transport {
        None => builder.body(Body::from(body)),
        Some(Transport::Truncated) => builder.body(Body::from(body.slice(..half))),
        Some(Transport::ResetMidBody) => {
            let first = body.slice(..half);
            let stream = futures::stream::iter([Ok::<_, std::io::Error>(first)]).chain(
                futures::stream::once(async move {
                    // Let the first half reach the socket before the connection is torn down.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    conn.shutdown();
                    Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "simulated reset mid-body",
                    ))
                }),
            );
            builder
                .header(header::CONTENT_LENGTH, full_len)
                .body(Body::from_stream(stream))
        }
        Some(Transport::Stall { ms }) => {
            let (first, rest) = (body.slice(..half), body.slice(half..));
            let stream = futures::stream::iter([Ok::<_, std::io::Error>(first)]).chain(
                futures::stream::once(async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    Ok(rest)
                }),
            );
            builder
                .header(header::CONTENT_LENGTH, full_len)
                .body(Body::from_stream(stream))
        }
    };
    response.expect("valid response parts")
}

const MAINTENANCE_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>XFlow - Vedligeholdelse</title></head>\n<body><h1>XFlow er midlertidigt utilgængelig</h1>\n<p>Vi udfører planlagt vedligeholdelse. Prøv igen senere.</p></body></html>\n";

fn short_circuit(app: &App, sc: &ShortCircuit, uri: &Uri) -> Response {
    match sc {
        ShortCircuit::Status {
            status,
            retry_after_sec,
        } => {
            let status = StatusCode::from_u16(*status).expect("known status");
            let code = match status.as_u16() {
                429 => "too_many_requests",
                503 => "service_unavailable",
                _ => "internal_error",
            };
            let mut response = ApiError::new(status, code, "simulated fault").into_response();
            if let Some(secs) = retry_after_sec {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*secs));
            }
            response
        }
        ShortCircuit::Html { status } => (
            StatusCode::from_u16(*status).expect("known status"),
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            MAINTENANCE_PAGE,
        )
            .into_response(),
        ShortCircuit::Redirect { status, location } => {
            let location = location.clone().unwrap_or_else(|| {
                let pq = uri.path_and_query().map_or("/", |pq| pq.as_str());
                format!("{}{pq}", app.other_origin_url)
            });
            Response::builder()
                .status(StatusCode::from_u16(*status).expect("known status"))
                .header(header::LOCATION, location)
                .body(Body::empty())
                .expect("valid redirect")
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    ids: Vec<String>,
}

async fn ack_deliveries(
    State(app): State<Arc<App>>,
    Extension(LogSeq(seq)): Extension<LogSeq>,
    Extension(conn): Extension<ConnectionShutdown>,
    OriginalUri(uri): OriginalUri,
    body: Bytes,
) -> Result<Response, ApiError> {
    let AckBody { ids } = parse_json(&body)?;
    let plan = plan_for(&app, seq, Target::Ack);
    if let Some(delay) = plan.delay {
        tokio::time::sleep(delay).await;
    }
    if let Some(sc) = &plan.short_circuit {
        return Ok(short_circuit(&app, sc, &uri));
    }
    match plan.ack {
        Some(AckFault::Forgotten) => {}
        Some(AckFault::RecordedNoResponse) => {
            app.lock().ack(&ids);
            // Dropping the connection cancels this handler; nothing is ever sent.
            conn.shutdown();
            return Ok(std::future::pending::<Response>().await);
        }
        None => app.lock().ack(&ids),
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A different origin (other port) that records whether credentials followed a redirect.
/// It answers like a successful, empty XFlow, the most dangerous thing it could do.
pub fn other_origin_router(app: Arc<App>) -> Router {
    Router::new().fallback(any(other_origin)).with_state(app)
}

async fn other_origin(State(app): State<Arc<App>>, req: Request) -> Response {
    let entry = OtherOriginRequest {
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        query: req.uri().query().map(str::to_string),
        auth_header_present: req.headers().contains_key(&app.auth_header),
        headers: app.redacted_headers(req.headers()),
    };
    tracing::info!(
        path = %entry.path,
        auth_header_present = entry.auth_header_present,
        "request reached the other origin"
    );
    let is_get = req.method() == axum::http::Method::GET;
    app.lock().log_other_origin(entry);
    if is_get {
        axum::Json(serde_json::json!({ "deliveries": [], "hasMore": false })).into_response()
    } else {
        StatusCode::NO_CONTENT.into_response()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn lone_surrogate_marks_become_json_escapes_and_nothing_else_changes() {
        let body =
            br#"{"fileName":"a{lone-surrogate:d800}b{lone-surrogate:0041}{lone-surrogate:DFFF}"}"#;
        let out = super::write_lone_surrogates(body);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"fileName":"a\ud800b{lone-surrogate:0041}\udfff"}"#
        );
    }
}

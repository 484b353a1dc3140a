//! State shared by every handler, and the JSON error responses both APIs use.

use std::{
    collections::BTreeMap,
    sync::{Mutex, MutexGuard},
};

use axum::{
    Json,
    http::{HeaderMap, HeaderName, StatusCode, header::InvalidHeaderName},
    response::{IntoResponse, Response},
};

use crate::state::SimState;

pub struct App {
    sim: Mutex<SimState>,
    pub token: String,
    pub auth_header: HeaderName,
    /// The header name as configured (HeaderName lowercases), for messages.
    pub auth_header_display: String,
    pub control_token: Option<String>,
    pub other_origin_url: String,
}

impl App {
    pub fn new(
        page_size: usize,
        token: String,
        auth_header: &str,
        control_token: Option<String>,
        other_origin_url: String,
    ) -> Result<Self, InvalidHeaderName> {
        Ok(Self {
            sim: Mutex::new(SimState::new(page_size)),
            token,
            auth_header: HeaderName::try_from(auth_header)?,
            auth_header_display: auth_header.to_string(),
            control_token,
            other_origin_url,
        })
    }

    /// A panicking handler must not wedge the simulator for the rest of a test run.
    pub fn lock(&self) -> MutexGuard<'_, SimState> {
        self.sim.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Request headers for logs, with every credential-bearing value replaced.
    pub fn redacted_headers(&self, headers: &HeaderMap) -> BTreeMap<String, String> {
        let mut out: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in headers {
            let secret = *name == self.auth_header
                || name == "x-control-token"
                || name == axum::http::header::AUTHORIZATION
                || name == axum::http::header::COOKIE;
            let value = if secret {
                "<redacted>".to_string()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            out.entry(name.as_str().to_string())
                .and_modify(|v| {
                    v.push_str(", ");
                    v.push_str(&value);
                })
                .or_insert(value);
        }
        out
    }
}

/// Compares secrets without an early exit on the first differing byte.
pub fn secret_eq(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// `{"error": code, "message": text}` with a status; never contains a credential.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.code, "message": self.message });
        (self.status, Json(body)).into_response()
    }
}

pub async fn not_found() -> ApiError {
    ApiError::not_found()
}

/// Parses a JSON body ourselves so every malformed request gets the same 400 shape.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_eq_compares_whole_value() {
        assert!(secret_eq(b"abc", b"abc"));
        assert!(!secret_eq(b"abc", b"abd"));
        assert!(!secret_eq(b"ab", b"abc"));
    }

    #[test]
    fn redacts_auth_header() {
        let app = App::new(10, "t".into(), "publicApiToken", None, String::new()).unwrap();
        let mut h = HeaderMap::new();
        h.insert("publicApiToken", "secret".parse().unwrap());
        h.insert("x-other", "visible".parse().unwrap());
        let r = app.redacted_headers(&h);
        assert_eq!(r["publicapitoken"], "<redacted>");
        assert_eq!(r["x-other"], "visible");
    }
}

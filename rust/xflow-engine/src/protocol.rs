//! The XFlow delivery API as seen by the client (contract: docs/protocol.md).
//!
//! `GET {base}deliveries?systems=SDLoen,Prisme&limit=N` returns a page of pending deliveries;
//! `POST {base}deliveries/ack` with `{"ids":[...]}` acknowledges them. The token travels in one
//! header to the configured origin only: redirects to any other origin are not followed.

use crate::config::{System, ValidatedConfig};
use crate::error::{EngineError, Result};
use crate::page_body::{BodySink, Content, PageBody};
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, redirect};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::Duration;
use url::Url;
use zeroize::Zeroizing;

/// One delivery as the server sends it. The content stays base64, borrowed from the response
/// body, until it is decoded straight into its file: a large delivery is never held twice.
/// Its text fields are read with `wire_text`, so one odd name cannot make the whole page unreadable.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireDelivery<'a> {
    pub id: WireId,
    #[serde(deserialize_with = "wire_text")]
    pub system: String,
    #[serde(default, deserialize_with = "wire_text")]
    pub file_name: String,
    #[serde(borrow, deserialize_with = "inline_content")]
    pub content: Content<'a>,
    #[serde(deserialize_with = "wire_text")]
    pub sha256: String,
    #[serde(default, deserialize_with = "optional_wire_text")]
    pub created_at: Option<String>,
}

/// A delivery id as the server sent it. JSON lets it hold a lone surrogate (`\ud800`), which no
/// Rust string can: such an id reads with U+FFFD in its place (`wire_text`), which is not the id
/// the server knows and may be another delivery's. Nothing is journaled or acknowledged under an
/// id that is not `faithful` (`validate::unreadable_id`), and it never equals a faithful id with
/// the same text. Derefs to the text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct WireId {
    text: String,
    faithful: bool,
}

impl WireId {
    /// An id read from WTF-8 (`read_wtf8`).
    pub(crate) fn new(text: String, faithful: bool) -> WireId {
        WireId { text, faithful }
    }

    /// False when the id as sent held a lone surrogate.
    pub fn is_faithful(&self) -> bool {
        self.faithful
    }
}

impl std::ops::Deref for WireId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Display for WireId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for WireId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<WireId, D::Error> {
        let (text, faithful) = d.deserialize_bytes(WireTextVisitor)?;
        Ok(WireId { text, faithful })
    }
}

/// A JSON string from the server. JSON allows a lone surrogate escape (`\ud800`), which no Rust
/// string can hold and serde_json refuses for a `String`; read as bytes, serde_json hands it over
/// as WTF-8, and each lone surrogate becomes U+FFFD here instead of failing the page. Bytes that
/// are not UTF-8 at all are refused, as for any string.
fn wire_text<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    Ok(d.deserialize_bytes(WireTextVisitor)?.0)
}

/// Reads a JSON string as its text and whether it came without a lone surrogate.
struct WireTextVisitor;

impl serde::de::Visitor<'_> for WireTextVisitor {
    type Value = (String, bool);
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E>(self, v: &str) -> std::result::Result<(String, bool), E> {
        Ok((v.to_owned(), true))
    }
    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> std::result::Result<(String, bool), E> {
        read_wtf8(v).ok_or_else(|| E::custom("invalid UTF-8 in a string"))
    }
}

/// `from_wtf8`, and whether the text came without a lone surrogate.
pub(crate) fn read_wtf8(v: &[u8]) -> Option<(String, bool)> {
    // In UTF-8, ED is followed by 80..9F; ED A0..BF only starts a surrogate.
    let faithful = !v.windows(2).any(|w| w[0] == 0xED && w[1] >= 0xA0);
    Some((from_wtf8(v)?, faithful))
}

fn inline_content<'de: 'a, 'a, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Content<'a>, D::Error> {
    #[derive(Deserialize)]
    struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Content::Inline(Borrowed::deserialize(d)?.0))
}

fn optional_wire_text<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    struct WireText(#[serde(deserialize_with = "wire_text")] String);
    Ok(Option::<WireText>::deserialize(d)?.map(|t| t.0))
}

/// WTF-8 (UTF-8 that may encode surrogates as ED A0..BF xx) to a String with one U+FFFD per
/// surrogate; None when the rest is not UTF-8.
pub(crate) fn from_wtf8(bytes: &[u8]) -> Option<String> {
    let mut utf8 = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let [byte, tail @ ..] = rest {
        if let [0xED, 0xA0..=0xBF, 0x80..=0xBF, after @ ..] = rest {
            utf8.extend_from_slice("\u{fffd}".as_bytes());
            rest = after;
        } else {
            utf8.push(*byte);
            rest = tail;
        }
    }
    String::from_utf8(utf8).ok()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<'a> {
    #[serde(borrow)]
    pub deliveries: Vec<WireDelivery<'a>>,
    #[serde(default)]
    pub has_more: bool,
}

#[derive(Serialize)]
struct AckRequest<'a> {
    ids: &'a [String],
}

/// Retry policy for transient failures (5xx, 429, resets, timeouts).
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// Retry-After values above this are capped, so a server cannot park the run.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

pub struct Client {
    http: reqwest::Client,
    max_body_bytes: u64,
    deliveries_url: Url,
    ack_url: Url,
    timeout: Duration,
    retry: RetryPolicy,
}

impl Client {
    pub fn new(cfg: &ValidatedConfig) -> Result<Self> {
        // The header shares one zeroed-on-drop copy of the token with every request (a
        // HeaderValue clone shares its Bytes), instead of a plain copy freed without zeroing.
        let shared =
            bytes::Bytes::from_owner(Zeroizing::new(cfg.api_token.expose().as_bytes().to_vec()));
        let mut token = HeaderValue::from_maybe_shared(shared).map_err(|_| {
            EngineError::InvalidConfiguration("the API token is not a valid header value".into())
        })?;
        token.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(cfg.auth_header_name.clone(), token);

        let origin = cfg.base_url.origin();
        let policy = redirect::Policy::custom(move |attempt| {
            if attempt.url().origin() == origin && attempt.previous().len() < 5 {
                attempt.follow()
            } else {
                attempt.stop()
            }
        });
        let mut builder = reqwest::Client::builder()
            .default_headers(headers)
            .redirect(policy)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(30)))
            .read_timeout(cfg.timeout)
            .user_agent(concat!("XFlowDelivery/", env!("CARGO_PKG_VERSION")));
        if let Some(proxy) = &cfg.proxy {
            builder = builder.proxy(proxy.clone());
        }
        let http = crate::tls::configure(builder, cfg.ca_certificate_pem.as_deref())?
            .build()
            .map_err(|e| EngineError::Internal(format!("cannot build the HTTP client: {e}")))?;
        let join = |path: &str| {
            cfg.base_url
                .join(path)
                .map_err(|e| EngineError::InvalidConfiguration(format!("BaseUrl: {e}")))
        };
        Ok(Self {
            http,
            // Room for one delivery at the size limit in base64 plus the rest of a page.
            max_body_bytes: cfg.max_delivery_bytes / 3 * 4 + 64 * 1024 * 1024,
            deliveries_url: join("deliveries")?,
            ack_url: join("deliveries/ack")?,
            timeout: cfg.timeout,
            retry: RetryPolicy::default(),
        })
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn deliveries_url(&self) -> &Url {
        &self.deliveries_url
    }

    /// Fetches a page; a large one goes to a new file at `spill_to` as it arrives.
    pub async fn fetch_page(
        &self,
        systems: &[System],
        limit: u32,
        spill_to: PathBuf,
    ) -> Result<PageBody> {
        let mut url = self.deliveries_url.clone();
        let names: Vec<&str> = systems.iter().map(|s| s.wire_name()).collect();
        url.query_pairs_mut()
            .append_pair("systems", &names.join(","))
            .append_pair("limit", &limit.to_string());
        let mut body = BodySink::spilling_to(spill_to);
        self.send_with_retry(&url, || self.http.get(url.clone()), &mut body)
            .await?;
        Ok(body.finish(self.deliveries_url.to_string()))
    }

    pub async fn ack(&self, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.post_ack(ids).await
    }

    /// Acknowledges nothing: proves TLS and the token without touching any delivery.
    pub async fn ack_empty(&self) -> Result<()> {
        self.post_ack(&[]).await
    }

    async fn post_ack(&self, ids: &[String]) -> Result<()> {
        let body = serde_json::to_vec(&AckRequest { ids }).expect("ids serialise");
        self.send_with_retry(
            &self.ack_url,
            || {
                self.http
                    .post(self.ack_url.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone())
            },
            &mut BodySink::in_memory(),
        )
        .await?;
        Ok(())
    }

    /// Sends a request, retrying transient failures with exponential backoff and jitter, and
    /// collects the body of a 2xx answer in `body`. Acknowledging is idempotent, so retrying it
    /// is safe.
    async fn send_with_retry(
        &self,
        url: &Url,
        request: impl Fn() -> reqwest::RequestBuilder,
        body: &mut BodySink,
    ) -> Result<()> {
        let mut delay = self.retry.first_delay;
        let mut attempt = 1;
        loop {
            let outcome = self.send_once(url, request(), body).await;
            let wait = match &outcome {
                Ok(_) => None,
                Err(failure) if failure.transient && attempt < self.retry.attempts => Some(
                    failure
                        .retry_after
                        .map(|d| d.min(self.retry.max_retry_after))
                        .unwrap_or_else(|| jitter(delay)),
                ),
                Err(_) => None,
            };
            match (outcome, wait) {
                (Ok(()), _) => return Ok(()),
                (Err(failure), None) => return Err(failure.error),
                (Err(_), Some(wait)) => {
                    tokio::time::sleep(wait).await;
                    delay = (delay * 2).min(self.retry.max_delay);
                    attempt += 1;
                }
            }
        }
    }

    async fn send_once(
        &self,
        url: &Url,
        request: reqwest::RequestBuilder,
        body: &mut BodySink,
    ) -> std::result::Result<(), Failure> {
        let response = request
            .send()
            .await
            .map_err(|e| self.transport_failure(url, e))?;
        let status = response.status();
        if status.is_success() {
            return self.read_body(url, response, body).await;
        }
        let retry_after = parse_retry_after(response.headers());
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let error = match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => EngineError::AuthenticationFailed {
                url: url.to_string(),
                status: status.as_u16(),
            },
            s if s.is_redirection() => EngineError::ProtocolError {
                url: url.to_string(),
                reason: format!(
                    "redirected to {} (HTTP {}); not followed, the token is only sent to the configured origin",
                    location.as_deref().unwrap_or("an unknown location"),
                    s.as_u16()
                ),
            },
            s => EngineError::ServerError {
                url: url.to_string(),
                status: s.as_u16(),
                reason: s.canonical_reason().unwrap_or("error").to_owned(),
            },
        };
        Err(Failure {
            transient: status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS,
            retry_after,
            error,
        })
    }

    /// Reads a body up to the size cap, so a misbehaving server cannot exhaust memory or disk.
    async fn read_body(
        &self,
        url: &Url,
        mut response: reqwest::Response,
        body: &mut BodySink,
    ) -> std::result::Result<(), Failure> {
        let fail = |error| Failure {
            transient: false,
            retry_after: None,
            error,
        };
        // Only a large answer is written (to the state folder): a full disk there is named as such.
        let place = body.spill_path().map(Path::to_path_buf).unwrap_or_default();
        let io = |e: std::io::Error| fail(EngineError::from_io(&place, &e));
        body.reset(
            response
                .content_length()
                .unwrap_or(0)
                .min(self.max_body_bytes),
        )
        .map_err(io)?;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_failure(url, e))?
        {
            if body.received() + chunk.len() as u64 > self.max_body_bytes {
                return Err(fail(EngineError::ProtocolError {
                    url: url.to_string(),
                    reason: format!(
                        "the answer is larger than {} bytes; raise the delivery size limit \
                         if deliveries this large are expected",
                        self.max_body_bytes
                    ),
                }));
            }
            body.write(&chunk).map_err(io)?;
        }
        Ok(())
    }

    fn transport_failure(&self, url: &Url, err: reqwest::Error) -> Failure {
        let url = url.to_string();
        let error = if err.is_timeout() {
            EngineError::Timeout {
                url,
                seconds: self.timeout.as_secs(),
            }
        } else if err.is_connect() {
            EngineError::ServerUnreachable {
                url,
                reason: error_chain(&err),
            }
        } else if err.is_decode() {
            EngineError::ProtocolError {
                url,
                reason: error_chain(&err),
            }
        } else {
            EngineError::ServerUnreachable {
                url,
                reason: error_chain(&err),
            }
        };
        Failure {
            transient: !err.is_builder() && !err.is_redirect(),
            retry_after: None,
            error,
        }
    }
}

struct Failure {
    transient: bool,
    retry_after: Option<Duration>,
    error: EngineError,
}

/// reqwest's own message is generic ("error sending request"); the cause names the real problem
/// (connection refused, certificate verify failed). URLs in it never carry the token.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let secs = (at.timestamp() - chrono::Utc::now().timestamp()).max(0);
    Some(Duration::from_secs(secs as u64))
}

/// Full jitter keeps many clients from retrying in lockstep.
fn jitter(delay: Duration) -> Duration {
    let max = delay.as_millis().max(1) as u64;
    Duration::from_millis(max / 2 + rand::random::<u64>() % (max / 2 + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(parse_retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(parse_retry_after(&h), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(parse_retry_after(&h), None);
    }

    #[test]
    fn jitter_stays_between_half_and_full_delay() {
        for _ in 0..100 {
            let j = jitter(Duration::from_millis(400));
            assert!(j >= Duration::from_millis(200) && j <= Duration::from_millis(400));
        }
    }

    #[test]
    fn pages_parse_with_optional_fields() {
        let page: Page = serde_json::from_str(
            r#"{"deliveries":[{"id":"1","system":"Prisme","fileName":"a","content":"eA==","sha256":"x"}]}"#,
        )
        .unwrap();
        assert!(!page.has_more);
        assert_eq!(page.deliveries[0].created_at, None);
        assert!(page.deliveries[0].id.is_faithful());
        // U+FFFD itself, raw or escaped, is a character like any other.
        let page: Page = serde_json::from_str(
            "{\"deliveries\":[{\"id\":\"\\ufffd\u{fffd}\",\"system\":\"Prisme\",\"content\":\"\",\"sha256\":\"x\"}]}",
        )
        .unwrap();
        assert_eq!(&*page.deliveries[0].id, "\u{fffd}\u{fffd}");
        assert!(page.deliveries[0].id.is_faithful());
    }

    #[test]
    fn lone_surrogates_and_noncharacters_do_not_make_a_page_unreadable() {
        // serde_json refuses this for a plain String: the whole page would fail, every run.
        assert!(serde_json::from_str::<String>(r#""a\ud800b""#).is_err());
        let body = "{\"deliveries\":[{\"id\":\"id\\udc00\u{ffff}\",\"system\":\"Prisme\",\
                    \"fileName\":\"a\\ud800b\\ud83f\\udfff\u{fffe}\",\"content\":\"eA==\",\
                    \"sha256\":\"x\",\"createdAt\":\"\\udbff\"}],\"hasMore\":true}";
        let page: Page = serde_json::from_str(body).unwrap();
        let d = &page.deliveries[0];
        assert_eq!(&*d.id, "id\u{fffd}\u{ffff}");
        assert!(!d.id.is_faithful(), "the server's id is not this text");
        assert_eq!(d.file_name, "a\u{fffd}b\u{1ffff}\u{fffe}");
        assert_eq!(d.created_at.as_deref(), Some("\u{fffd}"));
        assert!(matches!(&d.content, Content::Inline(c) if c == "eA=="));
        assert!(page.has_more);
        assert_eq!(
            from_wtf8(b"ok\xed\xbf\xbfx").as_deref(),
            Some("ok\u{fffd}x")
        );
        // Not UTF-8 apart from surrogates: refused, as serde_json refuses it for a String.
        assert_eq!(from_wtf8(b"ok\xff"), None);
        assert_eq!(from_wtf8(b"\xed\xa0"), None);
    }
}

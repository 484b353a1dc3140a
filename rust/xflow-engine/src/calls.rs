//! Requests that cross the FFI as JSON (`xfd_call_start`): `{"op": "...", ...}` in, JSON out.
//! One door for every question, so the C ABI does not grow with each feature. The FFI runs each
//! on a `Worker` thread, so a question stuck on the network or a hung share can be cancelled and
//! left behind.

use crate::config::RunConfig;
use crate::error::{EngineError, Result};
use crate::journal::Record;
use crate::{preflight, queries};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use tokio_util::sync::CancellationToken;

/// The request's `op`, read without copying anything else out of it (a preflight request holds
/// the API token).
pub fn op_of(request: &[u8]) -> Result<String> {
    #[derive(Deserialize)]
    struct Op<'a> {
        #[serde(borrow, default)]
        op: Cow<'a, str>,
    }
    serde_json::from_slice::<Op>(request)
        .map(|o| o.op.into_owned())
        .map_err(malformed)
}

/// Answers `request`, whose `op` names the operation:
/// - `history`: `queries::HistoryQuery` → `{"deliveries":[…]}`
/// - `status`: `queries::StatusQuery` → `queries::Status`
/// - `releaseQuarantined`: `queries::ReleaseQuery` → the released record
/// - `preflight`: `{"config": <run configuration>}` → `{"checks":[…]}`
///
/// A cancelled request ends with `Cancelled`: at once if it was cancelled before it began,
/// otherwise at the preflight's next network wait or check.
pub fn handle(op: &str, request: &[u8], cancel: &CancellationToken) -> Result<Answer> {
    if cancel.is_cancelled() {
        return Err(EngineError::Cancelled);
    }
    match op {
        "history" => Ok(Answer::History {
            deliveries: queries::history(&parse(request)?)?,
        }),
        "status" => Ok(Answer::Status(Box::new(queries::status(&parse(request)?)?))),
        "releaseQuarantined" => Ok(Answer::Released(Box::new(queries::release_quarantined(
            &parse(request)?,
        )?))),
        "preflight" => {
            // Parsed straight into the typed configuration, never through a `Value`: the token
            // goes from the request bytes into its zeroed-on-drop type and nowhere else.
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Preflight {
                #[serde(rename = "op")]
                _op: IgnoredAny,
                config: RunConfig,
            }
            let request: Preflight = serde_json::from_slice(request).map_err(malformed)?;
            Ok(Answer::Preflight {
                checks: preflight::run(request.config, cancel)?,
            })
        }
        other => Err(invalid(format!("unknown operation '{other}'"))),
    }
}

/// An answer as it is serialized, once, by the caller: never through a `serde_json::Value`,
/// whose maps cost a history of a day's 400 deliveries twice as long as the query itself.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Answer {
    History { deliveries: Vec<Record> },
    Status(Box<queries::Status>),
    Released(Box<Record>),
    Preflight { checks: Vec<preflight::Check> },
}

/// The request without its `op`, as the query type (which refuses unknown fields).
fn parse<T: DeserializeOwned>(request: &[u8]) -> Result<T> {
    let mut value: Value = serde_json::from_slice(request).map_err(malformed)?;
    if let Value::Object(map) = &mut value {
        map.remove("op");
    }
    serde_json::from_value(value).map_err(malformed)
}

fn malformed(e: serde_json::Error) -> EngineError {
    invalid(format!("malformed request: {e}"))
}

fn invalid(message: String) -> EngineError {
    EngineError::InvalidConfiguration(message)
}

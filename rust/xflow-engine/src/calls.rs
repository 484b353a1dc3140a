//! Synchronous requests that cross the FFI as JSON (`xfd_call`): `{"op": "...", ...}` in, JSON
//! out. One door for every question, so the C ABI does not grow with each feature.

use crate::config::RunConfig;
use crate::error::{EngineError, Result};
use crate::{preflight, queries};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Answers `request`, whose `op` names the operation:
/// - `history`: `queries::HistoryQuery` → `{"deliveries":[…]}`
/// - `status`: `queries::StatusQuery` → `queries::Status`
/// - `releaseQuarantined`: `queries::ReleaseQuery` → the released record
/// - `preflight`: `{"config": <run configuration>}` → `{"checks":[…]}`
pub fn handle(op: &str, mut request: Value) -> Result<Value> {
    if let Value::Object(map) = &mut request {
        map.remove("op");
    }
    match op {
        "history" => {
            let deliveries = queries::history(&parse(request)?)?;
            Ok(serde_json::json!({ "deliveries": json(&deliveries)? }))
        }
        "status" => json(&queries::status(&parse(request)?)?),
        "releaseQuarantined" => json(&queries::release_quarantined(&parse(request)?)?),
        "preflight" => {
            let config = request
                .get_mut("config")
                .map(Value::take)
                .ok_or_else(|| invalid("preflight needs a config".into()))?;
            let config: RunConfig = parse(config)?;
            Ok(serde_json::json!({ "checks": json(&preflight::run(config))? }))
        }
        other => Err(invalid(format!("unknown operation '{other}'"))),
    }
}

fn json<T: serde::Serialize>(value: &T) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| EngineError::Internal(e.to_string()))
}

fn parse<T: DeserializeOwned>(value: Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| invalid(format!("malformed request: {e}")))
}

fn invalid(message: String) -> EngineError {
    EngineError::InvalidConfiguration(message)
}

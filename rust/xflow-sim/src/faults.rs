//! Fault injection: a queue of one-shot faults, each fired on the Nth matching API request
//! counted from when it was queued, and the [`Plan`] a request handler follows once the
//! faults that fire on it are known.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Which API requests a fault counts and fires on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Target {
    Get,
    Ack,
    Any,
}

/// A validated fault with its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    Http500,
    Http503,
    Http429 {
        retry_after_sec: u64,
    },
    ResetMidBody,
    StallBody {
        stall_ms: u64,
    },
    TruncatedJson,
    HtmlBody {
        status: u16,
    },
    Gzip,
    InvalidBase64,
    WrongSha256,
    AckForgotten,
    AckFailsBeforeRecord,
    AckRecordedNoResponse,
    HasMoreForever {
        count: Option<u32>,
    },
    RedirectOtherOrigin {
        status: u16,
        location: Option<String>,
    },
    Oversize {
        size: usize,
        system: String,
    },
    UnknownSystem,
    DuplicateFileName {
        system: String,
    },
    HostileFileNames {
        system: String,
    },
    DelayMs {
        ms: u64,
    },
}

/// The API requests a kind makes sense on, and the default when `on` is omitted.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Applies {
    GetOnly,
    AckOnly,
    Either,
}

pub const KINDS: &[&str] = &[
    "http500",
    "http503",
    "http429",
    "resetMidBody",
    "stallBody",
    "truncatedJson",
    "htmlBody",
    "gzip",
    "invalidBase64",
    "wrongSha256",
    "ackForgotten",
    "ackFailsBeforeRecord",
    "ackRecordedNoResponse",
    "hasMoreForever",
    "redirectOtherOrigin",
    "oversize",
    "unknownSystem",
    "duplicateFileName",
    "hostileFileNames",
    "delayMs",
];

/// Largest `oversize` delivery accepted: it is held in memory and base64-encoded.
const MAX_OVERSIZE: u64 = 512 * 1024 * 1024;

/// Body of `POST /control/faults`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultRequest {
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<Target>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nth: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Map<String, Value>>,
}

/// Reads typed parameters and rejects unknown ones, so a typo is a 400 rather than a
/// fault that silently uses defaults.
struct Params<'a> {
    kind: &'a str,
    map: &'a Map<String, Value>,
    allowed: &'a [&'a str],
}

impl Params<'_> {
    fn check_unknown(&self) -> Result<(), String> {
        match self
            .map
            .keys()
            .find(|k| !self.allowed.contains(&k.as_str()))
        {
            Some(k) => Err(format!(
                "{}: unknown param '{k}' (allowed: {})",
                self.kind,
                if self.allowed.is_empty() {
                    "none".to_string()
                } else {
                    self.allowed.join(", ")
                }
            )),
            None => Ok(()),
        }
    }

    fn u64(&self, key: &str) -> Result<Option<u64>, String> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| {
                format!(
                    "{}: param '{key}' must be a non-negative integer",
                    self.kind
                )
            }),
        }
    }

    fn string(&self, key: &str) -> Result<Option<String>, String> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("{}: param '{key}' must be a string", self.kind)),
        }
    }

    fn status(&self, allowed: &[u16], default: u16) -> Result<u16, String> {
        match self.u64("status")? {
            None => Ok(default),
            Some(s) if allowed.iter().any(|a| u64::from(*a) == s) => Ok(s as u16),
            Some(s) => Err(format!("{}: status {s} not one of {allowed:?}", self.kind)),
        }
    }

    fn system(&self) -> Result<String, String> {
        Ok(self.string("system")?.unwrap_or_else(|| "SDLoen".into()))
    }
}

impl Fault {
    fn parse(kind: &str, map: &Map<String, Value>) -> Result<(Fault, Applies), String> {
        let p = |allowed| Params { kind, map, allowed };
        let (params, fault, applies) = match kind {
            "http500" => (p(&[]), Fault::Http500, Applies::Either),
            "http503" => (p(&[]), Fault::Http503, Applies::Either),
            "http429" => {
                let ps = p(&["retryAfterSec"]);
                let retry_after_sec = ps.u64("retryAfterSec")?.unwrap_or(1);
                (ps, Fault::Http429 { retry_after_sec }, Applies::Either)
            }
            "resetMidBody" => (p(&[]), Fault::ResetMidBody, Applies::GetOnly),
            "stallBody" => {
                let ps = p(&["stallMs"]);
                let stall_ms = ps.u64("stallMs")?.unwrap_or(60_000);
                (ps, Fault::StallBody { stall_ms }, Applies::GetOnly)
            }
            "truncatedJson" => (p(&[]), Fault::TruncatedJson, Applies::GetOnly),
            "htmlBody" => {
                let ps = p(&["status"]);
                let status = ps.status(&[200, 503], 200)?;
                (ps, Fault::HtmlBody { status }, Applies::Either)
            }
            "gzip" => (p(&[]), Fault::Gzip, Applies::GetOnly),
            "invalidBase64" => (p(&[]), Fault::InvalidBase64, Applies::GetOnly),
            "wrongSha256" => (p(&[]), Fault::WrongSha256, Applies::GetOnly),
            "ackForgotten" => (p(&[]), Fault::AckForgotten, Applies::AckOnly),
            "ackFailsBeforeRecord" => (p(&[]), Fault::AckFailsBeforeRecord, Applies::AckOnly),
            "ackRecordedNoResponse" => (p(&[]), Fault::AckRecordedNoResponse, Applies::AckOnly),
            "hasMoreForever" => {
                let ps = p(&["count"]);
                let count = match ps.u64("count")? {
                    Some(0) => return Err("hasMoreForever: count must be at least 1".into()),
                    Some(c) => {
                        Some(u32::try_from(c).map_err(|_| "hasMoreForever: count too large")?)
                    }
                    None => None,
                };
                (ps, Fault::HasMoreForever { count }, Applies::GetOnly)
            }
            "redirectOtherOrigin" => {
                let ps = p(&["status", "location"]);
                let status = ps.status(&[301, 302, 303, 307, 308], 307)?;
                let location = ps.string("location")?;
                if let Some(l) = &location
                    && !(l.starts_with("http://") || l.starts_with("https://"))
                {
                    return Err(
                        "redirectOtherOrigin: location must be an absolute http(s) URL".into(),
                    );
                }
                (
                    ps,
                    Fault::RedirectOtherOrigin { status, location },
                    Applies::Either,
                )
            }
            "oversize" => {
                let ps = p(&["size", "system"]);
                let size = ps.u64("size")?.unwrap_or(16 * 1024 * 1024);
                if size > MAX_OVERSIZE {
                    return Err(format!("oversize: size must be at most {MAX_OVERSIZE}"));
                }
                let system = ps.system()?;
                let fault = Fault::Oversize {
                    size: size as usize,
                    system,
                };
                (ps, fault, Applies::GetOnly)
            }
            "unknownSystem" => (p(&[]), Fault::UnknownSystem, Applies::GetOnly),
            "duplicateFileName" => {
                let ps = p(&["system"]);
                let system = ps.system()?;
                (ps, Fault::DuplicateFileName { system }, Applies::GetOnly)
            }
            "hostileFileNames" => {
                let ps = p(&["system"]);
                let system = ps.system()?;
                (ps, Fault::HostileFileNames { system }, Applies::GetOnly)
            }
            "delayMs" => {
                let ps = p(&["ms"]);
                let ms = ps.u64("ms")?.unwrap_or(1000);
                (ps, Fault::DelayMs { ms }, Applies::Either)
            }
            other => {
                return Err(format!(
                    "unknown fault kind '{other}' (known: {})",
                    KINDS.join(", ")
                ));
            }
        };
        params.check_unknown()?;
        Ok((fault, applies))
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Http500 => "http500",
            Fault::Http503 => "http503",
            Fault::Http429 { .. } => "http429",
            Fault::ResetMidBody => "resetMidBody",
            Fault::StallBody { .. } => "stallBody",
            Fault::TruncatedJson => "truncatedJson",
            Fault::HtmlBody { .. } => "htmlBody",
            Fault::Gzip => "gzip",
            Fault::InvalidBase64 => "invalidBase64",
            Fault::WrongSha256 => "wrongSha256",
            Fault::AckForgotten => "ackForgotten",
            Fault::AckFailsBeforeRecord => "ackFailsBeforeRecord",
            Fault::AckRecordedNoResponse => "ackRecordedNoResponse",
            Fault::HasMoreForever { .. } => "hasMoreForever",
            Fault::RedirectOtherOrigin { .. } => "redirectOtherOrigin",
            Fault::Oversize { .. } => "oversize",
            Fault::UnknownSystem => "unknownSystem",
            Fault::DuplicateFileName { .. } => "duplicateFileName",
            Fault::HostileFileNames { .. } => "hostileFileNames",
            Fault::DelayMs { .. } => "delayMs",
        }
    }
}

/// A fault waiting for its request.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueuedFault {
    pub id: u64,
    pub kind: &'static str,
    pub on: Target,
    pub nth: u32,
    /// Matching requests seen since the fault was queued.
    pub seen: u32,
    #[serde(skip)]
    fault: Fault,
}

#[derive(Default)]
pub struct FaultQueue {
    queued: Vec<QueuedFault>,
    next_id: u64,
}

impl FaultQueue {
    /// Validates and queues a fault; returns its queue entry.
    pub fn push(&mut self, req: &FaultRequest) -> Result<QueuedFault, String> {
        let empty = Map::new();
        let (fault, applies) = Fault::parse(&req.kind, req.params.as_ref().unwrap_or(&empty))?;
        let on = match (applies, req.on) {
            (Applies::GetOnly, None | Some(Target::Get)) => Target::Get,
            (Applies::AckOnly, None | Some(Target::Ack)) => Target::Ack,
            (Applies::Either, None) => Target::Any,
            (Applies::Either, Some(on)) => on,
            (Applies::GetOnly, Some(on)) => {
                return Err(format!("{}: only applies to get, not {on:?}", req.kind));
            }
            (Applies::AckOnly, Some(on)) => {
                return Err(format!("{}: only applies to ack, not {on:?}", req.kind));
            }
        };
        let nth = req.nth.unwrap_or(1);
        if nth == 0 {
            return Err("nth counts from 1".into());
        }
        self.next_id += 1;
        let entry = QueuedFault {
            id: self.next_id,
            kind: fault.kind(),
            on,
            nth,
            seen: 0,
            fault,
        };
        self.queued.push(entry.clone());
        Ok(entry)
    }

    /// Counts one API request of kind `target` (never `Any`) and removes and returns the
    /// faults that fire on it, in the order they were queued.
    pub fn fire(&mut self, target: Target) -> Vec<Fault> {
        let mut fired = Vec::new();
        self.queued.retain_mut(|q| {
            if q.on != Target::Any && q.on != target {
                return true;
            }
            q.seen += 1;
            if q.seen == q.nth {
                fired.push(q.fault.clone());
                false
            } else {
                true
            }
        });
        fired
    }

    pub fn queued(&self) -> &[QueuedFault] {
        &self.queued
    }
}

/// Responses that replace the normal handling entirely (no state change).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShortCircuit {
    Status {
        status: u16,
        retry_after_sec: Option<u64>,
    },
    Html {
        status: u16,
    },
    Redirect {
        status: u16,
        location: Option<String>,
    },
}

/// Deliveries a fault adds to the front of the pending queue before a page is taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Injection {
    Oversize { size: usize, system: String },
    UnknownSystem,
    DuplicateFileName { system: String },
    HostileFileNames { system: String },
}

/// How the response body reaches the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    ResetMidBody,
    Stall { ms: u64 },
    Truncated,
}

/// What happens to an acknowledgement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckFault {
    Forgotten,
    RecordedNoResponse,
}

/// The combined effect of every fault that fired on one request. Faults of different
/// families compose (e.g. gzip + wrongSha256); within a family the first queued wins.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub kinds: Vec<&'static str>,
    pub delay: Option<Duration>,
    pub short_circuit: Option<ShortCircuit>,
    pub inject: Vec<Injection>,
    pub invalid_base64: bool,
    pub wrong_sha256: bool,
    pub has_more_forever: Option<Option<u32>>,
    pub ack: Option<AckFault>,
    pub transport: Option<Transport>,
    pub gzip: bool,
}

impl Plan {
    pub fn new(fired: Vec<Fault>) -> Plan {
        let mut plan = Plan::default();
        for fault in fired {
            plan.kinds.push(fault.kind());
            let short = |plan: &mut Plan, sc| {
                plan.short_circuit.get_or_insert(sc);
            };
            match fault {
                Fault::Http500 | Fault::AckFailsBeforeRecord => short(
                    &mut plan,
                    ShortCircuit::Status {
                        status: 500,
                        retry_after_sec: None,
                    },
                ),
                Fault::Http503 => short(
                    &mut plan,
                    ShortCircuit::Status {
                        status: 503,
                        retry_after_sec: None,
                    },
                ),
                Fault::Http429 { retry_after_sec } => short(
                    &mut plan,
                    ShortCircuit::Status {
                        status: 429,
                        retry_after_sec: Some(retry_after_sec),
                    },
                ),
                Fault::HtmlBody { status } => short(&mut plan, ShortCircuit::Html { status }),
                Fault::RedirectOtherOrigin { status, location } => {
                    short(&mut plan, ShortCircuit::Redirect { status, location })
                }
                Fault::DelayMs { ms } => {
                    plan.delay.get_or_insert(Duration::from_millis(ms));
                }
                Fault::ResetMidBody => {
                    plan.transport.get_or_insert(Transport::ResetMidBody);
                }
                Fault::StallBody { stall_ms } => {
                    plan.transport
                        .get_or_insert(Transport::Stall { ms: stall_ms });
                }
                Fault::TruncatedJson => {
                    plan.transport.get_or_insert(Transport::Truncated);
                }
                Fault::Gzip => plan.gzip = true,
                Fault::InvalidBase64 => plan.invalid_base64 = true,
                Fault::WrongSha256 => plan.wrong_sha256 = true,
                Fault::AckForgotten => {
                    plan.ack.get_or_insert(AckFault::Forgotten);
                }
                Fault::AckRecordedNoResponse => {
                    plan.ack.get_or_insert(AckFault::RecordedNoResponse);
                }
                Fault::HasMoreForever { count } => {
                    plan.has_more_forever.get_or_insert(count);
                }
                Fault::Oversize { size, system } => {
                    plan.inject.push(Injection::Oversize { size, system })
                }
                Fault::UnknownSystem => plan.inject.push(Injection::UnknownSystem),
                Fault::DuplicateFileName { system } => {
                    plan.inject.push(Injection::DuplicateFileName { system })
                }
                Fault::HostileFileNames { system } => {
                    plan.inject.push(Injection::HostileFileNames { system })
                }
            }
        }
        plan
    }
}

/// File names a client must refuse or sanitise rather than write as-is.
pub const HOSTILE_FILE_NAMES: &[&str] = &[
    "..\\..\\evil.txt",
    "../../evil.txt",
    "/etc/passwd",
    "C:\\Windows\\System32\\evil.dll",
    "\\\\server\\share\\evil.txt",
    "CON",
    "aux.txt",
    "NUL.csv",
    "COM1",
    "LPT9.txt",
    "a:b",
    "name.",
    "name ",
    "x<y>.txt",
    "what?.txt",
    "pipe|name.txt",
    "star*.txt",
    "quote\".txt",
    "ctrl\u{1}\u{1f}.txt",
    "new\nline.txt",
    ".hidden",
    "x.partial",
    "",
    ".",
    "..",
    "nonchar\u{ffff}.txt",
    "\u{fffe}reversed.txt",
    "fdd0\u{fdd0}.txt",
    "plane1\u{1ffff}.txt",
    "lone{lone-surrogate:d800}high.txt",
    "lone{lone-surrogate:dc00}low.txt",
];

/// In a file name or id, `{lone-surrogate:XXXX}` (XXXX from D800 to DFFF) is sent as the JSON
/// escape `\uXXXX`, a lone surrogate.
pub const LONE_SURROGATE_MARK: &str = "{lone-surrogate:";

/// A name longer than any Windows path component allows (255).
pub fn very_long_file_name() -> String {
    format!("{}.txt", "L".repeat(300))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(kind: &str, on: Option<Target>, nth: Option<u32>, params: Value) -> FaultRequest {
        FaultRequest {
            kind: kind.into(),
            on,
            nth,
            params: params.as_object().cloned(),
        }
    }

    #[test]
    fn fires_on_nth_matching_request_only_once() {
        let mut q = FaultQueue::default();
        q.push(&req("http500", Some(Target::Get), Some(2), Value::Null))
            .unwrap();
        assert!(q.fire(Target::Ack).is_empty());
        assert!(q.fire(Target::Get).is_empty());
        assert_eq!(q.fire(Target::Get), vec![Fault::Http500]);
        assert!(q.fire(Target::Get).is_empty());
        assert!(q.queued().is_empty());
    }

    #[test]
    fn validates_kind_params_and_target() {
        let mut q = FaultQueue::default();
        assert!(q.push(&req("nope", None, None, Value::Null)).is_err());
        assert!(
            q.push(&req("http429", None, None, serde_json::json!({"retry": 1})))
                .is_err()
        );
        assert!(
            q.push(&req("ackForgotten", Some(Target::Get), None, Value::Null))
                .is_err()
        );
        assert!(q.push(&req("gzip", None, Some(0), Value::Null)).is_err());
        let e = q
            .push(&req(
                "http429",
                None,
                None,
                serde_json::json!({"retryAfterSec": 7}),
            ))
            .unwrap();
        assert_eq!(e.on, Target::Any);
        assert_eq!(
            q.fire(Target::Ack),
            vec![Fault::Http429 { retry_after_sec: 7 }]
        );
    }

    #[test]
    fn plan_composes_families() {
        let plan = Plan::new(vec![
            Fault::Gzip,
            Fault::WrongSha256,
            Fault::Http503,
            Fault::Http500,
        ]);
        assert!(plan.gzip && plan.wrong_sha256);
        assert_eq!(
            plan.short_circuit,
            Some(ShortCircuit::Status {
                status: 503,
                retry_after_sec: None
            })
        );
        assert_eq!(plan.kinds, ["gzip", "wrongSha256", "http503", "http500"]);
    }
}

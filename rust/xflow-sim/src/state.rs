//! The simulated XFlow backlog: deliveries in enqueue order, what was handed out and
//! acknowledged, the queued faults and a bounded log of API requests.

use std::{
    borrow::Cow,
    collections::{BTreeMap, HashMap, VecDeque},
    sync::{Arc, OnceLock},
};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    faults::{FaultQueue, HOSTILE_FILE_NAMES, Injection, very_long_file_name},
    samples::{GenSpec, SampleKind, SplitMix64, TextEncoding, random_bytes},
};

/// Oldest entries are dropped beyond this, so benchmarks cannot grow the log unbounded.
pub const REQUEST_LOG_CAPACITY: usize = 10_000;
pub const DEFAULT_PAGE_SIZE: usize = 100;
pub const MAX_PAGE_SIZE: usize = 100_000;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// Deliveries are handed out again until acknowledged.
    #[default]
    Ack,
    /// A delivery is forgotten as soon as it has been returned once.
    None,
}

enum Content {
    Bytes(Vec<u8>),
    /// Rendered on demand so that generating 50 000 deliveries is instant.
    Generated(GenSpec),
}

pub struct Delivery {
    pub id: String,
    pub system: String,
    pub file_name: String,
    pub created_at: DateTime<Utc>,
    content: Content,
    sha256: OnceLock<String>,
    size: OnceLock<usize>,
}

impl Delivery {
    pub fn new(id: String, system: String, file_name: String, bytes: Vec<u8>) -> Self {
        Self {
            id,
            system,
            file_name,
            created_at: Utc::now(),
            content: Content::Bytes(bytes),
            sha256: OnceLock::new(),
            size: OnceLock::new(),
        }
    }

    pub fn generated(id: String, spec: GenSpec) -> Self {
        Self {
            id,
            system: spec.system.clone(),
            file_name: spec.file_name(),
            created_at: Utc::now(),
            content: Content::Generated(spec),
            sha256: OnceLock::new(),
            size: OnceLock::new(),
        }
    }

    /// The exact bytes served (before base64).
    pub fn bytes(&self) -> Cow<'_, [u8]> {
        match &self.content {
            Content::Bytes(b) => Cow::Borrowed(b),
            Content::Generated(spec) => Cow::Owned(spec.render()),
        }
    }

    /// Lowercase hex SHA-256 of `rendered`, which must be [`Self::bytes`] (cached).
    pub fn sha256(&self, rendered: &[u8]) -> &str {
        self.sha256
            .get_or_init(|| hex::encode(Sha256::digest(rendered)))
    }

    /// Digest and length, rendering a generated body at most once (both are cached).
    pub fn sha256_and_size(&self) -> (&str, usize) {
        if let (Some(sha), Some(size)) = (self.sha256.get(), self.size.get()) {
            return (sha, *size);
        }
        let bytes = self.bytes();
        let size = *self.size.get_or_init(|| bytes.len());
        (self.sha256(&bytes), size)
    }

    pub fn created_at_rfc3339(&self) -> String {
        self.created_at.to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Pending,
    Acked,
    Forgotten,
}

struct Record {
    delivery: Arc<Delivery>,
    /// Key in `SimState::pending` while pending.
    pos: i64,
    handed_out: u32,
    /// The API request (log seq) that last handed it out: tells a harness which page a
    /// delivery travelled on.
    last_handed_out_in: Option<u64>,
    acks: u32,
    status: Status,
    /// Fault-injected deliveries ignore the `systems` filter: they exist to be seen.
    bypass_filter: bool,
}

impl Record {
    fn state_name(&self) -> &'static str {
        match self.status {
            Status::Pending if self.handed_out > 0 => "handedOut",
            Status::Pending => "pending",
            Status::Acked => "acked",
            Status::Forgotten => "forgotten",
        }
    }
}

/// One API request as seen by the simulator, with the auth header value redacted.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggedRequest {
    pub seq: u64,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// None while in flight, or when the connection was dropped without a response.
    pub status: Option<u16>,
    pub faults: Vec<&'static str>,
    pub headers: BTreeMap<String, String>,
}

/// A request that reached the "other origin" listener a redirect fault points at.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OtherOriginRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub auth_header_present: bool,
    pub headers: BTreeMap<String, String>,
}

pub struct Page {
    pub deliveries: Vec<Arc<Delivery>>,
    pub has_more: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("delivery id '{0}' already exists")]
pub struct DuplicateId(pub String);

pub struct SimState {
    mode: Mode,
    page_size: usize,
    default_page_size: usize,
    records: Vec<Record>,
    index: HashMap<String, usize>,
    /// Pending records by queue position; injected deliveries get negative positions so
    /// they come first.
    pending: BTreeMap<i64, usize>,
    next_back: i64,
    next_front: i64,
    pub faults: FaultQueue,
    /// Some(None): forever until reset; Some(Some(n)): n more GET responses.
    has_more_forever: Option<Option<u32>>,
    log: VecDeque<LoggedRequest>,
    next_log_seq: u64,
    other_origin_log: VecDeque<OtherOriginRequest>,
    /// File sequence numbers for generated and injected deliveries.
    next_file_seq: u64,
}

impl SimState {
    pub fn new(default_page_size: usize) -> Self {
        Self {
            mode: Mode::Ack,
            page_size: default_page_size,
            default_page_size,
            records: Vec::new(),
            index: HashMap::new(),
            pending: BTreeMap::new(),
            next_back: 0,
            next_front: -1,
            faults: FaultQueue::default(),
            has_more_forever: None,
            log: VecDeque::new(),
            next_log_seq: 0,
            other_origin_log: VecDeque::new(),
            next_file_seq: 1,
        }
    }

    pub fn reset(&mut self) {
        *self = SimState::new(self.default_page_size);
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn page_size(&self) -> usize {
        self.page_size
    }

    pub fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
    }

    pub fn set_page_size(&mut self, size: usize) {
        self.page_size = size;
    }

    /// Reserves `n` consecutive file sequence numbers and returns the first.
    pub fn reserve_file_seqs(&mut self, n: u64) -> u64 {
        let first = self.next_file_seq;
        self.next_file_seq += n;
        first
    }

    /// Adds deliveries at the back of the queue; all-or-nothing on duplicate ids.
    pub fn enqueue(&mut self, deliveries: Vec<Delivery>) -> Result<Vec<String>, DuplicateId> {
        let mut seen = std::collections::HashSet::new();
        for d in &deliveries {
            if self.index.contains_key(&d.id) || !seen.insert(d.id.as_str()) {
                return Err(DuplicateId(d.id.clone()));
            }
        }
        Ok(deliveries
            .into_iter()
            .map(|d| {
                let pos = self.next_back;
                self.next_back += 1;
                self.insert(d, pos, false)
            })
            .collect())
    }

    fn insert(&mut self, d: Delivery, pos: i64, bypass_filter: bool) -> String {
        let id = d.id.clone();
        let idx = self.records.len();
        self.records.push(Record {
            delivery: Arc::new(d),
            pos,
            handed_out: 0,
            last_handed_out_in: None,
            acks: 0,
            status: Status::Pending,
            bypass_filter,
        });
        self.index.insert(id.clone(), idx);
        self.pending.insert(pos, idx);
        id
    }

    /// Puts fault-made deliveries at the front of the queue, keeping their order.
    pub fn inject(&mut self, injection: &Injection) {
        let deliveries = self.injected_deliveries(injection);
        for d in deliveries.into_iter().rev() {
            let pos = self.next_front;
            self.next_front -= 1;
            self.insert(d, pos, true);
        }
    }

    fn injected_deliveries(&mut self, injection: &Injection) -> Vec<Delivery> {
        let seq = self.reserve_file_seqs(1);
        let date = Utc::now().date_naive();
        let mut rng = SplitMix64::new(seq);
        let text = |s: &str| s.as_bytes().to_vec();
        match injection {
            Injection::Oversize { size, system } => vec![Delivery::new(
                new_id(),
                system.clone(),
                crate::samples::file_name(system, date, seq),
                random_bytes(&mut rng, *size),
            )],
            Injection::UnknownSystem => vec![Delivery::new(
                new_id(),
                "Unknown".into(),
                crate::samples::file_name("Unknown", date, seq),
                text("unknown system payload\r\n"),
            )],
            Injection::DuplicateFileName { system } => {
                let name = crate::samples::file_name(system, date, seq);
                vec![
                    Delivery::new(
                        new_id(),
                        system.clone(),
                        name.clone(),
                        text("first;Æble\r\n"),
                    ),
                    Delivery::new(new_id(), system.clone(), name, text("second;Østers\r\n")),
                ]
            }
            Injection::HostileFileNames { system } => HOSTILE_FILE_NAMES
                .iter()
                .map(|n| n.to_string())
                .chain(std::iter::once(very_long_file_name()))
                .map(|name| {
                    let body = format!("hostile name test: {name:?}\r\n");
                    Delivery::new(new_id(), system.clone(), name, body.into_bytes())
                })
                .collect(),
        }
    }

    pub fn start_has_more_forever(&mut self, count: Option<u32>) {
        self.has_more_forever = Some(count);
    }

    /// The first `limit` pending deliveries matching `systems`, in queue order, handed out by
    /// API request `request_seq`. In mode None they are forgotten right away.
    pub fn take_page(
        &mut self,
        systems: Option<&[String]>,
        limit: usize,
        request_seq: u64,
    ) -> Page {
        let records = &self.records;
        let matches = |idx: usize| {
            let r = &records[idx];
            r.bypass_filter || systems.is_none_or(|s| s.contains(&r.delivery.system))
        };
        let mut picked: Vec<(i64, usize)> = Vec::with_capacity(limit.min(1024));
        let mut has_more = false;
        for (&pos, &idx) in &self.pending {
            if !matches(idx) {
                continue;
            }
            if picked.len() == limit {
                has_more = true;
                break;
            }
            picked.push((pos, idx));
        }
        let mut deliveries = Vec::with_capacity(picked.len());
        for (pos, idx) in picked {
            let r = &mut self.records[idx];
            r.handed_out += 1;
            r.last_handed_out_in = Some(request_seq);
            if self.mode == Mode::None {
                r.status = Status::Forgotten;
                self.pending.remove(&pos);
            }
            deliveries.push(r.delivery.clone());
        }
        if let Some(remaining) = self.has_more_forever {
            has_more = true;
            self.has_more_forever = match remaining {
                Some(n) if n <= 1 => None,
                Some(n) => Some(Some(n - 1)),
                None => Some(None),
            };
        }
        Page {
            deliveries,
            has_more,
        }
    }

    /// Records acknowledgements; unknown ids and repeats are harmless.
    pub fn ack(&mut self, ids: &[String]) {
        for id in ids {
            let Some(&idx) = self.index.get(id) else {
                continue;
            };
            let r = &mut self.records[idx];
            r.acks += 1;
            if r.status == Status::Pending {
                r.status = Status::Acked;
                self.pending.remove(&r.pos);
            }
        }
    }

    pub fn log_start(
        &mut self,
        method: String,
        path: String,
        query: Option<String>,
        headers: BTreeMap<String, String>,
    ) -> u64 {
        let seq = self.next_log_seq;
        self.next_log_seq += 1;
        if self.log.len() == REQUEST_LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(LoggedRequest {
            seq,
            method,
            path,
            query,
            status: None,
            faults: Vec::new(),
            headers,
        });
        seq
    }

    fn log_entry(&mut self, seq: u64) -> Option<&mut LoggedRequest> {
        let first = self.log.front()?.seq;
        self.log
            .get_mut(usize::try_from(seq.checked_sub(first)?).ok()?)
    }

    pub fn log_status(&mut self, seq: u64, status: u16) {
        if let Some(e) = self.log_entry(seq) {
            e.status = Some(status);
        }
    }

    pub fn log_faults(&mut self, seq: u64, kinds: &[&'static str]) {
        if let Some(e) = self.log_entry(seq) {
            e.faults.extend_from_slice(kinds);
        }
    }

    pub fn log_other_origin(&mut self, req: OtherOriginRequest) {
        if self.other_origin_log.len() == REQUEST_LOG_CAPACITY {
            self.other_origin_log.pop_front();
        }
        self.other_origin_log.push_back(req);
    }

    /// The `GET /control/state` document, without `deliveries` (see [`Self::delivery_rows`]).
    pub fn snapshot(&self, summary: bool, other_origin_url: &str) -> serde_json::Value {
        let mut pending = Vec::with_capacity(self.pending.len());
        pending.extend(
            self.pending
                .values()
                .map(|&i| self.records[i].delivery.id.clone()),
        );
        let mut handed_out = BTreeMap::new();
        let mut acked = BTreeMap::new();
        let mut counts: BTreeMap<&str, usize> = ["pending", "handedOut", "acked", "forgotten"]
            .into_iter()
            .map(|k| (k, 0))
            .collect();
        for r in &self.records {
            if r.handed_out > 0 {
                handed_out.insert(r.delivery.id.clone(), r.handed_out);
            }
            if r.acks > 0 {
                acked.insert(r.delivery.id.clone(), r.acks);
            }
            *counts.entry(r.state_name()).or_default() += 1;
        }
        let mut doc = serde_json::json!({
            "mode": self.mode,
            "pageSize": self.page_size,
            "total": self.records.len(),
            "counts": counts,
            "pending": pending,
            "handedOut": handed_out,
            "acked": acked,
            "faults": self.faults.queued(),
            "hasMoreForever": match self.has_more_forever {
                None => serde_json::Value::Bool(false),
                Some(None) => serde_json::Value::Bool(true),
                Some(Some(n)) => serde_json::json!({ "remaining": n }),
            },
            "requestCount": self.next_log_seq,
            "otherOrigin": {
                "url": other_origin_url,
                "requests": self.other_origin_log,
            },
        });
        if !summary {
            doc["requests"] = serde_json::to_value(&self.log).unwrap_or_default();
        }
        doc
    }

    /// Per-delivery rows for the state document. Rendering them (digests of generated
    /// bodies) is left to the caller so it can happen outside the lock.
    pub fn delivery_rows(&self) -> Vec<DeliveryRow> {
        self.records
            .iter()
            .map(|r| DeliveryRow {
                delivery: r.delivery.clone(),
                state: r.state_name(),
                handed_out: r.handed_out,
                last_handed_out_in: r.last_handed_out_in,
                acks: r.acks,
            })
            .collect()
    }
}

pub struct DeliveryRow {
    delivery: Arc<Delivery>,
    state: &'static str,
    handed_out: u32,
    last_handed_out_in: Option<u64>,
    acks: u32,
}

impl DeliveryRow {
    pub fn to_json(&self) -> serde_json::Value {
        let d = &self.delivery;
        let (sha256, size) = d.sha256_and_size();
        serde_json::json!({
            "id": d.id,
            "system": d.system,
            "fileName": d.file_name,
            "sha256": sha256,
            "size": size,
            "state": self.state,
            "handedOutCount": self.handed_out,
            "lastHandedOutIn": self.last_handed_out_in,
            "ackCount": self.acks,
        })
    }
}

/// Builds a lazily rendered delivery for `generate`.
pub fn generated_delivery(
    kind: SampleKind,
    system: &str,
    seed: u64,
    seq: u64,
    size: usize,
    encoding: TextEncoding,
) -> Delivery {
    Delivery::generated(
        new_id(),
        GenSpec {
            kind,
            system: system.to_string(),
            seed,
            seq,
            size,
            encoding,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(id: &str, system: &str) -> Delivery {
        Delivery::new(
            id.into(),
            system.into(),
            format!("{id}.txt"),
            id.as_bytes().to_vec(),
        )
    }

    fn ids(page: &Page) -> Vec<&str> {
        page.deliveries.iter().map(|d| d.id.as_str()).collect()
    }

    #[test]
    fn ack_mode_repeats_until_acked() {
        let mut s = SimState::new(2);
        s.enqueue(vec![
            text("a", "SDLoen"),
            text("b", "Prisme"),
            text("c", "SDLoen"),
        ])
        .unwrap();
        let p = s.take_page(None, 2, 0);
        assert_eq!(ids(&p), ["a", "b"]);
        assert!(p.has_more);
        assert_eq!(ids(&s.take_page(None, 2, 1)), ["a", "b"]);
        s.ack(&["a".into(), "zzz".into()]);
        s.ack(&["a".into()]);
        let p = s.take_page(None, 2, 2);
        assert_eq!(ids(&p), ["b", "c"]);
        assert!(!p.has_more);
        let filtered = s.take_page(Some(&["SDLoen".into()]), 5, 3);
        assert_eq!(ids(&filtered), ["c"]);
        let snap = s.snapshot(false, "x");
        assert_eq!(snap["acked"]["a"], 2);
        assert_eq!(snap["handedOut"]["b"], 3);
        let rows: Vec<_> = s.delivery_rows().iter().map(DeliveryRow::to_json).collect();
        assert_eq!(rows[0]["lastHandedOutIn"], 1);
        assert_eq!(rows[1]["lastHandedOutIn"], 2);
        assert_eq!(rows[2]["lastHandedOutIn"], 3);
    }

    #[test]
    fn none_mode_drains() {
        let mut s = SimState::new(100);
        s.set_mode(Mode::None);
        s.enqueue(vec![text("a", "SDLoen"), text("b", "SDLoen")])
            .unwrap();
        assert_eq!(ids(&s.take_page(None, 1, 7)), ["a"]);
        assert_eq!(ids(&s.take_page(None, 1, 8)), ["b"]);
        assert!(s.take_page(None, 1, 9).deliveries.is_empty());
        let a = s.delivery_rows()[0].to_json();
        assert_eq!(a["state"], "forgotten");
        assert_eq!(a["lastHandedOutIn"], 7, "the page a was forgotten on");
    }

    #[test]
    fn duplicate_ids_rejected_atomically() {
        let mut s = SimState::new(100);
        s.enqueue(vec![text("a", "SDLoen")]).unwrap();
        assert!(
            s.enqueue(vec![text("b", "SDLoen"), text("a", "SDLoen")])
                .is_err()
        );
        assert!(
            s.enqueue(vec![text("c", "SDLoen"), text("c", "SDLoen")])
                .is_err()
        );
        assert_eq!(s.snapshot(true, "x")["total"], 1);
    }

    #[test]
    fn injected_deliveries_come_first_and_bypass_filter() {
        let mut s = SimState::new(100);
        s.enqueue(vec![text("a", "SDLoen")]).unwrap();
        s.inject(&Injection::UnknownSystem);
        let p = s.take_page(Some(&["SDLoen".into()]), 10, 0);
        assert_eq!(p.deliveries[0].system, "Unknown");
        assert_eq!(p.deliveries[1].id, "a");
    }

    #[test]
    fn request_log_is_bounded() {
        let mut s = SimState::new(100);
        for _ in 0..REQUEST_LOG_CAPACITY + 5 {
            let seq = s.log_start("GET".into(), "/".into(), None, BTreeMap::new());
            s.log_status(seq, 200);
        }
        assert_eq!(s.log.len(), REQUEST_LOG_CAPACITY);
        assert_eq!(s.log.back().unwrap().status, Some(200));
    }
}

//! Shared harness for the engine's integration tests: an in-process simulator (real TLS on a
//! free loopback port), fresh import and state folders, and a blocking driver for a run.
#![allow(dead_code)] // each test binary uses a different subset

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;
use xflow_engine::{Event, NextEvent, Outcome, Run, RunConfig, Summary};
use xflow_sim::{ControlClient, RunningSim, SimConfig, Simulator};

pub const TOKEN: &str = "engine-test-token-7f3a";

pub struct Env {
    pub sim: RunningSim,
    pub control: ControlClient,
    pub dir: tempfile::TempDir,
    pub sd_loen: PathBuf,
    pub prisme: PathBuf,
    pub state: PathBuf,
}

pub async fn env() -> Env {
    let sim = Simulator::start(SimConfig {
        token: TOKEN.into(),
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts");
    let control = sim.control().expect("control client");
    let dir = tempfile::tempdir().unwrap();
    let sd_loen = dir.path().join("SD Løn import");
    let prisme = dir.path().join("Prisme import");
    std::fs::create_dir_all(&sd_loen).unwrap();
    std::fs::create_dir_all(&prisme).unwrap();
    let state = dir.path().join("state");
    Env {
        sim,
        control,
        dir,
        sd_loen,
        prisme,
        state,
    }
}

/// What one run reported.
pub struct Report {
    pub events: Vec<Event>,
    /// None when the run thread died (a fail point panicked).
    pub summary: Option<Summary>,
}

impl Report {
    /// Asserts the run's outcome (showing every event when it differs) and returns the summary.
    pub fn expect(&self, outcome: Outcome, context: &str) -> &Summary {
        let summary = self.summary();
        assert_eq!(summary.outcome, outcome, "{context}: {}", self.text());
        summary
    }
    pub fn summary(&self) -> &Summary {
        self.summary.as_ref().expect("the run ended with a summary")
    }
    pub fn error_ids(&self) -> Vec<&str> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Error(r) => Some(r.error_id),
                _ => None,
            })
            .collect()
    }
    pub fn delivered(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, Event::Delivered(_)))
            .count()
    }
    pub fn text(&self) -> String {
        format!("{:?}", self.events)
    }
}

impl Env {
    pub fn config(&self, mode: &str) -> Value {
        json!({
            "baseUrl": self.sim.base_url,
            "apiToken": TOKEN,
            "sdLoenPath": self.sd_loen,
            "prismePath": self.prisme,
            "statePath": self.state,
            "caCertificatePath": self.sim.ca_path,
            "ackMode": mode,
            "timeoutSec": 10,
        })
    }

    /// Runs the engine to its end on a blocking thread.
    pub async fn run(&self, config: Value) -> Report {
        tokio::task::spawn_blocking(move || run_blocking(config))
            .await
            .unwrap()
    }

    pub async fn run_mode(&self, mode: &str) -> Report {
        self.run(self.config(mode)).await
    }

    pub async fn enqueue(&self, deliveries: Value) -> Vec<String> {
        self.control
            .enqueue(&json!({ "deliveries": deliveries }))
            .await
            .unwrap()
    }

    pub async fn state(&self) -> Value {
        self.control.state(false).await.unwrap()
    }

    /// Queues a fault for the `nth` matching request from now.
    pub async fn fault(&self, kind: &str, nth: u32, params: Value) {
        self.control
            .fault(kind, None, Some(nth), params)
            .await
            .unwrap();
    }

    /// Every file in both import folders, hidden ones included.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut files = list(&self.sd_loen);
        files.extend(list(&self.prisme));
        files
    }
}

pub fn run_blocking(config: Value) -> Report {
    let run = Run::start(RunConfig::from_json(config.to_string().as_bytes()).unwrap())
        .expect("run starts");
    let mut events = Vec::new();
    loop {
        match run.next_event(Duration::from_secs(120)) {
            NextEvent::Event(e) => events.push(e),
            NextEvent::Timeout => panic!("no event for 120 s"),
            NextEvent::Finished => break,
        }
    }
    let summary = events.iter().rev().find_map(|e| match e {
        Event::Summary(s) => Some((**s).clone()),
        _ => None,
    });
    Report { events, summary }
}

pub fn list(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The simulator's view of each delivery: id → (sha256, state, ackCount).
pub fn server_view(state: &Value) -> Vec<(String, String, String, u64)> {
    state["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap().to_owned(),
                d["sha256"].as_str().unwrap().to_owned(),
                d["state"].as_str().unwrap().to_owned(),
                d["ackCount"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// Asserts that every delivery the server knows landed exactly once, byte-identical, and that
/// no temp file is visible.
pub fn assert_each_exactly_once(env: &Env, state: &Value) {
    let files = env.files();
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy();
        assert!(!name.ends_with(".partial"), "leftover temp file {name}");
    }
    let hashes: Vec<String> = files
        .iter()
        .map(|f| sha256_hex(&std::fs::read(f).unwrap()))
        .collect();
    for (id, sha, _, _) in server_view(state) {
        let copies = hashes.iter().filter(|h| **h == sha).count();
        assert_eq!(copies, 1, "delivery {id} landed {copies} times");
    }
}

/// Asserts that the server holds every delivery in `expected` state ("acked", "pending", …).
pub fn assert_server_states(state: &Value, expected: &str, context: &str) {
    for (id, _, server_state, _) in server_view(state) {
        assert_eq!(server_state, expected, "{context}: delivery {id}");
    }
}

//! The `xflow-sim` binary: ready line, control subcommands, clean exit.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::Value;
use xflow_sim::ReadyLine;

const BIN: &str = env!("CARGO_BIN_EXE_xflow-sim");

struct Served {
    child: Child,
    ready: ReadyLine,
    ready_file: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(extra: &[&str]) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let ready_file = dir.path().join("ready.json");
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--port",
            "0",
            "--exit-on-stdin-close",
            "--state-dir",
        ])
        .arg(dir.path().join("state"))
        .arg("--ready-file")
        .arg(&ready_file)
        .args(extra)
        .env("XFLOW_SIM_TOKEN", "cli-test-token")
        .env("XFLOW_SIM_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("ready line");
    let ready: ReadyLine = serde_json::from_str(line.trim()).expect("ready line is JSON");
    Served {
        child,
        ready,
        ready_file,
        _dir: dir,
    }
}

fn control(served: &Served, args: &[&str]) -> Value {
    let out = Command::new(BIN)
        .args(args)
        .arg("--ready-file")
        .arg(&served.ready_file)
        .env_remove("XFLOW_SIM_CONTROL_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

#[test]
fn serve_prints_exactly_the_ready_line() {
    let served = serve(&[]);
    let r = &served.ready;
    assert!(r.base_url.starts_with("https://127.0.0.1:") && r.base_url.ends_with("/api/v1"));
    assert!(r.control_url.ends_with("/control"));
    let ca = r.ca_path.as_ref().unwrap();
    assert!(ca.is_absolute() && ca.exists());
    assert_eq!(r.pid, served.child.id());
    assert_eq!(ReadyLine::read(&served.ready_file).unwrap(), *r);
    // The JSON keys are exactly the documented ones.
    let raw: Value =
        serde_json::from_str(&std::fs::read_to_string(&served.ready_file).unwrap()).unwrap();
    let mut keys: Vec<_> = raw.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["baseUrl", "caPath", "controlUrl", "pid"]);
}

#[test]
fn control_subcommands_drive_a_running_simulator() {
    let served = serve(&["--page-size", "7"]);
    let ids = control(
        &served,
        &[
            "generate",
            "--count",
            "3",
            "--systems",
            "Prisme",
            "--size",
            "200",
        ],
    );
    assert_eq!(ids["ids"].as_array().unwrap().len(), 3);
    let one = control(
        &served,
        &[
            "enqueue",
            "--system",
            "SDLoen",
            "--file-name",
            "løn.csv",
            "--text",
            "Æ;Ø",
            "--encoding",
            "windows-1252",
        ],
    );
    assert_eq!(one["ids"].as_array().unwrap().len(), 1);
    let fault = control(
        &served,
        &[
            "fault",
            "http429",
            "--on",
            "get",
            "--nth",
            "2",
            "--param",
            "retryAfterSec=5",
        ],
    );
    assert_eq!(fault["kind"], "http429");
    assert_eq!(fault["nth"], 2);
    let settings = control(&served, &["settings", "--mode", "None"]);
    assert_eq!(
        settings,
        serde_json::json!({ "mode": "None", "pageSize": 7 })
    );
    let state = control(&served, &["state", "--summary"]);
    assert_eq!(state["total"], 4);
    assert_eq!(state["faults"][0]["kind"], "http429");
    control(&served, &["reset"]);
    assert_eq!(control(&served, &["state"])["total"], 0);
}

#[test]
fn usage_errors_exit_2() {
    for args in [&["serve", "--bogus"][..], &["frobnicate"], &[], &["state"]] {
        let out = Command::new(BIN)
            .args(args)
            .env_remove("XFLOW_SIM_CONTROL_URL")
            .env_remove("XFLOW_SIM_READY_FILE")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn exits_when_stdin_closes() {
    let mut served = serve(&["--http"]);
    assert!(served.ready.base_url.starts_with("http://"));
    assert!(served.ready.ca_path.is_none());
    drop(served.child.stdin.take());
    // Bounded wait: 100 polls of 100 ms.
    for _ in 0..100 {
        if let Some(status) = served.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("simulator did not exit after stdin closed");
}

#[cfg(unix)]
#[test]
fn exits_cleanly_on_sigterm() {
    let mut served = serve(&[]);
    let status = Command::new("kill")
        .args(["-TERM", &served.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // Bounded wait: 100 polls of 100 ms.
    for _ in 0..100 {
        if let Some(status) = served.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("simulator did not exit on SIGTERM");
}

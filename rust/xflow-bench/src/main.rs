//! Micro-benchmarks behind `build.ps1 -Bench` (driven by build/Bench.ps1). Each prints one JSON
//! object on stdout. Arguments are parsed by hand: clap does not build from the offline mirror.
//!
//! `xflow-bench disk-limit --dir D [--count N] [--size BYTES] [--batches 1,10,100] [--workers 1,4]`
//!   The disk's durable-publish limit: N files published with the engine's own steps, B at a
//!   time (exclusive create, write, fsync each, staged by W threads as the engine does; then
//!   no-replace rename each; one folder fsync), for each B and W. No network, no journal, no
//!   base64: the ceiling a delivery run can approach.
//!
//! `xflow-bench drain`  (run configuration JSON on stdin, so the token never is an argument)
//!   One engine run without PowerShell, for profiling (`perf record`, `strace -c`): the
//!   summary and the wall time.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use xflow_engine::{NextEvent, Run, RunConfig, fsops, publish};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("disk-limit") => disk_limit(&args[1..]),
        Some("drain") => drain(),
        _ => Err(
            "usage: xflow-bench disk-limit --dir D [--count N] [--size BYTES] \
                  [--batches 1,10,100] [--workers 1,4] | xflow-bench drain < config.json"
                .to_owned(),
        ),
    };
    match result {
        Ok(json) => println!("{json}"),
        Err(message) => {
            eprintln!("xflow-bench: {message}");
            std::process::exit(2);
        }
    }
}

/// `--name value` pairs; every name must be one of `allowed`.
fn options<'a>(args: &'a [String], allowed: &[&str]) -> Result<Vec<(&'a str, &'a str)>, String> {
    let mut pairs = Vec::new();
    let mut it = args.iter();
    while let Some(name) = it.next() {
        let key = name
            .strip_prefix("--")
            .filter(|k| allowed.contains(k))
            .ok_or_else(|| format!("unknown option '{name}'"))?;
        let value = it.next().ok_or_else(|| format!("{name} needs a value"))?;
        pairs.push((key, value.as_str()));
    }
    Ok(pairs)
}

fn parse<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("--{name}: '{value}' is not a valid number"))
}

fn disk_limit(args: &[String]) -> Result<serde_json::Value, String> {
    let mut dir: Option<PathBuf> = None;
    let (mut count, mut size) = (5000usize, 4096usize);
    let mut batches = vec![1usize, 10, 100];
    let mut workers = vec![1usize, publish::STAGING_WORKERS];
    let list = |key: &str, value: &str| -> Result<Vec<usize>, String> {
        value
            .split(',')
            .map(|b| parse::<usize>(key, b.trim()))
            .collect()
    };
    for (key, value) in options(args, &["dir", "count", "size", "batches", "workers"])? {
        match key {
            "dir" => dir = Some(PathBuf::from(value)),
            "count" => count = parse(key, value)?,
            "size" => size = parse(key, value)?,
            "batches" => batches = list(key, value)?,
            _ => workers = list(key, value)?,
        }
    }
    let dir = dir.ok_or("--dir is required")?;
    if count == 0 || batches.contains(&0) || workers.contains(&0) {
        return Err("--count, every batch and every worker count must be at least 1".into());
    }
    // Deterministic, incompressible-looking bytes; what they are does not matter to the disk.
    let content: Vec<u8> = (0..size).map(|i| (i * 131 % 251) as u8).collect();
    let mut results = Vec::new();
    for &threads in &workers {
        for &batch in &batches {
            let folder = dir.join(format!("batch-{batch}-workers-{threads}"));
            std::fs::create_dir_all(&folder).map_err(|e| format!("{}: {e}", folder.display()))?;
            let elapsed = publish_files(&folder, count, &content, batch, threads)?;
            results.push(serde_json::json!({
                "batch": batch,
                "workers": threads,
                "seconds": elapsed.as_secs_f64(),
                "filesPerSec": count as f64 / elapsed.as_secs_f64(),
            }));
            std::fs::remove_dir_all(&folder).map_err(|e| format!("{}: {e}", folder.display()))?;
        }
    }
    let best = results
        .iter()
        .max_by(|a, b| {
            a["filesPerSec"]
                .as_f64()
                .partial_cmp(&b["filesPerSec"].as_f64())
                .unwrap()
        })
        .cloned();
    Ok(serde_json::json!({
        "count": count,
        "size": size,
        "dir": dir.display().to_string(),
        "batches": results,
        "best": best,
    }))
}

/// The engine's publish protocol without network or journal, `batch` files at a time: stage
/// each on `workers` threads (`publish::stage_all` of `publish::stage`: exclusive create, write,
/// fsync), rename each into place (`publish::commit`), then flush the folder once
/// (`fsops::sync_dir`). Batch 1 with 1 worker is the naive one-file-at-a-time protocol; the
/// engine publishes a page per batch with `publish::STAGING_WORKERS`.
fn publish_files(
    folder: &Path,
    count: usize,
    content: &[u8],
    batch: usize,
    workers: usize,
) -> Result<Duration, String> {
    let started = Instant::now();
    for first in (0..count).step_by(batch) {
        let ids: Vec<usize> = (first..(first + batch).min(count)).collect();
        let staged = publish::stage_all(&ids, workers, |i| {
            publish::stage(folder, "bench", &format!("bench-{i}"), &mut &content[..])
        });
        for (i, s) in ids.iter().zip(staged) {
            let s = s.map_err(|e| e.to_string())?;
            publish::commit(&s, &format!("file_{i:06}.csv")).map_err(|e| e.to_string())?;
        }
        fsops::sync_dir(folder).map_err(|e| format!("{}: {e}", folder.display()))?;
    }
    Ok(started.elapsed())
}

fn drain() -> Result<serde_json::Value, String> {
    let mut config = Vec::new();
    std::io::stdin()
        .read_to_end(&mut config)
        .map_err(|e| format!("reading the configuration from stdin: {e}"))?;
    let config = RunConfig::from_json(&config).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let run = Run::start(config).map_err(|e| e.to_string())?;
    let mut summary = serde_json::Value::Null;
    // Bounded by the engine's own run deadline: the run always ends with a summary.
    loop {
        match run.next_event(Duration::from_millis(200)) {
            NextEvent::Event(xflow_engine::Event::Summary(s)) => {
                summary = serde_json::to_value(&s).map_err(|e| e.to_string())?
            }
            NextEvent::Event(_) | NextEvent::Timeout => {}
            NextEvent::Finished => break,
        }
    }
    Ok(serde_json::json!({
        "seconds": started.elapsed().as_secs_f64(),
        "summary": summary,
    }))
}

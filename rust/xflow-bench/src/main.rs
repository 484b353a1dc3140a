//! Micro-benchmarks behind `build.ps1 -Bench` (driven by build/Bench.ps1). Each prints one JSON
//! object on stdout. Arguments are parsed by hand: clap does not build from the offline mirror.
//!
//! `xflow-bench disk-limit --dir D [--count N] [--size BYTES] [--methods fsync,sfr,syncfs,odsync]
//!   [--batches 1,10,100] [--workers 1,4]`
//!   The disk's durable-publish limit: N files published B at a time (exclusive create, write,
//!   made durable by one of the methods below, no-replace rename each, the renames flushed), for
//!   each method, B and W. No network, no journal, no base64: the ceiling a delivery run can
//!   approach. `fsync` is the engine's own staging; the others are what else Linux offers.
//!   The files are left in place (see `disk_limit`).
//!
//! `xflow-bench year-journal --state D --sd-loen D --prisme D [--runs 175000]
//!   [--deliveries 150000] [--quarantined 3] [--days 365] [--only-last-days N]`
//!   Writes the journal a state folder has after a year of runs every 3 minutes: finished runs
//!   and acknowledged deliveries spread over the last `days` days (the newest now), a few
//!   quarantined deliveries with their documents. Prints the state folder's size. With
//!   `--only-last-days`, only the runs and deliveries of those last days are written (the same
//!   rows, at the same times): a baseline that answers "the last day" with the same output as
//!   the whole year, but without the year behind it.
//!
//! `xflow-bench drain`  (run configuration JSON on stdin, so the token never is an argument)
//!   One engine run without PowerShell, for profiling (`perf record`, `strace -c`): the
//!   summary and the wall time.
//!
//! `xflow-bench server-limit`  (run configuration JSON on stdin)
//!   The server's and the protocol's share of a drain: the backlog fetched page by page with
//!   the engine's HTTPS client, each page read and acknowledged whole, nothing validated,
//!   written or journaled. A drain must do this and publish the files; in mode Ack it cannot
//!   fetch a page before the last one is acknowledged (the server hands out unacknowledged
//!   deliveries again), so the two add up.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use xflow_engine::protocol::Client;
use xflow_engine::{NextEvent, Run, RunConfig, System, fsops, parallel, publish};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("disk-limit") => disk_limit(&args[1..]),
        Some("drain") => drain(),
        Some("server-limit") => server_limit(),
        Some("year-journal") => year_journal(&args[1..]),
        _ => Err(
            "usage: xflow-bench disk-limit --dir D [--count N] [--size BYTES] \
                  [--methods fsync,sfr,syncfs,odsync] [--batches 1,10,100] [--workers 1,4] \
                  | xflow-bench drain < config.json \
                  | xflow-bench server-limit < config.json \
                  | xflow-bench year-journal --state D --sd-loen D --prisme D [--runs N] \
                  [--deliveries N] [--quarantined N] [--days N] [--only-last-days N]"
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
    let mut methods = vec![Method::Fsync];
    let mut batches = vec![1usize, 10, 100];
    let mut workers = vec![1usize, publish::STAGING_WORKERS];
    let list = |key: &str, value: &str| -> Result<Vec<usize>, String> {
        value
            .split(',')
            .map(|b| parse::<usize>(key, b.trim()))
            .collect()
    };
    for (key, value) in options(
        args,
        &["dir", "count", "size", "methods", "batches", "workers"],
    )? {
        match key {
            "dir" => dir = Some(PathBuf::from(value)),
            "count" => count = parse(key, value)?,
            "size" => size = parse(key, value)?,
            "methods" => {
                methods = value
                    .split(',')
                    .map(|m| Method::parse(m.trim()))
                    .collect::<Result<_, _>>()?
            }
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
    for &method in &methods {
        for &threads in &workers {
            for &batch in &batches {
                let folder = dir.join(format!("{}-batch-{batch}-workers-{threads}", method.name()));
                std::fs::create_dir_all(&folder)
                    .map_err(|e| format!("{}: {e}", folder.display()))?;
                let elapsed = publish_files(method, &folder, count, &content, batch, threads)?;
                // The files stay: deleting thousands of files right before the next measurement
                // slows its file creation (the caller removes the whole folder at the end).
                results.push(serde_json::json!({
                    "method": method.name(),
                    "batch": batch,
                    "workers": threads,
                    "seconds": elapsed.as_secs_f64(),
                    "filesPerSec": count as f64 / elapsed.as_secs_f64(),
                }));
            }
        }
    }
    Ok(serde_json::json!({
        "count": count,
        "size": size,
        "dir": dir.display().to_string(),
        "results": results,
    }))
}

/// How a batch of staged files is made durable before the renames. Each ends with every file
/// complete on stable storage, and each batch's renames are flushed before the next batch.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Method {
    /// `publish::stage` (exclusive create, write, fsync) on W threads, then `publish::commit`
    /// and one `fsops::sync_dir` per batch.
    Fsync,
    /// The engine's own for a page: `publish::stage_pieces` on W threads under a
    /// `publish::BatchFlush` (Linux ext4, XFS, Btrfs: one `syncfs`; elsewhere each file's
    /// fsync), then `publish::commit` and one `fsops::sync_dir` per batch.
    Engine,
    /// Linux: write every file of the batch, start their writeback together with
    /// `sync_file_range(SYNC_FILE_RANGE_WRITE)`, then `fdatasync` each (the flushes find the
    /// I/O already under way); renames, one folder fsync.
    SyncFileRange,
    /// Linux: write every file of the batch, one `syncfs` for all of them (it flushes the whole
    /// file system, other processes' dirty data included); renames, one more `syncfs`.
    Syncfs,
    /// Linux: files opened with `O_DSYNC`, so each write returns once durable; W threads;
    /// renames, one folder fsync.
    Odsync,
}

impl Method {
    fn parse(name: &str) -> Result<Method, String> {
        let method = match name {
            "fsync" => Method::Fsync,
            "engine" => Method::Engine,
            "sfr" => Method::SyncFileRange,
            "syncfs" => Method::Syncfs,
            "odsync" => Method::Odsync,
            other => {
                return Err(format!(
                    "--methods: unknown method '{other}' (fsync, engine, sfr, syncfs, odsync)"
                ));
            }
        };
        if !matches!(method, Method::Fsync | Method::Engine) && !cfg!(target_os = "linux") {
            return Err(format!("--methods: '{name}' exists on Linux only"));
        }
        Ok(method)
    }

    fn name(self) -> &'static str {
        match self {
            Method::Fsync => "fsync",
            Method::Engine => "engine",
            Method::SyncFileRange => "sfr",
            Method::Syncfs => "syncfs",
            Method::Odsync => "odsync",
        }
    }
}

/// The engine's publish protocol without network or journal, `batch` files at a time: stage
/// them durably with `method` (on `workers` threads where the method has threads), rename each
/// into place (`publish::commit`), then flush the folder once. Fsync with batch 1 and 1 worker is
/// the naive one-file-at-a-time protocol; the engine publishes a page per batch with
/// `publish::STAGING_WORKERS`.
fn publish_files(
    method: Method,
    folder: &Path,
    count: usize,
    content: &[u8],
    batch: usize,
    workers: usize,
) -> Result<Duration, String> {
    let started = Instant::now();
    for first in (0..count).step_by(batch) {
        let ids: Vec<usize> = (first..(first + batch).min(count)).collect();
        let staged: Vec<publish::StagedFile> = match method {
            Method::Fsync => parallel::map_in_order(&ids, workers, |i| {
                publish::stage(folder, "bench", &format!("bench-{i}"), &mut &content[..])
            })
            .into_iter()
            .map(|s| s.map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?,
            Method::Engine => {
                let flush = publish::BatchFlush::begin([folder]);
                let staged = parallel::map_in_order(&ids, workers, |i| {
                    publish::stage_pieces(
                        folder,
                        "bench",
                        &format!("bench-{i}"),
                        content.len() as u64,
                        flush.flush_for(folder),
                        &mut |sink| sink(content),
                    )
                })
                .into_iter()
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())?;
                flush.finish().map_err(|e| e.to_string())?;
                staged
            }
            #[cfg(target_os = "linux")]
            _ => linux::stage_batch(method, folder, &ids, content, workers)
                .map_err(|e| format!("{}: {e}", folder.display()))?,
            #[cfg(not(target_os = "linux"))]
            _ => unreachable!("Method::parse admits fsync and engine only off Linux"),
        };
        let never = xflow_engine::CancellationToken::new();
        for (i, s) in ids.iter().zip(&staged) {
            publish::commit(s, &format!("file_{i:06}.csv"), &never).map_err(|e| e.to_string())?;
        }
        let flushed = match method {
            #[cfg(target_os = "linux")]
            Method::Syncfs => linux::syncfs(folder),
            _ => fsops::sync_dir(folder),
        };
        flushed.map_err(|e| format!("{}: {e}", folder.display()))?;
    }
    Ok(started.elapsed())
}

#[cfg(target_os = "linux")]
mod linux {
    use super::Method;
    use std::fs::File;
    use std::io::{self, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    use std::path::Path;
    use xflow_engine::parallel;
    use xflow_engine::publish::{self, StagedFile};

    fn check(rc: libc::c_int) -> io::Result<()> {
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    pub fn syncfs(path: &Path) -> io::Result<()> {
        let dir = File::open(path)?;
        // SAFETY: a valid open descriptor for the duration of the call.
        check(unsafe { libc::syncfs(dir.as_raw_fd()) })
    }

    fn create(
        folder: &Path,
        i: usize,
        flags: libc::c_int,
    ) -> io::Result<(File, std::path::PathBuf)> {
        let path = folder.join(publish::temp_name("bench", &format!("bench-{i}")));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(flags)
            .open(&path)?;
        Ok((file, path))
    }

    fn staged(folder: &Path, temp_path: std::path::PathBuf, size: usize) -> StagedFile {
        StagedFile {
            dir: folder.to_path_buf(),
            temp_path,
            size: size as u64,
            sha256: String::new(),
        }
    }

    pub fn stage_batch(
        method: Method,
        folder: &Path,
        ids: &[usize],
        content: &[u8],
        workers: usize,
    ) -> io::Result<Vec<StagedFile>> {
        match method {
            Method::Odsync => parallel::map_in_order(ids, workers, |&i| -> io::Result<_> {
                let (mut file, path) = create(folder, i, libc::O_DSYNC)?;
                file.write_all(content)?;
                Ok(staged(folder, path, content.len()))
            })
            .into_iter()
            .collect(),
            Method::SyncFileRange | Method::Syncfs => {
                let mut files = Vec::with_capacity(ids.len());
                for &i in ids {
                    let (mut file, path) = create(folder, i, 0)?;
                    file.write_all(content)?;
                    files.push((file, path));
                }
                if method == Method::Syncfs {
                    syncfs(folder)?;
                } else {
                    for (file, _) in &files {
                        // SAFETY: a valid open descriptor; offset 0, length 0 means the whole file.
                        check(unsafe {
                            libc::sync_file_range(
                                file.as_raw_fd(),
                                0,
                                0,
                                libc::SYNC_FILE_RANGE_WRITE,
                            )
                        })?;
                    }
                    for (file, _) in &files {
                        file.sync_data()?;
                    }
                }
                Ok(files
                    .into_iter()
                    .map(|(_, path)| staged(folder, path, content.len()))
                    .collect())
            }
            Method::Fsync | Method::Engine => unreachable!("staged by the engine's publish"),
        }
    }
}

fn year_journal(args: &[String]) -> Result<serde_json::Value, String> {
    use xflow_engine::journal::{self, Journal, Record, RunRecord, State};
    let (mut state, mut sd_loen, mut prisme) = (None, None, None);
    let (mut runs, mut deliveries, mut quarantined, mut days) =
        (175_000usize, 150_000usize, 3usize, 365i64);
    let mut only_last_days = None;
    for (key, value) in options(
        args,
        &[
            "state",
            "sd-loen",
            "prisme",
            "runs",
            "deliveries",
            "quarantined",
            "days",
            "only-last-days",
        ],
    )? {
        match key {
            "state" => state = Some(PathBuf::from(value)),
            "sd-loen" => sd_loen = Some(PathBuf::from(value)),
            "prisme" => prisme = Some(PathBuf::from(value)),
            "runs" => runs = parse(key, value)?,
            "deliveries" => deliveries = parse(key, value)?,
            "quarantined" => quarantined = parse(key, value)?,
            "days" => days = parse(key, value)?,
            _ => only_last_days = Some(parse::<i64>(key, value)?),
        }
    }
    let (Some(state), Some(sd_loen), Some(prisme)) = (state, sd_loen, prisme) else {
        return Err("--state, --sd-loen and --prisme are required".into());
    };
    if runs == 0 || days <= 0 {
        return Err("--runs and --days must be at least 1".into());
    }
    std::fs::create_dir_all(&state).map_err(|e| format!("{}: {e}", state.display()))?;
    let mut journal = Journal::open(&state).map_err(|e| e.to_string())?;
    let now = chrono::Utc::now();
    let span = chrono::Duration::days(days);
    // The i-th of n events, evenly spread so that the last one is now.
    let at = |i: usize, n: usize| {
        let t = now - span + span * (i as i32 + 1) / n.max(1) as i32;
        t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    // Everything, or only what happened since this (RFC 3339 UTC as stored: text order is time
    // order).
    let kept_from = only_last_days
        .map(|d| {
            (now - chrono::Duration::days(d)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        })
        .unwrap_or_default();
    let kept = |i: usize, n: usize| at(i, n) >= kept_from;
    let err = |e: xflow_engine::EngineError| e.to_string();
    let run_ids: Vec<usize> = (0..runs).filter(|&i| kept(i, runs)).collect();
    for chunk in run_ids.chunks(10_000) {
        let records: Vec<RunRecord> = chunk
            .iter()
            .map(|&i| RunRecord {
                run_id: format!("00000000-0000-7000-8000-{i:012}"),
                started_at: at(i, runs),
                finished_at: Some(at(i, runs)),
                outcome: Some("Succeeded".into()),
                delivered: u64::from(i.is_multiple_of(7)),
                duration_ms: Some(150),
                ..Default::default()
            })
            .collect();
        journal.record_runs(&records).map_err(err)?;
    }
    let record = |i: usize, state: State| {
        let (system, folder) = if i.is_multiple_of(2) {
            (xflow_engine::System::SdLoen, &sd_loen)
        } else {
            (xflow_engine::System::Prisme, &prisme)
        };
        let name = format!(
            "L{i:07}_{}.csv",
            if i.is_multiple_of(2) {
                "loen"
            } else {
                "postering"
            }
        );
        let received = at(i, deliveries);
        Record {
            id: format!("d-{i:09}-9f3b2c1a-7e4d-4b8a-a1c2-{i:012}"),
            system,
            requested_name: name.clone(),
            wanted_name: name.clone(),
            file_name: (state == State::Acknowledged).then(|| name.clone()),
            folder: folder.clone(),
            temp_name: None,
            sha256: format!("{:064x}", i as u128 * 0x9e37_79b9_7f4a_7c15),
            size: 4096 + (i as u64 % 2048),
            created_at: Some(received.clone()),
            state,
            reason: (state == State::Quarantined)
                .then(|| "the content does not match its sha256".to_owned()),
            run_id: format!(
                "00000000-0000-7000-8000-{:012}",
                i * runs / deliveries.max(1)
            ),
            received_at: received.clone(),
            published_at: (state == State::Acknowledged).then(|| received.clone()),
            acknowledged_at: (state == State::Acknowledged).then(|| received.clone()),
        }
    };
    let ids: Vec<usize> = (0..deliveries).filter(|&i| kept(i, deliveries)).collect();
    for chunk in ids.chunks(10_000) {
        journal
            .batch(|b| {
                chunk.iter().try_for_each(|&i| {
                    let quarantine = i + quarantined >= deliveries;
                    b.upsert(&record(
                        i,
                        if quarantine {
                            State::Quarantined
                        } else {
                            State::Acknowledged
                        },
                    ))
                })
            })
            .map_err(err)?;
    }
    for i in (deliveries.saturating_sub(quarantined)..deliveries).filter(|&i| kept(i, deliveries)) {
        let r = record(i, State::Quarantined);
        let document = serde_json::json!({
            "id": r.id, "system": r.system.wire_name(), "fileName": r.requested_name,
            "sha256": r.sha256, "reason": r.reason, "errorId": "HashMismatch",
            "quarantinedAt": journal::now(),
        });
        let content = xflow_engine::page_body::Content::Inline("c29tZSBieXRlcw==".into());
        let path =
            xflow_engine::state_dir::quarantine(&state, &r.id, &document, &content).map_err(err)?;
        let mut r = r;
        r.folder = path.parent().map(Path::to_path_buf).unwrap_or_default();
        journal.batch(|b| b.upsert(&r)).map_err(err)?;
    }
    drop(journal);
    Ok(serde_json::json!({
        "runs": run_ids.len(),
        "deliveries": ids.len(),
        "quarantined": quarantined,
        "days": days,
        "stateBytes": folder_size(&state).map_err(|e| format!("{}: {e}", state.display()))?,
    }))
}

/// The bytes of every file under `dir`.
fn folder_size(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            folder_size(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

fn drain() -> Result<serde_json::Value, String> {
    let config = config_from_stdin()?;
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

fn config_from_stdin() -> Result<RunConfig, String> {
    let mut config = Vec::new();
    std::io::stdin()
        .read_to_end(&mut config)
        .map_err(|e| format!("reading the configuration from stdin: {e}"))?;
    RunConfig::from_json(&config).map_err(|e| e.to_string())
}

fn server_limit() -> Result<serde_json::Value, String> {
    let cfg = config_from_stdin()?.validate().map_err(|e| e.to_string())?;
    let client = Client::new(&cfg).map_err(|e| e.to_string())?;
    let systems: Vec<System> = cfg.folders.iter().map(|(s, _)| *s).collect();
    // Only a page over the engine's in-memory limit goes to this file (a 4 KiB backlog never).
    let spill = cfg.state_path.join("server-limit.incoming.tmp");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let (deliveries, pages) = runtime
        .block_on(async {
            let (mut deliveries, mut pages) = (0usize, 0usize);
            loop {
                let body = client
                    .fetch_page(&systems, cfg.page_size, spill.clone())
                    .await?;
                let page = body.parse()?;
                let ids: Vec<String> = page.deliveries.iter().map(|d| d.id.to_string()).collect();
                pages += 1;
                if ids.is_empty() {
                    break;
                }
                client.ack(&ids).await?;
                deliveries += ids.len();
                if !page.has_more {
                    break;
                }
            }
            Ok::<_, xflow_engine::EngineError>((deliveries, pages))
        })
        .map_err(|e| e.to_string())?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(serde_json::json!({
        "seconds": seconds,
        "deliveries": deliveries,
        "pages": pages,
        "filesPerSec": deliveries as f64 / seconds,
    }))
}

//! Read-only questions an administrator asks of a state folder (history, status) and the one
//! repair they may make (release a quarantined delivery). They read the journal, never logs.

use crate::config::System;
use crate::error::{EngineError, Result};
use crate::journal::{Journal, Record, RunRecord, State};
use crate::publish;
use crate::spool;
use crate::state_access;
use crate::state_dir::{self, RunLock};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HistoryQuery {
    pub state_path: PathBuf,
    /// RFC 3339; compared with the time the delivery was received.
    #[serde(default)]
    pub since: Option<String>,
    #[serde(default)]
    pub until: Option<String>,
    #[serde(default)]
    pub system: Option<System>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub state: Option<State>,
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Deliveries newest first, filtered.
pub fn history(q: &HistoryQuery) -> Result<Vec<Record>> {
    state_access::require_local(&q.state_path)?;
    let Some(journal) = Journal::open_read_only(&q.state_path)? else {
        return Ok(Vec::new());
    };
    let since = q.since.as_deref().map(normalise_time).transpose()?;
    let until = q.until.as_deref().map(normalise_time).transpose()?;
    // Only the filters given go into the statement: `?1 IS NULL OR received_at >= ?1` would keep
    // SQLite from using the received_at index, and a year-old journal would be scanned whole.
    let mut filters = Vec::new();
    let mut values: Vec<&dyn rusqlite::ToSql> = Vec::new();
    let system = q.system.map(System::wire_name);
    let state = q.state.map(State::as_str);
    for (clause, value) in [
        (
            "received_at >= ?",
            since.as_ref().map(|v| v as &dyn rusqlite::ToSql),
        ),
        (
            "received_at <= ?",
            until.as_ref().map(|v| v as &dyn rusqlite::ToSql),
        ),
        (
            "system = ?",
            system.as_ref().map(|v| v as &dyn rusqlite::ToSql),
        ),
        ("id = ?", q.id.as_ref().map(|v| v as &dyn rusqlite::ToSql)),
        (
            "state = ?",
            state.as_ref().map(|v| v as &dyn rusqlite::ToSql),
        ),
    ] {
        if let Some(value) = value {
            filters.push(clause);
            values.push(value);
        }
    }
    let limit = q.limit.unwrap_or(1000);
    values.push(&limit);
    let filter = if filters.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", filters.join(" AND "))
    };
    journal.query(
        &format!(
            "SELECT {} FROM deliveries {filter} ORDER BY received_at DESC, id LIMIT ?",
            crate::journal::COLUMNS
        ),
        values.as_slice(),
    )
}

/// Times are stored as UTC RFC 3339 with milliseconds; so are the bounds, so text order is time
/// order whatever offset the caller used.
fn normalise_time(text: &str) -> Result<String> {
    let t = chrono::DateTime::parse_from_rfc3339(text).map_err(|e| {
        EngineError::InvalidConfiguration(format!("'{text}' is not an RFC 3339 time: {e}"))
    })?;
    Ok(t.with_timezone(&chrono::Utc)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusQuery {
    pub state_path: PathBuf,
    /// Import folders to look into for files nobody has picked up.
    #[serde(default)]
    pub folders: Vec<FolderRef>,
    /// A file older than this in an import folder means the importer has stopped.
    #[serde(default = "default_stale_minutes")]
    pub stale_after_minutes: u64,
}

fn default_stale_minutes() -> u64 {
    60
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FolderRef {
    pub system: System,
    pub path: PathBuf,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub last_run: Option<RunRecord>,
    pub last_successful_run: Option<RunRecord>,
    pub awaiting_acknowledgement: u64,
    pub in_progress: u64,
    pub quarantined: Vec<Record>,
    pub stale_files: Vec<StaleFile>,
    pub folder_errors: Vec<String>,
    /// Who besides the owner can read the state folder (personal data), in words.
    pub state_folder_exposure: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StaleFile {
    pub system: System,
    pub path: String,
    pub age_minutes: u64,
    pub size: u64,
}

pub fn status(q: &StatusQuery) -> Result<Status> {
    state_access::require_local(&q.state_path)?;
    let state_folder_exposure = state_access::exposure(&q.state_path)?;
    let journal = Journal::open_read_only(&q.state_path)?;
    let (last_run, last_successful_run, awaiting, in_progress, quarantined) = match &journal {
        Some(j) => {
            let s = j.status()?;
            (
                s.last_run,
                s.last_successful_run,
                s.published,
                s.publishing + spool::waiting_pages(&q.state_path)? as u64,
                s.quarantined,
            )
        }
        None => (None, None, 0, 0, Vec::new()),
    };
    let mut stale_files = Vec::new();
    let mut folder_errors = Vec::new();
    let threshold = Duration::from_secs(q.stale_after_minutes * 60);
    for folder in &q.folders {
        match stale_in(&folder.path, threshold) {
            Ok(found) => stale_files.extend(found.into_iter().map(|(path, age, size)| StaleFile {
                system: folder.system,
                path: path.display().to_string(),
                age_minutes: age.as_secs() / 60,
                size,
            })),
            Err(e) => folder_errors.push(format!("{}: {e}", folder.path.display())),
        }
    }
    Ok(Status {
        last_run,
        last_successful_run,
        awaiting_acknowledgement: awaiting,
        in_progress,
        quarantined,
        stale_files,
        folder_errors,
        state_folder_exposure,
    })
}

/// Delivered files (not our temp files) older than `threshold`.
fn stale_in(folder: &Path, threshold: Duration) -> std::io::Result<Vec<(PathBuf, Duration, u64)>> {
    let now = SystemTime::now();
    let mut found = Vec::new();
    for entry in std::fs::read_dir(folder)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let meta = entry.metadata()?;
        if !meta.is_file() || publish::is_temp_file(&name) {
            continue;
        }
        let age = now
            .duration_since(meta.modified()?)
            .unwrap_or(Duration::ZERO);
        if age >= threshold {
            found.push((entry.path(), age, meta.len()));
        }
    }
    found.sort();
    Ok(found)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReleaseQuery {
    pub state_path: PathBuf,
    pub id: String,
}

/// Forgets a quarantined delivery once an administrator has dealt with it (for example after
/// XFlow resent a corrected one under a new id). Its document in the quarantine folder is
/// removed too. Refuses ids in any other state: those are not the administrator's to drop.
/// Holds the run lock while it changes the journal, so it never races a run.
pub fn release_quarantined(q: &ReleaseQuery) -> Result<Record> {
    state_access::require_local(&q.state_path)?;
    let _lock = RunLock::wait(&q.state_path, RELEASE_LOCK_WAIT)?;
    let mut journal = Journal::open(&q.state_path)?;
    let record = journal
        .get(&q.id)?
        .filter(|r| r.state == State::Quarantined)
        .ok_or_else(|| {
            EngineError::InvalidConfiguration(format!("no quarantined delivery has id '{}'", q.id))
        })?;
    journal.batch(|b| b.delete(&q.id).map(drop))?;
    state_dir::remove_quarantined(&q.state_path, &q.id);
    Ok(record)
}

/// A run takes seconds; a release waits that long for one to finish before giving up.
const RELEASE_LOCK_WAIT: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::now;

    fn record(id: &str, state: State, received_at: &str) -> Record {
        Record {
            id: id.into(),
            system: System::SdLoen,
            requested_name: "x".into(),
            wanted_name: "x".into(),
            file_name: None,
            folder: PathBuf::from("/f"),
            temp_name: None,
            sha256: String::new(),
            size: 1,
            created_at: None,
            state,
            reason: Some("bad".into()),
            run_id: "r".into(),
            received_at: received_at.into(),
            published_at: None,
            acknowledged_at: None,
        }
    }

    #[test]
    fn history_filters_by_time_state_and_id_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        j.batch(|b| {
            b.upsert(&record(
                "old",
                State::Acknowledged,
                "2026-01-01T00:00:00.000Z",
            ))?;
            b.upsert(&record(
                "new",
                State::Acknowledged,
                "2026-06-01T00:00:00.000Z",
            ))?;
            b.upsert(&record(
                "bad",
                State::Quarantined,
                "2026-06-02T00:00:00.000Z",
            ))
        })
        .unwrap();
        let q = |f: fn(&mut HistoryQuery)| {
            let mut q = HistoryQuery {
                state_path: dir.path().to_path_buf(),
                ..Default::default()
            };
            f(&mut q);
            history(&q)
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(q(|_| {}), vec!["bad", "new", "old"]);
        assert_eq!(
            q(|q| q.since = Some("2026-05-31T23:00:00-01:00".into())),
            vec!["bad", "new"]
        );
        assert_eq!(q(|q| q.state = Some(State::Quarantined)), vec!["bad"]);
        assert_eq!(q(|q| q.id = Some("old".into())), vec!["old"]);
        assert_eq!(q(|q| q.system = Some(System::Prisme)), Vec::<String>::new());
        let bad = HistoryQuery {
            state_path: dir.path().to_path_buf(),
            since: Some("yesterday".into()),
            ..Default::default()
        };
        assert_eq!(
            history(&bad).unwrap_err().error_id(),
            "InvalidConfiguration"
        );
    }

    #[test]
    fn status_of_a_fresh_folder_is_empty_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = status(&StatusQuery {
            state_path: dir.path().join("never-run"),
            folders: vec![],
            stale_after_minutes: 60,
        })
        .unwrap();
        assert!(s.last_run.is_none() && s.quarantined.is_empty());
        assert!(!dir.path().join("never-run").exists());
    }

    #[test]
    fn status_reports_runs_pending_acks_quarantine_and_stale_files() {
        let dir = tempfile::tempdir().unwrap();
        let import = dir.path().join("import");
        std::fs::create_dir(&import).unwrap();
        std::fs::write(import.join("left.csv"), b"x").unwrap();
        std::fs::write(import.join(".xflow-1-2.partial"), b"x").unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        j.begin_run("r1", "2026-01-01T00:00:00.000Z").unwrap();
        j.finish_run(&RunRecord {
            run_id: "r1".into(),
            started_at: "2026-01-01T00:00:00.000Z".into(),
            finished_at: Some(now()),
            outcome: Some("Succeeded".into()),
            ..Default::default()
        })
        .unwrap();
        j.begin_run("r2", "2026-01-02T00:00:00.000Z").unwrap();
        j.finish_run(&RunRecord {
            run_id: "r2".into(),
            started_at: "2026-01-02T00:00:00.000Z".into(),
            finished_at: Some(now()),
            outcome: Some("Failed".into()),
            ..Default::default()
        })
        .unwrap();
        j.batch(|b| {
            b.upsert(&record("p", State::Published, &now()))?;
            b.upsert(&record("q", State::Quarantined, &now()))
        })
        .unwrap();
        let s = status(&StatusQuery {
            state_path: dir.path().to_path_buf(),
            folders: vec![FolderRef {
                system: System::SdLoen,
                path: import.clone(),
            }],
            stale_after_minutes: 0,
        })
        .unwrap();
        assert_eq!(s.last_run.unwrap().run_id, "r2");
        assert_eq!(s.last_successful_run.unwrap().run_id, "r1");
        assert_eq!(s.awaiting_acknowledgement, 1);
        assert_eq!(s.quarantined.len(), 1);
        assert_eq!(
            s.stale_files.len(),
            1,
            "our temp file is not a stale import"
        );
        assert!(s.stale_files[0].path.ends_with("left.csv"));
    }

    #[test]
    fn status_finds_the_last_success_however_many_runs_failed_since() {
        // Two days of runs every 3 minutes that all ended with errors (a delivery waiting in
        // quarantine does that) after one that succeeded.
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        let runs: Vec<RunRecord> = (0..1000)
            .map(|i| RunRecord {
                run_id: format!("r{i:04}"),
                started_at: format!("2026-01-01T00:00:00.000Z{i:04}"),
                finished_at: Some(now()),
                outcome: Some(
                    if i == 0 {
                        "Succeeded"
                    } else {
                        "CompletedWithErrors"
                    }
                    .into(),
                ),
                ..Default::default()
            })
            .collect();
        j.record_runs(&runs).unwrap();
        let s = status(&StatusQuery {
            state_path: dir.path().to_path_buf(),
            folders: vec![],
            stale_after_minutes: 60,
        })
        .unwrap();
        assert_eq!(s.last_run.unwrap().run_id, "r0999");
        assert_eq!(s.last_successful_run.unwrap().run_id, "r0000");
    }

    #[test]
    fn releasing_only_applies_to_quarantined_deliveries() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        j.batch(|b| {
            b.upsert(&record("q", State::Quarantined, &now()))?;
            b.upsert(&record("p", State::Published, &now()))
        })
        .unwrap();
        drop(j);
        let release = |id: &str| {
            release_quarantined(&ReleaseQuery {
                state_path: dir.path().to_path_buf(),
                id: id.into(),
            })
        };
        assert!(release("p").is_err());
        assert_eq!(release("q").unwrap().id, "q");
        assert!(release("q").is_err());
    }
}

//! The journal: one SQLite database per state folder (WAL) recording every delivery's state and
//! every run. It is what makes delivery exactly-once across crashes, and what history and status
//! read; nothing the user needs later depends on log files. A commit is on disk when it returns
//! (`batch`, synchronous FULL), except the few whose loss recovery already handles
//! (`batch_deferred`, see `Durability`).
//!
//! A delivery moves `publishing` (temp file complete and durable in the import folder, name
//! recorded) → `published` (renamed and the folder flushed) → `acknowledged` (in mode None at
//! once: the server forgot it when it handed it out, and the spooled page is what kept it until
//! then). A delivery that fails validation is `quarantined`. (Schema version 1 also allowed
//! `received`, for per-delivery spool files that version 2 replaced by spooled pages.)

use crate::config::System;
use crate::error::{EngineError, Result};
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;
use std::path::{Path, PathBuf};

pub const JOURNAL_FILE: &str = "journal.sqlite3";

/// How long a statement waits for another connection's lock (a run's commit, a reader).
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A WAL larger than this (128 pages of 4 KiB) is emptied when a run ends (`Journal::trim_wal`).
const WAL_TRIM_BYTES: u64 = 512 * 1024;

/// Each entry migrates the schema from version `index` to `index + 1`; never edit a shipped one.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    system          TEXT NOT NULL,
    requested_name  TEXT NOT NULL,
    wanted_name     TEXT NOT NULL,
    file_name       TEXT,
    folder          TEXT NOT NULL,
    temp_name       TEXT,
    sha256          TEXT NOT NULL,
    size            INTEGER NOT NULL,
    created_at      TEXT,
    state           TEXT NOT NULL CHECK (state IN
                        ('received','publishing','published','acknowledged','quarantined')),
    reason          TEXT,
    run_id          TEXT NOT NULL,
    received_at     TEXT NOT NULL,
    published_at    TEXT,
    acknowledged_at TEXT
);
CREATE INDEX deliveries_state ON deliveries(state);
CREATE INDEX deliveries_received_at ON deliveries(received_at);
CREATE TABLE runs (
    run_id       TEXT PRIMARY KEY,
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    outcome      TEXT,
    delivered    INTEGER NOT NULL DEFAULT 0,
    failed       INTEGER NOT NULL DEFAULT 0,
    skipped      INTEGER NOT NULL DEFAULT 0,
    reacknowledged INTEGER NOT NULL DEFAULT 0,
    duration_ms  INTEGER,
    error_id     TEXT,
    message      TEXT
);
CREATE INDEX runs_started_at ON runs(started_at);
"#,
    // The state folder's own id, part of its temp file names, so that recovery sweeps only its
    // own leftovers from an import folder another installation also writes into.
    r#"
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta (key, value) VALUES ('state_id', lower(hex(randomblob(6))));
"#,
    // The importer-stall alarm: a published file seen gone from its import folder is never looked
    // at again, and a run records the stalls it found.
    r#"
ALTER TABLE deliveries ADD COLUMN gone_at TEXT;
CREATE INDEX deliveries_not_gone ON deliveries(system, published_at)
    WHERE gone_at IS NULL AND published_at IS NOT NULL;
ALTER TABLE runs ADD COLUMN stalls TEXT;
"#,
    // Status asks for the last successful run. While a quarantined delivery waits for an
    // administrator every run ends CompletedWithErrors, so walking runs_started_at from the
    // newest would visit every run since; this index finds it in one lookup.
    r#"
CREATE INDEX runs_succeeded ON runs(started_at) WHERE outcome = 'Succeeded';
"#,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum State {
    Publishing,
    Published,
    Acknowledged,
    Quarantined,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Publishing => "publishing",
            State::Published => "published",
            State::Acknowledged => "acknowledged",
            State::Quarantined => "quarantined",
        }
    }

    /// Nothing more will happen to a delivery in this state (until an administrator releases a
    /// quarantined one).
    pub fn is_final(self) -> bool {
        matches!(self, State::Acknowledged | State::Quarantined)
    }

    fn parse(s: &str) -> Result<State> {
        Ok(match s {
            "publishing" => State::Publishing,
            "published" => State::Published,
            "acknowledged" => State::Acknowledged,
            "quarantined" => State::Quarantined,
            other => {
                return Err(EngineError::Internal(format!(
                    "journal holds unknown state '{other}'"
                )));
            }
        })
    }
}

/// One delivery as the journal knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub id: String,
    pub system: System,
    pub requested_name: String,
    /// The safe name the file is published under, unless taken (then a collision name).
    pub wanted_name: String,
    /// The name it was published under.
    pub file_name: Option<String>,
    pub folder: PathBuf,
    pub temp_name: Option<String>,
    pub sha256: String,
    pub size: u64,
    pub created_at: Option<String>,
    pub state: State,
    pub reason: Option<String>,
    pub run_id: String,
    pub received_at: String,
    pub published_at: Option<String>,
    pub acknowledged_at: Option<String>,
}

/// A finished run, as recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    pub run_id: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub outcome: Option<String>,
    pub delivered: u64,
    pub failed: u64,
    pub skipped: u64,
    pub reacknowledged: u64,
    pub duration_ms: Option<u64>,
    pub error_id: Option<String>,
    pub message: Option<String>,
    /// Import folders whose importer had stopped, as this run found them.
    pub stalls: Vec<crate::events::ImportStall>,
}

/// What the journal says for status (`Journal::status`).
#[derive(Debug)]
pub struct JournalStatus {
    pub last_run: Option<RunRecord>,
    pub last_successful_run: Option<RunRecord>,
    /// Published, not yet acknowledged.
    pub published: u64,
    /// Temp file written, not yet renamed.
    pub publishing: u64,
    pub quarantined: Vec<Record>,
}

/// A published file not yet seen gone from its import folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unclaimed {
    pub id: String,
    pub file_name: String,
    pub published_at: String,
}

pub struct Journal {
    conn: Connection,
    path: PathBuf,
    /// What the connection's `synchronous` setting gives the next commit.
    synchronous: Durability,
}

/// When a commit reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// Before the commit returns (synchronous FULL: the WAL is flushed at every commit).
    Now,
    /// With the next `Now` commit, or at a checkpoint (synchronous NORMAL). A power cut before
    /// then loses it and every later commit, never an earlier one: the WAL is read back only up
    /// to its first frame not written whole. Only for a commit whose loss is the same as a crash
    /// just before it, which recovery handles: a run's start, a page's `published` marks (the
    /// files are renamed and their folders flushed before it; recovery finds them, as after a
    /// crash between the renames and the commit) and its `acknowledged` marks (recovery
    /// acknowledges again). It saves a page two of its three journal flushes, and an idle run
    /// one of its three flushes.
    Later,
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Journal {
    /// Opens (creating and migrating as needed) the journal in `state_dir`.
    pub fn open(state_dir: &Path) -> Result<Journal> {
        let path = state_dir.join(JOURNAL_FILE);
        let conn = Connection::open(&path).map_err(|e| journal_error(&path, e))?;
        let mut journal = Journal {
            conn,
            path,
            synchronous: Durability::Now,
        };
        journal.configure()?;
        journal.migrate()?;
        Ok(journal)
    }

    /// Opens an existing journal for reading only (history, status); never creates one. A journal
    /// whose schema was never committed (a crash or power cut while the first run created it)
    /// holds nothing and reads as no journal; the next run creates the schema.
    pub fn open_read_only(state_dir: &Path) -> Result<Option<Journal>> {
        let path = state_dir.join(JOURNAL_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let conn = Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(|e| journal_error(&path, e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| journal_error(&path, e))?;
        let journal = Journal {
            conn,
            path,
            synchronous: Durability::Now,
        };
        let version = journal.schema_version()?;
        if version as usize > MIGRATIONS.len() {
            return Err(journal.newer_schema(version));
        }
        if version == 0 {
            return Ok(None);
        }
        Ok(Some(journal))
    }

    fn configure(&mut self) -> Result<()> {
        let path = self.path.clone();
        self.conn
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| journal_error(&path, e))?;
        // WAL + FULL: a committed transaction survives power loss; readers never block the run.
        self.conn
            .execute_batch(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
            )
            .map_err(|e| journal_error(&path, e))?;
        // The WAL stays when the run closes the journal, instead of being checkpointed into the
        // database and deleted: that cost an idle run three of its six flushes (WAL and database
        // at the checkpoint, the folder when the next run created the WAL again). Commits are as
        // durable as before; SQLite checkpoints during a commit once the WAL holds 1,000 pages.
        self.conn
            .set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .map(drop)
            .map_err(|e| journal_error(&path, e))
    }

    fn schema_version(&self) -> Result<u32> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| journal_error(&self.path, e))
    }

    fn newer_schema(&self, version: u32) -> EngineError {
        EngineError::InvalidConfiguration(format!(
            "the journal {} has schema version {version}, newer than this module understands ({}); \
             update the module",
            self.path.display(),
            MIGRATIONS.len()
        ))
    }

    fn migrate(&mut self) -> Result<()> {
        let version = self.schema_version()? as usize;
        if version > MIGRATIONS.len() {
            return Err(self.newer_schema(version as u32));
        }
        let path = self.path.clone();
        for (index, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            let tx = self
                .conn
                .transaction()
                .map_err(|e| journal_error(&path, e))?;
            tx.execute_batch(sql).map_err(|e| journal_error(&path, e))?;
            tx.pragma_update(None, "user_version", (index + 1) as u32)
                .map_err(|e| journal_error(&path, e))?;
            tx.commit().map_err(|e| journal_error(&path, e))?;
        }
        Ok(())
    }

    /// Runs `f` in one transaction: a page's state changes cost one durable commit.
    pub fn batch<T>(&mut self, f: impl FnOnce(&Batch<'_>) -> rusqlite::Result<T>) -> Result<T> {
        self.commit(Durability::Now, f)
    }

    /// `batch`, but the commit reaches the disk only with the next durable one (`Durability::Later`
    /// says which commits may).
    pub fn batch_deferred<T>(
        &mut self,
        f: impl FnOnce(&Batch<'_>) -> rusqlite::Result<T>,
    ) -> Result<T> {
        self.commit(Durability::Later, f)
    }

    fn commit<T>(
        &mut self,
        durability: Durability,
        f: impl FnOnce(&Batch<'_>) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let path = self.path.clone();
        if self.synchronous != durability {
            let level = match durability {
                Durability::Now => "FULL",
                Durability::Later => "NORMAL",
            };
            self.conn
                .pragma_update(None, "synchronous", level)
                .map_err(|e| journal_error(&path, e))?;
            self.synchronous = durability;
        }
        let tx = self
            .conn
            .transaction()
            .map_err(|e| journal_error(&path, e))?;
        let value = f(&Batch { tx: &tx }).map_err(|e| journal_error(&path, e))?;
        tx.commit().map_err(|e| journal_error(&path, e))?;
        Ok(value)
    }

    pub fn get(&self, id: &str) -> Result<Option<Record>> {
        self.conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM deliveries WHERE id = ?1"))
            .and_then(|mut stmt| stmt.query_row([id], read_record).optional())
            .map_err(|e| journal_error(&self.path, e))?
            .transpose()
    }

    pub fn in_state(&self, state: State) -> Result<Vec<Record>> {
        self.query(
            &format!("SELECT {COLUMNS} FROM deliveries WHERE state = ?1 ORDER BY received_at, id"),
            [state.as_str()],
        )
    }

    /// This state folder's id (see `publish::temp_name`).
    pub fn state_id(&self) -> Result<String> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = 'state_id'", [], |r| {
                r.get(0)
            })
            .map_err(|e| journal_error(&self.path, e))
    }

    /// Every temp name any row records for `folder`, in any state: recovery never sweeps those.
    pub fn temp_names_in(&self, folder: &Path) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT temp_name FROM deliveries WHERE folder = ?1 AND temp_name IS NOT NULL")
            .map_err(|e| journal_error(&self.path, e))?;
        let rows = stmt
            .query_map([folder.to_string_lossy()], |r| r.get::<_, String>(0))
            .map_err(|e| journal_error(&self.path, e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| journal_error(&self.path, e))
    }

    /// Files published into `folder` for `system` at or before `before` (RFC 3339 UTC, as stored)
    /// and not yet seen gone: the only rows the importer-stall alarm looks at, through a partial
    /// index, so an idle run with a working importer reads almost nothing.
    pub fn unclaimed(&self, system: System, folder: &Path, before: &str) -> Result<Vec<Unclaimed>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, COALESCE(file_name, wanted_name), published_at FROM deliveries \
                 WHERE gone_at IS NULL AND published_at IS NOT NULL AND system = ?1 \
                 AND published_at <= ?2 AND folder = ?3 \
                 AND state IN ('published', 'acknowledged') ORDER BY published_at",
            )
            .map_err(|e| journal_error(&self.path, e))?;
        let rows = stmt
            .query_map(
                params![system.wire_name(), before, folder.to_string_lossy()],
                |r| {
                    Ok(Unclaimed {
                        id: r.get(0)?,
                        file_name: r.get(1)?,
                        published_at: r.get(2)?,
                    })
                },
            )
            .map_err(|e| journal_error(&self.path, e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| journal_error(&self.path, e))
    }

    /// Whether another journal row already claims `file_name` in `folder`.
    pub fn name_claimed(&self, folder: &Path, file_name: &str, except_id: &str) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM deliveries WHERE folder = ?1 AND file_name = ?2 \
                 AND id <> ?3)",
                params![folder.to_string_lossy(), file_name, except_id],
                |r| r.get(0),
            )
            .map_err(|e| journal_error(&self.path, e))
    }

    pub fn query(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<Record>> {
        let mut stmt = self
            .conn
            .prepare(sql)
            .map_err(|e| journal_error(&self.path, e))?;
        let rows = stmt
            .query_map(params, read_record)
            .map_err(|e| journal_error(&self.path, e))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row.map_err(|e| journal_error(&self.path, e))??);
        }
        Ok(out)
    }

    /// What status reads from the journal. Each part is an index lookup of one or a few rows, so
    /// it costs the same on a journal with a year of history as on a new one: the newest finished
    /// run is one step down runs_started_at (only runs still going or cut short by a crash are
    /// skipped), the newest successful one a lookup in runs_succeeded however long ago it was,
    /// and the counts come from the state index.
    pub fn status(&self) -> Result<JournalStatus> {
        Ok(JournalStatus {
            last_run: self.newest_run("finished_at IS NOT NULL")?,
            last_successful_run: self
                .newest_run("outcome = 'Succeeded' AND finished_at IS NOT NULL")?,
            published: self.count_in_state(State::Published)?,
            publishing: self.count_in_state(State::Publishing)?,
            quarantined: self.in_state(State::Quarantined)?,
        })
    }

    fn newest_run(&self, filter: &str) -> Result<Option<RunRecord>> {
        Ok(self
            .select_runs(
                &format!("WHERE {filter} ORDER BY started_at DESC LIMIT 1"),
                [],
            )?
            .pop())
    }

    fn count_in_state(&self, state: State) -> Result<u64> {
        self.conn
            .prepare_cached("SELECT COUNT(*) FROM deliveries WHERE state = ?1")
            .and_then(|mut stmt| stmt.query_row([state.as_str()], |r| r.get(0)))
            .map_err(|e| journal_error(&self.path, e))
    }

    fn select_runs(&self, tail: &str, params: impl rusqlite::Params) -> Result<Vec<RunRecord>> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT run_id, started_at, finished_at, outcome, delivered, failed, skipped, \
                 reacknowledged, duration_ms, error_id, message, stalls FROM runs {tail}"
            ))
            .map_err(|e| journal_error(&self.path, e))?;
        let rows = stmt
            .query_map(params, |r| {
                Ok(RunRecord {
                    run_id: r.get(0)?,
                    started_at: r.get(1)?,
                    finished_at: r.get(2)?,
                    outcome: r.get(3)?,
                    delivered: r.get(4)?,
                    failed: r.get(5)?,
                    skipped: r.get(6)?,
                    reacknowledged: r.get(7)?,
                    duration_ms: r.get(8)?,
                    error_id: r.get(9)?,
                    message: r.get(10)?,
                    // Written by this module only; an unreadable value shows as no stalls.
                    stalls: r
                        .get::<_, Option<String>>(11)?
                        .and_then(|json| serde_json::from_str(&json).ok())
                        .unwrap_or_default(),
                })
            })
            .map_err(|e| journal_error(&self.path, e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| journal_error(&self.path, e))
    }

    /// Deferred: a power cut before the run's next durable commit loses the row (the run is
    /// missing from the history); what the run did on disk until then, recovery does again.
    pub fn begin_run(&mut self, run_id: &str, started_at: &str) -> Result<()> {
        self.batch_deferred(|b| b.begin_run(run_id, started_at))
    }

    pub fn finish_run(&mut self, run: &RunRecord) -> Result<()> {
        self.batch(|b| b.finish_run(run))
    }
}

/// How long the journal keeps what it records (docs/design.md, "Retention").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Runs older than this are forgotten (history of runs, status).
    pub runs: chrono::Duration,
    /// Acknowledged deliveries older than this are forgotten. Until then a redelivered id is
    /// recognised and acknowledged again instead of written twice.
    pub deliveries: chrono::Duration,
}

/// Rows of each kind a run prunes at most: under a millisecond while an old backlog lasts (200
/// cost an idle run about 2 ms on a year of unpruned runs), and at one run every 3 minutes (480
/// a day) still 50 times the runs and deliveries a day adds.
pub const PRUNE_STEP: u32 = 50;

impl Retention {
    /// Never shorter than this for deliveries, whatever the run retention: a delivery the server
    /// sends again (a lost acknowledgement, a server restored from a backup up to a year old)
    /// must still be known, or it would be written twice.
    pub const MIN_DELIVERY_DAYS: i64 = 400;

    pub fn new(run_days: u32) -> Retention {
        Retention {
            runs: chrono::Duration::days(i64::from(run_days)),
            deliveries: chrono::Duration::days(Self::MIN_DELIVERY_DAYS.max(i64::from(run_days))),
        }
    }
}

impl Journal {
    /// Forgets at most `max_rows` runs and `max_rows` acknowledged deliveries older than the
    /// retention allows, oldest first, in one transaction: each run does a small bounded step, so
    /// a journal that has grown for years is trimmed over many runs and no run waits long.
    /// Quarantined deliveries and unfinished publishes are never pruned. Returns the counts.
    pub fn prune(
        &mut self,
        now: chrono::DateTime<chrono::Utc>,
        retention: Retention,
        max_rows: u32,
    ) -> Result<(usize, usize)> {
        self.batch(|b| b.prune(now, retention, max_rows))
    }

    /// `finish_run` and `prune` in one transaction: one durable commit at the end of a run
    /// instead of two.
    pub fn finish_run_and_prune(
        &mut self,
        run: &RunRecord,
        now: chrono::DateTime<chrono::Utc>,
        retention: Retention,
        max_rows: u32,
    ) -> Result<(usize, usize)> {
        self.batch(|b| {
            b.finish_run(run)?;
            b.prune(now, retention, max_rows)
        })
    }

    /// Checkpoints the WAL into the database and empties it, once it has grown past
    /// `WAL_TRIM_BYTES`; a run calls this when it ends. Every connection that finds no other one
    /// open (each run, status and history call) first reads the whole WAL to rebuild its index,
    /// so a WAL left to grow to SQLite's own 1,000-page checkpoint costs each of them about a
    /// millisecond more, and more on a journal whose runs still prune a backlog (30 pages a run
    /// against 5). Below the bound nothing happens, so most idle runs keep their three flushes.
    /// Never waits for a reader (status, history): the next run's end tries again.
    pub fn trim_wal(&mut self) -> Result<()> {
        let wal = self.path.with_file_name(format!("{JOURNAL_FILE}-wal"));
        match std::fs::metadata(&wal) {
            Ok(meta) if meta.len() > WAL_TRIM_BYTES => {}
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(EngineError::from_io(&wal, &e)),
        }
        let path = self.path.clone();
        self.conn
            .busy_timeout(std::time::Duration::ZERO)
            .map_err(|e| journal_error(&path, e))?;
        // One row (busy, pages in the WAL, pages checkpointed); busy only means a reader came
        // first.
        let checkpoint = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        self.conn
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| journal_error(&path, e))?;
        checkpoint.map_err(|e| journal_error(&path, e))
    }

    /// Records a finished run whole (importing history, benchmarks); a run itself uses
    /// `begin_run` and `finish_run`.
    pub fn record_runs(&mut self, runs: &[RunRecord]) -> Result<()> {
        self.batch(|b| {
            runs.iter().try_for_each(|run| {
                b.begin_run(&run.run_id, &run.started_at)?;
                b.finish_run(run)
            })
        })
    }
}

pub(crate) const COLUMNS: &str = "id, system, requested_name, wanted_name, file_name, folder, temp_name, \
    sha256, size, created_at, state, reason, run_id, received_at, published_at, acknowledged_at";

fn read_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Record>> {
    let system: String = r.get(1)?;
    let state: String = r.get(10)?;
    let folder: String = r.get(5)?;
    let record = (|| {
        Ok(Record {
            id: r.get(0)?,
            system: System::from_wire(&system).ok_or_else(|| {
                EngineError::Internal(format!("journal holds unknown system '{system}'"))
            })?,
            requested_name: r.get(2)?,
            wanted_name: r.get(3)?,
            file_name: r.get(4)?,
            folder: PathBuf::from(folder),
            temp_name: r.get(6)?,
            sha256: r.get(7)?,
            size: r.get(8)?,
            created_at: r.get(9)?,
            state: State::parse(&state)?,
            reason: r.get(11)?,
            run_id: r.get(12)?,
            received_at: r.get(13)?,
            published_at: r.get(14)?,
            acknowledged_at: r.get(15)?,
        })
    })();
    match record {
        Ok(record) => Ok(Ok(record)),
        Err(JournalRowError::Sql(e)) => Err(e),
        Err(JournalRowError::Engine(e)) => Ok(Err(e)),
    }
}

enum JournalRowError {
    Sql(rusqlite::Error),
    Engine(EngineError),
}
impl From<rusqlite::Error> for JournalRowError {
    fn from(e: rusqlite::Error) -> Self {
        JournalRowError::Sql(e)
    }
}
impl From<EngineError> for JournalRowError {
    fn from(e: EngineError) -> Self {
        JournalRowError::Engine(e)
    }
}

/// The state changes available inside one transaction.
pub struct Batch<'a> {
    tx: &'a Transaction<'a>,
}

impl Batch<'_> {
    fn begin_run(&self, run_id: &str, started_at: &str) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached("INSERT INTO runs (run_id, started_at) VALUES (?1, ?2)")?
            .execute(params![run_id, started_at])
            .map(drop)
    }

    fn finish_run(&self, run: &RunRecord) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE runs SET finished_at = ?2, outcome = ?3, delivered = ?4, failed = ?5, \
                 skipped = ?6, reacknowledged = ?7, duration_ms = ?8, error_id = ?9, message = ?10, \
                 stalls = ?11 WHERE run_id = ?1",
            )?
            .execute(params![
                run.run_id,
                run.finished_at,
                run.outcome,
                run.delivered,
                run.failed,
                run.skipped,
                run.reacknowledged,
                run.duration_ms,
                run.error_id,
                run.message,
                (!run.stalls.is_empty())
                    .then(|| serde_json::to_string(&run.stalls).expect("stalls serialise"))
            ])
            .map(drop)
    }

    /// See `Journal::prune`.
    fn prune(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        retention: Retention,
        max_rows: u32,
    ) -> rusqlite::Result<(usize, usize)> {
        let stamp = |age: chrono::Duration| {
            (now - age).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        };
        // Both walk an index (runs_started_at, deliveries_received_at) from the oldest row and
        // stop at the cutoff or the limit: the cost does not grow with the journal. `+state`
        // keeps SQLite off the state index, which would visit every acknowledged row and sort.
        let runs = self
            .tx
            .prepare_cached(
                "DELETE FROM runs WHERE rowid IN (SELECT rowid FROM runs WHERE started_at < ?1 \
                 ORDER BY started_at LIMIT ?2)",
            )?
            .execute(params![stamp(retention.runs), max_rows])?;
        let deliveries = self
            .tx
            .prepare_cached(
                "DELETE FROM deliveries WHERE rowid IN (SELECT rowid FROM deliveries \
                 WHERE received_at < ?1 AND +state = 'acknowledged' ORDER BY received_at LIMIT ?2)",
            )?
            .execute(params![stamp(retention.deliveries), max_rows])?;
        Ok((runs, deliveries))
    }

    /// Inserts or replaces a delivery's row (a quarantined delivery that comes back valid, or a
    /// received one being published, is overwritten with its new state).
    pub fn upsert(&self, r: &Record) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached(&format!(
                "INSERT OR REPLACE INTO deliveries ({COLUMNS}) VALUES \
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
            ))?
            .execute(params![
                r.id,
                r.system.wire_name(),
                r.requested_name,
                r.wanted_name,
                r.file_name,
                r.folder.to_string_lossy(),
                r.temp_name,
                r.sha256,
                r.size,
                r.created_at,
                r.state.as_str(),
                r.reason,
                r.run_id,
                r.received_at,
                r.published_at,
                r.acknowledged_at
            ])?;
        Ok(())
    }

    pub fn mark_published(&self, id: &str, file_name: &str, at: &str) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE deliveries SET state = 'published', file_name = ?2, published_at = ?3 \
                 WHERE id = ?1",
            )?
            .execute(params![id, file_name, at])?;
        Ok(())
    }

    pub fn mark_acknowledged(&self, id: &str, at: &str) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE deliveries SET state = 'acknowledged', acknowledged_at = ?2 \
             WHERE id = ?1 AND state = 'published'",
            )?
            .execute(params![id, at])?;
        Ok(())
    }

    /// The importer took the file: it is not looked at again.
    pub fn mark_gone(&self, id: &str, at: &str) -> rusqlite::Result<()> {
        self.tx.execute(
            "UPDATE deliveries SET gone_at = ?2 WHERE id = ?1",
            params![id, at],
        )?;
        Ok(())
    }

    /// Forgets a delivery: a quarantined one an administrator resolved, or an interrupted publish
    /// whose temp file was damaged (fetched again in mode Ack, published again from its spooled
    /// page in mode None).
    pub fn delete(&self, id: &str) -> rusqlite::Result<usize> {
        self.tx
            .prepare_cached("DELETE FROM deliveries WHERE id = ?1")?
            .execute([id])
    }
}

fn journal_error(path: &Path, err: rusqlite::Error) -> EngineError {
    use rusqlite::ffi::ErrorCode;
    let path = path.to_path_buf();
    match err.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => EngineError::DiskFull { path },
        Some(ErrorCode::PermissionDenied) | Some(ErrorCode::ReadOnly) => {
            EngineError::AccessDenied {
                path,
                reason: err.to_string(),
            }
        }
        Some(ErrorCode::CannotOpen) => EngineError::AccessDenied {
            path,
            reason: format!("cannot open the journal: {err}"),
        },
        _ => EngineError::Internal(format!("journal {}: {err}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, state: State) -> Record {
        Record {
            id: id.into(),
            system: System::Prisme,
            requested_name: "G69.txt".into(),
            wanted_name: "G69.txt".into(),
            file_name: None,
            folder: PathBuf::from("/srv/prisme"),
            temp_name: Some(".xflow-x.partial".into()),
            sha256: "ab".repeat(32),
            size: 10,
            created_at: None,
            state,
            reason: None,
            run_id: "run".into(),
            received_at: now(),
            published_at: None,
            acknowledged_at: None,
        }
    }

    #[test]
    fn migrates_once_and_round_trips_records() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        j.batch(|b| b.upsert(&record("a", State::Publishing)))
            .unwrap();
        drop(j);
        let mut j = Journal::open(dir.path()).unwrap();
        assert_eq!(j.schema_version().unwrap() as usize, MIGRATIONS.len());
        let got = j.get("a").unwrap().unwrap();
        assert_eq!(
            got,
            record("a", State::Publishing).clone_with_received(&got)
        );
        assert_eq!(
            j.temp_names_in(Path::new("/srv/prisme")).unwrap(),
            vec![".xflow-x.partial".to_owned()]
        );
        j.batch(|b| {
            b.mark_published("a", "G69.txt", &now())?;
            b.mark_acknowledged("a", &now())
        })
        .unwrap();
        let got = j.get("a").unwrap().unwrap();
        assert_eq!(got.state, State::Acknowledged);
        assert_eq!(got.temp_name.as_deref(), Some(".xflow-x.partial"));
        assert!(
            j.name_claimed(Path::new("/srv/prisme"), "G69.txt", "b")
                .unwrap()
        );
        assert!(
            !j.name_claimed(Path::new("/srv/prisme"), "G69.txt", "a")
                .unwrap()
        );
    }

    #[test]
    fn a_failed_batch_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        let result = j.batch(|b| {
            b.upsert(&record("a", State::Publishing))?;
            Err::<(), _>(rusqlite::Error::InvalidQuery)
        });
        assert!(result.is_err());
        assert!(j.get("a").unwrap().is_none());
    }

    #[test]
    fn a_deferred_commit_never_lowers_a_later_batchs_durability() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        // SQLite's levels: 1 NORMAL (the WAL flushed only at checkpoints), 2 FULL.
        let level = |j: &Journal| {
            j.conn
                .query_row("PRAGMA synchronous", [], |r| r.get::<_, i64>(0))
                .unwrap()
        };
        assert_eq!(level(&j), 2);
        j.begin_run("r1", "2026-01-01T00:00:00.000Z").unwrap();
        assert_eq!(level(&j), 1);
        j.batch(|b| b.upsert(&record("a", State::Publishing)))
            .unwrap();
        assert_eq!(level(&j), 2);
        let failed = j.batch_deferred(|b| {
            b.mark_published("a", "a.txt", &now())?;
            Err::<(), _>(rusqlite::Error::InvalidQuery)
        });
        assert!(failed.is_err());
        j.batch(|b| b.upsert(&record("b", State::Publishing)))
            .unwrap();
        assert_eq!(level(&j), 2);
        assert_eq!(j.get("a").unwrap().unwrap().state, State::Publishing);
    }

    #[test]
    fn a_journal_whose_schema_was_never_committed_reads_as_none() {
        // What a power cut during the first run's journal creation leaves: the file, no schema.
        let dir = tempfile::tempdir().unwrap();
        std::fs::File::create(dir.path().join(JOURNAL_FILE)).unwrap();
        assert!(Journal::open_read_only(dir.path()).unwrap().is_none());
        // The next run creates the schema; then it reads as a journal.
        drop(Journal::open(dir.path()).unwrap());
        assert!(Journal::open_read_only(dir.path()).unwrap().is_some());
    }

    #[test]
    fn a_newer_schema_is_refused_with_a_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path()).unwrap();
        j.conn.pragma_update(None, "user_version", 99).unwrap();
        drop(j);
        let err = Journal::open(dir.path()).err().unwrap();
        assert!(err.to_string().contains("newer"), "{err}");
        let err = Journal::open_read_only(dir.path()).err().unwrap();
        assert!(err.to_string().contains("newer"), "{err}");
    }

    #[test]
    fn each_state_folder_has_its_own_lasting_id() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let id = Journal::open(a.path()).unwrap().state_id().unwrap();
        assert_eq!(id.len(), 12);
        assert!(id.bytes().all(|c| c.is_ascii_hexdigit()), "{id}");
        assert_eq!(Journal::open(a.path()).unwrap().state_id().unwrap(), id);
        assert_ne!(Journal::open(b.path()).unwrap().state_id().unwrap(), id);
    }

    #[test]
    fn temp_names_stay_recorded_after_publishing() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        j.batch(|b| {
            b.upsert(&record("a", State::Publishing))?;
            b.mark_published("a", "G69.txt", "2026-01-01T00:00:00.000Z")
        })
        .unwrap();
        assert_eq!(
            j.temp_names_in(Path::new("/srv/prisme")).unwrap(),
            vec![".xflow-x.partial".to_owned()]
        );
    }

    #[test]
    fn runs_are_recorded_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        j.begin_run("r1", "2026-01-01T00:00:00.000Z").unwrap();
        j.begin_run("r2", "2026-01-02T00:00:00.000Z").unwrap();
        j.finish_run(&RunRecord {
            run_id: "r2".into(),
            started_at: "2026-01-02T00:00:00.000Z".into(),
            outcome: Some("Succeeded".into()),
            delivered: 3,
            ..Default::default()
        })
        .unwrap();
        let runs = j.runs(10).unwrap();
        assert_eq!(runs[0].run_id, "r2");
        assert_eq!(runs[0].delivered, 3);
        assert_eq!(runs[1].outcome, None);
    }

    #[test]
    fn pruning_forgets_old_runs_and_acknowledged_deliveries_a_bounded_step_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        let now = chrono::Utc::now();
        let ago = |days: i64| {
            (now - chrono::Duration::days(days))
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        };
        let runs: Vec<RunRecord> = [500, 200, 120, 91, 89, 1]
            .iter()
            .map(|&d| RunRecord {
                run_id: format!("run-{d}"),
                started_at: ago(d),
                finished_at: Some(ago(d)),
                ..Default::default()
            })
            .collect();
        j.record_runs(&runs).unwrap();
        let delivery = |id: &str, state: State, days: i64| {
            let mut r = record(id, state);
            r.received_at = ago(days);
            r
        };
        j.batch(|b| {
            b.upsert(&delivery("ack-900", State::Acknowledged, 900))?;
            b.upsert(&delivery("ack-500", State::Acknowledged, 500))?;
            b.upsert(&delivery("ack-401", State::Acknowledged, 401))?;
            b.upsert(&delivery("ack-399", State::Acknowledged, 399))?;
            b.upsert(&delivery("quarantined-800", State::Quarantined, 800))?;
            b.upsert(&delivery("published-800", State::Published, 800))?;
            b.upsert(&delivery("publishing-800", State::Publishing, 800))
        })
        .unwrap();
        let retention = Retention::new(90);
        assert_eq!(retention.deliveries, chrono::Duration::days(400));
        // Two rows of each at most per step, oldest first.
        assert_eq!(j.prune(now, retention, 2).unwrap(), (2, 2));
        assert!(j.get("ack-900").unwrap().is_none() && j.get("ack-500").unwrap().is_none());
        assert!(j.get("ack-401").unwrap().is_some());
        let ids = |j: &Journal| -> Vec<String> {
            j.runs(100).unwrap().into_iter().map(|r| r.run_id).collect()
        };
        assert_eq!(ids(&j), ["run-1", "run-89", "run-91", "run-120"]);
        assert_eq!(j.prune(now, retention, 2).unwrap(), (2, 1));
        assert_eq!(
            j.prune(now, retention, 2).unwrap(),
            (0, 0),
            "nothing is left to prune"
        );
        assert_eq!(ids(&j), ["run-1", "run-89"]);
        for kept in [
            "ack-399",
            "quarantined-800",
            "published-800",
            "publishing-800",
        ] {
            assert!(j.get(kept).unwrap().is_some(), "{kept} must be kept");
        }
        assert!(j.get("ack-401").unwrap().is_none());
        // A run records itself and prunes in one commit.
        j.begin_run("run-now", &ago(0)).unwrap();
        let finished = RunRecord {
            run_id: "run-now".into(),
            started_at: ago(0),
            finished_at: Some(ago(0)),
            outcome: Some("Succeeded".into()),
            ..Default::default()
        };
        let pruned = j
            .finish_run_and_prune(&finished, now, Retention::new(30), 2)
            .unwrap();
        assert_eq!(pruned, (1, 0), "run-89 is older than 30 days");
        assert_eq!(ids(&j), ["run-now", "run-1"]);
        assert_eq!(j.runs(1).unwrap()[0].outcome.as_deref(), Some("Succeeded"));
        // A run retention above the delivery floor keeps deliveries at least as long.
        assert_eq!(
            Retention::new(1000).deliveries,
            chrono::Duration::days(1000)
        );
    }

    #[test]
    fn a_long_wal_is_emptied_when_a_run_ends_a_short_one_is_left_and_no_reader_is_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let wal = dir.path().join(format!("{JOURNAL_FILE}-wal"));
        let wal_len = || std::fs::metadata(&wal).unwrap().len();
        let mut j = Journal::open(dir.path()).unwrap();
        j.batch(|b| b.upsert(&record("a", State::Publishing)))
            .unwrap();
        let short = wal_len();
        assert!(short > 0 && short <= WAL_TRIM_BYTES, "{short}");
        j.trim_wal().unwrap();
        assert_eq!(wal_len(), short, "a short WAL stays: no flush of its own");
        let fill = |j: &mut Journal, from: usize| {
            j.batch(|b| {
                (from..from + 5000)
                    .try_for_each(|i| b.upsert(&record(&format!("r{i}"), State::Acknowledged)))
            })
            .unwrap();
            assert!(wal_len() > WAL_TRIM_BYTES);
        };
        fill(&mut j, 0);
        // A reader in the middle of a read (status, history) is not waited for.
        let reader = Connection::open(dir.path().join(JOURNAL_FILE)).unwrap();
        reader
            .execute_batch("BEGIN; SELECT COUNT(*) FROM deliveries;")
            .unwrap();
        let started = std::time::Instant::now();
        j.trim_wal().unwrap();
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        reader.execute_batch("COMMIT").unwrap();
        drop(reader);
        fill(&mut j, 5000);
        j.trim_wal().unwrap();
        assert_eq!(wal_len(), 0);
        drop(j);
        let j = Journal::open(dir.path()).unwrap();
        assert!(j.get("a").unwrap().is_some() && j.get("r9999").unwrap().is_some());
    }

    /// Database pages SQLite looked at (from its cache or the file) since the last call.
    fn pages_read(j: &Journal) -> i32 {
        let mut total = 0;
        for op in [
            rusqlite::ffi::SQLITE_DBSTATUS_CACHE_HIT,
            rusqlite::ffi::SQLITE_DBSTATUS_CACHE_MISS,
        ] {
            let (mut current, mut highest) = (0, 0);
            // SAFETY: the handle is the live connection's; both outputs are valid locals.
            let rc = unsafe {
                rusqlite::ffi::sqlite3_db_status(j.conn.handle(), op, &mut current, &mut highest, 1)
            };
            assert_eq!(rc, rusqlite::ffi::SQLITE_OK);
            total += current;
        }
        total
    }

    #[test]
    fn status_reads_as_few_pages_after_a_long_history_as_on_a_new_journal() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        let at = |i: usize| format!("2026-01-01T00:00:00.000Z{i:07}");
        let run = |i: usize, outcome: &str| RunRecord {
            run_id: format!("run-{i:07}"),
            started_at: at(i),
            finished_at: Some(at(i)),
            outcome: Some(outcome.into()),
            ..Default::default()
        };
        let delivery = |i: usize, state: State| {
            let mut r = record(&format!("d-{i:07}"), state);
            r.received_at = at(i);
            r
        };
        // A new journal: one success, then a failure, a delivery of each unfinished kind and one
        // in quarantine.
        j.record_runs(&[run(1_000_000, "Succeeded"), run(1_000_001, "Failed")])
            .unwrap();
        j.batch(|b| {
            b.upsert(&delivery(1_000_000, State::Published))?;
            b.upsert(&delivery(1_000_001, State::Publishing))?;
            b.upsert(&delivery(1_000_002, State::Quarantined))
        })
        .unwrap();
        pages_read(&j);
        let new = j.status().unwrap();
        let pages_new = pages_read(&j);
        // Then years of history before those, and runs since the success that all ended with
        // errors (a quarantined delivery makes every run CompletedWithErrors).
        let old: Vec<RunRecord> = (0..20_000).map(|i| run(i, "Succeeded")).collect();
        let failing: Vec<RunRecord> = (1_000_002..1_005_000)
            .map(|i| run(i, "CompletedWithErrors"))
            .collect();
        j.record_runs(&old).unwrap();
        j.record_runs(&failing).unwrap();
        j.batch(|b| (0..20_000).try_for_each(|i| b.upsert(&delivery(i, State::Acknowledged))))
            .unwrap();
        pages_read(&j);
        let long = j.status().unwrap();
        let pages_long = pages_read(&j);
        assert_eq!(long.last_run.unwrap().run_id, "run-1004999");
        assert_eq!(
            long.last_successful_run.unwrap().run_id,
            new.last_successful_run.unwrap().run_id
        );
        assert_eq!(
            (long.published, long.publishing, long.quarantined.len()),
            (1, 1, 1)
        );
        // Five lookups, each a walk down an index and the table (a few pages deeper after the
        // history grew), never a page per run or delivery since.
        assert!(
            pages_long <= 40,
            "{pages_new} pages on a new journal, {pages_long} after a long history"
        );
    }

    impl Journal {
        fn runs(&self, limit: u32) -> Result<Vec<RunRecord>> {
            self.select_runs("ORDER BY started_at DESC LIMIT ?1", [limit])
        }
    }

    impl Record {
        fn clone_with_received(mut self, other: &Record) -> Record {
            self.received_at = other.received_at.clone();
            self
        }
    }
}

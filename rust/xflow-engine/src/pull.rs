//! One run's work, under the state folder's lock: recover what an earlier run left unfinished,
//! then fetch pages of pending deliveries, validate each, publish it into its system's folder and
//! acknowledge it. Per page, every file is staged and fsynced, the journal records the temp names
//! (one commit), the files are renamed into place, each folder is flushed once, the journal
//! records them as published (one commit), and only then is the page acknowledged.

use crate::config::{AckMode, System, ValidatedConfig};
use crate::error::{EngineError, Result};
use crate::events::{DeliveredFile, Event, Outcome, Summary};
use crate::journal::{self, Journal, Record, RunRecord, State};
use crate::protocol::{Client, WireDelivery};
use crate::publish::{self, StagedFile};
use crate::run::Reporter;
use crate::state_dir::{self, RunLock, Spool};
use crate::{fsops, names, recovery, state_access};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub delivered: u64,
    pub failed: u64,
    pub skipped: u64,
    pub reacknowledged: u64,
    pub pages: u64,
}

/// Where a validated delivery's bytes are: still base64 in the page body (mode Ack), or decoded
/// and durable in the spool (mode None, and recovery).
pub(crate) enum Payload<'a> {
    Base64(&'a str),
    Spooled(PathBuf),
}

impl Payload<'_> {
    /// The decoded bytes, streamed: memory stays flat however large the delivery.
    fn open(&self) -> Result<Box<dyn Read + '_>> {
        match self {
            Payload::Base64(text) => Ok(Box::new(base64::read::DecoderReader::new(
                text.as_bytes(),
                &base64::engine::general_purpose::STANDARD,
            ))),
            Payload::Spooled(path) => std::fs::File::open(path)
                .map(|f| Box::new(f) as Box<dyn Read>)
                .map_err(|e| {
                    EngineError::Internal(format!("spooled payload {}: {e}", path.display()))
                }),
        }
    }
}

/// A delivery ready to be published, with the journal row it will get.
pub(crate) struct Ready<'a> {
    pub record: Record,
    pub payload: Payload<'a>,
}

/// Everything a run works with. Created once the lock is held.
pub(crate) struct Ctx<'a> {
    pub cfg: &'a ValidatedConfig,
    pub reporter: &'a Reporter,
    pub cancel: &'a CancellationToken,
    pub journal: Journal,
    pub spool: Spool,
    pub client: Client,
    pub run_id: String,
    pub counts: Counts,
    /// Deliveries seen in this run and left pending on the server (refused, or for a system with
    /// no folder). In ack mode Ack they stay at the head of the queue, so each page asks for that
    /// many more: a head of refused deliveries never hides the ones behind it.
    held_back: u32,
    /// Released when the run's context is dropped, i.e. when the run ends.
    _lock: RunLock,
}

/// Runs to the end and returns the summary; the journal records the run when it got that far.
pub(crate) async fn run(
    cfg: &ValidatedConfig,
    reporter: &Reporter,
    cancel: &CancellationToken,
) -> Summary {
    let started = Instant::now();
    let started_at = journal::now();
    let run_id = uuid::Uuid::now_v7().to_string();
    let mut counts = Counts::default();
    let mut ctx = None;
    let result = match start(cfg, reporter, cancel, &run_id, &started_at).await {
        Ok(Some(mut c)) => {
            let result = match tokio::time::timeout(cfg.deadline, c.pull()).await {
                Ok(result) => result,
                Err(_) => Err(EngineError::DeadlineExceeded {
                    seconds: cfg.deadline.as_secs(),
                }),
            };
            counts = c.counts;
            ctx = Some(c);
            result.map(|()| true)
        }
        Ok(None) => Ok(false),
        Err(e) => Err(e),
    };
    let (outcome, error) = match result {
        Ok(false) => (Outcome::Locked, None),
        Ok(true) if counts.failed > 0 => (Outcome::CompletedWithErrors, None),
        Ok(true) => (Outcome::Succeeded, None),
        Err(EngineError::Cancelled) => (Outcome::Cancelled, Some(EngineError::Cancelled)),
        Err(e) => (Outcome::Failed, Some(e)),
    };
    let summary = Summary {
        run_id,
        outcome,
        delivered: counts.delivered,
        failed: counts.failed,
        skipped: counts.skipped,
        reacknowledged: counts.reacknowledged,
        pages: counts.pages,
        started_at,
        duration_ms: started.elapsed().as_millis() as u64,
        error: error.map(|e| e.report()),
    };
    if let Some(ctx) = ctx.as_mut() {
        let record = RunRecord {
            run_id: summary.run_id.clone(),
            started_at: summary.started_at.clone(),
            finished_at: Some(journal::now()),
            outcome: Some(format!("{:?}", summary.outcome)),
            delivered: summary.delivered,
            failed: summary.failed,
            skipped: summary.skipped,
            reacknowledged: summary.reacknowledged,
            duration_ms: Some(summary.duration_ms),
            error_id: summary.error.as_ref().map(|e| e.error_id.to_owned()),
            message: summary.error.as_ref().map(|e| e.message.clone()),
        };
        if let Err(e) = ctx.journal.finish_run(&record) {
            reporter.warning(format!("could not record the run in the journal: {e}"));
        }
    }
    summary
}

/// Checks the folders, takes the lock and opens the journal. `Ok(None)`: another run holds the
/// lock, and nothing was touched.
async fn start<'a>(
    cfg: &'a ValidatedConfig,
    reporter: &'a Reporter,
    cancel: &'a CancellationToken,
    run_id: &str,
    started_at: &str,
) -> Result<Option<Ctx<'a>>> {
    for (_, folder) in &cfg.folders {
        require_folder(folder)?;
    }
    for warning in state_access::prepare(&cfg.state_path, cfg.what_if)? {
        reporter.warning(warning);
    }
    let Some(lock) = RunLock::try_acquire(&cfg.state_path)? else {
        reporter.warning(format!(
            "another run holds the lock on {}; this run does nothing",
            cfg.state_path.display()
        ));
        return Ok(None);
    };
    let mut journal = Journal::open(&cfg.state_path)?;
    journal.begin_run(run_id, started_at)?;
    Ok(Some(Ctx {
        cfg,
        reporter,
        cancel,
        journal,
        spool: Spool::open(&cfg.state_path)?,
        client: Client::new(cfg)?,
        run_id: run_id.to_owned(),
        counts: Counts::default(),
        held_back: 0,
        _lock: lock,
    }))
}

fn require_folder(folder: &Path) -> Result<()> {
    match std::fs::metadata(folder) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(EngineError::PublishFailed {
            path: folder.to_path_buf(),
            reason: "not a folder".into(),
        }),
        Err(e) => Err(EngineError::from_io(folder, &e)),
    }
}

impl Ctx<'_> {
    async fn pull(&mut self) -> Result<()> {
        recovery::recover(self).await?;
        let systems: Vec<System> = self.cfg.folders.iter().map(|(s, _)| *s).collect();
        let mut seen = HashSet::new();
        for page_no in 1..=self.cfg.max_pages {
            self.check_cancel()?;
            let limit =
                self.cfg.page_size + self.held_back.min(self.cfg.page_size.saturating_mul(9));
            self.reporter.verbose(format!(
                "GET {} (page {page_no}, limit {limit})",
                self.client.deliveries_url()
            ));
            let body = self
                .cancellable(self.client.fetch_page(&systems, limit))
                .await?;
            let page = body.parse()?;
            self.counts.pages += 1;
            // A page that brings nothing new in this run ends it, so a server that keeps
            // returning refused deliveries (or says hasMore forever) cannot keep us busy.
            let fresh: Vec<WireDelivery> = page
                .deliveries
                .into_iter()
                .filter(|d| seen.insert(d.id.clone()))
                .collect();
            if fresh.is_empty() {
                break;
            }
            self.reporter
                .verbose(format!("received {} deliveries", fresh.len()));
            self.process_page(fresh).await?;
            self.reporter.send(Event::Progress {
                activity: "XFlow delivery".into(),
                status: format!(
                    "{} delivered, {} refused",
                    self.counts.delivered, self.counts.failed
                ),
                current: self.counts.delivered + self.counts.failed,
                total: None,
            });
            if !page.has_more {
                break;
            }
        }
        self.report_quarantined()
    }

    async fn process_page(&mut self, fresh: Vec<WireDelivery<'_>>) -> Result<()> {
        let mut ready = Vec::new();
        let mut reack = Vec::new();
        let mut released = Vec::new();
        for wire in &fresh {
            match self.journal.get(&wire.id)? {
                Some(r) if matches!(r.state, State::Published | State::Acknowledged) => {
                    // Came back after it was published: acknowledge again, never write again.
                    self.reporter.verbose(format!(
                        "delivery {} was already published as {}; acknowledging it again",
                        r.id,
                        r.file_name.as_deref().unwrap_or(&r.wanted_name)
                    ));
                    reack.push(r.id);
                }
                Some(r) if matches!(r.state, State::Received | State::Publishing) => {
                    self.hold_back();
                    self.reporter.verbose(format!(
                        "delivery {} is already being published; skipped",
                        r.id
                    ));
                }
                previous => {
                    let was_quarantined = previous.is_some();
                    if let Some(r) = self.validate(wire, was_quarantined)? {
                        if was_quarantined {
                            released.push(r.record.id.clone());
                        }
                        ready.push(r);
                    }
                }
            }
        }
        if self.cfg.what_if {
            for r in &ready {
                let path = r.record.folder.join(&r.record.wanted_name);
                self.reporter
                    .send(Event::Planned(delivered_file(&r.record, &path)));
            }
            return Ok(());
        }
        if self.cfg.ack_mode == AckMode::None {
            ready = self.spool_received(ready)?;
        }
        let published = self.publish_batch(ready)?;
        for id in released {
            // An intact copy came and was published: the quarantined one is no longer needed.
            state_dir::remove_quarantined(&self.cfg.state_path, &id);
        }
        let mut ids: Vec<String> = published.iter().map(|r| r.id.clone()).collect();
        self.counts.reacknowledged += reack.len() as u64;
        ids.extend(reack);
        if self.cfg.ack_mode == AckMode::Ack {
            self.acknowledge(&ids).await?;
        }
        for record in &published {
            let path = record
                .folder
                .join(record.file_name.as_deref().unwrap_or(&record.wanted_name));
            self.reporter
                .send(Event::Delivered(delivered_file(record, &path)));
        }
        Ok(())
    }

    /// Validates one delivery. A valid one comes back ready to publish; an invalid one is
    /// quarantined (reported, kept in the state folder, not acknowledged) or, for a system with
    /// no folder in mode Ack, left pending on the server.
    fn validate<'a>(
        &mut self,
        wire: &'a WireDelivery<'a>,
        was_quarantined: bool,
    ) -> Result<Option<Ready<'a>>> {
        let system = System::from_wire(&wire.system);
        let folder = system.and_then(|s| self.cfg.folder_for(s));
        let checked = match (system, folder) {
            (None, _) => Err(EngineError::InvalidDelivery {
                id: wire.id.clone(),
                reason: format!("unknown system '{}'", wire.system),
            }),
            (Some(s), None) if self.cfg.ack_mode == AckMode::Ack => {
                self.counts.skipped += 1;
                self.hold_back();
                self.reporter.warning(format!(
                    "delivery {} is for {}, which has no folder configured; left pending",
                    wire.id,
                    s.wire_name()
                ));
                return Ok(None);
            }
            (Some(s), None) => Err(EngineError::InvalidDelivery {
                id: wire.id.clone(),
                reason: format!(
                    "it is for {}, which has no folder configured (kept, since ack mode None \
                     means the server has forgotten it)",
                    s.wire_name()
                ),
            }),
            (Some(_), Some(_)) => verify(wire, self.cfg.max_delivery_bytes),
        };
        match checked {
            Ok(size) => {
                let system = system.expect("checked above");
                let folder = folder.expect("checked above").to_path_buf();
                let record = Record {
                    wanted_name: names::safe_file_name(&wire.file_name, &wire.id),
                    requested_name: wire.file_name.clone(),
                    id: wire.id.clone(),
                    system,
                    file_name: None,
                    folder,
                    temp_name: None,
                    sha256: wire.sha256.trim().to_ascii_lowercase(),
                    size,
                    created_at: wire.created_at.clone(),
                    state: State::Received,
                    reason: None,
                    run_id: self.run_id.clone(),
                    received_at: journal::now(),
                    published_at: None,
                    acknowledged_at: None,
                };
                Ok(Some(Ready {
                    record,
                    payload: Payload::Base64(&wire.content),
                }))
            }
            Err(_) if was_quarantined => {
                // Reported with the other quarantined deliveries at the end of the run.
                self.hold_back();
                Ok(None)
            }
            Err(err) => {
                self.hold_back();
                self.quarantine(wire, system, &err)?;
                Ok(None)
            }
        }
    }

    fn quarantine(
        &mut self,
        wire: &WireDelivery<'_>,
        system: Option<System>,
        err: &EngineError,
    ) -> Result<()> {
        self.counts.failed += 1;
        self.reporter.send(Event::Error(err.report()));
        if self.cfg.what_if {
            return Ok(());
        }
        let reason = err.to_string();
        let document = serde_json::json!({
            "id": wire.id,
            "system": wire.system,
            "fileName": wire.file_name,
            "sha256": wire.sha256,
            "createdAt": wire.created_at,
            "reason": reason,
            "errorId": err.error_id(),
            "quarantinedAt": journal::now(),
            "content": wire.content,
        });
        let path = state_dir::quarantine(&self.cfg.state_path, &wire.id, &document)?;
        let record = Record {
            id: wire.id.clone(),
            // The journal only knows our two systems; an unknown one is kept in the document.
            system: system.unwrap_or(System::SdLoen),
            requested_name: wire.file_name.clone(),
            wanted_name: names::safe_file_name(&wire.file_name, &wire.id),
            file_name: None,
            folder: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            temp_name: None,
            sha256: wire.sha256.clone(),
            size: (wire.content.len() as u64 / 4) * 3,
            created_at: wire.created_at.clone(),
            state: State::Quarantined,
            reason: Some(reason),
            run_id: self.run_id.clone(),
            received_at: journal::now(),
            published_at: None,
            acknowledged_at: None,
        };
        self.journal.batch(|b| b.upsert(&record))
    }

    fn hold_back(&mut self) {
        if self.cfg.ack_mode == AckMode::Ack {
            self.held_back += 1;
        }
    }

    /// Quarantined deliveries are errors on every run until an administrator resolves them (or
    /// the server sends an intact copy). Those quarantined in this run were reported already.
    fn report_quarantined(&mut self) -> Result<()> {
        for r in self.journal.in_state(State::Quarantined)? {
            if r.run_id == self.run_id {
                continue;
            }
            self.counts.failed += 1;
            self.reporter.send(Event::Error(
                EngineError::Quarantined {
                    id: r.id.clone(),
                    reason: r.reason.unwrap_or_default(),
                    path: r.folder,
                }
                .report(),
            ));
        }
        Ok(())
    }

    /// Mode None: the server has forgotten these deliveries, so their bytes go to the spool and
    /// the journal before anything else happens.
    fn spool_received<'a>(&mut self, ready: Vec<Ready<'a>>) -> Result<Vec<Ready<'a>>> {
        if ready.is_empty() {
            return Ok(ready);
        }
        let mut spooled = Vec::with_capacity(ready.len());
        for r in ready {
            if let Payload::Base64(_) = &r.payload {
                self.spool.put(&r.record.id, &mut r.payload.open()?)?;
            }
            let path = self.spool.path(&r.record.id);
            spooled.push(Ready {
                record: r.record,
                payload: Payload::Spooled(path),
            });
        }
        self.spool.sync()?;
        fail::fail_point!("after-spool");
        self.journal
            .batch(|b| spooled.iter().try_for_each(|r| b.upsert(&r.record)))?;
        fail::fail_point!("after-journal-received");
        Ok(spooled)
    }

    /// The publish protocol for a batch (see the module comment). Returns the records as
    /// published. On error, files already renamed are journaled as published and the rest are
    /// left for the next run's recovery; nothing of the batch has been acknowledged.
    pub(crate) fn publish_batch(&mut self, ready: Vec<Ready<'_>>) -> Result<Vec<Record>> {
        if ready.is_empty() {
            return Ok(Vec::new());
        }
        let mut staged: Vec<(Record, StagedFile)> = Vec::with_capacity(ready.len());
        let discard_all = |staged: &[(Record, StagedFile)]| {
            staged.iter().for_each(|(_, s)| publish::discard(s));
        };
        let cancel = self.cancel;
        let results = publish::stage_all(&ready, publish::STAGING_WORKERS, |r| {
            if cancel.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            r.payload.open().and_then(|mut content| {
                publish::stage(&r.record.folder, &r.record.id, &mut content)
            })
        });
        let mut failure = None;
        for (r, result) in ready.into_iter().zip(results) {
            match result {
                Ok(s) if failure.is_some() => publish::discard(&s),
                Ok(s) if s.sha256 != r.record.sha256 => {
                    // Verified before staging, so only a damaged spool file gets here; never
                    // publish bytes other than the announced ones.
                    publish::discard(&s);
                    failure = Some(EngineError::Internal(format!(
                        "delivery {}: the staged copy does not match its sha256",
                        r.record.id
                    )));
                }
                Ok(s) => staged.push((r.record, s)),
                Err(err) => {
                    failure.get_or_insert(err);
                }
            }
        }
        if let Some(err) = failure {
            // The first failure in page order wins; nothing of the batch is published.
            discard_all(&staged);
            return Err(err);
        }
        fail::fail_point!("after-stage", |_| {
            discard_all(&staged);
            Err(EngineError::Internal("failpoint after-stage".into()))
        });
        for (record, s) in staged.iter_mut() {
            record.state = State::Publishing;
            record.temp_name = s
                .temp_path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned());
        }
        if let Err(err) = self
            .journal
            .batch(|b| staged.iter().try_for_each(|(r, _)| b.upsert(r)))
        {
            discard_all(&staged);
            return Err(err);
        }
        fail::fail_point!("after-journal-publishing");

        let mut published: Vec<Record> = Vec::with_capacity(staged.len());
        let mut failure = None;
        for (record, s) in staged {
            match publish::commit(&s, &record.wanted_name) {
                Ok(p) => {
                    self.reporter.verbose(format!(
                        "published {} as {}",
                        record.id,
                        p.path.display()
                    ));
                    let mut record = record;
                    record.file_name = Some(p.file_name);
                    published.push(record);
                    fail::fail_point!("after-rename");
                }
                Err(err) => {
                    failure = Some(err);
                    break;
                }
            }
        }
        self.finish_published(&mut published)?;
        match failure {
            Some(err) => Err(err),
            None => Ok(published),
        }
    }

    /// Flushes the folders of renamed files, then journals them as published (and, in mode
    /// None, as done: there is nothing to acknowledge). Shared with recovery.
    pub(crate) fn finish_published(&mut self, published: &mut [Record]) -> Result<()> {
        if published.is_empty() {
            return Ok(());
        }
        let mut folders: Vec<&Path> = published.iter().map(|r| r.folder.as_path()).collect();
        folders.sort();
        folders.dedup();
        for folder in folders {
            fsops::sync_dir(folder).map_err(|e| EngineError::from_io(folder, &e))?;
        }
        fail::fail_point!("after-sync-dir");
        let at = journal::now();
        let ack_mode = self.cfg.ack_mode;
        self.journal.batch(|b| {
            published.iter().try_for_each(|r| {
                let name = r.file_name.as_deref().unwrap_or(&r.wanted_name);
                b.mark_published(&r.id, name, &at)?;
                if ack_mode == AckMode::None {
                    b.mark_acknowledged(&r.id, &at)?;
                }
                Ok(())
            })
        })?;
        fail::fail_point!("after-journal-published");
        for r in published.iter_mut() {
            r.state = State::Published;
            r.published_at = Some(at.clone());
            self.spool.remove(&r.id);
        }
        self.counts.delivered += published.len() as u64;
        Ok(())
    }

    /// Acknowledges published deliveries, then journals that. Idempotent on the server, so a
    /// crash between the two only means acknowledging again next run.
    pub(crate) async fn acknowledge(&mut self, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.reporter
            .verbose(format!("acknowledging {} deliveries", ids.len()));
        self.cancellable(self.client.ack(ids)).await?;
        fail::fail_point!("after-ack");
        let at = journal::now();
        self.journal
            .batch(|b| ids.iter().try_for_each(|id| b.mark_acknowledged(id, &at)))
    }

    pub(crate) fn check_cancel(&self) -> Result<()> {
        if self.cancel.is_cancelled() {
            Err(EngineError::Cancelled)
        } else {
            Ok(())
        }
    }

    pub(crate) async fn cancellable<T>(
        &self,
        work: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Err(EngineError::Cancelled),
            result = work => result,
        }
    }
}

/// Checks size, base64 and sha256 by decoding in a stream, before anything is written.
/// Returns the decoded size.
fn verify(wire: &WireDelivery<'_>, max_bytes: u64) -> Result<u64> {
    let invalid = |reason: String| EngineError::InvalidDelivery {
        id: wire.id.clone(),
        reason,
    };
    let approximate = (wire.content.len() as u64 / 4) * 3;
    if approximate > max_bytes {
        return Err(invalid(format!(
            "it is about {approximate} bytes, more than the limit of {max_bytes}"
        )));
    }
    let mut decoder = base64::read::DecoderReader::new(
        wire.content.as_bytes(),
        &base64::engine::general_purpose::STANDARD,
    );
    let mut hasher = Sha256::new();
    let mut buf = [0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = decoder
            .read(&mut buf)
            .map_err(|e| invalid(format!("content is not valid base64: {e}")))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    let actual = hex::encode(hasher.finalize());
    if !actual.eq_ignore_ascii_case(wire.sha256.trim()) {
        return Err(EngineError::HashMismatch {
            id: wire.id.clone(),
            expected: wire.sha256.clone(),
            actual,
        });
    }
    Ok(size)
}

fn delivered_file(r: &Record, path: &Path) -> DeliveredFile {
    DeliveredFile {
        id: r.id.clone(),
        system: r.system,
        file_name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        path: path.display().to_string(),
        sha256: r.sha256.clone(),
        size: r.size,
        created_at: r.created_at.clone(),
    }
}

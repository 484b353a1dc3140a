//! One run from start to end. A real run takes the state folder's lock, recovers what an earlier
//! run left unfinished, then fetches pages of pending deliveries and hands each to the page step,
//! and records itself in the journal. A preview (-WhatIf) goes to `preview` and changes nothing.
//! The steps (recovery, page, publishing, ack, quarantine) never call back into this module.

use crate::config::{AckMode, System, ValidatedConfig};
use crate::crash::crash_point;
use crate::error::{EngineError, Result};
use crate::events::{Event, ImportStall, Outcome, Reporter, Summary};
use crate::journal::{self, Journal, RunRecord};
use crate::page::{self, Source};
use crate::preview;
use crate::protocol::{Client, WireId};
use crate::quarantine;
use crate::recovery;
use crate::scope::{Counts, Scope};
use crate::spool::PageSpool;
use crate::stall;
use crate::state_access;
use crate::state_dir::RunLock;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::path::Path;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

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
    if cfg.what_if {
        let result = preview::run(cfg, reporter, cancel, &mut counts).await;
        let result = result.map(|()| true);
        return summary(run_id, started_at, started, counts, result, Vec::new());
    }
    let (result, mut journal) =
        deliver(cfg, reporter, cancel, &run_id, &started_at, &mut counts).await;
    // Whatever became of the fetching, an importer that has stopped must be reported.
    let stalls = journal
        .as_mut()
        .map(|j| stall::report(j, cfg, reporter))
        .unwrap_or_default();
    let summary = summary(run_id, started_at, started, counts, result, stalls);
    if let Some(mut journal) = journal {
        // Retention after the run's own work, in the commit that records the run, so it never
        // delays a delivery nor costs a flush of its own. Only old finished runs and old
        // acknowledged deliveries go, so a concurrent run is not disturbed.
        let record = run_record(&summary);
        if let Err(e) = journal.finish_run_and_prune(
            &record,
            chrono::Utc::now(),
            cfg.retention,
            journal::PRUNE_STEP,
        ) {
            reporter.warning(format!("could not record the run in the journal: {e}"));
        } else if let Err(e) = journal.trim_wal() {
            reporter.warning(format!("could not checkpoint the journal: {e}"));
        }
    }
    summary
}

/// What the run ended with: `Ok(false)` when another run held the lock.
type Ended = Result<bool>;

fn summary(
    run_id: String,
    started_at: String,
    started: Instant,
    counts: Counts,
    result: Ended,
    stalls: Vec<ImportStall>,
) -> Summary {
    let (outcome, error) = match result {
        Ok(false) => (Outcome::Locked, None),
        Ok(true) if !stalls.is_empty() => (Outcome::ImportStalled, None),
        Ok(true) if counts.failed > 0 => (Outcome::CompletedWithErrors, None),
        Ok(true) => (Outcome::Succeeded, None),
        Err(EngineError::Cancelled) => (Outcome::Cancelled, Some(EngineError::Cancelled)),
        Err(e) => (Outcome::Failed, Some(e)),
    };
    Summary {
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
        stalls,
    }
}

/// The real run. Returns the journal once opened, so that the run can be recorded in it.
async fn deliver(
    cfg: &ValidatedConfig,
    reporter: &Reporter,
    cancel: &CancellationToken,
    run_id: &str,
    started_at: &str,
    counts: &mut Counts,
) -> (Ended, Option<Journal>) {
    let opened = async {
        for (_, folder) in &cfg.folders {
            require_folder(folder)?;
        }
        for warning in state_access::prepare(&cfg.state_path, false)? {
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
        Ok(Some((lock, journal)))
    };
    let (_lock, mut journal) = match opened.await {
        Ok(Some(opened)) => opened,
        Ok(None) => return (Ok(false), None),
        Err(e) => return (Err(e), None),
    };
    let work = async {
        let state_id = journal.state_id()?;
        let scope = Scope {
            cfg,
            reporter,
            cancel,
            run_id,
            state_id: &state_id,
        };
        let client = Client::new(cfg)?;
        let spool = PageSpool::open(&cfg.state_path)?;
        recovery::recover(&scope, &mut journal, counts, &client, &spool).await?;
        pull(&scope, &mut journal, counts, &client, &spool).await?;
        quarantine::report_earlier(&scope, &journal, counts)?;
        page::report_unreadable(&scope, &spool, counts)
    };
    let result = match tokio::time::timeout(cfg.deadline, work).await {
        Ok(result) => result.map(|()| true),
        Err(_) => Err(EngineError::DeadlineExceeded {
            seconds: cfg.deadline.as_secs(),
        }),
    };
    (result, Some(journal))
}

fn run_record(s: &Summary) -> RunRecord {
    RunRecord {
        run_id: s.run_id.clone(),
        started_at: s.started_at.clone(),
        finished_at: Some(journal::now()),
        outcome: Some(format!("{:?}", s.outcome)),
        delivered: s.delivered,
        failed: s.failed,
        skipped: s.skipped,
        reacknowledged: s.reacknowledged,
        duration_ms: Some(s.duration_ms),
        error_id: s.error.as_ref().map(|e| e.error_id.to_owned()),
        message: s.error.as_ref().map(|e| e.message.clone()),
        stalls: s.stalls.clone(),
    }
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

/// The ids a run has fetched, as 16 bytes of each one's SHA-256 rather than the id itself (about
/// 20 bytes an id instead of about 100): a backlog of a million stays within 32 MiB. Two ids that
/// share those bytes (about one chance in 10^27 among a million; making them on purpose takes
/// about 2^64 tries) would only make the second one wait for the next run.
#[derive(Default)]
struct SeenIds(HashSet<[u8; 16]>);

impl SeenIds {
    /// True when `id` was not seen before in this run.
    fn insert(&mut self, id: &WireId) -> bool {
        let digest = Sha256::new()
            .chain_update([u8::from(id.is_faithful())])
            .chain_update(id.as_bytes())
            .finalize();
        let mut print = [0u8; 16];
        print.copy_from_slice(&digest[..16]);
        self.0.insert(print)
    }
}

/// Fetches pages until the server has nothing more, a page brings nothing new in this run (so a
/// server that keeps returning refused deliveries, or says hasMore forever, cannot keep us
/// busy), or the page limit is reached.
async fn pull(
    scope: &Scope<'_>,
    journal: &mut Journal,
    counts: &mut Counts,
    client: &Client,
    spool: &PageSpool,
) -> Result<()> {
    let cfg = scope.cfg;
    let systems: Vec<System> = cfg.folders.iter().map(|(s, _)| *s).collect();
    let mut seen = SeenIds::default();
    // Deliveries left pending at the head of the queue (mode Ack): each page asks for that many
    // more, so refused deliveries never hide the ones behind them.
    let mut held_back = 0u32;
    for page_no in 1..=cfg.max_pages {
        scope.check_cancel()?;
        let limit = cfg.page_size + held_back.min(cfg.page_size.saturating_mul(9));
        scope.reporter.verbose(format_args!(
            "GET {} (page {page_no}, limit {limit})",
            client.deliveries_url()
        ));
        let body = scope
            .cancellable(client.fetch_page(&systems, limit, spool.incoming_path()))
            .await?;
        counts.pages += 1;
        let has_more = match cfg.ack_mode {
            AckMode::Ack => {
                let page = body.parse()?;
                let fresh: Vec<_> = page
                    .deliveries
                    .into_iter()
                    .filter(|d| seen.insert(&d.id))
                    .collect();
                if fresh.is_empty() {
                    break;
                }
                scope
                    .reporter
                    .verbose(format_args!("received {} deliveries", fresh.len()));
                held_back +=
                    page::process(scope, journal, counts, client, &fresh, Source::Fetched).await?;
                page.has_more
            }
            AckMode::None => {
                // The server has forgotten these deliveries: the page is made durable as it
                // came, before anything else looks at it.
                let spooled = spool.keep(body)?;
                crash_point!("after-spool");
                let Some(page) = page::process_spooled(
                    scope,
                    journal,
                    counts,
                    client,
                    spool,
                    &spooled,
                    Source::Fetched,
                )
                .await?
                else {
                    break;
                };
                let fresh = page.ids.iter().filter(|id| seen.insert(id));
                if fresh.count() == 0 {
                    break;
                }
                page.has_more
            }
        };
        scope.reporter.send(Event::Progress {
            activity: "XFlow delivery".into(),
            status: format!("{} delivered, {} refused", counts.delivered, counts.failed),
            current: counts.delivered + counts.failed,
            total: None,
        });
        if !has_more {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::SeenIds;
    use crate::protocol::WireId;

    #[test]
    fn an_id_is_fresh_once_and_a_lone_surrogate_id_never_equals_its_text() {
        let mut seen = SeenIds::default();
        let id = |text: &str, faithful| WireId::new(text.to_owned(), faithful);
        assert!(seen.insert(&id("0193c7e2-a", true)));
        assert!(seen.insert(&id("0193c7e2-b", true)));
        assert!(!seen.insert(&id("0193c7e2-a", true)));
        assert!(seen.insert(&id("0193c7e2-a", false)));
        assert!(!seen.insert(&id("0193c7e2-a", false)));
        assert!(seen.insert(&id("", true)));
        assert!(!seen.insert(&id("", true)));
    }
}

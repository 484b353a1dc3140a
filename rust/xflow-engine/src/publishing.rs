//! The publish protocol for a batch of validated deliveries, with the journal around it:
//!
//! 1. stage every file (on `publish::STAGING_WORKERS` threads, `publish::BatchFlush`: complete and durable,
//!    under a temp name);
//! 2. journal the temp names as `publishing`, one commit;
//! 3. rename each into place without replacing (`publish::commit`);
//! 4. flush each folder once, then journal them as `published` (in mode None also as
//!    acknowledged: there is nothing to acknowledge), one commit.
//!
//! Only then may the caller acknowledge. Recovery relies on step 1 coming before step 2: a temp
//! file named in the journal is complete, and only a rename removes it.

use crate::config::AckMode;
use crate::crash::{crash_point, failure_point};
use crate::error::{EngineError, Result};
use crate::fsops;
use crate::journal::{self, Journal, Record, State};
use crate::parallel;
use crate::publish::{self, StagedFile};
use crate::scope::{Counts, Scope};
use crate::validate::Ready;
use std::path::Path;

/// Publishes `ready` and returns the records as published. On error, files already renamed are
/// journaled as published and the rest are left for the next run's recovery; nothing of the
/// batch has been acknowledged.
pub(crate) fn publish(
    scope: &Scope<'_>,
    journal: &mut Journal,
    counts: &mut Counts,
    ready: Vec<Ready<'_>>,
) -> Result<Vec<Record>> {
    if ready.is_empty() {
        return Ok(Vec::new());
    }
    let mut staged = stage(scope, ready)?;
    crash_point!("after-stage");
    for (record, s) in staged.iter_mut() {
        record.state = State::Publishing;
        record.temp_name = s
            .temp_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
    }
    if let Err(err) = journal.batch(|b| staged.iter().try_for_each(|(r, _)| b.upsert(r))) {
        discard_all(&staged);
        return Err(err);
    }
    crash_point!("after-journal-publishing");

    let mut published: Vec<Record> = Vec::with_capacity(staged.len());
    let mut failure = None;
    for (mut record, s) in staged {
        match publish::commit(&s, &record.wanted_name, scope.cancel) {
            Ok(p) => {
                scope.reporter.verbose(format_args!(
                    "published {} as {}",
                    record.id,
                    p.path.display()
                ));
                record.file_name = Some(p.file_name);
                published.push(record);
                crash_point!("after-rename");
            }
            Err(err) => {
                failure = Some(err);
                break;
            }
        }
    }
    finish(scope, journal, counts, &mut published)?;
    match failure {
        Some(err) => Err(err),
        None => Ok(published),
    }
}

/// Stages every file of the batch; on any failure none of them is kept (the first failure in
/// page order is returned).
fn stage(scope: &Scope<'_>, ready: Vec<Ready<'_>>) -> Result<Vec<(Record, StagedFile)>> {
    let cancel = scope.cancel;
    let flush = publish::BatchFlush::begin(ready.iter().map(|r| r.record.folder.as_path()));
    let results = parallel::map_in_order(&ready, publish::STAGING_WORKERS, |r| {
        if cancel.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        publish::stage_pieces(
            &r.record.folder,
            scope.state_id,
            &r.record.id,
            r.record.size,
            flush.flush_for(&r.record.folder),
            &mut |sink| r.content.decode(sink),
        )
    });
    let mut staged = Vec::with_capacity(ready.len());
    let mut failure = None;
    for (r, result) in ready.into_iter().zip(results) {
        match result {
            Ok(s) if failure.is_some() => publish::discard(&s),
            Ok(s) if s.sha256 != r.record.sha256 => {
                // Verified before staging, so this means the bytes changed under us; never
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
    if failure.is_none() {
        failure = flush.finish().err();
    }
    match failure {
        Some(err) => {
            discard_all(&staged);
            Err(err)
        }
        None => Ok(staged),
    }
}

fn discard_all(staged: &[(Record, StagedFile)]) {
    staged.iter().for_each(|(_, s)| publish::discard(s));
}

/// Flushes the folders of renamed files, then journals them as published (and, in mode None,
/// as done). Shared with recovery.
pub(crate) fn finish(
    scope: &Scope<'_>,
    journal: &mut Journal,
    counts: &mut Counts,
    published: &mut [Record],
) -> Result<()> {
    if published.is_empty() {
        return Ok(());
    }
    let mut folders: Vec<&Path> = published.iter().map(|r| r.folder.as_path()).collect();
    folders.sort();
    folders.dedup();
    for folder in folders {
        fsops::sync_dir(folder).map_err(|e| EngineError::from_io(folder, &e))?;
    }
    crash_point!("after-sync-dir");
    failure_point!("journal-published");
    let at = journal::now();
    let ack_mode = scope.cfg.ack_mode;
    // Deferred: lost at a power cut, these rows are `publishing` with their temp files gone,
    // which recovery reads as renamed, as after a crash right here.
    journal.batch_deferred(|b| {
        published.iter().try_for_each(|r| {
            let name = r.file_name.as_deref().unwrap_or(&r.wanted_name);
            b.mark_published(&r.id, name, &at)?;
            if ack_mode == AckMode::None {
                b.mark_acknowledged(&r.id, &at)?;
            }
            Ok(())
        })
    })?;
    crash_point!("after-journal-published");
    for r in published.iter_mut() {
        r.state = State::Published;
        r.published_at = Some(at.clone());
    }
    counts.delivered += published.len() as u64;
    Ok(())
}

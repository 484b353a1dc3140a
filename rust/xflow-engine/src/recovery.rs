//! Recovery, at the start of every real run (never in a preview) and before anything is fetched:
//! finish or roll back the publishes an interrupted run left, remove this state folder's own
//! leftover temp files, acknowledge what was published but not acknowledged, and process the
//! pages waiting in the spool (mode None).
//!
//! It relies on one invariant of the publish protocol: a temp file named in a `publishing` row is
//! complete and durable (it was fsynced before the journal named it), and only a rename removes
//! it (no step ever links or copies it). So "temp file present" means "not published yet" and
//! "temp file gone" means "the rename happened", even if the importer has since taken the file
//! away. Only "not found" counts as gone: any other error stops recovery, touching nothing more.

use crate::ack;
use crate::config::AckMode;
use crate::crash::crash_point;
use crate::error::{EngineError, Result};
use crate::fsops;
use crate::journal::{Journal, Record, State};
use crate::names;
use crate::page::{self, Source};
use crate::protocol::Client;
use crate::publish::{self, StagedFile};
use crate::publishing;
use crate::scope::{Counts, Scope};
use crate::spool::{self, PageSpool};
use std::path::Path;

pub(crate) async fn recover(
    scope: &Scope<'_>,
    journal: &mut Journal,
    counts: &mut Counts,
    client: &Client,
    spool: &PageSpool,
) -> Result<()> {
    finish_interrupted_publishes(scope, journal, counts)?;
    crash_point!("recovery-after-publishes");
    sweep_leftovers(scope, journal, spool)?;
    if scope.cfg.ack_mode == AckMode::Ack {
        let unacknowledged: Vec<String> = journal
            .in_state(State::Published)?
            .into_iter()
            .map(|r| r.id)
            .collect();
        if !unacknowledged.is_empty() {
            scope.reporter.verbose(format_args!(
                "recovery: acknowledging {} deliveries published by an earlier run",
                unacknowledged.len()
            ));
            counts.reacknowledged += unacknowledged.len() as u64;
            ack::acknowledge(scope, journal, client, &unacknowledged).await?;
        }
    }
    for page in spool.pages()? {
        scope.check_cancel()?;
        scope.reporter.verbose(format_args!(
            "recovery: processing the spooled page {}",
            page.path.display()
        ));
        page::process_spooled(
            scope,
            journal,
            counts,
            client,
            spool,
            &page,
            Source::Spooled,
        )
        .await?;
    }
    scope.check_cancel()
}

fn finish_interrupted_publishes(
    scope: &Scope<'_>,
    journal: &mut Journal,
    counts: &mut Counts,
) -> Result<()> {
    let mut done = Vec::new();
    for mut record in journal.in_state(State::Publishing)? {
        let folder = record.folder.clone();
        let io = |e: std::io::Error| EngineError::from_io(&folder, &e);
        let temp = record.temp_name.as_ref().map(|name| folder.join(name));
        let present = match &temp {
            Some(temp) => fsops::exists(temp).map_err(io)?,
            None => false,
        };
        let name = match temp {
            Some(temp) if present => {
                if publish::sha256_of_file(&temp).map_err(io)? == record.sha256 {
                    let staged = StagedFile {
                        dir: folder.clone(),
                        temp_path: temp,
                        size: record.size,
                        sha256: record.sha256.clone(),
                    };
                    let name =
                        publish::commit(&staged, &record.wanted_name, scope.cancel)?.file_name;
                    crash_point!("recovery-after-rename");
                    name
                } else {
                    roll_back_damaged(scope, journal, &record, &temp)?;
                    continue;
                }
            }
            _ => find_published_name(journal, &record)?,
        };
        scope.reporter.verbose(format_args!(
            "recovery: finished the interrupted publish of {} as {name}",
            record.id
        ));
        record.file_name = Some(name);
        done.push(record);
    }
    publishing::finish(scope, journal, counts, &mut done)
}

/// Never expected (the temp file was durable before it was journaled), but a damaged temp file
/// is never published: forget the publish first, then remove the file, so a failed commit can
/// never leave "temp gone" to be read as "renamed". The delivery comes again: from the server
/// in mode Ack, from its spooled page in mode None.
fn roll_back_damaged(
    scope: &Scope<'_>,
    journal: &mut Journal,
    record: &Record,
    temp: &Path,
) -> Result<()> {
    journal.batch(|b| b.delete(&record.id).map(drop))?;
    crash_point!("recovery-after-rollback");
    fsops::remove_if_exists(temp).map_err(|e| EngineError::from_io(&record.folder, &e))?;
    scope.reporter.warning(format!(
        "recovery: the interrupted copy of delivery {} was damaged and was removed; it will be \
         delivered again",
        record.id
    ));
    Ok(())
}

/// How many names a delivery may end up under: its wanted name, then its collision names.
const CANDIDATES: u32 = 1000;

/// The name a renamed file got: the first candidate name (the wanted name, then every collision
/// name, gaps included: the importer may have taken an earlier one) holding our bytes and not
/// claimed by another delivery. When none does, the importer has already taken the file away,
/// and the wanted name is recorded.
fn find_published_name(journal: &Journal, record: &Record) -> Result<String> {
    let io = |e: std::io::Error| EngineError::from_io(&record.folder, &e);
    for attempt in 0..CANDIDATES {
        let name = if attempt == 0 {
            record.wanted_name.clone()
        } else {
            names::collision_name(&record.wanted_name, &record.sha256, attempt)
        };
        let path = record.folder.join(&name);
        let Some(meta) = fsops::metadata_if_exists(&path).map_err(io)? else {
            continue;
        };
        if meta.len() == record.size
            && publish::sha256_of_file(&path).map_err(io)? == record.sha256
            && !journal.name_claimed(&record.folder, &name, &record.id)?
        {
            return Ok(name);
        }
    }
    Ok(record.wanted_name.clone())
}

/// Removes this state folder's temp files that no journal row names (a crash before the journal
/// recorded them), and half-written spooled pages. Other state folders' temp files are theirs.
fn sweep_leftovers(scope: &Scope<'_>, journal: &Journal, spool: &PageSpool) -> Result<()> {
    for (_, folder) in &scope.cfg.folders {
        let io = |e: std::io::Error| EngineError::from_io(folder, &e);
        let leftovers = unrecorded_temp_files(journal, folder, scope.state_id)?;
        for name in &leftovers {
            fsops::remove_if_exists(&folder.join(name)).map_err(io)?;
        }
        if !leftovers.is_empty() {
            fsops::sync_dir(folder).map_err(io)?;
            scope.reporter.verbose(format_args!(
                "recovery: removed {} unfinished temp files from {}",
                leftovers.len(),
                folder.display()
            ));
        }
    }
    spool.remove_unfinished()?;
    Ok(())
}

/// This state folder's temp files in `folder` that no journal row names. The journal is only
/// asked when there are any: its temp names cover every delivery ever published there (a
/// year-old journal holds 150,000), and nearly every run finds no temp file at all.
fn unrecorded_temp_files(journal: &Journal, folder: &Path, state_id: &str) -> Result<Vec<String>> {
    let found = own_temp_files(folder, state_id).map_err(|e| EngineError::from_io(folder, &e))?;
    if found.is_empty() {
        return Ok(found);
    }
    let keep: std::collections::HashSet<String> =
        journal.temp_names_in(folder)?.into_iter().collect();
    Ok(found
        .into_iter()
        .filter(|name| !keep.contains(name))
        .collect())
}

fn own_temp_files(folder: &Path, state_id: &str) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(folder)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if publish::is_temp_file_of(&name, state_id) {
            names.push(name);
        }
    }
    Ok(names)
}

/// What recovery would do, for a preview, from the journal (if there is one) and the folders as
/// they are. Reads only.
pub(crate) fn describe(
    cfg: &crate::config::ValidatedConfig,
    journal: Option<&Journal>,
) -> Result<Vec<String>> {
    let mut plans = Vec::new();
    let waiting = spool::waiting_pages(&cfg.state_path)?;
    if waiting > 0 {
        plans.push(format!(
            "publish the deliveries of {waiting} pages waiting in the spool of {}",
            cfg.state_path.display()
        ));
    }
    let Some(journal) = journal else {
        return Ok(plans);
    };
    let publishing = journal.in_state(State::Publishing)?.len();
    if publishing > 0 {
        plans.push(format!(
            "finish {publishing} publishes an earlier run left unfinished"
        ));
    }
    let published = journal.in_state(State::Published)?.len();
    if published > 0 && cfg.ack_mode == AckMode::Ack {
        plans.push(format!(
            "acknowledge {published} deliveries published by an earlier run"
        ));
    }
    // A journal a run has not migrated yet names no temp file with a state id.
    let Ok(state_id) = journal.state_id() else {
        return Ok(plans);
    };
    for (_, folder) in &cfg.folders {
        let leftovers = unrecorded_temp_files(journal, folder, &state_id)?.len();
        if leftovers > 0 {
            plans.push(format!(
                "remove {leftovers} unfinished temp files from {}",
                folder.display()
            ));
        }
    }
    Ok(plans)
}

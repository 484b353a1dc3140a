//! Recovery, at the start of every run and before anything is fetched: finish or roll back the
//! publishes an interrupted run left, remove our own leftover temp files, acknowledge what was
//! published but not acknowledged, and publish what was received into the spool.
//!
//! It relies on one invariant of the publish protocol: a temp file named in a `publishing` row is
//! complete and durable (it was fsynced before the journal named it), and only a rename ever
//! removes it. So "temp file present" means "not published yet" and "temp file gone" means "the
//! rename happened", even if the importer has since taken the file away.

use crate::error::{EngineError, Result};
use crate::journal::{Record, State};
use crate::publish::{self, StagedFile};
use crate::pull::{Ctx, Payload, Ready};
use crate::{fsops, names};
use std::path::{Path, PathBuf};

pub(crate) async fn recover(ctx: &mut Ctx<'_>) -> Result<()> {
    finish_interrupted_publishes(ctx)?;
    sweep_leftovers(ctx)?;
    let unacknowledged: Vec<String> = ctx
        .journal
        .in_state(State::Published)?
        .into_iter()
        .map(|r| r.id)
        .collect();
    if !unacknowledged.is_empty() {
        ctx.reporter.verbose(format!(
            "recovery: acknowledging {} deliveries published by an earlier run",
            unacknowledged.len()
        ));
        ctx.counts.reacknowledged += unacknowledged.len() as u64;
        ctx.acknowledge(&unacknowledged).await?;
    }
    let received = ctx.journal.in_state(State::Received)?;
    if !received.is_empty() {
        ctx.reporter.verbose(format!(
            "recovery: publishing {} deliveries received by an earlier run",
            received.len()
        ));
        let ready = received
            .into_iter()
            .map(|record| Ready {
                payload: Payload::Spooled(ctx.spool.path(&record.id)),
                record,
            })
            .collect();
        let published = ctx.publish_batch(ready)?;
        for r in &published {
            ctx.reporter.verbose(format!(
                "recovery: published {} as {}",
                r.id,
                r.file_name.as_deref().unwrap_or(&r.wanted_name)
            ));
        }
    }
    ctx.check_cancel()
}

fn finish_interrupted_publishes(ctx: &mut Ctx<'_>) -> Result<()> {
    let mut done = Vec::new();
    for mut record in ctx.journal.in_state(State::Publishing)? {
        let temp_name = record.temp_name.clone().unwrap_or_default();
        let temp = record.folder.join(&temp_name);
        let outcome = if temp_name.is_empty() || !temp.exists() {
            Some(find_published_name(ctx, &record)?)
        } else if let Some(name) = linked_name(&record, &temp) {
            // A crash between link and unlink (the fallback for filesystems without
            // RENAME_NOREPLACE) leaves both names on one file: the publish happened.
            std::fs::remove_file(&temp).map_err(|e| EngineError::from_io(&record.folder, &e))?;
            Some(name)
        } else if publish::sha256_of_file(&temp).ok().as_deref() == Some(record.sha256.as_str()) {
            let staged = StagedFile {
                dir: record.folder.clone(),
                temp_path: temp.clone(),
                size: record.size,
                sha256: record.sha256.clone(),
            };
            Some(publish::commit(&staged, &record.wanted_name)?.file_name)
        } else {
            // Never expected (the temp file was durable before it was journaled), but a damaged
            // temp file is never published: start this delivery over.
            let _ = std::fs::remove_file(&temp);
            let spooled = ctx.spool.path(&record.id).exists();
            ctx.journal
                .batch(|b| b.roll_back_publishing(&record.id, spooled))?;
            ctx.reporter.warning(format!(
                "recovery: the interrupted copy of delivery {} was damaged and was removed; it \
                 will be delivered again",
                record.id
            ));
            None
        };
        if let Some(name) = outcome {
            ctx.reporter.verbose(format!(
                "recovery: finished the interrupted publish of {} as {name}",
                record.id
            ));
            record.file_name = Some(name);
            done.push(record);
        }
    }
    ctx.finish_published(&mut done)
}

/// The name a renamed file got: the first candidate name (the wanted name, then its collision
/// names in order) holding our bytes and not claimed by another delivery. When none does, the
/// importer has already taken the file away, and the wanted name is recorded.
fn find_published_name(ctx: &Ctx<'_>, record: &Record) -> Result<String> {
    for attempt in 0..1000 {
        let name = candidate(record, attempt);
        let path = record.folder.join(&name);
        let Ok(meta) = std::fs::metadata(&path) else {
            break;
        };
        if meta.len() == record.size
            && publish::sha256_of_file(&path).ok().as_deref() == Some(record.sha256.as_str())
            && !ctx
                .journal
                .name_claimed(&record.folder, &name, &record.id)?
        {
            return Ok(name);
        }
    }
    Ok(record.wanted_name.clone())
}

fn candidate(record: &Record, attempt: u32) -> String {
    if attempt == 0 {
        record.wanted_name.clone()
    } else {
        names::collision_name(&record.wanted_name, &record.sha256, attempt)
    }
}

#[cfg(unix)]
fn linked_name(record: &Record, temp: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let temp_meta = std::fs::metadata(temp).ok()?;
    if temp_meta.nlink() < 2 {
        return None;
    }
    (0..1000)
        .map(|attempt| candidate(record, attempt))
        .map_while(|name| {
            let meta = std::fs::metadata(record.folder.join(&name)).ok()?;
            Some((name, meta))
        })
        .find(|(_, meta)| meta.dev() == temp_meta.dev() && meta.ino() == temp_meta.ino())
        .map(|(name, _)| name)
}

#[cfg(not(unix))]
fn linked_name(_record: &Record, _temp: &Path) -> Option<String> {
    None
}

/// Removes our temp files that no journal row names (a crash before the journal recorded them)
/// and spool files of deliveries no longer waiting in it.
fn sweep_leftovers(ctx: &mut Ctx<'_>) -> Result<()> {
    let folders: Vec<PathBuf> = ctx.cfg.folders.iter().map(|(_, f)| f.clone()).collect();
    for folder in folders {
        let keep = ctx.journal.temp_names_in(&folder)?;
        let entries = std::fs::read_dir(&folder).map_err(|e| EngineError::from_io(&folder, &e))?;
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if publish::is_our_temp_file(&name)
                && !keep.contains(&name)
                && std::fs::remove_file(entry.path()).is_ok()
            {
                removed += 1;
            }
        }
        if removed > 0 {
            fsops::sync_dir(&folder).map_err(|e| EngineError::from_io(&folder, &e))?;
            ctx.reporter.verbose(format!(
                "recovery: removed {removed} unfinished temp files from {}",
                folder.display()
            ));
        }
    }
    let waiting: Vec<String> = ctx
        .journal
        .in_state(State::Received)?
        .into_iter()
        .chain(ctx.journal.in_state(State::Publishing)?)
        .map(|r| r.id)
        .collect();
    ctx.spool.sweep(&waiting);
    Ok(())
}

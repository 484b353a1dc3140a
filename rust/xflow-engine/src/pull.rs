//! One run's work: fetch pages of pending deliveries, validate each, publish it into its system's
//! folder, then acknowledge. A page's files are staged and fsynced, renamed into place, and each
//! folder is flushed once before anything of that page is acknowledged.

use crate::config::{AckMode, System, ValidatedConfig};
use crate::error::{EngineError, Result};
use crate::events::{DeliveredFile, Event};
use crate::protocol::{Client, WireDelivery};
use crate::publish::{self, StagedFile};
use crate::run::Reporter;
use crate::{fsops, names};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub delivered: u64,
    pub failed: u64,
    pub skipped: u64,
    pub pages: u64,
}

/// A delivery that passed validation, with its decoded bytes.
struct Valid {
    wire: WireDelivery,
    system: System,
    folder: PathBuf,
    content: Vec<u8>,
    file_name: String,
}

pub(crate) async fn pull(
    cfg: &ValidatedConfig,
    reporter: &Reporter,
    cancel: &CancellationToken,
    counts: &mut Counts,
) -> Result<()> {
    for (system, folder) in &cfg.folders {
        require_folder(folder).inspect_err(|_| {
            reporter.verbose(format!("{} folder is not usable", system.wire_name()))
        })?;
    }
    std::fs::create_dir_all(&cfg.state_path)
        .map_err(|e| EngineError::from_io(&cfg.state_path, &e))?;

    let client = Client::new(cfg)?;
    let systems: Vec<System> = cfg.folders.iter().map(|(s, _)| *s).collect();
    let mut seen = HashSet::new();
    for page_no in 1..=cfg.max_pages {
        check_cancel(cancel)?;
        reporter.verbose(format!(
            "GET {} (page {page_no}, limit {})",
            client.deliveries_url(),
            cfg.page_size
        ));
        let page = cancellable(cancel, client.fetch_page(&systems, cfg.page_size)).await?;
        counts.pages += 1;
        // A page that brings nothing we have not already seen in this run ends it, so a server
        // that keeps returning refused deliveries (or says hasMore forever) cannot keep us busy.
        let fresh: Vec<WireDelivery> = page
            .deliveries
            .into_iter()
            .filter(|d| seen.insert(d.id.clone()))
            .collect();
        if fresh.is_empty() {
            break;
        }
        reporter.verbose(format!("received {} deliveries", fresh.len()));
        let valid = validate_page(cfg, fresh, reporter, counts);
        let published = publish_page(cfg, valid, reporter, cancel, counts)?;
        if cfg.ack_mode == AckMode::Ack && !published.is_empty() {
            let ids: Vec<String> = published.iter().map(|d| d.id.clone()).collect();
            reporter.verbose(format!("acknowledging {} deliveries", ids.len()));
            cancellable(cancel, client.ack(&ids)).await?;
        }
        for file in published {
            reporter.send(Event::Delivered(file));
        }
        reporter.send(Event::Progress {
            activity: "XFlow delivery".into(),
            status: format!("{} delivered, {} refused", counts.delivered, counts.failed),
            current: counts.delivered + counts.failed,
            total: None,
        });
        if !page.has_more {
            break;
        }
    }
    Ok(())
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

fn validate_page(
    cfg: &ValidatedConfig,
    deliveries: Vec<WireDelivery>,
    reporter: &Reporter,
    counts: &mut Counts,
) -> Vec<Valid> {
    let mut valid = Vec::with_capacity(deliveries.len());
    for wire in deliveries {
        let Some(system) = System::from_wire(&wire.system) else {
            counts.failed += 1;
            reporter.send(Event::Error(
                EngineError::InvalidDelivery {
                    id: wire.id.clone(),
                    reason: format!("unknown system '{}'", wire.system),
                }
                .report(),
            ));
            continue;
        };
        let Some(folder) = cfg.folder_for(system) else {
            counts.skipped += 1;
            reporter.warning(format!(
                "delivery {} is for {}, which has no folder configured; left pending",
                wire.id,
                system.wire_name()
            ));
            continue;
        };
        match decode_and_verify(&wire) {
            Ok(content) => {
                let file_name = names::safe_file_name(&wire.file_name, &wire.id);
                valid.push(Valid {
                    folder: folder.to_path_buf(),
                    system,
                    content,
                    file_name,
                    wire,
                });
            }
            Err(err) => {
                counts.failed += 1;
                reporter.send(Event::Error(err.report()));
            }
        }
    }
    valid
}

fn decode_and_verify(wire: &WireDelivery) -> Result<Vec<u8>> {
    let content = base64::engine::general_purpose::STANDARD
        .decode(wire.content.as_bytes())
        .map_err(|e| EngineError::InvalidDelivery {
            id: wire.id.clone(),
            reason: format!("content is not valid base64: {e}"),
        })?;
    let actual = hex::encode(Sha256::digest(&content));
    if !actual.eq_ignore_ascii_case(wire.sha256.trim()) {
        return Err(EngineError::HashMismatch {
            id: wire.id.clone(),
            expected: wire.sha256.clone(),
            actual,
        });
    }
    Ok(content)
}

/// Stages every file of the page (write + fsync), then renames them into place and flushes each
/// folder once. A folder error stops the run: nothing of the page is acknowledged.
fn publish_page(
    cfg: &ValidatedConfig,
    valid: Vec<Valid>,
    reporter: &Reporter,
    cancel: &CancellationToken,
    counts: &mut Counts,
) -> Result<Vec<DeliveredFile>> {
    if cfg.what_if {
        for v in valid {
            reporter.send(Event::Planned(delivered_file(
                &v,
                &v.folder.join(&v.file_name),
            )));
        }
        return Ok(Vec::new());
    }
    let mut staged: Vec<(Valid, StagedFile)> = Vec::with_capacity(valid.len());
    for v in valid {
        if cancel.is_cancelled() {
            staged.iter().for_each(|(_, s)| publish::discard(s));
            return Err(EngineError::Cancelled);
        }
        match publish::stage(&v.folder, &v.wire.id, &mut v.content.as_slice()) {
            Ok(s) => staged.push((v, s)),
            Err(err) => {
                staged.iter().for_each(|(_, s)| publish::discard(s));
                return Err(err);
            }
        }
    }
    let mut published = Vec::with_capacity(staged.len());
    let mut folders: Vec<PathBuf> = Vec::new();
    for (i, (v, s)) in staged.iter().enumerate() {
        match publish::commit(s, &v.file_name) {
            Ok(p) => {
                reporter.verbose(format!("published {} as {}", v.wire.id, p.path.display()));
                if !folders.contains(&v.folder) {
                    folders.push(v.folder.clone());
                }
                published.push(delivered_file(v, &p.path));
            }
            Err(err) => {
                staged[i..].iter().for_each(|(_, s)| publish::discard(s));
                return Err(err);
            }
        }
    }
    for folder in &folders {
        fsops::sync_dir(folder).map_err(|e| EngineError::from_io(folder, &e))?;
    }
    counts.delivered += published.len() as u64;
    Ok(published)
}

fn delivered_file(v: &Valid, path: &Path) -> DeliveredFile {
    DeliveredFile {
        id: v.wire.id.clone(),
        system: v.system,
        file_name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        path: path.display().to_string(),
        sha256: v.wire.sha256.to_ascii_lowercase(),
        size: v.content.len() as u64,
        created_at: v.wire.created_at.clone(),
    }
}

fn check_cancel(cancel: &CancellationToken) -> Result<()> {
    if cancel.is_cancelled() {
        Err(EngineError::Cancelled)
    } else {
        Ok(())
    }
}

async fn cancellable<T>(
    cancel: &CancellationToken,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(EngineError::Cancelled),
        result = work => result,
    }
}

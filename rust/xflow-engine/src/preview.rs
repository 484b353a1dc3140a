//! A preview (-WhatIf): what a real run would do, changing nothing anywhere. No lock file, no
//! journal row, no recovery, no spool, no file in any folder, nothing acknowledged. It reads the
//! journal if there is one, says what recovery would do, and in mode Ack fetches the first page
//! (the server keeps it pending) to show where each delivery would go. In mode None it fetches
//! nothing: the server forgets every delivery it hands out.

use crate::config::{AckMode, System, ValidatedConfig};
use crate::error::Result;
use crate::events::{Event, Reporter};
use crate::journal::{Journal, State};
use crate::page;
use crate::protocol::Client;
use crate::recovery;
use crate::scope::{Counts, cancellable};
use crate::validate::{self, Verdict};
use tokio_util::sync::CancellationToken;

pub(crate) async fn run(
    cfg: &ValidatedConfig,
    reporter: &Reporter,
    cancel: &CancellationToken,
    counts: &mut Counts,
) -> Result<()> {
    let journal = Journal::open_read_only(&cfg.state_path)?;
    for plan in recovery::describe(cfg, journal.as_ref())? {
        reporter.preview(format!("Recover: {plan}."));
    }
    if cfg.ack_mode == AckMode::None {
        reporter.preview(
            "Fetch and deliver the pending deliveries: not previewed, because in ack mode None \
             the server forgets every delivery it hands out, so a preview would lose them.",
        );
        return Ok(());
    }
    let systems: Vec<System> = cfg.folders.iter().map(|(s, _)| *s).collect();
    let client = Client::new(cfg)?;
    // A large page goes to the system's temp folder while it is read, never to the state folder.
    let spill_to = std::env::temp_dir().join(format!("xflow-preview-{}.tmp", uuid::Uuid::now_v7()));
    let body = cancellable(cancel, client.fetch_page(&systems, cfg.page_size, spill_to)).await?;
    counts.pages += 1;
    let page = body.parse()?;
    for wire in &page.deliveries {
        if let Some(error) = validate::unreadable_id(cfg, wire, true) {
            counts.failed += 1;
            reporter.send(Event::Error(error.report()));
            continue;
        }
        let known = match &journal {
            Some(journal) => journal.get(&wire.id)?,
            None => None,
        };
        match known {
            Some(r) if matches!(r.state, State::Published | State::Acknowledged) => {
                reporter.preview(format!(
                    "Acknowledge delivery {} again: it was published earlier as {} and is not \
                     written again.",
                    r.id,
                    r.folder
                        .join(r.file_name.as_deref().unwrap_or(&r.wanted_name))
                        .display()
                ));
            }
            Some(r) if r.state == State::Publishing => reporter.preview(format!(
                "Finish the interrupted publish of delivery {} (recovery).",
                r.id
            )),
            _ => match validate::judge(cfg, "preview", wire, true)? {
                Verdict::Ready(r) => {
                    r.warnings.iter().for_each(|w| reporter.warning(w.clone()));
                    reporter.send(Event::Planned(page::delivered_file(&r.record)));
                }
                Verdict::NoFolder(system) => {
                    counts.skipped += 1;
                    reporter.warning(format!(
                        "delivery {} is for {}, which has no folder configured; it would be left \
                         pending",
                        wire.id,
                        system.wire_name()
                    ));
                }
                Verdict::Refused { error, .. } => {
                    counts.failed += 1;
                    reporter.send(Event::Error(error.report()));
                }
            },
        }
    }
    if page.has_more {
        reporter.preview(format!(
            "Fetch further pages: the preview shows the first {} pending deliveries only.",
            page.deliveries.len()
        ));
    }
    Ok(())
}

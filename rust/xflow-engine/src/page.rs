//! One page of deliveries: decide each from what the journal knows, quarantine what fails
//! validation, publish the rest as one batch, then (mode Ack) acknowledge. A page comes from the
//! server, or (mode None) from the spool, where every page is made durable before it is read.

use crate::ack;
use crate::config::AckMode;
use crate::error::{EngineError, Result};
use crate::events::{DeliveredFile, Event};
use crate::journal::{Journal, Record, State};
use crate::page_body::PageBody;
use crate::parallel;
use crate::protocol::{Client, WireDelivery, WireId};
use crate::publishing;
use crate::quarantine;
use crate::scope::{Counts, Scope};
use crate::spool::{PageSpool, SpooledPage};
use crate::state_dir;
use crate::validate::{self, Verdict};
use std::collections::HashSet;

/// Where a page's deliveries come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// Fetched in this run.
    Fetched,
    /// Read back from the spool by recovery: processed before, perhaps partly.
    Spooled,
}

/// Processes `deliveries`. Returns how many of them stay pending on the server ahead of the
/// rest (refused, or for a system with no folder, in mode Ack), so that the next page can ask
/// for that many more.
pub(crate) async fn process(
    scope: &Scope<'_>,
    journal: &mut Journal,
    counts: &mut Counts,
    client: &Client,
    deliveries: &[WireDelivery<'_>],
    source: Source,
) -> Result<u32> {
    let acking = scope.cfg.ack_mode == AckMode::Ack;
    // Only a delivery fetched in mode Ack is still held by the server; any other is ours alone.
    let server_keeps_it = acking && source == Source::Fetched;
    // What the journal knows of each delivery, then the judgement of each that needs one; the
    // decisions below stay in page order.
    let known = deliveries
        .iter()
        .map(|wire| {
            if wire.id.is_faithful() {
                journal.get(&wire.id)
            } else {
                Ok(None)
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let mut verdicts = judge_all(scope, deliveries, &known, server_keeps_it).into_iter();
    let mut ready = Vec::new();
    let mut reack = Vec::new();
    let mut released = Vec::new();
    let mut quarantined_here = HashSet::new();
    let mut held_back = 0;
    for (wire, known) in deliveries.iter().zip(known) {
        let verdict = verdicts.next().flatten();
        if let Some(error) = validate::unreadable_id(scope.cfg, wire, server_keeps_it) {
            counts.failed += 1;
            held_back += 1;
            scope.reporter.send(Event::Error(error.report()));
            continue;
        }
        // Only a quarantine below writes the journal before the page is published: an id that
        // comes twice in a page sees its first copy's quarantine.
        let known = if quarantined_here.contains(&wire.id) {
            journal.get(&wire.id)?
        } else {
            known
        };
        match known {
            Some(r) if matches!(r.state, State::Published | State::Acknowledged) => {
                if source == Source::Fetched {
                    scope.reporter.warning(redelivered(&r));
                }
                if acking {
                    reack.push(r.id);
                }
            }
            Some(r) if r.state == State::Publishing => {
                held_back += 1;
                scope.reporter.verbose(format_args!(
                    "delivery {} is already being published; skipped",
                    r.id
                ));
            }
            previous => {
                let was_quarantined = previous.is_some();
                let verdict = verdict.unwrap_or_else(|| {
                    validate::judge(scope.cfg, scope.run_id, wire, server_keeps_it)
                });
                match verdict? {
                    Verdict::Ready(r) => {
                        r.warnings
                            .iter()
                            .for_each(|w| scope.reporter.warning(w.clone()));
                        if was_quarantined {
                            released.push(r.record.id.clone());
                        }
                        ready.push(*r);
                    }
                    Verdict::NoFolder(system) => {
                        counts.skipped += 1;
                        held_back += 1;
                        scope.reporter.warning(format!(
                            "delivery {} is for {}, which has no folder configured; left pending",
                            wire.id,
                            system.wire_name()
                        ));
                    }
                    // Reported with the other quarantined deliveries at the end of the run.
                    Verdict::Refused { .. } if was_quarantined => held_back += 1,
                    Verdict::Refused { system, error } => {
                        held_back += 1;
                        quarantine::quarantine(scope, journal, counts, wire, system, &error)?;
                        quarantined_here.insert(&wire.id);
                    }
                }
            }
        }
    }
    let published = publishing::publish(scope, journal, counts, ready)?;
    for id in released {
        // An intact copy came and was published: the quarantined one is no longer needed.
        state_dir::remove_quarantined(&scope.cfg.state_path, &id);
    }
    if acking {
        counts.reacknowledged += reack.len() as u64;
        let ids: Vec<String> = published
            .iter()
            .map(|r| r.id.clone())
            .chain(reack)
            .collect();
        ack::acknowledge(scope, journal, client, &ids).await?;
    }
    for record in &published {
        scope
            .reporter
            .send(Event::Delivered(delivered_file(record)));
    }
    Ok(held_back)
}

/// Judges, on one thread per core, every delivery that is new or was quarantined (`None` for the
/// others): decoding, hashing and checking each content is most of a page's work, and each
/// delivery's is its own.
fn judge_all<'a>(
    scope: &Scope<'_>,
    deliveries: &'a [WireDelivery<'a>],
    known: &[Option<Record>],
    server_keeps_it: bool,
) -> Vec<Option<Result<Verdict<'a>>>> {
    let pairs: Vec<(&WireDelivery<'_>, &Option<Record>)> = deliveries.iter().zip(known).collect();
    parallel::map_in_order(&pairs, parallel::cpu_workers(), |(wire, known)| {
        let decided = known.as_ref().is_some_and(|r| {
            matches!(
                r.state,
                State::Published | State::Acknowledged | State::Publishing
            )
        });
        (wire.id.is_faithful() && !decided)
            .then(|| validate::judge(scope.cfg, scope.run_id, wire, server_keeps_it))
    })
}

fn redelivered(r: &Record) -> String {
    let name = r.file_name.as_deref().unwrap_or(&r.wanted_name);
    let path = r.folder.join(name);
    let whereabouts = match std::fs::symlink_metadata(&path) {
        Ok(_) => "it is still there".to_owned(),
        Err(_) => "it is no longer there (taken by the importer, or deleted)".to_owned(),
    };
    format!(
        "delivery {} came again although it was published on {} as {} ({whereabouts}); it is \
         acknowledged again and not written again",
        r.id,
        r.published_at.as_deref().unwrap_or("an earlier run"),
        path.display()
    )
}

/// What a spooled page held, for the run's page loop.
pub(crate) struct SpooledOutcome {
    pub ids: Vec<WireId>,
    pub has_more: bool,
}

/// Reads a spooled page back and processes every delivery in it; the page is removed once all
/// of them are final in the journal. A page that cannot be parsed is set aside for an
/// administrator (`None`); `report_unreadable` reports it on every run.
pub(crate) async fn process_spooled(
    scope: &Scope<'_>,
    journal: &mut Journal,
    counts: &mut Counts,
    client: &Client,
    spool: &PageSpool,
    page: &SpooledPage,
    source: Source,
) -> Result<Option<SpooledOutcome>> {
    let body = PageBody::kept_at(&page.path)?;
    let Ok(parsed) = body.parse() else {
        spool.set_aside(page)?;
        return Ok(None);
    };
    process(scope, journal, counts, client, &parsed.deliveries, source).await?;
    retire(journal, spool, page, &parsed.deliveries)?;
    Ok(Some(SpooledOutcome {
        ids: parsed.deliveries.iter().map(|d| d.id.clone()).collect(),
        has_more: parsed.has_more,
    }))
}

/// Pages the server sent that are not valid pages are errors on every run until an
/// administrator has dealt with them: their deliveries exist nowhere else.
pub(crate) fn report_unreadable(
    scope: &Scope<'_>,
    spool: &PageSpool,
    counts: &mut Counts,
) -> Result<()> {
    for kept in spool.unreadable()? {
        counts.failed += 1;
        let err = EngineError::ProtocolError {
            url: kept.display().to_string(),
            reason: "a page the server sent (ack mode None) is not valid JSON; it is kept there \
                     as received, since the server has forgotten its deliveries: ask XFlow to \
                     resend them, then delete the file"
                .into(),
        };
        scope.reporter.send(Event::Error(err.report()));
    }
    Ok(())
}

fn retire(
    journal: &Journal,
    spool: &PageSpool,
    page: &SpooledPage,
    deliveries: &[WireDelivery<'_>],
) -> Result<()> {
    for wire in deliveries {
        // An unreadable id is never final: the spooled page is all that holds that delivery.
        if !wire.id.is_faithful() || !journal.get(&wire.id)?.is_some_and(|r| r.state.is_final()) {
            return Ok(());
        }
    }
    spool.remove(page)
}

pub(crate) fn delivered_file(r: &Record) -> DeliveredFile {
    let path = r
        .folder
        .join(r.file_name.as_deref().unwrap_or(&r.wanted_name));
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

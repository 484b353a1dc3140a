//! Deliveries kept out of the import folders: each is written to `<state>/quarantine/` as it was
//! received, with the reason, journaled, never acknowledged, and reported as an error on every
//! run until an intact copy arrives or an administrator releases it.

use crate::config::System;
use crate::error::{EngineError, Result};
use crate::events::Event;
use crate::journal::{self, Journal, Record, State};
use crate::names;
use crate::protocol::WireDelivery;
use crate::scope::{Counts, Scope};
use crate::state_dir;
use std::path::Path;

pub(crate) fn quarantine(
    scope: &Scope<'_>,
    journal: &mut Journal,
    counts: &mut Counts,
    wire: &WireDelivery<'_>,
    system: Option<System>,
    err: &EngineError,
) -> Result<()> {
    counts.failed += 1;
    scope.reporter.send(Event::Error(err.report()));
    let reason = err.to_string();
    let document = serde_json::json!({
        "id": &*wire.id,
        "system": wire.system,
        "fileName": wire.file_name,
        "sha256": wire.sha256,
        "createdAt": wire.created_at,
        "reason": reason,
        "errorId": err.error_id(),
        "quarantinedAt": journal::now(),
    });
    let path = state_dir::quarantine(&scope.cfg.state_path, &wire.id, &document, &wire.content)?;
    let record = Record {
        id: wire.id.to_string(),
        // The journal only knows our two systems; an unknown one is kept in the document.
        system: system.unwrap_or(System::SdLoen),
        requested_name: wire.file_name.clone(),
        wanted_name: names::safe_file_name(&wire.file_name, &wire.id),
        file_name: None,
        folder: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        temp_name: None,
        sha256: wire.sha256.clone(),
        size: (wire.content.encoded_len() / 4) * 3,
        created_at: wire.created_at.clone(),
        state: State::Quarantined,
        reason: Some(reason),
        run_id: scope.run_id.to_owned(),
        received_at: journal::now(),
        published_at: None,
        acknowledged_at: None,
    };
    journal.batch(|b| b.upsert(&record))
}

/// Reports the deliveries quarantined by earlier runs (this run reported its own already).
pub(crate) fn report_earlier(
    scope: &Scope<'_>,
    journal: &Journal,
    counts: &mut Counts,
) -> Result<()> {
    for r in journal.in_state(State::Quarantined)? {
        if r.run_id == scope.run_id {
            continue;
        }
        counts.failed += 1;
        scope.reporter.send(Event::Error(
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

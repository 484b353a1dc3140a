//! The importer-stall alarm (docs/monitoring.md). A file this state folder published that still
//! lies in its import folder past the system's threshold means SD Løn or Prisme has stopped
//! importing. Files the module did not publish are not its business.
//!
//! Cost matters (the idle run happens 480 times a day): only journal rows published before the
//! threshold and not yet seen gone are read (a partial index), only those files are stat'ed, and a
//! file seen gone is marked so and never stat'ed again. With a working importer a run stats each
//! file about once, when it first crosses the threshold.

use crate::config::ValidatedConfig;
use crate::error::Result;
use crate::events::{ImportStall, Reporter};
use crate::journal::{self, Journal};
use std::time::Duration;

/// Checks, warns about each stalled folder, and returns them. A failed check is a warning: it must
/// not turn a run that delivered into a failed one.
pub(crate) fn report(
    journal: &mut Journal,
    cfg: &ValidatedConfig,
    reporter: &Reporter,
) -> Vec<ImportStall> {
    match check(journal, cfg) {
        Ok(stalls) => {
            for s in &stalls {
                reporter.warning(s.to_string());
            }
            stalls
        }
        Err(e) => {
            reporter.warning(format!(
                "could not check the import folders for a stalled importer: {e}"
            ));
            Vec::new()
        }
    }
}

/// The stalled import folders, oldest file first in each; marks the files found gone. Not called
/// by a preview (-WhatIf), which changes nothing.
fn check(journal: &mut Journal, cfg: &ValidatedConfig) -> Result<Vec<ImportStall>> {
    let now = chrono::Utc::now();
    let mut stalls = Vec::new();
    let mut gone = Vec::new();
    for &(system, threshold) in &cfg.stall_after {
        let Some(folder) = cfg.folder_for(system) else {
            continue;
        };
        let cutoff = now - chrono::Duration::seconds(threshold.as_secs() as i64);
        let before = cutoff.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut still_there = Vec::new();
        for row in journal.unclaimed(system, folder, &before)? {
            match std::fs::symlink_metadata(folder.join(&row.file_name)) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => gone.push(row.id),
                // Present, or not knowable (access denied): keep watching it.
                _ => still_there.push(row),
            }
        }
        // Rows come oldest first.
        if let Some(oldest) = still_there.first() {
            let age = chrono::DateTime::parse_from_rfc3339(&oldest.published_at)
                .map(|t| (now - t.with_timezone(&chrono::Utc)).num_minutes().max(0) as u64)
                .unwrap_or(0);
            stalls.push(ImportStall {
                system,
                folder: folder.display().to_string(),
                files: still_there.len() as u64,
                oldest_file: oldest.file_name.clone(),
                oldest_published_at: oldest.published_at.clone(),
                oldest_age_minutes: age,
                threshold_minutes: minutes(threshold),
            });
        }
    }
    if !gone.is_empty() {
        let at = journal::now();
        journal.batch(|b| gone.iter().try_for_each(|id| b.mark_gone(id, &at)))?;
    }
    Ok(stalls)
}

fn minutes(d: Duration) -> u64 {
    d.as_secs() / 60
}

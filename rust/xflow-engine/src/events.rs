//! What a run reports, in order, to whoever drives it (the cmdlet through the FFI). The
//! serialised form (`kind` tag, camelCase) is part of the ABI documented in docs/design.md.

use crate::config::System;
use crate::error::ErrorReport;
use serde::Serialize;
use std::sync::mpsc::SyncSender;

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Event {
    Verbose {
        message: String,
    },
    Progress {
        activity: String,
        status: String,
        current: u64,
        total: Option<u64>,
    },
    Delivered(DeliveredFile),
    /// With WhatIf: what would have been delivered where.
    Planned(DeliveredFile),
    /// With WhatIf: anything else a real run would change (recovery, acknowledgements), or why
    /// the preview did not look further.
    Preview {
        message: String,
    },
    Warning {
        message: String,
    },
    /// A non-terminating error, such as one delivery that failed validation.
    Error(ErrorReport),
    /// Always the last event of a run.
    Summary(Box<Summary>),
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DeliveredFile {
    pub id: String,
    pub system: System,
    pub file_name: String,
    pub path: String,
    pub sha256: String,
    pub size: u64,
    pub created_at: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub enum Outcome {
    /// Everything offered was delivered (or nothing was pending).
    Succeeded,
    /// The run finished, but some deliveries were refused or could not be published.
    CompletedWithErrors,
    /// The run stopped on an error; `Summary::error` says which.
    Failed,
    Cancelled,
    /// Another run holds the state folder's lock; this one did nothing.
    Locked,
    /// Files this module published are still in an import folder past the system's threshold:
    /// the importer has stopped. `Summary::stalls` names the folders.
    ImportStalled,
}

/// An import folder whose importer has stopped picking up the files this module published.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ImportStall {
    pub system: System,
    pub folder: String,
    /// Files published by this state folder's runs, still there past the threshold.
    pub files: u64,
    pub oldest_file: String,
    pub oldest_published_at: String,
    pub oldest_age_minutes: u64,
    pub threshold_minutes: u64,
}

impl std::fmt::Display for ImportStall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} import folder {}: {} file(s) published by XFlowDelivery still there after {} \
             minutes; the oldest, {}, was published {} minutes ago. Is the {} importer running?",
            self.system.wire_name(),
            self.folder,
            self.files,
            self.threshold_minutes,
            self.oldest_file,
            self.oldest_age_minutes,
            self.system.wire_name()
        )
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub run_id: String,
    pub outcome: Outcome,
    pub delivered: u64,
    pub failed: u64,
    /// Deliveries for a system with no configured folder, left pending on the server.
    pub skipped: u64,
    /// Deliveries that came back after they were published: acknowledged again, not rewritten.
    pub reacknowledged: u64,
    pub pages: u64,
    pub started_at: String,
    pub duration_ms: u64,
    pub error: Option<ErrorReport>,
    /// Import folders whose importer has stopped (checked in every run that held the lock).
    pub stalls: Vec<ImportStall>,
}

impl Summary {
    pub(crate) fn failed_to_start(error: crate::EngineError) -> Summary {
        Summary {
            run_id: uuid::Uuid::now_v7().to_string(),
            outcome: Outcome::Failed,
            delivered: 0,
            failed: 0,
            skipped: 0,
            reacknowledged: 0,
            pages: 0,
            started_at: crate::journal::now(),
            duration_ms: 0,
            error: Some(error.report()),
            stalls: Vec::new(),
        }
    }
}

/// Sends a run's events to its owner. Once the owner has gone, events are dropped silently and
/// the run winds down through its cancellation token.
#[derive(Clone)]
pub(crate) struct Reporter {
    tx: SyncSender<Event>,
    verbose: bool,
}

impl Reporter {
    /// `verbose`: whether verbose messages are sent at all.
    pub(crate) fn new(tx: SyncSender<Event>, verbose: bool) -> Reporter {
        Reporter { tx, verbose }
    }
    pub(crate) fn send(&self, event: Event) {
        let _ = self.tx.send(event);
    }
    /// Formats `message` only when it is sent (`format_args!`): most runs show no verbose
    /// messages, and a drain would otherwise format one per file.
    pub(crate) fn verbose(&self, message: std::fmt::Arguments<'_>) {
        if !self.verbose {
            return;
        }
        self.send(Event::Verbose {
            message: message.to_string(),
        });
    }
    pub(crate) fn warning(&self, message: impl Into<String>) {
        self.send(Event::Warning {
            message: message.into(),
        });
    }
    pub(crate) fn preview(&self, message: impl Into<String>) {
        self.send(Event::Preview {
            message: message.into(),
        });
    }
}

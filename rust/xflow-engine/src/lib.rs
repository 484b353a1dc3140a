//! The XFlow delivery engine: pulls pending SD Løn and Prisme deliveries from the XFlow API over
//! HTTPS and publishes each as a file in its system's import folder, never partially visible and
//! never replacing an existing file.
//!
//! Where things live: the run handle the FFI drives in `run`; one run's flow in `flow` (or
//! `preview` for -WhatIf), which drives the steps, each in its own module and none calling back:
//! `recovery`, then per page `page` (the durable page spool of mode None in `spool`), which uses
//! `validate`, `quarantine`, `publishing` (the batch with the journal around the file-level
//! protocol in `publish`, OS calls in `fsops`) and `ack`. The journal is `journal`, file-name
//! safety `names`, the wire protocol `protocol`, and the synchronous questions (history, status,
//! preflight) `calls`.

mod crash;

mod ack;
pub mod calls;
pub mod config;
mod content;
pub mod error;
pub mod events;
mod flow;
pub mod fsops;
pub mod journal;
pub mod names;
mod page;
pub mod page_body;
pub mod page_stream;
pub mod parallel;
pub mod preflight;
mod preview;
pub mod protocol;
pub mod proxy;
pub mod publish;
mod publishing;
mod quarantine;
pub mod queries;
mod recovery;
pub mod run;
mod scope;
pub mod spool;
mod stall;
pub mod state_access;
pub mod state_dir;
mod tls;
mod validate;

pub use config::{AckMode, ApiToken, RunConfig, System, ValidationMode};
pub use error::{EngineError, ErrorReport};
pub use events::{DeliveredFile, Event, ImportStall, Outcome, Summary};
pub use run::{NextEvent, Run, Worker};
pub use tokio_util::sync::CancellationToken;

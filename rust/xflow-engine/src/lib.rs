//! The XFlow delivery engine: pulls pending SD Løn and Prisme deliveries from the XFlow API over
//! HTTPS and publishes each as a file in its system's import folder, never partially visible and
//! never replacing an existing file.
//!
//! Where things live: the wire protocol in `protocol`, the publish protocol in `publish` (with
//! the OS-specific file operations in `fsops`), file-name safety in `names`, one run's steps in
//! `pull` (with crash recovery in `recovery` and the journal in `journal`), the run handle that
//! the FFI drives in `run`, and the synchronous questions (history, status, preflight) in `calls`.

pub mod calls;
pub mod config;
pub mod error;
pub mod events;
pub mod fsops;
pub mod journal;
pub mod names;
pub mod preflight;
pub mod protocol;
pub mod proxy;
pub mod publish;
mod pull;
pub mod queries;
mod recovery;
pub mod run;
pub mod state_access;
pub mod state_dir;

pub use config::{AckMode, ApiToken, RunConfig, System};
pub use error::{EngineError, ErrorReport};
pub use events::{DeliveredFile, Event, Outcome, Summary};
pub use run::{NextEvent, Run};

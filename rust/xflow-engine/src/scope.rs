//! What every step of a run reads: the settings, where events go, whether to stop, and which
//! run and state folder it is. Steps take it by reference with the few things they change (the
//! journal, the counts); none of them knows the run that drives it.

use crate::config::ValidatedConfig;
use crate::error::{EngineError, Result};
use crate::events::Reporter;
use tokio_util::sync::CancellationToken;

pub(crate) struct Scope<'a> {
    pub cfg: &'a ValidatedConfig,
    pub reporter: &'a Reporter,
    pub cancel: &'a CancellationToken,
    pub run_id: &'a str,
    /// The journal's id of this state folder, part of every temp file name it stages.
    pub state_id: &'a str,
}

impl Scope<'_> {
    pub fn check_cancel(&self) -> Result<()> {
        if self.cancel.is_cancelled() {
            Err(EngineError::Cancelled)
        } else {
            Ok(())
        }
    }

    pub async fn cancellable<T>(
        &self,
        work: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        cancellable(self.cancel, work).await
    }
}

/// `work`, unless the run is cancelled first.
pub(crate) async fn cancellable<T>(
    cancel: &CancellationToken,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(EngineError::Cancelled),
        result = work => result,
    }
}

/// What a run did, for its summary and the journal's run row.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub delivered: u64,
    pub failed: u64,
    pub skipped: u64,
    pub reacknowledged: u64,
    pub pages: u64,
}

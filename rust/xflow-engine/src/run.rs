//! A run as a handle: started on its own thread with its own single-threaded tokio runtime, it
//! reports `Event`s through a bounded channel that the owner drains at its own pace, and it can
//! be cancelled from any thread. Nothing here calls back into the owner.

use crate::config::{RunConfig, ValidatedConfig};
use crate::error::{EngineError, Result};
use crate::events::{Event, Reporter, Summary};
use crate::flow;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Enough to keep the run busy while the owner formats output, small enough that a slow reader
/// holds back the run rather than memory growing with the backlog.
const EVENT_BUFFER: usize = 256;

pub enum NextEvent {
    Event(Event),
    Timeout,
    Finished,
}

pub struct Run {
    events: Option<Receiver<Event>>,
    cancel: CancellationToken,
    thread: Option<JoinHandle<()>>,
}

impl Run {
    /// Validates the configuration (so a bad one fails here, before anything happens) and starts
    /// the run.
    pub fn start(config: RunConfig) -> Result<Run> {
        let config = config.validate()?;
        let (tx, rx) = mpsc::sync_channel(EVENT_BUFFER);
        let cancel = CancellationToken::new();
        let run_cancel = cancel.clone();
        let thread = std::thread::Builder::new()
            .name("xflow-run".into())
            .spawn(move || execute(config, Reporter::new(tx), run_cancel))
            .map_err(|e| EngineError::Internal(format!("cannot start the run thread: {e}")))?;
        Ok(Run {
            events: Some(rx),
            cancel,
            thread: Some(thread),
        })
    }

    pub fn next_event(&self, timeout: Duration) -> NextEvent {
        let Some(events) = &self.events else {
            return NextEvent::Finished;
        };
        match events.recv_timeout(timeout) {
            Ok(event) => NextEvent::Event(event),
            Err(RecvTimeoutError::Timeout) => NextEvent::Timeout,
            Err(RecvTimeoutError::Disconnected) => NextEvent::Finished,
        }
    }

    /// Asks the run to stop at the next step boundary. Idempotent; callable from any thread.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        self.cancel.cancel();
        // Dropping the receiver unblocks a run waiting for room in the channel.
        self.events.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn execute(config: ValidatedConfig, reporter: Reporter, cancel: CancellationToken) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let summary = match runtime {
        Ok(rt) => rt.block_on(flow::run(&config, &reporter, &cancel)),
        Err(e) => Summary::failed_to_start(EngineError::Internal(format!(
            "cannot start the runtime: {e}"
        ))),
    };
    reporter.send(Event::Summary(summary));
}

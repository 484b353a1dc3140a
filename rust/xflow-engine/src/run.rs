//! A run as a handle: started on its own thread with its own single-threaded tokio runtime, it
//! reports `Event`s through a bounded channel that the owner drains at its own pace, and it can
//! be cancelled from any thread. Nothing here calls back into the owner.
//!
//! The thread is never joined. Cancellation takes effect at the run's next await point or step
//! boundary, but a thread blocked in a system call (an fsync on a hung share, a blocking name
//! lookup, a FIFO) cannot be interrupted: an owner that joined it would hang with it. So dropping
//! a handle cancels and detaches, and `wait` lets the owner wait a bounded time for the thread to
//! end, which is when a run has released the state folder's lock.

use crate::config::{RunConfig, ValidatedConfig};
use crate::error::{EngineError, Result};
use crate::events::{Event, Reporter, Summary};
use crate::flow;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Enough to keep the run busy while the owner formats output, small enough that a slow reader
/// holds back the run rather than memory growing with the backlog.
const EVENT_BUFFER: usize = 256;

pub enum NextEvent<T = Event> {
    Event(T),
    Timeout,
    Finished,
}

/// Work on its own thread that reports `T`s, can be cancelled from any thread, and is detached,
/// never joined, when dropped.
pub struct Worker<T> {
    items: Option<Receiver<T>>,
    cancel: CancellationToken,
    ended: Arc<Ended>,
}

/// A run of the delivery engine.
pub type Run = Worker<Event>;

#[derive(Default)]
struct Ended {
    ended: Mutex<bool>,
    changed: Condvar,
}

/// Marks the thread as ended when dropped: after the work and everything it owned (the run's
/// lock, its journal connection), also when it panicked.
struct EndedOnDrop(Arc<Ended>);

impl Drop for EndedOnDrop {
    fn drop(&mut self) {
        *self.0.ended.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.0.changed.notify_all();
    }
}

impl<T: Send + 'static> Worker<T> {
    /// Starts `work` on a thread named `name`. It sends what it reports through the sender (which
    /// blocks while `capacity` items wait unread) and should stop soon after the token is
    /// cancelled; a send after the owner has gone fails at once.
    pub fn spawn(
        name: &str,
        capacity: usize,
        work: impl FnOnce(SyncSender<T>, CancellationToken) + Send + 'static,
    ) -> Result<Self> {
        let (tx, rx) = mpsc::sync_channel(capacity);
        let cancel = CancellationToken::new();
        let ended = Arc::new(Ended::default());
        let (work_cancel, work_ended) = (cancel.clone(), EndedOnDrop(ended.clone()));
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let _ended = work_ended;
                work(tx, work_cancel);
            })
            .map_err(|e| EngineError::Internal(format!("cannot start the {name} thread: {e}")))?;
        Ok(Worker {
            items: Some(rx),
            cancel,
            ended,
        })
    }
}

impl<T> Worker<T> {
    pub fn next_event(&self, timeout: Duration) -> NextEvent<T> {
        let Some(items) = &self.items else {
            return NextEvent::Finished;
        };
        match items.recv_timeout(timeout) {
            Ok(item) => NextEvent::Event(item),
            Err(RecvTimeoutError::Timeout) => NextEvent::Timeout,
            Err(RecvTimeoutError::Disconnected) => NextEvent::Finished,
        }
    }

    /// Asks the work to stop at its next await point or step boundary. Idempotent; callable from
    /// any thread.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Waits up to `timeout` for the thread to end; true once it has. A run has then released
    /// the state folder's lock. Meant for an owner that has stopped reading: items still coming
    /// are discarded, so work blocked on a full channel can reach its next cancellation point.
    /// Waiting does not cancel.
    pub fn wait(&self, timeout: Duration) -> bool {
        const DRAIN_EVERY: Duration = Duration::from_millis(20);
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(items) = &self.items {
                while items.try_recv().is_ok() {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let ended = self
                .ended
                .ended
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let (ended, _) = self
                .ended
                .changed
                .wait_timeout_while(ended, left.min(DRAIN_EVERY), |ended| !*ended)
                .unwrap_or_else(PoisonError::into_inner);
            if *ended || left.is_zero() {
                return *ended;
            }
        }
    }
}

impl<T> Drop for Worker<T> {
    fn drop(&mut self) {
        self.cancel.cancel();
        // Dropping the receiver unblocks work waiting for room in the channel; the thread is
        // left to end on its own.
        self.items.take();
    }
}

impl Run {
    /// Validates the configuration (so a bad one fails here, before anything happens) and starts
    /// the run.
    pub fn start(config: RunConfig) -> Result<Run> {
        let config = config.validate()?;
        Worker::spawn("xflow-run", EVENT_BUFFER, move |tx, cancel| {
            let reporter = Reporter::new(tx, config.verbose);
            execute(config, reporter, cancel)
        })
    }
}

fn execute(config: ValidatedConfig, reporter: Reporter, cancel: CancellationToken) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let summary = match runtime {
        Ok(rt) => {
            let summary = rt.block_on(flow::run(&config, &reporter, &cancel));
            // A name lookup stuck in the blocking pool must not keep this thread (and so the
            // run's end) waiting: the lookup finishes or dies with the process on its own.
            rt.shutdown_background();
            summary
        }
        Err(e) => Summary::failed_to_start(EngineError::Internal(format!(
            "cannot start the runtime: {e}"
        ))),
    };
    reporter.send(Event::Summary(Box::new(summary)));
}

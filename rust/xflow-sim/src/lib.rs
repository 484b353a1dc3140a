//! `xflow-sim`: a stand-in for the XFlow delivery API that misbehaves on demand.
//!
//! Start one in-process (port 0, fresh temporary certificates):
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let sim = xflow_sim::Simulator::start(xflow_sim::SimConfig::default()).await?;
//! let control = sim.control()?;
//! control.enqueue_text("SDLoen", "SDLoen_20250101_000001.csv", "a;b\r\n").await?;
//! // point the client under test at sim.base_url, trusting sim.ca_path, sending sim.token
//! sim.stop().await;
//! # Ok(()) }
//! ```

pub mod api;
pub mod app;
pub mod certs;
pub mod cli;
pub mod client;
pub mod control;
pub mod faults;
pub mod samples;
pub mod server;
pub mod state;

pub use client::{ControlClient, ReadyLine};
pub use faults::Target;
pub use samples::{SampleKind, TextEncoding};
pub use server::{RunningSim, ShutdownHandle, SimConfig, SimError, Simulator, TlsSetup};
pub use state::Mode;

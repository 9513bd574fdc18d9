//! The library behind the `scrum-orchestrator` and `scrum-worker` binaries. The
//! binaries in `src/bin/` only parse configuration and handle signals; what they
//! run is here, so tests and embedders can call it.
//!
//! # Layout
//!
//! - [`orchestrator`]: the orchestrator's configuration (the Python orchestrator's environment
//!   variables, each also a flag), its wiring, and the operator subcommands.
//! - [`worker`]: the worker's configuration and wiring.
//! - [`runner`]: the worker runtime: isolated git workspaces, the workflow command,
//!   pushes and pull requests.
//! - [`logging`]: `LOG_LEVEL` and signals.
//! - [`doctor`]: the report `scrum-orchestrator doctor` and `scrum-worker doctor` print.
//! - `fleet` (feature `fleet`): a whole deployment on one machine, for the
//!   end-to-end test and the demo.

pub mod doctor;
#[cfg(feature = "fleet")]
pub mod fleet;
pub mod logging;
pub mod orchestrator;
pub mod runner;
pub mod worker;

//! In-memory implementations of the four traits: the first backends the conformance
//! suite runs against, and what tests and embedders use without any service.

mod probe;
mod queue;
mod runner;
mod source;
mod workers;

pub use probe::ScriptedProbe;
pub use queue::MemoryQueue;
pub use runner::ScriptedRunner;
pub use source::{MemoryIssue, MemoryIssueSource, Write};

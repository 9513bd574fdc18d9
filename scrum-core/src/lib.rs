//! The core of the scrum orchestrator: the model, the four traits every backend
//! implements, the pure task state machine, in-memory backends, and the engine and
//! worker loop, generic over the traits.
//!
//! It knows nothing of GitHub, SSH, HTTP or SQL; the other crates of the workspace
//! plug those in.
//!
//! # Layout
//!
//! - [`model`]: task ids (`owner/repo#number`), issues, tasks, leases, outcomes.
//! - [`state`]: the task state machine as a pure function, the retry policy and the
//!   GitHub effects each step causes.
//! - [`queue`], [`source`], [`probe`], [`runner`]: the four traits, each with its
//!   `# Contract` and one `# Behavior` bullet per rule; [`workers`]: the worker
//!   registry every queue also keeps.
//! - [`events`]: [`IssueEvents`], webhook deliveries that make the engine poll now.
//! - [`forges`]: [`forges::Forges`], one issue source over several forges (GitHub
//!   beside GitLab), routing each call by the forge its task id names.
//! - [`deps`]: issue dependencies: the blockers an issue names, and cycles.
//! - [`memory`]: in-memory implementations of all four.
//! - [`backend`]: building blocks for `WorkQueue` backends (the enqueue and
//!   acknowledge steps, the live index), which the memory queue is built from.
//! - [`faults`]: a wrapper injecting errors and delays into any of them.
//! - [`engine`]: the orchestrator: poll loop, lease reaper, outbox dispatcher, worker
//!   registry, and the work API the HTTP server and in-process workers call.
//! - [`worker`]: the worker loop: claim, heartbeat while running, report.
//! - `conformance` (feature `testkit`): the suites every `WorkQueue` backend, every
//!   `IssueSource` and every `WorkSource` runs.
//! - [`observe`]: [`observe::Observer`], what the engine and the tracker's client
//!   report as it happens (claims, ended attempts, requests), for metrics.
//! - [`clock`]: time the tests can pause.
//! - [`pull_gate`]: pull-request review gating (`MAX_PENDING_PRS`).
//! - [`redact`]: removing secrets from text that leaves the process.
//! - [`clean`]: removing what a reader cannot see from text an agent gets.
//!
//! # Example
//!
//! An orchestrator and one worker in one process, on the in-memory backends:
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
//! use std::{sync::Arc, time::Duration};
//! use scrum_core::{engine::Orchestrator, memory::*, runner::RunOutcome, state::Policy,
//!     worker::WorkerLoop, Completion, Labels, TaskState, Timestamp, WorkerId, WorkQueue};
//!
//! let source = Arc::new(MemoryIssueSource::new(Labels::default()));
//! source.open_issue("acme/widgets#1".parse().unwrap(), "Add a widget", &["ai-ready"], Timestamp(0));
//! let queue = Arc::new(MemoryQueue::new(Policy::default()));
//! let orchestrator = Orchestrator::builder(queue.clone(), source.clone()).build();
//! orchestrator.poll_once().await.unwrap();
//!
//! let runner = ScriptedRunner::new(|a| (Duration::from_secs(5), RunOutcome::Success(Completion {
//!     pr_url: Some(format!("https://github.com/acme/widgets/pull/{}", a.task.number())),
//!     ..Completion::default()
//! })));
//! let worker = WorkerLoop::new(WorkerId::new("worker-1").unwrap(), Arc::new(orchestrator.clone()), Arc::new(runner));
//! worker.run_one().await.unwrap();
//! orchestrator.dispatch_once().await.unwrap();
//!
//! let task = queue.get(&"acme/widgets#1".parse().unwrap()).await.unwrap().unwrap();
//! assert_eq!(task.state(), TaskState::Completed);
//! let issue = source.issue(&task.id).unwrap();
//! assert!(issue.labels.contains(&"ai-completed".to_string()));
//! # });
//! ```

pub mod backend;
pub mod clean;
pub mod clock;
#[cfg(feature = "testkit")]
pub mod conformance;
pub mod credentials;
pub mod deps;
pub mod engine;
mod error;
pub mod events;
pub mod faults;
pub mod follow_up;
pub mod forges;
pub mod locks;
pub mod memory;
pub mod model;
pub mod observe;
pub mod probe;
pub mod pull_gate;
pub mod queue;
pub mod redact;
pub mod runner;
pub mod source;
pub mod spend;
pub mod state;
pub mod store;
pub mod worker;
pub mod workers;

pub use credentials::{RepoCredentials, RepoToken};
pub use error::{Error, ErrorKind, Result};
pub use events::{Delivery, IssueEvents};
pub use model::{
    Approval, Assignment, Attempt, Clarification, Completion, EditReview, Failure, HeartbeatReply,
    Holds, Lease, LeaseEnd, LeaseKind, LeaseToken, Outcome, Person, Priority, ReadyIssue, RepoName,
    Run, RunCause, Status, Stop, Task, TaskId, TaskState, Timestamp, WorkerId,
};
pub use probe::{HostHealth, ProbeReport, WorkerProbe};
pub use queue::{
    EffectFailure, EffectSelector, Enqueued, OutboxEntry, QueueCounts, RepoHolds, TaskFilter,
    WorkQueue,
};
pub use runner::{RunOutcome, WorkflowRunner};
pub use source::{Commented, IssueSource, IssueState, Labels, Provenance};
pub use spend::Spend;
pub use workers::{AgentSandbox, HostReport, Sighting, WorkerRecord, WorkerRegistry};

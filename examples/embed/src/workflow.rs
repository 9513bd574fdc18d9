//! A pretend workflow: it "works" for a moment on each issue and reports a pull
//! request. A real one runs an agent in a clone of the repository
//! (`scrum-worker`'s runner does).

use std::sync::Arc;
use std::time::Duration;

use scrum_core::memory::ScriptedRunner;
use scrum_core::{Completion, RunOutcome, WorkflowRunner};

/// The runner the example's worker uses.
pub(crate) fn pretend() -> Arc<dyn WorkflowRunner> {
    Arc::new(ScriptedRunner::new(|a| {
        let pr_url = format!(
            "https://example.com/{}/pull/{}",
            a.task.repo(),
            a.task.number()
        );
        let done = Completion {
            pr_url: Some(pr_url),
            ..Completion::default()
        };
        (Duration::from_millis(200), RunOutcome::Success(done))
    }))
}

//! [`ScriptedRunner`]: a [`WorkflowRunner`] whose outcomes a function decides.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::model::Assignment;
use crate::runner::{RunOutcome, WorkflowRunner};

type Script = Arc<dyn Fn(&Assignment) -> (Duration, RunOutcome) + Send + Sync>;

/// A [`WorkflowRunner`] that, for each assignment, waits as long as its script says
/// (on tokio's clock, so paused-time tests stay instant) and returns the script's
/// outcome; a cancellation during the wait returns `Release`.
#[derive(Clone)]
pub struct ScriptedRunner {
    script: Script,
}

impl ScriptedRunner {
    /// A runner whose `script` maps an assignment to (run time, outcome).
    pub fn new(
        script: impl Fn(&Assignment) -> (Duration, RunOutcome) + Send + Sync + 'static,
    ) -> ScriptedRunner {
        ScriptedRunner {
            script: Arc::new(script),
        }
    }
}

impl std::fmt::Debug for ScriptedRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScriptedRunner")
    }
}

#[async_trait]
impl WorkflowRunner for ScriptedRunner {
    async fn run(&self, assignment: &Assignment, cancel: CancellationToken) -> RunOutcome {
        let (took, outcome) = (self.script)(assignment);
        tokio::select! {
            () = tokio::time::sleep(took) => outcome,
            () = cancel.cancelled() => RunOutcome::Release("cancelled".into()),
        }
    }
}

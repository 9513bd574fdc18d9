//! The poll-step seam: "what this feature reads on each poll".
//!
//! The leader's poll lists the ready issues, then runs each [`PollStep`] in turn
//! with the round ([`PollRound`]): the listing, when it was taken, and the report
//! the steps fill in. A step that fails fails the poll (the next one tries again);
//! a step whose failure should not stop the others (a pull request's state, this
//! month's spend) logs it and returns `Ok`. The engine composes the steps and
//! names none of them.

use std::sync::Arc;

use async_trait::async_trait;

use super::Core;
use super::poll::PollReport;
use crate::error::Result;
use crate::model::{ReadyIssue, Timestamp};

/// One poll: what was listed, when, and what the steps did.
#[derive(Debug)]
pub(crate) struct PollRound {
    /// The ready issues the source listed.
    pub(crate) listed: Vec<ReadyIssue>,
    /// When the listing was asked for.
    pub(crate) observed_at: Timestamp,
    /// What the steps did, for the caller.
    pub(crate) report: PollReport,
    /// Set by a step that left work for the next poll (a backlog admitted in
    /// batches): the next poll then comes at once.
    pub(crate) again: bool,
}

/// A feature's part of the poll (see the module docs).
#[async_trait]
pub(crate) trait PollStep: Send + Sync {
    /// Reads what the feature needs, acts on it, and counts it in `round.report`.
    async fn run(&self, core: &Core, round: &mut PollRound) -> Result<()>;
}

/// The poll steps in force, in the order they run.
#[derive(Clone, Default)]
pub(crate) struct Steps {
    list: Vec<Arc<dyn PollStep>>,
}

impl Steps {
    /// The steps `list`, run in that order.
    pub(crate) fn new(list: Vec<Arc<dyn PollStep>>) -> Steps {
        Steps { list }
    }

    /// Runs every step over `round`; the first that fails stops the poll.
    pub(crate) async fn run(&self, core: &Core, round: &mut PollRound) -> Result<()> {
        for step in &self.list {
            step.run(core, round).await?;
        }
        Ok(())
    }
}

//! Dependencies: a pending task whose blockers are not all closed is blocked
//! ([`crate::state::Event::Block`]) and not handed out; once they are, it is
//! unblocked. See [`crate::deps`] for what an issue may say.
//!
//! The check runs on every poll for every pending task (a webhook about a blocker
//! makes the poll run at once), and again when a claim is about to hand a task
//! out: a task queued a moment ago, or whose blocker reopened, is never handed out
//! on an old answer. A blocker is read with [`crate::IssueSource::issue_state`]
//! (conditional on GitHub: an unchanged blocker costs no rate-limit point). A
//! tracker that fails for a moment changes nothing: the last answer stands, and a
//! claim goes out as the poll left it.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::Core;
use super::gate::ClaimGate;
use super::step::{PollRound, PollStep};
use crate::deps::{Blocked, cycle_problem, find_cycle, parse_blockers};
use crate::error::{ErrorKind, Result};
use crate::model::{Task, TaskId, TaskState, Timestamp};
use crate::queue::TaskFilter;
use crate::state::Event;

/// The most issues a cycle search reads the blockers of, from one task.
const GRAPH_LIMIT: usize = 200;

/// The blockers each issue declares, read once per round: from the body the poll
/// listed (or the stored task's) and the tracker's own dependencies.
#[derive(Default)]
struct Graph {
    /// Bodies of the issues listed in this round.
    bodies: BTreeMap<TaskId, String>,
    /// Declared blockers found so far.
    declared: BTreeMap<TaskId, Vec<TaskId>>,
}

impl Graph {
    /// A round over the issues listed with these bodies.
    fn listed(bodies: BTreeMap<TaskId, String>) -> Graph {
        Graph {
            bodies,
            declared: BTreeMap::new(),
        }
    }
}

/// What a dependency check did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Checked {
    blocked: usize,
    unblocked: usize,
}

/// The dependency gate: a claimed task blocked now is handed back; the poll
/// checks every pending task's blockers.
#[derive(Debug, Default)]
pub(crate) struct Dependencies;

#[async_trait]
impl ClaimGate for Dependencies {
    fn name(&self) -> &'static str {
        "dependencies"
    }

    async fn vet(&self, core: &Core, task: &Task) -> Result<bool> {
        self.vet_blockers(core, task).await
    }

    fn why(&self, task: &Task, _live: &[Task], _now: Timestamp) -> Option<String> {
        task.blocked().map(|b| format!("blocked: {}", b.describe()))
    }
}

/// The poll's part: every pending task's blockers, read again, with the bodies
/// this round listed.
#[async_trait]
impl PollStep for Dependencies {
    async fn run(&self, core: &Core, round: &mut PollRound) -> Result<()> {
        let bodies = round
            .listed
            .iter()
            .map(|i| (i.id.clone(), i.body.clone()))
            .collect();
        let checked = self
            .check_dependencies(core, &mut Graph::listed(bodies))
            .await?;
        round.report.blocked = checked.blocked;
        round.report.unblocked = checked.unblocked;
        Ok(())
    }
}

impl Dependencies {
    /// Checks the blockers of every pending task (see the module docs); a task
    /// whose check fails for a moment keeps what it had.
    async fn check_dependencies(&self, core: &Core, graph: &mut Graph) -> Result<Checked> {
        let pending = core
            .queue
            .list(&TaskFilter::states([TaskState::Pending]))
            .await?;
        let mut checked = Checked::default();
        for task in pending.iter().filter(|t| !t.stop_requested()) {
            match self.blocked_now(core, task, graph).await {
                Ok(now) => match self.record_blocked(core, task, now).await? {
                    Some(true) => checked.blocked += 1,
                    Some(false) => checked.unblocked += 1,
                    None => {}
                },
                Err(e) => {
                    tracing::warn!(task = %task.id, error = %e, "could not read the issue's blockers; it stays as it was");
                }
            }
        }
        if checked.unblocked > 0 {
            core.wake();
        }
        Ok(checked)
    }

    /// Before a claimed task goes out: blocked now, the claim is handed back and
    /// the task blocked (`false`). A tracker that cannot be read for a moment does
    /// not stop the claim: the poll's last answer stands.
    async fn vet_blockers(&self, core: &Core, task: &Task) -> Result<bool> {
        let mut graph = Graph::default();
        let blocked = match self.blocked_now(core, task, &mut graph).await {
            Ok(Some(b)) => b,
            Ok(None) => return Ok(true),
            Err(e) => {
                tracing::warn!(task = %task.id, error = %e, "could not read the issue's blockers before handing it out; it goes out");
                return Ok(true);
            }
        };
        let Some(token) = task.lease().map(|l| l.token) else {
            return Ok(true);
        };
        let reason = format!("blocked: {}", blocked.describe());
        core.queue
            .release(&task.id, token, reason, core.now())
            .await?;
        let id = task.id.clone();
        match self
            .record_blocked(core, &core.task(&id).await?, Some(blocked))
            .await
        {
            // Claimed again meanwhile: that claim checks for itself.
            Err(e) if e.kind() == ErrorKind::InvalidTransition => Ok(false),
            other => other.map(|_| false),
        }
    }

    /// Stores what blocks `task` now: `Some(true)` when it became (or stays, with
    /// something new) blocked, `Some(false)` when it was unblocked.
    async fn record_blocked(
        &self,
        core: &Core,
        task: &Task,
        now: Option<Blocked>,
    ) -> Result<Option<bool>> {
        let event = match (now, &task.blocked()) {
            (Some(b), Some(old)) if old.same_as(&b) => return Ok(None),
            (Some(b), _) => {
                tracing::info!(task = %task.id, blocked = %b.describe(), "blocked: not handed out until its blockers are closed");
                Event::Block { blocked: b }
            }
            (None, Some(_)) => {
                tracing::info!(task = %task.id, "every blocker is closed: the task may be handed out");
                Event::Unblock
            }
            (None, None) => return Ok(None),
        };
        let blocked = matches!(event, Event::Block { .. });
        core.queue.apply(&task.id, event, core.now()).await?;
        Ok(Some(blocked))
    }

    /// What blocks `task` now: its open blockers, a cycle through it, blockers that
    /// cannot be read. Fails only when the tracker fails for a moment.
    async fn blocked_now(
        &self,
        core: &Core,
        task: &Task,
        graph: &mut Graph,
    ) -> Result<Option<Blocked>> {
        let declared = self
            .declared(core, &task.id, Some(&task.issue.body), graph)
            .await?;
        if declared.is_empty() {
            return Ok(None);
        }
        let mut by = Vec::new();
        let mut problems = Vec::new();
        for b in &declared {
            match core.source.issue_state(b).await {
                Ok(s) if s.open => by.push(b.clone()),
                Ok(_) => {}
                Err(e) if e.kind().is_retryable() => return Err(e),
                Err(e) => problems.push(format!(
                    "blocker {b} cannot be read ({})",
                    unreadable(e.kind())
                )),
            }
        }
        if !by.is_empty() {
            if let Some(cycle) = self.cycle_through(core, &task.id, &by, graph).await {
                problems.insert(0, cycle_problem(&cycle));
            }
        }
        if by.is_empty() && problems.is_empty() {
            return Ok(None);
        }
        Ok(Some(Blocked {
            by,
            problem: (!problems.is_empty()).then(|| problems.join("; ")),
            since: core.now(),
        }))
    }

    /// A cycle from `start` through its open blockers `by`, among the issues whose
    /// bodies are known (listed now, or a live task's).
    async fn cycle_through(
        &self,
        core: &Core,
        start: &TaskId,
        by: &[TaskId],
        graph: &mut Graph,
    ) -> Option<Vec<TaskId>> {
        let mut edges = BTreeMap::from([(start.clone(), by.to_vec())]);
        let mut todo: Vec<TaskId> = by.to_vec();
        while let Some(next) = todo.pop() {
            if edges.contains_key(&next) || edges.len() >= GRAPH_LIMIT {
                continue;
            }
            let out = self
                .declared(core, &next, None, graph)
                .await
                .unwrap_or_default();
            todo.extend(out.iter().cloned());
            edges.insert(next, out);
        }
        find_cycle(start, &edges)
    }

    /// The blockers `id` declares (body, then the tracker's), remembered in `graph`.
    /// Without `body`, the one listed this round or the live task's is used; an
    /// issue with neither declares nothing here.
    async fn declared(
        &self,
        core: &Core,
        id: &TaskId,
        body: Option<&str>,
        graph: &mut Graph,
    ) -> Result<Vec<TaskId>> {
        if let Some(known) = graph.declared.get(id) {
            return Ok(known.clone());
        }
        let body = match body
            .map(str::to_string)
            .or_else(|| graph.bodies.get(id).cloned())
        {
            Some(b) => b,
            None => match core.queue.get(id).await? {
                Some(t) if !t.state().is_terminal() => t.issue.body.clone(),
                _ => {
                    graph.declared.insert(id.clone(), Vec::new());
                    return Ok(Vec::new());
                }
            },
        };
        let mut all = parse_blockers(&body, id);
        for b in core.source.blocked_by(id).await? {
            if b != *id && !all.contains(&b) {
                all.push(b);
            }
        }
        graph.declared.insert(id.clone(), all.clone());
        Ok(all)
    }
}

/// Why a blocker could not be read, for people.
fn unreadable(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::NotFound => "it does not exist, or this orchestrator may not see it",
        ErrorKind::Unauthorized | ErrorKind::Forbidden => "this orchestrator has no access to it",
        _ => "the tracker's answer was not understood",
    }
}

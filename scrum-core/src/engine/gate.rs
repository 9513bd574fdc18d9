//! The claim-gate seam: "is this task held, and why".
//!
//! A feature that keeps work from going out is one [`ClaimGate`], in a module of
//! its own with its own state and settings. A gate answers at three moments of a
//! claim, each optional:
//!
//! - **before** the store's claim ([`ClaimGate::check`]): it holds dispatch for
//!   the asking worker (pause, a draining worker), every task (review gating's
//!   total limit), or the tasks of some repositories (refused writes, review
//!   gating, budgets); the store's claim passes over what is held;
//! - **after** the store's claim ([`ClaimGate::vet`]): it looks at the one task
//!   claimed (its text, its blockers) and may hand the claim back, holding the task;
//! - **why**, for `/queue` and `/scaling` ([`ClaimGate::why`]): what holds one
//!   pending task that the gate knows of from the task and the live tasks alone
//!   (blocked, an edit under review, a lock another task holds).
//!
//! The engine composes the gates in [`Gates`] and names none of them.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::Core;
use crate::error::Result;
use crate::model::{Assignment, Task, Timestamp, WorkerId};
use crate::queue::Hold;

/// Who asks for work, and when: what a gate's check may look at.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClaimCtx<'a> {
    /// The asking worker (`None` for a read of what is held, as `/scaling` does).
    pub(crate) worker: Option<&'a WorkerId>,
    /// Whether the registry says the worker takes no new work.
    pub(crate) draining: bool,
    /// Now, on the engine's clock.
    pub(crate) now: Timestamp,
}

/// What one gate holds before a claim.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Nothing.
    #[default]
    Open,
    /// No work goes to the asking worker now (pause, drain); the tasks themselves
    /// are not held, so `/scaling` counts them as ready.
    Dispatch(String),
    /// Every task, with why.
    Tasks(String),
    /// The tasks of these repositories, each with why.
    Repos(Vec<(String, String)>),
}

/// What held something, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Why {
    /// The gate's name (`pause`, `drain`, `pull_gate`, `writes`, `budget`, `trust`,
    /// `dependencies`, `locks`).
    pub gate: &'static str,
    /// For people.
    pub reason: String,
}

/// A feature that holds work back (see the module docs). Every method has a
/// default that holds nothing.
#[async_trait]
pub(crate) trait ClaimGate: Send + Sync {
    /// The gate's name, as [`Why::gate`] says it.
    fn name(&self) -> &'static str;

    /// What the gate holds before the store's claim.
    async fn check(&self, _core: &Core, _ctx: &ClaimCtx<'_>) -> Result<Gate> {
        Ok(Gate::Open)
    }

    /// After the store's claim: `false` when the gate handed the claim of `task`
    /// back (and holds the task); the engine then looks for another.
    async fn vet(&self, _core: &Core, _task: &Task) -> Result<bool> {
        Ok(true)
    }

    /// What the gate adds to the assignment of a task it let go out.
    fn assign(&self, _core: &Core, _task: &Task, _assignment: &mut Assignment) {}

    /// What holds the pending `task` among the `live` tasks, as far as this gate
    /// knows from them.
    fn why(&self, _task: &Task, _live: &[Task], _now: Timestamp) -> Option<String> {
        None
    }
}

/// What the gates hold before a claim, composed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Held {
    /// Why no work goes to the asking worker, if none does.
    pub(crate) dispatch: Option<Why>,
    /// Why every task is held, if it is.
    pub(crate) tasks: Option<Why>,
    /// The held repositories, each with the first gate that held it.
    pub(crate) repos: BTreeMap<String, Why>,
}

impl Held {
    /// Whether a claim may be tried at all.
    pub(crate) fn may_claim(&self) -> bool {
        self.dispatch.is_none() && self.tasks.is_none()
    }

    /// What the store's claim passes over.
    pub(crate) fn hold(&self) -> Hold {
        Hold {
            repos: self.repos.keys().cloned().collect(),
        }
    }

    fn add(&mut self, gate: &'static str, held: Gate) {
        let why = |reason| Why { gate, reason };
        match held {
            Gate::Open => {}
            Gate::Dispatch(r) => drop(self.dispatch.get_or_insert(why(r))),
            Gate::Tasks(r) => drop(self.tasks.get_or_insert(why(r))),
            Gate::Repos(repos) => {
                for (repo, r) in repos {
                    self.repos.entry(repo).or_insert_with(|| why(r));
                }
            }
        }
    }
}

/// The claim gates in force, in the order they are asked.
#[derive(Clone, Default)]
pub(crate) struct Gates {
    list: Vec<Arc<dyn ClaimGate>>,
}

impl Gates {
    /// The gates `list`, asked in that order.
    pub(crate) fn new(list: Vec<Arc<dyn ClaimGate>>) -> Gates {
        Gates { list }
    }

    /// What every gate holds for `ctx`. For a worker, stops at the first gate
    /// that leaves it nothing to claim: the other gates cost it no read.
    pub(crate) async fn held(&self, core: &Core, ctx: &ClaimCtx<'_>) -> Result<Held> {
        let mut held = Held::default();
        for g in &self.list {
            held.add(g.name(), g.check(core, ctx).await?);
            if ctx.worker.is_some() && !held.may_claim() {
                break;
            }
        }
        Ok(held)
    }

    /// Whether every gate lets the claimed `task` go out (see [`ClaimGate::vet`]).
    pub(crate) async fn vet(&self, core: &Core, task: &Task) -> Result<bool> {
        for g in &self.list {
            if !g.vet(core, task).await? {
                tracing::info!(task = %task.id, gate = g.name(), "claim handed back");
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// What the gates add to `task`'s assignment.
    pub(crate) fn assign(&self, core: &Core, task: &Task, assignment: &mut Assignment) {
        self.list
            .iter()
            .for_each(|g| g.assign(core, task, assignment));
    }

    /// What holds the pending `task` now, given what the gates hold (`held`) and
    /// the `live` tasks; `None` when it may be handed out.
    pub(crate) fn why(
        &self,
        task: &Task,
        held: &Held,
        live: &[Task],
        now: Timestamp,
    ) -> Option<Why> {
        if let Some(why) = held
            .tasks
            .clone()
            .or_else(|| held.repos.get(task.id.repo()).cloned())
        {
            return Some(why);
        }
        self.list.iter().find_map(|g| {
            g.why(task, live, now).map(|reason| Why {
                gate: g.name(),
                reason,
            })
        })
    }
}

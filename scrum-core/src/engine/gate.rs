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

use super::{Core, Reads};
use crate::error::Result;
use crate::model::{Assignment, Task, Timestamp, WorkerId};
use crate::queue::RepoHolds;

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

impl ClaimCtx<'_> {
    /// Whether the asking worker takes no work whatever the tasks (the registry
    /// says it drains): a wake meant for it goes to another worker.
    pub(crate) fn takes_no_work(&self) -> bool {
        self.draining
    }
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
    pub(crate) fn hold(&self) -> RepoHolds {
        RepoHolds {
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

impl Reads<'_> {
    /// For each of the `live` tasks, what holds it if it is pending and held: a
    /// repository or every task held by a gate, or the gate that knows the task
    /// waits (blocked, an edit under review, a lock). What `/scaling` counts as
    /// blocked.
    pub async fn why(self, live: &[Task]) -> Result<Vec<Option<Why>>> {
        let now = self.now();
        let gates = &self.inner.features.gates;
        let ctx = ClaimCtx {
            worker: None,
            draining: false,
            now,
        };
        let held = gates.held(self.inner, &ctx).await?;
        Ok(live
            .iter()
            .map(|t| gates.why(t, &held, live, now))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::model::{ReadyIssue, TaskId};
    use crate::state::{self, Policy};

    /// A gate that holds what it is told and counts its checks.
    struct Fixed {
        name: &'static str,
        held: Gate,
        pass: bool,
        checks: AtomicUsize,
    }

    fn fixed(name: &'static str, held: Gate, pass: bool) -> Arc<Fixed> {
        Arc::new(Fixed {
            name,
            held,
            pass,
            checks: AtomicUsize::new(0),
        })
    }

    #[async_trait]
    impl ClaimGate for Fixed {
        fn name(&self) -> &'static str {
            self.name
        }
        async fn check(&self, _core: &Core, _ctx: &ClaimCtx<'_>) -> Result<Gate> {
            self.checks.fetch_add(1, Ordering::SeqCst);
            Ok(self.held.clone())
        }
        async fn vet(&self, _core: &Core, _task: &Task) -> Result<bool> {
            Ok(self.pass)
        }
        fn why(&self, _task: &Task, _live: &[Task], _now: Timestamp) -> Option<String> {
            (!self.pass).then(|| format!("{} says no", self.name))
        }
    }

    fn task(repo: &str) -> Task {
        let issue = ReadyIssue {
            id: TaskId::new(repo, 1).unwrap(),
            title: "t".into(),
            body: String::new(),
            labels: vec![],
            created_at: Timestamp(0),
        };
        state::new_task(issue, Timestamp(0), &Policy::default()).task
    }

    fn repos(list: &[(&str, &str)]) -> Gate {
        Gate::Repos(
            list.iter()
                .map(|(r, why)| (r.to_string(), why.to_string()))
                .collect(),
        )
    }

    #[tokio::test]
    async fn the_first_gate_to_hold_a_repository_says_why() {
        let core = Core::for_tests();
        let a = fixed("a", repos(&[("acme/x", "a holds x")]), true);
        let b = fixed(
            "b",
            repos(&[("acme/x", "b too"), ("acme/y", "b holds y")]),
            true,
        );
        let gates = Gates::new(vec![a, b]);
        let ctx = ClaimCtx {
            worker: None,
            draining: false,
            now: Timestamp(0),
        };
        let held = gates.held(&core, &ctx).await.unwrap();
        assert!(held.may_claim());
        assert_eq!(held.hold().repos, ["acme/x", "acme/y"]);
        let why = gates
            .why(&task("acme/x"), &held, &[], Timestamp(0))
            .unwrap();
        assert_eq!((why.gate, why.reason.as_str()), ("a", "a holds x"));
        assert_eq!(gates.why(&task("acme/z"), &held, &[], Timestamp(0)), None);
    }

    #[tokio::test]
    async fn a_worker_held_from_dispatch_costs_the_later_gates_nothing() {
        let core = Core::for_tests();
        let first = fixed("first", Gate::Dispatch("paused".into()), true);
        let later = fixed("later", repos(&[("acme/x", "x")]), true);
        let gates = Gates::new(vec![first, later.clone()]);
        let w = WorkerId::new("w").unwrap();
        let ctx = ClaimCtx {
            worker: Some(&w),
            draining: false,
            now: Timestamp(0),
        };
        let held = gates.held(&core, &ctx).await.unwrap();
        assert!(!held.may_claim());
        assert_eq!(held.dispatch.unwrap().gate, "first");
        assert_eq!(later.checks.load(Ordering::SeqCst), 0);
        // A read (no worker) asks every gate.
        let read = ClaimCtx {
            worker: None,
            ..ctx
        };
        let held = gates.held(&core, &read).await.unwrap();
        assert_eq!(held.hold().repos, ["acme/x"]);
    }

    #[tokio::test]
    async fn a_claim_goes_out_only_when_every_gate_lets_it() {
        let core = Core::for_tests();
        let t = task("acme/x");
        let open = Gates::new(vec![fixed("a", Gate::Open, true)]);
        assert!(open.vet(&core, &t).await.unwrap());
        let vetoed = Gates::new(vec![
            fixed("a", Gate::Open, true),
            fixed("b", Gate::Open, false),
        ]);
        assert!(!vetoed.vet(&core, &t).await.unwrap());
        let why = vetoed.why(&t, &Held::default(), &[], Timestamp(0)).unwrap();
        assert_eq!((why.gate, why.reason.as_str()), ("b", "b says no"));
        let everything = Held {
            tasks: Some(Why {
                gate: "c",
                reason: "all held".into(),
            }),
            ..Held::default()
        };
        assert_eq!(
            vetoed.why(&t, &everything, &[], Timestamp(0)).unwrap().gate,
            "c"
        );
    }
}

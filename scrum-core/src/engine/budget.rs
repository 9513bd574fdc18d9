//! Cost budgets, from what workers report (a completion's and a failure's
//! `cost_usd`):
//!
//! - **Per issue** (`ISSUE_BUDGET_USD`, [`crate::state::Policy::issue_budget_usd`]):
//!   once a run's attempts have cost the budget, the run gets no further attempt:
//!   the state machine fails it, and its comment says why.
//! - **Per repository and month** (`REPO_MONTHLY_BUDGET_USD`): once the runs of a
//!   repository that finished this calendar month (UTC), and those still live, have
//!   cost it, dispatch for that repository pauses for the rest of the month;
//!   `/health` says why. Read from the store on each poll, so every orchestrator
//!   sharing it pauses the same.
//!
//! A claim's assignment carries what is left ([`crate::Assignment::budget_left_usd`]).

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::gate::{ClaimCtx, ClaimGate, Gate};
use super::step::{PollRound, PollStep};
use super::{Core, Reads, lock};
use crate::error::Result;
use crate::model::{Assignment, Task, Timestamp};
use crate::queue::TaskFilter;

/// The budgets in force (none by default).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Budgets {
    /// The most one repository's runs may cost in a calendar month
    /// (`REPO_MONTHLY_BUDGET_USD`).
    pub repo_monthly_usd: Option<f64>,
}

/// What each repository spent this month, as the last poll read it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MonthSpend {
    /// The first millisecond of the month it covers (UTC).
    pub month_start: Timestamp,
    /// US dollars by repository (`owner/name`).
    pub by_repo: BTreeMap<String, f64>,
}

/// The first millisecond (UTC) of the calendar month `now` falls in.
pub fn month_start(now: Timestamp) -> Timestamp {
    let rfc = now.to_rfc3339();
    let (y, m): (i64, i64) = (
        rfc[0..4].parse().unwrap_or(1970),
        rfc[5..7].parse().unwrap_or(1),
    );
    // Days from the epoch to the first of that month (Howard Hinnant's days_from_civil).
    let (y2, m2) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Timestamp((era * 146_097 + doe - 719_468) * 86_400_000)
}

/// The monthly budget gate and the poll step that reads this month's spend.
#[derive(Debug, Default)]
pub(crate) struct Budget {
    settings: Budgets,
    spend: Mutex<MonthSpend>,
}

impl Budget {
    /// The gate for `settings`.
    pub(crate) fn new(settings: Budgets) -> Budget {
        Budget {
            settings,
            spend: Mutex::default(),
        }
    }

    /// The repositories whose monthly budget is spent, each with why.
    pub(crate) fn holds(&self) -> Vec<(String, String)> {
        let Some(limit) = self.settings.repo_monthly_usd else {
            return Vec::new();
        };
        let spend = lock(&self.spend);
        spend
            .by_repo
            .iter()
            .filter(|(_, usd)| **usd >= limit)
            .map(|(repo, usd)| {
                (
                    repo.clone(),
                    format!(
                        "{repo} spent ${usd:.2} of its ${limit:.2} this month \
                         (REPO_MONTHLY_BUDGET_USD): dispatch there pauses until {}",
                        next_month(spend.month_start)
                    ),
                )
            })
            .collect()
    }

    /// What each repository spent this month, as the last poll read it.
    pub(crate) fn month_spend(&self) -> MonthSpend {
        lock(&self.spend).clone()
    }

    /// What is left for `task`'s next attempt: the smaller of the issue's budget
    /// (`issue_budget`) less its run's spend and its repository's monthly budget
    /// less this month's.
    fn left(&self, task: &Task, issue_budget: Option<f64>) -> Option<f64> {
        let spent = task.spend().cost_usd.unwrap_or(0.0);
        let issue = issue_budget.map(|limit| (limit - spent).max(0.0));
        let repo = self.settings.repo_monthly_usd.map(|limit| {
            let spent = lock(&self.spend)
                .by_repo
                .get(task.id.repo())
                .copied()
                .unwrap_or(0.0);
            (limit - spent).max(0.0)
        });
        match (issue, repo) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Reads this month's spend per repository from the store (only with
    /// `REPO_MONTHLY_BUDGET_USD`).
    async fn refresh(&self, core: &Core) -> Result<()> {
        if self.settings.repo_monthly_usd.is_none() {
            return Ok(());
        }
        let start = month_start(core.now());
        let tasks = core.queue.list(&TaskFilter::default()).await?;
        let mut by_repo: BTreeMap<String, f64> = BTreeMap::new();
        for t in tasks
            .iter()
            .filter(|t| t.finished_at().is_none_or(|at| at >= start))
        {
            if let Some(usd) = t.spend().cost_usd.filter(|usd| *usd > 0.0) {
                *by_repo.entry(t.id.repo().to_string()).or_default() += usd;
            }
        }
        *lock(&self.spend) = MonthSpend {
            month_start: start,
            by_repo,
        };
        Ok(())
    }
}

#[async_trait]
impl ClaimGate for Budget {
    fn name(&self) -> &'static str {
        "budget"
    }

    async fn check(&self, _core: &Core, _ctx: &ClaimCtx<'_>) -> Result<Gate> {
        Ok(Gate::Repos(self.holds()))
    }

    fn assign(&self, core: &Core, task: &Task, assignment: &mut Assignment) {
        assignment.budget_left_usd = self.left(task, core.queue.policy().issue_budget_usd);
    }
}

/// The poll's part: this month's spend, read again (a failed read keeps the last).
#[async_trait]
impl PollStep for Budget {
    async fn run(&self, core: &Core, _round: &mut PollRound) -> Result<()> {
        if let Err(e) = self.refresh(core).await {
            tracing::warn!(error = %e, "could not read this month's spend");
        }
        Ok(())
    }
}

impl<'a> Reads<'a> {
    /// The budgets in force.
    pub fn budgets(self) -> &'a Budgets {
        &self.inner.config.budgets
    }

    /// The most one run of an issue may cost (`ISSUE_BUDGET_USD`, a rule of the
    /// queue's policy).
    pub fn issue_budget(self) -> Option<f64> {
        self.inner.queue.policy().issue_budget_usd
    }

    /// What each repository spent this month, as the last poll read it.
    pub fn month_spend(self) -> MonthSpend {
        self.inner.features.budget.month_spend()
    }

    /// The repositories whose monthly budget is spent, each with why.
    pub fn budget_holds(self) -> Vec<(String, String)> {
        self.inner.features.budget.holds()
    }
}

/// The first day of the month after the one starting at `start`, as a date.
fn next_month(start: Timestamp) -> String {
    let later = month_start(start.plus(std::time::Duration::from_secs(32 * 86_400)));
    later.to_rfc3339()[..10].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_start_on_the_first_at_midnight_utc() {
        // 2026-11-24T02:40:43.123Z
        let t = Timestamp(1_795_488_043_123);
        assert_eq!(month_start(t).to_rfc3339(), "2026-11-01T00:00:00.000Z");
        assert_eq!(next_month(month_start(t)), "2026-12-01");
        let march = Timestamp(951_782_400_000 + 86_400_000); // 2000-03-01
        assert_eq!(month_start(march).to_rfc3339(), "2000-03-01T00:00:00.000Z");
        assert_eq!(next_month(Timestamp(1_796_083_200_000)), "2027-01-01");
    }

    #[tokio::test]
    async fn a_spent_repository_is_held_and_the_rest_is_what_is_left() {
        let core = Core::for_tests();
        let budget = Budget::new(Budgets {
            repo_monthly_usd: Some(5.0),
        });
        let ctx = ClaimCtx {
            worker: None,
            draining: false,
            now: Timestamp(0),
        };
        assert_eq!(
            budget.check(&core, &ctx).await.unwrap(),
            Gate::Repos(vec![])
        );
        lock(&budget.spend).by_repo = BTreeMap::from([
            ("acme/spent".to_string(), 6.0),
            ("acme/some".to_string(), 1.5),
        ]);
        let Gate::Repos(held) = budget.check(&core, &ctx).await.unwrap() else {
            panic!("a budget holds repositories");
        };
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].0, "acme/spent");
        assert!(
            held[0].1.contains("REPO_MONTHLY_BUDGET_USD"),
            "{}",
            held[0].1
        );
        let issue = crate::model::ReadyIssue {
            id: "acme/some#1".parse().unwrap(),
            title: "t".into(),
            body: String::new(),
            labels: vec![],
            created_at: Timestamp(0),
        };
        let policy = crate::state::Policy::default();
        let task = crate::state::new_task(issue, Timestamp(0), &policy).task;
        assert_eq!(budget.left(&task, None), Some(3.5));
        assert_eq!(budget.left(&task, Some(2.0)), Some(2.0));
    }
}

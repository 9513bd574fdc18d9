//! The settings that make up the queue's [`Policy`]: leases and retries, cost
//! budgets, and file-level locks.

use std::time::Duration;

use clap::Args;
use scrum_core::engine::Budgets;
use scrum_core::locks::LockRules;
use scrum_core::state::{Backoff, Policy};

/// The longest wait between two attempts, whatever RETRY_BACKOFF_SECS is below it.
const BACKOFF_CAP: Duration = Duration::from_secs(15 * 60);

/// Attempts, leases and the leader's lease.
#[derive(Debug, Args)]
#[command(next_help_heading = "Leases and retries")]
pub struct LeaseArgs {
    /// Attempts per issue before it is marked failed.
    #[arg(long, env = "MAX_ATTEMPTS", value_name = "MAX_ATTEMPTS", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub max_attempts: u32,
    /// Seconds a worker's lease lasts without a heartbeat.
    #[arg(long, env = "LEASE_SECS", value_name = "LEASE_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(3..))]
    pub lease_secs: u64,
    /// The longest a task may be held, heartbeats or not (also what clients that never
    /// send heartbeats get).
    #[arg(long, env = "MAX_RUN_SECS", value_name = "MAX_RUN_SECS", default_value_t = 3 * 3600, value_parser = clap::value_parser!(u64).range(60..))]
    pub max_run_secs: u64,
    /// Seconds before a failed attempt is retried (doubling, with jitter, up to 15 min).
    #[arg(
        long,
        env = "RETRY_BACKOFF_SECS",
        value_name = "RETRY_BACKOFF_SECS",
        default_value_t = 30
    )]
    pub retry_backoff_secs: u64,
    /// Seconds the leader's lease lasts without renewal. With several orchestrators
    /// on one store, one leads (polls GitHub, reaps leases, writes labels) and renews
    /// its lease every second; when it dies another takes over within about this long.
    #[arg(long, env = "LEADER_TTL_SECS", value_name = "LEADER_TTL_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(3..=3600))]
    pub leader_ttl_secs: u64,
}

/// Cost budgets, from the costs workers report.
#[derive(Debug, Args)]
#[command(next_help_heading = "Budgets")]
pub struct BudgetArgs {
    /// The most one run of an issue may cost, in US dollars, from the costs workers
    /// report: once its attempts have cost this much it gets no further attempt
    /// (it fails, and its comment says why). Unset: no limit.
    #[arg(long, env = "ISSUE_BUDGET_USD", value_name = "ISSUE_BUDGET_USD", value_parser = parse_usd)]
    pub issue_budget_usd: Option<f64>,
    /// The most one repository's runs may cost in a calendar month (UTC), in US
    /// dollars: once spent, its issues are not handed out until the month ends, and
    /// /health says why. Unset: no limit.
    #[arg(long, env = "REPO_MONTHLY_BUDGET_USD", value_name = "REPO_MONTHLY_BUDGET_USD", value_parser = parse_usd)]
    pub repo_monthly_budget_usd: Option<f64>,
}

/// File-level locks: which issues may not be in progress at once.
#[derive(Debug, Args)]
#[command(next_help_heading = "Locks")]
pub struct LockArgs {
    /// The paths `area:NAME` labels stand for, as `NAME=PATH,PATH;NAME=PATH`
    /// (e.g. `auth=src/auth/**,docs/login.md;ui=web/**`). Issues also declare paths
    /// in their body (`Files: src/auth/**, docs/login.md`); two issues whose paths
    /// overlap are never in progress at once.
    #[arg(long, env = "LOCK_AREAS", value_name = "LOCK_AREAS", default_value = "", value_parser = parse_lock_areas)]
    pub lock_areas: LockAreas,
    /// Barrier paths, comma-separated, that conflict with every other declared path.
    /// Unset: Cargo.lock, package-lock.json, yarn.lock, pnpm-lock.yaml, poetry.lock,
    /// Gemfile.lock, go.sum, .github/workflows/**, .gitlab-ci.yml, .circleci/**.
    /// Empty: none.
    #[arg(long, env = "LOCK_BARRIERS", value_name = "LOCK_BARRIERS")]
    pub lock_barriers: Option<String>,
}

/// `LOCK_AREAS` as read: each area's name and paths.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LockAreas(pub Vec<(String, Vec<String>)>);

fn parse_lock_areas(s: &str) -> Result<LockAreas, String> {
    LockRules::parse_areas(s).map(LockAreas)
}

fn parse_usd(s: &str) -> Result<f64, String> {
    match s.trim().trim_start_matches('$').parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!(
            "{s:?} is not an amount of US dollars greater than 0 (e.g. 2.50)"
        )),
    }
}

impl LeaseArgs {
    /// How long the leader's lease lasts.
    pub fn leader_ttl(&self) -> Duration {
        Duration::from_secs(self.leader_ttl_secs)
    }
}

impl BudgetArgs {
    /// The budgets the engine's claim gate checks (the per-issue one is the queue's).
    pub fn engine_budgets(&self) -> Budgets {
        Budgets {
            repo_monthly_usd: self.repo_monthly_budget_usd,
        }
    }
}

impl LockArgs {
    /// The lock rules: the areas, and the barriers (the defaults when unset).
    pub fn rules(&self) -> LockRules {
        LockRules {
            areas: self.lock_areas.0.clone(),
            barriers: self
                .lock_barriers
                .as_deref()
                .map_or_else(|| LockRules::default().barriers, LockRules::parse_barriers),
        }
    }
}

/// The queue's policy from its three groups of settings.
pub fn policy(
    leases: &LeaseArgs,
    budgets: &BudgetArgs,
    locks: &LockArgs,
    follow_ups: &super::gates::FollowUpArgs,
) -> Policy {
    let initial = Duration::from_secs(leases.retry_backoff_secs);
    Policy {
        max_attempts: leases.max_attempts,
        lease: Duration::from_secs(leases.lease_secs),
        max_run: Duration::from_secs(leases.max_run_secs),
        backoff: Backoff {
            initial,
            cap: BACKOFF_CAP.max(initial),
        },
        issue_budget_usd: budgets.issue_budget_usd,
        locks: locks.rules(),
        follow_up_rounds: follow_ups.follow_up_rounds,
        ..Policy::default()
    }
}

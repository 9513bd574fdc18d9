//! Write-back health: which repositories' effects fail or were set aside, read from
//! the store so every orchestrator sharing it says the same; and the operator
//! actions on set-aside effects.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::gate::{ClaimCtx, ClaimGate, Gate};
use super::{Core, Operator, Orchestrator, Reads, lock};
use crate::error::Result;
use crate::model::Timestamp;
use crate::queue::{EffectSelector, OutboxEntry};

/// The most failing effects one health reading looks at.
const SCAN: usize = 10_000;

/// How long the held repositories, read from the store, are trusted before a
/// claim reads them again.
const HOLD_FRESH: Duration = Duration::from_secs(1);

/// The refused-writes gate: the repositories whose tasks claims pass over, as
/// last read from the store, and when that was.
#[derive(Debug, Default)]
pub(crate) struct RefusedWrites {
    held: Mutex<HeldRepos>,
}

#[derive(Debug, Default)]
struct HeldRepos {
    read_at: Option<Timestamp>,
    repos: Vec<String>,
}

/// How writes to one repository fare.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoWrites {
    /// `owner/name`.
    pub repository: String,
    /// Effects backing off after a failure.
    pub failing: u64,
    /// Effects set aside until an operator retries them.
    pub dead: u64,
    /// The repository refuses writes (no write access): its tasks are not handed
    /// out until a write to it succeeds again.
    pub refused: bool,
    /// The last failure's error.
    pub last_error: Option<String>,
}

/// How write-back fares, per repository with failing effects.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteHealth {
    /// Repositories with failing or set-aside effects, by name.
    pub repositories: Vec<RepoWrites>,
}

impl WriteHealth {
    /// From the failing effects of the outbox.
    pub fn from_failing(failing: &[OutboxEntry]) -> WriteHealth {
        let mut repos: BTreeMap<&str, RepoWrites> = BTreeMap::new();
        for e in failing {
            let repo = e.effect.task.repo();
            let r = repos.entry(repo).or_insert_with(|| RepoWrites {
                repository: repo.to_string(),
                ..RepoWrites::default()
            });
            if e.dead {
                r.dead += 1;
            } else {
                r.failing += 1;
            }
            r.refused |= e.refused;
            r.last_error.clone_from(&e.last_error);
        }
        WriteHealth {
            repositories: repos.into_values().collect(),
        }
    }

    /// Degraded while any effect is set aside or a repository refuses writes.
    pub fn is_degraded(&self) -> bool {
        self.repositories.iter().any(|r| r.dead > 0 || r.refused)
    }

    /// The repositories that refuse writes.
    pub fn refused(&self) -> impl Iterator<Item = &str> {
        self.repositories
            .iter()
            .filter(|r| r.refused)
            .map(|r| r.repository.as_str())
    }
}

impl RefusedWrites {
    /// What claims pass over now: the repositories that refuse writes (a run
    /// would finish with nowhere to report), until a write there succeeds or an
    /// operator retries its set-aside effects. Read from the store at most once a
    /// second, so every orchestrator sharing it holds the same.
    pub(crate) async fn held(&self, core: &Core) -> Result<Vec<String>> {
        let now = core.now();
        {
            let mut held = lock(&self.held);
            if held.read_at.is_some_and(|at| now < at.plus(HOLD_FRESH)) {
                return Ok(held.repos.clone());
            }
            // One claim reads; the ones that come while it does pass over what was
            // held until now rather than each reading too.
            if held.read_at.is_some() {
                held.read_at = Some(now);
            }
        }
        let health = match write_health(core).await {
            Ok(health) => health,
            Err(e) => {
                lock(&self.held).read_at = None;
                return Err(e);
            }
        };
        let repos: Vec<String> = health.refused().map(str::to_string).collect();
        let mut held = lock(&self.held);
        for repo in repos.iter().filter(|r| !held.repos.contains(r)) {
            tracing::warn!(repository = %repo, "GitHub refuses writes here: its tasks are held until a write succeeds (scrum-orchestrator effects)");
        }
        *held = HeldRepos {
            read_at: Some(now),
            repos,
        };
        Ok(held.repos.clone())
    }

    /// While something is held, makes the next claim read the hold from the store
    /// again (writes may have landed); says whether anything was held. With nothing
    /// held the cached reading stands, so a dispatch round costs claims no read.
    pub(crate) fn lift(&self) -> bool {
        let mut held = lock(&self.held);
        let holding = !held.repos.is_empty();
        if holding {
            held.read_at = None;
        }
        holding
    }
}

#[async_trait]
impl ClaimGate for RefusedWrites {
    fn name(&self) -> &'static str {
        "writes"
    }

    async fn check(&self, core: &Core, _ctx: &ClaimCtx<'_>) -> Result<Gate> {
        let repos = self.held(core).await?;
        Ok(Gate::Repos(
            repos
                .into_iter()
                .map(|r| {
                    let why = format!(
                        "GitHub refuses writes to {r}: its tasks wait until a write succeeds"
                    );
                    (r, why)
                })
                .collect(),
        ))
    }
}

/// How write-back fares, from the store.
pub(crate) async fn write_health(core: &Core) -> Result<WriteHealth> {
    let failing = core.queue.failing_effects(SCAN).await?;
    Ok(WriteHealth::from_failing(&failing))
}

impl Orchestrator {
    /// [`RefusedWrites::lift`], for the dispatcher once writes landed.
    pub(super) fn lift_hold(&self) -> bool {
        self.inner.features.writes.lift()
    }
}

impl Reads<'_> {
    /// How write-back fares, from the store.
    pub async fn write_health(self) -> Result<WriteHealth> {
        write_health(self.inner).await
    }

    /// Effects that failed (backing off or set aside), oldest first; only the set-aside
    /// ones with `dead_only`.
    pub async fn failing_effects(self, dead_only: bool) -> Result<Vec<OutboxEntry>> {
        let mut failing = self.inner.queue.failing_effects(SCAN).await?;
        failing.retain(|e| e.dead || !dead_only);
        Ok(failing)
    }
}

impl Operator<'_> {
    /// Tries the set-aside effects `which` names again (an operator fixed the
    /// token): each is due now and lands once. Returns how many.
    pub async fn retry_effects(self, which: &EffectSelector) -> Result<usize> {
        let revived = self.inner.queue.revive_effects(which, self.now()).await?;
        if revived > 0 {
            self.engine.lift_hold();
            tracing::info!(effects = revived, which = ?which, "set-aside effects retried by an operator");
        }
        Ok(revived)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::EffectFailure;
    use crate::state::{Effect, EffectKind};

    fn failed(repo: &str, n: u64, refused: bool, dead: bool) -> OutboxEntry {
        let effect = Effect {
            task: format!("{repo}#{n}").parse().unwrap(),
            run: 1,
            attempt: 0,
            kind: EffectKind::Queued,
        };
        let mut e = OutboxEntry::new(n, effect);
        e.record(&EffectFailure {
            error: format!("error {n}"),
            refused,
            retry_at: (!dead).then_some(crate::Timestamp(5)),
        });
        e
    }

    #[test]
    fn health_groups_failures_by_repository() {
        let h = WriteHealth::from_failing(&[
            failed("acme/a", 1, true, true),
            failed("acme/b", 2, false, false),
            failed("acme/a", 3, true, false),
        ]);
        assert_eq!(h.repositories.len(), 2);
        let a = &h.repositories[0];
        assert_eq!(
            (a.repository.as_str(), a.failing, a.dead, a.refused),
            ("acme/a", 1, 1, true)
        );
        assert_eq!(a.last_error.as_deref(), Some("error 3"));
        assert_eq!(h.refused().collect::<Vec<_>>(), ["acme/a"]);
        assert!(h.is_degraded());
        let transient = WriteHealth::from_failing(&[failed("acme/b", 2, false, false)]);
        assert!(!transient.is_degraded(), "a passing fault is not degraded");
    }
}

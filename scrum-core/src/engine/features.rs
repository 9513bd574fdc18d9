//! The features the engine composes: each is a module with its own state and
//! settings, plugged into the two seams, [claim gates](super::gate) and
//! [poll steps](super::step). Adding a feature: write its module, implement one
//! or both traits, and list it here.

use std::sync::Arc;

use super::EngineConfig;
use super::budget::Budget;
use super::deps::Dependencies;
use super::drain::Drain;
use super::gate::Gates;
use super::locks::Locks;
use super::pause::Pause;
use super::poll::Unlisted;
use super::pull_gate::PullGate;
use super::step::Steps;
use super::trust::Trust;
use super::writes::RefusedWrites;

/// The features, by name for the handles that reach one, and composed.
pub(crate) struct Features {
    pub(crate) pause: Arc<Pause>,
    pub(crate) writes: Arc<RefusedWrites>,
    pub(crate) pulls: Arc<PullGate>,
    pub(crate) budget: Arc<Budget>,
    /// The claim gates, in the order a claim asks them.
    pub(crate) gates: Gates,
    /// The poll steps, in the order a poll runs them.
    pub(crate) steps: Steps,
}

impl Features {
    /// The features as `config` sets them.
    pub(crate) fn new(config: &EngineConfig) -> Features {
        let pause = Arc::new(Pause::default());
        let writes = Arc::new(RefusedWrites::default());
        let pulls = Arc::new(PullGate::new(
            config.review.clone(),
            config.follow_ups.clone(),
            config.trust,
        ));
        let budget = Arc::new(Budget::new(config.budgets.clone()));
        let trust = Arc::new(Trust::new(config.trust));
        let deps = Arc::new(Dependencies);
        let gates = Gates::new(vec![
            Arc::new(Drain),
            pause.clone(),
            pulls.clone(),
            writes.clone(),
            budget.clone(),
            trust.clone(),
            deps.clone(),
            Arc::new(Locks),
        ]);
        let steps = Steps::new(vec![
            trust,
            Arc::new(Unlisted),
            deps,
            pulls.clone(),
            budget.clone(),
        ]);
        Features {
            pause,
            writes,
            pulls,
            budget,
            gates,
            steps,
        }
    }
}

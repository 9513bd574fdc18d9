//! Pause: an operator stops handing out work; running tasks go on. Held in this
//! process (each orchestrator is paused on its own).

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;

use super::Core;
use super::gate::{ClaimCtx, ClaimGate, Gate};
use crate::error::Result;

/// Whether dispatch is paused.
#[derive(Debug, Default)]
pub(crate) struct Pause {
    paused: AtomicBool,
}

impl Pause {
    /// Whether dispatch is paused.
    pub(crate) fn is_paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }

    /// Pauses (`true`) or resumes dispatch; a resume wakes the waiting workers.
    pub(crate) fn set(&self, core: &Core, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
        if !paused {
            core.wake();
        }
    }
}

#[async_trait]
impl ClaimGate for Pause {
    fn name(&self) -> &'static str {
        "pause"
    }

    async fn check(&self, _core: &Core, ctx: &ClaimCtx<'_>) -> Result<Gate> {
        Ok(match ctx.worker {
            Some(_) if self.is_paused() => Gate::Dispatch("dispatch is paused".into()),
            _ => Gate::Open,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Timestamp, WorkerId};

    #[tokio::test]
    async fn a_paused_engine_holds_dispatch_not_tasks() {
        let core = Core::for_tests();
        let pause = Pause::default();
        let w = WorkerId::new("w").unwrap();
        let ask = ClaimCtx {
            worker: Some(&w),
            draining: false,
            now: Timestamp(0),
        };
        assert_eq!(pause.check(&core, &ask).await.unwrap(), Gate::Open);
        pause.set(&core, true);
        let held = pause.check(&core, &ask).await.unwrap();
        assert!(matches!(held, Gate::Dispatch(_)), "{held:?}");
        let read = ClaimCtx {
            worker: None,
            ..ask
        };
        assert_eq!(pause.check(&core, &read).await.unwrap(), Gate::Open);
        pause.set(&core, false);
        assert_eq!(pause.check(&core, &ask).await.unwrap(), Gate::Open);
    }
}

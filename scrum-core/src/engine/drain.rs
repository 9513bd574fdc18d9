//! Drain: an operator tells one worker to take no new work; its current task goes
//! on. Stored in the registry ([`crate::WorkerRegistry::set_draining`]), so every
//! orchestrator on the store honours it; a claim reads it from the worker's record
//! as its last call wrote it ([`super::gate::ClaimCtx::draining`]).

use async_trait::async_trait;

use super::Core;
use super::gate::{ClaimCtx, ClaimGate, Gate};
use crate::error::Result;

/// The drain gate (its state is the registry's).
#[derive(Debug, Default)]
pub(crate) struct Drain;

#[async_trait]
impl ClaimGate for Drain {
    fn name(&self) -> &'static str {
        "drain"
    }

    async fn check(&self, _core: &Core, ctx: &ClaimCtx<'_>) -> Result<Gate> {
        Ok(match ctx.worker {
            Some(w) if ctx.draining => Gate::Dispatch(format!("worker {w} is draining")),
            _ => Gate::Open,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Timestamp, WorkerId};

    #[tokio::test]
    async fn a_draining_worker_gets_nothing() {
        let core = Core::for_tests();
        let w = WorkerId::new("w").unwrap();
        let mut ctx = ClaimCtx {
            worker: Some(&w),
            draining: false,
            now: Timestamp(0),
        };
        assert_eq!(Drain.check(&core, &ctx).await.unwrap(), Gate::Open);
        ctx.draining = true;
        let held = Drain.check(&core, &ctx).await.unwrap();
        assert_eq!(held, Gate::Dispatch("worker w is draining".into()));
    }
}

//! The WorkSource conformance suite on the engine itself, as in-process workers use it.

use std::sync::Arc;

use scrum_core::engine::Orchestrator;
use scrum_core::worker::WorkSource;

async fn make(engine: Orchestrator) -> Arc<dyn WorkSource> {
    Arc::new(engine)
}

scrum_core::work_conformance!(make);

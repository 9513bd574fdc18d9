//! The conformance suites on the in-memory queue: the first backend to run them.

use std::sync::Arc;

use async_trait::async_trait;
use scrum_core::WorkQueue;
use scrum_core::conformance::workers::RegistryFixture;
use scrum_core::memory::MemoryQueue;
use scrum_core::state::{Jitter, Policy};

async fn make(policy: Policy, jitter: Jitter) -> Arc<dyn WorkQueue> {
    Arc::new(MemoryQueue::with_jitter(policy, jitter))
}

scrum_core::queue_conformance!(make);

/// A memory queue keeps nothing across a restart: opened again, it is the same
/// queue, as a second orchestrator in the process would share it.
struct MemoryStore(Arc<MemoryQueue>);

#[async_trait]
impl RegistryFixture for MemoryStore {
    fn queue(&self) -> Arc<dyn WorkQueue> {
        self.0.clone()
    }

    async fn reopen(&mut self) {}
}

async fn make_store() -> MemoryStore {
    let queue = MemoryQueue::with_jitter(
        scrum_core::conformance::queue::policy(),
        scrum_core::conformance::queue::jitter(),
    );
    MemoryStore(Arc::new(queue))
}

scrum_core::registry_conformance!(make_store);

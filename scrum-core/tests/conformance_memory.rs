//! The conformance suite on the in-memory queue: the first backend to run it.

use std::sync::Arc;

use scrum_core::WorkQueue;
use scrum_core::memory::MemoryQueue;
use scrum_core::state::{Jitter, Policy};

async fn make(policy: Policy, jitter: Jitter) -> Arc<dyn WorkQueue> {
    Arc::new(MemoryQueue::with_jitter(policy, jitter))
}

scrum_core::queue_conformance!(make);

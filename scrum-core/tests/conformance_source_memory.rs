//! The IssueSource conformance suite on the in-memory source. It cannot fail by
//! itself, so it runs behind a `Faulty` wrapper that makes a listing fail on demand
//! (`scrum_core::conformance::memory`).

use scrum_core::conformance::memory::MemoryFixture;

async fn make() -> MemoryFixture {
    MemoryFixture::new()
}

scrum_core::source_conformance!(make);

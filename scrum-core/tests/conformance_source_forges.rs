//! The IssueSource conformance suite on [`Forges`]: GitHub's issues (the suite's
//! repositories are GitHub's) in one in-memory source behind a `Faulty` wrapper,
//! beside a second, GitLab's, that the listing reads and merges every time. The
//! composite must keep every rule of the trait its members keep.

use std::sync::Arc;

use scrum_core::Timestamp;
use scrum_core::conformance::memory::MemoryFixture;
use scrum_core::conformance::source::labels;
use scrum_core::forges::Forges;
use scrum_core::memory::MemoryIssueSource;

async fn make() -> MemoryFixture {
    MemoryFixture::serving(|github| {
        let gitlab = MemoryIssueSource::new(labels());
        // Not ready: listed and merged on every listing, never part of the answer.
        let waiting = "gitlab:group/sub/project#1".parse().expect("valid id");
        gitlab.open_issue(waiting, "Not ready", &["ai-ready"], Timestamp(1));
        Arc::new(
            Forges::new()
                .with("github", github)
                .with("gitlab", Arc::new(gitlab)),
        )
    })
}

scrum_core::source_conformance!(make);

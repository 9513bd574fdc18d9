//! The IssueSource conformance suite on [`Forges`]: GitHub's issues (the suite's
//! repositories are GitHub's) in one in-memory source behind a [`Faulty`] wrapper,
//! beside a second, GitLab's, that the listing reads and merges every time. The
//! composite must keep every rule of the trait its members keep.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use scrum_core::conformance::source::{SourceFixture, labels};
use scrum_core::faults::{Faults, Faulty};
use scrum_core::forges::Forges;
use scrum_core::memory::MemoryIssueSource;
use scrum_core::{IssueSource, TaskId, Timestamp};

struct MemoryFixture {
    forges: Arc<Forges>,
    source: Arc<Faulty<MemoryIssueSource>>,
    next_number: AtomicU64,
    /// When the next label or edit happens (it only goes up).
    clock: AtomicU64,
}

impl MemoryFixture {
    fn issues(&self) -> &MemoryIssueSource {
        self.source.inner()
    }
}

#[async_trait]
impl SourceFixture for MemoryFixture {
    fn source(&self) -> Arc<dyn IssueSource> {
        self.forges.clone()
    }

    async fn open_issue(
        &self,
        repo: &str,
        title: &str,
        labels: &[&str],
        created_at: Timestamp,
    ) -> TaskId {
        let number = self.next_number.fetch_add(1, Ordering::SeqCst);
        let id = TaskId::new(repo, number).expect("valid id");
        self.issues()
            .open_issue(id.clone(), title, labels, created_at);
        id
    }

    async fn open_pull_request(&self, _: &str, _: &str, _: &[&str]) -> Option<TaskId> {
        None
    }

    async fn close_issue(&self, id: &TaskId) {
        self.issues().close(id);
    }

    async fn set_labels(&self, id: &TaskId, labels: &[&str]) {
        self.issues().set_labels(id, labels);
    }

    async fn labels(&self, id: &TaskId) -> Vec<String> {
        self.issues()
            .issue(id)
            .map(|i| i.labels)
            .unwrap_or_default()
    }

    async fn comments(&self, id: &TaskId) -> Vec<String> {
        let issue = self.issues().issue(id);
        issue
            .map(|i| i.comments.into_iter().map(|(_, body)| body).collect())
            .unwrap_or_default()
    }

    async fn fail_next_listing(&self, _: &str) {
        self.source.faults().fail_next(1);
    }

    async fn label_as(&self, id: &TaskId, labels: &[&str], login: &str, may_approve: bool) {
        let at = Timestamp(self.clock.fetch_add(1, Ordering::SeqCst) as i64);
        self.issues().label_as(id, labels, login, may_approve, at);
    }

    async fn edit_as(&self, id: &TaskId, body: &str, login: &str, may_approve: bool) {
        let at = Timestamp(self.clock.fetch_add(1, Ordering::SeqCst) as i64);
        let title = self.issues().issue(id).map(|i| i.title).unwrap_or_default();
        self.issues()
            .edit_as(id, &title, body, login, may_approve, at);
    }

    async fn add_blocked_by(&self, id: &TaskId, blocker: &TaskId) -> bool {
        self.issues().add_blocked_by(id, blocker);
        true
    }
}

async fn make() -> MemoryFixture {
    let source = Arc::new(Faulty::new(
        MemoryIssueSource::new(labels()),
        Faults::default(),
    ));
    let gitlab = MemoryIssueSource::new(labels());
    // Not ready: listed and merged on every listing, never part of the answer.
    let waiting = "gitlab:group/sub/project#1".parse().expect("valid id");
    gitlab.open_issue(waiting, "Not ready", &["ai-ready"], Timestamp(1));
    MemoryFixture {
        forges: Arc::new(
            Forges::new()
                .with("github", source.clone())
                .with("gitlab", Arc::new(gitlab)),
        ),
        source,
        next_number: AtomicU64::new(1),
        clock: AtomicU64::new(1),
    }
}

scrum_core::source_conformance!(make);

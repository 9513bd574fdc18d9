//! [`MemoryFixture`]: the IssueSource conformance suite's fixture over the
//! in-memory source, which cannot fail by itself and so runs behind a [`Faulty`]
//! wrapper that makes a listing fail on demand. A source built over it (a
//! composite of forges) runs the suite through [`MemoryFixture::serving`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use super::source::{SourceFixture, labels};
use crate::faults::{Faults, Faulty};
use crate::memory::MemoryIssueSource;
use crate::model::{TaskId, Timestamp};
use crate::source::IssueSource;

/// The in-memory tracker behind the source under test.
pub struct MemoryFixture {
    source: Arc<Faulty<MemoryIssueSource>>,
    /// The source the suite calls: the memory source itself, or one over it.
    served: Arc<dyn IssueSource>,
    next_number: AtomicU64,
    /// When the next label or edit happens (it only goes up).
    clock: AtomicU64,
}

impl MemoryFixture {
    /// The suite on the in-memory source itself.
    pub fn new() -> MemoryFixture {
        MemoryFixture::serving(|memory| memory)
    }

    /// The suite on the source `over` builds around the in-memory one (which
    /// holds every issue of [`super::source::REPOS`]).
    pub fn serving(
        over: impl FnOnce(Arc<dyn IssueSource>) -> Arc<dyn IssueSource>,
    ) -> MemoryFixture {
        let source = Arc::new(Faulty::new(
            MemoryIssueSource::new(labels()),
            Faults::default(),
        ));
        MemoryFixture {
            served: over(source.clone()),
            source,
            next_number: AtomicU64::new(1),
            clock: AtomicU64::new(1),
        }
    }

    fn issues(&self) -> &MemoryIssueSource {
        self.source.inner()
    }
}

impl Default for MemoryFixture {
    fn default() -> MemoryFixture {
        MemoryFixture::new()
    }
}

#[async_trait]
impl SourceFixture for MemoryFixture {
    fn source(&self) -> Arc<dyn IssueSource> {
        self.served.clone()
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

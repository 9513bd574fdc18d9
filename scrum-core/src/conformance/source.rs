//! The suite every [`IssueSource`] runs: one plain async function per `# Behavior`
//! bullet of the trait, each taking a fresh [`SourceFixture`]: the source under test
//! and a hand on the tracker behind it, to open issues as a person would and to see
//! what the source wrote.
//!
//! A source runs the whole suite with one macro call in a test file:
//!
//! ```text
//! // A fresh, isolated tracker and a source reading `REPOS` with `labels()`.
//! async fn make() -> impl scrum_core::conformance::source::SourceFixture { /* … */ }
//! scrum_core::source_conformance!(make);
//! ```
//!
//! The macro expands to one `#[tokio::test]` per function (so the calling crate needs
//! tokio with `macros` and `rt-multi-thread`); tests run in parallel, so each fixture
//! `make` returns must be isolated from the others.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::ErrorKind;
use crate::model::{Person, ReadyIssue, TaskId, Timestamp};
use crate::source::{Commented, IssueSource, Labels};

/// This file's text: the macro's test checks that it runs every `pub async fn` here.
#[doc(hidden)]
pub const SOURCE: &str = include_str!("source.rs");

/// The repositories every fixture's source reads, in this order.
pub const REPOS: [&str; 2] = ["acme/widgets", "acme/gadgets"];

/// The labels every fixture's source is configured with: an issue is ready when it
/// carries both `ai-ready` and `backend`; the lifecycle labels are the defaults.
pub fn labels() -> Labels {
    Labels {
        ready: vec!["ai-ready".into(), "backend".into()],
        ..Labels::default()
    }
}

/// The source under test and the tracker behind it.
#[async_trait]
pub trait SourceFixture: Send + Sync {
    /// The source under test, reading [`REPOS`] with [`labels`].
    fn source(&self) -> Arc<dyn IssueSource>;

    /// Opens an issue in `repo` (one of [`REPOS`]) as a person would, and returns its id.
    async fn open_issue(
        &self,
        repo: &str,
        title: &str,
        labels: &[&str],
        created_at: Timestamp,
    ) -> TaskId;

    /// Opens a pull request in `repo` carrying `labels`, and returns its id; `None`
    /// when the tracker has no pull requests.
    async fn open_pull_request(&self, repo: &str, title: &str, labels: &[&str]) -> Option<TaskId>;

    /// Closes the issue, as a person would.
    async fn close_issue(&self, id: &TaskId);

    /// Replaces the issue's labels, as a person would.
    async fn set_labels(&self, id: &TaskId, labels: &[&str]);

    /// The issue's labels as the tracker holds them.
    async fn labels(&self, id: &TaskId) -> Vec<String>;

    /// The issue's comment texts as the tracker holds them, oldest first.
    async fn comments(&self, id: &TaskId) -> Vec<String>;

    /// Makes the next listing fail while it reads `repo`, as an outage of the
    /// tracker would; the listing after it reads normally again.
    async fn fail_next_listing(&self, repo: &str);

    /// Replaces the issue's labels as the person `login` would, who may approve
    /// work in its repository or not (on GitHub: write permission, or read).
    async fn label_as(&self, id: &TaskId, labels: &[&str], login: &str, may_approve: bool);

    /// Replaces the issue's body as the person `login` would.
    async fn edit_as(&self, id: &TaskId, body: &str, login: &str, may_approve: bool);

    /// Records `blocker` as blocking `id` in the tracker's own issue dependencies;
    /// `false` when the tracker has none (the suite then skips those checks).
    async fn add_blocked_by(&self, id: &TaskId, blocker: &TaskId) -> bool {
        let _ = (id, blocker);
        false
    }
}

/// A time the suite opens issues at, `secs` seconds after a fixed instant.
fn at(secs: i64) -> Timestamp {
    Timestamp(1_800_000_000_000 + secs * 1000)
}

/// The ready labels, as an issue carries them.
const READY: [&str; 2] = ["ai-ready", "backend"];

/// Label names a URL or a query would mangle if not encoded.
const ODD_LABELS: [&str; 4] = ["needs review", "c++", "area/api", "100% done"];

/// An issue number no fixture opens.
const UNKNOWN: u64 = 999_999;

fn unknown_issue() -> TaskId {
    TaskId::new(REPOS[0], UNKNOWN).expect("valid id")
}

fn label_set<S: AsRef<str>>(labels: &[S]) -> BTreeSet<String> {
    labels
        .iter()
        .map(|l| l.as_ref().to_ascii_lowercase())
        .collect()
}

fn strings(labels: &[&str]) -> Vec<String> {
    labels.iter().map(|l| l.to_string()).collect()
}

async fn listed(f: &dyn SourceFixture) -> Vec<ReadyIssue> {
    f.source().list_ready().await.expect("list ready issues")
}

async fn listed_ids(f: &dyn SourceFixture) -> BTreeSet<TaskId> {
    listed(f).await.into_iter().map(|i| i.id).collect()
}

/// Every open issue carrying all ready labels is listed, from every configured
/// repository, with its title, labels and creation time; closed issues and issues
/// missing a ready label are left out. The order is unspecified.
pub async fn listing_covers_every_repository(f: &dyn SourceFixture) {
    let [widgets, gadgets] = REPOS;
    let urgent_labels = ["ai-ready", "backend", "priority:high"];
    let urgent = f
        .open_issue(widgets, "Add a widget", &urgent_labels, at(10))
        .await;
    let plain = f.open_issue(gadgets, "Fix a gadget", &READY, at(20)).await;
    f.open_issue(widgets, "Half ready", &["ai-ready"], at(30))
        .await;
    f.open_issue(gadgets, "Unlabelled", &[], at(40)).await;
    let closed = f.open_issue(gadgets, "Closed", &READY, at(50)).await;
    f.close_issue(&closed).await;

    // (id, title, labels, created_at), by id.
    let got: BTreeSet<_> = listed(f)
        .await
        .into_iter()
        .map(|i| (i.id, i.title, label_set(&i.labels), i.created_at))
        .collect();
    let want = BTreeSet::from([
        (
            urgent,
            "Add a widget".into(),
            label_set(&urgent_labels),
            at(10),
        ),
        (plain, "Fix a gadget".into(), label_set(&READY), at(20)),
    ]);
    assert_eq!(got, want);
}

/// Ready labels match whatever their case (`AI-Ready` is `ai-ready`).
pub async fn ready_labels_match_whatever_their_case(f: &dyn SourceFixture) {
    let shouting = f
        .open_issue(REPOS[0], "Shouting", &["AI-Ready", "BACKEND"], at(1))
        .await;
    assert_eq!(listed_ids(f).await, BTreeSet::from([shouting]));
}

/// Pull requests are left out.
pub async fn pull_requests_are_left_out(f: &dyn SourceFixture) {
    let issue = f.open_issue(REPOS[0], "An issue", &READY, at(1)).await;
    let pull = f
        .open_pull_request(REPOS[0], "A pull request", &READY)
        .await;
    let got = listed_ids(f).await;
    assert_eq!(got, BTreeSet::from([issue]), "pull request {pull:?} listed");
}

/// Every page is read: a backlog larger than one page is listed whole.
pub async fn every_page_is_listed(f: &dyn SourceFixture) {
    // GitHub's largest page holds 100 issues: this backlog spans three.
    let mut want = BTreeSet::new();
    for k in 0..250 {
        let title = format!("Backlog item {k}");
        want.insert(f.open_issue(REPOS[0], &title, &READY, at(k)).await);
    }
    want.insert(f.open_issue(REPOS[1], "The other one", &READY, at(1)).await);
    let got = listed(f).await;
    assert_eq!(got.len(), 251, "an issue listed twice or left out");
    assert_eq!(got.into_iter().map(|i| i.id).collect::<BTreeSet<_>>(), want);
}

/// A failure is an error, never an empty or partial list: when one repository
/// cannot be read, the whole listing fails.
pub async fn failed_listing_is_an_error_not_a_partial_list(f: &dyn SourceFixture) {
    let a = f.open_issue(REPOS[0], "Readable", &READY, at(1)).await;
    let b = f
        .open_issue(REPOS[1], "Behind an outage", &READY, at(2))
        .await;
    f.fail_next_listing(REPOS[1]).await;
    let got = f.source().list_ready().await;
    assert!(got.is_err(), "a listing during an outage answered {got:?}");
    assert_eq!(listed_ids(f).await, BTreeSet::from([a, b]));
}

/// Issues are listed as they are now: one closed, relabelled or opened since the
/// last listing shows the change.
pub async fn listing_shows_issues_as_they_are_now(f: &dyn SourceFixture) {
    let closed = f.open_issue(REPOS[0], "To close", &READY, at(1)).await;
    let unlabelled = f.open_issue(REPOS[0], "To unlabel", &READY, at(2)).await;
    let raised = f.open_issue(REPOS[0], "To raise", &READY, at(3)).await;
    let ids = BTreeSet::from([closed.clone(), unlabelled.clone(), raised.clone()]);
    assert_eq!(listed_ids(f).await, ids);

    f.close_issue(&closed).await;
    f.set_labels(&unlabelled, &["ai-ready"]).await;
    f.set_labels(&raised, &["ai-ready", "backend", "priority:critical"])
        .await;
    let opened = f.open_issue(REPOS[0], "Opened since", &READY, at(4)).await;

    let got = listed(f).await;
    let ids: BTreeSet<_> = got.iter().map(|i| i.id.clone()).collect();
    assert_eq!(ids, BTreeSet::from([raised.clone(), opened]));
    let raised_labels = got
        .iter()
        .find(|i| i.id == raised)
        .map(|i| label_set(&i.labels));
    assert_eq!(
        raised_labels,
        Some(label_set(&["ai-ready", "backend", "priority:critical"]))
    );
}

/// An open issue reads as open with its labels, a closed one as closed.
pub async fn issue_state_reads_open_and_closed(f: &dyn SourceFixture) {
    let labels = ["ai-ready", "backend", "priority:low"];
    let open = f.open_issue(REPOS[0], "Open", &labels, at(1)).await;
    let closed = f.open_issue(REPOS[1], "Closed", &labels, at(2)).await;
    f.close_issue(&closed).await;
    let source = f.source();
    for (id, want_open) in [(open, true), (closed, false)] {
        let state = source.issue_state(&id).await.expect("issue state");
        assert_eq!(state.open, want_open, "{id}");
        assert_eq!(label_set(&state.labels), label_set(&labels), "{id}");
    }
}

/// The issue is read as it is now, with changes made since the last read.
pub async fn issue_state_reads_changes_since_last_read(f: &dyn SourceFixture) {
    let id = f.open_issue(REPOS[0], "Changing", &READY, at(1)).await;
    let source = f.source();
    let before = source.issue_state(&id).await.expect("issue state");
    assert!(before.open);
    f.set_labels(&id, &["wontfix"]).await;
    f.close_issue(&id).await;
    let after = source.issue_state(&id).await.expect("issue state");
    assert!(!after.open, "a closed issue still reads as open");
    assert_eq!(label_set(&after.labels), label_set(&["wontfix"]));
}

/// An unknown issue fails with `NotFound`.
pub async fn issue_state_of_unknown_issue_is_not_found(f: &dyn SourceFixture) {
    let err = f.source().issue_state(&unknown_issue()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

/// The labels are added and the issue's other labels kept, also for a label no issue
/// of the repository had before.
pub async fn add_labels_keeps_other_labels(f: &dyn SourceFixture) {
    let id = f.open_issue(REPOS[0], "Labelled", &READY, at(1)).await;
    let added = strings(&["ai-in-progress", "never-seen-before"]);
    f.source()
        .add_labels(&id, &added)
        .await
        .expect("add labels");
    assert_eq!(
        label_set(&f.labels(&id).await),
        label_set(&["ai-ready", "backend", "ai-in-progress", "never-seen-before"])
    );
}

/// Adding a label the issue has, in any case, is fine and changes nothing.
pub async fn adding_a_label_the_issue_has_changes_nothing(f: &dyn SourceFixture) {
    let id = f.open_issue(REPOS[0], "Labelled", &READY, at(1)).await;
    let source = f.source();
    for label in [
        "ai-in-progress",
        "ai-in-progress",
        "AI-In-Progress",
        "Backend",
    ] {
        source
            .add_labels(&id, &strings(&[label]))
            .await
            .expect("add a label");
    }
    let labels = f.labels(&id).await;
    assert_eq!(labels.len(), 3, "a label added twice: {labels:?}");
    assert_eq!(
        label_set(&labels),
        label_set(&["ai-ready", "backend", "ai-in-progress"])
    );
}

/// Afterwards the issue carries every label of `add` and none of `remove` (whatever
/// their case), and keeps its other labels.
pub async fn set_labels_adds_and_removes_together(f: &dyn SourceFixture) {
    let id = f.open_issue(REPOS[0], "Labelled", &READY, at(1)).await;
    let source = f.source();
    source
        .set_labels(&id, &strings(&["ai-in-progress"]), &[])
        .await
        .expect("set labels");
    let (add, remove) = (
        strings(&["AI-Completed"]),
        strings(&["AI-READY", "ai-in-progress"]),
    );
    source
        .set_labels(&id, &add, &remove)
        .await
        .expect("set labels");
    assert_eq!(
        label_set(&f.labels(&id).await),
        label_set(&["backend", "ai-completed"])
    );
}

/// When the issue already carries them so, nothing changes.
pub async fn set_labels_already_so_changes_nothing(f: &dyn SourceFixture) {
    let id = f.open_issue(REPOS[0], "Labelled", &READY, at(1)).await;
    let source = f.source();
    let (add, remove) = (strings(&["Backend"]), strings(&["ai-failed"]));
    source
        .set_labels(&id, &add, &remove)
        .await
        .expect("set labels");
    source.set_labels(&id, &add, &remove).await.expect("again");
    let labels = f.labels(&id).await;
    assert_eq!(labels.len(), 2, "{labels:?}");
    assert_eq!(label_set(&labels), label_set(&["ai-ready", "backend"]));
}

/// An unknown issue fails with `NotFound`.
pub async fn set_labels_on_unknown_issue_is_not_found(f: &dyn SourceFixture) {
    let err = f
        .source()
        .set_labels(
            &unknown_issue(),
            &strings(&["ai-completed"]),
            &strings(&["ai-ready"]),
        )
        .await
        .expect_err("an unknown issue");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

/// Labels with spaces or punctuation (`needs review`, `c++`, `area/api`) are added
/// like any other.
pub async fn labels_with_punctuation_are_added(f: &dyn SourceFixture) {
    let id = f.open_issue(REPOS[0], "Labelled", &READY, at(1)).await;
    f.source()
        .add_labels(&id, &strings(&ODD_LABELS))
        .await
        .expect("add labels");
    let mut want = ODD_LABELS.to_vec();
    want.extend(READY);
    assert_eq!(label_set(&f.labels(&id).await), label_set(&want));
}

/// An unknown issue fails with `NotFound`.
pub async fn add_labels_to_unknown_issue_is_not_found(f: &dyn SourceFixture) {
    let err = f
        .source()
        .add_labels(&unknown_issue(), &strings(&["ai-in-progress"]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

/// The label is removed whatever its case; the other labels are kept.
pub async fn remove_label_matches_whatever_its_case(f: &dyn SourceFixture) {
    let labels = ["ai-ready", "backend", "ai-in-progress"];
    let id = f.open_issue(REPOS[0], "Labelled", &labels, at(1)).await;
    f.source()
        .remove_label(&id, "AI-In-Progress")
        .await
        .expect("remove a label");
    assert_eq!(label_set(&f.labels(&id).await), label_set(&READY));
}

/// Removing a label the issue does not have (or that no issue has) is fine.
pub async fn removing_an_absent_label_is_fine(f: &dyn SourceFixture) {
    let id = f.open_issue(REPOS[0], "Plain", &READY, at(1)).await;
    f.open_issue(REPOS[0], "Other", &["ai-ready", "ai-failed"], at(2))
        .await;
    let source = f.source();
    for absent in ["ai-failed", "no-issue-has-this"] {
        source
            .remove_label(&id, absent)
            .await
            .unwrap_or_else(|e| panic!("removing absent label {absent:?}: {e}"));
    }
    assert_eq!(label_set(&f.labels(&id).await), label_set(&READY));
}

/// A label with spaces or punctuation (`needs review`, `c++`, `area/api`) is removed
/// like any other.
pub async fn labels_with_punctuation_are_removed(f: &dyn SourceFixture) {
    let mut labels = ODD_LABELS.to_vec();
    labels.extend(READY);
    let id = f.open_issue(REPOS[0], "Labelled", &labels, at(1)).await;
    let source = f.source();
    for odd in ODD_LABELS {
        source.remove_label(&id, odd).await.expect("remove a label");
    }
    assert_eq!(label_set(&f.labels(&id).await), label_set(&READY));
}

/// An unknown issue fails with `NotFound`.
pub async fn remove_label_from_unknown_issue_is_not_found(f: &dyn SourceFixture) {
    let err = f
        .source()
        .remove_label(&unknown_issue(), "ai-ready")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

/// The body is posted as one comment, and `Posted` is returned.
pub async fn comment_posts_the_body(f: &dyn SourceFixture) {
    let id = f.open_issue(REPOS[0], "Commented", &READY, at(1)).await;
    let body = "Completed: https://github.com/acme/widgets/pull/2";
    let got = f.source().comment(&id, "scrum:completed:1", body).await;
    assert_eq!(got.expect("comment"), Commented::Posted);
    let comments = f.comments(&id).await;
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert!(comments[0].contains(body), "{comments:?}");
}

/// Posting the same marker twice posts once: the second call answers
/// `AlreadyPresent`.
pub async fn same_marker_posts_once(f: &dyn SourceFixture) {
    let id = f.open_issue(REPOS[0], "Commented", &READY, at(1)).await;
    let source = f.source();
    let first = source.comment(&id, "scrum:failed:1", "Failed: tests do not pass");
    assert_eq!(first.await.expect("comment"), Commented::Posted);
    let again = source.comment(&id, "scrum:failed:1", "Failed (retried report)");
    assert_eq!(again.await.expect("comment"), Commented::AlreadyPresent);
    let comments = f.comments(&id).await;
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert!(comments[0].contains("Failed: tests do not pass"));
}

/// Comments with different markers are all posted, also when one marker is the start
/// of another (`run-1`, `run-10`).
pub async fn different_markers_all_post(f: &dyn SourceFixture) {
    let id = f.open_issue(REPOS[0], "Commented", &READY, at(1)).await;
    let source = f.source();
    for marker in ["scrum:run-10", "scrum:run-1", "scrum:retry"] {
        let got = source
            .comment(&id, marker, &format!("About {marker}"))
            .await;
        assert_eq!(got.expect("comment"), Commented::Posted, "{marker}");
    }
    assert_eq!(f.comments(&id).await.len(), 3);
}

/// A marker is found however many comments the issue has.
pub async fn marker_found_among_many_comments(f: &dyn SourceFixture) {
    let id = f.open_issue(REPOS[0], "Busy", &READY, at(1)).await;
    let source = f.source();
    // More than GitHub's largest page of comments (100): the last is on page two.
    let count = 105;
    for k in 0..count {
        let got = source.comment(&id, &format!("note-{k}"), "A note").await;
        assert_eq!(got.expect("comment"), Commented::Posted, "note-{k}");
    }
    for k in [0, count - 1] {
        let got = source.comment(&id, &format!("note-{k}"), "A note").await;
        assert_eq!(got.expect("comment"), Commented::AlreadyPresent, "note-{k}");
    }
    assert_eq!(f.comments(&id).await.len(), count);
}

/// An unknown issue fails with `NotFound`.
pub async fn comment_on_unknown_issue_is_not_found(f: &dyn SourceFixture) {
    let err = f
        .source()
        .comment(&unknown_issue(), "scrum:completed:1", "Done")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

/// [`IssueSource::labelled_by`]: who applied the ready label, and whether they may approve.
pub async fn labelled_by_names_who_applied_the_label(f: &dyn SourceFixture) {
    let id = f.open_issue(REPOS[0], "Labelled", &[], at(1)).await;
    f.label_as(&id, &["ai-ready", "backend"], "maintainer", true)
        .await;
    let p = f.source().labelled_by(&id).await.unwrap();
    assert_eq!((p.login.as_str(), p.may_approve), ("maintainer", true));
    let other = f.open_issue(REPOS[0], "Drive-by", &[], at(2)).await;
    f.label_as(&other, &["ai-ready", "backend"], "drive-by", false)
        .await;
    let p = f.source().labelled_by(&other).await.unwrap();
    assert_eq!((p.login.as_str(), p.may_approve), ("drive-by", false));
}

/// [`IssueSource::labelled_by`]: the last application of the label counts.
pub async fn labelled_by_names_the_last_application(f: &dyn SourceFixture) {
    let id = f.open_issue(REPOS[0], "Relabelled", &[], at(1)).await;
    f.label_as(&id, &["ai-ready", "backend"], "drive-by", false)
        .await;
    f.label_as(&id, &["bug"], "maintainer", true).await;
    f.label_as(&id, &["ai-ready", "backend"], "maintainer", true)
        .await;
    let p = f.source().labelled_by(&id).await.unwrap();
    assert_eq!((p.login.as_str(), p.may_approve), ("maintainer", true));
}

/// [`IssueSource::edited_by`]: none before an edit, then the last editor.
pub async fn edited_by_names_the_last_editor(f: &dyn SourceFixture) {
    let id = f
        .open_issue(REPOS[0], "Edited", &["ai-ready", "backend"], at(1))
        .await;
    assert_eq!(f.source().edited_by(&id).await.unwrap(), None);
    f.edit_as(&id, "Better words.", "maintainer", true).await;
    let p = f.source().edited_by(&id).await.unwrap().expect("an editor");
    assert_eq!((p.login.as_str(), p.may_approve), ("maintainer", true));
    f.edit_as(&id, "Other words.", "author", false).await;
    let p = f.source().edited_by(&id).await.unwrap().expect("an editor");
    assert_eq!((p.login.as_str(), p.may_approve), ("author", false));
}

/// The trust reads of an unknown issue fail with `NotFound`.
pub async fn trust_reads_of_unknown_issue_are_not_found(f: &dyn SourceFixture) {
    let s = f.source();
    let id = unknown_issue();
    assert_eq!(
        s.labelled_by(&id).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        s.edited_by(&id).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        s.opened_by(&id).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

/// [`IssueSource::provenance`]: one answer per issue, in order, each as the three
/// trust methods answer (the author only when asked), and an unknown issue's
/// answer `NotFound` while the others are answered.
pub async fn provenance_answers_as_the_trust_methods(f: &dyn SourceFixture) {
    let approved = f.open_issue(REPOS[0], "Approved", &[], at(1)).await;
    f.label_as(&approved, &["ai-ready", "backend"], "maintainer", true)
        .await;
    let edited = f.open_issue(REPOS[1], "Edited", &[], at(2)).await;
    f.label_as(&edited, &["ai-ready", "backend"], "maintainer", true)
        .await;
    f.edit_as(&edited, "Other words.", "author", false).await;
    let drive_by = f.open_issue(REPOS[0], "Drive-by", &[], at(3)).await;
    f.label_as(&drive_by, &["ai-ready", "backend"], "drive-by", false)
        .await;
    let ids = [approved, unknown_issue(), edited, drive_by];
    let s = f.source();
    let answers = s.provenance(&ids, true).await.unwrap();
    assert_eq!(answers.len(), ids.len());
    assert_eq!(answers[1].as_ref().unwrap_err().kind(), ErrorKind::NotFound);
    for (id, answer) in ids.iter().zip(&answers).filter(|(_, a)| a.is_ok()) {
        let p = answer.as_ref().unwrap();
        let who = |p: &Person| (p.login.clone(), p.may_approve);
        assert_eq!(
            who(&p.labelled_by),
            who(&s.labelled_by(id).await.unwrap()),
            "{id}"
        );
        assert_eq!(
            p.edited_by.as_ref().map(who),
            s.edited_by(id).await.unwrap().as_ref().map(who),
            "{id}"
        );
        let author = s.opened_by(id).await.unwrap();
        assert_eq!(p.opened_by.as_ref().map(who), Some(who(&author)), "{id}");
        assert!(p.still_ready, "{id}");
    }
    let without = s.provenance(&ids[..1], false).await.unwrap();
    assert_eq!(without[0].as_ref().unwrap().opened_by, None);
}

/// [`IssueSource::blocked_by`]: none before a blocker is recorded, then each
/// recorded one, also one in another repository.
pub async fn blocked_by_names_recorded_blockers(f: &dyn SourceFixture) {
    let first = f.open_issue(REPOS[0], "First", &READY, at(1)).await;
    let other = f.open_issue(REPOS[1], "Elsewhere", &READY, at(2)).await;
    let later = f.open_issue(REPOS[0], "Later", &READY, at(3)).await;
    assert_eq!(f.source().blocked_by(&later).await.unwrap(), []);
    if !f.add_blocked_by(&later, &first).await {
        return;
    }
    assert_eq!(
        f.source().blocked_by(&later).await.unwrap(),
        std::slice::from_ref(&first)
    );
    assert!(f.add_blocked_by(&later, &other).await);
    let got: BTreeSet<TaskId> = f
        .source()
        .blocked_by(&later)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(got, BTreeSet::from([first.clone(), other]));
    assert_eq!(f.source().blocked_by(&first).await.unwrap(), []);
}

/// A blocker is read with [`IssueSource::issue_state`]: closing it shows as closed,
/// also for an issue without the ready labels.
pub async fn a_blocker_reads_closed_once_closed(f: &dyn SourceFixture) {
    let blocker = f.open_issue(REPOS[1], "Blocker", &["bug"], at(1)).await;
    assert!(f.source().issue_state(&blocker).await.unwrap().open);
    f.close_issue(&blocker).await;
    assert!(!f.source().issue_state(&blocker).await.unwrap().open);
}

/// Generates one `#[tokio::test]` per conformance function for a source; see the
/// [module docs](crate::conformance::source).
#[macro_export]
macro_rules! source_conformance {
    ($make:ident) => {
        mod source_conformance {
            use super::$make;

            async fn fresh() -> impl $crate::conformance::source::SourceFixture {
                $make().await
            }

            $crate::source_conformance!(@suite
                listing_covers_every_repository,
                ready_labels_match_whatever_their_case,
                pull_requests_are_left_out,
                every_page_is_listed,
                failed_listing_is_an_error_not_a_partial_list,
                listing_shows_issues_as_they_are_now,
                issue_state_reads_open_and_closed,
                issue_state_reads_changes_since_last_read,
                issue_state_of_unknown_issue_is_not_found,
                add_labels_keeps_other_labels,
                adding_a_label_the_issue_has_changes_nothing,
                labels_with_punctuation_are_added,
                add_labels_to_unknown_issue_is_not_found,
                remove_label_matches_whatever_its_case,
                removing_an_absent_label_is_fine,
                labels_with_punctuation_are_removed,
                remove_label_from_unknown_issue_is_not_found,
                set_labels_adds_and_removes_together,
                set_labels_already_so_changes_nothing,
                set_labels_on_unknown_issue_is_not_found,
                comment_posts_the_body,
                same_marker_posts_once,
                different_markers_all_post,
                marker_found_among_many_comments,
                comment_on_unknown_issue_is_not_found,
                labelled_by_names_who_applied_the_label,
                labelled_by_names_the_last_application,
                edited_by_names_the_last_editor,
                trust_reads_of_unknown_issue_are_not_found,
                provenance_answers_as_the_trust_methods,
                blocked_by_names_recorded_blockers,
                a_blocker_reads_closed_once_closed,
            );
        }
    };
    (@suite $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let fixture = fresh().await;
                $crate::conformance::source::$name(&fixture).await;
            }
        )*

        #[test]
        fn the_suite_runs_every_conformance_function() {
            $crate::conformance::assert_runs_every_function(
                $crate::conformance::source::SOURCE,
                &[$(stringify!($name)),*],
            );
        }
    };
}

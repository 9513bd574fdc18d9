//! Trust: only text that a person who may approve work wrote or approved reaches
//! an agent.
//!
//! The rules, applied by the poll to every ready issue (`TRUST_MODE=labeler`, the
//! default; `author` adds the last one; `off` skips them all):
//!
//! - **Queueing.** An issue is queued only when the person who last applied its
//!   ready label may approve ([`crate::IssueSource::labelled_by`]), and nobody who may not
//!   edited it after that ([`crate::IssueSource::edited_by`]). The task records who
//!   approved which text ([`Approval`], with the text's digest). Otherwise nothing
//!   is queued and one comment on the issue says why (once per label applied: its
//!   hidden marker names the labeller and the time).
//! - **Edits after approval.** On every poll a live task's approved digest is
//!   compared with the listed text. Changed by a person who may approve: the new
//!   text is approved. Changed by anyone else: the task is held
//!   ([`crate::state::Event::Hold`]): not handed out, a holder told to stop at its
//!   next heartbeat, and one comment (an outbox effect) asks a maintainer to
//!   review the edit and apply the label again.
//! - **Release.** A held task is released with the new text when a person who may
//!   approve applied the ready label after the edit, or at once when the text is
//!   back to the approved one.
//! - **Author** (`TRUST_MODE=author`): additionally, only issues whose author may
//!   approve are queued.
//!
//! Workers get the approved text from the task, never a fresh read, with its
//! digest ([`crate::Assignment::text_digest`]), which they check.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::gate::ClaimGate;
use super::poll::PollReport;
use super::step::{PollRound, PollStep};
use super::{Core, lock};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Approval, EditReview, Person, ReadyIssue, Task, TaskId, Timestamp};
use crate::queue::Enqueued;
use crate::source::Provenance;
use crate::state::Event;

/// Whose text reaches an agent (`TRUST_MODE`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrustMode {
    /// No checks: every ready issue is queued and its latest text handed out (for
    /// private repositories whose every member is trusted).
    Off,
    /// Only text approved by a person who may (the ready label's author, or a later
    /// editor, with write permission) reaches an agent.
    #[default]
    Labeler,
    /// As `Labeler`, and only issues whose author may approve are queued.
    Author,
}

impl TrustMode {
    /// `off`, `labeler` or `author`.
    pub fn as_str(self) -> &'static str {
        match self {
            TrustMode::Off => "off",
            TrustMode::Labeler => "labeler",
            TrustMode::Author => "author",
        }
    }
}

impl fmt::Display for TrustMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TrustMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<TrustMode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" => Ok(TrustMode::Off),
            "labeler" | "labeller" => Ok(TrustMode::Labeler),
            "author" => Ok(TrustMode::Author),
            other => Err(Error::invalid(format!(
                "trust mode {other:?} is not one of off, labeler, author"
            ))),
        }
    }
}

/// What the trust rules made of one listed issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Admitted {
    /// Passed to the queue, which answered this.
    Queued(Enqueued),
    /// Not queued: nobody who may approve it applied the label.
    Refused,
    /// Its task is (or stays) held for review of an edit.
    Held,
    /// Its task's text changed and the change was approved (or a hold released).
    Approved,
}

/// The trust rules: the poll's admission of listed issues, the check of a claimed
/// task's text, and the "not queued" comments already posted.
#[derive(Debug, Default)]
pub(crate) struct Trust {
    mode: TrustMode,
    /// The marker of the last "not queued" comment posted per issue, so a refused
    /// issue costs no comment read per poll (the marker keeps it once anyway).
    refused: Mutex<HashMap<TaskId, String>>,
}

impl Trust {
    /// The rules of `mode`.
    pub(crate) fn new(mode: TrustMode) -> Trust {
        Trust {
            mode,
            refused: Mutex::default(),
        }
    }
}

#[async_trait]
impl ClaimGate for Trust {
    fn name(&self) -> &'static str {
        "trust"
    }

    async fn vet(&self, core: &Core, task: &Task) -> Result<bool> {
        self.vet_claim(core, task).await
    }

    fn why(&self, task: &Task, _live: &[Task], _now: Timestamp) -> Option<String> {
        let review = task.review()?;
        Some(format!(
            "its text was edited by @{} after its approval: held until a maintainer applies the ready label again",
            review.editor
        ))
    }
}

/// The most new issues of one repository the poll admits at once: a backlog is
/// admitted oldest first, this many a poll (and the next poll comes at once), so a
/// poll stays short and an issue labelled elsewhere meanwhile is admitted by the
/// next one.
pub(crate) const ADMIT_PER_REPO: usize = 100;

/// The poll's part: every listed issue goes through the trust rules (or, with
/// `TRUST_MODE=off`, straight to the queue). Live tasks are rechecked one by one
/// (the tracker is asked only when their text changed); the new issues' trust is
/// read in one [`crate::IssueSource::provenance`] call.
#[async_trait]
impl PollStep for Trust {
    async fn run(&self, core: &Core, round: &mut PollRound) -> Result<()> {
        let mut fresh = Vec::new();
        for issue in round.listed.iter().cloned() {
            let admitted = if self.mode == TrustMode::Off {
                Admitted::Queued(core.queue.enqueue(issue, round.observed_at).await?)
            } else {
                match self.admit(core, issue, round.observed_at).await? {
                    Admission::Done(admitted) => admitted,
                    Admission::New(issue) => {
                        fresh.push(issue);
                        continue;
                    }
                }
            };
            round.report.count(admitted);
        }
        let (batch, later) = admission_batch(fresh);
        if later > 0 {
            tracing::info!(
                waiting = later,
                "admitting a backlog of new issues in batches"
            );
            round.again = true;
        }
        self.admit_batch(core, batch, round).await?;
        let report = &round.report;
        if report.created + report.requeued > 0 {
            tracing::info!(
                created = report.created,
                requeued = report.requeued,
                "queued ready issues"
            );
            core.wake();
        }
        Ok(())
    }
}

impl PollReport {
    fn count(&mut self, admitted: Admitted) {
        match admitted {
            Admitted::Queued(Enqueued::Created) => self.created += 1,
            Admitted::Queued(Enqueued::Requeued) => self.requeued += 1,
            Admitted::Queued(Enqueued::Unchanged) => {}
            Admitted::Refused => self.refused += 1,
            Admitted::Held => self.held += 1,
            Admitted::Approved => self.approved += 1,
        }
    }
}

/// What the poll admits now of the new issues: at most [`ADMIT_PER_REPO`] of each
/// repository, oldest first; and how many wait for the next poll.
fn admission_batch(mut fresh: Vec<ReadyIssue>) -> (Vec<ReadyIssue>, usize) {
    fresh.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let mut taken: HashMap<String, usize> = HashMap::new();
    let (mut batch, mut later) = (Vec::new(), 0);
    for issue in fresh {
        let n = taken.entry(issue.id.repo().to_string()).or_default();
        if *n < ADMIT_PER_REPO {
            *n += 1;
            batch.push(issue);
        } else {
            later += 1;
        }
    }
    (batch, later)
}

/// Whether a listed issue was dealt with, or is new and waits for its trust read.
enum Admission {
    Done(Admitted),
    New(ReadyIssue),
}

impl Trust {
    /// Applies the trust rules (module docs) to one listed issue with a task, or
    /// hands it back as new.
    async fn admit(
        &self,
        core: &Core,
        issue: ReadyIssue,
        observed_at: Timestamp,
    ) -> Result<Admission> {
        Ok(match core.queue.get(&issue.id).await? {
            Some(task) if !task.state().is_terminal() => {
                Admission::Done(self.recheck(core, task, issue).await?)
            }
            // The terminal labels are not written yet: the ready label is the old
            // run's, and the queue would change nothing.
            Some(task) if task.effects_written_at().is_none_or(|at| at >= observed_at) => {
                Admission::Done(Admitted::Queued(Enqueued::Unchanged))
            }
            _ => Admission::New(issue),
        })
    }

    /// The new issues of this poll: their trust read at once, then each admitted.
    /// An issue gone meanwhile (deleted, or no longer ready) waits for the next
    /// listing.
    async fn admit_batch(
        &self,
        core: &Core,
        batch: Vec<ReadyIssue>,
        round: &mut PollRound,
    ) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let ids: Vec<TaskId> = batch.iter().map(|i| i.id.clone()).collect();
        let author = self.mode == TrustMode::Author;
        let read = core.source.provenance(&ids, author).await?;
        let mut failed = None;
        for (issue, provenance) in batch.into_iter().zip(read) {
            let provenance = match provenance {
                Ok(p) if p.still_ready => p,
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                // The others are admitted; the poll then fails, and the next tries again.
                Err(e) => {
                    failed.get_or_insert(e);
                    continue;
                }
            };
            let admitted = self
                .admit_new(core, issue, provenance, round.observed_at)
                .await?;
            round.report.count(admitted);
        }
        failed.map_or(Ok(()), Err)
    }

    /// An issue with no live task: queued when its label (and, in author mode, its
    /// author) says a person who may approve asked for it.
    async fn admit_new(
        &self,
        core: &Core,
        issue: ReadyIssue,
        provenance: Provenance,
        observed_at: Timestamp,
    ) -> Result<Admitted> {
        let labeler = provenance.labelled_by;
        let ready = core.config.labels.ready.join("`, `");
        let refusal = if !labeler.may_approve {
            Some(format!(
                "The `{ready}` label was applied by @{}, who has no write access to this \
                 repository, so this issue was not queued for an agent. A maintainer can \
                 review it and apply the label again.",
                labeler.login
            ))
        } else if let Some(editor) = provenance
            .edited_by
            .filter(|e| !e.may_approve && later(e.at, labeler.at))
        {
            Some(format!(
                "This issue was edited by @{} after @{} applied the `{ready}` label, so the \
                 text an agent would get is not the one that was approved. A maintainer can \
                 review the edit and apply the label again.",
                editor.login, labeler.login
            ))
        } else if self.mode == TrustMode::Author {
            let author = provenance.opened_by.unwrap_or_else(Person::tracker);
            (!author.may_approve).then(|| {
                format!(
                    "This issue was opened by @{}, who has no write access to this \
                     repository; this orchestrator queues only issues opened by people who do.",
                    author.login
                )
            })
        } else {
            None
        };
        if let Some(why) = refusal {
            self.refuse(core, &issue.id, &labeler, &why).await?;
            return Ok(Admitted::Refused);
        }
        let approval = approval_by(&labeler, &issue);
        let id = issue.id.clone();
        let enqueued = core.queue.enqueue(issue, observed_at).await?;
        if enqueued != Enqueued::Unchanged {
            tracing::info!(task = %id, approved_by = %approval.by, "queued: the ready label was applied by a person who may approve");
            self.approve(core, &id, approval, None).await?;
        }
        Ok(Admitted::Queued(enqueued))
    }

    /// A live task: its text compared with the approved one.
    async fn recheck(&self, core: &Core, task: Task, issue: ReadyIssue) -> Result<Admitted> {
        let src = &core.source;
        let listed = issue.digest();
        let Some(approval) = task.approval.clone() else {
            // Queued with trust checks off, or a crash came between the enqueue and
            // its approval: the stored text is approved if its label says so.
            let labeler = src.labelled_by(&task.id).await?;
            if labeler.may_approve {
                self.approve(core, &task.id, approval_by(&labeler, &task.issue), None)
                    .await?;
                return Box::pin(self.recheck(core, core.task(&task.id).await?, issue)).await;
            }
            self.hold_for_review(core, &task, &labeler, listed).await?;
            return Ok(Admitted::Held);
        };
        if let Some(review) = &task.review() {
            let labeler = src.labelled_by(&task.id).await?;
            let relabelled = labeler.may_approve
                && later(labeler.at, Some(review.edited_at.unwrap_or(review.held_at)));
            if relabelled {
                tracing::info!(task = %task.id, approved_by = %labeler.login, "the ready label was applied again: the edited text is approved");
                let approval = approval_by(&labeler, &issue);
                self.approve(core, &task.id, approval, Some(issue)).await?;
                return Ok(Admitted::Approved);
            }
            if listed == approval.digest {
                tracing::info!(task = %task.id, "the edit was undone: the approved text stands");
                self.approve(core, &task.id, approval, None).await?;
                return Ok(Admitted::Approved);
            }
            if listed == review.digest {
                return Ok(Admitted::Held);
            }
        } else if listed == approval.digest {
            // Same text: only the labels may have changed.
            let enqueued = core.queue.enqueue(issue, core.now()).await?;
            return Ok(Admitted::Queued(enqueued));
        }
        match src.edited_by(&task.id).await? {
            Some(editor) if !editor.may_approve => {
                self.hold_for_review(core, &task, &editor, listed).await?;
                Ok(Admitted::Held)
            }
            editor => {
                let editor = editor.unwrap_or_else(Person::tracker);
                tracing::info!(task = %task.id, editor = %editor.login, "the issue was edited by a person who may approve: the new text is approved");
                let approval = approval_by(&editor, &issue);
                self.approve(core, &task.id, approval, Some(issue)).await?;
                Ok(Admitted::Approved)
            }
        }
    }

    /// Before a claimed task is handed out, its issue's text as it is now
    /// ([`crate::IssueState::digest`]) against the approved digest: changed by
    /// someone who may not approve, the task is held and the claim handed back
    /// (`false`); otherwise the task goes out with its approved text (a change by
    /// someone who may is taken up by the next poll). A tracker that cannot be
    /// read does not stop the claim: the approved text is what goes out.
    async fn vet_claim(&self, core: &Core, task: &Task) -> Result<bool> {
        let Some(approval) = task
            .approval
            .as_ref()
            .filter(|_| self.mode != TrustMode::Off)
        else {
            return Ok(true);
        };
        let src = &core.source;
        let changed = match src.issue_state(&task.id).await {
            Ok(s) => s.digest.filter(|d| *d != approval.digest),
            Err(e) => {
                tracing::warn!(task = %task.id, error = %e, "could not read the issue before handing it out; its approved text goes out");
                None
            }
        };
        let Some(digest) = changed else {
            return Ok(true);
        };
        let editor = match src.edited_by(&task.id).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(task = %task.id, error = %e, "could not read who edited the issue; its approved text goes out");
                return Ok(true);
            }
        };
        let Some(editor) = editor.filter(|e| !e.may_approve) else {
            return Ok(true);
        };
        let Some(token) = task.lease().map(|l| l.token) else {
            return Ok(true);
        };
        self.hold_for_review(core, task, &editor, digest).await?;
        let reason = "the issue's text changed since its approval".to_string();
        core.queue
            .release(&task.id, token, reason, core.now())
            .await?;
        Ok(false)
    }

    async fn approve(
        &self,
        core: &Core,
        id: &TaskId,
        approval: Approval,
        issue: Option<ReadyIssue>,
    ) -> Result<()> {
        let event = Event::Approve { approval, issue };
        core.queue.apply(id, event, core.now()).await?;
        core.wake();
        Ok(())
    }

    async fn hold_for_review(
        &self,
        core: &Core,
        task: &Task,
        editor: &Person,
        digest: String,
    ) -> Result<()> {
        tracing::warn!(task = %task.id, editor = %editor.login, "the issue's text was changed by a person who may not approve: held until a maintainer applies the ready label again");
        let review = EditReview {
            editor: editor.login.clone(),
            edited_at: editor.at,
            digest,
            held_at: core.now(),
        };
        core.queue
            .apply(&task.id, Event::Hold { review }, core.now())
            .await?;
        Ok(())
    }

    /// Says once on the issue why it was not queued. The comment's hidden marker
    /// names the label's application (who, when), so neither a crash nor the next
    /// poll posts it twice, and a new application by someone else gets its own.
    async fn refuse(&self, core: &Core, id: &TaskId, labeler: &Person, why: &str) -> Result<()> {
        let marker = format!(
            "scrum-orchestrator:{id}:not-approved:{}:{}",
            labeler.login.replace("--", "-"),
            labeler.at.map_or(0, |t| t.0)
        );
        if lock(&self.refused).get(id) == Some(&marker) {
            return Ok(());
        }
        tracing::warn!(issue = %id, labeller = %labeler.login, "not queued: {why}");
        core.source.comment(id, &marker, why).await?;
        lock(&self.refused).insert(id.clone(), marker);
        Ok(())
    }
}

/// The approval of `issue`'s current text by `person`.
fn approval_by(person: &Person, issue: &ReadyIssue) -> Approval {
    Approval {
        by: person.login.clone(),
        at: person.at,
        digest: issue.digest(),
    }
}

/// Whether `a` is known to come after `b`.
fn later(a: Option<Timestamp>, b: Option<Timestamp>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a > b)
}

//! The outbox dispatcher: applies recorded effects to GitHub, in order per task,
//! until GitHub accepts them.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::{EngineConfig, Orchestrator};
use crate::error::Result;
use crate::model::TaskId;
use crate::queue::OutboxEntry;
use crate::state::{Effect, EffectKind, FailureClass, effect_failure};

/// What one dispatch round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchReport {
    /// Effects applied and acknowledged.
    pub applied: usize,
    /// Effects that failed: backing off, or set aside.
    pub failed: usize,
    /// Of those, effects set aside (dead) this round.
    pub set_aside: usize,
}

/// Effects read per pass: enough to see past one repository's backlog to the
/// others' effects.
const WINDOW: usize = 5_000;

/// One dispatch round: what it did, and what it passes over from now on.
#[derive(Debug, Default)]
struct Round {
    report: DispatchReport,
    /// Tasks whose effect failed this round: their later effects wait.
    failed_tasks: HashSet<TaskId>,
    /// Repositories out of this round: one of their effects failed, so a
    /// repository that refuses writes (or answers slowly, or not at all) is probed
    /// with one effect a round, not with every one of its effects.
    out: HashSet<String>,
    /// Set when the round must stop (a rate limit, another orchestrator leads).
    over: bool,
}

impl Round {
    /// One pass over `due` (oldest first): the notifications, which hold back
    /// nothing, and the oldest due effect of each repository still in the round,
    /// repositories in the order of their oldest effect.
    fn pass(&self, due: Vec<OutboxEntry>) -> (Vec<OutboxEntry>, Vec<OutboxEntry>) {
        let (mut notes, mut writes) = (Vec::new(), Vec::new());
        let mut served: HashSet<String> = HashSet::new();
        for entry in due {
            if matches!(entry.effect.kind, EffectKind::Notify { .. }) {
                notes.push(entry);
                continue;
            }
            let repo = entry.effect.task.repo().to_string();
            if self.failed_tasks.contains(&entry.effect.task)
                || self.out.contains(&repo)
                || !served.insert(repo)
            {
                continue;
            }
            writes.push(entry);
        }
        (notes, writes)
    }
}

impl Orchestrator {
    /// Applies the effects that are due, in order per task, taking them
    /// round-robin across repositories: each pass applies the oldest due effect of
    /// every repository, then reads the outbox again (so an effect recorded
    /// meanwhile, a completion in a quiet repository, goes out in the next pass,
    /// behind at most one effect of each busy repository). An effect that fails
    /// backs off on its own schedule, or is set aside after a refusal a retry
    /// cannot fix ([`crate::state::effect_failure`]); it holds back the later
    /// effects of its own task, and takes its repository out of the round, so a
    /// repository that refuses writes or answers slowly costs the others one slot
    /// a round. A rate limit ends the round.
    pub async fn dispatch_once(&self) -> Result<DispatchReport> {
        let mut round = Round::default();
        let mut passes = 0;
        while !round.over {
            // A round can outlast the leader lease (GitHub writes are spaced): stop
            // as soon as another orchestrator leads, so two never write at once.
            if passes > 0 && !self.leading().await {
                break;
            }
            passes += 1;
            // Notifications waiting to be sent stay due: read past them.
            let limit = WINDOW + self.notifications_waiting();
            let due = self.inner.queue.due_effects(self.now(), limit).await?;
            let (notes, pass) = round.pass(due);
            for note in &notes {
                // Sent in the background; it holds back nothing.
                self.hand_notification(note).await?;
            }
            if pass.is_empty() {
                break;
            }
            for (n, entry) in pass.into_iter().enumerate() {
                if round.over || (n > 0 && !self.leading().await) {
                    round.over = true;
                    break;
                }
                self.dispatch_effect(&mut round, entry).await?;
            }
        }
        let report = round.report;
        self.update_status(|s| s.effects_failing = report.failed as u64);
        if report.applied > 0 && self.lift_hold() {
            // A held repository's writes may land again: waiting workers look now.
            self.inner.wake();
        }
        Ok(report)
    }

    /// Applies one effect and records how it went.
    async fn dispatch_effect(&self, round: &mut Round, entry: OutboxEntry) -> Result<()> {
        let Err(e) = self.apply(&entry.effect).await else {
            self.inner.queue.ack_effect(entry.id, self.now()).await?;
            round.report.applied += 1;
            return Ok(());
        };
        let retry = &self.inner.config.effect_retry;
        let failure = effect_failure(&entry, &e, self.now(), retry, fastrand::f64());
        let set_aside = failure.retry_at.is_none();
        tracing::warn!(
            task = %entry.effect.task,
            effect = entry.effect.kind.name(),
            error = %e,
            set_aside,
            "effect not applied; {}",
            if set_aside { "set aside until an operator retries it" } else { "will retry" }
        );
        self.inner.queue.nack_effect(entry.id, &failure).await?;
        round.report.failed += 1;
        round.report.set_aside += usize::from(set_aside);
        round.out.insert(entry.effect.task.repo().to_string());
        round.failed_tasks.insert(entry.effect.task);
        round.over |= FailureClass::of(&e).ends_round();
        Ok(())
    }

    /// Applies one effect: at most one comment, then at most one label write (from
    /// a fresh read, see [`crate::IssueSource::set_labels`]). Every step is
    /// idempotent (labels already so, a comment whose marker exists), so a retry
    /// after a crash or a lost reply writes nothing twice.
    async fn apply(&self, effect: &Effect) -> Result<()> {
        let writes = writes_for(effect, &self.inner.config);
        let (src, id) = (&self.inner.source, &effect.task);
        match &writes.comment {
            Some(body) if writes.in_place => {
                src.upsert_comment(id, &effect.marker(), body).await?;
            }
            Some(body) => {
                src.comment(id, &effect.marker(), body).await?;
            }
            None => {}
        }
        if let Some((add, remove)) = &writes.labels {
            src.set_labels(id, add, remove).await?;
        }
        Ok(())
    }
}

fn human_duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        _ => format!("{}h {}m", s / 3600, s % 3600 / 60),
    }
}

/// What applying an effect writes on the issue.
#[derive(Debug, Default)]
struct Writes {
    /// The comment, posted first (with the effect's marker).
    comment: Option<String>,
    /// Whether the comment replaces the one with the same marker: a pull
    /// request's comment, updated each follow-up round.
    in_place: bool,
    /// The labels to add and to remove, in one write.
    labels: Option<(Vec<String>, Vec<String>)>,
}

/// The writes `effect` makes under `config`: its comment and its labels. A
/// `Notify` makes none (the notification loops send it).
fn writes_for(effect: &Effect, config: &EngineConfig) -> Writes {
    let labels = &config.labels;
    let live = || {
        let mut live = labels.ready.clone();
        live.push(labels.in_progress.clone());
        live.push(labels.fixing.clone());
        live
    };
    let outcome = |comment: String, label: &String| Writes {
        comment: Some(comment),
        labels: Some((vec![label.clone()], live())),
        in_place: false,
    };
    let comment = |comment: String| Writes {
        comment: Some(comment),
        labels: None,
        in_place: false,
    };
    match &effect.kind {
        EffectKind::Queued => Writes {
            comment: None,
            labels: Some(queued_labels(effect.run, labels)),
            in_place: false,
        },
        EffectKind::RetryScheduled {
            reason,
            next_attempt_at,
        } if config.comment_on_retry => comment(format!(
            "Attempt {} of this issue failed: {reason}\n\nIt will be retried after {next_attempt_at}.",
            effect.attempt
        )),
        EffectKind::RetryScheduled { .. } | EffectKind::Notify { .. } => Writes::default(),
        EffectKind::Completed { pr_url, .. } => Writes {
            in_place: pr_url.is_some(),
            ..outcome(completed_comment(&effect.kind), &labels.completed)
        },
        EffectKind::Failed { reason, attempts } => outcome(
            format!("Failed after {attempts} attempt(s): {reason}"),
            &labels.failed,
        ),
        EffectKind::Cancelled { .. } => Writes {
            comment: None,
            labels: Some((Vec::new(), vec![labels.in_progress.clone()])),
            in_place: false,
        },
        EffectKind::ClarificationRequested {
            questions,
            reasoning,
        } => outcome(
            clarification_comment(questions, reasoning, labels),
            &labels.needs_clarification,
        ),
        EffectKind::ReviewRequested { editor, .. } => comment(format!(
            "This issue's text was changed by @{editor} after it was approved for an \
             agent, and @{editor} has no write access here. The task is on hold: no \
             agent gets the new text, and one at work on it was told to stop.\n\n\
             A maintainer can review the edit and apply the `{}` label again \
             (remove it and add it) to release the task with the new text.",
            labels.ready.join("`, `")
        )),
        EffectKind::DependencyProblem { problem } => comment(format!(
            "This issue is on hold: {problem}. No agent gets it until this is \
             resolved (edit the issue's \"Depends on\" lines or its dependencies, \
             or close the blocker)."
        )),
        EffectKind::FollowUpRequested {
            author,
            pr_url,
            cause,
            rounds,
            max_rounds,
        } => Writes {
            comment: Some(follow_up_comment(
                author,
                pr_url,
                *cause,
                rounds,
                *max_rounds,
            )),
            labels: Some((vec![labels.fixing.clone()], vec![labels.completed.clone()])),
            in_place: !rounds.is_empty(),
        },
        EffectKind::FollowUpsExhausted {
            pr_url,
            cause,
            feedback,
            rounds,
        } => comment(format!(
            "The follow-up rounds on {pr_url} are used up ({} ran): it is left for \
             people. Still wrong: {}.\n\n{feedback}\n\nRounds:\n{}",
            rounds.len().saturating_sub(1),
            cause.describe(),
            crate::follow_up::rounds_list(rounds)
        )),
    }
}

/// The labels a run's `Queued` effect adds and removes. A new run clears the last
/// run's outcome in the same write, and puts the ready label back: the outcome
/// removed it, and a run an operator retried must not read as unlabelled (and be
/// cancelled) at the next poll. A run queued because a person put it back already
/// has it.
fn queued_labels(run: u32, labels: &crate::Labels) -> (Vec<String>, Vec<String>) {
    let mut add = vec![labels.in_progress.clone()];
    if run == 1 {
        return (add, Vec::new());
    }
    add.extend(labels.ready.iter().cloned());
    (add, vec![labels.completed.clone(), labels.failed.clone()])
}

/// The comment of a completion: the pull request, the worker, attempts, duration
/// and cost.
fn completed_comment(kind: &EffectKind) -> String {
    let EffectKind::Completed {
        pr_url,
        worker,
        attempts,
        duration_ms,
        cost_usd,
        tokens,
        revisions,
        rounds,
    } = kind
    else {
        return String::new();
    };
    let mut body = match pr_url {
        Some(url) => format!("Completed: {url}\n\n"),
        None => "Completed.\n\n".to_string(),
    };
    if !rounds.is_empty() {
        body.push_str(&format!(
            "Rounds ({}):\n{}\n",
            rounds.len(),
            crate::follow_up::rounds_list(rounds)
        ));
    }
    body.push_str(&format!(
        "- worker: `{worker}`\n- attempts: {attempts}\n- duration: {}\n",
        human_duration(*duration_ms)
    ));
    let spend = crate::Spend {
        cost_usd: *cost_usd,
        tokens: *tokens,
    };
    if let Some(spent) = spend.describe(*revisions) {
        body.push_str(&format!("- cost: {spent}\n"));
    }
    body
}

/// The pull request's comment while a follow-up runs: the cause, who asked, and
/// the rounds so far.
fn follow_up_comment(
    author: &str,
    pr_url: &str,
    cause: crate::follow_up::FollowUpCause,
    rounds: &[crate::follow_up::Round],
    max_rounds: u32,
) -> String {
    let round = rounds.len().saturating_sub(1);
    let by = match cause {
        crate::follow_up::FollowUpCause::ChangesRequested
        | crate::follow_up::FollowUpCause::Comments => format!(" (@{author})"),
        _ => String::new(),
    };
    format!(
        "Follow-up {round} of {max_rounds} on {pr_url}: {}{by}. An agent works on it \
         now, on the same branch.\n\nRounds:\n{}",
        cause.describe(),
        crate::follow_up::rounds_list(rounds)
    )
}

/// The comment asking a person the worker's questions.
fn clarification_comment(questions: &[String], reasoning: &str, labels: &crate::Labels) -> String {
    let mut body = String::from(
        "Before an agent works on this issue, it needs answers to these questions:\n\n",
    );
    for q in questions {
        body.push_str(&format!("- {q}\n"));
    }
    if !reasoning.trim().is_empty() {
        body.push_str(&format!("\nWhy: {reasoning}\n"));
    }
    body.push_str(&format!(
        "\nPlease answer in the issue (edit it or comment), then remove the `{}` label and add `{}` again.",
        labels.needs_clarification,
        labels.ready.join("`, `")
    ));
    body
}

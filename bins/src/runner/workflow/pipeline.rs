//! One attempt of the workflow in a task's clone: the clarification check, the
//! phases and their gates, the review and its revisions. Every call's prompt,
//! answer, gate and decision go to the attempt's log; cost and tokens are summed
//! over every call, failed ones and retries included.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::agent::{self, AgentError, Call, Spend, append, cap};
pub use super::outcome::{Decision, PhaseRecord, Report, Verdict};
use super::outcome::{parse_clarification, reason_of};
use super::template::{Vars, render};
use super::{Gate, Phase, ROLE_VARS, Workflow};
use crate::runner::merge;
use crate::runner::sandbox::{Cell, Sandbox};

/// The longest reason or feedback kept from an agent's answer.
const KEEP_CHARS: usize = 2000;

/// One attempt's job: where it runs and what it knows of the issue.
#[derive(Debug)]
pub struct Job<'a> {
    /// Where agents run: the task's clone (a git work tree on the task's branch),
    /// the private home and temp, the task's variables.
    pub cell: Cell<'a>,
    /// The sandbox agents run in.
    pub sandbox: &'a Sandbox,
    /// Where prompt and output files go, outside the clone.
    pub scratch: &'a Path,
    /// The attempt's log.
    pub log: &'a Path,
    /// The template values of the issue and attempt: every name of
    /// [`super::PROMPT_VARS`] but `phase`, `revision`, `max_revisions` and
    /// `feedback`, which the pipeline sets (the follow-up's empty but on a
    /// follow-up run: [`crate::runner::vars::prompt_vars`]).
    pub vars: Vars,
    /// Whether to run the clarification check (the workflow must also want it).
    pub clarify: bool,
    /// Whether this is a follow-up run: it picks the phases
    /// ([`Workflow::phases_for`]).
    pub follow_up: bool,
    /// The files a merge of the base branch left in conflict (a follow-up for a
    /// conflict), empty otherwise. After each phase none may hold a conflict
    /// marker, and a merge still in progress is concluded
    /// ([`crate::runner::merge::conclude`]), so later phases work on the merge
    /// commit.
    pub conflicts: &'a [String],
}

/// Runs one attempt of `workflow` on `job`.
pub async fn run(workflow: &Workflow, job: &Job<'_>, cancel: &CancellationToken) -> Report {
    let mut run = Run {
        workflow,
        job,
        cancel,
        report: Report {
            verdict: Verdict::Cancelled,
            spend: Spend::default(),
            revisions: 0,
            decision: None,
            phases: Vec::new(),
        },
        calls: 0,
    };
    let verdict = run.attempt().await;
    run.report.verdict = verdict;
    append(
        job.log,
        &format!(
            "== workflow: {:?}; {} revision(s); {}",
            run.report.verdict,
            run.report.revisions,
            run.report
                .spend
                .describe(None)
                .unwrap_or_else(|| "no cost reported".into())
        ),
    );
    run.report
}

struct Run<'a> {
    workflow: &'a Workflow,
    job: &'a Job<'a>,
    cancel: &'a CancellationToken,
    report: Report,
    calls: u32,
}

impl Run<'_> {
    async fn attempt(&mut self) -> Verdict {
        let w = self.workflow;
        if self.job.clarify && w.clarification {
            if let Some(check) = &w.clarification_check {
                match self.call(check, 0, "").await {
                    Err(v) => return v,
                    Ok(answer) => {
                        let c = parse_clarification(&answer);
                        let outcome = if c.needs_clarification && !c.questions.is_empty() {
                            format!("needs clarification: {} question(s)", c.questions.len())
                        } else {
                            "clear enough".to_string()
                        };
                        self.record_outcome(&outcome);
                        if c.needs_clarification && !c.questions.is_empty() {
                            return Verdict::NeedsClarification {
                                questions: c.questions.iter().map(|q| cap(q, 500)).collect(),
                                reasoning: cap(&c.reasoning, 1000),
                            };
                        }
                    }
                }
            }
        }
        let max = w.max_revisions();
        let mut feedback = String::new();
        let mut revision = 0;
        loop {
            for phase in w.phases_for(self.job.follow_up) {
                let before = head(self.job.cell.dir).await;
                let answer = match self.call(phase, revision, &feedback).await {
                    Ok(a) => a,
                    Err(v) => return v,
                };
                if let Err(reason) = self.conclude_merge(phase).await {
                    return reason;
                }
                let after = head(self.job.cell.dir).await;
                let committed = after.is_some() && after != before;
                let phrase = phase
                    .approval_phrase
                    .as_deref()
                    .is_some_and(|p| answer.to_lowercase().contains(&p.to_lowercase()));
                let (passed, outcome) = match phase.gate {
                    Gate::None => (true, "done".to_string()),
                    Gate::Commit if committed => (true, "committed".to_string()),
                    Gate::Commit => (false, "made no commit".to_string()),
                    Gate::CommitOrPhrase if committed => (true, "committed fixes".to_string()),
                    Gate::CommitOrPhrase if phrase => (
                        true,
                        format!("said {:?}", phase.approval_phrase.as_deref().unwrap_or("")),
                    ),
                    Gate::CommitOrPhrase => (
                        false,
                        format!(
                            "made no commit and did not say {:?}",
                            phase.approval_phrase.as_deref().unwrap_or("")
                        ),
                    ),
                };
                self.record_outcome(&format!(
                    "gate {}: {outcome}",
                    if passed { "passed" } else { "failed" }
                ));
                if !passed {
                    return Verdict::GateFailed {
                        phase: phase.name.clone(),
                        reason: format!("the {} phase {outcome}", phase.name),
                    };
                }
            }
            let review = &w.review;
            let answer = match self.call(review, revision, &feedback).await {
                Ok(a) => a,
                Err(v) => return v,
            };
            let decision = Decision::parse(&answer);
            self.record_outcome(&format!("DECISION: {decision:?}"));
            self.report.decision = Some((decision, cap(answer.trim(), KEEP_CHARS)));
            match decision {
                Decision::Approve => return Verdict::Approved,
                Decision::Reject => {
                    return Verdict::Rejected {
                        reason: format!(
                            "the {} rejected the change: {}",
                            review.name,
                            reason_of(&answer)
                        ),
                    };
                }
                Decision::Revise if revision >= max => {
                    return Verdict::Rejected {
                        reason: format!(
                            "the {} rejected after {max} revisions: {}",
                            review.name,
                            reason_of(&answer)
                        ),
                    };
                }
                Decision::Revise => {
                    revision += 1;
                    self.report.revisions = revision;
                    feedback = cap(answer.trim(), KEEP_CHARS);
                }
            }
        }
    }

    /// Calls `phase`'s agent, retrying transient errors; `Err` is how the attempt ends.
    async fn call(
        &mut self,
        phase: &Phase,
        revision: u32,
        feedback: &str,
    ) -> Result<String, Verdict> {
        let w = self.workflow;
        let agent = &w.agents[&phase.agent];
        let mut vars = self.job.vars.clone();
        vars.insert("phase", phase.name.clone());
        vars.insert("revision", revision.to_string());
        vars.insert("max_revisions", w.max_revisions().to_string());
        vars.insert("feedback", feedback.to_string());
        let role_vars: Vars = vars
            .iter()
            .filter(|(k, _)| ROLE_VARS.contains(k))
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        let rendered =
            render(&phase.prompt, &vars).and_then(|p| Ok((p, render(&phase.role, &role_vars)?)));
        let (prompt, role) = match rendered {
            Ok(pr) => pr,
            Err(e) => {
                return Err(Verdict::AgentFailed {
                    phase: phase.name.clone(),
                    reason: format!("the {} phase's template: {e}", phase.name),
                });
            }
        };
        let mut tries = 0;
        let mut spend = Spend::default();
        let result = loop {
            tries += 1;
            self.calls += 1;
            append(
                self.job.log,
                &format!(
                    "== phase {} (pass {}, try {tries}) ==\n--- prompt ---\n{prompt}\n--- agent output ---",
                    phase.name,
                    revision + 1
                ),
            );
            let scratch = self.job.scratch.join(format!("call-{}", self.calls));
            let call = Call {
                role: &role,
                prompt: &prompt,
                allowed_tools: &phase.allowed_tools,
                timeout: phase.timeout(),
                sandbox: self.job.sandbox,
                cell: self.job.cell,
                scratch: &scratch,
                log: self.job.log,
            };
            let outcome = agent::call(agent, &call, self.cancel).await;
            let _ = std::fs::remove_dir_all(&scratch);
            spend.add(outcome.spend);
            self.report.spend.add(outcome.spend);
            match outcome.result {
                Ok(reply) => {
                    append(
                        self.job.log,
                        &format!(
                            "--- result ({} turn(s), {} ms, session {}, {}) ---\n{}",
                            reply.num_turns.map_or("?".into(), |n| n.to_string()),
                            reply.duration_ms.map_or("?".into(), |n| n.to_string()),
                            reply.session_id.as_deref().unwrap_or("?"),
                            outcome
                                .spend
                                .describe(None)
                                .unwrap_or_else(|| "no cost reported".into()),
                            reply.text
                        ),
                    );
                    break Ok(reply.text);
                }
                Err(AgentError::Transient(m))
                    if tries < w.retry.tries && !self.cancel.is_cancelled() =>
                {
                    let wait = w.retry.delay(tries);
                    append(
                        self.job.log,
                        &format!("--- transient error, retrying in {wait:?}: {m}"),
                    );
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = self.cancel.cancelled() => break Err(AgentError::Cancelled),
                    }
                }
                Err(e) => {
                    append(self.job.log, &format!("--- agent error: {}", e.message()));
                    break Err(e);
                }
            }
        };
        self.report.phases.push(PhaseRecord {
            phase: phase.name.clone(),
            revision,
            tries,
            spend,
            outcome: String::new(),
        });
        match result {
            Ok(text) => Ok(text),
            Err(e) => {
                let name = phase.name.clone();
                let verdict = match e {
                    AgentError::Cancelled => Verdict::Cancelled,
                    AgentError::OutOfCredits(m) => Verdict::OutOfCredits { reason: m },
                    AgentError::Transient(m) => Verdict::AgentFailed {
                        reason: format!(
                            "the {name} phase's agent still failed after {tries} tries: {m}"
                        ),
                        phase: name,
                    },
                    AgentError::Failed(m) => Verdict::AgentFailed {
                        reason: format!("the {name} phase's agent failed: {m}"),
                        phase: name,
                    },
                };
                self.record_outcome(&format!("{verdict:?}"));
                Err(verdict)
            }
        }
    }

    /// On a follow-up for a conflict: fails the phase if a conflicted file still
    /// holds a conflict marker, and concludes a merge the agent left in progress.
    async fn conclude_merge(&mut self, phase: &Phase) -> Result<(), Verdict> {
        if self.job.conflicts.is_empty() {
            return Ok(());
        }
        match merge::conclude(self.job.cell.dir, self.job.conflicts, self.job.cell.env).await {
            Ok(concluded) => {
                if concluded {
                    append(self.job.log, "--- the merge of the base branch concluded");
                }
                Ok(())
            }
            Err(e) => {
                let reason = format!("the {} phase {e}", phase.name);
                self.record_outcome(&format!("gate failed: {e}"));
                Err(Verdict::GateFailed {
                    phase: phase.name.clone(),
                    reason,
                })
            }
        }
    }

    /// Sets the outcome of the last phase call, and logs it.
    fn record_outcome(&mut self, outcome: &str) {
        if let Some(p) = self.report.phases.last_mut() {
            p.outcome = outcome.to_string();
            append(self.job.log, &format!("--- {}: {outcome}", p.phase));
        }
    }
}

/// The clone's HEAD commit, if it has one.
async fn head(dir: &Path) -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .await
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Where an attempt's scratch files go: in the private home (where a sandboxed
/// agent can read its prompt file), beside (not inside) its clone.
pub fn scratch_dir(home: &Path) -> PathBuf {
    home.join(".scrum-agent")
}

//! One attempt of the workflow in a task's clone: the clarification check, the
//! phases and their gates, the review and its revisions. Every call's prompt,
//! answer, gate and decision go to the attempt's log; cost and tokens are summed
//! over every call, failed ones and retries included.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::Deserialize;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::agent::{self, AgentError, Call, Spend, append, cap};
use super::template::{Vars, render};
use super::{Gate, Phase, ROLE_VARS, Workflow};

/// The longest reason or feedback kept from an agent's answer.
const KEEP_CHARS: usize = 2000;

/// One attempt's job: where it runs and what it knows of the issue.
#[derive(Debug)]
pub struct Job<'a> {
    /// The task's clone (a git work tree on the task's branch).
    pub dir: &'a Path,
    /// Where prompt and output files go, outside the clone.
    pub scratch: &'a Path,
    /// The attempt's log.
    pub log: &'a Path,
    /// Environment added for agents.
    pub env: &'a [(String, String)],
    /// Environment removed for agents (credentials).
    pub remove_env: &'a [&'a str],
    /// The template values of the issue and attempt: every name of
    /// [`super::PROMPT_VARS`] but `phase`, `revision`, `max_revisions` and
    /// `feedback`, which the pipeline sets (`review_feedback`, `reviewer` and
    /// `pull_request` empty but on a rework run).
    pub vars: Vars,
    /// Whether to run the clarification check (the workflow must also want it).
    pub clarify: bool,
}

/// A review's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Open the pull request.
    Approve,
    /// Send the feedback back to the first phase.
    Revise,
    /// Give up on this attempt.
    Reject,
}

impl Decision {
    /// The last `DECISION: APPROVE|REVISE|REJECT` line of `answer` (markdown
    /// emphasis allowed); anything else reads as `Revise`.
    pub fn parse(answer: &str) -> Decision {
        for line in answer.lines().rev() {
            let cleaned: String = line
                .chars()
                .filter(|c| !matches!(c, '*' | '_' | '`' | '#' | '>'))
                .collect();
            let upper = cleaned.trim().to_uppercase();
            let Some(rest) = upper.strip_prefix("DECISION") else {
                continue;
            };
            let word = rest
                .trim_start_matches([':', ' ', '\t'])
                .split_whitespace()
                .next();
            match word.map(|w| w.trim_matches(|c: char| !c.is_ascii_alphabetic())) {
                Some("APPROVE") | Some("APPROVED") => return Decision::Approve,
                Some("REJECT") | Some("REJECTED") => return Decision::Reject,
                Some("REVISE") => return Decision::Revise,
                _ => continue,
            }
        }
        Decision::Revise
    }
}

/// How an attempt of the workflow ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// The review approved: deliver the branch.
    Approved,
    /// The review rejected, or revisions ran out: a failed attempt.
    Rejected {
        /// The reviewer's reason, e.g. "rejected after 3 revisions: …".
        reason: String,
    },
    /// A phase's gate did not pass: a failed attempt.
    GateFailed {
        /// The phase.
        phase: String,
        /// What it did not leave.
        reason: String,
    },
    /// An agent call failed (or kept failing transiently): a failed attempt.
    AgentFailed {
        /// The phase.
        phase: String,
        /// Its error.
        reason: String,
    },
    /// The account is out of credits: hand the task back, spending no attempt.
    OutOfCredits {
        /// The agent's message.
        reason: String,
    },
    /// The issue needs a person's answers first.
    NeedsClarification {
        /// What to ask.
        questions: Vec<String>,
        /// Why.
        reasoning: String,
    },
    /// The run was cancelled.
    Cancelled,
}

/// What one phase call did, for the log and the pull request.
#[derive(Clone, Debug, PartialEq)]
pub struct PhaseRecord {
    /// The phase.
    pub phase: String,
    /// The pass it was in (0 first, then one per revision).
    pub revision: u32,
    /// Calls made (more than one after transient errors).
    pub tries: u32,
    /// What it cost.
    pub spend: Spend,
    /// Gate or decision, in words.
    pub outcome: String,
}

/// An attempt's result: how it ended, what it cost, what happened.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// How it ended.
    pub verdict: Verdict,
    /// Cost and tokens over every call.
    pub spend: Spend,
    /// REVISE answers acted on.
    pub revisions: u32,
    /// The last decision of the review and its answer, when it ran.
    pub decision: Option<(Decision, String)>,
    /// Every phase call, in order.
    pub phases: Vec<PhaseRecord>,
}

impl Report {
    /// The pull request's summary: phases, revisions, the decision and the cost.
    pub fn summary(&self) -> String {
        let mut s = String::from(
            "### AI Scrum Master workflow\n\n| phase | pass | tries | outcome | cost |\n| --- | --- | --- | --- | --- |\n",
        );
        for p in &self.phases {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                p.phase,
                p.revision + 1,
                p.tries,
                p.outcome.replace('|', "\\|"),
                p.spend.describe(None).unwrap_or_else(|| "–".into())
            ));
        }
        s.push_str(&format!("\n- revisions: {}\n", self.revisions));
        if let Some((d, answer)) = &self.decision {
            s.push_str(&format!(
                "- Product Owner: {d:?}\n\n> {}\n",
                cap(answer.trim(), 600).replace('\n', "\n> ")
            ));
        }
        s.push_str(&format!(
            "\n- cost: {}\n",
            self.spend
                .describe(None)
                .unwrap_or_else(|| "unknown".into())
        ));
        s
    }
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

/// The clarification check's answer.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Clarification {
    needs_clarification: bool,
    questions: Vec<String>,
    reasoning: String,
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
            for phase in &w.phases {
                let before = head(self.job.dir).await;
                let answer = match self.call(phase, revision, &feedback).await {
                    Ok(a) => a,
                    Err(v) => return v,
                };
                let after = head(self.job.dir).await;
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
                dir: self.job.dir,
                env: self.job.env,
                remove_env: self.job.remove_env,
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

    /// Sets the outcome of the last phase call, and logs it.
    fn record_outcome(&mut self, outcome: &str) {
        if let Some(p) = self.report.phases.last_mut() {
            p.outcome = outcome.to_string();
            append(self.job.log, &format!("--- {}: {outcome}", p.phase));
        }
    }
}

/// The reviewer's reason: its answer without the decision line, capped.
fn reason_of(answer: &str) -> String {
    let kept: Vec<&str> = answer
        .lines()
        .filter(|l| !l.to_uppercase().contains("DECISION"))
        .filter(|l| !l.trim().is_empty())
        .collect();
    let text = kept.join(" ");
    if text.trim().is_empty() {
        "no reason given".into()
    } else {
        cap(text.trim(), 500)
    }
}

/// The clarification answer: a JSON object, alone or in a code block or prose.
fn parse_clarification(answer: &str) -> Clarification {
    let start = answer.find('{');
    let end = answer.rfind('}');
    match (start, end) {
        (Some(s), Some(e)) if s < e => serde_json::from_str(&answer[s..=e]).unwrap_or_default(),
        _ => Clarification::default(),
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

/// Where an attempt's scratch files go, beside (not inside) its clone.
pub fn scratch_dir(task_dir: &Path) -> PathBuf {
    task_dir.join("agent")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_are_read_from_the_last_decision_line() {
        assert_eq!(
            Decision::parse("Good.\nDECISION: APPROVE"),
            Decision::Approve
        );
        assert_eq!(Decision::parse("**Decision:** reject\n"), Decision::Reject);
        assert_eq!(
            Decision::parse("DECISION: REJECT was tempting\nDECISION: APPROVE."),
            Decision::Approve
        );
        assert_eq!(Decision::parse("Looks fine to me"), Decision::Revise);
        assert_eq!(Decision::parse("DECISION: MAYBE"), Decision::Revise);
    }

    #[test]
    fn a_clarification_answer_may_sit_in_prose() {
        let c = parse_clarification(
            "Here:\n```json\n{\"needs_clarification\": true, \"questions\": [\"Which API?\"], \"reasoning\": \"vague\"}\n```",
        );
        assert!(c.needs_clarification);
        assert_eq!(c.questions, ["Which API?"]);
        assert!(!parse_clarification("no json").needs_clarification);
    }

    #[test]
    fn the_reason_leaves_out_the_decision() {
        assert_eq!(
            reason_of("Tests are missing.\n\nDECISION: REVISE"),
            "Tests are missing."
        );
        assert_eq!(reason_of("DECISION: REJECT"), "no reason given");
    }
}

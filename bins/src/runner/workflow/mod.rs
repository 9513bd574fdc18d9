//! The built-in AI Scrum Master workflow, as data: which agents run in which
//! phases, with which role, prompt, tools, timeout and gate, and how the review
//! decides. `scrum-worker` runs it when `WORKFLOW_COMMAND` is not set; an embedder
//! runs it with [`pipeline::run`].
//!
//! # Layout
//!
//! - this module: the workflow file ([`Workflow`], TOML; [`DEFAULT_WORKFLOW`] is
//!   the built-in one) and its checks;
//! - [`template`]: `{{name}}` prompt templates;
//! - [`agent`]: the agent adapters (Claude Code, any other CLI) and how their
//!   errors are classified (transient, out of credits, failed);
//! - [`pipeline`]: one attempt: clarification check, the phases and their gates,
//!   the review's decision and the revisions, cost and tokens summed over every call.
//!
//! ```
//! use scrum_bins::runner::workflow::Workflow;
//! let w = Workflow::builtin();
//! let names = |follow_up| -> Vec<&str> {
//!     w.phases_for(follow_up).map(|p| p.name.as_str()).collect()
//! };
//! assert_eq!(names(false), ["architect", "security", "tester"]);
//! assert_eq!(names(true), ["fix", "tester"]);
//! assert_eq!(w.review.name, "product-owner");
//! assert_eq!(w.review.max_revisions, Some(3));
//! ```

pub mod agent;
mod outcome;
pub mod pipeline;
pub mod template;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use self::template::{Vars, render};

/// The built-in workflow file (`scrum-worker workflow show` prints it).
pub const DEFAULT_WORKFLOW: &str = include_str!("default.toml");

/// The revisions a review allows when its phase does not say.
pub const DEFAULT_MAX_REVISIONS: u32 = 3;

/// A workflow file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workflow {
    /// Whether the clarification check runs before the first phase
    /// (`SKIP_CLARIFICATION_CHECK=true` turns it off whatever the file says).
    #[serde(default = "yes")]
    pub clarification: bool,
    /// How transient agent errors are retried within a phase.
    #[serde(default)]
    pub retry: RetryPolicy,
    /// The agents phases name, by name.
    pub agents: BTreeMap<String, AgentSpec>,
    /// The clarification check's agent call; it answers
    /// `{"needs_clarification", "questions", "reasoning"}`.
    pub clarification_check: Option<Phase>,
    /// The phases, run in this order on each pass (those whose [`Phase::runs`]
    /// fits the run: [`Workflow::phases_for`]).
    pub phases: Vec<Phase>,
    /// The review after the phases: `DECISION: APPROVE`, `REVISE` or `REJECT`.
    pub review: Phase,
    /// What this workflow's agents may reach beyond the sandbox's defaults.
    #[serde(default)]
    pub sandbox: SandboxAccess,
}

/// A workflow's `[sandbox]`: hosts its agents need (beside the agent's API host and
/// `SANDBOX_ALLOW_HOSTS`) and variables of the worker's environment they get by name.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SandboxAccess {
    /// Hosts: `host`, `host:port` or `*.domain`.
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    /// Variable names passed from the worker's environment.
    #[serde(default)]
    pub env: Vec<String>,
}

fn yes() -> bool {
    true
}

/// How an agent call is retried through transient errors (rate limit, overload,
/// timeout).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Calls at most, the first included.
    pub tries: u32,
    /// The wait after the first transient error; it doubles after each.
    pub initial_delay_ms: u64,
    /// The longest wait.
    pub max_delay_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            tries: 4,
            initial_delay_ms: 30_000,
            max_delay_ms: 300_000,
        }
    }
}

impl RetryPolicy {
    /// The wait before try `n + 1` after `n` transient errors.
    pub fn delay(&self, n: u32) -> Duration {
        let ms = self
            .initial_delay_ms
            .saturating_mul(1 << n.saturating_sub(1).min(20));
        Duration::from_millis(ms.min(self.max_delay_ms))
    }
}

/// An agent and how it is called.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AgentSpec {
    /// Claude Code (`claude -p --output-format json`).
    Claude {
        /// The executable, looked up on `PATH`.
        #[serde(default = "claude")]
        command: String,
        /// Passed as `--max-budget-usd` to each call, when set.
        #[serde(default)]
        max_budget_usd: Option<f64>,
    },
    /// Any other agent CLI: an argv (no shell) whose items may hold
    /// `{{prompt_file}}`, `{{role_file}}` and `{{allowed_tools}}`; the prompt is on
    /// its standard input too.
    Command {
        /// The program and its arguments.
        command: Vec<String>,
    },
}

fn claude() -> String {
    "claude".to_string()
}

/// One agent call of the workflow: a phase, the review, or the clarification check.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// Its name, in logs, failure reasons and the pull request.
    #[serde(default)]
    pub name: String,
    /// Which of the workflow's agents runs it.
    pub agent: String,
    /// The role, appended to the agent's system prompt (a template that may not
    /// use the issue's text: it goes on the agent's command line).
    pub role: String,
    /// The prompt (a template), given on the agent's standard input.
    pub prompt: String,
    /// The tools the agent may use (`--allowedTools`).
    #[serde(default)]
    pub allowed_tools: Vec<String>,
    /// Seconds one call may take before it is killed (and retried as transient).
    pub timeout_secs: u64,
    /// What the phase must leave for the attempt to go on.
    #[serde(default)]
    pub gate: Gate,
    /// For `gate = "commit_or_phrase"`: the phrase that passes without a commit.
    #[serde(default)]
    pub approval_phrase: Option<String>,
    /// Review only: how many REVISE answers send the work back before the attempt
    /// fails (default 3).
    #[serde(default)]
    pub max_revisions: Option<u32>,
    /// Which runs the phase is part of: every run (the default, so a workflow
    /// file written before follow-ups runs all its phases on them too), only
    /// runs that start the work, or only follow-ups of its pull request.
    #[serde(default)]
    pub runs: Runs,
}

/// Which runs a phase is part of.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Runs {
    /// Every run.
    #[default]
    Always,
    /// Runs that start the work: every run but a follow-up.
    FirstRun,
    /// Follow-ups of the pull request (a failed check, a conflict, a request for
    /// changes, an `/agent` comment), which start from the branch as pushed.
    FollowUp,
}

impl Runs {
    /// Whether a phase that `runs` this way is part of a run that is (or is not)
    /// a follow-up.
    pub fn includes(self, follow_up: bool) -> bool {
        match self {
            Runs::Always => true,
            Runs::FirstRun => !follow_up,
            Runs::FollowUp => follow_up,
        }
    }
}

impl Phase {
    /// The longest one call may take.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }
}

/// What a phase must leave.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    /// At least one new commit.
    Commit,
    /// A new commit, or the approval phrase in the agent's answer.
    CommitOrPhrase,
    /// Nothing.
    #[default]
    None,
}

/// The names a prompt template sees. The follow-up's (`follow_up_*`,
/// `conflicted_files`, and their older names `review_feedback`, `reviewer`,
/// `pull_request`) are empty but on a follow-up run.
pub const PROMPT_VARS: [&str; 21] = [
    "issue_title",
    "issue_body",
    "issue_labels",
    "issue_number",
    "repository",
    "branch",
    "base_branch",
    "attempt",
    "max_attempts",
    "phase",
    "revision",
    "max_revisions",
    "feedback",
    "review_feedback",
    "reviewer",
    "pull_request",
    "follow_up_cause",
    "follow_up_feedback",
    "follow_up_author",
    "follow_up_round",
    "conflicted_files",
];

/// The names a role template sees: none of the issue's own text.
pub const ROLE_VARS: [&str; 5] = ["issue_number", "repository", "attempt", "phase", "revision"];

impl Workflow {
    /// The built-in workflow ([`DEFAULT_WORKFLOW`]).
    pub fn builtin() -> Workflow {
        Workflow::parse(DEFAULT_WORKFLOW).expect("the built-in workflow is valid")
    }

    /// Reads and checks a workflow file.
    pub fn from_file(path: &Path) -> Result<Workflow, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Workflow::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses and checks a workflow: every agent named exists, phase names are
    /// unique, gates have what they need, and every template renders.
    pub fn parse(text: &str) -> Result<Workflow, String> {
        let mut w: Workflow = toml::from_str(text).map_err(|e| e.to_string())?;
        if w.review.name.is_empty() {
            w.review.name = "review".into();
        }
        if let Some(c) = &mut w.clarification_check {
            if c.name.is_empty() {
                c.name = "clarification".into();
            }
        }
        w.check()?;
        Ok(w)
    }

    fn check(&self) -> Result<(), String> {
        if self.phases.is_empty() {
            return Err("the workflow has no [[phases]]".into());
        }
        if self.retry.tries == 0 {
            return Err("retry.tries must be at least 1".into());
        }
        let mut names = BTreeSet::new();
        for (n, p) in self.phases.iter().enumerate() {
            if p.name.is_empty() {
                return Err(format!("phase {} has no name", n + 1));
            }
            if !names.insert(p.name.as_str()) {
                return Err(format!("two phases are named {:?}", p.name));
            }
            if p.max_revisions.is_some() {
                return Err(format!(
                    "phase {:?}: max_revisions belongs to [review]",
                    p.name
                ));
            }
        }
        for (follow_up, run, runs) in [
            (false, "a first run", "first_run"),
            (true, "a follow-up", "follow_up"),
        ] {
            if self.phases_for(follow_up).next().is_none() {
                return Err(format!(
                    "no phase runs on {run}: give one runs = \"{runs}\" or \"always\""
                ));
            }
        }
        if self.review.runs != Runs::Always {
            return Err("[review] runs on every run: it takes no runs".into());
        }
        if self.review.gate != Gate::None {
            return Err("[review] has no gate: its decision is its gate".into());
        }
        let checked = self
            .phases
            .iter()
            .chain(std::iter::once(&self.review))
            .chain(self.clarification_check.iter());
        for p in checked {
            let at = |e: String| format!("phase {:?}: {e}", p.name);
            match self.agents.get(&p.agent) {
                None => return Err(at(format!("no [agents.{}]", p.agent))),
                Some(AgentSpec::Command { command }) if command.is_empty() => {
                    return Err(at(format!("[agents.{}] has an empty command", p.agent)));
                }
                Some(_) => {}
            }
            if p.timeout_secs == 0 {
                return Err(at("timeout_secs must be at least 1".into()));
            }
            if p.gate == Gate::CommitOrPhrase
                && p.approval_phrase
                    .as_deref()
                    .is_none_or(|s| s.trim().is_empty())
            {
                return Err(at(
                    "gate \"commit_or_phrase\" needs an approval_phrase".into()
                ));
            }
            render(&p.prompt, &sample(&PROMPT_VARS)).map_err(|e| at(format!("prompt: {e}")))?;
            render(&p.role, &sample(&ROLE_VARS)).map_err(|e| at(format!("role: {e}")))?;
        }
        if self.clarification && self.clarification_check.is_none() {
            return Err("clarification = true needs a [clarification_check]".into());
        }
        Ok(())
    }

    /// The phases of a run that is (or is not) a follow-up, in order.
    pub fn phases_for(&self, follow_up: bool) -> impl Iterator<Item = &Phase> {
        self.phases
            .iter()
            .filter(move |p| p.runs.includes(follow_up))
    }

    /// How many REVISE answers the review allows.
    pub fn max_revisions(&self) -> u32 {
        self.review.max_revisions.unwrap_or(DEFAULT_MAX_REVISIONS)
    }
}

/// Every name in `names` with a placeholder value, to check templates against.
fn sample(names: &[&'static str]) -> Vars {
    names.iter().map(|n| (*n, "x".to_string())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_workflow_declares_the_scrum_team() {
        let w = Workflow::builtin();
        let gates: Vec<(&str, Gate, Runs)> = w
            .phases
            .iter()
            .map(|p| (p.name.as_str(), p.gate, p.runs))
            .collect();
        assert_eq!(
            gates,
            [
                ("architect", Gate::Commit, Runs::FirstRun),
                ("fix", Gate::Commit, Runs::FollowUp),
                ("security", Gate::CommitOrPhrase, Runs::FirstRun),
                ("tester", Gate::None, Runs::Always)
            ]
        );
        assert_eq!(w.phases[0].role, w.phases[1].role, "the architect fixes");
        for var in [
            "{{follow_up_cause}}",
            "{{follow_up_feedback}}",
            "{{conflicted_files}}",
        ] {
            assert!(w.phases[1].prompt.contains(var), "{var}");
        }
        assert_eq!(
            w.phases[2].approval_phrase.as_deref(),
            Some("no security issues")
        );
        assert_eq!(w.max_revisions(), 3);
        assert!(w.clarification);
        assert!(matches!(w.agents["claude"], AgentSpec::Claude { .. }));
        assert!(w.phases[0].allowed_tools.iter().any(|t| t == "Edit"));
    }

    #[test]
    fn a_workflow_file_without_runs_runs_every_phase_on_follow_ups_too() {
        let mut text = DEFAULT_WORKFLOW.to_string();
        for runs in ["runs = \"first_run\"\n", "runs = \"always\"\n"] {
            text = text.replace(runs, "");
        }
        let start = text.find("[[phases]]\nname = \"fix\"").unwrap();
        let end = start + text[start..].find("\n[[phases]]").unwrap();
        text.replace_range(start..end, "");
        let w = Workflow::parse(&text).unwrap();
        let names: Vec<&str> = w.phases_for(true).map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["architect", "security", "tester"]);
        assert!(w.phases.iter().all(|p| p.runs == Runs::Always));
    }

    #[test]
    fn every_kind_of_run_needs_a_phase() {
        let only_first = DEFAULT_WORKFLOW
            .replace("runs = \"follow_up\"", "runs = \"first_run\"")
            .replace("runs = \"always\"", "runs = \"first_run\"");
        let e = Workflow::parse(&only_first).unwrap_err();
        assert!(e.contains("no phase runs on a follow-up"), "{e}");
        let on_review = DEFAULT_WORKFLOW.replace(
            "name = \"product-owner\"",
            "name = \"product-owner\"\nruns = \"follow_up\"",
        );
        let e = Workflow::parse(&on_review).unwrap_err();
        assert!(e.contains("[review] runs on every run"), "{e}");
    }

    #[test]
    fn transient_errors_wait_longer_each_time_up_to_the_cap() {
        let r = RetryPolicy {
            tries: 5,
            initial_delay_ms: 100,
            max_delay_ms: 350,
        };
        let waits: Vec<u64> = (1..=4).map(|n| r.delay(n).as_millis() as u64).collect();
        assert_eq!(waits, [100, 200, 350, 350]);
    }

    #[test]
    fn mistakes_in_a_workflow_file_are_named() {
        let bad = |from: &str, to: &str| {
            let text = DEFAULT_WORKFLOW.replacen(from, to, 1);
            assert_ne!(text, DEFAULT_WORKFLOW, "{from:?} is in the default");
            Workflow::parse(&text).unwrap_err()
        };
        assert!(
            bad(
                "agent = \"claude\"\ngate = \"commit\"",
                "agent = \"gpt\"\ngate = \"commit\""
            )
            .contains("no [agents.gpt]")
        );
        assert!(bad("{{issue_title}}", "{{issue_tittle}}").contains("unknown placeholder"));
        assert!(
            bad("You are the Architect", "You are {{issue_body}}")
                .contains("role: unknown placeholder")
        );
        assert!(bad("approval_phrase = \"no security issues\"\n", "").contains("approval_phrase"));
        assert!(bad("gate = \"none\"", "gate = \"sometimes\"").contains("unknown variant"));
        assert!(bad("timeout_secs = 1800", "timeout = 1800").contains("unknown field"));
    }
}

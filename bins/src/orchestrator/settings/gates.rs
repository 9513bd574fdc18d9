//! The settings of the gates that hold work back: whose text reaches an agent
//! (trust), how many pull requests may await review (review gating), and what
//! sends a pull request back to an agent (follow-ups).

use std::collections::BTreeSet;

use clap::Args;
use scrum_core::engine::TrustMode;
use scrum_core::follow_up::{FollowUpCause, FollowUpSettings};
use scrum_core::pull_gate::ReviewSettings;

/// Whose text reaches an agent.
#[derive(Debug, Args)]
#[command(next_help_heading = "Trust")]
pub struct TrustArgs {
    /// Whose text reaches an agent. `labeler`: only issues whose ready label was
    /// applied by someone with write, maintain or admin permission (or a GitHub
    /// App) are queued, with their text as it was then; a later edit by anyone else
    /// holds the task until a maintainer applies the label again. `author`: as
    /// labeler, and only issues opened by such a person. `off`: every ready issue,
    /// with its latest text (for private repositories whose every member is trusted).
    #[arg(long, env = "TRUST_MODE", value_name = "TRUST_MODE", default_value = "labeler", value_parser = parse_trust_mode)]
    pub trust_mode: TrustMode,
}

fn parse_trust_mode(s: &str) -> Result<TrustMode, String> {
    s.parse().map_err(|e: scrum_core::Error| e.to_string())
}

impl TrustArgs {
    /// Says at start which mode is in force (`off` as a warning).
    pub fn log(&self) {
        match self.trust_mode {
            TrustMode::Off => {
                tracing::warn!(trust_mode = %self.trust_mode, "trust checks are off: every ready issue is queued and workers get its latest text, whoever wrote it")
            }
            mode => {
                tracing::info!(trust_mode = %mode, "only text approved by people with write access reaches an agent")
            }
        }
    }
}

/// Review gating: how many workers' pull requests may await review.
#[derive(Debug, Args)]
#[command(next_help_heading = "Review gating")]
pub struct ReviewArgs {
    /// While this many pull requests opened by workers in one repository await
    /// review (open, not merged or closed), that repository's issues are not handed
    /// out and /work/next answers `blocked` with a reason. 0 turns the limit off.
    #[arg(
        long,
        env = "MAX_PENDING_PRS",
        value_name = "MAX_PENDING_PRS",
        default_value_t = 5
    )]
    pub max_pending_prs: usize,
    /// Across every repository: while this many pull requests await review in all,
    /// no issue is handed out. Unset: no such limit.
    #[arg(
        long,
        env = "MAX_PENDING_PRS_TOTAL",
        value_name = "MAX_PENDING_PRS_TOTAL"
    )]
    pub max_pending_prs_total: Option<usize>,
    /// A pull request with changes requested holds its repository's issues until it
    /// is approved, merged or closed.
    #[arg(long, env = "BLOCK_ON_CHANGES_REQUESTED", value_name = "BLOCK_ON_CHANGES_REQUESTED", default_value = "true", action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub block_on_changes_requested: bool,
    /// The same as adding `changes-requested` to FOLLOW_UP_ON: a request for
    /// changes on a worker's pull request, by a reviewer with write access (or
    /// anyone, with TRUST_MODE=off), queues a follow-up run with the review's text.
    #[arg(long, env = "REWORK_ON_CHANGES_REQUESTED", value_name = "REWORK_ON_CHANGES_REQUESTED", default_value = "false", action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub rework_on_changes_requested: bool,
}

impl ReviewArgs {
    /// The engine's review settings.
    pub fn settings(&self) -> ReviewSettings {
        ReviewSettings {
            max_pending: self.max_pending_prs,
            max_pending_total: self.max_pending_prs_total,
            block_on_changes_requested: self.block_on_changes_requested,
            rework_on_changes_requested: self.rework_on_changes_requested,
        }
    }
}

/// Follow-ups: what sends a worker's pull request back to an agent until it can
/// merge.
#[derive(Debug, Args)]
#[command(next_help_heading = "Follow-ups")]
pub struct FollowUpArgs {
    /// What on a worker's pull request queues a follow-up run (a new run of the
    /// issue on the same branch, with the feedback): `checks` (a check the base
    /// branch requires failed, with its annotations and log tail), `conflicts` (the
    /// branch cannot merge: the worker merges the base branch, the agent resolves
    /// the conflicts), `comments` (a collaborator's comment starting with `/agent`),
    /// `changes-requested` (a collaborator's review requesting changes). A comma
    /// list, or `none`.
    #[arg(
        long,
        env = "FOLLOW_UP_ON",
        value_name = "FOLLOW_UP_ON",
        default_value = "checks,conflicts,comments",
        value_parser = parse_follow_up_on
    )]
    pub follow_up_on: BTreeSet<FollowUpCause>,
    /// The most follow-up runs per pull request. Past it, one comment says what is
    /// still wrong, a notification goes out, and the pull request is left for people.
    #[arg(
        long,
        env = "FOLLOW_UP_ROUNDS",
        value_name = "FOLLOW_UP_ROUNDS",
        default_value_t = 3
    )]
    pub follow_up_rounds: u32,
    /// The checks that count, by name (a comma list). Unset: the base branch's
    /// required checks where the token can read branch protection, else every check.
    #[arg(
        long,
        env = "FOLLOW_UP_CHECKS",
        value_name = "FOLLOW_UP_CHECKS",
        default_value = ""
    )]
    pub follow_up_checks: String,
    /// The label a worker's issue carries while a follow-up run works on its pull
    /// request.
    #[arg(
        long,
        env = "FOLLOW_UP_LABEL",
        value_name = "FOLLOW_UP_LABEL",
        default_value = "ai-fixing"
    )]
    pub follow_up_label: String,
}

fn parse_follow_up_on(s: &str) -> Result<BTreeSet<FollowUpCause>, String> {
    FollowUpSettings::parse_on(s).map_err(|e| e.to_string())
}

impl FollowUpArgs {
    /// The engine's follow-up settings; `REWORK_ON_CHANGES_REQUESTED` (`review`)
    /// adds changes requested.
    pub fn settings(&self, review: &ReviewArgs) -> FollowUpSettings {
        let mut on = self.follow_up_on.clone();
        if review.rework_on_changes_requested {
            on.insert(FollowUpCause::ChangesRequested);
        }
        FollowUpSettings {
            on,
            checks: self
                .follow_up_checks
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect(),
        }
    }
}

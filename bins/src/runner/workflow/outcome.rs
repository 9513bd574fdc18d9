//! How an attempt of the workflow ends: the review's decision, the verdict, and the
//! report of every phase call (the pull request's summary); and how the review's
//! and the clarification check's answers are read.

use serde::Deserialize;

use super::agent::{Spend, cap};

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

/// The clarification check's answer.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Clarification {
    pub(super) needs_clarification: bool,
    pub(super) questions: Vec<String>,
    pub(super) reasoning: String,
}

/// The reviewer's reason: its answer without the decision line, capped.
pub(super) fn reason_of(answer: &str) -> String {
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
pub(super) fn parse_clarification(answer: &str) -> Clarification {
    let start = answer.find('{');
    let end = answer.rfind('}');
    match (start, end) {
        (Some(s), Some(e)) if s < e => serde_json::from_str(&answer[s..=e]).unwrap_or_default(),
        _ => Clarification::default(),
    }
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

//! The "Rounds" section of a pull request's body: one line per round (the run
//! that opened it, then each follow-up: run, cause, outcome), so a reviewer sees
//! why the branch changed since they last looked. A follow-up rewrites the
//! section after its push and keeps the rest of the body as it was.

use scrum_core::follow_up::{FollowUp, Round, rounds_list};

/// Where the section starts and ends: hidden in the rendered body, and how the
/// next round finds the section to replace.
const START: &str = "<!-- scrum:rounds -->";
const END: &str = "<!-- /scrum:rounds -->";

/// The run a follow-up is: the one after the last round before it (the state
/// machine numbers a follow-up's run so).
fn current_run(follow_up: &FollowUp) -> u32 {
    follow_up
        .history
        .last()
        .map_or(follow_up.round + 1, |r| r.run + 1)
}

/// Every round of the pull request, this follow-up's with `outcome`.
pub(super) fn rounds(follow_up: &FollowUp, outcome: &str) -> Vec<Round> {
    follow_up.rounds(current_run(follow_up), outcome)
}

/// `body` with its Rounds section replaced by `rounds` (or, the first time,
/// added at its end); the rest of the body unchanged.
pub(super) fn with_rounds(body: &str, rounds: &[Round]) -> String {
    let section = format!("{START}\n### Rounds\n\n{}{END}", rounds_list(rounds));
    if let Some(start) = body.find(START) {
        if let Some(len) = body[start..].find(END) {
            let end = start + len + END.len();
            return format!("{}{section}{}", &body[..start], &body[end..]);
        }
    }
    let kept = body.trim_end();
    if kept.is_empty() {
        section
    } else {
        format!("{kept}\n\n{section}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scrum_core::Timestamp;
    use scrum_core::follow_up::FollowUpCause;

    fn round(run: u32, cause: Option<FollowUpCause>) -> Round {
        Round {
            run,
            cause,
            outcome: "completed".into(),
            answers: String::new(),
            at: Timestamp(0),
        }
    }

    #[test]
    fn the_section_is_added_once_then_replaced_and_the_body_kept() {
        let body = "Automated change for #3.\n\nCloses #3";
        let first = with_rounds(
            body,
            &[round(1, None), round(2, Some(FollowUpCause::Checks))],
        );
        assert!(
            first.starts_with("Automated change for #3.\n\nCloses #3\n\n"),
            "{first}"
        );
        assert!(
            first.contains("- run 2 (a check failed): completed\n"),
            "{first}"
        );
        let edited = first.replace("Automated change", "Hand-edited change");
        let second = with_rounds(
            &edited,
            &[
                round(1, None),
                round(2, Some(FollowUpCause::Checks)),
                round(3, Some(FollowUpCause::Conflicts)),
            ],
        );
        assert_eq!(second.matches("### Rounds").count(), 1, "{second}");
        assert!(second.starts_with("Hand-edited change for #3."), "{second}");
        assert!(
            second.contains("- run 3 (a conflict with the base branch): completed"),
            "{second}"
        );
        assert!(second.contains("- run 1 (opened the pull request): completed"));
    }

    #[test]
    fn a_follow_ups_run_comes_after_the_last_round() {
        let mut f = FollowUp::new(
            FollowUpCause::Comments,
            "u",
            "comment:1".into(),
            "bob",
            "add a test",
            2,
            Timestamp(1),
        );
        f.history = vec![round(1, None), round(4, Some(FollowUpCause::Checks))];
        assert_eq!(current_run(&f), 5);
        let all = rounds(&f, "completed");
        assert_eq!(
            all.last().unwrap().describe(),
            "run 5 (a review comment): completed"
        );
    }
}

//! The two stand-ins a fleet's workers run: the scripted workflow command and a fake
//! `claude`. Both read markers in the issue title (see [`FAKE_CLAUDE`]).

/// The scripted workflow every worker of a fleet runs.
///
/// With `RUN_LOG` set, each run appends `start N <ns>` and `end N <ns>` lines
/// (issue number, nanosecond clock) to that file around `RUN_HOLD_SECS` (default
/// 0.3) of simulated work, so a test can tell which runs overlapped in time.
pub const WORKFLOW: &str = r#"#!/bin/sh
set -e
if [ -n "$RUN_LOG" ]; then
  echo "start $ISSUE_NUMBER $(date +%s%N)" >> "$RUN_LOG"
  sleep "${RUN_HOLD_SECS:-0.3}"
fi
case "$ISSUE_TITLE" in
  *"[always-fails]"*) echo "the tests fail in $PWD/tests"; exit 1 ;;
  *"[fails-once]"*) if [ "$ATTEMPT" = 1 ]; then echo "flaky: attempt 1 fails"; exit 1; fi ;;
  *"[slow]"*) if [ "$ATTEMPT" = 1 ]; then sleep "${SLOW_SECS:-20}"; fi ;;
esac
mkdir -p changes
printf 'Issue #%s: %s (attempt %s)\n' "$ISSUE_NUMBER" "$ISSUE_TITLE" "$ATTEMPT" > "changes/issue-$ISSUE_NUMBER.md"
git add changes
git commit -q -m "Resolve #$ISSUE_NUMBER"
[ -z "$RUN_LOG" ] || echo "end $ISSUE_NUMBER $(date +%s%N)" >> "$RUN_LOG"
"#;

/// A stand-in for `claude -p --output-format json`: it tells the role from the
/// appended system prompt, reads the prompt on standard input, and answers with
/// Claude Code's JSON result (cost $0.25 for the architect, $0.10 for the others;
/// 1000 input, 200 output, 300 cache tokens each). The architect commits
/// `changes/issue-N.md` (saying "architect pass N", or "follow-up R's fix" in the
/// fix phase of follow-up round R), the tester `tests/issue-N.md`; security says "no security
/// issues"; the product owner approves. Markers in the issue title change that:
///
/// - `[fails-once]`, `[always-fails]`, `[slow]`: as the scripted workflow (by the
///   `ATTEMPT` the runner sets), in the architect's call;
/// - `[lazy-architect]`: the architect commits nothing;
/// - `[revise-twice]`: the product owner answers REVISE twice, then APPROVE;
/// - `[revise-forever]`: it always answers REVISE;
/// - `[rate-limited]`: the first architect call fails with a rate limit (reported
///   as `subtype: success` with `is_error: true`, as Claude Code does);
/// - `[no-credits]`: the first call fails for a credit balance too low;
/// - `[vague]`: the first clarification check asks two questions.
///
/// `claude --version` answers with a version and records nothing.
///
/// Each call's prompt and arguments are kept in `$FAKE_CLAUDE_STATE/<owner>_<repo>_issue-N/`
/// as `<role>-<n>.prompt` and `.args` (and `leaked` if a GitHub or orchestrator
/// token reached it); in a sandbox, which passes no `FAKE_CLAUDE_STATE`, under its
/// private `$HOME`.
pub const FAKE_CLAUDE: &str = r#"#!/bin/sh
# As Claude Code does: `claude --version` prints the version (`scrum-worker doctor` runs it).
if [ "$1" = "--version" ]; then echo "2.1.197 (Claude Code; the demo's stand-in)"; exit 0; fi
role=unknown
for a in "$@"; do
  case "$a" in
    *"checking whether an issue can be implemented"*) role=clarify ;;
    *"You are the Architect"*) role=architect ;;
    *"You are the Security"*) role=security ;;
    *"You are the Tester"*) role=tester ;;
    *"You are the Product Owner"*) role=po ;;
  esac
done
here=$(pwd)
issue=$(basename "$(dirname "$here")")
repo=$(basename "$(dirname "$(dirname "$here")")")
owner=$(basename "$(dirname "$(dirname "$(dirname "$here")")")")
state="${FAKE_CLAUDE_STATE:-$HOME/.fake-claude}/${owner}_${repo}_${issue}"
mkdir -p "$state"
n=$(( $(cat "$state/$role.count" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$state/$role.count"
all=$(( $(cat "$state/calls.count" 2>/dev/null || echo 0) + 1 ))
echo "$all" > "$state/calls.count"
cat > "$state/$role-$n.prompt"
printf '%s\n' "$@" > "$state/$role-$n.args"
if [ -n "$GITHUB_TOKEN$GH_TOKEN$GITLAB_TOKEN$ORCHESTRATOR_API_TOKEN" ]; then echo "$role" >> "$state/leaked"; fi
title="$ISSUE_TITLE"
number=${issue#issue-}
answer() { # cost, subtype, is_error, result (JSON-escaped)
  printf '{"type":"result","subtype":"%s","is_error":%s,"duration_ms":1200,"duration_api_ms":1000,"num_turns":3,"result":"%s","session_id":"fake-%s-%s","total_cost_usd":%s,"usage":{"input_tokens":1000,"cache_creation_input_tokens":100,"cache_read_input_tokens":200,"output_tokens":200}}\n' "$2" "$3" "$4" "$role" "$n" "$1"
}
case "$title" in
  *"[no-credits]"*) if [ "$all" = 1 ]; then answer 0 success true "Credit balance is too low"; exit 1; fi ;;
esac
case "$role" in
  clarify)
    case "$title" in
      *"[vague]"*) if [ "$n" = 1 ]; then answer 0.02 success false '{\"needs_clarification\": true, \"questions\": [\"Which page should change?\", \"What should it look like?\"], \"reasoning\": \"The issue names no page.\"}'; else answer 0.02 success false '{\"needs_clarification\": false, \"questions\": [], \"reasoning\": \"Answered.\"}'; fi ;;
      *) answer 0.02 success false '{\"needs_clarification\": false, \"questions\": [], \"reasoning\": \"Clear enough.\"}' ;;
    esac ;;
  architect)
    case "$title" in
      *"[rate-limited]"*) if [ "$n" = 1 ]; then answer 0 success true "API Error: 429 rate_limit_error: Number of request tokens has exceeded your per-minute rate limit"; exit 1; fi ;;
      *"[always-fails]"*) answer 0.05 error_during_execution true "the tests fail in $here/tests"; exit 1 ;;
      *"[fails-once]"*) if [ "$ATTEMPT" = 1 ]; then answer 0.05 error_during_execution true "flaky: attempt 1 fails"; exit 1; fi ;;
      *"[slow]"*) if [ "$ATTEMPT" = 1 ]; then sleep "${SLOW_SECS:-20}"; fi ;;
    esac
    case "$title" in
      *"[lazy-architect]"*) answer 0.25 success false "I looked around and changed nothing."; exit 0 ;;
    esac
    mkdir -p changes
    # A follow-up's fix phase rewrites the file whatever the pass count says (in a
    # sandbox the count starts again with each run's private home).
    round=$(sed -n 's/.*follow-up round \([0-9]*\).*/\1/p' "$state/$role-$n.prompt" | head -n 1)
    if [ -n "$round" ]; then pass="follow-up $round's fix"; else pass="architect pass $n"; fi
    printf 'Issue #%s: %s (%s)\n' "$number" "$title" "$pass" > "changes/issue-$number.md"
    git add changes && git commit -q -m "Implement #$number ($pass)"
    answer 0.25 success false "Implemented the change in changes/issue-$number.md." ;;
  security) answer 0.10 success false "Reviewed the diff: no security issues." ;;
  tester)
    mkdir -p tests
    printf 'Tests for #%s (pass %s)\n' "$number" "$n" > "tests/issue-$number.md"
    git add tests && git commit -q -m "Test #$number (pass $n)"
    answer 0.10 success false "Added tests/issue-$number.md; all tests pass." ;;
  po)
    case "$title" in
      *"[revise-forever]"*) answer 0.10 success false 'The change misses the edge cases.\nDECISION: REVISE' ;;
      *"[revise-twice]"*) if [ "$n" -le 2 ]; then answer 0.10 success false "Please handle empty input (review $n).\\nDECISION: REVISE"; else answer 0.10 success false 'Good now.\nDECISION: APPROVE'; fi ;;
      *) answer 0.10 success false 'Looks right.\nDECISION: APPROVE' ;;
    esac ;;
  *) echo "fake claude: unknown role" >&2; exit 2 ;;
esac
"#;

//! Agent adapters: one call of an agent CLI in the task's clone, its prompt on
//! standard input (never on a command line), its answer, cost and tokens read back,
//! and its errors classified.
//!
//! Claude Code is called as `claude -p --output-format json --append-system-prompt
//! ROLE --allowedTools TOOLS [--max-budget-usd N]` and prints one JSON object:
//! `type: "result"`, `subtype` (`success`, `error_max_turns`, …), `is_error`,
//! `result`, `total_cost_usd`, `usage` (input, output and cache tokens),
//! `num_turns`, `duration_ms`, `session_id`. A failed API call can come back as
//! `subtype: "success"` with `is_error: true`: both are checked.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

pub use scrum_core::Spend;

use super::AgentSpec;
use super::template::{Vars, render};
use crate::runner::command::{Exit, supervise};
use crate::runner::sandbox::{Cell, Sandbox};

/// What one agent call is asked to do.
#[derive(Debug)]
pub struct Call<'a> {
    /// The role (the appended system prompt).
    pub role: &'a str,
    /// The prompt, given on standard input.
    pub prompt: &'a str,
    /// The tools it may use.
    pub allowed_tools: &'a [String],
    /// The longest it may take.
    pub timeout: Duration,
    /// The sandbox it runs in.
    pub sandbox: &'a Sandbox,
    /// Where it runs: the task's clone, its private home and temp, its variables.
    pub cell: Cell<'a>,
    /// Where the prompt, role and output files go (outside the clone, inside the
    /// private home).
    pub scratch: &'a Path,
    /// The attempt's log, which gets the agent's standard error.
    pub log: &'a Path,
}

/// What an agent answered.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reply {
    /// Its final answer (`result`).
    pub text: String,
    /// Turns it took, when known.
    pub num_turns: Option<u64>,
    /// How long it ran, in milliseconds, when known.
    pub duration_ms: Option<u64>,
    /// Its session, when known.
    pub session_id: Option<String>,
}

/// Why an agent call did not answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentError {
    /// Worth trying again soon: a rate limit, an overloaded API, a timeout.
    Transient(String),
    /// The account has no credits left: no retry helps until someone pays.
    OutOfCredits(String),
    /// It failed otherwise.
    Failed(String),
    /// The run was cancelled.
    Cancelled,
}

impl AgentError {
    /// What happened, for a log or a failure reason.
    pub fn message(&self) -> &str {
        match self {
            AgentError::Transient(m) | AgentError::OutOfCredits(m) | AgentError::Failed(m) => m,
            AgentError::Cancelled => "cancelled",
        }
    }
}

/// One call's outcome: what it cost (also when it failed) and its answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// What the call cost.
    pub spend: Spend,
    /// Its answer or why there is none.
    pub result: Result<Reply, AgentError>,
}

/// Classifies an agent's error text: out of credits, transient, or failed.
pub fn classify(text: &str) -> AgentError {
    let t = text.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| t.contains(w));
    let short = cap(text.trim(), 500);
    if has(&[
        "credit balance is too low",
        "out of credits",
        "insufficient credit",
        "insufficient_quota",
        "billing",
    ]) {
        AgentError::OutOfCredits(short)
    } else if has(&[
        "rate limit",
        "rate_limit",
        "429",
        "overloaded",
        "529",
        "503",
        "502",
        "timed out",
        "timeout",
        "econnreset",
        "connection reset",
        "try again",
    ]) {
        AgentError::Transient(short)
    } else {
        AgentError::Failed(short)
    }
}

/// `text` cut to at most `max` characters, with an ellipsis when cut.
pub fn cap(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// Runs one call of `agent`.
pub async fn call(agent: &AgentSpec, call: &Call<'_>, cancel: &CancellationToken) -> Outcome {
    match run(agent, call, cancel).await {
        Ok(outcome) => outcome,
        Err(e) => Outcome {
            spend: Spend::default(),
            result: Err(AgentError::Failed(e)),
        },
    }
}

async fn run(
    agent: &AgentSpec,
    c: &Call<'_>,
    cancel: &CancellationToken,
) -> Result<Outcome, String> {
    std::fs::create_dir_all(c.scratch)
        .map_err(|e| format!("cannot create {}: {e}", c.scratch.display()))?;
    let prompt_file = c.scratch.join("prompt.md");
    let role_file = c.scratch.join("role.md");
    let out_file = c.scratch.join("output");
    let err_file = c.scratch.join("stderr");
    for (path, text) in [(&prompt_file, c.prompt), (&role_file, c.role)] {
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let argv = match agent {
        AgentSpec::Claude {
            command,
            max_budget_usd,
        } => {
            let mut argv: Vec<String> = [
                command.as_str(),
                "-p",
                "--output-format",
                "json",
                "--append-system-prompt",
                c.role,
            ]
            .map(String::from)
            .into();
            if !c.allowed_tools.is_empty() {
                argv.extend(["--allowedTools".into(), c.allowed_tools.join(",")]);
            }
            if let Some(budget) = max_budget_usd {
                argv.extend(["--max-budget-usd".into(), budget.to_string()]);
            }
            argv
        }
        AgentSpec::Command { command } => {
            let vars: Vars = [
                ("prompt_file", path_string(&prompt_file)),
                ("role_file", path_string(&role_file)),
                ("allowed_tools", c.allowed_tools.join(",")),
            ]
            .into_iter()
            .collect();
            command
                .iter()
                .map(|a| render(a, &vars))
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    let mut cmd = c.sandbox.command(&argv, &c.cell).await?;
    let file = |p: &PathBuf, create: bool| {
        let f = if create {
            std::fs::File::create(p)
        } else {
            std::fs::File::open(p)
        };
        f.map_err(|e| format!("cannot open {}: {e}", p.display()))
    };
    cmd.stdin(Stdio::from(file(&prompt_file, false)?))
        .stdout(Stdio::from(file(&out_file, true)?))
        .stderr(Stdio::from(file(&err_file, true)?));
    let exit = supervise(cmd, "the agent", c.timeout, cancel)
        .await
        .map_err(|e| format!("{e}"))?;
    let stdout = std::fs::read_to_string(&out_file).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_file).unwrap_or_default();
    append(c.log, &stderr);
    let code = match exit {
        Exit::Cancelled => return Ok(failed(Spend::default(), AgentError::Cancelled)),
        Exit::TimedOut => {
            return Ok(failed(
                Spend::default(),
                AgentError::Transient(format!("the agent timed out after {:?}", c.timeout)),
            ));
        }
        Exit::Signalled => {
            return Ok(failed(
                Spend::default(),
                AgentError::Failed("the agent was killed by a signal".into()),
            ));
        }
        Exit::Code(code) => code,
    };
    Ok(match agent {
        AgentSpec::Claude { .. } => read_claude(&stdout, &stderr, code),
        AgentSpec::Command { .. } => read_command(&stdout, &stderr, code),
    })
}

fn failed(spend: Spend, e: AgentError) -> Outcome {
    Outcome {
        spend,
        result: Err(e),
    }
}

/// Claude Code's `--output-format json` result.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ClaudeResult {
    #[serde(rename = "type")]
    kind: String,
    subtype: String,
    is_error: bool,
    result: Option<String>,
    total_cost_usd: Option<f64>,
    usage: Option<Usage>,
    num_turns: Option<u64>,
    duration_ms: Option<u64>,
    session_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Usage {
    input_tokens: u64,
    output_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
}

/// Reads Claude Code's answer from its output and exit code.
fn read_claude(stdout: &str, stderr: &str, code: i32) -> Outcome {
    // One object; with `stream-json` (or chatter before it) the last result line.
    let parsed = serde_json::from_str::<ClaudeResult>(stdout.trim())
        .ok()
        .or_else(|| {
            stdout
                .lines()
                .rev()
                .filter_map(|l| serde_json::from_str::<ClaudeResult>(l.trim()).ok())
                .find(|r| r.kind == "result")
        });
    let Some(r) = parsed else {
        let text = format!("{} {}", tail(stdout), tail(stderr));
        return failed(
            Spend::default(),
            match classify(&text) {
                AgentError::Failed(_) => AgentError::Failed(format!(
                    "the agent exited with {code} without a JSON result: {}",
                    cap(text.trim(), 300)
                )),
                other => other,
            },
        );
    };
    let spend = Spend {
        cost_usd: r.total_cost_usd,
        tokens: r.usage.as_ref().map(|u| {
            u.input_tokens
                + u.output_tokens
                + u.cache_creation_input_tokens
                + u.cache_read_input_tokens
        }),
    };
    let text = r.result.clone().unwrap_or_default();
    if r.is_error || r.subtype != "success" || code != 0 {
        let what = format!("{} ({}, exit {code}) {}", text, r.subtype, tail(stderr));
        return failed(spend, classify(&what));
    }
    Outcome {
        spend,
        result: Ok(Reply {
            text,
            num_turns: r.num_turns,
            duration_ms: r.duration_ms,
            session_id: r.session_id,
        }),
    }
}

/// Reads another CLI's answer: its whole output, and its cost from a JSON line
/// carrying `total_cost_usd` or `cost_usd` (and `tokens`), when it prints one.
fn read_command(stdout: &str, stderr: &str, code: i32) -> Outcome {
    let mut spend = Spend::default();
    for line in stdout.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line.trim()) else {
            continue;
        };
        let cost = v.get("total_cost_usd").or_else(|| v.get("cost_usd"));
        if let Some(c) = cost.and_then(serde_json::Value::as_f64) {
            spend.cost_usd = Some(c);
        }
        if let Some(t) = v.get("tokens").and_then(serde_json::Value::as_u64) {
            spend.tokens = Some(t);
        }
    }
    if code != 0 {
        let text = format!("exit {code}: {} {}", tail(stdout), tail(stderr));
        return failed(spend, classify(&text));
    }
    Outcome {
        spend,
        result: Ok(Reply {
            text: stdout.trim().to_string(),
            ..Reply::default()
        }),
    }
}

/// The last lines of an output, for an error.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.trim().lines().collect();
    lines[lines.len().saturating_sub(5)..].join("\n")
}

fn path_string(p: &Path) -> String {
    p.display().to_string()
}

/// Appends `text` to the log (best effort: a log that cannot be written does not
/// fail the run).
pub(crate) fn append(log: &Path, text: &str) {
    use std::io::Write;
    if text.is_empty() {
        return;
    }
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        let _ = f.write_all(text.as_bytes());
        if !text.ends_with('\n') {
            let _ = f.write_all(b"\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"{"type":"result","subtype":"success","is_error":false,"duration_ms":2100,"num_turns":4,"result":"Done.","session_id":"s-1","total_cost_usd":0.25,"usage":{"input_tokens":1000,"cache_creation_input_tokens":200,"cache_read_input_tokens":300,"output_tokens":500}}"#;

    #[test]
    fn a_claude_result_gives_the_answer_cost_and_tokens() {
        let o = read_claude(OK, "", 0);
        assert_eq!(
            o.spend,
            Spend {
                cost_usd: Some(0.25),
                tokens: Some(2000)
            }
        );
        let r = o.result.unwrap();
        assert_eq!(
            (r.text.as_str(), r.num_turns, r.duration_ms),
            ("Done.", Some(4), Some(2100))
        );
        assert_eq!(r.session_id.as_deref(), Some("s-1"));
    }

    #[test]
    fn an_api_error_reported_as_success_is_an_error() {
        let rate = r#"{"type":"result","subtype":"success","is_error":true,"result":"API Error: 429 rate_limit_error","total_cost_usd":0.01}"#;
        let o = read_claude(rate, "", 1);
        assert!(matches!(o.result, Err(AgentError::Transient(_))), "{o:?}");
        assert_eq!(
            o.spend.cost_usd,
            Some(0.01),
            "a failed call's cost still counts"
        );
        let broke = r#"{"type":"result","subtype":"success","is_error":true,"result":"Credit balance is too low"}"#;
        assert!(matches!(
            read_claude(broke, "", 1).result,
            Err(AgentError::OutOfCredits(_))
        ));
        let turns = r#"{"type":"result","subtype":"error_max_turns","is_error":false,"result":""}"#;
        assert!(matches!(
            read_claude(turns, "", 0).result,
            Err(AgentError::Failed(_))
        ));
        let none = read_claude("", "Error: Overloaded", 1);
        assert!(
            matches!(none.result, Err(AgentError::Transient(_))),
            "{none:?}"
        );
        assert!(
            matches!(read_claude("oops", "", 2).result, Err(AgentError::Failed(m)) if m.contains("without a JSON result"))
        );
    }

    #[test]
    fn another_cli_reports_cost_on_a_json_line() {
        let o = read_command(
            "working\n{\"cost_usd\": 0.5, \"tokens\": 1200}\nDone\n",
            "",
            0,
        );
        assert_eq!(
            o.spend,
            Spend {
                cost_usd: Some(0.5),
                tokens: Some(1200)
            }
        );
        assert!(o.result.unwrap().text.ends_with("Done"));
        assert!(matches!(
            read_command("", "429 Too Many Requests", 1).result,
            Err(AgentError::Transient(_))
        ));
    }
}

//! What the agent sandbox costs per call: `--rounds N` runs of `true` in a scratch
//! clone, bare (`SANDBOX=none`) and in each sandbox installed here (bubblewrap with
//! the worker's proxy bridge, sandbox-runtime), started the way the worker starts an
//! agent. Prints each one's median and 90th percentile, and the median cost over the
//! bare run: what every agent call pays on top of the agent's own start.
//!
//! `--command "claude --version"` times another command instead (split on spaces),
//! to see an agent start in each sandbox; `--allow HOST` lets it reach a host (an
//! API stand-in named by `ANTHROPIC_BASE_URL`, whose key `ANTHROPIC_API_KEY` it
//! gets), and its output is shown.
//!
//! ```sh
//! cargo run -p scrum-bins --example sandbox_overhead -- --rounds 20
//! ```

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use scrum_bins::runner::sandbox::{Cell, Limits, Sandbox, SandboxMode, SandboxSettings, find};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .map_or(Ok(20), |n| n.parse())?;
    let argv: Vec<String> = args
        .iter()
        .position(|a| a == "--command")
        .and_then(|i| args.get(i + 1))
        .map_or_else(
            || vec!["true".to_string()],
            |c| c.split_whitespace().map(String::from).collect(),
        );
    let allow = args
        .iter()
        .position(|a| a == "--allow")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let shown = args.iter().any(|a| a == "--command");
    let dir = tempfile::tempdir()?;
    let workspace = dir.path().join("workspace");
    let clone = workspace.join("tasks/acme/app/issue-1/repo");
    std::fs::create_dir_all(&clone)?;
    let task = clone.parent().unwrap_or(&clone).to_path_buf();
    let mut env = vec![("ISSUE_NUMBER".to_string(), "1".to_string())];
    env.extend(std::env::var("ANTHROPIC_API_KEY").map(|k| ("ANTHROPIC_API_KEY".to_string(), k)));
    let (home, tmp, state) = (task.join("home"), task.join("tmp"), task.join("sandbox"));
    let cell = Cell {
        dir: &clone,
        home: &home,
        tmp: &tmp,
        env: &env,
        state: &state,
    };
    let mut modes = vec![SandboxMode::None];
    if find("bwrap").is_some() && find("socat").is_some() {
        modes.push(SandboxMode::Bwrap);
    }
    if find("srt").is_some() {
        modes.push(SandboxMode::Srt);
    }
    println!(
        "sandbox overhead per call, {rounds} rounds of `{}`",
        argv.join(" ")
    );
    let mut bare = Duration::ZERO;
    for mode in modes {
        let settings = SandboxSettings {
            mode,
            allow_hosts: allow.iter().cloned().collect(),
            pass_env: vec![],
            hidden: vec![PathBuf::from("/root"), workspace.clone()],
            limits: Limits {
                memory_mb: 8192,
                processes: 1024,
                tmp_mb: 2048,
            },
        };
        let sandbox = Sandbox::start(&settings, &dir.path().join("proxy"))
            .await
            .map_err(anyhow::Error::msg)?;
        let mut times = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let mut cmd = sandbox
                .command(&argv, &cell)
                .await
                .map_err(anyhow::Error::msg)?;
            cmd.stdin(Stdio::null());
            let started = Instant::now();
            let out = cmd.output().await?;
            times.push(started.elapsed());
            let said = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            anyhow::ensure!(
                out.status.success(),
                "{} failed: {}: {said}",
                sandbox.mode(),
                out.status
            );
            if shown && times.len() == 1 {
                println!("  {} said: {}", sandbox.mode(), said.trim());
            }
        }
        times.sort();
        let median = times[times.len() / 2];
        let p90 = times[(times.len() * 9 / 10).min(times.len() - 1)];
        if mode == SandboxMode::None {
            bare = median;
        }
        println!(
            "  {:<6} median {:>7.1} ms  p90 {:>7.1} ms  overhead {:>7.1} ms",
            sandbox.mode(),
            ms(median),
            ms(p90),
            ms(median.saturating_sub(bare))
        );
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

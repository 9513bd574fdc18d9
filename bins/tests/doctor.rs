//! `scrum-orchestrator doctor` and `scrum-worker doctor`, run as a user runs them:
//! the real binaries, configured through the environment, against the fake GitHub
//! of the demo (its two repositories, its token), a real orchestrator where one is
//! needed, and a throwaway OpenSSH server for the worker hosts.
//!
//! The orchestrator's doctor passes on the demo's configuration, and fails, with
//! a line naming the fix and exit status 1, for a read-only token, a classic token
//! without the scope to write, a wrong webhook secret (the running orchestrator
//! refuses a signed ping; GitHub's hook was refused), an unreachable worker host
//! and a changed host key. The worker's doctor passes with a reachable
//! orchestrator and fails when its API token is wrong.

use std::path::{Path, PathBuf};
use std::time::Duration;

use scrum_bins::fleet::Fleet;
use scrum_github::fake::TOKEN_USER;
use scrum_ssh::testkit::TestSshd;

/// The demo's repositories and a few of its issues.
const ISSUES: [(&str, &str); 3] = [
    ("demo/shop", "Add a health endpoint"),
    ("demo/shop", "Validate the checkout form"),
    ("demo/blog", "Add an RSS feed"),
];

/// What a doctor printed, and how it exited.
struct Ran {
    code: Option<i32>,
    out: String,
    err: String,
}

impl Ran {
    /// The line of the report that starts with `start`, or a panic showing them all.
    fn line(&self, start: &str) -> &str {
        self.out
            .lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line starts with {start:?}; the report:\n{self}"))
    }

    fn failures(&self) -> Vec<&str> {
        self.out.lines().filter(|l| l.starts_with("FAIL")).collect()
    }
}

impl std::fmt::Display for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}(stderr: {}; exit {:?})",
            self.out,
            self.err.trim(),
            self.code
        )
    }
}

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_scrum-orchestrator"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Runs `bin args` with only `env` (and PATH, HOME) in its environment.
async fn run(bin: &str, args: &[&str], env: &[(String, String)]) -> Ran {
    let mut cmd = tokio::process::Command::new(bin_dir().join(bin));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "HOME",
            std::env::var("HOME").unwrap_or_else(|_| "/root".into()),
        )
        .envs(env.iter().map(|(k, v)| (k, v)))
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{bin} {args:?} did not finish within 120 s"))
        .unwrap();
    Ran {
        code: out.status.code(),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn kv(k: &str, v: impl Into<String>) -> (String, String) {
    (k.to_string(), v.into())
}

/// The demo's orchestrator configuration (as `Fleet` starts it), with a state
/// directory of its own and a port nothing listens on.
fn orchestrator_env(fleet: &Fleet, state: &Path) -> Vec<(String, String)> {
    vec![
        kv("GITHUB_TOKEN", fleet.github.token()),
        kv("GITHUB_API_URL", fleet.github.url()),
        kv("GITHUB_REPOS", "demo/shop,demo/blog"),
        kv("STATE_DIR", state.display().to_string()),
        kv("ORCHESTRATOR_HOST", "127.0.0.1"),
        kv("ORCHESTRATOR_PORT", free_port().to_string()),
    ]
}

async fn demo(dir: &Path) -> Fleet {
    Fleet::prepare(dir, &bin_dir(), &ISSUES).await.unwrap()
}

async fn orchestrator_doctor(env: &[(String, String)], args: &[&str]) -> Ran {
    let mut all = vec!["doctor"];
    all.extend(args);
    run("scrum-orchestrator", &all, env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_on_the_demo_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = demo(dir.path()).await;
    let env = orchestrator_env(&fleet, &dir.path().join("doctor-state"));
    let ran = orchestrator_doctor(&env, &[]).await;
    assert_eq!(ran.code, Some(0), "{ran}");
    assert!(ran.failures().is_empty(), "{ran}");
    ran.line("ok   settings: every setting is valid");
    for repo in ["demo/shop", "demo/blog"] {
        let github = ran.line(&format!(
            "ok   github: {repo} token can read and write issues"
        ));
        assert!(github.contains("push, triage, pull"), "{ran}");
        // The ready label is there; the lifecycle labels come on first use.
        let labels = ran.line(&format!("ok   labels: {repo} lacks ai-in-progress"));
        assert!(labels.contains("the token can create them"), "{ran}");
    }
    ran.line("ok   store: ");
    ran.line("skip webhook: GITHUB_WEBHOOK_SECRET is not set");
    ran.line("skip ssh: WORKER_IPS is empty");

    // --create-labels creates them; the next run finds every label.
    let ran = orchestrator_doctor(&env, &["--create-labels"]).await;
    assert_eq!(ran.code, Some(0), "{ran}");
    ran.line("ok   labels: demo/shop: created ai-in-progress, ai-completed, ai-failed");
    assert_eq!(
        fleet
            .github
            .label_color("demo/shop", "ai-failed")
            .as_deref(),
        Some("d93f0b")
    );
    let ran = orchestrator_doctor(&env, &[]).await;
    ran.line("ok   labels: demo/blog has ai-ready, ai-in-progress, ai-completed, ai-failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_token_fails_naming_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = demo(dir.path()).await;
    fleet.github.set_read_only("demo/shop", true);
    let env = orchestrator_env(&fleet, &dir.path().join("doctor-state"));
    let ran = orchestrator_doctor(&env, &[]).await;
    assert_eq!(ran.code, Some(1), "{ran}");
    let line =
        ran.line("FAIL github: demo/shop token can read issues but cannot write them (pull)");
    assert!(
        line.contains("— give the token's user the triage or write role on demo/shop"),
        "{ran}"
    );
    let labels = ran.line("FAIL labels: demo/shop lacks ai-in-progress");
    assert!(
        labels.contains("the token cannot create them — create them"),
        "{ran}"
    );
    // The other repository is fine, and the end says how many failed.
    ran.line("ok   github: demo/blog token can read and write issues");
    assert!(ran.err.contains("2 checks failed"), "{ran}");

    // A classic token whose scopes do not cover writes fails too, naming the scope.
    fleet.github.set_read_only("demo/shop", false);
    fleet.github.set_token_scopes(Some("read:org, gist"));
    let ran = orchestrator_doctor(&env, &[]).await;
    assert_eq!(ran.code, Some(1), "{ran}");
    let line = ran.line("FAIL github: demo/blog token (a classic token with scopes: read:org, gist) cannot write issues");
    assert!(
        line.contains("— give the token the public_repo scope"),
        "{ran}"
    );
    fleet.github.set_token_scopes(Some("repo"));
    let ran = orchestrator_doctor(&env, &[]).await;
    assert_eq!(ran.code, Some(0), "{ran}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_webhook_secret_fails_naming_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let mut fleet = demo(dir.path()).await;
    fleet.set_env("GITHUB_WEBHOOK_SECRET", "the-secret-on-github");
    fleet.start_orchestrator().await.unwrap();
    let url = fleet.url();
    let mut env = orchestrator_env(&fleet, &dir.path().join("doctor-state"));

    env.push(kv("GITHUB_WEBHOOK_SECRET", "a-stale-secret"));
    let ran = orchestrator_doctor(&env, &["--url", &url]).await;
    assert_eq!(ran.code, Some(1), "{ran}");
    ran.line(
        "ok   webhook: GITHUB_WEBHOOK_SECRET signs a test delivery that the server's check accepts",
    );
    let line = ran.line(&format!(
        "FAIL webhook: the orchestrator at {url} refuses a ping signed with GITHUB_WEBHOOK_SECRET: it runs with another secret"
    ));
    assert!(
        line.contains("— set the same GITHUB_WEBHOOK_SECRET"),
        "{ran}"
    );

    // With the same secret, the running orchestrator takes the ping.
    env.retain(|(k, _)| k != "GITHUB_WEBHOOK_SECRET");
    env.push(kv("GITHUB_WEBHOOK_SECRET", "the-secret-on-github"));
    let ran = orchestrator_doctor(&env, &["--url", &url]).await;
    assert_eq!(ran.code, Some(0), "{ran}");
    ran.line(&format!(
        "ok   webhook: the orchestrator at {url} accepts a ping signed"
    ));
    ran.line("skip webhook: demo/shop: the token may not read its hooks");

    // An admin's token reads the hooks: one GitHub could not deliver to (401,
    // its secret differs) fails, one without a secret fails.
    fleet.github.set_role("demo/shop", TOKEN_USER, "admin");
    fleet.github.set_role("demo/blog", TOKEN_USER, "admin");
    let hook = format!("{url}/webhooks/github");
    let refused = fleet.github.add_hook("demo/shop", &hook, true);
    fleet.github.set_hook_last_status("demo/shop", refused, 401);
    fleet.github.add_hook("demo/blog", &hook, false);
    let ran = orchestrator_doctor(&env, &["--url", &url]).await;
    assert_eq!(ran.code, Some(1), "{ran}");
    let line = ran.line(&format!("FAIL webhook: demo/shop: the orchestrator refused the last delivery of the hook to {hook} (401)"));
    assert!(
        line.contains("— set the hook's secret on GitHub to GITHUB_WEBHOOK_SECRET"),
        "{ran}"
    );
    let line = ran.line(&format!(
        "FAIL webhook: demo/blog: the hook to {hook} has no secret"
    ));
    assert!(line.contains("— set the hook's secret on GitHub"), "{ran}");
    fleet.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_worker_host_fails_naming_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = demo(dir.path()).await;
    let mut sshd = TestSshd::start().await.unwrap();
    let gone = format!("127.0.0.1:{}", free_port());
    let mut env = orchestrator_env(&fleet, &dir.path().join("doctor-state"));
    env.extend([
        kv("WORKER_IPS", format!("{},{gone}", sshd.host())),
        kv("WORKER_SSH_KEY", sshd.client_key().display().to_string()),
        kv("WORKER_SSH_USER", sshd.user()),
    ]);
    let ran = orchestrator_doctor(&env, &[]).await;
    assert_eq!(ran.code, Some(1), "{ran}");
    ran.line(&format!(
        "ok   ssh: {} answers as {} with its pinned host key; service ai-scrum-worker is active",
        sshd.host(),
        sshd.user()
    ));
    let line = ran.line(&format!(
        "FAIL ssh: {gone} does not answer: {gone}: connection refused"
    ));
    assert!(
        line.contains(&format!("— check that {gone} in WORKER_IPS is right")),
        "{ran}"
    );
    assert_eq!(ran.failures().len(), 1, "{ran}");
    // Workers on this machine need a sandbox, which this machine has.
    ran.line("ok   sandbox: ");

    // The pinned key no longer matches: refused, with what to do.
    env.retain(|(k, _)| k != "WORKER_IPS");
    env.push(kv("WORKER_IPS", sshd.host()));
    sshd.replace_host_key().await.unwrap();
    let ran = orchestrator_doctor(&env, &[]).await;
    assert_eq!(ran.code, Some(1), "{ran}");
    let line = ran.line(&format!(
        "FAIL ssh: {} does not answer: HOST KEY CHANGED",
        sshd.host()
    ));
    assert!(line.contains("was reinstalled, remove its line"), "{ran}");
}

/// A worker of the demo fleet, as `Fleet` starts one with the built-in workflow
/// over the fake `claude`, and the sandbox the tests of the sandbox use.
fn worker_env(fleet: &Fleet, token: &str) -> Vec<(String, String)> {
    let root = fleet.root();
    let path = format!(
        "{}:{}",
        root.join("agents").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    vec![
        kv("WORKER_ID", "worker-doctor"),
        kv("ORCHESTRATOR_URL", fleet.url()),
        kv("ORCHESTRATOR_API_TOKEN", token),
        kv("GITHUB_TOKEN", fleet.github.token()),
        kv("GITHUB_API_URL", fleet.github.url()),
        kv(
            "GIT_BASE_URL",
            format!("file://{}", root.join("remotes").display()),
        ),
        kv(
            "WORKSPACE_DIR",
            root.join("workspaces/worker-doctor").display().to_string(),
        ),
        kv(
            "WORKFLOW_FILE",
            root.join("workflow.toml").display().to_string(),
        ),
        kv(
            "FAKE_CLAUDE_STATE",
            fleet.agent_state().display().to_string(),
        ),
        kv("SANDBOX", "bwrap"),
        kv("PATH", path),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_doctor_passes_with_a_reachable_orchestrator_and_fails_with_a_wrong_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut fleet = demo(dir.path()).await;
    fleet.set_env("ORCHESTRATOR_API_TOKEN", "the-fleet-token-0123456789");
    fleet.start_orchestrator().await.unwrap();
    let url = fleet.url();

    let env = worker_env(&fleet, "the-fleet-token-0123456789");
    let ran = run("scrum-worker", &["doctor", "--repo", "demo/shop"], &env).await;
    assert_eq!(ran.code, Some(0), "{ran}");
    ran.line(&format!("ok   orchestrator: {url} (version "));
    ran.line("ok   git: a push to demo/shop at file://");
    ran.line("ok   github: GITHUB_TOKEN may open pull requests in demo/shop");
    ran.line("ok   agent: `claude --version` runs");
    ran.line("ok   sandbox: SANDBOX=bwrap runs a command");
    // Nothing was pushed.
    let branches = std::process::Command::new("git")
        .args(["branch", "--list"])
        .current_dir(dir.path().join("remotes/demo/shop.git"))
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&branches.stdout).contains("doctor"));

    let env = worker_env(&fleet, "a-wrong-token-0123456789");
    let ran = run("scrum-worker", &["doctor", "--repo", "demo/shop"], &env).await;
    assert_eq!(ran.code, Some(1), "{ran}");
    let line = ran.line(&format!(
        "FAIL orchestrator: {url} refuses this worker's calls with ORCHESTRATOR_API_TOKEN"
    ));
    assert!(
        line.contains("— set ORCHESTRATOR_API_TOKEN to the orchestrator's ORCHESTRATOR_API_TOKEN"),
        "{ran}"
    );
    assert_eq!(ran.failures().len(), 1, "{ran}");
    assert!(
        ran.err.contains("scrum-worker doctor: 1 check failed"),
        "{ran}"
    );
    fleet.stop();
}

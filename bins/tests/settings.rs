//! The orchestrator's settings as a user meets them: `--help` grouped under
//! headings, `docs/settings.md` in step with the command line, a settings file
//! whose values yield to the environment and to flags, switches that take
//! `=false`, and mistakes refused with the variable or key named. Each check runs
//! the real `scrum-orchestrator`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use clap::CommandFactory;
use scrum_bins::fleet::Fleet;
use scrum_bins::orchestrator::OrchestratorCli;
use scrum_bins::orchestrator::settings::{GROUPS, table};
use scrum_http::OrchestratorClient;

const BIN: &str = env!("CARGO_BIN_EXE_scrum-orchestrator");
const BEGIN: &str = "<!-- settings table: begin -->\n";
const END: &str = "<!-- settings table: end -->";

/// The orchestrator with only `env` in its environment.
fn orchestrator(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .env_clear()
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `scrum-orchestrator settings`: the line of setting `key`.
fn setting(shown: &str, key: &str) -> String {
    let prefixes = [format!("{key} = "), format!("# {key}: ")];
    shown
        .lines()
        .find(|l| prefixes.iter().any(|p| l.starts_with(p.as_str())))
        .unwrap_or_else(|| panic!("{key} is not shown:\n{shown}"))
        .to_string()
}

fn write_file(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("orchestrator.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_docs_table_is_the_settings_table() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/settings.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let start = doc
        .find(BEGIN)
        .expect("docs/settings.md has the begin marker")
        + BEGIN.len();
    let end = doc.find(END).expect("docs/settings.md has the end marker");
    let expected = table::markdown(&OrchestratorCli::command());
    if doc[start..end] == expected {
        return;
    }
    if std::env::var_os("UPDATE_SETTINGS_DOC").is_some() {
        std::fs::write(&path, format!("{}{expected}{}", &doc[..start], &doc[end..])).unwrap();
        return;
    }
    panic!(
        "docs/settings.md lists other settings (names, variables or defaults) than \
         scrum-orchestrator has: regenerate its table with \
         `UPDATE_SETTINGS_DOC=1 cargo test -p scrum-bins --test settings`, then review the diff"
    );
}

#[test]
fn the_docs_table_has_each_group_and_variable() {
    let table = table::markdown(&OrchestratorCli::command());
    for group in GROUPS {
        assert!(
            table.contains(&format!("### {} (`[{}]`)", group.heading, group.key)),
            "{table}"
        );
    }
    for row in [
        "| `GITHUB_POLL_INTERVAL` | `--github-poll-interval` | `github_poll_interval` | `60` |",
        "| `ORCHESTRATOR_PORT` | `--port` | `port` | `8000` |",
        "| `GITHUB_TOKEN` | `--github-token` | `github_token` | unset |",
        "| `WORKER_IPS` | `--worker-ips` | `worker_ips` | empty |",
    ] {
        assert!(table.contains(row), "{row} missing:\n{table}");
    }
}

#[test]
fn help_groups_the_settings_under_headings_with_variables_and_defaults() {
    let help = stdout(&orchestrator(&["--help"], &[]));
    let mut last = 0;
    for group in GROUPS {
        let at = help
            .find(&format!("\n{}:\n", group.heading))
            .unwrap_or_else(|| panic!("no heading {:?} in:\n{help}", group.heading));
        assert!(at > last, "{} is out of order", group.heading);
        last = at;
    }
    let review = &help[help.find("\nReview gating:\n").unwrap()..];
    let review = &review[..review.find("\nBudgets:\n").unwrap()];
    for line in [
        "--max-pending-prs <MAX_PENDING_PRS>",
        "[env: MAX_PENDING_PRS=]",
        "[default: 5]",
        "--block-on-changes-requested[=<BLOCK_ON_CHANGES_REQUESTED>]",
        "[default: true]",
    ] {
        assert!(review.contains(line), "{line} missing:\n{review}");
    }
    assert!(help.contains("[env: ORCHESTRATOR_CONFIG=]"), "{help}");
}

#[test]
fn a_file_value_yields_to_the_environment_and_the_environment_to_a_flag() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        r#"
[listener]
port = 9001

[github]
github_token = "ghp_from_the_file"
github_repos = ["acme/api", "acme/web"]
github_poll_interval = 120

[leases]
max_attempts = 4
lease_secs = 90

[trust]
trust_mode = "off"
"#,
    );
    let config = file.to_str().unwrap();
    let out = orchestrator(
        &["--lease-secs", "30", "settings"],
        &[
            ("ORCHESTRATOR_CONFIG", config),
            ("GITHUB_POLL_INTERVAL", "5"),
            ("LEASE_SECS", "45"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = stdout(&out);
    assert!(shown.contains(config), "{shown}");
    assert_eq!(setting(&shown, "port"), "port = 9001  # file");
    assert_eq!(
        setting(&shown, "github_repos"),
        r#"github_repos = "acme/api,acme/web"  # file"#
    );
    assert_eq!(
        setting(&shown, "trust_mode"),
        r#"trust_mode = "off"  # file"#
    );
    assert_eq!(setting(&shown, "max_attempts"), "max_attempts = 4  # file");
    // The environment wins over the file, a flag over both.
    assert_eq!(
        setting(&shown, "github_poll_interval"),
        "github_poll_interval = 5  # environment"
    );
    assert_eq!(setting(&shown, "lease_secs"), "lease_secs = 30  # flag");
    // Untouched settings keep their defaults; a secret shows only where it came from.
    assert_eq!(setting(&shown, "host"), r#"host = "0.0.0.0"  # default"#);
    assert_eq!(
        setting(&shown, "github_token"),
        "# github_token: set, hidden (file)"
    );
    assert!(!shown.contains("ghp_from_the_file"), "{shown}");
    // The same through --config, and the file's secret stays out of --help.
    let help = stdout(&orchestrator(&["--config", config, "--help"], &[]));
    assert!(!help.contains("ghp_from_the_file"), "{help}");
}

#[test]
fn switches_take_false_and_true_from_the_command_line() {
    for (flag, env, shown) in [
        (
            "--block-on-changes-requested=false",
            None,
            "block_on_changes_requested = false  # flag",
        ),
        (
            "--rework-on-changes-requested",
            Some(("REWORK_ON_CHANGES_REQUESTED", "false")),
            "rework_on_changes_requested = true  # flag",
        ),
        (
            "--allow-read-only-repos=false",
            Some(("ALLOW_READ_ONLY_REPOS", "true")),
            "allow_read_only_repos = false  # flag",
        ),
    ] {
        let out = orchestrator(&[flag, "settings"], env.as_slice());
        assert!(out.status.success(), "{flag}: {}", stderr(&out));
        let key = shown.split(' ').next().unwrap();
        assert_eq!(setting(&stdout(&out), key), shown);
    }
    let out = orchestrator(&["--block-on-changes-requested=maybe", "settings"], &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("maybe"), "{}", stderr(&out));
}

#[test]
fn file_mistakes_are_refused_naming_the_group_and_key() {
    let dir = tempfile::tempdir().unwrap();
    for (text, says) in [
        (
            "[github]\ngithub_tokn = \"x\"\n",
            "unknown setting `github_tokn` in [github]",
        ),
        ("[gihub]\ngithub_token = \"x\"\n", "unknown group [gihub]"),
        (
            "[github]\nport = 8001\n",
            "[github] port: this setting belongs in [listener]",
        ),
        (
            "[listener]\nport = \"eighty\"\n",
            "[listener] port: invalid value 'eighty'",
        ),
        ("[leases]\nmax_attempts = 99\n", "[leases] max_attempts"),
        ("[locks\n", "TOML parse error"),
    ] {
        let file = write_file(dir.path(), text);
        // Refused at start, before anything else is looked at, even where the
        // environment overrides the value.
        let out = orchestrator(
            &["--config", file.to_str().unwrap()],
            &[("ORCHESTRATOR_PORT", "8002"), ("MAX_ATTEMPTS", "2")],
        );
        assert_eq!(out.status.code(), Some(2), "{text}");
        let err = stderr(&out);
        assert!(err.contains(says), "{text}: {err}");
        assert!(err.contains(file.to_str().unwrap()), "{err}");
    }
    let out = orchestrator(
        &["settings"],
        &[("ORCHESTRATOR_CONFIG", "/nonexistent.toml")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("ORCHESTRATOR_CONFIG /nonexistent.toml"));
}

#[test]
fn notify_events_refuses_events_nothing_sends_and_names_the_ones_sent() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().to_str().unwrap();
    for event in ["writes_refused", "budget_spent", "queue_blocked"] {
        let out = orchestrator(
            &[],
            &[
                ("GITHUB_TOKEN", "ghp_test"),
                ("GITHUB_REPO", "acme/api"),
                ("STATE_DIR", state),
                ("NOTIFY_EVENTS", &format!("completed,{event}")),
            ],
        );
        assert_eq!(out.status.code(), Some(2));
        let err = stderr(&out);
        assert!(
            err.contains("NOTIFY_EVENTS") && err.contains(event),
            "{err}"
        );
        assert!(
            err.contains("completed, failed, needs_clarification, worker_lost"),
            "{err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_starts_from_a_settings_file_under_its_environment() {
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = Path::new(BIN).parent().unwrap();
    let mut fleet = Fleet::prepare(dir.path(), bin_dir, &[("acme/api", "Add an endpoint")])
        .await
        .unwrap();
    // The file turns trust checks off and asks for JSON logs; its listening address
    // (one no machine has) gives way to the environment's, which the fleet sets.
    let file = write_file(
        dir.path(),
        "[listener]\nhost = \"192.0.2.1\"\n\n[trust]\ntrust_mode = \"off\"\n\n\
         [logging]\nlog_format = \"json\"\n",
    );
    fleet.set_env("ORCHESTRATOR_CONFIG", file.to_str().unwrap());
    fleet.start_orchestrator().await.unwrap();
    let client = OrchestratorClient::new(&fleet.url()).unwrap();
    let health = client.health().await.unwrap();
    assert_eq!(health.trust_mode.as_deref(), Some("off"));
    fleet.stop();
    let log = std::fs::read_to_string(fleet.log("orchestrator")).unwrap();
    let first = log.lines().next().expect("the orchestrator logged");
    let line: serde_json::Value =
        serde_json::from_str(first).unwrap_or_else(|e| panic!("not a JSON line ({e}): {first}"));
    assert!(line["message"].is_string(), "{line}");
}

#[test]
fn a_github_app_is_refused_beside_a_token_and_without_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().to_str().unwrap();
    let key = dir.path().join("app.pem");
    std::fs::write(&key, scrum_github::fake::FakeGitHub::APP_KEY_PEM).unwrap();
    let key = key.to_str().unwrap();
    let base = [("GITHUB_REPO", "acme/api"), ("STATE_DIR", state)];
    let cases: [(&[(&str, &str)], &str); 4] = [
        (
            &[
                ("GITHUB_TOKEN", "ghp_test"),
                ("GITHUB_APP_ID", "42"),
                ("GITHUB_APP_PRIVATE_KEY_PATH", key),
            ],
            "both GITHUB_TOKEN and GITHUB_APP_ID are set",
        ),
        (
            &[("GITHUB_APP_ID", "42")],
            "GITHUB_APP_ID is set without a key",
        ),
        (
            &[
                ("GITHUB_APP_ID", "42"),
                ("GITHUB_APP_PRIVATE_KEY", "not a key"),
            ],
            "GITHUB_APP_PRIVATE_KEY is not the app's RSA private key",
        ),
        (
            &[
                ("GITHUB_APP_ID", "42"),
                ("GITHUB_APP_PRIVATE_KEY", "x"),
                ("GITHUB_APP_PRIVATE_KEY_PATH", key),
            ],
            "GITHUB_APP_PRIVATE_KEY and GITHUB_APP_PRIVATE_KEY_PATH are both set",
        ),
    ];
    for (env, expected) in cases {
        let out = orchestrator(&[], &[&base[..], env].concat());
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains(expected), "{}", stderr(&out));
    }
}

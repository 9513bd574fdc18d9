//! `LOG_FORMAT=json` through the binaries: every line the orchestrator and a worker
//! write is one JSON object, and the lines about a task carry `task_id`,
//! `repository`, `worker_id` and `attempt`. Without it the logs stay text.

use std::path::Path;
use std::time::Duration;

use scrum_bins::fleet::{Fleet, IssueProgress};
use serde_json::Value;

fn lines(fleet: &Fleet, name: &str) -> Vec<Value> {
    let log = std::fs::read_to_string(fleet.log(name)).unwrap();
    log.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {l}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_task_worker_repository_and_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_scrum-orchestrator"))
        .parent()
        .unwrap();
    let mut fleet = Fleet::prepare(dir.path(), bin_dir, &[("acme/api", "Add an endpoint")])
        .await
        .unwrap();
    fleet.set_env("LOG_FORMAT", "json");
    fleet.start_orchestrator().await.unwrap();
    fleet.start_worker("worker-1").unwrap();
    fleet
        .wait_for("the issue to complete", Duration::from_secs(60), || {
            fleet.progress()[0].1 == IssueProgress::Completed
        })
        .await;
    fleet.stop();

    let orchestrator = lines(&fleet, "orchestrator");
    assert!(orchestrator.len() > 3, "{orchestrator:?}");
    for l in &orchestrator {
        for key in ["timestamp", "level", "target", "message"] {
            assert!(l[key].is_string(), "{key} missing: {l}");
        }
    }
    let claimed = orchestrator
        .iter()
        .find(|l| l["message"] == "claimed")
        .expect("a claim is logged");
    assert_eq!(claimed["task_id"], "acme/api#1", "{claimed}");
    assert_eq!(claimed["repository"], "acme/api", "{claimed}");
    assert_eq!(claimed["worker_id"], "worker-1", "{claimed}");
    assert_eq!(claimed["attempt"], 1, "{claimed}");
    assert_eq!(claimed["level"], "INFO");

    // The worker's every line names it; its lines about the task name the task.
    let worker = lines(&fleet, "worker-1");
    assert!(
        worker.iter().all(|l| l["worker_id"] == "worker-1"),
        "{worker:?}"
    );
    let running = worker
        .iter()
        .find(|l| l["message"] == "running the workflow")
        .expect("the run is logged");
    assert_eq!(running["task_id"], "acme/api#1");
    assert_eq!(running["repository"], "acme/api");
    assert_eq!(running["attempt"], 1);
}

#[test]
fn a_bad_log_format_is_refused_and_text_stays_the_default() {
    let bin = env!("CARGO_BIN_EXE_scrum-orchestrator");
    let out = std::process::Command::new(bin)
        .env("LOG_FORMAT", "xml")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("xml") && err.contains("json"), "{err}");
    let help = std::process::Command::new(bin)
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("LOG_FORMAT") && help.contains("[default: text]"),
        "{help}"
    );
}

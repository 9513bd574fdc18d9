//! Cost budgets, end to end: the real `scrum-orchestrator` against the fake
//! GitHub; workers played over the HTTP API, reporting what each attempt cost.
//!
//! - `ISSUE_BUDGET_USD`: an issue whose first attempt cost more than the budget
//!   fails without a second attempt, and its comment says why;
//! - `REPO_MONTHLY_BUDGET_USD`: once a repository's runs cost it this month, its
//!   issues are not handed out, and `/health` says why; the assignment carries
//!   what is left.

mod played;

use std::path::Path;
use std::time::Duration;

use scrum_bins::fleet::Fleet;
use scrum_http::OrchestratorClient;
use scrum_http::wire::{FailedRequest, QueueQuery, TaskRef};

use played::{WORKER, block_on, next};

const REPO: &str = "acme/budget";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spent_budgets_stop_attempts_and_pause_dispatch() {
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_scrum-orchestrator"))
        .parent()
        .unwrap();
    let issues = [(REPO, "Costly"), (REPO, "Cheap"), (REPO, "Later")];
    let mut fleet = Fleet::prepare(dir.path(), bin_dir, &issues).await.unwrap();
    let [costly, cheap, later] = [0, 1, 2].map(|i| fleet.issues[i].clone());
    fleet.set_env("ISSUE_BUDGET_USD", "2");
    fleet.set_env("REPO_MONTHLY_BUDGET_USD", "5");
    fleet.set_env("MAX_ATTEMPTS", "3");
    fleet.start_orchestrator().await.unwrap();
    let client = OrchestratorClient::new(&fleet.url()).unwrap();

    // The first attempt costs more than the issue's budget: no second attempt.
    let w = next(&client, 10).await.expect("work");
    assert_eq!(w.task_id, costly.to_string());
    assert_eq!(w.budget_left_usd, Some(2.0));
    let failed = FailedRequest {
        task: TaskRef::of(WORKER, &w),
        error: "tests fail".into(),
        retryable: Some(true),
        cost_usd: Some(3.0),
        tokens: Some(40_000),
    };
    assert_eq!(client.failed(&failed).await.unwrap().state, "failed");
    fleet
        .wait_for("the budget comment", Duration::from_secs(20), || {
            fleet
                .github
                .comments(&costly)
                .iter()
                .any(|c| c.contains("its budget is spent") && c.contains("ISSUE_BUDGET_USD"))
        })
        .await;

    // The next one spends the rest of the month's budget; the third waits.
    let w = next(&client, 10).await.expect("work");
    assert_eq!(w.task_id, cheap.to_string());
    played::complete(&client, &w, None, Some(2.5)).await;
    fleet
        .wait_for(
            "dispatch paused for the month",
            Duration::from_secs(20),
            || {
                block_on(client.health())
                    .and_then(|h| h.budget)
                    .is_some_and(|b| {
                        b["paused"][0]["repository"] == REPO
                            && b["paused"][0]["reason"]
                                .as_str()
                                .is_some_and(|r| r.contains("REPO_MONTHLY_BUDGET_USD"))
                    })
            },
        )
        .await;
    assert!(
        next(&client, 2).await.is_none(),
        "work handed out past the monthly budget"
    );
    let q = client.queue(&QueueQuery::default()).await.unwrap();
    assert!(q.pending.iter().any(|e| e.task_id == later.to_string()));
    fleet.stop();
}

//! Write-back that never stalls, with the real `scrum-orchestrator` and the fake
//! GitHub: two repositories, the token read-only on the first (every write answered
//! GitHub's `403 Resource not accessible by personal access token`) with 231 ready
//! issues there. An issue of the second is claimed and completed, and its labels and
//! comment land within 5 s; the first is probed with one effect a round (an effect
//! refused three times is set aside), `/health` is degraded and names it, and its
//! tasks are not handed out. Once the token may write again, the next probe lands
//! and the rest follow, and `scrum-orchestrator effects retry` lands every set-aside
//! effect: each exactly once.

use std::path::Path;
use std::time::{Duration, Instant};

use scrum_bins::fleet::Fleet;
use scrum_core::TaskId;
use scrum_github::fake::NewIssue;
use scrum_http::OrchestratorClient;
use scrum_http::wire::{CompleteRequest, EffectState, LeaseMode, TaskRef};

const REFUSED: &str = "acme/refused";
const OPEN: &str = "acme/open";
/// Ready issues in the refused repository, all older than the open one's.
const BACKLOG: usize = 231;

/// Label and comment writes to one issue the fake accepted (label creation, once
/// per repository, is not counted).
fn writes_to(fleet: &Fleet, id: &TaskId) -> Vec<String> {
    let issue = format!("/repos/{}/issues/{}", id.repo(), id.number());
    fleet
        .github
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET" && r.status < 300)
        .filter(|r| r.path == issue || r.path.starts_with(&format!("{issue}/")))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_writes_to_one_repository_never_hold_back_another() {
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_scrum-orchestrator"))
        .parent()
        .unwrap();
    let issues = [(REFUSED, "Refused 0"), (OPEN, "An issue whose writes land")];
    let mut fleet = Fleet::prepare(dir.path(), bin_dir, &issues).await.unwrap();
    for n in 1..BACKLOG {
        let issue = NewIssue::new(&format!("Refused {n}"))
            .labels(&["ai-ready"])
            .created_at(scrum_core::Timestamp(1_600_000_000_000 + n as i64));
        fleet.github.add_issue(REFUSED, issue);
    }
    let open = fleet.issues[1].clone();
    fleet.github.set_read_only(REFUSED, true);

    // A token that cannot label issues in a watched repository is a start-up error
    // naming the repository and the permission missing...
    let refused_start = fleet.start_orchestrator().await;
    assert!(
        refused_start.is_err(),
        "started with a read-only repository"
    );
    let log = std::fs::read_to_string(fleet.log("orchestrator")).unwrap();
    assert!(
        log.contains("may read acme/refused but not label its issues")
            && log.contains("triage or write")
            && log.contains("ALLOW_READ_ONLY_REPOS"),
        "{log}"
    );
    // ...unless the operator lets it start anyway.
    fleet.set_env("ALLOW_READ_ONLY_REPOS", "true");
    fleet.start_orchestrator().await.unwrap();
    let client = OrchestratorClient::new(&fleet.url()).unwrap();

    // The refused repository shows as degraded once its first writes are refused.
    let mut health = client.health().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let degraded = |h: &scrum_http::wire::HealthResponse| {
        let writes = h.github.as_ref().and_then(|g| g.writes.as_ref());
        let names = writes.is_some_and(|w| {
            w.repositories
                .iter()
                .any(|r| r.repository == REFUSED && r.refused)
        });
        names && h.queue.pending == BACKLOG as u64 + 1
    };
    while !degraded(&health) {
        assert!(Instant::now() < deadline, "never degraded: {health:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        health = client.health().await.unwrap();
    }
    assert_eq!(health.status, "degraded");

    // The refused repository's older tasks are held: the open one is handed out.
    let work = client
        .next_work("worker-1", Duration::from_secs(5), LeaseMode::Heartbeat)
        .await
        .unwrap()
        .expect("a task of the repository that takes writes");
    assert_eq!(work.repository, OPEN, "held tasks were handed out");
    let completed = Instant::now();
    client
        .complete(&CompleteRequest {
            task: TaskRef {
                worker_id: "worker-1".into(),
                issue_number: work.issue_number,
                repository: Some(work.repository.clone()),
                lease_token: Some(work.lease_token.clone()),
            },
            pr_url: Some("https://github.com/acme/open/pull/9".into()),
            success: true,
            error: None,
            cost_usd: None,
            tokens: None,
            revisions: None,
        })
        .await
        .unwrap();
    fleet
        .wait_for(
            "the open repository's outcome",
            Duration::from_secs(5),
            || {
                let labels = fleet.github.labels(&open);
                labels == ["ai-completed"] && fleet.github.comments(&open).len() == 1
            },
        )
        .await;
    let landed = completed.elapsed();
    assert!(landed < Duration::from_secs(5), "{landed:?}");
    let writes = writes_to(&fleet, &open);
    eprintln!("outcome landed {landed:?} after the completion; the task cost {writes:?}");
    assert!(writes.len() <= 3, "a completed task cost {writes:?}");
    assert!(fleet.github.comments(&open)[0].contains("https://github.com/acme/open/pull/9"));

    // The refusing repository is probed with one effect a round, not with each of
    // its effects: an effect refused three times is set aside, the others wait.
    fleet
        .wait_for(
            "a refused effect set aside",
            Duration::from_secs(30),
            || {
                let dead = block_on(client.effects(Some(EffectState::Dead)));
                dead.is_some_and(|d| !d.effects.is_empty())
            },
        )
        .await;
    let dead = client.effects(Some(EffectState::Dead)).await.unwrap();
    assert!(
        dead.effects
            .iter()
            .all(|e| e.refused && e.repository == REFUSED)
    );
    assert!(
        dead.effects[0]
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("403")
    );
    let refusals = |fleet: &Fleet| {
        let requests = fleet.github.requests();
        requests
            .iter()
            .filter(|r| r.method != "GET" && r.status == 403)
            .count()
    };
    let before = refusals(&fleet);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let probes = refusals(&fleet) - before;
    assert!(
        (1..=8).contains(&probes),
        "{probes} writes refused in 3 s: the repository was not probed one effect a round"
    );
    let refused_ids: Vec<TaskId> = (1..=BACKLOG as u64)
        .map(|n| TaskId::new(REFUSED, n).unwrap())
        .collect();
    assert!(
        refused_ids
            .iter()
            .all(|id| writes_to(&fleet, id).is_empty())
    );
    let dead = client.effects(Some(EffectState::Dead)).await.unwrap();

    // The token may write again; the operator retries the set-aside effects.
    fleet.github.set_read_only(REFUSED, false);
    let retried = std::process::Command::new(bin_dir.join("scrum-orchestrator"))
        .args(["effects", "retry", "--repo", REFUSED])
        .env("ORCHESTRATOR_URL", fleet.url())
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&retried.stdout);
    assert!(
        retried.status.success(),
        "{answer} {}",
        String::from_utf8_lossy(&retried.stderr)
    );
    let retried_count: usize = answer
        .split("\"retried\":")
        .nth(1)
        .and_then(|r| r.trim_start().split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count retried: {answer}"));
    // Another probe may have been set aside since the list was read.
    assert!(retried_count >= dead.effects.len(), "{answer}");
    fleet
        .wait_for(
            "every effect applied: the retried ones, and the rest once a probe landed",
            Duration::from_secs(30),
            || {
                refused_ids.iter().all(|id| {
                    fleet
                        .github
                        .labels(id)
                        .contains(&"ai-in-progress".to_string())
                })
            },
        )
        .await;
    for id in &refused_ids {
        let writes = writes_to(&fleet, id);
        assert_eq!(writes.len(), 1, "{id}: {writes:?}");
    }
    fleet
        .wait_for("healthy again", Duration::from_secs(10), || {
            block_on(client.health()).is_some_and(|h| h.status == "healthy")
        })
        .await;
    fleet.stop();
}

/// Runs `f` to completion from a synchronous closure (the fleet's wait polls
/// synchronously): `None` when it fails.
fn block_on<T>(f: impl std::future::Future<Output = scrum_core::Result<T>>) -> Option<T> {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f)).ok()
}

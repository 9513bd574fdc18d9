//! Checks for the stores several orchestrators share: claims from two processes,
//! and the leader lease changing hands.

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use scrum_core::{LeaseKind, ReadyIssue, TaskId, Timestamp, WorkQueue, WorkerId};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The environment variable telling a child test process which store to claim from.
pub(crate) const CHILD_STORE: &str = "SCRUM_STORE_CHILD_STORE";

const READY: &str = "child-claimer-ready";
const CLAIMED: &str = "child-claimed:";

pub(crate) const T0: Timestamp = Timestamp(1_800_000_000_000);

pub(crate) async fn enqueue_many(q: &dyn WorkQueue, n: u64) {
    for i in 1..=n {
        let issue = ReadyIssue {
            id: TaskId::new("acme/widgets", i).unwrap(),
            title: format!("Issue {i}"),
            body: String::new(),
            labels: vec!["ai-ready".into()],
            created_at: Timestamp(i as i64),
        };
        q.enqueue(issue, T0).await.unwrap();
    }
}

/// Runs `claimers` concurrent claimers on `q` until the queue is empty; returns
/// every task id they got.
pub(crate) async fn claim_all(q: Arc<dyn WorkQueue>, claimers: u32, tag: &str) -> Vec<TaskId> {
    let mut handles = Vec::new();
    for c in 0..claimers {
        let q = q.clone();
        let worker = WorkerId::new(&format!("{tag}-{c}")).unwrap();
        handles.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(t) = q
                .claim(&worker, LeaseKind::Heartbeat, Timestamp(T0.0 + 1000))
                .await
                .expect("claim")
            {
                got.push(t.id);
            }
            got
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.expect("claimer"));
    }
    all
}

/// The child's half of [`claims_from_two_processes`]: connects, says it is ready, waits
/// for `go` on stdin, claims with 25 claimers and prints one line per task.
pub(crate) async fn child_claims(q: Arc<dyn WorkQueue>) {
    // libtest may print "test NAME ... " on the same line first: markers are
    // searched for, not matched whole.
    println!("\n{READY}");
    let mut line = String::new();
    BufReader::new(tokio::io::stdin())
        .read_line(&mut line)
        .await
        .unwrap();
    assert_eq!(line.trim(), "go");
    for id in claim_all(q, 25, "child").await {
        println!("{CLAIMED}{id}");
    }
}

/// Fills `q` with `tasks`, starts this test binary's `child_test` in a second
/// process on the same store (named by `store`), and claims with 25 claimers here
/// while the child's 25 claim there. Every task must be claimed exactly once.
pub(crate) async fn claims_from_two_processes(
    q: Arc<dyn WorkQueue>,
    store: &str,
    child_test: &str,
    tasks: u64,
) {
    enqueue_many(&*q, tasks).await;
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", child_test, "--nocapture", "--test-threads=1"])
        .env(CHILD_STORE, store)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the child test process");
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    // Wait until the child is connected, then start both sides together.
    let ready = async {
        while let Some(line) = out.next_line().await.unwrap() {
            if line.contains(READY) {
                return true;
            }
        }
        false
    };
    let ready = tokio::time::timeout(Duration::from_secs(60), ready).await;
    assert_eq!(ready.ok(), Some(true), "the child never said it was ready");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"go\n").await.unwrap();
    stdin.flush().await.unwrap();
    let here = tokio::spawn(claim_all(q.clone(), 25, "parent"));
    let read_claims = async {
        let mut there = Vec::new();
        while let Some(line) = out.next_line().await.unwrap() {
            if let Some((_, id)) = line.split_once(CLAIMED) {
                there.push(id.trim().parse::<TaskId>().unwrap());
            }
        }
        there
    };
    let there = tokio::time::timeout(Duration::from_secs(60), read_claims)
        .await
        .expect("the child finished claiming within a minute");
    assert!(
        child.wait().await.unwrap().success(),
        "the child test failed"
    );
    let here = here.await.unwrap();
    assert!(
        !here.is_empty() && !there.is_empty(),
        "both processes claimed: {} here, {} there",
        here.len(),
        there.len()
    );
    let all: Vec<TaskId> = here.into_iter().chain(there).collect();
    let distinct: HashSet<&TaskId> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "a task was claimed twice");
    assert_eq!(all.len() as u64, tasks, "every task was claimed");
}

/// Two orchestrators on one store: `a` leads and renews every third of the lease;
/// `b` asks as often and is refused. When `a` stops renewing, `b` takes over
/// within two lease periods, and from then on `a` is refused. Time is the logical
/// `now` both pass, as the engine does.
pub(crate) async fn leader_takeover(a: &dyn WorkQueue, b: &dyn WorkQueue) {
    let ttl = Duration::from_secs(30);
    let step = ttl / 3;
    let mut now = T0;
    for _ in 0..12 {
        assert!(
            a.lead("orchestrator-a", ttl, now).await.unwrap(),
            "a renews"
        );
        assert!(
            !b.lead("orchestrator-b", ttl, now).await.unwrap(),
            "two leaders"
        );
        now = now.plus(step);
    }
    // `a` dies: its last renewal was one step ago.
    let last_renewal = Timestamp(now.0 - step.as_millis() as i64);
    while !b.lead("orchestrator-b", ttl, now).await.unwrap() {
        now = now.plus(step);
        assert!(
            now.since(last_renewal) <= ttl * 2,
            "no takeover within two lease periods"
        );
    }
    assert!(
        now.since(last_renewal) >= ttl,
        "taken over before the lease lapsed"
    );
    // `a` comes back: refused while `b` renews.
    for _ in 0..3 {
        now = now.plus(step);
        assert!(b.lead("orchestrator-b", ttl, now).await.unwrap());
        assert!(!a.lead("orchestrator-a", ttl, now).await.unwrap());
    }
}

/// Two orchestrators on one store: `a` claims a task, then `b` changes it. `a`
/// remembers the task as it wrote it, and must not act on that stale copy: its
/// heartbeat hears of `b`'s cancel request, and once `b` ended the lease, `a`'s
/// completion is refused and changes nothing.
pub(crate) async fn changes_by_another_orchestrator_are_seen(a: &dyn WorkQueue, b: &dyn WorkQueue) {
    use scrum_core::{Completion, ErrorKind, TaskState};

    enqueue_many(a, 1).await;
    let w = WorkerId::new("w").unwrap();
    let t = a
        .claim(&w, LeaseKind::Heartbeat, T0)
        .await
        .unwrap()
        .unwrap();
    let token = t.lease().as_ref().unwrap().token;

    b.cancel(&t.id, "issue closed".into(), T0).await.unwrap();
    let reply = a.heartbeat(&t.id, token, T0).await.unwrap();
    assert!(
        reply.cancel,
        "a heartbeat through `a` missed `b`'s cancel request"
    );

    let lapsed = T0.plus(a.policy().lease * 2);
    assert_eq!(b.expire(lapsed).await.unwrap().len(), 1);
    let err = a
        .complete(&t.id, token, Completion::default(), lapsed)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LeaseLost, "{err}");
    let stored = b.get(&t.id).await.unwrap().unwrap();
    assert_eq!(stored.state(), TaskState::Cancelled);
}

/// Calls on one task that arrive together (and may be written together): both
/// completions succeed, the task is completed once, with one `Completed` effect, and
/// the other tasks' heartbeats, sent at the same time, are each stored.
pub(crate) async fn concurrent_calls_on_one_task_take_effect_once(q: Arc<dyn WorkQueue>) {
    use scrum_core::state::EffectKind;
    use scrum_core::{Completion, TaskState};

    enqueue_many(&*q, 8).await;
    let w = WorkerId::new("w").unwrap();
    let mut claimed = Vec::new();
    while let Some(t) = q.claim(&w, LeaseKind::Heartbeat, T0).await.unwrap() {
        claimed.push((t.id.clone(), t.lease().unwrap().token));
    }
    let later = T0.plus(Duration::from_secs(1));
    let (first, token) = claimed[0].clone();
    let completions: Vec<_> = (0..2)
        .map(|_| {
            let (q, id) = (q.clone(), first.clone());
            tokio::spawn(async move { q.complete(&id, token, Completion::default(), later).await })
        })
        .collect();
    let heartbeats: Vec<_> = claimed[1..]
        .iter()
        .map(|(id, token)| {
            let (q, id, token) = (q.clone(), id.clone(), *token);
            tokio::spawn(async move { q.heartbeat(&id, token, later).await })
        })
        .collect();
    for c in completions {
        assert_eq!(c.await.unwrap().unwrap().state(), TaskState::Completed);
    }
    for h in heartbeats {
        let expires = h.await.unwrap().unwrap().lease_expires_at;
        assert_eq!(expires, later.plus(q.policy().lease));
    }
    let completed = q
        .pending_effects(100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| matches!(e.effect.kind, EffectKind::Completed { .. }))
        .count();
    assert_eq!(completed, 1);
    for (id, _) in &claimed[1..] {
        let t = q.get(id).await.unwrap().unwrap();
        assert_eq!(t.lease().unwrap().expires_at, later.plus(q.policy().lease));
    }
}

/// `named` was opened from a URL naming a namespace (a schema, a key prefix);
/// `same` names that namespace through the API and `other` another one. What goes
/// into `named` is seen by `same` only.
pub(crate) async fn url_namespace_keeps_fleets_apart(
    named: &dyn WorkQueue,
    same: &dyn WorkQueue,
    other: &dyn WorkQueue,
) {
    enqueue_many(named, 3).await;
    assert_eq!(same.counts().await.unwrap().pending, 3);
    assert_eq!(other.counts().await.unwrap().pending, 0);
}

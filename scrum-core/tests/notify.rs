//! Notifications through the outbox, on the in-memory backends and tokio's paused
//! clock: recorded with their transition, sent once by the leader in the
//! background, and never holding back a label when their target is dead.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use scrum_core::engine::{Notification, Notifier, Orchestrator};
use scrum_core::memory::{MemoryIssueSource, MemoryQueue};
use scrum_core::state::{NotifyEvent, Policy};
use scrum_core::{Completion, Error, LeaseKind, Result, TaskId, Timestamp, WorkQueue, WorkerId};

/// A notifier that records what it was asked to send, and fails while `dead` (or,
/// for one target, while `down` names it). Its targets are `names`, else `slack`.
#[derive(Default)]
struct Recorder {
    names: Vec<String>,
    sent: Mutex<Vec<Notification>>,
    tries: Mutex<usize>,
    dead: Mutex<bool>,
    down: Mutex<Vec<String>>,
}

#[async_trait]
impl Notifier for Recorder {
    fn targets(&self) -> Vec<String> {
        if self.names.is_empty() {
            return vec!["slack".to_string()];
        }
        self.names.clone()
    }

    async fn send(&self, note: &Notification) -> Result<()> {
        *self.tries.lock().unwrap() += 1;
        if *self.dead.lock().unwrap() || self.down.lock().unwrap().contains(&note.target) {
            return Err(Error::unavailable("the stand-in is down"));
        }
        self.sent.lock().unwrap().push(note.clone());
        Ok(())
    }
}

fn id(n: u64) -> TaskId {
    TaskId::new("acme/widgets", n).unwrap()
}

fn policy() -> Policy {
    Policy {
        notify: NotifyEvent::ALL.to_vec(),
        ..Policy::default()
    }
}

struct Fixture {
    source: Arc<MemoryIssueSource>,
    queue: Arc<MemoryQueue>,
    notifier: Arc<Recorder>,
    orchestrator: Orchestrator,
}

fn fixture(queue: Arc<MemoryQueue>, source: Arc<MemoryIssueSource>) -> Fixture {
    let notifier = Arc::new(Recorder::default());
    let orchestrator = Orchestrator::builder(queue.clone(), source.clone())
        .notifier(notifier.clone())
        .build();
    Fixture {
        source,
        queue,
        notifier,
        orchestrator,
    }
}

fn new_fixture() -> Fixture {
    let source = Arc::new(MemoryIssueSource::new(Default::default()));
    source.open_issue(id(1), "Add a widget", &["ai-ready"], Timestamp(1));
    fixture(Arc::new(MemoryQueue::new(policy())), source)
}

/// Runs the engine's duties (the notification loops among them) for `span`.
async fn run_for(o: &Orchestrator, span: Duration) {
    o.run(tokio::time::sleep(span)).await;
}

async fn claim(o: &Orchestrator) -> scrum_core::Assignment {
    o.next_work(
        &WorkerId::new("w").unwrap(),
        None,
        LeaseKind::Heartbeat,
        Duration::ZERO,
    )
    .await
    .unwrap()
    .expect("a task to claim")
}

/// Queues the issue, claims it, and lets the lease lapse: the reaper ends the
/// attempt as a lost worker.
async fn lose_the_first_worker(o: &Orchestrator) {
    o.poll_once().await.unwrap();
    claim(o).await;
    tokio::time::advance(Duration::from_secs(61)).await;
    o.reap_once().await.unwrap();
}

async fn complete(o: &Orchestrator, a: &scrum_core::Assignment, done: Completion) {
    let w = WorkerId::new("w").unwrap();
    o.complete(&w, &a.task, a.lease_token, done).await.unwrap();
}

fn labels(f: &Fixture) -> Vec<String> {
    f.source.issue(&id(1)).unwrap().labels
}

#[tokio::test(start_paused = true)]
async fn a_lost_worker_and_a_completion_are_each_told_once_after_their_labels() {
    let f = new_fixture();
    lose_the_first_worker(&f.orchestrator).await;
    tokio::time::advance(Duration::from_secs(60)).await;
    let a = claim(&f.orchestrator).await;
    let done = Completion {
        pr_url: Some("https://github.com/acme/widgets/pull/7".into()),
        ..Completion::default()
    };
    complete(&f.orchestrator, &a, done).await;
    run_for(&f.orchestrator, Duration::from_secs(10)).await;

    let sent = f.notifier.sent.lock().unwrap().clone();
    let events: Vec<NotifyEvent> = sent.iter().map(|n| n.event).collect();
    assert_eq!(events, [NotifyEvent::WorkerLost, NotifyEvent::Completed]);
    assert_eq!(
        sent[1].detail.as_deref(),
        Some("https://github.com/acme/widgets/pull/7")
    );
    assert_eq!(
        (sent[1].title.as_str(), sent[1].attempts),
        ("Add a widget", 2)
    );
    assert!(labels(&f).contains(&"ai-completed".to_string()));
    assert!(
        f.queue.pending_effects(100).await.unwrap().is_empty(),
        "all acknowledged"
    );

    // A restarted orchestrator on the same store sends nothing again.
    let again = fixture(f.queue.clone(), f.source.clone());
    run_for(&again.orchestrator, Duration::from_secs(10)).await;
    assert!(again.notifier.sent.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_dead_target_never_holds_back_a_label_and_what_it_missed_is_sent_later() {
    let f = new_fixture();
    *f.notifier.dead.lock().unwrap() = true;
    lose_the_first_worker(&f.orchestrator).await;
    run_for(&f.orchestrator, Duration::from_secs(60)).await;
    // The worker-lost notification fails; the task's next labels land regardless.
    let a = claim(&f.orchestrator).await;
    complete(&f.orchestrator, &a, Completion::default()).await;
    run_for(&f.orchestrator, Duration::from_secs(5)).await;
    assert!(
        labels(&f).contains(&"ai-completed".to_string()),
        "{:?}",
        labels(&f)
    );
    assert!(
        *f.notifier.tries.lock().unwrap() >= 2,
        "the notifier was tried"
    );
    assert!(
        f.queue.failing_effects(100).await.unwrap().is_empty(),
        "a failing notification is not marked failing in the store"
    );
    assert_eq!(f.queue.pending_effects(100).await.unwrap().len(), 2);

    // A crash now (a new orchestrator on the store) with the target back: each
    // notification is sent once, in order.
    let again = fixture(f.queue.clone(), f.source.clone());
    run_for(&again.orchestrator, Duration::from_secs(10)).await;
    let events: Vec<NotifyEvent> = again
        .notifier
        .sent
        .lock()
        .unwrap()
        .iter()
        .map(|n| n.event)
        .collect();
    assert_eq!(events, [NotifyEvent::WorkerLost, NotifyEvent::Completed]);
    assert!(f.queue.pending_effects(100).await.unwrap().is_empty());
}

/// One `Notify` effect is recorded per event, whatever the number of targets; each
/// target gets it, a target that is down does not keep it from the others, and the
/// effect is acknowledged once every target took it.
#[tokio::test(start_paused = true)]
async fn one_notification_goes_to_every_target_and_is_acknowledged_once_all_took_it() {
    let source = Arc::new(MemoryIssueSource::new(Default::default()));
    source.open_issue(id(1), "Add a widget", &["ai-ready"], Timestamp(1));
    let queue = Arc::new(MemoryQueue::new(policy()));
    let notifier = Arc::new(Recorder {
        names: vec!["slack".into(), "webhook".into()],
        down: Mutex::new(vec!["webhook".into()]),
        ..Recorder::default()
    });
    let o = Orchestrator::builder(queue.clone(), source.clone())
        .notifier(notifier.clone())
        .build();
    o.poll_once().await.unwrap();
    let a = claim(&o).await;
    complete(&o, &a, Completion::default()).await;
    run_for(&o, Duration::from_secs(10)).await;
    let sent_to = |r: &Recorder| -> Vec<String> {
        let sent = r.sent.lock().unwrap();
        sent.iter().map(|n| n.target.clone()).collect()
    };
    assert_eq!(
        sent_to(&notifier),
        ["slack"],
        "the target that is up got it"
    );
    let pending = queue.pending_effects(100).await.unwrap();
    let notes = pending.iter().filter(|e| e.effect.kind.name() == "notify");
    assert_eq!(
        notes.count(),
        1,
        "one effect, kept until every target took it"
    );

    notifier.down.lock().unwrap().clear();
    run_for(&o, Duration::from_secs(120)).await;
    assert_eq!(sent_to(&notifier), ["slack", "webhook"], "each once");
    assert!(queue.pending_effects(100).await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn without_events_to_tell_no_notification_is_recorded() {
    let source = Arc::new(MemoryIssueSource::new(Default::default()));
    source.open_issue(id(1), "Add a widget", &["ai-ready"], Timestamp(1));
    let f = fixture(Arc::new(MemoryQueue::new(Policy::default())), source);
    f.orchestrator.poll_once().await.unwrap();
    let a = claim(&f.orchestrator).await;
    complete(&f.orchestrator, &a, Completion::default()).await;
    let kinds: Vec<&str> = f
        .queue
        .pending_effects(100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.effect.kind.name())
        .collect();
    assert_eq!(kinds, ["queued", "completed"]);
}

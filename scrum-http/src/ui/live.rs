//! `GET /ui/events`: server-sent events that tell an open page to fetch its live
//! part again.
//!
//! Every [`TICK`] the stream reads a fingerprint of what the pages show (counts by
//! state, dispatch, leadership, GitHub, each worker's status and task, write-back)
//! and sends a `change` event when it differs from the last one sent, so a change
//! reaches an open page within a tick and a fetch, whichever orchestrator on the
//! store made it. One `change` is sent on connecting, for what changed between the
//! page's render and the stream's start. Streams end when the server shuts down.

use std::collections::hash_map::DefaultHasher;
use std::convert::Infallible;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use scrum_core::engine::Orchestrator;
use tokio::sync::watch;

use crate::server::ApiState;

/// How often a stream looks for a change.
const TICK: Duration = Duration::from_millis(250);

/// A hash of what the dashboard shows; equal hashes mean nothing worth a fetch
/// changed. A store that does not answer is a state of its own.
async fn fingerprint(o: &Orchestrator) -> u64 {
    let mut h = DefaultHasher::new();
    match o.reads().counts().await {
        Ok(c) => serde_json::to_string(&c).unwrap_or_default().hash(&mut h),
        Err(_) => "store unavailable".hash(&mut h),
    }
    let s = o.reads().status();
    (s.paused, s.leader, s.github_connected, &s.github_reason).hash(&mut h);
    if let Ok(workers) = o.reads().workers().await {
        for w in workers {
            let task = w.current_task.map(|t| t.to_string());
            let probe = serde_json::to_string(&w.health).unwrap_or_default();
            (
                w.id,
                format!("{:?}", w.status),
                task,
                probe,
                w.completed,
                w.failed,
            )
                .hash(&mut h);
        }
    }
    if let Ok(writes) = o.reads().write_health().await {
        serde_json::to_string(&writes)
            .unwrap_or_default()
            .hash(&mut h);
    }
    h.finish()
}

struct Watch {
    orchestrator: Orchestrator,
    closing: watch::Receiver<bool>,
    last: Option<u64>,
    seq: u64,
}

fn change(seq: u64) -> Result<Event, Infallible> {
    Ok(Event::default().event("change").data(seq.to_string()))
}

pub(crate) async fn events(
    State(s): State<ApiState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let start = Watch {
        orchestrator: s.orchestrator().clone(),
        closing: s.closing(),
        last: None,
        seq: 0,
    };
    let stream = futures::stream::unfold(start, |mut w| async move {
        if w.last.is_none() {
            w.last = Some(fingerprint(&w.orchestrator).await);
            return Some((change(0), w));
        }
        loop {
            if *w.closing.borrow() {
                return None;
            }
            tokio::select! {
                _ = w.closing.changed() => return None,
                () = tokio::time::sleep(TICK) => {}
            }
            let now = fingerprint(&w.orchestrator).await;
            if Some(now) != w.last {
                w.last = Some(now);
                w.seq += 1;
                let seq = w.seq;
                return Some((change(seq), w));
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

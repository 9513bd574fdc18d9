//! The fake's webhooks: `Issue Hook`, `Merge Request Hook`, `Note Hook` and
//! `Pipeline Hook` deliveries, in GitLab's payload shapes, POSTed with
//! `X-Gitlab-Event` and `X-Gitlab-Token` to the URL of
//! [`super::FakeGitLab::set_webhook`], in the order the changes happened.

use serde_json::{Value, json};

use super::server::{Shared, lock};
use super::state::{Note, State};

fn project(st: &State, key: &str) -> Value {
    let p = &st.projects[key];
    json!({
        "id": p.id,
        "name": p.path.rsplit('/').next().unwrap_or(&p.path),
        "path_with_namespace": p.path,
        "web_url": format!("{}/{}", st.base_url, p.path),
        "default_branch": p.default_branch,
    })
}

/// An `Issue Hook` for issue `iid` (`open`, `update`, `close`, `reopen`).
pub(crate) fn issue(st: &mut State, key: &str, iid: u64, action: &str) {
    if st.hook.is_none() {
        return;
    }
    let p = &st.projects[key];
    let Some(i) = p.issues.get(&iid) else { return };
    let labels: Vec<Value> = i.labels.iter().map(|l| json!({ "title": l })).collect();
    let payload = json!({
        "object_kind": "issue",
        "event_type": "issue",
        "project": project(st, key),
        "object_attributes": {
            "id": i.id,
            "iid": i.iid,
            "title": i.title,
            "description": i.description,
            "state": if i.open { "opened" } else { "closed" },
            "action": action,
        },
        "labels": labels,
    });
    st.hook("Issue Hook", payload);
}

/// A `Note Hook` for a note on issue `iid`.
pub(crate) fn note_on_issue(st: &mut State, key: &str, iid: u64, note: &Note) {
    if st.hook.is_none() {
        return;
    }
    let payload = json!({
        "object_kind": "note",
        "event_type": "note",
        "project": project(st, key),
        "object_attributes": { "id": note.id, "note": note.body, "noteable_type": "Issue" },
        "issue": { "iid": iid },
    });
    st.hook("Note Hook", payload);
}

/// A `Note Hook` for a note on merge request `iid`.
pub(crate) fn note_on_mr(st: &mut State, key: &str, iid: u64, note: &Note) {
    if st.hook.is_none() {
        return;
    }
    let source = st.projects[key].merge_requests[&iid].source.clone();
    let payload = json!({
        "object_kind": "note",
        "event_type": "note",
        "project": project(st, key),
        "object_attributes": { "id": note.id, "note": note.body, "noteable_type": "MergeRequest" },
        "merge_request": { "iid": iid, "source_branch": source },
    });
    st.hook("Note Hook", payload);
}

/// A `Merge Request Hook` for merge request `iid` (`open`, `update`, `merge`,
/// `close`, `approved`).
pub(crate) fn merge_request(st: &mut State, key: &str, iid: u64, action: &str) {
    if st.hook.is_none() {
        return;
    }
    let m = &st.projects[key].merge_requests[&iid];
    let payload = json!({
        "object_kind": "merge_request",
        "event_type": "merge_request",
        "project": project(st, key),
        "object_attributes": {
            "id": m.id,
            "iid": m.iid,
            "source_branch": m.source,
            "target_branch": m.target,
            "state": m.state,
            "action": action,
        },
    });
    st.hook("Merge Request Hook", payload);
}

/// A `Pipeline Hook` for merge request `iid`'s head pipeline.
pub(crate) fn pipeline(st: &mut State, key: &str, iid: u64) {
    if st.hook.is_none() {
        return;
    }
    let m = &st.projects[key].merge_requests[&iid];
    let Some(pl) = &m.pipeline else { return };
    let payload = json!({
        "object_kind": "pipeline",
        "project": project(st, key),
        "object_attributes": {
            "id": pl.id,
            "ref": m.source,
            "sha": m.sha,
            "status": super::json::pipeline_status(pl),
        },
        "merge_request": { "iid": m.iid, "source_branch": m.source },
    });
    st.hook("Pipeline Hook", payload);
}

/// Sends each delivery [`State::hook`] queues, one after another, for as long
/// as the fake runs.
pub(crate) async fn deliver(
    shared: Shared,
    mut queue: tokio::sync::mpsc::UnboundedReceiver<super::state::PendingHook>,
) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    while let Some(hook) = queue.recv().await {
        let Some((url, secret)) = lock(&shared).hook.clone() else {
            continue;
        };
        let status = client
            .post(&url)
            .header("X-Gitlab-Event", hook.event)
            .header("X-Gitlab-Token", &secret)
            .json(&hook.payload)
            .send()
            .await
            .map_or(0, |r| r.status().as_u16());
        lock(&shared)
            .deliveries
            .push((hook.event.to_string(), status));
    }
}

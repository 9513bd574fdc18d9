//! Webhook deliveries from the fake: the events follow-ups answer to
//! (`check_run`, `check_suite`, `status`, `issue_comment`,
//! `pull_request_review_comment`, `pull_request` synchronize), signed with the
//! hook's secret as GitHub signs them (`X-Hub-Signature-256`), POSTed to each
//! hook [`FakeGitHub::deliver_to`] added. Deliveries are queued while the state is
//! locked and sent after, each on its own task.

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::FakeGitHub;
use super::check_routes::pulls_at;
use super::checks::StoredRun;
use super::hooks::FakeHook;
use super::server::{Shared, lock};
use super::state::{FakeComment, FakeReviewComment, State};
use crate::webhook::{WebhookSecret, sign};

/// One delivery waiting to be sent.
#[derive(Clone, Debug)]
pub(crate) struct Delivery {
    repo: String,
    hook: u64,
    url: String,
    secret: String,
    event: String,
    body: String,
}

impl FakeGitHub {
    /// Adds a webhook to `repo` that delivers the events the fake sends to `url`
    /// (an `http://` address), signed with `secret`; returns its id.
    ///
    /// # Panics
    /// When the repository was not added.
    pub fn deliver_to(&self, repo: &str, url: &str, secret: &str) -> u64 {
        let mut st = lock(&self.state);
        let id = st.fresh_id();
        let r = st.repo_mut(repo).expect("add_repo first");
        r.hooks.push(FakeHook {
            id,
            url: url.to_string(),
            has_secret: true,
            last_status: None,
        });
        r.delivering.insert(id, secret.to_string());
        id
    }

    /// The deliveries sent so far, in order: (event, the receiver's HTTP status;
    /// 0 when it could not be reached).
    pub fn deliveries(&self) -> Vec<(String, u16)> {
        lock(&self.state).delivered.clone()
    }

    /// Sends the deliveries queued by the last change.
    pub(crate) fn flush_deliveries(&self) {
        flush(&self.state);
    }
}

/// Queues `event` with `payload` (the repository added) for every delivering hook
/// of `repo`.
fn queue(st: &mut State, repo: &str, event: &str, mut payload: Value) {
    let Some(r) = st.repo(repo) else {
        return;
    };
    payload["repository"] =
        json!({ "id": r.id, "full_name": r.full_name, "name": r.full_name.split('/').nth(1) });
    payload["sender"] = json!({ "login": super::MAINTAINER, "type": "User" });
    let body = payload.to_string();
    let mut out = Vec::new();
    for h in &r.hooks {
        if let Some(secret) = r.delivering.get(&h.id) {
            out.push(Delivery {
                repo: repo.to_string(),
                hook: h.id,
                url: h.url.clone(),
                secret: secret.clone(),
                event: event.to_string(),
                body: body.clone(),
            });
        }
    }
    st.outbox.extend(out);
}

fn pulls_json(numbers: &[u64]) -> Value {
    Value::Array(numbers.iter().map(|n| json!({ "number": n })).collect())
}

/// A check run was reported.
pub(crate) fn check_run(st: &mut State, repo: &str, run: &StoredRun) {
    let pulls = pulls_at(st, repo, &run.sha);
    let action = if run.check.status == "completed" {
        "completed"
    } else {
        "created"
    };
    let payload = json!({
        "action": action,
        "check_run": {
            "id": run.id, "name": run.check.name, "head_sha": run.sha,
            "status": run.check.status, "conclusion": run.check.conclusion,
            "pull_requests": pulls_json(&pulls)
        }
    });
    queue(st, repo, "check_run", payload);
}

/// Continuous integration finished on a commit.
pub(crate) fn check_suite(st: &mut State, repo: &str, sha: &str) {
    let pulls = pulls_at(st, repo, sha);
    let payload = json!({
        "action": "completed",
        "check_suite": { "head_sha": sha, "status": "completed", "pull_requests": pulls_json(&pulls) }
    });
    queue(st, repo, "check_suite", payload);
}

/// A commit status was set (GitHub's payload names the commit, not a pull request).
pub(crate) fn status(st: &mut State, repo: &str, sha: &str, context: &str, state: &str) {
    let payload = json!({ "sha": sha, "context": context, "state": state, "branches": [] });
    queue(st, repo, "status", payload);
}

/// A conversation comment on pull request `number`.
pub(crate) fn issue_comment(st: &mut State, repo: &str, number: u64, c: &FakeComment) {
    let payload = json!({
        "action": "created",
        "issue": { "number": number, "pull_request": { "url": format!("{}/repos/{repo}/pulls/{number}", st.base_url) } },
        "comment": { "id": c.id, "body": c.body, "user": { "login": c.author, "type": "User" } }
    });
    queue(st, repo, "issue_comment", payload);
}

/// A review comment on pull request `number`.
pub(crate) fn review_comment(st: &mut State, repo: &str, number: u64, c: &FakeReviewComment) {
    let payload = json!({
        "action": "created",
        "pull_request": { "number": number },
        "comment": { "id": c.id, "body": c.body, "path": c.path, "line": c.line,
                     "user": { "login": c.author, "type": "User" } }
    });
    queue(st, repo, "pull_request_review_comment", payload);
}

/// New commits on pull request `number`'s branch.
pub(crate) fn pull_synchronized(st: &mut State, repo: &str, number: u64) {
    let payload =
        json!({ "action": "synchronize", "number": number, "pull_request": { "number": number } });
    queue(st, repo, "pull_request", payload);
}

/// Sends every queued delivery, each on its own task of the current runtime
/// (none outside one: they are dropped).
pub(crate) fn flush(shared: &Shared) {
    let out = std::mem::take(&mut lock(shared).outbox);
    if out.is_empty() {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let shared = shared.clone();
    runtime.spawn(async move {
        // In order: a receiver sees events as they happened.
        for d in out {
            let status = send(&d).await.unwrap_or(0);
            let mut st = lock(&shared);
            st.delivered.push((d.event.clone(), status));
            if let Some(h) = st
                .repo_mut(&d.repo)
                .and_then(|r| r.hooks.iter_mut().find(|h| h.id == d.hook))
            {
                h.last_status = Some(status);
            }
        }
    });
}

/// POSTs one delivery over HTTP/1.1; the status it was answered with.
async fn send(d: &Delivery) -> Option<u16> {
    let rest = d.url.strip_prefix("http://")?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let secret = WebhookSecret::new(&d.secret).ok()?;
    let signature = sign(&secret, d.body.as_bytes());
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         User-Agent: GitHub-Hookshot/fake\r\nX-GitHub-Event: {}\r\nX-GitHub-Delivery: {}\r\n\
         X-Hub-Signature-256: {signature}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        d.event,
        fastrand::u64(..),
        d.body.len()
    );
    let connect = tokio::net::TcpStream::connect(host);
    let mut stream = tokio::time::timeout(std::time::Duration::from_secs(5), connect)
        .await
        .ok()?
        .ok()?;
    stream.write_all(request.as_bytes()).await.ok()?;
    stream.write_all(d.body.as_bytes()).await.ok()?;
    let mut head = Vec::new();
    let mut buf = [0u8; 256];
    let read = async {
        while !head.windows(2).any(|w| w == b"\r\n") {
            let n = stream.read(&mut buf).await.ok()?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Some(())
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), read)
        .await
        .ok()??;
    let line = String::from_utf8_lossy(&head);
    line.split_whitespace().nth(1)?.parse().ok()
}

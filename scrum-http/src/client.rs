//! [`OrchestratorClient`]: the orchestrator's API over reqwest (rustls), for workers
//! and tools. It implements [`WorkSource`], so the core worker loop runs on it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, RequestBuilder, StatusCode};
use scrum_core::worker::WorkSource;
use scrum_core::{
    Assignment, Clarification, Completion, Error, ErrorKind, Failure, HeartbeatReply, LeaseToken,
    ReadyIssue, RepoToken, Result, TaskId, Timestamp, WorkerId,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::ApiToken;
use crate::wire::{
    ActionResponse, ClarifyRequest, CompleteRequest, DrainRequest, EffectState, EffectsResponse,
    EffectsRetryRequest, EffectsRetryResponse, ErrorBody, FailedRequest, HealthResponse,
    HeartbeatRequest, HeartbeatResponse, LeaseMode, NextQuery, NextResponse, QueueQuery,
    QueueResponse, ReleaseRequest, ReportResponse, TaskAction, TaskRef, WorkItem, WorkersResponse,
};

/// Whether a call may be sent again after a failure whose outcome is unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Retry {
    /// Reads, and reports carrying a lease token (the server applies a repeat once).
    Safe,
    /// Only when the request surely did not take effect (connect errors, 503).
    IfNotSent,
}

/// A client of the orchestrator's HTTP API.
///
/// Transient failures (connection refused or reset, timeouts, 429, 502, 503, 504)
/// are retried with exponential backoff, honouring `Retry-After`. Reads and reports
/// that carry a lease token are retried even when the first try may have arrived
/// (a repeated completion takes effect once); operator actions only when the
/// request surely did not. Every request has a timeout; `/work/next` gets its
/// long-poll wait on top.
///
/// ```no_run
/// # async fn run() -> scrum_core::Result<()> {
/// use std::time::Duration;
/// use scrum_http::{OrchestratorClient, wire::LeaseMode};
/// let client = OrchestratorClient::new("http://127.0.0.1:8000")?;
/// if let Some(work) = client.next_work("worker-1", Duration::from_secs(25), LeaseMode::Heartbeat).await? {
///     println!("working on {}", work.task_id);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct OrchestratorClient {
    http: reqwest::Client,
    base: Arc<str>,
    token: Option<ApiToken>,
    attempts: u32,
    backoff: Duration,
    timeout: Duration,
    sandbox: Option<scrum_core::AgentSandbox>,
}

impl std::fmt::Debug for OrchestratorClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrchestratorClient")
            .field("base", &self.base)
            .field("token", &self.token)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

impl OrchestratorClient {
    /// A client of the API at `base_url` (`http://host:port`, no trailing path).
    pub fn new(base_url: &str) -> Result<OrchestratorClient> {
        let base = base_url.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::invalid(format!(
                "ORCHESTRATOR_URL {base_url:?} must start with http:// or https://"
            )));
        }
        // reqwest is built without a default TLS provider: use ring, the one stack
        // of the workspace. Installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| Error::invalid("could not build the HTTP client").with_source(e))?;
        Ok(OrchestratorClient {
            http,
            base: Arc::from(base),
            token: None,
            attempts: 6,
            backoff: Duration::from_millis(200),
            timeout: Duration::from_secs(30),
            sandbox: None,
        })
    }

    /// Sends `Authorization: Bearer <token>` with every call.
    pub fn with_token(mut self, token: ApiToken) -> OrchestratorClient {
        self.token = Some(token);
        self
    }

    /// How many times a call is tried in all (default 6), and the first pause
    /// between tries (default 200 ms, doubling up to 5 s).
    pub fn with_retries(mut self, attempts: u32, first_backoff: Duration) -> OrchestratorClient {
        self.attempts = attempts.max(1);
        self.backoff = first_backoff;
        self
    }

    /// Says with every `GET /work/next` that this worker runs its agents in
    /// `sandbox`, so `GET /workers` shows it.
    pub fn with_sandbox(mut self, sandbox: scrum_core::AgentSandbox) -> OrchestratorClient {
        self.sandbox = Some(sandbox);
        self
    }

    /// The timeout of one request, not counting a long poll's wait (default 30 s).
    pub fn with_timeout(mut self, timeout: Duration) -> OrchestratorClient {
        self.timeout = timeout;
        self
    }

    /// `GET /health`.
    pub async fn health(&self) -> Result<HealthResponse> {
        self.call(Method::GET, "/health", None::<&()>, &[], Retry::Safe, None)
            .await
    }

    /// `GET /work/next`: the next task for `worker`, waiting up to `wait` for one.
    pub async fn next_work(
        &self,
        worker: &str,
        wait: Duration,
        lease: LeaseMode,
    ) -> Result<Option<WorkItem>> {
        let r = self.next_response(worker, wait, lease).await?;
        Ok(r.work.filter(|_| r.work_available))
    }

    /// `GET /scaling`: the figures an autoscaler reads.
    pub async fn scaling(&self) -> Result<scrum_core::engine::Scaling> {
        self.call(Method::GET, "/scaling", None::<&()>, &[], Retry::Safe, None)
            .await
    }

    /// `GET /pr-review/status`: review gating's settings, what it holds and why,
    /// and the tracked pull requests.
    pub async fn review_status(&self) -> Result<crate::wire::ReviewStatusResponse> {
        self.call(
            Method::GET,
            "/pr-review/status",
            None::<&()>,
            &[],
            Retry::Safe,
            None,
        )
        .await
    }

    /// `POST /pr-review/{state}/{number}`: an operator's word on a tracked pull
    /// request's review state (`approved`, `changes-requested` or `merged`), with
    /// its repository when several tracked ones have that number, and with
    /// `changes-requested`, the feedback for a rework (`REWORK_ON_CHANGES_REQUESTED`).
    pub async fn mark_pull(
        &self,
        state: &str,
        number: u64,
        repository: Option<&str>,
        feedback: Option<&str>,
    ) -> Result<crate::wire::PullReviewResponse> {
        let mut query = Vec::new();
        if let Some(r) = repository {
            query.push(("repository".to_string(), r.to_string()));
        }
        if let Some(f) = feedback {
            query.push(("feedback".to_string(), f.to_string()));
        }
        let path = format!("/pr-review/{state}/{number}");
        self.call(
            Method::POST,
            &path,
            None::<&()>,
            &query,
            Retry::IfNotSent,
            None,
        )
        .await
    }

    /// `GET /work/next` as answered: the work, or why there is none
    /// (`blocked` and `reason` while review gating holds work back).
    pub async fn next_response(
        &self,
        worker: &str,
        wait: Duration,
        lease: LeaseMode,
    ) -> Result<NextResponse> {
        let q = NextQuery {
            worker_id: worker.to_string(),
            wait: Some(wait.as_secs()),
            lease: Some(lease),
            sandbox: self.sandbox,
        };
        let query = serde_json::to_value(&q).unwrap_or(Value::Null);
        let pairs: Vec<(String, String)> = query
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str().map_or_else(|| v.to_string(), str::to_string),
                )
            })
            .collect();
        // Claiming is not idempotent: a claim whose answer was lost holds a task
        // until its lease lapses. Retry only what surely did not arrive.
        let r: NextResponse = self
            .call(
                Method::GET,
                "/work/next",
                None::<&()>,
                &pairs,
                Retry::IfNotSent,
                Some(wait),
            )
            .await?;
        Ok(r)
    }

    /// `POST /work/complete`.
    pub async fn complete(&self, req: &CompleteRequest) -> Result<ReportResponse> {
        self.report("/work/complete", req, &req.task).await
    }

    /// `POST /work/failed`.
    pub async fn failed(&self, req: &FailedRequest) -> Result<ReportResponse> {
        self.report("/work/failed", req, &req.task).await
    }

    /// `POST /work/heartbeat`.
    pub async fn heartbeat(&self, req: &HeartbeatRequest) -> Result<HeartbeatResponse> {
        self.report("/work/heartbeat", req, &req.task).await
    }

    /// `POST /work/clarify`.
    pub async fn clarify_task(&self, req: &ClarifyRequest) -> Result<ReportResponse> {
        self.report("/work/clarify", req, &req.task).await
    }

    /// `POST /work/release`.
    pub async fn release(&self, req: &ReleaseRequest) -> Result<ReportResponse> {
        self.report("/work/release", req, &req.task).await
    }

    async fn report<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        task: &TaskRef,
    ) -> Result<T> {
        let retry = if task.lease_token.is_some() && task.repository.is_some() {
            Retry::Safe
        } else {
            Retry::IfNotSent
        };
        self.call(Method::POST, path, Some(body), &[], retry, None)
            .await
    }

    /// `GET /workers`.
    pub async fn workers(&self) -> Result<WorkersResponse> {
        self.call(Method::GET, "/workers", None::<&()>, &[], Retry::Safe, None)
            .await
    }

    /// `GET /queue`: one page (`limit` entries from `offset`) of each state's list.
    pub async fn queue(&self, page: &QueueQuery) -> Result<QueueResponse> {
        let mut pairs = Vec::new();
        if let Some(l) = page.limit {
            pairs.push(("limit".to_string(), l.to_string()));
        }
        if let Some(o) = page.offset {
            pairs.push(("offset".to_string(), o.to_string()));
        }
        self.call(
            Method::GET,
            "/queue",
            None::<&()>,
            &pairs,
            Retry::Safe,
            None,
        )
        .await
    }

    /// `POST /admin/pause`.
    pub async fn pause(&self) -> Result<ActionResponse> {
        self.action("/admin/pause", None::<&()>).await
    }

    /// `POST /admin/resume`.
    pub async fn resume(&self) -> Result<ActionResponse> {
        self.action("/admin/resume", None::<&()>).await
    }

    /// `POST /admin/drain`.
    pub async fn drain(&self, worker: &str, draining: bool) -> Result<ActionResponse> {
        let body = DrainRequest {
            worker_id: worker.to_string(),
            draining: Some(draining),
        };
        self.action("/admin/drain", Some(&body)).await
    }

    /// `POST /admin/retry`.
    pub async fn retry(&self, task: &TaskId) -> Result<ActionResponse> {
        let body = TaskAction {
            repository: task.repo().to_string(),
            issue_number: task.number(),
            reason: None,
        };
        self.action("/admin/retry", Some(&body)).await
    }

    /// `POST /admin/cancel`.
    pub async fn cancel(&self, task: &TaskId, reason: &str) -> Result<ActionResponse> {
        let body = TaskAction {
            repository: task.repo().to_string(),
            issue_number: task.number(),
            reason: Some(reason.to_string()),
        };
        self.action("/admin/cancel", Some(&body)).await
    }

    /// `GET /admin/effects`: the failing GitHub effects (only the set-aside ones with
    /// `state: Dead`).
    pub async fn effects(&self, state: Option<EffectState>) -> Result<EffectsResponse> {
        let query: Vec<(String, String)> = state
            .iter()
            .map(|s| {
                let name = match s {
                    EffectState::Failing => "failing",
                    EffectState::Dead => "dead",
                };
                ("state".to_string(), name.to_string())
            })
            .collect();
        self.call(
            Method::GET,
            "/admin/effects",
            None::<&()>,
            &query,
            Retry::Safe,
            None,
        )
        .await
    }

    /// `POST /admin/effects/retry`: tries set-aside effects again.
    pub async fn retry_effects(&self, which: &EffectsRetryRequest) -> Result<EffectsRetryResponse> {
        self.call(
            Method::POST,
            "/admin/effects/retry",
            Some(which),
            &[],
            Retry::IfNotSent,
            None,
        )
        .await
    }

    async fn action<B: Serialize>(&self, path: &str, body: Option<&B>) -> Result<ActionResponse> {
        self.call(Method::POST, path, body, &[], Retry::IfNotSent, None)
            .await
    }

    /// `GET /metrics`: the Prometheus text.
    pub async fn metrics(&self) -> Result<String> {
        let resp = self
            .send(Method::GET, "/metrics", None::<&()>, &[], Retry::Safe, None)
            .await?;
        resp.text()
            .await
            .map_err(|e| Error::unavailable("reading /metrics failed").with_source(e))
    }

    /// `GET /openapi.json`.
    pub async fn openapi(&self) -> Result<Value> {
        self.call(
            Method::GET,
            "/openapi.json",
            None::<&()>,
            &[],
            Retry::Safe,
            None,
        )
        .await
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        query: &[(String, String)],
        retry: Retry,
        wait: Option<Duration>,
    ) -> Result<T> {
        let resp = self.send(method, path, body, query, retry, wait).await?;
        let bytes = resp.bytes().await.map_err(|e| {
            Error::unavailable(format!("reading the answer of {path} failed")).with_source(e)
        })?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("the answer of {path} is not what the API describes"),
            )
            .with_source(e)
        })
    }

    /// Sends until a success, a non-transient error, or the last try.
    async fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        query: &[(String, String)],
        retry: Retry,
        wait: Option<Duration>,
    ) -> Result<reqwest::Response> {
        let mut delay = self.backoff;
        let mut attempt = 1;
        loop {
            let mut url = reqwest::Url::parse(&format!("{}{path}", self.base))
                .map_err(|e| Error::invalid(format!("bad URL for {path}")).with_source(e))?;
            if !query.is_empty() {
                url.query_pairs_mut().extend_pairs(query);
            }
            let mut req: RequestBuilder = self
                .http
                .request(method.clone(), url)
                .timeout(self.timeout + wait.unwrap_or_default());
            if let Some(b) = body {
                req = req.json(b);
            }
            if let Some(t) = &self.token {
                req = req.bearer_auth(t.expose());
            }
            let (err, may_retry) = match req.send().await {
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp) => {
                    let status = resp.status();
                    let after = retry_after(&resp);
                    let err = api_error(path, status, resp.bytes().await.ok().as_deref());
                    let err = match after {
                        Some(a) => err.with_retry_after(a),
                        None => err,
                    };
                    let transient = match status {
                        StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => true,
                        StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT => {
                            retry == Retry::Safe
                        }
                        _ => false,
                    };
                    (err, transient)
                }
                Err(e) => {
                    let not_sent = e.is_connect();
                    let kind = if e.is_timeout() {
                        ErrorKind::Timeout
                    } else {
                        ErrorKind::Unavailable
                    };
                    let err = Error::new(kind, format!("{method} {path} failed")).with_source(e);
                    (err, not_sent || retry == Retry::Safe)
                }
            };
            if !may_retry || attempt >= self.attempts {
                return Err(err);
            }
            let pause = err
                .retry_after()
                .unwrap_or(delay)
                .min(Duration::from_secs(30));
            tracing::debug!(path, attempt, error = %err, ?pause, "retrying");
            tokio::time::sleep(pause).await;
            delay = (delay * 2).min(Duration::from_secs(5));
            attempt += 1;
        }
    }
}

fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// The core error for an error answer, by its `code` (or its status when the body
/// is not the API's).
fn api_error(path: &str, status: StatusCode, body: Option<&[u8]>) -> Error {
    let parsed = body.and_then(|b| serde_json::from_slice::<ErrorBody>(b).ok());
    let (code, message) = match &parsed {
        Some(e) => (e.error.code.as_str(), e.error.message.clone()),
        None => ("", format!("{path} answered {status}")),
    };
    let kind = match code {
        "lease_lost" => ErrorKind::LeaseLost,
        "not_found" => ErrorKind::NotFound,
        "invalid_request" | "malformed_json" | "invalid_query" | "payload_too_large" => {
            ErrorKind::Invalid
        }
        "invalid_transition" => ErrorKind::InvalidTransition,
        "conflict" => ErrorKind::Conflict,
        "unauthorized" => ErrorKind::Unauthorized,
        "forbidden" => ErrorKind::Forbidden,
        "rate_limited" => ErrorKind::RateLimited,
        "unavailable" => ErrorKind::Unavailable,
        _ => match status {
            StatusCode::UNAUTHORIZED => ErrorKind::Unauthorized,
            StatusCode::FORBIDDEN => ErrorKind::Forbidden,
            StatusCode::NOT_FOUND => ErrorKind::NotFound,
            StatusCode::CONFLICT => ErrorKind::Conflict,
            StatusCode::TOO_MANY_REQUESTS => ErrorKind::RateLimited,
            StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE => ErrorKind::Unavailable,
            StatusCode::GATEWAY_TIMEOUT => ErrorKind::Timeout,
            s if s.is_client_error() => ErrorKind::Invalid,
            _ => ErrorKind::Internal,
        },
    };
    Error::new(kind, message)
}

/// The assignment a [`WorkItem`] describes.
pub fn assignment(item: &WorkItem) -> Result<Assignment> {
    let task: TaskId = item.task_id.parse()?;
    let lease_token: LeaseToken = item.lease_token.parse()?;
    let heartbeat_interval = Duration::try_from_secs_f64(item.heartbeat_interval_secs)
        .ok()
        .filter(|d| !d.is_zero())
        .unwrap_or(Duration::from_secs(20));
    Ok(Assignment {
        issue: Arc::new(ReadyIssue {
            id: task.clone(),
            title: item.title.clone(),
            body: item.body.clone(),
            labels: item.labels.clone(),
            // The API does not send the issue's age: it only orders the queue.
            created_at: Timestamp(0),
        }),
        task,
        branch_name: item.branch_name.clone(),
        lease_token,
        lease_expires_at: Timestamp(item.lease_expires_at_ms),
        attempt: item.attempt,
        max_attempts: item.max_attempts,
        heartbeat_interval,
        text_digest: item.text_digest.clone(),
        budget_left_usd: item.budget_left_usd,
        follow_up: item.follow_up.clone(),
        repo_token: match (&item.github_token, item.github_token_expires_at_ms) {
            (Some(t), Some(at)) => Some(RepoToken::new(t, Timestamp(at))?),
            _ => None,
        },
    })
}

fn task_ref(worker: &WorkerId, a: &Assignment) -> TaskRef {
    TaskRef {
        worker_id: worker.to_string(),
        issue_number: a.task.number(),
        repository: Some(a.task.repo().to_string()),
        lease_token: Some(a.lease_token.to_string()),
    }
}

#[async_trait]
impl WorkSource for OrchestratorClient {
    async fn next(&self, worker: &WorkerId, wait: Duration) -> Result<Option<Assignment>> {
        match self
            .next_work(worker.as_str(), wait, LeaseMode::Heartbeat)
            .await?
        {
            Some(item) => assignment(&item).map(Some),
            None => Ok(None),
        }
    }

    async fn heartbeat(&self, worker: &WorkerId, a: &Assignment) -> Result<HeartbeatReply> {
        let r = OrchestratorClient::heartbeat(
            self,
            &HeartbeatRequest {
                task: task_ref(worker, a),
            },
        )
        .await?;
        Ok(HeartbeatReply {
            lease_expires_at: Timestamp(r.lease_expires_at_ms),
            cancel: r.cancel,
        })
    }

    async fn complete(&self, worker: &WorkerId, a: &Assignment, c: Completion) -> Result<()> {
        let req = CompleteRequest {
            task: task_ref(worker, a),
            pr_url: c.pr_url,
            success: true,
            error: None,
            cost_usd: c.cost_usd,
            tokens: c.tokens,
            revisions: c.revisions,
        };
        OrchestratorClient::complete(self, &req).await.map(|_| ())
    }

    async fn fail(&self, worker: &WorkerId, a: &Assignment, f: Failure) -> Result<()> {
        let req = FailedRequest {
            task: task_ref(worker, a),
            error: f.reason,
            retryable: Some(f.retryable),
            cost_usd: f.cost_usd,
            tokens: f.tokens,
        };
        self.failed(&req).await.map(|_| ())
    }

    async fn clarify(&self, worker: &WorkerId, a: &Assignment, c: Clarification) -> Result<()> {
        let req = ClarifyRequest {
            task: task_ref(worker, a),
            // The API refuses a blank question (it asks nobody anything); an agent's
            // answer may hold one beside real ones.
            questions: c
                .questions
                .into_iter()
                .filter(|q| !q.trim().is_empty())
                .collect(),
            reasoning: Some(c.reasoning).filter(|r| !r.is_empty()),
            cost_usd: c.cost_usd,
            tokens: c.tokens,
        };
        self.clarify_task(&req).await.map(|_| ())
    }

    async fn release(&self, worker: &WorkerId, a: &Assignment, reason: &str) -> Result<()> {
        let req = ReleaseRequest {
            task: task_ref(worker, a),
            reason: Some(reason.to_string()),
        };
        OrchestratorClient::release(self, &req).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_map_back_to_kinds() {
        let body = br#"{"error":{"code":"lease_lost","message":"gone"}}"#;
        let e = api_error("/work/complete", StatusCode::CONFLICT, Some(body));
        assert_eq!(e.kind(), ErrorKind::LeaseLost);
        assert_eq!(e.message(), "gone");
        let e = api_error("/x", StatusCode::BAD_GATEWAY, Some(b"<html>"));
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.is_retryable());
    }

    #[test]
    fn urls_must_be_http() {
        assert!(OrchestratorClient::new("127.0.0.1:8000").is_err());
        assert!(OrchestratorClient::new("http://127.0.0.1:8000/").is_ok());
    }

    #[test]
    fn debug_hides_the_token() {
        let c = OrchestratorClient::new("http://127.0.0.1:1")
            .unwrap()
            .with_token(ApiToken::new("topsecret-topsecret").unwrap());
        assert!(!format!("{c:?}").contains("topsecret"));
    }
}

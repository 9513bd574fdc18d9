//! The work endpoints: `/work/next`, `/work/complete`, `/work/failed`,
//! `/work/heartbeat`, `/work/release`, `/work/clarify`.
//!
//! A report names its task by worker, issue number and, optionally, repository and
//! lease token. With a token the queue checks it (a stale one is `409 lease_lost`);
//! without one (a client of the Python orchestrator's API) the report goes to the task the worker holds for
//! that issue.

use std::time::Duration;

use axum::Json;
use axum::extract::{Extension, State};
use scrum_core::engine::ReportRef;
use scrum_core::{
    Assignment, Clarification, Completion, ErrorKind, Failure, LeaseKind, LeaseToken, RepoToken,
    Task, TaskId, WorkerId,
};

use super::ApiState;
use super::extract::{JsonBody, QueryArgs};
use super::guard::Peer;
use crate::error::ApiError;
use crate::wire::{
    ClarifyRequest, CompleteRequest, FailedRequest, HeartbeatRequest, HeartbeatResponse, LeaseMode,
    NextQuery, NextResponse, ReleaseRequest, ReportResponse, TaskRef, WorkItem,
};

pub(super) async fn next(
    State(s): State<ApiState>,
    Extension(peer): Extension<Peer>,
    QueryArgs(q): QueryArgs<NextQuery>,
) -> Result<Json<NextResponse>, ApiError> {
    let worker = WorkerId::new(&q.worker_id)?;
    // The OpenAPI document gives the engine's cap as the maximum: more is refused,
    // not cut short, so a client never waits on a promise the server will not keep.
    let max_wait = s.orchestrator().config().max_wait.as_secs();
    let wait = q.wait.unwrap_or(0);
    if wait > max_wait {
        return Err(ApiError::invalid(format!(
            "wait must be at most {max_wait} (seconds: the longest this server long-polls)"
        )));
    }
    let wait = Duration::from_secs(wait);
    let lease = match q.lease {
        Some(LeaseMode::Heartbeat) => LeaseKind::Heartbeat,
        Some(LeaseMode::RunTime) | None => LeaseKind::RunTime,
    };
    if let Some(sandbox) = q.sandbox {
        s.orchestrator().record_sandbox(&worker, sandbox).await?;
    }
    let got = s
        .orchestrator()
        .next_work(&worker, peer.0, lease, wait)
        .await?;
    let m = s.metrics();
    Ok(Json(match got {
        Some(mut a) => {
            m.claims.inc();
            a.repo_token = repo_token(&s, &a).await;
            NextResponse {
                work_available: true,
                work: Some(work_item(&a)),
                blocked: false,
                reason: None,
            }
        }
        None => {
            m.empty_polls.inc();
            let gate = s.orchestrator().reads().pull_gate();
            NextResponse {
                work_available: false,
                work: None,
                blocked: gate.holds_anything(),
                reason: gate.reason(),
            }
        }
    }))
}

/// A token for the task's repository, when the orchestrator hands them out. A
/// failure to mint one is logged and the work goes out without: the worker then
/// pushes with its own token, if it has one, or fails the attempt saying why.
async fn repo_token(s: &ApiState, a: &Assignment) -> Option<RepoToken> {
    let credentials = s.config().credentials.as_ref()?;
    match credentials.token_for(&a.task.repo_name()).await {
        Ok(token) => token,
        Err(e) => {
            tracing::warn!(task = %a.task, error = %e, "could not get a token for the task's repository");
            None
        }
    }
}

pub(crate) fn work_item(a: &Assignment) -> WorkItem {
    WorkItem {
        issue_number: a.task.number(),
        title: a.issue.title.clone(),
        body: a.issue.body.clone(),
        labels: a.issue.labels.clone(),
        branch_name: a.branch_name.clone(),
        repository: a.task.repo().to_string(),
        task_id: a.task.to_string(),
        lease_token: a.lease_token.to_string(),
        lease_expires_at: a.lease_expires_at.to_rfc3339(),
        lease_expires_at_ms: a.lease_expires_at.0,
        attempt: a.attempt,
        max_attempts: a.max_attempts,
        heartbeat_interval_secs: a.heartbeat_interval.as_secs_f64(),
        text_digest: a.text_digest.clone(),
        budget_left_usd: a.budget_left_usd,
        follow_up: a.follow_up.clone(),
        github_token: a.repo_token.as_ref().map(|t| t.expose().to_string()),
        github_token_expires_at: a.repo_token.as_ref().map(|t| t.expires_at.to_rfc3339()),
        github_token_expires_at_ms: a.repo_token.as_ref().map(|t| t.expires_at.0),
    }
}

pub(super) async fn complete(
    State(s): State<ApiState>,
    JsonBody(req): JsonBody<CompleteRequest>,
) -> Result<Json<ReportResponse>, ApiError> {
    check_cost(req.cost_usd)?;
    let (worker, id, token) = resolve(&s, &req.task).await?;
    let o = s.orchestrator();
    let result = if req.success {
        let completion = Completion {
            pr_url: req.pr_url,
            cost_usd: req.cost_usd,
            tokens: req.tokens,
            revisions: req.revisions,
        };
        o.complete(&worker, &id, token, completion).await
    } else {
        let failure = Failure {
            reason: req
                .error
                .unwrap_or_else(|| "the worker reported success: false".to_string()),
            retryable: true,
            cost_usd: req.cost_usd,
            tokens: req.tokens,
        };
        o.fail(&worker, &id, token, failure).await
    };
    reported(&s, result)
}

pub(super) async fn failed(
    State(s): State<ApiState>,
    JsonBody(req): JsonBody<FailedRequest>,
) -> Result<Json<ReportResponse>, ApiError> {
    check_cost(req.cost_usd)?;
    let (worker, id, token) = resolve(&s, &req.task).await?;
    let failure = Failure {
        reason: req.error,
        retryable: req.retryable.unwrap_or(true),
        cost_usd: req.cost_usd,
        tokens: req.tokens,
    };
    let result = s.orchestrator().fail(&worker, &id, token, failure).await;
    reported(&s, result)
}

pub(super) async fn release(
    State(s): State<ApiState>,
    JsonBody(req): JsonBody<ReleaseRequest>,
) -> Result<Json<ReportResponse>, ApiError> {
    let (worker, id, token) = resolve(&s, &req.task).await?;
    let reason = req.reason.as_deref().unwrap_or("released by the worker");
    let result = s.orchestrator().release(&worker, &id, token, reason).await;
    reported(&s, result)
}

pub(super) async fn clarify(
    State(s): State<ApiState>,
    JsonBody(req): JsonBody<ClarifyRequest>,
) -> Result<Json<ReportResponse>, ApiError> {
    if req.questions.is_empty() {
        return Err(ApiError::invalid(
            "questions must hold at least one question",
        ));
    }
    // A blank question asks nobody anything: the issue would wait for an answer
    // to nothing. The OpenAPI document's pattern says the same.
    if let Some(n) = req.questions.iter().position(|q| is_blank(q)) {
        return Err(ApiError::invalid(format!(
            "questions[{n}] is blank: every question must say something"
        )));
    }
    check_cost(req.cost_usd)?;
    let (worker, id, token) = resolve(&s, &req.task).await?;
    let clarification = Clarification {
        questions: req.questions,
        reasoning: req.reasoning.unwrap_or_default(),
        cost_usd: req.cost_usd,
        tokens: req.tokens,
    };
    let result = s
        .orchestrator()
        .clarify(&worker, &id, token, clarification)
        .await;
    reported(&s, result)
}

/// A reported cost is a spend: never below zero (the document's `minimum`).
fn check_cost(cost_usd: Option<f64>) -> Result<(), ApiError> {
    match cost_usd {
        Some(c) if c < 0.0 => Err(ApiError::invalid(format!(
            "cost_usd must be at least 0, not {c}"
        ))),
        _ => Ok(()),
    }
}

/// Whether `text` has nothing but whitespace (Unicode `White_Space`, the
/// characters the OpenAPI document's `NOT_BLANK` pattern leaves out).
fn is_blank(text: &str) -> bool {
    text.chars().all(char::is_whitespace)
}

pub(super) async fn heartbeat(
    State(s): State<ApiState>,
    JsonBody(req): JsonBody<HeartbeatRequest>,
) -> Result<Json<HeartbeatResponse>, ApiError> {
    let (worker, id, token) = resolve(&s, &req.task).await?;
    match s.orchestrator().heartbeat(&worker, &id, token).await {
        Ok(reply) => {
            s.metrics().heartbeats.inc();
            Ok(Json(HeartbeatResponse {
                status: "acknowledged".to_string(),
                lease_expires_at: reply.lease_expires_at.to_rfc3339(),
                lease_expires_at_ms: reply.lease_expires_at.0,
                cancel: reply.cancel,
            }))
        }
        Err(e) => Err(refused(&s, e)),
    }
}

fn reported(
    s: &ApiState,
    result: scrum_core::Result<Task>,
) -> Result<Json<ReportResponse>, ApiError> {
    match result {
        Ok(task) => Ok(Json(ReportResponse {
            status: "acknowledged".to_string(),
            task_id: task.id.to_string(),
            state: task.state().as_str().to_string(),
        })),
        Err(e) => Err(refused(s, e)),
    }
}

fn refused(s: &ApiState, e: scrum_core::Error) -> ApiError {
    if e.kind() == ErrorKind::LeaseLost {
        s.metrics().lease_lost.inc();
    }
    e.into()
}

/// The worker, task and lease token a report is about, as the engine resolves it.
async fn resolve(s: &ApiState, r: &TaskRef) -> Result<(WorkerId, TaskId, LeaseToken), ApiError> {
    let report = ReportRef::new(
        &r.worker_id,
        r.issue_number,
        r.repository.as_deref(),
        r.lease_token.as_deref(),
    )?;
    let (id, token) = s
        .orchestrator()
        .resolve(&report)
        .await
        .map_err(|e| refused(s, e))?;
    Ok((report.worker, id, token))
}

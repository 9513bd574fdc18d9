//! What the API shows: `/health`, `/workers`, `/queue`, `/metrics`, `/openapi.json`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use scrum_core::engine::{WorkerInfo, WorkerStatus};
use scrum_core::{
    Attempt, ErrorKind, RunCause, Status, Stop, Task, TaskFilter, TaskState, Timestamp,
};
use serde_json::{Value, json};

use super::ApiState;
use super::extract::{PathArgs, QueryArgs};
use crate::error::ApiError;
use crate::metrics::Scrape;
use crate::wire::{
    AttemptEntry, LogsQuery, LogsResponse, MAX_LOG_LINES, MAX_PAGE, QueueEntry, QueueQuery,
    QueueResponse, WorkerEntry, WorkersResponse,
};

/// `200` with `status: healthy`; `200` with `status: degraded` while write-back to
/// GitHub is refused or effects are set aside (`github.writes` says where); `503`
/// with `status: degraded` when the store does not answer. The body has the same
/// shape either way.
///
/// Anyone may call it, so it carries counts, flags and fixed phrases only, besides
/// the last write error of each failing repository (a redacted GitHub answer):
/// never a backend's free error text, which may quote an issue. The details are in
/// the orchestrator's log and `/admin/effects`.
pub(super) async fn health(State(s): State<ApiState>) -> Response {
    let o = s.orchestrator();
    // The store answers both, or the orchestrator is degraded.
    let read = match o.reads().counts().await {
        Ok(c) => o.reads().workers().await.map(|w| (c, w)),
        Err(e) => Err(e),
    };
    let writes = o.reads().write_health().await.unwrap_or_default();
    let (status, code, store, (c, workers)) = match read {
        Ok(read) if writes.is_degraded() => {
            ("degraded", StatusCode::OK, json!({"status": "ok"}), read)
        }
        Ok(read) => ("healthy", StatusCode::OK, json!({"status": "ok"}), read),
        Err(e) => {
            tracing::warn!(error = %e, "/health: the store does not answer");
            (
                "degraded",
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"status": "unavailable", "error": store_trouble(e.kind())}),
                Default::default(),
            )
        }
    };
    let engine = o.reads().status();
    let available = workers
        .iter()
        .filter(|w| w.status == WorkerStatus::Idle)
        .count();
    let busy = workers
        .iter()
        .filter(|w| w.status == WorkerStatus::Busy)
        .count();
    let body = json!({
        "status": status,
        "workers": {"total": workers.len(), "available": available, "busy": busy},
        "queue": {
            "pending": c.pending,
            "in_progress": c.in_progress,
            "completed": c.completed,
            "failed": c.failed,
            "cancelled": c.cancelled,
            "parked": c.parked,
        },
        "github_connected": engine.github_connected,
        "github": {
            "connected": engine.github_connected,
            "reason": engine.github_reason.as_ref().map(|_| GITHUB_TROUBLE),
            "last_poll": engine.last_poll.map(|t| t.to_rfc3339()),
            "writes": {
                "status": if writes.is_degraded() { "degraded" } else { "ok" },
                "repositories": writes.repositories,
            },
        },
        "forges": forges(&engine, &writes).iter().map(forge_json).collect::<Vec<_>>(),
        "store": store,
        "dispatch": {"paused": engine.paused, "leader": engine.leader},
        "trust_mode": o.config().trust.as_str(),
        "pr_review": pr_review(o),
        "budget": budget(o),
        "version": env!("CARGO_PKG_VERSION"),
    });
    (code, Json(body)).into_response()
}

/// `/health`'s entry of one forge: fixed phrases and counts, as the rest.
fn forge_json(f: &ForgeRow) -> serde_json::Value {
    json!({
        "forge": f.forge,
        "connected": f.status.connected,
        "reason": f.status.reason.as_ref().map(|_| GITHUB_TROUBLE),
        "rate_limit": {
            "remaining": f.status.rate_limit_remaining,
            "reset": f.status.rate_limit_reset.map(|t| t.to_rfc3339()),
        },
        "writes": {
            "status": if f.refused > 0 || f.set_aside > 0 { "degraded" } else { "ok" },
            "failing_repositories": f.failing_repos,
        },
    })
}

/// `/health`'s `budget`: the budgets, this month's spend, and the repositories
/// whose dispatch is paused, with why.
fn budget(o: &scrum_core::engine::Orchestrator) -> serde_json::Value {
    let b = o.reads().budgets();
    let spend = o.reads().month_spend();
    let paused: Vec<serde_json::Value> = o
        .reads()
        .budget_holds()
        .into_iter()
        .map(|(repo, reason)| json!({"repository": repo, "reason": reason}))
        .collect();
    json!({
        "issue_budget_usd": o.reads().issue_budget(),
        "repo_monthly_budget_usd": b.repo_monthly_usd,
        "month_start": spend.month_start.to_rfc3339(),
        "spent_this_month_usd": spend.by_repo,
        "paused": paused,
    })
}

/// `/health`'s `pr_review`: whether review gating holds work back, and why.
fn pr_review(o: &scrum_core::engine::Orchestrator) -> serde_json::Value {
    let s = crate::wire::ReviewStatusResponse::from(o.reads().pull_gate_status());
    json!({
        "blocked": s.blocked,
        "reason": s.reason,
        "pending": s.pending,
        "max_pending_prs": s.max_pending_prs,
        "max_pending_prs_total": s.max_pending_prs_total,
        "block_on_changes_requested": s.block_on_changes_requested,
        "held_repositories": s.held_repositories,
    })
}

/// `/health`'s `github.reason` while the issue source is degraded. The source's own
/// reason is free text from its errors, so it stays in the log.
const GITHUB_TROUBLE: &str =
    "the issue source is failing or rate limited; the orchestrator's log says why";

/// `/health`'s `store.error`: a fixed phrase per kind of failure.
fn store_trouble(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Timeout => "the store did not answer in time",
        ErrorKind::Unavailable => "the store is unreachable",
        ErrorKind::Corrupt => "the store's data is unreadable",
        ErrorKind::Unauthorized | ErrorKind::Forbidden => "the store refused the credentials",
        _ => "the store failed; the orchestrator's log says why",
    }
}

pub(super) async fn workers(State(s): State<ApiState>) -> Result<Json<WorkersResponse>, ApiError> {
    let workers = s
        .orchestrator()
        .reads()
        .workers()
        .await?
        .iter()
        .map(worker_entry)
        .collect();
    Ok(Json(WorkersResponse { workers }))
}

fn worker_entry(w: &WorkerInfo) -> WorkerEntry {
    let status = match w.status {
        WorkerStatus::Busy => "busy",
        // The Python orchestrator's word for a worker ready for work.
        WorkerStatus::Idle => "available",
        WorkerStatus::Draining => "draining",
        _ => "offline",
    };
    let health = serde_json::to_value(w.health)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "unknown".to_string());
    WorkerEntry {
        id: w.id.clone(),
        ip: w.ip.clone(),
        status: status.to_string(),
        current_task: w.current_task.as_ref().map(|t| t.number()),
        last_seen: w.last_seen.map(|t| t.to_rfc3339()),
        health,
        current_task_id: w.current_task.as_ref().map(ToString::to_string),
        health_reason: w.health_reason.clone(),
        completed: w.completed,
        failed: w.failed,
        sandbox: w.sandbox,
    }
}

pub(super) async fn worker_logs(
    State(s): State<ApiState>,
    PathArgs(id): PathArgs<String>,
    QueryArgs(q): QueryArgs<LogsQuery>,
) -> Result<Json<LogsResponse>, ApiError> {
    let lines = q.lines.unwrap_or(100);
    if lines == 0 || lines > MAX_LOG_LINES {
        return Err(ApiError::invalid(format!(
            "lines must be between 1 and {MAX_LOG_LINES}"
        )));
    }
    let (host, logs) = s.orchestrator().reads().worker_logs(&id, lines).await?;
    Ok(Json(LogsResponse {
        worker_id: id,
        host,
        lines,
        logs,
    }))
}

pub(super) async fn queue(
    State(s): State<ApiState>,
    QueryArgs(q): QueryArgs<QueueQuery>,
) -> Result<Json<QueueResponse>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::invalid(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let offset = q.offset.unwrap_or(0);
    let o = s.orchestrator();
    let page = |state: TaskState| TaskFilter {
        offset,
        limit: Some(limit),
        ..TaskFilter::states([state])
    };
    let mut lists: Vec<Vec<QueueEntry>> = Vec::with_capacity(5);
    for state in TaskState::ALL {
        let tasks = o.reads().tasks(&page(state)).await?;
        let mut entries: Vec<QueueEntry> = tasks.iter().map(queue_entry).collect();
        if state == TaskState::Pending {
            for (e, holder) in entries
                .iter_mut()
                .zip(o.reads().lock_holders(&tasks).await?)
            {
                e.waiting_for_lock = holder.map(|h| h.to_string());
            }
        }
        lists.push(entries);
    }
    let counts = o.reads().counts().await?;
    let mut lists = lists.into_iter();
    let mut next = || lists.next().unwrap_or_default();
    Ok(Json(QueueResponse {
        pending: next(),
        in_progress: next(),
        completed: next(),
        failed: next(),
        cancelled: next(),
        parked: next(),
        counts: serde_json::to_value(counts).unwrap_or(Value::Null),
        limit,
        offset,
    }))
}

pub(crate) fn queue_entry(t: &Task) -> QueueEntry {
    let spend = t.spend();
    QueueEntry {
        task_id: t.id.to_string(),
        issue_number: t.id.number(),
        repository: t.id.repo().to_string(),
        title: t.issue.title.clone(),
        labels: t.issue.labels.clone(),
        state: t.state().as_str().to_string(),
        attempts: t.attempts(),
        max_attempts: t.max_attempts(),
        worker_id: t.holder().map(ToString::to_string),
        enqueued_at: t.enqueued_at().to_rfc3339(),
        updated_at: t.updated_at.to_rfc3339(),
        last_error: t.last_error().map(str::to_string),
        pr_url: t.completion().and_then(|c| c.pr_url.clone()),
        cancel_requested: matches!(t.stop(), Some(Stop::Cancel { .. })),
        approved_by: t.approval.as_ref().map(|a| a.by.clone()),
        text_changed: t.review().is_some(),
        edited_by: t.review().map(|r| r.editor.clone()),
        text_cleaned: scrum_core::clean::needs_cleaning(&t.issue.title)
            || scrum_core::clean::needs_cleaning(&t.issue.body),
        cost_usd: spend.cost_usd,
        tokens: spend.tokens,
        blocked: t.blocked().is_some(),
        blocked_by: t
            .blocked()
            .iter()
            .flat_map(|b| b.by.iter().map(ToString::to_string))
            .collect(),
        blocked_reason: t.blocked().map(|b| b.describe()),
        locks: t.locks.clone(),
        waiting_for_lock: None,
        status: t.status.name().to_string(),
        next_attempt_at: match t.status {
            Status::Scheduled { at } => Some(at.to_rfc3339()),
            _ => None,
        },
        run_cause: match t.run.cause {
            RunCause::Ready => "ready",
            RunCause::Retry => "retry",
            RunCause::FollowUp(_) => "follow_up",
        }
        .to_string(),
        attempt_history: t.run.attempts.iter().map(attempt_entry).collect(),
        follow_up_cause: t.follow_up().map(|f| f.cause.as_str().to_string()),
        rounds: rounds(t),
        follow_ups_exhausted: t
            .follow_ups_exhausted()
            .map(|f| format!("{}: {}", f.cause.describe(), f.feedback)),
    }
}

/// The rounds of the task's pull request, this run last, when follow-ups ran.
pub(crate) fn rounds(t: &Task) -> Vec<crate::wire::RoundEntry> {
    let Some(f) = t.follow_ups_exhausted().or(t.follow_up()) else {
        return Vec::new();
    };
    let all = match t.follow_ups_exhausted() {
        Some(_) => f.history.clone(),
        None => f.rounds(
            t.run.number,
            match t.status.name() {
                "completed" => "completed",
                "ready" | "scheduled" | "held" | "running" => "running",
                other => other,
            },
        ),
    };
    all.into_iter()
        .map(|r| crate::wire::RoundEntry {
            run: r.run,
            cause: r.cause.map_or("opened", |c| c.as_str()).to_string(),
            outcome: r.outcome,
        })
        .collect()
}

fn attempt_entry(a: &Attempt) -> AttemptEntry {
    AttemptEntry {
        number: a.number,
        worker_id: a.worker.to_string(),
        started_at: a.started_at.to_rfc3339(),
        ended_at: a.ended_at.map(Timestamp::to_rfc3339),
        outcome: a.outcome.map(|o| o.as_str().to_string()),
        error: a.error.clone(),
        cost_usd: a.cost_usd,
        tokens: a.tokens,
    }
}

/// The Prometheus text format, or OpenMetrics for a scraper that asks for it.
pub(super) async fn metrics(State(s): State<ApiState>, headers: HeaderMap) -> Response {
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    let scrape = Scrape::read(s.orchestrator()).await;
    let text = s.metrics().render(&scrape, openmetrics);
    let content_type = if openmetrics {
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    } else {
        "text/plain; version=0.0.4; charset=utf-8"
    };
    ([(header::CONTENT_TYPE, content_type)], text).into_response()
}

pub(super) async fn openapi(State(s): State<ApiState>) -> Json<Value> {
    Json(crate::openapi::document(s.orchestrator().config().max_wait))
}

/// One forge as `/health` and the dashboard show it apart: its own connection and rate limit, and the
/// write-back of its repositories.
pub(crate) struct ForgeRow {
    /// `github`, `gitlab`.
    pub forge: String,
    /// What the engine knows of it.
    pub status: scrum_core::engine::ForgeStatus,
    /// Its repositories with failing writes.
    pub failing_repos: usize,
    /// Of those, the ones that refuse writes.
    pub refused: usize,
    /// Effects of its repositories set aside.
    pub set_aside: u64,
}

/// Each forge's row, when the source serves several (none otherwise: the
/// `github` fields speak for the one source).
pub(crate) fn forges(
    status: &scrum_core::engine::EngineStatus,
    writes: &scrum_core::engine::WriteHealth,
) -> Vec<ForgeRow> {
    status
        .forges
        .iter()
        .map(|(forge, st)| {
            let mine: Vec<_> = writes
                .repositories
                .iter()
                .filter(|r| {
                    let repo = r.repository.parse::<scrum_core::RepoName>();
                    repo.is_ok_and(|repo| repo.forge() == forge)
                })
                .collect();
            ForgeRow {
                forge: forge.clone(),
                status: st.clone(),
                failing_repos: mine.len(),
                refused: mine.iter().filter(|r| r.refused).count(),
                set_aside: mine.iter().map(|r| r.dead).sum(),
            }
        })
        .collect()
}

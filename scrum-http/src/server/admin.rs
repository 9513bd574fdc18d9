//! Operator actions: pause and resume dispatch, drain a worker, retry a failed task,
//! cancel a task; list failing GitHub effects and retry the set-aside ones.

use axum::Json;
use axum::extract::State;
use scrum_core::engine::Orchestrator;
use scrum_core::{EffectSelector, OutboxEntry, RepoName, Task, TaskId, WorkerId};

use super::ApiState;
use super::extract::{JsonBody, QueryArgs};
use super::views::queue_entry;
use crate::error::ApiError;
use crate::wire::{
    ActionResponse, DrainRequest, EffectEntry, EffectState, EffectsQuery, EffectsResponse,
    EffectsRetryRequest, EffectsRetryResponse, TaskAction,
};

fn done(paused: Option<bool>) -> Json<ActionResponse> {
    Json(ActionResponse {
        status: "ok".to_string(),
        task: None,
        paused,
    })
}

// The operator actions themselves, shared by these JSON handlers and the
// dashboard's forms (`crate::ui`).

/// Pauses dispatch.
pub(crate) fn pause_dispatch(o: &Orchestrator) {
    o.operator().pause();
    tracing::info!("dispatch paused by an operator");
}

/// Resumes dispatch.
pub(crate) fn resume_dispatch(o: &Orchestrator) {
    o.operator().resume();
    tracing::info!("dispatch resumed by an operator");
}

/// Drains `worker` (or undoes it).
pub(crate) async fn drain_worker(
    o: &Orchestrator,
    worker: &str,
    draining: bool,
) -> Result<(), ApiError> {
    let worker = WorkerId::new(worker)?;
    o.operator().drain(&worker, draining).await?;
    tracing::info!(worker = %worker, draining, "worker drain set by an operator");
    Ok(())
}

/// Starts a new run of a failed or cancelled task.
pub(crate) async fn retry_task(o: &Orchestrator, id: &TaskId) -> Result<Task, ApiError> {
    let task = o.operator().retry(id).await?;
    tracing::info!(task = %id, "retried by an operator");
    Ok(task)
}

/// Cancels a task.
pub(crate) async fn cancel_task(
    o: &Orchestrator,
    id: &TaskId,
    reason: Option<&str>,
) -> Result<Task, ApiError> {
    let reason = reason.unwrap_or("cancelled by an operator");
    let task = o.operator().cancel(id, reason).await?;
    tracing::info!(task = %id, "cancelled by an operator");
    Ok(task)
}

/// Which set-aside effects to retry: those of a repository, one by id, or all.
pub(crate) fn effect_selector(
    repository: Option<String>,
    id: Option<u64>,
) -> Result<EffectSelector, ApiError> {
    match (repository, id) {
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "name a repository or an effect id, not both",
        )),
        (Some(repo), None) => {
            let repo: RepoName = repo.parse()?;
            Ok(EffectSelector::Repo(repo.to_string()))
        }
        (None, Some(0)) => Err(ApiError::invalid("effect ids start at 1")),
        (None, Some(id)) => Ok(EffectSelector::Id(id)),
        (None, None) => Ok(EffectSelector::All),
    }
}

pub(super) async fn pause(State(s): State<ApiState>) -> Json<ActionResponse> {
    pause_dispatch(s.orchestrator());
    done(Some(true))
}

pub(super) async fn resume(State(s): State<ApiState>) -> Json<ActionResponse> {
    resume_dispatch(s.orchestrator());
    done(Some(false))
}

pub(super) async fn drain(
    State(s): State<ApiState>,
    JsonBody(req): JsonBody<DrainRequest>,
) -> Result<Json<ActionResponse>, ApiError> {
    drain_worker(
        s.orchestrator(),
        &req.worker_id,
        req.draining.unwrap_or(true),
    )
    .await?;
    Ok(done(None))
}

pub(super) async fn retry(
    State(s): State<ApiState>,
    JsonBody(req): JsonBody<TaskAction>,
) -> Result<Json<ActionResponse>, ApiError> {
    let id = TaskId::new(&req.repository, req.issue_number)?;
    let task = retry_task(s.orchestrator(), &id).await?;
    Ok(Json(ActionResponse {
        status: "ok".to_string(),
        task: Some(queue_entry(&task)),
        paused: None,
    }))
}

pub(super) async fn cancel(
    State(s): State<ApiState>,
    JsonBody(req): JsonBody<TaskAction>,
) -> Result<Json<ActionResponse>, ApiError> {
    let id = TaskId::new(&req.repository, req.issue_number)?;
    let task = cancel_task(s.orchestrator(), &id, req.reason.as_deref()).await?;
    Ok(Json(ActionResponse {
        status: "ok".to_string(),
        task: Some(queue_entry(&task)),
        paused: None,
    }))
}

pub(super) async fn effects(
    State(s): State<ApiState>,
    QueryArgs(q): QueryArgs<EffectsQuery>,
) -> Result<Json<EffectsResponse>, ApiError> {
    let dead_only = q.state == Some(EffectState::Dead);
    let failing = s.orchestrator().reads().failing_effects(dead_only).await?;
    Ok(Json(EffectsResponse {
        effects: failing.iter().map(effect_entry).collect(),
    }))
}

fn effect_entry(e: &OutboxEntry) -> EffectEntry {
    EffectEntry {
        id: e.id,
        task_id: e.effect.task.to_string(),
        repository: e.effect.task.repo().to_string(),
        effect: e.effect.kind.name().to_string(),
        failures: e.failures,
        dead: e.dead,
        refused: e.refused,
        next_attempt_at: (!e.dead).then(|| e.next_attempt_at.to_rfc3339()),
        last_error: e.last_error.clone(),
    }
}

pub(super) async fn retry_effects(
    State(s): State<ApiState>,
    JsonBody(req): JsonBody<EffectsRetryRequest>,
) -> Result<Json<EffectsRetryResponse>, ApiError> {
    let which = effect_selector(req.repository, req.id)?;
    let retried = s.orchestrator().operator().retry_effects(&which).await?;
    Ok(Json(EffectsRetryResponse {
        status: "ok".to_string(),
        retried,
    }))
}

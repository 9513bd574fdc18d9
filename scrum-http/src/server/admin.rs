//! Operator actions: pause and resume dispatch, drain a worker, retry a failed task,
//! cancel a task; list failing GitHub effects and retry the set-aside ones.

use axum::Json;
use axum::extract::State;
use scrum_core::{EffectSelector, OutboxEntry, RepoName, TaskId, WorkerId};

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

pub(super) async fn pause(State(s): State<ApiState>) -> Json<ActionResponse> {
    s.orchestrator().pause();
    tracing::info!("dispatch paused by an operator");
    done(Some(true))
}

pub(super) async fn resume(State(s): State<ApiState>) -> Json<ActionResponse> {
    s.orchestrator().resume();
    tracing::info!("dispatch resumed by an operator");
    done(Some(false))
}

pub(super) async fn drain(
    State(s): State<ApiState>,
    JsonBody(req): JsonBody<DrainRequest>,
) -> Result<Json<ActionResponse>, ApiError> {
    let worker = WorkerId::new(&req.worker_id)?;
    let draining = req.draining.unwrap_or(true);
    s.orchestrator().drain(&worker, draining).await?;
    tracing::info!(worker = %worker, draining, "worker drain set by an operator");
    Ok(done(None))
}

pub(super) async fn retry(
    State(s): State<ApiState>,
    JsonBody(req): JsonBody<TaskAction>,
) -> Result<Json<ActionResponse>, ApiError> {
    let id = TaskId::new(&req.repository, req.issue_number)?;
    let task = s.orchestrator().retry(&id).await?;
    tracing::info!(task = %id, "retried by an operator");
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
    let reason = req.reason.as_deref().unwrap_or("cancelled by an operator");
    let task = s.orchestrator().cancel(&id, reason).await?;
    tracing::info!(task = %id, "cancelled by an operator");
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
    let failing = s.orchestrator().failing_effects(dead_only).await?;
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
    let which = match (req.repository, req.id) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "name a repository or an effect id, not both",
            ));
        }
        (Some(repo), None) => {
            let repo: RepoName = repo.parse()?;
            EffectSelector::Repo(repo.to_string())
        }
        (None, Some(id)) => EffectSelector::Id(id),
        (None, None) => EffectSelector::All,
    };
    let retried = s.orchestrator().retry_effects(&which).await?;
    Ok(Json(EffectsRetryResponse {
        status: "ok".to_string(),
        retried,
    }))
}

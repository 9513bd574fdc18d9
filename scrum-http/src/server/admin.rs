//! Operator actions: pause and resume dispatch, drain a worker, retry a failed task,
//! cancel a task.

use axum::Json;
use axum::extract::State;
use scrum_core::{TaskId, WorkerId};

use super::ApiState;
use super::extract::JsonBody;
use super::views::queue_entry;
use crate::error::ApiError;
use crate::wire::{ActionResponse, DrainRequest, TaskAction};

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

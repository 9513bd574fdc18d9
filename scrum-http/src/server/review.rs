//! Scheduling reads: `GET /scaling`; review gating: `GET /pr-review/status` and the operator's word on a pull
//! request, `POST /pr-review/{approved|changes-requested|merged}/{number}` (the
//! Python orchestrator's endpoints, keyed by repository and pull request: add
//! `?repository=owner/name` when two tracked repositories have that number, and
//! `?feedback=…` to `changes-requested` for the agent when
//! `REWORK_ON_CHANGES_REQUESTED` sends the issue back to it).

use axum::Json;
use axum::extract::State;
use scrum_core::pull_gate::PullState;
use serde::Deserialize;

use super::ApiState;
use super::extract::{PathArgs, QueryArgs};
use crate::error::ApiError;
use crate::wire::{PullReviewResponse, ReviewStatusResponse};

/// The query of `POST /pr-review/{state}/{number}` (others are refused).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PullQuery {
    #[serde(default)]
    repository: Option<String>,
    #[serde(default)]
    feedback: Option<String>,
}

/// `GET /scaling`: the figures an autoscaler reads.
pub(super) async fn scaling(
    State(s): State<ApiState>,
) -> Result<Json<scrum_core::engine::Scaling>, ApiError> {
    Ok(Json(s.orchestrator().reads().scaling().await?))
}

pub(super) async fn status(State(s): State<ApiState>) -> Json<ReviewStatusResponse> {
    Json(ReviewStatusResponse::from(
        s.orchestrator().reads().pull_gate_status(),
    ))
}

pub(super) async fn mark(
    State(s): State<ApiState>,
    PathArgs((state, number)): PathArgs<(String, u64)>,
    QueryArgs(q): QueryArgs<PullQuery>,
) -> Result<Json<PullReviewResponse>, ApiError> {
    let state = match state.as_str() {
        "approved" => PullState::Approved,
        "changes-requested" => PullState::ChangesRequested,
        "merged" => PullState::Merged,
        other => {
            return Err(ApiError::invalid(format!(
                "{other:?} is not one of approved, changes-requested, merged"
            )));
        }
    };
    let pull = s
        .orchestrator()
        .operator()
        .mark_pull_review(
            q.repository.as_deref(),
            number,
            state,
            q.feedback.as_deref(),
        )
        .await?;
    let gate = s.orchestrator().reads().pull_gate();
    Ok(Json(PullReviewResponse {
        status: "ok".into(),
        pull,
        blocked: gate.holds_anything(),
        reason: gate.reason(),
    }))
}

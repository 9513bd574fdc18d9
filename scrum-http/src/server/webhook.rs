//! `POST /webhooks/github`: a verified delivery about an issue makes the engine poll
//! now. Outside the API's bearer-token rule: GitHub signs its deliveries instead.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use scrum_core::Delivery;

use super::ApiState;
use crate::error::ApiError;
use crate::wire::WebhookResponse;

pub(super) async fn github(
    State(s): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, axum::Json<WebhookResponse>), ApiError> {
    let events = s.webhook().ok_or_else(|| {
        ApiError::not_found("the webhook is off: no webhook secret is configured")
    })?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let delivery = Delivery {
        event: header("x-github-event"),
        signature: header("x-hub-signature-256"),
        body: &body,
    };
    let answer = match events.affected_task(&delivery)? {
        Some(task) => {
            tracing::info!(task = %task, "webhook: issue changed; polling now");
            let o = s.orchestrator();
            s.metrics().webhook_arrived(task.clone(), o.now());
            o.request_poll();
            let answer = WebhookResponse {
                status: "polling".to_string(),
                task_id: Some(task.to_string()),
            };
            (StatusCode::ACCEPTED, answer)
        }
        None => {
            let answer = WebhookResponse {
                status: "ignored".to_string(),
                task_id: None,
            };
            (StatusCode::OK, answer)
        }
    };
    Ok((answer.0, axum::Json(answer.1)))
}

//! `POST /webhooks/github` and `POST /webhooks/gitlab`: a verified delivery about
//! an issue makes the engine poll now. Outside the API's bearer-token rule: GitHub
//! signs its deliveries, GitLab sends the hook's secret token.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use scrum_core::{Delivery, IssueEvents};

use super::ApiState;
use crate::error::ApiError;
use crate::wire::WebhookResponse;

/// Where one forge puts a delivery's event and its proof in the headers.
struct Headers {
    event: &'static str,
    signature: &'static str,
}

const GITHUB: Headers = Headers {
    event: "x-github-event",
    signature: "x-hub-signature-256",
};

const GITLAB: Headers = Headers {
    event: "x-gitlab-event",
    signature: "x-gitlab-token",
};

pub(super) async fn github(
    State(s): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, axum::Json<WebhookResponse>), ApiError> {
    let events = s.webhook().ok_or_else(|| {
        ApiError::not_found("the webhook is off: no webhook secret is configured")
    })?;
    deliver(&s, events, &GITHUB, &headers, &body)
}

pub(super) async fn gitlab(
    State(s): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, axum::Json<WebhookResponse>), ApiError> {
    let events = s.gitlab_webhook().ok_or_else(|| {
        ApiError::not_found("the GitLab webhook is off: GITLAB_WEBHOOK_SECRET is not set")
    })?;
    deliver(&s, events, &GITLAB, &headers, &body)
}

/// Checks the delivery with `events` and, when it concerns a task, polls now.
fn deliver(
    s: &ApiState,
    events: &Arc<dyn IssueEvents>,
    names: &Headers,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(StatusCode, axum::Json<WebhookResponse>), ApiError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let delivery = Delivery {
        event: header(names.event),
        signature: header(names.signature),
        body,
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

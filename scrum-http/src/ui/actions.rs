//! The operator actions: a page's button leads to `GET /ui/confirm`, which says
//! what will happen and holds the POST form (with the CSRF token); the POST does
//! it through the same operations as `/admin/*` and sends the browser back with a
//! note.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use scrum_core::TaskId;
use serde::Deserialize;

use super::layout::{Nav, csrf_field, error_page, task_href};
use super::{Viewer, urlencode};
use crate::error::ApiError;
use crate::server::ApiState;
use crate::server::admin;

/// What an action acts on: the fields of the confirmation page and of the POST
/// (one flat struct: form decoding does not mix with `serde(flatten)`).
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct Target {
    /// The action, on the confirmation page (the POST has it in its path).
    #[serde(default)]
    action: String,
    /// The CSRF token, in the POST.
    #[serde(default)]
    csrf: String,
    /// `owner/repo#N`, for retry and cancel.
    task: Option<String>,
    /// A worker id, for drain and undrain.
    worker: Option<String>,
    /// `owner/name`, for retrying one repository's set-aside effects.
    repository: Option<String>,
    /// An effect id, for retrying one set-aside effect.
    effect: Option<u64>,
}

/// An action, as the confirmation page describes it.
struct Described {
    question: String,
    detail: &'static str,
    button: &'static str,
    danger: bool,
    back: String,
}

fn task_of(t: &Target) -> Result<TaskId, ApiError> {
    let id = t
        .task
        .as_deref()
        .ok_or_else(|| ApiError::invalid("name the task (owner/repo#N)"))?;
    Ok(id.parse::<TaskId>()?)
}

fn worker_of(t: &Target) -> Result<&str, ApiError> {
    t.worker
        .as_deref()
        .ok_or_else(|| ApiError::invalid("name the worker"))
}

fn describe(action: &str, t: &Target) -> Result<Described, ApiError> {
    let d = |question: String, detail, button, danger, back: String| Described {
        question,
        detail,
        button,
        danger,
        back,
    };
    Ok(match action {
        "retry" => {
            let id = task_of(t)?;
            d(
                format!("Retry {id}?"),
                "A new run starts, with its attempts from zero; the issue is labelled in progress again.",
                "Yes, retry",
                false,
                task_href(&id),
            )
        }
        "cancel" => {
            let id = task_of(t)?;
            d(
                format!("Cancel {id}?"),
                "A waiting task is cancelled at once; a worker holding it is told to stop at its next heartbeat.",
                "Yes, cancel",
                true,
                task_href(&id),
            )
        }
        "pause" => d(
            "Pause dispatch?".to_string(),
            "Workers asking for work get none until dispatch resumes; running tasks go on.",
            "Yes, pause",
            true,
            "/ui".to_string(),
        ),
        "resume" => d(
            "Resume dispatch?".to_string(),
            "Workers are handed tasks again.",
            "Yes, resume",
            false,
            "/ui".to_string(),
        ),
        "drain" => d(
            format!("Drain {}?", worker_of(t)?),
            "It gets no new task; the one it holds goes on.",
            "Yes, drain",
            true,
            "/ui/workers".to_string(),
        ),
        "undrain" => d(
            format!("Undrain {}?", worker_of(t)?),
            "It is handed tasks again.",
            "Yes, undrain",
            false,
            "/ui/workers".to_string(),
        ),
        "retry-effects" => {
            let which = match (&t.repository, t.effect) {
                (Some(r), None) => format!("the set-aside GitHub writes of {r}"),
                (None, Some(id)) => format!("set-aside GitHub write #{id}"),
                _ => "every set-aside GitHub write".to_string(),
            };
            d(
                format!("Retry {which}?"),
                "Each is due again at once and lands once; do it after fixing what GitHub refused (the token's access).",
                "Yes, retry",
                false,
                "/ui/writeback".to_string(),
            )
        }
        other => return Err(ApiError::not_found(format!("no action {other:?}"))),
    })
}

/// `GET /ui/confirm?action=…`: what the action will do, and the form that does it.
pub(crate) async fn confirm(v: Viewer, Query(t): Query<Target>) -> Response {
    let d = match describe(&t.action, &t) {
        Ok(d) => d,
        Err(e) => return super::failed(e),
    };
    let form = html! {
        p { (d.detail) }
        form method="post" action={ "/ui/actions/" (t.action) } {
            (csrf_field(&v.csrf))
            @if let Some(x) = &t.task { input type="hidden" name="task" value=(x); }
            @if let Some(x) = &t.worker { input type="hidden" name="worker" value=(x); }
            @if let Some(x) = &t.repository { input type="hidden" name="repository" value=(x); }
            @if let Some(x) = t.effect { input type="hidden" name="effect" value=(x); }
            div.actions {
                button.danger[d.danger] #confirm type="submit" { (d.button) }
                a.button #back href=(d.back) { "No, go back" }
            }
        }
    };
    let page = super::layout::Page {
        live: false,
        ..v.page(&d.question, Nav::None)
    };
    page.render(form, html! {}).into_response()
}

/// The answer to a POST whose CSRF field does not match the cookie.
pub(crate) fn stale_form() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "Form expired",
        "This form's security token does not match this browser's: go back, reload the page and try again.",
    )
}

/// `POST /ui/actions/{action}`: does it, then back to the page it concerns.
pub(crate) async fn act(
    State(s): State<ApiState>,
    v: Viewer,
    Path(action): Path<String>,
    Form(t): Form<Target>,
) -> Response {
    if !v.csrf.accepts(&t.csrf) {
        return stale_form();
    }
    let d = match describe(&action, &t) {
        Ok(d) => d,
        Err(e) => return super::failed(e),
    };
    let back = d.back;
    let note = match run(&s, &action, t).await {
        Ok(note) => format!("notice={}", urlencode(&note)),
        Err(e) => format!("error={}", urlencode(&e.message)),
    };
    Redirect::to(&format!("{back}?{note}")).into_response()
}

async fn run(s: &ApiState, action: &str, t: Target) -> Result<String, ApiError> {
    let o = s.orchestrator();
    Ok(match action {
        "retry" => {
            let id = task_of(&t)?;
            let task = admin::retry_task(o, &id).await?;
            format!("{id} queued again (run {})", task.run.number)
        }
        "cancel" => {
            let id = task_of(&t)?;
            let task = admin::cancel_task(o, &id, None).await?;
            if task.stop_requested() {
                format!("{id}: its worker is told to stop")
            } else {
                format!("{id} cancelled")
            }
        }
        "pause" => {
            admin::pause_dispatch(o);
            "Dispatch paused".to_string()
        }
        "resume" => {
            admin::resume_dispatch(o);
            "Dispatch resumed".to_string()
        }
        "drain" | "undrain" => {
            let worker = worker_of(&t)?;
            admin::drain_worker(o, worker, action == "drain").await?;
            format!("{worker} {}ed", action)
        }
        "retry-effects" => {
            let which = admin::effect_selector(t.repository, t.effect)?;
            let n = o.operator().retry_effects(&which).await?;
            format!("{n} set-aside writes are due again")
        }
        other => return Err(ApiError::not_found(format!("no action {other:?}"))),
    })
}

//! The operators' dashboard at `/ui`: server-rendered HTML (maud), live through
//! server-sent events and htmx, with the operator actions behind a confirmation
//! page and a CSRF token. Every asset is embedded in the binary.
//!
//! Reading needs no JavaScript: every page is plain HTML with links and GET forms.
//! With JavaScript, each page's live part (`#live`) is fetched again whenever
//! `/ui/events` says something changed (htmx's SSE extension), so an open page
//! follows the fleet without a reload.
//!
//! # Access
//!
//! The API's rules ([`crate::ApiConfig`]): with an API token, every page needs the
//! login (`/ui/login` sets an HttpOnly, SameSite=Strict cookie; a bearer header
//! works too); without one, pages answer whom the read endpoints answer (loopback
//! and `WORKER_IPS`), actions and worker logs only loopback. The cookies are described
//! in `ui/auth.rs`.
//!
//! # Layout
//!
//! - `auth`: the login cookie and the CSRF token.
//! - `layout`: the page shell, assets and small pieces of markup.
//! - `pages`: overview, workers, a worker's log, write-back.
//! - `charts`: the charts (SVG drawn here) of the overview and a task's page.
//! - `queue`, `task`: the queue with its filters, and one task's page.
//! - `actions`: the confirmation page and the POSTs that act.
//! - `live`: `/ui/events`, the server-sent events.

mod actions;
pub(crate) mod auth;
mod charts;
mod layout;
mod live;
mod pages;
mod queue;
mod task;

use axum::Router;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json};
use maud::html;
use serde::Deserialize;
use serde_json::json;

use crate::error::ApiError;
use crate::server::ApiState;
use auth::Csrf;
use layout::{Nav, Notice, Page};

/// Every route of the dashboard, as (method, path).
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/"),
    ("get", "/ui"),
    ("get", "/ui/queue"),
    ("get", "/ui/tasks/{owner}/{repo}/{number}"),
    ("get", "/ui/task"),
    ("get", "/ui/workers"),
    ("get", "/ui/workers/{id}/logs"),
    ("get", "/ui/writeback"),
    ("get", "/ui/confirm"),
    ("post", "/ui/actions/{action}"),
    ("get", "/ui/events"),
    ("get", "/ui/login"),
    ("post", "/ui/login"),
    ("post", "/ui/logout"),
    ("get", "/ui/assets/{name}"),
];

/// The dashboard's routes, merged into [`crate::app`].
pub(crate) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/ui", get(pages::overview))
        .route("/ui/", get(|| async { Redirect::to("/ui") }))
        .route("/ui/queue", get(queue::page))
        .route("/ui/tasks/{owner}/{repo}/{number}", get(task::page))
        .route("/ui/task", get(task::page_by_id))
        .route("/ui/workers", get(pages::workers))
        .route("/ui/workers/{id}/logs", get(pages::worker_logs))
        .route("/ui/writeback", get(pages::writeback))
        .route("/ui/confirm", get(actions::confirm))
        .route("/ui/actions/{action}", post(actions::act))
        .route("/ui/events", get(live::events))
        .route("/ui/login", get(login_page).post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/assets/{name}", get(layout::asset))
        .layer(axum::middleware::from_fn(auth::csrf))
}

/// Whether the guard lets anyone reach `path`: the login page and the assets
/// (which carry no fleet data).
pub(crate) fn is_open(path: &str) -> bool {
    path == "/" || path == "/ui/login" || path.starts_with("/ui/assets/")
}

/// Whether `path` is the dashboard's (a browser's): refusals there are pages, and
/// the login cookie counts as the API token.
pub(crate) fn is_ui(path: &str) -> bool {
    path == "/ui" || path.starts_with("/ui/")
}

/// The guard's refusal of a dashboard request, as a browser should see it: the
/// login page when a login would let it in, else an error page.
pub(crate) fn refusal(e: ApiError, path: &str) -> Response {
    if e.status == StatusCode::UNAUTHORIZED {
        let next = if path.starts_with("/ui") && !path.starts_with("/ui/events") {
            path
        } else {
            "/ui"
        };
        let to = format!("/ui/login?next={}", urlencode(next));
        return Redirect::to(&to).into_response();
    }
    layout::error_page(e.status, "Not allowed", &e.message)
}

/// `s` percent-encoded for a query value.
pub(crate) fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char);
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Who is looking at a page, and at what: every page handler's first argument.
pub(crate) struct Viewer {
    pub(crate) csrf: Csrf,
    /// The page's path and query, which live updates fetch again.
    pub(crate) url: String,
    pub(crate) logged_in: bool,
    notice: Option<(bool, String)>,
}

#[derive(Deserialize)]
struct NoticeArgs {
    notice: Option<String>,
    error: Option<String>,
}

impl Viewer {
    /// The shell of a page titled `title`.
    pub(crate) fn page<'a>(&'a self, title: &'a str, nav: Nav) -> Page<'a> {
        Page {
            title,
            nav,
            url: &self.url,
            logged_in: self.logged_in,
            csrf: &self.csrf,
            notice: self.notice.as_ref().map(|(error, text)| Notice {
                error: *error,
                text,
            }),
            live: true,
        }
    }
}

impl FromRequestParts<ApiState> for Viewer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, s: &ApiState) -> Result<Self, Self::Rejection> {
        let csrf = parts
            .extensions
            .get::<Csrf>()
            .cloned()
            .unwrap_or_else(|| Csrf(String::new()));
        let url = parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_string(), |p| p.as_str().to_string());
        let logged_in = s
            .config()
            .token
            .as_ref()
            .is_some_and(|t| auth::has_session(&parts.headers, t));
        let notice =
            Query::<NoticeArgs>::try_from_uri(&parts.uri)
                .ok()
                .and_then(|Query(n)| match (n.error, n.notice) {
                    (Some(e), _) => Some((true, e)),
                    (None, Some(n)) => Some((false, n)),
                    (None, None) => None,
                });
        Ok(Viewer {
            csrf,
            url,
            logged_in,
            notice,
        })
    }
}

/// An engine error on a page, as a page.
pub(crate) fn failed(e: impl Into<ApiError>) -> Response {
    let e = e.into();
    let title = if e.status == StatusCode::NOT_FOUND {
        "Not found"
    } else {
        "Something failed"
    };
    layout::error_page(e.status, title, &e.message)
}

/// `GET /`: a browser goes to the dashboard; any other client gets the service's
/// name, version and status, as the Python orchestrator answered.
pub(crate) async fn root(State(s): State<ApiState>, headers: HeaderMap) -> Response {
    let browser = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if browser {
        return Redirect::to("/ui").into_response();
    }
    let status = match s.orchestrator().reads().counts().await {
        Ok(_) => "healthy",
        Err(_) => "degraded",
    };
    Json(json!({
        "name": "scrum-orchestrator",
        "version": env!("CARGO_PKG_VERSION"),
        "status": status,
        "dashboard": "/ui",
        "health": "/health",
    }))
    .into_response()
}

#[derive(Deserialize)]
struct LoginArgs {
    next: Option<String>,
}

/// Where to go after the login: a dashboard page, never another site.
fn after_login(next: Option<&str>) -> String {
    match next {
        Some(n) if is_ui(n) && !n.starts_with("/ui/events") && !n.contains("//") => n.to_string(),
        _ => "/ui".to_string(),
    }
}

fn login_form(v: &Viewer, next: &str, wrong: bool) -> maud::Markup {
    let page = Page {
        notice: wrong.then_some(Notice {
            error: true,
            text: "That is not the API token.",
        }),
        live: false,
        ..v.page("Log in", Nav::None)
    };
    let form = html! {
        form.login method="post" action="/ui/login" {
            (layout::csrf_field(&v.csrf))
            input type="hidden" name="next" value=(next);
            p {
                label for="token" { "API token (ORCHESTRATOR_API_TOKEN)" }
                br;
                input #token type="password" name="token" autocomplete="current-password" required;
            }
            button type="submit" { "Log in" }
        }
    };
    page.render(form, html! {})
}

async fn login_page(
    State(s): State<ApiState>,
    v: Viewer,
    Query(args): Query<LoginArgs>,
) -> Response {
    let next = after_login(args.next.as_deref());
    if s.config().token.is_none() || v.logged_in {
        return Redirect::to(&next).into_response();
    }
    login_form(&v, &next, false).into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
    next: Option<String>,
}

async fn login(State(s): State<ApiState>, v: Viewer, Form(f): Form<LoginForm>) -> Response {
    let next = after_login(f.next.as_deref());
    let Some(token) = &s.config().token else {
        return Redirect::to(&next).into_response();
    };
    if !v.csrf.accepts(&f.csrf) {
        return actions::stale_form();
    }
    if !token.matches(f.token.trim()) {
        tracing::warn!("dashboard login refused: wrong API token");
        return (StatusCode::UNAUTHORIZED, login_form(&v, &next, true)).into_response();
    }
    let mut resp = Redirect::to(&next).into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        auth::session_cookie(&auth::new_session(token)),
    );
    resp
}

#[derive(Deserialize)]
struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(v: Viewer, Form(f): Form<LogoutForm>) -> Response {
    if !v.csrf.accepts(&f.csrf) {
        return actions::stale_form();
    }
    let mut resp = Redirect::to("/ui/login").into_response();
    resp.headers_mut()
        .append(header::SET_COOKIE, auth::cleared_session());
    resp
}

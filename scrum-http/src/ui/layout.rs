//! The page shell every dashboard page shares, the embedded assets, and small
//! pieces of markup (times, states, action buttons).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use scrum_core::Timestamp;

use super::auth::Csrf;

/// What a page is, for the navigation's highlight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Nav {
    Overview,
    Queue,
    Workers,
    WriteBack,
    None,
}

/// A whole page.
pub(crate) struct Page<'a> {
    /// The `<title>` and `<h1>`.
    pub(crate) title: &'a str,
    /// Which navigation entry is current.
    pub(crate) nav: Nav,
    /// This page's own address (path and query), which live updates fetch again.
    pub(crate) url: &'a str,
    /// Whether the viewer is logged in (a logout button is shown).
    pub(crate) logged_in: bool,
    /// The CSRF token forms carry.
    pub(crate) csrf: &'a Csrf,
    /// A note from the action just done, or an error.
    pub(crate) notice: Option<Notice<'a>>,
    /// Whether the page follows the fleet live (not the login or a confirmation).
    pub(crate) live: bool,
}

/// A line shown at the top of a page after an action.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Notice<'a> {
    pub(crate) error: bool,
    pub(crate) text: &'a str,
}

impl Page<'_> {
    /// The page: `controls` above the live part (kept while the live part is
    /// fetched again, so a half-typed filter survives), then `live`.
    pub(crate) fn render(&self, controls: Markup, live: Markup) -> Markup {
        let item = |nav: Nav, href: &str, label: &str| {
            html! {
                a href=(href) aria-current=[(self.nav == nav).then_some("page")] { (label) }
            }
        };
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (self.title) " · scrum-orchestrator" }
                    link rel="stylesheet" href="/ui/assets/style.css";
                    script src="/ui/assets/htmx.min.js" defer {}
                    script src="/ui/assets/sse.js" defer {}
                }
                body hx-ext=[self.live.then_some("sse")]
                    sse-connect=[self.live.then_some("/ui/events")] {
                    header {
                        nav {
                            a.brand href="/ui" { "scrum-orchestrator" }
                            (item(Nav::Overview, "/ui", "Overview"))
                            (item(Nav::Queue, "/ui/queue", "Queue"))
                            (item(Nav::Workers, "/ui/workers", "Workers"))
                            (item(Nav::WriteBack, "/ui/writeback", "Write-back"))
                            @if self.logged_in {
                                form.logout method="post" action="/ui/logout" {
                                    (csrf_field(self.csrf))
                                    button type="submit" { "Log out" }
                                }
                            }
                        }
                    }
                    main {
                        h1 { (self.title) }
                        @if let Some(n) = self.notice {
                            p.notice.error[n.error] role="status" { (n.text) }
                        }
                        (controls)
                        @if self.live {
                            div #live hx-get=(self.url) hx-trigger="sse:change" hx-select="#live"
                                hx-swap="outerHTML" {
                                (live)
                            }
                        } @else {
                            (live)
                        }
                    }
                }
            }
        }
    }
}

/// The hidden field every form carries.
pub(crate) fn csrf_field(csrf: &Csrf) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf.0); }
}

/// A button that leads to the confirmation page of `action` (a plain GET form:
/// nothing happens before the operator confirms there).
pub(crate) fn action_button(action: &str, label: &str, fields: &[(&str, String)]) -> Markup {
    html! {
        form.inline method="get" action="/ui/confirm" {
            input type="hidden" name="action" value=(action);
            @for (name, value) in fields {
                input type="hidden" name=(name) value=(value);
            }
            button type="submit" data-action=(action) { (label) }
        }
    }
}

/// A time as `2026-12-01 19:30:12 UTC`, with how long ago (or ahead) it is.
pub(crate) fn time(t: Timestamp, now: Timestamp) -> Markup {
    let rfc = t.to_rfc3339();
    let shown = format!("{} {} UTC", &rfc[..10], &rfc[11..19]);
    html! { time datetime=(rfc) title=(shown) { (shown) " " small { "(" (ago(t, now)) ")" } } }
}

/// A time or a dash.
pub(crate) fn maybe_time(t: Option<Timestamp>, now: Timestamp) -> Markup {
    match t {
        Some(t) => time(t, now),
        None => html! { "–" },
    }
}

/// `12 s ago`, `in 3 min`.
pub(crate) fn ago(t: Timestamp, now: Timestamp) -> String {
    let (d, future) = if t > now {
        (t.since(now), true)
    } else {
        (now.since(t), false)
    };
    let s = d.as_secs();
    let amount = match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86_400),
    };
    if future {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

/// A state as a coloured badge.
pub(crate) fn state_badge(state: &str) -> Markup {
    html! { span class={ "state state-" (state) } { (state.replace('_', " ")) } }
}

/// The link to a task's page: `/ui/tasks/owner/repo/N` for GitHub's, `/ui/task?id=`
/// for a forge's nested names (a repository name holds no character but `:` and
/// `/` that a query needs encoded; the `#` is).
pub(crate) fn task_href(id: &scrum_core::TaskId) -> String {
    let repo = id.repo_name();
    match repo.forge() == scrum_core::model::GITHUB {
        true => format!("/ui/tasks/{}/{}", id.repo(), id.number()),
        false => format!("/ui/task?id={}%23{}", id.repo(), id.number()),
    }
}

/// An error page: `status`, a title and what to do.
pub(crate) fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · scrum-orchestrator" }
                link rel="stylesheet" href="/ui/assets/style.css";
            }
            body {
                header { nav { a.brand href="/ui" { "scrum-orchestrator" } } }
                main {
                    h1 { (title) }
                    p.notice.error { (message) }
                    p { a href="/ui" { "Back to the overview" } }
                }
            }
        }
    };
    (status, page).into_response()
}

const HTMX: &str = include_str!("assets/htmx.min.js");
const SSE: &str = include_str!("assets/sse.js");
const STYLE: &str = include_str!("assets/style.css");

/// `/ui/assets/{name}`: the embedded scripts and styles.
pub(crate) async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    let (body, kind) = match name.as_str() {
        "htmx.min.js" => (HTMX, "text/javascript; charset=utf-8"),
        "sse.js" => (SSE, "text/javascript; charset=utf-8"),
        "style.css" => (STYLE, "text/css; charset=utf-8"),
        _ => return error_page(StatusCode::NOT_FOUND, "Not found", "No such asset."),
    };
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_people_say_them() {
        let now = Timestamp(10_000_000);
        assert_eq!(ago(Timestamp(9_990_000), now), "10 s ago");
        assert_eq!(ago(Timestamp(10_180_000), now), "in 3 min");
        assert_eq!(ago(Timestamp(10_000_000 - 7_200_000), now), "2 h ago");
    }
}

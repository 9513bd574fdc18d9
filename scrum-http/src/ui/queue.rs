//! `GET /ui/queue`: tasks filtered by state (or blocked: pending tasks waiting for
//! their dependencies) and repository, searched by title, a page at a time.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;
use scrum_core::engine::TaskSearch;
use scrum_core::{Status, TaskState};
use serde::Deserialize;

use super::layout::{Nav, state_badge, task_href, time};
use super::{Viewer, failed, urlencode};
use crate::server::ApiState;

/// Tasks per page.
pub(crate) const PAGE: usize = 50;

/// The filter's name for pending tasks blocked by their dependencies.
const BLOCKED: &str = "blocked";

#[derive(Debug, Default, Deserialize)]
pub(crate) struct QueueArgs {
    /// A state name, `blocked`, or empty for every state.
    #[serde(default)]
    state: String,
    /// `owner/name`, or empty.
    #[serde(default)]
    repo: String,
    /// Words of the title, or empty.
    #[serde(default)]
    q: String,
    /// The page, from 1.
    page: Option<usize>,
}

impl QueueArgs {
    /// This query with page `page`, as a URL.
    fn href(&self, page: usize) -> String {
        format!(
            "/ui/queue?state={}&repo={}&q={}&page={page}",
            urlencode(&self.state),
            urlencode(&self.repo),
            urlencode(&self.q)
        )
    }
}

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

pub(crate) async fn page(
    State(s): State<ApiState>,
    v: Viewer,
    Query(args): Query<QueueArgs>,
) -> Response {
    let o = s.orchestrator();
    let blocked = args.state == BLOCKED;
    let state = match args.state.as_str() {
        "" => None,
        BLOCKED => Some(TaskState::Pending),
        name => match name.parse::<TaskState>() {
            Ok(st) => Some(st),
            Err(e) => return failed(e),
        },
    };
    let page = args.page.unwrap_or(1).max(1);
    let search = TaskSearch {
        states: state.into_iter().collect(),
        repository: non_empty(&args.repo),
        text: non_empty(&args.q),
        offset: (page - 1) * PAGE,
        limit: PAGE,
        blocked,
    };
    let (found, counts) = match tokio::try_join!(o.reads().find_tasks(&search), o.reads().counts())
    {
        Ok(read) => read,
        Err(e) => return failed(e),
    };
    let total = found.total.unwrap_or_else(|| {
        let counts = serde_json::to_value(counts).unwrap_or_default();
        let count = |name: &str| counts[name].as_u64().unwrap_or(0) as usize;
        match state {
            Some(st) => count(st.as_str()),
            None => TaskState::ALL.iter().map(|st| count(st.as_str())).sum(),
        }
    });
    let pages = total.div_ceil(PAGE).max(1);
    let lock_holders = match o.reads().lock_holders(&found.tasks).await {
        Ok(holders) => holders,
        Err(e) => return failed(e),
    };
    let now = o.now();
    let controls = html! {
        form.filters method="get" action="/ui/queue" role="search" {
            label { "State"
                select name="state" {
                    option value="" selected[state.is_none()] { "every state" }
                    @for st in TaskState::ALL {
                        option value=(st.as_str()) selected[state == Some(st) && !blocked] { (st.as_str().replace('_', " ")) }
                        @if st == TaskState::Pending {
                            option value=(BLOCKED) selected[blocked] { "blocked" }
                        }
                    }
                }
            }
            label { "Repository" input type="text" name="repo" value=(args.repo) placeholder="owner/name"; }
            label { "Title" input type="search" name="q" value=(args.q) placeholder="words of the title"; }
            button type="submit" { "Show" }
        }
    };
    let live = html! {
        p.muted #total { (total) " tasks" @if pages > 1 { ", page " (page) " of " (pages) } }
        @if found.tasks.is_empty() {
            p { "No task matches." }
        } @else {
            div.table { table #tasks {
                thead { tr {
                    th { "Task" } th { "Title" } th { "State" } th.wide { "Attempts" }
                    th.wide { "Worker" } th { "Updated" } th.wide { "Last error" }
                } }
                tbody { @for (t, holder) in found.tasks.iter().zip(&lock_holders) {
                    tr {
                        td { a href=(task_href(&t.id)) { (t.id) } }
                        td { (t.issue.title) }
                        td { (state_badge(t.state().as_str()))
                             @if t.stop_requested() { " " small { "cancelling" } }
                             @if let Status::Scheduled { at } = t.status {
                                 br; small.retry-at { "waiting for its retry: retry at " (time(at, now)) }
                             }
                             @if let Some(b) = &t.blocked() {
                                 " " (state_badge(BLOCKED)) br; small.blocked { (b.describe()) }
                             }
                             @if let Some(h) = holder {
                                 br; small.lock-wait { "waiting for a lock held by " a href=(task_href(h)) { (h) } }
                             } }
                        td.wide { (t.attempts()) "/" (t.max_attempts()) }
                        td.wide { (t.holder().map(ToString::to_string).unwrap_or_default()) }
                        td { (time(t.updated_at, now)) }
                        td.wide { small { (t.last_error().unwrap_or("")) } }
                    }
                } }
            } }
        }
        nav.pager aria-label="Pages" {
            @if page > 1 { a rel="prev" href=(args.href(page - 1)) { "← Previous page" } }
            @if page < pages { a rel="next" href=(args.href(page + 1)) { "Next page →" } }
        }
    };
    v.page("Queue", Nav::Queue)
        .render(controls, live)
        .into_response()
}

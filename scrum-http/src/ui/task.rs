//! `GET /ui/tasks/{owner}/{repo}/{number}` (a GitHub task) and `GET /ui/task?id=ID`
//! (any task, `gitlab:group/sub/project#12` too): one task: its run and attempts (drawn
//! on a time axis, and listed) with a timeline, the worker and lease, what blocks it (its open blockers and any
//! dependency problem), the failure, the pull request and cost, the review a
//! rework run answers, and its GitHub effects with whether they landed.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use scrum_core::{
    LeaseKind, OutboxEntry, Outcome, Status, Stop, Task, TaskId, TaskState, Timestamp,
};

use super::charts;
use super::layout::{Nav, action_button, maybe_time, state_badge, task_href, time};
use super::pages::effect_state;
use super::{Viewer, failed};
use crate::server::ApiState;

/// One line of the timeline.
struct Moment {
    at: Timestamp,
    what: Markup,
}

fn outcome(o: Outcome) -> &'static str {
    match o {
        Outcome::Completed => "the worker completed it",
        Outcome::Failed => "the worker reported a failure",
        Outcome::Lost => "the lease lapsed: worker lost",
        Outcome::Released => "the worker handed it back (no attempt spent)",
        Outcome::Parked => "the worker asked for clarification (no attempt spent)",
        Outcome::Cancelled { .. } => "it was cancelled while held",
        Outcome::Withdrawn { .. } => "its text awaited review (no attempt spent)",
    }
}

/// The task's life in time order: the run queued, each attempt claimed and
/// ended, what held it, the backoff, the outcome and its labels.
fn timeline(t: &Task) -> Vec<Moment> {
    let mut m = vec![Moment {
        at: t.enqueued_at(),
        what: html! { "Run " (t.run.number) " queued" },
    }];
    for a in &t.run.attempts {
        m.push(Moment {
            at: a.started_at,
            what: html! { "Attempt " (a.number) " claimed by " strong { (a.worker) } },
        });
        if let (Some(at), Some(o)) = (a.ended_at, a.outcome) {
            m.push(Moment {
                at,
                what: html! { "Attempt " (a.number) " ended: " (outcome(o))
                @if let Some(e) = &a.error { "; " q { (e) } } },
            });
        }
    }
    match &t.status {
        Status::Running { lease, .. } => m.push(Moment {
            at: lease.expires_at,
            what: html! { "The lease lapses unless renewed" },
        }),
        Status::Scheduled { at } => m.push(Moment {
            at: *at,
            what: html! { "The next attempt may start (backoff)" },
        }),
        _ => {}
    }
    if let Some(b) = t.blocked() {
        m.push(Moment {
            at: b.since,
            what: html! { "Blocked: " (b.describe()) },
        });
    }
    if let Some(f) = t.follow_up() {
        m.push(Moment {
            at: f.requested_at,
            what: html! { "Run " (t.run.number) " queued again, follow-up " (f.round) ": " (f.cause.describe()) " (" (f.author) ") on its pull request" },
        });
    }
    if let Some(at) = t.finished_at() {
        m.push(Moment {
            at,
            what: html! { "Finished: " (state_badge(t.state().as_str())) },
        });
    }
    if let Some(at) = t.effects_written_at() {
        m.push(Moment {
            at,
            what: html! { "The outcome's labels and comment landed on GitHub" },
        });
    }
    m.sort_by_key(|x| x.at);
    m
}

fn effects(t: &Task, waiting: &[OutboxEntry], now: Timestamp) -> Markup {
    html! {
        @if waiting.is_empty() {
            p #effects-landed {
                "Every GitHub write of this task landed"
                @if let Some(at) = t.effects_written_at() { ", the outcome's " (time(at, now)) }
                "."
            }
        } @else {
            div.table { table #effects {
                thead { tr { th { "#" } th { "Write" } th { "Attempt" } th { "Failures" } th { "State" } th.wide { "Last error" } th {} } }
                tbody { @for e in waiting {
                    tr #{ "effect-" (e.id) } {
                        td { (e.id) }
                        td { (e.effect.kind.name().replace('_', " ")) }
                        td { (e.effect.attempt) }
                        td { (e.failures) }
                        td { (effect_state(e, now)) }
                        td.wide { small { (e.last_error.as_deref().unwrap_or("")) } }
                        td { @if e.dead { (action_button("retry-effects", "Retry", &[("effect", e.id.to_string())])) } }
                    }
                } }
            } }
        }
    }
}

fn actions(t: &Task) -> Markup {
    let fields = [("task", t.id.to_string())];
    html! {
        div.actions {
            @if matches!(t.state(), TaskState::Failed | TaskState::Cancelled) {
                (action_button("retry", "Retry", &fields))
            }
            @if !t.state().is_terminal() && !t.stop_requested() {
                (action_button("cancel", "Cancel", &fields))
            }
        }
    }
}

pub(crate) async fn page(
    State(s): State<ApiState>,
    v: Viewer,
    Path((owner, repo, number)): Path<(String, String, u64)>,
) -> Response {
    match TaskId::new(&format!("{owner}/{repo}"), number) {
        Ok(id) => show(s, v, id).await,
        Err(e) => failed(e),
    }
}

/// `?id=` of `/ui/task`: a whole task id, whatever its forge.
#[derive(serde::Deserialize)]
pub(crate) struct ById {
    id: String,
}

/// The page of the task `?id=` names: ids with a forge and a nested path
/// (`gitlab:group/sub/project#12`) have no place in `/ui/tasks/{owner}/{repo}/{number}`.
pub(crate) async fn page_by_id(
    State(s): State<ApiState>,
    v: Viewer,
    Query(by): Query<ById>,
) -> Response {
    match by.id.parse::<TaskId>() {
        Ok(id) => show(s, v, id).await,
        Err(e) => failed(e),
    }
}

async fn show(s: ApiState, v: Viewer, id: TaskId) -> Response {
    let o = s.orchestrator().reads();
    let (t, waiting, writes) =
        match tokio::try_join!(o.task(&id), o.task_effects(&id), o.write_health()) {
            Ok(read) => read,
            Err(e) => return failed(e),
        };
    let lock_holder = match o.lock_holders(std::slice::from_ref(&t)).await {
        Ok(mut holders) => holders.pop().flatten(),
        Err(e) => return failed(e),
    };
    let now = o.now();
    let held = t.state() == TaskState::Pending && writes.refused().any(|r| r == id.repo());
    let completion = t.completion().cloned().unwrap_or_default();
    let live = html! {
        p.lead { strong { (t.issue.title) } " " (state_badge(t.state().as_str()))
            @if matches!(t.stop(), Some(Stop::Cancel { .. })) { " " (state_badge("cancelling")) " the worker is told at its next heartbeat" }
            @if t.blocked().is_some() { " " (state_badge("blocked")) }
            @if let Status::Scheduled { at } = t.status { " " span #retry-at { "waiting for its retry: the next attempt may start " (time(at, now)) } } }
        @if scrum_core::clean::needs_cleaning(&t.issue.title) || scrum_core::clean::needs_cleaning(&t.issue.body) {
            p.notice #text-cleaned { "Text removed: the issue holds what a reader cannot see (HTML comments, invisible characters, hidden HTML); agents get it without that." }
        }
        @if let Some(b) = t.blocked() {
            div.notice.waiting #blocked {
                p { "Blocked: not handed out until every blocker is closed." }
                @if !b.by.is_empty() {
                    ul #blockers { @for by in &b.by { li { "waiting for " (by) } } }
                }
                @if let Some(problem) = &b.problem {
                    p #dependency-problem { "Dependency problem: " (problem) }
                }
            }
        }
        @if let Some(h) = &lock_holder {
            p.notice.waiting #lock-wait { "Waiting for a lock held by " a href=(task_href(h)) { (h) }
                ": their declared paths overlap, so they are never in progress at once." }
        }
        @if held {
            p.notice.error #held { "Held: GitHub refuses this orchestrator's writes to " (id.repo())
                ", so it is not handed out until a write there lands. "
                a href="/ui/writeback" { "Write-back" } }
        }
        (actions(&t))
        dl.facts {
            dt { "Run" } dd { (t.run.number) " (" (run_cause(&t)) ")" }
            dt { "State" } dd #status { (t.status.name()) }
            dt { "Attempts" } dd #attempts { (t.attempts()) " of " (t.max_attempts()) }
            dt { "Labels" } dd { (t.issue.labels.join(", ")) }
            @if !t.locks.is_empty() {
                dt { "Locks" } dd #locks { (t.locks.join(", ")) }
            }
            dt { "Queued" } dd { (time(t.enqueued_at(), now)) }
            dt { "Updated" } dd { (time(t.updated_at, now)) }
            dt { "Finished" } dd { (maybe_time(t.finished_at(), now)) }
            dt { "Worker" } dd #worker {
                @match t.last_attempt() {
                    Some(a) => { a href="/ui/workers" { (a.worker) }
                        @if t.holder().is_none() { " " small { "(the last holder)" } } }
                    None => { "–" }
                }
            }
            @if let Some(l) = t.lease() {
                dt { "Lease" } dd #lease {
                    "expires " (time(l.expires_at, now)) ", renewed at most until " (time(l.deadline, now))
                    @if l.kind == LeaseKind::RunTime { " (a worker that sends no heartbeats: held for the maximum run time)" }
                }
            }
            dt { "Failure" } dd #failure { (t.last_error().unwrap_or("–")) }
            dt { "Pull request" } dd #pr {
                @match &completion.pr_url {
                    Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
                        a href=(url) rel="noopener noreferrer" { (url) }
                    }
                    Some(url) => { (url) }
                    None => { "–" }
                }
            }
            @if let Some(f) = t.follow_up() {
                dt { "Follow-up" } dd #follow-up {
                    "Round " (f.round) ", " (f.cause.describe()) " (" (f.author) ") on " (f.pr_url) ": " q { (f.feedback) }
                }
            }
            @if let Some(f) = t.follow_ups_exhausted() {
                dt { "Left for people" } dd #follow-ups-exhausted {
                    "The follow-up rounds are used up. Still wrong: " (f.cause.describe()) ": " q { (f.feedback) }
                }
            }
            @let rounds = crate::server::views::rounds(&t);
            @if !rounds.is_empty() {
                dt { "Rounds" } dd #rounds {
                    ol { @for r in &rounds { li { "run " (r.run) " (" (r.cause) "): " (r.outcome) } } }
                }
            }
            dt { "Cost" } dd #cost {
                // The run's: every attempt's report, failures included.
                (t.spend().describe(completion.revisions).unwrap_or_else(|| "–".into()))
            }
        }
        h2 { "Attempts" }
        (charts::attempts(&t, now))
        (attempts(&t, now))
        h2 { "Timeline" }
        ol.timeline #timeline {
            @for m in timeline(&t) { li { (time(m.at, now)) " — " (m.what) } }
        }
        h2 { "GitHub writes" }
        (effects(&t, &waiting, now))
    };
    let title = id.to_string();
    v.page(&title, Nav::Queue)
        .render(html! {}, live)
        .into_response()
}

/// Why the run was queued, for people.
fn run_cause(t: &Task) -> &'static str {
    match &t.run.cause {
        scrum_core::RunCause::Ready => "labelled ready",
        scrum_core::RunCause::Retry => "an operator's retry",
        scrum_core::RunCause::FollowUp(f) => f.cause.describe(),
    }
}

/// Every attempt of the run: who, when, how it ended, why, and what it cost.
fn attempts(t: &Task, now: Timestamp) -> Markup {
    if t.run.attempts.is_empty() {
        return html! { p #attempt-list { "No attempt yet." } };
    }
    html! {
        table #attempt-list {
            thead { tr { th { "#" } th { "Worker" } th { "Started" } th { "Ended" } th { "Outcome" } th { "Error" } th { "Cost" } } }
            tbody {
                @for a in &t.run.attempts {
                    tr.attempt {
                        td { (a.number) }
                        td { (a.worker) }
                        td { (time(a.started_at, now)) }
                        td { (maybe_time(a.ended_at, now)) }
                        td.outcome { (a.outcome.map_or("running", Outcome::as_str)) }
                        td { (a.error.as_deref().unwrap_or("–")) }
                        td { (a.cost_usd.map_or_else(|| "–".to_string(), |c| format!("${c:.2}"))) }
                    }
                }
            }
        }
    }
}

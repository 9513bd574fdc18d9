//! The overview, the workers (and a worker's log) and write-back pages.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use scrum_core::engine::{WorkerInfo, WorkerStatus};
use scrum_core::{AgentSandbox, HostHealth, OutboxEntry, TaskFilter, TaskState, Timestamp};

use super::charts;
use super::layout::{Nav, action_button, ago, maybe_time, state_badge, task_href, time};
use super::{Viewer, failed};
use crate::server::ApiState;

/// `GET /ui`: counts by state, the charts, the last hour, GitHub, the leader,
/// dispatch.
pub(crate) async fn overview(State(s): State<ApiState>, v: Viewer) -> Response {
    let o = s.orchestrator();
    let every = TaskFilter::default();
    let (counts, hour, workers, writes, tasks) = match tokio::try_join!(
        o.reads().counts(),
        o.reads().outcomes_within(Duration::from_secs(3600)),
        o.reads().workers(),
        o.reads().write_health(),
        o.reads().tasks(&every),
    ) {
        Ok(read) => read,
        Err(e) => return failed(e),
    };
    let status = o.reads().status();
    let now = o.now();
    // Every count the queue keeps, by name, in lifecycle order: a state added
    // later shows up here too, after the known ones.
    let counts = serde_json::to_value(counts).unwrap_or_default();
    let known: Vec<&str> = TaskState::ALL.iter().map(|s| s.as_str()).collect();
    let rest = counts
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k.as_str())
        .filter(|k| !known.contains(k));
    let counts: Vec<(String, u64)> = known
        .iter()
        .copied()
        .chain(rest)
        .map(|k| (k.to_string(), counts[k].as_u64().unwrap_or(0)))
        .collect();
    let busy = workers
        .iter()
        .filter(|w| w.status == WorkerStatus::Busy)
        .count();
    let idle = workers
        .iter()
        .filter(|w| w.status == WorkerStatus::Idle)
        .count();
    let live = html! {
        section aria-label="Tasks by state" {
            h2 { "Tasks" }
            div.cards {
                @for (state, n) in &counts {
                    a.card #{ "count-" (state) } href={ "/ui/queue?state=" (state) } {
                        span.n { (n) }
                        span.label { (state.replace('_', " ")) }
                    }
                }
            }
        }
        (charts::overview(&tasks, now))
        section aria-label="The last hour" {
            h2 { "The last hour" }
            div.cards {
                a.card #hour-completed href="/ui/queue?state=completed" {
                    span.n { (hour.completed) } span.label { "completed" }
                }
                a.card #hour-failed href="/ui/queue?state=failed" {
                    span.n { (hour.failed) } span.label { "failed" }
                }
            }
        }
        section aria-label="The orchestrator" {
            h2 { "The orchestrator" }
            dl.facts {
                dt { "Dispatch" }
                dd #dispatch {
                    @if status.paused {
                        (state_badge("paused")) " workers get no new tasks "
                        (action_button("resume", "Resume dispatch", &[]))
                    } @else {
                        (state_badge("running")) " "
                        (action_button("pause", "Pause dispatch", &[]))
                    }
                }
                dt { "Leader" }
                dd #leader {
                    @if status.leader {
                        "this orchestrator (" (o.config().instance) ") polls, reaps and writes back"
                    } @else {
                        "another orchestrator on the store; this one serves workers"
                    }
                }
                dt { "GitHub" }
                dd #github {
                    @if status.github_connected {
                        (state_badge("ok")) " the last poll succeeded"
                    } @else {
                        (state_badge("degraded")) " "
                        (status.github_reason.as_deref().unwrap_or("no successful poll yet"))
                    }
                    @if let Some(t) = status.last_poll { br; "last poll " (time(t, now)) }
                }
                dt { "Rate limit" }
                dd #rate-limit {
                    @match status.rate_limit_remaining {
                        Some(n) => { (n) " requests left" }
                        None => { "not reported yet" }
                    }
                    @if let Some(t) = status.rate_limit_reset { ", resets " (ago(t, now)) }
                }
                dt { "Write-back" }
                dd #writeback {
                    @if writes.is_degraded() {
                        (state_badge("degraded")) " "
                        a href="/ui/writeback" { (writes.repositories.len()) " repositories with failing writes" }
                    } @else if writes.repositories.is_empty() {
                        (state_badge("ok")) " every write landed or is due"
                    } @else {
                        a href="/ui/writeback" { "some writes back off and will be tried again" }
                    }
                }
                @for f in crate::server::views::forges(&status, &writes) {
                    dt { "Forge " (f.forge) }
                    dd #{ "forge-" (f.forge) } {
                        @if f.status.connected {
                            (state_badge("ok")) " connected"
                        } @else {
                            (state_badge("degraded")) " "
                            (f.status.reason.as_deref().unwrap_or("no successful poll yet"))
                        }
                        "; rate limit: "
                        @match f.status.rate_limit_remaining {
                            Some(n) => { (n) " requests left" }
                            None => { "not reported yet" }
                        }
                        @if let Some(t) = f.status.rate_limit_reset { ", resets " (ago(t, now)) }
                        "; write-back: "
                        @if f.refused > 0 || f.set_aside > 0 {
                            (state_badge("degraded")) " " (f.failing_repos) " repositories with failing writes"
                        } @else if f.failing_repos > 0 {
                            "some writes back off"
                        } @else {
                            "ok"
                        }
                    }
                }
                dt { "Workers" }
                dd #workers {
                    a href="/ui/workers" { (workers.len()) " known" } ": " (busy) " busy, " (idle) " idle"
                }
                dt { "Version" }
                dd { (env!("CARGO_PKG_VERSION")) }
            }
        }
    };
    v.page("Overview", Nav::Overview)
        .render(html! {}, live)
        .into_response()
}

fn health_badge(h: HostHealth) -> Markup {
    let name = serde_json::to_value(h)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "unknown".to_string());
    state_badge(&name)
}

/// The sandbox a worker's agents run in; `none` stands out, as a warning.
fn sandbox_badge(s: Option<AgentSandbox>) -> Markup {
    html! {
        @match s {
            Some(AgentSandbox::None) => span.state.state-unsandboxed title="SANDBOX=none: agents run as the worker" { "none" },
            Some(s) => span.state.state-sandboxed { (s) },
            None => { "–" },
        }
    }
}

fn status_name(s: WorkerStatus) -> &'static str {
    match s {
        WorkerStatus::Busy => "busy",
        WorkerStatus::Idle => "available",
        WorkerStatus::Draining => "draining",
        _ => "offline",
    }
}

fn worker_row(w: &WorkerInfo, now: Timestamp, logs: bool) -> Markup {
    let draining = w.status == WorkerStatus::Draining;
    let known = w.last_seen.is_some();
    html! {
        tr #{ "worker-" (w.id) } {
            td { strong { (w.id) } br; small { (w.ip.as_deref().unwrap_or("")) } }
            td { (state_badge(status_name(w.status))) }
            td {
                (health_badge(w.health))
                @if let Some(r) = &w.health_reason { br; small { (r) } }
            }
            td {
                @match &w.current_task {
                    Some(t) => { a href=(task_href(t)) { (t) } }
                    None => { "–" }
                }
            }
            td { (maybe_time(w.last_seen, now)) }
            td { (sandbox_badge(w.sandbox)) }
            td.wide { (w.completed) " / " (w.failed) }
            td {
                @if logs { a href={ "/ui/workers/" (super::urlencode(&w.id)) "/logs" } { "logs" } " " }
                @if known {
                    @if draining {
                        (action_button("undrain", "Undrain", &[("worker", w.id.clone())]))
                    } @else {
                        (action_button("drain", "Drain", &[("worker", w.id.clone())]))
                    }
                }
            }
        }
    }
}

/// `GET /ui/workers`: health, task held, last seen, the sandbox, the host probe,
/// logs.
pub(crate) async fn workers(State(s): State<ApiState>, v: Viewer) -> Response {
    let o = s.orchestrator();
    let workers = match o.reads().workers().await {
        Ok(w) => w,
        Err(e) => return failed(e),
    };
    let now = o.now();
    let logs = o.reads().probes_hosts();
    let live = html! {
        @if workers.is_empty() {
            p { "No worker has called yet, and no worker host is configured (WORKER_IPS)." }
        } @else {
            div.table {
                table #workers {
                    thead { tr {
                        th { "Worker" } th { "Status" } th { "Host probe" } th { "Task" }
                        th { "Last seen" } th { "Sandbox" } th.wide { "Done / failed" } th { "" }
                    } }
                    tbody { @for w in &workers { (worker_row(w, now, logs)) } }
                }
            }
        }
        @if !logs {
            p.muted { "Worker logs are fetched over SSH: set WORKER_IPS and WORKER_SSH_KEY to read them here." }
        }
    };
    v.page("Workers", Nav::Workers)
        .render(html! {}, live)
        .into_response()
}

/// `GET /ui/workers/{id}/logs`: the worker service's recent journal on its host.
pub(crate) async fn worker_logs(
    State(s): State<ApiState>,
    v: Viewer,
    Path(id): Path<String>,
) -> Response {
    let (host, logs) = match s.orchestrator().reads().worker_logs(&id, 200).await {
        Ok(l) => l,
        Err(e) => return failed(e),
    };
    let title = format!("Log of {id}");
    let live = html! {
        p { "The last 200 lines from " (host) ". " a href="/ui/workers" { "Back to the workers" } }
        pre { (logs) }
    };
    v.page(&title, Nav::Workers)
        .render(html! {}, live)
        .into_response()
}

/// What an effect is waiting for.
pub(crate) fn effect_state(e: &OutboxEntry, now: Timestamp) -> Markup {
    if e.dead {
        html! { (state_badge("dead")) " set aside" }
    } else if e.failures == 0 {
        html! { "due" }
    } else if e.next_attempt_at > now {
        html! { "backing off, next try " (ago(e.next_attempt_at, now)) }
    } else {
        html! { "due again" }
    }
}

/// `GET /ui/writeback`: failing and set-aside GitHub writes.
pub(crate) async fn writeback(State(s): State<ApiState>, v: Viewer) -> Response {
    let o = s.orchestrator();
    let (failing, health) =
        match tokio::try_join!(o.reads().failing_effects(false), o.reads().write_health()) {
            Ok(read) => read,
            Err(e) => return failed(e),
        };
    let now = o.now();
    let dead = failing.iter().filter(|e| e.dead).count();
    let live = html! {
        @if failing.is_empty() {
            p #no-failing { "No GitHub write is failing: every label and comment landed or is due." }
        } @else {
            h2 { "By repository" }
            div.table { table #repositories {
                thead { tr { th { "Repository" } th { "Backing off" } th { "Set aside" } th { "Refuses writes" } th.wide { "Last error" } th {} } }
                tbody { @for r in &health.repositories {
                    tr {
                        td { a href={ "/ui/queue?repo=" (super::urlencode(&r.repository)) } { (r.repository) } }
                        td { (r.failing) } td { (r.dead) }
                        td { @if r.refused { (state_badge("degraded")) " its tasks are held" } @else { "no" } }
                        td.wide { small { (r.last_error.as_deref().unwrap_or("")) } }
                        td { @if r.dead > 0 {
                            (action_button("retry-effects", "Retry set-aside", &[("repository", r.repository.clone())]))
                        } }
                    }
                } }
            } }
            h2 { "Failing writes" }
            @if dead > 0 {
                div.actions { (action_button("retry-effects", &format!("Retry all {dead} set-aside writes"), &[])) }
            }
            div.table { table #effects {
                thead { tr { th { "#" } th { "Task" } th { "Write" } th { "Failures" } th { "State" } th.wide { "Last error" } th {} } }
                tbody { @for e in &failing {
                    tr #{ "effect-" (e.id) } {
                        td { (e.id) }
                        td { a href=(task_href(&e.effect.task)) { (e.effect.task) } }
                        td { (e.effect.kind.name().replace('_', " ")) }
                        td { (e.failures) }
                        td { (effect_state(e, now)) }
                        td.wide { small { (e.last_error.as_deref().unwrap_or("")) } }
                        td { @if e.dead {
                            (action_button("retry-effects", "Retry", &[("effect", e.id.to_string())]))
                        } }
                    }
                } }
            } }
        }
    };
    v.page("Write-back", Nav::WriteBack)
        .render(html! {}, live)
        .into_response()
}

//! The dashboard's charts, drawn on the server as inline SVG: on the overview,
//! completions and failures per hour, the queue's depth and the busy workers, and
//! the cost per day per repository; on a task's page, its run's attempts as bars
//! on a time axis.
//!
//! They sit in a page's live part, so an open page draws them again whenever the
//! event stream says the fleet changed. `history` computes the figures from the
//! task records; `svg` draws them.

mod history;
mod svg;

use maud::{Markup, html};
use scrum_core::{Outcome, Status, Task, TaskState, Timestamp};

use history::{HOUR, OTHERS, Slot, TEN_MINUTES};
use svg::{Chart, Column, Lane, Lanes, Series, Unit};

/// The days the cost chart covers.
const COST_DAYS: usize = 30;

/// `10:00`, in UTC.
fn clock(t: Timestamp) -> String {
    t.to_rfc3339()[11..16].to_string()
}

/// `10:00:12`, in UTC.
fn clock_secs(t: Timestamp) -> String {
    t.to_rfc3339()[11..19].to_string()
}

/// `Dec 4`, in UTC.
fn date(t: Timestamp) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let rfc = t.to_rfc3339();
    let month: usize = rfc[5..7].parse().unwrap_or(1);
    let day: u32 = rfc[8..10].parse().unwrap_or(1);
    format!("{} {day}", MONTHS[month.clamp(1, 12) - 1])
}

/// `09:00–10:00 UTC`.
fn hours_tip(s: Slot) -> String {
    format!("{}–{} UTC", clock(s.start), clock(s.end))
}

fn series(name: &str, class: &str) -> Series {
    Series {
        name: name.to_string(),
        class: class.to_string(),
    }
}

/// A legend: each series' swatch, name and, when given, its total.
fn legend(series: &[Series], totals: &[String]) -> Markup {
    html! {
        ul.legend {
            @for (i, s) in series.iter().enumerate() {
                li data-series=(s.name) {
                    span class={ "swatch " (s.class) } {}
                    (s.name)
                    @if let Some(t) = totals.get(i) { " " strong { (t) } }
                }
            }
        }
    }
}

/// A chart in its figure, with its caption and legend.
fn figure(id: &str, caption: &str, chart: Markup, legend: Markup) -> Markup {
    html! {
        figure.chart #(id) {
            figcaption { (caption) }
            (chart)
            (legend)
        }
    }
}

/// Completed and failed runs per hour over the last day.
fn outcomes(tasks: &[Task], now: Timestamp) -> Markup {
    let hours = history::finished_per_hour(tasks, now);
    let columns: Vec<Column> = hours
        .iter()
        .enumerate()
        .map(|(i, (slot, f))| Column {
            label: (i % 6 == 0).then(|| clock(slot.start)),
            tip: hours_tip(*slot),
            values: vec![f64::from(f.completed), f64::from(f.failed)],
        })
        .collect();
    let done: u32 = hours.iter().map(|(_, f)| f.completed).sum();
    let failed: u32 = hours.iter().map(|(_, f)| f.failed).sum();
    let chart = Chart {
        label: format!(
            "Completed and failed tasks per hour, the last day: {done} completed, {failed} failed"
        ),
        series: vec![
            series("completed", "s-completed"),
            series("failed", "s-failed"),
        ],
        columns,
        unit: Unit::Count,
        empty: "No task finished in the last day.",
    };
    let totals = [done.to_string(), failed.to_string()];
    figure(
        "chart-outcomes",
        "Completed and failed per hour (UTC), the last day",
        svg::bars(&chart),
        legend(&chart.series, &totals),
    )
}

/// The queue's depth and the busy workers in each ten minutes of the last day.
fn load(tasks: &[Task], now: Timestamp) -> Markup {
    let slots = history::load(tasks, now);
    let per_label = (3 * HOUR / TEN_MINUTES) as usize;
    let columns: Vec<Column> = slots
        .iter()
        .enumerate()
        .map(|(i, (slot, l))| Column {
            label: (i % per_label == 0).then(|| clock(slot.start)),
            tip: format!("{} UTC, at most", clock(slot.start)),
            values: vec![f64::from(l.waiting), f64::from(l.running)],
        })
        .collect();
    let chart = Chart {
        label: "Tasks waiting in the queue and busy workers, the most at once in each ten minutes of the last day".to_string(),
        series: vec![
            series("waiting", "s-waiting"),
            series("busy workers", "s-running"),
        ],
        columns,
        unit: Unit::Count,
        empty: "No task waited or ran in the last day.",
    };
    let count = |state: TaskState| tasks.iter().filter(|t| t.state() == state).count();
    let totals = [
        format!("{} now", count(TaskState::Pending)),
        format!("{} now", count(TaskState::InProgress)),
    ];
    figure(
        "chart-load",
        "Queue depth and busy workers (the most at once in each 10 minutes, UTC), the last day",
        svg::steps(&chart),
        legend(&chart.series, &totals),
    )
}

/// What attempts cost per day over the last month, per repository.
fn cost(tasks: &[Task], now: Timestamp) -> Markup {
    let c = history::cost_per_day(tasks, now, COST_DAYS);
    let columns: Vec<Column> = c
        .days
        .iter()
        .zip(&c.amounts)
        .enumerate()
        .map(|(i, (day, amounts))| Column {
            label: ((COST_DAYS - 1 - i) % 7 == 0).then(|| date(day.start)),
            tip: date(day.start),
            values: amounts.clone(),
        })
        .collect();
    let series: Vec<Series> = c
        .repositories
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let class = if r == OTHERS {
                "s-others".to_string()
            } else {
                format!("s-repo-{i}")
            };
            series(r, &class)
        })
        .collect();
    let totals: Vec<String> = (0..series.len())
        .map(|r| Unit::Dollars.format(c.total(r)))
        .collect();
    let chart = Chart {
        label: "Cost per day per repository, the last 30 days".to_string(),
        series,
        columns,
        unit: Unit::Dollars,
        empty: "No attempt reported a cost in the last 30 days.",
    };
    figure(
        "chart-cost",
        "Cost per day (UTC) per repository, the last 30 days",
        svg::bars(&chart),
        legend(&chart.series, &totals),
    )
}

/// The overview's charts, from every task.
pub(crate) fn overview(tasks: &[Task], now: Timestamp) -> Markup {
    html! {
        section.charts aria-label="Charts" {
            (outcomes(tasks, now))
            (load(tasks, now))
            (cost(tasks, now))
        }
    }
}

/// How long `ms` milliseconds are, for people.
fn took(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

/// The run's attempts as bars on a time axis from its queueing to its end (or
/// now), coloured by outcome, with the scheduled retry marked.
pub(crate) fn attempts(t: &Task, now: Timestamp) -> Markup {
    if t.run.attempts.is_empty() {
        return html! {};
    }
    let span = history::run_span(t, now);
    let lanes = t
        .run
        .attempts
        .iter()
        .map(|a| {
            let end = a.ended_at.unwrap_or(now.max(a.started_at));
            let outcome = a.outcome.map_or("running", Outcome::as_str);
            let cost = a.cost_usd.map(|c| format!(", {}", Unit::Dollars.format(c)));
            let mut label = format!("#{} {}", a.number, a.worker);
            if label.chars().count() > 22 {
                label = label.chars().take(21).chain(['…']).collect();
            }
            Lane {
                label,
                from: history::fraction(span, a.started_at),
                to: history::fraction(span, end),
                outcome: outcome.to_string(),
                tip: format!(
                    "Attempt {} by {}: {outcome} after {}{}{}",
                    a.number,
                    a.worker,
                    took(end.0 - a.started_at.0),
                    cost.unwrap_or_default(),
                    a.error
                        .as_deref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                ),
            }
        })
        .collect();
    let mark = match t.status {
        Status::Scheduled { at } => Some((
            history::fraction(span, at),
            format!("retry {}", clock_secs(at)),
        )),
        _ => None,
    };
    let chart = Lanes {
        label: format!("The attempts of run {} on a time axis", t.run.number),
        lanes,
        start: format!("queued {} UTC", clock_secs(span.start)),
        end: format!(
            "{} UTC ({} later)",
            clock_secs(span.end),
            took(span.end.0 - span.start.0)
        ),
        mark,
    };
    let mut outcomes: Vec<&str> = chart.lanes.iter().map(|l| l.outcome.as_str()).collect();
    outcomes.sort_unstable();
    outcomes.dedup();
    html! {
        figure.chart #attempt-chart {
            figcaption { "Attempts of run " (t.run.number) " on a time axis (UTC)" }
            (svg::lanes(&chart))
            ul.legend {
                @for o in outcomes {
                    li { span class={ "swatch outcome-" (o) } {} (o) }
                }
            }
        }
    }
}

//! Charts drawn as inline SVG on the server: stacked bars, step lines, and lanes
//! of bars on a time axis. No script draws them; each mark carries a `<title>`
//! (a browser shows it on hover) and its figure in `data-` attributes.
//!
//! Every SVG element is written with a closing tag: inside `<svg>`, an HTML parser
//! reads `<rect>` without one as the parent of what follows.

use maud::{Markup, html};

/// The drawing's width in its own units (it scales to the page's width).
const WIDTH: f64 = 600.0;
/// The height of a bar or step chart.
const HEIGHT: f64 = 170.0;
/// Room for the y axis' labels on the left.
const LEFT: f64 = 48.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 10.0;
/// Room for the x axis' labels below.
const BOTTOM: f64 = 22.0;

/// What a chart's values are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unit {
    /// Whole things: tasks, workers.
    Count,
    /// US dollars.
    Dollars,
}

impl Unit {
    /// `3`, `$1.25`.
    pub(crate) fn format(self, v: f64) -> String {
        match self {
            Unit::Count => format!("{v:.0}"),
            Unit::Dollars if v != 0.0 && v.abs() < 0.01 => format!("${v:.3}"),
            Unit::Dollars => format!("${v:.2}"),
        }
    }
}

/// One series: its name (in the legend, the tips and `data-series`) and its
/// CSS class (its colour).
pub(crate) struct Series {
    pub(crate) name: String,
    pub(crate) class: String,
}

/// One column: the label under it (when there is room for one), what its tips
/// name it, and its value in each series.
pub(crate) struct Column {
    pub(crate) label: Option<String>,
    pub(crate) tip: String,
    pub(crate) values: Vec<f64>,
}

/// A chart of columns over time.
pub(crate) struct Chart {
    /// What it shows, for screen readers.
    pub(crate) label: String,
    pub(crate) series: Vec<Series>,
    pub(crate) columns: Vec<Column>,
    pub(crate) unit: Unit,
    /// What it says when every value is zero.
    pub(crate) empty: &'static str,
}

/// The smallest of 1, 2, 5 times a power of ten that is at least `v` (1 for
/// nothing): the top of the y axis.
pub(crate) fn nice_max(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let power = 10f64.powf(v.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .find(|m| m * power >= v * (1.0 - 1e-9))
        .unwrap_or(10.0);
    step * power
}

fn n(v: f64) -> String {
    format!("{v:.1}")
}

fn plot_height() -> f64 {
    HEIGHT - TOP - BOTTOM
}

/// The y of `v` on an axis up to `max`.
fn y(v: f64, max: f64) -> f64 {
    HEIGHT - BOTTOM - v / max * plot_height()
}

/// The axes, grid and labels of `c`, with the y axis up to `max`.
fn frame(c: &Chart, max: f64, empty: bool) -> Markup {
    let column = (WIDTH - LEFT - RIGHT) / c.columns.len().max(1) as f64;
    let whole = c.unit == Unit::Count && max.fract() == 0.0;
    let ticks: Vec<f64> = if whole && max as u64 % 2 == 1 {
        vec![0.0, max]
    } else {
        vec![0.0, max / 2.0, max]
    };
    html! {
        @for t in &ticks {
            line.grid x1=(n(LEFT)) x2=(n(WIDTH - RIGHT)) y1=(n(y(*t, max))) y2=(n(y(*t, max))) {}
            text.tick x=(n(LEFT - 6.0)) y=(n(y(*t, max) + 4.0)) text-anchor="end" { (c.unit.format(*t)) }
        }
        @for (i, col) in c.columns.iter().enumerate() {
            @if let Some(label) = &col.label {
                @let x = LEFT + column * (i as f64 + 0.5);
                text.tick x=(n(x)) y=(n(HEIGHT - 6.0)) text-anchor="middle" { (label) }
            }
        }
        @if empty {
            text.empty x=(n(LEFT + (WIDTH - LEFT - RIGHT) / 2.0)) y=(n(TOP + plot_height() / 2.0))
                text-anchor="middle" { (c.empty) }
        }
    }
}

/// The highest stack (or value) of `c`, and whether every value is zero.
fn highest(c: &Chart, stacked: bool) -> (f64, bool) {
    let top = c
        .columns
        .iter()
        .map(|col| {
            if stacked {
                col.values.iter().sum::<f64>()
            } else {
                col.values.iter().copied().fold(0.0, f64::max)
            }
        })
        .fold(0.0, f64::max);
    (nice_max(top), top <= 0.0)
}

/// One bar of a stacked column: where it is, its series and value.
struct Bar {
    x: f64,
    top: f64,
    height: f64,
    series: usize,
    column: usize,
    value: f64,
}

/// The bars of `c`'s stacked columns on an axis up to `max`.
fn stack(c: &Chart, max: f64) -> Vec<Bar> {
    let column = (WIDTH - LEFT - RIGHT) / c.columns.len().max(1) as f64;
    let width = (column * 0.8).max(1.0);
    let mut out = Vec::new();
    for (i, col) in c.columns.iter().enumerate() {
        let mut base = 0.0;
        for (s, v) in col.values.iter().enumerate().filter(|(_, v)| **v > 0.0) {
            let (top, bottom) = (y(base + v, max), y(base, max));
            out.push(Bar {
                x: LEFT + column * i as f64 + (column - width) / 2.0,
                top,
                height: (bottom - top).max(1.0),
                series: s,
                column: i,
                value: *v,
            });
            base += v;
        }
    }
    out
}

/// Stacked bars: each column's values on top of each other, the first series at
/// the bottom. Each bar carries `data-series` and `data-value`.
pub(crate) fn bars(c: &Chart) -> Markup {
    let (max, empty) = highest(c, true);
    let width = ((WIDTH - LEFT - RIGHT) / c.columns.len().max(1) as f64 * 0.8).max(1.0);
    html! {
        svg.chart viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-label=(c.label) {
            (frame(c, max, empty))
            @for b in stack(c, max) {
                @let s = &c.series[b.series];
                rect class={ "bar " (s.class) } x=(n(b.x)) y=(n(b.top)) width=(n(width))
                    height=(n(b.height)) data-series=(s.name) data-value=(b.value) {
                    title { (c.columns[b.column].tip) ": " (s.name) " " (c.unit.format(b.value)) }
                }
            }
        }
    }
}

/// The outline of series `k` of `c` as steps on an axis up to `max`: a closed
/// area down to the axis for the first series, a line for the others. A run of
/// equal values is one horizontal stroke.
fn outline(c: &Chart, k: usize, max: f64) -> String {
    let column = (WIDTH - LEFT - RIGHT) / c.columns.len().max(1) as f64;
    let ys: Vec<String> = c
        .columns
        .iter()
        .map(|col| n(y(col.values.get(k).copied().unwrap_or(0.0), max)))
        .collect();
    let base = n(y(0.0, max));
    let mut d = match k {
        0 => format!("M{} {base}", n(LEFT)),
        _ => format!("M{} {}", n(LEFT), ys.first().unwrap_or(&base)),
    };
    let mut last: Option<&String> = (k > 0).then(|| ys.first()).flatten();
    for (i, level) in ys.iter().enumerate() {
        if last != Some(level) {
            d.push_str(&format!("H{}V{level}", n(LEFT + column * i as f64)));
            last = Some(level);
        }
    }
    d.push_str(&format!("H{}", n(WIDTH - RIGHT)));
    if k == 0 {
        d.push_str(&format!("V{base}Z"));
    }
    d
}

/// Step lines: each series' value held across its column; the first series is
/// drawn as a filled area, the others as lines. Each path carries `data-series`
/// and its highest value as `data-peak`; each column a `<title>` with every
/// series' value.
pub(crate) fn steps(c: &Chart) -> Markup {
    let (max, empty) = highest(c, false);
    let column = (WIDTH - LEFT - RIGHT) / c.columns.len().max(1) as f64;
    let value = |col: &Column, k: usize| col.values.get(k).copied().unwrap_or(0.0);
    html! {
        svg.chart viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-label=(c.label) {
            (frame(c, max, empty))
            @for (k, s) in c.series.iter().enumerate() {
                @let peak = c.columns.iter().map(|col| value(col, k)).fold(0.0, f64::max);
                path class={ (if k == 0 { "area " } else { "line " }) (s.class) }
                    d=(outline(c, k, max)) data-series=(s.name) data-peak=(peak) {}
            }
            @for (i, col) in c.columns.iter().enumerate() {
                rect.hit x=(n(LEFT + column * i as f64)) y=(n(TOP)) width=(n(column))
                    height=(n(plot_height())) {
                    title {
                        (col.tip) ": "
                        @for (k, s) in c.series.iter().enumerate() {
                            @if k > 0 { ", " }
                            (c.unit.format(value(col, k))) " " (s.name)
                        }
                    }
                }
            }
        }
    }
}

/// One bar on a time axis, in a lane of its own.
pub(crate) struct Lane {
    /// The lane's name, left of its bar.
    pub(crate) label: String,
    /// Where the bar starts and ends on the axis, from 0 to 1.
    pub(crate) from: f64,
    pub(crate) to: f64,
    /// Its CSS class (its colour) and `data-outcome`.
    pub(crate) outcome: String,
    /// Its `<title>`.
    pub(crate) tip: String,
}

/// Lanes of bars on one time axis, labelled at both ends, with a dashed mark at
/// a moment when there is one.
pub(crate) struct Lanes {
    pub(crate) label: String,
    pub(crate) lanes: Vec<Lane>,
    pub(crate) start: String,
    pub(crate) end: String,
    pub(crate) mark: Option<(f64, String)>,
}

/// Where the lanes' bars begin, after their names.
const LANE_LEFT: f64 = 150.0;
const LANE: f64 = 26.0;

/// `l` as an SVG: a row per lane, the axis below.
pub(crate) fn lanes(l: &Lanes) -> Markup {
    let height = TOP + LANE * l.lanes.len() as f64 + BOTTOM + 4.0;
    let span = WIDTH - LANE_LEFT - RIGHT;
    let x = |f: f64| LANE_LEFT + f * span;
    let axis = height - BOTTOM;
    html! {
        svg.chart.lanes viewBox={ "0 0 " (WIDTH) " " (n(height)) } role="img" aria-label=(l.label) {
            line.grid x1=(n(LANE_LEFT)) x2=(n(WIDTH - RIGHT)) y1=(n(axis)) y2=(n(axis)) {}
            text.tick x=(n(LANE_LEFT)) y=(n(height - 6.0)) text-anchor="start" { (l.start) }
            text.tick x=(n(WIDTH - RIGHT)) y=(n(height - 6.0)) text-anchor="end" { (l.end) }
            @for (i, lane) in l.lanes.iter().enumerate() {
                @let top = TOP + LANE * i as f64;
                text.lane x="4" y=(n(top + LANE / 2.0 + 4.0)) { (lane.label) }
                rect class={ "bar outcome-" (lane.outcome) } x=(n(x(lane.from))) y=(n(top + 5.0))
                    width=(n((x(lane.to) - x(lane.from)).max(3.0))) height=(n(LANE - 10.0))
                    data-outcome=(lane.outcome) {
                    title { (lane.tip) }
                }
            }
            @if let Some((at, what)) = &l.mark {
                line.mark x1=(n(x(*at))) x2=(n(x(*at))) y1=(n(TOP - 6.0)) y2=(n(axis)) {}
                text.tick x=(n(x(*at) - 4.0)) y=(n(TOP + 2.0)) text-anchor="end" { (what) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_y_axis_ends_on_a_round_number() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(1.0), 1.0);
        assert_eq!(nice_max(3.0), 5.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(11.0), 20.0);
        assert_eq!(nice_max(0.42), 0.5);
    }

    #[test]
    fn dollars_and_counts_read_as_people_write_them() {
        assert_eq!(Unit::Count.format(3.0), "3");
        assert_eq!(Unit::Dollars.format(1.254), "$1.25");
        assert_eq!(Unit::Dollars.format(0.004), "$0.004");
        assert_eq!(Unit::Dollars.format(0.0), "$0.00");
    }

    fn chart(values: &[[f64; 2]]) -> Chart {
        Chart {
            label: "test".into(),
            series: vec![
                Series {
                    name: "completed".into(),
                    class: "s-completed".into(),
                },
                Series {
                    name: "failed".into(),
                    class: "s-failed".into(),
                },
            ],
            columns: values
                .iter()
                .map(|v| Column {
                    label: None,
                    tip: "09:00".into(),
                    values: v.to_vec(),
                })
                .collect(),
            unit: Unit::Count,
            empty: "Nothing yet.",
        }
    }

    #[test]
    fn bars_draw_one_rect_per_value_above_zero_and_close_every_element() {
        let svg = bars(&chart(&[[2.0, 1.0], [0.0, 0.0], [3.0, 0.0]])).into_string();
        assert_eq!(svg.matches("<rect").count(), 3, "{svg}");
        assert_eq!(svg.matches("<rect").count(), svg.matches("</rect>").count());
        assert!(
            svg.contains(r#"data-series="failed" data-value="1""#),
            "{svg}"
        );
        assert!(svg.contains("09:00: completed 3"), "{svg}");
        assert!(!svg.contains("Nothing yet."));
        let empty = bars(&chart(&[[0.0, 0.0]])).into_string();
        assert!(empty.contains("Nothing yet."), "{empty}");
        assert!(!empty.contains("<rect"), "{empty}");
    }

    #[test]
    fn steps_carry_each_series_peak() {
        let svg = steps(&chart(&[[2.0, 1.0], [4.0, 0.0]])).into_string();
        assert!(
            svg.contains(r#"data-series="completed" data-peak="4""#),
            "{svg}"
        );
        assert!(
            svg.contains(r#"data-series="failed" data-peak="1""#),
            "{svg}"
        );
        assert!(svg.contains("09:00: 4 completed, 0 failed"), "{svg}");
    }
}

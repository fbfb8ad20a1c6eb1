//! Charts drawn on the server as SVG: counts over time (one line per series, a hover column
//! per bucket that lists every series) and ranked horizontal bars. No script is needed to see
//! them, and every label is XML-escaped here because the markup is inserted verbatim.

use std::collections::BTreeMap;
use std::fmt::Write;

use logvault_core::Micros;
use logvault_store::TrendRow;

/// Colour-blind-safe (Okabe–Ito), dark enough on white.
const PALETTE: [&str; 7] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
];
/// The colour of the "everything else" series.
const OTHER: &str = "#8a8a8a";

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 30.0;

/// One line of a chart; `points` align with the chart's buckets.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Series {
    pub name: String,
    pub color: &'static str,
    pub points: Vec<u64>,
    pub total: u64,
}

/// Escapes text for SVG/XML content and attributes.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Bucket starts covering `[from, to)` at `width` micros, aligned to the epoch like the
/// store's trend buckets.
pub(crate) fn buckets(from: Micros, to: Micros, width: i64) -> Vec<Micros> {
    let first = from.0.div_euclid(width) * width;
    (0..)
        .map(|i| Micros(first + i * width))
        .take_while(|start| start.0 < to.0)
        .take(10_000)
        .collect()
}

/// The colour of the `index`-th series.
pub(crate) fn color(index: usize) -> &'static str {
    PALETTE[index % PALETTE.len()]
}

/// Series from trend rows: the `max_series` largest keys, the rest folded into "other".
pub(crate) fn series_from_rows(
    rows: &[TrendRow],
    starts: &[Micros],
    max_series: usize,
) -> Vec<Series> {
    let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
    for row in rows {
        *totals.entry(row.key.as_str()).or_default() += row.count;
    }
    let mut ranked: Vec<(&str, u64)> = totals.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let kept: Vec<&str> = ranked.iter().take(max_series).map(|(k, _)| *k).collect();
    let position = |at: Micros| starts.binary_search(&at).ok();
    let mut series: Vec<Series> = kept
        .iter()
        .enumerate()
        .map(|(i, key)| Series {
            name: if key.is_empty() {
                "(none)".into()
            } else {
                key.to_string()
            },
            color: color(i),
            points: vec![0; starts.len()],
            total: 0,
        })
        .collect();
    let mut other = Series {
        name: "other".into(),
        color: OTHER,
        points: vec![0; starts.len()],
        total: 0,
    };
    for row in rows {
        let target = match kept.iter().position(|k| *k == row.key) {
            Some(i) => &mut series[i],
            None => &mut other,
        };
        target.total += row.count;
        if let Some(i) = position(row.bucket) {
            target.points[i] += row.count;
        }
    }
    if other.total > 0 {
        series.push(other);
    }
    series
}

/// A round number at or above `max` for the top of the y axis.
fn nice_max(max: u64) -> u64 {
    let max = max.max(1);
    let magnitude = 10u64.pow(max.ilog10());
    [1, 2, 5, 10]
        .iter()
        .map(|step| step * magnitude)
        .find(|top| *top >= max)
        .unwrap_or(10 * magnitude)
}

fn bucket_label(at: Micros, hourly: bool) -> String {
    let text = at.to_rfc3339();
    if hourly {
        format!(
            "{} {}h",
            text.get(5..10).unwrap_or(""),
            text.get(11..13).unwrap_or("")
        )
    } else {
        text.get(5..10).unwrap_or("").to_string()
    }
}

/// Counts over time as an SVG line chart, or `None` when there is nothing to draw.
pub(crate) fn line_chart(
    label: &str,
    starts: &[Micros],
    width: i64,
    series: &[Series],
) -> Option<String> {
    let max = series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .max()
        .unwrap_or(0);
    if starts.is_empty() || max == 0 {
        return None;
    }
    let hourly = width < 86_400_000_000;
    let top = nice_max(max);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let step = plot_w / starts.len() as f64;
    let x = |i: usize| LEFT + step * (i as f64 + 0.5);
    let y = |count: u64| TOP + plot_h * (1.0 - count as f64 / top as f64);
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{}\">",
        escape(label)
    );
    for tick in [0, top / 2, top] {
        let ty = y(tick);
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{ty:.1}\" y2=\"{ty:.1}\" stroke=\"#d9dde3\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"11\" fill=\"#4a5361\">{tick}</text>",
            WIDTH - RIGHT,
            LEFT - 6.0,
            ty + 4.0
        );
    }
    let n_labels = starts.len().min(6);
    for k in 0..n_labels {
        let i = if n_labels == 1 {
            0
        } else {
            k * (starts.len() - 1) / (n_labels - 1)
        };
        // The outermost labels hug the plot's edges so they are never cut off.
        let anchor = match k {
            0 if n_labels > 1 => "start",
            k if k + 1 == n_labels && n_labels > 1 => "end",
            _ => "middle",
        };
        let label_x = match anchor {
            "start" => LEFT,
            "end" => WIDTH - RIGHT,
            _ => x(i),
        };
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"{anchor}\" font-size=\"11\" fill=\"#4a5361\">{}</text>",
            label_x,
            HEIGHT - 10.0,
            escape(&bucket_label(starts[i], hourly))
        );
    }
    for line in series {
        let points: Vec<String> = line
            .points
            .iter()
            .enumerate()
            .map(|(i, count)| format!("{:.1},{:.1}", x(i), y(*count)))
            .collect();
        if starts.len() == 1 {
            let _ = write!(
                svg,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{}\"/>",
                x(0),
                y(line.points[0]),
                line.color
            );
        } else {
            let _ = write!(
                svg,
                "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>",
                line.color,
                points.join(" ")
            );
        }
    }
    // A transparent column per bucket whose tooltip lists every series at that time.
    for (i, start) in starts.iter().enumerate() {
        let mut tip = format!("{} UTC", super::render::short_time(*start));
        for line in series {
            let _ = write!(tip, "\n{}: {}", line.name, line.points[i]);
        }
        let _ = write!(
            svg,
            "<rect class=\"hover\" x=\"{:.1}\" y=\"{TOP}\" width=\"{step:.1}\" height=\"{plot_h}\" \
             fill=\"transparent\"><title>{}</title></rect>",
            LEFT + step * i as f64,
            escape(&tip)
        );
    }
    svg.push_str("</svg>");
    Some(svg)
}

/// The key of a chart: a swatch, the series name and its total, per series.
pub(crate) fn legend(series: &[Series]) -> String {
    let mut html = String::from("<ul class=\"legend\">");
    for line in series {
        let _ = write!(
            html,
            "<li><svg width=\"12\" height=\"12\" aria-hidden=\"true\"><rect width=\"12\" \
             height=\"12\" rx=\"2\" fill=\"{}\"/></svg> {} <small class=\"muted\">{}</small></li>",
            line.color,
            escape(&line.name),
            line.total
        );
    }
    html.push_str("</ul>");
    html
}

/// Ranked counts as horizontal bars, or `None` when there is nothing to draw.
pub(crate) fn bar_chart(label: &str, items: &[(String, u64)]) -> Option<String> {
    let max = items.iter().map(|(_, n)| *n).max().unwrap_or(0);
    if max == 0 {
        return None;
    }
    let row = 26.0;
    let label_w = 220.0;
    let bar_w = WIDTH - label_w - 70.0;
    let height = row * items.len() as f64 + 4.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg class=\"chart bars\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"{}\">",
        escape(label)
    );
    for (i, (name, count)) in items.iter().enumerate() {
        let top = row * i as f64 + 2.0;
        let w = (bar_w * *count as f64 / max as f64).max(1.0);
        let shown: String = name.chars().take(30).collect();
        let _ = write!(
            svg,
            "<g><title>{}: {count}</title>\
             <text x=\"0\" y=\"{:.1}\" font-size=\"12\" fill=\"#1d2330\">{}</text>\
             <rect x=\"{label_w}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{}\" rx=\"3\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" fill=\"#1d2330\">{count}</text></g>",
            escape(name),
            top + 16.0,
            escape(&shown),
            top + 3.0,
            row - 8.0,
            color(0),
            label_w + w + 6.0,
            top + 16.0
        );
    }
    svg.push_str("</svg>");
    Some(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_tops() {
        for (max, top) in [
            (0, 1),
            (1, 1),
            (3, 5),
            (7, 10),
            (11, 20),
            (250, 500),
            (1000, 1000),
        ] {
            assert_eq!(nice_max(max), top, "{max}");
        }
    }

    #[test]
    fn labels_are_escaped_and_rows_fold_into_other() {
        let starts = buckets(Micros(0), Micros(3 * 3_600_000_000), 3_600_000_000);
        assert_eq!(starts.len(), 3);
        let rows: Vec<TrendRow> = ["<b>", "a", "b"]
            .iter()
            .enumerate()
            .map(|(i, key)| TrendRow {
                bucket: starts[i],
                key: key.to_string(),
                count: 10 - i as u64,
            })
            .collect();
        let series = series_from_rows(&rows, &starts, 2);
        let names: Vec<&str> = series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["<b>", "a", "other"]);
        let svg = line_chart("x", &starts, 3_600_000_000, &series).expect("chart");
        assert!(svg.contains("&lt;b&gt;") && !svg.contains("<b>"), "{svg}");
        assert!(line_chart("x", &starts, 3_600_000_000, &[]).is_none());
        let bars = bar_chart("y", &[("<i>".into(), 3)]).expect("bars");
        assert!(!bars.contains("<i>"), "{bars}");
    }
}

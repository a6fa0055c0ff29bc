//! The status as a page for a browser: the same facts as the JSON, plus the recent ticks drawn
//! as a small inline SVG chart. No scripts, no external assets; every value is escaped.

use serde_json::Value as Json;
use std::fmt::Write;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn text(v: &Json) -> String {
    match v {
        Json::Null => "—".into(),
        Json::String(s) => esc(s),
        other => esc(&other.to_string()),
    }
}

/// A two-column table of an object's fields.
fn facts(title: &str, obj: &Json) -> String {
    let mut out = format!("<section><h2>{}</h2><table>", esc(title));
    if let Some(map) = obj.as_object() {
        for (k, v) in map {
            let _ = write!(out, "<tr><th>{}</th><td>{}</td></tr>", esc(k), text(v));
        }
    }
    out.push_str("</table></section>");
    out
}

/// A table with one row per object and the given columns.
fn rows(title: &str, list: &Json, columns: &[&str]) -> String {
    let items = list.as_array().map(Vec::as_slice).unwrap_or_default();
    let mut out = format!("<section><h2>{} ({})</h2>", esc(title), items.len());
    if items.is_empty() {
        out.push_str("<p class=\"none\">none</p></section>");
        return out;
    }
    out.push_str("<table><tr>");
    for c in columns {
        let _ = write!(out, "<th>{}</th>", esc(c));
    }
    out.push_str("</tr>");
    for item in items {
        out.push_str("<tr>");
        for c in columns {
            let _ = write!(out, "<td>{}</td>", text(&item[*c]));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table></section>");
    out
}

const CHART_W: f64 = 600.0;
const CHART_H: f64 = 120.0;

/// One polyline per series over the ticks (oldest left), each scaled to its own maximum.
fn chart(ticks: &[Json]) -> String {
    let series = [
        ("pending_event_count", "#d62728", "pending"),
        ("events_drained", "#1f77b4", "drained"),
        ("wall_clock_ms", "#2ca02c", "wall clock ms"),
        ("actions_emitted", "#9467bd", "actions"),
    ];
    let points: Vec<&Json> = ticks.iter().rev().collect();
    let mut svg = format!(
        "<svg id=\"ticks-chart\" role=\"img\" aria-label=\"recent ticks\" width=\"{CHART_W}\" \
         height=\"{}\" viewBox=\"0 0 {CHART_W} {}\">",
        CHART_H + 20.0,
        CHART_H + 20.0
    );
    let _ = write!(
        svg,
        "<rect x=\"0\" y=\"0\" width=\"{CHART_W}\" height=\"{CHART_H}\" fill=\"#fafafa\" stroke=\"#ccc\"/>"
    );
    let step = if points.len() > 1 {
        CHART_W / (points.len() - 1) as f64
    } else {
        0.0
    };
    for (i, (key, color, label)) in series.iter().enumerate() {
        let values: Vec<f64> = points
            .iter()
            .map(|t| t["metrics"][*key].as_f64().unwrap_or(0.0))
            .collect();
        let max = values.iter().copied().fold(0.0, f64::max);
        let coords: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(x, v)| {
                let y = if max > 0.0 {
                    CHART_H - v / max * (CHART_H - 8.0) - 4.0
                } else {
                    CHART_H - 4.0
                };
                format!("{:.1},{:.1}", x as f64 * step, y)
            })
            .collect();
        let _ = write!(
            svg,
            "<polyline class=\"series\" data-series=\"{key}\" fill=\"none\" stroke=\"{color}\" \
             stroke-width=\"2\" points=\"{}\"/><text x=\"{}\" y=\"{}\" fill=\"{color}\" \
             font-size=\"11\">{label} (max {max})</text>",
            coords.join(" "),
            i as f64 * 150.0 + 4.0,
            CHART_H + 15.0
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Renders the status document and the recent ticks (newest first) as a page.
pub fn render(status: &Json, ticks: &[Json]) -> String {
    let town = text(&status["town_id"]);
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>Town <span id=\"town-id\">{town}</span></h1><p>now {} · alarm {} · next tick {} · \
         draining <strong id=\"draining\">{}</strong></p>",
        text(&status["now"]),
        text(&status["alarm"]["interval_label"]),
        text(&status["alarm"]["next_fire_at"]),
        text(&status["draining"]),
    );
    let _ = write!(
        body,
        "<section><h2>Recent ticks ({})</h2>{}</section>",
        ticks.len(),
        chart(ticks)
    );
    body.push_str(&facts("Last tick", &status["reconciler"]["metrics"]));
    body.push_str(&facts("Agents", &status["agents"]));
    body.push_str(&facts("Beads", &status["beads"]));
    body.push_str(&facts("Patrol", &status["patrol"]));
    body.push_str(&facts("Triage", &status["triage"]));
    body.push_str(&rows(
        "Agent dump",
        &status["agent_meta"],
        &[
            "agent_id",
            "role",
            "name",
            "status",
            "current_hook_bead_id",
            "dispatch_attempts",
            "last_activity_at",
            "status_message",
        ],
    ));
    body.push_str(&rows(
        "Live beads",
        &status["bead_summary"],
        &[
            "bead_id",
            "type",
            "status",
            "title",
            "assignee_agent_bead_id",
            "updated_at",
        ],
    ));
    body.push_str(&rows(
        "Recent bead events",
        &status["recent_events"],
        &[
            "created_at",
            "bead_id",
            "event_type",
            "old_value",
            "new_value",
            "agent_id",
        ],
    ));
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Town {town} · \
         status</title><style>body{{font:14px system-ui,sans-serif;margin:1.5em;color:#222}}\
         table{{border-collapse:collapse;margin:.3em 0}}th,td{{border:1px solid #ddd;padding:2px 8px;\
         text-align:left}}th{{background:#f3f3f3}}h2{{font-size:1.05em;margin:1.2em 0 .3em}}\
         .none{{color:#888}}</style></head><body>{body}</body></html>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escapes_what_it_shows() {
        let status = json!({"town_id": "<script>", "agent_meta": [], "bead_summary": []});
        let page = render(&status, &[]);
        assert!(page.contains("&lt;script&gt;"));
        assert!(!page.contains("<script>"));
    }

    #[test]
    fn draws_one_line_per_series_over_the_ticks() {
        let ticks: Vec<Json> = (0..3)
            .map(|i| json!({"metrics": {"pending_event_count": i, "events_drained": 1}}))
            .collect();
        let page = render(&json!({"town_id": "t"}), &ticks);
        assert_eq!(page.matches("<polyline").count(), 4);
        assert!(page.contains("pending (max 2)"));
    }
}

//! The status as a page for a browser: the same facts as the JSON, plus the recent ticks drawn
//! as a small inline SVG chart. No external assets; every value is escaped. Given a ticket
//! (`super::ticket`), a short inline script opens the live status socket and updates the page
//! in place from each snapshot (values set as text, never as markup); without one, or when the
//! socket closes, the page stays as it was served and says so.

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

/// A two-column table of an object's fields; `key` is where the snapshot holds the object.
fn facts(title: &str, key: &str, obj: &Json) -> String {
    let mut out = format!(
        "<section data-facts=\"{}\"><h2>{}</h2><table>",
        esc(key),
        esc(title)
    );
    if let Some(map) = obj.as_object() {
        for (k, v) in map {
            let _ = write!(out, "<tr><th>{}</th><td>{}</td></tr>", esc(k), text(v));
        }
    }
    out.push_str("</table></section>");
    out
}

/// A table with one row per object and the given columns; `key` is where the snapshot holds
/// the list.
fn rows(title: &str, key: &str, list: &Json, columns: &[&str]) -> String {
    let items = list.as_array().map(Vec::as_slice).unwrap_or_default();
    let mut out = format!(
        "<section data-rows=\"{}\" data-columns=\"{}\" data-title=\"{}\"><h2>{} ({})</h2>",
        esc(key),
        esc(&columns.join(",")),
        esc(title),
        esc(title),
        items.len()
    );
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

/// JSON for a `<script type="application/json">` element: no `<` can end it early.
fn script_json(v: &Json) -> String {
    v.to_string().replace('<', "\\u003c")
}

/// The ticks the chart draws, oldest first: when, and the charted metrics.
fn chart_data(ticks: &[Json]) -> Json {
    Json::Array(
        ticks
            .iter()
            .rev()
            .map(|t| {
                let m = &t["metrics"];
                serde_json::json!({
                    "at": t["at"],
                    "metrics": {
                        "pending_event_count": m["pending_event_count"],
                        "events_drained": m["events_drained"],
                        "wall_clock_ms": m["wall_clock_ms"],
                        "actions_emitted": m["actions_emitted"],
                    },
                })
            })
            .collect(),
    )
}

/// How many ticks the page keeps in its chart (as many as the server renders).
pub const CHARTED_TICKS: usize = 60;

/// The live update: opens the status socket with the ticket and applies each snapshot.
const LIVE_SCRIPT: &str = r##"(() => {
const $ = (s) => document.querySelector(s);
const shown = (v) => v === null || v === undefined ? "—" : typeof v === "string" ? v : JSON.stringify(v);
const at = (o, path) => path.split(".").reduce((v, k) => (v == null ? v : v[k]), o);
const cell = (tag, v) => { const c = document.createElement(tag); c.textContent = v; return c; };
const ticks = JSON.parse($("#ticks-data").textContent);
const W = 600, H = 120;
function drawChart() {
  const step = ticks.length > 1 ? W / (ticks.length - 1) : 0;
  for (const line of document.querySelectorAll("#ticks-chart polyline.series")) {
    const key = line.dataset.series;
    const values = ticks.map((t) => Number(t.metrics[key]) || 0);
    const max = values.reduce((a, b) => Math.max(a, b), 0);
    line.setAttribute("points", values.map((v, x) =>
      `${(x * step).toFixed(1)},${(max > 0 ? H - v / max * (H - 8) - 4 : H - 4).toFixed(1)}`).join(" "));
    const label = line.nextElementSibling;
    label.textContent = label.textContent.replace(/\(max [^)]*\)/, `(max ${max})`);
  }
  $("#ticks-count").textContent = ticks.length;
}
function apply(s) {
  $("#now").textContent = shown(s.now);
  $("#alarm-label").textContent = shown(s.alarm.interval_label);
  $("#next-tick").textContent = shown(s.alarm.next_fire_at);
  $("#draining").textContent = shown(s.draining);
  const last = s.reconciler;
  if (last && last.at && (ticks.length === 0 || ticks[ticks.length - 1].at !== last.at)) {
    ticks.push({ at: last.at, metrics: last.metrics });
    while (ticks.length > MAX_TICKS) ticks.shift();
    drawChart();
  }
  for (const sec of document.querySelectorAll("[data-facts]")) {
    const table = sec.querySelector("table");
    table.replaceChildren(...Object.entries(at(s, sec.dataset.facts) ?? {}).map(([k, v]) => {
      const tr = document.createElement("tr"); tr.append(cell("th", k), cell("td", shown(v))); return tr;
    }));
  }
  for (const sec of document.querySelectorAll("[data-rows]")) {
    const items = at(s, sec.dataset.rows) ?? [];
    const columns = sec.dataset.columns.split(",");
    const parts = [cell("h2", `${sec.dataset.title} (${items.length})`)];
    if (items.length === 0) { const p = cell("p", "none"); p.className = "none"; parts.push(p); }
    else {
      const table = document.createElement("table");
      const head = document.createElement("tr"); head.append(...columns.map((c) => cell("th", c))); table.append(head);
      for (const item of items) { const tr = document.createElement("tr"); tr.append(...columns.map((c) => cell("td", shown(item[c])))); table.append(tr); }
      parts.push(table);
    }
    sec.replaceChildren(...parts);
  }
  document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
}
const live = $("#live");
const url = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}${location.pathname.replace(/\/$/, "")}/ws`;
const socket = new WebSocket(url, ["gastown.status", `ticket.${document.body.dataset.ticket}`]);
socket.onopen = () => { live.textContent = "live"; };
socket.onmessage = (e) => apply(JSON.parse(e.data));
socket.onclose = () => { live.textContent = "disconnected (reload to reconnect)"; };
})();"##;

/// Renders the status document and the recent ticks (newest first) as a page; with `ticket`,
/// the page follows the live status socket.
pub fn render(status: &Json, ticks: &[Json], ticket: Option<&str>) -> String {
    let town = text(&status["town_id"]);
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>Town <span id=\"town-id\">{town}</span></h1><p>now <span id=\"now\">{}</span> · \
         alarm <span id=\"alarm-label\">{}</span> · next tick <span id=\"next-tick\">{}</span> \
         · draining <strong id=\"draining\">{}</strong> · updates <span id=\"live\">{}</span></p>",
        text(&status["now"]),
        text(&status["alarm"]["interval_label"]),
        text(&status["alarm"]["next_fire_at"]),
        text(&status["draining"]),
        if ticket.is_some() {
            "connecting"
        } else {
            "off (reload to refresh)"
        },
    );
    let _ = write!(
        body,
        "<section><h2>Recent ticks (<span id=\"ticks-count\">{}</span>)</h2>{}</section>",
        ticks.len(),
        chart(ticks)
    );
    body.push_str(&facts(
        "Last tick",
        "reconciler.metrics",
        &status["reconciler"]["metrics"],
    ));
    body.push_str(&facts("Agents", "agents", &status["agents"]));
    body.push_str(&facts("Beads", "beads", &status["beads"]));
    body.push_str(&facts("Patrol", "patrol", &status["patrol"]));
    body.push_str(&facts("Triage", "triage", &status["triage"]));
    body.push_str(&rows(
        "Agent dump",
        "agent_meta",
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
        "bead_summary",
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
        "recent_events",
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
    let (body_attrs, script) = match ticket {
        Some(ticket) => (
            format!(" data-ticket=\"{}\"", esc(ticket)),
            format!(
                "<script type=\"application/json\" id=\"ticks-data\">{}</script><script>{}</script>",
                script_json(&chart_data(ticks)),
                LIVE_SCRIPT.replace("MAX_TICKS", &CHARTED_TICKS.to_string())
            ),
        ),
        None => (String::new(), String::new()),
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Town {town} · \
         status</title><style>body{{font:14px system-ui,sans-serif;margin:1.5em;color:#222}}\
         table{{border-collapse:collapse;margin:.3em 0}}th,td{{border:1px solid #ddd;padding:2px 8px;\
         text-align:left}}th{{background:#f3f3f3}}h2{{font-size:1.05em;margin:1.2em 0 .3em}}\
         .none{{color:#888}}</style></head><body{body_attrs}>{body}{script}</body></html>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escapes_what_it_shows() {
        let status = json!({"town_id": "<script>", "agent_meta": [], "bead_summary": []});
        let page = render(&status, &[], None);
        assert!(page.contains("&lt;script&gt;"));
        assert!(!page.contains("<script>"));
    }

    #[test]
    fn a_ticket_brings_the_live_script_and_data_that_cannot_end_it() {
        let ticks = vec![json!({"at": "</script><b>", "metrics": {"events_drained": 1}})];
        let page = render(&json!({"town_id": "t"}), &ticks, Some("123.ab"));
        assert!(page.contains("data-ticket=\"123.ab\""));
        assert!(page.contains("new WebSocket("));
        assert!(page.contains("\\u003c/script>\\u003cb>"));
        assert_eq!(page.matches("</script>").count(), 2);
        assert!(page.contains("ticks.length > 60"));
    }

    #[test]
    fn draws_one_line_per_series_over_the_ticks() {
        let ticks: Vec<Json> = (0..3)
            .map(|i| json!({"metrics": {"pending_event_count": i, "events_drained": 1}}))
            .collect();
        let page = render(&json!({"town_id": "t"}), &ticks, None);
        assert_eq!(page.matches("<polyline").count(), 4);
        assert!(page.contains("pending (max 2)"));
    }
}

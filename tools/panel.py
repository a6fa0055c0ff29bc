#!/usr/bin/env python3
"""Runs one Grafana panel's queries over a town's metrics history, on chDB.

Reads the answer of `GET /debug/towns/{t}/metrics` on stdin (each tick's `reconciler_tick` point
exactly as written to Analytics Engine), loads those points into a chDB table shaped like
Analytics Engine's, expands the queries of the dashboard panel whose title contains the first
argument the way Grafana and the ClickHouse plugin do (tests/dashboard/check.py, whose
expansion the dashboard proof checks), runs them over the history's whole time range (one
bucket per `--interval` seconds, 60 by default) and prints each query's rows as tab-separated
text. The history holds the tick points only: a query of other points (`reconciler_action`)
finds no rows.

    curl -s -H "$D" "$dbg/metrics?limit=1000" | python tools/panel.py "Side Effects"

Needs the venv of `scripts/setup --python` (chDB). Exits 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "dashboard"))
from check import DASHBOARD, Engine, Row, dashboard_queries, expand, walk_panels  # noqa: E402


def fail(message: str) -> None:
    print(f"panel: {message}", file=sys.stderr)
    sys.exit(2)


def clock(epoch_s: int) -> str:
    return f"{datetime.fromtimestamp(epoch_s, timezone.utc):%H:%M:%S}"


def rows_of(history: dict) -> list[Row]:
    rows = []
    for tick in history.get("ticks", []):
        point, at = tick.get("point"), tick.get("at")
        if not point or not at:
            continue
        ts = int(datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp())
        blobs = (list(point["blobs"]) + [""] * 20)[:20]
        doubles = ([float(d) for d in point["doubles"]] + [0.0] * 20)[:20]
        rows.append(Row(ts, 1, point["index"], blobs, doubles))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("title", help="a part of the panel's title, e.g. 'Side Effects'")
    parser.add_argument("--interval", type=int, default=60, help="seconds per time bucket")
    args = parser.parse_args()
    if args.interval < 1:
        fail("--interval must be at least 1")
    try:
        history = json.load(sys.stdin)
    except json.JSONDecodeError as e:
        fail(f"stdin is not the metrics JSON: {e}")
    if not isinstance(history, dict) or not isinstance(history.get("ticks"), list):
        fail('stdin is not the answer of GET /debug/towns/{t}/metrics ({"count", "ticks"})')
    rows = rows_of(history)
    if not rows:
        fail("the history holds no ticks")

    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for p in walk_panels(dashboard["panels"]) if args.title.lower() in p.get("title", "").lower()]
    if len(panels) != 1:
        titles = [p.get("title") for p in walk_panels(dashboard["panels"]) if p.get("targets")]
        fail(f"{len(panels)} panels match {args.title!r}; the panels: {', '.join(titles)}")
    panel = panels[0]
    queries = dashboard_queries({"panels": [panel]})

    engine = Engine()
    engine.load(rows)
    towns = sorted({r.blobs[5] for r in rows})
    frm, to = min(r.ts for r in rows), max(r.ts for r in rows)
    print(f"# {panel['title']}: {len(rows)} ticks of {', '.join(towns)}, "
          f"{clock(frm)} to {clock(to)} UTC")
    for _panel, ref, _fmt, query in queries:
        columns, data = engine.run(expand(query, frm, to, args.interval, {"town": towns}))
        print(f"## query {ref}\n" + "\t".join(columns))
        for row in data:
            # A time series' bucket (epoch ms) as its UTC time of day.
            print("\t".join(clock(int(row[c]) // 1000) if c == "t" else str(row[c]) for c in columns))


if __name__ == "__main__":
    main()

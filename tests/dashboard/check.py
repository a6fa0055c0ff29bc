#!/usr/bin/env python3
"""Proof of the reconciler dashboard and alert rules on a real ClickHouse engine (chDB).

Two datasets go through the same checks:
- captured: the points the real Worker wrote in workerd during the runtime tests
  (tests/runtime/.out/points.json), one tick (with the points written beside it) per minute,
  some rows standing for several points (`_sample_interval` > 1);
- synthetic: a seeded series in the same layout that exercises what the Worker does not emit yet
  (actions, side effects, invariant violations, slow ticks, a town whose alarm is lost).
Each is loaded into a chDB table `gastown_events` with Analytics Engine's columns. Every panel
query and every alert query is expanded the way Grafana and the Altinity ClickHouse plugin expand
it, run, and its numbers compared with values computed here in plain Python from the same points,
each row repeated `_sample_interval` times.

Also checked: every function and column of the expanded queries is in Analytics Engine's documented
SQL and every aggregate is weighted by `_sample_interval`; the dashboard survives a load-and-dump
round trip through grafana-foundation-sdk with no key dropped; the targets and alert rules have
the shape the plugin and Grafana's file provisioning read.

Ends with `dashboard: N passed, M failed`; exits 1 on any failure.
"""

from __future__ import annotations

import copy
import json
import math
import random
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

import yaml
from chdb import session as chdb_session

ROOT = Path(__file__).resolve().parents[2]
POINTS = ROOT / "tests/runtime/.out/points.json"
DASHBOARD = ROOT / "dashboards/gastown-reconciler.json"
ALERTS = ROOT / "dashboards/alerts.yaml"
LAYOUT_RS = ROOT / "src/metrics/layout.rs"

TABLE = "gastown_events"
PLUGIN = "vertamedia-clickhouse-datasource"
T_END = 1_800_000_000  # 2027-01-15T08:00:00Z: the end of every dataset's window
STEP = 60  # seconds between two captured ticks on the timeline
WEIGHTS = (1, 1, 3, 1, 2, 1, 5)  # `_sample_interval` of the captured ticks, in turn
TICKS_WINDOW = 600  # the ticks-per-minute panel counts the last 10 minutes of the range

# Analytics Engine's documented SQL (shared/docs/AE-AND-GRAFANA.md, from its SQL reference).
AE_COLUMNS = {"dataset", "timestamp", "_sample_interval", "index1"} | {
    f"{kind}{n}" for kind in ("blob", "double") for n in range(1, 21)
}
AE_FUNCTIONS = {
    # aggregates
    "count", "sum", "avg", "min", "max", "quantileExactWeighted", "quantileWeighted", "argMax",
    "argMin", "first_value", "last_value", "topK", "topKWeighted", "countIf", "sumIf", "avgIf",
    # date and time
    "toDateTime", "now", "toUnixTimestamp", "formatDateTime", "toStartOfInterval",
    "toStartOfMinute", "toStartOfFiveMinutes", "toStartOfTenMinutes", "toStartOfFifteenMinutes",
    "toStartOfHour", "toStartOfDay", "toStartOfWeek", "toStartOfMonth", "toStartOfYear",
    "toYear", "toMonth", "toDayOfMonth", "toDayOfWeek", "toHour", "toMinute", "toSecond",
    "today", "toYYYYMM",
    # maths, conversion, conditionals, strings
    "intDiv", "log", "pow", "round", "floor", "ceil", "toUInt8", "toUInt32", "if",
    "length", "lower", "upper", "startsWith", "endsWith", "position", "substring", "format",
    "extract",
}
SQL_STANDARD_AGGREGATES = {"count", "sum", "avg", "min", "max"}  # case-insensitive in ClickHouse
# Aggregates that count or average rows and so ignore what a sampled row stands for. max, min,
# argMax, argMin, first_value and last_value pick one sample and need no weight.
UNWEIGHTED_AGGREGATES = {"count", "avg", "countif", "avgif", "topk"}
SQL_KEYWORDS = {
    "SELECT", "FROM", "WHERE", "GROUP", "BY", "HAVING", "ORDER", "LIMIT", "OFFSET", "AS", "AND",
    "OR", "NOT", "IN", "ASC", "DESC", "LIKE", "ILIKE", "BETWEEN", "INTERVAL", "IS", "NULL",
    "SECOND", "MINUTE", "HOUR", "DAY", "WEEK", "MONTH", "YEAR",
}
# Keys of an Altinity ClickHouse plugin query (its CHQuery type plus Grafana's DataQuery), and
# the two Grafana alerting adds to a query model.
TARGET_KEYS = {
    "refId", "hide", "key", "queryType", "datasource", "query", "format", "extrapolate",
    "rawQuery", "editorMode", "database", "table", "initialized", "adHocFilters", "dateTimeType",
    "dateColDataType", "dateTimeColDataType", "skip_comments", "add_metadata", "round",
    "intervalFactor", "interval", "formattedQuery", "contextWindowSize", "adHocValuesQuery",
    "useWindowFuncForMacros",
}
ALERT_MODEL_KEYS = TARGET_KEYS | {"intervalMs", "maxDataPoints"}
# What the alerts must say (the brief): threshold on the query's number, and `for`.
ALERT_SPEC = {
    "gastown-invariant-violations": (0, "0s"),
    "gastown-wall-clock-p95": (500, "10m"),
    "gastown-pending-depth": (50, "5m"),
    "gastown-active-town-silent": (120, "0s"),
    "gastown-side-effect-failures": (0.2, "10m"),
}


# --------------------------------------------------------------------------------------------
# Results


class Results:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def record(self, name: str, problems: list[str]) -> None:
        if problems:
            self.failed += 1
            print(f"FAIL {name}")
            for p in problems[:12]:
                print(f"     {p}")
            if len(problems) > 12:
                print(f"     ... and {len(problems) - 12} more")
        else:
            self.passed += 1
            print(f"ok   {name}")


# --------------------------------------------------------------------------------------------
# The layout, read from src/metrics/layout.rs (the one place it is written down)


def parse_layout(text: str) -> dict[str, dict[str, tuple[str, int]]]:
    """Point kind -> field name -> ("blob" | "double", slot number)."""
    consts: dict[str, int] = {}
    for mod, body in re.findall(r"pub mod (blob|double) \{(.*?)\n\}", text, re.S):
        for name, n in re.findall(r"pub const (\w+): u8 = (\d+);", body):
            consts[f"{mod}::{name}"] = int(n)
    kinds = dict(re.findall(r'pub const (\w+): &str = "([^"]+)";', text))
    tables: dict[str, dict[str, tuple[str, int]]] = {}
    for name, body in re.findall(r"pub const (\w+_FIELDS): &\[Field\] = &\[(.*?)\n\];", text, re.S):
        fields = {}
        for fname, kind, arg in re.findall(r'f\(\s*"(\w+)",\s*Slot::(Blob|Double)\(([^)]*)\)', body):
            arg = arg.strip()
            fields[fname] = (kind.lower(), int(arg) if arg.isdigit() else consts[arg])
        tables[name] = fields
    layout = {kinds[c]: tables[t] for c, t in re.findall(r"(\w+) => Some\((\w+_FIELDS)\)", text)}
    if not layout or any(not f for f in layout.values()):
        raise ValueError("could not read the point kinds and fields of src/metrics/layout.rs")
    return layout


@dataclass
class Row:
    """One stored AE row: `weight` is its `_sample_interval`."""

    ts: int
    weight: int
    index: str
    blobs: list[str]
    doubles: list[float]


class Layout:
    def __init__(self, kinds: dict[str, dict[str, tuple[str, int]]]) -> None:
        self.kinds = kinds
        self.tick, self.action, self.violations = (
            "reconciler_tick", "reconciler_action", "reconciler.invariant_violations")
        for k in (self.tick, self.action, self.violations):
            if k not in kinds:
                raise ValueError(f"the layout has no point kind {k}")

    def get(self, row: Row, name: str):
        kind, n = self.kinds[row.index][name]
        return row.blobs[n - 1] if kind == "blob" else row.doubles[n - 1]

    def point(self, kind: str, values: dict) -> tuple[list[str], list[float]]:
        blobs, doubles = [""] * 20, [0.0] * 20
        for name, value in {"event": kind, **values}.items():
            slot_kind, n = self.kinds[kind][name]
            if slot_kind == "blob":
                blobs[n - 1] = value
            else:
                doubles[n - 1] = float(value)
        return blobs, doubles


# --------------------------------------------------------------------------------------------
# Datasets


def captured_rows(points: list[dict], layout: Layout) -> list[Row]:
    """The captured points on a timeline: each tick, with the points written beside it for the
    same town, at its own minute, in capture order; the last one at T_END."""
    town_slot = layout.kinds[layout.tick]["town_id"][1] - 1
    groups: list[list[dict]] = []
    waiting: dict[str, list[dict]] = defaultdict(list)
    for entry in points:
        p = entry["point"]
        town = p["blobs"][town_slot] if len(p["blobs"]) > town_slot else ""
        if p["indexes"][0] == layout.tick:
            groups.append(waiting.pop(town, []) + [p])
        else:
            waiting[town].append(p)
    groups.extend([p] for rest in waiting.values() for p in rest)
    rows = []
    for g, group in enumerate(groups):
        ts = T_END - (len(groups) - 1 - g) * STEP
        for p in group:
            blobs = (list(p["blobs"]) + [""] * 20)[:20]
            doubles = ([float(d) for d in p["doubles"]] + [0.0] * 20)[:20]
            rows.append(Row(ts, WEIGHTS[g % len(WEIGHTS)], p["indexes"][0], blobs, doubles))
    return rows


ACTION_TYPES = ("dispatch_agent", "poll_pr", "stop_agent", "notify_mayor", "create_triage_request")


def synthetic_rows(layout: Layout, seed: int = 1372) -> list[Row]:
    """90 minutes of six towns, written the way the writer writes them (tick, one action point
    per type, a violations point when there are violations), with sampled rows. Episodes: slow
    ticks (minutes 20-35), failing side effects (50-65), a backlog, a deleted town (minute 40,
    idle) and a town whose alarm is lost with work pending (minute 75)."""
    rng = random.Random(seed)
    start = T_END - 90 * 60
    towns = [
        ("syn-steady-1", "o1", 30, None, 0),
        ("syn-steady-2", "o2", 45, None, 0),
        ("syn-backlog", "o3", 20, None, 0),
        ("syn-deleted", "o4", 30, start + 40 * 60, 0),
        ("syn-lost", "o5", 25, start + 75 * 60, 80),
        ("syn-idle", "o6", 300, None, 0),
    ]
    rows: list[Row] = []
    for town, owner, every, stop, pending_at_stop in towns:
        t = start + rng.randint(0, every)
        while t <= T_END and (stop is None or t < stop):
            minute = (t - start) / 60
            nxt = t + every + rng.randint(0, 5)
            last = stop is not None and nxt >= stop
            by_type: dict[str, int] = {}
            if town != "syn-idle" and rng.random() < 0.6:
                for kind in rng.sample(ACTION_TYPES, rng.randint(1, 3)):
                    by_type[kind] = rng.randint(1, 4)
            emitted = sum(by_type.values())
            attempted = rng.randint(0, emitted)
            fail_p = 0.5 if 50 <= minute < 65 else 0.05
            failed = sum(rng.random() < fail_p for _ in range(attempted))
            if town == "syn-backlog":
                pending = max(0, int(400 * math.sin(math.pi * (minute - 10) / 30))) if 10 <= minute < 40 else 0
            else:
                pending = rng.choice((0, 0, 0, 1, 2, 5))
            if last:
                pending = pending_at_stop
            violations = rng.randint(1, 3) if rng.random() < 0.05 else 0
            values = {
                "user_id": owner,
                "delivery": "internal",
                "town_id": town,
                "actions_by_type": json.dumps(dict(sorted(by_type.items())), separators=(",", ":")),
                "wall_clock_ms": round(rng.uniform(300, 1200) if 20 <= minute < 35 else rng.uniform(2, 90), 3),
                "events_drained": 500 if pending > 100 else rng.randint(0, 40),
                "actions_emitted": emitted,
                "side_effects_attempted": attempted,
                "side_effects_succeeded": attempted - failed,
                "side_effects_failed": failed,
                "invariant_violations": violations,
                "pending_event_count": pending,
                "events_failed": rng.choice((0, 0, 0, 0, 1, 2)),
                "oldest_pending_age_ms": round(rng.uniform(50, 90_000), 1) if pending else 0,
                "side_effects_deferred": rng.choice((0, 0, 0, 0, 0, 3, 40)),
            }
            weight = rng.choice((1, 1, 1, 1, 2, 3, 10))
            common = {"user_id": owner, "delivery": "internal", "town_id": town}
            for kind_name, count in sorted(by_type.items()):
                b, d = layout.point(layout.action, {**common, "action_type": kind_name, "count": count})
                rows.append(Row(t, weight, layout.action, b, d))
            if violations:
                messages = "; ".join(f"[{i + 1}] synthetic violation" for i in range(violations))
                b, d = layout.point(layout.violations, {**common, "messages": messages, "count": violations})
                rows.append(Row(t, weight, layout.violations, b, d))
            b, d = layout.point(layout.tick, values)
            rows.append(Row(t, weight, layout.tick, b, d))
            t = nxt
    rows.sort(key=lambda r: r.ts)
    return rows


# --------------------------------------------------------------------------------------------
# chDB


class Engine:
    def __init__(self) -> None:
        self.s = chdb_session.Session()
        cols = ["dataset String", "timestamp DateTime('Etc/UTC')", "_sample_interval UInt32", "index1 String"]
        cols += [f"blob{n} String" for n in range(1, 21)] + [f"double{n} Float64" for n in range(1, 21)]
        self.s.query(f"CREATE TABLE {TABLE} ({', '.join(cols)}) ENGINE = MergeTree ORDER BY timestamp")

    def load(self, rows: list[Row]) -> None:
        self.s.query(f"TRUNCATE TABLE {TABLE}")
        lines = []
        for r in rows:
            rec = {"dataset": TABLE, "timestamp": r.ts, "_sample_interval": r.weight, "index1": r.index}
            rec.update({f"blob{n + 1}": v for n, v in enumerate(r.blobs)})
            rec.update({f"double{n + 1}": v for n, v in enumerate(r.doubles)})
            lines.append(json.dumps(rec))
        for i in range(0, len(lines), 2000):
            self.s.query(f"INSERT INTO {TABLE} FORMAT JSONEachRow\n" + "\n".join(lines[i:i + 2000]))
        n = json.loads(str(self.s.query(f"SELECT count() AS n FROM {TABLE}", "JSON")))["data"][0]["n"]
        if int(n) != len(rows):
            raise RuntimeError(f"loaded {n} rows of {len(rows)}")

    def run(self, sql: str) -> tuple[list[str], list[dict]]:
        out = json.loads(str(self.s.query(sql, "JSON")))
        return [m["name"] for m in out["meta"]], out["data"]


# --------------------------------------------------------------------------------------------
# Grafana and plugin expansion


GRAFANA_VARIABLE = re.compile(
    r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}")
NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")


def grafana_interpolate(query: str, variables: dict[str, list[str]]) -> str:
    """Grafana's templateSrv.replace for multi-value variables: `${name:singlequote}` uses
    Grafana's formatter; a bare `$name` goes through the plugin's interpolateQueryExpr (quoted
    unless every value is a number, joined by commas). Unknown names (the plugin's macros) stay."""

    def sub(m: re.Match) -> str:
        name = m.group(1) or m.group(2) or m.group(4)
        fmt = m.group(3) or m.group(6)
        if name not in variables:
            return m.group(0)
        values = variables[name]
        if fmt == "singlequote":
            return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)
        if fmt is None:
            if all(NUMBER.match(v) for v in values):
                return ",".join(values)
            return ",".join("'" + re.sub(r"[\\']", lambda c: "\\" + c.group(0), v) + "'" for v in values)
        raise ValueError(f"variable format {fmt} is not modelled here")

    return GRAFANA_VARIABLE.sub(sub, query)


def plugin_expand(query: str, frm: int, to: int, interval: int) -> str:
    """The Altinity plugin's macros for dateTimeType DATETIME, dateTimeColDataType `timestamp`,
    round 0 (SqlQuery.replace then replaceTimeFilters): $from/$to are Unix seconds."""
    time_series = "(intDiv(toUInt32($dateTimeCol), $interval) * $interval) * 1000"
    time_filter = "$dateTimeCol >= toDateTime($from) AND $dateTimeCol <= toDateTime($to)"
    q = query.strip()
    for pattern, value in (
        (r"\$timeSeries\b", time_series),
        (r"\$timeFilter\b", time_filter),
        (r"\$from\b", str(frm)),
        (r"\$to\b", str(to)),
        (r"\$dateTimeCol\b", "timestamp"),
        (r"\$interval\b", str(interval)),
        (r"\$from", str(frm)),
        (r"\$to", str(to)),
        (r"\$__from", str(frm * 1000)),
        (r"\$__to", str(to * 1000)),
    ):
        q = re.sub(pattern, lambda _m, v=value: v, q)
    return q


def expand(query: str, frm: int, to: int, interval: int, variables: dict[str, list[str]]) -> str:
    return plugin_expand(grafana_interpolate(query, variables), frm, to, interval)


# --------------------------------------------------------------------------------------------
# SQL lint against Analytics Engine's documented SQL

TOKEN = re.compile(r"\s+|--[^\n]*|'(?:\\.|[^'\\])*'|[A-Za-z_$][\w$]*|\d+(?:\.\d+)?|<=|>=|!=|<>|.")


def tokens(sql: str) -> list[str]:
    return [t for t in TOKEN.findall(sql) if t.strip() and not t.startswith("--")]


def call_args(toks: list[str], open_idx: int) -> tuple[list[str], int]:
    """The tokens inside the parenthesis opened at `open_idx`, and the index of its close."""
    depth = 0
    for j in range(open_idx, len(toks)):
        if toks[j] == "(":
            depth += 1
        elif toks[j] == ")":
            depth -= 1
            if depth == 0:
                return toks[open_idx + 1:j], j
    raise ValueError("unbalanced parentheses")


def split_args(args: list[str]) -> list[list[str]]:
    out, cur, depth = [], [], 0
    for t in args:
        if t == "," and depth == 0:
            out.append(cur)
            cur = []
            continue
        depth += (t == "(") - (t == ")")
        cur.append(t)
    out.append(cur)
    return out


def lint(sql: str) -> list[str]:
    """Functions and columns outside AE's documented SQL, unweighted aggregates, a table other
    than gastown_events, macros left unexpanded."""
    problems = []
    if "$" in sql:
        left = re.findall(r"[$][{]?[\w:]+", sql)
        problems.append(f"unexpanded macro or variable: {left}")
    toks = tokens(sql)
    aliases = {toks[i + 1] for i, t in enumerate(toks[:-1]) if t.upper() == "AS"}
    for i, t in enumerate(toks):
        if not re.match(r"^[A-Za-z_]", t):
            continue
        nxt = toks[i + 1] if i + 1 < len(toks) else ""
        if t.upper() == "FROM" and nxt not in (TABLE, "("):
            problems.append(f"reads from {nxt!r}: only {TABLE} or a subquery")
        if nxt == "(" and t.upper() not in SQL_KEYWORDS:
            name = t.lower() if t.lower() in SQL_STANDARD_AGGREGATES else t
            if name not in AE_FUNCTIONS:
                problems.append(f"function {t} is not in AE's documented SQL")
            args, close = call_args(toks, i + 1)
            if name == "quantileWeighted":
                problems.append("quantileWeighted is the legacy name: use quantileExactWeighted")
            elif name.lower() in UNWEIGHTED_AGGREGATES:
                problems.append(f"{t}(...) ignores _sample_interval: use SUM(_sample_interval ...) or a weighted form")
            elif name.lower() in ("sum", "sumif") and "_sample_interval" not in args:
                problems.append(f"{t}({' '.join(args)}) is not weighted by _sample_interval")
            elif name in ("quantileExactWeighted", "topKWeighted"):
                weighted = toks[close + 1:close + 2] == ["("] and split_args(call_args(toks, close + 1)[0])[-1] == ["_sample_interval"]
                if not weighted:
                    problems.append(f"{t} must take _sample_interval as its weight")
        elif nxt != "(" and t.upper() not in SQL_KEYWORDS and t not in AE_COLUMNS and t not in aliases:
            if i > 0 and toks[i - 1].upper() in ("AS", "FROM"):
                continue
            problems.append(f"column {t} is not an AE column or an alias of the query")
    return problems


# --------------------------------------------------------------------------------------------
# Independent expectations (plain Python over expanded rows)


def nearest_rank(values: list[float], q: float) -> float:
    """The q-quantile as the value of 1-based rank ceil(q * n) in sorted order (rank >= 1)."""
    s = sorted(values)
    return s[max(1, math.ceil(len(s) * q)) - 1]


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


@dataclass
class View:
    """The expanded rows a query sees: in [frm, to], of the selected towns."""

    layout: Layout
    rows: list[Row]
    frm: int
    to: int
    interval: int
    towns: list[str] | None  # None: no town filter (alerts)

    def expanded(self, kind: str) -> list[Row]:
        out = []
        for r in self.rows:
            if r.index != kind or not (self.frm <= r.ts <= self.to):
                continue
            if self.towns is not None and self.layout.get(r, "town_id") not in self.towns:
                continue
            out.extend([r] * r.weight)
        return out

    def bucket(self, ts: int) -> int:
        return ts // self.interval * self.interval * 1000

    def per_bucket(self, kind: str, alias: str, fn, field: str) -> dict:
        groups = defaultdict(list)
        for r in self.expanded(kind):
            groups[self.bucket(r.ts)].append(self.layout.get(r, field))
        return {(b,): {alias: fn(v)} for b, v in groups.items()}

    def per_town(self, kind: str = "reconciler_tick") -> dict[str, list[Row]]:
        towns = defaultdict(list)
        for r in self.expanded(kind):
            towns[self.layout.get(r, "town_id")].append(r)
        return towns

    def last(self, rows: list[Row]) -> Row:
        latest = max(r.ts for r in rows)
        candidates = {id(r): r for r in rows if r.ts == latest}
        if len(candidates) > 1:
            raise ValueError("two samples of one town share a timestamp: 'latest' is ambiguous")
        return next(iter(candidates.values()))


def f(view: View, row: Row, name: str):
    return view.layout.get(row, name)


def exp_mean(field):
    return lambda v: v.per_bucket(v.layout.tick, field, mean, field)


def exp_actions_by_type(v: View) -> dict:
    out = defaultdict(float)
    for r in v.expanded(v.layout.action):
        out[(v.bucket(r.ts), f(v, r, "action_type"))] += f(v, r, "count")
    return {k: {"count": c} for k, c in out.items()}


def exp_gauge(v: View) -> dict:
    towns = v.per_town()
    return {(): {"pending_event_count": max((f(v, v.last(rs), "pending_event_count") for rs in towns.values()), default=0)}}


def exp_ticks_per_minute(v: View) -> dict:
    return {(town,): {"ticks_per_minute": sum(1 for r in rs if r.ts > v.to - TICKS_WINDOW) / (TICKS_WINDOW / 60)}
            for town, rs in v.per_town().items()}


def exp_quantiles(v: View) -> dict:
    groups = defaultdict(list)
    for r in v.expanded(v.layout.tick):
        groups[v.bucket(r.ts)].append(f(v, r, "wall_clock_ms"))
    return {(b,): {f"wall_clock_ms_p{int(q * 100)}": nearest_rank(vals, q) for q in (0.5, 0.95, 0.99)}
            for b, vals in groups.items()}


def ratio(rows: list[Row], v: View) -> float:
    attempted = sum(f(v, r, "side_effects_attempted") for r in rows)
    return sum(f(v, r, "side_effects_failed") for r in rows) / attempted if attempted > 0 else 0.0


def exp_failure_ratio(v: View) -> dict:
    groups = defaultdict(list)
    for r in v.expanded(v.layout.tick):
        groups[v.bucket(r.ts)].append(r)
    return {(b,): {"side_effect_failure_ratio": ratio(rs, v)} for b, rs in groups.items()}


PANEL_EXPECTATIONS = {
    ("201", "A"): exp_mean("events_drained"),
    ("202", "A"): exp_actions_by_type,
    ("202", "B"): lambda v: v.per_bucket(v.layout.tick, "actions_emitted", sum, "actions_emitted"),
    ("203", "A"): exp_mean("side_effects_attempted"),
    ("203", "B"): exp_mean("side_effects_succeeded"),
    ("203", "C"): exp_mean("side_effects_failed"),
    ("203", "D"): exp_mean("side_effects_deferred"),
    ("204", "A"): lambda v: v.per_bucket(v.layout.tick, "invariant_violations", sum, "invariant_violations"),
    ("205", "A"): exp_mean("wall_clock_ms"),
    ("206", "A"): exp_gauge,
    ("207", "A"): exp_mean("events_failed"),
    ("208", "A"): lambda v: v.per_bucket(v.layout.tick, "oldest_pending_age_ms", max, "oldest_pending_age_ms"),
    ("209", "A"): exp_quantiles,
    ("210", "A"): exp_ticks_per_minute,
    ("211", "A"): exp_failure_ratio,
    # The selector lists every town of the range, whatever is selected.
    ("variable town", ""): lambda v: {(town,): {} for town in replace(v, towns=None).per_town()},
}


def alert_expectation(uid: str, v: View) -> dict:
    towns = v.per_town()
    if uid == "gastown-invariant-violations":
        return {(t,): {"invariant_violations": sum(f(v, r, "invariant_violations") for r in rs)} for t, rs in towns.items()}
    if uid == "gastown-wall-clock-p95":
        ticks = v.expanded(v.layout.tick)
        return {(v.layout.tick,): {"wall_clock_ms_p95": nearest_rank([f(v, r, "wall_clock_ms") for r in ticks], 0.95)}} if ticks else {}
    if uid == "gastown-pending-depth":
        return {(t,): {"pending_event_count": f(v, v.last(rs), "pending_event_count")} for t, rs in towns.items()}
    if uid == "gastown-active-town-silent":
        out = {}
        for t, rs in towns.items():
            last = v.last(rs)
            if f(v, last, "pending_event_count") > 0 or f(v, last, "actions_emitted") > 0:
                out[(t,)] = {"seconds_since_last_tick": v.to - last.ts}
        return out
    if uid == "gastown-side-effect-failures":
        ticks = v.expanded(v.layout.tick)
        return {(v.layout.tick,): {"side_effect_failure_ratio": ratio(ticks, v)}} if ticks else {}
    raise KeyError(uid)


# --------------------------------------------------------------------------------------------
# Comparing results


def canonical(columns: list[str], rows: list[dict], time_series: bool) -> tuple[dict, list[str]]:
    """{key: {value column: number}}: the key is `t` (time series) plus the string columns."""
    problems = []
    if time_series:
        if not columns or columns[0] != "t":
            problems.append(f"a time series must start with the bucket column t, got {columns}")
            return {}, problems
        ts = [int(r["t"]) for r in rows]
        if ts != sorted(ts):
            problems.append("rows are not ordered by t")
    out = {}
    for r in rows:
        key = tuple(int(r["t"]) if c == "t" else r[c] for c in columns if c == "t" or isinstance(r[c], str))
        vals = {c: float(r[c]) for c in columns if c != "t" and not isinstance(r[c], str)}
        if key in out:
            problems.append(f"two rows for {key}")
        out[key] = vals
    return out, problems


def compare(got: dict, want: dict) -> list[str]:
    problems = []
    for key in sorted(set(got) | set(want), key=repr):
        if key not in got:
            problems.append(f"missing row {key}: want {want[key]}")
        elif key not in want:
            problems.append(f"unexpected row {key}: {got[key]}")
        elif set(got[key]) != set(want[key]):
            problems.append(f"row {key}: columns {sorted(got[key])}, want {sorted(want[key])}")
        else:
            for c, w in want[key].items():
                if not math.isclose(got[key][c], w, rel_tol=1e-9, abs_tol=1e-9):
                    problems.append(f"row {key} {c}: got {got[key][c]!r}, want {w!r}")
    return problems


# --------------------------------------------------------------------------------------------
# Structure of the dashboard and the alert rules


def walk_panels(panels: list[dict]):
    for p in panels:
        yield p
        yield from walk_panels(p.get("panels", []))


def sdk_round_trip(dashboard: dict) -> list[str]:
    """Keys grafana-foundation-sdk drops or changes on load-and-dump (misspelt or unknown)."""
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.cog.plugins import register_default_plugins
    from grafana_foundation_sdk.models.dashboard import Dashboard

    register_default_plugins()
    dumped = json.loads(json.dumps(Dashboard.from_json(copy.deepcopy(dashboard)), cls=JSONEncoder))

    def diff(a, b, path):
        if isinstance(a, dict):
            if not isinstance(b, dict):
                return [f"{path}: became {type(b).__name__}"]
            out = []
            for k, v in a.items():
                if k not in b:
                    if v is not None:
                        out.append(f"{path}.{k}: unknown key, dropped")
                else:
                    out += diff(v, b[k], f"{path}.{k}")
            return out
        if isinstance(a, list):
            if not isinstance(b, list) or len(a) != len(b):
                return [f"{path}: list changed"]
            return [p for i, (x, y) in enumerate(zip(a, b)) for p in diff(x, y, f"{path}[{i}]")]
        return [] if a == b else [f"{path}: {a!r} became {b!r}"]

    return diff(dashboard, dumped, "$")


def dashboard_structure(d: dict) -> list[str]:
    problems = []
    panels = list(walk_panels(d.get("panels", [])))
    ids = [p.get("id") for p in panels]
    if len(ids) != len(set(ids)):
        problems.append(f"duplicate panel ids: {ids}")
    by_id = {p.get("id"): p for p in panels}
    want_types = {200: "row", 201: "timeseries", 202: "timeseries", 203: "timeseries", 204: "stat",
                  205: "timeseries", 206: "gauge"}
    for pid, typ in want_types.items():
        if by_id.get(pid, {}).get("type") != typ:
            problems.append(f"panel {pid} must be a {typ}")
    if by_id.get(200, {}).get("title") != "Reconciler":
        problems.append("panel 200 must be the row 'Reconciler'")
    gauge = by_id.get(206, {})
    if gauge.get("options", {}).get("reduceOptions", {}).get("calcs") != ["lastNotNull"]:
        problems.append("gauge 206 must reduce with lastNotNull")
    # The original's three (attempted, succeeded, failed) plus the deferred side effects.
    if len(by_id.get(203, {}).get("targets", [])) != 4:
        problems.append("panel 203 must have four targets")
    variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
    ds = variables.get("DS_GASTOWN", {})
    if ds.get("type") != "datasource" or ds.get("query") != PLUGIN:
        problems.append(f"the data source must be a template variable DS_GASTOWN of plugin {PLUGIN}")
    town = variables.get("town", {})
    if town.get("type") != "query" or "blob6" not in town.get("query", ""):
        problems.append("the town selector must be a query variable over blob6")
    want_ds = {"type": PLUGIN, "uid": "${DS_GASTOWN}"}
    for p in panels:
        if p.get("type") == "row":
            continue
        if p.get("datasource") != want_ds:
            problems.append(f"panel {p.get('id')}: datasource must be {want_ds}")
        for t in p.get("targets", []):
            where = f"panel {p.get('id')} target {t.get('refId')}"
            unknown = set(t) - TARGET_KEYS
            if unknown:
                problems.append(f"{where}: keys the plugin does not read: {sorted(unknown)}")
            if "rawSql" in t or "query" not in t:
                problems.append(f"{where}: the plugin reads its SQL from `query`")
            if t.get("datasource") != want_ds:
                problems.append(f"{where}: datasource must be {want_ds}")
            if t.get("format") not in ("time_series", "table"):
                problems.append(f"{where}: format must be time_series or table")
            if t.get("dateTimeType") != "DATETIME" or t.get("dateTimeColDataType") != "timestamp":
                problems.append(f"{where}: dateTimeType DATETIME on column timestamp")
            if (p.get("type") in ("gauge", "stat") or t.get("format") == "table") and t.get("extrapolate") is not False:
                problems.append(f"{where}: set extrapolate false on gauges, stats and tables")
            q = t.get("query", "")
            if "$timeFilter" not in q or TABLE not in q:
                problems.append(f"{where}: must use $timeFilter and name {TABLE} literally")
            if p.get("type") == "gauge" and t.get("format") != "table":
                problems.append(f"{where}: the gauge's query format must be table")
    return problems


def alert_structure(doc: dict) -> list[str]:
    problems = []
    if doc.get("apiVersion") != 1:
        problems.append("apiVersion must be 1")
    seen = set()
    for group in doc.get("groups", []):
        for key in ("orgId", "name", "folder", "interval"):
            if key not in group:
                problems.append(f"group {group.get('name')}: missing {key}")
        for rule in group.get("rules", []):
            uid = rule.get("uid")
            seen.add(uid)
            refs = {q.get("refId"): q for q in rule.get("data", [])}
            if rule.get("condition") not in refs:
                problems.append(f"{uid}: condition {rule.get('condition')} is not one of its queries")
            if rule.get("noDataState") not in ("OK", "NoData", "Alerting", "KeepLast"):
                problems.append(f"{uid}: noDataState")
            if rule.get("execErrState") not in ("OK", "Error", "Alerting", "KeepLast"):
                problems.append(f"{uid}: execErrState")
            for key in ("title", "labels", "annotations"):
                if not rule.get(key):
                    problems.append(f"{uid}: missing {key}")
            if any("$" in str(v) for v in rule.get("labels", {}).values()):
                problems.append(f"{uid}: labels are interpolated from the environment: no $ in them")
            a = refs.get("A", {})
            model = a.get("model", {})
            if not a.get("datasourceUid") or a.get("relativeTimeRange", {}).get("from", 0) <= 0:
                problems.append(f"{uid}: query A needs a datasourceUid and a relativeTimeRange")
            if set(model) - ALERT_MODEL_KEYS:
                problems.append(f"{uid}: model keys the plugin does not read: {sorted(set(model) - ALERT_MODEL_KEYS)}")
            if model.get("format") != "table" or model.get("dateTimeType") != "DATETIME" or model.get("dateTimeColDataType") != "timestamp":
                problems.append(f"{uid}: model must be format table, dateTimeType DATETIME on timestamp")
            if model.get("datasource", {}).get("type") != PLUGIN or model.get("datasource", {}).get("uid") != a.get("datasourceUid"):
                problems.append(f"{uid}: model datasource must be the {PLUGIN} of datasourceUid")
            cond = refs.get(rule.get("condition"), {})
            cm = cond.get("model", {})
            if cond.get("datasourceUid") != "__expr__" or cm.get("type") != "threshold" or cm.get("expression") != "A":
                problems.append(f"{uid}: the condition must be a threshold expression on A")
            if uid in ALERT_SPEC:
                threshold, wait = ALERT_SPEC[uid]
                try:
                    ev = cm["conditions"][0]["evaluator"]
                    if ev["type"] != "gt" or ev["params"] != [threshold]:
                        problems.append(f"{uid}: threshold must be > {threshold}, is {ev}")
                except (KeyError, IndexError, TypeError):
                    problems.append(f"{uid}: no evaluator")
                if str(rule.get("for")) != wait:
                    problems.append(f"{uid}: for must be {wait}, is {rule.get('for')}")
    missing = set(ALERT_SPEC) - seen
    if missing:
        problems.append(f"missing rules: {sorted(missing)}")
    return problems


def alert_rules(doc: dict) -> list[dict]:
    return [rule for group in doc.get("groups", []) for rule in group.get("rules", [])]


def rule_parts(rule: dict) -> tuple[str, int, float]:
    """(query, relative range in seconds, threshold) of a rule."""
    refs = {q["refId"]: q for q in rule["data"]}
    a = refs["A"]
    threshold = refs[rule["condition"]]["model"]["conditions"][0]["evaluator"]["params"][0]
    return a["model"]["query"], int(a["relativeTimeRange"]["from"]), threshold


# --------------------------------------------------------------------------------------------
# The dataset checks


def dashboard_queries(d: dict) -> list[tuple[str, str, str, str]]:
    """(panel key, refId, format, query) of every SQL query of the dashboard."""
    out = []
    for p in walk_panels(d.get("panels", [])):
        for t in p.get("targets", []):
            out.append((str(p["id"]), t.get("refId", ""), t.get("format", ""), t.get("query", "")))
    for v in d.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            out.append((f"variable {v['name']}", "", "table", v["query"]))
    return out


def check_dataset(name: str, rows: list[Row], layout: Layout, engine: Engine, dashboard: dict,
                  rules: list[dict], results: Results) -> None:
    engine.load(rows)
    ticks = [r for r in rows if r.index == layout.tick]
    if not ticks:
        results.record(f"{name}: has reconciler_tick points", ["no tick points to check against"])
        return
    first, last = min(r.ts for r in rows), max(r.ts for r in rows)
    all_towns = sorted({layout.get(r, "town_id") for r in ticks})
    busiest = max(all_towns, key=lambda t: sum(1 for r in ticks if layout.get(r, "town_id") == t))
    span = last - first
    scenarios = [
        ("full range, all towns, 2m buckets", first, last, 120, all_towns),
        ("middle third, all towns, 1m buckets", first + span // 3, first + 2 * span // 3, 60, all_towns),
        (f"full range, town {busiest}, 5m buckets", first, last, 300, [busiest]),
    ]
    queries = dashboard_queries(dashboard)
    for label, frm, to, interval, towns in scenarios:
        view = View(layout, rows, frm, to, interval, towns)
        for panel, ref, fmt, query in queries:
            key = (panel, ref)
            title = f"{name}: {label}: panel {panel}{' ' + ref if ref else ''}"
            if key not in PANEL_EXPECTATIONS:
                results.record(title, ["no independent expectation for this query"])
                continue
            sql = expand(query, frm, to, interval, {"town": towns, "DS_GASTOWN": ["gastown-ae"]})
            try:
                columns, data = engine.run(sql)
            except Exception as e:  # the engine's message is the finding
                results.record(title, [f"query failed: {e}", sql])
                continue
            got, problems = canonical(columns, data, fmt == "time_series")
            try:
                problems += compare(got, PANEL_EXPECTATIONS[key](view))
            except ValueError as e:
                problems.append(f"no expectation: {e}")
            results.record(title, problems)

    # Cross-checks on the full range: the per-type stack equals the ticks' own action counts.
    view = View(layout, rows, first, last, 120, all_towns)
    by_type_sql: dict = {}
    totals_sql: dict = {}
    for panel, ref, fmt, query in queries:
        if panel == "202":
            try:
                columns, data = engine.run(expand(query, first, last, 120, {"town": all_towns}))
            except Exception:  # reported by the panel check above
                continue
            (by_type_sql if ref == "A" else totals_sql).update(canonical(columns, data, True)[0])
    from_json = defaultdict(float)
    for r in view.expanded(layout.tick):
        for kind, count in json.loads(layout.get(r, "actions_by_type") or "{}").items():
            from_json[(view.bucket(r.ts), kind)] += count
    stacked = defaultdict(float)
    for (b, _kind), vals in by_type_sql.items():
        stacked[(b,)] += vals["count"]
    problems = compare(by_type_sql, {k: {"count": c} for k, c in from_json.items()})
    problems += compare({k: {"actions_emitted": v} for k, v in stacked.items()},
                        {k: v for k, v in totals_sql.items() if v["actions_emitted"] > 0})
    results.record(f"{name}: panel 202 per-type counts equal the ticks' actions_by_type and add up to actions_emitted", problems)

    # The proof is not vacuous: what each claim needs is in the data.
    try:
        pending_drops = [t for t, rs in view.per_town().items()
                         if max(layout.get(r, "pending_event_count") for r in rs) > layout.get(view.last(rs), "pending_event_count")]
    except ValueError:
        pending_drops = []
    tpm = exp_ticks_per_minute(view)
    results.record(f"{name}: a town's latest pending count is below an earlier one (gauge must not average)",
                   [] if pending_drops else ["no town whose backlog shrank in the range"])
    results.record(f"{name}: ticks per minute has a stopped town at 0 and a live one above 0",
                   [] if any(v["ticks_per_minute"] == 0 for v in tpm.values()) and any(v["ticks_per_minute"] > 0 for v in tpm.values())
                   else [f"ticks per minute: {tpm}"])
    results.record(f"{name}: some stored rows stand for several points",
                   [] if any(r.weight > 1 for r in rows) else ["every _sample_interval is 1"])

    # Alerts, evaluated at many instants: the query's rows and which instances fire.
    instants = sorted({r.ts for r in ticks})
    instants = instants[:: max(1, len(instants) // 40)] + [last + 90, last + 200, last + 400]
    fired = defaultdict(int)
    for rule in rules:
        uid = rule["uid"]
        query, rel, threshold = rule_parts(rule)
        problems = []
        for at in instants:
            view = View(layout, rows, at - rel, at, 60, None)
            try:
                columns, data = engine.run(expand(query, at - rel, at, 60, {}))
            except Exception as e:
                problems.append(f"at {at}: query failed: {e}")
                break
            got, p = canonical(columns, data, False)
            try:
                want = alert_expectation(uid, view)
            except ValueError as e:
                problems.append(f"at {at}: no expectation: {e}")
                break
            problems += [f"at {at}: {x}" for x in p + compare(got, want)]
            spec = ALERT_SPEC.get(uid, (threshold, ""))[0]
            firing_got = {k for k, vals in got.items() if any(v > threshold for v in vals.values())}
            firing_want = {k for k, vals in want.items() if any(v > spec for v in vals.values())}
            if firing_got != firing_want:
                problems.append(f"at {at}: fires for {sorted(firing_got)}, want {sorted(firing_want)}")
            fired[uid] += len(firing_want)
        results.record(f"{name}: alert {uid} at {len(instants)} instants", problems)
    if name == "synthetic":
        quiet = [uid for uid in ALERT_SPEC if fired[uid] == 0]
        results.record("synthetic: every alert fires at some instant", [f"never fires: {quiet}"] if quiet else [])


# --------------------------------------------------------------------------------------------


def main() -> int:
    results = Results()
    layout = Layout(parse_layout(LAYOUT_RS.read_text()))
    dashboard = json.loads(DASHBOARD.read_text())
    alerts = yaml.safe_load(ALERTS.read_text())
    rules = alert_rules(alerts)

    results.record("dashboard: grafana-foundation-sdk load-and-dump keeps every key", sdk_round_trip(dashboard))
    broken = copy.deepcopy(dashboard)
    broken["panels"][1]["fieldConfg"] = broken["panels"][1].pop("fieldConfig")
    broken["panels"][1]["options"]["legend"]["displayMod"] = "table"
    found = sdk_round_trip(broken)
    results.record("dashboard: the round trip catches misspelt keys (canary)",
                   [] if len(found) == 2 else [f"the canary found {found}"])
    results.record("dashboard: panels, variables and targets", dashboard_structure(dashboard))
    results.record("alerts: rules, thresholds and durations", alert_structure(alerts))

    # Lint of every query as Analytics Engine would receive it.
    all_towns = ["town-a", "town-b"]
    queries = [(f"panel {p} {r}".strip(), q) for p, r, _f, q in dashboard_queries(dashboard)]
    queries += [(f"alert {rule['uid']}", rule_parts(rule)[0]) for rule in rules]
    for where, q in queries:
        results.record(f"lint: {where}", lint(expand(q, T_END - 3600, T_END, 60, {"town": all_towns})))
    canary = " | ".join(lint("SELECT DISTINCT JSONExtractKeys(blob10) AS k, avg(double1) AS a, uniq(blob6) AS u, "
                             "SUM(double2) AS s FROM other ARRAY JOIN k WHERE $timeFilter"))
    missed = [w for w in ("JSONExtractKeys", "avg(", "uniq", "SUM(double2)", "'other'", "ARRAY", "JOIN",
                          "DISTINCT", "$timeFilter") if w not in canary]
    results.record("lint: catches what AE does not document (canary)", [f"missed {missed}"] if missed else [])

    engine = Engine()
    if not POINTS.exists():
        results.record("captured: points.json", [f"{POINTS} is missing: run the runtime tests first"])
    else:
        points = json.loads(POINTS.read_text())
        check_dataset("captured", captured_rows(points, layout), layout, engine, dashboard, rules, results)
    check_dataset("synthetic", synthetic_rows(layout), layout, engine, dashboard, rules, results)

    print(f"dashboard: {results.passed} passed, {results.failed} failed")
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main())

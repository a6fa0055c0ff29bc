// The benchmark report (scripts/bench): joins the native figures (benches/tick.rs) and the
// workerd figures (tests/bench/workerd.mjs) with the machine, the Wasm size and the growth of the
// tick with the town and the backlog; prints it and writes it as Markdown.
//
// node tests/bench/report.mjs --native N.json --workerd W.json --wasm build/index_bg.wasm --out BENCHMARKS.md
import { execSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";

function option(name) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) throw new Error(`--${name} is required`);
  return process.argv[i + 1];
}

const native = JSON.parse(readFileSync(option("native"), "utf8"));
const workerd = JSON.parse(readFileSync(option("workerd"), "utf8"));
const wasmPath = option("wasm");
const wasm = readFileSync(wasmPath);
const outPath = option("out");

// Targets of issues 8 and 22, reported against, never asserted.
const TARGET = {
  reconcileMs: 10, workerdTickMs: 100, workerdTickEvents: 1000, ratio: 3, gzipKB: 400,
  steadyBeads: 10_000, steadyTickMs: 20,
};
// The remote calls a tick may make (TICK_SUBREQUEST_BUDGET), as both runs were given it.
const budget = native.subrequest_budget ?? null;
const steadyNative = native.steady ?? [];
const steadyWorkerd = workerd.steady ?? [];
// A step is flagged when time grows faster than size to this power (a margin for noise).
const LINEAR = 1.1;
// Times below these are too small to scale from.
const NATIVE_RESOLUTION_MS = 0.01;
const WORKERD_RESOLUTION_MS = 1;

const sh = (cmd) => execSync(cmd, { encoding: "utf8" }).trim();
const dirty = sh("git status --porcelain --untracked-files=no") !== "";
const machine = {
  date: new Date().toISOString(),
  commit: `${sh("git rev-parse --short HEAD")}${dirty ? " (with uncommitted changes)" : ""}`,
  nproc: sh("nproc"),
  memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
  cpu: cpus()[0]?.model ?? "unknown",
  load: loadavg().map((l) => l.toFixed(2)).join(" / "),
};

const n = (x) => x.toLocaleString("en-US");
const f = (x, d = 3) => (x === null || x === undefined ? "n/a" : x.toFixed(d));
const table = (head, rows) =>
  [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
const key = (w) => `${w.beads}/${w.events}`;
/** The remote calls of a row's ticks against the budget: "yes", or "NO (most N)". */
const within = (most) => (most === undefined || most === null || budget === null ? "n/a" : most <= budget ? "yes" : `NO (most ${n(most)})`);
const nativeCalls = (w) => (w.remote_calls ? n(w.remote_calls.median) : "n/a");

const budgetTitle = `within the budget (${budget === null ? "n/a" : n(budget)})`;
const nativeTable = table(
  ["beads", "events", "drained", "statements", "rows read/written", "tick median", "tick p95",
   "floor median", "tick/floor", "actions", "remote calls per tick", budgetTitle, "SQL share"],
  native.workloads.map((w) => [
    n(w.beads), n(w.events), n(w.drained), n(w.statements), `${n(w.rows.read)} / ${n(w.rows.written)}`,
    f(w.tick.median_ms), f(w.tick.p95_ms), f(w.floor.median_ms), f(w.tick_over_floor, 2),
    n(w.actions), nativeCalls(w), within(w.remote_calls?.max), `${(100 * w.tick_profile.sql_share).toFixed(0)}%`,
  ]),
);

// The tick's phases (src/tick/phases.rs), in the order they run, as benches/tick.rs names them.
const PHASES = [
  ["observe", "observe"], ["drain", "drain & apply"], ["snapshot", "snapshot"], ["reconcile", "reconcile"],
  ["actions", "apply actions"], ["side_effects", "side effects"], ["invariants", "invariants"],
  ["metrics", "metrics"], ["housekeeping", "housekeeping"],
];
/** The phases of `workloads`' ticks, a row each, led by the cells `lead(w)` under `head`. */
const phases = (head, workloads, lead) =>
  table(
    [...head, ...PHASES.map(([, title]) => title), "sum", "tick median", "largest"],
    workloads.map((w) => {
      const times = PHASES.map(([name]) => w.phases[name].median_ms);
      const sum = times.reduce((a, b) => a + b, 0);
      const top = times.indexOf(Math.max(...times));
      return [...lead(w), ...times.map((t) => f(t)), f(sum), f(w.tick.median_ms),
        `${PHASES[top][1]} (${(100 * times[top] / sum).toFixed(0)}%)`];
    }),
  );
const phaseTable = phases(["beads", "events"], native.workloads, (w) => [n(w.beads), n(w.events)]);

const workerdTable = table(
  ["beads", "events", "drained", "tick median", "tick p95", "round trip median", "baseline median",
   "floor median", "tick/floor", "remote calls per tick", budgetTitle, "calls' floor median",
   "tick/(floor + calls' floor)", "DO rows read/written per tick request", "seed round trip"],
  workerd.workloads.map((w) => [
    n(w.beads), n(w.events), n(w.drained), f(w.tick.median_ms, 2), f(w.tick.p95_ms, 2),
    f(w.tick_round_trip.median_ms, 2), f(w.baseline.median_ms, 2), f(w.floor.median_ms, 2),
    f(w.tick_over_floor, 2), n(w.remote_calls_per_tick ?? 0), within(w.remote_calls_max), f(w.calls_floor?.median_ms, 2),
    f(w.tick_over_floor_and_calls, 2),
    w.do_rows_per_tick ? `${n(w.do_rows_per_tick.read)} / ${n(w.do_rows_per_tick.written)}` : "n/a",
    f(w.seed_ms, 0),
  ]),
);

// The steady towns: settled, then ticked as they stand.
const rowsOf = (r) => (r ? `${n(r.read)} / ${n(r.written)}` : "n/a");
const steadyNativeTable = table(
  ["beads", "ticks to settle", "statements", "rows read/written", "tick median", "tick p95", "floor median",
   "tick/floor", "remote calls per tick", budgetTitle, "timed ticks with actions", "SQL share"],
  steadyNative.map((w) => [
    n(w.beads), n(w.settling_ticks), n(w.statements), rowsOf(w.rows), f(w.tick.median_ms), f(w.tick.p95_ms),
    f(w.floor.median_ms), f(w.tick_over_floor, 2), nativeCalls(w), within(w.remote_calls?.max),
    `${n(w.ticks_with_actions)} of ${n(w.tick.samples)}`, `${(100 * w.tick_profile.sql_share).toFixed(0)}%`,
  ]),
);
const steadyPhaseTable = phases(["beads"], steadyNative, (w) => [n(w.beads)]);
const steadyWorkerdTable = table(
  ["beads", "ticks to settle", "tick median", "tick p95", "baseline median", "floor median", "tick/floor",
   "remote calls per tick", budgetTitle, "calls' floor median", "tick/(floor + calls' floor)",
   "DO rows read/written per tick request", "timed ticks with actions"],
  steadyWorkerd.map((w) => [
    n(w.beads), n(w.settling_ticks), f(w.tick.median_ms, 2), f(w.tick.p95_ms, 2), f(w.baseline.median_ms, 2),
    f(w.floor.median_ms, 2), f(w.tick_over_floor, 2), n(w.remote_calls_per_tick), within(w.remote_calls_max),
    f(w.calls_floor.median_ms, 2), f(w.tick_over_floor_and_calls, 2), rowsOf(w.do_rows_per_tick),
    `${n(w.ticks_with_actions)} of ${n(w.tick.samples)}`,
  ]),
);
/** Actions by type as "poll_pr 22, stop_agent 1", or "nothing". */
const actionList = (byType) =>
  Object.entries(byType ?? {}).map(([type, count]) => `${type} ${n(count)}`).join(", ") || "nothing";
/** What the settling ticks of a town did, then its timed ticks together:
 * "poll_pr 22 (125 calls) → nothing (101 calls); timed ticks: nothing". */
const settled = (w) =>
  `${w.settling.map((t) => `${actionList(t.actions)} (${n(t.calls)} calls)`).join(" → ")}; ` +
  `timed ticks: ${actionList(w.actions_by_type)}`;
const settlingLines = [
  ...steadyNative.map((w) => `- natively, ${n(w.beads)} beads: ${settled(w)}`),
  ...steadyWorkerd.map((w) => `- in workerd, ${n(w.beads)} beads: ${settled(w)}`),
].join("\n");

/** Growth of `time(w)` along one axis, the other held: a line per held value with the exponent
 * of each step (time ~ size^k) and a flag when k > LINEAR. Sizes of 0, and times below
 * `resolution` ms (within the measurement's noise), give no exponent. */
function growth(workloads, axis, held, time, resolution) {
  const lines = [];
  for (const h of [...new Set(workloads.map((w) => w[held]))]) {
    const series = workloads.filter((w) => w[held] === h).sort((a, b) => a[axis] - b[axis]);
    if (series.length < 2) continue;
    const steps = [];
    let flagged = false;
    for (let i = 1; i < series.length; i++) {
      const [a, b] = [series[i - 1], series[i]];
      const [ta, tb] = [time(a), time(b)];
      let k = null;
      if (a[axis] > 0 && ta >= resolution && tb >= resolution) {
        k = Math.log(tb / ta) / Math.log(b[axis] / a[axis]);
      }
      const worse = k !== null && k > LINEAR;
      flagged ||= worse;
      steps.push(`${n(a[axis])} → ${n(b[axis])}: ×${f(tb / ta, 2)}${k === null ? "" : ` (k = ${f(k, 2)}${worse ? ", WORSE THAN LINEAR" : ""})`}`);
    }
    const times = series.map((w) => `${f(time(w))} ms`).join(" → ");
    lines.push(`- ${held} ${n(h)}: ${times}; ${steps.join("; ")}${flagged ? " ⚠" : ""}`);
  }
  return lines.join("\n");
}

const growthSection = (title, workloads, time, resolution) =>
  [`### ${title}`, "", `Beads, at each backlog:`, "", growth(workloads, "beads", "events", time, resolution), "",
   `Pending events, at each town size (at most ${n(native.drain_limit)} are drained per tick):`, "",
   growth(workloads, "events", "beads", time, resolution)].join("\n");

// Targets.
const at = (list, beads, events) => list.find((w) => w.beads === beads && w.events === events);
const max = (xs) => (xs.length ? Math.max(...xs) : null);
const reconcile10k = max(native.workloads.filter((w) => w.beads === 10_000).map((w) => w.phases.reconcile.median_ms));
const withBacklog = workerd.workloads.filter((w) => w.events === TARGET.workerdTickEvents);
const workerdTick1k = max(withBacklog.map((w) => w.tick.median_ms));
// The backlog target, town by town: the measured ticks, and which sizes meet it.
const backlogMeasured = withBacklog.map((w) => `${f(w.tick.median_ms, 2)} ms at ${n(w.beads)} beads`).join(", ");
const backlogMet = withBacklog.filter((w) => w.tick.median_ms <= TARGET.workerdTickMs).map((w) => n(w.beads));
const backlogVerdict =
  workerdTick1k === null ? "not measured"
  : backlogMet.length === withBacklog.length ? "met"
  : backlogMet.length ? `met at ${backlogMet.join(", ")} beads only`
  : "NOT met";
const steadyAt = (list) => list.find((w) => w.beads === TARGET.steadyBeads) ?? null;
const [steadyN, steadyW] = [steadyAt(steadyNative), steadyAt(steadyWorkerd)];
// Every row's most remote calls in a tick, both runtimes, backlog and steady.
const mostCalls = [
  ...native.workloads.map((w) => w.remote_calls?.max),
  ...steadyNative.map((w) => w.remote_calls?.max),
  ...workerd.workloads.map((w) => w.remote_calls_max),
  ...steadyWorkerd.map((w) => w.remote_calls_max),
].filter((c) => c !== undefined && c !== null);
const callsRows = native.workloads.length + steadyNative.length + workerd.workloads.length + steadyWorkerd.length;
const nativeRatio = max(native.workloads.map((w) => w.tick_over_floor));
const workerdRatio = max(workerd.workloads.map((w) => w.tick_over_floor).filter((r) => r !== null));
const withCalls = max(workerd.workloads.map((w) => w.tick_over_floor_and_calls ?? null).filter((r) => r !== null));
// As scripts/test measures it.
const gzip = execSync(`gzip -9c "${wasmPath}"`, { maxBuffer: 64 * 2 ** 20 }).length;
const met = (value, limit) => (value === null ? "not measured" : value <= limit ? "met" : "NOT met");
const targets = table(
  ["target", "measured", ""],
  [
    [`native reconcile over 10,000 beads < ${TARGET.reconcileMs} ms`, reconcile10k === null ? "n/a" : `${f(reconcile10k)} ms (slowest backlog)`, met(reconcile10k, TARGET.reconcileMs)],
    [`workerd tick with ${n(TARGET.workerdTickEvents)} pending events < ${TARGET.workerdTickMs} ms`, workerdTick1k === null ? "n/a" : backlogMeasured, backlogVerdict],
    [`steady tick at ${n(TARGET.steadyBeads)} beads < ${TARGET.steadyTickMs} ms (workerd)`, steadyW ? `${f(steadyW.tick.median_ms, 2)} ms` : "n/a", met(steadyW?.tick.median_ms ?? null, TARGET.steadyTickMs)],
    [`steady tick at ${n(TARGET.steadyBeads)} beads ≤ ${TARGET.ratio}× its floor (workerd)`, steadyW ? `${f(steadyW.tick_over_floor, 2)} (against the rows' floor plus the calls' floor: ${f(steadyW.tick_over_floor_and_calls, 2)})` : "n/a", met(steadyW?.tick_over_floor ?? null, TARGET.ratio)],
    [`steady tick at ${n(TARGET.steadyBeads)} beads ≤ ${TARGET.ratio}× its floor (native)`, steadyN ? f(steadyN.tick_over_floor, 2) : "n/a", met(steadyN?.tick_over_floor ?? null, TARGET.ratio)],
    [`remote calls per tick ≤ the budget (${budget === null ? "n/a" : n(budget)}) in every row, backlog and steady, native and workerd`, mostCalls.length ? `most ${n(max(mostCalls))} (${n(mostCalls.length)} of ${n(callsRows)} rows counted)` : "n/a", mostCalls.length === callsRows ? met(max(mostCalls), budget) : "not measured in every row"],
    [`tick/floor ≤ ${TARGET.ratio} for every backlog workload (native)`, nativeRatio === null ? "n/a" : `worst ${f(nativeRatio, 2)}`, met(nativeRatio, TARGET.ratio)],
    [`tick/floor ≤ ${TARGET.ratio} for every backlog workload (workerd)`, workerdRatio === null ? "n/a" : `worst ${f(workerdRatio, 2)}${withCalls === null ? "" : ` (against the rows' floor plus the calls' floor, which the target does not count: worst ${f(withCalls, 2)})`}`, met(workerdRatio, TARGET.ratio)],
    [`Wasm ≤ ${TARGET.gzipKB} KB gzipped (KB read as KiB, as wrangler prints sizes)`, `${f(gzip / 1024, 1)} KiB (${n(gzip)} bytes)`, met(gzip / 1024, TARGET.gzipKB)],
  ],
);

// What a statement costs, whatever it does, in each runtime; and how much of each workerd tick its
// statements alone account for (the tick runs the same statements in both runtimes).
const perStatementNative = native.statement_floor?.per_statement_us ?? null;
const perStatementWorkerd = workerd.statement_floor?.per_statement_us ?? null;
const nativeBy = new Map(native.workloads.map((w) => [key(w), w]));
const statementTable = table(
  ["beads", "events", "statements", "× one statement in workerd", "workerd tick median", "share"],
  workerd.workloads.map((w) => {
    const count = nativeBy.get(key(w))?.statements ?? null;
    const floorMs = count === null || perStatementWorkerd === null ? null : (count * perStatementWorkerd) / 1000;
    return [n(w.beads), n(w.events), count === null ? "n/a" : n(count), f(floorMs, 1), f(w.tick.median_ms, 2),
      floorMs === null || w.tick.median_ms <= 0 ? "n/a" : `${((100 * floorMs) / w.tick.median_ms).toFixed(0)}%`];
  }),
);

const largest = native.workloads.at(-1);
const statements = (profile) =>
  table(
    ["time (ms)", "calls", "rows", "statement"],
    profile.statements.map((s) => [f(s.ms), n(s.calls), n(s.rows), `\`${s.sql.slice(0, 140)}\``]),
  );
const memory = (workerd.workerd_memory ?? []).map((p) => `${p.role} (pid ${p.pid}): peak ${n(Math.round(p.vm_hwm_kib / 1024))} MiB (VmHWM), ${n(Math.round(p.vm_rss_kib / 1024))} MiB resident at the end`);

const doc = `# Benchmarks

Written by \`scripts/bench\`; re-run it rather than editing. Times in milliseconds.

- date ${machine.date}, commit ${machine.commit}
- machine: ${machine.nproc} cores (nproc), ${machine.memory}, ${machine.cpu}; load average ${machine.load} (1/5/15 min) when the report was written
- workloads of seed ${native.seed}: towns of ${[...new Set(native.workloads.map((w) => n(w.beads)))].join(", ")} beads, with ${[...new Set(native.workloads.map((w) => n(w.events)))].join(", ")} pending events; drain limit ${n(native.drain_limit)} events per tick; steady towns of ${steadyNative.length ? steadyNative.map((w) => n(w.beads)).join(", ") : "no"} beads; a budget of ${budget === null ? "n/a" : n(budget)} remote calls per tick (\`TICK_SUBREQUEST_BUDGET\`)
- repetitions per workload: native ${native.reps}, workerd ${workerd.reps} (after ${workerd.warmup} warm-up ticks)

## Targets (reported, not asserted)

${targets}

## The tick natively (rusqlite, in memory)

${nativeTable}

Medians and p95 over the repetitions, each on a freshly re-seeded town. Actions: those the tick's
reconcile emitted. SQL share: the part of the tick spent inside the SQL port (profiled pass). Rows
are those SQLite returned or changed.

Phases of the same ticks (median of each; \`src/tick/phases.rs\` says what each covers), each
timed from the end of the one before, as the tick reports them to the harness:

${phaseTable}

The phases' medians need not add up to the tick's. Observe and side effects include the calls to
the fake, which answers at once. In workerd the clock does not advance during synchronous work,
so there the phases cannot be timed from inside; the code is the same.

Statements of the tick by time, ${n(largest.beads)} beads and ${n(largest.events)} pending events (one profiled tick, ${(100 * largest.tick_profile.sql_share).toFixed(0)}% of it inside the SQL port):

${statements(largest.tick_profile)}

Statements of the snapshot load by time, same workload (one profiled load, ${(100 * largest.snapshot_load_profile.sql_share).toFixed(0)}% of it inside the SQL port):

${statements(largest.snapshot_load_profile)}

## The tick in workerd (\`workerd serve\`)

${workerdTable}

workerd runs the bundle \`wrangler deploy --dry-run\` makes, with wrangler.toml's bindings written as
a workerd config (\`tests/bench/serve.mjs\`), and no inspector: under \`wrangler dev\`, whose
inspector puts V8 in its debugging mode, a plain JavaScript Durable Object's SQL statement cost
~50-75 µs against ~4-8 µs here, and this Worker's tick at 1,000 beads and 1,000 events ~240 ms
against ~120 ms (measured by hand, 2026-11-29). Analytics Engine is bound to an object whose
\`writeDataPoint\` drops the point: workerd's own local binding sends every point to a service as
a subrequest, which took ~7 ms of a ~21 ms tick at 100 beads (a tick writes up to 100 points),
where the platform's call returns at once. Tick and floor: round trip from Node minus the median round trip of \`GET /debug/towns/{t}/drain-status\`
(baseline), measured the same way beside them. Inside workerd \`Date.now()\` does not advance during
synchronous work, so the tick's own \`wall_clock_ms\` reads 0 there; these figures come from outside.
DO rows are the cursors' \`rowsRead\`/\`rowsWritten\` over the whole tick request (rows scanned, so more
than the rows returned natively), read through \`GET .../bench/counters\`. Remote calls: requests the
tick made to the stand-in for the container and GitHub, a Worker in the same workerd process that
every outbound fetch reaches and that answers each at once with 200 \`{"status":"running"}\` (as
the native harness's fake does), so a call costs the town's side of it and no socket. (A stand-in
in Node behind loopback added ~3.5 ms to the 100-bead tick and ~55 ms to the 10,000-bead one.)
Calls' floor: as many bare \`GET /health\` calls as the tick made (its median), through the same
HTTP port with the same timeouts, at most as many in flight as the tick allows, to the same
stand-in, answers parsed and dropped (\`POST .../bench/calls\`), timed like the tick. It is what
the tick's calls cost before the town does anything with them: the JavaScript and Wasm glue of
each fetch, and the stand-in's answer, which runs in the same process.

## A steady town

${steadyNative.length || steadyWorkerd.length ? `Natively (rusqlite, in memory):

${steadyNativeTable}

Phases of the same ticks (medians, as above):

${steadyPhaseTable}

In workerd (\`workerd serve\`, as above):

${steadyWorkerdTable}

What the ticks to settle did (actions of each tick's reconcile, and its remote calls), the last one the first to emit nothing, then what the timed ticks emitted together:

${settlingLines}
` : "Not measured in this run.\n"}
A steady town (\`src/bench/workload/steady.rs\`) holds the population a busy town keeps while no
work waits: at most 20 rigs (one per 500 beads), each with 5 working polecats heartbeating and
hooked to their issues in progress, 2 idle ones, 5 reviews in flight (PRs under polling on every
other rig, else one direct review with the working refinery and the others queued), an open convoy
and 3 issues blocked by work in progress; the rest is history, and no event is pending. It is
seeded once and ticked until a tick's reconciler emits nothing (it fails after 20 ticks), then
ticked as it stands, never re-seeded; a timed tick that emitted an action is counted above. The
remotes answer as a healthy system: agents running, PRs open. Natively the clock stays at the
seeding time (heartbeats stay fresh and no PR poll comes due again: the 5-second ticks of a town
at rest between two polls); in workerd it is the machine's, and a town's whole run takes seconds,
within the heartbeats' 90 s and the polls' 60 s. Rows, statements and remote calls are per tick
(medians); the floor moves the steady tick's rows (counted natively), as for the backlog.

Its agents heartbeat, so the observation asks none of them about their status (only an agent
unheard of for \`TICK_OBSERVE_INTERVAL_MS\`, 45 s, is asked): the one remote call of a steady tick
is the container's health ping. Were no heartbeat to arrive, each working agent would be asked
once per 45 s, which for the 100 agents of the 10,000-bead town at 5-second ticks is about 11
status calls a tick; before the interval it asked all of them every tick, 101 calls and about
23 ms of a 55 ms tick in workerd (BENCHMARKS.md at 09b79b3).

## The cost of a statement

One statement, whatever it does (a point read of the town row by primary key, \`POST .../bench/statements\`
in workerd, \`floor::statements\` natively): ${f(perStatementNative, 2)} µs natively, ${f(perStatementWorkerd, 1)} µs in
workerd${perStatementNative && perStatementWorkerd ? ` (×${(perStatementWorkerd / perStatementNative).toFixed(0)})` : ""}. In workerd every statement crosses into the runtime's
SQLite binding and back (a call through the JavaScript glue, a cursor, one call per row). The
tick's statements (counted natively; the code and so the
statements are the same in both runtimes) times that cost:

${statementTable}

## Growth

${growthSection("Native tick (median)", native.workloads, (w) => w.tick.median_ms, NATIVE_RESOLUTION_MS)}

${growthSection("Workerd tick (median, net of the baseline)", workerd.workloads, (w) => w.tick.median_ms, WORKERD_RESOLUTION_MS)}

k is the exponent of a step (time ∝ size^k); steps with k > ${LINEAR} are flagged as worse than
linear. No exponent is given from 0 or for times under ${NATIVE_RESOLUTION_MS} ms natively and
${WORKERD_RESOLUTION_MS} ms in workerd, where the round trip's noise dominates.

## Size, start and memory

- Wasm of the production build (build/index_bg.wasm): ${n(wasm.length)} bytes raw, ${n(gzip)} bytes gzip -9
- cold start, from spawning \`wrangler dev\` to the first answered /health: ${f(workerd.cold_start_ms, 0)} ms (wrangler's own start included; the build is made beforehand); first request to the town's Durable Object (creates it): ${f(workerd.first_town_request_ms, 0)} ms
- cold start under \`workerd serve\` (the Wasm compiled, no wrangler): ${f(workerd.workerd_cold_start_ms, 0)} ms to the first answered /health; first request to the town's Durable Object: ${f(workerd.workerd_first_town_request_ms, 0)} ms
- the \`workerd serve\` process, after all workloads: ${memory.length ? memory.join("; ") : "not found"}. workerd
  reports no per-isolate figure; the process also runs the stand-in Worker, whose garbage (every
  call's request and answer) raises the peak: after the same 10,000-bead ticks the process peaked
  at ~440 MiB with it, ~310 MiB with the stand-in in Node (measured by hand, 2026-11-29)

## How it is measured

- Workloads: \`src/bench/workload.rs\`, seeded splitmix64, written through the SQL port by the native harness and, in workerd, by \`POST /debug/towns/{t}/bench/seed\` inside the Durable Object (development only).
- Floor: \`src/bench/floor.rs\`, the tick's rows (as counted natively) read and written by bare \`SELECT\`/\`UPDATE\` statements on \`beads\` with no logic, in the same runtime (\`POST .../bench/floor\` in workerd).
- Calls' floor (workerd only; natively a call is a function call to the fake): \`floor::calls\` in \`src/bench/floor.rs\`, \`POST .../bench/calls\`.
- Native: \`benches/tick.rs\`, \`tick::run\` over \`NativeSql\` with the migrations applied and ports answering at once.
- Remote calls: natively the stand-in of \`benches/tick.rs\` counts the requests of each tick, in workerd the stand-in Worker (\`tests/bench/serve.mjs\`); each row shows the median per tick and whether the most in any tick stayed within the budget the tick enforces (\`TICK_SUBREQUEST_BUDGET\`, given to the Worker as its var).
- Workerd: \`tests/bench/workerd.mjs\` serves a build with the \`bench\` feature (the production Wasm, whose size is reported above, leaves the bench routes out); the alarm is set a day away so that only the timed ticks run.
`;

console.log(`\n${doc}`);
writeFileSync(outPath, doc);
console.log(`wrote ${outPath}`);

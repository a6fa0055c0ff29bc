// The tick inside workerd, for each workload the native harness measured (scripts/bench).
//
// Serves the Worker built with the `bench` feature (--worker: its index.js) under a copy of
// wrangler.toml pointed at it (a free port, throwaway state, ENVIRONMENT=development). First with
// `wrangler dev`, for its cold start: the time from spawning it to the first answered /health.
// Then with `workerd serve` (tests/bench/serve.mjs: no inspector, whose debugging tier would
// slow the Wasm and every SQL call several times over) for everything timed: its own cold start
// and then each workload. For each backlog workload it seeds the town INSIDE its Durable
// Object (POST /debug/towns/{t}/bench/seed) before every tick; each steady town it seeds once,
// ticks until its reconciler emits nothing and then ticks as it stands (the stand-in's GitHub
// answering its PRs as open meanwhile). Either way it times POST .../tick round
// trips from outside: inside workerd Date.now() does not advance during synchronous work, so the
// tick's own wall_clock_ms reads 0 there. The round trip of GET .../drain-status, measured the
// same way just before each tick, is the baseline subtracted from it. The SQL port's counters
// (GET .../bench/counters) read around a tick give the rows the DO's cursors counted for it. The
// floor (POST .../bench/floor) moves the rows the native tick moved, timed the same way. The
// calls' floor (POST .../bench/calls) makes as many bare calls as the tick made, through the same
// HTTP port at the same concurrency, to the same stand-in, timed the same way. The
// statement floor (POST .../bench/statements) times point reads of the town row, 1 and then
// STATEMENTS of them per request: the cost of one statement whatever it does. Last,
// the peak resident memory of the workerd process (VmHWM). The side effects go to a stand-in
// Worker in the same workerd process (every outbound fetch, whatever CONTAINER_URL and
// GITHUB_API_URL say) that answers every request at once with 200 {"status":"running"}, as the
// native harness's fake does, so both figures are the town's own. The stand-in counts the
// requests: the remote calls of each tick, against the budget the Worker is given
// (TICK_SUBREQUEST_BUDGET, the native run's).
//
// node tests/bench/workerd.mjs --worker target/bench/worker/index.js \
//   --native target/bench/native.json --out target/bench/workerd.json [--reps N] [--warmup N]
import { readFileSync, writeFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { API, benchSession, client, freePort, plainWorkerd, stop, wranglerDev } from "./serve.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const TOWN = "bench-town";

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  return process.argv[i + 1];
}

const worker = option("worker");
const native = JSON.parse(readFileSync(option("native"), "utf8"));
const outPath = option("out");
const reps = Number(option("reps", "15"));
const warmup = Number(option("warmup", "3"));
// The remote calls a tick may make: the native run's, given to the Worker as its var.
const budget = native.subrequest_budget;

/** Median and p95 (nearest rank) of samples in ms. */
function stats(samples) {
  const v = [...samples].sort((a, b) => a - b);
  const rank = (p) => v[Math.min(v.length, Math.max(1, Math.ceil(p * v.length))) - 1];
  return { median_ms: rank(0.5), p95_ms: rank(0.95), samples: v.length };
}

/** VmHWM and VmRSS (KiB) of the `workerd serve` process `pid`. */
function workerdMemory(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (key) => Number(status.match(new RegExp(`^${key}:\\s+(\\d+) kB`, "m"))?.[1]);
  return [{ pid, role: "workerd serve", vm_hwm_kib: kib("VmHWM"), vm_rss_kib: kib("VmRSS") }];
}

/** The bench session (tests/bench/serve.mjs): stand-in, state, config, vars and the server. */
let session = null;
const call = (...args) => client(session.server.base)(...args);

const debug = `/debug/towns/${TOWN}`;
const counters = async () => (await call("GET", `${debug}/bench/counters`)).json;

/** Round trips of `POST path` with `body`, `reps` of them after `warmup`, each just after a
 * baseline round trip (GET .../drain-status); `check(json)` throws on a wrong answer. The
 * samples, their baselines and the last answer. */
async function timedBeside(path, body, check) {
  const [samples, baselines] = [[], []];
  let answer;
  for (let i = 0; i < warmup + reps; i++) {
    const baseline = await call("GET", `${debug}/drain-status`);
    const r = await call("POST", path, body);
    check(r.json);
    answer = r.json;
    if (i < warmup) continue;
    samples.push(r.ms);
    baselines.push(baseline.ms);
  }
  return { samples, baselines, answer };
}

/** One tick of the town, timed from outside beside a baseline round trip: its round trip, the
 * baseline's, the DO rows its request read and wrote (null when the instance restarted), the
 * remote calls it made and its metrics. */
async function oneTick() {
  const baseline = await call("GET", `${debug}/drain-status`);
  const c0 = await counters();
  const callsBefore = await session.server.remoteCalls();
  const tick = await call("POST", `${debug}/tick`);
  const calls = (await session.server.remoteCalls()) - callsBefore;
  const c1 = await counters();
  const c2 = await counters();
  // c1 - c0 is the tick request plus the counters request's own reads, which c2 - c1 measures;
  // a restarted instance starts its counters again from zero.
  const rows =
    c1.rows_read >= c0.rows_read && c2.rows_read >= c1.rows_read
      ? {
          read: c1.rows_read - c0.rows_read - (c2.rows_read - c1.rows_read),
          written: c1.rows_written - c0.rows_written - (c2.rows_written - c1.rows_written),
        }
      : null;
  return { ms: tick.ms, baseline: baseline.ms, rows, calls, metrics: tick.json.metrics };
}

/** The median of numbers (the upper one of an even count). */
const medianOf = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** The figures of `ticks` (what `oneTick` answered, warm-up left out) against the floor of the
 * rows `native` measured and the floor of the calls the ticks made, both timed beside the
 * baseline; `seeds` are the seed round trips. */
async function figures(native, ticks, seeds) {
  const target = { reads: native.rows.read, writes: native.rows.written };
  const floor = await timedBeside(`${debug}/bench/floor`, target, (json) => {
    if (json.reads !== target.reads || json.writes !== target.writes) {
      throw new Error(`the floor moved ${JSON.stringify(json)}, not ${JSON.stringify(target)}`);
    }
  });
  const calls = ticks.map((t) => t.calls);
  const remoteCalls = medianOf(calls) ?? 0;
  const callFloor = await timedBeside(`${debug}/bench/calls`, { count: remoteCalls }, (json) => {
    if (json.answered !== remoteCalls) {
      throw new Error(`the calls' floor had ${JSON.stringify(json)}, not ${remoteCalls} answered`);
    }
  });
  const median = (xs) => stats(xs).median_ms;
  const baselines = [...ticks.map((t) => t.baseline), ...floor.baselines, ...callFloor.baselines];
  const baselineMs = median(baselines);
  const net = (xs) => stats(xs.map((x) => Math.max(0, x - baselineMs)));
  const tickNet = net(ticks.map((t) => t.ms));
  const floorNet = net(floor.samples);
  const callsNet = net(callFloor.samples);
  const both = floorNet.median_ms + callsNet.median_ms;
  const doRows = ticks.map((t) => t.rows).filter((r) => r !== null);
  const rows = doRows.sort((a, b) => a.read - b.read)[Math.floor(doRows.length / 2)] ?? null;
  const mostCalls = Math.max(...calls);
  return {
    seed_ms: median(seeds),
    baseline: stats(baselines),
    tick_round_trip: stats(ticks.map((t) => t.ms)),
    tick: tickNet,
    floor_round_trip: stats(floor.samples),
    floor: floorNet,
    tick_over_floor: floorNet.median_ms > 0 ? tickNet.median_ms / floorNet.median_ms : null,
    calls_floor_round_trip: stats(callFloor.samples),
    calls_floor: callsNet,
    tick_over_floor_and_calls: both > 0 ? tickNet.median_ms / both : null,
    do_rows_per_tick: rows,
    remote_calls_per_tick: remoteCalls,
    remote_calls_max: mostCalls,
    subrequest_budget: budget,
    within_budget: mostCalls <= budget,
    do_rows_per_floor: floor.answer.counters,
  };
}

/** A backlog workload: re-seeded before every tick. */
async function measure(w) {
  const spec = { beads: w.beads, events: w.events, seed: native.seed };
  const seeds = [];
  const seed = async () => seeds.push((await call("POST", `${debug}/bench/seed`, spec)).ms);
  const expected = Math.min(w.events, native.drain_limit);
  const ticks = [];
  for (let i = 0; i < warmup + reps; i++) {
    await seed();
    const tick = await oneTick();
    const drained = tick.metrics.events_drained;
    if (drained !== expected) throw new Error(`the tick drained ${drained} events, not ${expected}`);
    if (i >= warmup) ticks.push(tick);
  }
  await seed();
  return { beads: w.beads, events: w.events, drained: expected, ...(await figures(w, ticks, seeds)) };
}

/** Most ticks a steady town may take to settle (as benches/tick.rs). */
const MAX_SETTLING = 20;

/** A steady town (the stand-in's GitHub healthy): seeded once, ticked until its reconciler
 * emits nothing, then ticked as it stands; timed ticks that emitted actions are counted. The
 * Worker's clock is the machine's: the whole run of a town takes seconds, within the seeded
 * heartbeats' 90 s and the PR polls' 60 s. */
async function measureSteady(w) {
  const spec = { kind: "steady", beads: w.beads, events: 0, seed: native.seed };
  await session.server.healthyGitHub(true);
  try {
    const seeds = [(await call("POST", `${debug}/bench/seed`, spec)).ms];
    const settling = [];
    for (;;) {
      const tick = await oneTick();
      settling.push({ actions: tick.metrics.actions_by_type, calls: tick.calls });
      if (tick.metrics.actions_emitted === 0) break;
      if (settling.length >= MAX_SETTLING) {
        throw new Error(`the steady town of ${w.beads} beads did not settle in ${MAX_SETTLING} ticks: ${JSON.stringify(settling)}`);
      }
    }
    const ticks = [];
    for (let i = 0; i < warmup + reps; i++) {
      const tick = await oneTick();
      if (i >= warmup) ticks.push(tick);
    }
    const actions = ticks.map((t) => t.metrics.actions_emitted);
    const byType = {};
    for (const t of ticks) {
      for (const [type, count] of Object.entries(t.metrics.actions_by_type)) byType[type] = (byType[type] ?? 0) + count;
    }
    return {
      kind: "steady",
      beads: w.beads,
      settling_ticks: settling.length,
      settling,
      actions: actions.reduce((a, b) => a + b, 0),
      actions_by_type: byType,
      ticks_with_actions: actions.filter((a) => a > 0).length,
      ...(await figures(w, ticks, seeds)),
    };
  } finally {
    await session.server.healthyGitHub(false);
  }
}

const STATEMENTS = 5000;

/** The cost of one statement in workerd: the round trip of STATEMENTS point reads less that of
 * one, over STATEMENTS - 1. */
async function statementFloor() {
  const median = (xs) => stats(xs).median_ms;
  const time = async (count) => {
    const samples = [];
    for (let i = 0; i < warmup + reps; i++) {
      const r = await call("POST", `${debug}/bench/statements`, { count });
      if (r.json.count !== count) throw new Error(`ran ${r.json.count} statements, not ${count}`);
      if (i >= warmup) samples.push(r.ms);
    }
    return median(samples);
  };
  const one = await time(1);
  const many = await time(STATEMENTS);
  return { count: STATEMENTS, one_ms: one, many_ms: many, per_statement_us: ((many - one) / (STATEMENTS - 1)) * 1000 };
}

const result = {
  seed: native.seed, reps, warmup, drain_limit: native.drain_limit, subrequest_budget: budget, workloads: [], steady: [],
};
await benchSession({ root, worker, drainLimit: native.drain_limit, subrequestBudget: budget }, async (s) => {
  session = s;
  const { config, state, vars } = s;
  // Cold start as a developer sees it, then the ticks under workerd alone (tests/bench/serve.mjs).
  const devPort = await freePort();
  s.server = await wranglerDev({ root, config, state: join(state, "dev"), port: devPort, vars });
  result.cold_start_ms = s.server.cold_start_ms;
  result.first_town_request_ms = (await call("PUT", `/api/towns/${TOWN}`, { owner_user_id: "bench" }, API)).ms;
  await stop(s.server.child);
  const port = await freePort();
  s.server = await plainWorkerd({ root, config, state: join(state, "workerd"), port, vars });
  result.workerd_cold_start_ms = s.server.cold_start_ms;
  result.workerd_first_town_request_ms = (await call("PUT", `/api/towns/${TOWN}`, { owner_user_id: "bench" }, API)).ms;
  for (const w of native.workloads) {
    const m = await measure(w);
    result.workloads.push(m);
    console.log(
      `workerd beads ${String(m.beads).padStart(6)} events ${String(m.events).padStart(6)}: ` +
        `tick ${m.tick.median_ms.toFixed(2)} ms (p95 ${m.tick.p95_ms.toFixed(2)}), ` +
        `floor ${m.floor.median_ms.toFixed(2)} ms, ${m.remote_calls_per_tick} calls ` +
        `${m.calls_floor.median_ms.toFixed(2)} ms, baseline ${m.baseline.median_ms.toFixed(2)} ms, ` +
        `seed ${m.seed_ms.toFixed(0)} ms`,
    );
  }
  for (const w of native.steady ?? []) {
    const m = await measureSteady(w);
    result.steady.push(m);
    console.log(
      `workerd steady beads ${String(m.beads).padStart(6)}: settled in ${m.settling_ticks} ticks, ` +
        `tick ${m.tick.median_ms.toFixed(2)} ms (p95 ${m.tick.p95_ms.toFixed(2)}), ` +
        `floor ${m.floor.median_ms.toFixed(2)} ms, ${m.remote_calls_per_tick} calls ` +
        `${m.calls_floor.median_ms.toFixed(2)} ms, ${m.ticks_with_actions} timed ticks with actions, ` +
        `baseline ${m.baseline.median_ms.toFixed(2)} ms`,
    );
  }
  result.statement_floor = await statementFloor();
  console.log(`workerd statement floor: ${result.statement_floor.per_statement_us.toFixed(1)} us per statement`);
  result.workerd_memory = workerdMemory(s.server.child.pid);
});
writeFileSync(outPath, JSON.stringify(result, null, 2));
console.log(`wrote ${outPath}`);

// Latency from `POST /api/towns/{t}/beads` to the container's `POST /agents/start` for that
// bead, in workerd (scripts/bench; figures printed, never asserted), with the alarm as deployed:
// the production intervals (5 s active, 300 s idle) and facts waking the town
// (ALARM_WAKE_ON_FACTS, src/tick/wake.rs). Served by `workerd serve` (tests/bench/serve.mjs) whose
// stand-in Worker notes when each start arrived (Date.now() as its event began; the same
// machine's clock as the Node side's Date.now() taken just before each POST).
// - idle: each bead slung into its own town, created with a rig and left until its first alarm
//   ran, so it is idle with its alarm 300 s away (the original would start the bead at that
//   alarm: up to 300 s);
// - busy: one town with BUSY_WORKING agents at work (alarm on the 5 s interval; the original: up
//   to 5 s), the beads slung one at a time after a pause of 0-2 s (seeded), so at moments
//   unrelated to its ticks; then again each right after the previous one's start arrived, the
//   coalescing's worst case (the tick that made that start began under a second before).
//
// node tests/bench/latency.mjs --worker build/index.js [--samples 50] [--json out.json]
//   [--md BENCHMARKS.md]   (--md: writes its section there, replacing the previous one)
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { API, benchSession, client, freePort, plainWorkerd } from "./serve.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const option = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : process.argv[i + 1];
};
const worker = option("worker");
const samples = Number(option("samples", "50"));
const jsonOut = option("json");
const mdOut = option("md");
const BUSY_WORKING = 20;

/** p50 and p95 (nearest rank) of samples in ms. */
function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const rank = (p) => s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
  return { n: s.length, p50_ms: rank(50), p95_ms: rank(95), max_ms: s[s.length - 1] };
}

const result = {};
await benchSession({ root, worker, drainLimit: 500 }, async (s) => {
  const port = await freePort();
  s.server = await plainWorkerd({
    root, config: s.config, state: join(s.state, "workerd"), port,
    vars: { ...s.vars, ALARM_INTERVAL_ACTIVE_SECS: "5", ALARM_INTERVAL_IDLE_SECS: "300" },
  });
  const call = client(`http://127.0.0.1:${port}`);
  const town = async (id) => {
    await call("PUT", `/api/towns/${id}`, { owner_user_id: "bench" }, API);
    await call("POST", `/api/towns/${id}/rigs`, { rig_id: "r1", name: "r1", git_url: "https://github.com/acme/bench.git", default_branch: "main" }, API);
  };
  /** Slings one bead and waits for its start; the latency in ms. */
  const latency = async (id, title) => {
    const sent = Date.now();
    const { json } = await call("POST", `/api/towns/${id}/beads`, { rig_id: "r1", title }, API);
    const branchEnd = json.bead.bead_id.slice(0, 8);
    for (;;) {
      const start = (await s.server.starts()).find((x) => x.branch?.endsWith(branchEnd));
      if (start) return start.at - sent;
      await new Promise((r) => setTimeout(r, 2));
    }
  };
  /** Towns whose first alarm has run: idle, the next alarm 300 s away. */
  const idleTowns = async (prefix, n) => {
    const ids = Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
    for (const id of ids) await town(id);
    for (const id of ids) {
      for (;;) {
        const { json } = await call("GET", `/debug/towns/${id}/status`);
        const next = Date.parse(json.alarm.next_fire_at);
        if (json.reconciler && json.alarm.interval_label.startsWith("idle") && next - Date.now() > 60_000) break;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    return ids;
  };

  const idle = [];
  for (const id of await idleTowns("idle", samples)) idle.push(await latency(id, "idle"));
  result.idle = stats(idle);
  console.log(`bead -> start, idle town: p50 ${result.idle.p50_ms} ms, p95 ${result.idle.p95_ms} ms, max ${result.idle.max_ms} ms (n ${result.idle.n})`);

  await town("busy");
  for (let i = 0; i < BUSY_WORKING; i++) await latency("busy", `working ${i}`);
  // Beads at moments unrelated to the town's ticks: a pause of 0-2 s (seeded) before each.
  let seed = 20261203;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const spaced = [];
  for (let i = 0; i < samples; i++) {
    await new Promise((r) => setTimeout(r, random() * 2000));
    spaced.push(await latency("busy", `busy ${i}`));
  }
  result.busy = { ...stats(spaced), working_agents: BUSY_WORKING };
  console.log(`bead -> start, busy town (${BUSY_WORKING}+ agents working), beads 0-2 s apart: p50 ${result.busy.p50_ms} ms, p95 ${result.busy.p95_ms} ms, max ${result.busy.max_ms} ms (n ${result.busy.n})`);
  // The coalescing's worst case: each bead right after the previous one's start, so within a
  // second of the tick that made it.
  const chained = [];
  for (let i = 0; i < samples; i++) chained.push(await latency("busy", `chained ${i}`));
  result.busy_chained = stats(chained);
  console.log(`bead -> start, busy town, each bead right after the previous start: p50 ${result.busy_chained.p50_ms} ms, p95 ${result.busy_chained.p95_ms} ms (n ${result.busy_chained.n})`);
});
if (jsonOut) writeFileSync(jsonOut, JSON.stringify(result, null, 2));

/** The section of BENCHMARKS.md, between markers so a later run replaces it. */
function section(r) {
  const row = (what, x, original) => `| ${what} | ${x.n} | ${x.p50_ms} | ${x.p95_ms} | ${x.max_ms} | ${original} |`;
  return `<!-- latency:begin -->
## New work: from \`POST /beads\` to the container's \`POST /agents/start\`

Measured ${new Date().toISOString().slice(0, 10)} by \`tests/bench/latency.mjs\` (\`scripts/bench\`, or
\`scripts/bench --latency\` alone) under \`workerd serve\` with the production alarm (5 s active,
300 s idle) and \`ALARM_WAKE_ON_FACTS\` on: the time from just before the POST to the start's
arrival at the stand-in, both read from the machine's clock, in ms. Idle: each bead into its own
town whose first alarm ran (idle, next alarm 300 s away). Busy: one town with ${r.busy.working_agents} agents
already working, one bead at a time after a pause of 0-2 s (seeded); chained: each right after
the previous one's start. Target p95 <= 1 s; the original starts new work at its next alarm (no
fast path: its issue #1428).

| town | beads | p50 | p95 | max | the original |
|---|---|---|---|---|---|
${row("idle", r.idle, "up to 300,000 (the idle alarm)")}
${row("busy", r.busy, "up to 5,000 (the active alarm)")}
${row("busy, chained", r.busy_chained, "up to 5,000 (the active alarm)")}

The busy figures include the coalescing: a fact within a second of the last tick's start waits
for that second (\`src/tick/wake.rs\`), so one extra tick a second is the most a stream of facts costs;
the chained row is that price paid in full on every bead (about 1 s plus the tick).
<!-- latency:end -->
`;
}
if (mdOut) {
  const old = existsSync(mdOut) ? readFileSync(mdOut, "utf8") : "";
  const marked = /<!-- latency:begin -->[\s\S]*<!-- latency:end -->\n?/;
  writeFileSync(mdOut, marked.test(old) ? old.replace(marked, section(result)) : `${old.trimEnd()}\n\n${section(result)}`);
  console.log(`wrote the latency section of ${mdOut}`);
}

// Where a tick's time goes inside workerd: V8's sampling CPU profiler over ticks of one workload
// (`scripts/bench --profile BEADS/EVENTS`).
//
// Serves the bench build under `workerd serve` with its inspector open (tests/bench/serve.mjs;
// the profiler only samples, so Wasm stays in its optimising tier, unlike under a debugger),
// seeds the town before each tick as tests/bench/workerd.mjs does, and profiles each tick alone
// (started after the seed, stopped when the tick has answered). Prints the tick's round trip and
// the workerd process's CPU per tick, where the samples fell by kind (SQL, outbound HTTP, Wasm
// and glue, idle: the stand-in Worker answering, which runs outside the profiled isolate, or
// waiting on storage), and the functions with the most self
// time. wasm-bindgen's import shims are anonymous in the bundle; they are named here by the
// import they implement (`__wbg_exec...`). Writes the first tick's profile for DevTools.
//
// node tests/bench/profile.mjs --worker target/bench/worker/index.js --beads 1000 --events 1000 \
//   [--steady] [--ticks 5] [--seed 20261129] [--drain-limit 500] [--out target/bench/tick.cpuprofile]
import { readFileSync, writeFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { API, benchSession, client, freePort, plainWorkerd } from "./serve.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const option = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : process.argv[i + 1];
};
const worker = option("worker");
const beads = Number(option("beads", "1000"));
const events = Number(option("events", "1000"));
const ticks = Number(option("ticks", "5"));
const seed = Number(option("seed", "20261129"));
const drainLimit = Number(option("drain-limit", "500"));
/** `--steady`: a steady town of `--beads`, seeded once and ticked until its reconciler emits
 * nothing (as tests/bench/workerd.mjs), then profiled as it stands. */
const steady = process.argv.includes("--steady");
const out = option("out", join(root, "target", "bench", "tick.cpuprofile"));
const WARMUP = 2;
const TOWN = "bench-town";
const debug = `/debug/towns/${TOWN}`;

/** Kinds of time, by the nearest frame on the stack that names one (leaf first). */
const KINDS = [
  ["SQL (exec, rows, transactions)", /DoSql|transactionSync/],
  ["outbound HTTP", /PlatformHttp|ports::Http/],
  ["idle (the stand-in answering, or storage)", /^\(idle\)$/],
  ["garbage collection", /^\(garbage collector\)$/],
];
const OTHER = "Wasm, glue and the rest";

/** A CDP session over the inspector's WebSocket. */
async function inspector(port) {
  const [target] = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  const pending = new Map();
  let id = 0;
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    pending.get(msg.id)?.(msg);
    pending.delete(msg.id);
  };
  return {
    send: (method, params = {}) =>
      new Promise((resolve, reject) => {
        pending.set(++id, (msg) => (msg.error ? reject(new Error(`${method}: ${msg.error.message}`)) : resolve(msg.result)));
        ws.send(JSON.stringify({ id, method, params }));
      }),
    close: () => ws.close(),
  };
}

/** Names an anonymous frame of the bundle by the wasm-bindgen import whose shim it is. */
function shimNamer(bundleSource) {
  const lines = bundleSource.split("\n");
  return (frame) => {
    const text = (lines[frame.lineNumber] ?? "").slice(0, frame.columnNumber);
    const previous = lines[frame.lineNumber - 1] ?? "";
    const key = [...`${previous}\n${text}`.matchAll(/(__wb\w+?)(?:_[0-9a-f]{16})?:/g)].at(-1)?.[1];
    return key ? `${key} (shim)` : `(anonymous ${frame.lineNumber}:${frame.columnNumber})`;
  };
}

/** Self time (µs) by function and by kind, summed over `profiles`. */
function attribute(profiles, nameShim) {
  const byFunction = new Map();
  const byKind = new Map();
  let total = 0;
  for (const p of profiles) {
    const nodes = new Map(p.nodes.map((n) => [n.id, n]));
    const parent = new Map();
    for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const name = (n) => n.callFrame.functionName || (n.callFrame.url.includes("index.js") ? nameShim(n.callFrame) : "(anonymous)");
    p.samples.forEach((sample, i) => {
      const us = p.timeDeltas[i] ?? 0;
      total += us;
      const leaf = nodes.get(sample);
      byFunction.set(name(leaf), (byFunction.get(name(leaf)) ?? 0) + us);
      let kind = null;
      for (let at = sample; at !== undefined && !kind; at = parent.get(at)) {
        const f = nodes.get(at).callFrame.functionName;
        kind = KINDS.find(([, re]) => re.test(f))?.[0] ?? null;
      }
      byKind.set(kind ?? OTHER, (byKind.get(kind ?? OTHER) ?? 0) + us);
    });
  }
  return { byFunction, byKind, total };
}

/** CPU time (ms, user + system) the process `pid` has used. */
function cpuMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

await benchSession({ root, worker, drainLimit }, async (session) => {
  const { config, state, vars } = session;
  const inspectorPort = await freePort();
  const server = await plainWorkerd({ root, config, state, port: await freePort(), vars, inspectorPort });
  session.server = server;
  const call = client(server.base);
  await call("PUT", `/api/towns/${TOWN}`, { owner_user_id: "bench" }, API);
  const cdp = await inspector(inspectorPort);
  await cdp.send("Profiler.enable");
  await cdp.send("Profiler.setSamplingInterval", { interval: 100 });
  const profiles = [];
  const roundTrips = [];
  let cpu = 0;
  if (steady) {
    await server.healthyGitHub(true);
    await call("POST", `${debug}/bench/seed`, { kind: "steady", beads, events: 0, seed });
    for (let settling = 1; (await call("POST", `${debug}/tick`)).json.metrics.actions_emitted > 0; settling++) {
      if (settling >= 20) throw new Error(`the steady town of ${beads} beads did not settle in 20 ticks`);
    }
  }
  for (let i = 0; i < WARMUP + ticks; i++) {
    if (!steady) await call("POST", `${debug}/bench/seed`, { beads, events, seed });
    const measured = i >= WARMUP;
    if (measured) await cdp.send("Profiler.start");
    const before = cpuMs(server.child.pid);
    const tick = await call("POST", `${debug}/tick`);
    if (!measured) continue;
    cpu += cpuMs(server.child.pid) - before;
    roundTrips.push(tick.ms);
    profiles.push((await cdp.send("Profiler.stop")).profile);
  }
  cdp.close();
  writeFileSync(out, JSON.stringify(profiles[0]));

  const { byFunction, byKind, total } = attribute(profiles, shimNamer(readFileSync(join(server.bundle, "index.js"), "utf8")));
  const perTick = (us) => (us / 1000 / ticks).toFixed(2).padStart(9);
  const share = (us) => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
  const median = [...roundTrips].sort((a, b) => a - b)[Math.floor(roundTrips.length / 2)];
  const town = steady ? `a steady town of ${beads} beads` : `${beads} beads, ${events} pending events`;
  console.log(`\nworkerd, ${town}, ${ticks} profiled ticks (after ${WARMUP} warm-up):`);
  console.log(`  tick round trip median ${median.toFixed(1)} ms; workerd process CPU ${(cpu / ticks).toFixed(0)} ms a tick (all its threads, 10 ms resolution)`);
  console.log(`  profiled: ${(total / 1000 / ticks).toFixed(1)} ms a tick (sampling slows the tick down)\n\nby kind (ms a tick):`);
  for (const [kind, us] of [...byKind].sort((a, b) => b[1] - a[1])) console.log(`${perTick(us)} ${share(us)}  ${kind}`);
  console.log("\nself time by function (ms a tick):");
  for (const [f, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 30)) {
    console.log(`${perTick(us)} ${share(us)}  ${f.replace(/\[[0-9a-f]{12,}\]/g, "").slice(0, 150)}`);
  }
  console.log(`\nwrote ${out} (the first profiled tick; open it in Chrome DevTools, Performance panel)`);
});

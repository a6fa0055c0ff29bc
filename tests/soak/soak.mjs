// The load and hostile-input suite (`scripts/soak`): the built Worker under `wrangler dev` on
// loopback, against the stand-in container and GitHub (tools/sim/standins.mjs), with its
// Durable Object state in a fresh directory (`--persist-to`), read back with node:sqlite for
// the checks. Every loop is bounded; it prints figures and exits non-zero when a check fails.
//
// 1. Load: facts posted with 50 in flight; every accepted one recorded and applied exactly once.
// 2. One Idempotency-Key sent 50 times at once: one bead, every answer the same.
// 3. Hostile input on every route: the documented 4xx, never a 5xx, and the town's full dump
//    unchanged.
// 4. The dev server killed (SIGKILL) in the middle of a tick and started again on the same
//    state: no accepted event lost or applied twice, and the town converges.
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { DatabaseSync } from "node:sqlite";
import { startStandins } from "../../tools/sim/standins.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const PORT = Number(process.env.SOAK_PORT ?? 8799);
const BASE = `http://127.0.0.1:${PORT}`;
const FACTS = Number(process.env.SOAK_FACTS ?? 3000);
const IN_FLIGHT = 50;
const SECRETS = {
  GASTOWN_API_TOKEN: "soak-api-token",
  GASTOWN_JWT_SECRET: "soak-jwt-secret",
  GASTOWN_DEBUG_TOKEN: "soak-debug-token",
  GITHUB_TOKEN: "soak-github-token",
};
const API = { authorization: `Bearer ${SECRETS.GASTOWN_API_TOKEN}` };
const DEBUG = { authorization: `Bearer ${SECRETS.GASTOWN_DEBUG_TOKEN}` };

const failures = [];
function check(ok, what) {
  console.log(`  ${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures.push(what);
}

// ---- the Worker under wrangler dev --------------------------------------------------------------

function startWorker(persist, standins) {
  const vars = {
    ...SECRETS,
    ENVIRONMENT: "development",
    CONTAINER_URL: standins.CONTAINER_URL,
    GITHUB_API_URL: standins.GITHUB_API_URL,
    GASTOWN_API_URL: "https://town.soak",
    CONTAINER_START_TIMEOUT_MS: "10000",
    // Ticks are fired by the suite (POST /debug/.../tick), one at a time: the alarm is parked.
    ALARM_INTERVAL_ACTIVE_SECS: "86400",
    ALARM_INTERVAL_IDLE_SECS: "86400",
    LOG_LEVEL: "error",
  };
  const args = ["dev", "--ip", "127.0.0.1", "--port", String(PORT), "--persist-to", persist, "--log-level", "error"];
  for (const [k, v] of Object.entries(vars)) args.push("--var", `${k}:${v}`);
  const child = spawn("wrangler", args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  child.output = () => output;
  return child;
}

/** Kills the dev server and everything it started (workerd), at once. */
function kill(child) {
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {}
}

async function ready(child) {
  for (let i = 0; i < 600; i++) {
    try {
      const res = await fetch(`${BASE}/health`);
      if (res.status === 200) return;
    } catch {}
    if (child.exitCode !== null) break;
    await sleep(100);
  }
  throw new Error(`wrangler dev did not come up:\n${child.output()}`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function send(method, path, { headers = {}, body } = {}) {
  const init = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = body;
    init.headers["content-type"] ??= "application/json";
  }
  const res = await fetch(`${BASE}${path}`, init);
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, text, json };
}

const json = (method, path, value, headers = API) => send(method, path, { headers, body: JSON.stringify(value) });

async function tick(town) {
  const res = await send("POST", `/debug/towns/${town}/tick`, { headers: DEBUG });
  if (res.status !== 200) throw new Error(`tick ${town}: ${res.status} ${res.text}`);
  return res.json;
}

/** Ticks until nothing is pending (at most `n` ticks); returns how many it took. */
async function drainAll(town, n = 40) {
  for (let i = 1; i <= n; i++) {
    const t = await tick(town);
    if (t.metrics.pending_event_count === 0) return i;
  }
  throw new Error(`${town}: events still pending after ${n} ticks`);
}

/** Runs `jobs` (functions returning promises) with at most `limit` in flight. */
async function pool(jobs, limit) {
  const results = new Array(jobs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < jobs.length) {
        const i = next++;
        results[i] = await jobs[i]();
      }
    }),
  );
  return results;
}

// ---- the towns' SQLite, read back -------------------------------------------------------------

function sqliteFiles(persist) {
  const out = [];
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith(".sqlite")) out.push(p);
    }
  };
  walk(join(persist, "v3", "do"));
  return out;
}

/** The file of `town`'s Durable Object (the one whose `town` row names it). */
function townFile(persist, town) {
  for (const file of sqliteFiles(persist)) {
    const db = new DatabaseSync(file, { readOnly: true });
    try {
      const row = db.prepare("SELECT town_id FROM town").get();
      if (row?.town_id === town) return file;
    } catch {
    } finally {
      db.close();
    }
  }
  throw new Error(`no SQLite file holds town ${town}`);
}

function query(file, sql, ...args) {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return db.prepare(sql).all(...args);
  } finally {
    db.close();
  }
}

/** Every table of the town, row by row. */
function dump(file) {
  const tables = query(file, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' ORDER BY name");
  return JSON.stringify(Object.fromEntries(tables.map(({ name }) => [name, query(file, `SELECT * FROM "${name}" ORDER BY rowid`)])));
}

// ---- the town ---------------------------------------------------------------------------------

async function newTown(town) {
  const put = await json("PUT", `/api/towns/${town}`, { owner_user_id: "soak" });
  if (put.status !== 201) throw new Error(`create ${town}: ${put.status} ${put.text}`);
  const rig = await json("POST", `/api/towns/${town}/rigs`, { rig_id: "web", name: "web", git_url: "https://github.com/acme/web.git" });
  if (rig.status !== 201) throw new Error(`rig: ${rig.status} ${rig.text}`);
}

// ---- 1. load ----------------------------------------------------------------------------------

async function load(persist) {
  console.log(`\n1. ${FACTS} facts (POST /beads), ${IN_FLIGHT} in flight`);
  const town = "soak-load";
  await newTown(town);
  const started = performance.now();
  const answers = await pool(
    Array.from({ length: FACTS }, (_, i) => () => json("POST", `/api/towns/${town}/beads`, { rig_id: "web", title: `load ${i}` })),
    IN_FLIGHT,
  );
  const seconds = (performance.now() - started) / 1000;
  const accepted = answers.filter((a) => a.status === 201).length;
  const statuses = {};
  for (const a of answers) statuses[a.status] = (statuses[a.status] ?? 0) + 1;
  console.log(`  ${accepted} accepted of ${FACTS} in ${seconds.toFixed(1)} s: ${(FACTS / seconds).toFixed(0)} requests/s (answers ${JSON.stringify(statuses)})`);
  const drainStart = performance.now();
  const ticks = await drainAll(town);
  console.log(`  drained in ${ticks} ticks (${((performance.now() - drainStart) / 1000).toFixed(1)} s)`);
  const file = townFile(persist, town);
  const [beads] = query(file, "SELECT COUNT(*) AS n, COUNT(DISTINCT title) AS titles FROM beads WHERE type = 'issue'");
  const [events] = query(
    file,
    "SELECT COUNT(*) AS n, SUM(processed_at IS NOT NULL) AS processed, SUM(retry_count) AS retries, SUM(poisoned) AS poisoned FROM town_events WHERE event_type = 'bead_created'",
  );
  check(accepted === FACTS, `every fact accepted (${accepted})`);
  check(beads.n === accepted && beads.titles === accepted, `one bead per accepted fact (${beads.n} beads, ${beads.titles} titles)`);
  check(events.n === accepted && events.processed === accepted, `one event per accepted fact, each applied (${events.n} recorded, ${events.processed} applied)`);
  check(events.retries === 0 && events.poisoned === 0, `applied exactly once: no retry, none poisoned (${events.retries}, ${events.poisoned})`);
  return { accepted, rps: FACTS / seconds };
}

// ---- 2. one Idempotency-Key, 50 times at once --------------------------------------------------

async function idempotency(persist) {
  console.log(`\n2. one Idempotency-Key sent ${IN_FLIGHT} times at once`);
  const town = "soak-idem";
  await newTown(town);
  const body = JSON.stringify({ rig_id: "web", title: "exactly once" });
  const answers = await Promise.all(
    Array.from({ length: IN_FLIGHT }, () => send("POST", `/api/towns/${town}/beads`, { headers: { ...API, "idempotency-key": "soak-key-1" }, body })),
  );
  const statuses = {};
  for (const a of answers) statuses[a.status] = (statuses[a.status] ?? 0) + 1;
  const bodies = new Set(answers.filter((a) => a.status === 201).map((a) => a.text));
  const file = townFile(persist, town);
  const [beads] = query(file, "SELECT COUNT(*) AS n FROM beads WHERE title = 'exactly once'");
  const [keys] = query(file, "SELECT COUNT(*) AS n FROM idempotency_keys");
  console.log(`  answers ${JSON.stringify(statuses)}, ${bodies.size} distinct 201 bodies, ${beads.n} bead(s), ${keys.n} key record(s)`);
  check(beads.n === 1 && keys.n === 1, "one record for the key");
  check(answers.every((a) => a.status === 201) && bodies.size === 1, "every answer is the one 201");
  return { statuses, beads: beads.n };
}

// ---- 3. hostile input -------------------------------------------------------------------------

async function hostile(persist, standins) {
  console.log("\n3. hostile input on every route");
  const town = "soak-hostile";
  await newTown(town);
  const made = await json("POST", `/api/towns/${town}/beads`, { rig_id: "web", title: "a bead" });
  const bead = made.json.bead.bead_id;
  await tick(town);
  const tokenRes = await send("POST", `/api/towns/${town}/refresh-container-token`, { headers: API });
  const container = { authorization: `Bearer ${tokenRes.json.data.token}` };
  const agent = (await send("GET", `/api/towns/${town}/agents`, { headers: API })).json.agents[0]?.agent_id ?? "agent-1";
  await tick(town);
  const file = townFile(persist, town);
  const before = dump(file);

  const t = `/api/towns/${town}`;
  const a = `${t}/rigs/web/agents/${agent}`;
  const d = `/debug/towns/${town}`;
  // [method, path, headers]: every route that takes a body, by credential.
  const bodied = [
    ["PUT", t, API],
    ["PATCH", `${t}/config`, API],
    ["POST", `${t}/rigs`, API],
    ["POST", `${t}/beads`, API],
    ["PATCH", `${t}/beads/${bead}`, API],
    ["POST", `${t}/convoys`, API],
    ...["done", "completed", "request-changes", "nudge-delivered", "status", "checkpoint", "eviction-context"].map((x) => ["POST", `${a}/${x}`, container]),
    ["POST", `${t}/rigs/web/triage/resolve`, container],
    ["POST", `${t}/rigs/web/nudge`, container],
    ["POST", `${t}/rigs/web/mail`, container],
    ["POST", `${t}/rigs/web/escalations`, container],
    ["POST", `${t}/rigs/web/beads/${bead}/close`, container],
    ["POST", `${t}/rigs/web/agent-events`, container],
    ["POST", `${t}/container-ready`, container],
    ["POST", `${d}/replay-events`, DEBUG],
  ];
  // Routes that take no body.
  const bodiless = [
    ["POST", `${t}/container-eviction`, container],
    ["POST", `${d}/tick`, DEBUG],
    ["POST", `${d}/reconcile-dry-run`, DEBUG],
  ];
  const deep = "[".repeat(100_000) + "]".repeat(100_000);
  const payloads = {
    malformed: "{\"title\": ",
    "wrong types": JSON.stringify({ rig_id: 7, title: ["x"], owner_user_id: false, status: 3, agent_id: {}, branch: 9, message: 4, nudge_id: [], event_type: 1, advance_ms: "soon", from: 1 }),
    "not an object": "[1, 2, 3]",
    "deeply nested": deep.slice(0, 200_000),
    "NUL bytes": "{\"title\": \"a\u0000b\", \"rig_id\": \"web\u0000\"}\u0000",
    huge: JSON.stringify({ title: "x".repeat(300 * 1024), rig_id: "web" }),
  };
  const results = [];
  const record = (what, res) => results.push({ what, status: res.status, shaped: !!(res.json?.error || res.json?.success === false) });
  for (const [method, path, headers] of bodied) {
    for (const [name, body] of Object.entries(payloads)) {
      // Bodies that parse but mean nothing may be valid for a tolerant container route; the
      // point there is no 5xx and, with the dump, nothing changed by the invalid ones.
      record(`${method} ${path} ${name}`, await send(method, path, { headers, body }));
    }
    record(`${method} ${path} not json`, await send(method, path, { headers: { ...headers, "content-type": "text/plain" }, body: "hello" }));
  }
  for (const [method, path, headers] of bodiless) {
    for (const body of ["this is not json", "{{{{", "{\"a\":1}"]) record(`${method} ${path} body ${body}`, await send(method, path, { headers, body }));
  }
  const badIds = ["x".repeat(129), "a b", "%00", "a%00b", "%2F", "<script>", "a;rm", "ü"];
  for (const id of badIds) {
    for (const path of [`/api/towns/${id}`, `${t}/beads/${id}`, `${t}/rigs/${id}/agents/${agent}/heartbeat`, `${t}/rigs/web/agents/${id}/heartbeat`, `/debug/towns/${id}/status`]) {
      const headers = path.includes("/agents/") ? container : path.startsWith("/debug") ? DEBUG : API;
      record(`bad id ${path}`, await send(path.endsWith("heartbeat") ? "POST" : "GET", path, { headers, body: path.endsWith("heartbeat") ? "{}" : undefined }));
    }
  }
  for (const method of ["DELETE", "PUT", "PATCH", "OPTIONS"]) {
    for (const path of [`${t}/beads`, `${t}/agents`, `${a}/heartbeat`, `${d}/status`, "/health"]) {
      const headers = path.includes("/agents/") && path !== `${t}/agents` ? container : path.startsWith("/debug") ? DEBUG : API;
      record(`${method} ${path}`, await send(method, path, { headers, body: method === "OPTIONS" ? undefined : "{}" }));
    }
  }
  for (const [name, headers] of [["no token", {}], ["wrong token", { authorization: "Bearer nope" }], ["debug token on api", DEBUG]]) {
    record(`${name} GET beads`, await send("GET", `${t}/beads`, { headers }));
    record(`${name} POST heartbeat`, await send("POST", `${a}/heartbeat`, { headers, body: "{}" }));
  }

  const after = dump(file);
  // The heartbeat and `waiting` are facts by their arrival: the original reads their body as
  // optional (UPSTREAM-WIRE.md), so any body, even garbage, is the call without one. They are
  // probed after the dump was taken: 200, never a 5xx.
  for (const x of ["heartbeat", "waiting"]) {
    for (const [name, body] of Object.entries(payloads)) {
      const res = await send("POST", `${a}/${x}`, { headers: container, body });
      results.push({ what: `POST ${a}/${x} ${name}`, status: res.status, shaped: true, tolerant: res.status === 200 || res.status === 413 });
    }
  }
  const fives = results.filter((r) => r.status >= 500);
  const twos = results.filter((r) => r.status < 400 && !r.tolerant);
  const unshaped = results.filter((r) => r.status >= 400 && !r.shaped && r.status !== 405);
  const byStatus = {};
  for (const r of results) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
  console.log(`  ${results.length} probes: ${JSON.stringify(byStatus)}`);
  for (const r of twos) console.log(`    accepted: ${r.what.slice(0, 140)} -> ${r.status}`);
  check(fives.length === 0, `no 5xx (${fives.map((r) => r.what.slice(0, 80)).join("; ") || "none"})`);
  check(unshaped.length === 0, `every error in the documented JSON shape (${unshaped.map((r) => `${r.what.slice(0, 60)} ${r.status}`).join("; ") || "all"})`);
  check(after === before, `the town's full dump is unchanged (${before.length} bytes)`);
  return { probes: results.length, byStatus, accepted: twos.length };
}

// ---- 4. the dev server killed mid-tick ---------------------------------------------------------

async function killMidTick(persist, standins, worker) {
  console.log("\n4. the dev server killed (SIGKILL) mid-tick, started again on the same state");
  const town = "soak-kill";
  await newTown(town);
  const beads = [];
  for (let i = 0; i < 6; i++) beads.push((await json("POST", `/api/towns/${town}/beads`, { rig_id: "web", title: `kill ${i}` })).json.bead.bead_id);
  // Every start of this town hangs: the tick is inside its side effects when the kill lands.
  await fetch(`${standins.CONTAINER_URL}/__control/fail`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ path_prefix: "/agents/start", mode: "timeout", times: 6, json: { townId: town } }),
  });
  const inFlight = send("POST", `/debug/towns/${town}/tick`, { headers: DEBUG }).catch((e) => ({ status: 0, text: String(e) }));
  let started = 0;
  for (let i = 0; i < 100 && started === 0; i++) {
    await sleep(100);
    const reqs = await (await fetch(`${standins.CONTAINER_URL}/__control/requests?path_prefix=/agents/start`)).json();
    started = reqs.filter((r) => r.json?.townId === town).length;
  }
  kill(worker);
  const cut = await inFlight;
  console.log(`  killed with ${started} start(s) in flight; the tick's request ended with ${cut.status}`);
  const file = townFile(persist, town);
  const accepted = query(file, "SELECT event_id FROM town_events WHERE event_type = 'bead_created'").map((r) => r.event_id);

  const again = startWorker(persist, standins);
  await ready(again);
  // The lost starts are recovered by the town's own rules: B3 re-opens an in-progress bead
  // untouched for 5 minutes whose agent is not working (the dev clock is moved, not waited).
  await drainAll(town);
  await send("POST", `/debug/towns/${town}/clock`, { headers: DEBUG, body: JSON.stringify({ advance_ms: 301_000 }) });
  let ticks = 0;
  for (; ticks < 20; ticks++) {
    await tick(town);
    const open = query(file, `SELECT COUNT(*) AS n FROM beads WHERE bead_id IN (${beads.map(() => "?").join(",")}) AND status <> 'in_progress'`, ...beads)[0].n;
    const reqs = await (await fetch(`${standins.CONTAINER_URL}/__control/requests?path_prefix=/agents/start`)).json();
    const answered = reqs.filter((r) => r.json?.townId === town).length - started;
    if (open === 0 && answered >= beads.length) break;
    await send("POST", `/debug/towns/${town}/clock`, { headers: DEBUG, body: JSON.stringify({ advance_ms: 30_000 }) });
  }
  const events = query(file, "SELECT event_id, processed_at, retry_count, poisoned FROM town_events WHERE event_type = 'bead_created'");
  const statuses = query(file, `SELECT status, COUNT(*) AS n FROM beads WHERE bead_id IN (${beads.map(() => "?").join(",")}) GROUP BY status`, ...beads);
  console.log(`  after the restart: ${ticks + 1} ticks to converge; beads ${JSON.stringify(statuses)}`);
  check(accepted.length === beads.length && events.length === beads.length, `every accepted fact kept (${events.length} of ${beads.length})`);
  check(events.every((e) => e.processed_at !== null && e.retry_count === 0 && e.poisoned === 0), "each applied exactly once");
  check(statuses.length === 1 && statuses[0].status === "in_progress", "every bead started again and in progress");
  return { again, started, ticks: ticks + 1 };
}

// ---- main -------------------------------------------------------------------------------------

const persist = mkdtempSync(join(tmpdir(), "gastown-soak-"));
const standins = await startStandins({ jwtSecret: SECRETS.GASTOWN_JWT_SECRET });
let worker = startWorker(persist, standins);
try {
  await ready(worker);
  const l = await load(persist);
  const i = await idempotency(persist);
  const h = await hostile(persist, standins);
  const k = await killMidTick(persist, standins, worker);
  worker = k.again;
  console.log(
    `\nsoak: ${l.accepted} facts at ${l.rps.toFixed(0)} requests/s, applied once; one key x${IN_FLIGHT} -> ${i.beads} record; ` +
      `${h.probes} hostile probes ${JSON.stringify(h.byStatus)}; killed mid-tick with ${k.started} starts in flight, converged in ${k.ticks} ticks`,
  );
} finally {
  kill(worker);
  await standins.close();
  rmSync(persist, { recursive: true, force: true });
}
if (failures.length) {
  console.log(`\nsoak: ${failures.length} check(s) failed:\n  ${failures.join("\n  ")}`);
  process.exit(1);
}
console.log("\nsoak: every check passed");

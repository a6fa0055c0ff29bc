// Serving the Worker for the benchmarks, two ways (tests/bench/workerd.mjs).
//
// `wranglerDev` is how a developer starts it: its cold start is reported. `wrangler dev` attaches
// the DevTools inspector to its workerd, and with a debugger attached V8 runs Wasm in its
// debugging tier and instruments every call into the runtime: measured here, one SQL statement
// from a plain JavaScript Durable Object costs ~50-75 us under `wrangler dev` and ~4-8 us under
// `workerd serve`. So the ticks are timed under `plainWorkerd`: the bundle `wrangler deploy
// --dry-run` would upload, run by the same workerd binary with no inspector and no dev proxy, the
// bindings of wrangler.toml written as a workerd config. Its outbound fetches go to a stand-in
// Worker in the same process (`standinWorker`): through loopback to the Node stand-in, each
// call also paid a socket, Node's HTTP parsing and a scheduling hop on a 2-core machine (~3.5 of
// ~12 ms at 100 beads, ~55 of ~460 ms at 10,000 beads; 2026-11-29). Analytics Engine is bound
// to a JavaScript object whose `writeDataPoint` drops the point: workerd's own local binding
// turns every point into a subrequest to a service (~7 ms of a ~21 ms tick at 100 beads, which
// writes dozens of points), where the platform's call returns at once and sends the points later.
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer } from "node:net";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A port nothing listens on now. */
export function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export const API = "bench-api-token";
export const DEBUG = "bench-debug-token";

/** The stand-in for the container and GitHub that `wrangler dev` reaches (its cold start is all
 * that is measured there): every request answered at once with 200 `{"status":"running"}`, as
 * the native harness's fake does. `calls()` counts the requests. */
async function standin() {
  let calls = 0;
  const server = createHttpServer((req, res) => {
    calls++;
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json" }).end('{"status":"running"}');
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    calls: () => calls,
    close() {
      server.close();
      server.closeAllConnections();
    },
  };
}

/** A throwaway state directory holding wrangler.toml with `main` at `worker` (the bench build)
 * and without the production build command, and the vars that point the Worker at `remote`, open
 * the development routes, drain `drainLimit` events a tick, give a tick `subrequestBudget` remote
 * calls when given (else the Worker's default), and put the alarm a day away (it would tick the
 * town between seeding and the timed tick). */
function benchSetup({ root, worker, remote, drainLimit, subrequestBudget }) {
  const state = mkdtempSync(join(tmpdir(), "gastown-bench-"));
  const config = join(state, "wrangler.toml");
  const production = readFileSync(join(root, "wrangler.toml"), "utf8");
  writeFileSync(
    config,
    production.replace(/^main = .*$/m, `main = ${JSON.stringify(worker)}`).replace(/^\[build\][^[]*/m, ""),
  );
  const vars = {
    ENVIRONMENT: "development",
    GASTOWN_API_TOKEN: API,
    GASTOWN_DEBUG_TOKEN: DEBUG,
    GASTOWN_JWT_SECRET: "bench-jwt-secret",
    ALARM_INTERVAL_ACTIVE_SECS: "86400",
    ALARM_INTERVAL_IDLE_SECS: "86400",
    TICK_DRAIN_LIMIT: String(drainLimit),
    CONTAINER_URL: remote,
    GITHUB_API_URL: remote,
    GITHUB_TOKEN: "bench",
    ...(subrequestBudget === undefined ? {} : { TICK_SUBREQUEST_BUDGET: String(subrequestBudget) }),
  };
  return { state, config, vars };
}

/** Runs `main(session)` with a stand-in (`session.remote`) and a bench setup (`state`, `config`,
 * `vars`; see `benchSetup`); `main` keeps the server it starts in `session.server`. Afterwards,
 * whatever happened, stops that server, closes the stand-in and removes the state; a failure is
 * printed with the server's last output and exits 1. */
export async function benchSession({ root, worker, drainLimit, subrequestBudget }, main) {
  const remote = await standin();
  const setup = benchSetup({ root, worker, remote: remote.url, drainLimit, subrequestBudget });
  const session = { remote, ...setup, server: null };
  let failure = null;
  try {
    await main(session);
  } catch (e) {
    failure = e;
  } finally {
    if (session.server?.child) await stop(session.server.child);
    remote.close();
    rmSync(session.state, { recursive: true, force: true });
  }
  if (failure) {
    console.error(`${failure.stack}\n--- server output (tail) ---\n${(session.server?.log ?? "").slice(-3000)}`);
    process.exit(1);
  }
}

/** Requests to a served Worker: `call(method, path, body, token)` answers the round trip in ms
 * (until the whole body is read) and the JSON answer; a status of 300 or more throws. */
export function client(base) {
  return async function call(method, path, body, token = DEBUG) {
    const init = { method, headers: { authorization: `Bearer ${token}` } };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["content-type"] = "application/json";
    }
    const start = performance.now();
    const res = await fetch(`${base}${path}`, init);
    const text = await res.text();
    const ms = performance.now() - start;
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 500)}`);
    return { ms, json: text ? JSON.parse(text) : null };
  };
}

/** Ends a server and waits for it to exit. */
export function stop(child) {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", resolve);
    child.kill("SIGTERM");
  });
}

// The path of the workerd binary that wrangler runs (the package's default export).
const workerdBinary = createRequire(import.meta.url)("workerd").default;

/** A spawned server: the process, its base URL, its output so far, and the ms from spawn to its
 * first answered `GET /health`. */
async function started(child, base, spawnedAt, timeoutMs) {
  const server = { child, base, log: "" };
  child.stdout.on("data", (d) => (server.log += d));
  child.stderr.on("data", (d) => (server.log += d));
  while (performance.now() - spawnedAt < timeoutMs) {
    if (child.exitCode !== null) break;
    try {
      const res = await fetch(`${base}/health`);
      if (res.ok) {
        server.cold_start_ms = performance.now() - spawnedAt;
        return server;
      }
    } catch {}
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill("SIGTERM");
  throw new Error(`/health did not answer within ${timeoutMs} ms\n--- output (tail) ---\n${server.log.slice(-3000)}`);
}

/** `wrangler dev` on `config` (the project's wrangler.toml when not given) with `vars`, state
 * under `state` (tests/browser/status-page.mjs serves the Worker this way too). */
export function wranglerDev({ root, config, state, port, vars }) {
  const spawnedAt = performance.now();
  const child = spawn(
    join(root, "node_modules", ".bin", "wrangler"),
    ["dev", ...(config ? ["--config", config] : []), "--ip", "127.0.0.1", "--port", String(port),
     "--persist-to", state,
     ...Object.entries(vars).flatMap(([k, v]) => ["--var", `${k}:${v}`])],
    { cwd: root, stdio: ["ignore", "pipe", "pipe"], env: process.env },
  );
  return started(child, `http://127.0.0.1:${port}`, spawnedAt, 180_000);
}

const text = (s) => JSON.stringify(String(s));

/** The stand-in inside `workerd serve`: a Worker in the same process that the town's every
 * outbound fetch reaches (its `globalOutbound`), whatever the URL, with no socket in between. It
 * answers as `standin` does, counts the requests and notes when each `POST /agents/start` arrived
 * (`Date.now()` as its event began) and its branch; a request on its own socket (which marks it
 * with the `x-bench-standin` header) reads the count instead, or at `/starts` those starts, or at
 * `POST /healthy` (body `on` or `off`) switches GitHub's healthy answers: with them, a read of a
 * pull request (`GET /repos/{o}/{r}/pulls/{n}`) is answered with an open PR, as GitHub does for
 * the PRs a steady town keeps under review (benches/tick.rs's stand-in does the same). */
const standinWorker = `let calls = 0;
let healthy = false;
const starts = [];
const PULL = /^\\/repos\\/[^/]+\\/[^/]+\\/pulls\\/\\d+$/;
export default {
  async fetch(request, env, ctx) {
    const path = new URL(request.url).pathname;
    if (request.headers.get("x-bench-standin") === "calls") {
      if (path === "/starts") return Response.json(starts);
      if (path === "/healthy") {
        healthy = (await request.text()) === "on";
        return Response.json({ healthy });
      }
      return Response.json({ calls });
    }
    const at = Date.now();
    calls++;
    const body = await request.text();
    if (request.method === "POST" && path === "/agents/start") {
      starts.push({ at, branch: JSON.parse(body).branch });
    }
    const answer = healthy && request.method === "GET" && PULL.test(path)
      ? '{"state":"open","merged":false}'
      : '{"status":"running"}';
    return new Response(answer, { headers: { "content-type": "application/json" } });
  },
};`;

/** The workerd config serving `bundle` (index.js and its Wasm) with wrangler.toml's bindings; its
 * outbound fetches go to `standinWorker`, whose socket listens on `standinPort`. */
function workerdConfig({ bundle, wasm, compatibilityDate, port, standinPort, storage, vars }) {
  const bindings = [
    `(name = "TOWN", durableObjectNamespace = "Town")`,
    `(name = "GASTOWN_AE", wrapped = (moduleName = "bench:analytics-engine"))`,
    ...Object.entries(vars).map(([k, v]) => `(name = ${text(k)}, text = ${text(v)})`),
  ];
  const analyticsEngine = `export default function () { return { writeDataPoint() {} }; }`;
  return `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .town),
    (name = "standin", worker = (
      modules = [(name = "standin.js", esModule = ${text(standinWorker)})],
      compatibilityDate = ${text(compatibilityDate)},
    )),
    (name = "storage", disk = (path = ${text(storage)}, writable = true)),
  ],
  sockets = [
    (name = "http", address = ${text(`127.0.0.1:${port}`)}, http = (), service = "main"),
    (name = "standin", address = ${text(`127.0.0.1:${standinPort}`)}, service = "standin",
     http = (injectRequestHeaders = [(name = "x-bench-standin", value = "calls")])),
  ],
  extensions = [(modules = [(name = "bench:analytics-engine", esModule = ${text(analyticsEngine)}, internal = true)])],
);
const town :Workerd.Worker = (
  modules = [
    (name = "index.js", esModule = embed ${text(`${bundle}/index.js`)}),
    (name = ${text(wasm)}, wasm = embed ${text(`${bundle}/${wasm}`)}),
  ],
  compatibilityDate = ${text(compatibilityDate)},
  durableObjectNamespaces = [(className = "Town", uniqueKey = "gastown-bench-town", enableSql = true)],
  durableObjectStorage = (localDisk = "storage"),
  globalOutbound = "standin",
  bindings = [
    ${bindings.join(",\n    ")},
  ],
);
`;
}

/** `workerd serve` of the bundle `wrangler deploy --dry-run` makes from `config` (its directory is
 * `bundle` of the answer), with `vars`, state under `state`, its outbound fetches answered by
 * `standinWorker` (`remoteCalls()` of the answer counts them, `starts()` lists the agent starts,
 * `healthyGitHub(on)` switches its healthy answers to PR reads);
 * with `inspectorPort`, its
 * inspector listens there (for the CPU profiler: sampling leaves Wasm in its optimising tier,
 * unlike a debugger). */
export async function plainWorkerd({ root, config, state, port, vars, inspectorPort }) {
  const bundle = join(state, "bundle");
  execFileSync(join(root, "node_modules", ".bin", "wrangler"),
    ["deploy", "--dry-run", "--config", config, "--outdir", bundle], { cwd: root, stdio: "pipe" });
  const wasm = readdirSync(bundle).find((f) => f.endsWith(".wasm"));
  if (!wasm) throw new Error(`no .wasm in the bundle at ${bundle}`);
  const toml = readFileSync(config, "utf8");
  const compatibilityDate = toml.match(/^compatibility_date = "(.+)"$/m)?.[1];
  if (!compatibilityDate) throw new Error(`no compatibility_date in ${config}`);
  // wrangler.toml's [vars] (one `NAME = "value"` a line), under the ones given.
  const section = toml.match(/^\[vars\]\n([^[]*)/m)?.[1] ?? "";
  const configured = Object.fromEntries([...section.matchAll(/^(\w+) = "(.*)"$/gm)].map((m) => [m[1], m[2]]));
  vars = { ...configured, ...vars };
  const storage = join(state, "workerd-storage");
  mkdirSync(storage, { recursive: true });
  const capnp = join(state, "workerd.capnp");
  // embed paths are relative to the config file.
  const standinPort = await freePort();
  writeFileSync(capnp, workerdConfig({ bundle: "bundle", wasm, compatibilityDate, port, standinPort, storage, vars }));
  const spawnedAt = performance.now();
  const inspector = inspectorPort ? [`--inspector-addr=127.0.0.1:${inspectorPort}`] : [];
  const child = spawn(workerdBinary, ["serve", capnp, "--experimental", ...inspector], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const remoteCalls = async () => (await (await fetch(`http://127.0.0.1:${standinPort}/`)).json()).calls;
  const starts = async () => (await fetch(`http://127.0.0.1:${standinPort}/starts`)).json();
  const healthyGitHub = async (on) => {
    const res = await fetch(`http://127.0.0.1:${standinPort}/healthy`, { method: "POST", body: on ? "on" : "off" });
    if ((await res.json()).healthy !== on) throw new Error(`the stand-in did not switch its healthy answers ${on ? "on" : "off"}`);
  };
  const server = await started(child, `http://127.0.0.1:${port}`, spawnedAt, 60_000);
  return { bundle, remoteCalls, starts, healthyGitHub, ...server };
}

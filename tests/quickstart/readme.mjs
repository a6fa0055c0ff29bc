// The README's quick start, run as written: starts `scripts/dev` (the one command the README
// shows, with its simulated container and PR host) on free ports with throwaway state, runs
// every other command of the README's "Quick start" section in bash, in order, and checks what
// they did: every bead closed, the convoy landed, the pull requests merged by the Town on the
// PR host, no start the container had to refuse. Meanwhile, in a second town on the same server,
// the repair paths: agents told to stall or to crash (their beads are dispatched again and
// close) and one told to fail (its bead fails).
//
// What differs from a person following the README, and why: the port (a free one instead of
// 8787, substituted in the commands), the state (a temporary directory, PERSIST_TO), and time:
// the Worker ticks every second (ALARM_INTERVAL_ACTIVE_SECS=1), the simulated agents work and
// beat faster (SIM_ARGS), and every 2 s the town's clock is moved on 20 s through the dev-only
// POST /debug/towns/demo/clock and the town ticks (POST /debug/towns/demo/tick), so the Town's
// once-a-minute pull request polls come round in seconds, and work slung to an idle town (its
// alarm 5 minutes away) starts at once. The commands themselves are the README's. Ends with "quickstart: N passed, M failed";
// a failure prints what was wrong and the tail of the dev server's output.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const API = "authorization: Bearer dev-api-token".split(": ");
const DEBUG = "authorization: Bearer dev-debug-token".split(": ");
const SCRIPT_TIMEOUT_MS = 150_000;
const results = [];
let log = "";

const began = Date.now();
function check(name, ok, detail = "") {
  results.push({ name, ok });
  console.log(`${ok ? "ok  " : "FAIL"} [${((Date.now() - began) / 1000).toFixed(0)} s] ${name}${ok || !detail ? "" : `: ${detail}`}`);
  return ok;
}

function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The quick start's shell blocks: the first must be `scripts/dev` alone (this test runs it). */
function quickStart() {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const section = /\n## Quick start\n([\s\S]*?)(?=\n## )/.exec(readme);
  if (!section) throw new Error('README.md has no "## Quick start" section');
  const blocks = [...section[1].matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]);
  if (blocks.length < 2) throw new Error("the quick start has fewer than two sh blocks");
  if (blocks[0].trim() !== "scripts/dev") throw new Error(`the quick start's first block is not "scripts/dev": ${blocks[0]}`);
  return blocks.slice(1);
}

async function call(base, method, path, header, body) {
  const headers = { [header[0]]: header[1] };
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, json, text };
}

/** Runs `script` in bash (errexit, pipefail); resolves with its output and exit code. */
function bash(script, env, timeoutMs) {
  return new Promise((resolve) => {
    const child = spawn("bash", ["-c", `set -euo pipefail\n${script}`], { cwd: root, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c) => {
      out += c;
      process.stdout.write(`  | ${String(c).replace(/\n(?=.)/g, "\n  | ")}`);
    });
    child.stderr.on("data", (c) => (out += c));
    const timer = setTimeout(() => {
      out += `\n(killed after ${timeoutMs / 1000} s)`;
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {}
    }, timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

// The README's commands carry the tokens of .dev.vars.example; scripts/dev copies it to .dev.vars
// when absent, and a .dev.vars of other tokens would fail every command with 401.
const devVars = (() => {
  try {
    return readFileSync(join(root, ".dev.vars"), "utf8");
  } catch {
    return null;
  }
})();
if (devVars !== null && !(/^GASTOWN_API_TOKEN=dev-api-token$/m.test(devVars) && /^GASTOWN_DEBUG_TOKEN=dev-debug-token$/m.test(devVars))) {
  console.log("FAIL .dev.vars has other tokens than .dev.vars.example, which the README's commands use\nquickstart: 0 passed, 1 failed");
  process.exit(1);
}

const port = await freePort();
const inspector = await freePort();
const base = `http://127.0.0.1:${port}`;
const state = mkdtempSync(join(tmpdir(), "gastown-quickstart-"));
const env = { ...process.env, PORT: String(port), PERSIST_TO: state, SIM_ARGS: "--heartbeat-ms 1000 --work-ms 1000 --review-ms 1000 --ci-ms 500" };
delete env.CONTAINER_URL;
const dev = spawn(join(root, "scripts", "dev"), ["--inspector-port", String(inspector), "--var", "ALARM_INTERVAL_ACTIVE_SECS:1"], {
  cwd: root,
  env,
  detached: true,
  stdio: ["ignore", "pipe", "pipe"],
});
dev.stdout.on("data", (c) => (log += c));
dev.stderr.on("data", (c) => (log += c));
let devExited = null;
dev.on("exit", (code) => (devExited = code));

let hurry = null;
try {
  const started = Date.now();
  for (;;) {
    if (devExited !== null) throw new Error(`scripts/dev exited (${devExited}) before answering /health`);
    if (Date.now() - started > 120_000) throw new Error("scripts/dev did not answer /health within 120 s");
    const ok = await fetch(`${base}/health`).then((r) => r.ok, () => false);
    if (ok) break;
    await sleep(500);
  }
  console.log(`scripts/dev answered /health after ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const sims = /sim: container control server (\S+), PR host (\S+)/.exec(log);
  check("scripts/dev started the simulated container and PR host", Boolean(sims), "no 'sim:' line in its output");
  const [, containerUrl, githubUrl] = sims ?? [];

  // Every 2 s each town's clock moves on 20 s and the town ticks once more (404s until the
  // README's commands made the town "demo").
  hurry = setInterval(async () => {
    for (const town of ["demo", "repairs"]) {
      await call(base, "POST", `/debug/towns/${town}/clock`, DEBUG, { advance_ms: 20_000 }).catch(() => {});
      await call(base, "POST", `/debug/towns/${town}/tick`, DEBUG).catch(() => {});
    }
  }, 2000);

  // The repair paths, in a town of their own beside the quick start's: one agent stalls (no more
  // heartbeats), one crashes (its process is gone, status exited), one fails (completed with
  // failed). The fates are pinned by task through the container's control API.
  const want = { "Stall once": "closed", "Crash once": "closed", "Fail once": "failed" };
  if (containerUrl) {
    for (const [task, fate] of [["Stall once", "stall"], ["Crash once", "crash"], ["Fail once", "fail"]])
      await fetch(`${containerUrl}/__control/fate`, { method: "POST", body: JSON.stringify({ task_contains: task, fate }) });
    await call(base, "PUT", "/api/towns/repairs", API, { owner_user_id: "me", config: { git_auth: { github_token: "dev-github-token" } } });
    await call(base, "POST", "/api/towns/repairs/rigs", API, { rig_id: "api", name: "api", git_url: "https://github.com/acme/api.git" });
    for (const title of Object.keys(want)) await call(base, "POST", "/api/towns/repairs/beads", API, { rig_id: "api", title });
  }
  const t1 = Date.now();

  const script = quickStart().join("\n").replaceAll("127.0.0.1:8787", `127.0.0.1:${port}`);
  const t0 = Date.now();
  const run = await bash(script, env, SCRIPT_TIMEOUT_MS);
  const seconds = ((Date.now() - t0) / 1000).toFixed(1);
  check(`the quick start's commands ran to the end (${seconds} s)`, run.code === 0, `exit ${run.code}:\n${run.out.slice(-3000)}`);

  const beads = (await call(base, "GET", "/api/towns/demo/beads?type=issue", API)).json?.beads ?? [];
  const titles = ["Fix the login form", "Add rate limiting", "Paginate the list", "Schema", "API"];
  check("the five beads exist", titles.every((t) => beads.some((b) => b.title === t)), JSON.stringify(beads.map((b) => b.title)));
  check("every bead is closed", beads.length > 0 && beads.every((b) => b.status === "closed"), JSON.stringify(beads.map((b) => [b.title, b.status])));
  const convoyBead = (await call(base, "GET", "/api/towns/demo/beads?type=convoy", API)).json?.beads?.[0];
  const convoy = convoyBead && (await call(base, "GET", `/api/towns/demo/convoys/${convoyBead.bead_id}`, API)).json?.convoy;
  check("the convoy landed", convoy?.status === "landed" && convoy?.closed_beads === 2, JSON.stringify(convoy));
  check("the status shows the closed beads", /"closed":[1-9]/.test(run.out), "no closed count in the output");
  check("the panel's queries ran over the metrics history", /## query A\n/.test(run.out), run.out.slice(-1500));

  if (githubUrl) {
    const prs = (await (await fetch(`${githubUrl}/__control/state`)).json()).prs;
    const merges = (await (await fetch(`${githubUrl}/__control/requests?path_prefix=/repos/acme/web/pulls/`)).json()).filter((r) => r.method === "PUT");
    const byTitle = (t) => prs.find((p) => p.title === t);
    const mergedOnce = (pr) => pr?.merged && pr.merges.length === 1 && merges.filter((m) => m.path === `/repos/acme/web/pulls/${pr.number}/merge` && m.json?.sha === pr.head_sha).length === 1;
    check(
      "the three beads' pull requests were merged by the Town, each once, pinned to their head",
      ["Fix the login form", "Add rate limiting", "Paginate the list"].every((t) => mergedOnce(byTitle(t))),
      JSON.stringify({ prs: prs.map((p) => [p.title, p.state, p.head_sha, p.merges.length]), merges: merges.map((m) => [m.path, m.json]) }),
    );
    check(
      "the convoy's work reached main through a pull request of its feature branch",
      prs.some((p) => p.head_ref === convoy?.feature_branch && p.base_ref === "main" && p.merged),
      JSON.stringify(prs.map((p) => [p.head_ref, p.base_ref, p.merged])),
    );
  }
  if (containerUrl) {
    const { violations, simulated } = await (await fetch(`${containerUrl}/__control/state`)).json();
    check("the container saw no start it would refuse or the Town must not send", violations.length === 0, JSON.stringify(violations));
    const failed = simulated.history.filter((h) => h.what.startsWith("demo ") && /failed|refused/.test(h.what));
    check("no simulated agent of the quick start failed or was refused", failed.length === 0, JSON.stringify(failed));

    const deadline = Date.now() + 60_000;
    const settled = {};
    let status = {};
    while (Date.now() < deadline) {
      const beads = (await call(base, "GET", "/api/towns/repairs/beads?type=issue", API)).json?.beads ?? [];
      status = Object.fromEntries(beads.filter((b) => b.title in want).map((b) => [b.title, b.status]));
      for (const t in want) if (status[t] === want[t]) settled[t] ??= ((Date.now() - t1) / 1000).toFixed(1);
      if (Object.keys(settled).length === 3) break;
      await sleep(1000);
    }
    const history = (await (await fetch(`${containerUrl}/__control/state`)).json()).simulated.history;
    const starts = (task) => history.filter((h) => h.what.includes(`started`) && h.what.endsWith(task)).length;
    console.log(`the repair paths settled after (s): ${JSON.stringify(settled)}`);
    check("a stalled agent's bead is dispatched again and closes", status["Stall once"] === "closed" && starts("Stall once") >= 2,
      `status ${status["Stall once"]}, ${starts("Stall once")} starts`);
    check("a crashed agent's bead is dispatched again and closes", status["Crash once"] === "closed" && starts("Crash once") >= 2,
      `status ${status["Crash once"]}, ${starts("Crash once")} starts`);
    check("a failed agent's bead fails", status["Fail once"] === "failed", `status ${status["Fail once"]}`);
  }
} catch (e) {
  check("the quick start", false, e.message);
} finally {
  clearInterval(hurry);
  try {
    process.kill(-dev.pid, "SIGTERM");
  } catch {}
  for (let i = 0; i < 50 && devExited === null; i++) await sleep(100);
  if (devExited === null)
    try {
      process.kill(-dev.pid, "SIGKILL");
    } catch {}
  rmSync(state, { recursive: true, force: true });
}

const failed = results.filter((r) => !r.ok).length;
if (failed > 0) console.log(`--- scripts/dev output (tail) ---\n${log.slice(-4000)}`);
console.log(`finished after ${((Date.now() - began) / 1000).toFixed(1)} s`);
console.log(`quickstart: ${results.length - failed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);

// The fault suite (issue 20): the real Worker in workerd against the stand-ins, each fault
// injected on purpose, and each case checked for the same three things:
// - no accepted event is lost: every fact the town answered 2xx for is a `town_events` row that
//   ends processed, not poisoned;
// - none is applied twice: what an application creates exists once (one merge request per
//   `done`, one accepted start per dispatched bead, one `pr_status_changed` per PR change);
// - the town converges once the fault is gone: every bead in the state the work calls for, and
//   the last tick's invariant check clean.
// Faults: the alarm handler failing after each phase (the dev-only `POST /debug/.../fault`) and
// retried; the container hanging, answering 500, garbage or 404 for every agent; GitHub answering
// 403 rate-limit, 502 and hanging.
import { describe, it, expect } from "vitest";
import { env, runInDurableObject } from "cloudflare:test";
import { addRig, advance, call, control, createTown, DEBUG, points, sql, townStub } from "./helpers.mjs";

const run = `flt${Date.now().toString(36)}`;
const HOUR = 3_600_000;
const PHASES = ["observe", "drain", "snapshot", "reconcile", "actions", "side_effects", "invariants", "metrics", "housekeeping"];

const container = {
  requests: (prefix) => control(env.CONTAINER_URL, "GET", `requests?path_prefix=${encodeURIComponent(prefix)}`),
  fail: (rule) => control(env.CONTAINER_URL, "POST", "fail", rule),
  state: () => control(env.CONTAINER_URL, "GET", "state"),
};
const github = {
  requests: (prefix) => control(env.GITHUB_API_URL, "GET", `requests?path_prefix=${encodeURIComponent(prefix)}`),
  fail: (rule) => control(env.GITHUB_API_URL, "POST", "fail", rule),
  pr: (fields) => control(env.GITHUB_API_URL, "POST", "pr", fields),
};

/**
 * The town's alarm handler, run once as the platform runs it, with the alarm it re-arms parked
 * an hour out (so that every tick here is one the test fired). Returns the error the handler
 * threw, or null.
 */
async function alarm(town) {
  return runInDurableObject(townStub(town), async (instance, state) => {
    await state.storage.deleteAlarm();
    let thrown = null;
    try {
      await instance.alarm();
    } catch (e) {
      thrown = e;
    }
    await state.storage.setAlarm(Date.now() + HOUR);
    return thrown;
  });
}

async function tick(town) {
  const thrown = await alarm(town);
  expect(thrown).toBeNull();
}

async function newTown(name, config) {
  const town = `${run}-${name}`;
  await createTown(town, `owner-${name}`, config);
  return town;
}

async function sling(town, title) {
  const res = await call("POST", `/api/towns/${town}/beads`, { body: { rig_id: "web", title } });
  expect(res.status, res.text).toBe(201);
  return res.json.bead;
}

async function startsOf(town) {
  return (await container.requests("/agents/start")).filter((r) => r.json?.townId === town);
}

/** An agent's callback with the container token its start carried; must be accepted. */
async function callback(start, action, body = {}) {
  const res = await call("POST", `/api/towns/${start.townId}/rigs/${start.rigId}/agents/${start.agentId}/${action}`, {
    token: start.envVars.GASTOWN_CONTAINER_TOKEN,
    body,
  });
  expect(res.status, res.text).toBe(200);
}

/** Every event the town accepted: none lost (all processed, none poisoned or waiting). */
async function expectEventsSettled(town, accepted) {
  const rows = await sql(town, "SELECT event_id, event_type, processed_at, poisoned, retry_count FROM town_events");
  for (const id of accepted) expect(rows.some((r) => r.event_id === id), `event ${id} kept`).toBe(true);
  const unsettled = rows.filter((r) => r.processed_at === null || r.poisoned !== 0 || r.retry_count !== 0);
  expect(unsettled).toEqual([]);
}

const eventIds = async (town) => (await sql(town, "SELECT event_id FROM town_events")).map((r) => r.event_id);

/** Merge requests per source bead. */
async function mrCounts(town) {
  const rows = await sql(
    town,
    `SELECT d.depends_on_bead_id AS source, COUNT(*) AS n FROM beads b
     JOIN bead_dependencies d ON d.bead_id = b.bead_id AND d.dependency_type = 'tracks'
     WHERE b.type = 'merge_request' GROUP BY d.depends_on_bead_id`,
  );
  return Object.fromEntries(rows.map((r) => [r.source, r.n]));
}

/** The town's last `reconciler_tick` point (waited for briefly: points are not awaited). */
async function lastTickPoint(town, count) {
  let ticks = [];
  for (let i = 0; i < 50; i++) {
    ticks = (await points(town)).filter((p) => p.indexes[0] === "reconciler_tick");
    if (ticks.length >= count) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  return ticks[ticks.length - 1];
}

/** Moves the town's clock forward (dev only). */
async function advance(town, ms) {
  const res = await call("POST", `/debug/towns/${town}/clock`, { token: DEBUG, body: { advance_ms: ms } });
  expect(res.status, res.text).toBe(200);
}

async function tickCount(town) {
  return (await sql(town, "SELECT COUNT(*) AS n FROM tick_metrics"))[0].n;
}

/** Ticks until the last tick's point shows no violation and nothing pending (at most `n`). */
async function converge(town, n = 4) {
  let point;
  for (let i = 0; i < n; i++) {
    const before = (await points(town)).filter((p) => p.indexes[0] === "reconciler_tick").length;
    await tick(town);
    point = await lastTickPoint(town, before + 1);
    if (point.doubles[6] === 0 && point.doubles[7] === 0) return point;
  }
  throw new Error(`town ${town} did not converge: ${JSON.stringify(point?.doubles)}`);
}

describe("the alarm handler fails after a phase and is run again", () => {
  it.each(PHASES)("after %s: nothing accepted is lost or applied twice, and the town converges", async (phase) => {
    const town = await newTown(`alarm-${phase}`);
    await addRig(town, "web", `acme/${run}-${phase}`);
    const first = [await sling(town, "Fix the login form"), await sling(town, "Add search")];
    await tick(town);
    const starts = await startsOf(town);
    expect(starts).toHaveLength(2);
    // Facts accepted before the failing tick: both polecats are done, and more work arrives.
    for (const s of starts) await callback(s.json, "done", { branch: s.json.branch });
    const third = await sling(town, "Tidy the footer");
    const accepted = await eventIds(town);

    const armed = await call("POST", `/debug/towns/${town}/fault`, { token: DEBUG, body: { fail_after: phase } });
    expect(armed.status, armed.text).toBe(200);
    const ticksBefore = await tickCount(town);
    const thrown = await alarm(town);
    expect(thrown, "the armed tick throws").not.toBeNull();
    // The failing attempt wrote its history only if it got past the housekeeping.
    expect(await tickCount(town)).toBe(ticksBefore + (phase === "housekeeping" ? 1 : 0));

    // The retry, then ticks until the town is at rest.
    await converge(town);
    await expectEventsSettled(town, accepted);
    const mrs = await mrCounts(town);
    expect(first.map((b) => mrs[b.bead_id])).toEqual([1, 1]);
    const startsByTitle = async () => {
      const byTitle = {};
      for (const s of await startsOf(town)) {
        const title = s.json.prompt.split("\n")[0];
        byTitle[title] = (byTitle[title] ?? 0) + 1;
      }
      return byTitle;
    };
    if (phase === "actions") {
      // Side effects are at most once across a failure: the failed attempt committed the
      // dispatch of the new bead (agent working, bead in progress) but died before its start
      // call, and the retry does not repeat a call whose state says it happened. The agent
      // never runs (it goes idle, the container not knowing it); B3 re-opens an in-progress
      // bead untouched for 5 minutes whose agents are not working, and it is started (once).
      expect((await startsByTitle())["Tidy the footer"]).toBeUndefined();
      await advance(town, 301_000);
      for (let i = 0; i < 6 && !(await startsByTitle())["Tidy the footer"]; i++) {
        await advance(town, 5_000);
        await tick(town);
      }
      await converge(town);
    }
    // One polecat start per bead: none repeated.
    const byTitle = await startsByTitle();
    expect(byTitle["Fix the login form"]).toBe(1);
    expect(byTitle["Add search"]).toBe(1);
    expect(byTitle["Tidy the footer"]).toBe(1);
    const [tidy] = await sql(town, "SELECT status FROM beads WHERE bead_id = ?", third.bead_id);
    expect(tidy.status).toBe("in_progress");
  });

  it("workerd itself runs a failed alarm again", async () => {
    const town = await newTown("alarm-platform");
    await addRig(town, "web", `acme/${run}-platform`);
    const slung = await sling(town, "Fix the login form");
    const accepted = await eventIds(town);
    // Failing after the housekeeping, the attempt has written its tick's history: so two rows
    // prove both the failure and the platform's retry (workerd runs a failed alarm again after a
    // backoff of a second or two).
    const armed = await call("POST", `/debug/towns/${town}/fault`, { token: DEBUG, body: { fail_after: "housekeeping" } });
    expect(armed.status, armed.text).toBe(200);
    const ticksBefore = await tickCount(town);
    await runInDurableObject(townStub(town), (_, state) => state.storage.setAlarm(Date.now()));
    for (let i = 0; i < 150 && (await tickCount(town)) < ticksBefore + 2; i++) await new Promise((r) => setTimeout(r, 100));
    await runInDurableObject(townStub(town), (_, state) => state.storage.setAlarm(Date.now() + HOUR));
    expect(await tickCount(town)).toBe(ticksBefore + 2);
    await expectEventsSettled(town, accepted);
    const [bead] = await sql(town, "SELECT status FROM beads WHERE bead_id = ?", slung.bead_id);
    expect(bead.status).toBe("in_progress");
    expect(await startsOf(town)).toHaveLength(1);
  }, 30_000);

  it("refuses to arm outside a known phase", async () => {
    const town = await newTown("alarm-bad");
    const res = await call("POST", `/debug/towns/${town}/fault`, { token: DEBUG, body: { fail_after: "lunch" } });
    expect(res.status).toBe(400);
    expect(res.json.error.message).toContain("observe, drain");
    await tick(town);
  });
});

describe("the container fails every agent's status call", () => {
  it.each([
    ["hangs", "timeout"],
    ["answers 500", "500"],
    ["answers garbage", "garbage"],
    ["answers 404", "404"],
  ])("%s: heartbeats are applied once and the work converges", async (_, mode) => {
    const town = await newTown(`box-${mode}`);
    await addRig(town, "web", `acme/${run}-box-${mode}`);
    const slung = [await sling(town, "Write the docs"), await sling(town, "Fix the build")];
    await tick(town);
    const starts = await startsOf(town);
    expect(starts).toHaveLength(2);
    for (const s of starts) await callback(s.json, "heartbeat", {});
    const accepted = await eventIds(town);
    for (const s of starts) await container.fail({ path_prefix: `/agents/${s.json.agentId}/status`, mode, times: 1 });

    // A minute without a sign (past the observation's 45 s, within the 90 s heartbeat rule): each
    // agent is asked about once.
    await advance(town, 60_000);
    await tick(town);
    const asked = await Promise.all(starts.map((s) => container.requests(`/agents/${s.json.agentId}/status`)));
    expect(asked.map((r) => r.length)).toEqual([1, 1]);
    const [{ n: unknown }] = await sql(town, "SELECT COUNT(*) AS n FROM town_events WHERE event_type = 'container_status'");
    // 500 and garbage are recorded as `unknown` (nothing acts on them), 404 as `not_found`; a call
    // that never answered is only logged.
    expect(unknown).toBe(mode === "timeout" ? 0 : 2);

    await converge(town);
    await expectEventsSettled(town, accepted);
    const beads = await sql(
      town,
      `SELECT bead_id, status, assignee_agent_bead_id FROM beads WHERE bead_id IN (?, ?)`,
      slung[0].bead_id,
      slung[1].bead_id,
    );
    const running = new Set((await container.state()).agents.filter((a) => a.status === "running").map((a) => a.agentId));
    for (const b of beads) {
      expect(b.status).toBe("in_progress");
      expect(running.has(b.assignee_agent_bead_id), `${b.bead_id} runs`).toBe(true);
    }
    // Nothing was started again: an unanswered, failed or unreadable status changes nothing,
    // and a 404 within 180 s of the agent's last activity is the original's grace for an agent
    // still starting (after that, the heartbeat rule has reset the agent already).
    expect(await startsOf(town)).toHaveLength(2);
  }, 60_000);
});

describe("GitHub fails a pull request's poll", () => {
  const owner = "acme";
  it.each([
    ["403 rate limit", "rate_limit"],
    ["502", "502"],
    ["hangs", "timeout"],
  ])("%s: the poll fails, is retried, and the merge is applied once", async (_, mode) => {
    const repo = `${run}-gh-${mode}`;
    const town = await newTown(`gh-${mode}`, { merge_strategy: "pr", refinery: { code_review: false } });
    await addRig(town, "web", `${owner}/${repo}`);
    await github.pr({ owner, repo, number: 1 });
    const prUrl = `https://github.com/${owner}/${repo}/pull/1`;
    const slung = await sling(town, "Rate limit the API");
    await tick(town);
    const [start] = await startsOf(town);
    await callback(start.json, "done", { branch: start.json.branch, pr_url: prUrl });
    await tick(town);
    const accepted = await eventIds(town);
    const pulls = `/repos/${owner}/${repo}/pulls/1`;
    const polls = async () => (await github.requests(pulls)).length;
    const polledBefore = await polls();

    // The PR merges on GitHub, but the next poll fails.
    await github.pr({ owner, repo, number: 1, merged: true, state: "closed" });
    await github.fail({ path_prefix: pulls, mode, method: "GET" });
    await advance(town, 61_000);
    const ticks = (await points(town)).filter((p) => p.indexes[0] === "reconciler_tick").length;
    await tick(town);
    const failed = await lastTickPoint(town, ticks + 1);
    expect(failed.doubles.slice(3, 6), "one poll attempted and failed").toEqual([1, 0, 1]);
    expect(await polls()).toBe(polledBefore + 1);
    expect((await sql(town, "SELECT status FROM beads WHERE bead_id = ?", slung.bead_id))[0].status).not.toBe("closed");

    // A minute later the poll works: the change is recorded once and applied once.
    await advance(town, 61_000);
    await converge(town);
    await expectEventsSettled(town, accepted);
    const changes = await sql(town, "SELECT processed_at FROM town_events WHERE event_type = 'pr_status_changed'");
    expect(changes).toHaveLength(1);
    expect((await sql(town, "SELECT status FROM beads WHERE bead_id = ?", slung.bead_id))[0].status).toBe("closed");
    expect(await mrCounts(town)).toEqual({ [slung.bead_id]: 1 });
  }, 60_000);
});

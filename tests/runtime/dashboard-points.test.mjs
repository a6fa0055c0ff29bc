// A varied series of real Analytics Engine points for the dashboard checks
// (tests/dashboard/check.py reads them from tests/runtime/.out/points.json):
// - a town that ticks, then is deleted, so its alarm stops (ticks per minute must fall to 0);
// - a backlog larger than the drain limit (TICK_DRAIN_LIMIT, 500), so earlier ticks report more
//   pending events than the last one, with one event whose payload is broken (events failed);
// - several live towns with different owners ticking after that.
// The assertions here are about the Worker's behaviour; the dashboard check computes its own
// expectations from whatever points were captured.
import { describe, it, expect } from "vitest";
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { containerToken, alarmAt, call, createTown, DEBUG, points, seedAgent, sql, townStub } from "./helpers.mjs";

const DRAIN_LIMIT = 500;

/** Records `count` agent `done` events for one agent, a few requests in flight at a time. */
async function recordDone(town, agent, count) {
  const [known] = await sql(town, "SELECT COUNT(*) AS n FROM agent_metadata WHERE bead_id = ?", agent);
  if (known.n === 0) await seedAgent(town, agent);
  const token = await containerToken(town);
  const path = `/api/towns/${town}/rigs/r1/agents/${agent}/done`;
  for (let start = 0; start < count; start += 25) {
    const batch = [];
    for (let i = start; i < Math.min(count, start + 25); i++) {
      batch.push(call("POST", path, { token, body: { branch: `gt/${agent}/${i}` } }));
    }
    for (const res of await Promise.all(batch)) expect(res.status).toBe(200);
  }
}

async function pendingCount(town) {
  const [row] = await sql(town, "SELECT COUNT(*) AS n FROM town_events WHERE processed_at IS NULL");
  return row.n;
}

/** Fires the town's alarm until no event is pending (a backlog re-arms it at once); when only
 * failed events waiting for their retry are left, moves the town's clock on by their wait. */
async function drain(town, maxTicks = 20) {
  for (let i = 0; i < maxTicks; i++) {
    if ((await pendingCount(town)) === 0) return;
    const [waiting] = await sql(
      town,
      "SELECT MIN(next_attempt_at) AS at, SUM(next_attempt_at IS NULL) AS due FROM town_events WHERE processed_at IS NULL",
    );
    if (waiting.due === 0 && waiting.at !== null) {
      const res = await call("POST", `/debug/towns/${town}/clock`, { token: DEBUG, body: { advance_ms: 121_000 } });
      expect(res.status, res.text).toBe(200);
    }
    await runDurableObjectAlarm(townStub(town));
  }
  throw new Error(`${town} still has pending events after ${maxTicks} ticks`);
}

/** The captured reconciler_tick points of one town, in the order they were written. */
async function ticksOf(town) {
  return (await points()).filter((p) => p.indexes[0] === "reconciler_tick" && p.blobs[5] === town);
}

const drained = (p) => p.doubles[1];
const pending = (p) => p.doubles[7];
const failed = (p) => p.doubles[8];
const oldestAge = (p) => p.doubles[9];

describe("points for the dashboard checks", () => {
  it("a town ticks, is deleted, and writes nothing more", async () => {
    await env.GASTOWN_AE.label("dashboard:stopped-town");
    const town = "dash-stopped";
    await createTown(town, "owner-stopped");
    for (const n of [3, 2]) {
      await recordDone(town, "agent-s", n);
      await drain(town);
    }
    const before = await ticksOf(town);
    expect(before.length).toBeGreaterThanOrEqual(2);
    expect(before.reduce((sum, p) => sum + drained(p), 0)).toBe(5);

    expect((await call("DELETE", `/api/towns/${town}`)).status).toBe(204);
    expect(await alarmAt(town)).toBeNull();
    expect(await runDurableObjectAlarm(townStub(town))).toBe(false);
    expect(await ticksOf(town)).toEqual(before);
  });

  it("drains a backlog over several ticks, oldest first, with one broken event", async () => {
    await env.GASTOWN_AE.label("dashboard:backlog");
    const town = "dash-backlog";
    const total = 2 * DRAIN_LIMIT + 200;
    await createTown(town, "owner-backlog");
    // A burst arrives faster than the alarm drains it: hold the alarm off while recording
    // (recording takes longer than the 5 s active interval here).
    await runInDurableObject(townStub(town), (_instance, state) => state.storage.setAlarm(Date.now() + 3_600_000));
    await recordDone(town, "agent-b1", total - 100);
    await recordDone(town, "agent-b2", 100);
    expect(await pendingCount(town)).toBe(total);
    // Fault injection: the newest event's payload no longer parses, so applying it fails on
    // every try (spaced 5 s, then 2 min) until it is poisoned.
    const [broken] = await sql(town, "SELECT event_id FROM town_events ORDER BY created_at DESC, rowid DESC LIMIT 1");
    await sql(town, "UPDATE town_events SET payload = '{' WHERE event_id = ?", broken.event_id);

    await drain(town);

    const ticks = await ticksOf(town);
    expect(ticks.length).toBeGreaterThanOrEqual(3);
    for (const p of ticks) expect(drained(p)).toBeLessThanOrEqual(DRAIN_LIMIT);
    // Every event is read once, and the broken one once per retry.
    const retries = ticks.reduce((sum, p) => sum + failed(p), 0);
    expect(retries).toBe(3);
    expect(ticks.reduce((sum, p) => sum + drained(p), 0)).toBe(total + retries - 1);
    // The backlog shrinks: the first tick left more pending (and older) work than the last.
    expect(pending(ticks[0])).toBeGreaterThanOrEqual(total - DRAIN_LIMIT);
    expect(oldestAge(ticks[0])).toBeGreaterThanOrEqual(0);
    const last = ticks[ticks.length - 1];
    expect(pending(last)).toBe(0);
    expect(oldestAge(last)).toBe(0);
    expect(pending(ticks[0])).toBeGreaterThan(pending(last));
    const [poisoned] = await sql(town, "SELECT poisoned, last_error FROM town_events WHERE event_id = ?", broken.event_id);
    expect(poisoned.poisoned).toBe(1);
    expect(poisoned.last_error).toMatch(/bad payload/);
  });

  it("several live towns keep ticking after the deleted one stopped", async () => {
    await env.GASTOWN_AE.label("dashboard:live-towns");
    const towns = ["dash-alpha", "dash-beta", "dash-gamma"];
    for (const [i, town] of towns.entries()) await createTown(town, `owner-${i}`);
    for (let round = 1; round <= 4; round++) {
      for (const [i, town] of towns.entries()) {
        await recordDone(town, `agent-${i}`, round * (i + 1));
        await drain(town);
      }
    }
    for (const [i, town] of towns.entries()) {
      const ticks = await ticksOf(town);
      expect(ticks.length).toBeGreaterThanOrEqual(4);
      expect(ticks.reduce((sum, p) => sum + drained(p), 0)).toBe(10 * (i + 1));
      expect(pending(ticks[ticks.length - 1])).toBe(0);
      for (const p of ticks) expect(p.blobs.slice(0, 3)).toEqual(["reconciler_tick", `owner-${i}`, "internal"]);
    }
  });
});

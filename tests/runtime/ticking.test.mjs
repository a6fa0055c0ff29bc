// One tick at a time per town, and no write after a delete (issue 20 item 2), in workerd with
// the container stand-in holding a start unanswered until the test releases it: the tick that
// sent it is suspended on I/O, so the Durable Object serves other events meanwhile. Nothing here
// depends on timing: every wait is for a state the town or the stand-in reports.
import { describe, it, expect } from "vitest";
import { env, runInDurableObject } from "cloudflare:test";
import { alarmAt, call, control, createTown, DEBUG, dump, points, townStub } from "./helpers.mjs";

const run = `tk${Date.now().toString(36)}`;
const HOUR = 3_600_000;

const container = {
  requests: (prefix) => control(env.CONTAINER_URL, "GET", `requests?path_prefix=${encodeURIComponent(prefix)}`),
  hold: (town) => control(env.CONTAINER_URL, "POST", "fail", { path_prefix: "/agents/start", mode: "hold", json: { townId: town } }),
  release: () => control(env.CONTAINER_URL, "POST", "release", { path_prefix: "/agents/start" }),
};

const startsOf = async (town) => (await container.requests("/agents/start")).filter((r) => r.json?.townId === town);

/** Polls `probe` until it returns a truthy value (each poll is a round trip, no sleeps). */
async function until(probe, what) {
  for (let i = 0; i < 2000; i++) {
    const got = await probe();
    if (got) return got;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`never: ${what}`);
}

/** Parks the alarm an hour out, so that only the ticks a test fires run. */
const park = (town) =>
  runInDurableObject(townStub(town), (_i, state) => state.storage.setAlarm(Date.now() + HOUR));

async function newTown(name) {
  const town = `${run}-${name}`;
  await createTown(town);
  await park(town);
  const rig = await call("POST", `/api/towns/${town}/rigs`, {
    body: { rig_id: "r1", name: "r1", git_url: "https://github.com/acme/tk.git", default_branch: "main" },
  });
  expect(rig.status, rig.text).toBe(201);
  return town;
}

async function sling(town, title) {
  const res = await call("POST", `/api/towns/${town}/beads`, { body: { rig_id: "r1", title } });
  expect(res.status, res.text).toBe(201);
  return res.json.bead.bead_id;
}

const debugTick = (town) => call("POST", `/debug/towns/${town}/tick`, { token: DEBUG });
const status = async (town) => (await call("GET", `/debug/towns/${town}/status`, { token: DEBUG })).json;
const history = async (town) => (await call("GET", `/debug/towns/${town}/metrics?limit=1000`, { token: DEBUG })).json;
/** The alarm's tick, run as the platform runs it. */
const alarmTick = (town) => runInDurableObject(townStub(town), (instance) => instance.alarm());
const tickPoints = async (town) => (await points(town)).filter((p) => p.indexes[0] === "reconciler_tick");

describe("one tick at a time", () => {
  it("a debug tick and the alarm's tick wait for the tick suspended on a start, then run in turn", async () => {
    const town = await newTown("turns");
    await container.hold(town);
    const first = await sling(town, "first");
    const tick1 = debugTick(town);
    await until(async () => (await startsOf(town)).length === 1, "the first start reaches the container");

    const second = await sling(town, "second");
    const tick2 = debugTick(town);
    const tick3 = alarmTick(town);
    // Both wait (the town says so), or, were they to overlap, the second bead's start would
    // reach the container while the first is held: whichever comes first ends the wait.
    const seen = await until(async () => {
      const s = await status(town);
      const starts = await startsOf(town);
      return s.tick.waiting === 2 || starts.length > 1 ? { s, starts } : null;
    }, "two ticks wait, or a second start arrives");
    expect(seen.starts).toHaveLength(1);
    expect(seen.s.tick.waiting).toBe(2);
    expect(seen.s.tick.running_since).not.toBeNull();
    expect((await history(town)).count).toBe(0);

    await container.release();
    const [r1, r2] = await Promise.all([tick1, tick2, tick3]);
    expect(r1.status, r1.text).toBe(200);
    expect(r2.status, r2.text).toBe(200);
    expect(r1.json.waited_for_running_tick).toBe(false);
    expect(r2.json.waited_for_running_tick).toBe(true);
    // The first tick dispatched the first bead; a later one the second, after the release.
    const starts = await startsOf(town);
    expect(starts.map((s) => s.json.branch.slice(-8))).toEqual([first.slice(0, 8), second.slice(0, 8)]);
    expect((await history(town)).count).toBe(3);
    const after = await status(town);
    expect(after.tick.waiting).toBe(0);
    expect(after.tick.running_since).toBeNull();
  });
});

describe("a delete while a tick is suspended", () => {
  it("the alarm's tick writes nothing into the town created again meanwhile, and leaves its alarm", async () => {
    const town = await newTown("recreated");
    await container.hold(town);
    await sling(town, "work of the deleted town");
    const pointsBefore = (await tickPoints(town)).length;
    const tick = alarmTick(town);
    await until(async () => (await startsOf(town)).length === 1, "the start reaches the container");

    const del = await call("DELETE", `/api/towns/${town}`);
    expect(del.status, del.text).toBe(204);
    expect(await alarmAt(town)).toBeNull();
    await createTown(town);
    await park(town);
    const armed = await alarmAt(town);
    const fresh = await dump(town);

    await container.release();
    await tick;
    // Nothing of the deleted town's tick landed: no row, no history, no alarm change.
    expect(await dump(town)).toEqual(fresh);
    expect(await alarmAt(town)).toBe(armed);
    expect((await history(town)).count).toBe(0);

    // The next tick is the new town's first, and the only point written since the delete.
    const next = await debugTick(town);
    expect(next.status, next.text).toBe(200);
    expect((await history(town)).count).toBe(1);
    const written = await until(async () => {
      const all = await tickPoints(town);
      return all.length > pointsBefore ? all : null;
    }, "the new town's tick point");
    expect(written.length).toBe(pointsBefore + 1);
  });

  it("a debug tick across a delete answers 409, and the deleted town gets no alarm back", async () => {
    const town = await newTown("deleted");
    await container.hold(town);
    await sling(town, "work of the deleted town");
    const tick = debugTick(town);
    await until(async () => (await startsOf(town)).length === 1, "the start reaches the container");

    expect((await call("DELETE", `/api/towns/${town}`)).status).toBe(204);
    await container.release();
    const answer = await tick;
    expect(answer.status, answer.text).toBe(409);
    expect(answer.json.error.code).toBe("conflict");
    expect(answer.json.error.message).toContain("deleted while this tick ran");
    expect(await alarmAt(town)).toBeNull();
    expect((await call("GET", `/api/towns/${town}`)).status).toBe(404);
    const tables = await dump(town);
    expect(Object.entries(tables).filter(([name, rows]) => name !== "schema_migrations" && rows.length > 0)).toEqual([]);
  });
});

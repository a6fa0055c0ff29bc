// New work within a second (issue 19 item 2), in workerd with the alarm left to the platform
// (this project keeps ALARM_WAKE_ON_FACTS at its default): a fact that gives the reconciler work
// pulls the town's alarm forward to now, at most one extra tick a second. Asserted through what
// the town reports (its alarm, its tick history), never by how fast anything was.
import { describe, it, expect } from "vitest";
import { env, runDurableObjectAlarm } from "cloudflare:test";
import { call, control, createTown, DEBUG, townStub } from "../helpers.mjs";

const run = `wk${Date.now().toString(36)}`;
const GAP = 1000;

const startsOf = async (town) =>
  (await control(env.CONTAINER_URL, "GET", "requests?path_prefix=%2Fagents%2Fstart")).filter((r) => r.json?.townId === town);
const status = async (town) => (await call("GET", `/debug/towns/${town}/status`, { token: DEBUG })).json;
const history = async (town) =>
  (await call("GET", `/debug/towns/${town}/metrics?limit=1000`, { token: DEBUG })).json.ticks;
const ms = (iso) => Date.parse(iso);

async function until(probe, what) {
  for (let i = 0; i < 3000; i++) {
    const got = await probe();
    if (got) return got;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`never: ${what}`);
}

/** A town with a rig, ticked once by hand so that it is idle, its alarm minutes away. */
async function idleTown(name) {
  const town = `${run}-${name}`;
  await createTown(town);
  const rig = await call("POST", `/api/towns/${town}/rigs`, {
    body: { rig_id: "r1", name: "r1", git_url: "https://github.com/acme/wake.git", default_branch: "main" },
  });
  expect(rig.status, rig.text).toBe(201);
  expect(await runDurableObjectAlarm(townStub(town))).toBe(true);
  const s = await status(town);
  expect(s.alarm.interval_label).toMatch(/^idle/);
  expect(ms(s.alarm.next_fire_at) - ms(s.now)).toBeGreaterThan(60_000);
  return town;
}

/** Whether the alarm was pulled to within the gap of `at`, or a tick already ran after it. */
function pulledForward(s, at) {
  const next = s.alarm.next_fire_at;
  const ticked = s.reconciler?.at && ms(s.reconciler.at) >= at;
  return ticked || next === null || ms(next) <= at + GAP;
}

describe("a fact that gives the reconciler work wakes the town", () => {
  it("a bead slung into an idle town pulls the alarm to now, and its start follows", async () => {
    const town = await idleTown("idle");
    const res = await call("POST", `/api/towns/${town}/beads`, { body: { rig_id: "r1", title: "now please" } });
    expect(res.status, res.text).toBe(201);
    const s = await status(town);
    expect(pulledForward(s, ms(res.json.bead.created_at)), JSON.stringify(s.alarm)).toBe(true);
    const [start] = await until(async () => {
      const starts = await startsOf(town);
      return starts.length ? starts : null;
    }, "the bead's start reaches the container");
    expect(start.json.branch.slice(-8)).toBe(res.json.bead.bead_id.slice(0, 8));
  });

  it("a staged convoy waits for the schedule; starting it wakes the town", async () => {
    const town = await idleTown("convoy");
    const before = (await status(town)).alarm.next_fire_at;
    const staged = await call("POST", `/api/towns/${town}/convoys`, {
      body: { title: "later", rig_id: "r1", staged: true, beads: [{ title: "one" }, { title: "two" }] },
    });
    expect(staged.status, staged.text).toBe(201);
    expect((await status(town)).alarm.next_fire_at).toBe(before);
    const start = await call("POST", `/api/towns/${town}/convoys/${staged.json.convoy.convoy_id}/start`);
    expect(start.status, start.text).toBe(200);
    expect(pulledForward(await status(town), Date.now() - GAP)).toBe(true);
  });

  it("100 beads in a burst cost at most one tick a second", async () => {
    const town = await idleTown("burst");
    // The container drains: the reconciler starts nothing, so each tick is short and only the
    // coalescing keeps the ticks apart (a tick making a hundred starts would space them itself).
    const drain = await call("POST", `/api/towns/${town}/container-eviction`);
    expect(drain.status, drain.text).toBeLessThan(300);
    const ticksBefore = (await history(town)).length;
    const created = [];
    const inFlight = 10;
    for (let i = 0; i < 100; i += inFlight) {
      const batch = await Promise.all(
        Array.from({ length: inFlight }, (_, j) =>
          call("POST", `/api/towns/${town}/beads`, { body: { rig_id: "r1", title: `burst ${i + j}` } }),
        ),
      );
      for (const r of batch) {
        expect(r.status, r.text).toBe(201);
        created.push(ms(r.json.bead.created_at));
      }
    }
    const first = Math.min(...created);
    const last = Math.max(...created);
    // Wait for a tick that ended after the last bead was recorded with nothing pending: every
    // bead of the burst was drained by then.
    const ticks = await until(async () => {
      const h = await history(town);
      const newest = h[0];
      return newest && ms(newest.at) >= last && newest.metrics.pending_event_count === 0 ? h : null;
    }, "a tick after the burst with nothing pending");
    const during = ticks.slice(0, ticks.length - ticksBefore);
    const span = ms(during[0].at) - first;
    console.log(`burst: 100 beads over ${last - first} ms, ${during.length} ticks over ${span} ms`);
    // Tick starts are at least a second apart, so at most span/1 s + 1 ticks start inside the
    // span, plus one that was already running when the burst began.
    expect(during.length).toBeLessThanOrEqual(Math.floor(span / GAP) + 2);
    expect(during.length).toBeLessThan(100);
    const drained = during.reduce((n, t) => n + t.metrics.events_drained, 0);
    expect(drained).toBeGreaterThanOrEqual(100);
  });
});

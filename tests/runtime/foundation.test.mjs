// The foundation loop in workerd: create a town, record events over HTTP, fire the alarm, and
// check what was processed, the exact point that reached the AE binding, and the alarm.
import { describe, it, expect } from "vitest";
import { runDurableObjectAlarm, SELF } from "cloudflare:test";
import { agentCall, alarmAt, call, createTown, points, seedAgent, sql, townStub } from "./helpers.mjs";

describe("health", () => {
  it("answers without credentials", async () => {
    const res = await call("GET", "/health", { token: null });
    expect(res.status).toBe(200);
    expect(res.json.status).toBe("ok");
  });

  it("answers HEAD with its status and no body", async () => {
    const res = await SELF.fetch("https://town.test/health", { method: "HEAD" });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("");
  });
});

describe("a town's first tick", () => {
  it("processes recorded events and writes exactly one reconciler_tick point", async () => {
    const town = "town-foundation";
    const created = await createTown(town, "owner-42");
    expect(created.town_id).toBe(town);
    expect(await alarmAt(town)).not.toBeNull();

    await seedAgent(town, "agent-1");
    const done = await agentCall("POST", town, "agent-1", "done", { branch: "gt/toast/1" });
    expect(done.status).toBe(200);
    const completed = await agentCall("POST", town, "agent-1", "completed", { status: "completed" });
    expect(completed.status).toBe(200);
    const pending = await sql(town, "SELECT event_type FROM town_events WHERE processed_at IS NULL ORDER BY created_at, rowid");
    expect(pending.map((r) => r.event_type)).toEqual(["agent_done", "agent_completed"]);

    const before = Date.now();
    expect(await runDurableObjectAlarm(townStub(town))).toBe(true);

    const rows = await sql(town, "SELECT processed_at, poisoned FROM town_events");
    expect(rows).toHaveLength(2);
    for (const r of rows) {
      expect(r.processed_at).not.toBeNull();
      expect(r.poisoned).toBe(0);
    }

    const written = (await points(town)).filter((p) => p.indexes[0] === "reconciler_tick");
    expect(written).toHaveLength(1);
    const [p] = written;
    expect(p.indexes).toEqual(["reconciler_tick"]);
    expect(p.blobs).toEqual([
      "reconciler_tick", "owner-42", "internal", "", "", town, "", "", "", "{}", "", "", "", "",
    ]);
    expect(p.doubles).toHaveLength(12);
    // wall clock (may be 0: workerd's clock does not advance during synchronous work), drained 2,
    // no actions or side effects yet, no violations, nothing pending, nothing failed, no age, the
    // original's statusCode slot unset, nothing deferred.
    expect(p.doubles[0]).toBeGreaterThanOrEqual(0);
    expect(p.doubles.slice(1)).toEqual([2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

    const next = await alarmAt(town);
    expect(next).not.toBeNull();
    expect(next).toBeGreaterThanOrEqual(before);
  });

  it("stops the alarm of a deleted town, and the town is gone", async () => {
    const town = "town-deleted";
    await createTown(town);
    expect(await alarmAt(town)).not.toBeNull();
    const del = await call("DELETE", `/api/towns/${town}`);
    expect(del.status).toBe(204);
    expect(await alarmAt(town)).toBeNull();
    expect(await runDurableObjectAlarm(townStub(town))).toBe(false);
    expect((await points(town)).length).toBe(0);
    const get = await call("GET", `/api/towns/${town}`);
    expect(get.status).toBe(404);
    expect(get.json.error.code).toBe("not_found");
  });
});

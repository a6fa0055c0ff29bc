// The debug routes in workerd: authenticated, never creating a town, and read-only where they
// say so.
import { describe, it, expect } from "vitest";
import { runDurableObjectAlarm } from "cloudflare:test";
import { agentCall, call, createTown, DEBUG, dump, points, seedAgent, townStub } from "./helpers.mjs";

const dbg = (method, path, opts = {}) => call(method, path, { token: DEBUG, ...opts });

describe("debug auth and unknown towns", () => {
  it("refuses missing and wrong tokens with 401, and the API token too", async () => {
    for (const token of [null, "nope", "test-api-token"]) {
      const res = await call("GET", "/debug/towns/t-auth/status", { token });
      expect(res.status).toBe(401);
      expect(res.json.error.code).toBe("unauthorized");
    }
  });

  it("answers 404 for an unknown town and does not create it", async () => {
    for (const [m, p] of [["GET", "status"], ["GET", "metrics"], ["POST", "tick"], ["GET", "drain-status"], ["GET", "nudges"], ["GET", "beads/b1"]]) {
      const res = await dbg(m, `/debug/towns/t-never/${p}`);
      expect(res.status, p).toBe(404);
    }
    expect(await dump("t-never")).toEqual({});
  });
});

describe("debug views of a town", () => {
  it("status, metrics history, tick, drain status, nudges and beads", async () => {
    const town = "t-debug";
    await createTown(town, "owner-d");
    await seedAgent(town, "agent-1");
    await agentCall("POST", town, "agent-1", "done", { branch: "b" });
    await runDurableObjectAlarm(townStub(town));

    const tick = await dbg("POST", `/debug/towns/${town}/tick`);
    expect(tick.status).toBe(200);
    expect(tick.json.metrics.events_drained).toBe(0);
    expect(tick.json.point.indexes ?? tick.json.point.index).toBeTruthy();

    const metrics = await dbg("GET", `/debug/towns/${town}/metrics?limit=5`);
    expect(metrics.status).toBe(200);
    expect(metrics.json.count).toBe(2);
    expect(metrics.json.ticks[1].metrics.events_drained).toBe(1);
    expect(metrics.json.ticks[0].metrics.events_drained).toBe(0);
    // exactly what reached the AE binding, newest first
    const written = (await points(town)).filter((p) => p.indexes[0] === "reconciler_tick");
    expect(metrics.json.ticks[1].point.blobs).toEqual(written[0].blobs);
    expect(metrics.json.ticks[1].point.doubles).toEqual(written[0].doubles);

    const bad = await dbg("GET", `/debug/towns/${town}/metrics?limit=0`);
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toBe("invalid_field");

    const status = await dbg("GET", `/debug/towns/${town}/status`);
    expect(status.status).toBe(200);
    expect(status.json.town_id).toBe(town);
    expect(status.json.alarm.next_fire_at).not.toBeNull();
    expect(status.json.alarm.interval_label).toMatch(/^(active|idle) \(/);
    expect(status.json.agents.total).toBe(1);
    expect(status.json.agent_meta[0].agent_id).toBe("agent-1");
    expect(status.json.reconciler.metrics.events_drained).toBe(0);
    expect(status.json.draining).toBe(false);

    const drain = await dbg("GET", `/debug/towns/${town}/drain-status`);
    expect(drain.json).toEqual({ draining: false, drain_nonce: null, started_at: null });

    const nudges = await dbg("GET", `/debug/towns/${town}/nudges`);
    expect(nudges.json).toEqual({ nudges: [] });

    const missing = await dbg("GET", `/debug/towns/${town}/beads/nope`);
    expect(missing.status).toBe(404);
  });

  it("serves the status as a page to a browser", async () => {
    const town = "t-page";
    await createTown(town);
    await runDurableObjectAlarm(townStub(town));
    const res = await dbg("GET", `/debug/towns/${town}/status`, { headers: { accept: "text/html" } });
    expect(res.status).toBe(200);
    expect(res.text).toContain('<span id="town-id">t-page</span>');
    expect(res.text).toContain('<svg id="ticks-chart"');
  });

  it("moves the town clock forward only with a valid advance", async () => {
    const town = "t-clock";
    await createTown(town);
    for (const body of [{}, { advance_ms: 0 }, { advance_ms: "1" }, { advance_ms: 1, extra: 1 }]) {
      const res = await dbg("POST", `/debug/towns/${town}/clock`, { body });
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
    const before = await dump(town);
    const ok = await dbg("POST", `/debug/towns/${town}/clock`, { body: { advance_ms: 7_200_000 } });
    expect(ok.status).toBe(200);
    expect(ok.json.offset_ms).toBe(7_200_000);
    const after = await dump(town);
    expect(after.town[0].clock_offset_ms).toBe(7_200_000);
    expect(before.town[0].clock_offset_ms).toBe(0);
  });
});

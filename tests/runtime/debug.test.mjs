// The debug routes in workerd: authenticated, never creating a town, and read-only where they
// say so.
import { describe, it, expect } from "vitest";
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { agentCall, alarmAt, call, createTown, DEBUG, dump, points, seedAgent, sql, townStub } from "./helpers.mjs";

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
    await agentCall("POST", town, "agent-1", "status", { message: "writing the tests" });
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

    // An event that failed once waits for its retry, and the status says until when.
    const retryAt = Date.now() + 60_000;
    await sql(town, "INSERT INTO town_events (event_id, event_type, created_at, retry_count, last_error, next_attempt_at) VALUES ('ev-retry', 'agent_done', ?, 1, 'sql: boom', ?)", new Date().toISOString(), retryAt);
    const status = await dbg("GET", `/debug/towns/${town}/status`);
    expect(status.status).toBe(200);
    expect(status.json.event_retries).toEqual([
      { event_id: "ev-retry", event_type: "agent_done", retry_count: 1, next_attempt_at: new Date(retryAt).toISOString(), last_error: "sql: boom" },
    ]);
    expect(status.json.town_id).toBe(town);
    expect(status.json.alarm.next_fire_at).not.toBeNull();
    expect(status.json.alarm.interval_label).toMatch(/^(active|idle) \(/);
    expect(status.json.agents.total).toBe(1);
    expect(status.json.agent_meta[0]).toMatchObject({ agent_id: "agent-1", status_message: "writing the tests" });
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

describe("rehearsals change nothing", () => {
  /** A town with a rig, open work, a working agent and pending events. */
  async function populatedTown(town) {
    await createTown(town, "owner-r");
    const rig = await call("POST", `/api/towns/${town}/rigs`, {
      body: { rig_id: "r1", name: "app", git_url: "https://github.com/acme/app", default_branch: "main" },
    });
    expect(rig.status, rig.text).toBe(201);
    for (const title of ["Fix login", "Add search"]) {
      const b = await call("POST", `/api/towns/${town}/beads`, { body: { rig_id: "r1", title } });
      expect(b.status, b.text).toBe(201);
    }
    await seedAgent(town, `${town}-pc`, { rig: "r1", status: "working" });
    const done = await agentCall("POST", town, `${town}-pc`, "completed", { status: "failed", reason: "crash" });
    expect(done.status, done.text).toBe(200);
  }

  async function outboundFor(town) {
    const res = await fetch(`${env.CONTAINER_URL}/__control/requests?path_prefix=/agents/`);
    const all = await res.json();
    return (all.requests ?? all).filter((r) => (r.body ?? "").includes(town) || r.path.includes(town));
  }

  it("the DO's SQL refuses SAVEPOINT, so rehearsals roll back through transactionSync", async () => {
    const town = "t-savepoint";
    await createTown(town);
    await expect(
      runInDurableObject(townStub(town), (_i, state) => state.storage.sql.exec("SAVEPOINT rehearsal")),
    ).rejects.toThrow(/SAVEPOINT|transaction/i);
  });

  it("a dry run drains and reconciles on a throwaway state", async () => {
    const town = "t-dry-run";
    await populatedTown(town);
    const before = { dump: await dump(town), alarm: await alarmAt(town), points: (await points(town)).length, out: (await outboundFor(town)).length };
    const res = await dbg("POST", `/debug/towns/${town}/reconcile-dry-run`);
    expect(res.status, res.text).toBe(200);
    expect(res.json.metrics.events_drained).toBe(3);
    expect(res.json.metrics.pending_event_count).toBe(0);
    const types = res.json.actions.map((a) => a.type);
    expect(types).toContain("dispatch_agent");
    expect(res.json.metrics.actions_emitted).toBe(types.length);
    expect(res.json.side_effects_not_run.length).toBeGreaterThan(0);
    expect(res.json.state.non_terminal_beads.some((b) => b.status === "in_progress")).toBe(true);
    expect(await dump(town)).toEqual(before.dump);
    expect(await alarmAt(town)).toBe(before.alarm);
    expect((await points(town)).length).toBe(before.points);
    expect((await outboundFor(town)).length).toBe(before.out);
  });

  it("a replay re-applies a window of events on a throwaway state", async () => {
    const town = "t-replay";
    await populatedTown(town);
    await runDurableObjectAlarm(townStub(town));
    const before = { dump: await dump(town), alarm: await alarmAt(town), points: (await points(town)).length, out: (await outboundFor(town)).length };
    const from = "2000-01-01T00:00:00.000Z";
    const to = "2100-01-01T00:00:00.000Z";
    const res = await dbg("POST", `/debug/towns/${town}/replay-events`, { body: { from, to } });
    expect(res.status, res.text).toBe(200);
    const [{ n }] = await sql(town, "SELECT COUNT(*) AS n FROM town_events");
    expect(n).toBeGreaterThanOrEqual(3);
    expect(res.json.events_replayed).toBe(n);
    expect(res.json.caveat).toMatch(/approximate/);
    expect(Array.isArray(res.json.state.agents)).toBe(true);
    expect(await dump(town)).toEqual(before.dump);
    expect(await alarmAt(town)).toBe(before.alarm);
    expect((await points(town)).length).toBe(before.points);
    expect((await outboundFor(town)).length).toBe(before.out);

    for (const [body, field] of [[{ to }, "from"], [{ from }, "to"], [{ from: "yesterday", to }, "from"], [{ from: to, to: from }, "from"], [{ from: 1, to }, "from"]]) {
      const bad = await dbg("POST", `/debug/towns/${town}/replay-events`, { body });
      expect(bad.status, JSON.stringify(body)).toBe(400);
      expect(bad.json.error.message).toContain(field);
    }
    expect(await dump(town)).toEqual(before.dump);
  });
});

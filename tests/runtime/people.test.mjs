// The people routes of issue 19 in workerd: a message to the mayor (kept as mail, pushed by the
// next tick through the mayor-notification path: started when not alive, messaged when it is),
// the escalations list with its cursor, acknowledgement, and re-escalation after 4 hours on the
// town's clock (an acknowledged escalation is left alone).
import { describe, it, expect } from "vitest";
import { env } from "cloudflare:test";
import { addRig, advance, call, containerToken, createTown, seedAgent, sql, tick } from "./helpers.mjs";

const run = `people-${Date.now()}`;

/** The requests the container stand-in recorded for paths starting with `prefix`. */
async function recorded(prefix) {
  const res = await fetch(`${env.CONTAINER_URL}/__control/requests?path_prefix=${encodeURIComponent(prefix)}`);
  return res.json();
}

async function newTown(name) {
  const town = `${run}-${name}`;
  await createTown(town, "user-1");
  await addRig(town, "web", `acme/${town}`);
  return town;
}

async function escalate(town, agent, title, priority) {
  const token = await containerToken(town);
  const res = await call("POST", `/api/towns/${town}/rigs/web/escalations`, {
    token, headers: { "x-gastown-agent-id": agent }, body: { title, body: "details", priority },
  });
  expect(res.status, res.text).toBe(201);
  return res.json.data.bead_id ?? res.json.data.escalation_id ?? res.json.data.id;
}

describe("the mayor and escalations through the people routes", () => {
  it("a mayor message starts the mayor with it, and a later one is a message to the live mayor", async () => {
    const town = await newTown("mayor");
    const first = await call("POST", `/api/towns/${town}/mayor/message`, { body: { message: "Plan the login rework" } });
    expect(first.status, first.text).toBe(202);
    expect(first.json).toMatchObject({ queued: true });
    const mayor = first.json.mayor_agent_id;
    await tick(town);
    const starts = (await recorded("/agents/start")).filter((r) => r.json?.townId === town);
    expect(starts.length).toBe(1);
    expect(starts[0].json.role).toBe("mayor");
    expect(starts[0].json.prompt).toContain("Plan the login rework");
    const [pending] = await sql(town, "SELECT COUNT(*) AS n FROM mail WHERE delivered_at IS NULL");
    expect(pending.n).toBe(0);

    const second = await call("POST", `/api/towns/${town}/mayor/message`, { body: { message: "Also the signup page" } });
    expect(second.status).toBe(202);
    await tick(town);
    const messages = await recorded(`/agents/${mayor}/message`);
    expect(messages.some((m) => m.json?.prompt?.includes("Also the signup page"))).toBe(true);
    expect((await recorded("/agents/start")).filter((r) => r.json?.townId === town).length).toBe(1);
  });

  it("refuses an empty or malformed mayor message and changes nothing", async () => {
    const town = await newTown("mayor-bad");
    for (const body of [{ message: "  " }, { message: 3 }, {}, { message: "hi", extra: 1 }]) {
      const res = await call("POST", `/api/towns/${town}/mayor/message`, { body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.json.error.code).toBeTruthy();
    }
    const [mail] = await sql(town, "SELECT COUNT(*) AS n FROM mail");
    expect(mail.n).toBe(0);
    const [agents] = await sql(town, "SELECT COUNT(*) AS n FROM agent_metadata");
    expect(agents.n).toBe(0);
  });

  it("lists escalations a page at a time, acknowledges one, and re-escalates only the other", async () => {
    const town = await newTown("esc");
    await seedAgent(town, "p1", { rig: "web" });
    const a = await escalate(town, "p1", "Tests fail on main", "medium");
    const b = await escalate(town, "p1", "Secrets in the repo", "medium");

    const page1 = await call("GET", `/api/towns/${town}/escalations?limit=1`);
    expect(page1.status, page1.text).toBe(200);
    expect(page1.json.escalations.length).toBe(1);
    expect(page1.json.next_cursor).toBeTruthy();
    const page2 = await call("GET", `/api/towns/${town}/escalations?limit=1&cursor=${encodeURIComponent(page1.json.next_cursor)}`);
    expect(page2.json.escalations.length).toBe(1);
    expect(page2.json.next_cursor).toBeNull();
    const ids = [page1.json.escalations[0].escalation_id, page2.json.escalations[0].escalation_id];
    expect(ids.sort()).toEqual([a, b].sort());
    for (const bad of ["limit=0", "limit=x", "cursor=nope", "unacknowledged=maybe"]) {
      const res = await call("GET", `/api/towns/${town}/escalations?${bad}`);
      expect(res.status, bad).toBe(400);
    }

    const ack = await call("POST", `/api/towns/${town}/escalations/${b}/acknowledge`);
    expect(ack.status, ack.text).toBe(200);
    expect(ack.json.escalation).toMatchObject({ escalation_id: b, acknowledged: true });
    expect((await call("POST", `/api/towns/${town}/escalations/nope/acknowledge`)).status).toBe(404);
    const open = await call("GET", `/api/towns/${town}/escalations?unacknowledged=true`);
    expect(open.json.escalations.map((e) => e.escalation_id)).toEqual([a]);

    await advance(town, 4 * 3_600_000 + 1_000);
    await tick(town);
    const after = Object.fromEntries(
      (await call("GET", `/api/towns/${town}/escalations`)).json.escalations.map((e) => [e.escalation_id, e]),
    );
    expect(after[a]).toMatchObject({ severity: "high", re_escalation_count: 1 });
    expect(after[b]).toMatchObject({ severity: "medium", re_escalation_count: 0 });
    // The mayor was told: started with the re-escalation as its prompt.
    const starts = (await recorded("/agents/start")).filter((r) => r.json?.townId === town && r.json.role === "mayor");
    expect(starts.length).toBe(1);
    expect(starts[0].json.prompt).toContain("[Re-Escalation:high]");
  });
});

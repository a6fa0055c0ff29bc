// The Town against a stand-in of the real container and agent plugin (tools/sim/plugin-client.mjs): a
// bead from dispatch to closed, heartbeats of every agent, mail, nudges, a drained and recovered
// container, a refreshed token; then the refusals the real callers can meet. The stand-in
// throws on any answer without a boolean `success`, as the plugin does, so every call below
// also checks the envelope.
import { describe, it, expect } from "vitest";
import { env, SELF } from "cloudflare:test";
import { addRig, agentToken, call, containerToken, createTown, DEBUG, seedAgent, signJwt, sql, tick } from "./helpers.mjs";
import { Container, GastownApiError } from "./plugin-client.mjs";

const run = `pc-${Date.now()}`;

/** The start requests the container stand-in recorded for `town`, oldest first. */
async function startsOf(town) {
  const res = await fetch(`${env.CONTAINER_URL}/__control/requests?path_prefix=/agents/start`);
  return (await res.json()).filter((r) => r.json?.townId === town);
}

const idOf = (start) => start.json.agentId;
const rigOf = (start) => start.json.rigId;

async function beadOf(town, id) {
  return (await call("GET", `/api/towns/${town}/beads/${id}`)).json.bead;
}

async function newTown(name) {
  const town = `${run}-${name}`;
  await createTown(town, "user-1");
  await addRig(town, "web", `acme/${town}`);
  return town;
}

describe("the plugin and the container against the Town", () => {
  it("walk a bead from dispatch to closed, with heartbeats, prime, status, checkpoint and mail", async () => {
    const town = await newTown("walk");
    const slung = await call("POST", `/api/towns/${town}/beads`, { body: { rig_id: "web", title: "Fix the login" } });
    await tick(town);
    const [start] = await startsOf(town);
    expect(start).toBeTruthy();
    const container = await Container.fromStart(start, "box-1");
    const polecatId = idOf(start);
    const polecat = container.plugin(polecatId, rigOf(start));

    expect(await container.heartbeat(polecatId, rigOf(start))).toEqual({ heartbeat: true });
    const primed = await polecat.prime();
    expect(primed.agent.agent_id).toBe(polecatId);
    expect(primed.hooked_bead.bead_id).toBe(slung.json.bead.bead_id);
    expect(primed.undelivered_mail).toEqual([]);
    expect(await polecat.status("reading the login form")).toEqual({ updated: true });
    expect(await polecat.checkpoint({ step: 2 })).toEqual({ checkpointed: true });
    const [meta] = await sql(town, "SELECT agent_status_message, checkpoint FROM agent_metadata WHERE bead_id = ?", polecatId);
    expect(meta).toEqual({ agent_status_message: "reading the login form", checkpoint: '{"step":2}' });
    expect((await polecat.getBead(slung.json.bead.bead_id)).title).toBe("Fix the login");
    expect(await container.agentEvent(polecatId, rigOf(start), "tool_call", { tool: "bash" })).toEqual({ recorded: true });
    const shown = await call("GET", `/debug/towns/${town}/beads/${polecatId}`, { token: DEBUG });
    expect(shown.json.agent_events).toEqual([{ event_type: "tool_call", data: { tool: "bash" }, created_at: expect.any(String) }]);
    await expect(container.agentEvent("nobody", rigOf(start), "tool_call", {})).rejects.toThrow(/404/);
    expect(await polecat.done(start.json.branch, { summary: "wired the button" })).toEqual({ done: true });

    await tick(town);
    const starts = await startsOf(town);
    expect(starts).toHaveLength(2);
    const refineryId = idOf(starts[1]);
    const refinery = container.plugin(refineryId, rigOf(starts[1]));
    for (const s of starts) expect(await container.heartbeat(idOf(s), rigOf(s))).toEqual({ heartbeat: true });
    const agents = (await call("GET", `/api/towns/${town}/agents`)).json.agents;
    for (const s of starts) expect(agents.find((a) => a.agent_id === idOf(s)).last_activity_at).toBeTruthy();

    const sent = await polecat.sendMail(refineryId, "context", "the button is in form.tsx");
    expect(sent).toMatchObject({ from_agent_id: polecatId, to_agent_id: refineryId, subject: "context", delivered_at: null });
    expect((await refinery.prime()).undelivered_mail.map((m) => m.mail_id)).toEqual([sent.mail_id]);
    const mail = await refinery.checkMail();
    expect(mail.map((m) => m.body)).toEqual(["the button is in form.tsx"]);
    expect(mail[0].delivered_at).toBeTruthy();
    expect(await refinery.checkMail()).toEqual([]);
    expect((await refinery.prime()).undelivered_mail).toEqual([]);
    const history = await sql(town, "SELECT event_type FROM bead_events WHERE bead_id = ? AND event_type LIKE 'mail_%' ORDER BY rowid", refineryId);
    expect(history.map((h) => h.event_type)).toEqual(["mail_sent", "mail_delivered"]);

    const nudged = await refinery.nudge(polecatId, "look at the review");
    const pending = await container.pendingNudges(polecatId, rigOf(start));
    expect(pending).toEqual([{ nudge_id: nudged.nudge_id, message: "look at the review", mode: "wait-idle", priority: "normal", source: "agent" }]);
    expect(await container.nudgeDelivered(polecatId, rigOf(start), nudged.nudge_id)).toEqual({ marked: true });
    expect(await container.pendingNudges(polecatId, rigOf(start))).toEqual([]);

    expect(await refinery.done(start.json.branch, { summary: "merged" })).toEqual({ done: true });
    expect(await container.completed(polecatId, rigOf(start), "completed")).toEqual({ completed: true });
    await tick(town);
    expect((await beadOf(town, slung.json.bead.bead_id)).status).toBe("closed");
  });

  it("the refinery requests changes on its hooked MR and escalates", async () => {
    const town = await newTown("rework");
    await call("POST", `/api/towns/${town}/beads`, { body: { rig_id: "web", title: "Add search" } });
    await tick(town);
    const [start] = await startsOf(town);
    const container = await Container.fromStart(start);
    await container.plugin(idOf(start), rigOf(start)).done(start.json.branch);
    await tick(town);
    const review = (await startsOf(town))[1];
    const refinery = container.plugin(idOf(review), rigOf(review));
    const { rework_bead_id } = await refinery.requestChanges("handle empty queries", ["src/search.rs"]);
    expect((await beadOf(town, rework_bead_id)).labels).toEqual(["gt:rework"]);
    const escalation = await refinery.escalate("CI is red on main", "nothing merges", "high");
    expect(escalation).toMatchObject({ type: "escalation", priority: "high", rig_id: "web", created_by: idOf(review) });
  });

  it("the triage agent resolves a request; another agent may not", async () => {
    const town = await newTown("triage");
    const now = new Date().toISOString();
    const bead = (id, labels, createdBy, metadata = {}, status = "open", assignee = null) =>
      sql(town, "INSERT INTO beads (bead_id, type, status, title, rig_id, labels, metadata, created_by, assignee_agent_bead_id, created_at, updated_at) VALUES (?, 'issue', ?, ?, 'web', ?, ?, ?, ?, ?, ?)",
        id, status, id, JSON.stringify(labels), JSON.stringify(metadata), createdBy, assignee, now, now);
    await bead("batch", ["gt:triage"], "patrol");
    await bead("b1", [], "api", {}, "in_progress", "p1");
    await bead("q1", ["gt:triage-request"], "system", { triage_type: "stuck_agent", agent_bead_id: "p1", hooked_bead_id: "b1" }, "open", "p1");
    await seedAgent(town, "t1", { rig: "web", status: "working", hook: "batch" });
    await seedAgent(town, "p1", { rig: "web", status: "working", hook: "b1" });
    const container = new Container(town, await containerToken(town));
    await expect(container.plugin("p1", "web").resolveTriage("q1", "DISCARD", "no")).rejects.toThrow(/403/);
    const resolved = await container.plugin("t1", "web").resolveTriage("q1", "nudge", "try the other API");
    expect(resolved).toMatchObject({ bead_id: "q1", status: "closed" });
    expect(resolved.metadata).toMatchObject({ resolution: "NUDGE", resolution_notes: "try the other API" });
    expect((await container.pendingNudges("p1", "web")).map((n) => n.message)).toEqual(["try the other API"]);
  });

  it("a drained container recovers: eviction, the nonce, a heartbeat from a new instance", async () => {
    const town = await newTown("drain");
    await call("POST", `/api/towns/${town}/beads`, { body: { rig_id: "web", title: "Tidy" } });
    await tick(town);
    const [start] = await startsOf(town);
    const old = await Container.fromStart(start, "box-1");
    await old.heartbeat(idOf(start), rigOf(start));
    const { acknowledged, drainNonce } = await old.eviction();
    expect(acknowledged).toBe(true);
    expect(await old.drainStatus()).toEqual({ draining: true, drainNonce });
    expect(await old.heartbeat(idOf(start), rigOf(start))).toEqual({ heartbeat: true, drainNonce });
    const replacement = new Container(town, old.token, "box-2");
    expect(await replacement.heartbeat(idOf(start), rigOf(start))).toEqual({ heartbeat: true });
    expect(await replacement.drainStatus()).toEqual({ draining: false, drainNonce: null });

    // The other way out: container-ready with the nonce (a wrong one changes nothing).
    const second = await replacement.eviction();
    expect(await replacement.ready("not-the-nonce")).toEqual({ cleared: false });
    expect((await replacement.drainStatus()).draining).toBe(true);
    expect(await replacement.ready(second.drainNonce)).toEqual({ cleared: true });
    expect((await replacement.drainStatus()).draining).toBe(false);
  });

  it("an expired token is refreshed once and the call retried", async () => {
    const town = await newTown("refresh");
    await call("POST", `/api/towns/${town}/beads`, { body: { rig_id: "web", title: "Refresh" } });
    await tick(town);
    const [start] = await startsOf(town);
    const expired = await containerToken(town, { at: Date.now() - 9 * 3_600_000 });
    const container = new Container(town, expired);
    expect(await container.heartbeat(idOf(start), rigOf(start))).toEqual({ heartbeat: true });
    expect(container.refreshes).toBe(1);
    expect(container.token).not.toBe(expired);
    const mayor = await container.request("GET", "/mayor-id");
    expect(mayor).toEqual({ agentId: null });
  });
});

describe("what the Town refuses", () => {
  const path = (town, agent = "nobody") => `/api/towns/${town}/rigs/web/agents/${agent}/heartbeat`;
  const refused = async (res, status, message) => {
    expect(res.status, res.text).toBe(status);
    expect(res.json).toMatchObject({ success: false, error: message });
  };

  it("no token, a bad signature, an expired token, alg none, another town's token", async () => {
    const town = await newTown("refusals");
    await refused(await call("POST", path(town), { token: null, body: {} }), 401, "Authentication required");
    const forged = await containerToken(town, { secret: "not-the-secret" });
    await refused(await call("POST", path(town), { token: forged, body: {} }), 401, "Invalid token signature");
    const expired = await containerToken(town, { at: Date.now() - 9 * 3_600_000 });
    await refused(await call("POST", path(town), { token: expired, body: {} }), 401, "Token expired");
    const good = await containerToken(town);
    const [header, payload] = good.split(".");
    const none = `${btoa(JSON.stringify({ alg: "none", typ: "JWT" })).replace(/=+$/, "")}.${payload}.`;
    await refused(await call("POST", path(town), { token: none, body: {} }), 401, "Invalid token signature");
    const hs512 = await signJwt({ townId: town, userId: "u", scope: "container" }, { header: { alg: "HS512", typ: "JWT" } });
    await refused(await call("POST", path(town), { token: hs512, body: {} }), 401, "Invalid token signature");
    expect(header).toBeTruthy();
    const other = await containerToken(`${town}-elsewhere`);
    await refused(await call("POST", path(town), { token: other, body: {} }), 403, "Cross-town access denied");
    const agent = await agentToken(town, "pc-1", "web");
    await refused(await call("POST", path(town, "pc-2"), { token: agent, body: {} }), 403, "Token agentId does not match route");
    // The plugin throws on these refusals (success: false) rather than returning.
    await expect(new Container(town, other).heartbeat("pc-1", "web")).rejects.toThrow(GastownApiError);
  });

  it("a body over 256 KiB is refused with 413 before it is read", async () => {
    const town = await newTown("large");
    const token = await containerToken(town);
    const url = `https://town.test${path(town)}`;
    // Declared too large: refused by its Content-Length, though the body never ends.
    const neverEnds = new ReadableStream({ pull: () => new Promise(() => {}) });
    const declared = await SELF.fetch(url, {
      method: "POST", body: neverEnds, duplex: "half",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "content-length": String(300 * 1024) },
    });
    expect(declared.status).toBe(413);
    expect((await declared.json()).success).toBe(false);
    // Undeclared: counted while reading, refused once past the limit though the body never ends.
    let sent = 0;
    const chunk = new Uint8Array(64 * 1024).fill(32);
    const streamed = new ReadableStream({
      pull(controller) {
        if (sent > 300 * 1024) return new Promise(() => {});
        sent += chunk.length;
        controller.enqueue(chunk);
      },
    });
    const counted = await SELF.fetch(url, {
      method: "POST", body: streamed, duplex: "half",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    });
    expect(counted.status).toBe(413);
  });
});

// The Town API and the container-facing routes of API.md in workerd: per route one success case
// and, for each route with a body, malformed JSON, a missing field, a wrong type, an unknown id
// and a wrong or missing token — each asserting the status, the error code (in the route's answer
// shape) and that the town's state did not change.
import { describe, it, expect } from "vitest";
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { agentCall, agentToken, call, containerToken, control, createTown, dump, seedAgent, sql, townStub } from "./helpers.mjs";

let towns = 0;
/** A fresh town (own Durable Object) with rig `r1`, so tests never share state. */
async function freshTown({ rig = true, config } = {}) {
  const town = `town-api-${++towns}-${Date.now()}`;
  await createTown(town, "owner-1", config);
  if (rig) {
    const res = await call("POST", `/api/towns/${town}/rigs`, {
      body: { rig_id: "r1", name: "web", git_url: "https://github.com/o/web.git", default_branch: "trunk" },
    });
    expect(res.status).toBe(201);
  }
  return town;
}

/** Runs `request` and asserts it changed nothing in the town's SQLite; returns its answer. */
async function unchanged(town, request) {
  // No alarm may fire between the two dumps.
  await runInDurableObject(townStub(town), (_i, state) => state.storage.deleteAlarm());
  const before = await dump(town);
  const res = await request();
  expect(await dump(town)).toEqual(before);
  return res;
}

function expectError(res, status, code) {
  expect(res.status, res.text).toBe(status);
  expect(res.json.error.code).toBe(code);
  expect(typeof res.json.error.message).toBe("string");
}

/** A refusal in the container's envelope: `{success: false, error: <message>, code}`. */
function expectFailure(res, status, code) {
  expect(res.status, res.text).toBe(status);
  expect(res.json).toMatchObject({ success: false, code });
  expect(typeof res.json.error).toBe("string");
}

/** The envelope's malformed/missing/wrong-type refusals (unknown keys are not refused). */
async function refusesBadEnvelopeBodies(town, method, path, { missing, wrongType, token }) {
  const send = (body) => call(method, path, { body, token });
  expectFailure(await unchanged(town, () => send("{not json")), 400, "malformed_json");
  expectFailure(await unchanged(town, () => send("[1,2]")), 400, "malformed_json");
  const [missingField, missingBody] = missing;
  const m = await unchanged(town, () => send(missingBody));
  expectFailure(m, 400, "invalid_field");
  expect(m.json.error).toContain(missingField);
  const [wrongField, wrongBody] = wrongType;
  const w = await unchanged(town, () => send(wrongBody));
  expectFailure(w, 400, "invalid_field");
  expect(w.json.error).toContain(wrongField);
}

/** No token and a bad signature: 401 in the envelope, nothing changed. */
async function refusesJwts(town, method, path, body, goodToken) {
  const none = await unchanged(town, () => call(method, path, { body, token: null }));
  expectFailure(none, 401, "unauthorized");
  expect(none.json.error).toBe("Authentication required");
  const wrong = await unchanged(town, () => call(method, path, { body, token: `${goodToken}x` }));
  expectFailure(wrong, 401, "unauthorized");
  expect(wrong.json.error).toBe("Invalid token signature");
}

/** The four body failures every route with a body must refuse without changing anything. */
async function refusesBadBodies(town, method, path, { missing, wrongType, token }) {
  const send = (body) => call(method, path, { body, token });
  const malformed = await unchanged(town, () => send("{not json"));
  expectError(malformed, 400, "malformed_json");
  const notObject = await unchanged(town, () => send("[1,2]"));
  expectError(notObject, 400, "malformed_json");
  const [missingField, missingBody] = missing;
  const m = await unchanged(town, () => send(missingBody));
  expectError(m, 400, "invalid_field");
  expect(m.json.error.message).toContain(missingField);
  const [wrongField, wrongBody] = wrongType;
  const w = await unchanged(town, () => send(wrongBody));
  expectError(w, 400, "invalid_field");
  expect(w.json.error.message).toContain(wrongField);
}

async function refusesTokens(town, method, path, body, goodToken) {
  const none = await unchanged(town, () => call(method, path, { body, token: null }));
  expectError(none, 401, "unauthorized");
  const wrong = await unchanged(town, () => call(method, path, { body, token: `${goodToken}x` }));
  expectError(wrong, 401, "unauthorized");
}

async function pendingEvents(town) {
  return sql(town, "SELECT event_type, agent_id, bead_id, payload FROM town_events WHERE processed_at IS NULL ORDER BY created_at, rowid");
}

async function createBead(town, body = { rig_id: "r1", title: "Fix the login" }) {
  const res = await call("POST", `/api/towns/${town}/beads`, { body });
  expect(res.status, res.text).toBe(201);
  return res.json.bead;
}

describe("towns", () => {
  it("PUT creates then updates, refusing bad bodies and tokens", async () => {
    const town = `town-api-put-${Date.now()}`;
    const created = await call("PUT", `/api/towns/${town}`, { body: { owner_user_id: "u1" } });
    expect(created.status).toBe(201);
    expect(created.json.town_id).toBe(town);
    const updated = await call("PUT", `/api/towns/${town}`, { body: { owner_user_id: "u2", config: { merge_strategy: "pr" } } });
    expect(updated.status).toBe(200);
    expect(updated.json.owner_user_id).toBe("u2");
    expect(updated.json.config.merge_strategy).toBe("pr");
    await refusesBadBodies(town, "PUT", `/api/towns/${town}`, {
      missing: ["owner_user_id", {}],
      wrongType: ["owner_user_id", { owner_user_id: 7 }],
    });
    await refusesTokens(town, "PUT", `/api/towns/${town}`, { owner_user_id: "u3" }, "test-api-token");
  });

  it("GET shows the town with its config and counts; unknown towns are 404", async () => {
    const town = await freshTown();
    await createBead(town);
    const res = await call("GET", `/api/towns/${town}`);
    expect(res.status).toBe(200);
    expect(res.json.counts).toMatchObject({ rigs: 1, agents: 0, beads: { open: 1 }, pending_events: 1 });
    expectError(await call("GET", `/api/towns/nowhere-${Date.now()}`), 404, "not_found");
  });

  it("PATCH config merges a validated partial config", async () => {
    const town = await freshTown();
    const path = `/api/towns/${town}/config`;
    const res = await call("PATCH", path, { body: { refinery: { code_review: false }, staged_convoys_default: true } });
    expect(res.status, res.text).toBe(200);
    expect(res.json.config.refinery.code_review).toBe(false);
    expect(res.json.config.refinery.auto_merge).toBe(true);
    expect(res.json.config.staged_convoys_default).toBe(true);
    const unknownKey = await unchanged(town, () => call("PATCH", path, { body: { merge_strategi: "pr" } }));
    expectError(unknownKey, 400, "invalid_field");
    expect(unknownKey.json.error.message).toContain("merge_strategi");
    const range = await unchanged(town, () => call("PATCH", path, { body: { alarm_interval_active: 1 } }));
    expectError(range, 400, "invalid_field");
    expect(range.json.error.message).toContain("alarm_interval_active");
    const wrongType = await unchanged(town, () => call("PATCH", path, { body: { refinery: { auto_merge: "yes" } } }));
    expectError(wrongType, 400, "invalid_field");
    expectError(await unchanged(town, () => call("PATCH", path, { body: "{oops" })), 400, "malformed_json");
    expectError(await call("PATCH", `/api/towns/nowhere-${Date.now()}/config`, { body: {} }), 404, "not_found");
    await refusesTokens(town, "PATCH", path, { staged_convoys_default: false }, "test-api-token");
  });

  it("never shows or stores a secret of the config, even under an Idempotency-Key", async () => {
    const town = await freshTown();
    const secrets = { git_auth: { github_token: "ghp_SECRET1" }, github_cli_pat: "SECRET2", kilocode_token: "SECRET3", env_vars: { API_KEY: "SECRET4" } };
    const res = await call("PATCH", `/api/towns/${town}/config`, { body: secrets, headers: { "idempotency-key": "secret-patch" } });
    expect(res.status, res.text).toBe(200);
    expect(res.json.config).toMatchObject({ git_auth: { github_token: "***" }, github_cli_pat: "***", kilocode_token: "***", env_vars: { API_KEY: "***" } });
    for (const answer of [res, await call("GET", `/api/towns/${town}`), await call("PUT", `/api/towns/${town}`, { body: { owner_user_id: "owner-1" } })]) {
      expect(answer.text).not.toMatch(/SECRET/);
    }
    const stored = await sql(town, "SELECT body FROM idempotency_keys");
    expect(stored.length).toBe(1);
    expect(JSON.stringify(stored)).not.toMatch(/SECRET/);
  });

  it("DELETE removes a town with everything in it and stops its working agents", async () => {
    const town = await freshTown();
    const bead = await createBead(town);
    const agent = `doomed-${Date.now()}`;
    await seedAgent(town, agent, { rig: "r1", hook: bead.bead_id, status: "working" });
    await sql(town, "UPDATE beads SET assignee_agent_bead_id = ? WHERE bead_id = ?", agent, bead.bead_id);
    const res = await call("DELETE", `/api/towns/${town}`);
    expect(res.status, res.text).toBe(204);
    const recorded = await control(env.CONTAINER_URL, "GET", `requests?path_prefix=${encodeURIComponent(`/agents/${agent}/`)}`);
    expect(recorded.map((r) => `${r.method} ${r.path}`)).toEqual([`POST /agents/${agent}/stop`]);
    expectError(await call("GET", `/api/towns/${town}`), 404, "not_found");
    expectError(await call("DELETE", `/api/towns/${town}`), 404, "not_found");
  });
});

describe("rigs", () => {
  it("POST registers a rig and GET lists them", async () => {
    const town = await freshTown({ rig: false });
    const path = `/api/towns/${town}/rigs`;
    const res = await call("POST", path, { body: { name: "api", git_url: "https://github.com/o/api.git" } });
    expect(res.status, res.text).toBe(201);
    expect(res.json.rig).toMatchObject({ name: "api", default_branch: "main" });
    expect(res.json.rig.rig_id).toBeTruthy();
    const list = await call("GET", path);
    expect(list.status).toBe(200);
    expect(list.json.rigs.map((r) => r.name)).toEqual(["api"]);
  });

  it("POST refuses bad bodies, duplicates, unknown towns and bad tokens", async () => {
    const town = await freshTown();
    const path = `/api/towns/${town}/rigs`;
    await refusesBadBodies(town, "POST", path, {
      missing: ["git_url", { name: "x" }],
      wrongType: ["name", { name: ["x"], git_url: "g" }],
    });
    const url = "https://github.com/o/x.git";
    const dup = await unchanged(town, () => call("POST", path, { body: { rig_id: "r1", name: "x", git_url: url } }));
    expectError(dup, 409, "conflict");
    const badId = await unchanged(town, () => call("POST", path, { body: { rig_id: "a b", name: "x", git_url: url } }));
    expectError(badId, 400, "invalid_field");
    // What the container would hand to git: only https and ssh URLs, only git's branch names.
    for (const [field, body] of [
      ["git_url", { name: "x", git_url: "--upload-pack=touch /tmp/x" }],
      ["git_url", { name: "x", git_url: "http://github.com/o/x.git" }],
      ["git_url", { name: "x", git_url: "g" }],
      ["default_branch", { name: "x", git_url: url, default_branch: "-b; rm -rf /" }],
      ["default_branch", { name: "x", git_url: url, default_branch: "a..b" }],
    ]) {
      const res = await unchanged(town, () => call("POST", path, { body }));
      expectError(res, 400, "invalid_field");
      expect(res.json.error.message).toContain(field);
    }
    expect((await call("POST", path, { body: { name: "ssh", git_url: "git@github.com:o/x.git", default_branch: "release/1.2" } })).status).toBe(201);
    expectError(await call("POST", `/api/towns/nowhere-${Date.now()}/rigs`, { body: { name: "x", git_url: url } }), 404, "not_found");
    await refusesTokens(town, "POST", path, { name: "x", git_url: url }, "test-api-token");
  });
});

describe("beads", () => {
  it("POST files an open issue and records bead_created", async () => {
    const town = await freshTown();
    const bead = await createBead(town, { rig_id: "r1", title: "Add search", body: "details", priority: "high", labels: ["ui"] });
    expect(bead).toMatchObject({
      type: "issue", status: "open", title: "Add search", body: "details", rig_id: "r1",
      priority: "high", labels: ["ui"], assignee_agent_bead_id: null,
    });
    const events = await pendingEvents(town);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ event_type: "bead_created", bead_id: bead.bead_id });
    expect(JSON.parse(events[0].payload)).toEqual({ bead_type: "issue", rig_id: "r1", has_blockers: false });
  });

  it("POST refuses bad bodies, an unknown rig or town and bad tokens", async () => {
    const town = await freshTown();
    const path = `/api/towns/${town}/beads`;
    await refusesBadBodies(town, "POST", path, {
      missing: ["title", { rig_id: "r1" }],
      wrongType: ["priority", { rig_id: "r1", title: "t", priority: "urgent" }],
    });
    const labels = await unchanged(town, () => call("POST", path, { body: { rig_id: "r1", title: "t", labels: "x" } }));
    expectError(labels, 400, "invalid_field");
    expect(labels.json.error.message).toContain("labels");
    const rig = await unchanged(town, () => call("POST", path, { body: { rig_id: "nope", title: "t" } }));
    expectError(rig, 404, "not_found");
    expect(rig.json.error.message).toContain("rig nope");
    expectError(await call("POST", `/api/towns/nowhere-${Date.now()}/beads`, { body: { rig_id: "r1", title: "t" } }), 404, "not_found");
    await refusesTokens(town, "POST", path, { rig_id: "r1", title: "t" }, "test-api-token");
  });

  it("GET lists beads filtered by status, type and rig", async () => {
    const town = await freshTown();
    const a = await createBead(town, { rig_id: "r1", title: "a" });
    const b = await createBead(town, { rig_id: "r1", title: "b" });
    await call("PATCH", `/api/towns/${town}/beads/${b.bead_id}`, { body: { status: "closed" } });
    const open = await call("GET", `/api/towns/${town}/beads?status=open&type=issue&rig_id=r1`);
    expect(open.status).toBe(200);
    expect(open.json.beads.map((x) => x.bead_id)).toEqual([a.bead_id]);
    const all = await call("GET", `/api/towns/${town}/beads`);
    expect(all.json.beads).toHaveLength(2);
    expectError(await call("GET", `/api/towns/${town}/beads?status=done`), 400, "invalid_field");
    // Query values are form-decoded: percent escapes, and `+` for a space.
    const escaped = await call("GET", `/api/towns/${town}/beads?status=%6Fpen&rig_id=r%31`);
    expect(escaped.json.beads.map((x) => x.bead_id)).toEqual([a.bead_id]);
    expect((await call("GET", `/api/towns/${town}/beads?rig_id=r+1`)).json.beads).toEqual([]);
  });

  it("GET one bead shows its dependencies and history; unknown beads are 404", async () => {
    const town = await freshTown();
    const bead = await createBead(town);
    const res = await call("GET", `/api/towns/${town}/beads/${bead.bead_id}`);
    expect(res.status).toBe(200);
    expect(res.json.bead.bead_id).toBe(bead.bead_id);
    expect(res.json.dependencies).toEqual([]);
    expect(res.json.events.map((e) => e.event_type)).toEqual(["created"]);
    const missing = await call("GET", `/api/towns/${town}/beads/nope`);
    expectError(missing, 404, "not_found");
    expect(missing.json.error.message).toContain("bead nope");
  });

  it("PATCH cancels: bead_cancelled is recorded before the status write", async () => {
    const town = await freshTown();
    const bead = await createBead(town);
    const res = await call("PATCH", `/api/towns/${town}/beads/${bead.bead_id}`, { body: { status: "failed" } });
    expect(res.status, res.text).toBe(200);
    expect(res.json.bead.status).toBe("failed");
    const events = await pendingEvents(town);
    expect(events.map((e) => e.event_type)).toEqual(["bead_created", "bead_cancelled"]);
    expect(JSON.parse(events[1].payload)).toEqual({ cancel_status: "failed" });
    const [{ n }] = await sql(town, "SELECT COUNT(*) AS n FROM bead_events WHERE bead_id = ? AND event_type = 'status_changed'", bead.bead_id);
    expect(n).toBe(1);
  });

  it("PATCH refuses bad bodies, unknown or finished beads and bad tokens", async () => {
    const town = await freshTown();
    const bead = await createBead(town);
    const path = `/api/towns/${town}/beads/${bead.bead_id}`;
    await refusesBadBodies(town, "PATCH", path, {
      missing: ["status", {}],
      wrongType: ["status", { status: "open" }],
    });
    expectError(await unchanged(town, () => call("PATCH", `/api/towns/${town}/beads/nope`, { body: { status: "closed" } })), 404, "not_found");
    await call("PATCH", path, { body: { status: "closed" } });
    expectError(await unchanged(town, () => call("PATCH", path, { body: { status: "failed" } })), 409, "conflict");
    await refusesTokens(town, "PATCH", path, { status: "closed" }, "test-api-token");
  });
});

describe("convoys", () => {
  const body = (extra = {}) => ({
    title: "Ship search",
    rig_id: "r1",
    beads: [{ title: "index" }, { title: "api", depends_on: [0] }, { title: "ui", body: "make it nice", depends_on: [1] }],
    ...extra,
  });

  it("POST slings the convoy, its beads and one bead_created per bead", async () => {
    const town = await freshTown();
    const res = await call("POST", `/api/towns/${town}/convoys`, { body: body() });
    expect(res.status, res.text).toBe(201);
    const { convoy, bead_ids } = res.json;
    expect(bead_ids).toHaveLength(3);
    expect(convoy).toMatchObject({ title: "Ship search", status: "active", total_beads: 3, closed_beads: 0, staged: false, merge_mode: "review-then-land" });
    expect(convoy.feature_branch).toBe(`convoy/ship-search/${convoy.convoy_id.slice(0, 8)}/head`);
    expect(convoy.beads.map((b) => b.bead_id)).toEqual(bead_ids);
    const events = await pendingEvents(town);
    expect(events.map((e) => [e.event_type, e.bead_id])).toEqual(bead_ids.map((id) => ["bead_created", id]));
    const blocks = await sql(town, "SELECT bead_id, depends_on_bead_id FROM bead_dependencies WHERE dependency_type = 'blocks' ORDER BY rowid");
    expect(blocks).toEqual([
      { bead_id: bead_ids[1], depends_on_bead_id: bead_ids[0] },
      { bead_id: bead_ids[2], depends_on_bead_id: bead_ids[1] },
    ]);
  });

  it("POST refuses a dependency cycle with 422 and writes nothing", async () => {
    const town = await freshTown();
    const cycle = body({ beads: [{ title: "a", depends_on: [1] }, { title: "b", depends_on: [0] }] });
    const res = await unchanged(town, () => call("POST", `/api/towns/${town}/convoys`, { body: cycle }));
    expectError(res, 422, "dependency_cycle");
  });

  it("POST refuses bad bodies, unknown rigs and bad tokens", async () => {
    const town = await freshTown();
    const path = `/api/towns/${town}/convoys`;
    await refusesBadBodies(town, "POST", path, {
      missing: ["beads", { title: "t", rig_id: "r1" }],
      wrongType: ["beads[0].depends_on", body({ beads: [{ title: "a", depends_on: ["x"] }] })],
    });
    const range = await unchanged(town, () => call("POST", path, { body: body({ beads: [{ title: "a", depends_on: [4] }] }) }));
    expectError(range, 400, "invalid_field");
    expect(range.json.error.message).toContain("beads[0].depends_on");
    expectError(await unchanged(town, () => call("POST", path, { body: body({ rig_id: "nope" }) })), 404, "not_found");
    await refusesTokens(town, "POST", path, body(), "test-api-token");
  });

  it("start clears staged and records convoy_started; GET shows progress", async () => {
    const town = await freshTown();
    const res = await call("POST", `/api/towns/${town}/convoys`, { body: body({ staged: true }) });
    const id = res.json.convoy.convoy_id;
    expect(res.json.convoy.staged).toBe(true);
    const started = await call("POST", `/api/towns/${town}/convoys/${id}/start`);
    expect(started.status, started.text).toBe(200);
    expect(started.json.convoy.staged).toBe(false);
    const events = await pendingEvents(town);
    expect(events.at(-1).event_type).toBe("convoy_started");
    expect(JSON.parse(events.at(-1).payload)).toEqual({ convoy_id: id });
    expectError(await unchanged(town, () => call("POST", `/api/towns/${town}/convoys/${id}/start`)), 409, "conflict");
    expectError(await unchanged(town, () => call("POST", `/api/towns/${town}/convoys/nope/start`)), 404, "not_found");
    await refusesTokens(town, "POST", `/api/towns/${town}/convoys/${id}/start`, undefined, "test-api-token");

    const got = await call("GET", `/api/towns/${town}/convoys/${id}`);
    expect(got.status).toBe(200);
    expect(got.json.convoy).toMatchObject({ convoy_id: id, status: "active", total_beads: 3, closed_beads: 0 });
    expectError(await call("GET", `/api/towns/${town}/convoys/nope`), 404, "not_found");
  });
});

describe("agents and reviews", () => {
  it("GET agents lists them", async () => {
    const town = await freshTown();
    await seedAgent(town, "pc-1", { rig: "r1" });
    const res = await call("GET", `/api/towns/${town}/agents`);
    expect(res.status).toBe(200);
    expect(res.json.agents).toHaveLength(1);
    expect(res.json.agents[0]).toMatchObject({ agent_id: "pc-1", role: "polecat", status: "idle", rig_id: "r1" });
  });

  it("done is applied by the tick: the work becomes a review, which the same tick pops", async () => {
    const town = await freshTown();
    const bead = await createBead(town);
    await seedAgent(town, "pc-1", { rig: "r1", status: "working", hook: bead.bead_id });
    await sql(town, "UPDATE beads SET status = 'in_progress', assignee_agent_bead_id = 'pc-1' WHERE bead_id = ?", bead.bead_id);
    const done = await agentCall("POST", town, "pc-1", "done", { branch: "gt/pc-1/abc", summary: "added search" });
    expect(done.status, done.text).toBe(200);
    expect(done.json).toEqual({ success: true, data: { done: true } });
    expect(await runDurableObjectAlarm(townStub(town))).toBe(true);
    const reviews = await call("GET", `/api/towns/${town}/reviews`);
    expect(reviews.status).toBe(200);
    expect(reviews.json.reviews).toHaveLength(1);
    // The drain made it pending; the reconcile of the same tick popped it for review (R5).
    expect(reviews.json.reviews[0]).toMatchObject({
      status: "running", source_bead_id: bead.bead_id, branch: "gt/pc-1/abc", target_branch: "trunk", rig_id: "r1",
    });
    const after = await call("GET", `/api/towns/${town}/beads/${bead.bead_id}`);
    expect(after.json.bead.status).toBe("in_review");
    const agents = (await call("GET", `/api/towns/${town}/agents`)).json.agents;
    expect(agents.find((a) => a.agent_id === "pc-1").current_hook_bead_id).toBe(null);
    const refinery = agents.find((a) => a.role === "refinery");
    expect(refinery.current_hook_bead_id).toBe(reviews.json.reviews[0].mr_bead_id);
  });
});

describe("draining", () => {
  it("eviction returns a nonce that the heartbeat echoes and container-ready ends", async () => {
    const town = await freshTown();
    await seedAgent(town, "pc-1", { rig: "r1" });
    const token = await containerToken(town);
    // The eviction takes no body: anything but none (or {}) is refused and starts no drain.
    expectFailure(await unchanged(town, () => call("POST", `/api/towns/${town}/container-eviction`, { token, body: "this is not json" })), 400, "malformed_json");
    const ev = await call("POST", `/api/towns/${town}/container-eviction`, { token });
    expect(ev.status, ev.text).toBe(200);
    const nonce = ev.json.data.drainNonce;
    expect(ev.json).toEqual({ success: true, data: { acknowledged: true, drainNonce: nonce } });
    expect(nonce).toBeTruthy();
    expect((await pendingEvents(town)).map((e) => e.event_type)).toContain("container_eviction");
    const hb = await agentCall("POST", town, "pc-1", "heartbeat", {});
    expect(hb.json).toEqual({ success: true, data: { heartbeat: true, drainNonce: nonce } });
    const status = await call("GET", `/api/towns/${town}/drain-status`, { token });
    expect(status.json.data).toEqual({ draining: true, drainNonce: nonce });

    const path = `/api/towns/${town}/container-ready`;
    const wrong = await unchanged(town, () => call("POST", path, { token, body: { nonce: "wrong" } }));
    expect(wrong.status, wrong.text).toBe(200);
    expect(wrong.json).toEqual({ success: true, data: { cleared: false } });
    expectFailure(await unchanged(town, () => call("POST", path, { token, body: {} })), 400, "invalid_field");
    expectFailure(await unchanged(town, () => call("POST", path, { token, body: { nonce: 1 } })), 400, "invalid_field");
    await refusesJwts(town, "POST", path, { nonce }, token);
    const nowhere = `nowhere-${Date.now()}`;
    expectFailure(await call("POST", `/api/towns/${nowhere}/container-ready`, { token: await containerToken(nowhere), body: { nonce } }), 404, "not_found");
    // The API token is accepted too, so an operator can act.
    const ready = await call("POST", path, { body: { nonce } });
    expect(ready.status, ready.text).toBe(200);
    expect(ready.json.data.cleared).toBe(true);
    const hb2 = await agentCall("POST", town, "pc-1", "heartbeat", {});
    expect(hb2.json).toEqual({ success: true, data: { heartbeat: true } });
  });

  it("refresh-container-token hands out a token of the town, also for an expired one", async () => {
    const town = await freshTown();
    await seedAgent(town, "pc-1", { rig: "r1" });
    const path = `/api/towns/${town}/refresh-container-token`;
    const expired = await containerToken(town, { at: Date.now() - 9 * 3600 * 1000 });
    const res = await call("POST", path, { token: expired, body: {} });
    expect(res.status, res.text).toBe(200);
    expect(res.json.data.expiredInbound).toBe(true);
    const fresh = res.json.data.token;
    const [, payload] = fresh.split(".");
    expect(JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/")))).toMatchObject({ townId: town, userId: "owner-1", scope: "container" });
    const hb = await call("POST", `/api/towns/${town}/rigs/r1/agents/pc-1/heartbeat`, { token: fresh });
    expect(hb.status, hb.text).toBe(200);
    const stale = await call("POST", `/api/towns/${town}/rigs/r1/agents/pc-1/heartbeat`, { token: expired });
    expectFailure(stale, 401, "unauthorized");
    expect(stale.json.error).toBe("Token expired");
    await refusesJwts(town, "POST", path, {}, fresh);
  });
});

describe("agent callbacks", () => {
  async function withAgent(opts) {
    const town = await freshTown();
    await seedAgent(town, "pc-1", { rig: "r1", ...opts });
    return { town, token: await containerToken(town) };
  }

  it("heartbeat touches the agent and keeps the watermark from the container's camelCase body", async () => {
    const { town, token } = await withAgent();
    const path = `/api/towns/${town}/rigs/r1/agents/pc-1/heartbeat`;
    const at = new Date().toISOString();
    const res = await call("POST", path, {
      token,
      body: { agentId: "pc-1", rigId: "r1", townId: town, status: "running", timestamp: at, lastEventType: "tool", lastEventAt: at, activeTools: ["bash"], messageCount: 3, containerInstanceId: "box-1" },
    });
    expect(res.status, res.text).toBe(200);
    expect(res.json).toEqual({ success: true, data: { heartbeat: true } });
    const [row] = await sql(town, "SELECT status, last_event_type, last_event_at, active_tools, dispatch_attempts, last_activity_at FROM agent_metadata WHERE bead_id = 'pc-1'");
    expect(row).toMatchObject({ status: "working", last_event_type: "tool", last_event_at: at, active_tools: '["bash"]', dispatch_attempts: 0 });
    expect(row.last_activity_at).toBeTruthy();
    // No body at all, or one the original would not read, is a bare "alive".
    expect((await call("POST", path, { token })).status).toBe(200);
    expect((await call("POST", path, { token, body: "{" })).status).toBe(200);
    const ghost = await unchanged(town, () => call("POST", `/api/towns/${town}/rigs/r1/agents/ghost/heartbeat`, { token, body: {} }));
    expectFailure(ghost, 404, "not_found");
    expect(ghost.json.error).toContain("agent ghost");
    await refusesJwts(town, "POST", path, {}, token);
  });

  it("done records agent_done and refuses bad bodies, unknown agents and bad tokens", async () => {
    const { town, token } = await withAgent();
    const path = `/api/towns/${town}/rigs/r1/agents/pc-1/done`;
    const res = await call("POST", path, { token, body: { branch: "gt/pc-1/x", pr_url: "https://github.com/o/web/pull/3", extra: "ignored" } });
    expect(res.status, res.text).toBe(200);
    expect(res.json).toEqual({ success: true, data: { done: true } });
    const [event] = (await pendingEvents(town)).filter((e) => e.event_type === "agent_done");
    expect(event.agent_id).toBe("pc-1");
    expect(JSON.parse(event.payload)).toEqual({ branch: "gt/pc-1/x", pr_url: "https://github.com/o/web/pull/3" });
    await refusesBadEnvelopeBodies(town, "POST", path, {
      token,
      missing: ["branch", { summary: "s" }],
      wrongType: ["branch", { branch: 3 }],
    });
    const insecure = await unchanged(town, () => call("POST", path, { token, body: { branch: "b", pr_url: "http://x/pull/1" } }));
    expectFailure(insecure, 400, "invalid_field");
    expect(insecure.json.error).toContain("pr_url");
    const ghost = await unchanged(town, async () => agentCall("POST", town, "ghost", "done", { branch: "b" }));
    expectFailure(ghost, 404, "not_found");
    await refusesJwts(town, "POST", path, { branch: "b" }, token);
  });

  it("completed records agent_completed, ignoring the container's agentId", async () => {
    const { town, token } = await withAgent({ status: "working" });
    const path = `/api/towns/${town}/rigs/r1/agents/pc-1/completed`;
    const res = await call("POST", path, { token, body: { status: "failed", reason: "OOM", agentId: "pc-1" } });
    expect(res.status, res.text).toBe(200);
    expect(res.json).toEqual({ success: true, data: { completed: true } });
    const events = await pendingEvents(town);
    expect(events.at(-1)).toMatchObject({ event_type: "agent_completed", agent_id: "pc-1" });
    expect(JSON.parse(events.at(-1).payload)).toEqual({ status: "failed", reason: "OOM" });
    await refusesBadEnvelopeBodies(town, "POST", path, {
      token,
      missing: ["status", { reason: "r" }],
      wrongType: ["status", { status: "exploded" }],
    });
    expectFailure(await unchanged(town, () => agentCall("POST", town, "ghost", "completed", { status: "completed" })), 404, "not_found");
    await refusesJwts(town, "POST", path, { status: "completed" }, token);
  });

  it("request-changes: the refinery's hooked MR gets a rework bead that blocks it", async () => {
    const town = await freshTown();
    const bead = await createBead(town);
    await seedAgent(town, "pc-1", { rig: "r1", status: "working", hook: bead.bead_id });
    await agentCall("POST", town, "pc-1", "done", { branch: "gt/pc-1/abc" });
    await runDurableObjectAlarm(townStub(town));
    const [mr] = (await call("GET", `/api/towns/${town}/reviews`)).json.reviews;
    await seedAgent(town, "ref-1", { role: "refinery", rig: "r1", status: "working", hook: mr.mr_bead_id });
    const token = await containerToken(town);
    const path = `/api/towns/${town}/rigs/r1/agents/ref-1/request-changes`;

    await refusesBadEnvelopeBodies(town, "POST", path, {
      token,
      missing: ["feedback", { files: [] }],
      wrongType: ["files", { feedback: "f", files: "a.rs" }],
    });
    const notRefinery = await unchanged(town, () => agentCall("POST", town, "pc-1", "request-changes", { feedback: "f" }));
    expectFailure(notRefinery, 409, "conflict");
    expectFailure(await unchanged(town, () => agentCall("POST", town, "ghost", "request-changes", { feedback: "f" })), 404, "not_found");
    await refusesJwts(town, "POST", path, { feedback: "f" }, token);

    const res = await call("POST", path, { token, body: { feedback: "rename the module", files: ["src/a.rs", "src/b.rs"] } });
    expect(res.status, res.text).toBe(201);
    const reworkId = res.json.data.rework_bead_id;
    const rework = (await call("GET", `/api/towns/${town}/beads/${reworkId}`)).json.bead;
    expect(rework).toMatchObject({ type: "issue", labels: ["gt:rework"], body: "rename the module\n\nFiles:\n- src/a.rs\n- src/b.rs", rig_id: "r1", status: "open" });
    const edges = await sql(town, "SELECT dependency_type FROM bead_dependencies WHERE bead_id = ? AND depends_on_bead_id = ?", mr.mr_bead_id, reworkId);
    expect(edges).toEqual([{ dependency_type: "blocks" }]);
    const events = await pendingEvents(town);
    expect(events.at(-1)).toMatchObject({ event_type: "bead_created", bead_id: reworkId });
  });

  it("nudges: pending urgent first in the container's fields, acknowledged once delivered", async () => {
    const { town, token } = await withAgent();
    const now = Date.now();
    const insert = (id, priority, at) =>
      sql(town, "INSERT INTO agent_nudges (nudge_id, agent_bead_id, message, priority, created_at) VALUES (?, 'pc-1', ?, ?, ?)", id, `msg ${id}`, priority, new Date(at).toISOString());
    await insert("n-normal", "normal", now - 2000);
    await insert("n-urgent", "urgent", now - 1000);
    const pending = `/api/towns/${town}/rigs/r1/agents/pc-1/pending-nudges`;
    const res = await call("GET", pending, { token, headers: { "x-gastown-agent-id": "pc-1", "x-gastown-rig-id": "r1" } });
    expect(res.status, res.text).toBe(200);
    expect(res.json.success).toBe(true);
    expect(res.json.data).toEqual([
      { nudge_id: "n-urgent", message: "msg n-urgent", mode: "wait-idle", priority: "urgent", source: "system" },
      { nudge_id: "n-normal", message: "msg n-normal", mode: "wait-idle", priority: "normal", source: "system" },
    ]);
    expectFailure(await call("GET", `/api/towns/${town}/rigs/r1/agents/ghost/pending-nudges`, { token }), 404, "not_found");
    expectFailure(await call("GET", pending, { token: null }), 401, "unauthorized");

    const path = `/api/towns/${town}/rigs/r1/agents/pc-1/nudge-delivered`;
    const ack = await call("POST", path, { token, body: { nudge_id: "n-urgent" } });
    expect(ack.status, ack.text).toBe(200);
    expect(ack.json).toEqual({ success: true, data: { marked: true } });
    const left = await call("GET", pending, { token });
    expect(left.json.data.map((n) => n.nudge_id)).toEqual(["n-normal"]);
    expectFailure(await unchanged(town, () => call("POST", path, { token, body: { nudge_id: "nope" } })), 404, "not_found");
    await refusesBadEnvelopeBodies(town, "POST", path, { token, missing: ["nudge_id", {}], wrongType: ["nudge_id", { nudge_id: 1 }] });
    await refusesJwts(town, "POST", path, { nudge_id: "n-normal" }, token);
  });

  it("an agent token is refused for another agent, rig or town; the API token is refused", async () => {
    const { town } = await withAgent();
    const token = await agentToken(town, "pc-1", "r1");
    await seedAgent(town, "pc-2", { rig: "r1" });
    const own = await call("POST", `/api/towns/${town}/rigs/r1/agents/pc-1/heartbeat`, { token, body: {} });
    expect(own.status, own.text).toBe(200);
    const other = await unchanged(town, () => call("POST", `/api/towns/${town}/rigs/r1/agents/pc-2/done`, { token, body: { branch: "b" } }));
    expectFailure(other, 403, "forbidden");
    expect(other.json.error).toBe("Token agentId does not match route");
    const rig = await unchanged(town, () => call("POST", `/api/towns/${town}/rigs/r2/agents/pc-1/done`, { token, body: { branch: "b" } }));
    expect(rig.json.error).toBe("Token rigId does not match route");
    const elsewhere = await freshTown();
    await seedAgent(elsewhere, "pc-1", { rig: "r1" });
    const townToken = await containerToken(town);
    const cross = await unchanged(elsewhere, () => call("POST", `/api/towns/${elsewhere}/rigs/r1/agents/pc-1/heartbeat`, { token: townToken, body: {} }));
    expectFailure(cross, 403, "forbidden");
    expect(cross.json.error).toBe("Cross-town access denied");
    const api = await unchanged(town, () => call("POST", `/api/towns/${town}/rigs/r1/agents/pc-1/done`, { body: { branch: "b" } }));
    expectFailure(api, 401, "unauthorized");
    // Revision 1's callback paths are gone.
    const old = await call("POST", `/api/towns/${town}/agents/pc-1/done`, { token, body: { branch: "b" } });
    expect(old.status).toBe(404);
  });
});

describe("idempotency", () => {
  it("the same key twice makes one record and the same answer; another body is a 422", async () => {
    const town = await freshTown();
    const path = `/api/towns/${town}/beads`;
    const headers = { "idempotency-key": "create-search-1" };
    const body = { rig_id: "r1", title: "Add search" };
    const first = await call("POST", path, { body, headers });
    expect(first.status).toBe(201);
    const second = await call("POST", path, { body, headers });
    expect(second.status).toBe(201);
    expect(second.json).toEqual(first.json);
    const beads = await sql(town, "SELECT bead_id FROM beads WHERE type = 'issue'");
    expect(beads).toHaveLength(1);
    expect(await pendingEvents(town)).toHaveLength(1);
    const reused = await unchanged(town, () => call("POST", path, { body: { ...body, title: "Other" }, headers }));
    expectError(reused, 422, "idempotency_key_reused");
  });
});

// The Town against a container that behaves as the original control server (tools/sim/standins.mjs:
// its start schema field by field, `model` required, the role enum, `envVars` of strings,
// 201 records, 404 for unknown agents, 503 while draining, `{error}` bodies), reached through
// each town's TOWN_CONTAINER instance. Besides what the original checks, the stand-in notes
// any start without an `X-Town-Config` object for the start's town or without a container JWT
// it can verify (HS256, GASTOWN_JWT_SECRET, scope container, the start's town): every suite
// here ends with no such note for its towns.
//
// The agents' callbacks (`done`) go to the original's path
// `/api/towns/{t}/rigs/{r}/agents/{a}/done` with the container JWT the start carried.
import { describe, it, expect } from "vitest";
import { env } from "cloudflare:test";
import { addRig, advance, call, control, createTown, sql, tick } from "./helpers.mjs";

const run = `cnf${Date.now().toString(36)}`;
const MINUTE = 60_000;

const container = {
  requests: (prefix) => control(env.CONTAINER_URL, "GET", `requests?path_prefix=${encodeURIComponent(prefix)}`),
  fail: (rule) => control(env.CONTAINER_URL, "POST", "fail", rule),
  state: () => control(env.CONTAINER_URL, "GET", "state"),
  forget: (agentId) => control(env.CONTAINER_URL, "POST", "reset", { path_prefix: `/agents/${agentId}` }),
};
const github = { pr: (fields) => control(env.GITHUB_API_URL, "POST", "pr", fields) };

/** Every request the container received from `town`'s instance, oldest first. */
async function callsOf(town) {
  const id = env.TOWN_CONTAINER.idFromName(town).toString();
  return (await container.requests("/")).filter((r) => r.headers["x-container-instance"] === id);
}
const startsOf = async (town) => (await callsOf(town)).filter((r) => r.path === "/agents/start");

async function newTown(name, config) {
  const town = `${run}-${name}`;
  await createTown(town, `owner-${name}`, config);
  return town;
}

async function sling(town, rigId, title) {
  const res = await call("POST", `/api/towns/${town}/beads`, { body: { rig_id: rigId, title } });
  expect(res.status, res.text).toBe(201);
  return res.json.bead;
}

async function bead(town, id) {
  const res = await call("GET", `/api/towns/${town}/beads/${id}`);
  expect(res.status, res.text).toBe(200);
  return res.json.bead;
}

/** The agent's `done`, on the original's path with the container JWT of its start (see top). */
async function done(start, body) {
  const { townId, rigId, agentId, envVars } = start.json;
  const path = `/api/towns/${townId}/rigs/${rigId}/agents/${agentId}/done`;
  const res = await call("POST", path, { token: envVars.GASTOWN_CONTAINER_TOKEN, body, headers: { "x-gastown-agent-id": agentId } });
  expect(res.json, res.text).toEqual({ success: true, data: { done: true } });
  return res;
}

/** Verifies an HS256 JWT with the Worker's secret, independently of the Rust code. */
async function verified(token) {
  const [header, payload, signature] = token.split(".");
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode("test-jwt-secret"), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
  const bytes = Uint8Array.from(atob(signature.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  expect(await crypto.subtle.verify("HMAC", key, bytes, new TextEncoder().encode(`${header}.${payload}`))).toBe(true);
  const decode = (part) => JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/")));
  expect(decode(header).alg).toBe("HS256");
  return decode(payload);
}

/** No start of `town` was one the original would take but the Town must not send. */
async function expectNoViolations(town) {
  const { violations } = await container.state();
  expect(violations.filter((v) => v.townId === town)).toEqual([]);
}

const slug = (name) => name.toLowerCase().replace(/[^a-z0-9-]/g, "-").replace(/-+/g, "-");

describe("the Town on the original container's wire", () => {
  it("a bead goes from sling to closed: polecat start, done, refinery start, merged", async () => {
    const town = await newTown("direct", { default_model: "m/default", role_models: { refinery: "m/review" }, env_vars: { NODE_ENV: "test" } });
    await addRig(town, "web", `acme/${run}-direct`);
    const slung = await sling(town, "web", "Fix the login form");

    await tick(town);
    const [start] = await startsOf(town);
    expect(start.headers["content-type"]).toBe("application/json");
    expect(start.json).toMatchObject({
      townId: town, rigId: "web", role: "polecat", model: "m/default", smallModel: "anthropic/claude-haiku-4.5",
      gitUrl: `https://github.com/acme/${run}-direct.git`, defaultBranch: "main", prompt: "Fix the login form",
    });
    expect(start.json.branch).toBe(`gt/${slug(start.json.name)}/${slung.bead_id.slice(0, 8)}`);
    const env_ = start.json.envVars;
    expect(env_).toMatchObject({ NODE_ENV: "test", GASTOWN_API_URL: "https://town.test" });
    expect(await verified(env_.GASTOWN_CONTAINER_TOKEN)).toMatchObject({ townId: town, userId: "owner-direct", scope: "container" });
    expect(await verified(env_.GASTOWN_SESSION_TOKEN)).toMatchObject({ agentId: start.json.agentId, rigId: "web", townId: town });
    const config = JSON.parse(start.headers["x-town-config"]);
    expect(config).toMatchObject({ town_id: town, default_model: "m/default", env_vars: { NODE_ENV: "test" }, gastown_api_url: "https://town.test" });
    // The token the start carries was pushed to the container just before it.
    const calls = (await callsOf(town)).map((r) => r.path);
    expect(calls.indexOf("/refresh-token")).toBeLessThan(calls.indexOf("/agents/start"));
    const pushed = (await callsOf(town)).filter((r) => r.path === "/refresh-token").at(-1);
    expect(pushed.json).toEqual({ token: env_.GASTOWN_CONTAINER_TOKEN, townId: town });
    expect((await bead(town, slung.bead_id)).status).toBe("in_progress");

    const reported = await done(start, { branch: start.json.branch, summary: "Wired the button" });
    expect(reported.status, reported.text).toBeLessThan(300);
    await tick(town);
    const review = (await startsOf(town))[1];
    expect(review.json).toMatchObject({ role: "refinery", model: "m/review", rigId: "web", defaultBranch: "main" });
    expect(review.json.branch).toMatch(new RegExp(`^gt/${slug(review.json.name)}/`));
    expect(review.json.systemPrompt).toContain(`branch ${start.json.branch} into main`);
    expect((await bead(town, slung.bead_id)).status).toBe("in_review");

    expect((await done(review, { branch: start.json.branch, summary: "merged" })).status).toBeLessThan(300);
    await tick(town);
    expect((await bead(town, slung.bead_id)).status).toBe("closed");
    expect(await startsOf(town)).toHaveLength(2);
    await expectNoViolations(town);
  });

  it("the PR strategy: the polecat opens the PR, the refinery reviews it there, the merged PR closes the bead", async () => {
    const repo = `${run}-pr`;
    const town = await newTown("pr", { merge_strategy: "pr" });
    await addRig(town, "api", `acme/${repo}`);
    await github.pr({ owner: "acme", repo, number: 1 });
    const slung = await sling(town, "api", "Add rate limiting");
    const url = `https://github.com/acme/${repo}/pull/1`;

    await tick(town);
    const [start] = await startsOf(town);
    expect(start.json.systemPrompt).toContain("open a pull request against main yourself");
    expect((await done(start, { branch: start.json.branch, pr_url: url })).status).toBeLessThan(300);
    await tick(town);
    const review = (await startsOf(town))[1];
    expect(review.json.role).toBe("refinery");
    expect(review.json.systemPrompt).toContain(`A pull request exists: ${url}`);
    expect((await done(review, { branch: start.json.branch, pr_url: url })).status).toBeLessThan(300);
    await github.pr({ owner: "acme", repo, number: 1, merged: true, state: "closed" });
    for (let i = 0; i < 3 && (await bead(town, slung.bead_id)).status !== "closed"; i++) {
      await advance(town, 2 * MINUTE);
      await tick(town);
    }
    expect((await bead(town, slung.bead_id)).status).toBe("closed");
    await expectNoViolations(town);
  });

  it("an evicted container (404 for every agent): the working agent is reset and its bead dispatched again", async () => {
    const town = await newTown("evicted");
    await addRig(town, "web", `acme/${run}-evicted`);
    const slung = await sling(town, "web", "Keep going after eviction");
    await tick(town);
    const [first] = await startsOf(town);
    const agentId = first.json.agentId;

    // The container restarted and knows no agent: status answers 404.
    await container.forget(agentId);
    // Within 3 minutes of the agent's last activity a 404 is not acted on (the original's grace).
    // A minute on, the agent has been quiet past the observation's 45 s, so it is asked about.
    await advance(town, MINUTE);
    await tick(town);
    const statuses = (await callsOf(town)).filter((r) => r.path === `/agents/${agentId}/status`);
    expect(statuses.length).toBeGreaterThanOrEqual(1);
    expect(await startsOf(town)).toHaveLength(1);

    // Past the grace: the 404 resets the agent (idle, hook kept); once the bead has been
    // untouched for 5 minutes the reconciler recovers it and dispatches it again.
    await advance(town, 3 * MINUTE);
    await tick(town);
    const reset = (await sql(town, "SELECT status, current_hook_bead_id FROM agent_metadata WHERE bead_id = ?", agentId))[0];
    expect(reset).toEqual({ status: "idle", current_hook_bead_id: slung.bead_id });
    for (let i = 0; i < 4 && (await startsOf(town)).length < 2; i++) {
      await advance(town, 2 * MINUTE);
      await tick(town);
    }
    const starts = await startsOf(town);
    expect(starts).toHaveLength(2);
    expect(starts[1].json).toMatchObject({ agentId, prompt: "Keep going after eviction", branch: first.json.branch });
    expect((await bead(town, slung.bead_id)).status).toBe("in_progress");
    await expectNoViolations(town);
  });

  it("a mayor the container does not know is started once, as mayor-<town> on gt/mayor with every rig, then messaged", async () => {
    const town = await newTown("mayor");
    await addRig(town, "web", `acme/${run}-mayor`);
    await addRig(town, "api", `acme/${run}-mayor-api`);
    for (let i = 0; i < 20; i++) await sling(town, i % 2 ? "web" : "api", `Task ${i}`);
    await container.fail({ path_prefix: "/agents/start", mode: "500", times: 20, json: { townId: town, role: "polecat" } });

    // Twenty refused starts open the breaker; the next tick tells the mayor, who is absent.
    await tick(town);
    await tick(town);
    const mayorStarts = async () => (await startsOf(town)).filter((s) => s.json.role === "mayor");
    const [mayor] = await mayorStarts();
    expect(mayor.json).toMatchObject({
      rigId: `mayor-${town}`, branch: "gt/mayor", defaultBranch: "main", model: "anthropic/claude-sonnet-4.6",
    });
    expect(mayor.json.prompt).toMatch(/^Dispatch circuit breaker is OPEN/);
    expect(mayor.json.rigs.map((r) => r.rigId).sort()).toEqual(["api", "web"]);
    expect(mayor.json.gitUrl).toBe(mayor.json.rigs[0].gitUrl);
    const status = (await callsOf(town)).filter((r) => r.path === `/agents/${mayor.json.agentId}/status`);
    expect(status).toHaveLength(1);

    // While the breaker stays open: no second notice, no second start.
    await advance(town, 3 * MINUTE);
    await tick(town);
    expect(await mayorStarts()).toHaveLength(1);

    // When it closes, the mayor (running now) is messaged, not started again.
    await advance(town, 28 * MINUTE);
    await tick(town);
    expect(await mayorStarts()).toHaveLength(1);
    const messages = (await callsOf(town)).filter((r) => r.path === `/agents/${mayor.json.agentId}/message`);
    expect(messages.map((m) => m.json.prompt)).toEqual([expect.stringMatching(/^Dispatch circuit breaker is CLOSED/)]);
    await expectNoViolations(town);
  }, 60_000);

  it("every start the Town sent in this file passed the original's schema", async () => {
    const mine = (await container.requests("/agents/start")).filter((r) => r.json?.townId?.startsWith(run));
    expect(mine.length).toBeGreaterThan(0);
    const { violations } = await container.state();
    expect(violations.filter((v) => v.townId?.startsWith(run))).toEqual([]);
    // A 400 would have been recorded as the bead's last dispatch error.
    for (const town of new Set(mine.map((r) => r.json.townId))) {
      const errors = await sql(town, "SELECT last_dispatch_error FROM beads WHERE last_dispatch_error LIKE 'answered HTTP 400%'");
      expect(errors).toEqual([]);
    }
  });
});

// The Gastown container control server as the original runs it (Bun + Hono, one per town;
// UPSTREAM-WIRE.md section 1): the start body checked field by field as its zod schema does,
// 201 records, 404 for unknown agents, 503 while a town drains, `{error}` bodies; an agents
// registry, so an agent's status reflects its start, its stop and (when agents are simulated,
// agents.mjs) what its process did; messages are kept per agent.
import { createHmac } from "node:crypto";
import { reply } from "./serve.mjs";

/** The agent roles the container's start schema accepts. */
const ROLES = new Set(["mayor", "polecat", "refinery", "triage"]);
const START_REQUIRED = ["agentId", "rigId", "townId", "name", "identity", "prompt", "model", "gitUrl", "branch", "defaultBranch"];
const START_OPTIONAL_STRINGS = ["smallModel", "systemPrompt", "platformIntegrationId", "startPoint", "organizationId"];

/** The start body checked as the container's zod schema checks it: the issues, [] when valid. */
export function startIssues(body) {
  const issues = [];
  const issue = (path, message) => issues.push({ path, message });
  if (body === null || typeof body !== "object" || Array.isArray(body)) return [{ path: [], message: "Expected object" }];
  for (const f of START_REQUIRED) if (typeof body[f] !== "string") issue([f], "Expected string");
  if (!ROLES.has(body.role)) issue(["role"], `Invalid enum value. Expected ${[...ROLES].map((r) => `'${r}'`).join(" | ")}`);
  for (const f of START_OPTIONAL_STRINGS) if (body[f] !== undefined && typeof body[f] !== "string") issue([f], "Expected string");
  if (body.lightweight !== undefined && typeof body.lightweight !== "boolean") issue(["lightweight"], "Expected boolean");
  if (body.envVars !== undefined) {
    if (body.envVars === null || typeof body.envVars !== "object" || Array.isArray(body.envVars)) issue(["envVars"], "Expected object");
    else for (const [k, v] of Object.entries(body.envVars)) if (typeof v !== "string") issue(["envVars", k], "Expected string");
  }
  if (body.rigs !== undefined) {
    if (!Array.isArray(body.rigs)) issue(["rigs"], "Expected array");
    else
      body.rigs.forEach((r, i) => {
        for (const f of ["rigId", "gitUrl", "defaultBranch"]) if (typeof r?.[f] !== "string") issue(["rigs", i, f], "Expected string");
      });
  }
  return issues;
}

/** Verifies an HS256 JWT with `secret` as the original's `jsonwebtoken` would (8 h maxAge):
 * its claims, or the reason it is refused. */
export function verifyJwt(token, secret) {
  const parts = typeof token === "string" ? token.split(".") : [];
  if (parts.length !== 3) return { error: "not a JWT" };
  const decode = (p) => JSON.parse(Buffer.from(p, "base64url").toString("utf8"));
  let header, claims;
  try {
    [header, claims] = [decode(parts[0]), decode(parts[1])];
  } catch {
    return { error: "not JSON" };
  }
  if (header.alg !== "HS256") return { error: `alg ${header.alg}` };
  const mac = createHmac("sha256", secret).update(`${parts[0]}.${parts[1]}`).digest("base64url");
  if (mac !== parts[2]) return { error: "invalid signature" };
  const now = Date.now() / 1000;
  if (typeof claims.iat !== "number" || typeof claims.exp !== "number") return { error: "iat and exp must be numbers" };
  if (claims.exp <= now || claims.iat + 8 * 3600 <= now) return { error: "expired" };
  return { claims };
}

/** The container control server of the original: it validates what the original validates and
 * answers with its shapes and status codes. An agent exists once started (or set through
 * /__control/agent); unknown agents are 404.
 *
 * What the original accepts but the Town must never send is noted in `violations` (shown by
 * /__control/state): a start without an `X-Town-Config` object or without a container JWT,
 * signed with `jwtSecret` (when given), for the start's town.
 *
 * With `sim` (an agent simulator, agents.mjs), every accepted start also runs a simulated
 * agent that calls the Town back; its stops and pushed tokens reach the simulator too. */
export function containerPlane({ jwtSecret, sim = null }) {
  let registry = new Map();
  let violations = [];
  // The towns whose container is draining (the stand-in serves many towns' containers at once).
  let draining = new Set();
  const startedAt = Date.now();
  const notFound = (id) => reply(404, { error: `Agent ${id} not found` });
  const view = (a) => ({
    agentId: a.agentId, status: a.status, serverPort: 4096, sessionId: a.sessionId, startedAt: a.startedAt,
    lastActivityAt: a.startedAt, activeTools: [], messageCount: a.messages.length, exitReason: a.exitReason,
  });
  const townConfig = (req) => {
    try {
      const parsed = JSON.parse(req.headers["x-town-config"] ?? "");
      return parsed !== null && typeof parsed === "object" && !Array.isArray(parsed) ? parsed : null;
    } catch {
      return null;
    }
  };
  const check = (req, json) => {
    const found = [];
    const config = townConfig(req);
    if (!config) found.push("X-Town-Config is missing or not a JSON object");
    else if (config.town_id !== json.townId) found.push(`X-Town-Config town_id ${config.town_id} is not ${json.townId}`);
    const token = jwtSecret ? verifyJwt(json.envVars?.GASTOWN_CONTAINER_TOKEN, jwtSecret) : { claims: json.townId && { scope: "container", townId: json.townId } };
    if (token.error) found.push(`envVars.GASTOWN_CONTAINER_TOKEN: ${token.error}`);
    else if (token.claims.scope !== "container" || token.claims.townId !== json.townId)
      found.push(`envVars.GASTOWN_CONTAINER_TOKEN is not a container token of ${json.townId}`);
    for (const v of found) violations.push({ agentId: json.agentId, townId: json.townId, violation: v });
  };

  return {
    state: () => ({ agents: [...registry.values()], violations, draining: [...draining], ...(sim ? { simulated: sim.state() } : {}) }),
    reset: (kept) => {
      for (const id of registry.keys()) if (!kept(`/agents/${id}`)) registry.delete(id);
      violations = violations.filter((v) => kept(`/agents/${v.agentId}`));
    },
    control(req) {
      if (req.method === "POST" && req.path === "/__control/draining") {
        const { town_id, draining: on } = req.json ?? {};
        if (typeof town_id !== "string" || typeof on !== "boolean") return reply(400, { error: "town_id (string) and draining (boolean) are required" });
        if (on) draining.add(town_id);
        else draining.delete(town_id);
        return reply(200, { draining: [...draining] });
      }
      if (req.method === "POST" && req.path === "/__control/fate") {
        if (!sim) return reply(400, { error: "no agents are simulated here" });
        try {
          sim.rule(req.json ?? {});
        } catch (e) {
          return reply(400, { error: e.message });
        }
        return reply(200, sim.state().rules);
      }
      if (req.method !== "POST" || req.path !== "/__control/agent") return undefined;
      const { agent_id, status, exit_reason } = req.json ?? {};
      if (typeof agent_id !== "string" || typeof status !== "string")
        return reply(400, { error: "agent_id and status must be strings" });
      const agent = registry.get(agent_id) ?? { agentId: agent_id, start: null, messages: [], sessionId: `ses-${agent_id}`, startedAt: new Date().toISOString() };
      Object.assign(agent, { status, exitReason: exit_reason ?? null });
      registry.set(agent_id, agent);
      return reply(200, agent);
    },
    handle(req) {
      const { method, path, json } = req;
      if (method === "GET" && path === "/health")
        return reply(200, { status: "ok", agents: registry.size, servers: 0, uptime: Date.now() - startedAt });
      if (method === "POST" && path === "/refresh-token") {
        if (typeof json?.token !== "string" || json.token === "") return reply(400, { error: "token is required" });
        sim?.tokenPushed(json.token);
        return reply(200, { refreshed: true, agentsRestarted: 0, agentsFailed: 0, results: [] });
      }
      if (method === "POST" && path === "/sync-config") return reply(200, { synced: true });
      if (method === "POST" && path === "/agents/start") {
        if (draining.has(json?.townId)) return reply(503, { error: "Container is draining, not accepting new agents" });
        const issues = startIssues(json);
        if (issues.length > 0) return reply(400, { error: "Invalid request body", issues });
        check(req, json);
        const previous = registry.get(json.agentId);
        const agent = {
          agentId: json.agentId, rigId: json.rigId, townId: json.townId, role: json.role, name: json.name,
          status: "running", exitReason: null, sessionId: `ses-${json.agentId}-${Date.now()}`, workdir: `/workspace/${json.rigId}/${json.branch}`,
          startedAt: new Date().toISOString(), start: json, messages: previous?.messages ?? [],
        };
        registry.set(json.agentId, agent);
        sim?.start(agent, townConfig(req));
        const { start, messages, ...record } = agent;
        return reply(201, { ...record, serverPort: 4096, lastActivityAt: agent.startedAt, activeTools: [], messageCount: 0 });
      }
      const m = /^\/agents\/([^/]+)\/(status|stop|message)$/.exec(path);
      if (!m) return reply(404, { error: "Not found" });
      const [, id, action] = m;
      const agent = registry.get(id);
      if (action === "status" && method === "GET") return agent ? reply(200, view(agent)) : notFound(id);
      if (method !== "POST") return reply(404, { error: "Not found" });
      if (!agent) return notFound(id);
      if (action === "stop") {
        if (["running", "starting"].includes(agent.status)) Object.assign(agent, { status: "exited", exitReason: "stopped" });
        sim?.stop(id);
        return reply(200, { stopped: true });
      }
      if (typeof json?.prompt !== "string") return reply(400, { error: "Invalid request body" });
      if (agent.status !== "running") return reply(500, { error: `Agent ${id} is not running (${agent.status})` });
      agent.messages.push(json.prompt);
      return reply(200, { sent: true });
    },
  };
}


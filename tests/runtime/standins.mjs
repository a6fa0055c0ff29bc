// Stand-ins for the two services the Worker calls, as real HTTP servers on 127.0.0.1 (random
// ports), started by global-setup.mjs and reached from workerd through CONTAINER_URL and
// GITHUB_API_URL:
// - the container control server as the original runs it (UPSTREAM-WIRE.md section 1): the
//   start schema checked field by field, 201 records, 404 for unknown agents, 503 while
//   draining, `{error}` bodies; an agents registry, so an agent's status reflects its start
//   and stop; messages are kept per agent;
// - a GitHub API: pull requests whose state, head commit, check runs, legacy statuses and review
//   threads tests set, answering the REST and GraphQL calls of the PR host client, and merging.
//
// Both record every request (method, path, query, headers, body) and share a control API under
// /__control/ that tests script over HTTP:
//   POST /__control/fail {path_prefix, mode, times?, method?, json?}  the next `times`
//        (default 1) requests whose path starts with path_prefix (and, with `json`, whose JSON
//        body has every field of `json` with that value: a shared path such as /agents/start
//        can be failed for one town's requests only) fail: mode "500" (or any 3-digit status)
//        answers that status, "timeout" never answers, "stall" answers 200 and the start of a
//        JSON body that never ends, "garbage" answers 200 with an HTML page, "refuse" destroys
//        the connection, "rate_limit" answers GitHub's 403 for an exhausted rate limit.
//   GET  /__control/requests[?path_prefix=/x]  the recorded requests, oldest first
//   GET  /__control/state                      the registry (agents or pull requests)
//   POST /__control/reset [{path_prefix}]      forget requests, failures and registry entries
//        (an agent is at /agents/{id}, a PR at /repos/{o}/{r}/pulls/{n}) under path_prefix,
//        or everything without one (test files may run at once: scope resets to your ids)
//   POST /__control/agent {agent_id, status, exit_reason?}   (container) set an agent's state
//   POST /__control/draining {town_id, draining}   (container) refuse that town's starts with
//        503 while set
//   POST /__control/pr {owner, repo, number, state?, merged?, head_sha?, mergeable?,
//        check_runs?: [{name?, status, conclusion?}], check_runs_total?,
//        statuses?: [{context?, state}], threads?: [{isResolved}], threads_has_next_page?,
//        push_before_merge?: sha}
//        (GitHub) create or update a pull request. `push_before_merge` is a commit pushed to its
//        head just before the next merge request arrives (a push racing the check): a merge
//        pinned to the old head is then refused with 409, as GitHub does.
import { createServer } from "node:http";
import { createHash, createHmac, randomBytes } from "node:crypto";

const MODES = new Set(["timeout", "stall", "garbage", "refuse", "rate_limit"]);

/** Starts both stand-ins; `close()` stops them, hung requests included. The container verifies
 * the container JWTs of the starts with `jwtSecret`. */
export async function startStandins({ jwtSecret }) {
  const container = await serve(containerPlane({ jwtSecret }));
  const github = await serve(githubApi());
  return {
    CONTAINER_URL: container.url,
    GITHUB_API_URL: github.url,
    async close() {
      await Promise.all([container.close(), github.close()]);
    },
  };
}

const reply = (status, body) => ({ status, body });

/** An HTTP server around `app` ({handle(req), control(req), state(), reset(kept)}) that records
 * requests, injects failures and serves the shared control API. */
async function serve(app) {
  let requests = [];
  let failures = [];

  const control = (req) => {
    if (req.method === "GET" && req.path === "/__control/requests") {
      const prefix = req.query.path_prefix ?? "";
      return reply(200, requests.filter((r) => r.path.startsWith(prefix)));
    }
    if (req.method === "GET" && req.path === "/__control/state") return reply(200, app.state());
    if (req.method === "POST" && req.path === "/__control/reset") {
      const prefix = req.json?.path_prefix ?? "";
      if (typeof prefix !== "string") return reply(400, { error: "path_prefix must be a string" });
      const kept = (path) => !path.startsWith(prefix);
      requests = requests.filter((r) => kept(r.path));
      failures = failures.filter((f) => kept(f.path_prefix));
      app.reset(kept);
      return reply(200, { reset: prefix });
    }
    if (req.method === "POST" && req.path === "/__control/fail") {
      const { path_prefix, mode, times = 1, method, json } = req.json ?? {};
      if (typeof path_prefix !== "string" || !path_prefix.startsWith("/"))
        return reply(400, { error: "path_prefix must be a path starting with /" });
      if (!(MODES.has(mode) || /^[1-5]\d\d$/.test(String(mode))))
        return reply(400, { error: 'mode must be "timeout", "stall", "garbage", "refuse", "rate_limit" or a status like "500"' });
      if (!Number.isInteger(times) || times < 1) return reply(400, { error: "times must be a positive integer" });
      if (method !== undefined && typeof method !== "string") return reply(400, { error: "method must be a string" });
      if (json !== undefined && (json === null || typeof json !== "object" || Array.isArray(json)))
        return reply(400, { error: "json must be an object of body fields" });
      failures.push({ path_prefix, mode: String(mode), times, method: method?.toUpperCase(), json });
      return reply(200, { queued: failures.length });
    }
    return app.control(req) ?? reply(404, { error: `no control route ${req.method} ${req.path}` });
  };

  const bodyHas = (req, fields) =>
    req.json !== null && typeof req.json === "object" && Object.entries(fields).every(([k, v]) => req.json[k] === v);
  const takeFailure = (req) => {
    const rule = failures.find(
      (f) =>
        f.times > 0 &&
        req.path.startsWith(f.path_prefix) &&
        (!f.method || f.method === req.method) &&
        (!f.json || bodyHas(req, f.json)),
    );
    if (rule) rule.times -= 1;
    failures = failures.filter((f) => f.times > 0);
    return rule?.mode;
  };

  const server = createServer((incoming, res) => {
    const chunks = [];
    incoming.on("data", (c) => chunks.push(c));
    incoming.on("end", () => {
      const url = new URL(incoming.url, "http://standin");
      const body = Buffer.concat(chunks).toString("utf8");
      let json = null;
      try {
        json = body ? JSON.parse(body) : null;
      } catch {}
      const req = {
        method: incoming.method,
        path: decodePath(url.pathname),
        query: Object.fromEntries(url.searchParams),
        headers: { ...incoming.headers },
        body,
        json,
      };
      if (req.path.startsWith("/__control/")) return send(res, control(req));
      requests.push({ at: Date.now(), ...req });
      const mode = takeFailure(req);
      // "timeout": hold the request without ever answering (closed when the servers close).
      if (mode === "timeout") return;
      // "stall": the headers and part of the body, then nothing (closed when the servers close).
      if (mode === "stall") {
        res.writeHead(200, { "content-type": "application/json" });
        return res.write('{"status":');
      }
      // "refuse": drop the connection before any answer.
      if (mode === "refuse") return incoming.socket.destroy();
      // "rate_limit": GitHub's answer once the token's hourly requests are used up.
      if (mode === "rate_limit") {
        const reset = Math.floor(Date.now() / 1000) + 3600;
        res.writeHead(403, { "content-type": "application/json", "x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(reset) });
        return res.end(JSON.stringify({ message: "API rate limit exceeded for user ID 1.", documentation_url: "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting" }));
      }
      if (mode === "garbage") {
        res.writeHead(200, { "content-type": "text/html" });
        return res.end("<html><body><h1>502 Bad Gateway</h1></body></html>");
      }
      if (mode) return send(res, reply(Number(mode), { message: `injected ${mode}` }));
      send(res, app.handle(req));
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(resolve);
      }),
  };
}

function decodePath(path) {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

function send(res, { status, body }) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

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

/** The container control server of the original (Bun + Hono, UPSTREAM-WIRE.md section 1): it
 * validates what the original validates and answers with its shapes and status codes. An
 * agent exists once started (or set through /__control/agent); unknown agents are 404.
 *
 * What the original accepts but the Town must never send is noted in `violations` (shown by
 * /__control/state): a start without an `X-Town-Config` object or without a container JWT,
 * signed with `jwtSecret`, for the start's town. */
function containerPlane({ jwtSecret }) {
  let agents = new Map();
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
    const token = verifyJwt(json.envVars?.GASTOWN_CONTAINER_TOKEN, jwtSecret);
    if (token.error) found.push(`envVars.GASTOWN_CONTAINER_TOKEN: ${token.error}`);
    else if (token.claims.scope !== "container" || token.claims.townId !== json.townId)
      found.push(`envVars.GASTOWN_CONTAINER_TOKEN is not a container token of ${json.townId}`);
    for (const v of found) violations.push({ agentId: json.agentId, townId: json.townId, violation: v });
  };

  return {
    state: () => ({ agents: [...agents.values()], violations, draining: [...draining] }),
    reset: (kept) => {
      for (const id of agents.keys()) if (!kept(`/agents/${id}`)) agents.delete(id);
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
      if (req.method !== "POST" || req.path !== "/__control/agent") return undefined;
      const { agent_id, status, exit_reason } = req.json ?? {};
      if (typeof agent_id !== "string" || typeof status !== "string")
        return reply(400, { error: "agent_id and status must be strings" });
      const agent = agents.get(agent_id) ?? { agentId: agent_id, start: null, messages: [], sessionId: `ses-${agent_id}`, startedAt: new Date().toISOString() };
      Object.assign(agent, { status, exitReason: exit_reason ?? null });
      agents.set(agent_id, agent);
      return reply(200, agent);
    },
    handle(req) {
      const { method, path, json } = req;
      if (method === "GET" && path === "/health")
        return reply(200, { status: "ok", agents: agents.size, servers: 0, uptime: Date.now() - startedAt });
      if (method === "POST" && path === "/refresh-token") {
        if (typeof json?.token !== "string" || json.token === "") return reply(400, { error: "token is required" });
        return reply(200, { refreshed: true, agentsRestarted: 0, agentsFailed: 0, results: [] });
      }
      if (method === "POST" && path === "/sync-config") return reply(200, { synced: true });
      if (method === "POST" && path === "/agents/start") {
        if (draining.has(json?.townId)) return reply(503, { error: "Container is draining, not accepting new agents" });
        const issues = startIssues(json);
        if (issues.length > 0) return reply(400, { error: "Invalid request body", issues });
        check(req, json);
        const previous = agents.get(json.agentId);
        const agent = {
          agentId: json.agentId, rigId: json.rigId, townId: json.townId, role: json.role, name: json.name,
          status: "running", exitReason: null, sessionId: `ses-${json.agentId}-${Date.now()}`, workdir: `/workspace/${json.rigId}/${json.branch}`,
          startedAt: new Date().toISOString(), start: json, messages: previous?.messages ?? [],
        };
        agents.set(json.agentId, agent);
        const { start, messages, ...record } = agent;
        return reply(201, { ...record, serverPort: 4096, lastActivityAt: agent.startedAt, activeTools: [], messageCount: 0 });
      }
      const m = /^\/agents\/([^/]+)\/(status|stop|message)$/.exec(path);
      if (!m) return reply(404, { error: "Not found" });
      const [, id, action] = m;
      const agent = agents.get(id);
      if (action === "status" && method === "GET") return agent ? reply(200, view(agent)) : notFound(id);
      if (method !== "POST") return reply(404, { error: "Not found" });
      if (!agent) return notFound(id);
      if (action === "stop") {
        if (["running", "starting"].includes(agent.status)) Object.assign(agent, { status: "exited", exitReason: "stopped" });
        return reply(200, { stopped: true });
      }
      if (typeof json?.prompt !== "string") return reply(400, { error: "Invalid request body" });
      if (agent.status !== "running") return reply(500, { error: `Agent ${id} is not running (${agent.status})` });
      agent.messages.push(json.prompt);
      return reply(200, { sent: true });
    },
  };
}

/** The GitHub API: REST pull requests, merges, check runs and combined statuses, and the GraphQL
 * review-threads query. Requests without a bearer token get 401, without a User-Agent 403. */
function githubApi() {
  let prs = new Map();
  const key = (owner, repo, number) => `${owner}/${repo}#${number}`.toLowerCase();
  const notFound = reply(404, { message: "Not Found", documentation_url: "https://docs.github.com/rest" });

  const combined = (statuses) => {
    if (statuses.length === 0) return "pending";
    if (statuses.some((s) => s.state === "failure" || s.state === "error")) return "failure";
    return statuses.every((s) => s.state === "success") ? "success" : "pending";
  };

  const pullView = (pr) => ({
    number: pr.number,
    html_url: `https://github.com/${pr.owner}/${pr.repo}/pull/${pr.number}`,
    state: pr.state,
    merged: pr.merged,
    merged_at: pr.merged_at,
    mergeable: pr.mergeable,
    head: { sha: pr.head_sha, ref: `gt/standin/${pr.number}` },
    base: { ref: "main" },
  });

  const byCommit = (owner, repo, sha) =>
    [...prs.values()].find((p) => `${p.owner}/${p.repo}`.toLowerCase() === `${owner}/${repo}`.toLowerCase() && p.head_sha === sha);

  const graphql = ({ query, variables } = {}) => {
    if (typeof query !== "string") return reply(400, { message: "Problems parsing JSON" });
    if (!/reviewThreads/.test(query))
      return reply(200, { errors: [{ message: "the stand-in answers only the reviewThreads query" }] });
    const { owner, repo, number } = variables ?? {};
    const pr = prs.get(key(owner, repo, number));
    if (!pr)
      return reply(200, {
        data: { repository: { pullRequest: null } },
        errors: [{ type: "NOT_FOUND", path: ["repository", "pullRequest"], message: `Could not resolve to a PullRequest with the number of ${number}.` }],
      });
    return reply(200, {
      data: {
        repository: {
          pullRequest: {
            headRefOid: pr.head_sha,
            reviewThreads: {
              nodes: pr.threads.slice(0, 100).map((t) => ({ isResolved: Boolean(t.isResolved) })),
              pageInfo: { hasNextPage: pr.threads.length > 100 || pr.threads_has_next_page },
            },
          },
        },
      },
    });
  };

  return {
    state: () => ({ prs: [...prs.values()] }),
    reset: (kept) => {
      for (const [k, p] of prs) if (!kept(`/repos/${p.owner}/${p.repo}/pulls/${p.number}`)) prs.delete(k);
    },
    control(req) {
      if (req.method !== "POST" || req.path !== "/__control/pr") return undefined;
      const b = req.json ?? {};
      if (typeof b.owner !== "string" || typeof b.repo !== "string" || !Number.isInteger(b.number) || b.number < 1)
        return reply(400, { error: "owner, repo (strings) and number (positive integer) are required" });
      const k = key(b.owner, b.repo, b.number);
      const pr = prs.get(k) ?? {
        owner: b.owner, repo: b.repo, number: b.number, state: "open", merged: false, merged_at: null,
        mergeable: true, head_sha: createHash("sha1").update(k).digest("hex"), check_runs: [],
        check_runs_total: null, statuses: [], threads: [], threads_has_next_page: false, merges: [],
      };
      for (const f of ["state", "merged", "head_sha", "mergeable", "check_runs", "check_runs_total", "statuses", "threads", "threads_has_next_page", "push_before_merge"])
        if (b[f] !== undefined) pr[f] = b[f];
      if (pr.merged) pr.merged_at ??= new Date().toISOString();
      prs.set(k, pr);
      return reply(200, pr);
    },
    handle(req) {
      const { method, path, query, headers, json } = req;
      if (!/^Bearer \S+/.test(headers.authorization ?? "")) return reply(401, { message: "Requires authentication" });
      if (!headers["user-agent"]) return reply(403, { message: "Request forbidden by administrative rules. Please make sure your request has a User-Agent header" });
      if (path === "/graphql") return method === "POST" ? graphql(json ?? undefined) : notFound;

      let m = /^\/repos\/([^/]+)\/([^/]+)\/pulls\/(\d+)(\/merge)?$/.exec(path);
      if (m) {
        const pr = prs.get(key(m[1], m[2], Number(m[3])));
        if (!pr) return notFound;
        if (!m[4]) return method === "GET" ? reply(200, pullView(pr)) : notFound;
        if (method !== "PUT") return notFound;
        const mergeMethod = json?.merge_method ?? "merge";
        if (!["merge", "squash", "rebase"].includes(mergeMethod)) return reply(422, { message: "Invalid merge_method" });
        if (pr.push_before_merge) [pr.head_sha, pr.push_before_merge] = [pr.push_before_merge, undefined];
        if (pr.merged || pr.state !== "open" || pr.mergeable === false) return reply(405, { message: "Pull Request is not mergeable" });
        if (json?.sha && json.sha !== pr.head_sha) return reply(409, { message: "Head branch was modified. Review and try the merge again." });
        const sha = randomBytes(20).toString("hex");
        Object.assign(pr, { merged: true, state: "closed", merged_at: new Date().toISOString() });
        pr.merges.push({ merge_method: mergeMethod, sha });
        return reply(200, { sha, merged: true, message: "Pull Request successfully merged" });
      }

      m = /^\/repos\/([^/]+)\/([^/]+)\/commits\/([^/]+)\/(check-runs|status)$/.exec(path);
      if (m && method === "GET") {
        const pr = byCommit(m[1], m[2], m[3]);
        if (!pr) return reply(422, { message: `No commit found for SHA: ${m[3]}` });
        if (m[4] === "status")
          return reply(200, { sha: pr.head_sha, state: combined(pr.statuses), total_count: pr.statuses.length, statuses: pr.statuses });
        const perPage = Math.min(Math.max(Number(query.per_page ?? 30) || 30, 1), 100);
        const runs = pr.check_runs.map((r, i) => ({ id: i + 1, name: r.name ?? `check-${i + 1}`, head_sha: pr.head_sha, status: r.status, conclusion: r.conclusion ?? null }));
        return reply(200, { total_count: Math.max(pr.check_runs_total ?? 0, runs.length), check_runs: runs.slice(0, perPage) });
      }
      return notFound;
    },
  };
}

// The stand-in servers (tools/sim/standins.mjs), driven from inside workerd exactly as the Worker reaches
// them: every failure mode really fails, every request is recorded, and each service answers
// as the protocol says. Ids are unique per run so that other test files can share the servers.
import { describe, it, expect } from "vitest";
import { env } from "cloudflare:test";

const run = `st${Date.now().toString(36)}`;
const GITHUB_HEADERS = { authorization: "Bearer standin-token", "user-agent": "standins-test", accept: "application/vnd.github+json" };

async function send(base, method, path, { body, headers = {}, signal } = {}) {
  const init = { method, headers: { ...headers }, signal };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    init.headers["content-type"] ??= "application/json";
  }
  const res = await fetch(`${base}${path}`, init);
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, type: res.headers.get("content-type"), text, json };
}

async function control(base, method, path, body) {
  const res = await send(base, method, `/__control/${path}`, { body });
  if (res.status !== 200) throw new Error(`control ${path}: ${res.status} ${res.text}`);
  return res.json;
}

const requests = (base, prefix) => control(base, "GET", `requests?path_prefix=${encodeURIComponent(prefix)}`);

const servers = [
  ["container", () => env.CONTAINER_URL, (id) => `/agents/${id}/status`, {}],
  ["github", () => env.GITHUB_API_URL, (id) => `/repos/standins/${id}/pulls/1`, GITHUB_HEADERS],
];

describe.each(servers)("the %s stand-in", (name, base, pathOf, headers) => {
  const path = (mode) => pathOf(`${run}-${name}-${mode}`);
  const fail = (mode, extra = {}) => control(base(), "POST", "fail", { path_prefix: path(mode), mode, ...extra });

  it("is bound into the Worker's env as a local URL", () => {
    expect(base()).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('"500" answers that status for `times` requests, then the normal answer', async () => {
    await fail("500", { times: 2 });
    for (let i = 0; i < 2; i++) {
      const res = await send(base(), "GET", path("500"), { headers });
      expect(res.status).toBe(500);
      expect(res.json).toEqual({ message: "injected 500" });
    }
    // The normal answer: both know no such agent or pull request.
    const normal = await send(base(), "GET", path("500"), { headers });
    expect(normal.status).toBe(404);
    expect(normal.json).not.toEqual({ message: "injected 500" });
  });

  it("any three-digit status can be injected, for one method only", async () => {
    await fail("409", { method: "put" });
    const get = await send(base(), "GET", path("409"), { headers });
    expect(get.status).not.toBe(409);
    const put = await send(base(), "PUT", path("409"), { headers, body: {} });
    expect(put.status).toBe(409);
  });

  it('"garbage" answers 200 with a body that is not JSON', async () => {
    await fail("garbage");
    const res = await send(base(), "GET", path("garbage"), { headers });
    expect(res.status).toBe(200);
    expect(res.type).toBe("text/html");
    expect(() => JSON.parse(res.text)).toThrow();
  });

  it('"timeout" never answers', async () => {
    await fail("timeout");
    const started = Date.now();
    await expect(send(base(), "GET", path("timeout"), { headers, signal: AbortSignal.timeout(400) })).rejects.toThrow();
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    const [recorded] = await requests(base(), path("timeout"));
    expect(recorded.method).toBe("GET");
  });

  it('"stall" answers the headers and never ends the body', async () => {
    await fail("stall");
    const signal = AbortSignal.timeout(400);
    const res = await fetch(`${base()}${path("stall")}`, { headers, signal });
    expect(res.status).toBe(200);
    const started = Date.now();
    await expect(res.text()).rejects.toThrow();
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
  });

  // workerd also logs the lost connection ("Network connection lost") on its own; expected here.
  it('"refuse" breaks the connection', async () => {
    await fail("refuse");
    const error = await send(base(), "GET", path("refuse"), { headers }).then(
      (res) => res,
      (e) => e,
    );
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toMatch(/connection lost/i);
    expect(await requests(base(), path("refuse"))).toHaveLength(1);
    // Only that one request: the next is answered.
    expect((await send(base(), "GET", path("refuse"), { headers })).status).toBeLessThan(500);
  });

  it("records method, path, query, headers and body of every request", async () => {
    const p = path("record");
    await send(base(), "POST", `${p}?per_page=100&x=y`, { headers: { ...headers, "x-probe": "1" }, body: { hello: "world" } });
    await send(base(), "GET", p, { headers });
    const got = await requests(base(), p);
    expect(got).toHaveLength(2);
    expect(got[0]).toMatchObject({
      method: "POST",
      path: p,
      query: { per_page: "100", x: "y" },
      body: '{"hello":"world"}',
      json: { hello: "world" },
    });
    expect(got[0].headers["x-probe"]).toBe("1");
    expect(got[0].headers["content-type"]).toBe("application/json");
    expect(got[1]).toMatchObject({ method: "GET", path: p, body: "", json: null });
    expect(got[1].at).toBeGreaterThanOrEqual(got[0].at);
  });

  it("a scoped reset forgets requests and pending failures under its prefix only", async () => {
    const [gone, kept] = [path("reset-gone"), path("reset-kept")];
    await send(base(), "GET", gone, { headers });
    await send(base(), "GET", kept, { headers });
    await control(base(), "POST", "fail", { path_prefix: gone, mode: "500" });
    await control(base(), "POST", "reset", { path_prefix: gone });
    expect(await requests(base(), gone)).toEqual([]);
    expect(await requests(base(), kept)).toHaveLength(1);
    expect((await send(base(), "GET", gone, { headers })).status).not.toBe(500);
  });

  it("a failure with `json` hits only requests whose JSON body has those fields", async () => {
    const p = path("json");
    await control(base(), "POST", "fail", { path_prefix: p, mode: "503", json: { townId: `${run}-mine`, role: "polecat" } });
    const other = await send(base(), "POST", p, { headers, body: { townId: `${run}-other`, role: "polecat" } });
    expect(other.status).not.toBe(503);
    const partly = await send(base(), "POST", p, { headers, body: { townId: `${run}-mine`, role: "mayor" } });
    expect(partly.status).not.toBe(503);
    const noBody = await send(base(), "GET", p, { headers });
    expect(noBody.status).not.toBe(503);
    const mine = await send(base(), "POST", p, { headers, body: { townId: `${run}-mine`, role: "polecat", extra: 1 } });
    expect(mine.status).toBe(503);
    const again = await send(base(), "POST", p, { headers, body: { townId: `${run}-mine`, role: "polecat" } });
    expect(again.status).not.toBe(503);
  });

  it("refuses malformed control requests", async () => {
    for (const body of [{ mode: "500" }, { path_prefix: "x", mode: "500" }, { path_prefix: "/x", mode: "slow" }, { path_prefix: "/x", mode: "500", times: 0 }, { path_prefix: "/x", mode: "500", json: ["town"] }, { path_prefix: "/x", mode: "500", json: "town" }]) {
      expect((await send(base(), "POST", "/__control/fail", { body })).status).toBe(400);
    }
    expect((await send(base(), "GET", "/__control/nope")).status).toBe(404);
  });
});

describe("the container control server (as the original)", () => {
  const base = () => env.CONTAINER_URL;
  const start = (agentId, overrides = {}) => ({
    agentId, rigId: "rig-1", townId: "town-1", role: "polecat", name: "Toast", identity: `Toast@${agentId}`,
    prompt: "Fix it", model: "anthropic/claude-sonnet-4.6", gitUrl: "https://github.com/acme/widgets.git",
    branch: "gt/toast/1", defaultBranch: "main", ...overrides,
  });
  const withConfig = { "x-town-config": JSON.stringify({ town_id: "town-1" }) };

  it("reports health, takes tokens and config, and answers unknown paths with 404", async () => {
    const res = await send(base(), "GET", "/health");
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ status: "ok", servers: 0 });
    expect(typeof res.json.uptime).toBe("number");
    expect((await send(base(), "POST", "/refresh-token", { body: { token: "t", townId: "town-1" } })).json).toMatchObject({ refreshed: true });
    expect((await send(base(), "POST", "/refresh-token", { body: { token: "" } })).status).toBe(400);
    expect((await send(base(), "POST", "/sync-config", { headers: withConfig })).json).toEqual({ synced: true });
    expect(await send(base(), "GET", "/nope")).toMatchObject({ status: 404, json: { error: "Not found" } });
  });

  it("tracks an agent through start (201), message, stop, and 404s an unknown one", async () => {
    const id = `${run}-agent`;
    expect(await send(base(), "GET", `/agents/${id}/status`)).toMatchObject({ status: 404, json: { error: `Agent ${id} not found` } });
    const started = await send(base(), "POST", "/agents/start", { headers: withConfig, body: start(id, { systemPrompt: "be brief", extra: "stripped" }) });
    expect(started).toMatchObject({ status: 201, json: { agentId: id, rigId: "rig-1", townId: "town-1", role: "polecat", status: "running" } });
    expect((await send(base(), "GET", `/agents/${id}/status`)).json).toMatchObject({ agentId: id, status: "running", exitReason: null, activeTools: [] });

    expect((await send(base(), "POST", `/agents/${id}/message`, { body: { prompt: "status?" } })).json).toEqual({ sent: true });
    expect((await send(base(), "POST", `/agents/${id}/message`, { body: {} })).status).toBe(400);

    expect((await send(base(), "POST", `/agents/${id}/stop`, { body: {} })).json).toEqual({ stopped: true });
    expect((await send(base(), "GET", `/agents/${id}/status`)).json).toMatchObject({ status: "exited", exitReason: "stopped" });

    const { agents } = await control(base(), "GET", "state");
    const agent = agents.find((a) => a.agentId === id);
    expect(agent.messages).toEqual(["status?"]);
    expect(agent.start.systemPrompt).toBe("be brief");
  });

  it("validates the start as the original's schema: required strings with model, the role enum, envVars of strings", async () => {
    const id = `${run}-invalid`;
    for (const [overrides, path] of [
      [{ model: undefined }, "model"],
      [{ agentId: 7 }, "agentId"],
      [{ role: "witness" }, "role"],
      [{ envVars: { A: 1 } }, "envVars.A"],
      [{ lightweight: "yes" }, "lightweight"],
      [{ rigs: [{ rigId: "r" }] }, "rigs.0.gitUrl"],
    ]) {
      const res = await send(base(), "POST", "/agents/start", { headers: withConfig, body: start(id, overrides) });
      expect(res.status, JSON.stringify(overrides)).toBe(400);
      expect(res.json.error).toBe("Invalid request body");
      expect(res.json.issues.map((i) => i.path.join("."))).toContain(path);
    }
    expect((await send(base(), "POST", "/agents/start", { body: "not json" })).status).toBe(400);
    // Empty strings pass, as in zod.
    expect((await send(base(), "POST", "/agents/start", { headers: withConfig, body: start(id, { gitUrl: "", rigId: "" }) })).status).toBe(201);
    expect((await send(base(), "POST", `/agents/${run}-ghost/stop`, { body: {} })).status).toBe(404);
    expect((await send(base(), "POST", `/agents/${run}-ghost/message`, { body: { prompt: "x" } })).status).toBe(404);
  });

  it("notes what the original accepts and the Town must not send: no town config, no container JWT", async () => {
    const id = `${run}-lax`;
    expect((await send(base(), "POST", "/agents/start", { body: start(id) })).status).toBe(201);
    const { violations } = await control(base(), "GET", "state");
    expect(violations.filter((v) => v.agentId === id).map((v) => v.violation)).toEqual([
      "X-Town-Config is missing or not a JSON object",
      "envVars.GASTOWN_CONTAINER_TOKEN: not a JWT",
    ]);
  });

  it("refuses starts with 503 while draining", async () => {
    const townId = `${run}-draining`;
    await control(base(), "POST", "draining", { town_id: townId, draining: true });
    const res = await send(base(), "POST", "/agents/start", { headers: withConfig, body: start(`${run}-drained`, { townId }) });
    expect(res).toMatchObject({ status: 503, json: { error: expect.stringMatching(/draining/) } });
    await control(base(), "POST", "draining", { town_id: townId, draining: false });
    expect((await send(base(), "POST", "/agents/start", { headers: withConfig, body: start(`${run}-drained`, { townId }) })).status).toBe(201);
  });

  it("lets tests set an agent's state, as when its process exits", async () => {
    const id = `${run}-crashed`;
    await send(base(), "POST", "/agents/start", { headers: withConfig, body: start(id) });
    await control(base(), "POST", "agent", { agent_id: id, status: "exited", exit_reason: "oom" });
    expect((await send(base(), "GET", `/agents/${id}/status`)).json).toMatchObject({ status: "exited", exitReason: "oom" });
    await control(base(), "POST", "reset", { path_prefix: `/agents/${id}` });
    expect((await send(base(), "GET", `/agents/${id}/status`)).status).toBe(404);
  });
});

describe("the GitHub API", () => {
  const base = () => env.GITHUB_API_URL;
  const repo = `${run}-repo`;
  const gh = (method, path, body) => send(base(), method, path, { headers: GITHUB_HEADERS, body });
  const pr = (number, fields = {}) => control(base(), "POST", "pr", { owner: "acme", repo, number, ...fields });
  const graphql = (number) =>
    gh("POST", "/graphql", {
      query: "query($owner: String!, $repo: String!, $number: Int!) { repository(owner: $owner, name: $repo) { pullRequest(number: $number) { headRefOid reviewThreads(first: 100) { nodes { isResolved } pageInfo { hasNextPage } } } } }",
      variables: { owner: "acme", repo, number },
    });

  it("requires a bearer token and a User-Agent", async () => {
    await pr(1);
    const path = `/repos/acme/${repo}/pulls/1`;
    expect((await send(base(), "GET", path, { headers: { "user-agent": "x" } })).status).toBe(401);
    expect((await send(base(), "GET", path, { headers: { authorization: "Bearer t" } })).status).toBe(403);
    expect((await gh("GET", path)).status).toBe(200);
  });

  it("answers a pull request's state, and merges it once", async () => {
    const set = await pr(2);
    const path = `/repos/acme/${repo}/pulls/2`;
    expect((await gh("GET", path)).json).toMatchObject({ number: 2, state: "open", merged: false, head: { sha: set.head_sha } });
    expect(set.head_sha).toMatch(/^[0-9a-f]{40}$/);

    const merged = await gh("PUT", `${path}/merge`, { merge_method: "merge" });
    expect(merged.status).toBe(200);
    expect(merged.json).toMatchObject({ merged: true, message: "Pull Request successfully merged" });
    expect((await gh("GET", path)).json).toMatchObject({ state: "closed", merged: true });
    expect((await gh("PUT", `${path}/merge`, { merge_method: "merge" })).status).toBe(405);

    const { prs } = await control(base(), "GET", "state");
    expect(prs.find((p) => p.repo === repo && p.number === 2).merges).toEqual([{ merge_method: "merge", sha: merged.json.sha }]);
    expect((await gh("GET", `/repos/acme/${repo}/pulls/999`)).status).toBe(404);
  });

  it("refuses to merge an unmergeable or closed PR, or a moved head", async () => {
    await pr(3, { mergeable: false });
    expect((await gh("PUT", `/repos/acme/${repo}/pulls/3/merge`, { merge_method: "merge" })).status).toBe(405);
    await pr(4, { state: "closed" });
    expect((await gh("PUT", `/repos/acme/${repo}/pulls/4/merge`, {})).status).toBe(405);
    await pr(5);
    expect((await gh("PUT", `/repos/acme/${repo}/pulls/5/merge`, { sha: "0".repeat(40) })).status).toBe(409);
    expect((await gh("PUT", `/repos/acme/${repo}/pulls/5/merge`, { merge_method: "octopus" })).status).toBe(422);
    // A push racing the check: the head moves as the merge arrives, and the merge pinned to the
    // checked head is refused; pinned to the new head, it merges.
    const checked = (await pr(8)).head_sha;
    await pr(8, { push_before_merge: "e".repeat(40) });
    const raced = await gh("PUT", `/repos/acme/${repo}/pulls/8/merge`, { merge_method: "merge", sha: checked });
    expect(raced.status).toBe(409);
    expect(raced.json.message).toMatch(/^Head branch was modified/);
    expect((await gh("GET", `/repos/acme/${repo}/pulls/8`)).json).toMatchObject({ merged: false, head: { sha: "e".repeat(40) } });
    expect((await gh("PUT", `/repos/acme/${repo}/pulls/8/merge`, { sha: "e".repeat(40) })).status).toBe(200);
  });

  it("serves review threads over GraphQL, with a next page beyond 100", async () => {
    const set = await pr(6, { threads: [{ isResolved: true }, { isResolved: false }] });
    const res = await graphql(6);
    expect(res.status).toBe(200);
    expect(res.json.data.repository.pullRequest).toEqual({
      headRefOid: set.head_sha,
      reviewThreads: { nodes: [{ isResolved: true }, { isResolved: false }], pageInfo: { hasNextPage: false } },
    });
    await pr(6, { threads: Array.from({ length: 101 }, () => ({ isResolved: true })) });
    const many = (await graphql(6)).json.data.repository.pullRequest.reviewThreads;
    expect(many.nodes).toHaveLength(100);
    expect(many.pageInfo.hasNextPage).toBe(true);
    const missing = await graphql(404);
    expect(missing.json.data.repository.pullRequest).toBeNull();
    expect(missing.json.errors[0].type).toBe("NOT_FOUND");
  });

  it("serves check runs by page and the legacy combined status of the head commit", async () => {
    const runs = [
      { name: "build", status: "completed", conclusion: "success" },
      { name: "lint", status: "completed", conclusion: "failure" },
      { name: "e2e", status: "in_progress" },
    ];
    const { head_sha } = await pr(7, { check_runs: runs, check_runs_total: 150, statuses: [{ context: "ci/legacy", state: "success" }] });
    const commit = `/repos/acme/${repo}/commits/${head_sha}`;
    const page = (await gh("GET", `${commit}/check-runs?per_page=2`)).json;
    expect(page.total_count).toBe(150);
    expect(page.check_runs.map((r) => [r.name, r.status, r.conclusion])).toEqual([
      ["build", "completed", "success"],
      ["lint", "completed", "failure"],
    ]);
    expect((await gh("GET", `${commit}/check-runs?per_page=100`)).json.check_runs).toHaveLength(3);
    expect((await gh("GET", `${commit}/status`)).json).toMatchObject({ state: "success", total_count: 1 });

    await pr(7, { statuses: [] });
    expect((await gh("GET", `${commit}/status`)).json).toMatchObject({ state: "pending", total_count: 0 });
    await pr(7, { statuses: [{ state: "success" }, { state: "error" }] });
    expect((await gh("GET", `${commit}/status`)).json.state).toBe("failure");
    expect((await gh("GET", `/repos/acme/${repo}/commits/${"f".repeat(40)}/status`)).status).toBe(422);
  });
});

describe("the PR host's git side (what an agent's git and gh do)", () => {
  const base = () => env.GITHUB_API_URL;
  const repo = `${run}-git`;
  const gh = (method, path, body) => send(base(), method, path, { headers: GITHUB_HEADERS, body });
  const refs = `/repos/acme/${repo}/git/refs`;
  const sha = (c) => c.repeat(40);

  it("takes a push: a branch created, then moved; a second create is 422, an unknown branch 404", async () => {
    const created = await gh("POST", refs, { ref: "refs/heads/gt/toast/1", sha: sha("a") });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ ref: "refs/heads/gt/toast/1", object: { sha: sha("a"), type: "commit" } });
    expect((await gh("POST", refs, { ref: "refs/heads/gt/toast/1", sha: sha("b") })).json).toEqual({ message: "Reference already exists" });
    expect((await gh("PATCH", `${refs}/heads/gt/toast/1`, { sha: sha("b"), force: true })).json.object.sha).toBe(sha("b"));
    expect((await gh("GET", `/repos/acme/${repo}/git/ref/heads/gt/toast/1`)).json.object.sha).toBe(sha("b"));
    // Every repository has its main branch; other branches exist once pushed.
    expect((await gh("GET", `/repos/acme/${repo}/git/ref/heads/main`)).status).toBe(200);
    expect((await gh("GET", `/repos/acme/${repo}/git/ref/heads/nope`)).status).toBe(404);
    expect((await gh("POST", refs, { ref: "main", sha: sha("c") })).status).toBe(422);
  });

  it("opens a pull request of a pushed branch, with simulated CI running on its head", async () => {
    await gh("POST", refs, { ref: "refs/heads/gt/maple/2", sha: sha("d") });
    const opened = await gh("POST", `/repos/acme/${repo}/pulls`, { title: "Add rate limiting", head: "gt/maple/2", base: "main" });
    expect(opened.status).toBe(201);
    const { number, html_url } = opened.json;
    expect(html_url).toBe(`https://github.com/acme/${repo}/pull/${number}`);
    expect(opened.json).toMatchObject({ state: "open", merged: false, head: { ref: "gt/maple/2", sha: sha("d") }, base: { ref: "main" } });
    const runs = (await gh("GET", `/repos/acme/${repo}/commits/${sha("d")}/check-runs`)).json;
    expect(runs).toMatchObject({ total_count: 1, check_runs: [{ name: "ci", status: "in_progress", conclusion: null, head_sha: sha("d") }] });
    // A second PR of the same head, a head never pushed, a base that does not exist: 422.
    for (const body of [
      { title: "again", head: "gt/maple/2", base: "main" },
      { title: "x", head: "gt/none/9", base: "main" },
      { title: "x", head: "gt/maple/2", base: "release" },
      { head: "gt/maple/2", base: "main" },
    ]) {
      const refused = await gh("POST", `/repos/acme/${repo}/pulls`, body);
      expect(refused.status, JSON.stringify(body)).toBe(422);
      expect(refused.json.message).toBe("Validation Failed");
    }
    // A push to its head moves the pull request's head.
    await gh("PATCH", `${refs}/heads/gt/maple/2`, { sha: sha("e") });
    expect((await gh("GET", `/repos/acme/${repo}/pulls/${number}`)).json.head.sha).toBe(sha("e"));
  });

  it("records reviews, merges a branch into another, and a merged pull request moves its base", async () => {
    await gh("POST", refs, { ref: "refs/heads/gt/birch/3", sha: sha("f") });
    const { number } = (await gh("POST", `/repos/acme/${repo}/pulls`, { title: "Paginate", head: "gt/birch/3", base: "main" })).json;
    const review = await gh("POST", `/repos/acme/${repo}/pulls/${number}/reviews`, { event: "APPROVE", body: "Looks good." });
    expect(review.status).toBe(200);
    expect(review.json).toMatchObject({ state: "APPROVED", commit_id: sha("f") });
    expect((await gh("POST", `/repos/acme/${repo}/pulls/${number}/reviews`, { event: "LGTM" })).status).toBe(422);
    expect((await gh("POST", `/repos/acme/${repo}/pulls/999/reviews`, { event: "APPROVE" })).status).toBe(404);

    const merged = await gh("PUT", `/repos/acme/${repo}/pulls/${number}/merge`, { merge_method: "merge", sha: sha("f") });
    expect(merged.status).toBe(200);
    expect((await gh("GET", `/repos/acme/${repo}/git/ref/heads/main`)).json.object.sha).toBe(merged.json.sha);

    await gh("POST", refs, { ref: "refs/heads/feature", sha: sha("1") });
    const branchMerge = await gh("POST", `/repos/acme/${repo}/merges`, { base: "feature", head: "gt/birch/3" });
    expect(branchMerge.status).toBe(201);
    expect((await gh("GET", `/repos/acme/${repo}/git/ref/heads/feature`)).json.object.sha).toBe(branchMerge.json.sha);
    expect((await gh("POST", `/repos/acme/${repo}/merges`, { base: "nope", head: "gt/birch/3" })).json).toEqual({ message: "Base does not exist" });
    expect((await gh("POST", `/repos/acme/${repo}/merges`, { base: "feature", head: "nope" })).json).toEqual({ message: "Head does not exist" });
    const { repos } = await control(base(), "GET", "state");
    expect(Object.keys(repos.find((r) => r.repo === repo).branches).sort()).toEqual(["feature", "gt/birch/3", "gt/maple/2", "gt/toast/1", "main"]);
  });

  it("refuses a fate rule where no agents are simulated (the tests' stand-ins)", async () => {
    const res = await send(env.CONTAINER_URL, "POST", "/__control/fate", { body: { task_contains: "x", fate: "crash" } });
    expect(res.status).toBe(400);
    expect(res.json).toEqual({ error: "no agents are simulated here" });
  });
});

// Whole scenarios against the real Worker in workerd and the stand-in servers (tools/sim):
// work is slung over the Town API, ticks are fired through the Durable Object's alarm, agents
// answer over their callbacks with the town's container token, and each step is checked in
// three places: the town's state, the requests the stand-ins recorded, and the side-effect
// counts (doubles 4/5/6: attempted / succeeded / failed) of the town's `reconciler_tick` points.
//
// Other test files share the stand-ins, so every town, rig, repository and injected failure
// here is scoped to ids unique to this run (an injected /agents/start failure carries the
// town's id in its `json` match).
import { describe, it, expect } from "vitest";
import { env } from "cloudflare:test";
import { addRig, advance, agentToken, call, control, createTown, points, seedAgent, sql, tick as runAlarm } from "./helpers.mjs";

const run = `scn${Date.now().toString(36)}`;
const MINUTE = 60_000;

// ---- the stand-ins --------------------------------------------------------------------------

const container = {
  requests: (prefix) => control(env.CONTAINER_URL, "GET", `requests?path_prefix=${encodeURIComponent(prefix)}`),
  fail: (rule) => control(env.CONTAINER_URL, "POST", "fail", rule),
  agent: (state) => control(env.CONTAINER_URL, "POST", "agent", state),
};

const github = {
  requests: (prefix) => control(env.GITHUB_API_URL, "GET", `requests?path_prefix=${encodeURIComponent(prefix)}`),
  pr: (fields) => control(env.GITHUB_API_URL, "POST", "pr", fields),
  state: () => control(env.GITHUB_API_URL, "GET", "state"),
};

/** The `POST /agents/start` requests the container received for `town`, oldest first. */
async function startsOf(town) {
  return (await container.requests("/agents/start")).filter((r) => r.json?.townId === town);
}

/** Requests the container received for one agent (status, stop, message), oldest first. */
async function agentRequests(agentId, action) {
  const all = await container.requests(`/agents/${agentId}/`);
  return action ? all.filter((r) => r.path === `/agents/${agentId}/${action}`) : all;
}

// ---- the Worker -----------------------------------------------------------------------------

/**
 * One tick (`helpers.tick`: the alarm handler run, the re-armed alarm parked an hour out in the
 * same call, so every tick of these scenarios is one the test fired), remembering how far ahead
 * it re-armed the alarm (0 = at once, due now).
 */
let lastRearm;
async function tick(town) {
  lastRearm = await runAlarm(town);
  return lastRearm;
}

/** The town's `reconciler_tick` points, in the order written. */
async function ticksOf(town) {
  return (await points(town)).filter((p) => p.indexes[0] === "reconciler_tick");
}

/** [attempted, succeeded, failed] of a `reconciler_tick` point. */
const effects = (p) => p.doubles.slice(3, 6);

/** [attempted, succeeded, failed] summed over every tick of the town. */
async function totalEffects(town) {
  return (await ticksOf(town)).map(effects).reduce((sum, e) => sum.map((x, i) => x + e[i]), [0, 0, 0]);
}

/**
 * Ticks once and returns the side-effect counts of the point that tick wrote. The Worker hands
 * points to the capture Worker without awaiting them, so the point is waited for (briefly).
 */
async function tickEffects(town) {
  const before = (await ticksOf(town)).length;
  await tick(town);
  let after = await ticksOf(town);
  for (let i = 0; i < 50 && after.length === before; i++) {
    await new Promise((r) => setTimeout(r, 20));
    after = await ticksOf(town);
  }
  expect(after).toHaveLength(before + 1);
  return effects(after[after.length - 1]);
}

/** Sends an agent callback as the container does: the container token its start carried, the
 * agent's rig and id from the same start. */
async function callback(town, start, action, body) {
  const token = start.envVars.GASTOWN_CONTAINER_TOKEN;
  const rigId = start.rigId;
  return call("POST", `/api/towns/${town}/rigs/${rigId}/agents/${start.agentId}/${action}`, { token, body });
}

/** The slug of an agent name in a branch, as the original makes it. */
const slug = (name) => name.toLowerCase().replace(/[^a-z0-9-]/g, "-").replace(/-+/g, "-");

async function bead(town, id) {
  const res = await call("GET", `/api/towns/${town}/beads/${id}`);
  expect(res.status, res.text).toBe(200);
  return res.json.bead;
}

async function agent(town, id) {
  const res = await call("GET", `/api/towns/${town}/agents`);
  expect(res.status, res.text).toBe(200);
  return res.json.agents.find((a) => a.agent_id === id);
}

async function newTown(name, config) {
  const town = `${run}-${name}`;
  await createTown(town, `owner-${name}`, config);
  return town;
}

async function sling(town, rigId, title, body) {
  const res = await call("POST", `/api/towns/${town}/beads`, { body: { rig_id: rigId, title, body } });
  expect(res.status, res.text).toBe(201);
  return res.json.bead;
}

/** Merge requests tracking `sourceId`. */
async function mrsOf(town, sourceId) {
  return sql(
    town,
    `SELECT b.bead_id, b.status, r.branch, r.target_branch, r.pr_url FROM beads b
     JOIN review_metadata r ON r.bead_id = b.bead_id
     JOIN bead_dependencies d ON d.bead_id = b.bead_id AND d.dependency_type = 'tracks'
     WHERE b.type = 'merge_request' AND d.depends_on_bead_id = ? ORDER BY b.created_at, b.rowid`,
    sourceId,
  );
}

/** Checks a start request carries the protocol fields the dispatch promised. */
async function expectStart(req, want) {
  expect(req.method).toBe("POST");
  expect(req.headers["content-type"]).toBe("application/json");
  expect(req.json).toMatchObject(want);
  // The town config rides along, and the container token is in the agent's environment (the
  // stand-in verifies it: no violation for this agent).
  expect(JSON.parse(req.headers["x-town-config"]).town_id).toBe(want.townId);
  expect(req.json.envVars.GASTOWN_CONTAINER_TOKEN.split(".")).toHaveLength(3);
  const { violations } = await control(env.CONTAINER_URL, "GET", "state");
  expect(violations.filter((v) => v.agentId === req.json.agentId)).toEqual([]);
}

// ---- A: the direct strategy -------------------------------------------------------------------

describe("A: a bead goes from sling to closed with the direct strategy", () => {
  it("dispatches a polecat, reviews through the refinery, and closes the bead", async () => {
    const town = await newTown("direct");
    const repo = `acme/${run}-direct`;
    await addRig(town, "web", repo);
    const slung = await sling(town, "web", "Fix the login form", "The submit button does nothing.");
    expect(slung.status).toBe("open");

    // Tick 1: B1 dispatches a polecat; the container accepts its start.
    expect(await tickEffects(town)).toEqual([1, 1, 0]);
    const [start] = await startsOf(town);
    expect(await startsOf(town)).toHaveLength(1);
    const polecat = await agent(town, start.json.agentId);
    expect(polecat).toMatchObject({ role: "polecat", name: "Toast", status: "working", current_hook_bead_id: slung.bead_id, dispatch_attempts: 0 });
    await expectStart(start, {
      townId: town,
      rigId: "web",
      role: "polecat",
      name: "Toast",
      identity: polecat.identity,
      prompt: "Fix the login form\n\nThe submit button does nothing.",
      model: "anthropic/claude-sonnet-4.6",
      gitUrl: `https://github.com/${repo}.git`,
      branch: `gt/toast/${slung.bead_id.slice(0, 8)}`,
      defaultBranch: "main",
    });
    // The direct strategy gives a polecat no system prompt of its own.
    expect(start.json.systemPrompt).toBeUndefined();
    const dispatched = await bead(town, slung.bead_id);
    expect(dispatched).toMatchObject({ status: "in_progress", assignee_agent_bead_id: polecat.agent_id, dispatch_attempts: 1 });
    const [{ last_dispatch_error }] = await sql(town, "SELECT last_dispatch_error FROM beads WHERE bead_id = ?", slung.bead_id);
    expect(last_dispatch_error).toBeNull();

    // The agent reports in with the town's container token.
    const beat = await callback(town, start.json, "heartbeat", { lastEventType: "tool_call", activeTools: ["bash"] });
    expect(beat.status, beat.text).toBe(200);
    expect(beat.json).toEqual({ success: true, data: { heartbeat: true } });
    expect((await agent(town, start.json.agentId)).active_tools).toEqual(["bash"]);
    // ... an agent token of another agent is refused.
    const forged = await call("POST", `/api/towns/${town}/rigs/web/agents/${start.json.agentId}/heartbeat`, { token: await agentToken(town, "someone-else", "web"), body: {} });
    expect(forged.status).toBe(403);

    const done = await callback(town, start.json, "done", { branch: start.json.branch, summary: "Wired the button" });
    expect(done.status, done.text).toBe(200);

    // Tick 2: the done becomes a merge request, popped at once for a new refinery (R5).
    expect(await tickEffects(town)).toEqual([1, 1, 0]);
    // The working polecat heartbeated just now, so the container was not asked about it (only
    // an agent unheard of for TICK_OBSERVE_INTERVAL_MS is).
    expect(await agentRequests(polecat.agent_id, "status")).toHaveLength(0);
    const [mr] = await mrsOf(town, slung.bead_id);
    expect(mr).toMatchObject({ status: "in_progress", branch: start.json.branch, target_branch: "main", pr_url: null });
    expect((await bead(town, slung.bead_id)).status).toBe("in_review");
    const starts = await startsOf(town);
    expect(starts).toHaveLength(2);
    const review = starts[1];
    const refinery = await agent(town, review.json.agentId);
    expect(refinery).toMatchObject({ role: "refinery", status: "working", current_hook_bead_id: mr.bead_id });
    await expectStart(review, {
      townId: town,
      rigId: "web",
      role: "refinery",
      identity: refinery.identity,
      // A branch of its own; the one under review is in its system prompt.
      branch: `gt/${slug(refinery.name)}/${mr.bead_id.slice(0, 8)}`,
      defaultBranch: "main",
      gitUrl: `https://github.com/${repo}.git`,
    });
    expect(review.json.systemPrompt).toContain(`Review merge request ${mr.bead_id}: branch ${start.json.branch} into main`);
    expect(review.json.systemPrompt).toContain("Merge the branch into main yourself");

    // The refinery merged it itself: done without a PR URL.
    expect((await callback(town, review.json, "heartbeat", {})).status).toBe(200);
    const merged = await callback(town, review.json, "done", { branch: start.json.branch, summary: "LGTM, merged" });
    expect(merged.status, merged.text).toBe(200);

    // Tick 3: the review completes as merged and the bead closes; nothing to call out.
    expect(await tickEffects(town)).toEqual([0, 0, 0]);
    expect((await mrsOf(town, slung.bead_id))[0].status).toBe("closed");
    const closed = await bead(town, slung.bead_id);
    expect(closed.status).toBe("closed");
    expect(closed.closed_at).not.toBeNull();
    expect((await agent(town, refinery.agent_id)).current_hook_bead_id).toBeNull();

    // Over the whole scenario: two side effects attempted, both accepted, exactly the two
    // starts the container recorded; no stop or message was ever sent.
    expect(await startsOf(town)).toHaveLength(2);
    expect(await totalEffects(town)).toEqual([2, 2, 0]);
    for (const id of [polecat.agent_id, refinery.agent_id]) {
      expect(await agentRequests(id, "stop")).toEqual([]);
      expect(await agentRequests(id, "message")).toEqual([]);
    }
  });
});

// ---- B: the PR strategy -----------------------------------------------------------------------

describe("B: the PR strategy", () => {
  const owner = "acme";
  const repo = `${run}-pr`;
  const pullPath = (n) => `/repos/${owner}/${repo}/pulls/${n}`;
  const prUrl = (n) => `https://github.com/${owner}/${repo}/pull/${n}`;
  /** GitHub requests about this repository (REST and GraphQL), oldest first. */
  const githubRequests = async () => {
    const rest = await github.requests(`/repos/${owner}/${repo}/`);
    const graphql = (await github.requests("/graphql")).filter((r) => r.json?.variables?.repo === repo);
    return [...rest, ...graphql].sort((a, b) => a.at - b.at);
  };
  const review = async (town, mrId) => (await sql(town, "SELECT * FROM review_metadata WHERE bead_id = ?", mrId))[0];

  it("polls an open PR at most once a minute until it merged, then closes the bead", async () => {
    const town = await newTown("pr", { merge_strategy: "pr" });
    await addRig(town, "api", `${owner}/${repo}`);
    await github.pr({ owner, repo, number: 1 });
    const slung = await sling(town, "api", "Add rate limiting");

    // The polecat is told to open the pull request itself.
    expect(await tickEffects(town)).toEqual([1, 1, 0]);
    const [start] = await startsOf(town);
    expect(start.json.role).toBe("polecat");
    expect(start.json.systemPrompt).toContain("open a pull request against main yourself");
    const done = await callback(town, start.json, "done", { branch: start.json.branch, pr_url: prUrl(1) });
    expect(done.status, done.text).toBe(200);

    // The MR carries the PR; with code review on, the refinery is sent to review it there.
    expect(await tickEffects(town)).toEqual([1, 1, 0]);
    const [mr] = await mrsOf(town, slung.bead_id);
    expect(mr).toMatchObject({ status: "in_progress", pr_url: prUrl(1) });
    const refineryStart = (await startsOf(town))[1];
    expect(refineryStart.json.role).toBe("refinery");
    expect(refineryStart.json.systemPrompt).toContain(`A pull request exists: ${prUrl(1)}`);
    expect(await githubRequests()).toEqual([]);

    // First poll: open. The request is the REST call with the Worker's token.
    expect(await tickEffects(town)).toEqual([1, 1, 0]);
    let seen = await githubRequests();
    expect(seen.map((r) => [r.method, r.path])).toEqual([["GET", pullPath(1)]]);
    expect(seen[0].headers.authorization).toBe("Bearer test-github-token");
    expect(seen[0].headers["user-agent"]).toBeTruthy();
    expect((await bead(town, mr.bead_id)).metadata.poll_null_count).toBe(0);

    // Within the minute: no poll at all.
    expect(await tickEffects(town)).toEqual([0, 0, 0]);
    expect(await githubRequests()).toHaveLength(1);

    // A minute later (the refinery keeps heartbeating): polled again, still open.
    await advance(town, 61_000);
    expect((await callback(town, refineryStart.json, "heartbeat", {})).status).toBe(200);
    expect(await tickEffects(town)).toEqual([1, 1, 0]);
    expect(await githubRequests()).toHaveLength(2);
    expect((await bead(town, slung.bead_id)).status).toBe("in_review");

    // The PR merges on GitHub; the next poll sees it and records the change...
    await github.pr({ owner, repo, number: 1, merged: true, state: "closed" });
    await advance(town, 61_000);
    expect((await callback(town, refineryStart.json, "heartbeat", {})).status).toBe(200);
    expect(await tickEffects(town)).toEqual([1, 1, 0]);
    expect(await githubRequests()).toHaveLength(3);
    // The recorded event is pending, so the alarm was re-armed to fire at once.
    expect(lastRearm).toBe(0);
    const [changed] = await sql(town, "SELECT payload FROM town_events WHERE event_type = 'pr_status_changed' AND processed_at IS NULL");
    expect(JSON.parse(changed.payload)).toEqual({ pr_url: prUrl(1), pr_state: "merged" });

    // ... which the next tick applies: MR merged, bead closed, and the refinery still reviewing
    // the finished MR is stopped (R7) with a stop the container accepts.
    expect(await tickEffects(town)).toEqual([1, 1, 0]);
    expect((await mrsOf(town, slung.bead_id))[0].status).toBe("closed");
    expect((await bead(town, slung.bead_id)).status).toBe("closed");
    const stops = await agentRequests(refineryStart.json.agentId, "stop");
    expect(stops.map((r) => [r.method, r.json])).toEqual([["POST", {}]]);
    expect(await githubRequests()).toHaveLength(3);
    expect((await github.state()).prs.find((p) => p.repo === repo && p.number === 1).merges).toEqual([]);
  });

  it("auto-merges a PR once it stayed green for the grace period", async () => {
    const town = await newTown("automerge", {
      merge_strategy: "pr",
      refinery: { code_review: false, auto_merge: true, auto_merge_delay_minutes: 1 },
    });
    const autoRepo = `${repo}-auto`;
    const pulls = `/repos/${owner}/${autoRepo}/pulls/2`;
    const url = `https://github.com/${owner}/${autoRepo}/pull/2`;
    const requests = async () => {
      const rest = await github.requests(`/repos/${owner}/${autoRepo}/`);
      const graphql = (await github.requests("/graphql")).filter((r) => r.json?.variables?.repo === autoRepo);
      return [...rest, ...graphql].sort((a, b) => a.at - b.at);
    };
    await addRig(town, "api", `${owner}/${autoRepo}`);
    const pr = await github.pr({ owner, repo: autoRepo, number: 2, check_runs: [{ name: "build", status: "in_progress" }] });
    const slung = await sling(town, "api", "Paginate the list");

    expect(await tickEffects(town)).toEqual([1, 1, 0]);
    const [start] = await startsOf(town);
    expect((await callback(town, start.json, "done", { branch: start.json.branch, pr_url: url })).status).toBe(200);

    // Code review off: the MR skips the refinery and goes straight to polling; nothing sent.
    expect(await tickEffects(town)).toEqual([0, 0, 0]);
    const [mr] = await mrsOf(town, slung.bead_id);
    expect(mr).toMatchObject({ status: "in_progress", pr_url: url });
    expect(await startsOf(town)).toHaveLength(1);

    // Poll 1: open, CI still running -> not green, no grace timer. A poll that reads feedback
    // is one side effect of four requests: the PR, its review threads, check runs, status.
    expect(await tickEffects(town)).toEqual([1, 1, 0]);
    const commit = `/repos/${owner}/${autoRepo}/commits/${pr.head_sha}`;
    expect((await requests()).map((r) => [r.method, r.path])).toEqual([
      ["GET", pulls],
      ["POST", "/graphql"],
      ["GET", `${commit}/check-runs`],
      ["GET", `${commit}/status`],
    ]);
    expect((await review(town, mr.bead_id)).auto_merge_ready_since).toBeNull();

    // CI passes. Poll 2 starts the grace period.
    await github.pr({ owner, repo: autoRepo, number: 2, check_runs: [{ name: "build", status: "completed", conclusion: "success" }] });
    await advance(town, 61_000);
    expect(await tickEffects(town)).toEqual([1, 1, 0]);
    const since = (await review(town, mr.bead_id)).auto_merge_ready_since;
    expect(since).not.toBeNull();
    expect((await requests()).filter((r) => r.method === "PUT")).toEqual([]);

    // Poll 3, still green more than a minute later: the grace period is over.
    await advance(town, 61_000);
    expect(await tickEffects(town)).toEqual([1, 1, 0]);
    expect((await review(town, mr.bead_id)).auto_merge_ready_since).toBe(since);
    const [autoMerge] = await sql(town, "SELECT payload FROM town_events WHERE event_type = 'pr_auto_merge'");
    expect(JSON.parse(autoMerge.payload)).toEqual({ mr_bead_id: mr.bead_id, pr_url: url });
    expect((await requests()).filter((r) => r.method === "PUT")).toEqual([]);

    // The next tick flags the MR and merges: a re-check of the feedback, then the PUT.
    const before = (await requests()).length;
    expect(await tickEffects(town)).toEqual([1, 1, 0]);
    const merge = (await requests()).slice(before);
    expect(merge.map((r) => [r.method, r.path])).toEqual([
      ["POST", "/graphql"],
      ["GET", `${commit}/check-runs`],
      ["GET", `${commit}/status`],
      ["PUT", `${pulls}/merge`],
    ]);
    expect(merge[3].json).toEqual({ merge_method: "merge", sha: pr.head_sha });
    expect(merge[3].headers.authorization).toBe("Bearer test-github-token");
    const merged = (await github.state()).prs.find((p) => p.repo === autoRepo && p.number === 2);
    expect(merged).toMatchObject({ merged: true, state: "closed" });
    expect(merged.merges).toHaveLength(1);

    // The merge recorded the change; the next tick closes the MR and the bead.
    expect(await tickEffects(town)).toEqual([0, 0, 0]);
    expect((await mrsOf(town, slung.bead_id))[0].status).toBe("closed");
    expect((await bead(town, slung.bead_id)).status).toBe("closed");
    expect((await requests()).filter((r) => r.method === "PUT")).toHaveLength(1);
  });
  it("counts every failed poll, feedback check and merge as failed, and recovers from each", async () => {
    const town = await newTown("prfail", {
      merge_strategy: "pr",
      refinery: { code_review: false, auto_merge: true, auto_merge_delay_minutes: 1 },
    });
    const failRepo = `${repo}-fail`;
    const pulls = `/repos/${owner}/${failRepo}/pulls/3`;
    const url = `https://github.com/${owner}/${failRepo}/pull/3`;
    const failNext = (path_prefix, mode, method = "GET") => control(env.GITHUB_API_URL, "POST", "fail", { path_prefix, mode, method });
    const requests = () => github.requests(`/repos/${owner}/${failRepo}/`);
    await addRig(town, "api", `${owner}/${failRepo}`);
    await github.pr({ owner, repo: failRepo, number: 3, check_runs: [{ name: "build", status: "completed", conclusion: "success" }] });
    const slung = await sling(town, "api", "Cache the catalogue");
    expect(await tickEffects(town)).toEqual([1, 1, 0]);
    const [start] = await startsOf(town);
    expect((await callback(town, start.json, "done", { branch: start.json.branch, pr_url: url })).status).toBe(200);
    expect(await tickEffects(town)).toEqual([0, 0, 0]);
    const [mr] = await mrsOf(town, slung.bead_id);
    const nulls = async () => (await bead(town, mr.bead_id)).metadata.poll_null_count;

    // Three polls fail three ways: each one request, counted failed, counted on the MR.
    for (const [i, mode] of ["500", "garbage", "refuse"].entries()) {
      if (i > 0) await advance(town, 61_000);
      const sent = (await requests()).length;
      await failNext(pulls, mode);
      expect(await tickEffects(town), mode).toEqual([1, 0, 1]);
      expect((await requests()).slice(sent).map((r) => [r.method, r.path])).toEqual([["GET", pulls]]);
      expect(await nulls()).toBe(i + 1);
      expect((await bead(town, mr.bead_id)).status).toBe("in_progress");
    }

    // A poll that works resets the count and, all green, starts the grace period.
    await advance(town, 61_000);
    expect(await tickEffects(town)).toEqual([1, 1, 0]);
    expect(await nulls()).toBe(0);
    const since = (await review(town, mr.bead_id)).auto_merge_ready_since;
    expect(since).not.toBeNull();

    // The PR answers but its checks cannot be read: a failed side effect, and no merge decided
    // on it although the grace period is over.
    await advance(town, 61_000);
    await failNext(`/repos/${owner}/${failRepo}/commits/`, "500");
    expect(await tickEffects(town)).toEqual([1, 0, 1]);
    expect(await nulls()).toBe(0);
    expect(await sql(town, "SELECT 1 FROM town_events WHERE event_type = 'pr_auto_merge'")).toEqual([]);
    expect((await review(town, mr.bead_id)).auto_merge_ready_since).toBe(since);

    // Next poll: green for over a minute -> auto-merge; but GitHub refuses the merge (405).
    await advance(town, 61_000);
    expect(await tickEffects(town)).toEqual([1, 1, 0]);
    await github.pr({ owner, repo: failRepo, number: 3, mergeable: false });
    expect(await tickEffects(town)).toEqual([1, 0, 1]);
    expect((await requests()).filter((r) => r.method === "PUT")).toHaveLength(1);
    // The refusal drops the pending merge and restarts the grace period from scratch.
    expect((await bead(town, mr.bead_id)).metadata.auto_merge_pending).toBeUndefined();
    expect((await review(town, mr.bead_id)).auto_merge_ready_since).toBeNull();
    expect(await tickEffects(town)).toEqual([0, 0, 0]);

    // Mergeable again, but a commit is pushed between the check and the merge: the merge is
    // pinned to the head that was checked, so GitHub refuses it (409) and nothing unreviewed
    // is merged; a failed side effect, and the grace period starts again.
    const checked = (await github.state()).prs.find((p) => p.repo === failRepo && p.number === 3).head_sha;
    const pushed = "f".repeat(40);
    await github.pr({ owner, repo: failRepo, number: 3, mergeable: true, push_before_merge: pushed });
    await advance(town, 61_000);
    expect(await tickEffects(town)).toEqual([1, 1, 0]);
    await advance(town, 61_000);
    expect(await tickEffects(town)).toEqual([1, 1, 0]);
    expect(await tickEffects(town)).toEqual([1, 0, 1]);
    const puts = async () => (await requests()).filter((r) => r.method === "PUT");
    expect((await puts()).map((r) => r.json.sha)).toEqual([checked, checked]);
    expect((await github.state()).prs.find((p) => p.repo === failRepo && p.number === 3).merged).toBe(false);
    expect((await review(town, mr.bead_id)).auto_merge_ready_since).toBeNull();

    // A new minute of green on the pushed head, then the merge of that head goes through.
    await advance(town, 61_000);
    expect(await tickEffects(town)).toEqual([1, 1, 0]);
    await advance(town, 61_000);
    expect(await tickEffects(town)).toEqual([1, 1, 0]);
    expect(await tickEffects(town)).toEqual([1, 1, 0]);
    expect((await puts()).map((r) => r.json.sha)).toEqual([checked, checked, pushed]);
    expect(await tickEffects(town)).toEqual([0, 0, 0]);
    expect((await bead(town, slung.bead_id)).status).toBe("closed");
    expect(await totalEffects(town)).toEqual([14, 8, 6]);
  });
});

// ---- C: the container is down -----------------------------------------------------------------

describe("C: the container refuses starts", () => {
  /** The town's `agent.dispatch_failed` points, oldest first. */
  const dispatchFailures = async (town) => (await points(town)).filter((p) => p.indexes[0] === "agent.dispatch_failed");
  const lastError = async (town, beadId) =>
    (await sql(town, "SELECT last_dispatch_error FROM beads WHERE bead_id = ?", beadId))[0].last_dispatch_error;

  it("retries a failed start after each backoff, each kind of failure counted as failed, then fails the bead", async () => {
    const town = await newTown("down");
    await addRig(town, "web", `acme/${run}-down`);
    const slung = await sling(town, "web", "Upgrade the ORM");
    // The next five polecat starts of this town fail, one way each (in this order).
    // "stall" sends the headers and never ends the body: reading it counts against the timeout.
    // (Any 2xx is a start, whatever its body, as the original reads it: "503" stands for the
    // container refusing while it drains.)
    const kinds = ["500", "timeout", "503", "refuse", "stall"];
    for (const mode of kinds) await container.fail({ path_prefix: "/agents/start", mode, json: { townId: town, role: "polecat" } });
    const why = [/^answered HTTP 500$/, /^timed out$/, /^answered HTTP 503$/, /^network error: /, /^timed out$/];
    // The wait after attempt n (2/2/5/10 min), with a margin either side for the real time the
    // tick itself takes (a timed-out or stalled start waits out the 10 s start timeout).
    const backoff = [2, 2, 5, 10].map((m) => m * MINUTE);
    let agentId;

    for (let attempt = 1; attempt <= 5; attempt++) {
      if (attempt > 1) {
        await advance(town, backoff[attempt - 2] - 30_000);
        expect(await tickEffects(town), `before retry ${attempt}`).toEqual([0, 0, 0]);
        expect(await startsOf(town)).toHaveLength(attempt - 1);
        await advance(town, 45_000);
      }
      // The attempt: one start sent, and counted failed whatever the kind of failure.
      expect(await tickEffects(town), `attempt ${attempt} (${kinds[attempt - 1]})`).toEqual([1, 0, 1]);
      const starts = await startsOf(town);
      expect(starts).toHaveLength(attempt);
      agentId ??= starts[0].json.agentId;
      // The same polecat is retried (its hook was kept) with the same start (its tokens are
      // minted afresh for each batch).
      const withoutTokens = ({ envVars: { GASTOWN_CONTAINER_TOKEN, GASTOWN_SESSION_TOKEN, ...vars }, ...start }) => ({ ...start, vars });
      expect(withoutTokens(starts[attempt - 1].json)).toEqual(withoutTokens(starts[0].json));
      const b = await bead(town, slung.bead_id);
      expect(b).toMatchObject({ status: "open", dispatch_attempts: attempt, assignee_agent_bead_id: agentId });
      expect(await lastError(town, slung.bead_id)).toMatch(why[attempt - 1]);
      expect(await agent(town, agentId)).toMatchObject({ status: "idle", current_hook_bead_id: slung.bead_id });
      const failures = await dispatchFailures(town);
      expect(failures).toHaveLength(attempt);
      expect(failures[attempt - 1].blobs[9]).toMatch(why[attempt - 1]);
    }

    // Out of attempts: failed at once, without waiting out the last backoff, and unhooked.
    expect(await tickEffects(town)).toEqual([0, 0, 0]);
    const failed = await bead(town, slung.bead_id);
    expect(failed.status).toBe("failed");
    expect(await agent(town, agentId)).toMatchObject({ status: "idle", current_hook_bead_id: null });
    await advance(town, 31 * MINUTE);
    expect(await tickEffects(town)).toEqual([0, 0, 0]);
    expect(await startsOf(town)).toHaveLength(5);
    // Nothing but the five starts was ever counted, and all five as failed.
    expect(await totalEffects(town)).toEqual([5, 0, 5]);
  }, 90_000);

  it("opens the circuit breaker at twenty failed beads, tells the mayor once, and resumes when they age out", async () => {
    const town = await newTown("breaker");
    await addRig(town, "web", `acme/${run}-breaker`);
    // The town's mayor is up in the container.
    const mayorId = `${run}-mayor`;
    await seedAgent(town, mayorId, { role: "mayor" });
    await container.agent({ agent_id: mayorId, status: "running" });
    const beads = [];
    for (let i = 0; i < 20; i++) beads.push(await sling(town, "web", `Task ${i}`));
    await container.fail({ path_prefix: "/agents/start", mode: "500", times: 20, json: { townId: town, role: "polecat" } });

    // Twenty dispatches, twenty refusals, all counted as failed.
    expect(await tickEffects(town)).toEqual([20, 0, 20]);
    expect(await startsOf(town)).toHaveLength(20);
    // Hooked together (one batch of new polecats): each bead its own polecat, oldest bead first,
    // with the history one dispatch at a time writes.
    const polecats = (await startsOf(town)).map((s) => s.json.agentId);
    expect(new Set(polecats).size).toBe(20);
    const first = await call("GET", `/api/towns/${town}/beads/${beads[0].bead_id}`);
    expect(first.json.bead.assignee_agent_bead_id).toBe(polecats[0]);
    expect(first.json.events.map((e) => [e.event_type, e.old_value, e.new_value])).toEqual([
      ["created", null, "issue"],
      ["hooked", null, polecats[0]],
      ["status_changed", "open", "in_progress"],
      ["status_changed", "in_progress", "open"],
    ]);
    for (const b of beads) expect(await lastError(town, b.bead_id)).toBe("answered HTTP 500");

    // The breaker is open: the mayor is told, once, through its running session.
    expect(await tickEffects(town)).toEqual([1, 1, 0]);
    const [opened] = await agentRequests(mayorId, "message");
    expect(opened.json.prompt).toBe(
      "Dispatch circuit breaker is OPEN: 20 dispatch failures in the last 30 minutes. All dispatch actions are paused until failures clear.",
    );
    expect(await agentRequests(mayorId, "status")).toHaveLength(1);
    expect(await startsOf(town)).toHaveLength(20);

    // While it stays open: no dispatch even after the backoff, and no second notice.
    for (const minutes of [3, 10]) {
      await advance(town, minutes * MINUTE);
      expect(await tickEffects(town)).toEqual([0, 0, 0]);
    }
    expect(await agentRequests(mayorId, "message")).toHaveLength(1);
    expect(await startsOf(town)).toHaveLength(20);

    // Thirty minutes after the failures the breaker closes: the mayor hears so, and the twenty
    // hooked polecats are dispatched again; the container now accepts every start.
    await advance(town, 18 * MINUTE);
    expect(await tickEffects(town)).toEqual([21, 21, 0]);
    const messages = await agentRequests(mayorId, "message");
    expect(messages).toHaveLength(2);
    expect(messages[1].json.prompt).toMatch(/^Dispatch circuit breaker is CLOSED: 0 dispatch failures/);
    expect(await startsOf(town)).toHaveLength(40);
    for (const b of beads) {
      expect(await lastError(town, b.bead_id)).toBeNull();
      expect((await bead(town, b.bead_id)).status).toBe("in_progress");
    }
    expect(await totalEffects(town)).toEqual([42, 22, 20]);
  }, 60_000);
});

// ---- D: a review-then-land convoy -------------------------------------------------------------

describe("D: a review-then-land convoy", () => {
  it("dispatches in dependency order, merges each into the feature branch, then lands it", async () => {
    const town = await newTown("convoy");
    const repo = `acme/${run}-convoy`;
    await addRig(town, "web", repo);
    const slung = await call("POST", `/api/towns/${town}/convoys`, {
      body: {
        title: "Billing v2",
        rig_id: "web",
        merge_mode: "review-then-land",
        beads: [{ title: "Schema" }, { title: "API", body: "On the new schema.", depends_on: [0] }, { title: "Docs" }],
      },
    });
    expect(slung.status, slung.text).toBe(201);
    const { convoy_id: convoyId, feature_branch: feature } = slung.json.convoy;
    expect(feature).toBe(`convoy/billing-v2/${convoyId.slice(0, 8)}/head`);
    const [schema, api, docs] = slung.json.bead_ids;
    const starts = async () => startsOf(town);
    const startOf = async (title) => (await starts()).filter((s) => s.json.prompt.split("\n")[0] === title);
    /** The refinery's start for a review of `branch` (named in its system prompt), the latest one. */
    const reviewOf = async (branch) =>
      (await starts()).filter((s) => s.json.role === "refinery" && s.json.systemPrompt.includes(`branch ${branch} into`)).at(-1);
    const merged = async (start) => {
      const res = await callback(town, start.json, "done", { branch: start.json.branch, summary: "merged" });
      expect(res.status, res.text).toBe(200);
    };

    // Tick 1: the two unblocked beads go out; API waits for Schema.
    expect(await tickEffects(town)).toEqual([2, 2, 0]);
    expect((await starts()).map((s) => s.json.prompt).sort()).toEqual(["Docs", "Schema"]);
    expect((await bead(town, api)).status).toBe("open");
    const [schemaStart] = await startOf("Schema");
    const [docsStart] = await startOf("Docs");
    for (const s of [schemaStart, docsStart]) {
      // Cloned at the rig's default, started from the feature branch, on a branch beside it.
      expect(s.json).toMatchObject({
        role: "polecat", rigId: "web", gitUrl: `https://github.com/${repo}.git`, defaultBranch: "main",
        startPoint: `origin/${feature}`, branch: `${feature.replace(/\/head$/, "")}/gt/${slug(s.json.name)}/${s.json.prompt === "Docs" ? docs.slice(0, 8) : schema.slice(0, 8)}`,
      });
      // A polecat of a review-then-land convoy opens no PR of its own: no system prompt.
      expect(s.json.systemPrompt).toBeUndefined();
    }
    await merged(schemaStart);

    // Tick 2: Schema's work is queued for review against the feature branch; a refinery takes it.
    expect(await tickEffects(town)).toEqual([1, 1, 0]);
    const [schemaMr] = await mrsOf(town, schema);
    expect(schemaMr).toMatchObject({ status: "in_progress", target_branch: feature, branch: schemaStart.json.branch });
    const schemaReview = await reviewOf(schemaStart.json.branch);
    expect(schemaReview.json).toMatchObject({ role: "refinery", defaultBranch: "main" });
    expect(schemaReview.json.systemPrompt).toContain(`into ${feature}`);
    expect(await startOf("API")).toEqual([]);
    // Docs finishes while the refinery is busy: its review waits in the queue.
    await merged(docsStart);
    await merged(schemaReview);

    // Tick 3: Schema is merged into the feature branch and closed, which unblocks API (dispatched
    // now, not before) while the refinery moves on to Docs.
    expect(await tickEffects(town)).toEqual([2, 2, 0]);
    expect((await bead(town, schema)).status).toBe("closed");
    expect((await mrsOf(town, schema))[0].status).toBe("closed");
    const [apiStart] = await startOf("API");
    expect(apiStart.json.prompt).toBe("API\n\nOn the new schema.");
    const [docsMr] = await mrsOf(town, docs);
    expect(docsMr).toMatchObject({ status: "in_progress", target_branch: feature });
    const docsReview = await reviewOf(docsStart.json.branch);
    expect(docsReview.json.systemPrompt).toContain(`into ${feature}`);
    expect((await call("GET", `/api/towns/${town}/convoys/${convoyId}`)).json.convoy).toMatchObject({ status: "active", closed_beads: 1, total_beads: 3 });
    await merged(docsReview);
    await merged(apiStart);

    // Tick 4: Docs merged; API's review is popped.
    expect(await tickEffects(town)).toEqual([1, 1, 0]);
    expect((await bead(town, docs)).status).toBe("closed");
    const apiReview = await reviewOf(apiStart.json.branch);
    expect(apiReview.json.systemPrompt).toContain(`into ${feature}`);
    await merged(apiReview);

    // Tick 5: API merged; every bead is done and no review is in flight, so the convoy is ready
    // to land and the landing MR (feature branch into main) is filed in the same tick.
    expect(await tickEffects(town)).toEqual([0, 0, 0]);
    expect(JSON.parse((await ticksOf(town)).at(-1).blobs[9])).toEqual({ create_landing_mr: 1 });
    expect((await bead(town, api)).status).toBe("closed");
    let convoy = (await call("GET", `/api/towns/${town}/convoys/${convoyId}`)).json.convoy;
    expect(convoy).toMatchObject({ status: "active", closed_beads: 3, ready_to_land: true });
    const [landing] = await mrsOf(town, convoyId);
    expect(landing).toMatchObject({ status: "open", branch: feature, target_branch: "main" });

    // Tick 6: the refinery takes the landing.
    expect(await tickEffects(town)).toEqual([1, 1, 0]);
    const landingReview = await reviewOf(feature);
    expect(landingReview.json.defaultBranch).toBe("main");
    expect(landingReview.json.systemPrompt).toContain(`branch ${feature} into main`);
    await merged(landingReview);

    // Tick 7: landed; the convoy is closed.
    expect(await tickEffects(town)).toEqual([0, 0, 0]);
    expect((await mrsOf(town, convoyId))[0].status).toBe("closed");
    convoy = (await call("GET", `/api/towns/${town}/convoys/${convoyId}`)).json.convoy;
    expect(convoy).toMatchObject({ status: "landed", bead_status: "closed", closed_beads: 3 });
    expect(convoy.landed_at).not.toBeNull();

    // Seven starts in all (three polecats' work, four reviews), each accepted and counted once.
    expect(await starts()).toHaveLength(7);
    expect(await totalEffects(town)).toEqual([7, 7, 0]);
  });
});

// Simulated agents: what the original container's processes and the agent plugin inside them do
// after a start, on the real callback wire (UPSTREAM-WIRE.md section 2), with the container
// token the start carried in envVars.GASTOWN_CONTAINER_TOKEN (or the newest one pushed with
// /refresh-token):
// - the plugin primes itself (GET prime), and the heartbeat reporter beats for the agent every
//   `heartbeatMs` while it runs (the original: 30 s);
// - after `workMs` a polecat pushes its branch to the PR host and, when its system prompt tells
//   it to open a pull request, opens one there; then it calls `done` (with the PR's URL);
// - after `reviewMs` a refinery does what its system prompt asks: approves the pull request
//   that exists and reports it with `done` (the Town then polls and merges it), opens one from
//   the branch under review, or merges that branch into its target itself and calls `done`;
// - a triage agent (lightweight polecat) calls `done` on its batch; a mayor only heartbeats;
// - once done, the process exits: the container's status becomes `exited` and the completion
//   reporter posts `completed`.
// A configurable share of agents instead stalls (stops heartbeating, never finishes), crashes
// (the process is gone: status `exited` with no report) or fails (`completed` with `failed`),
// chosen by a seeded random draw, or by a rule on the task's first line (/__control/fate).
import { Container } from "./plugin-client.mjs";

export const FATES = ["ok", "stall", "crash", "fail"];

/** A small seeded PRNG (mulberry32): the same seed, the same fates in the same order. */
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The JWT's claims, unverified (the container reads its town from the token it is given). */
function claimsOf(token) {
  try {
    return JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString("utf8"));
  } catch {
    return {};
  }
}

/** `https://github.com/o/r(.git)` -> {owner, repo}, or null for another host. */
export function repoOfGitUrl(url) {
  const m = /^https:\/\/github\.com\/([^/]+)\/([^/]+?)(?:\.git)?\/?$/.exec(url ?? "");
  return m ? { owner: m[1], repo: m[2] } : null;
}

/** `https://github.com/o/r/pull/N` -> {owner, repo, number}, or null. */
export function pullOfUrl(url) {
  const m = /^https:\/\/github\.com\/([^/]+)\/([^/]+)\/pull\/(\d+)$/.exec(url ?? "");
  return m ? { owner: m[1], repo: m[2], number: Number(m[3]) } : null;
}

/** What a refinery's system prompt asks for (src/effects/prompts.rs says it in these words):
 * the branch under review and its target, and one of "review-pr" (with the PR URL),
 * "open-pr" or "merge". */
export function refineryDuty(systemPrompt) {
  const under = /branch (\S+) into (\S+), submitted by/.exec(systemPrompt ?? "");
  if (!under) return null;
  const [, branch, target] = under;
  const pr = /A pull request exists: (\S+?)\. Review it there/.exec(systemPrompt);
  if (pr) return { branch, target, action: "review-pr", prUrl: pr[1] };
  if (/Open a pull request from the branch/.test(systemPrompt)) return { branch, target, action: "open-pr" };
  return { branch, target, action: "merge" };
}

/**
 * The agent simulator the container (container.mjs) runs its starts with. Options:
 * - `githubApiUrl`: the PR host's API, where agents push and open pull requests;
 * - `apiUrl`: the Town's base URL when neither the start's envVars nor X-Town-Config name one;
 * - `heartbeatMs` (30,000), `workMs` (polecat, 3,000), `reviewMs` (refinery, 2,000);
 * - `stall`, `crash`, `fail`: the share (0 to 1) of agents given that fate, drawn with `seed`;
 * - `log(line)`: one line per thing an agent did (default: none).
 */
export function agentSimulator({
  githubApiUrl,
  apiUrl = "",
  heartbeatMs = 30_000,
  workMs = 3_000,
  reviewMs = 2_000,
  stall = 0,
  crash = 0,
  fail = 0,
  seed = 1,
  log = () => {},
} = {}) {
  for (const [name, share] of Object.entries({ stall, crash, fail }))
    if (!(share >= 0 && share <= 1)) throw new Error(`${name} must be a share from 0 to 1, not ${share}`);
  if (stall + crash + fail > 1) throw new Error("stall + crash + fail must not exceed 1");
  const draw = random(seed);
  const sessions = new Map();
  const tokens = new Map();
  let rules = [];
  const history = [];
  const note = (session, what) => {
    const line = `${session.record.townId} ${session.record.name} (${session.role}) ${what}`;
    history.push({ at: new Date().toISOString(), agentId: session.record.agentId, fate: session.fate, what: line });
    if (history.length > 1000) history.shift();
    log(line);
  };

  const fateOf = (start) => {
    const task = (start.prompt ?? "").split("\n")[0];
    const rule = rules.find((r) => r.times > 0 && task.includes(r.task_contains));
    if (rule) {
      rule.times -= 1;
      rules = rules.filter((r) => r.times > 0);
      return rule.fate;
    }
    const x = draw();
    return x < stall ? "stall" : x < stall + crash ? "crash" : x < stall + crash + fail ? "fail" : "ok";
  };

  /** The PR host, called as the agent's git and gh would, with its GIT_TOKEN. */
  const github = async (session, method, path, body) => {
    const token = session.start.envVars?.GIT_TOKEN ?? "";
    const res = await fetch(`${githubApiUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, "user-agent": "gastown-sim-agent", accept: "application/vnd.github+json", "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await res.json().catch(() => null);
    return { status: res.status, json };
  };
  const expectOk = (what, res) => {
    if (res.status >= 300) throw new Error(`${what}: ${res.status} ${res.json?.message ?? ""}`.trim());
    return res.json;
  };

  /** A push of a new commit to `branch` (created, or moved when it exists). */
  const push = async (session, repo, branch) => {
    const sha = [...crypto.getRandomValues(new Uint8Array(20))].map((b) => b.toString(16).padStart(2, "0")).join("");
    const created = await github(session, "POST", `/repos/${repo.owner}/${repo.repo}/git/refs`, { ref: `refs/heads/${branch}`, sha });
    if (created.status === 422) return expectOk(`push ${branch}`, await github(session, "PATCH", `/repos/${repo.owner}/${repo.repo}/git/refs/heads/${branch}`, { sha, force: true }));
    return expectOk(`push ${branch}`, created);
  };
  const ensureBranch = async (session, repo, branch, from) => {
    const found = await github(session, "GET", `/repos/${repo.owner}/${repo.repo}/git/ref/heads/${branch}`);
    if (found.status === 200) return;
    const base = expectOk(`read ${from}`, await github(session, "GET", `/repos/${repo.owner}/${repo.repo}/git/ref/heads/${from}`));
    expectOk(`create ${branch}`, await github(session, "POST", `/repos/${repo.owner}/${repo.repo}/git/refs`, { ref: `refs/heads/${branch}`, sha: base.object.sha }));
  };
  const openPull = async (session, repo, head, base, title) => {
    const pr = expectOk(`open a pull request of ${head}`, await github(session, "POST", `/repos/${repo.owner}/${repo.repo}/pulls`, { title, head, base, body: `Opened by ${session.record.name}.` }));
    return pr.html_url;
  };

  /** What the agent does when its work is over: the done it reports ({branch, pr_url?, summary}). */
  const work = async (session) => {
    const s = session.start;
    const task = (s.prompt ?? "").split("\n")[0];
    const repo = repoOfGitUrl(s.gitUrl);
    if (session.role === "triage") return { branch: s.branch, summary: "triage batch looked at" };
    if (!repo) throw new Error(`no repository on the PR host for ${s.gitUrl || "an empty gitUrl"}`);
    if (session.role === "refinery") {
      const duty = refineryDuty(s.systemPrompt);
      if (!duty) throw new Error("the refinery's system prompt names no merge request");
      if (duty.action === "review-pr") {
        const pr = pullOfUrl(duty.prUrl);
        if (!pr) throw new Error(`not a pull request URL: ${duty.prUrl}`);
        expectOk(`review ${duty.prUrl}`, await github(session, "POST", `/repos/${pr.owner}/${pr.repo}/pulls/${pr.number}/reviews`, { event: "APPROVE", body: "Looks good." }));
        note(session, `approved ${duty.prUrl}`);
        return { branch: duty.branch, pr_url: duty.prUrl, summary: "approved" };
      }
      if (duty.action === "open-pr") {
        await ensureBranch(session, repo, duty.target, s.defaultBranch);
        const url = await openPull(session, repo, duty.branch, duty.target, `Merge ${duty.branch}`);
        note(session, `opened ${url} (${duty.branch} into ${duty.target})`);
        return { branch: duty.branch, pr_url: url, summary: "pull request opened" };
      }
      await ensureBranch(session, repo, duty.target, s.defaultBranch);
      expectOk(`merge ${duty.branch} into ${duty.target}`, await github(session, "POST", `/repos/${repo.owner}/${repo.repo}/merges`, { base: duty.target, head: duty.branch }));
      note(session, `merged ${duty.branch} into ${duty.target}`);
      return { branch: duty.branch, summary: "merged" };
    }
    // A start point (a convoy's feature branch) that is not on the host yet is made from the
    // default branch, as the workspace setup would.
    const from = /^origin\/(.+)$/.exec(s.startPoint ?? "");
    if (from) await ensureBranch(session, repo, from[1], s.defaultBranch);
    await push(session, repo, s.branch);
    note(session, `pushed ${s.branch}`);
    const base = /open a pull request against (\S+) yourself/.exec(s.systemPrompt ?? "");
    if (!base) return { branch: s.branch, summary: `did: ${task}` };
    const url = await openPull(session, repo, s.branch, base[1].replace(/,$/, ""), task);
    note(session, `opened ${url}`);
    return { branch: s.branch, pr_url: url, summary: `did: ${task}` };
  };

  const live = (session) => sessions.get(session.record.agentId) === session && !session.over;
  const end = (session, status, exitReason) => {
    session.over = true;
    clearInterval(session.beat);
    clearTimeout(session.timer);
    if (sessions.get(session.record.agentId) === session) Object.assign(session.record, { status, exitReason });
  };
  const guarded = (session, what, promise) =>
    promise.catch((e) => {
      if (live(session) || what === "completed") note(session, `${what} failed: ${e.message}`);
    });

  const finish = async (session) => {
    if (!live(session)) return;
    const { client, plugin } = session;
    if (session.fate === "stall") {
      clearInterval(session.beat);
      return note(session, "stalled: no more heartbeats");
    }
    if (session.fate === "crash") {
      end(session, "exited", "crashed");
      return note(session, "crashed: the process is gone");
    }
    if (session.fate === "fail") {
      end(session, "failed", "failed");
      note(session, "failed");
      return guarded(session, "completed", client.completed(session.record.agentId, session.record.rigId, "failed", "simulated failure"));
    }
    let done;
    try {
      done = await work(session);
    } catch (e) {
      if (!live(session)) return;
      end(session, "failed", "failed");
      note(session, `failed: ${e.message}`);
      return guarded(session, "completed", client.completed(session.record.agentId, session.record.rigId, "failed", e.message));
    }
    if (!live(session)) return;
    try {
      await plugin.done(done.branch, { ...(done.pr_url ? { pr_url: done.pr_url } : {}), summary: done.summary });
    } catch (e) {
      note(session, `done refused: ${e.message}`);
    }
    if (!live(session)) return;
    end(session, "exited", "completed");
    note(session, "done; exited");
    await guarded(session, "completed", client.completed(session.record.agentId, session.record.rigId, "completed", "idle"));
  };

  return {
    /** Runs a simulated agent for a start the container accepted (`record` is its registry
     * entry, whose status this updates; `townConfig` the start's X-Town-Config). A start of an
     * agent that runs replaces its session, as the original restarts it. */
    start(record, townConfig) {
      const previous = sessions.get(record.agentId);
      if (previous) end(previous, "exited", "restarted");
      const start = record.start;
      const startToken = start.envVars?.GASTOWN_CONTAINER_TOKEN;
      if (startToken) tokens.set(start.townId, startToken);
      const role = start.lightweight && start.role === "polecat" ? "triage" : start.role;
      const session = { record, start, role, fate: fateOf(start), over: false };
      sessions.set(record.agentId, session);
      const url = start.envVars?.GASTOWN_API_URL || townConfig?.gastown_api_url || apiUrl;
      const containerToken = tokens.get(start.townId);
      if (!url || !containerToken) {
        end(session, "failed", "failed");
        return note(session, "cannot run: no GASTOWN_API_URL or no container token (the plugin refuses to start)");
      }
      session.client = new Container(start.townId, containerToken, { instanceId: "sim-container", apiUrl: url });
      session.plugin = session.client.plugin(record.agentId, record.rigId);
      note(session, `started${session.fate === "ok" ? "" : ` (fate: ${session.fate})`}: ${(start.prompt ?? "").split("\n")[0]}`);
      const beat = () => {
        if (!live(session)) return;
        guarded(session, "heartbeat", session.client.heartbeat(record.agentId, record.rigId));
      };
      guarded(session, "prime", session.plugin.prime()).then(beat);
      session.beat = setInterval(beat, heartbeatMs);
      if (session.role !== "mayor") session.timer = setTimeout(() => finish(session), session.role === "refinery" ? reviewMs : workMs);
    },
    /** The Town stopped the agent: its process ends, nothing more is sent. */
    stop(agentId) {
      const session = sessions.get(agentId);
      if (session && !session.over) {
        end(session, "exited", "stopped");
        note(session, "stopped by the Town");
      }
    },
    /** A fresh container token (/refresh-token): the town's agents use it from now on. */
    tokenPushed(token) {
      const town = claimsOf(token).townId;
      if (typeof town !== "string") return;
      tokens.set(town, token);
      for (const session of sessions.values()) if (session.client && session.record.townId === town) session.client.token = token;
    },
    /** Gives the next `times` agents whose task's first line contains `task_contains` this fate. */
    rule({ task_contains, fate, times = 1 }) {
      if (typeof task_contains !== "string" || task_contains === "") throw new Error("task_contains must be a non-empty string");
      if (!FATES.includes(fate)) throw new Error(`fate must be one of ${FATES.join(", ")}`);
      if (!Number.isInteger(times) || times < 1) throw new Error("times must be a positive integer");
      rules.push({ task_contains, fate, times });
    },
    state: () => ({
      config: { heartbeatMs, workMs, reviewMs, stall, crash, fail, seed },
      sessions: [...sessions.values()].map((s) => ({ agentId: s.record.agentId, townId: s.record.townId, name: s.record.name, role: s.role, fate: s.fate, over: s.over, status: s.record.status })),
      rules,
      history,
    }),
    /** Ends every session (the simulator is closing). */
    close() {
      for (const session of sessions.values()) end(session, session.record.status, session.record.exitReason);
    },
  };
}

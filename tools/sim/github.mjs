// The PR host: the GitHub REST calls the Town makes (a pull request, its merge pinned to a
// head sha, the head commit's check runs and combined status) and the GraphQL review-threads
// query, with GitHub's shapes and status codes; and the calls a simulated agent makes where a
// real one would run git and the gh CLI (agents.mjs): push a branch (create or move a ref),
// open a pull request, review it, merge a branch into another. Repositories exist on first use,
// with a `main` branch. A pull request opened through the API gets one check run, "ci", that
// passes `ciMs` after its head was pushed (simulated CI).
import { createHash, randomBytes } from "node:crypto";
import { reply } from "./serve.mjs";

const newSha = () => randomBytes(20).toString("hex");

/** The GitHub API: REST pull requests, merges, check runs and combined statuses, and the GraphQL
 * review-threads query. Requests without a bearer token get 401, without a User-Agent 403. */
export function githubApi({ ciMs = 2000 } = {}) {
  let prs = new Map();
  // Repositories the agents pushed to: "owner/repo" -> {owner, repo, default_branch, branches: Map(name -> sha)}.
  let repos = new Map();
  const key = (owner, repo, number) => `${owner}/${repo}#${number}`.toLowerCase();
  const repoOf = (owner, repo) => {
    const k = `${owner}/${repo}`.toLowerCase();
    if (!repos.has(k)) repos.set(k, { owner, repo, default_branch: "main", branches: new Map([["main", newSha()]]) });
    return repos.get(k);
  };
  const validation = (field, code, message) =>
    reply(422, { message: "Validation Failed", errors: [{ resource: "PullRequest", field, code, ...(message ? { message } : {}) }], documentation_url: "https://docs.github.com/rest" });
  /** A check run as read now: simulated CI ("completes_at") has passed once its time came. */
  const runNow = (r) => (r.completes_at === undefined ? r : r.completes_at <= Date.now() ? { ...r, status: "completed", conclusion: "success" } : { ...r, status: "in_progress", conclusion: null });
  const refView = (r, name) => ({ ref: `refs/heads/${name}`, node_id: `REF_${name}`, object: { sha: r.branches.get(name), type: "commit" } });
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
    head: { sha: pr.head_sha, ref: pr.head_ref ?? `gt/standin/${pr.number}` },
    base: { ref: pr.base_ref ?? "main" },
    title: pr.title ?? null,
    body: pr.body ?? null,
    user: { login: pr.author ?? "gastown" },
  });

  /** POST /repos/{o}/{r}/pulls: opens a pull request of a pushed branch (GitHub's 422s for a
   * missing head or base, or an open PR of the same head). */
  const openPull = (owner, repoName, json) => {
    const repo = repoOf(owner, repoName);
    const { title, head, base, body } = json ?? {};
    if (typeof title !== "string" || title === "") return validation("title", "missing_field");
    if (typeof head !== "string" || !repo.branches.has(head)) return validation("head", "invalid");
    if (typeof base !== "string" || !repo.branches.has(base)) return validation("base", "invalid");
    const same = [...prs.values()].find((p) => p.owner === owner && p.repo === repoName && p.head_ref === head && p.state === "open");
    if (same) return validation(undefined, "custom", `A pull request already exists for ${owner}:${head}.`);
    const number = 1 + Math.max(0, ...[...prs.values()].filter((p) => p.owner.toLowerCase() === owner.toLowerCase() && p.repo.toLowerCase() === repoName.toLowerCase()).map((p) => p.number));
    const pr = {
      owner, repo: repoName, number, state: "open", merged: false, merged_at: null, mergeable: true,
      head_sha: repo.branches.get(head), head_ref: head, base_ref: base, title, body: body ?? null,
      check_runs: [{ name: "ci", completes_at: Date.now() + ciMs }], check_runs_total: null,
      statuses: [], threads: [], threads_has_next_page: false, merges: [], reviews: [],
    };
    prs.set(key(owner, repoName, number), pr);
    return reply(201, pullView(pr));
  };

  /** The git side of a repository: refs (a push), branch merges, and reviews of a PR. */
  const gitRoutes = (method, path, json) => {
    let m = /^\/repos\/([^/]+)\/([^/]+)\/git\/refs$/.exec(path);
    if (m && method === "POST") {
      const repo = repoOf(m[1], m[2]);
      const { ref, sha } = json ?? {};
      if (typeof ref !== "string" || !/^refs\/heads\/.+/.test(ref) || typeof sha !== "string")
        return reply(422, { message: "Invalid request.\n\nFor 'properties/ref', nil is not a string." });
      const name = ref.slice("refs/heads/".length);
      if (repo.branches.has(name)) return reply(422, { message: "Reference already exists" });
      repo.branches.set(name, sha);
      return reply(201, refView(repo, name));
    }
    m = /^\/repos\/([^/]+)\/([^/]+)\/git\/refs?\/heads\/(.+)$/.exec(path);
    if (m && (method === "GET" || method === "PATCH")) {
      const repo = repoOf(m[1], m[2]);
      if (!repo.branches.has(m[3])) return reply(404, { message: "Not Found" });
      if (method === "PATCH") {
        if (typeof json?.sha !== "string") return reply(422, { message: "Invalid request." });
        repo.branches.set(m[3], json.sha);
        // A push to a PR's head moves it; simulated CI starts again.
        for (const pr of prs.values())
          if (pr.owner === repo.owner && pr.repo === repo.repo && pr.head_ref === m[3] && pr.state === "open") {
            pr.head_sha = json.sha;
            pr.check_runs = pr.check_runs.map((r) => (r.completes_at === undefined ? r : { ...r, completes_at: Date.now() + ciMs }));
          }
      }
      return reply(200, refView(repo, m[3]));
    }
    m = /^\/repos\/([^/]+)\/([^/]+)\/merges$/.exec(path);
    if (m && method === "POST") {
      const repo = repoOf(m[1], m[2]);
      const { base, head } = json ?? {};
      if (!repo.branches.has(base)) return reply(404, { message: "Base does not exist" });
      if (!repo.branches.has(head)) return reply(404, { message: "Head does not exist" });
      const merged = newSha();
      repo.branches.set(base, merged);
      return reply(201, { sha: merged, commit: { message: json.commit_message ?? `Merge ${head} into ${base}` }, parents: [] });
    }
    m = /^\/repos\/([^/]+)\/([^/]+)\/pulls\/(\d+)\/reviews$/.exec(path);
    if (m && method === "POST") {
      const pr = prs.get(key(m[1], m[2], Number(m[3])));
      if (!pr) return notFound;
      const event = json?.event ?? "COMMENT";
      const states = { APPROVE: "APPROVED", REQUEST_CHANGES: "CHANGES_REQUESTED", COMMENT: "COMMENTED" };
      if (!states[event]) return reply(422, { message: "Unprocessable Entity", errors: ["event is not one of APPROVE, REQUEST_CHANGES, COMMENT"] });
      const review = { id: (pr.reviews ??= []).length + 1, state: states[event], body: json?.body ?? "", commit_id: pr.head_sha, submitted_at: new Date().toISOString() };
      pr.reviews.push(review);
      return reply(200, review);
    }
    return undefined;
  };

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
    state: () => ({
      prs: [...prs.values()].map((p) => ({ ...p, check_runs: p.check_runs.map(runNow) })),
      repos: [...repos.values()].map((r) => ({ ...r, branches: Object.fromEntries(r.branches) })),
    }),
    reset: (kept) => {
      for (const [k, p] of prs) if (!kept(`/repos/${p.owner}/${p.repo}/pulls/${p.number}`)) prs.delete(k);
      for (const [k, r] of repos) if (!kept(`/repos/${r.owner}/${r.repo}/git/refs`)) repos.delete(k);
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
      const git = gitRoutes(method, path, json);
      if (git) return git;
      const open = /^\/repos\/([^/]+)\/([^/]+)\/pulls$/.exec(path);
      if (open && method === "POST") return openPull(open[1], open[2], json);

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
        const sha = newSha();
        Object.assign(pr, { merged: true, state: "closed", merged_at: new Date().toISOString() });
        pr.merges.push({ merge_method: mergeMethod, sha });
        const repo = repos.get(`${pr.owner}/${pr.repo}`.toLowerCase());
        if (repo && pr.base_ref) repo.branches.set(pr.base_ref, sha);
        return reply(200, { sha, merged: true, message: "Pull Request successfully merged" });
      }

      m = /^\/repos\/([^/]+)\/([^/]+)\/commits\/([^/]+)\/(check-runs|status)$/.exec(path);
      if (m && method === "GET") {
        const pr = byCommit(m[1], m[2], m[3]);
        if (!pr) return reply(422, { message: `No commit found for SHA: ${m[3]}` });
        if (m[4] === "status")
          return reply(200, { sha: pr.head_sha, state: combined(pr.statuses), total_count: pr.statuses.length, statuses: pr.statuses });
        const perPage = Math.min(Math.max(Number(query.per_page ?? 30) || 30, 1), 100);
        const runs = pr.check_runs.map(runNow).map((r, i) => ({ id: i + 1, name: r.name ?? `check-${i + 1}`, head_sha: pr.head_sha, status: r.status, conclusion: r.conclusion ?? null }));
        return reply(200, { total_count: Math.max(pr.check_runs_total ?? 0, runs.length), check_runs: runs.slice(0, perPage) });
      }
      return notFound;
    },
  };
}

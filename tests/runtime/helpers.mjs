// Shared helpers of the runtime tests: authenticated requests, container and agent JWTs, the captured AE
// points and a look inside a town's Durable Object.
import { env, runInDurableObject, SELF } from "cloudflare:test";

export const API = "test-api-token";
export const DEBUG = "test-debug-token";
export const JWT_SECRET = "test-jwt-secret";

const b64url = (bytes) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const text = (s) => new TextEncoder().encode(s);

/**
 * An HS256 JWT made here with WebCrypto, independently of the Rust code, the way the original's
 * `jsonwebtoken` signs: `iat` now (or `at`, in ms), `exp` 8 hours later. `header` and `secret`
 * can be changed to forge refusals.
 */
export async function signJwt(claims, { at = Date.now(), secret = JWT_SECRET, header = { alg: "HS256", typ: "JWT" } } = {}) {
  const iat = Math.floor(at / 1000);
  const input = `${b64url(text(JSON.stringify(header)))}.${b64url(text(JSON.stringify({ ...claims, iat, exp: iat + 8 * 3600 })))}`;
  const key = await crypto.subtle.importKey("raw", text(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, text(input)));
  return `${input}.${b64url(mac)}`;
}

/** The town's container token (good for every agent of the town). */
export function containerToken(town, options) {
  return signJwt({ townId: town, userId: "user-1", scope: "container" }, options);
}

/** A legacy agent token (good for its own agent and rig only). */
export function agentToken(town, agent, rig = "r1", options) {
  return signJwt({ agentId: agent, rigId: rig, townId: town, userId: "user-1" }, options);
}

/** Sends a request to the Worker; `body` objects are sent as JSON, strings as they are. */
export async function call(method, path, { token = API, body, headers = {} } = {}) {
  const init = { method, headers: { ...headers } };
  if (token) init.headers.authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    init.headers["content-type"] ??= "application/json";
  }
  const res = await SELF.fetch(`https://town.test${path}`, init);
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {}
  return { status: res.status, json, text };
}

/** A call of the container for `agent` (of rig `rig`) with the town's container token. */
export async function agentCall(method, town, agent, action, body, rig = "r1") {
  const token = await containerToken(town);
  return call(method, `/api/towns/${town}/rigs/${rig}/agents/${agent}/${action}`, { token, body });
}

export function townStub(town) {
  return env.TOWN.get(env.TOWN.idFromName(town));
}

/** Runs SQL inside the town's Durable Object and returns the rows. */
export async function sql(town, query, ...bindings) {
  return runInDurableObject(townStub(town), (_instance, state) =>
    state.storage.sql.exec(query, ...bindings).toArray(),
  );
}

/** Every table's rows, for before/after comparisons. */
export async function dump(town) {
  return runInDurableObject(townStub(town), (_instance, state) => {
    const tables = state.storage.sql
      .exec("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' ORDER BY name")
      .toArray()
      .map((r) => r.name);
    return Object.fromEntries(
      tables.map((t) => [t, state.storage.sql.exec(`SELECT * FROM "${t}" ORDER BY rowid`).toArray()]),
    );
  });
}

export async function alarmAt(town) {
  return runInDurableObject(townStub(town), (_instance, state) => state.storage.getAlarm());
}

/** The captured AE points, in order; only `town`'s (blob6) when given, since test files run
 * in parallel against one capture Worker. */
export async function points(town) {
  const all = await env.GASTOWN_AE.points();
  return town === undefined ? all : all.filter((p) => p.blobs[5] === town);
}


export async function createTown(town, owner = "user-1", config) {
  const res = await call("PUT", `/api/towns/${town}`, { body: config ? { owner_user_id: owner, config } : { owner_user_id: owner } });
  if (res.status !== 201) throw new Error(`create town ${town}: ${res.status} ${res.text}`);
  return res.json;
}

/** Registers rig `rigId` on GitHub repository `repo` (`owner/name`); returns the rig. */
export async function addRig(town, rigId, repo, defaultBranch = "main") {
  const res = await call("POST", `/api/towns/${town}/rigs`, {
    body: { rig_id: rigId, name: rigId, git_url: `https://github.com/${repo}.git`, default_branch: defaultBranch },
  });
  if (res.status !== 201) throw new Error(`add rig ${rigId} to ${town}: ${res.status} ${res.text}`);
  return res.json.rig;
}

/**
 * Registers an agent directly in the town's SQLite (agents are otherwise created by the
 * reconciler when it dispatches work): an `agent` bead plus its `agent_metadata` row.
 */
export async function seedAgent(town, agent, { role = "polecat", rig = null, status = "idle", hook = null } = {}) {
  const now = new Date().toISOString();
  await sql(
    town,
    "INSERT INTO beads (bead_id, type, status, title, rig_id, created_by, created_at, updated_at) VALUES (?, 'agent', 'open', ?, ?, 'system', ?, ?)",
    agent, agent, rig, now, now,
  );
  await sql(
    town,
    "INSERT INTO agent_metadata (bead_id, role, name, identity, status, current_hook_bead_id) VALUES (?, ?, ?, ?, ?, ?)",
    agent, role, agent, `${agent}-${role}@${town}`, status, hook,
  );
}

/** Scripts a stand-in over its `/__control/` API (tools/sim) at `base` (`env.CONTAINER_URL`
 * or `env.GITHUB_API_URL`); returns the answer's JSON, throws on any other status than 200. */
export async function control(base, method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["content-type"] = "application/json";
  }
  const res = await fetch(`${base}/__control/${path}`, init);
  const text = await res.text();
  if (res.status !== 200) throw new Error(`control ${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}

/**
 * Runs the town's alarm now, as the platform would, and parks the alarm an hour away so only
 * the test's ticks run. Returns how far ahead the tick re-armed it (0 = at once; null = none).
 */
export async function tick(town) {
  return runInDurableObject(townStub(town), async (instance, state) => {
    await state.storage.deleteAlarm();
    await instance.alarm();
    const rearmed = await state.storage.getAlarm();
    const now = Date.now();
    await state.storage.setAlarm(now + 3_600_000);
    return rearmed === null ? null : Math.max(0, rearmed - now);
  });
}

/** Moves the town's clock (not the stand-ins') forward; development only. */
export async function advance(town, ms) {
  const res = await call("POST", `/debug/towns/${town}/clock`, { token: DEBUG, body: { advance_ms: ms } });
  if (res.status !== 200) throw new Error(`advance ${town}: ${res.status} ${res.text}`);
}

// Each town reaches its own container: with the TOWN_CONTAINER Durable Object bound
// (vitest.config.mjs binds town-container.mjs), a town's calls go to
// TOWN_CONTAINER.get(idFromName(town_id)).fetch("http://container/..."), never to another
// town's instance, nor to CONTAINER_URL directly.
import { describe, it, expect } from "vitest";
import { env, runInDurableObject } from "cloudflare:test";
import { call, createTown, townStub } from "../helpers.mjs";

const run = `tc${Date.now().toString(36)}`;

async function control(path) {
  const res = await fetch(`${env.CONTAINER_URL}/__control/${path}`);
  const text = await res.text();
  if (res.status !== 200) throw new Error(`control ${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}

/** What the town's own container instance served. */
async function instanceOf(town) {
  const stub = env.TOWN_CONTAINER.get(env.TOWN_CONTAINER.idFromName(town));
  return (await stub.fetch("http://container/__instance")).json();
}

async function tick(town) {
  await runInDurableObject(townStub(town), async (instance, state) => {
    await state.storage.deleteAlarm();
    await instance.alarm();
    await state.storage.setAlarm(Date.now() + 3_600_000);
  });
}

async function slung(town) {
  await createTown(town, `owner-${town}`);
  const rig = await call("POST", `/api/towns/${town}/rigs`, {
    body: { rig_id: "web", name: "web", git_url: `https://github.com/acme/${town}.git`, default_branch: "main" },
  });
  expect(rig.status, rig.text).toBe(201);
  const bead = await call("POST", `/api/towns/${town}/beads`, { body: { rig_id: "web", title: "Fix the login form" } });
  expect(bead.status, bead.text).toBe(201);
}

describe("TOWN_CONTAINER: a container per town", () => {
  it("sends each town's calls to its own instance and never to the other's", async () => {
    const [a, b] = [`${run}-a`, `${run}-b`];
    await slung(a);
    await slung(b);
    await tick(a);
    await tick(b);

    const ids = { [a]: env.TOWN_CONTAINER.idFromName(a).toString(), [b]: env.TOWN_CONTAINER.idFromName(b).toString() };
    expect(ids[a]).not.toBe(ids[b]);
    const starts = (await control(`requests?path_prefix=${encodeURIComponent("/agents/start")}`)).filter((r) =>
      [a, b].includes(r.json?.townId),
    );
    expect(starts.map((s) => s.json.townId).sort()).toEqual([a, b]);
    for (const s of starts) expect(s.headers["x-container-instance"], s.json.townId).toBe(ids[s.json.townId]);

    for (const town of [a, b]) {
      const instance = await instanceOf(town);
      expect(instance.id).toBe(ids[town]);
      const paths = instance.served.map((r) => `${r.method} ${r.path}`);
      // The upkeep (health, config, token), then the token pushed before the start, then it.
      expect(paths).toContain("GET /health");
      expect(paths).toContain("POST /sync-config");
      expect(paths).toContain("POST /refresh-token");
      expect(paths.filter((p) => p === "POST /agents/start")).toHaveLength(1);
      expect(new Set(instance.served.map((r) => r.host))).toEqual(new Set(["container"]));
      // Everything this town's calls carried names this town only.
      const mine = (await control("requests?path_prefix=/")).filter((r) => r.headers["x-container-instance"] === ids[town]);
      expect(mine.length).toBe(instance.served.length);
      for (const r of mine) {
        if (r.json?.townId !== undefined) expect(r.json.townId).toBe(town);
        if (r.headers["x-town-config"]) expect(JSON.parse(r.headers["x-town-config"]).town_id).toBe(town);
      }
    }
  });
});

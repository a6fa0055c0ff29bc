// The container reached through the CONTAINER service binding (vitest.config.mjs binds it to
// container-proxy.mjs, which forwards to the container stand-in and marks what it forwards):
// when the binding is bound the town's container calls go through it, not to CONTAINER_URL,
// and its answers count as the stand-in's own would.
import { describe, it, expect } from "vitest";
import { env, runInDurableObject } from "cloudflare:test";
import { call, control as standin, createTown, sql, townStub } from "../helpers.mjs";

const run = `bnd${Date.now().toString(36)}`;

/** The container stand-in's control API. */
const control = (method, path, body) => standin(env.CONTAINER_URL, method, path, body);

/** The `POST /agents/start` requests the container stand-in received for `town`. */
const startsOf = async (town) =>
  (await control("GET", `requests?path_prefix=${encodeURIComponent("/agents/start")}`)).filter((r) => r.json?.townId === town);

/** One tick (the alarm handler), the alarm then parked an hour out. */
async function tick(town) {
  await runInDurableObject(townStub(town), async (instance, state) => {
    await state.storage.deleteAlarm();
    await instance.alarm();
    await state.storage.setAlarm(Date.now() + 3_600_000);
  });
}

/** A town with one rig and one slung bead; returns [town, bead id]. */
async function slung(name) {
  const town = `${run}-${name}`;
  await createTown(town, `owner-${name}`);
  const rig = await call("POST", `/api/towns/${town}/rigs`, {
    body: { rig_id: "web", name: "web", git_url: `https://github.com/acme/${town}.git`, default_branch: "main" },
  });
  expect(rig.status, rig.text).toBe(201);
  const bead = await call("POST", `/api/towns/${town}/beads`, { body: { rig_id: "web", title: "Fix the login form" } });
  expect(bead.status, bead.text).toBe(201);
  return [town, bead.json.bead.bead_id];
}

const beadRow = async (town, id) =>
  (await sql(town, "SELECT status, dispatch_attempts, last_dispatch_error FROM beads WHERE bead_id = ?", id))[0];

describe("the CONTAINER service binding", () => {
  it("carries a dispatch's start instead of CONTAINER_URL", async () => {
    const [town, beadId] = await slung("start");
    await tick(town);
    const starts = await startsOf(town);
    expect(starts).toHaveLength(1);
    expect(starts[0].method).toBe("POST");
    expect(starts[0].headers["x-via"]).toBe("container-binding");
    expect(starts[0].headers["content-type"]).toBe("application/json");
    expect(starts[0].json).toMatchObject({ townId: town, rigId: "web", role: "polecat" });
    expect(await beadRow(town, beadId)).toMatchObject({ status: "in_progress", dispatch_attempts: 1, last_dispatch_error: null });
  });

  it("reports a refusal through it as the stand-in's own", async () => {
    const [town, beadId] = await slung("refused");
    await control("POST", "fail", { path_prefix: "/agents/start", mode: "500", json: { townId: town, role: "polecat" } });
    await tick(town);
    const starts = await startsOf(town);
    expect(starts).toHaveLength(1);
    expect(starts[0].headers["x-via"]).toBe("container-binding");
    const row = await beadRow(town, beadId);
    expect(row).toMatchObject({ status: "open", dispatch_attempts: 1 });
    expect(row.last_dispatch_error).toMatch(/^answered HTTP 500$/);
  });
});

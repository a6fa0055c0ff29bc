// With ENVIRONMENT=production the fault suite's injected tick failure cannot be armed: the route
// answers 403 and the next tick runs through.
import { it, expect } from "vitest";
import { runInDurableObject } from "cloudflare:test";
import { call, createTown, DEBUG, dump, townStub } from "../helpers.mjs";

it("refuses to arm an injected tick failure outside development", async () => {
  const town = "t-prod-fault";
  await createTown(town);
  const before = await dump(town);
  const res = await call("POST", `/debug/towns/${town}/fault`, { token: DEBUG, body: { fail_after: "drain" } });
  expect(res.status).toBe(403);
  expect(res.json.error.code).toBe("forbidden");
  expect(await dump(town)).toEqual(before);
  const thrown = await runInDurableObject(townStub(town), async (instance) => {
    try {
      await instance.alarm();
      return null;
    } catch (e) {
      return String(e);
    }
  });
  expect(thrown).toBeNull();
});

// With ENVIRONMENT=production the dev-only test clock is refused with 403 and changes nothing.
import { it, expect } from "vitest";
import { call, createTown, DEBUG, dump } from "../helpers.mjs";

it("refuses the test clock outside development", async () => {
  const town = "t-prod-clock";
  await createTown(town);
  const before = await dump(town);
  const res = await call("POST", `/debug/towns/${town}/clock`, { token: DEBUG, body: { advance_ms: 1000 } });
  expect(res.status).toBe(403);
  expect(res.json.error.code).toBe("forbidden");
  expect(await dump(town)).toEqual(before);
});

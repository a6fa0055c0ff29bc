// With ENVIRONMENT=production the dev-only panic route is refused with 403.
import { it, expect } from "vitest";
import { call, createTown, DEBUG } from "../helpers.mjs";

it("refuses the panic route outside development", async () => {
  const town = "t-prod-panic";
  await createTown(town);
  const res = await call("POST", `/debug/towns/${town}/panic`, { token: DEBUG });
  expect(res.status).toBe(403);
  expect(res.json.error.code).toBe("forbidden");
});

// A Rust panic in the production module (built with unwinding, shipped without its names
// section): it fails only its request, and the stack it logs names no function until
// scripts/symbolize's code reads the names artifact (build/index_bg.names.wasm, bound here as
// WASM_NAMES) that scripts/build kept beside the bundle.
import { env } from "cloudflare:test";
import { it, expect } from "vitest";
import { call, createTown, DEBUG } from "./helpers.mjs";
import { parseModule, symbolizeFrames, symbolizeText } from "../../scripts/wasm-names.mjs";

it("a panic fails only its request, and its logged stack is named from the names artifact", async () => {
  const town = "t-panic";
  await createTown(town);
  const logged = [];
  const original = console.error;
  console.error = (...args) => logged.push(args.join(" "));
  let res;
  try {
    res = await call("POST", `/debug/towns/${town}/panic`, { token: DEBUG });
  } finally {
    console.error = original;
  }
  expect(res.status).toBe(500);

  // console_error_panic_hook's log: the message, then the stack as V8 prints it.
  const stack = logged.find((line) => line.includes("deliberate panic"));
  expect(stack, logged.join("\n---\n")).toBeDefined();
  expect(stack).toMatch(/wasm-function\[\d+\]:0x[0-9a-f]+/);
  expect(stack).not.toContain("deliberate_panic");

  const names = parseModule(env.WASM_NAMES);
  const frames = symbolizeFrames(names, stack);
  expect(frames.length).toBeGreaterThan(3);
  // Every frame is a function of the artifact, its offset inside that function's body.
  for (const f of frames) expect(f, JSON.stringify(f)).toMatchObject({ exact: true });
  const named = symbolizeText(names, stack);
  expect(named).toMatch(/wasm-function\[\d+\]:0x[0-9a-f]+ gastown_town::http::debug::deliberate_panic \+0x/);
  expect(named).toContain("gastown_town::http::debug::handle");

  // The isolate survived: the next request is served.
  const status = await call("GET", `/debug/towns/${town}/status`, { token: DEBUG });
  expect(status.status, status.text).toBe(200);
});

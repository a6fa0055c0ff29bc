// Runs in Node around the runtime tests. It starts:
// - the AE collector: the capture Worker (ae-capture.mjs) posts every point it receives here, and
//   teardown writes them all to tests/runtime/.out/points.json for the dashboard checks;
// - the stand-in servers the Worker talks to (tools/sim/standins.mjs), whose addresses reach the Worker as
//   bindings through vitest's provide/inject.
import { createServer } from "node:http";
import { writeFileSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { startStandins } from "../../tools/sim/standins.mjs";
import { SECRETS } from "./secrets.mjs";

const out = join(dirname(fileURLToPath(import.meta.url)), ".out");

function listen(server) {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server.address().port)));
}

export default async function setup({ provide }) {
  const collected = [];
  const collector = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      if (req.method === "POST") collected.push({ received_at: Date.now(), ...JSON.parse(body) });
      res.writeHead(204).end();
    });
  });
  const collectorPort = await listen(collector);
  const standins = await startStandins({ jwtSecret: SECRETS.GASTOWN_JWT_SECRET });
  provide("standins", {
    AE_COLLECTOR_URL: `http://127.0.0.1:${collectorPort}/points`,
    CONTAINER_URL: standins.CONTAINER_URL,
    GITHUB_API_URL: standins.GITHUB_API_URL,
  });
  return async () => {
    await standins.close();
    await new Promise((r) => collector.close(r));
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, "points.json"), JSON.stringify(collected, null, 1));
  };
}

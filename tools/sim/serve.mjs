// The HTTP harness every simulator runs in: a server on 127.0.0.1 around an app that records
// each request, injects the failures scripted through the shared control API under
// /__control/ (README.md in this directory lists it), and answers the rest with the app.
import { createServer } from "node:http";

const MODES = new Set(["timeout", "stall", "garbage", "refuse", "hold", "rate_limit"]);

export const reply = (status, body) => ({ status, body });

/** An HTTP server around `app` ({handle(req), control(req), state(), reset(kept)}) that records
 * requests, injects failures and serves the shared control API. */
export async function serve(app, { port = 0, maxRequests = Infinity } = {}) {
  let requests = [];
  let failures = [];
  let held = [];

  const control = (req) => {
    if (req.method === "GET" && req.path === "/__control/requests") {
      const prefix = req.query.path_prefix ?? "";
      return reply(200, requests.filter((r) => r.path.startsWith(prefix)));
    }
    if (req.method === "GET" && req.path === "/__control/state") return reply(200, app.state());
    if (req.method === "POST" && req.path === "/__control/reset") {
      const prefix = req.json?.path_prefix ?? "";
      if (typeof prefix !== "string") return reply(400, { error: "path_prefix must be a string" });
      const kept = (path) => !path.startsWith(prefix);
      requests = requests.filter((r) => kept(r.path));
      failures = failures.filter((f) => kept(f.path_prefix));
      app.reset(kept);
      return reply(200, { reset: prefix });
    }
    if (req.method === "POST" && req.path === "/__control/fail") {
      const { path_prefix, mode, times = 1, method, json } = req.json ?? {};
      if (typeof path_prefix !== "string" || !path_prefix.startsWith("/"))
        return reply(400, { error: "path_prefix must be a path starting with /" });
      if (!(MODES.has(mode) || /^[1-5]\d\d$/.test(String(mode))))
        return reply(400, { error: 'mode must be "timeout", "stall", "garbage", "refuse", "hold", "rate_limit" or a status like "500"' });
      if (!Number.isInteger(times) || times < 1) return reply(400, { error: "times must be a positive integer" });
      if (method !== undefined && typeof method !== "string") return reply(400, { error: "method must be a string" });
      if (json !== undefined && (json === null || typeof json !== "object" || Array.isArray(json)))
        return reply(400, { error: "json must be an object of body fields" });
      failures.push({ path_prefix, mode: String(mode), times, method: method?.toUpperCase(), json });
      return reply(200, { queued: failures.length });
    }
    if (req.method === "POST" && req.path === "/__control/release") {
      const prefix = req.json?.path_prefix ?? "";
      const now = held.filter((h) => h.req.path.startsWith(prefix));
      held = held.filter((h) => !h.req.path.startsWith(prefix));
      for (const h of now) send(h.res, app.handle(h.req));
      return reply(200, { released: now.length });
    }
    return app.control(req) ?? reply(404, { error: `no control route ${req.method} ${req.path}` });
  };

  const bodyHas = (req, fields) =>
    req.json !== null && typeof req.json === "object" && Object.entries(fields).every(([k, v]) => req.json[k] === v);
  const takeFailure = (req) => {
    const rule = failures.find(
      (f) =>
        f.times > 0 &&
        req.path.startsWith(f.path_prefix) &&
        (!f.method || f.method === req.method) &&
        (!f.json || bodyHas(req, f.json)),
    );
    if (rule) rule.times -= 1;
    failures = failures.filter((f) => f.times > 0);
    return rule?.mode;
  };

  const server = createServer((incoming, res) => {
    const chunks = [];
    incoming.on("data", (c) => chunks.push(c));
    incoming.on("end", () => {
      const url = new URL(incoming.url, "http://standin");
      const body = Buffer.concat(chunks).toString("utf8");
      let json = null;
      try {
        json = body ? JSON.parse(body) : null;
      } catch {}
      const req = {
        method: incoming.method,
        path: decodePath(url.pathname),
        query: Object.fromEntries(url.searchParams),
        headers: { ...incoming.headers },
        body,
        json,
      };
      if (req.path.startsWith("/__control/")) return send(res, control(req));
      requests.push({ at: Date.now(), ...req });
      if (requests.length > maxRequests) requests.splice(0, requests.length - maxRequests);
      const mode = takeFailure(req);
      // "timeout": hold the request without ever answering (closed when the servers close).
      if (mode === "timeout") return;
      // "hold": answered as usual once /__control/release says so.
      if (mode === "hold") return void held.push({ req, res });
      // "stall": the headers and part of the body, then nothing (closed when the servers close).
      if (mode === "stall") {
        res.writeHead(200, { "content-type": "application/json" });
        return res.write('{"status":');
      }
      // "refuse": drop the connection before any answer.
      if (mode === "refuse") return incoming.socket.destroy();
      // "rate_limit": GitHub's answer once the token's hourly requests are used up.
      if (mode === "rate_limit") {
        const reset = Math.floor(Date.now() / 1000) + 3600;
        res.writeHead(403, {
          "content-type": "application/json", "x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(reset),
        });
        return res.end(JSON.stringify({
          message: "API rate limit exceeded for user ID 1.",
          documentation_url: "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting",
        }));
      }
      if (mode === "garbage") {
        res.writeHead(200, { "content-type": "text/html" });
        return res.end("<html><body><h1>502 Bad Gateway</h1></body></html>");
      }
      if (mode) return send(res, reply(Number(mode), { message: `injected ${mode}` }));
      send(res, app.handle(req));
    });
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(resolve);
      }),
  };
}

function decodePath(path) {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

function send(res, { status, body }) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}


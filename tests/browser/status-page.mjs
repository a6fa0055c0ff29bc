// The operator's status page in a real browser: serves the built Worker with `wrangler dev`
// (as scripts/dev does, on a free port with throwaway state), makes a town tick a few times,
// opens /debug/towns/{t}/status in headless Chromium (Debian's), saves a screenshot to
// tests/runtime/.out/status-page.png and checks what the page shows; then two more ticks, which
// the page shows without a reload (through its live status socket, opened with the ticket the
// page carries: the browser sends no Authorization header on a WebSocket). Also proves that the
// served Worker answers /health. Ends with "browser: N passed, M failed".
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { freePort, stop, wranglerDev } from "../bench/serve.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const out = join(root, "tests", "runtime", ".out");
const API = "browser-api-token";
const DEBUG = "browser-debug-token";
const results = [];

function check(name, ok, detail = "") {
  results.push({ name, ok });
  console.log(`${ok ? "ok  " : "FAIL"} ${name}${ok || !detail ? "" : `: ${detail}`}`);
}

const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const state = mkdtempSync(join(tmpdir(), "gastown-browser-"));
const vars = {
  ENVIRONMENT: "development",
  GASTOWN_API_TOKEN: API,
  GASTOWN_DEBUG_TOKEN: DEBUG,
  GASTOWN_JWT_SECRET: "browser-jwt-secret",
};

let server;
let browser;
try {
  server = await wranglerDev({ root, state, port, vars });
  console.log(`wrangler dev answered /health after ${Math.round(server.cold_start_ms)} ms`);
  const health = await (await fetch(`${base}/health`)).json();
  check("the served Worker answers /health", health.status === "ok", JSON.stringify(health));

  const town = "browser-town";
  const headers = (token) => ({ authorization: `Bearer ${token}`, "content-type": "application/json" });
  const put = await fetch(`${base}/api/towns/${town}`, {
    method: "PUT", headers: headers(API), body: JSON.stringify({ owner_user_id: "operator" }),
  });
  check("a town is created", put.status === 201, String(put.status));
  for (let i = 0; i < 3; i++) {
    const t = await fetch(`${base}/debug/towns/${town}/tick`, { method: "POST", headers: headers(DEBUG) });
    if (t.status !== 200) check(`tick ${i}`, false, String(t.status));
  }

  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
  // The token goes on the page's own request only: the socket the page opens must make do with
  // the ticket the page carries, as in a browser with no way to set the header on a WebSocket.
  await page.route(`${base}/debug/towns/${town}/status`, (route) =>
    route.continue({ headers: { ...route.request().headers(), authorization: `Bearer ${DEBUG}` } }));
  const res = await page.goto(`${base}/debug/towns/${town}/status`);
  check("the status page loads as HTML", res.status() === 200 && res.headers()["content-type"].startsWith("text/html"));
  mkdirSync(out, { recursive: true });
  await page.screenshot({ path: join(out, "status-page.png"), fullPage: true });
  check("the page names the town", (await page.textContent("#town-id")) === town);
  check("the title names the town", (await page.title()).includes(town));
  const lines = await page.$$eval("#ticks-chart polyline.series", (ps) =>
    ps.map((p) => ({ series: p.dataset.series, points: p.getAttribute("points").trim().split(/\s+/).length })));
  check("the chart draws four series over the three ticks",
    lines.length === 4 && lines.every((l) => l.points === 3), JSON.stringify(lines));
  const box = await page.locator("#ticks-chart").boundingBox();
  check("the chart is rendered with a size", box !== null && box.width >= 500 && box.height >= 100, JSON.stringify(box));
  const lastTick = await page.locator("section", { hasText: "Last tick" }).innerText();
  check("the last tick's metrics are shown", /pending_event_count\s+0/.test(lastTick), lastTick.slice(0, 200));

  // Live: the page opens its socket, then two ticks change it in place.
  await page.evaluate(() => { window.sameDocument = true; });
  await page.waitForFunction(() => document.querySelector("#live").textContent === "live", null, { timeout: 10_000 });
  check("the page's live socket opens", true);
  const shownTicks = async () => Number(await page.textContent("#ticks-count"));
  const before = await shownTicks();
  for (let i = 0; i < 2; i++) {
    const t = await fetch(`${base}/debug/towns/${town}/tick`, { method: "POST", headers: headers(DEBUG) });
    if (t.status !== 200) check(`live tick ${i}`, false, String(t.status));
  }
  await page.waitForFunction((n) => Number(document.body.dataset.updates || 0) >= 2
    && Number(document.querySelector("#ticks-count").textContent) >= n, before + 2, { timeout: 10_000 });
  const after = await shownTicks();
  const linePoints = await page.$$eval("#ticks-chart polyline.series", (ps) =>
    ps.map((p) => p.getAttribute("points").trim().split(/\s+/).length));
  check("two ticks update the page without a reload",
    (await page.evaluate(() => window.sameDocument === true)) && after >= before + 2
      && linePoints.every((n) => n === after), JSON.stringify({ before, after, linePoints }));
  await page.screenshot({ path: join(out, "status-page-live.png"), fullPage: true });
  const noToken = await fetch(`${base}/debug/towns/${town}/status`, { headers: { accept: "text/html" } });
  check("without the debug token the page is refused", noToken.status === 401);
} catch (e) {
  check("the browser check ran", false, `${e.message}\n${(server?.log ?? "").slice(-2000)}`);
} finally {
  await browser?.close();
  if (server) await stop(server.child);
  rmSync(state, { recursive: true, force: true });
}
const failed = results.filter((r) => !r.ok).length;
console.log(`browser: ${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);

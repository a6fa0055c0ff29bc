// The live status socket, `GET /debug/towns/{t}/status/ws`, in workerd: accepted with the debug
// token or a status ticket (as the status page offers it, in Sec-WebSocket-Protocol), and sent
// the status snapshot after every tick.
import { describe, it, expect } from "vitest";
import { runInDurableObject, SELF } from "cloudflare:test";
import { call, createTown, DEBUG, townStub } from "./helpers.mjs";

const run = `lv${Date.now().toString(36)}`;
const HOUR = 3_600_000;

/** Opens the status socket; `headers` replace the default debug token. */
async function open(town, headers = { authorization: `Bearer ${DEBUG}` }) {
  const res = await SELF.fetch(`https://town.test/debug/towns/${town}/status/ws`, {
    headers: { upgrade: "websocket", ...headers },
  });
  return res;
}

/** A socket's messages as a queue: `next()` resolves with the next snapshot. */
function listen(ws) {
  const queue = [];
  const waiting = [];
  ws.accept();
  ws.addEventListener("message", (e) => {
    const snapshot = JSON.parse(e.data);
    const w = waiting.shift();
    if (w) w(snapshot);
    else queue.push(snapshot);
  });
  return { next: () => (queue.length ? Promise.resolve(queue.shift()) : new Promise((r) => waiting.push(r))) };
}

async function newTown(name) {
  const town = `${run}-${name}`;
  await createTown(town);
  await runInDurableObject(townStub(town), (_i, state) => state.storage.setAlarm(Date.now() + HOUR));
  return town;
}

/** The ticket the status page carries for its socket. */
async function pageTicket(town) {
  const page = await call("GET", `/debug/towns/${town}/status`, { token: DEBUG, headers: { accept: "text/html" } });
  expect(page.status).toBe(200);
  return page.text.match(/data-ticket="([^"]+)"/)[1];
}

describe("the live status socket", () => {
  it("sends the status snapshot after every tick", async () => {
    const town = await newTown("push");
    const res = await open(town);
    expect(res.status).toBe(101);
    const socket = listen(res.webSocket);

    const t1 = await call("POST", `/debug/towns/${town}/tick`, { token: DEBUG });
    expect(t1.status, t1.text).toBe(200);
    const first = await socket.next();
    const rig = await call("POST", `/api/towns/${town}/rigs`, {
      body: { rig_id: "r1", name: "r1", git_url: "https://github.com/acme/live.git", default_branch: "main" },
    });
    expect(rig.status, rig.text).toBe(201);
    const bead = await call("POST", `/api/towns/${town}/beads`, { body: { rig_id: "r1", title: "watch me" } });
    expect(bead.status, bead.text).toBe(201);
    const t2 = await call("POST", `/debug/towns/${town}/tick`, { token: DEBUG });
    expect(t2.status, t2.text).toBe(200);
    const second = await socket.next();

    // The same document as GET .../status, one per tick, each showing its own tick.
    const now = (await call("GET", `/debug/towns/${town}/status`, { token: DEBUG })).json;
    expect(Object.keys(first).sort()).toEqual(Object.keys(now).sort());
    expect(first.town_id).toBe(town);
    expect(first.reconciler.point).toEqual(t1.json.point);
    expect(second.reconciler.point).toEqual(t2.json.point);
    expect(second.reconciler.at > first.reconciler.at || second.reconciler.at === first.reconciler.at).toBe(true);
    expect(first.bead_summary).toEqual([]);
    expect(second.bead_summary.map((b) => b.bead_id)).toContain(bead.json.bead.bead_id);
    expect(second.agents.total).toBe(first.agents.total + 1);
    expect(second).toEqual({ ...now, now: second.now, alarm: second.alarm, tick: second.tick });
    res.webSocket.close(1000, "done");
  });

  it("opens with the page's ticket in Sec-WebSocket-Protocol, for its own town only", async () => {
    const town = await newTown("ticket");
    const other = await newTown("other");
    const ticket = await pageTicket(town);
    const ok = await open(town, { "sec-websocket-protocol": `gastown.status, ticket.${ticket}` });
    expect(ok.status).toBe(101);
    expect(ok.headers.get("sec-websocket-protocol")).toBe("gastown.status");
    ok.webSocket.accept();
    ok.webSocket.close(1000, "done");

    const elsewhere = await open(other, { "sec-websocket-protocol": `gastown.status, ticket.${ticket}` });
    expect(elsewhere.status).toBe(401);
    const forged = await open(town, { "sec-websocket-protocol": `gastown.status, ticket.${ticket.replace(/.$/, (c) => (c === "0" ? "1" : "0"))}` });
    expect(forged.status).toBe(401);
    expect((await open(town, {})).status).toBe(401);
    expect((await open(town, { authorization: "Bearer test-api-token" })).status).toBe(401);
  });

  it("refuses a request that is not an upgrade, and an unknown town", async () => {
    const town = await newTown("plain");
    const plain = await call("GET", `/debug/towns/${town}/status/ws`, { token: DEBUG });
    expect(plain.status).toBe(400);
    expect(plain.json.error.message).toContain("WebSocket");
    const unknown = await open(`${run}-nowhere`);
    expect(unknown.status).toBe(404);
  });
});

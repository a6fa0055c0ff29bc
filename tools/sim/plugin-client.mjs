// The calls of the real Gastown container and the agent plugin inside it back to the Town
// (Kilo-Org/cloud, services/gastown/container: heartbeat, completion reporter, plugin/client.ts;
// UPSTREAM-WIRE.md section 2), behaving as they do on the wire: the runtime tests drive the Town
// with it and the simulated agents (agents.mjs) call the Town with it.
// - one container token for the whole town, from the start body's envVars.GASTOWN_CONTAINER_TOKEN;
// - every call `Authorization: Bearer <token>` plus `X-Gastown-Agent-Id` / `X-Gastown-Rig-Id`;
// - an answer without a boolean `success` is an error (thrown), `success: false` too; `data` is
//   what a call returns;
// - after a 401 the token is refreshed once (POST /refresh-container-token, which accepts an
//   expired token) and the call retried once.
//
// Where the Town is and how to reach it are given: `apiUrl` (GASTOWN_API_URL) and a `fetch`
// (the global one, or in the runtime tests the Worker's own SELF.fetch).

/** What the plugin throws: the status and the server's `error` text. */
export class GastownApiError extends Error {
  constructor(status, message) {
    super(`${status}: ${message}`);
    this.status = status;
  }
}

/** The container token a start request carried (the original's plugin refuses to run without
 * one, so a start without it fails here too). */
export function tokenOfStart(start) {
  const token = start.json?.envVars?.GASTOWN_CONTAINER_TOKEN;
  if (typeof token !== "string" || token === "") throw new Error("the start body carries no envVars.GASTOWN_CONTAINER_TOKEN");
  return token;
}

export class Container {
  /** `instanceId` is the container instance the heartbeats name; calls go to `apiUrl` through
   * `fetch`. */
  constructor(townId, token, { instanceId = "instance-1", apiUrl, fetch = globalThis.fetch } = {}) {
    if (typeof apiUrl !== "string" || apiUrl === "") throw new Error("the plugin needs GASTOWN_API_URL");
    this.townId = townId;
    this.token = token;
    this.instanceId = instanceId;
    this.apiUrl = apiUrl.replace(/\/+$/, "");
    this.fetch = fetch;
    this.refreshes = 0;
  }

  /** One call; returns `data`, throws GastownApiError otherwise. */
  async request(method, path, { body, agentId, rigId, retried = false } = {}) {
    const headers = { authorization: `Bearer ${this.token}` };
    if (agentId) headers["x-gastown-agent-id"] = agentId;
    if (rigId) headers["x-gastown-rig-id"] = rigId;
    const init = { method, headers };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      headers["content-type"] = "application/json";
    }
    const res = await this.fetch(`${this.apiUrl}/api/towns/${this.townId}${path}`, init);
    const text = await res.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      throw new GastownApiError(res.status, `not JSON: ${text.slice(0, 80)}`);
    }
    if (res.status === 401 && !retried) {
      await this.refreshToken();
      return this.request(method, path, { body, agentId, rigId, retried: true });
    }
    if (typeof json?.success !== "boolean") throw new GastownApiError(res.status, "answer without a boolean success");
    if (!json.success) throw new GastownApiError(res.status, json.error);
    return json.data;
  }

  async refreshToken() {
    const data = await this.request("POST", "/refresh-container-token", { body: {}, retried: true });
    this.token = data.token;
    this.refreshes += 1;
    return data;
  }

  /** The heartbeat reporter's body for one agent. */
  heartbeat(agent, rigId, status = "running") {
    return this.request("POST", `/rigs/${rigId}/agents/${agent}/heartbeat`, {
      agentId: agent,
      rigId,
      body: {
        agentId: agent, rigId, townId: this.townId, status, timestamp: new Date().toISOString(),
        lastEventType: "tool_call", lastEventAt: new Date().toISOString(), activeTools: ["bash"],
        messageCount: 1, containerInstanceId: this.instanceId,
      },
    });
  }

  completed(agent, rigId, status, reason) {
    return this.request("POST", `/rigs/${rigId}/agents/${agent}/completed`, { agentId: agent, body: { status, reason, agentId: agent } });
  }

  pendingNudges(agent, rigId) {
    return this.request("GET", `/rigs/${rigId}/agents/${agent}/pending-nudges`, { agentId: agent, rigId });
  }

  nudgeDelivered(agent, rigId, nudgeId) {
    return this.request("POST", `/rigs/${rigId}/agents/${agent}/nudge-delivered`, { agentId: agent, body: { nudge_id: nudgeId } });
  }

  eviction() {
    return this.request("POST", "/container-eviction");
  }

  ready(nonce) {
    return this.request("POST", "/container-ready", { body: { nonce } });
  }

  drainStatus() {
    return this.request("GET", "/drain-status");
  }

  /** An event of an agent's session, reported fire-and-forget. */
  agentEvent(agent, rigId, eventType, data) {
    return this.request("POST", `/rigs/${rigId}/agent-events`, { agentId: agent, body: { agent_id: agent, event_type: eventType, data } });
  }

  /** The plugin of one agent in this container. */
  plugin(agentId, rigId) {
    return new Plugin(this, agentId, rigId);
  }
}

/** The agent plugin's tools (client.ts), for one agent. */
export class Plugin {
  constructor(container, agentId, rigId) {
    Object.assign(this, { container, agentId, rigId });
  }

  #agent(method, action, body) {
    return this.container.request(method, `/rigs/${this.rigId}/agents/${this.agentId}/${action}`, { body, agentId: this.agentId, rigId: this.rigId });
  }

  #rig(method, path, body) {
    return this.container.request(method, `/rigs/${this.rigId}/${path}`, { body, agentId: this.agentId, rigId: this.rigId });
  }

  prime() { return this.#agent("GET", "prime"); }
  done(branch, extra = {}) { return this.#agent("POST", "done", { branch, ...extra }); }
  status(message) { return this.#agent("POST", "status", { message }); }
  checkpoint(data) { return this.#agent("POST", "checkpoint", { data }); }
  checkMail() { return this.#agent("GET", "mail"); }
  requestChanges(feedback, files) { return this.#agent("POST", "request-changes", { feedback, files }); }
  sendMail(to, subject, body) { return this.#rig("POST", "mail", { from_agent_id: this.agentId, to_agent_id: to, subject, body }); }
  nudge(target, message, mode) { return this.#rig("POST", "nudge", { target_agent_id: target, message, mode }); }
  escalate(title, body, priority) { return this.#rig("POST", "escalations", { title, body, priority }); }
  getBead(beadId) { return this.#rig("GET", `beads/${beadId}`); }
  resolveTriage(requestId, action, notes) {
    return this.#rig("POST", "triage/resolve", { triage_request_bead_id: requestId, action, resolution_notes: notes });
  }
}

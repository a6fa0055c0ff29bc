// Stands in for the container's own Worker, which exports the Durable Object class the town
// binds as TOWN_CONTAINER (the original's TownContainerDO, a Container). Each instance is one
// town's container: `idFromName(town_id)`. It forwards every request to the container stand-in
// (TARGET) with its method, path, headers and body, marked `x-container-instance: <its id>`, so
// tests can tell which instance served a call, and remembers the paths it served
// (`GET /__instance` answers `{id, served}`).
import { DurableObject } from "cloudflare:workers";

export class TownContainer extends DurableObject {
  served = [];

  async fetch(request) {
    const url = new URL(request.url);
    const id = this.ctx.id.toString();
    if (url.pathname === "/__instance") return Response.json({ id, served: this.served });
    this.served.push({ method: request.method, host: url.host, path: url.pathname });
    const headers = new Headers(request.headers);
    headers.set("x-container-instance", id);
    const body = ["GET", "HEAD"].includes(request.method) ? undefined : await request.arrayBuffer();
    return fetch(`${this.env.TARGET}${url.pathname}${url.search}`, { method: request.method, headers, body });
  }
}

export default {
  fetch: () => new Response("the container Worker serves its Durable Object only", { status: 404 }),
};

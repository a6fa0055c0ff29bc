// Stands in for the Analytics Engine dataset: keeps every point the Worker writes, in order.
// The Worker calls writeDataPoint() on its GASTOWN_AE binding exactly as on the real dataset;
// tests read the points back with points() (test files run in parallel, so each filters its own
// towns' points; nothing is ever cleared). Each point is also posted, with the label last set by
// label(), to the collector of global-setup.mjs, which saves them all for the dashboard checks.
import { WorkerEntrypoint } from "cloudflare:workers";

let points = [];
let label = "";

export class Capture extends WorkerEntrypoint {
  async writeDataPoint(point) {
    const copy = structuredClone(point);
    points.push(copy);
    if (this.env.AE_COLLECTOR_URL) {
      await fetch(this.env.AE_COLLECTOR_URL, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ label, point: copy }),
      });
    }
  }
  points() {
    return points;
  }
  label(next = "") {
    label = next;
  }
}

export default {
  fetch() {
    return Response.json(points);
  },
};

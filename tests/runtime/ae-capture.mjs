// Stands in for the Analytics Engine dataset: keeps every point the Worker writes, in order.
// The Worker calls writeDataPoint() on its GASTOWN_AE binding exactly as on the real dataset;
// tests read the points back with points() and clear them with clear().
import { WorkerEntrypoint } from "cloudflare:workers";

let points = [];

export class Capture extends WorkerEntrypoint {
  writeDataPoint(point) {
    points.push(structuredClone(point));
  }
  points() {
    return points;
  }
  clear() {
    points = [];
  }
}

export default {
  fetch() {
    return Response.json(points);
  },
};

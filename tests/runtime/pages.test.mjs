// The list routes answer a page at a time in workerd: a town of 6,500 beads answers `GET /beads`
// with 100 beads and a cursor, not megabytes; walking the cursors lists each bead once, a bead
// filed meanwhile comes at the end, and a bad limit or cursor is a 400 that changes nothing.
import { it, expect } from "vitest";
import { runInDurableObject } from "cloudflare:test";
import { call, createTown, dump, townStub } from "./helpers.mjs";

const BEADS = 6_500;

/** Seeds `n` issue beads straight into the town's SQLite, a millisecond apart in pairs (so
 * some share their `created_at`), the way thousands of slung beads would lie there. */
async function seed(town, n) {
  await runInDurableObject(townStub(town), (_instance, state) => {
    const t0 = Date.parse("2026-12-01T00:00:00.000Z");
    for (let i = 0; i < n; i++) {
      const at = new Date(t0 + Math.floor(i / 2)).toISOString();
      const title = `Seeded issue ${i} with a title about as long as a real one`;
      state.storage.sql.exec(
        "INSERT INTO beads (bead_id, type, status, title, body, rig_id, created_by, created_at, updated_at) VALUES (?, 'issue', 'open', ?, ?, 'web', 'api', ?, ?)",
        `seed-${String(i).padStart(5, "0")}`, title, "A body of a few words, as people write them.", at, at,
      );
    }
  });
}

it("answers a 6,500-bead town a page at a time and lists every bead once", async () => {
  const town = `pages-${Date.now().toString(36)}`;
  await createTown(town);
  const rig = await call("POST", `/api/towns/${town}/rigs`, { body: { rig_id: "web", name: "web", git_url: "https://github.com/acme/web.git" } });
  expect(rig.status, rig.text).toBe(201);
  await seed(town, BEADS);

  const first = await call("GET", `/api/towns/${town}/beads`);
  expect(first.status).toBe(200);
  expect(first.json.beads).toHaveLength(100);
  expect(typeof first.json.next_cursor).toBe("string");

  const seen = [];
  let cursor = null;
  let pages = 0;
  let largest = 0;
  let filed = null;
  do {
    const res = await call("GET", `/api/towns/${town}/beads?limit=500${cursor ? `&cursor=${cursor}` : ""}`);
    expect(res.status, res.text).toBe(200);
    largest = Math.max(largest, res.text.length);
    seen.push(...res.json.beads.map((b) => b.bead_id));
    cursor = res.json.next_cursor;
    pages += 1;
    if (pages === 3) {
      const created = await call("POST", `/api/towns/${town}/beads`, { body: { rig_id: "web", title: "Filed while paging" } });
      expect(created.status, created.text).toBe(201);
      filed = created.json.bead.bead_id;
    }
  } while (cursor);
  const seeded = Array.from({ length: BEADS }, (_, i) => `seed-${String(i).padStart(5, "0")}`);
  expect(seen.slice(0, BEADS)).toEqual(seeded);
  expect(seen.slice(BEADS)).toEqual([filed]);
  expect(pages).toBe(14);
  console.log(
    `GET /beads of ${BEADS} beads: first page ${first.text.length} bytes (100 beads), ` +
      `largest page at limit=500 ${largest} bytes, ${pages} pages`,
  );
  expect(largest).toBeLessThan(300_000);
}, 60_000);

it("refuses a bad limit or cursor with a 400 naming it, changing nothing", async () => {
  const town = `pages-bad-${Date.now().toString(36)}`;
  await createTown(town);
  const before = await dump(town);
  for (const [query, field] of [
    ["limit=0", "limit"],
    ["limit=501", "limit"],
    ["limit=many", "limit"],
    ["cursor=abc", "cursor"],
    ["cursor=WyJ5ZXN0ZXJkYXkiLCJiIl0", "cursor"],
  ]) {
    for (const list of ["beads", "agents", "reviews"]) {
      const res = await call("GET", `/api/towns/${town}/${list}?${query}`);
      expect(res.status, `${list}?${query}`).toBe(400);
      expect(res.json.error.code).toBe("invalid_field");
      expect(res.json.error.message).toContain(field);
    }
  }
  expect(await dump(town)).toEqual(before);
});

// The command line of wasm-names.mjs (run through scripts/build, scripts/symbolize, scripts/size):
//   split MODULE NAMES        move MODULE to NAMES and write MODULE again without its names
//   symbolize NAMES [FILE...] copy the stack text (the files, else stdin) with each Wasm frame named
//   size MODULE NAMES [TOP]   the shipped module's size, by section and by crate, and the TOP
//                             largest functions (default 25)
import { readFileSync, writeFileSync, renameSync, existsSync } from "node:fs";
import { gzipSync } from "node:zlib";
import {
  parseModule,
  withoutTrailingCustomSections,
  symbolizeText,
  symbolizeFrames,
  crateOf,
  readable,
} from "./wasm-names.mjs";

const [command, ...args] = process.argv.slice(2);
const fail = (message) => {
  console.error(`wasm-names: ${message}`);
  process.exit(2);
};
const load = (path) => {
  if (!path || !existsSync(path)) fail(`no module at ${path} (run scripts/build)`);
  return parseModule(readFileSync(path));
};
const gz = (bytes) => gzipSync(bytes, { level: 9 }).length;
const num = (n) => n.toLocaleString("en-US");

if (command === "split") {
  const [module, names] = args;
  const full = load(module);
  if (full.names.size === 0) fail(`${module} has no function names to keep`);
  const { bytes, dropped } = withoutTrailingCustomSections(full.bytes);
  renameSync(module, names);
  writeFileSync(module, bytes);
  console.log(
    `${module}: ${num(bytes.length)} bytes raw, ${num(gz(bytes))} gzip ` +
      `(without ${dropped.join(", ")}); the names are in ${names}`,
  );
} else if (command === "symbolize") {
  const [names, ...files] = args;
  const module = load(names);
  const text = files.length
    ? files.map((f) => readFileSync(f, "utf8")).join("\n")
    : readFileSync(0, "utf8");
  process.stdout.write(symbolizeText(module, text));
  const frames = symbolizeFrames(module, text);
  if (frames.length === 0) console.error("symbolize: no wasm-function[N] frame in the input");
  else if (frames.some((f) => f.mismatch || !f.name)) {
    console.error(`symbolize: some frames do not fit ${names}: is it the build that logged them?`);
  }
} else if (command === "size") {
  const [shippedPath, names, top = "25"] = args;
  const shipped = load(shippedPath);
  const full = load(names);
  const raw = shipped.bytes.length;
  console.log(`${shippedPath}: ${num(raw)} bytes raw, ${num(gz(shipped.bytes))} gzip`);
  console.log(`${names} (the same with its names): ${num(full.bytes.length)} raw\n`);
  const table = (title, rows) => {
    console.log(`${title.padEnd(40)} ${"raw".padStart(11)} ${"share".padStart(6)} ${"gzip".padStart(9)}`);
    for (const [name, r, g] of rows) {
      console.log(`${name.padEnd(40)} ${num(r).padStart(11)} ${((100 * r) / raw).toFixed(1).padStart(5)}% ${num(g).padStart(9)}`);
    }
    console.log("");
  };
  table(
    "section",
    shipped.sections.map((s) => [s.name, s.end - s.start, gz(shipped.bytes.subarray(s.start, s.end))]),
  );
  const crates = new Map();
  for (const f of full.bodies) {
    const crate = crateOf(full.names.get(f.index));
    const list = crates.get(crate) ?? [];
    list.push(full.bytes.subarray(f.start, f.end));
    crates.set(crate, list);
  }
  const concat = (parts) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) (out.set(p, at), (at += p.length));
    return out;
  };
  table(
    "code by crate (gzip: that crate's code alone)",
    [...crates]
      .map(([crate, parts]) => {
        const bytes = concat(parts);
        return [crate, bytes.length, gz(bytes)];
      })
      .sort((a, b) => b[1] - a[1]),
  );
  console.log(`the ${top} largest functions (raw bytes)`);
  const largest = full.bodies
    .map((f) => [f.end - f.start, readable(full.names.get(f.index) ?? `function ${f.index}`)])
    .sort((a, b) => b[0] - a[0])
    .slice(0, Number(top));
  for (const [r, name] of largest) {
    console.log(`${num(r).padStart(9)}  ${name.length > 150 ? `${name.slice(0, 147)}...` : name}`);
  }
} else {
  fail("usage: wasm-names-cli.mjs split|symbolize|size ...");
}

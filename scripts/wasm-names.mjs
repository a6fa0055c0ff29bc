// The Wasm module's names, apart from the module: `scripts/build` ships the module without its
// `name` section (138 KB of 591 KB gzip) and keeps the whole module beside it as the names
// artifact; `scripts/symbolize` turns a logged stack back into function names with it, and
// `scripts/size` says where the bytes are. Pure ECMAScript (no Node API), so the runtime tests
// use it in workerd.
//
// Only custom sections after the code are removed, never re-encoded: the shipped module's bytes
// are the artifact's up to its code's end, so a frame's function index and byte offset
// (`wasm-function[N]:0xOFFSET`, as V8 prints a frame of a module without names) mean the same
// function in both.

/** The module's sections, its function bodies (with their indices) and its function names. */
export function parseModule(bytes) {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  if (b.length < 8 || b[0] !== 0 || b[1] !== 0x61 || b[2] !== 0x73 || b[3] !== 0x6d) {
    throw new Error("not a WebAssembly module");
  }
  let p = 8;
  const leb = () => {
    let result = 0;
    let shift = 0;
    let byte;
    do {
      byte = b[p++];
      result += (byte & 0x7f) * 2 ** shift;
      shift += 7;
    } while (byte & 0x80);
    return result;
  };
  const text = () => {
    const n = leb();
    const s = new TextDecoder().decode(b.subarray(p, p + n));
    p += n;
    return s;
  };
  const limits = () => {
    const flags = b[p++];
    leb();
    if (flags & 1) leb();
  };
  const sections = [];
  const bodies = [];
  const names = new Map();
  let imported = 0;
  while (p < b.length) {
    const start = p;
    const id = b[p++];
    const size = leb();
    const contentStart = p;
    const end = p + size;
    const section = { id, name: SECTION_NAMES[id] ?? `id ${id}`, start, end };
    if (id === 0) section.name = `custom "${text()}"`;
    if (id === 2) {
      for (let i = leb(); i > 0; i--) {
        text();
        text();
        const kind = b[p++];
        if (kind === 0) (leb(), imported++);
        else if (kind === 1) (p++, limits());
        else if (kind === 2) limits();
        else if (kind === 3) p += 2;
        else if (kind === 4) (p++, leb());
        else throw new Error(`unknown import kind ${kind}`);
      }
    } else if (id === 10) {
      const count = leb();
      for (let i = 0; i < count; i++) {
        const size = leb();
        bodies.push({ index: imported + i, start: p, end: p + size });
        p += size;
      }
    } else if (section.name === 'custom "name"') {
      while (p < end) {
        const sub = b[p++];
        const subEnd = leb() + p;
        if (sub === 1) {
          for (let i = leb(); i > 0; i--) {
            const index = leb();
            names.set(index, text());
          }
        }
        p = subEnd;
      }
    }
    sections.push(section);
    p = end;
    if (p > b.length || end < contentStart) throw new Error("truncated WebAssembly module");
  }
  return { bytes: b, sections, bodies, names, imported };
}

const SECTION_NAMES = [
  "custom", "type", "import", "function", "table", "memory", "global", "export", "start",
  "element", "code", "data", "data count", "tag",
];

/** The module without its custom sections after the code section (names, producers, target
 * features); everything before them is byte for byte the same. */
export function withoutTrailingCustomSections(bytes) {
  const { bytes: b, sections } = parseModule(bytes);
  const code = sections.findIndex((s) => s.id === 10);
  if (code < 0) throw new Error("the module has no code section");
  let keepTo = sections[code].end;
  for (const s of sections.slice(code + 1)) {
    if (s.id !== 0) keepTo = s.end;
  }
  const dropped = sections.slice(code + 1).filter((s) => s.id === 0 && s.start >= keepTo);
  if (sections.slice(code + 1).some((s) => s.id === 0 && s.start < keepTo)) {
    throw new Error("a custom section sits between the code and a later section");
  }
  return { bytes: b.slice(0, keepTo), dropped: dropped.map((s) => s.name) };
}

/** The function a frame names: by byte offset when it falls in a body (the check that the
 * artifact belongs to the module that logged the frame), else by index alone. */
export function functionAt(module, index, offset) {
  const body = module.bodies.find((f) => f.index === index);
  const name = module.names.get(index);
  if (name === undefined) return undefined;
  if (offset === undefined || !body) return { name, exact: false };
  if (offset < body.start || offset >= body.end) return { name, exact: false, mismatch: true };
  return { name, exact: true, at: offset - body.start };
}

const FRAME = /wasm-function\[(\d+)\](?::0x([0-9a-fA-F]+))?/g;

/** Every Wasm frame of a logged stack (`wasm-function[N]:0xOFFSET`), with the function it is. */
export function symbolizeFrames(module, text) {
  const frames = [];
  for (const m of text.matchAll(FRAME)) {
    const index = Number(m[1]);
    const offset = m[2] === undefined ? undefined : parseInt(m[2], 16);
    frames.push({ frame: m[0], index, offset, ...functionAt(module, index, offset) });
  }
  return frames;
}

/** The text with each Wasm frame followed by its function's name (`<unknown>` when the
 * artifact has none, `<not this build?>` when the offset is outside that function). */
export function symbolizeText(module, text) {
  return text.replace(FRAME, (frame, index, hex) => {
    const f = functionAt(module, Number(index), hex === undefined ? undefined : parseInt(hex, 16));
    if (!f) return `${frame} <unknown>`;
    const name = readable(f.name);
    if (f.mismatch) return `${frame} ${name} <not this build?: offset outside the function>`;
    return `${frame} ${name}${f.exact ? ` +0x${f.at.toString(16)}` : ""}`;
  });
}

/** The crate a (demangled) function name belongs to: its first path segment, or the trait
 * implementation's type (`<T as Trait>::f` counts for T's crate). Names without a path (the
 * wasm-bindgen glue, the allocator) count as `[other]`. */
export function crateOf(name) {
  let s = name ?? "";
  while (s.startsWith("<")) s = s.slice(1);
  s = s.replace(/^(&|\*const |\*mut |mut |dyn )+/, "").replace(/^\[/, "");
  const m = /^([A-Za-z_][A-Za-z0-9_]*)(\[[0-9a-f]+\])?::/.exec(s);
  return m ? m[1] : "[other]";
}

/** A name without the crates' disambiguating hashes (`core[8a1b...]::fmt` -> `core::fmt`). */
export function readable(name) {
  return name.replace(/\[[0-9a-f]{8,16}\]/g, "");
}

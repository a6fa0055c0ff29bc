// The simulated Gastown container (with simulated agents) and PR host, as one program on loopback
// ports: `node tools/sim/main.mjs [options]` (scripts/dev runs it). Prints where they listen,
// then one line per thing an agent does; stops on SIGINT or SIGTERM, or when --parent-pid exits.
// Options (defaults for development; `--help` lists them):
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { startSimulators } from "./standins.mjs";

const OPTIONS = {
  "container-port": ["0", "the container control server's port (0: a free one)"],
  "github-port": ["0", "the PR host's port (0: a free one)"],
  "api-url": ["", "the Town's base URL, when a start's envVars carry no GASTOWN_API_URL"],
  "jwt-secret": ["", "checks each start's container JWT with it (default: $GASTOWN_JWT_SECRET; none: unchecked)"],
  "heartbeat-ms": ["5000", "an agent's heartbeat interval (the original: 30000)"],
  "work-ms": ["3000", "how long a polecat works before it pushes and calls done"],
  "review-ms": ["2000", "how long a refinery reviews before it acts and calls done"],
  "ci-ms": ["2000", "how long the PR host's simulated CI takes on a pushed head"],
  stall: ["0", "share of agents (0 to 1) that stop heartbeating and never finish"],
  crash: ["0", "share of agents whose process dies (status exited, no report)"],
  fail: ["0", "share of agents that report completed with status failed"],
  seed: ["1", "seed of the fate draw"],
  "ready-file": ["", "once listening, writes {CONTAINER_URL, GITHUB_API_URL} here as JSON"],
  "parent-pid": ["", "exits when this process is gone"],
  quiet: [false, "no per-agent lines"],
  help: [false, "prints this"],
};

const usage = () =>
  "usage: node tools/sim/main.mjs [options]\n" +
  Object.entries(OPTIONS)
    .map(([name, [def, text]]) => `  --${name.padEnd(15)} ${text}${def !== "" && def !== false ? ` (default ${def})` : ""}`)
    .join("\n");

let values;
try {
  ({ values } = parseArgs({
    options: Object.fromEntries(
      Object.entries(OPTIONS).map(([name, [def]]) => [name, typeof def === "boolean" ? { type: "boolean", default: def } : { type: "string", default: def }]),
    ),
  }));
} catch (e) {
  console.error(`${e.message}\n${usage()}`);
  process.exit(2);
}
if (values.help) {
  console.log(usage());
  process.exit(0);
}

/** A numeric option, or exit 2 with what is wrong. */
function number(name, { min = 0, max = Infinity, integer = true } = {}) {
  const n = Number(values[name]);
  if (values[name] === "" || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    console.error(`--${name} must be ${integer ? "an integer" : "a number"} from ${min} to ${max}, not "${values[name]}"`);
    process.exit(2);
  }
  return n;
}

const shares = { stall: number("stall", { max: 1, integer: false }), crash: number("crash", { max: 1, integer: false }), fail: number("fail", { max: 1, integer: false }) };
if (shares.stall + shares.crash + shares.fail > 1) {
  console.error("--stall, --crash and --fail together must not exceed 1");
  process.exit(2);
}
const log = values.quiet ? () => {} : (line) => console.log(`sim: ${line}`);
let sims;
try {
  sims = await startSimulators({
    jwtSecret: values["jwt-secret"] || process.env.GASTOWN_JWT_SECRET || undefined,
    containerPort: number("container-port", { max: 65535 }),
    githubPort: number("github-port", { max: 65535 }),
    ciMs: number("ci-ms"),
    maxRequests: 5000,
    agents: {
      apiUrl: values["api-url"],
      heartbeatMs: number("heartbeat-ms", { min: 100 }),
      workMs: number("work-ms"),
      reviewMs: number("review-ms"),
      ...shares,
      seed: number("seed"),
      log,
    },
  });
} catch (e) {
  console.error(`sim: cannot start: ${e.message}`);
  process.exit(1);
}

console.log(`sim: container control server ${sims.CONTAINER_URL}, PR host ${sims.GITHUB_API_URL}`);
if (values["ready-file"]) writeFileSync(values["ready-file"], JSON.stringify({ CONTAINER_URL: sims.CONTAINER_URL, GITHUB_API_URL: sims.GITHUB_API_URL }));

const stop = async () => {
  await sims.close();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
if (values["parent-pid"]) {
  const parent = number("parent-pid", { min: 1 });
  setInterval(() => {
    try {
      process.kill(parent, 0);
    } catch {
      stop();
    }
  }, 1000).unref();
}

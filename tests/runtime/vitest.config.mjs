// Runtime tests: the real Worker (build/index.js) in workerd through the vitest plugin.
//
// The test Worker config is derived from wrangler.toml so it cannot drift: the one change is
// that GASTOWN_AE is bound to a capture Worker (ae-capture.mjs) instead of the real dataset,
// which is a silent no-op locally, so tests see exactly the points the Rust code built.
import { defineConfig } from "vitest/config";
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { SECRETS } from "./secrets.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const out = join(here, ".out");
mkdirSync(out, { recursive: true });

const base = readFileSync(join(root, "wrangler.toml"), "utf8");
const withoutAe = base.replace(/\[\[analytics_engine_datasets\]\][^[]*/, "");
if (withoutAe === base) throw new Error("wrangler.toml has no [[analytics_engine_datasets]] block");
const testConfig = withoutAe
  .replace(/^main = .*$/m, `main = "${join(root, "build", "index.js")}"`)
  .replace(/^\[build\][^[]*/m, "")
  .concat(`\n[[services]]\nbinding = "GASTOWN_AE"\nservice = "ae-capture"\nentrypoint = "Capture"\n`);
const configPath = join(out, "wrangler.test.toml");
writeFileSync(configPath, testConfig);
// The same Worker with each town's container bound as the TOWN_CONTAINER Durable Object of
// another Worker (town-container.mjs), as a deployment binds the container's TownContainerDO.
const townContainerConfigPath = join(out, "wrangler.town-container.toml");
writeFileSync(
  townContainerConfigPath,
  testConfig.concat(`\n[[durable_objects.bindings]]\nname = "TOWN_CONTAINER"\nclass_name = "TownContainer"\nscript_name = "town-container"\n`),
);

/** The Worker's vars in the tests: where agents call back, and a 10 s start timeout instead of
 * the original's 60 s, so a test of a start that never answers waits 10 s, not a minute. Facts
 * do not wake the town (ALARM_WAKE_ON_FACTS=false): these tests fire the ticks they check
 * themselves, and an alarm pulled forward to now would race them; the "wake" project runs with
 * the default. */
const TEST_VARS = { GASTOWN_API_URL: "https://town.test", CONTAINER_START_TIMEOUT_MS: "10000", ALARM_WAKE_ON_FACTS: "false" };

export { SECRETS };

/** The container stand-in behind a service binding (container-proxy.mjs), bound as CONTAINER. */
const containerBinding = (standins) => ({
  serviceBindings: { CONTAINER: "container-proxy" },
  workers: [
    {
      name: "container-proxy",
      modules: true,
      scriptPath: join(here, "container-proxy.mjs"),
      compatibilityDate: "2026-11-01",
      bindings: { TARGET: standins.CONTAINER_URL ?? "" },
    },
  ],
});

/** Each town's container as its own instance of the TOWN_CONTAINER Durable Object
 * (town-container.mjs), each forwarding to the container stand-in. */
const townContainers = (standins) => ({
  serviceBindings: {},
  workers: [
    {
      name: "town-container",
      modules: true,
      scriptPath: join(here, "town-container.mjs"),
      compatibilityDate: "2026-11-01",
      bindings: { TARGET: standins.CONTAINER_URL ?? "" },
      durableObjects: { TOWN_CONTAINER: "TownContainer" },
    },
  ],
});

/** A test project: the Worker with these extra bindings (and, with `binding`, the CONTAINER
 * service binding; with `townContainer`, the TOWN_CONTAINER Durable Object), running these
 * test files. */
function project(name, include, extraBindings = {}, { binding = false, townContainer = false, exclude = [] } = {}) {
  return {
    plugins: [
      cloudflareTest(async ({ inject }) => {
        const standins = inject("standins") ?? {};
        const extra = binding
          ? containerBinding(standins)
          : townContainer
            ? townContainers(standins)
            : { serviceBindings: {}, workers: [] };
        return {
          wrangler: { configPath: townContainer ? townContainerConfigPath : configPath },
          miniflare: {
            bindings: { ...SECRETS, ...TEST_VARS, ENVIRONMENT: "development", ...standins, ...extraBindings },
            // The module's names, kept apart by scripts/build (panic.test.mjs symbolizes with it).
            dataBlobBindings: { WASM_NAMES: join(root, "build", "index_bg.names.wasm") },
            serviceBindings: extra.serviceBindings,
            workers: [
              {
                name: "ae-capture",
                modules: true,
                scriptPath: join(here, "ae-capture.mjs"),
                compatibilityDate: "2026-11-01",
                bindings: { AE_COLLECTOR_URL: standins.AE_COLLECTOR_URL ?? "" },
              },
              ...extra.workers,
            ],
          },
        };
      }),
    ],
    test: { name, include: include.map((f) => join(here, f)), exclude: exclude.map((f) => join(here, f)), testTimeout: 30_000 },
  };
}

export default defineConfig({
  test: {
    globalSetup: [join(here, "global-setup.mjs")],
    reporters: ["default"],
    projects: [
      // ENVIRONMENT=development, as under scripts/dev: dev-only routes are open.
      project("development", ["*.test.mjs"], {}, { exclude: ["container-conformance.test.mjs"] }),
      // ENVIRONMENT=production: dev-only routes answer 403.
      project("production", ["production/*.test.mjs"], { ENVIRONMENT: "production" }),
      // Facts wake the town, as deployed: the alarm runs by itself.
      project("wake", ["wake/*.test.mjs"], { ALARM_WAKE_ON_FACTS: "true" }),
      // The container reached through the CONTAINER service binding instead of CONTAINER_URL.
      project("container-binding", ["binding/*.test.mjs"], {}, { binding: true }),
      // Each town's own container: the TOWN_CONTAINER Durable Object (idFromName(town_id)), and
      // the conformance suite against the container stand-in through it.
      project("town-container", ["town-container/*.test.mjs", "container-conformance.test.mjs"], {}, { townContainer: true }),
    ],
  },
});

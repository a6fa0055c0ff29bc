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

export const SECRETS = {
  GASTOWN_API_TOKEN: "test-api-token",
  GASTOWN_AGENT_SIGNING_KEY: "test-agent-signing-key",
  // Signs and verifies the container and agent JWTs of the container-facing routes.
  GASTOWN_JWT_SECRET: "test-jwt-secret",
  GASTOWN_DEBUG_TOKEN: "test-debug-token",
  // The PR host token (towns without a token of their own); the GitHub stand-in requires one.
  GITHUB_TOKEN: "test-github-token",
};

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

/** A test project: the Worker with these extra bindings (and, with `binding`, the CONTAINER
 * service binding), running these test files. */
function project(name, include, extraBindings = {}, { binding = false } = {}) {
  return {
    plugins: [
      cloudflareTest(async ({ inject }) => {
        const standins = inject("standins") ?? {};
        const extra = binding ? containerBinding(standins) : { serviceBindings: {}, workers: [] };
        return {
          wrangler: { configPath },
          miniflare: {
            bindings: { ...SECRETS, ENVIRONMENT: "development", ...standins, ...extraBindings },
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
    test: { name, include: include.map((f) => join(here, f)), testTimeout: 30_000 },
  };
}

export default defineConfig({
  test: {
    globalSetup: [join(here, "global-setup.mjs")],
    reporters: ["default"],
    projects: [
      // ENVIRONMENT=development, as under scripts/dev: dev-only routes are open.
      project("development", ["*.test.mjs"]),
      // ENVIRONMENT=production: dev-only routes answer 403.
      project("production", ["production/*.test.mjs"], { ENVIRONMENT: "production" }),
      // The container reached through the CONTAINER service binding instead of CONTAINER_URL.
      project("container-binding", ["binding/*.test.mjs"], {}, { binding: true }),
    ],
  },
});

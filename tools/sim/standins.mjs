// The two services the Worker calls, as real HTTP servers on 127.0.0.1: the Gastown container
// control server (container.mjs, optionally running simulated agents, agents.mjs) and the PR
// host (github.mjs). The runtime tests start them without agents (tests/runtime/global-setup.mjs
// and the tests script every callback themselves); `scripts/dev` starts them with agents
// (main.mjs). Both record every request and share the control API under /__control/
// (serve.mjs; the routes are listed in README.md).
import { serve } from "./serve.mjs";
import { containerPlane } from "./container.mjs";
import { githubApi } from "./github.mjs";
import { agentSimulator } from "./agents.mjs";

export { startIssues, verifyJwt } from "./container.mjs";

/**
 * Starts both simulators; `close()` stops them, hung requests and agents included.
 * - `jwtSecret`: the container checks the container JWT of every start with it (optional);
 * - `agents`: options of the agent simulator (agents.mjs) to run an agent per start, or null;
 * - `containerPort`, `githubPort`: where to listen (0, the default: a free port);
 * - `ciMs`: how long the PR host's simulated CI takes; `maxRequests`: requests kept per server.
 */
export async function startSimulators({ jwtSecret, agents = null, containerPort = 0, githubPort = 0, ciMs, maxRequests } = {}) {
  const github = await serve(githubApi({ ciMs }), { port: githubPort, maxRequests });
  const sim = agents ? agentSimulator({ githubApiUrl: github.url, ...agents }) : null;
  let container;
  try {
    container = await serve(containerPlane({ jwtSecret, sim }), { port: containerPort, maxRequests });
  } catch (e) {
    await github.close();
    throw e;
  }
  return {
    CONTAINER_URL: container.url,
    GITHUB_API_URL: github.url,
    async close() {
      sim?.close();
      await Promise.all([container.close(), github.close()]);
    },
  };
}

/** The runtime tests' stand-ins: both servers on free ports, no simulated agents, and a
 * simulated CI that takes a minute (a test sees it running; tests that need checks set them
 * through /__control/pr). */
export function startStandins({ jwtSecret }) {
  return startSimulators({ jwtSecret, ciMs: 60_000 });
}

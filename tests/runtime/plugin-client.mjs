// The container's and the plugin's calls to the Town (tools/sim/plugin-client.mjs, the same
// client the simulated agents use), reaching the Worker under test through SELF.fetch.
import { SELF } from "cloudflare:test";
import { Container as SimContainer, tokenOfStart } from "../../tools/sim/plugin-client.mjs";

export { GastownApiError, Plugin, tokenOfStart } from "../../tools/sim/plugin-client.mjs";

export class Container extends SimContainer {
  /** `instanceId` is the container instance the heartbeats name. */
  constructor(townId, token, instanceId = "instance-1") {
    super(townId, token, { instanceId, apiUrl: "https://town.test", fetch: (url, init) => SELF.fetch(url, init) });
  }

  static async fromStart(start, instanceId) {
    return new Container(start.json.townId, tokenOfStart(start), instanceId);
  }
}

// Starts the stand-in servers the Worker talks to (none yet) and hands their addresses to the
// Worker as bindings through vitest's provide/inject.
export default function setup({ provide }) {
  provide("standins", {});
}

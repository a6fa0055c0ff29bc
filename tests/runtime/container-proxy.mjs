// Stands in for the container control plane's service binding (CONTAINER): forwards each request
// to the container stand-in (TARGET) with its method, path, headers and body, marked with
// `x-via: container-binding` so tests can tell a call that went through the binding from one
// that went to CONTAINER_URL.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const headers = new Headers(request.headers);
    headers.set("x-via", "container-binding");
    const body = ["GET", "HEAD"].includes(request.method) ? undefined : await request.arrayBuffer();
    return fetch(`${env.TARGET}${url.pathname}${url.search}`, { method: request.method, headers, body });
  },
};

// The Worker's secrets in the runtime tests, shared by the test config (bindings) and the
// global setup (the container stand-in verifies the container JWTs with GASTOWN_JWT_SECRET).
export const SECRETS = {
  GASTOWN_API_TOKEN: "test-api-token",
  // Signs the container and agent JWTs of the starts.
  GASTOWN_JWT_SECRET: "test-jwt-secret",
  GASTOWN_DEBUG_TOKEN: "test-debug-token",
  // The PR host token (towns without a token of their own); the GitHub stand-in requires one.
  GITHUB_TOKEN: "test-github-token",
};

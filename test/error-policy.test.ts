import { describe, expect, it } from "vitest";
import { classifyProviderError } from "../src/engagelab/error-policy.ts";
import { ProviderError, ProviderRequestError } from "../src/engagelab/errors.ts";

const http = (status: number, code?: number, retryAfterMs?: number) =>
  new ProviderError({ api: "messages", kind: "http", status, code, retryAfterMs, providerMessage: "x" });

describe("classifyProviderError: one row per documented case", () => {
  it.each([
    ["network error", new ProviderError({ api: "messages", kind: "network" }), "retry"],
    ["timeout", new ProviderError({ api: "messages", kind: "timeout" }), "retry"],
    ["HTTP 500 code 1000", http(500, 1000), "retry"],
    ["HTTP 502 without a body", http(502), "retry"],
    ["HTTP 401 code 2001", http(401, 2001), "pause-campaign"],
    ["HTTP 401 code 2002", http(401, 2002), "pause-campaign"],
    ["HTTP 403 code 2004", http(403, 2004), "pause-campaign"],
    ["legacy HTTP 401 code 30000", http(401, 30000), "pause-campaign"],
    ["HTTP 400 code 3001", http(400, 3001), "fail-batch"],
    ["HTTP 400 code 3002", http(400, 3002), "fail-batch"],
    ["HTTP 400 code 3003", http(400, 3003), "fail-batch"],
    ["HTTP 400 code 3004 (frequency limit)", http(400, 3004), "fail-recipients"],
    ["HTTP 400 code 4001", http(400, 4001), "fail-batch"],
    ["HTTP 400 code 5001", http(400, 5001), "fail-batch"],
    ["legacy HTTP 400 code 32002", http(400, 32002), "fail-batch"],
    ["other 4xx", http(404), "fail-batch"],
    ["2xx with an undocumented non-zero code", http(200, 1), "mark-unknown"],
    [
      "unreadable 2xx body",
      new ProviderError({ api: "messages", kind: "invalid-response", status: 200 }),
      "mark-unknown",
    ],
    ["HTTP 401 without a code", http(401), "pause-campaign"],
    ["request refused before sending", new ProviderRequestError("custom_args", "is over 1 KB"), "fail-batch"],
    ["not a provider error", new Error("boom"), "fail-batch"],
  ])("%s → %s", (_name, error, action) => {
    expect(classifyProviderError(error).action).toBe(action);
  });

  it.each([
    ["timeout", new ProviderError({ api: "messages", kind: "timeout", requestMayHaveArrived: true })],
    [
      "connection reset",
      new ProviderError({ api: "messages", kind: "network", detail: "UND_ERR_SOCKET", requestMayHaveArrived: true }),
    ],
  ])("a %s after the request left: retried only where resending is safe, otherwise unknown", (_name, error) => {
    expect(classifyProviderError(error, { resendIsSafe: true }).action).toBe("retry");
    expect(classifyProviderError(error, { resendIsSafe: false }).action).toBe("mark-unknown");
  });

  it("a connection refused is always retried: the provider never saw the request", () => {
    const refused = new ProviderError({
      api: "messages",
      kind: "network",
      detail: "ECONNREFUSED",
      requestMayHaveArrived: false,
    });
    expect(classifyProviderError(refused, { resendIsSafe: false }).action).toBe("retry");
  });

  it("HTTP 429 retries, backs every worker off, and keeps Retry-After", () => {
    expect(classifyProviderError(http(429, undefined, 2_000))).toEqual({
      action: "retry",
      rateLimited: true,
      retryAfterMs: 2_000,
      reason: "HTTP 429",
    });
  });
});

import { describe, expect, it } from "vitest";
import { classifyProviderError, type ErrorDecision } from "../src/engagelab/error-policy.ts";
import { ProviderError, ProviderRequestError } from "../src/engagelab/errors.ts";

const http = (status: number | undefined, code?: number, retryAfterMs?: number) =>
  new ProviderError({ api: "messages", kind: "http", status, code, retryAfterMs, providerMessage: "x" });
const SAFE = { resendIsSafe: true };
const UNSAFE = { resendIsSafe: false };

/** The decision without the rate-limit flag: every row below but HTTP 429 backs off this job only. */
const decision = (action: ErrorDecision["action"], reason: string): ErrorDecision => ({
  action,
  rateLimited: false,
  reason,
});

describe("classifyProviderError: one row per documented case", () => {
  it.each([
    ["network error", new ProviderError({ api: "messages", kind: "network" }), decision("retry", "network")],
    ["timeout", new ProviderError({ api: "messages", kind: "timeout" }), decision("retry", "timeout")],
    ["HTTP 500 code 1000", http(500, 1000), decision("retry", "code 1000")],
    ["HTTP 502 without a body", http(502), decision("retry", "HTTP 502")],
    ["HTTP 401 code 2001", http(401, 2001), decision("pause-campaign", "code 2001")],
    ["HTTP 401 code 2002", http(401, 2002), decision("pause-campaign", "code 2002")],
    ["HTTP 403 code 2004", http(403, 2004), decision("pause-campaign", "code 2004")],
    ["legacy HTTP 401 code 30000", http(401, 30000), decision("pause-campaign", "code 30000")],
    ["HTTP 400 code 3001", http(400, 3001), decision("fail-batch", "code 3001")],
    ["HTTP 400 code 3002", http(400, 3002), decision("fail-batch", "code 3002")],
    ["HTTP 400 code 3003", http(400, 3003), decision("fail-batch", "code 3003")],
    ["HTTP 400 code 3004 (frequency limit)", http(400, 3004), decision("fail-recipients", "code 3004")],
    ["HTTP 400 code 4001", http(400, 4001), decision("fail-batch", "code 4001")],
    ["HTTP 400 code 5001", http(400, 5001), decision("fail-batch", "code 5001")],
    ["legacy HTTP 400 code 32002", http(400, 32002), decision("fail-batch", "code 32002")],
    ["other 4xx", http(404), decision("fail-batch", "HTTP 404")],
    ["2xx with an undocumented non-zero code", http(200, 1), decision("mark-unknown", "unreadable success response")],
    [
      "unreadable 2xx body",
      new ProviderError({ api: "messages", kind: "invalid-response", status: 200 }),
      decision("mark-unknown", "unreadable success response"),
    ],
    [
      "unreadable body without a status",
      new ProviderError({ api: "messages", kind: "invalid-response" }),
      decision("mark-unknown", "unreadable success response"),
    ],
    ["HTTP 401 without a code", http(401), decision("pause-campaign", "HTTP 401")],
    ["HTTP 403 without a code", http(403), decision("pause-campaign", "HTTP 403")],
    ["an undocumented code without a status", http(undefined, 9999), decision("fail-batch", "http")],
    [
      "request refused before sending",
      new ProviderRequestError("custom_args", "is over 1 KB"),
      decision("fail-batch", "invalid request: custom_args"),
    ],
    ["not a provider error", new Error("boom"), decision("fail-batch", "unexpected error")],
  ])("%s", (_name, error, expected) => {
    expect(classifyProviderError(error, SAFE)).toEqual(expected);
    expect(classifyProviderError(error, UNSAFE)).toEqual(expected);
  });

  // Legacy v1/send answers HTTP 200 with a non-zero code: the code alone decides, whatever the status says.
  it.each([
    [1000, "retry"],
    [2001, "pause-campaign"],
    [2002, "pause-campaign"],
    [2004, "pause-campaign"],
    [30000, "pause-campaign"],
    [3001, "fail-batch"],
    [3002, "fail-batch"],
    [3003, "fail-batch"],
    [3004, "fail-recipients"],
    [4001, "fail-batch"],
    [5001, "fail-batch"],
    [32002, "fail-batch"],
  ] as const)("code %i in an HTTP 200 answer → %s", (code, action) => {
    expect(classifyProviderError(http(200, code), SAFE)).toEqual(decision(action, `code ${code}`));
  });

  it.each([
    [199, decision("fail-batch", "HTTP 199")],
    [200, decision("mark-unknown", "unreadable success response")],
    [299, decision("mark-unknown", "unreadable success response")],
    [300, decision("fail-batch", "HTTP 300")],
    [499, decision("fail-batch", "HTTP 499")],
    [500, decision("retry", "HTTP 500")],
  ])("an undocumented code with HTTP %i: only 2xx may have been sent, only 5xx is retried", (status, expected) => {
    expect(classifyProviderError(http(status, 1), SAFE)).toEqual(expected);
  });

  it.each([
    ["timeout", new ProviderError({ api: "messages", kind: "timeout", requestMayHaveArrived: true })],
    [
      "network",
      new ProviderError({ api: "messages", kind: "network", detail: "UND_ERR_SOCKET", requestMayHaveArrived: true }),
    ],
  ])("a %s after the request left: retried only where resending is safe, otherwise unknown", (kind, error) => {
    expect(classifyProviderError(error, SAFE)).toEqual(decision("retry", kind));
    expect(classifyProviderError(error, UNSAFE)).toEqual(
      decision("mark-unknown", `${kind} after the request was sent`),
    );
  });

  it("a connection refused is always retried: the provider never saw the request", () => {
    const refused = new ProviderError({
      api: "messages",
      kind: "network",
      detail: "ECONNREFUSED",
      requestMayHaveArrived: false,
    });
    expect(classifyProviderError(refused, UNSAFE)).toEqual(decision("retry", "network"));
  });

  it("HTTP 429 retries, backs every worker off, and keeps Retry-After, whatever the body's code", () => {
    const expected = { action: "retry", rateLimited: true, retryAfterMs: 2_000, reason: "HTTP 429" };
    expect(classifyProviderError(http(429, undefined, 2_000), SAFE)).toEqual(expected);
    expect(classifyProviderError(http(429, 3002, 2_000), UNSAFE)).toEqual(expected);
  });
});

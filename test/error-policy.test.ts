import { describe, expect, it } from "vitest";
import { classifyProviderError, type ErrorDecision } from "../src/engagelab/error-policy.ts";
import { ProviderError, ProviderRequestError } from "../src/engagelab/errors.ts";

const http = (status: number | undefined, code?: number, retryAfterMs?: number) =>
  new ProviderError({ api: "messages", kind: "http", status, code, retryAfterMs, providerMessage: "x" });
/** A v1/messages error body with its plan fields (seed 000): `accepted` is its accepted_count. */
const counted = (status: number, code: number | undefined, accepted: number, api: "messages" | "legacy" = "messages") =>
  new ProviderError({
    api,
    kind: "http",
    status,
    code,
    providerMessage: "x",
    counts: { planId: "p1", totalCount: 100, acceptedCount: accepted },
  });
const legacy = (status: number, code?: number) =>
  new ProviderError({ api: "legacy", kind: "http", status, code, providerMessage: "x" });
const custom = (status: number, code?: number) =>
  new ProviderError({ api: "custom", kind: "http", status, code, providerMessage: "x" });

const SAFE = { resendIsSafe: true };
const UNSAFE = { resendIsSafe: false };
/** A decision after which resending cannot duplicate (mayHaveSent false) and only this job backs off. */
const decision = (action: ErrorDecision["action"], reason: string): ErrorDecision => ({
  action,
  rateLimited: false,
  mayHaveSent: false,
  reason,
});

describe("classifyProviderError: one row per documented case", () => {
  it.each([
    ["network error", new ProviderError({ api: "messages", kind: "network" }), "retry"],
    ["timeout", new ProviderError({ api: "messages", kind: "timeout" }), "retry"],
    ["HTTP 500 code 1000 with accepted_count 0", counted(500, 1000, 0), "retry"],
    ["HTTP 502 with accepted_count 0", counted(502, undefined, 0), "retry"],
    ["legacy HTTP 500 (request_id makes it safe)", legacy(500), "retry"],
    ["legacy HTTP 502 without a body", legacy(502), "retry"],
    ["custom HTTP 500 code 1000 (no counts documented)", custom(500, 1000), "retry"],
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
    ["2xx with an undocumented code and accepted_count 0", counted(200, 1, 0), "fail-batch"],
    ["HTTP 200 with code 3003 (business validation)", counted(200, 3003, 0), "fail-batch"],
    ["HTTP 200 with code 2002", counted(200, 2002, 0), "pause-campaign"],
    ["HTTP 200 with code 1000 and accepted_count 0", counted(200, 1000, 0), "retry"],
    ["HTTP 400 code 3004 with accepted_count 0", counted(400, 3004, 0), "fail-recipients"],
    [
      "unreadable 2xx body",
      new ProviderError({ api: "messages", kind: "invalid-response", status: 200 }),
      "mark-unknown",
    ],
    ["HTTP 401 without a code", http(401), "pause-campaign"],
    ["request refused before sending", new ProviderRequestError("custom_args", "is over 1 KB"), "fail-batch"],
    ["not a provider error", new Error("boom"), "fail-batch"],
  ])("%s → %s", (_name, error, action) => {
    expect(classifyProviderError(error, SAFE).action).toBe(action);
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

  // Seed 000: an error body may say `accepted_count > 0`. Whatever its code or status, the batch was partly
  // sent and must never be sent again.
  it.each([
    ["HTTP 500 code 1000", counted(500, 1000, 40)],
    ["HTTP 200 with an undocumented code (the seed's example)", counted(200, 1, 1)],
    ["HTTP 400 code 3004 (frequency limit)", counted(400, 3004, 10)],
    ["HTTP 400 code 3003", counted(400, 3003, 99)],
    ["HTTP 401 code 2002", counted(401, 2002, 5)],
  ])("%s with accepted_count > 0 → partial-acceptance, even where resending is safe", (_name, error) => {
    for (const resendIsSafe of [false, true]) {
      expect(classifyProviderError(error, { resendIsSafe })).toMatchObject({
        action: "partial-acceptance",
        mayHaveSent: true,
      });
    }
  });

  // v1/messages has no idempotency key: a 5xx or code 1000 is retried only when its body says nothing was accepted.
  it.each([
    ["HTTP 500 without a body", http(500)],
    ["HTTP 502 without a body", http(502)],
    ["code 1000 on HTTP 500 without accepted_count", http(500, 1000)],
    ["code 1000 on HTTP 200 without accepted_count", http(200, 1000)],
  ])("v1/messages %s is ambiguous: unknown at most once, retried (marked) at least once", (_name, error) => {
    expect(classifyProviderError(error, { resendIsSafe: false })).toMatchObject({
      action: "mark-unknown",
      mayHaveSent: true,
    });
    expect(classifyProviderError(error, { resendIsSafe: true })).toMatchObject({ action: "retry", mayHaveSent: true });
  });

  it("a v1/messages 5xx that says accepted_count 0 is retried and known not to have sent", () => {
    expect(classifyProviderError(counted(500, 1000, 0), { resendIsSafe: false })).toEqual({
      action: "retry",
      rateLimited: false,
      mayHaveSent: false,
      reason: "code 1000",
    });
  });

  it("a connection refused is always retried: the provider never saw the request", () => {
    const refused = new ProviderError({
      api: "messages",
      kind: "network",
      detail: "ECONNREFUSED",
      requestMayHaveArrived: false,
    });
    expect(classifyProviderError(refused, { resendIsSafe: false })).toMatchObject({
      action: "retry",
      mayHaveSent: false,
    });
  });

  it("HTTP 429 retries, backs every worker off, and keeps Retry-After", () => {
    expect(classifyProviderError(http(429, undefined, 2_000), UNSAFE)).toEqual({
      action: "retry",
      rateLimited: true,
      mayHaveSent: false,
      retryAfterMs: 2_000,
      reason: "HTTP 429",
    });
  });

  it.each([
    ["network error", new ProviderError({ api: "messages", kind: "network" }), decision("retry", "network")],
    ["HTTP 500 code 1000 with accepted_count 0", counted(500, 1000, 0), decision("retry", "code 1000")],
    ["legacy HTTP 502", legacy(502), decision("retry", "HTTP 502")],
    ["HTTP 401 code 2001", http(401, 2001), decision("pause-campaign", "code 2001")],
    ["HTTP 401 without a code", http(401), decision("pause-campaign", "HTTP 401")],
    ["HTTP 403 without a code", http(403), decision("pause-campaign", "HTTP 403")],
    ["HTTP 400 code 3004", http(400, 3004), decision("fail-recipients", "code 3004")],
    ["other 4xx", http(404), decision("fail-batch", "HTTP 404")],
    ["an undocumented code without a status", http(undefined, 9999), decision("fail-batch", "http")],
    [
      "2xx with an undocumented code and accepted_count 0",
      counted(200, 1, 0),
      decision("fail-batch", "HTTP 200 with accepted_count 0"),
    ],
    [
      "an unreadable body without a status",
      new ProviderError({ api: "messages", kind: "invalid-response" }),
      { ...decision("mark-unknown", "unreadable success response"), mayHaveSent: true },
    ],
    [
      "request refused before sending",
      new ProviderRequestError("custom_args", "is over 1 KB"),
      decision("fail-batch", "invalid request: custom_args"),
    ],
    ["not a provider error", new Error("boom"), decision("fail-batch", "unexpected error")],
    // A documented code decides even on a 5xx: only code 1000 or an undocumented one makes it a server failure.
    ["HTTP 500 code 3002", http(500, 3002), decision("fail-batch", "code 3002")],
    [
      "an unreadable body that says accepted_count 0",
      new ProviderError({ api: "messages", kind: "invalid-response", counts: { acceptedCount: 0 } }),
      decision("fail-batch", "HTTP 2xx with accepted_count 0"),
    ],
  ])("the whole decision for %s, whichever the resend setting", (_name, error, expected) => {
    expect(classifyProviderError(error, SAFE)).toEqual(expected);
    expect(classifyProviderError(error, UNSAFE)).toEqual(expected);
  });

  // Legacy v1/send answers HTTP 200 with a non-zero code: the code alone decides, whatever the status says.
  it.each([
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
  ] as const)("legacy code %i in an HTTP 200 answer → %s", (code, action) => {
    expect(classifyProviderError(legacy(200, code), UNSAFE)).toEqual(decision(action, `code ${code}`));
  });

  it.each([
    [199, decision("fail-batch", "HTTP 199")],
    [200, { ...decision("mark-unknown", "unreadable success response"), mayHaveSent: true }],
    [299, { ...decision("mark-unknown", "unreadable success response"), mayHaveSent: true }],
    [300, decision("fail-batch", "HTTP 300")],
    [499, decision("fail-batch", "HTTP 499")],
    [500, { ...decision("mark-unknown", "code 1 without accepted_count"), mayHaveSent: true }],
  ])("v1/messages, an undocumented code with HTTP %i: only 2xx and 5xx may have been sent", (status, expected) => {
    expect(classifyProviderError(http(status, 1), UNSAFE)).toEqual(expected);
  });

  it("a timeout after the request left: the reason says so where it is not retried", () => {
    const error = new ProviderError({ api: "messages", kind: "timeout", requestMayHaveArrived: true });
    expect(classifyProviderError(error, SAFE)).toEqual({ ...decision("retry", "timeout"), mayHaveSent: true });
    expect(classifyProviderError(error, UNSAFE)).toEqual({
      ...decision("mark-unknown", "timeout after the request was sent"),
      mayHaveSent: true,
    });
  });

  it("partial acceptance names its count", () => {
    expect(classifyProviderError(counted(500, 1000, 40), SAFE)).toEqual({
      ...decision("partial-acceptance", "accepted_count 40"),
      mayHaveSent: true,
    });
  });
});

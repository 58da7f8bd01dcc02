// The batch-send rules as a table: claim outcome × provider result or error × attempt × provider → what is
// recorded and what happens next. Pure functions, no I/O: the integration and fault suites prove the wiring.
import { describe, expect, it } from "vitest";
import {
  decideAfterSend,
  decideBeforeClaim,
  decideBeforeSend,
  decideOnClaim,
  decideScheduleTime,
  decideStaleBatch,
  LEGACY_REQUEST_ID_WINDOW_MS,
  nothingLeftToSend,
  OUTAGE_STREAK_LIMIT,
  providerHealthOf,
  type BatchFacts,
  type ProviderHealth,
} from "../src/campaigns/batch-decision.ts";
import { ProviderError, ProviderRequestError } from "../src/engagelab/errors.ts";
import type { BatchSendResult } from "../src/engagelab/provider.ts";
import type { ProviderApi, UnknownOutcomePolicy } from "../src/model/states.ts";
import type { ClaimResult } from "../src/store/batch-repository.ts";

const NOW = Date.parse("2026-12-01T10:00:00Z");
const STALE_AFTER = 15_000;

function batch(provider: ProviderApi, overrides: Partial<BatchFacts> = {}): BatchFacts {
  return {
    id: "b1",
    campaignId: "c1",
    sequence: 3,
    provider,
    onUnknown: "at_most_once",
    attempts: 2,
    firstClaimedAt: new Date(NOW - 60_000),
    lastAttemptAmbiguous: false,
    ...overrides,
  };
}

const http = (status: number, code?: number, extra: Partial<ConstructorParameters<typeof ProviderError>[0]> = {}) =>
  new ProviderError({
    api: "messages",
    kind: "http",
    status,
    code,
    providerMessage: `provider says ${code ?? status}`,
    ...extra,
  });
/** An error body with v1/messages' plan fields (seed 000); `accepted` is its accepted_count of 100. */
const counted = (status: number, code: number | undefined, accepted: number) =>
  http(status, code, { counts: { planId: "plan-9", totalCount: 100, acceptedCount: accepted } });
const timeout = () => new ProviderError({ api: "messages", kind: "timeout", requestMayHaveArrived: true });
const refused = () => new ProviderError({ api: "messages", kind: "network", requestMayHaveArrived: false });
const reset = () => new ProviderError({ api: "messages", kind: "network", requestMayHaveArrived: true });
const unreadable = () => new ProviderError({ api: "messages", kind: "invalid-response", status: 200 });

const FIRST = { isLastAttempt: false };
const LAST = { isLastAttempt: true };

describe("decideOnClaim", () => {
  const notClaimed = (state: string | null, campaignStatus: string | null, claimedAgoMs?: number): ClaimResult => ({
    claimed: false,
    state: state as never,
    campaignStatus,
    claimedAt: claimedAgoMs === undefined ? null : new Date(NOW - claimedAgoMs),
  });
  it.each([
    ["claimed", { claimed: true, batch: {} } as unknown as ClaimResult, { kind: "send" }],
    [
      "fresh claim of a running campaign",
      notClaimed("sending", "running", 1_000),
      { kind: "busy", delayMs: STALE_AFTER - 1_000 },
    ],
    [
      "stale claim of a running campaign",
      notClaimed("sending", "running", STALE_AFTER),
      { kind: "take-over", staleClaimedAt: new Date(NOW - STALE_AFTER) },
    ],
    [
      "in-flight batch of a running campaign without a claim time",
      notClaimed("sending", "running"),
      { kind: "skip", reason: "batch is sending, campaign is running" },
    ],
    [
      "already sent",
      notClaimed("sent", "running", 100_000),
      { kind: "skip", reason: "batch is sent, campaign is running" },
    ],
    [
      "paused campaign",
      notClaimed("queued", "paused"),
      { kind: "skip", reason: "batch is queued, campaign is paused" },
    ],
    ["missing batch", notClaimed(null, null), { kind: "skip", reason: "batch is missing, campaign is missing" }],
    [
      "queued batch of a cancelled campaign",
      notClaimed("queued", "cancelled"),
      {
        kind: "skip",
        reason: "batch is queued, campaign is cancelled",
        settleCancelled: { staleClaimedAt: undefined },
      },
    ],
    [
      "sent batch of a cancelled campaign (claimed long ago)",
      notClaimed("sent", "cancelled", 100_000),
      {
        kind: "skip",
        reason: "batch is sent, campaign is cancelled",
        settleCancelled: { staleClaimedAt: new Date(NOW - 100_000) },
      },
    ],
    [
      "fresh in-flight batch of a cancelled campaign",
      notClaimed("sending", "cancelled", 1_000),
      { kind: "skip", reason: "batch is sending, campaign is cancelled" },
    ],
    [
      "in-flight batch of a cancelled campaign one millisecond short of stale",
      notClaimed("sending", "cancelled", STALE_AFTER - 1),
      { kind: "skip", reason: "batch is sending, campaign is cancelled" },
    ],
    [
      "stale in-flight batch of a cancelled campaign",
      notClaimed("sending", "cancelled", STALE_AFTER),
      {
        kind: "skip",
        reason: "batch is sending, campaign is cancelled",
        settleCancelled: { staleClaimedAt: new Date(NOW - STALE_AFTER) },
      },
    ],
    [
      "in-flight batch of a cancelled campaign without a claim time",
      notClaimed("sending", "cancelled"),
      { kind: "skip", reason: "batch is sending, campaign is cancelled" },
    ],
  ])("%s", (_name, claim, expected) => {
    expect(decideOnClaim(claim, NOW, STALE_AFTER)).toEqual(expected);
  });

  it("a cancelled campaign's batch with a live worker on it is left to that worker", () => {
    expect(decideOnClaim(notClaimed("sending", "cancelled", 1_000), NOW, STALE_AFTER)).not.toHaveProperty(
      "settleCancelled",
    );
  });

  it("a take-over names the exact stale claim it replaces (compare-and-set)", () => {
    const claim = notClaimed("sending", "running", STALE_AFTER + 5);
    expect(decideOnClaim(claim, NOW, STALE_AFTER)).toEqual({
      kind: "take-over",
      staleClaimedAt: claim.claimed ? undefined : claim.claimedAt,
    });
  });
});

describe("decideScheduleTime (v1/messages schedule_time, never early)", () => {
  const T = Math.floor(NOW / 1000);
  it.each<[string, number | undefined, number, ReturnType<typeof decideScheduleTime>]>([
    ["not provider-scheduled", undefined, 60, { kind: "send" }],
    ["an hour ahead: the time goes with the request", T + 3600, 60, { kind: "send", scheduleTime: T + 3600 }],
    ["exactly 3 minutes + margin ahead", T + 240, 60, { kind: "send", scheduleTime: T + 240 }],
    [
      "one second short of 3 minutes + margin: waits until its time",
      T + 239,
      60,
      { kind: "wait", untilMs: (T + 239) * 1000 },
    ],
    ["exactly 3 minutes ahead (inside the margin): waits", T + 180, 60, { kind: "wait", untilMs: (T + 180) * 1000 }],
    ["2 minutes ahead: waits", T + 120, 60, { kind: "wait", untilMs: (T + 120) * 1000 }],
    ["margin 0, exactly 3 minutes ahead", T + 180, 0, { kind: "send", scheduleTime: T + 180 }],
    ["its time has come: sent at once, without schedule_time", T, 60, { kind: "send" }],
    ["its time has passed (after a pause): sent at once", T - 600, 60, { kind: "send" }],
  ])("%s", (_name, scheduleTime, margin, expected) => {
    expect(decideScheduleTime(scheduleTime, NOW, margin)).toEqual(expected);
  });

  it("a wait ends with a send without schedule_time", () => {
    const wait = decideScheduleTime(T + 120, NOW, 60);
    expect(wait.kind).toBe("wait");
    if (wait.kind === "wait") expect(decideScheduleTime(T + 120, wait.untilMs, 60)).toEqual({ kind: "send" });
  });
});

describe("decideStaleBatch (a dead worker's batch)", () => {
  it.each<[string, ProviderApi, UnknownOutcomePolicy, number, "resend" | "record"]>([
    ["legacy inside the request_id window", "legacy", "at_most_once", 60_000, "resend"],
    ["legacy past the request_id window", "legacy", "at_most_once", LEGACY_REQUEST_ID_WINDOW_MS, "record"],
    ["messages at most once", "messages", "at_most_once", 60_000, "record"],
    ["messages at least once", "messages", "resend", 60_000, "resend"],
    ["custom at most once", "custom", "at_most_once", 60_000, "record"],
    ["custom at least once, long ago", "custom", "resend", LEGACY_REQUEST_ID_WINDOW_MS * 2, "resend"],
  ])("%s (%s, %s)", (_name, provider, onUnknown, firstClaimedAgo, kind) => {
    const decision = decideStaleBatch(
      batch(provider, { onUnknown, firstClaimedAt: new Date(NOW - firstClaimedAgo) }),
      NOW,
    );
    expect(decision.kind).toBe(kind);
    if (decision.kind === "record") {
      expect(decision.outcome).toMatchObject({
        state: "unknown",
        rest: {
          state: "unknown",
          message: expect.stringMatching(/^worker stopped during the provider request/) as unknown,
        },
        batchId: "b1",
        campaignId: "c1",
        sequence: 3,
        accepted: [],
        failed: [],
      });
    }
  });
});

describe("decideBeforeSend", () => {
  it.each<[string, ProviderApi, boolean, number, "send" | "record"]>([
    ["legacy, last attempt answered", "legacy", false, LEGACY_REQUEST_ID_WINDOW_MS + 1, "send"],
    ["legacy, unanswered, inside the window", "legacy", true, LEGACY_REQUEST_ID_WINDOW_MS - 1, "send"],
    ["legacy, unanswered, window passed", "legacy", true, LEGACY_REQUEST_ID_WINDOW_MS, "record"],
    ["messages, unanswered, long ago", "messages", true, LEGACY_REQUEST_ID_WINDOW_MS * 2, "send"],
  ])("%s (%s)", (_name, provider, ambiguous, ago, kind) => {
    const decision = decideBeforeSend(
      batch(provider, { lastAttemptAmbiguous: ambiguous, firstClaimedAt: new Date(NOW - ago) }),
      NOW,
    );
    expect(decision.kind).toBe(kind);
    if (decision.kind === "record") {
      expect(decision.outcome).toMatchObject({ state: "unknown", accepted: [], failed: [] });
      expect(decision.outcome.errorMessage).toMatch(/request_id window has passed; not re-sent$/);
    }
  });

  it("a batch with nothing left pending is recorded sent", () => {
    expect(nothingLeftToSend(batch("custom"))).toMatchObject({
      kind: "record",
      outcome: { state: "sent", rest: { state: "accepted" } },
    });
  });
});

describe("decideAfterSend: provider errors", () => {
  type Row = [
    string,
    ProviderApi,
    UnknownOutcomePolicy,
    () => unknown,
    { isLastAttempt: boolean },
    Record<string, unknown>,
  ];
  const rows: Row[] = [
    // Transient and provably unsent (the body says accepted_count 0): retried while attempts remain.
    [
      "HTTP 500 with accepted_count 0, first attempt",
      "messages",
      "at_most_once",
      () => counted(500, undefined, 0),
      FIRST,
      { kind: "retry", rateLimited: false, ambiguous: false, unexpected: false },
    ],
    [
      "code 1000 with accepted_count 0, first attempt",
      "messages",
      "at_most_once",
      () => counted(500, 1000, 0),
      FIRST,
      { kind: "retry", code: 1000, ambiguous: false },
    ],
    [
      "legacy HTTP 500 (request_id)",
      "legacy",
      "at_most_once",
      () => http(500, undefined, { api: "legacy" }),
      FIRST,
      { kind: "retry", ambiguous: false },
    ],
    // Out of attempts on a failure that sent nothing: the provider is down, so the campaign pauses (resumable).
    [
      "HTTP 500 with accepted_count 0, last attempt",
      "messages",
      "at_most_once",
      () => counted(500, undefined, 0),
      LAST,
      {
        kind: "pause",
        unexpected: false,
        reason: expect.stringMatching(
          /^provider unreachable since \S+ on messages \(provider says 500; 2 attempts\); resumes by itself/,
        ),
      },
    ],
    [
      "code 1000, last attempt",
      "messages",
      "at_most_once",
      () => counted(200, 1000, 0),
      LAST,
      {
        kind: "pause",
        code: 1000,
        reason: `provider unreachable since ${new Date(NOW - 60_000).toISOString()} on messages (code 1000: provider says 1000; 2 attempts); resumes by itself once it answers, or \`smsblast resume\``,
      },
    ],
    [
      "legacy HTTP 500, last attempt",
      "legacy",
      "at_most_once",
      () => http(500, undefined, { api: "legacy" }),
      LAST,
      { kind: "pause", reason: expect.stringMatching(/^provider unreachable since /) },
    ],
    [
      "connection refused, last attempt",
      "messages",
      "at_most_once",
      refused,
      LAST,
      { kind: "pause", reason: expect.stringMatching(/^provider unreachable since /) },
    ],
    // 429: every worker backs off; never spends the batch, even on the last attempt.
    [
      "HTTP 429 with Retry-After",
      "messages",
      "at_most_once",
      () => http(429, undefined, { retryAfterMs: 2_000 }),
      LAST,
      { kind: "retry", rateLimited: true, retryAfterMs: 2_000 },
    ],
    ["HTTP 429 on legacy", "legacy", "at_most_once", () => http(429), FIRST, { kind: "retry", rateLimited: true }],
    // Ambiguous transport failures: the provider may have sent it.
    [
      "timeout, messages, at most once",
      "messages",
      "at_most_once",
      timeout,
      FIRST,
      {
        kind: "record",
        unexpected: false,
        outcome: { state: "unknown", accepted: [], failed: [], rest: { state: "unknown" } },
      },
    ],
    [
      "reset, custom, at most once",
      "custom",
      "at_most_once",
      reset,
      FIRST,
      { kind: "record", outcome: { state: "unknown" } },
    ],
    ["timeout, messages, at least once", "messages", "resend", timeout, FIRST, { kind: "retry", ambiguous: true }],
    ["timeout, legacy (request_id)", "legacy", "at_most_once", timeout, FIRST, { kind: "retry", ambiguous: true }],
    [
      "timeout, legacy, last attempt",
      "legacy",
      "at_most_once",
      timeout,
      LAST,
      { kind: "record", outcome: { state: "unknown" } },
    ],
    ["unreadable 2xx", "messages", "resend", unreadable, FIRST, { kind: "record", outcome: { state: "unknown" } }],
    // Account refused: the campaign pauses, the batch waits for resume.
    [
      "code 2001",
      "messages",
      "at_most_once",
      () => http(401, 2001),
      FIRST,
      {
        kind: "pause",
        code: 2001,
        unexpected: false,
        reason:
          "provider refused the account (code 2001) on the current SMS platform (v1/messages; key pair ENGAGELAB_MESSAGES_KEY/ENGAGELAB_MESSAGES_SECRET): provider says 2001",
      },
    ],
    [
      "HTTP 401 with an undocumented code",
      "messages",
      "at_most_once",
      () => http(401, 9999),
      FIRST,
      {
        kind: "pause",
        code: 9999,
        reason:
          "provider refused the account (code 9999) on the current SMS platform (v1/messages; key pair ENGAGELAB_MESSAGES_KEY/ENGAGELAB_MESSAGES_SECRET): provider says 9999",
      },
    ],
    ["legacy 30000", "legacy", "at_most_once", () => http(200, 30000), LAST, { kind: "pause", code: 30000 }],
    [
      "HTTP 403 without a code",
      "custom",
      "at_most_once",
      () => http(403),
      FIRST,
      {
        kind: "pause",
        reason:
          "provider refused the account (HTTP 403) on the current SMS platform (v1/messages; key pair ENGAGELAB_MESSAGES_KEY/ENGAGELAB_MESSAGES_SECRET): provider says 403",
      },
    ],
    // The request itself is wrong: the batch fails with the provider's words, no retry.
    [
      "code 3002",
      "messages",
      "at_most_once",
      () => http(400, 3002),
      FIRST,
      {
        kind: "record",
        unexpected: false,
        outcome: {
          state: "failed",
          errorCode: 3002,
          errorMessage: "provider says 3002",
          accepted: [],
          failed: [],
          rest: { state: "failed", code: 3002 },
        },
      },
    ],
    // An answer is not an ambiguity: the provider refused the request it received, so nothing was sent.
    [
      "code 3002 answered to a request that arrived",
      "messages",
      "at_most_once",
      () => http(400, 3002, { requestMayHaveArrived: true }),
      LAST,
      { kind: "record", outcome: { state: "failed", errorCode: 3002 } },
    ],
    [
      "code 4001",
      "messages",
      "resend",
      () => http(400, 4001),
      FIRST,
      { kind: "record", outcome: { state: "failed", errorCode: 4001 } },
    ],
    [
      "code 3004 (frequency limit)",
      "messages",
      "at_most_once",
      () => http(400, 3004),
      FIRST,
      { kind: "record", outcome: { state: "failed", errorCode: 3004 } },
    ],
    [
      "refused before sending",
      "legacy",
      "at_most_once",
      () => new ProviderRequestError("custom_args", "is over 1 KB"),
      FIRST,
      { kind: "record", outcome: { state: "failed", errorMessage: "custom_args: is over 1 KB" } },
    ],
    [
      "a bug, not a provider answer",
      "messages",
      "at_most_once",
      () => new TypeError("boom"),
      FIRST,
      {
        kind: "record",
        unexpected: true,
        outcome: { state: "failed", errorMessage: "unexpected error while sending" },
      },
    ],
  ];
  it.each(rows)("%s (%s, %s)", (_name, provider, onUnknown, error, attempt, expected) => {
    expect(decideAfterSend(batch(provider, { onUnknown }), { error: error() }, attempt)).toMatchObject(expected);
  });

  it("a retry after an earlier unanswered attempt stays marked ambiguous", () => {
    const decision = decideAfterSend(batch("legacy", { lastAttemptAmbiguous: true }), { error: http(500) }, FIRST);
    expect(decision).toMatchObject({ kind: "retry", ambiguous: true });
  });
});

// Point 3 of issue 12: what an error body says counts. Each row: the provider's answer → what is recorded for
// the batch and its recipients, and whether anything may go out again.
describe("decideAfterSend: error bodies", () => {
  type Row = [
    string,
    ProviderApi,
    UnknownOutcomePolicy,
    () => unknown,
    { isLastAttempt: boolean },
    Record<string, unknown>,
  ];
  const partial = (accepted: number, code: number | null) => ({
    kind: "record",
    unexpected: false,
    outcome: {
      state: "partial",
      planId: "plan-9",
      totalCount: 100,
      acceptedCount: accepted,
      errorCode: code,
      // expect.stringMatching is typed `any`: `unknown` keeps it out of the object's inferred type.
      errorMessage: expect.stringMatching(
        new RegExp(`^partial: ${accepted} of 100 accepted; provider said: `),
      ) as unknown,
      accepted: [],
      failed: [],
      rest: { state: "unknown", code, message: `partial: ${accepted} of 100 accepted` },
    },
  });
  const rows: Row[] = [
    // accepted_count > 0 on any error: partial, every recipient unknown, never retried or re-sent.
    [
      "HTTP 500 code 1000, 40 accepted",
      "messages",
      "at_most_once",
      () => counted(500, 1000, 40),
      FIRST,
      partial(40, 1000),
    ],
    [
      "the same at least once (--on-unknown resend)",
      "messages",
      "resend",
      () => counted(500, 1000, 40),
      FIRST,
      partial(40, 1000),
    ],
    ["the same on the last attempt", "messages", "resend", () => counted(500, 1000, 40), LAST, partial(40, 1000)],
    [
      "HTTP 200 with an undocumented code, 1 accepted",
      "messages",
      "at_most_once",
      () => counted(200, 1, 1),
      FIRST,
      partial(1, 1),
    ],
    [
      "HTTP 400 code 3003, 70 accepted",
      "messages",
      "at_most_once",
      () => counted(400, 3003, 70),
      FIRST,
      partial(70, 3003),
    ],
    [
      "HTTP 400 code 3004, 10 accepted",
      "messages",
      "at_most_once",
      () => counted(400, 3004, 10),
      FIRST,
      partial(10, 3004),
    ],
    // HTTP 200 with an error code and nothing accepted: the code decides.
    [
      "HTTP 200 code 3003, 0 accepted",
      "messages",
      "at_most_once",
      () => counted(200, 3003, 0),
      FIRST,
      { kind: "record", outcome: { state: "failed", errorCode: 3003, rest: { state: "failed", code: 3003 } } },
    ],
    [
      "HTTP 200 code 2002, 0 accepted",
      "messages",
      "at_most_once",
      () => counted(200, 2002, 0),
      FIRST,
      { kind: "pause", code: 2002 },
    ],
    [
      "HTTP 200 with an undocumented code, 0 accepted",
      "messages",
      "at_most_once",
      () => counted(200, 1, 0),
      FIRST,
      { kind: "record", outcome: { state: "failed", errorCode: 1, rest: { state: "failed" } } },
    ],
    [
      "HTTP 200 with an undocumented code, no counts",
      "messages",
      "at_most_once",
      () => http(200, 1),
      FIRST,
      { kind: "record", outcome: { state: "unknown", rest: { state: "unknown" } } },
    ],
    // Account errors pause the campaign; the batch waits for resume.
    [
      "HTTP 401 code 2002",
      "messages",
      "at_most_once",
      () => counted(401, 2002, 0),
      FIRST,
      { kind: "pause", code: 2002 },
    ],
    [
      "HTTP 403 code 2004",
      "messages",
      "at_most_once",
      () => counted(403, 2004, 0),
      FIRST,
      { kind: "pause", code: 2004 },
    ],
    // v1/messages 5xx or 1000 without accepted_count: ambiguous (no idempotency key).
    [
      "HTTP 500 without a JSON body, at most once",
      "messages",
      "at_most_once",
      () => http(500),
      FIRST,
      { kind: "record", outcome: { state: "unknown", rest: { state: "unknown" } } },
    ],
    [
      "code 1000 without accepted_count, at most once",
      "messages",
      "at_most_once",
      () => http(500, 1000),
      FIRST,
      { kind: "record", outcome: { state: "unknown", errorCode: 1000 } },
    ],
    [
      "HTTP 500 without a JSON body, at least once",
      "messages",
      "resend",
      () => http(500),
      FIRST,
      { kind: "retry", ambiguous: true },
    ],
    [
      "HTTP 500 without a JSON body, at least once, last attempt",
      "messages",
      "resend",
      () => http(500),
      LAST,
      { kind: "record", outcome: { state: "unknown" } },
    ],
    // Connection refused never reached the provider: retried, then a pause (issue 13), never unknown.
    ["connection refused", "messages", "at_most_once", refused, FIRST, { kind: "retry", ambiguous: false }],
    // 3004 with nothing accepted: the batch's recipients fail with the code; the campaign is not paused.
    [
      "HTTP 400 code 3004, 0 accepted",
      "messages",
      "at_most_once",
      () => counted(400, 3004, 0),
      FIRST,
      { kind: "record", outcome: { state: "failed", errorCode: 3004, rest: { state: "failed", code: 3004 } } },
    ],
  ];
  it.each(rows)("%s (%s, %s)", (_name, provider, onUnknown, error, attempt, expected) => {
    expect(decideAfterSend(batch(provider, { onUnknown }), { error: error() }, attempt)).toMatchObject(expected);
  });

  it("a single-recipient batch stopped by a request that reported an acceptance retries only the untried", () => {
    const ambiguous = [{ phone: "+6581000002", message: "accepted, then an error" }];
    const sent = {
      result: {
        totalCount: 3,
        acceptedCount: 0,
        accepted: [],
        failed: [],
        ambiguous,
        unsettled: { error: counted(500, 1000, 1), count: 2 },
      },
    };
    expect(decideAfterSend(batch("custom"), sent, FIRST)).toMatchObject({
      kind: "retry",
      progress: { unknown: ambiguous },
    });
  });
});

describe("decideAfterSend: provider results", () => {
  const result = (overrides: Partial<BatchSendResult>): BatchSendResult => ({
    totalCount: 3,
    acceptedCount: 3,
    accepted: [],
    failed: [],
    ...overrides,
  });

  it("all accepted → sent, the rest of the batch accepted, ids kept", () => {
    const decision = decideAfterSend(
      batch("messages"),
      { result: result({ planId: "p1", messageId: "m1", taskId: "t1" }) },
      FIRST,
    );
    expect(decision).toEqual({
      kind: "record",
      // expect.objectContaining is typed `any`: `unknown` keeps it out of the object's inferred type.
      outcome: expect.objectContaining({
        state: "sent",
        planId: "p1",
        messageId: "m1",
        taskId: "t1",
        totalCount: 3,
        acceptedCount: 3,
        errorMessage: null,
        rest: { state: "accepted" },
      }) as unknown,
    });
  });

  it("legacy failed items → partial, each refused number recorded with its reason", () => {
    const failed = [{ phone: "+6581000001", message: "invalid" }];
    const decision = decideAfterSend(batch("legacy"), { result: result({ acceptedCount: 2, failed }) }, FIRST);
    expect(decision).toMatchObject({ kind: "record", outcome: { state: "partial", failed, errorMessage: null } });
  });

  it("any refused number makes the batch partial, even when the counts add up", () => {
    const failed = [{ phone: "+6581000001", code: 41031, message: "invalid" }];
    const decision = decideAfterSend(batch("legacy"), { result: result({ failed }) }, FIRST);
    expect(decision).toMatchObject({ kind: "record", outcome: { state: "partial", failed, errorMessage: null } });
  });

  it("accepted_count below total_count → partial, every recipient unknown, plan recorded", () => {
    const decision = decideAfterSend(
      batch("messages"),
      { result: result({ planId: "p7", totalCount: 300, acceptedCount: 267, unaccountedFor: 300 }) },
      FIRST,
    );
    expect(decision).toMatchObject({
      kind: "record",
      outcome: {
        state: "partial",
        planId: "p7",
        totalCount: 300,
        acceptedCount: 267,
        errorCode: null,
        errorMessage: "partial: 267 of 300 accepted",
        accepted: [],
        rest: { state: "unknown", message: "partial: 267 of 300 accepted" },
      },
    });
  });

  it("the same at least once: a partial acceptance is never re-sent", () => {
    const decision = decideAfterSend(
      batch("messages", { onUnknown: "resend" }),
      { result: result({ totalCount: 300, acceptedCount: 267, unaccountedFor: 300 }) },
      LAST,
    );
    expect(decision).toMatchObject({ kind: "record", outcome: { state: "partial", rest: { state: "unknown" } } });
  });

  it("accepted_count 0 on a success body → failed (nothing was sent)", () => {
    const decision = decideAfterSend(
      batch("messages"),
      { result: result({ acceptedCount: 0, unaccountedFor: 3 }) },
      FIRST,
    );
    expect(decision).toMatchObject({
      kind: "record",
      outcome: { state: "failed", rest: { state: "failed", message: "provider accepted 0 of 3 numbers" } },
    });
  });

  it("legacy numbers named refused and an unaccounted rest: named ones kept, the rest unknown", () => {
    const accepted = [{ phone: "+6581000001", smsId: "x$+6581000001" }];
    const failed = [{ phone: "+6581000002", message: "invalid" }];
    const decision = decideAfterSend(
      batch("legacy"),
      { result: result({ totalCount: 4, acceptedCount: 2, accepted, failed, unaccountedFor: 2 }) },
      FIRST,
    );
    expect(decision).toMatchObject({
      kind: "record",
      outcome: { state: "partial", accepted, failed, rest: { state: "unknown", message: "partial: 2 of 4 accepted" } },
    });
  });

  it("a single-recipient batch stopped by a retryable error keeps what was settled and retries only the untried", () => {
    const accepted = [{ phone: "+6581000001", messageId: "m1" }];
    const ambiguous = [{ phone: "+6581000002", message: "timeout" }];
    const sent = { result: result({ accepted, ambiguous, unsettled: { error: http(500), count: 1 } }) };
    expect(decideAfterSend(batch("custom"), sent, FIRST)).toMatchObject({
      kind: "retry",
      ambiguous: false,
      progress: { accepted, failed: [], unknown: ambiguous },
    });
    // At least once: the unanswered request is not settled as unknown; it stays pending and is sent again.
    expect(decideAfterSend(batch("custom", { onUnknown: "resend" }), sent, FIRST)).toMatchObject({
      kind: "retry",
      progress: { unknown: [] },
    });
    // Out of attempts: the campaign pauses; the untried recipients stay pending for resume (never sent, so not unknown).
    expect(decideAfterSend(batch("custom"), sent, LAST)).toMatchObject({ kind: "pause", progress: { accepted } });
  });

  it("a single-recipient batch stopped with nothing ambiguous settles no recipient unknown", () => {
    const sent = { result: result({ accepted: [], unsettled: { error: http(500), count: 3 } }) };
    expect(decideAfterSend(batch("custom"), sent, FIRST)).toMatchObject({
      kind: "retry",
      progress: { accepted: [], failed: [], unknown: [] },
    });
  });

  it("a single-recipient batch stopped by a timeout retries the recipients it never tried, even at most once", () => {
    // The timed-out request is the one in `ambiguous`; the rest were never sent, so resending them is safe.
    const ambiguous = [{ phone: "+6581000002", message: "timeout" }];
    const sent = { result: result({ ambiguous, unsettled: { error: timeout(), count: 2 } }) };
    expect(decideAfterSend(batch("custom"), sent, FIRST)).toMatchObject({
      kind: "retry",
      ambiguous: false,
      progress: { unknown: ambiguous },
    });
    // Out of attempts: paused with the untried recipients pending, not recorded unknown.
    expect(decideAfterSend(batch("custom"), sent, LAST)).toMatchObject({
      kind: "pause",
      progress: { unknown: ambiguous },
    });
  });

  it("a single-recipient batch stopped by a refused request fails the untried recipients, not retries them", () => {
    const sent = {
      result: result({ accepted: [{ phone: "+6581000001" }], unsettled: { error: http(400, 3002), count: 2 } }),
    };
    expect(decideAfterSend(batch("custom"), sent, FIRST)).toMatchObject({
      kind: "record",
      outcome: { state: "failed", errorCode: 3002 },
      progress: { accepted: [{ phone: "+6581000001" }] },
    });
  });

  it("a partial acceptance without a total says so", () => {
    const error = http(500, 1000, { counts: { acceptedCount: 3 } });
    expect(decideAfterSend(batch("messages"), { error }, FIRST)).toMatchObject({
      kind: "record",
      outcome: { state: "partial", rest: { state: "unknown", message: "partial: 3 of ? accepted" } },
    });
  });

  it("a single-recipient batch stopped by an account error pauses after recording what was settled", () => {
    const sent = {
      result: result({ accepted: [{ phone: "+6581000001" }], unsettled: { error: http(401, 2001), count: 2 } }),
    };
    expect(decideAfterSend(batch("custom"), sent, FIRST)).toMatchObject({
      kind: "pause",
      code: 2001,
      progress: { accepted: [{ phone: "+6581000001" }] },
    });
  });
});

describe("providerHealthOf (the per-platform outage streak)", () => {
  const ok: BatchSendResult = { totalCount: 1, acceptedCount: 1, accepted: [{ phone: "+6581000000" }], failed: [] };
  const rows: Array<[string, { result: BatchSendResult } | { error: unknown }, ProviderHealth]> = [
    ["a result", { result: ok }, "up"],
    ["a refusal of the request (400 3003)", { error: http(400, 3003) }, "up"],
    ["credentials refused (401)", { error: http(401, 2001) }, "up"],
    ["rate limited (429)", { error: http(429) }, "up"],
    ["frequency limit (3004)", { error: http(400, 3004) }, "up"],
    ["HTTP 500 with accepted_count 0", { error: counted(500, undefined, 0) }, "down"],
    ["code 1000", { error: counted(500, 1000, 0) }, "down"],
    ["HTTP 502 without accepted_count (ambiguous)", { error: http(502) }, "down"],
    ["a 5xx after accepting some", { error: counted(500, 1000, 40) }, "down"],
    ["connection refused", { error: refused() }, "down"],
    ["connection reset", { error: reset() }, "down"],
    ["timeout", { error: timeout() }, "down"],
    ["an unreadable 2xx", { error: unreadable() }, "down"],
    ["our own invalid request", { error: new ProviderRequestError("custom_args", "too long") }, "unclear"],
    ["a bug of ours", { error: new TypeError("x is undefined") }, "unclear"],
    [
      "a single-recipient batch stopped by a reset",
      { result: { ...ok, unsettled: { error: reset(), count: 3 } } },
      "down",
    ],
    [
      "a single-recipient batch stopped by a refused account",
      { result: { ...ok, unsettled: { error: http(401, 2001), count: 3 } } },
      "up",
    ],
  ];
  it.each(rows)("%s → %s", (_name, sent, expected) => {
    expect(providerHealthOf(sent)).toBe(expected);
  });
});

describe("decideBeforeClaim", () => {
  const since = new Date("2026-12-01T09:58:00.000Z");
  it("claims below the limit", () => {
    for (let failures = 0; failures < OUTAGE_STREAK_LIMIT; failures++)
      expect(decideBeforeClaim({ failures, since, lastError: "HTTP 502" }, "messages")).toEqual({ kind: "claim" });
  });
  it.each([OUTAGE_STREAK_LIMIT, OUTAGE_STREAK_LIMIT + 5])(
    "pauses at %i failures in a row, naming the platform, the time and the last error",
    (failures) => {
      expect(decideBeforeClaim({ failures, since, lastError: "HTTP 502" }, "legacy")).toEqual({
        kind: "pause",
        reason:
          `provider unreachable since 2026-12-01T09:58:00.000Z on legacy (${failures} failures in a row, last: HTTP 502); ` +
          "resumes by itself once it answers, or `smsblast resume`",
      });
    },
  );
  it("takes its limit as a parameter", () => {
    expect(decideBeforeClaim({ failures: 1, since, lastError: null }, "custom", 1)).toMatchObject({ kind: "pause" });
  });
});

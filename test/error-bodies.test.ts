// Issue 12, points 3 and 7: what a v1/messages error body says counts. Each case runs a real campaign
// against the sandbox over HTTP and ends in the recorded state, with the sandbox's ledger showing that
// nothing was sent twice.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { getCampaignStatus, type CampaignStatusReport } from "../src/campaigns/campaign-status.ts";
import type { UnknownOutcomePolicy } from "../src/model/states.ts";
import type { FaultDetail, FaultKind } from "../src/sandbox/server.ts";
import { csvOf, createTestEnv, singaporeNumbers, waitFor, type TestEnv } from "./helpers/test-env.ts";
import { launchCampaign, sandboxLedger, startWorker, waitForCampaignEnd } from "./helpers/campaign-runner.ts";

describe("v1/messages error bodies (issue 12.3, 12.7)", () => {
  let env: TestEnv;
  let nextNumber = 0;
  beforeAll(async () => {
    env = await createTestEnv("errorbodies", { env: { BATCH_SIZE: "100" } });
  });
  afterAll(async () => {
    await env?.cleanup();
  });
  beforeEach(async () => {
    await fetch(`${env.sandbox.url}/_sandbox/reset`, { method: "POST" });
  });

  /** A fresh campaign of `count` numbers (batches of 100), with the given faults queued in the sandbox first. */
  async function run(
    count: number,
    faults: Array<[number, FaultKind, FaultDetail?]>,
    options: {
      onUnknown?: UnknownOutcomePolicy;
      until?: "end" | "paused";
      batchSize?: number;
      beforeLaunch?: (numbers: string[]) => void;
    } = {},
  ) {
    const numbers = singaporeNumbers(count, 50_000 + nextNumber);
    nextNumber += count;
    options.beforeLaunch?.(numbers);
    const file = await env.writeCsv(
      `c${nextNumber}.csv`,
      csvOf(
        ["phone"],
        numbers.map((n) => [n]),
      ),
    );
    for (const [times, kind, detail] of faults) env.sandbox.failNext(times, kind, detail);
    const campaign = await launchCampaign(env, {
      file,
      onUnknown: options.onUnknown ?? "at_most_once",
      batchSize: options.batchSize ?? 100,
    });
    const worker = await startWorker(env);
    let report: CampaignStatusReport;
    try {
      report =
        options.until === "paused"
          ? await waitFor(async () => {
              const status = await getCampaignStatus(env.db, campaign.campaignId);
              return status.status === "paused" ? status : undefined;
            })
          : await waitForCampaignEnd(env, campaign.campaignId);
    } finally {
      await worker.stop();
    }
    const batches = await env.db.prisma.batch.findMany({
      where: { campaignId: campaign.campaignId },
      orderBy: { sequence: "asc" },
    });
    const recipients = await env.db.prisma.recipient.findMany({ where: { campaignId: campaign.campaignId } });
    const ledger = await sandboxLedger(env, "messages");
    const requests = env.sandbox.ledger.requestLog({ api: "messages" });
    // Nothing sent twice, whatever the case.
    expect(Math.max(0, ...Object.values(ledger))).toBeLessThanOrEqual(1);
    return { campaign, report, batches, recipients, ledger, requests, numbers };
  }

  function planIdOf(response: string | undefined): string | undefined {
    return /"plan_id":"([^"]+)"/.exec(response ?? "")?.[1];
  }

  it.each<[string, UnknownOutcomePolicy]>([
    ["at most once", "at_most_once"],
    ["even with --on-unknown resend", "resend"],
  ])(
    "an error with accepted_count > 0 is a partial acceptance: plan and count recorded, all unknown, never re-sent (%s)",
    async (_name, onUnknown) => {
      const { report, batches, recipients, ledger, requests, numbers } = await run(
        100,
        [[1, "partial-accept", { accepted: 40, status: 500, code: 1000 }]],
        { onUnknown },
      );
      expect(report).toMatchObject({ status: "completed", recipients: { unknown: 100, accepted: 0, pending: 0 } });
      expect(batches).toHaveLength(1);
      expect(batches[0]).toMatchObject({
        state: "partial",
        attempts: 1,
        totalCount: 100,
        acceptedCount: 40,
        errorCode: 1000,
        planId: planIdOf(requests[0]?.response),
      });
      expect(batches[0]!.planId).toEqual(expect.any(String));
      expect(new Set(recipients.map((r) => `${r.state}: ${r.failureMessage}`))).toEqual(
        new Set(["unknown: partial: 40 of 100 accepted"]),
      );
      expect(requests).toHaveLength(1); // never retried
      expect(Object.keys(ledger).sort()).toEqual(numbers.slice(0, 40).sort());
    },
  );

  it("a success whose accepted_count is below total_count leaves no recipient `accepted`: all unknown", async () => {
    // Seen: 300 reported accepted, 267 received. The sandbox refuses 33 numbers of one 300-number request.
    const { report, batches, recipients, ledger, requests } = await run(300, [], {
      batchSize: 300,
      beforeLaunch: (numbers) => env.sandbox.refuseNumbers(numbers.filter((_, i) => i % 9 === 4).slice(0, 33)),
    });
    expect(report).toMatchObject({ status: "completed", recipients: { unknown: 300, accepted: 0 } });
    expect(batches[0]).toMatchObject({
      state: "partial",
      totalCount: 300,
      acceptedCount: 267,
      errorMessage: "partial: 267 of 300 accepted",
      planId: planIdOf(requests[0]?.response),
    });
    expect(recipients.every((r) => r.state === "unknown" && r.failureMessage === "partial: 267 of 300 accepted")).toBe(
      true,
    );
    expect(Object.keys(ledger)).toHaveLength(267);
    expect(requests).toHaveLength(1);
  });

  it("HTTP 200 with an error code is an error: 3003 fails the batch with the provider's message", async () => {
    const { report, batches, recipients, ledger, requests } = await run(100, [
      [1, "reject", { status: 200, code: 3003, message: "signature not approved" }],
    ]);
    expect(report).toMatchObject({ status: "failed", recipients: { failed: 100 } });
    expect(batches[0]).toMatchObject({ state: "failed", errorCode: 3003, errorMessage: "signature not approved" });
    expect(recipients.every((r) => r.failureCode === 3003)).toBe(true);
    expect(requests).toHaveLength(1);
    expect(ledger).toEqual({});
  });

  it("HTTP 400 code 3003 fails the batch; the campaign's other batch is sent", async () => {
    const { report, batches, ledger } = await run(200, [
      [1, "reject", { status: 400, code: 3003, message: "content refused" }],
    ]);
    expect(report).toMatchObject({ status: "completed", recipients: { failed: 100, accepted: 100 } });
    expect(batches.map((b) => b.state).sort()).toEqual(["failed", "sent"]);
    expect(Object.keys(ledger)).toHaveLength(100);
  });

  it.each([
    ["2002 (token expired)", 401, 2002],
    ["2004 with HTTP 403", 403, 2004],
  ])("%s pauses the campaign before anything is sent; the batch waits for resume", async (_name, status, code) => {
    const { report, batches, ledger } = await run(100, [[1, "reject", { status, code, message: "key disabled" }]], {
      until: "paused",
    });
    // The reason starts with the code (the progress bar shows it) and ends with the provider's words.
    expect(report.statusReason).toMatch(
      new RegExp(`^provider refused the account \\(code ${code}\\).*: key disabled$`),
    );
    expect(report.recipients).toMatchObject({ pending: 100 });
    expect(batches[0]).toMatchObject({ state: "queued", errorCode: code });
    expect(ledger).toEqual({});
  });

  it("a 500 after the provider sent (no JSON accepted_count) is ambiguous: unknown, never re-sent", async () => {
    const { report, batches, ledger, requests, numbers } = await run(100, [[1, "error-after-send"]]);
    expect(report).toMatchObject({ status: "completed", recipients: { unknown: 100, accepted: 0 } });
    expect(batches[0]).toMatchObject({ state: "unknown", attempts: 1 });
    expect(requests).toHaveLength(1);
    expect(Object.keys(ledger).sort()).toEqual([...numbers].sort()); // it was sent: exactly once
  });

  it("a 500 whose body says accepted_count 0 is retried, and every number is sent once", async () => {
    const { report, batches, ledger, requests } = await run(100, [[2, "error"]]);
    expect(report).toMatchObject({ status: "completed", recipients: { accepted: 100 } });
    expect(batches[0]).toMatchObject({ state: "sent", attempts: 3 });
    expect(requests.map((r) => r.outcome)).toEqual(["error", "error", "sent"]);
    expect(Object.keys(ledger)).toHaveLength(100);
  });

  // Point 7: the per-target frequency limit.
  it("3004 with accepted_count 0 fails that batch's recipients with the code; the campaign goes on", async () => {
    const { report, batches, recipients, ledger } = await run(200, [
      [1, "reject", { status: 400, code: 3004, message: "frequency limit" }],
    ]);
    expect(report).toMatchObject({ status: "completed", recipients: { failed: 100, accepted: 100 } });
    expect(batches.find((b) => b.state === "failed")).toMatchObject({ errorCode: 3004, attempts: 1 });
    const failed = recipients.filter((r) => r.state === "failed");
    expect(failed).toHaveLength(100);
    expect(failed.every((r) => r.failureCode === 3004 && r.failureMessage === "frequency limit")).toBe(true);
    expect(Object.keys(ledger)).toHaveLength(100);
  });

  it("3004 with accepted_count > 0 is a partial acceptance", async () => {
    const { batches, recipients, ledger } = await run(100, [
      [1, "partial-accept", { status: 400, code: 3004, accepted: 60 }],
    ]);
    expect(batches[0]).toMatchObject({ state: "partial", acceptedCount: 60, errorCode: 3004 });
    expect(recipients.every((r) => r.state === "unknown" && r.failureMessage === "partial: 60 of 100 accepted")).toBe(
      true,
    );
    expect(Object.keys(ledger)).toHaveLength(60);
  });
});

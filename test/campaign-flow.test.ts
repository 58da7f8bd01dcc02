import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { csvOf, createTestEnv, singaporeNumbers, type TestEnv } from "./helpers/test-env.ts";
import { launchCampaign, sandboxLedger, startWorker, waitForCampaignEnd } from "./helpers/campaign-runner.ts";

describe("a whole campaign: CSV → Postgres → BullMQ → sandbox provider → Postgres", () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv("flow");
  });
  afterAll(async () => {
    await env?.cleanup();
  });
  beforeEach(async () => {
    await fetch(`${env.sandbox.url}/_sandbox/reset`, { method: "POST" });
  });

  it("sends 2,500 recipients in batches of 1000, 1000 and 500, each number exactly once", async () => {
    const numbers = singaporeNumbers(2_500);
    const file = await env.writeCsv(
      "2500.csv",
      csvOf(
        ["name", "phone"],
        numbers.map((n, i) => [`user${i}`, n]),
      ),
    );
    const campaign = await launchCampaign(env, { file });
    expect(campaign.recipientCount).toBe(2_500);

    const batches = await env.db.prisma.batch.findMany({
      where: { campaignId: campaign.campaignId },
      orderBy: { sequence: "asc" },
    });
    expect(batches.map((b) => b.size)).toEqual([1000, 1000, 500]);
    // File order is kept: the first batch holds the first 1000 rows.
    const firstBatchRows = await env.db.prisma.recipient.aggregate({
      where: { campaignId: campaign.campaignId, batchSequence: 0 },
      _min: { rowNumber: true },
      _max: { rowNumber: true },
    });
    // Spreadsheet row numbers: the header is row 1.
    expect(firstBatchRows._min.rowNumber).toBe(2);
    expect(firstBatchRows._max.rowNumber).toBe(1001);

    const worker = await startWorker(env);
    try {
      const report = await waitForCampaignEnd(env, campaign.campaignId);
      expect(report.status).toBe("completed");
      expect(report.recipients).toMatchObject({ total: 2_500, accepted: 2_500, failed: 0, pending: 0, unknown: 0 });
    } finally {
      await worker.stop();
    }

    const ledger = await sandboxLedger(env);
    expect(Object.keys(ledger).sort()).toEqual([...numbers].sort());
    expect(Object.values(ledger).every((times) => times === 1)).toBe(true);

    const sent = await env.db.prisma.batch.findMany({ where: { campaignId: campaign.campaignId } });
    expect(
      sent.every(
        (b) => b.state === "sent" && b.planId && b.totalCount === b.size && b.acceptedCount === b.size && b.sentAt,
      ),
    ).toBe(true);
    const counters = await env.db.prisma.campaign.findUniqueOrThrow({ where: { id: campaign.campaignId } });
    expect(counters).toMatchObject({ acceptedCount: 2_500, failedCount: 0, batchCount: 3 });
    expect(counters.finishedAt).not.toBeNull();
  });

  it("retries a batch whose first attempt gets HTTP 500, and no number is received twice", async () => {
    const numbers = singaporeNumbers(300, 10_000);
    const file = await env.writeCsv(
      "retry.csv",
      csvOf(
        ["phone"],
        numbers.map((n) => [n]),
      ),
    );
    env.sandbox.failNext(1, "error");
    const campaign = await launchCampaign(env, { file });
    const worker = await startWorker(env);
    try {
      const report = await waitForCampaignEnd(env, campaign.campaignId);
      expect(report.recipients.accepted).toBe(300);
    } finally {
      await worker.stop();
    }
    const [batch] = await env.db.prisma.batch.findMany({ where: { campaignId: campaign.campaignId } });
    expect(batch).toMatchObject({ state: "sent", attempts: 2 });
    const stats = (await (await fetch(`${env.sandbox.url}/_sandbox/stats`)).json()) as { errors: number };
    expect(stats.errors).toBe(1);
    const ledger = await sandboxLedger(env);
    expect(Object.keys(ledger)).toHaveLength(300);
    expect(Math.max(...Object.values(ledger))).toBe(1);
  });

  it("de-duplicates numbers after normalisation and records rejects with their row", async () => {
    const file = await env.writeCsv(
      "messy.csv",
      csvOf(
        ["name", "phone"],
        [
          ["a", "+65 8123 4567"],
          ["b", "+6581234567"],
          ["c", "not a number"],
          ["d", ""],
          ["e", "006581234568"],
          ["f", "+65 8123-4569"],
        ],
      ),
    );
    const campaign = await launchCampaign(env, { file });
    expect(campaign).toMatchObject({ totalRows: 6, recipientCount: 3, duplicateCount: 1, rejectedCount: 2 });
    const rejects = await env.db.prisma.reject.findMany({
      where: { campaignId: campaign.campaignId },
      orderBy: { rowNumber: "asc" },
    });
    expect(rejects.map((r) => [r.rowNumber, r.rawValue, r.reason])).toEqual([
      [3, "+6581234567", "duplicate of row 2"],
      [4, "not a number", "phone number contains letters or symbols"],
      [5, "", "empty phone number"],
    ]);
    const phones = await env.db.prisma.recipient.findMany({
      where: { campaignId: campaign.campaignId },
      orderBy: { rowNumber: "asc" },
    });
    expect(phones.map((p) => [p.rowNumber, p.phone])).toEqual([
      [2, "+6581234567"],
      [6, "+6581234568"],
      [7, "+6581234569"],
    ]);
  });
});

import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ProviderRequestError } from "../src/engagelab/errors.ts";
import { getCampaignStatus } from "../src/campaigns/campaign-status.ts";
import { csvOf, createTestEnv, singaporeNumbers, type TestEnv } from "./helpers/test-env.ts";
import { launchCampaign, sandboxLedger, startWorker, waitForCampaignEnd } from "./helpers/campaign-runner.ts";

describe("v1/messages semantics and the error policy against the sandbox", () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv("messages", {
      env: { BATCH_SIZE: "100", SEND_RATE_LIMIT: "50" },
      sandbox: { retryAfterSeconds: 1 },
    });
  });
  afterAll(async () => {
    await env?.cleanup();
  });
  beforeEach(async () => {
    await fetch(`${env.sandbox.url}/_sandbox/reset`, { method: "POST" });
    env.sandbox.setOptions({ throttleRate: 0, errorRate: 0 });
  });

  async function runCampaign(file: string, input: Parameters<typeof launchCampaign>[1] = { file }) {
    const campaign = await launchCampaign(env, { ...input, file });
    const worker = await startWorker(env);
    try {
      return { campaign, report: await waitForCampaignEnd(env, campaign.campaignId, 60_000) };
    } finally {
      await worker.stop();
    }
  }

  it.each([
    ["missing-template", 4001, "failed"],
    ["fail-delivery", 5001, "failed"],
    ["freq-otp", 3004, "failed"],
  ])(
    "template %s: code %i fails the batch with the provider's message, and the campaign ends",
    async (templateId, code) => {
      const file = await env.writeCsv(
        `${templateId}.csv`,
        csvOf(
          ["phone"],
          singaporeNumbers(150, 1_000).map((n) => [n]),
        ),
      );
      const { campaign, report } = await runCampaign(file, { file, templateId });
      expect(report.status).toBe("failed"); // nothing was accepted, but nothing is stuck either
      expect(report.recipients).toMatchObject({ failed: 150, pending: 0 });
      const batches = await env.db.prisma.batch.findMany({ where: { campaignId: campaign.campaignId } });
      expect(
        batches.every((b) => b.state === "failed" && b.errorCode === code && b.attempts === 1 && b.errorMessage),
      ).toBe(true);
      const recipient = await env.db.prisma.recipient.findFirstOrThrow({ where: { campaignId: campaign.campaignId } });
      expect(recipient.failureCode).toBe(code);
    },
  );

  it("a 429 storm with Retry-After ends with every recipient sent exactly once", async () => {
    env.sandbox.setOptions({ throttleRate: 0.5 });
    const numbers = singaporeNumbers(600, 5_000);
    const file = await env.writeCsv(
      "storm.csv",
      csvOf(
        ["phone"],
        numbers.map((n) => [n]),
      ),
    );
    const { report } = await runCampaign(file);
    expect(report.recipients).toMatchObject({ accepted: 600, failed: 0, unknown: 0 });
    const stats = (await (await fetch(`${env.sandbox.url}/_sandbox/stats`)).json()) as { throttled: number };
    expect(stats.throttled).toBeGreaterThan(0);
    const ledger = await sandboxLedger(env);
    expect(Object.keys(ledger)).toHaveLength(600);
    expect(Math.max(...Object.values(ledger))).toBe(1);
  });

  it("marks a batch left in `sending` by a dead worker `unknown` and does not re-send it (at most once)", async () => {
    const file = await env.writeCsv(
      "unknown.csv",
      csvOf(
        ["phone"],
        singaporeNumbers(250, 9_000).map((n) => [n]),
      ),
    );
    const campaign = await launchCampaign(env, { file });
    const longAgo = new Date(Date.now() - 60_000);
    await env.db.prisma.batch.updateMany({
      where: { campaignId: campaign.campaignId, sequence: 1 },
      data: { state: "sending", attempts: 1, claimedAt: longAgo, firstClaimedAt: longAgo },
    });
    const worker = await startWorker(env);
    try {
      const report = await waitForCampaignEnd(env, campaign.campaignId);
      expect(report).toMatchObject({ status: "completed", recipients: { accepted: 150, unknown: 100, pending: 0 } });
    } finally {
      await worker.stop();
    }
    const status = await getCampaignStatus(env.db, campaign.campaignId);
    expect(status.batches).toMatchObject({ sent: 2, unknown: 1 });
    expect(Object.keys(await sandboxLedger(env))).toHaveLength(150);
  });

  it("a response lost after the provider accepted the batch makes it `unknown`, never re-sent", async () => {
    const file = await env.writeCsv(
      "lost.csv",
      csvOf(
        ["phone"],
        singaporeNumbers(100, 15_000).map((n) => [n]),
      ),
    );
    env.sandbox.failNext(1, "lose-response");
    const { campaign, report } = await runCampaign(file);
    expect(report).toMatchObject({ status: "completed", recipients: { unknown: 100, accepted: 0 } });
    const [batch] = await env.db.prisma.batch.findMany({ where: { campaignId: campaign.campaignId } });
    expect(batch).toMatchObject({ state: "unknown", attempts: 1 });
    expect(batch!.errorMessage).toMatch(/UND_ERR_SOCKET|other side closed|socket/i);
    const ledger = await sandboxLedger(env);
    expect(Object.keys(ledger)).toHaveLength(100); // the provider did send it: exactly once
    expect(Math.max(...Object.values(ledger))).toBe(1);
  });

  it("re-sends such a batch when the campaign chose --on-unknown resend (at least once)", async () => {
    const file = await env.writeCsv(
      "resend.csv",
      csvOf(
        ["phone"],
        singaporeNumbers(120, 12_000).map((n) => [n]),
      ),
    );
    const campaign = await launchCampaign(env, { file, onUnknown: "resend" });
    const longAgo = new Date(Date.now() - 60_000);
    await env.db.prisma.batch.updateMany({
      where: { campaignId: campaign.campaignId },
      data: { state: "sending", claimedAt: longAgo, firstClaimedAt: longAgo },
    });
    const worker = await startWorker(env);
    try {
      const report = await waitForCampaignEnd(env, campaign.campaignId);
      expect(report.recipients).toMatchObject({ accepted: 120, unknown: 0 });
    } finally {
      await worker.stop();
    }
    // Never sent before (the stale claim was staged), so re-sending it reaches every number exactly once.
    const ledger = await sandboxLedger(env);
    expect(Object.keys(ledger)).toHaveLength(120);
    expect(Math.max(...Object.values(ledger))).toBe(1);
  });

  it("--on-unknown resend re-sends a batch whose answer was lost: the ledger shows it twice (at least once)", async () => {
    const numbers = singaporeNumbers(80, 13_000);
    const file = await env.writeCsv(
      "resend-lost.csv",
      csvOf(
        ["phone"],
        numbers.map((n) => [n]),
      ),
    );
    env.sandbox.failNext(1, "lose-response");
    const { campaign, report } = await runCampaign(file, { file, onUnknown: "resend" });
    expect(report).toMatchObject({ status: "completed", recipients: { accepted: 80, unknown: 0, failed: 0 } });
    const ledger = await sandboxLedger(env);
    expect(Object.keys(ledger).sort()).toEqual([...numbers].sort());
    expect(new Set(Object.values(ledger))).toEqual(new Set([2])); // the lost send and the re-send, nothing more
    const sends = env.sandbox.ledger.requestLog({ api: "messages" });
    expect(sends.map((r) => r.outcome)).toEqual(["lose-response", "sent"]);
    expect(sends.every((r) => r.batchId === sends[0]!.batchId)).toBe(true);
    const [batch] = await env.db.prisma.batch.findMany({ where: { campaignId: campaign.campaignId } });
    expect(batch).toMatchObject({ state: "sent", attempts: 2 });
  });

  it("sends schedule_time, stores plan_name's campaign ids as custom_args, and keeps the 64-bit task_id exact", async () => {
    const file = await env.writeCsv("sched.csv", csvOf(["phone"], [["+6581230000"]]));
    const at = Math.floor(Date.now() / 1000) + 3600;
    const { campaign } = await runCampaign(file, { file, name: "sched campaign", sendOptions: { scheduleTime: at } });
    const [batch] = await env.db.prisma.batch.findMany({ where: { campaignId: campaign.campaignId } });
    const [request, ...others] = env.sandbox.ledger.requestLog({ api: "messages" });
    expect(others).toEqual([]);
    // The request body as the sandbox received it.
    expect(request!.targets).toEqual(["+6581230000"]);
    expect(request!.fields).toMatchObject({
      schedule_time: at,
      custom_args: { campaign_id: campaign.campaignId, batch_id: batch!.id },
    });
    expect(String(request!.fields!.plan_name)).toContain("sched campaign");
    // The exact task_id the sandbox issued (a bare integer above 2^53 in its answer), digit for digit.
    const issued = /"task_id":(\d+)/.exec(request!.response ?? "")?.[1];
    expect(issued).toMatch(/^\d{17,}$/);
    expect(BigInt(issued!)).toBeGreaterThan(BigInt(Number.MAX_SAFE_INTEGER));
    expect(batch!.taskId).toBe(issued);
    expect(batch!.planId).toBe(/"plan_id":"([^"]+)"/.exec(request!.response!)?.[1]);
  });

  it("refuses legacy-only options on the messages API instead of ignoring them", async () => {
    const file = await env.writeCsv("legacy-opts.csv", csvOf(["phone"], [["+6581230002"]]));
    await expect(launchCampaign(env, { file, sendOptions: { from: "ACME" } })).rejects.toThrow(
      /from: is an option of the legacy v1\/send API only/,
    );
  });

  it("refuses a schedule_time in the past or more than 30 days ahead, before storing anything", async () => {
    const file = await env.writeCsv("sched-bad.csv", csvOf(["phone"], [["+6581230001"]]));
    const now = Math.floor(Date.now() / 1000);
    const before = await env.db.prisma.campaign.count();
    await expect(launchCampaign(env, { file, sendOptions: { scheduleTime: now - 60 } })).rejects.toThrow(
      /schedule_time: .* is in the past/,
    );
    await expect(launchCampaign(env, { file, sendOptions: { scheduleTime: now + 31 * 86400 } })).rejects.toThrow(
      ProviderRequestError,
    );
    await expect(
      launchCampaign(env, { file, provider: "legacy", templateId: "1", sendOptions: { scheduleTime: now + 3600 } }),
    ).rejects.toThrow(/only on the messages API/);
    expect(await env.db.prisma.campaign.count()).toBe(before);
    // Less than 3 minutes ahead is accepted: such batches wait in smsblast (test/provider-schedule.test.ts).
    await expect(
      launchCampaign(env, { file, sendOptions: { scheduleTime: now + 60 }, dryRun: true }),
    ).resolves.toMatchObject({ dryRun: true });
  });
});

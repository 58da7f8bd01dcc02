import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { cancelCampaign, pauseCampaign, resumeCampaign } from "../src/campaigns/campaign-control.ts";
import { CAMPAIGN_TRANSITIONS, canTransition, InvalidTransitionError } from "../src/model/campaign-state.ts";
import { launchCsvCampaign } from "../src/campaigns/launch-campaign.ts";
import { createRedisConnection } from "../src/queue/redis.ts";
import { completeCampaignIfDone } from "../src/store/batch-repository.ts";
import { campaignQueueOf, createSendQueue, type CampaignQueue } from "../src/queue/send-queue.ts";
import { createTestEnv, csvOf, singaporeNumbers, waitFor, type TestEnv } from "./helpers/test-env.ts";
import {
  launchCampaign,
  sandboxLedger,
  sandboxQuiet,
  startWorker,
  waitForCampaignEnd,
} from "./helpers/campaign-runner.ts";

describe("campaign state machine", () => {
  // The README's diagram, written out: every (from, to) pair of the 7 statuses is checked, allowed or not.
  const STATUSES = ["draft", "scheduled", "running", "paused", "completed", "failed", "cancelled"] as const;
  const ALLOWED = new Set([
    "draft>scheduled",
    "draft>running",
    "draft>cancelled",
    "scheduled>running",
    "scheduled>paused",
    "scheduled>cancelled",
    "running>paused",
    "running>completed",
    "running>failed",
    "running>cancelled",
    "paused>running",
    "paused>scheduled",
    "paused>cancelled",
  ]);

  it("allows exactly the documented transitions: all 49 (from, to) pairs", () => {
    expect(Object.keys(CAMPAIGN_TRANSITIONS).sort()).toEqual([...STATUSES].sort());
    const actual: string[] = [];
    for (const from of STATUSES) for (const to of STATUSES) if (canTransition(from, to)) actual.push(`${from}>${to}`);
    expect(actual.sort()).toEqual([...ALLOWED].sort());
    for (const final of ["completed", "failed", "cancelled"] as const) expect(CAMPAIGN_TRANSITIONS[final]).toEqual([]);
    expect(new InvalidTransitionError("c1", "completed", "paused").message).toBe(
      "Campaign c1 is completed; it cannot become paused (completed is final)",
    );
    expect(new InvalidTransitionError("c1", "draft", "paused").message).toBe(
      "Campaign c1 is draft; it cannot become paused (from draft it can become: scheduled, running, cancelled)",
    );
  });
});

describe("campaign lifecycle against real workers", () => {
  let env: TestEnv;
  let connection: ReturnType<typeof createRedisConnection>;
  let queue: ReturnType<typeof createSendQueue>;
  let campaignQueue: CampaignQueue;

  beforeAll(async () => {
    env = await createTestEnv("lifecycle", {
      env: { BATCH_SIZE: "100", SEND_CONCURRENCY: "1" },
      sandbox: { latencyMs: 60 },
    });
    connection = createRedisConnection(env.config.redisUrl, "producer");
    queue = createSendQueue(connection, { prefix: env.config.queuePrefix, attempts: 3, backoffMs: 50 });
    campaignQueue = campaignQueueOf(queue);
  });
  afterAll(async () => {
    await queue?.close();
    connection?.disconnect();
    await env?.cleanup();
  });
  beforeEach(async () => {
    await fetch(`${env.sandbox.url}/_sandbox/reset`, { method: "POST" });
  });

  const sentBatches = async (campaignId: string) => env.db.prisma.batch.count({ where: { campaignId, state: "sent" } });

  it("refuses invalid transitions with a clear message", async () => {
    const file = await env.writeCsv(
      "t.csv",
      csvOf(
        ["phone"],
        singaporeNumbers(5).map((n) => [n]),
      ),
    );
    const campaign = await launchCampaign(env, { file });
    const worker = await startWorker(env);
    try {
      await waitForCampaignEnd(env, campaign.campaignId);
    } finally {
      await worker.stop();
    }
    await expect(pauseCampaign(env.db, campaign.campaignId)).rejects.toThrow(/is completed; it cannot become paused/);
    await expect(resumeCampaign(env.db, campaignQueue, campaign.campaignId)).rejects.toThrow(InvalidTransitionError);
    await expect(cancelCampaign(env.db, campaign.campaignId)).rejects.toThrow(/completed is final/);
    await expect(pauseCampaign(env.db, "00000000-0000-0000-0000-000000000000")).rejects.toThrow(/No campaign/);
  });

  it("a delayed campaign stays scheduled and sends nothing until its time", async () => {
    const numbers = singaporeNumbers(150, 1_000);
    const file = await env.writeCsv(
      "later.csv",
      csvOf(
        ["phone"],
        numbers.map((n) => [n]),
      ),
    );
    const startAt = new Date(Date.now() + 2_500);
    const worker = await startWorker(env);
    try {
      const campaign = await launchCsvCampaign(
        { db: env.db, log: env.log, enqueue: campaignQueue.enqueue, scheduleStart: campaignQueue.scheduleStart },
        {
          file,
          name: "later",
          templateId: "1",
          params: { order: "1" },
          phoneColumn: "phone",
          provider: "messages",
          onUnknown: "at_most_once",
          batchSize: 100,
          startAt,
        },
      );
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      const early = await env.db.prisma.campaign.findUniqueOrThrow({ where: { id: campaign.campaignId } });
      expect(early).toMatchObject({ status: "scheduled", startedAt: null });
      expect(await sandboxLedger(env)).toEqual({});
      expect(env.sandbox.ledger.requestLog(), "requests before the start time").toEqual([]);
      expect(await env.db.prisma.batch.count({ where: { campaignId: campaign.campaignId, state: "pending" } })).toBe(2);

      const report = await waitForCampaignEnd(env, campaign.campaignId);
      expect(report.recipients.accepted).toBe(150);
      const done = await env.db.prisma.campaign.findUniqueOrThrow({ where: { id: campaign.campaignId } });
      expect(done.startedAt!.getTime()).toBeGreaterThanOrEqual(startAt.getTime());
      // By the sandbox's clock too: the first request arrived no earlier than the start time.
      expect(Math.min(...env.sandbox.ledger.requestLog().map((r) => r.receivedAt))).toBeGreaterThanOrEqual(
        startAt.getTime(),
      );
    } finally {
      await worker.stop();
    }
  });

  it("pause mid-campaign stops sending within one batch; resume finishes it, each number once", async () => {
    const numbers = singaporeNumbers(2_000, 10_000);
    const file = await env.writeCsv(
      "pause.csv",
      csvOf(
        ["phone"],
        numbers.map((n) => [n]),
      ),
    );
    const campaign = await launchCampaign(env, { file, batchSize: 100 });
    const worker = await startWorker(env);
    try {
      await waitFor(async () => ((await sentBatches(campaign.campaignId)) >= 3 ? true : undefined), 20_000, 10);
      await pauseCampaign(env.db, campaign.campaignId);
      const pausedAt = Date.now();
      const atPause = await sentBatches(campaign.campaignId);
      // The stated period: 1 s after the pause. By the sandbox's request timestamps, at most the one batch
      // claimed before the pause (SEND_CONCURRENCY 1) arrives in its first 300 ms, and nothing after that.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const late = env.sandbox.ledger.requestLog().filter((r) => r.receivedAt > pausedAt);
      expect(late.length, "requests after the pause").toBeLessThanOrEqual(1);
      expect(
        late.filter((r) => r.receivedAt > pausedAt + 300),
        "requests 300-1000 ms after the pause",
      ).toEqual([]);
      await sandboxQuiet(env);
      const afterPause = await sentBatches(campaign.campaignId);
      expect(afterPause - atPause).toBeLessThanOrEqual(1); // at most the batch that was in flight
      expect(Object.keys(await sandboxLedger(env)).length).toBe(afterPause * 100);
      expect(env.sandbox.ledger.requestLog()).toHaveLength(afterPause);

      await resumeCampaign(env.db, campaignQueue, campaign.campaignId);
      const report = await waitForCampaignEnd(env, campaign.campaignId);
      expect(report).toMatchObject({ status: "completed", recipients: { accepted: 2_000 } });
    } finally {
      await worker.stop();
    }
    const ledger = await sandboxLedger(env);
    expect(Object.keys(ledger)).toHaveLength(2_000);
    expect(Math.max(...Object.values(ledger))).toBe(1);
  });

  it("a send that fails after the cancel leaves its batch cancelled, never pending", async () => {
    const file = await env.writeCsv(
      "cancel-fail.csv",
      csvOf(
        ["phone"],
        singaporeNumbers(50, 30_000).map((n) => [n]),
      ),
    );
    env.sandbox.setOptions({ latencyMs: 700 });
    env.sandbox.failNext(1, "error");
    const campaign = await launchCampaign(env, { file });
    const worker = await startWorker(env);
    try {
      await waitFor(
        async () =>
          (await env.db.prisma.batch.count({ where: { campaignId: campaign.campaignId, state: "sending" } }))
            ? true
            : undefined,
        10_000,
        10,
      );
      await cancelCampaign(env.db, campaign.campaignId);
      await waitFor(
        async () =>
          (await env.db.prisma.batch.count({ where: { campaignId: campaign.campaignId, state: "cancelled" } }))
            ? true
            : undefined,
        10_000,
      );
    } finally {
      await worker.stop();
      env.sandbox.setOptions({ latencyMs: 60 });
    }
    const recipients = await env.db.prisma.recipient.groupBy({
      by: ["state"],
      where: { campaignId: campaign.campaignId },
      _count: { _all: true },
    });
    expect(recipients.map((r) => [r.state, r._count._all])).toEqual([["cancelled", 50]]);
    expect(await sandboxLedger(env)).toEqual({});
  });

  it("cancel leaves nothing sent after it, and the unsent recipients end cancelled", async () => {
    const numbers = singaporeNumbers(2_000, 20_000);
    const file = await env.writeCsv(
      "cancel.csv",
      csvOf(
        ["phone"],
        numbers.map((n) => [n]),
      ),
    );
    const campaign = await launchCampaign(env, { file, batchSize: 100 });
    const worker = await startWorker(env);
    let result;
    try {
      await waitFor(async () => ((await sentBatches(campaign.campaignId)) >= 2 ? true : undefined), 20_000, 10);
      result = await cancelCampaign(env.db, campaign.campaignId);
      await new Promise((resolve) => setTimeout(resolve, 800));
    } finally {
      await worker.stop();
    }
    const sent = await sentBatches(campaign.campaignId);
    expect(result.cancelledBatches + sent).toBe(20); // the batch in flight at the cancel finished as sent
    expect(result.inFlightBatches).toBeLessThanOrEqual(1);
    const { rows: counts } = await env.db.pool.query<{ state: string; n: number }>(
      `SELECT state, count(*)::int AS n FROM recipient_outcomes WHERE campaign_id = $1 GROUP BY state`,
      [campaign.campaignId],
    );
    const byState = Object.fromEntries(counts.map((c) => [c.state, c.n]));
    expect(byState.cancelled).toBe(result.cancelledRecipients);
    expect(byState.accepted).toBe(sent * 100);
    expect((byState.accepted ?? 0) + (byState.cancelled ?? 0)).toBe(2_000);
    expect(Object.keys(await sandboxLedger(env))).toHaveLength(sent * 100); // nothing after the cancel but the batch in flight
    const final = await env.db.prisma.campaign.findUniqueOrThrow({ where: { id: campaign.campaignId } });
    expect(final.status).toBe("cancelled");
    expect(final.finishedAt).not.toBeNull();
  });
  it("the last batches finishing at once complete the campaign once, with every counter right", async () => {
    const file = await env.writeCsv(
      "together.csv",
      csvOf(
        ["phone"],
        singaporeNumbers(600, 40_000).map((n) => [n]),
      ),
    );
    const campaign = await launchCampaign(env, { file, batchSize: 100 });
    // All six batches recorded accepted (no worker ran), then six workers ask "done?" at the same moment:
    // the first counts and completes, the others wait for its row and find it completed.
    await env.db.pool.query(
      `UPDATE batches SET state = 'sent', sent_at = now(), accepted_count = size WHERE campaign_id = $1`,
      [campaign.campaignId],
    );
    const answers = await Promise.all(
      Array.from({ length: 6 }, () => completeCampaignIfDone(env.db.pool, campaign.campaignId)),
    );
    expect(answers.map((a) => [a.status, a.finished])).toEqual(Array.from({ length: 6 }, () => ["completed", true]));
    const final = await env.db.prisma.campaign.findUniqueOrThrow({ where: { id: campaign.campaignId } });
    expect([final.status, final.acceptedCount, final.failedCount, final.unknownCount]).toEqual([
      "completed",
      600,
      0,
      0,
    ]);
    expect(final.finishedAt).not.toBeNull();
    // Asked again later, it changes nothing.
    expect(await completeCampaignIfDone(env.db.pool, campaign.campaignId)).toMatchObject({ status: "completed" });
    const again = await env.db.prisma.campaign.findUniqueOrThrow({ where: { id: campaign.campaignId } });
    expect(again.updatedAt).toEqual(final.updatedAt);
  });
});

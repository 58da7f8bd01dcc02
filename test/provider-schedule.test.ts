// Issue 12.4: schedule_time is never early. A provider-scheduled batch with less than 3 minutes plus
// PROVIDER_SCHEDULE_MARGIN_S to go waits in smsblast (a delayed job) and goes without schedule_time at its
// time. The worker and the sandbox share a clock the test moves, so nobody waits minutes.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createRedisConnection } from "../src/queue/redis.ts";
import { createSendQueue } from "../src/queue/send-queue.ts";
import { startSendWorker } from "../src/runtime/send-worker-runtime.ts";
import { csvOf, createTestEnv, singaporeNumbers, waitFor, type TestEnv } from "./helpers/test-env.ts";
import { launchCampaign, sandboxLedger, waitForCampaignEnd } from "./helpers/campaign-runner.ts";

describe("provider scheduling never sends early (issue 12.4)", () => {
  let env: TestEnv;
  let offsetMs = 0;
  const clock = () => Date.now() + offsetMs;
  beforeAll(async () => {
    env = await createTestEnv("providerschedule", { env: { BATCH_SIZE: "100" }, sandbox: { clock } });
  });
  afterAll(async () => {
    await env?.cleanup();
  });
  beforeEach(async () => {
    offsetMs = 0;
    await fetch(`${env.sandbox.url}/_sandbox/reset`, { method: "POST" });
  });

  async function withQueue<T>(use: (queue: ReturnType<typeof createSendQueue>) => Promise<T>): Promise<T> {
    const connection = createRedisConnection(env.config.redisUrl, "producer");
    const queue = createSendQueue(connection, {
      prefix: env.config.queuePrefix,
      attempts: env.config.send.attempts,
      backoffMs: env.config.send.backoffMs,
    });
    try {
      return await use(queue);
    } finally {
      await queue.close();
      connection.disconnect();
    }
  }

  it("a campaign launched 2 minutes ahead sends nothing before its time, then goes without schedule_time", async () => {
    const numbers = singaporeNumbers(250, 700_000);
    const file = await env.writeCsv(
      "two-minutes.csv",
      csvOf(
        ["phone"],
        numbers.map((n) => [n]),
      ),
    );
    const dueSeconds = Math.floor(clock() / 1000) + 120;
    const campaign = await launchCampaign(env, { file, sendOptions: { scheduleTime: dueSeconds } });
    expect(campaign.batchIds).toHaveLength(3);
    const worker = await startSendWorker(env.config, env.log, { clock });
    try {
      // Every batch was taken, found too close to its time, and put back as a delayed job.
      await withQueue((queue) =>
        waitFor(async () => {
          const states = await Promise.all(campaign.batchIds.map(async (id) => (await queue.getJob(id))?.getState()));
          return states.every((state) => state === "delayed") ? true : undefined;
        }),
      );
      const held = await env.db.prisma.batch.findMany({ where: { campaignId: campaign.campaignId } });
      expect(held.every((b) => b.state === "queued" && b.attempts === 0 && b.firstClaimedAt === null)).toBe(true);
      expect(env.sandbox.ledger.requestLog()).toEqual([]);

      // 1 minute on: still early. The jobs run again (promoted by hand, as if their delay were shorter)
      // and are held again; nothing is sent.
      offsetMs = 60_000;
      await withQueue(async (queue) => {
        for (const id of campaign.batchIds) await (await queue.getJob(id))?.promote();
        await waitFor(async () => {
          const states = await Promise.all(campaign.batchIds.map(async (id) => (await queue.getJob(id))?.getState()));
          return states.every((state) => state === "delayed") ? true : undefined;
        });
      });
      expect(env.sandbox.ledger.requestLog()).toEqual([]);

      // Its time: the delayed jobs run and send at once, without schedule_time.
      offsetMs = 121_000;
      await withQueue(async (queue) => {
        for (const id of campaign.batchIds) await (await queue.getJob(id))?.promote();
      });
      const report = await waitForCampaignEnd(env, campaign.campaignId);
      expect(report).toMatchObject({ status: "completed", recipients: { accepted: 250 } });
    } finally {
      await worker.stop();
    }
    const requests = env.sandbox.ledger.requestLog({ api: "messages" });
    expect(requests).toHaveLength(3);
    for (const request of requests) {
      expect(request.fields).not.toHaveProperty("schedule_time");
      expect(request.receivedAt).toBeGreaterThanOrEqual(dueSeconds * 1000);
      expect(request.sendsAt).toBeGreaterThanOrEqual(dueSeconds * 1000);
    }
    const ledger = await sandboxLedger(env, "messages", clock);
    expect(Object.keys(ledger).sort()).toEqual([...numbers].sort());
    expect(Math.max(...Object.values(ledger))).toBe(1);
    const batches = await env.db.prisma.batch.findMany({ where: { campaignId: campaign.campaignId } });
    expect(batches.every((b) => b.state === "sent" && b.attempts === 1 && b.taskId === null)).toBe(true);
  });

  it("with 3 minutes plus the margin to go, schedule_time goes with the request and the provider holds it", async () => {
    const file = await env.writeCsv(
      "five-minutes.csv",
      csvOf(
        ["phone"],
        singaporeNumbers(10, 710_000).map((n) => [n]),
      ),
    );
    const dueSeconds = Math.floor(clock() / 1000) + 300;
    const campaign = await launchCampaign(env, { file, sendOptions: { scheduleTime: dueSeconds } });
    const worker = await startSendWorker(env.config, env.log, { clock });
    try {
      expect(await waitForCampaignEnd(env, campaign.campaignId)).toMatchObject({ recipients: { accepted: 10 } });
    } finally {
      await worker.stop();
    }
    const [request, ...others] = env.sandbox.ledger.requestLog({ api: "messages" });
    expect(others).toEqual([]);
    expect(request!.fields).toMatchObject({ schedule_time: dueSeconds });
    expect(request!.sendsAt).toBe(dueSeconds * 1000);
    const [batch] = await env.db.prisma.batch.findMany({ where: { campaignId: campaign.campaignId } });
    expect(batch!.taskId).toMatch(/^\d+$/);
  });

  it("a batch that goes out after its time (the campaign sat paused) is sent at once, without schedule_time", async () => {
    const file = await env.writeCsv(
      "late.csv",
      csvOf(
        ["phone"],
        singaporeNumbers(5, 720_000).map((n) => [n]),
      ),
    );
    const dueSeconds = Math.floor(clock() / 1000) + 600;
    const campaign = await launchCampaign(env, { file, sendOptions: { scheduleTime: dueSeconds } });
    offsetMs = 700_000; // the worker only starts after the time
    const worker = await startSendWorker(env.config, env.log, { clock });
    try {
      expect(await waitForCampaignEnd(env, campaign.campaignId)).toMatchObject({ recipients: { accepted: 5 } });
    } finally {
      await worker.stop();
    }
    const [request] = env.sandbox.ledger.requestLog({ api: "messages" });
    expect(request!.fields).not.toHaveProperty("schedule_time");
  });
});

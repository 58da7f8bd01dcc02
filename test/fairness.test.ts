import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getCampaignStatus } from "../src/campaigns/campaign-status.ts";
import { sendOneMessage } from "../src/campaigns/send-one.ts";
import { createProviders } from "../src/engagelab/providers.ts";
import { RateGate } from "../src/queue/rate-gate.ts";
import { createRedisConnection } from "../src/queue/redis.ts";
import { createSendQueue, enqueueBatches } from "../src/queue/send-queue.ts";
import { launchCampaign, sandboxLedger, startWorker, waitForCampaignEnd } from "./helpers/campaign-runner.ts";
import { clearRedisPrefix, csvOf, createTestEnv, singaporeNumbers, waitFor, type TestEnv } from "./helpers/test-env.ts";

// Fair sharing between campaigns and the priority lane of one-off sends (README "Fair sharing, priority and
// rates"). Nothing here is timed: what is asserted is which campaign finishes while the other still has most
// of its recipients pending, which no load on the machine turns around.

describe("fair-share priorities", () => {
  it("a campaign queued after another alternates with it batch for batch", async () => {
    const prefix = `{smsblast-test-fair-order-${process.pid}-${Math.random().toString(36).slice(2, 8)}}`;
    const connection = createRedisConnection(process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379", "producer");
    const queue = createSendQueue(connection, { prefix, attempts: 1, backoffMs: 1 });
    try {
      const a = Array.from({ length: 6 }, () => randomUUID());
      const b = Array.from({ length: 3 }, () => randomUUID());
      await enqueueBatches(queue, "campaign-a", a);
      await enqueueBatches(queue, "campaign-b", b);
      // Enqueueing again (a reconcile, a resume) keeps every job where it is: jobId = batch id.
      await enqueueBatches(queue, "campaign-a", a);
      const order = (await queue.getPrioritized(0, -1)).map((job) => job.id);
      expect(order).toEqual([a[0], a[1], b[0], a[2], b[1], a[3], b[2], a[4], a[5]]);
      // A campaign queued while B is at the head joins from the head: the base is the head's priority.
      const head = await queue.getPrioritized(0, 0);
      expect(head[0]?.priority).toBe(1);
    } finally {
      await queue.obliterate({ force: true });
      await queue.close();
      connection.disconnect();
      await clearRedisPrefix(prefix);
    }
  });
});

describe("two campaigns and a one-off send share the workers", () => {
  let env: TestEnv;
  beforeAll(async () => {
    // 200 batches of 100 at 100 ms each, 4 in flight: the big campaign takes several seconds alone.
    env = await createTestEnv("fairness", {
      env: { BATCH_SIZE: "100", SEND_CONCURRENCY: "4" },
      sandbox: { latencyMs: 100 },
    });
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  const csv = (name: string, count: number, start: number) =>
    env.writeCsv(
      name,
      csvOf(
        ["phone"],
        singaporeNumbers(count, start).map((n) => [n]),
      ),
    );

  it("a small campaign launched while a big one sends finishes long before it", async () => {
    const big = await launchCampaign(env, { file: await csv("big.csv", 20_000, 0), name: "big" });
    const worker = await startWorker(env);
    try {
      // The big campaign is under way: its first batches are done, the rest queued ahead of anything new.
      await waitFor(async () =>
        (await getCampaignStatus(env.db, big.campaignId)).recipients.accepted >= 1_000 ? true : undefined,
      );
      const small = await launchCampaign(env, {
        file: await csv("small.csv", 200, 100_000),
        name: "small",
        allowRepeat: true,
      });
      const smallReport = await waitForCampaignEnd(env, small.campaignId, 60_000);
      const bigAtThatMoment = await getCampaignStatus(env.db, big.campaignId);
      expect(smallReport.recipients.accepted).toBe(200);
      // In FIFO order the small one would wait for all 200 batches of the big one; it finished with more
      // than half of them still pending.
      expect(bigAtThatMoment.recipients.pending, JSON.stringify(bigAtThatMoment.recipients)).toBeGreaterThan(10_000);
      const bigReport = await waitForCampaignEnd(env, big.campaignId, 120_000);
      expect(bigReport.recipients.accepted).toBe(20_000);
    } finally {
      await worker.stop();
    }
    const ledger = await sandboxLedger(env, "messages");
    expect(Object.keys(ledger)).toHaveLength(20_200);
    expect(Object.values(ledger).every((times) => times === 1)).toBe(true);
  });

  it("a one-off send goes through while bulk batches saturate the workers (the priority lane)", async () => {
    const big = await launchCampaign(env, { file: await csv("big2.csv", 20_000, 200_000), name: "big 2" });
    const worker = await startWorker(env);
    const redis = createRedisConnection(env.config.redisUrl, "producer");
    const registry = createProviders(env.config);
    try {
      await waitFor(async () =>
        (await getCampaignStatus(env.db, big.campaignId)).recipients.accepted >= 1_000 ? true : undefined,
      );
      const gate = new RateGate(redis, env.config.queuePrefix, { requestsPerSecond: 0, perPlatform: {} });
      const deps = { db: env.db, log: env.log, providers: registry.providers, providerTimeoutMs: 3_000, gate };
      const started = performance.now();
      const results = [];
      for (let i = 0; i < 5; i++) {
        results.push(
          await sendOneMessage(deps, { to: `+658200000${i}`, templateId: "notification-template", params: {} }),
        );
      }
      const ms = performance.now() - started;
      const bigNow = await getCampaignStatus(env.db, big.campaignId);
      expect(results.map((r) => r.state)).toEqual(Array(5).fill("accepted"));
      // The five went while the 200 bulk batches still held the worker: most of them were still pending.
      expect(bigNow.recipients.pending, `${ms.toFixed(0)} ms for five one-off sends`).toBeGreaterThan(10_000);
      await waitForCampaignEnd(env, big.campaignId, 120_000);
    } finally {
      await worker.stop();
      await registry.close();
      redis.disconnect();
    }
  });
});

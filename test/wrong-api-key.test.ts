import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config/config.ts";
import { resumeCampaign } from "../src/campaigns/campaign-control.ts";
import { startSendWorker } from "../src/runtime/send-worker-runtime.ts";
import { createRedisConnection } from "../src/queue/redis.ts";
import { createSendQueue, enqueueBatches } from "../src/queue/send-queue.ts";
import { csvOf, createTestEnv, singaporeNumbers, waitFor, type TestEnv } from "./helpers/test-env.ts";
import { launchCampaign, sandboxLedger, startWorker, waitForCampaignEnd } from "./helpers/campaign-runner.ts";

const WRONG_KEY = "wrong-key-7f3a9c";
const WRONG_SECRET = "wrong-secret-c81d2e";

describe("a wrong API key", () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv("badkey", { env: { ENGAGELAB_API_KEY: WRONG_KEY, ENGAGELAB_API_SECRET: WRONG_SECRET } });
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it("pauses the campaign with the provider's code and message, sends nothing until resumed, and never logs the key", async () => {
    const numbers = singaporeNumbers(2_500);
    const file = await env.writeCsv(
      "k.csv",
      csvOf(
        ["phone"],
        numbers.map((n) => [n]),
      ),
    );
    const campaign = await launchCampaign(env, { file });
    const worker = await startWorker(env);
    let paused;
    try {
      paused = await waitFor(async () => {
        const row = await env.db.prisma.campaign.findUniqueOrThrow({ where: { id: campaign.campaignId } });
        return row.status === "paused" ? row : undefined;
      });
      // Let the other batches' jobs run into the paused campaign: none may send. The stated period: 1 s
      // after the pause was seen, the sandbox receives nothing after its first 300 ms (in-flight claims).
      const pausedSeenAt = Date.now();
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const requests = env.sandbox.ledger.requestLog();
      expect(
        requests.filter((r) => r.receivedAt > pausedSeenAt + 300),
        "requests while paused",
      ).toEqual([]);
      expect(requests.length, "at most one refused request per batch").toBeLessThanOrEqual(3);
      expect(requests.every((r) => r.outcome === "unauthorized")).toBe(true);
    } finally {
      await worker.stop();
    }
    expect(paused.statusReason).toMatch(
      /^provider refused the account \(code 2001\) on the current SMS platform .*ENGAGELAB_MESSAGES_KEY.*Authentication failed/,
    );
    const batches = await env.db.prisma.batch.findMany({ where: { campaignId: campaign.campaignId } });
    expect(batches.every((b) => b.state === "queued")).toBe(true);
    const refused = batches.filter((b) => b.errorCode !== null);
    expect(refused.length).toBeGreaterThanOrEqual(1);
    expect(refused[0]).toMatchObject({ errorCode: 2001 });
    expect(refused[0]!.errorMessage).toMatch(/Authentication failed/);
    expect(await env.db.prisma.recipient.count({ where: { campaignId: campaign.campaignId, state: "pending" } })).toBe(
      2_500,
    );
    expect(await sandboxLedger(env)).toEqual({});

    const logs = env.logOutput();
    expect(logs).toContain("2001"); // the refusal was logged at debug level...
    const basic = Buffer.from(`${WRONG_KEY}:${WRONG_SECRET}`).toString("base64");
    for (const secret of [WRONG_KEY, WRONG_SECRET, basic]) expect(logs).not.toContain(secret); // ...without the credentials
    const stored =
      JSON.stringify(await env.db.prisma.batch.findMany()) + JSON.stringify(await env.db.prisma.campaign.findMany());
    for (const secret of [WRONG_KEY, WRONG_SECRET, basic]) expect(stored).not.toContain(secret);

    // The operator fixes the credentials and resumes: every recipient is sent exactly once.
    const fixed = loadConfig({
      DATABASE_URL: env.config.databaseUrl,
      REDIS_URL: env.config.redisUrl,
      QUEUE_PREFIX: env.config.queuePrefix,
      ENGAGELAB_MESSAGES_URL: env.sandbox.url,
      LOG_LEVEL: "debug",
    });
    const goodWorker = await startSendWorker(fixed, env.log);
    const connection = createRedisConnection(fixed.redisUrl, "producer");
    const queue = createSendQueue(connection, { prefix: env.config.queuePrefix, attempts: 3, backoffMs: 50 });
    try {
      const resumed = await resumeCampaign(
        env.db,
        { enqueue: (id, ids) => enqueueBatches(queue, id, ids) },
        campaign.campaignId,
      );
      expect(resumed.batchIds).toHaveLength(3);
      const report = await waitForCampaignEnd(env, campaign.campaignId);
      expect(report).toMatchObject({ status: "completed", recipients: { accepted: 2_500, pending: 0 } });
    } finally {
      await goodWorker.stop();
      await queue.close();
      connection.disconnect();
    }
    const ledger = await sandboxLedger(env);
    expect(Object.keys(ledger)).toHaveLength(2_500);
    expect(Math.max(...Object.values(ledger))).toBe(1);
  });
});

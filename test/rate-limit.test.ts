import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { csvOf, createTestEnv, singaporeNumbers, type TestEnv } from "./helpers/test-env.ts";
import { launchCampaign, sandboxLedger, startWorker, waitForCampaignEnd } from "./helpers/campaign-runner.ts";

describe("global rate limit (SEND_RATE_LIMIT)", () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv("ratelimit", { env: { BATCH_SIZE: "10", SEND_RATE_LIMIT: "4", SEND_CONCURRENCY: "8" } });
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it("holds two workers together to the configured requests per second", async () => {
    const file = await env.writeCsv("rl.csv", csvOf(["phone"], singaporeNumbers(120, 70_000).map((n) => [n])));
    const campaign = await launchCampaign(env, { file });
    const workers = [await startWorker(env), await startWorker(env)];
    try {
      const report = await waitForCampaignEnd(env, campaign.campaignId);
      expect(report.recipients.accepted).toBe(120);
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
    expect(Object.keys(await sandboxLedger(env))).toHaveLength(120);
    // By the sandbox's own request timestamps: no 1-second window holds more than 4 requests. BullMQ
    // counts a job when it starts, the sandbox when its request arrives a few ms later, so the window is
    // measured 1 s minus that slack (50 ms).
    const times = env.sandbox.ledger.requestLog({ api: "messages" }).map((r) => r.receivedAt);
    expect(times).toHaveLength(12);
    const busiest = Math.max(...times.map((t) => times.filter((u) => u >= t && u < t + 1_000 - 50).length));
    expect(busiest, `requests per second, by arrival: ${JSON.stringify(times.map((t) => t - times[0]!))}`).toBeLessThanOrEqual(4);
    // 12 requests at 4 per second need at least two full windows after the first one.
    expect(times.at(-1)! - times[0]!).toBeGreaterThanOrEqual(2_000 - 50);
  });
});

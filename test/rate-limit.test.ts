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
    const started = Date.now();
    const workers = [await startWorker(env), await startWorker(env)];
    try {
      const report = await waitForCampaignEnd(env, campaign.campaignId);
      expect(report.recipients.accepted).toBe(120);
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
    // 12 requests at 4 per second across both workers need at least two full windows after the first.
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_900);
    expect(Object.keys(await sandboxLedger(env))).toHaveLength(120);
  });
});

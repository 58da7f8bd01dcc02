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
    const file = await env.writeCsv(
      "rl.csv",
      csvOf(
        ["phone"],
        singaporeNumbers(120, 70_000).map((n) => [n]),
      ),
    );
    const campaign = await launchCampaign(env, { file });
    const workers = [await startWorker(env), await startWorker(env)];
    try {
      const report = await waitForCampaignEnd(env, campaign.campaignId);
      expect(report.recipients.accepted).toBe(120);
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
    expect(Object.keys(await sandboxLedger(env))).toHaveLength(120);
    // By the sandbox's own request timestamps. BullMQ counts a job in a fixed 1-s window when the job
    // starts; the request arrives after the claim (tens of ms, more on a loaded machine), so a sliding
    // window over arrivals may catch one request of the next fixed window: at most 4 + 1 in any 1 s, and
    // 8 + 1 in any 2 s. A limiter per worker (8/s) or none (12 at once) is far above that.
    const times = env.sandbox.ledger.requestLog({ api: "messages" }).map((r) => r.receivedAt);
    expect(times).toHaveLength(12);
    const busiest = (windowMs: number) =>
      Math.max(...times.map((t) => times.filter((u) => u >= t && u < t + windowMs).length));
    const arrivals = `requests by arrival (ms): ${JSON.stringify(times.map((t) => t - times[0]!))}`;
    expect(busiest(1_000), arrivals).toBeLessThanOrEqual(4 + 1);
    expect(busiest(2_000), arrivals).toBeLessThanOrEqual(8 + 1);
    // 12 requests at 4 per second need at least two full windows after the first one.
    expect(times.at(-1)! - times[0]!, arrivals).toBeGreaterThanOrEqual(2_000 - 100);
  });
});

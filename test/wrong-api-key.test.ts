import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { csvOf, createTestEnv, singaporeNumbers, type TestEnv } from "./helpers/test-env.ts";
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

  it("fails the batch with the provider's code and message, sends nothing, and never logs the key", async () => {
    const file = await env.writeCsv("k.csv", csvOf(["phone"], singaporeNumbers(20).map((n) => [n])));
    const campaign = await launchCampaign(env, { file });
    const worker = await startWorker(env);
    try {
      const report = await waitForCampaignEnd(env, campaign.campaignId);
      expect(report.status).toBe("failed");
      expect(report.recipients).toMatchObject({ total: 20, failed: 20, accepted: 0 });
    } finally {
      await worker.stop();
    }
    const [batch] = await env.db.prisma.batch.findMany({ where: { campaignId: campaign.campaignId } });
    expect(batch).toMatchObject({ state: "failed", errorCode: 2001, attempts: 1 });
    expect(batch!.errorMessage).toMatch(/Authentication failed/);
    const recipient = await env.db.prisma.recipient.findFirstOrThrow({ where: { campaignId: campaign.campaignId } });
    expect(recipient).toMatchObject({ state: "failed", failureCode: 2001 });
    expect(await sandboxLedger(env)).toEqual({});

    const logs = env.logOutput();
    expect(logs).toContain("2001"); // the failure was logged at debug level...
    const basic = Buffer.from(`${WRONG_KEY}:${WRONG_SECRET}`).toString("base64");
    for (const secret of [WRONG_KEY, WRONG_SECRET, basic]) expect(logs).not.toContain(secret); // ...without its credentials
    const stored = JSON.stringify(await env.db.prisma.batch.findMany()) + JSON.stringify(await env.db.prisma.campaign.findMany());
    for (const secret of [WRONG_KEY, WRONG_SECRET, basic]) expect(stored).not.toContain(secret);
  });
});

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliEnv, runCli } from "../helpers/cli.ts";
import { sandboxLedger, startWorker, waitForCampaignEnd } from "../helpers/campaign-runner.ts";
import { createTestEnv, singaporeNumbers, type TestEnv } from "../helpers/test-env.ts";

// Issue 13.3 (retry-failed): a new campaign of the recipients that ended failed with a retryable code, never
// those accepted or unknown, linked to the original; checked against the sandbox's ledger.
describe("retry-failed", { timeout: 240_000 }, () => {
  let env: TestEnv;
  const numbers = singaporeNumbers(10, 68_000);
  const refused = numbers.slice(2, 5);
  let originalId: string;

  const sandbox = (path: string, body: object = {}) =>
    fetch(`${env.sandbox.url}/_sandbox/${path}`, { method: "POST", body: JSON.stringify(body) });

  beforeAll(async () => {
    env = await createTestEnv("retry-failed");
    // The legacy API answers partial success: three numbers come back as failed items.
    await sandbox("refuse-numbers", { numbers: refused });
    const file = await env.writeCsv("list.csv", `phone\n${numbers.join("\n")}\n`);
    const sent = await runCli(
      ["send", file, "--template", "1", "--no-template-check", "--provider", "legacy", "--param", "order=A"],
      cliEnv(env),
    );
    expect(sent.code, sent.output).toBe(0);
    originalId = sent.stdout.trim();
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it("refuses while the campaign is still running, then sends exactly the failed recipients once, linked to the original", async () => {
    const early = await runCli(["retry-failed", originalId], cliEnv(env));
    expect(early.code).toBe(1);
    expect(early.stderr).toContain(`campaign ${originalId} is running; retry its failures once it has finished`);

    const worker = await startWorker(env);
    try {
      await waitForCampaignEnd(env, originalId);
      const failed = await env.db.prisma.recipient.findMany({
        where: { campaignId: originalId, state: "failed" },
        orderBy: { phone: "asc" },
      });
      expect(failed.map((r) => r.phone)).toEqual(refused);

      const none = await runCli(["retry-failed", originalId, "--codes", "9999"], cliEnv(env));
      expect(none.code).toBe(1);
      expect(none.stderr).toMatch(
        new RegExp(
          `nothing to retry: campaign ${originalId} has no failed recipient with code 9999 \\(its failures: 3 × \\d+; --codes chooses others\\); nothing was stored`,
        ),
      );

      await sandbox("reset");
      const retry = await runCli(["retry-failed", originalId, "--wait"], cliEnv(env));
      expect(retry.code, retry.output).toBe(0);
      const retryId = retry.stdout.trim();
      const campaign = await env.db.prisma.campaign.findUniqueOrThrow({ where: { id: retryId } });
      expect(campaign).toMatchObject({
        retryOf: originalId,
        provider: "legacy",
        recipientCount: 3,
        status: "completed",
        templateParams: { order: "A" },
      });
      // After the reset the ledger holds only what the retry sent: the three failed numbers, once each.
      expect(await sandboxLedger(env, "legacy")).toEqual(Object.fromEntries(refused.map((n) => [n, 1])));

      // The same failures again within 24 h: the repeat guard names the first retry.
      const again = await runCli(["retry-failed", originalId], cliEnv(env));
      expect(again.code).toBe(1);
      expect(again.stderr).toContain(`already launched as campaign ${retryId}`);
    } finally {
      await worker.stop();
    }
  });
});

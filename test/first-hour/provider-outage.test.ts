import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliEnv, runCli } from "../helpers/cli.ts";
import { sandboxLedger, startWorker, waitForCampaignEnd } from "../helpers/campaign-runner.ts";
import { createTestEnv, csvOf, singaporeNumbers, type TestEnv } from "../helpers/test-env.ts";

// Issue 13.3 (part): a provider outage that outlasts the attempts pauses the campaign with the reason
// instead of failing its batches for good; `resume` then sends every recipient exactly once.
describe("provider outage", { timeout: 240_000 }, () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv("outage", { sandbox: { errorRate: 1 } });
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it("send --wait --worker with the provider answering 5xx: paused (exit 6), nothing failed; resume sends each number once", async () => {
    const numbers = singaporeNumbers(30);
    const file = await env.writeCsv(
      "list.csv",
      csvOf(
        ["phone"],
        numbers.map((n) => [n]),
      ),
    );
    const send = await runCli(
      ["send", file, "--template", "1", "--no-template-check", "--wait", "--worker"],
      // One batch: its two attempts stay below the 3-in-a-row streak that would pause it first.
      cliEnv(env, { SEND_ATTEMPTS: "2", BATCH_SIZE: "30" }),
    );
    expect(send.code, send.output).toBe(6);
    const id = send.stdout.trim();
    expect(send.stderr).toContain(`smsblast resume ${id}`);
    const campaign = (
      await env.db.pool.query<{ status: string; status_reason: string }>(
        `SELECT status, status_reason FROM campaigns WHERE id = $1`,
        [id],
      )
    ).rows[0]!;
    expect(campaign.status).toBe("paused");
    expect(campaign.status_reason).toMatch(
      /^provider unreachable since \d{4}-\d\d-\d\dT\S+Z on messages \(.*2 attempts\); resumes by itself once it answers, or `smsblast resume`$/,
    );
    const batches = (
      await env.db.pool.query<{ state: string }>(`SELECT state FROM batches WHERE campaign_id = $1`, [id])
    ).rows.map((r) => r.state);
    expect(batches.filter((s) => s === "failed")).toEqual([]);
    const recipients = (
      await env.db.pool.query(
        `SELECT state, count(*)::int AS n FROM recipient_outcomes WHERE campaign_id = $1 GROUP BY state`,
        [id],
      )
    ).rows;
    expect(recipients).toEqual([{ state: "pending", n: 30 }]);
    expect(await sandboxLedger(env)).toEqual({});

    // The provider is back: resume, and a worker finishes the campaign.
    env.sandbox.setOptions({ errorRate: 0 });
    const resumed = await runCli(["resume", id], cliEnv(env));
    expect(resumed.code, resumed.output).toBe(0);
    const worker = await startWorker(env);
    try {
      const report = await waitForCampaignEnd(env, id);
      expect(report).toMatchObject({ status: "completed", recipients: { accepted: 30, failed: 0, unknown: 0 } });
    } finally {
      await worker.stop();
    }
    const ledger = await sandboxLedger(env);
    for (const n of numbers) expect(ledger[n]).toBe(1);
  });
});

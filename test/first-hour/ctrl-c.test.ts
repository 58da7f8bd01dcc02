import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliEnv, runCli, spawnCli } from "../helpers/cli.ts";
import { sandboxLedger } from "../helpers/campaign-runner.ts";
import { createTestEnv, csvOf, singaporeNumbers, waitFor, type TestEnv } from "../helpers/test-env.ts";

// Issue 13.4: Ctrl-C on `send --wait --worker` shuts the worker down like `smsblast worker` does: the
// in-flight batches finish and are recorded (never left `sending`, never later `unknown`); exit 130.
describe("Ctrl-C", { timeout: 240_000 }, () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv("ctrlc", { sandbox: { latencyMs: 2_500 } });
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  const batchStates = async (campaignId: string) =>
    (
      await env.db.pool.query(`SELECT state, count(*)::int AS n FROM batches WHERE campaign_id = $1 GROUP BY state`, [
        campaignId,
      ])
    ).rows as Array<{ state: string; n: number }>;

  it("send --wait --worker: in-flight batches finish and are recorded; exit 130; the rest is sent once later", async () => {
    const numbers = singaporeNumbers(12);
    const file = await env.writeCsv(
      "list.csv",
      csvOf(
        ["phone"],
        numbers.map((n) => [n]),
      ),
    );
    // 12 batches of 1, 2 in flight at a time, 2.5 s each: Ctrl-C lands with batches in flight.
    const run = spawnCli(
      ["send", file, "--template", "1", "--no-template-check", "--wait", "--worker"],
      cliEnv(env, { BATCH_SIZE: "1", SEND_CONCURRENCY: "2" }),
    );
    let stdout = "";
    run.child.stdout!.on("data", (c: Buffer) => (stdout += c.toString()));
    const campaignId = await waitFor(() => Promise.resolve(/^[0-9a-f-]{36}$/m.exec(stdout)?.[0]), 90_000);
    await waitFor(
      async () => ((await batchStates(campaignId)).some((b) => b.state === "sending") ? true : undefined),
      60_000,
      50,
    );
    run.child.kill("SIGINT");
    const result = await run.done;
    expect(result.code, result.output).toBe(130);
    expect(result.stderr).toMatch(/stopping the worker: in-flight batches finish/);
    expect(result.stderr).toContain(`smsblast watch ${campaignId}`);
    const after = await batchStates(campaignId);
    expect(after.find((b) => b.state === "sending")).toBeUndefined();
    const sentSoFar = after.find((b) => b.state === "sent")?.n ?? 0;
    expect(sentSoFar).toBeGreaterThan(0);
    expect(sentSoFar).toBeLessThan(12);

    // A worker finishes the campaign: nothing unknown, every number exactly once.
    env.sandbox.setOptions({ latencyMs: 0 });
    const finish = await runCli(
      [
        "send",
        await env.writeCsv("noop.csv", csvOf(["phone"], [[singaporeNumbers(1, 500)[0]!]])),
        "--template",
        "1",
        "--no-template-check",
        "--wait",
        "--worker",
      ],
      cliEnv(env),
    );
    expect(finish.code, finish.output).toBe(0);
    const status = await runCli(["watch", campaignId], cliEnv(env));
    expect(status.code, status.output).toBe(0);
    const ledger = await sandboxLedger(env);
    for (const n of numbers) expect(ledger[n]).toBe(1);
    const { rows } = await env.db.pool.query(
      `SELECT state, count(*)::int AS n FROM recipient_outcomes WHERE campaign_id = $1 GROUP BY state`,
      [campaignId],
    );
    expect(rows).toEqual([{ state: "accepted", n: 12 }]);
  });

  it("send --wait without a worker: Ctrl-C says the campaign keeps sending and how to watch it", async () => {
    const file = await env.writeCsv(
      "nowork.csv",
      csvOf(
        ["phone"],
        singaporeNumbers(2, 600).map((n) => [n]),
      ),
    );
    const run = spawnCli(["send", file, "--template", "1", "--no-template-check", "--wait"], cliEnv(env));
    let stdout = "";
    run.child.stdout!.on("data", (c: Buffer) => (stdout += c.toString()));
    const campaignId = await waitFor(() => Promise.resolve(/^[0-9a-f-]{36}$/m.exec(stdout)?.[0]), 90_000);
    await new Promise((r) => setTimeout(r, 500));
    run.child.kill("SIGINT");
    const result = await run.done;
    expect(result.code, result.output).toBe(130);
    expect(result.stderr).toContain(
      `interrupted: campaign ${campaignId} is running and keeps sending in the running workers; watch it with \`smsblast watch ${campaignId}\``,
    );
  });
});

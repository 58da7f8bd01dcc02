import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliEnv, runCli } from "../helpers/cli.ts";
import { sandboxLedger } from "../helpers/campaign-runner.ts";
import { createTestEnv, csvOf, singaporeNumbers, type TestEnv } from "../helpers/test-env.ts";

// Issue 13.7: `send --wait` and `watch` exit 0 only for a clean completion; fixed codes for the rest; a
// launch with nothing to send (every row rejected, or a header-only file) is refused and stores nothing.
describe("exit codes", { timeout: 240_000 }, () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv("exitcodes");
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  const campaignCount = async () =>
    Number((await env.db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM campaigns`)).rows[0]!.n);
  const send = (file: string, ...extra: string[]) =>
    runCli(["send", file, "--template", "1", "--no-template-check", ...extra], cliEnv(env));

  it("a header-only file and a file whose every row is rejected are refused (exit 1), with the reasons, storing nothing", async () => {
    const headerOnly = await send(await env.writeCsv("header.csv", "phone,name\n"));
    expect(headerOnly.code).toBe(1);
    expect(headerOnly.stderr).toMatch(
      /smsblast: nothing to send: the file has no rows below its header; nothing was stored/,
    );
    expect(headerOnly.stdout).toBe("");

    const junk = await send(await env.writeCsv("junk.csv", csvOf(["phone"], [["hello"], ["12"], ["hello"]])));
    expect(junk.code).toBe(1);
    expect(junk.stderr).toMatch(
      /smsblast: nothing to send: all 3 row\(s\) of the file were rejected: \d × .+\(first at row \d\)/,
    );
    expect(junk.stdout).toBe("");
    expect(await campaignCount()).toBe(0);
    expect(await sandboxLedger(env)).toEqual({});
  });

  it("0 completed clean, 3 completed with failed recipients, 4 failed", async () => {
    const clean = await send(
      await env.writeCsv(
        "clean.csv",
        csvOf(
          ["phone"],
          singaporeNumbers(3).map((n) => [n]),
        ),
      ),
      "--wait",
      "--worker",
    );
    expect(clean.code, clean.output).toBe(0);
    expect(clean.stderr).toMatch(/completed/);

    const numbers = singaporeNumbers(4, 100);
    env.sandbox.refuseNumbers([numbers[0]!]);
    // Legacy v1/send reports refused numbers one by one (41031 failed_items): a partly failed campaign.
    const partly = await send(
      await env.writeCsv(
        "partly.csv",
        csvOf(
          ["phone"],
          numbers.map((n) => [n]),
        ),
      ),
      "--provider",
      "legacy",
      "--wait",
      "--worker",
    );
    expect(partly.code, partly.output).toBe(3);
    const partlyId = partly.stdout.trim();
    const { rows } = await env.db.pool.query(
      `SELECT state, count(*)::int AS n FROM recipient_outcomes WHERE campaign_id = $1 GROUP BY state ORDER BY state`,
      [partlyId],
    );
    expect(rows).toEqual([
      { state: "accepted", n: 3 },
      { state: "failed", n: 1 },
    ]);

    // Sandbox magic template "missing…": every batch refused with 4001, so the campaign ends failed.
    const failed = await runCli(
      [
        "send",
        await env.writeCsv(
          "failed.csv",
          csvOf(
            ["phone"],
            singaporeNumbers(2, 200).map((n) => [n]),
          ),
        ),
        "--template",
        "missing-1",
        "--no-template-check",
        "--wait",
        "--worker",
      ],
      cliEnv(env),
    );
    expect(failed.code, failed.output).toBe(4);
    const ledger = await sandboxLedger(env);
    for (const n of [...singaporeNumbers(3), ...numbers.slice(1)]) expect(ledger[n]).toBe(1);
    expect(ledger[numbers[0]!]).toBeUndefined();
    for (const n of singaporeNumbers(2, 200)) expect(ledger[n]).toBeUndefined();
  });

  it("watch: 6 for a paused campaign, 5 for a cancelled one; a garbage id is refused with 1", async () => {
    const stored = await send(
      await env.writeCsv(
        "later.csv",
        csvOf(
          ["phone"],
          singaporeNumbers(2, 300).map((n) => [n]),
        ),
      ),
    );
    expect(stored.code, stored.output).toBe(0);
    const id = stored.stdout.trim();
    expect((await runCli(["pause", id], cliEnv(env))).code).toBe(0);
    const paused = await runCli(["watch", id], cliEnv(env));
    expect(paused.code, paused.output).toBe(6);
    expect(paused.stderr).toContain(`smsblast resume ${id}`);
    expect((await runCli(["cancel", id], cliEnv(env))).code).toBe(0);
    const cancelled = await runCli(["watch", id], cliEnv(env));
    expect(cancelled.code, cancelled.output).toBe(5);
    const garbage = await runCli(["watch", "not-an-id"], cliEnv(env));
    expect(garbage.code).toBe(1);
    expect(garbage.stderr).toMatch(/No campaign with id not-an-id/);
    const ledger = await sandboxLedger(env);
    for (const n of singaporeNumbers(2, 300)) expect(ledger[n]).toBeUndefined();
  });
});

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliEnv, runCli } from "../helpers/cli.ts";
import { sandboxLedger, startWorker, waitForCampaignEnd } from "../helpers/campaign-runner.ts";
import { createTestEnv, singaporeNumbers, type TestEnv } from "../helpers/test-env.ts";

// Issue 13.2: the same list sent twice (a re-run after a scare, or two at once) is refused within 24 h,
// naming the earlier campaign; --allow-repeat overrides; exact matches only.
describe("repeat guard", { timeout: 240_000 }, () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv("repeat");
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  const send = (file: string, ...extra: string[]) =>
    runCli(["send", file, "--template", "1", "--no-template-check", "--param", "order=A1", ...extra], cliEnv(env));
  const campaignIds = async () =>
    (await env.db.pool.query<{ id: string }>(`SELECT id FROM campaigns ORDER BY created_at`)).rows.map((r) => r.id);

  it("refuses the same recipients and params again, in any row or column order; --allow-repeat and any real difference pass", async () => {
    const a = singaporeNumbers(4);
    const first = await send(await env.writeCsv("a.csv", `phone,name\n${a.map((n, i) => `${n},n${i}`).join("\n")}\n`));
    expect(first.code, first.output).toBe(0);
    const firstId = first.stdout.trim();

    // The same numbers shuffled, another column order, one national-format duplicate: the same list.
    const again = await send(
      await env.writeCsv(
        "a-again.csv",
        `name,phone\n${[...a]
          .reverse()
          .map((n) => `x,${n}`)
          .join("\n")}\nx,${a[0]}\n`,
      ),
    );
    expect(again.code, again.output).toBe(1);
    expect(again.stderr).toMatch(
      new RegExp(
        `\nsmsblast: the same recipients with the same template and params were already launched as campaign ${firstId} \\(running, created \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\); nothing was stored; add --allow-repeat to send it again anyway\\n$`,
      ),
    );
    expect(again.stdout).toBe("");
    expect(await campaignIds()).toEqual([firstId]);

    const otherParam = await runCli(
      [
        "send",
        await env.writeCsv("a2.csv", `phone\n${a.join("\n")}\n`),
        "--template",
        "1",
        "--no-template-check",
        "--param",
        "order=A2",
      ],
      cliEnv(env),
    );
    expect(otherParam.code, otherParam.output).toBe(0);
    const oneMore = await send(
      await env.writeCsv("a3.csv", `phone\n${[...a, singaporeNumbers(1, 50)[0]].join("\n")}\n`),
    );
    expect(oneMore.code, oneMore.output).toBe(0);

    const repeat = await send(await env.writeCsv("a4.csv", `phone\n${a.join("\n")}\n`), "--allow-repeat");
    expect(repeat.code, repeat.output).toBe(0);
    expect(await campaignIds()).toHaveLength(4);
  });

  it("two launches of one list at the same time: exactly one campaign", async () => {
    const b = singaporeNumbers(300, 1_000);
    const file = await env.writeCsv("b.csv", `phone\n${b.join("\n")}\n`);
    const before = (await campaignIds()).length;
    const results = await Promise.all([send(file), send(file)]);
    expect(results.map((r) => r.code).sort()).toEqual([0, 1]);
    const winner = results.find((r) => r.code === 0)!.stdout.trim();
    expect(results.find((r) => r.code === 1)!.stderr).toContain(`already launched as campaign ${winner}`);
    expect((await campaignIds()).length).toBe(before + 1);
  });

  it("the ledger: every launched campaign sent once, the refused ones never", async () => {
    const worker = await startWorker(env);
    try {
      for (const id of await campaignIds()) expect((await waitForCampaignEnd(env, id)).status).toBe("completed");
    } finally {
      await worker.stop();
    }
    const ledger = await sandboxLedger(env);
    // first, order=A2, +1 number, --allow-repeat: four campaigns contain the first four numbers.
    for (const n of singaporeNumbers(4)) expect(ledger[n]).toBe(4);
    for (const n of singaporeNumbers(300, 1_000)) expect(ledger[n]).toBe(1);
  });
});

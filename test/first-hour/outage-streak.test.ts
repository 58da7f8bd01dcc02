import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliEnv, runCli } from "../helpers/cli.ts";
import { sandboxLedger } from "../helpers/campaign-runner.ts";
import { createTestEnv, csvOf, singaporeNumbers, type TestEnv } from "../helpers/test-env.ts";

// Issue 13.3: after 3 retryable or ambiguous failures in a row on one platform, the campaign pauses before it
// claims another batch, so an outage of v1/messages (whose ambiguous 5xx makes a batch `unknown`) costs at most
// 3 batches, not the whole campaign.
describe("provider outage streak", { timeout: 240_000 }, () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv("outage_streak");
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it("20 messages batches against ambiguous 5xx on every request: at most 3 unknown, paused naming platform and time, nothing sent twice", async () => {
    // Every send request is sent, then answered by a gateway's HTML 502: the client cannot tell it went out.
    env.sandbox.failNext(10_000, "error-after-send", { status: 502 });
    const numbers = singaporeNumbers(100);
    const file = await env.writeCsv(
      "list.csv",
      csvOf(
        ["phone"],
        numbers.map((n) => [n]),
      ),
    );
    const before = Date.now();
    const send = await runCli(
      ["send", file, "--template", "1", "--no-template-check", "--wait", "--worker"],
      cliEnv(env, { BATCH_SIZE: "5", SEND_CONCURRENCY: "1" }),
    );
    expect(send.code, send.output).toBe(6);
    const id = send.stdout.trim();
    const campaign = (
      await env.db.pool.query<{ status: string; status_reason: string; pause_kind: string; batch_count: number }>(
        `SELECT status, status_reason, pause_kind, batch_count FROM campaigns WHERE id = $1`,
        [id],
      )
    ).rows[0]!;
    expect(campaign.batch_count).toBe(20);
    expect(campaign).toMatchObject({ status: "paused", pause_kind: "outage" });
    const reason =
      /^provider unreachable since (\S+) on messages \(3 failures in a row, last: .*HTTP 502.*\); resumes by itself once it answers, or `smsblast resume`$/.exec(
        campaign.status_reason,
      );
    expect(reason, campaign.status_reason).not.toBeNull();
    const since = Date.parse(reason![1]!);
    expect(since).toBeGreaterThanOrEqual(before - 1_000);
    expect(since).toBeLessThanOrEqual(Date.now());

    const batches = (
      await env.db.pool.query<{ state: string; n: number }>(
        `SELECT state, count(*)::int AS n FROM batches WHERE campaign_id = $1 GROUP BY state ORDER BY state`,
        [id],
      )
    ).rows;
    const unknownBatches = batches.find((b) => b.state === "unknown")?.n ?? 0;
    expect(unknownBatches).toBeGreaterThan(0);
    expect(unknownBatches).toBeLessThanOrEqual(3);
    expect(batches.filter((b) => !["unknown", "queued"].includes(b.state))).toEqual([]);
    const recipients = Object.fromEntries(
      (
        await env.db.pool.query<{ state: string; n: number }>(
          `SELECT state, count(*)::int AS n FROM recipient_outcomes WHERE campaign_id = $1 GROUP BY state`,
          [id],
        )
      ).rows.map((r) => [r.state, r.n]),
    );
    expect(recipients).toEqual({ unknown: unknownBatches * 5, pending: 100 - unknownBatches * 5 });

    // The ledger: exactly the unknown batches' numbers went out, each once.
    const ledger = await sandboxLedger(env);
    expect(Object.values(ledger).every((times) => times === 1)).toBe(true);
    expect(Object.keys(ledger)).toHaveLength(unknownBatches * 5);
  });
});

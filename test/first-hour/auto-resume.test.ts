import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliEnv, runCli, spawnCli } from "../helpers/cli.ts";
import { sandboxLedger } from "../helpers/campaign-runner.ts";
import { createTestEnv, csvOf, singaporeNumbers, waitFor, type TestEnv } from "../helpers/test-env.ts";

// Issue 13.3: a campaign paused by a provider outage resumes by itself once a probe that cannot send gets an
// answer (with back-off, at most AUTO_RESUME_MAX times); a person's pause never does.
describe("auto-resume after a provider outage", { timeout: 240_000 }, () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv("auto_resume", { sandbox: { errorRate: 1 } });
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  async function campaignRow(id: string) {
    return (
      await env.db.pool.query<{
        status: string;
        status_reason: string | null;
        pause_kind: string | null;
        auto_resumes: number;
      }>(`SELECT status, status_reason, pause_kind, auto_resumes FROM campaigns WHERE id = $1`, [id])
    ).rows[0]!;
  }

  it("provider down → paused (outage); provider back → resumed by itself, completed, each number once; a user's pause stays", async () => {
    const vars = { BATCH_SIZE: "10", SEND_ATTEMPTS: "3", SEND_CONCURRENCY: "2", AUTO_RESUME_BACKOFF_MS: "400" };
    const numbers = singaporeNumbers(50);
    const file = await env.writeCsv(
      "list.csv",
      csvOf(
        ["phone"],
        numbers.map((n) => [n]),
      ),
    );
    const others = singaporeNumbers(10, 1_000);
    const otherFile = await env.writeCsv(
      "others.csv",
      csvOf(
        ["phone"],
        others.map((n) => [n]),
      ),
    );
    // Paused by a person before any worker runs: it must stay paused whatever the provider does.
    const userSend = await runCli(["send", otherFile, "--template", "1", "--no-template-check"], cliEnv(env, vars));
    expect(userSend.code, userSend.output).toBe(0);
    const userPaused = userSend.stdout.trim();
    const pause = await runCli(["pause", userPaused], cliEnv(env, vars));
    expect(pause.code, pause.output).toBe(0);

    const worker = spawnCli(["worker"], cliEnv(env, vars));
    try {
      const send = await runCli(["send", file, "--template", "1", "--no-template-check"], cliEnv(env, vars));
      expect(send.code, send.output).toBe(0);
      const id = send.stdout.trim();

      const paused = await waitFor(async () => {
        const row = await campaignRow(id);
        return row.status === "paused" ? row : undefined;
      });
      expect(paused.pause_kind).toBe("outage");
      expect(paused.status_reason).toMatch(/^provider unreachable since \S+Z on messages /);

      // Still down: the prober probes (past its back-off) and gets 5xx, so the campaign stays paused.
      await waitFor(
        () => Promise.resolve(env.sandbox.ledger.requestLog({ api: "messages" }).some(isProbe) ? true : undefined),
        15_000,
      );
      expect(await campaignRow(id)).toMatchObject({ status: "paused", auto_resumes: 0 });
      expect(await sandboxLedger(env)).toEqual({});

      env.sandbox.setOptions({ errorRate: 0 });
      const done = await waitFor(
        async () => {
          const row = await campaignRow(id);
          return row.status === "completed" ? row : undefined;
        },
        60_000,
        200,
      );
      expect(done).toMatchObject({ pause_kind: null, auto_resumes: 1 });
      const recipients = (
        await env.db.pool.query(
          `SELECT state, count(*)::int AS n FROM recipient_outcomes WHERE campaign_id = $1 GROUP BY state`,
          [id],
        )
      ).rows;
      expect(recipients).toEqual([{ state: "accepted", n: 50 }]);
      const ledger = await sandboxLedger(env);
      for (const n of numbers) expect(ledger[n]).toBe(1);
      for (const n of others) expect(ledger[n]).toBeUndefined();

      const audit = (
        await env.db.pool.query<{ actor: string; details: Record<string, unknown> }>(
          `SELECT actor, details FROM audit_log WHERE action = 'campaign.auto-resume' AND campaign_id = $1`,
          [id],
        )
      ).rows;
      expect(audit).toHaveLength(1);
      expect(audit[0]!.actor).toBe("system:outage-prober");
      expect(audit[0]!.details).toMatchObject({ provider: "messages", autoResume: 1, max: 5, probe: "HTTP 400" });
      // The probe never carried a number.
      expect(
        env.sandbox.ledger
          .requestLog({ api: "messages" })
          .filter(isProbe)
          .every((r) => r.targets.length === 0),
      ).toBe(true);

      // The person's pause is untouched.
      expect(await campaignRow(userPaused)).toMatchObject({ status: "paused", pause_kind: "user", auto_resumes: 0 });
    } finally {
      worker.child.kill("SIGTERM");
      const stopped = await worker.done;
      expect(stopped.stderr).toContain("campaign resumed by itself");
    }
  });
});

function isProbe(request: { targets: string[]; fields?: Record<string, unknown> }): boolean {
  return request.targets.length === 0 && Object.keys(request.fields ?? {}).length === 0;
}

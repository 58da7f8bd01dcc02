import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { firingIdOf } from "../../src/campaigns/recurring-campaigns.ts";
import { importContactsFromCsv } from "../../src/recipients/audience-import.ts";
import { upsertSchedule } from "../../src/store/schedule-repository.ts";
import { cliEnv, runCli, spawnCli, type CliResult } from "../helpers/cli.ts";
import { createTestEnv, csvOf, singaporeNumbers, waitFor, type TestEnv } from "../helpers/test-env.ts";

/** A daily 6-field cron pattern (with seconds) that fired at `at`, in UTC. */
function dailyAt(at: Date): string {
  return `${at.getUTCSeconds()} ${at.getUTCMinutes()} ${at.getUTCHours()} * * *`;
}

// Issue 13.6: a scheduler that starts (or restarts) just after a firing was due runs that firing once;
// one older than SCHEDULE_CATCHUP_MS is logged as missed; `schedule add` refuses an audience that does not exist.
describe("no schedule firing lost", { timeout: 120_000 }, () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv("schedule-catchup");
    const file = await env.writeCsv(
      "contacts.csv",
      csvOf(
        ["phone"],
        singaporeNumbers(5, 70_000).map((n) => [n]),
      ),
    );
    await importContactsFromCsv(env.db, file, { phoneColumn: "phone", tags: ["daily"] });
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it("schedule add refuses a tag or segment that does not exist, and stores nothing", async () => {
    const result = await runCli(
      ["schedule", "add", "ghost", "--cron", "0 9 * * *", "--audience", "no-such-tag", "--template", "1"],
      cliEnv(env),
    );
    expect(result.code, result.output).toBe(1);
    expect(result.stderr).toContain('No saved segment and no contact tagged "no-such-tag"');
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(await env.db.prisma.schedule.count({ where: { name: "ghost" } })).toBe(0);
  });

  it("a first start 3 s after a firing runs it once; a restart does not run it again; a firing older than the window is logged as missed", async () => {
    const now = Date.now();
    const recent = new Date(Math.floor((now - 3_000) / 1000) * 1000);
    const old = new Date(Math.floor((now - 10 * 60_000) / 1000) * 1000);
    const base = {
      timezone: "UTC",
      audience: "daily",
      templateId: "1",
      params: { order: "D" },
      paramColumns: {},
      provider: "messages" as const,
      sendOptions: {},
      templateCheck: false,
    };
    // Stored in Postgres only, as before the scheduler's first start: BullMQ has never seen these firings.
    await upsertSchedule(env.db, { ...base, name: "recent", cron: dailyAt(recent) });
    await upsertSchedule(env.db, { ...base, name: "old", cron: dailyAt(old) });
    await env.db.pool.query(`UPDATE schedules SET created_at = now() - interval '1 day'`);

    const schedulerEnv = cliEnv(env, { LOG_LEVEL: "info", SCHEDULE_CATCHUP_MS: String(5 * 60_000) });
    const startAndStop = async (): Promise<CliResult> => {
      const run = spawnCli(["scheduler"], schedulerEnv);
      let started = false;
      run.child.stderr!.on("data", (chunk: Buffer) => {
        if (chunk.toString().includes('"msg":"scheduler started"')) started = true;
      });
      await waitFor(() => Promise.resolve(started || run.child.exitCode !== null ? true : undefined), 30_000, 100);
      run.child.kill("SIGTERM");
      return run.done;
    };

    const first = await startAndStop();
    expect(first.code, first.output).toBe(0);
    const runKey = `recent:${firingIdOf("recent", recent)}`;
    const campaigns = await env.db.prisma.campaign.findMany({ where: { runKey: { not: null } } });
    expect(campaigns.map((c) => c.runKey)).toEqual([runKey]);
    expect(campaigns[0]).toMatchObject({ recipientCount: 5, source: "tag:daily" });
    expect(first.stderr).toContain('"msg":"missed schedule firing run at start-up"');
    expect(first.stderr).toMatch(
      new RegExp(`"schedule":"old","firingAt":"${old.toISOString()}".*"msg":"schedule firing missed`),
    );

    const second = await startAndStop();
    expect(second.code, second.output).toBe(0);
    expect(await env.db.prisma.campaign.count({ where: { runKey: { not: null } } })).toBe(1);
    expect(second.stderr).not.toContain("missed schedule firing run at start-up");
  });
});

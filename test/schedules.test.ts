import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  addSchedule,
  listSchedules,
  removeSchedule,
  ScheduleError,
  validateCron,
} from "../src/campaigns/recurring-campaigns.ts";
import { cronSchedulerOf } from "../src/runtime/scheduler-runtime.ts";
import { importContactsFromCsv } from "../src/recipients/audience-import.ts";
import { createRedisConnection } from "../src/queue/redis.ts";
import { createScheduleQueue } from "../src/queue/schedule-queue.ts";
import { createTestEnv, csvOf, singaporeNumbers, waitFor, type TestEnv } from "./helpers/test-env.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

describe("recurring campaigns", () => {
  let env: TestEnv;
  let connection: ReturnType<typeof createRedisConnection>;
  let queue: ReturnType<typeof createScheduleQueue>;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    env = await createTestEnv("schedules");
    connection = createRedisConnection(env.config.redisUrl, "producer");
    queue = createScheduleQueue(connection, env.config.queuePrefix);
    const file = await env.writeCsv(
      "contacts.csv",
      csvOf(
        ["phone", "first_name"],
        singaporeNumbers(20, 90_000).map((n, i) => [n, `N${i}`]),
      ),
    );
    await importContactsFromCsv(env.db, file, { phoneColumn: "phone", tags: ["weekly"] });
  });
  afterAll(async () => {
    for (const child of children) child.kill("SIGKILL");
    await queue?.close();
    connection?.disconnect();
    await env?.cleanup();
  });

  it("validates the cron pattern and the time zone, naming the flag", () => {
    expect(validateCron("0 9 * * MON", "Asia/Singapore", new Date("2026-11-26T00:00:00Z")).toISOString()).toBe(
      "2026-11-30T01:00:00.000Z",
    );
    expect(() => validateCron("0 9 * *", "UTC")).toThrow(/cron expression "0 9 \* \*" must have 5 fields/);
    expect(() => validateCron("0 99 * * *", "UTC")).toThrow(/cron expression .* not a valid cron pattern/);
    expect(() => validateCron("0 9 * * *", "Mars/Olympus")).toThrow(
      /time zone "Mars\/Olympus" is not an IANA time zone/,
    );
    expect(() => validateCron("0 9 * * *", "Mars/Olympus")).toThrow(expect.objectContaining({ field: "timezone" }));
  });

  it("two scheduler processes fire each per-second run exactly once, each run a campaign from the audience", async () => {
    const scheduler = cronSchedulerOf(queue);
    const definition = {
      name: "every-second",
      cron: "* * * * * *",
      timezone: "Asia/Singapore",
      audience: "weekly",
      templateId: "1",
      params: { order: "W" },
      paramColumns: {},
      provider: "messages" as const,
      sendOptions: {},
    };
    await addSchedule({ db: env.db, scheduler }, definition);
    const [listed] = await listSchedules({ db: env.db, scheduler });
    expect(listed).toMatchObject({ name: "every-second", audience: "weekly" });
    expect(listed!.nextRunAt).toBeInstanceOf(Date);

    const childEnv = {
      ...process.env,
      DATABASE_URL: env.config.databaseUrl,
      REDIS_URL: env.config.redisUrl,
      QUEUE_PREFIX: env.config.queuePrefix,
      ENGAGELAB_SMS_URL: env.sandbox.url,
      ENGAGELAB_MESSAGES_URL: env.sandbox.url,
      LOG_LEVEL: "info",
    };
    const logs: string[] = [];
    for (let i = 0; i < 2; i++) {
      const child = spawn(process.execPath, ["--import", "tsx", "workers/scheduler.ts"], {
        cwd: ROOT,
        env: childEnv,
        stdio: ["ignore", "ignore", "pipe"],
      });
      child.stderr.on("data", (chunk: Buffer) => logs.push(chunk.toString()));
      children.push(child);
    }
    // Both processes up before counting: on a loaded machine one can take seconds longer to start.
    await waitFor(
      () => Promise.resolve(logs.join("").match(/"msg":"scheduler started"/g)?.length === 2 ? true : undefined),
      60_000,
      100,
    );
    const runs = await waitFor(
      async () => {
        const campaigns = await env.db.prisma.campaign.findMany({ where: { runKey: { startsWith: "every-second:" } } });
        return campaigns.length >= 4 ? campaigns : undefined;
      },
      30_000,
      200,
    );
    await removeSchedule({ db: env.db, scheduler }, "every-second");
    for (const child of children) child.kill("SIGTERM");
    await Promise.all(
      children.map((c) => new Promise((resolve) => (c.exitCode !== null ? resolve(null) : c.once("exit", resolve)))),
    );

    const all = await env.db.prisma.campaign.findMany({
      where: { runKey: { startsWith: "every-second:" } },
      orderBy: { createdAt: "asc" },
    });
    expect(all.length).toBeGreaterThanOrEqual(runs.length);
    expect(new Set(all.map((c) => c.runKey)).size).toBe(all.length);
    // One campaign per firing: the firing time is the last part of the job id BullMQ gives each firing.
    const firings = all.map((c) => Number(c.runKey!.split(":").pop()));
    expect(firings.every((ms) => Number.isInteger(ms) && ms % 1000 === 0)).toBe(true);
    expect(new Set(firings).size).toBe(firings.length);
    expect(all.every((c) => c.recipientCount === 20 && c.source === "tag:weekly")).toBe(true);
    const output = logs.join("");
    expect(output).toContain('"outcome":"launched"');
    // BullMQ gave each firing to one process. The one exception: a firing that a starting scheduler caught up
    // (issue 13.6) while the other's BullMQ job for it was in flight, which the run key then kept single.
    const lines = output
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as { msg?: string; outcome?: string; firingId?: string; firingAt?: string });
    const caughtUp = new Set(
      lines.filter((l) => l.msg === "missed schedule firing run at start-up").map((l) => Date.parse(l.firingAt!)),
    );
    const alreadyFired = lines
      .filter((l) => l.outcome === "already-fired")
      .map((l) => Number(l.firingId!.split(":").pop()));
    expect(alreadyFired.filter((ms) => !caughtUp.has(ms))).toEqual([]);
    // Both processes were up and synced the schedulers from Postgres.
    expect(output.match(/"msg":"scheduler started"/g)).toHaveLength(2);
  });

  it("keeps --no-template-check for every firing, not only when the schedule is added", async () => {
    const scheduler = cronSchedulerOf(queue);
    const templates = { get: (): Promise<never> => Promise.reject(new Error("the template API must not be asked")) };
    await addSchedule(
      { db: env.db, scheduler, templates },
      {
        name: "unchecked",
        cron: "0 9 * * MON",
        timezone: "UTC",
        audience: "weekly",
        templateId: "otp-1",
        params: {},
        paramColumns: {},
        provider: "messages",
        sendOptions: {},
        templateCheck: false,
      },
    );
    const stored = await env.db.prisma.schedule.findUniqueOrThrow({ where: { name: "unchecked" } });
    expect(stored.templateCheck).toBe(false);
    await removeSchedule({ db: env.db, scheduler }, "unchecked");
  });

  it("refuses to remove a schedule that does not exist", async () => {
    await expect(removeSchedule({ db: env.db, scheduler: cronSchedulerOf(queue) }, "nope")).rejects.toThrow(
      ScheduleError,
    );
  });
});

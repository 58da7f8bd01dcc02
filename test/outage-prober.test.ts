// The outage prober's round against the real sandbox and database (no worker): which pauses it resumes, which
// it never touches, and the probes of each platform.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { probeAndResume } from "../src/campaigns/outage-prober.ts";
import { createProviders, type ProviderRegistry } from "../src/engagelab/providers.ts";
import { RedisOutageStreaks } from "../src/queue/outage-streak.ts";
import { createRedisConnection } from "../src/queue/redis.ts";
import { pauseRunningCampaign } from "../src/store/batch-repository.ts";
import { launchCampaign } from "./helpers/campaign-runner.ts";
import { createTestEnv, csvOf, singaporeNumbers, type TestEnv } from "./helpers/test-env.ts";

describe("outage prober", { timeout: 120_000 }, () => {
  let env: TestEnv;
  let registry: ProviderRegistry;
  let redis: ReturnType<typeof createRedisConnection>;
  let streaks: RedisOutageStreaks;
  const enqueued: string[] = [];
  let next = 0;

  beforeAll(async () => {
    env = await createTestEnv("outage_prober");
    registry = createProviders(env.config);
    redis = createRedisConnection(env.config.redisUrl, "producer");
    streaks = new RedisOutageStreaks(redis, env.config.queuePrefix);
  });
  afterAll(async () => {
    await registry?.close();
    redis?.disconnect();
    await env?.cleanup();
  });

  /** A campaign paused an hour ago with this kind and this many automatic resumes behind it. */
  async function pausedCampaign(kind: "outage" | "account" | "user", autoResumes: number): Promise<string> {
    const file = await env.writeCsv(`c${next}.csv`, csvOf(["phone"], [[singaporeNumbers(1, next++)[0]!]]));
    const { campaignId } = await launchCampaign(env, { file });
    await pauseRunningCampaign(env.db.pool, campaignId, "test pause", kind);
    await env.db.pool.query(
      `UPDATE campaigns SET paused_at = now() - interval '1 hour', auto_resumes = $2 WHERE id = $1`,
      [campaignId, autoResumes],
    );
    return campaignId;
  }

  const round = () =>
    probeAndResume({
      db: env.db,
      queue: {
        enqueue: (campaignId) => Promise.resolve(void enqueued.push(campaignId)),
        scheduleStart: () => Promise.resolve(),
      },
      log: env.log,
      probe: registry.probe,
      outage: streaks,
      policy: { max: 5, backoffMs: 1_000 },
    });

  const status = async (id: string) =>
    (
      await env.db.pool.query<{ status: string; pause_kind: string | null; auto_resumes: number }>(
        `SELECT status, pause_kind, auto_resumes FROM campaigns WHERE id = $1`,
        [id],
      )
    ).rows[0];

  it("probes each platform without sending: any answer below 500 is up, a 5xx is down", async () => {
    for (const api of ["messages", "legacy", "custom"] as const)
      expect(await registry.probe(api)).toMatchObject({ up: true });
    env.sandbox.setOptions({ errorRate: 1 });
    try {
      expect(await registry.probe("messages")).toEqual({ up: false, detail: "HTTP 500" });
      expect(await registry.probe("custom")).toMatchObject({ up: false });
    } finally {
      env.sandbox.setOptions({ errorRate: 0 });
    }
    // Down (the sandbox's outage knob): the template list fails too, so the legacy probe says down.
    env.sandbox.setOptions({ down: true });
    try {
      for (const api of ["messages", "legacy", "custom"] as const)
        expect(await registry.probe(api)).toEqual({ up: false, detail: "HTTP 500" });
    } finally {
      env.sandbox.setOptions({ down: false });
    }
    expect(env.sandbox.ledger.stats().accepted).toMatchObject({ messages: 0, legacy: 0, custom: 0 });
  });

  it("resumes only outage pauses below AUTO_RESUME_MAX, and only when the probe answers; resets the streak", async () => {
    const outage = await pausedCampaign("outage", 4);
    const exhausted = await pausedCampaign("outage", 5);
    const account = await pausedCampaign("account", 0);
    const user = await pausedCampaign("user", 0);
    await streaks.recordDown("messages", "HTTP 502");

    env.sandbox.setOptions({ errorRate: 1 });
    try {
      expect(await round()).toEqual({ resumed: [], probed: ["messages"] });
    } finally {
      env.sandbox.setOptions({ errorRate: 0 });
    }
    expect(await status(outage)).toMatchObject({ status: "paused", auto_resumes: 4 });
    expect((await streaks.read("messages")).failures).toBe(1);

    expect(await round()).toEqual({ resumed: [outage], probed: ["messages"] });
    expect(enqueued).toEqual([outage]);
    expect(await status(outage)).toMatchObject({ status: "running", pause_kind: null, auto_resumes: 5 });
    expect((await streaks.read("messages")).failures).toBe(0);
    for (const [id, kind, times] of [
      [exhausted, "outage-exhausted", 5],
      [account, "account", 0],
      [user, "user", 0],
    ] as const)
      expect(await status(id)).toEqual({ status: "paused", pause_kind: kind, auto_resumes: times });
    expect(await round()).toEqual({ resumed: [], probed: [] });
    expect((await env.db.pool.query(`SELECT status_reason FROM campaigns WHERE id = $1`, [exhausted])).rows[0]).toEqual(
      { status_reason: "test pause (resumed by itself 5 times, AUTO_RESUME_MAX; waiting for a person)" },
    );
  });
});

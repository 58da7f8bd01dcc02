import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getCampaignStatus } from "../src/campaigns/campaign-status.ts";
import { parseRate, sendOptionsOf } from "../src/campaigns/launch-request.ts";
import { sendOneMessage } from "../src/campaigns/send-one.ts";
import { loadConfig } from "../src/config/config.ts";
import { createProviders } from "../src/engagelab/providers.ts";
import { RateGate } from "../src/queue/rate-gate.ts";
import { createRedisConnection } from "../src/queue/redis.ts";
import type { SandboxRequest } from "../src/sandbox/server.ts";
import { launchCampaign, sandboxLedger, startWorker, waitForCampaignEnd } from "./helpers/campaign-runner.ts";
import { csvOf, createTestEnv, singaporeNumbers, waitFor, type TestEnv } from "./helpers/test-env.ts";
import { importContactsFromCsv } from "../src/recipients/audience-import.ts";
import { startTestApi, type ApiError, type Launched } from "./helpers/api-client.ts";
import { cliEnv, runCli } from "./helpers/cli.ts";

// The shared rates of src/queue/rate-gate.ts, measured by the sandbox's own request timestamps. Bounds are
// generous (a request trails its slot by the claim, which a loaded machine stretches): each one is still far
// from what a missing or per-process limit would give.

/** The most requests that arrived within any `windowMs`. */
function busiest(times: number[], windowMs = 1_000): number {
  return Math.max(0, ...times.map((t) => times.filter((u) => u >= t && u < t + windowMs).length));
}
const span = (times: number[]) => (times.length ? Math.max(...times) - Math.min(...times) : 0);
const arrivals = (times: number[]) => `arrivals (ms): ${JSON.stringify(times.map((t) => t - times[0]!))}`;
/** Arrival times of the requests carrying any of these numbers. */
function timesOf(requests: SandboxRequest[], numbers: string[]): number[] {
  const wanted = new Set(numbers.map((n) => n.replace(/\D/g, "")));
  return requests
    .filter((r) => r.targets.some((t) => wanted.has(t.replace(/\D/g, ""))))
    .map((r) => r.receivedAt)
    .sort((a, b) => a - b);
}

async function maxAttempts(env: TestEnv, campaignId: string): Promise<number> {
  const { rows } = await env.db.pool.query<{ max: number }>(
    `SELECT max(attempts)::int AS max FROM batches WHERE campaign_id = $1`,
    [campaignId],
  );
  return rows[0]!.max;
}

describe("rate settings", () => {
  it("PLATFORM_RATE_LIMITS takes platform=requests per second and names what is wrong", () => {
    const base = { QUEUE_PREFIX: "{x}" };
    expect(loadConfig({ ...base, PLATFORM_RATE_LIMITS: "messages=50, otp=20" }).send.platformRateLimits).toEqual({
      messages: 50,
      otp: 20,
    });
    expect(loadConfig(base).send.platformRateLimits).toEqual({});
    expect(() => loadConfig({ ...base, PLATFORM_RATE_LIMITS: "legacy=5" })).toThrow(
      /PLATFORM_RATE_LIMITS: "legacy=5" must be platform=requests per second.*messages, sms, otp/,
    );
    expect(() => loadConfig({ ...base, PLATFORM_RATE_LIMITS: "sms=0" })).toThrow(/PLATFORM_RATE_LIMITS: "sms=0"/);
    expect(() => loadConfig({ ...base, PLATFORM_RATE_LIMITS: "sms=1,sms=2" })).toThrow(/sms is given twice/);
  });

  it("--rate takes messages per second, minute or hour; the launch refuses a rate out of range", () => {
    expect(parseRate("50/s")).toBe(50);
    expect(parseRate("50")).toBe(50);
    expect(parseRate("600/min")).toBe(10);
    expect(parseRate("1800/h")).toBe(0.5);
    for (const bad of ["0/s", "-3/s", "fast", "10/day", ""])
      expect(() => parseRate(bad), bad).toThrow(/--rate must be/);
    expect(sendOptionsOf({ ratePerSecond: 25 })).toEqual({ ratePerSecond: 25 });
    expect(() => sendOptionsOf({ ratePerSecond: 0 })).toThrow(/campaign rate must be above 0/);
    expect(() => sendOptionsOf({ ratePerSecond: 1e9 })).toThrow(/at most 100000/);
  });
});

describe("per-platform and per-campaign rates", () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv("rategate", {
      env: { BATCH_SIZE: "10", SEND_CONCURRENCY: "4", PLATFORM_RATE_LIMITS: "messages=4" },
      // Legacy v1/send sends only templates of the legacy template store, approved.
      sandbox: { legacyTemplates: [{ id: 2336, content: "Your order: %order%" }] },
    });
  });
  afterAll(async () => {
    await env?.cleanup();
  });
  const csv = async (name: string, numbers: string[]) =>
    env.writeCsv(
      name,
      csvOf(
        ["phone"],
        numbers.map((n) => [n]),
      ),
    );

  it("the API takes ratePerSecond and stores it with the campaign; the API and the CLI refuse a bad rate naming it", async () => {
    await importContactsFromCsv(env.db, await csv("contacts.csv", singaporeNumbers(5, 90_000)), {
      phoneColumn: "phone",
      tags: ["rate"],
    });
    const api = await startTestApi(env);
    try {
      const body = {
        audience: "rate",
        templateId: "1",
        params: { order: "A-1" },
        templateCheck: false,
        startAt: new Date(Date.now() + 3_600_000).toISOString(), // scheduled: nothing is sent here
      };
      const refused = await api.json<ApiError>("POST", "/api/v1/campaigns", { body: { ...body, ratePerSecond: 0 } });
      expect(refused.status).toBe(400);
      expect(JSON.stringify(refused.body)).toMatch(/ratePerSecond/);
      const launched = await api.json<Launched>("POST", "/api/v1/campaigns", { body: { ...body, ratePerSecond: 2.5 } });
      expect(launched.status).toBe(201);
      const { rows } = await env.db.pool.query<{ send_options: Record<string, unknown> }>(
        `SELECT send_options FROM campaigns WHERE id = $1`,
        [launched.body.campaignId],
      );
      expect(rows[0]?.send_options).toMatchObject({ ratePerSecond: 2.5 });
    } finally {
      await api.server.stop();
    }
    const cli = await runCli(
      ["send", await csv("cli.csv", singaporeNumbers(3, 91_000)), "--template", "1", "--rate", "fast"],
      cliEnv(env),
    );
    expect(cli.code).not.toBe(0);
    expect(cli.output).toMatch(/--rate must be messages per second, minute or hour.*50\/s.*got "fast"/);
  });

  it("a platform's limit holds its requests, not another platform's", async () => {
    const messagesNumbers = singaporeNumbers(120, 0);
    const legacyNumbers = singaporeNumbers(120, 10_000);
    const limited = await launchCampaign(env, { file: await csv("m.csv", messagesNumbers), name: "messages" });
    const other = await launchCampaign(env, {
      file: await csv("l.csv", legacyNumbers),
      name: "legacy",
      provider: "legacy",
      templateId: "2336",
    });
    const worker = await startWorker(env);
    try {
      const otherReport = await waitForCampaignEnd(env, other.campaignId);
      const limitedThen = await getCampaignStatus(env.db, limited.campaignId);
      expect(otherReport.recipients.accepted).toBe(120);
      // 12 legacy requests unpaced, 12 messages requests at 4 per second: legacy was done long before.
      expect(limitedThen.recipients.pending).toBeGreaterThan(0);
      expect((await waitForCampaignEnd(env, limited.campaignId)).recipients.accepted).toBe(120);
    } finally {
      await worker.stop();
    }
    const ledger = await sandboxLedger(env);
    expect(Object.keys(ledger)).toHaveLength(240);
    expect(Object.values(ledger).every((n) => n === 1)).toBe(true);
    const times = env.sandbox.ledger
      .requestLog({ api: "messages" })
      .map((r) => r.receivedAt)
      .sort((a, b) => a - b);
    expect(times).toHaveLength(12);
    expect(busiest(times), arrivals(times)).toBeLessThanOrEqual(8);
    // 12 slots 250 ms apart: 2.75 s from the first to the last.
    expect(span(times), arrivals(times)).toBeGreaterThanOrEqual(2_000);
    // Held back before the claim: no attempt was spent on waiting.
    expect(await maxAttempts(env, limited.campaignId)).toBe(1);
  });

  it("a campaign's own --rate paces it across workers while another campaign goes at full speed", async () => {
    const pacedNumbers = singaporeNumbers(100, 20_000);
    const freeNumbers = singaporeNumbers(100, 30_000);
    const paced = await launchCampaign(env, {
      file: await csv("paced.csv", pacedNumbers),
      name: "paced",
      provider: "legacy",
      templateId: "2336",
      sendOptions: sendOptionsOf({ ratePerSecond: 20 }),
    });
    const free = await launchCampaign(env, {
      file: await csv("free.csv", freeNumbers),
      name: "free",
      provider: "legacy",
      templateId: "2336",
    });
    const workers = [await startWorker(env), await startWorker(env)];
    try {
      expect((await waitForCampaignEnd(env, free.campaignId)).recipients.accepted).toBe(100);
      expect((await getCampaignStatus(env.db, paced.campaignId)).recipients.pending).toBeGreaterThan(0);
      expect((await waitForCampaignEnd(env, paced.campaignId)).recipients.accepted).toBe(100);
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
    await sandboxLedger(env);
    const times = timesOf(env.sandbox.ledger.requestLog({ api: "legacy" }), pacedNumbers);
    expect(times).toHaveLength(10);
    // 20 messages per second in batches of 10: one request every 500 ms, 4.5 s for ten.
    expect(busiest(times), arrivals(times)).toBeLessThanOrEqual(4);
    expect(span(times), arrivals(times)).toBeGreaterThanOrEqual(3_500);
    expect(await maxAttempts(env, paced.campaignId)).toBe(1);
  });

  it("a custom campaign's rate paces its requests one by one inside the batch", async () => {
    const numbers = singaporeNumbers(40, 40_000);
    const campaign = await launchCampaign(env, {
      file: await csv("custom.csv", numbers),
      name: "custom paced",
      provider: "custom",
      templateId: "notification-template",
      sendOptions: sendOptionsOf({ ratePerSecond: 10 }),
    });
    const worker = await startWorker(env);
    try {
      expect((await waitForCampaignEnd(env, campaign.campaignId)).recipients.accepted).toBe(40);
    } finally {
      await worker.stop();
    }
    await sandboxLedger(env);
    const times = timesOf(env.sandbox.ledger.requestLog({ api: "custom" }), numbers);
    expect(times).toHaveLength(40);
    // 10 per second: 3.9 s for 40; CUSTOM_PARALLELISM (10) unpaced would send them within a fraction of that.
    expect(busiest(times), arrivals(times)).toBeLessThanOrEqual(15);
    expect(span(times), arrivals(times)).toBeGreaterThanOrEqual(3_000);
  });
});

describe("one global limit across the bulk lane and the priority lane", () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv("rategate_lanes", {
      env: { BATCH_SIZE: "10", SEND_CONCURRENCY: "4", SEND_RATE_LIMIT: "5" },
    });
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it("one-off sends and bulk batches together stay within SEND_RATE_LIMIT", async () => {
    const bulkNumbers = singaporeNumbers(100, 50_000);
    const oneOffNumbers = singaporeNumbers(10, 60_000);
    const file = await env.writeCsv(
      "bulk.csv",
      csvOf(
        ["phone"],
        bulkNumbers.map((n) => [n]),
      ),
    );
    const bulk = await launchCampaign(env, { file, name: "bulk" });
    const worker = await startWorker(env);
    const redis = createRedisConnection(env.config.redisUrl, "producer");
    const registry = createProviders(env.config);
    try {
      await waitFor(async () =>
        (await getCampaignStatus(env.db, bulk.campaignId)).recipients.accepted > 0 ? true : undefined,
      );
      // What the API's test send and a CLI send-one build: the deployment's gate, in the priority lane.
      const gate = new RateGate(redis, env.config.queuePrefix, { requestsPerSecond: 5, perPlatform: {} });
      const deps = { db: env.db, log: env.log, providers: registry.providers, providerTimeoutMs: 3_000, gate };
      const results = await Promise.all(
        oneOffNumbers.map((to) => sendOneMessage(deps, { to, templateId: "notification-template", params: {} })),
      );
      expect(results.map((r) => r.state)).toEqual(Array(10).fill("accepted"));
      expect((await waitForCampaignEnd(env, bulk.campaignId)).recipients.accepted).toBe(100);
    } finally {
      await worker.stop();
      await registry.close();
      redis.disconnect();
    }
    const ledger = await sandboxLedger(env);
    expect(Object.keys(ledger)).toHaveLength(110);
    const all = env.sandbox.ledger
      .requestLog()
      .map((r) => r.receivedAt)
      .sort((a, b) => a - b);
    expect(all).toHaveLength(20);
    // 20 requests of both lanes at 5 per second: 3.8 s from the first to the last. One-off sends outside the
    // limit would all land within one second beside the bulk's 5 (15 in a second).
    expect(busiest(all), arrivals(all)).toBeLessThanOrEqual(10);
    expect(span(all), arrivals(all)).toBeGreaterThanOrEqual(3_000);
    expect(await maxAttempts(env, bulk.campaignId)).toBe(1);
  });

  it("each request of a custom batch takes its own slot of the global limit", async () => {
    const numbers = singaporeNumbers(20, 80_000);
    const file = await env.writeCsv(
      "custom.csv",
      csvOf(
        ["phone"],
        numbers.map((n) => [n]),
      ),
    );
    const campaign = await launchCampaign(env, {
      file,
      name: "custom under the limit",
      provider: "custom",
      templateId: "notification-template",
    });
    const worker = await startWorker(env);
    try {
      expect((await waitForCampaignEnd(env, campaign.campaignId)).recipients.accepted).toBe(20);
    } finally {
      await worker.stop();
    }
    await sandboxLedger(env);
    const times = timesOf(env.sandbox.ledger.requestLog({ api: "custom" }), numbers);
    expect(times).toHaveLength(20);
    // Two batches of 10, CUSTOM_PARALLELISM 10: unpaced, all 20 within a fraction of a second; at 5 per second 3.8 s.
    expect(busiest(times), arrivals(times)).toBeLessThanOrEqual(10);
    expect(span(times), arrivals(times)).toBeGreaterThanOrEqual(3_000);
  });

  it("a CLI send-one goes through the gate when a limit is set (it connects to Redis only then)", async () => {
    const before = env.sandbox.ledger.requestLog({ api: "custom" }).length;
    const result = await runCli(
      ["send-one", singaporeNumbers(1, 70_000)[0]!, "--template", "notification-template"],
      cliEnv(env, { SEND_RATE_LIMIT: "5" }),
    );
    expect(result.code, result.output).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ state: "accepted" });
    expect(env.sandbox.ledger.requestLog({ api: "custom" }).length).toBe(before + 1);
  });
});

// The callback receiver's refusals, a receiver outage longer than the timestamp window, and STOP replies.
import { createHmac, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApiToken } from "../src/access/api-tokens.ts";
import { startApiServer, type RunningApiServer } from "../src/runtime/api-server.ts";
import { DeliveryMetrics } from "../src/runtime/delivery-metrics.ts";
import { startDeliveryWorker, type RunningDeliveryWorker } from "../src/runtime/delivery-worker-runtime.ts";
import type { RunningSendWorker } from "../src/runtime/send-worker-runtime.ts";
import { countDeliveryEvents } from "../src/store/delivery-repository.ts";
import { launchCampaign, startWorker, waitForCampaignEnd } from "./helpers/campaign-runner.ts";
import { createTestEnv, csvOf, singaporeNumbers, waitFor, type TestEnv } from "./helpers/test-env.ts";

const CALLBACK = { username: "cb-user", secret: "cb-secret-for-tests" };

describe("delivery callbacks: refusals, outage, replies", () => {
  let env: TestEnv;
  let api: RunningApiServer;
  let sender: RunningSendWorker;
  let applier: RunningDeliveryWorker;
  const metrics = new DeliveryMetrics();
  let offsetMs = 0;
  const clock = () => Date.now() + offsetMs;
  let campaignId: string;
  const phones = singaporeNumbers(200, 5_000);

  const signed = (timestampSeconds: number, nonce = randomBytes(8).toString("hex"), secret = CALLBACK.secret) => {
    const t = String(timestampSeconds);
    const signature = createHmac("sha256", secret)
      .update(t + nonce + CALLBACK.username)
      .digest("hex");
    return { "x-callback-id": `timestamp=${t};nonce=${nonce};username=${CALLBACK.username};signature=${signature}` };
  };
  const post = (headers: Record<string, string>, body?: string | Blob, path = "/callbacks/engagelab") =>
    fetch(`${api.url}${path}`, { method: "POST", headers, body });
  const nowSeconds = () => Math.floor(clock() / 1000);
  const snapshot = async () => {
    const { rows } = await env.db.pool.query<{ state: string; n: number }>(
      `SELECT state, count(*)::int AS n FROM recipient_outcomes GROUP BY state ORDER BY state`,
    );
    return {
      states: rows,
      events: await countDeliveryEvents(env.db.pool),
      nonces: (await env.db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM callback_nonces`)).rows[0]!.n,
    };
  };

  beforeAll(async () => {
    env = await createTestEnv("delivery_cb", {
      env: {
        CALLBACK_USERNAME: CALLBACK.username,
        CALLBACK_SECRET: CALLBACK.secret,
        DELIVERY_SWEEP_INTERVAL_MS: "1000",
        DELIVERY_RETRY_MS: "200",
      },
      sandbox: { clock },
    });
    api = await startApiServer(env.config, env.log, { port: 0, nowMs: clock, deliveryMetrics: metrics });
    sender = await startWorker(env);
    applier = await startDeliveryWorker(env.config, env.log);
    const campaign = await launchCampaign(env, {
      file: await env.writeCsv(
        "a.csv",
        csvOf(
          ["phone"],
          phones.map((p) => [p]),
        ),
      ),
      name: "cb",
    });
    campaignId = campaign.campaignId;
    await waitForCampaignEnd(env, campaignId);
  });
  afterAll(async () => {
    await applier?.stop();
    await sender?.stop();
    await api?.stop();
    await env?.cleanup();
  });

  it("answers the verification POST (empty or {}, any content type) with 200 and stores nothing", async () => {
    const before = await snapshot();
    expect((await post({})).status).toBe(200);
    expect((await post({ "content-type": "application/json" }, "")).status).toBe(200);
    expect((await post({ "content-type": "application/json" }, "{}")).status).toBe(200);
    expect((await post({ "content-type": "text/plain" }, "{}")).status).toBe(200);
    expect(await snapshot()).toEqual(before);
  });

  it("refuses a forged signature, a stale timestamp, a 10 MB body and invalid JSON without changing anything; counts each", async () => {
    const batch = (
      await env.db.pool.query<{ id: string }>(
        `SELECT id FROM batches WHERE campaign_id = $1 ORDER BY sequence LIMIT 1`,
        [campaignId],
      )
    ).rows[0]!.id;
    const body = JSON.stringify({
      total: 1,
      rows: [
        {
          message_id: "1",
          to: phones[0]!.slice(1),
          custom_args: { campaign_id: campaignId, batch_id: batch },
          status: { message_status: "delivered" },
        },
      ],
    });
    const before = await snapshot();
    const forged = await post(
      { "content-type": "application/json", ...signed(nowSeconds(), undefined, "not-the-secret") },
      body,
    );
    const stale = await post({ "content-type": "application/json", ...signed(nowSeconds() - 6 * 60) }, body);
    const staleMs = await post({ "content-type": "application/json", ...signed((nowSeconds() + 6 * 60) * 1000) }, body);
    const missing = await post({ "content-type": "application/json" }, body);
    const huge = await post(
      { "content-type": "application/json", ...signed(nowSeconds()) },
      new Blob([new Uint8Array(10 * 1024 * 1024).fill(0x20)]),
    );
    const invalid = await post({ "content-type": "application/json", ...signed(nowSeconds()) }, '{"rows": [');
    const shapeless = await post({ "content-type": "application/json", ...signed(nowSeconds()) }, '{"total": 1}');
    expect([
      forged.status,
      stale.status,
      staleMs.status,
      missing.status,
      huge.status,
      invalid.status,
      shapeless.status,
    ]).toEqual([401, 401, 401, 401, 413, 400, 400]);
    expect(((await invalid.json()) as { error: { message: string } }).error.message).toMatch(/not valid JSON/);
    expect(await snapshot()).toEqual(before);
    expect(Object.fromEntries(metrics.refusals)).toEqual({
      bad_signature: 2,
      stale_timestamp: 2,
      too_large: 1,
      malformed: 2,
    });
    // The same counts on the API's GET /metrics, in Prometheus text.
    const { secret } = await createApiToken(env.db, { name: "metrics-reader", role: "viewer" });
    const scraped = await (
      await fetch(`${api.url}/metrics`, { headers: { authorization: `Bearer ${secret}` } })
    ).text();
    expect(scraped).toContain('smsblast_delivery_callback_refusals_total{reason="bad_signature"} 2');
    expect(scraped).toContain("# TYPE smsblast_delivery_reports_total counter");
    // Every callback answered so far (verifications and refusals too) is in the server-side duration histogram.
    expect(Number(/smsblast_delivery_callback_duration_seconds_count (\d+)/.exec(scraped)?.[1])).toBeGreaterThanOrEqual(
      11,
    );

    // Accepted in milliseconds too; then the same nonce again: 200, nothing stored twice.
    const nonce = randomBytes(8).toString("hex");
    expect((await post({ "content-type": "application/json", ...signed(clock(), nonce) }, body)).status).toBe(200);
    const once = await snapshot();
    expect(once.events.pending + once.events.applied).toBe(before.events.pending + before.events.applied + 1);
    expect((await post({ "content-type": "application/json", ...signed(nowSeconds(), nonce) }, body)).status).toBe(200);
    const again = (await snapshot()).events;
    expect(again.pending + again.applied).toBe(once.events.pending + once.events.applied);
    expect(metrics.outcomes.replays).toBe(1);
    await waitFor(async () =>
      (await env.db.pool.query<{ state: string }>(`SELECT state FROM recipient_outcomes WHERE phone = $1`, [phones[0]]))
        .rows[0]!.state === "delivered"
        ? true
        : undefined,
    );
  });

  it("keeps and counts rows for unknown campaigns, changing no recipient", async () => {
    const before = await snapshot();
    const foreign = {
      campaign_id: "00000000-0000-4000-8000-000000000000",
      batch_id: "00000000-0000-4000-8000-000000000001",
    };
    const body = JSON.stringify({
      total: 2,
      rows: [phones[1], phones[2]].map((p) => ({
        to: p,
        custom_args: foreign,
        status: { message_status: "delivered" },
      })),
    });
    expect((await post({ "content-type": "application/json", ...signed(nowSeconds()) }, body)).status).toBe(200);
    await waitFor(async () =>
      (await countDeliveryEvents(env.db.pool)).unmatched === before.events.unmatched + 2 ? true : undefined,
    );
    expect((await snapshot()).states).toEqual(before.states);
  });

  it("the receiver down for 6 minutes (clocks moved, not waited): the sandbox re-sends with fresh timestamps, nothing lost or applied twice", async () => {
    const port = api.port;
    await api.stop();
    env.sandbox.setOptions({
      callbacks: {
        url: `http://127.0.0.1:${port}/callbacks/engagelab`,
        ...CALLBACK,
        delayMs: 10,
        jitterMs: 50,
        retryBaseMs: 100,
        retryMaxMs: 400,
        duplicateRate: 0.2,
        outOfOrderRate: 0.2,
      },
    });
    const outagePhones = singaporeNumbers(300, 9_000);
    const campaign = await launchCampaign(env, {
      file: await env.writeCsv(
        "b.csv",
        csvOf(
          ["phone"],
          outagePhones.map((p) => [p]),
        ),
      ),
      name: "outage",
    });
    await waitForCampaignEnd(env, campaign.campaignId);
    await waitFor(() => Promise.resolve(env.sandbox.callbacks.stats().callbacksPosted > 5 ? true : undefined));
    expect(env.sandbox.callbacks.stats().callbacksAcknowledged).toBe(0);
    offsetMs += 6 * 60 * 1000;
    api = await startApiServer(env.config, env.log, { port, nowMs: clock, deliveryMetrics: metrics });
    await waitFor(() => Promise.resolve(env.sandbox.callbacks.idle() ? true : undefined), 60_000);
    await waitFor(async () =>
      (await countDeliveryEvents(env.db.pool, campaign.campaignId)).pending === 0 ? true : undefined,
    );

    const stats = env.sandbox.callbacks.stats();
    expect(stats.callbacksAbandoned).toBe(0);
    expect(stats.eventsAcknowledged).toBe(stats.eventsQueued);
    const events = await countDeliveryEvents(env.db.pool, campaign.campaignId);
    // Every event stored exactly once, however many times its callback was posted.
    expect(events.applied).toBe(stats.eventsQueued);
    const { rows } = await env.db.pool.query<{ phone: string; state: string }>(
      `SELECT phone, state FROM recipient_outcomes WHERE campaign_id = $1`,
      [campaign.campaignId],
    );
    const expected = { delivered: "delivered", undelivered: "undelivered", none: "accepted" } as const;
    for (const row of rows) expect(row.state).toBe(expected[env.sandbox.callbacks.decisionOf(row.phone)!]);
  });

  it("a STOP reply suppresses the number for the next campaign", async () => {
    const replier = phones[10]!;
    env.sandbox.callbacks.reply(replier.slice(1), " Stop ");
    env.sandbox.callbacks.reply(phones[11]!, "stop sending me offers");
    await waitFor(
      async () =>
        (await env.db.pool.query<{ reason: string }>(`SELECT reason FROM suppressions WHERE phone = $1`, [replier]))
          .rows[0]?.reason,
    );
    expect(
      (
        await env.db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM suppressions WHERE phone = $1`, [
          phones[11],
        ])
      ).rows[0]!.n,
    ).toBe(0);
    const next = await launchCampaign(env, {
      file: await env.writeCsv("c.csv", csvOf(["phone"], [[replier], [phones[12]!]])),
      name: "after stop",
    });
    expect(next.suppressedCount).toBe(1);
    const { rows } = await env.db.pool.query<{ phone: string }>(`SELECT phone FROM recipients WHERE campaign_id = $1`, [
      next.campaignId,
    ]);
    expect(rows.map((r) => r.phone)).toEqual([phones[12]]);
  });
  it("a running campaign skips numbers that replied STOP (or its own --opt-out-keyword) in batches not yet claimed", async () => {
    await sender.stop();
    const numbers = singaporeNumbers(20, 12_000);
    const [stopper, keyworder] = [numbers[3]!, numbers[15]!];
    const later = await launchCampaign(env, {
      file: await env.writeCsv(
        "later.csv",
        csvOf(
          ["phone"],
          numbers.map((p) => [p]),
        ),
      ),
      name: "later",
      batchSize: 5,
      sendOptions: { optOutKeywords: ["BASTA"] },
    });
    // Replies arrive while the campaign's batches wait in the queue (no worker is running).
    env.sandbox.callbacks.reply(stopper, "STOP");
    env.sandbox.callbacks.reply(keyworder, "basta");
    env.sandbox.callbacks.reply(phones[20]!, "basta"); // not a recipient of the campaign with that keyword
    await waitFor(async () => {
      const { rows } = await env.db.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM suppressions WHERE phone = ANY($1::text[])`,
        [[stopper, keyworder]],
      );
      return rows[0]!.n === 2 ? true : undefined;
    });
    sender = await startWorker(env);
    const report = await waitForCampaignEnd(env, later.campaignId);
    expect(report.status).toBe("completed");
    // The other 18 were sent (and may already have their delivery report): none failed, none unknown.
    expect(report.recipients).toMatchObject({ total: 20, cancelled: 2, pending: 0, failed: 0, unknown: 0 });
    const { rows: skipped } = await env.db.pool.query<{ phone: string; failure_message: string }>(
      `SELECT phone, failure_message FROM recipients WHERE campaign_id = $1 AND state = 'cancelled' ORDER BY phone`,
      [later.campaignId],
    );
    expect(skipped).toEqual([
      { phone: stopper, failure_message: "suppressed after launch: stop-reply" },
      { phone: keyworder, failure_message: "suppressed after launch: stop-reply" },
    ]);
    const sent = (await (await fetch(`${env.sandbox.url}/_sandbox/sent`)).json()) as Record<string, number>;
    expect(numbers.filter((n) => sent[n] !== 1)).toEqual([stopper, keyworder]);
    expect(sent[stopper]).toBeUndefined();
    expect((await env.db.pool.query(`SELECT 1 FROM suppressions WHERE phone = $1`, [phones[20]])).rowCount).toBe(0);
  });
});

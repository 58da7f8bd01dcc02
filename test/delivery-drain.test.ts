// The delivery applier's throughput design (README "Delivery reports"): callbacks stored one row each with
// typed keys, drained continuously (no sweep), split per event outcome, safe with concurrent appliers.
import { createHmac, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyDeliveryReports, receiveDeliveryCallback } from "../src/campaigns/delivery-reports.ts";
import { deliveryEventKey, KEY_FIELDS } from "../src/model/delivery-keys.ts";
import {
  APPLY_JOB_NAME,
  createDeliveryQueue,
  createDeliveryWorker,
  requestApply,
} from "../src/queue/delivery-queue.ts";
import { createRedisConnection } from "../src/queue/redis.ts";
import { startApiServer, type RunningApiServer } from "../src/runtime/api-server.ts";
import { startDeliveryWorker, type RunningDeliveryWorker } from "../src/runtime/delivery-worker-runtime.ts";
import {
  applyStoredEvents,
  candidateRows,
  countDeliveryEvents,
  ensureWorkListStatistics,
  KEYS_OF_JSON,
} from "../src/store/delivery-repository.ts";
import { createTestEnv, waitFor, type TestEnv } from "./helpers/test-env.ts";

const CALLBACK = { username: "cb-user", secret: "cb-secret-for-drain-tests" };
const APPLY = { limit: 2_000, retryDelayMs: 100, giveUpAfterMs: 86_400_000, maxRounds: 400 };

describe("delivery applier: callback rows, continuous draining, splits, concurrency", () => {
  let env: TestEnv;

  beforeAll(async () => {
    env = await createTestEnv("delivery_drain", {
      env: {
        CALLBACK_USERNAME: CALLBACK.username,
        CALLBACK_SECRET: CALLBACK.secret,
        // An hour: nothing in this file may depend on the sweep.
        DELIVERY_SWEEP_INTERVAL_MS: "3600000",
        DELIVERY_APPLY_BATCH: "2000",
        DELIVERY_RETRY_MS: "200",
      },
    });
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  /** A sent campaign of `size` accepted recipients in batches of 1000, written straight in SQL. */
  async function seedCampaign(
    size: number,
    prefix: string,
  ): Promise<{ id: string; batches: { id: string; sequence: number }[] }> {
    const pool = env.db.pool;
    const { rows } = await pool.query<{ id: string }>(
      `INSERT INTO campaigns (name, template_id, status, recipient_count) VALUES ('drain', 'tpl', 'completed', $1::int) RETURNING id`,
      [size],
    );
    const id = rows[0]!.id;
    const { rows: batches } = await pool.query<{ id: string; sequence: number }>(
      `INSERT INTO batches (campaign_id, sequence, size, idempotency_key, state)
       SELECT $1::uuid, s, 1000, $1::text || ':' || s, 'sent' FROM generate_series(1, ceil($2::int / 1000.0)::int) s
       RETURNING id, sequence`,
      [id, size],
    );
    await pool.query(
      `INSERT INTO recipients (campaign_id, batch_sequence, phone, row_number, state)
       SELECT $1::uuid, (i - 1) / 1000 + 1, $3 || lpad(i::text, 6, '0'), i, 'accepted' FROM generate_series(1, $2::int) i`,
      [id, size, prefix],
    );
    return { id, batches: batches.sort((a, b) => a.sequence - b.sequence) };
  }

  const phoneOf = (prefix: string, i: number) => `${prefix}${String(i).padStart(6, "0")}`;
  const row = (campaignId: string, batchId: string, phone: string, status: string, extra: object = {}) => ({
    message_id: "m-1",
    to: phone.slice(1),
    itime: Math.floor(Date.now() / 1000),
    custom_args: { campaign_id: campaignId, batch_id: batchId },
    status: { message_status: status, billing: { cost: 0.02, currency: "USD" } },
    ...extra,
  });
  const signed = () => {
    const t = String(Math.floor(Date.now() / 1000));
    const nonce = randomBytes(8).toString("hex");
    const signature = createHmac("sha256", CALLBACK.secret)
      .update(t + nonce + CALLBACK.username)
      .digest("hex");
    return { "x-callback-id": `timestamp=${t};nonce=${nonce};username=${CALLBACK.username};signature=${signature}` };
  };
  const store = (rows: object[]) =>
    receiveDeliveryCallback(
      { db: env.db, credentials: env.config.callbacks },
      { source: "engagelab", headers: signed(), body: Buffer.from(JSON.stringify({ total: rows.length, rows })) },
    );
  /** One callback: `delivered` for the 100 numbers after `from` of the campaign's first batch. */
  const storeDelivered = (campaign: { id: string; batches: { id: string }[] }, prefix: string, from: number) =>
    store(
      Array.from({ length: 100 }, (_, j) =>
        row(campaign.id, campaign.batches[0]!.id, phoneOf(prefix, from + j + 1), "delivered"),
      ),
    );
  const states = async (campaignId: string) =>
    Object.fromEntries(
      (
        await env.db.pool.query<{ state: string; n: number }>(
          `SELECT state, count(*)::int AS n FROM recipient_outcomes WHERE campaign_id = $1 GROUP BY state`,
          [campaignId],
        )
      ).rows.map((r) => [r.state, r.n]),
    );

  it("stores a callback as ONE row with typed keys that match the JSON rules", async () => {
    const campaign = await seedCampaign(3, "+6581");
    const batch = campaign.batches[0]!.id;
    const samples = [
      row(campaign.id, batch, phoneOf("+6581", 1), "delivered"),
      // another form of the number, a millisecond time, an upper-case id, a cost as text, an error
      {
        to: "006581000002",
        custom_args: { campaign_id: campaign.id.toUpperCase(), batch_id: batch.toUpperCase() },
        status: {
          message_status: "delivered_failed",
          status_data: { msg_time: Date.now() },
          error_code: 4001,
          error_detail: { message: "absent subscriber" },
          billing: { cost: "0.015", currency: "" },
        },
      },
      // no custom_args, a number as a JSON number, junk where a time and a cost should be
      {
        to: 6581000003,
        message_id: "abc",
        itime: "soon",
        status: { message_status: "sent", billing: { cost: "1e3" } },
      },
      { to: "+65 8100 0004", custom_args: { campaign_id: "not-a-uuid", batch_id: 7 }, status: {} },
    ];
    const before = (await env.db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM delivery_events`)).rows[0]!
      .n;
    expect(await store(samples)).toEqual({ kind: "stored", rows: 4 });
    const { rows } = await env.db.pool.query<{
      n: number;
      row_count: number;
      outcome: string;
      js: string;
      sql: string;
    }>(
      `SELECT (SELECT count(*)::int FROM delivery_events) AS n, row_count, outcome,
              events::text AS js, (${KEYS_OF_JSON("row")})::text AS sql
       FROM delivery_events ORDER BY id DESC LIMIT 1`,
    );
    expect(rows[0]!.n).toBe(before + 1);
    expect(rows[0]).toMatchObject({ row_count: 4, outcome: "received" });
    // The receiver's keys (JS) and the applier's fallback for rows without keys (SQL) agree field for field.
    expect(rows[0]!.js).toBe(rows[0]!.sql);
    expect(deliveryEventKey(samples[1]!)).toMatchObject({ phone: "+6581000002", errorCode: "4001", currency: null });
    expect(KEY_FIELDS).toHaveLength(11);
    // Leaves nothing waiting for the next tests: the message_id-only row would wait for its send a day.
    await applyDeliveryReports(env.db, { ...APPLY, giveUpAfterMs: 1 });
  });

  it("20,000 reports in 200 callbacks are applied continuously, with the sweep an hour away", async () => {
    const api: RunningApiServer = await startApiServer(env.config, env.log, { port: 0 });
    const applier: RunningDeliveryWorker = await startDeliveryWorker(env.config, env.log);
    try {
      const campaign = await seedCampaign(20_000, "+6590");
      const bodies: string[] = [];
      for (const batch of campaign.batches)
        for (let i = 0; i < 1000; i += 100) {
          const rows = Array.from({ length: 100 }, (_, j) =>
            row(campaign.id, batch.id, phoneOf("+6590", (batch.sequence - 1) * 1000 + i + j + 1), "delivered"),
          );
          bodies.push(JSON.stringify({ total: rows.length, rows }));
        }
      const started = Date.now();
      let next = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (next < bodies.length) {
            const body = bodies[next++]!;
            const res = await fetch(`${api.url}/callbacks/engagelab`, {
              method: "POST",
              headers: { "content-type": "application/json", ...signed() },
              body,
            });
            expect(res.status).toBe(200);
          }
        }),
      );
      await waitFor(async () => ((await states(campaign.id)).delivered === 20_000 ? true : undefined), 60_000, 100);
      const events = await countDeliveryEvents(env.db.pool, campaign.id);
      expect(events).toEqual({ pending: 0, applied: 20_000, ignored: 0, unmatched: 0 });
      // One stored row per callback, each applied whole (no split).
      const { rows } = await env.db.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM delivery_events WHERE campaign_id = $1`,
        [campaign.id],
      );
      expect(rows[0]!.n).toBe(200);
      expect(applier.metrics.reports.get("delivered")).toBe(20_000);
      console.log(`20k reports: posted and applied in ${Date.now() - started} ms (sweep every hour)`);
    } finally {
      await applier.stop();
      await api.stop();
    }
  }, 120_000);

  it("splits a callback whose events end differently, and applies the waiting one once its send is recorded", async () => {
    const campaign = await seedCampaign(4, "+6582");
    const batch = campaign.batches[0]!.id;
    // Recipient 4's send is not recorded: its row pending and its batch still sending (a pending row of a
    // sent batch reads as accepted); the other three have their own state.
    await env.db.pool.query(`UPDATE recipients SET state = 'pending' WHERE campaign_id = $1 AND phone = $2`, [
      campaign.id,
      phoneOf("+6582", 4),
    ]);
    await env.db.pool.query(`UPDATE batches SET state = 'sending' WHERE id = $1`, [batch]);
    await store([
      row(campaign.id, batch, phoneOf("+6582", 1), "delivered"),
      row(campaign.id, batch, phoneOf("+6582", 2), "target_valid"), // informational: ignored
      row(campaign.id, "00000000-0000-4000-8000-0000000000aa", phoneOf("+6582", 3), "delivered"), // no such batch
      row(campaign.id, batch, phoneOf("+6582", 4), "delivered"), // its send is not recorded yet: waits
      row(campaign.id, batch, phoneOf("+6582", 1), "sent"), // older than `delivered`: applied, changes nothing
    ]);
    // A retry delay longer than the drain, so the waiting event is not picked twice in it.
    const first = await applyDeliveryReports(env.db, { ...APPLY, retryDelayMs: 1_000 });
    expect(first).toMatchObject({
      picked: 5,
      applied: 2,
      changed: 1,
      ignored: 1,
      unmatched: 1,
      waiting: 1,
      more: false,
    });
    expect(first.nextAttemptInMs).toBeGreaterThan(0);
    expect(await countDeliveryEvents(env.db.pool, campaign.id)).toEqual({
      pending: 1,
      applied: 2,
      ignored: 1,
      unmatched: 1,
    });
    // Every event is in exactly one row, and the rows hold exactly the events they count.
    const { rows } = await env.db.pool.query<{ outcome: string; row_count: number; len: number; keys: number }>(
      `SELECT outcome, row_count, jsonb_array_length(row) AS len, cardinality(events) AS keys FROM delivery_events
       WHERE campaign_id = $1 ORDER BY outcome`,
      [campaign.id],
    );
    expect(rows).toEqual([
      { outcome: "applied", row_count: 2, len: 2, keys: 2 },
      { outcome: "ignored", row_count: 1, len: 1, keys: 1 },
      { outcome: "received", row_count: 1, len: 1, keys: 1 },
      { outcome: "unmatched", row_count: 1, len: 1, keys: 1 },
    ]);
    // The batch's send is recorded: recipient 4's row stays pending, and reads as accepted with its batch.
    await env.db.pool.query(`UPDATE batches SET state = 'sent' WHERE id = $1`, [batch]);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const second = await applyDeliveryReports(env.db, APPLY);
    expect(second).toMatchObject({ picked: 1, applied: 1, changed: 1, waiting: 0, nextAttemptInMs: null });
    expect(await states(campaign.id)).toEqual({ delivered: 2, accepted: 2 });
    expect(await countDeliveryEvents(env.db.pool, campaign.id)).toEqual({
      pending: 0,
      applied: 3,
      ignored: 1,
      unmatched: 1,
    });
  });

  it("keeps the price whichever of a recipient's events carries it, in one statement or across two", async () => {
    const campaign = await seedCampaign(4, "+6589");
    const batch = campaign.batches[0]!.id;
    const phone = (i: number) => phoneOf("+6589", i);
    const billed = (status: string, billing: object) => ({ status: { message_status: status, billing } });
    await store([
      // 1: the price comes on `sent`, the winning `delivered` has none
      row(campaign.id, batch, phone(1), "sent", billed("sent", { cost: 0.03, currency: "USD" })),
      row(campaign.id, batch, phone(1), "delivered", billed("delivered", {})),
      // 2: the winner has a cost without a currency; the currency comes on the other event
      row(campaign.id, batch, phone(2), "delivered", billed("delivered", { cost: 0.04 })),
      row(campaign.id, batch, phone(2), "sent", billed("sent", { cost: 0.05, currency: "EUR" })),
      // 3: the price on `sent` now, `delivered` without one in a later callback
      row(campaign.id, batch, phone(3), "sent", billed("sent", { cost: 0.06, currency: "SGD" })),
      // 4: never priced
      row(campaign.id, batch, phone(4), "delivered", billed("delivered", {})),
    ]);
    expect(await applyDeliveryReports(env.db, APPLY)).toMatchObject({ picked: 6, applied: 6, changed: 4 });
    await store([row(campaign.id, batch, phone(3), "delivered", billed("delivered", {}))]);
    expect(await applyDeliveryReports(env.db, APPLY)).toMatchObject({ picked: 1, changed: 1 });
    const { rows } = await env.db.pool.query<{
      phone: string;
      state: string;
      cost: string | null;
      currency: string | null;
    }>(`SELECT phone, state, cost::text, currency FROM recipients WHERE campaign_id = $1 ORDER BY phone`, [
      campaign.id,
    ]);
    expect(rows).toEqual([
      { phone: phone(1), state: "delivered", cost: "0.030000", currency: "USD" },
      { phone: phone(2), state: "delivered", cost: "0.040000", currency: "EUR" },
      { phone: phone(3), state: "delivered", cost: "0.060000", currency: "SGD" },
      { phone: phone(4), state: "delivered", cost: null, currency: null },
    ]);
  });

  it("applies a single-event row stored by the previous release (no keys, outcome pending)", async () => {
    const campaign = await seedCampaign(1, "+6583");
    await env.db.pool.query(
      `INSERT INTO delivery_events (source, row, campaign_id) VALUES ('engagelab', $1::jsonb, $2)`,
      [JSON.stringify(row(campaign.id, campaign.batches[0]!.id, phoneOf("+6583", 1), "delivered")), campaign.id],
    );
    expect(await applyDeliveryReports(env.db, APPLY)).toMatchObject({ picked: 1, applied: 1, changed: 1 });
    expect(await states(campaign.id)).toEqual({ delivered: 1 });
  });

  it("four concurrent appliers apply every event exactly once", async () => {
    const campaign = await seedCampaign(6_000, "+6584");
    for (const batch of campaign.batches)
      for (let i = 0; i < 1000; i += 50) {
        const rows = Array.from({ length: 50 }, (_, j) => {
          const phone = phoneOf("+6584", (batch.sequence - 1) * 1000 + i + j + 1);
          return row(campaign.id, batch.id, phone, j % 2 ? "delivered" : "sent");
        });
        await store(rows);
      }
    const reports = await Promise.all(
      Array.from({ length: 4 }, () => applyDeliveryReports(env.db, { ...APPLY, limit: 500 })),
    );
    // An applier that finds every ready row locked stops; whatever is left goes to the next drain.
    const rest = await applyDeliveryReports(env.db, APPLY);
    const applied = [...reports, rest].reduce((sum, r) => sum + r.applied, 0);
    expect(applied).toBe(6_000);
    expect(await countDeliveryEvents(env.db.pool, campaign.id)).toEqual({
      pending: 0,
      applied: 6_000,
      ignored: 0,
      unmatched: 0,
    });
    expect(await states(campaign.id)).toEqual({ delivered: 3_000, sent: 3_000 });
  });

  it("parallel lanes of one drain take different rows, and duplicates across them apply once", async () => {
    const campaign = await seedCampaign(4_000, "+6586");
    for (const batch of campaign.batches)
      for (let i = 0; i < 1000; i += 100) {
        const phones = Array.from({ length: 100 }, (_, j) => phoneOf("+6586", (batch.sequence - 1) * 1000 + i + j + 1));
        await store(phones.map((phone) => row(campaign.id, batch.id, phone, "sent")));
        // The same recipients again, delivered: a retry of the provider that another lane may hold.
        await store(phones.map((phone) => row(campaign.id, batch.id, phone, "delivered")));
      }
    const report = await applyDeliveryReports(env.db, { ...APPLY, limit: 300, parallel: 3 });
    expect(report).toMatchObject({ picked: 8_000, applied: 8_000, unmatched: 0, waiting: 0, more: false });
    expect(await countDeliveryEvents(env.db.pool, campaign.id)).toEqual({
      pending: 0,
      applied: 8_000,
      ignored: 0,
      unmatched: 0,
    });
    expect(await states(campaign.id)).toEqual({ delivered: 4_000 });
  });

  it("runs one statement at a time on what trickles in, pausing to let it gather, and reports each as it commits", async () => {
    const campaign = await seedCampaign(300, "+6586");
    for (let i = 0; i < 200; i += 100) await storeDelivered(campaign, "+6586", i);
    const applied: number[] = [];
    const started = Date.now();
    const drained = applyDeliveryReports(env.db, {
      ...APPLY,
      gatherMs: 400,
      onApplied: (report) => applied.push(report.applied),
    });
    // Stored during the first statement's pause: applied by the same drain, in one more statement.
    await waitFor(() => Promise.resolve(applied.length === 1 ? true : undefined), 10_000, 10);
    await storeDelivered(campaign, "+6586", 200);
    const report = await drained;
    // The two stored callbacks in one statement, the third after the pause, then a look that finds nothing.
    expect(applied).toEqual([200, 100]);
    expect(report).toMatchObject({ applied: 300, more: false });
    expect(Date.now() - started).toBeGreaterThanOrEqual(800);
    expect(await states(campaign.id)).toEqual({ delivered: 300 });
  });

  it("hands over to the next job at maxRounds instead of stopping with work left", async () => {
    const campaign = await seedCampaign(300, "+6585");
    for (let i = 0; i < 300; i += 100) await storeDelivered(campaign, "+6585", i);
    const first = await applyDeliveryReports(env.db, { ...APPLY, limit: 100, maxRounds: 2 });
    expect(first).toMatchObject({ applied: 200, more: true });
    expect(await applyDeliveryReports(env.db, { ...APPLY, limit: 100 })).toMatchObject({ applied: 100, more: false });
    expect(await applyStoredEvents(env.db, APPLY)).toMatchObject({ picked: 0 });
  });

  it("locks about the rows it needs, and reads the work list in index order even on a never-analyzed table", async () => {
    // Callbacks of 100 events: 5,000 events are ~50 rows, so ~63 locked, not hundreds; one event per row: limit rows and a margin.
    expect(candidateRows(5_000, 100)).toBe(63);
    expect(candidateRows(100, 1)).toBe(125);
    expect(candidateRows(5_000)).toBe(625);
    const pool = env.db.pool;
    await pool.query(`TRUNCATE delivery_events`);
    await pool.query(
      `INSERT INTO delivery_events (source, row, row_count, outcome, next_attempt_at)
       SELECT 'engagelab', '[]', 100, 'received', now() - make_interval(secs => i) FROM generate_series(1, 5000) i`,
    );
    const { rows: before } = await pool.query<{ reltuples: number }>(
      `SELECT reltuples FROM pg_class WHERE oid = 'delivery_events'::regclass`,
    );
    expect(before[0]!.reltuples).toBeLessThan(0);
    expect(await ensureWorkListStatistics(env.db)).toBe(true);
    expect(await ensureWorkListStatistics(env.db)).toBe(false);
    const { rows: plan } = await pool.query<{ "QUERY PLAN": string }>(
      `EXPLAIN SELECT id FROM delivery_events WHERE outcome = 'received' AND next_attempt_at <= now()
       ORDER BY next_attempt_at, id LIMIT $1 FOR UPDATE SKIP LOCKED`,
      [candidateRows(APPLY.limit, 100)],
    );
    expect(plan.map((r) => r["QUERY PLAN"]).join("\n")).toContain("Index Scan using delivery_events_received_idx");
    await pool.query(`TRUNCATE delivery_events`);
  });

  it("a drain requested while one runs is kept and runs after it; requests while one waits add nothing", async () => {
    const producer = createRedisConnection(env.config.redisUrl, "producer");
    const consumer = createRedisConnection(env.config.redisUrl, "worker");
    const prefix = `${env.config.queuePrefix}-dedup`;
    const queue = createDeliveryQueue(producer, prefix);
    let runs = 0;
    let release: () => void = () => {};
    const blocked = new Promise<void>((resolve) => (release = resolve));
    const worker = createDeliveryWorker(consumer, prefix, {
      apply: async () => {
        runs += 1;
        if (runs === 1) await blocked;
      },
      sweep: () => Promise.resolve(),
    });
    try {
      await requestApply(queue);
      await waitFor(() => Promise.resolve(runs === 1 ? true : undefined));
      // The first drain is running (it may already have looked at the work list): these must not be lost.
      await requestApply(queue);
      await requestApply(queue);
      await requestApply(queue);
      expect(await queue.getJobCounts("active")).toMatchObject({ active: 1 });
      release();
      await waitFor(() => Promise.resolve(runs === 2 ? true : undefined));
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(runs).toBe(2);
      const counts = await queue.getJobCounts("waiting", "active", "delayed");
      expect(counts).toMatchObject({ waiting: 0, active: 0, delayed: 0 });
      expect(APPLY_JOB_NAME).toBe("apply-reports");
    } finally {
      release();
      await worker.close();
      await queue.obliterate({ force: true });
      await queue.close();
      producer.disconnect();
      consumer.disconnect();
    }
  });
});

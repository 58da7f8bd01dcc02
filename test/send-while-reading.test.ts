import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { cancelCampaign } from "../src/campaigns/campaign-control.ts";
import { getCampaignStatus } from "../src/campaigns/campaign-status.ts";
import { RepeatLaunchError } from "../src/campaigns/launch-campaign.ts";
import { reconcile } from "../src/campaigns/reconciler.ts";
import type { IngestRow } from "../src/model/ingest-row.ts";
import { StreamedLaunchStoppedError, UserError } from "../src/model/errors.ts";
import { createRedisConnection } from "../src/queue/redis.ts";
import { campaignQueueOf, createSendQueue, enqueueBatches } from "../src/queue/send-queue.ts";
import type { RunningSendWorker } from "../src/runtime/send-worker-runtime.ts";
import {
  combineFingerprint,
  fingerprintParts,
  type IngestRowChunks,
  type NewCampaign,
} from "../src/store/campaign-repository.ts";
import { launchWhileReading, type StreamedLaunchOptions } from "../src/store/streamed-launch.ts";
import { launchCampaign, sandboxLedger, startWorker, waitForCampaignEnd } from "./helpers/campaign-runner.ts";
import { expectedPlan, mixedRows } from "./helpers/plan-fixture.ts";
import { createTestEnv, csvOf, singaporeNumbers, waitFor, type TestEnv } from "./helpers/test-env.ts";

// `send --stream`: batches committed and queued in steps while the list is still being read. Whatever the
// steps, the outcome must be the planned launch's (first occurrence wins, suppressed numbers out, each number
// sent once), the campaign completes only once the list is read, and a launch that stops part-way ends
// cancelled with what it sent recorded.
describe("sending while reading (send --stream)", () => {
  let env: TestEnv;
  let connection: ReturnType<typeof createRedisConnection>;
  let queue: ReturnType<typeof createSendQueue>;
  let worker: RunningSendWorker | undefined;
  const numbers = singaporeNumbers(3_000);
  const suppressed = new Set(numbers.slice(0, 20));

  const campaign: NewCampaign = {
    name: "streamed send",
    templateId: "1",
    templateParams: { order: "S-1" },
    provider: "messages",
    onUnknown: "at_most_once",
    sendOptions: {},
    source: "test",
  };

  /** 6,000 rows: every 50th not a number, the others the 3,000 numbers in a shuffled order, most twice. */
  const rows = mixedRows(numbers, 6_000);
  const expected = expectedPlan(rows, (phone) => suppressed.has(phone));

  beforeAll(async () => {
    env = await createTestEnv("send-while-reading", {
      env: { BATCH_SIZE: "100", SEND_CONCURRENCY: "2" },
      sandbox: { latencyMs: 5 },
    });
    connection = createRedisConnection(env.config.redisUrl, "producer");
    queue = createSendQueue(connection, { prefix: env.config.queuePrefix, attempts: 3, backoffMs: 50 });
    await env.db.pool.query(`INSERT INTO suppressions (phone, reason) SELECT unnest($1::text[]), 'opt-out'`, [
      [...suppressed],
    ]);
  });
  afterAll(async () => {
    await worker?.stop();
    await queue?.close();
    connection?.disconnect();
    await env?.cleanup();
  });
  beforeEach(async () => {
    await fetch(`${env.sandbox.url}/_sandbox/reset`, { method: "POST" });
  });

  const enqueue = (campaignId: string, batchIds: readonly string[]) => enqueueBatches(queue, campaignId, batchIds);
  const reconcileNow = () =>
    reconcile({ db: env.db, queue: campaignQueueOf(queue), log: env.log, providerTimeoutMs: 3000 });

  /** The rows in chunks of 250, as the CSV reader hands them on; `between` runs before each chunk after the first. */
  async function* chunksOf(list: IngestRow[], between?: (chunkIndex: number) => Promise<void>) {
    for (let i = 0; i < list.length; i += 250) {
      if (i > 0) await between?.(i / 250);
      yield list.slice(i, i + 250);
    }
  }

  const launch = (chunks: IngestRowChunks, options: Partial<StreamedLaunchOptions> = {}) =>
    launchWhileReading(env.db, { ...campaign, name: `streamed ${Math.random()}` }, chunks, {
      batchSize: 100,
      enqueue,
      recipientsPerStep: 500,
      ...options,
    });

  async function stored(campaignId: string) {
    const { rows: recipients } = await env.db.pool.query<{ phone: string; row_number: number; batch_sequence: number }>(
      `SELECT phone, row_number, batch_sequence FROM recipients WHERE campaign_id = $1 ORDER BY row_number`,
      [campaignId],
    );
    const { rows: rejects } = await env.db.pool.query<{ row_number: number; reason: string }>(
      `SELECT row_number, reason FROM rejects WHERE campaign_id = $1 ORDER BY row_number`,
      [campaignId],
    );
    const { rows: batches } = await env.db.pool.query<{ sequence: number; size: number }>(
      `SELECT sequence, size FROM batches WHERE campaign_id = $1 ORDER BY sequence`,
      [campaignId],
    );
    const { rows: campaigns } = await env.db.pool.query<{
      status: string;
      reading: boolean;
      recipient_count: number;
      batch_count: number;
      rejected_count: number;
      duplicate_count: number;
      suppressed_count: number;
    }>(
      `SELECT status, reading_heartbeat_at IS NOT NULL AS reading, recipient_count, batch_count, rejected_count,
              duplicate_count, suppressed_count FROM campaigns WHERE id = $1`,
      [campaignId],
    );
    return { recipients, rejects, batches, campaign: campaigns[0] };
  }

  function expectThePlannedOutcome(result: Awaited<ReturnType<typeof stored>>) {
    expect(result.recipients.map((r) => [r.phone, r.row_number])).toEqual(expected.recipients);
    expect(result.rejects.map((r) => [r.row_number, r.reason])).toEqual(expected.rejects);
    const perSequence = new Map<number, number>();
    for (const r of result.recipients) perSequence.set(r.batch_sequence, (perSequence.get(r.batch_sequence) ?? 0) + 1);
    expect(result.batches.map((b) => [b.sequence, b.size])).toEqual([...perSequence].sort((a, b) => a[0] - b[0]));
    expect(result.batches.every((b) => b.size <= 100)).toBe(true);
    expect(result.campaign).toMatchObject({
      reading: false,
      recipient_count: expected.recipients.length,
      batch_count: result.batches.length,
      rejected_count: expected.rejects.filter(([, reason]) => !reason.startsWith("duplicate")).length,
      duplicate_count: expected.rejects.filter(([, reason]) => reason.startsWith("duplicate")).length,
      suppressed_count: expected.rejects.filter(([, reason]) => reason === "suppressed").length,
    });
  }

  it("commits and queues batches in steps while reading: each step visible before the next row is read", async () => {
    const seen: Array<{ batches: number; committed: number; status: string; reading: boolean }> = [];
    const result = await launchWhileReading(env.db, campaign, chunksOf(rows), {
      batchSize: 100,
      recipientsPerStep: 500,
      // Every step's batches are in the database, with their campaign running, when they are handed on.
      enqueue: async (campaignId, batchIds) => {
        const { rows: found } = await env.db.pool.query<{ n: number; status: string; reading: boolean }>(
          `SELECT (SELECT count(*)::int FROM batches WHERE id = ANY($2::uuid[]) AND state = 'queued') AS n,
                  status, reading_heartbeat_at IS NOT NULL AS reading FROM campaigns WHERE id = $1`,
          [campaignId, batchIds],
        );
        seen.push({ batches: batchIds.length, committed: found[0]!.n, ...found[0]! });
      },
    });
    expect(result.steps).toBeGreaterThan(4);
    expect(seen.length).toBeGreaterThan(4);
    expect(seen.every((s) => s.committed === s.batches && s.status === "running")).toBe(true);
    // All but the last step were handed on while the list was still being read.
    expect(seen.slice(0, -1).every((s) => s.reading)).toBe(true);
    expect(seen.reduce((n, s) => n + s.batches, 0)).toBe(result.batchIds.length);
    expectThePlannedOutcome(await stored(result.campaignId));
    // Never sent: a worker's start-up reconcile would queue it for the next test's worker.
    await cancelCampaign(env.db, result.campaignId);
  });

  it("a filter that 'may have seen' nearly every number: still the planned outcome (held rows settled last)", async () => {
    const result = await launch(chunksOf(rows), { seenFilterLog2Bits: 9, enqueue: async () => {} });
    expectThePlannedOutcome(await stored(result.campaignId));
    await cancelCampaign(env.db, result.campaignId);
  });

  it("sends while reading, completes only once the list is read, and every number once", async () => {
    worker = await startWorker(env);
    let campaignId: string | undefined;
    let sentWhileReading = 0;
    let statusWhileReading = "";
    let reportedReading = false;
    const result = await launch(
      chunksOf(rows, async (chunk) => {
        if (chunk !== 12) return;
        // Half-way through the list: wait until every batch queued so far has been sent.
        const { rows: open } = await env.db.pool.query<{ id: string }>(
          `SELECT id FROM campaigns WHERE reading_heartbeat_at IS NOT NULL ORDER BY created_at DESC LIMIT 1`,
        );
        campaignId = open[0]!.id;
        await waitFor(async () => {
          const { rows: b } = await env.db.pool.query<{ open: number; sent: number }>(
            `SELECT count(*) FILTER (WHERE state <> 'sent')::int AS open, count(*) FILTER (WHERE state = 'sent')::int AS sent
             FROM batches WHERE campaign_id = $1`,
            [campaignId],
          );
          return b[0]!.sent > 0 && b[0]!.open === 0 ? b[0]!.sent : undefined;
        }, 20_000);
        const { rows: c } = await env.db.pool.query<{ status: string; sent: number }>(
          `SELECT status, (SELECT count(*)::int FROM batches WHERE campaign_id = $1 AND state = 'sent') AS sent
           FROM campaigns WHERE id = $1`,
          [campaignId],
        );
        statusWhileReading = c[0]!.status;
        reportedReading = (await getCampaignStatus(env.db, campaignId)).readingList;
        sentWhileReading = c[0]!.sent;
      }),
    );
    expect(result.campaignId).toBe(campaignId);
    // No batch was open, yet the campaign was not completed: the list was still being read.
    expect(sentWhileReading).toBeGreaterThan(0);
    expect(statusWhileReading).toBe("running");
    // `smsblast status`, the API and the console say so.
    expect(reportedReading).toBe(true);
    const end = await waitForCampaignEnd(env, result.campaignId);
    expect(end.status).toBe("completed");
    expect(end.readingList).toBe(false);
    expectThePlannedOutcome(await stored(result.campaignId));
    const ledger = await sandboxLedger(env);
    expect(Object.keys(ledger).sort()).toEqual(expected.recipients.map(([phone]) => phone).sort());
    expect(Object.values(ledger).every((times) => times === 1)).toBe(true);
  });

  it("a list that breaks part-way: cancelled, with what was sent recorded and nothing more sent", async () => {
    const broken = async function* () {
      yield* chunksOf(rows.slice(0, 2_000));
      throw new UserError("csv_input", "row 2002: invalid UTF-8 in column phone", { row: 2002 });
    };
    const error = await launch(broken()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StreamedLaunchStoppedError);
    const stoppedError = error as StreamedLaunchStoppedError;
    expect(stoppedError.row).toBe(2002);
    expect(stoppedError.message).toMatch(
      /^row 2002: invalid UTF-8 in column phone; campaign \S+ was cancelled: \d+ recipients in \d+ requests had been queued/,
    );
    const after = await stored(stoppedError.campaignId);
    expect(after.campaign).toMatchObject({ status: "cancelled", reading: false });
    // Only batched recipients remain: none left pending without a batch.
    const batched = new Set(after.batches.map((b) => b.sequence));
    expect(after.recipients.every((r) => batched.has(r.batch_sequence))).toBe(true);
    expect(after.batches.length).toBe(stoppedError.stopped.batches);
    // The committed steps' rejected rows are kept, and counted.
    expect(after.rejects.length).toBeGreaterThan(0);
    expect(after.campaign!.rejected_count).toBe(after.rejects.length);
    await waitFor(async () => {
      const { rows: open } = await env.db.pool.query(
        `SELECT 1 FROM batches WHERE campaign_id = $1 AND state IN ('queued', 'sending', 'retrying')`,
        [stoppedError.campaignId],
      );
      return open.length === 0 ? true : undefined;
    });
    const { rows: states } = await env.db.pool.query<{ state: string }>(
      `SELECT DISTINCT state FROM batches WHERE campaign_id = $1`,
      [stoppedError.campaignId],
    );
    expect(states.every((s) => s.state === "sent" || s.state === "cancelled")).toBe(true);
  });

  it("a list that breaks before its first batch: nothing stored, the reader's own error", async () => {
    // Two chunks, each a step of its own (stepMaxMs 0): 80 recipients committed, too few for a batch.
    const broken = function* () {
      yield rows.slice(0, 50);
      yield rows.slice(50, 80);
      throw new UserError("csv_input", "row 82: invalid UTF-8", { row: 82 });
    };
    const count = async (sql: string) => (await env.db.pool.query<{ n: number }>(sql)).rows[0]!.n;
    const campaigns = `SELECT count(*)::int AS n FROM campaigns`;
    const before = await count(campaigns);
    const error = await launch(broken(), { stepMaxMs: 0 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect(error).not.toBeInstanceOf(StreamedLaunchStoppedError);
    expect((error as UserError).message).toBe("row 82: invalid UTF-8");
    expect(await count(campaigns)).toBe(before);
    // recipients has no foreign key to campaigns: the committed recipients went with it, explicitly.
    expect(
      await count(
        `SELECT count(*)::int AS n FROM recipients r WHERE NOT EXISTS (SELECT 1 FROM campaigns c WHERE c.id = r.campaign_id)`,
      ),
    ).toBe(0);
  });

  it("cancelled while reading: the launch stops at its next step and says so", async () => {
    let cancelled = false;
    const error = await launch(
      chunksOf(rows, async (chunk) => {
        if (chunk !== 8 || cancelled) return;
        const { rows: open } = await env.db.pool.query<{ id: string }>(
          `SELECT id FROM campaigns WHERE reading_heartbeat_at IS NOT NULL ORDER BY created_at DESC LIMIT 1`,
        );
        await cancelCampaign(env.db, open[0]!.id, "stopped by the test");
        cancelled = true;
      }),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StreamedLaunchStoppedError);
    expect((error as Error).message).toMatch(/was cancelled while its list was being read/);
    const after = await stored((error as StreamedLaunchStoppedError).campaignId);
    expect(after.campaign).toMatchObject({ status: "cancelled", reading: false });
  });

  it("Ctrl-C while reading (the signal): the open step rolls back and the campaign is cancelled", async () => {
    const interrupt = new AbortController();
    const error = await launch(
      chunksOf(rows, (chunk) => {
        if (chunk === 8) interrupt.abort();
        return Promise.resolve();
      }),
      { signal: interrupt.signal },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StreamedLaunchStoppedError);
    expect((error as Error).message).toMatch(
      /^interrupted \(Ctrl-C\) after reading \d+ rows of the file; campaign \S+ was cancelled/,
    );
    const after = await stored((error as StreamedLaunchStoppedError).campaignId);
    expect(after.campaign).toMatchObject({ status: "cancelled", reading: false });
    const batched = new Set(after.batches.map((b) => b.sequence));
    expect(after.recipients.every((r) => batched.has(r.batch_sequence))).toBe(true);
  });

  it("a producer that died part-way: the reconciler cancels its campaign once the heartbeat is stale", async () => {
    let stalled!: () => void;
    const hang = new Promise<void>((resolve) => (stalled = resolve));
    const launched = launch(
      chunksOf(rows, async (chunk) => {
        if (chunk === 8) await hang;
      }),
    ).catch((e: unknown) => e);
    const campaignId = await waitFor(async () => {
      const { rows: open } = await env.db.pool.query<{ id: string }>(
        `SELECT c.id FROM campaigns c WHERE reading_heartbeat_at IS NOT NULL AND batch_count > 0`,
      );
      return open[0]?.id;
    });
    // A fresh heartbeat is left alone.
    const fresh = await reconcileNow();
    expect(fresh.staleReadingsCancelled).toBe(0);
    await env.db.pool.query(`UPDATE campaigns SET reading_heartbeat_at = now() - interval '10 minutes' WHERE id = $1`, [
      campaignId,
    ]);
    const report = await reconcileNow();
    expect(report.staleReadingsCancelled).toBe(1);
    const after = await stored(campaignId);
    expect(after.campaign).toMatchObject({ status: "cancelled", reading: false });
    // The producer was only stalled: when it goes on, it finds the campaign cancelled and stops.
    stalled();
    const error = await launched;
    expect(error).toBeInstanceOf(StreamedLaunchStoppedError);
    expect((error as Error).message).toMatch(/was cancelled while its list was being read/);
  });

  it("a completion check that was lost: the reconciler completes a running campaign with nothing open", async () => {
    const result = await launch(chunksOf(rows.slice(0, 1_500)));
    const end = await waitForCampaignEnd(env, result.campaignId);
    expect(end.status).toBe("completed");
    // As if the process that recorded the last batch (or closed the list) died before its completion check.
    await env.db.pool.query(`UPDATE campaigns SET status = 'running', finished_at = NULL WHERE id = $1`, [
      result.campaignId,
    ]);
    const report = await reconcileNow();
    expect(report.campaignsCompleted).toBe(1);
    expect((await getCampaignStatus(env.db, result.campaignId)).status).toBe("completed");
  });

  describe("through the use case (smsblast send --stream)", () => {
    const header = ["phone"];
    const listRows = numbers.slice(100, 1_300).map((n) => [n]);

    it("refuses what it cannot stream, by name, before anything is stored", async () => {
      const file = await env.writeCsv("refused.csv", csvOf(header, listRows));
      for (const [input, field] of [
        [{ dryRun: true }, "dryRun"],
        [{ startAt: new Date(Date.now() + 3_600_000) }, "startAt"],
        [{ paramColumns: { name: "phone" } }, "paramColumns"],
      ] as const) {
        const error = await launchCampaign(env, { file, sendWhileReading: true, ...input }).catch((e: unknown) => e);
        expect(error).toMatchObject({ code: "stream_not_possible", field });
        expect((error as Error).message).toMatch(/^sending while reading \(--stream\) cannot be combined with /);
      }
    });

    it("guards repeats by the file before the first batch, and by the recipients once read", async () => {
      const file = await env.writeCsv("guarded.csv", csvOf(header, listRows));
      const first = await launchCampaign(env, {
        file,
        sendWhileReading: true,
        streamSteps: { recipientsPerStep: 300 },
      });
      expect(first.enqueued).toBe(true);
      expect(first.recipientCount).toBe(listRows.length);
      const campaigns = async () =>
        (await env.db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM campaigns`)).rows[0]!.n;
      const before = await campaigns();
      // The same file again, streamed or planned: refused before anything is stored.
      for (const sendWhileReading of [true, false]) {
        const again = await launchCampaign(env, { file, sendWhileReading }).catch((e: unknown) => e);
        expect(again).toBeInstanceOf(RepeatLaunchError);
        expect((again as RepeatLaunchError).earlier.campaignId).toBe(first.campaignId);
      }
      expect(await campaigns()).toBe(before);
      // The same numbers in another order: another file, found once read, and the rest cancelled.
      const reordered = await env.writeCsv("reordered.csv", csvOf(header, [...listRows].reverse()));
      const error = await launchCampaign(env, {
        file: reordered,
        sendWhileReading: true,
        streamSteps: { recipientsPerStep: 300 },
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StreamedLaunchStoppedError);
      expect(error).toMatchObject({ code: "repeat_launch", field: "allowRepeat" });
      expect((error as Error).message).toContain(`as campaign ${first.campaignId}`);
      const stopped = await stored((error as StreamedLaunchStoppedError).campaignId);
      expect(stopped.campaign!.status).toBe("cancelled");
      // With --allow-repeat the same file goes out again.
      const allowed = await launchCampaign(env, { file, sendWhileReading: true, allowRepeat: true });
      expect(allowed.recipientCount).toBe(listRows.length);
      await waitForCampaignEnd(env, allowed.campaignId);
    });

    it("the same file with another --map is another launch, not a repeat", async () => {
      const file = await env.writeCsv(
        "mapped.csv",
        csvOf(
          ["phone", "a", "b"],
          numbers.slice(2_800, 2_900).map((n, i) => [n, `a${i}`, `b${i}`]),
        ),
      );
      const first = await launchCampaign(env, { file, paramColumns: { code: "a" } });
      const second = await launchCampaign(env, { file, paramColumns: { code: "b" } });
      expect(second.campaignId).not.toBe(first.campaignId);
      const again = await launchCampaign(env, { file, paramColumns: { code: "b" } }).catch((e: unknown) => e);
      expect(again).toBeInstanceOf(RepeatLaunchError);
      for (const id of [first.campaignId, second.campaignId]) await waitForCampaignEnd(env, id);
    });

    it("the recipients' fingerprint in parts is the planned launch's, byte for byte, and finds it", async () => {
      const list = numbers.slice(2_900, 2_990).map((n, i) => [n, `v${i % 3}`]);
      const file = await env.writeCsv("parts.csv", csvOf(["phone", "v"], list));
      const personalised = await launchCampaign(env, { file, paramColumns: { code: "v" } });
      const plainFile = await env.writeCsv(
        "parts-plain.csv",
        csvOf(
          ["phone"],
          list.map(([n]) => [n!]),
        ),
      );
      const planned = await launchCampaign(env, { file: plainFile });
      const definition: NewCampaign = { ...campaign, templateParams: { order: "A-1" } };
      for (const id of [personalised.campaignId, planned.campaignId]) {
        const parts = await fingerprintParts(env.db.pool, id, definition, { from: 0, to: 2 ** 31 - 1 });
        const { rows } = await env.db.pool.query<{ fingerprint: string }>(
          `SELECT fingerprint FROM launch_guards WHERE campaign_id = $1`,
          [id],
        );
        expect(combineFingerprint(definition, [parts])).toBe(rows[0]!.fingerprint);
        // The formula launch_guards rows were written with before the parts (all in SQL): they still match.
        const { rows: before } = await env.db.pool.query<{ fingerprint: string }>(
          `SELECT encode(sha256(convert_to(
             $2 || E'\n' || $3 || E'\n' || count(*) || E'\n' || coalesce(sum(h), 0) || E'\n' || coalesce(bit_xor(h), 0),
             'UTF8')), 'hex') AS fingerprint
           FROM (SELECT hashtextextended(phone || E'\t' || coalesce(($4::jsonb || params)::text, ($4::jsonb)::text), 0) AS h
                 FROM recipients WHERE campaign_id = $1) r`,
          [id, definition.provider, definition.templateId, JSON.stringify(definition.templateParams)],
        );
        expect(rows[0]!.fingerprint).toBe(before[0]!.fingerprint);
      }
      // The planned launch's numbers in another file, streamed: found once read.
      const reordered = await env.writeCsv(
        "parts-reordered.csv",
        csvOf(
          ["phone"],
          [...list].reverse().map(([n]) => [n!]),
        ),
      );
      const error = await launchCampaign(env, { file: reordered, sendWhileReading: true }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "repeat_launch" });
      expect((error as Error).message).toContain(`as campaign ${planned.campaignId}`);
      for (const id of [personalised.campaignId, planned.campaignId]) await waitForCampaignEnd(env, id);
    });

    // Last: it empties the suppression list, so steps size their batches from the numbering alone.
    it("with nothing suppressed anywhere: batches sized by their numbering, the last one short", async () => {
      await env.db.pool.query(`DELETE FROM suppressions`);
      const list = numbers.slice(1_500, 2_734).map((n) => [n]);
      const file = await env.writeCsv("unsuppressed.csv", csvOf(header, list));
      const launched = await launchCampaign(env, {
        file,
        sendWhileReading: true,
        streamSteps: { recipientsPerStep: 300 },
      });
      const { batches, campaign: row } = await stored(launched.campaignId);
      expect(batches.map((b) => b.size)).toEqual([...Array<number>(12).fill(100), 34]);
      expect(row).toMatchObject({ recipient_count: 1_234, batch_count: 13, suppressed_count: 0 });
      expect((await waitForCampaignEnd(env, launched.campaignId)).status).toBe("completed");
      const ledger = await sandboxLedger(env);
      expect(Object.keys(ledger).sort()).toEqual(list.map(([n]) => n!).sort());
      expect(Object.values(ledger).every((times) => times === 1)).toBe(true);
    });
  });
});

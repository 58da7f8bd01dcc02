import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestEnv, singaporeNumbers, type TestEnv } from "./helpers/test-env.ts";
import { createCampaignWithRecipients, type NewCampaign } from "../src/store/campaign-repository.ts";
import { SeenFilter } from "../src/store/seen-filter.ts";
import { expectedPlan, mixedRows } from "./helpers/plan-fixture.ts";

// The streamed plan (a list without params): recipients written while the rows stream, repeats held back
// by a Bloom filter and settled in SQL. Whatever the filter's false positives, the outcome must be the
// staged plan's: first occurrence wins, suppressed numbers out, every batch at most batchSize.
describe("streamed plan of a list without params", () => {
  let env: TestEnv;
  const numbers = singaporeNumbers(3_000);
  const suppressed = new Set(numbers.slice(0, 20));
  const optedOut = numbers[20]!;
  const rows = mixedRows(numbers, 9_000);
  const expected = expectedPlan(rows, (phone) => suppressed.has(phone) || phone === optedOut);

  const campaign: NewCampaign = {
    name: "streamed",
    templateId: "t1",
    templateParams: {},
    provider: "messages",
    onUnknown: "at_most_once",
    sendOptions: {},
    source: "test",
  };

  beforeAll(async () => {
    env = await createTestEnv("streamed-plan");
    await env.db.pool.query(`INSERT INTO suppressions (phone, reason) SELECT unnest($1::text[]), 'opt-out'`, [
      [...suppressed],
    ]);
    await env.db.pool.query(`INSERT INTO contacts (phone, opted_out) VALUES ($1, true)`, [optedOut]);
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  async function launch(seenFilterLog2Bits?: number) {
    // In chunks, as the CSV reader hands them over.
    const chunks = Array.from({ length: Math.ceil(rows.length / 1_000) }, (_, i) =>
      rows.slice(i * 1_000, (i + 1) * 1_000),
    );
    const ingested = await createCampaignWithRecipients(env.db, campaign, chunks, {
      batchSize: 100,
      groupByParams: true,
      initialStatus: "running",
      seenFilterLog2Bits,
    });
    const { rows: recipients } = await env.db.pool.query<{ phone: string; row_number: number; batch_sequence: number }>(
      `SELECT phone, row_number, batch_sequence FROM recipients WHERE campaign_id = $1 ORDER BY row_number`,
      [ingested.campaignId],
    );
    const { rows: rejects } = await env.db.pool.query<{ row_number: number; reason: string; raw_value: string }>(
      `SELECT row_number, reason, raw_value FROM rejects WHERE campaign_id = $1 ORDER BY row_number`,
      [ingested.campaignId],
    );
    const { rows: batches } = await env.db.pool.query<{ sequence: number; size: number }>(
      `SELECT sequence, size FROM batches WHERE campaign_id = $1 ORDER BY sequence`,
      [ingested.campaignId],
    );
    return { ingested, recipients, rejects, batches };
  }

  function expectTheOneOutcome(result: Awaited<ReturnType<typeof launch>>) {
    const { ingested, recipients, rejects, batches } = result;
    expect(recipients.map((r) => [r.phone, r.row_number])).toEqual(expected.recipients);
    expect(rejects.map((r) => [r.row_number, r.reason])).toEqual(expected.rejects);
    expect(ingested).toMatchObject({
      totalRows: rows.length,
      recipientCount: expected.recipients.length,
      rejectedCount: expected.rejects.filter(([, reason]) => !reason.startsWith("duplicate")).length,
      duplicateCount: expected.rejects.filter(([, reason]) => reason.startsWith("duplicate")).length,
      suppressedCount: expected.rejects.filter(([, reason]) => reason === "suppressed").length,
    });
    // Each batch's size is what its recipients are, never over 100, and the ids come in sequence order.
    const perSequence = new Map<number, number>();
    for (const r of recipients) perSequence.set(r.batch_sequence, (perSequence.get(r.batch_sequence) ?? 0) + 1);
    expect(batches.map((b) => [b.sequence, b.size])).toEqual([...perSequence].sort((a, b) => a[0] - b[0]));
    expect(batches.every((b) => b.size <= 100)).toBe(true);
    expect(ingested.batchIds).toHaveLength(batches.length);
  }

  it("with the full filter: the staged plan's outcome, batches in file order", async () => {
    const result = await launch();
    expectTheOneOutcome(result);
    const sequences = result.recipients.map((r) => r.batch_sequence);
    expect(sequences).toEqual([...sequences].sort((a, b) => a - b));
    // The suppressed recipients' raw value is their number (the cell as written was not kept).
    const firstSuppressed = result.rejects.find((r) => r.reason === "suppressed")!;
    expect(suppressed.has(firstSuppressed.raw_value) || firstSuppressed.raw_value === optedOut).toBe(true);
  });

  // Nearly every row is held: more than one COPY of held rows, the recipients COPY paused between them.
  it("with a 512-bit filter that 'may have seen' nearly everything: still the same outcome", async () => {
    expectTheOneOutcome(await launch(9));
  });
});

describe("SeenFilter", () => {
  it("never forgets a value it was given, and rarely claims one it was not", () => {
    const filter = new SeenFilter(20);
    const values = singaporeNumbers(50_000);
    expect(values.filter((v) => filter.addIfAbsent(v)).length).toBeLessThan(50);
    expect(values.every((v) => filter.addIfAbsent(v))).toBe(true);
    expect(() => new SeenFilter(40)).toThrow(/log2Bits/);
  });
});

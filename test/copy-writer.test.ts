import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { copyIn, copyRecipientsIn, CopyRowBuffer } from "../src/store/copy-writer.ts";
import { createTestDatabase } from "./helpers/test-env.ts";

// The writer encodes cells straight into 64 KB Buffers: what PostgreSQL reads back must be exactly what was
// written, whatever falls on a chunk boundary (a multi-byte character, a number, a cell larger than a chunk).
describe("CopyTextWriter through a real COPY", () => {
  let pool: pg.Pool;
  let dropDatabase: () => Promise<void>;

  beforeAll(async () => {
    const created = await createTestDatabase("copy_writer");
    dropDatabase = created.dropDatabase;
    pool = new pg.Pool({ connectionString: created.databaseUrl, max: 1 });
  });
  afterAll(async () => {
    await pool?.end();
    await dropDatabase?.();
  });

  async function roundTrip(rows: Array<[number, string | null, string | null]>, via: "writer" | "buffer" = "writer") {
    const client = await pool.connect();
    try {
      await client.query(`CREATE TEMP TABLE t (n bigint, a text, b text)`);
      if (via === "writer") {
        await copyIn(client, `COPY t (n, a, b) FROM STDIN`, async (writer) => {
          for (const row of rows) await writer.writeRow(row);
        });
      } else {
        // Encoded first, sent later (the streamed plan's held rows), after a row written directly.
        const buffer = new CopyRowBuffer();
        for (const row of rows.slice(1)) await buffer.writeRow(row);
        const chunks = await buffer.take();
        expect(buffer.bytes).toBe(0);
        await copyIn(client, `COPY t (n, a, b) FROM STDIN`, async (writer) => {
          await writer.writeRow(rows[0]!);
          for (const chunk of chunks) await writer.writeEncoded(chunk);
        });
      }
      const { rows: back } = await client.query<{ n: string; a: string | null; b: string | null }>(
        `SELECT n::text, a, b FROM t ORDER BY t.n`,
      );
      await client.query(`DROP TABLE t`);
      return back.map((r) => [Number(r.n), r.a, r.b]);
    } finally {
      client.release();
    }
  }

  it("keeps numbers, NULLs, escapes and multi-byte text intact across many chunk boundaries", async () => {
    const rows: Array<[number, string | null, string | null]> = [];
    for (let i = 0; i < 20_000; i++) {
      rows.push([
        i * 1_000_003,
        i % 7 === 0 ? null : `+65 ${i} naïve 日本 😀`,
        i % 5 === 0 ? `tab\there\\back\nline\rend` : i % 3 === 0 ? "" : null,
      ]);
    }
    rows.push([Number.MAX_SAFE_INTEGER, "max", null]);
    expect(await roundTrip(rows)).toEqual(rows);
    expect(await roundTrip(rows, "buffer")).toEqual(rows);
  });

  it("writes a cell larger than a chunk as its own chunk, between ordinary rows", async () => {
    const big = "é".repeat(70_000) + "\t" + "x".repeat(10_000);
    const rows: Array<[number, string | null, string | null]> = [
      [1, "before", null],
      [2, big, "after the big cell"],
      [3, "y".repeat(30_000), "z".repeat(30_000)],
      [4, null, "last"],
    ];
    expect(await roundTrip(rows)).toEqual(rows);
  });
  it("writes a streamed plan's recipients as binary COPY rows that read back exactly, across chunk boundaries", async () => {
    const client = await pool.connect();
    try {
      // Shadows any `recipients` table: temporary tables come first on the search path.
      await client.query(
        `CREATE TEMP TABLE recipients (campaign_id uuid, phone text, row_number int, batch_sequence int)`,
      );
      const campaignId = "0f8fad5b-d9cb-469f-a165-70867728950e";
      const phones = Array.from({ length: 9_000 }, (_, i) =>
        i % 11 === 0 ? `josé.${i}@exämple.日本` : `+65${81_000_000 + i}`,
      );
      await copyRecipientsIn(client, campaignId, async (writer) => {
        for (let i = 0; i < phones.length; i++) await writer.writeRecipient(phones[i]!, i + 2, Math.floor(i / 1000));
        await writer.writeRecipient("+6599999999", 2_147_483_647, 2_147_483_647);
      });
      const { rows } = await client.query<{
        campaign_id: string;
        phone: string;
        row_number: number;
        batch_sequence: number;
      }>(`SELECT campaign_id, phone, row_number, batch_sequence FROM recipients ORDER BY row_number`);
      await client.query(`DROP TABLE recipients`);
      expect(rows).toHaveLength(phones.length + 1);
      expect(rows.every((r) => r.campaign_id === campaignId)).toBe(true);
      expect(rows.slice(0, -1).map((r) => r.phone)).toEqual(phones);
      expect(rows.slice(0, -1).map((r) => [r.row_number, r.batch_sequence])).toEqual(
        phones.map((_, i) => [i + 2, Math.floor(i / 1000)]),
      );
      expect(rows.at(-1)).toMatchObject({
        phone: "+6599999999",
        row_number: 2_147_483_647,
        batch_sequence: 2_147_483_647,
      });
    } finally {
      client.release();
    }
  });
});

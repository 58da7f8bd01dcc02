import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { copyIn, CopyRowBuffer } from "../src/store/copy-writer.ts";
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
});

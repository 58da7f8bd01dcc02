import { Readable } from "node:stream";
import fc from "fast-check";
import { parse } from "csv-parse/sync";
import { describe, expect, it } from "vitest";
import { recordChunks } from "../src/recipients/csv-source.ts";
import { PlainCsvSplitter } from "../src/recipients/plain-csv.ts";
import { sniffHead, SNIFF_BYTES, type FileHead } from "../src/recipients/sniff.ts";

/** What the reader makes of `bytes` cut into `chunks` at `cuts`: records, or the csv-parse error's code and line. */
async function read(bytes: Buffer, cuts: number[], head: FileHead): Promise<unknown> {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const at of [...points, bytes.length]) {
    if (at > from) chunks.push(bytes.subarray(from, at));
    from = Math.max(from, at);
  }
  const records: string[][] = [];
  try {
    for await (const chunk of recordChunks(Readable.from(chunks, { objectMode: false }), head)) records.push(...chunk);
  } catch (error) {
    const e = error as { code?: string; lines?: number };
    return { code: e.code, lines: e.lines };
  }
  return records;
}

/** csv-parse alone over the whole file, with the reader's options: the behaviour the split must equal. */
function oracle(bytes: Buffer, head: FileHead): unknown {
  try {
    return parse(bytes, {
      delimiter: head.delimiter,
      bom: true,
      skip_empty_lines: false,
      relax_column_count: true,
      trim: true,
      max_record_size: 1024 * 1024,
      ...(head.sepLine === null ? {} : { from_line: head.sepLine + 1 }),
    });
  } catch (error) {
    const e = error as { code?: string; lines?: number };
    return { code: e.code, lines: e.lines };
  }
}

describe("the plain CSV split", () => {
  const csvChar = fc.constantFrom(
    ",",
    ";",
    "\t",
    "\n",
    "\n",
    "\r\n",
    "\r\n",
    "\r",
    " ",
    "+65 8123 4567",
    "6",
    "a",
    "é",
    "中",
    "\u00a0",
    "\u3000",
    "\uFEFF",
    "\u2028",
    "\u000b",
    "x",
    '"',
  );

  it("reads every text exactly as csv-parse reads it, wherever the chunks are cut", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("phone,name\n", "phone;name\r\n", "phone\tname\n", "\uFEFFphone,name\r\n", "sep=;\n", ""),
        fc.array(csvChar, { maxLength: 120 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        fc.integer({ min: 0, max: 100 }),
        async (header, body, cuts, quoteFree) => {
          // Most lists have no quote at all: those take the plain split to the end, the others fall back.
          const text = header + (quoteFree < 60 ? body.filter((c) => c !== '"') : body).join("");
          const bytes = Buffer.from(text, "utf8");
          const head = sniffHead(bytes.subarray(0, SNIFF_BYTES));
          expect(await read(bytes, cuts, head)).toEqual(oracle(bytes, head));
        },
      ),
      { numRuns: Number(process.env.PLAIN_CSV_RUNS ?? 3000) },
    );
  });

  it("hands a line with a quote to csv-parse, and csv-parse's error names the file's line", async () => {
    const bytes = Buffer.from('phone,name\n+6581234567,Ann\n+6581234568,"Bo\n+6581234569,Cy\n');
    const head = sniffHead(bytes);
    expect(await read(bytes, [], head)).toEqual({ code: "CSV_QUOTE_NOT_CLOSED", lines: 4 });
    expect(oracle(bytes, head)).toEqual({ code: "CSV_QUOTE_NOT_CLOSED", lines: 4 });
  });

  it("leaves a very long line to csv-parse: its record-size limit and error stay as they were", async () => {
    const long = Buffer.from(`phone,name\n+6581234567,${"x".repeat(600_000)}\n+6581234568,Bo\n`);
    expect(await read(long, [70_000, 300_000], sniffHead(long))).toEqual(oracle(long, sniffHead(long)));
    const tooLong = Buffer.from(`phone,name\n+6581234567,Ann\n+6581234568,${"x".repeat(1_100_000)}\n`);
    expect(await read(tooLong, [65_536, 131_072], sniffHead(tooLong))).toEqual({
      code: "CSV_MAX_RECORD_SIZE",
      lines: 3,
    });
    expect(oracle(tooLong, sniffHead(tooLong))).toEqual({ code: "CSV_MAX_RECORD_SIZE", lines: 3 });
  });

  it("splits a large quote-free list itself and gives csv-parse nothing", () => {
    const splitter = new PlainCsvSplitter(",");
    const lines = Array.from({ length: 5000 }, (_, i) => `+65 ${8100_0000 + i}, name ${i} ,Singapore`);
    const bytes = Buffer.from(`phone,name,city\r\n${lines.join("\r\n")}\r\n`);
    const records: string[][] = [];
    for (let at = 0; at < bytes.length; at += 65536) {
      const got = splitter.push(bytes.subarray(at, at + 65536));
      expect(got).not.toBeNull();
      records.push(...got!);
    }
    records.push(...splitter.end()!);
    expect(records).toHaveLength(5001);
    expect(records[1]).toEqual(["+65 81000000", "name 0", "Singapore"]);
    expect(records[5000]).toEqual(["+65 81004999", "name 4999", "Singapore"]);
    expect(splitter.recordDelimiter).toBe("\r\n");
  });
});

import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  CsvInputError,
  readCsvHeader,
  readCsvRecipients,
  type CsvSourceOptions,
  type IngestRow,
} from "../src/recipients/csv-source.ts";
import { tempCsvFiles } from "./helpers/temp-files.ts";
import { detectDelimiter } from "../src/recipients/delimiter.ts";
import { firstInvalidUtf8 } from "../src/recipients/utf8-guard.ts";

const csvFiles = tempCsvFiles("csv-source");
const fileOf = csvFiles.fileOf;

async function readAll(content: string | Uint8Array, options: Partial<CsvSourceOptions> = {}): Promise<IngestRow[]> {
  const rows: IngestRow[] = [];
  for await (const row of readCsvRecipients(await fileOf(content), { phoneColumn: "phone", ...options }))
    rows.push(row);
  return rows;
}

async function failure(content: string | Uint8Array, options: Partial<CsvSourceOptions> = {}): Promise<CsvInputError> {
  const error = await readAll(content, options).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CsvInputError);
  return error as CsvInputError;
}

const phones = (rows: IngestRow[]) => rows.map((r) => r.phone);

describe("readCsvRecipients: file formats", () => {
  it("reads UTF-8 with a BOM, and without", async () => {
    const withBom = await readAll("\uFEFFphone,name\n+6581234567,Ésa\n");
    const without = await readAll("phone,name\n+6581234567,Ésa\n", { paramColumns: { name: "name" } });
    expect(phones(withBom)).toEqual(["+6581234567"]);
    expect(without[0]).toEqual({
      rowNumber: 2,
      raw: "+6581234567",
      phone: "+6581234567",
      rejectReason: null,
      params: { name: "Ésa" },
    });
  });

  it.each([
    ["comma", ","],
    ["semicolon", ";"],
    ["tab", "\t"],
  ])("detects the %s delimiter from the header", async (_name, d) => {
    const rows = await readAll(
      `name${d}phone${d}city\nAna${d}+65 8123 4567${d}Singapore\nBo${d}+6581234568${d}Jurong\n`,
      {
        paramColumns: { name: "name", city: "city" },
      },
    );
    expect(rows.map((r) => [r.phone, r.params])).toEqual([
      ["+6581234567", { name: "Ana", city: "Singapore" }],
      ["+6581234568", { name: "Bo", city: "Jurong" }],
    ]);
  });

  it("keeps a ; inside a comma file's field (quoted or not), and a , inside a ; file's quoted field", async () => {
    const comma = await readAll('phone,note\n+6581234567,"a;b;c"\n+6581234568,x;y\n', {
      paramColumns: { note: "note" },
    });
    expect(comma.map((r) => r.params)).toEqual([{ note: "a;b;c" }, { note: "x;y" }]);
    const semicolon = await readAll('phone;note\n+6581234567;"Tan, Ah Kow"\n', { paramColumns: { note: "note" } });
    expect(semicolon[0]?.params).toEqual({ note: "Tan, Ah Kow" });
  });

  it("counts delimiters outside quotes only, and reads a one-column file as comma-separated", () => {
    expect(detectDelimiter('"a;b;c","d","e";f')).toBe(",");
    expect(detectDelimiter('"a,b,c";d;e')).toBe(";");
    expect(detectDelimiter("phone")).toBe(",");
    expect(detectDelimiter("a\tb\tc;d")).toBe("\t");
  });

  it("reads quoted fields with embedded newlines and numbers rows as a spreadsheet does (header row 1; a record counts once)", async () => {
    const rows = await readAll('phone,address\n+6581234567,"1 Main St\nUnit 2"\n+6581234568,"x"\n', {
      paramColumns: { address: "address" },
    });
    expect(rows.map((r) => [r.rowNumber, r.phone, r.params?.address])).toEqual([
      [2, "+6581234567", "1 Main St\nUnit 2"],
      [3, "+6581234568", "x"],
    ]);
  });

  it("reads CRLF line endings", async () => {
    const rows = await readAll("phone,name\r\n+6581234567,Ana\r\n+6581234568,Bo\r\n", {
      paramColumns: { name: "name" },
    });
    expect(rows.map((r) => [r.phone, r.params?.name])).toEqual([
      ["+6581234567", "Ana"],
      ["+6581234568", "Bo"],
    ]);
  });

  it("matches header names case-insensitively and ignoring surrounding spaces", async () => {
    const rows = await readAll(" Mobile Number , First Name \n+6581234567, Ana \n", {
      phoneColumn: "mobile number",
      paramColumns: { name: "first name" },
    });
    expect(rows[0]).toMatchObject({ phone: "+6581234567", params: { name: "Ana" } });
  });

  it("skips empty lines, before the header too, counting them as a spreadsheet counts its blank rows", async () => {
    const rows = await readAll("\n\nphone\n\n+6581234567\n   \n\n+6581234568\n\n");
    expect(rows.map((r) => [r.rowNumber, r.phone])).toEqual([
      [5, "+6581234567"],
      [8, "+6581234568"],
    ]);
    // Excel's sep= line is not a row of the sheet: the header stays row 1.
    const sep = await readAll("sep=;\nphone;name\n+6581234567;Ana\n\n+6581234568;Bo\n");
    expect(sep.map((r) => [r.rowNumber, r.phone])).toEqual([
      [2, "+6581234567"],
      [4, "+6581234568"],
    ]);
  });

  it("yields nothing for a header-only file, and fails on an empty one", async () => {
    expect(await readAll("phone,name\n")).toEqual([]);
    expect((await failure("")).message).toContain("is empty");
    expect((await failure("\n\n")).message).toContain("is empty");
  });
});

describe("readCsvRecipients: columns", () => {
  it("gives each row the mapped columns as params, and null params without a mapping", async () => {
    const content = "phone,first_name,city\n+6581234567,Ana,Singapore\nnope,Bo,\n";
    const mapped = await readAll(content, { paramColumns: { name: "first_name", town: "CITY" } });
    expect(mapped.map((r) => r.params)).toEqual([
      { name: "Ana", town: "Singapore" },
      { name: "Bo", town: "" },
    ]);
    expect((await readAll(content)).map((r) => r.params)).toEqual([null, null]);
  });

  it("names every missing column, the mapped ones included, and the columns found", async () => {
    const error = await failure("Mobile,first_name\n+6581234567,Ana\n", {
      paramColumns: { name: "first_name", offer: "offer_code", town: "city" },
      countryColumn: "country",
    });
    expect(error.message).toContain('no "phone" column');
    expect(error.message).toContain('"offer_code" column (for --map offer=offer_code)');
    expect(error.message).toContain('"city" column (for --map town=city)');
    expect(error.message).toContain('"country" column');
    expect(error.message).toContain('columns found: "Mobile", "first_name"');
    expect(error.message).not.toContain("first_name column");
    expect(error.line).toBe(1);
  });

  it("fails on a header that repeats a column name, ignoring case, naming it", async () => {
    const error = await failure("Phone,name,PHONE,x,,\n+6581234567,a,+6581234568,b,,\n");
    expect(error.message).toContain('"Phone", "PHONE"');
    expect(error.message).not.toContain('"name"');
    expect(error.line).toBe(1);
  });

  it("uses the country column as each row's region, case-insensitively, falling back to the default region", async () => {
    const rows = await readAll("phone,country\n8123 4567,sg\n012-345 6789,MY\n+65 8123 4568,MY\n9123 4567,\n", {
      countryColumn: "Country",
      defaultRegion: "SG",
    });
    expect(rows.map((r) => [r.phone, r.rejectReason])).toEqual([
      ["+6581234567", null],
      ["+60123456789", null],
      // An international number keeps its own country code.
      ["+6581234568", null],
      ["+6591234567", null],
    ]);
  });

  it("rejects a row whose country code is unknown, naming the code", async () => {
    const rows = await readAll("phone,country\n81234567,XX\n81234568,Singapore\n81234569,SG\n", {
      countryColumn: "country",
    });
    expect(rows.map((r) => [r.rowNumber, r.phone, r.rejectReason])).toEqual([
      [2, null, 'unknown country code "XX"'],
      [3, null, 'unknown country code "Singapore"'],
      [4, "+6581234569", null],
    ]);
  });

  it("refuses an unknown default region before reading", async () => {
    const error = await failure("phone\n81234567\n", { defaultRegion: "ZZ" });
    expect(error.message).toContain('unknown default region "ZZ"');
  });

  it("rejects numbers that are not mobiles, saying which type they are, unless told otherwise", async () => {
    const content = "phone\n+65 6123 4567\n+65 1800 123 4567\n+65 8123 4567\n";
    expect((await readAll(content)).map((r) => r.rejectReason)).toEqual([
      "not a mobile number (fixed line)",
      "not a mobile number (toll-free)",
      null,
    ]);
    expect(phones(await readAll(content, { requireMobile: false }))).toEqual([
      "+6561234567",
      "+6518001234567",
      "+6581234567",
    ]);
  });

  it("readCsvHeader gives the header names as written", async () => {
    expect(await readCsvHeader(await fileOf("\uFEFF Phone ;First Name;x\n1;2;3\n"))).toEqual([
      "Phone",
      "First Name",
      "x",
    ]);
  });
});

describe("readCsvRecipients: files it must refuse", () => {
  it("fails on invalid UTF-8, naming the line", async () => {
    const latin1 = Buffer.concat([
      Buffer.from("phone,name\n+6581234567,Ana\n+6581234568,Jos"),
      Buffer.from([0xe9]),
      Buffer.from("\n"),
    ]);
    const error = await failure(latin1, { paramColumns: { name: "name" } });
    expect(error.message).toContain("invalid UTF-8 at line 3");
    expect(error.line).toBe(3);
  });

  it("names the right line when the bad byte is far into the file, and when a file ends inside a character", async () => {
    const lines = Array.from({ length: 40_000 }, (_, i) => `+65${80_000_000 + i},Zoë`);
    const far = Buffer.concat([
      Buffer.from(`phone,name\n${lines.join("\n")}\n+6589999999,`),
      Buffer.from([0xc0, 0xaf]),
      Buffer.from("\n"),
    ]);
    expect((await failure(far)).line).toBe(40_002);
    const cut = Buffer.concat([Buffer.from("phone,name\n+6581234567,caf"), Buffer.from([0xc3])]);
    expect((await failure(cut)).message).toContain("invalid UTF-8 at line 2");
  });

  it("agrees with TextDecoder on where UTF-8 goes wrong", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 12 }), (bytes) => {
        let valid = true;
        try {
          new TextDecoder("utf-8", { fatal: true }).decode(bytes);
        } catch {
          valid = false;
        }
        let truncated = false;
        try {
          new TextDecoder("utf-8", { fatal: true }).decode(bytes, { stream: true });
        } catch {
          truncated = true;
        }
        // -1 means valid, or valid up to a character cut off at the end.
        expect(firstInvalidUtf8(bytes) === -1).toBe(valid || !truncated);
      }),
      { numRuns: 2_000 },
    );
  });

  it.each([
    [
      "a PNG image",
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0x44, 0x52]),
    ],
    ["a zip or .xlsx workbook", Buffer.concat([Buffer.from("PK\x03\x04\x14\x00\x06\x00"), Buffer.alloc(64, 0)])],
    ["binary data", Buffer.concat([Buffer.from("phone\n+6581234567\n"), Buffer.from([0, 1, 2, 3])])],
    ["UTF-16 text", Buffer.from("\uFEFFphone\n+6581234567\n", "utf16le")],
  ])("refuses %s as not a CSV text file", async (_what, bytes) => {
    expect((await failure(bytes)).message).toContain("not a CSV text file");
  });

  it("fails on an unterminated quote, naming the line where it opens", async () => {
    const error = await failure('phone,name\n+6581234567,"Ana"\n+6581234568,"Bo\n+6581234569,Cy\n+6581234570,Di\n');
    expect(error.message).toMatch(/line 3\b/);
    expect(error.message).toContain("never closed");
    expect(error.line).toBe(3);
  });

  it("stops an unterminated quote early in a large file at the record size limit, naming its line", async () => {
    const rest = Array.from({ length: 60_000 }, (_, i) => `+65${80_000_000 + i},name${i}`).join("\n");
    const error = await failure(`phone,name\n+6581234567,"Ana\n${rest}\n`);
    expect(error.line).toBe(2);
    expect(error.message).toMatch(
      /, line 2: a quoted field opens here and is never closed \(not within 1\.0 MiB \(1048576 bytes\)\)$/,
    );
  });

  it("fails on a row with a different number of fields than the header, naming the row and both counts", async () => {
    const error = await failure("phone,name\n+6581234567,Ana\n\n+6581234568,Tan, Bo\n");
    expect(error.message).toContain("row 4: 3 fields but the header has 2");
    expect(error.line).toBe(4);
    const short = await failure("phone;name;city\n+6581234567;Ana\n");
    expect(short.message).toContain("row 2: 2 fields but the header has 3");
    // Deep in a file (past the parser's first chunk) the header's real width is still named.
    const many = Array.from({ length: 50_000 }, (_, i) => `+65${81_000_000 + i},n${i}`).join("\n");
    const deep = await failure(`phone,name\n${many}\n+6581234567,a,b,c\n`);
    expect(deep.message).toContain("row 50002: 4 fields but the header has 2");
  });

  it("does not blame a closed but huge field, or a huge header, on an unclosed quote", async () => {
    const big = "x".repeat(1_100_000);
    const field = await failure(`phone,note\n+6581234567,"${big}"\n+6581234568,ok\n`);
    expect(field.message).toContain("line 2: a record is over 1.0 MiB");
    expect(field.message).not.toContain("quote");
    const header = await failure(`phone,${big}\n+6581234567,x\n`);
    expect(header.message).toContain("the header is over 1.0 MiB");
    expect(header.message).not.toContain("quote");
  });

  it("fails on a stray quote inside an unquoted field, naming the line", async () => {
    const error = await failure('phone,name\n+6581234567,Ana "the boss"\n');
    expect(error.line).toBe(2);
  });

  it("refuses a file over the size limit before reading it, naming the size and the limit", async () => {
    const error = await failure("phone\n+6581234567\n+6581234568\n", { maxBytes: 10 });
    expect(error.message).toContain("30 bytes");
    expect(error.message).toContain("10 bytes limit");
    expect(await readAll("phone\n+6581234567\n", { maxBytes: 18 })).toHaveLength(1);
  });

  it("reports a missing file as a CsvInputError", async () => {
    const error = await readCsvRecipients(join(csvFiles.dir(), "nope.csv"), { phoneColumn: "phone" })
      .next()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CsvInputError);
  });
});

describe("readCsvRecipients: any content", () => {
  async function onlyCsvInputErrors(
    content: string | Uint8Array,
    options: Partial<CsvSourceOptions> = {},
  ): Promise<void> {
    try {
      await readAll(content, options);
    } catch (error) {
      if (!(error instanceof CsvInputError)) throw error;
    }
  }

  it("never throws anything but CsvInputError, whatever the bytes", async () => {
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.uint8Array({ maxLength: 300 }), (withHeader, bytes) =>
        onlyCsvInputErrors(withHeader ? Buffer.concat([Buffer.from("phone,name\n"), bytes]) : bytes),
      ),
      { numRuns: 200 },
    );
  });

  it("never throws anything but CsvInputError for CSV-like text", async () => {
    const csvChar = fc.constantFrom(
      '"',
      ",",
      ";",
      "\t",
      "\n",
      "\r",
      " ",
      "+",
      "6",
      "5",
      "8",
      "1",
      "a",
      "é",
      "\uFEFF",
      "\u0000",
      "x",
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("phone,name,country\n", "phone;name;country\n", "phone\tname\tcountry\n", "phone\n", ""),
        fc.string({ unit: csvChar, maxLength: 200 }),
        fc.boolean(),
        (header, body, withOptions) =>
          onlyCsvInputErrors(
            header + body,
            withOptions ? { countryColumn: "country", paramColumns: { n: "name" }, defaultRegion: "SG" } : {},
          ),
      ),
      { numRuns: 200 },
    );
  });

  it("never throws anything but CsvInputError for arbitrary text", async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: "binary", maxLength: 200 }), (text) =>
        onlyCsvInputErrors(`phone,name\n${text}`),
      ),
      { numRuns: 200 },
    );
  });
});

// The CSV reader's refusals, word for word: each names the file, the line and what to do, because that is all
// a user sees of a bad file. Files in a temporary directory only (no database), so the mutation run
// (vitest.mutation.config.ts) can run these against every mutant.
import { symlink, truncate } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import {
  CsvInputError,
  CsvTooLargeError,
  openCsvStream,
  readCsvHeader,
  readCsvRecipients,
  rowJudge,
  type CsvSourceOptions,
  type IngestRow,
} from "../src/recipients/csv-source.ts";
import { tempCsvFiles } from "./helpers/temp-files.ts";
import { UserError } from "../src/model/errors.ts";
import { EMAIL_NOT_ACCEPTED } from "../src/recipients/email.ts";

const csvFiles = tempCsvFiles("csv-errors");
const fileOf = csvFiles.fileOf;

async function readPath(path: string, options: Partial<CsvSourceOptions> = {}): Promise<IngestRow[]> {
  const rows: IngestRow[] = [];
  for await (const row of readCsvRecipients(path, { phoneColumn: "phone", ...options })) rows.push(row);
  return rows;
}

async function refusalOf(path: string, options: Partial<CsvSourceOptions> = {}): Promise<CsvInputError> {
  const error = await readPath(path, options).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CsvInputError);
  return error as CsvInputError;
}

describe("CsvInputError", () => {
  it("is a UserError with a stable code and the line as its row", () => {
    const error = new CsvInputError("bad", 7);
    expect(error).toBeInstanceOf(UserError);
    expect(error).toMatchObject({ name: "CsvInputError", code: "csv_input", kind: "invalid", row: 7, line: 7 });
    expect(new CsvInputError("bad").row).toBeUndefined();
  });
});

describe("files the reader cannot open", () => {
  it("a missing file, or a path through a file, is not found", async () => {
    const missing = join(csvFiles.dir(), "nope.csv");
    expect((await refusalOf(missing)).message).toBe(`CSV file not found: ${missing}`);
    const through = `${await fileOf("phone\n")}/x.csv`;
    expect((await refusalOf(through)).message).toBe(`CSV file not found: ${through}`);
  });

  it("a name no file can have is not found either", async () => {
    const long = join(csvFiles.dir(), `${"x".repeat(300)}.csv`);
    expect((await refusalOf(long)).message).toBe(`CSV file not found: ${long}`);
  });

  it("symbolic links that loop are named as such", async () => {
    const a = join(csvFiles.dir(), "loop-a.csv");
    const b = join(csvFiles.dir(), "loop-b.csv");
    await symlink(b, a);
    await symlink(a, b);
    expect((await refusalOf(a)).message).toBe(`CSV ${a} cannot be read: its symbolic links form a loop`);
  });

  it("a directory or a device is not a file", async () => {
    expect((await refusalOf(csvFiles.dir())).message).toBe(`CSV ${csvFiles.dir()} is not a file`);
    expect((await refusalOf("/dev/null")).message).toBe("CSV /dev/null is not a file");
  });

  it("an empty file, and one of blank lines, need a header row (naming the phone column when one is asked for)", async () => {
    const empty = await fileOf("");
    expect((await refusalOf(empty)).message).toBe(`CSV ${empty} is empty: expected a header row`);
    const blank = await fileOf("\n\n");
    expect((await refusalOf(blank)).message).toBe(`CSV ${blank} is empty: expected a header row with a "phone" column`);
    const header = await readCsvHeader(blank).catch((e: unknown) => e);
    expect(header).toBeInstanceOf(CsvInputError);
    expect((header as Error).message).toBe(`CSV ${blank} is empty: expected a header row`);
  });
});

describe("size limits, in words a user can compare", () => {
  it.each([
    [30, 10, "is 30 bytes, over the 10 bytes limit"],
    [2_000, 1_023, "is 2.0 KiB (2000 bytes), over the 1023 bytes limit"],
    [1_025, 1_024, "is 1.0 KiB (1025 bytes), over the 1.0 KiB (1024 bytes) limit"],
    [20_000, 10_240, "is 20 KiB (20000 bytes), over the 10 KiB (10240 bytes) limit"],
    [1_572_864, 1_048_576, "is 1.5 MiB (1572864 bytes), over the 1.0 MiB (1048576 bytes) limit"],
    [3 * 1024 ** 3, 2 * 1024 ** 3, "is 3.0 GiB (3221225472 bytes), over the 2.0 GiB (2147483648 bytes) limit"],
  ])("a %i-byte file with a %i-byte limit %s", async (size, maxBytes, words) => {
    // Sparse: the size is checked before a byte is read.
    const path = await fileOf("phone\n");
    await truncate(path, size);
    expect((await refusalOf(path, { maxBytes })).message).toBe(`CSV ${path} ${words}`);
  });

  it("a file exactly at the limit is read", async () => {
    expect(await readPath(await fileOf("phone\n+6581234567\n"), { maxBytes: 18 })).toHaveLength(1);
  });

  it.each([
    [1_023, "1023 bytes"],
    [1_024, "1.0 KiB (1024 bytes)"],
    [10_239, "10.0 KiB (10239 bytes)"],
    [10_240, "10 KiB (10240 bytes)"],
    [5 * 1024 ** 3, "5.0 GiB (5368709120 bytes)"],
    [3 * 1024 ** 4, "3.0 TiB (3298534883328 bytes)"],
    [1024 ** 5, "1024 TiB (1125899906842624 bytes)"],
  ])("an upload limit of %i bytes reads %s", (maxBytes, words) => {
    const error = new CsvTooLargeError("CSV list.csv", maxBytes);
    expect(error).toMatchObject({ name: "CsvTooLargeError", code: "upload_too_large", field: "file", maxBytes });
    expect(error.message).toBe(`CSV list.csv is over the ${words} limit (CSV_MAX_BYTES)`);
  });
});

describe("settings checked before a row is read", () => {
  it("refuses __proto__ as a template variable", async () => {
    const paramColumns = JSON.parse('{"__proto__": "name"}') as Record<string, string>;
    const error = await refusalOf(await fileOf("phone,name\n+6581234567,Ana\n"), { paramColumns });
    expect(error.message).toBe(`"__proto__" cannot be a template variable name`);
  });

  it("refuses an unknown default region, and takes a blank one as none", async () => {
    const path = await fileOf("phone\n+6581234567\n");
    expect((await refusalOf(path, { defaultRegion: "ZZ" })).message).toBe(
      'unknown default region "ZZ": expected an ISO country code such as SG',
    );
    expect((await readPath(path, { defaultRegion: "  " })).map((r) => r.phone)).toEqual(["+6581234567"]);
  });

  it("finds a column asked for with surrounding spaces, in a file and in an upload's header", async () => {
    const rows = await readPath(await fileOf("Phone\n+6581234567\n"), { phoneColumn: " phone " });
    expect(rows.map((r) => r.phone)).toEqual(["+6581234567"]);
    const judge = rowJudge([" Phone ", " First Name "], { phoneColumn: "phone", paramColumns: { name: "first name" } });
    expect(judge(["+6581234567", "Ana"], 1)).toMatchObject({ phone: "+6581234567", params: { name: "Ana" } });
  });

  it("names the missing phone column and the flag that picks another", async () => {
    const error = await refusalOf(await fileOf("Mobile,name\n+6581234567,Ana\n"));
    expect(error.message).toBe(
      'CSV has no "phone" column; columns found: "Mobile", "name". Choose the phone column with --phone-column <name>.',
    );
    expect(error.line).toBe(1);
  });

  it("names every missing column in one sentence", async () => {
    const error = await refusalOf(await fileOf("Mobile\n+6581234567\n"), {
      countryColumn: "country",
      paramColumns: { offer: "offer_code" },
    });
    expect(error.message).toBe(
      'CSV has no "phone" column, no "country" column (for each row\'s country), no "offer_code" column ' +
        '(for --map offer=offer_code); columns found: "Mobile". Choose the phone column with --phone-column <name>.',
    );
  });

  it("names a missing mapped column without the phone-column hint when the phone column is there", async () => {
    const error = await refusalOf(await fileOf("phone\n+6581234567\n"), { paramColumns: { offer: "offer_code" } });
    expect(error.message).toBe('CSV has no "offer_code" column (for --map offer=offer_code); columns found: "phone".');
  });

  it("says when an upload's header has no columns at all", () => {
    expect(() => rowJudge([], { phoneColumn: "phone" })).toThrow(
      'CSV has no "phone" column; columns found: (none). Choose the phone column with --phone-column <name>.',
    );
  });

  it("refuses --allow-empty for a variable that is not mapped", async () => {
    const error = await refusalOf(await fileOf("phone,name\n+6581234567,Ana\n"), {
      paramColumns: { name: "name" },
      allowEmpty: ["offer"],
    });
    expect(error.message).toBe('--allow-empty offer: "offer" is not mapped to a column (--map offer=<column>)');
  });

  it("rejects a row whose mapped cell is empty, naming the variable and column, unless that variable may be empty", async () => {
    const path = await fileOf("phone,first_name,code\n+6581234567,,X1\n+6581234568,Bo,\n");
    const paramColumns = { name: "first_name", offer: "code" };
    expect((await readPath(path, { paramColumns })).map((r) => r.rejectReason)).toEqual([
      'no value for name (column "first_name" is empty)',
      'no value for offer (column "code" is empty)',
    ]);
    const rows = await readPath(path, { paramColumns, allowEmpty: ["name"] });
    expect(rows.map((r) => [r.phone, r.rejectReason])).toEqual([
      ["+6581234567", null],
      [null, 'no value for offer (column "code" is empty)'],
    ]);
  });

  it("takes e-mail addresses only when told to (custom campaigns)", async () => {
    const path = await fileOf("phone\nAnn@Example.com\n");
    expect((await readPath(path)).map((r) => r.rejectReason)).toEqual([EMAIL_NOT_ACCEPTED]);
    expect((await readPath(path, { acceptEmail: true })).map((r) => r.phone)).toEqual(["ann@example.com"]);
  });

  it("reads a row whose first cell is empty as a row (a reject), not as a blank line", async () => {
    const rows = await readPath(await fileOf("phone,name\n,Ana\n\n+6581234567,Bo\n"));
    expect(rows.map((r) => [r.rowNumber, r.phone, r.rejectReason])).toEqual([
      [2, null, "empty phone number"],
      [4, "+6581234567", null],
    ]);
  });

  it("allows several unnamed columns, and names the repeated named ones", async () => {
    const rows = await readPath(await fileOf("phone,,\n+6581234567,,\n"));
    expect(rows.map((r) => r.phone)).toEqual(["+6581234567"]);
    const path = await fileOf("Phone,name,PHONE\n+6581234567,a,+6581234568\n");
    const error = await refusalOf(path);
    expect(error.message).toBe(
      `CSV ${path}: the header repeats column names (ignoring case): "Phone", "PHONE"; rename or remove the copies`,
    );
    expect(error.line).toBe(1);
  });
});

describe("malformed CSV: each parser error in words, with its line (a ragged row: its spreadsheet row)", () => {
  it.each([
    [
      "an unclosed quote, at the line it opens",
      'phone,name\n+6581234567,"Ana"\n+6581234568,"Bo\n+6581234569,Cy\n',
      "line 3",
      'a quoted field is never closed (no matching " before the end of the file)',
    ],
    [
      "too many fields",
      "phone,name\n+6581234567,Ana\n\n+6581234568,Tan, Bo\n",
      "row 4",
      '3 fields but the header has 2 (fields are separated by ","; quote any field that contains one)',
    ],
    [
      "too few fields, tab-separated",
      "phone\tname\tcity\n+6581234567\tAna\n",
      "row 2",
      "2 fields but the header has 3 (fields are separated by tab; quote any field that contains one)",
    ],
    [
      "a stray quote in an unquoted field",
      'phone,name\n+6581234567,Ana "the boss"\n',
      "line 2",
      'a " inside an unquoted field; quote the whole field and double the " inside it',
    ],
    [
      "text right after a closing quote",
      'phone,name\n+6581234567,"Ana"x\n',
      "line 2",
      'text after a closing quote; a " inside a quoted field must be doubled ("")',
    ],
    [
      "text after a closing quote and a space",
      'phone,name\n+6581234567,"Ana" x\n',
      "line 2",
      'text after a closing quote; a " inside a quoted field must be doubled ("")',
    ],
  ])("%s", async (_what, content, at, words) => {
    const path = await fileOf(content);
    const error = await refusalOf(path);
    expect(error.message).toBe(`CSV ${path}, ${at}: ${words}`);
    expect(error.line).toBe(Number(at.split(" ")[1]));
  });

  it("a closed field over the record limit: in a file, says to check the file; in an upload, names both causes", async () => {
    const content = `phone,note\n+6581234567,"${"x".repeat(1_100_000)}"\n`;
    const path = await fileOf(content);
    expect((await refusalOf(path)).message).toBe(
      `CSV ${path}, line 2: a record is over 1.0 MiB (1048576 bytes); no cell of a contact list is that large: ` +
        "check that this is the right file and its delimiter",
    );
    // The parser may meet the record while it looks for the header: the error comes from opening or from the rows.
    const error = await (async () => {
      const table = await openCsvStream(Readable.from([Buffer.from(content)]), { name: "upload.csv" });
      for await (const row of table.rows) void row;
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CsvInputError);
    expect((error as Error).message).toBe(
      "CSV upload.csv, line 2: a record is over 1.0 MiB (1048576 bytes); either a quoted field that is never " +
        "closed, or a field far larger than a contact list holds",
    );
  });

  it("names the file in an encoding refusal", async () => {
    const path = await fileOf(Buffer.concat([Buffer.from("phone\n+65812"), Buffer.from([0xff]), Buffer.from("\n")]));
    expect((await refusalOf(path)).message).toBe(`CSV ${path}: invalid UTF-8 at line 2; save the file as CSV UTF-8`);
  });
});

import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { pipeline, Readable } from "node:stream";
import type { CountryCode } from "libphonenumber-js/max";
import { parse, CsvError, type Parser } from "csv-parse";
import { describeDelimiter, type Delimiter } from "./delimiter.ts";
import { CsvInputError } from "./errors.ts";
import { EMAIL_NOT_ACCEPTED, isEmailTarget, normaliseEmail } from "./email.ts";
import { normalisePhone, toRegion, type NormaliseOptions } from "./phone.ts";
import { findUnclosedQuoteLine, readHead, sniffHead, SNIFF_BYTES, type CsvEncoding, type FileHead } from "./sniff.ts";
import { UserError } from "../model/errors.ts";
import { Utf8Guard } from "./utf8-guard.ts";
import { PlainCsvSplitter } from "./plain-csv.ts";
import type { IngestRow } from "../model/ingest-row.ts";

/** A data row of the source, already judged: a recipient to store, or a reject with its reason. */
export type { IngestRow };

export { CsvInputError } from "./errors.ts";
export type { CsvEncoding } from "./sniff.ts";

export interface CsvSourceOptions {
  phoneColumn: string;
  /** ISO 3166 alpha-2 region for numbers written without `+`/`00`; an unknown code fails before reading. */
  defaultRegion?: string;
  /** Column holding each row's ISO country (e.g. "SG", any case), the region for that row's number; an empty cell falls back to defaultRegion, an unknown code rejects the row. */
  countryColumn?: string;
  /** Template variable → CSV column (`--map name=first_name`); each row's params hold those cells, trimmed. */
  paramColumns?: Record<string, string>;
  /** Mapped variables whose cell may be empty (`--allow-empty`); for any other, an empty cell rejects the row. */
  allowEmpty?: string[];
  /** A larger file fails before any of it is read. */
  maxBytes?: number;
  /** Default true: only MOBILE and FIXED_LINE_OR_MOBILE numbers become recipients; other types are rejects. */
  requireMobile?: boolean;
  /**
   * Custom campaigns (v1/custom-messages) only: a cell with an "@" is an e-mail target, validated and
   * lower-cased. Otherwise such a cell is a reject saying only custom campaigns take e-mail addresses.
   */
  acceptEmail?: boolean;
}

/** Bounds the memory one record may take: an unclosed quote would otherwise swallow the rest of the file. */
const MAX_RECORD_BYTES = 1024 * 1024;
/**
 * csv-parse pushes every record of a chunk at once and the consumer takes them one by one: a 256 KB chunk
 * kept ~10,000 records (with their cells) waiting long enough for scavenges to promote them, and V8 then grew
 * its old generation lazily (+40 MB of RSS at 1M rows). 64 KB holds a quarter of that, at the same speed.
 */
const READ_CHUNK_BYTES = 64 * 1024;

/** Where each wanted column sits in a record, worked out once from the header. */
interface RowPlan {
  phoneIndex: number;
  countryIndex: number;
  paramNames: string[];
  paramIndexes: number[];
  /** Per mapped variable: its column's name when an empty cell rejects the row, else null. */
  requiredColumns: Array<string | null>;
  defaultRegion: CountryCode | undefined;
  phoneOptions: NormaliseOptions;
  acceptEmail: boolean;
  /** Country cell → region, or null for a code the phone metadata does not know. */
  regions: Map<string, CountryCode | null>;
}

/**
 * Streams a CSV file row by row (never the whole file in memory). UTF-8 with or without BOM; the delimiter
 * (",", ";" or tab) is read off the header line. Columns are found by name, case-insensitively and ignoring
 * surrounding spaces; a file without them fails before any row is read. Every problem with the file itself
 * is a CsvInputError naming the line; problems with one number are rejects.
 */
export async function* readCsvRecipients(path: string, options: CsvSourceOptions): AsyncGenerator<IngestRow> {
  for await (const rows of readCsvRecipientChunks(path, options)) yield* rows;
}

/**
 * readCsvRecipients in the chunks the reader hands over (up to RECORDS_PER_CHUNK rows): a million-row launch
 * pays one promise per chunk instead of one per row per layer (~1 s of 5 at 1M).
 */
export async function* readCsvRecipientChunks(path: string, options: CsvSourceOptions): AsyncGenerator<IngestRow[]> {
  const defaultRegion = checkOptions(options);
  const source = await openCsv(path, options.maxBytes);
  let plan: RowPlan | undefined;
  try {
    for await (const records of source.records) {
      let i = 0;
      if (plan === undefined) {
        plan = planRows(`CSV ${path}`, records[0]!.cells, source.headerLine, options, defaultRegion);
        i = 1;
      }
      const rows: IngestRow[] = [];
      for (; i < records.length; i++) rows.push(judgeRow(records[i]!.cells, plan, records[i]!.row));
      if (rows.length > 0) yield rows;
    }
  } catch (error) {
    throw await sourceError(`CSV ${path}`, path, error);
  }
  if (plan === undefined) throw emptyFile(path, options.phoneColumn);
}

/** The header's column names as written (trimmed), after the same checks of the file as readCsvRecipients. */
export async function readCsvHeader(path: string, options: { maxBytes?: number } = {}): Promise<string[]> {
  const source = await openCsv(path, options.maxBytes);
  try {
    for await (const records of source.records) {
      const names = records[0]!.cells.map((name) => name.trim());
      assertUniqueNames(`CSV ${path}`, names, source.headerLine);
      return names;
    }
  } catch (error) {
    throw await sourceError(`CSV ${path}`, path, error);
  }
  throw emptyFile(path);
}

/**
 * A record with its row number as a spreadsheet shows it: the header is row 1 (after any blank lines above
 * it), blank lines count, a record with a quoted line break counts once, and a `sep=` line does not count.
 */
export interface CsvRecord {
  row: number;
  cells: string[];
}

interface OpenCsv {
  /** Records in chunks, none empty. */
  records: AsyncIterable<CsvRecord[]>;
  delimiter: Delimiter;
  encoding: CsvEncoding;
  headerLine: number;
}

async function openCsv(path: string, maxBytes: number | undefined): Promise<OpenCsv> {
  const size = await fileSize(path);
  if (maxBytes !== undefined && size > maxBytes) {
    throw new CsvInputError(`CSV ${path} is ${formatBytes(size)}, over the ${formatBytes(maxBytes)} limit`);
  }
  if (size === 0) throw emptyFile(path);
  const head = await readHead(path).catch((error: unknown) => {
    throw fileError(path, error);
  });
  return parseFrom(createReadStream(path, { highWaterMark: READ_CHUNK_BYTES }), head, `CSV ${path}`);
}

/** The one parser set-up of files and uploads: delimiter and header line from the head, UTF-8 checked on the way. */
function parseFrom(source: Readable, head: FileHead, where: string): OpenCsv {
  if (head.notText !== null)
    throw new CsvInputError(`${where} is not a CSV text file: it looks like ${head.notText}`, 1);
  const checked = new Utf8Guard(
    (line) => new CsvInputError(`${where}: invalid UTF-8 at line ${line}; save the file as CSV UTF-8`, line),
  );
  // A read error or invalid UTF-8 destroys `checked` with it, which its reader then throws; the callback
  // only keeps the error from being unhandled.
  pipeline(source, checked, () => {});
  return {
    records: spreadsheetRows(recordChunks(checked, head), where, head.delimiter),
    delimiter: head.delimiter,
    encoding: head.encoding,
    headerLine: head.headerLine,
  };
}

/**
 * The cells of each record, in chunks: split by PlainCsvSplitter while the bytes have no quote (a contact
 * list rarely has one), and by csv-parse from the first line it cannot split exactly to the end of the file.
 */
export async function* recordChunks(input: Readable, head: FileHead): AsyncGenerator<string[][]> {
  let rest: AsyncIterable<Buffer> = input;
  let splitter: PlainCsvSplitter | undefined;
  try {
    // A `sep=` line is skipped by line number (csv-parse's from_line): such files go to csv-parse whole.
    if (head.sepLine === null) {
      splitter = new PlainCsvSplitter(head.delimiter);
      const bytes = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
      let ended = false;
      for (;;) {
        const step = await bytes.next();
        ended = step.done === true;
        const records = step.done === true ? splitter.end() : splitter.push(step.value);
        if (records === null) break;
        // In chunks of csv-parse's size: a 64 KB read holds ~2,600 lines, and the rows made of them may wait
        // on a COPY's 'drain' long enough to be promoted (README "Producer memory").
        while (records.length > 0) yield records.splice(0, RECORDS_PER_CHUNK);
        if (ended) return;
      }
      const unsplit = splitter.unsplit();
      rest = (async function* () {
        yield unsplit;
        if (ended) return;
        for (let step = await bytes.next(); step.done !== true; step = await bytes.next()) yield step.value;
      })();
    }
    const linesBefore = splitter?.lines ?? 0;
    const parser = csvParser(head, linesBefore > 0 ? splitter?.recordDelimiter : undefined);
    pipeline(Readable.from(rest), parser, () => {});
    try {
      yield* parserChunks(parser);
    } catch (error) {
      // csv-parse counts lines from where it took over.
      const details = error as { lines?: number };
      if (error instanceof CsvError && linesBefore > 0 && details.lines !== undefined) details.lines += linesBefore;
      throw error;
    }
  } finally {
    // A reader that stops early (a launch failing on a row) closes the file.
    input.destroy();
  }
}

/** csv-parse with the reader's options; `resumeAt`: taking over after the lines split plainly, whose record delimiter is known. */
function csvParser(head: FileHead, resumeAt?: "\n" | "\r\n"): Parser {
  return parse({
    delimiter: head.delimiter,
    bom: resumeAt === undefined,
    // Blank lines and ragged rows are judged by spreadsheetRows: it counts blank lines as rows, and it knows
    // the header's width when it names a ragged row's field count.
    skip_empty_lines: false,
    relax_column_count: true,
    trim: true,
    max_record_size: MAX_RECORD_BYTES,
    ...(resumeAt !== undefined
      ? { record_delimiter: resumeAt }
      : head.sepLine === null
        ? {}
        : { from_line: head.sepLine + 1 }),
  });
}

const RECORDS_PER_CHUNK = 512;

/** csv-parse's records in chunks: after the record its async iterator waited for, the ones it already holds are taken with read(). */
async function* parserChunks(parser: Readable): AsyncGenerator<string[][]> {
  // (The iterator reads the same buffer, so it simply finds it empty and waits again.)
  for await (const first of parser as AsyncIterable<string[]>) {
    const chunk: string[][] = [first];
    for (let cells = parser.read() as string[] | null; cells !== null; cells = parser.read() as string[] | null) {
      chunk.push(cells);
      if (chunk.length >= RECORDS_PER_CHUNK) break;
    }
    yield chunk;
  }
}

async function* spreadsheetRows(
  records: AsyncIterable<string[][]>,
  where: string,
  delimiter: Delimiter,
): AsyncGenerator<CsvRecord[]> {
  let row = 0;
  let width = -1;
  for await (const cellsOfRecords of records) {
    const chunk: CsvRecord[] = [];
    for (const cells of cellsOfRecords) {
      row++;
      // A blank (or whitespace-only) line: a row in the spreadsheet, no record.
      if (cells.length === 1 && cells[0] === "") continue;
      if (width === -1) width = cells.length;
      else if (cells.length !== width) {
        throw new CsvInputError(
          `${where}, row ${row}: ${cells.length} fields but the header has ${width} ` +
            `(fields are separated by ${describeDelimiter(delimiter)}; quote any field that contains one)`,
          row,
        );
      }
      chunk.push({ row, cells });
    }
    if (chunk.length > 0) yield chunk;
  }
}

/** A CSV read from a stream (an HTTP upload): what the head said, the header, and the data rows as parsed. */
export interface CsvTable {
  delimiter: Delimiter;
  encoding: CsvEncoding;
  header: string[];
  /** Data rows in order with their spreadsheet row numbers (the header is row 1); a problem with the file is a CsvInputError naming its line. */
  rows: AsyncIterable<CsvRecord>;
}

export class CsvTooLargeError extends UserError {
  override name = "CsvTooLargeError";
  constructor(
    where: string,
    readonly maxBytes: number,
  ) {
    super("upload_too_large", `${where} is over the ${formatBytes(maxBytes)} limit (CSV_MAX_BYTES)`, { field: "file" });
  }
}

/**
 * Reads a CSV from a byte stream with the same rules as `smsblast send` reads a file (UTF-8 with or without
 * BOM, delimiter from the header or a `sep=` line, quoting, trimmed cells, skipped blank lines), never
 * holding more than the parser's chunk. More than `maxBytes` fails with CsvTooLargeError as soon as they arrive.
 */
export async function openCsvStream(
  input: AsyncIterable<Buffer>,
  options: { name: string; maxBytes?: number },
): Promise<CsvTable> {
  const where = `CSV ${options.name}`;
  const iterator = input[Symbol.asyncIterator]();
  const limit = options.maxBytes ?? Infinity;
  let received = 0;
  const next = async (): Promise<Buffer | null> => {
    const step = await iterator.next();
    if (step.done) return null;
    const chunk = Buffer.isBuffer(step.value) ? step.value : Buffer.from(step.value);
    received += chunk.length;
    if (received > limit) throw new CsvTooLargeError(where, limit);
    return chunk;
  };
  const headChunks: Buffer[] = [];
  let headBytes = 0;
  while (headBytes < SNIFF_BYTES) {
    const chunk = await next();
    if (chunk === null) break;
    headChunks.push(chunk);
    headBytes += chunk.length;
  }
  const headBuffer = Buffer.concat(headChunks);
  if (headBuffer.length === 0) throw new CsvInputError(`${where} is empty: expected a header row`);
  const head = sniffHead(headBuffer.subarray(0, SNIFF_BYTES));
  const rest = async function* () {
    yield headBuffer;
    for (let chunk = await next(); chunk !== null; chunk = await next()) yield chunk;
  };
  const source = parseFrom(Readable.from(rest(), { objectMode: false }), head, where);
  const records = source.records[Symbol.asyncIterator]();
  let header: string[];
  let firstRows: CsvRecord[];
  try {
    const first = await records.next();
    if (first.done) throw new CsvInputError(`${where} is empty: expected a header row`);
    header = first.value[0]!.cells.map((name) => name.trim());
    firstRows = first.value.slice(1);
  } catch (error) {
    throw await sourceError(where, null, error);
  }
  try {
    assertUniqueNames(where, header, source.headerLine);
  } catch (error) {
    await records.return?.(undefined); // stops reading the upload
    throw error;
  }
  const rows = async function* () {
    try {
      yield* firstRows;
      for (let step = await records.next(); !step.done; step = await records.next()) yield* step.value;
    } catch (error) {
      throw await sourceError(where, null, error);
    } finally {
      // A consumer that stops early (a row it refuses) stops the reading too.
      await records.return?.(undefined);
    }
  };
  return { delimiter: source.delimiter, encoding: source.encoding, header, rows: rows() };
}

/** Column index of `name` in a header, matched as the CSV reader matches (trimmed, any case); -1 if absent. */
export function columnIndex(header: readonly string[], name: string): number {
  const key = name.trim().toLowerCase();
  return header.findIndex((column) => column.trim().toLowerCase() === key);
}

/**
 * Judges rows already split into cells (an upload's stored rows) exactly as readCsvRecipients judges a
 * file's: the phone normalised with the row's country or the default region, params from the mapped columns.
 * A missing column fails here, as it does before a file is read.
 */
export function rowJudge(
  header: string[],
  options: CsvSourceOptions,
): (cells: string[], rowNumber: number) => IngestRow {
  const plan = planRows("the upload", header, 1, options, checkOptions(options));
  return (cells, rowNumber) => judgeRow(cells, plan, rowNumber);
}

function judgeRow(record: string[], plan: RowPlan, rowNumber: number): IngestRow {
  const raw = record[plan.phoneIndex] ?? "";
  let params: Record<string, string> | null = null;
  let emptyReason: string | null = null;
  if (plan.paramNames.length > 0) {
    params = {};
    for (let i = 0; i < plan.paramNames.length; i++) {
      const value = (record[plan.paramIndexes[i] as number] ?? "").trim();
      params[plan.paramNames[i] as string] = value;
      const column = plan.requiredColumns[i];
      // "Hi , your order  is ready" is worse than not sending: the row is a reject naming the variable.
      if (value === "" && column != null && emptyReason === null)
        emptyReason = `no value for ${plan.paramNames[i]} (column "${column}" is empty)`;
    }
  }
  if (emptyReason !== null) return { rowNumber, raw, phone: null, rejectReason: emptyReason, params };
  // An e-mail address has no country: the row's country cell does not apply to it.
  if (isEmailTarget(raw)) {
    if (!plan.acceptEmail) return { rowNumber, raw, phone: null, rejectReason: EMAIL_NOT_ACCEPTED, params };
    const email = normaliseEmail(raw);
    // The target goes where a number goes: the planner de-duplicates and batches it like one.
    return email.ok
      ? { rowNumber, raw, phone: email.address, rejectReason: null, params }
      : { rowNumber, raw, phone: null, rejectReason: email.reason, params };
  }
  let region = plan.defaultRegion;
  if (plan.countryIndex !== -1) {
    const cell = (record[plan.countryIndex] ?? "").trim();
    if (cell !== "") {
      let known = plan.regions.get(cell);
      if (known === undefined) {
        known = toRegion(cell) ?? null;
        plan.regions.set(cell, known);
      }
      if (known === null)
        return { rowNumber, raw, phone: null, rejectReason: `unknown country code "${cell}"`, params };
      region = known;
    }
  }
  const result = normalisePhone(raw, region, plan.phoneOptions);
  return result.ok
    ? { rowNumber, raw, phone: result.e164, rejectReason: null, params }
    : { rowNumber, raw, phone: null, rejectReason: result.reason, params };
}

function checkOptions(options: CsvSourceOptions): CountryCode | undefined {
  for (const variable of Object.keys(options.paramColumns ?? {})) {
    // A plain object would swallow it as a prototype change and the row would lose the value.
    if (variable === "__proto__") throw new CsvInputError(`"__proto__" cannot be a template variable name`);
  }
  for (const variable of options.allowEmpty ?? []) {
    if (!Object.hasOwn(options.paramColumns ?? {}, variable))
      throw new CsvInputError(
        `--allow-empty ${variable}: "${variable}" is not mapped to a column (--map ${variable}=<column>)`,
      );
  }
  if (options.defaultRegion === undefined || options.defaultRegion.trim() === "") return undefined;
  const region = toRegion(options.defaultRegion);
  if (region === undefined)
    throw new CsvInputError(
      `unknown default region "${options.defaultRegion}": expected an ISO country code such as SG`,
    );
  return region;
}

function planRows(
  where: string,
  record: string[],
  line: number,
  options: CsvSourceOptions,
  defaultRegion: CountryCode | undefined,
): RowPlan {
  const names = record.map((name) => name.trim());
  const keys = names.map((name) => name.toLowerCase());
  const found = names.map((name) => JSON.stringify(name)).join(", ") || "(none)";

  assertUniqueNames(where, names, line);

  const indexOf = (column: string) => keys.indexOf(column.trim().toLowerCase());
  const missing: string[] = [];
  const phoneIndex = indexOf(options.phoneColumn);
  if (phoneIndex === -1) missing.push(`"${options.phoneColumn}" column`);
  const countryIndex = options.countryColumn === undefined ? -1 : indexOf(options.countryColumn);
  if (options.countryColumn !== undefined && countryIndex === -1)
    missing.push(`"${options.countryColumn}" column (for each row's country)`);
  const paramNames: string[] = [];
  const paramIndexes: number[] = [];
  const requiredColumns: Array<string | null> = [];
  const allowEmpty = new Set(options.allowEmpty ?? []);
  for (const [variable, column] of Object.entries(options.paramColumns ?? {})) {
    const index = indexOf(column);
    if (index === -1) missing.push(`"${column}" column (for --map ${variable}=${column})`);
    paramNames.push(variable);
    paramIndexes.push(index);
    requiredColumns.push(allowEmpty.has(variable) ? null : column);
  }
  if (missing.length > 0) {
    throw new CsvInputError(
      `CSV has no ${missing.join(", no ")}; columns found: ${found}.` +
        (phoneIndex === -1 ? ` Choose the phone column with --phone-column <name>.` : ""),
      line,
    );
  }
  return {
    phoneIndex,
    countryIndex,
    paramNames,
    paramIndexes,
    requiredColumns,
    defaultRegion,
    phoneOptions: { requireMobile: options.requireMobile ?? true },
    acceptEmail: options.acceptEmail ?? false,
    regions: new Map(),
  };
}

function assertUniqueNames(where: string, names: string[], line: number): void {
  const keys = names.map((name) => name.toLowerCase());
  // Unnamed columns (a spreadsheet's trailing empty cells) cannot be asked for, so only named ones must be unique.
  const repeated = new Set(keys.filter((key, i) => key !== "" && keys.indexOf(key) !== i));
  if (repeated.size === 0) return;
  const spellings = [...new Set(names.filter((name) => repeated.has(name.toLowerCase())))];
  throw new CsvInputError(
    `${where}: the header repeats column names (ignoring case): ${spellings.map((n) => JSON.stringify(n)).join(", ")}; rename or remove the copies`,
    line,
  );
}

/** `path` is set for files, which can be read again to find where an unclosed quote opened; a stream cannot. */
async function sourceError(where: string, path: string | null, error: unknown): Promise<unknown> {
  if (error instanceof CsvError) return await parseError(where, path, error);
  return path === null ? error : fileError(path, error);
}

async function parseError(where: string, path: string | null, error: CsvError): Promise<CsvInputError> {
  const details = error as CsvError & { lines?: number; record?: unknown[] };
  const line = details.lines;
  const at = (n: number | undefined) => `${where}${n ? `, line ${n}` : ""}`;
  switch (error.code) {
    case "CSV_QUOTE_NOT_CLOSED": {
      const opened = (path === null ? null : await findUnclosedQuoteLine(path).catch(() => null)) ?? line;
      return new CsvInputError(
        `${at(opened)}: a quoted field is never closed (no matching " before the end of the file)`,
        opened,
      );
    }
    case "CSV_MAX_RECORD_SIZE": {
      // Only a file can be read again to tell an unclosed quote from a record that is simply that large.
      const opened =
        path === null ? undefined : await findUnclosedQuoteLine(path, MAX_RECORD_BYTES).catch(() => undefined);
      if (opened != null)
        return new CsvInputError(
          `${at(opened)}: a quoted field opens here and is never closed (not within ${formatBytes(MAX_RECORD_BYTES)})`,
          opened,
        );
      const what = line === undefined || line <= 1 ? "the header" : "a record";
      return new CsvInputError(
        `${at(line)}: ${what} is over ${formatBytes(MAX_RECORD_BYTES)}` +
          (path === null
            ? "; either a quoted field that is never closed, or a field far larger than a contact list holds"
            : "; no cell of a contact list is that large: check that this is the right file and its delimiter"),
        line,
      );
    }
    case "INVALID_OPENING_QUOTE":
      return new CsvInputError(
        `${at(line)}: a " inside an unquoted field; quote the whole field and double the " inside it`,
        line,
      );
    case "CSV_INVALID_CLOSING_QUOTE":
    case "CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE":
      return new CsvInputError(
        `${at(line)}: text after a closing quote; a " inside a quoted field must be doubled ("")`,
        line,
      );
    default:
      return new CsvInputError(`${at(line)}: ${error.message}`, line);
  }
}

async function fileSize(path: string): Promise<number> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    throw fileError(path, error);
  }
  if (!info.isFile()) throw new CsvInputError(`CSV ${path} is not a file`);
  return info.size;
}

function fileError(path: string, error: unknown): unknown {
  if (error instanceof CsvInputError) return error;
  const code = (error as { code?: string }).code;
  // ENOTDIR: a part of the path is a file (`list.csv/x`); ENAMETOOLONG: no file can have that name.
  if (code === "ENOENT" || code === "ENOTDIR" || code === "ENAMETOOLONG")
    return new CsvInputError(`CSV file not found: ${path}`);
  if (code === "EACCES" || code === "EPERM") return new CsvInputError(`CSV ${path} cannot be read: permission denied`);
  if (code === "ELOOP") return new CsvInputError(`CSV ${path} cannot be read: its symbolic links form a loop`);
  if (code === "EISDIR") return new CsvInputError(`CSV ${path} is not a file`);
  return error;
}

function emptyFile(path: string, phoneColumn?: string): CsvInputError {
  return new CsvInputError(
    `CSV ${path} is empty: expected a header row${phoneColumn === undefined ? "" : ` with a "${phoneColumn}" column`}`,
  );
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]} (${bytes} bytes)`;
}

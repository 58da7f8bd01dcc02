import { createReadStream } from "node:fs";
import { parse, CsvError } from "csv-parse";
import { normalisePhone } from "./phone.ts";

/** A data row of the source, already judged: a recipient to store, or a reject with its reason. */
export interface SourceRow {
  /** 1-based data row number (the header is row 0), as a spreadsheet user counts them after the header. */
  rowNumber: number;
  raw: string;
  phone: string | null;
  rejectReason: string | null;
  params: Record<string, string> | null;
}

export interface CsvSourceOptions {
  phoneColumn: string;
  defaultRegion?: string;
}

export class CsvInputError extends Error {
  override name = "CsvInputError";
  constructor(
    message: string,
    readonly line?: number,
  ) {
    super(message);
  }
}

/**
 * Streams a CSV file row by row (never the whole file in memory). The phone column is found by name,
 * case-insensitively and ignoring surrounding spaces; a file without it fails before any row is read.
 */
export async function* readCsvRecipients(path: string, options: CsvSourceOptions): AsyncGenerator<SourceRow> {
  const wanted = options.phoneColumn.trim().toLowerCase();
  let phoneIndex = -1;
  const parser = createReadStream(path).pipe(
    parse({
      bom: true,
      skip_empty_lines: true,
      trim: true,
      info: false,
    }),
  );
  let rowNumber = 0;
  try {
    for await (const record of parser as AsyncIterable<string[]>) {
      if (phoneIndex === -1) {
        const headers = record.map((h) => h.trim());
        phoneIndex = headers.findIndex((h) => h.toLowerCase() === wanted);
        if (phoneIndex === -1) {
          throw new CsvInputError(
            `CSV has no "${options.phoneColumn}" column; columns found: ${headers.map((h) => JSON.stringify(h)).join(", ") || "(none)"}. ` +
              `Choose the phone column with --phone-column <name>.`,
            1,
          );
        }
        continue;
      }
      rowNumber++;
      const raw = record[phoneIndex] ?? "";
      const result = normalisePhone(raw, options.defaultRegion);
      yield result.ok
        ? { rowNumber, raw, phone: result.e164, rejectReason: null, params: null }
        : { rowNumber, raw, phone: null, rejectReason: result.reason, params: null };
    }
  } catch (error) {
    if (error instanceof CsvError) {
      const line = (error as CsvError & { lines?: number }).lines;
      throw new CsvInputError(`CSV ${path}${line ? `, line ${line}` : ""}: ${error.message}`, line);
    }
    if ((error as { code?: string }).code === "ENOENT") throw new CsvInputError(`CSV file not found: ${path}`);
    throw error;
  }
  if (phoneIndex === -1) throw new CsvInputError(`CSV ${path} is empty: expected a header row with a "${options.phoneColumn}" column`);
}

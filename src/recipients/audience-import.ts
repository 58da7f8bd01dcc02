import { importContacts, type ContactImportReport, type ContactRow } from "../store/audience-repository.ts";
import type { Database } from "../store/database.ts";
import { addSuppressions } from "../store/suppression-repository.ts";
import { readCsvHeader, readCsvRecipients } from "./csv-source.ts";

const TAGS_COLUMN = "tags";

export interface ContactCsvOptions {
  phoneColumn: string;
  defaultRegion?: string;
  tags: string[];
  maxBytes?: number;
}

/** Contacts CSV: the phone column, an optional `tags` column, and every other column kept as an attribute. */
export async function importContactsFromCsv(
  db: Database,
  file: string,
  options: ContactCsvOptions,
): Promise<ContactImportReport> {
  const header = await readCsvHeader(file, { maxBytes: options.maxBytes });
  const phone = options.phoneColumn.trim().toLowerCase();
  // Attribute names are the headers as written (trimmed); lookups by column are case-insensitive.
  const paramColumns = Object.fromEntries(header.filter((h) => h.toLowerCase() !== phone).map((h) => [h, h]));
  const rows = readCsvRecipients(file, {
    phoneColumn: options.phoneColumn,
    defaultRegion: options.defaultRegion,
    paramColumns,
    // A contact without a value for some attribute is still a contact: empty cells are allowed here.
    allowEmpty: Object.keys(paramColumns),
    maxBytes: options.maxBytes,
  });
  return importContacts(db, toContactRows(rows, options.tags));
}

async function* toContactRows(
  rows: ReturnType<typeof readCsvRecipients>,
  extraTags: string[],
): AsyncGenerator<ContactRow> {
  for await (const row of rows) {
    const attributes: Record<string, string> = {};
    let tags = extraTags;
    for (const [key, value] of Object.entries(row.params ?? {})) {
      if (key.toLowerCase() === TAGS_COLUMN) {
        tags = [
          ...new Set([
            ...extraTags,
            ...value
              .split(/[;|]/)
              .map((t) => t.trim())
              .filter(Boolean),
          ]),
        ];
      } else if (value !== "") {
        attributes[key] = value;
      }
    }
    yield {
      rowNumber: row.rowNumber,
      phone: row.phone,
      rejectReason: row.rejectReason,
      raw: row.raw,
      attributes,
      tags,
    };
  }
}

export interface SuppressionCsvOptions {
  phoneColumn: string;
  defaultRegion?: string;
  reason: string;
  maxBytes?: number;
}

export interface SuppressionImportReport {
  rows: number;
  added: number;
  rejects: Array<{ rowNumber: number; raw: string; reason: string }>;
}

/** Every valid number of the file is suppressed, landlines included (an opt-out is an opt-out). */
export async function importSuppressionsFromCsv(
  db: Database,
  file: string,
  options: SuppressionCsvOptions,
): Promise<SuppressionImportReport> {
  const rows = readCsvRecipients(file, {
    phoneColumn: options.phoneColumn,
    defaultRegion: options.defaultRegion,
    maxBytes: options.maxBytes,
    requireMobile: false,
  });
  const report: SuppressionImportReport = { rows: 0, added: 0, rejects: [] };
  let chunk: string[] = [];
  for await (const row of rows) {
    report.rows++;
    if (row.phone === null) {
      if (report.rejects.length < 1_000)
        report.rejects.push({ rowNumber: row.rowNumber, raw: row.raw, reason: row.rejectReason ?? "invalid" });
      continue;
    }
    chunk.push(row.phone);
    if (chunk.length === 10_000) {
      report.added += await addSuppressions(db, chunk, options.reason, `import:${file}`);
      chunk = [];
    }
  }
  report.added += await addSuppressions(db, chunk, options.reason, `import:${file}`);
  return report;
}

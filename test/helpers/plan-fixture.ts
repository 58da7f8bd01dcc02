import type { IngestRow } from "../../src/model/ingest-row.ts";

/** `length` rows of an unpersonalised list: every 50th not a number, the others `numbers` shuffled, most repeated. */
export function mixedRows(numbers: readonly string[], length: number): IngestRow[] {
  return Array.from({ length }, (_, i) => {
    const rowNumber = i + 2;
    if (i % 50 === 7)
      return { rowNumber, raw: `junk${i}`, phone: null, rejectReason: "not a phone number", params: null };
    const phone = numbers[(i * 7) % numbers.length]!;
    return { rowNumber, raw: `raw ${phone}`, phone, rejectReason: null, params: null };
  });
}

/**
 * What any correct plan of these rows gives, computed in the plainest way: first occurrence wins, suppressed
 * numbers become rejects, the other repeats are rejected naming the row they repeat.
 */
export function expectedPlan(
  rows: readonly IngestRow[],
  isSuppressed: (phone: string) => boolean,
): { recipients: Array<[string, number]>; rejects: Array<[number, string]> } {
  const firstRow = new Map<string, number>();
  const recipients: Array<[string, number]> = [];
  const rejects: Array<[number, string]> = [];
  for (const row of rows) {
    if (row.phone === null) rejects.push([row.rowNumber, row.rejectReason!]);
    else if (isSuppressed(row.phone)) rejects.push([row.rowNumber, "suppressed"]);
    else if (firstRow.has(row.phone)) rejects.push([row.rowNumber, `duplicate of row ${firstRow.get(row.phone)}`]);
    else {
      firstRow.set(row.phone, row.rowNumber);
      recipients.push([row.phone, row.rowNumber]);
    }
  }
  return { recipients, rejects: rejects.sort((a, b) => a[0] - b[0]) };
}

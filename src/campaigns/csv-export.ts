import type { Writable } from "node:stream";
import { once } from "node:events";

const FORMULA_START = /^[=+\-@\t\r]/;
// "+6591234567", "-12", "+1.5": a spreadsheet reads these as numbers, not formulas.
const PLAIN_NUMBER = /^[+-]?\d+(\.\d+)?$/;

/**
 * A cell a spreadsheet would run as a formula (=, +, -, @, or a leading tab/CR) gets a leading apostrophe
 * (OWASP "CSV injection"): exported rejects contain whatever raw text the uploaded list had. A plain number
 * (an E.164 phone number above all) is left as it is, so a report can be imported again.
 */
export function escapeFormula(value: string): string {
  return FORMULA_START.test(value) && !PLAIN_NUMBER.test(value) ? `'${value}` : value;
}

export function csvCell(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return "";
  const text = typeof value === "number" ? String(value) : escapeFormula(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function csvLine(cells: ReadonlyArray<string | number | null | undefined>): string {
  return cells.map(csvCell).join(",") + "\n";
}

/** Writes lines to a stream honouring back-pressure. */
export async function writeLine(out: Writable, line: string): Promise<void> {
  if (!out.write(line)) await once(out, "drain");
}

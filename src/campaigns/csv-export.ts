import type { Writable } from "node:stream";
import { once } from "node:events";

/**
 * A cell a spreadsheet would run as a formula (=, +, -, @, or a leading tab/CR) gets a leading apostrophe
 * (OWASP "CSV injection"): exported rejects contain whatever raw text the uploaded list had.
 */
export function escapeFormula(value: string): string {
  return /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
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

import type { Writable } from "node:stream";

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

/**
 * Writes lines to a stream honouring back-pressure. A stream that is closed or fails while we wait (a
 * download cancelled, `report | head` exiting) rejects, so the export stops and frees its cursor instead
 * of waiting for a drain that never comes.
 */
export async function writeLine(out: Writable, line: string): Promise<void> {
  if (out.destroyed) throw new OutputClosedError();
  if (out.write(line)) return;
  await new Promise<void>((resolve, reject) => {
    const settle = (error?: Error) => {
      out.off("drain", onDrain);
      out.off("close", onClose);
      out.off("error", onError);
      if (error) reject(error);
      else resolve();
    };
    const onDrain = () => settle();
    const onClose = () => settle(new OutputClosedError());
    const onError = (error: Error) => settle(error);
    out.once("drain", onDrain);
    out.once("close", onClose);
    out.once("error", onError);
  });
}

/** The reader of an export went away (a cancelled download, a closed pipe). */
export class OutputClosedError extends Error {
  override name = "OutputClosedError";
  constructor() {
    super("the output was closed before the export finished");
  }
}

/** `report | head`: the reader closed the pipe, which is how a pager or `head` says it has seen enough. */
export function isClosedOutput(error: unknown): boolean {
  return error instanceof OutputClosedError || (error as { code?: string }).code === "EPIPE";
}

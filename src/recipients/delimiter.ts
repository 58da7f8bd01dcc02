export type Delimiter = "," | ";" | "\t";

const CANDIDATES: readonly Delimiter[] = [",", ";", "\t"];

/**
 * Picks the field delimiter from the header line: the candidate seen most often outside double quotes.
 * Ties and a single-column header fall back to the earlier candidate, so a plain one-column file reads as ",".
 * Only the header is looked at: data cells hold free text (a ";" in a comma file's field must stay in it).
 */
export function detectDelimiter(headerLine: string): Delimiter {
  const counts = [0, 0, 0];
  let quoted = false;
  for (let i = 0; i < headerLine.length; i++) {
    const ch = headerLine[i];
    if (ch === '"') quoted = !quoted;
    else if (!quoted) {
      const index = CANDIDATES.indexOf(ch as Delimiter);
      if (index !== -1) counts[index] = (counts[index] ?? 0) + 1;
    }
  }
  let best = 0;
  for (let i = 1; i < CANDIDATES.length; i++) if ((counts[i] ?? 0) > (counts[best] ?? 0)) best = i;
  return CANDIDATES[best] ?? ",";
}

export function describeDelimiter(delimiter: Delimiter): string {
  return delimiter === "\t" ? "tab" : `"${delimiter}"`;
}

const QUOTE = 0x22;
const CR = 0x0d;
const LF = 0x0a;
/**
 * A partial line held longer than this goes to csv-parse, which knows the record-size limit's exact rule
 * and error; no line of a contact list is anywhere near it.
 */
const MAX_CARRIED_BYTES = 512 * 1024;

/**
 * Splits CSV bytes without a single `"` into records, exactly as csv-parse does with the reader's options
 * (`trim`, `relax_column_count`, `skip_empty_lines: false`, `bom`): lines end at the record delimiter the
 * first line break shows (`\n` or `\r\n`), cells at the delimiter, each cell trimmed as String#trim trims
 * (the same characters as csv-parse's `trim`). csv-parse walks every byte in JavaScript: ~0.85 s of a
 * 1M-row launch's producer thread, where this is a split per line (README "Performance").
 *
 * A chunk it cannot split exactly (a quote, a `\r` line ending, a lone `\r` or `\n` in a `\r\n` file, a
 * very long line) makes `push` return null: nothing of it was consumed, and the caller hands `unsplit()`
 * and the rest of the file to csv-parse. The split is never a guess.
 */
export class PlainCsvSplitter {
  #carry: Buffer = Buffer.alloc(0);
  #crlf: boolean | undefined;
  #lines = 0;
  #fellBack = false;

  constructor(private readonly delimiter: string) {}

  /** Lines split so far (each one a record: without quotes no record spans lines). */
  get lines(): number {
    return this.#lines;
  }

  /** The record delimiter found, once a line break was seen. */
  get recordDelimiter(): "\n" | "\r\n" | undefined {
    return this.#crlf === undefined ? undefined : this.#crlf ? "\r\n" : "\n";
  }

  /** The records of every line completed by `chunk`, or null when csv-parse must take over from here. */
  push(chunk: Buffer): string[][] | null {
    if (this.#fellBack) throw new Error("PlainCsvSplitter: push after a fall-back");
    const buf = this.#carry.length === 0 ? chunk : Buffer.concat([this.#carry, chunk]);
    if (chunk.indexOf(QUOTE) !== -1 || !this.#findLineEnding(buf)) return this.#fallBack(buf);
    const end = buf.lastIndexOf(LF);
    if (end === -1) {
      if (buf.length > MAX_CARRIED_BYTES) return this.#fallBack(buf);
      this.#carry = buf;
      return [];
    }
    if (!this.#lineEndsConsistent(buf) || this.#hasLongLine(buf)) return this.#fallBack(buf);
    this.#carry = buf.subarray(end + 1);
    return this.#split(buf, end);
  }

  /** At the end of the input: the last line, if it has no line break after it; null, as `push`, for one with a `\r`. */
  end(): string[][] | null {
    const rest = this.#carry;
    if (rest.indexOf(CR) !== -1) return this.#fallBack(rest);
    this.#carry = Buffer.alloc(0);
    const last = this.#split(rest, rest.length);
    // csv-parse ends a file without a last record when its last line (after the final line break) holds
    // nothing but whitespace; a blank line before a line break is a record.
    return last.length === 1 && last[0]!.length === 1 && last[0]![0] === "" ? [] : last;
  }

  /** After `push` or `end` returned null: the bytes from the first line not split, for csv-parse. */
  unsplit(): Buffer {
    return this.#carry;
  }

  #fallBack(buf: Buffer): null {
    this.#carry = buf;
    this.#fellBack = true;
    return null;
  }

  /** Settles `\n` or `\r\n` at the first line break; false for a `\r` line ending (or one not yet decidable at the very end of `buf`, which just waits: true). */
  #findLineEnding(buf: Buffer): boolean {
    if (this.#crlf !== undefined) return true;
    const lf = buf.indexOf(LF);
    const cr = buf.indexOf(CR);
    if (cr === -1 || (lf !== -1 && lf < cr)) {
      if (lf !== -1) this.#crlf = false;
      return true;
    }
    if (cr === buf.length - 1) return true; // its next byte is in the next chunk
    if (buf[cr + 1] !== LF) return false;
    this.#crlf = true;
    return true;
  }

  /** Every line break in `buf` is the record delimiter: no `\r` in a `\n` file; in a `\r\n` file each `\r` is followed by `\n` and each `\n` preceded by `\r` (a `\r` ending the carried part waits). */
  #lineEndsConsistent(buf: Buffer): boolean {
    if (this.#crlf === false) return buf.indexOf(CR) === -1;
    for (let at = buf.indexOf(LF); at !== -1; at = buf.indexOf(LF, at + 1))
      if (at === 0 || buf[at - 1] !== CR) return false;
    for (let at = buf.indexOf(CR); at !== -1; at = buf.indexOf(CR, at + 1))
      if (at + 1 < buf.length && buf[at + 1] !== LF) return false;
    return true;
  }

  /** A line over MAX_CARRIED_BYTES (only a buffer longer than that can hold one: a chunk of an upload may be large). */
  #hasLongLine(buf: Buffer): boolean {
    if (buf.length <= MAX_CARRIED_BYTES) return false;
    let start = 0;
    for (let at = buf.indexOf(LF); at !== -1; at = buf.indexOf(LF, at + 1)) {
      if (at - start > MAX_CARRIED_BYTES) return true;
      start = at + 1;
    }
    return buf.length - start > MAX_CARRIED_BYTES;
  }

  /** Records of `buf[0, end)`: lines separated by `\n` (a `\r` before it is trimmed with the last cell). */
  #split(buf: Buffer, end: number): string[][] {
    // The file's BOM, on its first line only (csv-parse's `bom`).
    const start = this.#lines === 0 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf ? 3 : 0;
    const text = buf.toString("utf8", start, end);
    const records: string[][] = [];
    const delimiter = this.delimiter;
    for (let from = 0; from <= text.length;) {
      let to = text.indexOf("\n", from);
      if (to === -1) to = text.length;
      const cells = text.slice(from, to).split(delimiter);
      for (let i = 0; i < cells.length; i++) cells[i] = cells[i]!.trim();
      records.push(cells);
      from = to + 1;
    }
    this.#lines += records.length;
    return records;
  }
}

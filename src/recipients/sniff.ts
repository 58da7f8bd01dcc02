import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { detectDelimiter, type Delimiter } from "./delimiter.ts";

export const SNIFF_BYTES = 64 * 1024;

/** The only text encoding read (a legacy code page fails with the line to fix); the BOM is optional. */
export type CsvEncoding = "utf-8" | "utf-8-bom";

export interface FileHead {
  /** The first bytes of the file (up to SNIFF_BYTES). */
  bytes: Buffer;
  /** Set when the head shows the file is not UTF-8 text: why, in words for the user. */
  notText: string | null;
  delimiter: Delimiter;
  encoding: CsvEncoding;
  /** 1-based physical line of the header (empty lines before it are skipped, as the parser does). */
  headerLine: number;
  /** Excel's `sep=;` first line: it names the delimiter and is not part of the data. Its line number, else null. */
  sepLine: number | null;
}

const SIGNATURES: ReadonlyArray<readonly [string, number[]]> = [
  ["an Excel workbook or a zip archive; export it as CSV UTF-8", [0x50, 0x4b, 0x03, 0x04]],
  ["an old Excel (.xls) workbook; export it as CSV UTF-8", [0xd0, 0xcf, 0x11, 0xe0]],
  ["a PNG image", [0x89, 0x50, 0x4e, 0x47]],
  ["a JPEG image", [0xff, 0xd8, 0xff]],
  ["a PDF document", [0x25, 0x50, 0x44, 0x46, 0x2d]],
  ["a gzip archive", [0x1f, 0x8b]],
];

function startsWith(bytes: Buffer, signature: readonly number[]): boolean {
  return bytes.length >= signature.length && signature.every((byte, i) => bytes[i] === byte);
}

export async function readHead(path: string): Promise<FileHead> {
  const handle = await open(path, "r");
  let bytes: Buffer;
  try {
    const buffer = Buffer.alloc(SNIFF_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, SNIFF_BYTES, 0);
    bytes = buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
  return sniffHead(bytes);
}

/** What the first bytes of a CSV say: text or not, the delimiter (a `sep=` line wins), BOM, the header's line. */
export function sniffHead(bytes: Buffer): FileHead {
  const encoding: CsvEncoding = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? "utf-8-bom" : "utf-8";
  const first = headerText(bytes, 0, 1);
  const sep = /^sep=(.)$/i.exec(first.text);
  if (sep && SEP_DELIMITERS.has(sep[1] as Delimiter)) {
    const header = headerText(bytes, first.end, first.line + 1);
    return {
      bytes,
      notText: notTextReason(bytes),
      delimiter: sep[1] as Delimiter,
      encoding,
      headerLine: header.line,
      sepLine: first.line,
    };
  }
  return {
    bytes,
    notText: notTextReason(bytes),
    delimiter: detectDelimiter(first.text),
    encoding,
    headerLine: first.line,
    sepLine: null,
  };
}

const SEP_DELIMITERS = new Set<Delimiter>([",", ";", "\t"]);

function notTextReason(bytes: Buffer): string | null {
  // Excel's "Unicode text" export: every other byte is NUL, so say what it is rather than only "binary".
  if (startsWith(bytes, [0xff, 0xfe]) || startsWith(bytes, [0xfe, 0xff])) return "UTF-16 text; save it as CSV UTF-8";
  for (const [what, signature] of SIGNATURES) if (startsWith(bytes, signature)) return what;
  return bytes.includes(0) ? "binary data (it contains NUL bytes)" : null;
}

/**
 * The first non-blank line of the head from character `from` (line `firstLine`), up to a line break outside
 * double quotes (BOM removed): its text, its line number, and where the line after it starts.
 */
function headerText(bytes: Buffer, from: number, firstLine: number): { text: string; line: number; end: number } {
  let text = bytes.toString("utf8");
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let line = firstLine;
  let start = from;
  // Blank lines before the header are skipped by the parser (it trims, so whitespace-only lines count as blank).
  for (;;) {
    const match = /\r\n|\r|\n/.exec(text.slice(start));
    if (match === null || text.slice(start, start + match.index).trim() !== "") break;
    start += match.index + match[0].length;
    line++;
  }
  let quoted = false;
  let end = start;
  for (; end < text.length; end++) {
    const ch = text[end];
    if (ch === '"') quoted = !quoted;
    else if (!quoted && (ch === "\n" || ch === "\r")) break;
  }
  const next = text[end] === "\r" && text[end + 1] === "\n" ? end + 2 : end + 1;
  return { text: text.slice(start, end), line, end: next };
}

/**
 * Finds where a quoted field that never closes was opened, by re-reading the file (only after the parser has
 * failed, so the normal path pays nothing). Every `"` before it was a field boundary or a doubled quote — the
 * parser rejects any other — so the quoted state simply flips at each one. With `maxFieldBytes`, a field
 * still open that many bytes after its quote counts as the culprit too.
 */
export async function findUnclosedQuoteLine(path: string, maxFieldBytes = Infinity): Promise<number | null> {
  let quoted = false;
  let line = 1;
  let openedAtLine = 0;
  let openedAtByte = 0;
  let offset = 0;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i];
      if (byte === 0x22) {
        quoted = !quoted;
        if (quoted) {
          openedAtLine = line;
          openedAtByte = offset + i;
        }
      } else if (byte === 0x0a) {
        line++;
        if (quoted && offset + i - openedAtByte > maxFieldBytes) return openedAtLine;
      }
    }
    offset += chunk.length;
  }
  return quoted ? openedAtLine : null;
}

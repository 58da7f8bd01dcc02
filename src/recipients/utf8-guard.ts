import { Transform, type TransformCallback } from "node:stream";

const NEWLINE = 0x0a;

/**
 * Passes bytes through unchanged after checking they are UTF-8, so a file saved in a legacy code page fails
 * with the line to fix instead of sending mojibake. Only the decoder's few bytes of an unfinished character
 * are held between chunks; the file is never buffered.
 */
export class Utf8Guard extends Transform {
  private readonly decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  /** Newlines in the bytes already passed on: the error's line is this + those before it in the chunk + 1. */
  private newlines = 0;
  private previous: Uint8Array | null = null;

  constructor(private readonly onInvalid: (line: number) => Error) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.decoder.decode(chunk, { stream: true });
    } catch {
      callback(this.onInvalid(this.lineOfInvalidByte(chunk)));
      return;
    }
    this.newlines += countNewlines(chunk, chunk.length);
    this.previous = chunk;
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.decoder.decode();
    } catch {
      // The file ends inside a multi-byte character: the last line is to blame.
      callback(this.onInvalid(this.newlines + 1));
      return;
    }
    callback();
  }

  private lineOfInvalidByte(chunk: Buffer): number {
    // The decoder may have held the start of a character from the previous chunk; it has no newline in it.
    const carried = this.previous === null ? new Uint8Array(0) : unfinishedTail(this.previous);
    const joined = Buffer.concat([carried, chunk]);
    const at = firstInvalidUtf8(joined);
    return this.newlines + (at === -1 ? 0 : countNewlines(joined, at)) + 1;
  }
}

function countNewlines(bytes: Buffer, end: number): number {
  let count = 0;
  let at = bytes.indexOf(NEWLINE);
  while (at !== -1 && at < end) {
    count++;
    at = bytes.indexOf(NEWLINE, at + 1);
  }
  return count;
}

/** Bytes a well-formed sequence starting with `lead` has after it, or -1 if `lead` cannot start one. */
function continuationCount(lead: number): number {
  if (lead < 0x80) return 0;
  if (lead >= 0xc2 && lead <= 0xdf) return 1;
  if (lead >= 0xe0 && lead <= 0xef) return 2;
  if (lead >= 0xf0 && lead <= 0xf4) return 3;
  return -1;
}

/** The start of a character cut off at the end of `bytes` (empty when the last character is complete). */
export function unfinishedTail(bytes: Uint8Array): Uint8Array {
  for (let back = 1; back <= 3 && back <= bytes.length; back++) {
    const byte = bytes[bytes.length - back] ?? 0;
    if (byte < 0x80 || byte >= 0xc0) {
      const needed = continuationCount(byte);
      return needed >= back ? bytes.subarray(bytes.length - back) : new Uint8Array(0);
    }
  }
  return new Uint8Array(0);
}

/**
 * Index of the first byte that starts an ill-formed sequence (Unicode table 3-7: no overlongs, surrogates or
 * code points past U+10FFFF), or -1 when all is well-formed apart from a character cut off at the end.
 */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i] ?? 0;
    if (lead < 0x80) {
      i++;
      continue;
    }
    const needed = continuationCount(lead);
    if (needed < 0) return i;
    // Only the first continuation byte has a narrower range, for the leads that could encode out-of-range values.
    const low = lead === 0xe0 ? 0xa0 : lead === 0xf0 ? 0x90 : 0x80;
    const high = lead === 0xed ? 0x9f : lead === 0xf4 ? 0x8f : 0xbf;
    for (let k = 1; k <= needed; k++) {
      if (i + k >= bytes.length) return -1;
      const next = bytes[i + k] ?? 0;
      if (k === 1 ? next < low || next > high : next < 0x80 || next > 0xbf) return i;
    }
    i += needed + 1;
  }
  return -1;
}

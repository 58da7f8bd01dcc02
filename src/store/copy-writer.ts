import { once } from "node:events";
import { Writable } from "node:stream";
import type pg from "pg";
import { from as copyFrom } from "pg-copy-streams";

const FLUSH_BYTES = 64 * 1024;
/** A UTF-16 code unit is at most 3 bytes of UTF-8: a cell of n code units fits in 3n bytes. */
const MAX_UTF8_PER_UNIT = 3;
const TAB = 0x09;
const NEWLINE = 0x0a;
const ZERO = 0x30;

/**
 * Buffers rows of a COPY ... FROM STDIN (text format) and writes them in 64 KB chunks, waiting for
 * 'drain' so a million-row ingest keeps flat memory. Per-row writes are ~3x slower (README "Performance").
 * Each cell is encoded straight into the chunk's Buffer (outside the JS heap): a 64 KB string built by
 * `+=` kept ~1,400 line strings alive until the flush, and those a scavenge caught were promoted to the
 * old generation, which V8 then grew lazily (README "Performance", producer memory).
 */
export class CopyTextWriter {
  #chunk = Buffer.allocUnsafe(FLUSH_BYTES);
  #used = 0;
  constructor(private readonly stream: Writable) {}

  async writeRow(fields: ReadonlyArray<string | number | null>): Promise<void> {
    for (let i = 0; i < fields.length; i++) {
      const value = fields[i];
      const text = typeof value === "string" ? escapeCopyText(value) : null;
      // Room for the field's longest encoding plus its tab or newline; a full chunk goes out first.
      const most = text !== null ? text.length * MAX_UTF8_PER_UNIT + 1 : value == null ? 3 : 25;
      if (this.#used + most > FLUSH_BYTES) await this.flush();
      if (text !== null) {
        // A cell longer than a chunk (a large params value) goes out as its own chunk: COPY data need not
        // break at row ends.
        if (most > FLUSH_BYTES) await this.#write(Buffer.from(text, "utf8"));
        else this.#used += this.#chunk.write(text, this.#used, "utf8");
      } else if (typeof value === "number") this.#writeNumber(value);
      else this.#used += this.#chunk.write("\\N", this.#used, "latin1");
      this.#chunk[this.#used++] = i === fields.length - 1 ? NEWLINE : TAB;
    }
  }

  /** Digits straight into the chunk: String(n) goes through V8's number-string cache, which keeps each string long enough to be promoted. */
  #writeNumber(value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) {
      this.#used += this.#chunk.write(String(value), this.#used, "latin1");
      return;
    }
    let digits = 1;
    for (let rest = value; rest >= 10; rest = Math.floor(rest / 10)) digits++;
    let at = this.#used + digits;
    this.#used = at;
    let rest = value;
    do {
      this.#chunk[--at] = ZERO + (rest % 10);
      rest = Math.floor(rest / 10);
    } while (rest > 0);
  }

  /** Rows already encoded (a CopyRowBuffer's chunks), written as they are after the rows before them. */
  async writeEncoded(chunk: Buffer): Promise<void> {
    await this.flush();
    await this.#write(chunk);
  }

  async flush(): Promise<void> {
    if (this.#used === 0) return;
    const chunk = this.#chunk.subarray(0, this.#used);
    // The socket may hold the written chunk until the kernel takes it: the next rows go into a new Buffer.
    this.#chunk = Buffer.allocUnsafe(FLUSH_BYTES);
    this.#used = 0;
    await this.#write(chunk);
  }

  async #write(chunk: Buffer): Promise<void> {
    if (!this.stream.write(chunk)) await once(this.stream, "drain");
  }

  async end(): Promise<void> {
    await this.flush();
    const finished = once(this.stream, "finish");
    this.stream.end();
    await finished;
  }
}

/**
 * COPY text rows encoded now and sent later, in a COPY of their own: they wait as 64 KB Buffers, off the
 * JS heap. Row objects kept that long would outlive two scavenges and be promoted, and V8 grows the old
 * generation lazily before collecting them (README "Producer memory").
 */
export class CopyRowBuffer {
  #chunks: Buffer[] = [];
  #bytes = 0;
  readonly #writer = new CopyTextWriter(
    new Writable({
      highWaterMark: 4 * FLUSH_BYTES,
      write: (chunk: Buffer, _encoding, done) => {
        this.#chunks.push(chunk);
        this.#bytes += chunk.length;
        done();
      },
    }),
  );

  writeRow(fields: ReadonlyArray<string | number | null>): Promise<void> {
    return this.#writer.writeRow(fields);
  }

  /** Bytes in full chunks so far (the chunk being filled is not counted). */
  get bytes(): number {
    return this.#bytes;
  }

  /** Every row written so far, as chunks (none when nothing was written); the buffer is empty again. */
  async take(): Promise<Buffer[]> {
    await this.#writer.flush();
    const chunks = this.#chunks;
    this.#chunks = [];
    this.#bytes = 0;
    return chunks;
  }
}

const NEEDS_ESCAPE = /[\\\t\n\r]/;

export function escapeCopyText(value: string): string {
  if (!NEEDS_ESCAPE.test(value)) return value;
  return value.replace(/[\\\t\n\r]/g, (c) => (c === "\\" ? "\\\\" : c === "\t" ? "\\t" : c === "\n" ? "\\n" : "\\r"));
}

/**
 * Runs one `COPY … FROM STDIN`: `fill` writes the rows, the COPY ends when it returns. If `fill` (or the
 * source it reads) throws, the COPY is aborted and waited for, so the connection is usable for the
 * ROLLBACK that follows; the error is rethrown.
 */
export async function copyIn<T>(
  client: pg.PoolClient,
  sql: string,
  fill: (writer: CopyTextWriter) => Promise<T>,
): Promise<T> {
  const stream = client.query(copyFrom(sql));
  const writer = new CopyTextWriter(stream);
  try {
    const result = await fill(writer);
    await writer.end();
    return result;
  } catch (error) {
    stream.destroy(error instanceof Error ? error : new Error(String(error)));
    await settled(stream);
    throw error;
  }
}

function settled(stream: NodeJS.EventEmitter): Promise<void> {
  return new Promise((resolve) => {
    stream.once("error", () => resolve());
    stream.once("close", () => resolve());
    setTimeout(resolve, 1_000).unref();
  });
}

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
 * A COPY's data in 64 KB Buffers, each written with 'drain' waited for, so a million-row ingest keeps flat
 * memory; per-row writes are ~3x slower (README "Performance"). The writers below encode their rows straight
 * into `chunk` at `used`, outside the JS heap.
 */
abstract class ChunkedCopyData {
  protected chunk = Buffer.allocUnsafe(FLUSH_BYTES);
  protected used = 0;
  constructor(private readonly stream: Writable) {}

  async flush(): Promise<void> {
    if (this.used === 0) return;
    const chunk = this.chunk.subarray(0, this.used);
    // The socket may hold the written chunk until the kernel takes it: the next rows go into a new Buffer.
    this.chunk = Buffer.allocUnsafe(FLUSH_BYTES);
    this.used = 0;
    await this.write(chunk);
  }

  async end(): Promise<void> {
    await this.flush();
    const finished = once(this.stream, "finish");
    this.stream.end();
    await finished;
  }

  /** Room for `bytes` more in the chunk: a chunk without it goes out first. */
  protected async reserve(bytes: number): Promise<void> {
    if (this.used + bytes > FLUSH_BYTES) await this.flush();
  }

  protected async write(chunk: Buffer): Promise<void> {
    if (!this.stream.write(chunk)) await once(this.stream, "drain");
  }
}

/**
 * Rows of a COPY ... FROM STDIN (text format). Each cell is encoded straight into the chunk's Buffer: a
 * 64 KB string built by `+=` kept ~1,400 line strings alive until the flush, and those a scavenge caught were
 * promoted to the old generation, which V8 then grew lazily (README "Performance", producer memory).
 */
export class CopyTextWriter extends ChunkedCopyData {
  async writeRow(fields: ReadonlyArray<string | number | null>): Promise<void> {
    for (let i = 0; i < fields.length; i++) {
      const value = fields[i];
      const text = typeof value === "string" ? escapeCopyText(value) : null;
      // Room for the field's longest encoding plus its tab or newline.
      const most = text !== null ? text.length * MAX_UTF8_PER_UNIT + 1 : value == null ? 3 : 25;
      await this.reserve(most);
      if (text !== null) {
        // A cell longer than a chunk (a large params value) goes out as its own chunk: COPY data need not
        // break at row ends.
        if (most > FLUSH_BYTES) await this.write(Buffer.from(text, "utf8"));
        else this.used += this.chunk.write(text, this.used, "utf8");
      } else if (typeof value === "number") this.#writeNumber(value);
      else this.used += this.chunk.write("\\N", this.used, "latin1");
      this.chunk[this.used++] = i === fields.length - 1 ? NEWLINE : TAB;
    }
  }

  /** Digits straight into the chunk: String(n) goes through V8's number-string cache, which keeps each string long enough to be promoted. */
  #writeNumber(value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) {
      this.used += this.chunk.write(String(value), this.used, "latin1");
      return;
    }
    let digits = 1;
    for (let rest = value; rest >= 10; rest = Math.floor(rest / 10)) digits++;
    let at = this.used + digits;
    this.used = at;
    let rest = value;
    do {
      this.chunk[--at] = ZERO + (rest % 10);
      rest = Math.floor(rest / 10);
    } while (rest > 0);
  }

  /** Rows already encoded (a CopyRowBuffer's chunks), written as they are after the rows before them. */
  async writeEncoded(chunk: Buffer): Promise<void> {
    await this.flush();
    await this.write(chunk);
  }
}

/** PostgreSQL's binary COPY signature, flags and header extension length (an empty one). */
const BINARY_HEADER = Buffer.from([
  0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00, 0, 0, 0, 0, 0, 0, 0, 0,
]);

/**
 * The recipients of a streamed plan as rows of a `COPY recipients (campaign_id, phone, row_number,
 * batch_sequence) FROM STDIN WITH (FORMAT binary)`. Binary rows cost the one Postgres backend that takes a
 * launch's COPY 10 to 15 % less than text (no uuid or integer to parse: 1.17–1.35 s against 1.41–1.50 s for
 * a million rows into `recipients`, measured), and that backend is what a launch of an unpersonalised list
 * waits for once the CSV is split per line.
 */
export class RecipientCopyWriter extends ChunkedCopyData {
  readonly #campaignId: Buffer;

  constructor(stream: Writable, campaignId: string) {
    super(stream);
    this.#campaignId = Buffer.from(campaignId.replace(/-/g, ""), "hex");
    if (this.#campaignId.length !== 16) throw new Error(`not a uuid: ${campaignId}`);
    this.used = BINARY_HEADER.copy(this.chunk, 0);
  }

  async writeRecipient(phone: string, rowNumber: number, batchSequence: number): Promise<void> {
    // 2 (field count) + 4 + 16 (uuid) + 4 + phone + 4 + 4 + 4 + 4.
    const most = 42 + phone.length * MAX_UTF8_PER_UNIT;
    if (most > FLUSH_BYTES) throw new Error(`recipient too long for a COPY row: ${phone.length} characters`);
    await this.reserve(most);
    const chunk = this.chunk;
    let at = chunk.writeInt16BE(4, this.used);
    at = chunk.writeInt32BE(16, at);
    at += this.#campaignId.copy(chunk, at);
    const phoneBytes = chunk.write(phone, at + 4, "utf8");
    chunk.writeInt32BE(phoneBytes, at);
    at += 4 + phoneBytes;
    at = chunk.writeInt32BE(4, at);
    at = chunk.writeInt32BE(rowNumber, at);
    at = chunk.writeInt32BE(4, at);
    this.used = chunk.writeInt32BE(batchSequence, at);
  }

  override async end(): Promise<void> {
    // The trailer: a field count of -1.
    await this.reserve(2);
    this.used = this.chunk.writeInt16BE(-1, this.used);
    await super.end();
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
  return copyWith(client, sql, (stream) => new CopyTextWriter(stream), fill);
}

/** copyIn for the streamed plan's recipients of `campaignId`, in binary rows (RecipientCopyWriter). */
export async function copyRecipientsIn<T>(
  client: pg.PoolClient,
  campaignId: string,
  fill: (writer: RecipientCopyWriter) => Promise<T>,
): Promise<T> {
  return copyWith(
    client,
    `COPY recipients (campaign_id, phone, row_number, batch_sequence) FROM STDIN WITH (FORMAT binary)`,
    (stream) => new RecipientCopyWriter(stream, campaignId),
    fill,
  );
}

async function copyWith<W extends { end(): Promise<void> }, T>(
  client: pg.PoolClient,
  sql: string,
  writerFor: (stream: Writable) => W,
  fill: (writer: W) => Promise<T>,
): Promise<T> {
  const stream = client.query(copyFrom(sql));
  const writer = writerFor(stream);
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

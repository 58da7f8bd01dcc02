import { once } from "node:events";
import type { Writable } from "node:stream";
import type pg from "pg";
import { from as copyFrom } from "pg-copy-streams";

const FLUSH_BYTES = 64 * 1024;

/**
 * Buffers rows of a COPY ... FROM STDIN (text format) and writes them in 64 KB chunks, waiting for
 * 'drain' so a million-row ingest keeps flat memory. Per-row writes are ~3x slower (README "Performance").
 */
export class CopyTextWriter {
  #buffer = "";
  constructor(private readonly stream: Writable) {}

  async writeRow(fields: ReadonlyArray<string | number | null>): Promise<void> {
    let line = "";
    for (let i = 0; i < fields.length; i++) {
      if (i > 0) line += "\t";
      const value = fields[i];
      line +=
        value === null || value === undefined
          ? "\\N"
          : typeof value === "number"
            ? String(value)
            : escapeCopyText(value);
    }
    this.#buffer += line + "\n";
    if (this.#buffer.length >= FLUSH_BYTES) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.#buffer === "") return;
    const chunk = this.#buffer;
    this.#buffer = "";
    if (!this.stream.write(chunk)) await once(this.stream, "drain");
  }

  async end(): Promise<void> {
    await this.flush();
    const finished = once(this.stream, "finish");
    this.stream.end();
    await finished;
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

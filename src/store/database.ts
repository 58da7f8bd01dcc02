import pg from "pg";
import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "./generated/client.ts";
import { isDatabaseUnavailable } from "./database-health.ts";

export type { PrismaClient };

/**
 * One pg pool shared by Prisma (model queries) and raw SQL (COPY and set-based updates over a whole batch,
 * where Prisma's createMany is an order of magnitude slower, see README "Performance").
 */
export interface Database {
  prisma: PrismaClient;
  pool: pg.Pool;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  maxConnections?: number;
  applicationName?: string;
  /** Bound on opening one connection (default 5 s). */
  connectTimeoutMs?: number;
}

export function openDatabase(databaseUrl: string, options: DatabaseOptions = {}): Database {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: options.maxConnections ?? 10,
    application_name: options.applicationName ?? "smsblast",
    // Fail fast when Postgres is unreachable instead of hanging a worker slot.
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
  });
  // An idle client losing its connection (Postgres restart) must not crash the process; the pool replaces it.
  pool.on("error", () => {});
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  let closed = false;
  return {
    prisma,
    pool,
    async close() {
      if (closed) return;
      closed = true;
      await prisma.$disconnect();
      await pool.end();
    },
  };
}

/** Runs `fn` inside one transaction on one pooled connection; `commit: false` rolls back even on success. */
export async function withTransaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
  options: { commit?: boolean } = {},
): Promise<T> {
  const client = await pool.connect();
  // A checked-out client has no error listener of the pool's: without this one, Postgres dropping the
  // connection between two statements is an unhandled 'error' event and kills the process.
  let broken: Error | undefined;
  const onError = (error: Error) => {
    broken = error;
  };
  client.on("error", onError);
  try {
    await client.query("BEGIN");
    const result = await fn(client);
    await client.query(options.commit === false ? "ROLLBACK" : "COMMIT");
    return result;
  } catch (error) {
    if (isDatabaseUnavailable(error)) broken ??= error as Error;
    if (!broken) await client.query("ROLLBACK").catch(() => {});
    throw error;
  } finally {
    client.off("error", onError);
    // A broken connection is destroyed rather than handed to the next caller.
    client.release(broken);
  }
}

import pg from "pg";
import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "./generated/client.ts";
import { isDatabaseUnavailable } from "./database-health.ts";
import type { PhoneHasher } from "../model/phone-hash.ts";

export type { PrismaClient };

/**
 * One pg pool shared by Prisma (model queries) and raw SQL (COPY and set-based updates over a whole batch,
 * where Prisma's createMany is an order of magnitude slower, see README "Performance").
 */
export interface Database {
  prisma: PrismaClient;
  pool: pg.Pool;
  /**
   * The keyed hash of forgotten numbers (SUPPRESSION_HASH_SECRET), for the suppression checks that must honour
   * them (src/store/forgotten-number-repository.ts); undefined when the secret is not set.
   */
  phoneHasher: PhoneHasher | undefined;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  maxConnections?: number;
  applicationName?: string;
  /** Bound on opening one connection (default 5 s). */
  connectTimeoutMs?: number;
  /**
   * Called once for each open connection that PostgreSQL closes (a restart or pg_terminate_backend ends every
   * backend), idle or in use. The pool replaces the connection either way; this only lets the process say so.
   */
  onConnectionLost?: (error: Error) => void;
  /** From the config (SUPPRESSION_HASH_SECRET): see Database.phoneHasher. */
  phoneHasher?: PhoneHasher;
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
  const onConnectionLost = options.onConnectionLost;
  if (onConnectionLost) {
    // PostgreSQL ending a backend (FATAL 57P01 on a restart or pg_terminate_backend, or a dropped socket)
    // surfaces on one of two public paths: the client's 'error' event, which pg emits whenever the socket of a
    // client nobody is ending closes, idle or busy; or, when a running query gets the FATAL and whoever ran it
    // releases the client with that error before the socket closes, the pool's 'release' event with the error
    // (the pool then ends the client itself, so no 'error' follows). Ends the pool asks for (idle timeout,
    // close()) take neither path. One report per connection.
    const reported = new WeakSet<pg.PoolClient>();
    const report = (client: pg.PoolClient, error: Error) => {
      if (reported.has(client)) return;
      reported.add(client);
      onConnectionLost(error);
    };
    pool.on("connect", (client) => client.on("error", (error) => report(client, error)));
    pool.on("release", (error, client) => {
      if (error && isDatabaseUnavailable(error)) report(client, error);
    });
  }
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  let closed = false;
  return {
    prisma,
    pool,
    phoneHasher: options.phoneHasher,
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
  return withConnection(pool, async (client) => {
    await client.query("BEGIN");
    const result = await fn(client);
    await client.query(options.commit === false ? "ROLLBACK" : "COMMIT");
    return result;
  });
}

/**
 * One checked-out connection for `fn`, which may issue its own BEGIN and COMMIT (work that spans
 * transactions: a session's temp table, steps committed one after another). On an error an open
 * transaction is rolled back; `discardTemp` drops the session's temp tables before the connection goes back
 * (DISCARD ALL would also drop the prepared statements pg keeps track of per connection).
 */
export async function withConnection<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
  options: { discardTemp?: boolean } = {},
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
    return await fn(client);
  } catch (error) {
    if (isDatabaseUnavailable(error)) broken ??= error as Error;
    if (!broken) await client.query("ROLLBACK").catch(() => {});
    throw error;
  } finally {
    client.off("error", onError);
    if (options.discardTemp && !broken) await client.query("DISCARD TEMP").catch((error: Error) => (broken = error));
    // A broken connection is destroyed rather than handed to the next caller.
    client.release(broken);
  }
}

// The worker's "PostgreSQL closed a connection" line (src/runtime/send-worker-runtime.ts), which the fault
// suite's postgres-restart scenario asserts for every worker, comes from openDatabase's onConnectionLost: once
// per pooled connection PostgreSQL ends, whether it sat idle or ran a query, and never for ends the pool asks for.
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "../src/store/database.ts";
import { createTestEnv, type TestEnv } from "./helpers/test-env.ts";

const ADMIN_URL = process.env.TEST_ADMIN_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";
const APPLICATION = `smsblast-connloss-${process.pid}`;

async function terminateBackends(): Promise<number> {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ ok: boolean }>(
      `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1`,
      [APPLICATION],
    );
    return rows.filter((r) => r.ok).length;
  } finally {
    await admin.end();
  }
}

describe("openDatabase onConnectionLost", () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv("connloss");
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it("reports each connection PostgreSQL ends, idle or busy, once; the pool carries on; close() is silent", async () => {
    const lost: Array<string | undefined> = [];
    const db = openDatabase(env.config.databaseUrl, {
      applicationName: APPLICATION,
      onConnectionLost: (error) => lost.push((error as { code?: string }).code),
    });
    // Three connections: one idle in the pool, one checked out and inside a query (released with the query's
    // error, as withTransaction does), one inside pool.query (as Prisma's queries are).
    const [idle, forPoolQuery, checkedOut] = (await Promise.all([1, 2, 3].map(() => db.pool.connect()))) as [
      pg.PoolClient,
      pg.PoolClient,
      pg.PoolClient,
    ];
    idle.release();
    forPoolQuery.release();
    const failure = (query: Promise<unknown>) =>
      query.then(
        () => undefined,
        (error: Error & { code?: string }) => error,
      );
    const inTransaction = failure(checkedOut.query("SELECT pg_sleep(30)"));
    const inPoolQuery = failure(db.pool.query("SELECT pg_sleep(30)"));
    let terminated: number;
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      terminated = await terminateBackends();
    } finally {
      checkedOut.release(await inTransaction);
    }
    try {
      expect(terminated).toBe(3);
      // admin_shutdown, as on a restart
      expect([(await inTransaction)?.code, (await inPoolQuery)?.code]).toEqual(["57P01", "57P01"]);
      for (let i = 0; i < 100 && lost.length < 3; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(lost).toHaveLength(3);
      expect((await db.pool.query<{ one: number }>("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]);
    } finally {
      await db.close();
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(lost).toHaveLength(3);
  });
});

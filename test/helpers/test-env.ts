import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import pg from "pg";
import { loadConfig, type Config } from "../../src/config/config.ts";
import { createLogger, type Logger } from "../../src/config/logger.ts";
import { openDatabase, type Database } from "../../src/store/database.ts";
import { migrateDatabase } from "../../src/store/migrate.ts";
import { startSandbox, type SandboxOptions, type SandboxServer } from "../../src/sandbox/server.ts";
import { createRedisConnection } from "../../src/queue/redis.ts";

const ADMIN_URL = process.env.TEST_ADMIN_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";
const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

export interface TestEnv {
  /** Every test file names its own queue prefix (explicit QUEUE_PREFIX, claimed for its own database). */
  config: Config & { queuePrefix: string };
  db: Database;
  sandbox: SandboxServer;
  log: Logger;
  /** Everything the logger wrote, for asserting that secrets never appear. */
  logOutput(): string;
  tmpDir: string;
  writeCsv(name: string, content: string): Promise<string>;
  cleanup(): Promise<void>;
}

/**
 * A private world for one test file: its own database (created fresh and migrated), its own Redis key
 * prefix, its own sandbox provider on a random port, and a temp folder. Real services, nothing mocked.
 */
export async function createTestEnv(
  name: string,
  options: { env?: Record<string, string>; sandbox?: SandboxOptions } = {},
): Promise<TestEnv> {
  const { suffix, databaseUrl, dropDatabase } = await createTestDatabase(name);

  const sandbox = await startSandbox({ port: 0, seed: 42, ...options.sandbox });
  const queuePrefix = `{smsblast-test-${name}-${suffix}}`;
  const loaded = loadConfig({
    DATABASE_URL: databaseUrl,
    REDIS_URL,
    QUEUE_PREFIX: queuePrefix,
    ENGAGELAB_MESSAGES_URL: sandbox.url,
    ENGAGELAB_SMS_URL: sandbox.url,
    ENGAGELAB_OTP_URL: sandbox.url,
    SEND_BACKOFF_MS: "50",
    SEND_CONCURRENCY: "4",
    PROVIDER_TIMEOUT_MS: "3000",
    LOG_LEVEL: "debug",
    ...options.env,
  });
  const config = { ...loaded, queuePrefix: loaded.queuePrefix ?? queuePrefix };
  const captured = new PassThrough();
  let output = "";
  captured.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
  const log = createLogger(config.logLevel, captured);
  const db = openDatabase(databaseUrl, { phoneHasher: config.privacy.phoneHasher });
  const tmpDir = await mkdtemp(path.join(tmpdir(), `smsblast-${name}-`));

  return {
    config,
    db,
    sandbox,
    log,
    logOutput: () => output,
    tmpDir,
    async writeCsv(file, content) {
      const full = path.join(tmpDir, file);
      await writeFile(full, content);
      return full;
    },
    async cleanup() {
      await db.close();
      await sandbox.close();
      await clearRedisPrefix(config.queuePrefix);
      await rm(tmpDir, { recursive: true, force: true });
      await dropDatabase();
    },
  };
}

/** A fresh, migrated database (so a new deployment id) of its own for a test, and how to drop it. */
export async function createTestDatabase(
  name: string,
): Promise<{ suffix: string; databaseUrl: string; dropDatabase: () => Promise<void> }> {
  const suffix = `${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const database = `smsblast_test_${name.replace(/\W/g, "_")}_${suffix}`.toLowerCase();
  const databaseUrl = ADMIN_URL.replace(/\/[^/]*$/, `/${database}`);
  await migrateDatabase(databaseUrl);
  return {
    suffix,
    databaseUrl,
    async dropDatabase() {
      const admin = new pg.Client({ connectionString: ADMIN_URL });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
      await admin.end();
    },
  };
}

/** Deletes every key under a prefix, the prefix's deployment claim included. */
export async function clearRedisPrefix(prefix: string): Promise<void> {
  const redis = createRedisConnection(REDIS_URL, "producer");
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}

/**
 * Forgets the per-platform outage streaks (src/queue/outage-streak.ts) of a test's prefix: a test whose faults
 * make a batch fail on purpose must not pause the next test's campaign on the failures it left behind.
 */
export async function resetOutageStreaks(prefix: string): Promise<void> {
  const redis = createRedisConnection(REDIS_URL, "producer");
  try {
    await redis.del(`${prefix}:outage:messages`, `${prefix}:outage:legacy`, `${prefix}:outage:custom`);
  } finally {
    redis.disconnect();
  }
}

/** `count` distinct valid Singapore mobile numbers, in E.164 (+65 81xx xxxx upwards: 800x is not an allocated mobile range). */
export function singaporeNumbers(count: number, start = 0): string[] {
  return Array.from({ length: count }, (_, i) => `+65${(81_000_000 + start + i).toString()}`);
}

export function csvOf(header: string[], rows: string[][]): string {
  return [header.join(","), ...rows.map((r) => r.join(","))].join("\n") + "\n";
}

export async function waitFor<T>(
  probe: () => Promise<T | undefined>,
  timeoutMs = 30_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

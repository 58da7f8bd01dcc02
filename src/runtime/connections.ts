import type { RedisConnection } from "../queue/redis.ts";
import type { Config } from "../config/config.ts";
import { connectRedisForCommand } from "../queue/redis.ts";
import { openDatabase, type Database, type DatabaseOptions } from "../store/database.ts";
import { checkDatabaseConnection, explainDatabaseError } from "../store/database-health.ts";
import { assertMigrationsApplied } from "../store/migrate.ts";

// How every process (a CLI command, a worker, the scheduler) opens its services: bounded by
// CONNECT_TIMEOUT_MS, and failing with a UserError that names the service, before anything is stored.

/**
 * A database that answered within CONNECT_TIMEOUT_MS and has every migration, or a UserError that names
 * what to fix (the URL without credentials, `smsblast migrate`). Every process opens Postgres this way.
 */
export async function openCheckedDatabase(config: Config, options: DatabaseOptions = {}): Promise<Database> {
  const db = openDatabase(config.databaseUrl, {
    connectTimeoutMs: config.connectTimeoutMs,
    phoneHasher: config.privacy.phoneHasher,
    ...options,
  });
  try {
    await checkDatabaseConnection(db.pool, config.databaseUrl, config.connectTimeoutMs);
    await assertMigrationsApplied(db.pool);
    return db;
  } catch (error) {
    await db.close().catch(() => {});
    throw explainDatabaseError(error, config.databaseUrl) ?? error;
  }
}

/** Fails within CONNECT_TIMEOUT_MS, naming Redis, when it does not answer: long-running processes check at start-up. */
export async function checkRedis(config: Config): Promise<void> {
  await withCommandRedis(config, async () => {});
}

/** A short-lived Redis connection (PING answered within CONNECT_TIMEOUT_MS) for one start-up step. */
export async function withCommandRedis<T>(config: Config, fn: (redis: RedisConnection) => Promise<T>): Promise<T> {
  const connection = await connectRedisForCommand(config.redisUrl, config.connectTimeoutMs);
  try {
    return await fn(connection);
  } finally {
    connection.disconnect();
  }
}

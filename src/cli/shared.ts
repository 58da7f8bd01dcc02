import { InvalidArgumentError } from "commander";
import { loadConfig, type Config } from "../config/config.ts";
import { createLogger, type Logger } from "../config/logger.ts";
import { createRedisConnection } from "../queue/redis.ts";
import { campaignQueueOf, createSendQueue, type CampaignQueue } from "../queue/send-queue.ts";
import { openDatabase, type Database } from "../store/database.ts";
import { assertMigrationsApplied } from "../store/migrate.ts";

export interface Services {
  config: Config;
  log: Logger;
  db: Database;
}

/** Config, logger and a migrated database for one command; always closed afterwards. */
export async function withServices<T>(fn: (services: Services) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  const db = openDatabase(config.databaseUrl, { applicationName: "smsblast-cli" });
  try {
    await assertMigrationsApplied(db.pool);
    return await fn({ config, log, db });
  } finally {
    await db.close();
    log.flush();
  }
}

/** A producer connection to the send queue for one command. */
export async function withQueue<T>(config: Config, fn: (queue: CampaignQueue) => Promise<T>): Promise<T> {
  const connection = createRedisConnection(config.redisUrl, "producer");
  const queue = createSendQueue(connection, { prefix: config.queuePrefix, attempts: config.send.attempts, backoffMs: config.send.backoffMs });
  try {
    return await fn(campaignQueueOf(queue));
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

/** `--param key=value` (repeatable) into an object. */
export function collectKeyValue(value: string, previous: Record<string, string>): Record<string, string> {
  const eq = value.indexOf("=");
  if (eq <= 0) throw new InvalidArgumentError(`expected key=value, got "${value}"`);
  return { ...previous, [value.slice(0, eq).trim()]: value.slice(eq + 1) };
}

export function collectList(value: string, previous: string[]): string[] {
  return [...previous, ...value.split(",").map((v) => v.trim()).filter(Boolean)];
}

export function isoTime(value: string): Date {
  const at = new Date(value);
  if (Number.isNaN(at.getTime()) || !/^\d{4}-\d{2}-\d{2}T/.test(value)) {
    throw new InvalidArgumentError(`expected an ISO time such as 2026-12-01T09:00:00+08:00, got "${value}"`);
  }
  return at;
}

export function wholeNumber(name: string) {
  return (value: string) => {
    if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`${name} must be a whole number, got "${value}"`);
    return Number(value);
  };
}

export function numberBetween(name: string, min: number, max: number) {
  return (value: string) => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isFinite(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be a number between ${min} and ${max}, got "${value}"`);
    }
    return n;
  };
}

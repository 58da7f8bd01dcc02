import type { CronScheduler } from "../campaigns/recurring-campaigns.ts";
import { templateCatalog, type TemplatesApi } from "../campaigns/template-catalog.ts";
import { loadConfig, type Config } from "../config/config.ts";
import { createLogger, type Logger } from "../config/logger.ts";
import { createProviders, type ProviderRegistry } from "../engagelab/providers.ts";
import { createTemplatesApi } from "../engagelab/templates-api.ts";
import { connectRedisForCommand } from "../queue/redis.ts";
import { createScheduleQueue } from "../queue/schedule-queue.ts";
import { campaignQueueOf, createSendQueue, sendQueueOptions, type CampaignQueue } from "../queue/send-queue.ts";
import type { Database } from "../store/database.ts";
import { explainDatabaseError } from "../store/database-health.ts";
import { migrateDatabase, type MigrationReport } from "../store/migrate.ts";
import { openCheckedDatabase } from "./connections.ts";
import { bindQueue } from "./queue-binding.ts";
import { cronSchedulerOf } from "./scheduler-runtime.ts";
import { hasSharedRateLimits, rateGateOf } from "./rate-limits.ts";
import type { SendRateGate } from "../campaigns/send-batch.ts";

// What a front door (a CLI command, later an API request) opens to call the use cases, and always closes.

export interface Services {
  config: Config;
  log: Logger;
  db: Database;
}

/** Config, logger and a migrated database for one command; always closed afterwards. */
export async function withServices<T>(fn: (services: Services) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  const db = await openCheckedDatabase(config, { applicationName: "smsblast-cli" });
  try {
    return await fn({ config, log, db });
  } finally {
    await db.close();
    log.flush();
  }
}

/**
 * A producer connection to the deployment's send queue for one command, opened (PING answered, queue prefix
 * bound to the database) before `fn` runs, so a dead Redis fails the command before anything is stored.
 */
export async function withQueue<T>(
  services: Pick<Services, "config" | "db">,
  fn: (queue: CampaignQueue) => Promise<T>,
): Promise<T> {
  const { config, db } = services;
  const connection = await connectRedisForCommand(config.redisUrl, config.connectTimeoutMs);
  try {
    const binding = await bindQueue(config, db, connection);
    const queue = createSendQueue(connection, sendQueueOptions(config, binding.prefix));
    try {
      return await fn(campaignQueueOf(queue));
    } finally {
      await queue.close().catch(() => {});
    }
  } finally {
    connection.disconnect();
  }
}

/**
 * The shared provider rates for a one-off send of one command (the priority lane): only when a limit is set,
 * so a `send-one` without limits needs no Redis.
 */
export async function withSendRateGate<T>(
  services: Pick<Services, "config" | "db">,
  fn: (gate: SendRateGate | undefined) => Promise<T>,
): Promise<T> {
  const { config, db } = services;
  if (!hasSharedRateLimits(config)) return fn(undefined);
  const connection = await connectRedisForCommand(config.redisUrl, config.connectTimeoutMs);
  try {
    const binding = await bindQueue(config, db, connection);
    return await fn(rateGateOf(config, connection, binding.prefix));
  } finally {
    connection.disconnect();
  }
}

/** The deployment's schedule queue's job schedulers, for one command. */
export async function withScheduler<T>(
  services: Pick<Services, "config" | "db">,
  fn: (scheduler: CronScheduler) => Promise<T>,
): Promise<T> {
  const { config, db } = services;
  const connection = await connectRedisForCommand(config.redisUrl, config.connectTimeoutMs);
  try {
    const binding = await bindQueue(config, db, connection);
    const queue = createScheduleQueue(connection, binding.prefix);
    try {
      return await fn(cronSchedulerOf(queue));
    } finally {
      await queue.close().catch(() => {});
    }
  } finally {
    connection.disconnect();
  }
}

/** The template API with user-facing provider errors, and its own small HTTP client to close. */
export function openTemplates(config: Config): { api: TemplatesApi; close: () => Promise<void> } {
  const opened = createTemplatesApi(config);
  return { api: templateCatalog(opened.api), close: opened.close };
}

export function openProviders(config: Config): ProviderRegistry {
  return createProviders(config);
}

/** `smsblast migrate`: creates the database if it is missing and applies pending migrations. */
export async function runMigrations(config: Config): Promise<MigrationReport> {
  try {
    return await migrateDatabase(config.databaseUrl, undefined, { connectTimeoutMs: config.connectTimeoutMs });
  } catch (error) {
    throw explainDatabaseError(error, config.databaseUrl) ?? error;
  }
}

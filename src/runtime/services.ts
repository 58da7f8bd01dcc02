import type { CronScheduler } from "../campaigns/recurring-campaigns.ts";
import { templateCatalog, type TemplatesApi } from "../campaigns/template-catalog.ts";
import { loadConfig, type Config } from "../config/config.ts";
import { createLogger, type Logger } from "../config/logger.ts";
import { createProviders, type ProviderRegistry } from "../engagelab/providers.ts";
import { createTemplatesApi } from "../engagelab/templates-api.ts";
import { createRedisConnection } from "../queue/redis.ts";
import { createScheduleQueue } from "../queue/schedule-queue.ts";
import { campaignQueueOf, createSendQueue, sendQueueOptions, type CampaignQueue } from "../queue/send-queue.ts";
import { openDatabase, type Database } from "../store/database.ts";
import { assertMigrationsApplied, migrateDatabase, type MigrationReport } from "../store/migrate.ts";
import { cronSchedulerOf } from "./scheduler-runtime.ts";

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
  const queue = createSendQueue(connection, sendQueueOptions(config));
  try {
    return await fn(campaignQueueOf(queue));
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

/** The schedule queue's job schedulers, for one command. */
export async function withScheduler<T>(config: Config, fn: (scheduler: CronScheduler) => Promise<T>): Promise<T> {
  const connection = createRedisConnection(config.redisUrl, "producer");
  const queue = createScheduleQueue(connection, config.queuePrefix);
  try {
    return await fn(cronSchedulerOf(queue));
  } finally {
    await queue.close();
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
export function runMigrations(config: Config): Promise<MigrationReport> {
  return migrateDatabase(config.databaseUrl);
}

import type { Worker } from "bullmq";
import type { Config } from "../config/config.ts";
import type { Logger } from "../config/logger.ts";
import { createTemplatesApi } from "../engagelab/templates-api.ts";
import { createRedisConnection } from "../queue/redis.ts";
import {
  createScheduleQueue,
  createScheduleWorker,
  nextFirings,
  removeCronScheduler,
  upsertCronScheduler,
} from "../queue/schedule-queue.ts";
import { campaignQueueOf, createSendQueue, sendQueueOptions } from "../queue/send-queue.ts";
import { openCheckedDatabase, withCommandRedis } from "./connections.ts";
import { bindQueue } from "./queue-binding.ts";
import { startScheduledPurge } from "./scheduled-purge.ts";
import { createSchedulerMetrics, startMetricsServer, type RunningMetricsServer } from "./metrics.ts";
import {
  catchUpMissedFirings,
  runScheduledCampaign,
  syncSchedulers,
  type CronScheduler,
} from "../campaigns/recurring-campaigns.ts";

export interface RunningScheduler {
  worker: Worker;
  stop(): Promise<void>;
}

/**
 * The scheduler process: syncs BullMQ's job schedulers with the schedules in Postgres, then turns each
 * firing into a campaign run. Several may run at once: BullMQ hands each firing's job to one of them, and
 * the run key's unique index stops a repeated firing in Postgres.
 */
export async function startScheduler(config: Config, log: Logger): Promise<RunningScheduler> {
  const db = await openCheckedDatabase(config, { maxConnections: 4, applicationName: "smsblast-scheduler" });
  const binding = await withCommandRedis(config, (redis) => bindQueue(config, db, redis)).catch(
    async (error: unknown) => {
      await db.close();
      throw error;
    },
  );
  const workerConnection = createRedisConnection(config.redisUrl, "worker");
  const producerConnection = createRedisConnection(config.redisUrl, "producer");
  const scheduleQueue = createScheduleQueue(producerConnection, binding.prefix);
  const sendQueue = createSendQueue(producerConnection, sendQueueOptions(config, binding.prefix));
  const campaignQueue = campaignQueueOf(sendQueue);
  const templates = createTemplatesApi(config);
  const scheduler = cronSchedulerOf(scheduleQueue);

  const launchDeps = {
    db,
    log,
    enqueue: campaignQueue.enqueue,
    scheduleStart: campaignQueue.scheduleStart,
    templates: templates.api,
  };
  const synced = await syncSchedulers({ db, scheduler, log });
  const limits = { batchSize: config.send.batchSize, legacyVarMaxChars: config.send.legacyVarMaxChars };
  await catchUpMissedFirings({ ...launchDeps, scheduler }, { graceMs: config.scheduleCatchupMs, ...limits });
  const worker = createScheduleWorker(workerConnection, binding.prefix, async (scheduleName, firingId) => {
    const outcome = await runScheduledCampaign(launchDeps, scheduleName, firingId, limits);
    const summary =
      outcome.kind === "launched"
        ? { campaignId: outcome.campaign.campaignId, recipients: outcome.campaign.recipientCount }
        : {};
    log.info({ schedule: scheduleName, firingId, outcome: outcome.kind, ...summary }, "schedule fired");
    return { outcome: outcome.kind, ...summary };
  });
  worker.on("failed", (job, error) => log.error({ schedule: job?.data.schedule, err: error }, "scheduled run failed"));
  worker.on("error", (error) => log.error({ err: error }, "scheduler worker error"));
  void worker.run();
  await worker.waitUntilReady();
  // GET /metrics and /healthz on METRICS_PORT, as the workers have: what the orchestrator probes.
  const metricsServer: RunningMetricsServer | undefined =
    config.metrics.port === undefined
      ? undefined
      : await startMetricsServer(createSchedulerMetrics([scheduleQueue, sendQueue]), {
          host: config.metrics.host,
          port: config.metrics.port,
          log,
        });
  const purge = startScheduledPurge(db, config, log);
  log.info({ schedules: synced }, "scheduler started");

  let stopping: Promise<void> | undefined;
  return {
    worker,
    stop() {
      stopping ??= (async () => {
        await metricsServer?.close();
        await purge?.stop();
        await worker.close();
        await scheduleQueue.close();
        await sendQueue.close();
        await templates.close();
        workerConnection.disconnect();
        producerConnection.disconnect();
        await db.close();
        log.info("scheduler stopped");
      })();
      return stopping;
    },
  };
}

export function cronSchedulerOf(queue: ReturnType<typeof createScheduleQueue>): CronScheduler {
  return {
    upsert: (name, cron, timezone) => upsertCronScheduler(queue, name, cron, timezone),
    remove: (name) => removeCronScheduler(queue, name),
    nextFirings: () => nextFirings(queue),
    hasFiringJob: async (firingId) => (await queue.getJob(firingId)) !== undefined,
  };
}

import type { Worker } from "bullmq";
import { applyDeliveryReports, sweepDeliveryReports, type DrainOptions } from "../campaigns/delivery-reports.ts";
import type { Config } from "../config/config.ts";
import type { Logger } from "../config/logger.ts";
import {
  createDeliveryQueue,
  createDeliveryWorker,
  requestApply,
  requestApplyLater,
  upsertSweepScheduler,
} from "../queue/delivery-queue.ts";
import { createRedisConnection } from "../queue/redis.ts";
import { openDatabase } from "../store/database.ts";
import { readWalCompression } from "../store/database-health.ts";
import { ensureWorkListStatistics } from "../store/delivery-repository.ts";
import { assertMigrationsApplied } from "../store/migrate.ts";
import { withCommandRedis } from "./connections.ts";
import { bindQueue, type QueueBinding } from "./queue-binding.ts";
import { DeliveryMetrics } from "./delivery-metrics.ts";
import { createDeliveryWorkerMetrics, startMetricsServer, type RunningMetricsServer } from "./metrics.ts";

export interface RunningDeliveryWorker {
  worker: Worker;
  metrics: DeliveryMetrics;
  stop(): Promise<void>;
}

// One drain job may apply this many statements' worth before it hands over to the next job (which it queues).
const MAX_ROUNDS_PER_JOB = 400;

/** The delivery-reports worker: applies stored callback events in bulk, and sweeps on an interval. */
export async function startDeliveryWorker(
  config: Config,
  log: Logger,
  metrics = new DeliveryMetrics(),
): Promise<RunningDeliveryWorker> {
  const db = openDatabase(config.databaseUrl, {
    // one per parallel applier statement, and one for the sweep and the next-due query
    maxConnections: config.delivery.applyParallel + 1,
    applicationName: "smsblast-delivery",
    phoneHasher: config.privacy.phoneHasher,
  });
  let binding: QueueBinding;
  try {
    await assertMigrationsApplied(db.pool);
    await ensureWorkListStatistics(db);
    if ((await readWalCompression(db.pool)) === "off") {
      log.info(
        { setting: "wal_compression" },
        "PostgreSQL has wal_compression off: applying reports writes a full 8 kB page image per recipient page after each checkpoint, which wal_compression=lz4 shrinks (README: PostgreSQL settings)",
      );
    }
    binding = await withCommandRedis(config, (redis) => bindQueue(config, db, redis));
  } catch (error) {
    await db.close();
    throw error;
  }
  const connection = createRedisConnection(config.redisUrl, "worker");
  const producer = createRedisConnection(config.redisUrl, "producer");
  const queue = createDeliveryQueue(producer, binding.prefix);
  const applyOptions: DrainOptions = {
    limit: config.delivery.applyBatch,
    parallel: config.delivery.applyParallel,
    gatherMs: config.delivery.applyGatherMs,
    onApplied: (report) => metrics.countApplied(report),
    retryDelayMs: config.delivery.retryMs,
    giveUpAfterMs: config.delivery.giveUpMs,
    maxRounds: MAX_ROUNDS_PER_JOB,
  };
  const apply = async () => {
    const report = await applyDeliveryReports(db, applyOptions);
    if (report.picked > 0) {
      // Counts only: the events hold phone numbers.
      log.info(
        {
          picked: report.picked,
          changed: report.changed,
          waiting: report.waiting,
          unmatched: report.unmatched,
          optOuts: report.optOuts,
        },
        "delivery reports applied",
      );
    }
    // Continuous draining: a job that stopped at MAX_ROUNDS_PER_JOB with work left asks for the next one
    // (kept by the de-duplication and started when this one finishes); waiting events get a job when due.
    if (report.more) await requestApply(queue);
    else if (report.nextAttemptInMs !== null) await requestApplyLater(queue, report.nextAttemptInMs);
    return { picked: report.picked, changed: report.changed };
  };
  const worker = createDeliveryWorker(connection, binding.prefix, {
    apply,
    sweep: async () => {
      await apply();
      const swept = await sweepDeliveryReports(db, {
        noReportAfterMs: config.delivery.noReportAfterMs,
        // Twice the window: a nonce must outlive every timestamp that could still be accepted with it.
        nonceMaxAgeMs: 2 * config.callbacks.maxSkewMs,
        rawRetentionMs: config.delivery.rawRetentionMs,
      });
      if (swept.noReport > 0)
        log.info({ noReport: swept.noReport }, "recipients without a delivery report marked no_report");
      return swept;
    },
  });
  worker.on("failed", (job, error) => log.warn({ err: error, job: job?.name }, "delivery job failed; retried"));
  await worker.waitUntilReady();
  await upsertSweepScheduler(queue, config.delivery.sweepIntervalMs);
  // smsblast_delivery_reports_total{status} and the report-delay histogram, with /healthz, on METRICS_PORT.
  const metricsServer: RunningMetricsServer | undefined =
    config.metrics.port === undefined
      ? undefined
      : await startMetricsServer(
          createDeliveryWorkerMetrics([queue], () => metrics.prometheusText()),
          {
            host: config.metrics.host,
            port: config.metrics.port,
            log,
          },
        );
  log.info({ sweepIntervalMs: config.delivery.sweepIntervalMs }, "delivery worker started");

  let stopping: Promise<void> | undefined;
  return {
    worker,
    metrics,
    stop() {
      stopping ??= (async () => {
        await metricsServer?.close();
        await worker.close();
        await queue.close();
        connection.disconnect();
        producer.disconnect();
        await db.close();
      })();
      return stopping;
    },
  };
}

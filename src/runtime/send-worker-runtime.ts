import type { Worker } from "bullmq";
import type { Config } from "../config/config.ts";
import type { Logger } from "../config/logger.ts";
import { staleClaimAfterMs } from "../model/states.ts";
import { createProviders } from "../engagelab/providers.ts";
import { createRedisConnection } from "../queue/redis.ts";
import { createSendWorker } from "./send-job-processor.ts";
import { createWorkerMetrics, startMetricsServer, type WorkerMetrics } from "./metrics.ts";
import { campaignQueueOf, createSendQueue, sendQueueOptions } from "../queue/send-queue.ts";
import { checkRedis, openCheckedDatabase, withCommandRedis } from "./connections.ts";
import { bindQueue, type QueueBinding } from "./queue-binding.ts";
import { reconcile } from "../campaigns/reconciler.ts";
import { RedisOutageStreaks } from "../queue/outage-streak.ts";
import { probeAndResume } from "../campaigns/outage-prober.ts";
import { rateGateOf } from "./rate-limits.ts";

export interface RunningSendWorker {
  worker: Worker;
  /** The deployment and queue prefix this worker serves. */
  binding: QueueBinding;
  metrics: WorkerMetrics;
  /** The port of GET /metrics when METRICS_PORT is set. */
  metricsPort: number | undefined;
  /** Stops taking jobs, waits up to `graceMs` for in-flight batches, then closes Redis and Postgres. */
  stop(graceMs?: number): Promise<void>;
}

export interface SendWorkerRuntimeOptions {
  /** The clock of the schedule_time rule (default Date.now): tests move it rather than wait minutes. */
  clock?: () => number;
}

/** Wires config, Postgres, Redis, the provider clients and the BullMQ worker into one running process. */
export async function startSendWorker(
  config: Config,
  log: Logger,
  options: SendWorkerRuntimeOptions = {},
): Promise<RunningSendWorker> {
  const db = await openCheckedDatabase(config, {
    maxConnections: config.send.concurrency + 2,
    applicationName: "smsblast-worker",
    // Said at once, even by a worker whose jobs are all inside provider calls while PostgreSQL is away.
    onConnectionLost: (error) =>
      log.warn({ code: (error as { code?: string }).code, reason: error.message }, "PostgreSQL closed a connection"),
  });
  let binding: QueueBinding;
  try {
    await checkRedis(config);
    // Before taking any job: the queue this worker serves must be its own deployment's.
    binding = await withCommandRedis(config, (redis) => bindQueue(config, db, redis));
  } catch (error) {
    await db.close();
    throw error;
  }
  const registry = createProviders(config);
  const connection = createRedisConnection(config.redisUrl, "worker");
  // Start jobs queue batches; a worker has its own producer side for that.
  const producerConnection = createRedisConnection(config.redisUrl, "producer");
  const queue = createSendQueue(producerConnection, sendQueueOptions(config, binding.prefix));
  const metrics = createWorkerMetrics([queue]);
  const outage = new RedisOutageStreaks(producerConnection, binding.prefix);
  const gate = rateGateOf(config, producerConnection, binding.prefix);
  const worker = createSendWorker(
    connection,
    {
      db,
      providers: metrics.instrument(registry.providers),
      log,
      providerTimeoutMs: config.engagelab.timeoutMs,
      clock: options.clock,
      scheduleMarginSeconds: config.send.scheduleMarginSeconds,
      outage,
      gate,
      lane: "bulk",
      queue: campaignQueueOf(queue),
      metrics,
      deploymentId: binding.deploymentId,
    },
    {
      prefix: binding.prefix,
      concurrency: config.send.concurrency,
      providerTimeoutMs: config.engagelab.timeoutMs,
    },
  );
  void worker.run();
  await worker.waitUntilReady();
  log.info(
    {
      concurrency: config.send.concurrency,
      rateLimit: config.send.rateLimitPerSecond || "none",
      platformRateLimits: config.send.platformRateLimits,
      deploymentId: binding.deploymentId,
      queuePrefix: binding.prefix,
    },
    "send worker started",
  );

  // Redis may have lost jobs while no worker was looking (a flush, a restart without AOF), or they may sit under
  // the prefix of an earlier version (before the deployment's own): Postgres knows, and this re-adds them here.
  const reconcileDeps = { db, queue: campaignQueueOf(queue), log, providerTimeoutMs: config.engagelab.timeoutMs };
  const runReconcile = () =>
    reconcile(reconcileDeps).catch((error) =>
      log.warn({ err: error }, "reconcile failed; will try again on the next interval"),
    );
  await runReconcile();
  const reconcileTimer =
    config.send.reconcileIntervalMs > 0
      ? setInterval(() => void runReconcile(), config.send.reconcileIntervalMs)
      : undefined;
  reconcileTimer?.unref();

  // The outage prober: campaigns paused by a provider outage resume by themselves once a probe that cannot send
  // gets an answer. Every worker ticks; one per round (a Redis key) probes.
  const proberTickMs = Math.min(5_000, Math.max(100, Math.round(config.autoResume.backoffMs / 2)));
  let proberRound: Promise<void> | undefined;
  const runProber = () => (proberRound ??= proberRoundOnce().finally(() => (proberRound = undefined)));
  const proberRoundOnce = async () => {
    try {
      if (!(await outage.claimProbeRound(proberTickMs))) return;
      await probeAndResume({
        db,
        queue: campaignQueueOf(queue),
        log,
        probe: registry.probe,
        outage,
        policy: config.autoResume,
      });
    } catch (error) {
      log.warn({ err: error }, "outage prober round failed; will try again");
    }
  };
  const proberTimer = config.autoResume.max > 0 ? setInterval(() => void runProber(), proberTickMs) : undefined;
  proberTimer?.unref();

  const metricsServer =
    config.metrics.port === undefined
      ? undefined
      : await startMetricsServer(metrics, { host: config.metrics.host, port: config.metrics.port, log });

  let stopping: Promise<void> | undefined;
  return {
    worker,
    binding,
    metrics,
    metricsPort: metricsServer?.port,
    // As long as a claim stays fresh: past that, another worker may already treat the batch as a dead worker's.
    stop(graceMs = staleClaimAfterMs(config.engagelab.timeoutMs)) {
      stopping ??= (async () => {
        clearInterval(reconcileTimer);
        clearInterval(proberTimer);
        await proberRound;
        // worker.close() waits for in-flight jobs; past the grace period we close anyway. A batch left in
        // `sending` is then settled by the unknown-outcome rule when its job runs again.
        const closed = worker.close();
        const timer = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), graceMs).unref());
        if ((await Promise.race([closed, timer])) === "timeout") {
          log.warn({ graceMs }, "in-flight batches did not finish within the grace period; forcing close");
          await worker.close(true);
        }
        await metricsServer?.close();
        await registry.close();
        await queue.close();
        producerConnection.disconnect();
        connection.disconnect();
        await db.close();
        log.info("send worker stopped");
      })();
      return stopping;
    },
  };
}

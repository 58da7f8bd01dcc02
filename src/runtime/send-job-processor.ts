import type { RedisConnection } from "../queue/redis.ts";
import { DelayedError, UnrecoverableError, Worker, type Job } from "bullmq";
import {
  BatchBusyError,
  BatchNotDueError,
  BatchNotInDatabaseError,
  BatchRateLimitedError,
  RetryBatchError,
  sendBatch,
  type SendBatchDeps,
} from "../campaigns/send-batch.ts";
import { startScheduledCampaign } from "../campaigns/start-campaign.ts";
import { isDatabaseUnavailable, waitForDatabase } from "../store/database-health.ts";
import type { WorkerMetrics } from "./metrics.ts";
import { BULK_MAX_WAIT_MS } from "../queue/rate-gate.ts";
import { SEND_QUEUE_NAME, START_JOB_NAME, type CampaignQueue, type SendJobData } from "../queue/send-queue.ts";

/** A job delayed by the rate gate comes back this much before its slot (well within BULK_MAX_WAIT_MS). */
const RATE_WAKE_EARLY_MS = Math.round(BULK_MAX_WAIT_MS / 2);

export interface SendWorkerOptions {
  prefix: string;
  concurrency: number;
  providerTimeoutMs: number;
}

/**
 * The BullMQ side of sending: turns sendBatch's typed outcomes into queue actions (retry with backoff,
 * global back-off on 429, re-check later when another worker holds the batch or a rate limit is reached).
 * Rates are not BullMQ's limiter (one per queue, counting job starts) but the deployment's rate gate
 * (deps.gate, src/queue/rate-gate.ts), shared with the priority lane of one-off sends.
 */
export function createSendWorker(
  connection: RedisConnection,
  deps: SendBatchDeps & {
    queue: CampaignQueue;
    metrics?: Pick<WorkerMetrics, "batchRetried" | "rateLimitBackedOff">;
    /** This worker's deployment, named when a job of another one turns up. */
    deploymentId?: string;
  },
  options: SendWorkerOptions,
): Worker<SendJobData> {
  const log = deps.log;
  // BullMQ renews a job's lock every lockDuration/2 while its processor runs, so the lock only has to
  // outlive a stall of the event loop, not the whole send; three provider timeouts leave a wide margin.
  // When a worker dies, its jobs come back after at most lockDuration + stalledInterval, and the claim
  // in Postgres turns the re-run into the unknown-outcome rule instead of a second send.
  const lockDuration = Math.max(6_000, options.providerTimeoutMs * 3);
  const stalledInterval = Math.max(3_000, Math.round(lockDuration / 2));

  const worker: Worker<SendJobData> = new Worker<SendJobData>(
    SEND_QUEUE_NAME,
    async (job: Job<SendJobData>, token?: string) => {
      if (job.name === START_JOB_NAME) {
        const started = await startScheduledCampaign(deps, job.data.campaignId);
        if (started.kind === "too-early" && token) {
          // A clock ahead of the database's, or a start time moved later: wait, do not start early.
          await job.moveToDelayed(started.notBefore.getTime(), token);
          throw new DelayedError();
        }
        return started;
      }
      const batchId = job.data.batchId;
      if (!batchId) throw new Error(`job ${job.id} (${job.name}) has no batchId`);
      const maxAttempts = job.opts.attempts ?? 1;
      try {
        const result = await sendBatch(deps, batchId, { isLastAttempt: job.attemptsMade + 1 >= maxAttempts });
        if (result.outcome === "skipped") log.debug({ batchId, reason: result.reason }, "job skipped");
        return result.outcome === "recorded" ? { state: result.state } : { skipped: result.reason };
      } catch (error) {
        if (error instanceof RetryBatchError && error.rateLimited) {
          // Every worker on this queue pauses for Retry-After (or 1 s); the job goes back without using an attempt.
          deps.metrics?.rateLimitBackedOff();
          await worker.rateLimit(error.delayMs ?? 1_000);
          throw Worker.RateLimitError();
        }
        if (error instanceof BatchNotInDatabaseError) {
          // Another deployment's job on this queue (a shared prefix, a stale worker): never completed as done.
          // It fails at once and stays in the failed set (the dashboard shows it) instead of being removed like
          // other failed jobs, whose batches the reconciler re-adds; this one has no batch here to re-add.
          job.opts.removeOnFail = false;
          const reason =
            `${error.message}${deps.deploymentId ? ` (deployment ${deps.deploymentId})` : ""}: ` +
            "the job belongs to another deployment on this Redis and queue prefix; not sent, kept in the failed set";
          log.error({ batchId, campaignId: job.data.campaignId, deploymentId: deps.deploymentId }, reason);
          throw new UnrecoverableError(reason);
        }
        if (error instanceof RetryBatchError) deps.metrics?.batchRetried();
        if (error instanceof BatchNotDueError && token) {
          // Due by the batch rules' clock; BullMQ's delay runs on this machine's own.
          const clock = deps.clock ?? Date.now;
          await job.moveToDelayed(Date.now() + Math.max(0, error.dueAtMs - clock()), token);
          throw new DelayedError();
        }
        if (error instanceof BatchRateLimitedError && token) {
          // Woken a little early: the last stretch is waited in-process, holding the slot the gate then books.
          await job.moveToDelayed(Date.now() + Math.max(10, error.delayMs - RATE_WAKE_EARLY_MS), token);
          throw new DelayedError();
        }
        if (error instanceof BatchBusyError && token) {
          await job.moveToDelayed(Date.now() + error.delayMs, token);
          throw new DelayedError();
        }
        if (isDatabaseUnavailable(error) && token) {
          // Postgres is down: stop taking jobs until it answers again, and put this one back without
          // spending an attempt. Nothing was recorded, so nothing is marked sent that was not.
          void holdWhileDatabaseDown();
          await job.moveToDelayed(Date.now() + 2_000, token);
          throw new DelayedError();
        }
        throw error;
      }
    },
    {
      connection,
      prefix: options.prefix,
      concurrency: options.concurrency,
      lockDuration,
      stalledInterval,
      // A job stalling repeatedly is a crash loop, not a slow send; after that the reconciler owns it.
      maxStalledCount: 3,
      autorun: false,
    },
  );
  let holding: Promise<void> | undefined;
  function holdWhileDatabaseDown(): Promise<void> {
    holding ??= (async () => {
      log.error("PostgreSQL is unreachable: this worker stops taking jobs until it answers");
      await worker.pause(true);
      await waitForDatabase(deps.db.pool, {
        onRetry: (attempt) => log.warn({ attempt }, "PostgreSQL still unreachable"),
      });
      worker.resume();
      log.info("PostgreSQL is back: taking jobs again");
    })().finally(() => {
      holding = undefined;
    });
    return holding;
  }

  worker.on("failed", (job, error) => {
    // Already logged with their reasons.
    if (error instanceof RetryBatchError || error instanceof UnrecoverableError) return;
    log.error({ batchId: job?.data.batchId, err: error }, "send job failed");
  });
  worker.on("error", (error) => log.error({ err: error }, "send worker error"));
  return worker;
}

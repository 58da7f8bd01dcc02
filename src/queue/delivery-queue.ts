import type { RedisConnection } from "./redis.ts";
import { Queue, Worker, type Job } from "bullmq";

export const DELIVERY_QUEUE_NAME = "delivery";
/** Applies every stored event that is ready. */
export const APPLY_JOB_NAME = "apply-reports";
/** Periodic: waiting events come due, no-report timeout, purge of nonces and old rows. */
export const SWEEP_JOB_NAME = "sweep-reports";
const SWEEP_SCHEDULER_ID = "delivery-sweep";

/**
 * The jobs carry nothing: Postgres holds the events (they contain phone numbers, which must not sit in
 * Redis in clear text). One apply job per second at most: callbacks arriving in the same second share a
 * jobId, so 200 callbacks/s add ~1 job/s; a callback stored while a job runs gets the next second's job.
 */
export function createDeliveryQueue(connection: RedisConnection, prefix: string): Queue {
  return new Queue(DELIVERY_QUEUE_NAME, {
    connection,
    prefix,
    defaultJobOptions: {
      removeOnComplete: true,
      removeOnFail: true,
      attempts: 5,
      backoff: { type: "exponential", delay: 1_000 },
    },
  });
}

export async function requestApply(queue: Queue, nowMs = Date.now()): Promise<void> {
  await queue.add(APPLY_JOB_NAME, {}, { jobId: `apply-${Math.floor(nowMs / 1000)}` });
}

/** Idempotent: every delivery worker upserts the same scheduler at start-up; BullMQ runs one job per interval. */
export async function upsertSweepScheduler(queue: Queue, everyMs: number): Promise<void> {
  await queue.upsertJobScheduler(SWEEP_SCHEDULER_ID, { every: everyMs }, { name: SWEEP_JOB_NAME, data: {} });
}

export function createDeliveryWorker(
  connection: RedisConnection,
  prefix: string,
  handlers: { apply: () => Promise<unknown>; sweep: () => Promise<unknown> },
): Worker {
  // One job at a time per process: each job drains the whole work list with set-based statements, so
  // parallel jobs would only contend for the same rows.
  return new Worker(
    DELIVERY_QUEUE_NAME,
    async (job: Job) => {
      if (job.name === APPLY_JOB_NAME) return handlers.apply();
      if (job.name === SWEEP_JOB_NAME) return handlers.sweep();
      throw new Error(`delivery queue: no handler for job "${job.name}"`);
    },
    { connection, prefix, concurrency: 1 },
  );
}

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
 * Redis in clear text). An apply job drains the whole work list, statement after statement, until nothing
 * is ready; the receiver asks for one after every stored callback.
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

/**
 * Asks for a drain. De-duplicated so that at most one apply job waits: 200 callbacks/s add one job, not
 * 200. `keepLastIfActive`: a request that comes while a drain is running is kept, and BullMQ adds the next
 * job when the running one finishes, so an event stored after the running job's last look is never left
 * for the sweep (a plain job id or de-duplication key would drop that request).
 */
export async function requestApply(queue: Queue): Promise<void> {
  await queue.add(APPLY_JOB_NAME, {}, { deduplication: { id: APPLY_DEDUP_ID, keepLastIfActive: true } });
}

/**
 * requestApply for a receiver taking hundreds of callbacks a second: one request at a time, and the
 * callbacks stored while it is on its way share ONE more request after it (sent once it is answered, so
 * it is later than their rows' commit). Each callback still ends covered by a request made after its rows
 * were stored; Redis sees a few requests a second instead of one per callback.
 */
export function coalescingRequester(request: () => Promise<void>): () => Promise<void> {
  let inFlight: Promise<void> | undefined;
  let again: Promise<void> | undefined;
  return () => {
    if (inFlight === undefined) {
      inFlight = request().finally(() => (inFlight = undefined));
      return inFlight;
    }
    // One follower for everything stored while the current request is out.
    again ??= inFlight
      .catch(() => {})
      .then(() => {
        again = undefined;
        inFlight = request().finally(() => (inFlight = undefined));
        return inFlight;
      });
    return again;
  };
}

/**
 * A drain once `delayMs` has passed, for events waiting for their send to be recorded. The job id names
 * the second it is due, so drains that find the same waiting events queue one job, and a job due later
 * never stands in for one due sooner.
 */
export async function requestApplyLater(queue: Queue, delayMs: number, nowMs = Date.now()): Promise<void> {
  // At least 100 ms: a due time the database sees a little later than this clock does not spin.
  const delay = Math.max(100, Math.ceil(delayMs));
  await queue.add(APPLY_JOB_NAME, {}, { delay, jobId: `${RETRY_JOB_PREFIX}${Math.ceil((nowMs + delay) / 1000)}` });
}

const APPLY_DEDUP_ID = "delivery-apply";
const RETRY_JOB_PREFIX = "delivery-apply-at-";

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
